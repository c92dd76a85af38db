/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lib/test_mar_fixtures.c -- lib/mar against real MAR files made
 * by Mozilla's tools (tests/unit/lib/data, see SOURCES.md there): the exact
 * header, signature block, product information and index of each, the
 * decompressed contents, the SHA-1 signature (good, wrong key, tampered),
 * and SHA-384 signing of the unsigned one.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hash/hash.h"
#include "lib/mar/mar.h"
#include "tests/unit/lib/libtest.h"

static const char channel_prefs[] = "pref(\"app.update.channel\", \"release\");\n";

struct want_entry {
    uint32_t offset, size, flags;
    const char *name;
};

static void check_entries(const struct mar *m, const struct want_entry *w, size_t n)
{
    assert_int_equal(mar_entry_count(m), n);
    for (size_t i = 0; i < n; i++) {
        const struct mar_entry *e = mar_entry_get(m, i);
        assert_non_null(e);
        assert_int_equal(e->offset, w[i].offset);
        assert_int_equal(e->size, w[i].size);
        assert_int_equal(e->flags, w[i].flags);
        assert_string_equal(e->name, w[i].name);
    }
    assert_null(mar_entry_get(m, n));
}

static struct mar *open_fixture(const char *path)
{
    struct rd_error err = {0, ""};
    struct mar *m = NULL;
    int rc = mar_open(path, &m, &err);
    if (rc != RD_OK)
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static void test_bz2_layout(void **state)
{
    static const struct want_entry want[] = {
        {392, 141, 0664, "update.manifest"},
        {533, 76, 0664, "defaults/pref/channel-prefs.js"},
        {609, 76, 0664, "Contents/MacOS/defaults/pref/channel-prefs.js"},
        {685, 152, 0664, "update-settings.ini"},
        {837, 152, 0664, "Contents/MacOS/update-settings.ini"},
    };
    struct mar *m = open_fixture(FIXTURE("build-mar_test-bz2.mar"));
    const struct mar_signature *s;
    size_t len;
    (void)state;

    mar_bytes(m, &len);
    assert_int_equal(len, 1201);
    assert_int_equal(mar_index_offset(m), 989);
    assert_true(mar_has_signature_block(m));
    assert_int_equal(mar_signature_count(m), 1);
    s = mar_signature_get(m, 0);
    assert_non_null(s);
    assert_int_equal(s->algorithm, MAR_SIG_RSA_PKCS1_SHA1);
    assert_int_equal(s->size, 256);
    assert_int_equal(s->offset, 28);
    assert_null(mar_signature_get(m, 1));
    assert_int_equal(mar_additional_section_count(m), 1);
    assert_true(mar_has_product_info(m));
    assert_string_equal(mar_channel(m), "thunderbird-comm-esr");
    assert_string_equal(mar_product_version(m), "100.0");
    check_entries(m, want, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(mar_entry_compression(m, mar_entry_get(m, i)), MAR_COMP_BZ2);
    mar_close(m);
}

static void test_xz_layout(void **state)
{
    static const struct want_entry want[] = {
        {128, 96, 0644, "Contents/MacOS/defaults/pref/channel-prefs.js"},
        {224, 180, 0644, "Contents/MacOS/update-settings.ini"},
        {404, 96, 0644, "defaults/pref/channel-prefs.js"},
        {500, 164, 0644, "update.manifest"},
        {664, 180, 0644, "update-settings.ini"},
    };
    struct mar *m = open_fixture(FIXTURE("build-mar_test-xz.mar"));
    size_t len;
    (void)state;

    mar_bytes(m, &len);
    assert_int_equal(len, 1056);
    assert_int_equal(mar_index_offset(m), 844);
    assert_true(mar_has_signature_block(m));
    assert_int_equal(mar_signature_count(m), 0);
    assert_true(mar_has_product_info(m));
    assert_string_equal(mar_channel(m), "thunderbird-comm-esr");
    assert_string_equal(mar_product_version(m), "100.0");
    check_entries(m, want, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(mar_entry_compression(m, mar_entry_get(m, i)), MAR_COMP_XZ);
    mar_close(m);
}

/* Both archives hold the same five files. */
static void test_contents_agree(void **state)
{
    struct mar *bz = open_fixture(FIXTURE("build-mar_test-bz2.mar"));
    struct mar *xz = open_fixture(FIXTURE("build-mar_test-xz.mar"));
    struct rd_error err = {0, ""};
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    (void)state;

    assert_int_equal(
        mar_extract_mem(bz, mar_find(bz, "defaults/pref/channel-prefs.js"), 0, &a, &alen, &err),
        RD_OK);
    assert_int_equal(alen, strlen(channel_prefs));
    assert_memory_equal(a, channel_prefs, alen);
    free(a);
    assert_int_equal(mar_extract_mem(bz, mar_find(bz, "update.manifest"), 0, &a, &alen, &err),
                     RD_OK);
    assert_int_equal(alen, 308);
    assert_memory_equal(a, "add-if \"defaults/pref/channel-prefs.js\"", 38);
    free(a);
    assert_int_equal(mar_extract_mem(bz, mar_find(bz, "update-settings.ini"), 0, &a, &alen, &err),
                     RD_OK);
    assert_int_equal(alen, 133);
    assert_non_null(memmem(a, alen, "ACCEPTED_MAR_CHANNEL_IDS=thunderbird-comm-release", 49));
    free(a);
    for (size_t i = 0; i < mar_entry_count(bz); i++) {
        const struct mar_entry *e = mar_entry_get(bz, i);
        const struct mar_entry *f = mar_find(xz, e->name);
        assert_non_null(f);
        assert_int_equal(mar_extract_mem(bz, e, 0, &a, &alen, &err), RD_OK);
        assert_int_equal(mar_extract_mem(xz, f, 0, &b, &blen, &err), RD_OK);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, alen);
        free(a);
        free(b);
    }
    /* The cap on decompressed size holds. */
    assert_int_equal(mar_extract_mem(xz, mar_find(xz, "update.manifest"), 100, &a, &alen, &err),
                     RD_ETOOBIG);
    assert_null(a);
    mar_close(bz);
    mar_close(xz);
}

static void test_sha1_signature(void **state)
{
    struct mar *m = open_fixture(FIXTURE("build-mar_test-bz2.mar"));
    struct rd_error err = {0, ""};
    uint8_t d[48];
    char hex[97];
    size_t dlen = 0;
    (void)state;

    assert_int_equal(mar_signed_digest(m, MAR_SIG_RSA_PKCS1_SHA1, d, &dlen, &err), RD_OK);
    assert_int_equal(dlen, 20);
    hash_hex(d, dlen, hex);
    assert_string_equal(hex, "cd250e827a2537db96b45e06335a465638fae86b");
    assert_int_equal(mar_verify_pem_file(m, FIXTURE("build-mar_test.pubkey"), &err), RD_OK);
    assert_int_equal(mar_verify_pem_file(m, FIXTURE("autograph_testmar-2048.pub.pem"), &err),
                     RD_ECORRUPT);
    assert_non_null(strstr(err.msg, "does not verify"));
    /* One key per signature, as libmar demands. */
    {
        char *k = NULL;
        size_t klen = 0;
        const char *keys[2];
        size_t lens[2];
        k = (char *)lt_slurp(FIXTURE("build-mar_test.pubkey"), &klen);
        assert_non_null(k);
        keys[0] = keys[1] = k;
        lens[0] = lens[1] = klen;
        assert_int_equal(mar_verify(m, keys, lens, 2, &err), RD_EINVAL);
        assert_int_equal(mar_verify(m, keys, lens, 0, &err), RD_EINVAL);
        assert_int_equal(mar_verify_pem(m, "not a key", 0, &err), RD_EINVAL);
        free(k);
    }
    mar_close(m);
}

/* Flip one byte: outside the signature the file no longer verifies (or no
   longer parses); inside it, the signed digest is unchanged but the
   signature is wrong. */
static void test_sha1_tampered(void **state)
{
    static const size_t offsets[] = {5,   9,   17,  21,  27,  28,  100,  283,  284, 300,
                                     391, 392, 500, 700, 988, 995, 1000, 1100, 1200};
    struct rd_error err = {0, ""};
    size_t len = 0;
    uint8_t *orig = lt_slurp(FIXTURE("build-mar_test-bz2.mar"), &len);
    char *key = NULL;
    size_t klen = 0;
    uint8_t d0[48], d1[48];
    size_t d0len = 0, d1len = 0;
    (void)state;

    assert_non_null(orig);
    key = (char *)lt_slurp(FIXTURE("build-mar_test.pubkey"), &klen);
    assert_non_null(key);
    {
        struct mar *m = NULL;
        assert_int_equal(mar_open_mem(orig, len, &m, &err), RD_OK);
        assert_int_equal(mar_signed_digest(m, 1, d0, &d0len, &err), RD_OK);
        mar_close(m);
    }
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        struct mar *m = NULL;
        uint8_t *b = malloc(len);
        size_t o = offsets[i];
        int rc;
        assert_non_null(b);
        memcpy(b, orig, len);
        b[o] ^= 0x01;
        rc = mar_open_mem(b, len, &m, &err);
        if (rc == RD_OK) {
            assert_int_not_equal(mar_verify_pem(m, key, klen, &err), RD_OK);
            if (o >= 28 && o < 284) { /* inside the signature */
                assert_int_equal(mar_signed_digest(m, 1, d1, &d1len, &err), RD_OK);
                assert_memory_equal(d0, d1, 20);
            }
        } else {
            assert_int_equal(rc, RD_ECORRUPT);
            assert_false(o >= 28 && o < 284); /* signature bytes are opaque */
        }
        mar_close(m);
        free(b);
    }
    free(key);
    free(orig);
}

static void test_unsigned_does_not_verify(void **state)
{
    struct mar *m = open_fixture(FIXTURE("build-mar_test-xz.mar"));
    struct rd_error err = {0, ""};
    (void)state;

    assert_int_equal(mar_verify_pem_file(m, FIXTURE("build-mar_test.pubkey"), &err), RD_ENOTFOUND);
    assert_non_null(strstr(err.msg, "not signed"));
    mar_close(m);
}

static uint8_t *sign_fixture(const char *keyfile, size_t *out_len)
{
    struct mar *m = open_fixture(FIXTURE("build-mar_test-xz.mar"));
    struct rd_error err = {0, ""};
    size_t klen = 0;
    char *key = (char *)lt_slurp(keyfile, &klen);
    const char *keys[1] = {key};
    uint8_t *out = NULL;

    assert_non_null(key);
    if (mar_sign(m, keys, &klen, 1, MAR_SIG_RSA_PKCS1_SHA384, false, &out, out_len, &err) != RD_OK)
        fail_msg("sign: %s", err.msg);
    free(key);
    mar_close(m);
    return out;
}

/* reference/mar.md test 4: signing the unsigned xz MAR with the 4096-bit
   test key, SHA-384. */
static void test_sign_sha384(void **state)
{
    struct rd_error err = {0, ""};
    size_t len = 0, len2 = 0, olen = 0;
    uint8_t *out = sign_fixture(FIXTURE("signingscript_test-mar-4096.key.pem"), &len);
    uint8_t *again = sign_fixture(FIXTURE("signingscript_test-mar-4096.key.pem"), &len2);
    uint8_t *orig = lt_slurp(FIXTURE("build-mar_test-xz.mar"), &olen);
    struct mar *m = NULL, *o = NULL;
    uint8_t sha[32];
    char hex[65];
    (void)state;

    assert_int_equal(len, 1576);
    assert_int_equal(len2, len);
    assert_memory_equal(out, again, len); /* PKCS#1 v1.5 is deterministic */
    assert_int_equal(mar_open_mem(out, len, &m, &err), RD_OK);
    assert_int_equal(mar_open_mem(orig, olen, &o, &err), RD_OK);
    assert_int_equal(mar_index_offset(m), 844 + 520);
    assert_int_equal(mar_signature_count(m), 1);
    assert_int_equal(mar_signature_get(m, 0)->algorithm, 2);
    assert_int_equal(mar_signature_get(m, 0)->size, 512);
    assert_string_equal(mar_channel(m), "thunderbird-comm-esr");
    for (size_t i = 0; i < mar_entry_count(m); i++) {
        assert_int_equal(mar_entry_get(m, i)->offset, mar_entry_get(o, i)->offset + 520);
        assert_string_equal(mar_entry_get(m, i)->name, mar_entry_get(o, i)->name);
    }
    /* Everything after the signature block is the original's, moved. */
    assert_memory_equal(out + 20 + 8 + 512, orig + 20, 844 - 20);
    assert_int_equal(mar_verify_pem_file(m, FIXTURE("signingscript_test-mar-4096.pub.pem"), &err),
                     RD_OK);
    assert_int_equal(mar_verify_pem_file(m, FIXTURE("mozilla-pubkey_release_primary.pem"), &err),
                     RD_ECORRUPT);
    assert_int_equal(hash_buf(HASH_SHA256, out, len, sha, &err), RD_OK);
    hash_hex(sha, 32, hex);
    assert_string_equal(hex, "4aefe2c5d5ff47dbe7aa307ff3529e936d3857f9d4f510b55db529a5a3bb210e");
    /* Signing a signed archive: refused, or replaced when asked. */
    {
        size_t klen = 0;
        char *key = (char *)lt_slurp(FIXTURE("signingscript_test-mar-4096.key.pem"), &klen);
        const char *keys[1] = {key};
        uint8_t *re = NULL;
        size_t relen = 0;
        assert_int_equal(
            mar_sign(m, keys, &klen, 1, MAR_SIG_RSA_PKCS1_SHA384, false, &re, &relen, &err),
            RD_ECONFLICT);
        assert_int_equal(
            mar_sign(m, keys, &klen, 1, MAR_SIG_RSA_PKCS1_SHA384, true, &re, &relen, &err), RD_OK);
        assert_int_equal(relen, len);
        assert_memory_equal(re, out, len);
        free(re);
        free(key);
    }
    mar_close(m);
    mar_close(o);
    free(orig);
    free(out);
    free(again);
}

/* A 2048-bit key signing with SHA-1 (algorithm 1) round-trips too. */
static void test_sign_sha1(void **state)
{
    struct mar *m = open_fixture(FIXTURE("build-mar_test-xz.mar")), *s = NULL;
    struct rd_error err = {0, ""};
    size_t klen = 0, len = 0;
    char *key = (char *)lt_slurp(FIXTURE("autograph_testmar-2048.key.pem"), &klen);
    const char *keys[1] = {key};
    uint8_t *out = NULL;
    (void)state;

    assert_int_equal(mar_sign(m, keys, &klen, 1, MAR_SIG_RSA_PKCS1_SHA1, false, &out, &len, &err),
                     RD_OK);
    assert_int_equal(len, 1056 + 8 + 256);
    assert_int_equal(mar_open_mem(out, len, &s, &err), RD_OK);
    assert_int_equal(mar_verify_pem_file(s, FIXTURE("autograph_testmar-2048.pub.pem"), &err),
                     RD_OK);
    assert_int_equal(mar_verify_pem_file(s, FIXTURE("build-mar_test.pubkey"), &err), RD_ECORRUPT);
    {
        uint8_t *bad = NULL;
        size_t bad_len = 0;
        assert_int_equal(mar_sign(m, keys, &klen, 1, 3, false, &bad, &bad_len, &err), RD_EINVAL);
        assert_null(bad);
    }
    mar_close(s);
    mar_close(m);
    free(out);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bz2_layout),     cmocka_unit_test(test_xz_layout),
        cmocka_unit_test(test_contents_agree), cmocka_unit_test(test_sha1_signature),
        cmocka_unit_test(test_sha1_tampered),  cmocka_unit_test(test_unsigned_does_not_verify),
        cmocka_unit_test(test_sign_sha384),    cmocka_unit_test(test_sign_sha1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
