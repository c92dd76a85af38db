/* SPDX-License-Identifier: MIT */
/*
 * core/auth.c -- API tokens and scopes. A token is "rd_" + 43 base64url
 * characters (32 random bytes); the database keeps only its SHA-256 in
 * core_tokens, and a lookup finds the row by that hash through the UNIQUE
 * index, so no comparison ever runs on the secret itself. Each token has a
 * short public id ("tok_" + 12 hex), a name, a JSON array of scopes, and an
 * optional expiry and revocation time; last_used_ms is written at most once
 * a minute per token so that requests do not each cost a write.
 *
 * Bootstrap (auth_new): a configured admin_token is kept as the token named
 * "bootstrap-admin" (older bootstrap-admin tokens are revoked when the value
 * changes); without one, a fresh database gets a generated admin token that
 * is shown once, on stderr, in a banner -- never through the log.
 *
 * Threads: any. The struct holds no mutable state but an atomic flag; every
 * lookup reads the store (a revocation takes effect at the next request).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/auth.h"
#include "core/log.h"

#define AUTH_PREFIX "rd_"
#define AUTH_SECRET_CHARS 43 /* base64url of 32 bytes, no padding */
#define AUTH_TOKEN_LEN (sizeof(AUTH_PREFIX) - 1 + AUTH_SECRET_CHARS)
#define AUTH_HASH_LEN 32
#define AUTH_ID_LEN 16 /* "tok_" + 12 hex */
#define AUTH_NAME_MAX 63
#define AUTH_SCOPE_MAX 128
#define AUTH_SCOPES_MAX 64
#define AUTH_TOUCH_MS 60000 /* last_used_ms granularity */
#define AUTH_BOOTSTRAP_NAME "bootstrap-admin"

struct auth {
    struct store *store;
    atomic_bool anonymous_read;
};

/* --------------------------------------------------------------- helpers */

static uint64_t auth_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "2026-11-22T10:34:25Z" */
static void auth_time_str(uint64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&s, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "@%" PRIu64 "ms", ms);
}

static json_t *auth_time_json(uint64_t ms)
{
    char buf[40];

    if (ms == 0)
        return json_null();
    auth_time_str(ms, buf, sizeof(buf));
    return json_string(buf);
}

static int auth_sha256(const char *token, unsigned char out[AUTH_HASH_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL) != 1 || n != AUTH_HASH_LEN)
        return RD_ENOMEM;
    return RD_OK;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* The shape of a relengd token: "rd_" + 43 base64url characters. */
static bool auth_token_shape_ok(const char *t)
{
    if (!t || strlen(t) != AUTH_TOKEN_LEN || strncmp(t, AUTH_PREFIX, 3) != 0)
        return false;
    for (size_t i = 3; i < AUTH_TOKEN_LEN; i++)
        if (!b64url_char(t[i]))
            return false;
    return true;
}

/* A new secret: "rd_" + base64url(32 random bytes) without padding. */
static int auth_token_generate(char out[AUTH_TOKEN_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33]; /* one spare zero byte makes the last group whole */
    size_t o = 3;

    memset(raw, 0, sizeof(raw));
    if (RAND_bytes(raw, 32) != 1)
        return RD_EIO;
    memcpy(out, AUTH_PREFIX, 3);
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (o < AUTH_TOKEN_LEN)
            out[o++] = alphabet[(v >> 6) & 63];
        if (o < AUTH_TOKEN_LEN)
            out[o++] = alphabet[v & 63];
    }
    out[AUTH_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return RD_OK;
}

static int auth_id_generate(char out[AUTH_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[6];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return RD_EIO;
    memcpy(out, "tok_", 4);
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[4 + 2 * i] = hex[raw[i] >> 4];
        out[5 + 2 * i] = hex[raw[i] & 15];
    }
    out[AUTH_ID_LEN] = '\0';
    return RD_OK;
}

