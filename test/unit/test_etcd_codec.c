/*
 * test_etcd_codec.c — unit tests of etcd.c's pure parts: base64, prefix
 * range ends and the reply parsers, fed replies captured from etcd 3.4.23
 * and malformed variants of them.  No network.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "unit.h"

/* A real header, as etcd 3.4 sends it. */
#define HDR(rev) "\"header\":{\"cluster_id\":\"15118495548433857066\"," \
	"\"member_id\":\"13668033151171901709\",\"revision\":\"" rev "\",\"raft_term\":\"2\"}"

static int	nalloc = 0;
static int	nfree = 0;

static void *
counting_alloc(size_t n)
{
	nalloc++;
	return malloc(n);
}

static void
counting_free(void *p)
{
	/* like pfree, refuse NULL: etcd.c must never pass it */
	if (p == NULL)
		abort();
	nfree++;
	free(p);
}

static void
test_base64(void)
{
	static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *bad[] = {
		"Zg=", "Zg=a", "Z===", "====", "Zm9v!A==", "Zm 9v", "=Zg=",
		"Zg==Zg==", "Zm9vYg=\n", "Zm9-", "Zm9_", "\xc3\xa9\xc3\xa9"
	};
	const char	bin[] = {'\0', '\xff', '\0', '\x80', 'x'};
	char	   *s;
	size_t		len;
	int			i;

	for (i = 0; i < 7; i++)
	{
		s = etcd_base64_encode(plain[i], strlen(plain[i]));
		UNIT_STR_EQ(s, coded[i], "base64 encode \"%s\"", plain[i]);
		free(s);
		len = 999;
		s = etcd_base64_decode(coded[i], &len);
		UNIT_STR_EQ(s, plain[i], "base64 decode \"%s\"", coded[i]);
		UNIT_OK(len == strlen(plain[i]), "decoded length of \"%s\" is %zu", coded[i], len);
		free(s);
	}

	s = etcd_base64_encode(bin, sizeof(bin));
	UNIT_STR_EQ(s, "AP8AgHg=", "base64 encode of binary bytes");
	free(s);
	s = etcd_base64_decode("AP8AgHg=", &len);
	UNIT_OK(s != NULL && len == 5 && memcmp(s, bin, 5) == 0 && s[5] == '\0',
			"base64 decode of binary bytes keeps NULs and length, and terminates");
	free(s);

	{
		char		all[256];
		char	   *back;
		size_t		n;
		bool		same = true;

		for (n = 0; n < 256 && same; n++)
		{
			all[n] = (char) (255 - n);
			s = etcd_base64_encode(all, n + 1);
			back = etcd_base64_decode(s, &len);
			same = back != NULL && len == n + 1 && memcmp(back, all, n + 1) == 0;
			free(s);
			free(back);
		}
		UNIT_OK(same, "encode/decode round trip of 1..256 bytes of every value");
	}

	s = etcd_base64_decode("bm9kZTE=", NULL);
	UNIT_STR_EQ(s, "node1", "base64 decode with NULL length pointer");
	free(s);

	for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++)
	{
		len = 7;
		s = etcd_base64_decode(bad[i], &len);
		UNIT_OK(s == NULL && len == 0, "invalid base64 #%d is refused", i);
		free(s);
	}
	s = etcd_base64_decode(NULL, &len);
	UNIT_OK(s == NULL, "base64 decode of NULL gives NULL");
	s = etcd_base64_encode(NULL, 3);
	UNIT_OK(s == NULL, "base64 encode of NULL data gives NULL");
	s = etcd_base64_encode(NULL, 0);
	UNIT_STR_EQ(s, "", "base64 encode of nothing gives \"\"");
	free(s);
}

static void
test_prefix_range_end(void)
{
	char	   *s;

	s = etcd_prefix_range_end("/a/b/");
	UNIT_STR_EQ(s, "/a/b0", "range end of /a/b/");
	free(s);
	s = etcd_prefix_range_end("/service/batman/");
	UNIT_STR_EQ(s, "/service/batman0", "range end of a Patroni cluster prefix");
	free(s);
	s = etcd_prefix_range_end("a");
	UNIT_STR_EQ(s, "b", "range end of a");
	free(s);
	s = etcd_prefix_range_end("ab\xfe");
	UNIT_STR_EQ(s, "ab\xff", "range end of ab\\xfe");
	free(s);
	s = etcd_prefix_range_end("a\xff");
	UNIT_STR_EQ(s, "b", "trailing 0xff is dropped before incrementing");
	free(s);
	s = etcd_prefix_range_end("a\xff\xff\xff");
	UNIT_STR_EQ(s, "b", "several trailing 0xff are dropped");
	free(s);
	s = etcd_prefix_range_end("\xff\xff");
	UNIT_OK(s != NULL && s[0] == '\0', "all-0xff prefix gives \"\\0\" (no end)");
	free(s);
	s = etcd_prefix_range_end("");
	UNIT_OK(s != NULL && s[0] == '\0', "empty prefix gives \"\\0\" (whole key space)");
	free(s);
	s = etcd_prefix_range_end(NULL);
	UNIT_OK(s == NULL, "range end of NULL is NULL");
}

