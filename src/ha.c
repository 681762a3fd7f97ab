/*-------------------------------------------------------------------------
 *
 * ha.c
 *	  The failover decision: (cluster view, local state) -> action.
 *
 * Everything here is pure: no locks, no I/O, no clock.  The worker gathers
 * the facts (one read of the cluster's keys in etcd, this server's recovery
 * state and WAL positions, how long the cluster has been leaderless) and
 * carries out the action this returns.  Keeping the decision in one pure
 * function is what lets test/unit/test_ha.c check it as a table.
 *
 * The rules, in order:
 *
 *	1. A cluster with no "initialize" key and no leader is new: only a
 *	   primary may create it; a replica waits.  (If a leader exists, only
 *	   that leader may write "initialize" again.)  A server whose system
 *	   identifier differs from "initialize" takes no part (invariant 6).
 *	2. If the leader key names us and is attached to our lease, we lead (or,
 *	   still in recovery, finish the promotion we started).  If it names us
 *	   but hangs on a lease that is not ours, we wait for that lease to
 *	   expire: it may be an earlier life of this server (a crash restart
 *	   loses the lease id) or another server misconfigured with our name,
 *	   and taking it over would be wrong in the second case.  A leader
 *	   hands over when the "failover" key asks it to (a switchover): to the
 *	   named member, or the most advanced eligible replica, once the target
 *	   is a streaming replica within maximum_lag and has had time to see the
 *	   request; a request it cannot carry out (another leader named, target
 *	   unknown or not eligible, paused, scheduled, target not catching up
 *	   within request_timeout) is deleted, with the reason.
 *	3. If another member leads, a replica follows it, unless its WAL went
 *	   past the point where the leader's timeline forked off its own (from
 *	   the "history" key), or it is on a timeline the leader never had: then
 *	   it must be rewound (pg_rewind) first.  A primary demotes itself to a
 *	   replica of the leader.  While the cluster is paused, neither happens:
 *	   the primary stays fenced, the diverged replica waits.
 *	4. With no leader, a live "failover" request (switchover or manual
 *	   failover) names the only member that may take over: the others wait.
 *	   A switchover target takes over once it has received the old leader's
 *	   final position (published in "status"); a manual failover target
 *	   once it has replayed what it received, however far behind it is (the
 *	   DBA chose it).  Without a request, a paused cluster holds no election.
 *	   In synchronous mode (a "sync" key exists) only a standby it lists, or
 *	   the leader that wrote it, may take over: only they are known to hold
 *	   every acknowledged commit (invariant 4); for them the lag check does
 *	   not apply, and only they compete.
 *	   Otherwise, nobody may take over who is behind what the last
 *	   leader is known to have written: its position and timeline in the
 *	   "status" key, and the position of every member still listed (a
 *	   member's position is never ahead of its leader's).  Beyond that, a
 *	   primary takes the key unless a member is ahead of it; a replica holds
 *	   an election: it promotes only if it may (nofailover), has all it
 *	   received replayed or is still streaming, its stream from an old
 *	   leader that announced its shutdown has ended (or it waited long
 *	   enough), it lags the last leader by no more than maximum_lag, and no
 *	   other live member is a better candidate.  Taking the key is a
 *	   create_revision == 0 transaction, so two candidates that both believe
 *	   they are best cannot both win.
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ha.h"

static void
set_reason(HaDecision *d, const char *fmt,...)
__attribute__((format(printf, 2, 3)));

static void
set_reason(HaDecision *d, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

static HaDecision
decision(HaAction action, const char *leader)
{
	HaDecision	d;

	memset(&d, 0, sizeof(d));
	d.action = action;
	if (leader != NULL)
		snprintf(d.leader, sizeof(d.leader), "%s", leader);
	return d;
}

const char *
ha_action_name(HaAction action)
{
	switch (action)
	{
		case HA_WAIT:
			return "wait";
		case HA_REFUSE:
			return "refuse";
		case HA_INITIALIZE:
			return "initialize";
		case HA_ACQUIRE:
			return "acquire";
		case HA_LEAD:
			return "lead";
		case HA_FOLLOW:
			return "follow";
		case HA_PROMOTE:
			return "promote";
		case HA_STAND_ASIDE:
			return "stand aside";
		case HA_HANDOVER:
			return "hand over";
		case HA_DEMOTE:
			return "demote";
		case HA_REWIND:
			return "rewind";
	}
	return "unknown";
}

const MemberInfo *
ha_find_member(const ClusterView *view, const char *name)
{
	int			i;

	for (i = 0; i < view->nmembers; i++)
	{
		if (strcmp(view->members[i].name, name) == 0)
			return &view->members[i];
	}
	return NULL;
}

uint64_t
ha_local_position(const LocalState *local)
{
	if (!local->in_recovery)
		return local->write_lsn;
	return local->receive_lsn > local->replay_lsn ?
		local->receive_lsn : local->replay_lsn;
}

/*
 * Is member m ahead of us as a source of truth: a later timeline, or the
 * same timeline and more WAL?
 */
