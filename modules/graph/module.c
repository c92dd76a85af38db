/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/module.c -- the graph module's descriptor, configuration,
 * life cycle and status, and the graph.runs service it provides to
 * dispatch. init: config, migrations, metrics, the service. start: look up
 * dispatch.queue (may be absent: runs then stay pending), hand every
 * pending run to it again in one transaction, register routes, start the
 * deadline sweep. Life cycle on the main thread; the service runs on
 * whatever thread holds dispatch's write transaction; the deadline sweep
 * runs on a pool thread (its timer on the loop thread).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "modules/graph/api.h"
#include "modules/graph/engine.h"
#include "modules/graph/graph.h"

#ifndef SYSCONF_DIR
#define SYSCONF_DIR "/etc/relengd"
#endif

const struct rd_cfg_key graph_keys[] = {
    RD_CFG_INT("max_tasks", struct graph_conf, max_tasks, "50000",
               "largest graph accepted, in tasks after chunk expansion"),
    RD_CFG_INT("max_chunks", struct graph_conf, max_chunks, "100", "largest \"chunks\" of a task"),
    RD_CFG_INT("default_retries", struct graph_conf, default_retries, "3",
               "retries of a task that gives none (after claim-expired, worker-shutdown, "
               "intermittent-task)"),
    RD_CFG_INT("max_retries", struct graph_conf, max_retries, "20",
               "largest \"retries\" a task may ask for"),
    RD_CFG_DURATION("max_run_time", struct graph_conf, max_run_time_ms, "24h",
                    "largest payload maxRunTime"),
    RD_CFG_STRING("worker_types", struct graph_conf, worker_types, "",
                  "allowed worker types, space-separated; empty: any"),
    RD_CFG_BOOL("coalesce", struct graph_conf, coalesce, "no",
                "supersede not-started tasks of older graphs with the same branch and template"),
    RD_CFG_STRING("templates_dir", struct graph_conf, templates_dir, "",
                  "directory of graph templates (*.json); empty: the graph/ directory beside "
                  "relengd.conf as installed"),
    RD_CFG_DURATION("deadline_check", struct graph_conf, deadline_check_ms, "1s",
                    "how often tasks past their deadline are resolved"),
    RD_CFG_END,
};

/* ------------------------------------------------------- graph.runs */

static int runs_started(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                        const char *worker_id)
{
    if (!task_id)
        return RD_EINVAL;
    return graph_engine_started(ctx, tx, task_id, run_id, worker_id);
}

static int runs_resolved(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                         const char *state, const char *reason, int exit_code)
{
    if (!task_id)
        return RD_EINVAL;
    return graph_engine_resolved(ctx, tx, task_id, run_id, state, reason, exit_code);
}

/* ---------------------------------------------------------- deadlines */

struct sweep {
    struct graph *g;
    size_t n;
    int rc;
};

static int sweep_tx(struct rd_tx *tx, void *arg)
{
    struct sweep *s = arg;
    return graph_engine_deadlines(s->g, tx, rd_now_ms(s->g->h), 500, &s->n);
}

/* Whether any unresolved task is past its deadline (a read: most sweeps
   find nothing and must not take the writer). */
