/*-------------------------------------------------------------------------
 *
 * dcs.h
 *	  The cluster's keys in etcd, in Patroni's layout, and their contents.
 *
 * Keys live under <namespace>/<cluster_name>/: leader, members/<name>,
 * initialize, status, sync, history, failover, config.  This module builds
 * key names, encodes this member's JSON, failover requests, the pause flag
 * the timeline history and the synchronous set the way Patroni does, and turns one prefix read
 * of the cluster into a ClusterView.  Pure C (jansson only).
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
 * The "failover" key: {"leader":L,"member":M} with NULL or "" names left
 * out, malloc'd; and its parser, which takes every form Patroni's
 * Failover.from_node() does (JSON object, legacy "leader:member", empty).
 * The parser always sets req->present; it returns false (and both names
 * empty) for a malformed request.  req->mod_revision is left 0.
 */
extern char *dcs_failover_json(const char *leader, const char *member);
extern bool dcs_parse_failover(const char *json, FailoverRequest *req);

/*
 * The "sync" key: {"leader":L,"sync_standby":"a,b"} (names sorted, null
 * for none), malloc'd; and its parser (see dcs.c for the malformed case).
 */
extern char *dcs_sync_json(const char *leader, const char *const *standbys,
						   int nstandbys);
extern bool dcs_parse_sync(const char *json, SyncState *sync);

/*
 * The "config" key: old_json with "pause": true set, or "pause" removed,
 * other members kept (not a JSON object: start from {}), malloc'd; and
 * whether it says paused (false, with *paused false, if not an object).
 */
extern char *dcs_config_set_pause(const char *old_json, bool pause);
extern bool dcs_parse_config_paused(const char *json, bool *paused);

/*
 * The "history" key, [[timeline, lsn, reason, timestamp, new_leader], ...].
 * dcs_parse_history() fills out with up to max of the last valid lines,
 * oldest first, and returns how many; *ntotal is the number of valid lines
 * (malformed ones are skipped); -1 if the value is not a JSON array.
 * dcs_history_append() returns old_json (not an array: []) with the line
 * added, or replacing the line of the same timeline, malloc'd.
 */
extern int	dcs_parse_history(const char *json, HistoryEntry *out, int max,
							  int *ntotal);
extern char *dcs_history_append(const char *old_json, uint32_t timeline,
								uint64_t lsn, const char *reason,
								const char *timestamp,
								const char *new_leader);

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
