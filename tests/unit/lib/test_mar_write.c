/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lib/test_mar_write.c -- lib/mar's writer read back by its
 * reader: bz2, xz and stored entries, with and without product information,
 * with zeroed signature slots, the 2005 layout, files from disk; the
 * writer's refusals; extraction into a directory and what it refuses.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/mar/mar.h"
#include "tests/unit/lib/libtest.h"

static const char text_a[] = "add \"a.txt\"\n";
static uint8_t big[200000];

static void fill_big(void)
{
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof(big); i++) /* compressible but not trivial */
        big[i] = (uint8_t)("abcdefgh"[lt_rand(&s) % 8]);
}

static struct mar *write_and_open(const struct mar_write_opts *o, const struct mar_input *in,
                                  size_t n)
{
    struct rd_error err = {0, ""};
    uint8_t *buf = NULL;
    size_t len = 0;
    struct mar *m = NULL;

    if (mar_write_mem(o, in, n, &buf, &len, &err) != RD_OK)
        fail_msg("write: %s", err.msg);
    if (mar_open_mem(buf, len, &m, &err) != RD_OK)
        fail_msg("open: %s", err.msg);
    free(buf);
    return m;
}

static void check_content(const struct mar *m, const char *name, const void *data, size_t len)
{
    struct rd_error err = {0, ""};
    const struct mar_entry *e = mar_find(m, name);
    uint8_t *out = NULL;
    size_t out_len = 0;

    assert_non_null(e);
    if (mar_extract_mem(m, e, 0, &out, &out_len, &err) != RD_OK)
        fail_msg("extract %s: %s", name, err.msg);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, data, len);
    free(out);
}

static void round_trip(enum mar_compression c, bool pib, size_t n_sigs)
{
    struct mar_write_opts o;
    const struct mar_input in[] = {
        {.name = "a.txt", .flags = 0644, .data = text_a, .len = strlen(text_a)},
        {.name = "dir/sub/big.bin", .flags = 0755, .data = big, .len = sizeof(big)},
        {.name = "empty", .flags = 0600, .data = "", .len = 0},
    };
    struct mar *m;
    size_t len;

    mar_write_opts_init(&o);
    o.compression = c;
    o.has_product_info = pib;
    o.channel = "firefox-mozilla-release";
    o.product_version = "128.0.3";
    o.n_signatures = n_sigs;
    for (size_t i = 0; i < n_sigs; i++) {
        o.sig_algorithm[i] = MAR_SIG_RSA_PKCS1_SHA384;
        o.sig_size[i] = 512;
    }
    m = write_and_open(&o, in, 3);
    assert_true(mar_has_signature_block(m));
    assert_int_equal(mar_signature_count(m), n_sigs);
    for (size_t i = 0; i < n_sigs; i++) {
        const struct mar_signature *s = mar_signature_get(m, i);
        assert_int_equal(s->algorithm, 2);
        assert_int_equal(s->size, 512);
        for (size_t k = 0; k < 512; k++)
            assert_int_equal(s->bytes[k], 0);
    }
    assert_int_equal(mar_has_product_info(m), pib);
    if (pib) {
        assert_string_equal(mar_channel(m), "firefox-mozilla-release");
        assert_string_equal(mar_product_version(m), "128.0.3");
    } else {
        assert_null(mar_channel(m));
    }
    assert_int_equal(mar_entry_count(m), 3);
    assert_string_equal(mar_entry_get(m, 0)->name, "a.txt");
    assert_int_equal(mar_entry_get(m, 0)->flags, 0644);
    assert_string_equal(mar_entry_get(m, 1)->name, "dir/sub/big.bin");
    assert_int_equal(mar_entry_get(m, 1)->flags, 0755);
    assert_int_equal(mar_entry_get(m, 2)->flags, 0600);
    for (size_t i = 0; i < 3; i++)
        if (c != MAR_COMP_NONE)
            assert_int_equal(mar_entry_compression(m, mar_entry_get(m, i)), c);
    if (c != MAR_COMP_NONE) /* compressed, really */
        assert_true(mar_entry_get(m, 1)->size < sizeof(big) / 2);
    check_content(m, "a.txt", text_a, strlen(text_a));
    check_content(m, "dir/sub/big.bin", big, sizeof(big));
    check_content(m, "empty", "", 0);
    mar_bytes(m, &len);
    /* The layout libmar writes: content right after a 104-byte PIB. */
    if (pib)
        assert_int_equal(mar_entry_get(m, 0)->offset, 8 + 12 + n_sigs * (8 + 512) + 4 + 104);
    mar_close(m);
}

