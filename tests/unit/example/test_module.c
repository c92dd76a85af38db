/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/example/test_module.c -- the example module through the fake
 * host (tests/fakes/fake_host.h): routes, validation, scopes, the event, the
 * metric, status, configuration, the sample file, the OpenAPI fragment,
 * persistence across a restart, and failure injection of every host call.
 * The last group loads the test modules of tests/modules/ into the fake
 * host, which checks both the fake and those modules.
 */
#include "config.h"

#include <dlfcn.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "modules/example/notes.h"
#include "tests/fakes/fake_host.h"

/* modules/example/module.c, through its export macro. */
const struct rd_module *rd_module_entry(void);

#define NOTES "/api/v1/example/notes"
#define WRITER "example:write"
#define TEST_MODULES TOP_BUILDDIR "/tests/modules/.libs"

/* ------------------------------------------------------------- helpers */

static struct fake_host *load(const char *conf)
{
    struct fake_host *fh = fake_host_new("example", conf);

    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    return fh;
}

static int setup(void **state)
{
    *state = load(NULL);
    return 0;
}

static int teardown(void **state)
{
    fake_host_free(*state);
    return 0;
}

static const char *err_code(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

static const char *err_message(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));
}

/* POST a note as a writer; returns its id. */
static json_int_t post_note(struct fake_host *fh, const char *text)
{
    json_t *body = json_pack("{s:s}", "text", text);
    char *s = json_dumps(body, 0);
    struct fake_resp r = fake_host_call(fh, "POST", NOTES, s, WRITER);
    json_int_t id;

    assert_int_equal(r.status, 201);
    id = json_integer_value(json_object_get(r.body, "id"));
    assert_true(id > 0);
    fake_resp_free(&r);
    free(s);
    json_decref(body);
    return id;
}

static size_t n_listed(struct fake_host *fh)
{
    struct fake_resp r = fake_host_call(fh, "GET", NOTES "?limit=500", NULL, NULL);
    size_t n;

    assert_int_equal(r.status, 200);
    n = json_array_size(json_object_get(r.body, "notes"));
    fake_resp_free(&r);
    return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ----------------------------------------------------------- the routes */

static void test_create_get_list(void **state)
{
    struct fake_host *fh = *state;
    struct fake_resp r, g;
    json_t *notes;

    r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"first\"}", WRITER);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(json_integer_value(json_object_get(r.body, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(r.body, "text")), "first");
    assert_string_equal(json_string_value(json_object_get(r.body, "author")), "test");
    assert_int_equal(json_integer_value(json_object_get(r.body, "created_ms")), FAKE_HOST_EPOCH_MS);

    /* GET /notes/{id} returns exactly what POST returned */
    g = fake_host_call(fh, "GET", NOTES "/1", NULL, NULL);
    assert_int_equal(g.status, 200);
    assert_true(json_equal(g.body, r.body));
    fake_resp_free(&g);
    fake_resp_free(&r);

    fake_host_advance(fh, 1500);
    assert_int_equal(post_note(fh, "second"), 2);
    assert_int_equal(post_note(fh, "third"), 3);
    g = fake_host_call(fh, "GET", NOTES "/2", NULL, "example:read");
    assert_int_equal(json_integer_value(json_object_get(g.body, "created_ms")),
                     FAKE_HOST_EPOCH_MS + 1500);
    fake_resp_free(&g);

    /* the list: oldest first; limit and after page through it */
    g = fake_host_call(fh, "GET", NOTES, NULL, NULL);
    assert_int_equal(g.status, 200);
    notes = json_object_get(g.body, "notes");
    assert_int_equal(json_array_size(notes), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 0), "text")),
                        "first");
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 2), "text")),
                        "third");
    fake_resp_free(&g);
    g = fake_host_call(fh, "GET", NOTES "?limit=2", NULL, NULL);
    notes = json_object_get(g.body, "notes");
    assert_int_equal(json_array_size(notes), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(notes, 1), "id")), 2);
    fake_resp_free(&g);
    g = fake_host_call(fh, "GET", NOTES "?after=2&limit=2", NULL, NULL);
    notes = json_object_get(g.body, "notes");
    assert_int_equal(json_array_size(notes), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(notes, 0), "id")), 3);
    fake_resp_free(&g);
    g = fake_host_call(fh, "GET", NOTES "?after=3", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(g.body, "notes")), 0);
    fake_resp_free(&g);

    /* HEAD is GET without a body, as far as the route is concerned */
    g = fake_host_call(fh, "HEAD", NOTES "/1", NULL, NULL);
    assert_int_equal(g.status, 200);
    fake_resp_free(&g);
}

static void test_text_round_trips(void **state)
{
    struct fake_host *fh = *state;
    static const char *const texts[] = {
        "a",
        "with \"quotes\" and \\ backslash",
        "line 1\nline 2\ttab",
        "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93",
        "'; DROP TABLE example_notes; --",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_int_t id = post_note(fh, texts[i]);
        char path[64];
        struct fake_resp g;

        snprintf(path, sizeof(path), NOTES "/%lld", (long long)id);
        g = fake_host_call(fh, "GET", path, NULL, NULL);
        assert_int_equal(g.status, 200);
        assert_string_equal(json_string_value(json_object_get(g.body, "text")), texts[i]);
        fake_resp_free(&g);
    }
    assert_int_equal(n_listed(fh), sizeof(texts) / sizeof(texts[0]));
}

