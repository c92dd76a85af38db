/* SPDX-License-Identifier: MIT */
/*
 * core/store.c -- the one SQLite database of the daemon. One writer
 * connection behind a mutex (every write is BEGIN IMMEDIATE .. COMMIT, so
 * writes are serialised and never fail with SQLITE_BUSY half-way) and a pool
 * of read-only connections that grows on demand up to STORE_MAX_READERS, then
 * makes callers wait; in WAL mode readers see a snapshot and never block the
 * writer. Connections are opened without SQLite's own mutex: each one is used
 * by one thread at a time, under our locks. A thread-local flag detects a
 * transaction started from inside another one (which would otherwise
 * deadlock on the writer mutex or read a different snapshot) and refuses it.
 * Migrations are per owner ("core", "proxy", ...) and recorded in
 * core_schema. Events published in a write transaction are rows of
 * core_events written with it; their envelopes go to the commit hook only
 * after COMMIT. Every function may be called from any thread.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/bus.h"
#include "core/log.h"
#include "core/store.h"

#define STORE_MAX_READERS 16

struct store {
    char *path;
    int busy_timeout_ms;
    bool sync_full;

    /* The writer: write_lock is held for a whole write transaction and
       while the commit hook runs, so hooks see commits in commit order. */
    pthread_mutex_t write_lock;
    sqlite3 *writer;
    void (*hook)(void *arg, const json_t *events);
    void *hook_arg;

    /* Idle read connections; n_readers counts idle and lent ones. */
    pthread_mutex_t read_lock;
    pthread_cond_t read_cond;
    sqlite3 *idle[STORE_MAX_READERS];
    size_t n_idle;
    size_t n_readers;
};

/* Set while this thread is inside a transaction of any store (and while a
   commit hook runs): a nested store call returns RD_ECONFLICT instead of
   deadlocking on write_lock or waiting for a reader it holds itself. */
static _Thread_local bool store_in_tx;

/* The core's own tables: step i brings owner "core" from version i to i+1.
   core_schema itself is created by store_migrate before any step runs. */
static const char *const store_core_steps[] = {
    "CREATE TABLE core_events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " type TEXT NOT NULL, source TEXT NOT NULL, time_ms INTEGER NOT NULL,"
    " data TEXT NOT NULL);"
    "CREATE INDEX core_events_time ON core_events(time_ms);"
    "CREATE TABLE core_tokens(id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE, scopes TEXT NOT NULL, created_ms INTEGER,"
    " expires_ms INTEGER, revoked_ms INTEGER, last_used_ms INTEGER);"
    "CREATE TABLE core_webhook_cursors(name TEXT PRIMARY KEY,"
    " last_id INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT);",
    NULL,
};

int store_sqlite_err(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return RD_OK;
    case SQLITE_NOMEM:
        return RD_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return RD_EUNAVAIL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return RD_ECORRUPT;
    case SQLITE_CONSTRAINT:
        return RD_ECONFLICT;
    case SQLITE_TOOBIG:
        return RD_ETOOBIG;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
        return RD_EPERM;
    default:
        return RD_EIO;
    }
}

static uint64_t store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Closes db, naming any statement a caller forgot to finalize (close_v2
   then keeps the connection as a zombie until it is). NULL-safe. */
static void store_db_close(sqlite3 *db)
{
    sqlite3_stmt *st;

    if (!db)
        return;
    for (st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st))
        log_msg("core", RD_WARN, "store: statement never finalized: %s", sqlite3_sql(st));
    sqlite3_close_v2(db);
}

/* Ends whatever transaction is open on db; used after a failed callback or
   commit. Returns false when the connection is still inside a transaction. */
static bool store_rollback(sqlite3 *db)
{
    int src;

    if (sqlite3_get_autocommit(db))
        return true;
    src = sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        log_msg("core", RD_ERROR, "store: ROLLBACK failed: %s", sqlite3_errmsg(db));
    return sqlite3_get_autocommit(db) != 0;
}

/* Runs a pragma that returns one text row into buf (may be NULL). */
static int store_pragma_text(sqlite3 *db, const char *sql, char *buf, size_t len, int *src_out)
{
    sqlite3_stmt *st = NULL;
    int src;
    int rc = RD_OK;

    src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (buf && len > 0)
            snprintf(buf, len, "%s", text ? text : "");
        src = SQLITE_OK;
    } else if (src == SQLITE_DONE) {
        if (buf && len > 0)
            buf[0] = '\0';
        src = SQLITE_OK;
    }
    if (src != SQLITE_OK)
        rc = store_sqlite_err(src);
    *src_out = src;
    sqlite3_finalize(st);
    return rc;
}

