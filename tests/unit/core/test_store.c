/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_store.c -- core/store.c on real SQLite files in a
 * mkdtemp directory: WAL and pragmas at open, refusal of damaged files,
 * per-owner migrations, write rollback and commit failure, nested
 * transactions, and writers and readers on several threads at once.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/store.h"
#include "tests/unit/tmpdir.h"

struct fx {
    char dir[256];
    char path[300];
    struct store *s;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "rd-store") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/relengd.db", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static int fx_open(struct fx *f, bool sync_full, struct rd_error *err)
{
    struct store_conf c = {.path = f->path, .busy_timeout_ms = 5000, .sync_full = sync_full};

    return store_open(&c, &f->s, err);
}

static void fx_reopen(struct fx *f)
{
    struct rd_error err = {0};

    store_close(f->s);
    f->s = NULL;
    assert_int_equal(fx_open(f, true, &err), RD_OK);
}

/* ------------------------------------------------------------ helpers */

struct sql_arg {
    const char *sql;
    int64_t value; /* first column of the first row */
    char text[64];
    int src;
};

static int tx_exec(struct rd_tx *tx, void *arg)
{
    struct sql_arg *a = arg;

    a->src = sqlite3_exec(((struct store_tx *)tx)->db, a->sql, NULL, NULL, NULL);
    return a->src == SQLITE_OK ? RD_OK : RD_EIO;
}

static int tx_query(struct rd_tx *tx, void *arg)
{
    struct sql_arg *a = arg;
    sqlite3_stmt *st = NULL;

    a->value = -1;
    a->text[0] = '\0';
    a->src = sqlite3_prepare_v2(((struct store_tx *)tx)->db, a->sql, -1, &st, NULL);
    if (a->src == SQLITE_OK)
        a->src = sqlite3_step(st);
    if (a->src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        a->value = sqlite3_column_int64(st, 0);
        snprintf(a->text, sizeof(a->text), "%s", t ? t : "");
    }
    sqlite3_finalize(st);
    return a->src == SQLITE_ROW || a->src == SQLITE_DONE ? RD_OK : RD_EIO;
}

static void exec_ok(struct store *s, const char *sql)
{
    struct sql_arg a = {.sql = sql};

    assert_int_equal(store_write(s, NULL, "test", tx_exec, &a), RD_OK);
}

static int64_t query_int(struct store *s, const char *sql)
{
    struct sql_arg a = {.sql = sql};

    assert_int_equal(store_read(s, NULL, tx_query, &a), RD_OK);
    return a.value;
}

static bool table_exists(struct store *s, const char *name)
{
    char sql[200];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'", name);
    return query_int(s, sql) == 1;
}

static int schema_version(struct store *s, const char *owner)
{
    int v = -1;

    assert_int_equal(store_schema_version(s, owner, &v), RD_OK);
    return v;
}

/* ------------------------------------------------------------- opening */

static void test_open_wal_and_pragmas(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    struct sql_arg a = {0};
    struct stat st;
    char wal[320];

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    a.sql = "PRAGMA journal_mode";
    assert_int_equal(store_read(f->s, NULL, tx_query, &a), RD_OK);
    assert_string_equal(a.text, "wal");
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);

    a.sql = "PRAGMA synchronous";
    assert_int_equal(store_write(f->s, NULL, "test", tx_query, &a), RD_OK);
    assert_int_equal(a.value, 2); /* FULL */
    a.sql = "PRAGMA foreign_keys";
    assert_int_equal(store_write(f->s, NULL, "test", tx_query, &a), RD_OK);
    assert_int_equal(a.value, 1);

    /* The core's tables come from the core's own migration. */
    assert_int_equal(schema_version(f->s, "core"), 1);
    assert_true(table_exists(f->s, "core_schema"));
    assert_true(table_exists(f->s, "core_events"));
    assert_true(table_exists(f->s, "core_tokens"));
    assert_true(table_exists(f->s, "core_webhook_cursors"));
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM sqlite_schema WHERE type='index'"
                                     " AND name='core_events_time'"),
                     1);
    assert_int_equal(store_ping(f->s), RD_OK);

    store_close(f->s);
    f->s = NULL;
    assert_int_equal(fx_open(f, false, &err), RD_OK);
    a.sql = "PRAGMA synchronous";
    assert_int_equal(store_write(f->s, NULL, "test", tx_query, &a), RD_OK);
    assert_int_equal(a.value, 1); /* NORMAL */
    assert_int_equal(schema_version(f->s, "core"), 1);
}

