/*-------------------------------------------------------------------------
 *
 * syncset.c
 *	  The leader's synchronous set, planned as a pure function.
 *
 * Two things describe the synchronous set, and they must change in the
 * right order (invariant 4: only a standby that holds every acknowledged
 * commit may be promoted):
 *
 *	- synchronous_standby_names decides which standbys a commit waits for;
 *	- the "sync" key lists the standbys that may be promoted after a
 *	  failure: those known to hold every commit the leader acknowledged.
 *
 * So a standby leaves the key before it leaves synchronous_standby_names,
 * and joins the key only after it joined synchronous_standby_names, the
 * new setting reached every process that decides about commits (the
 * checkpointer, which tells backends whether to wait at all, and every
 * WAL sender, which releases them: a sender still on the old setting may
 * release a commit without the new standby), and the standby flushed
 * everything the leader had flushed at that moment (ready_lsn).  From then
 * on every commit waits for it, so it holds all of them.
 *
 * The standbys named are the first synchronous_node_count of the healthy
 * ones: members of the cluster in etcd (alive) with a WAL sender here that
 * streams.  Those already named come first (no needless swap), then
 * members without nofailover, then the most WAL flushed, then the name.
 * With none healthy, "on" goes asynchronous (after emptying the key) and
 * "strict" keeps waiting: for the standbys it named, which stay in the
 * key (every commit still waits for them), or, if it named none, for any
 * standby ("*").
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncset.h"

const char *
sync_mode_name(SyncMode mode)
{
	switch (mode)
	{
		case SYNC_MODE_OFF:
			return "off";
		case SYNC_MODE_ON:
			return "on";
		case SYNC_MODE_STRICT:
			return "strict";
	}
	return "unknown";
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void
sync_names_value(const char *const *names, int n, char *buf, size_t len)
{
	const char *sorted[AUTOHA_MAX_MEMBERS];
	size_t		used;
	int			i;

	buf[0] = '\0';
	if (n <= 0)
		return;
	if (n > AUTOHA_MAX_MEMBERS)
		n = AUTOHA_MAX_MEMBERS;
	if (n == 1)
	{
		snprintf(buf, len, "\"%s\"", names[0]);
		return;
	}
	for (i = 0; i < n; i++)
		sorted[i] = names[i];
	qsort(sorted, (size_t) n, sizeof(char *), cmp_names);
	used = (size_t) snprintf(buf, len, "ANY %d (", n);
	for (i = 0; i < n && used < len; i++)
		used += (size_t) snprintf(buf + used, len - used, "%s\"%s\"",
								  i > 0 ? "," : "", sorted[i]);
	if (used < len)
		snprintf(buf + used, len - used, ")");
}

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* a double-quoted name at *p; advances *p past it */
static bool
parse_quoted(const char **p, char *out)
{
	const char *s = *p;
	const char *end;

	if (*s != '"')
		return false;
	end = strchr(s + 1, '"');
	if (end == NULL || end == s + 1 || end - s - 1 >= AUTOHA_NAME_LEN)
		return false;
	memcpy(out, s + 1, end - s - 1);
	out[end - s - 1] = '\0';
	*p = end + 1;
	return true;
}

int
sync_names_parse(const char *value, char out[][AUTOHA_NAME_LEN], int max,
				 bool *any)
{
	const char *p = skip_spaces(value ? value : "");
	int			k;
	int			n = 0;
	char	   *end;

	*any = false;
	if (*p == '\0')
		return 0;
	if (p[0] == '*' && *skip_spaces(p + 1) == '\0')
	{
		*any = true;
		return 0;
	}
	if (*p == '"')
	{
		if (max < 1 || !parse_quoted(&p, out[0]) || *skip_spaces(p) != '\0')
			return -1;
		return 1;
	}
	if (strncmp(p, "ANY ", 4) != 0)
		return -1;
	k = (int) strtol(p + 4, &end, 10);
	if (end == p + 4 || k < 2)
		return -1;
	p = skip_spaces(end);
	if (*p != '(')
		return -1;
	p = skip_spaces(p + 1);
	for (;;)
	{
		if (n >= max || !parse_quoted(&p, out[n]))
			return -1;
		n++;
		p = skip_spaces(p);
		if (*p == ',')
		{
			p = skip_spaces(p + 1);
			continue;
		}
		if (*p != ')' || *skip_spaces(p + 1) != '\0')
			return -1;
		break;
	}
	/* ours always names exactly as many as must answer */
	return n == k ? n : -1;
}

