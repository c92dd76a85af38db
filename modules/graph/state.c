/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/state.c -- see state.h. The legal transitions are one table,
 * so that the state machine can be read (and tested) in one place. Pure logic.
 */
#include "config.h"

#include <string.h>

#include "modules/graph/state.h"

static const char *const state_names[GS_N] = {
    [GS_UNSCHEDULED] = "unscheduled", [GS_PENDING] = "pending",   [GS_RUNNING] = "running",
    [GS_COMPLETED] = "completed",     [GS_FAILED] = "failed",     [GS_EXCEPTION] = "exception",
    [GS_BLOCKED] = "blocked",         [GS_INACTIVE] = "inactive", [GS_WAITING] = "waiting",
    [GS_SUPERSEDED] = "superseded",
};

#define T(a) (1u << (a))
/* allowed[from]: the set of states a task may move to. */
static const unsigned allowed[GS_N] = {
    /* deps done, a breakpoint reached, a dependency failed, cancel, coalescing */
    [GS_UNSCHEDULED] =
        T(GS_PENDING) | T(GS_WAITING) | T(GS_BLOCKED) | T(GS_EXCEPTION) | T(GS_SUPERSEDED),
    /* claimed, cancel/deadline, coalescing */
    [GS_PENDING] = T(GS_RUNNING) | T(GS_EXCEPTION) | T(GS_SUPERSEDED),
    /* a result, or a retry after an exception */
    [GS_RUNNING] = T(GS_COMPLETED) | T(GS_FAILED) | T(GS_EXCEPTION) | T(GS_PENDING),
    /* rerun (a breakpoint reruns into waiting) */
    [GS_COMPLETED] = T(GS_PENDING) | T(GS_WAITING),
    [GS_FAILED] = T(GS_PENDING) | T(GS_WAITING),
    [GS_EXCEPTION] = T(GS_PENDING) | T(GS_WAITING),
    /* the failed dependency was rerun */
    [GS_BLOCKED] = T(GS_UNSCHEDULED),
    /* activate, cancel, coalescing */
    [GS_INACTIVE] = T(GS_UNSCHEDULED) | T(GS_EXCEPTION) | T(GS_SUPERSEDED),
    /* released by a person or script, cancel */
    [GS_WAITING] = T(GS_COMPLETED) | T(GS_FAILED) | T(GS_EXCEPTION),
    [GS_SUPERSEDED] = 0,
};

const char *graph_state_name(enum graph_state s)
{
    return (unsigned)s < GS_N ? state_names[s] : NULL;
}

enum graph_state graph_state_parse(const char *s)
{
    for (unsigned i = 0; s && i < GS_N; i++)
        if (strcmp(s, state_names[i]) == 0)
            return (enum graph_state)i;
    return GS_N;
}

bool graph_state_resolved(enum graph_state s)
{
    return s == GS_COMPLETED || s == GS_FAILED || s == GS_EXCEPTION || s == GS_BLOCKED ||
           s == GS_SUPERSEDED;
}

bool graph_state_busy(enum graph_state s)
{
    return s == GS_PENDING || s == GS_RUNNING || s == GS_WAITING;
}

bool graph_transition_ok(enum graph_state from, enum graph_state to)
{
    if ((unsigned)from >= GS_N || (unsigned)to >= GS_N)
        return false;
    return (allowed[from] & T(to)) != 0;
}

enum graph_state graph_ready_state(const struct graph_ready_in *in)
{
    if (in->is_final) {
        /* final tasks have no dependencies of their own: they wait for the
           graph, whatever its outcome */
        if (!in->finals_released)
            return GS_UNSCHEDULED;
        return in->is_breakpoint ? GS_WAITING : GS_PENDING;
    }
    if (in->requires == GRAPH_REQ_ALL_COMPLETED && in->n_failed > 0)
        return GS_BLOCKED;
    if (in->n_left > 0)
        return GS_UNSCHEDULED;
    return in->is_breakpoint ? GS_WAITING : GS_PENDING;
}

static const char *const exception_reasons[] = {
    "claim-expired",     "deadline-exceeded", "worker-shutdown",
    "malformed-payload", "internal-error",    "intermittent-task",
};

enum graph_state graph_report_state(const char *state, const char *reason)
{
    if (!state)
        return GS_N;
    if (strcmp(state, "completed") == 0)
        return !reason || strcmp(reason, "completed") == 0 ? GS_COMPLETED : GS_N;
    if (strcmp(state, "failed") == 0)
        return !reason || strcmp(reason, "failed") == 0 ? GS_FAILED : GS_N;
    if (strcmp(state, "exception") == 0 && reason) {
        for (size_t i = 0; i < sizeof(exception_reasons) / sizeof(exception_reasons[0]); i++)
            if (strcmp(reason, exception_reasons[i]) == 0)
                return GS_EXCEPTION;
    }
    return GS_N;
}

bool graph_reason_retried(const char *reason)
{
    return reason &&
           (strcmp(reason, "claim-expired") == 0 || strcmp(reason, "worker-shutdown") == 0 ||
            strcmp(reason, "intermittent-task") == 0);
}

const char *graph_outcome(const int64_t counts[GS_N])
{
    return counts[GS_FAILED] + counts[GS_EXCEPTION] + counts[GS_BLOCKED] > 0 ? "failed"
                                                                             : "completed";
}
