/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_relengctl.c -- relengctl end to end: the built binary
 * (<builddir>/cli/relengctl) against the real daemon (modules example and
 * hostcheck) started by the harness, exactly as a person or a script runs
 * it: the status table and --json, a token create/list/revoke round trip, a
 * revoked token failing with the server's message and exit 1, events --after
 * (table, --json, --limit, --type), events --follow over SSE, the token from
 * the environment and from a file, usage errors (exit 2) and an unreachable
 * server (exit 3).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

#define CTL_TIMEOUT_MS 20000

/* Tests that got to their end: the daemon log is printed unless all did. */
static int n_passed;
static int n_tests;

static const char *ctl_path(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/cli/relengctl", e2e_builddir());
    return path;
}

/* Runs relengctl with up to 15 arguments (NULL-terminated) and extra env. */
static int ctl_env(struct e2e_exec *x, const char *const *env, ...)
{
    const char *argv[20];
    size_t n = 0;
    va_list ap;
    const char *a;

    argv[n++] = ctl_path();
    va_start(ap, env);
    while ((a = va_arg(ap, const char *)) != NULL && n < 19)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    e2e_exec(argv, env, NULL, CTL_TIMEOUT_MS, x);
    return x->status;
}
#define ctl(x, ...) ctl_env((x), NULL, __VA_ARGS__, (const char *)NULL)

/* Prints what relengctl said when an expectation fails. */
static void show(const struct e2e_exec *x)
{
    fprintf(stderr, "relengctl exit %d\n--- stdout\n%s--- stderr\n%s---\n", x->status, x->out,
            x->err);
}

static void expect_status(struct e2e_exec *x, int want)
{
    if (x->status != want)
        show(x);
    assert_int_equal(x->status, want);
}

/* The line of text starting with prefix (a copy), or NULL. */
static char *line_starting(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= plen && strncmp(p, prefix, plen) == 0)
            return strndup(p, len);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static bool has_line(const char *text, const char *prefix)
{
    char *line = line_starting(text, prefix);
    free(line);
    return line != NULL;
}

/* The column where word starts in line, or -1. */
static int column_of(const char *line, const char *word)
{
    const char *p = line ? strstr(line, word) : NULL;
    return p ? (int)(p - line) : -1;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* The last non-empty line of text (a copy). */
static char *last_line(const char *text)
{
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    return strndup(text + start, len - start);
}

static bool is_token(const char *s)
{
    if (strncmp(s, "rd_", 3) != 0 || strlen(s) != 46)
        return false;
    for (const char *p = s + 3; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* POSTs a note as admin; returns the id of its example.noted event. */
static long long add_note(struct e2e_daemon *d, const char *text)
{
    struct e2e_resp r;
    json_t *body = json_pack("{s:s}", "text", text);
    char *s = json_dumps(body, JSON_COMPACT);
    long long note_id, ev_id = -1;
    size_t i;
    json_t *ev;

    assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, s, &r), 201);
    note_id = json_integer_value(json_object_get(r.json, "id"));
    e2e_resp_free(&r);
    free(s);
    json_decref(body);
    /* find the event that carries this note */
    assert_int_equal(e2e_get(d, "/api/v1/events?type=example.noted&limit=1000", NULL, &r), 200);
    json_array_foreach(json_object_get(r.json, "events"), i, ev)
    {
        if (json_integer_value(json_object_get(json_object_get(ev, "data"), "id")) == note_id)
            ev_id = json_integer_value(json_object_get(ev, "id"));
    }
    e2e_resp_free(&r);
    assert_true(ev_id > 0);
    return ev_id;
}

/* ------------------------------------------------------------ fixtures */

static int setup(void **state)
{
    static const struct e2e_opts opts = {.modules = "example hostcheck"};
    struct e2e_daemon *d = e2e_start(&opts);

    if (!d)
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct e2e_daemon *d = *state;
    int rc;

    if (!d) /* the group setup failed and said why */
        return -1;
    if (n_passed == n_tests)
        e2e_pass(d);
    rc = d->pid > 0 ? e2e_stop(d) : 0;
    e2e_free(d);
    return rc;
}

/* ------------------------------------------------------------ status */

static void test_status_table(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    struct e2e_resp r;
    char *first, *head, *ex, *hc, *want_first = NULL;
    const char *version, *ex_version = NULL;
    const json_t *m;
    size_t i;

    assert_int_equal(e2e_get(d, "/api/v1/status", NULL, &r), 200);
    version = json_string_value(json_object_get(r.json, "version"));
    assert_non_null(version);
    json_array_foreach(json_object_get(r.json, "modules"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), "example") == 0)
            ex_version = json_string_value(json_object_get(m, "version"));
    }
    assert_non_null(ex_version);

    ctl(&x, "--url", d->base_url, "status");
    expect_status(&x, 0);
    assert_true(asprintf(&want_first, "relengd %s, up ", version) > 0);
    first = line_starting(x.out, want_first);
    head = line_starting(x.out, "MODULE");
    ex = line_starting(x.out, "example ");
    hc = line_starting(x.out, "hostcheck ");
    if (!first || !head || !ex || !hc)
        show(&x);
    assert_non_null(first);
    assert_non_null(head);
    assert_non_null(ex);
    assert_non_null(hc);
    /* aligned columns: each row's values sit under their headers */
    assert_int_equal(column_of(head, "VERSION"), column_of(ex, ex_version));
    assert_int_equal(column_of(head, "STATE"), column_of(ex, "started"));
    assert_int_equal(column_of(head, "STATE"), column_of(hc, "started"));
    /* the example module's status figures are summarised as key=value */
    assert_int_equal(column_of(head, "STATUS"), column_of(ex, "notes="));
    assert_string_equal(x.err, "");
    free(first);
    free(head);
    free(ex);
    free(hc);
    free(want_first);
    e2e_exec_free(&x);
    e2e_resp_free(&r);
    n_passed++;
}

