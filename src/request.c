/*-------------------------------------------------------------------------
 *
 * request.c
 *	  SQL functions that ask the cluster to do something: switchover,
 *	  manual failover, pause and resume; and the failover history.
 *
 * They work from any member, because the request travels through etcd
 * (the "failover" and "config" keys, in Patroni's formats) and every
 * worker reads it: the leader hands over, the named member takes over,
 * the others wait.  So the backend talks to etcd itself, with its own
 * short-lived client, checks the request against the cluster as etcd shows
 * it (misuse gets an ERROR with a hint, before anything is written), writes
 * the request, and for switchover and failover waits until the new leader
 * accepts writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "dcs.h"
#include "etcd.h"
#include "pg_autoha.h"

PG_FUNCTION_INFO_V1(autoha_switchover);
PG_FUNCTION_INFO_V1(autoha_failover);
PG_FUNCTION_INFO_V1(autoha_pause);
PG_FUNCTION_INFO_V1(autoha_resume);
PG_FUNCTION_INFO_V1(autoha_history);

/* each etcd call from a backend gets this long */
#define REQUEST_ETCD_TIMEOUT_MS		2000
/* how long switchover and failover wait for the new leader */
#define REQUEST_WAIT_MS				45000
#define REQUEST_POLL_MS				20

#define HISTORY_COLUMNS				6

typedef struct Cluster
{
	EtcdClient *etcd;
	char		prefix[512];
	char		key[600];		/* scratch for one key name */
	ClusterView view;
} Cluster;

static void *
request_palloc(size_t size)
{
	return palloc(size);
}

static void
request_pfree(void *ptr)
{
	pfree(ptr);
}

/* a cancelled query or a terminated session abandons a request in flight */
static bool
request_should_abort(void *arg)
{
	return QueryCancelPending || ProcDiePending;
}

static void
open_cluster(Cluster *c)
{
	char		errbuf[256];

	if (autoha_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_autoha is not loaded through shared_preload_libraries"),
				 errhint("Add pg_autoha to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (autoha_etcd_endpoints == NULL || autoha_etcd_endpoints[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("autoha.etcd_endpoints is empty, so there is no cluster to ask"),
				 errhint("Set autoha.etcd_endpoints to etcd's client URLs and reload.")));

	memset(c, 0, sizeof(*c));
	etcd_set_allocator(request_palloc, request_pfree);
	c->etcd = etcd_client_create(autoha_etcd_endpoints, REQUEST_ETCD_TIMEOUT_MS,
								 errbuf, sizeof(errbuf));
	if (c->etcd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid autoha.etcd_endpoints: %s", errbuf)));
	etcd_client_set_abort_check(c->etcd, request_should_abort, NULL);
	etcd_client_set_auth(c->etcd, autoha_etcd_username, autoha_etcd_password);
	etcd_client_set_tls(c->etcd, autoha_etcd_cacert, autoha_etcd_cert, autoha_etcd_key);
	dcs_cluster_prefix(c->prefix, sizeof(c->prefix), autoha_namespace, autoha_cluster_name);
}

static void
close_cluster(Cluster *c)
{
	if (c->etcd != NULL)
		etcd_client_destroy(c->etcd);
	c->etcd = NULL;
}

static const char *
cluster_key(Cluster *c, const char *suffix)
{
	dcs_key(c->key, sizeof(c->key), c->prefix, suffix);
	return c->key;
}

static void
etcd_error(Cluster *c, const char *what)
{
	CHECK_FOR_INTERRUPTS();
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not %s: %s", what, etcd_last_error(c->etcd)),
			 errhint("Check that etcd is up and that autoha.etcd_endpoints lists it.")));
}

/* Read the whole cluster; false (nothing raised) if etcd did not answer. */
static bool
try_read_cluster(Cluster *c)
{
	EtcdRangeResult range;

	if (etcd_range(c->etcd, c->prefix, true, &range) != ETCD_OK)
		return false;
	dcs_view_from_kvs(c->prefix, &range, &c->view, NULL, NULL, 0);
	return true;
}

