/* SPDX-License-Identifier: MIT */
/*
 * core/bus.c -- the event bus. bus_event_insert writes an event into
 * core_events inside the publisher's write transaction; after COMMIT the
 * store's hook calls bus_committed (on the committing thread, in commit
 * order), which raises last_id, wakes HTTP threads blocked in bus_wait, and
 * hands a copy of the envelopes to the loop thread through the loopq, where
 * they are fanned out to subscribers in id order. Readers of the stream
 * (SSE, long-poll, webhooks) never take events from memory: they read the
 * table after their last id (bus_read_after), so a restart or a slow client
 * costs neither gaps nor duplicates.
 *
 * Threads: bus_committed, bus_wait, bus_shutdown, bus_read_after, bus_prune,
 * bus_subscribe and bus_unsubscribe_owner may be called from any thread;
 * subscriber callbacks run on the loop thread only, without any bus lock
 * held, so they may subscribe, unsubscribe and publish.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bus.h"
#include "core/log.h"

#define BUS_TYPE_MAX 64
#define BUS_PRUNE_BATCH 10000
#define BUS_WAIT_MAX_MS (24u * 3600u * 1000u)

struct bus_sub {
    void *owner;
    char *pattern;
    rd_event_fn fn;
    void *arg;
    uint64_t seq; /* subscription order: a fan-out skips newer ones */
    bool is_dead; /* unsubscribed; freed once no fan-out walks the list */
    struct bus_sub *next;
};

struct bus {
    struct loopq *q;

    pthread_mutex_t lock; /* last_id, is_shutdown */
    pthread_cond_t cond;  /* on CLOCK_MONOTONIC; broadcast on both changes */
    uint64_t last_id;
    bool is_shutdown;

    pthread_mutex_t sub_lock; /* everything below */
    pthread_cond_t sub_cond;  /* a callback returned */
    struct bus_sub *subs, *subs_tail;
    size_t n_subs; /* live ones */
    uint64_t sub_seq;
    unsigned n_walking; /* fan-outs walking the list */
    bool has_dead;
    pthread_t walker;              /* the (loop) thread walking it */
    const struct bus_sub *current; /* whose callback runs now, or NULL */
};

/* One committed transaction on its way to the loop thread. */
struct bus_batch {
    struct bus *b;
    json_t *envelopes; /* a deep copy owned by the batch */
};

/* --------------------------------------------------------------- types */

static bool bus_type_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* [a-z0-9_-]+(\.[a-z0-9_-]+)*, at most BUS_TYPE_MAX bytes. */
static bool bus_type_valid(const char *type)
{
    size_t seg_len = 0;
    size_t i;

    if (!type)
        return false;
    for (i = 0; type[i]; i++) {
        if (i >= BUS_TYPE_MAX)
            return false;
        if (type[i] == '.') {
            if (seg_len == 0)
                return false;
            seg_len = 0;
        } else if (bus_type_char(type[i])) {
            seg_len++;
        } else {
            return false;
        }
    }
    return seg_len > 0;
}

/* One pattern of len bytes (not NUL-terminated) against a type. */
static bool bus_type_match_n(const char *pattern, size_t len, const char *type)
{
    size_t type_len = strlen(type);

    if (len == 1 && pattern[0] == '*')
        return true;
    if (len > 0 && pattern[len - 1] == '*')
        return type_len >= len - 1 && memcmp(type, pattern, len - 1) == 0;
    if (type_len < len || memcmp(type, pattern, len) != 0)
        return false;
    return type[len] == '\0' || type[len] == '.';
}

bool bus_type_match(const char *pattern, const char *type)
{
    if (!pattern || !type || !*pattern)
        return false;
    return bus_type_match_n(pattern, strlen(pattern), type);
}

/* Calls fn for each non-empty comma-separated item of filter, trimmed of
   spaces; stops when fn returns true and returns that. */
