/*-------------------------------------------------------------------------
 *
 * test_dcs.c
 *	  Unit tests of src/dcs.c: key names, member, status, failover,
 *	  config and history values in Patroni's formats, the cluster view built
 *	  from a prefix read, and replication slot names.  TAP output; no
 *	  server, no network.
 *
 * Member values marked "Patroni 3.0.2" are what that release writes (see
 * touch_member() in patroni/ha.py); the expectations for parsing them
 * follow Member.conn_kwargs() and Etcd3._cluster_from_nodes().  Failover,
 * config and history values follow Failover.from_node(), is_paused() with
 * parse_bool(), TimelineHistory.from_node() and manual_failover() of the
 * same release.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcs.h"
#include "unit.h"

#define PATRONI_302_REPLICA \
	"{\"conn_url\":\"postgres://127.0.0.1:5433/postgres\"," \
	"\"api_url\":\"http://127.0.0.1:8008/patroni\",\"state\":\"running\"," \
	"\"role\":\"replica\",\"version\":\"3.0.2\",\"xlog_location\":50331968," \
	"\"timeline\":1,\"tags\":{\"nofailover\":true}}"

#define PATRONI_302_PRIMARY \
	"{\"conn_url\":\"postgres://10.0.0.1:5432/postgres\"," \
	"\"api_url\":\"http://10.0.0.1:8008/patroni\",\"state\":\"running\"," \
	"\"role\":\"master\",\"version\":\"3.0.2\",\"xlog_location\":67108864," \
	"\"timeline\":2}"

static void
make_member(MemberInfo *m, const char *name, const char *role,
			const char *host, int port, uint64_t lsn)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->role, sizeof(m->role), "%s", role);
	snprintf(m->state, sizeof(m->state), "running");
	snprintf(m->host, sizeof(m->host), "%s", host);
	m->port = port;
	m->lsn = lsn;
	m->timeline = 1;
	m->failover_priority = 1;
}

/* ------------------------------------------------------------------ */

static void
test_keys(void)
{
	char		buf[128];
	char		small[8];

	dcs_cluster_prefix(buf, sizeof(buf), "/service", "pg_autoha");
	UNIT_STR_EQ(buf, "/service/pg_autoha/", "prefix: /service + pg_autoha");
	dcs_cluster_prefix(buf, sizeof(buf), "/service/", "pg_autoha");
	UNIT_STR_EQ(buf, "/service/pg_autoha/", "prefix: trailing slash on namespace");
	dcs_cluster_prefix(buf, sizeof(buf), "/service///", "pg_autoha");
	UNIT_STR_EQ(buf, "/service/pg_autoha/", "prefix: several trailing slashes");
	dcs_cluster_prefix(buf, sizeof(buf), "service", "pg_autoha");
	UNIT_STR_EQ(buf, "/service/pg_autoha/", "prefix: namespace without leading slash");
	dcs_cluster_prefix(buf, sizeof(buf), "//a//b/", "c");
	UNIT_STR_EQ(buf, "/a/b/c/", "prefix: runs of slashes collapse (Patroni's re.sub)");
	dcs_cluster_prefix(buf, sizeof(buf), "", "c");
	UNIT_STR_EQ(buf, "/c/", "prefix: empty namespace disappears");
	dcs_cluster_prefix(buf, sizeof(buf), NULL, "c");
	UNIT_STR_EQ(buf, "/service/c/", "prefix: NULL namespace is Patroni's default");
	dcs_cluster_prefix(buf, sizeof(buf), "/service", "c/");
	UNIT_STR_EQ(buf, "/service/c/", "prefix: trailing slash on the cluster name");

	memset(small, 'x', sizeof(small));
	dcs_cluster_prefix(small, sizeof(small), "/service", "pg_autoha");
	UNIT_OK(strlen(small) == sizeof(small) - 1 &&
			strncmp(small, "/servic", 7) == 0,
			"prefix: cut, NUL-terminated in a small buffer");

	dcs_key(buf, sizeof(buf), "/service/pg_autoha/", "members/n1");
	UNIT_STR_EQ(buf, "/service/pg_autoha/members/n1", "key: members/n1");
	dcs_key(buf, sizeof(buf), "/service/pg_autoha/", "/leader");
	UNIT_STR_EQ(buf, "/service/pg_autoha/leader", "key: leading slash of suffix dropped");
	dcs_key(buf, sizeof(buf), "/service/pg_autoha", "optime/leader");
	UNIT_STR_EQ(buf, "/service/pg_autoha/optime/leader", "key: prefix without trailing slash");
	memset(small, 'x', sizeof(small));
	dcs_key(small, sizeof(small), "/service/pg_autoha/", "leader");
	UNIT_OK(strlen(small) == sizeof(small) - 1, "key: cut, NUL-terminated");
}

/* ------------------------------------------------------------------ */

static void
test_member_json(void)
{
	MemberInfo	m;
	MemberInfo	back;
	char		err[256];
	char	   *json;

	make_member(&m, "n1", "replica", "127.0.0.1", 5433, 50331968);
	m.nofailover = true;
	json = dcs_member_json(&m, "http://127.0.0.1:8008/patroni");
	UNIT_STR_EQ(json,
				"{\"conn_url\":\"postgres://127.0.0.1:5433/postgres\","
				"\"api_url\":\"http://127.0.0.1:8008/patroni\",\"state\":\"running\","
				"\"role\":\"replica\",\"version\":\"pg_autoha 1.0\","
				"\"xlog_location\":50331968,\"timeline\":1,"
				"\"tags\":{\"nofailover\":true}}",
				"member json: Patroni 3.0 fields, compact");
	free(json);

	make_member(&m, "n2", "primary", "db2.example.com", 5432, 1234);
	m.timeline = 0;
	json = dcs_member_json(&m, NULL);
	UNIT_STR_EQ(json,
				"{\"conn_url\":\"postgres://db2.example.com:5432/postgres\","
				"\"state\":\"running\",\"role\":\"primary\","
				"\"version\":\"pg_autoha 1.0\",\"xlog_location\":1234}",
				"member json: no api_url, no timeline 0, no empty tags");
	free(json);
	json = dcs_member_json(&m, "");
	UNIT_OK(json != NULL && strstr(json, "api_url") == NULL,
			"member json: empty api_url left out");
	free(json);

	make_member(&m, "n3", "replica", "::1", 5433, 99);
	snprintf(m.replication_state, sizeof(m.replication_state), "streaming");
	m.failover_priority = 3;
	json = dcs_member_json(&m, "http://[::1]:8008");
	UNIT_OK(json != NULL &&
			strstr(json, "\"conn_url\":\"postgres://[::1]:5433/postgres\"") != NULL,
			"member json: IPv6 host in brackets");
	UNIT_OK(json != NULL && strstr(json, "\"replication_state\":\"streaming\"") != NULL,
			"member json: replication_state when set");
	UNIT_OK(json != NULL && strstr(json, "\"tags\":{\"failover_priority\":3}") != NULL,
			"member json: failover_priority when not 1, no nofailover when unset");

	/* round trip */
	memset(&back, 0, sizeof(back));
	snprintf(back.name, sizeof(back.name), "n3");
	back.mod_revision = 77;
	back.lease = 88;
	UNIT_OK(dcs_parse_member(json, &back, err, sizeof(err)),
			"round trip: parses (%s)", err);
	UNIT_STR_EQ(back.name, "n3", "round trip: name kept");
	UNIT_OK(back.mod_revision == 77 && back.lease == 88,
			"round trip: mod_revision and lease kept");
	UNIT_STR_EQ(back.host, "::1", "round trip: host");
	UNIT_OK(back.port == 5433, "round trip: port");
	UNIT_STR_EQ(back.role, "replica", "round trip: role");
	UNIT_STR_EQ(back.state, "running", "round trip: state");
	UNIT_STR_EQ(back.replication_state, "streaming", "round trip: replication_state");
	UNIT_OK(back.lsn == 99, "round trip: lsn");
	UNIT_OK(back.timeline == 1, "round trip: timeline");
	UNIT_OK(!back.nofailover && back.failover_priority == 3,
			"round trip: nofailover, failover_priority");
	UNIT_STR_EQ(back.tags, "{\"failover_priority\":3}", "round trip: tags");
	free(json);

	/* round trip with nofailover, extra tags kept, stale flags overridden */
	make_member(&m, "n4", "replica", "h4", 6000, 5);
	snprintf(m.tags, sizeof(m.tags),
			 "{\"clonefrom\":true,\"nofailover\":true,\"failover_priority\":7}");
	m.nofailover = false;
	m.failover_priority = 1;
	json = dcs_member_json(&m, NULL);
	UNIT_OK(json != NULL && strstr(json, "\"tags\":{\"clonefrom\":true}") != NULL,
			"member json: extra tags published, stale flags from the struct");
	free(json);
	m.nofailover = true;
	m.failover_priority = 0;
	json = dcs_member_json(&m, NULL);
	memset(&back, 0, sizeof(back));
	UNIT_OK(dcs_parse_member(json, &back, err, sizeof(err)) &&
			back.nofailover && back.failover_priority == 0,
			"round trip: nofailover and priority 0");
	free(json);

	/* an LSN above INT64_MAX goes out as a string and comes back */
	make_member(&m, "n5", "replica", "h5", 5432, UINT64_MAX - 1);
	json = dcs_member_json(&m, NULL);
	memset(&back, 0, sizeof(back));
	UNIT_OK(dcs_parse_member(json, &back, err, sizeof(err)) &&
			back.lsn == UINT64_MAX - 1,
			"round trip: LSN above INT64_MAX");
	free(json);

	/* a socket directory as host is percent-encoded */
	make_member(&m, "n6", "replica", "/var/run/postgresql", 5432, 1);
	json = dcs_member_json(&m, NULL);
	UNIT_OK(json != NULL &&
			strstr(json, "postgres://%2Fvar%2Frun%2Fpostgresql:5432/postgres") != NULL,
			"member json: socket directory percent-encoded");
	memset(&back, 0, sizeof(back));
	UNIT_OK(dcs_parse_member(json, &back, err, sizeof(err)) &&
			strcmp(back.host, "/var/run/postgresql") == 0,
			"round trip: socket directory decoded");
	free(json);

	UNIT_OK(dcs_member_json(NULL, NULL) == NULL, "member json: NULL member");
}