/* PRAGMA quick_check: refuses a damaged file, or one that is not a database,
   with a message naming the file and the first problem. */
static int store_check(const struct store *s, sqlite3 *db, struct rd_error *err)
{
    char first[200];
    int src;
    int rc;

    rc = store_pragma_text(db, "PRAGMA quick_check", first, sizeof(first), &src);
    if (rc == RD_OK) {
        char *problem = first;
        char *eol;

        if (strcmp(first, "ok") == 0)
            return RD_OK;
        /* The row lists problems one per line after a "*** in database
           main ***" heading: keep the first problem only. */
        if (strncmp(problem, "*** ", 4) == 0 && (eol = strchr(problem, '\n')))
            problem = eol + 1;
        problem[strcspn(problem, "\r\n")] = '\0';
        return rd_error_set(err, RD_ECORRUPT,
                            "database %s is corrupt: %.100s; restore it from a backup or move it "
                            "aside",
                            s->path, problem[0] ? problem : "quick_check failed");
    }
    if ((src & 0xff) == SQLITE_NOTADB)
        return rd_error_set(err, RD_ECORRUPT,
                            "database %s is not an SQLite database (%s); restore it from a backup "
                            "or move it aside",
                            s->path, sqlite3_errmsg(db));
    if ((src & 0xff) == SQLITE_CORRUPT)
        return rd_error_set(err, RD_ECORRUPT,
                            "database %s is corrupt: %s; restore it from a backup or move it aside",
                            s->path, sqlite3_errmsg(db));
    return rd_error_set(err, rc == RD_EUNAVAIL ? RD_EUNAVAIL : RD_EIO,
                        "cannot check database %s: %s", s->path, sqlite3_errmsg(db));
}

/* Opens one connection. The writer creates the file, is checked and sets the
   database to WAL; readers are read-only and only get the timeout. */
static int store_conn_open(const struct store *s, bool is_writer, sqlite3 **out,
                           struct rd_error *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_NOMUTEX;
    char mode[32];
    char sql[64];
    int src;
    int rc = RD_OK;

    flags |= is_writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    src = sqlite3_open_v2(s->path, &db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = rd_error_set(err, src == SQLITE_NOMEM ? RD_ENOMEM : RD_EIO,
                          "cannot open database %s: %s", s->path,
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, s->busy_timeout_ms);
    if (!is_writer)
        goto out;

    rc = store_check(s, db, err);
    if (rc != RD_OK)
        goto out;
    rc = store_pragma_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode), &src);
    if (rc == RD_OK && strcasecmp(mode, "wal") != 0)
        rc = RD_EIO;
    if (rc != RD_OK) {
        rc = rd_error_set(err, rc, "cannot put database %s in WAL mode: %s", s->path,
                          src != SQLITE_OK ? sqlite3_errmsg(db) : mode);
        goto out;
    }
    snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s; PRAGMA foreign_keys=ON",
             s->sync_full ? "FULL" : "NORMAL");
    src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = rd_error_set(err, store_sqlite_err(src), "cannot set pragmas on %s: %s", s->path,
                          sqlite3_errmsg(db));
        goto out;
    }
out:
    if (rc != RD_OK) {
        store_db_close(db);
        db = NULL;
    }
    *out = db;
    return rc;
}

/* Lends a read connection: an idle one, a new one while under the cap, or
   the next one returned. */
static int store_reader_get(struct store *s, sqlite3 **out)
{
    struct rd_error err = {0};
    sqlite3 *db = NULL;
    int rc;

    pthread_mutex_lock(&s->read_lock);
    while (s->n_idle == 0 && s->n_readers >= STORE_MAX_READERS)
        pthread_cond_wait(&s->read_cond, &s->read_lock);
    if (s->n_idle > 0) {
        *out = s->idle[--s->n_idle];
        pthread_mutex_unlock(&s->read_lock);
        return RD_OK;
    }
    s->n_readers++;
    pthread_mutex_unlock(&s->read_lock);

    /* Opening takes file-system time: not under the lock. */
    rc = store_conn_open(s, false, &db, &err);
    if (rc != RD_OK) {
        log_msg("core", RD_ERROR, "store: %s", err.msg);
        pthread_mutex_lock(&s->read_lock);
        s->n_readers--;
        pthread_cond_signal(&s->read_cond);
        pthread_mutex_unlock(&s->read_lock);
        return rc;
    }
    *out = db;
    return RD_OK;
}

