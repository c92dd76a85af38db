/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_dispatch_graph.c -- dispatch with the graph module and
 * real relengd-worker processes: a graph runs to completion across three
 * workers with logs and artifacts; a worker killed with kill -9 mid-task
 * loses its lease and the task is retried on another worker, completed
 * exactly once; relengd killed with kill -9 mid-graph and restarted on the
 * same port and state: the workers reconnect and every task completes
 * exactly once; an external machine reports a graph task's status.
 */
#include "config.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/e2e/dispatch_util.h"
#include "tests/e2e/harness.h"

#define GRAPHS "/api/v1/graph/graphs"

static const char *const daemon_env[] = {"RELENGD_DISPATCH_LEASE=2s", NULL};
static const struct e2e_opts opts = {.modules = "graph dispatch", .env = daemon_env};
static const struct e2e_opts opts_port = {
    .modules = "graph dispatch", .env = daemon_env, .listen_from_config = true};

/* Submits a graph; returns its id (static buffer of the caller). */
static void submit(struct e2e_daemon *d, const char *body, char id[64])
{
    json_t *j = dx_post(d, GRAPHS, body, 201);
    snprintf(id, 64, "%s", json_string_value(json_object_get(j, "id")));
    assert_true(id[0] != '\0');
    json_decref(j);
}

static json_t *wait_graph(struct e2e_daemon *d, const char *id, const char *state, int ms)
{
    char path[200];
    json_t *j;

    snprintf(path, sizeof(path), GRAPHS "/%s", id);
    j = dx_wait_str(d, path, "state", state, ms);
    assert_non_null(j);
    return j;
}

static json_t *task(struct e2e_daemon *d, const char *graph, int index)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/graph/tasks/%s.%d", graph, index);
    return dx_get(d, path, 200);
}

/* Completed runs of a task (graph's view). */
static int n_completed(const json_t *t)
{
    const json_t *run;
    size_t i;
    int n = 0;

    json_array_foreach(json_object_get(t, "runs"), i, run) n +=
        strcmp(json_string_value(json_object_get(run, "state")), "completed") == 0;
    return n;
}

static void test_graph_across_three_workers(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w[3];
    char id[64], path[300], seen[3][64];
    int n_seen = 0;
    struct e2e_resp r;
    json_t *g, *t;

    submit(d,
           "{\"name\":\"push\",\"branch\":\"main\",\"tasks\":["
           "{\"label\":\"build\",\"workerType\":\"linux\",\"payload\":{\"command\":"
           "\"echo compiling; echo binary > app.bin\",\"artifacts\":[{\"name\":\"app.bin\","
           "\"path\":\"app.bin\"}]}},"
           "{\"label\":\"test\",\"workerType\":\"linux\",\"chunks\":3,\"dependencies\":"
           "[\"build\"],\"payload\":{\"command\":\"echo chunk $THIS_CHUNK of $TOTAL_CHUNKS;"
           " sleep 0.5\"}}]}",
           id);
    dw_start(&w[0], d, NULL, "linux", "g-w1", 1, NULL);
    dw_start(&w[1], d, NULL, "linux", "g-w2", 1, NULL);
    dw_start(&w[2], d, NULL, "linux", "g-w3", 1, NULL);
    g = wait_graph(d, id, "completed", 30000);
    json_decref(g);
    for (int i = 0; i < 4; i++) {
        const char *worker;
        t = task(d, id, i);
        assert_string_equal(json_string_value(json_object_get(t, "state")), "completed");
        assert_int_equal(n_completed(t), 1);
        worker = json_string_value(
            json_object_get(json_array_get(json_object_get(t, "runs"), 0), "workerId"));
        assert_non_null(worker);
        bool known = false;
        for (int k = 0; k < n_seen; k++)
            known = known || strcmp(seen[k], worker) == 0;
        if (!known && n_seen < 3)
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", worker);
        json_decref(t);
        snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s.%d/0/log", id, i);
        assert_int_equal(e2e_get(d, path, NULL, &r), 200);
        if (i == 0)
            assert_non_null(strstr(r.body, "compiling"));
        else {
            char want[64];
            snprintf(want, sizeof(want), "chunk %d of 3", i);
            assert_non_null(strstr(r.body, want));
        }
        e2e_resp_free(&r);
    }
    /* the three chunks sleep, so each of the three workers had one */
    assert_int_equal(n_seen, 3);
    snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s.0/0/artifacts/app.bin", id);
    assert_int_equal(e2e_get(d, path, NULL, &r), 200);
    assert_string_equal(r.body, "binary\n");
    e2e_resp_free(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dw_stop(&w[i], 10000), 0);
    e2e_pass(d);
}