static void test_round_trip_xz(void **state)
{
    (void)state;
    round_trip(MAR_COMP_XZ, true, 0);
    round_trip(MAR_COMP_XZ, false, 0);
}

static void test_round_trip_bz2(void **state)
{
    (void)state;
    round_trip(MAR_COMP_BZ2, true, 0);
    round_trip(MAR_COMP_BZ2, false, 0);
}

static void test_round_trip_stored(void **state)
{
    (void)state;
    round_trip(MAR_COMP_NONE, true, 0);
}

static void test_round_trip_signature_slots(void **state)
{
    (void)state;
    round_trip(MAR_COMP_XZ, true, 1);
    round_trip(MAR_COMP_BZ2, true, 2);
    round_trip(MAR_COMP_XZ, false, 8);
}

/* The writer's xz is what Mozilla's packaging writes: CRC64 check; the BCJ
   variant decodes too. */
static void test_xz_options(void **state)
{
    struct rd_error err = {0, ""};
    uint8_t *c = NULL, *d = NULL;
    size_t clen = 0, dlen = 0;
    (void)state;

    assert_int_equal(
        mar_compress(MAR_COMP_XZ, 7 | MAR_XZ_EXTREME, true, big, sizeof(big), &c, &clen, &err),
        RD_OK);
    assert_int_equal(c[7], 0x04); /* stream flags: check type 4 = CRC64 */
    assert_int_equal(mar_decompress(c, clen, 0, &d, &dlen, &err), RD_OK);
    assert_int_equal(dlen, sizeof(big));
    assert_memory_equal(d, big, dlen);
    free(d);
    assert_int_equal(mar_decompress(c, clen, 1000, &d, &dlen, &err), RD_ETOOBIG);
    assert_int_equal(mar_decompress(c, clen - 1, 0, &d, &dlen, &err), RD_ECORRUPT);
    assert_int_equal(mar_decompress("plain", 5, 0, &d, &dlen, &err), RD_ECORRUPT);
    free(c);
    assert_int_equal(mar_compress(MAR_COMP_XZ, 12, false, big, 10, &c, &clen, &err), RD_EINVAL);
    assert_null(c);
}

static void test_old_format(void **state)
{
    struct mar_write_opts o;
    const struct mar_input in[] = {{.name = "x", .flags = 0644, .data = "xyz", .len = 3}};
    struct mar *m;
    (void)state;

    mar_write_opts_init(&o);
    o.old_format = true;
    o.compression = MAR_COMP_BZ2;
    m = write_and_open(&o, in, 1);
    assert_false(mar_has_signature_block(m));
    assert_int_equal(mar_entry_get(m, 0)->offset, 8);
    check_content(m, "x", "xyz", 3);
    {
        struct rd_error err = {0, ""};
        uint8_t d[48];
        size_t dl;
        assert_int_equal(mar_signed_digest(m, 1, d, &dl, &err), RD_EINVAL);
        assert_int_equal(mar_verify_pem(m, "k", 0, &err), RD_ENOTFOUND);
    }
    mar_close(m);
}

