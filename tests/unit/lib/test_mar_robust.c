/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lib/test_mar_robust.c -- hostile and broken archives: a small
 * MAR truncated at every offset, each header field and count made wrong in
 * turn, overlapping and out-of-range entries, bad product information, bad
 * compressed streams, and a bounded random-mutation run over the fixtures.
 * Every case must end in a clear error (checked by message), never a crash
 * or an out-of-range read (run under ASan and valgrind).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/mar/mar.h"
#include "tests/unit/lib/libtest.h"

/* The base archive (stored entries, one 256-byte signature slot, PIB):
     0 MAR1 | 4 OffsetToIndex | 8 FileSize | 16 NumSignatures = 1
    20 alg 1 | 24 size 256 | 28..284 signature
   284 NumAdditionalSections = 1 | 288 PIB (104 bytes: size, id, data)
   392 "AAAA" (a) | 396 "BBBBBBBB" (bb) | 404 "CCCCCCCCCCCC" (ccc)
   416 IndexSize = 45 | 420 entries (a, bb, ccc) | 465 end */
enum {
    OFF_INDEX = 4,
    OFF_FILESIZE = 8,
    OFF_NSIG = 16,
    OFF_SIGALG = 20,
    OFF_SIGSIZE = 24,
    OFF_NSECT = 284,
    OFF_PIB = 288,
    OFF_PIBDATA = 296,
    OFF_CONTENT = 392,
    OFF_IDX = 416,
    OFF_E0 = 420, /* a: offset, size, flags, "a\0" */
    OFF_E1 = 434, /* bb */
    OFF_E2 = 449, /* ccc */
    BASE_LEN = 465,
};

static uint8_t base[BASE_LEN];

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    b[off] = (uint8_t)(v >> 24);
    b[off + 1] = (uint8_t)(v >> 16);
    b[off + 2] = (uint8_t)(v >> 8);
    b[off + 3] = (uint8_t)v;
}

static void put_filesize(uint8_t *b, size_t len)
{
    put32(b, OFF_FILESIZE, 0);
    put32(b, OFF_FILESIZE + 4, (uint32_t)len);
}

