#!/usr/bin/env bash
# pg_autoha: the whole test suite on a fresh Debian 12, run as root.
#
#   bash test/run_all.sh
#
# 1. apt-get install of the build and test dependencies (SKIP_APT=1 skips it)
# 2. make (must be warning-free), make install, make unit (C unit tests)
# 3. a temporary etcd and a temporary PostgreSQL 15 server with pg_autoha
#    preloaded, on free ports of 127.0.0.1, in a temporary directory
# 4. make installcheck as the postgres OS user: pg_regress (sql/pg_autoha.sql)
#    against that server, then prove over test/t/*.pl (each TAP test starts
#    its own etcd and servers)
# 5. stop the temporary server and etcd by PID (always, in a trap), print a
#    summary line, exit non-zero on any failure.
#
# Environment:
#   SKIP_APT=1       do not run apt-get (quick local reruns)
#   SKIP_UNIT=1      do not run make unit
#   SKIP_TAP=1       run pg_regress only (make installcheck with no TAP tests)
#   PROVE_TESTS=...  TAP test files to run (default: test/t/*.pl)
#   KEEP_TMP=1       keep the temporary directory (server and etcd logs)
#   TEST_USER=...    OS user that runs the servers and tests (default postgres)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TEST_USER=${TEST_USER:-postgres}
PGBIN=/usr/lib/postgresql/15/bin
export PATH="$PGBIN:$PATH"
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

log() { printf '\n=== %s: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '\nrun_all.sh: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (apt-get, make install, runuser)"

# ---------------------------------------------------------------- packages
if [ "${SKIP_APT:-0}" != 1 ]; then
	log "installing packages"
	apt-get update </dev/null
	apt-get install -y --no-install-recommends </dev/null \
		make gcc libc6-dev \
		postgresql-15 postgresql-server-dev-15 libipc-run-perl \
		etcd-server etcd-client \
		libcurl4-openssl-dev libjansson-dev libkrb5-dev pkg-config \
		patroni
fi

command -v pg_config >/dev/null || die "pg_config not found"
case "$(pg_config --version)" in
	"PostgreSQL 15"*) ;;
	*) die "pg_config is not PostgreSQL 15: $(command -v pg_config): $(pg_config --version)" ;;
esac
for b in etcd etcdctl prove runuser; do
	command -v "$b" >/dev/null || die "$b not found"
done
id "$TEST_USER" >/dev/null 2>&1 || die "OS user $TEST_USER does not exist"

# Results for the summary line.
R_BUILD=skipped R_UNIT=skipped R_REGRESS=skipped R_TAP=skipped
FAILED=0
summary() {
	printf '\nSUMMARY: build=%s unit=%s regress=%s tap=%s => %s\n' \
		"$R_BUILD" "$R_UNIT" "$R_REGRESS" "$R_TAP" \
		"$([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
}

