/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/graph/test_spec.c -- graph validation (modules/graph/spec.c),
 * directly: every kind of problem is reported (all of them at once), chunk
 * expansion with THIS_CHUNK/TOTAL_CHUNKS and dependencies on chunked tasks,
 * cycle detection naming the cycle, limits, and a large graph validated in
 * linear passes; plus the label map.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/graph/labelmap.h"
#include "modules/graph/spec.h"

static const char *const types[] = {"linux64-build", "linux64-test", NULL};

static const struct graph_limits lim = {
    .max_tasks = 1000,
    .max_chunks = 50,
    .default_retries = 3,
    .max_retries = 10,
    .max_run_time_s = 3600,
    .worker_types = NULL,
};

#define P "\"payload\":{\"command\":[\"true\"]}"

/* The body behind the last parse(): the spec borrows from it. */
static json_t *kept;

static int parse(const char *text, const struct graph_limits *l, struct graph_spec *s)
{
    json_error_t je;

    json_decref(kept);
    kept = json_loads(text, 0, &je);
    if (!kept)
        fail_msg("test JSON does not parse: %s: %s", je.text, text);
    return graph_spec_parse(kept, l, NULL, false, s);
}

static void done(struct graph_spec *s)
{
    graph_spec_fini(s);
    json_decref(kept);
    kept = NULL;
}

/* Whether some problem contains needle. */
static bool has_problem(const struct graph_spec *s, const char *needle)
{
    size_t i;
    const json_t *p;

    json_array_foreach(s->problems, i, p) if (strstr(json_string_value(p), needle)) return true;
    return false;
}

static void dump(const struct graph_spec *s)
{
    char *t = json_dumps(s->problems, JSON_INDENT(1));
    fprintf(stderr, "problems: %s\n", t);
    free(t);
}

static void test_valid_graph(void **state)
{
    struct graph_spec s;
    json_t *body = json_loads(
        "{\"name\":\"n\",\"branch\":\"main\",\"labels\":{\"k\":\"v\"},\"tasks\":["
        "{\"label\":\"build\",\"workerType\":\"linux64-build\"," P "},"
        "{\"label\":\"test\",\"workerType\":\"linux64-test\",\"dependencies\":[\"build\"],"
        "\"requires\":\"all-resolved\",\"priority\":5,\"retries\":1,\"deadline\":60,"
        "\"breakpoint\":true," P "},"
        "{\"label\":\"fin\",\"workerType\":\"linux64-test\",\"final\":true,\"platform\":\"all\"," P
        "}]}",
        0, NULL);

    (void)state;
    assert_int_equal(graph_spec_parse(body, &lim, NULL, false, &s), 0);
    assert_int_equal(s.n_tasks, 3);
    assert_string_equal(s.name, "n");
    assert_string_equal(s.branch, "main");
    assert_string_equal(s.tasks[0].platform, "linux64");
    assert_int_equal(s.tasks[0].retries, 3);
    assert_int_equal(s.tasks[0].requires, GRAPH_REQ_ALL_COMPLETED);
    assert_int_equal(s.tasks[1].n_deps, 1);
    assert_int_equal(s.tasks[1].deps[0], 0);
    assert_int_equal(s.tasks[1].requires, GRAPH_REQ_ALL_RESOLVED);
    assert_int_equal(s.tasks[1].priority, 5);
    assert_int_equal(s.tasks[1].retries, 1);
    assert_int_equal(s.tasks[1].deadline_s, 60);
    assert_true(s.tasks[1].is_breakpoint);
    assert_true(s.tasks[2].is_final);
    assert_string_equal(s.tasks[2].platform, "all");
    assert_int_equal(json_array_size(s.problems), 0);
    graph_spec_fini(&s);
    json_decref(body);
}

