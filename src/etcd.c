/*-------------------------------------------------------------------------
 *
 * etcd.c
 *	  A small etcd v3 client speaking the JSON gateway (libcurl + jansson).
 *
 * Every call is one POST of a JSON body to /v3/... on one endpoint; the
 * reply is parsed by the etcd_parse_* functions, which are exported so that
 * the unit tests exercise exactly the code that reads live replies.
 *
 * What etcd 3.4's gateway sends, and therefore what this file expects:
 *
 * - int64 fields arrive as JSON strings ("revision":"4"); numbers are
 *	 accepted too.  We send int64 fields as strings.
 * - Keys and values are standard base64 with '=' padding.
 * - proto3 omits default values: a failed txn has no "succeeded", a range
 *	 that matched nothing has neither "kvs" nor "count", a keepalive on a
 *	 dead lease has no "TTL".  A missing field therefore means zero/false,
 *	 while a present field of the wrong type is a protocol error.
 * - The keepalive reply is a stream message, wrapped in "result".
 * - Errors are {"error":"...","message":"...","code":N} with an HTTP status
 *	 other than 200; N is the gRPC status code (5 = not found, 16 = invalid
 *	 auth token).  Stream errors may nest the object: {"error":{...}}.
 *
 * Endpoint policy: a call starts with the endpoint that answered last and
 * moves on to the next one only when an endpoint cannot be reached or does
 * not answer in time; each endpoint is tried at most once per call.  A reply
 * carrying an etcd error is an answer, so it never causes a fail-over.
 *
 * Memory: results handed to callers come from the allocator registered
 * with etcd_set_allocator() (the worker passes palloc/pfree); everything
 * else (request bodies, reply buffers, jansson objects, curl lists) is
 * malloc'd and released before each function returns.
 *
 * The code is not thread-safe: one client must be used by one thread at a
 * time, and curl_global_init() is called lazily without a lock.  That suits
 * the single-threaded background worker this is written for.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "etcd.h"
#include "json_compat.h"		/* jansson, minus the server's json_object() */

/* A reply larger than this is refused rather than buffered. */
#define ETCD_MAX_REPLY_BYTES	(16 * 1024 * 1024)

/* Size of the per-client error message buffer. */
#define ETCD_ERROR_LEN			2048

/* Size of the scratch buffers for messages from the parse functions. */
#define ETCD_MSG_LEN			1024

/* gRPC status codes that change what the client does. */
#define GRPC_NOT_FOUND			5
#define GRPC_UNAUTHENTICATED	16

#if defined(__GNUC__)
#define ETCD_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define ETCD_PRINTF(f, a)
#endif

struct EtcdClient
{
	char	  **endpoints;		/* "http(s)://host:port", no trailing slash */
	int			nendpoints;
	int			current;		/* the endpoint that answered last */
	int			last_tried;		/* the endpoint tried last */
	long		timeout_ms;

	bool		(*should_abort) (void *arg);
	void	   *abort_arg;

	char	   *username;		/* NULL when auth is off */
	char	   *password;
	char	   *token;			/* NULL until authenticated */

	char	   *cacert;			/* NULL when not set */
	char	   *cert;
	char	   *key;

	CURL	   *curl;			/* reused, so connections are kept alive */
	char		curl_error[CURL_ERROR_SIZE];
	char		error[ETCD_ERROR_LEN];
};

/* The reply body of one request, grown as curl delivers it. */
typedef struct ReplyBuffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		too_big;
	bool		out_of_memory;
} ReplyBuffer;

static void *(*result_alloc) (size_t) = malloc;
static void (*result_free) (void *) = free;

static bool curl_initialized = false;


/* ----------------------------------------------------------------
 * Small utilities
 * ----------------------------------------------------------------
 */

static void set_msg(char *buf, size_t len, const char *fmt,...) ETCD_PRINTF(3, 4);
static void client_error(EtcdClient *client, const char *fmt,...) ETCD_PRINTF(2, 3);

