#!/usr/bin/env bash
# bench/failover.sh — a local 3-node pg_autoha cluster that fails over.
#
# For each run: start a fresh etcd and three PostgreSQL 15 servers on
# 127.0.0.1 (one primary, two streaming replicas, pg_autoha preloaded),
# print autoha_status(), kill -9 the leader's postmaster, and measure how long
# it takes until one of the replicas accepts a write.  At the end it prints
# every run, the median, and the worker's resident memory, and stops
# everything it started (also on Ctrl-C or a failing step).
#
# Usage (as root on Debian 12; set SKIP_INSTALL=1 to skip apt/build/install):
#   bash bench/failover.sh [runs]            default: 5 runs
# Environment: BASE_PORT (default 26400), TTL (s, default 4),
#   LOOP_WAIT (ms, default 500), WORKDIR (default a fresh mktemp -d).
set -euo pipefail

RUNS=${1:-5}
BASE_PORT=${BASE_PORT:-26400}
TTL=${TTL:-4}
LOOP_WAIT=${LOOP_WAIT:-500}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" -ne 0 ]; then
	echo "run as root (servers run as the postgres OS user through runuser)" >&2
	exit 2
fi

if [ -z "${SKIP_INSTALL:-}" ]; then
	echo "== installing packages, building and installing pg_autoha"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		make gcc postgresql-15 postgresql-server-dev-15 etcd-server etcd-client \
		libcurl4-openssl-dev libjansson-dev libkrb5-dev bc >/dev/null
	make -s -C "$SRC" PG_CONFIG=$BIN/../bin/pg_config >/dev/null
	make -s -C "$SRC" install PG_CONFIG=$BIN/../bin/pg_config >/dev/null
fi

WORKDIR=${WORKDIR:-$(mktemp -d /tmp/pg_autoha_failover.XXXXXX)}
chown postgres "$WORKDIR"
ETCD_PID=
declare -a NODE_DIRS=()

as_pg() { runuser -u postgres -- "$@"; }
psql_at() { as_pg $BIN/psql -h 127.0.0.1 -p "$1" -d postgres -X -qAt "${@:2}"; }

stop_all() {
	for d in "${NODE_DIRS[@]}"; do
		if [ -f "$d/postmaster.pid" ]; then
			pid=$(head -1 "$d/postmaster.pid")
			as_pg $BIN/pg_ctl -D "$d" stop -m immediate >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
		fi
	done
	NODE_DIRS=()
	if [ -n "$ETCD_PID" ]; then
		kill "$ETCD_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$ETCD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$ETCD_PID" 2>/dev/null || true
		wait "$ETCD_PID" 2>/dev/null || true
		ETCD_PID=
	fi
}
trap 'stop_all' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

