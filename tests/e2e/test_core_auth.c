/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_core_auth.c -- tokens and scopes through the real daemon:
 * 401 (no, garbage, unknown, revoked or expired token) versus 403 (a valid
 * token without the scope), exact and wildcard scopes, anonymous reads on
 * and off, token create/list/revoke over HTTP, and that a token's secret is
 * shown once and never again: not in the token list, not in the database
 * files, not in the log.
 */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

#define NOTES "/api/v1/example/notes"
#define NOTE_BODY "{\"text\":\"auth test\"}"

static void expect_error(struct e2e_resp *r, int status)
{
    if (r->status != status)
        fprintf(stderr, "want %d, got %d: %s\n", status, r->status, r->body);
    assert_int_equal(r->status, status);
    assert_non_null(e2e_error_code(r));
    assert_non_null(e2e_error_message(r));
}

/* POST a note with token (NULL: none); returns the status. */
static int post_note(struct e2e_daemon *d, const char *token)
{
    struct e2e_resp r;
    int status = e2e_post(d, NOTES, token, NOTE_BODY, &r);

    if (status == 401 || status == 403) {
        assert_non_null(e2e_error_code(&r));
        assert_non_null(e2e_error_message(&r));
    }
    e2e_resp_free(&r);
    return status;
}

static int get_with_token(struct e2e_daemon *d, const char *path, const char *token)
{
    struct e2e_resp r;
    int status = e2e_get(d, path, token, &r);

    e2e_resp_free(&r);
    return status;
}

/* ----------------------------------------------------------- 401 and 403 */