/* ------------------------------------------------------------------ */

static void
test_parse_patroni(void)
{
	MemberInfo	m;
	char		err[256];

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "pg1");
	UNIT_OK(dcs_parse_member(PATRONI_302_REPLICA, &m, err, sizeof(err)),
			"Patroni 3.0.2 replica value parses (%s)", err);
	UNIT_STR_EQ(m.name, "pg1", "Patroni replica: name kept");
	UNIT_STR_EQ(m.host, "127.0.0.1", "Patroni replica: host");
	UNIT_OK(m.port == 5433, "Patroni replica: port");
	UNIT_STR_EQ(m.state, "running", "Patroni replica: state");
	UNIT_STR_EQ(m.role, "replica", "Patroni replica: role");
	UNIT_OK(m.lsn == 50331968, "Patroni replica: xlog_location");
	UNIT_OK(m.timeline == 1, "Patroni replica: timeline");
	UNIT_OK(m.nofailover, "Patroni replica: nofailover");
	UNIT_OK(m.failover_priority == 1, "Patroni replica: default failover_priority");
	UNIT_STR_EQ(m.tags, "{\"nofailover\":true}", "Patroni replica: tags compact");
	UNIT_STR_EQ(m.replication_state, "", "Patroni replica: no replication_state");

	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member(PATRONI_302_PRIMARY, &m, err, sizeof(err)),
			"Patroni 3.0.2 primary value parses (%s)", err);
	UNIT_STR_EQ(m.role, "primary", "role master is read as primary");
	UNIT_OK(m.lsn == 67108864 && m.timeline == 2 && !m.nofailover,
			"Patroni primary: lsn, timeline, no nofailover");
	UNIT_STR_EQ(m.tags, "{}", "Patroni primary: no tags -> {}");

	/* string LSN, "true" tag, Patroni >= 3.1 failover_priority */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h:1/postgres\","
							 "\"state\":\"running\",\"role\":\"replica\","
							 "\"xlog_location\":\"123456\","
							 "\"tags\":{\"nofailover\":\"true\",\"failover_priority\":5,"
							 "\"noloadbalance\":false},"
							 "\"pending_restart\":true,\"some_future_field\":[1,2]}",
							 &m, err, sizeof(err)),
			"string xlog_location, extra fields: parses (%s)", err);
	UNIT_OK(m.lsn == 123456, "xlog_location as string digits");
	UNIT_OK(m.nofailover, "nofailover \"true\"");
	UNIT_OK(m.failover_priority == 5, "failover_priority 5");
	UNIT_STR_EQ(m.tags,
				"{\"nofailover\":\"true\",\"failover_priority\":5,\"noloadbalance\":false}",
				"tags kept compact, in order");

	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h/postgres\","
							 "\"tags\":{\"nofailover\":\"off\"}}",
							 &m, err, sizeof(err)) && !m.nofailover,
			"nofailover \"off\" is false");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h/postgres\","
							 "\"tags\":{\"nofailover\":\"maybe\"}}",
							 &m, err, sizeof(err)) && m.nofailover,
			"nofailover with an unknown word counts as set (safe side)");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h/postgres\","
							 "\"tags\":{\"failover_priority\":-4}}",
							 &m, err, sizeof(err)) && m.failover_priority == 0,
			"negative failover_priority clamps to 0");

	/* minimal value: state defaults to Patroni's "unknown" */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h/postgres\"}",
							 &m, err, sizeof(err)),
			"minimal value parses");
	UNIT_STR_EQ(m.state, "unknown", "missing state is \"unknown\"");
	UNIT_STR_EQ(m.role, "", "missing role is empty");
	UNIT_OK(m.lsn == 0 && m.timeline == 0, "missing position is 0");

	/* JSON null means absent */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://h/postgres\","
							 "\"timeline\":null,\"tags\":null,\"role\":null}",
							 &m, err, sizeof(err)) && m.timeline == 0,
			"null fields are absent");

	/* legacy conn_kwargs wins over conn_url, as in Member.conn_kwargs() */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"postgres://a:1/postgres\","
							 "\"conn_kwargs\":{\"host\":\"b\",\"port\":6543}}",
							 &m, err, sizeof(err)) &&
			strcmp(m.host, "b") == 0 && m.port == 6543,
			"conn_kwargs host and port");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_kwargs\":{\"host\":\"c\",\"port\":\"7000\"}}",
							 &m, err, sizeof(err)) &&
			strcmp(m.host, "c") == 0 && m.port == 7000,
			"conn_kwargs with port as string");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_kwargs\":{\"host\":\"d\"}}",
							 &m, err, sizeof(err)) && m.port == 5432,
			"conn_kwargs without port: 5432");

	/* Governor's bare connection string, which Patroni still accepts */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("postgres://u:p@gov:5434/postgres?application_name=http://gov:8008/patroni",
							 &m, err, sizeof(err)) &&
			strcmp(m.host, "gov") == 0 && m.port == 5434 &&
			strcmp(m.state, "unknown") == 0,
			"Governor connection string value");
}

/* ------------------------------------------------------------------ */

static void
check_url(const char *url, const char *host, int port, const char *what)
{
	char		json[512];
	MemberInfo	m;
	char		err[256];
	bool		ok;

	snprintf(json, sizeof(json), "{\"conn_url\":\"%s\",\"role\":\"replica\"}", url);
	memset(&m, 0, sizeof(m));
	ok = dcs_parse_member(json, &m, err, sizeof(err));
	UNIT_OK(ok && strcmp(m.host, host) == 0 && m.port == port,
			"conn_url %s: %s", what, url);
	if (!ok)
		printf("#   error: %s\n", err);
	else if (strcmp(m.host, host) != 0 || m.port != port)
		printf("#   got host '%s' port %d\n", m.host, m.port);
}

static void
check_bad(const char *json, const char *want_in_error, const char *what)
{
	MemberInfo	m;
	MemberInfo	before;
	char		err[256];
	bool		ok;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "x");
	snprintf(m.role, sizeof(m.role), "untouched");
	before = m;
	err[0] = '\0';
	ok = dcs_parse_member(json, &m, err, sizeof(err));
	UNIT_OK(!ok && strstr(err, want_in_error) != NULL &&
			memcmp(&m, &before, sizeof(m)) == 0,
			"malformed (%s) rejected, member untouched", what);
	if (ok || strstr(err, want_in_error) == NULL)
		printf("#   error was: '%s', wanted '%s'\n", err, want_in_error);
}

static void
test_conn_urls(void)
{
	MemberInfo	m;
	char		err[256];

	check_url("postgres://127.0.0.1:5433/postgres", "127.0.0.1", 5433, "plain");
	check_url("postgres://replicator:secret@10.1.2.3:5434/postgres", "10.1.2.3", 5434, "user:pass@");
	check_url("postgres://replicator@db1:5435/postgres", "db1", 5435, "user@");
	check_url("postgres://u:p@ss@db1:5436/postgres", "db1", 5436, "'@' in password (last '@')");
	check_url("postgres://[::1]:5433/postgres", "::1", 5433, "IPv6");
	check_url("postgres://u:p@[fe80::1%25eth0]:5433/postgres", "fe80::1%eth0", 5433, "IPv6 with zone");
	check_url("postgres://[2001:db8::7]/postgres", "2001:db8::7", 5432, "IPv6 without port");
	check_url("postgres://db1/postgres", "db1", 5432, "no port");
	check_url("postgres://db1:/postgres", "db1", 5432, "empty port");
	check_url("postgres://db1", "db1", 5432, "no path");
	check_url("postgresql://db2:6000/postgres", "db2", 6000, "postgresql://");
	check_url("POSTGRESQL://db2:6001", "db2", 6001, "scheme case");
	check_url("postgres://db3:6002/postgres?sslmode=require&application_name=x", "db3", 6002, "query string");
	check_url("postgres://db4:6003?sslmode=disable", "db4", 6003, "query, no path");
	check_url("postgres://db5:6004#frag", "db5", 6004, "fragment");
	check_url("postgres://%2Ftmp:5432/postgres", "/tmp", 5432, "percent-encoded socket dir");
	check_url("postgres:///postgres", "", 5432, "no host (libpq default)");

	check_bad("{\"conn_url\":\"postgres://db:0/postgres\"}", "out of range", "port 0");
	check_bad("{\"conn_url\":\"postgres://db:65536/postgres\"}", "out of range", "port 65536");
	check_bad("{\"conn_url\":\"postgres://db:99999999999999999999999/x\"}", "not a number", "huge port");
	check_bad("{\"conn_url\":\"postgres://db:54x2/postgres\"}", "not a number", "port not digits");
	check_bad("{\"conn_url\":\"postgres://::1:5432/postgres\"}", "not a number", "IPv6 without brackets");
	check_bad("{\"conn_url\":\"postgres://[::1:5432/postgres\"}", "unterminated", "IPv6 missing ']'");
	check_bad("{\"conn_url\":\"postgres://[::1]x:5432/postgres\"}", "after ']'", "junk after ']'");
	check_bad("{\"conn_url\":\"mysql://db:3306/x\"}", "postgres://", "other scheme");
	check_bad("{\"conn_url\":\"postgres://a%00b/x\"}", "%00", "NUL in host");
	check_bad("{\"conn_kwargs\":{\"host\":\"h\",\"port\":70000}}", "out of range", "conn_kwargs port");
	check_bad("{\"conn_kwargs\":[\"h\"]}", "conn_kwargs is not an object", "conn_kwargs array");
	check_bad("{\"conn_kwargs\":{\"host\":5}}", "conn_kwargs.host", "conn_kwargs host number");

	/* conn_url missing: still a member, but one nobody can connect to */
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"state\":\"running\",\"role\":\"replica\",\"xlog_location\":5}",
							 &m, err, sizeof(err)) &&
			m.host[0] == '\0' && m.port == 0 && m.lsn == 5,
			"no conn_url: parsed, host empty, port 0");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member("{\"conn_url\":\"\"}", &m, err, sizeof(err)) &&
			m.host[0] == '\0' && m.port == 0,
			"empty conn_url: same as missing");
}

