/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/sql.c -- prepare-and-bind helpers (see sql.h). Any
 * thread, on the caller's connection.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>

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

static int prepare_v(sqlite3 *db, sqlite3_stmt **st, const char *sql, const char *fmt, va_list ap)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return RD_EIO;
    if (bind_all(*st, fmt, ap) != RD_OK) {
        sqlite3_finalize(*st);
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
    sqlite3_finalize(st);
    return rc;
}

const char *dsql_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