static void
test_parse_range(void)
{
	EtcdRangeResult r;
	EtcdStatus	st;
	char		err[256];

	st = etcd_parse_range("{" HDR("5") ",\"kvs\":[{\"key\":\"L3NlcnZpY2UvYy9sZWFkZXI=\","
						  "\"create_revision\":\"4\",\"mod_revision\":\"5\",\"version\":\"2\","
						  "\"value\":\"bm9kZTE=\",\"lease\":\"560313330273967369\"},"
						  "{\"key\":\"L3NlcnZpY2UvYy9tZW1iZXJzL24x\",\"create_revision\":\"3\","
						  "\"mod_revision\":\"3\",\"version\":\"1\",\"value\":\"e30=\"}],"
						  "\"count\":\"2\"}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK, "real range reply parses (%s)", etcd_status_name(st));
	UNIT_OK(r.revision == 5 && r.nkvs == 2, "revision 5 and two kvs");
	if (r.nkvs == 2)
	{
		UNIT_STR_EQ(r.kvs[0].key, "/service/c/leader", "first key");
		UNIT_STR_EQ(r.kvs[0].value, "node1", "first value");
		UNIT_OK(r.kvs[0].value_len == 5, "first value length");
		UNIT_OK(r.kvs[0].create_revision == 4 && r.kvs[0].mod_revision == 5 &&
				r.kvs[0].version == 2, "first kv revisions");
		UNIT_OK(r.kvs[0].lease == INT64_C(560313330273967369), "first kv lease");
		UNIT_STR_EQ(r.kvs[1].key, "/service/c/members/n1", "second key");
		UNIT_STR_EQ(r.kvs[1].value, "{}", "second value");
		UNIT_OK(r.kvs[1].lease == 0, "absent lease is 0");
	}
	etcd_range_result_free(&r);
	UNIT_OK(r.nkvs == 0 && r.kvs == NULL, "freed result is emptied");
	etcd_range_result_free(&r);
	etcd_range_result_free(NULL);
	UNIT_OK(1, "double free of an emptied result and free(NULL) are harmless");

	/* proto3: a range that matched nothing has neither kvs nor count */
	st = etcd_parse_range("{" HDR("7") "}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.nkvs == 0 && r.kvs == NULL && r.revision == 7,
			"range with no kvs and no count is an empty result");
	etcd_range_result_free(&r);

	st = etcd_parse_range("{" HDR("7") ",\"kvs\":[{\"key\":\"eA==\",\"create_revision\":\"2\","
						  "\"mod_revision\":\"2\",\"version\":\"1\"}]}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.nkvs == 1, "kvs without count parses");
	UNIT_OK(st == ETCD_OK && r.nkvs == 1 && r.kvs[0].value != NULL &&
			r.kvs[0].value[0] == '\0' && r.kvs[0].value_len == 0,
			"a kv without value (empty value omitted) has value \"\"");
	etcd_range_result_free(&r);

	st = etcd_parse_range("{" HDR("7") ",\"kvs\":[]}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.nkvs == 0 && r.kvs == NULL, "empty kvs array");

	/* int64 as numbers instead of strings */
	st = etcd_parse_range("{\"header\":{\"revision\":9},\"kvs\":[{\"key\":\"eA==\","
						  "\"create_revision\":8,\"mod_revision\":9,\"version\":2,\"lease\":77}],"
						  "\"count\":1}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.revision == 9 && r.nkvs == 1 &&
			r.kvs[0].create_revision == 8 && r.kvs[0].lease == 77,
			"int64 fields sent as JSON numbers are accepted");
	etcd_range_result_free(&r);

	st = etcd_parse_range("{\"header\":{\"revision\":\"-3\"}}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.revision == -3, "a negative revision parses without drama");

	st = etcd_parse_range("{\"header\":{\"revision\":\"9223372036854775807\"}}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.revision == INT64_MAX, "INT64_MAX as a string");

	/* header {} (all defaults omitted) is fine */
	st = etcd_parse_range("{\"header\":{}}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && r.revision == 0, "empty header means revision 0");

#define EXPECT_PROTOCOL(body, what) \
	do { \
		memset(&r, 0x7f, sizeof(r)); \
		err[0] = '\0'; \
		st = etcd_parse_range((body), &r, err, sizeof(err)); \
		UNIT_OK(st == ETCD_ERR_PROTOCOL && err[0] != '\0' && r.nkvs == 0 && r.kvs == NULL, \
				"range: %s -> protocol error (%s: %s)", what, etcd_status_name(st), err); \
	} while (0)

	EXPECT_PROTOCOL("this is not JSON", "not JSON");
	EXPECT_PROTOCOL("Not Found\n", "gateway's plain-text 404");
	EXPECT_PROTOCOL("", "empty body");
	EXPECT_PROTOCOL(NULL, "NULL body");
	EXPECT_PROTOCOL("[1,2,3]", "JSON array");
	EXPECT_PROTOCOL("\"x\"", "JSON string");
	EXPECT_PROTOCOL("{\"kvs\":[]}", "missing header");
	EXPECT_PROTOCOL("{\"header\":[]}", "header not an object");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":{\"key\":\"eA==\"}}", "kvs not an array");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":\"eA==\"}", "kvs a string");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[42]}", "kv not an object");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"value\":\"eA==\"}]}", "kv without key");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":\"eA==\"},{\"key\":\"!!!!\"}]}",
					"second kv with bad base64 key");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":\"eA==\",\"value\":\"bm9kZTE\"}]}",
					"kv with bad base64 value");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":5}]}", "key a number");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":\"eA==\",\"value\":true}]}", "value a boolean");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\"abc\"}}", "revision not numeric");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\"12abc\"}}", "revision with trailing junk");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\" 12\"}}", "revision with leading blank");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\"\"}}", "revision empty string");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\"99999999999999999999\"}}", "revision too big as string");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":\"-99999999999999999999\"}}", "revision too small as string");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":99999999999999999999}}", "revision too big as number");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":1.5}}", "revision a real");
	EXPECT_PROTOCOL("{\"header\":{\"revision\":true}}", "revision a boolean");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":\"eA==\",\"lease\":\"9223372036854775808\"}]}",
					"lease just past INT64_MAX");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[{\"key\":\"eA==\",\"version\":{}}]}", "version an object");
	EXPECT_PROTOCOL("{" HDR("1") ",\"kvs\":[]", "truncated JSON");
	EXPECT_PROTOCOL("{" HDR("1") "} trailing", "trailing garbage");
	EXPECT_PROTOCOL("{\"error\":7}", "error of a strange type");
#undef EXPECT_PROTOCOL

	memset(&r, 0x7f, sizeof(r));
	st = etcd_parse_range("{\"error\":\"etcdserver: request timed out\","
						  "\"message\":\"etcdserver: request timed out\",\"code\":14}",
						  &r, err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER && r.nkvs == 0 && r.kvs == NULL,
			"error object in place of a range reply is a server error");
	UNIT_OK(strstr(err, "etcdserver: request timed out") != NULL && strstr(err, "code 14") != NULL,
			"message carries etcd's text and code: %s", err);

	/* NULL or tiny error buffers must not matter */
	st = etcd_parse_range("garbage", &r, NULL, 0);
	UNIT_OK(st == ETCD_ERR_PROTOCOL, "NULL errbuf is allowed");
	memset(err, 'z', sizeof(err));
	st = etcd_parse_range("garbage", &r, err, 8);
	UNIT_OK(st == ETCD_ERR_PROTOCOL && strlen(err) == 7, "short errbuf is truncated and terminated");
	UNIT_OK(etcd_parse_range("{}", NULL, err, sizeof(err)) == ETCD_ERR_ARGUMENT,
			"NULL result pointer is an argument error");
}

