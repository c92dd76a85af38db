/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/engine.c -- see engine.h. One operation is one struct gx:
 * the caller's transaction, the statements it prepared (kept for the
 * operation, finalized at its end), the graph it works on with count deltas
 * applied in one UPDATE at the end (gx_flush), and a work list of tasks
 * that resolved and whose dependents must be released. The work list makes
 * cascades (a failure blocking a chain of 100,000 tasks) iterative, never
 * recursive. Runs on whatever thread holds the write transaction.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "modules/graph/engine.h"

#define F_INACTIVE 1 /* created inactive */
#define F_BREAKPOINT 2
#define F_FINAL 4

#define COUNT_COLS                                                                                 \
    "c_unscheduled, c_pending, c_running, c_completed, c_failed, c_exception, c_blocked, "         \
    "c_inactive, c_waiting, c_superseded"

const char *const graph_migrations[] = {
    "CREATE TABLE graph_graphs ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " name TEXT, repository TEXT, revision TEXT, branch TEXT, owner TEXT, labels TEXT,"
    " template TEXT, coalesce INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL,"
    " submitted_ms INTEGER NOT NULL, resolved_ms INTEGER, submitted_by TEXT,"
    " n_tasks INTEGER NOT NULL, next_idx INTEGER NOT NULL,"
    " n_busy INTEGER NOT NULL DEFAULT 0,"
    " finals_released INTEGER NOT NULL DEFAULT 0,"
    " c_unscheduled INTEGER NOT NULL DEFAULT 0, c_pending INTEGER NOT NULL DEFAULT 0,"
    " c_running INTEGER NOT NULL DEFAULT 0, c_completed INTEGER NOT NULL DEFAULT 0,"
    " c_failed INTEGER NOT NULL DEFAULT 0, c_exception INTEGER NOT NULL DEFAULT 0,"
    " c_blocked INTEGER NOT NULL DEFAULT 0, c_inactive INTEGER NOT NULL DEFAULT 0,"
    " c_waiting INTEGER NOT NULL DEFAULT 0, c_superseded INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX graph_graphs_coalesce ON graph_graphs(branch, template, state);"
    "CREATE INDEX graph_graphs_state ON graph_graphs(state, seq);"
    "CREATE TABLE graph_tasks ("
    " id TEXT PRIMARY KEY,"
    " graph_id TEXT NOT NULL, idx INTEGER NOT NULL, label TEXT NOT NULL,"
    " worker_type TEXT NOT NULL, platform TEXT NOT NULL, payload TEXT NOT NULL,"
    " requires INTEGER NOT NULL, priority INTEGER NOT NULL,"
    " retries INTEGER NOT NULL, retries_left INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL, flags INTEGER NOT NULL,"
    " state TEXT NOT NULL, reason TEXT,"
    " n_left INTEGER NOT NULL, n_failed INTEGER NOT NULL, n_runs INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, resolved_ms INTEGER,"
    " UNIQUE (graph_id, label));"
    "CREATE INDEX graph_tasks_idx ON graph_tasks(graph_id, idx);"
    "CREATE INDEX graph_tasks_state ON graph_tasks(graph_id, state);"
    "CREATE INDEX graph_tasks_deadline ON graph_tasks(deadline_ms) WHERE deadline_ms > 0 AND"
    " state IN ('unscheduled', 'pending', 'running', 'waiting', 'inactive');"
    /* dependents of a task: one index lookup on dep_id */
    "CREATE TABLE graph_deps (dep_id TEXT NOT NULL, task_id TEXT NOT NULL,"
    " PRIMARY KEY (dep_id, task_id)) WITHOUT ROWID;"
    "CREATE INDEX graph_deps_task ON graph_deps(task_id, dep_id);"
    "CREATE TABLE graph_runs ("
    " task_id TEXT NOT NULL, run_id INTEGER NOT NULL,"
    " state TEXT NOT NULL, reason_created TEXT NOT NULL, reason_resolved TEXT,"
    " worker_id TEXT, exit_code INTEGER,"
    " scheduled_ms INTEGER NOT NULL, started_ms INTEGER, resolved_ms INTEGER,"
    " PRIMARY KEY (task_id, run_id)) WITHOUT ROWID;"
    "CREATE INDEX graph_runs_pending ON graph_runs(state) WHERE state = 'pending';"
    "CREATE TABLE graph_templates (name TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " updated_ms INTEGER NOT NULL, updated_by TEXT)",
    NULL,
};

/* ------------------------------------------------------------ statements */

enum st_id {
    ST_TASK_GET,
    ST_TASK_SET,
    ST_DEPENDENTS,
    ST_DEP_ADJ,
    ST_RUN_INSERT,
    ST_RUN_GET,
    ST_RUN_START,
    ST_RUN_END,
    ST_PAYLOAD,
    ST_GRAPH_GET,
    ST_GRAPH_FLUSH,
    ST_GRAPH_SET,
    ST_FINALS,
    ST_TASK_INSERT,
    ST_DEP_INSERT,
    ST_BY_LABEL,
    ST_N
};
_Static_assert(ST_N <= GRAPH_N_STMTS, "graph.h: GRAPH_N_STMTS is too small");

static const char *const st_sql[ST_N] = {
    [ST_TASK_GET] = "SELECT graph_id, label, worker_type, state, flags, requires, n_left,"
                    " n_failed, retries, retries_left, n_runs, priority, deadline_ms"
                    " FROM graph_tasks WHERE id = ?1",
    [ST_TASK_SET] = "UPDATE graph_tasks SET state = ?2, reason = ?3, resolved_ms = ?4,"
                    " n_runs = n_runs + ?5, retries_left = ?6 WHERE id = ?1",
    [ST_DEPENDENTS] = "SELECT task_id FROM graph_deps WHERE dep_id = ?1",
    [ST_DEP_ADJ] = "UPDATE graph_tasks SET n_left = n_left + ?2, n_failed = n_failed + ?3"
                   " WHERE id = ?1 RETURNING state, flags, requires, n_left, n_failed",
    [ST_RUN_INSERT] = "INSERT INTO graph_runs (task_id, run_id, state, reason_created,"
                      " scheduled_ms) VALUES (?1, ?2, 'pending', ?3, ?4)",
    [ST_RUN_GET] = "SELECT state, scheduled_ms, started_ms FROM graph_runs"
                   " WHERE task_id = ?1 AND run_id = ?2",
    [ST_RUN_START] = "UPDATE graph_runs SET state = 'running', started_ms = ?3, worker_id = ?4"
                     " WHERE task_id = ?1 AND run_id = ?2",
    [ST_RUN_END] = "UPDATE graph_runs SET state = ?3, reason_resolved = ?4, exit_code = ?5,"
                   " resolved_ms = ?6 WHERE task_id = ?1 AND run_id = ?2",
    [ST_PAYLOAD] = "SELECT payload FROM graph_tasks WHERE id = ?1",
    [ST_GRAPH_GET] = "SELECT state, branch, finals_released, submitted_ms FROM graph_graphs"
                     " WHERE id = ?1",
    [ST_GRAPH_FLUSH] =
        "UPDATE graph_graphs SET c_unscheduled = c_unscheduled + ?2, c_pending = c_pending + ?3,"
        " c_running = c_running + ?4, c_completed = c_completed + ?5, c_failed = c_failed + ?6,"
        " c_exception = c_exception + ?7, c_blocked = c_blocked + ?8,"
        " c_inactive = c_inactive + ?9, c_waiting = c_waiting + ?10,"
        " c_superseded = c_superseded + ?11, n_busy = n_busy + ?12"
        " WHERE id = ?1 RETURNING state, finals_released, n_busy, " COUNT_COLS,
    [ST_GRAPH_SET] = "UPDATE graph_graphs SET state = ?2, resolved_ms = ?3, finals_released = ?4"
                     " WHERE id = ?1",
    [ST_FINALS] = "SELECT id FROM graph_tasks WHERE graph_id = ?1 AND state = 'unscheduled'"
                  " AND (flags & 4) != 0",
    [ST_TASK_INSERT] =
        "INSERT INTO graph_tasks (id, graph_id, idx, label, worker_type, platform, payload,"
        " requires, priority, retries, retries_left, deadline_ms, flags, state, n_left,"
        " n_failed, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11,"
        " ?12, ?13, ?14, ?15, ?16)",
    [ST_DEP_INSERT] = "INSERT INTO graph_deps (dep_id, task_id) VALUES (?1, ?2)",
    [ST_BY_LABEL] = "SELECT id, state FROM graph_tasks WHERE graph_id = ?1 AND label = ?2",
};

