/*-------------------------------------------------------------------------
 *
 * node.c
 *	  Effects on this server: observe it, promote it, point it at a leader,
 *	  keep replication slots for the other members, prepare it to come back
 *	  as a replica, start pg_autoha_rejoin to rewind it.
 *
 * Everything that touches PostgreSQL's state lives here so that the
 * decision (ha.c) stays pure and the loop (worker.c) stays readable.
 * Functions that can raise an ERROR inside PostgreSQL (ALTER SYSTEM, slot
 * creation) catch it and report it through errbuf: a failed effect is a
 * reason to retry on the next loop, never to take the worker down.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/timeline.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "catalog/pg_control.h"
#include "catalog/pg_type.h"
#include "common/controldata_utils.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgwriter.h"
#include "postmaster/postmaster.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "replication/walreceiver.h"
#include "replication/walsender_private.h"
#include "storage/spin.h"
#include "storage/standby.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"

#include "dcs.h"
#include "node.h"
#include "pg_autoha.h"
#include "syncset.h"

void
node_observe(LocalState *local)
{
	local->in_recovery = RecoveryInProgress();
	snprintf(local->sysid, sizeof(local->sysid), UINT64_FORMAT,
			 GetSystemIdentifier());
	local->nofailover = autoha_nofailover;
	local->failover_priority = autoha_failover_priority;
	local->maximum_lag = (uint64) autoha_maximum_lag_on_failover;
	local->use_pg_rewind = autoha_use_pg_rewind;

	if (local->in_recovery)
	{
		TimeLineID	replay_tli = 0;
		TimeLineID	receive_tli = 0;
		WalRcvState state;

		local->replay_lsn = GetXLogReplayRecPtr(&replay_tli);
		local->receive_lsn = GetWalRcvFlushRecPtr(NULL, &receive_tli);
		local->receive_timeline = local->receive_lsn != InvalidXLogRecPtr ? receive_tli : 0;
		local->timeline = replay_tli;
		local->write_lsn = InvalidXLogRecPtr;

		SpinLockAcquire(&WalRcv->mutex);
		state = WalRcv->walRcvState;
		SpinLockRelease(&WalRcv->mutex);
		local->streaming = (state == WALRCV_STREAMING);
	}
	else
	{
#if PG_VERSION_NUM >= 150000
		local->write_lsn = GetFlushRecPtr(NULL);
		local->timeline = GetWALInsertionTimeLine();
#else
		local->write_lsn = GetFlushRecPtr();
		local->timeline = ThisTimeLineID;
#endif
		local->replay_lsn = local->write_lsn;
		local->receive_lsn = local->write_lsn;
		local->streaming = false;
	}
}

/*
 * autoha.connect_address, or the first concrete listen address and our
 * port: what other members put in primary_conninfo to reach us.
 */
void
node_connect_address(char *host, size_t hostlen, int *port)
{
	if (autoha_connect_address != NULL && autoha_connect_address[0] != '\0')
	{
		const char *colon = strrchr(autoha_connect_address, ':');
		size_t		n = colon - autoha_connect_address;

		if (n >= hostlen)
			n = hostlen - 1;
		memcpy(host, autoha_connect_address, n);
		host[n] = '\0';
		/* [v6]:port */
		if (host[0] == '[' && n >= 2 && host[n - 1] == ']')
		{
			memmove(host, host + 1, n - 2);
			host[n - 2] = '\0';
		}
		*port = atoi(colon + 1);
		return;
	}

	host[0] = '\0';
	if (ListenAddresses != NULL)
	{
		const char *p = ListenAddresses;
		size_t		n;

		while (*p == ' ')
			p++;
		n = strcspn(p, ", ");
		if (n > 0 && n < hostlen && strncmp(p, "*", n) != 0 &&
			strncmp(p, "0.0.0.0", n) != 0 && strncmp(p, "::", n) != 0)
		{
			memcpy(host, p, n);
			host[n] = '\0';
		}
	}
	if (host[0] == '\0' && gethostname(host, hostlen) != 0)
		strlcpy(host, "localhost", hostlen);
	host[hostlen - 1] = '\0';
	*port = PostPortNumber;
}

