/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_loader.c -- the module loader against the test
 * modules built in tests/modules/: a good one, a wrong ABI, no descriptor,
 * another build, a missing file, a bad name, and module_dir lists.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/module_loader.h"

#define TEST_MODULES TOP_BUILDDIR "/tests/modules/.libs"

/* Opens name from dirs into m; the caller checks and closes. */
static int open_module(struct host_module *m, const char *name, const char *dirs,
                       struct rd_error *err)
{
    memset(m, 0, sizeof(*m));
    memset(err, 0, sizeof(*err));
    m->name = (char *)name;
    return loader_open(m, dirs, err);
}

static void close_module(struct host_module *m)
{
    loader_close(m);
    json_decref(m->openapi);
    free(m->so_path);
}

static void test_good_module_loads(void **state)
{
    struct host_module m;
    struct rd_error err;
    (void)state;

    assert_int_equal(open_module(&m, "hostcheck", TEST_MODULES, &err), RD_OK);
    assert_non_null(m.dl);
    assert_non_null(m.desc);
    assert_string_equal(m.desc->name, "hostcheck");
    assert_int_equal(m.desc->abi, RD_MODULE_ABI);
    assert_string_equal(m.desc->build, RD_BUILD);
    assert_non_null(strstr(m.so_path, "hostcheck.so"));
    close_module(&m);
    assert_null(m.dl);
}

static void test_module_dir_is_a_list(void **state)
{
    struct host_module m;
    struct rd_error err;
    (void)state;

    assert_int_equal(open_module(&m, "hostcheck", "/nonexistent:" TEST_MODULES, &err), RD_OK);
    close_module(&m);
    assert_int_equal(open_module(&m, "hostcheck", "/nonexistent", &err), RD_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'hostcheck'"));
    assert_non_null(strstr(err.msg, "/nonexistent"));
    close_module(&m);
}

static void test_refusals_name_module_and_reason(void **state)
{
    static const struct {
        const char *name, *says;
    } cases[] = {
        {"badabi", "ABI"},        {"nodesc", "rd_module_entry"}, {"badbuild", "0.0.0-other"},
        {"missing", "not found"}, {"../etc", "not valid"},       {"Upper", "not valid"},
        {"", "not valid"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct host_module m;
        struct rd_error err;
        int rc = open_module(&m, cases[i].name, TEST_MODULES, &err);

        assert_true(rc < 0);
        assert_null(m.dl);
        assert_non_null(strstr(err.msg, cases[i].says));
        if (cases[i].name[0])
            assert_non_null(strstr(err.msg, cases[i].name));
        close_module(&m);
    }
}

static void test_valid_names(void **state)
{
    (void)state;
    assert_true(loader_valid_name("proxy"));
    assert_true(loader_valid_name("a_1"));
    assert_false(loader_valid_name("1a"));
    assert_false(loader_valid_name("a-b"));
    assert_false(loader_valid_name("a/b"));
    assert_false(loader_valid_name(NULL));
    assert_false(loader_valid_name("abcdefghijklmnopqrstuvwxyzabcdefg"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_module_loads),
        cmocka_unit_test(test_module_dir_is_a_list),
        cmocka_unit_test(test_refusals_name_module_and_reason),
        cmocka_unit_test(test_valid_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