static void
read_cluster(Cluster *c)
{
	if (!try_read_cluster(c))
		etcd_error(c, "read the cluster from etcd");
	if (!c->view.has_initialize)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" is not initialized in etcd", autoha_cluster_name),
				 errhint("Start its primary with pg_autoha loaded; it initializes the cluster.")));
}

static char *
member_names(const ClusterView *view)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < view->nmembers; i++)
		appendStringInfo(&buf, "%s\"%s\"", i > 0 ? ", " : "", view->members[i].name);
	return buf.data;
}

static const MemberInfo *
require_member(const ClusterView *view, const char *name)
{
	const MemberInfo *m = ha_find_member(view, name);

	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is not a member of cluster \"%s\"", name, autoha_cluster_name),
				 errdetail("The members are %s.", member_names(view)),
				 errhint("SELECT name FROM autoha_status() lists them.")));
	return m;
}

static void
require_no_request(const ClusterView *view)
{
	if (view->failover.present)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a switchover or failover is already in progress in cluster \"%s\"",
						autoha_cluster_name),
				 errdetail("The failover key names leader \"%s\" and member \"%s\".",
						   view->failover.leader, view->failover.member),
				 errhint("Wait for it to finish and try again; a request that cannot be carried out is dropped within %d s.",
						 REQUEST_WAIT_MS / 1000)));
}

/* Is the leader alive: its key held and its member entry a primary? */
static const MemberInfo *
healthy_leader(const ClusterView *view)
{
	const MemberInfo *m;

	if (!view->has_leader)
		return NULL;
	m = ha_find_member(view, view->leader);
	if (m == NULL || strcmp(m->role, "primary") != 0)
		return NULL;
	return m;
}

/*
 * Why member m cannot take over in a switchover, or NULL if it can; the
 * leader checks the same (ha.c), this is to say so before asking.
 */
static const char *
not_eligible(const MemberInfo *m, const MemberInfo *leader)
{
	if (strcmp(m->role, "replica") != 0)
		return psprintf("It is not a replica (its role is \"%s\").", m->role);
	if (m->nofailover)
		return "It has autoha.nofailover = on.";
	if (strcmp(m->replication_state, "streaming") != 0)
		return psprintf("It is not streaming from leader \"%s\".", leader->name);
	if (m->timeline != 0 && leader->timeline != 0 && m->timeline != leader->timeline)
		return psprintf("It is on timeline %u, the leader on timeline %u.",
						m->timeline, leader->timeline);
	return NULL;
}

/* Ask our own worker to look at etcd now rather than at its next loop. */
static void
wake_worker(void)
{
	pid_t		pid;

	LWLockAcquire(autoha_shared->lock, LW_SHARED);
	pid = autoha_shared->worker_pid;
	LWLockRelease(autoha_shared->lock);
	if (pid != 0)
		kill(pid, SIGUSR1);		/* a background worker's latch */
}

/* Write the failover key if there is none; returns its revision. */
static int64
put_request(Cluster *c, const char *leader, const char *member)
{
	char	   *json = dcs_failover_json(leader, member);
	char	   *value = pstrdup(json);
	bool		written;
	int64_t		revision = 0;

	free(json);
	if (etcd_put_if_unchanged(c->etcd, cluster_key(c, "failover"), value, 0, 0,
							  &written, &revision) != ETCD_OK)
		etcd_error(c, "write the failover key");
	if (!written)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a switchover or failover is already in progress in cluster \"%s\"",
						autoha_cluster_name),
				 errhint("Wait for it to finish and try again.")));
	wake_worker();
	return revision;
}

/* Drop our request if it is still there, unchanged. */
static void
drop_request(Cluster *c, int64 revision)
{
	bool		dropped;

	(void) etcd_delete_if_unchanged(c->etcd, cluster_key(c, "failover"),
									revision, &dropped);
}

/*
 * Wait until a member other than old_leader (and, if given, target) holds
 * the leader key and runs as a primary; return its name.  A request that
 * disappears while old_leader still leads was cancelled by it.
 */
