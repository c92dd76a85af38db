/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_bus.c -- core/bus.c and core/api_events.c on a real
 * SQLite file in a mkdtemp directory: event ids, publishing inside write
 * transactions (commit and rollback), type and filter matching, reading
 * back for resume, waiters, pruning, fan-out on a loop thread, and the
 * /api/v1/events handler driven through a fake struct rd_req (its rd_req_*
 * and rd_reply_* table) -- JSON polling, long-polling and SSE.
 */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/thread.h>

/* The handler is static; the route registration is recorded, not routed. */
#define router_add test_router_add
#include "core/api_events.c"
#undef router_add

#include "core/bus.h"
#include "core/log.h"
#include "core/loopq.h"
#include "core/store.h"
#include "tests/unit/tmpdir.h"

struct fx {
    char dir[256];
    char path[300];
    struct store *s;
    struct event_base *base;
    struct loopq *q;
    struct bus *b;
    json_t *hooked; /* envelopes the commit hook saw, in order */
    atomic_int n_hooks;
};

static void fx_hook(void *arg, const json_t *events)
{
    struct fx *f = arg;
    size_t i;
    json_t *env;

    atomic_fetch_add(&f->n_hooks, 1);
    json_array_foreach(events, i, env) json_array_append(f->hooked, env);
    bus_committed(f->b, events);
}

static void fx_open_store(struct fx *f)
{
    struct store_conf c = {.path = f->path, .busy_timeout_ms = 5000, .sync_full = false};
    struct rd_error err = {0};
    uint64_t last = 0;

    assert_int_equal(store_open(&c, &f->s, &err), RD_OK);
    assert_int_equal(bus_max_id(f->s, &last), RD_OK);
    bus_set_last_id(f->b, last);
    store_set_commit_hook(f->s, fx_hook, f);
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "rd-bus") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/relengd.db", f->dir);
    f->hooked = json_array();
    f->base = event_base_new();
    if (!f->hooked || !f->base || loopq_new(f->base, &f->q) != RD_OK ||
        bus_new(f->q, &f->b) != RD_OK)
        return -1;
    fx_open_store(f);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    loopq_free(f->q);
    bus_free(f->b);
    event_base_free(f->base);
    store_close(f->s);
    json_decref(f->hooked);
    test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ publishing */

struct pub {
    const char *type;
    json_t *data; /* stolen by the publish */
};

struct pub_arg {
    struct pub *pubs;
    size_t n;
    int rc; /* what the callback returns after publishing */
    int publish_rc[8];
    int n_hooks_inside; /* hooks seen before the callback returned */
    struct fx *f;
};

static int tx_publish(struct rd_tx *tx, void *arg)
{
    struct pub_arg *a = arg;

    for (size_t i = 0; i < a->n; i++) {
        int rc = store_tx_publish((struct store_tx *)tx, a->pubs[i].type, a->pubs[i].data);
        a->pubs[i].data = NULL;
        if (i < 8)
            a->publish_rc[i] = rc;
    }
    if (a->f)
        a->n_hooks_inside = atomic_load(&a->f->n_hooks);
    return a->rc;
}

static uint64_t max_id_of(struct store *s)
{
    uint64_t id = 0;

    assert_int_equal(bus_max_id(s, &id), RD_OK);
    return id;
}

/* Publishes one event in a transaction of its own; returns its id. */
static uint64_t publish1(struct store *s, const char *type, json_t *data)
{
    struct pub p = {type, data};
    struct pub_arg a = {.pubs = &p, .n = 1};

    assert_int_equal(store_write(s, NULL, "test", tx_publish, &a), RD_OK);
    assert_int_equal(a.publish_rc[0], RD_OK);
    return max_id_of(s);
}

static void test_ids_increase_never_reused(void **state)
{
    struct fx *f = *state;
    uint64_t prev = 0;
    sqlite3 *db = NULL;

    for (int i = 0; i < 5; i++) {
        uint64_t id = publish1(f->s, "task.created", json_pack("{s:i}", "n", i));
        assert_true(id > prev);
        prev = id;
    }
    assert_int_equal(prev, 5);
    assert_int_equal(bus_last_id(f->b), 5);

    /* Delete the newest row, restart: AUTOINCREMENT does not hand 5 out again. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM core_events WHERE id = 5", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store_close(f->s);
    fx_open_store(f);
    assert_int_equal(bus_last_id(f->b), 4);
    assert_int_equal(publish1(f->s, "task.created", json_object()), 6);
}

static void on_count(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)id;
    (void)type;
    (void)data;
    (*(int *)arg)++;
}

static void test_rollback_neither_stored_nor_fanned_out(void **state)
{
    struct fx *f = *state;
    int n_calls = 0;
    struct pub p[2] = {{"task.created", json_object()}, {"task.resolved", json_object()}};
    struct pub_arg a = {.pubs = p, .n = 2, .rc = RD_ECONFLICT};
    json_t *events = NULL;

    assert_int_equal(bus_subscribe(f->b, f, "*", on_count, &n_calls), RD_OK);
    assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_ECONFLICT);
    assert_int_equal(a.publish_rc[0], RD_OK);
    assert_int_equal(a.publish_rc[1], RD_OK);
    loopq_drain(f->q);
    assert_int_equal(n_calls, 0);
    assert_int_equal(atomic_load(&f->n_hooks), 0);
    assert_int_equal(bus_last_id(f->b), 0);
    assert_int_equal(bus_read_after(f->s, 0, NULL, 100, &events), RD_OK);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);

    /* The next committed event is fanned out exactly once. */
    publish1(f->s, "task.created", json_object());
    loopq_drain(f->q);
    assert_int_equal(n_calls, 1);
}

struct visible_arg {
    const char *path;
    int64_t rows_seen; /* by an independent connection, from the hook */
    struct fx *f;
};

