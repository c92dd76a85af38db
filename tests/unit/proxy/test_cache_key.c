/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/proxy/test_cache_key.c -- tables of cases for
 * modules/proxy/cache_key.c: path normalisation (two spellings, one key),
 * refusals, absolute URIs for forward mode, content digests in URLs, and
 * backends by Host suffix.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/module.h"
#include "modules/proxy/cache_key.h"

static void test_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"/", "/"},
        {"/a/b.tar.gz", "/a/b.tar.gz"},
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/a/b/../../c", "/c"},
        {"/%7Euser/%41%2d", "/~user/A-"}, /* unreserved: decoded */
        {"/a%2fb", "/a%2Fb"},             /* reserved: kept, upper hex */
        {"/a%2Fb", "/a%2Fb"},             /* ...so both spellings agree */
        {"/sp%20ace", "/sp%20ace"},
        {"/x?", "/x"}, /* an empty query is none */
        {"/x?a=1&b=%7e", "/x?a=1&b=~"},
        {"/a/../x?q=/../", "/x?q=/../"},        /* dots in a query are data */
        {"//double//slash", "//double//slash"}, /* significant: kept */
        {"/%2E%2E/x", NULL},                    /* decoded dots climb too */
    };
    static const char *const bad[] = {
        "",       "x",    "/../x",   "/a/../../x", "/%",        "/%4",       "/%zz",
        "/a%00b", "/a b", "/a#frag", "/a\x01",     "/\xc3\xa9", "/%2e%2e/x",
    };
    char out[256];
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = proxy_path_normalize(ok[i].in, strlen(ok[i].in), out, sizeof(out), &why);
        if (!ok[i].out) {
            assert_int_equal(rc, RD_EINVAL);
            continue;
        }
        if (rc != RD_OK)
            print_error("%s: %s\n", ok[i].in, why);
        assert_int_equal(rc, RD_OK);
        assert_string_equal(out, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(proxy_path_normalize(bad[i], strlen(bad[i]), out, sizeof(out), &why),
                         RD_EINVAL);
        assert_non_null(why);
    }
    /* does not fit */
    assert_int_equal(proxy_path_normalize("/abcdefgh", 9, out, 5, &why), RD_EINVAL);
}

static void test_key(void **state)
{
    char key[32];

    (void)state;
    assert_int_equal(proxy_cache_key("hg", "/a?b", key, sizeof(key)), RD_OK);
    assert_string_equal(key, "hg /a?b");
    assert_int_equal(proxy_cache_key("hg", "/a-very-long-path-that-does-not-fit", key, sizeof(key)),
                     RD_ETOOBIG);
}

static void test_uri(void **state)
{
    static const struct {
        const char *in, *scheme, *host;
        int port;
        const char *path;
    } ok[] = {
        {"http://Example.COM/a", "http", "example.com", 80, "/a"},
        {"http://h:8080", "http", "h", 8080, "/"},
        {"HTTPS://h/x?y", "https", "h", 443, "/x?y"},
        {"http://127.0.0.1:3128/p/q", "http", "127.0.0.1", 3128, "/p/q"},
        {"http://[::1]:81/z", "http", "::1", 81, "/z"},
    };
    static const char *const bad[] = {
        "ftp://h/x",       "http://",      "http:///x",     "http://u@h/x", "http://h:0/",
        "http://h:99999/", "http://h:/x",  "http://h:8a/x", "http://h?x",   "http://h#f",
        "http://[::1/x",   "http://h_ x/", "//h/x",
    };
    struct proxy_uri u;
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(proxy_uri_parse(ok[i].in, strlen(ok[i].in), &u, &why), RD_OK);
        assert_string_equal(u.scheme, ok[i].scheme);
        assert_string_equal(u.host, ok[i].host);
        assert_int_equal(u.port, ok[i].port);
        assert_int_equal(u.path_len, strlen(ok[i].path));
        assert_memory_equal(u.path, ok[i].path, u.path_len);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (proxy_uri_parse(bad[i], strlen(bad[i]), &u, &why) != RD_EINVAL)
            print_error("accepted %s\n", bad[i]);
        assert_int_equal(proxy_uri_parse(bad[i], strlen(bad[i]), &u, &why), RD_EINVAL);
    }
}

static void test_digest(void **state)
{
    char out[129], hex64[65];

    (void)state;
    memset(hex64, 'A', 64);
    hex64[64] = '\0';
    char path[100];
    snprintf(path, sizeof(path), "/sha256/%s?x=1", hex64);
    assert_int_equal(proxy_digest_from_path(path, 64, out), RD_OK);
    assert_int_equal(strlen(out), 64);
    assert_int_equal(out[0], 'a'); /* lower case */
    assert_int_equal(proxy_digest_from_path(path, 128, out), RD_EINVAL);
    assert_int_equal(proxy_digest_from_path("/sha256/abc", 64, out), RD_EINVAL);
    snprintf(path, sizeof(path), "/%.63sg", hex64);
    assert_int_equal(proxy_digest_from_path(path, 64, out), RD_EINVAL);
    snprintf(path, sizeof(path), "/%s/", hex64);
    assert_int_equal(proxy_digest_from_path(path, 64, out), RD_EINVAL);
}

static void test_host_backend(void **state)
{
    char name[64];

    (void)state;
    assert_true(proxy_host_backend("hg.proxy.example", 16, "proxy.example", name, sizeof(name)));
    assert_string_equal(name, "hg");
    assert_true(
        proxy_host_backend("HG.Proxy.Example:3128", 21, "proxy.example", name, sizeof(name)));
    assert_string_equal(name, "hg");
    assert_false(proxy_host_backend("proxy.example", 13, "proxy.example", name, sizeof(name)));
    assert_false(proxy_host_backend("hgproxy.example", 15, "proxy.example", name, sizeof(name)));
    assert_false(proxy_host_backend("a.b.proxy.example", 17, "proxy.example", name, sizeof(name)));
    assert_false(proxy_host_backend("hg.proxy.example", 16, "", name, sizeof(name)));
    assert_false(proxy_host_backend("hg.proxy.example", 16, NULL, name, sizeof(name)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),    cmocka_unit_test(test_key),
        cmocka_unit_test(test_uri),          cmocka_unit_test(test_digest),
        cmocka_unit_test(test_host_backend),
    };
    return cmocka_run_group_tests_name("proxy cache_key", tests, NULL, NULL);
}