bool
node_request_promotion(char *errbuf, size_t errlen)
{
	FILE	   *f;

	/* the same two steps as pg_promote(), without its wait */
	f = AllocateFile(PROMOTE_SIGNAL_FILE, "w");
	if (f == NULL)
	{
		snprintf(errbuf, errlen, "could not create file \"%s\": %m",
				 PROMOTE_SIGNAL_FILE);
		return false;
	}
	if (FreeFile(f) != 0)
	{
		snprintf(errbuf, errlen, "could not write file \"%s\": %m",
				 PROMOTE_SIGNAL_FILE);
		unlink(PROMOTE_SIGNAL_FILE);
		return false;
	}
	if (kill(PostmasterPid, SIGUSR1) != 0)
	{
		snprintf(errbuf, errlen, "could not signal the postmaster to promote: %m");
		unlink(PROMOTE_SIGNAL_FILE);
		return false;
	}
	return true;
}

/* Append key='value' to buf, quoted the way libpq's conninfo parser wants. */
static void
append_conninfo_value(StringInfo buf, const char *key, const char *value)
{
	const char *p;

	appendStringInfo(buf, "%s%s='", buf->len > 0 ? " " : "", key);
	for (p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

static char *
conninfo_for(const MemberInfo *leader)
{
	StringInfoData buf;
	char		port[16];

	initStringInfo(&buf);
	snprintf(port, sizeof(port), "%d", leader->port);
	append_conninfo_value(&buf, "host", leader->host);
	append_conninfo_value(&buf, "port", port);
	append_conninfo_value(&buf, "application_name", autoha_node_name);
	if (autoha_replication_conninfo != NULL && autoha_replication_conninfo[0] != '\0')
		appendStringInfo(&buf, " %s", autoha_replication_conninfo);
	return buf.data;
}

void
node_followed_member(const ClusterView *view, char *name, size_t len)
{
	int			i;

	name[0] = '\0';
	if (PrimaryConnInfo == NULL || PrimaryConnInfo[0] == '\0')
		return;
	for (i = 0; i < view->nmembers; i++)
	{
		char	   *want = conninfo_for(&view->members[i]);

		if (strcmp(want, PrimaryConnInfo) == 0)
		{
			strlcpy(name, view->members[i].name, len);
			pfree(want);
			return;
		}
		pfree(want);
	}
}

/* ALTER SYSTEM SET name = 'value', without the SQL (it refuses SPI). */
static void
alter_system_set(const char *name, const char *value)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);
	A_Const    *arg = makeNode(A_Const);

#if PG_VERSION_NUM >= 150000
	arg->val.sval.type = T_String;
	arg->val.sval.sval = pstrdup(value);
#else
	arg->val.type = T_String;
	arg->val.val.str = pstrdup(value);
#endif
	arg->location = -1;

	set->kind = VAR_SET_VALUE;
	set->name = pstrdup(name);
	set->args = list_make1(arg);
	stmt->setstmt = set;

	AlterSystemSetConfigFile(stmt);
}

/* ALTER SYSTEM RESET name */
static void
alter_system_reset(const char *name)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);

	set->kind = VAR_RESET;
	set->name = pstrdup(name);
	stmt->setstmt = set;

	AlterSystemSetConfigFile(stmt);
}

/*
 * Run fn inside a transaction; an ERROR is caught, the transaction aborted
 * and the message copied into errbuf.
 */
static bool
run_in_transaction(void (*fn) (void *arg), void *arg, bool need_snapshot,
				   char *errbuf, size_t errlen)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		StartTransactionCommand();
		if (need_snapshot)
			PushActiveSnapshot(GetTransactionSnapshot());
		fn(arg);
		if (need_snapshot)
			PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		snprintf(errbuf, errlen, "%s", edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	return ok;
}

typedef struct FollowArgs
{
	const char *conninfo;
	const char *slot;
} FollowArgs;

static void
follow_in_transaction(void *arg)
{
	FollowArgs *args = (FollowArgs *) arg;

	alter_system_set("primary_conninfo", args->conninfo);
	alter_system_set("primary_slot_name", args->slot);
}

/*
 * The conninfo we last wrote with ALTER SYSTEM.  Our own copy of the
 * settings only changes when this process handles the reload it triggered,
 * so until then don't write the same thing again.
 */
static char requested[1024] = "";
/* the same for synchronous_standby_names ("" is a value: hence the flag) */
static bool sync_names_requested = false;
static char requested_sync_names[SYNC_NAMES_LEN + 1] = "";