static char *
wait_for_new_leader(Cluster *c, const char *what, const char *old_leader,
					const char *target, int64 revision)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   REQUEST_WAIT_MS);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (try_read_cluster(c))
		{
			const ClusterView *v = &c->view;
			const MemberInfo *leader = healthy_leader(v);

			if (leader != NULL &&
				(old_leader == NULL || strcmp(leader->name, old_leader) != 0) &&
				(target == NULL || strcmp(leader->name, target) == 0))
				return pstrdup(leader->name);
			if (!v->failover.present && v->has_leader && old_leader != NULL &&
				strcmp(v->leader, old_leader) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("leader \"%s\" cancelled the %s", old_leader, what),
						 errdetail("The target was not eligible or did not catch up in time."),
						 errhint("The reason is in the server log of \"%s\" (and in its autoha_node().decision_reason).",
								 old_leader)));
			if (!v->failover.present && v->has_leader && target != NULL &&
				strcmp(v->leader, target) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the %s was dropped: \"%s\" leads instead of \"%s\"",
								what, v->leader, target)));
		}
		if (GetCurrentTimestamp() >= deadline)
		{
			drop_request(c, revision);
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the %s did not complete within %d s", what, REQUEST_WAIT_MS / 1000),
					 errhint("SELECT * FROM autoha_status() shows the cluster now; the request was withdrawn if it was still pending.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 REQUEST_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * While a backend waits for its switchover, the fence spares its session
 * and, on the leader, the restart into a replica waits for it to return.
 */
static void
set_waiter(pid_t pid)
{
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	if (pid != 0 || autoha_shared->request_waiter_pid == MyProcPid)
		autoha_shared->request_waiter_pid = pid;
	LWLockRelease(autoha_shared->lock);
}

static char *
do_switchover(Cluster *c, const char *target)
{
	const ClusterView *v = &c->view;
	const MemberInfo *leader;
	const char *why;
	char	   *old_leader;
	int64		revision;
	int			i;
	bool		anyone = false;

	read_cluster(c);
	if (v->paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" is paused", autoha_cluster_name),
				 errhint("Run SELECT autoha_resume() first; while paused, only autoha_failover(target) moves the leadership.")));
	leader = healthy_leader(v);
	if (leader == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" has no healthy leader to hand over from", autoha_cluster_name),
				 v->has_leader ?
				 errdetail("Leader \"%s\" holds the key but does not run as a primary.", v->leader) :
				 errdetail("Nobody holds the leader key."),
				 errhint("To promote a replica when there is no healthy leader, use SELECT autoha_failover('member name').")));
	require_no_request(v);
	if (target != NULL)
	{
		const MemberInfo *m = require_member(v, target);

		if (strcmp(m->name, leader->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is already the leader of cluster \"%s\"", target, autoha_cluster_name),
					 errhint("Name a replica, or call autoha_switchover() without an argument to pick the best one.")));
		why = not_eligible(m, leader);
		if (why != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("member \"%s\" cannot take over from \"%s\"", target, leader->name),
					 errdetail_internal("%s", why),
					 errhint("Pick another replica (see autoha_status()), or fix this one and try again.")));
	}
	else
	{
		/*
		 * Name the best replica in the request (most WAL, then priority,
		 * then name, as the leader would choose): the target then gets ready
		 * (it polls etcd fast, makes the other members' slots) and the other
		 * replicas stream from it before the handover.
		 */
		const MemberInfo *best = NULL;

		for (i = 0; i < v->nmembers; i++)
		{
			const MemberInfo *m = &v->members[i];

			if (strcmp(m->name, leader->name) == 0 || not_eligible(m, leader) != NULL)
				continue;
			anyone = true;
			if (best == NULL || ha_better_switchover_target(m, best))
				best = m;
		}
		if (best != NULL)
			target = pstrdup(best->name);
		if (!anyone)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no member of cluster \"%s\" can take over from \"%s\"",
							autoha_cluster_name, leader->name),
					 errdetail("A target must be a streaming replica without autoha.nofailover."),
					 errhint("SELECT * FROM autoha_status() shows each member's state.")));
	}

	old_leader = pstrdup(leader->name);
	set_waiter(MyProcPid);
	revision = put_request(c, old_leader, target);
	return wait_for_new_leader(c, "switchover", old_leader, target, revision);
}

/*
 * autoha_switchover(target text DEFAULT NULL) returns text
 *
 * A planned handover from the leader to target (or to the best replica):
 * returns the new leader's name once it accepts writes.
 */