static bool
member_is_ahead(const MemberInfo *m, uint32_t timeline, uint64_t position)
{
	if (m->timeline != 0 && timeline != 0 && m->timeline != timeline)
		return m->timeline > timeline;
	return m->lsn > position;
}

/*
 * Would member m win an election against us?  Equal positions go to a
 * member that is already a primary (after a crash restart of the leader,
 * say), then by failover_priority (higher wins), then by name (lower wins),
 * so that every candidate reaches the same answer.
 */
static bool
member_beats_us(const MemberInfo *m, const LocalState *local,
				uint64_t position)
{
	if (m->nofailover)
		return false;
	if (member_is_ahead(m, local->timeline, position))
		return true;
	if (m->timeline != local->timeline && m->timeline != 0 && local->timeline != 0)
		return false;			/* it is on an older timeline */
	if (m->lsn < position)
		return false;
	/* a primary as advanced as we are needs no promotion: let it take the key */
	if (strcmp(m->role, "primary") == 0)
		return true;
	if (m->failover_priority != local->failover_priority)
		return m->failover_priority > local->failover_priority;
	return strcmp(m->name, local->name) < 0;
}

bool
ha_sync_lists(const SyncState *sync, const char *name)
{
	int			i;

	for (i = 0; i < sync->nstandbys; i++)
	{
		if (strcmp(sync->standbys[i], name) == 0)
			return true;
	}
	return false;
}

/*
 * May member `name` take over after a failure?  Without a "sync" key,
 * anyone (within maximum_lag); with one, only a standby it lists, or the
 * leader that wrote it (that server coming back as a primary has every
 * commit it acknowledged).
 */
static bool
sync_allows(const ClusterView *view, const char *name)
{
	if (!view->sync.present)
		return true;
	return ha_sync_lists(&view->sync, name) ||
		(view->sync.leader[0] != '\0' && strcmp(view->sync.leader, name) == 0);
}

/* "node2, node3" or "no standby", for reasons */
static void
sync_list_text(const SyncState *sync, char *buf, size_t len)
{
	int			i;
	size_t		used = 0;

	buf[0] = '\0';
	if (sync->nstandbys == 0)
	{
		snprintf(buf, len, "no standby");
		return;
	}
	for (i = 0; i < sync->nstandbys && used < len; i++)
		used += snprintf(buf + used, len - used, "%s\"%s\"", i > 0 ? ", " : "",
						 sync->standbys[i]);
}

/* Has member m spoken since the cluster lost its leader? */
static bool
member_spoke_since_leader_left(const MemberInfo *m, const LocalState *local)
{
	return m->mod_revision > local->leaderless_since_revision;
}


/*
 * Is the "failover" key a request the members should still act on?  It
 * must name a target that is still a member, and be fresh: seen for less
 * than request_timeout_ms, or the cluster leaderless for less than that
 * (a switchover's leader may have waited a while before handing over).
 * A stale request no longer holds back a normal election.
 */
static bool
request_is_live(const ClusterView *view, const LocalState *local)
{
	const FailoverRequest *r = &view->failover;

	if (!r->present || r->scheduled || r->member[0] == '\0')
		return false;
	if (ha_find_member(view, r->member) == NULL)
		return false;
	return local->request_age_ms < local->request_timeout_ms ||
		(!view->has_leader && local->leaderless_ms < local->request_timeout_ms);
}

