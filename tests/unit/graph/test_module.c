/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/graph/test_module.c -- the graph module through the fake host
 * (real SQLite, manual clock) with a fake dispatch.queue that records what
 * graph hands it: submission and validation over the API, the state
 * machine driven through the graph.runs service exactly as dispatch drives
 * it (started/resolved inside a write transaction), dependents released,
 * blocked, retried; breakpoints, final tasks, all-completed vs
 * all-resolved, backfill, rerun (with its effect on dependents), cancel,
 * coalescing, adding tasks, deadlines, templates, events and metrics,
 * requeue at restart, graph alone (no queue), and failure injection.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/services/tasks.h"
#include "tests/fakes/fake_host.h"

const struct rd_module *rd_module_entry(void);

#define API "/api/v1/graph"
#define SUBMIT "graph:submit"
#define OPERATE "graph:operate"
#define P "\"payload\":{\"command\":[\"true\"]}"
#define MAXQ 256

/* ------------------------------------------------------ a fake dispatch */

struct fq {
    struct rd_taskqueue vt;
    char queued[MAXQ][96]; /* "task/run" in enqueue order */
    json_t *payloads[MAXQ];
    size_t n_queued;
    char canceled[MAXQ][96];
    size_t n_canceled;
    int fail_enqueue; /* non-zero: enqueue returns it */
};

static int fq_enqueue(void *ctx, struct rd_tx *tx, const struct rd_task_run_spec *run)
{
    struct fq *q = ctx;

    (void)tx;
    if (q->fail_enqueue)
        return q->fail_enqueue;
    assert_true(q->n_queued < MAXQ);
    assert_non_null(run->payload);
    assert_non_null(run->worker_type);
    assert_non_null(run->branch);
    snprintf(q->queued[q->n_queued], sizeof(q->queued[0]), "%s/%u", run->task_id, run->run_id);
    q->payloads[q->n_queued] = json_deep_copy(run->payload);
    q->n_queued++;
    return RD_OK;
}

static int fq_cancel(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id)
{
    struct fq *q = ctx;

    (void)tx;
    assert_true(q->n_canceled < MAXQ);
    snprintf(q->canceled[q->n_canceled++], sizeof(q->canceled[0]), "%s/%u", task_id, run_id);
    return RD_ENOTFOUND; /* "not known": graph must not mind */
}

static void fq_init(struct fq *q)
{
    memset(q, 0, sizeof(*q));
    q->vt = (struct rd_taskqueue){.ctx = q, .enqueue = fq_enqueue, .cancel = fq_cancel};
}

static void fq_fini(struct fq *q)
{
    for (size_t i = 0; i < q->n_queued; i++)
        json_decref(q->payloads[i]);
}

static bool fq_has(const struct fq *q, const char *task, unsigned run)
{
    char want[96];

    snprintf(want, sizeof(want), "%s/%u", task, run);
    for (size_t i = 0; i < q->n_queued; i++)
        if (strcmp(q->queued[i], want) == 0)
            return true;
    return false;
}

static size_t fq_count(const struct fq *q, const char *task, unsigned run)
{
    char want[96];
    size_t n = 0;

    snprintf(want, sizeof(want), "%s/%u", task, run);
    for (size_t i = 0; i < q->n_queued; i++)
        n += strcmp(q->queued[i], want) == 0;
    return n;
}

/* ------------------------------------------------------------- fixture */

struct t {
    struct fake_host *fh;
    struct fq q;
};

static struct fake_host *load_in(const char *conf, struct fq *q, const char *dir)
{
    struct fake_host *fh =
        dir ? fake_host_new_in("graph", conf, dir) : fake_host_new("graph", conf);

    assert_non_null(fh);
    if (q)
        assert_int_equal(fake_host_provide(fh, RD_TASKQUEUE_SERVICE, RD_TASKQUEUE_VERSION, &q->vt),
                         RD_OK);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    return fh;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    char conf[512];

    fq_init(&t->q);
    snprintf(conf, sizeof(conf), "templates_dir = %s/etc/graph\nmax_tasks = 200\n", TOP_SRCDIR);
    t->fh = load_in(conf, &t->q, NULL);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    fake_host_free(t->fh);
    fq_fini(&t->q);
    free(t);
    return 0;
}

/* --------------------------------------------------------------- helpers */

static const char *err_code(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

/* POST a graph; returns its id (static storage, one at a time per slot). */
static const char *submit(struct fake_host *fh, const char *body)
{
    static char ids[4][16];
    static int slot;
    struct fake_resp r = fake_host_call(fh, "POST", API "/graphs", body, SUBMIT);
    char *id = ids[slot++ % 4];

    if (r.status != 201) {
        char *b = json_dumps(r.body, 0);
        fail_msg("submit -> %d %s", r.status, b);
    }
    snprintf(id, 16, "%s", json_string_value(json_object_get(r.body, "id")));
    fake_resp_free(&r);
    return id;
}

static json_t *get_graph(struct fake_host *fh, const char *gid)
{
    char path[128];
    struct fake_resp r;
    json_t *g;

    snprintf(path, sizeof(path), API "/graphs/%s", gid);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    g = json_incref(r.body);
    fake_resp_free(&r);
    return g;
}

/* The id of the task labelled label (static storage, rotating). */
static const char *tid(struct fake_host *fh, const char *gid, const char *label)
{
    static char ids[8][80];
    static int slot;
    json_t *g = get_graph(fh, gid), *t;
    char *out = ids[slot++ % 8];
    size_t i;

    out[0] = '\0';
    json_array_foreach(json_object_get(g, "tasks"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "label")), label) == 0)
            snprintf(out, 80, "%s", json_string_value(json_object_get(t, "id")));
    }
    json_decref(g);
    if (!out[0])
        fail_msg("no task %s in graph %s", label, gid);
    return out;
}

