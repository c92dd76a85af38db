/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/dispatch/test_module.c -- the dispatch module through the fake
 * host, with a fake graph behind graph.runs: the queue service (idempotent
 * enqueue, cancel), claims in priority then FIFO order across branches,
 * started()/resolved() inside our transactions (and a retry enqueued from
 * inside resolved()), lease expiry on the manual clock, deadlines, reclaim
 * and report conflicts, automatic and manual quarantine, log chunks
 * (repeat, overlap, gap, cap), artifacts (hash, names), leases honoured
 * across a restart, and failure injection of every host call of a load.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/services/tasks.h"
#include "lib/hash/hash.h"
#include "tests/fakes/fake_host.h"

const struct rd_module *rd_module_entry(void);

#define API "/api/v1/dispatch"
#define CONF "lease = 10s\nhold_max = 0s\nquarantine_after = 3\nmax_log_size = 100\n"

/* ------------------------------------------------------------ fake graph */

struct fake_graph {
    struct rd_taskruns vt;
    const struct rd_taskqueue *queue; /* dispatch's, found after load */
    int n_started, n_resolved;
    char last_state[32], last_reason[32], last_worker[80];
    int last_exit;
    bool refuse_start;    /* started() answers RD_ECONFLICT */
    bool retry_on_except; /* resolved(exception) enqueues run + 1 */
};

static int fg_started(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                      const char *worker_id)
{
    struct fake_graph *g = ctx;
    (void)tx;
    (void)task_id;
    (void)run_id;
    if (g->refuse_start)
        return RD_ECONFLICT;
    g->n_started++;
    snprintf(g->last_worker, sizeof(g->last_worker), "%s", worker_id);
    return RD_OK;
}

static int fg_resolved(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                       const char *state, const char *reason, int exit_code)
{
    struct fake_graph *g = ctx;

    g->n_resolved++;
    snprintf(g->last_state, sizeof(g->last_state), "%s", state);
    snprintf(g->last_reason, sizeof(g->last_reason), "%s", reason);
    g->last_exit = exit_code;
    if (g->retry_on_except && strcmp(state, "exception") == 0) {
        /* Graph's retry, nested inside dispatch's own transaction. */
        struct rd_task_run_spec spec = {.task_id = task_id,
                                        .run_id = run_id + 1,
                                        .graph_id = "g1",
                                        .label = "build",
                                        .worker_type = "linux",
                                        .branch = "main",
                                        .pending_since_ms = FAKE_HOST_EPOCH_MS};
        return g->queue->enqueue(g->queue->ctx, tx, &spec);
    }
    return RD_OK;
}

struct env {
    struct fake_host *fh;
    struct fake_graph g;
};

static struct env *env_new_in(const char *conf, const char *dir)
{
    struct env *e = calloc(1, sizeof(*e));

    assert_non_null(e);
    e->g.vt = (struct rd_taskruns){.ctx = &e->g, .started = fg_started, .resolved = fg_resolved};
    e->fh = dir ? fake_host_new_in("dispatch", conf, dir) : fake_host_new("dispatch", conf);
    assert_non_null(e->fh);
    assert_int_equal(fake_host_provide(e->fh, RD_TASKRUNS_SERVICE, 1, &e->g.vt), RD_OK);
    assert_int_equal(fake_host_load(e->fh, rd_module_entry()), RD_OK);
    e->g.queue = rd_service_get(fake_host_handle(e->fh), RD_TASKQUEUE_SERVICE, 1);
    assert_non_null(e->g.queue);
    fake_host_run_pending(e->fh);
    return e;
}

static void env_free(struct env *e)
{
    if (!e)
        return;
    fake_host_free(e->fh);
    free(e);
}

static int setup(void **state)
{
    *state = env_new_in(CONF, NULL);
    return 0;
}

static int teardown(void **state)
{
    env_free(*state);
    return 0;
}

/* Graph's side of a transaction: enqueue one run. */
struct enq {
    struct env *e;
    struct rd_task_run_spec spec;
};

static int enq_tx(struct rd_tx *tx, void *arg)
{
    struct enq *q = arg;
    return q->e->g.queue->enqueue(q->e->g.queue->ctx, tx, &q->spec);
}