/*
 * How often a replica that is not streaming wakes the startup process to
 * try again: often enough to pick up a new leader at once, not so often
 * that a dead leader floods the log with refused connections while the
 * worker polls at election speed.
 */
#define WAKEUP_EVERY_US		250000
static int64 last_wakeup_us = 0;

void
node_settings_reloaded(void)
{
	requested[0] = '\0';
	sync_names_requested = false;
}

bool
node_follow(const MemberInfo *leader, bool streaming, char *errbuf, size_t errlen)
{
	FollowArgs	args;
	char		slot[NAMEDATALEN];

	errbuf[0] = '\0';
	dcs_slot_name(autoha_node_name, slot, sizeof(slot));
	args.conninfo = conninfo_for(leader);
	args.slot = slot;

	if (PrimaryConnInfo != NULL && strcmp(PrimaryConnInfo, args.conninfo) == 0 &&
		PrimarySlotName != NULL && strcmp(PrimarySlotName, slot) == 0)
	{
		requested[0] = '\0';

		/*
		 * Pointed right but not streaming: the WAL receiver's last attempt
		 * failed (typically because the leader had not created our slot
		 * yet) and the startup process sleeps wal_retrieve_retry_interval
		 * (5 s) before the next one.  Wake it so that it retries now; the
		 * worker's loop paces the attempts.
		 */
		if (!streaming && fence_now_us() - last_wakeup_us >= WAKEUP_EVERY_US)
		{
			WakeupRecovery();
			last_wakeup_us = fence_now_us();
		}
		return false;
	}

	/* already asked for this; the reload has not reached us yet */
	if (strcmp(requested, args.conninfo) == 0)
		return false;

	if (!run_in_transaction(follow_in_transaction, &args, false, errbuf, errlen))
		return false;
	strlcpy(requested, args.conninfo, sizeof(requested));

	/*
	 * The reload makes the startup process restart the WAL receiver with the
	 * new settings; recovery_target_timeline = 'latest' (the default) lets
	 * it follow the new leader's timeline without a restart.
	 */
	if (kill(PostmasterPid, SIGHUP) != 0)
	{
		snprintf(errbuf, errlen, "could not signal the postmaster to reload: %m");
		return false;
	}
	ereport(LOG,
			(errmsg("pg_autoha: now following leader \"%s\" at %s:%d through slot \"%s\"",
					leader->name, leader->host, leader->port, slot)));
	return true;
}

typedef struct SlotArgs
{
	const char *slot;
} SlotArgs;

static void
create_slot_in_transaction(void *arg)
{
	SlotArgs   *args = (SlotArgs *) arg;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = CStringGetTextDatum(args->slot);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT pg_catalog.pg_create_physical_replication_slot($1::name, true)",
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	SPI_finish();
}

int
node_ensure_slots(const ClusterView *view, const char *self,
				  char *errbuf, size_t errlen)
{
	int			created = 0;
	int			i;

	errbuf[0] = '\0';
	for (i = 0; i < view->nmembers; i++)
	{
		char		slot[NAMEDATALEN];
		SlotArgs	args;

		if (strcmp(view->members[i].name, self) == 0)
			continue;
		dcs_slot_name(view->members[i].name, slot, sizeof(slot));
		if (SearchNamedReplicationSlot(slot, true) != NULL)
			continue;
		args.slot = slot;
		if (!run_in_transaction(create_slot_in_transaction, &args, true,
								errbuf, errlen))
			return -1;
		ereport(LOG,
				(errmsg("pg_autoha: created physical replication slot \"%s\" for member \"%s\"",
						slot, view->members[i].name)));
		created++;
	}
	return created;
}

typedef struct TerminateArgs
{
	int			spare_pid;		/* 0: none */
	int			terminated;
} TerminateArgs;

static void
terminate_in_transaction(void *arg)
{
	TerminateArgs *args = (TerminateArgs *) arg;
	int			rc;
	bool		isnull;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(args->spare_pid);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) "
							   "FROM pg_catalog.pg_stat_activity "
							   "WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid() "
							   "AND pid <> $1",
							   1, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not list client sessions: %s", SPI_result_code_string(rc));
	args->terminated = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
}

int
node_terminate_client_sessions(int spare_pid, char *errbuf, size_t errlen)
{
	TerminateArgs args = {0};

	args.spare_pid = spare_pid;
	errbuf[0] = '\0';
	if (!run_in_transaction(terminate_in_transaction, &args, true, errbuf, errlen))
		return -1;
	return args.terminated;
}

