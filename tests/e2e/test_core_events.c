/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_core_events.c -- the event firehose through the real
 * daemon: JSON polling (after, limit, type, wait), Server-Sent Events (live
 * delivery, retry frame, Last-Event-ID and ?after resume, type filter), and
 * durability: events committed before a kill -9 are all there after a
 * restart on the same state directory, and an SSE client that resumes with
 * its Last-Event-ID gets exactly the events that follow (no gap, no
 * duplicate, ids strictly increasing). Events are made by the example
 * module (POST /api/v1/example/notes publishes example.noted).
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/e2e/harness.h"

#define NOTES "/api/v1/example/notes"

/* Creates a note with text; returns its id. */
static json_int_t make_note(struct e2e_daemon *d, const char *text)
{
    struct e2e_resp r;
    json_t *body = json_pack("{s:s}", "text", text);
    char *s = json_dumps(body, JSON_COMPACT);
    json_int_t id;

    json_decref(body);
    if (e2e_post(d, NOTES, d->admin_token, s, &r) != 201)
        fprintf(stderr, "POST notes -> %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 201);
    id = json_integer_value(json_object_get(r.json, "id"));
    assert_true(id > 0);
    e2e_resp_free(&r);
    free(s);
    return id;
}

static void assert_envelope(json_t *env, const char *type)
{
    const char *t = json_string_value(json_object_get(env, "time"));

    assert_true(json_is_object(env));
    assert_true(json_is_integer(json_object_get(env, "id")));
    assert_true(json_integer_value(json_object_get(env, "id")) > 0);
    assert_string_equal(json_string_value(json_object_get(env, "type")), type);
    assert_non_null(t);
    /* RFC 3339 UTC: 2026-11-22T10:34:25.123Z */
    assert_true(strlen(t) >= 20);
    assert_int_equal(t[4], '-');
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[strlen(t) - 1], 'Z');
    assert_string_equal(json_string_value(json_object_get(env, "source")), "example");
    assert_true(json_is_object(json_object_get(env, "data")));
}

static json_int_t env_id(json_t *env)
{
    return json_integer_value(json_object_get(env, "id"));
}

static const char *env_text(json_t *env)
{
    return json_string_value(json_object_get(json_object_get(env, "data"), "text"));
}

/* GET path as JSON; returns the "events" array (new reference), checks
   last_id. */
static json_t *poll_events(struct e2e_daemon *d, const char *path, json_int_t *last_id)
{
    struct e2e_resp r;
    json_t *events;

    if (e2e_get(d, path, NULL, &r) != 200)
        fprintf(stderr, "GET %s -> %d %s\n", path, r.status, r.body);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "application/json"));
    events = json_object_get(r.json, "events");
    assert_true(json_is_array(events));
    assert_true(json_is_integer(json_object_get(r.json, "last_id")));
    if (last_id)
        *last_id = json_integer_value(json_object_get(r.json, "last_id"));
    json_incref(events);
    e2e_resp_free(&r);
    return events;
}

static void assert_increasing(json_t *events)
{
    size_t i;
    json_t *env;
    json_int_t prev = 0;

    json_array_foreach(events, i, env)
    {
        assert_true(env_id(env) > prev);
        prev = env_id(env);
    }
}

/* ----------------------------------------------------------- JSON polling */

struct long_poll {
    struct e2e_daemon *d;
    char path[256];
    struct e2e_resp r;
    uint64_t took_ms;
};

static void *long_poll_thread(void *arg)
{
    struct long_poll *lp = arg;
    uint64_t t0 = e2e_now_ms();

    e2e_get(lp->d, lp->path, NULL, &lp->r);
    lp->took_ms = e2e_now_ms() - t0;
    return NULL;
}

