/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pg_autoha background worker: observe -> decide -> act, every loop.
 *
 * Each loop the worker
 *	  1. renews its lease in etcd (one per member; the leader key and the
 *		 member key hang on it, so they vanish together when it lapses),
 *	  2. publishes its member entry and reads the whole cluster in one etcd
 *		 transaction (and, if it still holds the leader key, the leader's
 *		 position in the "status" key),
 *	  3. asks ha_decide() what to do, and does it (node.c has the effects):
 *		 lead (and, in synchronous mode, keep synchronous_standby_names and
 *		 the "sync" key as syncset.c plans), follow, promote, hand the leader key over in a switchover,
 *		 demote this server in place (standby.signal and a crash restart),
 *		 or start pg_autoha_rejoin to rewind it,
 *	  4. publishes what it saw and decided in shared memory for
 *		 autoha_status() and autoha_node(), and sleeps on its latch.
 *
 * Every etcd call is bounded by a timeout shorter than the loop and is
 * abandoned at once on SIGTERM or postmaster death.  On either of those the
 * worker revokes its lease before exiting, so the leader key is gone at
 * once and a replica can take over without waiting for the TTL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pidfile.h"
#include "utils/timestamp.h"

#include "dcs.h"
#include "etcd.h"
#include "node.h"
#include "pg_autoha.h"

/* poll period while the cluster has no leader: elections should be quick */
#define ELECTION_POLL_MS		100
/* how long a promotion may take before we give the key back */
#define PROMOTION_TIMEOUT_MS	60000
/* the lease revoke at exit gets this long */
#define RELEASE_TIMEOUT_MS		1000
/* a switchover or failover request may take this long before it is dropped */
#define REQUEST_TIMEOUT_MS		30000
/* poll period of a replica a switchover names: the handover is imminent */
#define TARGET_POLL_MS			20
/* a fenced leader waits this long for its switchover target to replay all */
#define HANDOVER_CATCHUP_MS		5000
/* and this long, after handing over, for its last WAL to reach the target */
#define HANDOVER_DRAIN_MS		200
/* and at most this long for autoha_switchover() called here to return */
#define HANDOVER_WAITER_MS		10000
/* a leader hands over without its checkpoint once this long has passed */
#define HANDOVER_CHECKPOINT_MS	20000
/* after starting pg_autoha_rejoin, do not start it again for this long */
#define REWIND_RETRY_S			600
#define REWIND_ATTEMPT_FILE		"pg_autoha_rewind.attempt"
/*
 * After synchronous_standby_names changes, the leader waits at least this
 * long (and for every WAL sender to show the new priorities) before it
 * measures the position a new synchronous standby must reach: long enough
 * for every process to have read the new setting.
 */
#define SYNC_SETTLE_MS			100
/* poll period of a leader whose synchronous set is changing */
#define SYNC_POLL_MS			100

typedef struct WorkerState
{
	EtcdClient *etcd;
	char	   *etcd_endpoints;	/* what the client was built from */
	MemoryContext loop_cxt;

	/* effective timing; kept when a reload brings inconsistent values */
	int			ttl;
	int			loop_wait;

	char		prefix[512];
	char		leader_key[600];
	char		initialize_key[600];
	char		status_key[600];
	char		member_key[600];
	char		failover_key[600];
	char		history_key[600];
	char		sync_key[600];

	int64		lease_id;
	int64		lease_sent_us;	/* monotonic time the last renewal was sent */
	int64		key_taken_sent_us;	/* send time of the txn that took the key */
	bool		system_verified;	/* initialize matches our system id */
	bool		led_last_time;	/* the last read showed the key as ours */
	uint64		status_lsn;		/* position and timeline last put in status */
	uint32		status_timeline;

	int64		first_failure_us;	/* first failed loop since the last good one */
	int64		fence_deadline_us;	/* the deadline last given to the fence */

	/* election bookkeeping */
	int64		leaderless_since_revision;
	int64		leader_member_revision;	/* of the leader's member key */
	int64		leader_member_changed_us;	/* when that revision last moved */
	int64		leaderless_start_us;
	uint64		last_leader_lsn;
	char		last_leader_name[AUTOHA_NAME_LEN];

	/* the "failover" key: the revision of the request and when we saw it */
	int64		request_revision;
	int64		request_seen_us;

	/*
	 * The checkpoint a leader starts for a switchover request: for which
	 * request (its revision), the position its redo point must reach, when
	 * it was asked for, and whether it is still running.
	 */
	int64		checkpoint_revision;
	uint64		checkpoint_from;
	int64		checkpoint_asked_us;
	bool		checkpoint_pending;

	/* a history line still to be written after a promotion */
	bool		history_pending;
	uint32		history_timeline;
	uint64		history_lsn;
	char		history_reason[128];
	char		history_time[40];

	/*
	 * The synchronous set: the synchronous_standby_names last seen in
	 * effect, when it changed, and the position a standby must have flushed
	 * to join the "sync" key (0 = not measured since the change).
	 */
	char		sync_names_seen[SYNC_NAMES_LEN];
	int64		sync_names_changed_us;
	uint64		sync_ready_lsn;
	bool		sync_changing;	/* standbys named but not in the key yet */

	/* for logging transitions once */
	HaAction	last_action;
	char		last_reason[AUTOHA_REASON_LEN];
	char		last_logged_error[AUTOHA_ERROR_LEN];
	bool		cycle_had_error;
} WorkerState;

static WorkerState ws;
static bool releasing = false;

static void note_promotion(const ClusterView *view, TimeLineID tli);
static bool raise_fence(bool in_recovery, const char *reason);
static int64 fence_deadline_after(int64 sent_us);


static void *
etcd_palloc(size_t size)
{
	return palloc(size);
}

static void
etcd_pfree(void *ptr)
{
	pfree(ptr);
}

/*
 * Polled by libcurl while a request is in flight: give up on shutdown or
 * postmaster death, except while we are releasing the lease on the way out.
 */
static bool
etcd_should_abort(void *arg)
{
	if (releasing)
		return false;
	return ShutdownRequestPending || !PostmasterIsAlive();
}

/* ---------- shared state ---------- */

static void
publish_error(const char *msg)
{
	ws.cycle_had_error = true;
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	strlcpy(autoha_shared->last_error, msg, sizeof(autoha_shared->last_error));
	autoha_shared->last_error_at = GetCurrentTimestamp();
	LWLockRelease(autoha_shared->lock);

	/* log a problem when it appears or changes, not on every loop */
	if (strcmp(msg, ws.last_logged_error) != 0)
	{
		ereport(WARNING, (errmsg("pg_autoha: %s", msg)));
		strlcpy(ws.last_logged_error, msg, sizeof(ws.last_logged_error));
	}
}

static void
etcd_failed(const char *what)
{
	char		msg[AUTOHA_ERROR_LEN];

	/* a request abandoned because we are exiting is not worth a warning */
	if (ShutdownRequestPending || !PostmasterIsAlive())
		return;

	snprintf(msg, sizeof(msg), "%s: %s", what, etcd_last_error(ws.etcd));
	publish_error(msg);
}

static void
publish_role(const char *role, bool is_leader, const char *leader)
{
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	strlcpy(autoha_shared->role, role, sizeof(autoha_shared->role));
	autoha_shared->is_leader = is_leader;
	strlcpy(autoha_shared->leader, leader ? leader : "", sizeof(autoha_shared->leader));
	LWLockRelease(autoha_shared->lock);
}