/* Each kind of mistake, alone: the problem text it must produce. */
static void test_each_error(void **state)
{
    static const struct {
        const char *graph, *problem;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{}", "\"tasks\" must be a non-empty array"},
        {"{\"tasks\":[]}", "\"tasks\" must be a non-empty array"},
        {"{\"bogus\":1,\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
         "unknown field \"bogus\""},
        {"{\"name\":5,\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
         "\"name\" must be a string"},
        {"{\"labels\":{\"a\":1},\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
         "label \"a\" must be a string"},
        {"{\"coalesce\":true,\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
         "\"coalesce\" needs \"branch\" and \"template\""},
        {"{\"tasks\":[5]}", "tasks[0]: must be an object"},
        {"{\"tasks\":[{\"workerType\":\"w\"," P "}]}", "\"label\" (a string) is required"},
        {"{\"tasks\":[{\"label\":\"\",\"workerType\":\"w\"," P "}]}", "\"label\" must be 1 to"},
        {"{\"tasks\":[{\"label\":\"a\"," P "}]}", "\"workerType\" is required"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w w\"," P "}]}",
         "\"workerType\" must be 1 to 64"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"}]}", "\"payload\" is required"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{}}]}",
         "payload \"command\" must be a string or an array"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":[]}}]}",
         "payload \"command\" is empty"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":[1]}}]}",
         "must hold only strings"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":\"x\","
         "\"env\":{\"A\":1}}}]}",
         "payload env \"A\" must be a string"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":\"x\","
         "\"artifacts\":[{\"name\":\"../x\",\"path\":\"p\"}]}}]}",
         "payload artifacts[0] needs"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":\"x\","
         "\"maxRunTime\":0}}]}",
         "\"maxRunTime\" must be an integer from 1 to 3600"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"payload\":{\"command\":\"x\","
         "\"shell\":1}}]}",
         "unknown field \"shell\""},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"requires\":\"most\"," P "}]}",
         "\"requires\" must be"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"retries\":11," P "}]}",
         "\"retries\" must be an integer from 0 to 10"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"priority\":\"hi\"," P "}]}",
         "\"priority\" must be an integer"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"inactive\":1," P "}]}",
         "\"inactive\" must be true or false"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"chunks\":51," P "}]}",
         "\"chunks\" must be an integer from 1 to 50"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":\"b\"," P "}]}",
         "\"dependencies\" must be an array"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "},"
         "{\"label\":\"a\",\"workerType\":\"w\"," P "}]}",
         "duplicate label \"a\""},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":[\"zz\"]," P "}]}",
         "unknown dependency \"zz\""},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}",
         "depends on itself"},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"final\":true," P "},"
         "{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "}]}",
         "depends on final task \"a\""},
        {"{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\"," P "},"
         "{\"label\":\"f\",\"workerType\":\"w\",\"final\":true,\"dependencies\":[\"a\"]," P "}]}",
         "takes no \"dependencies\""},
        {"{\"tasks\":[{\"label\":\"t\",\"workerType\":\"w\",\"chunks\":2," P "},"
         "{\"label\":\"t-1/2\",\"workerType\":\"w\"," P "}]}",
         "chunk label \"t-1/2\" is also another task's"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph_spec s;
        int rc = parse(cases[i].graph, &lim, &s);
        if (rc != -2 || !has_problem(&s, cases[i].problem)) {
            dump(&s);
            fail_msg("case %zu (%s): rc %d, want -2 and a problem with \"%s\"", i, cases[i].graph,
                     rc, cases[i].problem);
        }
        done(&s);
    }
}

static void test_all_problems_listed(void **state)
{
    struct graph_spec s;

    (void)state;
    assert_int_equal(parse("{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"retries\":-1," P
                           "},{\"label\":\"b\"," P "},{\"label\":\"c\",\"workerType\":\"w\"}]}",
                           &lim, &s),
                     -2);
    assert_true(has_problem(&s, "tasks[0] (\"a\"): \"retries\""));
    assert_true(has_problem(&s, "tasks[1] (\"b\"): \"workerType\" is required"));
    assert_true(has_problem(&s, "tasks[2] (\"c\"): \"payload\" is required"));
    assert_int_equal(json_array_size(s.problems), 3);
    done(&s);
}

static void test_worker_types_restricted(void **state)
{
    struct graph_limits l = lim;
    struct graph_spec s;

    (void)state;
    l.worker_types = types;
    assert_int_equal(parse("{\"tasks\":[{\"label\":\"a\",\"workerType\":\"linux64-build\"," P
                           "},{\"label\":\"b\",\"workerType\":\"win64-build\"," P "}]}",
                           &l, &s),
                     -2);
    assert_true(has_problem(&s, "unknown worker type \"win64-build\""));
    assert_int_equal(json_array_size(s.problems), 1);
    done(&s);
}

