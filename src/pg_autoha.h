/*-------------------------------------------------------------------------
 *
 * pg_autoha.h
 *	  Settings and shared state of pg_autoha, shared by the backend-side
 *	  files (module entry, worker, node effects, SQL functions).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_AUTOHA_H
#define PG_AUTOHA_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/lwlock.h"

#include "fence.h"
#include "ha.h"
#include "syncset.h"

#define AUTOHA_ERROR_LEN 512

/* settings (GUCs), see pg_autoha.c */
extern char *autoha_etcd_endpoints;
extern char *autoha_namespace;
extern char *autoha_cluster_name;
extern char *autoha_node_name;
extern char *autoha_connect_address;
extern char *autoha_replication_conninfo;
extern char *autoha_database;
extern char *autoha_etcd_username;
extern char *autoha_etcd_password;
extern char *autoha_etcd_cacert;
extern char *autoha_etcd_cert;
extern char *autoha_etcd_key;
extern int	autoha_ttl;
extern int	autoha_loop_wait;
extern int	autoha_maximum_lag_on_failover;
extern bool autoha_nofailover;
extern int	autoha_failover_priority;
extern bool autoha_use_pg_rewind;
extern int	autoha_synchronous_mode;	/* SyncMode */
extern int	autoha_synchronous_node_count;

/*
 * What the worker publishes for the SQL functions.  Written only by the
 * worker, under lock; read by any backend.  The lease id also lives here so
 * that a restarted worker keeps renewing the lease its predecessor held
 * instead of leaving the cluster leaderless for a TTL.
 */
typedef struct AutohaShared
{
	LWLock	   *lock;
	pid_t		worker_pid;

	/*
	 * A backend of this server waiting in autoha_switchover(): the fence
	 * spares its session, and a leader handing over restarts only once it
	 * has seen the new leader and returned (or after a timeout).
	 */
	pid_t		request_waiter_pid;

	/* latest view of the cluster */
	bool		view_valid;
	TimestampTz view_time;		/* when it was read */
	bool		view_stale;		/* the last attempt to read it failed */
	ClusterView view;
	uint64		leader_lsn;		/* best known leader position */

	/* this node */
	char		role[AUTOHA_STATE_LEN];
	bool		is_leader;
	char		leader[AUTOHA_NAME_LEN];
	int64		lease_id;
	TimestampTz lease_expires;	/* wall-clock estimate, for display */
	HaAction	decision;
	char		decision_reason[AUTOHA_REASON_LEN];
	char		etcd_endpoint[AUTOHA_HOST_LEN];
	char		last_error[AUTOHA_ERROR_LEN];
	TimestampTz last_error_at;

	FenceShared fence;
} AutohaShared;

extern AutohaShared *autoha_shared;

/* pg_autoha.c */
extern bool autoha_settings_consistent(int ttl, int loop_wait, char **why);

/* worker.c */
extern PGDLLEXPORT void autoha_worker_main(Datum main_arg);

#endif							/* PG_AUTOHA_H */
