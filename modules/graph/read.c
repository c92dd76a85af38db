/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/read.c -- see read.h. Task ids are "<graph id>.<index>" with
 * indexes 0..n-1, so a graph's tasks are an array by index and an edge is
 * attached without any lookup table. Read transactions; any thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/graph/read.h"

#define GRAPH_COLS                                                                                 \
    "seq, id, name, repository, revision, branch, owner, labels, template, coalesce, state,"       \
    " submitted_ms, resolved_ms, submitted_by, n_tasks, c_unscheduled, c_pending, c_running,"      \
    " c_completed, c_failed, c_exception, c_blocked, c_inactive, c_waiting, c_superseded"

static int sqlerr(struct graph *g, sqlite3 *db, const char *what)
{
    rd_log(g->h, RD_ERROR, "%s failed: %s", what, sqlite3_errmsg(db));
    return RD_EIO;
}

static json_t *col_str(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? json_string(s) : json_null();
}

static json_t *col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_integer(sqlite3_column_int64(st, i));
}

static json_t *graph_row(sqlite3_stmt *st)
{
    json_t *counts = json_object(), *g, *labels = NULL;
    const char *lt = (const char *)sqlite3_column_text(st, 7);

    if (!counts)
        return NULL;
    for (int i = 0; i < GS_N; i++)
        json_object_set_new(counts, graph_state_name((enum graph_state)i),
                            json_integer(sqlite3_column_int64(st, 15 + i)));
    if (lt)
        labels = json_loads(lt, 0, NULL);
    g = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:I, s:o, s:o, s:I,"
                  " s:o}",
                  "seq", (json_int_t)sqlite3_column_int64(st, 0), "id", col_str(st, 1), "name",
                  col_str(st, 2), "repository", col_str(st, 3), "revision", col_str(st, 4),
                  "branch", col_str(st, 5), "owner", col_str(st, 6), "labels",
                  labels ? labels : json_object(), "template", col_str(st, 8), "coalesce",
                  sqlite3_column_int(st, 9), "state", col_str(st, 10), "submittedMs",
                  (json_int_t)sqlite3_column_int64(st, 11), "resolvedMs", col_int(st, 12),
                  "submittedBy", col_str(st, 13), "tasks", (json_int_t)sqlite3_column_int64(st, 14),
                  "counts", counts);
    if (g && sqlite3_column_type(st, 12) != SQLITE_NULL)
        json_object_set_new(
            g, "durationMs",
            json_integer(sqlite3_column_int64(st, 12) - sqlite3_column_int64(st, 11)));
    return g;
}