static const char *tstate(struct fake_host *fh, const char *gid, const char *label)
{
    static char states[8][24];
    static int slot;
    json_t *g = get_graph(fh, gid), *t;
    char *out = states[slot++ % 8];
    size_t i;

    out[0] = '\0';
    json_array_foreach(json_object_get(g, "tasks"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "label")), label) == 0)
            snprintf(out, 24, "%s", json_string_value(json_object_get(t, "state")));
    }
    json_decref(g);
    return out;
}

static const char *gstate(struct fake_host *fh, const char *gid)
{
    static char s[24];
    json_t *g = get_graph(fh, gid);

    snprintf(s, sizeof(s), "%s", json_string_value(json_object_get(g, "state")));
    json_decref(g);
    return s;
}

struct runcall {
    const struct rd_taskruns *runs;
    const char *task, *state, *reason, *worker;
    uint32_t run;
    bool start;
};

static int runcall_tx(struct rd_tx *tx, void *arg)
{
    struct runcall *c = arg;

    if (c->start)
        return c->runs->started(c->runs->ctx, tx, c->task, c->run, c->worker);
    return c->runs->resolved(c->runs->ctx, tx, c->task, c->run, c->state, c->reason,
                             c->state && strcmp(c->state, "failed") == 0 ? 1 : 0);
}

static const struct rd_taskruns *runs_of(struct fake_host *fh)
{
    const struct rd_taskruns *r =
        rd_service_get(fake_host_handle(fh), RD_TASKRUNS_SERVICE, RD_TASKRUNS_VERSION);
    assert_non_null(r);
    return r;
}

/* dispatch's calls, each in a write transaction of its own */
static int start_run(struct fake_host *fh, const char *task, uint32_t run)
{
    struct runcall c = {
        .runs = runs_of(fh), .task = task, .run = run, .start = true, .worker = "w-1"};
    return rd_store_write(fake_host_handle(fh), runcall_tx, &c);
}

static int end_run(struct fake_host *fh, const char *task, uint32_t run, const char *state,
                   const char *reason)
{
    struct runcall c = {
        .runs = runs_of(fh), .task = task, .run = run, .state = state, .reason = reason};
    return rd_store_write(fake_host_handle(fh), runcall_tx, &c);
}

/* claim and finish run 0 (or run) of a task */
static void run_to(struct fake_host *fh, const char *task, uint32_t run, const char *state,
                   const char *reason)
{
    assert_int_equal(start_run(fh, task, run), RD_OK);
    assert_int_equal(end_run(fh, task, run, state, reason), RD_OK);
}

static int op(struct fake_host *fh, const char *what, const char *id, const char *verb,
              const char *body)
{
    char path[160];
    struct fake_resp r;
    int status;

    snprintf(path, sizeof(path), API "/%s/%s/%s", what, id, verb);
    r = fake_host_call(fh, "POST", path, body, OPERATE);
    status = r.status;
    fake_resp_free(&r);
    return status;
}

/* ----------------------------------------------------------------- tests */

static void test_linear_graph_runs_to_completion(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"name\":\"push 1\",\"branch\":\"main\",\"tasks\":["
                                 "{\"label\":\"build\",\"workerType\":\"linux64-build\"," P "},"
                                 "{\"label\":\"test\",\"workerType\":\"linux64-test\","
                                 "\"dependencies\":[\"build\"]," P "}]}");
    const char *build = tid(fh, gid, "build"), *test = tid(fh, gid, "test");
    const json_t *ev;
    json_t *g;

    assert_string_equal(tstate(fh, gid, "build"), "pending");
    assert_string_equal(tstate(fh, gid, "test"), "unscheduled");
    assert_int_equal(t->q.n_queued, 1);
    assert_true(fq_has(&t->q, build, 0));
    ev = fake_host_event(fh, "graph.submitted", 0);
    assert_string_equal(json_string_value(json_object_get(ev, "graphId")), gid);
    assert_int_equal(fake_host_n_events(fh, "task.pending"), 1);

    fake_host_advance(fh, 2000);
    assert_int_equal(start_run(fh, build, 0), RD_OK);
    assert_string_equal(tstate(fh, gid, "build"), "running");
    ev = fake_host_event(fh, "task.running", 0);
    assert_string_equal(json_string_value(json_object_get(ev, "workerId")), "w-1");
    fake_host_advance(fh, 3000);
    assert_int_equal(end_run(fh, build, 0, "completed", "completed"), RD_OK);
    assert_string_equal(tstate(fh, gid, "build"), "completed");
    assert_string_equal(tstate(fh, gid, "test"), "pending");
    assert_true(fq_has(&t->q, test, 0));
    assert_string_equal(gstate(fh, gid), "running");
    run_to(fh, test, 0, "completed", NULL);
    assert_string_equal(gstate(fh, gid), "completed");
    ev = fake_host_event(fh, "graph.resolved", 0);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "state")), "completed");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ev, "counts"), "completed")), 2);
    assert_int_equal(json_integer_value(json_object_get(ev, "durationMs")), 5000);
    assert_int_equal(fake_host_n_events(fh, "task.resolved"), 2);
    /* figures: wait 2 s and run 3 s of build are in the run and the metrics */
    g = get_graph(fh, gid);
    assert_int_equal(json_integer_value(json_object_get(g, "durationMs")), 5000);
    {
        json_t *b = json_array_get(json_object_get(g, "tasks"), 0);
        json_t *lr = json_object_get(b, "lastRun");
        assert_int_equal(json_integer_value(json_object_get(lr, "waitMs")), 2000);
        assert_int_equal(json_integer_value(json_object_get(lr, "runMs")), 3000);
        assert_non_null(
            strstr(json_string_value(json_object_get(lr, "logUrl")), "/api/v1/dispatch/runs/"));
    }
    json_decref(g);
    assert_true(fake_host_metric(fh, "task_wait_seconds", NULL) == 2);
    assert_true(fake_host_metric(fh, "task_run_seconds", "state=completed") == 2);
    assert_true(fake_host_metric(fh, "graph_duration_seconds", "outcome=completed") == 1);
    assert_true(fake_host_metric(fh, "graphs_submitted", NULL) == 1);
    assert_true(fake_host_metric(fh, "tasks_resolved", "state=completed") == 2);
}

