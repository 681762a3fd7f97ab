# bench/cluster.sh — sourced by the demo and the benchmarks: a local etcd and
# three PostgreSQL 15 servers with pg_autoha on 127.0.0.1, started and
# stopped by PID.  Needs root (servers run as the postgres OS user).
#
#   cluster_start DIR BASE_PORT NAME TTL LOOP_WAIT
#       etcd on BASE_PORT (peer BASE_PORT+1); servers n1..n3 on
#       BASE_PORT+11..13, n1 the first leader, n2 and n3 its replicas.
#       Sets CLUSTER_PORTS (array), NODE_DIRS (array), ETCD_PID.
#   cluster_set_sync [MODE]      autoha.synchronous_mode = MODE (on) on every
#       server (ALTER SYSTEM + reload), then wait until the leader's sync key
#       lists a standby (MODE off: until it lists none)
#   cluster_stop                 stop everything cluster_start started
#   cluster_stop_dir DIR         the same, found from DIR alone (postmaster.pid
#       files and etcd.pid): for a shell other than the one that started it
#   cluster_layout DIR BASE_PORT set NODE_DIRS and CLUSTER_PORTS as
#       cluster_start does, for a shell other than the one that started it
#   etcd_start DIR PORT NAME / etcd_stop    just the etcd part
#   wait_writable PORT           until new sessions there are read-write
#   leader_port                  the port of the server that leads now
#   node_dir PORT                that server's data directory
#   cluster_dsn                  a multi-host connection string to every server

BIN=/usr/lib/postgresql/15/bin
ETCD_PID=
declare -a NODE_DIRS=()
declare -a CLUSTER_PORTS=()

as_pg() { runuser -u postgres -- "$@"; }
psql_at() { as_pg $BIN/psql -h 127.0.0.1 -p "$1" -d postgres -X -qAt "${@:2}"; }

port_in_use() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

