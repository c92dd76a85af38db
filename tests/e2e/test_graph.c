/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_graph.c -- the graph module end to end with the dispatch
 * module, as release engineers and workers use them: graphs are submitted
 * over HTTP, and this test is the worker (claim, log, report over
 * dispatch's worker API). A push graph with a build, a smoketest, chunked
 * tests, an inactive job backfilled later, a breakpoint released through
 * the API and a final job; a smoketest that fails (dependents blocked, the
 * final job still runs, a rerun brings the tests back); validation and
 * scopes; relengctl's graph and task commands; and kill -9 of relengd in the
 * middle of a graph: after the restart the graph finishes with no task run
 * twice to completion and none lost.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

#define G "/api/v1/graph"
#define D "/api/v1/dispatch"
#define WT "e2e-linux"
#define P "\"payload\":{\"command\":[\"true\"]}"

static const char *const env_lease[] = {"RELENGD_DISPATCH_LEASE=2s", NULL};

static const struct e2e_opts both = {.modules = "graph dispatch"};
static const struct e2e_opts both_short_lease = {.modules = "graph dispatch", .env = env_lease};

/* ------------------------------------------------------------- helpers */

static char *submit(struct e2e_daemon *d, const char *body)
{
    struct e2e_resp r;
    char *id;

    if (e2e_post(d, G "/graphs", d->admin_token, body, &r) != 201)
        fail_msg("submit -> %d %s", r.status, r.body);
    id = strdup(e2e_json_str(&r, "id"));
    e2e_resp_free(&r);
    return id;
}

/* GET prefix + id */
static json_t *get_json(struct e2e_daemon *d, const char *prefix, const char *id)
{
    char path[256];
    struct e2e_resp r;
    json_t *j;

    snprintf(path, sizeof(path), "%s%s", prefix, id);
    if (e2e_get(d, path, NULL, &r) != 200)
        fail_msg("GET %s -> %d %s", path, r.status, r.body);
    j = json_incref(r.json);
    e2e_resp_free(&r);
    return j;
}

static const json_t *task_of(const json_t *g, const char *label)
{
    size_t i;
    const json_t *t;

    json_array_foreach(json_object_get(g, "tasks"), i,
                       t) if (strcmp(json_string_value(json_object_get(t, "label")), label) ==
                              0) return t;
    fail_msg("no task %s", label);
    return NULL;
}

/* The state of a task by label, and the graph's state ("" for the graph). */
static char *state_of(struct e2e_daemon *d, const char *gid, const char *label)
{
    json_t *g = get_json(d, G "/graphs/", gid);
    char *s = strdup(json_string_value(json_object_get(label ? task_of(g, label) : g, "state")));
    json_decref(g);
    return s;
}

static void assert_state(struct e2e_daemon *d, const char *gid, const char *label, const char *want)
{
    char *s = state_of(d, gid, label);
    if (strcmp(s, want) != 0)
        fail_msg("%s: state %s, want %s", label ? label : "graph", s, want);
    free(s);
}

/* POST /dispatch/claim as worker `worker`; the claimed tasks (new ref). */
static json_t *claim(struct e2e_daemon *d, const char *worker, int capacity, int wait_s)
{
    char body[256];
    struct e2e_resp r;
    json_t *tasks;

    snprintf(body, sizeof(body),
             "{\"workerId\":\"%s\",\"workerType\":\"" WT "\",\"capacity\":%d,\"wait\":%d}", worker,
             capacity, wait_s);
    if (e2e_post(d, D "/claim", d->admin_token, body, &r) != 200)
        fail_msg("claim -> %d %s", r.status, r.body);
    tasks = json_incref(json_object_get(r.json, "tasks"));
    e2e_resp_free(&r);
    return tasks;
}

/* Claims exactly one task, which must have label `label`; returns it. */
static json_t *claim_one(struct e2e_daemon *d, const char *label)
{
    json_t *tasks = claim(d, "w1", 1, 0), *t;

    if (json_array_size(tasks) != 1)
        fail_msg("claim for %s: %zu tasks", label, json_array_size(tasks));
    t = json_incref(json_array_get(tasks, 0));
    json_decref(tasks);
    assert_string_equal(json_string_value(json_object_get(t, "label")), label);
    return t;
}

static int report(struct e2e_daemon *d, const json_t *task, const char *state, const char *reason)
{
    char path[256], body[160];
    struct e2e_resp r;
    int status;

    snprintf(path, sizeof(path), D "/runs/%s/%" JSON_INTEGER_FORMAT "/report",
             json_string_value(json_object_get(task, "taskId")),
             json_integer_value(json_object_get(task, "runId")));
    snprintf(body, sizeof(body), "{\"state\":\"%s\",\"reason\":\"%s\",\"exitCode\":%d}", state,
             reason, strcmp(state, "failed") == 0 ? 1 : 0);
    status = e2e_post(d, path, d->admin_token, body, &r);
    e2e_resp_free(&r);
    return status;
}

static void complete(struct e2e_daemon *d, const char *label)
{
    json_t *t = claim_one(d, label);
    assert_int_equal(report(d, t, "completed", "completed"), 200);
    json_decref(t);
}

/* POST prefix + id + verb */
static int op(struct e2e_daemon *d, const char *token, const char *prefix, const char *id,
              const char *verb, const char *body)
{
    char path[256];
    struct e2e_resp r;
    int status;

    snprintf(path, sizeof(path), "%s%s%s", prefix, id, verb);
    status = e2e_post(d, path, token, body, &r);
    if (status != 200)
        fprintf(stderr, "POST %s -> %d %s\n", path, r.status, r.body);
    e2e_resp_free(&r);
    return status;
}

static const char *tid(const json_t *g, const char *label)
{
    return json_string_value(json_object_get(task_of(g, label), "id"));
}

/* --------------------------------------------------------------- tests */

static void test_push_graph(void **state)
{
    struct e2e_daemon *d = *state;
    char operate[64];
    char *gid;
    json_t *t, *tasks, *g;
    struct e2e_resp r;
    char path[256];
    int seen_chunks = 0;
    size_t i;

    assert_int_equal(e2e_token_create(d, "ops", "[\"graph:operate\"]", NULL, operate, NULL), 0);
    gid = submit(d, "{\"name\":\"push 1\",\"branch\":\"main\",\"repository\":\"r\",\"tasks\":["
                    "{\"label\":\"build\",\"workerType\":\"" WT "\"," P "},"
                    "{\"label\":\"smoke\",\"workerType\":\"" WT "\",\"dependencies\":[\"build\"]," P
                    "},{\"label\":\"test\",\"workerType\":\"" WT "\",\"chunks\":3,"
                    "\"dependencies\":[\"smoke\"],\"payload\":{\"command\":\"run-tests\"}},"
                    "{\"label\":\"extra\",\"workerType\":\"" WT "\",\"inactive\":true,"
                    "\"dependencies\":[\"build\"]," P "},"
                    "{\"label\":\"sign-off\",\"workerType\":\"" WT "\",\"breakpoint\":true,"
                    "\"dependencies\":[\"test\"]," P "},"
                    "{\"label\":\"publish\",\"workerType\":\"" WT "\",\"dependencies\":"
                    "[\"sign-off\"]," P "},"
                    "{\"label\":\"analysis\",\"workerType\":\"" WT "\",\"final\":true," P "}]}");

    /* the build, with a log the dashboard links to */
    t = claim_one(d, "build");
    assert_string_equal(json_string_value(json_object_get(t, "graphId")), gid);
    snprintf(path, sizeof(path), D "/runs/%s/0/log?offset=0",
             json_string_value(json_object_get(t, "taskId")));
    assert_int_equal(
        e2e_request(d, "POST", path, d->admin_token, NULL, "compiling\nerror: x\n", 19, &r), 200);
    e2e_resp_free(&r);
    assert_int_equal(report(d, t, "completed", "completed"), 200);
    json_decref(t);
    assert_state(d, gid, "extra", "inactive");
    complete(d, "smoke");
    /* three chunks at once, each with its own THIS_CHUNK */
    tasks = claim(d, "w2", 5, 0);
    assert_int_equal(json_array_size(tasks), 3);
    json_array_foreach(tasks, i, t)
    {
        const json_t *env = json_object_get(json_object_get(t, "payload"), "env");
        assert_string_equal(json_string_value(json_object_get(env, "TOTAL_CHUNKS")), "3");
        seen_chunks |= 1 << atoi(json_string_value(json_object_get(env, "THIS_CHUNK")));
        assert_int_equal(report(d, t, "completed", "completed"), 200);
    }
    assert_int_equal(seen_chunks, 2 | 4 | 8);
    json_decref(tasks);
    /* the breakpoint waits for a person; nothing to claim meanwhile */
    assert_state(d, gid, "sign-off", "waiting");
    tasks = claim(d, "w1", 1, 0);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    g = get_json(d, G "/graphs/", gid);
    assert_int_equal(
        op(d, d->admin_token, G "/tasks/", tid(g, "sign-off"), "/release", "{\"state\":\"bogus\"}"),
        400);
    /* a submit-only token cannot release */
    {
        char submitter[64];
        assert_int_equal(e2e_token_create(d, "sub", "[\"graph:submit\"]", NULL, submitter, NULL),
                         0);
        assert_int_equal(op(d, submitter, G "/tasks/", tid(g, "sign-off"), "/release", NULL), 403);
    }
    assert_int_equal(op(d, operate, G "/tasks/", tid(g, "sign-off"), "/release", NULL), 200);
    complete(d, "publish");
    /* everything else settled: the final job runs */
    complete(d, "analysis");
    assert_state(d, gid, NULL, "completed");
    /* backfill the inactive job: the graph runs again, then resolves again */
    assert_int_equal(op(d, operate, G "/graphs/", gid, "/activate", "{\"pattern\":\"ext*\"}"), 200);
    assert_state(d, gid, NULL, "running");
    complete(d, "extra");
    assert_state(d, gid, NULL, "completed");
    json_decref(g);
    /* figures: end-to-end time, wait and run time per run, the log */
    g = get_json(d, G "/graphs/", gid);
    assert_true(json_is_integer(json_object_get(g, "durationMs")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(g, "counts"), "completed")),
                     9);
    t = json_object_get(task_of(g, "build"), "lastRun");
    assert_true(json_is_integer(json_object_get(t, "waitMs")));
    assert_true(json_is_integer(json_object_get(t, "runMs")));
    assert_int_equal(e2e_get(d, json_string_value(json_object_get(t, "logUrl")), NULL, &r), 200);
    assert_non_null(strstr(r.body, "error: x"));
    e2e_resp_free(&r);
    json_decref(g);
    assert_true(e2e_metric(d, "relengd_graph_graph_duration_seconds_count") >= 1);
    assert_true(e2e_metric(d, "relengd_graph_task_wait_seconds_count") >= 8);
    free(gid);
    e2e_pass(d);
}

