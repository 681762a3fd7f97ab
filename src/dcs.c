/*-------------------------------------------------------------------------
 *
 * dcs.c
 *	  The cluster's keys in etcd, in Patroni's layout, and their contents.
 *
 * Patroni (3.0.x, etcd3 backend) keeps one cluster under
 * <namespace>/<scope>/: "leader" (the leader's name, attached to its
 * lease), "members/<name>" (JSON), "initialize" (system identifier as
 * text; empty while a bootstrap is in progress), "status" (JSON
 * {"optime": N, ...}), the legacy "optime/leader" (plain decimal LSN),
 * "failover" (a switchover or manual failover request), "config" (of
 * which only "pause" is read here) and "history" (the timeline history
 * as a JSON array), plus "sync" and "failsafe", which this module does
 * not interpret.
 *
 * Everything here is pure: no I/O, no PostgreSQL headers, only libc and
 * jansson.  Values handed in are the already base64-decoded strings from
 * etcd.c.  Anything read from etcd may have been written by another
 * program (Patroni, an operator with etcdctl, a bug), so the parsers check
 * every type, never trust a length, and report what they did not like
 * instead of crashing or giving up on the whole cluster.
 *
 * Decisions where Patroni leaves room (see also test/unit/test_dcs.c):
 *	- "version" in our member JSON is "pg_autoha 1.0".  Patroni only uses
 *	  the field to compute the cluster's minimum version, and a value that
 *	  does not parse as dotted integers is skipped by it.
 *	- A member without conn_url (and without conn_kwargs) is still a
 *	  member: host is "" and port 0.  It then still counts when comparing
 *	  positions in an election, but nobody can follow it; users of host
 *	  must check for "".
 *	- JSON null in an optional field means "absent".
 *	- The "master" role (Patroni <= 3.0) is reported as "primary".
 *	- Slot names follow Patroni's rule exactly (u<codepoint> for unusual
 *	  characters), except that lowercasing of non-ASCII letters only
 *	  covers Latin-1.
 *	- A failover request naming a member too long for AUTOHA_NAME_LEN is
 *	  malformed and names nobody; it is never cut to a different name.
 *	- "pause" follows Patroni's parse_bool(str(value).lower()) exactly, so
 *	  2 or 1.0 do not pause, though 1 and "on" do.
 *	- Text that cannot be stored as JSON (not UTF-8) is written with its
 *	  non-ASCII bytes as '?' rather than not at all.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_compat.h"

#include "dcs.h"

#define DCS_DEFAULT_NAMESPACE	"service"
#define DCS_DEFAULT_PGPORT		5432
#define DCS_VERSION_STRING		"pg_autoha 1.0"
#define DCS_SLOT_NAME_MAX		63	/* NAMEDATALEN - 1, Patroni's [0:63] */

#define DCS_KEY_LEADER			"leader"
#define DCS_KEY_INITIALIZE		"initialize"
#define DCS_KEY_STATUS			"status"
#define DCS_KEY_LEADER_OPTIME	"optime/leader"
#define DCS_KEY_MEMBERS			"members/"
#define DCS_KEY_FAILOVER		"failover"
#define DCS_KEY_CONFIG			"config"
#define DCS_KEY_HISTORY			"history"
#define DCS_KEY_SYNC			"sync"

static void set_error(char *errbuf, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));


/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */

/*
 * Copy at most len bytes of src into dst, always NUL-terminating.  When the
 * copy has to be cut, it is cut before a UTF-8 continuation byte so that a
 * multibyte character is never split (a half character would make the
 * value invalid in PostgreSQL's UTF-8 databases and in JSON).  Returns
 * false when the copy was truncated.
 */
static bool
copy_bytes(char *dst, size_t dstlen, const char *src, size_t len)
{
	bool		complete = true;

	if (dstlen == 0)
		return false;
	if (src == NULL)
		len = 0;
	if (len >= dstlen)
	{
		len = dstlen - 1;
		while (len > 0 && ((unsigned char) src[len] & 0xC0) == 0x80)
			len--;
		complete = false;
	}
	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
	return complete;
}

static bool
copy_str(char *dst, size_t dstlen, const char *src)
{
	return copy_bytes(dst, dstlen, src, src ? strlen(src) : 0);
}