/* a switchover names the leader it moves away from; a manual failover does not */
static const char *
request_kind(const FailoverRequest *r)
{
	return r->leader[0] != '\0' ? "switchover" : "failover";
}

/*
 * Can member m take over from us in a switchover?  It must be a replica
 * that may be promoted, is streaming, and is on our timeline.
 */
static bool
switchover_target_ok(const MemberInfo *m, const LocalState *local,
					 char *why, size_t whylen)
{
	if (strcmp(m->role, "replica") != 0)
	{
		snprintf(why, whylen, "member \"%s\" is not a replica (role \"%s\")", m->name, m->role);
		return false;
	}
	if (m->nofailover)
	{
		snprintf(why, whylen, "member \"%s\" has nofailover set", m->name);
		return false;
	}
	if (strcmp(m->replication_state, "streaming") != 0)
	{
		snprintf(why, whylen, "member \"%s\" is not streaming from the leader", m->name);
		return false;
	}
	if (m->timeline != 0 && local->timeline != 0 && m->timeline != local->timeline)
	{
		snprintf(why, whylen, "member \"%s\" is on timeline %u, the leader on %u",
				 m->name, m->timeline, local->timeline);
		return false;
	}
	return true;
}

/* Is a a better switchover target than b: more WAL, then priority, then name? */
bool
ha_better_switchover_target(const MemberInfo *a, const MemberInfo *b)
{
	if (a->lsn != b->lsn)
		return a->lsn > b->lsn;
	if (a->failover_priority != b->failover_priority)
		return a->failover_priority > b->failover_priority;
	return strcmp(a->name, b->name) < 0;
}

/* The best switchover target among the eligible members. */
static const MemberInfo *
best_switchover_target(const ClusterView *view, const LocalState *local)
{
	const MemberInfo *best = NULL;
	int			i;

	for (i = 0; i < view->nmembers; i++)
	{
		const MemberInfo *m = &view->members[i];
		char		why[AUTOHA_REASON_LEN];

		if (strcmp(m->name, local->name) == 0 ||
			!switchover_target_ok(m, local, why, sizeof(why)))
			continue;
		if (best == NULL || ha_better_switchover_target(m, best))
			best = m;
	}
	return best;
}

/*
 * We lead.  Keep leading, unless the "failover" key asks us to hand over:
 * then check the target, wait for it to be close enough (the handover
 * itself fences us and waits for it to have everything), and hand over.
 * A request that cannot be carried out is deleted, with the reason logged.
 */