static void
test_parse_txn(void)
{
	EtcdTxnResult t;
	EtcdStatus	st;
	char		err[256];

	st = etcd_parse_txn("{" HDR("4") ",\"succeeded\":true,\"responses\":"
						"[{\"response_put\":{\"header\":{\"revision\":\"4\"}}}]}",
						&t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && t.succeeded && t.revision == 4 && t.nresults == 1 &&
			t.results[0].type == ETCD_OP_PUT, "real successful txn (put)");
	etcd_txn_result_free(&t);
	UNIT_OK(t.nresults == 0 && t.results == NULL, "freed txn result is emptied");

	/* failure: no "succeeded", and the range ran at an older revision */
	st = etcd_parse_txn("{" HDR("5") ",\"responses\":[{\"response_range\":{\"header\":"
						"{\"revision\":\"4\"},\"kvs\":[{\"key\":\"eA==\",\"create_revision\":\"4\","
						"\"mod_revision\":\"4\",\"version\":\"1\",\"value\":\"bm9kZTE=\","
						"\"lease\":\"560313330273967369\"}],\"count\":\"1\"}},"
						"{\"response_delete_range\":{\"header\":{\"revision\":\"5\"},\"deleted\":\"1\"}}]}",
						&t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && !t.succeeded && t.revision == 5 && t.nresults == 2,
			"real failed txn: succeeded absent means false");
	if (st == ETCD_OK && t.nresults == 2)
	{
		UNIT_OK(t.results[0].type == ETCD_OP_RANGE && t.results[0].range.nkvs == 1 &&
				t.results[0].range.revision == 4, "failure branch's range result");
		UNIT_STR_EQ(t.results[0].range.kvs[0].value, "node1", "holder's value");
		UNIT_OK(t.results[0].range.kvs[0].lease == INT64_C(560313330273967369), "holder's lease");
		UNIT_OK(t.results[1].type == ETCD_OP_DELETE && t.results[1].deleted == 1 &&
				t.results[1].range.nkvs == 0, "delete response");
	}
	etcd_txn_result_free(&t);

	st = etcd_parse_txn("{" HDR("5") ",\"responses\":[{\"response_delete_range\":"
						"{\"header\":{\"revision\":\"5\"},\"deleted\":\"1\",\"prev_kvs\":"
						"[{\"key\":\"eA==\",\"value\":\"eQ==\"}]}}]}", &t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && t.nresults == 1 && t.results[0].range.nkvs == 1,
			"delete response with prev_kvs");
	etcd_txn_result_free(&t);

	st = etcd_parse_txn("{" HDR("5") ",\"responses\":[{\"response_range\":{\"header\":{}}}]}",
						&t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && t.nresults == 1 && t.results[0].range.nkvs == 0 &&
			t.results[0].range.revision == 5,
			"range response matching nothing; revision falls back to the txn's");
	etcd_txn_result_free(&t);

	st = etcd_parse_txn("{" HDR("5") ",\"succeeded\":false}", &t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && !t.succeeded && t.nresults == 0 && t.results == NULL,
			"txn without responses");
	st = etcd_parse_txn("{" HDR("5") ",\"succeeded\":true,\"responses\":[]}", &t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && t.succeeded && t.nresults == 0, "txn with empty responses");

#define EXPECT_TXN(body, want, what) \
	do { \
		memset(&t, 0x7f, sizeof(t)); \
		err[0] = '\0'; \
		st = etcd_parse_txn((body), &t, err, sizeof(err)); \
		UNIT_OK(st == (want) && err[0] != '\0' && t.nresults == 0 && t.results == NULL && \
				!t.succeeded, "txn: %s -> %s (%s)", what, etcd_status_name(st), err); \
	} while (0)

	EXPECT_TXN("<html>", ETCD_ERR_PROTOCOL, "not JSON");
	EXPECT_TXN("[]", ETCD_ERR_PROTOCOL, "JSON array");
	EXPECT_TXN("{\"succeeded\":true}", ETCD_ERR_PROTOCOL, "missing header");
	EXPECT_TXN("{" HDR("5") ",\"succeeded\":\"true\"}", ETCD_ERR_PROTOCOL, "succeeded a string");
	EXPECT_TXN("{" HDR("5") ",\"responses\":{}}", ETCD_ERR_PROTOCOL, "responses not an array");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[7]}", ETCD_ERR_PROTOCOL, "response not an object");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{}]}", ETCD_ERR_PROTOCOL, "empty response object");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_txn\":{}}]}", ETCD_ERR_PROTOCOL,
			   "nested txn response");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_put\":[]}]}", ETCD_ERR_PROTOCOL,
			   "response_put not an object");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_range\":\"x\"}]}", ETCD_ERR_PROTOCOL,
			   "response_range not an object");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"eA==\"}]}},"
			   "{\"response_range\":{\"kvs\":[{\"key\":\"e\"}]}}]}", ETCD_ERR_PROTOCOL,
			   "second range response with bad base64 (first one freed)");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"eA==\"}],"
			   "\"header\":{\"revision\":\"x\"}}}]}", ETCD_ERR_PROTOCOL,
			   "nested header with bad revision");
	EXPECT_TXN("{" HDR("5") ",\"responses\":[{\"response_delete_range\":{\"deleted\":\"one\"}}]}",
			   ETCD_ERR_PROTOCOL, "deleted not a number");
	EXPECT_TXN("{\"error\":\"etcdserver: requested lease not found\",\"message\":"
			   "\"etcdserver: requested lease not found\",\"code\":5}",
			   ETCD_ERR_LEASE_NOT_FOUND, "put with a dead lease inside a txn");
	EXPECT_TXN("{\"error\":\"etcdserver: too many operations in txn request\",\"message\":"
			   "\"etcdserver: too many operations in txn request\",\"code\":3}",
			   ETCD_ERR_SERVER, "server error");