/* ---------- switchover, demotion, rewind ---------- */

static void
writers_in_transaction(void *arg)
{
	int		   *n = (int *) arg;
	int			rc;
	bool		isnull;

	SPI_connect();
	rc = SPI_execute("SELECT count(*) FROM pg_catalog.pg_stat_activity "
					 "WHERE backend_type = 'client backend' AND backend_xid IS NOT NULL "
					 "AND pid <> pg_catalog.pg_backend_pid()",
					 true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not list client sessions: %s", SPI_result_code_string(rc));
	*n = (int) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
}

int
node_client_writers(char *errbuf, size_t errlen)
{
	int			n = 0;

	errbuf[0] = '\0';
	if (!run_in_transaction(writers_in_transaction, &n, true, errbuf, errlen))
		return -1;
	return n;
}

typedef struct ReplicaPositionArgs
{
	const char *name;
	bool		found;
	uint64		flush;
	uint64		replay;
} ReplicaPositionArgs;

static void
replica_position_in_transaction(void *arg)
{
	ReplicaPositionArgs *args = (ReplicaPositionArgs *) arg;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = CStringGetTextDatum(args->name);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT flush_lsn, replay_lsn FROM pg_catalog.pg_stat_replication "
							   "WHERE application_name = $1 AND state = 'streaming' "
							   "ORDER BY replay_lsn DESC NULLS LAST LIMIT 1",
							   1, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_replication: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d;

		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		args->flush = isnull ? 0 : DatumGetLSN(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		args->replay = isnull ? 0 : DatumGetLSN(d);
		args->found = true;
	}
	SPI_finish();
}

bool
node_replica_position(const char *name, uint64 *flush, uint64 *replay,
					  char *errbuf, size_t errlen)
{
	ReplicaPositionArgs args;

	memset(&args, 0, sizeof(args));
	args.name = name;
	errbuf[0] = '\0';
	if (!run_in_transaction(replica_position_in_transaction, &args, true, errbuf, errlen))
		return false;
	if (!args.found)
	{
		snprintf(errbuf, errlen, "member \"%s\" is not streaming from this server", name);
		return false;
	}
	*flush = args.flush;
	*replay = args.replay;
	return true;
}

uint64
node_flush_position(void)
{
#if PG_VERSION_NUM >= 150000
	return GetFlushRecPtr(NULL);
#else
	return GetFlushRecPtr();
#endif
}

/*
 * Flush everything inserted into WAL so far and return the flush position.
 * A session the fence has just terminated inserts its abort record without
 * flushing it (the WAL writer would, within wal_writer_delay): a switchover
 * target must receive it before it takes over, or this server's WAL ends
 * past the new timeline's start and it needs pg_rewind to rejoin.
 */
uint64
node_flush_all(void)
{
	XLogRecPtr	insert = GetXLogInsertRecPtr();

	/*
	 * On a page that nothing has reached yet, the insert position points
	 * just past the page header: flushing that far would ask for WAL nobody
	 * generated.  Everything inserted then ends at the page boundary.  (Any
	 * byte on the page, the tail of a record from the page before included,
	 * puts the position further.)
	 */
	if (XLogSegmentOffset(insert, wal_segment_size) == SizeOfXLogLongPHD ||
		(XLogSegmentOffset(insert, wal_segment_size) > XLOG_BLCKSZ &&
		 insert % XLOG_BLCKSZ == SizeOfXLogShortPHD))
		insert -= insert % XLOG_BLCKSZ;
	XLogFlush(insert);
	return node_flush_position();
}

/*
 * Ask the checkpointer for an immediate checkpoint, without waiting for it:
 * a spread checkpoint in progress finishes at full speed, then a new one
 * runs.  Returns the WAL position that new checkpoint's redo point is at or
 * past, for node_checkpoint_done().
 */
uint64
node_request_checkpoint(void)
{
	XLogRecPtr	from = GetXLogInsertRecPtr();

	RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE);
	return from;
}

typedef struct RedoArgs
{
	uint64		redo;
} RedoArgs;