static void test_poll_json(void **state)
{
    struct e2e_daemon *d = *state;
    json_int_t ids[5], last;
    json_t *events, *all, *env;
    char path[256];
    size_t i;
    struct e2e_resp r;

    for (i = 0; i < 5; i++) {
        char text[32];
        snprintf(text, sizeof(text), "poll-%zu", i);
        ids[i] = make_note(d, text);
    }

    all = poll_events(d, "/api/v1/events?type=example", &last);
    assert_int_equal(json_array_size(all), 5);
    assert_increasing(all);
    json_array_foreach(all, i, env)
    {
        char text[32];
        assert_envelope(env, "example.noted");
        snprintf(text, sizeof(text), "poll-%zu", i);
        assert_string_equal(env_text(env), text);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(env, "data"), "id")),
                         ids[i]);
    }
    assert_int_equal(last, env_id(json_array_get(all, 4)));

    /* the same with the exact type, a type pattern, and no filter */
    events = poll_events(d, "/api/v1/events?type=example.noted", NULL);
    assert_true(json_equal(events, all));
    json_decref(events);
    events = poll_events(d, "/api/v1/events?type=example.no*", NULL);
    assert_true(json_equal(events, all));
    json_decref(events);
    events = poll_events(d, "/api/v1/events?limit=1000", NULL);
    assert_true(json_array_size(events) >= 5);
    json_decref(events);

    /* a type that matches nothing */
    events = poll_events(d, "/api/v1/events?type=nomatch", NULL);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);
    events = poll_events(d, "/api/v1/events?type=exampl", NULL);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);

    /* after: exactly the later ones */
    snprintf(path, sizeof(path), "/api/v1/events?type=example&after=%lld",
             (long long)env_id(json_array_get(all, 1)));
    events = poll_events(d, path, NULL);
    assert_int_equal(json_array_size(events), 3);
    for (i = 0; i < 3; i++)
        assert_true(json_equal(json_array_get(events, i), json_array_get(all, i + 2)));
    json_decref(events);

    /* paging with limit and last_id: all of them, once each, in order */
    {
        json_t *paged = json_array();
        json_int_t after = 0;
        for (int pages = 0; pages < 10; pages++) {
            json_int_t l;
            snprintf(path, sizeof(path), "/api/v1/events?type=example&limit=2&after=%lld",
                     (long long)after);
            events = poll_events(d, path, &l);
            assert_true(json_array_size(events) <= 2);
            json_array_extend(paged, events);
            json_decref(events);
            if (l == after)
                break;
            after = l;
        }
        assert_true(json_equal(paged, all));
        json_decref(paged);
    }

    /* bad parameters */
    {
        static const char *const bad[] = {
            "/api/v1/events?after=abc",    "/api/v1/events?after=-1",
            "/api/v1/events?limit=0",      "/api/v1/events?limit=x",
            "/api/v1/events?wait=forever", "/api/v1/events?type=has%20space",
        };
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            e2e_get(d, bad[i], NULL, &r);
            if (r.status != 400)
                fprintf(stderr, "GET %s -> %d %s\n", bad[i], r.status, r.body);
            assert_int_equal(r.status, 400);
            assert_non_null(e2e_error_message(&r));
            e2e_resp_free(&r);
        }
    }

    /* wait: a long poll with nothing new returns empty after the wait */
    {
        uint64_t t0 = e2e_now_ms(), took;
        snprintf(path, sizeof(path), "/api/v1/events?type=example&after=%lld&wait=1",
                 (long long)last);
        events = poll_events(d, path, NULL);
        took = e2e_now_ms() - t0;
        assert_int_equal(json_array_size(events), 0);
        assert_true(took >= 900);
        assert_true(took < 5000);
        json_decref(events);
    }

    /* wait: a long poll is woken by a new event, long before its wait ends */
    {
        struct long_poll lp = {.d = d};
        pthread_t th;
        json_int_t id;

        snprintf(lp.path, sizeof(lp.path), "/api/v1/events?type=example&after=%lld&wait=20",
                 (long long)last);
        assert_int_equal(pthread_create(&th, NULL, long_poll_thread, &lp), 0);
        /* the waiter may or may not be waiting yet; either way it must see
           the event, and well before 20 s */
        e2e_sleep_ms(200);
        id = make_note(d, "wake up");
        pthread_join(th, NULL);
        assert_int_equal(lp.r.status, 200);
        events = json_object_get(lp.r.json, "events");
        assert_int_equal(json_array_size(events), 1);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(json_array_get(events, 0), "data"), "id")),
                         id);
        assert_true(lp.took_ms < 10000);
        e2e_resp_free(&lp.r);
    }
    json_decref(all);
    e2e_pass(d);
}

/* ---------------------------------------------------------------- SSE */

static void assert_sse_frames(json_t *snap)
{
    json_t *frames = json_object_get(snap, "frames"), *f;
    size_t i;

    json_array_foreach(frames, i, f)
    {
        json_t *ev = json_array_get(json_object_get(snap, "events"), i);
        char want[32];
        /* the frame's id line is the envelope's id */
        snprintf(want, sizeof(want), "%lld", (long long)env_id(ev));
        assert_non_null(json_string_value(json_object_get(f, "id")));
        assert_string_equal(json_string_value(json_object_get(f, "id")), want);
    }
    assert_increasing(json_object_get(snap, "events"));
}

