/*-------------------------------------------------------------------------
 *
 * pg_autoha_drill.c
 *		A failover drill: steady writes through a multi-host DSN, a fault at
 *		a set second, a sampler of every server's role and row count, and an
 *		audit of every acknowledged write against the leader at the end.
 *
 * Threads:
 *	- N writers, each with its own connection through the read-write DSN,
 *	  writing at rate/N per second; every write has a unique id and a
 *	  client-side deadline (async query + poll(), never a blocking call);
 *	- one sampler, asking every server for pg_is_in_recovery() and the row
 *	  count ten times a second, over its own connection per server;
 *	- the main thread, which runs the fault command, prints progress, stops
 *	  everything, audits and reports.
 *
 * Every write ends in one of three outcomes: acknowledged (the server said
 * INSERT 0 1), failed (the server answered with an error and the session
 * lives on, so nothing was written), or indeterminate (deadline passed or the
 * connection died while the write was in flight: it may or may not have
 * committed).  Only acknowledged writes can be "lost".
 *
 * Exit status: 0 no acknowledged write lost, 1 some were lost, 2 usage or
 * connection errors (nothing could be audited).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define DRILL_VERSION		"1.0"
#define MAX_SERVERS			16
#define MAX_NAMES			64	/* servers + unexpected ackers */
#define SAMPLE_INTERVAL_US	100000	/* ten rounds a second */
#define SAMPLE_BUDGET_US	300000	/* never wait longer on one server */
#define AUDIT_WAIT_US		30000000	/* find a leader for the audit */
#define EXIT_OK				0
#define EXIT_LOST			1
#define EXIT_USAGE			2

typedef enum
{
	OUT_PENDING = 0,
	OUT_ACK,
	OUT_FAILED,
	OUT_INDETERMINATE
} Outcome;

/* One write, kept in memory for the audit. */
typedef struct
{
	int64_t		id;
	int64_t		sent_us;		/* since the start of the run */
	int64_t		done_us;
	int16_t		server;			/* index in names[], -1 unknown */
	uint8_t		outcome;
	bool		present;		/* found on the leader by the audit */
} WriteRec;

typedef struct
{
	int			index;
	pthread_t	thread;
	WriteRec   *recs;
	int			cap;
	int			n;				/* published with __atomic_store_n */
	int			n_ack;
	int			n_indet;
	int			connect_failures;
	char		last_error[256];
} Writer;

/* Parsed options. */
static const char *opt_dsn;
static const char *opt_servers;
static double opt_rate = 100;
static int	opt_writers = 4;
static double opt_duration = 30;
static double opt_fault_at = -1;
static int64_t fault_took_us = 0;	/* how long the fault command ran */
static const char *opt_fault_cmd;
static int	opt_timeout_ms = 2000;
static const char *opt_table = "drill_writes";
static const char *opt_csv;
static bool opt_quiet;

/* Connection parameters: keyword/value arrays, NULL-terminated. */
typedef struct
{
	const char **kw;
	const char **val;
	int			n;
} ConnParams;

static ConnParams write_params;
static ConnParams *writer_params;	/* write_params, host list reordered */
static char **writer_lists;		/* each writer's host and port lists */
static ConnParams sample_params[MAX_SERVERS];
static PQconninfoOption *dsn_opts;

/* Server names ("host:port"); the first nservers are the sampled ones. */
static char *names[MAX_NAMES];
static int	nnames;
static int	nservers;
static char *srv_host[MAX_SERVERS];	/* referenced by sample_params */
static char *srv_port[MAX_SERVERS];
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;

static char quoted_table[80];	/* "name", validated by check_table() */

/* Run state shared by the threads. */
static struct timespec t0;		/* CLOCK_MONOTONIC at the start of the run */
static int64_t end_us;			/* writers stop sending at this time */
static int64_t fault_us = -1;
static int64_t id_base;			/* ids of this run: id_base .. */
static volatile sig_atomic_t interrupted;
static int	stop_writers;		/* __atomic */
static int	stop_sampler;		/* __atomic */
static Writer *writers;

/* Sampler results. */
static FILE *csv;
static pthread_t sampler_thread;
static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *last_role[MAX_SERVERS];
static long long last_rows[MAX_SERVERS];
static int	sample_rounds;
static int	two_primary_rounds;
static double first_two_primary_s = -1;

static void
usage(void)
{
	printf("pg_autoha_drill runs a failover drill against a PostgreSQL cluster.\n\n"
		   "Usage:\n"
		   "  pg_autoha_drill --dsn CONNINFO [OPTION]...\n\n"
		   "Options:\n"
		   "  --dsn CONNINFO       multi-host libpq connection string or URI; the drill adds\n"
		   "                       target_session_attrs=read-write and connect_timeout=2\n"
		   "                       when absent; writers try the server last seen as\n"
		   "                       primary first, then the others that answer the\n"
		   "                       sampler (writer i from host i)\n"
		   "  --servers LIST       host:port,host:port,... to sample (default: the DSN's\n"
		   "                       host and port lists)\n"
		   "  --rate N             writes per second, all writers together (default 100)\n"
		   "  --writers N          concurrent writers (default 4)\n"
		   "  --duration SECONDS   how long to write (default 30)\n"
		   "  --fault-at SECONDS   when the fault happens (marks the plot and the report)\n"
		   "  --fault-cmd COMMAND  run with /bin/sh -c at --fault-at (stdout goes to stderr)\n"
		   "  --timeout MS         client-side timeout of one write (default 2000)\n"
		   "  --table NAME         table to write to, created if absent (default drill_writes)\n"
		   "  --csv FILE           write the samples: t_seconds,server,role,rows (rows of\n"
		   "                       this run; role primary, fenced (a primary that\n"
		   "                       pg_autoha keeps from writing), replica, down or error)\n"
		   "  --quiet              no progress lines, only the report\n"
		   "  --help, --version\n\n"
		   "The last line of the report is machine-readable:\n"
		   "  drill: attempted=N acknowledged=N failed=N lost=N indeterminate=N ...\n"
		   "  lost                 acknowledged ids missing on the leader at the audit\n"
		   "  indeterminate        timed out or connection lost; outcome unknown\n"
		   "  max_gap_after_fault_ms  longest stretch without an acknowledged write,\n"
		   "                       from the fault (or the start) to the end\n"
		   "  inflight_acks_after_fault  acknowledged by another server after the fault\n"
		   "                       but before the final leader's first acknowledgement\n"
		   "  nonleader_acks_after_takeover  acknowledged by another server after the\n"
		   "                       final leader's first acknowledgement (split brain)\n"
		   "  two_primaries        two servers answered as writable primary in one\n"
		   "                       sampling round (fenced primaries do not count)\n\n"
		   "Exit status: 0 no acknowledged write was lost, 1 some were lost,\n"
		   "2 bad options or no connection.\n");
}

