#!/usr/bin/env bash
# bench/demo.sh — pg_autoha's main job in two minutes: `make demo` runs it.
#
# Installs what is missing, builds and installs pg_autoha, starts a local etcd
# and three PostgreSQL 15 servers on 127.0.0.1 in a fresh temporary directory
# (as the postgres OS user), prints autoha_status(), runs pg_autoha_drill with
# a fault injected into the leader, prints autoha_status() again and the
# drill's report, plots rows per server over time, and stops everything it
# started, also on Ctrl-C or when a step fails.
#
# Settings (environment; `make demo` passes its variables of the same name):
#   DEMO_PORT   base port (default 25400): etcd on it and +1, servers on +11..+13
#   DEMO_DIR    working directory for data and logs (default: a fresh
#               mktemp -d; removed at the end unless KEEP=1)
#   DEMO_OUT    where the report, CSV and plot are kept (default ./demo-results)
#   FAULT       postmaster (kill -9 of the leader's postmaster, the default),
#               node (kill -9 of every process of the leader),
#               freeze (SIGSTOP of the leader for FREEZE_SECS, then SIGCONT) or
#               switchover (a planned handover: SELECT autoha_switchover())
#   SYNC        off (default) or on: autoha.synchronous_mode = on (pg_autoha keeps
#               synchronous_standby_names and the sync key)
#   FAULT_AT    second of the fault (default 10); DURATION of the drill
#               (default FAULT_AT + 20, or FAULT_AT + FREEZE_SECS + 15 for freeze)
#   FREEZE_SECS (default 30); RATE writes/s (default 100); WRITERS (default 4)
#   TTL (s, default 4), LOOP_WAIT (ms, default 500): the lease settings
#   KEEP=1      keep DEMO_DIR (server and etcd logs)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_PORT=${DEMO_PORT:-25400}
DEMO_OUT=${DEMO_OUT:-$PWD/demo-results}
FAULT=${FAULT:-postmaster}
SYNC=${SYNC:-off}
FAULT_AT=${FAULT_AT:-10}
FREEZE_SECS=${FREEZE_SECS:-30}
RATE=${RATE:-100}
WRITERS=${WRITERS:-4}
TTL=${TTL:-4}
LOOP_WAIT=${LOOP_WAIT:-500}
if [ "$FAULT" = freeze ]; then
	DURATION=${DURATION:-$((FAULT_AT + FREEZE_SECS + 15))}
else
	DURATION=${DURATION:-$((FAULT_AT + 20))}
fi

step=${step:-0}
say() { step=$((step + 1)); printf '\n== [%d/7] %s\n' "$step" "$*"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

case "$FAULT" in postmaster | node | freeze | switchover) ;; *) die "FAULT=$FAULT: use postmaster, node, freeze or switchover" ;; esac
case "$SYNC" in on | off) ;; *) die "SYNC=$SYNC: use on or off" ;; esac
for v in DEMO_PORT FAULT_AT FREEZE_SECS DURATION RATE WRITERS TTL LOOP_WAIT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: must be a whole number"
done
[ "$DEMO_PORT" -ge 1024 ] && [ "$DEMO_PORT" -le 65500 ] || die "DEMO_PORT=$DEMO_PORT: use 1024..65500"

# shellcheck source=bench/cluster.sh
. "$SRC/bench/cluster.sh"

if [ -z "${DEMO_STEPS:-}" ]; then
	# shellcheck source=bench/setup.sh
	. "$SRC/bench/setup.sh"
	say "checking packages"
	ensure_packages || exit 1
	[ "$(id -u)" -eq 0 ] || die "run as root (sudo make demo): the servers run as the postgres OS user through runuser, and make install writes to PostgreSQL's directories"

	say "building and installing pg_autoha"
	build_install

	DEMO_DIR=${DEMO_DIR:-$(mktemp -d /tmp/pg_autoha_demo.XXXXXX)}
	mkdir -p "$DEMO_DIR" "$DEMO_OUT"
	chown postgres "$DEMO_DIR"

	# The remaining steps run as this script again, in a session of their
	# own, while this shell only waits: a Ctrl-C then reaches this shell
	# alone, which stops those steps and every server and etcd they started
	# (found from DEMO_DIR).  Run in the foreground, a Ctrl-C that a child
	# such as psql handles itself would leave bash carrying on.
	interrupted() {
		trap - INT TERM
		echo
		echo "demo: interrupted, stopping everything"
		kill -TERM -- "-$STEPS_PID" 2>/dev/null || true
		for _ in $(seq 1 10); do
			kill -0 "$STEPS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$STEPS_PID" 2>/dev/null || true
		wait "$STEPS_PID" 2>/dev/null || true
		# a server whose pg_ctl start was cut short writes its pid file late
		sleep 0.5
		cluster_stop_dir "$DEMO_DIR"
		echo "demo: data and logs kept in $DEMO_DIR"
		exit 130
	}
	trap interrupted INT TERM
	DEMO_STEPS=1 DEMO_DIR=$DEMO_DIR DEMO_OUT=$DEMO_OUT DURATION=$DURATION step=$step \
		setsid bash "${BASH_SOURCE[0]}" &
	STEPS_PID=$!
	rc=0
	wait "$STEPS_PID" || rc=$?
	if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
		echo "demo: data and logs kept in $DEMO_DIR"
	else
		rm -rf "$DEMO_DIR"
	fi
	exit $rc