static void
publish_cycle(const ClusterView *view, const LocalState *local,
			  const HaDecision *d, bool is_leader)
{
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	if (view != NULL)
	{
		memcpy(&autoha_shared->view, view, sizeof(ClusterView));
		autoha_shared->view_valid = true;
		autoha_shared->view_time = GetCurrentTimestamp();
		autoha_shared->view_stale = false;
		strlcpy(autoha_shared->leader, view->has_leader ? view->leader : "",
				sizeof(autoha_shared->leader));
	}
	else
		autoha_shared->view_stale = true;
	autoha_shared->leader_lsn = ws.last_leader_lsn;
	autoha_shared->is_leader = is_leader;
	autoha_shared->lease_id = ws.lease_id;
	if (ws.lease_id != 0 && ws.lease_sent_us != 0)
		autoha_shared->lease_expires =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										(ws.lease_sent_us + (int64) ws.ttl * 1000000 - fence_now_us()) / 1000);
	if (local != NULL)
		strlcpy(autoha_shared->role,
				local->in_recovery ? (is_leader ? "promoting" : "replica") :
				(is_leader ? "leader" : "primary without lease"),
				sizeof(autoha_shared->role));
	if (d != NULL)
	{
		autoha_shared->decision = d->action;
		strlcpy(autoha_shared->decision_reason, d->reason,
				sizeof(autoha_shared->decision_reason));
	}
	strlcpy(autoha_shared->etcd_endpoint, etcd_current_endpoint(ws.etcd),
			sizeof(autoha_shared->etcd_endpoint));
	if (!ws.cycle_had_error)
	{
		autoha_shared->last_error[0] = '\0';
		ws.last_logged_error[0] = '\0';
	}
	LWLockRelease(autoha_shared->lock);
}

/* The backend of this server waiting in autoha_switchover(), if alive. */
static pid_t
request_waiter(void)
{
	pid_t		pid;

	LWLockAcquire(autoha_shared->lock, LW_SHARED);
	pid = autoha_shared->request_waiter_pid;
	LWLockRelease(autoha_shared->lock);
	if (pid != 0 && kill(pid, 0) != 0)
		pid = 0;
	return pid;
}

/* ---------- settings ---------- */

static void
apply_timing(bool at_start)
{
	char	   *why;

	if (!autoha_settings_consistent(autoha_ttl, autoha_loop_wait, &why))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pg_autoha: ignoring new timing settings: %s", why),
				 errdetail("The worker keeps autoha.ttl = %d s and autoha.loop_wait = %d ms.",
						   ws.ttl, ws.loop_wait),
				 errhint("Raise autoha.ttl or lower autoha.loop_wait, then reload.")));
		return;
	}
	if (!at_start && autoha_ttl != ws.ttl)
		ereport(LOG,
				(errmsg("pg_autoha: autoha.ttl is now %d s; it applies from the next lease",
						autoha_ttl)));
	ws.ttl = autoha_ttl;
	ws.loop_wait = autoha_loop_wait;
	if (ws.etcd != NULL)
		etcd_client_set_timeout(ws.etcd, Max(100, Min(ws.loop_wait * 2 / 3, 2000)));
}

/*
 * (Re)build the etcd client when the endpoint list or credentials change.
 * Returns false, with the reason published, if there is nothing to talk to.
 */
static bool
ensure_etcd_client(void)
{
	char		errbuf[256];

	if (autoha_etcd_endpoints == NULL || autoha_etcd_endpoints[0] == '\0')
	{
		if (ws.etcd != NULL)
		{
			etcd_client_destroy(ws.etcd);
			ws.etcd = NULL;
		}
		return false;
	}
	if (ws.etcd != NULL && ws.etcd_endpoints != NULL &&
		strcmp(ws.etcd_endpoints, autoha_etcd_endpoints) == 0)
		return true;

	if (ws.etcd != NULL)
		etcd_client_destroy(ws.etcd);
	ws.etcd = etcd_client_create(autoha_etcd_endpoints,
								 Max(100, Min(ws.loop_wait * 2 / 3, 2000)),
								 errbuf, sizeof(errbuf));
	if (ws.etcd == NULL)
	{
		publish_error(errbuf);
		return false;
	}
	etcd_client_set_abort_check(ws.etcd, etcd_should_abort, NULL);
	etcd_client_set_auth(ws.etcd, autoha_etcd_username, autoha_etcd_password);
	etcd_client_set_tls(ws.etcd, autoha_etcd_cacert, autoha_etcd_cert, autoha_etcd_key);
	if (ws.etcd_endpoints != NULL)
		pfree(ws.etcd_endpoints);
	ws.etcd_endpoints = MemoryContextStrdup(TopMemoryContext, autoha_etcd_endpoints);
	return true;
}

static void
process_reload(void)
{
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	node_settings_reloaded();
	apply_timing(false);
	if (ws.etcd != NULL)
	{
		etcd_client_set_auth(ws.etcd, autoha_etcd_username, autoha_etcd_password);
		etcd_client_set_tls(ws.etcd, autoha_etcd_cacert, autoha_etcd_cert, autoha_etcd_key);
	}
}

/* ---------- lease ---------- */

static bool
grant_lease(void)
{
	int64		lease_id;
	int64		granted;
	int64		sent = fence_now_us();

	if (etcd_lease_grant(ws.etcd, ws.ttl, &lease_id, &granted) != ETCD_OK)
	{
		etcd_failed("could not obtain a lease from etcd");
		return false;
	}
	ws.lease_id = lease_id;
	ws.lease_sent_us = sent;
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	autoha_shared->lease_id = lease_id;
	LWLockRelease(autoha_shared->lock);
	return true;
}

/*
 * Keep our lease alive, or get a new one if etcd forgot it.  The time the
 * renewal was *sent* is what the lease's end is measured from: etcd cannot
 * expire it before that moment plus the TTL.
 */
static bool
renew_lease(void)
{
	int64		sent;
	int64		ttl_left;
	EtcdStatus	st;

	if (ws.lease_id == 0)
		return grant_lease();

	sent = fence_now_us();
	st = etcd_lease_keepalive(ws.etcd, ws.lease_id, &ttl_left);
	if (st == ETCD_OK)
	{
		ws.lease_sent_us = sent;
		return true;
	}
	if (st == ETCD_ERR_LEASE_NOT_FOUND)
	{
		ereport(LOG,
				(errmsg("pg_autoha: lease %lld expired in etcd; the keys attached to it (member entry, leader key if held) are gone",
						(long long) ws.lease_id)));
		ws.lease_id = 0;
		return grant_lease();
	}
	etcd_failed("could not renew the lease in etcd");
	return false;
}

/* The two comparisons of a transaction that must only apply while we lead. */
static void
leader_key_is_ours(EtcdCompare cmp[2])
{
	memset(cmp, 0, 2 * sizeof(EtcdCompare));
	cmp[0].key = ws.leader_key;
	cmp[0].target = ETCD_CMP_VALUE;
	cmp[0].result = ETCD_CMP_EQUAL;
	cmp[0].value = autoha_node_name;
	cmp[1].key = ws.leader_key;
	cmp[1].target = ETCD_CMP_LEASE;
	cmp[1].result = ETCD_CMP_EQUAL;
	cmp[1].number = ws.lease_id;
}

/*
 * A leader on its way down says so in the status key before it lets the
 * leader key go (only if the key is still ours, checked in the same
 * transaction).  Candidates still streaming from it then wait for that
 * stream to end, so a clean shutdown's last WAL reaches them first; after a
 * lease that merely expired they do not wait.  Best effort: if it fails,
 * candidates just do not wait for the stream.  Returns false when etcd
 * could not be reached at all, so the caller need not try the revoke too.
 */
static bool
announce_shutdown(void)
{
	char	   *status_json;
	EtcdCompare cmp[2];
	EtcdOp		success[1];
	EtcdTxnResult txn;
	EtcdStatus	st;

	if (!ws.led_last_time || !ws.system_verified)
		return true;
	status_json = dcs_status_json(ws.status_lsn, ws.status_timeline, true);
	if (status_json == NULL)
		return true;
	leader_key_is_ours(cmp);
	memset(success, 0, sizeof(success));
	success[0].type = ETCD_OP_PUT;
	success[0].key = ws.status_key;
	success[0].value = status_json;
	st = etcd_txn(ws.etcd, cmp, 2, success, 1, NULL, 0, &txn);
	if (st == ETCD_OK)
		etcd_txn_result_free(&txn);
	else
		ereport(LOG,
				(errmsg("pg_autoha: could not announce the shutdown in etcd: %s",
						etcd_last_error(ws.etcd))));
	free(status_json);
	return st != ETCD_ERR_TRANSPORT && st != ETCD_ERR_TIMEOUT;
}

