--
-- pg_autoha on a single server with the library preloaded and a real etcd
-- (test/run_all.sh starts both).  Timing-dependent values are turned into
-- booleans so the expected output is stable.
--
CREATE EXTENSION pg_autoha;

-- the objects the extension owns
SELECT p.proname, pg_get_function_result(p.oid) AS result
FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_autoha')
ORDER BY 1;

-- wait (bounded) until the worker leads this one-member cluster
DO $$
BEGIN
  FOR i IN 1..600 LOOP
    PERFORM 1 FROM autoha_node() WHERE is_leader AND role = 'leader';
    IF FOUND THEN RETURN; END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RAISE EXCEPTION 'pg_autoha did not take the leader key within 60 s: %',
    (SELECT row_to_json(n) FROM autoha_node() n);
END $$;

SELECT node_name, cluster_name, role, in_recovery, leader, is_leader,
       lease_time_left > '0'::interval AND lease_time_left <= '10s' AS lease_ok,
       fenced, fence_reason, fenced_since IS NULL AS no_fence_time,
       decision, decision_reason, etcd_endpoint LIKE 'http://127.0.0.1:%' AS etcd_ok,
       last_error, view_age < '10s' AS view_fresh, worker_pid > 0 AS has_worker,
       synchronous_mode, synchronous_standby_names, sync_standbys
FROM autoha_node();

SELECT name, role, state, host, port = current_setting('port')::int AS port_ok,
       timeline, lsn > '0/0' AS has_lsn, lag_bytes, is_leader, sync_state, tags,
       view_age < '10s' AS view_fresh, view_stale
FROM autoha_status();

-- the leader holds a confirmed lease: its fence is down and it takes writes
-- of every kind, two-phase commit included
SHOW default_transaction_read_only;
CREATE TABLE autoha_regress_t (id int);
INSERT INTO autoha_regress_t VALUES (1);
BEGIN;
INSERT INTO autoha_regress_t VALUES (2);
PREPARE TRANSACTION 'autoha_regress_2pc';
COMMIT PREPARED 'autoha_regress_2pc';
SELECT count(*) FROM autoha_regress_t;
DROP TABLE autoha_regress_t;

-- who may call what: pg_monitor yes, PUBLIC no
SELECT p.proname,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public
FROM pg_proc p WHERE p.proname LIKE 'autoha\_%' ORDER BY 1;

CREATE ROLE autoha_regress_nobody;
CREATE ROLE autoha_regress_monitor IN ROLE pg_monitor;
SET ROLE autoha_regress_nobody;
SELECT count(*) FROM autoha_status();
SELECT node_name FROM autoha_node();
SELECT autoha_pause();
SELECT autoha_switchover();
SELECT count(*) FROM autoha_history();
RESET ROLE;
SET ROLE autoha_regress_monitor;
SELECT count(*) FROM autoha_status();
SELECT node_name FROM autoha_node();
SELECT autoha_pause();
RESET ROLE;
DROP ROLE autoha_regress_nobody;
DROP ROLE autoha_regress_monitor;

-- switchover, failover, pause: misuse on this one-member cluster gets an
-- error that says what to do, and changes nothing
SELECT autoha_switchover();
SELECT autoha_switchover('nosuch');
SELECT autoha_switchover('regress1');
SELECT autoha_failover('nosuch');
SELECT autoha_failover('regress1');
SELECT count(*) FROM autoha_history();
-- pause and resume: stored in etcd; the worker's view shows it (bounded wait)
SELECT autoha_pause();
SELECT autoha_pause();
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    PERFORM 1 FROM autoha_node() WHERE paused;
    IF FOUND THEN RETURN; END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RAISE EXCEPTION 'the worker did not see the pause within 10 s';
END $$;
SELECT name, paused FROM autoha_status();
SELECT autoha_switchover();
SELECT autoha_resume();
SELECT autoha_resume();
-- the leader still leads, and writes
SELECT is_leader, fenced FROM autoha_node();

-- bad settings are refused with the setting named and the reason
ALTER SYSTEM SET autoha.ttl = 1;
ALTER SYSTEM SET autoha.loop_wait = 50;
ALTER SYSTEM SET autoha.etcd_endpoints = 'localhost:2379';
ALTER SYSTEM SET autoha.etcd_endpoints = 'http://127.0.0.1:2379,ftp://127.0.0.1:2379';
ALTER SYSTEM SET autoha.etcd_endpoints = 'http://etcd.example';
ALTER SYSTEM SET autoha.node_name = 'bad name';
ALTER SYSTEM SET autoha.node_name = '';
ALTER SYSTEM SET autoha.cluster_name = 'a/b';
ALTER SYSTEM SET autoha.connect_address = 'no-port';
ALTER SYSTEM SET autoha.connect_address = '127.0.0.1:70000';
ALTER SYSTEM SET autoha.replication_conninfo = 'host=10.0.0.1 user=replicator';
ALTER SYSTEM SET autoha.maximum_lag_on_failover = '-1';
ALTER SYSTEM SET autoha.failover_priority = 0;
ALTER SYSTEM SET autoha.nofailover = 'maybe';
ALTER SYSTEM SET autoha.synchronous_mode = 'always';
ALTER SYSTEM SET autoha.synchronous_node_count = 0;
ALTER SYSTEM SET autoha.synchronous_node_count = 17;
ALTER SYSTEM SET autoha.namespace = 'has space';
ALTER SYSTEM SET autoha.no_such_setting = 1;
-- settings are server-wide: no session may change them
SET autoha.ttl = 5;
SET autoha.nofailover = on;
SET autoha.synchronous_mode = on;
-- good values are accepted (and taken back)
ALTER SYSTEM SET autoha.maximum_lag_on_failover = '16MB';
ALTER SYSTEM RESET autoha.maximum_lag_on_failover;
ALTER SYSTEM SET autoha.synchronous_mode = strict;
ALTER SYSTEM RESET autoha.synchronous_mode;

DROP EXTENSION pg_autoha;
