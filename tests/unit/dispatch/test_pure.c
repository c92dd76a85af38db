/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/dispatch/test_pure.c -- the dispatch module's pure logic in
 * tables of cases: the placement policy and speed score (placement.c),
 * lease and expiry arithmetic (lease.c), the log chunk offset logic
 * (logchunk.c), and name validation (names.c).
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "modules/dispatch/lease.h"
#include "modules/dispatch/logchunk.h"
#include "modules/dispatch/names.h"
#include "modules/dispatch/placement.h"

#define T0 UINT64_C(1767225600000)

/* ------------------------------------------------------------ placement */

static void test_place_pick(void **state)
{
    const struct dispatch_place_conf on = {true, true, 0.2, 2000};
    const struct dispatch_place_conf no_warm = {false, true, 0.2, 2000};
    const struct dispatch_place_conf no_fast = {true, false, 0.2, 2000};
    const struct dispatch_place_conf no_hold = {true, true, 0.2, 0};
    struct dispatch_place_task task = {"build", "main", T0};
    struct {
        const char *what;
        const struct dispatch_place_conf *conf;
        uint64_t now;
        struct dispatch_place_worker w[3];
        size_t n, self, want;
    } cases[] = {
        {"alone: self", &on, T0, {{NULL, NULL, 1.0, 1}}, 1, 0, 0},
        {"nobody better: self", &on, T0, {{NULL, NULL, 1.0, 1}, {NULL, NULL, 1.0, 1}}, 2, 0, 0},
        {"other is warm", &on, T0, {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}}, 2, 0, 1},
        {"self warm beats warm other",
         &on,
         T0,
         {{"build", "main", 1.0, 1}, {"build", "main", 5.0, 1}},
         2,
         0,
         0},
        {"same label other branch is not warm",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {"build", "beta", 1.0, 1}},
         2,
         0,
         0},
        {"same branch other label is not warm",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {"test", "main", 1.0, 1}},
         2,
         0,
         0},
        {"warm but no free slot",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 0}},
         2,
         0,
         0},
        {"warm off", &no_warm, T0, {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}}, 2, 0, 0},
        {"first warm other wins",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}, {"build", "main", 1.0, 1}},
         3,
         0,
         1},
        {"faster beyond margin", &on, T0, {{NULL, NULL, 1.0, 1}, {NULL, NULL, 1.5, 1}}, 2, 0, 1},
        {"faster within margin: self",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {NULL, NULL, 1.1, 1}},
         2,
         0,
         0},
        {"fastest of several",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {NULL, NULL, 1.5, 1}, {NULL, NULL, 3.0, 1}},
         3,
         0,
         2},
        {"fast off", &no_fast, T0, {{NULL, NULL, 1.0, 1}, {NULL, NULL, 3.0, 1}}, 2, 0, 0},
        {"warm beats fast",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {NULL, NULL, 9.0, 1}, {"build", "main", 0.5, 1}},
         3,
         0,
         2},
        {"self at another index",
         &on,
         T0,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}, {NULL, NULL, 1.0, 1}},
         3,
         1,
         1},
        {"held long enough: self",
         &on,
         T0 + 2000,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}},
         2,
         0,
         0},
        {"just under hold_max: other",
         &on,
         T0 + 1999,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}},
         2,
         0,
         1},
        {"hold off: always self",
         &no_hold,
         T0,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1.0, 1}},
         2,
         0,
         0},
        {"clock behind pending time",
         &on,
         T0 - 5,
         {{NULL, NULL, 1.0, 1}, {"build", "main", 1, 1}},
         2,
         0,
         1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = dispatch_place_pick(cases[i].conf, &task, cases[i].now, cases[i].w, cases[i].n,
                                         cases[i].self);
        if (got != cases[i].want)
            fail_msg("%s: picked %zu, want %zu", cases[i].what, got, cases[i].want);
    }
}

static void test_speed_update(void **state)
{
    struct {
        double old;
        uint64_t n, label_n, duration;
        double mean, alpha, want;
    } cases[] = {
        {1.0, 0, 0, 1000, 0, 0.2, 1.0},     /* no baseline: unchanged */
        {1.0, 0, 5, 0, 1000, 0.2, 1.0},     /* zero duration: unchanged */
        {1.0, 0, 5, 500, 1000, 0.2, 2.0},   /* first sample: the ratio itself */
        {2.0, 3, 5, 1000, 1000, 0.5, 1.5},  /* average of 2 and 1 */
        {1.0, 1, 5, 1, 1000000, 0.2, 2.8},  /* ratio clamped to 10: 0.8 + 2 */
        {1.0, 1, 5, 1000000, 1, 0.2, 0.82}, /* ratio clamped to 0.1: 0.8 + 0.02 */
        {NAN, 4, 5, 1000, 1000, 0.2, 1.0},  /* a broken old score restarts at 1 */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got = dispatch_speed_update(cases[i].old, cases[i].n, cases[i].mean,
                                           cases[i].label_n, cases[i].duration, cases[i].alpha);
        if (fabs(got - cases[i].want) > 1e-9)
            fail_msg("case %zu: %f, want %f", i, got, cases[i].want);
    }
    assert_true(fabs(dispatch_mean_update(0, 0, 10) - 10) < 1e-9);
    assert_true(fabs(dispatch_mean_update(10, 1, 20) - 15) < 1e-9);
    assert_true(fabs(dispatch_mean_update(15, 2, 30) - 20) < 1e-9);
}

