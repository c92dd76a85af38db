/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_webhook.c -- core/webhook.c end to end on one loop: a
 * real store in a temporary directory, the bus, core/fetch, and a receiver
 * (libevent's evhttp on 127.0.0.1, port 0) that checks every signature.
 * Covers order, headers, retries with backoff (short, injected), giving up
 * after max_attempts, type filters, new webhooks starting at the newest
 * event, resuming from the stored cursor after a restart, one delivery in
 * flight, and reconfiguration.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/bus.h"
#include "core/fetch.h"
#include "core/log.h"
#include "core/loopq.h"
#include "core/metrics.h"
#include "core/store.h"
#include "core/webhook.h"

#define MAX_REQS 64

struct seen {
    uint64_t delivery;  /* X-Relengd-Delivery */
    char event[64];     /* X-Relengd-Event */
    uint64_t body_id;   /* "id" of the body */
    char body_type[64]; /* "type" of the body */
    int64_t n;          /* data.n, or -1 */
    uint64_t at_ms;
    int status; /* what the receiver answered; 0: no answer */
};

struct fixture {
    char dir[64];
    char db[128];
    struct event_base *base;
    struct loopq *q;
    struct store *s;
    struct bus *bus;
    struct fetch *f;
    struct metrics *ms;
    struct webhooks *w;
    struct evhttp *http;
    struct event *tick;
    int port;
    char url[96];

    /* the receiver */
    const char *secret;
    int fail_next;         /* answer 500 to this many requests */
    const char *fail_type; /* answer 500 to every event of this type */
    bool hang;             /* never answer */
    struct seen reqs[MAX_REQS];
    int n_reqs, n_ok, n_bad;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ receiver */

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fixture *fx = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    char *body = calloc(1, len + 1);
    const char *sig = evhttp_find_header(in, "X-Relengd-Signature");
    const char *event = evhttp_find_header(in, "X-Relengd-Event");
    const char *delivery = evhttp_find_header(in, "X-Relengd-Delivery");
    const char *ctype = evhttp_find_header(in, "Content-Type");
    char want[80], hex[65];
    struct seen *r;
    json_t *env;
    bool good = true;

    if (!body || fx->n_reqs >= MAX_REQS) {
        free(body);
        evhttp_send_error(req, 500, "test receiver full");
        return;
    }
    evbuffer_copyout(buf, body, len);
    r = &fx->reqs[fx->n_reqs++];
    memset(r, 0, sizeof(*r));
    r->n = -1;
    r->at_ms = now_ms();
    webhook_sign(fx->secret, body, len, hex);
    snprintf(want, sizeof(want), "sha256=%s", hex);
    if (!sig || strcmp(sig, want) != 0 || !ctype || strcmp(ctype, "application/json") != 0 ||
        evhttp_request_get_command(req) != EVHTTP_REQ_POST)
        good = false;
    snprintf(r->event, sizeof(r->event), "%s", event ? event : "");
    r->delivery = delivery ? strtoull(delivery, NULL, 10) : 0;
    env = json_loads(body, 0, NULL);
    if (env) {
        json_t *n = json_object_get(json_object_get(env, "data"), "n");
        r->body_id = (uint64_t)json_integer_value(json_object_get(env, "id"));
        snprintf(r->body_type, sizeof(r->body_type), "%s",
                 json_string_value(json_object_get(env, "type"))
                     ? json_string_value(json_object_get(env, "type"))
                     : "");
        if (n)
            r->n = json_integer_value(n);
        if (!json_string_value(json_object_get(env, "time")) ||
            !json_string_value(json_object_get(env, "source")))
            good = false;
    }
    if (!env || r->body_id != r->delivery || strcmp(r->body_type, r->event) != 0)
        good = false;
    json_decref(env);
    free(body);
    if (!good)
        fx->n_bad++;

    if (fx->hang)
        return; /* the delivery stays in flight */
    if (fx->fail_next > 0 || (fx->fail_type && strcmp(fx->fail_type, r->event) == 0)) {
        if (fx->fail_next > 0)
            fx->fail_next--;
        r->status = 500;
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    r->status = 200;
    fx->n_ok++;
    evhttp_send_reply(req, 200, "OK", NULL);
}

/* ------------------------------------------------------------ fixture */

/* The daemon's commit hook: fan out, then wake the webhooks on the loop. */
static void on_commit(void *arg, const json_t *events)
{
    struct fixture *fx = arg;

    bus_committed(fx->bus, events);
    if (fx->w)
        loopq_push(fx->q, (void (*)(void *))webhooks_kick, fx->w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int webhooks_start(struct fixture *fx)
{
    if (webhooks_new(fx->base, fx->s, fx->bus, fx->f, fx->ms, &fx->w) != RD_OK)
        return -1;
    webhooks_set_backoff_ms(fx->w, 20, 1000);
    return 0;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct store_conf sc = {0};
    struct rd_error err = {0};
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct timeval tv = {0, 10000};

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_webhook.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->db, sizeof(fx->db), "%s/relengd.db", fx->dir);
    sc.path = fx->db;
    sc.busy_timeout_ms = 5000;
    fx->secret = "s3cret";
    fx->base = event_base_new();
    if (!fx->base || loopq_new(fx->base, &fx->q) != RD_OK)
        return -1;
    if (store_open(&sc, &fx->s, &err) != RD_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    if (bus_new(fx->q, &fx->bus) != RD_OK || fetch_new(fx->base, &fx->f) != RD_OK ||
        metrics_new(NULL, &fx->ms) != RD_OK)
        return -1;
    store_set_commit_hook(fx->s, on_commit, fx);
    fx->http = evhttp_new(fx->base);
    if (!fx->http)
        return -1;
    evhttp_set_gencb(fx->http, on_request, fx);
    bs = evhttp_bind_socket_with_handle(fx->http, "127.0.0.1", 0);
    if (!bs || getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    fx->port = ntohs(sa.sin_port);
    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d/hook", fx->port);
    fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
    if (!fx->tick || event_add(fx->tick, &tv) != 0)
        return -1;
    if (webhooks_start(fx) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char path[160];

    /* Queued kicks point at the webhooks: run them first. */
    loopq_drain(fx->q);
    webhooks_free(fx->w);
    fx->w = NULL;
    fetch_free(fx->f);
    loopq_drain(fx->q);
    evhttp_free(fx->http);
    event_free(fx->tick);
    bus_free(fx->bus);
    store_close(fx->s);
    metrics_free(fx->ms);
    loopq_free(fx->q);
    event_base_free(fx->base);
    snprintf(path, sizeof(path), "%s/relengd.db", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/relengd.db-wal", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/relengd.db-shm", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------ helpers */

struct pub {
    const char *type;
    int64_t n;
    uint64_t id;
};

static int publish_tx(struct rd_tx *tx, void *arg)
{
    struct pub *p = arg;
    struct store_tx *stx = (struct store_tx *)tx;
    int rc = store_tx_publish(stx, p->type, json_pack("{s:I}", "n", (json_int_t)p->n));

    if (rc == RD_OK)
        p->id = (uint64_t)json_integer_value(
            json_object_get(json_array_get(stx->events, json_array_size(stx->events) - 1), "id"));
    return rc;
}

/* Publishes one event (as a module would); returns its id. */
static uint64_t publish(struct fixture *fx, const char *type, int64_t n)
{
    struct pub p = {.type = type, .n = n};

    assert_int_equal(store_write(fx->s, NULL, "test", publish_tx, &p), RD_OK);
    assert_true(p.id > 0);
    return p.id;
}

static void run_until(struct fixture *fx, bool (*cond)(struct fixture *fx, int64_t n), int64_t n)
{
    uint64_t deadline = now_ms() + 10000;

    while (!cond(fx, n) && now_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_true(cond(fx, n));
}

static void run_for(struct fixture *fx, uint64_t ms)
{
    uint64_t until = now_ms() + ms;

    while (now_ms() < until)
        event_base_loop(fx->base, EVLOOP_ONCE);
}

static bool ok_at_least(struct fixture *fx, int64_t n)
{
    return fx->n_ok >= n;
}
static bool reqs_at_least(struct fixture *fx, int64_t n)
{
    return fx->n_reqs >= n;
}

static const json_t *status_of(struct fixture *fx, json_t *st, const char *name)
{
    size_t i;
    json_t *o;

    (void)fx;
    json_array_foreach(st, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    return NULL;
}

static int64_t status_int(struct fixture *fx, const char *name, const char *key)
{
    json_t *st = webhooks_status(fx->w);
    const json_t *o = status_of(fx, st, name);
    int64_t v = o ? json_integer_value(json_object_get(o, key)) : -1;

    json_decref(st);
    return v;
}

/* The receiver counts a delivery when it answers; the sender moves its
   cursor when the answer arrives, a loop turn or more later. */
static bool cursor_at_least(struct fixture *fx, int64_t n)
{
    return status_int(fx, "ci", "cursor") >= n;
}

static bool attempts_at_least(struct fixture *fx, int64_t n)
{
    return status_int(fx, "ci", "attempts") >= n;
}

struct row {
    const char *name;
    bool found;
    int64_t last_id, attempts, next_ms;
    char last_error[128];
};

static int row_tx(struct rd_tx *tx, void *arg)
{
    struct row *r = arg;
    sqlite3 *db = ((struct store_tx *)tx)->db;
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT last_id, attempts, next_ms, last_error FROM "
                                        "core_webhook_cursors WHERE name = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        r->found = true;
        r->last_id = sqlite3_column_int64(st, 0);
        r->attempts = sqlite3_column_int64(st, 1);
        r->next_ms = sqlite3_column_int64(st, 2);
        snprintf(r->last_error, sizeof(r->last_error), "%s",
                 sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
    }
    sqlite3_finalize(st);
    return RD_OK;
}

static struct row read_row(struct fixture *fx, const char *name)
{
    struct row r = {.name = name};

    assert_int_equal(store_read(fx->s, NULL, row_tx, &r), RD_OK);
    return r;
}

static void configure_one(struct fixture *fx, const char *types, int64_t max_attempts)
{
    struct webhook_conf c = {.name = "ci",
                             .url = fx->url,
                             .secret = fx->secret,
                             .types = types,
                             .timeout_ms = 5000,
                             .max_attempts = max_attempts};
    struct rd_error err = {0};

    assert_int_equal(webhooks_configure(fx->w, &c, 1, &err), RD_OK);
}

static double counter(struct fixture *fx, const char *result)
{
    char tags[64];

    snprintf(tags, sizeof(tags), "webhook=ci,result=%s", result);
    return metrics_value(metrics_get(fx->ms, RD_COUNTER, NULL, "webhook.deliveries", NULL, tags));
}

/* --------------------------------------------------------------- tests */

static void test_sign_rfc4231(void **state)
{
    char hex[65];
    static const char data[] = "what do ya want for nothing?";

    (void)state;
    /* RFC 4231, test case 2 */
    webhook_sign("Jefe", data, strlen(data), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* no secret is an empty key */
    webhook_sign(NULL, "", 0, hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_delivers_in_order_signed(void **state)
{
    struct fixture *fx = *state;
    uint64_t ids[5];
    json_t *st;
    const json_t *o;

    configure_one(fx, "", 5);
    for (int i = 0; i < 5; i++)
        ids[i] = publish(fx, "task.resolved", i);
    run_until(fx, cursor_at_least, (int64_t)ids[4]);
    run_for(fx, 30);
    assert_int_equal(fx->n_reqs, 5); /* each once */
    assert_int_equal(fx->n_bad, 0);  /* signature, headers and body agree */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx->reqs[i].delivery, ids[i]);
        assert_string_equal(fx->reqs[i].event, "task.resolved");
        assert_int_equal(fx->reqs[i].n, i);
    }
    st = webhooks_status(fx->w);
    o = status_of(fx, st, "ci");
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "cursor")), ids[4]);
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 0);
    assert_true(json_is_null(json_object_get(o, "last_error")));
    assert_true(json_is_false(json_object_get(o, "in_flight")));
    assert_null(json_object_get(o, "secret"));
    json_decref(st);
    assert_int_equal(read_row(fx, "ci").last_id, ids[4]);
    assert_true(counter(fx, "ok") == 5.0);
    assert_true(counter(fx, "error") == 0.0);
}

static void test_retry_with_backoff(void **state)
{
    struct fixture *fx = *state;
    uint64_t id;
    struct row r;

    configure_one(fx, "", 5);
    fx->fail_next = 2;
    id = publish(fx, "partial.done", 7);

    /* After the first failure the state is on disk. */
    run_until(fx, attempts_at_least, 1);
    r = read_row(fx, "ci");
    assert_int_equal(r.attempts, 1);
    assert_true(r.next_ms > 0);
    assert_string_equal(r.last_error, "HTTP 500");
    assert_int_equal(r.last_id, id - 1);

    run_until(fx, cursor_at_least, (int64_t)id);
    run_for(fx, 30);
    assert_int_equal(fx->n_reqs, 3);
    assert_int_equal(fx->n_ok, 1); /* delivered once */
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->reqs[i].delivery, id);
    /* 20 ms, then 40 ms */
    assert_true(fx->reqs[1].at_ms - fx->reqs[0].at_ms >= 19);
    assert_true(fx->reqs[2].at_ms - fx->reqs[1].at_ms >= 39);
    r = read_row(fx, "ci");
    assert_int_equal(r.last_id, id);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.next_ms, 0);
    assert_string_equal(r.last_error, "");
    assert_true(counter(fx, "ok") == 1.0);
    assert_true(counter(fx, "error") == 2.0);
}

static void test_skip_after_max_attempts(void **state)
{
    struct fixture *fx = *state;
    char logpath[128], logbuf[4096] = {0};
    uint64_t bad, good;
    int logfd;
    ssize_t n;

    snprintf(logpath, sizeof(logpath), "%s/log", fx->dir);
    logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(logfd >= 0);
    log_set_fd(logfd);

    configure_one(fx, "", 3);
    fx->fail_type = "bad.thing";
    bad = publish(fx, "bad.thing", 1);
    good = publish(fx, "good.thing", 2);
    run_until(fx, cursor_at_least, (int64_t)good);
    log_set_fd(2);

    assert_int_equal(fx->n_reqs, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->reqs[i].delivery, bad);
        assert_int_equal(fx->reqs[i].status, 500);
    }
    assert_int_equal(fx->reqs[3].delivery, good);
    assert_int_equal(read_row(fx, "ci").last_id, good);
    assert_int_equal(status_int(fx, "ci", "attempts"), 0);

    n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
    close(logfd);
    assert_true(n > 0);
    {
        char want[128];
        snprintf(want, sizeof(want),
                 "WARN  [core] webhook ci: skipping event %" PRIu64 " after 3 attempts: HTTP 500",
                 bad);
        assert_non_null(strstr(logbuf, want));
    }
}

static void test_filter_types(void **state)
{
    struct fixture *fx = *state;
    uint64_t done, built, last;

    configure_one(fx, "task.done, build", 5);
    done = publish(fx, "task.done", 1);
    publish(fx, "task.failed", 2);
    built = publish(fx, "build.finished", 3);
    last = publish(fx, "other.thing", 4);
    run_until(fx, cursor_at_least, (int64_t)last);
    run_for(fx, 30);
    assert_int_equal(fx->n_reqs, 2);
    assert_int_equal(fx->reqs[0].delivery, done);
    assert_int_equal(fx->reqs[1].delivery, built);
    /* The non-matching tail moved the cursor without a request. */
    assert_int_equal(status_int(fx, "ci", "cursor"), last);
    assert_int_equal(read_row(fx, "ci").last_id, last);
}

static void test_new_webhook_starts_at_newest(void **state)
{
    struct fixture *fx = *state;
    uint64_t before, after;

    publish(fx, "task.resolved", 1);
    before = publish(fx, "task.resolved", 2);
    configure_one(fx, "", 5);
    assert_int_equal(read_row(fx, "ci").last_id, before);
    after = publish(fx, "task.resolved", 3);
    run_until(fx, cursor_at_least, (int64_t)after);
    run_for(fx, 30);
    assert_int_equal(fx->n_reqs, 1);
    assert_int_equal(fx->reqs[0].delivery, after);
}

static void test_restart_resumes_from_cursor(void **state)
{
    struct fixture *fx = *state;
    uint64_t first, second, third, fourth;

    configure_one(fx, "", 5);
    first = publish(fx, "task.resolved", 1);
    run_until(fx, cursor_at_least, (int64_t)first);

    /* Down: events keep coming. */
    webhooks_free(fx->w);
    fx->w = NULL;
    second = publish(fx, "task.resolved", 2);
    third = publish(fx, "task.resolved", 3);

    /* Up again on the same store: the two missed events, not the first. */
    assert_int_equal(webhooks_start(fx), 0);
    configure_one(fx, "", 5);
    run_until(fx, cursor_at_least, (int64_t)third);
    run_for(fx, 30);
    assert_int_equal(fx->n_reqs, 3);
    assert_int_equal(fx->reqs[0].delivery, first);
    assert_int_equal(fx->reqs[1].delivery, second);
    assert_int_equal(fx->reqs[2].delivery, third);

    /* A restart in the middle of a backoff keeps the attempts. */
    fx->fail_next = 1;
    fourth = publish(fx, "task.resolved", 4);
    run_until(fx, attempts_at_least, 1);
    webhooks_free(fx->w);
    fx->w = NULL;
    assert_int_equal(read_row(fx, "ci").attempts, 1);
    assert_int_equal(webhooks_start(fx), 0);
    configure_one(fx, "", 5);
    assert_int_equal(status_int(fx, "ci", "attempts"), 1);
    run_until(fx, cursor_at_least, (int64_t)fourth);
    assert_int_equal(fx->reqs[fx->n_reqs - 1].delivery, fourth);
    assert_int_equal(fx->n_reqs, 5);
    assert_int_equal(read_row(fx, "ci").attempts, 0);
}

static void test_one_in_flight_and_reconfigure(void **state)
{
    struct fixture *fx = *state;
    struct rd_error err = {0};
    struct webhook_conf bad = {.name = "x", .url = fx->url, .types = "", .max_attempts = 3};
    struct webhook_conf two[2];
    json_t *st;
    uint64_t last;

    fx->hang = true;
    configure_one(fx, "", 5);
    publish(fx, "task.resolved", 1);
    publish(fx, "task.resolved", 2);
    last = publish(fx, "task.resolved", 3);
    run_until(fx, reqs_at_least, 1);
    run_for(fx, 50);
    assert_int_equal(fx->n_reqs, 1); /* one at a time */
    st = webhooks_status(fx->w);
    assert_true(json_is_true(json_object_get(status_of(fx, st, "ci"), "in_flight")));
    json_decref(st);

    /* Bad configurations change nothing. */
    bad.url = "ftp://example/";
    assert_int_equal(webhooks_configure(fx->w, &bad, 1, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "url"));
    bad.url = fx->url;
    bad.types = "no spaces inside";
    assert_int_equal(webhooks_configure(fx->w, &bad, 1, &err), RD_EINVAL);
    bad.types = "";
    bad.max_attempts = 0;
    assert_int_equal(webhooks_configure(fx->w, &bad, 1, &err), RD_EINVAL);
    bad.max_attempts = 3;
    bad.name = "";
    assert_int_equal(webhooks_configure(fx->w, &bad, 1, &err), RD_EINVAL);
    bad.name = "x";
    two[0] = bad;
    two[1] = bad;
    assert_int_equal(webhooks_configure(fx->w, two, 2, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(status_int(fx, "ci", "cursor"), last - 3);
    assert_false(read_row(fx, "x").found);

    /* Removing the webhook aborts its delivery and drops its cursor. */
    assert_int_equal(webhooks_configure(fx->w, NULL, 0, &err), RD_OK);
    assert_int_equal(fetch_active(fx->f), 0);
    assert_false(read_row(fx, "ci").found);
    st = webhooks_status(fx->w);
    assert_int_equal(json_array_size(st), 0);
    json_decref(st);

    /* Configured again, it is new: it starts after the newest event. */
    fx->hang = false;
    two[0] = bad;
    two[1] = bad;
    two[1].name = "ci";
    two[1].secret = fx->secret;
    assert_int_equal(webhooks_configure(fx->w, two, 2, &err), RD_OK);
    assert_int_equal(read_row(fx, "ci").last_id, last);
    assert_int_equal(read_row(fx, "x").last_id, last);
    /* Reconfiguring keeps the cursor of a webhook that stays. */
    last = publish(fx, "task.resolved", 4);
    run_until(fx, ok_at_least, 2); /* "x" (secret "") and "ci" both get it */
    run_until(fx, cursor_at_least, (int64_t)last);
    assert_int_equal(webhooks_configure(fx->w, &two[1], 1, &err), RD_OK);
    assert_int_equal(status_int(fx, "ci", "cursor"), last);
    assert_false(read_row(fx, "x").found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_rfc4231),
        cmocka_unit_test_setup_teardown(test_delivers_in_order_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_after_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_webhook_starts_at_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_from_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_in_flight_and_reconfigure, setup, teardown),
    };
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    log_set_level(RD_WARN);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    libevent_global_shutdown();
    return rc;
}
