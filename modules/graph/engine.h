/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/engine.h -- every change of task state, applied to the
 * store (tables graph_*) inside the caller's write transaction, with its
 * events (rd_tx_publish) and its queue calls (dispatch.queue enqueue and
 * cancel) in that same transaction. Dependents are found through the
 * graph_deps index (dep_id first), never by a scan; each task keeps the
 * count of its dependencies not yet resolved (n_left) and of those that did
 * not complete (n_failed), so releasing a dependent is one indexed UPDATE.
 * Per-graph counts by state live in graph_graphs, so that a graph's outcome
 * is one row read. Any thread, inside rd_store_write callbacks only.
 *
 * Every function returns RD_OK, RD_ENOTFOUND (no such graph/task/run),
 * RD_ECONFLICT (the state does not allow it; err says why), RD_EINVAL (bad
 * argument; err says why), RD_ENOMEM or RD_EIO. err may be NULL.
 */
#ifndef RELENGD_GRAPH_ENGINE_H
#define RELENGD_GRAPH_ENGINE_H

#include "modules/graph/graph.h"

/* Schema migrations for graph_* (module.c hands them to rd_store_migrate). */
extern const char *const graph_migrations[];

#define GRAPH_ID_LEN 12 /* characters of a graph id (base64url) */

/* Stores a validated graph and schedules its runnable tasks; coalesces
   older graphs of the same branch and template when the graph asks (or the
   configuration does). id_out gets the new graph id. */
int graph_engine_submit(struct graph *g, struct rd_tx *tx, const struct graph_spec *s,
                        const char *principal, char id_out[GRAPH_ID_LEN + 1], struct rd_error *err);
/* Validates {"tasks":[...]} against the graph's labels and adds the tasks.
   RD_EINVAL with *problems (new reference) when invalid. *ids: the new
   task ids (new reference) on success. */
int graph_engine_add(struct graph *g, struct rd_tx *tx, const char *graph_id, const json_t *body,
                     json_t **problems, json_t **ids, struct rd_error *err);

/* graph.runs: a run was claimed / ended (core/services/tasks.h). */
int graph_engine_started(struct graph *g, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                         const char *worker_id);
int graph_engine_resolved(struct graph *g, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                          const char *state, const char *reason, int exit_code);

/* Operations. by: the principal, for the record. */
int graph_engine_cancel_task(struct graph *g, struct rd_tx *tx, const char *task_id,
                             struct rd_error *err);
int graph_engine_release(struct graph *g, struct rd_tx *tx, const char *task_id, bool completed,
                         const char *by, struct rd_error *err);
/* payload: an edited payload (validated by the caller), or NULL. */
int graph_engine_rerun(struct graph *g, struct rd_tx *tx, const char *task_id,
                       const json_t *payload, struct rd_error *err);
int graph_engine_activate(struct graph *g, struct rd_tx *tx, const char *task_id,
                          struct rd_error *err);
/* Activates the inactive tasks whose label matches pattern (fnmatch); their
   ids are appended to ids. RD_OK even when none matched. */
int graph_engine_activate_matching(struct graph *g, struct rd_tx *tx, const char *graph_id,
                                   const char *pattern, json_t *ids, struct rd_error *err);
/* Reruns every failed or exception task of the graph; ids appended. */
int graph_engine_rerun_failed(struct graph *g, struct rd_tx *tx, const char *graph_id, json_t *ids,
                              struct rd_error *err);
int graph_engine_cancel_graph(struct graph *g, struct rd_tx *tx, const char *graph_id,
                              struct rd_error *err);

/* destroy: finalizes the statements kept on the writer connection. */
void graph_engine_cache_free(struct graph *g);

/* Start: hands every pending run to the queue again (enqueue is idempotent).
 *n: how many. */
int graph_engine_requeue(struct graph *g, struct rd_tx *tx, size_t *n);
/* The unresolved tasks whose deadline is at or before ?1 (the sweep's
   check and graph_engine_deadlines look at the same rows). */
#define GRAPH_SQL_OVERDUE                                                                          \
    "FROM graph_tasks WHERE deadline_ms > 0 AND deadline_ms <= ?1"                                 \
    " AND state IN ('unscheduled', 'pending', 'running', 'waiting', 'inactive')"
/* Resolves up to max tasks whose deadline passed (exception,
   deadline-exceeded). *n: how many. */
int graph_engine_deadlines(struct graph *g, struct rd_tx *tx, uint64_t now_ms, size_t max,
                           size_t *n);

#endif