static void test_final_after_failure_and_rerun(void **state)
{
    struct e2e_daemon *d = *state;
    char *gid =
        submit(d, "{\"tasks\":[{\"label\":\"smoke\",\"workerType\":\"" WT "\"," P "},"
                  "{\"label\":\"t\",\"workerType\":\"" WT "\",\"chunks\":2,"
                  "\"dependencies\":[\"smoke\"]," P "},"
                  "{\"label\":\"cleanup\",\"workerType\":\"" WT "\",\"final\":true," P "}]}");
    json_t *t = claim_one(d, "smoke"), *g;

    assert_int_equal(report(d, t, "failed", "failed"), 200);
    /* the same report again is idempotent, a different one refused */
    assert_int_equal(report(d, t, "completed", "completed"), 409);
    json_decref(t);
    assert_state(d, gid, "t-1/2", "blocked");
    assert_state(d, gid, "t-2/2", "blocked");
    complete(d, "cleanup");
    assert_state(d, gid, NULL, "failed");
    /* rerun the smoketest: the blocked tests come back and run */
    g = get_json(d, G "/graphs/", gid);
    assert_int_equal(op(d, d->admin_token, G "/tasks/", tid(g, "smoke"), "/rerun", NULL), 200);
    assert_state(d, gid, "t-1/2", "unscheduled");
    assert_state(d, gid, NULL, "running");
    t = claim_one(d, "smoke");
    assert_int_equal(json_integer_value(json_object_get(t, "runId")), 1);
    assert_int_equal(report(d, t, "completed", "completed"), 200);
    json_decref(t);
    t = claim(d, "w1", 2, 0);
    assert_int_equal(json_array_size(t), 2);
    assert_int_equal(report(d, json_array_get(t, 0), "completed", "completed"), 200);
    assert_int_equal(report(d, json_array_get(t, 1), "completed", "completed"), 200);
    json_decref(t);
    assert_state(d, gid, NULL, "completed");
    json_decref(g);
    free(gid);
    e2e_pass(d);
}

