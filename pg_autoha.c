/*-------------------------------------------------------------------------
 *
 * pg_autoha.c
 *	  Module entry: settings, shared memory and the background worker.
 *
 * pg_autoha must be loaded with shared_preload_libraries on every server of
 * the cluster.  _PG_init defines the autoha.* settings, reserves the shared
 * state the worker publishes for autoha_status()/autoha_node(), and
 * registers the worker, which runs on the primary and on hot standbys, and
 * installs the write fence's checks, which every backend inherits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "pg_autoha.h"

PG_MODULE_MAGIC;

/* settings */
char	   *autoha_etcd_endpoints = NULL;
char	   *autoha_namespace = NULL;
char	   *autoha_cluster_name = NULL;
char	   *autoha_node_name = NULL;
char	   *autoha_connect_address = NULL;
char	   *autoha_replication_conninfo = NULL;
char	   *autoha_database = NULL;
char	   *autoha_etcd_username = NULL;
char	   *autoha_etcd_password = NULL;
char	   *autoha_etcd_cacert = NULL;
char	   *autoha_etcd_cert = NULL;
char	   *autoha_etcd_key = NULL;
int			autoha_ttl = 10;
int			autoha_loop_wait = 1000;
int			autoha_maximum_lag_on_failover = 1024 * 1024;
bool		autoha_nofailover = false;
int			autoha_failover_priority = 1;
bool		autoha_use_pg_rewind = true;
int			autoha_synchronous_mode = SYNC_MODE_OFF;
int			autoha_synchronous_node_count = 1;

/* "on"/"off" also as the other boolean spellings, like a bool setting */
static const struct config_enum_entry synchronous_mode_options[] = {
	{"off", SYNC_MODE_OFF, false},
	{"on", SYNC_MODE_ON, false},
	{"strict", SYNC_MODE_STRICT, false},
	{"false", SYNC_MODE_OFF, true},
	{"true", SYNC_MODE_ON, true},
	{"no", SYNC_MODE_OFF, true},
	{"yes", SYNC_MODE_ON, true},
	{"0", SYNC_MODE_OFF, true},
	{"1", SYNC_MODE_ON, true},
	{NULL, 0, false}
};

AutohaShared *autoha_shared = NULL;

/* renewals must fit this many times into the lease TTL */
#define AUTOHA_RENEWALS_PER_TTL 3

static char default_node_name[AUTOHA_NAME_LEN];

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/*
 * A member or cluster name ends up in etcd keys, replication slot names and
 * application_name, so keep it to characters that are safe in all three.
 */
static bool
check_name(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The name must not be empty.");
		return false;
	}
	if (strlen(*newval) >= AUTOHA_NAME_LEN)
	{
		GUC_check_errdetail("The name must be shorter than %d characters.",
							AUTOHA_NAME_LEN);
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-' && *p != '.')
		{
			GUC_check_errdetail("\"%s\" contains '%c'; use only letters, digits, '_', '-' and '.'.",
								*newval, *p);
			return false;
		}
	}
	return true;
}

static bool
check_etcd_endpoints(char **newval, void **extra, GucSource source)
{
	char	   *copy;
	char	   *tok;
	char	   *saveptr = NULL;
	bool		ok = true;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;			/* the worker stays idle and says so */

	copy = strdup(*newval);
	if (copy == NULL)
		return false;
	for (tok = strtok_r(copy, ",", &saveptr); tok != NULL;
		 tok = strtok_r(NULL, ",", &saveptr))
	{
		while (isspace((unsigned char) *tok))
			tok++;
		if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0)
		{
			GUC_check_errdetail("Endpoint \"%s\" does not start with http:// or https://.", tok);
			ok = false;
			break;
		}
		if (strchr(tok, ':') == strrchr(tok, ':'))
		{
			GUC_check_errdetail("Endpoint \"%s\" has no port.", tok);
			ok = false;
			break;
		}
	}
	free(copy);
	if (ok)
		return true;
	GUC_check_errhint("List etcd's client URLs separated by commas, e.g. 'http://10.0.0.1:2379,http://10.0.0.2:2379'.");
	return false;
}

static bool
check_namespace(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The namespace must not be empty.");
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if (isspace((unsigned char) *p) || iscntrl((unsigned char) *p))
		{
			GUC_check_errdetail("The namespace must not contain white space.");
			return false;
		}
	}
	return true;
}