static bool bus_filter_each(const char *filter, bool (*fn)(const char *p, size_t len, void *arg),
                            void *arg)
{
    const char *p = filter;

    while (p && *p) {
        const char *end = strchr(p, ',');
        const char *next = end ? end + 1 : p + strlen(p);

        if (!end)
            end = next;
        while (p < end && *p == ' ')
            p++;
        while (end > p && end[-1] == ' ')
            end--;
        if (end > p && fn(p, (size_t)(end - p), arg))
            return true;
        p = next;
    }
    return false;
}

static bool bus_filter_item_any(const char *p, size_t len, void *arg)
{
    (void)p;
    (void)len;
    (void)arg;
    return true;
}

static bool bus_filter_item_match(const char *p, size_t len, void *arg)
{
    return bus_type_match_n(p, len, arg);
}

static bool bus_filter_item_is_star(const char *p, size_t len, void *arg)
{
    (void)arg;
    return len == 1 && p[0] == '*';
}

/* A filter with no pattern in it, or with "*", lets everything through. */
static bool bus_filter_all(const char *filter)
{
    return !bus_filter_each(filter, bus_filter_item_any, NULL) ||
           bus_filter_each(filter, bus_filter_item_is_star, NULL);
}

bool bus_filter_match(const char *filter, const char *type)
{
    if (!type)
        return false;
    if (bus_filter_all(filter))
        return true;
    return bus_filter_each(filter, bus_filter_item_match, (void *)type);
}

/* "*", or type characters and dots, optionally ending in '*'. */
static bool bus_pattern_valid_n(const char *p, size_t len)
{
    if (len == 0 || len > BUS_TYPE_MAX + 1)
        return false;
    if (p[len - 1] == '*')
        len--;
    for (size_t i = 0; i < len; i++)
        if (!bus_type_char(p[i]) && p[i] != '.')
            return false;
    return true;
}

static bool bus_filter_item_invalid(const char *p, size_t len, void *arg)
{
    (void)arg;
    return !bus_pattern_valid_n(p, len);
}

bool bus_filter_valid(const char *filter)
{
    if (filter && strlen(filter) > BUS_FILTER_MAX)
        return false;
    return !bus_filter_each(filter, bus_filter_item_invalid, NULL);
}

/* ------------------------------------------------------------ envelopes */

static uint64_t bus_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* RFC 3339 UTC with milliseconds: "2026-11-22T10:34:25.123Z". */
static void bus_format_time(int64_t time_ms, char out[32])
{
    /* 9999-12-31T23:59:59.999Z: four-digit years keep the format fixed. */
    const int64_t max_ms = INT64_C(253402300799999);
    time_t secs;
    struct tm tm;
    size_t n = 0;

    if (time_ms < 0)
        time_ms = 0;
    if (time_ms > max_ms)
        time_ms = max_ms;
    secs = (time_t)(time_ms / 1000);
    if (gmtime_r(&secs, &tm))
        n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        n = (size_t)snprintf(out, 32, "1970-01-01T00:00:00");
    snprintf(out + n, 32 - n, ".%03dZ", (int)(time_ms % 1000));
}

