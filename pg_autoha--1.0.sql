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
	OUT view_stale boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'autoha_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- This server only: what its worker is doing and why.
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
	OUT worker_pid integer)
RETURNS record
AS 'MODULE_PATHNAME', 'autoha_node'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION autoha_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoha_node() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoha_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoha_node() TO pg_monitor;