Datum
autoha_switchover(PG_FUNCTION_ARGS)
{
	Cluster		c;
	char	   *target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *result = NULL;

	open_cluster(&c);
	PG_TRY();
	{
		result = do_switchover(&c, target);
	}
	PG_FINALLY();
	{
		set_waiter(0);
		close_cluster(&c);
	}
	PG_END_TRY();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

static char *
do_failover(Cluster *c, const char *target)
{
	const ClusterView *v = &c->view;
	const MemberInfo *m;
	const MemberInfo *leader;
	int64		revision;

	read_cluster(c);
	m = require_member(v, target);
	leader = healthy_leader(v);

	/*
	 * The leader key and the leader's member entry hang on one lease: a
	 * leader that just died still shows both until the lease expires.
	 */
	if (v->has_leader)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" holds the leader key of cluster \"%s\"", v->leader, autoha_cluster_name),
				 leader != NULL ?
				 errdetail("Its member entry shows a running primary.") :
				 errdetail("Its member entry does not show a running primary."),
				 v->paused ?
				 errhint("If it is down, its lease expires within autoha.ttl (%d s): retry then.", autoha_ttl) :
				 errhint("If it is healthy, a planned handover is SELECT autoha_switchover('%s'); if it is down, its lease expires within autoha.ttl (%d s): retry then.",
						 target, autoha_ttl)));
	if (m->nofailover)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" cannot be promoted: it has autoha.nofailover = on", target),
				 errhint("Turn autoha.nofailover off on it and reload, or name another member.")));
	require_no_request(v);

	/*
	 * The DBA's call, made knowingly: say what it may cost.  Only the
	 * standbys the sync key lists are known to hold every commit the last
	 * leader acknowledged.
	 */
	if (v->sync.present && !ha_sync_lists(&v->sync, target) &&
		strcmp(v->sync.leader, target) != 0)
		ereport(WARNING,
				(errmsg("member \"%s\" is not in the synchronous set of cluster \"%s\"; "
						"writes that leader \"%s\" acknowledged may be lost",
						target, autoha_cluster_name, v->sync.leader),
				 v->sync.nstandbys > 0 ?
				 errdetail("The sync key of \"%s\" lists %d standby(s), \"%s\" first.",
						   v->sync.leader, v->sync.nstandbys, v->sync.standbys[0]) :
				 errdetail("The sync key of \"%s\" lists no standby.", v->sync.leader),
				 errhint("To lose nothing, bring back the last leader or a standby the sync key lists.")));

	revision = put_request(c, NULL, target);
	return wait_for_new_leader(c, "failover", NULL, target, revision);
}

/*
 * autoha_failover(target text) returns text
 *
 * Promote target when the cluster has no healthy leader, even while it is
 * paused or when target lags more than autoha.maximum_lag_on_failover.
 */
Datum
autoha_failover(PG_FUNCTION_ARGS)
{
	Cluster		c;
	char	   *target = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *result = NULL;

	open_cluster(&c);
	PG_TRY();
	{
		result = do_failover(&c, target);
	}
	PG_FINALLY();
	{
		close_cluster(&c);
	}
	PG_END_TRY();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*
 * Set or clear "pause" in the config key, keeping the rest of it; retried
 * if somebody else changes the key between our read and our write.
 */
static bool
set_pause(Cluster *c, bool pause)
{
	int			attempt;

	for (attempt = 0; attempt < 5; attempt++)
	{
		EtcdRangeResult range;
		const char *old;
		bool		written;
		bool		paused = false;
		char	   *json;
		char	   *value;

		if (etcd_range(c->etcd, cluster_key(c, "config"), false, &range) != ETCD_OK)
			etcd_error(c, "read the config key");
		old = range.nkvs > 0 ? range.kvs[0].value : NULL;
		if (old != NULL)
			(void) dcs_parse_config_paused(old, &paused);
		if (paused == pause)
			return false;
		json = dcs_config_set_pause(old, pause);
		value = pstrdup(json);
		free(json);

		if (etcd_put_if_unchanged(c->etcd, c->key, value, 0,
								  range.nkvs > 0 ? range.kvs[0].mod_revision : 0,
								  &written, NULL) != ETCD_OK)
			etcd_error(c, "write the config key");
		if (written)
		{
			wake_worker();
			return true;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the config key of cluster \"%s\" kept changing; it was not updated", autoha_cluster_name),
			 errhint("Try again.")));
	return false;
}

