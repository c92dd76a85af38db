/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/partials/test_spec.c -- the partials module's pure logic
 * (modules/partials/spec.c) in tables: POST /jobs validation, labels, ids,
 * list queries, cache file names, remote URLs, word lists.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modules/partials/spec.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_job_spec(void **state)
{
    static const struct {
        const char *body;
        const char *err_prefix; /* NULL: valid */
    } cases[] = {
        {"{\"from_url\":\"http://h/a.mar\",\"to_url\":\"https://h/b.mar\",\"platform\":\"linux64\","
         "\"locale\":\"en-US\"}",
         NULL},
        {"{\"from_upload\":\"" SHA_A "\",\"to_upload\":\"" SHA_B "\",\"platform\":\"win64\","
         "\"locale\":\"ja-JP-mac\",\"channel\":\"release\",\"version\":\"2.0\","
         "\"update_number\":3,\"format\":\"bz2\"}",
         NULL},
        {"[]", "body:"},
        {"{\"to_url\":\"http://h/b\",\"platform\":\"p\",\"locale\":\"l\"}", "from:"},
        {"{\"from_url\":\"http://h/a\",\"from_upload\":\"" SHA_A
         "\",\"to_url\":\"http://h/b\",\"platform\":\"p\",\"locale\":\"l\"}",
         "from:"},
        {"{\"from_url\":\"ftp://h/a\",\"to_url\":\"http://h/"
         "b\",\"platform\":\"p\",\"locale\":\"l\"}",
         "from_url:"},
        {"{\"from_url\":\"http://h/a b\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\"}",
         "from_url:"},
        {"{\"from_url\":\"http://h/a\",\"to_upload\":\"xyz\",\"platform\":\"p\",\"locale\":\"l\"}",
         "to_upload:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"locale\":\"l\"}", "platform:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"a,b\","
         "\"locale\":\"l\"}",
         "platform:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"x=y\"}",
         "locale:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"format\":\"zip\"}",
         "format:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"update_number\":-1}",
         "update_number:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"update_number\":\"2\"}",
         "update_number:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"version\":\"12345678901234567890123456789012\"}",
         "version:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"colour\":\"red\"}",
         "colour:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"\"}",
         "locale:"},
        {"{\"from_url\":\"http://h/a\",\"to_url\":\"http://h/b\",\"platform\":\"p\","
         "\"locale\":\"l\",\"channel\":5}",
         "channel:"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_loads(cases[i].body, 0, NULL);
        struct partials_job_spec s;
        struct rd_error err = {0};
        int rc;

        assert_non_null(body);
        rc = partials_job_spec_parse(body, &s, &err);
        if (!cases[i].err_prefix && rc != RD_OK)
            fail_msg("case %zu: %s", i, err.msg);
        if (cases[i].err_prefix && (rc != RD_EINVAL || strncmp(err.msg, cases[i].err_prefix,
                                                               strlen(cases[i].err_prefix)) != 0))
            fail_msg("case %zu: rc %d msg \"%s\", want %s", i, rc, err.msg, cases[i].err_prefix);
        json_decref(body);
    }
}

static void test_job_spec_fields(void **state)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:i}", "from_upload", SHA_A, "to_url",
                             "http://127.0.0.1:1/x.mar", "platform", "mac", "locale", "de",
                             "update_number", 2);
    struct partials_job_spec s;

    (void)state;
    assert_int_equal(partials_job_spec_parse(body, &s, NULL), RD_OK);
    assert_string_equal(s.from_upload, SHA_A);
    assert_null(s.from_url);
    assert_string_equal(s.to_url, "http://127.0.0.1:1/x.mar");
    assert_null(s.to_upload);
    assert_null(s.channel);
    assert_null(s.format);
    assert_int_equal(s.update_number, 2);
    json_decref(body);
}