static void
set_error(char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/*
 * A non-empty string of decimal digits that fits in 64 bits.  Patroni
 * writes LSNs as Python ints, and the legacy optime/leader key as str(int),
 * so there is no sign, no blank and no hexadecimal to accept.
 */
static bool
parse_uint64_text(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (s == NULL || len == 0)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned	d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned) (s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* A JSON integer >= 0, or a string of digits (older writers, hand edits). */
static bool
json_to_uint64(const json_t *value, uint64_t *out)
{
	if (json_is_integer(value))
	{
		json_int_t	i = json_integer_value(value);

		if (i < 0)
			return false;
		*out = (uint64_t) i;
		return true;
	}
	if (json_is_string(value))
		return parse_uint64_text(json_string_value(value),
								 json_string_length(value), out);
	return false;
}

/* JSON null is treated as if the key were not there at all. */
static json_t *
object_get(const json_t *obj, const char *key)
{
	json_t	   *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}


/* ---------------------------------------------------------------------
 * Keys
 * ---------------------------------------------------------------------
 */

/*
 * Patroni builds its base path as re.sub('/+', '/', '/'.join(['', namespace,
 * scope])) and then appends '/': a leading slash is always there, runs of
 * slashes collapse, and an empty namespace simply disappears.  Doing the
 * same makes both programs agree on the prefix for any spelling of the
 * namespace setting.  NULL namespace means Patroni's default, "service".
 *
 * buf is always NUL-terminated; if it is too small the prefix is cut,
 * which callers avoid by using buffers far larger than any GUC value.
 */
void
dcs_cluster_prefix(char *buf, size_t buflen,
				   const char *namespace_, const char *cluster)
{
	const char *parts[2];
	size_t		n = 0;
	int			i;

	if (buf == NULL || buflen == 0)
		return;
	parts[0] = namespace_ ? namespace_ : DCS_DEFAULT_NAMESPACE;
	parts[1] = cluster ? cluster : "";

#define PUT_CHAR(c) \
	do { \
		if (n + 1 < buflen) \
			buf[n++] = (c); \
	} while (0)

	PUT_CHAR('/');
	for (i = 0; i < 2; i++)
	{
		const char *p;

		for (p = parts[i]; *p; p++)
		{
			if (*p == '/' && n > 0 && buf[n - 1] == '/')
				continue;
			PUT_CHAR(*p);
		}
		if (n > 0 && buf[n - 1] != '/')
			PUT_CHAR('/');
	}
#undef PUT_CHAR
	buf[n] = '\0';
}

/*
 * prefix + suffix.  Like Patroni's client_path(), leading slashes of the
 * suffix are dropped; a prefix given without its trailing slash gets one.
 */
void
dcs_key(char *buf, size_t buflen, const char *prefix, const char *suffix)
{
	size_t		plen;
	const char *sep;

	if (buf == NULL || buflen == 0)
		return;
	if (prefix == NULL)
		prefix = "";
	if (suffix == NULL)
		suffix = "";
	while (*suffix == '/')
		suffix++;
	plen = strlen(prefix);
	sep = (plen > 0 && prefix[plen - 1] != '/') ? "/" : "";
	snprintf(buf, buflen, "%s%s%s", prefix, sep, suffix);
}


/* ---------------------------------------------------------------------
 * Connection URLs
 * ---------------------------------------------------------------------
 */

/*
 * Append host to a URL being built, percent-encoded so that libpq and
 * Python's urlparse both read it back unchanged: IPv6 literals go in
 * brackets (with '%' of a zone id as %25), anything else outside RFC 3986's
 * unreserved characters (a socket directory's '/', say) is escaped.
 */
static size_t
encode_host(char *dst, size_t dstlen, const char *host)
{
	size_t		n = 0;
	size_t		hlen = strlen(host);
	bool		ipv6;
	size_t		i;

	/* tolerate a host that already carries its brackets */
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
	{
		host++;
		hlen -= 2;
	}
	ipv6 = memchr(host, ':', hlen) != NULL;

	if (ipv6 && n + 1 < dstlen)
		dst[n++] = '[';
	for (i = 0; i < hlen; i++)
	{
		unsigned char c = (unsigned char) host[i];
		bool		keep;

		if (ipv6)
			keep = isxdigit(c) || c == ':' || c == '.';
		else
			keep = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
		if (keep)
		{
			if (n + 1 < dstlen)
				dst[n++] = (char) c;
		}
		else if (n + 3 < dstlen)
		{
			snprintf(dst + n, dstlen - n, "%%%02X", c);
			n += 3;
		}
	}
	if (ipv6 && n + 1 < dstlen)
		dst[n++] = ']';
	if (dstlen > 0)
		dst[n < dstlen ? n : dstlen - 1] = '\0';
	return n;
}

/* Decode %XX escapes of a URL's host part into dst (cut safely). */
static bool
decode_host(const char *src, size_t len, char *dst, size_t dstlen,
			char *errbuf, size_t errlen)
{
	char		tmp[AUTOHA_HOST_LEN * 4];
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len && n + 1 < sizeof(tmp); i++)
	{
		if (src[i] == '%' && i + 2 < len &&
			hexval((unsigned char) src[i + 1]) >= 0 &&
			hexval((unsigned char) src[i + 2]) >= 0)
		{
			int			c = hexval((unsigned char) src[i + 1]) * 16 +
			hexval((unsigned char) src[i + 2]);

			if (c == 0)
			{
				set_error(errbuf, errlen, "conn_url host contains %%00");
				return false;
			}
			tmp[n++] = (char) c;
			i += 2;
		}
		else
			tmp[n++] = src[i];
	}
	copy_bytes(dst, dstlen, tmp, n);
	return true;
}

/* "5433" -> 5433; "" -> the default port; anything else is an error. */
static bool
parse_port_text(const char *s, size_t len, int *port,
				char *errbuf, size_t errlen)
{
	uint64_t	v;

	if (len == 0)
	{
		*port = DCS_DEFAULT_PGPORT;
		return true;
	}
	if (!parse_uint64_text(s, len, &v))
	{
		set_error(errbuf, errlen, "port \"%.*s\" is not a number",
				  (int) (len > 32 ? 32 : len), s);
		return false;
	}
	if (v < 1 || v > 65535)
	{
		set_error(errbuf, errlen, "port %.*s is out of range 1..65535",
				  (int) (len > 32 ? 32 : len), s);
		return false;
	}
	*port = (int) v;
	return true;
}

/*
 * Host and port of postgres[ql]://[user[:password]@][host][:port][/db][?..]
 * The host may be an IPv6 literal in brackets; a missing port means 5432,
 * as for libpq and Patroni (urlparse's port or 5432).  The user and the
 * password, the database and the parameters are not needed here.
 */
static bool
parse_conn_url(const char *url, char *host, size_t hostlen, int *port,
			   char *errbuf, size_t errlen)
{
	const char *p = url;
	const char *end;
	const char *h;
	const char *q;
	const char *hstart;
	const char *hend;
	const char *portstart = NULL;

	if (strncasecmp(p, "postgresql://", 13) == 0)
		p += 13;
	else if (strncasecmp(p, "postgres://", 11) == 0)
		p += 11;
	else
	{
		set_error(errbuf, errlen,
				  "conn_url does not start with postgres:// or postgresql://");
		return false;
	}

	/* the authority ends at the path, the query or the fragment */
	end = p + strcspn(p, "/?#");

	/* user info ends at the last '@', as urlparse has it */
	h = p;
	for (q = p; q < end; q++)
		if (*q == '@')
			h = q + 1;

	if (h < end && *h == '[')
	{
		const char *close = memchr(h, ']', (size_t) (end - h));

		if (close == NULL)
		{
			set_error(errbuf, errlen, "conn_url has an unterminated IPv6 address");
			return false;
		}
		hstart = h + 1;
		hend = close;
		if (close + 1 < end)
		{
			if (close[1] != ':')
			{
				set_error(errbuf, errlen,
						  "conn_url has unexpected characters after ']'");
				return false;
			}
			portstart = close + 2;
		}
	}
	else
	{
		const char *colon = memchr(h, ':', (size_t) (end - h));

		hstart = h;
		hend = colon ? colon : end;
		if (colon)
			portstart = colon + 1;
	}

	if (portstart)
	{
		if (!parse_port_text(portstart, (size_t) (end - portstart), port,
							 errbuf, errlen))
			return false;
	}
	else
		*port = DCS_DEFAULT_PGPORT;

	return decode_host(hstart, (size_t) (hend - hstart), host, hostlen,
					   errbuf, errlen);
}

/* Legacy {"conn_kwargs": {"host": ..., "port": ...}} */
static bool
parse_conn_kwargs(const json_t *kw, char *host, size_t hostlen, int *port,
				  char *errbuf, size_t errlen)
{
	json_t	   *h;
	json_t	   *p;

	if (!json_is_object(kw))
	{
		set_error(errbuf, errlen, "conn_kwargs is not an object");
		return false;
	}
	h = object_get(kw, "host");
	if (h != NULL && !json_is_string(h))
	{
		set_error(errbuf, errlen, "conn_kwargs.host is not a string");
		return false;
	}
	copy_str(host, hostlen, h ? json_string_value(h) : "");

	p = object_get(kw, "port");
	if (p == NULL)
		*port = DCS_DEFAULT_PGPORT;
	else if (json_is_integer(p))
	{
		json_int_t	v = json_integer_value(p);

		if (v < 1 || v > 65535)
		{
			set_error(errbuf, errlen, "conn_kwargs.port %lld is out of range 1..65535",
					  (long long) v);
			return false;
		}
		*port = (int) v;
	}
	else if (json_is_string(p))
	{
		const char *s = json_string_value(p);

		if (!parse_port_text(s, strlen(s), port, errbuf, errlen))
			return false;
	}
	else
	{
		set_error(errbuf, errlen, "conn_kwargs.port is not a number");
		return false;
	}
	return true;
}


/* ---------------------------------------------------------------------
 * Member values
 * ---------------------------------------------------------------------
 */

/*
 * Our member JSON.  The field order follows what Patroni writes.  Tags:
 * whatever member->tags holds (if it is a JSON object) is published too,
 * so the worker can carry extra Patroni tags, but nofailover and
 * failover_priority always come from the struct fields.  As with Patroni,
 * an empty tags object is left out.
 *
 * xlog_location is a JSON integer; jansson integers are signed 64 bits, so
 * an LSN above INT64_MAX (not reachable in practice) is written as a
 * decimal string, which dcs_parse_member accepts.
 *
 * Returns a malloc'd string (free() it), or NULL if out of memory.
 */
char *
dcs_member_json(const MemberInfo *member, const char *api_url)
{
	json_t	   *obj;
	json_t	   *tags = NULL;
	json_t	   *lsn;
	char		url[AUTOHA_HOST_LEN * 3 + 64];
	size_t		n;
	char	   *result = NULL;

	if (member == NULL)
		return NULL;

	n = (size_t) snprintf(url, sizeof(url), "postgres://");
	n += encode_host(url + n, sizeof(url) - n, member->host);
	/* url is sized for the longest host, fully escaped; clamp anyway */
	if (member->port > 0 && n < sizeof(url))
		n += (size_t) snprintf(url + n, sizeof(url) - n, ":%d", member->port);
	if (n < sizeof(url))
		snprintf(url + n, sizeof(url) - n, "/postgres");

	if (member->tags[0] != '\0')
	{
		tags = json_loads(member->tags, 0, NULL);
		if (tags != NULL && !json_is_object(tags))
		{
			json_decref(tags);
			tags = NULL;
		}
	}
	if (tags == NULL)
		tags = json_object();
	if (tags == NULL)
		return NULL;
	json_object_del(tags, "nofailover");
	json_object_del(tags, "failover_priority");
	if (member->nofailover)
		json_object_set_new(tags, "nofailover", json_true());
	if (member->failover_priority != 1)
		json_object_set_new(tags, "failover_priority",
							json_integer(member->failover_priority));

	obj = json_object();
	if (obj == NULL)
	{
		json_decref(tags);
		return NULL;
	}
	json_object_set_new(obj, "conn_url", json_string(url));
	if (api_url != NULL && api_url[0] != '\0')
		json_object_set_new(obj, "api_url", json_string(api_url));
	json_object_set_new(obj, "state", json_string(member->state));
	json_object_set_new(obj, "role", json_string(member->role));
	json_object_set_new(obj, "version", json_string(DCS_VERSION_STRING));
	if (member->lsn <= (uint64_t) INT64_MAX)
		lsn = json_integer((json_int_t) member->lsn);
	else
	{
		char		digits[32];

		snprintf(digits, sizeof(digits), "%llu",
				 (unsigned long long) member->lsn);
		lsn = json_string(digits);
	}
	json_object_set_new(obj, "xlog_location", lsn);
	if (member->timeline != 0)
		json_object_set_new(obj, "timeline",
							json_integer((json_int_t) member->timeline));
	if (member->replication_state[0] != '\0')
		json_object_set_new(obj, "replication_state",
							json_string(member->replication_state));
	if (json_object_size(tags) > 0)
		json_object_set(obj, "tags", tags);
	json_decref(tags);

	result = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return result;
}

/*
 * Patroni 3.0.2 treats any truthy tag value as nofailover; later releases
 * use parse_bool().  Words parse_bool() calls false and falsy JSON values
 * are false; anything else is true, because refusing to fail over to a
 * member whose tag we do not understand is the safe reading.
 */
static bool
tag_is_true(const json_t *v)
{
	static const char *const falsy[] = {"", "off", "false", "no", "0"};

	if (v == NULL || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_true(v))
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_real(v))
		return json_real_value(v) != 0.0;
	if (json_is_string(v))
	{
		const char *s = json_string_value(v);
		size_t		i;

		for (i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++)
			if (strcasecmp(s, falsy[i]) == 0)
				return false;
		return true;
	}
	/* a non-empty array or object is truthy in Python */
	return json_is_array(v) ? json_array_size(v) > 0 : json_object_size(v) > 0;
}

