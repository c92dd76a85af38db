/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_router.c -- core/router.c in tables of cases: path
 * params, literal-beats-param precedence, HEAD via GET, 405 Allow lists, bad
 * registrations, conflicts, dropping a module's routes, the sorted listing,
 * and readers running alongside a writer. Single test thread except the
 * concurrency case.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/router.h"

/* Handlers are never called here; their addresses tell routes apart. */
static int h_a(struct rd_req *r, void *arg)
{
    (void)r;
    (void)arg;
    return 0;
}

static int h_b(struct rd_req *r, void *arg)
{
    (void)r;
    (void)arg;
    return 1;
}

static int owner_graph, owner_core, owner_talos;

struct reg {
    void *owner;
    const char *owner_name;
    const char *method, *path, *scope;
};

/* The table most match cases run against. */
static const struct reg base_routes[] = {
    {&owner_core, "core", "GET", "/api/v1/status", NULL},
    {&owner_core, "core", "GET", "/api/v1/tokens", "admin"},
    {&owner_core, "core", "POST", "/api/v1/tokens", "admin"},
    {&owner_core, "core", "DELETE", "/api/v1/tokens/{id}", "admin"},
    {&owner_graph, "graph", "GET", "/api/v1/graph/tasks/{id}", NULL},
    {&owner_graph, "graph", "GET", "/api/v1/graph/tasks/pending", NULL},
    {&owner_graph, "graph", "POST", "/api/v1/graph/tasks/{id}/cancel", "graph:cancel"},
    {&owner_graph, "graph", "GET", "/api/v1/graph/tasks/{id}/runs/{run}", NULL},
    {&owner_graph, "graph", "GET", "/api/v1/graph/{kind}/latest", NULL},
    {&owner_graph, "graph", "GET", "/api/v1/graph/tasks/{id}/log", NULL},
    {&owner_graph, "graph", "POST", "/api/v1/graph/tasks/special", "graph:submit"},
    {&owner_graph, "graph", "PUT", "/api/v1/graph/tasks/special", "graph:submit"},
    {&owner_graph, "graph", "HEAD", "/api/v1/graph/heads", NULL},
    {&owner_graph, "graph", "GET", "/api/v1/graph/heads", NULL},
    {&owner_graph, "graph", "GET", "/api/v1/graph", NULL},
    {&owner_talos, "talos", "GET", "/", NULL},
};

static int setup(void **state)
{
    struct router *rt = NULL;

    if (router_new(&rt) != RD_OK)
        return -1;
    for (size_t i = 0; i < sizeof(base_routes) / sizeof(base_routes[0]); i++) {
        const struct reg *g = &base_routes[i];
        if (router_add(rt, g->owner, g->owner_name, g->method, g->path, g->scope, 0, h_a,
                       (void *)g) != RD_OK) {
            router_free(rt);
            return -1;
        }
    }
    *state = rt;
    return 0;
}

static int teardown(void **state)
{
    router_free(*state);
    return 0;
}

/* ---------------------------------------------------------------- matching */

struct match_case {
    const char *method, *path;
    enum router_result want;
    const char *route;   /* expected route path (FOUND) */
    const char *rmethod; /* expected route method (FOUND) */
    const char *params;  /* "id=1,run=2" (FOUND) or the Allow list (NO_METHOD) */
};

