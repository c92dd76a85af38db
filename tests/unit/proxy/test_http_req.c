/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/proxy/test_http_req.c -- tables of cases for the strict
 * request-head parser (modules/proxy/http_req.c): what it accepts, what it
 * refuses with which status, and incremental input.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/proxy/http_req.h"

static void test_accepts(void **state)
{
    const char *s = "GET /hg/a?b=1 HTTP/1.1\r\nHost: x:3128\r\nRange:  bytes=0-1 \r\n"
                    "X-Empty:\r\n\r\nGET /next";
    struct proxy_req r;
    const char *why;
    long n;

    (void)state;
    n = proxy_req_parse(s, strlen(s), 16384, &r, &why);
    assert_int_equal(n, (long)(strstr(s, "GET /next") - s));
    assert_int_equal(r.method, PROXY_M_GET);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.target_len, 9);
    assert_memory_equal(r.target, "/hg/a?b=1", 9);
    assert_int_equal(r.n_hdrs, 3);
    const struct proxy_hdr *h = proxy_req_header(&r, "RANGE");
    assert_non_null(h);
    assert_int_equal(h->value_len, 9); /* surrounding whitespace trimmed */
    assert_memory_equal(h->value, "bytes=0-1", 9);
    assert_int_equal(proxy_req_header(&r, "x-empty")->value_len, 0);
    assert_null(proxy_req_header(&r, "cookie"));
    assert_int_equal(proxy_req_header_count(&r, "host"), 1);

    s = "\r\nHEAD http://h/x HTTP/1.0\r\n\r\n"; /* a leading empty line is ignored */
    assert_true(proxy_req_parse(s, strlen(s), 16384, &r, &why) > 0);
    assert_int_equal(r.method, PROXY_M_HEAD);
    assert_int_equal(r.minor, 0);
    s = "PURGE / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_true(proxy_req_parse(s, strlen(s), 16384, &r, &why) > 0);
    assert_int_equal(r.method, PROXY_M_OTHER);
    s = "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_true(proxy_req_parse(s, strlen(s), 16384, &r, &why) > 0);
    assert_int_equal(r.method, PROXY_M_CONNECT);
}

static void test_refuses(void **state)
{
    static const struct {
        const char *req;
        long status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", -400},
        {"GET\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {"GET / HTTP/1.1\n\n", -400},
        {"GET / http/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", -400},
        {"G(T / HTTP/1.1\r\n\r\n", -400},
        {"GET /\x7f HTTP/1.1\r\n\r\n", -400},
        {"GET /\x80 HTTP/1.1\r\n\r\n", -400}, /* obs-text is no target byte, */
        {"GET /\xff HTTP/1.1\r\n\r\n", -400}, /* signed char or not */
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.2\r\n\r\n", -505},
        {"GET / HTTP/0.9\r\n\r\n", -505},
    };
    struct proxy_req r;
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        long n = proxy_req_parse(cases[i].req, strlen(cases[i].req), 16384, &r, &why);
        if (n != cases[i].status)
            print_error("case %zu: %ld\n", i, n);
        assert_int_equal(n, cases[i].status);
        assert_non_null(why);
    }
    /* NUL in the request line, seen before the line ends */
    assert_int_equal(proxy_req_parse("GE\0T", 4, 16384, &r, &why), -400);
}

static void test_limits(void **state)
{
    struct proxy_req r;
    const char *why;
    char *big = malloc(40000);
    size_t n;

    (void)state;
    /* a request line that never ends within the limit: 414 */
    memset(big, 'a', 2000);
    memcpy(big, "GET /", 5);
    assert_int_equal(proxy_req_parse(big, 2000, 1024, &r, &why), -414);
    assert_int_equal(proxy_req_parse(big, 1000, 1024, &r, &why), 0);
    /* headers past the limit: 431 */
    n = (size_t)snprintf(big, 40000, "GET / HTTP/1.1\r\nX: ");
    memset(big + n, 'b', 2000);
    n += 2000;
    assert_int_equal(proxy_req_parse(big, n, 1024, &r, &why), -431);
    memcpy(big + n, "\r\n\r\n", 4);
    assert_int_equal(proxy_req_parse(big, n + 4, 1024, &r, &why), -431);
    assert_true(proxy_req_parse(big, n + 4, 4096, &r, &why) > 0);
    /* too many fields: 431 */
    n = (size_t)snprintf(big, 40000, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= PROXY_MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, 40000 - n, "X%d: y\r\n", i);
    n += (size_t)snprintf(big + n, 40000 - n, "\r\n");
    assert_int_equal(proxy_req_parse(big, n, 32768, &r, &why), -431);
    free(big);
}

static void test_incremental(void **state)
{
    const char *s = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(s);
    struct proxy_req r;
    const char *why;

    (void)state;
    /* every prefix asks for more, the whole head parses */
    for (size_t i = 0; i < len; i++)
        assert_int_equal(proxy_req_parse(s, i, 16384, &r, &why), 0);
    assert_int_equal(proxy_req_parse(s, len, 16384, &r, &why), (long)len);
    /* a bad request line is refused as soon as its line is complete */
    assert_int_equal(proxy_req_parse("BAD LINE\r\n", 10, 16384, &r, &why), -400);
}

static void test_tokens(void **state)
{
    (void)state;
    assert_true(proxy_value_has_token("keep-alive, Upgrade", 19, "upgrade"));
    assert_true(proxy_value_has_token(" close ", 7, "close"));
    assert_false(proxy_value_has_token("closed", 6, "close"));
    assert_false(proxy_value_has_token("", 0, "close"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts), cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_limits),  cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests_name("proxy http_req", tests, NULL, NULL);
}