static void test_size_limit(void **state)
{
    struct graph_limits l = lim;
    struct graph_spec s;

    (void)state;
    l.max_tasks = 4;
    assert_int_equal(parse("{\"tasks\":[{\"label\":\"a\",\"workerType\":\"w\",\"chunks\":3," P
                           "},{\"label\":\"b\",\"workerType\":\"w\",\"chunks\":2," P "}]}",
                           &l, &s),
                     -2);
    assert_true(has_problem(&s, "the graph has 5 tasks (chunks expanded), the limit is 4"));
    done(&s);
}

static void test_chunks(void **state)
{
    struct graph_spec s;
    const json_t *env;

    (void)state;
    assert_int_equal(
        parse("{\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P "},"
              "{\"label\":\"test\",\"workerType\":\"w\",\"chunks\":3,\"dependencies\":[\"build\"],"
              "\"payload\":{\"command\":\"run\",\"env\":{\"A\":\"1\"}}},"
              "{\"label\":\"report\",\"workerType\":\"w\",\"dependencies\":[\"test\"]," P "},"
              "{\"label\":\"one\",\"workerType\":\"w\",\"dependencies\":[\"test-2/3\"]," P "}]}",
              &lim, &s),
        0);
    assert_int_equal(s.n_tasks, 6);
    assert_string_equal(s.tasks[1].label, "test-1/3");
    assert_string_equal(s.tasks[3].label, "test-3/3");
    for (int c = 1; c <= 3; c++) {
        char want[4];
        snprintf(want, sizeof(want), "%d", c);
        env = json_object_get(s.tasks[c].payload, "env");
        assert_string_equal(json_string_value(json_object_get(env, "THIS_CHUNK")), want);
        assert_string_equal(json_string_value(json_object_get(env, "TOTAL_CHUNKS")), "3");
        assert_string_equal(json_string_value(json_object_get(env, "A")), "1");
        assert_int_equal(s.tasks[c].n_deps, 1);
        assert_int_equal(s.tasks[c].deps[0], 0);
    }
    /* a dependency on the chunked label means every chunk */
    assert_int_equal(s.tasks[4].n_deps, 3);
    assert_int_equal(s.tasks[4].deps[0], 1);
    assert_int_equal(s.tasks[4].deps[2], 3);
    /* one chunk by its own label */
    assert_int_equal(s.tasks[5].n_deps, 1);
    assert_int_equal(s.tasks[5].deps[0], 2);
    /* an unchunked payload is left alone */
    assert_null(json_object_get(s.tasks[0].payload, "env"));
    done(&s);
}

static void test_cycles(void **state)
{
    struct graph_spec s;

    (void)state;
    assert_int_equal(
        parse("{\"tasks\":[{\"label\":\"root\",\"workerType\":\"w\"," P "},"
              "{\"label\":\"a\",\"workerType\":\"w\",\"dependencies\":[\"root\",\"c\"]," P "},"
              "{\"label\":\"b\",\"workerType\":\"w\",\"dependencies\":[\"a\"]," P "},"
              "{\"label\":\"c\",\"workerType\":\"w\",\"dependencies\":[\"b\"]," P "},"
              "{\"label\":\"d\",\"workerType\":\"w\",\"dependencies\":[\"c\"]," P "}]}",
              &lim, &s),
        -2);
    assert_int_equal(json_array_size(s.problems), 1);
    /* the three labels of the cycle, in run order, and no bystander */
    {
        const char *p = json_string_value(json_array_get(s.problems, 0));
        assert_non_null(strstr(p, "dependency cycle: "));
        assert_true(strstr(p, "\"a\" -> \"b\" -> \"c\" -> \"a\"") ||
                    strstr(p, "\"b\" -> \"c\" -> \"a\" -> \"b\"") ||
                    strstr(p, "\"c\" -> \"a\" -> \"b\" -> \"c\""));
        assert_null(strstr(p, "root"));
        assert_null(strstr(p, "\"d\""));
    }
    done(&s);
    /* two tasks depending on each other */
    assert_int_equal(parse("{\"tasks\":[{\"label\":\"x\",\"workerType\":\"w\",\"dependencies\":"
                           "[\"y\"]," P "},{\"label\":\"y\",\"workerType\":\"w\",\"dependencies\":"
                           "[\"x\"]," P "}]}",
                           &lim, &s),
                     -2);
    assert_true(has_problem(&s, "dependency cycle: \"x\" -> \"y\" -> \"x\"") ||
                has_problem(&s, "dependency cycle: \"y\" -> \"x\" -> \"y\""));
    done(&s);
}