static void test_sse_live(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_sse *s, *filtered;
    json_t *snap, *events;
    json_int_t ids[3];
    size_t i;

    make_note(d, "before the stream");
    s = e2e_sse_open(d, "/api/v1/events?type=example", NULL, NULL, 20000);
    filtered = e2e_sse_open(d, "/api/v1/events?type=nomatch", NULL, NULL, 20000);
    assert_non_null(s);
    assert_non_null(filtered);
    assert_true(e2e_sse_wait_open(s, 5000));
    assert_true(e2e_sse_wait_open(filtered, 5000));

    for (i = 0; i < 3; i++) {
        char text[32];
        snprintf(text, sizeof(text), "live-%zu", i);
        ids[i] = make_note(d, text);
    }
    assert_int_equal(e2e_sse_wait(s, 3, 10000), 3);
    snap = e2e_sse_snapshot(s);
    assert_int_equal(json_integer_value(json_object_get(snap, "status")), 200);
    assert_non_null(
        strstr(json_string_value(json_object_get(snap, "content_type")), "text/event-stream"));
    assert_int_equal(json_integer_value(json_object_get(snap, "retry")), 2000);
    events = json_object_get(snap, "events");
    /* live only: the note from before the stream is not replayed */
    assert_int_equal(json_array_size(events), 3);
    for (i = 0; i < 3; i++) {
        json_t *env = json_array_get(events, i);
        char text[32];
        assert_envelope(env, "example.noted");
        snprintf(text, sizeof(text), "live-%zu", i);
        assert_string_equal(env_text(env), text);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(env, "data"), "id")),
                         ids[i]);
    }
    assert_sse_frames(snap);
    json_decref(snap);

    /* the filtered stream got none of them */
    snap = e2e_sse_snapshot(filtered);
    assert_int_equal(json_integer_value(json_object_get(snap, "status")), 200);
    assert_int_equal(json_array_size(json_object_get(snap, "events")), 0);
    json_decref(snap);
    e2e_sse_close(filtered);
    e2e_sse_close(s);

    /* a bad Last-Event-ID is a 400, not a stream */
    snap = e2e_sse_collect(d, "/api/v1/events", NULL, "not-a-number", 1, 3000);
    assert_non_null(snap);
    assert_int_equal(json_integer_value(json_object_get(snap, "status")), 400);
    json_decref(snap);
    e2e_pass(d);
}

static void test_sse_resume_running(void **state)
{
    struct e2e_daemon *d = *state;
    json_t *all, *snap, *events;
    char last[32], path[128];
    size_t i;

    for (i = 0; i < 6; i++) {
        char text[32];
        snprintf(text, sizeof(text), "resume-%zu", i);
        make_note(d, text);
    }
    all = poll_events(d, "/api/v1/events?type=example", NULL);
    assert_int_equal(json_array_size(all), 6);

    /* Last-Event-ID = the 2nd: exactly the 3rd..6th */
    snprintf(last, sizeof(last), "%lld", (long long)env_id(json_array_get(all, 1)));
    snap = e2e_sse_collect(d, "/api/v1/events?type=example", NULL, last, 4, 10000);
    events = json_object_get(snap, "events");
    assert_int_equal(json_array_size(events), 4);
    for (i = 0; i < 4; i++)
        assert_true(json_equal(json_array_get(events, i), json_array_get(all, i + 2)));
    assert_sse_frames(snap);
    json_decref(snap);

    /* ?after= does the same */
    snprintf(path, sizeof(path), "/api/v1/events?type=example&after=%s", last);
    snap = e2e_sse_collect(d, path, NULL, NULL, 4, 10000);
    events = json_object_get(snap, "events");
    assert_int_equal(json_array_size(events), 4);
    for (i = 0; i < 4; i++)
        assert_true(json_equal(json_array_get(events, i), json_array_get(all, i + 2)));
    json_decref(snap);

    /* resuming at the newest: nothing, then the next one live */
    {
        struct e2e_sse *s;
        json_int_t id;
        snprintf(last, sizeof(last), "%lld", (long long)env_id(json_array_get(all, 5)));
        s = e2e_sse_open(d, "/api/v1/events?type=example", NULL, last, 20000);
        assert_non_null(s);
        assert_true(e2e_sse_wait_open(s, 5000));
        id = make_note(d, "after resume");
        assert_int_equal(e2e_sse_wait(s, 1, 10000), 1);
        snap = e2e_sse_snapshot(s);
        e2e_sse_close(s);
        events = json_object_get(snap, "events");
        assert_int_equal(json_array_size(events), 1);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(json_array_get(events, 0), "data"), "id")),
                         id);
        assert_true(env_id(json_array_get(events, 0)) > env_id(json_array_get(all, 5)));
        json_decref(snap);
    }
    json_decref(all);
    e2e_pass(d);
}

/* --------------------------------------------------- kill -9 and resume */

#define MAX_ACKED 4096

struct writer {
    struct e2e_daemon *d;
    atomic_int n_acked;
    json_int_t acked[MAX_ACKED]; /* note ids the daemon answered 201 for */
    atomic_bool stop;
    int last_status;
    int n_201; /* 201 status lines, including a reply cut short by the kill */
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;