/* A task row, as the engine needs it. */
struct gtask {
    char id[RD_TASK_ID_MAX + 1];
    char graph_id[GRAPH_ID_LEN + 1];
    char label[GRAPH_LABEL_MAX + 48];
    char worker_type[72];
    enum graph_state state;
    int flags;
    enum graph_requires requires;
    int64_t n_left, n_failed, retries, retries_left, n_runs, priority, deadline_ms;
};

struct work_item {
    char id[RD_TASK_ID_MAX + 1];
    bool ok; /* resolved as completed (release) / was completed (unresolve) */
};

struct worklist {
    struct work_item *v;
    size_t n, cap;
};

struct gx {
    struct graph *g;
    struct rd_tx *tx;
    sqlite3 *db;
    uint64_t now;
    sqlite3_stmt **st; /* g->stmt_cache, or own_st */
    sqlite3_stmt *own_st[ST_N];
    struct rd_error *err;

    /* the graph worked on */
    bool has_graph;
    char gid[GRAPH_ID_LEN + 1];
    char *branch; /* owned */
    char gstate[16];
    bool finals_released;
    int64_t submitted_ms;
    int64_t delta[GS_N];
    int64_t busy_delta;
    bool canceling;

    struct worklist release;   /* resolved tasks whose dependents are released */
    struct worklist unresolve; /* rerun tasks whose dependents are taken back */
};

static void gx_begin(struct gx *x, struct graph *g, struct rd_tx *tx, struct rd_error *err)
{
    memset(x, 0, sizeof(*x));
    x->g = g;
    x->tx = tx;
    x->db = rd_tx_db(tx);
    x->now = rd_now_ms(g->h);
    x->err = err;
    /* Write transactions all run on the store's one writer connection,
       under its lock: the statements prepared there are kept for the next
       operation (see graph_engine_cache_free). Any other connection gets
       statements of its own for this operation. */
    if (!g->stmt_db)
        g->stmt_db = x->db;
    x->st = g->stmt_db == x->db ? g->stmt_cache : x->own_st;
}

static void gx_end(struct gx *x)
{
    for (int i = 0; i < ST_N; i++) {
        if (x->st == x->own_st)
            sqlite3_finalize(x->st[i]);
        else if (x->st[i])
            sqlite3_reset(x->st[i]);
    }
    free(x->branch);
    free(x->release.v);
    free(x->unresolve.v);
}

void graph_engine_cache_free(struct graph *g)
{
    for (int i = 0; i < GRAPH_N_STMTS; i++) {
        sqlite3_finalize(g->stmt_cache[i]);
        g->stmt_cache[i] = NULL;
    }
    g->stmt_db = NULL;
}

static int gx_sqlerr(struct gx *x, const char *what)
{
    rd_log(x->g->h, RD_ERROR, "%s failed: %s", what, sqlite3_errmsg(x->db));
    return rd_error_set(x->err, RD_EIO, "database error (%s)", what);
}

/* The statement, reset and unbound, prepared on first use. */
static sqlite3_stmt *gx_st(struct gx *x, enum st_id id)
{
    if (!x->st[id]) {
        if (sqlite3_prepare_v2(x->db, st_sql[id], -1, &x->st[id], NULL) != SQLITE_OK) {
            rd_log(x->g->h, RD_ERROR, "preparing statement %d failed: %s", (int)id,
                   sqlite3_errmsg(x->db));
            return NULL;
        }
    } else {
        sqlite3_reset(x->st[id]);
        sqlite3_clear_bindings(x->st[id]);
    }
    return x->st[id];
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", s ? s : "");
}

static int wl_push(struct worklist *w, const char *id, bool ok)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct work_item *v = realloc(w->v, cap * sizeof(*v));
        if (!v)
            return RD_ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    snprintf(w->v[w->n].id, sizeof(w->v[w->n].id), "%s", id);
    w->v[w->n].ok = ok;
    w->n++;
    return RD_OK;
}

/* ------------------------------------------------------------- loading */

static int task_load(struct gx *x, const char *id, struct gtask *t)
{
    sqlite3_stmt *st = gx_st(x, ST_TASK_GET);
    int step;

    if (!st)
        return gx_sqlerr(x, "loading a task");
    bind_text(st, 1, id);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        return rd_error_set(x->err, RD_ENOTFOUND, "no task %.64s", id);
    if (step != SQLITE_ROW)
        return gx_sqlerr(x, "loading a task");
    snprintf(t->id, sizeof(t->id), "%s", id);
    copy_col(t->graph_id, sizeof(t->graph_id), st, 0);
    copy_col(t->label, sizeof(t->label), st, 1);
    copy_col(t->worker_type, sizeof(t->worker_type), st, 2);
    t->state = graph_state_parse((const char *)sqlite3_column_text(st, 3));
    t->flags = sqlite3_column_int(st, 4);
    t->requires = (enum graph_requires)sqlite3_column_int(st, 5);
    t->n_left = sqlite3_column_int64(st, 6);
    t->n_failed = sqlite3_column_int64(st, 7);
    t->retries = sqlite3_column_int64(st, 8);
    t->retries_left = sqlite3_column_int64(st, 9);
    t->n_runs = sqlite3_column_int64(st, 10);
    t->priority = sqlite3_column_int64(st, 11);
    t->deadline_ms = sqlite3_column_int64(st, 12);
    sqlite3_reset(st);
    if (t->state == GS_N)
        return rd_error_set(x->err, RD_ECORRUPT, "task %s has an unknown state", id);
    return RD_OK;
}

static int gx_flush(struct gx *x);

/* Makes gid the graph worked on (flushing the previous one). */
static int gx_use_graph(struct gx *x, const char *gid)
{
    sqlite3_stmt *st;
    int rc, step;

    if (x->has_graph && strcmp(x->gid, gid) == 0)
        return RD_OK;
    if (x->has_graph && (rc = gx_flush(x)) != RD_OK)
        return rc;
    st = gx_st(x, ST_GRAPH_GET);
    if (!st)
        return gx_sqlerr(x, "loading a graph");
    bind_text(st, 1, gid);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        return rd_error_set(x->err, RD_ENOTFOUND, "no graph %.64s", gid);
    if (step != SQLITE_ROW)
        return gx_sqlerr(x, "loading a graph");
    snprintf(x->gid, sizeof(x->gid), "%s", gid);
    copy_col(x->gstate, sizeof(x->gstate), st, 0);
    free(x->branch);
    x->branch = strdup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
    x->finals_released = sqlite3_column_int(st, 2) != 0;
    x->submitted_ms = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    if (!x->branch)
        return RD_ENOMEM;
    memset(x->delta, 0, sizeof(x->delta));
    x->busy_delta = 0;
    x->has_graph = true;
    x->canceling = false;
    return RD_OK;
}