#undef EXPECT_TXN

	UNIT_OK(etcd_parse_txn("{}", NULL, err, sizeof(err)) == ETCD_ERR_ARGUMENT,
			"NULL txn result pointer is an argument error");
}

static void
test_parse_lease(void)
{
	EtcdStatus	st;
	int64_t		id;
	int64_t		ttl;
	char		err[256];

	st = etcd_parse_lease_grant("{" HDR("1") ",\"ID\":\"4111120163024992518\",\"TTL\":\"2\"}",
								&id, &ttl, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && id == INT64_C(4111120163024992518) && ttl == 2,
			"real lease grant reply");
	st = etcd_parse_lease_grant("{\"header\":{},\"ID\":12,\"TTL\":30}", &id, &ttl, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && id == 12 && ttl == 30, "lease grant with numbers");
	st = etcd_parse_lease_grant("{" HDR("1") ",\"ID\":\"9223372036854775807\",\"TTL\":\"10\"}",
								&id, &ttl, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && id == INT64_MAX, "largest lease ID");
	st = etcd_parse_lease_grant("{" HDR("1") ",\"ID\":\"12\",\"TTL\":\"10\"}", NULL, NULL, err, sizeof(err));
	UNIT_OK(st == ETCD_OK, "NULL outputs are allowed");

#define EXPECT_GRANT(body, want, what) \
	do { \
		id = ttl = 99; \
		err[0] = '\0'; \
		st = etcd_parse_lease_grant((body), &id, &ttl, err, sizeof(err)); \
		UNIT_OK(st == (want) && id == 0 && ttl == 0 && err[0] != '\0', \
				"grant: %s -> %s (%s)", what, etcd_status_name(st), err); \
	} while (0)

	EXPECT_GRANT("nope", ETCD_ERR_PROTOCOL, "not JSON");
	EXPECT_GRANT("[{}]", ETCD_ERR_PROTOCOL, "JSON array");
	EXPECT_GRANT("{\"ID\":\"12\",\"TTL\":\"10\"}", ETCD_ERR_PROTOCOL, "missing header");
	EXPECT_GRANT("{" HDR("1") ",\"TTL\":\"10\"}", ETCD_ERR_PROTOCOL, "missing ID");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":\"12\"}", ETCD_ERR_PROTOCOL, "missing TTL");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":\"12\",\"TTL\":\"-10\"}", ETCD_ERR_PROTOCOL, "negative TTL");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":\"-12\",\"TTL\":\"10\"}", ETCD_ERR_PROTOCOL, "negative ID");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":\"9223372036854775808\",\"TTL\":\"10\"}", ETCD_ERR_PROTOCOL,
				 "ID past INT64_MAX");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":18446744073709551615,\"TTL\":\"10\"}", ETCD_ERR_PROTOCOL,
				 "ID as an unsigned 64-bit number");
	EXPECT_GRANT("{" HDR("1") ",\"ID\":\"12\",\"TTL\":[10]}", ETCD_ERR_PROTOCOL, "TTL an array");
	EXPECT_GRANT("{\"error\":\"etcdserver: too many requests\",\"message\":"
				 "\"etcdserver: too many requests\",\"code\":14}", ETCD_ERR_SERVER, "server error");
