/*-------------------------------------------------------------------------
 *
 * test_syncset.c
 *	  Table-driven unit test of the synchronous-set plan sync_plan() in
 *	  src/syncset.c, plus sync_names_value() and sync_names_parse().  TAP
 *	  output; no server, no network.
 *
 * A row gives the mode and synchronous_node_count, the "sync" key, the
 * members in etcd, the leader's WAL senders, the synchronous_standby_names
 * in effect, whether the caller found it propagated, and ready_lsn; then
 * what the plan must do: the key it writes ("a,b" sorted, "" for none,
 * NULL for no write), whether it deletes it, the setting it sets (NULL: no
 * change), whether it resets it, whether it measures, and how many named
 * standbys are still pending.
 *
 * The leader is always "pg1".  Senders: S(name, flush, priority) streams,
 * SC(name, flush, priority) does not (catchup, startup).
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncset.h"
#include "unit.h"

#define LSN			((uint64_t) 0x5000000)
#define READY		(LSN - 1000)	/* ready_lsn measured earlier */

typedef struct SenderSpec
{
	const char *name;			/* NULL ends the list */
	uint64_t	flush;
	int			priority;
	bool		not_streaming;
} SenderSpec;

typedef struct MemberSpec
{
	const char *name;			/* NULL ends the list */
	bool		nofailover;
} MemberSpec;

typedef struct SyncCase
{
	const char *name;
	SyncMode	mode;
	int			node_count;
	const char *key_leader;		/* NULL: no sync key; "?" unreadable */
	const char *key_standbys;	/* "a,b" */
	MemberSpec	members[6];
	SenderSpec	senders[6];
	const char *in_effect;
	bool		propagated;
	uint64_t	ready_lsn;
	/* expected */
	bool		delete_key;
	const char *write_key;		/* NULL: no write */
	const char *set_names;		/* NULL: no change */
	bool		reset_names;
	bool		measure;
	int			npending;
} SyncCase;

