#!/usr/bin/env bash
# bench/failover_bench.sh — the failover benchmark: `make bench` runs it.
#
# For every replication mode and fault, RUNS times: a fresh local etcd and
# three servers (bench/cluster.sh), pg_autoha_drill writing through a
# multi-host DSN, the fault injected into the leader FAULT_AT seconds in
# (bench/fault.sh), and the drill's audit.  Then the worker's memory and CPU
# while idle, pgbench TPS without and with pg_autoha on one server
# (bench/pgbench_overhead.sh), and pgbench TPS on three servers with
# autoha.synchronous_mode off and on (bench/pgbench_sync.sh).  Prints a
# Markdown table and keeps it, every drill report and every CSV in OUT.
#
# Faults: postmaster  kill -9 of the leader's postmaster
#         node        kill -9 of every process of the leader (no lease release)
#         freeze      SIGSTOP of every process of the leader for FREEZE_SECS
# Modes:  async       no synchronous replication
#         sync        autoha.synchronous_mode = on, managed by pg_autoha
#                     (the leader names one synchronous standby)
#
# Environment (make bench passes make variables of these names):
#   RUNS (5), MODES ("async sync"), FAULTS ("postmaster node freeze switchover"),
#   BASE_PORT (26600; the pgbench parts use BASE_PORT+100..+102 and
#   BASE_PORT+200..+213),
#   TTL (4 s), LOOP_WAIT (500 ms), RATE (100 writes/s), WRITERS (4),
#   FAULT_AT (5 s), FREEZE_SECS (30), IDLE_SECS (30),
#   PGBENCH_ROUNDS (5, 0 skips pgbench), PGBENCH_SECS (10): one server with
#   synchronous_commit off and on, three with autoha.synchronous_mode off
#   and on,
#   OUT (./bench-results), SKIP_INSTALL=1 (no package check, build, install)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
MODES=${MODES:-async sync}
FAULTS=${FAULTS:-postmaster node freeze switchover}
BASE_PORT=${BASE_PORT:-26600}
TTL=${TTL:-4}
LOOP_WAIT=${LOOP_WAIT:-500}
RATE=${RATE:-100}
WRITERS=${WRITERS:-4}
FAULT_AT=${FAULT_AT:-5}
FREEZE_SECS=${FREEZE_SECS:-30}
IDLE_SECS=${IDLE_SECS:-30}
PGBENCH_ROUNDS=${PGBENCH_ROUNDS:-5}
PGBENCH_SECS=${PGBENCH_SECS:-10}
OUT=${OUT:-$PWD/bench-results}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
for m in $MODES; do case "$m" in async | sync) ;; *) die "MODES: unknown mode $m (async, sync)" ;; esac; done
for f in $FAULTS; do case "$f" in postmaster | node | freeze | switchover) ;; *) die "FAULTS: unknown fault $f (postmaster, node, freeze, switchover)" ;; esac; done
for v in RUNS BASE_PORT TTL LOOP_WAIT RATE WRITERS FAULT_AT FREEZE_SECS IDLE_SECS PGBENCH_ROUNDS PGBENCH_SECS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: must be a whole number"
done
[ "$RUNS" -ge 1 ] || die "RUNS must be at least 1"

# shellcheck source=bench/setup.sh
. "$SRC/bench/setup.sh"
if [ -z "${SKIP_INSTALL:-}" ]; then
	ensure_packages || exit 1
	[ "$(id -u)" -eq 0 ] || die "run as root: servers run as the postgres OS user"
	echo "== building and installing pg_autoha"
	build_install
fi
[ "$(id -u)" -eq 0 ] || die "run as root: servers run as the postgres OS user"

# shellcheck source=bench/cluster.sh
. "$SRC/bench/cluster.sh"
WORK=$(mktemp -d /tmp/pg_autoha_bench.XXXXXX)
chown postgres "$WORK"
mkdir -p "$OUT"
trap 'cluster_stop; rm -rf "$WORK"' EXIT
trap 'echo "bench: interrupted"; exit 130' INT TERM

field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<" $2"; }
stats() {	# median min max of the arguments
	printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1}
		END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%d %d %d", m, a[1], a[NR]}'
}
sum() { local s=0 x; for x in "$@"; do s=$((s + x)); done; echo $s; }

