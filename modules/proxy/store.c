/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/store.c -- the durable copy of the cache index in the
 * module's SQLite tables (proxy_objects, proxy_totals): migrations, loading
 * and reconciling with the disk at start (start, main thread), and an
 * ordered write queue. The loop thread never waits for SQLite: it queues
 * row changes (any thread may), and one rd_submit work item at a time
 * writes everything queued in one transaction on a pool thread, so a row's
 * insert and a later delete can never be reordered.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modules/proxy/proxy.h"

static const char *const proxy_migrations[] = {
    "CREATE TABLE proxy_objects ("
    " key TEXT PRIMARY KEY,"
    " backend TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " headers TEXT NOT NULL,"
    " etag TEXT,"
    " last_modified TEXT,"
    " stored_ms INTEGER NOT NULL,"
    " initial_age_ms INTEGER NOT NULL,"
    " lifetime_ms INTEGER NOT NULL,"
    " last_access_ms INTEGER NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE proxy_totals ("
    " backend TEXT PRIMARY KEY,"
    " requests INTEGER NOT NULL, hits INTEGER NOT NULL, misses INTEGER NOT NULL,"
    " coalesced INTEGER NOT NULL, stale INTEGER NOT NULL, revalidated INTEGER NOT NULL,"
    " errors INTEGER NOT NULL, uncacheable INTEGER NOT NULL, bytes_served INTEGER NOT NULL,"
    " bytes_hit INTEGER NOT NULL, bytes_upstream INTEGER NOT NULL, fetches INTEGER NOT NULL)",
    NULL,
};

int proxy_store_migrate(struct proxy *p)
{
    struct rd_error err = {0};
    int rc = rd_store_migrate(p->h, proxy_migrations, &err);

    if (rc != RD_OK)
        rd_log(p->h, RD_ERROR, "migration: %s", err.msg);
    return rc;
}

/* ------------------------------------------------------------ the queue */

enum stq_kind { STQ_UPSERT, STQ_DELETE, STQ_TOUCH, STQ_TOTALS };

struct stq_op {
    enum stq_kind kind;
    char *key;
    char *backend, *name, *sha256, *headers, *etag, *last_modified;
    int64_t size, status, stored_ms, initial_age_ms, lifetime_ms, last_access_ms, hits;
    struct proxy_counts *totals; /* STQ_TOTALS: one per backend, n_backends */
    struct stq_op *next;
};

struct proxy_stq {
    pthread_mutex_t lock;
    struct stq_op *head, *tail;
    struct stq_op *batch; /* being written by the work item */
    bool running;         /* loop thread */
};

static void op_free(struct stq_op *op)
{
    while (op) {
        struct stq_op *next = op->next;
        free(op->key);
        free(op->backend);
        free(op->name);
        free(op->sha256);
        free(op->headers);
        free(op->etag);
        free(op->last_modified);
        free(op->totals);
        free(op);
        op = next;
    }
}

int proxy_stq_new(struct proxy *p)
{
    p->stq = calloc(1, sizeof(*p->stq));
    if (!p->stq)
        return RD_ENOMEM;
    pthread_mutex_init(&p->stq->lock, NULL);
    return RD_OK;
}

