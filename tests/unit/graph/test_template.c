/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/graph/test_template.c -- graph templates
 * (modules/graph/template.c), directly: rendering with parameters and
 * forEach expansion, jobs toggled off become inactive, parameter errors,
 * template shape errors; and the shipped templates of etc/graph/ render
 * into graphs that pass validation.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/graph/spec.h"
#include "modules/graph/template.h"

static const char *const tpl_text =
    "{\"parameters\":{\"revision\":{\"type\":\"string\",\"required\":true},"
    "\"repository\":{\"type\":\"string\",\"default\":\"https://r\"},"
    "\"platforms\":{\"type\":\"list\",\"default\":[\"linux\",\"win\"]},"
    "\"suites\":{\"type\":\"list\",\"default\":[\"a\",\"b\",\"c\"]}},"
    "\"graph\":{\"name\":\"try {revision}\",\"repository\":\"{repository}\",\"tasks\":["
    "{\"label\":\"build-{platform}\",\"forEach\":{\"platform\":\"platforms\"},"
    "\"workerType\":\"{platform}-b\",\"payload\":{\"command\":[\"make\",\"{revision}\"]}},"
    "{\"label\":\"test-{platform}-{suite}\",\"forEach\":{\"platform\":\"platforms\","
    "\"suite\":\"suites\"},\"workerType\":\"{platform}-t\",\"dependencies\":"
    "[\"build-{platform}\"],\"payload\":{\"command\":\"run {suite}\"}}]}}";

static const struct graph_limits lim = {
    .max_tasks = 1000,
    .max_chunks = 10,
    .default_retries = 1,
    .max_retries = 5,
    .max_run_time_s = 86400,
    .worker_types = NULL,
};

static json_t *load(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static bool has(const json_t *problems, const char *needle)
{
    size_t i;
    const json_t *p;
    json_array_foreach(problems, i, p) if (strstr(json_string_value(p), needle)) return true;
    return false;
}

static const json_t *task(const json_t *graph, const char *label)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(graph, "tasks"), i,
                       t) if (strcmp(json_string_value(json_object_get(t, "label")), label) ==
                              0) return t;
    return NULL;
}

static void test_render(void **state)
{
    json_t *tpl = load(tpl_text), *params = load("{\"revision\":\"abc\",\"platforms\":[\"mac\","
                                                 "\"linux\"],\"inactive\":[\"test-mac-b\"]}");
    json_t *problems = json_array(), *out = NULL;
    const json_t *t;
    struct graph_spec s;

    (void)state;
    assert_int_equal(graph_template_render("try", tpl, params, problems, &out), 0);
    assert_int_equal(json_array_size(problems), 0);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "try abc");
    assert_string_equal(json_string_value(json_object_get(out, "repository")), "https://r");
    assert_string_equal(json_string_value(json_object_get(out, "template")), "try");
    /* 2 builds + 2 x 3 tests */
    assert_int_equal(json_array_size(json_object_get(out, "tasks")), 8);
    t = task(out, "build-mac");
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "workerType")), "mac-b");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(t, "payload"), "command"), 1)),
                        "abc");
    assert_null(json_object_get(t, "forEach"));
    t = task(out, "test-linux-c");
    assert_string_equal(json_string_value(json_array_get(json_object_get(t, "dependencies"), 0)),
                        "build-linux");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(t, "payload"), "command")), "run c");
    assert_null(json_object_get(t, "inactive"));
    assert_true(json_is_true(json_object_get(task(out, "test-mac-b"), "inactive")));
    /* and it is a valid graph */
    assert_int_equal(graph_spec_parse(out, &lim, NULL, false, &s), 0);
    graph_spec_fini(&s);
    json_decref(out);
    json_decref(problems);
    json_decref(params);
    json_decref(tpl);
}

static void test_param_errors(void **state)
{
    static const struct {
        const char *params, *problem;
    } cases[] = {
        {"{}", "parameter \"revision\" is required"},
        {"{\"revision\":\"\"}", "parameter \"revision\" must be a non-empty string"},
        {"{\"revision\":5}", "parameter \"revision\" must be a non-empty string"},
        {"{\"revision\":\"x\",\"platforms\":\"linux\"}", "\"platforms\" must be a list"},
        {"{\"revision\":\"x\",\"platforms\":[1]}", "\"platforms\" must be a list"},
        {"{\"revision\":\"x\",\"colour\":\"red\"}", "unknown parameter \"colour\""},
        {"{\"revision\":\"x\",\"inactive\":\"all\"}", "\"inactive\" must be a list"},
        {"[1]", "must be a JSON object"},
    };
    json_t *tpl = load(tpl_text);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *params = load(cases[i].params), *problems = json_array(), *out = NULL;
        int rc = graph_template_render("t", tpl, params, problems, &out);
        if (rc != -2 || !has(problems, cases[i].problem) || out)
            fail_msg("case %zu: rc %d, want a problem \"%s\"", i, rc, cases[i].problem);
        json_decref(problems);
        json_decref(params);
    }
    json_decref(tpl);
}

static void test_template_errors(void **state)
{
    static const struct {
        const char *tpl, *problem;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{}", "\"graph\" (an object) is required"},
        {"{\"graph\":{\"tasks\":[]}}", "\"tasks\" must be a non-empty array"},
        {"{\"parameters\":{\"p\":{\"type\":\"number\"}},\"graph\":{\"tasks\":[{}]}}",
         "\"type\" must be \"string\" or \"list\""},
        {"{\"parameters\":{\"p\":{\"type\":\"string\"}},\"graph\":{\"tasks\":[{\"forEach\":"
         "{\"x\":\"p\"}}]}}",
         "forEach \"x\" must name a list parameter"},
        {"{\"graph\":{\"tasks\":[{\"label\":\"{nope}\"}]}}", "unknown parameter \"{nope}\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *tpl = load(cases[i].tpl), *problems = json_array(), *out = NULL;
        int rc = graph_template_render("t", tpl, NULL, problems, &out);
        if (rc != -2 || !has(problems, cases[i].problem))
            fail_msg("case %zu: rc %d, want a problem \"%s\"", i, rc, cases[i].problem);
        json_decref(out);
        json_decref(problems);
        json_decref(tpl);
    }
    assert_true(graph_template_name_ok("try_1-a"));
    assert_false(graph_template_name_ok("../x"));
    assert_false(graph_template_name_ok(""));
}

/* The templates shipped in etc/graph render with their defaults into valid
   graphs. */
static void test_shipped_templates(void **state)
{
    static const char *const names[] = {"try", "release"};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        json_t *tpl, *params = load("{\"revision\":\"0123abcd\"}"), *problems = json_array();
        json_t *out = NULL;
        struct graph_spec s;

        snprintf(path, sizeof(path), "%s/etc/graph/%s.json", TOP_SRCDIR, names[i]);
        tpl = json_load_file(path, 0, NULL);
        assert_non_null(tpl);
        assert_int_equal(graph_template_check(tpl, problems), 0);
        assert_int_equal(graph_template_render(names[i], tpl, params, problems, &out), 0);
        if (graph_spec_parse(out, &lim, NULL, false, &s) != 0) {
            char *p = json_dumps(s.problems, 0);
            fail_msg("%s renders into an invalid graph: %s", names[i], p);
        }
        assert_true(s.n_tasks > 3);
        graph_spec_fini(&s);
        json_decref(out);
        json_decref(problems);
        json_decref(params);
        json_decref(tpl);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_shipped_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