static void test_empty_archive(void **state)
{
    struct mar_write_opts o;
    struct mar *m;
    (void)state;

    mar_write_opts_init(&o);
    m = write_and_open(&o, NULL, 0);
    assert_int_equal(mar_entry_count(m), 0);
    assert_null(mar_find(m, "x"));
    mar_close(m);
    o.old_format = true;
    m = write_and_open(&o, NULL, 0);
    assert_int_equal(mar_entry_count(m), 0);
    mar_close(m);
}

static void test_writer_refuses(void **state)
{
    static const struct {
        const char *name;
        const char *msg;
    } names[] = {
        {"", "empty entry name"},          {"/etc/passwd", "absolute"},
        {"../x", "\"..\" path component"}, {"a/../../x", "\"..\" path component"},
        {"a/./b", "\".\" path component"}, {"a//b", "empty path component"},
        {"a/", "empty path component"},    {"a\\b", "backslash"},
        {"a\nb", "control character"},
    };
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct mar_input in[2] = {{.name = "a", .data = "1", .len = 1},
                              {.name = "a", .data = "2", .len = 1}};
    (void)state;

    mar_write_opts_init(&o);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct mar_input one = {.name = names[i].name, .data = "x", .len = 1};
        assert_int_equal(mar_write_mem(&o, &one, 1, &buf, &len, &err), RD_EINVAL);
        if (!strstr(err.msg, names[i].msg))
            fail_msg("%s: %s", names[i].name, err.msg);
        assert_null(buf);
    }
    assert_int_equal(mar_write_mem(&o, in, 2, &buf, &len, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    in[1].name = "b";
    in[1].path = "/nonexistent";
    assert_int_equal(mar_write_mem(&o, in, 2, &buf, &len, &err), RD_EINVAL); /* both set */
    in[1].data = NULL;
    assert_int_equal(mar_write_mem(&o, in, 2, &buf, &len, &err), RD_ENOTFOUND);
    o.has_product_info = true;
    o.channel = "0123456789012345678901234567890123456789012345678901234567890123"; /* 64 */
    o.product_version = "1";
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &len, &err), RD_EINVAL);
    o.channel = "c";
    o.product_version = "01234567890123456789012345678901"; /* 32 */
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &len, &err), RD_EINVAL);
    o.product_version = "0123456789012345678901234567890"; /* 31: fits */
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &len, &err), RD_OK);
    free(buf);
    mar_write_opts_init(&o);
    o.n_signatures = 9;
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &len, &err), RD_EINVAL);
    o.n_signatures = 1;
    o.sig_size[0] = 2049;
    assert_int_equal(mar_write_mem(&o, in, 1, &buf, &len, &err), RD_EINVAL);
}

/* ------------------------------------------------------------ extraction */

struct dirs {
    char root[256]; /* holds target/ and outside/ */
    char target[300];
    char outside[300];
};