static void test_open_bad_path(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    struct store_conf c = {.path = NULL, .busy_timeout_ms = 100, .sync_full = true};

    snprintf(f->path, sizeof(f->path), "%s/no/such/dir/relengd.db", f->dir);
    assert_int_equal(fx_open(f, true, &err), RD_EIO);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, f->path));

    assert_int_equal(store_open(&c, &f->s, &err), RD_EINVAL);
    assert_null(f->s);
}

/* A database with enough rows to fill a few dozen pages. */
static void make_db_with_pages(struct fx *f)
{
    struct rd_error err = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);"
                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                  " INSERT INTO t SELECT i, randomblob(500) FROM n;"
                  "CREATE INDEX t_b ON t(b)");
    store_close(f->s);
    f->s = NULL;
}

static void overwrite(const char *path, off_t offset, size_t len, unsigned seed)
{
    unsigned char *junk = malloc(len);
    int fd = open(path, O_WRONLY);

    assert_non_null(junk);
    assert_true(fd >= 0);
    srand(seed);
    for (size_t i = 0; i < len; i++)
        junk[i] = (unsigned char)(rand() & 0xff);
    assert_int_equal(pwrite(fd, junk, len, offset), (ssize_t)len);
    close(fd);
    free(junk);
}

static void test_refuses_corrupt_pages(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    make_db_with_pages(f);
    /* Pages 3..6 hold table and index b-tree pages. */
    overwrite(f->path, 2 * 4096, 4 * 4096, 1);
    assert_int_equal(fx_open(f, true, &err), RD_ECORRUPT);
    assert_null(f->s);
    assert_int_equal(err.code, RD_ECORRUPT);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "is corrupt: "));
    assert_non_null(strstr(err.msg, "restore it from a backup or move it aside"));
    assert_null(strchr(err.msg, '\n'));
}

static void test_refuses_corrupt_header(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    make_db_with_pages(f);
    overwrite(f->path, 0, 100, 2);
    assert_int_equal(fx_open(f, true, &err), RD_ECORRUPT);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "not an SQLite database"));
}

static void test_refuses_other_file(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    static const char line[] = "# relengd configuration, not a database\n";
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs(line, fp);
    fclose(fp);
    assert_int_equal(fx_open(f, true, &err), RD_ECORRUPT);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "not an SQLite database"));
}

/* ---------------------------------------------------------- migrations */

static const char *const m1_v2[] = {
    "CREATE TABLE m1_a(x INTEGER); INSERT INTO m1_a VALUES(1)",
    "CREATE TABLE m1_b(y TEXT)",
    NULL,
};
static const char *const m1_v3[] = {
    "CREATE TABLE m1_a(x INTEGER); INSERT INTO m1_a VALUES(1)",
    "CREATE TABLE m1_b(y TEXT)",
    "ALTER TABLE m1_b ADD COLUMN z INTEGER; INSERT INTO m1_a VALUES(3)",
    NULL,
};

static void test_migrate_fresh_reopen_and_grow(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "m1"), 0);
    assert_int_equal(store_migrate(f->s, "m1", m1_v2, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "m1"), 2);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM m1_a"), 1);
    assert_true(table_exists(f->s, "m1_b"));
    assert_true(query_int(f->s, "SELECT applied_ms FROM core_schema WHERE owner='m1'") >
                1600000000000LL);

    /* Same steps again, and after a restart: nothing runs twice. */
    assert_int_equal(store_migrate(f->s, "m1", m1_v2, &err), RD_OK);
    fx_reopen(f);
    assert_int_equal(store_migrate(f->s, "m1", m1_v2, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "m1"), 2);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM m1_a"), 1);

    /* A later build adds a step: only that one runs. */
    assert_int_equal(store_migrate(f->s, "m1", m1_v3, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "m1"), 3);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM m1_a"), 2);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM pragma_table_info('m1_b')"
                                     " WHERE name='z'"),
                     1);
    /* No steps: an owner at version 0 is fine; core is untouched. */
    assert_int_equal(store_migrate(f->s, "m0", NULL, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "core"), 1);
}