static void stq_push(struct proxy *p, struct stq_op *op)
{
    struct proxy_stq *q = p->stq;

    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    pthread_mutex_unlock(&q->lock);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int proxy_stq_upsert(struct proxy *p, const struct proxy_entry *e)
{
    struct stq_op *op = calloc(1, sizeof(*op));

    if (!op)
        return RD_ENOMEM;
    op->kind = STQ_UPSERT;
    op->key = strdup(e->key);
    op->backend = strdup(e->be->name);
    op->name = strdup(e->name);
    op->sha256 = strdup(e->sha256);
    op->headers = strdup(e->headers ? e->headers : "");
    op->etag = dup_or_null(e->etag);
    op->last_modified = dup_or_null(e->last_modified);
    if (!op->key || !op->backend || !op->name || !op->sha256 || !op->headers ||
        (e->etag && !op->etag) || (e->last_modified && !op->last_modified)) {
        op_free(op);
        return RD_ENOMEM;
    }
    op->size = e->size;
    op->status = e->status;
    op->stored_ms = e->stored_ms;
    op->initial_age_ms = e->initial_age_ms;
    op->lifetime_ms = e->lifetime_ms;
    op->last_access_ms = e->last_access_ms;
    op->hits = e->hits;
    stq_push(p, op);
    return RD_OK;
}

/* Queues a delete or touch of key (touch: with last_access_ms and hits). */
static int stq_key_op(struct proxy *p, enum stq_kind kind, const char *key, int64_t last_access_ms,
                      int64_t hits)
{
    struct stq_op *op = calloc(1, sizeof(*op));

    if (!op || !(op->key = strdup(key))) {
        free(op);
        return RD_ENOMEM;
    }
    op->kind = kind;
    op->last_access_ms = last_access_ms;
    op->hits = hits;
    stq_push(p, op);
    return RD_OK;
}

int proxy_stq_delete(struct proxy *p, const char *key)
{
    return stq_key_op(p, STQ_DELETE, key, 0, 0);
}

int proxy_stq_touch(struct proxy *p, const char *key, int64_t last_access_ms, int64_t hits)
{
    return stq_key_op(p, STQ_TOUCH, key, last_access_ms, hits);
}

int proxy_stq_totals(struct proxy *p)
{
    struct stq_op *op = calloc(1, sizeof(*op));

    if (!op || !(op->totals = calloc(p->n_backends ? p->n_backends : 1, sizeof(*op->totals)))) {
        free(op);
        return RD_ENOMEM;
    }
    op->kind = STQ_TOTALS;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_backends; i++)
        op->totals[i] = p->backends[i].c;
    pthread_mutex_unlock(&p->lock);
    stq_push(p, op);
    return RD_OK;
}

