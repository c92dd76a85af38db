/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/spec.h -- a submitted graph, parsed and validated all or
 * nothing: metadata, tasks, chunk expansion, dependencies by label,
 * `requires`, flags, the configured limits, and cycles (Kahn's algorithm;
 * the error names one cycle's labels). Everything is linear in the size of
 * the graph. Pure logic (jansson only, no host calls); any thread.
 */
#ifndef RELENGD_GRAPH_SPEC_H
#define RELENGD_GRAPH_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "modules/graph/labelmap.h"

#define GRAPH_LABEL_MAX 128   /* bytes of a label (chunk suffix included) */
#define GRAPH_PROBLEMS_MAX 50 /* problems listed in one error; then "and N more" */

enum graph_requires {
    GRAPH_REQ_ALL_COMPLETED = 0, /* blocked when a dependency did not complete */
    GRAPH_REQ_ALL_RESOLVED = 1,  /* runs once every dependency resolved, whatever the outcome */
};

/* Value bit of an `existing` labelmap entry: that task is final. */
#define GRAPH_EXISTING_FINAL ((size_t)1)

/* Limits from the configuration. */
struct graph_limits {
    size_t max_tasks;                /* after chunk expansion */
    int64_t max_chunks;              /* largest `chunks` */
    int64_t default_retries;         /* when a task gives none */
    int64_t max_retries;             /* largest `retries` */
    int64_t max_run_time_s;          /* largest payload maxRunTime */
    const char *const *worker_types; /* allowed types, NULL-terminated; NULL: any */
};

struct graph_task_spec {
    char *label;             /* owned: chunked tasks get "<label>-<i>/<n>" */
    const char *worker_type; /* borrowed from the body */
    char *platform;          /* owned: "platform", else workerType before its first '-' */
    json_t *payload;         /* owned: a copy, with THIS_CHUNK/TOTAL_CHUNKS in env */
    size_t *deps;            /* owned: indexes into graph_spec.tasks */
    size_t n_deps;
    const char **ext_deps; /* owned array of borrowed labels of tasks already stored */
    size_t n_ext_deps;
    enum graph_requires requires;
    int64_t priority;
    int64_t retries;
    int64_t deadline_s; /* seconds after submission, 0 = none */
    bool is_inactive, is_breakpoint, is_final;
};

struct graph_spec {
    /* borrowed from the body, NULL when absent */
    const char *name, *repository, *revision, *branch, *owner, *template_name;
    const json_t *labels; /* object of strings, or NULL */
    bool coalesce;
    struct graph_task_spec *tasks; /* owned */
    size_t n_tasks;
    json_t *problems; /* owned: array of strings, empty when valid */
};

/* Parses and validates body into out (which the caller frees with
   graph_spec_fini whatever the result). tasks_only: the body of "add tasks
   to a graph" ({"tasks": [...]}, no metadata). existing: labels already in
   the graph (may be NULL), which new tasks may depend on and must not
   reuse. body stays borrowed by out until graph_spec_fini. Returns 0 when
   valid, RD_EINVAL (-2) with every problem in out->problems, RD_ENOMEM (-1). */
int graph_spec_parse(const json_t *body, const struct graph_limits *lim,
                     const struct labelmap *existing, bool tasks_only, struct graph_spec *out);
void graph_spec_fini(struct graph_spec *s);

/* Validates a payload object (command, env, artifacts, maxRunTime, cache);
   appends problems prefixed with where to problems. true when valid. */
bool graph_payload_check(const json_t *payload, const struct graph_limits *lim, const char *where,
                         json_t *problems);

/* "all-completed" / "all-resolved". */
const char *graph_requires_name(enum graph_requires r);

#endif