/*
 * A leader rewrites its member key every loop.  When it has not for two
 * loops, it is probably frozen, dead or cut off, and its lease will lapse
 * soon: poll at election speed until it does, so the key's disappearance is
 * seen within ELECTION_POLL_MS rather than a whole loop later, and the
 * members publish their positions for the election just as quickly.
 */
static bool
leader_seems_gone(bool is_leader)
{
	return !is_leader && ws.leader_member_changed_us != 0 &&
		fence_now_us() - ws.leader_member_changed_us > 2 * (int64) ws.loop_wait * 1000;
}

/*
 * Revoke the lease so the leader key is gone at once; when the server is
 * going down, announce that first.
 */
static void
release_lease(const char *why, bool server_going_down)
{
	if (ws.etcd == NULL || ws.lease_id == 0)
		return;
	releasing = true;
	etcd_client_set_timeout(ws.etcd, RELEASE_TIMEOUT_MS);
	if (server_going_down && !announce_shutdown())
		ereport(LOG,
				(errmsg("pg_autoha: could not release lease %lld (%s): etcd is unreachable; it expires after autoha.ttl",
						(long long) ws.lease_id, why)));
	else if (etcd_lease_revoke(ws.etcd, ws.lease_id) == ETCD_OK)
		ereport(LOG,
				(errmsg("pg_autoha: released lease %lld (%s)", (long long) ws.lease_id, why)));
	else
		ereport(LOG,
				(errmsg("pg_autoha: could not release lease %lld (%s): %s; it expires after autoha.ttl",
						(long long) ws.lease_id, why, etcd_last_error(ws.etcd))));
	ws.lease_id = 0;
	if (autoha_shared != NULL)
		autoha_shared->lease_id = 0;
}

/*
 * Is the postmaster in its shutdown sequence?  It says so in postmaster.pid
 * before it signals its children, which is how pg_ctl knows too.  This tells
 * a server shutdown apart from a pg_terminate_backend() of the worker: both
 * send us SIGTERM.
 */
static bool
postmaster_is_stopping(void)
{
	FILE	   *f;
	char		line[MAXPGPATH];
	int			lineno = 0;
	bool		stopping = false;

	f = AllocateFile("postmaster.pid", "r");
	if (f == NULL)
		return true;			/* gone: certainly not running normally */
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (++lineno == LOCK_FILE_LINE_PM_STATUS)
		{
			stopping = strncmp(line, PM_STATUS_STOPPING, strlen(PM_STATUS_STOPPING)) == 0;
			break;
		}
	}
	FreeFile(f);
	return stopping;
}

/*
 * Leave the loop.  When the server is going away (shutdown or postmaster
 * death) revoke the lease first, so a replica can take over at once.  When
 * only this worker was terminated, keep the lease: the postmaster restarts
 * us after bgw_restart_time (exit code 1) and the new worker renews the
 * lease it finds in shared memory, so nobody fails over.
 */
static void pg_attribute_noreturn()
exit_worker(const char *why, bool server_going_away)
{
	ereport(LOG, (errmsg("pg_autoha: worker exiting: %s", why)));
	if (server_going_away)
	{
		/*
		 * Fence first: once the lease is gone a replica may be promoted, and
		 * backends still running here must not commit another write.
		 */
		fence_raise(why);
		release_lease(why, true);
	}
	proc_exit(1);
}

static void pg_attribute_noreturn()
exit_on_sigterm(void)
{
	if (postmaster_is_stopping())
		exit_worker("server shutting down", true);
	exit_worker("worker terminated; the lease is kept for the next worker", false);
}

/* ---------- reading and publishing ---------- */

static char *
member_json(const LocalState *local)
{
	MemberInfo	me;
	char	   *json;
	char	   *copy;

	memset(&me, 0, sizeof(me));
	strlcpy(me.name, local->name, sizeof(me.name));
	strlcpy(me.role, local->in_recovery ? "replica" : "primary", sizeof(me.role));
	strlcpy(me.state, "running", sizeof(me.state));
	if (local->streaming)
		strlcpy(me.replication_state, "streaming", sizeof(me.replication_state));
	node_connect_address(me.host, sizeof(me.host), &me.port);
	me.timeline = local->timeline;
	me.lsn = ha_local_position(local);
	me.nofailover = local->nofailover;
	me.failover_priority = local->failover_priority;

	json = dcs_member_json(&me, NULL);
	copy = pstrdup(json);
	free(json);
	return copy;
}

/*
 * One round trip: publish our member entry (once we belong to the cluster)
 * and read every key of the cluster.  If the leader key is ours, also
 * record the leader's position in "status", which replicas use to measure
 * their lag even after the leader is gone.
 */
static bool
read_cluster(const LocalState *local, ClusterView *view)
{
	EtcdRangeResult *range = NULL;
	EtcdRangeResult plain;
	EtcdTxnResult txn;
	char		errbuf[256];
	int			nbad = 0;

	if (ws.system_verified && ws.lease_id != 0)
	{
		char	   *me = member_json(local);
		char	   *status_json = dcs_status_json(ha_local_position(local),
												  local->timeline, false);
		char	   *status = pstrdup(status_json);
		EtcdCompare cmp[2];
		EtcdOp		success[3];
		EtcdOp		failure[2];
		int			i;

		free(status_json);
		ws.status_lsn = ha_local_position(local);
		ws.status_timeline = local->timeline;
		leader_key_is_ours(cmp);

		memset(success, 0, sizeof(success));
		success[0].type = ETCD_OP_PUT;
		success[0].key = ws.member_key;
		success[0].value = me;
		success[0].lease = ws.lease_id;
		success[1].type = ETCD_OP_PUT;
		success[1].key = ws.status_key;
		success[1].value = status;
		success[2].type = ETCD_OP_RANGE;
		success[2].key = ws.prefix;
		success[2].prefix = true;
		memcpy(failure, success, sizeof(EtcdOp));
		memcpy(&failure[1], &success[2], sizeof(EtcdOp));

		if (etcd_txn(ws.etcd, cmp, 2, success, 3, failure, 2, &txn) != ETCD_OK)
		{
			etcd_failed("could not read the cluster from etcd");
			return false;
		}
		for (i = 0; i < txn.nresults; i++)
		{
			if (txn.results[i].type == ETCD_OP_RANGE)
				range = &txn.results[i].range;
		}
		if (range == NULL)
		{
			publish_error("etcd's reply to the cluster read had no range result");
			return false;
		}
		if (range->revision == 0)
			range->revision = txn.revision;
	}
	else
	{
		if (etcd_range(ws.etcd, ws.prefix, true, &plain) != ETCD_OK)
		{
			etcd_failed("could not read the cluster from etcd");
			return false;
		}
		range = &plain;
	}

	dcs_view_from_kvs(ws.prefix, range, view, &nbad, errbuf, sizeof(errbuf));
	if (nbad > 0)
	{
		char		msg[AUTOHA_ERROR_LEN];

		snprintf(msg, sizeof(msg), "ignored %d malformed key(s) in etcd: %s", nbad, errbuf);
		publish_error(msg);
	}
	return true;
}

/* ---------- actions ---------- */

/*
 * Put the leader key with our lease, only if it does not exist: a new key
 * is a new term (its create_revision), and the transaction makes sure two
 * servers can never both believe they started it.
 */
static bool
take_leader_key(void)
{
	int64		sent;
	bool		taken;

	/*
	 * The key must hang on a lease, or it would outlive us: a worker's first
	 * loop reads before it has one.
	 */
	if (ws.lease_id == 0 && !grant_lease())
		return false;

	sent = fence_now_us();
	if (etcd_put_if_unchanged(ws.etcd, ws.leader_key, autoha_node_name,
							  ws.lease_id, 0, &taken, NULL) != ETCD_OK)
	{
		etcd_failed("could not take the leader key");
		return false;
	}
	if (taken)
		ws.key_taken_sent_us = sent;
	return taken;
}

