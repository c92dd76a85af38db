/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_fetch.c -- core/fetch.c against a local HTTP server
 * (libevent's evhttp on 127.0.0.1, port 0, on the same loop): 20 concurrent
 * fetches, a 404, a refused connection, a done callback that starts another
 * fetch, dropping an owner and fetch_free aborting in-flight transfers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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

#include "core/fetch.h"

struct fixture {
    struct event_base *base;
    struct fetch *f;
    struct evhttp *http;
    struct event *tick; /* keeps EVLOOP_ONCE from blocking for long */
    int port;
    int slow_seen; /* /slow requests received (never answered) */
    int n_done;
    pthread_t loop_thread;
};

struct result {
    struct fixture *fx;
    char body[256];
    size_t body_len;
    long status;
    CURLcode code;
    int calls;
    bool on_loop_thread;
    struct result *chain; /* fetch this one's URL from the done callback */
    char chain_url[128];
};

/* ------------------------------------------------------------ server */

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fixture *fx = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out;

    if (strcmp(uri, "/slow") == 0) {
        fx->slow_seen++;
        return; /* no reply: the transfer stays in flight */
    }
    if (strcmp(uri, "/missing") == 0) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    out = evbuffer_new();
    evbuffer_add_printf(out, "body of %s", uri);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct timeval tv = {0, 10000};
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    if (!fx)
        return -1;
    fx->loop_thread = pthread_self();
    fx->base = event_base_new();
    if (!fx->base || fetch_new(fx->base, &fx->f) != RD_OK)
        return -1;
    fx->http = evhttp_new(fx->base);
    if (!fx->http)
        return -1;
    evhttp_set_gencb(fx->http, on_request, fx);
    bs = evhttp_bind_socket_with_handle(fx->http, "127.0.0.1", 0);
    if (!bs)
        return -1;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    fx->port = ntohs(sa.sin_port);
    fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
    if (!fx->tick || event_add(fx->tick, &tv) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    fetch_free(fx->f);
    evhttp_free(fx->http);
    event_free(fx->tick);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------ client */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct result *r = arg;
    size_t len = size * n;

    if (r->body_len + len >= sizeof(r->body))
        return 0; /* too big: fail the transfer */
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static CURL *make_easy(struct fixture *fx, const char *path, int port, struct result *r)
{
    CURL *easy = curl_easy_init();
    char url[128];

    assert_non_null(easy);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port ? port : fx->port, path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    r->fx = fx;
    return easy;
}

static void on_done(void *arg, CURL *easy, CURLcode code)
{
    struct result *r = arg;
    struct fixture *fx = r->fx;

    r->calls++;
    r->code = code;
    r->on_loop_thread = pthread_equal(pthread_self(), fx->loop_thread);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
    fx->n_done++;
    if (r->chain) {
        CURL *next = make_easy(fx, r->chain_url, 0, r->chain);
        assert_int_equal(fetch_add(fx->f, NULL, next, on_done, r->chain), RD_OK);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until cond(fx) holds or 10 s pass. */
static void run_until(struct fixture *fx, bool (*cond)(struct fixture *fx, int n), int n)
{
    uint64_t deadline = now_ms() + 10000;

    while (!cond(fx, n) && now_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_true(cond(fx, n));
}

static bool done_at_least(struct fixture *fx, int n)
{
    return fx->n_done >= n;
}
static bool slow_at_least(struct fixture *fx, int n)
{
    return fx->slow_seen >= n;
}

/* ------------------------------------------------------------- tests */

static void test_twenty_concurrent(void **state)
{
    struct fixture *fx = *state;
    struct result r[20];
    char path[32], want[64];

    memset(r, 0, sizeof(r));
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof(path), "/item/%d", i);
        assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, path, 0, &r[i]), on_done, &r[i]),
                         RD_OK);
    }
    assert_int_equal(fetch_active(fx->f), 20);
    run_until(fx, done_at_least, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(want, sizeof(want), "body of /item/%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].code, CURLE_OK);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r[i].body, want);
        assert_true(r[i].on_loop_thread);
    }
    assert_int_equal(fetch_active(fx->f), 0);
}

static void test_not_found_and_refused(void **state)
{
    struct fixture *fx = *state;
    struct result nf = {0}, refused = {0};
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int fd, closed_port;

    /* A port that was just free and has no listener. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    closed_port = ntohs(sa.sin_port);
    close(fd);

    assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, "/missing", 0, &nf), on_done, &nf),
                     RD_OK);
    assert_int_equal(
        fetch_add(fx->f, NULL, make_easy(fx, "/x", closed_port, &refused), on_done, &refused),
        RD_OK);
    run_until(fx, done_at_least, 2);
    assert_int_equal(nf.calls, 1);
    assert_int_equal(nf.code, CURLE_OK);
    assert_int_equal(nf.status, 404);
    assert_int_equal(refused.calls, 1);
    assert_int_equal(refused.code, CURLE_COULDNT_CONNECT);
    assert_int_equal(refused.status, 0);
}

static void test_done_starts_another(void **state)
{
    struct fixture *fx = *state;
    struct result first = {0}, second = {0};

    first.chain = &second;
    snprintf(first.chain_url, sizeof(first.chain_url), "/second");
    assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, "/first", 0, &first), on_done, &first),
                     RD_OK);
    run_until(fx, done_at_least, 2);
    assert_string_equal(first.body, "body of /first");
    assert_string_equal(second.body, "body of /second");
    assert_int_equal(second.code, CURLE_OK);
}

static void test_drop_owner(void **state)
{
    struct fixture *fx = *state;
    int owner_a, owner_b;
    struct result a1 = {0}, a2 = {0}, b = {0};

    assert_int_equal(fetch_add(fx->f, &owner_a, make_easy(fx, "/slow", 0, &a1), on_done, &a1),
                     RD_OK);
    assert_int_equal(fetch_add(fx->f, &owner_a, make_easy(fx, "/slow", 0, &a2), on_done, &a2),
                     RD_OK);
    run_until(fx, slow_at_least, 2);
    assert_int_equal(fetch_add(fx->f, &owner_b, make_easy(fx, "/b", 0, &b), on_done, &b), RD_OK);
    fetch_drop_owner(fx->f, &owner_a);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(a1.code, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(a2.calls, 1);
    assert_int_equal(a2.code, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(fetch_active(fx->f), 1);
    run_until(fx, done_at_least, 3);
    assert_int_equal(b.code, CURLE_OK);
    assert_string_equal(b.body, "body of /b");
    fetch_drop_owner(fx->f, &owner_a); /* nothing left */
    fetch_drop_owner(NULL, &owner_a);
}

static void test_free_aborts_in_flight(void **state)
{
    struct fixture *fx = *state;
    struct result slow = {0}, never = {0};

    assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, "/slow", 0, &slow), on_done, &slow),
                     RD_OK);
    run_until(fx, slow_at_least, 1);
    /* A second one not yet connected (no loop turn since). */
    assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, "/slow", 0, &never), on_done, &never),
                     RD_OK);
    assert_int_equal(fetch_active(fx->f), 2);
    fetch_free(fx->f);
    fx->f = NULL;
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.code, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(never.calls, 1);
    assert_int_equal(never.code, CURLE_ABORTED_BY_CALLBACK);
    /* The server side sees the connection go away; the loop keeps working. */
    {
        struct timeval tv = {0, 20000};
        event_base_loopexit(fx->base, &tv);
        event_base_dispatch(fx->base);
    }
}

