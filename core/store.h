/* SPDX-License-Identifier: MIT */
/*
 * core/store.h -- the one SQLite database: WAL, busy timeout, synchronous=FULL,
 * PRAGMA quick_check at open, per-owner migrations with a version table
 * (core_schema), one writer connection (writes serialised, BEGIN IMMEDIATE)
 * and a pool of reader connections, so HTTP threads, the pool and the loop
 * can all use it. Events published in a write transaction are inserted in
 * it and handed to the commit hook only after COMMIT.
 */
#ifndef RELENGD_STORE_H
#define RELENGD_STORE_H

#include "core/module.h"

struct store;

struct store_conf {
    const char *path;         /* the database file */
    uint64_t busy_timeout_ms; /* sqlite3_busy_timeout on every connection */
    bool sync_full;           /* synchronous=FULL (default) rather than NORMAL */
};

/* The transaction handed to rd_tx_fn callbacks. */
struct store_tx {
    struct rd_tx pub; /* api: the table of whoever called (host or fake) */
    sqlite3 *db;
    bool is_write;
    const char *source; /* module name, for events */
    json_t *events;     /* envelopes published so far (write only), or NULL */
    struct store *store;
};

/* Opens (creating) the database, checks it (quick_check: RD_ECORRUPT with a
   message naming the file), sets pragmas, and applies the core's own tables
   (core_schema, core_events, core_tokens, core_webhook_cursors). */
int store_open(const struct store_conf *conf, struct store **out, struct rd_error *err);
void store_close(struct store *s);

/* Brings owner's tables up to len(steps): pending steps run in one
   transaction, recorded in core_schema(owner, version). A database newer than
   steps is RD_ECONFLICT ("downgrade"). err names owner and step. */
int store_migrate(struct store *s, const char *owner, const char *const *steps,
                  struct rd_error *err);
/* owner's schema version, 0 if none. */
int store_schema_version(struct store *s, const char *owner, int *out);

/* See rd_store_read / rd_store_write. api is put in the tx handle; it may be
   NULL for core-internal callers that never use the rd_tx_* wrappers. A
   transaction started on a thread that is already inside one (of any store)
   returns RD_ECONFLICT instead of deadlocking. */
int store_read(struct store *s, const struct rd_host_api *api, rd_tx_fn fn, void *arg);
int store_write(struct store *s, const struct rd_host_api *api, const char *source, rd_tx_fn fn,
                void *arg);
/* rd_tx_publish: inserts into core_events (via bus_event_insert), keeps the
   envelope for the commit hook. Steals data. RD_EPERM in a read tx. */
int store_tx_publish(struct store_tx *tx, const char *type, json_t *data);

/* fn gets the array of envelopes committed by one transaction (borrowed),
   on the committing thread, after COMMIT. It runs with the writer lock held,
   so hooks see transactions in commit (id) order; it must be quick and must
   not use the store (a store call from it returns RD_ECONFLICT). */
void store_set_commit_hook(struct store *s, void (*fn)(void *arg, const json_t *events), void *arg);

/* A quick write probe for /readyz: RD_OK when a write transaction commits. */
int store_ping(struct store *s);

/* A SQLite result code as an enum rd_err (BUSY -> RD_EUNAVAIL, CORRUPT and
   NOTADB -> RD_ECORRUPT, CONSTRAINT -> RD_ECONFLICT, ...). Pure. */
int store_sqlite_err(int sqlite_rc);

#endif