static void
read_redo_in_transaction(void *arg)
{
	RedoArgs   *args = (RedoArgs *) arg;
	ControlFileData *control;
	bool		crc_ok;

	control = get_controlfile(DataDir, &crc_ok);
	/* a read racing the checkpointer's write fails the CRC: next poll */
	args->redo = crc_ok ? control->checkPointCopy.redo : InvalidXLogRecPtr;
	pfree(control);
}

/* Has a checkpoint whose redo point is at or past `from` completed? */
bool
node_checkpoint_done(uint64 from)
{
	RedoArgs	args = {InvalidXLogRecPtr};
	char		errbuf[AUTOHA_ERROR_LEN];

	if (!run_in_transaction(read_redo_in_transaction, &args, false,
							errbuf, sizeof(errbuf)))
		return false;
	return args.redo >= from;
}

/*
 * Get ready to come back as a replica of leader after the crash restart:
 * standby.signal (read again by the startup process), primary_conninfo and
 * primary_slot_name through ALTER SYSTEM, and a reload so that the
 * postmaster, whose settings the restarted processes inherit, has them.
 */
bool
node_prepare_standby(const MemberInfo *leader, char *errbuf, size_t errlen)
{
	FollowArgs	args;
	char		slot[NAMEDATALEN];
	FILE	   *f;

	errbuf[0] = '\0';
	f = AllocateFile(STANDBY_SIGNAL_FILE, "w");
	if (f == NULL || FreeFile(f) != 0)
	{
		snprintf(errbuf, errlen, "could not create file \"%s\": %m", STANDBY_SIGNAL_FILE);
		return false;
	}
	dcs_slot_name(autoha_node_name, slot, sizeof(slot));
	args.conninfo = conninfo_for(leader);
	args.slot = slot;
	if (!run_in_transaction(follow_in_transaction, &args, false, errbuf, errlen))
	{
		unlink(STANDBY_SIGNAL_FILE);
		return false;
	}
	if (kill(PostmasterPid, SIGHUP) != 0)
	{
		snprintf(errbuf, errlen, "could not signal the postmaster to reload: %m");
		unlink(STANDBY_SIGNAL_FILE);
		return false;
	}
	return true;
}

void
node_cancel_standby(void)
{
	if (unlink(STANDBY_SIGNAL_FILE) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_autoha: could not remove file \"%s\": %m", STANDBY_SIGNAL_FILE)));
}

bool
node_switch_point(uint32 timeline, uint32 *parent, uint64 *lsn)
{
	List	   *history;

	if (timeline <= 1)
		return false;
	history = readTimeLineHistory(timeline);
	*parent = timeline - 1;
	*lsn = tliSwitchPoint(*parent, history, NULL);
	list_free_deep(history);
	return true;
}

bool
node_can_rewind(char *errbuf, size_t errlen)
{
	errbuf[0] = '\0';
	if (wal_log_hints || DataChecksumsEnabled())
		return true;
	snprintf(errbuf, errlen,
			 "this server's WAL diverged from the leader's and pg_rewind needs wal_log_hints = on or data checksums, "
			 "which this server has neither of: it stays a fenced replica that cannot follow; "
			 "set wal_log_hints = on and restart it (or re-clone it with pg_basebackup)");
	return false;
}

/*
 * Start pg_autoha_rejoin --restart, detached: it stops this server, rewinds
 * it and starts it again, so it must not be our child (the postmaster's
 * shutdown would take it down) nor in our process group.  Its output goes
 * to our stderr, the server log.
 */