static void test_worker_kill9_task_retried_elsewhere(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker a, b;
    char id[64], path[600], *pid_text = NULL;
    json_t *t, *runs;
    uint64_t end;

    /* The first run hangs (and says its pid); a retry finishes at once. */
    submit(d,
           "{\"name\":\"fragile\",\"branch\":\"main\",\"tasks\":[{\"label\":\"slow\","
           "\"workerType\":\"linux\",\"retries\":2,\"payload\":{\"command\":"
           "\"if [ \\\"$RELENGD_RUN_ID\\\" = 0 ]; then echo $$ > pid; exec sleep 60; fi;"
           " echo second run\"}}]}",
           id);
    dw_start(&a, d, NULL, "linux", "k-a", 1, NULL);
    snprintf(path, sizeof(path), "%s/tasks/%s.0@0/pid", a.dir, id);
    for (end = e2e_now_ms() + 10000; !pid_text && e2e_now_ms() < end; e2e_sleep_ms(20))
        pid_text = e2e_read_file(path, NULL);
    assert_non_null(pid_text);
    dw_kill9(&a);
    kill((pid_t)strtol(pid_text, NULL, 10), SIGKILL); /* its orphaned command */
    free(pid_text);
    dw_start(&b, d, NULL, "linux", "k-b", 1, NULL);
    t = wait_graph(d, id, "completed", 20000);
    json_decref(t);
    t = task(d, id, 0);
    runs = json_object_get(t, "runs");
    assert_int_equal(json_array_size(runs), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(runs, 0), "reasonResolved")),
        "claim-expired");
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "workerId")),
                        "k-a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 1), "state")),
                        "completed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 1), "workerId")),
                        "k-b");
    assert_int_equal(n_completed(t), 1);
    json_decref(t);
    assert_int_equal(dw_stop(&b, 10000), 0);
    e2e_pass(d);
}

static void test_relengd_kill9_restart_mid_graph(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w[2];
    char id[64], body[4096], kv[64];
    size_t len = 0;
    json_t *g;
    int done = 0;
    uint64_t end;

    /* 12 independent tasks of 0.3 s over two workers: about two seconds.
       Retries are allowed: a claim whose answer the kill cut short is a
       run the worker never saw, and its lease expiring (then a retry) is
       how it comes back; what must never happen is a lost task or a task
       completed twice. */
    len += (size_t)snprintf(body + len, sizeof(body) - len,
                            "{\"name\":\"restart\",\"branch\":\"main\",\"tasks\":[");
    for (int i = 0; i < 12; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "%s{\"label\":\"job-%d\",\"workerType\":\"linux\",\"retries\":2,"
                                "\"payload\":{\"command\":\"echo job %d; sleep 0.3\"}}",
                                i ? "," : "", i, i);
    snprintf(body + len, sizeof(body) - len, "]}");
    submit(d, body, id);
    dw_start(&w[0], d, NULL, "linux", "r-w1", 1, NULL);
    dw_start(&w[1], d, NULL, "linux", "r-w2", 1, NULL);
    /* kill -9 once a few tasks are done and others run */
    for (end = e2e_now_ms() + 20000; done < 3 && e2e_now_ms() < end; e2e_sleep_ms(20)) {
        g = dx_get(d, GRAPHS, 200);
        done = (int)json_integer_value(json_object_get(
            json_object_get(json_array_get(json_object_get(g, "graphs"), 0), "counts"),
            "completed"));
        json_decref(g);
    }
    assert_true(done >= 3);
    e2e_kill9(d);
    /* same port, same state: the workers' retries find it again */
    snprintf(kv, sizeof(kv), "http.listen=127.0.0.1:%d", d->port);
    assert_int_equal(e2e_add_set(d, kv), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);
    g = wait_graph(d, id, "completed", 30000);
    json_decref(g);
    for (int i = 0; i < 12; i++) {
        json_t *t = task(d, id, i);
        assert_string_equal(json_string_value(json_object_get(t, "state")), "completed");
        assert_int_equal(n_completed(t), 1);
        json_decref(t);
        /* dispatch agrees: one completed run of the task, whatever retried */
        {
            char path[200];
            const json_t *run;
            size_t k;
            int completed = 0;
            snprintf(path, sizeof(path), "/api/v1/dispatch/runs?taskId=%s.%d", id, i);
            t = dx_get(d, path, 200);
            json_array_foreach(json_object_get(t, "runs"), k, run) completed +=
                json_is_string(json_object_get(run, "result")) &&
                strcmp(json_string_value(json_object_get(run, "result")), "completed") == 0;
            assert_int_equal(completed, 1);
            json_decref(t);
        }
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(dw_stop(&w[i], 10000), 0);
    e2e_pass(d);
}

static void test_external_graph_task(void **state)
{
    struct e2e_daemon *d = *state;
    char id[64], path[300];
    struct e2e_resp r;
    json_t *j, *t;

    submit(d,
           "{\"name\":\"odd-os\",\"branch\":\"main\",\"tasks\":[{\"label\":\"build-haiku\","
           "\"workerType\":\"external-haiku\",\"payload\":{\"command\":\"make\"}}]}",
           id);
    snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s.0/0/external", id);
    j = dx_post(d, path, "{\"name\":\"volunteer\"}", 200);
    json_decref(j);
    t = task(d, id, 0);
    assert_string_equal(json_string_value(json_object_get(t, "state")), "running");
    json_decref(t);
    snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s.0/0/log?offset=0", id);
    assert_int_equal(e2e_request(d, "POST", path, d->admin_token, NULL, "all good\n", 9, &r), 200);
    e2e_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s.0/0/report", id);
    j = dx_post(d, path, "{\"state\":\"completed\",\"exitCode\":0}", 200);
    json_decref(j);
    t = wait_graph(d, id, "completed", 10000);
    json_decref(t);
    t = task(d, id, 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(t, "runs"), 0), "workerId")),
                        "external:volunteer");
    json_decref(t);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_graph_across_three_workers, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_worker_kill9_task_retried_elsewhere,
                                                 e2e_setup, e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_relengd_kill9_restart_mid_graph, e2e_setup,
                                                 e2e_teardown, (void *)&opts_port),
        cmocka_unit_test_prestate_setup_teardown(test_external_graph_task, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