static bool
initialize_cluster(const LocalState *local)
{
	bool		created;

	if (etcd_put_if_unchanged(ws.etcd, ws.initialize_key, local->sysid, 0, 0,
							  &created, NULL) != ETCD_OK)
	{
		etcd_failed("could not initialize the cluster in etcd");
		return false;
	}
	if (!created)
		return false;			/* someone else did; re-read next loop */
	ereport(LOG,
			(errmsg("pg_autoha: initialized cluster \"%s\" in etcd with system identifier %s",
					autoha_cluster_name, local->sysid)));
	ws.system_verified = true;
	return true;
}

/* ---------- synchronous replication ---------- */

/*
 * Write the "sync" key (standbys, or delete it when delete_key), only while
 * the leader key is ours and the sync key is as we read it
 * (expect_revision; -1 = whatever it is).  Returns true once applied.
 */
static bool
write_sync_key(bool delete_key, const char *const *standbys, int n,
			   int64 expect_revision)
{
	EtcdCompare cmp[3];
	EtcdOp		op;
	EtcdTxnResult txn;
	char	   *json = NULL;
	char	   *value = NULL;
	bool		applied = false;
	int			ncmp = 2;

	leader_key_is_ours(cmp);
	if (expect_revision >= 0)
	{
		memset(&cmp[2], 0, sizeof(EtcdCompare));
		cmp[2].key = ws.sync_key;
		cmp[2].target = ETCD_CMP_MOD;
		cmp[2].result = ETCD_CMP_EQUAL;
		cmp[2].number = expect_revision;
		ncmp = 3;
	}
	memset(&op, 0, sizeof(op));
	op.key = ws.sync_key;
	if (delete_key)
		op.type = ETCD_OP_DELETE;
	else
	{
		json = dcs_sync_json(autoha_node_name, standbys, n);
		if (json == NULL)
			return false;
		value = pstrdup(json);
		free(json);
		op.type = ETCD_OP_PUT;
		op.value = value;
	}
	if (etcd_txn(ws.etcd, cmp, ncmp, &op, 1, NULL, 0, &txn) != ETCD_OK)
	{
		etcd_failed(delete_key ? "could not delete the sync key" : "could not write the sync key");
		return false;
	}
	applied = txn.succeeded;
	etcd_txn_result_free(&txn);
	return applied;
}

static void
set_sync_names(const char *value)
{
	char		errbuf[AUTOHA_ERROR_LEN];

	if (!node_set_sync_names(value, errbuf, sizeof(errbuf)))
	{
		char		msg[AUTOHA_ERROR_LEN];

		snprintf(msg, sizeof(msg), "could not set synchronous_standby_names: %s", errbuf);
		publish_error(msg);
		return;
	}
	ws.sync_ready_lsn = 0;
	ws.sync_names_changed_us = fence_now_us();
}

/*
 * On the leader, every loop: keep synchronous_standby_names and the
 * "sync" key (syncset.c plans the change and its order; this carries it
 * out: the key first, the setting only once the key is written).
 */
static void
manage_sync(const ClusterView *view)
{
	WalSenderInfo senders[AUTOHA_MAX_MEMBERS * 2];
	SyncInput	in;
	SyncPlan	plan;
	char		errbuf[AUTOHA_ERROR_LEN];
	const char *in_effect;
	int			n;

	ws.sync_changing = false;
	if (autoha_synchronous_mode == SYNC_MODE_OFF && !view->sync.present)
		return;

	n = node_wal_senders(senders, lengthof(senders), errbuf, sizeof(errbuf));
	if (n < 0)
	{
		publish_error(errbuf);
		return;
	}
	in_effect = node_sync_names_in_effect();
	if (strcmp(in_effect, ws.sync_names_seen) != 0)
	{
		/* changed, by us or by hand: measure again once it settles */
		strlcpy(ws.sync_names_seen, in_effect, sizeof(ws.sync_names_seen));
		ws.sync_ready_lsn = 0;
		ws.sync_names_changed_us = fence_now_us();
	}

	memset(&in, 0, sizeof(in));
	in.mode = (SyncMode) autoha_synchronous_mode;
	in.node_count = autoha_synchronous_node_count;
	in.self = autoha_node_name;
	in.view = view;
	in.nsenders = n;
	in.senders = senders;
	in.names_in_effect = in_effect;
	in.propagated = node_sync_standbys_defined() == (in_effect[0] != '\0') &&
		fence_now_us() - ws.sync_names_changed_us >= (int64) SYNC_SETTLE_MS * 1000;
	in.ready_lsn = ws.sync_ready_lsn;
	sync_plan(&in, &plan);

	if (plan.delete_key || plan.write_key)
	{
		const char *names[AUTOHA_MAX_MEMBERS];
		int			i;

		for (i = 0; i < plan.nkey; i++)
			names[i] = plan.key[i];
		if (!write_sync_key(plan.delete_key, names, plan.nkey,
							view->sync.present ? view->sync.mod_revision : 0))
		{
			ws.sync_changing = true;	/* the next loop reads it again */
			return;
		}
	}
	if (plan.reason[0] != '\0')
		ereport(LOG, (errmsg("pg_autoha: %s", plan.reason)));
	if (plan.set_names)
		set_sync_names(plan.names);
	else if (plan.reset_names)
		set_sync_names(NULL);
	else if (plan.measure)
	{
		/*
		 * The setting is in effect everywhere: measure, then make the
		 * standbys reply, which both releases commits waiting for a new
		 * standby that has them already and shows its position soon.
		 */
		ws.sync_ready_lsn = node_flush_position();
		node_nudge_standbys();
	}
	ws.sync_changing = plan.set_names || plan.measure || plan.npending > 0 ||
		plan.write_key;
}

/*
 * A replica about to promote itself in synchronous mode: the "sync" key
 * names it as leader with no standby (until one is known to hold every
 * commit it acknowledges, nobody else may be promoted), and
 * synchronous_standby_names starts empty ("on": writes flow at once) or
 * "*" ("strict": they wait for the first standby).  Returns false if the
 * key could not be written: then it must not promote yet.
 */
static bool
prepare_sync_for_promotion(void)
{
	const char *start;

	if (autoha_synchronous_mode == SYNC_MODE_OFF)
		return true;
	if (!write_sync_key(false, NULL, 0, -1))
	{
		publish_error("not promoting yet: could not make the sync key name this server as leader "
					  "with no synchronous standby (synchronous mode)");
		return false;
	}
	start = autoha_synchronous_mode == SYNC_MODE_STRICT ? "*" : "";
	if (strcmp(node_sync_names_in_effect(), start) != 0)
		set_sync_names(start);
	ws.sync_ready_lsn = 0;		/* measured again once we lead */
	return true;
}

/*
 * Wait for the startup process to finish recovery after a promotion request,
 * renewing the lease meanwhile.  Returns false on timeout.
 */
static bool
wait_for_promotion(void)
{
	int64		start = fence_now_us();
	int64		last_renewal = start;

	while (RecoveryInProgress())
	{
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			exit_on_sigterm();
		if (fence_now_us() - start > (int64) PROMOTION_TIMEOUT_MS * 1000)
			return false;
		if (fence_now_us() - last_renewal > (int64) ws.loop_wait * 1000)
		{
			renew_lease();
			last_renewal = fence_now_us();
		}
		/*
		 * The startup process may be sleeping before its next attempt to
		 * stream (wal_retrieve_retry_interval): wake it, so that it sees the
		 * promotion request now.
		 */
		WakeupRecovery();
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
					   5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (rc & WL_POSTMASTER_DEATH)
			exit_worker("postmaster died during promotion", true);
	}
	return true;
}