/* ------------------------------------------------------------------ */

static void
test_malformed(void)
{
	MemberInfo	m;
	char		err[256];
	char		big[2048];
	char		longhost[600];
	size_t		n;
	int			i;

	check_bad("{", "not valid JSON", "truncated JSON");
	check_bad("", "not valid JSON", "empty value");
	check_bad("hello", "not valid JSON", "not JSON");
	check_bad("[1,2]", "not a JSON object", "array");
	check_bad("\"postgres\"", "not a JSON object", "JSON string");
	check_bad("42", "not a JSON object", "number");
	check_bad("{\"xlog_location\":{}}", "xlog_location", "xlog_location object");
	check_bad("{\"xlog_location\":-1}", "xlog_location", "negative xlog_location");
	check_bad("{\"xlog_location\":1.5}", "xlog_location", "real xlog_location");
	check_bad("{\"xlog_location\":\"0/3000060\"}", "xlog_location", "xlog_location as pg_lsn text");
	check_bad("{\"xlog_location\":\"99999999999999999999999\"}", "xlog_location", "xlog_location overflow");
	check_bad("{\"timeline\":4294967296}", "timeline", "timeline above 32 bits");
	check_bad("{\"timeline\":\"x\"}", "timeline", "timeline text");
	check_bad("{\"role\":5}", "role is not a string", "role number");
	check_bad("{\"state\":[]}", "state is not a string", "state array");
	check_bad("{\"replication_state\":true}", "replication_state", "replication_state bool");
	check_bad("{\"conn_url\":5432}", "conn_url is not a string", "conn_url number");
	check_bad("{\"tags\":[]}", "tags is not an object", "tags array");
	check_bad("{\"tags\":{\"failover_priority\":\"high\"}}", "failover_priority", "failover_priority text");
	check_bad("{\"tags\":{\"failover_priority\":1.5}}", "failover_priority", "failover_priority real");

	UNIT_OK(!dcs_parse_member(NULL, &m, err, sizeof(err)), "NULL value rejected");
	UNIT_OK(!dcs_parse_member("{}", NULL, err, sizeof(err)), "NULL member rejected");
	UNIT_OK(!dcs_parse_member("[", &m, NULL, 0), "no errbuf: no crash");

	/* over-long strings are cut, NUL-terminated, never overflow */
	n = (size_t) snprintf(big, sizeof(big), "{\"state\":\"");
	for (i = 0; i < 100; i++)
		big[n++] = 's';
	n += (size_t) snprintf(big + n, sizeof(big) - n, "\",\"role\":\"");
	for (i = 0; i < 40; i++)
	{
		/* two-byte characters: the cut must not split one */
		big[n++] = (char) 0xC3;
		big[n++] = (char) 0xA9;
	}
	n += (size_t) snprintf(big + n, sizeof(big) - n, "\",\"conn_url\":\"postgres://");
	for (i = 0; i < 400; i++)
		big[n++] = 'h';
	snprintf(big + n, sizeof(big) - n, ":5432/postgres\"}");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member(big, &m, err, sizeof(err)),
			"over-long fields parse (%s)", err);
	UNIT_OK(strlen(m.state) == AUTOHA_STATE_LEN - 1, "long state cut to %d bytes",
			AUTOHA_STATE_LEN - 1);
	UNIT_OK(strlen(m.role) == AUTOHA_STATE_LEN - 2 &&
			(unsigned char) m.role[strlen(m.role) - 1] == 0xA9,
			"long UTF-8 role cut on a character boundary");
	UNIT_OK(strlen(m.host) == AUTOHA_HOST_LEN - 1 && m.port == 5432,
			"long host cut to %d bytes", AUTOHA_HOST_LEN - 1);

	/* tags longer than the buffer: keep whole keys that fit, valid JSON */
	n = (size_t) snprintf(big, sizeof(big),
						  "{\"tags\":{\"nofailover\":true,\"a\":\"");
	for (i = 0; i < 300; i++)
		big[n++] = 'a';
	n += (size_t) snprintf(big + n, sizeof(big) - n, "\",\"b\":1}}");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member(big, &m, err, sizeof(err)), "long tags parse");
	UNIT_STR_EQ(m.tags, "{\"nofailover\":true,\"b\":1}",
				"long tags: keys that do not fit dropped, valid JSON");
	UNIT_OK(m.nofailover, "long tags: nofailover still read");

	/* a tags object made only of one huge key ends as {} */
	n = (size_t) snprintf(big, sizeof(big), "{\"tags\":{\"x\":\"");
	for (i = 0; i < 500; i++)
		big[n++] = 'x';
	snprintf(big + n, sizeof(big) - n, "\"}}");
	memset(&m, 0, sizeof(m));
	UNIT_OK(dcs_parse_member(big, &m, err, sizeof(err)) &&
			strcmp(m.tags, "{}") == 0,
			"one huge tag: tags is {}");

	/* small errbuf: message cut, NUL-terminated */
	memset(err, 'z', sizeof(err));
	UNIT_OK(!dcs_parse_member("[]", &m, err, 5) && strlen(err) == 4,
			"error message cut to the errbuf");

	/* a long host given to dcs_member_json never overflows the URL */
	memset(longhost, 'q', sizeof(longhost));
	make_member(&m, "n", "replica", "", 5432, 1);
	memset(m.host, '/', sizeof(m.host) - 1);	/* every byte escaped */
	m.host[sizeof(m.host) - 1] = '\0';
	{
		char	   *json = dcs_member_json(&m, NULL);
		MemberInfo	back;

		memset(&back, 0, sizeof(back));
		UNIT_OK(json != NULL && dcs_parse_member(json, &back, err, sizeof(err)) &&
				strcmp(back.host, m.host) == 0,
				"all-escaped maximal host round trips");
		free(json);
	}
}

/* ------------------------------------------------------------------ */

static void
test_status(void)
{
	char	   *s;
	uint64_t	lsn = 0;
	uint32_t	tli = 99;
	bool		down = true;

	s = dcs_status_json(50331968, 0, false);
	UNIT_STR_EQ(s, "{\"optime\":50331968}", "status json");
	free(s);
	s = dcs_status_json(UINT64_MAX, 0, false);
	UNIT_STR_EQ(s, "{\"optime\":18446744073709551615}", "status json: full uint64");
	free(s);

	UNIT_OK(dcs_parse_status("{\"optime\":50331968}", &lsn, &tli, &down) && lsn == 50331968 &&
			tli == 0, "status parse: Patroni's form has no timeline");
	s = dcs_status_json(50331968, 3, false);
	UNIT_STR_EQ(s, "{\"optime\":50331968,\"timeline\":3}", "status json with timeline");
	UNIT_OK(dcs_parse_status(s, &lsn, &tli, &down) && lsn == 50331968 && tli == 3,
			"status parse: timeline round trip");
	free(s);
	UNIT_OK(!down, "status parse: no shutdown mark by default");
	s = dcs_status_json(50331968, 3, true);
	UNIT_STR_EQ(s, "{\"optime\":50331968,\"timeline\":3,\"shutdown\":true}",
				"status json with the shutdown mark");
	UNIT_OK(dcs_parse_status(s, &lsn, &tli, &down) && lsn == 50331968 && tli == 3 && down,
			"status parse: shutdown mark round trip");
	free(s);
	UNIT_OK(dcs_parse_status("{\"optime\":9,\"shutdown\":\"yes\"}", &lsn, &tli, &down) &&
			lsn == 9 && !down, "status parse: a shutdown mark that is not true is no mark");
	UNIT_OK(dcs_parse_status("{\"optime\":7,\"timeline\":\"x\"}", &lsn, &tli, &down) && lsn == 7 &&
			tli == 0, "status parse: unusable timeline reads as unknown");
	lsn = 0;
	UNIT_OK(dcs_parse_status("{\"optime\":67108864,\"slots\":{\"pg2\":67108000},"
							 "\"retain_slots\":[\"pg2\"]}", &lsn, &tli, &down) && lsn == 67108864,
			"status parse: Patroni's slots and retain_slots ignored");
	UNIT_OK(dcs_parse_status("{\"optime\":\"123\"}", &lsn, &tli, &down) && lsn == 123,
			"status parse: optime as digits");
	UNIT_OK(!dcs_parse_status("{\"slots\":{}}", &lsn, &tli, &down), "status parse: no optime");
	UNIT_OK(!dcs_parse_status("{\"optime\":-5}", &lsn, &tli, &down), "status parse: negative");
	UNIT_OK(!dcs_parse_status("{\"optime\":null}", &lsn, &tli, &down), "status parse: null");
	UNIT_OK(!dcs_parse_status("123", &lsn, &tli, &down), "status parse: bare number");
	UNIT_OK(!dcs_parse_status("{", &lsn, &tli, &down), "status parse: bad JSON");
	UNIT_OK(!dcs_parse_status(NULL, &lsn, &tli, &down), "status parse: NULL");
}