static void test_bad_args(void **state)
{
    struct fixture *fx = *state;
    struct result r = {0};
    struct fetch *f = NULL;

    assert_int_equal(fetch_add(fx->f, NULL, NULL, on_done, &r), RD_EINVAL);
    /* The easy handle is taken even on failure (valgrind checks the leak). */
    assert_int_equal(fetch_add(NULL, NULL, make_easy(fx, "/x", 0, &r), on_done, &r), RD_EINVAL);
    assert_int_equal(r.calls, 0);
    assert_int_equal(fetch_new(NULL, &f), RD_EINVAL);
    assert_null(f);
    assert_int_equal(fetch_active(NULL), 0);
    fetch_free(NULL);
    /* done may be NULL: fire and forget. */
    assert_int_equal(fetch_add(fx->f, NULL, make_easy(fx, "/quiet", 0, &r), NULL, NULL), RD_OK);
    {
        uint64_t deadline = now_ms() + 10000;
        while (fetch_active(fx->f) > 0 && now_ms() < deadline)
            event_base_loop(fx->base, EVLOOP_ONCE);
    }
    assert_int_equal(fetch_active(fx->f), 0);
    assert_string_equal(r.body, "body of /quiet");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_twenty_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_starts_another, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_aborts_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
    };
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    libevent_global_shutdown();
    return rc;
}
