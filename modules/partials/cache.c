/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/cache.c -- the diff cache: patch files, their index in
 * partials_cache, LRU eviction, the remote cache (see cache.h). Lookups and
 * stores run on pool threads; one mutex orders the file moves and the
 * running total so eviction never races a store.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hash/hash.h"
#include "lib/partial/apply.h"
#include "modules/partials/cache.h"

struct partials_cache {
    struct rd_host *h;
    const struct partials_conf *conf;
    pthread_mutex_t lock; /* total_bytes, file renames and eviction */
    uint64_t total_bytes;
    struct rd_metric *m_hits, *m_misses, *m_bypass, *m_corrupt, *m_evictions, *m_bytes_saved,
        *m_seconds_saved, *m_bytes, *m_remote_hits;
    _Atomic uint64_t hits, misses, bypassed, corrupt, evictions;
};

/* ------------------------------------------------------------ helpers */

static void key_hex(const struct partial_cache_key *k, char from[65], char to[65])
{
    hash_hex(k->from_sha256, 32, from);
    hash_hex(k->to_sha256, 32, to);
}

static int entry_path(struct partials_cache *c, const struct partial_cache_key *k, char *path,
                      size_t len)
{
    char from[65], to[65], name[PARTIALS_CACHE_NAME_MAX];

    key_hex(k, from, to);
    if (partials_cache_name(from, to, k->format, name) != RD_OK)
        return RD_EINVAL;
    if (snprintf(path, len, "%s/%s", c->conf->cache_dir, name) >= (int)len)
        return RD_EINVAL;
    return RD_OK;
}

/* Writes data to path through a temporary file and a rename, so a reader
   (or a crash) never sees half a patch. */
static int write_atomic(const char *dir, const char *path, const uint8_t *data, size_t len)
{
    char tmp[PATH_MAX];
    size_t off = 0;
    int fd, rc = RD_OK;

    if (snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir) >= (int)sizeof(tmp))
        return RD_EINVAL;
    fd = mkstemp(tmp);
    if (fd < 0)
        return RD_EIO;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = RD_EIO;
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0)
        rc = RD_EIO;
    if (rc == RD_OK && (chmod(tmp, 0644) != 0 || rename(tmp, path) != 0))
        rc = RD_EIO;
    if (rc != RD_OK)
        unlink(tmp);
    return rc;
}

/* ------------------------------------------------------------- index */

struct idx_op {
    struct partials_cache *c;
    char from[65], to[65];
    const char *format;
    int64_t size, diff_ms, now;
    bool found;
    int64_t old_size; /* idx_put_tx: the size of the entry it replaced, or 0 */
    /* eviction: the oldest entries, filled by evict_pick_tx */
    struct victim {
        char from[65], to[65], format[20];
        int64_t size;
    } victims[32];
    size_t n_victims;
};

static int idx_bind_key(sqlite3_stmt *st, const struct idx_op *op)
{
    if (sqlite3_bind_text(st, 1, op->from, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, op->to, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, op->format, -1, SQLITE_STATIC) != SQLITE_OK)
        return RD_EIO;
    return RD_OK;
}

static int idx_get_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT size, diff_ms FROM partials_cache"
                           " WHERE from_sha = ?1 AND to_sha = ?2 AND format = ?3",
                           -1, &st, NULL) != SQLITE_OK ||
        idx_bind_key(st, op) != RD_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        op->found = true;
        op->size = sqlite3_column_int64(st, 0);
        op->diff_ms = sqlite3_column_int64(st, 1);
        rc = RD_OK;
    } else if (step == SQLITE_DONE) {
        op->found = false;
        rc = RD_OK;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static int idx_touch_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "UPDATE partials_cache SET last_used_ms = ?4, hits = hits + 1"
                           " WHERE from_sha = ?1 AND to_sha = ?2 AND format = ?3",
                           -1, &st, NULL) == SQLITE_OK &&
        idx_bind_key(st, op) == RD_OK && sqlite3_bind_int64(st, 4, op->now) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        rc = RD_OK;
    sqlite3_finalize(st);
    return rc;
}

/* Deletes the row and returns its size in op->size (found false if none). */
static int idx_delete_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    sqlite3_stmt *st = NULL;
    int rc = idx_get_tx(tx, arg);

    if (rc != RD_OK || !op->found)
        return rc;
    rc = RD_EIO;
    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "DELETE FROM partials_cache"
                           " WHERE from_sha = ?1 AND to_sha = ?2 AND format = ?3",
                           -1, &st, NULL) == SQLITE_OK &&
        idx_bind_key(st, op) == RD_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = RD_OK;
    sqlite3_finalize(st);
    return rc;
}