/* snprintf into an optional caller buffer */
static void
set_msg(char *buf, size_t len, const char *fmt,...)
{
	va_list		ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void
client_error(EtcdClient *client, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(client->error, sizeof(client->error), fmt, ap);
	va_end(ap);
}

static void
free_result_mem(void *ptr)
{
	/* pfree(NULL) is not allowed, so never pass NULL to the free function */
	if (ptr != NULL)
		result_free(ptr);
}

/* strdup() that maps NULL and "" to NULL ("feature off") */
static char *
dup_optional(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return NULL;
	return strdup(s);
}

/* Does a setting stored by dup_optional() equal the new value? */
static bool
same_optional(const char *stored, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return stored == NULL;
	return stored != NULL && strcmp(stored, s) == 0;
}

/*
 * Copy the start of a reply into buf for an error message, replacing
 * anything unprintable, so that a proxy's HTML page or binary junk cannot
 * mess up a log line.
 */
static void
snippet(const char *body, char *buf, size_t buflen)
{
	size_t		i;
	size_t		max = buflen - 1;

	if (max > 120)
		max = 120;
	for (i = 0; body != NULL && body[i] != '\0' && i < max; i++)
	{
		unsigned char c = (unsigned char) body[i];

		buf[i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	buf[i] = '\0';
}

const char *
etcd_status_name(EtcdStatus status)
{
	switch (status)
	{
		case ETCD_OK:
			return "ok";
		case ETCD_ERR_TRANSPORT:
			return "transport error";
		case ETCD_ERR_TIMEOUT:
			return "timeout";
		case ETCD_ERR_SERVER:
			return "server error";
		case ETCD_ERR_PROTOCOL:
			return "protocol error";
		case ETCD_ERR_LEASE_NOT_FOUND:
			return "lease not found";
		case ETCD_ERR_ABORTED:
			return "aborted";
		case ETCD_ERR_ARGUMENT:
			return "invalid argument";
	}
	return "unknown status";
}

void
etcd_set_allocator(void *(*alloc_fn) (size_t), void (*free_fn) (void *))
{
	/* Both or neither: a half-set pair would free with the wrong function. */
	if (alloc_fn != NULL && free_fn != NULL)
	{
		result_alloc = alloc_fn;
		result_free = free_fn;
	}
	else
	{
		result_alloc = malloc;
		result_free = free;
	}
}


/* ----------------------------------------------------------------
 * base64 and key ranges
 * ----------------------------------------------------------------
 */

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

char *
etcd_base64_encode(const char *data, size_t len)
{
	const unsigned char *in = (const unsigned char *) data;
	char	   *out;
	char	   *p;
	size_t		i;

	if (data == NULL && len > 0)
		return NULL;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;

	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;

	p = out;
	for (i = 0; i + 2 < len; i += 3)
	{
		*p++ = b64_alphabet[in[i] >> 2];
		*p++ = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*p++ = b64_alphabet[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
		*p++ = b64_alphabet[in[i + 2] & 0x3f];
	}
	if (len - i == 1)
	{
		*p++ = b64_alphabet[in[i] >> 2];
		*p++ = b64_alphabet[(in[i] & 0x03) << 4];
		*p++ = '=';
		*p++ = '=';
	}
	else if (len - i == 2)
	{
		*p++ = b64_alphabet[in[i] >> 2];
		*p++ = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*p++ = b64_alphabet[(in[i + 1] & 0x0f) << 2];
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

/*
 * Strict standard base64 (length a multiple of 4, '=' only as the final one
 * or two characters, no whitespace), which is what etcd's Go encoder emits.
 * The result is NUL-terminated for convenience and allocated with alloc_fn,
 * so the same code serves the malloc'd public function and the results
 * built with the caller's allocator.
 */
static char *
b64_decode_with(const char *text, size_t *len_out,
				void *(*alloc_fn) (size_t), void (*free_fn) (void *))
{
	size_t		tlen;
	size_t		npad = 0;
	size_t		outlen;
	size_t		i;
	size_t		o = 0;
	char	   *out;

	if (len_out != NULL)
		*len_out = 0;
	if (text == NULL)
		return NULL;

	tlen = strlen(text);
	if (tlen % 4 != 0)
		return NULL;
	if (tlen > 0 && text[tlen - 1] == '=')
	{
		npad++;
		if (text[tlen - 2] == '=')
			npad++;
	}
	outlen = tlen / 4 * 3 - npad;

	out = alloc_fn(outlen + 1);
	if (out == NULL)
		return NULL;

	for (i = 0; i < tlen; i += 4)
	{
		int			v[4];
		int			j;
		bool		last = (i + 4 == tlen);

		for (j = 0; j < 4; j++)
		{
			unsigned char c = (unsigned char) text[i + j];

			if (c == '=' && last && (size_t) j >= 4 - npad)
				v[j] = 0;
			else if ((v[j] = b64_value(c)) < 0)
			{
				free_fn(out);
				return NULL;
			}
		}
		out[o++] = (char) ((v[0] << 2) | (v[1] >> 4));
		if (!last || npad < 2)
			out[o++] = (char) (((v[1] & 0x0f) << 4) | (v[2] >> 2));
		if (!last || npad < 1)
			out[o++] = (char) (((v[2] & 0x03) << 6) | v[3]);
	}
	out[o] = '\0';
	if (len_out != NULL)
		*len_out = o;
	return out;
}

char *
etcd_base64_decode(const char *text, size_t *len)
{
	return b64_decode_with(text, len, malloc, free);
}

/*
 * The end of the key range covering every key that starts with prefix,
 * computed like clientv3.GetPrefixRangeEnd: drop trailing 0xff bytes, then
 * add one to the last byte.  When nothing is left (empty prefix, or only
 * 0xff bytes) the range end is the single byte "\0", meaning "to the end of
 * the key space"; *len tells that case apart from an empty string.
 */
static char *
range_end_with_len(const char *prefix, size_t *len)
{
	size_t		n = strlen(prefix);
	char	   *end;

	while (n > 0 && (unsigned char) prefix[n - 1] == 0xff)
		n--;

	end = malloc(n + 1);
	if (end == NULL)
		return NULL;
	if (n == 0)
	{
		end[0] = '\0';
		*len = 1;
		return end;
	}
	memcpy(end, prefix, n);
	end[n - 1] = (char) ((unsigned char) end[n - 1] + 1);
	end[n] = '\0';
	*len = n;
	return end;
}

char *
etcd_prefix_range_end(const char *prefix)
{
	size_t		len;

	if (prefix == NULL)
		return NULL;
	return range_end_with_len(prefix, &len);
}


/* ----------------------------------------------------------------
 * Reply parsing
 * ----------------------------------------------------------------
 */

/*
 * Read an optional int64 field that etcd sends as a string (or, from other
 * gateways, as a number).  A missing or null field is proto3's way of
 * saying 0.
 */
static bool
get_int64(json_t *obj, const char *name, int64_t *out,
		  char *errbuf, size_t errlen)
{
	json_t	   *v = json_object_get(obj, name);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return true;
	if (json_is_integer(v))
	{
		*out = (int64_t) json_integer_value(v);
		return true;
	}
	if (json_is_string(v))
	{
		const char *s = json_string_value(v);
		char	   *end;
		long long	val;

		/* strtoll would skip leading blanks and accept "+"; etcd sends neither */
		if (s[0] == '\0' || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		{
			set_msg(errbuf, errlen, "field \"%s\" is not an integer: \"%.40s\"",
					name, s);
			return false;
		}
		errno = 0;
		val = strtoll(s, &end, 10);
		if (*end != '\0' || end == s)
		{
			set_msg(errbuf, errlen, "field \"%s\" is not an integer: \"%.40s\"",
					name, s);
			return false;
		}
		if (errno == ERANGE)
		{
			set_msg(errbuf, errlen, "field \"%s\" is out of range: \"%.40s\"",
					name, s);
			return false;
		}
		*out = (int64_t) val;
		return true;
	}
	set_msg(errbuf, errlen, "field \"%s\" is neither a string nor an integer",
			name);
	return false;
}

/*
 * Parse a body into a JSON object.  jansson refuses integers that do not
 * fit in 64 bits, so huge numbers end up here as a protocol error too.
 */
static json_t *
load_object(const char *body, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t	   *root;
	char		start[128];
	char		why[JSON_ERROR_TEXT_LENGTH];

	if (body == NULL)
	{
		set_msg(errbuf, errlen, "empty reply");
		return NULL;
	}
	root = json_loads(body, 0, &jerr);
	if (root == NULL)
	{
		snippet(body, start, sizeof(start));
		/* jansson quotes the offending input, which may be binary */
		snippet(jerr.text, why, sizeof(why));
		set_msg(errbuf, errlen, "reply is not JSON (%s): \"%s\"",
				why, start);
		return NULL;
	}
	if (!json_is_object(root))
	{
		json_decref(root);
		set_msg(errbuf, errlen, "reply is not a JSON object");
		return NULL;
	}
	return root;
}

/*
 * If root is an etcd error object, describe it in errbuf, store its gRPC
 * code in *code (-1 when absent) and return its status; return ETCD_OK
 * when root is not an error.
 *
 * "lease not found" is reported as ETCD_ERR_LEASE_NOT_FOUND whatever the
 * call was (keepalive, revoke, but also a put or txn naming a lease that
 * has expired), because in every case it tells the caller that its lease
 * is gone and must be granted again.
 */
static EtcdStatus
error_from_json(json_t *root, int *code, char *errbuf, size_t errlen)
{
	json_t	   *err = json_object_get(root, "error");
	json_t	   *msgv = NULL;
	json_t	   *codev = NULL;
	const char *msg;

	*code = -1;
	if (err == NULL)
		return ETCD_OK;

	if (json_is_string(err))
	{
		/* unary calls: {"error":"...","message":"...","code":N} */
		msgv = json_object_get(root, "message");
		codev = json_object_get(root, "code");
		if (!json_is_string(msgv))
			msgv = err;
	}
	else if (json_is_object(err))
	{
		/* stream calls: {"error":{"grpc_code":N,"message":"...",...}} */
		msgv = json_object_get(err, "message");
		codev = json_object_get(err, "grpc_code");
		if (codev == NULL)
			codev = json_object_get(err, "code");
	}
	else
	{
		set_msg(errbuf, errlen, "reply has an \"error\" field of unexpected type");
		return ETCD_ERR_PROTOCOL;
	}

	msg = json_is_string(msgv) ? json_string_value(msgv) : "unknown error";
	if (json_is_integer(codev) &&
		json_integer_value(codev) >= 0 && json_integer_value(codev) <= INT_MAX)
		*code = (int) json_integer_value(codev);

	if (*code >= 0)
		set_msg(errbuf, errlen, "%s (code %d)", msg, *code);
	else
		set_msg(errbuf, errlen, "%s", msg);

	if (*code == GRPC_NOT_FOUND && strstr(msg, "lease not found") != NULL)
		return ETCD_ERR_LEASE_NOT_FOUND;
	return ETCD_ERR_SERVER;
}

/*
 * Common start of every reply: not an error, and a header carrying the
 * revision.  Every top-level etcd reply has a header, so its absence means
 * we are not talking to etcd (or to a gateway we do not understand).
 */
static EtcdStatus
check_reply(json_t *root, int64_t *revision, char *errbuf, size_t errlen)
{
	int			code;
	EtcdStatus	st;
	json_t	   *header;

	st = error_from_json(root, &code, errbuf, errlen);
	if (st != ETCD_OK)
		return st;

	header = json_object_get(root, "header");
	if (!json_is_object(header))
	{
		set_msg(errbuf, errlen, "reply has no header");
		return ETCD_ERR_PROTOCOL;
	}
	if (!get_int64(header, "revision", revision, errbuf, errlen))
		return ETCD_ERR_PROTOCOL;
	return ETCD_OK;
}

EtcdStatus
etcd_parse_error(const char *body, char *errbuf, size_t errlen)
{
	json_t	   *root;
	EtcdStatus	st;
	int			code;

	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	set_msg(errbuf, errlen, "%s", "");
	st = error_from_json(root, &code, errbuf, errlen);
	json_decref(root);
	return st;
}

static void
free_range_contents(EtcdRangeResult *result)
{
	int			i;

	if (result->kvs != NULL)
	{
		for (i = 0; i < result->nkvs; i++)
		{
			free_result_mem(result->kvs[i].key);
			free_result_mem(result->kvs[i].value);
		}
		free_result_mem(result->kvs);
	}
	memset(result, 0, sizeof(*result));
}

void
etcd_range_result_free(EtcdRangeResult *result)
{
	if (result != NULL)
		free_range_contents(result);
}

void
etcd_txn_result_free(EtcdTxnResult *result)
{
	int			i;

	if (result == NULL)
		return;
	if (result->results != NULL)
	{
		for (i = 0; i < result->nresults; i++)
			free_range_contents(&result->results[i].range);
		free_result_mem(result->results);
	}
	memset(result, 0, sizeof(*result));
}

/* Decode one base64 string field into memory from the result allocator. */
static bool
get_bytes(json_t *kv, const char *name, bool required, char **out,
		  size_t *len, char *errbuf, size_t errlen)
{
	json_t	   *v = json_object_get(kv, name);
	const char *text = "";

	if (v == NULL || json_is_null(v))
	{
		if (required)
		{
			set_msg(errbuf, errlen, "key-value pair has no \"%s\"", name);
			return false;
		}
	}
	else if (json_is_string(v))
		text = json_string_value(v);
	else
	{
		set_msg(errbuf, errlen, "field \"%s\" is not a string", name);
		return false;
	}

	*out = b64_decode_with(text, len, result_alloc, free_result_mem);
	if (*out == NULL)
	{
		set_msg(errbuf, errlen, "field \"%s\" is not valid base64: \"%.40s\"",
				name, text);
		return false;
	}
	return true;
}

/*
 * Fill result->kvs from the array obj[field] ("kvs" of a range reply,
 * "prev_kvs" of a delete).  On failure result is left empty.
 */
static EtcdStatus
parse_kvs(json_t *obj, const char *field, EtcdRangeResult *result,
		  char *errbuf, size_t errlen)
{
	json_t	   *kvs = json_object_get(obj, field);
	size_t		n;
	size_t		i;

	result->nkvs = 0;
	result->kvs = NULL;
	if (kvs == NULL || json_is_null(kvs))
		return ETCD_OK;
	if (!json_is_array(kvs))
	{
		set_msg(errbuf, errlen, "\"%s\" is not an array", field);
		return ETCD_ERR_PROTOCOL;
	}
	n = json_array_size(kvs);
	if (n == 0)
		return ETCD_OK;
	if (n > (size_t) INT_MAX / sizeof(EtcdKV))
	{
		set_msg(errbuf, errlen, "\"%s\" has too many entries", field);
		return ETCD_ERR_PROTOCOL;
	}

	result->kvs = result_alloc(n * sizeof(EtcdKV));
	if (result->kvs == NULL)
	{
		set_msg(errbuf, errlen, "out of memory");
		return ETCD_ERR_PROTOCOL;
	}
	memset(result->kvs, 0, n * sizeof(EtcdKV));
	result->nkvs = (int) n;

	for (i = 0; i < n; i++)
	{
		json_t	   *item = json_array_get(kvs, i);
		EtcdKV	   *kv = &result->kvs[i];
		size_t		keylen;

		if (!json_is_object(item))
		{
			set_msg(errbuf, errlen, "entry %zu of \"%s\" is not an object",
					i, field);
			goto fail;
		}
		if (!get_bytes(item, "key", true, &kv->key, &keylen, errbuf, errlen) ||
			!get_bytes(item, "value", false, &kv->value, &kv->value_len,
					   errbuf, errlen) ||
			!get_int64(item, "create_revision", &kv->create_revision,
					   errbuf, errlen) ||
			!get_int64(item, "mod_revision", &kv->mod_revision,
					   errbuf, errlen) ||
			!get_int64(item, "version", &kv->version, errbuf, errlen) ||
			!get_int64(item, "lease", &kv->lease, errbuf, errlen))
			goto fail;
	}
	return ETCD_OK;

fail:
	free_range_contents(result);
	return ETCD_ERR_PROTOCOL;
}

EtcdStatus
etcd_parse_range(const char *body, EtcdRangeResult *result,
				 char *errbuf, size_t errlen)
{
	json_t	   *root;
	EtcdStatus	st;
	int64_t		revision;

	if (result == NULL)
		return ETCD_ERR_ARGUMENT;
	memset(result, 0, sizeof(*result));

	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	st = check_reply(root, &revision, errbuf, errlen);
	if (st == ETCD_OK)
		st = parse_kvs(root, "kvs", result, errbuf, errlen);
	if (st == ETCD_OK)
		result->revision = revision;
	json_decref(root);
	return st;
}

/* One element of a txn reply's "responses" array. */
static EtcdStatus
parse_txn_response(json_t *item, int64_t txn_revision, EtcdOpResult *res,
				   char *errbuf, size_t errlen)
{
	json_t	   *v;
	json_t	   *header;
	EtcdStatus	st;

	if (!json_is_object(item))
	{
		set_msg(errbuf, errlen, "txn response is not an object");
		return ETCD_ERR_PROTOCOL;
	}

	if ((v = json_object_get(item, "response_range")) != NULL)
	{
		res->type = ETCD_OP_RANGE;
		if (!json_is_object(v))
		{
			set_msg(errbuf, errlen, "\"response_range\" is not an object");
			return ETCD_ERR_PROTOCOL;
		}
		st = parse_kvs(v, "kvs", &res->range, errbuf, errlen);
		if (st != ETCD_OK)
			return st;
	}
	else if ((v = json_object_get(item, "response_put")) != NULL)
	{
		res->type = ETCD_OP_PUT;
		if (!json_is_object(v))
		{
			set_msg(errbuf, errlen, "\"response_put\" is not an object");
			return ETCD_ERR_PROTOCOL;
		}
	}
	else if ((v = json_object_get(item, "response_delete_range")) != NULL)
	{
		res->type = ETCD_OP_DELETE;
		if (!json_is_object(v))
		{
			set_msg(errbuf, errlen, "\"response_delete_range\" is not an object");
			return ETCD_ERR_PROTOCOL;
		}
		if (!get_int64(v, "deleted", &res->deleted, errbuf, errlen))
			return ETCD_ERR_PROTOCOL;
		st = parse_kvs(v, "prev_kvs", &res->range, errbuf, errlen);
		if (st != ETCD_OK)
			return st;
	}
	else
	{
		set_msg(errbuf, errlen, "unsupported txn response (nested txn?)");
		return ETCD_ERR_PROTOCOL;
	}

	/*
	 * Each response carries the revision at which its operation ran, which
	 * for a range in a txn that also writes is older than the txn's.
	 */
	res->range.revision = txn_revision;
	header = json_object_get(v, "header");
	if (json_is_object(header) && json_object_get(header, "revision") != NULL)
	{
		if (!get_int64(header, "revision", &res->range.revision,
					   errbuf, errlen))
		{
			free_range_contents(&res->range);
			return ETCD_ERR_PROTOCOL;
		}
	}
	return ETCD_OK;
}

EtcdStatus
etcd_parse_txn(const char *body, EtcdTxnResult *result,
			   char *errbuf, size_t errlen)
{
	json_t	   *root;
	json_t	   *succeeded;
	json_t	   *responses;
	EtcdStatus	st;
	size_t		n;
	size_t		i;

	if (result == NULL)
		return ETCD_ERR_ARGUMENT;
	memset(result, 0, sizeof(*result));

	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	st = check_reply(root, &result->revision, errbuf, errlen);
	if (st != ETCD_OK)
		goto done;

	/* proto3 leaves out "succeeded" when it is false */
	succeeded = json_object_get(root, "succeeded");
	if (succeeded == NULL || json_is_null(succeeded))
		result->succeeded = false;
	else if (json_is_boolean(succeeded))
		result->succeeded = json_is_true(succeeded);
	else
	{
		set_msg(errbuf, errlen, "\"succeeded\" is not a boolean");
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}

	responses = json_object_get(root, "responses");
	if (responses == NULL || json_is_null(responses))
		goto done;
	if (!json_is_array(responses))
	{
		set_msg(errbuf, errlen, "\"responses\" is not an array");
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}
	n = json_array_size(responses);
	if (n == 0)
		goto done;
	if (n > (size_t) INT_MAX / sizeof(EtcdOpResult))
	{
		set_msg(errbuf, errlen, "\"responses\" has too many entries");
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}
	result->results = result_alloc(n * sizeof(EtcdOpResult));
	if (result->results == NULL)
	{
		set_msg(errbuf, errlen, "out of memory");
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}
	memset(result->results, 0, n * sizeof(EtcdOpResult));
	result->nresults = (int) n;

	for (i = 0; i < n && st == ETCD_OK; i++)
		st = parse_txn_response(json_array_get(responses, i),
								result->revision, &result->results[i],
								errbuf, errlen);

done:
	if (st != ETCD_OK)
		etcd_txn_result_free(result);
	json_decref(root);
	return st;
}

EtcdStatus
etcd_parse_lease_grant(const char *body, int64_t *lease_id, int64_t *ttl,
					   char *errbuf, size_t errlen)
{
	json_t	   *root;
	EtcdStatus	st;
	int64_t		revision;
	int64_t		id = 0;
	int64_t		granted = 0;

	if (lease_id != NULL)
		*lease_id = 0;
	if (ttl != NULL)
		*ttl = 0;
	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	st = check_reply(root, &revision, errbuf, errlen);
	if (st == ETCD_OK &&
		(!get_int64(root, "ID", &id, errbuf, errlen) ||
		 !get_int64(root, "TTL", &granted, errbuf, errlen)))
		st = ETCD_ERR_PROTOCOL;
	if (st == ETCD_OK && (id <= 0 || granted <= 0))
	{
		set_msg(errbuf, errlen,
				"lease grant reply has no usable ID or TTL (ID %" PRId64 ", TTL %" PRId64 ")",
				id, granted);
		st = ETCD_ERR_PROTOCOL;
	}
	json_decref(root);

	if (st == ETCD_OK && lease_id != NULL)
		*lease_id = id;
	if (st == ETCD_OK && ttl != NULL)
		*ttl = granted;
	return st;
}

EtcdStatus
etcd_parse_keepalive(const char *body, int64_t *ttl_left,
					 char *errbuf, size_t errlen)
{
	json_t	   *root;
	json_t	   *result;
	EtcdStatus	st;
	int			code;
	int64_t		revision;
	int64_t		id = 0;
	int64_t		ttl = 0;

	if (ttl_left != NULL)
		*ttl_left = 0;
	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;

	/* a stream message: the reply proper is wrapped in "result" */
	st = error_from_json(root, &code, errbuf, errlen);
	if (st != ETCD_OK)
		goto done;
	result = json_object_get(root, "result");
	if (!json_is_object(result))
	{
		set_msg(errbuf, errlen, "keepalive reply has no \"result\" object");
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}
	st = check_reply(result, &revision, errbuf, errlen);
	if (st != ETCD_OK)
		goto done;
	if (!get_int64(result, "ID", &id, errbuf, errlen) ||
		!get_int64(result, "TTL", &ttl, errbuf, errlen))
	{
		st = ETCD_ERR_PROTOCOL;
		goto done;
	}

	/*
	 * etcd answers a keepalive for an expired or unknown lease with HTTP 200
	 * and a TTL of zero, which proto3 leaves out.
	 */
	if (ttl <= 0)
	{
		set_msg(errbuf, errlen, "lease %" PRId64 " not found (keepalive reply has no TTL)",
				id);
		st = ETCD_ERR_LEASE_NOT_FOUND;
		goto done;
	}
	if (ttl_left != NULL)
		*ttl_left = ttl;

done:
	json_decref(root);
	return st;
}

/* Replies that carry nothing but a header (put, revoke) */
static EtcdStatus
parse_plain(const char *body, char *errbuf, size_t errlen)
{
	json_t	   *root;
	EtcdStatus	st;
	int64_t		revision;

	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	st = check_reply(root, &revision, errbuf, errlen);
	json_decref(root);
	return st;
}

static EtcdStatus
parse_delete(const char *body, int64_t *deleted, char *errbuf, size_t errlen)
{
	json_t	   *root;
	EtcdStatus	st;
	int64_t		revision;

	root = load_object(body, errbuf, errlen);
	if (root == NULL)
		return ETCD_ERR_PROTOCOL;
	st = check_reply(root, &revision, errbuf, errlen);
	if (st == ETCD_OK && !get_int64(root, "deleted", deleted, errbuf, errlen))
		st = ETCD_ERR_PROTOCOL;
	json_decref(root);
	return st;
}


/* ----------------------------------------------------------------
 * Client setup
 * ----------------------------------------------------------------
 */

static void
free_endpoints(char **endpoints, int n)
{
	int			i;

	if (endpoints == NULL)
		return;
	for (i = 0; i < n; i++)
		free(endpoints[i]);
	free(endpoints);
}

/*
 * Split "http://a:2379, http://b:2379" into trimmed entries, each of which
 * must be an http or https URL.  Returns the count, or -1 with errbuf set.
 */
static int
parse_endpoints(const char *list, char ***out, char *errbuf, size_t errlen)
{
	char	  **eps = NULL;
	int			n = 0;
	int			cap = 0;
	const char *p = list;

	*out = NULL;
	if (list == NULL || list[strspn(list, " \t\r\n")] == '\0')
	{
		set_msg(errbuf, errlen, "no etcd endpoints given");
		return -1;
	}

	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		const char *start = p;
		size_t		schemelen;
		size_t		entrylen;
		char	   *ep;

		while (len > 0 && (*start == ' ' || *start == '\t' ||
						   *start == '\r' || *start == '\n'))
		{
			start++;
			len--;
		}
		while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' ||
						   start[len - 1] == '\r' || start[len - 1] == '\n'))
			len--;
		if (len == 0)
		{
			set_msg(errbuf, errlen,
					"etcd endpoint list \"%s\" has an empty entry", list);
			goto fail;
		}
		if (len >= 7 && strncasecmp(start, "http://", 7) == 0)
			schemelen = 7;
		else if (len >= 8 && strncasecmp(start, "https://", 8) == 0)
			schemelen = 8;
		else
			schemelen = 0;
		entrylen = len;
		/* "http://host:2379/" + "/v3/..." would give a double slash */
		while (len > schemelen && start[len - 1] == '/')
			len--;
		if (schemelen == 0 || len == schemelen)
		{
			set_msg(errbuf, errlen,
					"invalid etcd endpoint \"%.*s\": it must start with http:// or https:// and name a host",
					(int) entrylen, start);
			goto fail;
		}

		if (n == cap)
		{
			char	  **bigger;

			cap = cap ? cap * 2 : 4;
			bigger = realloc(eps, cap * sizeof(char *));
			if (bigger == NULL)
				goto oom;
			eps = bigger;
		}
		ep = malloc(len + 1);
		if (ep == NULL)
			goto oom;
		memcpy(ep, start, len);
		ep[len] = '\0';
		eps[n++] = ep;

		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*out = eps;
	return n;

oom:
	set_msg(errbuf, errlen, "out of memory");
fail:
	free_endpoints(eps, n);
	return -1;
}

EtcdClient *
etcd_client_create(const char *endpoints, long timeout_ms,
				   char *errbuf, size_t errlen)
{
	EtcdClient *client;
	char	  **eps;
	int			n;

	set_msg(errbuf, errlen, "%s", "");
	if (timeout_ms <= 0)
	{
		set_msg(errbuf, errlen, "etcd request timeout must be positive, not %ld ms",
				timeout_ms);
		return NULL;
	}
	n = parse_endpoints(endpoints, &eps, errbuf, errlen);
	if (n < 0)
		return NULL;

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		{
			set_msg(errbuf, errlen, "could not initialize libcurl");
			free_endpoints(eps, n);
			return NULL;
		}
		curl_initialized = true;
	}

	client = calloc(1, sizeof(EtcdClient));
	if (client == NULL)
	{
		set_msg(errbuf, errlen, "out of memory");
		free_endpoints(eps, n);
		return NULL;
	}
	client->endpoints = eps;
	client->nendpoints = n;
	client->timeout_ms = timeout_ms;
	client->curl = curl_easy_init();
	if (client->curl == NULL)
	{
		set_msg(errbuf, errlen, "could not create a libcurl handle");
		etcd_client_destroy(client);
		return NULL;
	}
	return client;
}

void
etcd_client_destroy(EtcdClient *client)
{
	if (client == NULL)
		return;
	if (client->curl != NULL)
		curl_easy_cleanup(client->curl);
	free_endpoints(client->endpoints, client->nendpoints);
	free(client->username);
	free(client->password);
	free(client->token);
	free(client->cacert);
	free(client->cert);
	free(client->key);
	free(client);
}

/* Non-positive values are ignored: curl would read 0 as "wait forever". */
void
etcd_client_set_timeout(EtcdClient *client, long timeout_ms)
{
	if (client != NULL && timeout_ms > 0)
		client->timeout_ms = timeout_ms;
}

void
etcd_client_set_abort_check(EtcdClient *client,
							bool (*should_abort) (void *arg), void *arg)
{
	if (client == NULL)
		return;
	client->should_abort = should_abort;
	client->abort_arg = arg;
}

void
etcd_client_set_auth(EtcdClient *client, const char *username,
					 const char *password)
{
	if (client == NULL)
		return;
	/* called on every configuration reload: keep a token that still fits */
	if (same_optional(client->username, username) &&
		(client->username == NULL ||
		 (client->password != NULL &&
		  strcmp(client->password, password ? password : "") == 0)))
		return;
	free(client->username);
	free(client->password);
	free(client->token);
	client->username = dup_optional(username);
	client->password = client->username ? strdup(password ? password : "") : NULL;
	client->token = NULL;
}

void
etcd_client_set_tls(EtcdClient *client, const char *cacert,
					const char *cert, const char *key)
{
	if (client == NULL)
		return;
	/* called on every configuration reload: keep the connection if we can */
	if (same_optional(client->cacert, cacert) &&
		same_optional(client->cert, cert) &&
		same_optional(client->key, key))
		return;
	free(client->cacert);
	free(client->cert);
	free(client->key);
	client->cacert = dup_optional(cacert);
	client->cert = dup_optional(cert);
	client->key = dup_optional(key);

	/*
	 * Start over with a fresh handle, so that neither a cached connection
	 * nor a cached TLS session made under the old settings can be reused
	 * (a resumed session skips certificate checks).  post_once() makes the
	 * new handle.
	 */
	if (client->curl != NULL)
		curl_easy_cleanup(client->curl);
	client->curl = NULL;
}

const char *
etcd_last_error(const EtcdClient *client)
{
	if (client == NULL)
		return "no etcd client";
	return client->error;
}

const char *
etcd_current_endpoint(const EtcdClient *client)
{
	if (client == NULL || client->nendpoints == 0)
		return "";
	return client->endpoints[client->last_tried];
}


/* ----------------------------------------------------------------
 * HTTP
 * ----------------------------------------------------------------
 */

static size_t
reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ReplyBuffer *buf = (ReplyBuffer *) userdata;
	size_t		n = size * nmemb;

	if (n > ETCD_MAX_REPLY_BYTES || buf->len + n > ETCD_MAX_REPLY_BYTES)
	{
		buf->too_big = true;
		return 0;				/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (buf->len + n + 1 > buf->cap)
	{
		size_t		newcap = buf->cap ? buf->cap : 4096;
		char	   *bigger;

		while (newcap < buf->len + n + 1)
			newcap *= 2;
		bigger = realloc(buf->data, newcap);
		if (bigger == NULL)
		{
			buf->out_of_memory = true;
			return 0;
		}
		buf->data = bigger;
		buf->cap = newcap;
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return n;
}

/*
 * Polled by curl while a request is in flight (at least about once a
 * second, and on every bit of progress); non-zero aborts the transfer.
 */
static int
progress_check(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	EtcdClient *client = (EtcdClient *) clientp;

	if (client->should_abort != NULL && client->should_abort(client->abort_arg))
		return 1;
	return 0;
}

static bool
abort_requested(EtcdClient *client)
{
	return client->should_abort != NULL &&
		client->should_abort(client->abort_arg);
}

/*
 * POST body to one endpoint.  Returns ETCD_OK when an HTTP reply arrived,
 * whatever its status (in *http_code, body in *reply); otherwise the
 * reason, described in why.
 */
static EtcdStatus
post_once(EtcdClient *client, int idx, const char *path, const char *body,
		  bool with_token, ReplyBuffer *reply, long *http_code,
		  char *why, size_t whylen)
{
	CURL	   *curl;
	const char *ep = client->endpoints[idx];
	struct curl_slist *headers = NULL;
	struct curl_slist *h;
	char	   *url;
	char	   *auth = NULL;
	CURLcode	rc;
	EtcdStatus	st;
	bool		ok;
	size_t		urllen = strlen(ep) + strlen(path) + 1;

	*http_code = 0;
	if (client->curl == NULL && (client->curl = curl_easy_init()) == NULL)
	{
		set_msg(why, whylen, "could not create a libcurl handle");
		return ETCD_ERR_ARGUMENT;
	}
	curl = client->curl;
	url = malloc(urllen);
	if (url == NULL)
	{
		set_msg(why, whylen, "out of memory");
		return ETCD_ERR_ARGUMENT;
	}
	snprintf(url, urllen, "%s%s", ep, path);

	/*
	 * "Expect:" stops curl from waiting for a 100 Continue on large bodies;
	 * etcd 3.4 wants the bare token, without "Bearer".
	 */
	if (with_token && client->token != NULL)
	{
		size_t		alen = strlen(client->token) + sizeof("Authorization: ");

		auth = malloc(alen);
		if (auth != NULL)
			snprintf(auth, alen, "Authorization: %s", client->token);
	}
	ok = (with_token && client->token != NULL) ? (auth != NULL) : true;
	if (ok && (h = curl_slist_append(headers, "Content-Type: application/json")) != NULL)
		headers = h;
	else
		ok = false;
	if (ok && (h = curl_slist_append(headers, "Expect:")) != NULL)
		headers = h;
	else
		ok = false;
	if (ok && auth != NULL)
	{
		if ((h = curl_slist_append(headers, auth)) != NULL)
			headers = h;
		else
			ok = false;
	}
	if (!ok)
	{
		curl_slist_free_all(headers);
		free(url);
		free(auth);
		set_msg(why, whylen, "out of memory");
		return ETCD_ERR_ARGUMENT;
	}

	memset(reply, 0, sizeof(*reply));
	client->curl_error[0] = '\0';

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, client->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
					 client->timeout_ms < 1000 ? client->timeout_ms : 1000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_check);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *) client);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, reply_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *) reply);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, client->curl_error);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);

	/*
	 * A proxy from the environment (http_proxy etc.) would put a third
	 * party between the cluster and its leader lease; etcd is always
	 * talked to directly.
	 */
	curl_easy_setopt(curl, CURLOPT_PROXY, "");

	/*
	 * Only set what was configured: setting CURLOPT_CAINFO to NULL would
	 * also drop curl's default CA bundle.
	 */
	if (client->cacert != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, client->cacert);
	if (client->cert != NULL)
		curl_easy_setopt(curl, CURLOPT_SSLCERT, client->cert);
	if (client->key != NULL)
		curl_easy_setopt(curl, CURLOPT_SSLKEY, client->key);

	rc = curl_easy_perform(curl);

	/* the handle must not keep pointers to memory freed below */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, (struct curl_slist *) NULL);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (char *) NULL);
	curl_slist_free_all(headers);
	free(auth);
	free(url);

	if (rc == CURLE_OK)
	{
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_code);
		if (reply->data == NULL)
		{
			/* an empty body still has to be a string for the parsers */
			reply->data = strdup("");
			if (reply->data == NULL)
			{
				set_msg(why, whylen, "out of memory");
				return ETCD_ERR_ARGUMENT;
			}
		}
		return ETCD_OK;
	}

	if (rc == CURLE_ABORTED_BY_CALLBACK)
	{
		set_msg(why, whylen, "request to etcd at %s was aborted", ep);
		st = ETCD_ERR_ABORTED;
	}
	else if (reply->too_big)
	{
		set_msg(why, whylen, "reply from etcd at %s is larger than %d bytes",
				ep, ETCD_MAX_REPLY_BYTES);
		st = ETCD_ERR_PROTOCOL;
	}
	else if (reply->out_of_memory)
	{
		set_msg(why, whylen, "out of memory reading the reply from etcd at %s",
				ep);
		st = ETCD_ERR_PROTOCOL;
	}
	else if (rc == CURLE_OPERATION_TIMEDOUT)
	{
		/* curl's text tells a connect (or TLS) timeout from a slow reply */
		set_msg(why, whylen, "etcd at %s timed out: %s", ep,
				client->curl_error[0] ? client->curl_error : curl_easy_strerror(rc));
		st = ETCD_ERR_TIMEOUT;
	}
	else
	{
		set_msg(why, whylen, "could not reach etcd at %s: %s", ep,
				client->curl_error[0] ? client->curl_error : curl_easy_strerror(rc));
		st = ETCD_ERR_TRANSPORT;
	}
	free(reply->data);
	memset(reply, 0, sizeof(*reply));
	return st;
}

