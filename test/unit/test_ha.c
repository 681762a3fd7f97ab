/*-------------------------------------------------------------------------
 *
 * test_ha.c
 *	  Table-driven unit test of the failover decision ha_decide() in
 *	  src/ha.c, plus ha_action_name(), ha_find_member() and
 *	  ha_local_position().  TAP output; no server, no network.
 *
 * Each row of the table describes one situation compactly: the cluster
 * view (initialize key, leader key and its lease, status key, failover key,
 * pause, history, sync key, members) and this server's local state, then the action
 * ha_decide() must return, the leader it must name (NULL: none), a
 * substring its reason must contain (NULL: any non-empty reason) and
 * whether it must delete the failover key (CLEARS; default: it must not).
 * build_view() and build_local() expand a row into the real ClusterView
 * and LocalState.
 *
 * Conventions of the rows:
 *	- the leader vanished at etcd revision LEFT_AT; a member whose
 *	  mod_revision is LIVE has spoken since, one at SILENT has not;
 *	- a candidate's waits are MEMBER_WAIT and STREAM_WAIT ms, and LATE is
 *	  past both;
 *	- every server and member has failover_priority 1 unless a row says
 *	  otherwise; MAX_LAG is autoha.maximum_lag_on_failover;
 *	- a failover key was first seen request_age_ms ago (0 unless a row says
 *	  otherwise); it goes stale after REQUEST_TIMEOUT ms, and a leader hands
 *	  over once it has seen it for HANDOVER_DELAY ms;
 *	- a member is a streaming replica unless it is the leader (a primary,
 *	  not streaming, unless MSTALE), MPRIMARY (a primary) or MNS (not
 *	  streaming);
 *	- autoha.use_pg_rewind is off unless a row sets .use_pg_rewind;
 *	- there is no "sync" key unless a row has SYNC(leader, standby, ...)
 *	  (synchronous mode) or SYNC_UNREADABLE.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ha.h"
#include "unit.h"

#define SYSID			"7321654987000000001"
#define OTHER_SYSID		"7321654987000000002"

/* leases as the view shows them on the leader key */
#define OUR_LEASE		7001	/* the lease this worker holds now */
#define OLD_LEASE		6001	/* a lease of a previous worker of ours */
#define THEIR_LEASE		8001	/* another server's lease */

/* revisions */
#define LEADER_TERM		50		/* create_revision of the leader key */
#define SILENT			90		/* last update before the leader left */
#define LEFT_AT			100		/* leaderless since this revision */
#define LIVE			150		/* updated after the leader left */
#define READ_AT			200		/* revision of the read */

/* election timing (ms) */
#define MEMBER_WAIT		5000
#define STREAM_WAIT		3000
#define LATE			10000

/* failover key timing (ms) */
#define REQUEST_TIMEOUT	30000
#define HANDOVER_DELAY	2200

#define MAX_LAG			((uint64_t) 1048576)
#define PRIO			1

/* positions */
#define LSN				((uint64_t) 0x5000000)
#define FORK			(LSN - 4096)	/* where timeline 1 ended in "history" */

#define MAX_SPEC_MEMBERS 8
#define MAX_SPEC_HISTORY 4

/* the expected-clear column of a row: the decision deletes the failover key */
#define CLEARS			true

/* ------------------------------------------------------------------ */
/* Compact descriptions of a view and of the local state               */
/* ------------------------------------------------------------------ */

typedef struct MemberSpec
{
	const char *name;			/* NULL ends the list */
	uint32_t	timeline;
	uint64_t	lsn;
	bool		nofailover;
	int			priority;
	int64_t		mod_revision;
	bool		primary;		/* publishes role "primary" */
	bool		not_streaming;	/* publishes replication_state "" */
	bool		stale;			/* the leader, still publishing what it was
								 * before its promotion: a streaming replica */
} MemberSpec;

/* the "failover" key */
typedef struct RequestSpec
{
	bool		present;		/* false: no failover key */
	const char *leader;			/* NULL: not given */
	const char *member;			/* NULL: not given */
	bool		scheduled;
} RequestSpec;

/* a line of the "history" key; timeline 0 ends the list */
typedef struct HistorySpec
{
	uint32_t	timeline;
	uint64_t	lsn;
} HistorySpec;

/* the "sync" key: leader NULL = no key */
typedef struct SyncSpec
{
	const char *leader;
	const char *standbys[4];	/* NULL ends the list */
	bool		malformed;		/* present but unreadable */
} SyncSpec;

typedef struct ViewSpec
{
	const char *initialize;		/* NULL: no initialize key */
	const char *leader;			/* NULL: no leader key */
	int64_t		leader_lease;
	uint64_t	leader_optime;	/* 0: no status key */
	uint32_t	leader_timeline;	/* timeline in the status key, 0: none */
	bool		leader_shutdown;	/* status key: the leader released it */
	RequestSpec request;		/* the failover key */
	bool		paused;			/* config key: "pause": true */
	HistorySpec history[MAX_SPEC_HISTORY];	/* oldest first */
	SyncSpec	sync;			/* the sync key */

	/*
	 * If pad.name is set, the view is first filled with copies of pad named
	 * <pad.name>00, <pad.name>01, ... so that, with the members below placed
	 * after them, it holds exactly AUTOHA_MAX_MEMBERS members.
	 */
	MemberSpec	pad;
	MemberSpec	members[MAX_SPEC_MEMBERS];
} ViewSpec;

typedef struct LocalSpec
{
	const char *name;
	const char *sysid;
	bool		in_recovery;
	bool		streaming;
	uint64_t	receive_lsn;
	uint64_t	replay_lsn;
	uint32_t	receive_timeline;
	uint64_t	write_lsn;
	uint32_t	timeline;
	bool		nofailover;
	int			priority;
	uint64_t	maximum_lag;
	bool		is_leader;
	uint64_t	last_leader_lsn;
	int64_t		leaderless_since_revision;
	int64_t		leaderless_ms;
	int64_t		member_wait_ms;
	int64_t		stream_wait_ms;
	int64_t		request_age_ms;
	int64_t		request_timeout_ms;
	int64_t		handover_delay_ms;
	bool		checkpoint_pending;
	bool		use_pg_rewind;
} LocalSpec;

typedef struct HaCase
{
	const char *name;
	ViewSpec	view;
	LocalSpec	local;
	HaAction	action;
	const char *leader;			/* NULL: the decision names no leader */
	const char *reason;			/* NULL: any non-empty reason */
	bool		clear;			/* CLEARS: deletes the failover key */
} HaCase;

/*
 * views (used inside braces; a row may add .leader_optime, .paused, .pad,
 * .members, a request and a history)
 */
#define NEW_CLUSTER			.initialize = NULL
#define NO_LEADER			.initialize = SYSID
#define LEADER(who, lease) \
	.initialize = SYSID, .leader = (who), .leader_lease = (lease)

/* the failover key: switchover from a leader (to = NULL: the best replica) */
#define SWITCHOVER(from, to) \
	.request = {.present = true, .leader = (from), .member = (to)}
/* a manual failover: no leader named */
#define FAILOVER(to) \
	.request = {.present = true, .member = (to)}
#define SCHEDULED(from, to) \
	.request = {.present = true, .leader = (from), .member = (to), .scheduled = true}

/* the sync key: SYNC(leader, standby...) lists them; SYNC(leader) none */
#define SYNC(l, ...)				.sync = {.leader = (l), .standbys = {__VA_ARGS__}}
#define SYNC_UNREADABLE				.sync = {.leader = "", .malformed = true}