/* Inserts or replaces; op->old_size tells the size of the row it replaced. */
static int idx_put_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    struct idx_op old = *op;
    sqlite3_stmt *st = NULL;
    int rc = idx_get_tx(tx, &old);

    if (rc != RD_OK)
        return rc;
    rc = RD_EIO;
    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "INSERT OR REPLACE INTO partials_cache (from_sha, to_sha, format, size,"
                           " diff_ms, created_ms, last_used_ms, hits)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0)",
                           -1, &st, NULL) == SQLITE_OK &&
        idx_bind_key(st, op) == RD_OK && sqlite3_bind_int64(st, 4, op->size) == SQLITE_OK &&
        sqlite3_bind_int64(st, 5, op->diff_ms) == SQLITE_OK &&
        sqlite3_bind_int64(st, 6, op->now) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = RD_OK;
    sqlite3_finalize(st);
    op->old_size = old.found ? old.size : 0;
    return rc;
}

/* Picks and deletes up to 32 least recently used rows. */
static int evict_pick_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    sqlite3_stmt *st = NULL, *del = NULL;
    int rc = RD_EIO, step;

    op->n_victims = 0;
    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT from_sha, to_sha, format, size FROM partials_cache"
                           " ORDER BY last_used_ms, created_ms LIMIT 32",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(rd_tx_db(tx),
                           "DELETE FROM partials_cache"
                           " WHERE from_sha = ?1 AND to_sha = ?2 AND format = ?3",
                           -1, &del, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && op->n_victims < 32) {
        struct victim *v = &op->victims[op->n_victims++];
        snprintf(v->from, sizeof(v->from), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(v->to, sizeof(v->to), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(v->format, sizeof(v->format), "%s", (const char *)sqlite3_column_text(st, 2));
        v->size = sqlite3_column_int64(st, 3);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    for (size_t i = 0; i < op->n_victims; i++) {
        sqlite3_reset(del);
        if (sqlite3_bind_text(del, 1, op->victims[i].from, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(del, 2, op->victims[i].to, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(del, 3, op->victims[i].format, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(del) != SQLITE_DONE)
            goto out;
    }
    rc = RD_OK;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(del);
    return rc;
}

static int sum_tx(struct rd_tx *tx, void *arg)
{
    struct idx_op *op = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT count(*), coalesce(sum(size), 0) FROM partials_cache", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        op->diff_ms = sqlite3_column_int64(st, 0); /* entries */
        op->size = sqlite3_column_int64(st, 1);
        rc = RD_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Takes n bytes off the total, never below 0. Caller holds c->lock. */
static void total_sub_locked(struct partials_cache *c, uint64_t n)
{
    c->total_bytes -= n < c->total_bytes ? n : c->total_bytes;
}

/* Evicts least recently used entries until the total fits. Caller holds
   c->lock. */
static void evict_locked(struct partials_cache *c)
{
    char path[PATH_MAX], name[PARTIALS_CACHE_NAME_MAX];

    while (c->total_bytes > c->conf->cache_max_bytes) {
        struct idx_op op = {.c = c};
        if (rd_store_write(c->h, evict_pick_tx, &op) != RD_OK || op.n_victims == 0)
            return;
        for (size_t i = 0; i < op.n_victims && c->total_bytes > 0; i++) {
            struct victim *v = &op.victims[i];
            if (partials_cache_name(v->from, v->to, v->format, name) == RD_OK &&
                snprintf(path, sizeof(path), "%s/%s", c->conf->cache_dir, name) < (int)sizeof(path))
                unlink(path);
            total_sub_locked(c, (uint64_t)v->size);
            atomic_fetch_add(&c->evictions, 1);
            rd_metric_add(c->m_evictions, 1);
        }
        /* eviction stops as soon as the total fits, even mid-batch: the rows
           already deleted are gone, their files too */
    }
    rd_metric_set(c->m_bytes, (double)c->total_bytes);
}

/* ------------------------------------------------------------- remote */

struct membuf {
    uint8_t *data;
    size_t len, cap, max;
    const uint8_t *src; /* upload */
    size_t src_len, src_off;
};

static size_t mem_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct membuf *b = arg;
    size_t n = size * nmemb;

    if (b->len + n > b->max)
        return 0; /* cap: the transfer fails */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        uint8_t *d;
        while (cap < b->len + n)
            cap *= 2;
        d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

static size_t mem_read(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct membuf *b = arg;
    size_t n = size * nmemb;

    if (n > b->src_len - b->src_off)
        n = b->src_len - b->src_off;
    memcpy(ptr, b->src + b->src_off, n);
    b->src_off += n;
    return n;
}

/* One blocking transfer on this pool thread (bounded by remote_timeout).
   GET: body into *out; PUT: data. Returns the HTTP status, or -1. */
static long remote_call(struct partials_cache *c, const struct partial_cache_key *k, bool put,
                        const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    const struct partials_conf *cf = c->conf;
    char from[65], to[65], sigv4[128], userpwd[512], payload[128];
    uint8_t digest[32];
    char hex[65];
    struct curl_slist *headers = NULL;
    char *url = NULL;
    CURL *e = NULL;
    struct membuf b = {.max = 512u * 1024 * 1024, .src = data, .src_len = len};
    long status = -1;

    key_hex(k, from, to);
    url = partials_remote_url(cf->remote_cache, from, to, k->format);
    e = curl_easy_init();
    if (!url || !e)
        goto out;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cf->remote_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(cf->remote_kind, "s3") == 0) {
        snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", cf->s3_region);
        snprintf(userpwd, sizeof(userpwd), "%s:%s", cf->s3_access_key, cf->s3_secret_key);
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
        /* S3 wants the payload's SHA-256 in a header; libcurl signs it */
        if (hash_buf(HASH_SHA256, put ? data : (const uint8_t *)"", put ? len : 0, digest, NULL) !=
            RD_OK)
            goto out;
        hash_hex(digest, 32, hex);
        snprintf(payload, sizeof(payload), "x-amz-content-sha256: %s", hex);
        headers = curl_slist_append(NULL, payload);
        if (!headers)
            goto out;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    }
    if (put) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, mem_read);
        curl_easy_setopt(e, CURLOPT_READDATA, &b);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (!put && status == 200 && out) {
        *out = b.data;
        *out_len = b.len;
        b.data = NULL;
    }
out:
    free(b.data);
    curl_easy_cleanup(e);
    curl_slist_free_all(headers);
    free(url);
    return status;
}

/* ---------------------------------------------------------- the ops */

/* Stores data under k locally (index + file) and evicts. */
static void store_local(struct partials_cache *c, const struct partial_cache_key *k,
                        const uint8_t *data, size_t len, uint64_t diff_ms)
{
    char path[PATH_MAX], dir[PATH_MAX], from[65], to[65];
    struct idx_op op = {.c = c, .format = k->format};

    if (len > c->conf->cache_max_bytes || entry_path(c, k, path, sizeof(path)) != RD_OK)
        return;
    key_hex(k, from, to);
    memcpy(op.from, from, sizeof(from));
    memcpy(op.to, to, sizeof(to));
    snprintf(dir, sizeof(dir), "%s/%.2s", c->conf->cache_dir, from);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return;
    op.size = (int64_t)len;
    op.diff_ms = (int64_t)diff_ms;
    op.now = (int64_t)rd_now_ms(c->h);
    pthread_mutex_lock(&c->lock);
    if (write_atomic(dir, path, data, len) == RD_OK) {
        if (rd_store_write(c->h, idx_put_tx, &op) == RD_OK) {
            total_sub_locked(c, (uint64_t)op.old_size);
            c->total_bytes += len;
            evict_locked(c);
        } else {
            unlink(path);
        }
    }
    rd_metric_set(c->m_bytes, (double)c->total_bytes);
    pthread_mutex_unlock(&c->lock);
}

static int op_get(void *arg, const struct partial_cache_key *k, uint8_t **data, size_t *len)
{
    struct partials_cache_use *use = arg;
    struct partials_cache *c = use->c;
    struct idx_op op = {.c = c, .format = k->format};
    char path[PATH_MAX];
    int rc;

    key_hex(k, op.from, op.to);
    if (entry_path(c, k, path, sizeof(path)) != RD_OK)
        return RD_EINVAL;
    rc = rd_store_read(c->h, idx_get_tx, &op);
    if (rc == RD_OK && op.found) {
        rc = partial_read_file(path, data, len, NULL);
        if (rc == RD_OK) {
            op.now = (int64_t)rd_now_ms(c->h);
            rd_store_write(c->h, idx_touch_tx, &op);
            atomic_fetch_add(&use->ms_saved, (uint64_t)op.diff_ms);
            return RD_OK;
        }
        /* the index names a file that is gone: forget it */
        pthread_mutex_lock(&c->lock);
        if (rd_store_write(c->h, idx_delete_tx, &op) == RD_OK && op.found)
            total_sub_locked(c, (uint64_t)op.size);
        pthread_mutex_unlock(&c->lock);
    }
    if (c->conf->remote_cache && *c->conf->remote_cache) {
        if (remote_call(c, k, false, NULL, 0, data, len) == 200) {
            atomic_fetch_add(&use->remote_hits, 1);
            rd_metric_add(c->m_remote_hits, 1);
            store_local(c, k, *data, *len, 0);
            return RD_OK;
        }
    }
    return RD_ENOTFOUND;
}

static void op_put(void *arg, const struct partial_cache_key *k, const uint8_t *data, size_t len,
                   uint64_t diff_ms)
{
    struct partials_cache_use *use = arg;
    struct partials_cache *c = use->c;
    long status;

    store_local(c, k, data, len, diff_ms);
    if (c->conf->remote_cache && *c->conf->remote_cache) {
        status = remote_call(c, k, true, data, len, NULL, NULL);
        if (status < 200 || status > 299)
            rd_log(c->h, RD_WARN, "remote cache PUT failed status=%ld", status);
    }
}

static void op_drop(void *arg, const struct partial_cache_key *k)
{
    struct partials_cache_use *use = arg;
    struct partials_cache *c = use->c;
    struct idx_op op = {.c = c, .format = k->format};
    char path[PATH_MAX];

    key_hex(k, op.from, op.to);
    rd_log(c->h, RD_WARN, "cache entry %.12s-%.12s.%s does not reproduce its file: regenerated",
           op.from, op.to, k->format);
    if (entry_path(c, k, path, sizeof(path)) != RD_OK)
        return;
    pthread_mutex_lock(&c->lock);
    if (rd_store_write(c->h, idx_delete_tx, &op) == RD_OK && op.found) {
        total_sub_locked(c, (uint64_t)op.size);
        /* the hit was not one: take back what get counted */
        atomic_fetch_sub(&use->ms_saved, (uint64_t)op.diff_ms < atomic_load(&use->ms_saved)
                                             ? (uint64_t)op.diff_ms
                                             : atomic_load(&use->ms_saved));
    }
    unlink(path);
    pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------- digest memo */

struct memo_op {
    char stored[65], content[65];
    int64_t size, now;
    bool found;
};

static int memo_get_tx(struct rd_tx *tx, void *arg)
{
    struct memo_op *m = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT content_sha, size FROM partials_digests WHERE stored_sha = ?1",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, m->stored, -1, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        m->found = c && partials_sha_hex_ok(c);
        if (m->found)
            memcpy(m->content, c, 65);
        m->size = sqlite3_column_int64(st, 1);
        rc = RD_OK;
    } else if (step == SQLITE_DONE) {
        rc = RD_OK;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static int memo_put_tx(struct rd_tx *tx, void *arg)
{
    struct memo_op *m = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "INSERT OR REPLACE INTO partials_digests (stored_sha, content_sha, size,"
                           " used_ms) VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, m->stored, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(st, 2, m->content, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 3, m->size) == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, m->now) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = RD_OK;
    sqlite3_finalize(st);
    return rc;
}

static int hex_to_bytes(const char *hex, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return RD_EINVAL;
        out[i] = (uint8_t)v;
    }
    return RD_OK;
}

static int op_digest_get(void *arg, const uint8_t stored[32], uint8_t content[32], uint64_t *size)
{
    struct partials_cache_use *use = arg;
    struct memo_op m = {0};

    hash_hex(stored, 32, m.stored);
    if (rd_store_read(use->c->h, memo_get_tx, &m) != RD_OK || !m.found ||
        hex_to_bytes(m.content, content) != RD_OK)
        return RD_ENOTFOUND;
    *size = (uint64_t)m.size;
    return RD_OK;
}

static void op_digest_put(void *arg, const uint8_t stored[32], const uint8_t content[32],
                          uint64_t size)
{
    struct partials_cache_use *use = arg;
    struct memo_op m = {.size = (int64_t)size};

    /* only files that can use the cache are worth remembering */
    if (size < use->c->conf->cache_min_size)
        return;
    hash_hex(stored, 32, m.stored);
    hash_hex(content, 32, m.content);
    m.now = (int64_t)rd_now_ms(use->c->h);
    if (rd_store_write(use->c->h, memo_put_tx, &m) != RD_OK)
        rd_log(use->c->h, RD_WARN, "storing a digest in the memo failed");
}

void partials_cache_ops(struct partials_cache_use *use, struct partial_cache_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->arg = use;
    ops->min_size = use->c->conf->cache_min_size;
    ops->get = op_get;
    ops->put = op_put;
    ops->drop = op_drop;
    ops->digest_get = op_digest_get;
    ops->digest_put = op_digest_put;
}

/* ---------------------------------------------------------- life cycle */

/* Removes ".tmp-*" files in dir (one level). */
static void discard_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];

    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, ".tmp-", 5) != 0)
            continue;
        if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) < (int)sizeof(p))
            unlink(p);
    }
    if (d)
        closedir(d);
}