static void test_validation_and_cancel(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char *gid;
    json_t *g, *t;

    assert_int_equal(
        e2e_post(d, G "/graphs", d->admin_token,
                 "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"" WT "\","
                 "\"dependencies\":[\"c\"]," P "},{\"label\":\"b\",\"workerType\":\"" WT
                 "\",\"dependencies\":[\"a\"]," P "},{\"label\":\"c\",\"workerType\":\"" WT
                 "\",\"dependencies\":[\"b\"]," P "},{\"label\":\"a\","
                 "\"workerType\":\"" WT "\"," P "}]}",
                 &r),
        400);
    assert_string_equal(e2e_error_code(&r), "invalid_graph");
    assert_non_null(strstr(e2e_error_message(&r), "duplicate label \"a\""));
    e2e_resp_free(&r);
    assert_int_equal(
        e2e_post(d, G "/graphs", d->admin_token,
                 "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"" WT "\","
                 "\"dependencies\":[\"c\"]," P "},{\"label\":\"b\",\"workerType\":\"" WT
                 "\",\"dependencies\":[\"a\"]," P "},{\"label\":\"c\",\"workerType\":\"" WT
                 "\",\"dependencies\":[\"b\"]," P "}]}",
                 &r),
        400);
    assert_non_null(strstr(e2e_error_message(&r), "dependency cycle"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_post(d, G "/graphs", d->admin_token, "not json", &r), 400);
    e2e_resp_free(&r);
    assert_int_equal(e2e_post(d, G "/graphs", NULL, "{}", &r), 401);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, G "/graphs", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "graphs")), 0);
    e2e_resp_free(&r);
    /* cancel: a claimed run is withdrawn, the worker's report refused */
    gid = submit(d, "{\"tasks\":[{\"label\":\"a\",\"workerType\":\"" WT "\"," P "},"
                    "{\"label\":\"b\",\"workerType\":\"" WT "\"," P "}]}");
    t = claim(d, "w1", 1, 0);
    assert_int_equal(json_array_size(t), 1);
    assert_int_equal(op(d, d->admin_token, G "/graphs/", gid, "/cancel", NULL), 200);
    assert_int_equal(report(d, json_array_get(t, 0), "completed", "completed"), 409);
    json_decref(t);
    t = claim(d, "w1", 1, 0);
    assert_int_equal(json_array_size(t), 0);
    json_decref(t);
    assert_state(d, gid, NULL, "canceled");
    g = get_json(d, G "/graphs/", gid);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(g, "counts"), "exception")),
                     2);
    json_decref(g);
    free(gid);
    e2e_pass(d);
}