/*
 * Store the tags object as compact JSON.  If it does not fit, keep as many
 * of its keys as fit, in their order, so the result is always valid JSON
 * (at worst "{}") rather than a cut string.
 */
static void
store_tags(const json_t *tags, char *buf, size_t buflen)
{
	char	   *s;
	json_t	   *sub;
	const char *key;
	json_t	   *value;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	s = json_dumps(tags, JSON_COMPACT);
	if (s != NULL && strlen(s) < buflen)
	{
		copy_str(buf, buflen, s);
		free(s);
		return;
	}
	free(s);

	sub = json_object();
	if (sub == NULL)
	{
		copy_str(buf, buflen, "{}");
		return;
	}
	json_object_foreach((json_t *) tags, key, value)
	{
		json_object_set(sub, key, value);
		s = json_dumps(sub, JSON_COMPACT);
		if (s == NULL || strlen(s) >= buflen)
			json_object_del(sub, key);
		free(s);
	}
	s = json_dumps(sub, JSON_COMPACT);
	if (s != NULL && strlen(s) < buflen)
		copy_str(buf, buflen, s);
	else
		copy_str(buf, buflen, "{}");
	free(s);
	json_decref(sub);
}

/* An optional string field; false (with a message) if of another type. */
static bool
get_string_field(const json_t *obj, const char *key, char *dst, size_t dstlen,
				 const char *dflt, char *errbuf, size_t errlen)
{
	json_t	   *v = object_get(obj, key);

	if (v == NULL)
	{
		copy_str(dst, dstlen, dflt);
		return true;
	}
	if (!json_is_string(v))
	{
		set_error(errbuf, errlen, "%s is not a string", key);
		return false;
	}
	copy_str(dst, dstlen, json_string_value(v));
	return true;
}

static bool
parse_member_tags(const json_t *tags, MemberInfo *m,
				  char *errbuf, size_t errlen)
{
	json_t	   *prio;

	if (!json_is_object(tags))
	{
		set_error(errbuf, errlen, "tags is not an object");
		return false;
	}
	m->nofailover = tag_is_true(object_get(tags, "nofailover"));

	prio = object_get(tags, "failover_priority");
	if (prio != NULL)
	{
		if (json_is_integer(prio))
		{
			json_int_t	v = json_integer_value(prio);

			/* negative means "never", like 0; clamp rather than reject */
			m->failover_priority = v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int) v;
		}
		else
		{
			uint64_t	v;

			if (!json_is_string(prio) ||
				!parse_uint64_text(json_string_value(prio),
								   json_string_length(prio), &v))
			{
				set_error(errbuf, errlen,
						  "tags.failover_priority is not an integer");
				return false;
			}
			m->failover_priority = v > INT_MAX ? INT_MAX : (int) v;
		}
	}
	store_tags(tags, m->tags, sizeof(m->tags));
	return true;
}

/*
 * Patroni's Member.from_node() also accepts the original Governor format, a
 * bare connection string ("postgres://...?application_name=<api_url>").
 * Such a member has no state, role or position.
 */
