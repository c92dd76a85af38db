/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/routes_admin.c -- everything besides the worker
 * protocol: the workers (list, one, quarantine on and off), the queue
 * figures, runs (list, one, cancel of direct runs) and the direct enqueue
 * API for tests and external use. Handlers run on HTTP threads.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/placement.h"
#include "modules/dispatch/sql.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define WAIT_SAMPLES 1000 /* recent claims behind the wait percentiles */
#define REASON_MAX 200

/* ------------------------------------------------------------ workers */

#define WORKER_COLUMNS                                                                             \
    "worker_id, worker_type, capabilities, capacity, first_seen_ms, last_seen_ms, last_label,"     \
    " last_branch, speed, n_runs, consecutive_exceptions, quarantined, quarantine_reason,"         \
    " quarantine_until_ms, quarantine_by"

struct workers_read {
    struct dispatch *d;
    const char *one; /* NULL: all */
    uint64_t now;
    json_t *waiting; /* object: worker id -> true */
    json_t *out;     /* array (all) or object (one) */
};

static json_t *current_runs(sqlite3 *db, const char *worker_id)
{
    sqlite3_stmt *st = NULL;
    json_t *a = json_array();

    if (!a || dsql_prepare(db, &st,
                           "SELECT task_id, run_id, label, claimed_ms, taken_until_ms"
                           " FROM dispatch_runs WHERE state = 'claimed' AND worker_id = ?1"
                           " ORDER BY claimed_ms",
                           "s", worker_id) != RD_OK) {
        json_decref(a);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:I, s:I}", "taskId", dsql_text(st, 0),
                                           "runId", (json_int_t)sqlite3_column_int64(st, 1),
                                           "label", dsql_text(st, 2), "claimedAt",
                                           (json_int_t)sqlite3_column_int64(st, 3), "takenUntil",
                                           (json_int_t)sqlite3_column_int64(st, 4)));
    dsql_finalize(st);
    return a;
}

static json_t *worker_json(struct workers_read *w, sqlite3 *db, sqlite3_stmt *st)
{
    const char *id = dsql_text(st, 0);
    json_error_t je;
    json_t *caps = json_loads(dsql_text(st, 2), 0, &je), *o, *q = json_null();
    uint64_t last_seen = (uint64_t)sqlite3_column_int64(st, 5);

    if (sqlite3_column_int(st, 11))
        q = json_pack("{s:s, s:I, s:s}", "reason", dsql_text(st, 12), "until",
                      (json_int_t)sqlite3_column_int64(st, 13), "by", dsql_text(st, 14));
    o = json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:b, s:b, s:o, s:f, s:I, s:I, s:o}", "workerId",
                  id, "workerType", dsql_text(st, 1), "capabilities", caps ? caps : json_object(),
                  "capacity", (json_int_t)sqlite3_column_int64(st, 3), "firstSeen",
                  (json_int_t)sqlite3_column_int64(st, 4), "lastSeen", (json_int_t)last_seen,
                  "online", last_seen + w->d->conf.online_after_ms >= w->now, "waiting",
                  json_object_get(w->waiting, id) != NULL, "current", current_runs(db, id), "speed",
                  sqlite3_column_double(st, 8), "runs", (json_int_t)sqlite3_column_int64(st, 9),
                  "consecutiveExceptions", (json_int_t)sqlite3_column_int64(st, 10), "quarantine",
                  q);
    if (o) {
        json_object_set_new(o, "lastLabel",
                            sqlite3_column_type(st, 6) == SQLITE_NULL
                                ? json_null()
                                : json_string(dsql_text(st, 6)));
        json_object_set_new(o, "lastBranch",
                            sqlite3_column_type(st, 7) == SQLITE_NULL
                                ? json_null()
                                : json_string(dsql_text(st, 7)));
    }
    return o;
}