/* Takes a lent connection back; one still inside a transaction (a callback
   that ran BEGIN itself and failed to end it) is closed rather than reused. */
static void store_reader_put(struct store *s, sqlite3 *db)
{
    bool is_clean = store_rollback(db);

    pthread_mutex_lock(&s->read_lock);
    if (is_clean) {
        s->idle[s->n_idle++] = db;
        db = NULL;
    } else {
        s->n_readers--;
    }
    pthread_cond_signal(&s->read_cond);
    pthread_mutex_unlock(&s->read_lock);
    store_db_close(db);
}

int store_read(struct store *s, const struct rd_host_api *api, rd_tx_fn fn, void *arg)
{
    struct store_tx tx;
    sqlite3 *db = NULL;
    int src;
    int rc;

    if (!s || !fn)
        return RD_EINVAL;
    if (store_in_tx)
        return RD_ECONFLICT;
    rc = store_reader_get(s, &db);
    if (rc != RD_OK)
        return rc;
    store_in_tx = true;

    /* Deferred: the snapshot starts at the first read and lasts until COMMIT. */
    src = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        log_msg("core", RD_ERROR, "store: BEGIN failed on %s: %s", s->path, sqlite3_errmsg(db));
        rc = store_sqlite_err(src);
        goto out;
    }
    memset(&tx, 0, sizeof(tx));
    tx.pub.api = api;
    tx.db = db;
    tx.is_write = false;
    tx.store = s;
    rc = fn(&tx.pub, arg);
    json_decref(tx.events);
    /* Nothing to keep in a read: COMMIT just ends the snapshot. */
    if (rc == RD_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        log_msg("core", RD_WARN, "store: ending a read on %s: %s", s->path, sqlite3_errmsg(db));
out:
    store_in_tx = false;
    store_reader_put(s, db);
    return rc;
}

int store_write(struct store *s, const struct rd_host_api *api, const char *source, rd_tx_fn fn,
                void *arg)
{
    struct store_tx tx;
    int src;
    int rc;

    if (!s || !fn)
        return RD_EINVAL;
    if (store_in_tx)
        return RD_ECONFLICT;
    memset(&tx, 0, sizeof(tx));
    tx.pub.api = api;
    tx.db = s->writer;
    tx.is_write = true;
    tx.source = source ? source : "core";
    tx.store = s;

    pthread_mutex_lock(&s->write_lock);
    store_in_tx = true;
    src = sqlite3_exec(s->writer, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        log_msg("core", RD_ERROR, "store: BEGIN IMMEDIATE failed on %s: %s", s->path,
                sqlite3_errmsg(s->writer));
        rc = store_sqlite_err(src);
        goto out;
    }
    rc = fn(&tx.pub, arg);
    if (rc != RD_OK) {
        store_rollback(s->writer);
        goto out;
    }
    src = sqlite3_exec(s->writer, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        log_msg("core", RD_WARN, "store: COMMIT failed on %s (source %s): %s", s->path, tx.source,
                sqlite3_errmsg(s->writer));
        store_rollback(s->writer);
        rc = RD_EIO;
        goto out;
    }
    /* Still under write_lock: the hook sees transactions in commit order. */
    if (s->hook && json_array_size(tx.events) > 0)
        s->hook(s->hook_arg, tx.events);
out:
    store_in_tx = false;
    pthread_mutex_unlock(&s->write_lock);
    json_decref(tx.events);
    return rc;
}

