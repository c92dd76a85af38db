/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_auth.c -- core/auth.c on a real SQLite store in a
 * temporary directory: create, look up, list and revoke tokens; expiry;
 * the scope grammar and matching rules in tables; that only hashes reach
 * the database file (and no secret reaches the log); last_used throttling;
 * the bootstrap token generated once and the configured admin token with
 * rotation. The log and the banner go to files so they can be inspected.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/auth.h"
#include "core/log.h"
#include "core/store.h"

struct fixture {
    char dir[64];
    char db_path[128];
    char log_path[128];
    char err_path[128];
    struct store *store;
    int log_fd;
};

static const char token_a[] = "rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
static const char token_b[] = "rd_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fixture_open_store(struct fixture *f)
{
    struct store_conf sc = {f->db_path, 5000, true};
    struct rd_error err = {0};

    if (store_open(&sc, &f->store, &err) != RD_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/rd-test-auth-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db_path, sizeof(f->db_path), "%s/relengd.db", f->dir);
    snprintf(f->log_path, sizeof(f->log_path), "%s/log", f->dir);
    snprintf(f->err_path, sizeof(f->err_path), "%s/stderr", f->dir);
    f->log_fd = open(f->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (f->log_fd < 0)
        return -1;
    log_set_fd(f->log_fd);
    log_set_level(RD_DEBUG);
    if (fixture_open_store(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    const char *suffixes[] = {"relengd.db", "relengd.db-wal", "relengd.db-shm", "log", "stderr"};
    char path[160];

    store_close(f->store);
    log_set_fd(2);
    close(f->log_fd);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, suffixes[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* auth_new with stderr captured in f->err_path (appended). */
static int auth_open(struct fixture *f, const char *admin_token, struct auth **a,
                     struct rd_error *err)
{
    struct auth_conf c = {true, admin_token};
    int saved = dup(2);
    int fd = open(f->err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int rc;

    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    rc = auth_new(f->store, &c, a, err);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    close(fd);
    return rc;
}

/* The whole of a file, NUL-terminated, and its length. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;

    *len = 0;
    if (!fp)
        return calloc(1, 1);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static bool file_contains(const char *path, const void *needle, size_t needle_len)
{
    size_t len;
    char *buf = slurp(path, &len);
    bool found = memmem(buf, len, needle, needle_len) != NULL;

    free(buf);
    return found;
}

/* Runs SQL with one optional int64 and one text parameter on the writer. */
struct sql_arg {
    const char *sql;
    int64_t i;
    const char *s;
    int64_t result;
};

static int sql_tx(struct rd_tx *tx, void *arg)
{
    struct sql_arg *q = arg;
    sqlite3_stmt *st = NULL;
    int src;

    if (sqlite3_prepare_v2(((struct store_tx *)tx)->db, q->sql, -1, &st, NULL) != SQLITE_OK)
        return RD_EIO;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, q->i);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_text(st, 2, q->s, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    q->result = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? RD_OK : RD_EIO;
}

static int64_t sql(struct fixture *f, const char *query, int64_t i, const char *s)
{
    struct sql_arg q = {query, i, s, -1};
    assert_int_equal(store_write(f->store, NULL, "test", sql_tx, &q), RD_OK);
    return q.result;
}

static json_t *scopes_of(const char *a, const char *b)
{
    json_t *v = json_array();
    json_array_append_new(v, json_string(a));
    if (b)
        json_array_append_new(v, json_string(b));
    return v;
}

/* Creates a token and returns its secret (malloc'd) and id. */
static char *create(struct auth *a, const char *name, const char *scope, uint64_t expires_ms,
                    char id[40])
{
    json_t *scopes = scopes_of(scope, NULL), *o = NULL;
    struct rd_error err = {0};
    char *secret;

    assert_int_equal(auth_token_create(a, name, scopes, expires_ms, &o, &err), RD_OK);
    json_decref(scopes);
    secret = strdup(json_string_value(json_object_get(o, "token")));
    snprintf(id, 40, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    return secret;
}

/* ------------------------------------------------------------ pure parts */

static void test_scope_match_table(void **state)
{
    static const struct {
        const char *granted, *needed;
        bool want;
    } cases[] = {
        {"admin", "graph:submit", true},
        {"admin", "admin", true},
        {"admin", "signing:sign:release-key", true},
        {"graph:*", "graph:submit", true},
        {"graph:*", "graph:tasks:cancel", true},
        {"graph:*", "graph", false},
        {"graph:*", "graph:", false},
        {"graph:*", "graphs:submit", false},
        {"graph:*", "dispatch:claim", false},
        {"signing:sign:*", "signing:sign:release-key", true},
        {"signing:sign:*", "signing:sign", false},
        {"signing:sign:*", "signing:verify:key", false},
        {"graph:submit", "graph:submit", true},
        {"graph:sub", "graph:submit", false},
        {"graph:submit", "graph:sub", false},
        {"graph:submitx", "graph:submit", false},
        {"graph", "graph:submit", false},
        {"Graph:submit", "graph:submit", false},
        {"graph:submit", "", false},
        {"", "graph:submit", false},
        {NULL, "graph:submit", false},
        {"admin", NULL, false},
        {"*", "graph:submit", false},
        {"example:w*", "example:write", true},
        {"example:w*", "example:w", false},
        {"example:w*", "example:read", false},
        {"examplex:*", "example:write", false},
        {"graph*", "graphs:x", true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s vs %s\n", i, cases[i].granted ? cases[i].granted : "(null)",
                      cases[i].needed ? cases[i].needed : "(null)");
        assert_int_equal(auth_scope_match(cases[i].granted, cases[i].needed), cases[i].want);
    }
}

static void test_scope_valid_table(void **state)
{
    static const struct {
        const char *scope;
        bool want;
    } cases[] = {
        {"admin", true},
        {"graph:submit", true},
        {"graph:*", true},
        {"signing:sign:*", true},
        {"signing:sign:release-key.v2_x", true},
        {"a", true},
        {"", false},
        {NULL, false},
        {"*", false},
        {":*", false},
        {"graph:", false},
        {":graph", false},
        {"graph::submit", false},
        {"graph:*:x", false},
        {"graph:sub*", true},
        {"graph*", true},
        {"graph:*x", false},
        {"gr*ph", false},
        {"graph:**", false},
        {"graph submit", false},
        {"graph/submit", false},
        {"gr\xc3\xa4ph", false},
    };
    char long_scope[200];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s\n", i, cases[i].scope ? cases[i].scope : "(null)");
        assert_int_equal(auth_scope_valid(cases[i].scope), cases[i].want);
    }
    memset(long_scope, 'a', sizeof(long_scope) - 1);
    long_scope[sizeof(long_scope) - 1] = '\0';
    assert_false(auth_scope_valid(long_scope));
    long_scope[128] = '\0';
    assert_true(auth_scope_valid(long_scope));
}

static void test_bearer(void **state)
{
    static const struct {
        const char *header, *want;
    } cases[] = {
        {"Bearer rd_x", "rd_x"},
        {"bearer rd_x", "rd_x"},
        {"BEARER   rd_x", "rd_x"},
        {"  Bearer\trd_x", "rd_x"},
        {"Bearer", NULL},
        {"Bearer ", NULL},
        {"Bearerrd_x", NULL},
        {"Basic YWRtaW46YWRtaW4=", NULL},
        {"Token rd_x", NULL},
        {"", NULL},
        {NULL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = auth_bearer_token(cases[i].header);
        if (cases[i].want)
            assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
    }
}

static void test_principal_has(void **state)
{
    struct principal p;

    (void)state;
    memset(&p, 0, sizeof(p));
    p.scopes = scopes_of("graph:*", "signing:sign:nightly");
    assert_true(principal_has(&p, "graph:submit"));
    assert_true(principal_has(&p, "signing:sign:nightly"));
    assert_false(principal_has(&p, "signing:sign:release"));
    assert_false(principal_has(&p, "admin"));
    assert_false(principal_has(&p, NULL));
    p.anonymous = true;
    assert_false(principal_has(&p, "graph:submit"));
    principal_fini(&p);
    assert_null(p.scopes);
    principal_fini(&p);
    principal_fini(NULL);
    assert_false(principal_has(NULL, "x"));
}

/* -------------------------------------------------------- with the store */

static void test_create_lookup_list_revoke(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    json_t *scopes, *o = NULL, *list = NULL, *t;
    const char *secret, *id;
    char id_copy[40];
    size_t i;

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    scopes = scopes_of("graph:submit", "signing:sign:*");
    assert_int_equal(auth_token_create(a, "ci-bot", scopes, 0, &o, &err), RD_OK);
    json_decref(scopes);

    secret = json_string_value(json_object_get(o, "token"));
    id = json_string_value(json_object_get(o, "id"));
    assert_non_null(secret);
    assert_non_null(id);
    /* rd_ + 43 base64url; tok_ + 12 hex */
    assert_int_equal(strlen(secret), 46);
    assert_memory_equal(secret, "rd_", 3);
    assert_int_equal(strspn(secret + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_"),
                     43);
    assert_int_equal(strlen(id), 16);
    assert_memory_equal(id, "tok_", 4);
    assert_int_equal(strspn(id + 4, "0123456789abcdef"), 12);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "ci-bot");
    assert_true(json_is_null(json_object_get(o, "expires")));
    assert_true(json_is_string(json_object_get(o, "created")));
    assert_int_equal(json_array_size(json_object_get(o, "scopes")), 2);
    snprintf(id_copy, sizeof(id_copy), "%s", id);

    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
    assert_false(p.anonymous);
    assert_string_equal(p.name, "ci-bot");
    assert_string_equal(p.id, id_copy);
    assert_true(principal_has(&p, "graph:submit"));
    assert_true(principal_has(&p, "signing:sign:nightly"));
    assert_false(principal_has(&p, "graph:cancel"));
    assert_false(principal_has(&p, "admin"));
    principal_fini(&p);

    /* The list has both tokens, no secret, no hash. */
    assert_int_equal(auth_token_list(a, &list), RD_OK);
    assert_int_equal(json_array_size(list), 2);
    json_array_foreach(list, i, t)
    {
        char *dump = json_dumps(t, 0);
        assert_null(json_object_get(t, "token"));
        assert_null(json_object_get(t, "hash"));
        assert_null(strstr(dump, secret + 3));
        free(dump);
        assert_non_null(json_object_get(t, "revoked"));
        assert_non_null(json_object_get(t, "last_used"));
    }
    t = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(t, "id")), id_copy);
    assert_true(json_is_string(json_object_get(t, "last_used")));
    assert_true(json_is_null(json_object_get(t, "revoked")));
    json_decref(list);

    /* Revoke: the next lookup fails; revoking again is fine; unknown ids are not. */
    assert_int_equal(auth_token_revoke(a, id_copy), RD_OK);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_EAUTH);
    assert_string_equal(err.msg, "token revoked");
    assert_null(p.scopes);
    assert_int_equal(auth_token_revoke(a, id_copy), RD_OK);
    assert_int_equal(auth_token_revoke(a, "tok_000000000000"), RD_ENOTFOUND);
    assert_int_equal(auth_token_revoke(a, ""), RD_ENOTFOUND);
    assert_int_equal(auth_token_revoke(a, NULL), RD_EINVAL);
    assert_int_equal(auth_token_list(a, &list), RD_OK);
    assert_true(json_is_string(json_object_get(json_array_get(list, 1), "revoked")));
    json_decref(list);

    json_decref(o);
    auth_free(a);
}

static void test_lookup_unknown_and_malformed(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    static const char *bad[] = {
        "rd_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", /* well formed, unknown */
        "",
        "rd_",
        "rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* one short */
        "rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* one long */
        "xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "Bearer rd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(auth_lookup(a, bad[i], &p, &err), RD_EAUTH);
        assert_string_equal(err.msg, "unknown token");
        assert_null(p.scopes);
        principal_fini(&p);
    }
    assert_int_equal(auth_lookup(a, NULL, &p, &err), RD_EAUTH);
    assert_int_equal(auth_lookup(a, NULL, &p, NULL), RD_EAUTH);
    assert_int_equal(auth_lookup(a, token_a, &p, &err), RD_OK);
    principal_fini(&p);
    auth_free(a);
}

static void test_expiry(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    json_t *scopes = scopes_of("graph:submit", NULL), *o = NULL;
    char id[40];
    char *secret;

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    secret = create(a, "short-lived", "graph:submit", now_ms() + 3600 * 1000, id);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
    principal_fini(&p);

    /* Move the expiry into the past. */
    sql(f, "UPDATE core_tokens SET expires_ms = ?1 WHERE id = ?2", 1700000000000, id);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_EAUTH);
    assert_string_equal(err.msg, "token expired at 2023-11-14T22:13:20Z");
    assert_null(p.scopes);

    /* An expiry in the past cannot be created. */
    assert_int_equal(auth_token_create(a, "late", scopes, now_ms() - 1, &o, &err), RD_EINVAL);
    assert_null(o);
    assert_non_null(strstr(err.msg, "past"));
    /* The expiry shows in the answer. */
    assert_int_equal(auth_token_create(a, "later", scopes, 4102444800000, &o, &err), RD_OK);
    assert_string_equal(json_string_value(json_object_get(o, "expires")), "2100-01-01T00:00:00Z");
    json_decref(o);
    json_decref(scopes);
    free(secret);
    auth_free(a);
}

static void test_create_validation(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    json_t *good = scopes_of("graph:submit", NULL), *o = NULL;
    char name64[65];
    static const char *bad_names[] = {"",     "bootstrap-admin", "anonymous", "tab\there",
                                      "nl\n", "bad utf8 \xff",   "del\x7f"};
    static const char *bad_scope_docs[] = {
        "\"graph:submit\"", "[]",        "[1]",
        "[\"graph:\"]",     "[\"*\"]",   "[\"a b\"]",
        "[\"graph:*:x\"]",  "{\"a\":1}", "[\"ok\", null]",
    };

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        print_message("name case %zu\n", i);
        assert_int_equal(auth_token_create(a, bad_names[i], good, 0, &o, &err), RD_EINVAL);
        assert_null(o);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(auth_token_create(a, NULL, good, 0, &o, &err), RD_EINVAL);
    memset(name64, 'n', 64);
    name64[64] = '\0';
    assert_int_equal(auth_token_create(a, name64, good, 0, &o, &err), RD_EINVAL);
    name64[63] = '\0';
    assert_int_equal(auth_token_create(a, name64, good, 0, &o, &err), RD_OK);
    json_decref(o);
    assert_int_equal(auth_token_create(a, "caf\xc3\xa9", good, 0, &o, &err), RD_OK);
    json_decref(o);

    for (size_t i = 0; i < sizeof(bad_scope_docs) / sizeof(bad_scope_docs[0]); i++) {
        json_t *s = json_loads(bad_scope_docs[i], JSON_DECODE_ANY, NULL);
        print_message("scopes case %zu: %s\n", i, bad_scope_docs[i]);
        assert_non_null(s);
        memset(&err, 0, sizeof(err));
        assert_int_equal(auth_token_create(a, "x", s, 0, &o, &err), RD_EINVAL);
        assert_null(o);
        assert_true(err.msg[0] != '\0');
        json_decref(s);
    }
    assert_int_equal(auth_token_create(a, "x", NULL, 0, &o, &err), RD_EINVAL);
    /* Nothing was stored by the failures: bootstrap + the two good ones. */
    assert_int_equal(sql(f, "SELECT COUNT(*) FROM core_tokens", 0, NULL), 3);
    json_decref(good);
    auth_free(a);
}

/* Only SHA-256 hashes reach the database (and its WAL); no secret reaches
   the log. The hash itself is found, which shows the search works. */
static void test_hash_only_storage(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    char wal_path[160], id[40];
    char *secrets[5];
    unsigned char hash[32];
    unsigned int hash_len = 0;
    bool hash_seen;

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    for (size_t i = 0; i < 5; i++)
        secrets[i] = create(a, "t", "graph:submit", 0, id);
    snprintf(wal_path, sizeof(wal_path), "%s-wal", f->db_path);

    for (size_t i = 0; i < 5; i++) {
        const char *body = secrets[i] + 3;
        assert_false(file_contains(f->db_path, secrets[i], strlen(secrets[i])));
        assert_false(file_contains(wal_path, secrets[i], strlen(secrets[i])));
        assert_false(file_contains(f->db_path, body, 20));
        assert_false(file_contains(wal_path, body, 20));
        assert_false(file_contains(f->log_path, body, 20));
    }
    assert_false(file_contains(f->db_path, token_a + 3, 20));
    assert_false(file_contains(wal_path, token_a + 3, 20));
    assert_false(file_contains(f->log_path, token_a + 3, 20));

    assert_int_equal(
        EVP_Digest(secrets[0], strlen(secrets[0]), hash, &hash_len, EVP_sha256(), NULL), 1);
    hash_seen = file_contains(f->db_path, hash, sizeof(hash)) ||
                file_contains(wal_path, hash, sizeof(hash));
    assert_true(hash_seen);

    for (size_t i = 0; i < 5; i++)
        free(secrets[i]);
    auth_free(a);
}

static void test_last_used_throttled(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    char id[40];
    char *secret;
    int64_t first, t;

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    secret = create(a, "poller", "graph:submit", 0, id);
    assert_int_equal(sql(f, "SELECT last_used_ms IS NULL FROM core_tokens WHERE id = ?2", 0, id),
                     1);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
    principal_fini(&p);
    first = sql(f, "SELECT last_used_ms FROM core_tokens WHERE id = ?2", 0, id);
    assert_true(first > 0 && (uint64_t)first <= now_ms());

    /* Within a minute: no write. */
    t = (int64_t)now_ms() - 30000;
    sql(f, "UPDATE core_tokens SET last_used_ms = ?1 WHERE id = ?2", t, id);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
        principal_fini(&p);
    }
    assert_int_equal(sql(f, "SELECT last_used_ms FROM core_tokens WHERE id = ?2", 0, id), t);

    /* Over a minute ago: written again. */
    t = (int64_t)now_ms() - 61000;
    sql(f, "UPDATE core_tokens SET last_used_ms = ?1 WHERE id = ?2", t, id);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
    principal_fini(&p);
    assert_true(sql(f, "SELECT last_used_ms FROM core_tokens WHERE id = ?2", 0, id) >= t + 61000);
    free(secret);
    auth_free(a);
}

/* The first start on an empty database prints one banner with a working
   admin token; later starts print nothing and create nothing. */
static void test_bootstrap_generated_once(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    char token[47];
    size_t len, len2;
    char *banner, *at;

    assert_int_equal(auth_open(f, NULL, &a, &err), RD_OK);
    banner = slurp(f->err_path, &len);
    at = strstr(banner, "rd_");
    assert_non_null(at);
    assert_non_null(strstr(banner, "shown ONLY NOW"));
    memcpy(token, at, 46);
    token[46] = '\0';
    free(banner);
    assert_int_equal(auth_lookup(a, token, &p, &err), RD_OK);
    assert_string_equal(p.name, "bootstrap-admin");
    assert_true(principal_has(&p, "anything:at:all"));
    principal_fini(&p);
    /* The log mentions it but never shows it. */
    assert_true(file_contains(f->log_path, "generated the first admin token", 31));
    assert_false(file_contains(f->log_path, token + 3, 43));
    auth_free(a);

    /* Again, and with the admin token revoked: still nothing new. */
    sql(f, "UPDATE core_tokens SET revoked_ms = ?1", 1, NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(auth_open(f, "", &a, &err), RD_OK);
        auth_free(a);
    }
    free(slurp(f->err_path, &len2));
    assert_int_equal(len2, len);
    assert_int_equal(sql(f, "SELECT COUNT(*) FROM core_tokens", 0, NULL), 1);
}

static void test_bootstrap_configured_rotation(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct principal p;
    char id_a[40], id_b[40], id[40];
    size_t len;
    char *secret, *out;

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    assert_int_equal(auth_lookup(a, token_a, &p, &err), RD_OK);
    assert_string_equal(p.name, "bootstrap-admin");
    assert_true(principal_has(&p, "admin"));
    snprintf(id_a, sizeof(id_a), "%s", p.id);
    principal_fini(&p);
    auth_free(a);
    /* No banner with a configured token. */
    out = slurp(f->err_path, &len);
    free(out);
    assert_int_equal(len, 0);

    /* The same value again: the same token, no new row. */
    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    assert_int_equal(auth_lookup(a, token_a, &p, &err), RD_OK);
    assert_string_equal(p.id, id_a);
    principal_fini(&p);
    auth_free(a);
    assert_int_equal(sql(f, "SELECT COUNT(*) FROM core_tokens", 0, NULL), 1);

    /* A new value replaces it: the old one stops working. */
    assert_int_equal(auth_open(f, token_b, &a, &err), RD_OK);
    assert_int_equal(auth_lookup(a, token_a, &p, &err), RD_EAUTH);
    assert_string_equal(err.msg, "token revoked");
    assert_int_equal(auth_lookup(a, token_b, &p, &err), RD_OK);
    assert_true(principal_has(&p, "admin"));
    snprintf(id_b, sizeof(id_b), "%s", p.id);
    assert_string_not_equal(id_a, id_b);
    principal_fini(&p);

    /* Other tokens are untouched by rotation. */
    secret = create(a, "personal", "graph:*", 0, id);
    auth_free(a);

    /* Back to the first value: that token comes back, B is revoked. Even a
       narrowed or expired bootstrap row is restored to admin, never expiring. */
    sql(f, "UPDATE core_tokens SET scopes = '[\"graph:x\"]', expires_ms = ?1 WHERE id = ?2", 1,
        id_a);
    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    assert_int_equal(auth_lookup(a, token_a, &p, &err), RD_OK);
    assert_string_equal(p.id, id_a);
    assert_true(principal_has(&p, "admin"));
    principal_fini(&p);
    assert_int_equal(auth_lookup(a, token_b, &p, &err), RD_EAUTH);
    assert_int_equal(auth_lookup(a, secret, &p, &err), RD_OK);
    principal_fini(&p);
    auth_free(a);

    /* A malformed admin_token is refused with advice. */
    assert_int_equal(auth_open(f, "letmein", &a, &err), RD_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err.msg, "admin_token"));
    /* The secret of another token cannot become the admin token. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(auth_open(f, secret, &a, &err), RD_ECONFLICT);
    assert_null(a);
    assert_non_null(strstr(err.msg, id));
    free(secret);
    out = slurp(f->err_path, &len);
    free(out);
    assert_int_equal(len, 0);
}

static void test_anonymous_flag(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    struct auth_conf c = {false, token_a};

    assert_int_equal(auth_new(f->store, &c, &a, &err), RD_OK);
    assert_false(auth_anonymous_read(a));
    auth_set_anonymous_read(a, true);
    assert_true(auth_anonymous_read(a));
    auth_free(a);
    assert_false(auth_anonymous_read(NULL));
    auth_set_anonymous_read(NULL, true);
    auth_free(NULL);
    assert_int_equal(auth_new(NULL, &c, &a, &err), RD_EINVAL);
    assert_int_equal(auth_new(f->store, NULL, &a, &err), RD_EINVAL);
}

/* Many secrets, all different; many threads looking up at once. */
struct lookup_arg {
    struct auth *a;
    const char *secret;
    int ok;
};

static void *lookup_thread(void *p)
{
    struct lookup_arg *l = p;

    for (int i = 0; i < 200; i++) {
        struct principal pr;
        if (auth_lookup(l->a, l->secret, &pr, NULL) == RD_OK && principal_has(&pr, "graph:x"))
            l->ok++;
        principal_fini(&pr);
    }
    return NULL;
}

static void test_unique_and_concurrent(void **state)
{
    struct fixture *f = *state;
    struct auth *a = NULL;
    struct rd_error err = {0};
    char *secrets[40], id[40];
    struct lookup_arg args[4];
    pthread_t t[4];

    assert_int_equal(auth_open(f, token_a, &a, &err), RD_OK);
    for (size_t i = 0; i < 40; i++) {
        secrets[i] = create(a, "bulk", "graph:*", 0, id);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(secrets[i], secrets[j]);
    }
    assert_int_equal(sql(f, "SELECT COUNT(DISTINCT id) FROM core_tokens", 0, NULL), 41);
    for (int i = 0; i < 4; i++) {
        args[i].a = a;
        args[i].secret = secrets[i];
        args[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, lookup_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].ok, 200);
    }
    for (size_t i = 0; i < 40; i++)
        free(secrets[i]);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_match_table),
        cmocka_unit_test(test_scope_valid_table),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_principal_has),
        cmocka_unit_test_setup_teardown(test_create_lookup_list_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_unknown_and_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_only_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_used_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_generated_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_configured_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_and_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
