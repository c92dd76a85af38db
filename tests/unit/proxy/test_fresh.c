/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/proxy/test_fresh.c -- tables of cases for modules/proxy/
 * fresh.c: Cache-Control parsing, storability and freshness lifetime of a
 * shared cache, ages, HTTP dates, and Range parsing and resolution.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/module.h"
#include "modules/proxy/fresh.h"

#define NOW_MS INT64_C(1767225600000) /* Thu, 01 Jan 2026 00:00:00 GMT */

static void test_cc_parse(void **state)
{
    struct proxy_cc cc;
    const char *v = "public, Max-Age=60, s-maxage=\"30\", no-cache=\"Set-Cookie, X\", immutable";

    (void)state;
    proxy_cc_init(&cc);
    proxy_cc_parse(v, strlen(v), &cc);
    assert_int_equal(cc.max_age_s, 60);
    assert_int_equal(cc.s_maxage_s, 30);
    assert_true(cc.no_cache);
    assert_true(cc.immutable);
    assert_false(cc.no_store);
    proxy_cc_init(&cc);
    v = "max-age=abc, private, no-store, must-revalidate";
    proxy_cc_parse(v, strlen(v), &cc);
    assert_int_equal(cc.max_age_s, -1);
    assert_true(cc.is_private && cc.no_store && cc.must_revalidate);
    proxy_cc_init(&cc);
    v = "max-age=99999999999999";
    proxy_cc_parse(v, strlen(v), &cc);
    assert_int_equal(cc.max_age_s, 2147483648LL); /* capped, not wrapped */
}