int store_tx_publish(struct store_tx *tx, const char *type, json_t *data)
{
    json_t *env = NULL;
    sqlite3_stmt *st = NULL;
    json_int_t id;
    int rc;

    if (!tx) {
        json_decref(data);
        return RD_EINVAL;
    }
    if (!tx->is_write) {
        json_decref(data);
        return RD_EPERM;
    }
    if (!tx->events && !(tx->events = json_array())) {
        json_decref(data);
        return RD_ENOMEM;
    }
    rc = bus_event_insert(tx->db, tx->source, type, data, &env);
    if (rc != RD_OK)
        return rc;
    id = json_integer_value(json_object_get(env, "id"));
    if (json_array_append_new(tx->events, env) == 0)
        return RD_OK;

    /* Keep "stored" and "fanned out after commit" the same set of events:
       without its envelope, the row must go. */
    if (sqlite3_prepare_v2(tx->db, "DELETE FROM core_events WHERE id = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return RD_ENOMEM;
}

void store_set_commit_hook(struct store *s, void (*fn)(void *arg, const json_t *events), void *arg)
{
    pthread_mutex_lock(&s->write_lock);
    s->hook = fn;
    s->hook_arg = arg;
    pthread_mutex_unlock(&s->write_lock);
}

struct store_migrate_ctx {
    const char *owner;
    const char *const *steps;
    int n_steps;
    struct rd_error *err;
    bool is_err_set; /* the callback explained its failure in err */
};

static int store_version_get(sqlite3 *db, const char *owner, int *out)
{
    sqlite3_stmt *st = NULL;
    int src;
    int rc = RD_OK;

    *out = 0;
    src = sqlite3_prepare_v2(db, "SELECT version FROM core_schema WHERE owner = ?", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        *out = v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
    } else if (src != SQLITE_DONE) {
        rc = store_sqlite_err(src);
    }
    sqlite3_finalize(st);
    return rc;
}

static int store_migrate_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct store_migrate_ctx *c = arg;
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    int version = 0;
    int src;
    int rc;

    src = sqlite3_exec(tx->db,
                       "CREATE TABLE IF NOT EXISTS core_schema(owner TEXT PRIMARY KEY,"
                       " version INTEGER, applied_ms INTEGER)",
                       NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = rd_error_set(c->err, store_sqlite_err(src), "migration %s: core_schema: %s", c->owner,
                          sqlite3_errmsg(tx->db));
        goto out;
    }
    rc = store_version_get(tx->db, c->owner, &version);
    if (rc != RD_OK) {
        rc = rd_error_set(c->err, rc, "migration %s: reading its version: %s", c->owner,
                          sqlite3_errmsg(tx->db));
        goto out;
    }
    if (version > c->n_steps) {
        rc = rd_error_set(c->err, RD_ECONFLICT, "database has %s schema v%d, this build knows v%d",
                          c->owner, version, c->n_steps);
        goto out;
    }
    if (version == c->n_steps)
        goto out;

    for (int i = version; i < c->n_steps; i++) {
        src = sqlite3_exec(tx->db, c->steps[i], NULL, NULL, &msg);
        if (src != SQLITE_OK) {
            rc = rd_error_set(c->err, store_sqlite_err(src) == RD_ENOMEM ? RD_ENOMEM : RD_EIO,
                              "migration %s step %d: %s", c->owner, i + 1,
                              msg ? msg : sqlite3_errstr(src));
            goto out;
        }
        /* A step with its own COMMIT would make the rest non-atomic. */
        if (sqlite3_get_autocommit(tx->db)) {
            rc = rd_error_set(c->err, RD_EINVAL,
                              "migration %s step %d: ends the transaction (steps must not "
                              "contain BEGIN, COMMIT or ROLLBACK)",
                              c->owner, i + 1);
            goto out;
        }
    }
    src = sqlite3_prepare_v2(tx->db,
                             "INSERT INTO core_schema(owner, version, applied_ms) VALUES(?, ?, ?)"
                             " ON CONFLICT(owner) DO UPDATE SET version = excluded.version,"
                             " applied_ms = excluded.applied_ms",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, c->owner, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int(st, 2, c->n_steps);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 3, (sqlite3_int64)store_now_ms());
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        rc = rd_error_set(c->err, store_sqlite_err(src), "migration %s: recording v%d: %s",
                          c->owner, c->n_steps, sqlite3_errmsg(tx->db));
        goto out;
    }
    log_msg("core", RD_INFO, "store: %s schema v%d -> v%d", c->owner, version, c->n_steps);
out:
    c->is_err_set = rc != RD_OK;
    sqlite3_finalize(st);
    sqlite3_free(msg);
    return rc;
}

int store_migrate(struct store *s, const char *owner, const char *const *steps,
                  struct rd_error *err)
{
    struct store_migrate_ctx c = {.owner = owner, .steps = steps, .n_steps = 0, .err = err};
    int rc;