static int workers_tx(struct rd_tx *tx, void *arg)
{
    struct workers_read *w = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc, step;

    rc = w->one
             ? dsql_prepare(db, &st,
                            "SELECT " WORKER_COLUMNS " FROM dispatch_workers WHERE worker_id = ?1",
                            "s", w->one)
             : dsql_prepare(db, &st,
                            "SELECT " WORKER_COLUMNS " FROM dispatch_workers"
                            " ORDER BY worker_type, worker_id",
                            "");
    if (rc != RD_OK)
        return rc;
    w->out = w->one ? NULL : json_array();
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = worker_json(w, db, st);
        if (w->one)
            w->out = o;
        else
            json_array_append_new(w->out, o);
    }
    dsql_finalize(st);
    if (step != SQLITE_DONE)
        return RD_EIO;
    if (!w->out)
        return w->one ? RD_ENOTFOUND : RD_ENOMEM;
    return RD_OK;
}

static json_t *waiting_ids(struct dispatch *d)
{
    json_t *o = json_object();

    pthread_mutex_lock(&d->lock);
    for (struct dispatch_waiter *w = d->waiters; o && w; w = w->next)
        json_object_set_new(o, w->worker_id, json_true());
    pthread_mutex_unlock(&d->lock);
    return o;
}

static int workers_read(struct dispatch *d, const char *one, json_t **out)
{
    struct workers_read w = {.d = d, .one = one, .now = rd_now_ms(d->h)};
    int rc;

    w.waiting = waiting_ids(d);
    if (!w.waiting)
        return RD_ENOMEM;
    rc = rd_store_read(d->h, workers_tx, &w);
    json_decref(w.waiting);
    if (rc != RD_OK) {
        json_decref(w.out);
        return rc;
    }
    *out = w.out;
    return RD_OK;
}

static int workers_list(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    json_t *list = NULL, *item;
    size_t i, online = 0;
    int rc = workers_read(d, NULL, &list);

    if (rc != RD_OK)
        return rc;
    json_array_foreach(list, i, item) online += json_is_true(json_object_get(item, "online"));
    rd_metric_set(d->m_online, (double)online);
    return rd_reply_json(r, 200, json_pack("{s:o}", "workers", list));
}

static int worker_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    const char *id = rd_req_param(r, "id");
    json_t *w = NULL;
    int rc;

    if (!dispatch_worker_id_valid(id))
        return rd_reply_error(r, 404, "unknown_worker", "no such worker");
    rc = workers_read(d, id, &w);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_worker", "no worker %s", id);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, w);
}

struct quarantine {
    struct dispatch *d;
    const char *worker_id;
    const char *reason;
    uint64_t until;
    const char *by;
    bool lift;
};

static int quarantine_tx(struct rd_tx *tx, void *arg)
{
    struct quarantine *q = arg;
    sqlite3 *db = rd_tx_db(tx);
    int rc;

    if (!q->lift)
        return dispatch_quarantine_tx(q->d, tx, q->worker_id, q->reason, q->until, q->by);
    rc = dsql_exec(db,
                   "UPDATE dispatch_workers SET quarantined = 0, quarantine_reason = NULL,"
                   " quarantine_until_ms = 0, quarantine_by = NULL, consecutive_exceptions = 0"
                   " WHERE worker_id = ?1",
                   "s", q->worker_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_changes(db) == 0)
        return RD_ENOTFOUND;
    rd_log(q->d->h, RD_INFO, "worker %s: quarantine lifted by %s", q->worker_id, q->by);
    return rd_tx_publish(tx, "dispatch.unquarantined",
                         json_pack("{s:s, s:s}", "workerId", q->worker_id, "by", q->by));
}