static void test_bad_bodies_400(void **state)
{
    struct fake_host *fh = *state;
    static const struct {
        const char *body;
        const char *code;
        const char *field; /* the message starts with it */
    } cases[] = {
        {NULL, "bad_request", "body"},
        {"[]", "bad_request", "body"},
        {"\"just a string\"", "bad_request", "body"},
        {"{}", "bad_request", "text"},
        {"{\"text\":\"\"}", "bad_request", "text"},
        {"{\"text\":42}", "bad_request", "text"},
        {"{\"text\":null}", "bad_request", "text"},
        {"{\"text\":[\"x\"]}", "bad_request", "text"},
        {"{\"text\":\"ok\",\"colour\":\"red\"}", "bad_request", "colour"},
        {"{\"text\":\"ok\",\"author\":\"mallory\"}", "bad_request", "author"},
        /* not JSON: the host answers before the handler runs */
        {"{not json", "bad_request", "invalid JSON"},
        {"{\"text\":\"a\",}", "bad_request", "invalid JSON"},
        {"{\"text\":\"a\"} trailing", "bad_request", "invalid JSON"},
        {"{\"text\":\"a\",\"text\":\"b\"}", "bad_request", "invalid JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_resp r = fake_host_call(fh, "POST", NOTES, cases[i].body, WRITER);

        if (r.status != 400)
            fail_msg("case %zu (%s): status %d, body %s", i, cases[i].body, r.status, r.raw);
        assert_string_equal(err_code(&r), cases[i].code);
        if (cases[i].field) {
            const char *msg = err_message(&r);
            assert_non_null(msg);
            if (strncmp(msg, cases[i].field, strlen(cases[i].field)) != 0 ||
                (msg[strlen(cases[i].field)] != ':' && strcmp(cases[i].field, "invalid JSON")))
                fail_msg("case %zu: message '%s' does not name '%s'", i, msg, cases[i].field);
        }
        fake_resp_free(&r);
    }
    /* bad input changes nothing */
    assert_int_equal(n_listed(fh), 0);
    assert_int_equal(fake_host_n_events(fh, NULL), 0);
    assert_true(fake_host_metric(fh, "notes_created", NULL) == 0);
    assert_true(fake_host_logged(fh, RD_DEBUG, "POST /notes rejected: text: required"));
}

static void test_too_long_400(void **state)
{
    struct fake_host *fh = load("max_note_len = 8\n");
    struct fake_resp r;
    (void)state;

    r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"12345678\"}", WRITER);
    assert_int_equal(r.status, 201);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"123456789\"}", WRITER);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_code(&r), "bad_request");
    assert_string_equal(err_message(&r), "text: 9 bytes, the limit is 8");
    fake_resp_free(&r);
    assert_int_equal(n_listed(fh), 1);
    fake_host_free(fh);
}

static void test_unknown_note_404(void **state)
{
    struct fake_host *fh = *state;
    static const char *const paths[] = {
        NOTES "/1",   NOTES "/999", NOTES "/0",      NOTES "/-1",
        NOTES "/abc", NOTES "/1.5", NOTES "/%C3%A9", NOTES "/99999999999999999999999",
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct fake_resp r = fake_host_call(fh, "GET", paths[i], NULL, NULL);
        if (r.status != 404)
            fail_msg("%s: status %d", paths[i], r.status);
        assert_string_equal(err_code(&r), "unknown_note");
        fake_resp_free(&r);
    }
    post_note(fh, "now there is one");
    {
        struct fake_resp r = fake_host_call(fh, "GET", NOTES "/1", NULL, NULL);
        assert_int_equal(r.status, 200);
        fake_resp_free(&r);
    }
}

static void test_bad_list_query_400(void **state)
{
    struct fake_host *fh = *state;
    static const struct {
        const char *query, *field;
    } cases[] = {
        {"?limit=0", "limit"},         {"?limit=501", "limit"}, {"?limit=x", "limit"},
        {"?limit=", "limit"},          {"?after=-1", "after"},  {"?after=one", "after"},
        {"?limit=5&after=x", "after"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[128];
        struct fake_resp r;

        snprintf(path, sizeof(path), NOTES "%s", cases[i].query);
        r = fake_host_call(fh, "GET", path, NULL, NULL);
        if (r.status != 400)
            fail_msg("%s: status %d", path, r.status);
        assert_string_equal(err_code(&r), "bad_request");
        assert_int_equal(strncmp(err_message(&r), cases[i].field, strlen(cases[i].field)), 0);
        fake_resp_free(&r);
    }
}

static void test_scopes(void **state)
{
    struct fake_host *fh = *state;
    static const struct {
        const char *scopes;
        int status;
    } cases[] = {
        {NULL, 401},           /* anonymous */
        {"", 403},             /* a token without scopes */
        {"example:read", 403}, /* the wrong scope */
        {"graph:*", 403},      /* another module's wildcard */
        {"example:writer", 403},
        {"example:write", 201}, /* exact */
        {"example:*", 201},     /* wildcard */
        {"admin", 201},         /* everything */
        {"graph:write, example:write", 201},
    };
    struct fake_resp r;
    size_t n_created = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"x\"}", cases[i].scopes);
        if (r.status != cases[i].status)
            fail_msg("scopes '%s': status %d, want %d", cases[i].scopes ? cases[i].scopes : "NULL",
                     r.status, cases[i].status);
        if (r.status == 401)
            assert_string_equal(err_code(&r), "unauthorized");
        if (r.status == 403)
            assert_string_equal(err_code(&r), "insufficient_scope");
        if (r.status == 401 || r.status == 403)
            assert_non_null(strstr(err_message(&r), WRITER));
        n_created += r.status == 201;
        fake_resp_free(&r);
    }
    assert_int_equal(n_listed(fh), n_created);
    assert_int_equal(fake_host_n_events(fh, "example.noted"), n_created);

    /* reads are anonymous while the host allows anonymous reads */
    r = fake_host_call(fh, "GET", NOTES, NULL, NULL);
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
    fake_host_set_anonymous_read(fh, false);
    r = fake_host_call(fh, "GET", NOTES, NULL, NULL);
    assert_int_equal(r.status, 401);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", NOTES "/1", NULL, "example:read");
    assert_int_equal(r.status, 200);
    fake_resp_free(&r);
}

