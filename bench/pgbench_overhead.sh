#!/usr/bin/env bash
# bench/pgbench_overhead.sh — what loading pg_autoha costs a writing workload.
#
# One server, one data directory, alternating runs of the same pgbench
# (TPC-B-like, read-write) without pg_autoha in shared_preload_libraries and
# with it (leader of a one-member cluster on a local etcd, so every commit
# goes through the write fence's check).  Prints every run and the medians.
#
# Usage (as root, after `make install`): bash bench/pgbench_overhead.sh [rounds] [seconds]
# Environment: BASE_PORT (default 26500), CLIENTS (default 4), SCALE (default 10),
#   SYNC_COMMIT (default on; off takes WAL flushes out of the commit path, so
#   the runs are CPU-bound and show the commit-time check's own cost).
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-20}
BASE_PORT=${BASE_PORT:-26500}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
SYNC_COMMIT=${SYNC_COMMIT:-on}
PORT=$((BASE_PORT + 2))
EC=$BASE_PORT
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/cluster.sh
. "$SRC/bench/cluster.sh"

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
for p in $PORT $EC $((EC + 1)); do
	if port_in_use $p; then
		echo "port $p is in use: choose another BASE_PORT" >&2
		exit 2
	fi
done

W=$(mktemp -d /tmp/pg_autoha_pgbench.XXXXXX)
chown postgres "$W"
cleanup() {
	as_pg $BIN/pg_ctl -D "$W/data" stop -m fast >/dev/null 2>&1 || true
	etcd_stop
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

etcd_start "$W" "$EC" pgb

as_pg $BIN/initdb -D "$W/data" -A trust >/dev/null
cat >>"$W/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$W'
autoha.etcd_endpoints = 'http://127.0.0.1:$EC'
autoha.cluster_name = 'pgbench'
autoha.node_name = 'n1'
autoha.connect_address = '127.0.0.1:$PORT'
include_if_exists = 'preload.conf'
EOF

start() {  # start with|without
	if [ "$1" = with ]; then
		echo "shared_preload_libraries = 'pg_autoha'" >"$W/data/preload.conf"
	else
		: >"$W/data/preload.conf"
	fi
	chown postgres "$W/data/preload.conf"
	as_pg $BIN/pg_ctl -D "$W/data" -l "$W/pg.log" -w start >/dev/null
	# with pg_autoha: wait until the fence is down (new sessions read-write)
	wait_writable "$PORT" || exit 1
}
stop() { as_pg $BIN/pg_ctl -D "$W/data" stop -m fast >/dev/null; }

start without
as_pg $BIN/pgbench -h 127.0.0.1 -p $PORT -i -q -s "$SCALE" postgres >/dev/null 2>&1
stop

declare -a WITHOUT=() WITH=()
for r in $(seq 1 "$ROUNDS"); do
	for mode in without with; do
		start $mode
		tps=$(as_pg env PGOPTIONS="-c synchronous_commit=$SYNC_COMMIT" $BIN/pgbench -h 127.0.0.1 -p $PORT -c "$CLIENTS" -j 2 -T "$SECS" -n postgres 2>/dev/null |
			sed -n 's/^tps = \([0-9.]*\).*/\1/p')
		stop
		printf 'round %d %-7s pg_autoha: %s tps\n' "$r" "$mode" "$tps"
		if [ $mode = with ]; then WITH+=("$tps"); else WITHOUT+=("$tps"); fi
	done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mw=$(median "${WITHOUT[@]}")
mx=$(median "${WITH[@]}")
echo "== pgbench -c $CLIENTS -j 2 -T $SECS, scale $SCALE, synchronous_commit $SYNC_COMMIT, $ROUNDS rounds"
printf '   median without pg_autoha: %s tps\n   median with pg_autoha:    %s tps\n' "$mw" "$mx"
awk -v a="$mw" -v b="$mx" 'BEGIN {printf "   difference: %+.1f %%\n", (b - a) * 100 / a}'