/* the history key: HISTORY(H(timeline, lsn), ...), oldest first */
#define H(tl, l)					{(tl), (l)}
#define HISTORY(...)				.history = {__VA_ARGS__}

/* members: M(name, timeline, lsn, mod_revision) and variants */
#define MEMBER(n, tl, l, rev, prio, nofail) \
	{ \
		.name = (n), .timeline = (tl), .lsn = (l), .nofailover = (nofail), \
		.priority = (prio), .mod_revision = (rev) \
	}
#define M(n, tl, l, rev)			MEMBER(n, tl, l, rev, PRIO, false)
#define MPRIMARY(n, tl, l, rev) \
	{ \
		.name = (n), .timeline = (tl), .lsn = (l), .priority = PRIO, \
		.mod_revision = (rev), .primary = true \
	}
#define MP(n, tl, l, rev, prio)		MEMBER(n, tl, l, rev, prio, false)
#define MNF(n, tl, l, rev)			MEMBER(n, tl, l, rev, PRIO, true)
#define MNS(n, tl, l, rev) \
	{ \
		.name = (n), .timeline = (tl), .lsn = (l), .priority = PRIO, \
		.mod_revision = (rev), .not_streaming = true \
	}
#define MSTALE(n, tl, l, rev) \
	{ \
		.name = (n), .timeline = (tl), .lsn = (l), .priority = PRIO, \
		.mod_revision = (rev), .stale = true \
	}

/*
 * Local states (used inside braces; a row may add the fields a macro leaves
 * out: .is_leader, .streaming, .nofailover, .last_leader_lsn,
 * .receive_timeline, .request_age_ms, .checkpoint_pending, .use_pg_rewind).
 */
#define COMMON(n, tl) \
	.name = (n), .sysid = SYSID, .timeline = (tl), .priority = PRIO, \
	.maximum_lag = MAX_LAG, .member_wait_ms = MEMBER_WAIT, \
	.stream_wait_ms = STREAM_WAIT, .request_timeout_ms = REQUEST_TIMEOUT, \
	.handover_delay_ms = HANDOVER_DELAY

/* a primary, with a leader key in view or not */
#define PRIMARY(n, tl, l) \
	COMMON(n, tl), .in_recovery = false, .write_lsn = (l)

/* the primary holding the leader key with our lease */
#define LEADING(n, tl, l)		PRIMARY(n, tl, l), .is_leader = true

/* a replica while the cluster has a leader */
#define REPLICA(n, tl, l) \
	COMMON(n, tl), .in_recovery = true, .receive_lsn = (l), .replay_lsn = (l)

/* a replica that received up to recv and replayed up to replay */
#define RECEIVER(n, tl, recv, replay) \
	COMMON(n, tl), .in_recovery = true, \
	.receive_lsn = (recv), .replay_lsn = (replay)

/* a replica in an election: leaderless since LEFT_AT, for ms milliseconds */
#define ELECTOR(n, tl, recv, replay, ms) \
	COMMON(n, tl), .in_recovery = true, \
	.receive_lsn = (recv), .replay_lsn = (replay), \
	.leaderless_since_revision = LEFT_AT, .leaderless_ms = (ms)

/* an elector with all it received replayed, past every wait */
#define CANDIDATE(n, tl, l)		ELECTOR(n, tl, l, l, LATE)

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