static void
fail(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* Usage and connection errors: say what is wrong and exit 2. */
static void
fail(const char *fmt,...)
{
	va_list		ap;
	char		msg[2048];
	size_t		len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* libpq's messages end in a newline */
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	fprintf(stderr, "pg_autoha_drill: %s\n", msg);
	exit(EXIT_USAGE);
}

/*
 * Notices and warnings (CREATE TABLE IF NOT EXISTS, "terminating connection
 * due to immediate shutdown") would interleave with the report; the outcome
 * of every write is recorded anyway.
 */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) (ts.tv_sec - t0.tv_sec) * 1000000 +
		(ts.tv_nsec - t0.tv_nsec) / 1000;
}

static void
sleep_us(int64_t us)
{
	struct timespec ts;

	if (us <= 0)
		return;
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !interrupted)
		;
}

static bool
flag_get(int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0 || interrupted;
}

static double
parse_number(const char *s, const char *opt, double min, double max)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v != v || v < min || v > max)
		fail("invalid value \"%s\" for %s (expected a number from %g to %g)",
			 s, opt, min, max);
	return v;
}

static int
parse_int(const char *s, const char *opt, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fail("invalid value \"%s\" for %s (expected an integer from %ld to %ld)",
			 s, opt, min, max);
	return (int) v;
}

/*
 * The table name goes into SQL text: accept plain identifiers only and
 * double-quote it, so nothing the user types can change the statements.
 */
static void
check_table(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > 63 || isdigit((unsigned char) name[0]))
		fail("invalid --table \"%s\" (expected a plain identifier of at most 63 characters)", name);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char) name[i]) && name[i] != '_')
			fail("invalid --table \"%s\" (expected letters, digits and underscores)", name);
	snprintf(quoted_table, sizeof(quoted_table), "\"%s\"", name);
}