/* A big graph (20,000 tasks in a long chain with fan-in): validated, with
   a cycle closed at the far end found. Linear passes keep this fast; the
   chain would blow the stack of a recursive search. */
static void test_large_chain(void **state)
{
    struct graph_limits l = lim;
    json_t *body = json_object(), *tasks = json_array();
    struct graph_spec s;
    char label[32], dep[32];
    const size_t n = 20000;

    (void)state;
    l.max_tasks = n;
    json_object_set_new(body, "tasks", tasks);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_pack("{s:s, s:s, s:{s:s}}", "label", "", "workerType", "w", "payload",
                              "command", "x");
        snprintf(label, sizeof(label), "t%zu", i);
        json_object_set_new(t, "label", json_string(label));
        if (i > 0) {
            json_t *deps = json_array();
            snprintf(dep, sizeof(dep), "t%zu", i - 1);
            json_array_append_new(deps, json_string(dep));
            if (i > 10) {
                snprintf(dep, sizeof(dep), "t%zu", i / 2);
                json_array_append_new(deps, json_string(dep));
            }
            json_object_set_new(t, "dependencies", deps);
        }
        json_array_append_new(tasks, t);
    }
    assert_int_equal(graph_spec_parse(body, &l, NULL, false, &s), 0);
    assert_int_equal(s.n_tasks, n);
    graph_spec_fini(&s);
    /* close the chain: t0 depends on the last task */
    snprintf(dep, sizeof(dep), "t%zu", n - 1);
    json_object_set_new(json_array_get(tasks, 0), "dependencies", json_pack("[s]", dep));
    assert_int_equal(graph_spec_parse(body, &l, NULL, false, &s), -2);
    assert_true(has_problem(&s, "dependency cycle: "));
    graph_spec_fini(&s);
    json_decref(body);
}

/* Adding tasks to a stored graph: existing labels are dependencies, not
   new labels; final ones cannot be depended on. */
static void test_existing_labels(void **state)
{
    struct labelmap ex = {0};
    struct graph_spec s;
    json_t *body;

    (void)state;
    assert_int_equal(labelmap_init(&ex, 2), 0);
    assert_int_equal(labelmap_put(&ex, "build", 0), 0);
    assert_int_equal(labelmap_put(&ex, "fin", GRAPH_EXISTING_FINAL), 0);
    body = json_loads("{\"tasks\":[{\"label\":\"new\",\"workerType\":\"w\",\"dependencies\":"
                      "[\"build\"]," P "}]}",
                      0, NULL);
    assert_int_equal(graph_spec_parse(body, &lim, &ex, true, &s), 0);
    assert_int_equal(s.tasks[0].n_deps, 0);
    assert_int_equal(s.tasks[0].n_ext_deps, 1);
    assert_string_equal(s.tasks[0].ext_deps[0], "build");
    graph_spec_fini(&s);
    json_decref(body);
    body =
        json_loads("{\"name\":\"x\",\"tasks\":[{\"label\":\"build\",\"workerType\":\"w\"," P
                   "},{\"label\":\"n2\",\"workerType\":\"w\",\"dependencies\":[\"fin\"]," P "}]}",
                   0, NULL);
    assert_int_equal(graph_spec_parse(body, &lim, &ex, true, &s), -2);
    assert_true(has_problem(&s, "duplicate label \"build\""));
    assert_true(has_problem(&s, "unknown field \"name\""));
    graph_spec_fini(&s);
    json_decref(body);
    labelmap_fini(&ex);
}

static void test_labelmap(void **state)
{
    struct labelmap m = {0};
    char keys[3000][8];

    (void)state;
    assert_int_equal(labelmap_init(&m, 1), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        assert_int_equal(labelmap_put(&m, keys[i], (size_t)i), 0);
    }
    assert_int_equal(labelmap_put(&m, "k7", 99), 1);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(labelmap_get(&m, keys[i]), (size_t)i);
    assert_int_equal(labelmap_get(&m, "nope"), SIZE_MAX);
    labelmap_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_graph),
        cmocka_unit_test(test_each_error),
        cmocka_unit_test(test_all_problems_listed),
        cmocka_unit_test(test_worker_types_restricted),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_large_chain),
        cmocka_unit_test(test_existing_labels),
        cmocka_unit_test(test_labelmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