int partials_cache_new(struct rd_host *h, const struct partials_conf *conf,
                       struct partials_cache **out)
{
    struct partials_cache *c = calloc(1, sizeof(*c));
    struct idx_op op = {0};
    DIR *d;
    struct dirent *e;
    int rc;

    *out = NULL;
    if (!c)
        return RD_ENOMEM;
    c->h = h;
    c->conf = conf;
    pthread_mutex_init(&c->lock, NULL);
    if (mkdir(conf->cache_dir, 0755) != 0 && errno != EEXIST) {
        rd_log(h, RD_ERROR, "cannot create cache_dir %s: %s", conf->cache_dir, strerror(errno));
        rc = RD_EIO;
        goto out;
    }
    d = opendir(conf->cache_dir);
    while (d && (e = readdir(d))) {
        char p[PATH_MAX];
        if (strlen(e->d_name) != 2 ||
            snprintf(p, sizeof(p), "%s/%s", conf->cache_dir, e->d_name) >= (int)sizeof(p))
            continue;
        discard_tmp(p);
    }
    if (d)
        closedir(d);
    rc = rd_store_read(h, sum_tx, &op);
    if (rc != RD_OK)
        goto out;
    c->total_bytes = (uint64_t)op.size;
#define M(field, kind, name, help)                                                                 \
    if (!(c->field = rd_metric(h, kind, name, help, NULL))) {                                      \
        rc = RD_ENOMEM;                                                                            \
        goto out;                                                                                  \
    }
    M(m_hits, RD_COUNTER, "cache_hits", "diff cache hits (local or remote)");
    M(m_misses, RD_COUNTER, "cache_misses", "diff cache misses (the file was diffed)");
    M(m_bypass, RD_COUNTER, "cache_bypassed", "diffs of files below cache_min_size");
    M(m_corrupt, RD_COUNTER, "cache_corrupt", "cache entries that did not reproduce their file");
    M(m_evictions, RD_COUNTER, "cache_evictions", "entries evicted (least recently used)");
    M(m_bytes_saved, RD_COUNTER, "cache_bytes_saved", "compressed patch bytes served from cache");
    M(m_seconds_saved, RD_COUNTER, "cache_seconds_saved", "diff time the cache hits saved");
    M(m_remote_hits, RD_COUNTER, "cache_remote_hits", "hits served by the remote cache");
    M(m_bytes, RD_GAUGE, "cache_bytes", "bytes of patches in the local cache");
#undef M
    rd_metric_set(c->m_bytes, (double)c->total_bytes);
    *out = c;
    c = NULL;
out:
    partials_cache_free(c);
    return rc;
}