static int quarantine_set(struct rd_req *r, void *arg, bool lift)
{
    struct dispatch *d = arg;
    const json_t *body = rd_req_body(r), *until;
    struct quarantine q = {.d = d, .lift = lift, .by = rd_req_principal(r)};
    json_t *w = NULL;
    int rc;

    q.worker_id = rd_req_param(r, "id");
    if (!dispatch_worker_id_valid(q.worker_id))
        return rd_reply_error(r, 404, "unknown_worker", "no such worker");
    if (!lift) {
        q.reason = json_string_value(json_object_get(body, "reason"));
        if (!q.reason || !q.reason[0] || strlen(q.reason) > REASON_MAX)
            return rd_reply_error(r, 400, "bad_request", "reason: required, 1..%d bytes",
                                  REASON_MAX);
        until = json_object_get(body, "until");
        if (until && !json_is_null(until)) {
            if (!json_is_integer(until) || json_integer_value(until) <= (json_int_t)rd_now_ms(d->h))
                return rd_reply_error(r, 400, "bad_request",
                                      "until: a time in the future, ms since the epoch");
            q.until = (uint64_t)json_integer_value(until);
        }
    }
    rc = rd_store_write(d->h, quarantine_tx, &q);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_worker", "no worker %s", q.worker_id);
    if (rc != RD_OK)
        return rc;
    if (lift)
        dispatch_wake_claims(d);
    rc = workers_read(d, q.worker_id, &w);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, w);
}

static int quarantine_on(struct rd_req *r, void *arg)
{
    return quarantine_set(r, arg, false);
}

static int quarantine_off(struct rd_req *r, void *arg)
{
    return quarantine_set(r, arg, true);
}

/* -------------------------------------------------------------- queue */

struct queue_read {
    struct dispatch *d;
    json_t *types; /* array */
    json_t *waiting_by_type;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int queue_tx(struct rd_tx *tx, void *arg)
{
    struct queue_read *q = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL, *w = NULL;
    uint64_t now = rd_now_ms(q->d->h), *waits = NULL;
    int64_t total_pending = 0;
    int rc;

    waits = calloc(WAIT_SAMPLES, sizeof(*waits));
    q->types = json_array();
    if (!waits || !q->types) {
        free(waits);
        return RD_ENOMEM;
    }
    rc = dsql_prepare(db, &st,
                      "SELECT t, (SELECT count(*) FROM dispatch_runs WHERE state = 'pending'"
                      " AND worker_type = t), (SELECT count(*) FROM dispatch_runs"
                      " WHERE state = 'claimed' AND worker_type = t), (SELECT min(pending_since_ms)"
                      " FROM dispatch_runs WHERE state = 'pending' AND worker_type = t),"
                      " (SELECT count(*) FROM dispatch_workers WHERE worker_type = t)"
                      " FROM (SELECT worker_type AS t FROM dispatch_workers UNION SELECT"
                      " worker_type FROM dispatch_runs WHERE state IN ('pending', 'claimed'))"
                      " ORDER BY t",
                      "");
    while (rc == RD_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *type = dsql_text(st, 0);
        size_t n = 0;
        json_t *o;

        rc = dsql_prepare(db, &w,
                          "SELECT claimed_ms - pending_since_ms FROM dispatch_runs"
                          " WHERE worker_type = ?1 AND claimed_ms IS NOT NULL"
                          " ORDER BY claimed_ms DESC LIMIT ?2",
                          "si", type, WAIT_SAMPLES);
        while (rc == RD_OK && n < WAIT_SAMPLES && sqlite3_step(w) == SQLITE_ROW) {
            int64_t v = sqlite3_column_int64(w, 0);
            waits[n++] = v > 0 ? (uint64_t)v : 0;
        }
        dsql_finalize(w);
        qsort(waits, n, sizeof(*waits), cmp_u64);
        total_pending += sqlite3_column_int64(st, 1);
        o = json_pack("{s:s, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "workerType", type, "pending",
                      (json_int_t)sqlite3_column_int64(st, 1), "claimed",
                      (json_int_t)sqlite3_column_int64(st, 2), "oldestPendingAge",
                      sqlite3_column_type(st, 3) == SQLITE_NULL
                          ? json_null()
                          : json_integer((json_int_t)(now - (uint64_t)sqlite3_column_int64(st, 3))),
                      "workers", (json_int_t)sqlite3_column_int64(st, 4), "waitSamples",
                      (json_int_t)n, "waitP50", (json_int_t)dispatch_percentile(waits, n, 50),
                      "waitP99", (json_int_t)dispatch_percentile(waits, n, 99));
        if (o) {
            json_t *wt = json_object_get(q->waiting_by_type, type);
            json_object_set_new(o, "waiting", json_integer(wt ? json_integer_value(wt) : 0));
        }
        json_array_append_new(q->types, o);
    }
    dsql_finalize(st);
    free(waits);
    rd_metric_set(q->d->m_pending, (double)total_pending);
    return rc;
}

static int queue_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct queue_read q = {.d = d};
    int rc;

