/* SPDX-License-Identifier: MIT */
/*
 * core/pool.h -- the thread pool for CPU work (rd_submit): work runs on one
 * of n pool threads, then done runs on the loop thread via the loopq.
 */
#ifndef RELENGD_POOL_H
#define RELENGD_POOL_H

#include "core/loopq.h"
#include "core/module.h"

struct pool;

/* n_threads >= 1 (RD_EINVAL otherwise); q must outlive the pool. */
int pool_new(int n_threads, struct loopq *q, struct pool **out);
/* Any thread. RD_EUNAVAIL after pool_stop. */
int pool_submit(struct pool *p, rd_work_fn work, rd_done_fn done, void *arg);
/* Number of items queued or running (a gauge). */
int pool_busy(struct pool *p);
/* Refuses new work, finishes queued work, joins threads. done callbacks of
   finished items are pushed to the loopq (run them with loopq_drain). */
void pool_stop(struct pool *p);
/* Stops if needed, then frees. Loop thread: a done callback the loopq could
   not take (out of memory) runs here as a last resort. NULL-safe. */
void pool_free(struct pool *p);

#endif