static const char *
dsn_value(const char *keyword)
{
	for (PQconninfoOption *o = dsn_opts; o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val;
	return NULL;
}

/* Split a comma-separated list in place; returns the number of items. */
static int
split_list(char *s, char **items, int max, const char *what)
{
	int			n = 0;

	for (;;)
	{
		char	   *comma = strchr(s, ',');

		if (n == max)
			fail("too many entries in %s (at most %d)", what, max);
		items[n++] = s;
		if (comma == NULL)
			return n;
		*comma = '\0';
		s = comma + 1;
	}
}

static void
check_port(const char *port, const char *what)
{
	parse_int(port, what, 1, 65535);
}

/*
 * Build keyword/value arrays from the DSN without the keywords in "skip",
 * followed by the given extra pairs (NULL-terminated varargs, key then value).
 * Later entries win in PQconnectdbParams, so the extras override.
 */
static void
build_params(ConnParams *p, const char *const *skip,...)
{
	int			cap = 8;
	va_list		ap;
	const char *k;

	for (PQconninfoOption *o = dsn_opts; o->keyword; o++)
		cap++;
	p->kw = calloc(cap, sizeof(char *));
	p->val = calloc(cap, sizeof(char *));
	if (p->kw == NULL || p->val == NULL)
		fail("out of memory");
	p->n = 0;
	for (PQconninfoOption *o = dsn_opts; o->keyword; o++)
	{
		bool		skipped = false;

		if (o->val == NULL)
			continue;
		for (int i = 0; skip && skip[i]; i++)
			if (strcmp(o->keyword, skip[i]) == 0)
				skipped = true;
		if (!skipped)
		{
			p->kw[p->n] = o->keyword;
			p->val[p->n++] = o->val;
		}
	}
	va_start(ap, skip);
	while ((k = va_arg(ap, const char *)) != NULL && p->n < cap - 1)
	{
		p->kw[p->n] = k;
		p->val[p->n++] = va_arg(ap, const char *);
	}
	va_end(ap);
	p->kw[p->n] = NULL;
	p->val[p->n] = NULL;
}

static void
free_params(ConnParams *p)
{
	free(p->kw);
	free(p->val);
}

/* Index of a server name, adding it when new (writers meet unlisted ones). */
static int
intern_name(const char *name)
{
	int			i;

	pthread_mutex_lock(&names_lock);
	for (i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			break;
	if (i == nnames)
	{
		if (nnames == MAX_NAMES || (names[nnames] = strdup(name)) == NULL)
			i = -1;
		else
			nnames++;
	}
	pthread_mutex_unlock(&names_lock);
	return i;
}

static const char *
name_of(int i)
{
	return i >= 0 && i < nnames ? names[i] : "?";
}

static char *
xstrdup(const char *s)
{
	char	   *d = strdup(s);

	if (d == NULL)
		fail("out of memory");
	return d;
}

/* The DSN plus what every write connection needs, unless the DSN says. */
static void
build_write_params(ConnParams *p)
{
	build_params(p, NULL,
				 "application_name", "pg_autoha_drill",
				 "target_session_attrs",
				 dsn_value("target_session_attrs") ? dsn_value("target_session_attrs") : "read-write",
				 "connect_timeout",
				 dsn_value("connect_timeout") ? dsn_value("connect_timeout") : "2",
				 NULL);
}

/*
 * Parse and check the DSN, derive the sampled servers, build the parameter
 * arrays for the writers and for each sampled server.
 */
static void
setup_connections(void)
{
	static const char *const sample_skip[] = {"host", "hostaddr", "port",
	"target_session_attrs", "connect_timeout", NULL};
	char	   *err = NULL;
	char	   *hostlist;
	char	   *portlist;
	char	   *hosts[MAX_SERVERS];
	char	   *ports[MAX_SERVERS];
	int			nhosts;
	int			nports;
	const char *v;
	char		name[1024];

	dsn_opts = PQconninfoParse(opt_dsn, &err);
	if (dsn_opts == NULL)
	{
		if (err)
		{
			size_t		l = strlen(err);

			while (l > 0 && err[l - 1] == '\n')
				err[--l] = '\0';
		}
		fail("invalid --dsn: %s", err ? err : "out of memory");
	}
	PQfreemem(err);

	/* libpq checks ports only when it connects: do it now, with a clear message */
	if ((v = dsn_value("port")) != NULL && *v)
	{
		portlist = xstrdup(v);
		nports = split_list(portlist, ports, MAX_SERVERS, "the --dsn port list");
		for (int i = 0; i < nports; i++)
			check_port(ports[i], "port in --dsn");
		free(portlist);
	}
	if ((v = dsn_value("connect_timeout")) != NULL)
		parse_int(v, "connect_timeout in --dsn", 0, INT_MAX);

	build_write_params(&write_params);

	/* The sampled servers: --servers, or the DSN's host and port lists. */
	if (opt_servers)
	{
		char	   *list = xstrdup(opt_servers);
		char	   *items[MAX_SERVERS];
		int			n = split_list(list, items, MAX_SERVERS, "--servers");

		for (int i = 0; i < n; i++)
		{
			char	   *colon = strrchr(items[i], ':');

			if (colon == NULL || colon == items[i])
				fail("invalid --servers entry \"%s\" (expected host:port)", items[i]);
			check_port(colon + 1, "port in --servers");
			*colon = '\0';
			srv_host[i] = xstrdup(items[i]);
			srv_port[i] = xstrdup(colon + 1);
		}
		nhosts = n;
		free(list);
	}
	else
	{
		v = dsn_value("host");
		if (v == NULL || *v == '\0')
			v = dsn_value("hostaddr");
		if (v == NULL || *v == '\0')
			v = getenv("PGHOST");
		hostlist = xstrdup(v && *v ? v : "localhost");
		v = dsn_value("port");
		if (v == NULL || *v == '\0')
			v = getenv("PGPORT");
		portlist = xstrdup(v && *v ? v : "5432");
		nhosts = split_list(hostlist, hosts, MAX_SERVERS, "the --dsn host list");
		nports = split_list(portlist, ports, MAX_SERVERS, "the --dsn port list");
		if (nports != 1 && nports != nhosts)
			fail("invalid --dsn: %d hosts but %d ports", nhosts, nports);
		for (int i = 0; i < nhosts; i++)
		{
			srv_host[i] = xstrdup(hosts[i]);
			srv_port[i] = xstrdup(ports[nports == 1 ? 0 : i]);
		}
		free(hostlist);
		free(portlist);
	}

	for (int i = 0; i < nhosts; i++)
	{
		snprintf(name, sizeof(name), "%s:%s", srv_host[i], srv_port[i]);
		if (intern_name(name) != i)
			fail("server %s is listed twice", name);
		build_params(&sample_params[i], sample_skip,
					 "host", srv_host[i], "port", srv_port[i],
					 "connect_timeout", "1",
					 "application_name", "pg_autoha_drill_sampler",
					 NULL);
		last_role[i] = "unknown";
		last_rows[i] = -1;
	}
	nservers = nhosts;
}

/*
 * Where writer w connects next: a host list in which the server the sampler
 * last saw as a writable primary comes first, and the others follow in an
 * order rotated by w, without those the sampler could not reach.  That is what a client with a health-checked router
 * (HAProxy on Patroni's REST checks) or a host status cache (pgjdbc's
 * hostRecheckSeconds) does, so the drill measures the failover rather than
 * libpq walking the list in order: in list order, every writer would first
 * wait out connect_timeout on a frozen first host before trying the next.
 * Only for the DSN's own host and port lists (not with hostaddr or
 * --servers, whose entries need not match the DSN's).
 */
static bool writers_reorder;

static void
setup_writer_params(void)
{
	writers_reorder = opt_servers == NULL && nservers > 1 &&
		(dsn_value("hostaddr") == NULL || *dsn_value("hostaddr") == '\0');
	writer_params = calloc(opt_writers, sizeof(ConnParams));
	writer_lists = calloc((size_t) opt_writers * 2, sizeof(char *));
	if (writer_params == NULL || writer_lists == NULL)
		fail("out of memory");
	for (int w = 0; w < opt_writers; w++)
	{
		ConnParams *p = &writer_params[w];

		build_write_params(p);
		if (!writers_reorder)
			continue;
		/* room for every host:port, filled in before each connection */
		for (int k = 0; k < 2; k++)
		{
			size_t		len = 1;

			for (int i = 0; i < nservers; i++)
				len += strlen(k == 0 ? srv_host[i] : srv_port[i]) + 1;
			if ((writer_lists[w * 2 + k] = malloc(len)) == NULL)
				fail("out of memory");
		}
		/* later entries win: host and port go last */
		p->kw[p->n] = "host";
		p->val[p->n++] = writer_lists[w * 2];
		p->kw[p->n] = "port";
		p->val[p->n++] = writer_lists[w * 2 + 1];
		p->kw[p->n] = NULL;
		p->val[p->n] = NULL;
	}
}

static void
order_writer_hosts(int w)
{
	char	   *hosts = writer_lists[w * 2];
	char	   *ports = writer_lists[w * 2 + 1];
	int			first = -1;
	bool		down[MAX_SERVERS];
	int			ndown = 0;

	pthread_mutex_lock(&sample_lock);
	for (int i = 0; i < nservers; i++)
	{
		if (first < 0 && strcmp(last_role[i], "primary") == 0)
			first = i;
		down[i] = strcmp(last_role[i], "down") == 0;
		ndown += down[i];
	}
	pthread_mutex_unlock(&sample_lock);

	hosts[0] = ports[0] = '\0';
	if (first >= 0)
	{
		strcat(hosts, srv_host[first]);
		strcat(ports, srv_port[first]);
	}
	for (int k = 0; k < nservers; k++)
	{
		int			i = (k + w) % nservers;

		/* a server the sampler cannot reach is skipped, unless all are */
		if (i == first || (down[i] && ndown < nservers))
			continue;
		if (hosts[0])
		{
			strcat(hosts, ",");
			strcat(ports, ",");
		}
		strcat(hosts, srv_host[i]);
		strcat(ports, srv_port[i]);
	}
}

/*
 * Wait until a result can be read without blocking.  Returns 1 when ready,
 * 0 at the deadline, -1 when the connection is broken.
 */
static int
wait_ready(PGconn *conn, int64_t deadline)
{
	for (;;)
	{
		struct pollfd pfd;
		int			flush = PQflush(conn);
		int64_t		left;
		int			rc;

		if (flush < 0)
			return -1;
		if (flush == 0 && !PQisBusy(conn))
			return 1;
		left = deadline - now_us();
		if (left <= 0)
			return 0;
		pfd.fd = PQsocket(conn);
		if (pfd.fd < 0)
			return -1;
		pfd.events = POLLIN | (flush ? POLLOUT : 0);
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int) ((left + 999) / 1000));
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) &&
			!PQconsumeInput(conn))
			return -1;
	}
}