static bool
parse_governor_member(const char *value, MemberInfo *m,
					  char *errbuf, size_t errlen)
{
	copy_str(m->state, sizeof(m->state), "unknown");
	return parse_conn_url(value, m->host, sizeof(m->host), &m->port,
						  errbuf, errlen);
}

/*
 * Fill *member from a member value.  member->name, mod_revision and lease
 * are the caller's (they come from the etcd key, not the value) and are
 * kept; every other field is replaced.  On failure *member is unchanged
 * and errbuf says why.
 */
bool
dcs_parse_member(const char *json, MemberInfo *member,
				 char *errbuf, size_t errlen)
{
	MemberInfo	m;
	json_t	   *root;
	json_error_t jerr;
	json_t	   *v;
	json_t	   *kw;
	bool		ok = false;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (json == NULL || member == NULL)
	{
		set_error(errbuf, errlen, "no member value");
		return false;
	}

	memset(&m, 0, sizeof(m));
	memcpy(m.name, member->name, sizeof(m.name));
	m.name[sizeof(m.name) - 1] = '\0';
	m.mod_revision = member->mod_revision;
	m.lease = member->lease;
	m.failover_priority = 1;
	copy_str(m.tags, sizeof(m.tags), "{}");

	if (strncmp(json, "postgres", 8) == 0)
	{
		if (!parse_governor_member(json, &m, errbuf, errlen))
			return false;
		*member = m;
		return true;
	}

	/*
	 * JSON_DECODE_ANY so that "42" is reported as not an object rather than
	 * as a syntax error; no JSON_REJECT_DUPLICATES, because Python's
	 * json.loads keeps the last of repeated keys, and so do we.
	 */
	root = json_loads(json, JSON_DECODE_ANY, &jerr);
	if (root == NULL)
	{
		set_error(errbuf, errlen, "not valid JSON: %s (line %d, column %d)",
				  jerr.text, jerr.line, jerr.column);
		return false;
	}
	if (!json_is_object(root))
	{
		set_error(errbuf, errlen, "not a JSON object");
		goto done;
	}

	if (!get_string_field(root, "state", m.state, sizeof(m.state), "unknown",
						  errbuf, errlen) ||
		!get_string_field(root, "role", m.role, sizeof(m.role), "",
						  errbuf, errlen) ||
		!get_string_field(root, "replication_state", m.replication_state,
						  sizeof(m.replication_state), "", errbuf, errlen))
		goto done;
	if (strcmp(m.role, "master") == 0)
		copy_str(m.role, sizeof(m.role), "primary");

	/*
	 * Where to connect: like Patroni's Member.conn_kwargs(), an explicit
	 * conn_kwargs object wins over conn_url.  Having neither is not an
	 * error (see the file header).
	 */
	kw = object_get(root, "conn_kwargs");
	v = object_get(root, "conn_url");
	if (v != NULL && !json_is_string(v))
	{
		set_error(errbuf, errlen, "conn_url is not a string");
		goto done;
	}
	if (kw != NULL && !(json_is_object(kw) && json_object_size(kw) == 0))
	{
		if (!parse_conn_kwargs(kw, m.host, sizeof(m.host), &m.port,
							   errbuf, errlen))
			goto done;
	}
	else if (v != NULL && json_string_length(v) > 0)
	{
		if (!parse_conn_url(json_string_value(v), m.host, sizeof(m.host),
							&m.port, errbuf, errlen))
			goto done;
	}

	v = object_get(root, "xlog_location");
	if (v != NULL && !json_to_uint64(v, &m.lsn))
	{
		set_error(errbuf, errlen,
				  "xlog_location is not a non-negative integer");
		goto done;
	}

	v = object_get(root, "timeline");
	if (v != NULL)
	{
		uint64_t	tli;

		if (!json_to_uint64(v, &tli) || tli > UINT32_MAX)
		{
			set_error(errbuf, errlen, "timeline is not an integer in 0..%u",
					  (unsigned) UINT32_MAX);
			goto done;
		}
		m.timeline = (uint32_t) tli;
	}

	v = object_get(root, "tags");
	if (v != NULL && !parse_member_tags(v, &m, errbuf, errlen))
		goto done;

	*member = m;
	ok = true;

done:
	json_decref(root);
	return ok;
}


/* ---------------------------------------------------------------------
 * Leader status
 * ---------------------------------------------------------------------
 */

/*
 * {"optime":N,"timeline":T}, malloc'd.  Written by hand so all of uint64
 * fits.  "timeline" is pg_autoha's addition (Patroni ignores fields it does
 * not know): with it a server can tell that a later leader existed even
 * after that leader's member entry is gone.  0 leaves it out.
 *
 * "shutdown": true, also ours, is the last word of a leader that releases
 * the key itself because its server is going down: its walsenders may still
 * be sending the last WAL (a clean shutdown's checkpoint), so candidates wait
 * for their stream to end.  A leader whose lease merely expired (frozen,
 * killed with its node, cut off) sends nothing more worth waiting for.
 */
char *
dcs_status_json(uint64_t optime, uint32_t timeline, bool shutdown)
{
	char	   *buf = malloc(96);

	if (buf == NULL)
		return NULL;
	if (timeline > 0)
		snprintf(buf, 96, "{\"optime\":%llu,\"timeline\":%u%s}",
				 (unsigned long long) optime, timeline,
				 shutdown ? ",\"shutdown\":true" : "");
	else
		snprintf(buf, 96, "{\"optime\":%llu%s}", (unsigned long long) optime,
				 shutdown ? ",\"shutdown\":true" : "");
	return buf;
}

/*
 * The optime, and our timeline (0 if absent) and shutdown mark, of a status
 * value.  Patroni also stores "slots", "retain_slots" (and may add more);
 * they are ignored.
 */
bool
dcs_parse_status(const char *json, uint64_t *optime, uint32_t *timeline,
				 bool *shutdown)
{
	json_t	   *root;
	bool		ok = false;

	if (json == NULL || optime == NULL || timeline == NULL || shutdown == NULL)
		return false;
	root = json_loads(json, 0, NULL);
	if (json_is_object(root))
	{
		json_t	   *v = json_object_get(root, "optime");
		json_t	   *t = json_object_get(root, "timeline");
		uint64_t	lsn;
		uint64_t	tli;

		if (v != NULL && json_to_uint64(v, &lsn))
		{
			*optime = lsn;
			*timeline = 0;
			if (t != NULL && json_to_uint64(t, &tli) && tli <= UINT32_MAX)
				*timeline = (uint32_t) tli;
			*shutdown = json_is_true(json_object_get(root, "shutdown"));
			ok = true;
		}
	}
	json_decref(root);
	return ok;
}


/* ---------------------------------------------------------------------
 * Failover requests, the pause flag and the timeline history
 * ---------------------------------------------------------------------
 */

/*
 * A JSON string for a name or a message that came from outside (a GUC, an
 * SQL argument).  jansson refuses text that is not valid UTF-8, and a value
 * we cannot store would lose the whole write, so such text is stored with
 * every non-ASCII byte replaced by '?': still recognizable, always valid.
 */