#define S(n, f, p)		{(n), (f), (p), false}
#define SC(n, f, p)		{(n), (f), (p), true}
#define MEM(n)			{(n), false}
#define MEMNF(n)		{(n), true}
#define THREE			{MEM("pg1"), MEM("pg2"), MEM("pg3")}
#define TWO				{MEM("pg1"), MEM("pg2")}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const SyncCase cases[] = {
	/* off */
	{"off, no key: nothing to do", SYNC_MODE_OFF, 1, NULL, NULL, THREE,
	{S("pg2", LSN, 0)}, "", true, 0,
	false, NULL, NULL, false, false, 0},
	{"off, a key (synchronous mode ran): delete it, then reset the setting", SYNC_MODE_OFF, 1,
		"pg1", "pg2", THREE, {S("pg2", LSN, 1)}, "\"pg2\"", true, READY,
	true, NULL, NULL, true, false, 0},
	{"off, a hand-set setting without a key: left alone", SYNC_MODE_OFF, 1, NULL, NULL, THREE,
	{S("pg2", LSN, 1)}, "ANY 1 (*)", true, 0,
	false, NULL, NULL, false, false, 0},

	/* on: starting */
	{"on, new leader, no key, no standby: key with none, setting stays empty", SYNC_MODE_ON, 1,
		NULL, NULL, {MEM("pg1")}, {{NULL}}, "", true, 0,
	false, "", NULL, false, true, 0},
	{"on, no key, a streaming standby: key with none first, then name it", SYNC_MODE_ON, 1,
		NULL, NULL, TWO, {S("pg2", LSN, 0)}, "", true, 0,
	false, "", "\"pg2\"", false, false, 1},
	{"on, named, not yet propagated: wait", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg2", LSN, 1)}, "\"pg2\"", false, 0,
	false, NULL, NULL, false, false, 1},
	{"on, named, propagated, not measured: measure", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg2", LSN, 1)}, "\"pg2\"", true, 0,
	false, NULL, NULL, false, true, 1},
	{"on, named, a sender still on the old priority: not settled", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg2", LSN, 0)}, "\"pg2\"", true, 0,
	false, NULL, NULL, false, false, 1},
	{"on, measured, standby flushed past it: into the key", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg2", READY, 1)}, "\"pg2\"", true, READY,
	false, "pg2", NULL, false, false, 0},
	{"on, measured, standby behind it: not yet", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg2", READY - 1, 1)}, "\"pg2\"", true, READY,
	false, NULL, NULL, false, false, 1},
	{"on, steady: nothing to do", SYNC_MODE_ON, 1, "pg1", "pg2", TWO,
	{S("pg2", LSN, 1)}, "\"pg2\"", true, READY,
	false, NULL, NULL, false, false, 0},
	{"on, steady with an async standby too: no swap", SYNC_MODE_ON, 1, "pg1", "pg2", THREE,
	{S("pg2", LSN - 500, 1), S("pg3", LSN, 0)}, "\"pg2\"", true, READY,
	false, NULL, NULL, false, false, 0},

	/* on: the standby goes away */
	{"on, the only standby gone: key emptied first, then asynchronous", SYNC_MODE_ON, 1,
		"pg1", "pg2", TWO, {{NULL}}, "\"pg2\"", true, READY,
	false, "", "", false, false, 0},
	{"on, the standby's member key expired (frozen): treated as gone", SYNC_MODE_ON, 1,
		"pg1", "pg2", {MEM("pg1")}, {S("pg2", LSN, 1)}, "\"pg2\"", true, READY,
	false, "", "", false, false, 0},
	{"on, the standby stopped streaming: replaced by the other one", SYNC_MODE_ON, 1,
		"pg1", "pg2", THREE, {SC("pg2", LSN - 9000, 1), S("pg3", LSN, 0)}, "\"pg2\"", true, READY,
	false, "", "\"pg3\"", false, false, 1},
	{"on, after the swap: the old standby, still priority 1, is stale", SYNC_MODE_ON, 1,
		"pg1", NULL, THREE, {SC("pg2", LSN - 9000, 1), S("pg3", LSN, 1)}, "\"pg3\"", true, 0,
	false, NULL, NULL, false, false, 1},
	{"on, after the swap, settled: measure", SYNC_MODE_ON, 1,
		"pg1", NULL, THREE, {SC("pg2", LSN - 9000, 0), S("pg3", LSN, 1)}, "\"pg3\"", true, 0,
	false, NULL, NULL, false, true, 1},
	{"on, asynchronous, a standby returns: named again (not yet in the key)", SYNC_MODE_ON, 1,
		"pg1", NULL, TWO, {S("pg2", LSN - 100, 0)}, "", true, 0,
	false, NULL, "\"pg2\"", false, false, 1},

	/* preference order */
	{"on, two candidates: the most advanced", SYNC_MODE_ON, 1, "pg1", NULL, THREE,
	{S("pg2", LSN - 10, 0), S("pg3", LSN, 0)}, "", true, 0,
	false, NULL, "\"pg3\"", false, false, 1},
	{"on, two candidates at the same position: by name", SYNC_MODE_ON, 1, "pg1", NULL, THREE,
	{S("pg3", LSN, 0), S("pg2", LSN, 0)}, "", true, 0,
	false, NULL, "\"pg2\"", false, false, 1},
	{"on, nofailover is the last choice", SYNC_MODE_ON, 1, "pg1", NULL,
		{MEM("pg1"), MEMNF("pg2"), MEM("pg3")},
	{S("pg2", LSN, 0), S("pg3", LSN - 10, 0)}, "", true, 0,
	false, NULL, "\"pg3\"", false, false, 1},
	{"on, a nofailover standby rather than none", SYNC_MODE_ON, 1, "pg1", NULL,
		{MEM("pg1"), MEMNF("pg2")}, {S("pg2", LSN, 0)}, "", true, 0,
	false, NULL, "\"pg2\"", false, false, 1},
	{"on, a sender that is no member is never named", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{S("pg_receivewal", LSN, 0)}, "", true, 0,
	false, NULL, NULL, false, true, 0},
	{"on, a catching-up sender is not a candidate", SYNC_MODE_ON, 1, "pg1", NULL, TWO,
	{SC("pg2", LSN - 100, 0)}, "", true, 0,
	false, NULL, NULL, false, true, 0},

	/* node_count 2 */
	{"on, node_count 2: ANY 2 of both", SYNC_MODE_ON, 2, "pg1", "pg2", THREE,
	{S("pg2", LSN, 1), S("pg3", LSN, 0)}, "\"pg2\"", true, READY,
	false, NULL, "ANY 2 (\"pg2\",\"pg3\")", false, false, 1},
	{"on, node_count 2, settled: the new one joins, the old one stays", SYNC_MODE_ON, 2,
		"pg1", "pg2", THREE, {S("pg2", LSN, 1), S("pg3", READY, 1)}, "ANY 2 (\"pg2\",\"pg3\")", true, READY,
	false, "pg2,pg3", NULL, false, false, 0},
	{"on, node_count 2, one of two gone: key first, then the other alone", SYNC_MODE_ON, 2,
		"pg1", "pg2,pg3", THREE, {S("pg2", LSN, 1)}, "ANY 2 (\"pg2\",\"pg3\")", true, READY,
	false, "pg2", "\"pg2\"", false, false, 0},
	{"on, node_count 3 with two standbys: both", SYNC_MODE_ON, 3, "pg1", NULL, THREE,
	{S("pg2", LSN, 0), S("pg3", LSN, 0)}, "", true, 0,
	false, NULL, "ANY 2 (\"pg2\",\"pg3\")", false, false, 2},
	{"on, back to node_count 1: keep the named one in the key", SYNC_MODE_ON, 1,
		"pg1", "pg2,pg3", THREE, {S("pg2", LSN, 1), S("pg3", LSN - 5, 1)}, "ANY 2 (\"pg2\",\"pg3\")", true, READY,
	false, "pg2", "\"pg2\"", false, false, 0},

	/* strict */
	{"strict, the only standby gone: it stays named and in the key", SYNC_MODE_STRICT, 1,
		"pg1", "pg2", TWO, {{NULL}}, "\"pg2\"", true, READY,
	false, NULL, NULL, false, false, 0},
	{"strict, even once its member key expired", SYNC_MODE_STRICT, 1,
		"pg1", "pg2", {MEM("pg1")}, {{NULL}}, "\"pg2\"", true, READY,
	false, NULL, NULL, false, false, 0},
	{"strict, never had a standby: wait for any", SYNC_MODE_STRICT, 1,
		NULL, NULL, {MEM("pg1")}, {{NULL}}, "", true, 0,
	false, "", "*", false, false, 0},
	{"strict, '*' in effect, nobody: nothing more", SYNC_MODE_STRICT, 1,
		"pg1", NULL, {MEM("pg1")}, {{NULL}}, "*", true, 0,
	false, NULL, NULL, false, true, 0},
	{"strict, '*' in effect, a standby arrives: name it", SYNC_MODE_STRICT, 1,
		"pg1", NULL, TWO, {S("pg2", LSN, 1)}, "*", true, READY,
	false, NULL, "\"pg2\"", false, false, 1},
	{"strict, node_count 2, one gone: still waits for both", SYNC_MODE_STRICT, 2,
		"pg1", "pg2,pg3", THREE, {S("pg2", LSN, 1)}, "ANY 2 (\"pg2\",\"pg3\")", true, READY,
	false, NULL, NULL, false, false, 0},
	{"strict, the named standby gone, another streams: swap (key first)", SYNC_MODE_STRICT, 1,
		"pg1", "pg2", THREE, {S("pg3", LSN, 0)}, "\"pg2\"", true, READY,
	false, "", "\"pg3\"", false, false, 1},

	/* keys and settings not ours */
	{"another leader's key: rewritten with ours (its standbys are not trusted)", SYNC_MODE_ON, 1,
		"pg9", "pg2", TWO, {S("pg2", LSN, 1)}, "\"pg2\"", true, 0,
	false, "", NULL, false, true, 1},
	{"another leader's key, our standby measured ready: rewritten listing it", SYNC_MODE_ON, 1,
		"pg9", "pg2", TWO, {S("pg2", LSN, 1)}, "\"pg2\"", true, READY,
	false, "pg2", NULL, false, false, 0},
	{"an unreadable key: rewritten with ours", SYNC_MODE_ON, 1,
		"?", NULL, TWO, {S("pg2", LSN, 1)}, "\"pg2\"", false, 0,
	false, "", NULL, false, false, 1},
	{"a hand-set setting: nobody in it is trusted; key emptied, ours set", SYNC_MODE_ON, 1,
		"pg1", "pg2", TWO, {S("pg2", LSN, 1)}, "FIRST 1 (pg2, pg3)", true, READY,
	false, "", "\"pg2\"", false, false, 1},
	{"'ANY 1 (*)' by hand: replaced", SYNC_MODE_ON, 1,
		NULL, NULL, TWO, {S("pg2", LSN, 1)}, "ANY 1 (*)", true, 0,
	false, "", "\"pg2\"", false, false, 1},
	{"a key member no longer named (edited by hand): dropped", SYNC_MODE_ON, 1,
		"pg1", "pg2,pg3", THREE, {S("pg2", LSN, 1), S("pg3", LSN, 0)}, "\"pg2\"", true, READY,
	false, "pg2", NULL, false, false, 0},
};
#pragma GCC diagnostic pop

