/*-------------------------------------------------------------------------
 *
 * dcs.h
 *	  The cluster's keys in etcd, in Patroni's layout, and their contents.
 *
 * Keys live under <namespace>/<cluster_name>/: leader, members/<name>,
 * initialize, status, sync, history, failover, config.  This module builds
 * key names, encodes this member's JSON the way Patroni does, and turns one
 * prefix read of the cluster into a ClusterView.  Pure C (jansson only).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_DCS_H
#define AUTOHA_DCS_H

#include <stddef.h>

#include "etcd.h"
#include "ha.h"

/* "<namespace>/<cluster>/" with exactly one slash between the parts */
extern void dcs_cluster_prefix(char *buf, size_t buflen,
							   const char *namespace_, const char *cluster);
/* prefix + suffix, e.g. dcs_key(buf, len, prefix, "members/n1") */
extern void dcs_key(char *buf, size_t buflen, const char *prefix,
					const char *suffix);

/*
 * This member's JSON (Patroni's fields: conn_url, api_url, state, role,
 * version, xlog_location, timeline, tags, replication_state).  Returns a
 * malloc'd string.
 */
extern char *dcs_member_json(const MemberInfo *member, const char *api_url);

/* Parse a member's JSON into *member (name is set by the caller). */
extern bool dcs_parse_member(const char *json, MemberInfo *member,
							 char *errbuf, size_t errlen);

/*
 * {"optime": N, "timeline": T} for the status key, with "shutdown": true
 * from a leader releasing the key on its way down, malloc'd; and its parser
 * (timeline is 0 when absent, as in Patroni's own status values)
 */
extern char *dcs_status_json(uint64_t optime, uint32_t timeline,
							 bool shutdown);
extern bool dcs_parse_status(const char *json, uint64_t *optime,
							 uint32_t *timeline, bool *shutdown);

/*
 * Build a ClusterView from the kvs of a prefix read of the cluster.
 * Malformed members are skipped and counted in *nbad (with the last
 * problem in errbuf); they never make the whole view unusable.
 */
extern void dcs_view_from_kvs(const char *prefix, const EtcdRangeResult *range,
							  ClusterView *view, int *nbad,
							  char *errbuf, size_t errlen);

/* Replication slot name for a member, Patroni's rule: [a-z0-9_], lower. */
extern void dcs_slot_name(const char *member, char *buf, size_t buflen);

#endif							/* AUTOHA_DCS_H */