/*
 * Non-blocking connect with a deadline, for the sampler: a frozen server
 * must not stall the sampling of the others.  (libpq ignores connect_timeout
 * in this mode, so the deadline is ours.)
 */
static PGconn *
connect_async(const ConnParams *p, int64_t deadline)
{
	PGconn	   *conn = PQconnectStartParams(p->kw, p->val, 0);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (conn == NULL)
		return NULL;
	while (PQstatus(conn) != CONNECTION_BAD)
	{
		struct pollfd pfd;
		int64_t		left;

		if (st == PGRES_POLLING_OK)
		{
			PQsetNoticeProcessor(conn, ignore_notice, NULL);
			if (PQsetnonblocking(conn, 1) == 0)
				return conn;
			break;
		}
		if (st == PGRES_POLLING_FAILED)
			break;
		left = deadline - now_us();
		if (left <= 0)
			break;
		pfd.fd = PQsocket(conn);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int) ((left + 999) / 1000)) < 0 && errno != EINTR)
			break;
		if (pfd.revents == 0)
			continue;
		st = PQconnectPoll(conn);
	}
	PQfinish(conn);
	return NULL;
}

/* ---------------------------------------------------------------- sampler */

typedef struct
{
	const char *role;			/* primary, fenced, replica, down, error */
	long long	rows;			/* -1 unknown */
} Sample;

static Sample
sample_one(PGconn **connp, int server, int64_t deadline)
{
	Sample		s = {"down", -1};
	char		sql[256];
	PGresult   *res;
	int			nres = 0;
	bool		broken = false;

	if (*connp == NULL)
		*connp = connect_async(&sample_params[server], deadline);
	if (*connp == NULL)
		return s;

	/*
	 * Two statements, two results: the role even when the table is missing.
	 * A primary that pg_autoha fences (autoha.fenced; NULL without pg_autoha)
	 * refuses every write, so it is told apart from a writable one.
	 */
	snprintf(sql, sizeof(sql),
			 "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica'"
			 " WHEN current_setting('autoha.fenced', true) = 'on' THEN 'fenced'"
			 " ELSE 'primary' END;"
			 " SELECT count(*) FROM %s WHERE id >= %" PRId64,
			 quoted_table, id_base);
	if (!PQsendQuery(*connp, sql))
		broken = true;
	while (!broken)
	{
		int			r = wait_ready(*connp, deadline);

		if (r <= 0)
		{
			broken = true;		/* frozen or gone: reconnect next round */
			break;
		}
		if ((res = PQgetResult(*connp)) == NULL)
			break;
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			const char *v = PQgetvalue(res, 0, 0);

			if (nres == 0)
				s.role = strcmp(v, "replica") == 0 ? "replica" :
					strcmp(v, "fenced") == 0 ? "fenced" : "primary";
			else
				s.rows = strtoll(v, NULL, 10);
		}
		else if (nres == 0)
			s.role = "error";
		nres++;
		PQclear(res);
	}
	if (broken || PQstatus(*connp) == CONNECTION_BAD)
	{
		PQfinish(*connp);
		*connp = NULL;
		if (nres == 0)
			s.role = "down";
	}
	return s;
}

static void *
sampler_main(void *arg)
{
	PGconn	   *conns[MAX_SERVERS] = {NULL};
	int64_t		next = 0;

	(void) arg;
	while (!flag_get(&stop_sampler))
	{
		int			primaries = 0;
		double		round_s = now_us() / 1e6;

		for (int i = 0; i < nservers; i++)
		{
			int64_t		start = now_us();
			Sample		s = sample_one(&conns[i], i, start + SAMPLE_BUDGET_US);

			if (strcmp(s.role, "primary") == 0)
				primaries++;
			pthread_mutex_lock(&sample_lock);
			last_role[i] = s.role;
			last_rows[i] = s.rows;
			pthread_mutex_unlock(&sample_lock);
			if (csv)
			{
				if (s.rows >= 0)
					fprintf(csv, "%.3f,%s,%s,%lld\n", start / 1e6, names[i], s.role, s.rows);
				else
					fprintf(csv, "%.3f,%s,%s,\n", start / 1e6, names[i], s.role);
			}
		}
		pthread_mutex_lock(&sample_lock);
		sample_rounds++;
		if (primaries >= 2)
		{
			if (two_primary_rounds++ == 0)
				first_two_primary_s = round_s;
		}
		pthread_mutex_unlock(&sample_lock);

		/* a fixed cadence; a slow round is not made up for */
		next += SAMPLE_INTERVAL_US;
		if (next < now_us())
			next = now_us();
		sleep_us(next - now_us());
	}
	for (int i = 0; i < nservers; i++)
		if (conns[i])
			PQfinish(conns[i]);
	return NULL;
}

/* ---------------------------------------------------------------- writers */