struct stq_job {
    struct proxy *p;
    struct stq_op *ops;
};

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int stq_write_tx(struct rd_tx *tx, void *arg)
{
    struct stq_job *job = arg;
    struct proxy *p = job->p;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *up = NULL, *del = NULL, *touch = NULL, *tot = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO proxy_objects (key, backend, name, size, sha256,"
                           " status, headers, etag, last_modified, stored_ms, initial_age_ms,"
                           " lifetime_ms, last_access_ms, hits) VALUES"
                           " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
                           -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM proxy_objects WHERE key = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE proxy_objects SET last_access_ms = ?2, hits = ?3 WHERE key = ?1",
                           -1, &touch, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO proxy_totals (backend, requests, hits, misses,"
                           " coalesced, stale, revalidated, errors, uncacheable, bytes_served,"
                           " bytes_hit, bytes_upstream, fetches) VALUES"
                           " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                           -1, &tot, NULL) != SQLITE_OK)
        goto sql_error;
    for (struct stq_op *op = job->ops; op; op = op->next) {
        sqlite3_stmt *st = NULL;
        switch (op->kind) {
        case STQ_UPSERT:
            st = up;
            bind_text(st, 1, op->key);
            bind_text(st, 2, op->backend);
            bind_text(st, 3, op->name);
            sqlite3_bind_int64(st, 4, op->size);
            bind_text(st, 5, op->sha256);
            sqlite3_bind_int64(st, 6, op->status);
            bind_text(st, 7, op->headers);
            bind_text(st, 8, op->etag);
            bind_text(st, 9, op->last_modified);
            sqlite3_bind_int64(st, 10, op->stored_ms);
            sqlite3_bind_int64(st, 11, op->initial_age_ms);
            sqlite3_bind_int64(st, 12, op->lifetime_ms);
            sqlite3_bind_int64(st, 13, op->last_access_ms);
            sqlite3_bind_int64(st, 14, op->hits);
            break;
        case STQ_DELETE:
            st = del;
            bind_text(st, 1, op->key);
            break;
        case STQ_TOUCH:
            st = touch;
            bind_text(st, 1, op->key);
            sqlite3_bind_int64(st, 2, op->last_access_ms);
            sqlite3_bind_int64(st, 3, op->hits);
            break;
        case STQ_TOTALS:
            for (size_t i = 0; i < p->n_backends; i++) {
                const struct proxy_counts *c = &op->totals[i];
                sqlite3_reset(tot);
                bind_text(tot, 1, p->backends[i].name);
                sqlite3_bind_int64(tot, 2, (int64_t)c->requests);
                sqlite3_bind_int64(tot, 3, (int64_t)c->hits);
                sqlite3_bind_int64(tot, 4, (int64_t)c->misses);
                sqlite3_bind_int64(tot, 5, (int64_t)c->coalesced);
                sqlite3_bind_int64(tot, 6, (int64_t)c->stale);
                sqlite3_bind_int64(tot, 7, (int64_t)c->revalidated);
                sqlite3_bind_int64(tot, 8, (int64_t)c->errors);
                sqlite3_bind_int64(tot, 9, (int64_t)c->uncacheable);
                sqlite3_bind_int64(tot, 10, (int64_t)c->bytes_served);
                sqlite3_bind_int64(tot, 11, (int64_t)c->bytes_hit);
                sqlite3_bind_int64(tot, 12, (int64_t)c->bytes_upstream);
                sqlite3_bind_int64(tot, 13, (int64_t)c->fetches);
                if (sqlite3_step(tot) != SQLITE_DONE)
                    goto sql_error;
            }
            continue;
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sql_error;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    rc = RD_OK;
    goto out;
sql_error:
    rd_log(p->h, RD_ERROR, "writing the cache index failed: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    sqlite3_finalize(touch);
    sqlite3_finalize(tot);
    return rc;
}

static void stq_work(void *arg)
{
    struct proxy *p = arg;
    struct stq_job job = {.p = p, .ops = p->stq->batch};

    /* A failed write loses only bookkeeping: the start-up reconciliation
       drops rows without files and files without rows. */
    rd_store_write(p->h, stq_write_tx, &job);
}

static void stq_done(void *arg)
{
    struct proxy *p = arg;
    struct proxy_stq *q = p->stq;

    op_free(q->batch);
    q->batch = NULL;
    q->running = false;
    if (q->head && !p->stopping)
        proxy_stq_kick(p);
}

void proxy_stq_kick(struct proxy *p)
{
    struct proxy_stq *q = p->stq;

    if (!q || q->running)
        return;
    pthread_mutex_lock(&q->lock);
    q->batch = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    if (!q->batch)
        return;
    q->running = true;
    if (rd_submit(p->h, stq_work, stq_done, p) != RD_OK) {
        /* Put the batch back in front: the next kick tries again. */
        pthread_mutex_lock(&q->lock);
        struct stq_op *last = q->batch;
        while (last->next)
            last = last->next;
        last->next = q->head;
        q->head = q->batch;
        if (!q->tail)
            q->tail = last;
        pthread_mutex_unlock(&q->lock);
        q->batch = NULL;
        q->running = false;
    }
}

bool proxy_stq_idle(struct proxy *p)
{
    bool idle;

    pthread_mutex_lock(&p->stq->lock);
    idle = !p->stq->running && !p->stq->head;
    pthread_mutex_unlock(&p->stq->lock);
    return idle;
}

void proxy_stq_free(struct proxy *p)
{
    struct proxy_stq *q = p->stq;

    if (!q)
        return;
    /* What is still queued is written now, synchronously: destroy is the
       last chance and no loop is running any more. */
    if (q->head && !q->running) {
        struct stq_job job = {.p = p, .ops = q->head};
        rd_store_write(p->h, stq_write_tx, &job);
    }
    op_free(q->head);
    op_free(q->batch);
    pthread_mutex_destroy(&q->lock);
    free(q);
    p->stq = NULL;
}

/* --------------------------------------------------------------- load */

struct load_ctx {
    struct proxy *p;
    char **drop; /* keys whose rows go */
    size_t n_drop, cap_drop;
    char **names; /* file names kept, sorted later */
    size_t n_names, cap_names;
    int rc;
};

static int push_str(char ***arr, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **a = realloc(*arr, nc * sizeof(*a));
        if (!a)
            return RD_ENOMEM;
        *arr = a;
        *cap = nc;
    }
    (*arr)[*n] = strdup(s);
    if (!(*arr)[*n])
        return RD_ENOMEM;
    (*n)++;
    return RD_OK;
}

static struct proxy_backend *backend_named(struct proxy *p, const char *name)
{
    for (size_t i = 0; i < p->n_backends; i++)
        if (strcmp(p->backends[i].name, name) == 0)
            return &p->backends[i];
    return NULL;
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int load_rows_tx(struct rd_tx *tx, void *arg)
{
    struct load_ctx *lc = arg;
    struct proxy *p = lc->p;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int step, rc = RD_EIO;

    if (sqlite3_prepare_v2(db,
                           "SELECT key, backend, name, size, sha256, status, headers, etag,"
                           " last_modified, stored_ms, initial_age_ms, lifetime_ms,"
                           " last_access_ms, hits FROM proxy_objects ORDER BY last_access_ms",
                           -1, &st, NULL) != SQLITE_OK)
        goto sql_error;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = col(st, 0), *backend = col(st, 1), *name = col(st, 2);
        struct proxy_backend *be = backend ? backend_named(p, backend) : NULL;
        struct proxy_entry *e = NULL;
        struct stat sb;
        char path[4300];

        if (!key)
            continue;
        e = be && name ? proxy_entry_new(key) : NULL;
        if (e && strcmp(e->name, name) == 0) {
            e->be = be;
            e->size = sqlite3_column_int64(st, 3);
            snprintf(e->sha256, sizeof(e->sha256), "%s", col(st, 4) ? col(st, 4) : "");
            e->status = sqlite3_column_int(st, 5);
            e->headers = strdup(col(st, 6) ? col(st, 6) : "");
            e->etag = col(st, 7) ? strdup(col(st, 7)) : NULL;
            e->last_modified = col(st, 8) ? strdup(col(st, 8)) : NULL;
            e->stored_ms = sqlite3_column_int64(st, 9);
            e->initial_age_ms = sqlite3_column_int64(st, 10);
            e->lifetime_ms = sqlite3_column_int64(st, 11);
            e->last_access_ms = sqlite3_column_int64(st, 12);
            e->hits = sqlite3_column_int64(st, 13);
            proxy_entry_path(p, e, path, sizeof(path));
        }
        /* The row counts only if its file is there with its size: a file
           is renamed into place complete, so anything else is damage. */
        if (!e || !e->headers || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            sb.st_size != e->size) {
            if (e)
                rd_log(p->h, RD_WARN, "dropping cache row %s: %s", key,
                       be ? "its file is missing or has the wrong size"
                          : "its backend is not configured");
            proxy_entry_unref(e);
            if (push_str(&lc->drop, &lc->n_drop, &lc->cap_drop, key) != RD_OK) {
                rc = RD_ENOMEM;
                goto out;
            }
            continue;
        }
        if (push_str(&lc->names, &lc->n_names, &lc->cap_names, e->name) != RD_OK) {
            proxy_entry_unref(e);
            rc = RD_ENOMEM;
            goto out;
        }
        pthread_mutex_lock(&p->lock);
        struct proxy_entry *old = proxy_index_put(p, e); /* oldest first: LRU order */
        pthread_mutex_unlock(&p->lock);
        proxy_entry_unref(old);
    }
    if (step != SQLITE_DONE)
        goto sql_error;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT backend, requests, hits, misses, coalesced, stale, revalidated,"
                           " errors, uncacheable, bytes_served, bytes_hit, bytes_upstream, fetches"
                           " FROM proxy_totals",
                           -1, &st, NULL) != SQLITE_OK)
        goto sql_error;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct proxy_backend *be = col(st, 0) ? backend_named(p, col(st, 0)) : NULL;
        struct proxy_counts *c;
        if (!be)
            continue;
        c = &be->c;
        c->requests = (uint64_t)sqlite3_column_int64(st, 1);
        c->hits = (uint64_t)sqlite3_column_int64(st, 2);
        c->misses = (uint64_t)sqlite3_column_int64(st, 3);
        c->coalesced = (uint64_t)sqlite3_column_int64(st, 4);
        c->stale = (uint64_t)sqlite3_column_int64(st, 5);
        c->revalidated = (uint64_t)sqlite3_column_int64(st, 6);
        c->errors = (uint64_t)sqlite3_column_int64(st, 7);
        c->uncacheable = (uint64_t)sqlite3_column_int64(st, 8);
        c->bytes_served = (uint64_t)sqlite3_column_int64(st, 9);
        c->bytes_hit = (uint64_t)sqlite3_column_int64(st, 10);
        c->bytes_upstream = (uint64_t)sqlite3_column_int64(st, 11);
        c->fetches = (uint64_t)sqlite3_column_int64(st, 12);
    }
    if (step != SQLITE_DONE)
        goto sql_error;
    rc = RD_OK;
    goto out;
sql_error:
    rd_log(p->h, RD_ERROR, "reading the cache index failed: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    return rc;
}

static int drop_rows_tx(struct rd_tx *tx, void *arg)
{
    struct load_ctx *lc = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db, "DELETE FROM proxy_objects WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    for (size_t i = 0; i < lc->n_drop; i++) {
        sqlite3_bind_text(st, 1, lc->drop[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto out;
        sqlite3_reset(st);
    }
    rc = RD_OK;
out:
    if (rc != RD_OK)
        rd_log(lc->p->h, RD_ERROR, "dropping cache rows failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes every file in dir (not recursive); counts them in *n. */
static void clean_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4300];

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (unlink(path) == 0)
            (*n)++;
    }
    closedir(d);
}

static int mkdir_p1(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return RD_OK;
    return RD_EIO;
}

int proxy_store_load(struct proxy *p)
{
    struct load_ctx lc = {.p = p};
    char dir[4300], path[4600];
    size_t n_tmp = 0, n_orphans = 0;
    int rc;

    if (mkdir_p1(p->cache_dir) != RD_OK || mkdir_p1(p->tmp_dir) != RD_OK) {
        rd_log(p->h, RD_ERROR, "cannot create the cache directory %s: %s", p->cache_dir,
               strerror(errno));
        return RD_EIO;
    }
    for (int i = 0; i < 256; i++) {
        snprintf(dir, sizeof(dir), "%s/%02x", p->cache_dir, i);
        if (mkdir_p1(dir) != RD_OK) {
            rd_log(p->h, RD_ERROR, "cannot create %s: %s", dir, strerror(errno));
            return RD_EIO;
        }
    }
    /* Half-written downloads of an earlier run are never served. */
    clean_dir(p->tmp_dir, &n_tmp);
    rc = rd_store_read(p->h, load_rows_tx, &lc);
    if (rc != RD_OK)
        goto out;
    if (lc.n_drop) {
        rc = rd_store_write(p->h, drop_rows_tx, &lc);
        if (rc != RD_OK)
            goto out;
    }
    /* Files without a row (a kill between rename and the row's commit). */
    if (lc.n_names)
        qsort(lc.names, lc.n_names, sizeof(*lc.names), cmp_str);
    for (int i = 0; i < 256; i++) {
        DIR *d;
        struct dirent *de;
        snprintf(dir, sizeof(dir), "%s/%02x", p->cache_dir, i);
        d = opendir(dir);
        if (!d)
            continue;
        while ((de = readdir(d)) != NULL) {
            const char *name = de->d_name;
            if (name[0] == '.')
                continue;
            if (lc.n_names && bsearch(&name, lc.names, lc.n_names, sizeof(*lc.names), cmp_str))
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            if (unlink(path) == 0)
                n_orphans++;
        }
        closedir(d);
    }
    rd_log(p->h, RD_INFO,
           "cache index: %zu objects, %lld bytes; removed %zu temporary files, %zu files without"
           " a row, %zu rows without a file",
           p->n_entries, (long long)p->cache_bytes, n_tmp, n_orphans, lc.n_drop);
    for (size_t i = 0; i < p->n_backends; i++)
        p->backends[i].c_saved = p->backends[i].c;
out:
    for (size_t i = 0; i < lc.n_drop; i++)
        free(lc.drop[i]);
    for (size_t i = 0; i < lc.n_names; i++)
        free(lc.names[i]);
    free(lc.drop);
    free(lc.names);
    return rc;
}