static void test_freshness(void **state)
{
    static const struct {
        int status;
        const char *cc, *expires, *date, *age;
        int64_t default_ttl_ms;
        bool immutable;
        bool storable;
        int64_t lifetime_ms, initial_age_ms;
    } cases[] = {
        {200, NULL, NULL, NULL, NULL, 3600000, false, true, 3600000, 0},
        {200, "max-age=60", NULL, NULL, NULL, 3600000, false, true, 60000, 0},
        {200, "max-age=60, s-maxage=10", NULL, NULL, NULL, 0, false, true, 10000, 0},
        {200, "no-cache, max-age=60", NULL, NULL, NULL, 0, false, true, 0, 0},
        {200, "no-store", NULL, NULL, NULL, 0, false, false, 0, 0},
        {200, "private, max-age=60", NULL, NULL, NULL, 0, false, false, 0, 0},
        {200, NULL, "Thu, 01 Jan 2026 01:00:00 GMT", "Thu, 01 Jan 2026 00:00:00 GMT", NULL, 5,
         false, true, 3600000, 0},
        {200, NULL, "0", NULL, NULL, 3600000, false, true, 0, 0}, /* bad Expires: expired */
        {200, "max-age=30", "Thu, 01 Jan 2026 01:00:00 GMT", NULL, NULL, 0, false, true, 30000, 0},
        {200, "max-age=100", NULL, NULL, "40", 0, false, true, 100000, 40000},
        /* a Date 10 s in the past makes the response 10 s old on arrival */
        {200, "max-age=100", NULL, "Wed, 31 Dec 2025 23:59:50 GMT", NULL, 0, false, true, 100000,
         10000},
        {200, "immutable", NULL, NULL, NULL, 5, false, true, PROXY_FOREVER, 0},
        {200, "no-store", NULL, NULL, "100", 5, true, true, PROXY_FOREVER, 0},
        {404, "max-age=60", NULL, NULL, NULL, 0, false, false, 0, 0},
        {206, NULL, NULL, NULL, NULL, 5, false, false, 0, 0},
        {404, NULL, NULL, NULL, NULL, 5, true, false, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proxy_fresh_in in = {.status = cases[i].status,
                                    .cache_control = cases[i].cc,
                                    .expires = cases[i].expires,
                                    .date = cases[i].date,
                                    .age = cases[i].age,
                                    .now_ms = NOW_MS,
                                    .default_ttl_ms = cases[i].default_ttl_ms,
                                    .immutable_backend = cases[i].immutable};
        struct proxy_fresh f;
        proxy_freshness(&in, &f);
        if (f.storable != cases[i].storable)
            print_error("case %zu: storable %d\n", i, f.storable);
        assert_int_equal(f.storable, cases[i].storable);
        if (!f.storable) {
            assert_non_null(f.why_not);
            continue;
        }
        if (f.lifetime_ms != cases[i].lifetime_ms)
            print_error("case %zu: lifetime %lld\n", i, (long long)f.lifetime_ms);
        assert_true(f.lifetime_ms == cases[i].lifetime_ms);
        assert_true(f.initial_age_ms == cases[i].initial_age_ms);
    }
}

static void test_is_fresh(void **state)
{
    (void)state;
    assert_true(proxy_is_fresh(60000, 0, NOW_MS, NOW_MS + 59999));
    assert_false(proxy_is_fresh(60000, 0, NOW_MS, NOW_MS + 60000));
    assert_false(proxy_is_fresh(60000, 50000, NOW_MS, NOW_MS + 10000));
    assert_false(proxy_is_fresh(0, 0, NOW_MS, NOW_MS));
    assert_true(proxy_is_fresh(PROXY_FOREVER, 0, 0, NOW_MS));
    /* a clock that went backwards makes nothing younger than on arrival */
    assert_int_equal(proxy_age_ms(1000, NOW_MS, NOW_MS - 5000), 1000);
    assert_int_equal(proxy_age_ms(1000, NOW_MS, NOW_MS + 5000), 6000);
}

static void test_dates(void **state)
{
    char out[30];

    (void)state;
    assert_true(proxy_http_date_ms("Thu, 01 Jan 2026 00:00:00 GMT") == NOW_MS);
    assert_true(proxy_http_date_ms("Thursday, 01-Jan-26 00:00:00 GMT") == NOW_MS);
    assert_true(proxy_http_date_ms("Thu Jan  1 00:00:00 2026") == NOW_MS);
    assert_true(proxy_http_date_ms("yesterday") == -1);
    assert_true(proxy_http_date_ms("") == -1);
    assert_true(proxy_http_date_ms(NULL) == -1);
    proxy_http_date_fmt(NOW_MS / 1000, out);
    assert_string_equal(out, "Thu, 01 Jan 2026 00:00:00 GMT");
}

static void test_range(void **state)
{
    static const struct {
        const char *v;
        int parse_rc;
        int64_t size;
        int resolve_rc;
        int64_t first, last;
    } cases[] = {
        {"bytes=0-99", RD_OK, 1000, RD_OK, 0, 99},
        {"bytes=100-", RD_OK, 1000, RD_OK, 100, 999},
        {"bytes=-10", RD_OK, 1000, RD_OK, 990, 999},
        {"bytes=-5000", RD_OK, 1000, RD_OK, 0, 999},
        {"bytes=900-2000", RD_OK, 1000, RD_OK, 900, 999},
        {"BYTES=1-1", RD_OK, 1000, RD_OK, 1, 1},
        {"bytes= 5-6 ", RD_OK, 1000, RD_OK, 5, 6},
        {"bytes=1000-", RD_OK, 1000, RD_ENOTFOUND, 0, 0},
        {"bytes=-0", RD_OK, 1000, RD_ENOTFOUND, 0, 0},
        {"bytes=0-0", RD_OK, 0, RD_ENOTFOUND, 0, 0},
        {"bytes=5-1", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=0-1,5-6", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=-", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=a-b", RD_EINVAL, 0, 0, 0, 0},
        {"items=0-1", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=0-1x", RD_EINVAL, 0, 0, 0, 0},
        {"bytes=99999999999999999999-", RD_EINVAL, 0, 0, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proxy_range r;
        int64_t first = 0, last = 0;
        int rc = proxy_range_parse(cases[i].v, strlen(cases[i].v), &r);
        if (rc != cases[i].parse_rc)
            print_error("%s: parse %d\n", cases[i].v, rc);
        assert_int_equal(rc, cases[i].parse_rc);
        if (rc != RD_OK)
            continue;
        rc = proxy_range_resolve(&r, cases[i].size, &first, &last);
        assert_int_equal(rc, cases[i].resolve_rc);
        if (rc == RD_OK) {
            assert_true(first == cases[i].first);
            assert_true(last == cases[i].last);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_parse), cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_is_fresh), cmocka_unit_test(test_dates),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests_name("proxy fresh", tests, NULL, NULL);
}