bool auth_scope_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool seg_empty = true;

    if (n == 0 || n > AUTH_SCOPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ':') {
            if (seg_empty)
                return false;
            seg_empty = true;
        } else if (c == '*') {
            /* A wildcard only at the very end, after something to match:
               "graph:*", "example:w*"; never "*" alone (that is admin). */
            if (i == 0 || i + 1 != n)
                return false;
            seg_empty = false;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '.' || c == '-') {
            seg_empty = false;
        } else {
            return false;
        }
    }
    return !seg_empty;
}

bool auth_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    json_t *probe;

    if (n == 0 || n > AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    /* Must be valid UTF-8: it goes into JSON answers and logs. */
    probe = json_string(name);
    if (!probe)
        return false;
    json_decref(probe);
    return true;
}

const char *auth_bearer_token(const char *authorization)
{
    const char *p = authorization;

    if (!p)
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return NULL;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p ? p : NULL;
}

bool auth_scope_match(const char *granted, const char *needed)
{
    size_t n;

    if (!granted || !needed || !needed[0])
        return false;
    if (strcmp(granted, "admin") == 0)
        return true;
    n = strlen(granted);
    /* A trailing '*' stands for a non-empty rest; nothing else is ever a
       prefix, so "graph:sub" does not grant "graph:submit". */
    if (n >= 2 && granted[n - 1] == '*')
        return strncmp(needed, granted, n - 1) == 0 && needed[n - 1] != '\0';
    return strcmp(granted, needed) == 0;
}

bool principal_has(const struct principal *p, const char *needed)
{
    size_t i;
    json_t *v;

    if (!p || p->anonymous || !needed)
        return false;
    json_array_foreach(p->scopes, i, v)
    {
        if (auth_scope_match(json_string_value(v), needed))
            return true;
    }
    return false;
}

void principal_fini(struct principal *p)
{
    if (!p)
        return;
    json_decref(p->scopes);
    p->scopes = NULL;
}

/* Checks a scopes array; the first problem goes to err. */
static int auth_scopes_check(const json_t *scopes, struct rd_error *err)
{
    size_t i;
    json_t *v;

    if (!json_is_array(scopes) || json_array_size(scopes) == 0)
        return rd_error_set(err, RD_EINVAL, "scopes must be a non-empty array of strings");
    if (json_array_size(scopes) > AUTH_SCOPES_MAX)
        return rd_error_set(err, RD_EINVAL, "at most %d scopes", AUTH_SCOPES_MAX);
    json_array_foreach(scopes, i, v)
    {
        if (!json_is_string(v))
            return rd_error_set(err, RD_EINVAL, "scopes[%zu] is not a string", i);
        if (!auth_scope_valid(json_string_value(v)))
            return rd_error_set(err, RD_EINVAL,
                                "scopes[%zu] \"%.64s\" is not a scope (segments of "
                                "[a-zA-Z0-9_.-] joined by ':', optionally ending in '*')",
                                i, json_string_value(v));
    }
    return RD_OK;
}

/* ------------------------------------------------------------------ SQL */

static sqlite3 *auth_db(struct rd_tx *tx)
{
    return ((struct store_tx *)tx)->db;
}

/* The columns auth_lookup needs; strings copied out of the statement. */
struct auth_row {
    bool found;
    char id[40];
    char name[64];
    char *scopes; /* malloc'd JSON text */
    uint64_t created_ms, expires_ms, revoked_ms, last_used_ms;
};

static int auth_row_read(sqlite3_stmt *st, struct auth_row *row)
{
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *scopes = (const char *)sqlite3_column_text(st, 2);

    if (!id || !name || !scopes)
        return RD_ECORRUPT;
    snprintf(row->id, sizeof(row->id), "%s", id);
    snprintf(row->name, sizeof(row->name), "%s", name);
    row->scopes = strdup(scopes);
    if (!row->scopes)
        return RD_ENOMEM;
    row->created_ms = (uint64_t)sqlite3_column_int64(st, 3);
    row->expires_ms = (uint64_t)sqlite3_column_int64(st, 4);
    row->revoked_ms = (uint64_t)sqlite3_column_int64(st, 5);
    row->last_used_ms = (uint64_t)sqlite3_column_int64(st, 6);
    row->found = true;
    return RD_OK;
}