#undef EXPECT_GRANT
}

static void
test_parse_keepalive(void)
{
	EtcdStatus	st;
	int64_t		ttl;
	char		err[256];

	st = etcd_parse_keepalive("{\"result\":{" HDR("1") ",\"ID\":\"4111120163024992546\",\"TTL\":\"5\"}}\n",
							  &ttl, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && ttl == 5, "real keepalive reply (with the stream's newline)");
	st = etcd_parse_keepalive("{\"result\":{\"header\":{},\"ID\":7,\"TTL\":9}}", &ttl, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && ttl == 9, "keepalive with numbers");
	st = etcd_parse_keepalive("{\"result\":{\"header\":{},\"ID\":7,\"TTL\":9}}", NULL, err, sizeof(err));
	UNIT_OK(st == ETCD_OK, "keepalive with NULL ttl pointer");

#define EXPECT_KA(body, want, what) \
	do { \
		ttl = 99; \
		err[0] = '\0'; \
		st = etcd_parse_keepalive((body), &ttl, err, sizeof(err)); \
		UNIT_OK(st == (want) && ttl == 0 && err[0] != '\0', \
				"keepalive: %s -> %s (%s)", what, etcd_status_name(st), err); \
	} while (0)

	/* exactly what etcd 3.4.23 sends for an unknown or expired lease */
	EXPECT_KA("{\"result\":{" HDR("1") ",\"ID\":\"12345\"}}\n", ETCD_ERR_LEASE_NOT_FOUND,
			  "real reply for a dead lease: no TTL");
	EXPECT_KA("{\"result\":{" HDR("1") "}}\n", ETCD_ERR_LEASE_NOT_FOUND, "no ID and no TTL");
	EXPECT_KA("{\"result\":{" HDR("1") ",\"ID\":\"12345\",\"TTL\":\"0\"}}", ETCD_ERR_LEASE_NOT_FOUND,
			  "explicit TTL 0");
	EXPECT_KA("{\"result\":{" HDR("1") ",\"ID\":\"12345\",\"TTL\":\"-1\"}}", ETCD_ERR_LEASE_NOT_FOUND,
			  "negative TTL");
	EXPECT_KA("{\"error\":\"etcdserver: requested lease not found\",\"message\":"
			  "\"etcdserver: requested lease not found\",\"code\":5}", ETCD_ERR_LEASE_NOT_FOUND,
			  "code 5 lease not found");
	EXPECT_KA("{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":"
			  "\"etcdserver: requested lease not found\",\"http_status\":\"Not Found\"}}",
			  ETCD_ERR_LEASE_NOT_FOUND, "stream-style nested error, lease not found");
	EXPECT_KA("{\"error\":\"invalid character 'x' looking for beginning of value\",\"message\":"
			  "\"invalid character 'x' looking for beginning of value\",\"code\":2}",
			  ETCD_ERR_SERVER, "real gateway decode error (code 2)");
	EXPECT_KA("{\"error\":{\"grpc_code\":14,\"message\":\"transport is closing\"}}",
			  ETCD_ERR_SERVER, "stream-style nested error, unavailable");
	EXPECT_KA("{" HDR("1") ",\"ID\":\"12345\",\"TTL\":\"5\"}", ETCD_ERR_PROTOCOL,
			  "reply not wrapped in result");
	EXPECT_KA("{\"result\":[]}", ETCD_ERR_PROTOCOL, "result not an object");
	EXPECT_KA("{\"result\":{\"ID\":\"12345\",\"TTL\":\"5\"}}", ETCD_ERR_PROTOCOL, "result without header");
	EXPECT_KA("{\"result\":{" HDR("1") ",\"TTL\":\"five\"}}", ETCD_ERR_PROTOCOL, "TTL not numeric");
	EXPECT_KA("{\"result\":{" HDR("1") ",\"TTL\":\"99999999999999999999\"}}", ETCD_ERR_PROTOCOL,
			  "TTL too big");
	EXPECT_KA("", ETCD_ERR_PROTOCOL, "empty body");
	EXPECT_KA("{\"result\":{" HDR("1") ",\"TTL\":\"5\"}}\n{\"result\":{}}\n", ETCD_ERR_PROTOCOL,
			  "two stream messages");
#undef EXPECT_KA
}