    q.waiting_by_type = json_object();
    if (!q.waiting_by_type)
        return RD_ENOMEM;
    pthread_mutex_lock(&d->lock);
    for (struct dispatch_waiter *w = d->waiters; w; w = w->next) {
        json_t *n = json_object_get(q.waiting_by_type, w->worker_type);
        json_object_set_new(q.waiting_by_type, w->worker_type,
                            json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    pthread_mutex_unlock(&d->lock);
    rc = rd_store_read(d->h, queue_tx, &q);
    json_decref(q.waiting_by_type);
    if (rc != RD_OK) {
        json_decref(q.types);
        return rc;
    }
    return rd_reply_json(r, 200, json_pack("{s:o}", "types", q.types));
}

/* --------------------------------------------------------------- runs */

struct runs_read {
    struct dispatch *d;
    const char *state;
    const char *worker_type;
    const char *of_task; /* only this task's runs */
    int limit;
    const char *task_id;
    uint32_t run_id;
    json_t *out;
};

static int runs_tx(struct rd_tx *tx, void *arg)
{
    struct runs_read *q = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc, step;

    if (q->task_id)
        rc = dsql_prepare(db, &st,
                          "SELECT " DISPATCH_RUN_COLUMNS
                          " FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
                          "sI", q->task_id, (int64_t)q->run_id);
    else if (q->state && strcmp(q->state, "pending") == 0)
        rc = dsql_prepare(db, &st,
                          "SELECT " DISPATCH_RUN_COLUMNS " FROM dispatch_runs"
                          " WHERE state = 'pending' AND (?1 IS NULL OR worker_type = ?1)"
                          " ORDER BY priority DESC, pending_since_ms, task_id, run_id LIMIT ?2",
                          "si", q->worker_type, q->limit);
    else
        rc = dsql_prepare(db, &st,
                          "SELECT " DISPATCH_RUN_COLUMNS " FROM dispatch_runs"
                          " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR worker_type = ?2)"
                          " AND (?4 IS NULL OR task_id = ?4) ORDER BY rowid DESC LIMIT ?3",
                          "ssis", q->state, q->worker_type, q->limit, q->of_task);
    if (rc != RD_OK)
        return rc;
    q->out = q->task_id ? NULL : json_array();
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = dispatch_run_json(st, q->task_id != NULL);
        if (q->task_id)
            q->out = o;
        else
            json_array_append_new(q->out, o);
    }
    dsql_finalize(st);
    if (step != SQLITE_DONE)
        return RD_EIO;
    return q->out ? RD_OK : (q->task_id ? RD_ENOTFOUND : RD_ENOMEM);
}

static int runs_list(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct runs_read q = {.d = d, .limit = LIST_DEFAULT};
    const char *limit = rd_req_param(r, "limit");
    uint64_t n;
    int rc;

    q.state = rd_req_param(r, "state");
    q.worker_type = rd_req_param(r, "workerType");
    q.of_task = rd_req_param(r, "taskId");
    if (q.of_task && !dispatch_id_valid(q.of_task))
        return rd_reply_error(r, 400, "bad_request", "taskId: 1..64 of [A-Za-z0-9_.-]");
    if (q.state && strcmp(q.state, "pending") != 0 && strcmp(q.state, "claimed") != 0 &&
        strcmp(q.state, "resolved") != 0 && strcmp(q.state, "cancelled") != 0)
        return rd_reply_error(r, 400, "bad_request",
                              "state: pending, claimed, resolved or cancelled");
    if (q.worker_type && !dispatch_id_valid(q.worker_type))
        return rd_reply_error(r, 400, "bad_request", "workerType: 1..64 of [A-Za-z0-9_.-]");
    if (limit) {
        if (!dispatch_u64_parse(limit, &n) || n < 1 || n > LIST_MAX)
            return rd_reply_error(r, 400, "bad_request", "limit: 1..%d", LIST_MAX);
        q.limit = (int)n;
    }
    rc = rd_store_read(d->h, runs_tx, &q);
    if (rc != RD_OK) {
        json_decref(q.out);
        return rc;
    }
    return rd_reply_json(r, 200, json_pack("{s:o}", "runs", q.out));
}

static int run_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct runs_read q = {.d = d};
    int rc;