static void test_labels_ids_urls(void **state)
{
    char long_label[80];

    (void)state;
    memset(long_label, 'a', 65);
    long_label[65] = '\0';
    assert_true(partials_label_ok("en-US"));
    assert_true(partials_label_ok("ja-JP-mac"));
    assert_true(partials_label_ok("linux64_asan.opt@x+y"));
    assert_false(partials_label_ok(""));
    assert_false(partials_label_ok(NULL));
    assert_false(partials_label_ok("a b"));
    assert_false(partials_label_ok("a\"b"));
    assert_false(partials_label_ok("a,b"));
    assert_false(partials_label_ok(long_label));
    long_label[64] = '\0';
    assert_true(partials_label_ok(long_label));

    assert_true(partials_sha_hex_ok(SHA_B));
    assert_false(partials_sha_hex_ok("ABCDEF"));
    assert_false(partials_sha_hex_ok(SHA_B "0"));
    assert_false(partials_sha_hex_ok("../../etc/passwd"));

    assert_true(partials_url_ok("http://h"));
    assert_true(partials_url_ok("https://h:8080/p?q=1"));
    assert_false(partials_url_ok("http://"));
    assert_false(partials_url_ok("http:///p"));
    assert_false(partials_url_ok("file:///etc/passwd"));
    assert_false(partials_url_ok("http://h/\n"));

    {
        int64_t id = 0;
        assert_int_equal(partials_id_parse("42", &id), RD_OK);
        assert_int_equal(id, 42);
        assert_int_equal(partials_id_parse("0", &id), RD_EINVAL);
        assert_int_equal(partials_id_parse("-1", &id), RD_EINVAL);
        assert_int_equal(partials_id_parse("1x", &id), RD_EINVAL);
        assert_int_equal(partials_id_parse("99999999999999999999", &id), RD_EINVAL);
        assert_int_equal(partials_id_parse(NULL, &id), RD_EINVAL);
    }
}

static void test_list_query(void **state)
{
    struct partials_list_query q;
    struct rd_error err = {0};

    (void)state;
    assert_int_equal(partials_list_query_parse(NULL, NULL, NULL, &q, &err), RD_OK);
    assert_null(q.state);
    assert_int_equal(q.limit, 50);
    assert_int_equal(q.before, 0);
    assert_int_equal(partials_list_query_parse("done", "500", "7", &q, &err), RD_OK);
    assert_string_equal(q.state, "done");
    assert_int_equal(q.limit, 500);
    assert_int_equal(q.before, 7);
    assert_int_equal(partials_list_query_parse("finished", NULL, NULL, &q, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "state:"));
    assert_int_equal(partials_list_query_parse(NULL, "0", NULL, &q, &err), RD_EINVAL);
    assert_int_equal(partials_list_query_parse(NULL, "501", NULL, &q, &err), RD_EINVAL);
    assert_int_equal(partials_list_query_parse(NULL, NULL, "x", &q, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "before:"));
}

static void test_cache_names_and_urls(void **state)
{
    char name[PARTIALS_CACHE_NAME_MAX];
    char *url;

    (void)state;
    assert_int_equal(partials_cache_name(SHA_B, SHA_A, "mbdiff10+xz", name), RD_OK);
    assert_string_equal(name, "01/" SHA_B "-" SHA_A ".mbdiff10+xz");
    assert_int_equal(partials_cache_name(SHA_B, SHA_A, "../x", name), RD_EINVAL);
    assert_int_equal(partials_cache_name(SHA_B, SHA_A, "", name), RD_EINVAL);
    assert_int_equal(partials_cache_name("zz", SHA_A, "xz", name), RD_EINVAL);

    url = partials_remote_url("http://cache:9000/bucket/", SHA_A, SHA_B, "mbdiff10+xz");
    assert_string_equal(url, "http://cache:9000/bucket/" SHA_A "/" SHA_B "/mbdiff10+xz");
    free(url);
    url = partials_remote_url("https://s3.example.com/b", SHA_A, SHA_B, "mbdiff10+bz2");
    assert_string_equal(url, "https://s3.example.com/b/" SHA_A "/" SHA_B "/mbdiff10+bz2");
    free(url);
}

static void test_split_words(void **state)
{
    char **v;

    (void)state;
    v = partials_split_words("  Contents/MacOS/firefox\tchrome.manifest  ");
    assert_string_equal(v[0], "Contents/MacOS/firefox");
    assert_string_equal(v[1], "chrome.manifest");
    assert_null(v[2]);
    partials_strv_free(v);
    v = partials_split_words("");
    assert_null(v[0]);
    partials_strv_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_spec),
        cmocka_unit_test(test_job_spec_fields),
        cmocka_unit_test(test_labels_ids_urls),
        cmocka_unit_test(test_list_query),
        cmocka_unit_test(test_cache_names_and_urls),
        cmocka_unit_test(test_split_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
