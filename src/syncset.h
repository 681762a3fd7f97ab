/*-------------------------------------------------------------------------
 *
 * syncset.h
 *	  The leader's synchronous set: which standbys synchronous_standby_names
 *	  names, which of them the "sync" key lists, and in which order the two
 *	  change.
 *
 * sync_plan() is a pure function, like ha_decide(): the worker passes what
 * it observed (mode, the cluster view with its "sync" key, this server's
 * WAL senders, the synchronous_standby_names in effect) and carries out
 * the plan.  Tested by a table in test/unit/test_syncset.c.  Plain C, no
 * PostgreSQL headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_SYNCSET_H
#define AUTOHA_SYNCSET_H

#include "ha.h"

typedef enum SyncMode
{
	SYNC_MODE_OFF,				/* synchronous_standby_names is the DBA's */
	SYNC_MODE_ON,				/* managed; asynchronous when no standby is
								 * available */
	SYNC_MODE_STRICT			/* managed; commits wait when no standby is
								 * available */
} SyncMode;

/* room for 'ANY 32 ("name",...)' */
#define SYNC_NAMES_LEN	(AUTOHA_MAX_MEMBERS * (AUTOHA_NAME_LEN + 3) + 16)

/* One WAL sender of the leader, as pg_stat_replication shows it. */
typedef struct WalSenderInfo
{
	char		name[AUTOHA_NAME_LEN];	/* application_name */
	bool		streaming;		/* state = 'streaming' */
	uint64_t	flush_lsn;		/* 0 = not reported yet */
	int			priority;		/* sync_priority, as the sender computed it
								 * from its own copy of the settings */
} WalSenderInfo;

typedef struct SyncInput
{
	SyncMode	mode;
	int			node_count;		/* autoha.synchronous_node_count */
	const char *self;
	const ClusterView *view;	/* members (alive) and the "sync" key */
	int			nsenders;
	const WalSenderInfo *senders;
	const char *names_in_effect;	/* synchronous_standby_names here */

	/*
	 * The caller's part of "the setting in effect is in effect everywhere":
	 * the checkpointer has it (whether commits wait at all) and long enough
	 * has passed since the reload for every process to have read it.  The
	 * WAL senders' priorities are checked here.
	 */
	bool		propagated;

	/*
	 * The leader's flush position measured once the setting in effect was
	 * in effect everywhere: a standby that has flushed this much holds
	 * every commit acknowledged so far, and every later one waits for it.
	 * 0 = not measured yet.
	 */
	uint64_t	ready_lsn;
} SyncInput;

typedef struct SyncPlan
{
	/* 1. the "sync" key first: it only shrinks before the setting changes */
	bool		delete_key;
	bool		write_key;
	int			nkey;
	char		key[AUTOHA_MAX_MEMBERS][AUTOHA_NAME_LEN];

	/* 2. then synchronous_standby_names */
	bool		set_names;
	bool		reset_names;	/* ALTER SYSTEM RESET: the DBA's value again */
	char		names[SYNC_NAMES_LEN];

	/* 3. or, with nothing to change: measure ready_lsn now */
	bool		measure;

	/* standbys named but not yet known to hold every commit */
	int			npending;

	char		reason[AUTOHA_REASON_LEN];	/* the change, for the log */
} SyncPlan;

extern void sync_plan(const SyncInput *in, SyncPlan *plan);

/*
 * synchronous_standby_names for these standbys: '"a"' for one,
 * 'ANY n ("a","b")' for more (every one of them, sorted), "" for none.
 */
extern void sync_names_value(const char *const *names, int n, char *buf,
							 size_t len);

/*
 * The standbys a value written by sync_names_value() (or "*") names: their
 * count, or -1 for a value of another form (set by hand), which names no
 * standby we may count on.  *any is set for "*".
 */
extern int	sync_names_parse(const char *value,
							 char out[][AUTOHA_NAME_LEN], int max, bool *any);

extern const char *sync_mode_name(SyncMode mode);

#endif							/* AUTOHA_SYNCSET_H */