static void enqueue(struct env *e, const char *task_id, uint32_t run_id, const char *branch,
                    int32_t priority, uint64_t pending_since)
{
    struct enq q = {.e = e,
                    .spec = {.task_id = task_id,
                             .run_id = run_id,
                             .graph_id = "g1",
                             .label = "build",
                             .worker_type = "linux",
                             .branch = branch,
                             .priority = priority,
                             .pending_since_ms = pending_since}};
    assert_int_equal(rd_store_write(fake_host_handle(e->fh), enq_tx, &q), RD_OK);
}

struct cancel {
    struct env *e;
    const char *task_id;
    uint32_t run_id;
    int rc;
};

static int cancel_tx(struct rd_tx *tx, void *arg)
{
    struct cancel *c = arg;
    c->rc = c->e->g.queue->cancel(c->e->g.queue->ctx, tx, c->task_id, c->run_id);
    return RD_OK;
}

static struct fake_resp call(struct env *e, const char *method, const char *path, const char *body)
{
    return fake_host_call(e->fh, method, path, body, "admin");
}

/* Claims (wait 0) as worker; returns the tasks array (new reference). */
static json_t *claim(struct env *e, const char *worker, int capacity)
{
    char body[200];
    struct fake_resp r;
    json_t *tasks;

    snprintf(body, sizeof(body),
             "{\"workerId\":\"%s\",\"workerType\":\"linux\",\"capacity\":%d,\"wait\":0}", worker,
             capacity);
    r = fake_host_call(e->fh, "POST", API "/claim", body, "worker:linux");
    assert_int_equal(r.status, 200);
    tasks = json_incref(json_object_get(r.body, "tasks"));
    assert_true(json_is_array(tasks));
    fake_resp_free(&r);
    return tasks;
}

static int report(struct env *e, const char *task_id, uint32_t run_id, const char *body)
{
    char path[200];
    struct fake_resp r;
    int status;

    snprintf(path, sizeof(path), API "/runs/%s/%u/report", task_id, run_id);
    r = fake_host_call(e->fh, "POST", path, body, "worker:linux");
    status = r.status;
    fake_resp_free(&r);
    return status;
}

static const char *run_state(struct env *e, const char *task_id, uint32_t run_id, char *out)
{
    char path[200];
    struct fake_resp r;

    snprintf(path, sizeof(path), API "/runs/%s/%u", task_id, run_id);
    r = call(e, "GET", path, NULL);
    snprintf(out, 32, "%s",
             r.status == 200 ? json_string_value(json_object_get(r.body, "state")) : "none");
    fake_resp_free(&r);
    return out;
}

/* ------------------------------------------------------------------ tests */

static void test_enqueue_idempotent_and_fifo_across_branches(void **state)
{
    struct env *e = *state;
    uint64_t t = FAKE_HOST_EPOCH_MS;
    json_t *tasks;

    enqueue(e, "b-old", 0, "beta", 0, t + 1);
    enqueue(e, "a-new", 0, "main", 0, t + 5);
    enqueue(e, "c-mid", 0, "main", 0, t + 3);
    enqueue(e, "urgent", 0, "try", 10, t + 9);
    enqueue(e, "b-old", 0, "beta", 0, t + 1); /* graph re-enqueues at start: no duplicate */
    tasks = claim(e, "w1", 10);
    assert_int_equal(json_array_size(tasks), 4);
    /* priority first, then pending time whatever the branch */
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "taskId")),
                        "urgent");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 1), "taskId")),
                        "b-old");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 2), "taskId")),
                        "c-mid");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 3), "taskId")),
                        "a-new");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tasks, 0), "takenUntil")),
                     (json_int_t)(fake_host_now(e->fh) + 10000));
    assert_int_equal(e->g.n_started, 4);
    assert_string_equal(e->g.last_worker, "w1");
    json_decref(tasks);
    tasks = claim(e, "w2", 10);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    assert_true(fake_host_metric(e->fh, "claims", NULL) == 4);
}