static json_t *
safe_json_string(const char *s)
{
	json_t	   *str;
	char	   *copy;
	size_t		i;

	if (s == NULL)
		s = "";
	str = json_string(s);
	if (str != NULL)
		return str;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char) copy[i] >= 0x80)
			copy[i] = '?';
	str = json_string(copy);
	free(copy);
	return str;
}

/*
 * A JSON string without an embedded NUL.  Values are parsed with
 * JSON_ALLOW_NUL so that one "\u0000" does not make a whole value
 * unreadable, but a C string would silently end at the NUL: where the
 * exact text matters (a member name, a pause word), such a string is no
 * match for anything.
 */
static bool
is_clean_string(const json_t *v)
{
	return json_is_string(v) &&
		strlen(json_string_value(v)) == json_string_length(v);
}

/*
 * Python's str.strip() for the legacy "leader:member" form (ASCII white
 * space only; names with other white space at their ends do not exist).
 */
static void
trim_span(const char *s, size_t len, const char **start, size_t *tlen)
{
	while (len > 0 && isspace((unsigned char) s[0]))
	{
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char) s[len - 1]))
		len--;
	*start = s;
	*tlen = len;
}

/*
 * Patroni's legacy failover value: plain "leader:member", split on ':'
 * with each part stripped; a third part and beyond are ignored, as
 * Failover.from_node() does (it takes t[0] and t[1]).
 */
static bool
parse_failover_legacy(const char *value, FailoverRequest *req)
{
	const char *colon = strchr(value, ':');
	const char *part;
	size_t		len;

	trim_span(value, colon ? (size_t) (colon - value) : strlen(value),
				 &part, &len);
	if (len >= sizeof(req->leader))
		return false;
	copy_bytes(req->leader, sizeof(req->leader), part, len);
	if (colon == NULL)
		return true;

	value = colon + 1;
	colon = strchr(value, ':');
	trim_span(value, colon ? (size_t) (colon - value) : strlen(value),
				 &part, &len);
	if (len >= sizeof(req->member))
		return false;
	copy_bytes(req->member, sizeof(req->member), part, len);
	return true;
}

/*
 * A name in a failover object: absent, null or "" all mean "not given".
 * A name that is not a string, or does not fit, is malformed: it is never
 * cut, because a cut name could match a different member.
 */
static bool
failover_name(const json_t *obj, const char *key, char *dst, size_t dstlen)
{
	json_t	   *v = object_get(obj, key);

	dst[0] = '\0';
	if (v == NULL)
		return true;
	if (!is_clean_string(v) || json_string_length(v) >= dstlen)
		return false;
	copy_str(dst, dstlen, json_string_value(v));
	return true;
}

/*
 * Failover.from_node() parses "scheduled_at" with dateutil whenever it is
 * truthy, so any truthy value means "scheduled"; only a non-empty string
 * is well formed.  Calling a strange value scheduled is the safe reading:
 * the request is then not carried out at once.
 */
static bool
failover_scheduled(const json_t *obj, bool *scheduled)
{
	json_t	   *v = object_get(obj, "scheduled_at");

	*scheduled = false;
	if (json_is_string(v))
	{
		*scheduled = json_string_length(v) > 0;
		return true;
	}
	/* Python's falsy values: not scheduled, and nothing wrong either */
	if (v == NULL || json_is_false(v) ||
		(json_is_integer(v) && json_integer_value(v) == 0) ||
		(json_is_real(v) && json_real_value(v) == 0.0) ||
		(json_is_array(v) && json_array_size(v) == 0) ||
		(json_is_object(v) && json_object_size(v) == 0))
		return true;
	*scheduled = true;
	return false;
}

/*
 * The "failover" key, as Patroni's Failover.from_node() reads it: a JSON
 * object with optional "leader", "member" and "scheduled_at"; any other
 * JSON (null, a number, an array) or an empty value is a request naming
 * nobody; text that is not JSON at all is the legacy "leader:member".
 *
 * req->present is always true: the key exists, and a request that names
 * nobody is still something the leader should delete.  Returns false when
 * the value is malformed (a name too long or not a string, a scheduled_at
 * that is not a string); both names are then empty, so a malformed request
 * never moves the leadership.  mod_revision is left 0 for the caller.
 */
bool
dcs_parse_failover(const char *json, FailoverRequest *req)
{
	json_t	   *root;
	bool		ok = true;

	if (req == NULL)
		return false;
	memset(req, 0, sizeof(*req));
	req->present = true;
	if (json == NULL || json[0] == '\0')
		return true;

	root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (root == NULL)
		ok = parse_failover_legacy(json, req);
	else
	{
		if (json_is_object(root))
		{
			ok = failover_name(root, "leader", req->leader,
							   sizeof(req->leader));
			ok = failover_name(root, "member", req->member,
							   sizeof(req->member)) && ok;
			ok = failover_scheduled(root, &req->scheduled) && ok;
		}
		json_decref(root);
	}
	if (!ok)
	{
		req->leader[0] = '\0';
		req->member[0] = '\0';
	}
	return ok;
}

/*
 * {"leader":L,"member":M}, compact, leaving out a name that is NULL or "",
 * exactly as Patroni's manual_failover() writes it.  malloc'd.
 */
char *
dcs_failover_json(const char *leader, const char *member)
{
	json_t	   *obj = json_object();
	char	   *result;

	if (obj == NULL)
		return NULL;
	if (leader != NULL && leader[0] != '\0')
		json_object_set_new(obj, "leader", safe_json_string(leader));
	if (member != NULL && member[0] != '\0')
		json_object_set_new(obj, "member", safe_json_string(member));
	result = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return result;
}

/*
 * The "sync" key.  Patroni reads {"leader": L, "sync_standby": "a,b"};
 * a value without a leader (empty, {}, "leader": null) is its "empty"
 * state, which restricts nothing, and so it is not present here either.
 * Anything else we cannot read is kept as present but malformed, listing
 * nobody: while the key cannot be trusted, no standby is known to hold
 * every acknowledged commit, and the leader rewrites it on its next loop.
 * Returns false for such a value.  mod_revision is left 0 for the caller.
 */