static const struct match_case match_cases[] = {
    /* plain and params */
    {"GET", "/api/v1/status", ROUTER_FOUND, "/api/v1/status", "GET", ""},
    {"GET", "/api/v1/graph/tasks/abc", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET", "id=abc"},
    {"GET", "/api/v1/graph/tasks/a b", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET", "id=a b"},
    {"GET", "/api/v1/graph/tasks/7/runs/3", ROUTER_FOUND, "/api/v1/graph/tasks/{id}/runs/{run}",
     "GET", "id=7,run=3"},
    {"POST", "/api/v1/graph/tasks/7/cancel", ROUTER_FOUND, "/api/v1/graph/tasks/{id}/cancel",
     "POST", "id=7"},
    {"DELETE", "/api/v1/tokens/tok_0123456789ab", ROUTER_FOUND, "/api/v1/tokens/{id}", "DELETE",
     "id=tok_0123456789ab"},
    {"GET", "/api/v1/graph", ROUTER_FOUND, "/api/v1/graph", "GET", ""},
    {"GET", "/", ROUTER_FOUND, "/", "GET", ""},
    /* literal beats param, from the left */
    {"GET", "/api/v1/graph/tasks/pending", ROUTER_FOUND, "/api/v1/graph/tasks/pending", "GET", ""},
    {"GET", "/api/v1/graph/tasks/pendingx", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET",
     "id=pendingx"},
    {"GET", "/api/v1/graph/tasks/latest", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET",
     "id=latest"},
    {"GET", "/api/v1/graph/other/latest", ROUTER_FOUND, "/api/v1/graph/{kind}/latest", "GET",
     "kind=other"},
    {"GET", "/api/v1/graph/tasks/1/log", ROUTER_FOUND, "/api/v1/graph/tasks/{id}/log", "GET",
     "id=1"},
    /* a literal route without the method falls back to a param route with it */
    {"GET", "/api/v1/graph/tasks/special", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET",
     "id=special"},
    /* HEAD: served by GET, but an explicit HEAD route wins */
    {"HEAD", "/api/v1/status", ROUTER_FOUND, "/api/v1/status", "GET", ""},
    {"HEAD", "/api/v1/graph/tasks/9", ROUTER_FOUND, "/api/v1/graph/tasks/{id}", "GET", "id=9"},
    {"HEAD", "/api/v1/graph/heads", ROUTER_FOUND, "/api/v1/graph/heads", "HEAD", ""},
    {"GET", "/api/v1/graph/heads", ROUTER_FOUND, "/api/v1/graph/heads", "GET", ""},
    /* 405 with the Allow list */
    {"POST", "/api/v1/status", ROUTER_NO_METHOD, NULL, NULL, "GET, HEAD"},
    {"PUT", "/api/v1/tokens", ROUTER_NO_METHOD, NULL, NULL, "GET, HEAD, POST"},
    {"GET", "/api/v1/tokens/x", ROUTER_NO_METHOD, NULL, NULL, "DELETE"},
    {"HEAD", "/api/v1/tokens/x", ROUTER_NO_METHOD, NULL, NULL, "DELETE"},
    {"DELETE", "/api/v1/graph/tasks/special", ROUTER_NO_METHOD, NULL, NULL, "GET, HEAD, POST, PUT"},
    {"GET", "/api/v1/graph/tasks/7/cancel", ROUTER_NO_METHOD, NULL, NULL, "POST"},
    /* 404 */
    {"GET", "/api/v1/nothing", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/api/v1/status/", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/api/v1//status", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "api/v1/status", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/api/v1/graph/tasks", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/api/v1/graph/tasks/1/runs", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/api/v1/STATUS", ROUTER_NO_PATH, NULL, NULL, NULL},
    {"GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/a/b/c/d/e/f/g/h", ROUTER_NO_PATH,
     NULL, NULL, NULL},
};

static void params_string(const struct route_match *m, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < m->n_params; i++) {
        int n = snprintf(buf + off, len - off, "%s%s=%s", i ? "," : "", m->names[i], m->values[i]);
        assert_true(n > 0 && (size_t)n < len - off);
        off += (size_t)n;
    }
}

static void test_match_table(void **state)
{
    struct router *rt = *state;

    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = &match_cases[i];
        struct route_match m;
        enum router_result res = router_match(rt, c->method, c->path, &m);
        char got[256];

        print_message("case %zu: %s %s\n", i, c->method, c->path);
        assert_int_equal(res, c->want);
        if (res == ROUTER_FOUND) {
            assert_non_null(m.route);
            assert_string_equal(m.route->path, c->route);
            assert_string_equal(m.route->method, c->rmethod);
            params_string(&m, got, sizeof(got));
            assert_string_equal(got, c->params);
            assert_ptr_equal(m.route->fn, h_a);
        } else {
            assert_null(m.route);
            assert_int_equal(m.n_params, 0);
            if (res == ROUTER_NO_METHOD)
                assert_string_equal(m.allow, c->params);
        }
        router_release(rt, &m);
        /* Harmless twice, and after a miss. */
        router_release(rt, &m);
    }
}

static void test_match_bad_args(void **state)
{
    struct router *rt = *state;
    struct route_match m;

    assert_int_equal(router_match(rt, NULL, "/api/v1/status", &m), ROUTER_NO_PATH);
    assert_int_equal(router_match(rt, "GET", NULL, &m), ROUTER_NO_PATH);
    assert_int_equal(router_match(NULL, "GET", "/api/v1/status", &m), ROUTER_NO_PATH);
}

/* The route struct carries what the handler dispatch needs. */
static void test_match_route_fields(void **state)
{
    struct router *rt = *state;
    struct route_match m;

    assert_int_equal(router_match(rt, "POST", "/api/v1/graph/tasks/x/cancel", &m), ROUTER_FOUND);
    assert_string_equal(m.route->scope, "graph:cancel");
    assert_string_equal(m.route->owner_name, "graph");
    assert_ptr_equal(m.route->owner, &owner_graph);
    assert_int_equal(m.route->n_segs, 6);
    assert_string_equal(((const struct reg *)m.route->arg)->path,
                        "/api/v1/graph/tasks/{id}/cancel");
    router_release(rt, &m);
    assert_int_equal(router_match(rt, "GET", "/api/v1/status", &m), ROUTER_FOUND);
    assert_null(m.route->scope);
    router_release(rt, &m);
}

/* ------------------------------------------------------------ registration */

struct add_case {
    const char *method, *path, *scope;
    unsigned flags;
    int want;
};

static const struct add_case add_cases[] = {
    /* good */
    {"GET", "/x/{id}", NULL, 0, RD_OK},
    {"POST", "/x/{id}/do-it_now.v2~", "x:write", RD_ROUTE_RAW, RD_OK},
    {"GET", "/y/{a}/{b_c}", "a.b:c-d:e_f", 0, RD_OK},
    {"GET", "/z/a:b@c", NULL, 0, RD_OK},
    /* conflicts: the same method and shape */
    {"GET", "/x/{id}", NULL, 0, RD_ECONFLICT},
    {"GET", "/x/{other}", "admin", 0, RD_ECONFLICT},
    {"GET", "/api/v1/status", NULL, 0, RD_ECONFLICT},
    /* the same path with another method is fine, so is a literal vs a param */
    {"DELETE", "/x/{id}", "x:delete", 0, RD_OK},
    {"GET", "/x/literal", NULL, 0, RD_OK},
    /* bad paths */
    {"GET", "", NULL, 0, RD_EINVAL},
    {"GET", "x", NULL, 0, RD_EINVAL},
    {"GET", "/x/", NULL, 0, RD_EINVAL},
    {"GET", "//x", NULL, 0, RD_EINVAL},
    {"GET", "/x//y", NULL, 0, RD_EINVAL},
    {"GET", "/x/./y", NULL, 0, RD_EINVAL},
    {"GET", "/x/../y", NULL, 0, RD_EINVAL},
    {"GET", "/..", NULL, 0, RD_EINVAL},
    {"GET", "/x/{}", NULL, 0, RD_EINVAL},
    {"GET", "/x/{ID}", NULL, 0, RD_EINVAL},
    {"GET", "/x/{id1}", NULL, 0, RD_EINVAL},
    {"GET", "/x/{id", NULL, 0, RD_EINVAL},
    {"GET", "/x/id}", NULL, 0, RD_EINVAL},
    {"GET", "/x/a{id}", NULL, 0, RD_EINVAL},
    {"GET", "/x/{id}/{id}", NULL, 0, RD_EINVAL},
    {"GET", "/x/a b", NULL, 0, RD_EINVAL},
    {"GET", "/x/a%2F", NULL, 0, RD_EINVAL},
    {"GET", "/x/a?b", NULL, 0, RD_EINVAL},
    {"GET", "/x/a#b", NULL, 0, RD_EINVAL},
    {"GET", "/x/\xc3\xa9", NULL, 0, RD_EINVAL},
    {"GET", "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", NULL, 0, RD_EINVAL},
    {"GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/a/b/c/d/e/f/g", NULL, 0,
     RD_EINVAL},
    /* bad methods, scopes, flags */
    {"get", "/m", NULL, 0, RD_EINVAL},
    {"", "/m", NULL, 0, RD_EINVAL},
    {"G T", "/m", NULL, 0, RD_EINVAL},
    {"GETGETGETGETGETGET", "/m", NULL, 0, RD_EINVAL},
    {"GET", "/m", "", 0, RD_EINVAL},
    {"GET", "/m", "graph:*", 0, RD_EINVAL},
    {"GET", "/m", "graph:", 0, RD_EINVAL},
    {"GET", "/m", ":graph", 0, RD_EINVAL},
    {"GET", "/m", "a::b", 0, RD_EINVAL},
    {"GET", "/m", "a b", 0, RD_EINVAL},
    {"GET", "/m", NULL, 0x80, RD_EINVAL},
};

static void test_add_table(void **state)
{
    struct router *rt = *state;

    for (size_t i = 0; i < sizeof(add_cases) / sizeof(add_cases[0]); i++) {
        const struct add_case *c = &add_cases[i];
        print_message("case %zu: %s %s\n", i, c->method, c->path);
        assert_int_equal(router_add(rt, &owner_talos, "talos", c->method, c->path, c->scope,
                                    c->flags, h_b, NULL),
                         c->want);
    }
    /* NULLs */
    assert_int_equal(router_add(rt, NULL, "x", NULL, "/n", NULL, 0, h_b, NULL), RD_EINVAL);
    assert_int_equal(router_add(rt, NULL, "x", "GET", NULL, NULL, 0, h_b, NULL), RD_EINVAL);
    assert_int_equal(router_add(rt, NULL, "x", "GET", "/n", NULL, 0, NULL, NULL), RD_EINVAL);
    assert_int_equal(router_add(NULL, NULL, "x", "GET", "/n", NULL, 0, h_b, NULL), RD_EINVAL);
    /* A long scope is refused, a long valid path is fine up to the limit. */
    {
        char scope[200], path[600];
        memset(scope, 'a', sizeof(scope) - 1);
        scope[sizeof(scope) - 1] = '\0';
        assert_int_equal(router_add(rt, NULL, "x", "GET", "/long", scope, 0, h_b, NULL), RD_EINVAL);
        path[0] = '/';
        memset(path + 1, 'a', sizeof(path) - 2);
        path[sizeof(path) - 1] = '\0';
        assert_int_equal(router_add(rt, NULL, "x", "GET", path, NULL, 0, h_b, NULL), RD_EINVAL);
    }
}

/* What the table added is what matching sees (flags, handler, param names). */
static void test_add_then_match(void **state)
{
    struct router *rt = *state;
    struct route_match m;

    assert_int_equal(router_add(rt, &owner_talos, "talos", "POST", "/r/{name}/raw", "t:w",
                                RD_ROUTE_RAW, h_b, &owner_talos),
                     RD_OK);
    assert_int_equal(router_match(rt, "POST", "/r/n1/raw", &m), ROUTER_FOUND);
    assert_int_equal(m.route->flags, RD_ROUTE_RAW);
    assert_ptr_equal(m.route->fn, h_b);
    assert_ptr_equal(m.route->arg, &owner_talos);
    assert_int_equal(m.n_params, 1);
    assert_string_equal(m.names[0], "name");
    assert_string_equal(m.values[0], "n1");
    router_release(rt, &m);
}

/* ---------------------------------------------------------- drop and list */

static void test_drop_owner(void **state)
{
    struct router *rt = *state;
    struct route_match m;
    json_t *list;

    router_drop_owner(rt, &owner_graph);
    assert_int_equal(router_match(rt, "GET", "/api/v1/graph/tasks/1", &m), ROUTER_NO_PATH);
    assert_int_equal(router_match(rt, "GET", "/api/v1/graph", &m), ROUTER_NO_PATH);
    assert_int_equal(router_match(rt, "GET", "/api/v1/status", &m), ROUTER_FOUND);
    router_release(rt, &m);
    list = router_list(rt);
    assert_non_null(list);
    for (size_t i = 0; i < json_array_size(list); i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(list, i), "module")), "graph");
    assert_int_equal(json_array_size(list), 5);
    json_decref(list);
    /* Dropping again, or an unknown owner, changes nothing. */
    router_drop_owner(rt, &owner_graph);
    router_drop_owner(rt, NULL);
    list = router_list(rt);
    assert_int_equal(json_array_size(list), 5);
    json_decref(list);
    /* The graph routes can come back (a module restart). */
    assert_int_equal(router_add(rt, &owner_graph, "graph", "GET", "/api/v1/graph/tasks/{id}", NULL,
                                0, h_a, NULL),
                     RD_OK);
    router_drop_owner(NULL, &owner_graph);
}