    while (!atomic_load(&w->stop) && atomic_load(&w->n_acked) < MAX_ACKED) {
        struct e2e_resp r;
        char body[64];
        int n = atomic_load(&w->n_acked);

        snprintf(body, sizeof(body), "{\"text\":\"crash-%d\"}", n);
        w->last_status = e2e_post(w->d, NOTES, w->d->admin_token, body, &r);
        if (r.status == 201)
            w->n_201++; /* the status line came: the note was committed */
        if (r.status == 201 && !r.error[0] && json_integer_value(json_object_get(r.json, "id"))) {
            w->acked[n] = json_integer_value(json_object_get(r.json, "id"));
            atomic_store(&w->n_acked, n + 1);
        } else {
            w->last_status = -1;
        }
        e2e_resp_free(&r);
        if (w->last_status != 201)
            break; /* the daemon is gone (perhaps in the middle of a reply) */
    }
    return NULL;
}

/* All notes (GET /notes, paged) as an array (new reference). */
static json_t *all_notes(struct e2e_daemon *d)
{
    json_t *all = json_array();
    json_int_t after = 0;

    for (int pages = 0; pages < 100; pages++) {
        struct e2e_resp r;
        char path[128];
        json_t *notes;
        snprintf(path, sizeof(path), NOTES "?limit=500&after=%lld", (long long)after);
        assert_int_equal(e2e_get(d, path, NULL, &r), 200);
        notes = json_object_get(r.json, "notes");
        json_array_extend(all, notes);
        if (json_array_size(notes) == 0) {
            e2e_resp_free(&r);
            break;
        }
        after = json_integer_value(
            json_object_get(json_array_get(notes, json_array_size(notes) - 1), "id"));
        e2e_resp_free(&r);
    }
    return all;
}

/* All example events (paged) as an array (new reference). */
static json_t *all_events(struct e2e_daemon *d)
{
    json_t *all = json_array();
    json_int_t after = 0;

    for (int pages = 0; pages < 100; pages++) {
        char path[128];
        json_int_t l;
        json_t *events;
        snprintf(path, sizeof(path), "/api/v1/events?type=example&limit=1000&after=%lld",
                 (long long)after);
        events = poll_events(d, path, &l);
        json_array_extend(all, events);
        json_decref(events);
        if (l == after)
            break;
        after = l;
    }
    return all;
}

static bool ids_contain(json_t *arr, const char *key_obj, json_int_t id)
{
    size_t i;
    json_t *e;

    json_array_foreach(arr, i, e)
    {
        json_t *o = key_obj ? json_object_get(e, key_obj) : e;
        if (json_integer_value(json_object_get(o, "id")) == id)
            return true;
    }
    return false;
}

