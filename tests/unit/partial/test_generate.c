/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/partial/test_generate.c -- partial generation end to end on
 * two generated builds (trees.h): the manifest checked line by line against
 * make_incremental_update.sh's rules, the partial applied to the from tree
 * reproducing the to tree, verification catching a wrong partial, the bz2
 * format with both manifests, and the diff cache protocol (misses, hits,
 * threshold, format in the key, corrupt-entry regeneration) with an
 * in-memory cache.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/mar/mar.h"
#include "lib/partial/apply.h"
#include "lib/partial/generate.h"
#include "tests/unit/partial/trees.h"

struct fixture {
    char dir[256];
    char from_mar[300], to_mar[300], to2_mar[300], out[300], work[300];
    struct tree from, to;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct tree to2 = {0}, from2 = {0};
    const char *tmp = getenv("TMPDIR");

    snprintf(fx->dir, sizeof(fx->dir), "%s/partial-gen-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->from_mar, sizeof(fx->from_mar), "%s/from.mar", fx->dir);
    snprintf(fx->to_mar, sizeof(fx->to_mar), "%s/to.mar", fx->dir);
    snprintf(fx->to2_mar, sizeof(fx->to2_mar), "%s/to-de.mar", fx->dir);
    snprintf(fx->out, sizeof(fx->out), "%s/partial.mar", fx->dir);
    snprintf(fx->work, sizeof(fx->work), "%s/work", fx->dir);
    mkdir(fx->work, 0755);
    if (trees_build(fx->dir, &fx->from, &fx->to, "title = Firefox\n") != 0 ||
        trees_pack(&fx->from, fx->from_mar, "firefox-mozilla-release", "1.0") != 0 ||
        trees_pack(&fx->to, fx->to_mar, "firefox-mozilla-release", "2.0") != 0)
        return -1;
    /* a second "locale" of the to build: one locale file differs */
    if (trees_build(fx->dir, &from2, &to2, "title = Feuerfuchs\n") != 0 ||
        trees_pack(&to2, fx->to2_mar, "firefox-mozilla-release", "2.0") != 0)
        return -1;
    tree_free(&from2);
    tree_free(&to2);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    tree_free(&fx->from);
    tree_free(&fx->to);
    trees_rmrf(fx->dir);
    free(fx);
    return 0;
}

/* ------------------------------------------------------ an in-memory cache */

struct mem_entry {
    uint8_t key[64];
    char format[16];
    uint8_t *data;
    size_t len;
};

struct mem_digest {
    uint8_t stored[32], content[32];
    uint64_t size;
};

struct mem_cache {
    pthread_mutex_t lock;
    struct mem_entry e[64];
    size_t n;
    unsigned gets, puts, drops;
    struct mem_digest d[128];
    size_t n_d;
    unsigned digest_hits;
};

static struct mem_entry *mem_find(struct mem_cache *c, const struct partial_cache_key *k)
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->e[i].key, k->from_sha256, 32) == 0 &&
            memcmp(c->e[i].key + 32, k->to_sha256, 32) == 0 &&
            strcmp(c->e[i].format, k->format) == 0 && c->e[i].data)
            return &c->e[i];
    return NULL;
}