void partials_cache_free(struct partials_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

json_t *partials_cache_status(struct partials_cache *c)
{
    struct idx_op op = {.c = c};
    const char *remote = NULL;

    if (rd_store_read(c->h, sum_tx, &op) != RD_OK)
        return json_pack("{s:n}", "entries");
    if (c->conf->remote_cache && *c->conf->remote_cache)
        remote = c->conf->remote_kind;
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "entries", (json_int_t)op.diff_ms,
        "bytes", (json_int_t)op.size, "max_bytes", (json_int_t)c->conf->cache_max_bytes, "min_size",
        (json_int_t)c->conf->cache_min_size, "hits", (json_int_t)atomic_load(&c->hits), "misses",
        (json_int_t)atomic_load(&c->misses), "bypassed", (json_int_t)atomic_load(&c->bypassed),
        "corrupt", (json_int_t)atomic_load(&c->corrupt), "evictions",
        (json_int_t)atomic_load(&c->evictions), "remote", remote);
}

void partials_cache_count(struct partials_cache *c, const struct partial_stats *st,
                          uint64_t ms_saved)
{
    atomic_fetch_add(&c->hits, st->cache_hits);
    atomic_fetch_add(&c->misses, st->cache_misses);
    atomic_fetch_add(&c->bypassed, st->cache_bypass);
    atomic_fetch_add(&c->corrupt, st->cache_corrupt);
    rd_metric_add(c->m_hits, (double)st->cache_hits);
    rd_metric_add(c->m_misses, (double)st->cache_misses);
    rd_metric_add(c->m_bypass, (double)st->cache_bypass);
    rd_metric_add(c->m_corrupt, (double)st->cache_corrupt);
    rd_metric_add(c->m_bytes_saved, (double)st->bytes_from_cache);
    rd_metric_add(c->m_seconds_saved, (double)ms_saved / 1000.0);
}
