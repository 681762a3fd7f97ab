/*-------------------------------------------------------------------------
 *
 * etcd.h
 *	  A small etcd v3 client speaking the JSON gateway (libcurl + jansson).
 *
 * This module knows nothing of PostgreSQL or of high availability: it turns
 * C calls into POSTs to /v3/... and etcd's JSON replies back into C structs.
 * It is plain C so that unit tests can link it without a server.
 *
 * Every call is bounded by the client's per-request timeout; endpoints are
 * tried in turn, starting with the last one that answered, and each call
 * tries every endpoint at most once.  An optional abort callback is polled
 * while a request is in flight, so a caller can give up promptly (the
 * background worker uses it for SIGTERM and postmaster death).
 *
 * Results are allocated with the allocator set by etcd_set_allocator()
 * (malloc by default; the worker passes palloc so that results live in its
 * per-loop memory context).  jansson and libcurl keep using malloc.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_ETCD_H
#define AUTOHA_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct EtcdClient EtcdClient;

typedef enum EtcdStatus
{
	ETCD_OK = 0,
	ETCD_ERR_TRANSPORT,			/* no endpoint reachable (connect, DNS, TLS) */
	ETCD_ERR_TIMEOUT,			/* an endpoint did not answer in time */
	ETCD_ERR_SERVER,			/* etcd answered with an error object */
	ETCD_ERR_PROTOCOL,			/* the reply was not what etcd 3.4 sends */
	ETCD_ERR_LEASE_NOT_FOUND,	/* lease expired, revoked or unknown */
	ETCD_ERR_ABORTED,			/* the abort callback asked us to stop */
	ETCD_ERR_ARGUMENT			/* the caller passed something unusable */
} EtcdStatus;

/* One key-value pair as etcd returns it; key and value are NUL-terminated. */
typedef struct EtcdKV
{
	char	   *key;
	char	   *value;
	size_t		value_len;
	int64_t		create_revision;
	int64_t		mod_revision;
	int64_t		version;
	int64_t		lease;			/* 0 when not attached to a lease */
} EtcdKV;

typedef struct EtcdRangeResult
{
	int64_t		revision;		/* header.revision of the reply */
	int			nkvs;
	EtcdKV	   *kvs;
} EtcdRangeResult;

typedef enum EtcdCompareTarget
{
	ETCD_CMP_VERSION,
	ETCD_CMP_CREATE,
	ETCD_CMP_MOD,
	ETCD_CMP_VALUE,
	ETCD_CMP_LEASE
} EtcdCompareTarget;

typedef enum EtcdCompareResult
{
	ETCD_CMP_EQUAL,
	ETCD_CMP_NOT_EQUAL,
	ETCD_CMP_GREATER,
	ETCD_CMP_LESS
} EtcdCompareResult;

typedef struct EtcdCompare
{
	const char *key;
	EtcdCompareTarget target;
	EtcdCompareResult result;
	int64_t		number;			/* for VERSION, CREATE, MOD, LEASE */
	const char *value;			/* for VALUE */
} EtcdCompare;

typedef enum EtcdOpType
{
	ETCD_OP_RANGE,
	ETCD_OP_PUT,
	ETCD_OP_DELETE
} EtcdOpType;

typedef struct EtcdOp
{
	EtcdOpType	type;
	const char *key;
	bool		prefix;			/* RANGE/DELETE: every key starting with key */
	const char *value;			/* PUT */
	int64_t		lease;			/* PUT: 0 = none */
} EtcdOp;

/* Response to one operation of a transaction, in request order. */
typedef struct EtcdOpResult
{
	EtcdOpType	type;
	EtcdRangeResult range;		/* RANGE: the kvs; DELETE: prev kvs if any */
	int64_t		deleted;		/* DELETE: number of keys deleted */
} EtcdOpResult;

typedef struct EtcdTxnResult
{
	bool		succeeded;		/* absent in etcd's reply means false */
	int64_t		revision;
	int			nresults;
	EtcdOpResult *results;
} EtcdTxnResult;

/* allocator for results (default malloc/free) */
extern void etcd_set_allocator(void *(*alloc_fn) (size_t), void (*free_fn) (void *));