/* ------------------------------------------------------------------ */

/*
 * Failover values: Patroni's doctest examples for Failover.from_node()
 * (patroni/dcs/__init__.py, 3.0.2), what its manual_failover() writes,
 * and what an operator with etcdctl might leave behind.
 */
static void
test_failover(void)
{
	FailoverRequest req;
	char	   *s;
	char		longname[200];

	UNIT_OK(dcs_parse_failover("{\"leader\": \"cluster_leader\"}", &req) &&
			req.present && strcmp(req.leader, "cluster_leader") == 0 &&
			req.member[0] == '\0' && !req.scheduled && req.mod_revision == 0,
			"failover: Patroni doctest {\"leader\": \"cluster_leader\"}");
	UNIT_OK(dcs_parse_failover("{\"leader\": \"cluster_leader\", "
							   "\"member\": \"cluster_candidate\"}", &req) &&
			strcmp(req.leader, "cluster_leader") == 0 &&
			strcmp(req.member, "cluster_candidate") == 0 && !req.scheduled,
			"failover: Patroni doctest leader and member");
	UNIT_OK(dcs_parse_failover("{\"leader\": \"cluster_leader\", "
							   "\"member\": \"cluster_candidate\", "
							   "\"scheduled_at\": \"2016-01-14T10:09:57.1394Z\"}",
							   &req) &&
			strcmp(req.leader, "cluster_leader") == 0 &&
			strcmp(req.member, "cluster_candidate") == 0 && req.scheduled,
			"failover: Patroni doctest with scheduled_at");
	UNIT_OK(dcs_parse_failover("abc:def", &req) && req.present &&
			strcmp(req.leader, "abc") == 0 && strcmp(req.member, "def") == 0,
			"failover: Patroni doctest legacy 'abc:def'");
	UNIT_OK(dcs_parse_failover("{}", &req) && req.present &&
			req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: Patroni doctest '{}' is present, names nobody");
	UNIT_OK(dcs_parse_failover("null", &req) && req.present &&
			req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: Patroni doctest 'null' is present, names nobody");
	UNIT_OK(dcs_parse_failover(NULL, &req) && req.present &&
			req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: Patroni doctest None (NULL) is present, names nobody");
	UNIT_OK(dcs_parse_failover("", &req) && req.present &&
			req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: empty value");

	/* Patroni 3.0.2 manual_failover(): compact, absent names left out */
	UNIT_OK(dcs_parse_failover("{\"member\":\"pg2\"}", &req) &&
			req.leader[0] == '\0' && strcmp(req.member, "pg2") == 0,
			"failover: manual failover names only the member");
	UNIT_OK(dcs_parse_failover("{\"leader\":\"pg1\",\"member\":\"pg2\","
							   "\"scheduled_at\":\"2026-11-22T10:00:00+00:00\"}",
							   &req) && req.scheduled,
			"failover: manual_failover() with scheduled_at");
	UNIT_OK(dcs_parse_failover("{\"leader\":\"pg1\",\"scheduled_at\":\"\"}", &req) &&
			!req.scheduled && strcmp(req.leader, "pg1") == 0,
			"failover: empty scheduled_at is not scheduled (falsy in Python)");
	UNIT_OK(dcs_parse_failover("{\"leader\":\"pg1\",\"scheduled_at\":null,"
							   "\"member\":null}", &req) &&
			!req.scheduled && req.member[0] == '\0',
			"failover: null scheduled_at and member are absent");
	UNIT_OK(!dcs_parse_failover("{\"leader\":\"pg1\",\"scheduled_at\":5}", &req) &&
			req.present && req.scheduled && req.leader[0] == '\0',
			"failover: scheduled_at not a string: malformed, still scheduled");

	/* JSON that is not an object names nobody, as in Patroni */
	UNIT_OK(dcs_parse_failover("[\"pg1\",\"pg2\"]", &req) &&
			req.present && req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: JSON array names nobody");
	UNIT_OK(dcs_parse_failover("42", &req) && req.leader[0] == '\0',
			"failover: JSON number names nobody");
	UNIT_OK(dcs_parse_failover("\"pg1:pg2\"", &req) && req.leader[0] == '\0',
			"failover: JSON string is not the legacy form");

	/* legacy text */
	UNIT_OK(dcs_parse_failover(" pg1 : pg2 ", &req) &&
			strcmp(req.leader, "pg1") == 0 && strcmp(req.member, "pg2") == 0,
			"failover: legacy parts are stripped");
	UNIT_OK(dcs_parse_failover("pg1", &req) &&
			strcmp(req.leader, "pg1") == 0 && req.member[0] == '\0',
			"failover: legacy without a colon: leader only");
	UNIT_OK(dcs_parse_failover(":pg2", &req) &&
			req.leader[0] == '\0' && strcmp(req.member, "pg2") == 0,
			"failover: legacy ':pg2': member only");
	UNIT_OK(dcs_parse_failover("a:b:c", &req) &&
			strcmp(req.leader, "a") == 0 && strcmp(req.member, "b") == 0,
			"failover: legacy third part ignored (t[0], t[1])");
	UNIT_OK(dcs_parse_failover(":", &req) && req.present &&
			req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: legacy ':' is present, names nobody");

	/* malformed: names never cut, both cleared */
	memset(longname, 'n', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	{
		char		json[400];

		snprintf(json, sizeof(json), "{\"leader\":\"pg1\",\"member\":\"%s\"}",
				 longname);
		UNIT_OK(!dcs_parse_failover(json, &req) && req.present &&
				req.leader[0] == '\0' && req.member[0] == '\0',
				"failover: over-long member: malformed, names cleared");
		snprintf(json, sizeof(json), "%s:pg2", longname);
		UNIT_OK(!dcs_parse_failover(json, &req) && req.present &&
				req.leader[0] == '\0' && req.member[0] == '\0',
				"failover: over-long legacy leader: malformed");
		snprintf(json, sizeof(json), "pg1:%s", longname);
		UNIT_OK(!dcs_parse_failover(json, &req) && req.member[0] == '\0' &&
				req.leader[0] == '\0',
				"failover: over-long legacy member: malformed");
	}
	{
		char		json[100];
		char		name[AUTOHA_NAME_LEN];

		memset(name, 'm', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		snprintf(json, sizeof(json), "{\"member\":\"%s\"}", name);
		UNIT_OK(dcs_parse_failover(json, &req) &&
				strlen(req.member) == AUTOHA_NAME_LEN - 1,
				"failover: a name of exactly %d bytes fits", AUTOHA_NAME_LEN - 1);
	}
	UNIT_OK(!dcs_parse_failover("{\"leader\":5,\"member\":\"pg2\"}", &req) &&
			req.present && req.leader[0] == '\0' && req.member[0] == '\0',
			"failover: leader not a string: malformed, names cleared");
	UNIT_OK(!dcs_parse_failover("{\"member\":\"pg\\u00002\"}", &req) &&
			req.member[0] == '\0',
			"failover: a name with NUL is malformed, not cut at the NUL");
	UNIT_OK(!dcs_parse_failover("{}", NULL), "failover: NULL request");

	/* writing */
	s = dcs_failover_json("n1", "n2");
	UNIT_STR_EQ(s, "{\"leader\":\"n1\",\"member\":\"n2\"}", "failover json: switchover");
	UNIT_OK(dcs_parse_failover(s, &req) && strcmp(req.leader, "n1") == 0 &&
			strcmp(req.member, "n2") == 0, "failover json: round trip");
	free(s);
	s = dcs_failover_json(NULL, "n2");
	UNIT_STR_EQ(s, "{\"member\":\"n2\"}", "failover json: manual failover (NULL leader)");
	free(s);
	s = dcs_failover_json("n1", "");
	UNIT_STR_EQ(s, "{\"leader\":\"n1\"}", "failover json: switchover to the best (\"\" member)");
	free(s);
	s = dcs_failover_json("", NULL);
	UNIT_STR_EQ(s, "{}", "failover json: nobody");
	free(s);
	s = dcs_failover_json("a\"b\\c", "caf\xc3\xa9");
	UNIT_STR_EQ(s, "{\"leader\":\"a\\\"b\\\\c\",\"member\":\"caf\xc3\xa9\"}",
				"failover json: quotes escaped, UTF-8 kept");
	free(s);
	s = dcs_failover_json("bad\xff", NULL);
	UNIT_STR_EQ(s, "{\"leader\":\"bad?\"}", "failover json: invalid UTF-8 becomes '?'");
	free(s);
}

/* ------------------------------------------------------------------ */

static void
test_config(void)
{
	bool		paused;
	char	   *s;

	/* Patroni's is_paused(): parse_bool(str(value).lower()) */
	UNIT_OK(dcs_parse_config_paused("{\"ttl\":30,\"pause\":true}", &paused) && paused,
			"config: pause true");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"on\"}", &paused) && paused,
			"config: pause \"on\"");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"TRUE\"}", &paused) && paused,
			"config: pause \"TRUE\" (case-insensitive)");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"Yes\"}", &paused) && paused,
			"config: pause \"Yes\"");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"1\"}", &paused) && paused,
			"config: pause \"1\"");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":1}", &paused) && paused,
			"config: pause 1");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":2}", &paused) && !paused,
			"config: pause 2 is not paused (str(2) is no parse_bool word)");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":1.0}", &paused) && !paused,
			"config: pause 1.0 is not paused (str(1.0) is \"1.0\")");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":false}", &paused) && !paused,
			"config: pause false");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"off\"}", &paused) && !paused,
			"config: pause \"off\"");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":0}", &paused) && !paused,
			"config: pause 0");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":null}", &paused) && !paused,
			"config: pause null");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"maybe\"}", &paused) && !paused,
			"config: pause with an unknown word");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\" on\"}", &paused) && !paused,
			"config: pause \" on\" (parse_bool does not strip)");
	UNIT_OK(dcs_parse_config_paused("{\"pause\":\"on\\u0000x\"}", &paused) && !paused,
			"config: pause \"on\\0x\" is not \"on\"");
	UNIT_OK(dcs_parse_config_paused("{\"ttl\":30,\"loop_wait\":10}", &paused) && !paused,
			"config: pause absent");
	UNIT_OK(dcs_parse_config_paused("{}", &paused) && !paused, "config: {}");
	paused = true;
	UNIT_OK(!dcs_parse_config_paused("{\"pause\":tru", &paused) && !paused,
			"config: malformed JSON: false, not paused");
	paused = true;
	UNIT_OK(!dcs_parse_config_paused("[{\"pause\":true}]", &paused) && !paused,
			"config: not an object: false, not paused");
	UNIT_OK(!dcs_parse_config_paused("", &paused) && !paused, "config: empty value");
	UNIT_OK(!dcs_parse_config_paused(NULL, &paused) && !paused, "config: NULL");
	UNIT_OK(!dcs_parse_config_paused("{}", NULL), "config: NULL out");

	/* pause and resume keep everything else */
	s = dcs_config_set_pause("{\"ttl\":30,\"loop_wait\":10,"
							 "\"postgresql\":{\"use_pg_rewind\":true,"
							 "\"parameters\":{\"max_connections\":100}}}", true);
	UNIT_STR_EQ(s, "{\"ttl\":30,\"loop_wait\":10,\"postgresql\":{\"use_pg_rewind\":true,"
				"\"parameters\":{\"max_connections\":100}},\"pause\":true}",
				"config pause: other keys kept in order, pause added");
	UNIT_OK(dcs_parse_config_paused(s, &paused) && paused, "config pause: reads back paused");
	{
		char	   *r = dcs_config_set_pause(s, false);

		UNIT_STR_EQ(r, "{\"ttl\":30,\"loop_wait\":10,\"postgresql\":{\"use_pg_rewind\":true,"
					"\"parameters\":{\"max_connections\":100}}}",
					"config resume: pause removed, the rest as it was");
		UNIT_OK(dcs_parse_config_paused(r, &paused) && !paused,
				"config resume: reads back not paused");
		free(r);
	}
	free(s);
	s = dcs_config_set_pause("{\"ttl\":30,\"pause\":\"off\",\"loop_wait\":10}", true);
	UNIT_STR_EQ(s, "{\"ttl\":30,\"pause\":true,\"loop_wait\":10}",
				"config pause: an existing pause member keeps its place");
	free(s);
	s = dcs_config_set_pause("{\"ttl\":30,\"pause\":true}", false);
	UNIT_STR_EQ(s, "{\"ttl\":30}", "config resume: pause: true removed");
	free(s);
	s = dcs_config_set_pause("{\"ttl\":30}", false);
	UNIT_STR_EQ(s, "{\"ttl\":30}", "config resume: nothing to remove");
	free(s);
	s = dcs_config_set_pause("{\"a\":\"x\\u0000y\",\"b\":1.5,\"c\":null}", true);
	UNIT_STR_EQ(s, "{\"a\":\"x\\u0000y\",\"b\":1.5,\"c\":null,\"pause\":true}",
				"config pause: NUL in a string, reals and nulls kept");
	free(s);
	s = dcs_config_set_pause(NULL, true);
	UNIT_STR_EQ(s, "{\"pause\":true}", "config pause: NULL starts from {}");
	free(s);
	s = dcs_config_set_pause("", true);
	UNIT_STR_EQ(s, "{\"pause\":true}", "config pause: empty starts from {}");
	free(s);
	s = dcs_config_set_pause("{\"ttl\":", true);
	UNIT_STR_EQ(s, "{\"pause\":true}", "config pause: malformed starts from {}");
	free(s);
	s = dcs_config_set_pause("[1,2]", true);
	UNIT_STR_EQ(s, "{\"pause\":true}", "config pause: not an object starts from {}");
	free(s);
	s = dcs_config_set_pause("null", false);
	UNIT_STR_EQ(s, "{}", "config resume: null gives {}");
	free(s);
}