static void hook_checks_visibility(void *arg, const json_t *events)
{
    struct visible_arg *v = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM core_events WHERE id = %lld",
             (long long)json_integer_value(json_object_get(json_array_get(events, 0), "id")));
    if (sqlite3_open_v2(v->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v->rows_seen = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    fx_hook(v->f, events);
}

static bool is_rfc3339_ms(const char *t)
{
    /* 2026-11-22T10:34:25.123Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (!t || strlen(t) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i])
            return false;
    }
    return true;
}

static void test_hook_after_commit_only(void **state)
{
    struct fx *f = *state;
    struct visible_arg v = {.path = f->path, .rows_seen = -1, .f = f};
    struct pub p[2] = {{"graph.submitted", json_pack("{s:s,s:i}", "graph", "g1", "tasks", 3)},
                       {"task.created", json_pack("{s:s}", "task", "t1")}};
    struct pub_arg a = {.pubs = p, .n = 2, .rc = RD_OK, .f = f};
    json_t *env;

    store_set_commit_hook(f->s, hook_checks_visibility, &v);
    assert_int_equal(store_write(f->s, NULL, "graph", tx_publish, &a), RD_OK);
    assert_int_equal(a.n_hooks_inside, 0);
    assert_int_equal(atomic_load(&f->n_hooks), 1);
    assert_int_equal(v.rows_seen, 1);
    assert_int_equal(json_array_size(f->hooked), 2);

    env = json_array_get(f->hooked, 0);
    assert_int_equal(json_object_size(env), 5);
    assert_int_equal(json_integer_value(json_object_get(env, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(env, "type")), "graph.submitted");
    assert_string_equal(json_string_value(json_object_get(env, "source")), "graph");
    assert_true(is_rfc3339_ms(json_string_value(json_object_get(env, "time"))));
    assert_string_equal(json_string_value(json_object_get(json_object_get(env, "data"), "graph")),
                        "g1");
    env = json_array_get(f->hooked, 1);
    assert_int_equal(json_integer_value(json_object_get(env, "id")), 2);

    /* A failed commit (deferred constraint) never reaches the hook. */
    {
        struct pub q = {"task.created", json_object()};
        struct pub_arg b = {.pubs = &q, .n = 1, .rc = RD_OK};
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                                      "CREATE TABLE child(p INTEGER REFERENCES parent(id)"
                                      " DEFERRABLE INITIALLY DEFERRED);"
                                      "CREATE TRIGGER orphan AFTER INSERT ON core_events"
                                      " WHEN NEW.type = 'task.created' AND NEW.id > 2"
                                      " BEGIN INSERT INTO child VALUES(42); END",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(store_write(f->s, NULL, "graph", tx_publish, &b), RD_EIO);
        assert_int_equal(atomic_load(&f->n_hooks), 1);
        assert_int_equal(bus_last_id(f->b), 2);
        assert_int_equal(max_id_of(f->s), 2);
    }
}

static void test_type_validation(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *type;
        int rc;
    } cases[] = {
        {"task.resolved", RD_OK},
        {"a", RD_OK},
        {"a-b_c.d9.e", RD_OK},
        {"x234567890123456789012345678901234567890123456789012345678901234", RD_OK}, /* 64 */
        {"x2345678901234567890123456789012345678901234567890123456789012345", RD_EINVAL},
        {"", RD_EINVAL},
        {NULL, RD_EINVAL},
        {"Task.resolved", RD_EINVAL},
        {"task.", RD_EINVAL},
        {".task", RD_EINVAL},
        {"task..x", RD_EINVAL},
        {"task resolved", RD_EINVAL},
        {"task/x", RD_EINVAL},
        {"t\xc3\xa4sk", RD_EINVAL},
        {"task*", RD_EINVAL},
    };
    size_t n_ok = 0;
    json_t *events = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pub p = {cases[i].type, json_pack("{s:i}", "i", (int)i)};
        struct pub_arg a = {.pubs = &p, .n = 1, .rc = RD_OK};

        assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_OK);
        if (a.publish_rc[0] != cases[i].rc)
            fail_msg("type '%s': got %d, want %d", cases[i].type ? cases[i].type : "(null)",
                     a.publish_rc[0], cases[i].rc);
        n_ok += cases[i].rc == RD_OK;
    }
    /* data must be a JSON object; it is stolen either way. */
    {
        struct pub p[3] = {{"task.created", json_array()},
                           {"task.created", json_string("x")},
                           {"task.created", NULL}};
        struct pub_arg a = {.pubs = p, .n = 3, .rc = RD_OK};

        assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_OK);
        for (int i = 0; i < 3; i++)
            assert_int_equal(a.publish_rc[i], RD_EINVAL);
    }
    assert_int_equal(bus_read_after(f->s, 0, NULL, 100, &events), RD_OK);
    assert_int_equal(json_array_size(events), n_ok);
    json_decref(events);
}

static void test_type_and_filter_match(void **state)
{
    static const struct {
        const char *pattern, *type;
        bool want;
    } types[] = {
        {"*", "task.resolved", true},
        {"task", "task", true},
        {"task", "task.resolved", true},
        {"task", "task.resolved.late", true},
        {"task", "tasks", false},
        {"task", "taskx.y", false},
        {"task", "graph.task", false},
        {"task.res*", "task.resolved", true},
        {"task.res*", "task.res", true},
        {"task.res*", "task.running", false},
        {"task.*", "task", false},
        {"task.*", "task.x", true},
        {"task*", "tasks.x", true},
        {"task.resolved", "task", false},
        {"task.resolved", "task.resolved", true},
        {"", "task", false},
        {NULL, "task", false},
        {"task", NULL, false},
    };
    static const struct {
        const char *filter, *type;
        bool want;
    } filters[] = {
        {NULL, "task.created", true},
        {"", "task.created", true},
        {" , ", "task.created", true},
        {"task,build", "build.done", true},
        {"task, build", "build.done", true},
        {" task ,build ", "task.x", true},
        {"task,build", "deploy.x", false},
        {"deploy,*", "x", true},
        {"task.res*,graph", "graph.submitted", true},
        {"task.res*,graph", "task.created", false},
        {"task", "tasks", false},
        {"task,,", "task", true},
        {"nothing", "task", false},
    };
    static const struct {
        const char *filter;
        bool want;
    } valid[] = {
        {NULL, true},        {"", true},           {"*", true},     {"task,build.*", true},
        {"task.res*", true}, {" task , x ", true}, {"Task", false}, {"ta sk", false},
        {"a*b", false},      {"task;drop", false}, {"**", false},   {"task,Bad", false},
    };
    char *long_filter = malloc(BUS_FILTER_MAX + 2);
    (void)state;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (bus_type_match(types[i].pattern, types[i].type) != types[i].want)
            fail_msg("bus_type_match(%s, %s) != %d", types[i].pattern ? types[i].pattern : "NULL",
                     types[i].type ? types[i].type : "NULL", types[i].want);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        if (bus_filter_match(filters[i].filter, filters[i].type) != filters[i].want)
            fail_msg("bus_filter_match(%s, %s) != %d",
                     filters[i].filter ? filters[i].filter : "NULL", filters[i].type,
                     filters[i].want);
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        if (bus_filter_valid(valid[i].filter) != valid[i].want)
            fail_msg("bus_filter_valid(%s) != %d", valid[i].filter ? valid[i].filter : "NULL",
                     valid[i].want);
    assert_non_null(long_filter);
    memset(long_filter, 'a', BUS_FILTER_MAX + 1);
    long_filter[BUS_FILTER_MAX + 1] = '\0';
    assert_false(bus_filter_valid(long_filter));
    free(long_filter);
}