static void
act_promote(const ClusterView *view, const LocalState *local)
{
	char		errbuf[256];
	int64		started = fence_now_us();
	TimeLineID	tli;

	/* the key first: only its holder may promote */
	ws.key_taken_sent_us = 0;
	if (!(view->has_leader && strcmp(view->leader, local->name) == 0) &&
		!take_leader_key())
		return;

	ereport(LOG,
			(errmsg("pg_autoha: took the leader key of cluster \"%s\"; promoting this server",
					autoha_cluster_name)));
	publish_role("promoting", true, local->name);

	/*
	 * Slots for the other members before the promotion, so that they can
	 * stream from us as soon as they repoint (a physical slot can be created
	 * on a standby): in synchronous mode that is when writes resume.  A
	 * switchover target made them when it was named, so this costs nothing
	 * then; a failure here is retried once we lead.
	 */
	if (node_ensure_slots(view, local->name, errbuf, sizeof(errbuf)) < 0)
		ereport(LOG, (errmsg("pg_autoha: could not create slots before promotion: %s", errbuf)));

	if (!prepare_sync_for_promotion())
		return;

	if (!node_request_promotion(errbuf, sizeof(errbuf)))
	{
		publish_error(errbuf);
		return;
	}
	if (!wait_for_promotion())
	{
		publish_error("promotion did not finish in time; giving the leader key back");
		release_lease("promotion timed out", false);
		return;
	}
#if PG_VERSION_NUM >= 150000
	tli = GetWALInsertionTimeLine();
#else
	tli = ThisTimeLineID;
#endif
	ereport(LOG,
			(errmsg("pg_autoha: promoted: \"%s\" leads cluster \"%s\" on timeline %u (%.0f ms after taking the key)",
					local->name, autoha_cluster_name, tli,
					(fence_now_us() - started) / 1000.0)));

	/*
	 * Taking the key in this loop attached it to our lease, so etcd
	 * confirmed the lease alive when it received that transaction: accept
	 * writes now, from that send time, rather than a whole loop later.
	 */
	if (ws.key_taken_sent_us != 0)
	{
		ws.fence_deadline_us = fence_deadline_after(ws.key_taken_sent_us);
		if (ws.fence_deadline_us > fence_now_us())
			fence_lower(ws.fence_deadline_us);
	}
	note_promotion(view, tli);
}


/* ---------- switchover, demotion, rewind, history ---------- */

/*
 * Delete the "failover" key, but only the request we decided on: a newer
 * one (another mod_revision) is left for the next loop to look at.
 */
static void
clear_request(const ClusterView *view, const char *why)
{
	/* why: logged if given; a decision's reason was logged as a decision */
	bool		deleted;

	if (etcd_delete_if_unchanged(ws.etcd, ws.failover_key,
								 view->failover.mod_revision, &deleted) != ETCD_OK)
	{
		etcd_failed("could not delete the failover key");
		return;
	}
	if (deleted && why != NULL)
		ereport(WARNING, (errmsg("pg_autoha: %s", why)));
}

/* now as ISO 8601 in UTC with milliseconds, the way Patroni writes it */
static void
iso_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm	tm;
	char		base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ld+00:00", base, ts.tv_nsec / 1000000);
}

/*
 * Append the pending line to the "history" key: read, append (or replace
 * the line of the same timeline), write back only if nobody changed it in
 * between.  Returns true once it is written.
 */
static bool
write_history(void)
{
	EtcdRangeResult range;
	char	   *json;
	char	   *value;
	bool		ok;

	if (etcd_range(ws.etcd, ws.history_key, false, &range) != ETCD_OK)
	{
		etcd_failed("could not read the history key");
		return false;
	}
	json = dcs_history_append(range.nkvs > 0 ? range.kvs[0].value : NULL,
							  ws.history_timeline, ws.history_lsn,
							  ws.history_reason, ws.history_time,
							  autoha_node_name);
	if (json == NULL)
		return false;
	value = pstrdup(json);
	free(json);

	if (etcd_put_if_unchanged(ws.etcd, ws.history_key, value, 0,
							  range.nkvs > 0 ? range.kvs[0].mod_revision : 0,
							  &ok, NULL) != ETCD_OK)
	{
		etcd_failed("could not write the history key");
		return false;
	}
	if (ok)
		ereport(LOG,
				(errmsg("pg_autoha: history: timeline %u ended at %X/%X (%s); \"%s\" leads on timeline %u",
						ws.history_timeline, LSN_FORMAT_ARGS(ws.history_lsn),
						ws.history_reason, autoha_node_name, ws.history_timeline + 1)));
	return ok;
}

/*
 * After our promotion: note what happened for the "history" key, from the
 * timeline history file (where the old timeline ended) and from the
 * request that led here, if any.
 */
static void
note_promotion(const ClusterView *view, TimeLineID tli)
{
	uint32		parent;
	uint64		lsn;
	const char *old = ws.last_leader_name[0] ? ws.last_leader_name : NULL;

	if (!node_switch_point(tli, &parent, &lsn))
		return;
	ws.history_timeline = parent;
	ws.history_lsn = lsn;
	if (view->failover.present && strcmp(view->failover.member, autoha_node_name) == 0)
		snprintf(ws.history_reason, sizeof(ws.history_reason), "%s%s%s",
				 view->failover.leader[0] ? "switchover" : "manual failover",
				 view->failover.leader[0] || old ? " from " : "",
				 view->failover.leader[0] ? view->failover.leader : old ? old : "");
	else
		snprintf(ws.history_reason, sizeof(ws.history_reason), "failover%s%s",
				 old ? " from " : "", old ? old : "");
	iso_timestamp(ws.history_time, sizeof(ws.history_time));
	ws.history_pending = true;	/* written by the next loops, once we lead */
}

/* wait a little on the latch, honouring shutdown and postmaster death */
static void
short_wait(long ms)
{
	int			rc;

	CHECK_FOR_INTERRUPTS();
	if (ShutdownRequestPending)
		exit_on_sigterm();
	rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
				   ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	if (rc & WL_POSTMASTER_DEATH)
		exit_worker("postmaster died", true);
}

/*
 * A crash restart (exit code 2: the postmaster restarts every process and
 * the startup process reads standby.signal again) brings this server back
 * as a replica, with no outside help.  Every client connection is cut, so
 * no commit in flight is acknowledged.
 */
static void pg_attribute_noreturn()
restart_as_replica(const char *leader)
{
	ereport(LOG,
			(errmsg("pg_autoha: restarting this server as a replica of \"%s\"; the crash restart that follows is intended",
					leader)));
	proc_exit(2);
}

/*
 * A switchover, on the leader.  Prepare to restart as the target's replica,
 * fence writes (and cut client sessions), wait for the
 * target to replay all our WAL, then in one transaction that applies only
 * while the key is ours: delete the leader key, publish our final position
 * in "status" (the target takes over only once it has received that much),
 * and name the target in "failover" so that it alone may take the key.
 * Then restart as its replica (standby.signal and primary_conninfo were
 * written before the fence went up).
 */