/* {"id","type","time","source","data"} in that order; steals data. */
static json_t *bus_envelope(int64_t id, const char *type, const char *source, int64_t time_ms,
                            json_t *data)
{
    json_t *env = json_object();
    char when[32];

    bus_format_time(time_ms, when);
    if (!env || json_object_set_new(env, "id", json_integer(id)) != 0 ||
        json_object_set_new(env, "type", json_string(type)) != 0 ||
        json_object_set_new(env, "time", json_string(when)) != 0 ||
        json_object_set_new(env, "source", json_string(source)) != 0) {
        json_decref(env);
        json_decref(data);
        return NULL;
    }
    /* json_object_set_new takes data even when it fails. */
    if (json_object_set_new(env, "data", data) != 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

int bus_event_insert(sqlite3 *db, const char *source, const char *type, json_t *data,
                     json_t **env_out)
{
    sqlite3_stmt *st = NULL;
    char *text = NULL;
    int64_t time_ms;
    int64_t id;
    int src;
    int rc = RD_OK;

    *env_out = NULL;
    if (!db || !bus_type_valid(type) || !json_is_object(data)) {
        rc = RD_EINVAL;
        goto out;
    }
    if (!source || !*source)
        source = "core";
    text = json_dumps(data, JSON_COMPACT);
    if (!text) {
        rc = RD_ENOMEM;
        goto out;
    }
    time_ms = (int64_t)bus_now_ms();
    src = sqlite3_prepare_v2(db,
                             "INSERT INTO core_events(type, source, time_ms, data)"
                             " VALUES(?, ?, ?, ?)",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 3, time_ms);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        log_msg("core", RD_WARN, "bus: storing %s event from %s failed: %s", type, source,
                sqlite3_errmsg(db));
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
        goto out;
    }
    id = sqlite3_last_insert_rowid(db);
    *env_out = bus_envelope(id, type, source, time_ms, data);
    data = NULL;
    if (!*env_out) {
        /* The row must not outlive a failed publish. */
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db, "DELETE FROM core_events WHERE id = ?", -1, &st, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_step(st);
        }
        rc = RD_ENOMEM;
    }
out:
    sqlite3_finalize(st);
    free(text);
    json_decref(data);
    return rc;
}

/* ------------------------------------------------------------- the bus */

int bus_new(struct loopq *q, struct bus **out)
{
    struct bus *b = calloc(1, sizeof(*b));
    pthread_condattr_t attr;

    *out = NULL;
    if (!b)
        return RD_ENOMEM;
    if (pthread_condattr_init(&attr) != 0) {
        free(b);
        return RD_ENOMEM;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&b->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        free(b);
        return RD_ENOMEM;
    }
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->sub_lock, NULL);
    pthread_cond_init(&b->sub_cond, NULL);
    b->q = q;
    *out = b;
    return RD_OK;
}

static void bus_sub_free(struct bus_sub *s)
{
    if (!s)
        return;
    free(s->pattern);
    free(s);
}

void bus_free(struct bus *b)
{
    struct bus_sub *s;

    if (!b)
        return;
    while ((s = b->subs)) {
        b->subs = s->next;
        bus_sub_free(s);
    }
    pthread_cond_destroy(&b->sub_cond);
    pthread_mutex_destroy(&b->sub_lock);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Frees unsubscribed entries. sub_lock held, nobody walking the list. */
static void bus_sweep(struct bus *b)
{
    struct bus_sub **pp = &b->subs;
    struct bus_sub *prev = NULL;

    while (*pp) {
        struct bus_sub *s = *pp;
        if (s->is_dead) {
            *pp = s->next;
            bus_sub_free(s);
        } else {
            prev = s;
            pp = &s->next;
        }
    }
    b->subs_tail = prev;
    b->has_dead = false;
}

int bus_subscribe(struct bus *b, void *owner, const char *pattern, rd_event_fn fn, void *arg)
{
    struct bus_sub *s;

    if (!b || !fn || !pattern || !bus_pattern_valid_n(pattern, strlen(pattern)))
        return RD_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->pattern = strdup(pattern))) {
        free(s);
        return RD_ENOMEM;
    }
    s->owner = owner;
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_lock(&b->sub_lock);
    s->seq = ++b->sub_seq;
    if (b->subs_tail)
        b->subs_tail->next = s;
    else
        b->subs = s;
    b->subs_tail = s;
    b->n_subs++;
    pthread_mutex_unlock(&b->sub_lock);
    return RD_OK;
}

