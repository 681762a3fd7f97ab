/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  The write fence: a server without a confirmed leader lease never
 *	  acknowledges a write.
 *
 * The fence lives in shared memory as two values every backend can read
 * without a lock: a flag the worker raises, and a deadline on the monotonic
 * clock after which the fence counts as raised even if nobody raised it.
 * The worker moves the deadline forward only after etcd has confirmed, in
 * the same loop, that our lease is alive and the leader key is still ours;
 * the deadline is then the *send* time of that renewal plus a short window
 * (about two and a half loops), and never later than the send time plus the
 * TTL minus a margin, before which etcd cannot expire the lease.  So a
 * leader whose worker is frozen, stuck or cut off from etcd fences itself by
 * the clock alone, before any replica can have been promoted.
 *
 * Three checks enforce it in every backend:
 *	- a pre-commit (and pre-prepare) transaction callback refuses to commit a
 *	  transaction that has an xid, i.e. that wrote anything.  It runs before
 *	  the commit record is written, so nothing is committed, whatever
 *	  synchronous_commit, default_transaction_read_only or SET LOCAL the
 *	  session used;
 *	- a ProcessUtility hook refuses COMMIT PREPARED, which writes its commit
 *	  record during the statement, outside the pre-commit callback;
 *	- a client authentication hook makes new sessions on a fenced primary
 *	  start with default_transaction_read_only = on, which libpq reads at
 *	  connection time, so target_session_attrs=read-write moves on to the
 *	  leader (routing only: a session may SET it off, the commit check stays).
 * The worker also terminates the client sessions that were open when the
 * fence went up, so connection pools reconnect to the leader.
 *
 * A new server (first start, restart, crash restart) starts fenced: the
 * shared memory is created with the flag raised.  A server whose postmaster
 * has died counts as fenced too: its backends may live on for a moment, but
 * its walsenders are gone, so what they committed would reach no replica.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/auth.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/pmsignal.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "fence.h"
#include "pg_autoha.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static ClientAuthentication_hook_type prev_ClientAuthentication = NULL;

int64
fence_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Is the fence up right now?  One atomic read, and a clock read. */
static bool
fence_active(void)
{
	FenceShared *fence;

	if (autoha_shared == NULL)
		return false;

	/*
	 * A server whose postmaster died is going down: its walsenders exit and
	 * its worker is releasing the lease, so a commit acknowledged now would
	 * reach no replica.  On Linux this is a flag set by the death signal.
	 */
	if (!PostmasterIsAlive())
		return true;
	fence = &autoha_shared->fence;
	if (pg_atomic_read_u32(&fence->raised) != 0)
		return true;
	pg_read_barrier();
	return fence_now_us() >= (int64) pg_atomic_read_u64(&fence->deadline_us);
}

bool
fence_is_up(void)
{
	return fence_active();
}

void
fence_shmem_init(FenceShared *fence)
{
	pg_atomic_init_u32(&fence->raised, 1);
	pg_atomic_init_u64(&fence->deadline_us, 0);
	strlcpy(fence->reason, "the server has just started and has not confirmed a leader lease yet",
			sizeof(fence->reason));
	fence->raised_at = GetCurrentTimestamp();
}

/*
 * Refuse the write with the reason and the leader to use instead.  Runs in
 * the backend that tried to write.
 */