# ---------------------------------------------------------------- cleanup
TMP=""
TESTROOT=""
ETCD_PID=""
PG_PID=""
alive() {  # alive PID: running, and not a zombie waiting for an absent reaper
	kill -0 "$1" 2>/dev/null || return 1
	! grep -q ') Z ' "/proc/$1/stat" 2>/dev/null
}
stop_pid() {  # stop_pid PID NAME SIGNAL: signal, wait up to 30 s, then SIGKILL
	local pid=$1 name=$2 sig=$3 i
	[ -n "$pid" ] || return 0
	alive "$pid" || return 0
	echo "stopping $name (pid $pid)"
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	echo "$name (pid $pid) did not stop, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	stop_pid "$PG_PID" "temporary PostgreSQL server" INT   # fast shutdown
	stop_pid "$ETCD_PID" "temporary etcd" TERM
	[ -n "$ETCD_PID" ] && wait "$ETCD_PID" 2>/dev/null
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ] || [ "$FAILED" != 0 ] || [ "$rc" != 0 ]; then
			echo "temporary directory kept: $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	if [ -n "$TESTROOT" ] && [ "$TESTROOT" != "$ROOT" ] && [ -d "$TESTROOT" ]; then
		if [ "$FAILED" = 0 ] && [ "$rc" = 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$TESTROOT"; else echo "test copy of the tree kept: $TESTROOT"; fi
	fi
	[ "$rc" != 0 ] && FAILED=1
	summary
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- build
log "make (pg_config: $(command -v pg_config), $(pg_config --version))"
make -s clean >/dev/null 2>&1 || true
BUILD_LOG=$(mktemp /tmp/pg_autoha_build.XXXXXX)
R_BUILD=FAIL
if ! make 2>&1 | tee "$BUILD_LOG"; then
	rm -f "$BUILD_LOG"
	FAILED=1; die "make failed"
fi
if grep -Eiq 'warning:' "$BUILD_LOG"; then
	echo "--- compiler warnings:"
	grep -Ei 'warning:' "$BUILD_LOG"
	rm -f "$BUILD_LOG"
	FAILED=1; die "make is not warning-free"
fi
rm -f "$BUILD_LOG"
log "make install"
make install || { FAILED=1; die "make install failed"; }
R_BUILD=PASS

if [ "${SKIP_UNIT:-0}" != 1 ]; then
	log "make unit"
	if make unit; then R_UNIT=PASS; else R_UNIT=FAIL; FAILED=1; fi
fi

# ---------------------------------------------------------------- test tree
# The tests write tmp_check/ and results/ into the tree, as $TEST_USER.
chown -R "$TEST_USER" "$ROOT"
TESTROOT=$ROOT
if ! runuser -u "$TEST_USER" -- test -w "$ROOT" -a -r "$ROOT/Makefile"; then
	# e.g. the checkout is under /root: test a copy instead
	TESTROOT=$(mktemp -d /tmp/pg_autoha_tree.XXXXXX)
	cp -a "$ROOT/." "$TESTROOT/"
	chown -R "$TEST_USER" "$TESTROOT"
	chmod 755 "$TESTROOT"
	echo "$TEST_USER cannot write $ROOT: testing a copy in $TESTROOT"
fi

# ---------------------------------------------------------------- free ports
# A port nothing listens on (127.0.0.1), outside both the range PostgreSQL::Test::
# Cluster picks from (10200-32767) and the usual ephemeral range (32768-60999),
# so neither the TAP tests nor outgoing connections can collide with it.
USED_PORTS=""
free_port() {  # free_port VAR: sets VAR to a free port
	local var=$1 p i
	for ((i = 0; i < 500; i++)); do
		p=$((61000 + RANDOM % 4000))
		case " $USED_PORTS " in *" $p "*) continue ;; esac
		if perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 1, ReuseAddr => 1) ? 0 : 1)' "$p"; then
			USED_PORTS="$USED_PORTS $p"
			printf -v "$var" '%s' "$p"
			return 0
		fi
	done
	die "no free port found"
}

TMP=$(mktemp -d /tmp/pg_autoha_run.XXXXXX)
chmod 755 "$TMP"
cd "$TMP"   # a directory the test user can enter, whatever the checkout path
free_port ETCD_PORT
free_port ETCD_PEER_PORT
free_port PGPORT
ETCD_EP="http://127.0.0.1:$ETCD_PORT"

# ---------------------------------------------------------------- etcd
log "starting a temporary etcd on $ETCD_EP (data: $TMP/etcd)"
# keep packaging defaults (/etc/default/etcd) out of it
(
	for v in $(env | sed -n 's/^\(ETCD[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
	exec etcd --name regress --data-dir "$TMP/etcd" \
		--listen-client-urls "$ETCD_EP" --advertise-client-urls "$ETCD_EP" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "regress=http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster-state new --initial-cluster-token "regress-$ETCD_PORT"
) </dev/null >"$TMP/etcd.log" 2>&1 &
ETCD_PID=$!
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="$ETCD_EP" --dial-timeout=2s --command-timeout=4s "$@"; }
ok=0
for ((i = 0; i < 300; i++)); do
	kill -0 "$ETCD_PID" 2>/dev/null || break
	if etcdctl_ endpoint health >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.2