static int make_base(void **state)
{
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input in[] = {
        {.name = "a", .flags = 0644, .data = "AAAA", .len = 4},
        {.name = "bb", .flags = 0644, .data = "BBBBBBBB", .len = 8},
        {.name = "ccc", .flags = 0755, .data = "CCCCCCCCCCCC", .len = 12},
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    (void)state;

    mar_write_opts_init(&o);
    o.compression = MAR_COMP_NONE;
    o.has_product_info = true;
    o.channel = "chan";
    o.product_version = "1.0";
    o.n_signatures = 1;
    o.sig_algorithm[0] = 1;
    o.sig_size[0] = 256;
    if (mar_write_mem(&o, in, 3, &buf, &len, &err) != RD_OK || len != BASE_LEN)
        return -1;
    memcpy(base, buf, len);
    free(buf);
    return 0;
}

/* Opens b; expects failure with code and a message containing msg. */
static void expect_open_fails(const uint8_t *b, size_t len, int code, const char *msg,
                              const char *what)
{
    struct rd_error err = {0, ""};
    struct mar *m = NULL;
    int rc = mar_open_mem(b, len, &m, &err);

    if (rc == RD_OK) {
        mar_close(m);
        fail_msg("%s: opened", what);
    }
    assert_null(m);
    if (rc != code || (msg && !strstr(err.msg, msg)))
        fail_msg("%s: rc %d \"%s\", wanted %d \"%s\"", what, rc, err.msg, code, msg);
}

static void test_base_is_valid(void **state)
{
    struct rd_error err = {0, ""};
    struct mar *m = NULL;
    (void)state;

    assert_int_equal(mar_open_mem(base, BASE_LEN, &m, &err), RD_OK);
    assert_int_equal(mar_entry_get(m, 0)->offset, OFF_CONTENT);
    assert_int_equal(mar_entry_get(m, 2)->offset, 404);
    assert_int_equal(mar_index_offset(m), OFF_IDX);
    assert_string_equal(mar_channel(m), "chan");
    mar_close(m);
}

static void test_truncated_everywhere(void **state)
{
    struct mar_write_opts o;
    const struct mar_input in[] = {{.name = "x", .data = "xyz", .len = 3}};
    struct rd_error err = {0, ""};
    uint8_t *old = NULL;
    size_t old_len = 0;
    (void)state;

    for (size_t n = 0; n < BASE_LEN; n++) {
        char what[32];
        snprintf(what, sizeof(what), "truncated to %zu", n);
        expect_open_fails(base, n, RD_ECORRUPT, NULL, what);
    }
    /* The 2005 layout has no FileSize to catch truncation: the index does. */
    mar_write_opts_init(&o);
    o.old_format = true;
    o.compression = MAR_COMP_NONE;
    assert_int_equal(mar_write_mem(&o, in, 1, &old, &old_len, &err), RD_OK);
    for (size_t n = 0; n < old_len; n++)
        expect_open_fails(old, n, RD_ECORRUPT, NULL, "old format truncated");
    free(old);
}

struct field_case {
    size_t off;
    uint32_t value;
    const char *msg;
};

static void test_bad_fields(void **state)
{
    static const struct field_case cases[] = {
        {0, 0x4d415232, "no MAR1 magic"},
        {OFF_INDEX, 4, "points into the header"},
        {OFF_INDEX, BASE_LEN, "past the end"},
        {OFF_INDEX, BASE_LEN - 3, "past the end"},
        {OFF_INDEX, 0xffffffffu, "past the end"},
        {OFF_INDEX, 400, "runs past the end"},
        {OFF_IDX, 46, "runs past the end"},
        {OFF_IDX, 0xfffffff0u, "runs past the end"},
        {OFF_IDX, 44, "after the index"},
        {OFF_FILESIZE + 4, BASE_LEN + 1, "header says the file is 466 bytes"},
        {OFF_FILESIZE, 1, "header says"},
        {OFF_NSIG, 9, "9 signatures, the limit is 8"},
        {OFF_NSIG, 0xffffffffu, "the limit is 8"},
        {OFF_NSIG, 2, "overlaps the signature block"},
        {OFF_SIGSIZE, 2049, "2049 bytes, the limit is 2048"},
        {OFF_SIGSIZE, 0xffffffffu, "the limit is 2048"},
        {OFF_SIGSIZE, 2000, "runs into the index"},
        {OFF_SIGSIZE, 300, "sections end at 332 but the content starts at 392"},
        {OFF_NSECT, 2, "header runs into the content"},
        {OFF_NSECT, 0xffffffffu, "header runs into the content"},
        {OFF_PIB, 7, "less than its header"},
        {OFF_PIB, 0, "less than its header"},
        {OFF_PIB, 105, "runs into the content"},
        {OFF_PIB, 0xffffffffu, "runs into the content"},
        /* entries */
        {OFF_E1, 394, "overlap"},         /* bb starts inside a */
        {OFF_E1, OFF_CONTENT, "overlap"}, /* same offset as a */
        {OFF_E2, 398, "overlap"},         /* ccc inside bb */
        {OFF_E2 + 4, 13, "outside the content area"},
        {OFF_E2 + 4, 0xffffffffu, "outside the content area"},
        {OFF_E1, 0xfffffff8u, "outside the content area"},
        {OFF_E0, 100, "overlaps the signature block"},
        {OFF_E0, 290, "runs into the content"},
        {OFF_E2, OFF_IDX, "outside the content area"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[BASE_LEN];
        char what[64];
        memcpy(b, base, BASE_LEN);
        put32(b, cases[i].off, cases[i].value);
        snprintf(what, sizeof(what), "case %zu (offset %zu = %u)", i, cases[i].off, cases[i].value);
        expect_open_fails(b, BASE_LEN, RD_ECORRUPT, cases[i].msg, what);
    }
}

static void test_bad_index_entries(void **state)
{
    uint8_t b[BASE_LEN + 8];
    (void)state;

    /* Last name without its NUL. */
    memcpy(b, base, BASE_LEN);
    b[BASE_LEN - 1] = 'x';
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "not NUL-terminated", "unterminated");
    /* An empty name. */
    memcpy(b, base, BASE_LEN);
    b[OFF_E0 + 12] = '\0';
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "empty name", "empty name");
    /* IndexSize counts 5 more bytes than the entries: a truncated entry. */
    memcpy(b, base, BASE_LEN);
    memset(b + BASE_LEN, 0, 5);
    put32(b, OFF_IDX, 45 + 5);
    put_filesize(b, BASE_LEN + 5);
    expect_open_fails(b, BASE_LEN + 5, RD_ECORRUPT, "is truncated", "short entry");
    /* IndexSize counting entries, not bytes (build-mar's old bug). */
    memcpy(b, base, BASE_LEN);
    put32(b, OFF_IDX, 3);
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, NULL, "count as size");
    /* A byte after the index. */
    memcpy(b, base, BASE_LEN);
    b[BASE_LEN] = 0;
    put_filesize(b, BASE_LEN + 1);
    expect_open_fails(b, BASE_LEN + 1, RD_ECORRUPT, "1 unexpected bytes after the index",
                      "trailing byte");
    /* Far too large: refused before anything is read. */
    expect_open_fails(b, (size_t)MAR_MAX_FILE_SIZE + 1, RD_ETOOBIG, "at most", "too large");
}

