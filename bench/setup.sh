# bench/setup.sh — sourced by the demo and the benchmark: install what is
# missing and build and install pg_autoha from the source tree in $SRC.
#
#   ensure_packages    install the missing Debian packages (as root), or print
#                      the exact apt-get line and fail (not root)
#   build_install      make and make install (warnings are shown, not fatal)

PG_CONFIG_15=/usr/lib/postgresql/15/bin/pg_config
SETUP_PACKAGES="make gcc libc6-dev postgresql-15 postgresql-server-dev-15
	etcd-server etcd-client libcurl4-openssl-dev libjansson-dev libkrb5-dev
	gnuplot-nox bc procps curl"

missing_packages() {
	local p
	for p in $SETUP_PACKAGES; do
		# any gnuplot flavour will do (gnuplot-qt, gnuplot-x11, gnuplot-nox)
		if [ "$p" = gnuplot-nox ] && command -v gnuplot >/dev/null; then
			continue
		fi
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

ensure_packages() {
	local missing
	missing=$(missing_packages | tr '\n' ' ' | sed 's/ *$//')
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "These Debian packages are missing. Install them as root, then run this again:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends $missing" >&2
		return 1
	fi
	echo "   installing: $missing"
	apt-get update -qq </dev/null >/dev/null
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing </dev/null >/dev/null
}

build_install() {
	make -s -C "$SRC" PG_CONFIG=$PG_CONFIG_15 >/dev/null
	make -s -C "$SRC" install PG_CONFIG=$PG_CONFIG_15 >/dev/null
}