static int dirs_setup(void **state)
{
    struct dirs *d = calloc(1, sizeof(*d));
    const char *tmp = getenv("TMPDIR");

    snprintf(d->root, sizeof(d->root), "%s/marx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->root))
        return -1;
    snprintf(d->target, sizeof(d->target), "%s/target", d->root);
    snprintf(d->outside, sizeof(d->outside), "%s/outside", d->root);
    if (mkdir(d->target, 0755) != 0 || mkdir(d->outside, 0755) != 0)
        return -1;
    *state = d;
    return 0;
}

static int dirs_teardown(void **state)
{
    struct dirs *d = *state;
    lt_rmtree(d->root);
    free(d);
    return 0;
}

static void test_extract_all(void **state)
{
    struct dirs *d = *state;
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input in[] = {
        {.name = "a.txt", .flags = 0644, .data = text_a, .len = strlen(text_a)},
        {.name = "dir/sub/big.bin", .flags = 0755, .data = big, .len = sizeof(big)},
        {.name = "dir/other", .flags = 0600, .data = "", .len = 0},
    };
    struct mar *m;
    char p[512];
    uint8_t *got;
    size_t len = 0;
    struct stat st;
    (void)state;

    mar_write_opts_init(&o);
    m = write_and_open(&o, in, 3);
    assert_int_equal(mar_extract_all(m, d->target, 0, &err), RD_OK);
    snprintf(p, sizeof(p), "%s/dir/sub/big.bin", d->target);
    got = lt_slurp(p, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof(big));
    assert_memory_equal(got, big, len);
    free(got);
    assert_int_equal(stat(p, &st), 0);
    assert_true(st.st_mode & 0100); /* executable kept */
    snprintf(p, sizeof(p), "%s/dir/other", d->target);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    /* A second extraction over the first refuses to replace files. */
    assert_int_equal(mar_extract_all(m, d->target, 0, &err), RD_ECONFLICT);
    assert_non_null(strstr(err.msg, "a.txt"));
    mar_close(m);
    assert_int_equal(mar_extract_all(m = write_and_open(&o, in, 1), "/nonexistent/x", 0, &err),
                     RD_ENOTFOUND);
    mar_close(m);
}

/* Builds an archive holding name without the writer's name check: the
   writer refuses hostile names, a hostile archive is made by hand. */
static struct mar *hostile(const char *name)
{
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input in[] = {
        {.name = "ok.txt", .flags = 0644, .data = "fine", .len = 4},
        {.name = "zzzz", .flags = 0644, .data = "evil", .len = 4},
    };
    uint8_t *buf = NULL;
    size_t len = 0, nl = strlen(name);
    struct mar *m = NULL;
    uint8_t *b2;
    uint32_t idx;

    mar_write_opts_init(&o);
    o.compression = MAR_COMP_NONE;
    assert_int_equal(mar_write_mem(&o, in, 2, &buf, &len, &err), RD_OK);
    /* The index is last; "zzzz\0" is the last 5 bytes. Rewrite it. */
    b2 = malloc(len - 5 + nl + 1);
    memcpy(b2, buf, len - 5);
    memcpy(b2 + len - 5, name, nl + 1);
    len = len - 5 + nl + 1;
    idx = (uint32_t)b2[4] << 24 | (uint32_t)b2[5] << 16 | (uint32_t)b2[6] << 8 | b2[7];
    {
        uint32_t isz = 2 * 12 + 7 + (uint32_t)nl + 1;
        b2[idx] = (uint8_t)(isz >> 24);
        b2[idx + 1] = (uint8_t)(isz >> 16);
        b2[idx + 2] = (uint8_t)(isz >> 8);
        b2[idx + 3] = (uint8_t)isz;
        for (int k = 0; k < 8; k++) /* FileSize */
            b2[8 + k] = (uint8_t)((uint64_t)len >> (56 - 8 * k));
    }
    if (mar_open_mem(b2, len, &m, &err) != RD_OK)
        fail_msg("hostile \"%s\": %s", name, err.msg);
    free(buf);
    free(b2);
    return m;
}

static void test_extract_refuses_hostile_names(void **state)
{
    static const char *const names[] = {
        "../escape", "a/../../escape", "/tmp/abs-escape", "a//b", "./x", "a/./b", "dir/",
        "..",        "a\\..\\..\\b",   "x\x01y",
    };
    struct dirs *d = *state;
    struct rd_error err = {0, ""};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct mar *m = hostile(names[i]);
        /* Listed as it is... */
        assert_string_equal(mar_entry_get(m, 1)->name, names[i]);
        /* ...but never extracted, and nothing else either. */
        assert_int_equal(mar_extract_all(m, d->target, 0, &err), RD_EINVAL);
        assert_int_equal(lt_count_dir(d->target), 0);
        assert_int_equal(lt_count_dir(d->outside), 0);
        mar_close(m);
    }
    assert_int_not_equal(access("/tmp/abs-escape", F_OK), 0);
}

/* A symbolic link already in the target tree is not followed, as a
   directory or as a file. */