static void test_validation_stores_nothing(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    struct fake_resp r;
    const json_t *problems;

    r = fake_host_call(
        fh, "POST", API "/graphs",
        "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":[\"b\"]," P
        "},{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}",
        SUBMIT);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_code(&r), "invalid_graph");
    problems = json_object_get(json_object_get(r.body, "error"), "problems");
    assert_int_equal(json_array_size(problems), 1);
    assert_non_null(strstr(json_string_value(json_array_get(problems, 0)), "cycle"));
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/graphs",
                       "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                       "},{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":[\"zz\"]," P
                       "},{\"label\":\"c\",\"workerType\":\"w\",\"chunks\":0," P "}]}",
                       SUBMIT);
    assert_int_equal(r.status, 400);
    problems = json_object_get(json_object_get(r.body, "error"), "problems");
    assert_true(json_array_size(problems) >= 2);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(r.body, "error"), "message")),
               "duplicate label"));
    fake_resp_free(&r);
    /* over max_tasks = 200 */
    r = fake_host_call(fh, "POST", API "/graphs",
                       "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"chunks\":100," P
                       "},{\"label\":\"b\",\"workerType\":\"w\",\"chunks\":100," P
                       "},{\"label\":\"c\",\"workerType\":\"w\"," P "}]}",
                       SUBMIT);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    /* scopes */
    r = fake_host_call(fh, "POST", API "/graphs",
                       "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
                       "graph:operate");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
    /* nothing stored, nothing published, nothing queued */
    r = fake_host_call(fh, "GET", API "/graphs", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "graphs")), 0);
    fake_resp_free(&r);
    assert_int_equal(fake_host_n_events(fh, NULL), 0);
    assert_int_equal(t->q.n_queued, 0);
    r = fake_host_call(fh, "GET", API "/graphs/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(err_code(&r), "unknown_graph");
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/tasks/..%2f", NULL, NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/graphs/..%2f/rerun-failed", NULL, OPERATE);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?limit=0", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?limit=5x", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?before=99999999999999999999", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?state=weird", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
}

/* A smoketest others depend on fails: dependents (and theirs) are blocked,
   not run; an all-resolved task runs anyway; the final task runs after the
   failure; the graph fails. */
static void test_smoketest_failure_blocks_final_runs(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(
        fh, "{\"tasks\":[{\"label\":\"smoke\",\"workerType\":\"w\"," P "},"
            "{\"label\":\"suite\",\"workerType\":\"w\",\"chunks\":2,\"dependencies\":[\"smoke\"]," P
            "},{\"label\":\"report\",\"workerType\":\"w\",\"dependencies\":[\"suite\"]," P "},"
            "{\"label\":\"triage\",\"workerType\":\"w\",\"requires\":\"all-resolved\","
            "\"dependencies\":[\"smoke\"]," P "},"
            "{\"label\":\"analysis\",\"workerType\":\"w\",\"final\":true," P "}]}");
    const char *smoke = tid(fh, gid, "smoke"), *triage = tid(fh, gid, "triage");
    const char *analysis = tid(fh, gid, "analysis");

    assert_string_equal(tstate(fh, gid, "analysis"), "unscheduled");
    run_to(fh, smoke, 0, "failed", "failed");
    assert_string_equal(tstate(fh, gid, "suite-1/2"), "blocked");
    assert_string_equal(tstate(fh, gid, "suite-2/2"), "blocked");
    assert_string_equal(tstate(fh, gid, "report"), "blocked");
    assert_string_equal(tstate(fh, gid, "triage"), "pending");
    /* the final task waits for triage */
    assert_string_equal(tstate(fh, gid, "analysis"), "unscheduled");
    assert_false(fq_has(&t->q, analysis, 0));
    run_to(fh, triage, 0, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "analysis"), "pending");
    assert_true(fq_has(&t->q, analysis, 0));
    assert_string_equal(gstate(fh, gid), "running");
    run_to(fh, analysis, 0, "completed", NULL);
    assert_string_equal(gstate(fh, gid), "failed");
    {
        json_t *g = get_graph(fh, gid), *c = json_object_get(g, "counts");
        assert_int_equal(json_integer_value(json_object_get(c, "blocked")), 3);
        assert_int_equal(json_integer_value(json_object_get(c, "failed")), 1);
        assert_int_equal(json_integer_value(json_object_get(c, "completed")), 2);
        json_decref(g);
    }
    /* blocked tasks were never handed to dispatch */
    assert_int_equal(t->q.n_queued, 3);
}

