/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lib/test_mbsdiff.c -- lib/mbsdiff: the MBDIFF10 container
 * (header fields, exact size), a hand-made patch applied byte by byte,
 * round trips on edge cases (empty, identical, 1-byte, random) and on a
 * several-MiB executable-like pair with relocated addresses, the source
 * length and CRC checks, and corrupt patches; plus lib/hash's CRC and
 * digests.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hash/hash.h"
#include "lib/mbsdiff/mbsdiff.h"
#include "tests/unit/lib/libtest.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Diff, check the container, apply, compare; returns the patch length. */
static size_t round_trip(const uint8_t *old, size_t old_len, const uint8_t *nw, size_t new_len)
{
    struct rd_error err = {0, ""};
    struct mbsdiff_header h;
    uint8_t *patch = NULL, *out = NULL;
    size_t patch_len = 0, out_len = 0;

    if (mbsdiff_diff(old, old_len, nw, new_len, &patch, &patch_len, &err) != RD_OK)
        fail_msg("diff: %s", err.msg);
    assert_memory_equal(patch, "MBDIFF10", 8);
    assert_int_equal(mbsdiff_read_header(patch, patch_len, &h, &err), RD_OK);
    assert_int_equal(h.slen, old_len);
    assert_int_equal(be32(patch + 8), old_len);
    assert_int_equal(h.scrc32, hash_crc32_bzip2(old, old_len));
    assert_int_equal(h.dlen, new_len);
    assert_int_equal(h.cblen % 12, 0);
    assert_int_equal(patch_len, 32 + (size_t)h.cblen + h.difflen + h.extralen);
    assert_int_equal((size_t)h.difflen + h.extralen, new_len); /* every new byte once */
    if (mbsdiff_apply(old, old_len, patch, patch_len, &out, &out_len, &err) != RD_OK)
        fail_msg("apply: %s", err.msg);
    assert_non_null(out);
    assert_int_equal(out_len, new_len);
    if (new_len)
        assert_memory_equal(out, nw, new_len);
    free(out);
    free(patch);
    return patch_len;
}

static void test_crc32_bzip2(void **state)
{
    uint32_t c;
    (void)state;

    assert_int_equal(hash_crc32_bzip2("123456789", 9), 0xFC891918u);
    assert_int_equal(hash_crc32_bzip2("", 0), 0);
    assert_int_equal(hash_crc32_bzip2("a", 1), 0x19939B6Bu);
    c = hash_crc32_bzip2_update(0xFFFFFFFFu, "1234", 4);
    c = hash_crc32_bzip2_update(c, "56789", 5);
    assert_int_equal(~c, 0xFC891918u);
    /* Four bytes at a time agrees with the plain bitwise definition, at
       every length and alignment. */
    {
        uint8_t buf[300];
        uint64_t s = 1;
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)lt_rand(&s);
        for (size_t off = 0; off < 4; off++) {
            for (size_t len = 0; len + off <= sizeof(buf); len += 37) {
                uint32_t want = 0xFFFFFFFFu;
                for (size_t i = 0; i < len; i++) {
                    want ^= (uint32_t)buf[off + i] << 24;
                    for (int k = 0; k < 8; k++)
                        want = (want & 0x80000000u) ? (want << 1) ^ 0x04C11DB7u : want << 1;
                }
                assert_int_equal(hash_crc32_bzip2(buf + off, len), ~want);
            }
        }
    }
}