static void test_kill9_then_resume(void **state)
{
    struct e2e_daemon *d = *state;
    struct writer *w = calloc(1, sizeof(*w));
    struct e2e_sse *live, *resumed;
    json_t *seen_live, *snap, *events, *notes, *env;
    pthread_t th;
    char last[32];
    size_t i, n_before_last = 0, n_after;
    json_int_t last_seen = 0, id;
    uint64_t deadline;

    assert_non_null(w);
    w->d = d;

    /* a live SSE client follows everything from the start */
    live = e2e_sse_open(d, "/api/v1/events?type=example", NULL, "0", 30000);
    assert_non_null(live);
    assert_true(e2e_sse_wait_open(live, 5000));

    /* write continuously; kill -9 in the middle of it */
    assert_int_equal(pthread_create(&th, NULL, writer_thread, w), 0);
    deadline = e2e_now_ms() + 20000;
    while (atomic_load(&w->n_acked) < 40 && e2e_now_ms() < deadline)
        e2e_sleep_ms(5);
    assert_true(atomic_load(&w->n_acked) >= 40);
    /* the SSE client has seen some, not necessarily all */
    assert_true(e2e_sse_wait(live, 10, 10000) >= 10);
    e2e_kill9(d);
    assert_int_equal(d->exit_status, 128 + 9);
    atomic_store(&w->stop, true);
    pthread_join(th, NULL);
    assert_true(w->last_status != 201);

    /* the live stream ended with the daemon */
    snap = e2e_sse_snapshot(live);
    e2e_sse_close(live);
    seen_live = json_incref(json_object_get(snap, "events"));
    json_decref(snap);
    assert_true(json_array_size(seen_live) >= 10);
    assert_increasing(seen_live);
    last_seen = env_id(json_array_get(seen_live, json_array_size(seen_live) - 1));

    /* restart on the same state directory */
    assert_int_equal(e2e_launch(d), E2E_READY);

    /* every acknowledged note is there, each with exactly one event */
    notes = all_notes(d);
    events = all_events(d);
    assert_increasing(events);
    for (int k = 0; k < atomic_load(&w->n_acked); k++) {
        if (!ids_contain(notes, NULL, w->acked[k]))
            fprintf(stderr, "acknowledged note %lld lost by kill -9\n", (long long)w->acked[k]);
        assert_true(ids_contain(notes, NULL, w->acked[k]));
        assert_true(ids_contain(events, "data", w->acked[k]));
    }
    /* nothing answered 201 is lost, even if the kill cut its reply short */
    assert_true(json_array_size(notes) >= (size_t)w->n_201);
    /* a note and its event commit together: as many events as notes, one
       event per note */
    assert_int_equal(json_array_size(events), json_array_size(notes));
    json_array_foreach(notes, i, env)
    {
        json_int_t nid = json_integer_value(json_object_get(env, "id"));
        size_t hits = 0, k;
        json_t *ev;
        json_array_foreach(events, k, ev) if (json_integer_value(json_object_get(
                                                  json_object_get(ev, "data"), "id")) == nid)
            hits++;
        assert_int_equal(hits, 1);
    }
    /* whatever the live client saw was committed: it is still there, equal */
    json_array_foreach(seen_live, i, env)
    {
        assert_true(json_equal(env, json_array_get(events, i)));
    }

    /* resume from the last id the client saw: exactly the rest */
    json_array_foreach(events, i, env) if (env_id(env) <= last_seen) n_before_last++;
    assert_int_equal(n_before_last, json_array_size(seen_live));
    n_after = json_array_size(events) - n_before_last;
    snprintf(last, sizeof(last), "%lld", (long long)last_seen);
    resumed = e2e_sse_open(d, "/api/v1/events?type=example", NULL, last, 30000);
    assert_non_null(resumed);
    assert_true(e2e_sse_wait_open(resumed, 5000));
    assert_int_equal(e2e_sse_wait(resumed, n_after, 10000), n_after);
    /* and then live again: one more note arrives as the next event */
    id = make_note(d, "after the crash");
    assert_int_equal(e2e_sse_wait(resumed, n_after + 1, 10000), n_after + 1);
    /* nothing else comes (no duplicate delivered late) */
    assert_int_equal(e2e_sse_wait(resumed, n_after + 2, 500), n_after + 1);
    snap = e2e_sse_snapshot(resumed);
    e2e_sse_close(resumed);
    {
        json_t *got = json_object_get(snap, "events");
        assert_int_equal(json_array_size(got), n_after + 1);
        for (i = 0; i < n_after; i++)
            assert_true(
                json_equal(json_array_get(got, i), json_array_get(events, n_before_last + i)));
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(json_array_get(got, n_after), "data"), "id")),
                         id);
        assert_sse_frames(snap);
        /* seen_live + got = the whole history, in order, once each */
        assert_true(env_id(json_array_get(got, 0)) > last_seen || n_after == 0);
    }
    json_decref(snap);

    /* new ids continue above the old ones (never reused after the crash) */
    {
        json_t *after = all_events(d);
        assert_int_equal(json_array_size(after), json_array_size(events) + 1);
        assert_increasing(after);
        json_decref(after);
    }
    json_decref(seen_live);
    json_decref(notes);
    json_decref(events);
    free(w);
    e2e_pass(d);
}

/* A clean restart keeps the events too, and a second kill -9 right after
   start loses nothing either. */
static void test_events_survive_restarts(void **state)
{
    struct e2e_daemon *d = *state;
    json_t *before, *after;

    for (int i = 0; i < 5; i++) {
        char text[32];
        snprintf(text, sizeof(text), "persist-%d", i);
        make_note(d, text);
    }
    before = all_events(d);
    assert_int_equal(json_array_size(before), 5);

    assert_int_equal(e2e_restart(d), E2E_READY);
    after = all_events(d);
    assert_true(json_equal(before, after));
    json_decref(after);

    e2e_kill9(d);
    assert_int_equal(e2e_launch(d), E2E_READY);
    after = all_events(d);
    assert_true(json_equal(before, after));
    json_decref(after);
    json_decref(before);
    e2e_pass(d);
}

/* SIGTERM while SSE clients and a long poll are connected: the streams
   end, the daemon exits 0 well within the 10 s the harness allows. */
