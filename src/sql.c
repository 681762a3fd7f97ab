/*-------------------------------------------------------------------------
 *
 * sql.c
 *	  SQL-callable functions: autoha_status() and autoha_node().
 *
 * Both answer from the worker's latest view in shared memory, never from
 * etcd directly: they work while etcd is unreachable and say how old the
 * view is.  EXECUTE is granted to pg_monitor only (see the install script).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_autoha.h"

PG_FUNCTION_INFO_V1(autoha_status);
PG_FUNCTION_INFO_V1(autoha_node);

#define STATUS_COLUMNS	14
#define NODE_COLUMNS	21

/* a view older than this many loops is called stale even if reads succeed */
#define STALE_AFTER_LOOPS 3

static void
require_shared_state(void)
{
	if (autoha_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_autoha is not loaded through shared_preload_libraries"),
				 errhint("Add pg_autoha to shared_preload_libraries in postgresql.conf and restart the server.")));
}

static Datum
interval_since(TimestampTz then, TimestampTz now)
{
	return DirectFunctionCall2(timestamp_mi,
							   TimestampTzGetDatum(now),
							   TimestampTzGetDatum(then));
}

static Datum
interval_ms(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return IntervalPGetDatum(iv);
}

static bool
view_is_stale(const AutohaShared *copy, TimestampTz now)
{
	return !copy->view_valid || copy->view_stale ||
		TimestampDifferenceExceeds(copy->view_time, now,
								   STALE_AFTER_LOOPS * autoha_loop_wait);
}

static void
copy_shared(AutohaShared *copy)
{
	require_shared_state();
	LWLockAcquire(autoha_shared->lock, LW_SHARED);
	memcpy(copy, autoha_shared, sizeof(AutohaShared));
	LWLockRelease(autoha_shared->lock);
}

Datum
autoha_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AutohaShared *copy = palloc(sizeof(AutohaShared));
	TimestampTz now = GetCurrentTimestamp();
	bool		stale;
	uint64		leader_lsn = 0;
	int			i;

	copy_shared(copy);
