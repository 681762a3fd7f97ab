/* pg_autoha--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_autoha" to load this file. \quit

-- One row per cluster member, from the worker's latest view of etcd (shared
-- memory), so it answers while etcd is unreachable; view_age and view_stale
-- say how fresh that view is.
CREATE FUNCTION autoha_status(
	OUT name text,
	OUT role text,
	OUT state text,
	OUT host text,
	OUT port integer,
	OUT timeline integer,
	OUT lsn pg_lsn,
	OUT lag_bytes bigint,
	OUT is_leader boolean,
	OUT sync_state text,
	OUT tags jsonb,
	OUT view_age interval,
	OUT view_stale boolean,
	OUT paused boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'autoha_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- This server only: what its worker is doing and why; on the leader, the
-- synchronous standbys its sync key lists.
CREATE FUNCTION autoha_node(
	OUT node_name text,
	OUT cluster_name text,
	OUT role text,
	OUT in_recovery boolean,
	OUT leader text,
	OUT is_leader boolean,
	OUT lease_time_left interval,
	OUT fenced boolean,
	OUT fence_reason text,
	OUT fenced_since timestamptz,
	OUT decision text,
	OUT decision_reason text,
	OUT etcd_endpoint text,
	OUT last_error text,
	OUT last_error_at timestamptz,
	OUT view_age interval,
	OUT worker_pid integer,
	OUT paused boolean,
	OUT synchronous_mode text,
	OUT synchronous_standby_names text,
	OUT sync_standbys text[])
RETURNS record
AS 'MODULE_PATHNAME', 'autoha_node'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- A planned, zero-loss handover from the leader to target (NULL: the best
-- replica), callable on any member; returns the new leader's name once it
-- accepts writes.
CREATE FUNCTION autoha_switchover(target text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'autoha_switchover'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Promote target when the cluster has no healthy leader (also while
-- paused); returns its name once it accepts writes.
CREATE FUNCTION autoha_failover(target text)
RETURNS text
AS 'MODULE_PATHNAME', 'autoha_failover'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Maintenance mode, stored in etcd so that every member agrees: no
-- automatic failover and no automatic rejoin until autoha_resume().
CREATE FUNCTION autoha_pause()
RETURNS void
AS 'MODULE_PATHNAME', 'autoha_pause'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION autoha_resume()
RETURNS void
AS 'MODULE_PATHNAME', 'autoha_resume'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Every failover and switchover, from the history key (Patroni's format).
CREATE FUNCTION autoha_history(
	OUT timeline bigint,
	OUT switch_lsn pg_lsn,
	OUT reason text,
	OUT switched_at timestamptz,
	OUT old_leader text,
	OUT new_leader text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'autoha_history'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION autoha_switchover(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_failover(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_pause() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_resume() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_history() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoha_history() TO pg_monitor;
REVOKE ALL ON FUNCTION autoha_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_node() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoha_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoha_node() TO pg_monitor;
