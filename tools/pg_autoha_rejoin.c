/*-------------------------------------------------------------------------
 *
 * pg_autoha_rejoin.c
 *		Make a member of a pg_autoha cluster a standby of the current leader,
 *		rewinding it with pg_rewind first when it diverged.
 *
 * After a failover the old primary may hold WAL the new leader never
 * received.  pg_rewind repairs that, but only on a stopped server, and it
 * replaces the configuration files in the data directory with the source's
 * and leaves no standby.signal.  That is the one step of rejoining that
 * cannot happen inside the running server, so it lives in this command:
 *
 *	pg_autoha_rejoin -D DATADIR				(the server is stopped)
 *	pg_autoha_rejoin -D DATADIR --restart	(the server runs: stop, rejoin,
 *											 start it again as it was started)
 *
 * The first form is meant to run before the server starts (systemd
 * ExecStartPre, with a leading '-' so that a failure still lets the server
 * start: it then starts fenced and its worker decides); the second is how
 * the worker runs it, detached, when it finds its server diverged.
 *
 * What it does:
 *	1. read autoha.* from the server's own configuration (postgres -C);
 *	2. read the cluster from etcd; with no leader, or when we are the leader,
 *	   or when etcd cannot be read, change nothing (exit 0);
 *	3. check what pg_rewind needs (wal_log_hints or checksums, the leader
 *	   reachable and checkpointed on its timeline) before touching anything,
 *	   and make sure our replication slot exists on the leader;
 *	4. --restart: note how the server was started, stop it;
 *	5. pg_rewind from the leader, keeping our own *.conf files;
 *	6. standby.signal, and primary_conninfo/primary_slot_name pointing at the
 *	   leader, written exactly as the worker writes them;
 *	7. --restart: start the server again.
 *
 * Exit status: 0 done or nothing to do, 1 failed, 2 usage error or the
 * server is in the wrong state, 3 a rewind is impossible (neither
 * wal_log_hints nor data checksums).
 *
 * Plain C with libpq; it links the plain parts of the extension (etcd.c,
 * dcs.c, ha.c) so that it reads etcd exactly as the worker does.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "dcs.h"
#include "etcd.h"
#include "ha.h"

#ifndef PGBINDIR
#define PGBINDIR			"/usr/lib/postgresql/15/bin"
#endif

#define REJOIN_VERSION		"1.0"

#define EXIT_OK				0
#define EXIT_FAILED			1
#define EXIT_USAGE			2
#define EXIT_NO_REWIND		3

#define ETCD_TIMEOUT_MS		2000
#define STOP_TIMEOUT_S		"120"
#define START_TIMEOUT_S		"300"
#define CHECKPOINT_WAIT_S	60
#define MAX_CONF_FILES		64

static const char *progname = "pg_autoha_rejoin";

/* options */
static const char *opt_datadir;
static bool opt_restart;
static bool opt_dry_run;

static char bindir[PATH_MAX];
static char datadir[PATH_MAX];	/* the real data directory */

typedef struct Settings
{
	char	   *etcd_endpoints;
	char	   *namespace_;
	char	   *cluster_name;
	char	   *node_name;
	char	   *replication_conninfo;
	bool		use_pg_rewind;
	char	   *etcd_username;
	char	   *etcd_password;
	char	   *etcd_cacert;
	char	   *etcd_cert;
	char	   *etcd_key;
} Settings;

typedef struct ControlInfo
{
	char		sysid[32];
	char		state[64];
	bool		wal_log_hints;
	int			checksum_version;
} ControlInfo;

/* A configuration file kept in memory while pg_rewind runs. */
typedef struct ConfFile
{
	char		name[NAME_MAX + 1];
	char	   *data;
	size_t		len;
	mode_t		mode;
} ConfFile;

/* A growing buffer for a child's output. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		echoed;			/* bytes already echoed, line by line */
} Buf;

/* The cluster as etcd shows it; too large for the stack of a small tool. */
static ClusterView view;

/*
 * Output.  Progress goes to stdout, problems to stderr; both are line
 * buffered so that they interleave in order when they share the server's
 * log file (the worker's --restart run).
 */