static void test_status_json(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    json_t *doc, *m;
    json_error_t jerr;
    size_t i;
    bool seen_example = false, seen_hostcheck = false;

    ctl(&x, "--json", "--url", d->base_url, "status");
    expect_status(&x, 0);
    doc = json_loads(x.out, 0, &jerr);
    if (!doc)
        show(&x);
    assert_non_null(doc);
    assert_true(json_is_string(json_object_get(doc, "version")));
    assert_true(json_is_integer(json_object_get(doc, "uptime_s")));
    json_array_foreach(json_object_get(doc, "modules"), i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        seen_example |= name && strcmp(name, "example") == 0;
        seen_hostcheck |= name && strcmp(name, "hostcheck") == 0;
        assert_string_equal(json_string_value(json_object_get(m, "state")), "started");
    }
    assert_true(seen_example);
    assert_true(seen_hostcheck);
    json_decref(doc);
    e2e_exec_free(&x);

    /* --json also works after the command, and RELENGD_URL names the server */
    {
        char env_url[200];
        const char *env[] = {env_url, NULL};
        snprintf(env_url, sizeof(env_url), "RELENGD_URL=%s/", d->base_url);
        ctl_env(&x, env, "status", "--json", (const char *)NULL);
        expect_status(&x, 0);
        doc = json_loads(x.out, 0, NULL);
        assert_non_null(doc);
        assert_true(json_is_array(json_object_get(doc, "modules")));
        json_decref(doc);
        e2e_exec_free(&x);
    }
    n_passed++;
}

/* ------------------------------------------------------------ tokens */