static void
act_handover(const ClusterView *view, const LocalState *local, const char *target_name)
{
	const MemberInfo *target = ha_find_member(view, target_name);
	int64		start = fence_now_us();
	int64		last_renewal = start;
	uint64		flush = 0;
	uint64		target_flush = 0;
	uint64		target_replay = 0;
	char		errbuf[AUTOHA_ERROR_LEN];
	char		why[AUTOHA_ERROR_LEN];
	char	   *status_json;
	char	   *status;
	char	   *request_json;
	char	   *request;
	EtcdCompare cmp[2];
	EtcdOp		ops[3];
	EtcdTxnResult txn;
	bool		handed = false;

	if (target == NULL)
		return;

	/*
	 * standby.signal and primary_conninfo first, while writes go on: a
	 * primary ignores both until it restarts.
	 */
	if (!node_prepare_standby(target, errbuf, sizeof(errbuf)))
	{
		snprintf(why, sizeof(why), "cancelled the switchover to \"%s\": could not prepare to restart as its replica: %s",
				 target_name, errbuf);
		clear_request(view, why);
		return;
	}
	start = fence_now_us();
	raise_fence(false, psprintf("switchover: handing the leader key over to \"%s\"", target_name));
	ereport(LOG,
			(errmsg("pg_autoha: switchover to \"%s\": writes are fenced; waiting for it to replay all of this server's WAL",
					target_name)));

	/*
	 * The terminated sessions that had a transaction going write its abort
	 * record as they exit: let them, so that our final position includes
	 * it and the target gets it before it takes over (else this server's
	 * WAL would end past the new timeline's start and need a rewind).
	 */
	while (node_client_writers(errbuf, sizeof(errbuf)) > 0 &&
		   fence_now_us() - start < (int64) HANDOVER_DRAIN_MS * 1000)
		short_wait(1);

	for (;;)
	{
		flush = node_flush_all();
		if (!node_replica_position(target_name, &target_flush, &target_replay,
								   errbuf, sizeof(errbuf)))
		{
			snprintf(why, sizeof(why), "cancelled the switchover to \"%s\": %s", target_name, errbuf);
			goto cancel;
		}
		if (target_replay >= flush)
			break;
		if (fence_now_us() - start > (int64) HANDOVER_CATCHUP_MS * 1000)
		{
			snprintf(why, sizeof(why),
					 "cancelled the switchover to \"%s\": it did not replay this server's WAL up to %X/%X within %d ms "
					 "(it replayed up to %X/%X); writes are accepted again",
					 target_name, LSN_FORMAT_ARGS(flush), HANDOVER_CATCHUP_MS,
					 LSN_FORMAT_ARGS(target_replay));
			goto cancel;
		}
		if (fence_now_us() - last_renewal > (int64) ws.loop_wait * 1000)
		{
			renew_lease();
			last_renewal = fence_now_us();
		}
		short_wait(2);
	}

	flush = node_flush_all();
	/*
	 * Not marked as a shutdown: the target needs no wait for our stream to
	 * end, it takes over as soon as it has received up to flush.  WAL we
	 * write after this point (no client commit passes the fence; only
	 * background work, such as a standby snapshot) is drained to it below;
	 * should some of it miss the target anyway, this server finds itself
	 * diverged after its restart and is rewound, which costs only its own
	 * rejoin time, never an acknowledged write.
	 */
	status_json = dcs_status_json(flush, local->timeline, false);
	status = pstrdup(status_json);
	free(status_json);
	request_json = dcs_failover_json(autoha_node_name, target_name);
	request = pstrdup(request_json);
	free(request_json);
	leader_key_is_ours(cmp);
	memset(ops, 0, sizeof(ops));
	ops[0].type = ETCD_OP_DELETE;
	ops[0].key = ws.leader_key;
	ops[1].type = ETCD_OP_PUT;
	ops[1].key = ws.status_key;
	ops[1].value = status;
	ops[2].type = ETCD_OP_PUT;
	ops[2].key = ws.failover_key;
	ops[2].value = request;
	if (etcd_txn(ws.etcd, cmp, 2, ops, 3, NULL, 0, &txn) == ETCD_OK)
		handed = txn.succeeded;
	else
		etcd_failed("could not hand the leader key over");

	if (handed)
	{
		int64		drained = fence_now_us();

		/* let our last WAL reach the target before the restart cuts the stream */
		while (target_flush < flush &&
			   fence_now_us() - drained < (int64) HANDOVER_DRAIN_MS * 1000)
		{
			short_wait(1);
			if (!node_replica_position(target_name, &target_flush, &target_replay,
									   errbuf, sizeof(errbuf)))
				break;
		}
		ereport(LOG,
				(errmsg("pg_autoha: switchover: handed the leader key to \"%s\" at %X/%X, %.0f ms after fencing writes",
						target_name, LSN_FORMAT_ARGS(flush),
						(fence_now_us() - start) / 1000.0)));

		/*
		 * Called on this server, autoha_switchover() is waiting to see the
		 * new leader accept writes: let it, the restart would cut it off.
		 * We stay fenced meanwhile.
		 */
		drained = fence_now_us();
		while (request_waiter() != 0 &&
			   fence_now_us() - drained < (int64) HANDOVER_WAITER_MS * 1000)
			short_wait(10);

		/*
		 * Background work (a standby snapshot, autovacuum) may still have
		 * written WAL after the final position.  Say so: if the target took
		 * over before receiving it, this server has diverged and is rewound
		 * after its restart, and the DBA should know why.
		 */
		if (node_flush_all() > flush)
			ereport(LOG,
					(errmsg("pg_autoha: switchover: %llu bytes of WAL were written after the final position %X/%X handed to \"%s\"",
							(unsigned long long) (node_flush_position() - flush),
							LSN_FORMAT_ARGS(flush), target_name),
					 errdetail("Background work, not a client commit: the fence was up."),
					 errhint("If \"%s\" took over before receiving it, this server is rewound with pg_rewind before it rejoins as a replica.",
							 target_name)));
	}
	else
	{
		/*
		 * The key may or may not be ours any more: do not find out the hard
		 * way.  Revoking the lease drops it in any case, and the restart
		 * below makes this server a replica, which is safe whoever leads.
		 */
		ereport(WARNING,
				(errmsg("pg_autoha: switchover to \"%s\": the handover transaction did not apply; releasing the lease and restarting as a replica",
						target_name)));
		release_lease("switchover handover failed", false);
	}
	restart_as_replica(target_name);

cancel:
	node_cancel_standby();
	clear_request(view, why);
}

/*
 * Another member leads and this server is a primary (it was frozen, cut
 * off, or restarted after a failover): become its replica.  If our WAL
 * went past the new timeline's fork point, the replica cannot follow and
 * the next loops see it diverged (HA_REWIND).
 */
static void
act_demote(const ClusterView *view, const char *leader_name)
{
	const MemberInfo *leader = ha_find_member(view, leader_name);
	char		errbuf[AUTOHA_ERROR_LEN];

	if (leader == NULL)
		return;
	if (!restart_after_crash)
	{
		publish_error("cannot rejoin as a replica in place: restart_after_crash is off, so the crash restart "
					  "that demotes this server would stop it; it stays a fenced primary "
					  "(turn restart_after_crash on, or restart it with standby.signal)");
		return;
	}
	if (!node_prepare_standby(leader, errbuf, sizeof(errbuf)))
	{
		char		msg[AUTOHA_ERROR_LEN];

		snprintf(msg, sizeof(msg), "could not prepare to rejoin as a replica of \"%s\": %s",
				 leader_name, errbuf);
		publish_error(msg);
		return;
	}
	/* let the postmaster take in the reload before it restarts everything */
	short_wait(100);
	restart_as_replica(leader_name);
}

/* Is there a recent attempt to rewind this server that did not help? */
static bool
rewind_attempted_recently(char *msg, size_t len)
{
	struct stat st;
	time_t		age;

	if (stat(REWIND_ATTEMPT_FILE, &st) != 0)
		return false;
	age = time(NULL) - st.st_mtime;
	if (age < 0 || age >= REWIND_RETRY_S)
		return false;
	snprintf(msg, len,
			 "this server's WAL diverged from the leader's; pg_autoha_rejoin was started %ld s ago to rewind it "
			 "(its output is in the server log); it is not started again until %d s after that "
			 "(remove \"%s\" from the data directory to allow it sooner)",
			 (long) age, REWIND_RETRY_S, REWIND_ATTEMPT_FILE);
	return true;
}

static void
act_rewind(void)
{
	char		errbuf[AUTOHA_ERROR_LEN];
	FILE	   *f;

	if (!node_can_rewind(errbuf, sizeof(errbuf)) ||
		rewind_attempted_recently(errbuf, sizeof(errbuf)))
	{
		publish_error(errbuf);
		return;
	}
	f = AllocateFile(REWIND_ATTEMPT_FILE, "w");
	if (f != NULL)
	{
		fprintf(f, "%ld\n", (long) time(NULL));
		FreeFile(f);
	}
	if (!node_spawn_rejoin(errbuf, sizeof(errbuf)))
		publish_error(errbuf);
}