static void test_retries(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid =
        submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"retries\":2," P
                   "},{\"label\":\"b\",\"workerType\":\"w\",\"retries\":3," P
                   "},{\"label\":\"c\",\"workerType\":\"w\"," P "}]}");
    const char *a = tid(fh, gid, "a"), *b = tid(fh, gid, "b"), *c = tid(fh, gid, "c");
    json_t *task;
    struct fake_resp r;
    char path[128];

    /* retried while retries remain */
    run_to(fh, a, 0, "exception", "claim-expired");
    assert_string_equal(tstate(fh, gid, "a"), "pending");
    assert_true(fq_has(&t->q, a, 1));
    run_to(fh, a, 1, "exception", "worker-shutdown");
    assert_true(fq_has(&t->q, a, 2));
    run_to(fh, a, 2, "exception", "intermittent-task");
    assert_string_equal(tstate(fh, gid, "a"), "exception");
    assert_false(fq_has(&t->q, a, 3));
    snprintf(path, sizeof(path), API "/tasks/%s", a);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    task = json_object_get(r.body, "runs");
    assert_int_equal(json_array_size(task), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(task, 1), "reasonCreated")), "retry");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(task, 2), "reasonResolved")),
        "intermittent-task");
    fake_resp_free(&r);
    /* never retried: deadline-exceeded, malformed-payload, failed */
    run_to(fh, b, 0, "exception", "deadline-exceeded");
    assert_string_equal(tstate(fh, gid, "b"), "exception");
    assert_false(fq_has(&t->q, b, 1));
    run_to(fh, c, 0, "failed", NULL);
    assert_string_equal(tstate(fh, gid, "c"), "failed");
    assert_false(fq_has(&t->q, c, 1));
}

static void test_service_refusals(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid =
        submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                   "},{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}");
    const char *a = tid(fh, gid, "a"), *b = tid(fh, gid, "b");
    size_t n_events;

    assert_int_equal(start_run(fh, "nope.1", 0), RD_ENOTFOUND);
    assert_int_equal(start_run(fh, a, 1), RD_ENOTFOUND);
    assert_int_equal(start_run(fh, b, 0), RD_ENOTFOUND); /* unscheduled: no run yet */
    assert_int_equal(end_run(fh, a, 0, "completed", NULL), RD_ECONFLICT); /* not claimed */
    assert_int_equal(start_run(fh, a, 0), RD_OK);
    assert_int_equal(start_run(fh, a, 0), RD_ECONFLICT); /* claimed twice */
    assert_int_equal(end_run(fh, a, 0, "done", NULL), RD_EINVAL);
    assert_int_equal(end_run(fh, a, 0, "exception", "canceled"), RD_EINVAL);
    assert_int_equal(end_run(fh, a, 0, "completed", NULL), RD_OK);
    n_events = fake_host_n_events(fh, NULL);
    /* no task runs twice to completion */
    assert_int_equal(end_run(fh, a, 0, "completed", NULL), RD_ECONFLICT);
    assert_int_equal(end_run(fh, a, 0, "failed", NULL), RD_ECONFLICT);
    assert_int_equal(fake_host_n_events(fh, NULL), n_events);
    assert_string_equal(tstate(fh, gid, "a"), "completed");
}

static void test_breakpoint(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P "},"
                                 "{\"label\":\"sign-off\",\"workerType\":\"w\",\"breakpoint\":true,"
                                 "\"dependencies\":[\"build\"]," P "},"
                                 "{\"label\":\"publish\",\"workerType\":\"w\",\"dependencies\":"
                                 "[\"sign-off\"]," P "}]}");
    const char *build = tid(fh, gid, "build"), *so = tid(fh, gid, "sign-off");

    /* not waiting yet: release refused */
    assert_int_equal(op(fh, "tasks", so, "release", NULL), 409);
    run_to(fh, build, 0, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "sign-off"), "waiting");
    assert_false(fq_has(&t->q, so, 0)); /* a person, not a worker, finishes it */
    assert_int_equal(fake_host_n_events(fh, "task.waiting"), 1);
    assert_string_equal(gstate(fh, gid), "running");
    assert_int_equal(op(fh, "tasks", so, "release", "{\"state\":\"maybe\"}"), 400);
    assert_int_equal(op(fh, "tasks", so, "release", NULL), 200);
    assert_string_equal(tstate(fh, gid, "sign-off"), "completed");
    assert_string_equal(tstate(fh, gid, "publish"), "pending");
    assert_int_equal(op(fh, "tasks", so, "release", NULL), 409);
}

static void test_breakpoint_released_as_failed(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"tasks\":[{\"label\":\"gate\",\"workerType\":\"w\","
                                 "\"breakpoint\":true," P "},{\"label\":\"after\",\"workerType\":"
                                 "\"w\",\"dependencies\":[\"gate\"]," P "}]}");

    assert_string_equal(tstate(fh, gid, "gate"), "waiting");
    assert_int_equal(op(fh, "tasks", tid(fh, gid, "gate"), "release", "{\"state\":\"failed\"}"),
                     200);
    assert_string_equal(tstate(fh, gid, "after"), "blocked");
    assert_string_equal(gstate(fh, gid), "failed");
}