#define AUTH_ROW_COLS "id, name, scopes, created_ms, expires_ms, revoked_ms, last_used_ms"

struct auth_by_hash {
    const unsigned char *hash;
    struct auth_row row;
};

static int auth_by_hash_tx(struct rd_tx *tx, void *arg)
{
    struct auth_by_hash *q = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, src;

    src = sqlite3_prepare_v2(
        auth_db(tx), "SELECT " AUTH_ROW_COLS " FROM core_tokens WHERE hash = ?", -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_blob(st, 1, q->hash, AUTH_HASH_LEN, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = auth_row_read(st, &q->row);
    else if (src != SQLITE_DONE)
        rc = store_sqlite_err(src);
out:
    sqlite3_finalize(st);
    return rc;
}

struct auth_touch {
    const char *id;
    uint64_t now_ms;
};

static int auth_touch_tx(struct rd_tx *tx, void *arg)
{
    struct auth_touch *t = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, src;

    /* The condition makes racing requests write once. */
    src = sqlite3_prepare_v2(auth_db(tx),
                             "UPDATE core_tokens SET last_used_ms = ?1 WHERE id = ?2 AND "
                             "(last_used_ms IS NULL OR last_used_ms <= ?1 - ?3)",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)t->now_ms);
    sqlite3_bind_text(st, 2, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, AUTH_TOUCH_MS);
    src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = store_sqlite_err(src);
out:
    sqlite3_finalize(st);
    return rc;
}

/* A new row; RD_ECONFLICT if the id is taken (the caller retries with
   another id) or the hash exists already. */
struct auth_insert {
    const char *id, *name, *scopes;
    const unsigned char *hash;
    uint64_t created_ms, expires_ms;
};

static int auth_insert_row(sqlite3 *db, const struct auth_insert *ins)
{
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, src;

    src = sqlite3_prepare_v2(db,
                             "INSERT INTO core_tokens(id, name, hash, scopes, created_ms, "
                             "expires_ms, revoked_ms, last_used_ms) "
                             "VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_text(st, 1, ins->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ins->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, ins->hash, AUTH_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ins->scopes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)ins->created_ms);
    if (ins->expires_ms)
        sqlite3_bind_int64(st, 6, (sqlite3_int64)ins->expires_ms);
    else
        sqlite3_bind_null(st, 6);
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT)
        rc = RD_ECONFLICT;
    else if (src != SQLITE_DONE)
        rc = store_sqlite_err(src);
out:
    sqlite3_finalize(st);
    return rc;
}

static int auth_insert_tx(struct rd_tx *tx, void *arg)
{
    return auth_insert_row(auth_db(tx), arg);
}

/* Inserts with a fresh id into *id_out, retrying on the (unlikely) id clash. */
static int auth_insert(struct auth *a, struct auth_insert *ins, char id_out[AUTH_ID_LEN + 1])
{
    int rc = RD_ECONFLICT;

    for (int attempt = 0; attempt < 4 && rc == RD_ECONFLICT; attempt++) {
        rc = auth_id_generate(id_out);
        if (rc != RD_OK)
            break;
        ins->id = id_out;
        rc = store_write(a->store, NULL, "core", auth_insert_tx, ins);
    }
    return rc;
}

/* ------------------------------------------------------------- lookups */

int auth_lookup(struct auth *a, const char *token, struct principal *p, struct rd_error *err)
{
    unsigned char hash[AUTH_HASH_LEN];
    struct auth_by_hash q;
    json_error_t jerr;
    uint64_t now;
    int rc;

    memset(p, 0, sizeof(*p));
    memset(&q, 0, sizeof(q));
    if (!a || !auth_token_shape_ok(token))
        return rd_error_set(err, RD_EAUTH, "unknown token");
    rc = auth_sha256(token, hash);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot hash the token");
    q.hash = hash;
    rc = store_read(a->store, NULL, auth_by_hash_tx, &q);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "cannot read tokens: %s",
                     rc == RD_ECORRUPT ? "corrupt row" : "store");
        goto out;
    }
    now = auth_now_ms();
    if (!q.row.found) {
        rc = rd_error_set(err, RD_EAUTH, "unknown token");
        goto out;
    }
    if (q.row.revoked_ms) {
        rc = rd_error_set(err, RD_EAUTH, "token revoked");
        goto out;
    }
    if (q.row.expires_ms && now >= q.row.expires_ms) {
        char when[40];
        auth_time_str(q.row.expires_ms, when, sizeof(when));
        rc = rd_error_set(err, RD_EAUTH, "token expired at %s", when);
        goto out;
    }
    p->scopes = json_loads(q.row.scopes, 0, &jerr);
    if (!json_is_array(p->scopes)) {
        principal_fini(p);
        log_msg("core", RD_ERROR, "auth: token %s has unreadable scopes", q.row.id);
        rc = rd_error_set(err, RD_ECORRUPT, "token %s has unreadable scopes", q.row.id);
        goto out;
    }
    p->anonymous = false;
    snprintf(p->id, sizeof(p->id), "%s", q.row.id);
    snprintf(p->name, sizeof(p->name), "%s", q.row.name);

    if (q.row.last_used_ms == 0 || now >= q.row.last_used_ms + AUTH_TOUCH_MS) {
        struct auth_touch t = {q.row.id, now};
        /* Best effort: a busy writer must not fail the request. */
        if (store_write(a->store, NULL, "core", auth_touch_tx, &t) != RD_OK)
            log_msg("core", RD_WARN, "auth: could not record the use of token %s", q.row.id);
    }
    rc = RD_OK;
