/* SPDX-License-Identifier: MIT */
/*
 * core/api_events.c -- GET /api/v1/events, the event stream. A client that
 * accepts text/event-stream gets Server-Sent Events: every matching event as
 * "id: N\ndata: <envelope>\n\n", resumable with Last-Event-ID (or ?after=N),
 * with a ": ping" comment after 15 s of silence; any other client gets JSON
 * for polling scripts, {"events":[...],"last_id":N,"newest_id":M}, optionally long-polled
 * with ?wait=SECONDS. Both read the events table after the client's last id,
 * in batches, never from memory, so a reconnect (even across a daemon
 * restart) has no gap and no duplicate. The handler runs on an HTTP worker
 * thread and blocks it for as long as the stream lasts: until a write fails
 * (the client left) or the bus shuts down (the daemon is stopping). It uses
 * only the rd_req_* / rd_reply_* functions of core/module.h.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/host.h"
#include "core/log.h"

#define EVENTS_SSE_BATCH 500
#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT 1000
#define EVENTS_MAX_WAIT_S 30
#define EVENTS_PING_MS 15000
#define EVENTS_RETRY "retry: 2000\n\n"
#define EVENTS_PING ": ping\n\n"
#define EVENTS_SSE_HEADERS "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"

/* Silence after which an SSE stream gets a ping; a variable so that the
   unit test can shorten it. */
static uint64_t events_ping_ms = EVENTS_PING_MS;

struct events_query {
    uint64_t after;     /* events with id > after */
    bool has_after;     /* given by Last-Event-ID or ?after */
    size_t limit;       /* JSON only */
    uint64_t wait_ms;   /* JSON only: long-poll */
    const char *filter; /* ?type, borrowed from the request; NULL: all */
};

/* A growing text buffer for one batch of SSE frames. */
struct events_buf {
    char *data;
    size_t len, cap;
};

static uint64_t events_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int events_buf_add(struct events_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *data;

        while (cap < b->len + n + 1)
            cap *= 2;
        data = realloc(b->data, cap);
        if (!data)
            return RD_ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return RD_OK;
}

static void events_buf_fini(struct events_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Appends one SSE frame for env: "id: N\ndata: <env as one line>\n\n".
   Compact JSON escapes CR and LF inside strings, so the data is one line. */
static int events_sse_frame(struct events_buf *b, const json_t *env)
{
    json_int_t id = json_integer_value(json_object_get(env, "id"));
    char *text = json_dumps(env, JSON_COMPACT);
    char head[48];
    int n;
    int rc;

    if (!text)
        return RD_ENOMEM;
    n = snprintf(head, sizeof(head), "id: %" JSON_INTEGER_FORMAT "\ndata: ", id);
    rc = events_buf_add(b, head, (size_t)n);
    if (rc == RD_OK)
        rc = events_buf_add(b, text, strlen(text));
    if (rc == RD_OK)
        rc = events_buf_add(b, "\n\n", 2);
    free(text);
    return rc;
}

/* Decimal digits only (no sign, no spaces), value at most max. */
static bool events_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return false;
        d = (unsigned)(*s - '0');
        if (v > (max - d) / 10u)
            return false;
        v = v * 10u + d;
    }
    *out = v;
    return true;
}

/* The query of either form. RD_EINVAL with err naming the parameter. */
static int events_query_parse(struct rd_req *r, bool is_sse, struct events_query *q,
                              struct rd_error *err)
{
    const char *last_event_id = is_sse ? rd_req_header(r, "Last-Event-ID") : NULL;
    const char *after = rd_req_param(r, "after");
    const char *limit = rd_req_param(r, "limit");
    const char *wait = rd_req_param(r, "wait");
    uint64_t v;