static void
build(const SyncCase *c, ClusterView *view, WalSenderInfo *senders, int *nsenders)
{
	int			i;

	memset(view, 0, sizeof(*view));
	for (i = 0; i < 6 && c->members[i].name != NULL; i++)
	{
		MemberInfo *m = &view->members[view->nmembers++];

		snprintf(m->name, sizeof(m->name), "%s", c->members[i].name);
		snprintf(m->role, sizeof(m->role), "%s", i == 0 ? "primary" : "replica");
		m->nofailover = c->members[i].nofailover;
	}
	if (c->key_leader != NULL)
	{
		view->sync.present = true;
		view->sync.mod_revision = 42;
		if (strcmp(c->key_leader, "?") == 0)
			view->sync.malformed = true;
		else
		{
			char		list[256];
			char	   *tok;
			char	   *save = NULL;

			snprintf(view->sync.leader, sizeof(view->sync.leader), "%s", c->key_leader);
			snprintf(list, sizeof(list), "%s", c->key_standbys ? c->key_standbys : "");
			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				snprintf(view->sync.standbys[view->sync.nstandbys++], AUTOHA_NAME_LEN, "%s", tok);
		}
	}
	*nsenders = 0;
	for (i = 0; i < 6 && c->senders[i].name != NULL; i++)
	{
		WalSenderInfo *w = &senders[(*nsenders)++];

		memset(w, 0, sizeof(*w));
		snprintf(w->name, sizeof(w->name), "%s", c->senders[i].name);
		w->streaming = !c->senders[i].not_streaming;
		w->flush_lsn = c->senders[i].flush;
		w->priority = c->senders[i].priority;
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);
}