static void test_percentile(void **state)
{
    uint64_t v[100];

    (void)state;
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)i + 1;
    assert_int_equal(dispatch_percentile(v, 0, 50), 0);
    assert_int_equal(dispatch_percentile(v, 1, 99), 1);
    assert_int_equal(dispatch_percentile(v, 100, 50), 50);
    assert_int_equal(dispatch_percentile(v, 100, 99), 99);
    assert_int_equal(dispatch_percentile(v, 100, 100), 100);
    assert_int_equal(dispatch_percentile(v, 100, 0), 1);
    assert_int_equal(dispatch_percentile(v, 3, 50), 2);
}

/* ---------------------------------------------------------------- lease */

static void test_lease_until(void **state)
{
    (void)state;
    assert_int_equal(dispatch_lease_until(T0, 300000, 0), T0 + 300000);
    /* never past the deadline */
    assert_int_equal(dispatch_lease_until(T0, 300000, T0 + 1000), T0 + 1000);
    assert_int_equal(dispatch_lease_until(T0, 300000, T0 + 300000), T0 + 300000);
    assert_int_equal(dispatch_lease_until(T0, 300000, T0 + 400000), T0 + 300000);
    /* saturates instead of wrapping */
    assert_true(dispatch_lease_until(UINT64_MAX - 5, 100, 0) == UINT64_MAX);
}