bool
dcs_parse_sync(const char *json, SyncState *sync)
{
	json_t	   *root;
	json_t	   *leader;
	json_t	   *list;
	const char *p;
	bool		ok = true;

	if (sync == NULL)
		return false;
	memset(sync, 0, sizeof(*sync));
	if (json == NULL || json[0] == '\0')
		return true;

	root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (root == NULL || !json_is_object(root))
		ok = false;
	else
	{
		leader = json_object_get(root, "leader");
		list = json_object_get(root, "sync_standby");
		if (leader == NULL || json_is_null(leader))
		{
			json_decref(root);
			return true;		/* Patroni's empty state */
		}
		if (!is_clean_string(leader) || json_string_length(leader) == 0 ||
			json_string_length(leader) >= sizeof(sync->leader))
			ok = false;
		else
			copy_str(sync->leader, sizeof(sync->leader), json_string_value(leader));
		if (ok && list != NULL && !json_is_null(list))
		{
			if (!is_clean_string(list))
				ok = false;
			else
			{
				for (p = json_string_value(list); ok && *p != '\0';)
				{
					size_t		n = strcspn(p, ",");
					const char *name;
					size_t		len;

					trim_span(p, n, &name, &len);
					if (len >= AUTOHA_NAME_LEN || sync->nstandbys >= AUTOHA_MAX_MEMBERS)
						ok = false;
					else if (len > 0)
						copy_bytes(sync->standbys[sync->nstandbys++], AUTOHA_NAME_LEN,
								   name, len);
					p += n;
					if (*p == ',')
						p++;
				}
			}
		}
	}
	if (root != NULL)
		json_decref(root);
	sync->present = true;
	if (!ok)
	{
		sync->malformed = true;
		sync->leader[0] = '\0';
		sync->nstandbys = 0;
	}
	return ok;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * {"leader":L,"sync_standby":"a,b"} with the names sorted, or
 * "sync_standby":null for none, exactly as Patroni's sync_state() builds
 * it.  malloc'd.
 */
char *
dcs_sync_json(const char *leader, const char *const *standbys, int nstandbys)
{
	json_t	   *obj = json_object();
	const char *sorted[AUTOHA_MAX_MEMBERS];
	char		list[AUTOHA_MAX_MEMBERS * AUTOHA_NAME_LEN];
	size_t		used = 0;
	char	   *result;
	int			i;

	if (obj == NULL)
		return NULL;
	if (nstandbys > AUTOHA_MAX_MEMBERS)
		nstandbys = AUTOHA_MAX_MEMBERS;
	for (i = 0; i < nstandbys; i++)
		sorted[i] = standbys[i];
	qsort(sorted, (size_t) nstandbys, sizeof(char *), name_cmp);
	list[0] = '\0';
	for (i = 0; i < nstandbys; i++)
		used += snprintf(list + used, sizeof(list) - used, "%s%s",
						 i > 0 ? "," : "", sorted[i]);
	json_object_set_new(obj, "leader", safe_json_string(leader));
	json_object_set_new(obj, "sync_standby",
						nstandbys > 0 ? safe_json_string(list) : json_null());
	result = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return result;
}

/*
 * Patroni's is_paused(): parse_bool(str(value).lower()) on the "pause"
 * member, which is true only for Python's True and for 1, "1", "on",
 * "true" and "yes" in any case.  Following it to the letter (2 and 1.0
 * are not paused, since str() of them is no word parse_bool knows) keeps
 * patronictl's "Maintenance mode" and our behaviour in agreement.
 */
static bool
pause_is_true(const json_t *v)
{
	static const char *const truthy[] = {"on", "true", "yes", "1"};
	size_t		i;

	if (json_is_true(v))
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) == 1;
	if (!is_clean_string(v))
		return false;
	for (i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++)
		if (strcasecmp(json_string_value(v), truthy[i]) == 0)
			return true;
	return false;
}

/*
 * Whether the "config" value says the cluster is paused.  Returns false,
 * with *paused false, when the value is not a JSON object: Patroni then
 * uses an empty configuration, which is not paused either.
 */
bool
dcs_parse_config_paused(const char *json, bool *paused)
{
	json_t	   *root;
	bool		ok;

	if (paused == NULL)
		return false;
	*paused = false;
	if (json == NULL)
		return false;
	root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	ok = json_is_object(root);
	if (ok)
		*paused = pause_is_true(json_object_get(root, "pause"));
	json_decref(root);
	return ok;
}

/*
 * The config value with "pause": true set, or with "pause" removed, every
 * other member kept in its place (jansson keeps insertion order, and
 * replacing a member's value keeps its position).  Removing rather than
 * writing false is what patronictl resume does (it patches pause to None,
 * which deletes the member).  A value that is not a JSON object starts
 * from {}, as Patroni's ClusterConfig.from_node() would read it.
 * malloc'd.
 */
char *
dcs_config_set_pause(const char *old_json, bool pause)
{
	json_t	   *root = NULL;
	char	   *result;

	if (old_json != NULL && old_json[0] != '\0')
		root = json_loads(old_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root))
	{
		json_decref(root);
		root = json_object();
		if (root == NULL)
			return NULL;
	}
	if (pause)
		json_object_set_new(root, "pause", json_true());
	else
		json_object_del(root, "pause");
	result = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return result;
}

/* A string member of a history line, "" when absent or of another type. */
static void
history_string(const json_t *line, size_t idx, char *dst, size_t dstlen)
{
	json_t	   *v = json_array_get(line, idx);

	copy_str(dst, dstlen, json_is_string(v) ? json_string_value(v) : "");
}

/*
 * One line of the history: [timeline, lsn, reason, timestamp, new_leader],
 * where Patroni writes 3 elements for promotions it did not witness, 5
 * for its own.  Timeline and lsn are required; the strings are optional
 * and cut to fit (they are for people to read, not to match).
 */
static bool
history_line(const json_t *line, HistoryEntry *e)
{
	json_t	   *tli = json_array_get(line, 0);
	uint64_t	lsn;

	if (!json_is_array(line) || !json_is_integer(tli) ||
		json_integer_value(tli) < 0 ||
		json_integer_value(tli) > (json_int_t) UINT32_MAX ||
		!json_to_uint64(json_array_get(line, 1), &lsn))
		return false;
	memset(e, 0, sizeof(*e));
	e->timeline = (uint32_t) json_integer_value(tli);
	e->lsn = lsn;
	history_string(line, 2, e->reason, sizeof(e->reason));
	history_string(line, 3, e->timestamp, sizeof(e->timestamp));
	history_string(line, 4, e->new_leader, sizeof(e->new_leader));
	return true;
}

/*
 * dcs_parse_history(), also counting the lines skipped as malformed, for
 * the view to report.
 */
static int
parse_history(const char *json, HistoryEntry *out, int max, int *ntotal,
			  int *nbadlines)
{
	json_t	   *root;
	json_t	   *line;
	size_t		i;
	HistoryEntry e;
	int			total = 0;
	int			bad = 0;
	int			skip;
	int			filled = 0;

	if (ntotal != NULL)
		*ntotal = 0;
	if (nbadlines != NULL)
		*nbadlines = 0;
	if (json == NULL)
		return -1;
	root = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!json_is_array(root))
	{
		json_decref(root);
		return -1;
	}
	if (out == NULL || max < 0)
		max = 0;

	/* count first, so that the lines kept are the last max valid ones */
	json_array_foreach(root, i, line)
	{
		if (history_line(line, &e))
			total++;
		else
			bad++;
	}
	skip = total > max ? total - max : 0;
	json_array_foreach(root, i, line)
	{
		if (filled >= max || !history_line(line, &e))
			continue;
		if (skip > 0)
			skip--;
		else
			out[filled++] = e;
	}
	json_decref(root);

	if (ntotal != NULL)
		*ntotal = total;
	if (nbadlines != NULL)
		*nbadlines = bad;
	return filled;
}

/*
 * The "history" key: up to max of its last valid lines, oldest first, into
 * out; returns how many, with the number of valid lines in *ntotal, or -1
 * when the value is not a JSON array.  Malformed lines are skipped.
 */