static void test_routing_errors(void **state)
{
    struct fake_host *fh = *state;
    struct fake_resp r;

    r = fake_host_call(fh, "DELETE", NOTES "/1", NULL, "admin");
    assert_int_equal(r.status, 405);
    assert_string_equal(err_code(&r), "method_not_allowed");
    assert_string_equal(r.headers, "Allow: GET, HEAD\r\n");
    fake_resp_free(&r);
    r = fake_host_call(fh, "PATCH", NOTES, "{}", "admin");
    assert_int_equal(r.status, 405);
    assert_string_equal(r.headers, "Allow: GET, HEAD, POST\r\n");
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "/api/v1/example/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(err_code(&r), "not_found");
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", NOTES "/1/extra", NULL, NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
}

/* ----------------------------------------------- event, metric, status */

struct seen {
    size_t n;
    uint64_t last_id;
    json_t *last;
};

static void on_noted(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct seen *s = arg;

    assert_string_equal(type, "example.noted");
    s->n++;
    s->last_id = id;
    json_decref(s->last);
    s->last = json_deep_copy(data);
}

static void test_event_published_with_note(void **state)
{
    struct fake_host *fh = *state;
    struct seen seen = {0};
    const json_t *env;
    struct fake_resp r;

    assert_int_equal(rd_subscribe(fake_host_handle(fh), "example", on_noted, &seen), RD_OK);
    r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"hello\"}", WRITER);
    assert_int_equal(r.status, 201);

    /* stored with the transaction: recorded at once, equal to the reply */
    assert_int_equal(fake_host_n_events(fh, "example.noted"), 1);
    assert_true(json_equal(fake_host_event(fh, "example.noted", 0), r.body));
    env = fake_host_envelope(fh, "example.noted", 0);
    assert_string_equal(json_string_value(json_object_get(env, "source")), "example");
    assert_true(json_integer_value(json_object_get(env, "id")) > 0);
    assert_null(fake_host_event(fh, "example.noted", 1));

    /* fanned out on the loop, after the commit */
    assert_int_equal(seen.n, 0);
    assert_true(fake_host_run_pending(fh) >= 1);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.last_id, (uint64_t)json_integer_value(json_object_get(env, "id")));
    assert_true(json_equal(seen.last, r.body));
    fake_resp_free(&r);

    /* one event per note, in order */
    post_note(fh, "second");
    fake_host_run_pending(fh);
    assert_int_equal(seen.n, 2);
    assert_string_equal(
        json_string_value(json_object_get(fake_host_event(fh, "example.noted", 1), "text")),
        "second");
    assert_true(json_integer_value(json_object_get(fake_host_envelope(fh, NULL, 1), "id")) >
                json_integer_value(json_object_get(fake_host_envelope(fh, NULL, 0), "id")));
    json_decref(seen.last);
}

static void test_metric_counts_created_notes(void **state)
{
    struct fake_host *fh = *state;
    struct fake_resp r;

    assert_true(fake_host_metric(fh, "notes_created", NULL) == 0);
    assert_true(isnan(fake_host_metric(fh, "no_such_metric", NULL)));
    post_note(fh, "one");
    post_note(fh, "two");
    r = fake_host_call(fh, "POST", NOTES, "{}", WRITER); /* rejected: not counted */
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"x\"}", NULL); /* 401: not counted */
    fake_resp_free(&r);
    assert_true(fake_host_metric(fh, "notes_created", NULL) == 2);
}

static void test_status(void **state)
{
    struct fake_host *fh = *state;
    json_t *st;

    st = fake_host_status(fh);
    assert_non_null(st);
    assert_int_equal(json_integer_value(json_object_get(st, "notes")), 0);
    json_decref(st);
    post_note(fh, "a");
    post_note(fh, "b");
    st = fake_host_status(fh);
    assert_int_equal(json_integer_value(json_object_get(st, "notes")), 2);
    json_decref(st);
}

/* ------------------------------------------------------- configuration */

static void test_config_defaults_and_values(void **state)
{
    struct fake_host *fh;
    char big[4097 + 16];
    struct fake_resp r;
    (void)state;

    /* default: 4 KiB */
    fh = load(NULL);
    assert_true(fake_host_logged(fh, RD_INFO, "greeting=\"hello\" max_note_len=4096"));
    memcpy(big, "{\"text\":\"", 9);
    memset(big + 9, 'a', 4097);
    memcpy(big + 9 + 4097, "\"}", 3);
    r = fake_host_call(fh, "POST", NOTES, big, WRITER);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    memcpy(big + 9 + 4096, "\"}", 3);
    r = fake_host_call(fh, "POST", NOTES, big, WRITER);
    assert_int_equal(r.status, 201);
    fake_resp_free(&r);
    fake_host_free(fh);

    /* values with units, and the [example] section form */
    fh = load("# a comment\ngreeting = hi there\n[example]\nmax_note_len = 1KiB\n");
    assert_true(fake_host_logged(fh, RD_INFO, "greeting=\"hi there\" max_note_len=1024"));
    fake_host_free(fh);
}