/* Ten events: odd ids task.created, even ids build.done, data {"n": id}. */
static void publish_ten(struct fx *f)
{
    for (int i = 1; i <= 10; i++)
        publish1(f->s, i % 2 ? "task.created" : "build.done", json_pack("{s:i}", "n", i));
}

static void assert_ids(const json_t *events, const int *ids, size_t n)
{
    assert_int_equal(json_array_size(events), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(events, i), "id")),
                         ids[i]);
}

static void test_read_after_resume(void **state)
{
    struct fx *f = *state;
    json_t *ev = NULL;
    uint64_t scanned = 0;

    publish_ten(f);
    assert_int_equal(bus_read_after(f->s, 0, NULL, 3, &ev), RD_OK);
    assert_ids(ev, (const int[]){1, 2, 3}, 3);
    /* The envelopes read back equal the ones handed out at commit. */
    for (size_t i = 0; i < 3; i++)
        assert_true(json_equal(json_array_get(ev, i), json_array_get(f->hooked, i)));
    json_decref(ev);

    assert_int_equal(bus_read_after(f->s, 3, NULL, 100, &ev), RD_OK);
    assert_ids(ev, (const int[]){4, 5, 6, 7, 8, 9, 10}, 7);
    json_decref(ev);
    assert_int_equal(bus_read_after(f->s, 10, NULL, 100, &ev), RD_OK);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);

    assert_int_equal(bus_read_after_scan(f->s, 0, "build", 2, &ev, &scanned), RD_OK);
    assert_ids(ev, (const int[]){2, 4}, 2);
    assert_int_equal(scanned, 4);
    json_decref(ev);
    assert_int_equal(bus_read_after_scan(f->s, 4, "build", 100, &ev, &scanned), RD_OK);
    assert_ids(ev, (const int[]){6, 8, 10}, 3);
    assert_int_equal(scanned, 10);
    json_decref(ev);
    assert_int_equal(bus_read_after_scan(f->s, 8, "task", 100, &ev, &scanned), RD_OK);
    assert_ids(ev, (const int[]){9}, 1);
    assert_int_equal(scanned, 10);
    json_decref(ev);
    assert_int_equal(bus_read_after_scan(f->s, 3, "deploy", 100, &ev, &scanned), RD_OK);
    assert_int_equal(json_array_size(ev), 0);
    assert_int_equal(scanned, 10);
    json_decref(ev);
    assert_int_equal(bus_read_after_scan(f->s, 3, "task", 0, &ev, &scanned), RD_OK);
    assert_int_equal(json_array_size(ev), 0);
    assert_int_equal(scanned, 3);
    json_decref(ev);
    assert_int_equal(bus_read_after(f->s, UINT64_MAX, NULL, 10, &ev), RD_OK);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
}

struct waiter {
    struct bus *b;
    uint64_t after, timeout_ms, got, elapsed_ms;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    uint64_t t0 = mono_ms();

    w->got = bus_wait(w->b, w->after, w->timeout_ms);
    w->elapsed_ms = mono_ms() - t0;
    return NULL;
}

struct publisher {
    struct store *s;
    int n;
    atomic_int *failures;
};

static void *publish_thread(void *p)
{
    struct publisher *pb = p;

    for (int i = 0; i < pb->n; i++) {
        struct pub q = {"task.created", json_pack("{s:i}", "i", i)};
        struct pub_arg a = {.pubs = &q, .n = 1};
        if (store_write(pb->s, NULL, "test", tx_publish, &a) != RD_OK || a.publish_rc[0] != RD_OK)
            atomic_fetch_add(pb->failures, 1);
    }
    return NULL;
}

static void test_wait_wakes_and_times_out(void **state)
{
    struct fx *f = *state;
    struct waiter w = {.b = f->b, .after = 0, .timeout_ms = 5000};
    atomic_int failures = 0;
    struct publisher pb = {.s = f->s, .n = 1, .failures = &failures};
    pthread_t t, p;
    uint64_t t0;

    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    sleep_ms(50);
    assert_int_equal(pthread_create(&p, NULL, publish_thread, &pb), 0);
    pthread_join(p, NULL);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(w.got, 1);
    assert_true(w.elapsed_ms < 2000);

    /* Already past: returns at once. */
    t0 = mono_ms();
    assert_int_equal(bus_wait(f->b, 0, 5000), 1);
    assert_true(mono_ms() - t0 < 1000);
    /* Nothing new: times out with the last id. */
    t0 = mono_ms();
    assert_int_equal(bus_wait(f->b, 1, 150), 1);
    assert_true(mono_ms() - t0 >= 140);
}