/* ------------------------------------------------------------------ */

/* [[1,100,"r1"],[2,200,"r2"],...,[n,n*100,"rn"]] into buf */
static void
make_history(char *buf, size_t buflen, int n)
{
	size_t		len = 0;
	int			i;

	len += (size_t) snprintf(buf + len, buflen - len, "[");
	for (i = 1; i <= n; i++)
		len += (size_t) snprintf(buf + len, buflen - len, "%s[%d,%d,\"r%d\"]",
								 i > 1 ? "," : "", i, i * 100, i);
	snprintf(buf + len, buflen - len, "]");
}

static void
test_history(void)
{
	HistoryEntry h[AUTOHA_MAX_HISTORY + 8];
	int			ntotal = -5;
	int			n;
	char		big[4096];
	char	   *s;
	char	   *s2;

	/* Patroni 3.0.2 lines: 3 elements from the history file, 5 from ha.py */
	n = dcs_parse_history("[[1,25165984,\"no recovery target specified\"],"
						  "[2,50331968,\"no recovery target specified\","
						  "\"2026-11-22T10:00:00.123456+00:00\",\"pg2\"]]",
						  h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 2 && ntotal == 2, "history: two Patroni lines (n %d, total %d)", n, ntotal);
	UNIT_OK(h[0].timeline == 1 && h[0].lsn == 25165984, "history: 3-element line position");
	UNIT_STR_EQ(h[0].reason, "no recovery target specified", "history: 3-element reason");
	UNIT_OK(h[0].timestamp[0] == '\0' && h[0].new_leader[0] == '\0',
			"history: 3-element line has no timestamp, no new leader");
	UNIT_OK(h[1].timeline == 2 && h[1].lsn == 50331968, "history: 5-element line position");
	UNIT_STR_EQ(h[1].timestamp, "2026-11-22T10:00:00.123456+00:00", "history: timestamp");
	UNIT_STR_EQ(h[1].new_leader, "pg2", "history: new leader");

	n = dcs_parse_history("[[3,\"67108864\",\"x\",\"t\"]]", h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 1 && h[0].lsn == 67108864 && strcmp(h[0].timestamp, "t") == 0 &&
			h[0].new_leader[0] == '\0',
			"history: lsn as decimal string, 4-element line");
	n = dcs_parse_history("[[4,5]]", h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 1 && h[0].reason[0] == '\0', "history: line without reason");
	n = dcs_parse_history("[[4,5,null,7,[\"x\"]]]", h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 1 && h[0].reason[0] == '\0' && h[0].timestamp[0] == '\0' &&
			h[0].new_leader[0] == '\0', "history: strings of other types read as \"\"");

	/* malformed lines skipped */
	n = dcs_parse_history("[[1,100,\"a\"],\"junk\",[\"2\",200,\"b\"],[3],[4,-1,\"c\"],"
						  "[5,\"0/3000060\",\"d\"],[-6,1,\"e\"],[4294967296,1,\"f\"],"
						  "{\"tl\":7},[7,1.5],null,[8,800,\"g\"]]",
						  h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 2 && ntotal == 2 && h[0].timeline == 1 && h[1].timeline == 8 &&
			h[1].lsn == 800,
			"history: malformed lines skipped, good ones kept in order");
	n = dcs_parse_history("[[4294967295,1,\"max\"]]", h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == 1 && h[0].timeline == UINT32_MAX, "history: largest timeline");

	/* not an array */
	ntotal = 9;
	UNIT_OK(dcs_parse_history("{\"1\":2}", h, AUTOHA_MAX_HISTORY, &ntotal) == -1 &&
			ntotal == 0, "history: object is malformed");
	UNIT_OK(dcs_parse_history("[[1,2,", h, AUTOHA_MAX_HISTORY, &ntotal) == -1,
			"history: bad JSON is malformed");
	UNIT_OK(dcs_parse_history("", h, AUTOHA_MAX_HISTORY, &ntotal) == -1,
			"history: empty value is malformed");
	UNIT_OK(dcs_parse_history(NULL, h, AUTOHA_MAX_HISTORY, NULL) == -1,
			"history: NULL is malformed");
	UNIT_OK(dcs_parse_history("[]", h, AUTOHA_MAX_HISTORY, &ntotal) == 0 && ntotal == 0,
			"history: [] (what Patroni writes on timeline 1)");

	/* more than 32 lines: the last 32 */
	make_history(big, sizeof(big), 40);
	n = dcs_parse_history(big, h, AUTOHA_MAX_HISTORY, &ntotal);
	UNIT_OK(n == AUTOHA_MAX_HISTORY && ntotal == 40, "history: 40 lines, %d kept (n %d)",
			AUTOHA_MAX_HISTORY, n);
	UNIT_OK(h[0].timeline == 9 && h[AUTOHA_MAX_HISTORY - 1].timeline == 40 &&
			h[AUTOHA_MAX_HISTORY - 1].lsn == 4000 &&
			strcmp(h[AUTOHA_MAX_HISTORY - 1].reason, "r40") == 0,
			"history: the last 32, oldest first (9..40)");
	n = dcs_parse_history(big, h, 3, &ntotal);
	UNIT_OK(n == 3 && h[0].timeline == 38 && h[2].timeline == 40,
			"history: max 3 gives the last 3");
	n = dcs_parse_history(big, h, AUTOHA_MAX_HISTORY + 8, &ntotal);
	UNIT_OK(n == 40 && h[0].timeline == 1 && h[39].timeline == 40,
			"history: a big enough buffer gets every line");
	n = dcs_parse_history(big, NULL, 0, &ntotal);
	UNIT_OK(n == 0 && ntotal == 40, "history: only counting");

	/* over-long strings are cut safely */
	{
		char		json[1024];
		char		longs[300];

		memset(longs, 'x', sizeof(longs));
		longs[sizeof(longs) - 1] = '\0';
		snprintf(json, sizeof(json), "[[1,2,\"%s\",\"%.100s\",\"%.100s\"]]",
				 longs, longs, longs);
		n = dcs_parse_history(json, h, 1, &ntotal);
		UNIT_OK(n == 1 && strlen(h[0].reason) == sizeof(h[0].reason) - 1 &&
				strlen(h[0].timestamp) == sizeof(h[0].timestamp) - 1 &&
				strlen(h[0].new_leader) == sizeof(h[0].new_leader) - 1,
				"history: over-long strings cut, NUL-terminated");
	}

	/* appending */
	s = dcs_history_append(NULL, 1, 50331968, "switchover from n1",
						   "2026-11-22T10:00:00.123+00:00", "n2");
	UNIT_STR_EQ(s, "[[1,50331968,\"switchover from n1\",\"2026-11-22T10:00:00.123+00:00\",\"n2\"]]",
				"history append: first line, Patroni's compact form");
	s2 = dcs_history_append(s, 2, 67108864, "failover", "2026-11-22T11:00:00+00:00", "n3");
	UNIT_STR_EQ(s2, "[[1,50331968,\"switchover from n1\",\"2026-11-22T10:00:00.123+00:00\",\"n2\"],"
				"[2,67108864,\"failover\",\"2026-11-22T11:00:00+00:00\",\"n3\"]]",
				"history append: second line after the first");
	free(s);
	s = dcs_history_append(s2, 2, 67108864, "failover", "2026-11-22T11:00:00+00:00", "n3");
	UNIT_STR_EQ(s, s2, "history append: the same line again does not duplicate");
	free(s);
	s = dcs_history_append(s2, 2, 67108999, "failover, retried", "2026-11-22T11:00:05+00:00", "n1");
	UNIT_STR_EQ(s, "[[1,50331968,\"switchover from n1\",\"2026-11-22T10:00:00.123+00:00\",\"n2\"],"
				"[2,67108999,\"failover, retried\",\"2026-11-22T11:00:05+00:00\",\"n1\"]]",
				"history append: a line for the same timeline is replaced in place");
	free(s);
	free(s2);

	s = dcs_history_append("[[1,100,\"a\"],[3,300,\"c\"]]", 2, 200, "b", NULL, NULL);
	UNIT_STR_EQ(s, "[[1,100,\"a\"],[2,200,\"b\",\"\",\"\"],[3,300,\"c\"]]",
				"history append: inserted in timeline order; NULL strings as \"\"");
	free(s);
	s = dcs_history_append("[[1,100,\"a\"],[2,1,\"x\"],[3,300,\"c\"],[2,2,\"y\"]]",
						   2, 200, "b", "t", "n");
	UNIT_STR_EQ(s, "[[1,100,\"a\"],[2,200,\"b\",\"t\",\"n\"],[3,300,\"c\"]]",
				"history append: every line of the same timeline replaced by one");
	free(s);
	s = dcs_history_append("[\"junk\",[1,100,\"a\",\"ts\",\"pg1\"],{\"x\":1}]", 2, 200, "b", "t", "n");
	UNIT_STR_EQ(s, "[\"junk\",[1,100,\"a\",\"ts\",\"pg1\"],{\"x\":1},[2,200,\"b\",\"t\",\"n\"]]",
				"history append: lines we cannot read are kept");
	free(s);
	s = dcs_history_append("{\"not\":\"an array\"}", 1, 5, "r", "t", "n");
	UNIT_STR_EQ(s, "[[1,5,\"r\",\"t\",\"n\"]]", "history append: malformed old value gives []");
	free(s);
	s = dcs_history_append("", 1, 5, "r", "t", "n");
	UNIT_STR_EQ(s, "[[1,5,\"r\",\"t\",\"n\"]]", "history append: empty old value");
	free(s);
	s = dcs_history_append("[]", 4294967295U, UINT64_C(0x7FFFFFFFFFFFFFFF), "r", "t", "n");
	UNIT_STR_EQ(s, "[[4294967295,9223372036854775807,\"r\",\"t\",\"n\"]]",
				"history append: largest timeline and int64 lsn as integers");
	n = dcs_parse_history(s, h, 1, &ntotal);
	UNIT_OK(n == 1 && h[0].timeline == UINT32_MAX && h[0].lsn == (uint64_t) INT64_MAX,
			"history append: reads back");
	free(s);
	s = dcs_history_append("[]", 1, 5, "caf\xc3\xa9 \"q\"", "t", "bad\xfe");
	UNIT_STR_EQ(s, "[[1,5,\"caf\xc3\xa9 \\\"q\\\"\",\"t\",\"bad?\"]]",
				"history append: escaping, UTF-8 kept, invalid bytes as '?'");
	free(s);

	/* 40 appends in reverse order still come out in timeline order */
	s = NULL;
	{
		int			i;
		bool		inorder = true;

		for (i = 40; i >= 1; i--)
		{
			char		reason[16];

			snprintf(reason, sizeof(reason), "r%d", i);
			s2 = dcs_history_append(s, (uint32_t) i, (uint64_t) i * 100, reason, "", "");
			free(s);
			s = s2;
		}
		n = dcs_parse_history(s, h, AUTOHA_MAX_HISTORY + 8, &ntotal);
		for (i = 0; i < n; i++)
			if (h[i].timeline != (uint32_t) i + 1)
				inorder = false;
		UNIT_OK(n == 40 && inorder, "history append: 40 lines in timeline order");
		free(s);
	}
}


