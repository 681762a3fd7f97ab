/*-------------------------------------------------------------------------
 *
 * ha.h
 *	  The cluster view, this server's local state, and the failover decision.
 *
 * ha_decide() is a pure function: it takes what the worker observed (the
 * cluster as etcd shows it, and this server as PostgreSQL shows it) and
 * returns what to do next.  It takes no locks and does no I/O, so it is
 * tested by a table of (view, local state) -> action in test/unit/test_ha.c.
 * Plain C, no PostgreSQL headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_HA_H
#define AUTOHA_HA_H

#include <stdbool.h>
#include <stdint.h>

#define AUTOHA_MAX_MEMBERS		32
#define AUTOHA_NAME_LEN			64
#define AUTOHA_HOST_LEN			256
#define AUTOHA_STATE_LEN		32
#define AUTOHA_TAGS_LEN			256
#define AUTOHA_REASON_LEN		256

#define AUTOHA_INVALID_LSN		((uint64_t) 0)

/* One member as published under <ns>/<cluster>/members/<name>. */
typedef struct MemberInfo
{
	char		name[AUTOHA_NAME_LEN];
	char		role[AUTOHA_STATE_LEN];	/* "primary", "replica", ... */
	char		state[AUTOHA_STATE_LEN];	/* "running", "starting", ... */
	char		replication_state[AUTOHA_STATE_LEN];	/* "streaming" or "" */
	char		host[AUTOHA_HOST_LEN];
	int			port;
	uint32_t	timeline;
	uint64_t	lsn;			/* xlog_location: write position on a
								 * primary, received position on a replica */
	bool		nofailover;
	int			failover_priority;
	char		tags[AUTOHA_TAGS_LEN];	/* tags object as compact JSON */
	int64_t		mod_revision;	/* etcd revision of the last update */
	int64_t		lease;
} MemberInfo;

#define AUTOHA_MAX_HISTORY		32

/*
 * The "failover" key, in Patroni's format: {"leader": L, "member": T} asks
 * leader L to hand over to T (a switchover; no member: to the best
 * replica), {"member": T} asks for T to be promoted when there is no
 * healthy leader (a manual failover).
 */
typedef struct FailoverRequest
{
	bool		present;
	char		leader[AUTOHA_NAME_LEN];	/* "" = not given */
	char		member[AUTOHA_NAME_LEN];	/* "" = not given */
	bool		scheduled;		/* has "scheduled_at": not supported */
	int64_t		mod_revision;	/* etcd revision of the request */
} FailoverRequest;

/*
 * One line of the "history" key, Patroni's
 * [timeline, lsn, reason, timestamp, new_leader]: timeline `timeline` ended
 * at `lsn`, where `new_leader` started timeline + 1.
 */
typedef struct HistoryEntry
{
	uint32_t	timeline;
	uint64_t	lsn;
	char		reason[128];
	char		timestamp[40];	/* ISO 8601, "" if absent */
	char		new_leader[AUTOHA_NAME_LEN];
} HistoryEntry;

/*
 * The "sync" key, Patroni's {"leader": L, "sync_standby": "a,b"}: the
 * standbys that leader L made sure hold every commit it acknowledged, and
 * so the only members that may be promoted automatically after a failure.
 * sync_standby null (or empty) lists none.  Written only by a leader in
 * synchronous mode; its absence means the leader does not run one.
 */
typedef struct SyncState
{
	bool		present;
	bool		malformed;		/* present but unreadable: lists nobody */
	char		leader[AUTOHA_NAME_LEN];
	int			nstandbys;
	char		standbys[AUTOHA_MAX_MEMBERS][AUTOHA_NAME_LEN];
	int64_t		mod_revision;	/* etcd revision of the key */
} SyncState;

/* The cluster as one read of <ns>/<cluster>/ shows it. */
typedef struct ClusterView
{
	int64_t		revision;		/* etcd header revision of the read */
	bool		has_initialize;
	char		initialize[32];	/* system identifier as text */
	bool		has_leader;
	char		leader[AUTOHA_NAME_LEN];
	int64_t		leader_create_revision;	/* the term */
	int64_t		leader_lease;
	bool		has_leader_optime;	/* "status" key: {"optime": N, ...} */
	uint64_t	leader_optime;
	uint32_t	leader_timeline;	/* "status" timeline, 0 = unknown */
	bool		leader_shutdown;	/* "status": the last leader released
									 * the key on its way down */
	FailoverRequest failover;	/* "failover" key */
	SyncState	sync;			/* "sync" key */
	bool		paused;			/* "config" key has "pause": true */
	int			nhistory;		/* the last AUTOHA_MAX_HISTORY lines of */
	HistoryEntry history[AUTOHA_MAX_HISTORY];	/* "history", oldest first */
	int			nmembers;
	MemberInfo	members[AUTOHA_MAX_MEMBERS];
} ClusterView;