static bool
in_list(const char *const *list, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (strcmp(list[i], name) == 0)
			return true;
	}
	return false;
}

static bool
same_set(const char *const *a, int na, const char *const *b, int nb)
{
	int			i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
	{
		if (!in_list(b, nb, a[i]))
			return false;
	}
	return true;
}

static const WalSenderInfo *
find_sender(const SyncInput *in, const char *name)
{
	const WalSenderInfo *best = NULL;
	int			i;

	for (i = 0; i < in->nsenders; i++)
	{
		const WalSenderInfo *s = &in->senders[i];

		if (strcmp(s->name, name) != 0 || !s->streaming)
			continue;
		if (best == NULL || s->flush_lsn > best->flush_lsn)
			best = s;
	}
	return best;
}

typedef struct Candidate
{
	const char *name;
	bool		named;			/* in the key or in the setting already */
	bool		nofailover;
	uint64_t	flush_lsn;
} Candidate;

static bool
candidate_before(const Candidate *a, const Candidate *b)
{
	if (a->named != b->named)
		return a->named;
	if (a->nofailover != b->nofailover)
		return !a->nofailover;
	if (a->flush_lsn != b->flush_lsn)
		return a->flush_lsn > b->flush_lsn;
	return strcmp(a->name, b->name) < 0;
}

/* "a", "b" or "none", for the log */
static void
list_text(const char *const *names, int n, char *buf, size_t len)
{
	size_t		used = 0;
	int			i;

	if (n == 0)
	{
		snprintf(buf, len, "none");
		return;
	}
	buf[0] = '\0';
	for (i = 0; i < n && used < len; i++)
		used += (size_t) snprintf(buf + used, len - used, "%s\"%s\"",
								  i > 0 ? ", " : "", names[i]);
}

/* the key as it was, for the log */
static void
key_text(const SyncState *sync, bool key_ours, const char *const *key, int nkey,
		 char *buf, size_t len)
{
	if (!sync->present)
		snprintf(buf, len, "absent");
	else if (!key_ours)
		snprintf(buf, len, "another leader's (\"%s\")",
				 sync->malformed ? "unreadable" : sync->leader);
	else
		list_text(key, nkey, buf, len);
}

static void
set_key(SyncPlan *plan, const char *const *names, int n)
{
	int			i;

	plan->write_key = true;
	plan->nkey = n;
	for (i = 0; i < n; i++)
		snprintf(plan->key[i], AUTOHA_NAME_LEN, "%s", names[i]);
}