static void test_inactive_backfill(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(
        fh, "{\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P "},"
            "{\"label\":\"test-a\",\"workerType\":\"w\",\"inactive\":true,\"dependencies\":"
            "[\"build\"]," P "},{\"label\":\"test-b\",\"workerType\":\"w\",\"inactive\":true,"
            "\"dependencies\":[\"build\"]," P "},{\"label\":\"lint\",\"workerType\":\"w\","
            "\"inactive\":true," P "},{\"label\":\"after-a\",\"workerType\":\"w\","
            "\"dependencies\":[\"test-a\"]," P "}]}");
    const char *build = tid(fh, gid, "build");
    struct fake_resp r;
    char path[128];

    assert_string_equal(tstate(fh, gid, "test-a"), "inactive");
    assert_string_equal(tstate(fh, gid, "lint"), "inactive");
    run_to(fh, build, 0, "completed", NULL);
    /* only inactive work left: the graph resolves */
    assert_string_equal(tstate(fh, gid, "test-a"), "inactive");
    assert_string_equal(tstate(fh, gid, "after-a"), "unscheduled");
    assert_string_equal(gstate(fh, gid), "completed");
    /* backfill by pattern: both tests run (their dependency is done) */
    snprintf(path, sizeof(path), API "/graphs/%s/activate", gid);
    r = fake_host_call(fh, "POST", path, "{\"pattern\":\"test-*\"}", OPERATE);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 2);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", path, "{\"glob\":\"x\"}", OPERATE);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    assert_string_equal(tstate(fh, gid, "test-a"), "pending");
    assert_string_equal(tstate(fh, gid, "test-b"), "pending");
    assert_string_equal(tstate(fh, gid, "lint"), "inactive");
    assert_string_equal(gstate(fh, gid), "running");
    assert_int_equal(fake_host_n_events(fh, "graph.reopened"), 1);
    run_to(fh, tid(fh, gid, "test-a"), 0, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "after-a"), "pending");
    /* one by one */
    assert_int_equal(op(fh, "tasks", tid(fh, gid, "lint"), "activate", NULL), 200);
    assert_string_equal(tstate(fh, gid, "lint"), "pending");
    assert_int_equal(op(fh, "tasks", tid(fh, gid, "lint"), "activate", NULL), 409);
}

/* Rerun: the failed dependency is rerun; what it blocked goes back to
   unscheduled and runs once the rerun completes; an edited payload is used. */
static void test_rerun_and_dependents(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"tasks\":[{\"label\":\"smoke\",\"workerType\":\"w\"," P "},"
                                 "{\"label\":\"t1\",\"workerType\":\"w\",\"dependencies\":"
                                 "[\"smoke\"]," P "},{\"label\":\"t2\",\"workerType\":\"w\","
                                 "\"dependencies\":[\"t1\"]," P "}]}");
    const char *smoke = tid(fh, gid, "smoke"), *t1 = tid(fh, gid, "t1");
    struct fake_resp r;
    char path[128];

    assert_int_equal(op(fh, "tasks", smoke, "rerun", NULL), 409); /* pending */
    run_to(fh, smoke, 0, "failed", NULL);
    assert_string_equal(tstate(fh, gid, "t2"), "blocked");
    assert_string_equal(gstate(fh, gid), "failed");
    assert_int_equal(op(fh, "tasks", t1, "rerun", NULL), 409); /* blocked: rerun smoke */
    assert_int_equal(op(fh, "tasks", smoke, "rerun", "{\"payload\":{\"command\":7}}"), 400);
    assert_int_equal(op(fh, "tasks", smoke, "rerun", "{\"payload\":{\"command\":[\"retry\"]}}"),
                     200);
    assert_string_equal(tstate(fh, gid, "smoke"), "pending");
    assert_string_equal(tstate(fh, gid, "t1"), "unscheduled");
    assert_string_equal(tstate(fh, gid, "t2"), "unscheduled");
    assert_string_equal(gstate(fh, gid), "running");
    assert_true(fq_has(&t->q, smoke, 1));
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(t->q.payloads[t->q.n_queued - 1], "command"), 0)),
                        "retry");
    snprintf(path, sizeof(path), API "/tasks/%s", smoke);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r.body, "runs"), 1), "reasonCreated")),
                        "rerun");
    assert_int_equal(json_array_size(json_object_get(r.body, "dependents")), 1);
    fake_resp_free(&r);
    run_to(fh, smoke, 1, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "t1"), "pending");
    run_to(fh, t1, 0, "completed", NULL);
    run_to(fh, tid(fh, gid, "t2"), 0, "completed", NULL);
    assert_string_equal(gstate(fh, gid), "completed");
    /* rerun of a completed task: its dependents keep their results */
    assert_int_equal(op(fh, "tasks", smoke, "rerun", NULL), 200);
    assert_string_equal(tstate(fh, gid, "t1"), "completed");
    assert_string_equal(tstate(fh, gid, "smoke"), "pending");
    run_to(fh, smoke, 2, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "t1"), "completed");
    assert_string_equal(gstate(fh, gid), "completed");
}

static void test_rerun_failed_bulk(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                                 "},{\"label\":\"b\",\"workerType\":\"w\"," P
                                 "},{\"label\":\"c\",\"workerType\":\"w\"," P "}]}");
    struct fake_resp r;
    char path[128];

    run_to(fh, tid(fh, gid, "a"), 0, "failed", NULL);
    run_to(fh, tid(fh, gid, "b"), 0, "exception", "malformed-payload");
    run_to(fh, tid(fh, gid, "c"), 0, "completed", NULL);
    snprintf(path, sizeof(path), API "/graphs/%s/rerun-failed", gid);
    r = fake_host_call(fh, "POST", path, NULL, OPERATE);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 2);
    fake_resp_free(&r);
    assert_string_equal(tstate(fh, gid, "a"), "pending");
    assert_string_equal(tstate(fh, gid, "b"), "pending");
    assert_string_equal(tstate(fh, gid, "c"), "completed");
}