/*
 * A row leaves out the clear column when the failover key must stay; the
 * warning about that trailing field is off for the table only.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const HaCase cases[] = {
	/* 1. one system */
	{
		"new cluster: a primary initializes it",
		{NEW_CLUSTER},
		{PRIMARY("pg1", 1, LSN)},
		HA_INITIALIZE, NULL, SYSID
	},
	{
		"new cluster: a primary initializes it even with members listed",
		{NEW_CLUSTER, .members = {M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_INITIALIZE, NULL, "new cluster"
	},
	{
		"new cluster: a replica waits for its primary",
		{NEW_CLUSTER},
		{REPLICA("pg2", 1, LSN)},
		HA_WAIT, NULL, "not initialized"
	},
	{
		"new cluster: an elector replica waits too",
		{NEW_CLUSTER},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "not initialized"
	},
	{
		"foreign system id: a replica refuses to follow",
		{.initialize = OTHER_SYSID, .leader = "pg1", .leader_lease = THEIR_LEASE,
		.members = {M("pg1", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_REFUSE, NULL, "system identifier"
	},
	{
		"foreign system id: a primary refuses even if the leader key names it",
		{.initialize = OTHER_SYSID, .leader = "pg1", .leader_lease = OUR_LEASE},
		{PRIMARY("pg1", 1, LSN), .is_leader = true},
		HA_REFUSE, NULL, "system identifier"
	},
	{
		"foreign system id: the best candidate of a leaderless cluster refuses",
		{.initialize = OTHER_SYSID},
		{CANDIDATE("pg2", 1, LSN)},
		HA_REFUSE, NULL, "system identifier"
	},
	{
		"foreign system id: a leaderless primary refuses",
		{.initialize = OTHER_SYSID},
		{PRIMARY("pg1", 1, LSN)},
		HA_REFUSE, NULL, OTHER_SYSID
	},

	/* 2. we lead */
	{
		"leader is us with our lease, primary: lead",
		{LEADER("pg1", OUR_LEASE),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .is_leader = true},
		HA_LEAD, "pg1", "holds the leader key"
	},
	{
		"leader is us with our lease: lead whatever the members publish",
		{LEADER("pg1", OUR_LEASE),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 2, LSN + 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .is_leader = true},
		HA_LEAD, "pg1", NULL
	},
	{
		"leader is us under a lease we do not hold, primary: wait for it to expire",
		{LEADER("pg1", OLD_LEASE), .members = {M("pg1", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .is_leader = false},
		HA_WAIT, NULL, "same autoha.node_name"
	},
	{
		"leader is us under a lease we do not hold, in recovery: wait for it to expire",
		{LEADER("pg2", OLD_LEASE), .members = {M("pg1", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .is_leader = false},
		HA_WAIT, NULL, "waiting for it to expire"
	},
	{
		"leader is us with our lease, still in recovery: promote",
		{LEADER("pg2", OUR_LEASE),
		.members = {M("pg1", 1, LSN, SILENT), M("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .is_leader = true},
		HA_PROMOTE, "pg2", "still in recovery"
	},

	/* 2b. we lead and the failover key asks for a switchover */
	{
		"we lead, paused, no request: lead",
		{LEADER("pg1", OUR_LEASE), .paused = true,
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN)},
		HA_LEAD, "pg1", "holds the leader key"
	},
	{
		"switchover to a replica in sync, seen for handover_delay: hand over",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg2", "handing the leader key over to \"pg2\""
	},
	{
		"switchover seen for less than handover_delay: lead, keep the request",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY - 1},
		HA_LEAD, "pg1", "starts once it has seen the request"
	},
	{
		"switchover seen for handover_delay, its checkpoint still running: lead, keep the request",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY, .checkpoint_pending = true},
		HA_LEAD, "pg1", "once the checkpoint started for it has completed"
	},
	{
		"switchover with no target, its checkpoint still running: lead, keep the request",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY, .checkpoint_pending = true},
		HA_LEAD, "pg1", "the switchover to \"pg2\" starts once the checkpoint"
	},
	{
		"switchover to a non-member while a checkpoint runs: cancelled at once",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg9"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY, .checkpoint_pending = true},
		HA_LEAD, "pg1", "is not a member of the cluster", CLEARS
	},
	{
		"switchover to a replica exactly maximum_lag behind: hand over",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - MAX_LAG, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg2", NULL
	},
	{
		"switchover to a replica one byte past maximum_lag, request young: lead, keep it",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - MAX_LAG - 1, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = REQUEST_TIMEOUT - 1},
		HA_LEAD, "pg1", "waits for it to catch up"
	},
	{
		"switchover to a replica still past maximum_lag at request_timeout: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - MAX_LAG - 1, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = REQUEST_TIMEOUT},
		HA_LEAD, "pg1", "did not come within", CLEARS
	},
	{
		"manual failover (no leader named) to a replica while we lead: hand over",
		{LEADER("pg1", OUR_LEASE), FAILOVER("pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg2", NULL
	},
	{
		"switchover without a member: hand over to the most advanced replica",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - 100, LIVE),
		M("pg3", 1, LSN - 50, LIVE), M("pg4", 1, LSN - 200, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg3", "\"pg3\""
	},
	{
		"switchover without a member, equal positions: the higher priority",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), MP("pg2", 1, LSN - 10, LIVE, 1),
		MP("pg3", 1, LSN - 10, LIVE, 5), MP("pg4", 1, LSN - 10, LIVE, 2)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg3", NULL
	},
	{
		"switchover without a member: more WAL beats a higher priority",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), MP("pg2", 1, LSN - 1, LIVE, 9),
		MP("pg3", 1, LSN, LIVE, 0)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg3", NULL
	},
	{
		"switchover without a member skips a primary, nofailover, not streaming, other timeline",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), MPRIMARY("pg2", 1, LSN + 100, LIVE),
		MNF("pg3", 1, LSN + 100, LIVE), MNS("pg4", 1, LSN + 100, LIVE),
		M("pg5", 2, LSN + 100, LIVE), M("pg6", 1, LSN - 100, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg6", NULL
	},
	{
		"switchover without a member never picks the leader's own stale replica entry",
		{LEADER("pg2", OUR_LEASE), SWITCHOVER("pg2", NULL),
		.members = {M("pg1", 2, LSN - 100, LIVE), MSTALE("pg2", 2, LSN, LIVE)}},
		{LEADING("pg2", 2, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_HANDOVER, "pg1", NULL
	},
	{
		"switchover without a member, the best replica lags: lead, keep the request",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - 2 * MAX_LAG, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "\"pg2\" waits for it to catch up"
	},
	{
		"switchover without a member, no eligible replica: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE), MNF("pg2", 1, LSN, LIVE),
		MNS("pg3", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "no member can take over", CLEARS
	},
	{
		"switchover without a member, we are the only member: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", NULL),
		.members = {M("pg1", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN)},
		HA_LEAD, "pg1", "no member can take over", CLEARS
	},
	{
		"switchover that made us the leader: complete, delete it",
		{LEADER("pg2", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 2, LSN, LIVE)}},
		{LEADING("pg2", 2, LSN)},
		HA_LEAD, "pg2", "the switchover to it is complete", CLEARS
	},
	{
		"manual failover that made us the leader: complete, delete it",
		{LEADER("pg1", OUR_LEASE), FAILOVER("pg1"),
		.members = {M("pg1", 2, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 2, LSN), .request_age_ms = REQUEST_TIMEOUT},
		HA_LEAD, "pg1", "the failover to it is complete", CLEARS
	},
	{
		"scheduled switchover: cancel",
		{LEADER("pg1", OUR_LEASE), SCHEDULED("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "scheduled_at", CLEARS
	},
	{
		"switchover from another leader: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg3", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "names leader \"pg3\"", CLEARS
	},
	{
		"switchover while paused: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"), .paused = true,
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "paused", CLEARS
	},
	{
		"switchover to a member not in the cluster: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg9"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "\"pg9\" is not a member", CLEARS
	},
	{
		"switchover to a primary: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), MPRIMARY("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "not a replica", CLEARS
	},
	{
		"switchover to a nofailover replica: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), MNF("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "nofailover", CLEARS
	},
	{
		"switchover to a replica that is not streaming: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), MNS("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 1, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "not streaming", CLEARS
	},
	{
		"switchover to a replica on another timeline: cancel",
		{LEADER("pg1", OUR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 2, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{LEADING("pg1", 2, LSN), .request_age_ms = HANDOVER_DELAY},
		HA_LEAD, "pg1", "on timeline 1, the leader on 2", CLEARS
	},

	/* 3. someone else leads */
	{
		"another leader, replica: follow it",
		{LEADER("pg1", THEIR_LEASE),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg1", "following leader \"pg1\""
	},
	{
		"switchover from the leader to another replica: stream from the target already",
		{LEADER("pg1", THEIR_LEASE), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg3", "the target of the switchover from leader \"pg1\""
	},
	{
		"switchover to us: keep following the leader",
		{LEADER("pg1", THEIR_LEASE), SWITCHOVER("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg1", "following leader \"pg1\""
	},
	{
		"switchover naming another leader: follow the leader",
		{LEADER("pg1", THEIR_LEASE), SWITCHOVER("pg9", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg1", "following leader \"pg1\""
	},
	{
		"switchover to a target that is not streaming: follow the leader",
		{LEADER("pg1", THEIR_LEASE), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE), MNS("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg1", "following leader \"pg1\""
	},
	{
		"stale switchover request: follow the leader",
		{LEADER("pg1", THEIR_LEASE), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .request_age_ms = REQUEST_TIMEOUT},
		HA_FOLLOW, "pg1", "following leader \"pg1\""
	},
	{
		"another leader, nofailover replica behind: follow it",
		{LEADER("pg1", THEIR_LEASE),
		.members = {M("pg1", 2, LSN, LIVE), M("pg3", 2, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN - 1000), .nofailover = true},
		HA_FOLLOW, "pg1", "pg1"
	},
	{
		"another leader whose member entry is missing: wait",
		{LEADER("pg1", THEIR_LEASE), .members = {M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_WAIT, "pg1", "not published"
	},
	{
		"another leader, no members at all: wait",
		{LEADER("pg1", THEIR_LEASE)},
		{REPLICA("pg2", 1, LSN)},
		HA_WAIT, "pg1", "pg1"
	},
	{
		"another leader while we are a primary: demote",
		{LEADER("pg1", THEIR_LEASE),
		.members = {M("pg1", 2, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg2", 1, LSN)},
		HA_DEMOTE, "pg1", "rejoining as its replica"
	},
	{
		"another leader while we are a primary ahead of it: demote",
		{LEADER("pg1", THEIR_LEASE), .members = {M("pg1", 1, LSN, LIVE)}},
		{PRIMARY("pg2", 1, LSN + 4096)},
		HA_DEMOTE, "pg1", "\"pg1\""
	},
	{
		"another leader while we are a primary, paused: stand aside",
		{LEADER("pg1", THEIR_LEASE), .paused = true,
		.members = {M("pg1", 2, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg2", 1, LSN)},
		HA_STAND_ASIDE, "pg1", "paused"
	},
	{
		"another leader missing from members while we are a primary: stand aside",
		{LEADER("pg1", THEIR_LEASE)},
		{PRIMARY("pg2", 1, LSN)},
		HA_STAND_ASIDE, "pg1", "publish its address"
	},
	{
		"another leader, primary, a failover key naming us changes nothing: demote",
		{LEADER("pg1", THEIR_LEASE), FAILOVER("pg2"),
		.members = {M("pg1", 2, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg2", 1, LSN)},
		HA_DEMOTE, "pg1", NULL
	},

	/*
	 * 3b. a replica whose WAL went past the leader's timeline switch: pg1
	 * leads on timeline 2, which forked off timeline 1 at FORK.
	 */
	{
		"diverged replica (replayed past the fork), use_pg_rewind: rewind",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE), MNS("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .use_pg_rewind = true},
		HA_REWIND, "pg1", "it must be rewound (pg_rewind) before it can follow"
	},
	{
		"diverged replica, use_pg_rewind off: wait",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE), MNS("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1},
		HA_WAIT, "pg1", "autoha.use_pg_rewind is off"
	},
	{
		"diverged replica, paused: wait",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)), .paused = true,
		.members = {M("pg1", 2, LSN, LIVE), MNS("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .use_pg_rewind = true},
		HA_WAIT, "pg1", "the cluster is paused"
	},
	{
		"replayed exactly up to the fork: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE)}},
		{REPLICA("pg2", 1, FORK), .receive_timeline = 1, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"replayed up to the fork, received past it on our timeline: rewind",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE)}},
		{RECEIVER("pg2", 1, FORK + 1, FORK), .receive_timeline = 1,
		.use_pg_rewind = true},
		HA_REWIND, "pg1", NULL
	},
	{
		/* timeline 2 went on past FORK; only timeline 1's WAL could diverge */
		"replayed up to the fork, received past it on the next timeline: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK), H(2, FORK + 4096)),
		.members = {M("pg1", 3, LSN, LIVE)}},
		{RECEIVER("pg2", 1, FORK + 1, FORK), .receive_timeline = 2,
		.use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"past the fork but already receiving the leader's timeline: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 2, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"past the fork but streaming: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .streaming = true,
		.use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"past a fork line of our timeline, but the leader is on our timeline: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 2, LSN, LIVE)}},
		{REPLICA("pg2", 2, LSN), .receive_timeline = 2, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"leader's timeline unknown (0): follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, FORK)),
		.members = {M("pg1", 0, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"no history line for our timeline: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(2, FORK)),
		.members = {M("pg1", 3, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"the history line of our timeline counts, not an earlier one: rewind",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, LSN + 100), H(2, FORK)),
		.members = {M("pg1", 3, LSN + 4096, LIVE)}},
		{REPLICA("pg2", 2, LSN), .receive_timeline = 2, .use_pg_rewind = true},
		HA_REWIND, "pg1", NULL
	},
	{
		"the history line of our timeline counts, not a later one: follow",
		{LEADER("pg1", THEIR_LEASE), HISTORY(H(1, LSN + 100), H(2, FORK)),
		.members = {M("pg1", 3, LSN + 4096, LIVE)}},
		{REPLICA("pg2", 1, LSN), .receive_timeline = 1, .use_pg_rewind = true},
		HA_FOLLOW, "pg1", NULL
	},

	/* 4a. nobody leads, we are a primary */
	{
		"no leader, primary, nobody ahead: acquire",
		{NO_LEADER,
		.members = {M("pg2", 1, LSN - 100, LIVE), M("pg3", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, "no member is ahead"
	},
	{
		"no leader, primary, no members: acquire",
		{NO_LEADER},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, primary, member on a higher timeline: wait",
		{NO_LEADER,
		.members = {M("pg2", 1, LSN, LIVE), M("pg3", 2, LSN - 4096, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "\"pg3\" is ahead"
	},
	{
		"no leader, primary, member with more WAL on the same timeline: wait",
		{NO_LEADER, .members = {M("pg2", 1, LSN + 1, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "\"pg2\" is ahead"
	},
	{
		"no leader, primary, member with more WAL on an older timeline: acquire",
		{NO_LEADER, .members = {M("pg2", 1, LSN + 4096, LIVE)}},
		{PRIMARY("pg1", 2, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, primary, silent member ahead still counts: wait",
		{NO_LEADER, .members = {M("pg2", 1, LSN + 1, SILENT)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "pg2"
	},
	{
		"no leader, primary, nofailover member ahead still counts: wait",
		{NO_LEADER, .members = {MNF("pg2", 2, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "pg2"
	},
	{
		"no leader, primary, own member entry ahead is ignored: acquire",
		{NO_LEADER,
		.members = {M("pg1", 3, LSN + 4096, LIVE), M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},

	{
		"no leader, primary at the status key position: acquire",
		{NO_LEADER, .leader_optime = LSN, .members = {M("pg2", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .last_leader_lsn = LSN},
		HA_ACQUIRE, NULL, NULL
	},

	/*
	 * A primary far behind the last known leader position: a newer leader
	 * (on a later timeline, whose own member key and those of its replicas
	 * have expired) wrote well past this server.  Taking the key would
	 * throw away that leader's acknowledged writes, which the election
	 * refuses to do for a replica (maximum_lag_on_failover).
	 */
	{
		"no leader, primary far behind the status key: wait",
		{NO_LEADER, .leader_optime = LSN + 64 * MAX_LAG},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "last leader wrote up to"
	},
	{
		"no leader, status key on a later timeline than this primary: wait",
		{NO_LEADER, .leader_optime = LSN - 100, .leader_timeline = 2},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "timeline 2"
	},
	{
		"no leader, status key on this primary's timeline and behind it: acquire",
		{NO_LEADER, .leader_optime = LSN - 100, .leader_timeline = 1},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, status key on an older timeline further ahead: acquire",
		{NO_LEADER, .leader_optime = LSN + 64 * MAX_LAG, .leader_timeline = 1},
		{PRIMARY("pg1", 2, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, primary, a live switchover names another member: wait",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "switchover to \"pg2\" is in progress"
	},
	{
		"no leader, primary, a live manual failover names another member: wait",
		{NO_LEADER, FAILOVER("pg2"), .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .request_age_ms = REQUEST_TIMEOUT,
		.leaderless_ms = REQUEST_TIMEOUT - 1},
		HA_WAIT, NULL, "failover to \"pg2\" is in progress"
	},
	{
		"no leader, primary, the failover key names us: acquire",
		{NO_LEADER, FAILOVER("pg1"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, primary, a stale request names another member: acquire",
		{NO_LEADER, FAILOVER("pg2"), .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .request_age_ms = REQUEST_TIMEOUT,
		.leaderless_ms = REQUEST_TIMEOUT},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"no leader, primary, a request names a member not listed: acquire",
		{NO_LEADER, FAILOVER("pg9"), .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		/* the pause stops promotions, not a running primary taking the key */
		"no leader, primary, paused: acquire",
		{NO_LEADER, .paused = true, .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"initialize missing while another server leads: wait, never re-initialize",
		{.initialize = NULL, .leader = "pg1", .leader_lease = THEIR_LEASE,
		.members = {M("pg1", 1, LSN, LIVE)}},
		{PRIMARY("pg9", 1, LSN)},
		HA_WAIT, "pg1", "initialize key is missing"
	},
	{
		"initialize missing while we lead: write it again",
		{.initialize = NULL, .leader = "pg1", .leader_lease = OUR_LEASE,
		.members = {M("pg1", 1, LSN, LIVE)}},
		{PRIMARY("pg1", 1, LSN), .is_leader = true},
		HA_INITIALIZE, NULL, NULL
	},
	{
		"election: a primary member as advanced as us takes the key, whatever the names",
		{NO_LEADER, .members = {MPRIMARY("pg9", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "better candidate"
	},
	{
		"election: a primary member behind us does not",
		{NO_LEADER, .members = {MPRIMARY("pg1", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: status key on a later timeline than this replica: wait",
		{NO_LEADER, .leader_optime = LSN - 100, .leader_timeline = 2},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "still on timeline 1"
	},
	{
		"election: a silent member far ahead bounds the lag: wait",
		{NO_LEADER, .members = {M("pg3", 1, LSN + 2 * MAX_LAG, SILENT)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "maximum_lag_on_failover"
	},
	{
		"election: a silent member slightly ahead within the lag: promote",
		{NO_LEADER, .members = {M("pg3", 1, LSN + 100, SILENT)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},

	/* 4b. nobody leads, we are a replica: the election */
	{
		"election: the best candidate promotes",
		{NO_LEADER,
		.members = {M("pg1", 1, LSN, SILENT), M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: alone in the view, promote",
		{NO_LEADER},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: nofailover never promotes",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN), .nofailover = true},
		HA_WAIT, NULL, "nofailover"
	},
	{
		"election: not streaming and replay behind receive: wait",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 1, LATE)},
		HA_WAIT, NULL, "replayed"
	},
	{
		"election: not streaming, replay ahead of receive (archive): promote",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN - 4096, LSN, LATE)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: streaming within stream_wait after a shutdown release: wait",
		{NO_LEADER, .leader_shutdown = true, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, STREAM_WAIT - 1), .streaming = true},
		HA_WAIT, NULL, "stream"
	},
	{
		"election: streaming, replay behind, within stream_wait after a shutdown release: wait",
		{NO_LEADER, .leader_shutdown = true, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 100, 0), .streaming = true},
		HA_WAIT, NULL, "stream"
	},
	{
		"election: streaming, exactly stream_wait elapsed after a shutdown release: promote",
		{NO_LEADER, .leader_shutdown = true, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, STREAM_WAIT), .streaming = true},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: streaming after stream_wait, replay behind: promote",
		{NO_LEADER, .leader_shutdown = true, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 100, LATE), .streaming = true},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: streaming after stream_wait ranks by received position",
		{NO_LEADER, .leader_shutdown = true, .members = {M("pg3", 1, LSN - 50, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 100, LATE), .streaming = true},
		HA_PROMOTE, "pg2", NULL
	},
	{
		/* a frozen or cut-off leader's stream looks alive, but it sends nothing */
		"election: still streaming, lease expired (no shutdown mark): no stream wait, promote",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0), .streaming = true},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: still streaming, lease expired, others not heard yet: wait for members, not the stream",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, SILENT)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0), .streaming = true},
		HA_WAIT, NULL, "publish its position"
	},
	{
		"election: lag one byte over maximum_lag (last_leader_lsn): wait",
		{NO_LEADER},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN + MAX_LAG + 1},
		HA_WAIT, NULL, "maximum_lag_on_failover"
	},
	{
		"election: lag exactly maximum_lag: promote",
		{NO_LEADER},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN + MAX_LAG},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: lag over maximum_lag via the status key: wait",
		{NO_LEADER, .leader_optime = LSN + 2 * MAX_LAG},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN},
		HA_WAIT, NULL, "maximum_lag_on_failover"
	},
	{
		"election: status key older than last_leader_lsn, the larger counts: wait",
		{NO_LEADER, .leader_optime = LSN},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN + 2 * MAX_LAG},
		HA_WAIT, NULL, "maximum_lag_on_failover"
	},
	{
		"election: status key exactly maximum_lag ahead: promote",
		{NO_LEADER, .leader_optime = LSN + MAX_LAG},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: ahead of the last known leader position: promote",
		{NO_LEADER, .leader_optime = LSN - 100},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN - 200},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: lag measured from the received position when streaming",
		{NO_LEADER},
		{ELECTOR("pg2", 1, LSN, LSN - 2 * MAX_LAG, LATE), .streaming = true,
		.last_leader_lsn = LSN + MAX_LAG},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: another member ahead: wait, naming it",
		{NO_LEADER,
		.members = {M("pg1", 1, LSN - 100, LIVE), M("pg3", 1, LSN + 1, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg3\" is a better candidate"
	},
	{
		"election: another member ahead with a lower priority still wins: wait",
		{NO_LEADER, .members = {MP("pg3", 1, LSN + 1, LIVE, 0)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "pg3"
	},
	{
		"election: another member behind with a higher priority: promote",
		{NO_LEADER, .members = {MP("pg1", 1, LSN - 1, LIVE, 9)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: equal position, other member has higher priority: wait",
		{NO_LEADER, .members = {MP("pg3", 1, LSN, LIVE, PRIO + 1)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg3\""
	},
	{
		"election: equal position, other member has lower priority: promote",
		{NO_LEADER, .members = {MP("pg1", 1, LSN, LIVE, PRIO - 1)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: equal position and priority, lower name pg1 wins over us (pg2)",
		{NO_LEADER, .members = {M("pg1", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg1\""
	},
	{
		"election: equal position and priority, we (pg1) win over pg2",
		{NO_LEADER, .members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg1", 1, LSN)},
		HA_PROMOTE, "pg1", NULL
	},
	{
		"election: other member nofailover and ahead is ignored: promote",
		{NO_LEADER,
		.members = {MNF("pg3", 1, LSN + 4096, LIVE), MNF("pg4", 2, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: other member on an older timeline with more WAL: promote",
		{NO_LEADER, .members = {M("pg1", 1, LSN + 4096, LIVE)}},
		{CANDIDATE("pg2", 2, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: other member on a newer timeline with less WAL: wait",
		{NO_LEADER, .members = {M("pg3", 3, LSN - 4096, LIVE)}},
		{CANDIDATE("pg2", 2, LSN)},
		HA_WAIT, NULL, "\"pg3\""
	},
	{
		"election: silent member before member_wait: wait for it to publish",
		{NO_LEADER,
		.members = {M("pg1", 1, LSN - 100, LIVE), M("pg3", 1, LSN - 100, SILENT)}},
		{ELECTOR("pg2", 1, LSN, LSN, MEMBER_WAIT - 1)},
		HA_WAIT, NULL, "publish"
	},
	{
		"election: member last updated at the leaderless revision is silent: wait",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LEFT_AT)}},
		{ELECTOR("pg2", 1, LSN, LSN, STREAM_WAIT)},
		HA_WAIT, NULL, "\"pg3\" to publish"
	},
	{
		"election: member updated one revision after the leader left has spoken",
		{NO_LEADER, .members = {M("pg3", 1, LSN - 100, LEFT_AT + 1)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: silent member ahead after member_wait is ignored: promote",
		{NO_LEADER,
		.members = {M("pg3", 2, LSN + 4096, SILENT), M("pg4", 1, LSN - 1, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, MEMBER_WAIT + 1)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: silent member at exactly member_wait is ignored: promote",
		{NO_LEADER, .members = {M("pg3", 1, LSN + 4096, SILENT)}},
		{ELECTOR("pg2", 1, LSN, LSN, MEMBER_WAIT)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"election: member that spoke stays a rival after member_wait: wait",
		{NO_LEADER,
		.members = {M("pg3", 1, LSN + 1, LIVE), M("pg4", 1, LSN + 9, SILENT)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg3\""
	},
	{
		"election: our own member entry (silent, ahead) is ignored: promote",
		{NO_LEADER,
		.members = {M("pg2", 3, LSN + 4096, SILENT), M("pg3", 1, LSN - 1, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_PROMOTE, "pg2", NULL
	},

	/* 4c. elections with a failover key, or paused */
	{
		"election: a live switchover to another member: wait",
		{NO_LEADER, SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN - 100, SILENT), M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "switchover to \"pg3\" is in progress"
	},
	{
		"election: a live manual failover to another member: wait",
		{NO_LEADER, FAILOVER("pg3"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "failover to \"pg3\" is in progress"
	},
	{
		"election: request seen past request_timeout, leaderless for less: live, wait",
		{NO_LEADER, SWITCHOVER("pg1", "pg3"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, REQUEST_TIMEOUT - 1),
		.request_age_ms = REQUEST_TIMEOUT},
		HA_WAIT, NULL, "in progress"
	},
	{
		"election: leaderless past request_timeout, request seen for less: live, wait",
		{NO_LEADER, FAILOVER("pg3"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, REQUEST_TIMEOUT),
		.request_age_ms = REQUEST_TIMEOUT - 1},
		HA_WAIT, NULL, "in progress"
	},
	{
		"election: request and leaderless both past request_timeout: stale, promote",
		{NO_LEADER, SWITCHOVER("pg1", "pg3"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, REQUEST_TIMEOUT),
		.request_age_ms = REQUEST_TIMEOUT},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: a scheduled request to another member is ignored: promote",
		{NO_LEADER, SCHEDULED("pg1", "pg3"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: a request to a member no longer listed is ignored: promote",
		{NO_LEADER, FAILOVER("pg9"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: a switchover naming no member is ignored: promote",
		{NO_LEADER, SWITCHOVER("pg1", NULL), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"election: a manual failover to us, lagging past maximum_lag: promote",
		{NO_LEADER, FAILOVER("pg2"), .leader_optime = LSN + 2 * MAX_LAG,
		.leader_timeline = 1, .members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN), .last_leader_lsn = LSN + 4 * MAX_LAG},
		HA_PROMOTE, "pg2", "manual failover names this replica"
	},
	{
		"election: a manual failover to us though a member is ahead: promote",
		{NO_LEADER, FAILOVER("pg2"),
		.members = {M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN + 4096, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "manual failover"
	},
	{
		"election: a manual failover to us, not all received WAL replayed: wait",
		{NO_LEADER, FAILOVER("pg2"), .members = {M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 1, LATE)},
		HA_WAIT, NULL, "replayed"
	},
	{
		"election: a manual failover to us, streaming, replay behind: promote",
		{NO_LEADER, FAILOVER("pg2"), .members = {M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 1, LATE), .streaming = true},
		HA_PROMOTE, "pg2", "manual failover"
	},
	{
		"election: a manual failover to us within stream_wait after a shutdown release: wait",
		{NO_LEADER, FAILOVER("pg2"), .leader_shutdown = true,
		.members = {M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, STREAM_WAIT - 1), .streaming = true},
		HA_WAIT, NULL, "stream"
	},
	{
		"election: a manual failover to us, status key on a later timeline: wait",
		{NO_LEADER, FAILOVER("pg2"), .leader_optime = LSN - 100,
		.leader_timeline = 2, .members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "still on timeline 1"
	},
	{
		"election: a manual failover to us with nofailover: wait",
		{NO_LEADER, FAILOVER("pg2"), .members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN), .nofailover = true},
		HA_WAIT, NULL, "nofailover"
	},
	{
		"election: a switchover to us with the old leader's last position: promote",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .leader_optime = LSN,
		.leader_timeline = 1,
		.members = {M("pg1", 1, LSN, SILENT), M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_PROMOTE, "pg2", "switchover names this replica"
	},
	{
		"election: a switchover to us, one byte short of the old leader's position: wait",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .leader_optime = LSN + 1,
		.leader_timeline = 1,
		.members = {M("pg1", 1, LSN + 1, SILENT), M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_WAIT, NULL, "waits for the old leader's last WAL"
	},
	{
		"election: a switchover to us, status key ahead without a timeline: wait",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .leader_optime = LSN + 1,
		.members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "last WAL"
	},
	{
		"election: a switchover to us, received (not replayed) the last position: promote",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .leader_optime = LSN,
		.leader_timeline = 1, .members = {M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN - 100, LATE), .streaming = true},
		HA_PROMOTE, "pg2", "switchover"
	},
	{
		"election: a switchover to us, status key ahead on an older timeline: promote",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"), .leader_optime = LSN + 4096,
		.leader_timeline = 1, .members = {M("pg2", 2, LSN, LIVE)}},
		{CANDIDATE("pg2", 2, LSN)},
		HA_PROMOTE, "pg2", "switchover"
	},
	{
		"election: a switchover to us, no status key, a member ahead: promote",
		{NO_LEADER, SWITCHOVER("pg1", "pg2"),
		.members = {M("pg2", 1, LSN, LIVE), M("pg3", 1, LSN + 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "switchover"
	},
	{
		"election: paused, no request: wait",
		{NO_LEADER, .paused = true, .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "the cluster is paused"
	},
	{
		"election: paused, a stale request to us: wait",
		{NO_LEADER, .paused = true, FAILOVER("pg2"),
		.members = {M("pg2", 1, LSN, LIVE)}},
		{ELECTOR("pg2", 1, LSN, LSN, REQUEST_TIMEOUT),
		.request_age_ms = REQUEST_TIMEOUT},
		HA_WAIT, NULL, "paused"
	},
	{
		"election: paused, a live manual failover to us: promote",
		{NO_LEADER, .paused = true, FAILOVER("pg2"),
		.members = {M("pg2", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", "manual failover"
	},
	{
		"election: paused, a live manual failover to another member: wait",
		{NO_LEADER, .paused = true, FAILOVER("pg3"),
		.members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "failover to \"pg3\" is in progress"
	},

	/* a full view */
	{
		"full view: AUTOHA_MAX_MEMBERS members all behind: promote",
		{NO_LEADER, .pad = M("pad", 1, LSN - 100, LIVE)},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"full view: the last of AUTOHA_MAX_MEMBERS members is ahead: wait",
		{NO_LEADER, .pad = M("pad", 1, LSN - 100, LIVE),
		.members = {M("last", 1, LSN + 1, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"last\""
	},
	{
		"full view: the last of AUTOHA_MAX_MEMBERS members is silent: wait",
		{NO_LEADER, .pad = M("pad", 1, LSN - 100, LIVE),
		.members = {M("last", 1, LSN - 100, SILENT)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_WAIT, NULL, "\"last\" to publish"
	},
	{
		"full view: leader is the last of AUTOHA_MAX_MEMBERS members: follow",
		{LEADER("last", THEIR_LEASE), .pad = M("pad", 1, LSN - 100, LIVE),
		.members = {M("last", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "last", NULL
	},
	{
		"full view: primary, the last member is on a higher timeline: wait",
		{NO_LEADER, .pad = M("pad", 1, LSN - 100, LIVE),
		.members = {M("last", 2, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_WAIT, NULL, "\"last\""
	},

	/* synchronous mode: the sync key decides who may take over */
	{
		"sync: a replica the sync key lists is promoted",
		{NO_LEADER, SYNC("pg1", "pg2"), .leader_optime = LSN, .leader_timeline = 1,
		.members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN - 200)},
		HA_PROMOTE, "pg2", "best candidate"
	},
	{
		"sync: a replica the sync key does not list waits, even when it is the most advanced",
		{NO_LEADER, SYNC("pg1", "pg2"), .leader_optime = LSN, .leader_timeline = 1,
		.members = {M("pg2", 1, LSN - 200, LIVE)}},
		{CANDIDATE("pg3", 1, LSN)},
		HA_WAIT, NULL, "not in the synchronous set"
	},
	{
		"sync: alone and not listed, a replica still waits",
		{NO_LEADER, SYNC("pg1", "pg2")},
		{CANDIDATE("pg3", 1, LSN)},
		HA_WAIT, NULL, "lists \"pg2\""
	},
	{
		"sync: a key listing no standby lets no replica take over",
		{NO_LEADER, SYNC("pg1"), .members = {M("pg3", 1, LSN - 100, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "lists no standby"
	},
	{
		"sync: an unreadable key lets no replica take over",
		{NO_LEADER, SYNC_UNREADABLE},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "not in the synchronous set"
	},
	{
		"sync: a listed standby lagging beyond maximum_lag is still promoted",
		{NO_LEADER, SYNC("pg1", "pg2"), .leader_optime = LSN + 4 * MAX_LAG, .leader_timeline = 1},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"async: the same lag keeps it from promoting",
		{NO_LEADER, .leader_optime = LSN + 4 * MAX_LAG, .leader_timeline = 1},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "maximum_lag_on_failover"
	},
	{
		"sync: an unlisted member ahead does not hold back a listed one",
		{NO_LEADER, SYNC("pg1", "pg2"), .members = {M("pg3", 1, LSN + 500, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"sync: an unlisted member silent since the leader left is not waited for",
		{NO_LEADER, SYNC("pg1", "pg2"), .members = {M("pg3", 1, LSN - 100, SILENT)}},
		{ELECTOR("pg2", 1, LSN, LSN, 0)},
		HA_PROMOTE, "pg2", NULL
	},
	{
		"sync: another listed standby ahead wins",
		{NO_LEADER, SYNC("pg1", "pg2", "pg3"), .members = {M("pg3", 1, LSN + 500, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg3\" is a better candidate"
	},
	{
		"sync: the key's leader, back as a primary as advanced, is waited for",
		{NO_LEADER, SYNC("pg1", "pg2"), .members = {MPRIMARY("pg1", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "\"pg1\" is a better candidate"
	},
	{
		"sync: the key's leader, back as a primary, takes the key again",
		{NO_LEADER, SYNC("pg1", "pg2"), .members = {M("pg2", 1, LSN - 100, LIVE)}},
		{PRIMARY("pg1", 1, LSN)},
		HA_ACQUIRE, NULL, NULL
	},
	{
		"sync: a primary the key does not know does not take the key",
		{NO_LEADER, SYNC("pg1", "pg2")},
		{PRIMARY("pg3", 1, LSN)},
		HA_WAIT, NULL, "not in the synchronous set"
	},
	{
		"sync: a manual failover may name an unlisted replica",
		{NO_LEADER, SYNC("pg1", "pg2"), FAILOVER("pg3"),
		.members = {M("pg3", 1, LSN - 200, LIVE)}},
		{CANDIDATE("pg3", 1, LSN - 200)},
		HA_PROMOTE, "pg3", "manual failover"
	},
	{
		"sync: a switchover may name an unlisted replica",
		{NO_LEADER, SYNC("pg1", "pg2"), SWITCHOVER("pg1", "pg3"),
		.leader_optime = LSN, .leader_timeline = 1,
		.members = {M("pg3", 1, LSN, LIVE)}},
		{CANDIDATE("pg3", 1, LSN)},
		HA_PROMOTE, "pg3", "switchover"
	},
	{
		"sync: a switchover elsewhere holds back a listed standby",
		{NO_LEADER, SYNC("pg1", "pg2"), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg3", 1, LSN, LIVE)}},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "switchover to \"pg3\" is in progress"
	},
	{
		"sync: an unlisted replica follows the leader as usual",
		{LEADER("pg1", THEIR_LEASE), SYNC("pg1", "pg2"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg2", 1, LSN, LIVE)}},
		{REPLICA("pg3", 1, LSN)},
		HA_FOLLOW, "pg1", NULL
	},
	{
		"sync: during a switchover an async replica streams from the target",
		{LEADER("pg1", THEIR_LEASE), SYNC("pg1", "pg3"), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg3", "target of the switchover"
	},
	{
		"sync: during a switchover the leader's synchronous standby stays on the leader",
		{LEADER("pg1", THEIR_LEASE), SYNC("pg1", "pg2"), SWITCHOVER("pg1", "pg3"),
		.members = {M("pg1", 1, LSN, LIVE), M("pg3", 1, LSN, LIVE)}},
		{REPLICA("pg2", 1, LSN)},
		HA_FOLLOW, "pg1", "following leader"
	},
	{
		"sync: paused, even a listed standby is not promoted",
		{NO_LEADER, SYNC("pg1", "pg2"), .paused = true},
		{CANDIDATE("pg2", 1, LSN)},
		HA_WAIT, NULL, "paused"
	},
};
#pragma GCC diagnostic pop

#define NCASES ((int) (sizeof(cases) / sizeof(cases[0])))

/* ------------------------------------------------------------------ */
/* Builders                                                            */
/* ------------------------------------------------------------------ */

static void
add_member(ClusterView *view, const MemberSpec *spec, const char *name,
		   bool is_leader)
{
	MemberInfo *m = &view->members[view->nmembers++];

	if (spec->stale)
		is_leader = false;
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->role, sizeof(m->role), "%s",
			 is_leader || spec->primary ? "primary" : "replica");
	snprintf(m->state, sizeof(m->state), "running");
	snprintf(m->replication_state, sizeof(m->replication_state), "%s",
			 is_leader || spec->not_streaming ? "" : "streaming");
	snprintf(m->host, sizeof(m->host), "10.0.0.%d", view->nmembers);
	m->port = 5432;
	m->timeline = spec->timeline;
	m->lsn = spec->lsn;
	m->nofailover = spec->nofailover;
	m->failover_priority = spec->priority;
	snprintf(m->tags, sizeof(m->tags), "%s",
			 spec->nofailover ? "{\"nofailover\":true}" : "{}");
	m->mod_revision = spec->mod_revision;
	m->lease = 9000 + view->nmembers;
}

/* Expand a ViewSpec; returns false if it does not fit in a ClusterView. */
static bool
build_view(const ViewSpec *spec, ClusterView *view)
{
	int			nexplicit = 0;
	int			i;

	memset(view, 0, sizeof(*view));
	view->revision = READ_AT;
	view->leader_shutdown = spec->leader_shutdown;
	if (spec->initialize != NULL)
	{
		view->has_initialize = true;
		snprintf(view->initialize, sizeof(view->initialize), "%s",
				 spec->initialize);
	}
	if (spec->leader != NULL)
	{
		view->has_leader = true;
		snprintf(view->leader, sizeof(view->leader), "%s", spec->leader);
		view->leader_create_revision = LEADER_TERM;
		view->leader_lease = spec->leader_lease;
	}
	if (spec->leader_optime != 0)
	{
		view->has_leader_optime = true;
		view->leader_optime = spec->leader_optime;
		view->leader_timeline = spec->leader_timeline;
	}
	if (spec->request.present)
	{
		FailoverRequest *r = &view->failover;

		r->present = true;
		snprintf(r->leader, sizeof(r->leader), "%s",
				 spec->request.leader != NULL ? spec->request.leader : "");
		snprintf(r->member, sizeof(r->member), "%s",
				 spec->request.member != NULL ? spec->request.member : "");
		r->scheduled = spec->request.scheduled;
		r->mod_revision = READ_AT - 1;
	}
	view->paused = spec->paused;
	if (spec->sync.leader != NULL)
	{
		SyncState  *sy = &view->sync;

		sy->present = true;
		sy->malformed = spec->sync.malformed;
		snprintf(sy->leader, sizeof(sy->leader), "%s", spec->sync.leader);
		for (i = 0; i < 4 && spec->sync.standbys[i] != NULL; i++)
			snprintf(sy->standbys[sy->nstandbys++], AUTOHA_NAME_LEN, "%s",
					 spec->sync.standbys[i]);
		sy->mod_revision = READ_AT - 2;
	}
	for (i = 0; i < MAX_SPEC_HISTORY && spec->history[i].timeline != 0; i++)
	{
		HistoryEntry *h = &view->history[view->nhistory++];

		h->timeline = spec->history[i].timeline;
		h->lsn = spec->history[i].lsn;
		snprintf(h->reason, sizeof(h->reason), "no recovery target specified");
		snprintf(h->timestamp, sizeof(h->timestamp), "2024-05-01T12:00:0%d+00:00", i);
		snprintf(h->new_leader, sizeof(h->new_leader), "pg%d", i + 1);
	}

	while (nexplicit < MAX_SPEC_MEMBERS && spec->members[nexplicit].name != NULL)
		nexplicit++;
	if (nexplicit > AUTOHA_MAX_MEMBERS)
		return false;

	if (spec->pad.name != NULL)
	{
		for (i = 0; i < AUTOHA_MAX_MEMBERS - nexplicit; i++)
		{
			char		name[AUTOHA_NAME_LEN];

			snprintf(name, sizeof(name), "%s%02d", spec->pad.name, i);
			add_member(view, &spec->pad, name, false);
		}
	}
	for (i = 0; i < nexplicit; i++)
	{
		const MemberSpec *m = &spec->members[i];

		add_member(view, m, m->name,
				   spec->leader != NULL && strcmp(m->name, spec->leader) == 0);
	}
	return true;
}

static void
build_local(const LocalSpec *spec, LocalState *local)
{
	memset(local, 0, sizeof(*local));
	local->name = spec->name;
	snprintf(local->sysid, sizeof(local->sysid), "%s", spec->sysid);
	local->in_recovery = spec->in_recovery;
	local->streaming = spec->streaming;
	local->receive_lsn = spec->receive_lsn;
	local->replay_lsn = spec->replay_lsn;
	local->receive_timeline = spec->receive_timeline;
	local->write_lsn = spec->write_lsn;
	local->timeline = spec->timeline;
	local->nofailover = spec->nofailover;
	local->failover_priority = spec->priority;
	local->maximum_lag = spec->maximum_lag;
	local->is_leader = spec->is_leader;
	local->last_leader_lsn = spec->last_leader_lsn;
	local->leaderless_since_revision = spec->leaderless_since_revision;
	local->leaderless_ms = spec->leaderless_ms;
	local->member_wait_ms = spec->member_wait_ms;
	local->stream_wait_ms = spec->stream_wait_ms;
	local->request_age_ms = spec->request_age_ms;
	local->request_timeout_ms = spec->request_timeout_ms;
	local->handover_delay_ms = spec->handover_delay_ms;
	local->checkpoint_pending = spec->checkpoint_pending;
	local->use_pg_rewind = spec->use_pg_rewind;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void
test_decisions(void)
{
	int			i;

	for (i = 0; i < NCASES; i++)
	{
		const HaCase *c = &cases[i];
		static ClusterView view;
		LocalState	local;
		HaDecision	d;
		bool		built;
		size_t		reason_len;

		built = build_view(&c->view, &view);
		if (!built)
		{
			UNIT_OK(false, "%s: view builds", c->name);
			continue;
		}
		if (c->view.pad.name != NULL)
			UNIT_OK(view.nmembers == AUTOHA_MAX_MEMBERS,
					"%s: view holds %d members", c->name, AUTOHA_MAX_MEMBERS);
		build_local(&c->local, &local);

		d = ha_decide(&view, &local);
		reason_len = strnlen(d.reason, sizeof(d.reason));

		UNIT_STR_EQ(ha_action_name(d.action), ha_action_name(c->action),
					"%s: action %s", c->name, ha_action_name(c->action));
		UNIT_STR_EQ(d.leader, c->leader != NULL ? c->leader : "",
					"%s: leader \"%s\"", c->name,
					c->leader != NULL ? c->leader : "");
		UNIT_OK(reason_len > 0 && reason_len < sizeof(d.reason),
				"%s: reason is given", c->name);
		if (c->reason != NULL)
		{
			UNIT_OK(reason_len < sizeof(d.reason) &&
					strstr(d.reason, c->reason) != NULL,
					"%s: reason mentions '%s'", c->name, c->reason);
		}
		UNIT_OK(d.clear_request == c->clear, "%s: %s the failover key",
				c->name, c->clear ? "deletes" : "keeps");
		if (d.action != c->action || d.clear_request != c->clear ||
			(c->reason != NULL && strstr(d.reason, c->reason) == NULL))
			printf("#   reason: %s\n", d.reason);
	}
}

static void
test_action_names(void)
{
	static const struct
	{
		HaAction	action;
		const char *name;
	}			names[] = {
		{HA_WAIT, "wait"},
		{HA_REFUSE, "refuse"},
		{HA_INITIALIZE, "initialize"},
		{HA_ACQUIRE, "acquire"},
		{HA_LEAD, "lead"},
		{HA_FOLLOW, "follow"},
		{HA_PROMOTE, "promote"},
		{HA_STAND_ASIDE, "stand aside"},
		{HA_HANDOVER, "hand over"},
		{HA_DEMOTE, "demote"},
		{HA_REWIND, "rewind"},
	};
	int			i;

	for (i = 0; i < (int) (sizeof(names) / sizeof(names[0])); i++)
		UNIT_STR_EQ(ha_action_name(names[i].action), names[i].name,
					"ha_action_name(%d) = \"%s\"", (int) names[i].action,
					names[i].name);
	UNIT_STR_EQ(ha_action_name((HaAction) 99), "unknown",
				"ha_action_name of an out-of-range value");
}

static void
test_find_member(void)
{
	static ClusterView view;
	static const ViewSpec spec = {
		NO_LEADER, .pad = M("pad", 1, LSN, LIVE), .members = {M("last", 1, LSN, LIVE)}
	};
	const MemberInfo *m;
	bool		built;

	memset(&view, 0, sizeof(view));
	UNIT_OK(ha_find_member(&view, "pg1") == NULL,
			"ha_find_member: empty view finds nothing");

	built = build_view(&spec, &view);
	UNIT_OK(built && view.nmembers == AUTOHA_MAX_MEMBERS,
			"ha_find_member: full view builds");
	m = ha_find_member(&view, "pad00");
	UNIT_OK(m == &view.members[0], "ha_find_member: first member");
	m = ha_find_member(&view, "last");
	UNIT_OK(m == &view.members[AUTOHA_MAX_MEMBERS - 1],
			"ha_find_member: last of AUTOHA_MAX_MEMBERS members");
	UNIT_OK(ha_find_member(&view, "pad") == NULL,
			"ha_find_member: a prefix of a name does not match");
	UNIT_OK(ha_find_member(&view, "pg9") == NULL,
			"ha_find_member: unknown name");
}

static void
test_local_position(void)
{
	LocalState	local;

	memset(&local, 0, sizeof(local));
	local.in_recovery = false;
	local.write_lsn = 5000;
	local.receive_lsn = 7000;
	local.replay_lsn = 6000;
	UNIT_OK(ha_local_position(&local) == 5000,
			"ha_local_position: a primary publishes its write position");

	local.in_recovery = true;
	UNIT_OK(ha_local_position(&local) == 7000,
			"ha_local_position: replica, receive ahead of replay -> receive");

	local.receive_lsn = 4000;
	UNIT_OK(ha_local_position(&local) == 6000,
			"ha_local_position: replica, replay ahead of receive -> replay");

	local.receive_lsn = 6000;
	UNIT_OK(ha_local_position(&local) == 6000,
			"ha_local_position: replica, receive equal to replay");

	local.receive_lsn = AUTOHA_INVALID_LSN;
	local.replay_lsn = AUTOHA_INVALID_LSN;
	UNIT_OK(ha_local_position(&local) == AUTOHA_INVALID_LSN,
			"ha_local_position: replica with no WAL yet");
}

int
main(void)
{
	printf("# %d ha_decide cases\n", NCASES);
	test_decisions();
	test_action_names();
	test_find_member();
	test_local_position();
	UNIT_DONE();
}