void bus_unsubscribe_owner(struct bus *b, void *owner)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->sub_lock);
    for (struct bus_sub *s = b->subs; s; s = s->next) {
        if (s->owner == owner && !s->is_dead) {
            s->is_dead = true;
            b->has_dead = true;
            b->n_subs--;
        }
    }
    if (b->n_walking == 0) {
        bus_sweep(b);
    } else if (!pthread_equal(pthread_self(), b->walker)) {
        /* The owner may free arg once we return: let a callback of its
           that runs on the loop thread right now finish first. */
        while (b->n_walking > 0 && b->current && b->current->owner == owner)
            pthread_cond_wait(&b->sub_cond, &b->sub_lock);
    }
    pthread_mutex_unlock(&b->sub_lock);
}

/* Loop thread: one committed transaction to every matching subscriber. */
static void bus_fanout(void *arg)
{
    struct bus_batch *batch = arg;
    struct bus *b = batch->b;
    size_t i;
    json_t *env;

    pthread_mutex_lock(&b->sub_lock);
    b->n_walking++;
    b->walker = pthread_self();
    json_array_foreach(batch->envelopes, i, env)
    {
        uint64_t id = (uint64_t)json_integer_value(json_object_get(env, "id"));
        const char *type = json_string_value(json_object_get(env, "type"));
        const json_t *data = json_object_get(env, "data");
        uint64_t max_seq = b->sub_seq;

        if (!type)
            continue;
        /* Entries are not freed while n_walking > 0, so s and s->next stay
           valid while the lock is dropped for the callback. */
        for (struct bus_sub *s = b->subs; s; s = s->next) {
            if (s->is_dead || s->seq > max_seq || !bus_type_match(s->pattern, type))
                continue;
            b->current = s;
            pthread_mutex_unlock(&b->sub_lock);
            s->fn(s->arg, id, type, data);
            pthread_mutex_lock(&b->sub_lock);
            b->current = NULL;
            pthread_cond_broadcast(&b->sub_cond);
        }
    }
    b->n_walking--;
    if (b->n_walking == 0 && b->has_dead)
        bus_sweep(b);
    pthread_mutex_unlock(&b->sub_lock);
    json_decref(batch->envelopes);
    free(batch);
}

void bus_committed(void *bus, const json_t *envelopes)
{
    struct bus *b = bus;
    struct bus_batch *batch = NULL;
    uint64_t max_id = 0;
    bool has_subs;
    size_t i;
    json_t *env;

    if (!b || !json_is_array(envelopes) || json_array_size(envelopes) == 0)
        return;
    json_array_foreach(envelopes, i, env)
    {
        json_int_t id = json_integer_value(json_object_get(env, "id"));
        if (id > 0 && (uint64_t)id > max_id)
            max_id = (uint64_t)id;
    }
    pthread_mutex_lock(&b->lock);
    if (max_id > b->last_id)
        b->last_id = max_id;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);

    pthread_mutex_lock(&b->sub_lock);
    has_subs = b->n_subs > 0;
    pthread_mutex_unlock(&b->sub_lock);
    if (!has_subs || !b->q)
        return;
    /* A copy: the loop thread must not share objects with the publisher. */
    batch = malloc(sizeof(*batch));
    if (batch) {
        batch->b = b;
        batch->envelopes = json_deep_copy(envelopes);
    }
    if (!batch || !batch->envelopes) {
        log_msg("core", RD_ERROR, "bus: out of memory, %zu events not fanned out",
                json_array_size(envelopes));
        goto fail;
    }
    if (loopq_push(b->q, bus_fanout, batch) != RD_OK) {
        log_msg("core", RD_WARN, "bus: loop queue closed, %zu events not fanned out",
                json_array_size(envelopes));
        goto fail;
    }
    return;
fail:
    if (batch)
        json_decref(batch->envelopes);
    free(batch);
}