cluster_stop() {
	local d pid
	for d in "${NODE_DIRS[@]}"; do
		# a rejoin in progress (pg_autoha_rejoin --restart, started by the
		# worker) would start the server again behind our back: stop it
		# first, by the PIDs of the processes running it for this directory
		for pid in $(pgrep -f -x ".*pg_autoha_rejoin -D $d --restart" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null || true
		done
		if [ -f "$d/postmaster.pid" ]; then
			pid=$(head -1 "$d/postmaster.pid")
			# a frozen server cannot stop: wake it first
			kill -CONT "$pid" $(ps -o pid= --ppid "$pid" 2>/dev/null) 2>/dev/null || true
			as_pg $BIN/pg_ctl -D "$d" stop -m immediate >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
		fi
	done
	NODE_DIRS=()
	CLUSTER_PORTS=()
	etcd_stop
}

cluster_stop_dir() {
	local dir=$1 d
	NODE_DIRS=()
	for d in "$dir"/n*; do
		[ -d "$d" ] && NODE_DIRS+=("$d")
	done
	[ -f "$dir/etcd.pid" ] && ETCD_PID=$(cat "$dir/etcd.pid")
	cluster_stop
}

cluster_layout() {
	local dir=$1 base=$2 i
	NODE_DIRS=()
	CLUSTER_PORTS=()
	for i in 1 2 3; do
		NODE_DIRS+=("$dir/n$i")
		CLUSTER_PORTS+=($((base + 10 + i)))
	done
}

# etcd_start DIR CLIENT_PORT NAME: a one-member etcd (peer port CLIENT_PORT+1)
# running as root, in a session of its own like the servers pg_ctl starts
# (a Ctrl-C in the terminal must not kill it behind our back: it is stopped
# by PID), as a direct child, so that ETCD_PID is its own PID
etcd_start() {
	local dir=$1 ec=$2 name=$3 ep=$(($2 + 1))
	setsid /usr/bin/etcd --name "$name" --data-dir "$dir/etcd" \
		--listen-client-urls http://127.0.0.1:$ec --advertise-client-urls http://127.0.0.1:$ec \
		--listen-peer-urls http://127.0.0.1:$ep --initial-advertise-peer-urls http://127.0.0.1:$ep \
		--initial-cluster "$name=http://127.0.0.1:$ep" >"$dir/etcd.log" 2>&1 &
	ETCD_PID=$!
	echo "$ETCD_PID" >"$dir/etcd.pid"
	for _ in $(seq 1 100); do
		ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:$ec endpoint health >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "etcd did not become healthy; see $dir/etcd.log" >&2
	return 1
}

etcd_stop() {
	[ -n "$ETCD_PID" ] || return 0
	kill "$ETCD_PID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$ETCD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$ETCD_PID" 2>/dev/null || true
	wait "$ETCD_PID" 2>/dev/null || true
	ETCD_PID=
}

# wait until a new session on PORT is read-write: the server leads and its
# write fence is down
wait_writable() {
	local port=$1
	for _ in $(seq 1 300); do
		[ "$(psql_at "$port" -c 'SHOW default_transaction_read_only' 2>/dev/null)" = off ] && return 0
		sleep 0.1
	done
	echo "the server on port $port never became writable" >&2
	return 1
}

cluster_start() {
	local dir=$1 base=$2 name=$3 ttl=$4 loop_wait=$5
	local ec=$base ep=$((base + 1)) i port d ok=0
	for port in $ec $ep $((base + 11)) $((base + 12)) $((base + 13)); do
		if port_in_use $port; then
			echo "port $port is already in use: choose other ports" >&2
			return 1
		fi
	done
	mkdir -p "$dir"
	chown postgres "$dir"
	etcd_start "$dir" "$ec" "$name" || return 1
	for i in 1 2 3; do
		port=$((base + 10 + i))
		d=$dir/n$i
		NODE_DIRS+=("$d")
		CLUSTER_PORTS+=("$port")
		if [ "$i" -eq 1 ]; then
			as_pg $BIN/initdb -D "$d" -A trust >/dev/null
		else
			as_pg $BIN/pg_basebackup -h 127.0.0.1 -p $((base + 11)) -D "$d" -R -X stream >/dev/null
		fi
		cat >>"$d/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_autoha'
autoha.etcd_endpoints = 'http://127.0.0.1:$ec'
autoha.cluster_name = '$name'
autoha.node_name = 'n$i'
autoha.connect_address = '127.0.0.1:$port'
autoha.ttl = $ttl
autoha.loop_wait = $loop_wait
wal_log_hints = on
log_line_prefix = '%m [%p] '
EOF
		as_pg $BIN/pg_ctl -D "$d" -l "$dir/n$i.log" start >/dev/null
		if [ "$i" -eq 1 ]; then
			# fenced at birth: the first write waits for the confirmed lease
			wait_writable "$port" || return 1
			psql_at "$port" -c 'CREATE EXTENSION pg_autoha'
		fi
	done
	# wait until every server lists all three members
	for _ in $(seq 1 300); do
		ok=0
		for port in "${CLUSTER_PORTS[@]}"; do
			[ "$(psql_at "$port" -c 'SELECT count(*) FROM autoha_status()' 2>/dev/null)" = 3 ] && ok=$((ok + 1))
		done
		[ $ok -eq 3 ] && break
		sleep 0.1
	done
	if [ $ok -ne 3 ]; then
		echo "the cluster did not form; logs in $dir" >&2
		return 1
	fi
	# and until both replicas stream from the leader (a replica's first
	# attempt may come before the leader created its slot: the WAL receiver
	# then retries after wal_retrieve_retry_interval, 5 s by default)
	for _ in $(seq 1 300); do
		[ "$(psql_at $((base + 11)) -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)" = 2 ] && return 0
		sleep 0.1
	done
	echo "the replicas do not stream; logs in $dir" >&2
	return 1
}

cluster_set_sync() {
	local port mode=${1:-on} want=1
	[ "$mode" = off ] && want=0
	for port in "${CLUSTER_PORTS[@]}"; do
		psql_at "$port" -c "ALTER SYSTEM SET autoha.synchronous_mode = '$mode'" -c 'SELECT pg_reload_conf()' >/dev/null
	done
	# wait until the leader has a synchronous standby in the sync key (off:
	# until the key is gone)
	for _ in $(seq 1 100); do
		port=$(leader_port || true)
		[ -n "$port" ] && [ "$(psql_at "$port" -c "SELECT coalesce(cardinality(sync_standbys), 0) FROM autoha_node()" 2>/dev/null)" = $want ] && return 0
		sleep 0.1
	done
	if [ $want = 0 ]; then
		echo "synchronous replication did not stop" >&2
	else
		echo "synchronous replication did not start" >&2
	fi
	return 1
}

leader_port() {
	local port
	for port in "${CLUSTER_PORTS[@]}"; do
		if [ "$(psql_at "$port" -c 'SELECT is_leader AND NOT fenced FROM autoha_node()' 2>/dev/null)" = t ]; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

node_dir() {
	local port=$1 i
	for i in "${!CLUSTER_PORTS[@]}"; do
		if [ "${CLUSTER_PORTS[$i]}" = "$port" ]; then
			echo "${NODE_DIRS[$i]}"
			return 0
		fi
	done
	return 1
}

# a libpq connection string listing every server, for the drill
cluster_dsn() {
	echo "host=$(printf '127.0.0.1,%.0s' "${CLUSTER_PORTS[@]}" | sed 's/,$//') port=$(IFS=,; echo "${CLUSTER_PORTS[*]}") dbname=postgres user=postgres"
}