/* Compact jobs of a graph for the push grid. */
static int grid_tasks(struct graph *g, sqlite3 *db, const char *gid, json_t **out)
{
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    int rc = RD_OK, step;

    if (!arr)
        return RD_ENOMEM;
    if (sqlite3_prepare_v2(db,
                           "SELECT t.id, t.label, t.platform, t.state, t.n_runs FROM graph_tasks t"
                           " WHERE t.graph_id = ?1 ORDER BY t.idx",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sqlerr(g, db, "listing jobs");
        goto out;
    }
    sqlite3_bind_text(st, 1, gid, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *t = json_pack("{s:o, s:o, s:o, s:o, s:I}", "id", col_str(st, 0), "label",
                              col_str(st, 1), "platform", col_str(st, 2), "state", col_str(st, 3),
                              "runs", (json_int_t)sqlite3_column_int64(st, 4));
        if (json_array_append_new(arr, t) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = sqlerr(g, db, "listing jobs");
out:
    sqlite3_finalize(st);
    if (rc == RD_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int graph_read_list(struct graph *g, struct rd_tx *tx, const struct graph_list_query *q,
                    json_t **out)
{
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    json_t *list = json_array(), *row;
    int64_t last = 0, n = 0;
    int rc = RD_OK, step;

    if (!list)
        return RD_ENOMEM;
    if (sqlite3_prepare_v2(db,
                           "SELECT " GRAPH_COLS " FROM graph_graphs"
                           " WHERE (?1 IS NULL OR branch = ?1) AND (?2 IS NULL OR repository = ?2)"
                           " AND (?3 IS NULL OR state = ?3) AND (?4 = 0 OR seq < ?4)"
                           " ORDER BY seq DESC LIMIT ?5",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sqlerr(g, db, "listing graphs");
        goto out;
    }
    if (q->branch)
        sqlite3_bind_text(st, 1, q->branch, -1, SQLITE_STATIC);
    if (q->repository)
        sqlite3_bind_text(st, 2, q->repository, -1, SQLITE_STATIC);
    if (q->state)
        sqlite3_bind_text(st, 3, q->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, q->before);
    sqlite3_bind_int64(st, 5, q->limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        row = graph_row(st);
        if (!row || json_array_append_new(list, row) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
        if (q->with_tasks) {
            json_t *jobs = NULL;
            rc = grid_tasks(g, db, json_string_value(json_object_get(row, "id")), &jobs);
            if (rc != RD_OK)
                goto out;
            json_object_set_new(row, "jobs", jobs);
        }
        last = sqlite3_column_int64(st, 0);
        n++;
    }
    if (step != SQLITE_DONE) {
        rc = sqlerr(g, db, "listing graphs");
        goto out;
    }
    *out = json_pack("{s:O, s:o}", "graphs", list, "next",
                     n == q->limit && last > 1 ? json_integer(last) : json_null());
    if (!*out)
        rc = RD_ENOMEM;
out:
    sqlite3_finalize(st);
    json_decref(list);
    return rc;
}

static int64_t idx_of(const char *task_id)
{
    const char *dot = task_id ? strrchr(task_id, '.') : NULL;
    char *end;
    long long v;

    if (!dot)
        return -1;
    v = strtoll(dot + 1, &end, 10);
    return *end || v < 0 ? -1 : (int64_t)v;
}

static json_t *run_row(sqlite3_stmt *st, int c, const char *task_id)
{
    int64_t sched = sqlite3_column_int64(st, c + 6);
    bool started = sqlite3_column_type(st, c + 7) != SQLITE_NULL;
    bool ended = sqlite3_column_type(st, c + 8) != SQLITE_NULL;
    int64_t start = sqlite3_column_int64(st, c + 7), end = sqlite3_column_int64(st, c + 8);
    int64_t run_id = sqlite3_column_int64(st, c);
    char url[RD_TASK_ID_MAX + 64];
    json_t *r =
        json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "runId", (json_int_t)run_id,
                  "state", col_str(st, c + 1), "reasonCreated", col_str(st, c + 2),
                  "reasonResolved", col_str(st, c + 3), "workerId", col_str(st, c + 4), "exitCode",
                  col_int(st, c + 5), "scheduledMs", (json_int_t)sched, "startedMs",
                  col_int(st, c + 7), "resolvedMs", col_int(st, c + 8));

    if (!r)
        return NULL;
    if (started)
        json_object_set_new(r, "waitMs", json_integer(start - sched));
    if (started && ended)
        json_object_set_new(r, "runMs", json_integer(end - start));
    snprintf(url, sizeof(url), "/api/v1/dispatch/runs/%s/%lld/log", task_id, (long long)run_id);
    json_object_set_new(r, "logUrl", json_string(url));
    snprintf(url, sizeof(url), "/api/v1/dispatch/runs/%s/%lld/artifacts", task_id,
             (long long)run_id);
    json_object_set_new(r, "artifactsUrl", json_string(url));
    return r;
}

#define TASK_COLS                                                                                  \
    "t.id, t.label, t.worker_type, t.platform, t.state, t.reason, t.requires, t.priority,"         \
    " t.retries, t.retries_left, t.deadline_ms, t.flags, t.n_runs, t.created_ms, t.resolved_ms,"   \
    " t.graph_id"

static json_t *task_row(sqlite3_stmt *st)
{
    int flags = sqlite3_column_int(st, 11);

    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:I, s:I, s:I, s:o, s:b, s:b, s:b, s:b,"
        " s:I, s:I, s:o, s:o}",
        "id", col_str(st, 0), "label", col_str(st, 1), "workerType", col_str(st, 2), "platform",
        col_str(st, 3), "state", col_str(st, 4), "reason", col_str(st, 5), "requires",
        graph_requires_name((enum graph_requires)sqlite3_column_int(st, 6)), "priority",
        (json_int_t)sqlite3_column_int64(st, 7), "retries", (json_int_t)sqlite3_column_int64(st, 8),
        "retriesLeft", (json_int_t)sqlite3_column_int64(st, 9), "deadlineMs",
        sqlite3_column_int64(st, 10) ? json_integer(sqlite3_column_int64(st, 10)) : json_null(),
        "inactive", (flags & 1) != 0, "breakpoint", (flags & 2) != 0, "final", (flags & 4) != 0,
        "activated", (flags & 1) && strcmp((const char *)sqlite3_column_text(st, 4), "inactive"),
        "runs", (json_int_t)sqlite3_column_int64(st, 12), "createdMs",
        (json_int_t)sqlite3_column_int64(st, 13), "resolvedMs", col_int(st, 14), "graphId",
        col_str(st, 15));
}

int graph_read_graph(struct graph *g, struct rd_tx *tx, const char *id, json_t **out)
{
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    json_t *graph = NULL, *tasks = NULL;
    int rc = RD_OK, step;
    size_t n;

    if (sqlite3_prepare_v2(db, "SELECT " GRAPH_COLS " FROM graph_graphs WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return sqlerr(g, db, "reading a graph");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = RD_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW || !(graph = graph_row(st))) {
        rc = step != SQLITE_ROW ? sqlerr(g, db, "reading a graph") : RD_ENOMEM;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    tasks = json_array();
    if (!tasks || sqlite3_prepare_v2(db,
                                     "SELECT " TASK_COLS " FROM graph_tasks t WHERE t.graph_id = ?1"
                                     " ORDER BY t.idx",
                                     -1, &st, NULL) != SQLITE_OK) {
        rc = tasks ? sqlerr(g, db, "reading tasks") : RD_ENOMEM;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *t = task_row(st);
        if (!t || json_object_set_new(t, "dependencies", json_array()) != 0 ||
            json_array_append_new(tasks, t) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        rc = sqlerr(g, db, "reading tasks");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    n = json_array_size(tasks);
    /* edges */
    if (sqlite3_prepare_v2(db,
                           "SELECT d.task_id, d.dep_id FROM graph_tasks t JOIN graph_deps d"
                           " ON d.task_id = t.id WHERE t.graph_id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sqlerr(g, db, "reading edges");
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = idx_of((const char *)sqlite3_column_text(st, 0));
        json_t *t = i >= 0 && (size_t)i < n ? json_array_get(tasks, (size_t)i) : NULL;
        if (t)
            json_array_append_new(json_object_get(t, "dependencies"), col_str(st, 1));
    }
    if (step != SQLITE_DONE) {
        rc = sqlerr(g, db, "reading edges");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* each task's latest run */
    if (sqlite3_prepare_v2(db,
                           "SELECT r.run_id, r.state, r.reason_created, r.reason_resolved,"
                           " r.worker_id, r.exit_code, r.scheduled_ms, r.started_ms,"
                           " r.resolved_ms, t.idx, t.id FROM graph_tasks t JOIN graph_runs r"
                           " ON r.task_id = t.id AND r.run_id = t.n_runs - 1"
                           " WHERE t.graph_id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sqlerr(g, db, "reading runs");
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(st, 9);
        json_t *t = i >= 0 && (size_t)i < n ? json_array_get(tasks, (size_t)i) : NULL;
        if (t)
            json_object_set_new(t, "lastRun",
                                run_row(st, 0, (const char *)sqlite3_column_text(st, 10)));
    }
    if (step != SQLITE_DONE) {
        rc = sqlerr(g, db, "reading runs");
        goto out;
    }
    json_object_set(graph, "tasks", tasks);
    *out = graph;
    graph = NULL;
out:
    sqlite3_finalize(st);
    json_decref(graph);
    json_decref(tasks);
    return rc;
}

/* [{id,label,state}] of the tasks on one side of id's edges. */
static int neighbours(struct graph *g, sqlite3 *db, const char *id, bool deps, json_t *arr)
{
    sqlite3_stmt *st = NULL;
    int step;

    if (sqlite3_prepare_v2(db,
                           deps ? "SELECT t.id, t.label, t.state FROM graph_deps d JOIN graph_tasks"
                                  " t ON t.id = d.dep_id WHERE d.task_id = ?1 ORDER BY t.idx"
                                : "SELECT t.id, t.label, t.state FROM graph_deps d JOIN graph_tasks"
                                  " t ON t.id = d.task_id WHERE d.dep_id = ?1 ORDER BY t.idx",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlerr(g, db, "reading dependencies");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:o, s:o, s:o}", "id", col_str(st, 0), "label",
                                             col_str(st, 1), "state", col_str(st, 2)));
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? RD_OK : RD_EIO;
}

int graph_read_task(struct graph *g, struct rd_tx *tx, const char *id, json_t **out)
{
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    json_t *task = NULL, *runs = NULL, *deps = NULL, *dependents = NULL, *payload;
    int rc = RD_OK, step;

    if (sqlite3_prepare_v2(db, "SELECT " TASK_COLS ", t.payload FROM graph_tasks t WHERE t.id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlerr(g, db, "reading a task");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = RD_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW || !(task = task_row(st))) {
        rc = step != SQLITE_ROW ? sqlerr(g, db, "reading a task") : RD_ENOMEM;
        goto out;
    }
    payload = json_loads((const char *)sqlite3_column_text(st, 16), 0, NULL);
    json_object_set_new(task, "payload", payload ? payload : json_null());
    sqlite3_finalize(st);
    st = NULL;
    runs = json_array();
    deps = json_array();
    dependents = json_array();
    if (!runs || !deps || !dependents) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT run_id, state, reason_created, reason_resolved, worker_id,"
                           " exit_code, scheduled_ms, started_ms, resolved_ms FROM graph_runs"
                           " WHERE task_id = ?1 ORDER BY run_id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sqlerr(g, db, "reading runs");
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(runs, run_row(st, 0, id));
    rc = neighbours(g, db, id, true, deps);
    if (rc == RD_OK)
        rc = neighbours(g, db, id, false, dependents);
    if (rc != RD_OK)
        goto out;
    json_object_set(task, "runs", runs);
    json_object_set(task, "dependencies", deps);
    json_object_set(task, "dependents", dependents);
    *out = task;
    task = NULL;
out:
    sqlite3_finalize(st);
    json_decref(task);
    json_decref(runs);
    json_decref(deps);
    json_decref(dependents);
    return rc;
}