static void test_digests(void **state)
{
    struct rd_error err = {0, ""};
    uint8_t d[HASH_MAX_LEN];
    char hex[2 * HASH_MAX_LEN + 1];
    int fd;
    (void)state;

    assert_int_equal(hash_buf(HASH_SHA256, "abc", 3, d, &err), RD_OK);
    hash_hex(d, hash_len(HASH_SHA256), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(hash_buf(HASH_SHA384, "", 0, d, &err), RD_OK);
    hash_hex(d, 8, hex);
    assert_string_equal(hex, "38b060a751ac9638");
    assert_int_equal(hash_len(HASH_SHA1), 20);
    assert_int_equal(hash_len(HASH_SHA512), 64);
    fd = open(FIXTURE("build-mar_test-bz2.mar"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(hash_fd(HASH_SHA256, fd, d, &err), RD_OK);
    close(fd);
    hash_hex(d, 32, hex);
    assert_string_equal(hex, "fe4ea45f8455b33fb65ca445709281880e2c5063c90f1f60c0a62e8b666333ce");
    assert_int_equal(hash_fd(HASH_SHA256, -1, d, &err), RD_EIO);
}

/* A patch written by hand, applied as bspatch does: add diff bytes to old
   bytes, copy extra bytes, seek. */
static void test_apply_by_hand(void **state)
{
    static const uint8_t old[] = "abcdefgh";
    uint8_t p[32 + 24 + 5 + 3];
    struct rd_error err = {0, ""};
    uint8_t *out = NULL;
    size_t out_len = 0;
    (void)state;

    memcpy(p, "MBDIFF10", 8);
    put32(p + 8, 8);
    put32(p + 12, hash_crc32_bzip2(old, 8));
    put32(p + 16, 8);
    put32(p + 20, 24);
    put32(p + 24, 5);
    put32(p + 28, 3);
    /* triple 1: 3 diff bytes, 2 extra, seek +2; triple 2: 2 diff, 1 extra, seek -7 */
    put32(p + 32, 3);
    put32(p + 36, 2);
    put32(p + 40, 2);
    put32(p + 44, 2);
    put32(p + 48, 1);
    put32(p + 52, (uint32_t)-7);
    memcpy(p + 56, "\x00\x01\x00\x00\xff", 5); /* diff */
    memcpy(p + 61, "XYZ", 3);                  /* extra */
    assert_int_equal(mbsdiff_apply(old, 8, p, sizeof(p), &out, &out_len, &err), RD_OK);
    /* a+0 b+1 c+0 | XY | seek to 5: f+0 g-1 | Z | back to 0 */
    assert_int_equal(out_len, 8);
    assert_memory_equal(out, "accXYffZ", 8);
    free(out);
}

static void test_edge_cases(void **state)
{
    static const uint8_t one_a[] = "a", one_b[] = "b";
    static const uint8_t text[] = "the quick brown fox jumps over the lazy dog";
    (void)state;

    round_trip(NULL, 0, NULL, 0);
    round_trip(NULL, 0, text, sizeof(text));
    round_trip(text, sizeof(text), NULL, 0);
    round_trip(text, sizeof(text), text, sizeof(text));
    round_trip(one_a, 1, one_a, 1);
    round_trip(one_a, 1, one_b, 1);
    round_trip(one_a, 1, NULL, 0);
    round_trip(NULL, 0, one_b, 1);
    round_trip(one_a, 1, text, sizeof(text));
    round_trip(text, sizeof(text), one_b, 1);
    /* Identical inputs: one triple, no extra bytes, all-zero diff. */
    {
        struct rd_error err = {0, ""};
        struct mbsdiff_header h;
        uint8_t *patch = NULL;
        size_t len = 0;
        assert_int_equal(mbsdiff_diff(text, sizeof(text), text, sizeof(text), &patch, &len, &err),
                         RD_OK);
        assert_int_equal(mbsdiff_read_header(patch, len, &h, &err), RD_OK);
        assert_int_equal(h.extralen, 0);
        assert_int_equal(h.difflen, sizeof(text));
        for (size_t i = 0; i < h.difflen; i++)
            assert_int_equal(patch[32 + h.cblen + i], 0);
        free(patch);
    }
}

static void test_random_pairs(void **state)
{
    uint64_t s = 7;
    (void)state;

    for (int r = 0; r < 200; r++) {
        size_t old_len = (size_t)(lt_rand(&s) % 3000), new_len;
        uint8_t *old = malloc(old_len + 1), *nw;
        int alphabet = 1 + (int)(lt_rand(&s) % 255); /* small alphabets: many repeats */
        for (size_t i = 0; i < old_len; i++)
            old[i] = (uint8_t)(lt_rand(&s) % (uint64_t)alphabet);
        /* new: old with edits, or unrelated */
        new_len = old_len + (size_t)(lt_rand(&s) % 200);
        nw = malloc(new_len + 1);
        for (size_t i = 0; i < new_len; i++)
            nw[i] = i < old_len ? old[i] : (uint8_t)lt_rand(&s);
        for (int k = (int)(lt_rand(&s) % 20); k > 0 && new_len; k--)
            nw[lt_rand(&s) % new_len] = (uint8_t)lt_rand(&s);
        if (r % 10 == 0)
            for (size_t i = 0; i < new_len; i++)
                nw[i] = (uint8_t)lt_rand(&s);
        round_trip(old, old_len, nw, new_len);
        free(old);
        free(nw);
    }
}

/* An executable-like buffer: runs of "instructions" drawn from a small set
   with embedded 32-bit addresses, tables, strings and zero padding. */
static uint8_t *make_binary(size_t len, uint64_t seed)
{
    static const char *const words[] = {"malloc",  "free",     "mar_open",  "xz_decode",
                                        "relengd", "partials", "signature", "manifest"};
    uint8_t *b = malloc(len);
    size_t i = 0;

    while (i < len) {
        uint64_t kind = lt_rand(&seed) % 10;
        if (kind < 6) { /* call rel32 / mov imm32 */
            uint8_t op[] = {0xe8, 0x48, 0x8b, 0x89, 0xc7, 0x05, 0x0f};
            if (i < len)
                b[i++] = op[lt_rand(&seed) % sizeof(op)];
            uint32_t addr = 0x400000u + (uint32_t)(lt_rand(&seed) % 0x200000u);
            for (int k = 0; k < 4 && i < len; k++)
                b[i++] = (uint8_t)(addr >> (8 * k));
        } else if (kind < 8) { /* a string */
            const char *w = words[lt_rand(&seed) % 8];
            for (size_t k = 0; w[k] && i < len; k++)
                b[i++] = (uint8_t)w[k];
            if (i < len)
                b[i++] = 0;
        } else if (kind < 9) { /* padding */
            for (int k = (int)(lt_rand(&seed) % 32); k > 0 && i < len; k--)
                b[i++] = 0;
        } else {
            b[i++] = (uint8_t)lt_rand(&seed);
        }
    }
    return b;
}

/* new = old with code inserted near the start (every later address moves by
   the insertion's size) and a few functions changed. */
static void test_large_binary(void **state)
{
    const size_t old_len = 4u << 20, ins = 1000;
    uint8_t *old = make_binary(old_len, 11), *nw = malloc(old_len + ins);
    uint64_t s = 5;
    size_t patch_len;
    (void)state;

    memcpy(nw, old, 4096);
    memset(nw + 4096, 0x90, ins);
    memcpy(nw + 4096 + ins, old + 4096, old_len - 4096);
    for (size_t i = 4096 + ins; i + 5 <= old_len + ins; i++) { /* relocate addresses */
        if (nw[i] == 0xe8 && lt_rand(&s) % 4 == 0) {
            uint32_t a = (uint32_t)nw[i + 1] | (uint32_t)nw[i + 2] << 8 |
                         (uint32_t)nw[i + 3] << 16 | (uint32_t)nw[i + 4] << 24;
            a += (uint32_t)ins;
            for (int k = 0; k < 4; k++)
                nw[i + 1 + (size_t)k] = (uint8_t)(a >> (8 * k));
            i += 4;
        }
    }
    for (int k = 0; k < 50; k++) { /* changed functions */
        size_t at = (size_t)(lt_rand(&s) % (old_len - 300));
        for (int j = 0; j < 200; j++)
            nw[at + (size_t)j] = (uint8_t)lt_rand(&s);
    }
    patch_len = round_trip(old, old_len, nw, old_len + ins);
    /* The differ found the shared code: extra bytes are few. */
    {
        struct rd_error err = {0, ""};
        struct mbsdiff_header h;
        uint8_t *patch = NULL;
        size_t len = 0;
        assert_int_equal(mbsdiff_diff(old, old_len, nw, old_len + ins, &patch, &len, &err), RD_OK);
        assert_int_equal(len, patch_len);
        assert_int_equal(mbsdiff_read_header(patch, len, &h, &err), RD_OK);
        assert_true(h.extralen < 50 * 200 + ins + 4096);
        free(patch);
    }
    free(old);
    free(nw);
}

/* Periodic data: the match for "baba..." in "abab..." is the whole file
   shifted by one. bsdiff's search calls a suffix that is a prefix of the
   pattern "equal", finds 1-byte matches and copies half of new into the
   extra block (and scans quadratically); ours must find the long match. */
static void test_periodic(void **state)
{
    const size_t n = 200000;
    uint8_t *old = malloc(2 * n), *nw = malloc(2 * n + 1), *patch = NULL;
    struct rd_error err = {0, ""};
    struct mbsdiff_header h;
    size_t len = 0;
    (void)state;

    for (size_t i = 0; i < 2 * n; i++) {
        old[i] = (uint8_t) "ab"[i % 2];
        nw[i] = (uint8_t) "ba"[i % 2];
    }
    nw[2 * n] = 'x';
    round_trip(old, 2 * n, nw, 2 * n + 1);
    assert_int_equal(mbsdiff_diff(old, 2 * n, nw, 2 * n + 1, &patch, &len, &err), RD_OK);
    assert_int_equal(mbsdiff_read_header(patch, len, &h, &err), RD_OK);
    assert_true(h.extralen < 16);
    assert_true(h.cblen <= 3 * 12);
    free(patch);
    /* Zeros with a marker every 64 KiB against plain zeros, both ways. */
    memset(old, 0, 2 * n);
    memset(nw, 0, 2 * n + 1);
    for (size_t i = 0; i < 2 * n; i += 65536)
        old[i] = 1;
    round_trip(old, 2 * n, nw, 2 * n + 1);
    round_trip(nw, 2 * n + 1, old, 2 * n);
    free(old);
    free(nw);
}

static uint8_t *small_patch(const uint8_t *old, size_t old_len, size_t *len)
{
    static const uint8_t nw[] = "hello brave new world, hello world";
    struct rd_error err = {0, ""};
    uint8_t *patch = NULL;

    assert_int_equal(mbsdiff_diff(old, old_len, nw, sizeof(nw), &patch, len, &err), RD_OK);
    return patch;
}

static void test_wrong_source(void **state)
{
    static const uint8_t old[] = "hello world, hello world";
    uint8_t other[sizeof(old)];
    struct rd_error err = {0, ""};
    size_t len = 0, out_len = 0;
    uint8_t *patch = small_patch(old, sizeof(old), &len), *out = NULL;
    (void)state;

    memcpy(other, old, sizeof(old));
    other[3] ^= 1;
    assert_int_equal(mbsdiff_apply(other, sizeof(old), patch, len, &out, &out_len, &err),
                     RD_ECONFLICT);
    assert_non_null(strstr(err.msg, "source CRC"));
    assert_null(out);
    assert_int_equal(mbsdiff_apply(old, sizeof(old) - 1, patch, len, &out, &out_len, &err),
                     RD_ECONFLICT);
    assert_non_null(strstr(err.msg, "source length"));
    assert_int_equal(mbsdiff_apply(old, sizeof(old), patch, len, &out, &out_len, &err), RD_OK);
    free(out);
    free(patch);
}

static void expect_corrupt(const uint8_t *old, size_t old_len, const uint8_t *p, size_t len,
                           const char *msg)
{
    struct rd_error err = {0, ""};
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = mbsdiff_apply(old, old_len, p, len, &out, &out_len, &err);

    if (rc != RD_ECORRUPT || !strstr(err.msg, msg))
        fail_msg("rc %d \"%s\", wanted \"%s\"", rc, err.msg, msg);
    assert_null(out);
}

static void test_corrupt_patches(void **state)
{
    static const uint8_t old[] = "hello world, hello world";
    size_t len = 0;
    uint8_t *patch = small_patch(old, sizeof(old), &len), *p = malloc(len + 16);
    struct mbsdiff_header h;
    struct rd_error err = {0, ""};
    uint64_t s = 3;
    (void)state;

    assert_int_equal(mbsdiff_read_header(patch, len, &h, &err), RD_OK);
    assert_true(h.cblen >= 12);
    for (size_t n = 0; n < len; n++) /* truncated anywhere */
        expect_corrupt(old, sizeof(old), patch, n, n < 32 ? "patch" : "header accounts");
    memcpy(p, patch, len);
    p[7] = '9';
    expect_corrupt(old, sizeof(old), p, len, "not an MBDIFF10 patch");
    memcpy(p, patch, len);
    put32(p + 20, h.cblen + 1);
    expect_corrupt(old, sizeof(old), p, len, "not whole triples");
    memcpy(p, patch, len);
    put32(p + 28, 0xffffffffu);
    expect_corrupt(old, sizeof(old), p, len, "header accounts");
    memcpy(p, patch, len);
    memset(p + len, 0, 1);
    expect_corrupt(old, sizeof(old), p, len + 1, "header accounts");
    /* Triples that overrun: diff bytes, extra bytes, a seek before 0. */
    memcpy(p, patch, len);
    put32(p + 32, h.difflen + 1);
    expect_corrupt(old, sizeof(old), p, len, "diff bytes overrun");
    memcpy(p, patch, len);
    put32(p + 36, h.extralen + 1);
    expect_corrupt(old, sizeof(old), p, len, "overrun");
    memcpy(p, patch, len);
    put32(p + 40, (uint32_t)-1000);
    expect_corrupt(old, sizeof(old), p, len, "leaves the source");
    memcpy(p, patch, len);
    put32(p + 40, 0x7fffffffu);
    expect_corrupt(old, sizeof(old), p, len, "leaves the source");
    /* A result shorter than dlen. */
    memcpy(p, patch, len);
    put32(p + 16, h.dlen + 1);
    expect_corrupt(old, sizeof(old), p, len, "produced");
    /* Random damage to the control block: an error or some output, never a
       fault (ASan/valgrind watch). */
    for (int r = 0; r < 2000; r++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        memcpy(p, patch, len);
        p[32 + lt_rand(&s) % h.cblen] = (uint8_t)lt_rand(&s);
        if (mbsdiff_apply(old, sizeof(old), p, len, &out, &out_len, &err) == RD_OK)
            assert_int_equal(out_len, h.dlen);
        free(out);
    }
    free(p);
    free(patch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_bzip2),     cmocka_unit_test(test_digests),
        cmocka_unit_test(test_apply_by_hand),   cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_pairs),    cmocka_unit_test(test_large_binary),
        cmocka_unit_test(test_periodic),        cmocka_unit_test(test_wrong_source),
        cmocka_unit_test(test_corrupt_patches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