static void test_stop_with_open_streams(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_sse *s1, *s2;
    struct long_poll lp = {.d = d};
    pthread_t th;
    json_t *snap;
    uint64_t t0;

    make_note(d, "one");
    s1 = e2e_sse_open(d, "/api/v1/events", NULL, NULL, 30000);
    s2 = e2e_sse_open(d, "/api/v1/events?type=example", NULL, "0", 30000);
    assert_non_null(s1);
    assert_non_null(s2);
    assert_true(e2e_sse_wait_open(s1, 5000));
    assert_int_equal(e2e_sse_wait(s2, 1, 5000), 1);
    snprintf(lp.path, sizeof(lp.path), "/api/v1/events?after=1000000&wait=25");
    assert_int_equal(pthread_create(&th, NULL, long_poll_thread, &lp), 0);
    e2e_sleep_ms(300); /* let the long poll reach the daemon */

    t0 = e2e_now_ms();
    assert_int_equal(e2e_stop(d), 0);
    assert_true(e2e_now_ms() - t0 < 10000);
    pthread_join(th, NULL);
    /* the long poll got an answer or a closed connection, not a 25 s wait */
    assert_true(lp.took_ms < 12000);
    e2e_resp_free(&lp.r);

    /* both streams ended with the daemon (no reader hangs on) */
    assert_true(e2e_sse_wait(s1, 1000, 3000) < 1000);
    snap = e2e_sse_snapshot(s1);
    assert_true(json_is_true(json_object_get(snap, "ended")));
    json_decref(snap);
    snap = e2e_sse_snapshot(s2);
    assert_true(json_is_true(json_object_get(snap, "ended")));
    json_decref(snap);
    e2e_sse_close(s1);
    e2e_sse_close(s2);
    e2e_pass(d);
}

/* Event streams hold an HTTP worker thread each; however many a user opens
   (dashboards in browser tabs, `relengctl events --follow`), the API and
   the health checks must keep answering: a stream beyond what the server
   can spare is refused (503) rather than served at the cost of everything
   else. Here with 4 worker threads and 6 streams. */
static const char *const few_threads_set[] = {"http.threads=4", NULL};
static const struct e2e_opts few_threads_opts = {.set = few_threads_set};

static void test_streams_cannot_starve_api(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_sse *s[6];
    struct e2e_resp r;
    size_t n_open = 0;
    uint64_t t0;

    for (size_t i = 0; i < 6; i++) {
        s[i] = e2e_sse_open(d, "/api/v1/events", NULL, NULL, 30000);
        assert_non_null(s[i]);
    }
    for (size_t i = 0; i < 6; i++) {
        json_t *snap;
        if (e2e_sse_wait_open(s[i], 1000)) {
            snap = e2e_sse_snapshot(s[i]);
            if (json_integer_value(json_object_get(snap, "status")) == 200)
                n_open++;
            else
                assert_int_equal(json_integer_value(json_object_get(snap, "status")), 503);
            json_decref(snap);
        }
    }
    /* the daemon still answers, promptly */
    e2e_set_http_timeout(d, 4000);
    t0 = e2e_now_ms();
    e2e_get(d, "/healthz", NULL, &r);
    if (r.status != 200)
        fprintf(stderr, "with %zu event streams open, GET /healthz -> %d (%s) after %llu ms\n",
                n_open, r.status, r.error, (unsigned long long)(e2e_now_ms() - t0));
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, "/api/v1/status", NULL, &r), 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_post(d, NOTES, d->admin_token, "{\"text\":\"still here\"}", &r), 201);
    e2e_resp_free(&r);
    assert_true(e2e_now_ms() - t0 < 5000);
    for (size_t i = 0; i < 6; i++)
        e2e_sse_close(s[i]);
    e2e_pass(d);
}

/* Many writers at once (HTTP worker threads contending for the one
   database): every request succeeds, every note has its event, ids are
   strictly increasing, and a stream that follows along sees all of them,
   in order, once each. */
#define N_WRITERS 8
#define N_PER_WRITER 25

struct cwriter {
    struct e2e_daemon *d;
    int idx;
    int n_ok;
    int bad_status;
};

static void *cwriter_thread(void *arg)
{
    struct cwriter *w = arg;

    for (int i = 0; i < N_PER_WRITER; i++) {
        struct e2e_resp r;
        char body[64];
        snprintf(body, sizeof(body), "{\"text\":\"w%d-%d\"}", w->idx, i);
        if (e2e_post(w->d, NOTES, w->d->admin_token, body, &r) == 201)
            w->n_ok++;
        else if (!w->bad_status)
            w->bad_status = r.status;
        e2e_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct e2e_daemon *d = *state;
    struct cwriter w[N_WRITERS];
    pthread_t th[N_WRITERS];
    struct e2e_sse *s;
    json_t *events, *notes, *snap;
    const size_t total = N_WRITERS * N_PER_WRITER;

    s = e2e_sse_open(d, "/api/v1/events?type=example", NULL, NULL, 40000);
    assert_non_null(s);
    assert_true(e2e_sse_wait_open(s, 5000));
    for (int i = 0; i < N_WRITERS; i++) {
        w[i] = (struct cwriter){.d = d, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, cwriter_thread, &w[i]), 0);
    }
    for (int i = 0; i < N_WRITERS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].n_ok != N_PER_WRITER)
            fprintf(stderr, "writer %d: %d of %d created, first failure status %d\n", i, w[i].n_ok,
                    N_PER_WRITER, w[i].bad_status);
        assert_int_equal(w[i].n_ok, N_PER_WRITER);
    }
    notes = all_notes(d);
    events = all_events(d);
    assert_int_equal(json_array_size(notes), total);
    assert_int_equal(json_array_size(events), total);
    assert_increasing(events);

    assert_int_equal(e2e_sse_wait(s, total, 15000), total);
    assert_int_equal(e2e_sse_wait(s, total + 1, 300), total);
    snap = e2e_sse_snapshot(s);
    e2e_sse_close(s);
    assert_true(json_equal(json_object_get(snap, "events"), events));
    assert_sse_frames(snap);
    json_decref(snap);
    json_decref(notes);
    json_decref(events);
    e2e_pass(d);
}