static int mem_get(void *arg, const struct partial_cache_key *k, uint8_t **data, size_t *len)
{
    struct mem_cache *c = arg;
    struct mem_entry *e;
    int rc = RD_ENOTFOUND;

    pthread_mutex_lock(&c->lock);
    c->gets++;
    e = mem_find(c, k);
    if (e) {
        *data = malloc(e->len);
        memcpy(*data, e->data, e->len);
        *len = e->len;
        rc = RD_OK;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void mem_put(void *arg, const struct partial_cache_key *k, const uint8_t *data, size_t len,
                    uint64_t ms)
{
    struct mem_cache *c = arg;
    struct mem_entry *e;

    (void)ms;
    pthread_mutex_lock(&c->lock);
    c->puts++;
    e = mem_find(c, k);
    if (!e && c->n < 64)
        e = &c->e[c->n++];
    if (e) {
        free(e->data);
        memcpy(e->key, k->from_sha256, 32);
        memcpy(e->key + 32, k->to_sha256, 32);
        snprintf(e->format, sizeof(e->format), "%s", k->format);
        e->data = malloc(len);
        memcpy(e->data, data, len);
        e->len = len;
    }
    pthread_mutex_unlock(&c->lock);
}

static void mem_drop(void *arg, const struct partial_cache_key *k)
{
    struct mem_cache *c = arg;
    struct mem_entry *e;

    pthread_mutex_lock(&c->lock);
    c->drops++;
    e = mem_find(c, k);
    if (e) {
        free(e->data);
        e->data = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}

static int mem_digest_get(void *arg, const uint8_t stored[32], uint8_t content[32], uint64_t *size)
{
    struct mem_cache *c = arg;
    int rc = RD_ENOTFOUND;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_d; i++)
        if (memcmp(c->d[i].stored, stored, 32) == 0) {
            memcpy(content, c->d[i].content, 32);
            *size = c->d[i].size;
            c->digest_hits++;
            rc = RD_OK;
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void mem_digest_put(void *arg, const uint8_t stored[32], const uint8_t content[32],
                           uint64_t size)
{
    struct mem_cache *c = arg;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_d; i++)
        if (memcmp(c->d[i].stored, stored, 32) == 0)
            goto out;
    if (c->n_d < 128) {
        memcpy(c->d[c->n_d].stored, stored, 32);
        memcpy(c->d[c->n_d].content, content, 32);
        c->d[c->n_d].size = size;
        c->n_d++;
    }
out:
    pthread_mutex_unlock(&c->lock);
}

static void mem_free(struct mem_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].data);
    pthread_mutex_destroy(&c->lock);
}

static struct partial_cache_ops mem_ops(struct mem_cache *c, uint64_t min_size)
{
    struct partial_cache_ops ops = {
        .arg = c, .min_size = min_size, .get = mem_get, .put = mem_put, .drop = mem_drop};
    return ops;
}

/* ------------------------------------------------------------ helpers */

/* Runs every phase; returns the generator (caller frees). */
static struct partial_gen *generate(struct fixture *fx, const char *to_mar, enum partial_format fmt,
                                    const struct partial_cache_ops *cache)
{
    struct partial_opts o;
    struct partial_gen *g = NULL;
    struct rd_error err = {0};

    partial_opts_init(&o);
    o.format = fmt;
    o.workdir = fx->work;
    if (partial_gen_open(fx->from_mar, to_mar, &o, &g, &err) != RD_OK)
        fail_msg("open: %s", err.msg);
    for (size_t i = 0; i < partial_gen_n_diffs(g); i++)
        if (partial_gen_diff(g, i, cache, &err) != RD_OK)
            fail_msg("diff %zu: %s", i, err.msg);
    if (partial_gen_pack(g, fx->out, &err) != RD_OK)
        fail_msg("pack: %s", err.msg);
    if (partial_gen_verify(g, fx->out, &err) != RD_OK)
        fail_msg("verify: %s", err.msg);
    return g;
}

static const struct partial_diff_info *info_of(struct partial_gen *g, const char *path)
{
    for (size_t i = 0; i < partial_gen_n_diffs(g); i++)
        if (strcmp(partial_gen_diff_info(g, i)->path, path) == 0)
            return partial_gen_diff_info(g, i);
    fail_msg("no diff item for %s", path);
    return NULL;
}

static void assert_lines(const char *text, const char *const *want)
{
    const char *p = text;
    size_t i = 0;

    for (; want[i]; i++) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("line %zu missing, want: %s", i + 1, want[i]);
        if ((size_t)(nl - p) != strlen(want[i]) || strncmp(p, want[i], (size_t)(nl - p)) != 0)
            fail_msg("line %zu: got %.*s\n want %s", i + 1, (int)(nl - p), p, want[i]);
        p = nl + 1;
    }
    if (*p)
        fail_msg("extra lines after %zu: %s", i, p);
}

