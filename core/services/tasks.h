/* SPDX-License-Identifier: MIT */
/*
 * core/services/tasks.h -- the contract between the graph module (what may
 * run) and the dispatch module (where it runs). Neither module sees the
 * other's tables or code; they meet only through these two vtables, looked
 * up with rd_service_get() at start.
 *
 *   graph    provides RD_TASKRUNS_SERVICE  (dispatch reports claims and results)
 *   dispatch provides RD_TASKQUEUE_SERVICE (graph hands over runnable runs)
 *
 * Every call takes the caller's open write transaction (struct rd_tx), so a
 * task's state in graph's tables and its queue entry in dispatch's tables
 * commit or roll back together: a crash can never leave a task "pending" in
 * graph but unknown to dispatch, or "completed" twice. Calls may nest:
 * dispatch's resolved() call into graph may, within the same transaction,
 * call back into enqueue() for a retry run. Neither side may start a
 * transaction of its own inside these calls (the store refuses nesting) or
 * keep the tx after returning.
 *
 * Ids. A task id is graph's opaque string (at most RD_TASK_ID_MAX bytes of
 * [A-Za-z0-9_.-]); a run id counts attempts of one task from 0. The pair
 * (task_id, run_id) names one run everywhere: API, events, logs, artifacts.
 *
 * Events. graph publishes task.pending / task.running / task.resolved (with
 * rd_tx_publish, in these same transactions); dispatch may subscribe to
 * task.pending to wake long-polling workers after COMMIT.
 *
 * Either module may be loaded without the other: graph then keeps runs
 * pending, dispatch then has an empty queue. Both provide their service in
 * init, so each finds the other at start whatever the load order.
 */
#ifndef RELENGD_SERVICES_TASKS_H
#define RELENGD_SERVICES_TASKS_H

#include <stdint.h>

#include <jansson.h>

struct rd_tx;

#define RD_TASK_ID_MAX 64

#define RD_TASKQUEUE_SERVICE "dispatch.queue"
#define RD_TASKQUEUE_VERSION 1
#define RD_TASKRUNS_SERVICE "graph.runs"
#define RD_TASKRUNS_VERSION 1

/* One runnable run, as graph hands it to dispatch. Strings and payload are
   borrowed for the call; dispatch copies what it keeps. */
struct rd_task_run_spec {
    const char *task_id;
    uint32_t run_id;
    const char *graph_id;
    const char *label;         /* unique in its graph; chunked tasks "test-1/3" etc. */
    const char *worker_type;   /* e.g. "linux64-build" */
    const char *branch;        /* "" when the graph names none */
    int32_t priority;          /* higher runs first */
    uint64_t pending_since_ms; /* rd_now_ms() when the run became pending: FIFO key */
    uint64_t deadline_ms;      /* absolute rd_now_ms() time, 0 = none */
    /* {"command": [argv...] or "shell string", "env": {..., THIS_CHUNK,
       TOTAL_CHUNKS for chunked tasks}, "artifacts": [{"name","path"}...],
       "maxRunTime": seconds, "cache": "name" (optional)} */
    const json_t *payload;
};

/* Provided by dispatch. */
struct rd_taskqueue {
    void *ctx;
    /* Queues a run. Idempotent on (task_id, run_id): graph re-enqueues every
       pending run at start, which must not duplicate anything. */
    int (*enqueue)(void *ctx, struct rd_tx *tx, const struct rd_task_run_spec *run);
    /* Withdraws a run graph has cancelled (or superseded): a queued run is
       dropped; a claimed one is marked so that the worker's next reclaim or
       report gets 409 and the worker stops it. RD_ENOTFOUND when dispatch
       does not know the run (not an error for graph). Graph records the
       run's resolution itself; dispatch must not call resolved() for it. */
    int (*cancel)(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id);
};

/* Provided by graph. Both return RD_OK, RD_ENOTFOUND (no such run) or
   RD_ECONFLICT (the run is not in a state that allows it: cancelled,
   superseded, already resolved); dispatch then answers its worker 409.
   RD_ENOTFOUND and RD_ECONFLICT mean graph changed nothing, so dispatch may
   still commit its own side (e.g. dropping a stale lease); any other error
   means the transaction must roll back (graph returns RD_EIO for a failure
   after it has written). resolved() may also be called for a run that is
   still pending in the queue (its deadline passed before any claim): graph
   accepts only "exception" for a pending run. */
struct rd_taskruns {
    void *ctx;
    /* A worker (or an external reporter, worker_id "external:<name>")
       claimed the run: pending -> running. */
    int (*started)(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                   const char *worker_id);
    /* The run ended. state: "completed" | "failed" | "exception". reason:
       "completed", "failed", or for exception one of "claim-expired",
       "deadline-exceeded", "worker-shutdown", "malformed-payload",
       "internal-error", "intermittent-task". exit_code: the command's exit
       status, or -1 when there is none. Graph resolves the task or retries it
       (calling enqueue() for the new run inside this call) and releases
       dependents. */
    int (*resolved)(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                    const char *state, const char *reason, int exit_code);
};

#endif