out:
    free(q.row.scopes);
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

/* ------------------------------------------------------------- create */

static json_t *auth_token_json(const char *id, const char *name, const json_t *scopes,
                               uint64_t created_ms, uint64_t expires_ms)
{
    return json_pack("{s:s, s:s, s:O, s:o, s:o}", "id", id, "name", name, "scopes", scopes,
                     "created", auth_time_json(created_ms), "expires", auth_time_json(expires_ms));
}

int auth_token_create(struct auth *a, const char *name, const json_t *scopes, uint64_t expires_ms,
                      json_t **out, struct rd_error *err)
{
    char token[AUTH_TOKEN_LEN + 1], id[AUTH_ID_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    struct auth_insert ins;
    char *scopes_text = NULL;
    json_t *o = NULL;
    uint64_t now = auth_now_ms();
    int rc;

    *out = NULL;
    memset(token, 0, sizeof(token));
    if (!a)
        return rd_error_set(err, RD_EINVAL, "no token store");
    if (!auth_name_valid(name)) {
        rc = rd_error_set(err, RD_EINVAL,
                          "name must be 1 to %d characters of UTF-8 without control characters",
                          AUTH_NAME_MAX);
        goto out;
    }
    if (strcmp(name, AUTH_BOOTSTRAP_NAME) == 0 || strcmp(name, "anonymous") == 0) {
        rc = rd_error_set(err, RD_EINVAL, "the name %s is reserved", name);
        goto out;
    }
    rc = auth_scopes_check(scopes, err);
    if (rc != RD_OK)
        goto out;
    if (expires_ms != 0 && expires_ms <= now) {
        rc = rd_error_set(err, RD_EINVAL, "the expiry is in the past");
        goto out;
    }
    scopes_text = json_dumps(scopes, JSON_COMPACT);
    if (!scopes_text) {
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    rc = auth_token_generate(token);
    if (rc == RD_OK)
        rc = auth_sha256(token, hash);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "cannot generate a token");
        goto out;
    }
    memset(&ins, 0, sizeof(ins));
    ins.name = name;
    ins.scopes = scopes_text;
    ins.hash = hash;
    ins.created_ms = now;
    ins.expires_ms = expires_ms;
    rc = auth_insert(a, &ins, id);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "cannot store the token");
        goto out;
    }
    o = auth_token_json(id, name, scopes, now, expires_ms);
    if (!o || json_object_set_new(o, "token", json_string(token)) != 0) {
        json_decref(o);
        o = NULL;
        /* Stored but not shown: revoke it rather than leave it unusable and live. */
        auth_token_revoke(a, id);
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    *out = o;
out:
    free(scopes_text);
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

/* ---------------------------------------------------------- list, revoke */

static int auth_list_tx(struct rd_tx *tx, void *arg)
{
    json_t *list = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, src;

    src = sqlite3_prepare_v2(auth_db(tx),
                             "SELECT " AUTH_ROW_COLS " FROM core_tokens ORDER BY created_ms, id",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct auth_row row;
        json_t *scopes, *o;

        memset(&row, 0, sizeof(row));
        rc = auth_row_read(st, &row);
        if (rc != RD_OK)
            goto out;
        scopes = json_loads(row.scopes, 0, NULL);
        free(row.scopes);
        /* A broken row still shows up, so that it can be revoked. */
        o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", row.id, "name", row.name,
                      "scopes", json_is_array(scopes) ? scopes : json_array(), "created",
                      auth_time_json(row.created_ms), "expires", auth_time_json(row.expires_ms),
                      "revoked", auth_time_json(row.revoked_ms), "last_used",
                      auth_time_json(row.last_used_ms));
        if (!json_is_array(scopes))
            json_decref(scopes);
        if (!o || json_array_append_new(list, o) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE)
        rc = store_sqlite_err(src);
out:
    sqlite3_finalize(st);
    return rc;
}

int auth_token_list(struct auth *a, json_t **out)
{
    json_t *list = NULL;
    int rc;

    *out = NULL;
    if (!a)
        return RD_EINVAL;
    list = json_array();
    if (!list)
        return RD_ENOMEM;
    rc = store_read(a->store, NULL, auth_list_tx, list);
    if (rc != RD_OK) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return RD_OK;
}

struct auth_revoke {
    const char *id;
    uint64_t now_ms;
};

static int auth_revoke_tx(struct rd_tx *tx, void *arg)
{
    struct auth_revoke *r = arg;
    sqlite3 *db = auth_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, src;

    src = sqlite3_prepare_v2(db,
                             "UPDATE core_tokens SET revoked_ms = ? WHERE id = ? AND "
                             "revoked_ms IS NULL",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->now_ms);
    sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        rc = store_sqlite_err(src);
        goto out;
    }
    if (sqlite3_changes(db) > 0)
        goto out;
    /* Nothing changed: revoked already (fine, revoking is idempotent) or unknown. */
    sqlite3_finalize(st);
    st = NULL;
    src = sqlite3_prepare_v2(db, "SELECT 1 FROM core_tokens WHERE id = ?", -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = RD_ENOTFOUND;
    else if (src != SQLITE_ROW)
        rc = store_sqlite_err(src);
out:
    sqlite3_finalize(st);
    return rc;
}

int auth_token_revoke(struct auth *a, const char *id)
{
    struct auth_revoke r;
    int rc;

    if (!a || !id)
        return RD_EINVAL;
    if (!id[0] || strlen(id) > 64)
        return RD_ENOTFOUND;
    r.id = id;
    r.now_ms = auth_now_ms();
    rc = store_write(a->store, NULL, "core", auth_revoke_tx, &r);
    return rc;
}

/* ------------------------------------------------------------ bootstrap */

/* With admin_token configured: one write transaction makes sure that the
   token with that hash is an unrevoked, unexpiring "bootstrap-admin" with
   scope admin, and revokes every other live bootstrap-admin token. */
struct auth_ensure {
    const unsigned char *hash;
    uint64_t now_ms;
    char id[40]; /* an existing row's id may be any stored text */
    int n_revoked;
    bool created;
    struct rd_error *err;
};

static int auth_ensure_tx(struct rd_tx *tx, void *arg)
{
    struct auth_ensure *e = arg;
    sqlite3 *db = auth_db(tx);
    sqlite3_stmt *st = NULL;
    struct auth_row row;
    int rc = RD_OK, src;

    memset(&row, 0, sizeof(row));
    src = sqlite3_prepare_v2(db, "SELECT " AUTH_ROW_COLS " FROM core_tokens WHERE hash = ?", -1,
                             &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_blob(st, 1, e->hash, AUTH_HASH_LEN, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = auth_row_read(st, &row);
    else if (src != SQLITE_DONE)
        rc = store_sqlite_err(src);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != RD_OK)
        goto out;

    if (row.found && strcmp(row.name, AUTH_BOOTSTRAP_NAME) != 0) {
        rc = rd_error_set(e->err, RD_ECONFLICT,
                          "auth.admin_token is the secret of token %s (\"%s\"); configure "
                          "another value",
                          row.id, row.name);
        goto out;
    }
    if (row.found) {
        /* Reactivate it as it should be (it may have been revoked or narrowed). */
        snprintf(e->id, sizeof(e->id), "%s", row.id);
        src = sqlite3_prepare_v2(db,
                                 "UPDATE core_tokens SET scopes = '[\"admin\"]', expires_ms = "
                                 "NULL, revoked_ms = NULL WHERE id = ?",
                                 -1, &st, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_text(st, 1, row.id, -1, SQLITE_STATIC);
            src = sqlite3_step(st);
        }
        if (src != SQLITE_DONE) {
            rc = store_sqlite_err(src);
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
    } else {
        struct auth_insert ins;

        memset(&ins, 0, sizeof(ins));
        ins.name = AUTH_BOOTSTRAP_NAME;
        ins.scopes = "[\"admin\"]";
        ins.hash = e->hash;
        ins.created_ms = e->now_ms;
        rc = RD_ECONFLICT;
        for (int attempt = 0; attempt < 4 && rc == RD_ECONFLICT; attempt++) {
            rc = auth_id_generate(e->id);
            if (rc != RD_OK)
                goto out;
            ins.id = e->id;
            rc = auth_insert_row(db, &ins);
        }
        if (rc != RD_OK)
            goto out;
        e->created = true;
    }

    src = sqlite3_prepare_v2(db,
                             "UPDATE core_tokens SET revoked_ms = ? WHERE name = ? AND id != ? "
                             "AND revoked_ms IS NULL",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = store_sqlite_err(src);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)e->now_ms);
    sqlite3_bind_text(st, 2, AUTH_BOOTSTRAP_NAME, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        rc = store_sqlite_err(src);
        goto out;
    }
    e->n_revoked = sqlite3_changes(db);
out:
    sqlite3_finalize(st);
    free(row.scopes);
    return rc;
}

static int auth_bootstrap_configured(struct auth *a, const char *token, struct rd_error *err)
{
    unsigned char hash[AUTH_HASH_LEN];
    struct auth_ensure e;
    int rc;

    if (!auth_token_shape_ok(token))
        return rd_error_set(err, RD_EINVAL,
                            "auth.admin_token must be \"rd_\" followed by 43 base64url "
                            "characters (for example: printf 'rd_%%s\\n' \"$(openssl rand "
                            "-base64 32 | tr '+/' '-_' | tr -d '=')\")");
    rc = auth_sha256(token, hash);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot hash auth.admin_token");
    memset(&e, 0, sizeof(e));
    e.hash = hash;
    e.now_ms = auth_now_ms();
    e.err = err;
    rc = store_write(a->store, NULL, "core", auth_ensure_tx, &e);
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc != RD_OK) {
        if (!err || err->code != rc || !err->msg[0])
            rd_error_set(err, rc, "cannot store the configured admin token");
        return rc;
    }
    log_msg("core", RD_INFO, "auth: the configured admin_token is token %s (%s)%s", e.id,
            AUTH_BOOTSTRAP_NAME, e.created ? ", new" : "");
    if (e.n_revoked > 0)
        log_msg("core", RD_INFO,
                "auth: the configured admin_token changed: revoked %d older %s token(s)",
                e.n_revoked, AUTH_BOOTSTRAP_NAME);
    return RD_OK;
}

/* Without admin_token: on a database with no token at all, one write
   transaction counts and inserts, so two starts cannot both generate. */
struct auth_first {
    const unsigned char *hash;
    uint64_t now_ms;
    char id[AUTH_ID_LEN + 1];
    bool created;
};

static int auth_first_tx(struct rd_tx *tx, void *arg)
{
    struct auth_first *f = arg;
    sqlite3 *db = auth_db(tx);
    sqlite3_stmt *st = NULL;
    struct auth_insert ins;
    int rc = RD_OK, src;

    src = sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM core_tokens)", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sqlite_err(src);
        goto out;
    }
    if (sqlite3_column_int(st, 0) != 0)
        goto out;
    memset(&ins, 0, sizeof(ins));
    ins.name = AUTH_BOOTSTRAP_NAME;
    ins.scopes = "[\"admin\"]";
    ins.hash = f->hash;
    ins.created_ms = f->now_ms;
    rc = auth_id_generate(f->id);
    if (rc != RD_OK)
        goto out;
    ins.id = f->id;
    rc = auth_insert_row(db, &ins);
    if (rc == RD_OK)
        f->created = true;