static HaDecision
decide_leader(const ClusterView *view, const LocalState *local)
{
	const FailoverRequest *r = &view->failover;
	const MemberInfo *target;
	HaDecision	d = decision(HA_LEAD, local->name);
	char		why[AUTOHA_REASON_LEN];
	uint64_t	lag;

	set_reason(&d, "this server holds the leader key");
	if (!r->present)
		return d;

	d.clear_request = true;
	if (r->member[0] != '\0' && strcmp(r->member, local->name) == 0)
	{
		set_reason(&d, "this server holds the leader key; the %s to it is complete",
				   request_kind(r));
		return d;
	}
	if (r->scheduled)
	{
		set_reason(&d, "cancelled the switchover request: scheduled switchovers (scheduled_at) are not supported");
		return d;
	}
	if (r->leader[0] != '\0' && strcmp(r->leader, local->name) != 0)
	{
		set_reason(&d, "cancelled the switchover request: it names leader \"%s\", but \"%s\" leads",
				   r->leader, local->name);
		return d;
	}
	if (view->paused)
	{
		set_reason(&d, "cancelled the switchover request: the cluster is paused");
		return d;
	}
	if (r->member[0] != '\0')
	{
		target = ha_find_member(view, r->member);
		if (target == NULL)
		{
			set_reason(&d, "cancelled the switchover request: \"%s\" is not a member of the cluster",
					   r->member);
			return d;
		}
		if (!switchover_target_ok(target, local, why, sizeof(why)))
		{
			set_reason(&d, "cancelled the switchover request: %s", why);
			return d;
		}
	}
	else if ((target = best_switchover_target(view, local)) == NULL)
	{
		set_reason(&d, "cancelled the switchover request: no member can take over "
				   "(none is a streaming replica without nofailover)");
		return d;
	}

	lag = local->write_lsn > target->lsn ? local->write_lsn - target->lsn : 0;
	if (lag > local->maximum_lag)
	{
		if (local->request_age_ms < local->request_timeout_ms)
		{
			d.clear_request = false;
			set_reason(&d, "this server holds the leader key; the switchover to \"%s\" waits for it to catch up "
					   "(%" PRIu64 " bytes behind, autoha.maximum_lag_on_failover is %" PRIu64 ")",
					   target->name, lag, local->maximum_lag);
			return d;
		}
		set_reason(&d, "cancelled the switchover request: \"%s\" did not come within "
				   "autoha.maximum_lag_on_failover (%" PRIu64 " bytes) in %.0f s; it is %" PRIu64 " bytes behind",
				   target->name, local->maximum_lag,
				   local->request_timeout_ms / 1000.0, lag);
		return d;
	}

	if (local->request_age_ms < local->handover_delay_ms)
	{
		d.clear_request = false;
		set_reason(&d, "this server holds the leader key; the switchover to \"%s\" starts once "
				   "it has seen the request", target->name);
		return d;
	}

	if (local->checkpoint_pending)
	{
		d.clear_request = false;
		set_reason(&d, "this server holds the leader key; the switchover to \"%s\" starts once "
				   "the checkpoint started for it has completed", target->name);
		return d;
	}

	d = decision(HA_HANDOVER, target->name);
	set_reason(&d, "switchover requested: handing the leader key over to \"%s\"", target->name);
	return d;
}

/*
 * During a switchover to another replica, the other replicas stream from
 * the target already (cascading replication): when it promotes, their
 * stream goes on across the timeline switch, so the new leader has
 * standbys from its first moment instead of after each replica has
 * noticed the new leader and reconnected.  Only for a live request naming
 * the leader and a target that is a streaming replica on our timeline, and
 * not for the leader's synchronous standbys.
 */
static const MemberInfo *
switchover_target_to_follow(const ClusterView *view, const LocalState *local)
{
	const FailoverRequest *r = &view->failover;
	const MemberInfo *t;

	if (!request_is_live(view, local) || r->leader[0] == '\0' ||
		strcmp(r->leader, view->leader) != 0 ||
		strcmp(r->member, local->name) == 0 || strcmp(r->member, view->leader) == 0)
		return NULL;

	/*
	 * A synchronous standby of the leader stays: the leader's commits wait
	 * for it until the handover.  It finds the new leader right after.
	 */
	if (ha_sync_lists(&view->sync, local->name) &&
		strcmp(view->sync.leader, view->leader) == 0)
		return NULL;
	t = ha_find_member(view, r->member);
	if (t == NULL || strcmp(t->role, "replica") != 0 ||
		strcmp(t->replication_state, "streaming") != 0 ||
		(t->timeline != 0 && local->timeline != 0 && t->timeline != local->timeline))
		return NULL;
	return t;
}

/*
 * Has this replica's WAL gone past the point where the leader's timeline
 * forked off ours?  Then it can never follow: the startup process refuses
 * the new timeline, and only pg_rewind brings it back.  The fork point is
 * the "history" line of our timeline.  A replica already receiving the
 * leader's timeline, or streaming at all, has not diverged.
 */
