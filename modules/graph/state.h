/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/state.h -- the task state machine (Taskcluster's task/run
 * split) as pure functions: state names, which transitions are legal, when
 * an unscheduled task becomes runnable, blocked or waiting, which reported
 * results are valid and which are retried, and a graph's outcome from its
 * counts by state. The engine (engine.c) applies these to the store. Pure
 * logic, no host calls; any thread.
 *
 *   inactive ──activate──► unscheduled ──deps done──► pending ──claim──► running
 *                              │  │                     ▲   │              │
 *                              │  └─breakpoint─► waiting │   └─cancel──►    ├─► completed
 *                              └─a dep failed─► blocked  └──retry──────────┤   failed
 *                                                                          └─► exception
 */
#ifndef RELENGD_GRAPH_STATE_H
#define RELENGD_GRAPH_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "modules/graph/spec.h"

enum graph_state {
    GS_UNSCHEDULED = 0,
    GS_PENDING,
    GS_RUNNING,
    GS_COMPLETED,
    GS_FAILED,
    GS_EXCEPTION,
    GS_BLOCKED,
    GS_INACTIVE,
    GS_WAITING,
    GS_SUPERSEDED,
    GS_N
};

/* "unscheduled", ...; NULL for an out-of-range value. */
const char *graph_state_name(enum graph_state s);
/* The state named s, or GS_N when s names none. */
enum graph_state graph_state_parse(const char *s);
/* completed, failed, exception, blocked, superseded: the task is done. */
bool graph_state_resolved(enum graph_state s);
/* pending, running, waiting: something is going on or someone must act. */
bool graph_state_busy(enum graph_state s);
/* Whether the engine may move a task from `from` to `to`. */
bool graph_transition_ok(enum graph_state from, enum graph_state to);

/* What an unscheduled task needs to know to move on. */
struct graph_ready_in {
    enum graph_requires requires;
    bool is_breakpoint, is_final;
    bool finals_released; /* the graph's other tasks have all settled */
    int64_t n_left;       /* dependencies not resolved yet */
    int64_t n_failed;     /* dependencies resolved other than completed */
};
/* The state an unscheduled task moves to: GS_BLOCKED (all-completed and a
   dependency did not complete), GS_PENDING / GS_WAITING (breakpoint) when
   every dependency resolved (and, for a final task, the graph settled), or
   GS_UNSCHEDULED to stay. */
enum graph_state graph_ready_state(const struct graph_ready_in *in);

/* A worker's report: state "completed" | "failed" | "exception" and its
   reason (see core/services/tasks.h). Returns the task state it resolves to,
   or GS_N when the pair is not valid. reason may be NULL for completed and
   failed. */
enum graph_state graph_report_state(const char *state, const char *reason);
/* Whether an exception with this reason is retried (claim-expired,
   worker-shutdown, intermittent-task) when retries remain. */
bool graph_reason_retried(const char *reason);

/* "completed" when no task failed, ended in an exception or was blocked,
   else "failed". counts is indexed by enum graph_state. */
const char *graph_outcome(const int64_t counts[GS_N]);

#endif