done
if [ "$ok" != 1 ]; then
	tail -n 50 "$TMP/etcd.log"
	FAILED=1; die "temporary etcd did not become healthy"
fi
echo "etcd pid $ETCD_PID healthy"

# ---------------------------------------------------------------- postgres
PGDATA_T="$TMP/pgdata"
log "starting a temporary PostgreSQL 15 server on 127.0.0.1:$PGPORT (data: $PGDATA_T)"
chown "$TEST_USER" "$TMP"
runuser -u "$TEST_USER" -- initdb -D "$PGDATA_T" -A trust -N -U "$TEST_USER" >"$TMP/initdb.log" 2>&1 ||
	{ cat "$TMP/initdb.log"; FAILED=1; die "initdb failed"; }
cat >>"$PGDATA_T/postgresql.conf" <<EOF

# added by test/run_all.sh
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
shared_preload_libraries = 'pg_autoha'
autoha.etcd_endpoints = '$ETCD_EP'
autoha.cluster_name = 'regress'
autoha.node_name = 'regress1'
autoha.connect_address = '127.0.0.1:$PGPORT'
autoha.replication_conninfo = 'user=$TEST_USER'
max_prepared_transactions = 4
log_line_prefix = '%m [%p] %q%a '
EOF
if ! runuser -u "$TEST_USER" -- pg_ctl -D "$PGDATA_T" -l "$TMP/postgresql.log" -w -t 60 start; then
	tail -n 50 "$TMP/postgresql.log" || true
	FAILED=1; die "the temporary server did not start"
fi
PG_PID=$(head -n 1 "$PGDATA_T/postmaster.pid")
echo "postgres pid $PG_PID"

# Let its worker take the leader key first (the server is fenced until then).
for ((i = 0; i < 150; i++)); do
	[ "$(etcdctl_ get --print-value-only /service/regress/leader 2>/dev/null)" = regress1 ] && break
	sleep 0.2
done
# ...and has lowered its write fence: new sessions are then read-write.
for ((i = 0; i < 150; i++)); do
	[ "$(runuser -u "$TEST_USER" -- psql -X -At -h 127.0.0.1 -p "$PGPORT" -d postgres \
		-c 'SHOW default_transaction_read_only' 2>/dev/null)" = off ] && break
	sleep 0.2
done
if [ "$(etcdctl_ get --print-value-only /service/regress/leader 2>/dev/null)" = regress1 ]; then
	echo "regress1 holds the leader key"
else
	echo "WARNING: after 30 s regress1 does not hold /service/regress/leader; keys:"
	etcdctl_ get --prefix /service/regress/ || true
	tail -n 30 "$TMP/postgresql.log" || true
fi