static void test_cancel(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid =
        submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                   "},{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P
                   "},{\"label\":\"c\",\"workerType\":\"w\"," P
                   "},{\"label\":\"fin\",\"workerType\":\"w\",\"final\":true," P "}]}");
    const char *a = tid(fh, gid, "a"), *c = tid(fh, gid, "c");
    char path[128];
    struct fake_resp r;

    assert_int_equal(start_run(fh, a, 0), RD_OK);
    assert_int_equal(op(fh, "tasks", a, "cancel", NULL), 200);
    assert_string_equal(tstate(fh, gid, "a"), "exception");
    assert_string_equal(tstate(fh, gid, "b"), "blocked");
    assert_int_equal(t->q.n_canceled, 1);
    assert_string_equal(t->q.canceled[0], a[0] ? t->q.canceled[0] : "");
    /* the worker's late report is refused */
    assert_int_equal(end_run(fh, a, 0, "completed", NULL), RD_ECONFLICT);
    assert_int_equal(op(fh, "tasks", a, "cancel", NULL), 409);
    /* cancel the graph: c ends, the final task never runs */
    snprintf(path, sizeof(path), API "/graphs/%s/cancel", gid);
    r = fake_host_call(fh, "POST", path, NULL, OPERATE);
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    assert_string_equal(tstate(fh, gid, "c"), "exception");
    assert_string_equal(tstate(fh, gid, "fin"), "exception");
    assert_false(fq_has(&t->q, tid(fh, gid, "fin"), 0));
    assert_string_equal(gstate(fh, gid), "canceled");
    assert_int_equal(t->q.n_canceled, 2);
    assert_int_equal(end_run(fh, c, 0, "completed", NULL), RD_ECONFLICT);
    r = fake_host_call(fh, "POST", path, NULL, OPERATE);
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);
    assert_string_equal(
        json_string_value(json_object_get(fake_host_event(fh, "graph.resolved", 0), "state")),
        "canceled");
}

static void test_coalescing(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *body = "{\"branch\":\"main\",\"template\":\"try\",\"coalesce\":true,\"tasks\":["
                       "{\"label\":\"build\",\"workerType\":\"w\"," P "},"
                       "{\"label\":\"test\",\"workerType\":\"w\",\"dependencies\":[\"build\"]," P
                       "},{\"label\":\"old-only\",\"workerType\":\"w\"," P "}]}";
    const char *body2 =
        "{\"branch\":\"main\",\"template\":\"try\",\"coalesce\":true,\"tasks\":["
        "{\"label\":\"build\",\"workerType\":\"w\"," P "},"
        "{\"label\":\"test\",\"workerType\":\"w\",\"dependencies\":[\"build\"]," P "}]}";
    char g1[16], g2[16];

    snprintf(g1, sizeof(g1), "%s", submit(fh, body));
    assert_int_equal(start_run(fh, tid(fh, g1, "old-only"), 0), RD_OK);
    snprintf(g2, sizeof(g2), "%s", submit(fh, body2));
    /* the older graph's not-started tasks with the new labels are superseded */
    assert_string_equal(tstate(fh, g1, "build"), "superseded");
    assert_string_equal(tstate(fh, g1, "test"), "superseded");
    assert_string_equal(tstate(fh, g1, "old-only"), "running");
    assert_int_equal(t->q.n_canceled, 1);
    assert_string_equal(tstate(fh, g2, "build"), "pending");
    assert_int_equal(end_run(fh, tid(fh, g1, "old-only"), 0, "completed", NULL), RD_OK);
    assert_string_equal(gstate(fh, g1), "completed");
}

static void test_add_tasks(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid =
        submit(fh, "{\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P
                   "},{\"label\":\"fin\",\"workerType\":\"w\",\"final\":true," P "}]}");
    char path[128];
    struct fake_resp r;

    snprintf(path, sizeof(path), API "/graphs/%s/tasks", gid);
    r = fake_host_call(fh, "POST", path,
                       "{\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P "}]}", SUBMIT);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_code(&r), "invalid_tasks");
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", path,
                       "{\"tasks\":[{\"label\":\"x\",\"workerType\":\"w\",\"dependencies\":"
                       "[\"fin\"]," P "}]}",
                       SUBMIT);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", path,
                       "{\"tasks\":[{\"label\":\"test\",\"workerType\":\"w\",\"dependencies\":"
                       "[\"build\"]," P "},{\"label\":\"more\",\"workerType\":\"w\","
                       "\"dependencies\":[\"test\"]," P "}]}",
                       SUBMIT);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 2);
    fake_resp_free(&r);
    assert_string_equal(tstate(fh, gid, "test"), "unscheduled");
    run_to(fh, tid(fh, gid, "build"), 0, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "test"), "pending");
    assert_string_equal(tstate(fh, gid, "fin"), "unscheduled");
    run_to(fh, tid(fh, gid, "test"), 0, "completed", NULL);
    run_to(fh, tid(fh, gid, "more"), 0, "completed", NULL);
    assert_string_equal(tstate(fh, gid, "fin"), "pending");
    /* a task added after its dependency completed is runnable at once */
    r = fake_host_call(fh, "POST", path,
                       "{\"tasks\":[{\"label\":\"late\",\"workerType\":\"w\",\"dependencies\":"
                       "[\"build\"]," P "}]}",
                       SUBMIT);
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    assert_string_equal(tstate(fh, gid, "late"), "pending");
}