static void test_claim_capacity_and_refused_start(void **state)
{
    struct env *e = *state;
    char st[32];
    json_t *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    enqueue(e, "t2", 0, "main", 0, FAKE_HOST_EPOCH_MS + 1);
    enqueue(e, "t3", 0, "main", 0, FAKE_HOST_EPOCH_MS + 2);
    tasks = claim(e, "w1", 2);
    assert_int_equal(json_array_size(tasks), 2);
    json_decref(tasks);
    /* graph cancelled t3 meanwhile: it is dropped, never handed out */
    e->g.refuse_start = true;
    tasks = claim(e, "w2", 1);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    assert_string_equal(run_state(e, "t3", 0, st), "cancelled");
}

static void test_report_resolves_in_graph(void **state)
{
    struct env *e = *state;
    json_t *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    fake_host_advance(e->fh, 1500);
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"failed\",\"exitCode\":3}"), 200);
    assert_int_equal(e->g.n_resolved, 1);
    assert_string_equal(e->g.last_state, "failed");
    assert_string_equal(e->g.last_reason, "failed");
    assert_int_equal(e->g.last_exit, 3);
    /* the same report again is fine (a worker that lost our answer) */
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"failed\",\"exitCode\":3}"), 200);
    assert_int_equal(e->g.n_resolved, 1);
    /* a different one is a conflict */
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\",\"exitCode\":0}"), 409);
    /* bad reports change nothing */
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"done\"}"), 400);
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"exception\",\"reason\":\"claim-expired\"}"),
                     400);
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"failed\",\"exitCode\":0}"), 400);
    assert_int_equal(report(e, "nope", 0, "{\"state\":\"completed\"}"), 404);
    assert_int_equal(report(e, "t1", 7, "{\"state\":\"completed\"}"), 404);
}

static void test_worker_scope(void **state)
{
    struct env *e = *state;
    struct fake_resp r;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    r = fake_host_call(e->fh, "POST", API "/claim",
                       "{\"workerId\":\"w1\",\"workerType\":\"linux\"}", "worker:mac");
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.raw, "worker:linux"));
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/claim",
                       "{\"workerId\":\"w1\",\"workerType\":\"linux\"}", NULL);
    assert_int_equal(r.status, 401);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/claim", "{\"workerType\":\"linux\"}", "worker:*");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/claim",
                       "{\"workerId\":\"w1\",\"workerType\":\"linux\",\"wait\":21}", "worker:*");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/claim",
                       "{\"workerId\":\"w1\",\"workerType\":\"linux\",\"capacity\":0}", "worker:*");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/runs/t1/0/report", "{\"state\":\"completed\"}",
                       "worker:mac");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
}

static void test_lease_expiry_retries(void **state)
{
    struct env *e = *state;
    char st[32];
    json_t *tasks;
    struct fake_resp r;

    e->g.retry_on_except = true;
    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 1);
    json_decref(tasks);
    fake_host_run_pending(e->fh);
    /* renewing keeps it */
    fake_host_advance(e->fh, 6000);
    fake_host_run_pending(e->fh);
    r = fake_host_call(e->fh, "POST", API "/runs/t1/0/reclaim", NULL, "worker:linux");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "takenUntil")),
                     (json_int_t)(fake_host_now(e->fh) + 10000));
    fake_resp_free(&r);
    fake_host_advance(e->fh, 9000);
    fake_host_run_pending(e->fh);
    assert_string_equal(run_state(e, "t1", 0, st), "claimed");
    /* the worker is gone: the lease ends */
    fake_host_advance(e->fh, 1500);
    fake_host_run_pending(e->fh);
    assert_string_equal(run_state(e, "t1", 0, st), "resolved");
    assert_string_equal(e->g.last_reason, "claim-expired");
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.expired"), 1);
    assert_true(fake_host_metric(e->fh, "lease_expiries", NULL) == 1);
    /* graph's retry went in with the same transaction: another worker gets it */
    assert_string_equal(run_state(e, "t1", 1, st), "pending");
    tasks = claim(e, "w2", 1);
    assert_int_equal(json_array_size(tasks), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tasks, 0), "runId")), 1);
    json_decref(tasks);
    /* the first worker's late report is refused */
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 409);
    r = fake_host_call(e->fh, "POST", API "/runs/t1/0/reclaim", NULL, "worker:linux");
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);
}