/* ------------------------------------------------------------- events */

static int publish_task(struct gx *x, const char *type, const struct gtask *t, int64_t run_id,
                        const char *reason, const char *worker_id)
{
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "taskId", t->id, "graphId", t->graph_id, "label",
                  t->label, "state", graph_state_name(t->state), "workerType", t->worker_type);

    if (!ev)
        return RD_ENOMEM;
    if (run_id >= 0)
        json_object_set_new(ev, "runId", json_integer(run_id));
    if (reason)
        json_object_set_new(ev, "reason", json_string(reason));
    if (worker_id)
        json_object_set_new(ev, "workerId", json_string(worker_id));
    return rd_tx_publish(x->tx, type, ev);
}

static const char *event_for(enum graph_state s)
{
    switch (s) {
    case GS_PENDING:
        return "task.pending";
    case GS_RUNNING:
        return "task.running";
    case GS_WAITING:
        return "task.waiting";
    case GS_UNSCHEDULED:
        return "task.unscheduled";
    default:
        return "task.resolved";
    }
}

/* -------------------------------------------------------- transitions */

/* Moves t to `to` (reason: why, stored and in the event; runs_inc: 1 when
   a run was just added), publishes the event and queues a resolved task
   for the release of its dependents. */
static int set_state(struct gx *x, struct gtask *t, enum graph_state to, const char *reason,
                     int runs_inc, const char *worker_id)
{
    sqlite3_stmt *st = gx_st(x, ST_TASK_SET);
    enum graph_state from = t->state;
    int rc;

    if (from != to && !graph_transition_ok(from, to))
        return rd_error_set(x->err, RD_ECONFLICT, "task %s is %s: it cannot become %s", t->id,
                            graph_state_name(from), graph_state_name(to));
    if (!st)
        return gx_sqlerr(x, "updating a task");
    bind_text(st, 1, t->id);
    bind_text(st, 2, graph_state_name(to));
    bind_text(st, 3, reason);
    if (graph_state_resolved(to))
        sqlite3_bind_int64(st, 4, (int64_t)x->now);
    sqlite3_bind_int(st, 5, runs_inc);
    sqlite3_bind_int64(st, 6, t->retries_left);
    if (sqlite3_step(st) != SQLITE_DONE)
        return gx_sqlerr(x, "updating a task");
    t->n_runs += runs_inc;
    t->state = to;
    x->delta[from]--;
    x->delta[to]++;
    if (!(t->flags & F_FINAL))
        x->busy_delta += (int)graph_state_busy(to) - (int)graph_state_busy(from);
    rc = publish_task(x, event_for(to), t, t->n_runs > 0 ? t->n_runs - 1 : -1, reason, worker_id);
    if (rc != RD_OK)
        return rc;
    if (graph_state_resolved(to)) {
        rd_metric_add(x->g->tasks_resolved[to], 1);
        if (from != to)
            return wl_push(&x->release, t->id, to == GS_COMPLETED);
    }
    return RD_OK;
}

/* Hands run (t, run_id) to dispatch, if dispatch is there. */
static int enqueue(struct gx *x, const struct gtask *t, uint32_t run_id)
{
    const struct rd_taskqueue *q = x->g->queue;
    sqlite3_stmt *st;
    struct rd_task_run_spec spec;
    json_t *payload = NULL;
    int rc;

    if (!q)
        return RD_OK;
    st = gx_st(x, ST_PAYLOAD);
    if (!st)
        return gx_sqlerr(x, "reading a payload");
    bind_text(st, 1, t->id);
    if (sqlite3_step(st) != SQLITE_ROW)
        return gx_sqlerr(x, "reading a payload");
    payload = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    sqlite3_reset(st);
    if (!payload)
        return rd_error_set(x->err, RD_ECORRUPT, "task %s has an unreadable payload", t->id);
    spec = (struct rd_task_run_spec){
        .task_id = t->id,
        .run_id = run_id,
        .graph_id = t->graph_id,
        .label = t->label,
        .worker_type = t->worker_type,
        .branch = x->branch ? x->branch : "",
        .priority = (int32_t)t->priority,
        .pending_since_ms = x->now,
        .deadline_ms = (uint64_t)t->deadline_ms,
        .payload = payload,
    };
    rc = q->enqueue(q->ctx, x->tx, &spec);
    json_decref(payload);
    if (rc != RD_OK)
        rd_log(x->g->h, RD_ERROR, "dispatch refused run %s/%u (error %d)", t->id, run_id, rc);
    return rc;
}

/* A new run for t (reason "scheduled", "retry" or "rerun"): pending. */
static int schedule(struct gx *x, struct gtask *t, const char *why)
{
    sqlite3_stmt *st = gx_st(x, ST_RUN_INSERT);
    uint32_t run_id = (uint32_t)t->n_runs;
    int rc;

    if (!st)
        return gx_sqlerr(x, "adding a run");
    bind_text(st, 1, t->id);
    sqlite3_bind_int64(st, 2, run_id);
    bind_text(st, 3, why);
    sqlite3_bind_int64(st, 4, (int64_t)x->now);
    if (sqlite3_step(st) != SQLITE_DONE)
        return gx_sqlerr(x, "adding a run");
    rc = set_state(x, t, GS_PENDING, why, 1, NULL);
    if (rc == RD_OK)
        rc = enqueue(x, t, run_id);
    return rc;
}

/* Moves an unscheduled task on when it can. */
static int evaluate(struct gx *x, struct gtask *t)
{
    struct graph_ready_in in = {
        .requires = t->requires,
        .is_breakpoint = (t->flags & F_BREAKPOINT) != 0,
        .is_final = (t->flags & F_FINAL) != 0,
        .finals_released = x->finals_released,
        .n_left = t->n_left,
        .n_failed = t->n_failed,
    };
    enum graph_state to;

    if (t->state != GS_UNSCHEDULED)
        return RD_OK;
    to = graph_ready_state(&in);
    switch (to) {
    case GS_PENDING:
        return schedule(x, t, "scheduled");
    case GS_WAITING:
        return set_state(x, t, GS_WAITING, NULL, 0, NULL);
    case GS_BLOCKED:
        return set_state(x, t, GS_BLOCKED, "dependency-failed", 0, NULL);
    default:
        return RD_OK;
    }
}

/* The ids of the dependents of id (new array, *n entries). */
static int dependents(struct gx *x, const char *id, struct worklist *out)
{
    sqlite3_stmt *st = gx_st(x, ST_DEPENDENTS);
    int step, rc;

    out->n = 0;
    if (!st)
        return gx_sqlerr(x, "finding dependents");
    bind_text(st, 1, id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = wl_push(out, (const char *)sqlite3_column_text(st, 0), false)) != RD_OK)
            return rc;
    if (step != SQLITE_DONE)
        return gx_sqlerr(x, "finding dependents");
    sqlite3_reset(st);
    return RD_OK;
}

/* Adjusts a dependent's counters; *state etc. from RETURNING. */
static int dep_adjust(struct gx *x, const char *id, int d_left, int d_failed,
                      enum graph_state *state, int64_t *n_failed)
{
    sqlite3_stmt *st = gx_st(x, ST_DEP_ADJ);

    if (!st)
        return gx_sqlerr(x, "releasing a dependent");
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, d_left);
    sqlite3_bind_int(st, 3, d_failed);
    if (sqlite3_step(st) != SQLITE_ROW)
        return gx_sqlerr(x, "releasing a dependent");
    *state = graph_state_parse((const char *)sqlite3_column_text(st, 0));
    *n_failed = sqlite3_column_int64(st, 4);
    sqlite3_reset(st);
    return RD_OK;
}