static void test_shutdown_wakes_waiters(void **state)
{
    struct fx *f = *state;
    struct waiter w[3];
    pthread_t t[3];
    uint64_t t0;

    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter){.b = f->b, .after = 0, .timeout_ms = 10000};
        assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
    }
    sleep_ms(50);
    assert_false(bus_is_shutdown(f->b));
    bus_shutdown(f->b);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_true(w[i].elapsed_ms < 2000);
        assert_int_equal(w[i].got, 0);
    }
    assert_true(bus_is_shutdown(f->b));
    t0 = mono_ms();
    bus_wait(f->b, 0, 5000);
    assert_true(mono_ms() - t0 < 1000);
}

static int64_t count_events(struct fx *f, const char *where)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[200];
    int64_t n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM core_events %s", where);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int tx_sql(struct rd_tx *tx, void *arg)
{
    return sqlite3_exec(((struct store_tx *)tx)->db, arg, NULL, NULL, NULL) == SQLITE_OK ? RD_OK
                                                                                         : RD_EIO;
}

static void test_prune_keeps_newest(void **state)
{
    struct fx *f = *state;
    const uint64_t hour = 3600u * 1000u;
    uint64_t now;
    char sql[300];

    for (int i = 0; i < 30; i++)
        publish1(f->s, "task.created", json_object());
    now = (uint64_t)time(NULL) * 1000u + 1000u;
    /* Ids 1..20 are two hours old, 21..30 are new. */
    snprintf(sql, sizeof(sql), "UPDATE core_events SET time_ms = %llu WHERE id <= 20",
             (unsigned long long)(now - 2 * hour));
    assert_int_equal(store_write(f->s, NULL, "test", tx_sql, sql), RD_OK);

    assert_int_equal(bus_prune(f->s, now, 10 * hour, 0), 0); /* nothing that old */
    assert_int_equal(bus_prune(f->s, now, 2 * hour, 0), 0);  /* cutoff is strict */
    assert_int_equal(bus_prune(f->s, now, hour, 25), 5);     /* 1..5: beyond newest 25 */
    assert_int_equal(count_events(f, "WHERE id <= 5"), 0);
    assert_int_equal(bus_prune(f->s, now, hour, 0), 15); /* old ones; new stay */
    assert_int_equal(count_events(f, ""), 10);
    assert_int_equal(count_events(f, "WHERE id < 21"), 0);

    /* All old now; keep_min still keeps the newest. */
    snprintf(sql, sizeof(sql), "UPDATE core_events SET time_ms = 1000");
    assert_int_equal(store_write(f->s, NULL, "test", tx_sql, sql), RD_OK);
    assert_int_equal(bus_prune(f->s, now, hour, 4), 6);
    assert_int_equal(count_events(f, "WHERE id BETWEEN 27 AND 30"), 4);
    assert_int_equal(count_events(f, ""), 4);
    assert_int_equal(bus_prune(f->s, now, now + 1, 0), 0); /* keep_ms beyond the epoch */
    assert_int_equal(bus_prune(f->s, now, hour, 100), 0);

    /* A backlog larger than one batch goes in several transactions. */
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000)"
             " INSERT INTO core_events(type, source, time_ms, data)"
             " SELECT 'x.y', 'test', 1000, '{}' FROM n");
    assert_int_equal(store_write(f->s, NULL, "test", tx_sql, sql), RD_OK);
    assert_int_equal(bus_prune(f->s, now, hour, 0), 25004);
    assert_int_equal(count_events(f, ""), 0);
    /* Ids are still never reused. */
    assert_int_equal(publish1(f->s, "task.created", json_object()), 25031);
}

/* ------------------------------------------------------------- fan-out */

struct rec {
    char log[1024];
    struct bus *b;
    int n_calls;
};

static void rec_add(struct rec *r, const char *who, uint64_t id)
{
    size_t len = strlen(r->log);

    snprintf(r->log + len, sizeof(r->log) - len, "%s%s:%llu", len ? " " : "", who,
             (unsigned long long)id);
}

static void on_task(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)type;
    assert_int_equal(json_integer_value(json_object_get(data, "n")), (json_int_t)id);
    rec_add(arg, "task", id);
}

static void on_build(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)type;
    (void)data;
    rec_add(arg, "build", id);
}

static void on_all(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)type;
    (void)data;
    rec_add(arg, "all", id);
}

static void test_fanout_patterns_in_order(void **state)
{
    struct fx *f = *state;
    struct rec r = {.n_calls = 0};
    int owner_a, owner_b;

    assert_int_equal(bus_subscribe(f->b, &owner_a, "task", on_task, &r), RD_OK);
    assert_int_equal(bus_subscribe(f->b, &owner_b, "build.*", on_build, &r), RD_OK);
    assert_int_equal(bus_subscribe(f->b, &owner_a, "*", on_all, &r), RD_OK);
    assert_int_equal(bus_subscribe(f->b, &owner_a, "Bad", on_all, &r), RD_EINVAL);
    assert_int_equal(bus_subscribe(f->b, &owner_a, "", on_all, &r), RD_EINVAL);
    assert_int_equal(bus_subscribe(f->b, &owner_a, "task", NULL, &r), RD_EINVAL);
    {
        struct pub p[3] = {{"task.created", json_pack("{s:i}", "n", 1)},
                           {"build.done", json_pack("{s:i}", "n", 2)},
                           {"task", json_pack("{s:i}", "n", 3)}};
        struct pub_arg a = {.pubs = p, .n = 3};
        assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_OK);
    }
    publish1(f->s, "deploy.started", json_pack("{s:i}", "n", 4));
    assert_string_equal(r.log, ""); /* nothing before the loop runs */
    loopq_drain(f->q);
    assert_string_equal(r.log, "task:1 all:1 build:2 all:2 task:3 all:3 all:4");

    r.log[0] = '\0';
    bus_unsubscribe_owner(f->b, &owner_a);
    publish1(f->s, "build.done", json_pack("{s:i}", "n", 5));
    publish1(f->s, "task.created", json_pack("{s:i}", "n", 6));
    loopq_drain(f->q);
    assert_string_equal(r.log, "build:5");

    /* With no subscriber left nothing is queued at all. */
    r.log[0] = '\0';
    bus_unsubscribe_owner(f->b, &owner_b);
    publish1(f->s, "build.done", json_pack("{s:i}", "n", 7));
    loopq_drain(f->q);
    assert_string_equal(r.log, "");
}