/*
 * POST body to path, failing over between endpoints.  On ETCD_OK *reply
 * is the malloc'd body of an HTTP 200 reply.  Otherwise client->error says
 * why, and *grpc_code is etcd's error code when etcd answered with one.
 */
static EtcdStatus
post_with_failover(EtcdClient *client, const char *path, const char *body,
				   bool with_token, char **reply, int *grpc_code)
{
	char		why[ETCD_ERROR_LEN];
	bool		timed_out = false;
	int			k;
	size_t		used;

	*reply = NULL;
	*grpc_code = -1;
	client->error[0] = '\0';

	for (k = 0; k < client->nendpoints; k++)
	{
		int			idx = (client->current + k) % client->nendpoints;
		ReplyBuffer buf;
		long		http_code;
		EtcdStatus	st;

		/* no point in starting a request the caller no longer wants */
		if (abort_requested(client))
		{
			client_error(client, "request to etcd aborted");
			return ETCD_ERR_ABORTED;
		}

		client->last_tried = idx;
		st = post_once(client, idx, path, body, with_token, &buf, &http_code,
					   why, sizeof(why));

		if (st == ETCD_ERR_TRANSPORT || st == ETCD_ERR_TIMEOUT)
		{
			/* remember every endpoint's failure, for the final message */
			if (st == ETCD_ERR_TIMEOUT)
				timed_out = true;
			used = strlen(client->error);
			snprintf(client->error + used, sizeof(client->error) - used,
					 "%s%s", used > 0 ? "; " : "", why);
			continue;
		}
		if (st != ETCD_OK)
		{
			client_error(client, "%s", why);
			return st;
		}

		/* an answer: this endpoint is where the next call starts */
		client->current = idx;
		if (http_code != 200)
		{
			char		msg[ETCD_MSG_LEN];
			json_t	   *root = load_object(buf.data, msg, sizeof(msg));

			st = ETCD_ERR_PROTOCOL;
			if (root != NULL)
			{
				st = error_from_json(root, grpc_code, msg, sizeof(msg));
				json_decref(root);
				if (st == ETCD_OK)
				{
					snippet(buf.data, msg, sizeof(msg));
					st = ETCD_ERR_PROTOCOL;
				}
			}
			else
				snippet(buf.data, msg, sizeof(msg));

			if (st == ETCD_ERR_PROTOCOL)
				client_error(client, "etcd at %s: unexpected HTTP %ld reply to %s: %s",
							 client->endpoints[idx], http_code, path, msg);
			else
				client_error(client, "etcd at %s: %s",
							 client->endpoints[idx], msg);
			free(buf.data);
			return st;
		}
		*reply = buf.data;
		return ETCD_OK;
	}
	return timed_out ? ETCD_ERR_TIMEOUT : ETCD_ERR_TRANSPORT;
}