static void
act(const HaDecision *d, const ClusterView *view, const LocalState *local)
{
	char		errbuf[AUTOHA_ERROR_LEN];
	const MemberInfo *leader;

	switch (d->action)
	{
		case HA_REFUSE:
			publish_error(d->reason);
			break;

		case HA_INITIALIZE:
			if (initialize_cluster(local) && take_leader_key())
				ereport(LOG,
						(errmsg("pg_autoha: \"%s\" leads cluster \"%s\"",
								local->name, autoha_cluster_name)));
			break;

		case HA_ACQUIRE:
			if (take_leader_key())
				ereport(LOG,
						(errmsg("pg_autoha: \"%s\" holds the leader key of cluster \"%s\"",
								local->name, autoha_cluster_name)));
			break;

		case HA_LEAD:
			if (node_ensure_slots(view, local->name, errbuf, sizeof(errbuf)) < 0)
				publish_error(errbuf);
			manage_sync(view);
			break;

		case HA_FOLLOW:
			/* about to take over: have the others' slots ready beforehand */
			if (view->failover.present &&
				strcmp(view->failover.member, local->name) == 0 &&
				node_ensure_slots(view, local->name, errbuf, sizeof(errbuf)) < 0)
				publish_error(errbuf);
			leader = ha_find_member(view, d->leader);
			if (leader != NULL && leader->host[0] != '\0' && leader->port > 0)
			{
				node_follow(leader, local->streaming, errbuf, sizeof(errbuf));
				if (errbuf[0] != '\0')
					publish_error(errbuf);
			}
			break;

		case HA_PROMOTE:
			act_promote(view, local);
			break;

		case HA_STAND_ASIDE:
			publish_error(d->reason);
			break;

		case HA_HANDOVER:
			act_handover(view, local, d->leader);
			break;

		case HA_DEMOTE:
			act_demote(view, d->leader);
			break;

		case HA_REWIND:
			act_rewind();
			break;

		case HA_WAIT:
			break;
	}
	if (d->clear_request)
		clear_request(view, NULL);
}

/* ---------- the write fence ---------- */

/*
 * Until when may the leader acknowledge writes after a renewal sent at
 * sent_us was confirmed?  About two and a half loops (so one slow round trip
 * does not fence a healthy leader, two failed ones do), and never later than
 * the lease's own end minus a margin for clock rate differences.
 */
static int64
fence_deadline_after(int64 sent_us)
{
	int64		early = sent_us + (int64) ws.loop_wait * 2500;
	int64		margin = Max((int64) ws.ttl * 100000, 500000);
	int64		hard = sent_us + (int64) ws.ttl * 1000000 - margin;

	return Min(early, hard);
}

/* Returns true if the fence was down until now. */
static bool
raise_fence(bool in_recovery, const char *reason)
{
	char		errbuf[AUTOHA_ERROR_LEN];
	int			n;

	if (!fence_raise(reason))
		return false;
	if (in_recovery)
		return true;
	n = node_terminate_client_sessions(request_waiter(), errbuf, sizeof(errbuf));
	if (n < 0)
		publish_error(errbuf);
	else if (n > 0)
		ereport(LOG,
				(errmsg("pg_autoha: terminated %d client session(s) so that they reconnect to the leader", n)));
	return true;
}

/* A loop could not reach etcd: fence once the deadline has passed. */
static void
fence_after_failure(bool in_recovery)
{
	int64		now = fence_now_us();
	char		reason[AUTOHA_FENCE_REASON_LEN];

	if (ws.first_failure_us == 0)
		ws.first_failure_us = now;
	if (!fence_is_up())
		return;
	snprintf(reason, sizeof(reason),
			 "its lease could not be confirmed in etcd for %.1f s",
			 (now - ws.lease_sent_us) / 1000000.0);

	/*
	 * The backends enforced the fence by the clock at the deadline already;
	 * say when that was, measured from the first failed renewal and from
	 * the last renewal etcd confirmed (after which the lease was at risk).
	 */
	if (raise_fence(in_recovery, reason) && ws.fence_deadline_us != 0)
		ereport(LOG,
				(errmsg("pg_autoha: writes were refused from %.0f ms after the first failed lease renewal, "
						"%.0f ms after the last confirmed one was sent; etcd could not expire the lease before %.0f ms",
						(ws.fence_deadline_us - ws.first_failure_us) / 1000.0,
						(ws.fence_deadline_us - ws.lease_sent_us) / 1000.0,
						(double) ws.ttl * 1000.0)));
}

/* ---------- one loop ---------- */

/*
 * Do we still hold the leader key although this loop could not read etcd?
 * Only if the last read showed it as ours and etcd cannot have expired our
 * lease yet: it cannot before the last renewal's send time plus the TTL.
 */
static bool
still_leader_without_etcd(void)
{
	return ws.led_last_time && ws.lease_id != 0 &&
		fence_now_us() < ws.lease_sent_us + (int64) ws.ttl * 1000000;
}

static void
log_decision(const HaDecision *d)
{
	if (d->action == ws.last_action && strcmp(d->reason, ws.last_reason) == 0)
		return;
	/* waiting reasons carry changing numbers; log only the action change */
	if (d->action != ws.last_action || d->action != HA_WAIT)
		ereport(d->clear_request && strncmp(d->reason, "cancelled", 9) == 0 ? WARNING : LOG,
				(errmsg("pg_autoha: %s: %s", ha_action_name(d->action), d->reason)));
	ws.last_action = d->action;
	strlcpy(ws.last_reason, d->reason, sizeof(ws.last_reason));
}

/*
 * A switchover request asks this leader to hand over: checkpoint first,
 * while writes still go on.  Without it, a spread checkpoint in progress
 * (the one a promotion starts, typically) may complete between the moment
 * we publish our final position and our restart: its record lands past the
 * position the target took over at, and this server needs pg_rewind to
 * rejoin.  After an immediate checkpoint, the next one is checkpoint_timeout
 * away.  It also shortens the crash recovery of our restart as a replica.
 * Returns true while that checkpoint is still running; after
 * HANDOVER_CHECKPOINT_MS the handover goes ahead without it.
 */
static bool
checkpoint_for_switchover(const ClusterView *view)
{
	int64		waited_ms;

	if (view->failover.member[0] != '\0' &&
		strcmp(view->failover.member, autoha_node_name) == 0)
		return false;			/* the request names us: nothing to hand over */
	if (ws.checkpoint_revision != view->failover.mod_revision)
	{
		ws.checkpoint_revision = view->failover.mod_revision;
		ws.checkpoint_from = node_request_checkpoint();
		ws.checkpoint_asked_us = fence_now_us();
		ws.checkpoint_pending = true;
	}
	if (!ws.checkpoint_pending)
		return false;
	waited_ms = (fence_now_us() - ws.checkpoint_asked_us) / 1000;
	if (node_checkpoint_done(ws.checkpoint_from))
	{
		ws.checkpoint_pending = false;
		ereport(LOG,
				(errmsg("pg_autoha: switchover: checkpoint done before handing over, in %lld ms",
						(long long) waited_ms)));
	}
	else if (waited_ms >= HANDOVER_CHECKPOINT_MS)
	{
		ws.checkpoint_pending = false;
		ereport(LOG,
				(errmsg("pg_autoha: switchover: the checkpoint requested %lld ms ago has not completed; handing over without waiting for it",
						(long long) waited_ms),
				 errdetail("This server may need pg_rewind to rejoin as a replica if the checkpoint completes during the handover.")));
	}
	return ws.checkpoint_pending;
}