/* ------------------------------------------------------------- tests */

static void test_manifest_line_by_line(void **state)
{
    struct fixture *fx = *state;
    struct partial_gen *g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, NULL);
    const struct partial_diff_info *ext =
        info_of(g, "distribution/extensions/helper@example.com/bootstrap.js");
    const char *ext_line =
        ext->choice == PARTIAL_PATCH
            ? "patch-if \"distribution/extensions/helper@example.com\" "
              "\"distribution/extensions/helper@example.com/bootstrap.js.patch\" "
              "\"distribution/extensions/helper@example.com/bootstrap.js\""
            : "add-if \"distribution/extensions/helper@example.com\" "
              "\"distribution/extensions/helper@example.com/bootstrap.js\"";
    const char *const want[] = {
        "type \"partial\"",
        "add-if-not \"update-settings.ini\" \"update-settings.ini\"",
        "add \"tiny.txt\"",
        "add \"removed-files\"",
        "add \"precomplete\"",
        "patch \"libxul.so.patch\" \"libxul.so\"",
        ext_line,
        "add-if-not \"defaults/pref/channel-prefs.js\" \"defaults/pref/channel-prefs.js\"",
        "add \"data/random.bin\"",
        "patch \"browser/omni.ja.patch\" \"browser/omni.ja\"",
        "add \"new/feature.js\"",
        "remove \"obsolete/gone.txt\"",
        "rmrfdir \"plugins/\"",
        "rmdir \"old-extras/\"",
        "remove \"legacy.dll\"",
        "rmdir \"obsolete/\"",
        "patch \"firefox.exe.patch\" \"firefox.exe\"",
        NULL,
    };
    struct partial_stats st;
    struct mar *m = NULL;
    struct rd_error err = {0};

    /* the decisions the rules depend on */
    assert_int_equal(info_of(g, "firefox.exe")->choice, PARTIAL_PATCH);
    assert_int_equal(info_of(g, "libxul.so")->choice, PARTIAL_PATCH);
    assert_int_equal(info_of(g, "browser/omni.ja")->choice, PARTIAL_PATCH);
    assert_int_equal(info_of(g, "locale/browser.properties")->choice, PARTIAL_SAME);
    /* one changed byte: the patch is not smaller than the compressed byte */
    assert_int_equal(info_of(g, "tiny.txt")->choice, PARTIAL_FULL);
    assert_true(info_of(g, "tiny.txt")->patch_size >= info_of(g, "tiny.txt")->full_size);
    /* replaced incompressible data */
    assert_int_equal(info_of(g, "data/random.bin")->choice, PARTIAL_FULL);
    assert_true(info_of(g, "libxul.so")->patch_size < info_of(g, "libxul.so")->full_size);
    assert_lines(partial_gen_manifest(g), want);

    partial_gen_stats(g, &st);
    assert_int_equal(st.n_from, 12);
    assert_int_equal(st.n_to, 12);
    /* in both trees and neither forced nor add-if-not */
    assert_int_equal(st.n_diffs, 7);
    assert_int_equal(st.n_same, 1);
    assert_int_equal(st.cache_hits + st.cache_misses + st.cache_bypass, 0);

    /* the archive: manifest first, every entry xz, the to MAR's product info */
    assert_int_equal(mar_open(fx->out, &m, &err), RD_OK);
    assert_string_equal(mar_entry_get(m, 0)->name, "updatev3.manifest");
    assert_null(mar_find(m, "updatev2.manifest"));
    assert_int_equal(mar_entry_count(m), 12); /* manifest + 11 files of the manifest */
    for (size_t i = 0; i < mar_entry_count(m); i++)
        assert_int_equal(mar_entry_compression(m, mar_entry_get(m, i)), MAR_COMP_XZ);
    assert_non_null(mar_find(m, "firefox.exe.patch"));
    assert_null(mar_find(m, "firefox.exe"));
    assert_null(mar_find(m, "locale/browser.properties"));
    assert_string_equal(mar_channel(m), "firefox-mozilla-release");
    assert_string_equal(mar_product_version(m), "2.0");
    assert_int_equal(mar_find(m, "new/feature.js")->flags, 0644);
    assert_int_equal(mar_find(m, "firefox.exe.patch")->flags, 0644);
    mar_close(m);
    partial_gen_free(g);
}