static void
pause_or_resume(bool pause)
{
	Cluster		c;
	bool		changed = false;

	open_cluster(&c);
	PG_TRY();
	{
		read_cluster(&c);
		changed = set_pause(&c, pause);
	}
	PG_FINALLY();
	{
		close_cluster(&c);
	}
	PG_END_TRY();
	if (!changed)
		ereport(NOTICE,
				(errmsg("cluster \"%s\" is already %s", autoha_cluster_name,
						pause ? "paused" : "not paused")));
	else
		ereport(NOTICE,
				(errmsg("cluster \"%s\" is %s", autoha_cluster_name,
						pause ? "paused: no automatic failover or rejoin until autoha_resume()" :
						"no longer paused: automatic failover and rejoin are back on")));
}

/* autoha_pause(): maintenance mode, kept in etcd so every member agrees */
Datum
autoha_pause(PG_FUNCTION_ARGS)
{
	pause_or_resume(true);
	PG_RETURN_VOID();
}

Datum
autoha_resume(PG_FUNCTION_ARGS)
{
	pause_or_resume(false);
	PG_RETURN_VOID();
}

/* "switchover from n1" -> kind "switchover", old leader "n1" */
static void
split_reason(const char *reason, char **old_leader)
{
	const char *from = strstr(reason, " from ");

	*old_leader = from != NULL && from[6] != '\0' ? pstrdup(from + 6) : NULL;
}

/*
 * autoha_history(): every failover and switchover, from the "history" key
 * (Patroni's [timeline, lsn, reason, timestamp, new_leader] lines).
 */
Datum
autoha_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Cluster		c;
	char	   *value = NULL;
	HistoryEntry *lines;
	int			ntotal = 0;
	int			n;
	int			i;

	open_cluster(&c);
	PG_TRY();
	{
		EtcdRangeResult range;

		if (etcd_range(c.etcd, cluster_key(&c, "history"), false, &range) != ETCD_OK)
			etcd_error(&c, "read the history key");
		if (range.nkvs > 0 && range.kvs[0].value != NULL)
			value = pstrdup(range.kvs[0].value);
	}
	PG_FINALLY();
	{
		close_cluster(&c);
	}
	PG_END_TRY();

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFuncCall(fcinfo, 0);
#endif
	if (value == NULL)
		PG_RETURN_VOID();
	if (dcs_parse_history(value, NULL, 0, &ntotal) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the history key of cluster \"%s\" is not a JSON array", autoha_cluster_name),
				 errdetail_internal("It holds: %s", value)));
	if (ntotal == 0)
		PG_RETURN_VOID();
	lines = palloc0(sizeof(HistoryEntry) * ntotal);
	n = dcs_parse_history(value, lines, ntotal, &ntotal);

	for (i = 0; i < n; i++)
	{
		const HistoryEntry *h = &lines[i];
		Datum		values[HISTORY_COLUMNS];
		bool		nulls[HISTORY_COLUMNS];
		char	   *old_leader;

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum((int64) h->timeline);
		values[1] = LSNGetDatum((XLogRecPtr) h->lsn);
		values[2] = CStringGetTextDatum(h->reason);
		nulls[3] = true;
		if (h->timestamp[0] != '\0')
		{
			/* a timestamp we cannot read is shown as NULL, not an error */
			MemoryContext oldcxt = CurrentMemoryContext;

			PG_TRY();
			{
				values[3] = DirectFunctionCall3(timestamptz_in,
												CStringGetDatum(h->timestamp),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1));
				nulls[3] = false;
			}
			PG_CATCH();
			{
				MemoryContextSwitchTo(oldcxt);
				FlushErrorState();
			}
			PG_END_TRY();
		}
		split_reason(h->reason, &old_leader);
		if (old_leader != NULL)
			values[4] = CStringGetTextDatum(old_leader);
		else
			nulls[4] = true;
		if (h->new_leader[0] != '\0')
			values[5] = CStringGetTextDatum(h->new_leader);
		else
			nulls[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
