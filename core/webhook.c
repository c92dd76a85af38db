/* SPDX-License-Identifier: MIT */
/*
 * core/webhook.c -- webhooks: every configured webhook POSTs the envelopes
 * of core_events, in id order, to its URL, one request at a time. Its
 * cursor (the last id delivered or skipped), the failed attempts at the next
 * event, the time before which it must not retry and the last error live in
 * core_webhook_cursors, so a restart resumes where delivery stopped and a
 * backoff survives it. A new webhook starts at the newest event; a webhook
 * removed from the configuration loses its row. Events that do not match a
 * webhook's types move its cursor without a request. A failed delivery (no
 * 2xx) is retried after first_ms, doubling up to max_ms (1 s .. 5 min), up
 * to max_attempts, then skipped with a WARN. Requests go through core/fetch;
 * each is signed with X-Relengd-Signature: sha256=<hex HMAC-SHA256>.
 * Loop thread only (webhook_sign: any thread).
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/err.h"
#include "core/log.h"
#include "core/webhook.h"

#define WEBHOOK_FIRST_MS 1000u
#define WEBHOOK_MAX_MS (5u * 60u * 1000u)
#define WEBHOOK_TIMEOUT_MS 10000u
#define WEBHOOK_ERROR_MAX 200
#ifdef PACKAGE_VERSION
#define WEBHOOK_USER_AGENT "relengd/" PACKAGE_VERSION
#else
#define WEBHOOK_USER_AGENT "relengd"
#endif

struct hook;

/* One POST in flight. */
struct delivery {
    struct hook *hook;
    uint64_t id;
    char *body;
    struct curl_slist *headers;
    struct timespec started;
    char errbuf[CURL_ERROR_SIZE];
};

struct hook {
    struct webhooks *w;
    char *name, *url, *secret, *types;
    uint64_t timeout_ms;
    int64_t max_attempts;

    uint64_t cursor;  /* last id delivered or skipped */
    int64_t attempts; /* failed attempts at the event after cursor */
    uint64_t next_ms; /* wall clock: no attempt before */
    char *last_error; /* NULL when the last attempt worked */

    struct delivery *inflight;
    bool is_dropping;    /* fetch_drop_owner runs for this hook */
    struct event *retry; /* backoff and read-error timer */
    struct rd_metric *m_ok, *m_error, *m_seconds;
    struct hook *next;
};

struct webhooks {
    struct event_base *base;
    struct store *store;
    struct bus *bus;
    struct fetch *fetch;
    struct metrics *metrics;
    struct hook *hooks;
    uint64_t first_ms, max_ms;
};

static void hook_pump(struct hook *hk);

/* ------------------------------------------------------------ helpers */

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void webhook_sign(const char *secret, const char *body, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (!secret)
        secret = "";
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
              &mac_len) ||
        mac_len != 32) {
        /* Only an OpenSSL without SHA-256 gets here: sign with nothing
           rather than with garbage, so receivers reject the delivery. */
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0xf];
    }
    out[64] = '\0';
}

static void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    curl_slist_free_all(d->headers);
    free(d->body);
    free(d);
}

static void hook_set_error(struct hook *hk, const char *msg)
{
    free(hk->last_error);
    hk->last_error = msg ? strndup(msg, WEBHOOK_ERROR_MAX) : NULL;
}

static void hook_free(struct hook *hk)
{
    if (!hk)
        return;
    if (hk->inflight) {
        /* Aborting runs the done callback, which frees the delivery. */
        hk->is_dropping = true;
        fetch_drop_owner(hk->w->fetch, hk);
        hk->is_dropping = false;
    }
    if (hk->retry)
        event_free(hk->retry);
    free(hk->name);
    free(hk->url);
    free(hk->secret);
    free(hk->types);
    free(hk->last_error);
    free(hk);
}

/* Runs hook_pump again after delay_ms. */
static void hook_arm(struct hook *hk, uint64_t delay_ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)((delay_ms % 1000) * 1000);
    if (evtimer_add(hk->retry, &tv) != 0)
        log_msg("core", RD_ERROR, "webhook %s: cannot arm the retry timer", hk->name);
}

