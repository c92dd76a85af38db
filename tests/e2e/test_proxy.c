/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_proxy.c -- the proxy module end to end, against a real
 * origin on 127.0.0.1 that counts requests (tests/e2e/proxy_origin.py):
 * hit/miss/coalesced headers; 50 concurrent clients on one cold object make
 * exactly one upstream GET and all get the origin's bytes; a client joining
 * mid-download gets what is on disk at once; Range on cached and in-flight
 * objects; revalidation with 304; stale on error; digest mismatches never
 * cached; eviction under the cap; kill -9 mid-download; a full cache disk
 * (a tmpfs) stops caching but not proxying; the JSON API. The
 * origin holds bodies behind gates the test opens, so nothing depends on
 * timing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/proxy_util.h"

static int setup(void **state)
{
    struct px *x = px_start(NULL);
    *state = x;
    return x ? 0 : -1;
}

/* A test that failed did not call e2e_pass: px_stop then prints the log. */
static int teardown(void **state)
{
    struct px *x = *state;
    return px_stop(x) == 0 ? 0 : -1;
}

static void expect_xcache(const struct px_resp *r, const char *want)
{
    if (strcmp(r->xcache, want) != 0)
        fprintf(stderr, "X-Cache: got '%s', want '%s' (status %ld)\n", r->xcache, want, r->status);
    assert_string_equal(r->xcache, want);
}

static double metric(struct px *x, const char *series)
{
    return e2e_metric(x->d, series);
}

/* Polls cond for up to ms; true once it holds. */
static bool wait_for(bool (*cond)(void *), void *arg, int ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)ms;

    while (!cond(arg)) {
        if (e2e_now_ms() > end)
            return false;
        e2e_sleep_ms(20);
    }
    return true;
}

/* No download in flight: the last one is committed (or dropped). */
static bool no_inflight(void *arg)
{
    json_t *st = px_api(arg, "/api/v1/proxy/inflight");
    bool none = st && json_array_size(json_object_get(st, "objects")) == 0;
    json_decref(st);
    return none;
}

/* ------------------------------------------------------------ basics */

static void test_hit_miss_headers(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char want[65];

    origin_ctl(x, "{\"path\":\"/hm.bin\",\"size\":5000}");
    origin_digest(x, "/hm.bin", "sha256", want, sizeof(want));
    assert_int_equal(px_get(x, "/o/hm.bin", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, want);
    assert_string_equal(r.via, "1.1 relengd");
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/hm.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, want);
    assert_true(r.age[0] != '\0');
    px_resp_free(&r);
    /* Another spelling of the same URL is the same object. */
    assert_int_equal(px_get(x, "/o/./x/../%68m.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    assert_int_equal(px_head(x, "/o/hm.bin", &r), 200);
    expect_xcache(&r, "HIT");
    assert_int_equal(r.len, 0);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/hm.bin", "get"), 1);

    /* The index and counters show it. */
    json_t *st = px_api(x, "/api/v1/proxy/stats");
    json_t *o = json_object_get(json_object_get(st, "backends"), "o");
    assert_int_equal(json_integer_value(json_object_get(o, "misses")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "hits")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_upstream")), 5000);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_served")), 15000);
    assert_true(json_real_value(json_object_get(o, "hit_ratio")) > 0.7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "cache"), "objects")),
                     1);
    json_decref(st);
    assert_true(metric(x, "relengd_proxy_hits_total{backend=\"o\"}") == 3.0);
    assert_true(metric(x, "relengd_proxy_misses_total{backend=\"o\"}") == 1.0);
    assert_true(metric(x, "relengd_proxy_bytes_total{backend=\"o\",source=\"upstream\"}") ==
                5000.0);
    e2e_pass(x->d); /* reached the end: no log dump */
}

struct herd {
    struct px *x;
    struct px_multi *m;
    long want_readers;
    const char *path;
};

static bool readers_reached(void *arg)
{
    struct herd *h = arg;
    return px_inflight(h->x, h->path, "readers") >= h->want_readers;
}

static void test_herd_one_fetch(void **state)
{
    struct px *x = *state;
    struct px_multi *m = px_multi_new();
    struct herd h = {.x = x, .m = m, .want_readers = 50, .path = "/herd.bin"};
    char want[65];
    int n_miss = 0, n_coalesced = 0;

    /* Held after 64 KiB, so all 50 clients are in before it completes. */
    origin_ctl(x, "{\"path\":\"/herd.bin\",\"size\":4194304,\"gate_at\":65536}");
    origin_digest(x, "/herd.bin", "sha256", want, sizeof(want));
    for (int i = 0; i < 50; i++)
        px_multi_add(m, x, "/o/herd.bin", NULL);
    assert_true(px_multi_until(m, readers_reached, &h, 15000));
    origin_open(x, "/herd.bin");
    assert_int_equal(px_multi_run(m, 20000), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(px_multi_result(m, i), CURLE_OK);
        assert_int_equal(px_multi_status(m, i), 200);
        assert_string_equal(px_multi_sha256(m, i), want);
        n_miss += strcmp(px_multi_xcache(m, i), "MISS") == 0;
        n_coalesced += strcmp(px_multi_xcache(m, i), "COALESCED") == 0;
    }
    assert_int_equal(n_miss, 1);
    assert_int_equal(n_coalesced, 49);
    assert_int_equal(origin_count(x, "/herd.bin", "get"), 1);
    px_multi_free(m);
    e2e_pass(x->d); /* reached the end: no log dump */
}