/* ------------------------------------------------------------------ */

#define MAX_TEST_KVS 80

typedef struct KvSet
{
	EtcdRangeResult range;
	EtcdKV		kvs[MAX_TEST_KVS];
	char		keys[MAX_TEST_KVS][128];
	char		values[MAX_TEST_KVS][256];
} KvSet;

static void
kv_add(KvSet *set, const char *key, const char *value,
	   int64_t create_rev, int64_t mod_rev, int64_t lease)
{
	int			i = set->range.nkvs++;
	EtcdKV	   *kv = &set->kvs[i];

	snprintf(set->keys[i], sizeof(set->keys[i]), "%s", key);
	memset(kv, 0, sizeof(*kv));
	kv->key = set->keys[i];
	if (value)
	{
		snprintf(set->values[i], sizeof(set->values[i]), "%s", value);
		kv->value = set->values[i];
		kv->value_len = strlen(value);
	}
	kv->create_revision = create_rev;
	kv->mod_revision = mod_rev;
	kv->version = 1;
	kv->lease = lease;
	set->range.kvs = set->kvs;
}

static void
test_view(void)
{
	static KvSet set;
	static ClusterView view;
	const char *P = "/service/pg_autoha/";
	char		err[256];
	int			nbad = -1;
	int			i;
	bool		sorted = true;

	memset(&set, 0, sizeof(set));
	set.range.revision = 4242;
	/* etcd returns keys sorted; these are deliberately not */
	kv_add(&set, "/service/pg_autoha/members/pg3", PATRONI_302_REPLICA, 10, 30, 0x33);
	kv_add(&set, "/service/pg_autoha/leader", "pg1", 100, 120, 0x11);
	kv_add(&set, "/service/pg_autoha/initialize", "7301234567890123456", 5, 5, 0);
	kv_add(&set, "/service/pg_autoha/status", "{\"optime\":67108864,\"slots\":{}}", 6, 119, 0);
	kv_add(&set, "/service/pg_autoha/optime/leader", "1", 6, 7, 0);
	kv_add(&set, "/service/pg_autoha/members/pg1", PATRONI_302_PRIMARY, 11, 31, 0x11);
	kv_add(&set, "/service/pg_autoha/members/pg2", "{not json", 12, 32, 0x22);
	kv_add(&set, "/service/pg_autoha/members/", "{}", 12, 32, 0);
	kv_add(&set, "/service/pg_autoha/members/pg0/extra", "{}", 12, 32, 0);
	kv_add(&set, "/service/pg_autoha/sync", "{\"leader\":\"pg1\",\"sync_standby\":null}", 8, 8, 0);
	kv_add(&set, "/service/pg_autoha/history", "[[1,25165984,\"no recovery target specified\"]]", 9, 9, 0);
	kv_add(&set, "/service/pg_autoha/config", "{\"ttl\":30}", 9, 9, 0);
	kv_add(&set, "/service/pg_autoha/failover", "{\"leader\":\"pg1\"}", 9, 9, 0);
	kv_add(&set, "/service/pg_autoha/garbage", "\x01\x02", 9, 9, 0);
	kv_add(&set, "/service/other/members/intruder", PATRONI_302_REPLICA, 9, 9, 0);
	kv_add(&set, "/service/other/leader", "intruder", 9, 9, 0);
	kv_add(&set, "/service/pg_autoha", "not under the prefix", 9, 9, 0);
	kv_add(&set, "/service/pg_autohax/leader", "intruder", 9, 9, 0);
	kv_add(&set, "/service/pg_autoha/members/pg00", NULL, 9, 9, 0);

	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.revision == 4242, "view: revision");
	UNIT_OK(view.has_leader, "view: has leader");
	UNIT_STR_EQ(view.leader, "pg1", "view: leader name");
	UNIT_OK(view.leader_create_revision == 100 && view.leader_lease == 0x11,
			"view: leader create revision (term) and lease");
	UNIT_OK(view.has_initialize, "view: has initialize");
	UNIT_STR_EQ(view.initialize, "7301234567890123456", "view: initialize");
	UNIT_OK(view.has_leader_optime && view.leader_optime == 67108864,
			"view: status wins over legacy optime/leader");
	UNIT_OK(view.nmembers == 2, "view: 2 good members (got %d)", view.nmembers);
	UNIT_OK(nbad == 3, "view: 3 bad members (not JSON, empty name, NULL value), got %d",
			nbad);
	UNIT_OK(err[0] != '\0', "view: a message for the bad ones: %s", err);
	UNIT_STR_EQ(view.members[0].name, "pg1", "view: members sorted (0)");
	UNIT_STR_EQ(view.members[1].name, "pg3", "view: members sorted (1)");
	UNIT_STR_EQ(view.members[0].role, "primary", "view: pg1 master -> primary");
	UNIT_OK(view.members[0].mod_revision == 31 && view.members[0].lease == 0x11,
			"view: member mod_revision and lease from the kv");
	UNIT_OK(view.members[1].nofailover && view.members[1].port == 5433,
			"view: pg3 parsed");
	UNIT_OK(view.failover.present && strcmp(view.failover.leader, "pg1") == 0 &&
			view.failover.member[0] == '\0' && view.failover.mod_revision == 9,
			"view: failover key read");
	UNIT_OK(!view.paused, "view: config without pause");
	UNIT_OK(view.nhistory == 1 && view.history[0].timeline == 1 &&
			view.history[0].lsn == 25165984,
			"view: history key read");

	/* legacy optime/leader when there is no status key */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/optime/leader", "25165984", 6, 7, 0);
	kv_add(&set, "/service/pg_autoha/leader", "", 1, 1, 0x5);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.has_leader_optime && view.leader_optime == 25165984 && nbad == 0,
			"view: legacy optime/leader");
	UNIT_OK(view.has_leader && view.leader[0] == '\0',
			"view: a leader key with an empty value is still a leader");
	UNIT_OK(!view.has_initialize && view.nmembers == 0, "view: nothing else");

	/* unusable status, legacy present: legacy used, status counted */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/status", "{\"slots\":{}}", 6, 7, 0);
	kv_add(&set, "/service/pg_autoha/optime/leader", "777", 6, 7, 0);
	kv_add(&set, "/service/pg_autoha/initialize", "", 6, 7, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.has_leader_optime && view.leader_optime == 777 && nbad == 1 &&
			strstr(err, "status") != NULL,
			"view: unusable status falls back to optime/leader");
	UNIT_OK(view.has_initialize && view.initialize[0] == '\0',
			"view: empty initialize (bootstrap in progress) is present");
	UNIT_OK(!view.has_leader, "view: no leader key, no leader");

	/* bad legacy optime alone */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/optime/leader", "0/3000060", 6, 7, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(!view.has_leader_optime && nbad == 1, "view: bad optime/leader ignored");

	/* 40 members, given in reverse order: the first 32 by name are kept */
	memset(&set, 0, sizeof(set));
	for (i = 39; i >= 0; i--)
	{
		char		key[128];

		snprintf(key, sizeof(key), "/service/pg_autoha/members/m%02d", i);
		kv_add(&set, key, "{\"conn_url\":\"postgres://h:5432/postgres\",\"role\":\"replica\"}",
			   i + 1, i + 1, 0);
	}
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.nmembers == AUTOHA_MAX_MEMBERS, "view: capped at %d members",
			AUTOHA_MAX_MEMBERS);
	UNIT_OK(nbad == 40 - AUTOHA_MAX_MEMBERS, "view: extra members counted (%d)", nbad);
	UNIT_OK(strstr(err, "more than") != NULL, "view: message for extra members: %s", err);
	for (i = 0; i < view.nmembers; i++)
	{
		char		want[16];

		snprintf(want, sizeof(want), "m%02d", i);
		if (strcmp(view.members[i].name, want) != 0)
			sorted = false;
	}
	UNIT_OK(sorted, "view: kept m00..m31, sorted");

	/* long member name: rejected, not cut */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/members/"
		   "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
		   "{}", 1, 1, 0);
	kv_add(&set, "/service/pg_autoha/leader",
		   "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
		   1, 1, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.nmembers == 0 && nbad == 1 && strstr(err, "longer") != NULL,
			"view: over-long member name rejected");
	UNIT_OK(view.has_leader && strlen(view.leader) == AUTOHA_NAME_LEN - 1,
			"view: over-long leader name cut, still a leader");

	/* duplicate member key: the newer one stays */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/members/d", "{\"xlog_location\":1}", 1, 5, 0);
	kv_add(&set, "/service/pg_autoha/members/d", "{\"xlog_location\":2}", 1, 9, 0);
	kv_add(&set, "/service/pg_autoha/members/d", "{\"xlog_location\":3}", 1, 7, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.nmembers == 1 && view.members[0].lsn == 2 && nbad == 2,
			"view: duplicate member keys, newest kept");

	/* empty read, NULL range, NULL nbad/errbuf */
	memset(&set, 0, sizeof(set));
	set.range.revision = 9;
	view.nmembers = 5;
	view.has_leader = true;
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.revision == 9 && !view.has_leader && view.nmembers == 0 &&
			nbad == 0 && err[0] == '\0',
			"view: empty read zeroes the view");
	dcs_view_from_kvs(P, NULL, &view, NULL, NULL, 0);
	UNIT_OK(view.revision == 0 && view.nmembers == 0, "view: NULL range");
	kv_add(&set, "/service/pg_autoha/members/z", "[]", 1, 1, 0);
	dcs_view_from_kvs(P, &set.range, &view, NULL, NULL, 0);
	UNIT_OK(view.nmembers == 0, "view: NULL nbad and errbuf are fine");
}