/*
 * Writers connect with the blocking call on purpose: libpq's connect_timeout
 * (per host) is what moves a multi-host connection past an unresponsive
 * host, and it only applies to blocking connects.
 */
static PGconn *
connect_writer(Writer *w, int *server)
{
	PGconn	   *conn;
	char		name[1024];

	if (writers_reorder)
		order_writer_hosts(w->index);
	conn = PQconnectdbParams(writer_params[w->index].kw,
							 writer_params[w->index].val, 0);

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
		PQsetnonblocking(conn, 1) != 0)
	{
		snprintf(w->last_error, sizeof(w->last_error), "%s",
				 conn ? PQerrorMessage(conn) : "out of memory");
		w->last_error[strcspn(w->last_error, "\n")] = '\0';
		w->connect_failures++;
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	/* which server libpq picked: names the acknowledgements */
	snprintf(name, sizeof(name), "%s:%s", PQhost(conn), PQport(conn));
	*server = intern_name(name);
	return conn;
}

/* One INSERT with a client-side deadline. */
static Outcome
write_one(PGconn *conn, Writer *w, int64_t id, int64_t deadline)
{
	char		sql[200];
	char		idbuf[32];
	char		writerbuf[16];
	const char *values[2] = {idbuf, writerbuf};
	PGresult   *res;
	Outcome		out = OUT_INDETERMINATE;

	snprintf(sql, sizeof(sql), "INSERT INTO %s (id, writer) VALUES ($1, $2)", quoted_table);
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	snprintf(writerbuf, sizeof(writerbuf), "%d", w->index);
	if (!PQsendQueryParams(conn, sql, 2, NULL, values, NULL, NULL, 0))
	{
		/* nothing left the client: a plain failure, not an unknown outcome */
		snprintf(w->last_error, sizeof(w->last_error), "%s", PQerrorMessage(conn));
		return OUT_FAILED;
	}
	for (;;)
	{
		int			r = wait_ready(conn, deadline);

		if (r <= 0)
			return OUT_INDETERMINATE;	/* timeout or connection lost */
		if ((res = PQgetResult(conn)) == NULL)
			break;
		if (PQresultStatus(res) == PGRES_COMMAND_OK &&
			strcmp(PQcmdTuples(res), "1") == 0)
			out = OUT_ACK;
		else
		{
			snprintf(w->last_error, sizeof(w->last_error), "%s", PQresultErrorMessage(res));
			w->last_error[strcspn(w->last_error, "\n")] = '\0';

			/*
			 * An error from a session that lives on means the statement
			 * failed.  When the connection died with it (FATAL, crash), the
			 * commit may have happened: unknown.
			 */
			out = PQstatus(conn) == CONNECTION_BAD ? OUT_INDETERMINATE : OUT_FAILED;
		}
		PQclear(res);
	}
	if (out == OUT_FAILED && PQstatus(conn) == CONNECTION_BAD)
		out = OUT_INDETERMINATE;
	return out;
}

/* a writer with no writable server tries again after this long */
#define RECONNECT_PAUSE_US	20000

static void *
writer_main(void *arg)
{
	Writer	   *w = arg;
	PGconn	   *conn = NULL;
	int			server = -1;
	int64_t		interval = (int64_t) (opt_writers * 1e6 / opt_rate);
	int64_t		next = w->index * interval / opt_writers;	/* spread the writers */
	int64_t		seq = 0;

	while (!flag_get(&stop_writers) && w->n < w->cap)
	{
		WriteRec   *rec;
		Outcome		out;

		sleep_us(next - now_us());
		if (flag_get(&stop_writers) || now_us() >= end_us)
			break;
		if (conn == NULL && (conn = connect_writer(w, &server)) == NULL)
		{
			/*
			 * No writable server yet: retry soon, as a pool does.  (Every
			 * server refuses at once while none is writable, so this is a
			 * cheap poll; a longer pause would be measured as downtime.)
			 */
			sleep_us(RECONNECT_PAUSE_US);
			next = now_us();
			continue;
		}
		rec = &w->recs[w->n];
		rec->id = id_base + seq++ * opt_writers + w->index;
		rec->sent_us = now_us();
		rec->server = (int16_t) server;
		out = write_one(conn, w, rec->id, rec->sent_us + (int64_t) opt_timeout_ms * 1000);
		rec->done_us = now_us();
		rec->outcome = (uint8_t) out;
		if (out == OUT_ACK)
			__atomic_add_fetch(&w->n_ack, 1, __ATOMIC_RELAXED);
		if (out == OUT_INDETERMINATE)
			__atomic_add_fetch(&w->n_indet, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE);

		/* after a timeout the session state is unknown: start over */
		if (out == OUT_INDETERMINATE || PQstatus(conn) == CONNECTION_BAD)
		{
			PQfinish(conn);
			conn = NULL;
		}
		/* keep the rate, but never burst to catch up after a stall */
		next += interval;
		if (next < now_us())
			next = now_us();
	}
	PQfinish(conn);
	return NULL;
}

/* ---------------------------------------------------------------- main parts */

/* Create the table if needed and pick this run's first id. */
static void
prepare_table(void)
{
	PGconn	   *conn = PQconnectdbParams(write_params.kw, write_params.val, 0);
	PGresult   *res;
	char		sql[300];

	if (PQstatus(conn) != CONNECTION_OK)
		fail("could not connect to a read-write server through --dsn: %s",
			 PQerrorMessage(conn));
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	snprintf(sql, sizeof(sql),
			 "CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, writer int, "
			 "at timestamptz DEFAULT now())", quoted_table);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail("could not create table %s: %s", quoted_table, PQerrorMessage(conn));
	PQclear(res);

	/* ids above everything already there, so earlier runs cannot collide */
	snprintf(sql, sizeof(sql), "SELECT coalesce(max(id), 0) + 1 FROM %s", quoted_table);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail("could not read table %s: %s", quoted_table, PQerrorMessage(conn));
	id_base = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(conn);
}