static void pg_attribute_noreturn()
refuse_write(const char *what)
{
	char		reason[AUTOHA_FENCE_REASON_LEN];
	char		leader[AUTOHA_NAME_LEN];
	char		host[AUTOHA_HOST_LEN] = "";
	int			port = 0;
	const MemberInfo *m;

	LWLockAcquire(autoha_shared->lock, LW_SHARED);
	if (!PostmasterIsAlive())
		strlcpy(reason, "its postmaster has died", sizeof(reason));
	else if (pg_atomic_read_u32(&autoha_shared->fence.raised) != 0)
		strlcpy(reason, autoha_shared->fence.reason, sizeof(reason));
	else
		strlcpy(reason, "its lease could not be renewed in time", sizeof(reason));
	strlcpy(leader, autoha_shared->leader, sizeof(leader));
	m = leader[0] ? ha_find_member(&autoha_shared->view, leader) : NULL;
	if (m != NULL)
	{
		strlcpy(host, m->host, sizeof(host));
		port = m->port;
	}
	LWLockRelease(autoha_shared->lock);

	if (leader[0] && strcmp(leader, autoha_node_name) != 0 && host[0])
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("pg_autoha: cannot %s: this server does not hold the leader lease", what),
				 errdetail("Fenced because %s. Nothing was committed.", reason),
				 errhint("Write to the leader \"%s\" at %s:%d; a connection string listing every server with target_session_attrs=read-write finds it.",
						 leader, host, port)));
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("pg_autoha: cannot %s: this server does not hold the leader lease", what),
			 errdetail("Fenced because %s. Nothing was committed.", reason),
			 errhint("Retry shortly: the cluster is choosing or confirming its leader.")));
}

static void
fence_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE)
		return;
	/* a transaction without an xid wrote nothing that needs a commit */
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	if (!fence_active())
		return;
	refuse_write(event == XACT_EVENT_PRE_PREPARE ?
				 "prepare a transaction that wrote" :
				 "commit a transaction that wrote");
}

#if PG_VERSION_NUM >= 140000
static void
fence_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
#else
static void
fence_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
#endif
{
	Node	   *parsetree = pstmt->utilityStmt;

	/* COMMIT PREPARED writes its commit record outside the pre-commit hook */
	if (IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED &&
		fence_active())
		refuse_write("commit a prepared transaction");

#if PG_VERSION_NUM >= 140000
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
#else
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, context,
								params, queryEnv, dest, qc);
#endif
}

/*
 * A new session on a fenced primary starts read-only.  libpq learns it from
 * the ParameterStatus message sent at the end of the start-up, so
 * target_session_attrs=read-write skips this server.  A session can still
 * SET it off: this only routes clients, the commit-time check above is what
 * makes it safe.
 */
static void
fence_client_authentication(Port *port, int status)
{
	if (prev_ClientAuthentication)
		prev_ClientAuthentication(port, status);
	if (status == STATUS_OK && !RecoveryInProgress() && fence_active())
		SetConfigOption("default_transaction_read_only", "on",
						PGC_SUSET, PGC_S_OVERRIDE);
}

void
fence_install_hooks(void)
{
	RegisterXactCallback(fence_xact_callback, NULL);
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = fence_ProcessUtility;
	prev_ClientAuthentication = ClientAuthentication_hook;
	ClientAuthentication_hook = fence_client_authentication;
}

/*
 * Raise the fence (worker).  Returns true if it was down, so the caller
 * can end the sessions that were open.
 */
bool
fence_raise(const char *reason)
{
	FenceShared *fence = &autoha_shared->fence;
	bool		was_down = pg_atomic_exchange_u32(&fence->raised, 1) == 0;

	/* keep the reason current; log only the moment it goes up */
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	strlcpy(fence->reason, reason, sizeof(fence->reason));
	if (was_down)
		fence->raised_at = GetCurrentTimestamp();
	LWLockRelease(autoha_shared->lock);
	if (was_down)
		ereport(LOG,
				(errmsg("pg_autoha: write fence up: %s", reason)));
	return was_down;
}

/*
 * Extend the deadline and take the flag down (worker), after etcd confirmed
 * the lease and the key.  The deadline is written before the flag drops.
 */
void
fence_lower(int64 deadline_us)
{
	FenceShared *fence = &autoha_shared->fence;

	pg_atomic_write_u64(&fence->deadline_us, (uint64) deadline_us);
	pg_memory_barrier();
	if (pg_atomic_exchange_u32(&fence->raised, 0) != 0)
	{
		TimestampTz since;

		LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
		since = fence->raised_at;
		fence->reason[0] = '\0';
		LWLockRelease(autoha_shared->lock);
		ereport(LOG,
				(errmsg("pg_autoha: write fence down: this server holds a confirmed leader lease (fenced for %.3f s)",
						(GetCurrentTimestamp() - since) / 1000000.0)));
	}
}
