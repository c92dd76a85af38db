/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/sql.c -- prepare-and-bind helpers (see sql.h), and the
 * cache of prepared statements. Any
 * thread, on the caller's connection.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/module.h"
#include "modules/dispatch/sql.h"

static int bind_all(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int i = 1, rc = SQLITE_OK;
    const char *s;

    for (; fmt && *fmt && rc == SQLITE_OK; fmt++, i++) {
        switch (*fmt) {
        case 's':
            s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
            break;
        case 'i':
            rc = sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 'u':
            rc = sqlite3_bind_int64(st, i, (sqlite3_int64)va_arg(ap, uint64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, i, va_arg(ap, double));
            break;
        default:
            rc = SQLITE_MISUSE;
        }
    }
    return rc == SQLITE_OK ? RD_OK : RD_EIO;
}

/* Prepared statements are kept from one transaction to the next: parsing
   the SQL again for every claim, report, log append and run lookup cost
   more than running it (a third of the daemon's CPU in
   bench/dispatch.sh). A statement belongs to its connection, and the store
   lends each connection (the writer, or one of its pooled readers) to one
   thread at a time, so a cached statement is only ever stepped by the
   thread holding its connection. An entry is lent out from dsql_prepare
   to dsql_finalize; a statement asked for again while lent (a nested use)
   is prepared afresh and finalized as before. The store closes
   connections with close_v2, so a closed connection stays valid (a
   zombie, never reused) until its cached statements are finalized by
   dsql_cache_clear in the module's destroy. */
#define CACHE_MAX 256

static struct {
    pthread_mutex_t lock;
    size_t n;
    struct {
        sqlite3 *db;
        const char *sql; /* the caller's pointer, a fast first check */
        sqlite3_stmt *st;
        bool lent;
    } e[CACHE_MAX];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

void dsql_cache_clear(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.n; i++)
        sqlite3_finalize(cache.e[i].st);
    cache.n = 0;
    pthread_mutex_unlock(&cache.lock);
}

/* A cached statement for sql on db (reset, unbound) or NULL. */
static sqlite3_stmt *cache_take(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    size_t i;

    pthread_mutex_lock(&cache.lock);
    for (i = 0; i < cache.n; i++)
        if (cache.e[i].db == db &&
            (cache.e[i].sql == sql || strcmp(sqlite3_sql(cache.e[i].st), sql) == 0))
            break;
    if (i < cache.n && !cache.e[i].lent) {
        cache.e[i].lent = true;
        st = cache.e[i].st;
    } else if (i == cache.n && cache.n < CACHE_MAX &&
               sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) == SQLITE_OK &&
               st) {
        cache.e[cache.n].db = db;
        cache.e[cache.n].sql = sql;
        cache.e[cache.n].st = st;
        cache.e[cache.n].lent = true;
        cache.n++;
    } else {
        st = NULL;
    }
    pthread_mutex_unlock(&cache.lock);
    return st;
}

/* Gives a cached statement back; false when st is not one. */
static bool cache_give(sqlite3_stmt *st)
{
    bool found = false;

    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.n && !found; i++)
        if (cache.e[i].st == st && cache.e[i].lent) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            cache.e[i].lent = false;
            found = true;
        }
    pthread_mutex_unlock(&cache.lock);
    return found;
}

void dsql_finalize(sqlite3_stmt *st)
{
    if (st && !cache_give(st))
        sqlite3_finalize(st);
}

static int prepare_v(sqlite3 *db, sqlite3_stmt **st, const char *sql, const char *fmt, va_list ap)
{
    *st = cache_take(db, sql);
    if (!*st && sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return RD_EIO;
    if (bind_all(*st, fmt, ap) != RD_OK) {
        dsql_finalize(*st);
        *st = NULL;
        return RD_EIO;
    }
    return RD_OK;
}

int dsql_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = prepare_v(db, st, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int dsql_exec(sqlite3 *db, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc, step;

    va_start(ap, fmt);
    rc = prepare_v(db, &st, sql, fmt, ap);
    va_end(ap);
    if (rc != RD_OK)
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        ;
    rc = step == SQLITE_DONE ? RD_OK : RD_EIO;
    dsql_finalize(st);
    return rc;
}

const char *dsql_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