static void test_no_or_bad_token_401(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char unknown[80];
    static const char *const auth_headers[] = {
        "Authorization: Basic YWRtaW46YWRtaW4=",
        "Authorization: Bearer",
        "Authorization: Bearer ",
        "Authorization: bearer-ish rd_x",
        "Authorization: Token rd_AAAA",
    };

    e2e_post(d, NOTES, NULL, NOTE_BODY, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    e2e_post(d, NOTES, "garbage", NOTE_BODY, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    /* well formed, but no such token: same 401 */
    snprintf(unknown, sizeof(unknown), "rd_%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    e2e_post(d, NOTES, unknown, NOTE_BODY, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    /* the admin token with a character changed */
    snprintf(unknown, sizeof(unknown), "%s", d->admin_token);
    unknown[10] = unknown[10] == 'A' ? 'B' : 'A';
    e2e_post(d, NOTES, unknown, NOTE_BODY, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    /* the admin token with something appended */
    snprintf(unknown, sizeof(unknown), "%sA", d->admin_token);
    e2e_post(d, NOTES, unknown, NOTE_BODY, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    for (size_t i = 0; i < sizeof(auth_headers) / sizeof(auth_headers[0]); i++) {
        const char *h[] = {"Content-Type: application/json", auth_headers[i], NULL};
        e2e_request(d, "POST", NOTES, NULL, h, NOTE_BODY, strlen(NOTE_BODY), &r);
        expect_error(&r, 401);
        e2e_resp_free(&r);
    }

    /* admin-only core routes */
    e2e_get(d, "/api/v1/tokens", NULL, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    e2e_post(d, "/api/v1/tokens", NULL, "{\"name\":\"x\",\"scopes\":[\"admin\"]}", &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    /* nothing was created by any of them */
    assert_int_equal(e2e_get(d, NOTES, NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 0);
    e2e_resp_free(&r);

    /* and the right token works */
    assert_int_equal(post_note(d, d->admin_token), 201);
    e2e_pass(d);
}

static void test_scopes_403_and_wildcards(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char tok[64];
    static const struct {
        const char *scopes;
        int want;
    } cases[] = {
        {"[\"example:read\"]", 403},
        {"[\"example:wri\"]", 403},
        {"[\"example:writer\"]", 403},
        {"[\"example\"]", 403},
        {"[\"other:write\"]", 403},
        {"[\"example:write:x\"]", 403},
        {"[\"Example:write\"]", 403},
        {"[\"example:write\"]", 201},
        {"[\"example:read\", \"example:write\"]", 201},
        {"[\"example:*\"]", 201},
        {"[\"example:w*\"]", 201},
        {"[\"admin\"]", 201},
        {"[\"other:*\"]", 403},
        {"[\"examplex:*\"]", 403},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        int got;

        snprintf(name, sizeof(name), "scopes-%zu", i);
        assert_int_equal(e2e_token_create(d, name, cases[i].scopes, NULL, tok, NULL), 0);
        got = post_note(d, tok);
        if (got != cases[i].want)
            fprintf(stderr, "scopes %s: POST notes -> %d, want %d\n", cases[i].scopes, got,
                    cases[i].want);
        assert_int_equal(got, cases[i].want);
    }

    /* a non-admin token cannot manage tokens */
    assert_int_equal(e2e_token_create(d, "writer", "[\"example:write\"]", NULL, tok, NULL), 0);
    e2e_get(d, "/api/v1/tokens", tok, &r);
    expect_error(&r, 403);
    e2e_resp_free(&r);
    e2e_post(d, "/api/v1/tokens", tok, "{\"name\":\"escalate\",\"scopes\":[\"admin\"]}", &r);
    expect_error(&r, 403);
    e2e_resp_free(&r);
    e2e_get(d, "/api/v1/routes", tok, &r);
    expect_error(&r, 403);
    e2e_resp_free(&r);

    /* whoami tells the token's name and scopes, never the secret */
    assert_int_equal(e2e_get(d, "/api/v1/whoami", tok, &r), 200);
    assert_string_equal(e2e_json_str(&r, "name"), "writer");
    assert_true(json_is_array(json_object_get(r.json, "scopes")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "scopes"), 0)),
                        "example:write");
    assert_null(strstr(r.body, tok));
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* ------------------------------------------------------ anonymous reads */

static const char *const anon_off_set[] = {"auth.anonymous_read=false", NULL};
static const struct e2e_opts anon_off_opts = {.set = anon_off_set};

static void test_anonymous_read_off(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char tok[64];

    assert_int_equal(post_note(d, d->admin_token), 201);

    e2e_get(d, NOTES, NULL, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    e2e_get(d, NOTES "/1", NULL, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    e2e_get(d, "/api/v1/status", NULL, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    e2e_get(d, "/api/v1/events", NULL, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);
    e2e_get(d, NOTES, "garbage", &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    /* any valid token may read, whatever its scopes */
    assert_int_equal(e2e_token_create(d, "reader", "[\"example:read\"]", NULL, tok, NULL), 0);
    assert_int_equal(e2e_get(d, NOTES, tok, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 1);
    e2e_resp_free(&r);
    assert_int_equal(get_with_token(d, "/api/v1/status", tok), 200);
    assert_int_equal(get_with_token(d, NOTES, d->admin_token), 200);
    /* but not write */
    assert_int_equal(post_note(d, tok), 403);

    /* liveness stays open for orchestrators (docker HEALTHCHECK) */
    assert_int_equal(get_with_token(d, "/healthz", NULL), 200);
    e2e_pass(d);
}

static void test_anonymous_read_on(void **state)
{
    struct e2e_daemon *d = *state;

    assert_int_equal(get_with_token(d, NOTES, NULL), 200);
    assert_int_equal(get_with_token(d, "/api/v1/status", NULL), 200);
    /* writes still need a token */
    assert_int_equal(post_note(d, NULL), 401);
    e2e_pass(d);
}

/* ----------------------------------------------------- token life cycle */

static json_t *find_token(json_t *list, const char *id)
{
    size_t i;
    json_t *t;
    json_t *arr = json_is_array(list) ? list : json_object_get(list, "tokens");

    json_array_foreach(arr, i, t)
    {
        json_t *jid = json_object_get(t, "id");
        char buf[64];
        if (json_is_integer(jid))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(jid));
        else
            snprintf(buf, sizeof(buf), "%s", json_string_value(jid) ? json_string_value(jid) : "");
        if (strcmp(buf, id) == 0)
            return t;
    }
    return NULL;
}

static void test_token_create_list_revoke(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char tok[64], id[64], path[256];
    json_t *t;
    const char *secret;

    assert_int_equal(e2e_post(d, "/api/v1/tokens", d->admin_token,
                              "{\"name\":\"ci-bot\",\"scopes\":[\"example:write\"]}", &r),
                     201);
    secret = e2e_json_str(&r, "token");
    assert_non_null(secret);
    /* "rd_" + 43 base64url characters */
    assert_int_equal(strlen(secret), 46);
    assert_int_equal(strncmp(secret, "rd_", 3), 0);
    assert_int_equal(strspn(secret + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_"),
                     43);
    assert_string_equal(e2e_json_str(&r, "name"), "ci-bot");
    assert_true(json_is_array(json_object_get(r.json, "scopes")));
    assert_non_null(json_object_get(r.json, "id"));
    snprintf(tok, sizeof(tok), "%s", secret);
    if (json_is_integer(json_object_get(r.json, "id")))
        snprintf(id, sizeof(id), "%lld",
                 (long long)json_integer_value(json_object_get(r.json, "id")));
    else
        snprintf(id, sizeof(id), "%s", e2e_json_str(&r, "id"));
    assert_null(strstr(id, tok));
    e2e_resp_free(&r);

    /* it works */
    assert_int_equal(post_note(d, tok), 201);

    /* listed, without its secret */
    assert_int_equal(e2e_get(d, "/api/v1/tokens", d->admin_token, &r), 200);
    t = find_token(r.json, id);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "name")), "ci-bot");
    assert_null(json_object_get(t, "token"));
    assert_null(strstr(r.body, tok));
    assert_null(strstr(r.body, tok + 3));
    assert_null(strstr(r.body, d->admin_token));
    e2e_resp_free(&r);

    /* revoke */
    snprintf(path, sizeof(path), "/api/v1/tokens/%s", id);
    e2e_delete(d, path, tok, &r); /* not by itself: it is no admin */
    expect_error(&r, 403);
    e2e_resp_free(&r);
    e2e_delete(d, path, d->admin_token, &r);
    if (r.status != 200 && r.status != 204)
        fprintf(stderr, "DELETE %s -> %d %s\n", path, r.status, r.body);
    assert_true(r.status == 200 || r.status == 204);
    e2e_resp_free(&r);

    /* revoked: 401, on every route that takes a token */
    assert_int_equal(post_note(d, tok), 401);
    e2e_get(d, "/api/v1/whoami", tok, &r);
    expect_error(&r, 401);
    e2e_resp_free(&r);

    /* the list says so (or no longer lists it) */
    assert_int_equal(e2e_get(d, "/api/v1/tokens", d->admin_token, &r), 200);
    t = find_token(r.json, id);
    if (t)
        assert_true(json_is_true(json_object_get(t, "revoked")) ||
                    json_is_string(json_object_get(t, "revoked")) ||
                    json_is_integer(json_object_get(t, "revoked")));
    e2e_resp_free(&r);

    /* revoking an unknown token is a 404 */
    e2e_delete(d, "/api/v1/tokens/999999", d->admin_token, &r);
    expect_error(&r, 404);
    e2e_resp_free(&r);

    /* the revocation survives a restart */
    assert_int_equal(e2e_restart(d), E2E_READY);
    assert_int_equal(post_note(d, tok), 401);
    assert_int_equal(post_note(d, d->admin_token), 201);
    e2e_pass(d);
}

static void test_token_create_bad_input(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    static const char *const bodies[] = {
        "{\"scopes\":[\"admin\"]}",
        "{\"name\":\"x\"}",
        "{\"name\":\"x\",\"scopes\":\"admin\"}",
        "{\"name\":\"x\",\"scopes\":[]}",
        "{\"name\":\"x\",\"scopes\":[\"\"]}",
        "{\"name\":\"x\",\"scopes\":[\"has space\"]}",
        "{\"name\":\"x\",\"scopes\":[42]}",
        "{\"name\":\"\",\"scopes\":[\"admin\"]}",
        "{\"name\":7,\"scopes\":[\"admin\"]}",
        "{\"name\":\"x\",\"scopes\":[\"admin\"],\"expires_in\":\"soon\"}",
        "{\"name\":\"x\",\"scopes\":[\"admin\"],\"expires_in\":-5}",
        "{\"name\":\"x\",\"scopes\":[\"admin\"",
        "[]",
    };
    size_t n_before;

    assert_int_equal(e2e_get(d, "/api/v1/tokens", d->admin_token, &r), 200);
    n_before = json_array_size(json_is_array(r.json) ? r.json : json_object_get(r.json, "tokens"));
    e2e_resp_free(&r);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        e2e_post(d, "/api/v1/tokens", d->admin_token, bodies[i], &r);
        if (r.status != 400)
            fprintf(stderr, "POST /api/v1/tokens %s -> %d %s\n", bodies[i], r.status, r.body);
        expect_error(&r, 400);
        e2e_resp_free(&r);
    }
    assert_int_equal(e2e_get(d, "/api/v1/tokens", d->admin_token, &r), 200);
    assert_int_equal(
        json_array_size(json_is_array(r.json) ? r.json : json_object_get(r.json, "tokens")),
        n_before);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* Polls POST notes with tok until 401 (true) or timeout_ms. */
static bool becomes_401(struct e2e_daemon *d, const char *tok, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        int st = post_note(d, tok);
        if (st == 401)
            return true;
        assert_int_equal(st, 201);
        if (e2e_now_ms() >= deadline)
            return false;
        e2e_sleep_ms(100);
    }
}

static void test_expired_token(void **state)
{
    struct e2e_daemon *d = *state;
    char tok_s[64], tok_str[64], tok_long[64];
    uint64_t t0;

    t0 = e2e_now_ms();
    assert_int_equal(e2e_token_create(d, "short-int", "[\"example:write\"]", "2", tok_s, NULL), 0);
    assert_int_equal(
        e2e_token_create(d, "short-str", "[\"example:write\"]", "\"2s\"", tok_str, NULL), 0);
    assert_int_equal(e2e_token_create(d, "long", "[\"example:write\"]", "\"1h\"", tok_long, NULL),
                     0);
    /* valid at first (if the machine was not too slow to check) */
    if (e2e_now_ms() - t0 < 1500) {
        assert_int_equal(post_note(d, tok_s), 201);
        assert_int_equal(post_note(d, tok_str), 201);
    }
    /* then expired: a bounded poll, no fixed sleep */
    assert_true(becomes_401(d, tok_s, 10000));
    assert_true(becomes_401(d, tok_str, 10000));
    assert_true(e2e_now_ms() - t0 >= 1900);
    /* the long one still works */
    assert_int_equal(post_note(d, tok_long), 201);
    e2e_pass(d);
}

/* ---------------------------------------------- secrets are never stored */

/* Whether needle occurs in any file under dir (recursively). */
static bool tree_contains(const char *dir, const char *needle)
{
    DIR *dd = opendir(dir);
    struct dirent *de;
    bool found = false;

    if (!dd)
        return false;
    while (!found && (de = readdir(dd)) != NULL) {
        char p[2048];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found = tree_contains(p, needle);
        } else if (S_ISREG(st.st_mode)) {
            size_t len;
            char *data = e2e_read_file(p, &len);
            if (data && memmem(data, len, needle, strlen(needle)))
                found = true;
            free(data);
        }
    }
    closedir(dd);
    return found;
}

static void test_secret_never_stored(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char tok[64], db[512];
    struct stat st;

    assert_int_equal(e2e_token_create(d, "stored?", "[\"example:write\"]", NULL, tok, NULL), 0);
    assert_int_equal(post_note(d, tok), 201);
    assert_int_equal(post_note(d, d->admin_token), 201);

    assert_int_equal(e2e_get(d, "/api/v1/tokens", d->admin_token, &r), 200);
    assert_null(strstr(r.body, tok));
    assert_null(strstr(r.body, tok + 3));
    assert_null(strstr(r.body, d->admin_token));
    assert_null(strstr(r.body, d->admin_token + 3));
    e2e_resp_free(&r);

    /* the database (and its WAL) while running, and after a clean stop */
    snprintf(db, sizeof(db), "%s/relengd.db", d->state_dir);
    assert_int_equal(stat(db, &st), 0);
    assert_false(tree_contains(d->state_dir, tok));
    assert_false(tree_contains(d->state_dir, tok + 3));
    assert_false(tree_contains(d->state_dir, d->admin_token));
    assert_false(tree_contains(d->state_dir, d->admin_token + 3));
    assert_int_equal(e2e_stop(d), 0);
    assert_false(tree_contains(d->state_dir, tok + 3));
    assert_false(tree_contains(d->state_dir, d->admin_token + 3));

    /* never logged either (the log runs at debug level here) */
    assert_false(e2e_log_contains(d, tok + 3));
    assert_false(e2e_log_contains(d, d->admin_token + 3));

    /* and the token still works after a restart: only its hash was kept */
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(post_note(d, tok), 201);
    e2e_pass(d);
}

/* Without a configured admin token, the first start makes one and prints it
   once; it works; the second start does not print a new one. */
static const struct e2e_opts no_admin_opts = {.no_admin_token = true};

static void test_generated_admin_token(void **state)
{
    struct e2e_daemon *d = *state;
    char *log = e2e_log_text(d), *p, tok[64] = "";
    size_t n, size;

    /* find "rd_" + 43 base64url characters in the log */
    for (p = strstr(log, "rd_"); p; p = strstr(p + 1, "rd_")) {
        n = strspn(p + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
        if (n == 43) {
            snprintf(tok, sizeof(tok), "%.46s", p);
            break;
        }
    }
    free(log);
    if (!tok[0])
        fprintf(stderr, "no generated admin token printed at first start\n");
    assert_true(tok[0] != '\0');
    assert_int_equal(post_note(d, tok), 201);
    assert_int_equal(get_with_token(d, "/api/v1/tokens", tok), 200);

    size = e2e_log_size(d);
    assert_int_equal(e2e_restart(d), E2E_READY);
    assert_false(e2e_log_contains_from(d, size, tok));
    assert_int_equal(post_note(d, tok), 201);
    e2e_pass(d);
}

/* A new configured admin token replaces the old one at restart: the old
   secret stops working at once. */
static void test_admin_token_rotation(void **state)
{
    struct e2e_daemon *d = *state;
    char old[64];

    assert_int_equal(post_note(d, d->admin_token), 201);
    snprintf(old, sizeof(old), "%s", d->admin_token);
    assert_int_equal(e2e_stop(d), 0);
    assert_int_equal(e2e_make_token(d->admin_token), 0);
    assert_string_not_equal(old, d->admin_token);
    assert_int_equal(e2e_launch(d), E2E_READY);
    assert_int_equal(post_note(d, d->admin_token), 201);
    assert_int_equal(get_with_token(d, "/api/v1/tokens", d->admin_token), 200);
    assert_int_equal(post_note(d, old), 401);
    assert_int_equal(get_with_token(d, "/api/v1/tokens", old), 401);
    e2e_pass(d);
}

/* A configured admin token that is not a real token (guessable) is refused
   at start, naming the setting; it never becomes an admin credential. */
static const char *const weak_env[] = {"RELENGD_ADMIN_TOKEN=admin", NULL};
static const struct e2e_opts weak_opts = {.no_admin_token = true, .env = weak_env};

static void test_weak_admin_token_refused(void **state)
{
    struct e2e_daemon *d = *state;
    char *log;
    int rc = e2e_launch(d);

    if (rc == E2E_READY) {
        /* at least it must not work */
        assert_int_equal(post_note(d, "admin"), 401);
        e2e_kill9(d);
    }
    assert_int_equal(rc, E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    log = e2e_log_text(d);
    assert_non_null(strstr(log, "admin_token"));
    free(log);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_or_bad_token_401, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_scopes_403_and_wildcards, e2e_setup, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_anonymous_read_off, e2e_setup, e2e_teardown,
                                                 (void *)&anon_off_opts),
        cmocka_unit_test_setup_teardown(test_anonymous_read_on, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_token_create_list_revoke, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_token_create_bad_input, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_expired_token, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_secret_never_stored, e2e_setup, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_generated_admin_token, e2e_setup,
                                                 e2e_teardown, (void *)&no_admin_opts),
        cmocka_unit_test_setup_teardown(test_admin_token_rotation, e2e_setup, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_weak_admin_token_refused, e2e_setup_new,
                                                 e2e_teardown, (void *)&weak_opts),
    };
    return cmocka_run_group_tests_name("e2e core auth", tests, NULL, NULL);
}