/* Get a token for the configured user; client->error says why not. */
static EtcdStatus
authenticate(EtcdClient *client)
{
	json_t	   *req;
	json_t	   *root;
	json_t	   *tok;
	char	   *body;
	char	   *reply = NULL;
	char		msg[ETCD_MSG_LEN];
	int			code;
	int64_t		revision;
	EtcdStatus	st;

	free(client->token);
	client->token = NULL;

	req = json_pack("{s:s, s:s}", "name", client->username,
					"password", client->password);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
	{
		client_error(client, "out of memory");
		return ETCD_ERR_ARGUMENT;
	}
	st = post_with_failover(client, "/v3/auth/authenticate", body, false,
							&reply, &code);
	free(body);
	if (st != ETCD_OK)
	{
		char		saved[ETCD_ERROR_LEN];

		memcpy(saved, client->error, sizeof(saved));
		client_error(client, "could not authenticate to etcd as \"%s\": %s",
					 client->username, saved);
		return st;
	}

	root = load_object(reply, msg, sizeof(msg));
	free(reply);
	if (root == NULL)
		st = ETCD_ERR_PROTOCOL;
	else
	{
		st = check_reply(root, &revision, msg, sizeof(msg));
		tok = json_object_get(root, "token");
		if (st == ETCD_OK)
		{
			if (json_is_string(tok) && json_string_length(tok) > 0)
			{
				client->token = strdup(json_string_value(tok));
				if (client->token == NULL)
				{
					set_msg(msg, sizeof(msg), "out of memory");
					st = ETCD_ERR_PROTOCOL;
				}
			}
			else
			{
				set_msg(msg, sizeof(msg), "authenticate reply has no token");
				st = ETCD_ERR_PROTOCOL;
			}
		}
		json_decref(root);
	}
	if (st != ETCD_OK)
		client_error(client, "could not authenticate to etcd as \"%s\": etcd at %s: %s",
					 client->username, etcd_current_endpoint(client), msg);
	return st;
}

