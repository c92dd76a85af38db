/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/example/test_notes.c -- modules/example/notes.c without a host:
 * tables of POST /notes bodies, GET /notes queries and note ids, and the
 * note's JSON form.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "modules/example/notes.h"

#define MAX_LEN 16 /* the limit the body cases are written against */

static void test_note_parse_table(void **state)
{
    static const struct {
        const char *body; /* JSON text; NULL: no body */
        int rc;
        const char *msg;  /* RD_EINVAL: the message starts with this */
        const char *text; /* RD_OK: the parsed text */
    } cases[] = {
        {"{\"text\":\"hello\"}", RD_OK, NULL, "hello"},
        {"{\"text\":\"a\"}", RD_OK, NULL, "a"},
        {"{\"text\":\"0123456789abcdef\"}", RD_OK, NULL, "0123456789abcdef"}, /* = MAX_LEN */
        {"{\"text\":\"\\u00e9t\\u00e9\"}", RD_OK, NULL, "\xc3\xa9t\xc3\xa9"}, /* 5 bytes */
        {"{\"text\":\"  spaced  \"}", RD_OK, NULL, "  spaced  "},
        {NULL, RD_EINVAL, "body: expected a JSON object", NULL},
        {"[]", RD_EINVAL, "body: expected a JSON object", NULL},
        {"[{\"text\":\"a\"}]", RD_EINVAL, "body: expected a JSON object", NULL},
        {"\"text\"", RD_EINVAL, "body: expected a JSON object", NULL},
        {"42", RD_EINVAL, "body: expected a JSON object", NULL},
        {"null", RD_EINVAL, "body: expected a JSON object", NULL},
        {"{}", RD_EINVAL, "text: required", NULL},
        {"{\"text\":null}", RD_EINVAL, "text: expected a string", NULL},
        {"{\"text\":5}", RD_EINVAL, "text: expected a string", NULL},
        {"{\"text\":true}", RD_EINVAL, "text: expected a string", NULL},
        {"{\"text\":[\"a\"]}", RD_EINVAL, "text: expected a string", NULL},
        {"{\"text\":{\"a\":1}}", RD_EINVAL, "text: expected a string", NULL},
        {"{\"text\":\"\"}", RD_EINVAL, "text: must not be empty", NULL},
        {"{\"text\":\"a\\u0000b\"}", RD_EINVAL, "text: contains a NUL character", NULL},
        {"{\"text\":\"0123456789abcdefX\"}", RD_EINVAL, "text: 17 bytes, the limit is 16", NULL},
        {"{\"text\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
         RD_EINVAL, "text: 18 bytes", NULL}, /* 9 characters, 18 bytes: bytes count */
        {"{\"text\":\"a\",\"extra\":1}", RD_EINVAL, "extra: unknown field", NULL},
        {"{\"extra\":1}", RD_EINVAL, "extra: unknown field", NULL},
        {"{\"Text\":\"a\"}", RD_EINVAL, "Text: unknown field", NULL},
        {"{\"text\":\"a\",\"author\":\"mallory\"}", RD_EINVAL, "author: unknown field", NULL},
        {"{\"text\":\"a\",\"id\":7}", RD_EINVAL, "id: unknown field", NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = cases[i].body
                           ? json_loads(cases[i].body, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                           : NULL;
        struct example_note_input in = {0};
        struct rd_error err = {0};
        int rc;

        if (cases[i].body && !body)
            fail_msg("case %zu: test body %s is not JSON", i, cases[i].body);
        rc = example_note_parse(body, MAX_LEN, &in, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, cases[i].body, rc, cases[i].rc,
                     err.msg);
        if (rc == RD_OK) {
            assert_string_equal(in.text, cases[i].text);
            assert_int_equal(in.text_len, strlen(cases[i].text));
        } else {
            assert_int_equal(err.code, rc);
            if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
                fail_msg("case %zu (%s): message '%s', want '%s...'", i, cases[i].body, err.msg,
                         cases[i].msg);
        }
        json_decref(body);
    }
}

/* A NULL err is allowed (rd_error_set is NULL-safe): only the code comes back. */
static void test_note_parse_without_err(void **state)
{
    json_t *body = json_pack("{s:s}", "text", "");
    struct example_note_input in;
    (void)state;

    assert_int_equal(example_note_parse(body, MAX_LEN, &in, NULL), RD_EINVAL);
    json_decref(body);
}

/* The limit is the configured one, whatever it is. */
static void test_note_parse_limit_edges(void **state)
{
    json_t *body = json_pack("{s:s}", "text", "abc");
    struct example_note_input in;
    struct rd_error err = {0};
    (void)state;

    assert_int_equal(example_note_parse(body, 3, &in, &err), RD_OK);
    assert_int_equal(example_note_parse(body, 2, &in, &err), RD_EINVAL);
    assert_string_equal(err.msg, "text: 3 bytes, the limit is 2");
    assert_int_equal(example_note_parse(body, UINT64_MAX, &in, &err), RD_OK);
    json_decref(body);
}

static void test_list_query_table(void **state)
{
    static const struct {
        const char *limit, *after;
        int rc;
        int64_t want_limit, want_after;
        const char *msg;
    } cases[] = {
        {NULL, NULL, RD_OK, EXAMPLE_LIST_DEFAULT, 0, NULL},
        {"1", NULL, RD_OK, 1, 0, NULL},
        {"500", "0", RD_OK, 500, 0, NULL},
        {"007", "12", RD_OK, 7, 12, NULL},
        {NULL, "9223372036854775807", RD_OK, EXAMPLE_LIST_DEFAULT, INT64_MAX, NULL},
        {"0", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"501", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"-1", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"+5", NULL, RD_EINVAL, 0, 0, "limit:"},
        {" 5", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"5x", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"ten", NULL, RD_EINVAL, 0, 0, "limit:"},
        {"99999999999999999999", NULL, RD_EINVAL, 0, 0, "limit:"},
        {NULL, "-1", RD_EINVAL, 0, 0, "after:"},
        {NULL, "", RD_EINVAL, 0, 0, "after:"},
        {NULL, "1.5", RD_EINVAL, 0, 0, "after:"},
        {NULL, "9223372036854775808", RD_EINVAL, 0, 0, "after:"},
        {"10", "x", RD_EINVAL, 0, 0, "after:"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct example_list_query q;
        struct rd_error err = {0};
        int rc = example_list_query_parse(cases[i].limit, cases[i].after, &q, &err);

        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, err.msg);
        if (rc == RD_OK) {
            assert_int_equal(q.limit, cases[i].want_limit);
            assert_int_equal(q.after, cases[i].want_after);
        } else {
            assert_int_equal(strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)), 0);
        }
    }
}