static void test_config_errors_fail_init(void **state)
{
    static const struct {
        const char *conf, *says;
    } cases[] = {
        {"max_note_len = lots\n", "example.conf:1"},
        {"max_note_len = 4KiB\nno_such_key = 1\n", "no_such_key"},
        {"max_note_len = 0\n", "max_note_len must be at least 1"},
        {"max_note_len = -5\n", "max_note_len"},
        {"[other]\nx = 1\n", "'x' in [other] is not a setting of this module"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_host *fh = fake_host_new("example", cases[i].conf);

        assert_non_null(fh);
        assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_EINVAL);
        assert_null(fake_host_mod(fh));
        if (!fake_host_logged(fh, RD_ERROR, cases[i].says))
            fail_msg("case %zu: no ERROR log naming '%s'", i, cases[i].says);
        fake_host_free(fh);
    }
}

/* etc/modules.d/example.conf lists every key of the table, commented out,
   as "# key = default   # doc", and nothing else that looks like a key. */
static void test_sample_config_matches_keys(void **state)
{
    const struct rd_module *desc = rd_module_entry();
    FILE *f = fopen(TOP_SRCDIR "/etc/modules.d/example.conf", "r");
    char line[512];
    size_t n_keys = 0, n_found = 0;
    (void)state;

    assert_non_null(f);
    assert_true(desc->keys == example_keys);
    for (const struct rd_cfg_key *k = desc->keys; k->name; k++)
        n_keys++;
    while (fgets(line, sizeof(line), f)) {
        char key[64], def[128], doc[256];
        const struct rd_cfg_key *k;

        if (sscanf(line, "# %63[a-z0-9_] = %127s # %255[^\n]", key, def, doc) != 3)
            continue;
        for (k = desc->keys; k->name && strcmp(k->name, key) != 0; k++)
            ;
        if (!k->name)
            fail_msg("sample key '%s' is not in the module's table", key);
        assert_string_equal(def, k->def);
        assert_string_equal(doc, k->doc);
        n_found++;
    }
    fclose(f);
    assert_int_equal(n_found, n_keys);
}

static void test_openapi_fragment(void **state)
{
    const struct rd_module *desc = rd_module_entry();
    json_error_t je;
    json_t *doc, *paths, *op;
    (void)state;

    doc = json_loads(desc->openapi, 0, &je);
    if (!doc)
        fail_msg("openapi.json: %s (line %d)", je.text, je.line);
    paths = json_object_get(doc, "paths");
    assert_int_equal(json_object_size(paths), 2);

    op = json_object_get(json_object_get(paths, "/notes"), "post");
    assert_non_null(json_object_get(op, "summary"));
    assert_string_equal(json_string_value(json_object_get(op, "x-scope")), WRITER);
    assert_non_null(json_object_get(op, "requestBody"));
    assert_non_null(json_object_get(json_object_get(op, "responses"), "201"));
    assert_non_null(json_object_get(json_object_get(op, "responses"), "400"));

    op = json_object_get(json_object_get(paths, "/notes"), "get");
    assert_true(json_is_null(json_object_get(op, "x-scope"))); /* present: an anonymous read */
    assert_int_equal(json_array_size(json_object_get(op, "parameters")), 2);

    op = json_object_get(json_object_get(paths, "/notes/{id}"), "get");
    assert_true(json_is_null(json_object_get(op, "x-scope")));
    assert_non_null(json_object_get(json_object_get(op, "responses"), "404"));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(op, "parameters"), 0), "in")),
                        "path");
    json_decref(doc);

    assert_string_equal(desc->name, "example");
    assert_string_equal(desc->build, RD_BUILD);
    assert_int_equal(desc->abi, RD_MODULE_ABI);
    assert_int_equal(desc->size, sizeof(struct rd_module));
}

/* --------------------------------------------------------- persistence */

static void test_notes_survive_restart(void **state)
{
    char dir[] = "/tmp/relengd-example-XXXXXX";
    struct fake_host *fh;
    struct fake_resp r;
    json_t *st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    fh = fake_host_new_in("example", NULL, dir);
    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    post_note(fh, "before the restart");
    post_note(fh, "also before");
    fake_host_free(fh);

    fh = fake_host_new_in("example", NULL, dir);
    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK); /* migrations: no-op */
    r = fake_host_call(fh, "GET", NOTES "/1", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "text")), "before the restart");
    fake_resp_free(&r);
    assert_int_equal(post_note(fh, "after"), 3); /* ids continue */
    st = fake_host_status(fh);
    assert_int_equal(json_integer_value(json_object_get(st, "notes")), 3);
    json_decref(st);
    /* the event ids continue too: the events table is in the same database */
    assert_true(
        json_integer_value(json_object_get(fake_host_envelope(fh, "example.noted", 0), "id")) >= 3);
    fake_host_free(fh);
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* ------------------------------------------------------ fault injection */

/* Fail host call n = 1, 2, ... during load: every failure must fail the
   load and leave nothing behind (the sanitizers and valgrind check the
   leaks), until a run with nothing injected loads. */