struct join {
    struct px *x;
    struct px_multi *m;
    int client;
    size_t bytes;
};

static bool inflight_bytes(void *arg)
{
    struct join *j = arg;
    return px_inflight(j->x, "/mid.bin", "bytes") >= (long)j->bytes;
}

static bool client_bytes(void *arg)
{
    struct join *j = arg;
    return px_multi_bytes(j->m, j->client) >= j->bytes;
}

static void test_join_mid_download(void **state)
{
    struct px *x = *state;
    struct px_multi *m = px_multi_new();
    struct join j = {.x = x, .m = m, .bytes = 300000};
    char want[65];
    int a, b;

    origin_ctl(x, "{\"path\":\"/mid.bin\",\"size\":1048576,\"gate_at\":300000}");
    origin_digest(x, "/mid.bin", "sha256", want, sizeof(want));
    a = px_multi_add(m, x, "/o/mid.bin", NULL);
    assert_true(px_multi_until(m, inflight_bytes, &j, 15000));
    /* The origin is stuck at 300000 bytes: a client joining now must get
       all of them from the disk at once, while the gate is still shut. */
    b = px_multi_add(m, x, "/o/mid.bin", NULL);
    j.client = b;
    assert_true(px_multi_until(m, client_bytes, &j, 15000));
    assert_int_equal(px_multi_bytes(m, b), 300000);
    assert_false(px_multi_done(m, b));
    assert_int_equal(origin_count(x, "/mid.bin", "waiting"), 1);
    origin_open(x, "/mid.bin");
    assert_int_equal(px_multi_run(m, 20000), 0);
    assert_string_equal(px_multi_sha256(m, a), want);
    assert_string_equal(px_multi_sha256(m, b), want);
    assert_string_equal(px_multi_xcache(m, a), "MISS");
    assert_string_equal(px_multi_xcache(m, b), "COALESCED");
    assert_int_equal(origin_count(x, "/mid.bin", "get"), 1);
    px_multi_free(m);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_client_leaves_download_goes_on(void **state)
{
    struct px *x = *state;
    struct px_multi *m = px_multi_new();
    struct join j = {.x = x, .m = m, .bytes = 100000};
    char want[65];
    int a, b;

    origin_ctl(x, "{\"path\":\"/mid.bin\",\"size\":600000,\"gate_at\":100000}");
    origin_digest(x, "/mid.bin", "sha256", want, sizeof(want));
    a = px_multi_add(m, x, "/o/mid.bin", NULL);
    b = px_multi_add(m, x, "/o/mid.bin", NULL);
    j.client = a;
    assert_true(px_multi_until(m, client_bytes, &j, 15000));
    px_multi_drop(m, a); /* the first client goes away mid-stream */
    px_multi_run(m, 100);
    origin_open(x, "/mid.bin");
    assert_int_equal(px_multi_run(m, 20000), 0);
    assert_int_equal(px_multi_result(m, b), CURLE_OK);
    assert_string_equal(px_multi_sha256(m, b), want);
    px_multi_free(m);
    /* and the object was completed and cached all the same */
    struct px_resp r;
    assert_int_equal(px_get(x, "/o/mid.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/mid.bin", "get"), 1);
    e2e_pass(x->d); /* reached the end: no log dump */
}

/* ------------------------------------------------------------- Range */

static void test_range_cached(void **state)
{
    struct px *x = *state;
    struct px_resp full, r;
    const char *h1[] = {"Range: bytes=100-199", NULL};
    const char *h2[] = {"Range: bytes=-10", NULL};
    const char *h3[] = {"Range: bytes=5000-", NULL};
    const char *h4[] = {"Range: bytes=0-1,5-6", NULL};

    origin_ctl(x, "{\"path\":\"/r.bin\",\"size\":4000}");
    assert_int_equal(px_get(x, "/o/r.bin", NULL, &full), 200);
    assert_int_equal(px_get(x, "/o/r.bin", h1, &r), 206);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.content_range, "bytes 100-199/4000");
    assert_int_equal(r.len, 100);
    assert_memory_equal(r.body, full.body + 100, 100);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/r.bin", h2, &r), 206);
    assert_int_equal(r.len, 10);
    assert_memory_equal(r.body, full.body + 3990, 10);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/r.bin", h3, &r), 416);
    assert_string_equal(r.content_range, "bytes */4000");
    px_resp_free(&r);
    /* several ranges: ignored, the whole object */
    assert_int_equal(px_get(x, "/o/r.bin", h4, &r), 200);
    assert_int_equal(r.len, 4000);
    px_resp_free(&r);
    px_resp_free(&full);
    assert_int_equal(origin_count(x, "/r.bin", "get"), 1);
    e2e_pass(x->d); /* reached the end: no log dump */
}

struct rng {
    struct px *x;
    struct px_multi *m;
    int a, b;
};

static bool rng_ready(void *arg)
{
    struct rng *g = arg;
    return px_inflight(g->x, "/rf.bin", "bytes") >= 65536;
}

static bool rng_b_done(void *arg)
{
    struct rng *g = arg;
    return px_multi_done(g->m, g->b);
}