static int overdue_tx(struct rd_tx *tx, void *arg)
{
    struct sweep *s = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;

    if (sqlite3_prepare_v2(rd_tx_db(tx), "SELECT 1 " GRAPH_SQL_OVERDUE " LIMIT 1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (int64_t)rd_now_ms(s->g->h));
        step = sqlite3_step(st);
        if (step == SQLITE_ROW || step == SQLITE_DONE) {
            s->n = step == SQLITE_ROW;
            rc = RD_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void sweep_work(void *arg)
{
    struct sweep *s = arg;

    s->rc = rd_store_read(s->g->h, overdue_tx, s);
    if (s->rc == RD_OK && s->n > 0)
        s->rc = rd_store_write(s->g->h, sweep_tx, s);
}

static void sweep_done(void *arg)
{
    struct sweep *s = arg;

    if (s->rc != RD_OK)
        rd_log(s->g->h, RD_WARN, "deadline sweep failed (error %d)", s->rc);
    else if (s->n > 0)
        rd_log(s->g->h, RD_INFO, "%zu tasks passed their deadline", s->n);
    s->g->deadline_busy = 0;
    free(s);
}

static void deadline_tick(void *arg)
{
    struct graph *g = arg;
    struct sweep *s;

    if (g->deadline_busy || rd_stopping(g->h))
        return;
    s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->g = g;
    g->deadline_busy = 1;
    if (rd_submit(g->h, sweep_work, sweep_done, s) != RD_OK) {
        g->deadline_busy = 0;
        free(s);
    }
}

/* --------------------------------------------------------- life cycle */

static void graph_destroy(void *mod)
{
    struct graph *g = mod;

    if (!g)
        return;
    graph_engine_cache_free(g);
    if (g->worker_types)
        for (char **w = g->worker_types; *w; w++)
            free(*w);
    free(g->worker_types);
    free(g->templates_dir);
    free(g);
}

/* "a b c" -> {"a","b","c",NULL}; NULL for "". */
static int split_types(const char *s, char ***out)
{
    size_t n = 0, cap = 4;
    char **v = NULL;

    *out = NULL;
    if (!s)
        return RD_OK;
    while (*s == ' ' || *s == ',')
        s++;
    if (!*s)
        return RD_OK;
    v = calloc(cap + 1, sizeof(*v));
    while (v && *s) {
        size_t len = strcspn(s, " ,");
        if (n == cap) {
            char **grown = realloc(v, (cap * 2 + 1) * sizeof(*v));
            if (!grown)
                break;
            v = grown;
            cap *= 2;
        }
        v[n] = strndup(s, len);
        if (!v[n])
            break;
        v[++n] = NULL;
        s += len;
        while (*s == ' ' || *s == ',')
            s++;
    }
    if (!v || *s) {
        for (size_t i = 0; v && i < n; i++)
            free(v[i]);
        free(v);
        return RD_ENOMEM;
    }
    *out = v;
    return RD_OK;
}

static int graph_metrics(struct graph *g)
{
    static const char *const outcomes[3] = {"outcome=completed", "outcome=failed",
                                            "outcome=canceled"};
    static const char *const ends[3] = {"state=completed", "state=failed", "state=exception"};
    char tags[64];

    g->graphs_submitted = rd_metric(g->h, RD_COUNTER, "graphs_submitted", "graphs accepted", NULL);
    if (!g->graphs_submitted)
        return RD_ENOMEM;
    for (int i = 0; i < 3; i++) {
        g->graph_seconds[i] =
            rd_metric(g->h, RD_HISTOGRAM, "graph_duration_seconds",
                      "graph end-to-end time, submitted to last task resolved", outcomes[i]);
        g->run_seconds[i] = rd_metric(g->h, RD_HISTOGRAM, "task_run_seconds",
                                      "task run time, claimed to resolved", ends[i]);
        if (!g->graph_seconds[i] || !g->run_seconds[i])
            return RD_ENOMEM;
    }
    g->wait_seconds = rd_metric(g->h, RD_HISTOGRAM, "task_wait_seconds",
                                "task wait time, pending to claimed", NULL);
    if (!g->wait_seconds)
        return RD_ENOMEM;
    for (int i = 0; i < GS_N; i++) {
        if (!graph_state_resolved((enum graph_state)i))
            continue;
        snprintf(tags, sizeof(tags), "state=%s", graph_state_name((enum graph_state)i));
        g->tasks_resolved[i] =
            rd_metric(g->h, RD_COUNTER, "tasks_resolved", "tasks resolved, by state", tags);
        if (!g->tasks_resolved[i])
            return RD_ENOMEM;
    }
    return RD_OK;
}

static int graph_init(struct rd_host *h, void **out)
{
    struct graph *g = calloc(1, sizeof(*g));
    struct rd_error err = {0};
    int rc;

    if (!g)
        return RD_ENOMEM;
    g->h = h;
    rc = rd_config_load(h, NULL, graph_keys, &g->conf, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    if (g->conf.max_tasks < 1 || g->conf.max_chunks < 1 || g->conf.default_retries < 0 ||
        g->conf.max_retries < g->conf.default_retries || g->conf.max_run_time_ms < 1000 ||
        g->conf.deadline_check_ms < 10) {
        rd_log(h, RD_ERROR,
               "configuration: max_tasks and max_chunks must be at least 1, default_retries "
               "from 0 to max_retries, max_run_time at least 1s, deadline_check at least 10ms");
        rc = RD_EINVAL;
        goto out;
    }
    rc = split_types(g->conf.worker_types, &g->worker_types);
    if (rc != RD_OK)
        goto out;
    g->templates_dir =
        strdup(g->conf.templates_dir && *g->conf.templates_dir ? g->conf.templates_dir
                                                               : SYSCONF_DIR "/graph");
    if (!g->templates_dir) {
        rc = RD_ENOMEM;
        goto out;
    }
    g->lim = (struct graph_limits){
        .max_tasks = (size_t)g->conf.max_tasks,
        .max_chunks = g->conf.max_chunks,
        .default_retries = g->conf.default_retries,
        .max_retries = g->conf.max_retries,
        .max_run_time_s = (int64_t)(g->conf.max_run_time_ms / 1000),
        .worker_types = (const char *const *)g->worker_types,
    };
    rc = rd_store_migrate(h, graph_migrations, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "migration: %s", err.msg);
        goto out;
    }
    rc = graph_metrics(g);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "cannot register metrics");
        goto out;
    }
    g->runs = (struct rd_taskruns){.ctx = g, .started = runs_started, .resolved = runs_resolved};
    rc = rd_service_provide(h, RD_TASKRUNS_SERVICE, RD_TASKRUNS_VERSION, &g->runs);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "cannot provide %s (error %d)", RD_TASKRUNS_SERVICE, rc);
        goto out;
    }
    *out = g;
    g = NULL;
out:
    graph_destroy(g);
    return rc;
}