static void test_apply_reproduces_to_tree(void **state)
{
    struct fixture *fx = *state;
    struct partial_gen *g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, NULL);
    struct mar *from = NULL, *pm = NULL;
    struct partial_apply_report rep;
    struct rd_error err = {0};
    char dir[400], path[600];

    snprintf(dir, sizeof(dir), "%s/installed", fx->dir);
    mkdir(dir, 0755);
    assert_int_equal(mar_open(fx->from_mar, &from, &err), RD_OK);
    assert_int_equal(mar_extract_all(from, dir, 0, &err), RD_OK);
    assert_int_equal(mar_open(fx->out, &pm, &err), RD_OK);
    if (partial_apply_dir(pm, dir, 0, &rep, &err) != RD_OK)
        fail_msg("apply: %s", err.msg);
    /* every to file, byte for byte; update-settings.ini is add-if-not and
       existed: the installed copy stays */
    for (size_t i = 0; i < fx->to.n; i++) {
        const struct tree_file *tf = &fx->to.files[i];
        const struct tree_file *want = tf;
        size_t len = 0;
        char *got;

        if (strcmp(tf->name, "update-settings.ini") == 0)
            want = tree_find(&fx->from, tf->name);
        snprintf(path, sizeof(path), "%s/%s", dir, tf->name);
        got = trees_slurp(path, &len);
        if (!got)
            fail_msg("%s missing after applying", tf->name);
        if (len != want->len || memcmp(got, want->data, len) != 0)
            fail_msg("%s differs after applying", tf->name);
        free(got);
    }
    assert_true(partial_apply_skipped(&rep, "update-settings.ini"));
    assert_true(partial_apply_skipped(&rep, "defaults/pref/channel-prefs.js"));
    /* removed: the file and its directory */
    snprintf(path, sizeof(path), "%s/obsolete", dir);
    assert_int_equal(access(path, F_OK), -1);
    /* the executable keeps its mode through the patch */
    {
        struct stat st;
        snprintf(path, sizeof(path), "%s/firefox.exe", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0755);
    }
    partial_apply_report_fini(&rep);
    mar_close(pm);
    mar_close(from);
    trees_rmrf(dir);
    partial_gen_free(g);
}

static void test_verify_catches_a_wrong_partial(void **state)
{
    struct fixture *fx = *state;
    struct partial_gen *g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, NULL);
    struct partial_gen *g2 = NULL;
    struct partial_opts o;
    struct rd_error err = {0};
    char other[400];

    /* a partial for the other locale's build does not reproduce this to */
    snprintf(other, sizeof(other), "%s/other.mar", fx->dir);
    partial_opts_init(&o);
    o.workdir = fx->work;
    assert_int_equal(partial_gen_open(fx->from_mar, fx->to2_mar, &o, &g2, &err), RD_OK);
    for (size_t i = 0; i < partial_gen_n_diffs(g2); i++)
        assert_int_equal(partial_gen_diff(g2, i, NULL, &err), RD_OK);
    assert_int_equal(partial_gen_pack(g2, other, &err), RD_OK);
    assert_int_equal(partial_gen_verify(g, other, &err), RD_ECORRUPT);
    assert_non_null(strstr(err.msg, "locale/browser.properties"));
    /* and one that leaves a file it should change alone is caught too */
    assert_int_equal(partial_gen_verify(g2, fx->out, &err), RD_ECORRUPT);
    assert_non_null(strstr(err.msg, "locale/browser.properties"));
    /* pack refuses before every diff ran */
    partial_gen_free(g2);
    assert_int_equal(partial_gen_open(fx->from_mar, fx->to_mar, &o, &g2, &err), RD_OK);
    assert_int_equal(partial_gen_pack(g2, other, &err), RD_ECONFLICT);
    partial_gen_free(g2);
    partial_gen_free(g);
}