    memset(q, 0, sizeof(*q));
    q->limit = EVENTS_DEFAULT_LIMIT;
    /* An empty Last-Event-ID is what a client that saw no event yet may send. */
    if (last_event_id && *last_event_id) {
        if (!events_parse_u64(last_event_id, INT64_MAX, &q->after))
            return rd_error_set(err, RD_EINVAL,
                                "Last-Event-ID must be a non-negative integer event id, got "
                                "'%.40s'",
                                last_event_id);
        q->has_after = true;
    } else if (after) {
        if (!events_parse_u64(after, INT64_MAX, &q->after))
            return rd_error_set(err, RD_EINVAL,
                                "after must be a non-negative integer event id, got '%.40s'",
                                after);
        q->has_after = true;
    }
    q->filter = rd_req_param(r, "type");
    if (!bus_filter_valid(q->filter))
        return rd_error_set(err, RD_EINVAL,
                            "type must be a comma-separated list of event type patterns such as "
                            "task or task.res*, got '%.40s'",
                            q->filter);
    if (is_sse)
        return RD_OK;
    if (limit) {
        if (!events_parse_u64(limit, EVENTS_MAX_LIMIT, &v) || v == 0)
            return rd_error_set(err, RD_EINVAL,
                                "limit must be an integer from 1 to %d, got '%.40s'",
                                EVENTS_MAX_LIMIT, limit);
        q->limit = (size_t)v;
    }
    if (wait) {
        if (!events_parse_u64(wait, EVENTS_MAX_WAIT_S, &v))
            return rd_error_set(err, RD_EINVAL,
                                "wait must be a number of seconds from 0 to %d, got '%.40s'",
                                EVENTS_MAX_WAIT_S, wait);
        q->wait_ms = v * 1000u;
    }
    return RD_OK;
}

/* Where a stream without after starts: after the newest event, whether the
   bus has heard of it yet or it is only in the table. */
static uint64_t events_newest_id(struct host *h)
{
    uint64_t last = bus_last_id(h->bus);
    uint64_t max_id = 0;

    if (bus_max_id(h->store, &max_id) == RD_OK && max_id > last)
        last = max_id;
    return last;
}