/* ------------------------------------------------------------ webhooks */

/* A webhook receiver on 127.0.0.1: records every request and answers with
   500 to the first fail_first of them, after delay_ms. */
struct hook_srv {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int fail_first;
    atomic_int delay_ms;
    pthread_mutex_t lock;
    json_t *reqs; /* [{"headers":{lowercase:value}, "body":"...", "status":N, "at_ms":N}] */
};

static void hook_handle(struct hook_srv *h, int c)
{
    char buf[1 << 16];
    size_t used = 0, body_at = 0, clen = 0;
    json_t *headers = json_object();
    uint64_t deadline = e2e_now_ms() + 5000;
    int status;

    while (used < sizeof(buf) - 1 && e2e_now_ms() < deadline) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        ssize_t n;
        char *end;
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(c, buf + used, sizeof(buf) - 1 - used, 0);
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        if (!body_at && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            char *line = strstr(buf, "\r\n") + 2;
            body_at = (size_t)(end - buf) + 4;
            while (line < end) {
                char *eol = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(eol - line));
                if (colon) {
                    char name[128], value[1024];
                    size_t nl = (size_t)(colon - line), i;
                    for (i = 0; i < nl && i < sizeof(name) - 1; i++)
                        name[i] = (char)(line[i] | ((line[i] >= 'A' && line[i] <= 'Z') ? 0x20 : 0));
                    name[i] = '\0';
                    colon++;
                    while (*colon == ' ')
                        colon++;
                    snprintf(value, sizeof(value), "%.*s", (int)(eol - colon), colon);
                    json_object_set_new(headers, name, json_string(value));
                }
                line = eol + 2;
            }
            clen =
                (size_t)strtoul(json_string_value(json_object_get(headers, "content-length"))
                                    ? json_string_value(json_object_get(headers, "content-length"))
                                    : "0",
                                NULL, 10);
            if (json_object_get(headers, "expect"))
                send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
        }
        if (body_at && used >= body_at + clen)
            break;
    }
    if (atomic_load(&h->delay_ms) > 0)
        e2e_sleep_ms(atomic_load(&h->delay_ms));
    pthread_mutex_lock(&h->lock);
    status = (int)json_array_size(h->reqs) < atomic_load(&h->fail_first) ? 500 : 200;
    json_array_append_new(h->reqs,
                          json_pack("{s:o, s:s%, s:i, s:I}", "headers", headers, "body",
                                    body_at ? buf + body_at : "", body_at ? clen : (size_t)0,
                                    "status", status, "at_ms", (json_int_t)e2e_now_ms()));
    pthread_mutex_unlock(&h->lock);
    {
        char reply[128];
        int n = snprintf(reply, sizeof(reply),
                         "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
        send(c, reply, (size_t)n, MSG_NOSIGNAL);
    }
}

static void *hook_thread(void *arg)
{
    struct hook_srv *h = arg;

    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        int c;
        if (poll(&p, 1, 100) <= 0)
            continue;
        c = accept(h->fd, NULL, NULL);
        if (c < 0)
            continue;
        hook_handle(h, c);
        close(c);
    }
    return NULL;
}

static struct hook_srv *hook_start(int fail_first)
{
    struct hook_srv *h = calloc(1, sizeof(*h));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    assert_non_null(h);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(h->fd >= 0);
    assert_int_equal(bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(h->fd, 16), 0);
    assert_int_equal(getsockname(h->fd, (struct sockaddr *)&sa, &len), 0);
    h->port = ntohs(sa.sin_port);
    h->reqs = json_array();
    atomic_store(&h->fail_first, fail_first);
    pthread_mutex_init(&h->lock, NULL);
    assert_int_equal(pthread_create(&h->thread, NULL, hook_thread, h), 0);
    return h;
}