static void test_token_roundtrip(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    struct e2e_resp r;
    char *secret, *id_line, *row;
    char id[64];
    json_t *doc, *t;
    size_t i;
    bool listed = false;

    /* create */
    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "create", "ctl-bot",
        "--scope", "example:write", "--scope", "graph:*", "--expires", "30d");
    expect_status(&x, 0);
    secret = last_line(x.out);
    assert_true(is_token(secret));
    id_line = line_starting(x.out, "id:");
    assert_non_null(id_line);
    snprintf(id, sizeof(id), "%s", id_line + strspn(id_line + 3, " ") + 3);
    assert_true(strlen(id) > 0);
    assert_non_null(strstr(x.out, "scopes:  example:write,graph:*"));
    free(id_line);
    e2e_exec_free(&x);

    /* the new token works, with the server's idea of who it is */
    assert_int_equal(e2e_get(d, "/api/v1/whoami", secret, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "ctl-bot");
    e2e_resp_free(&r);
    ctl(&x, "--url", d->base_url, "--token", secret, "whoami");
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "name: ctl-bot"));
    e2e_exec_free(&x);

    /* list: a table row with name, scopes and state; --json the server's list */
    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "list");
    expect_status(&x, 0);
    assert_true(has_line(x.out, "ID "));
    row = line_starting(x.out, id);
    if (!row)
        show(&x);
    assert_non_null(row);
    assert_non_null(strstr(row, "ctl-bot"));
    assert_non_null(strstr(row, "example:write,graph:*"));
    assert_non_null(strstr(row, "active"));
    assert_null(strstr(x.out, secret)); /* the secret is never shown again */
    free(row);
    e2e_exec_free(&x);

    ctl(&x, "--json", "--url", d->base_url, "--token", d->admin_token, "token", "list");
    expect_status(&x, 0);
    doc = json_loads(x.out, 0, NULL);
    assert_non_null(doc);
    json_array_foreach(json_object_get(doc, "tokens"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "id")), id) == 0) {
            listed = true;
            assert_string_equal(json_string_value(json_object_get(t, "name")), "ctl-bot");
            assert_true(json_is_null(json_object_get(t, "revoked")));
        }
    }
    assert_true(listed);
    json_decref(doc);
    e2e_exec_free(&x);

    /* revoke */
    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "revoke", id);
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "Revoked token"));
    assert_non_null(strstr(x.out, id));
    e2e_exec_free(&x);

    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "list");
    expect_status(&x, 0);
    row = line_starting(x.out, id);
    assert_non_null(row);
    assert_non_null(strstr(row, "revoked"));
    free(row);
    e2e_exec_free(&x);

    /* the revoked token fails with the server's own message and exit 1 */
    assert_int_equal(e2e_get(d, "/api/v1/whoami", secret, &r), 401);
    assert_non_null(e2e_error_message(&r));
    ctl(&x, "--url", d->base_url, "--token", secret, "whoami");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, e2e_error_message(&r)));
    assert_string_equal(x.out, "");
    e2e_exec_free(&x);
    e2e_resp_free(&r);

    /* revoking an unknown id: the server's 404 message, exit 1 */
    assert_int_equal(e2e_delete(d, "/api/v1/tokens/no-such-token", d->admin_token, &r), 404);
    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "revoke", "no-such-token");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, e2e_error_message(&r)));
    e2e_exec_free(&x);
    e2e_resp_free(&r);
    free(secret);
    n_passed++;
}

static void test_token_needs_admin(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    struct e2e_resp r;
    char writer[64];

    /* no token: 401 with the server's message */
    assert_int_equal(e2e_get(d, "/api/v1/tokens", NULL, &r), 401);
    ctl(&x, "--url", d->base_url, "token", "list");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, e2e_error_message(&r)));
    assert_non_null(strstr(x.err, "401"));
    e2e_exec_free(&x);
    e2e_resp_free(&r);

    /* a token without admin: 403 */
    assert_int_equal(e2e_token_create(d, "ctl-writer", "[\"example:write\"]", NULL, writer, NULL),
                     0);
    assert_int_equal(e2e_get(d, "/api/v1/tokens", writer, &r), 403);
    ctl(&x, "--url", d->base_url, "--token", writer, "token", "create", "x", "--scope", "admin");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, e2e_error_message(&r)));
    assert_non_null(strstr(x.err, "403"));
    e2e_exec_free(&x);
    e2e_resp_free(&r);

    /* a bad request: the server's sentence about the field */
    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "create", "bad", "--scope",
        "no spaces allowed");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, "is not a scope"));
    assert_non_null(strstr(x.err, "400"));
    e2e_exec_free(&x);
    n_passed++;
}