int
dcs_parse_history(const char *json, HistoryEntry *out, int max, int *ntotal)
{
	return parse_history(json, out, max, ntotal, NULL);
}

/*
 * The history value with the line [timeline, lsn, reason, timestamp,
 * new_leader] added, compact like Patroni's json.dumps(separators=(',',
 * ':')).  A line for the same timeline is replaced, not repeated, so that
 * writing again after a failed or doubtful write is harmless; the line
 * goes before the first line of a later timeline, so the lines stay in
 * timeline order.  Lines we cannot read are kept as they are: the key is
 * shared with Patroni and with people.  NULL strings are written as "".
 * A value that is not a JSON array starts from [].  malloc'd.
 */
char *
dcs_history_append(const char *old_json, uint32_t timeline, uint64_t lsn,
				   const char *reason, const char *timestamp,
				   const char *new_leader)
{
	json_t	   *root = NULL;
	json_t	   *line;
	json_t	   *jlsn;
	size_t		i;
	size_t		pos = (size_t) -1;
	char	   *result = NULL;

	if (old_json != NULL && old_json[0] != '\0')
		root = json_loads(old_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!json_is_array(root))
	{
		json_decref(root);
		root = json_array();
		if (root == NULL)
			return NULL;
	}

	i = 0;
	while (i < json_array_size(root))
	{
		json_t	   *old = json_array_get(root, i);
		json_t	   *tli = json_is_array(old) ? json_array_get(old, 0) : NULL;

		if (json_is_integer(tli))
		{
			json_int_t	t = json_integer_value(tli);

			if (t == (json_int_t) timeline)
			{
				json_array_remove(root, i);
				continue;
			}
			if (t > (json_int_t) timeline && pos == (size_t) -1)
				pos = i;
		}
		i++;
	}

	line = json_array();
	if (line == NULL)
		goto done;

	/* LSNs fit in int64; one that did not would go out as digits */
	if (lsn <= (uint64_t) INT64_MAX)
		jlsn = json_integer((json_int_t) lsn);
	else
	{
		char		digits[32];

		snprintf(digits, sizeof(digits), "%llu", (unsigned long long) lsn);
		jlsn = json_string(digits);
	}

	/* json_array_append_new() takes the value even when it fails */
	if (json_array_append_new(line, json_integer((json_int_t) timeline)) != 0 ||
		json_array_append_new(line, jlsn) != 0 ||
		json_array_append_new(line, safe_json_string(reason)) != 0 ||
		json_array_append_new(line, safe_json_string(timestamp)) != 0 ||
		json_array_append_new(line, safe_json_string(new_leader)) != 0)
		goto done;
	if (pos == (size_t) -1 ? json_array_append(root, line) != 0 :
		json_array_insert(root, pos, line) != 0)
		goto done;
	result = json_dumps(root, JSON_COMPACT);

done:
	json_decref(line);
	json_decref(root);
	return result;
}


/* ---------------------------------------------------------------------
 * The cluster view
 * ---------------------------------------------------------------------
 */

static int
member_name_cmp(const void *a, const void *b)
{
	return strcmp(((const MemberInfo *) a)->name,
				  ((const MemberInfo *) b)->name);
}

