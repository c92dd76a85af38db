/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_example.c -- the example module end to end, as a script
 * would use it: create, list (paged), get notes; bad input (400) changes
 * nothing; each note publishes example.noted; notes survive a clean restart
 * and a kill -9; the module's counter shows in /metrics; its routes are in
 * the OpenAPI document. The e2e config sets max_note_len = 1KiB.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

#define NOTES "/api/v1/example/notes"

/* POST a note; returns the reply's JSON (new reference) after checking 201. */
static json_t *create(struct e2e_daemon *d, const char *token, const char *text)
{
    struct e2e_resp r;
    json_t *body = json_pack("{s:s}", "text", text), *note;
    char *s = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (e2e_post(d, NOTES, token, s, &r) != 201)
        fprintf(stderr, "POST notes -> %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "application/json"));
    note = json_incref(r.json);
    e2e_resp_free(&r);
    free(s);
    return note;
}

static json_t *list(struct e2e_daemon *d, const char *query)
{
    struct e2e_resp r;
    char path[256];
    json_t *notes;

    snprintf(path, sizeof(path), NOTES "%s", query);
    if (e2e_get(d, path, NULL, &r) != 200)
        fprintf(stderr, "GET %s -> %d %s\n", path, r.status, r.body);
    assert_int_equal(r.status, 200);
    notes = json_incref(json_object_get(r.json, "notes"));
    assert_true(json_is_array(notes));
    e2e_resp_free(&r);
    return notes;
}

static json_int_t note_id(json_t *n)
{
    return json_integer_value(json_object_get(n, "id"));
}

static void test_create_list_get(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    json_t *a, *b, *c, *notes;
    char path[128], tok[64];
    uint64_t now_s = (uint64_t)time(NULL);

    a = create(d, d->admin_token, "first note");
    assert_true(note_id(a) > 0);
    assert_string_equal(json_string_value(json_object_get(a, "text")), "first note");
    /* the author is the token's name, never its secret */
    assert_non_null(json_string_value(json_object_get(a, "author")));
    assert_null(strstr(json_string_value(json_object_get(a, "author")), "rd_"));
    /* created_ms is now-ish */
    {
        json_int_t ms = json_integer_value(json_object_get(a, "created_ms"));
        assert_true(ms / 1000 >= (json_int_t)now_s - 60 && ms / 1000 <= (json_int_t)now_s + 60);
    }

    /* another author: a token with just the write scope */
    assert_int_equal(e2e_token_create(d, "note-writer", "[\"example:write\"]", NULL, tok, NULL), 0);
    b = create(d, tok, "second note \xc3\xa9\xe2\x9c\x93 \"quoted\" \\ back\nslash");
    assert_string_equal(json_string_value(json_object_get(b, "author")), "note-writer");
    c = create(d, d->admin_token, "third note");
    assert_true(note_id(a) < note_id(b) && note_id(b) < note_id(c));

    /* list: oldest first, exactly these */
    notes = list(d, "");
    assert_int_equal(json_array_size(notes), 3);
    assert_true(json_equal(json_array_get(notes, 0), a));
    assert_true(json_equal(json_array_get(notes, 1), b));
    assert_true(json_equal(json_array_get(notes, 2), c));
    json_decref(notes);

    /* paging */
    notes = list(d, "?limit=2");
    assert_int_equal(json_array_size(notes), 2);
    assert_true(json_equal(json_array_get(notes, 1), b));
    json_decref(notes);
    snprintf(path, sizeof(path), "?limit=2&after=%lld", (long long)note_id(b));
    notes = list(d, path);
    assert_int_equal(json_array_size(notes), 1);
    assert_true(json_equal(json_array_get(notes, 0), c));
    json_decref(notes);
    snprintf(path, sizeof(path), "?after=%lld", (long long)note_id(c));
    notes = list(d, path);
    assert_int_equal(json_array_size(notes), 0);
    json_decref(notes);

    /* get one, byte for byte what was stored (UTF-8, quotes, newline) */
    snprintf(path, sizeof(path), NOTES "/%lld", (long long)note_id(b));
    assert_int_equal(e2e_get(d, path, NULL, &r), 200);
    assert_true(json_equal(r.json, b));
    e2e_resp_free(&r);

    /* unknown ids */
    {
        static const char *const unknown[] = {NOTES "/999999", NOTES "/0",
                                              NOTES "/abc",    NOTES "/-1",
                                              NOTES "/1.5",    NOTES "/99999999999999999999999"};
        for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
            e2e_get(d, unknown[i], NULL, &r);
            if (r.status != 404)
                fprintf(stderr, "GET %s -> %d %s\n", unknown[i], r.status, r.body);
            assert_int_equal(r.status, 404);
            assert_string_equal(e2e_error_code(&r), "unknown_note");
            e2e_resp_free(&r);
        }
    }

    /* the module's status counts them */
    assert_int_equal(e2e_get(d, "/api/v1/modules/example", NULL, &r), 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "status"), "notes")), 3);
    e2e_resp_free(&r);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    e2e_pass(d);
}