void
sync_plan(const SyncInput *in, SyncPlan *plan)
{
	const SyncState *sync = &in->view->sync;
	const char *in_effect = in->names_in_effect ? in->names_in_effect : "";
	bool		key_ours;
	const char *key[AUTOHA_MAX_MEMBERS];
	int			nkey = 0;
	char		named_buf[AUTOHA_MAX_MEMBERS][AUTOHA_NAME_LEN];
	const char *named[AUTOHA_MAX_MEMBERS];
	int			nnamed;
	bool		named_any;
	Candidate	cand[AUTOHA_MAX_MEMBERS];
	int			ncand = 0;
	const char *picked[AUTOHA_MAX_MEMBERS];
	int			npicked = 0;
	int			want;
	const char *keep[AUTOHA_MAX_MEMBERS];
	int			nkeep = 0;
	char		desired[SYNC_NAMES_LEN];
	char		before[AUTOHA_REASON_LEN / 3];
	char		after[AUTOHA_REASON_LEN / 3];
	bool		settled;
	int			i;
	int			j;

	memset(plan, 0, sizeof(*plan));

	if (in->mode == SYNC_MODE_OFF)
	{
		/* only undo what synchronous mode did: the key says it ran */
		if (sync->present)
		{
			plan->delete_key = true;
			plan->reset_names = true;
			snprintf(plan->reason, sizeof(plan->reason),
					 "autoha.synchronous_mode is off: deleting the sync key, then giving "
					 "synchronous_standby_names back to the configuration files");
		}
		return;
	}

	key_ours = sync->present && !sync->malformed && strcmp(sync->leader, in->self) == 0;
	if (key_ours)
	{
		for (i = 0; i < sync->nstandbys; i++)
			key[nkey++] = sync->standbys[i];
	}
	nnamed = sync_names_parse(in_effect, named_buf, AUTOHA_MAX_MEMBERS, &named_any);
	if (nnamed < 0)
		nnamed = 0;				/* set by hand: names nobody we count on */
	for (i = 0; i < nnamed; i++)
		named[i] = named_buf[i];

	/* the healthy standbys, best first */
	for (i = 0; i < in->view->nmembers; i++)
	{
		const MemberInfo *m = &in->view->members[i];
		const WalSenderInfo *s;
		Candidate	c;

		if (strcmp(m->name, in->self) == 0 || strchr(m->name, '"') != NULL ||
			(s = find_sender(in, m->name)) == NULL)
			continue;
		c.name = m->name;
		c.named = in_list(key, nkey, m->name) || in_list(named, nnamed, m->name);
		c.nofailover = m->nofailover;
		c.flush_lsn = s->flush_lsn;
		for (j = ncand; j > 0 && candidate_before(&c, &cand[j - 1]); j--)
			cand[j] = cand[j - 1];
		cand[j] = c;
		ncand++;
	}
	want = in->node_count < 1 ? 1 : in->node_count;
	for (i = 0; i < ncand && npicked < want; i++)
		picked[npicked++] = cand[i].name;

	/* strict: keep waiting for the standbys named, rather than for fewer */
	if (in->mode == SYNC_MODE_STRICT)
	{
		for (i = 0; i < nnamed && npicked < want; i++)
		{
			if (!in_list(picked, npicked, named[i]))
				picked[npicked++] = named[i];
		}
	}

	if (npicked > 0)
		sync_names_value(picked, npicked, desired, sizeof(desired));
	else
		snprintf(desired, sizeof(desired), "%s",
				 in->mode == SYNC_MODE_STRICT ? "*" : "");

	/* who stays in the key: still picked, and still named all along */
	for (i = 0; i < nkey; i++)
	{
		if (in_list(picked, npicked, key[i]) && in_list(named, nnamed, key[i]))
			keep[nkeep++] = key[i];
	}

	if (strcmp(desired, in_effect) != 0)
	{
		/* 1. drop from the key whoever the new setting leaves out; 2. set it */
		if (!key_ours || nkeep != nkey)
		{
			set_key(plan, keep, nkeep);
			key_text(sync, key_ours, key, nkey, before, sizeof(before));
			list_text(keep, nkeep, after, sizeof(after));
		}
		plan->set_names = true;
		snprintf(plan->names, sizeof(plan->names), "%s", desired);
		plan->npending = npicked - nkeep;
		if (plan->write_key)
			snprintf(plan->reason, sizeof(plan->reason),
					 "synchronous standbys: the sync key goes from %s to %s, then "
					 "synchronous_standby_names from '%s' to '%s'",
					 before, after, in_effect, desired);
		else
			snprintf(plan->reason, sizeof(plan->reason),
					 "synchronous standbys: synchronous_standby_names goes from '%s' to '%s'",
					 in_effect, desired);
		return;
	}

	/*
	 * The setting is the one we want.  Is it in effect everywhere?  The
	 * caller vouches for the checkpointer and the time; a WAL sender that
	 * can release commits (priority > 0) must be one the setting names,
	 * and one the setting names that streams must have its priority.
	 */
	settled = in->propagated;
	for (i = 0; i < in->nsenders && settled; i++)
	{
		const WalSenderInfo *s = &in->senders[i];
		bool		listed = named_any || in_list(picked, npicked, s->name);

		if ((s->priority > 0 && !listed) || (s->streaming && listed && s->priority == 0))
			settled = false;
	}
	if (settled && in->ready_lsn == 0)
		plan->measure = true;

	/* 3. add those that have everything */
	for (i = 0; i < npicked; i++)
	{
		const WalSenderInfo *s;

		if (in_list(keep, nkeep, picked[i]))
			continue;
		s = find_sender(in, picked[i]);
		if (settled && in->ready_lsn != 0 && s != NULL && s->flush_lsn >= in->ready_lsn)
			keep[nkeep++] = picked[i];
		else
			plan->npending++;
	}
	if (!key_ours || !same_set(keep, nkeep, key, nkey))
	{
		set_key(plan, keep, nkeep);
		key_text(sync, key_ours, key, nkey, before, sizeof(before));
		list_text(keep, nkeep, after, sizeof(after));
		snprintf(plan->reason, sizeof(plan->reason),
				 "synchronous standbys: the sync key goes from %s to %s "
				 "(synchronous_standby_names is '%s')",
				 before, after, in_effect);
	}
}