/* Run the fault command; returns its exit status text. */
static void
run_fault(char *status, size_t len)
{
	pid_t		pid;
	int			wstatus;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		snprintf(status, len, "fork failed: %s", strerror(errno));
		return;
	}
	if (pid == 0)
	{
		/* keep the drill's stdout for the report */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", opt_fault_cmd, (char *) NULL);
		_exit(127);
	}
	while (waitpid(pid, &wstatus, 0) < 0)
	{
		if (errno != EINTR)
		{
			snprintf(status, len, "waitpid failed: %s", strerror(errno));
			return;
		}
	}
	if (WIFEXITED(wstatus))
		snprintf(status, len, "exit %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(status, len, "killed by signal %d", WTERMSIG(wstatus));
	else
		snprintf(status, len, "status %d", wstatus);
}

static void
progress(double t)
{
	long		att = 0;
	long		ack = 0;
	long		indet = 0;

	for (int i = 0; i < opt_writers; i++)
	{
		att += __atomic_load_n(&writers[i].n, __ATOMIC_ACQUIRE);
		ack += __atomic_load_n(&writers[i].n_ack, __ATOMIC_RELAXED);
		indet += __atomic_load_n(&writers[i].n_indet, __ATOMIC_RELAXED);
	}
	printf("%6.1fs  attempted %ld  acknowledged %ld  indeterminate %ld |", t, att, ack, indet);
	pthread_mutex_lock(&sample_lock);
	for (int i = 0; i < nservers; i++)
	{
		printf(" %s %s", names[i], last_role[i]);
		if (last_rows[i] >= 0)
			printf(" %lld", last_rows[i]);
	}
	pthread_mutex_unlock(&sample_lock);
	printf("\n");
	fflush(stdout);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/*
 * Read this run's ids from the leader (via the read-write DSN, retrying for a
 * while: right after a failover there may be no leader yet) and mark every
 * write found.  Returns the leader's name index.
 */
static int
audit(long long *nfound)
{
	int64_t		give_up = now_us() + AUDIT_WAIT_US;
	PGconn	   *conn;
	PGresult   *res;
	char		sql[300];
	char		name[1024];
	int64_t    *ids;
	int			n;
	int			leader;

	for (;;)
	{
		conn = PQconnectdbParams(write_params.kw, write_params.val, 0);
		if (PQstatus(conn) == CONNECTION_OK)
			break;
		if (now_us() >= give_up || interrupted)
			fail("audit: no read-write server reachable through --dsn within %d s: %s",
				 AUDIT_WAIT_US / 1000000, PQerrorMessage(conn));
		PQfinish(conn);
		sleep_us(500000);
	}
	snprintf(name, sizeof(name), "%s:%s", PQhost(conn), PQport(conn));
	leader = intern_name(name);

	snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE id >= %" PRId64 " ORDER BY id",
			 quoted_table, id_base);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail("audit: could not read %s on %s: %s", quoted_table, name, PQerrorMessage(conn));
	n = PQntuples(res);
	ids = malloc(sizeof(int64_t) * (n > 0 ? n : 1));
	if (ids == NULL)
		fail("out of memory");
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	PQfinish(conn);

	for (int w = 0; w < opt_writers; w++)
		for (int i = 0; i < writers[w].n; i++)
		{
			WriteRec   *r = &writers[w].recs[i];

			r->present = bsearch(&r->id, ids, n, sizeof(int64_t), cmp_i64) != NULL;
		}
	free(ids);
	*nfound = n;
	return leader;
}

typedef struct
{
	long		attempted;
	long		acked;
	long		failed;
	long		indet;
	long		indet_present;
	long		failed_present;
	long		lost;
	int64_t		takeover_us;	/* the final leader's first ack after the fault */
	long		acks_before_takeover;	/* by other servers, fault..takeover */
	long		nonleader_after_takeover;	/* by other servers after it */
	int64_t		max_gap_us;
	bool		overlapping;
	long		acks_by_server[MAX_NAMES];
	long		connect_failures;
} Result;

static void
analyse(int leader, int64_t stop_us, Result *r)
{
	int64_t    *acks;
	long		nacks = 0;
	long		total = 0;
	int64_t		first[MAX_NAMES];
	int64_t		last[MAX_NAMES];
	int64_t		prev;
	int64_t		from = fault_us >= 0 ? fault_us : 0;

	memset(r, 0, sizeof(*r));
	r->takeover_us = -1;
	for (int i = 0; i < MAX_NAMES; i++)
		first[i] = last[i] = -1;
	for (int w = 0; w < opt_writers; w++)
		total += writers[w].n;
	acks = malloc(sizeof(int64_t) * (total > 0 ? total : 1));
	if (acks == NULL)
		fail("out of memory");

	for (int w = 0; w < opt_writers; w++)
	{
		r->connect_failures += writers[w].connect_failures;
		for (int i = 0; i < writers[w].n; i++)
		{
			WriteRec   *x = &writers[w].recs[i];

			r->attempted++;
			if (x->outcome == OUT_FAILED)
			{
				r->failed++;
				r->failed_present += x->present;
				continue;
			}
			if (x->outcome == OUT_INDETERMINATE)
			{
				r->indet++;
				r->indet_present += x->present;
				continue;
			}
			r->acked++;
			if (!x->present)
				r->lost++;
			if (x->server >= 0)
				r->acks_by_server[x->server]++;
			if (x->done_us < from)
				continue;
			acks[nacks++] = x->done_us;
			if (x->server == leader &&
				(r->takeover_us < 0 || x->done_us < r->takeover_us))
				r->takeover_us = x->done_us;
			if (x->server >= 0)
			{
				if (first[x->server] < 0)
					first[x->server] = x->done_us;
				if (x->done_us < first[x->server])
					first[x->server] = x->done_us;
				if (x->done_us > last[x->server])
					last[x->server] = x->done_us;
			}
		}
	}

	/*
	 * Acknowledgements by a server other than the final leader.  Those that
	 * came before the final leader's first one after the fault are commits
	 * in flight when the fault struck (a killed postmaster's backends finish
	 * the commit they are in); those after it mean two servers accepted
	 * writes at once, which must never happen.
	 */
	for (int w = 0; w < opt_writers; w++)
		for (int i = 0; i < writers[w].n; i++)
		{
			WriteRec   *x = &writers[w].recs[i];

			if (x->outcome != OUT_ACK || x->done_us < from || x->server == leader)
				continue;
			if (r->takeover_us >= 0 && x->done_us > r->takeover_us)
				r->nonleader_after_takeover++;
			else
				r->acks_before_takeover++;
		}

	/* longest stretch without an acknowledgement, from the fault to the stop */
	qsort(acks, nacks, sizeof(int64_t), cmp_i64);
	prev = from;
	for (long i = 0; i < nacks; i++)
	{
		if (acks[i] - prev > r->max_gap_us)
			r->max_gap_us = acks[i] - prev;
		prev = acks[i];
	}
	if (stop_us - prev > r->max_gap_us)
		r->max_gap_us = stop_us - prev;
	free(acks);

	/* two servers whose acknowledgement windows after the fault overlap */
	for (int a = 0; a < MAX_NAMES; a++)
		for (int b = a + 1; b < MAX_NAMES; b++)
			if (first[a] >= 0 && first[b] >= 0 &&
				first[a] <= last[b] && first[b] <= last[a])
				r->overlapping = true;
}