/* Releases the dependents of every task on the release list, and of every
   task they resolve in turn (blocked). */
static int drain(struct gx *x)
{
    struct worklist deps = {0};
    int rc = RD_OK;

    while (rc == RD_OK && x->release.n > 0) {
        struct work_item it = x->release.v[--x->release.n];

        rc = dependents(x, it.id, &deps);
        for (size_t i = 0; rc == RD_OK && i < deps.n; i++) {
            enum graph_state st;
            int64_t n_failed;
            struct gtask t;

            rc = dep_adjust(x, deps.v[i].id, -1, it.ok ? 0 : 1, &st, &n_failed);
            if (rc != RD_OK || st != GS_UNSCHEDULED)
                continue;
            rc = task_load(x, deps.v[i].id, &t);
            if (rc == RD_OK)
                rc = evaluate(x, &t);
        }
    }
    while (rc == RD_OK && x->unresolve.n > 0) {
        struct work_item it = x->unresolve.v[--x->unresolve.n];

        rc = dependents(x, it.id, &deps);
        for (size_t i = 0; rc == RD_OK && i < deps.n; i++) {
            enum graph_state st;
            int64_t n_failed;
            struct gtask t;

            rc = dep_adjust(x, deps.v[i].id, 1, it.ok ? 0 : -1, &st, &n_failed);
            if (rc != RD_OK || st != GS_BLOCKED || n_failed > 0)
                continue;
            /* blocked only by what is being rerun: unscheduled again, and
               its own dependents are taken back the same way */
            rc = task_load(x, deps.v[i].id, &t);
            if (rc == RD_OK)
                rc = set_state(x, &t, GS_UNSCHEDULED, NULL, 0, NULL);
            if (rc == RD_OK)
                rc = wl_push(&x->unresolve, t.id, false);
        }
    }
    free(deps.v);
    return rc;
}

static int publish_graph_resolved(struct gx *x, const char *state, const int64_t counts[GS_N])
{
    json_t *c = json_object(), *ev;
    int64_t dur = (int64_t)x->now - x->submitted_ms;

    if (!c)
        return RD_ENOMEM;
    for (int i = 0; i < GS_N; i++)
        json_object_set_new(c, graph_state_name((enum graph_state)i), json_integer(counts[i]));
    ev = json_pack("{s:s, s:s, s:o, s:I}", "graphId", x->gid, "state", state, "counts", c,
                   "durationMs", (json_int_t)dur);
    if (!ev)
        return RD_ENOMEM;
    if (strcmp(state, "completed") == 0)
        rd_metric_observe(x->g->graph_seconds[0], (double)dur / 1000.0);
    else if (strcmp(state, "failed") == 0)
        rd_metric_observe(x->g->graph_seconds[1], (double)dur / 1000.0);
    else
        rd_metric_observe(x->g->graph_seconds[2], (double)dur / 1000.0);
    return rd_tx_publish(x->tx, "graph.resolved", ev);
}

static int graph_set(struct gx *x, const char *state, bool resolved)
{
    sqlite3_stmt *st = gx_st(x, ST_GRAPH_SET);

    if (!st)
        return gx_sqlerr(x, "updating a graph");
    bind_text(st, 1, x->gid);
    bind_text(st, 2, state);
    if (resolved)
        sqlite3_bind_int64(st, 3, (int64_t)x->now);
    sqlite3_bind_int(st, 4, x->finals_released);
    if (sqlite3_step(st) != SQLITE_DONE)
        return gx_sqlerr(x, "updating a graph");
    if (state != x->gstate)
        snprintf(x->gstate, sizeof(x->gstate), "%s", state);
    return RD_OK;
}

/* Applies the count deltas; releases final tasks once the other tasks
   settled; resolves (or reopens) the graph. */
static int gx_flush(struct gx *x)
{
    int rc = drain(x);

    while (rc == RD_OK && x->has_graph) {
        sqlite3_stmt *st = gx_st(x, ST_GRAPH_FLUSH);
        int64_t counts[GS_N], n_busy, active;
        struct worklist finals = {0};

        if (!st)
            return gx_sqlerr(x, "counting a graph");
        bind_text(st, 1, x->gid);
        for (int i = 0; i < GS_N; i++)
            sqlite3_bind_int64(st, 2 + i, x->delta[i]);
        sqlite3_bind_int64(st, 12, x->busy_delta);
        if (sqlite3_step(st) != SQLITE_ROW)
            return gx_sqlerr(x, "counting a graph");
        n_busy = sqlite3_column_int64(st, 2);
        for (int i = 0; i < GS_N; i++)
            counts[i] = sqlite3_column_int64(st, 3 + i);
        sqlite3_reset(st);
        memset(x->delta, 0, sizeof(x->delta));
        x->busy_delta = 0;

        if (n_busy == 0 && !x->finals_released && !x->canceling) {
            x->finals_released = true;
            rc = graph_set(x, x->gstate, false);
            st = gx_st(x, ST_FINALS);
            if (!st)
                return gx_sqlerr(x, "finding final tasks");
            bind_text(st, 1, x->gid);
            while (rc == RD_OK && sqlite3_step(st) == SQLITE_ROW)
                rc = wl_push(&finals, (const char *)sqlite3_column_text(st, 0), false);
            sqlite3_reset(st);
            for (size_t i = 0; rc == RD_OK && i < finals.n; i++) {
                struct gtask t;
                rc = task_load(x, finals.v[i].id, &t);
                if (rc == RD_OK)
                    rc = evaluate(x, &t);
            }
            free(finals.v);
            if (rc == RD_OK)
                rc = drain(x);
            continue; /* count again */
        }
        active = counts[GS_PENDING] + counts[GS_RUNNING] + counts[GS_WAITING];
        if (active == 0 && strcmp(x->gstate, "running") == 0) {
            const char *state = x->canceling ? "canceled" : graph_outcome(counts);
            rc = graph_set(x, state, true);
            if (rc == RD_OK)
                rc = publish_graph_resolved(x, state, counts);
        } else if (active > 0 && strcmp(x->gstate, "running") != 0) {
            rc = graph_set(x, "running", false);
            if (rc == RD_OK)
                rc = rd_tx_publish(x->tx, "graph.reopened", json_pack("{s:s}", "graphId", x->gid));
        }
        break;
    }
    return rc;
}

/* Records the end of run run_id of task_id. */
static int run_end(struct gx *x, const char *task_id, uint32_t run_id, const char *state,
                   const char *reason, int exit_code)
{
    sqlite3_stmt *st = gx_st(x, ST_RUN_END);

    if (!st)
        return gx_sqlerr(x, "ending a run");
    bind_text(st, 1, task_id);
    sqlite3_bind_int64(st, 2, run_id);
    bind_text(st, 3, state);
    bind_text(st, 4, reason);
    sqlite3_bind_int(st, 5, exit_code);
    sqlite3_bind_int64(st, 6, (int64_t)x->now);
    if (sqlite3_step(st) != SQLITE_DONE)
        return gx_sqlerr(x, "ending a run");
    return RD_OK;
}

/* Ends t's current run (pending or running) with an exception and tells
   dispatch to drop it. */
static int end_current_run(struct gx *x, const struct gtask *t, const char *reason)
{
    uint32_t run_id = (uint32_t)(t->n_runs - 1);
    int rc;

    if (t->state != GS_PENDING && t->state != GS_RUNNING)
        return RD_OK;
    if (x->g->queue) {
        rc = x->g->queue->cancel(x->g->queue->ctx, x->tx, t->id, run_id);
        if (rc != RD_OK && rc != RD_ENOTFOUND)
            return rc;
    }
    return run_end(x, t->id, run_id, "exception", reason, -1);
}