/* This server, as the worker sees it right now. */
typedef struct LocalState
{
	const char *name;
	char		sysid[32];
	bool		in_recovery;
	bool		streaming;		/* wal receiver is streaming */
	uint64_t	receive_lsn;	/* replica: flushed by the wal receiver */
	uint64_t	replay_lsn;		/* replica: replayed */
	uint32_t	receive_timeline;	/* replica: of receive_lsn, 0 = none */
	uint64_t	write_lsn;		/* primary: current insert position */
	uint32_t	timeline;
	bool		nofailover;
	int			failover_priority;
	uint64_t	maximum_lag;	/* autoha.maximum_lag_on_failover */
	bool		is_leader;		/* we hold the leader key with our lease */
	char		following[AUTOHA_NAME_LEN]; /* leader primary_conninfo points at */
	uint64_t	last_leader_lsn;	/* best known position of the last leader */

	/*
	 * Election bookkeeping kept by the worker across loops: the etcd
	 * revision at which we first saw the cluster without a leader (0 = there
	 * is a leader), and how long ago that was.
	 */
	int64_t		leaderless_since_revision;
	int64_t		leaderless_ms;

	/*
	 * How long a candidate waits, once the leader is gone, for the other
	 * members to publish their positions (after that, a member that has not
	 * spoken since the leader vanished counts as dead), and for its own
	 * stream from the old leader to end when that leader released the key
	 * on its way down (a clean shutdown still sends its checkpoint after
	 * the release; a leader whose lease expired has nothing more to send).
	 */
	int64_t		member_wait_ms;
	int64_t		stream_wait_ms;

	/*
	 * The "failover" key: how long the worker has seen the current request,
	 * and how long a request may take before it is given up (a leader
	 * waiting for its target to catch up cancels it; once the cluster has
	 * been leaderless that long, the other members stop waiting for the
	 * named target and hold a normal election).
	 */
	int64_t		request_age_ms;
	int64_t		request_timeout_ms;

	/*
	 * A leader hands over only once a request has been visible this long,
	 * so that the target has seen it too and polls etcd at its fastest for
	 * the handover (its own loop could otherwise add up to a loop_wait to
	 * the write pause).
	 */
	int64_t		handover_delay_ms;

	/*
	 * The checkpoint a leader starts when it sees a switchover request has
	 * not completed yet.  It hands over only after it: a checkpoint that
	 * completes after the final position has been published writes its
	 * record past it, and the old leader would need pg_rewind to rejoin.
	 */
	bool		checkpoint_pending;

	bool		use_pg_rewind;	/* autoha.use_pg_rewind */
} LocalState;

typedef enum HaAction
{
	HA_WAIT,					/* nothing to do yet (reason says why) */
	HA_REFUSE,					/* not part of this cluster: stay out */
	HA_INITIALIZE,				/* new cluster: write initialize, take key */
	HA_ACQUIRE,					/* primary without key: take it */
	HA_LEAD,					/* we lead: keep the lease */
	HA_FOLLOW,					/* replica: stream from the leader */
	HA_PROMOTE,					/* take the key, then promote */
	HA_STAND_ASIDE,				/* a primary while another server leads */
	HA_HANDOVER,				/* we lead: hand the key to the named member */
	HA_DEMOTE,					/* a primary while another leads: become its
								 * replica (standby.signal, crash restart) */
	HA_REWIND					/* a replica whose WAL went past the leader's
								 * timeline switch: pg_rewind, then follow */
} HaAction;

typedef struct HaDecision
{
	HaAction	action;
	char		leader[AUTOHA_NAME_LEN];	/* HA_FOLLOW, HA_DEMOTE, HA_REWIND:
											 * the leader; HA_HANDOVER: the
											 * target */
	char		reason[AUTOHA_REASON_LEN];
	bool		clear_request;	/* the "failover" key is done with or
								 * refused (reason says which): delete it */
} HaDecision;

extern HaDecision ha_decide(const ClusterView *view, const LocalState *local);
extern const char *ha_action_name(HaAction action);
extern const MemberInfo *ha_find_member(const ClusterView *view, const char *name);
/* ranking of switchover targets (the SQL function names the best) */
extern bool ha_better_switchover_target(const MemberInfo *a, const MemberInfo *b);
/* position a member publishes for itself */
extern uint64_t ha_local_position(const LocalState *local);
/* is name one of the standbys the "sync" key lists? */
extern bool ha_sync_lists(const SyncState *sync, const char *name);

#endif							/* AUTOHA_HA_H */