static void test_list_sorted(void **state)
{
    struct router *rt = *state;
    json_t *list = router_list(rt);
    const char *prev_path = "", *prev_method = "";
    json_t *o;

    assert_non_null(list);
    assert_int_equal(json_array_size(list), sizeof(base_routes) / sizeof(base_routes[0]));
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *path, *method;
        o = json_array_get(list, i);
        path = json_string_value(json_object_get(o, "path"));
        method = json_string_value(json_object_get(o, "method"));
        assert_non_null(path);
        assert_non_null(method);
        assert_non_null(json_object_get(o, "scope"));
        assert_non_null(json_string_value(json_object_get(o, "module")));
        assert_true(strcmp(prev_path, path) < 0 ||
                    (strcmp(prev_path, path) == 0 && strcmp(prev_method, method) < 0));
        prev_path = path;
        prev_method = method;
    }
    /* First is "/", then /api/v1/graph; DELETE /tokens/{id} comes after GET/POST /tokens. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "path")), "/");
    o = json_array_get(list, json_array_size(list) - 1);
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/api/v1/tokens/{id}");
    assert_string_equal(json_string_value(json_object_get(o, "scope")), "admin");
    o = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/api/v1/graph");
    assert_true(json_is_null(json_object_get(o, "scope")));
    assert_string_equal(json_string_value(json_object_get(o, "module")), "graph");
    json_decref(list);
}

static void test_list_empty(void **state)
{
    struct router *rt = NULL;
    json_t *list;

    (void)state;
    assert_int_equal(router_new(&rt), RD_OK);
    list = router_list(rt);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_null(router_list(NULL));
    router_free(rt);
    router_free(NULL);
}

/* A handler holding its match may list routes (nested read lock) even
   while a writer waits. */