/* Cancel, deadline, coalescing: the task ends as `to` with reason. */
static int abort_task(struct gx *x, struct gtask *t, enum graph_state to, const char *reason)
{
    int rc;

    if (graph_state_resolved(t->state))
        return rd_error_set(x->err, RD_ECONFLICT, "task %s is %s already", t->id,
                            graph_state_name(t->state));
    rc = end_current_run(x, t, reason);
    if (rc == RD_OK)
        rc = set_state(x, t, to, reason, 0, NULL);
    return rc;
}

/* Loads task id and its graph. */
static int load_with_graph(struct gx *x, const char *id, struct gtask *t)
{
    int rc = task_load(x, id, t);
    if (rc == RD_OK)
        rc = gx_use_graph(x, t->graph_id);
    return rc;
}

/* Loads task id, its graph and its run run_id: *st is left on the run's
   row (state, scheduled_ms, started_ms). */
static int run_load(struct gx *x, const char *id, uint32_t run_id, struct gtask *t,
                    sqlite3_stmt **st)
{
    int rc = load_with_graph(x, id, t), step;

    if (rc != RD_OK)
        return rc;
    *st = gx_st(x, ST_RUN_GET);
    if (!*st)
        return gx_sqlerr(x, "loading a run");
    bind_text(*st, 1, id);
    sqlite3_bind_int64(*st, 2, run_id);
    step = sqlite3_step(*st);
    if (step == SQLITE_DONE)
        return RD_ENOTFOUND;
    if (step != SQLITE_ROW)
        return gx_sqlerr(x, "loading a run");
    return RD_OK;
}

/* ------------------------------------------------------ graph.runs calls */

/* dispatch takes RD_ECONFLICT / RD_ENOTFOUND from these calls as "graph
   refused the run, nothing changed" and commits its own side. Once graph
   has written anything, any failure must roll the whole transaction back:
   such a code becomes RD_EIO. */
static int after_change(int rc)
{
    return rc == RD_ECONFLICT || rc == RD_ENOTFOUND ? RD_EIO : rc;
}

int graph_engine_started(struct graph *g, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                         const char *worker_id)
{
    struct gx x;
    struct gtask t;
    sqlite3_stmt *st;
    int rc;
    int64_t scheduled_ms = 0;

    gx_begin(&x, g, tx, NULL);
    rc = run_load(&x, task_id, run_id, &t, &st);
    if (rc != RD_OK)
        goto out;
    scheduled_ms = sqlite3_column_int64(st, 1);
    if (strcmp((const char *)sqlite3_column_text(st, 0), "pending") != 0 || t.state != GS_PENDING ||
        (int64_t)run_id != t.n_runs - 1) {
        rc = RD_ECONFLICT;
        goto out;
    }
    sqlite3_reset(st);
    st = gx_st(&x, ST_RUN_START);
    if (!st) {
        rc = gx_sqlerr(&x, "starting a run");
        goto out;
    }
    bind_text(st, 1, task_id);
    sqlite3_bind_int64(st, 2, run_id);
    sqlite3_bind_int64(st, 3, (int64_t)x.now);
    bind_text(st, 4, worker_id ? worker_id : "");
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = gx_sqlerr(&x, "starting a run");
        goto out;
    }
    rc = set_state(&x, &t, GS_RUNNING, NULL, 0, worker_id);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    if (rc == RD_OK)
        rd_metric_observe(g->wait_seconds, (double)((int64_t)x.now - scheduled_ms) / 1000.0);
    rc = after_change(rc);
out:
    gx_end(&x);
    return rc;
}

int graph_engine_resolved(struct graph *g, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                          const char *state, const char *reason, int exit_code)
{
    struct gx x;
    struct gtask t;
    sqlite3_stmt *st;
    enum graph_state to = graph_report_state(state, reason);
    int rc;
    int64_t started_ms = 0;
    bool was_running;

    if (to == GS_N)
        return RD_EINVAL;
    gx_begin(&x, g, tx, NULL);
    rc = run_load(&x, task_id, run_id, &t, &st);
    if (rc != RD_OK)
        goto out;
    was_running = strcmp((const char *)sqlite3_column_text(st, 0), "running") == 0;
    started_ms = sqlite3_column_int64(st, 2);
    /* a run resolves once; a pending run only through an exception (a
       deadline passed in the queue, a malformed payload) */
    if ((int64_t)run_id != t.n_runs - 1 ||
        !(was_running || (to == GS_EXCEPTION &&
                          strcmp((const char *)sqlite3_column_text(st, 0), "pending") == 0)) ||
        (t.state != GS_RUNNING && t.state != GS_PENDING)) {
        rc = RD_ECONFLICT;
        goto out;
    }
    sqlite3_reset(st);
    rc = run_end(&x, task_id, run_id, state, reason ? reason : state, exit_code);
    if (rc != RD_OK)
        goto out;
    if (was_running) {
        int k = to == GS_COMPLETED ? 0 : to == GS_FAILED ? 1 : 2;
        rd_metric_observe(g->run_seconds[k], (double)((int64_t)x.now - started_ms) / 1000.0);
    }
    if (to == GS_EXCEPTION && graph_reason_retried(reason) && t.retries_left > 0) {
        t.retries_left--;
        rc = schedule(&x, &t, "retry");
    } else {
        rc = set_state(&x, &t, to, reason ? reason : state, 0, NULL);
    }
    if (rc == RD_OK)
        rc = gx_flush(&x);
    rc = after_change(rc);
out:
    gx_end(&x);
    return rc;
}

/* ---------------------------------------------------------- operations */

int graph_engine_cancel_task(struct graph *g, struct rd_tx *tx, const char *task_id,
                             struct rd_error *err)
{
    struct gx x;
    struct gtask t;
    int rc;

    gx_begin(&x, g, tx, err);
    rc = load_with_graph(&x, task_id, &t);
    if (rc == RD_OK)
        rc = abort_task(&x, &t, GS_EXCEPTION, "canceled");
    if (rc == RD_OK)
        rc = gx_flush(&x);
    gx_end(&x);
    return rc;
}

int graph_engine_release(struct graph *g, struct rd_tx *tx, const char *task_id, bool completed,
                         const char *by, struct rd_error *err)
{
    struct gx x;
    struct gtask t;
    int rc;

    gx_begin(&x, g, tx, err);
    rc = load_with_graph(&x, task_id, &t);
    if (rc == RD_OK && t.state != GS_WAITING)
        rc = rd_error_set(err, RD_ECONFLICT, "task %s is %s: only a waiting breakpoint is released",
                          task_id, graph_state_name(t.state));
    if (rc == RD_OK)
        rc = set_state(&x, &t, completed ? GS_COMPLETED : GS_FAILED, "released", 0, by);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    gx_end(&x);
    return rc;
}

