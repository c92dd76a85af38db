/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/sql.h -- small SQLite helpers: prepare and bind in one
 * call, from a format string. Only sqlite3 calls (no host calls); the
 * connection is the caller's, borrowed from its transaction.
 *
 * Format characters, one per parameter ?1, ?2, ...:
 *   s  const char *  (NULL binds NULL)
 *   i  int
 *   I  int64_t
 *   u  uint64_t (stored as int64)
 *   d  double
 */
#ifndef RELENGD_DISPATCH_SQL_H
#define RELENGD_DISPATCH_SQL_H

#include <sqlite3.h>

/* Prepares sql and binds the parameters. RD_OK or RD_EIO (*st NULL). */
int dsql_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, const char *fmt, ...);
/* Prepares, binds, steps to completion (rows are ignored), finalizes.
   RD_OK or RD_EIO. */
int dsql_exec(sqlite3 *db, const char *sql, const char *fmt, ...);
/* Ends a statement of dsql_prepare (or any other): a cached one is reset
   and kept, any other finalized. NULL-safe. */
void dsql_finalize(sqlite3_stmt *st);
/* Finalizes every cached statement (module destroy). */
void dsql_cache_clear(void);
/* A text column, "" for NULL (borrowed until the next step/finalize). */
const char *dsql_text(sqlite3_stmt *st, int col);

#endif
