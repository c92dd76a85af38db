/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/proxy/test_module.c -- the proxy module through the fake host
 * (tests/fakes/fake_host.h): configuration checks, the JSON API's input
 * validation and scopes, reconciliation of the index with the disk at
 * start, and failure injection on every host call of init and start.
 */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "modules/proxy/proxy.h"
#include "tests/fakes/fake_host.h"
#include "tests/unit/tmpdir.h"

const struct rd_module *rd_module_entry(void);

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

#define CONF                                                                                       \
    "listen = 127.0.0.1:0\n"                                                                       \
    "[backend.o]\nurl = http://127.0.0.1:9/\n"                                                     \
    "[backend.ca]\nurl = https://tooltool.example/sha512\ncontent_digest = sha512\n"

static int setup(void **state)
{
    struct fake_host *fh = fake_host_new("proxy", CONF);

    if (!fh || fake_host_load(fh, rd_module_entry()) != RD_OK) {
        fake_host_free(fh);
        return -1;
    }
    *state = fh;
    return 0;
}

static int teardown(void **state)
{
    fake_host_free(*state);
    return 0;
}

static const char *err_code(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

static void test_config_errors(void **state)
{
    static const char *const bad[] = {
        "[backend.o]\ndefault_ttl = 1h\n",                      /* no url */
        "[backend.o]\nurl = ftp://h/\n",                        /* scheme */
        "[backend.o]\nurl = http://h/?q=1\n",                   /* query */
        "[backend.o]\nurl = http://h/\ncontent_digest = md5\n", /* digest */
        "[backend.O]\nurl = http://h/\n",                       /* name */
        "[backend.o]\nurl = http://h/\nbogus = 1\n",            /* unknown key */
        "listen = nonsense\n",                                  /* listen */
        "listen = 127.0.0.1:99999\n",                           /* port */
        "max_header_size = 10\n",                               /* too small */
        "flush_interval = 1ms\n",                               /* too often */
        "max_cache_size = lots\n",                              /* a size */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake_host *fh = fake_host_new("proxy", bad[i]);
        int rc;
        if (!fh) /* a syntax error the parser itself refuses */
            continue;
        rc = fake_host_load(fh, rd_module_entry());
        if (rc == RD_OK)
            print_error("accepted: %s\n", bad[i]);
        assert_int_not_equal(rc, RD_OK);
        assert_null(fake_host_mod(fh));
        fake_host_free(fh);
    }
}

static void test_status_and_port(void **state)
{
    struct fake_host *fh = *state;
    json_t *st = fake_host_status(fh);

    assert_non_null(st);
    assert_true(fake_host_ready_port(fh, "proxy") > 0);
    assert_int_equal(json_integer_value(json_object_get(st, "port")),
                     fake_host_ready_port(fh, "proxy"));
    assert_int_equal(json_integer_value(json_object_get(st, "objects")), 0);
    json_decref(st);
}

static void test_api(void **state)
{
    struct fake_host *fh = *state;
    struct fake_resp r;

    r = fake_host_call(fh, "GET", "/api/v1/proxy/stats", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(json_object_get(r.body, "backends"), "o"));
    assert_non_null(json_object_get(json_object_get(r.body, "backends"), "ca"));
    assert_true(json_is_object(json_object_get(r.body, "total")));
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", "/api/v1/proxy/inflight", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "objects")), 0);
    fake_resp_free(&r);
    static const char *const bad_queries[] = {"?limit=0", "?limit=1001", "?limit=x", "?sort=name"};
    for (size_t i = 0; i < 4; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/api/v1/proxy/objects%s", bad_queries[i]);
        r = fake_host_call(fh, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 400);
        fake_resp_free(&r);
    }
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"url\":\"/o/x\"}", NULL);
    assert_int_equal(r.status, 401);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"url\":\"/o/x\"}", "example:write");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);
    static const char *const bad_bodies[] = {
        "{}",
        "[]",
        "{\"url\":1}",
        "{\"url\":\"\"}",
        "{\"url\":\"/o/x\",\"prefix\":\"/o/\"}",
        "{\"colour\":\"red\"}",
        "{\"url\":\"/o/../../x\"}",
        "{\"url\":\"/ca/nohex\"}",
    };
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
        r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", bad_bodies[i], "proxy:purge");
        if (r.status != 400)
            print_error("%s -> %d\n", bad_bodies[i], r.status);
        assert_int_equal(r.status, 400);
        assert_string_equal(err_code(&r), "bad_request");
        fake_resp_free(&r);
    }
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"url\":\"/nosuch/x\"}", "proxy:purge");
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"url\":\"http://elsewhere/x\"}",
                       "proxy:purge");
    assert_int_equal(r.status, 404);
    assert_string_equal(err_code(&r), "unknown_upstream");
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"prefix\":\"http://127.0.0.1:9/a\"}",
                       "proxy:purge");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "purged")), 0);
    assert_string_equal(json_string_value(json_object_get(r.body, "key")), "o /a");
    fake_resp_free(&r);
}