static void test_range_inflight(void **state)
{
    struct px *x = *state;
    struct px_multi *m = px_multi_new();
    struct rng g = {.x = x, .m = m};
    struct px_resp full;
    int c;

    origin_ctl(x, "{\"path\":\"/rf.bin\",\"size\":1048576,\"gate_at\":65536}");
    /* A cold Range request starts the one download and is answered as soon
       as its bytes are there: the gate stays shut until it is done. */
    g.a = px_multi_add(m, x, "/o/rf.bin", "bytes=0-1023");
    assert_true(px_multi_until(m, rng_ready, &g, 15000));
    g.b = px_multi_add(m, x, "/o/rf.bin", "bytes=1000-2999");
    assert_true(px_multi_until(m, rng_b_done, &g, 15000));
    assert_int_equal(px_multi_status(m, g.b), 206);
    assert_int_equal(px_multi_bytes(m, g.b), 2000);
    assert_string_equal(px_multi_xcache(m, g.b), "COALESCED");
    assert_int_equal(origin_count(x, "/rf.bin", "waiting"), 1);
    /* past what has arrived: waits for the bytes */
    c = px_multi_add(m, x, "/o/rf.bin", "bytes=500000-500099");
    px_multi_run(m, 200);
    assert_false(px_multi_done(m, c));
    origin_open(x, "/rf.bin");
    assert_int_equal(px_multi_run(m, 20000), 0);
    assert_int_equal(px_multi_status(m, g.a), 206);
    assert_int_equal(px_multi_bytes(m, g.a), 1024);
    assert_int_equal(px_multi_status(m, c), 206);
    assert_int_equal(px_multi_bytes(m, c), 100);
    /* the Range clients are done before the download is */
    assert_true(wait_for(no_inflight, x, 15000));
    assert_int_equal(px_get(x, "/o/rf.bin", NULL, &full), 200);
    expect_xcache(&full, "HIT");
    char want[65];
    sha256_hex(full.body + 500000, 100, want);
    assert_string_equal(px_multi_sha256(m, c), want);
    px_resp_free(&full);
    assert_int_equal(origin_count(x, "/rf.bin", "get"), 1);
    px_multi_free(m);
    e2e_pass(x->d); /* reached the end: no log dump */
}

/* ------------------------------------------------- freshness, errors */