static void test_id_parse_table(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t want;
    } cases[] = {
        {"1", RD_OK, 1},
        {"42", RD_OK, 42},
        {"9223372036854775807", RD_OK, INT64_MAX},
        {"0", RD_EINVAL, 0},
        {"", RD_EINVAL, 0},
        {NULL, RD_EINVAL, 0},
        {"-3", RD_EINVAL, 0},
        {"abc", RD_EINVAL, 0},
        {"1e3", RD_EINVAL, 0},
        {"12 ", RD_EINVAL, 0},
        {"9223372036854775808", RD_EINVAL, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t id = -1;
        int rc = example_id_parse(cases[i].s, &id);

        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d", i, cases[i].s ? cases[i].s : "NULL", rc,
                     cases[i].rc);
        if (rc == RD_OK)
            assert_int_equal(id, cases[i].want);
        else
            assert_int_equal(id, -1); /* untouched on error */
    }
}

static void test_note_json(void **state)
{
    struct example_note n = {
        .id = 7, .text = "buy milk", .author = "alice", .created_ms = INT64_C(1767225600123)};
    json_t *j, *want;
    (void)state;

    j = example_note_json(&n);
    assert_non_null(j);
    want = json_pack("{s:i, s:s, s:s, s:I}", "id", 7, "text", "buy milk", "author", "alice",
                     "created_ms", (json_int_t)INT64_C(1767225600123));
    assert_true(json_equal(j, want));
    assert_int_equal(json_object_size(j), 4);
    json_decref(want);
    json_decref(j);

    /* a row without text cannot become a note */
    n.text = NULL;
    assert_null(example_note_json(&n));
}

/* What example_note_parse accepts, example_note_json gives back unchanged. */
static void test_parse_then_json_round_trip(void **state)
{
    json_t *body = json_pack("{s:s}", "text", "line 1\nline 2\t\"quoted\" \xe2\x9c\x93");
    struct example_note_input in;
    struct example_note n = {.id = 1, .author = "bob", .created_ms = 5};
    json_t *j;
    (void)state;

    assert_int_equal(example_note_parse(body, 4096, &in, NULL), RD_OK);
    n.text = in.text;
    j = example_note_json(&n);
    assert_true(json_equal(json_object_get(j, "text"), json_object_get(body, "text")));
    json_decref(j);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note_parse_table),
        cmocka_unit_test(test_note_parse_without_err),
        cmocka_unit_test(test_note_parse_limit_edges),
        cmocka_unit_test(test_list_query_table),
        cmocka_unit_test(test_id_parse_table),
        cmocka_unit_test(test_note_json),
        cmocka_unit_test(test_parse_then_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
