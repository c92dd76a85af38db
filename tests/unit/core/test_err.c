/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_err.c -- core/err.c: every enum rd_err maps to its
 * HTTP status, JSON code and sentence; unknown codes fall back to 500 /
 * internal_error; rd_error_set fills the struct and returns the code.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"

struct err_case {
    int code;
    int status;
    const char *id;
};

static const struct err_case cases[] = {
    {RD_OK, 200, "ok"},
    {RD_ENOMEM, 500, "out_of_memory"},
    {RD_EINVAL, 400, "bad_request"},
    {RD_ENOTFOUND, 404, "not_found"},
    {RD_ECONFLICT, 409, "conflict"},
    {RD_ETOOBIG, 413, "too_large"},
    /* Corrupt input (an archive that fails its own checks) is the client's
       problem, so a 4xx as DESIGN.md asks for bad input. */
    {RD_ECORRUPT, 422, "corrupt"},
    {RD_EIO, 500, "io_error"},
    {RD_ETIMEDOUT, 504, "timeout"},
    {RD_EUNAVAIL, 503, "unavailable"},
    {RD_EPERM, 403, "forbidden"},
    {RD_EAUTH, 401, "unauthorized"},
};

static bool is_snake_case(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    return true;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct err_case *c = &cases[i];
        const char *text = rd_strerror(c->code);

        assert_int_equal(rd_err_http_status(c->code), c->status);
        assert_string_equal(rd_err_code(c->code), c->id);
        assert_true(is_snake_case(rd_err_code(c->code)));
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown error");
        /* sentences are distinct */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, rd_strerror(cases[j].code));
    }
}

static void test_every_enum_member_is_known(void **state)
{
    (void)state;
    /* RD_EAUTH is the last member: every code between it and RD_OK is mapped. */
    for (int code = RD_EAUTH; code <= RD_OK; code++)
        assert_string_not_equal(rd_err_code(code), "internal_error");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    static const int unknown[] = {1, 42, -12, -100, -2147483647};

    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(rd_err_http_status(unknown[i]), 500);
        assert_string_equal(rd_err_code(unknown[i]), "internal_error");
        assert_string_equal(rd_strerror(unknown[i]), "unknown error");
    }
}

static void test_error_set(void **state)
{
    struct rd_error err = {0};
    char longer[400];

    (void)state;
    assert_int_equal(rd_error_set(&err, RD_ENOTFOUND, "no task %d", 7), RD_ENOTFOUND);
    assert_int_equal(err.code, RD_ENOTFOUND);
    assert_string_equal(err.msg, "no task 7");
    assert_int_equal(rd_error_set(NULL, RD_EINVAL, "ignored"), RD_EINVAL);
    /* A long message is cut, still terminated. */
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(rd_error_set(&err, RD_ETOOBIG, "%s", longer), RD_ETOOBIG);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_enum_member_is_known),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_error_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