/*
 * Send one request (freeing req) and return the body of etcd's successful
 * reply in *reply.  Takes care of authentication: a token is fetched before
 * the first call, and fetched again once if etcd says it is no longer
 * valid (tokens expire, and a simple token is only known to the members
 * that saw it).
 */
static EtcdStatus
etcd_call(EtcdClient *client, const char *path, json_t *req, char **reply)
{
	char	   *body;
	EtcdStatus	st;
	int			code;

	*reply = NULL;
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
	{
		client_error(client, "out of memory building a request for etcd");
		return ETCD_ERR_ARGUMENT;
	}

	if (client->username != NULL && client->token == NULL)
	{
		st = authenticate(client);
		if (st != ETCD_OK)
		{
			free(body);
			return st;
		}
	}

	st = post_with_failover(client, path, body, true, reply, &code);
	if (st == ETCD_ERR_SERVER && code == GRPC_UNAUTHENTICATED &&
		client->username != NULL)
	{
		st = authenticate(client);
		if (st == ETCD_OK)
			st = post_with_failover(client, path, body, true, reply, &code);
	}
	free(body);
	return st;
}

/* Record a parse failure of a reply from the current endpoint. */
static EtcdStatus
reply_status(EtcdClient *client, EtcdStatus st, const char *msg)
{
	if (st != ETCD_OK)
		client_error(client, "etcd at %s: %s", etcd_current_endpoint(client),
					 msg);
	return st;
}