static void test_migrate_failure_rolls_back(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    static const char *const fresh[] = {
        "CREATE TABLE m2_a(x)",
        "CREATE TABLE m2_b(x); INSERT INTO m2_b VALUES(1)",
        "CREATE TABLE m2_c(x); INSERT INTO nope VALUES(1)",
        NULL,
    };
    static const char *const later[] = {
        "CREATE TABLE m1_a(x INTEGER); INSERT INTO m1_a VALUES(1)",
        "CREATE TABLE m1_b(y TEXT)",
        "CREATE TABLE m1_c(x)",
        "CREATE TABLE m1_d(x); SELECT * FROM m1_a WHERE",
        NULL,
    };

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(store_migrate(f->s, "m2", fresh, &err), RD_EIO);
    assert_int_equal(err.code, RD_EIO);
    assert_string_equal(err.msg, "migration m2 step 3: no such table: nope");
    assert_int_equal(schema_version(f->s, "m2"), 0);
    assert_false(table_exists(f->s, "m2_a"));
    assert_false(table_exists(f->s, "m2_b"));
    assert_false(table_exists(f->s, "m2_c"));

    assert_int_equal(store_migrate(f->s, "m1", m1_v2, &err), RD_OK);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_migrate(f->s, "m1", later, &err), RD_EIO);
    assert_non_null(strstr(err.msg, "migration m1 step 4: "));
    assert_int_equal(schema_version(f->s, "m1"), 2);
    assert_false(table_exists(f->s, "m1_c"));
    assert_false(table_exists(f->s, "m1_d"));
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM m1_a"), 1);

    /* The store is still usable, and a fixed build migrates. */
    assert_int_equal(store_migrate(f->s, "m1", m1_v3, &err), RD_OK);
    assert_int_equal(schema_version(f->s, "m1"), 3);
}

static void test_migrate_downgrade_refused(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(store_migrate(f->s, "m1", m1_v3, &err), RD_OK);
    fx_reopen(f);
    assert_int_equal(store_migrate(f->s, "m1", m1_v2, &err), RD_ECONFLICT);
    assert_string_equal(err.msg, "database has m1 schema v3, this build knows v2");
    assert_int_equal(schema_version(f->s, "m1"), 3);
}

static void test_migrate_step_must_not_commit(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    static const char *const bad[] = {"CREATE TABLE m4_a(x); COMMIT", NULL};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(store_migrate(f->s, "m4", bad, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "migration m4 step 1: ends the transaction"));
    assert_int_equal(schema_version(f->s, "m4"), 0);
    assert_int_equal(store_migrate(f->s, "", bad, &err), RD_EINVAL);
    assert_int_equal(store_migrate(f->s, NULL, bad, &err), RD_EINVAL);
}

/* ------------------------------------------------------- transactions */

struct insert_arg {
    int value;
    int rc; /* what the callback returns */
};

static int tx_insert(struct rd_tx *tx, void *arg)
{
    struct insert_arg *a = arg;
    sqlite3_stmt *st = NULL;
    int src;

    src = sqlite3_prepare_v2(((struct store_tx *)tx)->db, "INSERT INTO kv(v) VALUES(?)", -1, &st,
                             NULL);
    if (src == SQLITE_OK)
        sqlite3_bind_int(st, 1, a->value);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return RD_EIO;
    return a->rc;
}