static void say(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void error_msg(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void hint_msg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt,...)
{
	va_list		ap;

	fflush(stderr);
	printf("%s: ", progname);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* one line on stderr: "pg_autoha_rejoin: <kind>: ..." */
static void stderr_line(const char *kind, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
stderr_line(const char *kind, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s: ", progname, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void
error_msg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	stderr_line("error", fmt, ap);
	va_end(ap);
}

static void
hint_msg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	stderr_line("hint", fmt, ap);
	va_end(ap);
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
	{
		error_msg("out of memory");
		exit(EXIT_FAILED);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static void
buf_append(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;
		char	   *p;

		while (b->len + n + 1 > cap)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL)
		{
			error_msg("out of memory");
			exit(EXIT_FAILED);
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static void
buf_free(Buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Echo the complete lines of b not echoed yet (all of it if final). */
static void
buf_echo(Buf *b, const char *tag, bool final)
{
	while (b->echoed < b->len)
	{
		char	   *start = b->data + b->echoed;
		char	   *nl = memchr(start, '\n', b->len - b->echoed);
		size_t		n;

		if (nl == NULL && !final)
			break;
		n = nl ? (size_t) (nl - start) : b->len - b->echoed;
		say("[%s] %.*s", tag, (int) n, start);
		b->echoed += n + (nl ? 1 : 0);
	}
}

/*
 * Run a program (never through a shell, so paths and conninfo strings need
 * no quoting) and return its exit status, or -1 if it could not be run or
 * died of a signal.  With out/err, its stdout/stderr are captured there, and
 * with a tag also echoed line by line as they come; without, it shares ours.
 * c_locale runs it with LC_ALL=C, for output we parse.
 */
static int
run_program(const char *const argv[], bool c_locale, const char *tag,
			Buf *out, Buf *err)
{
	int			outpipe[2] = {-1, -1};
	int			errpipe[2] = {-1, -1};
	pid_t		pid;
	int			status;
	bool		capture = (out != NULL && err != NULL);

	fflush(stdout);
	fflush(stderr);
	if (capture && (pipe(outpipe) != 0 || pipe(errpipe) != 0))
	{
		error_msg("could not create a pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0)
	{
		error_msg("could not fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
	{
		int			devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
		{
			dup2(devnull, STDIN_FILENO);
			close(devnull);
		}
		if (capture)
		{
			dup2(outpipe[1], STDOUT_FILENO);
			dup2(errpipe[1], STDERR_FILENO);
			close(outpipe[0]);
			close(outpipe[1]);
			close(errpipe[0]);
			close(errpipe[1]);
		}
		if (c_locale)
			setenv("LC_ALL", "C", 1);
		execv(argv[0], (char *const *) argv);
		dprintf(STDERR_FILENO, "%s: could not execute \"%s\": %s\n",
				progname, argv[0], strerror(errno));
		_exit(127);
	}

	if (capture)
	{
		struct pollfd fds[2];
		Buf		   *bufs[2] = {out, err};
		int			open_fds = 2;

		close(outpipe[1]);
		close(errpipe[1]);
		fds[0].fd = outpipe[0];
		fds[1].fd = errpipe[0];
		fds[0].events = fds[1].events = POLLIN;
		while (open_fds > 0)
		{
			int			i;

			if (poll(fds, 2, -1) < 0)
			{
				if (errno == EINTR)
					continue;
				error_msg("poll failed: %s", strerror(errno));
				break;
			}
			for (i = 0; i < 2; i++)
			{
				char		chunk[4096];
				ssize_t		n;

				if (fds[i].fd < 0 || fds[i].revents == 0)
					continue;
				n = read(fds[i].fd, chunk, sizeof(chunk));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
				{
					close(fds[i].fd);
					fds[i].fd = -1;
					open_fds--;
					continue;
				}
				buf_append(bufs[i], chunk, (size_t) n);
				if (tag)
					buf_echo(bufs[i], tag, false);
			}
		}
		if (tag)
		{
			buf_echo(out, tag, true);
			buf_echo(err, tag, true);
		}
	}

	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
		{
			error_msg("waitpid failed: %s", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		error_msg("\"%s\" was terminated by signal %d", argv[0], WTERMSIG(status));
	return -1;
}

/*
 * PostgreSQL's programs live next to us when we are installed (make install
 * puts us in pg_config --bindir); when run from the build tree, fall back to
 * the bindir we were built for.
 */
static void
find_bindir(void)
{
	char		self[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0)
	{
		char	   *slash;
		char		probe[PATH_MAX + 16];

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL)
		{
			*slash = '\0';
			snprintf(probe, sizeof(probe), "%s/postgres", self);
			if (access(probe, X_OK) == 0)
			{
				snprintf(bindir, sizeof(bindir), "%s", self);
				return;
			}
		}
	}
	snprintf(bindir, sizeof(bindir), "%s", PGBINDIR);
}

static char *
bin_path(const char *program)
{
	char		path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", bindir, program);
	return xstrdup(path);
}

static void
chomp(Buf *b)
{
	while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

/*
 * One setting as the server would see it at its next start:
 * "postgres -C name -D dir" reads postgresql.conf, postgresql.auto.conf and
 * their includes, but loads no library.  So autoha.* settings are
 * placeholders there: one set in a file prints its raw value (an empty line
 * when set to ''), one set nowhere makes postgres exit 1 with FATAL:
 * unrecognized configuration parameter.  The first call, for
 * data_directory, proved the directory and its configuration readable, so
 * a failure here means "not set" (whatever language lc_messages makes the
 * message), and the extension's default applies.
 *
 * Settings given on the server's command line (postmaster.opts) are not
 * seen; pg_autoha's belong in the configuration files anyway.
 */
static char *
read_setting(const char *name, const char *dflt)
{
	const char *argv[6];
	Buf			out = {0};
	Buf			err = {0};
	int			rc;
	char	   *value;

	argv[0] = bin_path("postgres");
	argv[1] = "-C";
	argv[2] = name;
	argv[3] = "-D";
	argv[4] = opt_datadir;
	argv[5] = NULL;
	rc = run_program(argv, true, NULL, &out, &err);
	free((void *) argv[0]);
	if (rc == 0)
	{
		chomp(&out);
		value = xstrdup(out.data ? out.data : "");
	}
	else
		value = dflt ? xstrdup(dflt) : NULL;
	buf_free(&out);
	buf_free(&err);
	return value;
}

/* true/false per PostgreSQL's parse_bool (unique prefixes allowed) */
static bool
parse_bool_setting(const char *value, bool *result)
{
	static const struct
	{
		const char *word;
		size_t		min;
		bool		val;
	}			words[] = {
		{"true", 1, true}, {"false", 1, false}, {"yes", 1, true},
		{"no", 1, false}, {"on", 2, true}, {"off", 2, false},
		{"1", 1, true}, {"0", 1, false}
	};
	size_t		len = strlen(value);
	size_t		i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
	{
		if (len >= words[i].min && len <= strlen(words[i].word) &&
			strncasecmp(value, words[i].word, len) == 0)
		{
			*result = words[i].val;
			return true;
		}
	}
	return false;
}

static int
read_settings(Settings *s)
{
	char		host[AUTOHA_NAME_LEN];
	char	   *rewind;

	/* the extension's default node name: the host name */
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "postgresql");
	host[sizeof(host) - 1] = '\0';

	s->etcd_endpoints = read_setting("autoha.etcd_endpoints", "");
	s->namespace_ = read_setting("autoha.namespace", "/service");
	s->cluster_name = read_setting("autoha.cluster_name", "pg_autoha");
	s->node_name = read_setting("autoha.node_name", host);
	s->replication_conninfo = read_setting("autoha.replication_conninfo",
										   "user=postgres");
	s->etcd_username = read_setting("autoha.etcd_username", "");
	s->etcd_password = read_setting("autoha.etcd_password", "");
	s->etcd_cacert = read_setting("autoha.etcd_cacert", "");
	s->etcd_cert = read_setting("autoha.etcd_cert", "");
	s->etcd_key = read_setting("autoha.etcd_key", "");

	rewind = read_setting("autoha.use_pg_rewind", "on");
	if (!parse_bool_setting(rewind, &s->use_pg_rewind))
	{
		error_msg("autoha.use_pg_rewind is \"%s\", which is not a boolean", rewind);
		hint_msg("Set it to on or off in postgresql.conf.");
		return EXIT_USAGE;
	}
	free(rewind);

	if (s->node_name[0] == '\0' || strlen(s->node_name) >= AUTOHA_NAME_LEN)
	{
		error_msg("autoha.node_name \"%s\" is not usable as a member name",
				  s->node_name);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/*
 * Where the data live.  Like pg_ctl, accept a configuration-only directory
 * for -D: its postgresql.conf names the data directory.
 */
static int
resolve_datadir(void)
{
	const char *argv[6];
	Buf			out = {0};
	Buf			err = {0};
	int			rc;

	argv[0] = bin_path("postgres");
	argv[1] = "-C";
	argv[2] = "data_directory";
	argv[3] = "-D";
	argv[4] = opt_datadir;
	argv[5] = NULL;
	rc = run_program(argv, true, NULL, &out, &err);
	if (rc != 0)
	{
		chomp(&err);
		error_msg("could not read the configuration of \"%s\" with %s -C: %s",
				  opt_datadir, argv[0],
				  err.len > 0 ? err.data : "it did not run");
		hint_msg("-D must name a PostgreSQL data directory (or a directory with its postgresql.conf).");
		free((void *) argv[0]);
		return EXIT_USAGE;
	}
	free((void *) argv[0]);
	chomp(&out);
	snprintf(datadir, sizeof(datadir), "%s", out.len > 0 ? out.data : opt_datadir);
	buf_free(&out);
	buf_free(&err);
	return EXIT_OK;
}

/* The value after "label:" in pg_controldata's output, or NULL. */
static const char *
controldata_value(const char *text, const char *label, char *buf, size_t buflen)
{
	const char *p = text;
	size_t		len = strlen(label);

	while (p != NULL && *p)
	{
		if (strncmp(p, label, len) == 0 && p[len] == ':')
		{
			const char *v = p + len + 1;
			size_t		n;

			while (*v == ' ' || *v == '\t')
				v++;
			n = strcspn(v, "\n");
			if (n >= buflen)
				n = buflen - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static int
read_controldata(ControlInfo *ci)
{
	const char *argv[3];
	Buf			out = {0};
	Buf			err = {0};
	char		v[128];
	int			rc;

	memset(ci, 0, sizeof(*ci));
	argv[0] = bin_path("pg_controldata");
	argv[1] = datadir;
	argv[2] = NULL;
	rc = run_program(argv, true, NULL, &out, &err);
	free((void *) argv[0]);
	if (rc != 0 || out.data == NULL)
	{
		chomp(&err);
		error_msg("pg_controldata failed on \"%s\": %s", datadir,
				  err.len > 0 ? err.data : "no output");
		buf_free(&out);
		buf_free(&err);
		return EXIT_FAILED;
	}
	if (controldata_value(out.data, "Database system identifier", v, sizeof(v)))
		snprintf(ci->sysid, sizeof(ci->sysid), "%s", v);
	if (controldata_value(out.data, "Database cluster state", v, sizeof(v)))
		snprintf(ci->state, sizeof(ci->state), "%s", v);
	if (controldata_value(out.data, "wal_log_hints setting", v, sizeof(v)))
		ci->wal_log_hints = (strcmp(v, "on") == 0);
	if (controldata_value(out.data, "Data page checksum version", v, sizeof(v)))
		ci->checksum_version = atoi(v);
	buf_free(&out);
	buf_free(&err);
	if (ci->sysid[0] == '\0')
	{
		error_msg("could not find the system identifier in the output of pg_controldata \"%s\"",
				  datadir);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* 'R', 'S', ... from /proc/PID/stat; 'Z' for a zombie, 0 if unknown */
static char
process_state(pid_t pid)
{
	char		path[64];
	char		stat[512];
	char	   *close_paren;
	FILE	   *f;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* "pid (comm) S ...", and comm may contain ") " */
	close_paren = strrchr(stat, ')');
	if (close_paren == NULL || close_paren[1] != ' ')
		return 0;
	return close_paren[2];
}

/*
 * The PID in postmaster.pid if that process is alive, else 0.  A postmaster
 * that died but is not reaped yet (a zombie, for as long as its parent
 * takes) counts as stopped; wait a little for it to go, because postgres
 * itself (pg_rewind's single-user run, the next start) refuses to start
 * while that PID exists.
 */
static pid_t
running_postmaster(void)
{
	char		path[PATH_MAX + 32];
	FILE	   *f;
	long		pid = 0;
	int			waited_ms = 0;

	snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	/* negative: a single-user backend, which is as busy as a postmaster */
	if (pid < 0)
		pid = -pid;
	if (pid <= 0)
		return 0;
	while (kill((pid_t) pid, 0) == 0 || errno == EPERM)
	{
		if (process_state((pid_t) pid) != 'Z')
			return (pid_t) pid;
		if (waited_ms == 0)
			say("the postmaster (PID %ld) has exited but is not reaped yet; waiting for it to go",
				pid);
		if (waited_ms >= 10000)
			break;
		usleep(100000);
		waited_ms += 100;
	}
	return 0;
}

/*
 * Read the cluster from etcd into view.  Returns false with the reason in
 * why when it cannot be read.
 */
static bool
read_cluster(const Settings *s, char *prefix, size_t prefixlen,
			 char *why, size_t whylen)
{
	EtcdClient *client;
	EtcdRangeResult range;
	EtcdStatus	st;
	char		errbuf[512];
	int			nbad = 0;

	etcd_set_allocator(malloc, free);
	client = etcd_client_create(s->etcd_endpoints, ETCD_TIMEOUT_MS,
								errbuf, sizeof(errbuf));
	if (client == NULL)
	{
		snprintf(why, whylen, "autoha.etcd_endpoints is unusable: %s", errbuf);
		return false;
	}
	etcd_client_set_auth(client, s->etcd_username, s->etcd_password);
	etcd_client_set_tls(client, s->etcd_cacert, s->etcd_cert, s->etcd_key);

	dcs_cluster_prefix(prefix, prefixlen, s->namespace_, s->cluster_name);
	memset(&range, 0, sizeof(range));
	st = etcd_range(client, prefix, true, &range);
	if (st != ETCD_OK)
	{
		snprintf(why, whylen, "could not read %s from etcd (%s): %s",
				 prefix, etcd_status_name(st), etcd_last_error(client));
		etcd_client_destroy(client);
		return false;
	}
	dcs_view_from_kvs(prefix, &range, &view, &nbad, errbuf, sizeof(errbuf));
	if (nbad > 0)
		say("ignored %d malformed key(s) under %s: %s", nbad, prefix, errbuf);
	etcd_range_result_free(&range);
	etcd_client_destroy(client);
	return true;
}

/*
 * Append key='value' quoted for libpq: the same quoting as the worker's
 * conninfo_for() in node.c, whose output we must reproduce byte for byte.
 */
static void
append_conninfo_value(Buf *b, const char *key, const char *value)
{
	const char *p;

	if (b->len > 0)
		buf_puts(b, " ");
	buf_puts(b, key);
	buf_puts(b, "='");
	for (p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_puts(b, "'");
}

/*
 * primary_conninfo for following leader, exactly as node.c's conninfo_for()
 * builds it: the worker compares this string with its primary_conninfo to
 * know whom it follows, and rewrites it (with a reload) when they differ.
 */
static char *
follow_conninfo(const MemberInfo *leader, const Settings *s)
{
	Buf			b = {0};
	char		port[16];

	snprintf(port, sizeof(port), "%d", leader->port);
	append_conninfo_value(&b, "host", leader->host);
	append_conninfo_value(&b, "port", port);
	append_conninfo_value(&b, "application_name", s->node_name);
	if (s->replication_conninfo[0] != '\0')
	{
		buf_puts(&b, " ");
		buf_puts(&b, s->replication_conninfo);
	}
	return b.data;
}

/*
 * The normal (not replication) connection pg_rewind and we use to read the
 * leader.  autoha.replication_conninfo comes last so that it can override
 * what it needs to (user, password, sslmode, even dbname).
 */
static char *
source_conninfo(const MemberInfo *leader, const Settings *s)
{
	Buf			b = {0};
	char		port[16];

	snprintf(port, sizeof(port), "%d", leader->port);
	append_conninfo_value(&b, "host", leader->host);
	append_conninfo_value(&b, "port", port);
	append_conninfo_value(&b, "dbname", "postgres");
	append_conninfo_value(&b, "application_name", "pg_autoha_rejoin");
	append_conninfo_value(&b, "connect_timeout", "10");
	if (s->replication_conninfo[0] != '\0')
	{
		buf_puts(&b, " ");
		buf_puts(&b, s->replication_conninfo);
	}
	return b.data;
}

/* libpq's last error without its trailing newline(s) */
static const char *
conn_error(PGconn *conn)
{
	static char msg[1024];
	size_t		n;

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return msg;
}

/*
 * Make sure our replication slot exists on the leader.  After pg_rewind the
 * server must stream from the leader before it is consistent (pg_rewind sets
 * its minimum recovery point to the leader's WAL position at the end of the
 * copy), and until it is consistent its worker does not run, so it never
 * publishes itself and the leader's worker never creates the slot that
 * primary_slot_name names: the standby would wait forever.  The leader's
 * worker creates slots for every member anyway, so creating ours now, before
 * pg_rewind, only does that early, and keeps the WAL we will need.  A
 * failure is reported and not fatal: the slot may yet come from elsewhere.
 */
static void
ensure_slot(PGconn *conn, const MemberInfo *leader, const char *slot)
{
	const char *params[1] = {slot};
	PGresult   *res;
	bool		exists;

	res = PQexecParams(conn,
					   "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		say("warning: could not look up replication slot \"%s\" on the leader: %s",
			slot, conn_error(conn));
		PQclear(res);
		return;
	}
	exists = (strcmp(PQgetvalue(res, 0, 0), "t") == 0);
	PQclear(res);
	if (exists)
		return;
	if (opt_dry_run)
	{
		say("would create replication slot \"%s\" on the leader \"%s\"", slot, leader->name);
		return;
	}

	res = PQexecParams(conn,
					   "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		say("created replication slot \"%s\" on the leader \"%s\", which this server streams through",
			slot, leader->name);
	else
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* the leader's worker may have been quicker: 42710 duplicate_object */
		if (sqlstate == NULL || strcmp(sqlstate, "42710") != 0)
		{
			say("warning: could not create replication slot \"%s\" on the leader \"%s\": %s",
				slot, leader->name, conn_error(conn));
			say("warning: without it this server may never become consistent: create it there with SELECT pg_create_physical_replication_slot('%s', true)",
				slot);
		}
	}
	PQclear(res);
}

/*
 * Make sure pg_rewind will see the leader's timeline.  PostgreSQL 15's
 * pg_rewind takes the source's timeline from its control file, which a
 * promoted server updates only at its first checkpoint after promotion
 * (a spread one, which can take minutes); before that pg_rewind reports
 * "no rewind required" for a target that did diverge.  So connect, and if
 * the leader's last checkpoint is on an older timeline than its WAL, ask
 * for a CHECKPOINT and wait until the control file shows the timeline.
 * Connecting also proves the leader reachable before we stop anything.
 */
static int
check_leader(const char *conninfo, const MemberInfo *leader, const char *slot)
{
	PGconn	   *conn;
	time_t		deadline = time(NULL) + CHECKPOINT_WAIT_S;
	bool		requested = false;
	int			rc = EXIT_FAILED;

	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		error_msg("could not connect to the leader \"%s\" at %s:%d: %s",
				  leader->name, leader->host, leader->port,
				  conn_error(conn));
		hint_msg("Nothing was changed.  pg_rewind connects to the leader's database postgres with autoha.replication_conninfo: check that the leader is up at that address and that its pg_hba.conf lets that user in (a password can go in ~/.pgpass).");
		PQfinish(conn);
		return EXIT_FAILED;
	}

	for (;;)
	{
		PGresult   *res;
		bool		in_recovery;
		long		ckpt_tli;
		long		wal_tli;

		res = PQexec(conn,
					 "SELECT pg_catalog.pg_is_in_recovery(), "
					 "(SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()), "
					 "CASE WHEN pg_catalog.pg_is_in_recovery() THEN 0 ELSE "
					 "('x' || substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int END");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			error_msg("could not read the timeline of the leader \"%s\": %s",
					  leader->name, conn_error(conn));
			hint_msg("Nothing was changed.  The user of autoha.replication_conninfo needs what pg_rewind needs on the leader: be a superuser, or see \"pg_rewind\" in the PostgreSQL documentation (plus EXECUTE on pg_control_checkpoint(), the pg_checkpoint role and REPLICATION for the slot).");
			PQclear(res);
			break;
		}
		in_recovery = (strcmp(PQgetvalue(res, 0, 0), "t") == 0);
		ckpt_tli = atol(PQgetvalue(res, 0, 1));
		wal_tli = atol(PQgetvalue(res, 0, 2));
		PQclear(res);

		if (!in_recovery && ckpt_tli == wal_tli)
		{
			if (requested)
				say("the leader's control file now shows timeline %ld", wal_tli);
			ensure_slot(conn, leader, slot);
			rc = EXIT_OK;
			break;
		}
		if (opt_dry_run)
		{
			if (in_recovery)
				say("the leader \"%s\" is still in recovery: a real run would wait for it",
					leader->name);
			else
				say("the leader \"%s\" has not checkpointed on timeline %ld yet: a real run would ask it for a CHECKPOINT",
					leader->name, wal_tli);
			ensure_slot(conn, leader, slot);
			rc = EXIT_OK;
			break;
		}
		if (!in_recovery && !requested)
		{
			say("the leader \"%s\" has not checkpointed since it began timeline %ld: asking it for a CHECKPOINT so that pg_rewind sees that timeline",
				leader->name, wal_tli);
			res = PQexec(conn, "CHECKPOINT");
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				say("CHECKPOINT on the leader failed (%s); waiting for its own checkpoint",
					conn_error(conn));
			PQclear(res);
			requested = true;
			continue;
		}
		if (time(NULL) >= deadline)
		{
			if (in_recovery)
				error_msg("the leader \"%s\" is still in recovery after %d s", leader->name,
						  CHECKPOINT_WAIT_S);
			else
				error_msg("the leader \"%s\" has still not checkpointed on timeline %ld after %d s",
						  leader->name, wal_tli, CHECKPOINT_WAIT_S);
			hint_msg("Nothing was changed.  Run CHECKPOINT on the leader, then run pg_autoha_rejoin again.");
			break;
		}
		sleep(1);
	}
	PQfinish(conn);
	return rc;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool
read_whole_file(const char *path, char **data, size_t *len)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	Buf			b = {0};
	char		chunk[8192];
	ssize_t		n;

	if (fd < 0)
		return false;
	buf_append(&b, "", 0);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			buf_free(&b);
			return false;
		}
		buf_append(&b, chunk, (size_t) n);
	}
	close(fd);
	*data = b.data;
	*len = b.len;
	return true;
}

static bool
fsync_path(const char *path, bool directory)
{
	int			fd = open(path, (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	bool		ok;

	if (fd < 0)
		return false;
	ok = (fsync(fd) == 0);
	close(fd);
	return ok;
}

/*
 * Replace dir/name with data through a temporary file and rename(), so that
 * a crash leaves the old or the new file, never half of one.
 */
static bool
write_file_durably(const char *dir, const char *name, const char *data,
				   size_t len, mode_t mode)
{
	char		path[PATH_MAX + NAME_MAX + 2];
	char		tmp[PATH_MAX + NAME_MAX + 32];
	int			fd;
	size_t		done = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.pg_autoha_rejoin.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
	{
		error_msg("could not create \"%s\": %s", tmp, strerror(errno));
		return false;
	}
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			error_msg("could not write \"%s\": %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return false;
		}
		done += (size_t) n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0)
	{
		error_msg("could not write \"%s\": %s", tmp, strerror(errno));
		unlink(tmp);
		return false;
	}
	if (rename(tmp, path) != 0)
	{
		error_msg("could not rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

/*
 * Keep every regular *.conf file of the data directory's top level in
 * memory: pg_rewind replaces them with the leader's (its port, its
 * primary_conninfo...), and this server must come back with its own.
 */
static int
backup_conf_files(ConfFile *files, int max)
{
	DIR		   *dir = opendir(datadir);
	struct dirent *de;
	int			n = 0;

	if (dir == NULL)
	{
		error_msg("could not open directory \"%s\": %s", datadir, strerror(errno));
		return -1;
	}
	while ((de = readdir(dir)) != NULL)
	{
		char		path[PATH_MAX + NAME_MAX + 2];
		struct stat st;

		if (!ends_with(de->d_name, ".conf"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", datadir, de->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == max)
		{
			error_msg("more than %d *.conf files in \"%s\"", max, datadir);
			closedir(dir);
			return -1;
		}
		snprintf(files[n].name, sizeof(files[n].name), "%s", de->d_name);
		files[n].mode = st.st_mode & 07777;
		if (!read_whole_file(path, &files[n].data, &files[n].len))
		{
			error_msg("could not read \"%s\": %s", path, strerror(errno));
			closedir(dir);
			return -1;
		}
		n++;
	}
	closedir(dir);
	return n;
}

/*
 * Put our *.conf files back byte for byte, and remove any *.conf that
 * pg_rewind brought from the leader and we did not have: an include_dir or
 * include_if_exists of ours would otherwise start reading the leader's
 * settings.  Returns false if anything could not be restored.
 */
static bool
restore_conf_files(const ConfFile *files, int nfiles)
{
	DIR		   *dir;
	struct dirent *de;
	bool		ok = true;
	int			i;

	for (i = 0; i < nfiles; i++)
		if (!write_file_durably(datadir, files[i].name, files[i].data,
								files[i].len, files[i].mode))
			ok = false;

	dir = opendir(datadir);
	if (dir == NULL)
	{
		error_msg("could not open directory \"%s\": %s", datadir, strerror(errno));
		return false;
	}
	while ((de = readdir(dir)) != NULL)
	{
		char		path[PATH_MAX + NAME_MAX + 2];
		struct stat st;
		bool		ours = false;

		if (!ends_with(de->d_name, ".conf"))
			continue;
		for (i = 0; i < nfiles && !ours; i++)
			ours = (strcmp(files[i].name, de->d_name) == 0);
		snprintf(path, sizeof(path), "%s/%s", datadir, de->d_name);
		if (ours || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (unlink(path) != 0)
		{
			error_msg("could not remove \"%s\": %s", path, strerror(errno));
			ok = false;
		}
		else
			say("removed \"%s\", which pg_rewind copied from the leader", de->d_name);
	}
	closedir(dir);
	fsync_path(datadir, true);
	return ok;
}

/* name followed by '=', white space or the end: a line setting name */
static bool
line_sets(const char *line, const char *name)
{
	size_t		n = strlen(name);

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncasecmp(line, name, n) != 0)
		return false;
	line += n;
	return *line == '\0' || *line == '=' || *line == ' ' || *line == '\t' ||
		*line == '\n' || *line == '\r';
}

/* value quoted for a .conf file, as ALTER SYSTEM writes it */
static void
append_conf_quoted(Buf *b, const char *value)
{
	const char *p;

	buf_puts(b, "'");
	for (p = value; *p; p++)
	{
		/* guc-file.l reads '' as ' and \\ as \ inside quotes */
		if (*p == '\'' || *p == '\\')
			buf_append(b, p, 1);
		buf_append(b, p, 1);
	}
	buf_puts(b, "'");
}

/*
 * standby.signal, and primary_conninfo / primary_slot_name in
 * postgresql.auto.conf (where ALTER SYSTEM, and so the worker, keeps them;
 * it is read last, so it wins over postgresql.conf).
 */
static bool
make_standby(const char *conninfo, const char *slot)
{
	char		path[PATH_MAX + 32];
	char	   *old = NULL;
	size_t		oldlen = 0;
	mode_t		mode = 0600;
	struct stat st;
	Buf			b = {0};
	char	   *line;
	int			fd;

	snprintf(path, sizeof(path), "%s/postgresql.auto.conf", datadir);
	if (stat(path, &st) == 0)
	{
		mode = st.st_mode & 07777;
		if (!read_whole_file(path, &old, &oldlen))
		{
			error_msg("could not read \"%s\": %s", path, strerror(errno));
			return false;
		}
	}
	else
		old = xstrdup("# Do not edit this file manually!\n"
					  "# It will be overwritten by the ALTER SYSTEM command.\n");

	/* every line but those setting what we set */
	buf_append(&b, "", 0);
	for (line = old; *line;)
	{
		char	   *nl = strchr(line, '\n');
		size_t		n = nl ? (size_t) (nl - line + 1) : strlen(line);

		if (!line_sets(line, "primary_conninfo") &&
			!line_sets(line, "primary_slot_name"))
		{
			buf_append(&b, line, n);
			if (nl == NULL)
				buf_puts(&b, "\n");
		}
		line += n;
	}
	free(old);
	buf_puts(&b, "primary_conninfo = ");
	append_conf_quoted(&b, conninfo);
	buf_puts(&b, "\nprimary_slot_name = ");
	append_conf_quoted(&b, slot);
	buf_puts(&b, "\n");

	if (!write_file_durably(datadir, "postgresql.auto.conf", b.data, b.len, mode))
	{
		buf_free(&b);
		return false;
	}
	buf_free(&b);

	snprintf(path, sizeof(path), "%s/standby.signal", datadir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fsync(fd) != 0)
	{
		error_msg("could not create \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	fsync_path(datadir, true);
	return true;
}

/*
 * How the running server was started, so that --restart starts it the same
 * way: the arguments in postmaster.opts (what pg_ctl restart uses too) and
 * the file its stderr goes to, if that is a regular file (pg_ctl -l).
 */
static void
remember_start(pid_t pid, char **opts, char **logfile)
{
	char		path[PATH_MAX + 32];
	char		target[PATH_MAX];
	char	   *data;
	size_t		len;
	ssize_t		n;
	struct stat st;

	*opts = NULL;
	*logfile = NULL;

	snprintf(path, sizeof(path), "%s/postmaster.opts", datadir);
	if (read_whole_file(path, &data, &len))
	{
		char	   *nl = strchr(data, '\n');
		char	   *args;

		if (nl)
			*nl = '\0';
		/* the binary, then each argument in double quotes */
		args = strstr(data, " \"");
		if (args != NULL)
			*opts = xstrdup(args + 1);
		free(data);
	}

	snprintf(path, sizeof(path), "/proc/%d/fd/2", (int) pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0)
	{
		target[n] = '\0';
		if (target[0] == '/' && stat(target, &st) == 0 && S_ISREG(st.st_mode))
			*logfile = xstrdup(target);
	}
}

static int
stop_server(void)
{
	const char *argv[] = {NULL, "stop", "-D", opt_datadir, "-m", "fast", "-w",
	"-t", STOP_TIMEOUT_S, NULL};
	Buf			out = {0};
	Buf			err = {0};
	int			rc;

	argv[0] = bin_path("pg_ctl");
	rc = run_program(argv, false, "pg_ctl", &out, &err);
	free((void *) argv[0]);
	buf_free(&out);
	buf_free(&err);
	return rc;
}

static int
start_server(const char *opts, const char *logfile)
{
	const char *argv[16];
	int			i = 0;
	Buf			out = {0};
	Buf			err = {0};
	int			rc;

	argv[i++] = bin_path("pg_ctl");
	argv[i++] = "start";
	argv[i++] = "-D";
	argv[i++] = opt_datadir;
	argv[i++] = "-w";
	argv[i++] = "-t";
	argv[i++] = START_TIMEOUT_S;
	if (logfile)
	{
		argv[i++] = "-l";
		argv[i++] = logfile;
	}
	if (opts)
	{
		argv[i++] = "-o";
		argv[i++] = opts;
	}
	argv[i] = NULL;

	/*
	 * Without a log file the postmaster keeps pg_ctl's stdout and stderr
	 * open for good, so don't give it a pipe of ours: share our own.
	 */
	if (logfile)
		rc = run_program(argv, false, "pg_ctl", &out, &err);
	else
		rc = run_program(argv, false, NULL, NULL, NULL);
	free((void *) argv[0]);
	buf_free(&out);
	buf_free(&err);
	return rc;
}

/* 0 ok, 1 failed; *no_rewind_needed set from pg_rewind's own words */
static int
run_pg_rewind(const char *conninfo, bool *no_rewind_needed)
{
	char	   *source = xmalloc(strlen(conninfo) + 32);
	const char *argv[5];
	Buf			out = {0};
	Buf			err = {0};
	int			rc;

	sprintf(source, "--source-server=%s", conninfo);
	argv[0] = bin_path("pg_rewind");
	argv[1] = "-D";
	argv[2] = datadir;
	argv[3] = source;
	argv[4] = NULL;
	rc = run_program(argv, true, "pg_rewind", &out, &err);
	*no_rewind_needed = (out.data && strstr(out.data, "no rewind required")) ||
		(err.data && strstr(err.data, "no rewind required"));
	free((void *) argv[0]);
	free(source);
	buf_free(&out);
	buf_free(&err);
	return rc == 0 ? 0 : 1;
}

/*
 * Only one of us per data directory: a second run (a hand-run one while the
 * worker's runs, say) would stop, rewind or start under the first one's
 * feet.  flock() on the directory itself, because pg_rewind deletes any
 * file in it that the leader does not have.  The descriptor is close-on-
 * exec so that the server we start does not inherit the lock.
 */
static bool
lock_datadir(void)
{
	int			fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
	{
		error_msg("could not open directory \"%s\": %s", datadir, strerror(errno));
		return false;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		if (errno == EWOULDBLOCK)
			error_msg("another pg_autoha_rejoin is working on \"%s\"", datadir);
		else
			error_msg("could not lock directory \"%s\": %s", datadir, strerror(errno));
		close(fd);
		return false;
	}
	/* held until we exit */
	return true;
}

static void
usage(void)
{
	printf("%s makes this server a standby of the pg_autoha cluster's leader,\n"
		   "rewinding it with pg_rewind first if it diverged (an old primary).\n\n",
		   progname);
	printf("Usage:\n  %s -D DATADIR [--restart] [--dry-run]\n\n", progname);
	printf("Options:\n");
	printf("  -D, --pgdata=DATADIR  the server's data directory (default: $PGDATA)\n");
	printf("      --restart         the server is running: stop it, rejoin, start it\n"
		   "                        again with the same options and log file\n");
	printf("  -n, --dry-run         say what would be done, change nothing\n");
	printf("  -V, --version         print the version and exit\n");
	printf("  -?, --help            show this help and exit\n\n");
	printf("Without --restart the server must be stopped: run it before starting the\n"
		   "server (e.g. systemd ExecStartPre=-%s -D DATADIR).\n"
		   "Settings (autoha.*) are read from the server's configuration files.\n"
		   "Nothing is changed when etcd cannot be read, there is no leader, or this\n"
		   "server is the leader.\n\n", progname);
	printf("Exit status: 0 done or nothing to do, 1 failed, 2 usage error or wrong\n"
		   "server state, 3 rewind impossible (needs wal_log_hints or data checksums).\n");
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"restart", no_argument, NULL, 'r'},
		{"dry-run", no_argument, NULL, 'n'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	Settings	s;
	ControlInfo ci;
	char		prefix[512];
	char		why[1024];
	char		slot[AUTOHA_NAME_LEN];
	const MemberInfo *leader;
	char	   *conninfo;
	char	   *source = NULL;
	pid_t		pid;
	char	   *opts = NULL;
	char	   *logfile = NULL;
	bool		stopped = false;
	bool		rewound = false;
	bool		no_rewind_needed = false;
	bool		rewind_failed = false;
	bool		conf_failed = false;
	ConfFile	conf[MAX_CONF_FILES];
	int			nconf = 0;
	int			c;
	int			rc;

	setvbuf(stdout, NULL, _IOLBF, 0);

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage();
		return EXIT_OK;
	}
	while ((c = getopt_long(argc, argv, "D:nV", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'D':
				opt_datadir = optarg;
				break;
			case 'r':
				opt_restart = true;
				break;
			case 'n':
				opt_dry_run = true;
				break;
			case 'V':
				printf("%s (pg_autoha) %s\n", progname, REJOIN_VERSION);
				return EXIT_OK;
			case 'h':
				usage();
				return EXIT_OK;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		error_msg("too many command-line arguments (first is \"%s\")", argv[optind]);
		fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
		return EXIT_USAGE;
	}
	if (opt_datadir == NULL)
		opt_datadir = getenv("PGDATA");
	if (opt_datadir == NULL || opt_datadir[0] == '\0')
	{
		error_msg("no data directory specified");
		hint_msg("Use -D DATADIR or set PGDATA.");
		return EXIT_USAGE;
	}

	/* postgres, pg_ctl and pg_rewind all refuse root */
	if (geteuid() == 0)
	{
		error_msg("cannot be run as root");
		hint_msg("Run it as the operating system user that owns the data directory, e.g. runuser -u postgres -- %s -D %s",
				 progname, opt_datadir);
		return EXIT_USAGE;
	}

	/* ---- the server's state, which only the caller can fix */
	find_bindir();
	if ((rc = resolve_datadir()) != EXIT_OK)
		return rc;
	if (!opt_dry_run && !lock_datadir())
		return EXIT_USAGE;
	pid = running_postmaster();
	if (pid != 0 && !opt_restart)
	{
		error_msg("the server in \"%s\" is running (PID %d)", datadir, (int) pid);
		hint_msg("pg_rewind needs it stopped: stop it first (pg_ctl stop -D %s), or run with --restart to stop it, rejoin and start it again.",
				 opt_datadir);
		return EXIT_USAGE;
	}
	if (pid == 0 && opt_restart)
	{
		error_msg("the server in \"%s\" is not running, and --restart works on a running server",
				  datadir);
		hint_msg("Run it without --restart, then start the server.");
		return EXIT_USAGE;
	}

	/* ---- 1. settings */
	if ((rc = read_settings(&s)) != EXIT_OK)
		return rc;
	say("data directory \"%s\", member \"%s\" of cluster \"%s\"%s",
		datadir, s.node_name, s.cluster_name,
		pid ? " (server running)" : " (server stopped)");

	/* ---- 2. the leader, from etcd */
	if (s.etcd_endpoints[0] == '\0')
	{
		say("nothing to do: autoha.etcd_endpoints is not set");
		return EXIT_OK;
	}
	if (!read_cluster(&s, prefix, sizeof(prefix), why, sizeof(why)))
	{
		say("%s", why);
		say("nothing to do: without etcd the leader is unknown; the server's worker decides once etcd answers");
		return EXIT_OK;
	}
	if (!view.has_leader)
	{
		say("nothing to do: cluster \"%s\" has no leader right now", s.cluster_name);
		return EXIT_OK;
	}
	if (strcmp(view.leader, s.node_name) == 0)
	{
		say("nothing to do: this server (\"%s\") is the leader", s.node_name);
		return EXIT_OK;
	}
	leader = ha_find_member(&view, view.leader);
	if (leader == NULL || leader->host[0] == '\0' || leader->port <= 0)
	{
		say("nothing to do: the leader \"%s\" has %s in etcd, so it cannot be reached",
			view.leader, leader == NULL ? "no member key" : "no address in its member key");
		return EXIT_OK;
	}
	say("the leader is \"%s\" at %s:%d", leader->name, leader->host, leader->port);

	/*
	 * The worker does nothing automatic in a paused cluster, but running this
	 * command is an explicit request: go on, and say so.
	 */
	if (view.paused)
		say("the cluster is paused (maintenance mode); rejoining anyway, as asked");

	/* ---- 3. preconditions, before anything changes */
	if ((rc = read_controldata(&ci)) != EXIT_OK)
		return rc;
	say("pg_control: cluster state \"%s\", wal_log_hints %s, data checksums %s",
		ci.state, ci.wal_log_hints ? "on" : "off",
		ci.checksum_version ? "on" : "off");
	if (view.has_initialize && view.initialize[0] != '\0' &&
		strcmp(view.initialize, ci.sysid) != 0)
	{
		error_msg("this server's system identifier is %s, but cluster \"%s\" in etcd was initialized by system %s",
				  ci.sysid, s.cluster_name, view.initialize);
		hint_msg("This data directory belongs to another cluster: check autoha.cluster_name, or re-create it from the leader with pg_basebackup.");
		return EXIT_USAGE;
	}
	if (s.use_pg_rewind && !ci.wal_log_hints && ci.checksum_version == 0)
	{
		error_msg("pg_rewind cannot work on this server: it has neither wal_log_hints nor data checksums");
		hint_msg("Set wal_log_hints = on (takes effect at the next restart) or enable checksums with pg_checksums --enable on the stopped server; until then re-create it from the leader with pg_basebackup, or set autoha.use_pg_rewind = off to only make it a standby.");
		return EXIT_NO_REWIND;
	}
	conninfo = follow_conninfo(leader, &s);
	dcs_slot_name(s.node_name, slot, sizeof(slot));
	if (s.use_pg_rewind)
	{
		source = source_conninfo(leader, &s);
		if ((rc = check_leader(source, leader, slot)) != EXIT_OK)
			return rc;
	}

	if (opt_dry_run)
	{
		if (opt_restart)
			say("would stop the server (PID %d) with pg_ctl stop -m fast", (int) pid);
		if (s.use_pg_rewind)
			say("would run pg_rewind from \"%s\" at %s:%d and keep this server's *.conf files",
				leader->name, leader->host, leader->port);
		else
			say("would not rewind: autoha.use_pg_rewind is off");
		say("would create standby.signal and set primary_conninfo (leader \"%s\") and primary_slot_name '%s' in postgresql.auto.conf",
			leader->name, slot);
		if (opt_restart)
			say("would start the server again");
		say("dry run: nothing changed; a real run would %smake it a standby of \"%s\"",
			s.use_pg_rewind ? "rewind it if needed and " : "", leader->name);
		return EXIT_OK;
	}

	/* ---- 4. stop the running server */
	if (opt_restart)
	{
		remember_start(pid, &opts, &logfile);
		say("stopping the server (PID %d)%s%s", (int) pid,
			logfile ? "; it will be started again with log file " : "",
			logfile ? logfile : "");
		if (stop_server() != 0)
		{
			error_msg("could not stop the server; nothing was changed");
			hint_msg("See the messages above and the server log; then stop it yourself and run pg_autoha_rejoin without --restart.");
			return EXIT_FAILED;
		}
		stopped = true;
	}

	/* ---- 5. rewind, keeping our own configuration */
	if (s.use_pg_rewind)
	{
		nconf = backup_conf_files(conf, MAX_CONF_FILES);
		if (nconf < 0)
		{
			/* nothing rewound yet: never come back up as a writable primary */
			rewind_failed = true;
			nconf = 0;
		}
		else
		{
			say("running pg_rewind from \"%s\" at %s:%d (kept %d *.conf file(s) aside)",
				leader->name, leader->host, leader->port, nconf);
			if (run_pg_rewind(source, &no_rewind_needed) != 0)
				rewind_failed = true;
			else
				rewound = !no_rewind_needed;
			if (!restore_conf_files(conf, nconf))
				conf_failed = true;
			else
				say("restored this server's *.conf files");
		}
	}
	else
		say("not rewinding: autoha.use_pg_rewind is off");

	/*
	 * ---- 6. a standby of the leader.  Also after a failed rewind: the
	 * server must never come back as a writable primary.
	 */
	if (!make_standby(conninfo, slot))
	{
		error_msg("could not make the server a standby");
		if (stopped)
			hint_msg("The server is stopped: create standby.signal in %s, then start it.", datadir);
		return EXIT_FAILED;
	}
	say("created standby.signal; primary_conninfo points at \"%s\", primary_slot_name = '%s'",
		leader->name, slot);

	/*
	 * Some of the leader's configuration may be left in place of ours (its
	 * port, its paths): starting the server like that could do harm, so
	 * leave it stopped for someone to look at.
	 */
	if (conf_failed)
	{
		error_msg("could not restore every *.conf file of this server after pg_rewind (see above); the server %s stopped",
				  stopped ? "was left" : "is");
		hint_msg("Put this server's own settings back in %s (pg_rewind copied the leader's), then start it.",
				 datadir);
		return EXIT_FAILED;
	}

	/* ---- 7. start it again */
	if (stopped)
	{
		say("starting the server");
		if (start_server(opts, logfile) != 0)
		{
			error_msg("pg_ctl start failed or did not confirm the start");
			hint_msg("See the server log%s%s.", logfile ? " " : "", logfile ? logfile : "");
			return EXIT_FAILED;
		}
	}

	if (rewind_failed)
	{
		error_msg("pg_rewind failed: the server is a standby of \"%s\" but may be unable to follow it",
				  leader->name);
		hint_msg("Fix the cause shown above and run pg_autoha_rejoin again (stop the server first, or use --restart), or re-create the data directory from the leader with pg_basebackup.");
		return EXIT_FAILED;
	}
	if (!s.use_pg_rewind)
		say("made a standby of \"%s\" (not rewound: autoha.use_pg_rewind is off)%s",
			leader->name, stopped ? "; server restarted" : "");
	else if (rewound)
		say("rewound and made a standby of \"%s\"%s", leader->name,
			stopped ? "; server restarted" : "");
	else
		say("no rewind required; made a standby of \"%s\"%s", leader->name,
			stopped ? "; server restarted" : "");
	return EXIT_OK;
}