static void test_bz2_format_writes_v2_and_v3(void **state)
{
    struct fixture *fx = *state;
    struct partial_gen *g = generate(fx, fx->to_mar, PARTIAL_FMT_BZ2, NULL);
    struct mar *m = NULL;
    struct rd_error err = {0};
    uint8_t *v2 = NULL;
    size_t v2_len = 0;
    const char *v3 = partial_gen_manifest(g);
    char *want = calloc(1, strlen(v3) + 1);

    assert_int_equal(mar_open(fx->out, &m, &err), RD_OK);
    assert_string_equal(mar_entry_get(m, 0)->name, "updatev2.manifest");
    assert_string_equal(mar_entry_get(m, 1)->name, "updatev3.manifest");
    for (size_t i = 0; i < mar_entry_count(m); i++)
        assert_int_equal(mar_entry_compression(m, mar_entry_get(m, i)), MAR_COMP_BZ2);
    assert_int_equal(mar_extract_mem(m, mar_find(m, "updatev2.manifest"), 0, &v2, &v2_len, &err),
                     RD_OK);
    /* v2 is v3 without its add-if-not lines */
    for (const char *p = v3; *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, "add-if-not ", 11) != 0)
            strncat(want, p, (size_t)(nl - p + 1));
        p = nl + 1;
    }
    assert_int_equal(v2_len, strlen(want));
    assert_memory_equal(v2, want, v2_len);
    free(v2);
    free(want);
    mar_close(m);
    partial_gen_free(g);
}

static void test_cache_miss_then_hit(void **state)
{
    struct fixture *fx = *state;
    struct mem_cache c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct partial_cache_ops ops = mem_ops(&c, 1024);
    struct partial_gen *g1, *g2;
    struct partial_stats s1, s2;
    char *m1;

    g1 = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g1, &s1);
    /* changed files of 1 KiB or more were diffed and stored; smaller bypass */
    assert_int_equal(s1.cache_hits, 0);
    assert_int_equal(s1.cache_misses, 4); /* firefox.exe libxul.so omni.ja random.bin */
    assert_int_equal(s1.cache_bypass, 2); /* tiny.txt, bootstrap.js */
    assert_int_equal(c.puts, 4);
    assert_int_equal(info_of(g1, "tiny.txt")->cache, PARTIAL_CACHE_BYPASS);
    assert_int_equal(info_of(g1, "locale/browser.properties")->cache, PARTIAL_CACHE_NONE);
    m1 = strdup(partial_gen_manifest(g1));

    /* the second locale shares every changed file: all hits, same decisions */
    g2 = generate(fx, fx->to2_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g2, &s2);
    assert_int_equal(s2.cache_hits, 4);
    assert_int_equal(s2.cache_misses, 0);
    assert_int_equal(c.puts, 4);
    assert_true(s2.bytes_from_cache > 0);
    assert_int_equal(info_of(g2, "libxul.so")->cache, PARTIAL_CACHE_HIT);
    assert_int_equal(info_of(g2, "libxul.so")->choice, PARTIAL_PATCH);
    /* the locale file now differs and is small: not cached */
    assert_int_equal(info_of(g2, "locale/browser.properties")->cache, PARTIAL_CACHE_BYPASS);
    assert_non_null(strstr(partial_gen_manifest(g2), "patch \"libxul.so.patch\" \"libxul.so\""));
    free(m1);
    partial_gen_free(g1);
    partial_gen_free(g2);

    /* bz2 patches are another format: a miss on an xz-filled cache */
    g1 = generate(fx, fx->to_mar, PARTIAL_FMT_BZ2, &ops);
    partial_gen_stats(g1, &s1);
    assert_int_equal(s1.cache_hits, 0);
    assert_int_equal(s1.cache_misses, 4);
    partial_gen_free(g1);
    mem_free(&c);
}