static int payload_set(struct gx *x, const char *id, const json_t *payload)
{
    sqlite3_stmt *st = NULL;
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = RD_OK;

    if (!text)
        return RD_ENOMEM;
    if (sqlite3_prepare_v2(x->db, "UPDATE graph_tasks SET payload = ?2 WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = gx_sqlerr(x, "editing a payload");
        goto out;
    }
    bind_text(st, 1, id);
    bind_text(st, 2, text);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = gx_sqlerr(x, "editing a payload");
out:
    sqlite3_finalize(st);
    free(text);
    return rc;
}

/* Rerun of one loaded task (graph in use). */
static int rerun_task(struct gx *x, struct gtask *t, const json_t *payload)
{
    bool was_ok = t->state == GS_COMPLETED;
    int rc;

    if (t->state != GS_COMPLETED && t->state != GS_FAILED && t->state != GS_EXCEPTION)
        return rd_error_set(x->err, RD_ECONFLICT,
                            "task %s is %s: only a completed, failed or exception task is rerun%s",
                            t->id, graph_state_name(t->state),
                            t->state == GS_BLOCKED ? " (rerun the dependency that failed)" : "");
    if (payload && (rc = payload_set(x, t->id, payload)) != RD_OK)
        return rc;
    t->retries_left = t->retries;
    if (t->flags & F_BREAKPOINT)
        rc = set_state(x, t, GS_WAITING, "rerun", 0, NULL);
    else
        rc = schedule(x, t, "rerun");
    if (rc == RD_OK)
        rc = wl_push(&x->unresolve, t->id, was_ok);
    return rc;
}

int graph_engine_rerun(struct graph *g, struct rd_tx *tx, const char *task_id,
                       const json_t *payload, struct rd_error *err)
{
    struct gx x;
    struct gtask t;
    int rc;

    gx_begin(&x, g, tx, err);
    rc = load_with_graph(&x, task_id, &t);
    if (rc == RD_OK)
        rc = rerun_task(&x, &t, payload);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    gx_end(&x);
    return rc;
}

static int activate_task(struct gx *x, struct gtask *t)
{
    int rc;

    if (t->state != GS_INACTIVE)
        return rd_error_set(x->err, RD_ECONFLICT, "task %s is %s, not inactive", t->id,
                            graph_state_name(t->state));
    rc = set_state(x, t, GS_UNSCHEDULED, "activated", 0, NULL);
    if (rc == RD_OK)
        rc = evaluate(x, t);
    return rc;
}

int graph_engine_activate(struct graph *g, struct rd_tx *tx, const char *task_id,
                          struct rd_error *err)
{
    struct gx x;
    struct gtask t;
    int rc;

    gx_begin(&x, g, tx, err);
    rc = load_with_graph(&x, task_id, &t);
    if (rc == RD_OK)
        rc = activate_task(&x, &t);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    gx_end(&x);
    return rc;
}

/* The ids of graph_id's tasks in one of states (and, with pattern, whose
   label matches it). */
static int tasks_in(struct gx *x, const char *graph_id, const char *states, const char *pattern,
                    struct worklist *out)
{
    sqlite3_stmt *st = NULL;
    char sql[256];
    int rc = RD_OK, step;

    snprintf(sql, sizeof(sql),
             "SELECT id, label FROM graph_tasks WHERE graph_id = ?1 AND state IN (%s) ORDER BY idx",
             states);
    if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) != SQLITE_OK)
        return gx_sqlerr(x, "listing tasks");
    bind_text(st, 1, graph_id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 1);
        if (pattern && fnmatch(pattern, label ? label : "", 0) != 0)
            continue;
        if ((rc = wl_push(out, (const char *)sqlite3_column_text(st, 0), false)) != RD_OK)
            break;
    }
    if (rc == RD_OK && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = gx_sqlerr(x, "listing tasks");
    sqlite3_finalize(st);
    return rc;
}

/* Applies op to each of graph_id's tasks in one of states (and matching
   pattern), adding their ids to ids. */
static int each_task(struct graph *g, struct rd_tx *tx, const char *graph_id, const char *states,
                     const char *pattern, int (*op)(struct gx *, struct gtask *), json_t *ids,
                     struct rd_error *err)
{
    struct gx x;
    struct worklist w = {0};
    int rc;

    gx_begin(&x, g, tx, err);
    rc = gx_use_graph(&x, graph_id);
    if (rc == RD_OK)
        rc = tasks_in(&x, graph_id, states, pattern, &w);
    for (size_t i = 0; rc == RD_OK && i < w.n; i++) {
        struct gtask t;
        rc = task_load(&x, w.v[i].id, &t);
        if (rc == RD_OK)
            rc = op(&x, &t);
        if (rc == RD_OK)
            rc = json_array_append_new(ids, json_string(t.id)) == 0 ? RD_OK : RD_ENOMEM;
    }
    if (rc == RD_OK)
        rc = gx_flush(&x);
    free(w.v);
    gx_end(&x);
    return rc;
}

int graph_engine_activate_matching(struct graph *g, struct rd_tx *tx, const char *graph_id,
                                   const char *pattern, json_t *ids, struct rd_error *err)
{
    return each_task(g, tx, graph_id, "'inactive'", pattern, activate_task, ids, err);
}

static int rerun_as_is(struct gx *x, struct gtask *t)
{
    return rerun_task(x, t, NULL);
}

int graph_engine_rerun_failed(struct graph *g, struct rd_tx *tx, const char *graph_id, json_t *ids,
                              struct rd_error *err)
{
    return each_task(g, tx, graph_id, "'failed', 'exception'", NULL, rerun_as_is, ids, err);
}

int graph_engine_cancel_graph(struct graph *g, struct rd_tx *tx, const char *graph_id,
                              struct rd_error *err)
{
    struct gx x;
    struct worklist w = {0};
    int rc;

    gx_begin(&x, g, tx, err);
    rc = gx_use_graph(&x, graph_id);
    if (rc == RD_OK && strcmp(x.gstate, "running") != 0)
        rc = rd_error_set(err, RD_ECONFLICT, "graph %s is %s already", graph_id, x.gstate);
    if (rc != RD_OK)
        goto out;
    /* final tasks must not start because everything else was canceled */
    x.canceling = true;
    x.finals_released = true;
    rc = tasks_in(&x, graph_id, "'inactive', 'unscheduled', 'pending', 'running', 'waiting'", NULL,
                  &w);
    for (size_t i = 0; rc == RD_OK && i < w.n; i++) {
        struct gtask t;
        rc = task_load(&x, w.v[i].id, &t);
        if (rc == RD_OK && !graph_state_resolved(t.state))
            rc = abort_task(&x, &t, GS_EXCEPTION, "canceled");
        if (rc == RD_OK)
            rc = drain(&x);
    }
    if (rc == RD_OK)
        rc = gx_flush(&x);
out:
    free(w.v);
    gx_end(&x);
    return rc;
}

/* ---------------------------------------------------------- submission */