static bool
replica_diverged(const ClusterView *view, const LocalState *local,
				 uint64_t *fork_lsn)
{
	const MemberInfo *leader = ha_find_member(view, view->leader);
	uint64_t	position = local->replay_lsn;
	int			i;

	if (leader == NULL || leader->timeline == 0 || local->timeline == 0 ||
		leader->timeline == local->timeline || local->streaming)
		return false;

	/*
	 * A timeline the leader has not reached was made by a promotion outside
	 * its history (by hand, or a split brain): nothing to follow there.
	 */
	if (local->timeline > leader->timeline)
	{
		*fork_lsn = 0;
		return true;
	}
	if (local->receive_timeline >= leader->timeline)
		return false;
	if (local->receive_timeline == local->timeline && local->receive_lsn > position)
		position = local->receive_lsn;
	for (i = view->nhistory - 1; i >= 0; i--)
	{
		if (view->history[i].timeline == local->timeline)
		{
			*fork_lsn = view->history[i].lsn;
			return position > view->history[i].lsn;
		}
	}
	return false;
}

static HaDecision
decide_primary_without_leader(const ClusterView *view, const LocalState *local)
{
	HaDecision	d;
	uint64_t	position = ha_local_position(local);
	int			i;

	if (request_is_live(view, local) && strcmp(view->failover.member, local->name) != 0)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "a %s to \"%s\" is in progress; not taking the leader key",
				   request_kind(&view->failover), view->failover.member);
		return d;
	}
	if (!request_is_live(view, local) && !sync_allows(view, local->name))
	{
		char		list[AUTOHA_REASON_LEN / 2];

		sync_list_text(&view->sync, list, sizeof(list));
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "the cluster has no leader, but this primary is not in the synchronous set "
				   "(the sync key lists %s): not taking the leader key", list);
		return d;
	}
	for (i = 0; i < view->nmembers; i++)
	{
		const MemberInfo *m = &view->members[i];

		if (strcmp(m->name, local->name) == 0)
			continue;
		if (member_is_ahead(m, local->timeline, position))
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "member \"%s\" is ahead of this primary "
					   "(timeline %u, position %" PRIu64 " > timeline %u, position %" PRIu64 "); "
					   "not taking the leader key",
					   m->name, m->timeline, m->lsn, local->timeline, position);
			return d;
		}
	}
	if (view->has_leader_optime && view->leader_timeline > local->timeline)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "the last leader was on timeline %u, after this primary's timeline %u; "
				   "not taking the leader key",
				   view->leader_timeline, local->timeline);
		return d;
	}
	if (view->has_leader_optime && view->leader_optime > position &&
		(view->leader_timeline == 0 || view->leader_timeline == local->timeline))
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "the last leader wrote up to %" PRIu64 ", after this primary's position %" PRIu64 "; "
				   "not taking the leader key",
				   view->leader_optime, position);
		return d;
	}
	d = decision(HA_ACQUIRE, NULL);
	set_reason(&d, "the cluster has no leader and this server is a primary "
			   "no member is ahead of");
	return d;
}

