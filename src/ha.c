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
 *	   and taking it over would be wrong in the second case.
 *	3. If another member leads, a replica follows it and a primary stands
 *	   aside (the write fence and the rejoin are the caller's business).
 *	4. With no leader, nobody may take over who is behind what the last
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

/* Has member m spoken since the cluster lost its leader? */
static bool
member_spoke_since_leader_left(const MemberInfo *m, const LocalState *local)
{
	return m->mod_revision > local->leaderless_since_revision;
}

static HaDecision
decide_primary_without_leader(const ClusterView *view, const LocalState *local)
{
	HaDecision	d;
	uint64_t	position = ha_local_position(local);
	int			i;

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
	int			i;

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
	if (leader_position > position &&
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

		if (strcmp(m->name, local->name) == 0)
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
		d = decision(HA_LEAD, local->name);
		set_reason(&d, "this server holds the leader key");
		return d;
	}

	/* 3. someone else leads */
	if (view->has_leader)
	{
		if (!local->in_recovery)
		{
			d = decision(HA_STAND_ASIDE, view->leader);
			set_reason(&d, "member \"%s\" holds the leader key but this server is a primary",
					   view->leader);
			return d;
		}
		if (ha_find_member(view, view->leader) == NULL)
		{
			d = decision(HA_WAIT, view->leader);
			set_reason(&d, "leader \"%s\" has not published its address yet", view->leader);
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
