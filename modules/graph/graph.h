/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/graph.h -- the graph module's own state (one struct, handed
 * to every callback), its configuration, and what its files share: the
 * engine (engine.c, task state in SQLite), the routes (api_*.c), the
 * taskruns service (runs.c) and templates (template.c). Threads: the struct
 * is filled in init/start and read-only afterwards except `queue` (set in
 * start, before any route or service call can run) and the metrics (which
 * the host makes thread-safe).
 */
#ifndef RELENGD_GRAPH_GRAPH_H
#define RELENGD_GRAPH_GRAPH_H

#include "core/module.h"
#include "core/services/tasks.h"
#include "modules/graph/spec.h"
#include "modules/graph/state.h"

struct graph_conf {
    int64_t max_tasks;          /* largest graph, chunks expanded */
    int64_t max_chunks;         /* largest `chunks` */
    int64_t default_retries;    /* retries of a task that names none */
    int64_t max_retries;        /* largest `retries` */
    uint64_t max_run_time_ms;   /* largest payload maxRunTime */
    const char *worker_types;   /* space-separated allowed types; "" = any */
    bool coalesce;              /* coalesce graphs with a branch and template by default */
    const char *templates_dir;  /* graph templates (*.json); "" = SYSCONF_DIR/graph */
    uint64_t deadline_check_ms; /* how often overdue tasks are resolved */
};

extern const struct rd_cfg_key graph_keys[];

struct graph {
    struct rd_host *h;
    struct graph_conf conf;
    struct graph_limits lim;
    char **worker_types;              /* owned, NULL-terminated; NULL: any */
    char *templates_dir;              /* owned, resolved */
    const struct rd_taskqueue *queue; /* dispatch.queue, or NULL (runs stay pending) */
    struct rd_taskruns runs;          /* what we provide as graph.runs */
    struct rd_timer *deadline_timer;
    int deadline_busy; /* a sweep is queued (loop thread only) */

    /* Statements of engine.c prepared on the store's writer connection
       (stmt_db), kept from one write transaction to the next: preparing
       them for every service call cost more than running them. Only used
       inside write transactions, which the store serialises; finalized in
       destroy (the store closes connections lazily (close_v2), so even a
       connection closed first stays valid until then). */
#define GRAPH_N_STMTS 24
    sqlite3 *stmt_db;
    sqlite3_stmt *stmt_cache[GRAPH_N_STMTS];

    struct rd_metric *graphs_submitted;
    struct rd_metric *graph_seconds[3]; /* outcome completed, failed, canceled */
    struct rd_metric *wait_seconds;
    struct rd_metric *run_seconds[3]; /* state completed, failed, exception */
    struct rd_metric *tasks_resolved[GS_N];
};

#endif