static void test_cache_threshold(void **state)
{
    struct fixture *fx = *state;
    struct mem_cache c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct partial_cache_ops ops = mem_ops(&c, UINT64_MAX);
    struct partial_gen *g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops);
    struct partial_stats st;

    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_bypass, 6);
    assert_int_equal(c.gets + c.puts + c.drops, 0);
    partial_gen_free(g);
    mem_free(&c);
}

static void test_cache_corrupt_entry_regenerated(void **state)
{
    struct fixture *fx = *state;
    struct mem_cache c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct partial_cache_ops ops = mem_ops(&c, 1024);
    struct partial_gen *g;
    struct partial_stats st;
    uint8_t *junk;

    partial_gen_free(generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops));
    assert_int_equal(c.n, 4);
    /* entry 0: bytes flipped in the middle (xz's CRC or the patch catches
       it); entry 1: a valid xz stream of a patch for other files */
    c.e[0].data[c.e[0].len / 2] ^= 0x55;
    junk = malloc(c.e[2].len);
    memcpy(junk, c.e[2].data, c.e[2].len);
    free(c.e[1].data);
    c.e[1].data = junk;
    c.e[1].len = c.e[2].len;

    g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops); /* verify inside passes */
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_corrupt, 2);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(c.drops, 2);
    assert_int_equal(c.puts, 4 + 2); /* regenerated and stored again */
    partial_gen_free(g);

    /* now all four are good again */
    g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_hits, 4);
    assert_int_equal(st.cache_corrupt, 0);
    partial_gen_free(g);
    mem_free(&c);
}

/* With the digest memo, a second locale's hits decompress nothing; a
   corrupt entry taken that way is caught when the partial is verified,
   dropped, regenerated, and the partial packed again. */
static void test_cache_memo_lazy_hits(void **state)
{
    struct fixture *fx = *state;
    struct mem_cache c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct partial_cache_ops ops = mem_ops(&c, 1024);
    struct partial_gen *g;
    struct partial_stats st;
    unsigned before;

    ops.digest_get = mem_digest_get;
    ops.digest_put = mem_digest_put;
    g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_misses, 4);
    assert_true(c.n_d >= 12); /* both files of each compared pair */
    partial_gen_free(g);

    before = c.digest_hits;
    g = generate(fx, fx->to2_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_hits, 4);
    assert_int_equal(st.cache_misses, 0);
    /* the four hits took both digests from the memo */
    assert_true(c.digest_hits - before >= 8);
    assert_int_equal(info_of(g, "libxul.so")->choice, PARTIAL_PATCH);
    assert_int_equal(info_of(g, "libxul.so")->to_size, tree_find(&fx->to, "libxul.so")->len);
    partial_gen_free(g);

    /* corrupt two entries: verification catches them, they are regenerated */
    for (size_t i = 0; i < 2; i++)
        c.e[i].data[c.e[i].len / 2] ^= 0x55;
    g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops); /* verify inside passes */
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_corrupt, 2);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(c.drops, 2);
    assert_int_equal(c.puts, 4 + 2);
    partial_gen_free(g);
    g = generate(fx, fx->to_mar, PARTIAL_FMT_XZ, &ops);
    partial_gen_stats(g, &st);
    assert_int_equal(st.cache_hits, 4);
    assert_int_equal(st.cache_corrupt, 0);
    partial_gen_free(g);
    mem_free(&c);
}