/* relengctl graph submit -, show, activate; task release, rerun, cancel. */
static void test_relengctl(void **state)
{
    struct e2e_daemon *d = *state;
    char ctl[512], url[160], tok[160];
    const char *env[] = {url, tok, NULL};
    struct e2e_exec x;
    char *gid;
    json_t *g;

    snprintf(ctl, sizeof(ctl), "%s/cli/relengctl", e2e_builddir());
    snprintf(url, sizeof(url), "RELENGD_URL=%s", d->base_url);
    snprintf(tok, sizeof(tok), "RELENGD_TOKEN=%s", d->admin_token);
    {
        const char *argv[] = {ctl, "graph", "submit", "-", NULL};
        assert_int_equal(
            e2e_exec(argv, env,
                     "{\"name\":\"cli\",\"tasks\":[{\"label\":\"gate\",\"workerType\":\"" WT
                     "\",\"breakpoint\":true," P "},{\"label\":\"x\",\"workerType\":\"" WT
                     "\",\"inactive\":true," P "},{\"label\":\"y\",\"workerType\":\"" WT
                     "\",\"dependencies\":[\"gate\"]," P "}]}",
                     10000, &x),
            0);
        assert_non_null(strstr(x.out, "submitted: 3 tasks"));
        gid = strndup(x.out + strlen("graph "), 12);
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {ctl, "graph", "submit", "-", NULL};
        assert_int_equal(e2e_exec(argv, env, "{\"tasks\":[]}", 10000, &x), 1);
        assert_non_null(strstr(x.err, "non-empty array"));
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {ctl, "graph", "show", gid, NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.out, "waiting"));
        assert_non_null(strstr(x.out, "inactive"));
        e2e_exec_free(&x);
    }
    g = get_json(d, G "/graphs/", gid);
    {
        const char *argv[] = {ctl, "task", "release", tid(g, "gate"), "--failed", NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.out, "failed"));
        e2e_exec_free(&x);
    }
    assert_state(d, gid, "y", "blocked");
    {
        const char *argv[] = {ctl, "task", "rerun", tid(g, "gate"), NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.out, "waiting"));
        e2e_exec_free(&x);
    }
    assert_state(d, gid, "y", "unscheduled");
    {
        const char *argv[] = {ctl, "graph", "activate", gid, "x", NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.out, "1 tasks activated"));
        e2e_exec_free(&x);
    }
    assert_state(d, gid, "x", "pending");
    {
        const char *argv[] = {ctl, "task", "cancel", tid(g, "x"), NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.out, "exception"));
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {ctl, "task", "cancel", tid(g, "x"), NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 10000, &x), 1);
        assert_non_null(strstr(x.err, "409"));
        e2e_exec_free(&x);
    }
    json_decref(g);
    free(gid);
    e2e_pass(d);
}