    if (!dispatch_run_params(r, &q.task_id, &q.run_id))
        return RD_OK;
    rc = rd_store_read(d->h, runs_tx, &q);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_run", "no run %s/%u", q.task_id, q.run_id);
    if (rc != RD_OK)
        return rc;
    json_object_set_new(q.out, "logUrl",
                        json_sprintf("/api/v1/dispatch/runs/%s/%u/log", q.task_id, q.run_id));
    return rd_reply_json(r, 200, q.out);
}

struct cancel_req {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    char why[160];
};

static int cancel_tx(struct rd_tx *tx, void *arg)
{
    struct cancel_req *c = arg;
    struct dispatch_run_info info;
    int rc = dispatch_run_info_get(c->d, tx, c->task_id, c->run_id, &info);

    if (rc != RD_OK)
        return rc;
    if (strcmp(info.source, "graph") == 0) {
        snprintf(c->why, sizeof(c->why), "run %s/%u belongs to graph: cancel it through graph",
                 c->task_id, c->run_id);
        return RD_ECONFLICT;
    }
    if (strcmp(info.state, "pending") != 0 && strcmp(info.state, "claimed") != 0) {
        snprintf(c->why, sizeof(c->why), "run %s/%u is %s already", c->task_id, c->run_id,
                 info.state);
        return RD_ECONFLICT;
    }
    rc = dispatch_cancel(c->d, tx, c->task_id, c->run_id);
    if (rc == RD_OK)
        rc = rd_tx_publish(tx, "dispatch.resolved",
                           json_pack("{s:s, s:I, s:s, s:s, s:i, s:s, s:s}", "taskId", c->task_id,
                                     "runId", (json_int_t)c->run_id, "state", "exception", "reason",
                                     "canceled", "exitCode", -1, "workerId", info.worker_id,
                                     "source", "direct"));
    return rc;
}

static int run_cancel(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct cancel_req c = {.d = d};
    struct runs_read q = {.d = d};
    int rc;

    if (!dispatch_run_params(r, &c.task_id, &c.run_id))
        return RD_OK;
    rc = rd_store_write(d->h, cancel_tx, &c);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_run", "no run %s/%u", c.task_id, c.run_id);
    if (rc == RD_ECONFLICT)
        return rd_reply_error(r, 409, "conflict", "%s", c.why);
    if (rc != RD_OK)
        return rc;
    dispatch_wake_logs(d);
    dispatch_schedule_compress(d);
    q.task_id = c.task_id;
    q.run_id = c.run_id;
    rc = rd_store_read(d->h, runs_tx, &q);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, q.out);
}

/* ------------------------------------------------------ direct enqueue */

struct enqueue_req {
    struct dispatch *d;
    struct rd_task_run_spec spec;
    bool inserted;
    json_t *run;
};