start_cluster() {
	local run=$1 dir=$WORKDIR/run$run
	local ec=$((BASE_PORT)) ep=$((BASE_PORT + 1))
	mkdir -p "$dir"; chown postgres "$dir"
	if (exec 3<>/dev/tcp/127.0.0.1/$ec) 2>/dev/null; then
		echo "port $ec is already in use: choose another BASE_PORT" >&2
		return 1
	fi
	# etcd runs as root, as a direct child, so that $! is its own PID
	/usr/bin/etcd --name bench --data-dir "$dir/etcd" \
		--listen-client-urls http://127.0.0.1:$ec --advertise-client-urls http://127.0.0.1:$ec \
		--listen-peer-urls http://127.0.0.1:$ep --initial-advertise-peer-urls http://127.0.0.1:$ep \
		--initial-cluster bench=http://127.0.0.1:$ep >"$dir/etcd.log" 2>&1 &
	ETCD_PID=$!
	for _ in $(seq 1 100); do
		ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:$ec endpoint health >/dev/null 2>&1 && break
		sleep 0.1
	done
	for i in 1 2 3; do
		local port=$((BASE_PORT + 10 + i)) d=$dir/n$i
		NODE_DIRS+=("$d")
		if [ "$i" -eq 1 ]; then
			as_pg $BIN/initdb -D "$d" -A trust >/dev/null
		else
			as_pg $BIN/pg_basebackup -h 127.0.0.1 -p $((BASE_PORT + 11)) -D "$d" -R -X stream >/dev/null
		fi
		cat >>"$d/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_autoha'
autoha.etcd_endpoints = 'http://127.0.0.1:$ec'
autoha.cluster_name = 'bench$run'
autoha.node_name = 'n$i'
autoha.connect_address = '127.0.0.1:$port'
autoha.ttl = $TTL
autoha.loop_wait = $LOOP_WAIT
wal_log_hints = on
log_line_prefix = '%m [%p] '
EOF
		as_pg $BIN/pg_ctl -D "$d" -l "$dir/n$i.log" start >/dev/null
		if [ "$i" -eq 1 ]; then
			for _ in $(seq 1 200); do
				[ "$(psql_at $port -c 'SELECT 1' 2>/dev/null)" = 1 ] && break
				sleep 0.1
			done
			psql_at $port -c 'CREATE EXTENSION pg_autoha' -c 'CREATE TABLE t (id bigserial, at timestamptz DEFAULT now())'
			for _ in $(seq 1 200); do
				[ "$(psql_at $port -c 'SELECT is_leader FROM autoha_node()')" = t ] && break
				sleep 0.1
			done
		fi
	done
	# wait until every server lists all three members
	for _ in $(seq 1 300); do
		local ok=0
		for i in 1 2 3; do
			[ "$(psql_at $((BASE_PORT + 10 + i)) -c 'SELECT count(*) FROM autoha_status()' 2>/dev/null)" = 3 ] && ok=$((ok + 1))
		done
		[ $ok -eq 3 ] && return 0
		sleep 0.1
	done
	echo "cluster did not form; logs in $dir" >&2
	return 1
}

declare -a TIMES=()
RSS_KB=
USS_KB=
for run in $(seq 1 "$RUNS"); do
	echo "== run $run/$RUNS: starting etcd and 3 servers"
	start_cluster "$run"
	leader_port=$((BASE_PORT + 11))
	psql_at $leader_port -c "SELECT name, role, state, port, timeline, lsn, lag_bytes FROM autoha_status()" | sed 's/^/   /'
	worker_pid=$(psql_at $leader_port -c 'SELECT worker_pid FROM autoha_node()')
	# resident memory the worker does not share with the rest of the server
	# (plain RSS also counts the shared buffers it has touched)
	RSS_KB=$(ps -o rss= -p "$worker_pid" | tr -d ' ')
	USS_KB=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' /proc/"$worker_pid"/smaps_rollup)
	psql_at $leader_port -c 'INSERT INTO t DEFAULT VALUES'
	pm=$(head -1 "${NODE_DIRS[0]}/postmaster.pid")
	t0=$(date +%s.%N)
	kill -9 "$pm"
	winner=
	for _ in $(seq 1 1200); do
		for i in 2 3; do
			if psql_at $((BASE_PORT + 10 + i)) -c 'INSERT INTO t DEFAULT VALUES' >/dev/null 2>&1; then
				winner=n$i
				break 2
			fi
		done
		sleep 0.02
	done
	t1=$(date +%s.%N)
	if [ -z "$winner" ]; then
		echo "   no replica accepted a write within 60 s" >&2
		exit 1
	fi
	secs=$(echo "$t1 - $t0" | bc -l)
	TIMES+=("$secs")
	printf '   kill -9 of the leader; %s accepted a write after %.3f s\n' "$winner" "$secs"
	stop_all
done

sorted=$(printf '%s\n' "${TIMES[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
echo "== results (ttl ${TTL}s, loop_wait ${LOOP_WAIT}ms)"
printf '   runs: %s\n' "$(printf '%.3f ' "${TIMES[@]}")"
printf '   median time to first accepted write after kill -9 of the leader: %.3f s\n' "$median"
printf '   worker memory on the leader: %s KiB private (unshared), %s KiB RSS\n' "$USS_KB" "$RSS_KB"
rm -rf "$WORKDIR"
