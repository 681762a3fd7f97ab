#!/usr/bin/env bash
# bench/fault.sh — inject one fault into the local server whose data
# directory is given; the drill runs it as its --fault-cmd.
#
#   bash bench/fault.sh postmaster DATADIR      kill -9 of the postmaster only:
#       its children see it die, and pg_autoha's worker revokes the lease
#   bash bench/fault.sh node DATADIR            kill -9 of every process of the
#       server at once (frozen first, so none of them can react): the lease
#       must expire by itself, as when a machine dies
#   bash bench/fault.sh freeze DATADIR [SECS]   SIGSTOP of every process of the
#       server, SIGCONT SECS seconds later (default 30) from a detached
#       background process; returns at once
#   bash bench/fault.sh switchover DATADIR      a planned handover: SELECT
#       autoha_switchover() on that server (the leader), to the best replica;
#       prints the new leader's name
#
# Only PIDs read from DATADIR/postmaster.pid and their children are signalled.
set -euo pipefail

kind=${1:?usage: fault.sh postmaster|node|freeze|switchover DATADIR [SECS]}
datadir=${2:?usage: fault.sh postmaster|node|freeze|switchover DATADIR [SECS]}
secs=${3:-30}

if [ ! -f "$datadir/postmaster.pid" ]; then
	echo "fault.sh: no postmaster.pid in $datadir: is the server running?" >&2
	exit 1
fi
pm=$(head -1 "$datadir/postmaster.pid")
if [ "$kind" = switchover ]; then
	port=$(sed -n 4p "$datadir/postmaster.pid")
	new=$(/usr/lib/postgresql/15/bin/psql -X -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "SELECT autoha_switchover()")
	echo "fault.sh: switchover from port $port to $new"
	exit 0
fi
if [ "$kind" = postmaster ]; then
	# first, before anything slower: the drill times the fault from our start
	kill -9 "$pm"
	echo "fault.sh: killed postmaster $pm"
	exit 0
fi
# shellcheck disable=SC2207
children=($(ps -o pid= --ppid "$pm" || true))

case "$kind" in
	node)
		kill -STOP "$pm" "${children[@]}"
		kill -9 "$pm" "${children[@]}"
		echo "fault.sh: killed postmaster $pm and its ${#children[@]} children"
		;;
	freeze)
		kill -STOP "$pm" "${children[@]}"
		# children first, the postmaster last: it then finds them running
		setsid bash -c "sleep $secs; kill -CONT ${children[*]} $pm" </dev/null >/dev/null 2>&1 &
		echo "fault.sh: froze postmaster $pm and its ${#children[@]} children for $secs s"
		;;
	*)
		echo "fault.sh: unknown fault \"$kind\": use postmaster, node, freeze or switchover" >&2
		exit 2
		;;
esac