static void test_deadline(void **state)
{
    struct env *e = *state;
    struct enq q = {.e = e,
                    .spec = {.task_id = "t1",
                             .run_id = 0,
                             .label = "build",
                             .worker_type = "linux",
                             .branch = "",
                             .pending_since_ms = FAKE_HOST_EPOCH_MS,
                             .deadline_ms = FAKE_HOST_EPOCH_MS + 3000}};
    char st[32];
    json_t *tasks;

    assert_int_equal(rd_store_write(fake_host_handle(e->fh), enq_tx, &q), RD_OK);
    fake_host_run_pending(e->fh);
    tasks = claim(e, "w1", 1);
    /* the lease never reaches past the deadline */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tasks, 0), "takenUntil")),
                     (json_int_t)(FAKE_HOST_EPOCH_MS + 3000));
    json_decref(tasks);
    fake_host_run_pending(e->fh);
    fake_host_advance(e->fh, 3000);
    fake_host_run_pending(e->fh);
    /* the expiry pass that ran at 0 armed the timer for the deadline */
    fake_host_advance(e->fh, 0);
    fake_host_run_pending(e->fh);
    assert_string_equal(run_state(e, "t1", 0, st), "resolved");
    assert_string_equal(e->g.last_reason, "deadline-exceeded");
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.expired"), 0);
}

static void test_cancel(void **state)
{
    struct env *e = *state;
    struct cancel c = {.e = *state, .task_id = "t1", .run_id = 0};
    struct fake_resp r;
    char st[32];
    json_t *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    enqueue(e, "t2", 0, "main", 0, FAKE_HOST_EPOCH_MS + 1);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    assert_int_equal(rd_store_write(fake_host_handle(e->fh), cancel_tx, &c), RD_OK);
    assert_int_equal(c.rc, RD_OK);
    r = fake_host_call(e->fh, "POST", API "/runs/t1/0/reclaim", NULL, "worker:linux");
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 409);
    assert_int_equal(e->g.n_resolved, 0); /* graph records the cancel itself */
    c.task_id = "t2";
    assert_int_equal(rd_store_write(fake_host_handle(e->fh), cancel_tx, &c), RD_OK);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    assert_string_equal(run_state(e, "t2", 0, st), "cancelled");
    c.task_id = "unknown";
    assert_int_equal(rd_store_write(fake_host_handle(e->fh), cancel_tx, &c), RD_OK);
    assert_int_equal(c.rc, RD_ENOTFOUND);
}

static void test_quarantine_automatic_and_manual(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    json_t *tasks;
    char id[16];

    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "t%d", i);
        enqueue(e, id, 0, "main", 0, FAKE_HOST_EPOCH_MS + (uint64_t)i);
        tasks = claim(e, "w1", 1);
        assert_int_equal(json_array_size(tasks), 1);
        json_decref(tasks);
        assert_int_equal(
            report(e, id, 0, "{\"state\":\"exception\",\"reason\":\"internal-error\"}"), 200);
    }
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.quarantined"), 1);
    enqueue(e, "t9", 0, "main", 0, FAKE_HOST_EPOCH_MS + 9);
    r = fake_host_call(e->fh, "POST", API "/claim",
                       "{\"workerId\":\"w1\",\"workerType\":\"linux\"}", "worker:linux");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 0);
    assert_true(json_is_true(json_object_get(r.body, "quarantined")));
    fake_resp_free(&r);
    /* lifted by an admin */
    r = call(e, "DELETE", API "/workers/w1/quarantine", NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(r.body, "quarantine")));
    fake_resp_free(&r);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 1);
    json_decref(tasks);
    /* manual, with an end time */
    r = fake_host_call(e->fh, "POST", API "/workers/w1/quarantine", "{\"reason\":\"disk\"}",
                       "worker:linux");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
    r = call(e, "POST", API "/workers/w1/quarantine", "{\"reason\":\"\"}");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = call(e, "POST", API "/workers/nobody/quarantine", "{\"reason\":\"x\"}");
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    char body[100];
    snprintf(body, sizeof(body), "{\"reason\":\"disk full\",\"until\":%llu}",
             (unsigned long long)fake_host_now(e->fh) + 60000);
    r = call(e, "POST", API "/workers/w1/quarantine", body);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.body, "quarantine"), "reason")),
        "disk full");
    fake_resp_free(&r);
    enqueue(e, "t10", 0, "main", 0, FAKE_HOST_EPOCH_MS + 10);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    fake_host_advance(e->fh, 60000);
    fake_host_run_pending(e->fh);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 1); /* the quarantine ran out */
    json_decref(tasks);
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.unquarantined"), 2);
}

