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
	make -s -C "$SRC" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
	make -s -C "$SRC" install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
fi

WORKDIR=${WORKDIR:-$(mktemp -d /tmp/pg_autoha_failover.XXXXXX)}
chown postgres "$WORKDIR"
# shellcheck source=bench/cluster.sh
. "$SRC/bench/cluster.sh"
trap 'cluster_stop' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

declare -a TIMES=()
RSS_KB=
USS_KB=
for run in $(seq 1 "$RUNS"); do
	echo "== run $run/$RUNS: starting etcd and 3 servers"
	cluster_start "$WORKDIR/run$run" "$BASE_PORT" "bench$run" "$TTL" "$LOOP_WAIT"
	leader=$(leader_port)
	psql_at "$leader" -c 'CREATE TABLE t (id bigserial, at timestamptz DEFAULT now())'
	psql_at "$leader" -c "SELECT name, role, state, port, timeline, lsn, lag_bytes FROM autoha_status()" | sed 's/^/   /'
	worker_pid=$(psql_at "$leader" -c 'SELECT worker_pid FROM autoha_node()')
	# resident memory the worker does not share with the rest of the server
	# (plain RSS also counts the shared buffers it has touched)
	RSS_KB=$(ps -o rss= -p "$worker_pid" | tr -d ' ')
	USS_KB=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' /proc/"$worker_pid"/smaps_rollup)
	psql_at "$leader" -c 'INSERT INTO t DEFAULT VALUES'
	pm=$(postmaster_pid "$leader")
	t0=$(date +%s.%N)
	kill -9 "$pm"
	winner=
	for _ in $(seq 1 1200); do
		for port in "${CLUSTER_PORTS[@]}"; do
			[ "$port" = "$leader" ] && continue
			if psql_at "$port" -c 'INSERT INTO t DEFAULT VALUES' >/dev/null 2>&1; then
				winner=$port
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
	printf '   kill -9 of the leader; the server on port %s accepted a write after %.3f s\n' "$winner" "$secs"
	cluster_stop
done

sorted=$(printf '%s\n' "${TIMES[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
echo "== results (ttl ${TTL}s, loop_wait ${LOOP_WAIT}ms)"
printf '   runs: %s\n' "$(printf '%.3f ' "${TIMES[@]}")"
printf '   median time to first accepted write after kill -9 of the leader: %.3f s\n' "$median"
printf '   worker memory on the leader: %s KiB private (unshared), %s KiB RSS\n' "$USS_KB" "$RSS_KB"
rm -rf "$WORKDIR"