static void test_load_fails_cleanly_on_any_host_failure(void **state)
{
    static const int codes[] = {RD_EIO, RD_ENOMEM};
    (void)state;

    for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
        unsigned n;

        for (n = 1; n < 100; n++) {
            struct fake_host *fh = fake_host_new("example", NULL);
            int rc;

            assert_non_null(fh);
            fake_host_fail_call(fh, n, codes[c]);
            rc = fake_host_load(fh, rd_module_entry());
            if (fake_host_calls(fh) < n) {
                /* nothing was injected: this run must work, and it ends the loop */
                assert_int_equal(rc, RD_OK);
                fake_host_free(fh);
                break;
            }
            if (rc == RD_OK)
                fail_msg("host call %u failed with %d, yet the load succeeded", n, codes[c]);
            assert_null(fake_host_mod(fh));
            fake_host_free(fh);
        }
        assert_true(n > 3); /* config, migration, metric and routes at least */
        assert_true(n < 100);
    }
}

/* Fail host call k of a POST: the request fails with the host's status,
   and nothing is stored, published or counted -- the note and its event
   are one transaction. */
static void test_post_fails_cleanly_on_any_host_failure(void **state)
{
    struct fake_host *fh = *state;
    unsigned k;

    for (k = 1; k < 20; k++) {
        size_t n_events = fake_host_n_events(fh, NULL), n_notes = n_listed(fh);
        double created = fake_host_metric(fh, "notes_created", NULL);
        unsigned before = fake_host_calls(fh);
        struct fake_resp r;

        fake_host_fail_call(fh, before + k, RD_EIO);
        r = fake_host_call(fh, "POST", NOTES, "{\"text\":\"maybe\"}", WRITER);
        if (fake_host_calls(fh) < before + k) {
            assert_int_equal(r.status, 201);
            fake_resp_free(&r);
            fake_host_fail_clear(fh); /* not hit: it would fail the next call */
            break;
        }
        assert_int_equal(r.status, 500);
        assert_string_equal(err_code(&r), "io_error");
        fake_resp_free(&r);
        assert_int_equal(n_listed(fh), n_notes);
        assert_int_equal(fake_host_n_events(fh, NULL), n_events);
        assert_true(fake_host_metric(fh, "notes_created", NULL) == created);
    }
    assert_true(k >= 2); /* the write and the publish inside it */
    assert_int_equal(n_listed(fh), 1);
    assert_int_equal(fake_host_n_events(fh, "example.noted"), 1);
}

static void test_reads_fail_cleanly(void **state)
{
    struct fake_host *fh = *state;
    struct fake_resp r;
    json_t *st;

    post_note(fh, "x");
    fake_host_fail_call(fh, fake_host_calls(fh) + 1, RD_EIO);
    r = fake_host_call(fh, "GET", NOTES, NULL, NULL);
    assert_int_equal(r.status, 500);
    fake_resp_free(&r);
    fake_host_fail_call(fh, fake_host_calls(fh) + 1, RD_ETIMEDOUT);
    r = fake_host_call(fh, "GET", NOTES "/1", NULL, NULL);
    assert_int_equal(r.status, 504);
    fake_resp_free(&r);
    fake_host_fail_call(fh, fake_host_calls(fh) + 1, RD_EIO);
    st = fake_host_status(fh);
    assert_true(json_is_null(json_object_get(st, "notes")));
    json_decref(st);
}

/* ------------------------------------ the test modules in the fake host */

struct so {
    void *dl;
    const struct rd_module *desc;
};

/* Opens tests/modules/.libs/<name>.so; skips the test when it is not built. */
static struct so so_open(const char *name)
{
    struct so so = {0};
    char path[512];
    void *sym;
    const struct rd_module *(*entry)(void);

    snprintf(path, sizeof(path), TEST_MODULES "/%s.so", name);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "# %s is not built: skipped\n", path);
        skip();
    }
    so.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so.dl)
        fail_msg("dlopen %s: %s", path, dlerror());
    sym = dlsym(so.dl, "rd_module_entry");
    if (sym) {
        memcpy(&entry, &sym, sizeof(entry));
        so.desc = entry();
    }
    return so;
}

static CURLcode fetch_by_perform(void *arg, CURL *easy)
{
    (void)arg;
    return curl_easy_perform(easy);
}