/* the plan's key as "a,b", sorted */
static void
key_text(const SyncPlan *p, char *buf, size_t len)
{
	char		names[AUTOHA_MAX_MEMBERS][AUTOHA_NAME_LEN];
	size_t		used = 0;
	int			i;

	memcpy(names, p->key, sizeof(names));
	qsort(names, (size_t) p->nkey, AUTOHA_NAME_LEN, cmp_str);
	buf[0] = '\0';
	for (i = 0; i < p->nkey; i++)
		used += (size_t) snprintf(buf + used, len - used, "%s%s", i ? "," : "", names[i]);
}

static void
test_plans(void)
{
	size_t		i;

	printf("# %zu sync_plan cases\n", sizeof(cases) / sizeof(cases[0]));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const SyncCase *c = &cases[i];
		ClusterView *view = calloc(1, sizeof(ClusterView));
		WalSenderInfo senders[6];
		int			nsenders;
		SyncInput	in;
		SyncPlan	p;
		char		key[512];

		build(c, view, senders, &nsenders);
		memset(&in, 0, sizeof(in));
		in.mode = c->mode;
		in.node_count = c->node_count;
		in.self = "pg1";
		in.view = view;
		in.nsenders = nsenders;
		in.senders = senders;
		in.names_in_effect = c->in_effect;
		in.propagated = c->propagated;
		in.ready_lsn = c->ready_lsn;
		sync_plan(&in, &p);

		UNIT_OK(p.delete_key == c->delete_key, "%s: delete key %d", c->name, c->delete_key);
		UNIT_OK(p.write_key == (c->write_key != NULL), "%s: writes the key: %d", c->name,
				c->write_key != NULL);
		if (c->write_key != NULL && p.write_key)
		{
			key_text(&p, key, sizeof(key));
			UNIT_STR_EQ(key, c->write_key, "%s: key lists '%s'", c->name, c->write_key);
		}
		UNIT_OK(p.set_names == (c->set_names != NULL), "%s: sets the names: %d", c->name,
				c->set_names != NULL);
		if (c->set_names != NULL && p.set_names)
			UNIT_STR_EQ(p.names, c->set_names, "%s: names '%s'", c->name, c->set_names);
		UNIT_OK(p.reset_names == c->reset_names, "%s: reset %d", c->name, c->reset_names);
		UNIT_OK(p.measure == c->measure, "%s: measure %d (got %d)", c->name, c->measure, p.measure);
		UNIT_OK(p.npending == c->npending, "%s: %d pending (got %d)", c->name, c->npending, p.npending);
		UNIT_OK((p.write_key || p.delete_key || p.set_names || p.reset_names) == (p.reason[0] != '\0'),
				"%s: a reason exactly when something changes", c->name);
		/* never: a standby enters the key in the same step the setting changes */
		if (p.set_names && p.write_key)
		{
			int			k;
			bool		grows = false;

			for (k = 0; k < p.nkey; k++)
				grows |= !ha_sync_lists(&view->sync, p.key[k]) ||
					strcmp(view->sync.leader, "pg1") != 0;
			UNIT_OK(!grows, "%s: the key only shrinks when the setting changes", c->name);
		}
		free(view);
	}
}