static void
count_bad(int *nbad, char *errbuf, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

static void
count_bad(int *nbad, char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (nbad != NULL)
		(*nbad)++;
	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Add a parsed member.  When the view is full, the members kept are the
 * AUTOHA_MAX_MEMBERS first by name, whatever order the kvs came in, so
 * every server of the cluster sees the same set.
 */
static void
add_member(ClusterView *view, const MemberInfo *m, int *nbad,
		   char *errbuf, size_t errlen)
{
	int			i;
	int			last = -1;

	for (i = 0; i < view->nmembers; i++)
	{
		if (strcmp(view->members[i].name, m->name) == 0)
		{
			/* etcd keys are unique; a repeated one is a caller's mistake */
			count_bad(nbad, errbuf, errlen, "member \"%s\" appears twice",
					  m->name);
			if (m->mod_revision > view->members[i].mod_revision)
				view->members[i] = *m;
			return;
		}
		if (last < 0 || strcmp(view->members[i].name,
							   view->members[last].name) > 0)
			last = i;
	}
	if (view->nmembers < AUTOHA_MAX_MEMBERS)
	{
		view->members[view->nmembers++] = *m;
		return;
	}
	if (strcmp(m->name, view->members[last].name) < 0)
	{
		count_bad(nbad, errbuf, errlen,
				  "more than %d members: ignoring member \"%s\"",
				  AUTOHA_MAX_MEMBERS, view->members[last].name);
		view->members[last] = *m;
	}
	else
		count_bad(nbad, errbuf, errlen,
				  "more than %d members: ignoring member \"%s\"",
				  AUTOHA_MAX_MEMBERS, m->name);
}

static void
member_from_kv(ClusterView *view, const EtcdKV *kv, const char *name,
			   int *nbad, char *errbuf, size_t errlen)
{
	MemberInfo	m;
	char		why[256];

	/* Patroni ignores members/<a>/<b>: only direct children are members */
	if (strchr(name, '/') != NULL)
		return;
	if (name[0] == '\0')
	{
		count_bad(nbad, errbuf, errlen, "member key \"%s\" has no name",
				  kv->key);
		return;
	}

	/*
	 * A name that does not fit is rejected rather than cut: names identify
	 * the leader, and two cut names could collide.
	 */
	if (strlen(name) >= sizeof(m.name))
	{
		count_bad(nbad, errbuf, errlen,
				  "member name \"%.*s...\" is longer than %d bytes",
				  32, name, (int) sizeof(m.name) - 1);
		return;
	}

	memset(&m, 0, sizeof(m));
	copy_str(m.name, sizeof(m.name), name);
	m.mod_revision = kv->mod_revision;
	m.lease = kv->lease;
	if (!dcs_parse_member(kv->value ? kv->value : "", &m, why, sizeof(why)))
	{
		count_bad(nbad, errbuf, errlen, "member \"%s\": %s", name, why);
		return;
	}
	add_member(view, &m, nbad, errbuf, errlen);
}

static void
history_from_kv(ClusterView *view, const char *value, int *nbad,
				char *errbuf, size_t errlen)
{
	int			ntotal;
	int			nbadlines;
	int			n;

	n = parse_history(value, view->history, AUTOHA_MAX_HISTORY, &ntotal,
					  &nbadlines);
	if (n < 0)
	{
		view->nhistory = 0;
		count_bad(nbad, errbuf, errlen, "history key is not a JSON array");
		return;
	}
	view->nhistory = n;
	if (nbadlines > 0)
	{
		/* one message, but every skipped line counts */
		if (nbad != NULL)
			*nbad += nbadlines - 1;
		count_bad(nbad, errbuf, errlen,
				  "history key: %d line%s without an integer timeline and lsn",
				  nbadlines, nbadlines == 1 ? "" : "s");
	}
}

/*
 * One prefix read of the cluster -> ClusterView.
 *
 * The leader key counts as present whatever its value: it is held by some
 * lease, and nobody else may take it until that lease ends.  A name too
 * long for the view is cut; it then matches no member, which is the right
 * answer for a name nobody here can have.  The same goes for initialize,
 * whose empty value (Patroni's bootstrap in progress) is still "present".
 *
 * The leader's position comes from "status"; the legacy "optime/leader"
 * is used only when status is absent or unusable.  An unusable status or
 * optime/leader counts in *nbad like a malformed member.
 *
 * A "failover" key is always present in the view, even when it names
 * nobody or is malformed (then counted in *nbad), so that the leader can
 * delete it.  A "config" that is not a JSON object, a "history" that is
 * not an array and each history line we cannot read count in *nbad too.
 */
void
dcs_view_from_kvs(const char *prefix, const EtcdRangeResult *range,
				  ClusterView *view, int *nbad,
				  char *errbuf, size_t errlen)
{
	size_t		plen;
	const EtcdKV *status_kv = NULL;
	const EtcdKV *optime_kv = NULL;
	int			i;

	if (nbad != NULL)
		*nbad = 0;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (view == NULL)
		return;
	memset(view, 0, sizeof(*view));
	if (range == NULL)
		return;
	view->revision = range->revision;
	if (prefix == NULL)
		prefix = "";
	plen = strlen(prefix);

	for (i = 0; i < range->nkvs && range->kvs != NULL; i++)
	{
		const EtcdKV *kv = &range->kvs[i];
		const char *rel;
		const char *value;

		if (kv->key == NULL || strncmp(kv->key, prefix, plen) != 0)
			continue;
		rel = kv->key + plen;
		value = kv->value ? kv->value : "";

		if (strcmp(rel, DCS_KEY_LEADER) == 0)
		{
			view->has_leader = true;
			copy_str(view->leader, sizeof(view->leader), value);
			view->leader_create_revision = kv->create_revision;
			view->leader_lease = kv->lease;
		}
		else if (strcmp(rel, DCS_KEY_INITIALIZE) == 0)
		{
			view->has_initialize = true;
			copy_str(view->initialize, sizeof(view->initialize), value);
		}
		else if (strcmp(rel, DCS_KEY_STATUS) == 0)
			status_kv = kv;
		else if (strcmp(rel, DCS_KEY_LEADER_OPTIME) == 0)
			optime_kv = kv;
		else if (strcmp(rel, DCS_KEY_FAILOVER) == 0)
		{
			if (!dcs_parse_failover(value, &view->failover))
				count_bad(nbad, errbuf, errlen,
						  "failover key names a member that is too long or "
						  "not a string, or has an unusable scheduled_at");
			view->failover.mod_revision = kv->mod_revision;
		}
		else if (strcmp(rel, DCS_KEY_CONFIG) == 0)
		{
			if (!dcs_parse_config_paused(value, &view->paused))
				count_bad(nbad, errbuf, errlen,
						  "config key is not a JSON object");
		}
		else if (strcmp(rel, DCS_KEY_HISTORY) == 0)
			history_from_kv(view, value, nbad, errbuf, errlen);
		else if (strncmp(rel, DCS_KEY_MEMBERS, strlen(DCS_KEY_MEMBERS)) == 0)
			member_from_kv(view, kv, rel + strlen(DCS_KEY_MEMBERS),
						   nbad, errbuf, errlen);
		else if (strcmp(rel, DCS_KEY_SYNC) == 0)
		{
			if (!dcs_parse_sync(value, &view->sync))
				count_bad(nbad, errbuf, errlen,
						  "sync key is not {\"leader\": name, \"sync_standby\": \"name,...\"}; "
						  "until the leader rewrites it, no standby may be promoted automatically");
			view->sync.mod_revision = kv->mod_revision;
		}
		/* failsafe: not ours to read */
	}

	if (status_kv != NULL)
	{
		if (dcs_parse_status(status_kv->value, &view->leader_optime,
							  &view->leader_timeline, &view->leader_shutdown))
			view->has_leader_optime = true;
		else
			count_bad(nbad, errbuf, errlen,
					  "status key has no usable \"optime\"");
	}
	if (!view->has_leader_optime && optime_kv != NULL)
	{
		const char *v = optime_kv->value ? optime_kv->value : "";

		if (parse_uint64_text(v, strlen(v), &view->leader_optime))
			view->has_leader_optime = true;
		else
			count_bad(nbad, errbuf, errlen,
					  "optime/leader is not a decimal LSN");
	}

	qsort(view->members, (size_t) view->nmembers, sizeof(MemberInfo),
		  member_name_cmp);
}


/* ---------------------------------------------------------------------
 * Replication slot names
 * ---------------------------------------------------------------------
 */

/*
 * Decode one UTF-8 character at s; returns its length (>= 1).  A byte that
 * does not start a valid sequence is taken alone, as its own value, so
 * that odd input still maps to something deterministic.
 */
static int
utf8_next(const unsigned char *s, uint32_t *cp)
{
	int			len;
	uint32_t	c;
	int			i;

	if (s[0] < 0x80)
	{
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0)
	{
		len = 2;
		c = s[0] & 0x1F;
	}
	else if ((s[0] & 0xF0) == 0xE0)
	{
		len = 3;
		c = s[0] & 0x0F;
	}
	else if ((s[0] & 0xF8) == 0xF0)
	{
		len = 4;
		c = s[0] & 0x07;
	}
	else
	{
		*cp = s[0];
		return 1;
	}
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
		{
			*cp = s[0];
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3F);
	}
	*cp = c;
	return len;
}

/*
 * Patroni's slot_name_from_member_name() (patroni/dcs/__init__.py, 3.0.2):
 * lowercase; '-' and '.' become '_'; any other character outside
 * [a-z0-9_] becomes "u" followed by its code point in decimal, at least
 * four digits ("u{:04d}"); the result is cut to 63 characters.  A slot we
 * create for a member must have the very name Patroni would use, or the
 * two would keep dropping each other's slots.
 *
 * Python's str.lower() knows all of Unicode; here only ASCII and Latin-1
 * capitals are lowered (U+00C0..U+00DE except U+00D7).
 */
void
dcs_slot_name(const char *member, char *buf, size_t buflen)
{
	const unsigned char *s = (const unsigned char *) (member ? member : "");
	size_t		limit;
	size_t		n = 0;

	if (buf == NULL || buflen == 0)
		return;
	limit = buflen - 1 < DCS_SLOT_NAME_MAX ? buflen - 1 : DCS_SLOT_NAME_MAX;

	while (*s && n < limit)
	{
		uint32_t	c;
		char		piece[16];
		size_t		plen;

		s += utf8_next(s, &c);
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		else if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
			c += 0x20;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
		{
			piece[0] = (char) c;
			plen = 1;
		}
		else if (c == '-' || c == '.')
		{
			piece[0] = '_';
			plen = 1;
		}
		else
			plen = (size_t) snprintf(piece, sizeof(piece), "u%04u",
									 (unsigned) c);

		if (plen > limit - n)
			plen = limit - n;
		memcpy(buf + n, piece, plen);
		n += plen;
	}
	buf[n] = '\0';
}