static void test_expiry(void **state)
{
    struct {
        uint64_t now;
        int claimed;
        uint64_t taken, deadline;
        const char *want;
    } cases[] = {
        {T0, 1, T0 + 1, 0, NULL},
        {T0, 1, T0, 0, "claim-expired"},
        {T0 + 5, 1, T0, 0, "claim-expired"},
        {T0, 1, T0 + 100, T0, "deadline-exceeded"},
        {T0, 1, T0, T0, "deadline-exceeded"}, /* both: the deadline wins */
        {T0, 0, 0, 0, NULL},                  /* pending, no deadline */
        {T0, 0, 0, T0 + 1, NULL},
        {T0, 0, 0, T0, "deadline-exceeded"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = dispatch_expiry_reason(cases[i].now, cases[i].claimed, cases[i].taken,
                                                 cases[i].deadline);
        if (!cases[i].want ? got != NULL : !got || strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: %s, want %s", i, got ? got : "NULL",
                     cases[i].want ? cases[i].want : "NULL");
    }
    assert_int_equal(dispatch_run_due(T0 + 10, 0), T0 + 10);
    assert_int_equal(dispatch_run_due(0, T0 + 3), T0 + 3);
    assert_int_equal(dispatch_run_due(T0 + 10, T0 + 3), T0 + 3);
    assert_int_equal(dispatch_run_due(T0 + 1, T0 + 3), T0 + 1);
    assert_int_equal(dispatch_delay_until(T0, T0 + 250), 250);
    assert_int_equal(dispatch_delay_until(T0 + 250, T0), 0);
    assert_int_equal(dispatch_wait_ms(20, 20000), 20000);
    assert_int_equal(dispatch_wait_ms(30, 20000), 20000);
    assert_int_equal(dispatch_wait_ms(0.25, 20000), 250);
    assert_int_equal(dispatch_wait_ms(-1, 20000), 0);
    assert_int_equal(dispatch_wait_ms(NAN, 20000), 0);
    assert_int_equal(dispatch_wait_ms(5, 0), 0);
}

/* ------------------------------------------------------------ log chunks */

static void test_chunk_plan(void **state)
{
    const uint64_t cap = 100;
    struct {
        const char *what;
        uint64_t have, offset, len;
        enum dispatch_chunk_verdict v;
        uint64_t skip, write, size;
    } cases[] = {
        {"first chunk", 0, 0, 10, DISPATCH_CHUNK_WRITE, 0, 10, 10},
        {"next chunk", 10, 10, 5, DISPATCH_CHUNK_WRITE, 0, 5, 15},
        {"exact repeat", 15, 10, 5, DISPATCH_CHUNK_WRITE, 0, 0, 15},
        {"repeat of an older chunk", 15, 0, 10, DISPATCH_CHUNK_WRITE, 0, 0, 15},
        {"overlap: only the new tail", 15, 10, 10, DISPATCH_CHUNK_WRITE, 5, 5, 20},
        {"empty chunk at the end", 15, 15, 0, DISPATCH_CHUNK_WRITE, 0, 0, 15},
        {"gap", 15, 16, 5, DISPATCH_CHUNK_GAP, 0, 0, 15},
        {"gap far ahead", 0, 1000, 5, DISPATCH_CHUNK_GAP, 0, 0, 0},
        {"reaches the cap exactly", 90, 90, 10, DISPATCH_CHUNK_WRITE, 0, 10, 100},
        {"passes the cap: what fits", 95, 95, 10, DISPATCH_CHUNK_TOOBIG, 0, 5, 100},
        {"at the cap already", 100, 100, 1, DISPATCH_CHUNK_TOOBIG, 0, 0, 100},
        {"overlap passing the cap", 95, 90, 20, DISPATCH_CHUNK_TOOBIG, 5, 5, 100},
        {"huge offset+len does not wrap", 10, 5, UINT64_MAX, DISPATCH_CHUNK_TOOBIG, 5, 90, 100},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dispatch_chunk_plan p =
            dispatch_chunk_plan(cases[i].have, cases[i].offset, cases[i].len, cap);
        if (p.verdict != cases[i].v || p.skip != cases[i].skip || p.write_len != cases[i].write ||
            p.new_size != cases[i].size)
            fail_msg("%s: verdict %d skip %llu write %llu size %llu", cases[i].what, p.verdict,
                     (unsigned long long)p.skip, (unsigned long long)p.write_len,
                     (unsigned long long)p.new_size);
    }
}

/* ----------------------------------------------------------------- names */

static void test_artifact_names(void **state)
{
    static const char *const good[] = {"a", "build.tar.gz", "log_1-2.txt", "A9", "x..y", NULL};
    static const char *const bad[] = {"",     ".",       "..",          "../x", "a/b",
                                      "a\\b", ".hidden", ".upload-123", "a b",  "a\nb",
                                      "é",    "a%2Fb",   NULL};
    char long_name[200];

    (void)state;
    for (size_t i = 0; good[i]; i++)
        if (!dispatch_artifact_name_valid(good[i]))
            fail_msg("'%s' should be valid", good[i]);
    for (size_t i = 0; bad[i]; i++)
        if (dispatch_artifact_name_valid(bad[i]))
            fail_msg("'%s' should be refused", bad[i]);
    assert_false(dispatch_artifact_name_valid(NULL));
    memset(long_name, 'a', sizeof(long_name));
    long_name[128] = '\0';
    assert_true(dispatch_artifact_name_valid(long_name));
    long_name[128] = 'a';
    long_name[129] = '\0';
    assert_false(dispatch_artifact_name_valid(long_name));
}

static void test_ids(void **state)
{
    char hex[65], sha[70];
    uint32_t run;
    uint64_t u;

    (void)state;
    assert_true(dispatch_id_valid("task-1.a_b"));
    assert_false(dispatch_id_valid("task:1"));
    assert_false(dispatch_id_valid(""));
    assert_false(dispatch_id_valid("a/b"));
    assert_true(dispatch_worker_id_valid("external:box-1"));
    assert_false(dispatch_worker_id_valid("w 1"));
    memset(sha, 'A', 64);
    sha[64] = '\0';
    assert_true(dispatch_sha256_hex_parse(sha, hex));
    assert_int_equal(hex[0], 'a');
    sha[63] = 'g';
    assert_false(dispatch_sha256_hex_parse(sha, hex));
    sha[63] = 'a';
    sha[64] = 'a';
    sha[65] = '\0';
    assert_false(dispatch_sha256_hex_parse(sha, hex));
    assert_false(dispatch_sha256_hex_parse("abc", hex));
    assert_true(dispatch_run_id_parse("0", &run) && run == 0);
    assert_true(dispatch_run_id_parse("4294967295", &run) && run == UINT32_MAX);
    assert_false(dispatch_run_id_parse("4294967296", &run));
    assert_false(dispatch_run_id_parse("01", &run));
    assert_false(dispatch_run_id_parse("-1", &run));
    assert_false(dispatch_run_id_parse("1x", &run));
    assert_false(dispatch_run_id_parse(NULL, &run));
    assert_true(dispatch_u64_parse("9223372036854775807", &u));
    assert_false(dispatch_u64_parse("9223372036854775808", &u));
    assert_false(dispatch_u64_parse("", &u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_pick),     cmocka_unit_test(test_speed_update),
        cmocka_unit_test(test_percentile),     cmocka_unit_test(test_lease_until),
        cmocka_unit_test(test_expiry),         cmocka_unit_test(test_chunk_plan),
        cmocka_unit_test(test_artifact_names), cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