TABLE=$OUT/results.md
started=$(date -u '+%Y-%m-%d %H:%M UTC')
{
	echo "Failover benchmark, $started, $(nproc) cores, PostgreSQL $($BIN/postgres -V | awk '{print $3}'), etcd $(etcd --version | awk '/etcd Version/ {print $3}')."
	echo "ttl ${TTL} s, loop_wait ${LOOP_WAIT} ms; drill: ${RATE} writes/s by ${WRITERS} writers, 2 s client timeout, fault at ${FAULT_AT} s; ${RUNS} runs each."
	echo "Unavailability: the longest stretch without an acknowledged write after the fault."
	echo
	echo "| mode | fault | unavailability median (min–max), ms | lost acknowledged (all runs) | indeterminate (median) | acked in flight at the fault (all runs) | acked by a non-leader after the takeover (all runs) | runs with two writable primaries |"
	echo "|---|---|---|---|---|---|---|---|"
} >"$TABLE"

for mode in $MODES; do
	for fault in $FAULTS; do
		if [ "$fault" = freeze ]; then duration=$((FAULT_AT + FREEZE_SECS + 10)); else duration=$((FAULT_AT + 15)); fi
		declare -a gaps=() lost=() indet=() inflight=() split=()
		twop=0
		for run in $(seq 1 "$RUNS"); do
			tag=$mode-$fault-$run
			cluster_start "$WORK/$tag" "$BASE_PORT" "b$run" "$TTL" "$LOOP_WAIT"
			[ "$mode" = async ] || cluster_set_sync on
			leader=$(leader_port) || die "$tag: no leader"
			leader_dir=$(node_dir "$leader")
			dsn=$(cluster_dsn)
			rc=0
			$BIN/pg_autoha_drill --quiet --dsn "$dsn" --rate "$RATE" --writers "$WRITERS" \
				--duration "$duration" --fault-at "$FAULT_AT" \
				--fault-cmd "bash '$SRC/bench/fault.sh' $fault '$leader_dir' $FREEZE_SECS" \
				--csv "$OUT/$tag.csv" >"$OUT/$tag.txt" 2>"$OUT/$tag.err" || rc=$?
			[ $rc -le 1 ] || die "$tag: the drill failed (exit $rc): $(tail -3 "$OUT/$tag.err")"
			line=$(grep '^drill:' "$OUT/$tag.txt")
			gaps+=("$(field max_gap_after_fault_ms "$line")")
			lost+=("$(field lost "$line")")
			indet+=("$(field indeterminate "$line")")
			inflight+=("$(field inflight_acks_after_fault "$line")")
			split+=("$(field nonleader_acks_after_takeover "$line")")
			[ "$(field two_primaries "$line")" = yes ] && twop=$((twop + 1))
			printf '%-6s %-10s run %d: unavailable %5s ms, lost %s, indeterminate %s, in flight %s, non-leader after takeover %s, two primaries %s\n' \
				"$mode" "$fault" "$run" "${gaps[-1]}" "${lost[-1]}" "${indet[-1]}" "${inflight[-1]}" "${split[-1]}" "$(field two_primaries "$line")"
			cluster_stop
			rm -rf "${WORK:?}/$tag"
		done
		read -r gmed gmin gmax <<<"$(stats "${gaps[@]}")"
		read -r imed _ _ <<<"$(stats "${indet[@]}")"
		printf '| %s | %s | %d (%d–%d) | %d | %d | %d | %d | %d of %d |\n' \
			"$mode" "$fault" "$gmed" "$gmin" "$gmax" "$(sum "${lost[@]}")" "$imed" \
			"$(sum "${inflight[@]}")" "$(sum "${split[@]}")" "$twop" "$RUNS" >>"$TABLE"
		unset gaps lost indet inflight split
	done
done

# the worker while nothing happens: memory and CPU on the leader and a replica
echo "== idle worker: ${IDLE_SECS} s"
cluster_start "$WORK/idle" "$BASE_PORT" idle "$TTL" "$LOOP_WAIT"
sleep 2
ticks=$(getconf CLK_TCK)
# etcd's own count of the KV and lease calls it served (the JSON gateway
# turns each HTTP request into one)
etcd_calls() {
	curl -s "http://127.0.0.1:$BASE_PORT/metrics" |
		awk '/^grpc_server_started_total\{.*grpc_service="etcdserverpb\.(KV|Lease)"/ {s += $2} END {print s + 0}'
}
calls0=$(etcd_calls)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A WPID=() T0=()
for port in "${CLUSTER_PORTS[0]}" "${CLUSTER_PORTS[1]}"; do
	WPID[$port]=$(psql_at "$port" -c 'SELECT worker_pid FROM autoha_node()')
	T0[$port]=$(cpu_ticks "${WPID[$port]}")
