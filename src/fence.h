/*-------------------------------------------------------------------------
 *
 * fence.h
 *	  The write fence: a server without a confirmed leader lease never
 *	  acknowledges a write.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_FENCE_H
#define AUTOHA_FENCE_H

#include "datatype/timestamp.h"
#include "port/atomics.h"

#define AUTOHA_FENCE_REASON_LEN 256

/* the fence's part of shared memory; see fence.c */
typedef struct FenceShared
{
	pg_atomic_uint32 raised;	/* 1: refuse every write commit */
	pg_atomic_uint64 deadline_us;	/* monotonic; refuse at or after it */
	char		reason[AUTOHA_FENCE_REASON_LEN];	/* under AutohaShared.lock */
	TimestampTz raised_at;		/* under AutohaShared.lock */
} FenceShared;

/* monotonic clock shared by all processes of the machine, microseconds */
extern int64 fence_now_us(void);

/* backend side: install the commit-time checks (from _PG_init) */
extern void fence_install_hooks(void);

/* shared memory: a new server starts fenced */
extern void fence_shmem_init(FenceShared *fence);

/* worker side */
extern bool fence_is_up(void);
extern bool fence_raise(const char *reason);	/* true if it was down */
extern void fence_lower(int64 deadline_us);

#endif							/* AUTOHA_FENCE_H */