/* kill -9 in the middle of a graph. The worker has completed some tasks,
   holds a claim it never reports (its lease, 2 s here, expires after the
   restart and the task is retried), and the rest is still queued. After
   the restart the graph finishes: every task completed by exactly one run. */
static void test_kill9_mid_graph(void **state)
{
    struct e2e_daemon *d = *state;
    char body[8192];
    size_t len = 0, n_tasks = 0;
    char *gid;
    json_t *tasks, *held, *g, *t;
    uint64_t deadline;
    size_t i;

    len += (size_t)snprintf(body + len, sizeof(body) - len,
                            "{\"tasks\":[{\"label\":\"root\",\"workerType\":\"" WT "\"," P "}");
    n_tasks++;
    for (int m = 0; m < 12; m++, n_tasks++)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                ",{\"label\":\"mid%d\",\"workerType\":\"" WT
                                "\",\"dependencies\":[\"root\"]," P "}",
                                m);
    len += (size_t)snprintf(body + len, sizeof(body) - len,
                            ",{\"label\":\"join\",\"workerType\":\"" WT "\",\"dependencies\":[");
    for (int m = 0; m < 12; m++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "%s\"mid%d\"", m ? "," : "", m);
    len += (size_t)snprintf(body + len, sizeof(body) - len, "]," P "}");
    n_tasks++;
    for (int l = 0; l < 6; l++, n_tasks++)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                ",{\"label\":\"leaf%d\",\"workerType\":\"" WT
                                "\",\"dependencies\":[\"join\"]," P "}",
                                l);
    snprintf(body + len, sizeof(body) - len, "]}");
    gid = submit(d, body);
    complete(d, "root");
    tasks = claim(d, "w1", 5, 0);
    assert_int_equal(json_array_size(tasks), 5);
    for (i = 0; i < 4; i++)
        assert_int_equal(report(d, json_array_get(tasks, i), "completed", "completed"), 200);
    held = json_incref(json_array_get(tasks, 4)); /* claimed, never reported */
    json_decref(tasks);

    e2e_kill9(d);
    assert_int_equal(e2e_launch(d), E2E_READY);

    /* the worker goes on; the held run's lease expires and it is retried */
    deadline = e2e_now_ms() + 30000;
    for (;;) {
        char *st = state_of(d, gid, NULL);
        bool done = strcmp(st, "running") != 0;
        free(st);
        if (done)
            break;
        if (e2e_now_ms() > deadline) {
            g = get_json(d, G "/graphs/", gid);
            char *dump = json_dumps(json_object_get(g, "tasks"), JSON_COMPACT);
            fprintf(stderr, "%s\n", dump);
            fail_msg("the graph did not finish within 30 s after the restart");
        }
        tasks = claim(d, "w3", 8, 1);
        json_array_foreach(tasks, i, t)
            assert_int_equal(report(d, t, "completed", "completed"), 200);
        json_decref(tasks);
    }
    /* the held run expired: its late report is refused */
    assert_int_equal(report(d, held, "completed", "completed"), 409);
    assert_state(d, gid, NULL, "completed");
    g = get_json(d, G "/graphs/", gid);
    assert_int_equal(json_array_size(json_object_get(g, "tasks")), n_tasks);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(g, "counts"), "completed")),
                     (json_int_t)n_tasks);
    /* every task completed by exactly one run */
    json_array_foreach(json_object_get(g, "tasks"), i, t)
    {
        json_t *task = get_json(d, G "/tasks/", json_string_value(json_object_get(t, "id")));
        size_t k, n_completed = 0;
        const json_t *run;
        json_array_foreach(json_object_get(task, "runs"), k, run) n_completed +=
            strcmp(json_string_value(json_object_get(run, "state")), "completed") == 0;
        if (n_completed != 1)
            fail_msg("task %s completed %zu times", json_string_value(json_object_get(t, "label")),
                     n_completed);
        json_decref(task);
    }
    /* the held task: run 0 expired (claim-expired), run 1 completed */
    {
        json_t *task = get_json(d, G "/tasks/", json_string_value(json_object_get(held, "taskId")));
        const json_t *runs = json_object_get(task, "runs");
        assert_int_equal(json_array_size(runs), 2);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(runs, 0), "reasonResolved")),
            "claim-expired");
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(runs, 1), "reasonCreated")), "retry");
        json_decref(task);
    }
    json_decref(g);
    json_decref(held);
    free(gid);
    e2e_pass(d);
}