static void test_bad_product_info(void **state)
{
    uint8_t b[BASE_LEN];
    (void)state;

    memcpy(b, base, BASE_LEN);
    memset(b + OFF_PIBDATA, 'x', 96);
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "channel not NUL-terminated", "channel");
    memcpy(b, base, BASE_LEN);
    memset(b + OFF_PIBDATA, 'x', 64);
    b[OFF_PIBDATA + 64] = 0;
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "channel of 64 bytes, the limit is 63",
                      "channel 64");
    memcpy(b, base, BASE_LEN);
    memset(b + OFF_PIBDATA, 0, 96);
    b[OFF_PIBDATA] = 'c';
    memset(b + OFF_PIBDATA + 2, 'v', 32);
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "version of 32 bytes, the limit is 31",
                      "version 32");
    memset(b + OFF_PIBDATA + 2, 'v', 94);
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "version not NUL-terminated", "version");
    /* 97 bytes of data: make room by starting entry a one byte later. */
    memcpy(b, base, BASE_LEN);
    put32(b, OFF_PIB, 105);
    put32(b, OFF_E0, OFF_CONTENT + 1);
    put32(b, OFF_E0 + 4, 3);
    expect_open_fails(b, BASE_LEN, RD_ECORRUPT, "holds 97 bytes, the limit is 96", "PIB 97");
    /* Limits themselves are fine: 63 and 31. */
    {
        struct rd_error err = {0, ""};
        struct mar *m = NULL;
        memcpy(b, base, BASE_LEN);
        memset(b + OFF_PIBDATA, 'x', 63);
        b[OFF_PIBDATA + 63] = 0;
        memset(b + OFF_PIBDATA + 64, 'v', 31);
        b[OFF_PIBDATA + 95] = 0;
        assert_int_equal(mar_open_mem(b, BASE_LEN, &m, &err), RD_OK);
        assert_int_equal(strlen(mar_channel(m)), 63);
        assert_int_equal(strlen(mar_product_version(m)), 31);
        mar_close(m);
    }
}

/* Empty entries occupy nothing and may share an offset (libmar agrees). */
static void test_empty_entries_may_touch(void **state)
{
    struct rd_error err = {0, ""};
    uint8_t b[BASE_LEN];
    struct mar *m = NULL;
    (void)state;

    memcpy(b, base, BASE_LEN);
    put32(b, OFF_E1, 394);
    put32(b, OFF_E1 + 4, 0);
    assert_int_equal(mar_open_mem(b, BASE_LEN, &m, &err), RD_OK);
    mar_close(m);
}

static struct mar *with_stream(const void *data, size_t len)
{
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input in[] = {{.name = "s", .data = data, .len = len, .is_compressed = true}};
    uint8_t *buf = NULL;
    size_t blen = 0;
    struct mar *m = NULL;

    mar_write_opts_init(&o);
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &blen, &err), RD_OK);
    assert_int_equal(mar_open_mem(buf, blen, &m, &err), RD_OK);
    free(buf);
    return m;
}