static struct fake_resp put_log(struct env *e, const char *task, uint64_t off, const char *bytes)
{
    char path[200];
    struct fake_call c = {.method = "POST",
                          .path = path,
                          .body = bytes,
                          .body_len = strlen(bytes),
                          .scopes = "worker:linux"};
    snprintf(path, sizeof(path), API "/runs/%s/0/log?offset=%llu", task, (unsigned long long)off);
    return fake_host_request(e->fh, &c);
}

static void expect_log(struct env *e, const char *want)
{
    struct fake_resp r = call(e, "GET", API "/runs/t1/0/log", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.raw_len, strlen(want));
    assert_memory_equal(r.raw, want, strlen(want));
    fake_resp_free(&r);
}

struct count {
    const char *sql;
    long long n;
};

static int count_tx(struct rd_tx *tx, void *arg)
{
    struct count *c = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx), c->sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        c->n = sqlite3_column_int64(st, 0);
        rc = RD_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static long long count_rows(struct env *e, const char *sql)
{
    struct count c = {.sql = sql};
    assert_int_equal(rd_store_read(fake_host_handle(e->fh), count_tx, &c), RD_OK);
    return c.n;
}

static void test_log_chunks(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    json_t *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    r = put_log(e, "t1", 0, "early");
    assert_int_equal(r.status, 409); /* not claimed yet */
    fake_resp_free(&r);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    r = put_log(e, "t1", 0, "hello ");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "offset")), 6);
    fake_resp_free(&r);
    r = put_log(e, "t1", 0, "hello "); /* a retry: not written twice */
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "offset")), 6);
    fake_resp_free(&r);
    r = put_log(e, "t1", 3, "lo world"); /* overlap: only the new part */
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "offset")), 11);
    fake_resp_free(&r);
    r = put_log(e, "t1", 20, "lost?"); /* gap: 416 with the server's offset */
    assert_int_equal(r.status, 416);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.body, "error"), "code")), "log_gap");
    assert_int_equal(json_integer_value(json_object_get(r.body, "offset")), 11);
    assert_non_null(strstr(r.headers, "X-Log-Offset: 11"));
    fake_resp_free(&r);
    expect_log(e, "hello world");
    /* the cap (100 bytes here): what fits is kept, the rest refused */
    char big[120];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r = put_log(e, "t1", 11, big);
    assert_int_equal(r.status, 413);
    assert_int_equal(json_integer_value(json_object_get(r.body, "offset")), 100);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs/t1/0/log?offset=95", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.raw_len, 5);
    assert_non_null(strstr(r.headers, "X-Log-Offset: 100"));
    assert_non_null(strstr(r.headers, "X-Log-Complete: 0"));
    fake_resp_free(&r);
    /* a tail with a bad offset or wait is 400, never a wait */
    static const char *const bad_tails[] = {
        "offset=01",        "offset=-1",         "offset=",
        "offset=1x",        "offset=0&wait=nan", "offset=0&wait=-1",
        "offset=0&wait=21", "offset=0&wait=",    "offset=0&wait=1s",
    };
    for (size_t i = 0; i < sizeof(bad_tails) / sizeof(bad_tails[0]); i++) {
        char path[200];
        snprintf(path, sizeof(path), API "/runs/t1/0/log?%s", bad_tails[i]);
        r = call(e, "GET", path, NULL);
        if (r.status != 400)
            fprintf(stderr, "%s -> %d\n", bad_tails[i], r.status);
        assert_int_equal(r.status, 400);
        fake_resp_free(&r);
    }
    /* bad offset syntax is 400 */
    struct fake_call bad = {.method = "POST",
                            .path = API "/runs/t1/0/log?offset=-1",
                            .body = "x",
                            .body_len = 1,
                            .scopes = "worker:linux"};
    r = fake_host_request(e->fh, &bad);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    /* after the report the log is complete (and compressed), still readable */
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 200);
    fake_host_run_pending(e->fh);
    fake_host_advance(e->fh, 1000); /* packing waits a second for company */
    fake_host_run_pending(e->fh);
    /* packed into one blob (100 bytes: as they are); the chunks are gone */
    assert_int_equal(count_rows(e, "SELECT count(*) FROM dispatch_logs_packed"
                                   " WHERE codec = 'raw' AND size = 100"),
                     1);
    assert_int_equal(count_rows(e, "SELECT count(*) FROM dispatch_log_chunks"), 0);
    r = call(e, "GET", API "/runs/t1/0/log?offset=0", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.raw_len, 100);
    assert_memory_equal(r.raw, "hello world", 11);
    assert_non_null(strstr(r.headers, "X-Log-Complete: 1"));
    fake_resp_free(&r);
    r = put_log(e, "t1", 100, "more");
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);
}