out:
    sqlite3_finalize(st);
    return rc;
}

/* The banner goes straight to stderr with one write: not through the log
   (which may be shipped elsewhere), and shown this once only. */
static void auth_banner(const char *id, const char *token)
{
    char buf[1200];
    int n = snprintf(buf, sizeof(buf),
                     "\n"
                     "==================================================================\n"
                     " relengd: generated the first admin token. It is shown ONLY NOW.\n"
                     "\n"
                     "   %s\n"
                     "\n"
                     " Token id %s, name \"%s\", scope \"admin\".\n"
                     " Keep it in a password store, e.g. for relengctl:\n"
                     "   export RELENGD_TOKEN=<the token above>\n"
                     " Create personal tokens with POST /api/v1/tokens, then revoke\n"
                     " this one with DELETE /api/v1/tokens/%s.\n"
                     " To choose the admin token yourself, set admin_token in [auth].\n"
                     "==================================================================\n"
                     "\n",
                     token, id, AUTH_BOOTSTRAP_NAME, id);

    if (n > 0 && (size_t)n < sizeof(buf) && write(STDERR_FILENO, buf, (size_t)n) < 0) {
        /* Nowhere else to show it; the operator can set admin_token instead. */
    }
    OPENSSL_cleanse(buf, sizeof(buf));
}