static void test_revalidation_304(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char v1[65], v2[65];

    /* max-age=0: stored, but stale at once, so every request revalidates. */
    origin_ctl(x, "{\"path\":\"/rv.txt\",\"size\":3000,\"etag\":true,\"cc\":\"max-age=0\"}");
    origin_digest(x, "/rv.txt", "sha256", v1, sizeof(v1));
    assert_int_equal(px_get(x, "/o/rv.txt", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/rv.txt", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, v1);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/rv.txt", "conditional"), 1);
    assert_int_equal(origin_count(x, "/rv.txt", "not_modified"), 1);
    /* A new version upstream: the conditional GET gets 200, a new body. */
    origin_ctl(x, "{\"path\":\"/rv.txt\",\"size\":3000,\"etag\":true,\"cc\":\"max-age=0\","
                  "\"version\":2}");
    origin_digest(x, "/rv.txt", "sha256", v2, sizeof(v2));
    assert_string_not_equal(v1, v2);
    assert_int_equal(px_get(x, "/o/rv.txt", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, v2);
    px_resp_free(&r);
    json_t *st = px_api(x, "/api/v1/proxy/stats");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "total"), "revalidated")), 1);
    json_decref(st);
    /* Fresh objects are not revalidated at all. */
    origin_ctl(x, "{\"path\":\"/fresh.txt\",\"etag\":true,\"cc\":\"max-age=3600\"}");
    px_get(x, "/o/fresh.txt", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/fresh.txt", NULL, &r);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/fresh.txt", "get"), 1);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_stale_on_error(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char v1[65];

    origin_ctl(x, "{\"path\":\"/st.bin\",\"size\":2000,\"cc\":\"max-age=0\"}");
    origin_digest(x, "/st.bin", "sha256", v1, sizeof(v1));
    assert_int_equal(px_get(x, "/o/st.bin", NULL, &r), 200);
    px_resp_free(&r);
    origin_ctl(x, "{\"path\":\"/st.bin\",\"size\":2000,\"status\":503}");
    assert_int_equal(px_get(x, "/o/st.bin", NULL, &r), 200);
    expect_xcache(&r, "STALE");
    assert_string_equal(r.sha256, v1);
    px_resp_free(&r);
    /* So does an upstream that cannot be reached at all (a hang: 504). */
    origin_ctl(x, "{\"path\":\"/st.bin\",\"hang\":true}");
    assert_int_equal(px_get(x, "/o/st.bin", NULL, &r), 200);
    expect_xcache(&r, "STALE");
    assert_string_equal(r.sha256, v1);
    px_resp_free(&r);
    origin_open(x, "/st.bin");
    /* Without a copy the origin's error is passed on, uncached. */
    origin_ctl(x, "{\"path\":\"/err.bin\",\"status\":404}");
    assert_int_equal(px_get(x, "/o/err.bin", NULL, &r), 404);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/err.bin", NULL, &r), 404);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/err.bin", "get"), 2);
    assert_true(metric(x, "relengd_proxy_stale_total{backend=\"o\"}") == 2.0);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_upstream_fails_midway(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char want[65];

    origin_ctl(x, "{\"path\":\"/fm.bin\",\"size\":500000,\"fail_at\":100000}");
    px_get(x, "/o/fm.bin", NULL, &r);
    /* headers went out, then the body was cut: the client sees an error */
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_true(r.len < 500000);
    px_resp_free(&r);
    /* nothing half-written is ever served */
    origin_ctl(x, "{\"path\":\"/fm.bin\",\"size\":500000}");
    origin_digest(x, "/fm.bin", "sha256", want, sizeof(want));
    assert_int_equal(px_get(x, "/o/fm.bin", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_int_equal(r.rc, CURLE_OK);
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/fm.bin", "get"), 2);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_digest(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char sha512[129], want[65], path[600], opath[300];
    json_t *objs;

    /* The body of seed "good"; its SHA-512 names it. */
    origin_ctl(x, "{\"path\":\"/probe\",\"seed\":\"good\",\"size\":70000}");
    origin_digest(x, "/probe", "sha512", sha512, sizeof(sha512));
    origin_digest(x, "/probe", "sha256", want, sizeof(want));
    snprintf(opath, sizeof(opath), "/ca/%s", sha512);
    snprintf(path, sizeof(path), "{\"path\":\"%s\",\"seed\":\"good\",\"size\":70000}", opath);
    origin_ctl(x, path);
    snprintf(path, sizeof(path), "/ca/%s", sha512);
    assert_int_equal(px_get(x, path, NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(px_get(x, path, NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);

    /* Other bytes under the same digest: 502, never cached. */
    snprintf(opath, sizeof(opath), "/ca/%.127sf", sha512);
    if (strcmp(opath + 4, sha512) == 0)
        opath[4 + 127] = 'e';
    snprintf(path, sizeof(path), "{\"path\":\"%s\",\"seed\":\"evil\",\"size\":70000}", opath);
    origin_ctl(x, path);
    snprintf(path, sizeof(path), "%s", opath);
    assert_int_equal(px_get(x, path, NULL, &r), 502);
    assert_non_null(strstr(r.body, "digest_mismatch"));
    px_resp_free(&r);
    assert_int_equal(px_get(x, path, NULL, &r), 502);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, opath, "get"), 2);
    objs = px_api(x, "/api/v1/proxy/objects?limit=100");
    assert_int_equal(json_integer_value(json_object_get(objs, "total")), 1);
    json_decref(objs);
    /* A URL that names no digest is refused before any fetch. */
    assert_int_equal(px_get(x, "/ca/not-a-digest", NULL, &r), 400);
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_errors(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char *reply, big[20000 + 100];

    assert_int_equal(px_get(x, "/nosuch/x", NULL, &r), 404);
    assert_non_null(strstr(r.body, "unknown_backend"));
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/dead/x", NULL, &r), 502);
    assert_non_null(strstr(r.body, "upstream_error"));
    assert_non_null(strstr(r.body, "127.0.0.1"));
    px_resp_free(&r);
    origin_ctl(x, "{\"path\":\"/hang\",\"hang\":true}");
    assert_int_equal(px_get(x, "/o/hang", NULL, &r), 504);
    assert_non_null(strstr(r.body, "upstream_timeout"));
    px_resp_free(&r);
    origin_open(x, "/hang");
    assert_int_equal(px_get(x, "/o/../../etc/passwd", NULL, &r), 400);
    px_resp_free(&r);

    reply = px_raw(x, "GARBAGE\r\n\r\n", 11, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    assert_non_null(strstr(reply, "\"bad_request\""));
    free(reply);
    reply = px_raw(x, "GET /o/x HTTP/1.1\nHost: a\n\n", 27, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    free(reply);
    reply = px_raw(x, "GET /o/x HTTP/1.1\r\n\r\n", 21, 5000); /* no Host */
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    free(reply);
    reply = px_raw(x, "GET /o/x HTTP/2.0\r\nHost: a\r\n\r\n", 30, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 505 "));
    free(reply);
    reply = px_raw(x, "POST /o/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 51, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 405 "));
    free(reply);
    /* a body on GET, and a second Content-Length that would smuggle one */
    reply = px_raw(x, "GET /o/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 50, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    free(reply);
    static const char two_cl[] =
        "GET /o/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
        "Content-Length: 31\r\n\r\nGET /o/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    reply = px_raw(x, two_cl, sizeof(two_cl) - 1, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    assert_null(strstr(reply, "HTTP/1.1 200 "));
    free(reply);
    assert_int_equal(origin_count(x, "/smuggled", "get"), 0);
    reply =
        px_raw(x, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 59, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 405 "));
    free(reply);
    int n = snprintf(big, sizeof(big), "GET /o/x HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'a', 18000);
    memcpy(big + n + 18000, "\r\n\r\n", 5);
    reply = px_raw(x, big, strlen(big), 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 431 "));
    free(reply);
    assert_true(metric(x, "relengd_proxy_bad_requests_total") >= 6.0);
    /* the daemon is fine */
    origin_ctl(x, "{\"path\":\"/ok\"}");
    assert_int_equal(px_get(x, "/o/ok", NULL, &r), 200);
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_keepalive_pipelining(void **state)
{
    struct px *x = *state;
    const char req[] = "GET /o/p1 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /o/p1 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /o/p1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    char *reply;
    int n = 0;

    origin_ctl(x, "{\"path\":\"/p1\",\"size\":100}");
    reply = px_raw(x, req, sizeof(req) - 1, 10000);
    for (const char *s = reply; (s = strstr(s, "HTTP/1.1 200 OK")); s++)
        n++;
    assert_int_equal(n, 3);
    assert_non_null(strstr(reply, "X-Cache: MISS"));
    assert_non_null(strstr(reply, "X-Cache: HIT"));
    free(reply);
    assert_int_equal(origin_count(x, "/p1", "get"), 1);
    e2e_pass(x->d); /* reached the end: no log dump */
}

/* ------------------------------------------------------- forward mode */

static void test_forward_mode(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char url[256];

    origin_ctl(x, "{\"path\":\"/fw.bin\",\"size\":1234}");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fw.bin", x->origin_port);
    assert_int_equal(px_get_via_proxy(x, url, &r), 200);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    /* same object as the reverse-mode URL */
    assert_int_equal(px_get(x, "/o/fw.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    /* never an open proxy: other hosts and ports are refused, unfetched */
    assert_int_equal(px_get_via_proxy(x, "http://example.com/", &r), 403);
    assert_non_null(strstr(r.body, "forbidden_upstream"));
    px_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.2:%d/fw.bin", x->origin_port);
    assert_int_equal(px_get_via_proxy(x, url, &r), 403);
    px_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fw.bin", x->origin_port + 1);
    assert_int_equal(px_get_via_proxy(x, url, &r), 403);
    px_resp_free(&r);
    snprintf(url, sizeof(url), "http://user@127.0.0.1:%d/fw.bin", x->origin_port);
    char *reply;
    char req[512];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", url);
    reply = px_raw(x, req, (size_t)n, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 400 "));
    free(reply);
    assert_int_equal(origin_count(x, "/fw.bin", "get"), 1);
    assert_true(metric(x, "relengd_proxy_forbidden_total") == 3.0);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void run_client(const char *const *argv, const char *out_path, const char *want,
                       struct px *x)
{
    struct e2e_exec ex;
    char proxy[64], *body;
    char sha[65];
    size_t len = 0;

    snprintf(proxy, sizeof(proxy), "http_proxy=http://127.0.0.1:%d", x->port);
    const char *env[] = {proxy, "no_proxy", "NO_PROXY", "HTTP_PROXY", NULL};
    e2e_exec(argv, env, NULL, 20000, &ex);
    if (ex.status != 0)
        fprintf(stderr, "%s exited %d: %s %s\n", argv[0], ex.status, ex.out, ex.err);
    assert_int_equal(ex.status, 0);
    e2e_exec_free(&ex);
    body = e2e_read_file(out_path, &len);
    assert_non_null(body);
    sha256_hex(body, len, sha);
    assert_string_equal(sha, want);
    free(body);
}

static void test_real_clients(void **state)
{
    struct px *x = *state;
    char url[256], want[65], out1[400], out2[400], out3[400];

    origin_ctl(x, "{\"path\":\"/tools/tool.tar.gz\",\"size\":300000}");
    origin_digest(x, "/tools/tool.tar.gz", "sha256", want, sizeof(want));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tools/tool.tar.gz", x->origin_port);
    snprintf(out1, sizeof(out1), "%s/curl.out", x->d->dir);
    snprintf(out2, sizeof(out2), "%s/wget.out", x->d->dir);
    snprintf(out3, sizeof(out3), "%s/py.out", x->d->dir);
    const char *curl_argv[] = {"/usr/bin/curl", "-sf", "-o", out1, url, NULL};
    const char *wget_argv[] = {"/usr/bin/wget", "-q", "-O", out2, url, NULL};
    const char *py_argv[] = {"/usr/bin/env",
                             "python3",
                             "-c",
                             "import sys, urllib.request\n"
                             "data = urllib.request.urlopen(sys.argv[1], timeout=20).read()\n"
                             "open(sys.argv[2], 'wb').write(data)\n",
                             url,
                             out3,
                             NULL};
    run_client(curl_argv, out1, want, x);
    run_client(wget_argv, out2, want, x);
    run_client(py_argv, out3, want, x);
    assert_int_equal(origin_count(x, "/tools/tool.tar.gz", "get"), 1);
    json_t *st = px_api(x, "/api/v1/proxy/stats");
    json_t *o = json_object_get(json_object_get(st, "backends"), "o");
    assert_int_equal(json_integer_value(json_object_get(o, "hits")), 2);
    json_decref(st);
    e2e_pass(x->d); /* reached the end: no log dump */
}

/* ---------------------------------------------------- cap, restart, API */

static size_t dir_bytes(const char *dir)
{
    size_t total = 0;
    char sub[600], path[900];

    for (int i = 0; i < 256; i++) {
        DIR *d;
        struct dirent *de;
        snprintf(sub, sizeof(sub), "%s/%02x", dir, i);
        d = opendir(sub);
        if (!d)
            continue;
        while ((de = readdir(d))) {
            struct stat sb;
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
            if (stat(path, &sb) == 0)
                total += (size_t)sb.st_size;
        }
        closedir(d);
    }
    return total;
}

static void test_eviction(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char path[64], cache[400];
    json_t *st;

    snprintf(cache, sizeof(cache), "%s/proxy/cache", x->d->state_dir);
    for (int i = 0; i < 8; i++) {
        char ctl[128];
        snprintf(ctl, sizeof(ctl), "{\"path\":\"/ev%d\",\"size\":30000}", i);
        origin_ctl(x, ctl);
        snprintf(path, sizeof(path), "/o/ev%d", i);
        assert_int_equal(px_get(x, path, NULL, &r), 200);
        px_resp_free(&r);
        st = px_api(x, "/api/v1/proxy/stats");
        assert_true(json_integer_value(json_object_get(json_object_get(st, "cache"), "bytes")) <=
                    100 * 1024);
        json_decref(st);
        assert_true(dir_bytes(cache) <= 100 * 1024);
    }
    /* the newest three stay, the oldest went */
    assert_int_equal(px_get(x, "/o/ev7", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/ev0", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    assert_true(metric(x, "relengd_proxy_evicted_total") >= 5.0);
    /* too big for the cap: passed on, not cached */
    origin_ctl(x, "{\"path\":\"/huge\",\"size\":200000}");
    assert_int_equal(px_get(x, "/o/huge", NULL, &r), 200);
    assert_int_equal(r.len, 200000);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/huge", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

struct k9 {
    struct px *x;
};

static bool k9_bytes(void *arg)
{
    struct k9 *k = arg;
    return px_inflight(k->x, "/k9.bin", "bytes") >= 524288;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_kill9_mid_download(void **state)
{
    struct px *x = *state;
    struct px_multi *m = px_multi_new();
    struct k9 k = {.x = x};
    struct px_resp r;
    char want[65], keep[65], tmp[400];

    origin_ctl(x, "{\"path\":\"/keep.bin\",\"size\":10000}");
    origin_digest(x, "/keep.bin", "sha256", keep, sizeof(keep));
    assert_int_equal(px_get(x, "/o/keep.bin", NULL, &r), 200);
    px_resp_free(&r);
    origin_ctl(x, "{\"path\":\"/k9.bin\",\"size\":2097152,\"gate_at\":524288}");
    origin_digest(x, "/k9.bin", "sha256", want, sizeof(want));
    px_multi_add(m, x, "/o/k9.bin", NULL);
    assert_true(px_multi_until(m, k9_bytes, &k, 15000));
    snprintf(tmp, sizeof(tmp), "%s/proxy/cache/tmp", x->d->state_dir);
    assert_int_equal(count_files(tmp), 1); /* the half-written download */
    e2e_kill9(x->d);
    px_multi_run(m, 5000);
    assert_int_not_equal(px_multi_result(m, 0), CURLE_OK);
    px_multi_free(m);
    origin_open(x, "/k9.bin");
    assert_int_equal(e2e_launch(x->d), E2E_READY);
    px_reload_port(x);
    assert_int_equal(count_files(tmp), 0);
    /* the partial object is never served: fetched whole again */
    assert_int_equal(px_get(x, "/o/k9.bin", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/k9.bin", "get"), 2);
    /* what was complete before the kill survived it */
    assert_int_equal(px_get(x, "/o/keep.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, keep);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/keep.bin", "get"), 1);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_restart_keeps_cache(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    json_t *st;

    origin_ctl(x, "{\"path\":\"/rs.bin\",\"size\":7000}");
    assert_int_equal(px_get(x, "/o/rs.bin", NULL, &r), 200);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/rs.bin", NULL, &r), 200);
    px_resp_free(&r);
    assert_int_equal(e2e_restart(x->d), E2E_READY);
    px_reload_port(x);
    assert_int_equal(px_get(x, "/o/rs.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/rs.bin", "get"), 1);
    /* hit counts and totals were flushed and survive */
    st = px_api(x, "/api/v1/proxy/objects");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(st, "objects"), 0), "hits")),
                     2);
    json_decref(st);
    st = px_api(x, "/api/v1/proxy/stats");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "total"), "hits")), 2);
    json_decref(st);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_api_purge(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    struct e2e_resp a;
    char body[256];

    origin_ctl(x, "{\"path\":\"/pa/1\",\"size\":100}");
    origin_ctl(x, "{\"path\":\"/pa/2\",\"size\":200}");
    origin_ctl(x, "{\"path\":\"/pb\",\"size\":300}");
    px_get(x, "/o/pa/1", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/pa/2", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/pb", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/pb", NULL, &r);
    px_resp_free(&r);

    json_t *objs = px_api(x, "/api/v1/proxy/objects?sort=hits");
    assert_int_equal(json_integer_value(json_object_get(objs, "total")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(objs, "objects"), 0), "path")),
                        "/pb");
    json_decref(objs);
    objs = px_api(x, "/api/v1/proxy/objects?sort=size&limit=1");
    assert_int_equal(json_array_size(json_object_get(objs, "objects")), 1);
    json_decref(objs);
    assert_int_equal(e2e_get(x->d, "/api/v1/proxy/objects?sort=bogus", NULL, &a), 400);
    e2e_resp_free(&a);

    /* purge needs proxy:purge */
    assert_int_equal(e2e_post(x->d, "/api/v1/proxy/purge", NULL, "{\"url\":\"/o/pb\"}", &a), 401);
    e2e_resp_free(&a);
    assert_int_equal(e2e_post(x->d, "/api/v1/proxy/purge", x->d->admin_token, "{}", &a), 400);
    e2e_resp_free(&a);
    assert_int_equal(
        e2e_post(x->d, "/api/v1/proxy/purge", x->d->admin_token, "{\"url\":\"/nosuch/x\"}", &a),
        404);
    e2e_resp_free(&a);
    snprintf(body, sizeof(body), "{\"url\":\"http://127.0.0.1:%d/pb\"}", x->origin_port);
    assert_int_equal(e2e_post(x->d, "/api/v1/proxy/purge", x->d->admin_token, body, &a), 200);
    assert_int_equal(json_integer_value(json_object_get(a.json, "purged")), 1);
    e2e_resp_free(&a);
    assert_int_equal(
        e2e_post(x->d, "/api/v1/proxy/purge", x->d->admin_token, "{\"prefix\":\"/o/pa/\"}", &a),
        200);
    assert_int_equal(json_integer_value(json_object_get(a.json, "purged")), 2);
    assert_int_equal(json_integer_value(json_object_get(a.json, "bytes")), 300);
    e2e_resp_free(&a);
    px_get(x, "/o/pb", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    px_get(x, "/o/pa/1", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/pb", "get"), 2);
    e2e_pass(x->d); /* reached the end: no log dump */
}

/* ------------------------------------------------------- a full disk */

/* The cache on its own 2 MiB tmpfs, mounted in a private mount namespace
   of this test process (the daemon and the origin inherit it; nothing
   reaches the host's mounts). Needs root (CAP_SYS_ADMIN). */
struct full_disk {
    struct px *x;
    char mnt[64];
    char cache[128];
    bool mounted;
    char why[160];
};
static struct full_disk fd_state;

static int setup_full_disk(void **state)
{
    struct full_disk *f = &fd_state;
    char conf[256];

    memset(f, 0, sizeof(*f));
    *state = f;
    snprintf(f->mnt, sizeof(f->mnt), "/tmp/rd-pxfull-XXXXXX");
    if (!mkdtemp(f->mnt))
        return -1;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", f->mnt, "tmpfs", 0, "size=2m") != 0) {
        snprintf(f->why, sizeof(f->why), "cannot mount a tmpfs in a private namespace: %s",
                 strerror(errno));
        rmdir(f->mnt);
        return 0; /* the test skips */
    }
    f->mounted = true;
    snprintf(f->cache, sizeof(f->cache), "%.63s/cache", f->mnt);
    snprintf(conf, sizeof(conf), "cache_dir = %.127s\n", f->cache);
    f->x = px_start(conf);
    return f->x ? 0 : -1;
}

static int teardown_full_disk(void **state)
{
    struct full_disk *f = *state;
    int rc = 0;

    if (f->x)
        rc = px_stop(f->x);
    if (f->mounted) {
        umount2(f->mnt, MNT_DETACH);
        rmdir(f->mnt);
    }
    return rc == 0 ? 0 : -1;
}

static bool tmp_empty(void *arg)
{
    char tmp[200];
    snprintf(tmp, sizeof(tmp), "%s/tmp", ((struct full_disk *)arg)->cache);
    return count_files(tmp) == 0;
}

static bool disk_full_cleared(void *arg)
{
    return metric(((struct full_disk *)arg)->x, "relengd_proxy_disk_full") == 0.0;
}

static bool cached_whole(void *arg)
{
    return dir_bytes(((struct full_disk *)arg)->cache) == 1048576;
}

static void test_full_disk(void **state)
{
    struct full_disk *f = *state;
    struct px *x = f->x;
    struct px_resp r;
    struct statvfs sv;
    char want[65], filler[200];
    size_t log_at;
    json_t *st;
    int fd;

    if (!f->mounted) {
        fprintf(stderr, "skipped: %s (needs root)\n", f->why);
        skip();
    }
    /* Leave 256 KiB free; the object is 1 MiB. */
    assert_int_equal(statvfs(f->cache, &sv), 0);
    size_t avail = (size_t)sv.f_bavail * sv.f_frsize, fill = avail - 256 * 1024;
    snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    char *zeros = calloc(1, fill);
    assert_non_null(zeros);
    assert_int_equal(write(fd, zeros, fill), (ssize_t)fill);
    free(zeros);
    close(fd);
    origin_ctl(x, "{\"path\":\"/full.bin\",\"size\":1048576}");
    origin_digest(x, "/full.bin", "sha256", want, sizeof(want));
    log_at = e2e_log_size(x->d);

    /* The fetch that hits ENOSPC fails: its client sees the connection cut
       (a truncated body, never a short one that looks whole) or a 502. */
    px_get(x, "/o/full.bin", NULL, &r);
    assert_false(r.rc == CURLE_OK && r.status == 200);
    assert_true(r.len < 1048576);
    px_resp_free(&r);
    assert_true(e2e_log_contains_from(x->d, log_at, "cache disk full"));
    assert_true(metric(x, "relengd_proxy_disk_full") == 1.0);
    st = px_api(x, "/api/v1/proxy/stats");
    assert_true(json_is_true(json_object_get(json_object_get(st, "cache"), "disk_full")));
    json_decref(st);
    /* nothing half-written stays: the temporary file goes with the fetch */
    assert_true(wait_for(tmp_empty, f, 10000));
    assert_int_equal(dir_bytes(f->cache), 0);

    /* Proxying goes on: the retry passes the bytes straight through,
       byte-exact, and caches nothing. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(px_get(x, "/o/full.bin", NULL, &r), 200);
        assert_int_equal(r.rc, CURLE_OK);
        expect_xcache(&r, "MISS");
        assert_string_equal(r.sha256, want);
        px_resp_free(&r);
    }
    assert_int_equal(origin_count(x, "/full.bin", "get"), 3);
    assert_int_equal(dir_bytes(f->cache), 0);
    assert_true(tmp_empty(f));
    st = px_api(x, "/api/v1/proxy/objects");
    assert_int_equal(json_integer_value(json_object_get(st, "total")), 0);
    json_decref(st);

    /* Space comes back: caching resumes without waiting out the 30 s. */
    assert_int_equal(unlink(filler), 0);
    assert_true(wait_for(disk_full_cleared, f, 10000));
    assert_true(e2e_log_contains_from(x->d, log_at, "caching resumes (disk space was freed)"));
    assert_int_equal(px_get(x, "/o/full.bin", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/full.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/full.bin", "get"), 4);
    assert_true(wait_for(cached_whole, f, 10000)); /* renamed once synced */
    e2e_pass(x->d);                                /* reached the end: no log dump */
}

static void test_immutable_and_chunked(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char want[65];

    /* "immutable": fresh forever even when the origin says max-age=0 */
    origin_ctl(x, "{\"path\":\"/imm/a\",\"size\":500,\"cc\":\"max-age=0\",\"etag\":true}");
    px_get(x, "/imm/a", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    px_get(x, "/imm/a", NULL, &r);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    assert_int_equal(origin_count(x, "/imm/a", "get"), 1);
    /* no-store and private are not kept */
    origin_ctl(x, "{\"path\":\"/ns\",\"cc\":\"no-store\"}");
    px_get(x, "/o/ns", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/ns", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    origin_ctl(x, "{\"path\":\"/pv\",\"cc\":\"private, max-age=60\"}");
    px_get(x, "/o/pv", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/pv", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    /* a chunked origin body is cached like any other */
    origin_ctl(x, "{\"path\":\"/ch\",\"size\":100000,\"chunked\":true}");
    origin_digest(x, "/ch", "sha256", want, sizeof(want));
    assert_int_equal(px_get(x, "/o/ch", NULL, &r), 200);
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/ch", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static int setup_tls(void **state)
{
    struct px *x = px_start_tls("host_suffix = proxy.test\n");
    *state = x;
    return x ? 0 : -1;
}

static int setup_small_cap(void **state)
{
    struct px *x = px_start("max_cache_size = 100KiB\n");
    *state = x;
    return x ? 0 : -1;
}

static void test_https_upstream_and_host_routing(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    char want[65], url[128];
    const char *host_o[] = {"Host: o.proxy.test:3128", NULL};
    const char *host_bad[] = {"Host: nope.proxy.test", NULL};

    (void)state;
    assert_non_null(x);
    /* the HTTPS origin is another process: unconfigured paths serve the
       same default body in both, so the plain one tells its digest */
    origin_digest(x, "/t.bin", "sha256", want, sizeof(want));
    assert_int_equal(px_get(x, "/tls/t.bin", NULL, &r), 200);
    expect_xcache(&r, "MISS");
    assert_string_equal(r.sha256, want);
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/tls/t.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT");
    px_resp_free(&r);
    /* certificates are verified: a CA the backend does not trust is a 502 */
    assert_int_equal(px_get(x, "/tlsbad/t.bin", NULL, &r), 502);
    assert_non_null(strstr(r.body, "upstream_error"));
    px_resp_free(&r);
    /* forward mode for https:// absolute URIs of the configured host */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/t.bin", x->tls_port);
    char req[300];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", url);
    char *reply = px_raw(x, req, (size_t)n, 5000);
    assert_non_null(strstr(reply, "HTTP/1.1 200 "));
    assert_non_null(strstr(reply, "X-Cache: HIT"));
    free(reply);
    /* reverse mode by Host suffix */
    origin_ctl(x, "{\"path\":\"/h.bin\",\"size\":300}");
    assert_int_equal(px_get(x, "/h.bin", host_o, &r), 200);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/o/h.bin", NULL, &r), 200);
    expect_xcache(&r, "HIT"); /* the same object by path */
    px_resp_free(&r);
    assert_int_equal(px_get(x, "/h.bin", host_bad, &r), 404);
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

static void test_relengctl(void **state)
{
    struct px *x = *state;
    struct px_resp r;
    struct e2e_exec ex;
    char ctl[400], url[160], tok[160];

    origin_ctl(x, "{\"path\":\"/ctl.bin\",\"size\":4096}");
    px_get(x, "/o/ctl.bin", NULL, &r);
    px_resp_free(&r);
    px_get(x, "/o/ctl.bin", NULL, &r);
    px_resp_free(&r);
    snprintf(ctl, sizeof(ctl), "%s/cli/relengctl", e2e_builddir());
    snprintf(url, sizeof(url), "RELENGD_URL=%s", x->d->base_url);
    snprintf(tok, sizeof(tok), "RELENGD_TOKEN=%s", x->d->admin_token);
    const char *stats[] = {ctl, "proxy", "stats", NULL};
    const char *env_anon[] = {url, NULL};
    const char *env_admin[] = {url, tok, NULL};
    assert_int_equal(e2e_exec(stats, env_anon, NULL, 10000, &ex), 0);
    assert_non_null(strstr(ex.out, "BACKEND"));
    assert_non_null(strstr(ex.out, "(total)"));
    assert_non_null(strstr(ex.out, "50.0 %")); /* one hit, one miss */
    assert_non_null(strstr(ex.out, "cache: 1 objects"));
    e2e_exec_free(&ex);
    const char *purge[] = {ctl, "proxy", "purge", "/o/ctl.bin", NULL};
    assert_int_equal(e2e_exec(purge, env_anon, NULL, 10000, &ex), 1); /* no token */
    e2e_exec_free(&ex);
    assert_int_equal(e2e_exec(purge, env_admin, NULL, 10000, &ex), 0);
    assert_non_null(strstr(ex.out, "purged 1 objects (4096 bytes)"));
    e2e_exec_free(&ex);
    const char *bad[] = {ctl, "proxy", "purge", NULL};
    assert_int_equal(e2e_exec(bad, env_admin, NULL, 10000, &ex), 2);
    e2e_exec_free(&ex);
    px_get(x, "/o/ctl.bin", NULL, &r);
    expect_xcache(&r, "MISS");
    px_resp_free(&r);
    e2e_pass(x->d); /* reached the end: no log dump */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_miss_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_herd_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_mid_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_leaves_download_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revalidation_304, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_on_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_fails_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction, setup_small_cap, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_mid_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immutable_and_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relengctl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup_full_disk, teardown_full_disk),
        cmocka_unit_test_setup_teardown(test_https_upstream_and_host_routing, setup_tls, teardown),
    };
    return cmocka_run_group_tests_name("e2e proxy", tests, NULL, NULL);
}