    if (!s || !owner || !*owner)
        return rd_error_set(err, RD_EINVAL, "migration: no owner");
    while (steps && steps[c.n_steps]) {
        if (c.n_steps == INT_MAX - 1)
            return rd_error_set(err, RD_EINVAL, "migration %s: too many steps", owner);
        c.n_steps++;
    }
    rc = store_write(s, NULL, owner, store_migrate_tx, &c);
    if (rc == RD_OK || c.is_err_set)
        return rc;
    if (rc == RD_ECONFLICT)
        return rd_error_set(err, rc, "migration %s: called from inside a transaction", owner);
    if (rc == RD_EIO)
        return rd_error_set(err, rc, "migration %s: commit failed (see the log)", owner);
    return rd_error_set(err, rc, "migration %s: cannot start a transaction (see the log)", owner);
}

struct store_version_ctx {
    const char *owner;
    int version;
};

static int store_version_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct store_version_ctx *c = arg;

    return store_version_get(tx->db, c->owner, &c->version);
}

int store_schema_version(struct store *s, const char *owner, int *out)
{
    struct store_version_ctx c = {.owner = owner, .version = 0};
    int rc;

    if (!s || !owner || !out)
        return RD_EINVAL;
    rc = store_read(s, NULL, store_version_tx, &c);
    *out = rc == RD_OK ? c.version : 0;
    return rc;
}

int store_ping(struct store *s)
{
    int rc = RD_OK;
    int src;

    if (!s)
        return RD_EINVAL;
    if (store_in_tx)
        return RD_ECONFLICT;
    pthread_mutex_lock(&s->write_lock);
    if (sqlite3_db_readonly(s->writer, "main") != 0) {
        rc = RD_EPERM;
        goto out;
    }
    /* Takes the database's write lock, so it fails when another process
       holds it or the file has become unwritable to SQLite. */
    src = sqlite3_exec(s->writer, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        log_msg("core", RD_WARN, "store: write probe on %s failed: %s", s->path,
                sqlite3_errmsg(s->writer));
        store_rollback(s->writer);
        rc = store_sqlite_err(src);
        if (rc == RD_OK || rc == RD_ECONFLICT)
            rc = RD_EIO;
    }
out:
    pthread_mutex_unlock(&s->write_lock);
    return rc;
}

int store_open(const struct store_conf *conf, struct store **out, struct rd_error *err)
{
    struct store *s = NULL;
    bool has_locks = false;
    int rc = RD_OK;

    *out = NULL;
    if (!conf || !conf->path || !*conf->path)
        return rd_error_set(err, RD_EINVAL, "store: no database path");
    /* Connections are opened without SQLite's mutex, which needs a library
       built thread-safe. */
    if (!sqlite3_threadsafe())
        return rd_error_set(err, RD_EUNAVAIL, "store: SQLite was built without thread support");

    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(conf->path))) {
        rc = rd_error_set(err, RD_ENOMEM, "store: out of memory");
        goto out;
    }
    s->busy_timeout_ms =
        conf->busy_timeout_ms > (uint64_t)INT_MAX ? INT_MAX : (int)conf->busy_timeout_ms;
    s->sync_full = conf->sync_full;
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->read_lock, NULL);
    pthread_cond_init(&s->read_cond, NULL);
    has_locks = true;

    rc = store_conn_open(s, true, &s->writer, err);
    if (rc != RD_OK)
        goto out;
    rc = store_migrate(s, "core", store_core_steps, err);
    if (rc != RD_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    if (s) {
        store_db_close(s->writer);
        if (has_locks) {
            pthread_cond_destroy(&s->read_cond);
            pthread_mutex_destroy(&s->read_lock);
            pthread_mutex_destroy(&s->write_lock);
        }
        free(s->path);
        free(s);
    }
    return rc;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->read_lock);
    if (s->n_idle != s->n_readers)
        log_msg("core", RD_ERROR, "store: closing %s with %zu read transactions in flight", s->path,
                s->n_readers - s->n_idle);
    while (s->n_idle > 0)
        store_db_close(s->idle[--s->n_idle]);
    pthread_mutex_unlock(&s->read_lock);
    /* The writer goes last: the last connection checkpoints the WAL into
       the database file and removes it. */
    store_db_close(s->writer);
    pthread_cond_destroy(&s->read_cond);
    pthread_mutex_destroy(&s->read_lock);
    pthread_mutex_destroy(&s->write_lock);
    free(s->path);
    free(s);
}