void bus_set_last_id(struct bus *b, uint64_t id)
{
    pthread_mutex_lock(&b->lock);
    b->last_id = id;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

uint64_t bus_last_id(struct bus *b)
{
    uint64_t id;

    pthread_mutex_lock(&b->lock);
    id = b->last_id;
    pthread_mutex_unlock(&b->lock);
    return id;
}

uint64_t bus_wait(struct bus *b, uint64_t after, uint64_t timeout_ms)
{
    struct timespec deadline;
    uint64_t id;

    if (timeout_ms > BUS_WAIT_MAX_MS)
        timeout_ms = BUS_WAIT_MAX_MS;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000u);
    deadline.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->lock);
    /* The condition is on a counter that only grows, so a commit between
       the caller's read and this wait is never missed. */
    while (!b->is_shutdown && b->last_id <= after) {
        if (pthread_cond_timedwait(&b->cond, &b->lock, &deadline) == ETIMEDOUT)
            break;
    }
    id = b->last_id;
    pthread_mutex_unlock(&b->lock);
    return id;
}

void bus_shutdown(struct bus *b)
{
    pthread_mutex_lock(&b->lock);
    b->is_shutdown = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

bool bus_is_shutdown(struct bus *b)
{
    bool is_shutdown;

    pthread_mutex_lock(&b->lock);
    is_shutdown = b->is_shutdown;
    pthread_mutex_unlock(&b->lock);
    return is_shutdown;
}

/* -------------------------------------------------------- reading back */

struct bus_read_ctx {
    uint64_t after;
    const char *filter;
    size_t limit;
    json_t *out;
    uint64_t scanned;
};

/* The envelope of the current row of
   SELECT id, type, source, time_ms, data; NULL when out of memory. */
static json_t *bus_row_envelope(sqlite3_stmt *st)
{
    int64_t id = sqlite3_column_int64(st, 0);
    const char *type = (const char *)sqlite3_column_text(st, 1);
    const char *source = (const char *)sqlite3_column_text(st, 2);
    int64_t time_ms = sqlite3_column_int64(st, 3);
    const char *text = (const char *)sqlite3_column_text(st, 4);
    json_error_t jerr;
    json_t *data = json_loads(text ? text : "", 0, &jerr);

    if (!json_is_object(data)) {
        /* Only a hand-edited row gets here. Deliver it rather than wedge
           every reader at this id. */
        log_msg("core", RD_WARN, "bus: event %" PRId64 " has unreadable data (%s); sent as {}", id,
                data ? "not an object" : jerr.text);
        json_decref(data);
        data = json_object();
        if (!data)
            return NULL;
    }
    return bus_envelope(id, type ? type : "", source ? source : "", time_ms, data);
}

static int bus_read_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct bus_read_ctx *c = arg;
    bool is_all = bus_filter_all(c->filter);
    sqlite3_stmt *st = NULL;
    int src;
    int rc = RD_OK;

    /* Without a filter SQL can stop at limit rows. With one, rows are
       matched here (the same code as subscriptions) and the scan stops at
       limit matches; only matching rows are parsed. */
    src = sqlite3_prepare_v2(tx->db,
                             is_all ? "SELECT id, type, source, time_ms, data FROM core_events"
                                      " WHERE id > ?1 ORDER BY id LIMIT ?2"
                                    : "SELECT id, type, source, time_ms, data FROM core_events"
                                      " WHERE id > ?1 ORDER BY id",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 1, (sqlite3_int64)c->after);
    if (src == SQLITE_OK && is_all)
        src =
            sqlite3_bind_int64(st, 2, c->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)c->limit);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        const char *type;
        json_t *env;

        src = sqlite3_step(st);
        if (src != SQLITE_ROW)
            break;
        c->scanned = (uint64_t)sqlite3_column_int64(st, 0);
        type = (const char *)sqlite3_column_text(st, 1);
        if (!is_all && !bus_filter_match(c->filter, type ? type : ""))
            continue;
        env = bus_row_envelope(st);
        if (!env || json_array_append_new(c->out, env) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
        if (json_array_size(c->out) >= c->limit)
            goto out;
    }
    if (src != SQLITE_DONE) {
        log_msg("core", RD_WARN, "bus: reading events after %" PRIu64 ": %s", c->after,
                sqlite3_errmsg(tx->db));
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

int bus_read_after_scan(struct store *s, uint64_t after, const char *filter, size_t limit,
                        json_t **out, uint64_t *scanned_out)
{
    struct bus_read_ctx c = {.after = after, .filter = filter, .limit = limit, .scanned = after};
    int rc = RD_OK;

    *out = NULL;
    if (scanned_out)
        *scanned_out = after;
    if (!s)
        return RD_EINVAL;
    c.out = json_array();
    if (!c.out)
        return RD_ENOMEM;
    /* Ids are SQLite integers: nothing lies beyond INT64_MAX. */
    if (limit > 0 && after < (uint64_t)INT64_MAX)
        rc = store_read(s, NULL, bus_read_tx, &c);
    if (rc != RD_OK) {
        json_decref(c.out);
        return rc;
    }
    *out = c.out;
    if (scanned_out)
        *scanned_out = c.scanned;
    return RD_OK;
}

int bus_read_after(struct store *s, uint64_t after, const char *filter, size_t limit, json_t **out)
{
    return bus_read_after_scan(s, after, filter, limit, out, NULL);
}

static int bus_max_id_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    uint64_t *out = arg;
    sqlite3_stmt *st = NULL;
    int src;
    int rc = RD_OK;

    src = sqlite3_prepare_v2(tx->db, "SELECT COALESCE(MAX(id), 0) FROM core_events", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        *out = id > 0 ? (uint64_t)id : 0;
    } else {
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int bus_max_id(struct store *s, uint64_t *out)
{
    *out = 0;
    if (!s)
        return RD_EINVAL;
    return store_read(s, NULL, bus_max_id_tx, out);
}

/* ------------------------------------------------------------ pruning */

struct bus_prune_ctx {
    int64_t cutoff_ms;
    int64_t keep_min;
    int n_deleted;
};

static int bus_prune_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct bus_prune_ctx *c = arg;
    sqlite3_stmt *st = NULL;
    int src;
    int rc = RD_OK;

    /* The newest row beyond the keep_min newest bounds the delete; with
       fewer rows there is nothing to delete. */
    src = sqlite3_prepare_v2(tx->db,
                             "DELETE FROM core_events WHERE id IN (SELECT id FROM core_events"
                             " WHERE time_ms < ?1 AND id <= (SELECT id FROM core_events"
                             " ORDER BY id DESC LIMIT 1 OFFSET ?2)"
                             " ORDER BY id LIMIT ?3)",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 1, c->cutoff_ms);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 2, c->keep_min);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int(st, 3, BUS_PRUNE_BATCH);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        c->n_deleted = sqlite3_changes(tx->db);
    } else {
        log_msg("core", RD_WARN, "bus: pruning events: %s", sqlite3_errmsg(tx->db));
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int bus_prune(struct store *s, uint64_t now_ms, uint64_t keep_ms, uint64_t keep_min)
{
    struct bus_prune_ctx c = {0};
    int total = 0;
    int rc;

    if (!s)
        return RD_EINVAL;
    if (keep_ms >= now_ms)
        return 0;
    c.cutoff_ms = now_ms - keep_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(now_ms - keep_ms);
    c.keep_min = keep_min > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)keep_min;
    /* In batches, so that a large backlog does not hold the writer for
       long: other writers get their turn between batches. */
    do {
        c.n_deleted = 0;
        rc = store_write(s, NULL, "core", bus_prune_tx, &c);
        if (rc != RD_OK)
            return rc;
        total = total > INT_MAX - c.n_deleted ? INT_MAX : total + c.n_deleted;
    } while (c.n_deleted == BUS_PRUNE_BATCH);
    return total;
}