static void test_token_from_env_and_file(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    char url[200], tok[128], file[400], file_env[450];
    char content[100];

    snprintf(url, sizeof(url), "RELENGD_URL=%s", d->base_url);
    snprintf(tok, sizeof(tok), "RELENGD_TOKEN=%s", d->admin_token);
    {
        const char *env[] = {url, tok, NULL};
        ctl_env(&x, env, "whoami", (const char *)NULL);
        expect_status(&x, 0);
        assert_non_null(strstr(x.out, "name: bootstrap-admin"));
        e2e_exec_free(&x);
    }

    snprintf(file, sizeof(file), "%s/ctl-token", d->dir);
    snprintf(content, sizeof(content), "  %s  \n# comment\n", d->admin_token);
    assert_int_equal(e2e_write_file(file, content, strlen(content)), 0);
    snprintf(file_env, sizeof(file_env), "RELENGD_TOKEN_FILE=%s", file);
    {
        const char *env[] = {url, file_env, NULL};
        ctl_env(&x, env, "token", "list", (const char *)NULL);
        expect_status(&x, 0);
        assert_non_null(strstr(x.out, "bootstrap-admin"));
        e2e_exec_free(&x);

        /* --token-file on the command line; a missing file is a usage error */
        ctl(&x, "--url", d->base_url, "--token-file", file, "whoami");
        expect_status(&x, 0);
        assert_non_null(strstr(x.out, "bootstrap-admin"));
        e2e_exec_free(&x);
        ctl(&x, "--url", d->base_url, "--token-file", "/nonexistent/token", "whoami");
        expect_status(&x, 2);
        assert_non_null(strstr(x.err, "/nonexistent/token"));
        e2e_exec_free(&x);
    }

    /* no token at all: anonymous reads work (anonymous_read = yes) */
    ctl(&x, "--url", d->base_url, "whoami");
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "anonymous"));
    e2e_exec_free(&x);
    n_passed++;
}

/* ------------------------------------------------------------ events */

static void test_events_after(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    char after[32], id1[32], id2[32], id3[32];
    long long e1 = add_note(d, "ctl one");
    long long e2 = add_note(d, "ctl two");
    long long e3 = add_note(d, "ctl three");
    json_t *doc, *events;
    char *row;

    snprintf(after, sizeof(after), "%lld", e1);
    snprintf(id1, sizeof(id1), "%lld ", e1);
    snprintf(id2, sizeof(id2), "%lld ", e2);
    snprintf(id3, sizeof(id3), "%lld ", e3);

    /* the table: the events after e1 of type example, oldest first */
    ctl(&x, "--url", d->base_url, "events", "--after", after, "--type", "example");
    expect_status(&x, 0);
    assert_true(has_line(x.out, "ID "));
    assert_false(has_line(x.out, id1));
    row = line_starting(x.out, id2);
    assert_non_null(row);
    assert_non_null(strstr(row, "example.noted"));
    assert_non_null(strstr(row, "\"text\":\"ctl two\""));
    free(row);
    row = line_starting(x.out, id3);
    assert_non_null(row);
    assert_non_null(strstr(row, "ctl three"));
    free(row);
    assert_true(strstr(x.out, id2) < strstr(x.out, id3));
    e2e_exec_free(&x);

    /* --json: the server's shape; --limit 1 keeps the first */
    ctl(&x, "--json", "--url", d->base_url, "events", "--after", after, "--limit", "1");
    expect_status(&x, 0);
    doc = json_loads(x.out, 0, NULL);
    assert_non_null(doc);
    events = json_object_get(doc, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 0), "id")), e2);
    assert_int_equal(json_integer_value(json_object_get(doc, "last_id")), e2);
    json_decref(doc);
    e2e_exec_free(&x);

    /* a filter that matches nothing */
    ctl(&x, "--url", d->base_url, "events", "--after", after, "--type", "nothing.here");
    expect_status(&x, 0);
    assert_string_equal(x.out, "No events.\n");
    e2e_exec_free(&x);

    /* a bad filter is the server's 400, with its message */
    ctl(&x, "--url", d->base_url, "events", "--type", "Not A Type!");
    expect_status(&x, 1);
    assert_non_null(strstr(x.err, "type must be"));
    e2e_exec_free(&x);
    n_passed++;
}