static HaDecision
decide_election(const ClusterView *view, const LocalState *local)
{
	HaDecision	d;
	uint64_t	position = ha_local_position(local);
	uint64_t	leader_position = local->last_leader_lsn;
	bool		waited_for_members = local->leaderless_ms >= local->member_wait_ms;
	bool		requested = false;
	int			i;

	/*
	 * A switchover or manual failover names the one member that may take
	 * over; the others wait until it has, or the request went stale.
	 */
	if (request_is_live(view, local))
	{
		if (strcmp(view->failover.member, local->name) != 0)
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "no leader; a %s to \"%s\" is in progress",
					   request_kind(&view->failover), view->failover.member);
			return d;
		}
		requested = true;
	}
	else if (view->paused)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but the cluster is paused: no automatic failover "
				   "(autoha_resume() ends the pause, autoha_failover() promotes a named member)");
		return d;
	}

	if (local->nofailover)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but autoha.nofailover is on: this server never promotes itself");
		return d;
	}
	if (!local->streaming && local->replay_lsn < local->receive_lsn)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but this replica has not replayed all the WAL it received "
				   "(replayed %" PRIu64 " of %" PRIu64 ")",
				   local->replay_lsn, local->receive_lsn);
		return d;
	}
	if (local->streaming && view->leader_shutdown &&
		local->leaderless_ms < local->stream_wait_ms)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader; the old leader is shutting down and still streaming "
				   "to this replica, waiting for its stream to end");
		return d;
	}

	if (view->has_leader_optime && view->leader_timeline > local->timeline)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but the last leader was on timeline %u and this replica "
				   "is still on timeline %u",
				   view->leader_timeline, local->timeline);
		return d;
	}

	if (requested && view->failover.leader[0] == '\0')
	{
		/* a manual failover: the DBA accepted whatever this replica lacks */
		d = decision(HA_PROMOTE, local->name);
		set_reason(&d, "no leader and a manual failover names this replica "
				   "(timeline %u, position %" PRIu64 ")", local->timeline, position);
		return d;
	}
	if (requested)
	{
		/*
		 * A switchover: the old leader published its final position in
		 * "status" when it handed over; take over only with all of it, so
		 * that no acknowledged write is lost.
		 */
		if (view->has_leader_optime && view->leader_optime > position &&
			(view->leader_timeline == 0 || view->leader_timeline == local->timeline))
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "no leader; the switchover to this replica waits for the old leader's "
					   "last WAL (received %" PRIu64 " of %" PRIu64 ")",
					   position, view->leader_optime);
			return d;
		}
		d = decision(HA_PROMOTE, local->name);
		set_reason(&d, "no leader and a switchover names this replica "
				   "(timeline %u, position %" PRIu64 ")", local->timeline, position);
		return d;
	}

	/*
	 * In synchronous mode only a standby the last leader listed in "sync"
	 * is known to hold every commit it acknowledged: nobody else may take
	 * over.  For such a standby the lag check below does not apply (what it
	 * lacks was never acknowledged), and only the other members the key
	 * allows compete with it.
	 */
	if (!sync_allows(view, local->name))
	{
		char		list[AUTOHA_REASON_LEN / 2];

		sync_list_text(&view->sync, list, sizeof(list));
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but this replica is not in the synchronous set (the sync key of "
				   "\"%s\" lists %s): it may lack acknowledged writes, so it is not promoted "
				   "(autoha_failover() would, accepting that loss)",
				   view->sync.leader, list);
		return d;
	}

	/*
	 * What the last leader had written is at least what it last published,
	 * and at least what any member (dead or alive) says it has.
	 */
	if (view->has_leader_optime && view->leader_optime > leader_position &&
		(view->leader_timeline == 0 || view->leader_timeline == local->timeline))
		leader_position = view->leader_optime;
	for (i = 0; i < view->nmembers; i++)
	{
		const MemberInfo *m = &view->members[i];

		if (strcmp(m->name, local->name) != 0 && m->lsn > leader_position &&
			(m->timeline == 0 || m->timeline == local->timeline))
			leader_position = m->lsn;
	}
	if (!view->sync.present && leader_position > position &&
		leader_position - position > local->maximum_lag)
	{
		d = decision(HA_WAIT, NULL);
		set_reason(&d, "no leader, but this replica lags the last known leader position by "
				   "%" PRIu64 " bytes, more than autoha.maximum_lag_on_failover (%" PRIu64 ")",
				   leader_position - position, local->maximum_lag);
		return d;
	}

	for (i = 0; i < view->nmembers; i++)
	{
		const MemberInfo *m = &view->members[i];

		if (strcmp(m->name, local->name) == 0 || !sync_allows(view, m->name))
			continue;
		if (!member_spoke_since_leader_left(m, local))
		{
			if (waited_for_members)
				continue;		/* silent since the leader left: dead */
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "no leader; waiting for member \"%s\" to publish its position",
					   m->name);
			return d;
		}
		if (member_beats_us(m, local, position))
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "no leader; member \"%s\" is a better candidate "
					   "(timeline %u, position %" PRIu64 ", priority %d)",
					   m->name, m->timeline, m->lsn, m->failover_priority);
			return d;
		}
	}

	d = decision(HA_PROMOTE, local->name);
	set_reason(&d, "no leader and this replica is the best candidate "
			   "(timeline %u, position %" PRIu64 ")", local->timeline, position);
	return d;
}