static void
test_names(void)
{
	const char *one[] = {"node2"};
	const char *two[] = {"node3", "node2"};
	char		buf[SYNC_NAMES_LEN];
	char		out[4][AUTOHA_NAME_LEN];
	bool		any;

	sync_names_value(one, 1, buf, sizeof(buf));
	UNIT_STR_EQ(buf, "\"node2\"", "one standby: a quoted name");
	sync_names_value(two, 2, buf, sizeof(buf));
	UNIT_STR_EQ(buf, "ANY 2 (\"node2\",\"node3\")", "two: ANY 2, sorted");
	sync_names_value(two, 0, buf, sizeof(buf));
	UNIT_STR_EQ(buf, "", "none: empty");

	UNIT_OK(sync_names_parse("\"node2\"", out, 4, &any) == 1 && !any &&
			strcmp(out[0], "node2") == 0, "parse one");
	UNIT_OK(sync_names_parse("ANY 2 (\"a\",\"b\")", out, 4, &any) == 2 &&
			strcmp(out[1], "b") == 0, "parse ANY 2");
	UNIT_OK(sync_names_parse(" ANY 2 ( \"a\" , \"b\" ) ", out, 4, &any) == 2, "parse with spaces");
	UNIT_OK(sync_names_parse("", out, 4, &any) == 0 && !any, "parse empty");
	UNIT_OK(sync_names_parse("*", out, 4, &any) == 0 && any, "parse *");
	UNIT_OK(sync_names_parse("ANY 1 (\"a\",\"b\")", out, 4, &any) == -1,
			"ANY 1 of two is not ours: not every one named holds every commit");
	UNIT_OK(sync_names_parse("FIRST 1 (a)", out, 4, &any) == -1, "FIRST: not ours");
	UNIT_OK(sync_names_parse("a", out, 4, &any) == -1, "unquoted: not ours");
	UNIT_OK(sync_names_parse("ANY 1 (*)", out, 4, &any) == -1, "ANY 1 (*): not ours");
	UNIT_OK(sync_names_parse("\"a\", \"b\"", out, 4, &any) == -1, "a list without ANY: not ours");
	UNIT_OK(sync_names_parse("ANY 3 (\"a\",\"b\",\"c\")", out, 2, &any) == -1, "too many for out");
	UNIT_OK(sync_names_parse("ANY x (\"a\")", out, 4, &any) == -1, "ANY without a number");
	UNIT_OK(sync_names_parse("ANY 2 (\"a\",\"b\"", out, 4, &any) == -1, "unclosed");
	UNIT_STR_EQ(sync_mode_name(SYNC_MODE_STRICT), "strict", "mode names");
}

int
main(void)
{
	test_names();
	test_plans();
	UNIT_DONE();
}