/* ----------------------------------------------------------------
 * Requests
 * ----------------------------------------------------------------
 */

static int
set_int64(json_t *obj, const char *name, int64_t value)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return json_object_set_new(obj, name, json_string(buf));
}

/* Set obj[name] to the base64 of len bytes of data. */
static int
set_bytes(json_t *obj, const char *name, const char *data, size_t len)
{
	char	   *b64 = etcd_base64_encode(data, len);
	int			rc;

	if (b64 == NULL)
		return -1;
	rc = json_object_set_new(obj, name, json_string(b64));
	free(b64);
	return rc;
}

/*
 * "key" and, for a prefix, "range_end".  Like clientv3's WithPrefix, an
 * empty prefix means every key: key "\0" with range end "\0".
 */
static int
set_key_range(json_t *obj, const char *key, bool prefix)
{
	char	   *end;
	size_t		endlen;
	int			rc;

	if (!prefix)
		return set_bytes(obj, "key", key, strlen(key));

	if (key[0] == '\0')
		rc = set_bytes(obj, "key", "", 1);
	else
		rc = set_bytes(obj, "key", key, strlen(key));
	if (rc != 0)
		return rc;
	end = range_end_with_len(key, &endlen);
	if (end == NULL)
		return -1;
	rc = set_bytes(obj, "range_end", end, endlen);
	free(end);
	return rc;
}