/* A log big enough for xz: packed compressed, read back whole and by offset. */
static void test_log_packed_xz(void **state)
{
    struct env *e = env_new_in("lease = 10s\n", NULL);
    size_t len = 100000, at = 0;
    char *text = malloc(len + 1);
    struct fake_resp r;
    json_t *tasks;

    (void)state;
    assert_non_null(text);
    for (int i = 0; at < len; i++)
        at += (size_t)snprintf(text + at, len + 1 - at, "line %d of the build\n", i);
    text[len] = '\0';
    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    for (size_t off = 0; off < len; off += 30000) {
        char save = text[off + 30000 < len ? off + 30000 : len];
        text[off + 30000 < len ? off + 30000 : len] = '\0';
        r = put_log(e, "t1", off, text + off);
        assert_int_equal(r.status, 200);
        fake_resp_free(&r);
        text[off + 30000 < len ? off + 30000 : len] = save;
    }
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 200);
    fake_host_run_pending(e->fh);
    fake_host_advance(e->fh, 1000);
    fake_host_run_pending(e->fh);
    assert_int_equal(count_rows(e, "SELECT count(*) FROM dispatch_logs_packed WHERE codec = 'xz'"
                                   " AND length(data) < 50000"),
                     1);
    expect_log(e, text);
    r = call(e, "GET", API "/runs/t1/0/log?offset=99990", NULL);
    assert_int_equal(r.raw_len, 10);
    assert_memory_equal(r.raw, text + 99990, 10);
    assert_non_null(strstr(r.headers, "X-Log-Complete: 1"));
    fake_resp_free(&r);
    free(text);
    env_free(e);
}

static void sha256_hex(const char *data, char out[65])
{
    uint8_t md[HASH_MAX_LEN];

    assert_int_equal(hash_buf(HASH_SHA256, data, strlen(data), md, NULL), RD_OK);
    hash_hex(md, hash_len(HASH_SHA256), out);
}

static struct fake_resp put_artifact(struct env *e, const char *name, const char *data,
                                     const char *sha)
{
    char path[300], hdr[120];
    struct fake_call c = {.method = "PUT",
                          .path = path,
                          .body = data,
                          .body_len = strlen(data),
                          .headers = hdr,
                          .scopes = "worker:linux"};
    snprintf(path, sizeof(path), API "/runs/t1/0/artifacts/%s", name);
    snprintf(hdr, sizeof(hdr), "X-Content-SHA256: %s", sha);
    return fake_host_request(e->fh, &c);
}