/*
 * Create a client for a comma-separated list of http(s)://host:port
 * endpoints.  Returns NULL and fills errbuf when the list is unusable.
 */
extern EtcdClient *etcd_client_create(const char *endpoints, long timeout_ms,
									  char *errbuf, size_t errlen);
extern void etcd_client_destroy(EtcdClient *client);
extern void etcd_client_set_timeout(EtcdClient *client, long timeout_ms);
extern void etcd_client_set_abort_check(EtcdClient *client,
										bool (*should_abort) (void *arg),
										void *arg);
/* NULL or "" leaves the corresponding feature off */
extern void etcd_client_set_auth(EtcdClient *client, const char *username,
								 const char *password);
extern void etcd_client_set_tls(EtcdClient *client, const char *cacert,
								const char *cert, const char *key);

/* Human-readable reason for the last failure, etcd's own text included. */
extern const char *etcd_last_error(const EtcdClient *client);
/* The endpoint that answered (or was tried) last. */
extern const char *etcd_current_endpoint(const EtcdClient *client);

extern EtcdStatus etcd_lease_grant(EtcdClient *client, int64_t ttl,
								   int64_t *lease_id, int64_t *granted_ttl);
/* ETCD_ERR_LEASE_NOT_FOUND when etcd's reply carries no (or zero) TTL */
extern EtcdStatus etcd_lease_keepalive(EtcdClient *client, int64_t lease_id,
									   int64_t *ttl_left);
extern EtcdStatus etcd_lease_revoke(EtcdClient *client, int64_t lease_id);
extern EtcdStatus etcd_range(EtcdClient *client, const char *key, bool prefix,
							 EtcdRangeResult *result);
extern EtcdStatus etcd_put(EtcdClient *client, const char *key,
						   const char *value, int64_t lease);
extern EtcdStatus etcd_delete(EtcdClient *client, const char *key, bool prefix,
							  int64_t *deleted);
extern EtcdStatus etcd_txn(EtcdClient *client,
						   const EtcdCompare *compare, int ncompare,
						   const EtcdOp *success, int nsuccess,
						   const EtcdOp *failure, int nfailure,
						   EtcdTxnResult *result);

/*
 * Write or delete key only if it is unchanged since it was read:
 * mod_revision is its mod_revision then, or 0 for "only if it does not
 * exist".  *applied tells whether it was; *revision (may be NULL) is the
 * revision of the write.
 */
extern EtcdStatus etcd_put_if_unchanged(EtcdClient *client, const char *key,
										const char *value, int64_t lease,
										int64_t mod_revision, bool *applied,
										int64_t *revision);
extern EtcdStatus etcd_delete_if_unchanged(EtcdClient *client, const char *key,
										   int64_t mod_revision, bool *applied);

extern void etcd_range_result_free(EtcdRangeResult *result);
extern void etcd_txn_result_free(EtcdTxnResult *result);

/*
 * Pure helpers, exported for unit tests.  The parse functions take a reply
 * body and fill the result, or return ETCD_ERR_PROTOCOL / ETCD_ERR_SERVER
 * with a message in errbuf; they never crash on malformed input.
 */
extern char *etcd_base64_encode(const char *data, size_t len);	/* malloc'd */
extern char *etcd_base64_decode(const char *text, size_t *len); /* malloc'd,
																 * NULL if bad */
extern char *etcd_prefix_range_end(const char *prefix);	/* malloc'd */
extern EtcdStatus etcd_parse_error(const char *body, char *errbuf, size_t errlen);
extern EtcdStatus etcd_parse_range(const char *body, EtcdRangeResult *result,
								   char *errbuf, size_t errlen);
extern EtcdStatus etcd_parse_txn(const char *body, EtcdTxnResult *result,
								 char *errbuf, size_t errlen);
extern EtcdStatus etcd_parse_lease_grant(const char *body, int64_t *lease_id,
										 int64_t *ttl, char *errbuf, size_t errlen);
extern EtcdStatus etcd_parse_keepalive(const char *body, int64_t *ttl_left,
									   char *errbuf, size_t errlen);
extern const char *etcd_status_name(EtcdStatus status);

#endif							/* AUTOHA_ETCD_H */