static void test_hostcheck_passes_every_check(void **state)
{
    struct so so = so_open("hostcheck");
    struct fake_host *fh = fake_host_new("hostcheck", "greeting = from the fake host\n"
                                                      "[item.a]\nvalue = 1\n[item.b]\n");
    struct fake_resp r;
    json_t *st, *checks, *v;
    const char *name;
    (void)state;

    assert_non_null(so.desc);
    assert_non_null(fh);
    fake_host_set_fetch(fh, fetch_by_perform, NULL);
    assert_int_equal(fake_host_load(fh, so.desc), RD_OK);
    assert_int_equal(fake_host_ready_port(fh, "hostcheck"), 1);
    assert_int_equal(fake_host_n_timers(fh), 2);
    fake_host_run_pending(fh);  /* done, defer, fetch, fan-out */
    fake_host_advance(fh, 100); /* the one-shot timer and a tick */
    fake_host_run_pending(fh);
    assert_int_equal(fake_host_n_timers(fh), 1); /* the one-shot fired */
    assert_int_equal(fake_host_n_events(fh, "hostcheck.stored"), 1);
    assert_int_equal(
        json_integer_value(fake_host_event(fh, "hostcheck.worked", 0)
                               ? json_object_get(fake_host_event(fh, "hostcheck.worked", 0), "sum")
                               : NULL),
        500500);
    assert_int_equal(
        json_integer_value(json_object_get(fake_host_event(fh, "hostcheck.timer", 0), "at_ms")),
        FAKE_HOST_EPOCH_MS + 50);

    st = fake_host_status(fh);
    checks = json_object_get(st, "checks");
    json_object_foreach(checks, name, v)
    {
        if (!json_is_true(v))
            fail_msg("hostcheck check '%s' did not pass", name);
    }
    assert_int_equal(json_object_size(checks), json_integer_value(json_object_get(st, "total")));
    assert_true(json_object_size(checks) >= 20);
    assert_true(json_is_true(json_object_get(st, "all_passed")));
    assert_int_equal(json_integer_value(json_object_get(st, "events_seen")), 3);
    json_decref(st);

    /* its routes */
    r = fake_host_call(fh, "GET", "/api/v1/hostcheck/ping", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "pong")));
    fake_resp_free(&r);
    assert_true(fake_host_metric(fh, "pings", NULL) == 1);
    r = fake_host_call(fh, "POST", "/api/v1/hostcheck/echo", "{\"a\":[1,2]}", "hostcheck:*");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.raw, "{\"a\":[1,2]}");
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/hostcheck/echo", "{}", NULL);
    assert_int_equal(r.status, 401);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/hostcheck/raw", "not json, raw", "admin");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain");
    assert_string_equal(r.headers, "X-Hostcheck: raw\r\n");
    assert_string_equal(r.raw, "not json, raw");
    fake_resp_free(&r);
    {
        struct fake_call c = {.method = "GET",
                              .path = "/api/v1/hostcheck/whoami?q=a%20b+c",
                              .headers = "User-Agent: cmocka\r\nX-Other: 1",
                              .scopes = "hostcheck:echo"};
        r = fake_host_request(fh, &c);
    }
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "q")), "a b c");
    assert_string_equal(json_string_value(json_object_get(r.body, "user_agent")), "cmocka");
    assert_string_equal(json_string_value(json_object_get(r.body, "principal")), "test");
    assert_string_equal(json_string_value(json_object_get(r.body, "path")),
                        "/api/v1/hostcheck/whoami");
    assert_true(json_is_true(json_object_get(r.body, "has_echo_scope")));
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "/api/v1/hostcheck/file", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.raw, "hostcheck was here\n");
    fake_resp_free(&r);

    /* reload re-reads the configuration */
    assert_int_equal(so.desc->reload(fake_host_mod(fh)), RD_OK);
    assert_true(fake_host_logged(fh, RD_INFO, "reloaded: greeting=\"from the fake host\""));
    fake_host_free(fh);
    dlclose(so.dl);
}

static void test_hostcheck_without_fetch_still_loads(void **state)
{
    struct so so = so_open("hostcheck");
    struct fake_host *fh = fake_host_new("hostcheck", NULL);
    json_t *st;
    (void)state;

    assert_int_equal(fake_host_load(fh, so.desc), RD_OK);
    assert_true(fake_host_logged(fh, RD_WARN, "rd_fetch refused"));
    fake_host_run_pending(fh);
    st = fake_host_status(fh);
    assert_true(json_is_false(json_object_get(json_object_get(st, "checks"), "fetch")));
    assert_true(json_is_false(json_object_get(st, "all_passed")));
    json_decref(st);
    fake_host_free(fh);
    dlclose(so.dl);
}

/* Every host call of hostcheck's start that must work fails its load
   cleanly, as for the example module (fetch excepted: it is optional). */
static void test_hostcheck_fails_cleanly(void **state)
{
    struct so so = so_open("hostcheck");
    unsigned n, n_failed = 0;
    (void)state;

    for (n = 1; n < 200; n++) {
        struct fake_host *fh = fake_host_new("hostcheck", NULL);
        int rc;

        assert_non_null(fh);
        fake_host_set_fetch(fh, fetch_by_perform, NULL);
        fake_host_fail_call(fh, n, RD_EIO);
        rc = fake_host_load(fh, so.desc);
        if (fake_host_calls(fh) < n) {
            assert_int_equal(rc, RD_OK);
            fake_host_free(fh);
            break;
        }
        n_failed += rc != RD_OK;
        if (rc != RD_OK)
            assert_null(fake_host_mod(fh));
        fake_host_free(fh);
    }
    assert_true(n < 200);
    /* All but the last run (nothing injected), the optional fetch, and the
       rd_service_get of version 2, which must return NULL anyway. */
    assert_int_equal(n_failed, n - 3);
    dlclose(so.dl);
}