static void hook_stop(struct hook_srv *h)
{
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
    json_decref(h->reqs);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Waits (bounded) for n requests; returns a copy of them (new reference). */
static json_t *hook_wait(struct hook_srv *h, size_t n, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    json_t *copy;

    for (;;) {
        pthread_mutex_lock(&h->lock);
        if (json_array_size(h->reqs) >= n || e2e_now_ms() >= deadline) {
            copy = json_deep_copy(h->reqs);
            pthread_mutex_unlock(&h->lock);
            return copy;
        }
        pthread_mutex_unlock(&h->lock);
        e2e_sleep_ms(20);
    }
}

static void assert_signed(json_t *req, const char *secret)
{
    const char *body = json_string_value(json_object_get(req, "body"));
    const char *sig =
        json_string_value(json_object_get(json_object_get(req, "headers"), "x-relengd-signature"));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char want[7 + 2 * EVP_MAX_MD_SIZE + 1] = "sha256=";

    assert_non_null(body);
    assert_non_null(sig);
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body,
                         strlen(body), mac, &mac_len));
    for (unsigned i = 0; i < mac_len; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(sig, want);
}

/* Webhooks: each event POSTed as its envelope, signed, retried after a
   failure (same delivery id), in order, and never making the publisher
   wait for a slow receiver. */
static void test_webhooks(void **state)
{
    struct e2e_daemon *d = *state;
    struct hook_srv *h = hook_start(1);
    char conf[512];
    json_t *reqs, *events, *env;
    uint64_t t0;

    snprintf(conf, sizeof(conf),
             "\n[webhook.e2e]\nurl = http://127.0.0.1:%d/hook\nsecret = e2e-secret\n"
             "types = example\ntimeout = 5s\nmax_attempts = 5\n",
             h->port);
    assert_int_equal(e2e_append_file(d->conf_path, conf), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);

    /* one event: refused once (500), delivered again after the backoff */
    make_note(d, "hooked");
    reqs = hook_wait(h, 2, 15000);
    assert_int_equal(json_array_size(reqs), 2);
    events = poll_events(d, "/api/v1/events?type=example", NULL);
    assert_int_equal(json_array_size(events), 1);
    for (size_t i = 0; i < 2; i++) {
        json_t *req = json_array_get(reqs, i), *hdrs = json_object_get(req, "headers");
        json_t *body = json_loads(json_string_value(json_object_get(req, "body")), 0, NULL);
        char id[32];
        assert_signed(req, "e2e-secret");
        assert_string_equal(json_string_value(json_object_get(hdrs, "x-relengd-event")),
                            "example.noted");
        snprintf(id, sizeof(id), "%lld", (long long)env_id(json_array_get(events, 0)));
        assert_string_equal(json_string_value(json_object_get(hdrs, "x-relengd-delivery")), id);
        assert_non_null(
            strstr(json_string_value(json_object_get(hdrs, "content-type")), "application/json"));
        assert_true(json_equal(body, json_array_get(events, 0)));
        json_decref(body);
    }
    /* the retry came after a backoff, not at once */
    assert_true(json_integer_value(json_object_get(json_array_get(reqs, 1), "at_ms")) -
                    json_integer_value(json_object_get(json_array_get(reqs, 0), "at_ms")) >=
                500);
    json_decref(reqs);
    json_decref(events);

    /* a slow receiver never slows the publisher; deliveries stay in order */
    atomic_store(&h->delay_ms, 1000);
    t0 = e2e_now_ms();
    for (int i = 0; i < 3; i++)
        make_note(d, "slow receiver");
    assert_true(e2e_now_ms() - t0 < 1500);
    reqs = hook_wait(h, 5, 20000);
    assert_int_equal(json_array_size(reqs), 5);
    events = poll_events(d, "/api/v1/events?type=example", NULL);
    assert_int_equal(json_array_size(events), 4);
    {
        size_t i;
        json_array_foreach(events, i, env)
        {
            json_t *req = json_array_get(reqs, i + 1);
            json_t *body = json_loads(json_string_value(json_object_get(req, "body")), 0, NULL);
            assert_signed(req, "e2e-secret");
            assert_true(json_equal(body, env));
            json_decref(body);
        }
    }
    /* nothing more: each event exactly once after its success */
    json_decref(reqs);
    reqs = hook_wait(h, 6, 1500);
    assert_int_equal(json_array_size(reqs), 5);
    json_decref(reqs);
    json_decref(events);
    atomic_store(&h->delay_ms, 0);
    assert_int_equal(e2e_stop(d), 0);
    hook_stop(h);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_poll_json, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_sse_live, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_sse_resume_running, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_then_resume, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_events_survive_restarts, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_open_streams, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_webhooks, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_streams_cannot_starve_api, e2e_setup,
                                                 e2e_teardown, (void *)&few_threads_opts),
    };
    return cmocka_run_group_tests_name("e2e core events", tests, NULL, NULL);
}