struct requeue {
    struct graph *g;
    size_t n;
};

static int requeue_tx(struct rd_tx *tx, void *arg)
{
    struct requeue *rq = arg;
    return graph_engine_requeue(rq->g, tx, &rq->n);
}

static int graph_start(void *mod)
{
    struct graph *g = mod;
    struct requeue rq = {.g = g};
    int rc;

    g->queue = rd_service_get(g->h, RD_TASKQUEUE_SERVICE, RD_TASKQUEUE_VERSION);
    if (g->queue) {
        rc = rd_store_write(g->h, requeue_tx, &rq);
        if (rc != RD_OK) {
            rd_log(g->h, RD_ERROR, "cannot hand pending runs to dispatch (error %d)", rc);
            return rc;
        }
    }
    rc = graph_api_register(g);
    if (rc != RD_OK)
        return rc;
    g->deadline_timer = rd_timer_every(g->h, g->conf.deadline_check_ms, deadline_tick, g);
    if (!g->deadline_timer) {
        rd_log(g->h, RD_ERROR, "cannot start the deadline timer");
        return RD_ENOMEM;
    }
    rd_log(g->h, RD_INFO, "started: dispatch %s, %zu pending runs handed over, templates in %s",
           g->queue ? "present" : "absent (runs stay pending)", rq.n, g->templates_dir);
    return RD_OK;
}

static void graph_stop(void *mod)
{
    struct graph *g = mod;

    rd_timer_cancel(g->deadline_timer);
    g->deadline_timer = NULL;
}

struct status_tx {
    json_t *out;
};

static int status_tx(struct rd_tx *tx, void *arg)
{
    struct status_tx *s = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT count(*), coalesce(sum(state = 'running'), 0),"
                           " coalesce(sum(CASE WHEN state = 'running' THEN c_pending END), 0),"
                           " coalesce(sum(CASE WHEN state = 'running' THEN c_running END), 0),"
                           " coalesce(sum(CASE WHEN state = 'running' THEN c_waiting END), 0)"
                           " FROM graph_graphs",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        s->out = json_pack("{s:I, s:I, s:I, s:I, s:I}", "graphs",
                           (json_int_t)sqlite3_column_int64(st, 0), "graphs_running",
                           (json_int_t)sqlite3_column_int64(st, 1), "tasks_pending",
                           (json_int_t)sqlite3_column_int64(st, 2), "tasks_running",
                           (json_int_t)sqlite3_column_int64(st, 3), "tasks_waiting",
                           (json_int_t)sqlite3_column_int64(st, 4));
        rc = s->out ? RD_OK : RD_ENOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

static json_t *graph_status(void *mod)
{
    struct graph *g = mod;
    struct status_tx s = {0};
    int rc = rd_store_read(g->h, status_tx, &s);

    if (rc != RD_OK)
        return json_pack("{s:n, s:i}", "graphs", "error", rc);
    json_object_set_new(s.out, "dispatch", json_boolean(g->queue != NULL));
    return s.out;
}

static const struct rd_module graph_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "graph",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi =
#include "modules/graph/openapi.json.h"
        ,
    .keys = graph_keys,
    .init = graph_init,
    .start = graph_start,
    .stop = graph_stop,
    .destroy = graph_destroy,
    .status = graph_status,
    .reload = NULL,
};

RD_MODULE_EXPORT(graph_module)
