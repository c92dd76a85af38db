/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_core_modules.c -- module loading through the real daemon.
 * A module that is missing, has the wrong ABI, has no descriptor, was built
 * for another build, or fails init stops start-up: the daemon exits
 * non-zero, its error names the module and the reason, and no ready file is
 * ever written (never a half-running appliance). The hostcheck test module
 * loads, its routes work and its status reports every host API check
 * passed. SIGHUP reloads what can be reloaded (log level, anonymous_read)
 * and says what needs a restart ([http] listen); a broken file on SIGHUP
 * changes nothing. A corrupt database is refused, naming the file.
 */
#include "config.h"

#include <ctype.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

/* What the daemon wrote during its last launch (malloc'd): the log after
   the harness's "=== e2e launch" line, which itself lists the arguments. */
static char *last_output(struct e2e_daemon *d)
{
    char *log = e2e_log_text(d), *mark = NULL, *p, *out;

    for (p = strstr(log, "=== e2e launch"); p; p = strstr(p + 1, "=== e2e launch"))
        mark = p;
    p = mark ? strchr(mark, '\n') : NULL;
    out = strdup(p ? p + 1 : log);
    free(log);
    assert_non_null(out);
    return out;
}

static bool ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* Whether one line of text contains name and one of the reasons. */
static bool line_names(const char *text, const char *name, const char *const *reasons)
{
    const char *line = text;

    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char *l = strndup(line, len);

        assert_non_null(l);
        if (strstr(l, name)) {
            for (size_t i = 0; reasons[i]; i++) {
                if (ci_contains(l, reasons[i])) {
                    free(l);
                    return true;
                }
            }
        }
        free(l);
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

/* ------------------------------------------------- refusing to start */

struct bad_module {
    const char *modules;
    const char *name;
    const char *reasons[6];
};

static const struct bad_module bad_modules[] = {
    {"example nosuchmod", "nosuchmod", {"not found", "no such", "cannot find", "missing", NULL}},
    {"example badabi", "badabi", {"abi", NULL}},
    {"example nodesc", "nodesc", {"rd_module_entry", "descriptor", NULL}},
    {"example initfail", "initfail", {"init", NULL}},
    {"example badbuild", "badbuild", {"build", NULL}},
    /* the failing module first, too: nothing else may be left running */
    {"initfail example", "initfail", {"init", NULL}},
    {"badabi", "badabi", {"abi", NULL}},
};

static void check_refusal(struct e2e_daemon *d, const struct bad_module *b)
{
    char *out;
    int rc;
    uint64_t t0 = e2e_now_ms();

    rc = e2e_launch(d);
    if (rc != E2E_EXITED)
        fprintf(stderr, "modules '%s': launch -> %d (want: exited)\n", b->modules, rc);
    if (rc == E2E_READY)
        e2e_kill9(d); /* it must not run on: a half-running appliance */
    assert_int_equal(rc, E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    /* a plain refusal, not a crash */
    assert_true(d->exit_status < 128);
    assert_true(e2e_now_ms() - t0 < 15000);
    /* never ready: no ready file */
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    out = last_output(d);
    if (!line_names(out, b->name, b->reasons))
        fprintf(stderr, "modules '%s': no line names '%s' and why:\n%s\n", b->modules, b->name,
                out);
    assert_true(line_names(out, b->name, b->reasons));
    /* sanitizers would have something to say about a sloppy exit */
    assert_null(strstr(out, "AddressSanitizer"));
    assert_null(strstr(out, "runtime error:"));
    free(out);
}

static void test_bad_modules_refused(void **state)
{
    struct e2e_daemon *d = *state;

    (void)d;
    for (size_t i = 0; i < sizeof(bad_modules) / sizeof(bad_modules[0]); i++) {
        struct e2e_opts o = {.modules = bad_modules[i].modules};
        struct e2e_daemon *one = e2e_new(&o);
        assert_non_null(one);
        check_refusal(one, &bad_modules[i]);
        e2e_pass(one);
        e2e_free(one);
    }
    e2e_pass(d);
}

/* A state directory that served once is left intact by a refused start:
   a later good start finds its data. */
static void test_refusal_keeps_state(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    static const struct bad_module b = {"example initfail", "initfail", {"init", NULL}};

    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(
        e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"kept\"}", &r), 201);
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(d), 0);

    assert_int_equal(e2e_set_modules(d, b.modules), 0);
    check_refusal(d, &b);

    assert_int_equal(e2e_set_modules(d, "example"), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 1);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* --------------------------------------------------------- hostcheck */

static const struct e2e_opts hostcheck_opts = {.modules = "example hostcheck"};

/* GET /api/v1/modules/hostcheck -> its "status" (new reference). */
static json_t *hostcheck_status(struct e2e_daemon *d)
{
    struct e2e_resp r;
    json_t *st;

    assert_int_equal(e2e_get(d, "/api/v1/modules/hostcheck", NULL, &r), 200);
    assert_string_equal(e2e_json_str(&r, "name"), "hostcheck");
    assert_string_equal(e2e_json_str(&r, "state"), "started");
    st = json_incref(json_object_get(r.json, "status"));
    assert_true(json_is_object(st));
    e2e_resp_free(&r);
    return st;
}

/* Some checks pass only once the pool work, the timers, the deferred call,
   the fetch and the event fan-out have run: poll (bounded) until all did. */
static json_t *hostcheck_all_passed(struct e2e_daemon *d)
{
    uint64_t deadline = e2e_now_ms() + 10000;
    json_t *st = hostcheck_status(d);

    while (!json_is_true(json_object_get(st, "all_passed")) && e2e_now_ms() < deadline) {
        json_decref(st);
        e2e_sleep_ms(50);
        st = hostcheck_status(d);
    }
    return st;
}

static void test_hostcheck(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char tok_echo[64], tok_other[64], conf[600];
    json_t *mods, *m, *st, *v;
    const char *k;
    size_t i, n_started = 0, n_checks = 0;
    static const char echo_body[] = "{\"say\":\"hello\",\"n\":42,\"nested\":{\"list\":[1,2,3]}}";

    /* the module's own port is in the ready file */
    assert_int_equal(json_integer_value(json_object_get(d->ready, "hostcheck")), 1);

    /* every host API check passed */
    st = hostcheck_all_passed(d);
    json_object_foreach(json_object_get(st, "checks"), k, v)
    {
        if (!json_is_true(v))
            fprintf(stderr, "hostcheck check '%s' did not pass\n", k);
        assert_true(json_is_true(v));
        n_checks++;
    }
    assert_true(n_checks >= 20);
    assert_int_equal(json_integer_value(json_object_get(st, "passed")), n_checks);
    assert_int_equal(json_integer_value(json_object_get(st, "total")), n_checks);
    assert_true(json_is_true(json_object_get(st, "all_passed")));
    json_decref(st);
    /* its configuration was read (every key type) */
    assert_true(e2e_log_contains(d, "greeting=\"e2e hostcheck greeting\""));

    assert_int_equal(e2e_get(d, "/api/v1/status", NULL, &r), 200);
    mods = json_object_get(r.json, "modules");
    json_array_foreach(mods, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (strcmp(name, "example") == 0 || strcmp(name, "hostcheck") == 0) {
            assert_string_equal(json_string_value(json_object_get(m, "state")), "started");
            n_started++;
        }
    }
    assert_int_equal(n_started, 2);
    e2e_resp_free(&r);

    assert_int_equal(e2e_get(d, "/api/v1/hostcheck/ping", NULL, &r), 200);
    assert_true(json_is_true(json_object_get(r.json, "pong")));
    e2e_resp_free(&r);
    assert_true(e2e_metric(d, "relengd_hostcheck_pings_total") >= 1);

    /* scopes on a module route */
    e2e_post(d, "/api/v1/hostcheck/echo", NULL, echo_body, &r);
    assert_int_equal(r.status, 401);
    e2e_resp_free(&r);
    assert_int_equal(e2e_token_create(d, "other", "[\"example:write\"]", NULL, tok_other, NULL), 0);
    e2e_post(d, "/api/v1/hostcheck/echo", tok_other, echo_body, &r);
    assert_int_equal(r.status, 403);
    e2e_resp_free(&r);
    assert_int_equal(e2e_token_create(d, "echo", "[\"hostcheck:echo\"]", NULL, tok_echo, NULL), 0);
    assert_int_equal(e2e_post(d, "/api/v1/hostcheck/echo", tok_echo, echo_body, &r), 200);
    {
        json_t *sent = json_loads(echo_body, 0, NULL);
        if (!json_equal(sent, r.json))
            fprintf(stderr, "echo: sent %s, got %s\n", echo_body, r.body);
        assert_true(json_equal(sent, r.json));
        json_decref(sent);
    }
    e2e_resp_free(&r);
    /* but the echo token cannot write notes */
    e2e_post(d, "/api/v1/example/notes", tok_echo, "{\"text\":\"x\"}", &r);
    assert_int_equal(r.status, 403);
    e2e_resp_free(&r);

    /* a raw (unparsed) body route streams the bytes back */
    {
        static const char raw[] = "not JSON at all \x01\x02 {";
        const char *h[] = {"Content-Type: application/octet-stream", NULL};
        assert_int_equal(
            e2e_request(d, "POST", "/api/v1/hostcheck/raw", tok_echo, h, raw, sizeof(raw) - 1, &r),
            200);
        assert_int_equal(r.body_len, sizeof(raw) - 1);
        assert_memory_equal(r.body, raw, sizeof(raw) - 1);
        assert_string_equal(e2e_header(&r, "X-Hostcheck"), "raw");
        e2e_resp_free(&r);
    }

    /* request accessors: principal, query parameter (decoded), header */
    {
        const char *h[] = {"User-Agent: relengd-e2e/1", NULL};
        assert_int_equal(
            e2e_request(d, "GET", "/api/v1/hostcheck/whoami?q=a%20b%26c", tok_echo, h, NULL, 0, &r),
            200);
        assert_string_equal(e2e_json_str(&r, "principal"), "echo");
        assert_string_equal(e2e_json_str(&r, "method"), "GET");
        assert_string_equal(e2e_json_str(&r, "q"), "a b&c");
        assert_string_equal(e2e_json_str(&r, "user_agent"), "relengd-e2e/1");
        assert_true(json_is_true(json_object_get(r.json, "has_echo_scope")));
        e2e_resp_free(&r);
        assert_int_equal(e2e_get(d, "/api/v1/hostcheck/whoami", NULL, &r), 200);
        assert_string_equal(e2e_json_str(&r, "principal"), "anonymous");
        assert_true(json_is_false(json_object_get(r.json, "has_echo_scope")));
        e2e_resp_free(&r);
    }

    /* a file from the module's state directory */
    assert_int_equal(e2e_get(d, "/api/v1/hostcheck/file", NULL, &r), 200);
    assert_string_equal(r.body, "hostcheck was here\n");
    e2e_resp_free(&r);

    /* its events are in the firehose, with source hostcheck */
    assert_int_equal(e2e_get(d, "/api/v1/events?type=hostcheck&limit=1000", NULL, &r), 200);
    {
        json_t *events = json_object_get(r.json, "events"), *ev;
        bool stored = false, worked = false;
        json_array_foreach(events, i, ev)
        {
            const char *type = json_string_value(json_object_get(ev, "type"));
            assert_string_equal(json_string_value(json_object_get(ev, "source")), "hostcheck");
            stored |= strcmp(type, "hostcheck.stored") == 0;
            worked |= strcmp(type, "hostcheck.worked") == 0;
        }
        assert_true(stored);
        assert_true(worked);
    }
    e2e_resp_free(&r);

    /* the module's routes are in the OpenAPI document */
    assert_int_equal(e2e_get(d, "/api/v1/openapi.json", NULL, &r), 200);
    {
        json_t *paths = json_object_get(r.json, "paths");
        assert_true(json_object_get(paths, "/api/v1/hostcheck/ping") ||
                    json_object_get(paths, "/hostcheck/ping"));
    }
    e2e_resp_free(&r);

    /* both modules' log lines carry their name */
    assert_true(e2e_log_contains(d, "[hostcheck]"));
    assert_true(e2e_log_contains(d, "[example]"));

    /* SIGHUP reloads the module's configuration */
    snprintf(conf, sizeof(conf), "%s/modules.d/hostcheck.conf", d->etc_dir);
    {
        char *t = e2e_read_file(conf, NULL), *p;
        size_t off;
        assert_non_null(t);
        p = strstr(t, "e2e hostcheck greeting");
        assert_non_null(p);
        memcpy(p, "E2E HOSTCHECK GREETING", strlen("E2E HOSTCHECK GREETING"));
        assert_int_equal(e2e_write_file(conf, t, strlen(t)), 0);
        free(t);
        off = e2e_log_size(d);
        assert_int_equal(e2e_signal(d, SIGHUP), 0);
        assert_true(e2e_wait_log(d, off, "reloaded: greeting=\"E2E HOSTCHECK GREETING\"", 10000));
        st = hostcheck_status(d);
        assert_int_equal(json_integer_value(json_object_get(st, "reloads")), 1);
        json_decref(st);
    }
    e2e_pass(d);
}

/* -------------------------------------------------------------- SIGHUP */

static const struct e2e_opts hup_opts = {.listen_from_config = true};

/* Replaces "key = ..." (first occurrence) in the daemon's relengd.conf. */
static void conf_set(struct e2e_daemon *d, const char *key, const char *value)
{
    char *t = e2e_read_file(d->conf_path, NULL), *p, *eol, *out;
    char pat[128];
    size_t need;

    assert_non_null(t);
    snprintf(pat, sizeof(pat), "\n%s = ", key);
    p = strstr(t, pat);
    assert_non_null(p);
    p += strlen(pat);
    eol = strchr(p, '\n');
    assert_non_null(eol);
    need = strlen(t) + strlen(value) + 1;
    out = malloc(need);
    assert_non_null(out);
    snprintf(out, need, "%.*s%s%s", (int)(p - t), t, value, eol);
    assert_int_equal(e2e_write_file(d->conf_path, out, strlen(out)), 0);
    free(out);
    free(t);
}

static int anon_get(struct e2e_daemon *d, const char *path)
{
    struct e2e_resp r;
    int st = e2e_get(d, path, NULL, &r);
    e2e_resp_free(&r);
    return st;
}

/* The log after offset, one line at a time: whether a line has a and b. */
static bool log_line_has(struct e2e_daemon *d, size_t offset, const char *a, const char *b)
{
    char *t = e2e_log_text(d);
    const char *const reasons[] = {b, NULL};
    bool found = strlen(t) >= offset && line_names(t + offset, a, reasons);
    free(t);
    return found;
}

static void test_sighup_reload(void **state)
{
    struct e2e_daemon *d = *state;
    size_t off;
    uint64_t deadline;
    bool applied = false;
    int port;

    conf_set(d, "log_level", "info");
    assert_int_equal(e2e_launch(d), E2E_READY);
    port = d->port;

    /* at info, requests log nothing at debug */
    off = e2e_log_size(d);
    for (int i = 0; i < 3; i++)
        assert_int_equal(anon_get(d, "/api/v1/status"), 200);
    assert_false(e2e_log_contains_from(d, off, " DEBUG "));

    /* log_level = debug + SIGHUP: applied (debug lines appear) and logged */
    conf_set(d, "log_level", "debug");
    off = e2e_log_size(d);
    assert_int_equal(e2e_signal(d, SIGHUP), 0);
    deadline = e2e_now_ms() + 10000;
    while (!applied && e2e_now_ms() < deadline) {
        assert_int_equal(anon_get(d, "/api/v1/status"), 200);
        applied = e2e_log_contains_from(d, off, " DEBUG ");
        if (!applied)
            e2e_sleep_ms(50);
    }
    assert_true(applied);
    if (!log_line_has(d, off, "debug", "log") && !log_line_has(d, off, "DEBUG", "level"))
        e2e_log_dump(d);
    assert_true(log_line_has(d, off, "debug", "log") || log_line_has(d, off, "DEBUG", "level"));

    /* anonymous_read = false + SIGHUP: anonymous reads now need a token */
    assert_int_equal(anon_get(d, "/api/v1/example/notes"), 200);
    conf_set(d, "anonymous_read", "false");
    assert_int_equal(e2e_signal(d, SIGHUP), 0);
    deadline = e2e_now_ms() + 10000;
    while (anon_get(d, "/api/v1/example/notes") != 401 && e2e_now_ms() < deadline)
        e2e_sleep_ms(50);
    assert_int_equal(anon_get(d, "/api/v1/example/notes"), 401);

    /* [http] listen changed: logged as needing a restart, still serving
       where it was */
    conf_set(d, "listen", "127.0.0.1:1");
    off = e2e_log_size(d);
    assert_int_equal(e2e_signal(d, SIGHUP), 0);
    assert_true(e2e_wait_log(d, off, "restart", 10000));
    if (!log_line_has(d, off, "listen", "restart"))
        e2e_log_dump(d);
    assert_true(log_line_has(d, off, "listen", "restart"));
    assert_int_equal(d->port, port);
    assert_int_equal(anon_get(d, "/healthz"), 200);

    /* a broken file on SIGHUP: an error naming the file, nothing changes */
    assert_int_equal(e2e_append_file(d->conf_path, "\n[http\nthis is not ini\n"), 0);
    off = e2e_log_size(d);
    assert_int_equal(e2e_signal(d, SIGHUP), 0);
    assert_true(e2e_wait_log(d, off, "relengd.conf:", 10000));
    assert_int_equal(anon_get(d, "/healthz"), 200);
    assert_int_equal(anon_get(d, "/api/v1/example/notes"), 401);

    /* and it still stops cleanly */
    assert_int_equal(e2e_stop(d), 0);
    e2e_pass(d);
}

/* ----------------------------------------------------- corrupt database */

static void test_corrupt_database_garbage(void **state)
{
    struct e2e_daemon *d = *state;
    char db[512], *out;
    char garbage[65536];

    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)("this is not a database "[i % 23]);
    snprintf(db, sizeof(db), "%s/relengd.db", d->state_dir);
    assert_int_equal(e2e_write_file(db, garbage, sizeof(garbage)), 0);

    assert_int_equal(e2e_launch(d), E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    assert_true(d->exit_status < 128);
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    out = last_output(d);
    if (!strstr(out, db))
        fprintf(stderr, "the refusal does not name %s:\n%s\n", db, out);
    assert_non_null(strstr(out, db));
    free(out);
    /* the file was left alone for the operator */
    {
        size_t len;
        char *now = e2e_read_file(db, &len);
        assert_non_null(now);
        assert_int_equal(len, sizeof(garbage));
        assert_memory_equal(now, garbage, len);
        free(now);
    }
    e2e_pass(d);
}

static void test_corrupt_database_pages(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char db[512], *out, *data, body[2200];
    size_t len;

    assert_int_equal(e2e_launch(d), E2E_READY);
    memset(body, 0, sizeof(body));
    snprintf(body, sizeof(body), "{\"text\":\"%0900d\"}", 7);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, body, &r), 201);
        e2e_resp_free(&r);
    }
    assert_int_equal(e2e_stop(d), 0);

    /* keep the header page, scribble over every other page */
    snprintf(db, sizeof(db), "%s/relengd.db", d->state_dir);
    data = e2e_read_file(db, &len);
    assert_non_null(data);
    assert_true(len > 8 * 4096);
    for (size_t i = 4096; i < len; i++)
        data[i] = (char)(0xA5 ^ (i * 131));
    assert_int_equal(e2e_write_file(db, data, len), 0);
    free(data);
    {
        char wal[600];
        snprintf(wal, sizeof(wal), "%s-wal", db);
        unlink(wal);
    }

    assert_int_equal(e2e_launch(d), E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    assert_true(d->exit_status < 128);
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    out = last_output(d);
    if (!strstr(out, db))
        fprintf(stderr, "the refusal does not name %s:\n%s\n", db, out);
    assert_non_null(strstr(out, db));
    free(out);
    e2e_pass(d);
}