static void test_events_follow(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    char after[32];
    long long e1 = add_note(d, "follow one");
    long long e2 = add_note(d, "follow two");
    long long e3 = add_note(d, "follow three");
    json_t *ev;
    char *line2;

    /* resumes after e1 over SSE, prints one JSON envelope per line, stops at --limit */
    snprintf(after, sizeof(after), "%lld", e1);
    ctl(&x, "--json", "--url", d->base_url, "events", "--follow", "--type", "example.noted",
        "--after", after, "--limit", "2");
    expect_status(&x, 0);
    assert_int_equal(count_lines(x.out), 2);
    ev = json_loads(x.out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(ev);
    assert_int_equal(json_integer_value(json_object_get(ev, "id")), e2);
    json_decref(ev);
    line2 = strchr(x.out, '\n') + 1;
    ev = json_loads(line2, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(ev);
    assert_int_equal(json_integer_value(json_object_get(ev, "id")), e3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"), "text")),
                        "follow three");
    json_decref(ev);
    e2e_exec_free(&x);

    /* the human form: one line per event with id, type and data */
    ctl(&x, "--url", d->base_url, "events", "-f", "--after", after, "--limit", "1", "-t",
        "example");
    expect_status(&x, 0);
    assert_int_equal(count_lines(x.out), 1);
    assert_true(strtoll(x.out, NULL, 10) == e2);
    assert_non_null(strstr(x.out, "example.noted"));
    assert_non_null(strstr(x.out, "follow two"));
    e2e_exec_free(&x);
    n_passed++;
}

/* ------------------------------------------------------------ errors */

static void test_usage_errors(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;

    ctl(&x, "--url", d->base_url, "frobnicate");
    expect_status(&x, 2);
    assert_non_null(strstr(x.err, "unknown command 'frobnicate'"));
    assert_string_equal(x.out, "");
    e2e_exec_free(&x);

    ctl(&x, "--url", d->base_url, "token", "mint");
    expect_status(&x, 2);
    assert_non_null(strstr(x.err, "unknown command 'mint'"));
    e2e_exec_free(&x);

    ctl(&x, "--url", d->base_url, "status", "--bogus");
    expect_status(&x, 2);
    assert_non_null(strstr(x.err, "--bogus"));
    e2e_exec_free(&x);

    ctl(&x, "--url", d->base_url, "--token", d->admin_token, "token", "create", "noscope");
    expect_status(&x, 2);
    assert_non_null(strstr(x.err, "--scope"));
    e2e_exec_free(&x);

    ctl(&x, "--url", d->base_url, "events", "--after", "yesterday");
    expect_status(&x, 2);
    e2e_exec_free(&x);

    ctl(&x, "token");
    expect_status(&x, 2);
    assert_non_null(strstr(x.err, "create, list, revoke"));
    e2e_exec_free(&x);

    ctl(&x, "--url", "ftp://127.0.0.1/", "status");
    expect_status(&x, 2);
    e2e_exec_free(&x);

    /* help is not an error */
    ctl(&x, "--help");
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "status"));
    assert_non_null(strstr(x.out, "events"));
    assert_non_null(strstr(x.out, "token"));
    e2e_exec_free(&x);
    ctl(&x, "token", "create", "--help");
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "Usage: relengctl token create NAME --scope"));
    e2e_exec_free(&x);
    ctl(&x, "help", "events");
    expect_status(&x, 0);
    assert_non_null(strstr(x.out, "--follow"));
    e2e_exec_free(&x);
    n_passed++;
}

/* A loopback port nothing listens on: bound, then closed. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void test_connection_refused(void **state)
{
    struct e2e_exec x;
    char url[64];
    (void)state;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    ctl(&x, "--url", url, "status");
    expect_status(&x, 3);
    assert_non_null(strstr(x.err, "cannot reach"));
    assert_non_null(strstr(x.err, url));
    e2e_exec_free(&x);

    ctl(&x, "--url", url, "events", "--follow");
    expect_status(&x, 3);
    e2e_exec_free(&x);
    n_passed++;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_token_needs_admin),
        cmocka_unit_test(test_token_from_env_and_file),
        cmocka_unit_test(test_events_after),
        cmocka_unit_test(test_events_follow),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_connection_refused),
    };
    n_tests = (int)(sizeof(tests) / sizeof(tests[0]));
    return cmocka_run_group_tests(tests, setup, teardown);
}