static void test_bad_input(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char big[2048];
    json_t *notes;
    static const struct {
        const char *body;
        const char *mentions; /* the message names the problem */
    } cases[] = {
        {"{}", "text"},
        {"{\"text\":\"\"}", "text"},
        {"{\"text\":42}", "text"},
        {"{\"text\":null}", "text"},
        {"{\"text\":[\"a\"]}", "text"},
        {"{\"text\":\"ok\",\"extra\":1}", "extra"},
        {"[\"text\"]", NULL},
        {"\"text\"", NULL},
        {"{\"text\":\"unterminated", NULL},
        {"", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e2e_post(d, NOTES, d->admin_token, cases[i].body, &r);
        if (r.status != 400)
            fprintf(stderr, "POST %s -> %d %s\n", cases[i].body, r.status, r.body);
        assert_int_equal(r.status, 400);
        assert_non_null(e2e_error_code(&r));
        assert_non_null(e2e_error_message(&r));
        if (cases[i].mentions)
            assert_non_null(strstr(e2e_error_message(&r), cases[i].mentions));
        e2e_resp_free(&r);
    }

    /* longer than max_note_len (1 KiB in the e2e config), but under max_body */
    memset(big, 'x', sizeof(big));
    snprintf(big, sizeof(big), "{\"text\":\"%01100d\"}", 0);
    e2e_post(d, NOTES, d->admin_token, big, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(e2e_error_message(&r), "text"));
    e2e_resp_free(&r);
    /* exactly max_note_len is fine */
    snprintf(big, sizeof(big), "{\"text\":\"%01024d\"}", 0);
    assert_int_equal(e2e_post(d, NOTES, d->admin_token, big, &r), 201);
    e2e_resp_free(&r);

    /* bad list parameters */
    {
        static const char *const bad[] = {"?limit=0", "?limit=501", "?limit=abc", "?after=-1",
                                          "?after=x"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char path[128];
            snprintf(path, sizeof(path), NOTES "%s", bad[i]);
            e2e_get(d, path, NULL, &r);
            if (r.status != 400)
                fprintf(stderr, "GET %s -> %d %s\n", path, r.status, r.body);
            assert_int_equal(r.status, 400);
            assert_non_null(e2e_error_message(&r));
            e2e_resp_free(&r);
        }
    }

    /* only the one good note exists, and only its event */
    notes = list(d, "");
    assert_int_equal(json_array_size(notes), 1);
    json_decref(notes);
    assert_int_equal(e2e_get(d, "/api/v1/events?type=example", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
    e2e_resp_free(&r);
    e2e_pass(d);
}

static void test_event_published(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    json_t *note, *events, *env;
    struct e2e_sse *s;
    json_t *snap;

    s = e2e_sse_open(d, "/api/v1/events?type=example.noted", NULL, NULL, 20000);
    assert_non_null(s);
    assert_true(e2e_sse_wait_open(s, 5000));
    note = create(d, d->admin_token, "an event, please");

    /* polled */
    assert_int_equal(e2e_get(d, "/api/v1/events?type=example.noted", NULL, &r), 200);
    events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 1);
    env = json_array_get(events, 0);
    assert_string_equal(json_string_value(json_object_get(env, "type")), "example.noted");
    assert_string_equal(json_string_value(json_object_get(env, "source")), "example");
    assert_true(json_equal(json_object_get(env, "data"), note));

    /* streamed, identical */
    assert_int_equal(e2e_sse_wait(s, 1, 10000), 1);
    snap = e2e_sse_snapshot(s);
    assert_true(json_equal(json_array_get(json_object_get(snap, "events"), 0), env));
    json_decref(snap);
    e2e_sse_close(s);
    e2e_resp_free(&r);
    json_decref(note);
    e2e_pass(d);
}

static void test_survives_restart(void **state)
{
    struct e2e_daemon *d = *state;
    json_t *a, *b, *notes;
    struct e2e_resp r;
    char path[128];

    a = create(d, d->admin_token, "before a clean restart");
    assert_int_equal(e2e_restart(d), E2E_READY);
    snprintf(path, sizeof(path), NOTES "/%lld", (long long)note_id(a));
    assert_int_equal(e2e_get(d, path, NULL, &r), 200);
    assert_true(json_equal(r.json, a));
    e2e_resp_free(&r);

    b = create(d, d->admin_token, "before kill -9");
    assert_true(note_id(b) > note_id(a));
    e2e_kill9(d);
    assert_int_equal(e2e_launch(d), E2E_READY);
    notes = list(d, "");
    assert_int_equal(json_array_size(notes), 2);
    assert_true(json_equal(json_array_get(notes, 0), a));
    assert_true(json_equal(json_array_get(notes, 1), b));
    json_decref(notes);

    /* ids go on increasing after the restarts */
    {
        json_t *c = create(d, d->admin_token, "after");
        assert_true(note_id(c) > note_id(b));
        json_decref(c);
    }
    json_decref(a);
    json_decref(b);
    e2e_pass(d);
}

/* HTTP requests are counted once complete, which may be just after the
   client got its reply: poll (bounded) until the series reaches want. */
static double metric_settled(struct e2e_daemon *d, const char *series, double want)
{
    uint64_t deadline = e2e_now_ms() + 5000;
    double v = e2e_metric(d, series);

    while (!(v >= want) && e2e_now_ms() < deadline) {
        e2e_sleep_ms(20);
        v = e2e_metric(d, series);
    }
    return v;
}

static void test_metrics_and_openapi(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    double v;
    json_t *paths, *p;

    for (int i = 0; i < 4; i++)
        json_decref(create(d, d->admin_token, "count me"));
    e2e_post(d, NOTES, d->admin_token, "{}", &r); /* rejected: not counted */
    e2e_resp_free(&r);
    v = e2e_metric(d, "relengd_example_notes_created_total");
    if (v != 4.0)
        fprintf(stderr, "relengd_example_notes_created_total = %g\n", v);
    assert_true(v == 4.0);
    assert_true(metric_settled(d,
                               "relengd_http_requests_total{route=\"/api/v1/example/notes\","
                               "method=\"POST\",status=\"201\"}",
                               4.0) == 4.0);
    assert_true(metric_settled(d,
                               "relengd_http_requests_total{route=\"/api/v1/example/notes\","
                               "method=\"POST\",status=\"400\"}",
                               1.0) == 1.0);

    assert_int_equal(e2e_get(d, "/api/v1/openapi.json", NULL, &r), 200);
    paths = json_object_get(r.json, "paths");
    p = json_object_get(paths, "/api/v1/example/notes");
    if (!p)
        p = json_object_get(paths, "/example/notes");
    assert_non_null(p);
    assert_non_null(json_object_get(p, "get"));
    assert_non_null(json_object_get(p, "post"));
    e2e_resp_free(&r);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_list_get, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_event_published, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_survives_restart, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_openapi, e2e_setup, e2e_teardown),
    };
    return cmocka_run_group_tests_name("e2e example", tests, NULL, NULL);
}