bool
node_spawn_rejoin(char *errbuf, size_t errlen)
{
	char		bindir[MAXPGPATH];
	char		tool[MAXPGPATH];
	char	   *slash;
	pid_t		pid;

	errbuf[0] = '\0';
	strlcpy(bindir, my_exec_path, sizeof(bindir));
	slash = strrchr(bindir, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(tool, sizeof(tool), "%s/pg_autoha_rejoin", bindir);
	if (access(tool, X_OK) != 0)
	{
		snprintf(errbuf, errlen, "cannot rewind: \"%s\" is missing (%m); install pg_autoha's programs "
				 "or rewind this server yourself", tool);
		return false;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		snprintf(errbuf, errlen, "could not fork to start pg_autoha_rejoin: %m");
		return false;
	}
	if (pid == 0)
	{
		/* child: a new session, then fork again so that init adopts it */
		setsid();
		if (fork() != 0)
			_exit(0);
		execl(tool, tool, "-D", DataDir, "--restart", (char *) NULL);
		_exit(127);
	}
	/* reap the intermediate child, which exits at once */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	ereport(LOG,
			(errmsg("pg_autoha: started \"%s -D %s --restart\" to rewind this server and restart it as a replica",
					tool, DataDir)));
	return true;
}

/* ---------- synchronous replication ---------- */

typedef struct SendersArgs
{
	WalSenderInfo *out;
	int			max;
	int			n;
} SendersArgs;

static void
senders_in_transaction(void *arg)
{
	SendersArgs *args = (SendersArgs *) arg;
	int			rc;
	uint64		i;

	SPI_connect();
	rc = SPI_execute("SELECT application_name, state, flush_lsn, sync_priority "
					 "FROM pg_catalog.pg_stat_replication",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_replication: %s", SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed && args->n < args->max; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		WalSenderInfo *w = &args->out[args->n];
		char	   *name = SPI_getvalue(tup, desc, 1);
		char	   *state = SPI_getvalue(tup, desc, 2);
		bool		isnull;
		Datum		d;

		memset(w, 0, sizeof(*w));
		if (name == NULL)
			continue;
		strlcpy(w->name, name, sizeof(w->name));
		w->streaming = state != NULL && strcmp(state, "streaming") == 0;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		w->flush_lsn = isnull ? 0 : DatumGetLSN(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		w->priority = isnull ? 0 : DatumGetInt32(d);
		args->n++;
	}
	SPI_finish();
}

int
node_wal_senders(WalSenderInfo *out, int max, char *errbuf, size_t errlen)
{
	SendersArgs args;

	args.out = out;
	args.max = max;
	args.n = 0;
	errbuf[0] = '\0';
	if (!run_in_transaction(senders_in_transaction, &args, true, errbuf, errlen))
		return -1;
	return args.n;
}

const char *
node_sync_names_in_effect(void)
{
	return SyncRepStandbyNames != NULL ? SyncRepStandbyNames : "";
}

/*
 * Does the checkpointer have synchronous_standby_names as non-empty?  It
 * keeps WalSndCtl->sync_standbys_defined, which every committing backend
 * reads to decide whether to wait at all.
 */
bool
node_sync_standbys_defined(void)
{
	bool		defined;

	LWLockAcquire(SyncRepLock, LW_SHARED);
#ifdef SYNC_STANDBY_DEFINED
	/* 15.13, 16.9, 17.5 and later: a flag word */
	defined = (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
#else
	defined = WalSndCtl->sync_standbys_defined;
#endif
	LWLockRelease(SyncRepLock);
	return defined;
}

typedef struct SyncNamesArgs
{
	const char *value;			/* NULL: RESET */
} SyncNamesArgs;

static void
sync_names_in_transaction(void *arg)
{
	SyncNamesArgs *args = (SyncNamesArgs *) arg;

	if (args->value == NULL)
		alter_system_reset("synchronous_standby_names");
	else
		alter_system_set("synchronous_standby_names", args->value);
}

bool
node_set_sync_names(const char *value, char *errbuf, size_t errlen)
{
	SyncNamesArgs args;
	const char *want = value != NULL ? value : "\x01reset";

	errbuf[0] = '\0';
	if (sync_names_requested && strcmp(requested_sync_names, want) == 0)
		return true;
	args.value = value;
	if (!run_in_transaction(sync_names_in_transaction, &args, false, errbuf, errlen))
		return false;
	if (kill(PostmasterPid, SIGHUP) != 0)
	{
		snprintf(errbuf, errlen, "could not signal the postmaster to reload: %m");
		return false;
	}
	strlcpy(requested_sync_names, want, sizeof(requested_sync_names));
	sync_names_requested = true;
	return true;
}

/*
 * Make the standbys reply now.  A WAL sender releases waiting commits only
 * when its standby reports a position, and an idle standby that already
 * has everything reports only every wal_receiver_status_interval (10 s):
 * after synchronous_standby_names changed, commits waiting for the new
 * standby would wait that long.  A standby snapshot record (what the
 * background writer logs every 15 s; no transaction, so nothing waits for
 * it) makes every standby receive WAL and reply at once.
 */
void
node_nudge_standbys(void)
{
	if (!XLogStandbyInfoActive() || RecoveryInProgress())
		return;
	XLogFlush(LogStandbySnapshot());
}
