#!/usr/bin/env bash
# bench/pgbench_sync.sh — what synchronous replication costs a writing
# workload, with pg_autoha managing it.
#
# One cluster of three servers on a local etcd (bench/cluster.sh), and
# alternating runs of the same pgbench (TPC-B-like, read-write) against the
# leader with autoha.synchronous_mode = off (synchronous_standby_names
# empty: commits wait for the local WAL flush only) and = on (the leader
# names one synchronous standby: every commit also waits for that standby's
# flush).  synchronous_commit stays at its default, on.  Before each run the
# leader's synchronous_standby_names and pg_stat_replication are checked to
# be in the state the mode promises.  Prints every run and the medians.
#
# Usage (as root, after `make install`): bash bench/pgbench_sync.sh [rounds] [seconds]
# Environment: BASE_PORT (default 26700: etcd on it and the next port, the
#   servers on BASE_PORT+11..13), CLIENTS (default 4), SCALE (default 10).
set -euo pipefail

ROUNDS=${1:-3}
SECS=${2:-20}
BASE_PORT=${BASE_PORT:-26700}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/cluster.sh
. "$SRC/bench/cluster.sh"

for v in ROUNDS SECS BASE_PORT CLIENTS SCALE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v=${!v}: must be a whole number" >&2; exit 2; }
done
if [ "$ROUNDS" -lt 1 ] || [ "$SECS" -lt 1 ]; then
	echo "rounds and seconds must be at least 1" >&2
	exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
for p in $BASE_PORT $((BASE_PORT + 1)) $((BASE_PORT + 11)) $((BASE_PORT + 12)) $((BASE_PORT + 13)); do
	if port_in_use "$p"; then
		echo "port $p is in use: choose another BASE_PORT" >&2
		exit 2
	fi
done

W=$(mktemp -d /tmp/pg_autoha_pgbench_sync.XXXXXX)
chown postgres "$W"
cleanup() {
	cluster_stop
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ttl 4 s, loop_wait 500 ms: the failover benchmark's defaults
cluster_start "$W/c" "$BASE_PORT" pgbsync 4 500

# wait_mode MODE: until the leader's synchronous_standby_names and its WAL
# senders show MODE in effect (off: no name, no synchronous sender; on: one
# standby named, exactly one sender synchronous).  Prints the leader's port
# and synchronous_standby_names.
wait_mode() {
	local mode=$1 port names nsync
	for _ in $(seq 1 300); do
		port=$(leader_port || true)
		if [ -n "$port" ]; then
			names=$(psql_at "$port" -c 'SHOW synchronous_standby_names' 2>/dev/null || echo '?')
			nsync=$(psql_at "$port" -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')" 2>/dev/null || echo '?')
			if [ "$mode" = off ]; then
				[ -z "$names" ] && [ "$nsync" = 0 ] && { echo "$port"; return 0; }
			else
				# one standby: '"n2"' as pg_autoha writes it
				[[ $names =~ ^\"[^\"]+\"$ ]] && [ "$nsync" = 1 ] && { echo "$port $names"; return 0; }
			fi
		fi
		sleep 0.1
	done
	echo "autoha.synchronous_mode $mode did not take effect: leader ${port:-none}, synchronous_standby_names '${names:-}', $nsync synchronous senders" >&2
	return 1
}

leader=$(leader_port) || { echo "no leader" >&2; exit 1; }
as_pg $BIN/pgbench -h 127.0.0.1 -p "$leader" -i -q -s "$SCALE" postgres >/dev/null 2>&1

declare -a OFF=() ON=()
for r in $(seq 1 "$ROUNDS"); do
	for mode in off on; do
		cluster_set_sync $mode
		state=$(wait_mode $mode) || exit 1
		read -r leader names <<<"$state"
		# the same starting point for every run: no dirty buffers from the last
		psql_at "$leader" -c CHECKPOINT
		tps=$(as_pg $BIN/pgbench -h 127.0.0.1 -p "$leader" -c "$CLIENTS" -j 2 -T "$SECS" -n postgres 2>"$W/pgbench.err" |
			sed -n 's/^tps = \([0-9.]*\).*/\1/p') || true
		if [ -z "$tps" ]; then
			echo "pgbench failed (round $r, synchronous_mode $mode):" >&2
			tail -5 "$W/pgbench.err" >&2
			exit 1
		fi
		# still in the promised state after the run (no standby dropped out)
		wait_mode $mode >/dev/null
		printf 'round %d synchronous_mode %-3s (synchronous_standby_names %s): %s tps\n' \
			"$r" "$mode" "${names:-''}" "$tps"
		if [ $mode = on ]; then ON+=("$tps"); else OFF+=("$tps"); fi
	done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
moff=$(median "${OFF[@]}")
mon=$(median "${ON[@]}")
echo "== pgbench -c $CLIENTS -j 2 -T $SECS, scale $SCALE, 3 servers, synchronous_commit on, $ROUNDS rounds"
printf '   median synchronous_mode off: %s tps\n   median synchronous_mode on:  %s tps\n' "$moff" "$mon"
awk -v a="$moff" -v b="$mon" 'BEGIN {printf "   difference: %+.1f %% (on against off)\n", (b - a) * 100 / a}'