static void test_write_rollback_on_error(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    struct insert_arg a;

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE kv(v INTEGER)");

    a = (struct insert_arg){.value = 1, .rc = RD_EINVAL};
    assert_int_equal(store_write(f->s, NULL, "test", tx_insert, &a), RD_EINVAL);
    a = (struct insert_arg){.value = 2, .rc = 42};
    assert_int_equal(store_write(f->s, NULL, "test", tx_insert, &a), 42);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM kv"), 0);

    a = (struct insert_arg){.value = 3, .rc = RD_OK};
    assert_int_equal(store_write(f->s, NULL, "test", tx_insert, &a), RD_OK);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM kv"), 1);
    assert_int_equal(query_int(f->s, "SELECT v FROM kv"), 3);

    assert_int_equal(store_write(f->s, NULL, "test", NULL, NULL), RD_EINVAL);
    assert_int_equal(store_read(f->s, NULL, NULL, NULL), RD_EINVAL);
}

static int tx_orphan(struct rd_tx *tx, void *arg)
{
    (void)arg;
    /* Accepted now, refused at COMMIT: the constraint is deferred. */
    return sqlite3_exec(((struct store_tx *)tx)->db, "INSERT INTO child VALUES(1, 99)", NULL, NULL,
                        NULL) == SQLITE_OK
               ? RD_OK
               : RD_EIO;
}

static void test_commit_failure_is_eio(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                  "CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER"
                  " REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)");
    assert_int_equal(store_write(f->s, NULL, "test", tx_orphan, NULL), RD_EIO);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM child"), 0);
    /* The writer is usable afterwards. */
    exec_ok(f->s, "INSERT INTO parent VALUES(99); INSERT INTO child VALUES(1, 99)");
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM child"), 1);
}

struct nested_arg {
    struct store *s;
    int write_rc, read_rc, migrate_rc, ping_rc;
};

static int tx_noop(struct rd_tx *tx, void *arg)
{
    (void)tx;
    (void)arg;
    return RD_OK;
}

static int tx_nested(struct rd_tx *tx, void *arg)
{
    struct nested_arg *a = arg;
    struct rd_error err = {0};
    static const char *const steps[] = {"CREATE TABLE n_a(x)", NULL};

    a->write_rc = store_write(a->s, NULL, "test", tx_noop, NULL);
    a->read_rc = store_read(a->s, NULL, tx_noop, NULL);
    a->migrate_rc = store_migrate(a->s, "n", steps, &err);
    a->ping_rc = store_ping(a->s);
    if (((struct store_tx *)tx)->is_write)
        return sqlite3_exec(((struct store_tx *)tx)->db, "INSERT INTO kv VALUES(7)", NULL, NULL,
                            NULL) == SQLITE_OK
                   ? RD_OK
                   : RD_EIO;
    return RD_OK;
}

static void test_nested_detected(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    struct nested_arg a = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE kv(v INTEGER)");
    a.s = f->s;
    assert_int_equal(store_write(f->s, NULL, "test", tx_nested, &a), RD_OK);
    assert_int_equal(a.write_rc, RD_ECONFLICT);
    assert_int_equal(a.read_rc, RD_ECONFLICT);
    assert_int_equal(a.migrate_rc, RD_ECONFLICT);
    assert_int_equal(a.ping_rc, RD_ECONFLICT);
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM kv WHERE v = 7"), 1);
    assert_false(table_exists(f->s, "n_a"));

    memset(&a, 0, sizeof(a));
    a.s = f->s;
    assert_int_equal(store_read(f->s, NULL, tx_nested, &a), RD_OK);
    assert_int_equal(a.write_rc, RD_ECONFLICT);
    assert_int_equal(a.read_rc, RD_ECONFLICT);
    /* Outside any transaction everything works again. */
    assert_int_equal(store_write(f->s, NULL, "test", tx_noop, NULL), RD_OK);
    assert_int_equal(store_ping(f->s), RD_OK);
}

struct handle_arg {
    const struct rd_host_api *api;
    bool is_write;
    char source[32];
    sqlite3 *db;
    int publish_rc;
    int readonly_rc;
};

static int tx_handle(struct rd_tx *tx, void *arg)
{
    struct store_tx *t = (struct store_tx *)tx;
    struct handle_arg *a = arg;

    a->api = tx->api;
    a->is_write = t->is_write;
    snprintf(a->source, sizeof(a->source), "%s", t->source ? t->source : "(null)");
    a->db = t->db;
    if (!t->is_write) {
        a->publish_rc = store_tx_publish(t, "task.created", json_pack("{s:i}", "n", 1));
        a->readonly_rc = sqlite3_exec(t->db, "CREATE TABLE nope(x)", NULL, NULL, NULL);
    }
    return RD_OK;
}

