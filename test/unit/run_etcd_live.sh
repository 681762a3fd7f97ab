#!/bin/bash
#
# run_etcd_live.sh — run test_etcd_live against a throwaway etcd.
#
# Starts a single-member etcd on free ports of 127.0.0.1 in a temporary
# directory (over http, and over https with client certificates when
# openssl can make them), plus a TCP listener that accepts connections and
# never answers (for the timeout and abort tests), runs the test program with
#   <live url> <dead url> <hanging url> [<https url> <ca> <cert> <key>]
# and stops both processes by PID when it exits, whatever happens.
# Output is the test program's TAP; diagnostics go to stderr.
#
#   test/unit/run_etcd_live.sh [path/to/test_etcd_live]
#
# Environment: ETCD (default /usr/bin/etcd); VALGRIND, a command prefix for
# the test program (e.g. "valgrind --leak-check=full --error-exitcode=1").

set -u

here=$(cd "$(dirname "$0")" && pwd)
prog=${1:-$here/test_etcd_live}
etcd_bin=${ETCD:-/usr/bin/etcd}

if [ ! -x "$etcd_bin" ]; then
	echo "1..0 # SKIP no etcd binary at $etcd_bin"
	exit 0
fi
if [ ! -x "$prog" ]; then
	echo "Bail out! test program $prog not built"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/autoha-etcd-live.XXXXXX") || exit 1
etcd_pid=
hang_pid=
prog_pid=

cleanup()
{
	if [ -n "$prog_pid" ]; then
		kill "$prog_pid" 2>/dev/null
		wait "$prog_pid" 2>/dev/null
	fi
	if [ -n "$etcd_pid" ]; then
		kill "$etcd_pid" 2>/dev/null
		wait "$etcd_pid" 2>/dev/null
	fi
	if [ -n "$hang_pid" ]; then
		kill "$hang_pid" 2>/dev/null
		wait "$hang_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fail()
{
	echo "Bail out! $*"
	if [ -f "$tmp/etcd.log" ]; then
		sed 's/^/# etcd: /' "$tmp/etcd.log" | tail -n 30 >&2
	fi
	exit 1
}

# Four distinct free ports, held open together so they cannot repeat.
read -r client_port peer_port dead_port tls_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
') || fail "could not pick free ports"

live_url="http://127.0.0.1:$client_port"
dead_url="http://127.0.0.1:$dead_port"
tls_url="https://127.0.0.1:$tls_port"

# A CA, a server certificate for 127.0.0.1 and a client certificate, so
# that the same etcd also listens on https and demands client certificates.
make_certs()
{
	local d=$tmp/tls
	mkdir -p "$d" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=autoha-test-ca \
		-keyout "$d/ca.key" -out "$d/ca.crt" &&
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout "$d/server.key" -out "$d/server.csr" &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/server.ext" &&
	openssl x509 -req -days 2 -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -extfile "$d/server.ext" -out "$d/server.crt" &&
	openssl req -newkey rsa:2048 -nodes -subj /CN=root \
		-keyout "$d/client.key" -out "$d/client.csr" &&
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext" &&
	openssl x509 -req -days 2 -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -extfile "$d/client.ext" -out "$d/client.crt"
}

tls_args=()
if command -v openssl >/dev/null && make_certs >"$tmp/openssl.log" 2>&1; then
	tls_args=(--cert-file "$tmp/tls/server.crt" --key-file "$tmp/tls/server.key"
			  --trusted-ca-file "$tmp/tls/ca.crt" --client-cert-auth)
	client_urls="$live_url,$tls_url"
else
	echo "# openssl unavailable or failed: TLS is not tested" >&2
	tls_url=
	client_urls="$live_url"
fi

"$etcd_bin" --name live --data-dir "$tmp/etcd" \
	--listen-client-urls "$client_urls" --advertise-client-urls "$client_urls" \
	--listen-peer-urls "http://127.0.0.1:$peer_port" \
	--initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
	--initial-cluster "live=http://127.0.0.1:$peer_port" \
	--auth-token-ttl 1 "${tls_args[@]}" \
	>"$tmp/etcd.log" 2>&1 &
etcd_pid=$!

# A listener that accepts and then says nothing, ever.
python3 -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$tmp/hang.port" &
hang_pid=$!

# Wait (up to 30 s) until etcd serves a range and the listener is up.
ready=
for _ in $(seq 1 300); do
	kill -0 "$etcd_pid" 2>/dev/null || fail "etcd exited during startup"
	if [ -z "$ready" ] && python3 -c '
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/v3/kv/range", data=b"{\"key\":\"AA==\"}",
                             headers={"Content-Type": "application/json"})
sys.exit(0 if urllib.request.urlopen(req, timeout=1).status == 200 else 1)
' "$live_url" 2>/dev/null; then
		ready=1
	fi
	if [ -n "$ready" ] && [ -s "$tmp/hang.port" ]; then
		break
	fi
	sleep 0.1
done
[ -n "$ready" ] || fail "etcd did not answer at $live_url within 30 s"
[ -s "$tmp/hang.port" ] || fail "the hanging listener did not start"
hang_url="http://127.0.0.1:$(cat "$tmp/hang.port")"

# In the background, so that a signal to this script is handled at once.
tls_test_args=()
if [ -n "$tls_url" ]; then
	tls_test_args=("$tls_url" "$tmp/tls/ca.crt" "$tmp/tls/client.crt" "$tmp/tls/client.key")
fi
${VALGRIND:-} "$prog" "$live_url" "$dead_url" "$hang_url" "${tls_test_args[@]}" &
prog_pid=$!
wait "$prog_pid"
rc=$?
prog_pid=
if [ $rc -ne 0 ]; then
	echo "# etcd $live_url (pid $etcd_pid), dead $dead_url, hanging $hang_url" >&2
	sed 's/^/# etcd: /' "$tmp/etcd.log" | tail -n 20 >&2
fi
exit $rc