static void test_refused_modules(void **state)
{
    static const struct {
        const char *name, *says;
    } cases[] = {
        {"badabi", "ABI"},
        {"badbuild", "0.0.0-other"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct so so = so_open(cases[i].name);
        struct fake_host *fh = fake_host_new(cases[i].name, NULL);

        assert_non_null(so.desc);
        assert_int_equal(fake_host_load(fh, so.desc), RD_EINVAL);
        assert_true(fake_host_logged(fh, RD_ERROR, cases[i].says));
        assert_false(fake_host_logged(fh, RD_ERROR, "init must never run"));
        fake_host_free(fh);
        dlclose(so.dl);
    }
}

static void test_initfail_and_nodesc(void **state)
{
    struct so so = so_open("initfail");
    struct fake_host *fh = fake_host_new("initfail", NULL);
    (void)state;

    assert_int_equal(fake_host_load(fh, so.desc), RD_EINVAL);
    assert_true(fake_host_logged(fh, RD_ERROR, "initfail: refusing to start: "));
    assert_null(fake_host_mod(fh));
    assert_int_equal(fake_host_load(fh, so.desc), RD_ECONFLICT); /* once per host */
    fake_host_free(fh);
    dlclose(so.dl);

    so = so_open("nodesc");
    assert_null(so.desc);
    assert_non_null(dlsym(so.dl, "rd_module_entry_missing"));
    dlclose(so.dl);
}

/* ------------------------------------------------- the fake host itself */

static int never_called(void *mod)
{
    (void)mod;
    return RD_EINVAL;
}

static void test_fake_host_refuses_bad_descriptors(void **state)
{
    struct rd_module d = *rd_module_entry();
    struct fake_host *fh;
    (void)state;

    d.start = never_called;
    fh = fake_host_new("other", NULL);
    assert_int_equal(fake_host_load(fh, &d), RD_EINVAL); /* name "example" != "other" */
    assert_true(fake_host_logged(fh, RD_ERROR, "expected 'other'"));
    fake_host_free(fh);

    d.openapi = "{\"nopaths\": {}}";
    fh = fake_host_new("example", NULL);
    assert_int_equal(fake_host_load(fh, &d), RD_EINVAL);
    assert_true(fake_host_logged(fh, RD_ERROR, "OpenAPI"));
    fake_host_free(fh);

    d = *rd_module_entry();
    d.needs = (const char *const[]){"signing", NULL};
    fh = fake_host_new("example", NULL);
    assert_int_equal(fake_host_load(fh, &d), RD_EUNAVAIL);
    assert_true(fake_host_logged(fh, RD_ERROR, "needs service 'signing'"));
    fake_host_free(fh);
    fh = fake_host_new("example", NULL);
    assert_int_equal(fake_host_provide(fh, "signing", 1, &d), RD_OK);
    assert_int_equal(fake_host_provide(fh, "signing", 2, &d), RD_ECONFLICT);
    assert_int_equal(fake_host_load(fh, &d), RD_OK);
    assert_ptr_equal(rd_service_get(fake_host_handle(fh), "signing", 1), &d);
    assert_null(rd_service_get(fake_host_handle(fh), "signing", 2));
    fake_host_free(fh);

    assert_null(fake_host_new("example", "[unclosed\n")); /* INI syntax error */
}

struct order {
    char log[64];
    size_t n;
    struct rd_timer *self;
    struct rd_host *h;
};

static void mark(struct order *o, char c)
{
    if (o->n + 1 < sizeof(o->log))
        o->log[o->n++] = c;
    o->log[o->n] = '\0';
}

static void on_a(void *arg)
{
    mark(arg, 'a');
}
static void on_b(void *arg)
{
    mark(arg, 'b');
}
static void on_work(void *arg)
{
    mark(arg, 'w');
}
static void on_done(void *arg)
{
    mark(arg, 'd');
}

static void on_cancel_self(void *arg)
{
    struct order *o = arg;
    mark(o, 'x');
    rd_timer_cancel(o->self); /* from inside its own callback */
    o->self = NULL;
}

static void on_defer_more(void *arg)
{
    struct order *o = arg;
    mark(o, 'm');
    assert_int_equal(rd_defer(o->h, on_a, o), RD_OK);
}

static void test_fake_host_clock_and_queue(void **state)
{
    struct fake_host *fh = *state;
    struct rd_host *h = fake_host_handle(fh);
    struct order o = {.h = h};
    struct rd_timer *every, *once;

    /* timers fire in due order, ties in creation order, with the clock at
       their due time */
    every = rd_timer_every(h, 30, on_a, &o);
    once = rd_timer_after(h, 45, on_b, &o);
    o.self = rd_timer_every(h, 60, on_cancel_self, &o);
    assert_non_null(every);
    assert_non_null(once);
    assert_null(rd_timer_every(h, 0, on_a, &o));
    assert_int_equal(rd_now_ms(h), FAKE_HOST_EPOCH_MS);
    fake_host_advance(fh, 29);
    assert_string_equal(o.log, "");
    fake_host_advance(fh, 31); /* t=60: a@30 b@45 a@60 x@60 */
    assert_string_equal(o.log, "abax");
    assert_int_equal(rd_now_ms(h), FAKE_HOST_EPOCH_MS + 60);
    assert_null(o.self);
    fake_host_advance(fh, 60); /* a@90 a@120; the others are gone */
    assert_string_equal(o.log, "abaxaa");
    assert_int_equal(fake_host_n_timers(fh), 1);
    rd_timer_cancel(once); /* fired, but the handle was still valid */
    rd_timer_cancel(every);
    assert_int_equal(fake_host_n_timers(fh), 0);

    /* submit runs work at once and queues done; defer queues; what the
       queue's callbacks queue runs in the same fake_host_run_pending */
    o.n = 0;
    o.log[0] = '\0';
    assert_int_equal(rd_submit(h, on_work, on_done, &o), RD_OK);
    assert_int_equal(rd_defer(h, on_defer_more, &o), RD_OK);
    assert_string_equal(o.log, "w");
    assert_int_equal(fake_host_run_pending(fh), 3);
    assert_string_equal(o.log, "wdma");
    assert_int_equal(fake_host_run_pending(fh), 0);
    assert_int_equal(rd_fetch(h, curl_easy_init(), NULL, NULL), RD_EUNAVAIL);
    assert_int_equal(rd_ready_port(h, "api", 80), RD_EINVAL);
    assert_int_equal(fake_host_ready_port(fh, "api"), -1);
    assert_string_equal(rd_module_name(h), "example");
    assert_non_null(rd_event_base(h));
    assert_false(rd_stopping(h));
    assert_int_equal(strncmp(rd_state_dir(h), fake_host_dir(fh), strlen(fake_host_dir(fh))), 0);

    /* tokens for rd_auth_check */
    assert_int_equal(fake_host_add_token(fh, "rd_t1", "example:*"), RD_OK);
    assert_int_equal(rd_auth_check(h, "rd_t1", "example:write"), RD_OK);
    assert_int_equal(rd_auth_check(h, "rd_t1", "graph:write"), RD_EPERM);
    assert_int_equal(rd_auth_check(h, "rd_nope", "example:write"), RD_EAUTH);
}

static int h_body_type(struct rd_req *r, void *arg)
{
    const json_t *b = rd_req_body(r);
    (void)arg;
    return rd_reply_json(r, 200,
                         json_pack("{s:b, s:I}", "has_body", b != NULL, "length",
                                   (json_int_t)rd_req_content_length(r)));
}

static int h_twice(struct rd_req *r, void *arg)
{
    int *second_rc = arg;
    rd_reply_json(r, 200, json_object());
    *second_rc = rd_reply_json(r, 201, json_object());
    return RD_OK;
}

static int h_silent(struct rd_req *r, void *arg)
{
    (void)r;
    return *(int *)arg;
}

static void test_fake_host_http_rules(void **state)
{
    struct fake_host *fh = *state;
    struct rd_host *h = fake_host_handle(fh);
    int second_rc = 0, silent_rc = RD_OK;
    struct fake_resp r;

    assert_int_equal(rd_route(h, "POST", "/open", NULL, h_body_type, NULL), RD_OK);
    assert_int_equal(rd_route(h, "GET", "/open", NULL, h_body_type, NULL), RD_OK);
    assert_int_equal(rd_route(h, "GET", "/twice", NULL, h_twice, &second_rc), RD_OK);
    assert_int_equal(rd_route(h, "GET", "/silent", NULL, h_silent, &silent_rc), RD_OK);
    assert_int_equal(rd_route(h, "GET", "/open", NULL, h_body_type, NULL), RD_ECONFLICT);
    assert_int_equal(rd_route(h, "GET", "bad", NULL, h_body_type, NULL), RD_EINVAL);
    assert_int_equal(rd_route(h, "GET", "/a/../b", NULL, h_body_type, NULL), RD_EINVAL);
    assert_int_equal(rd_route(h, "GET", "/a/{ID}", NULL, h_body_type, NULL), RD_EINVAL);
    assert_int_equal(rd_route(h, "get", "/x", NULL, h_body_type, NULL), RD_EINVAL);

    /* a route without a scope changes state only with a token */
    r = fake_host_call(fh, "POST", "/api/v1/example/open", "{}", NULL);
    assert_int_equal(r.status, 401);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/example/open", "{\"a\":1}", "");
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "has_body")));
    assert_int_equal(json_integer_value(json_object_get(r.body, "length")), 7);
    fake_resp_free(&r);
    /* a GET's body is not read */
    r = fake_host_call(fh, "GET", "/api/v1/example/open", "{not json", NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.body, "has_body")));
    fake_resp_free(&r);

    /* one reply per request; a handler that forgets to reply gets a 500 */
    r = fake_host_call(fh, "GET", "/api/v1/example/twice", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(second_rc, RD_ECONFLICT);
    assert_true(fake_host_logged(fh, RD_ERROR, "after the request was replied to"));
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "/api/v1/example/silent", NULL, NULL);
    assert_int_equal(r.status, 500);
    assert_string_equal(err_code(&r), "internal_error");
    fake_resp_free(&r);
    silent_rc = RD_ENOTFOUND;
    r = fake_host_call(fh, "GET", "/api/v1/example/silent", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(err_code(&r), "not_found");
    fake_resp_free(&r);
    silent_rc = RD_ECONFLICT;
    r = fake_host_call(fh, "GET", "/api/v1/example/silent", NULL, NULL);
    assert_int_equal(r.status, 409);
    fake_resp_free(&r);

    /* malformed requests */
    r = fake_host_call(fh, "GET", "/api/v1/example/notes?limit=%zz", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "no-slash", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "/api/v1/example/notes/", NULL, NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies_400, setup, teardown),
        cmocka_unit_test(test_too_long_400),
        cmocka_unit_test_setup_teardown(test_unknown_note_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_list_query_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_published_with_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_counts_created_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test(test_config_defaults_and_values),
        cmocka_unit_test(test_config_errors_fail_init),
        cmocka_unit_test(test_sample_config_matches_keys),
        cmocka_unit_test(test_openapi_fragment),
        cmocka_unit_test(test_notes_survive_restart),
        cmocka_unit_test(test_load_fails_cleanly_on_any_host_failure),
        cmocka_unit_test_setup_teardown(test_post_fails_cleanly_on_any_host_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reads_fail_cleanly, setup, teardown),
        cmocka_unit_test(test_hostcheck_passes_every_check),
        cmocka_unit_test(test_hostcheck_without_fetch_still_loads),
        cmocka_unit_test(test_hostcheck_fails_cleanly),
        cmocka_unit_test(test_refused_modules),
        cmocka_unit_test(test_initfail_and_nodesc),
        cmocka_unit_test(test_fake_host_refuses_bad_descriptors),
        cmocka_unit_test_setup_teardown(test_fake_host_clock_and_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fake_host_http_rules, setup, teardown),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT); /* the test is the process: modules never do this */
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