static void test_tx_handle(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    struct rd_host_api api = {.abi = RD_MODULE_ABI, .size = sizeof(api)};
    struct handle_arg a = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(store_write(f->s, &api, "graph", tx_handle, &a), RD_OK);
    assert_ptr_equal(a.api, &api);
    assert_true(a.is_write);
    assert_string_equal(a.source, "graph");
    assert_non_null(a.db);

    memset(&a, 0, sizeof(a));
    assert_int_equal(store_read(f->s, NULL, tx_handle, &a), RD_OK);
    assert_null(a.api);
    assert_false(a.is_write);
    assert_int_equal(a.publish_rc, RD_EPERM);
    /* Readers are read-only connections. */
    assert_int_equal(a.readonly_rc & 0xff, SQLITE_READONLY);
    assert_false(table_exists(f->s, "nope"));
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM core_events"), 0);
    assert_int_equal(store_tx_publish(NULL, "a", json_object()), RD_EINVAL);
}

static int tx_leave_open(struct rd_tx *tx, void *arg)
{
    (void)arg;
    /* A misbehaving callback ends our transaction and opens its own. */
    sqlite3_exec(((struct store_tx *)tx)->db, "COMMIT; BEGIN; SELECT 1", NULL, NULL, NULL);
    return RD_EINVAL;
}

static void test_reader_left_in_tx_is_dropped(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};

    assert_int_equal(fx_open(f, true, &err), RD_OK);
    assert_int_equal(store_read(f->s, NULL, tx_leave_open, NULL), RD_EINVAL);
    exec_ok(f->s, "CREATE TABLE kv(v INTEGER); INSERT INTO kv VALUES(1)");
    assert_int_equal(query_int(f->s, "SELECT count(*) FROM kv"), 1);
}

/* ---------------------------------------------------------- threads */

#define N_WRITERS 4
#define N_INCREMENTS 200