static int auth_bootstrap_generated(struct auth *a, struct rd_error *err)
{
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    struct auth_first f;
    int rc;

    memset(&f, 0, sizeof(f));
    rc = auth_token_generate(token);
    if (rc == RD_OK)
        rc = auth_sha256(token, hash);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "cannot generate the first admin token");
        goto out;
    }
    f.hash = hash;
    f.now_ms = auth_now_ms();
    rc = store_write(a->store, NULL, "core", auth_first_tx, &f);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "cannot store the first admin token");
        goto out;
    }
    if (f.created) {
        auth_banner(f.id, token);
        log_msg("core", RD_INFO,
                "auth: generated the first admin token %s (%s); its secret was printed once "
                "on stderr",
                f.id, AUTH_BOOTSTRAP_NAME);
    }
out:
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

/* ------------------------------------------------------------- lifetime */

int auth_new(struct store *s, const struct auth_conf *c, struct auth **out, struct rd_error *err)
{
    struct auth *a = NULL;
    int rc;

    *out = NULL;
    if (!s || !c)
        return rd_error_set(err, RD_EINVAL, "auth needs a store and a configuration");
    a = calloc(1, sizeof(*a));
    if (!a)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    a->store = s;
    atomic_store(&a->anonymous_read, c->anonymous_read);
    if (c->admin_token && c->admin_token[0])
        rc = auth_bootstrap_configured(a, c->admin_token, err);
    else
        rc = auth_bootstrap_generated(a, err);
    if (rc != RD_OK) {
        free(a);
        return rc;
    }
    *out = a;
    return RD_OK;
}

void auth_free(struct auth *a)
{
    free(a);
}

void auth_set_anonymous_read(struct auth *a, bool on)
{
    if (a)
        atomic_store(&a->anonymous_read, on);
}

bool auth_anonymous_read(struct auth *a)
{
    return a && atomic_load(&a->anonymous_read);
}
