/*-------------------------------------------------------------------------
 *
 * node.h
 *	  Effects on this server: observe it, promote it, point it at a leader,
 *	  keep replication slots for the other members, prepare it to come back
 *	  as a replica, start pg_autoha_rejoin to rewind it, keep
 *	  synchronous_standby_names.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_NODE_H
#define AUTOHA_NODE_H

#include "ha.h"
#include "syncset.h"

/* Fill the PostgreSQL-side fields of *local (recovery, positions, ...). */
extern void node_observe(LocalState *local);

/* host and port others should use to reach this server */
extern void node_connect_address(char *host, size_t hostlen, int *port);

/* Ask the postmaster to end recovery (pg_promote without the wait). */
extern bool node_request_promotion(char *errbuf, size_t errlen);

/*
 * Make primary_conninfo and primary_slot_name point at the leader, through
 * ALTER SYSTEM and a reload; if they already do but the WAL receiver is not
 * streaming, make it retry now.  Returns true if anything had to change.
 */
extern bool node_follow(const MemberInfo *leader, bool streaming,
						char *errbuf, size_t errlen);
/* call after this process has re-read the configuration */
extern void node_settings_reloaded(void);

/* Which member primary_conninfo points at now ("" if none of them). */
extern void node_followed_member(const ClusterView *view, char *name, size_t len);

/*
 * On the leader: create a physical slot for every other member that lacks
 * one, so no replica loses WAL it still needs.  Returns the number created,
 * or -1 with errbuf set.
 */
extern int	node_ensure_slots(const ClusterView *view, const char *self,
							  char *errbuf, size_t errlen);

/*
 * End every client session (not replication, not background workers, not
 * spare_pid), so that pools reconnect to the leader once this server is
 * fenced.  Returns
 * how many were signalled, or -1 with errbuf set.
 */
extern int	node_terminate_client_sessions(int spare_pid, char *errbuf, size_t errlen);

/*
 * Switchover and rejoin.  node_replica_position: how far member name's
 * stream from us has got (pg_stat_replication).  node_prepare_standby:
 * standby.signal and primary_conninfo for leader, so that a crash restart
 * brings this server back as its replica; node_cancel_standby undoes the
 * signal file.  node_switch_point: where `timeline` forked off its parent,
 * from the timeline history file.  node_can_rewind: wal_log_hints or data
 * checksums.  node_spawn_rejoin: start pg_autoha_rejoin --restart detached.
 */
extern bool node_replica_position(const char *name, uint64 *flush, uint64 *replay,
								  char *errbuf, size_t errlen);
extern uint64 node_flush_position(void);
/* flush all WAL inserted so far; returns the flush position */
extern uint64 node_flush_all(void);
/* start an immediate checkpoint; node_checkpoint_done(its result) polls it */
extern uint64 node_request_checkpoint(void);
extern bool node_checkpoint_done(uint64 from);
/* client sessions with a transaction id (they will write a commit or abort) */
extern int	node_client_writers(char *errbuf, size_t errlen);
extern bool node_prepare_standby(const MemberInfo *leader, char *errbuf, size_t errlen);
extern void node_cancel_standby(void);
extern bool node_switch_point(uint32 timeline, uint32 *parent, uint64 *lsn);
extern bool node_can_rewind(char *errbuf, size_t errlen);
extern bool node_spawn_rejoin(char *errbuf, size_t errlen);

/*
 * Synchronous replication, on the leader.  node_wal_senders: this server's
 * WAL senders (pg_stat_replication), their number or -1 with errbuf set.
 * node_sync_names_in_effect: synchronous_standby_names as this process
 * has it.  node_sync_standbys_defined: whether the checkpointer has it
 * non-empty (commits wait at all).  node_set_sync_names: ALTER SYSTEM SET
 * it (RESET for NULL) and reload.
 */
extern int	node_wal_senders(WalSenderInfo *out, int max, char *errbuf, size_t errlen);
extern const char *node_sync_names_in_effect(void);
extern bool node_sync_standbys_defined(void);
extern bool node_set_sync_names(const char *value, char *errbuf, size_t errlen);
/* write and flush a little WAL so that every standby replies at once */
extern void node_nudge_standbys(void);

#endif							/* AUTOHA_NODE_H */