#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFuncCall(fcinfo, 0);
#endif
	if (!copy->view_valid)
		PG_RETURN_VOID();

	stale = view_is_stale(copy, now);
	for (i = 0; i < copy->view.nmembers; i++)
	{
		const MemberInfo *m = &copy->view.members[i];

		if (copy->view.has_leader && strcmp(m->name, copy->view.leader) == 0)
			leader_lsn = m->lsn;
	}
	if (leader_lsn == 0)
		leader_lsn = copy->leader_lsn;

	for (i = 0; i < copy->view.nmembers; i++)
	{
		const MemberInfo *m = &copy->view.members[i];
		Datum		values[STATUS_COLUMNS];
		bool		nulls[STATUS_COLUMNS];
		bool		is_leader = copy->view.has_leader &&
			strcmp(m->name, copy->view.leader) == 0;

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(m->name);
		values[1] = CStringGetTextDatum(is_leader ? "leader" :
										m->role[0] ? m->role : "unknown");
		values[2] = CStringGetTextDatum(m->state[0] ? m->state : "unknown");
		if (m->host[0])
			values[3] = CStringGetTextDatum(m->host);
		else
			nulls[3] = true;
		if (m->port > 0)
			values[4] = Int32GetDatum(m->port);
		else
			nulls[4] = true;
		if (m->timeline > 0)
			values[5] = Int32GetDatum((int32) m->timeline);
		else
			nulls[5] = true;
		values[6] = LSNGetDatum((XLogRecPtr) m->lsn);
		if (is_leader)
			values[7] = Int64GetDatum(0);
		else if (leader_lsn > 0)
			values[7] = Int64GetDatum(leader_lsn > m->lsn ? (int64) (leader_lsn - m->lsn) : 0);
		else
			nulls[7] = true;
		values[8] = BoolGetDatum(is_leader);
		/* a standby the sync key lists holds every acknowledged commit */
		if (is_leader)
			nulls[9] = true;
		else
			values[9] = CStringGetTextDatum(ha_sync_lists(&copy->view.sync, m->name) ?
											"sync" : "async");
		values[10] = DirectFunctionCall1(jsonb_in,
										 CStringGetDatum(m->tags[0] ? m->tags : "{}"));
		values[11] = interval_since(copy->view_time, now);
		values[12] = BoolGetDatum(stale);
		values[13] = BoolGetDatum(copy->view.paused);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

Datum
autoha_node(PG_FUNCTION_ARGS)
{
	AutohaShared *copy = palloc(sizeof(AutohaShared));
	TimestampTz now = GetCurrentTimestamp();
	TupleDesc	tupdesc;
	Datum		values[NODE_COLUMNS];
	bool		nulls[NODE_COLUMNS];
	const char *decision;
	bool		flag_raised;
	bool		fenced;

	copy_shared(copy);
	flag_raised = pg_atomic_read_u32(&copy->fence.raised) != 0;
	fenced = fence_is_up();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(autoha_node_name);
	values[1] = CStringGetTextDatum(autoha_cluster_name);
	values[2] = CStringGetTextDatum(copy->role[0] ? copy->role : "starting");
	values[3] = BoolGetDatum(RecoveryInProgress());
	if (copy->leader[0])
		values[4] = CStringGetTextDatum(copy->leader);
	else
		nulls[4] = true;
	values[5] = BoolGetDatum(copy->is_leader);
	if (copy->lease_id != 0 && copy->lease_expires != 0)
	{
		int64		left_ms = (copy->lease_expires - now) / 1000;

		values[6] = interval_ms(left_ms > 0 ? left_ms : 0);
	}
	else
		nulls[6] = true;

	/* the fence: the worker's flag, or the lease deadline passing by itself */
	values[7] = BoolGetDatum(fenced);
	if (fenced)
	{
		values[8] = CStringGetTextDatum(flag_raised && copy->fence.reason[0] ?
										copy->fence.reason :
										"its lease could not be renewed in time");
		if (flag_raised)
			values[9] = TimestampTzGetDatum(copy->fence.raised_at);
		else
			nulls[9] = true;
	}
	else
		nulls[8] = nulls[9] = true;

	decision = copy->decision_reason[0] ? ha_action_name(copy->decision) : NULL;
	if (decision)
	{
		values[10] = CStringGetTextDatum(decision);
		values[11] = CStringGetTextDatum(copy->decision_reason);
	}
	else
		nulls[10] = nulls[11] = true;
	if (copy->etcd_endpoint[0])
		values[12] = CStringGetTextDatum(copy->etcd_endpoint);
	else
		nulls[12] = true;
	if (copy->last_error[0])
	{
		values[13] = CStringGetTextDatum(copy->last_error);
		values[14] = TimestampTzGetDatum(copy->last_error_at);
	}
	else
		nulls[13] = nulls[14] = true;
	if (copy->view_valid)
		values[15] = interval_since(copy->view_time, now);
	else
		nulls[15] = true;
	if (copy->worker_pid != 0)
		values[16] = Int32GetDatum(copy->worker_pid);
	else
		nulls[16] = true;
	if (copy->view_valid)
		values[17] = BoolGetDatum(copy->view.paused);
	else
		nulls[17] = true;
	values[18] = CStringGetTextDatum(sync_mode_name((SyncMode) autoha_synchronous_mode));
	values[19] = CStringGetTextDatum(GetConfigOption("synchronous_standby_names", false, false));

	/* on the leader, the synchronous set it keeps (in the sync key) */
	if (copy->view_valid && copy->is_leader && copy->view.sync.present &&
		strcmp(copy->view.sync.leader, autoha_node_name) == 0)
	{
		Datum	   *elems = palloc(sizeof(Datum) * Max(1, copy->view.sync.nstandbys));
		int			i;

		for (i = 0; i < copy->view.sync.nstandbys; i++)
			elems[i] = CStringGetTextDatum(copy->view.sync.standbys[i]);
		values[20] = PointerGetDatum(construct_array(elems, copy->view.sync.nstandbys,
													 TEXTOID, -1, false, TYPALIGN_INT));
	}
	else
		nulls[20] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