/* Returns how long to sleep before the next loop, in milliseconds. */
static long
ha_cycle(void)
{
	LocalState	local;
	ClusterView *view = palloc0(sizeof(ClusterView));
	HaDecision	d;
	bool		is_leader;
	bool		renewed;

	ws.cycle_had_error = false;
	if (!ensure_etcd_client())
	{
		if (autoha_etcd_endpoints == NULL || autoha_etcd_endpoints[0] == '\0')
			publish_error("autoha.etcd_endpoints is empty: pg_autoha is idle");
		raise_fence(RecoveryInProgress(),
					"no etcd is configured (autoha.etcd_endpoints is empty), so no leader lease can be confirmed");
		publish_role("idle", false, NULL);
		return ws.loop_wait;
	}

	memset(&local, 0, sizeof(local));
	local.name = autoha_node_name;
	node_observe(&local);

	renewed = ws.system_verified;
	if ((renewed && !renew_lease()) || !read_cluster(&local, view))
	{
		fence_after_failure(local.in_recovery);
		publish_cycle(NULL, &local, NULL, still_leader_without_etcd() && !fence_is_up());
		return ws.loop_wait;
	}
	ws.first_failure_us = 0;

	if (!ws.system_verified && view->has_initialize &&
		strcmp(view->initialize, local.sysid) == 0)
	{
		ws.system_verified = true;
		ereport(LOG,
				(errmsg("pg_autoha: joined cluster \"%s\" as \"%s\" (system identifier %s)",
						autoha_cluster_name, local.name, local.sysid)));
	}

	is_leader = view->has_leader && ws.lease_id != 0 &&
		strcmp(view->leader, local.name) == 0 && view->leader_lease == ws.lease_id;
	local.is_leader = is_leader;
	ws.led_last_time = is_leader;

	/* what the leader last said about its position, for the lag check */
	if (view->has_leader)
	{
		const MemberInfo *leader = ha_find_member(view, view->leader);

		if (leader != NULL && leader->lsn > ws.last_leader_lsn)
			ws.last_leader_lsn = leader->lsn;
		strlcpy(ws.last_leader_name, view->leader, sizeof(ws.last_leader_name));
		if (leader != NULL && leader->mod_revision != ws.leader_member_revision)
		{
			ws.leader_member_revision = leader->mod_revision;
			ws.leader_member_changed_us = fence_now_us();
		}
		ws.leaderless_since_revision = 0;
	}
	else if (ws.leaderless_since_revision == 0)
	{
		ws.leaderless_since_revision = view->revision;
		ws.leaderless_start_us = fence_now_us();
	}
	if (view->has_leader_optime && view->leader_optime > ws.last_leader_lsn)
		ws.last_leader_lsn = view->leader_optime;

	local.last_leader_lsn = ws.last_leader_lsn;
	local.leaderless_since_revision = ws.leaderless_since_revision;
	local.leaderless_ms = view->has_leader ? 0 :
		(fence_now_us() - ws.leaderless_start_us) / 1000;
	local.member_wait_ms = 2 * (int64) ws.loop_wait;
	local.stream_wait_ms = (int64) ws.ttl * 1000;
	if (!view->failover.present)
		ws.request_revision = 0;
	else if (view->failover.mod_revision != ws.request_revision)
	{
		ws.request_revision = view->failover.mod_revision;
		ws.request_seen_us = fence_now_us();
	}
	local.request_age_ms = ws.request_revision == 0 ? 0 :
		(fence_now_us() - ws.request_seen_us) / 1000;
	local.request_timeout_ms = REQUEST_TIMEOUT_MS;
	local.handover_delay_ms = (int64) ws.loop_wait + 200;
	local.checkpoint_pending = is_leader && view->failover.present &&
		checkpoint_for_switchover(view);
	node_followed_member(view, local.following, sizeof(local.following));

	d = ha_decide(view, &local);
	log_decision(&d);

	/*
	 * Fence before acting: a server that does not lead must not acknowledge
	 * another write, and the leader's fence deadline moves on only now that
	 * etcd has confirmed both its lease and its key.
	 */
	if (d.action == HA_LEAD)
	{
		/* (a restarted worker's first loop only reads: nothing to extend) */
		if (renewed)
		{
			ws.fence_deadline_us = fence_deadline_after(ws.lease_sent_us);
			fence_lower(ws.fence_deadline_us);
		}
	}
	else if (d.action != HA_HANDOVER)	/* it fences once it is ready */
		raise_fence(local.in_recovery, d.reason);

	act(&d, view, &local);
	if (d.action == HA_LEAD && ws.history_pending && write_history())
		ws.history_pending = false;
	if (d.action == HA_FOLLOW && local.streaming)
		unlink(REWIND_ATTEMPT_FILE);	/* following again: forget it */

	/* a promotion or a new key changes what we are: look again */
	node_observe(&local);
	if (d.action == HA_PROMOTE || d.action == HA_ACQUIRE || d.action == HA_INITIALIZE)
	{
		publish_cycle(view, &local, &d, false);
		return 0;
	}
	publish_cycle(view, &local, &d, is_leader);

	/* the handover waits only for its checkpoint: start it as soon as done */
	if (local.checkpoint_pending && d.action == HA_LEAD)
		return Min(ws.loop_wait, TARGET_POLL_MS);
	/* a switchover to us is imminent: notice the handover at once */
	if (view->failover.present && !is_leader &&
		strcmp(view->failover.member, local.name) == 0)
		return Min(ws.loop_wait, TARGET_POLL_MS);
	if (!view->has_leader || !ws.system_verified || leader_seems_gone(is_leader))
		return Min(ws.loop_wait, ELECTION_POLL_MS);
	/* a standby is joining the synchronous set: let it join soon */
	if (is_leader && d.action == HA_LEAD && ws.sync_changing)
		return Min(ws.loop_wait, SYNC_POLL_MS);
	return ws.loop_wait;
}

void
autoha_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(autoha_database, NULL, 0);

	memset(&ws, 0, sizeof(ws));
	ws.last_action = -1;
	ws.ttl = autoha_ttl;
	ws.loop_wait = autoha_loop_wait;
	apply_timing(true);
	ws.loop_cxt = AllocSetContextCreate(TopMemoryContext, "pg_autoha loop",
										ALLOCSET_DEFAULT_SIZES);
	etcd_set_allocator(etcd_palloc, etcd_pfree);

	dcs_cluster_prefix(ws.prefix, sizeof(ws.prefix), autoha_namespace, autoha_cluster_name);
	dcs_key(ws.leader_key, sizeof(ws.leader_key), ws.prefix, "leader");
	dcs_key(ws.initialize_key, sizeof(ws.initialize_key), ws.prefix, "initialize");
	dcs_key(ws.status_key, sizeof(ws.status_key), ws.prefix, "status");
	dcs_key(ws.failover_key, sizeof(ws.failover_key), ws.prefix, "failover");
	dcs_key(ws.history_key, sizeof(ws.history_key), ws.prefix, "history");
	dcs_key(ws.sync_key, sizeof(ws.sync_key), ws.prefix, "sync");
	{
		char		suffix[AUTOHA_NAME_LEN + 16];

		snprintf(suffix, sizeof(suffix), "members/%s", autoha_node_name);
		dcs_key(ws.member_key, sizeof(ws.member_key), ws.prefix, suffix);
	}

	/* a restarted worker keeps renewing the lease its predecessor held */
	LWLockAcquire(autoha_shared->lock, LW_EXCLUSIVE);
	autoha_shared->worker_pid = MyProcPid;
	ws.lease_id = autoha_shared->lease_id;
	LWLockRelease(autoha_shared->lock);
	ws.lease_sent_us = 0;		/* unknown until our first renewal */

	ereport(LOG,
			(errmsg("pg_autoha: worker started for member \"%s\" of cluster \"%s\" (etcd: %s)",
					autoha_node_name, autoha_cluster_name,
					autoha_etcd_endpoints[0] ? autoha_etcd_endpoints : "none"),
			 autoha_etcd_endpoints[0] ? 0 :
			 errhint("Set autoha.etcd_endpoints and reload to enable automatic failover.")));
	if (autoha_etcd_endpoints[0] == '\0')
		ereport(WARNING,
				(errmsg("pg_autoha: autoha.etcd_endpoints is empty; the worker stays idle"),
				 errhint("Set autoha.etcd_endpoints to etcd's client URLs and reload.")));

	for (;;)
	{
		long		wait_ms;
		int			rc;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			exit_on_sigterm();
		if (ConfigReloadPending)
			process_reload();

		oldcxt = MemoryContextSwitchTo(ws.loop_cxt);
		wait_ms = ha_cycle();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(ws.loop_cxt);

		if (ShutdownRequestPending)
			exit_on_sigterm();
		if (!PostmasterIsAlive())
			exit_worker("postmaster died", true);
		if (wait_ms <= 0)
			continue;

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
					   wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (rc & WL_POSTMASTER_DEATH)
			exit_worker("postmaster died", true);
	}
}