/* The environment overrides the file (modules, log level, a module key);
   the command line overrides the environment. */
static const char *const env_over[] = {"RELENGD_MODULES=example hostcheck",
                                       "RELENGD_LOG_LEVEL=warn",
                                       "RELENGD_HOSTCHECK_GREETING=from the environment", NULL};
static const struct e2e_opts env_opts = {.env = env_over};

static void test_env_overrides(void **state)
{
    struct e2e_daemon *d = *state;
    char *out;

    assert_int_equal(e2e_launch(d), E2E_READY);
    /* RELENGD_MODULES: hostcheck is there although the file lists only example */
    assert_int_equal(anon_get(d, "/api/v1/hostcheck/ping"), 200);
    /* RELENGD_LOG_LEVEL=warn beats the file's debug: no DEBUG or INFO lines */
    assert_int_equal(anon_get(d, "/api/v1/status"), 200);
    out = last_output(d);
    assert_null(strstr(out, " DEBUG "));
    assert_null(strstr(out, " INFO "));
    free(out);
    assert_int_equal(e2e_stop(d), 0);

    /* the command line beats the environment */
    assert_int_equal(e2e_set_modules(d, "example"), 0);
    assert_int_equal(e2e_add_set(d, "relengd.log_level=info"), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(anon_get(d, "/api/v1/hostcheck/ping"), 404);
    out = last_output(d);
    assert_non_null(strstr(out, " INFO "));
    free(out);

    /* RELENGD_<MODULE>_<KEY> sets a module key */
    assert_int_equal(e2e_stop(d), 0);
    assert_int_equal(e2e_set_modules(d, "hostcheck"), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);
    out = last_output(d);
    assert_non_null(strstr(out, "greeting=\"from the environment\""));
    free(out);
    e2e_pass(d);
}

/* One state directory, one daemon: a second one on it refuses to start
   (naming the directory) and the first one is unharmed. */
static void test_state_dir_in_use(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_daemon *d2 = e2e_new(NULL);
    struct e2e_resp r;
    char *out;
    int rc;

    assert_non_null(d2);
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(
        e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"first\"}", &r), 201);
    e2e_resp_free(&r);

    snprintf(d2->state_dir, sizeof(d2->state_dir), "%s", d->state_dir);
    snprintf(d2->admin_token, sizeof(d2->admin_token), "%s", d->admin_token);
    rc = e2e_launch(d2);
    if (rc == E2E_READY)
        e2e_kill9(d2);
    assert_int_equal(rc, E2E_EXITED);
    assert_int_not_equal(d2->exit_status, 0);
    out = last_output(d2);
    if (!strstr(out, d->state_dir))
        fprintf(stderr, "the refusal does not name %s:\n%s\n", d->state_dir, out);
    assert_non_null(strstr(out, d->state_dir));
    free(out);
    e2e_pass(d2);
    e2e_free(d2);

    /* the first one goes on */
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 1);
    e2e_resp_free(&r);
    assert_int_equal(
        e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"second\"}", &r), 201);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* SIGINT stops as gracefully as SIGTERM: exit 0, and the data is there. */
static void test_sigint(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;

    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"int\"}", &r),
                     201);
    e2e_resp_free(&r);
    assert_int_equal(e2e_signal(d, SIGINT), 0);
    assert_int_equal(e2e_wait_exit(d, 10000), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 1);
    e2e_resp_free(&r);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_modules_refused, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_refusal_keeps_state, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_hostcheck, e2e_setup, e2e_teardown,
                                                 (void *)&hostcheck_opts),
        cmocka_unit_test_prestate_setup_teardown(test_sighup_reload, e2e_setup_new, e2e_teardown,
                                                 (void *)&hup_opts),
        cmocka_unit_test_setup_teardown(test_corrupt_database_garbage, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_database_pages, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_env_overrides, e2e_setup_new, e2e_teardown,
                                                 (void *)&env_opts),
        cmocka_unit_test_setup_teardown(test_state_dir_in_use, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_sigint, e2e_setup_new, e2e_teardown),
    };
    return cmocka_run_group_tests_name("e2e core modules", tests, NULL, NULL);
}