/* ------------------------------------------------------------------ */

static void
test_view_requests(void)
{
	static KvSet set;
	static ClusterView view;
	static char bighistory[4096];
	const char *P = "/service/pg_autoha/";
	char		err[256];
	int			nbad = -1;

	/* a leader, a member, and a switchover request while paused */
	memset(&set, 0, sizeof(set));
	set.range.revision = 500;
	kv_add(&set, "/service/pg_autoha/leader", "pg1", 100, 120, 0x11);
	kv_add(&set, "/service/pg_autoha/members/pg1", PATRONI_302_PRIMARY, 11, 31, 0x11);
	kv_add(&set, "/service/pg_autoha/members/pg3", PATRONI_302_REPLICA, 10, 30, 0x33);
	kv_add(&set, "/service/pg_autoha/failover",
		   "{\"leader\":\"pg1\",\"member\":\"pg3\"}", 400, 450, 0);
	kv_add(&set, "/service/pg_autoha/config",
		   "{\"ttl\":30,\"loop_wait\":10,\"pause\":true}", 2, 300, 0);
	kv_add(&set, "/service/pg_autoha/history",
		   "[[1,25165984,\"no recovery target specified\"],"
		   "[2,50331968,\"switchover from pg3\",\"2026-11-22T10:00:00.123+00:00\",\"pg1\"]]",
		   3, 200, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(nbad == 0, "view requests: nothing malformed (%d: %s)", nbad, err);
	UNIT_OK(view.has_leader && strcmp(view.leader, "pg1") == 0 && view.nmembers == 2,
			"view requests: leader and members as before");
	UNIT_OK(view.failover.present && view.failover.mod_revision == 450,
			"view requests: failover present, mod_revision from the kv");
	UNIT_STR_EQ(view.failover.leader, "pg1", "view requests: failover leader");
	UNIT_STR_EQ(view.failover.member, "pg3", "view requests: failover member");
	UNIT_OK(!view.failover.scheduled, "view requests: not scheduled");
	UNIT_OK(view.paused, "view requests: paused");
	UNIT_OK(view.nhistory == 2 && view.history[0].timeline == 1 &&
			view.history[1].timeline == 2 && view.history[1].lsn == 50331968,
			"view requests: history lines");
	UNIT_STR_EQ(view.history[1].new_leader, "pg1", "view requests: history new leader");

	/* a request naming nobody, config without pause, legacy failover */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/failover", "", 7, 8, 0);
	kv_add(&set, "/service/pg_autoha/config", "{\"ttl\":30,\"pause\":\"off\"}", 7, 8, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(nbad == 0 && view.failover.present && view.failover.mod_revision == 8 &&
			view.failover.leader[0] == '\0' && view.failover.member[0] == '\0',
			"view requests: empty failover value is present, names nobody");
	UNIT_OK(!view.paused && view.nhistory == 0, "view requests: pause off, no history");
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/failover", "pg1:pg2", 7, 9, 0);
	kv_add(&set, "/service/pg_autoha/failover/extra", "x:y", 7, 9, 0);
	kv_add(&set, "/service/pg_autoha/config", NULL, 7, 8, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.failover.present && strcmp(view.failover.leader, "pg1") == 0 &&
			strcmp(view.failover.member, "pg2") == 0,
			"view requests: legacy failover value");
	UNIT_OK(nbad == 1 && !view.paused && strstr(err, "config") != NULL,
			"view requests: config without a value counted (%s)", err);

	/* absent keys: nothing */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/leader", "pg1", 1, 1, 0x1);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(!view.failover.present && !view.paused && view.nhistory == 0 && nbad == 0,
			"view requests: no failover, config or history keys");

	/* malformed values: counted, never fatal */
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/failover",
		   "{\"member\":\"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm\"}",
		   7, 70, 0);
	kv_add(&set, "/service/pg_autoha/config", "{\"pause\":true", 7, 8, 0);
	kv_add(&set, "/service/pg_autoha/history", "[[1,100,\"a\"],\"junk\",[2],[3,300,\"c\"]]",
		   7, 8, 0);
	kv_add(&set, "/service/pg_autoha/members/pg1", PATRONI_302_PRIMARY, 11, 31, 0x11);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.failover.present && view.failover.mod_revision == 70 &&
			view.failover.leader[0] == '\0' && view.failover.member[0] == '\0',
			"view requests: over-long failover member: present, names nobody");
	UNIT_OK(!view.paused, "view requests: malformed config is not paused");
	UNIT_OK(view.nhistory == 2 && view.history[0].timeline == 1 &&
			view.history[1].timeline == 3,
			"view requests: malformed history lines skipped");
	UNIT_OK(nbad == 4, "view requests: failover, config and 2 history lines counted (%d)",
			nbad);
	UNIT_OK(view.nmembers == 1, "view requests: the member still there");

	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/history", "{\"1\":[1,2]}", 7, 8, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(view.nhistory == 0 && nbad == 1 && strstr(err, "history") != NULL,
			"view requests: history not an array counted (%s)", err);

	/* a long history: the last AUTOHA_MAX_HISTORY lines */
	memset(&set, 0, sizeof(set));
	make_history(bighistory, sizeof(bighistory), 45);
	kv_add(&set, "/service/pg_autoha/history", "", 7, 8, 0);
	set.kvs[0].value = bighistory;
	set.kvs[0].value_len = strlen(bighistory);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(nbad == 0 && view.nhistory == AUTOHA_MAX_HISTORY &&
			view.history[0].timeline == 14 &&
			view.history[AUTOHA_MAX_HISTORY - 1].timeline == 45,
			"view requests: 45 history lines, the last %d kept", AUTOHA_MAX_HISTORY);
}