/* Every documented route is registered (answers with the module's own
   error, never the router's not_found / method_not_allowed) with the scope
   the document names, and every registered route is documented. */
static void test_openapi_matches_routes(void **state)
{
    static const struct {
        const char *method, *path, *scope;
    } routes[] = {
        {"post", "/graphs", "graph:submit"},
        {"get", "/graphs", NULL},
        {"get", "/graphs/{id}", NULL},
        {"post", "/graphs/{id}/tasks", "graph:submit"},
        {"post", "/graphs/{id}/activate", "graph:operate"},
        {"post", "/graphs/{id}/rerun-failed", "graph:operate"},
        {"post", "/graphs/{id}/cancel", "graph:operate"},
        {"get", "/tasks/{id}", NULL},
        {"post", "/tasks/{id}/rerun", "graph:operate"},
        {"post", "/tasks/{id}/cancel", "graph:operate"},
        {"post", "/tasks/{id}/activate", "graph:operate"},
        {"post", "/tasks/{id}/release", "graph:operate"},
        {"get", "/templates", NULL},
        {"get", "/templates/{name}", NULL},
        {"put", "/templates/{name}", "graph:templates"},
        {"delete", "/templates/{name}", "graph:templates"},
        {"post", "/templates/{name}/render", NULL},
        {"post", "/templates/{name}/submit", "graph:submit"},
    };
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    json_t *paths;
    const char *k;
    json_t *item;
    size_t n_documented = 0;

    assert_int_equal(e2e_get(d, "/api/v1/openapi.json", NULL, &r), 200);
    paths = json_incref(json_object_get(r.json, "paths"));
    e2e_resp_free(&r);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char full[128], url[128], method[8];
        const json_t *op;
        const char *scope;
        size_t j;

        snprintf(full, sizeof(full), "/api/v1/graph%s", routes[i].path);
        op = json_object_get(json_object_get(paths, full), routes[i].method);
        if (!op)
            fail_msg("%s %s is not documented", routes[i].method, full);
        scope = json_string_value(json_object_get(op, "x-scope"));
        if (routes[i].scope ? !scope || strcmp(scope, routes[i].scope) != 0 : scope != NULL)
            fail_msg("%s %s: x-scope %s, want %s", routes[i].method, full, scope ? scope : "null",
                     routes[i].scope ? routes[i].scope : "null");
        /* registered: the module answers, not the router */
        snprintf(url, sizeof(url), "/api/v1/graph%s", routes[i].path);
        for (char *b; (b = strchr(url, '{'));) {
            char *e = strchr(b, '}');
            memmove(b + 4, e + 1, strlen(e + 1) + 1);
            memcpy(b, "nope", 4);
        }
        for (j = 0; routes[i].method[j] && j < sizeof(method) - 1; j++)
            method[j] = (char)(routes[i].method[j] - 'a' + 'A');
        method[j] = '\0';
        e2e_request(d, method, url, d->admin_token, NULL,
                    strcmp(method, "GET") && strcmp(method, "DELETE") ? "{}" : NULL,
                    strcmp(method, "GET") && strcmp(method, "DELETE") ? 2 : 0, &r);
        if (r.status == 405 ||
            (r.status == 404 && e2e_error_code(&r) && strcmp(e2e_error_code(&r), "not_found") == 0))
            fail_msg("%s %s is documented but not registered (%d)", method, url, r.status);
        e2e_resp_free(&r);
    }
    json_object_foreach(paths, k, item)
    {
        if (strncmp(k, "/api/v1/graph/", 14) == 0 || strcmp(k, "/api/v1/graph") == 0)
            n_documented += json_object_size(item);
    }
    assert_int_equal(n_documented, sizeof(routes) / sizeof(routes[0]));
    json_decref(paths);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_push_graph, e2e_setup, e2e_teardown,
                                                 (void *)&both),
        cmocka_unit_test_prestate_setup_teardown(test_final_after_failure_and_rerun, e2e_setup,
                                                 e2e_teardown, (void *)&both),
        cmocka_unit_test_prestate_setup_teardown(test_validation_and_cancel, e2e_setup,
                                                 e2e_teardown, (void *)&both),
        cmocka_unit_test_prestate_setup_teardown(test_relengctl, e2e_setup, e2e_teardown,
                                                 (void *)&both),
        cmocka_unit_test_prestate_setup_teardown(test_openapi_matches_routes, e2e_setup,
                                                 e2e_teardown, (void *)&both),
        cmocka_unit_test_prestate_setup_teardown(test_kill9_mid_graph, e2e_setup, e2e_teardown,
                                                 (void *)&both_short_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