/* Check the common arguments; an empty key is only meaningful as a prefix. */
static bool
check_key(EtcdClient *client, const char *key, bool prefix)
{
	if (key == NULL || (key[0] == '\0' && !prefix))
	{
		client_error(client, "an etcd key must not be empty");
		return false;
	}
	return true;
}

/* {"ID": "<lease>"}, or NULL when out of memory (etcd_call reports that) */
static json_t *
lease_id_request(int64_t lease_id)
{
	json_t	   *req = json_object();

	if (req != NULL && set_int64(req, "ID", lease_id) != 0)
	{
		json_decref(req);
		req = NULL;
	}
	return req;
}

EtcdStatus
etcd_lease_grant(EtcdClient *client, int64_t ttl, int64_t *lease_id,
				 int64_t *granted_ttl)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;

	if (lease_id != NULL)
		*lease_id = 0;
	if (granted_ttl != NULL)
		*granted_ttl = 0;
	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (ttl <= 0)
	{
		client_error(client, "lease TTL must be positive, not %" PRId64, ttl);
		return ETCD_ERR_ARGUMENT;
	}

	req = json_object();
	if (req != NULL && set_int64(req, "TTL", ttl) != 0)
	{
		json_decref(req);
		req = NULL;
	}
	st = etcd_call(client, "/v3/lease/grant", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = etcd_parse_lease_grant(reply, lease_id, granted_ttl, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

EtcdStatus
etcd_lease_keepalive(EtcdClient *client, int64_t lease_id, int64_t *ttl_left)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;

	if (ttl_left != NULL)
		*ttl_left = 0;
	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (lease_id <= 0)
	{
		client_error(client, "invalid lease ID %" PRId64, lease_id);
		return ETCD_ERR_ARGUMENT;
	}

	req = lease_id_request(lease_id);
	st = etcd_call(client, "/v3/lease/keepalive", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = etcd_parse_keepalive(reply, ttl_left, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

EtcdStatus
etcd_lease_revoke(EtcdClient *client, int64_t lease_id)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;

	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (lease_id <= 0)
	{
		client_error(client, "invalid lease ID %" PRId64, lease_id);
		return ETCD_ERR_ARGUMENT;
	}

	req = lease_id_request(lease_id);
	st = etcd_call(client, "/v3/lease/revoke", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = parse_plain(reply, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

EtcdStatus
etcd_range(EtcdClient *client, const char *key, bool prefix,
		   EtcdRangeResult *result)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;

	if (result != NULL)
		memset(result, 0, sizeof(*result));
	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (result == NULL || !check_key(client, key, prefix))
		return ETCD_ERR_ARGUMENT;

	req = json_object();
	if (req != NULL && set_key_range(req, key, prefix) != 0)
	{
		json_decref(req);
		req = NULL;
	}
	st = etcd_call(client, "/v3/kv/range", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = etcd_parse_range(reply, result, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

EtcdStatus
etcd_put(EtcdClient *client, const char *key, const char *value, int64_t lease)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;

	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (!check_key(client, key, false))
		return ETCD_ERR_ARGUMENT;
	if (value == NULL || lease < 0)
	{
		client_error(client, "invalid value or lease for etcd key \"%s\"", key);
		return ETCD_ERR_ARGUMENT;
	}

	req = json_object();
	if (req != NULL &&
		(set_bytes(req, "key", key, strlen(key)) != 0 ||
		 set_bytes(req, "value", value, strlen(value)) != 0 ||
		 (lease != 0 && set_int64(req, "lease", lease) != 0)))
	{
		json_decref(req);
		req = NULL;
	}
	st = etcd_call(client, "/v3/kv/put", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = parse_plain(reply, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

EtcdStatus
etcd_delete(EtcdClient *client, const char *key, bool prefix,
			int64_t *deleted)
{
	json_t	   *req;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	int64_t		ndeleted = 0;
	EtcdStatus	st;

	if (deleted != NULL)
		*deleted = 0;
	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (!check_key(client, key, prefix))
		return ETCD_ERR_ARGUMENT;

	req = json_object();
	if (req != NULL && set_key_range(req, key, prefix) != 0)
	{
		json_decref(req);
		req = NULL;
	}
	st = etcd_call(client, "/v3/kv/deleterange", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = parse_delete(reply, &ndeleted, msg, sizeof(msg));
	free(reply);
	if (st == ETCD_OK && deleted != NULL)
		*deleted = ndeleted;
	return reply_status(client, st, msg);
}

static json_t *
build_compare(const EtcdCompare *cmp)
{
	static const char *const targets[] = {
		"VERSION", "CREATE", "MOD", "VALUE", "LEASE"
	};
	static const char *const fields[] = {
		"version", "create_revision", "mod_revision", "value", "lease"
	};
	static const char *const results[] = {
		"EQUAL", "NOT_EQUAL", "GREATER", "LESS"
	};
	json_t	   *obj;
	int			rc;

	if (cmp->key == NULL || cmp->key[0] == '\0' ||
		(int) cmp->target < 0 || (int) cmp->target > ETCD_CMP_LEASE ||
		(int) cmp->result < 0 || (int) cmp->result > ETCD_CMP_LESS)
		return NULL;

	obj = json_object();
	if (obj == NULL)
		return NULL;
	rc = set_bytes(obj, "key", cmp->key, strlen(cmp->key));
	rc |= json_object_set_new(obj, "target", json_string(targets[cmp->target]));
	rc |= json_object_set_new(obj, "result", json_string(results[cmp->result]));
	if (cmp->target == ETCD_CMP_VALUE)
	{
		const char *v = cmp->value ? cmp->value : "";

		rc |= set_bytes(obj, fields[cmp->target], v, strlen(v));
	}
	else
		rc |= set_int64(obj, fields[cmp->target], cmp->number);
	if (rc != 0)
	{
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static json_t *
build_op(const EtcdOp *op)
{
	json_t	   *inner;
	json_t	   *outer;
	const char *name;
	int			rc;

	if (op->key == NULL || (op->key[0] == '\0' && !(op->prefix && op->type != ETCD_OP_PUT)))
		return NULL;

	inner = json_object();
	if (inner == NULL)
		return NULL;
	switch (op->type)
	{
		case ETCD_OP_RANGE:
			name = "request_range";
			rc = set_key_range(inner, op->key, op->prefix);
			break;
		case ETCD_OP_PUT:
			name = "request_put";
			if (op->value == NULL || op->lease < 0)
				rc = -1;
			else
			{
				rc = set_bytes(inner, "key", op->key, strlen(op->key));
				rc |= set_bytes(inner, "value", op->value, strlen(op->value));
				if (op->lease != 0)
					rc |= set_int64(inner, "lease", op->lease);
			}
			break;
		case ETCD_OP_DELETE:
			name = "request_delete_range";
			rc = set_key_range(inner, op->key, op->prefix);
			break;
		default:
			name = NULL;
			rc = -1;
			break;
	}
	if (rc != 0)
	{
		json_decref(inner);
		return NULL;
	}
	outer = json_object();
	if (outer == NULL || json_object_set_new(outer, name, inner) != 0)
	{
		json_decref(outer);
		return NULL;
	}
	return outer;
}

static int
append_ops(json_t *array, const EtcdOp *ops, int nops)
{
	int			i;

	for (i = 0; i < nops; i++)
	{
		json_t	   *op = build_op(&ops[i]);

		if (op == NULL || json_array_append_new(array, op) != 0)
			return -1;
	}
	return 0;
}

EtcdStatus
etcd_txn(EtcdClient *client,
		 const EtcdCompare *compare, int ncompare,
		 const EtcdOp *success, int nsuccess,
		 const EtcdOp *failure, int nfailure,
		 EtcdTxnResult *result)
{
	json_t	   *req;
	json_t	   *cmps;
	json_t	   *succ;
	json_t	   *fail;
	char	   *reply;
	char		msg[ETCD_MSG_LEN];
	EtcdStatus	st;
	int			i;
	int			rc;
	bool		ok = true;

	if (result != NULL)
		memset(result, 0, sizeof(*result));
	if (client == NULL)
		return ETCD_ERR_ARGUMENT;
	if (result == NULL || ncompare < 0 || nsuccess < 0 || nfailure < 0 ||
		(ncompare > 0 && compare == NULL) ||
		(nsuccess > 0 && success == NULL) ||
		(nfailure > 0 && failure == NULL))
	{
		client_error(client, "invalid etcd transaction");
		return ETCD_ERR_ARGUMENT;
	}

	req = json_object();
	cmps = json_array();
	succ = json_array();
	fail = json_array();
	if (req == NULL || cmps == NULL || succ == NULL || fail == NULL)
		ok = false;
	for (i = 0; ok && i < ncompare; i++)
	{
		json_t	   *c = build_compare(&compare[i]);

		if (c == NULL || json_array_append_new(cmps, c) != 0)
			ok = false;
	}
	if (ok && (append_ops(succ, success, nsuccess) != 0 ||
			   append_ops(fail, failure, nfailure) != 0))
		ok = false;
	if (!ok)
	{
		json_decref(req);
		json_decref(cmps);
		json_decref(succ);
		json_decref(fail);
		client_error(client, "invalid etcd transaction (empty key, missing value or unknown operation)");
		return ETCD_ERR_ARGUMENT;
	}
	/* each set_new consumes its value even when it fails */
	rc = json_object_set_new(req, "compare", cmps);
	rc |= json_object_set_new(req, "success", succ);
	rc |= json_object_set_new(req, "failure", fail);
	if (rc != 0)
	{
		json_decref(req);
		req = NULL;
	}

	st = etcd_call(client, "/v3/kv/txn", req, &reply);
	if (st != ETCD_OK)
		return st;
	st = etcd_parse_txn(reply, result, msg, sizeof(msg));
	free(reply);
	return reply_status(client, st, msg);
}

/*
 * Conditional writes: the read-modify-write of a key that other clients may
 * write too.  mod_revision is the key's mod_revision as last read, or 0 for
 * "only if the key does not exist" (create_revision == 0).  *applied says
 * whether the condition held; *revision (may be NULL) is the revision of
 * the write.
 */
static void
set_unchanged_compare(EtcdCompare *cmp, const char *key, int64_t mod_revision)
{
	memset(cmp, 0, sizeof(*cmp));
	cmp->key = key;
	cmp->target = mod_revision == 0 ? ETCD_CMP_CREATE : ETCD_CMP_MOD;
	cmp->result = ETCD_CMP_EQUAL;
	cmp->number = mod_revision;
}

static EtcdStatus
txn_if_unchanged(EtcdClient *client, const char *key, int64_t mod_revision,
				 const EtcdOp *op, bool *applied, int64_t *revision)
{
	EtcdCompare cmp;
	EtcdTxnResult txn;
	EtcdStatus	st;

	*applied = false;
	set_unchanged_compare(&cmp, key, mod_revision);
	st = etcd_txn(client, &cmp, 1, op, 1, NULL, 0, &txn);
	if (st != ETCD_OK)
		return st;
	*applied = txn.succeeded;
	if (revision != NULL)
		*revision = txn.revision;
	etcd_txn_result_free(&txn);
	return ETCD_OK;
}

EtcdStatus
etcd_put_if_unchanged(EtcdClient *client, const char *key, const char *value,
					  int64_t lease, int64_t mod_revision,
					  bool *applied, int64_t *revision)
{
	EtcdOp		put;

	memset(&put, 0, sizeof(put));
	put.type = ETCD_OP_PUT;
	put.key = key;
	put.value = value;
	put.lease = lease;
	return txn_if_unchanged(client, key, mod_revision, &put, applied, revision);
}

EtcdStatus
etcd_delete_if_unchanged(EtcdClient *client, const char *key,
						 int64_t mod_revision, bool *applied)
{
	EtcdOp		del;

	memset(&del, 0, sizeof(del));
	del.type = ETCD_OP_DELETE;
	del.key = key;
	return txn_if_unchanged(client, key, mod_revision, &del, applied, NULL);
}