/* ------------------------------------------------------------------ */

static void
check_slot(const char *member, const char *want)
{
	char		buf[128];

	dcs_slot_name(member, buf, sizeof(buf));
	UNIT_STR_EQ(buf, want, "slot name of '%s'", member);
}

static void
test_slot_names(void)
{
	char		small[6];
	char		buf[128];

	check_slot("Node-1.a", "node_1_a");
	check_slot("pg1", "pg1");
	check_slot("PG_Primary", "pg_primary");
	check_slot("db-1.example.com", "db_1_example_com");
	/* Patroni: other characters become u + decimal code point, 4+ digits */
	check_slot("a b", "au0032b");
	check_slot("x@y", "xu0064y");
	check_slot("n:1", "nu00581");
	check_slot("caf\xc3\xa9", "cafu0233");		/* é = U+00E9 = 233 */
	check_slot("CAF\xc3\x89", "cafu0233");		/* É lowers to é */
	check_slot("\xe2\x82\xac", "u8364");	/* € = U+20AC = 8364 */
	check_slot("\xf0\x9f\x90\x98", "u128024");	/* U+1F418 */
	check_slot("", "");
	/* cut to 63 */
	dcs_slot_name("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				  buf, sizeof(buf));
	UNIT_OK(strlen(buf) == 63 && buf[0] == 'a', "slot name cut to 63");
	/* an escape cut in the middle, like Python's [0:63] */
	dcs_slot_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@", buf, sizeof(buf));
	UNIT_STR_EQ(buf, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaau",
				"slot name: escape cut at 63 like Python slicing");
	dcs_slot_name("Node-1.a", small, sizeof(small));
	UNIT_STR_EQ(small, "node_", "slot name: small buffer");
	dcs_slot_name(NULL, buf, sizeof(buf));
	UNIT_STR_EQ(buf, "", "slot name: NULL");
}

/* The "sync" key: Patroni's format both ways, and what we cannot read. */
static void
test_sync(void)
{
	static KvSet set;
	static ClusterView view;
	const char *P = "/service/pg_autoha/";
	const char *two[] = {"pg3", "pg2"};
	SyncState	sy;
	char		err[256];
	char	   *json;
	int			nbad = -1;

	json = dcs_sync_json("pg1", two, 2);
	UNIT_STR_EQ(json, "{\"leader\":\"pg1\",\"sync_standby\":\"pg2,pg3\"}",
				"sync json: names sorted, comma-separated, as Patroni writes it");
	free(json);
	json = dcs_sync_json("pg1", NULL, 0);
	UNIT_STR_EQ(json, "{\"leader\":\"pg1\",\"sync_standby\":null}", "sync json: none is null");
	free(json);

	UNIT_OK(dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":\"pg2, pg3\"}", &sy) &&
			sy.present && !sy.malformed && sy.nstandbys == 2 &&
			strcmp(sy.standbys[1], "pg3") == 0 && strcmp(sy.leader, "pg1") == 0,
			"sync parse: two standbys, spaces stripped");
	UNIT_OK(ha_sync_lists(&sy, "pg2") && !ha_sync_lists(&sy, "pg1") && !ha_sync_lists(&sy, "pg"),
			"sync lists: standbys only, whole names");
	UNIT_OK(dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":null}", &sy) &&
			sy.present && sy.nstandbys == 0, "sync parse: null lists none");
	UNIT_OK(dcs_parse_sync("{\"leader\":\"pg1\"}", &sy) && sy.present && sy.nstandbys == 0,
			"sync parse: absent list lists none");
	UNIT_OK(dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":\"\"}", &sy) &&
			sy.present && sy.nstandbys == 0, "sync parse: empty list lists none");
	UNIT_OK(dcs_parse_sync("{\"leader\":null,\"sync_standby\":\"pg2\"}", &sy) && !sy.present,
			"sync parse: no leader is Patroni's empty state: not present");
	UNIT_OK(dcs_parse_sync("{}", &sy) && !sy.present, "sync parse: {} not present");
	UNIT_OK(dcs_parse_sync("", &sy) && !sy.present, "sync parse: empty value not present");
	UNIT_OK(!dcs_parse_sync("{\"leader\":", &sy) && sy.present && sy.malformed &&
			sy.nstandbys == 0, "sync parse: broken JSON is present, malformed, lists none");
	UNIT_OK(!dcs_parse_sync("[\"pg1\"]", &sy) && sy.malformed, "sync parse: an array is malformed");
	UNIT_OK(!dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":[\"pg2\"]}", &sy) &&
			sy.malformed && sy.nstandbys == 0, "sync parse: a list that is no string is malformed");
	UNIT_OK(!dcs_parse_sync("{\"leader\":7,\"sync_standby\":\"pg2\"}", &sy) && sy.malformed,
			"sync parse: a leader that is no string is malformed");
	UNIT_OK(!dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":\"pg2,"
							"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", &sy) &&
			sy.malformed && sy.nstandbys == 0, "sync parse: a name too long is malformed, lists none");
	UNIT_OK(!dcs_parse_sync("{\"leader\":\"pg1\",\"sync_standby\":\"pg\\u00002\"}", &sy) &&
			sy.malformed, "sync parse: an embedded NUL is malformed");

	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/sync", "{\"leader\":\"pg1\",\"sync_standby\":\"pg2\"}", 5, 77, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(nbad == 0 && view.sync.present && view.sync.mod_revision == 77 &&
			view.sync.nstandbys == 1, "view: sync key read, with its mod_revision");
	memset(&set, 0, sizeof(set));
	kv_add(&set, "/service/pg_autoha/sync", "garbage", 5, 78, 0);
	dcs_view_from_kvs(P, &set.range, &view, &nbad, err, sizeof(err));
	UNIT_OK(nbad == 1 && view.sync.present && view.sync.malformed && strstr(err, "sync key") != NULL,
			"view: an unreadable sync key is counted and lists nobody (%s)", err);
}

int
main(void)
{
	test_keys();
	test_member_json();
	test_parse_patroni();
	test_conn_urls();
	test_malformed();
	test_status();
	test_failover();
	test_config();
	test_history();
	test_view();
	test_view_requests();
	test_sync();
	test_slot_names();
	UNIT_DONE();
}