static void
handle_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"servers", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'r'},
		{"writers", required_argument, NULL, 'w'},
		{"duration", required_argument, NULL, 'D'},
		{"fault-at", required_argument, NULL, 'f'},
		{"fault-cmd", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"table", required_argument, NULL, 'T'},
		{"csv", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	opterr = 0;					/* our own messages */
	while ((c = getopt_long(argc, argv, "hqV", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt_dsn = optarg;
				break;
			case 's':
				opt_servers = optarg;
				break;
			case 'r':
				opt_rate = parse_number(optarg, "--rate", 0.1, 100000);
				break;
			case 'w':
				opt_writers = parse_int(optarg, "--writers", 1, 1000);
				break;
			case 'D':
				opt_duration = parse_number(optarg, "--duration", 0.1, 86400);
				break;
			case 'f':
				opt_fault_at = parse_number(optarg, "--fault-at", 0, 86400);
				break;
			case 'c':
				opt_fault_cmd = optarg;
				break;
			case 't':
				opt_timeout_ms = parse_int(optarg, "--timeout", 1, 3600000);
				break;
			case 'T':
				opt_table = optarg;
				break;
			case 'o':
				opt_csv = optarg;
				break;
			case 'q':
				opt_quiet = true;
				break;
			case 'h':
				usage();
				exit(EXIT_OK);
			case 'V':
				printf("pg_autoha_drill (pg_autoha) %s\n", DRILL_VERSION);
				exit(EXIT_OK);
			default:
				if (optopt)
				{
					const struct option *o;

					for (o = longopts; o->name && o->val != optopt; o++)
						;
					if (o->name)
						fail("option --%s needs a value (try --help)", o->name);
					fail("unknown option -%c (try --help)", optopt);
				}
				fail("unknown option \"%s\" (try --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		fail("unexpected argument \"%s\" (try --help)", argv[optind]);
	if (opt_dsn == NULL)
		fail("--dsn is required (try --help)");
	if (opt_fault_cmd && opt_fault_at < 0)
		fail("--fault-cmd needs --fault-at");
	if (opt_fault_at >= opt_duration)
		fail("--fault-at (%g) must come before the end of --duration (%g)",
			 opt_fault_at, opt_duration);
	check_table(opt_table);
}

/* The first lost writes: which server acknowledged them, and when. */
static void
report_lost(long lost)
{
	int			shown = 0;

	for (int w = 0; w < opt_writers && shown < 10; w++)
		for (int i = 0; i < writers[w].n && shown < 10; i++)
		{
			const WriteRec *x = &writers[w].recs[i];

			if (x->outcome != OUT_ACK || x->present)
				continue;
			printf("    id %" PRId64 " acknowledged by %s at %.3f s", x->id,
				   x->server >= 0 ? names[x->server] : "?", x->done_us / 1e6);
			if (fault_us >= 0)
				printf(" (%+.0f ms from the fault)", (x->done_us - fault_us) / 1000.0);
			printf("\n");
			shown++;
		}
	if (lost > shown)
		printf("    ... and %ld more\n", lost - shown);
}

static void
report(const Result *r, int leader, long long nfound, const char *fault_status)
{
	char		status_word[128];
	bool		two_primaries = two_primary_rounds > 0;

	printf("\npg_autoha_drill report\n");
	printf("  run                    %.1f s, %d writers, %g writes/s, timeout %d ms, table %s\n",
		   opt_duration, opt_writers, opt_rate, opt_timeout_ms, opt_table);
	if (fault_us >= 0 && opt_fault_cmd)
		printf("  fault                  at %.1f s: command %s, took %.0f ms (times below count from its start)\n",
			   opt_fault_at, fault_status, fault_took_us / 1000.0);
	else if (fault_us >= 0)
		printf("  fault                  at %.1f s (marker only)\n", opt_fault_at);
	printf("  attempted              %ld\n", r->attempted);
	printf("  acknowledged           %ld\n", r->acked);
	printf("  failed                 %ld (the server refused: not written%s)\n",
		   r->failed, r->failed_present ? "; BUT SOME ARE PRESENT" : "");
	printf("  indeterminate          %ld (timed out or connection lost; %ld of them committed)\n",
		   r->indet, r->indet_present);
	printf("  LOST ACKNOWLEDGED      %ld\n", r->lost);
	report_lost(r->lost);
	printf("  connect failures       %ld\n", r->connect_failures);
	printf("  leader at the audit    %s (%lld rows of this run)\n", name_of(leader), nfound);
	printf("  longest gap without an acknowledged write after the %s: %.0f ms\n",
		   fault_us >= 0 ? "fault" : "start", r->max_gap_us / 1000.0);
	if (r->takeover_us >= 0)
		printf("  first acknowledgement by %s after the %s: %.0f ms after it\n",
			   name_of(leader), fault_us >= 0 ? "fault" : "start",
			   (r->takeover_us - (fault_us >= 0 ? fault_us : 0)) / 1000.0);
	printf("  acknowledged by another server before that: %ld (commits in flight at the fault)\n",
		   r->acks_before_takeover);
	printf("  ACKNOWLEDGED BY ANOTHER SERVER AFTER THAT: %ld (two servers accepting writes)\n",
		   r->nonleader_after_takeover);
	printf("  two writable primaries in one sampling round: %s (%d of %d rounds",
		   two_primaries ? "YES" : "no", two_primary_rounds, sample_rounds);
	if (two_primaries)
		printf(", first at %.1f s", first_two_primary_s);
	printf(")\n");
	printf("  two servers acknowledging in overlapping windows after the %s: %s\n",
		   fault_us >= 0 ? "fault" : "start", r->overlapping ? "YES" : "no");
	printf("  acknowledgements per server:");
	for (int i = 0; i < nnames; i++)
		printf(" %s=%ld", names[i], r->acks_by_server[i]);
	printf("\n");
	for (int w = 0; w < opt_writers; w++)
		if (writers[w].last_error[0])
			printf("  writer %d last error: %s\n", w, writers[w].last_error);

	/* the status goes into a key=value line: no spaces */
	snprintf(status_word, sizeof(status_word), "%s", opt_fault_cmd ? fault_status : "none");
	for (char *p = status_word; *p; p++)
		if (*p == ' ')
			*p = '_';
	printf("drill: attempted=%ld acknowledged=%ld failed=%ld lost=%ld indeterminate=%ld "
		   "max_gap_after_fault_ms=%.0f inflight_acks_after_fault=%ld "
		   "nonleader_acks_after_takeover=%ld two_primaries=%s "
		   "overlapping_acks=%s fault_status=%s\n",
		   r->attempted, r->acked, r->failed, r->lost, r->indet,
		   r->max_gap_us / 1000.0, r->acks_before_takeover, r->nonleader_after_takeover,
		   two_primaries ? "yes" : "no", r->overlapping ? "yes" : "no",
		   status_word);
}

static void
cleanup(void)
{
	for (int i = 0; i < nservers; i++)
	{
		free_params(&sample_params[i]);
		free(srv_host[i]);
		free(srv_port[i]);
	}
	free_params(&write_params);
	for (int w = 0; w < opt_writers && writer_params; w++)
	{
		free_params(&writer_params[w]);
		for (int k = 0; k < 2; k++)
			free(writer_lists[w * 2 + k]);
	}
	free(writer_params);
	free(writer_lists);
	PQconninfoFree(dsn_opts);
	for (int w = 0; w < opt_writers; w++)
		free(writers[w].recs);
	free(writers);
	for (int i = 0; i < nnames; i++)
		free(names[i]);
}

int
main(int argc, char **argv)
{
	char		fault_status[128] = "not run";
	int64_t		stop_us;
	int64_t		next_progress = 1000000;
	int			cap;
	int			leader;
	long long	nfound;
	Result		r;
	struct sigaction sa;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	parse_options(argc, argv);
	setup_connections();

	if (opt_csv)
	{
		if ((csv = fopen(opt_csv, "w")) == NULL)
			fail("could not open --csv file \"%s\": %s", opt_csv, strerror(errno));
		fprintf(csv, "t_seconds,server,role,rows\n");
	}
	prepare_table();
	setup_writer_params();

	/* records: the planned writes of one writer, plus slack for rounding */
	cap = (int) (opt_rate * opt_duration / opt_writers) + 2;
	writers = calloc(opt_writers, sizeof(Writer));
	if (writers == NULL)
		fail("out of memory");
	for (int w = 0; w < opt_writers; w++)
	{
		writers[w].index = w;
		writers[w].cap = cap;
		writers[w].recs = calloc(cap, sizeof(WriteRec));
		if (writers[w].recs == NULL)
			fail("out of memory");
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* the clock of the report, the CSV and --fault-at starts here */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	end_us = (int64_t) (opt_duration * 1e6);
	if (opt_fault_at >= 0)
		fault_us = (int64_t) (opt_fault_at * 1e6);
	if (pthread_create(&sampler_thread, NULL, sampler_main, NULL) != 0)
		fail("could not start the sampler thread");
	for (int w = 0; w < opt_writers; w++)
		if (pthread_create(&writers[w].thread, NULL, writer_main, &writers[w]) != 0)
			fail("could not start writer thread %d", w);

	while (!interrupted && now_us() < end_us)
	{
		int64_t		t = now_us();
		int64_t		wake = end_us;

		if (opt_fault_cmd && fault_us >= 0 && t >= fault_us &&
			strcmp(fault_status, "not run") == 0)
		{
			if (!opt_quiet)
				printf("%6.1fs  fault: %s\n", t / 1e6, opt_fault_cmd);
			run_fault(fault_status, sizeof(fault_status));
			fault_took_us = now_us() - t;
			if (!opt_quiet)
				printf("%6.1fs  fault command: %s\n", now_us() / 1e6, fault_status);
			continue;
		}
		if (!opt_quiet && t >= next_progress)
		{
			progress(t / 1e6);
			next_progress += 1000000;
		}
		if (opt_fault_cmd && fault_us > t && strcmp(fault_status, "not run") == 0 && fault_us < wake)
			wake = fault_us;
		if (!opt_quiet && next_progress < wake)
			wake = next_progress;
		if (wake - t > 100000)
			wake = t + 100000;	/* notice signals promptly */
		sleep_us(wake - now_us());
	}

	__atomic_store_n(&stop_writers, 1, __ATOMIC_RELEASE);
	for (int w = 0; w < opt_writers; w++)
		pthread_join(writers[w].thread, NULL);
	stop_us = now_us();
	__atomic_store_n(&stop_sampler, 1, __ATOMIC_RELEASE);
	pthread_join(sampler_thread, NULL);
	if (csv && fclose(csv) != 0)
		fail("could not write --csv file \"%s\": %s", opt_csv, strerror(errno));
	csv = NULL;
	if (interrupted)
		fprintf(stderr, "pg_autoha_drill: interrupted at %.1f s, auditing what was written\n",
				stop_us / 1e6);

	leader = audit(&nfound);
	analyse(leader, stop_us, &r);
	report(&r, leader, nfound, fault_status);
	cleanup();
	return r.lost > 0 ? EXIT_LOST : EXIT_OK;
}