static int enqueue_tx(struct rd_tx *tx, void *arg)
{
    struct enqueue_req *e = arg;
    struct runs_read q = {.d = e->d, .task_id = e->spec.task_id, .run_id = e->spec.run_id};
    int rc = dispatch_enqueue_direct(e->d, tx, &e->spec, &e->inserted);

    if (rc == RD_OK)
        rc = runs_tx(tx, &q);
    e->run = q.out;
    return rc;
}

static int enqueue(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    const json_t *b = rd_req_body(r), *v;
    struct enqueue_req e = {.d = d};
    int rc;

    if (!json_is_object(b))
        return rd_reply_error(r, 400, "bad_request", "the body must be a JSON object");
    e.spec.task_id = json_string_value(json_object_get(b, "taskId"));
    e.spec.worker_type = json_string_value(json_object_get(b, "workerType"));
    e.spec.label = json_string_value(json_object_get(b, "label"));
    e.spec.graph_id = json_string_value(json_object_get(b, "graphId"));
    e.spec.branch = json_string_value(json_object_get(b, "branch"));
    e.spec.payload = json_object_get(b, "payload");
    if (!dispatch_id_valid(e.spec.task_id))
        return rd_reply_error(r, 400, "bad_request", "taskId: required, 1..64 of [A-Za-z0-9_.-]");
    if (!dispatch_id_valid(e.spec.worker_type))
        return rd_reply_error(r, 400, "bad_request",
                              "workerType: required, 1..64 of [A-Za-z0-9_.-]");
    if (!e.spec.label || !e.spec.label[0] || strlen(e.spec.label) > 256)
        return rd_reply_error(r, 400, "bad_request", "label: required, 1..256 bytes");
    if ((json_object_get(b, "graphId") && (!e.spec.graph_id || strlen(e.spec.graph_id) > 256)) ||
        (json_object_get(b, "branch") && (!e.spec.branch || strlen(e.spec.branch) > 255)))
        return rd_reply_error(r, 400, "bad_request", "graphId, branch: strings (256 bytes max)");
    if (e.spec.payload && !json_is_object(e.spec.payload))
        return rd_reply_error(r, 400, "bad_request", "payload: an object");
    v = json_object_get(b, "runId");
    if (v &&
        (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX))
        return rd_reply_error(r, 400, "bad_request", "runId: an integer >= 0");
    e.spec.run_id = v ? (uint32_t)json_integer_value(v) : 0;
    v = json_object_get(b, "priority");
    if (v && (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
              json_integer_value(v) > INT32_MAX))
        return rd_reply_error(r, 400, "bad_request", "priority: a 32-bit integer");
    e.spec.priority = v ? (int32_t)json_integer_value(v) : 0;
    v = json_object_get(b, "deadline");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
        return rd_reply_error(r, 400, "bad_request", "deadline: ms since the epoch, or 0");
    e.spec.deadline_ms = v ? (uint64_t)json_integer_value(v) : 0;
    e.spec.pending_since_ms = rd_now_ms(d->h);
    rc = rd_store_write(d->h, enqueue_tx, &e);
    if (rc != RD_OK) {
        json_decref(e.run);
        return rc;
    }
    if (e.inserted)
        dispatch_wake_claims(d);
    return rd_reply_json(r, e.inserted ? 201 : 200, e.run);
}

int dispatch_routes_admin(struct dispatch *d)
{
    int rc = rd_route(d->h, "POST", "/enqueue", "dispatch:admin", enqueue, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/runs", NULL, runs_list, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/runs/{task_id}/{run_id}", NULL, run_get, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "POST", "/runs/{task_id}/{run_id}/cancel", "dispatch:admin", run_cancel,
                      d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/queue", NULL, queue_get, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/workers", NULL, workers_list, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/workers/{id}", NULL, worker_get, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "POST", "/workers/{id}/quarantine", "dispatch:admin", quarantine_on, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "DELETE", "/workers/{id}/quarantine", "dispatch:admin", quarantine_off,
                      d);
    return rc;
}