static void test_bad_inputs(void **state)
{
    struct fixture *fx = *state;
    struct partial_opts o;
    struct partial_gen *g = NULL;
    struct rd_error err = {0};
    struct tree t = {0};
    char path[400], junk[400];

    partial_opts_init(&o);
    o.workdir = fx->work;
    /* a to MAR without precomplete is not a complete update */
    tree_add_str(&t, "a.txt", "x");
    snprintf(path, sizeof(path), "%s/noprecomplete.mar", fx->dir);
    assert_int_equal(trees_pack(&t, path, "c", "1"), 0);
    assert_int_equal(partial_gen_open(fx->from_mar, path, &o, &g, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "precomplete"));
    assert_null(g);
    /* not a MAR at all */
    snprintf(junk, sizeof(junk), "%s/junk.mar", fx->dir);
    {
        FILE *f = fopen(junk, "w");
        fputs("MAR1 this is not an archive", f);
        fclose(f);
    }
    assert_int_not_equal(partial_gen_open(junk, fx->to_mar, &o, &g, &err), RD_OK);
    assert_non_null(strstr(err.msg, "from MAR"));
    assert_int_not_equal(partial_gen_open(fx->from_mar, "/nonexistent.mar", &o, &g, &err), RD_OK);
    assert_non_null(strstr(err.msg, "to MAR"));
    tree_free(&t);
}

/* relengd-mar make-partial: the same library without the daemon. */
static void test_cli_make_partial(void **state)
{
    struct fixture *fx = *state;
    char tool[512], out[400], dir[400];
    char *argv[] = {tool,         (char *)"make-partial",
                    (char *)"-t", (char *)"2",
                    (char *)"-V", (char *)"2.0.1",
                    fx->from_mar, fx->to_mar,
                    out,          NULL};
    pid_t pid;
    int status;
    struct mar *m = NULL, *from = NULL;
    struct rd_error err = {0};

    snprintf(tool, sizeof(tool), "%s/cli/mar/relengd-mar", TOP_BUILDDIR);
    snprintf(out, sizeof(out), "%s/cli.mar", fx->dir);
    assert_int_equal(posix_spawn(&pid, tool, NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(mar_open(out, &m, &err), RD_OK);
    assert_string_equal(mar_product_version(m), "2.0.1");
    assert_non_null(mar_find(m, "libxul.so.patch"));
    snprintf(dir, sizeof(dir), "%s/cli-applied", fx->dir);
    mkdir(dir, 0755);
    assert_int_equal(mar_open(fx->from_mar, &from, &err), RD_OK);
    assert_int_equal(mar_extract_all(from, dir, 0, &err), RD_OK);
    assert_int_equal(partial_apply_dir(m, dir, 0, NULL, &err), RD_OK);
    {
        char path[600];
        size_t len = 0;
        char *got;
        const struct tree_file *want = tree_find(&fx->to, "libxul.so");
        snprintf(path, sizeof(path), "%s/libxul.so", dir);
        got = trees_slurp(path, &len);
        assert_int_equal(len, want->len);
        assert_memory_equal(got, want->data, len);
        free(got);
    }
    mar_close(from);
    mar_close(m);
    trees_rmrf(dir);

    /* bad usage and a bad input: exit 2 and 1, nothing written */
    argv[6] = (char *)"/nonexistent.mar";
    snprintf(out, sizeof(out), "%s/cli-bad.mar", fx->dir);
    assert_int_equal(posix_spawn(&pid, tool, NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(access(out, F_OK), -1);
    argv[6] = NULL;
    assert_int_equal(posix_spawn(&pid, tool, NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_line_by_line),
        cmocka_unit_test(test_apply_reproduces_to_tree),
        cmocka_unit_test(test_verify_catches_a_wrong_partial),
        cmocka_unit_test(test_bz2_format_writes_v2_and_v3),
        cmocka_unit_test(test_cache_miss_then_hit),
        cmocka_unit_test(test_cache_threshold),
        cmocka_unit_test(test_cache_corrupt_entry_regenerated),
        cmocka_unit_test(test_cache_memo_lazy_hits),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_cli_make_partial),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