static bool
check_connect_address(char **newval, void **extra, GucSource source)
{
	const char *colon;
	char	   *end;
	long		port;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;			/* derived from listen_addresses and port */
	colon = strrchr(*newval, ':');
	if (colon == NULL || colon == *newval)
	{
		GUC_check_errdetail("\"%s\" is not of the form host:port.", *newval);
		return false;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
	{
		GUC_check_errdetail("\"%s\" does not end in a port number between 1 and 65535.", *newval);
		return false;
	}
	if (strlen(*newval) >= AUTOHA_HOST_LEN)
	{
		GUC_check_errdetail("The address must be shorter than %d characters.", AUTOHA_HOST_LEN);
		return false;
	}
	return true;
}

static bool
check_replication_conninfo(char **newval, void **extra, GucSource source)
{
	static const char *const owned[] = {"host=", "hostaddr=", "port=", "application_name="};
	int			i;

	if (*newval == NULL)
		return true;
	for (i = 0; i < lengthof(owned); i++)
	{
		const char *hit = strstr(*newval, owned[i]);

		if (hit != NULL && (hit == *newval || isspace((unsigned char) hit[-1])))
		{
			GUC_check_errdetail("\"%.*s\" is set by pg_autoha from the leader's autoha.connect_address and autoha.node_name.",
								(int) strlen(owned[i]) - 1, owned[i]);
			GUC_check_errhint("Leave host, hostaddr, port and application_name out of autoha.replication_conninfo.");
			return false;
		}
	}
	return true;
}

/*
 * Renewals must fit several times into the TTL, or a single slow round
 * trip would let the lease expire under a healthy leader.
 */
bool
autoha_settings_consistent(int ttl, int loop_wait, char **why)
{
	if ((int64) loop_wait * AUTOHA_RENEWALS_PER_TTL > (int64) ttl * 1000)
	{
		*why = psprintf("autoha.loop_wait (%d ms) must fit at least %d times into autoha.ttl (%d s)",
						loop_wait, AUTOHA_RENEWALS_PER_TTL, ttl);
		return false;
	}
	return true;
}

/* autoha.fenced: the variable is never read; SHOW asks shared memory */
static bool autoha_fenced_placeholder = true;

static const char *
autoha_show_fenced(void)
{
	return fence_is_up() ? "on" : "off";
}

static void
define_settings(void)
{
	if (gethostname(default_node_name, sizeof(default_node_name)) != 0 ||
		default_node_name[0] == '\0')
		strcpy(default_node_name, "postgresql");
	default_node_name[sizeof(default_node_name) - 1] = '\0';

	DefineCustomStringVariable("autoha.etcd_endpoints",
							   "Comma-separated client URLs of the etcd cluster.",
							   "Tried in turn; empty leaves the worker idle.",
							   &autoha_etcd_endpoints, "",
							   PGC_SIGHUP, 0,
							   check_etcd_endpoints, NULL, NULL);
	DefineCustomStringVariable("autoha.namespace",
							   "etcd key prefix under which clusters are kept.",
							   NULL, &autoha_namespace, "/service",
							   PGC_POSTMASTER, 0,
							   check_namespace, NULL, NULL);
	DefineCustomStringVariable("autoha.cluster_name",
							   "Name of the cluster in etcd (Patroni's scope).",
							   NULL, &autoha_cluster_name, "pg_autoha",
							   PGC_POSTMASTER, 0,
							   check_name, NULL, NULL);
	DefineCustomStringVariable("autoha.node_name",
							   "This member's unique name in the cluster.",
							   "Defaults to the host name.",
							   &autoha_node_name, default_node_name,
							   PGC_POSTMASTER, 0,
							   check_name, NULL, NULL);
	DefineCustomStringVariable("autoha.connect_address",
							   "host:port other members use to reach this server.",
							   "Empty derives it from listen_addresses and port.",
							   &autoha_connect_address, "",
							   PGC_SIGHUP, 0,
							   check_connect_address, NULL, NULL);
	DefineCustomStringVariable("autoha.replication_conninfo",
							   "Extra libpq keywords for replication connections (user, sslmode, ...).",
							   NULL, &autoha_replication_conninfo, "user=postgres",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_replication_conninfo, NULL, NULL);
	DefineCustomStringVariable("autoha.database",
							   "Database the worker connects to.",
							   NULL, &autoha_database, "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("autoha.ttl",
							"Leader lease time to live.",
							"A leader that cannot renew its lease loses it after this time.",
							&autoha_ttl, 10, 2, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("autoha.loop_wait",
							"Period of the worker's loop.",
							"Must fit at least three times into autoha.ttl.",
							&autoha_loop_wait, 1000, 100, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("autoha.maximum_lag_on_failover",
							"A replica lagging the leader by more than this is never promoted automatically.",
							NULL, &autoha_maximum_lag_on_failover, 1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("autoha.nofailover",
							 "Never promote this server automatically.",
							 NULL, &autoha_nofailover, false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("autoha.failover_priority",
							"Tie-break between equally advanced candidates; higher wins.",
							NULL, &autoha_failover_priority, 1, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("autoha.use_pg_rewind",
							 "Rewind this server with pg_rewind when its WAL diverged from the leader's.",
							 "Runs pg_autoha_rejoin, which stops the server, rewinds it and starts it as a replica. "
							 "Needs wal_log_hints = on or data checksums.",
							 &autoha_use_pg_rewind, true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("autoha.synchronous_mode",
							 "Whether the leader keeps synchronous_standby_names and the sync key.",
							 "on: only a synchronous standby may be promoted after a failure, and "
							 "commits go asynchronous when no standby is available; strict: they wait "
							 "instead; off: synchronous_standby_names is left to you.",
							 &autoha_synchronous_mode, SYNC_MODE_OFF,
							 synchronous_mode_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("autoha.synchronous_node_count",
							"Synchronous standbys the leader keeps in synchronous mode.",
							"Every commit waits for all of them (ANY n with exactly n names).",
							&autoha_synchronous_node_count, 1, 1, 16,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("autoha.etcd_username",
							   "User name for etcd authentication; empty = no authentication.",
							   NULL, &autoha_etcd_username, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("autoha.etcd_password",
							   "Password for etcd authentication.",
							   NULL, &autoha_etcd_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("autoha.etcd_cacert",
							   "CA certificate file to verify etcd's TLS certificate.",
							   NULL, &autoha_etcd_cacert, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("autoha.etcd_cert",
							   "Client certificate file for etcd.",
							   NULL, &autoha_etcd_cert, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("autoha.etcd_key",
							   "Client key file for etcd.",
							   NULL, &autoha_etcd_key, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	/*
	 * Read-only and computed on every SHOW: whether this server refuses write
	 * commits right now.  Unlike autoha_node() it needs no privilege, so any
	 * client (the drill, a proxy's health check) can tell a fenced primary
	 * from a writable one with current_setting('autoha.fenced', true).
	 */
	DefineCustomBoolVariable("autoha.fenced",
							 "Shows whether the write fence is up on this server.",
							 NULL, &autoha_fenced_placeholder, true,
							 PGC_INTERNAL, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, autoha_show_fenced);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("autoha");
#else
	EmitWarningsOnPlaceholders("autoha");
#endif
}

static Size
autoha_shmem_size(void)
{
	return MAXALIGN(sizeof(AutohaShared));
}

#if PG_VERSION_NUM >= 150000
static void
autoha_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(autoha_shmem_size());
	RequestNamedLWLockTranche("pg_autoha", 1);
}
#endif

static void
autoha_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	autoha_shared = ShmemInitStruct("pg_autoha", autoha_shmem_size(), &found);
	if (!found)
	{
		memset(autoha_shared, 0, sizeof(AutohaShared));
		autoha_shared->lock = &(GetNamedLWLockTranche("pg_autoha"))->lock;
		strlcpy(autoha_shared->role, "starting", sizeof(autoha_shared->role));
		/* fenced at birth: no write until the worker confirms the lease */
		fence_shmem_init(&autoha_shared->fence);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* consistent state: run on hot standbys too, not only after recovery */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "pg_autoha", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "autoha_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pg_autoha worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pg_autoha", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	char	   *why;

	/*
	 * Without preloading there is no worker and no shared state; the SQL
	 * functions say so when called.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	define_settings();

	if (!autoha_settings_consistent(autoha_ttl, autoha_loop_wait, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pg_autoha timing: %s", why),
				 errhint("Raise autoha.ttl or lower autoha.loop_wait.")));

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = autoha_shmem_request;
#else
	RequestAddinShmemSpace(autoha_shmem_size());
	RequestNamedLWLockTranche("pg_autoha", 1);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = autoha_shmem_startup;

	/* every backend forked from now on checks the fence at commit */
	fence_install_hooks();

	register_worker();
}