static void expect_extract_fails(const void *data, size_t len, int code, const char *msg)
{
    struct rd_error err = {0, ""};
    struct mar *m = with_stream(data, len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = mar_extract_mem(m, mar_entry_get(m, 0), 0, &out, &out_len, &err);

    if (rc != code || !strstr(err.msg, msg))
        fail_msg("rc %d \"%s\", wanted %d \"%s\"", rc, err.msg, code, msg);
    assert_null(out);
    mar_close(m);
}

static void test_bad_streams(void **state)
{
    static const char text[] = "some text that compresses, some text that compresses";
    struct rd_error err = {0, ""};
    uint8_t *xz = NULL, *bz = NULL, *buf;
    size_t xzlen = 0, bzlen = 0;
    (void)state;

    assert_int_equal(mar_compress(MAR_COMP_XZ, 6, false, text, sizeof(text), &xz, &xzlen, &err),
                     RD_OK);
    assert_int_equal(mar_compress(MAR_COMP_BZ2, 0, false, text, sizeof(text), &bz, &bzlen, &err),
                     RD_OK);
    expect_extract_fails(xz, xzlen - 1, RD_ECORRUPT, "xz");
    expect_extract_fails(xz, 12, RD_ECORRUPT, "xz");
    expect_extract_fails(bz, bzlen - 1, RD_ECORRUPT, "bzip2");
    expect_extract_fails(bz, 4, RD_ECORRUPT, "bzip2");
    buf = malloc(xzlen + 4);
    memcpy(buf, xz, xzlen);
    memcpy(buf + xzlen, "junk", 4);
    expect_extract_fails(buf, xzlen + 4, RD_ECORRUPT, "4 bytes after the end of the stream");
    free(buf);
    buf = malloc(bzlen + 4);
    memcpy(buf, bz, bzlen);
    memcpy(buf + bzlen, "junk", 4);
    expect_extract_fails(buf, bzlen + 4, RD_ECORRUPT, "4 bytes after the end of the stream");
    free(buf);
    xz[xzlen / 2] ^= 0x55;
    expect_extract_fails(xz, xzlen, RD_ECORRUPT, "xz");
    bz[bzlen / 2] ^= 0x55;
    expect_extract_fails(bz, bzlen, RD_ECORRUPT, "bzip2");
    free(xz);
    free(bz);
}

/* A bounded deterministic mutation run: whatever opens must list, extract
   (capped) and digest without a fault. */
static void mutate_run(const uint8_t *orig, size_t len, uint64_t seed, int rounds)
{
    uint8_t *b = malloc(len);

    for (int r = 0; r < rounds; r++) {
        struct rd_error err = {0, ""};
        struct mar *m = NULL;
        int flips = 1 + (int)(lt_rand(&seed) % 4);
        memcpy(b, orig, len);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(lt_rand(&seed) % len);
            if (lt_rand(&seed) % 2 && at + 4 <= len)
                put32(b, at, (uint32_t)lt_rand(&seed) % (uint32_t)(len * 2));
            else
                b[at] = (uint8_t)lt_rand(&seed);
        }
        if (mar_open_mem(b, len, &m, &err) != RD_OK) {
            assert_true(err.msg[0] != '\0');
            continue;
        }
        for (size_t i = 0; i < mar_entry_count(m); i++) {
            uint8_t *out = NULL;
            size_t out_len = 0;
            uint8_t d[48];
            size_t dl;
            if (mar_extract_mem(m, mar_entry_get(m, i), 1 << 20, &out, &out_len, &err) == RD_OK)
                free(out);
            (void)mar_name_check(mar_entry_get(m, i)->name, &err);
            (void)mar_signed_digest(m, 2, d, &dl, &err);
        }
        mar_close(m);
    }
    free(b);
}

static void test_mutations(void **state)
{
    const char *const files[] = {FIXTURE("build-mar_test-bz2.mar"),
                                 FIXTURE("build-mar_test-xz.mar")};
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *b = lt_slurp(files[i], &len);
        assert_non_null(b);
        mutate_run(b, len, 1234 + i, 1500);
        free(b);
    }
    mutate_run(base, BASE_LEN, 99, 1500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_is_valid),    cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bad_fields),       cmocka_unit_test(test_bad_index_entries),
        cmocka_unit_test(test_bad_product_info), cmocka_unit_test(test_empty_entries_may_touch),
        cmocka_unit_test(test_bad_streams),      cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, make_base, NULL);
}