static int make_graph_id(char out[GRAPH_ID_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[GRAPH_ID_LEN];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return RD_EIO;
    for (size_t i = 0; i < GRAPH_ID_LEN; i++)
        out[i] = b64[raw[i] & 63];
    /* never start with '-' (a command-line option to relengctl) */
    if (out[0] == '-' || out[0] == '_')
        out[0] = 'G';
    out[GRAPH_ID_LEN] = '\0';
    return RD_OK;
}

/* Inserts spec's tasks into graph gid from index first_idx; their states
   are counted in x->delta. ext deps are looked up by label. */
static int insert_tasks(struct gx *x, const char *gid, const struct graph_spec *s,
                        int64_t first_idx)
{
    sqlite3_stmt *ins = gx_st(x, ST_TASK_INSERT), *dep = gx_st(x, ST_DEP_INSERT);
    char id[RD_TASK_ID_MAX + 1], did[RD_TASK_ID_MAX + 1];

    if (!ins || !dep)
        return gx_sqlerr(x, "storing tasks");
    for (size_t i = 0; i < s->n_tasks; i++) {
        const struct graph_task_spec *t = &s->tasks[i];
        char *payload = json_dumps(t->payload, JSON_COMPACT);
        int64_t n_left = (int64_t)t->n_deps, n_failed = 0;
        enum graph_state st = t->is_inactive ? GS_INACTIVE : GS_UNSCHEDULED;
        int flags = (t->is_inactive ? F_INACTIVE : 0) | (t->is_breakpoint ? F_BREAKPOINT : 0) |
                    (t->is_final ? F_FINAL : 0);
        int step;

        if (!payload)
            return RD_ENOMEM;
        snprintf(id, sizeof(id), "%s.%lld", gid, (long long)(first_idx + (int64_t)i));
        /* dependencies on tasks stored before: resolved ones count now */
        for (size_t k = 0; k < t->n_ext_deps; k++) {
            sqlite3_stmt *bl = gx_st(x, ST_BY_LABEL);
            enum graph_state ds;
            if (!bl) {
                free(payload);
                return gx_sqlerr(x, "finding a dependency");
            }
            bind_text(bl, 1, gid);
            bind_text(bl, 2, t->ext_deps[k]);
            if (sqlite3_step(bl) != SQLITE_ROW) {
                free(payload);
                return gx_sqlerr(x, "finding a dependency");
            }
            ds = graph_state_parse((const char *)sqlite3_column_text(bl, 1));
            if (!graph_state_resolved(ds))
                n_left++;
            else if (ds != GS_COMPLETED)
                n_failed++;
            copy_col(did, sizeof(did), bl, 0);
            sqlite3_reset(bl);
            sqlite3_reset(dep);
            bind_text(dep, 1, did);
            bind_text(dep, 2, id);
            if (sqlite3_step(dep) != SQLITE_DONE) {
                free(payload);
                return gx_sqlerr(x, "storing a dependency");
            }
        }
        sqlite3_reset(ins);
        bind_text(ins, 1, id);
        bind_text(ins, 2, gid);
        sqlite3_bind_int64(ins, 3, first_idx + (int64_t)i);
        bind_text(ins, 4, t->label);
        bind_text(ins, 5, t->worker_type);
        bind_text(ins, 6, t->platform);
        sqlite3_bind_text(ins, 7, payload, -1, free);
        sqlite3_bind_int(ins, 8, (int)t->requires);
        sqlite3_bind_int64(ins, 9, t->priority);
        sqlite3_bind_int64(ins, 10, t->retries);
        sqlite3_bind_int64(ins, 11,
                           t->deadline_s ? (int64_t)x->now + t->deadline_s * 1000 : (int64_t)0);
        sqlite3_bind_int(ins, 12, flags);
        bind_text(ins, 13, graph_state_name(st));
        sqlite3_bind_int64(ins, 14, n_left);
        sqlite3_bind_int64(ins, 15, n_failed);
        sqlite3_bind_int64(ins, 16, (int64_t)x->now);
        step = sqlite3_step(ins);
        if (step != SQLITE_DONE)
            return gx_sqlerr(x, "storing a task");
        x->delta[st]++;
        for (size_t k = 0; k < t->n_deps; k++) {
            snprintf(did, sizeof(did), "%s.%lld", gid,
                     (long long)(first_idx + (int64_t)t->deps[k]));
            sqlite3_reset(dep);
            bind_text(dep, 1, did);
            bind_text(dep, 2, id);
            if (sqlite3_step(dep) != SQLITE_DONE)
                return gx_sqlerr(x, "storing a dependency");
        }
    }
    return RD_OK;
}

/* Evaluates the new tasks that may be ready: those without dependencies
   among the new tasks (roots, or tasks whose stored dependencies may all
   have resolved). Linear in the new tasks, loading only those. */
static int schedule_new(struct gx *x, const char *gid, const struct graph_spec *s,
                        int64_t first_idx)
{
    char id[RD_TASK_ID_MAX + 1];
    int rc = RD_OK;

    for (size_t i = 0; rc == RD_OK && i < s->n_tasks; i++) {
        struct gtask t;
        if (s->tasks[i].n_deps > 0 || s->tasks[i].is_inactive)
            continue;
        snprintf(id, sizeof(id), "%s.%lld", gid, (long long)(first_idx + (int64_t)i));
        rc = task_load(x, id, &t);
        if (rc == RD_OK && t.state == GS_UNSCHEDULED && (t.n_left == 0 || t.n_failed > 0))
            rc = evaluate(x, &t);
    }
    return rc;
}

/* Marks the tasks of older running graphs with the same branch and
   template, whose labels are in the new graph and which have not started,
   superseded. */
static int coalesce(struct gx *x, const char *gid, const struct graph_spec *s)
{
    struct labelmap labels = {0};
    struct worklist older = {0}, w = {0};
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, step;

    if (sqlite3_prepare_v2(x->db,
                           "SELECT id FROM graph_graphs WHERE branch = ?1 AND template = ?2"
                           " AND state = 'running' AND id <> ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return gx_sqlerr(x, "coalescing");
    bind_text(st, 1, s->branch);
    bind_text(st, 2, s->template_name);
    bind_text(st, 3, gid);
    while (rc == RD_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = wl_push(&older, (const char *)sqlite3_column_text(st, 0), false);
    sqlite3_finalize(st);
    if (rc != RD_OK || older.n == 0)
        goto out;
    if (labelmap_init(&labels, s->n_tasks) != 0) {
        rc = RD_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->n_tasks; i++)
        if (labelmap_put(&labels, s->tasks[i].label, i) < 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    for (size_t o = 0; rc == RD_OK && o < older.n; o++) {
        rc = gx_use_graph(x, older.v[o].id);
        w.n = 0;
        if (rc == RD_OK)
            rc = tasks_in(x, older.v[o].id, "'unscheduled', 'pending', 'inactive'", NULL, &w);
        for (size_t i = 0; rc == RD_OK && i < w.n; i++) {
            struct gtask t;
            rc = task_load(x, w.v[i].id, &t);
            if (rc != RD_OK || labelmap_get(&labels, t.label) == SIZE_MAX)
                continue;
            /* every match is marked before any dependent is released, so
               that a superseded task's superseded dependents are not
               blocked first */
            if (t.state == GS_UNSCHEDULED || t.state == GS_PENDING || t.state == GS_INACTIVE)
                rc = abort_task(x, &t, GS_SUPERSEDED, "superseded");
        }
        if (rc == RD_OK)
            rc = drain(x);
    }
out:
    labelmap_fini(&labels);
    free(older.v);
    free(w.v);
    return rc;
}

int graph_engine_submit(struct graph *g, struct rd_tx *tx, const struct graph_spec *s,
                        const char *principal, char id_out[GRAPH_ID_LEN + 1], struct rd_error *err)
{
    struct gx x;
    sqlite3_stmt *st = NULL;
    char *labels = NULL;
    bool coalescing = s->coalesce || (g->conf.coalesce && s->branch && s->template_name);
    json_t *ev;
    int rc;

    gx_begin(&x, g, tx, err);
    rc = make_graph_id(id_out);
    if (rc != RD_OK)
        goto out;
    if (s->labels && !(labels = json_dumps(s->labels, JSON_COMPACT | JSON_SORT_KEYS))) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (sqlite3_prepare_v2(x.db,
                           "INSERT INTO graph_graphs (id, name, repository, revision, branch,"
                           " owner, labels, template, coalesce, state, submitted_ms, submitted_by,"
                           " n_tasks, next_idx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                           " 'running', ?10, ?11, ?12, ?12)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = gx_sqlerr(&x, "storing a graph");
        goto out;
    }
    bind_text(st, 1, id_out);
    bind_text(st, 2, s->name);
    bind_text(st, 3, s->repository);
    bind_text(st, 4, s->revision);
    bind_text(st, 5, s->branch);
    bind_text(st, 6, s->owner ? s->owner : principal);
    bind_text(st, 7, labels);
    bind_text(st, 8, s->template_name);
    sqlite3_bind_int(st, 9, coalescing);
    sqlite3_bind_int64(st, 10, (int64_t)x.now);
    bind_text(st, 11, principal);
    sqlite3_bind_int64(st, 12, (int64_t)s->n_tasks);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = gx_sqlerr(&x, "storing a graph");
        goto out;
    }
    rc = gx_use_graph(&x, id_out);
    if (rc != RD_OK)
        goto out;
    ev = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:s}", "graphId", id_out, "name", s->name,
                   "repository", s->repository, "revision", s->revision, "branch", s->branch,
                   "tasks", (json_int_t)s->n_tasks, "submittedBy", principal);
    rc = ev ? rd_tx_publish(tx, "graph.submitted", ev) : RD_ENOMEM;
    if (rc == RD_OK)
        rc = insert_tasks(&x, id_out, s, 0);
    if (rc == RD_OK)
        rc = schedule_new(&x, id_out, s, 0);
    if (rc == RD_OK && coalescing)
        rc = coalesce(&x, id_out, s);
    if (rc == RD_OK)
        rc = gx_use_graph(&x, id_out);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    if (rc == RD_OK)
        rd_metric_add(g->graphs_submitted, 1);
out:
    sqlite3_finalize(st);
    free(labels);
    gx_end(&x);
    return rc;
}

int graph_engine_add(struct graph *g, struct rd_tx *tx, const char *graph_id, const json_t *body,
                     json_t **problems, json_t **ids, struct rd_error *err)
{
    struct gx x;
    struct graph_spec s = {0};
    struct labelmap existing = {0};
    char **labels = NULL;
    size_t n_labels = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int64_t next_idx = 0;
    int rc, step;

    *problems = NULL;
    *ids = NULL;
    gx_begin(&x, g, tx, err);
    rc = gx_use_graph(&x, graph_id);
    if (rc != RD_OK)
        goto out;
    if (sqlite3_prepare_v2(x.db, "SELECT label, flags FROM graph_tasks WHERE graph_id = ?1", -1,
                           &st, NULL) != SQLITE_OK ||
        labelmap_init(&existing, 64) != 0) {
        rc = gx_sqlerr(&x, "reading a graph's labels");
        goto out;
    }
    bind_text(st, 1, graph_id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n_labels == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nl = realloc(labels, nc * sizeof(*nl));
            if (!nl) {
                rc = RD_ENOMEM;
                goto out;
            }
            labels = nl;
            cap = nc;
        }
        labels[n_labels] = strdup((const char *)sqlite3_column_text(st, 0));
        if (!labels[n_labels] ||
            labelmap_put(&existing, labels[n_labels],
                         (sqlite3_column_int(st, 1) & F_FINAL) ? GRAPH_EXISTING_FINAL : 0) < 0) {
            free(labels[n_labels]);
            rc = RD_ENOMEM;
            goto out;
        }
        n_labels++;
    }
    if (step != SQLITE_DONE) {
        rc = gx_sqlerr(&x, "reading a graph's labels");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(x.db, "SELECT next_idx FROM graph_graphs WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = gx_sqlerr(&x, "reading a graph");
        goto out;
    }
    bind_text(st, 1, graph_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = gx_sqlerr(&x, "reading a graph");
        goto out;
    }
    next_idx = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    {
        struct graph_limits lim = g->lim;
        lim.max_tasks = lim.max_tasks > n_labels ? lim.max_tasks - n_labels : 0;
        rc = graph_spec_parse(body, &lim, &existing, true, &s);
    }
    if (rc != RD_OK) {
        if (rc == RD_EINVAL) {
            *problems = json_incref(s.problems);
            rd_error_set(err, RD_EINVAL, "the tasks are not valid");
        }
        goto out;
    }
    rc = insert_tasks(&x, graph_id, &s, next_idx);
    if (rc != RD_OK)
        goto out;
    if (sqlite3_prepare_v2(x.db,
                           "UPDATE graph_graphs SET n_tasks = n_tasks + ?2, next_idx = ?3"
                           " WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = gx_sqlerr(&x, "updating a graph");
        goto out;
    }
    bind_text(st, 1, graph_id);
    sqlite3_bind_int64(st, 2, (int64_t)s.n_tasks);
    sqlite3_bind_int64(st, 3, next_idx + (int64_t)s.n_tasks);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = gx_sqlerr(&x, "updating a graph");
        goto out;
    }
    rc = schedule_new(&x, graph_id, &s, next_idx);
    if (rc == RD_OK)
        rc = gx_flush(&x);
    if (rc == RD_OK) {
        char id[RD_TASK_ID_MAX + 1];
        *ids = json_array();
        for (size_t i = 0; *ids && i < s.n_tasks; i++) {
            snprintf(id, sizeof(id), "%s.%lld", graph_id, (long long)(next_idx + (int64_t)i));
            json_array_append_new(*ids, json_string(id));
        }
        if (!*ids)
            rc = RD_ENOMEM;
    }
out:
    sqlite3_finalize(st);
    labelmap_fini(&existing);
    for (size_t i = 0; i < n_labels; i++)
        free(labels[i]);
    free(labels);
    graph_spec_fini(&s);
    gx_end(&x);
    return rc;
}

/* ------------------------------------------------------ start, deadlines */

/* Adds column 0 of each of st's rows to w. */
static int collect_ids(struct gx *x, sqlite3_stmt *st, struct worklist *w, const char *what)
{
    int rc = RD_OK, step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = wl_push(w, (const char *)sqlite3_column_text(st, 0), false)) != RD_OK)
            return rc;
    return step == SQLITE_DONE ? RD_OK : gx_sqlerr(x, what);
}