static void test_extract_refuses_symlinks(void **state)
{
    struct dirs *d = *state;
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input via_dir[] = {{.name = "link/x", .data = "evil", .len = 4}};
    const struct mar_input via_file[] = {{.name = "file", .data = "evil", .len = 4}};
    char p[512], q[512];
    struct mar *m;

    mar_write_opts_init(&o);
    snprintf(p, sizeof(p), "%s/link", d->target);
    assert_int_equal(symlink(d->outside, p), 0);
    m = write_and_open(&o, via_dir, 1);
    assert_int_equal(mar_extract_all(m, d->target, 0, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "symbolic link"));
    mar_close(m);
    snprintf(p, sizeof(p), "%s/file", d->target);
    snprintf(q, sizeof(q), "%s/victim", d->outside);
    assert_int_equal(symlink(q, p), 0);
    m = write_and_open(&o, via_file, 1);
    assert_int_not_equal(mar_extract_all(m, d->target, 0, &err), RD_OK);
    mar_close(m);
    assert_int_equal(lt_count_dir(d->outside), 0);
}

/* A bad stream halfway leaves no half-written file behind. */
static void test_extract_bad_stream(void **state)
{
    struct dirs *d = *state;
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    const struct mar_input in[] = {
        {.name = "good", .data = "fine", .len = 4},
        {.name = "bad", .data = "BZh9 not really bzip2", .len = 21, .is_compressed = true},
    };
    struct mar *m;

    mar_write_opts_init(&o);
    m = write_and_open(&o, in, 2);
    assert_int_equal(mar_entry_compression(m, mar_entry_get(m, 1)), MAR_COMP_BZ2);
    assert_int_equal(mar_extract_all(m, d->target, 0, &err), RD_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad"));
    assert_int_equal(lt_count_dir(d->target), 1); /* "good" only */
    mar_close(m);
}

static void test_write_file(void **state)
{
    struct dirs *d = *state;
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    char src[512], out[512];
    FILE *f;
    struct mar *m = NULL;

    snprintf(src, sizeof(src), "%s/src.bin", d->outside);
    snprintf(out, sizeof(out), "%s/out.mar", d->outside);
    f = fopen(src, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, sizeof(big), f), sizeof(big));
    fclose(f);
    {
        const struct mar_input in[] = {{.name = "from/disk", .flags = 0755, .path = src}};
        mar_write_opts_init(&o);
        o.compression = MAR_COMP_BZ2;
        assert_int_equal(mar_write_file(&o, in, 1, out, &err), RD_OK);
    }
    assert_int_equal(mar_open(out, &m, &err), RD_OK);
    check_content(m, "from/disk", big, sizeof(big));
    mar_close(m);
    assert_int_equal(lt_count_dir(d->outside), 2); /* no .tmp left */
    assert_int_equal(mar_open("/nonexistent.mar", &m, &err), RD_ENOTFOUND);
    assert_int_equal(mar_open(d->outside, &m, &err), RD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_xz),
        cmocka_unit_test(test_round_trip_bz2),
        cmocka_unit_test(test_round_trip_stored),
        cmocka_unit_test(test_round_trip_signature_slots),
        cmocka_unit_test(test_xz_options),
        cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_empty_archive),
        cmocka_unit_test(test_writer_refuses),
        cmocka_unit_test_setup_teardown(test_extract_all, dirs_setup, dirs_teardown),
        cmocka_unit_test_setup_teardown(test_extract_refuses_hostile_names, dirs_setup,
                                        dirs_teardown),
        cmocka_unit_test_setup_teardown(test_extract_refuses_symlinks, dirs_setup, dirs_teardown),
        cmocka_unit_test_setup_teardown(test_extract_bad_stream, dirs_setup, dirs_teardown),
        cmocka_unit_test_setup_teardown(test_write_file, dirs_setup, dirs_teardown),
    };
    fill_big();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