static void test_artifacts(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    char sha[65], other[65];
    json_t *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    sha256_hex("payload", sha);
    sha256_hex("something else", other);
    r = put_artifact(e, "out.bin", "payload", other);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.body, "error"), "code")),
        "hash_mismatch");
    fake_resp_free(&r);
    r = put_artifact(e, ".hidden", "payload", sha);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = put_artifact(e, "%2E%2E%2Fescape", "payload", sha);
    assert_true(r.status == 400 || r.status == 404);
    fake_resp_free(&r);
    r = put_artifact(e, "out.bin", "payload", "nothex");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs/t1/0/artifacts", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "artifacts")), 0);
    fake_resp_free(&r);
    r = put_artifact(e, "out.bin", "payload", sha);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.body, "sha256")), sha);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs/t1/0/artifacts", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "artifacts")), 1);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs/t1/0/artifacts/missing", NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    /* nothing but the stored artifact in the run's directory */
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/dispatch/artifacts/t1@0/out.bin", fake_host_dir(e->fh));
    char *text = NULL;
    FILE *f = fopen(dir, "r");
    assert_non_null(f);
    text = calloc(1, 32);
    assert_int_equal(fread(text, 1, 31, f), 7);
    fclose(f);
    assert_string_equal(text, "payload");
    free(text);
}

static void test_direct_enqueue_and_external(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    char st[32];

    r = call(e, "POST", API "/enqueue",
             "{\"taskId\":\"ext-1\",\"workerType\":\"linux\",\"label\":\"odd-os\"}");
    assert_int_equal(r.status, 201);
    fake_resp_free(&r);
    r = call(e, "POST", API "/enqueue",
             "{\"taskId\":\"ext-1\",\"workerType\":\"linux\",\"label\":\"odd-os\"}");
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    r = call(e, "POST", API "/enqueue", "{\"taskId\":\"bad id\",\"workerType\":\"linux\"}");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/enqueue",
                       "{\"taskId\":\"x\",\"workerType\":\"linux\",\"label\":\"l\"}",
                       "worker:linux");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/runs/ext-1/0/external", "{\"name\":\"box\"}",
                       "worker:linux");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "workerId")), "external:box");
    fake_resp_free(&r);
    r = fake_host_call(e->fh, "POST", API "/runs/ext-1/0/external", "{\"name\":\"box\"}",
                       "worker:linux");
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);
    assert_int_equal(report(e, "ext-1", 0, "{\"state\":\"completed\",\"exitCode\":0}"), 200);
    assert_string_equal(run_state(e, "ext-1", 0, st), "resolved");
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.resolved"), 1);
    assert_int_equal(e->g.n_resolved, 0); /* graph never heard of it */
}

static void test_leases_survive_restart(void **state)
{
    char dir[] = "/tmp/dispatch-unit-XXXXXX";
    struct env *e;
    char st[32];
    json_t *tasks;

    (void)state;
    assert_non_null(mkdtemp(dir));
    e = env_new_in(CONF, dir);
    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    assert_int_equal(json_array_size(tasks), 1);
    json_decref(tasks);
    env_free(e);
    /* a restarted daemon honours the lease until it ends */
    e = env_new_in(CONF, dir);
    fake_host_advance(e->fh, 5000);
    fake_host_run_pending(e->fh);
    assert_string_equal(run_state(e, "t1", 0, st), "claimed");
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 200);
    assert_int_equal(e->g.n_resolved, 1);
    env_free(e);
    char cmd[100];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_status_and_lists(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    json_t *st, *tasks;

    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    enqueue(e, "t2", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    st = fake_host_status(e->fh);
    assert_int_equal(json_integer_value(json_object_get(st, "pending")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "claimed")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "workers")), 1);
    json_decref(st);
    r = call(e, "GET", API "/workers", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(r.body, "workers"), 0), "current")),
                     1);
    fake_resp_free(&r);
    r = call(e, "GET", API "/queue", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r.body, "types"), 0), "pending")),
                     1);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs?state=pending", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "runs")), 1);
    fake_resp_free(&r);
    r = call(e, "GET", API "/runs?state=bogus", NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = call(e, "GET", API "/workers/nobody", NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
}

/* talos reports a machine problem: the worker is quarantined. */
static void test_talos_machine_problem_quarantines(void **state)
{
    struct env *e = *state;
    struct fake_resp r;
    json_t *tasks = claim(e, "w-sick", 1);

    json_decref(tasks);
    assert_int_equal(
        rd_publish(fake_host_handle(e->fh), "talos.classified",
                   json_pack("{s:s, s:s}", "verdict", "regression", "worker", "w-sick")),
        RD_OK);
    assert_int_equal(
        rd_publish(fake_host_handle(e->fh), "talos.classified",
                   json_pack("{s:s, s:s}", "verdict", "machine-problem", "worker", "w-sick")),
        RD_OK);
    fake_host_run_pending(e->fh);
    r = call(e, "GET", API "/workers/w-sick", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.body, "quarantine"), "by")), "talos");
    fake_resp_free(&r);
    assert_int_equal(fake_host_n_events(e->fh, "dispatch.quarantined"), 1);
}