fi

# ---- the steps, in their own session; stop what they start on any exit
trap cluster_stop EXIT
trap 'exit 143' TERM

say "starting etcd and three servers in $DEMO_DIR (ttl ${TTL}s, loop_wait ${LOOP_WAIT}ms, synchronous: $SYNC)"
cluster_start "$DEMO_DIR" "$DEMO_PORT" demo "$TTL" "$LOOP_WAIT"
# until pg_autoha manages it (issue #6): one of the two replicas confirms
# every commit
[ "$SYNC" = off ] || cluster_set_sync on

status() {
	local port out
	for port in "${CLUSTER_PORTS[@]}"; do
		if out=$(as_pg $BIN/psql -h 127.0.0.1 -p "$port" -d postgres -X -q -P footer=off -c \
			"SELECT name, role, state, host || ':' || port AS address, timeline, lsn, lag_bytes, sync_state FROM autoha_status() ORDER BY name" \
			2>/dev/null); then
			sed 's/^/   /' <<<"$out"
			return 0
		fi
	done
	echo "   (no server answered)"
}
# replicas publish their position once a loop: let the view catch up
for _ in $(seq 1 50); do
	[ "$(psql_at "${CLUSTER_PORTS[0]}" -c 'SELECT coalesce(max(lag_bytes), 0) < 1048576 FROM autoha_status()' 2>/dev/null)" = t ] && break
	sleep 0.1
done
say "autoha_status() before the fault"
status
leader=$(leader_port) || die "no leader"
leader_dir=$(node_dir "$leader")

say "pg_autoha_drill: ${RATE} writes/s for ${DURATION}s; at ${FAULT_AT}s fault \"$FAULT\" on the leader (port $leader)"
dsn=$(cluster_dsn)
set +e
/usr/lib/postgresql/15/bin/pg_autoha_drill --dsn "$dsn" --rate "$RATE" --writers "$WRITERS" \
	--duration "$DURATION" --fault-at "$FAULT_AT" \
	--fault-cmd "bash '$SRC/bench/fault.sh' $FAULT '$leader_dir' $FREEZE_SECS" \
	--csv "$DEMO_OUT/drill.csv" | tee "$DEMO_OUT/report.txt"
drill_rc=${PIPESTATUS[0]}
set -e
[ "$drill_rc" -le 1 ] || die "the drill failed (exit $drill_rc)"

say "autoha_status() after the fault"
status

say "plotting rows per server"
# (a server that never was primary has no primary marks: not worth a warning)
gnuplot -e "csv='$DEMO_OUT/drill.csv'; png='$DEMO_OUT/drill.png'; fault=$FAULT_AT" "$SRC/drill/plot.gp" \
	2> >(grep -v 'Skipping data file with no valid points' >&2)
echo "   $DEMO_OUT/drill.png (report: $DEMO_OUT/report.txt, samples: $DEMO_OUT/drill.csv)"

line=$(grep '^drill:' "$DEMO_OUT/report.txt")
lost=$(sed 's/.* lost=\([0-9]*\).*/\1/' <<<"$line")
gap=$(sed 's/.* max_gap_after_fault_ms=\([0-9]*\).*/\1/' <<<"$line")
split=$(sed 's/.* nonleader_acks_after_takeover=\([0-9]*\).*/\1/' <<<"$line")
printf '\n== done: writes stopped for %s ms at most; %s acknowledged writes lost; %s acknowledged by a second server\n' \
	"$gap" "$lost" "$split"
if [ "$lost" -gt 0 ] && [ "$SYNC" = off ]; then
	echo "   (asynchronous replication: a commit acknowledged in the instant of the fault"
	echo "   may not have reached a replica; make demo SYNC=on loses none)"
fi