static void
test_parse_error(void)
{
	EtcdStatus	st;
	char		err[256];

	st = etcd_parse_error("{\"error\":\"etcdserver: requested lease not found\",\"message\":"
						  "\"etcdserver: requested lease not found\",\"code\":5}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_LEASE_NOT_FOUND, "revoke of an unknown lease: lease not found");
	UNIT_STR_EQ(err, "etcdserver: requested lease not found (code 5)", "its message");

	st = etcd_parse_error("{\"error\":\"etcdserver: invalid auth token\",\"message\":"
						  "\"etcdserver: invalid auth token\",\"code\":16}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER, "invalid auth token is a server error");
	UNIT_STR_EQ(err, "etcdserver: invalid auth token (code 16)", "its message");

	st = etcd_parse_error("{\"error\":\"etcdserver: user name not found\",\"message\":"
						  "\"etcdserver: user name not found\",\"code\":5}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER, "other code 5 (not found) errors stay server errors");

	st = etcd_parse_error("{\"error\":\"boom\"}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER, "error without message or code");
	UNIT_STR_EQ(err, "boom", "falls back to the error text");

	st = etcd_parse_error("{\"error\":\"x\",\"message\":\"y\",\"code\":\"5\"}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER, "code of the wrong type is ignored");
	st = etcd_parse_error("{\"error\":\"x\",\"message\":\"y\",\"code\":-99999999999}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_SERVER, "absurd code is ignored");
	st = etcd_parse_error("{\"error\":\"x\",\"message\":\"y\",\"code\":99999999999999999999}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL, "code too big for jansson: protocol error");

	st = etcd_parse_error("{" HDR("1") "}", err, sizeof(err));
	UNIT_OK(st == ETCD_OK, "a normal reply is not an error");
	st = etcd_parse_error("Not Found\n", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL && strstr(err, "Not Found") != NULL,
			"plain text is a protocol error quoting the body: %s", err);
	st = etcd_parse_error("[\"error\"]", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL, "JSON array is a protocol error");
	st = etcd_parse_error("{\"error\":null}", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL, "error null is a protocol error");
	st = etcd_parse_error("\x01\x02\xff\xfe binary", err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL && strchr(err, '\x01') == NULL,
			"binary junk is quoted without control characters");
	st = etcd_parse_error(NULL, err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL, "NULL body");
	st = etcd_parse_error("{\"error\":\"x\"}", NULL, 0);
	UNIT_OK(st == ETCD_ERR_SERVER, "NULL errbuf");
}

static void
test_allocator(void)
{
	EtcdRangeResult r;
	EtcdTxnResult t;
	EtcdStatus	st;
	char		err[256];

	etcd_set_allocator(counting_alloc, counting_free);
	st = etcd_parse_range("{" HDR("5") ",\"kvs\":[{\"key\":\"eA==\",\"value\":\"eQ==\"},"
						  "{\"key\":\"eg==\"}]}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && nalloc == 5, "range result uses the allocator (%d allocations)", nalloc);
	etcd_range_result_free(&r);
	UNIT_OK(nfree == nalloc, "and is released with the matching free (%d/%d)", nfree, nalloc);

	nalloc = nfree = 0;
	st = etcd_parse_txn("{" HDR("5") ",\"responses\":[{\"response_range\":{\"kvs\":"
						"[{\"key\":\"eA==\",\"value\":\"eQ==\"}]}},{\"response_put\":{}}]}",
						&t, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && nalloc == 4, "txn result uses the allocator (%d allocations)", nalloc);
	etcd_txn_result_free(&t);
	UNIT_OK(nfree == nalloc, "and is released with the matching free (%d/%d)", nfree, nalloc);

	nalloc = nfree = 0;
	st = etcd_parse_range("{" HDR("5") ",\"kvs\":[{\"key\":\"eA==\",\"value\":\"eQ==\"},"
						  "{\"key\":\"eg==\",\"value\":\"?\"}]}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL && nalloc > 0 && nfree == nalloc,
			"a failed parse frees what it allocated, never frees NULL (%d/%d)", nfree, nalloc);

	nalloc = nfree = 0;
	st = etcd_parse_txn("{" HDR("5") ",\"responses\":[{\"response_range\":{\"kvs\":"
						"[{\"key\":\"eA==\",\"value\":\"eQ==\"}]}},{\"response_bogus\":{}}]}",
						&t, err, sizeof(err));
	UNIT_OK(st == ETCD_ERR_PROTOCOL && nalloc > 0 && nfree == nalloc,
			"a failed txn parse frees what it allocated (%d/%d)", nfree, nalloc);

	etcd_set_allocator(NULL, NULL);
	nalloc = 0;
	st = etcd_parse_range("{" HDR("5") ",\"kvs\":[{\"key\":\"eA==\"}]}", &r, err, sizeof(err));
	UNIT_OK(st == ETCD_OK && nalloc == 0, "NULL allocator restores malloc");
	etcd_range_result_free(&r);
}

/* Client construction and argument checks: no request is ever sent. */
static void
test_client_setup(void)
{
	EtcdClient *c;
	EtcdRangeResult r;
	EtcdTxnResult t;
	EtcdOp		badop = {ETCD_OP_PUT, "k", false, NULL, 0};
	char		err[256];
	int64_t		n;

	c = etcd_client_create(" http://127.0.0.1:1/ ,\thttps://etcd.example:2379", 500, err, sizeof(err));
	UNIT_OK(c != NULL, "two endpoints with blanks and a trailing slash");
	UNIT_STR_EQ(etcd_current_endpoint(c), "http://127.0.0.1:1", "trimmed first endpoint");

	UNIT_OK(etcd_range(c, NULL, false, &r) == ETCD_ERR_ARGUMENT, "range of NULL key");
	UNIT_OK(etcd_range(c, "", false, &r) == ETCD_ERR_ARGUMENT, "range of empty key");
	UNIT_OK(etcd_put(c, "k", NULL, 0) == ETCD_ERR_ARGUMENT, "put of NULL value");
	UNIT_OK(etcd_put(c, "k", "v", -1) == ETCD_ERR_ARGUMENT, "put with negative lease");
	UNIT_OK(etcd_delete(c, "", false, &n) == ETCD_ERR_ARGUMENT, "delete of empty key");
	UNIT_OK(etcd_lease_grant(c, 0, &n, &n) == ETCD_ERR_ARGUMENT, "grant with TTL 0");
	UNIT_OK(etcd_lease_keepalive(c, 0, &n) == ETCD_ERR_ARGUMENT, "keepalive of lease 0");
	UNIT_OK(etcd_lease_revoke(c, -5) == ETCD_ERR_ARGUMENT, "revoke of lease -5");
	UNIT_OK(etcd_txn(c, NULL, 1, NULL, 0, NULL, 0, &t) == ETCD_ERR_ARGUMENT, "txn with NULL compares");
	UNIT_OK(etcd_txn(c, NULL, 0, &badop, 1, NULL, 0, &t) == ETCD_ERR_ARGUMENT &&
			t.nresults == 0 && t.results == NULL, "txn with a put without value");
	UNIT_OK(strlen(etcd_last_error(c)) > 0, "argument errors are explained: %s", etcd_last_error(c));
	etcd_client_set_timeout(c, 0);
	etcd_client_set_auth(c, "root", NULL);
	etcd_client_set_auth(c, "root", "");
	etcd_client_set_auth(c, "root", "pw");
	etcd_client_set_auth(c, "root", "pw");
	etcd_client_set_auth(c, "", "x");
	etcd_client_set_auth(c, NULL, NULL);
	etcd_client_set_tls(c, "/nonexistent/ca.pem", "", NULL);
	etcd_client_set_tls(c, "/nonexistent/ca.pem", NULL, "");
	etcd_client_set_tls(c, NULL, NULL, NULL);
	etcd_client_destroy(c);
	etcd_client_destroy(NULL);
	UNIT_OK(strcmp(etcd_last_error(NULL), "") != 0 && strcmp(etcd_current_endpoint(NULL), "") == 0,
			"NULL client accessors do not crash");

#define EXPECT_BAD(list, needle, what) \
	do { \
		err[0] = '\0'; \
		c = etcd_client_create((list), 1000, err, sizeof(err)); \
		UNIT_OK(c == NULL && strstr(err, (needle)) != NULL, "%s is refused: %s", what, err); \
		etcd_client_destroy(c); \
	} while (0)

	EXPECT_BAD("127.0.0.1:2379", "\"127.0.0.1:2379\"", "endpoint without scheme");
	EXPECT_BAD("http://a:1, ftp://b:2", "\"ftp://b:2\"", "ftp endpoint (second)");
	EXPECT_BAD("http://a:1,,http://b:2", "empty entry", "empty entry");
	EXPECT_BAD("http://a:1,", "empty entry", "trailing comma");
	EXPECT_BAD("http://", "\"http://\"", "scheme without host");
	EXPECT_BAD("", "no etcd endpoints", "empty list");
	EXPECT_BAD("  ", "no etcd endpoints", "blank list");
	EXPECT_BAD(NULL, "no etcd endpoints", "NULL list");
#undef EXPECT_BAD
	c = etcd_client_create("http://a:1", 0, err, sizeof(err));
	UNIT_OK(c == NULL && strstr(err, "timeout") != NULL, "timeout 0 is refused: %s", err);
	c = etcd_client_create("HTTPS://A:1", 10, NULL, 0);
	UNIT_OK(c != NULL, "upper-case scheme, NULL errbuf");
	etcd_client_destroy(c);
}

static void
test_status_names(void)
{
	int			s;
	bool		all = true;

	for (s = ETCD_OK; s <= ETCD_ERR_ARGUMENT; s++)
		if (strcmp(etcd_status_name((EtcdStatus) s), "unknown status") == 0)
			all = false;
	UNIT_OK(all, "every status has a name");
	UNIT_STR_EQ(etcd_status_name(ETCD_ERR_LEASE_NOT_FOUND), "lease not found", "lease not found name");
	UNIT_STR_EQ(etcd_status_name((EtcdStatus) 99), "unknown status", "unknown status name");
}

int
main(void)
{
	test_base64();
	test_prefix_range_end();
	test_parse_range();
	test_parse_txn();
	test_parse_lease();
	test_parse_keepalive();
	test_parse_error();
	test_allocator();
	test_client_setup();
	test_status_names();
	UNIT_DONE();
}