static int events_sse(struct host *h, struct rd_req *r)
{
    struct events_query q;
    struct events_buf buf = {0};
    struct rd_error err = {0};
    json_t *events = NULL;
    uint64_t cursor;
    uint64_t last_write_ms;
    int rc;

    rc = events_query_parse(r, true, &q, &err);
    if (rc != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    cursor = q.has_after ? q.after : events_newest_id(h);

    rc = rd_reply_start(r, 200, "text/event-stream", EVENTS_SSE_HEADERS, -1);
    if (rc == RD_OK)
        rc = rd_reply_write(r, EVENTS_RETRY, strlen(EVENTS_RETRY));
    if (rc != RD_OK)
        goto out;
    last_write_ms = events_mono_ms();

    while (!bus_is_shutdown(h->bus)) {
        /* Read before the table: every event up to hint is committed, so
           a full scan of the table covers it. */
        uint64_t hint = bus_last_id(h->bus);
        uint64_t scanned = cursor;
        size_t i, n;
        json_t *env;
        uint64_t idle_ms;

        rc = bus_read_after_scan(h->store, cursor, q.filter, EVENTS_SSE_BATCH, &events, &scanned);
        if (rc != RD_OK) {
            /* The client reconnects with Last-Event-ID and resumes. */
            log_msg("core", RD_WARN, "events: SSE stream ends, reading after %" PRIu64 ": %s",
                    cursor, rd_strerror(rc));
            goto out;
        }
        n = json_array_size(events);
        json_array_foreach(events, i, env)
        {
            rc = events_sse_frame(&buf, env);
            if (rc != RD_OK)
                goto out;
        }
        json_decref(events);
        events = NULL;
        if (n > 0) {
            rc = rd_reply_write(r, buf.data, buf.len);
            if (rc != RD_OK)
                goto out;
            buf.len = 0;
            last_write_ms = events_mono_ms();
        }
        cursor = scanned;
        if (n == EVENTS_SSE_BATCH)
            continue; /* the scan stopped at the batch size: more may follow */
        if (hint > cursor)
            cursor = hint;

        idle_ms = events_mono_ms() - last_write_ms;
        if (idle_ms >= events_ping_ms) {
            rc = rd_reply_write(r, EVENTS_PING, strlen(EVENTS_PING));
            if (rc != RD_OK)
                goto out;
            last_write_ms = events_mono_ms();
            continue;
        }
        bus_wait(h->bus, cursor, events_ping_ms - idle_ms);
    }
out:
    /* The reply has started: a failure now only ends the stream. */
    json_decref(events);
    events_buf_fini(&buf);
    return RD_OK;
}

/* Streams and long-polls hold an HTTP worker thread each for as long as
   they last; at most max_streams of them (default: half the threads) may,
   so that the API and the health checks always have threads left. */
static int events_max_streams(struct host *h)
{
    int64_t n = h->conf.http.max_streams;

    if (n <= 0)
        n = h->conf.http.threads / 2;
    if (n >= h->conf.http.threads)
        n = h->conf.http.threads - 1;
    return n < 1 ? 1 : (int)n;
}

static bool events_hold(struct host *h)
{
    int max = events_max_streams(h);

    if (atomic_fetch_add(&h->streams, 1) >= max) {
        atomic_fetch_sub(&h->streams, 1);
        return false;
    }
    return true;
}

static void events_release(struct host *h)
{
    atomic_fetch_sub(&h->streams, 1);
}

static int events_poll(struct host *h, struct rd_req *r)
{
    struct events_query q;
    struct rd_error err = {0};
    json_t *events = NULL;
    json_t *body = NULL;
    uint64_t scanned = 0;
    uint64_t last_id;
    bool held = false;
    int rc;

    rc = events_query_parse(r, false, &q, &err);
    if (rc != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);

    rc = bus_read_after_scan(h->store, q.after, q.filter, q.limit, &events, &scanned);
    /* A long-poll holds an HTTP thread like a stream; when none can be
       spared it answers at once instead (the client simply polls again). */
    if (rc == RD_OK && json_array_size(events) == 0 && q.wait_ms > 0 && events_hold(h)) {
        uint64_t deadline_ms = events_mono_ms() + q.wait_ms;
        uint64_t cursor = scanned;

        held = true;
        while (!bus_is_shutdown(h->bus)) {
            uint64_t now_ms = events_mono_ms();
            uint64_t hint;

            if (now_ms >= deadline_ms)
                break;
            hint = bus_wait(h->bus, cursor, deadline_ms - now_ms);
            json_decref(events);
            events = NULL;
            rc = bus_read_after_scan(h->store, cursor, q.filter, q.limit, &events, &scanned);
            if (rc != RD_OK || json_array_size(events) > 0)
                break;
            /* Nothing matched up to what the bus announced: skip it all. */
            cursor = scanned > hint ? scanned : hint;
        }
    }
    if (held)
        events_release(h);
    if (rc != RD_OK) {
        log_msg("core", RD_WARN, "events: reading after %" PRIu64 ": %s", q.after, rd_strerror(rc));
        json_decref(events);
        return rd_reply_error(r, rd_err_http_status(rc), rd_err_code(rc), "cannot read events: %s",
                              rd_strerror(rc));
    }

    last_id = q.after;
    if (json_array_size(events) > 0)
        last_id = (uint64_t)json_integer_value(
            json_object_get(json_array_get(events, json_array_size(events) - 1), "id"));
    body = json_object();
    if (!body || json_object_set_new(body, "events", events) != 0 ||
        json_object_set_new(body, "last_id", json_integer((json_int_t)last_id)) != 0 ||
        json_object_set_new(body, "newest_id", json_integer((json_int_t)bus_last_id(h->bus))) !=
            0) {
        json_decref(body);
        if (!body)
            json_decref(events);
        return rd_reply_error(r, 500, rd_err_code(RD_ENOMEM), "%s", rd_strerror(RD_ENOMEM));
    }
    return rd_reply_json(r, 200, body);
}

static int events_handle(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    const char *accept = rd_req_header(r, "Accept");
    int rc;

    if (accept && strcasestr(accept, "text/event-stream")) {
        if (!events_hold(h))
            return rd_reply_error(r, 503, "too_many_streams",
                                  "all %d event streams this server spares are open; close "
                                  "one, poll /api/v1/events?after=N, or raise http.max_streams",
                                  events_max_streams(h));
        rc = events_sse(h, r);
        events_release(h);
        return rc;
    }
    return events_poll(h, r);
}

/* Registers GET /api/v1/events on the core's handle. Start, any thread.
   RD_ECONFLICT if it is registered already. */
int api_events_routes(struct host *h)
{
    return router_add(h->router, &h->core, "core", "GET", "/api/v1/events", NULL, RD_ROUTE_RAW,
                      events_handle, h);
}