struct writer_arg {
    struct router *rt;
    int rc;
};

static void *writer_thread(void *p)
{
    struct writer_arg *w = p;
    w->rc = router_add(w->rt, &owner_talos, "talos", "GET", "/late", NULL, 0, h_b, NULL);
    return NULL;
}

static void test_nested_read_with_waiting_writer(void **state)
{
    struct router *rt = *state;
    struct route_match m;
    struct writer_arg w = {rt, -100};
    pthread_t t;
    json_t *list;

    assert_int_equal(router_match(rt, "GET", "/api/v1/status", &m), ROUTER_FOUND);
    assert_int_equal(pthread_create(&t, NULL, writer_thread, &w), 0);
    list = router_list(rt); /* must not deadlock */
    assert_non_null(list);
    json_decref(list);
    router_release(rt, &m);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, RD_OK);
    assert_int_equal(router_match(rt, "GET", "/late", &m), ROUTER_FOUND);
    router_release(rt, &m);
}

/* Many readers and a writer adding and dropping routes at once. */
struct churn_arg {
    struct router *rt;
    int n_found;
    atomic_bool *writer_done;
};

/* Matches during the churn and goes on until the writer is done and the
   route was seen at least once (it is there for good once the writer is
   done), so a slow machine's scheduling cannot make it miss every window. */