# ---------------------------------------------------------------- installcheck
IC_LOG="$TMP/installcheck.log"
run_ic() {  # run_ic [make variables...]
	local rc=0
	runuser -u "$TEST_USER" -- env PATH="$PATH" PGHOST=127.0.0.1 PGPORT="$PGPORT" \
		PGUSER="$TEST_USER" \
		make -C "$TESTROOT" installcheck ${PROVE_TESTS:+"PROVE_TESTS=$PROVE_TESTS"} "$@" </dev/null 2>&1 | tee -a "$IC_LOG" || rc=$?
	return "$rc"
}
tap_result() {  # from the prove output in $IC_LOG
	if grep -q '^Result: PASS' "$IC_LOG"; then
		R_TAP="PASS($(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 files, \2 tests/p' "$IC_LOG" | tail -n 1))"
	else
		local failed total
		failed=$(sed -n 's#^test/t/\([^ ]*\)\.pl *(Wstat.*#\1#p' "$IC_LOG" | sort -u | tr '\n' ' ' | sed 's/ *$//')
		total=$(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 files, \2 tests/p' "$IC_LOG" | tail -n 1)
		R_TAP="FAIL(${failed:-prove did not finish}; ${total:-no summary})"
		FAILED=1
	fi
}
print_tap_failures() {
	local t f
	for t in $(sed -n 's#^\(test/t/[^ ]*\.pl\) .*(Wstat.*#\1#p' "$IC_LOG" | sort -u); do
		f="$TESTROOT/tmp_check/log/regress_log_$(basename "$t" .pl)"
		echo "---------------- $t: results, notes and diagnostics from $f"
		if [ -f "$f" ]; then
			grep -E '^\[[^]]*\]\([^)]*\) (ok|not ok|#)' "$f" | grep -v '# Checking port' | tail -n 200
		else
			echo "(no log)"
		fi
	done
	echo "---------------- (all TAP logs, server and etcd logs: $TESTROOT/tmp_check/log/)"
	# A digest last, where a shortened copy of this output still shows it:
	# each failed check with its first diagnostic lines, and what the
	# servers' workers warned about or logged as a rewind.
	for t in $(sed -n 's#^\(test/t/[^ ]*\.pl\) .*(Wstat.*#\1#p' "$IC_LOG" | sort -u); do
		f="$TESTROOT/tmp_check/log/regress_log_$(basename "$t" .pl)"
		[ -f "$f" ] || continue
		echo "---------------- digest of $t: failed checks"
		sed -E 's/^\[[^]]*\]\([^)]*\) //' "$f" |
			awk '/^not ok/ { n = 4; print; next } /^ *$/ { next } n > 0 && /^#/ { n--; print; next } { n = 0 }' |
			cut -c1-300 | head -n 40
		echo "---------------- digest of $t: worker warnings and rewinds"
		cat "$TESTROOT"/tmp_check/log/"$(basename "$t" .pl)"_*.log 2>/dev/null |
			grep -E 'WARNING:  pg_autoha|pg_autoha: (rewind|switchover: [0-9]+ bytes)|cancelled the switchover' |
			cut -c1-300 | tail -n 15
	done
}

: >"$IC_LOG"
rm -f "$TESTROOT/regression.diffs" "$TESTROOT/regression.out"
if [ "${SKIP_TAP:-0}" = 1 ]; then
	log "make installcheck (pg_regress only)"
	if run_ic TAP_TESTS=; then R_REGRESS=PASS; else R_REGRESS=FAIL; FAILED=1; fi
else
	log "make installcheck (pg_regress, then TAP tests)"
	if run_ic; then
		R_REGRESS=PASS
		tap_result
	elif [ -f "$TESTROOT/regression.diffs" ] || ! grep -q '^+++ tap install-check' "$IC_LOG"; then
		# pg_regress failed, so make never reached prove: run the TAP tests alone
		R_REGRESS=FAIL; FAILED=1
		log "pg_regress failed; running the TAP tests on their own"
		run_ic REGRESS= || true
		tap_result
	else
		R_REGRESS=PASS
		tap_result
	fi
fi

if [ "$R_REGRESS" = FAIL ]; then
	echo "================ regression diffs"
	if [ -s "$TESTROOT/regression.diffs" ]; then
		cat "$TESTROOT/regression.diffs"
	else
		echo "(no regression.diffs)"
	fi
	for out in "$TESTROOT"/results/*.out; do
		[ -f "$out" ] || continue
		exp="$TESTROOT/expected/$(basename "$out")"
		if [ ! -f "$exp" ]; then
			echo "================ $exp is missing; the output was ($out):"
			cat "$out"
		fi
	done
	echo "================ tail of the temporary server log ($TMP/postgresql.log)"
	tail -n 80 "$TMP/postgresql.log" || true
fi
case "$R_TAP" in FAIL*) echo "================ failed TAP tests"; print_tap_failures ;; esac

[ "$FAILED" = 0 ]