static int owner_self, owner_new;

static void on_late(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)type;
    (void)data;
    rec_add(arg, "late", id);
}

/* Unsubscribes itself and subscribes another callback, from inside the
   fan-out: neither may deadlock; the new one sees only later events. */
static void on_churn(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct rec *r = arg;
    (void)type;
    (void)data;

    rec_add(r, "churn", id);
    r->n_calls++;
    bus_unsubscribe_owner(r->b, &owner_self);
    assert_int_equal(bus_subscribe(r->b, &owner_new, "*", on_late, r), RD_OK);
}

static void test_fanout_callback_changes_subscriptions(void **state)
{
    struct fx *f = *state;
    struct rec r = {.b = f->b};
    struct pub p[2] = {{"a.x", json_object()}, {"a.y", json_object()}};
    struct pub_arg a = {.pubs = p, .n = 2};

    assert_int_equal(bus_subscribe(f->b, &owner_self, "a", on_churn, &r), RD_OK);
    assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_OK);
    loopq_drain(f->q);
    assert_string_equal(r.log, "churn:1 late:2");
    assert_int_equal(r.n_calls, 1);
    bus_unsubscribe_owner(f->b, &owner_new);
}

/* A real loop thread: events from 4 writer threads arrive in id order, on
   the loop thread only. */
struct loop_rec {
    pthread_t loop_thread;
    atomic_int n;
    atomic_int wrong_thread;
    atomic_int out_of_order;
    uint64_t last;
    atomic_bool in_slow;
};

static void on_ordered(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct loop_rec *lr = arg;
    (void)type;
    (void)data;

    if (!pthread_equal(pthread_self(), lr->loop_thread))
        atomic_fetch_add(&lr->wrong_thread, 1);
    if (id <= lr->last)
        atomic_fetch_add(&lr->out_of_order, 1);
    lr->last = id;
    atomic_fetch_add(&lr->n, 1);
}

static void on_slow(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct loop_rec *lr = arg;
    (void)id;
    (void)type;
    (void)data;

    atomic_store(&lr->in_slow, true);
    sleep_ms(200);
    atomic_store(&lr->in_slow, false);
}