static void hook_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hook_pump(arg);
}

/* ---------------------------------------------------------- the table */

struct cursor_row {
    const char *name;
    bool found;
    uint64_t last_id;
    int64_t attempts;
    uint64_t next_ms;
    char *last_error; /* malloc'd */
};

static int cursor_read_row(sqlite3 *db, struct cursor_row *row)
{
    sqlite3_stmt *st = NULL;
    int src, rc = RD_OK;

    src = sqlite3_prepare_v2(db,
                             "SELECT last_id, attempts, next_ms, last_error"
                             " FROM core_webhook_cursors WHERE name = ?",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, row->name, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *err = (const char *)sqlite3_column_text(st, 3);
        sqlite3_int64 last_id = sqlite3_column_int64(st, 0);
        sqlite3_int64 next_ms = sqlite3_column_int64(st, 2);

        row->found = true;
        row->last_id = last_id > 0 ? (uint64_t)last_id : 0;
        row->attempts = sqlite3_column_int64(st, 1);
        row->next_ms = next_ms > 0 ? (uint64_t)next_ms : 0;
        if (err && !(row->last_error = strdup(err)))
            rc = RD_ENOMEM;
    } else if (src != SQLITE_DONE) {
        log_msg("core", RD_WARN, "webhook %s: reading its cursor: %s", row->name,
                sqlite3_errmsg(db));
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

static int cursor_write_row(sqlite3 *db, const char *name, uint64_t last_id, int64_t attempts,
                            uint64_t next_ms, const char *last_error)
{
    sqlite3_stmt *st = NULL;
    int src, rc = RD_OK;

    src = sqlite3_prepare_v2(db,
                             "INSERT INTO core_webhook_cursors(name, last_id, attempts, next_ms,"
                             " last_error) VALUES(?1, ?2, ?3, ?4, ?5)"
                             " ON CONFLICT(name) DO UPDATE SET last_id = ?2, attempts = ?3,"
                             " next_ms = ?4, last_error = ?5",
                             -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 2, (sqlite3_int64)last_id);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 3, attempts);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 4, (sqlite3_int64)next_ms);
    if (src == SQLITE_OK)
        src = last_error ? sqlite3_bind_text(st, 5, last_error, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(st, 5);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_DONE) {
        log_msg("core", RD_WARN, "webhook %s: saving its cursor: %s", name, sqlite3_errmsg(db));
        rc = store_sqlite_err(src);
        if (rc == RD_OK)
            rc = RD_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

static int hook_save_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct hook *hk = arg;

    return cursor_write_row(tx->db, hk->name, hk->cursor, hk->attempts, hk->next_ms,
                            hk->last_error);
}

/* Persists the hook's state. The memory copy stays authoritative for this
   run when the write fails: a restart then repeats at most what was not
   saved (at-least-once). */
static void hook_save(struct hook *hk)
{
    int rc = store_write(hk->w->store, NULL, "core", hook_save_tx, hk);

    if (rc != RD_OK)
        log_msg("core", RD_WARN, "webhook %s: cannot save cursor %" PRIu64 ": %s", hk->name,
                hk->cursor, rd_strerror(rc));
}

/* --------------------------------------------------------- delivering */

static size_t discard_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static uint64_t backoff_ms(const struct webhooks *w, int64_t attempts)
{
    uint64_t d = w->first_ms;

    for (int64_t i = 1; i < attempts && d < w->max_ms; i++)
        d *= 2;
    return d < w->max_ms ? d : w->max_ms;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A failed attempt at event id: retry later, or skip it after max_attempts. */
static void hook_failed(struct hook *hk, uint64_t id, const char *why)
{
    hook_set_error(hk, why);
    metrics_add(hk->m_error, 1);
    hk->attempts++;
    if (hk->attempts >= hk->max_attempts) {
        log_msg("core", RD_WARN,
                "webhook %s: skipping event %" PRIu64 " after %" PRId64 " attempts: %s", hk->name,
                id, hk->attempts, why);
        hk->cursor = id;
        hk->attempts = 0;
        hk->next_ms = 0;
        hook_save(hk);
        /* Through the loop, not recursion: a long run of failures to even
           start a request must not grow the stack. */
        hook_arm(hk, 0);
        return;
    }
    hk->next_ms = wall_ms() + backoff_ms(hk->w, hk->attempts);
    log_msg("core", RD_DEBUG, "webhook %s: event %" PRIu64 " attempt %" PRId64 " failed: %s",
            hk->name, id, hk->attempts, why);
    hook_save(hk);
    hook_arm(hk, backoff_ms(hk->w, hk->attempts));
}

static void hook_on_done(void *arg, CURL *easy, CURLcode result)
{
    struct delivery *d = arg;
    struct hook *hk = d->hook;
    long status = 0;
    char why[CURL_ERROR_SIZE + 32];
    uint64_t id = d->id;

    hk->inflight = NULL;
    metrics_observe(hk->m_seconds, seconds_since(&d->started));
    if (result == CURLE_ABORTED_BY_CALLBACK) {
        /* Dropped (reconfigure, shutdown): not the receiver's fault, so
           not an attempt. If the hook lives on, try again soon. */
        delivery_free(d);
        if (!hk->is_dropping)
            hook_arm(hk, hk->w->first_ms);
        return;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK && status >= 200 && status <= 299) {
        delivery_free(d);
        metrics_add(hk->m_ok, 1);
        hk->cursor = id;
        hk->attempts = 0;
        hk->next_ms = 0;
        hook_set_error(hk, NULL);
        hook_save(hk);
        hook_pump(hk);
        return;
    }
    if (result != CURLE_OK)
        snprintf(why, sizeof(why), "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(result));
    else
        snprintf(why, sizeof(why), "HTTP %ld", status);
    delivery_free(d);
    hook_failed(hk, id, why);
}

/* Starts the POST of envelope env. */
static int hook_send(struct hook *hk, const json_t *env)
{
    struct delivery *d = NULL;
    CURL *easy = NULL;
    char sig[65], line[256];
    const char *type = json_string_value(json_object_get(env, "type"));
    json_int_t id = json_integer_value(json_object_get(env, "id"));
    struct curl_slist *h;
    int rc;

    d = calloc(1, sizeof(*d));
    if (!d)
        return RD_ENOMEM;
    d->hook = hk;
    d->id = id > 0 ? (uint64_t)id : 0;
    d->body = json_dumps(env, JSON_COMPACT);
    easy = curl_easy_init();
    if (!d->body || !easy) {
        rc = RD_ENOMEM;
        goto out;
    }
    webhook_sign(hk->secret, d->body, strlen(d->body), sig);
    /* "Expect:" turns off 100-continue: one round trip per delivery. */
    h = curl_slist_append(NULL, "Content-Type: application/json");
    d->headers = h;
    if (h)
        h = curl_slist_append(d->headers, "Expect:");
    snprintf(line, sizeof(line), "X-Relengd-Event: %s", type ? type : "");
    if (h)
        h = curl_slist_append(d->headers, line);
    snprintf(line, sizeof(line), "X-Relengd-Delivery: %" PRIu64, d->id);
    if (h)
        h = curl_slist_append(d->headers, line);
    snprintf(line, sizeof(line), "X-Relengd-Signature: sha256=%s", sig);
    if (h)
        h = curl_slist_append(d->headers, line);
    if (!h) {
        rc = RD_ENOMEM;
        goto out;
    }
    curl_easy_setopt(easy, CURLOPT_URL, hk->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)hk->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, d->errbuf);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, WEBHOOK_USER_AGENT);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    clock_gettime(CLOCK_MONOTONIC, &d->started);
    hk->inflight = d;
    rc = fetch_add(hk->w->fetch, hk, easy, hook_on_done, d);
    easy = NULL; /* fetch_add took it */
    if (rc != RD_OK) {
        hk->inflight = NULL;
        goto out;
    }
    d = NULL;
out:
    curl_easy_cleanup(easy);
    delivery_free(d);
    return rc;
}

/* Moves the hook on: sends the next matching event, or advances the cursor
   over events that do not match, or waits for its backoff. Idle when there
   is nothing to send; webhooks_kick wakes it. */
static void hook_pump(struct hook *hk)
{
    json_t *events = NULL;
    uint64_t scanned = hk->cursor, now;
    int rc;

    if (hk->inflight || hk->is_dropping)
        return;
    now = wall_ms();
    if (hk->next_ms > now) {
        hook_arm(hk, hk->next_ms - now);
        return;
    }
    evtimer_del(hk->retry);
    rc = bus_read_after_scan(hk->w->store, hk->cursor, hk->types, 1, &events, &scanned);
    if (rc != RD_OK) {
        log_msg("core", RD_WARN, "webhook %s: reading events after %" PRIu64 ": %s", hk->name,
                hk->cursor, rd_strerror(rc));
        hook_arm(hk, hk->w->first_ms);
        return;
    }
    if (json_array_size(events) == 0) {
        /* Nothing to send; skip what did not match. */
        if (scanned > hk->cursor) {
            hk->cursor = scanned;
            hook_save(hk);
        }
        json_decref(events);
        return;
    }
    rc = hook_send(hk, json_array_get(events, 0));
    if (rc != RD_OK) {
        json_int_t id = json_integer_value(json_object_get(json_array_get(events, 0), "id"));
        json_decref(events);
        hook_failed(hk, id > 0 ? (uint64_t)id : hk->cursor + 1, "cannot start the request");
        return;
    }
    json_decref(events);
}

/* ------------------------------------------------------------- public */

int webhooks_new(struct event_base *base, struct store *s, struct bus *b, struct fetch *f,
                 struct metrics *ms, struct webhooks **out)
{
    struct webhooks *w;

    *out = NULL;
    if (!base || !s || !f)
        return RD_EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return RD_ENOMEM;
    w->base = base;
    w->store = s;
    w->bus = b;
    w->fetch = f;
    w->metrics = ms;
    w->first_ms = WEBHOOK_FIRST_MS;
    w->max_ms = WEBHOOK_MAX_MS;
    *out = w;
    return RD_OK;
}

void webhooks_set_backoff_ms(struct webhooks *w, uint64_t first_ms, uint64_t max_ms)
{
    if (!w)
        return;
    w->first_ms = first_ms ? first_ms : 1;
    w->max_ms = max_ms >= w->first_ms ? max_ms : w->first_ms;
}

static int conf_check(const struct webhook_conf *confs, size_t n, struct rd_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct webhook_conf *c = &confs[i];

        if (!c->name || !*c->name)
            return rd_error_set(err, RD_EINVAL, "webhook %zu has no name", i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(confs[j].name, c->name) == 0)
                return rd_error_set(err, RD_EINVAL, "webhook %s is configured twice", c->name);
        if (!c->url || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0))
            return rd_error_set(err, RD_EINVAL, "webhook %s: url must be http(s)://...", c->name);
        if (!bus_filter_valid(c->types))
            return rd_error_set(err, RD_EINVAL, "webhook %s: bad types '%s'", c->name, c->types);
        if (c->max_attempts < 1)
            return rd_error_set(err, RD_EINVAL, "webhook %s: max_attempts must be at least 1",
                                c->name);
    }
    return RD_OK;
}

