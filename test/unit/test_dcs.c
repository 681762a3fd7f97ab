/*-------------------------------------------------------------------------
 *
 * test_dcs.c
 *	  Unit tests of src/dcs.c: key names, member and status values in
 *	  Patroni's formats, the cluster view built from a prefix read, and
 *	  replication slot names.  TAP output; no server, no network.
 *
 * Member values marked "Patroni 3.0.2" are what that release writes (see
 * touch_member() in patroni/ha.py); the expectations for parsing them
 * follow Member.conn_kwargs() and Etcd3._cluster_from_nodes().
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

int
main(void)
{
	test_keys();
	test_member_json();
	test_parse_patroni();
	test_conn_urls();
	test_malformed();
	test_status();
	test_view();
	test_slot_names();
	UNIT_DONE();
}