static void *reader_thread(void *p)
{
    struct churn_arg *c = p;

    for (long i = 0; i < 10000000L; i++) {
        if (i >= 2000 && c->n_found > 0 && atomic_load(c->writer_done))
            break;
        struct route_match m;
        if (router_match(c->rt, "GET", "/api/v1/graph/tasks/42", &m) == ROUTER_FOUND) {
            if (strcmp(m.values[0], "42") == 0)
                c->n_found++;
            router_release(c->rt, &m);
        }
    }
    return NULL;
}

static void test_concurrent_churn(void **state)
{
    struct router *rt = *state;
    struct churn_arg args[4];
    atomic_bool writer_done = false;
    pthread_t t[4];

    for (int i = 0; i < 4; i++) {
        args[i].rt = rt;
        args[i].n_found = 0;
        args[i].writer_done = &writer_done;
        assert_int_equal(pthread_create(&t[i], NULL, reader_thread, &args[i]), 0);
    }
    for (int i = 0; i < 200; i++) {
        router_drop_owner(rt, &owner_graph);
        assert_int_equal(router_add(rt, &owner_graph, "graph", "GET", "/api/v1/graph/tasks/{id}",
                                    NULL, 0, h_a, NULL),
                         RD_OK);
    }
    atomic_store(&writer_done, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_true(args[i].n_found > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_route_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_then_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sorted, setup, teardown),
        cmocka_unit_test(test_list_empty),
        cmocka_unit_test_setup_teardown(test_nested_read_with_waiting_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_churn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