/* Artifacts and logs of runs resolved longer ago than artifact_expiry go. */
static void test_artifact_expiry(void **state)
{
    struct env *e = env_new_in("lease = 10s\nartifact_expiry = 1h\n", NULL);
    struct fake_resp r;
    char sha[65], path[600];
    json_t *tasks;
    FILE *f;

    (void)state;
    enqueue(e, "t1", 0, "main", 0, FAKE_HOST_EPOCH_MS);
    tasks = claim(e, "w1", 1);
    json_decref(tasks);
    sha256_hex("old", sha);
    r = put_artifact(e, "old.bin", "old", sha);
    assert_int_equal(r.status, 201);
    fake_resp_free(&r);
    r = put_log(e, "t1", 0, "old log");
    fake_resp_free(&r);
    assert_int_equal(report(e, "t1", 0, "{\"state\":\"completed\"}"), 200);
    snprintf(path, sizeof(path), "%s/dispatch/artifacts/t1@0/old.bin", fake_host_dir(e->fh));
    f = fopen(path, "r");
    assert_non_null(f);
    fclose(f);
    fake_host_advance(e->fh, 2 * 3600 * 1000);
    fake_host_run_pending(e->fh);
    assert_null(fopen(path, "r"));
    r = call(e, "GET", API "/runs/t1/0/artifacts", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "artifacts")), 0);
    fake_resp_free(&r);
    assert_int_equal(count_rows(e, "SELECT count(*) FROM dispatch_log_chunks"), 0);
    assert_int_equal(count_rows(e, "SELECT count(*) FROM dispatch_logs_packed"), 0);
    env_free(e);
}

/* Every host call of a load, failed in turn: the load fails cleanly and
   leaves nothing behind, until a run with nothing injected loads. */
static void test_load_fails_cleanly(void **state)
{
    static const int codes[] = {RD_EIO, RD_ENOMEM};
    struct fake_graph g = {0};
    unsigned n;

    (void)state;
    g.vt = (struct rd_taskruns){.ctx = &g, .started = fg_started, .resolved = fg_resolved};
    for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
        int tolerated = 0;
        for (n = 1; n < 200; n++) {
            struct fake_host *fh = fake_host_new("dispatch", NULL);
            int rc;

            assert_non_null(fh);
            assert_int_equal(fake_host_provide(fh, RD_TASKRUNS_SERVICE, 1, &g.vt), RD_OK);
            fake_host_fail_call(fh, n, codes[c]);
            rc = fake_host_load(fh, rd_module_entry());
            if (fake_host_calls(fh) < n) {
                assert_int_equal(rc, RD_OK);
                fake_host_free(fh);
                break;
            }
            /* One call may fail harmlessly: looking up graph.runs, whose
               absence means "no graph loaded" (direct runs only). */
            if (rc == RD_OK) {
                json_t *st = fake_host_status(fh);
                bool no_graph = json_is_false(json_object_get(st, "graph"));
                json_decref(st);
                if (!no_graph || tolerated++)
                    fail_msg("host call %u failed with %d, yet the load succeeded", n, codes[c]);
            }
            fake_host_free(fh);
        }
        assert_true(n > 10 && n < 200);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_idempotent_and_fifo_across_branches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claim_capacity_and_refused_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_resolves_in_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_automatic_and_manual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_chunks, setup, teardown),
        cmocka_unit_test(test_log_packed_xz),
        cmocka_unit_test_setup_teardown(test_artifacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_enqueue_and_external, setup, teardown),
        cmocka_unit_test(test_leases_survive_restart),
        cmocka_unit_test_setup_teardown(test_status_and_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_talos_machine_problem_quarantines, setup, teardown),
        cmocka_unit_test(test_artifact_expiry),
        cmocka_unit_test(test_load_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