int graph_engine_requeue(struct graph *g, struct rd_tx *tx, size_t *n)
{
    struct gx x;
    struct worklist w = {0};
    sqlite3_stmt *st = NULL;
    int rc = RD_OK;

    *n = 0;
    if (!g->queue)
        return RD_OK;
    gx_begin(&x, g, tx, NULL);
    if (sqlite3_prepare_v2(x.db, "SELECT task_id, run_id FROM graph_runs WHERE state = 'pending'",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = gx_sqlerr(&x, "listing pending runs");
        goto out;
    }
    rc = collect_ids(&x, st, &w, "listing pending runs");
    for (size_t i = 0; rc == RD_OK && i < w.n; i++) {
        struct gtask t;
        rc = load_with_graph(&x, w.v[i].id, &t);
        /* only the task's current run is queued */
        if (rc == RD_OK && t.state == GS_PENDING) {
            rc = enqueue(&x, &t, (uint32_t)(t.n_runs - 1));
            (*n)++;
        }
    }
out:
    sqlite3_finalize(st);
    free(w.v);
    gx_end(&x);
    return rc;
}

int graph_engine_deadlines(struct graph *g, struct rd_tx *tx, uint64_t now_ms, size_t max,
                           size_t *n)
{
    struct gx x;
    struct worklist w = {0};
    sqlite3_stmt *st = NULL;
    int rc = RD_OK;

    *n = 0;
    gx_begin(&x, g, tx, NULL);
    if (sqlite3_prepare_v2(x.db, "SELECT id " GRAPH_SQL_OVERDUE " LIMIT ?2", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = gx_sqlerr(&x, "finding overdue tasks");
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)now_ms);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    rc = collect_ids(&x, st, &w, "finding overdue tasks");
    for (size_t i = 0; rc == RD_OK && i < w.n; i++) {
        struct gtask t;
        rc = load_with_graph(&x, w.v[i].id, &t);
        if (rc == RD_OK && !graph_state_resolved(t.state)) {
            rc = abort_task(&x, &t, GS_EXCEPTION, "deadline-exceeded");
            (*n)++;
        }
    }
    if (rc == RD_OK)
        rc = gx_flush(&x);
out:
    sqlite3_finalize(st);
    free(w.v);
    gx_end(&x);
    return rc;
}