static int tx_increment(struct rd_tx *tx, void *arg)
{
    sqlite3 *db = ((struct store_tx *)tx)->db;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    char sql[64];
    (void)arg;

    /* Read, then write what was read plus one: only serialised writers
       make the total come out right. */
    if (sqlite3_prepare_v2(db, "SELECT n FROM counter", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (n < 0)
        return RD_EIO;
    snprintf(sql, sizeof(sql), "UPDATE counter SET n = %lld", (long long)n + 1);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? RD_OK : RD_EIO;
}

struct thread_arg {
    struct store *s;
    atomic_int *failures;
    int seed;
};

static void *writer_thread(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < N_INCREMENTS; i++)
        if (store_write(a->s, NULL, "test", tx_increment, NULL) != RD_OK)
            atomic_fetch_add(a->failures, 1);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    pthread_t t[N_WRITERS];
    struct thread_arg a[N_WRITERS];
    atomic_int failures = 0;

    assert_int_equal(fx_open(f, false, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES(0)");
    for (int i = 0; i < N_WRITERS; i++) {
        a[i] = (struct thread_arg){.s = f->s, .failures = &failures, .seed = i};
        assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &a[i]), 0);
    }
    for (int i = 0; i < N_WRITERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(query_int(f->s, "SELECT n FROM counter"), N_WRITERS * N_INCREMENTS);
}

#define N_READERS 20 /* more than the pool holds: some wait their turn */
#define N_READS 60
#define TOTAL 1000

static int tx_transfer(struct rd_tx *tx, void *arg)
{
    sqlite3 *db = ((struct store_tx *)tx)->db;
    int *amount = arg;
    char sql[128];

    snprintf(sql, sizeof(sql),
             "UPDATE acct SET v = v - %d WHERE k = 'a'; UPDATE acct SET v = v + %d WHERE k = 'b'",
             *amount, *amount);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? RD_OK : RD_EIO;
}

static int64_t read_one(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int tx_check_sum(struct rd_tx *tx, void *arg)
{
    sqlite3 *db = ((struct store_tx *)tx)->db;
    int64_t *sum = arg;
    int64_t a = read_one(db, "SELECT v FROM acct WHERE k = 'a'");
    struct timespec pause = {0, 200000};

    /* Writers commit while we pause; the snapshot must not move. */
    nanosleep(&pause, NULL);
    *sum = a + read_one(db, "SELECT v FROM acct WHERE k = 'b'");
    return RD_OK;
}

static atomic_bool writers_done;

static void *transfer_thread(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < 300; i++) {
        int amount = (i * 7 + a->seed) % 13 - 6;
        if (store_write(a->s, NULL, "test", tx_transfer, &amount) != RD_OK)
            atomic_fetch_add(a->failures, 1);
    }
    return NULL;
}

static void *reader_thread(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < N_READS || !atomic_load(&writers_done); i++) {
        int64_t sum = -1;
        if (store_read(a->s, NULL, tx_check_sum, &sum) != RD_OK || sum != TOTAL)
            atomic_fetch_add(a->failures, 1);
        if (i > 10 * N_READS)
            break;
    }
    return NULL;
}

static void test_snapshot_reads_during_writes(void **state)
{
    struct fx *f = *state;
    struct rd_error err = {0};
    pthread_t w[2], r[N_READERS];
    struct thread_arg wa[2], ra[N_READERS];
    atomic_int failures = 0;

    assert_int_equal(fx_open(f, false, &err), RD_OK);
    exec_ok(f->s, "CREATE TABLE acct(k TEXT PRIMARY KEY, v INTEGER);"
                  "INSERT INTO acct VALUES('a', 600), ('b', 400)");
    atomic_store(&writers_done, false);
    for (int i = 0; i < N_READERS; i++) {
        ra[i] = (struct thread_arg){.s = f->s, .failures = &failures, .seed = i};
        assert_int_equal(pthread_create(&r[i], NULL, reader_thread, &ra[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        wa[i] = (struct thread_arg){.s = f->s, .failures = &failures, .seed = i};
        assert_int_equal(pthread_create(&w[i], NULL, transfer_thread, &wa[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    atomic_store(&writers_done, true);
    for (int i = 0; i < N_READERS; i++)
        pthread_join(r[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(query_int(f->s, "SELECT sum(v) FROM acct"), TOTAL);
}

static void test_sqlite_err_map(void **state)
{
    (void)state;
    assert_int_equal(store_sqlite_err(SQLITE_OK), RD_OK);
    assert_int_equal(store_sqlite_err(SQLITE_DONE), RD_OK);
    assert_int_equal(store_sqlite_err(SQLITE_BUSY), RD_EUNAVAIL);
    assert_int_equal(store_sqlite_err(SQLITE_BUSY_SNAPSHOT), RD_EUNAVAIL);
    assert_int_equal(store_sqlite_err(SQLITE_CORRUPT), RD_ECORRUPT);
    assert_int_equal(store_sqlite_err(SQLITE_NOTADB), RD_ECORRUPT);
    assert_int_equal(store_sqlite_err(SQLITE_CONSTRAINT_UNIQUE), RD_ECONFLICT);
    assert_int_equal(store_sqlite_err(SQLITE_NOMEM), RD_ENOMEM);
    assert_int_equal(store_sqlite_err(SQLITE_READONLY), RD_EPERM);
    assert_int_equal(store_sqlite_err(SQLITE_IOERR_FSYNC), RD_EIO);
    assert_int_equal(store_sqlite_err(SQLITE_ERROR), RD_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_wal_and_pragmas, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_path, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_corrupt_pages, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_corrupt_header, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_other_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_fresh_reopen_and_grow, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_failure_rolls_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_downgrade_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_step_must_not_commit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_rollback_on_error, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_is_eio, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_nested_detected, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tx_handle, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reader_left_in_tx_is_dropped, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_reads_during_writes, fx_setup, fx_teardown),
        cmocka_unit_test(test_sqlite_err_map),
    };

    /* Keep expected warnings (failed commits, migrations) out of the output. */
    log_set_level(RD_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