static void test_deadline(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid = submit(fh, "{\"tasks\":[{\"label\":\"slow\",\"workerType\":\"w\","
                                 "\"deadline\":10," P "},{\"label\":\"ok\",\"workerType\":\"w\"," P
                                 "},{\"label\":\"dep\",\"workerType\":\"w\",\"deadline\":5,"
                                 "\"dependencies\":[\"ok\"]," P "}]}");

    assert_int_equal(start_run(fh, tid(fh, gid, "slow"), 0), RD_OK);
    for (int s = 0; s < 4; s++) {
        fake_host_advance(fh, 1000);
        fake_host_run_pending(fh);
    }
    assert_string_equal(tstate(fh, gid, "slow"), "running");
    assert_string_equal(tstate(fh, gid, "dep"), "unscheduled");
    for (int s = 0; s < 7; s++) {
        fake_host_advance(fh, 1000);
        fake_host_run_pending(fh);
    }
    assert_string_equal(tstate(fh, gid, "slow"), "exception");
    assert_string_equal(tstate(fh, gid, "dep"), "exception"); /* never got to run */
    assert_string_equal(tstate(fh, gid, "ok"), "pending");
    assert_int_equal(t->q.n_canceled, 1);
}

static void test_templates_api(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    struct fake_resp r;
    const json_t *g;

    r = fake_host_call(fh, "GET", API "/templates", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.body, "templates")) >= 2);
    fake_resp_free(&r);
    r = fake_host_call(
        fh, "POST", API "/templates/try/render",
        "{\"revision\":\"abc\",\"platforms\":[\"linux64\"],\"suites\":[\"xpcshell\"],"
        "\"inactive\":[\"test-linux64-xpcshell\"]}",
        SUBMIT);
    assert_int_equal(r.status, 200);
    g = json_object_get(r.body, "graph");
    assert_string_equal(json_string_value(json_object_get(g, "revision")), "abc");
    assert_int_equal(json_array_size(json_object_get(g, "tasks")), 4);
    assert_int_equal(json_array_size(json_object_get(r.body, "problems")), 0);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/templates/try/render", "{}", SUBMIT);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_code(&r), "invalid_parameters");
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/templates/nope/render", "{}", SUBMIT);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    /* store one through the API, submit from it */
    r = fake_host_call(fh, "PUT", API "/templates/mine",
                       "{\"parameters\":{\"n\":{\"type\":\"string\",\"default\":\"x\"}},"
                       "\"graph\":{\"name\":\"{n}\",\"tasks\":[{\"label\":\"a-{n}\","
                       "\"workerType\":\"w\"," P "}]}}",
                       SUBMIT);
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
    r = fake_host_call(fh, "PUT", API "/templates/mine",
                       "{\"parameters\":{\"n\":{\"type\":\"string\",\"default\":\"x\"}},"
                       "\"graph\":{\"name\":\"{n}\",\"tasks\":[{\"label\":\"a-{n}\","
                       "\"workerType\":\"w\"," P "}]}}",
                       "graph:templates");
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    r = fake_host_call(fh, "PUT", API "/templates/bad", "{\"graph\":1}", "graph:templates");
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/templates/mine/submit", "{\"n\":\"y\"}", SUBMIT);
    assert_int_equal(r.status, 201);
    {
        char gid[16];
        snprintf(gid, sizeof(gid), "%s", json_string_value(json_object_get(r.body, "id")));
        fake_resp_free(&r);
        assert_string_equal(tstate(fh, gid, "a-y"), "pending");
    }
    r = fake_host_call(fh, "DELETE", API "/templates/mine", NULL, "graph:templates");
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    r = fake_host_call(fh, "DELETE", API "/templates/try", NULL, "graph:templates");
    assert_int_equal(r.status, 404); /* files stay */
    fake_resp_free(&r);
}

static void test_list_filters_and_grid(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    struct fake_resp r;
    const json_t *graphs;

    submit(fh, "{\"branch\":\"main\",\"repository\":\"r1\",\"tasks\":[{\"label\":\"a\","
               "\"workerType\":\"linux64-b\"," P "}]}");
    fake_host_advance(fh, 10);
    submit(fh, "{\"branch\":\"beta\",\"repository\":\"r1\",\"tasks\":[{\"label\":\"a\","
               "\"workerType\":\"win64-b\"," P "}]}");
    fake_host_advance(fh, 10);
    submit(fh, "{\"branch\":\"main\",\"repository\":\"r2\",\"tasks\":[{\"label\":\"a\","
               "\"workerType\":\"w\"," P "}]}");
    r = fake_host_call(fh, "GET", API "/graphs?branch=main", NULL, NULL);
    graphs = json_object_get(r.body, "graphs");
    assert_int_equal(json_array_size(graphs), 2);
    /* newest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(graphs, 0), "repository")),
                        "r2");
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?repository=r1&include=jobs&limit=1", NULL, NULL);
    graphs = json_object_get(r.body, "graphs");
    assert_int_equal(json_array_size(graphs), 1);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_array_get(graphs, 0), "jobs"), 0), "platform")),
        "win64");
    assert_true(json_is_integer(json_object_get(r.body, "next")));
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/graphs?state=completed", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "graphs")), 0);
    fake_resp_free(&r);
}

/* Restart: pending runs are handed to dispatch again (once), in one
   transaction at start; running ones are left to dispatch's leases. */
static void test_requeue_at_restart(void **state)
{
    struct fq q1, q2;
    struct fake_host *fh;
    char dir[256], gid[16], a[80];

    (void)state;
    fq_init(&q1);
    fh = load_in(NULL, &q1, NULL);
    snprintf(dir, sizeof(dir), "%s", fake_host_dir(fh));
    snprintf(gid, sizeof(gid), "%s",
             submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                        "},{\"label\":\"b\",\"workerType\":\"w\"," P "},{\"label\":\"c\","
                        "\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}"));
    snprintf(a, sizeof(a), "%s", tid(fh, gid, "a"));
    assert_int_equal(start_run(fh, a, 0), RD_OK);
    /* a second host on the same directory is the restarted daemon */
    fq_init(&q2);
    {
        struct fake_host *fh2 = load_in(NULL, &q2, dir);
        assert_int_equal(q2.n_queued, 1);
        assert_true(fq_has(&q2, tid(fh2, gid, "b"), 0));
        assert_int_equal(fq_count(&q2, a, 0), 0);
        /* the claim survives: the worker reports after the restart */
        assert_int_equal(end_run(fh2, a, 0, "completed", NULL), RD_OK);
        assert_string_equal(tstate(fh2, gid, "c"), "pending");
        fake_host_free(fh2);
    }
    fake_host_free(fh);
    fq_fini(&q1);
    fq_fini(&q2);
}