/* Rows and files of an earlier run: the index keeps only rows whose file
   is there with the right size; temporary and unknown files go. */
static void test_reconcile_at_start(void **state)
{
    char dir[256], path[600], db_path[300];
    struct fake_host *fh;
    sqlite3 *db = NULL;
    json_t *st;
    struct stat sb;
    /* hex SHA-256 of the keys "o /good", "o /short" and "o /gone" */
    char good[65], shrt[65], gone[65];

    (void)state;
    assert_int_equal(test_tmpdir_make(dir, sizeof(dir), "proxy-reconcile"), 0);
    fh = fake_host_new_in("proxy", CONF, dir);
    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    fake_host_free(fh);

    /* files are named after the SHA-256 of their key */
    proxy_sha256_hex("o /good", good);
    proxy_sha256_hex("o /short", shrt);
    proxy_sha256_hex("o /gone", gone);
    snprintf(db_path, sizeof(db_path), "%s/relengd.db", dir);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    char sql[2000];
    snprintf(sql, sizeof(sql),
             "INSERT INTO proxy_objects VALUES ('o /good','o','%s',5,'x',200,'',NULL,NULL,0,0,"
             "9000000000000,0,3);"
             "INSERT INTO proxy_objects VALUES ('o /short','o','%s',5,'x',200,'',NULL,NULL,0,0,"
             "9000000000000,0,0);"
             "INSERT INTO proxy_objects VALUES ('o /gone','o','%s',5,'x',200,'',NULL,NULL,0,0,"
             "9000000000000,0,0);"
             "INSERT INTO proxy_objects VALUES ('zz /x','zz','%s',5,'x',200,'',NULL,NULL,0,0,"
             "9000000000000,0,0);",
             good, shrt, gone, gone);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    snprintf(path, sizeof(path), "%s/proxy/cache/%.2s/%s", dir, good, good);
    assert_int_equal(write_text(path, "12345"), 0);
    snprintf(path, sizeof(path), "%s/proxy/cache/%.2s/%s", dir, shrt, shrt);
    assert_int_equal(write_text(path, "123"), 0);
    snprintf(path, sizeof(path), "%s/proxy/cache/ab/orphan", dir);
    assert_int_equal(write_text(path, "orphan"), 0);
    snprintf(path, sizeof(path), "%s/proxy/cache/tmp/1-1.part", dir);
    assert_int_equal(write_text(path, "partial"), 0);

    fh = fake_host_new_in("proxy", CONF, dir);
    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    st = fake_host_status(fh);
    assert_int_equal(json_integer_value(json_object_get(st, "objects")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "bytes")), 5);
    json_decref(st);
    assert_true(fake_host_logged(fh, RD_INFO,
                                 "removed 1 temporary files, 2 files without a row, "
                                 "3 rows without a file"));
    snprintf(path, sizeof(path), "%s/proxy/cache/tmp/1-1.part", dir);
    assert_int_not_equal(stat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/proxy/cache/ab/orphan", dir);
    assert_int_not_equal(stat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/proxy/cache/%.2s/%s", dir, good, good);
    assert_int_equal(stat(path, &sb), 0);
    struct fake_resp r = fake_host_call(fh, "GET", "/api/v1/proxy/objects", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "total")), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r.body, "objects"), 0), "hits")),
                     3);
    fake_resp_free(&r);
    /* purge removes the row (written by the queue) and the file */
    r = fake_host_call(fh, "POST", "/api/v1/proxy/purge", "{\"url\":\"/o/good\"}", "proxy:purge");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "purged")), 1);
    fake_resp_free(&r);
    assert_int_not_equal(stat(path, &sb), 0);
    fake_host_advance(fh, 3000); /* the flush timer writes the queue */
    fake_host_run_pending(fh);
    fake_host_free(fh);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM proxy_objects", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    fh = fake_host_new_in("proxy", CONF, dir); /* removes the directory at free */
    fake_host_free(fh);
    test_tmpdir_remove(dir);
}

static void test_fault_injection(void **state)
{
    static const int codes[] = {RD_EIO, RD_ENOMEM};

    (void)state;
    for (size_t c = 0; c < 2; c++) {
        unsigned n;
        for (n = 1; n < 200; n++) {
            struct fake_host *fh = fake_host_new("proxy", CONF);
            int rc;
            assert_non_null(fh);
            fake_host_fail_call(fh, n, codes[c]);
            rc = fake_host_load(fh, rd_module_entry());
            if (fake_host_calls(fh) < n) {
                assert_int_equal(rc, RD_OK);
                fake_host_free(fh);
                break;
            }
            if (rc == RD_OK)
                fail_msg("host call %u failed with %d, yet the load succeeded", n, codes[c]);
            assert_null(fake_host_mod(fh));
            fake_host_free(fh);
        }
        assert_true(n > 10);
        assert_true(n < 200);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test_setup_teardown(test_status_and_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api, setup, teardown),
        cmocka_unit_test(test_reconcile_at_start),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests_name("proxy module", tests, NULL, NULL);
}