static void *loop_thread(void *p)
{
    event_base_loop(p, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void test_fanout_on_loop_thread(void **state)
{
    struct fx *f = *state;
    struct loop_rec lr = {0};
    struct publisher pb[4];
    pthread_t loop, t[4];
    atomic_int failures = 0;
    int owner_slow;
    uint64_t t0;

    assert_int_equal(pthread_create(&loop, NULL, loop_thread, f->base), 0);
    lr.loop_thread = loop;
    assert_int_equal(bus_subscribe(f->b, f, "task", on_ordered, &lr), RD_OK);
    for (int i = 0; i < 4; i++) {
        pb[i] = (struct publisher){.s = f->s, .n = 50, .failures = &failures};
        assert_int_equal(pthread_create(&t[i], NULL, publish_thread, &pb[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    t0 = mono_ms();
    while (atomic_load(&lr.n) < 200 && mono_ms() - t0 < 10000)
        sleep_ms(5);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&lr.n), 200);
    assert_int_equal(atomic_load(&lr.wrong_thread), 0);
    assert_int_equal(atomic_load(&lr.out_of_order), 0);

    /* Unsubscribing from another thread waits for a running callback of
       that owner, so its arg may be freed right after. */
    assert_int_equal(bus_subscribe(f->b, &owner_slow, "slow", on_slow, &lr), RD_OK);
    publish1(f->s, "slow.x", json_object());
    t0 = mono_ms();
    while (!atomic_load(&lr.in_slow) && mono_ms() - t0 < 5000)
        sleep_ms(1);
    assert_true(atomic_load(&lr.in_slow));
    bus_unsubscribe_owner(f->b, &owner_slow);
    assert_false(atomic_load(&lr.in_slow));

    bus_unsubscribe_owner(f->b, f);
    event_base_loopbreak(f->base);
    pthread_join(loop, NULL);
}

/* --------------------------------------------------- the events endpoint */

struct fake_req {
    struct rd_req pub;
    const char *accept, *last_event_id;
    const char *after, *limit, *type, *wait;

    pthread_mutex_t lock;
    int status;
    char content_type[64];
    char extra_headers[128];
    json_t *json; /* reply_json body */
    char err_code[64];
    char err_msg[256];
    char *stream; /* everything written */
    size_t stream_len;
    int n_starts, n_replies;
    int64_t length; /* reply_start's */
    bool fail_writes;
};

static struct fake_req *fake_of(struct rd_req *r)
{
    return (struct fake_req *)r;
}

static const char *fake_param(struct rd_req *r, const char *name)
{
    struct fake_req *q = fake_of(r);

    if (strcmp(name, "after") == 0)
        return q->after;
    if (strcmp(name, "limit") == 0)
        return q->limit;
    if (strcmp(name, "type") == 0)
        return q->type;
    if (strcmp(name, "wait") == 0)
        return q->wait;
    return NULL;
}

static const char *fake_header(struct rd_req *r, const char *name)
{
    struct fake_req *q = fake_of(r);

    if (strcasecmp(name, "Accept") == 0)
        return q->accept;
    if (strcasecmp(name, "Last-Event-ID") == 0)
        return q->last_event_id;
    return NULL;
}

static int fake_reply_json(struct rd_req *r, int status, json_t *body)
{
    struct fake_req *q = fake_of(r);

    q->status = status;
    json_decref(q->json);
    q->json = body;
    q->n_replies++;
    return RD_OK;
}

static int fake_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt,
                             va_list ap) RD_PRINTF(4, 0);
static int fake_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt,
                             va_list ap)
{
    struct fake_req *q = fake_of(r);

    q->status = status;
    snprintf(q->err_code, sizeof(q->err_code), "%s", code);
    vsnprintf(q->err_msg, sizeof(q->err_msg), fmt, ap);
    q->n_replies++;
    return RD_OK;
}

static int fake_reply_start(struct rd_req *r, int status, const char *content_type,
                            const char *extra_headers, int64_t length)
{
    struct fake_req *q = fake_of(r);

    /* Runs on the handler thread: record, the test thread asserts. */
    q->length = length;
    q->status = status;
    snprintf(q->content_type, sizeof(q->content_type), "%s", content_type);
    snprintf(q->extra_headers, sizeof(q->extra_headers), "%s", extra_headers ? extra_headers : "");
    q->n_starts++;
    q->n_replies++;
    return RD_OK;
}

static int fake_reply_write(struct rd_req *r, const void *data, size_t len)
{
    struct fake_req *q = fake_of(r);
    int rc = RD_OK;
    char *s;

    pthread_mutex_lock(&q->lock);
    if (q->fail_writes) {
        rc = RD_EIO;
    } else if ((s = realloc(q->stream, q->stream_len + len + 1))) {
        memcpy(s + q->stream_len, data, len);
        q->stream = s;
        q->stream_len += len;
        s[q->stream_len] = '\0';
    } else {
        rc = RD_ENOMEM;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static const struct rd_host_api fake_api = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_host_api),
    .req_param = fake_param,
    .req_header = fake_header,
    .reply_json = fake_reply_json,
    .reply_errorv = fake_reply_errorv,
    .reply_start = fake_reply_start,
    .reply_write = fake_reply_write,
};

static void fake_init(struct fake_req *q)
{
    memset(q, 0, sizeof(*q));
    q->pub.api = &fake_api;
    pthread_mutex_init(&q->lock, NULL);
}

static void fake_fini(struct fake_req *q)
{
    json_decref(q->json);
    free(q->stream);
    pthread_mutex_destroy(&q->lock);
}

/* A copy of what was streamed so far. */
static char *fake_stream(struct fake_req *q)
{
    char *s;

    pthread_mutex_lock(&q->lock);
    s = strdup(q->stream ? q->stream : "");
    pthread_mutex_unlock(&q->lock);
    assert_non_null(s);
    return s;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Waits up to 5 s until the stream contains needle n times. */
static bool fake_wait_for(struct fake_req *q, const char *needle, size_t n)
{
    uint64_t t0 = mono_ms();

    while (mono_ms() - t0 < 5000) {
        char *s = fake_stream(q);
        bool is_there = count_of(s, needle) >= n;
        free(s);
        if (is_there)
            return true;
        sleep_ms(2);
    }
    return false;
}

static struct host *fake_host_of(struct fx *f)
{
    struct host *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    h->store = f->s;
    h->bus = f->b;
    return h;
}

struct handler_run {
    struct host *h;
    struct fake_req *q;
    int rc;
    uint64_t elapsed_ms;
    atomic_bool finished;
};

static void *handler_thread(void *p)
{
    struct handler_run *hr = p;
    uint64_t t0 = mono_ms();

    hr->rc = events_handle(&hr->q->pub, hr->h);
    hr->elapsed_ms = mono_ms() - t0;
    atomic_store(&hr->finished, true);
    return NULL;
}

static void test_api_sse_frame(void **state)
{
    struct events_buf buf = {0};
    json_t *env =
        json_pack("{s:i,s:s,s:s,s:s,s:{s:s}}", "id", 7, "type", "a.b", "time",
                  "2026-11-22T10:34:25.123Z", "source", "core", "data", "msg", "line1\nline2\r\n");
    (void)state;

    assert_int_equal(events_sse_frame(&buf, env), RD_OK);
    assert_string_equal(
        buf.data, "id: 7\ndata: {\"id\":7,\"type\":\"a.b\",\"time\":\"2026-11-22T10:34:25.123Z\","
                  "\"source\":\"core\",\"data\":{\"msg\":\"line1\\nline2\\r\\n\"}}\n\n");
    assert_int_equal(events_sse_frame(&buf, env), RD_OK);
    assert_int_equal(count_of(buf.data, "\n\n"), 2);
    assert_int_equal(count_of(buf.data, "\n"), 6);
    events_buf_fini(&buf);
    json_decref(env);
}

static void test_api_parse_numbers(void **state)
{
    uint64_t v = 0;
    (void)state;

    assert_true(events_parse_u64("0", 10, &v) && v == 0);
    assert_true(events_parse_u64("9223372036854775807", INT64_MAX, &v) && v == INT64_MAX);
    assert_false(events_parse_u64("9223372036854775808", INT64_MAX, &v));
    assert_false(events_parse_u64("18446744073709551616", UINT64_MAX, &v));
    assert_true(events_parse_u64("1000", 1000, &v) && v == 1000);
    assert_false(events_parse_u64("1001", 1000, &v));
    assert_false(events_parse_u64("", 10, &v));
    assert_false(events_parse_u64(NULL, 10, &v));
    assert_false(events_parse_u64("-1", 10, &v));
    assert_false(events_parse_u64("+1", 10, &v));
    assert_false(events_parse_u64(" 1", 10, &v));
    assert_false(events_parse_u64("1x", 10, &v));
}

static void test_api_bad_requests(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    static const struct {
        const char *accept, *last_event_id, *after, *limit, *type, *wait, *names;
    } cases[] = {
        {NULL, NULL, "abc", NULL, NULL, NULL, "after"},
        {NULL, NULL, "-1", NULL, NULL, NULL, "after"},
        {NULL, NULL, "99999999999999999999", NULL, NULL, NULL, "after"},
        {NULL, NULL, NULL, "0", NULL, NULL, "limit"},
        {NULL, NULL, NULL, "1001", NULL, NULL, "limit"},
        {NULL, NULL, NULL, "ten", NULL, NULL, "limit"},
        {NULL, NULL, NULL, NULL, "Task", NULL, "type"},
        {NULL, NULL, NULL, NULL, "task;x", NULL, "type"},
        {NULL, NULL, NULL, NULL, NULL, "31", "wait"},
        {NULL, NULL, NULL, NULL, NULL, "1.5", "wait"},
        {"text/event-stream", "abc", NULL, NULL, NULL, NULL, "Last-Event-ID"},
        {"text/event-stream", NULL, "x", NULL, NULL, NULL, "after"},
        {"text/event-stream", NULL, NULL, NULL, "a b", NULL, "type"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_req q;

        fake_init(&q);
        q.accept = cases[i].accept;
        q.last_event_id = cases[i].last_event_id;
        q.after = cases[i].after;
        q.limit = cases[i].limit;
        q.type = cases[i].type;
        q.wait = cases[i].wait;
        assert_int_equal(events_handle(&q.pub, h), RD_OK);
        assert_int_equal(q.status, 400);
        assert_int_equal(q.n_replies, 1);
        assert_int_equal(q.n_starts, 0);
        assert_string_equal(q.err_code, "bad_request");
        if (strncmp(q.err_msg, cases[i].names, strlen(cases[i].names)) != 0)
            fail_msg("case %zu: '%s' does not name %s", i, q.err_msg, cases[i].names);
        fake_fini(&q);
    }
    free(h);
}

static void test_api_poll(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    struct fake_req q;
    json_t *events;

    publish_ten(f);

    fake_init(&q);
    q.accept = "application/json";
    assert_int_equal(events_handle(&q.pub, h), RD_OK);
    assert_int_equal(q.status, 200);
    events = json_object_get(q.json, "events");
    assert_ids(events, (const int[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 10);
    assert_true(json_equal(json_array_get(events, 4), json_array_get(f->hooked, 4)));
    fake_fini(&q);

    fake_init(&q);
    q.after = "2";
    q.limit = "3";
    assert_int_equal(events_handle(&q.pub, h), RD_OK);
    assert_ids(json_object_get(q.json, "events"), (const int[]){3, 4, 5}, 3);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 5);
    fake_fini(&q);

    fake_init(&q);
    q.after = "3";
    q.type = "build,deploy";
    q.limit = "2";
    assert_int_equal(events_handle(&q.pub, h), RD_OK);
    assert_ids(json_object_get(q.json, "events"), (const int[]){4, 6}, 2);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 6);
    fake_fini(&q);

    /* Nothing after: last_id is what the client sent. */
    fake_init(&q);
    q.after = "10";
    q.wait = "0";
    assert_int_equal(events_handle(&q.pub, h), RD_OK);
    assert_int_equal(json_array_size(json_object_get(q.json, "events")), 0);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 10);
    assert_int_equal(json_integer_value(json_object_get(q.json, "newest_id")), 10);
    fake_fini(&q);
    free(h);
}

static void test_api_long_poll(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    struct fake_req q;
    struct handler_run hr = {.h = h, .q = &q};
    pthread_t t;

    publish_ten(f);

    /* Wakes on a matching commit; skips one that does not match. */
    fake_init(&q);
    q.after = "10";
    q.type = "build";
    q.wait = "5";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    sleep_ms(100);
    publish1(f->s, "task.created", json_pack("{s:i}", "n", 11));
    sleep_ms(100);
    /* A non-matching event must not end the poll (a correct handler can
       never have returned here, whatever the machine's load). */
    assert_false(atomic_load(&hr.finished));
    publish1(f->s, "build.done", json_pack("{s:i}", "n", 12));
    pthread_join(t, NULL);
    assert_int_equal(hr.rc, RD_OK);
    assert_int_equal(q.status, 200);
    assert_ids(json_object_get(q.json, "events"), (const int[]){12}, 1);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 12);
    fake_fini(&q);

    /* Times out empty. */
    fake_init(&q);
    q.after = "12";
    q.wait = "1";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    pthread_join(t, NULL);
    assert_true(hr.elapsed_ms >= 990 && hr.elapsed_ms < 3000);
    assert_int_equal(q.status, 200);
    assert_int_equal(json_array_size(json_object_get(q.json, "events")), 0);
    assert_int_equal(json_integer_value(json_object_get(q.json, "last_id")), 12);
    fake_fini(&q);

    /* Shutdown ends a long poll at once. */
    fake_init(&q);
    q.after = "12";
    q.wait = "30";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    sleep_ms(50);
    bus_shutdown(f->b);
    pthread_join(t, NULL);
    assert_true(hr.elapsed_ms < 3000);
    assert_int_equal(q.status, 200);
    fake_fini(&q);
    free(h);
}

/* The expected frames for ids, from the table. */
static char *frames_for(struct fx *f, const int *ids, size_t n)
{
    struct events_buf buf = {0};
    json_t *all = NULL;
    size_t i;
    json_t *env;

    assert_int_equal(bus_read_after(f->s, 0, NULL, 100000, &all), RD_OK);
    for (size_t k = 0; k < n; k++)
        json_array_foreach(all, i,
                           env) if (json_integer_value(json_object_get(env, "id")) == ids[k])
            assert_int_equal(events_sse_frame(&buf, env), RD_OK);
    json_decref(all);
    if (!buf.data)
        return strdup("");
    return buf.data;
}

static void test_api_sse_resume(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    struct fake_req q;
    struct handler_run hr = {.h = h, .q = &q};
    pthread_t t;
    char *got, *want, *frames;

    publish_ten(f);
    fake_init(&q);
    q.accept = "text/html, text/event-stream;q=0.9";
    q.last_event_id = "7";
    q.after = "2"; /* the header wins */
    q.type = "task,build";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    assert_true(fake_wait_for(&q, "id: ", 3));
    publish1(f->s, "deploy.started", json_pack("{s:i}", "n", 11));
    publish1(f->s, "task.created", json_pack("{s:i}", "n", 12));
    assert_true(fake_wait_for(&q, "id: ", 4));
    bus_shutdown(f->b);
    pthread_join(t, NULL);

    assert_int_equal(hr.rc, RD_OK);
    assert_int_equal(q.status, 200);
    assert_int_equal(q.n_starts, 1);
    assert_int_equal(q.length, -1);
    assert_string_equal(q.content_type, "text/event-stream");
    assert_string_equal(q.extra_headers, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    frames = frames_for(f, (const int[]){8, 9, 10, 12}, 4);
    want = malloc(strlen(frames) + 32);
    assert_non_null(want);
    strcpy(want, "retry: 2000\n\n");
    strcat(want, frames);
    got = fake_stream(&q);
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(frames);
    fake_fini(&q);
    free(h);
}

static void test_api_sse_new_only_ping_and_client_gone(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    struct fake_req q;
    struct handler_run hr = {.h = h, .q = &q};
    pthread_t t;
    char *got;

    publish_ten(f);
    events_ping_ms = 100;
    fake_init(&q);
    q.accept = "text/event-stream";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    assert_true(fake_wait_for(&q, "retry: 2000\n\n", 1));
    publish1(f->s, "task.created", json_pack("{s:i}", "n", 11));
    assert_true(fake_wait_for(&q, "id: 11\n", 1));
    /* Silence brings pings; a failed write (client gone) ends the stream. */
    assert_true(fake_wait_for(&q, ": ping\n\n", 2));
    pthread_mutex_lock(&q.lock);
    q.fail_writes = true;
    pthread_mutex_unlock(&q.lock);
    pthread_join(t, NULL);
    events_ping_ms = EVENTS_PING_MS;

    assert_int_equal(hr.rc, RD_OK);
    assert_false(bus_is_shutdown(f->b));
    got = fake_stream(&q);
    assert_int_equal(count_of(got, "id: "), 1); /* 1..10 were there before */
    assert_int_equal(strncmp(got, "retry: 2000\n\nid: 11\ndata: {\"id\":11,", 35), 0);
    free(got);
    fake_fini(&q);
    free(h);
}

static void test_api_sse_batches_with_filter(void **state)
{
    struct fx *f = *state;
    struct host *h = fake_host_of(f);
    struct fake_req q;
    struct handler_run hr = {.h = h, .q = &q};
    pthread_t t;
    char *got;
    const char *p;
    long prev = 0;
    size_t n = 0;
    struct pub *pubs = calloc(1300, sizeof(*pubs));
    struct pub_arg a = {.pubs = pubs, .n = 1300};

    assert_non_null(pubs);
    for (int i = 0; i < 1300; i++)
        pubs[i] =
            (struct pub){i % 2 ? "task.created" : "build.done", json_pack("{s:i}", "n", i + 1)};
    assert_int_equal(store_write(f->s, NULL, "test", tx_publish, &a), RD_OK);
    free(pubs);

    fake_init(&q);
    q.accept = "text/event-stream";
    q.after = "0";
    q.type = "build";
    assert_int_equal(pthread_create(&t, NULL, handler_thread, &hr), 0);
    assert_true(fake_wait_for(&q, "id: ", 650));
    bus_shutdown(f->b);
    pthread_join(t, NULL);

    got = fake_stream(&q);
    for (p = got; (p = strstr(p, "id: ")); p += 4) {
        long id = strtol(p + 4, NULL, 10);
        assert_true(id > prev);
        assert_int_equal(id % 2, 1); /* build.done got the odd ids */
        prev = id;
        n++;
    }
    assert_int_equal(n, 650);
    free(got);
    fake_fini(&q);
    free(h);
}

struct route_rec {
    int n;
    void *owner;
    char owner_name[16], method[8], path[32];
    const char *scope;
    unsigned flags;
    rd_route_fn fn;
    void *arg;
};

static struct route_rec route_rec;

int test_router_add(struct router *rt, void *owner, const char *owner_name, const char *method,
                    const char *path, const char *scope, unsigned flags, rd_route_fn fn, void *arg)
{
    (void)rt;
    route_rec.n++;
    route_rec.owner = owner;
    snprintf(route_rec.owner_name, sizeof(route_rec.owner_name), "%s", owner_name);
    snprintf(route_rec.method, sizeof(route_rec.method), "%s", method);
    snprintf(route_rec.path, sizeof(route_rec.path), "%s", path);
    route_rec.scope = scope;
    route_rec.flags = flags;
    route_rec.fn = fn;
    route_rec.arg = arg;
    return RD_OK;
}

static void test_api_route_registration(void **state)
{
    struct host *h = calloc(1, sizeof(*h));
    (void)state;

    assert_non_null(h);
    assert_int_equal(api_events_routes(h), RD_OK);
    assert_int_equal(route_rec.n, 1);
    assert_ptr_equal(route_rec.owner, &h->core);
    assert_string_equal(route_rec.owner_name, "core");
    assert_string_equal(route_rec.method, "GET");
    assert_string_equal(route_rec.path, "/api/v1/events");
    assert_null(route_rec.scope);
    assert_int_equal(route_rec.flags, RD_ROUTE_RAW);
    assert_ptr_equal(route_rec.fn, events_handle);
    assert_ptr_equal(route_rec.arg, h);
    free(h);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_ids_increase_never_reused),
        T(test_rollback_neither_stored_nor_fanned_out),
        T(test_hook_after_commit_only),
        T(test_type_validation),
        cmocka_unit_test(test_type_and_filter_match),
        T(test_read_after_resume),
        T(test_wait_wakes_and_times_out),
        T(test_shutdown_wakes_waiters),
        T(test_prune_keeps_newest),
        T(test_fanout_patterns_in_order),
        T(test_fanout_callback_changes_subscriptions),
        T(test_fanout_on_loop_thread),
        cmocka_unit_test(test_api_sse_frame),
        cmocka_unit_test(test_api_parse_numbers),
        T(test_api_bad_requests),
        T(test_api_poll),
        T(test_api_long_poll),
        T(test_api_sse_resume),
        T(test_api_sse_new_only_ping_and_client_gone),
        T(test_api_sse_batches_with_filter),
        cmocka_unit_test(test_api_route_registration),
    };
#undef T

    /* The loop thread test makes events active from other threads. */
    if (evthread_use_pthreads() != 0)
        return 1;
    log_set_level(RD_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