struct configure_ctx {
    const struct webhook_conf *confs;
    size_t n;
    struct cursor_row *rows; /* one per conf */
};

/* One write transaction: loads each webhook's row, creating the missing
   ones at the newest event, and deletes the rows of webhooks that are gone. */
static int configure_tx(struct rd_tx *t, void *arg)
{
    struct store_tx *tx = (struct store_tx *)t;
    struct configure_ctx *c = arg;
    sqlite3_stmt *st = NULL;
    uint64_t max_id = 0;
    int src, rc = RD_OK;

    src = sqlite3_prepare_v2(tx->db, "SELECT COALESCE(MAX(id), 0) FROM core_events", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        max_id = v > 0 ? (uint64_t)v : 0;
        src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (src != SQLITE_OK)
        goto sql_error;

    /* The rows of webhooks no longer configured. */
    src = sqlite3_prepare_v2(tx->db, "SELECT name FROM core_webhook_cursors", -1, &st, NULL);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        const char *name;
        bool keep = false;
        sqlite3_stmt *del = NULL;

        src = sqlite3_step(st);
        if (src != SQLITE_ROW)
            break;
        name = (const char *)sqlite3_column_text(st, 0);
        for (size_t i = 0; name && i < c->n && !keep; i++)
            keep = strcmp(c->confs[i].name, name) == 0;
        if (keep || !name)
            continue;
        src = sqlite3_prepare_v2(tx->db, "DELETE FROM core_webhook_cursors WHERE name = ?", -1,
                                 &del, NULL);
        if (src == SQLITE_OK)
            src = sqlite3_bind_text(del, 1, name, -1, SQLITE_TRANSIENT);
        if (src == SQLITE_OK)
            src = sqlite3_step(del);
        sqlite3_finalize(del);
        if (src != SQLITE_DONE)
            break;
        log_msg("core", RD_INFO, "webhook %s: removed from the configuration; cursor dropped",
                name);
        src = SQLITE_ROW;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (src != SQLITE_DONE)
        goto sql_error;

    for (size_t i = 0; i < c->n; i++) {
        struct cursor_row *row = &c->rows[i];

        rc = cursor_read_row(tx->db, row);
        if (rc != RD_OK)
            return rc;
        if (row->found)
            continue;
        /* A new webhook sends what happens from now on, not the history. */
        row->last_id = max_id;
        rc = cursor_write_row(tx->db, row->name, max_id, 0, 0, NULL);
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;

sql_error:
    log_msg("core", RD_WARN, "webhooks: configuring: %s", sqlite3_errmsg(tx->db));
    rc = store_sqlite_err(src);
    return rc == RD_OK ? RD_EIO : rc;
}

static struct hook *hook_find(struct webhooks *w, const char *name)
{
    for (struct hook *hk = w->hooks; hk; hk = hk->next)
        if (strcmp(hk->name, name) == 0)
            return hk;
    return NULL;
}

/* Copies c's settings into hk (strings replaced only when all copies worked). */
static int hook_apply_conf(struct hook *hk, const struct webhook_conf *c)
{
    char *url = strdup(c->url);
    char *secret = strdup(c->secret ? c->secret : "");
    char *types = strdup(c->types ? c->types : "");

    if (!url || !secret || !types) {
        free(url);
        free(secret);
        free(types);
        return RD_ENOMEM;
    }
    free(hk->url);
    free(hk->secret);
    free(hk->types);
    hk->url = url;
    hk->secret = secret;
    hk->types = types;
    hk->timeout_ms = c->timeout_ms ? c->timeout_ms : WEBHOOK_TIMEOUT_MS;
    if (hk->timeout_ms > (uint64_t)LONG_MAX)
        hk->timeout_ms = (uint64_t)LONG_MAX;
    hk->max_attempts = c->max_attempts;
    return RD_OK;
}

static struct hook *hook_new(struct webhooks *w, const struct webhook_conf *c,
                             struct cursor_row *row)
{
    struct hook *hk = calloc(1, sizeof(*hk));
    char tags[256];

    if (!hk)
        return NULL;
    hk->w = w;
    hk->name = strdup(c->name);
    hk->retry = evtimer_new(w->base, hook_on_timer, hk);
    if (!hk->name || !hk->retry || hook_apply_conf(hk, c) != RD_OK) {
        hook_free(hk);
        return NULL;
    }
    hk->cursor = row->last_id;
    hk->attempts = row->attempts > 0 ? row->attempts : 0;
    hk->next_ms = row->next_ms;
    hk->last_error = row->last_error;
    row->last_error = NULL;
    /* A name with ',' cannot be a tag value: such a webhook goes uncounted. */
    if (!strchr(c->name, ',')) {
        snprintf(tags, sizeof(tags), "webhook=%s,result=ok", c->name);
        hk->m_ok = metrics_get(w->metrics, RD_COUNTER, NULL, "webhook.deliveries",
                               "Webhook delivery attempts by result.", tags);
        snprintf(tags, sizeof(tags), "webhook=%s,result=error", c->name);
        hk->m_error = metrics_get(w->metrics, RD_COUNTER, NULL, "webhook.deliveries",
                                  "Webhook delivery attempts by result.", tags);
        snprintf(tags, sizeof(tags), "webhook=%s", c->name);
        hk->m_seconds = metrics_get(w->metrics, RD_HISTOGRAM, NULL, "webhook.delivery_seconds",
                                    "Time for one webhook delivery attempt.", tags);
    }
    return hk;
}

int webhooks_configure(struct webhooks *w, const struct webhook_conf *confs, size_t n,
                       struct rd_error *err)
{
    struct configure_ctx c = {.confs = confs, .n = n};
    struct hook *fresh = NULL, **tail = &fresh;
    int rc;

    if (!w || (n && !confs))
        return rd_error_set(err, RD_EINVAL, "webhooks: bad arguments");
    rc = conf_check(confs, n, err);
    if (rc != RD_OK)
        return rc;
    if (n) {
        c.rows = calloc(n, sizeof(*c.rows));
        if (!c.rows)
            return rd_error_set(err, RD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        c.rows[i].name = confs[i].name;
    rc = store_write(w->store, NULL, "core", configure_tx, &c);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "webhooks: cannot read or create their cursors: %s", rd_strerror(rc));
        goto out;
    }

    /* Build the new list: a webhook that stays keeps its state and its
       delivery in flight; new ones come from their rows. Nothing of the old
       list changes until every new hook exists. */
    for (size_t i = 0; i < n; i++) {
        struct hook *hk = hook_find(w, confs[i].name);
        if (hk)
            continue;
        hk = hook_new(w, &confs[i], &c.rows[i]);
        if (!hk) {
            rc = rd_error_set(err, RD_ENOMEM, "out of memory");
            goto out;
        }
        *tail = hk;
        tail = &hk->next;
    }
    for (size_t i = 0; i < n; i++) {
        struct hook *hk = hook_find(w, confs[i].name);
        if (hk && hook_apply_conf(hk, &confs[i]) != RD_OK) {
            rc = rd_error_set(err, RD_ENOMEM, "out of memory");
            goto out;
        }
    }
    /* Drop the old hooks that are gone, then append the new ones. */
    {
        struct hook **pp = &w->hooks;
        while (*pp) {
            struct hook *hk = *pp;
            bool keep = false;
            for (size_t i = 0; i < n && !keep; i++)
                keep = strcmp(confs[i].name, hk->name) == 0;
            if (keep) {
                pp = &hk->next;
                continue;
            }
            *pp = hk->next;
            hook_free(hk);
        }
        *pp = fresh;
        fresh = NULL;
    }
    for (struct hook *hk = w->hooks; hk; hk = hk->next)
        hook_pump(hk);
    log_msg("core", RD_INFO, "webhooks: %zu configured", n);
out:
    while (fresh) {
        struct hook *next = fresh->next;
        hook_free(fresh);
        fresh = next;
    }
    for (size_t i = 0; i < n; i++)
        free(c.rows[i].last_error);
    free(c.rows);
    return rc;
}

void webhooks_kick(struct webhooks *w)
{
    if (!w)
        return;
    for (struct hook *hk = w->hooks; hk; hk = hk->next)
        hook_pump(hk);
}

void webhooks_free(struct webhooks *w)
{
    if (!w)
        return;
    while (w->hooks) {
        struct hook *hk = w->hooks;
        w->hooks = hk->next;
        hook_free(hk);
    }
    free(w);
}

json_t *webhooks_status(struct webhooks *w)
{
    json_t *arr = json_array();

    if (!arr || !w)
        return arr;
    for (struct hook *hk = w->hooks; hk; hk = hk->next) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:s?}", "name", hk->name, "types",
                              hk->types, "cursor", (json_int_t)hk->cursor, "attempts",
                              (json_int_t)hk->attempts, "next_ms", (json_int_t)hk->next_ms,
                              "in_flight", hk->inflight != NULL, "last_error", hk->last_error);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