done
sleep "$IDLE_SECS"
calls=$(($(etcd_calls) - calls0))
{
	echo
	echo "Idle worker (ttl ${TTL} s, loop_wait ${LOOP_WAIT} ms, ${IDLE_SECS} s):"
	awk -v c="$calls" -v s="$IDLE_SECS" -v n="${#CLUSTER_PORTS[@]}" \
		'BEGIN {printf "- etcd requests: %.1f per second per server (%d servers)\n", c / s / n, n}'
	for port in "${CLUSTER_PORTS[0]}" "${CLUSTER_PORTS[1]}"; do
		pid=${WPID[$port]}
		role=$(psql_at "$port" -c 'SELECT role FROM autoha_node()')
		used=$(($(cpu_ticks "$pid") - T0[$port]))
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
		private=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$pid/smaps_rollup")
		awk -v r="$role" -v u="$used" -v t="$ticks" -v s="$IDLE_SECS" -v rss="$rss" -v p="$private" \
			'BEGIN {printf "- %s: CPU %.2f %% of one core; %d KiB private (unshared), %d KiB RSS\n", r, u * 100 / (t * s), p, rss}'
	done
} | tee -a "$TABLE"
cluster_stop

if [ "$PGBENCH_ROUNDS" -gt 0 ]; then
	# synchronous_commit off makes the runs CPU-bound: that isolates the
	# commit-time check; with it on, the runs wait on this disk's fsyncs
	for sc in off on; do
		echo "== pgbench without and with pg_autoha, synchronous_commit $sc"
		SYNC_COMMIT=$sc BASE_PORT=$((BASE_PORT + 100)) bash "$SRC/bench/pgbench_overhead.sh" \
			"$PGBENCH_ROUNDS" "$PGBENCH_SECS" | tee "$OUT/pgbench-$sc.txt"
		{
			echo
			echo "pgbench (TPC-B-like, 4 clients, scale 10, synchronous_commit $sc, ${PGBENCH_ROUNDS} rounds of ${PGBENCH_SECS} s, one server):"
			awk '/median without|median with/ {sub(/:$/, "", $3); printf "- %s %s %s: %.0f tps\n", $1, $2, $3, $(NF - 1)}
				/difference/ {sub(/^ +/, ""); print "- " $0}
				/^round/ {r = r sprintf(" %.0f", $(NF - 1))}
				END {print "- every round, alternating without/with:" r}' "$OUT/pgbench-$sc.txt"
		} >>"$TABLE"
	done

	# the price of a synchronous standby: every commit also waits for its
	# flush (synchronous_commit on, the default)
	echo "== pgbench with synchronous replication off and on (3 servers)"
	BASE_PORT=$((BASE_PORT + 200)) bash "$SRC/bench/pgbench_sync.sh" \
		"$PGBENCH_ROUNDS" "$PGBENCH_SECS" | tee "$OUT/pgbench-sync.txt"
	{
		echo
		echo "pgbench with synchronous replication off and on (TPC-B-like, 4 clients, scale 10, synchronous_commit on, ${PGBENCH_ROUNDS} rounds of ${PGBENCH_SECS} s, 3 servers, against the leader):"
		echo
		echo "| autoha.synchronous_mode | median tps | every round |"
		echo "|---|---|---|"
		awk '/^round/ {sub(/:$/, "", $4); r[$4] = r[$4] sprintf(" %.0f", $(NF - 1))}
			/median synchronous_mode/ {sub(/:$/, "", $3); m[$3] = $(NF - 1)}
			/difference/ {sub(/^ +difference: /, ""); d = $0}
			END {
				printf "| off | %.0f |%s |\n", m["off"], r["off"]
				printf "| on (one synchronous standby) | %.0f |%s |\n", m["on"], r["on"]
				print ""
				print "- difference: " d
			}' "$OUT/pgbench-sync.txt"
	} >>"$TABLE"
fi

echo
echo "== results ($TABLE)"
cat "$TABLE"