/* graph alone: runs stay pending, the API works */
static void test_without_dispatch(void **state)
{
    struct fake_host *fh = load_in(NULL, NULL, NULL);
    const char *gid;
    json_t *st;

    (void)state;
    gid = submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}");
    assert_string_equal(tstate(fh, gid, "a"), "pending");
    st = fake_host_status(fh);
    assert_int_equal(json_integer_value(json_object_get(st, "tasks_pending")), 1);
    assert_true(json_is_false(json_object_get(st, "dispatch")));
    json_decref(st);
    /* an external reporter can still drive it through the service */
    run_to(fh, tid(fh, gid, "a"), 0, "completed", NULL);
    assert_string_equal(gstate(fh, gid), "completed");
    fake_host_free(fh);
}

/* dispatch refusing a run rolls the whole submission back */
static void test_enqueue_failure_rolls_back(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    struct fake_resp r;

    t->q.fail_enqueue = RD_EIO;
    r = fake_host_call(fh, "POST", API "/graphs",
                       "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}", SUBMIT);
    assert_int_equal(r.status, 500);
    fake_resp_free(&r);
    t->q.fail_enqueue = 0;
    r = fake_host_call(fh, "GET", API "/graphs", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "graphs")), 0);
    fake_resp_free(&r);
    assert_int_equal(fake_host_n_events(fh, NULL), 0);
}

static void test_load_fails_cleanly_on_any_host_failure(void **state)
{
    unsigned n;

    (void)state;
    for (n = 1; n < 200; n++) {
        struct fake_host *fh = fake_host_new("graph", NULL);
        struct fq q;
        int rc;

        fq_init(&q);
        assert_int_equal(fake_host_provide(fh, RD_TASKQUEUE_SERVICE, 1, &q.vt), RD_OK);
        fake_host_fail_call(fh, n + 1, RD_EIO); /* + 1: fake_host_provide counts */
        rc = fake_host_load(fh, rd_module_entry());
        if (fake_host_calls(fh) < n + 1) {
            assert_int_equal(rc, RD_OK);
            fake_host_free(fh);
            break;
        }
        if (rc == RD_OK) {
            /* only a failed look-up of dispatch.queue loads: as if dispatch
               were absent */
            json_t *st = fake_host_status(fh);
            if (!json_is_false(json_object_get(st, "dispatch")))
                fail_msg("host call %u failed, yet the load succeeded", n + 1);
            json_decref(st);
            fake_host_free(fh);
            fq_fini(&q);
            continue;
        }
        assert_null(fake_host_mod(fh));
        fake_host_free(fh);
        fq_fini(&q);
    }
    assert_true(n > 10);
    assert_true(n < 200);
}

/* A failing host call inside a graph operation changes nothing. */
static void test_operation_fails_cleanly(void **state)
{
    struct t *t = *state;
    struct fake_host *fh = t->fh;
    const char *gid =
        submit(fh, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P
                   "},{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}");
    const char *a = tid(fh, gid, "a");
    size_t n_events = fake_host_n_events(fh, NULL);
    unsigned k;

    struct runcall c = {.runs = runs_of(fh), .task = a, .run = 0, .state = "completed"};

    assert_int_equal(start_run(fh, a, 0), RD_OK);
    n_events = fake_host_n_events(fh, NULL);
    for (k = 1; k < 10; k++) {
        int rc;
        fake_host_fail_call(fh, fake_host_calls(fh) + k, RD_EIO);
        rc = rd_store_write(fake_host_handle(fh), runcall_tx, &c);
        if (rc == RD_OK) {
            fake_host_fail_clear(fh);
            break;
        }
        assert_int_equal(fake_host_n_events(fh, NULL), n_events);
        assert_string_equal(tstate(fh, gid, "a"), "running");
        assert_string_equal(tstate(fh, gid, "b"), "unscheduled");
    }
    assert_true(k > 2);
    assert_string_equal(tstate(fh, gid, "b"), "pending");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_linear_graph_runs_to_completion),
        T(test_validation_stores_nothing),
        T(test_smoketest_failure_blocks_final_runs),
        T(test_retries),
        T(test_service_refusals),
        T(test_breakpoint),
        T(test_breakpoint_released_as_failed),
        T(test_inactive_backfill),
        T(test_rerun_and_dependents),
        T(test_rerun_failed_bulk),
        T(test_cancel),
        T(test_coalescing),
        T(test_add_tasks),
        T(test_deadline),
        T(test_templates_api),
        T(test_list_filters_and_grid),
        cmocka_unit_test(test_requeue_at_restart),
        cmocka_unit_test(test_without_dispatch),
        T(test_enqueue_failure_rolls_back),
        cmocka_unit_test(test_load_fails_cleanly_on_any_host_failure),
        T(test_operation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