HaDecision
ha_decide(const ClusterView *view, const LocalState *local)
{
	HaDecision	d;

	/* 1. one system */
	if (!view->has_initialize)
	{
		if (view->has_leader && strcmp(view->leader, local->name) != 0)
		{
			d = decision(HA_WAIT, view->leader);
			set_reason(&d, "the cluster's initialize key is missing; waiting for leader \"%s\" to restore it",
					   view->leader);
			return d;
		}
		if (local->in_recovery)
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "the cluster is not initialized yet; waiting for its primary");
			return d;
		}
		d = decision(HA_INITIALIZE, NULL);
		set_reason(&d, "new cluster: recording system identifier %s and taking the leader key",
				   local->sysid);
		return d;
	}
	if (strcmp(view->initialize, local->sysid) != 0)
	{
		d = decision(HA_REFUSE, NULL);
		set_reason(&d, "this server's system identifier %s differs from the cluster's %s",
				   local->sysid, view->initialize);
		return d;
	}

	/* 2. we lead */
	if (view->has_leader && strcmp(view->leader, local->name) == 0)
	{
		if (!local->is_leader)
		{
			d = decision(HA_WAIT, NULL);
			set_reason(&d, "the leader key names this server but hangs on a lease this worker "
					   "does not hold (an earlier start of this server, or another server "
					   "with the same autoha.node_name); waiting for it to expire");
			return d;
		}
		if (local->in_recovery)
		{
			d = decision(HA_PROMOTE, local->name);
			set_reason(&d, "this server holds the leader key and is still in recovery: promoting");
			return d;
		}
		return decide_leader(view, local);
	}

	/* 3. someone else leads */
	if (view->has_leader)
	{
		uint64_t	fork_lsn = 0;

		if (!local->in_recovery)
		{
			if (view->paused || ha_find_member(view, view->leader) == NULL)
			{
				d = decision(HA_STAND_ASIDE, view->leader);
				set_reason(&d, "member \"%s\" holds the leader key but this server is a primary; "
						   "%s", view->leader,
						   view->paused ? "the cluster is paused, so it stays fenced instead of rejoining" :
						   "waiting for the leader to publish its address to rejoin as its replica");
				return d;
			}
			d = decision(HA_DEMOTE, view->leader);
			set_reason(&d, "member \"%s\" holds the leader key but this server is a primary: "
					   "rejoining as its replica", view->leader);
			return d;
		}
		if (ha_find_member(view, view->leader) == NULL)
		{
			d = decision(HA_WAIT, view->leader);
			set_reason(&d, "leader \"%s\" has not published its address yet", view->leader);
			return d;
		}
		if (replica_diverged(view, local, &fork_lsn))
		{
			char		how[160];

			if (fork_lsn == 0)
				snprintf(how, sizeof(how), "this server is on timeline %u, which leader \"%s\" (timeline %u) never had",
						 local->timeline, view->leader, ha_find_member(view, view->leader)->timeline);
			else
				snprintf(how, sizeof(how), "this server's WAL went past %X/%X, where leader \"%s\"'s timeline forked off timeline %u",
						 (unsigned) (fork_lsn >> 32), (unsigned) fork_lsn, view->leader, local->timeline);
			if (view->paused || !local->use_pg_rewind)
			{
				d = decision(HA_WAIT, view->leader);
				set_reason(&d, "%s; it cannot follow without pg_rewind, and %s", how,
						   view->paused ? "the cluster is paused" :
						   "autoha.use_pg_rewind is off: stop this server and run pg_autoha_rejoin");
				return d;
			}
			d = decision(HA_REWIND, view->leader);
			set_reason(&d, "%s: it must be rewound (pg_rewind) before it can follow", how);
			return d;
		}
		if (switchover_target_to_follow(view, local) != NULL)
		{
			d = decision(HA_FOLLOW, view->failover.member);
			set_reason(&d, "following \"%s\", the target of the switchover from leader \"%s\", "
					   "so as to stream from it the moment it leads",
					   view->failover.member, view->leader);
			return d;
		}
		d = decision(HA_FOLLOW, view->leader);
		set_reason(&d, "following leader \"%s\"", view->leader);
		return d;
	}

	/* 4. nobody leads */
	if (!local->in_recovery)
		return decide_primary_without_leader(view, local);
	return decide_election(view, local);
}
