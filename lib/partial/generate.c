/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/generate.c -- partial update generation in phases (see
 * generate.h): open/plan, per-file diff items (thread-safe for distinct
 * items), pack, verify by applying. No host calls.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash/hash.h"
#include "lib/mar/mar.h"
#include "lib/mbsdiff/mbsdiff.h"
#include "lib/partial/apply.h"
#include "lib/partial/generate.h"

struct gen_diff {
    struct partial_diff_info info;
    size_t to_index;
    const struct mar_entry *from_e, *to_e;
    uint8_t *patch; /* compressed patch, kept when the choice is PATCH */
    size_t patch_len;
    uint8_t *full; /* compressed full file when we had to compress it ourselves */
    size_t full_len;
    uint8_t to_sha256[32];   /* of the to file, for verify (when has_sha) */
    uint8_t from_sha256[32]; /* the cache key's other half */
    bool has_sha;
    bool lazy; /* a cache hit not yet checked by applying it */
    struct partial_cache_ops ops;
    bool has_ops;
};

struct partial_gen {
    struct partial_opts o;
    char *workdir;
    char *channel, *version;
    struct mar *from, *to;
    const char **from_names; /* sorted; borrowed from the from MAR */
    size_t n_from;
    const char **to_names; /* index order; borrowed from the to MAR */
    const struct mar_entry **to_entries;
    size_t n_to;
    const char **to_sorted;
    long *diff_of_to; /* to index -> diff index or -1 */
    struct gen_diff *diffs;
    size_t n_diffs; /* biggest to file first */
    struct partial_manifest man;
    bool packed;
    uint64_t partial_size;
    size_t n_entries;
};

void partial_opts_init(struct partial_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->format = PARTIAL_FMT_XZ;
    o->rules.main_exe = "firefox.exe";
    o->xz_preset = 6;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static enum mar_compression comp_of(const struct partial_gen *g)
{
    return g->o.format == PARTIAL_FMT_BZ2 ? MAR_COMP_BZ2 : MAR_COMP_XZ;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The script's list_files leaves the update manifests out of both trees. */
static bool is_manifest(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strcmp(base, "update.manifest") == 0 || strcmp(base, "updatev2.manifest") == 0 ||
           strcmp(base, "updatev3.manifest") == 0;
}

/* Lists the non-manifest entries of m, checking every name. */
static int list_entries(const struct mar *m, const char *which, const char ***names,
                        const struct mar_entry ***entries, size_t *n, struct rd_error *err)
{
    size_t count = mar_entry_count(m), k = 0;
    const char **v = calloc(count + 1, sizeof(*v));
    const struct mar_entry **ev = calloc(count + 1, sizeof(*ev));
    const char **sorted = NULL;
    int rc = RD_OK;

    if (!v || !ev) {
        rc = RD_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const struct mar_entry *e = mar_entry_get(m, i);
        if (mar_name_check(e->name, NULL) != RD_OK || !partial_path_ok(e->name)) {
            rc = rd_error_set(err, RD_EINVAL, "%s MAR: refusing entry name \"%.200s\"", which,
                              e->name);
            goto out;
        }
        if (is_manifest(e->name))
            continue;
        v[k] = e->name;
        ev[k] = e;
        k++;
    }
    sorted = malloc((k + 1) * sizeof(*sorted));
    if (!sorted) {
        rc = RD_ENOMEM;
        goto out;
    }
    memcpy(sorted, v, k * sizeof(*sorted));
    qsort(sorted, k, sizeof(*sorted), cmp_str);
    for (size_t i = 1; i < k; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = rd_error_set(err, RD_EINVAL, "%s MAR: entry \"%.200s\" appears twice", which,
                              sorted[i]);
            goto out;
        }
    *names = v;
    *n = k;
    v = NULL;
    if (entries) {
        *entries = ev;
        ev = NULL;
    }
out:
    free(sorted);
    free(v);
    free(ev);
    return rc;
}

void partial_gen_free(struct partial_gen *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_diffs; i++) {
        free(g->diffs[i].patch);
        free(g->diffs[i].full);
    }
    free(g->diffs);
    free(g->diff_of_to);
    partial_manifest_fini(&g->man);
    free(g->from_names);
    free(g->to_names);
    free(g->to_entries);
    free(g->to_sorted);
    mar_close(g->from);
    mar_close(g->to);
    free(g->channel);
    free(g->version);
    free(g->workdir);
    free(g);
}

/* Larger to entries first; ties in archive order (qsort is not stable). */
static int cmp_diff_size(const void *a, const void *b)
{
    const struct gen_diff *x = a, *y = b;

    if (x->to_e->size != y->to_e->size)
        return x->to_e->size > y->to_e->size ? -1 : 1;
    return x->to_index < y->to_index ? -1 : x->to_index > y->to_index;
}

int partial_gen_open(const char *from_mar, const char *to_mar, const struct partial_opts *o,
                     struct partial_gen **out, struct rd_error *err)
{
    struct partial_gen *g = calloc(1, sizeof(*g));
    struct rd_error sub = {0};
    const char *ch, *ver;
    int rc;

    *out = NULL;
    if (!g)
        return RD_ENOMEM;
    g->o = *o;
    g->o.rules.v2 = o->format == PARTIAL_FMT_BZ2;
    if (o->workdir && !(g->workdir = strdup(o->workdir))) {
        rc = RD_ENOMEM;
        goto out;
    }
    g->o.workdir = g->workdir;
    rc = mar_open(from_mar, &g->from, &sub);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "from MAR: %s", sub.msg);
        goto out;
    }
    rc = mar_open(to_mar, &g->to, &sub);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "to MAR: %s", sub.msg);
        goto out;
    }
    rc = list_entries(g->from, "from", &g->from_names, NULL, &g->n_from, err);
    if (rc == RD_OK)
        rc = list_entries(g->to, "to", &g->to_names, &g->to_entries, &g->n_to, err);
    if (rc != RD_OK)
        goto out;
    qsort(g->from_names, g->n_from, sizeof(*g->from_names), cmp_str);
    if (!partial_has_precomplete(g->to_names, g->n_to)) {
        rc = rd_error_set(err, RD_EINVAL, "to MAR: no precomplete file (not a complete update?)");
        goto out;
    }
    ch = o->channel ? o->channel : mar_channel(g->to);
    ver = o->version ? o->version : mar_product_version(g->to);
    if (!ch || !ver) {
        rc = rd_error_set(err, RD_EINVAL,
                          "to MAR has no product information: give a channel and a version");
        goto out;
    }
    g->channel = strdup(ch);
    g->version = strdup(ver);
    g->to_sorted = malloc((g->n_to + 1) * sizeof(*g->to_sorted));
    g->diff_of_to = malloc((g->n_to + 1) * sizeof(*g->diff_of_to));
    g->diffs = calloc(g->n_to + 1, sizeof(*g->diffs));
    if (!g->channel || !g->version || !g->to_sorted || !g->diff_of_to || !g->diffs) {
        rc = RD_ENOMEM;
        goto out;
    }
    memcpy(g->to_sorted, g->to_names, g->n_to * sizeof(*g->to_sorted));
    qsort(g->to_sorted, g->n_to, sizeof(*g->to_sorted), cmp_str);
    /* a work item per file in both trees that is neither forced nor add-if-not */
    for (size_t i = 0; i < g->n_to; i++) {
        const char *name = g->to_names[i];
        struct gen_diff *d;

        g->diff_of_to[i] = -1;
        if (!bsearch(&name, g->from_names, g->n_from, sizeof(*g->from_names), cmp_str) ||
            partial_classify(&g->o.rules, name) != PARTIAL_CLASS_DIFF)
            continue;
        d = &g->diffs[g->n_diffs];
        d->to_index = i;
        d->to_e = g->to_entries[i];
        d->from_e = mar_find(g->from, name);
        d->info.path = name;
        g->n_diffs++;
    }
    /* biggest first: a pool that takes items in order then ends with the
       small ones, which keeps every core busy until the end */
    if (g->n_diffs > 1)
        qsort(g->diffs, g->n_diffs, sizeof(*g->diffs), cmp_diff_size);
    for (size_t k = 0; k < g->n_diffs; k++)
        g->diff_of_to[g->diffs[k].to_index] = (long)k;
    *out = g;
    g = NULL;
out:
    partial_gen_free(g);
    return rc;
}

size_t partial_gen_n_diffs(const struct partial_gen *g)
{
    return g->n_diffs;
}

const struct partial_diff_info *partial_gen_diff_info(const struct partial_gen *g, size_t i)
{
    return i < g->n_diffs ? &g->diffs[i].info : NULL;
}

/* A cached compressed patch is good if it turns old into exactly new. */
static bool cached_patch_ok(const uint8_t *cpatch, size_t clen, const uint8_t *old, size_t old_len,
                            const uint8_t *new_buf, size_t new_len, size_t max_entry)
{
    uint8_t *raw = NULL, *result = NULL;
    size_t raw_len = 0, result_len = 0;
    bool ok = false;

    if (mar_decompress(cpatch, clen, max_entry + MBSDIFF_HEADER_LEN + 16u * 1024 * 1024, &raw,
                       &raw_len, NULL) == RD_OK &&
        mbsdiff_apply(old, old_len, raw, raw_len, &result, &result_len, NULL) == RD_OK)
        ok = result_len == new_len && memcmp(result, new_buf, new_len) == 0;
    free(raw);
    free(result);
    return ok;
}

static const char *format_name(enum mar_compression comp)
{
    return comp == MAR_COMP_BZ2 ? "mbdiff10+bz2" : "mbdiff10+xz";
}

/* The SHA-256 of an entry's stored (compressed) bytes. */
static int stored_digest(const struct mar *m, const struct mar_entry *e, uint8_t out[32])
{
    return hash_buf(HASH_SHA256, mar_entry_stored(m, e), e->size, out, NULL);
}

/* The memo's content digest and size of entry e, if it has them. */
static bool memo_get(const struct partial_cache_ops *ops, const struct mar *m,
                     const struct mar_entry *e, uint8_t content[32], uint64_t *size)
{
    uint8_t st[32];

    return ops && ops->digest_get && stored_digest(m, e, st) == RD_OK &&
           ops->digest_get(ops->arg, st, content, size) == RD_OK;
}

static void memo_put(const struct partial_cache_ops *ops, const struct mar *m,
                     const struct mar_entry *e, const uint8_t content[32], uint64_t size)
{
    uint8_t st[32];

    if (ops && ops->digest_put && stored_digest(m, e, st) == RD_OK)
        ops->digest_put(ops->arg, st, content, size);
}

/* The full work of an item: decompress both files, hash them, then the
   cached patch (checked by applying it) or a new diff. known_miss: the
   cache was just asked for this pair and has nothing. */
static int diff_strict(struct partial_gen *g, struct gen_diff *d,
                       const struct partial_cache_ops *cache, bool known_miss, struct rd_error *err)
{
    uint8_t *old = NULL, *new_buf = NULL, *raw = NULL, *cpatch = NULL;
    size_t old_len = 0, new_len = 0, raw_len = 0, cpatch_len = 0;
    struct partial_cache_key key;
    struct rd_error sub = {0};
    enum mar_compression comp = comp_of(g);
    uint64_t t_diff;
    bool use_cache;
    int rc;

    memset(&key, 0, sizeof(key));
    rc = mar_extract_mem(g->from, d->from_e, g->o.max_entry, &old, &old_len, &sub);
    if (rc == RD_OK)
        rc = mar_extract_mem(g->to, d->to_e, g->o.max_entry, &new_buf, &new_len, &sub);
    if (rc != RD_OK) {
        rd_error_set(err, rc, "%.200s: %s", d->info.path, sub.msg);
        goto out;
    }
    d->info.from_size = old_len;
    d->info.to_size = new_len;
    /* verify compares the applied file with this digest instead of
       decompressing the to file a second time */
    rc = hash_buf(HASH_SHA256, new_buf, new_len, d->to_sha256, err);
    if (rc == RD_OK)
        rc = hash_buf(HASH_SHA256, old, old_len, d->from_sha256, err);
    if (rc != RD_OK)
        goto out;
    d->has_sha = true;
    memo_put(cache, g->from, d->from_e, d->from_sha256, old_len);
    memo_put(cache, g->to, d->to_e, d->to_sha256, new_len);
    if (old_len == new_len && memcmp(old, new_buf, old_len) == 0) {
        d->info.choice = PARTIAL_SAME;
        goto done;
    }
    use_cache = cache && cache->get;
    if (use_cache) {
        key.format = format_name(comp);
        key.from_size = old_len;
        key.to_size = new_len;
        memcpy(key.from_sha256, d->from_sha256, 32);
        memcpy(key.to_sha256, d->to_sha256, 32);
        if (new_len < cache->min_size) {
            d->info.cache = PARTIAL_CACHE_BYPASS;
            use_cache = false;
        } else if (!known_miss && cache->get(cache->arg, &key, &cpatch, &cpatch_len) == RD_OK) {
            if (cached_patch_ok(cpatch, cpatch_len, old, old_len, new_buf, new_len,
                                g->o.max_entry ? g->o.max_entry : MAR_DEFAULT_MAX_ENTRY)) {
                d->info.cache = PARTIAL_CACHE_HIT;
            } else {
                d->info.cache = PARTIAL_CACHE_CORRUPT;
                if (cache->drop)
                    cache->drop(cache->arg, &key);
                free(cpatch);
                cpatch = NULL;
            }
        }
    }
    if (!cpatch) {
        t_diff = mono_ms();
        rc = mbsdiff_diff(old, old_len, new_buf, new_len, &raw, &raw_len, &sub);
        /* patches are compressed without BCJ, as the script does */
        if (rc == RD_OK)
            rc =
                mar_compress(comp, g->o.xz_preset, false, raw, raw_len, &cpatch, &cpatch_len, &sub);
        if (rc != RD_OK) {
            rd_error_set(err, rc, "%.200s: %s", d->info.path, sub.msg);
            goto out;
        }
        if (use_cache) {
            if (d->info.cache != PARTIAL_CACHE_CORRUPT)
                d->info.cache = PARTIAL_CACHE_MISS;
            if (cache->put)
                cache->put(cache->arg, &key, cpatch, cpatch_len, mono_ms() - t_diff);
        }
    }
    /* the compressed full file: the to MAR's own bytes when they are in the
       partial's compression already, else compress it as the script does */
    if (mar_entry_compression(g->to, d->to_e) == comp) {
        d->info.full_size = d->to_e->size;
    } else {
        rc = mar_compress(comp, g->o.xz_preset, g->o.bcj_x86, new_buf, new_len, &d->full,
                          &d->full_len, &sub);
        if (rc != RD_OK) {
            rd_error_set(err, rc, "%.200s: %s", d->info.path, sub.msg);
            goto out;
        }
        d->info.full_size = d->full_len;
    }
    d->info.patch_size = cpatch_len;
    /* strictly smaller: a tie ships the full file */
    if (cpatch_len < d->info.full_size) {
        d->info.choice = PARTIAL_PATCH;
        d->patch = cpatch;
        d->patch_len = cpatch_len;
        cpatch = NULL;
        free(d->full);
        d->full = NULL;
        d->full_len = 0;
    } else {
        d->info.choice = PARTIAL_FULL;
    }
done:
    rc = RD_OK;
out:
    free(old);
    free(new_buf);
    free(raw);
    free(cpatch);
    return rc;
}

/* The cheap path: both digests from the memo and the patch from the cache,
   nothing decompressed. RD_OK when it decided the item; RD_ENOTFOUND when
   the strict path must run (*asked tells whether the cache said no). */
static int diff_lazy(struct partial_gen *g, struct gen_diff *d,
                     const struct partial_cache_ops *cache, bool *asked)
{
    struct partial_cache_key key;
    uint8_t *data = NULL;
    size_t len = 0;

    *asked = false;
    memset(&key, 0, sizeof(key));
    if (!cache || !cache->get || !cache->digest_get ||
        mar_entry_compression(g->to, d->to_e) != comp_of(g) ||
        !memo_get(cache, g->from, d->from_e, key.from_sha256, &key.from_size) ||
        !memo_get(cache, g->to, d->to_e, key.to_sha256, &key.to_size) ||
        key.to_size < cache->min_size)
        return RD_ENOTFOUND;
    key.format = format_name(comp_of(g));
    *asked = true;
    if (cache->get(cache->arg, &key, &data, &len) != RD_OK)
        return RD_ENOTFOUND;
    memcpy(d->from_sha256, key.from_sha256, 32);
    memcpy(d->to_sha256, key.to_sha256, 32);
    d->has_sha = true;
    d->info.from_size = key.from_size;
    d->info.to_size = key.to_size;
    d->info.cache = PARTIAL_CACHE_HIT;
    d->info.full_size = d->to_e->size;
    d->info.patch_size = len;
    if (len < d->info.full_size) {
        d->info.choice = PARTIAL_PATCH;
        d->patch = data;
        d->patch_len = len;
        d->lazy = true; /* checked when the partial is verified */
    } else {
        d->info.choice = PARTIAL_FULL;
        free(data);
    }
    return RD_OK;
}

int partial_gen_diff(struct partial_gen *g, size_t i, const struct partial_cache_ops *cache,
                     struct rd_error *err)
{
    struct gen_diff *d;
    uint64_t t0 = mono_ms();
    bool asked = false;
    int rc;

    if (i >= g->n_diffs)
        return rd_error_set(err, RD_EINVAL, "no diff item %zu", i);
    d = &g->diffs[i];
    if (cache) {
        d->ops = *cache;
        d->has_ops = true;
    }
    /* the same stored bytes are the same file: nothing to decompress */
    if (d->from_e->size == d->to_e->size &&
        memcmp(mar_entry_stored(g->from, d->from_e), mar_entry_stored(g->to, d->to_e),
               d->to_e->size) == 0) {
        d->info.choice = PARTIAL_SAME;
        if (memo_get(cache, g->to, d->to_e, d->to_sha256, &d->info.to_size)) {
            d->has_sha = true;
            d->info.from_size = d->info.to_size;
        }
        rc = RD_OK;
    } else if (diff_lazy(g, d, cache, &asked) == RD_OK) {
        rc = RD_OK;
    } else {
        rc = diff_strict(g, d, cache, asked, err);
    }
    if (rc == RD_OK) {
        d->info.ms = mono_ms() - t0;
        d->info.done = true;
    }
    return rc;
}

/* The compressed bytes to ship for to entry index ti (full file). *owned
   is set when the buffer must be freed by the caller. */
static int full_bytes(struct partial_gen *g, size_t ti, const uint8_t **data, size_t *len,
                      uint8_t **owned, struct rd_error *err)
{
    const struct mar_entry *e = g->to_entries[ti];
    long di = g->diff_of_to[ti];
    enum mar_compression comp = comp_of(g);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rc;

    *owned = NULL;
    if (di >= 0 && g->diffs[di].full) {
        *data = g->diffs[di].full;
        *len = g->diffs[di].full_len;
        return RD_OK;
    }
    if (mar_entry_compression(g->to, e) == comp) {
        *data = mar_entry_stored(g->to, e);
        *len = e->size;
        return RD_OK;
    }
    rc = mar_extract_mem(g->to, e, g->o.max_entry, &plain, &plain_len, err);
    if (rc == RD_OK)
        rc = mar_compress(comp, g->o.xz_preset, g->o.bcj_x86, plain, plain_len, owned, len, err);
    free(plain);
    *data = *owned;
    return rc;
}

static int read_removed_files(struct partial_gen *g, char **out, struct rd_error *err)
{
    const char *name = partial_removed_files_path(g->to_names, g->n_to);
    const struct mar_entry *e;
    uint8_t *buf = NULL, *t;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (!name)
        return RD_OK;
    e = mar_find(g->to, name);
    rc = mar_extract_mem(g->to, e, 16u * 1024 * 1024, &buf, &len, err);
    if (rc != RD_OK)
        return rc;
    if (memchr(buf, '\0', len)) {
        free(buf);
        return rd_error_set(err, RD_EINVAL, "%s holds a NUL byte", name);
    }
    t = realloc(buf, len + 1);
    if (!t) {
        free(buf);
        return RD_ENOMEM;
    }
    t[len] = '\0';
    *out = (char *)t;
    return RD_OK;
}

int partial_gen_pack(struct partial_gen *g, const char *out_path, struct rd_error *err)
{
    enum partial_choice *choice = NULL;
    struct mar_input *in = NULL;
    uint8_t **owned = NULL;
    uint8_t *v2 = NULL, *v3 = NULL;
    size_t v2_len = 0, v3_len = 0, n_in = 0, n_alloc;
    char *removed = NULL;
    struct mar_write_opts wo;
    struct partial_manifest_in min;
    enum mar_compression comp = comp_of(g);
    struct stat st;
    int rc;

    for (size_t i = 0; i < g->n_diffs; i++)
        if (!g->diffs[i].info.done)
            return rd_error_set(err, RD_ECONFLICT, "diff item %zu (%s) has not run", i,
                                g->diffs[i].info.path);
    partial_manifest_fini(&g->man);
    g->packed = false;
    choice = calloc(g->n_to + 1, sizeof(*choice));
    if (!choice)
        return RD_ENOMEM;
    for (size_t i = 0; i < g->n_diffs; i++)
        choice[g->diffs[i].to_index] = g->diffs[i].info.choice;
    rc = read_removed_files(g, &removed, err);
    if (rc != RD_OK)
        goto out;
    min = (struct partial_manifest_in){
        .from_files = g->from_names,
        .n_from = g->n_from,
        .to_files = g->to_names,
        .n_to = g->n_to,
        .choice = choice,
        .removed_files = removed,
    };
    rc = partial_manifest_build(&g->o.rules, &min, &g->man, err);
    if (rc != RD_OK)
        goto out;
    n_alloc = g->man.n_entries + 2;
    in = calloc(n_alloc, sizeof(*in));
    owned = calloc(n_alloc, sizeof(*owned));
    if (!in || !owned) {
        rc = RD_ENOMEM;
        goto out;
    }
    /* the manifests first, compressed like every entry */
    if (g->man.v2) {
        rc = mar_compress(comp, g->o.xz_preset, false, g->man.v2, strlen(g->man.v2), &v2, &v2_len,
                          err);
        if (rc != RD_OK)
            goto out;
        in[n_in++] = (struct mar_input){.name = "updatev2.manifest",
                                        .flags = 0644,
                                        .data = v2,
                                        .len = v2_len,
                                        .is_compressed = true};
    }
    rc = mar_compress(comp, g->o.xz_preset, false, g->man.v3, strlen(g->man.v3), &v3, &v3_len, err);
    if (rc != RD_OK)
        goto out;
    in[n_in++] = (struct mar_input){.name = "updatev3.manifest",
                                    .flags = 0644,
                                    .data = v3,
                                    .len = v3_len,
                                    .is_compressed = true};
    for (size_t k = 0; k < g->man.n_entries; k++) {
        const struct partial_entry *pe = &g->man.entries[k];
        size_t ti = pe->to_index;
        struct mar_input *mi = &in[n_in];

        mi->name = pe->name;
        mi->is_compressed = true;
        if (pe->is_patch) {
            const struct gen_diff *d = &g->diffs[g->diff_of_to[ti]];
            mi->flags = 0644;
            mi->data = d->patch;
            mi->len = d->patch_len;
        } else {
            const uint8_t *data = NULL;
            size_t len = 0;
            mi->flags = (g->to_entries[ti]->flags & 0111) ? 0755 : 0644;
            rc = full_bytes(g, ti, &data, &len, &owned[n_in], err);
            if (rc != RD_OK)
                goto out;
            mi->data = data;
            mi->len = len;
        }
        n_in++;
    }
    mar_write_opts_init(&wo);
    wo.compression = comp;
    wo.xz_preset = g->o.xz_preset;
    wo.has_product_info = true;
    wo.channel = g->channel;
    wo.product_version = g->version;
    rc = mar_write_file(&wo, in, n_in, out_path, err);
    if (rc != RD_OK)
        goto out;
    if (stat(out_path, &st) == 0)
        g->partial_size = (uint64_t)st.st_size;
    g->n_entries = n_in;
    g->packed = true;
out:
    if (owned)
        for (size_t k = 0; k < n_alloc; k++)
            free(owned[k]);
    free(owned);
    free(in);
    free(v2);
    free(v3);
    free(removed);
    free(choice);
    return rc;
}

const char *partial_gen_manifest(const struct partial_gen *g)
{
    return g->packed ? g->man.v3 : NULL;
}

/* ------------------------------------------------------------- verify */

struct leftover {
    const struct partial_gen *g;
    size_t root_len;
    char first[512];
};

static __thread struct leftover *walk_ctx;

static int walk_files(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const char *rel;

    (void)st;
    (void)ftw;
    if (flag != FTW_F && flag != FTW_SL)
        return 0;
    rel = path + walk_ctx->root_len + 1;
    if (is_manifest(rel))
        return 0;
    if (!bsearch(&rel, walk_ctx->g->to_sorted, walk_ctx->g->n_to, sizeof(*walk_ctx->g->to_sorted),
                 cmp_str)) {
        snprintf(walk_ctx->first, sizeof(walk_ctx->first), "%s", rel);
        return 1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Whether the file at path holds exactly what entry e of m decompresses to. */
static int same_as_entry(const struct partial_gen *g, const struct mar *m,
                         const struct mar_entry *e, const char *path, bool *same,
                         struct rd_error *err)
{
    uint8_t *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    int rc = partial_read_file(path, &a, &a_len, NULL);

    if (rc != RD_OK) {
        rd_error_set(err, rc, "verify: cannot read %s", path);
        return rc;
    }
    rc = mar_extract_mem(m, e, g->o.max_entry, &b, &b_len, err);
    if (rc == RD_OK)
        *same = a_len == b_len && memcmp(a, b, a_len) == 0;
    free(a);
    free(b);
    return rc;
}

/* Whether the file at path has the SHA-256 digest want. */
static int same_as_digest(const char *path, const uint8_t want[32], bool *same,
                          struct rd_error *err)
{
    uint8_t *a = NULL, got[32];
    size_t a_len = 0;
    int rc = partial_read_file(path, &a, &a_len, NULL);

    if (rc != RD_OK)
        return rd_error_set(err, rc, "verify: cannot read %s", path);
    rc = hash_buf(HASH_SHA256, a, a_len, got, err);
    if (rc == RD_OK)
        *same = memcmp(got, want, 32) == 0;
    free(a);
    return rc;
}

/* The stand-in for an installed file whose bytes verification never needs
   (see install_from_tree): its name, so no two are alike. */
static int marker_text(const char *name, char *out, size_t len)
{
    return snprintf(out, len, "relengd partial verification stand-in for %s\n", name) < (int)len
               ? RD_OK
               : RD_EINVAL;
}

static bool is_marker(const char *path, const char *name)
{
    char want[PATH_MAX + 64];
    uint8_t *got = NULL;
    size_t len = 0;
    bool yes = false;

    if (marker_text(name, want, sizeof(want)) == RD_OK &&
        partial_read_file(path, &got, &len, NULL) == RD_OK)
        yes = len == strlen(want) && memcmp(got, want, len) == 0;
    free(got);
    return yes;
}

/* Lays the from tree out in dir for the partial to be applied to. Only the
   files whose bytes the updater reads get their real contents: the ones
   patched, and add-if-not targets (kept when present). Every other file --
   unchanged, replaced whole, removed -- gets a small stand-in naming it: the
   partial must replace or remove the ones it changes (any it misses no
   longer compares equal), and an unchanged file must come out untouched.
   This spares decompressing most of the from tree. */
static int install_from_tree(struct partial_gen *g, const char *dir, struct rd_error *err)
{
    char marker[PATH_MAX + 64];
    struct rd_error sub = {0};
    bool *patched = calloc(g->n_from + 1, sizeof(*patched));
    int rc = RD_OK;

    if (!patched)
        return RD_ENOMEM;
    for (size_t i = 0; i < g->n_diffs; i++) {
        const char *name = g->diffs[i].info.path;
        const char **hit;
        if (g->diffs[i].info.choice != PARTIAL_PATCH)
            continue;
        hit = bsearch(&name, g->from_names, g->n_from, sizeof(*g->from_names), cmp_str);
        if (hit)
            patched[hit - g->from_names] = true;
    }
    for (size_t k = 0; k < g->n_from && rc == RD_OK; k++) {
        const char *name = g->from_names[k];
        const struct mar_entry *e = mar_find(g->from, name);
        bool real =
            patched[k] || (bsearch(&name, g->to_sorted, g->n_to, sizeof(*g->to_sorted), cmp_str) &&
                           partial_classify(&g->o.rules, name) == PARTIAL_CLASS_ADD_IF_NOT);

        if (real) {
            uint8_t *data = NULL;
            size_t len = 0;
            rc = mar_extract_mem(g->from, e, g->o.max_entry, &data, &len, &sub);
            if (rc == RD_OK)
                rc = partial_tree_write(dir, name, data, len, e->flags, &sub);
            free(data);
        } else {
            rc = marker_text(name, marker, sizeof(marker));
            if (rc == RD_OK)
                rc = partial_tree_write(dir, name, marker, strlen(marker), e->flags, &sub);
        }
        if (rc != RD_OK)
            rd_error_set(err, rc, "verify: laying out the from tree: %.200s: %s", name, sub.msg);
    }
    free(patched);
    return rc;
}

static int verify_once(struct partial_gen *g, const char *out_path, struct rd_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct partial_apply_report rep = {0};
    struct mar *pm = NULL;
    struct rd_error sub = {0};
    struct leftover lo = {.g = g};
    bool made = false;
    int rc;

    if (!g->workdir)
        return rd_error_set(err, RD_EINVAL, "verify: no work directory");
    if (snprintf(dir, sizeof(dir), "%s/verify-XXXXXX", g->workdir) >= (int)sizeof(dir))
        return rd_error_set(err, RD_EINVAL, "verify: work directory path too long");
    if (!mkdtemp(dir))
        return rd_error_set(err, RD_EIO, "verify: mkdtemp %s: %s", dir, strerror(errno));
    made = true;
    rc = install_from_tree(g, dir, err);
    if (rc != RD_OK)
        goto out;
    rc = mar_open(out_path, &pm, &sub);
    if (rc == RD_OK)
        rc = partial_apply_dir(pm, dir, g->o.max_entry, &rep, &sub);
    if (rc != RD_OK) {
        rd_error_set(err, RD_ECORRUPT, "verify: applying the partial failed: %s", sub.msg);
        goto out;
    }
    for (size_t i = 0; i < g->n_to; i++) {
        const char *name = g->to_names[i];
        bool same = false;
        struct stat st;

        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
            rc = rd_error_set(err, RD_EINVAL, "verify: path too long: %.100s", name);
            goto out;
        }
        if (lstat(path, &st) != 0) {
            if (partial_apply_skipped(&rep, name))
                continue; /* a conditional line that did not apply */
            rc = rd_error_set(err, RD_ECORRUPT, "verify: %.200s is missing after applying", name);
            goto out;
        }
        if (g->diff_of_to[i] >= 0 && g->diffs[g->diff_of_to[i]].info.choice == PARTIAL_SAME &&
            is_marker(path, name)) {
            /* untouched, and the from file it stands for is the to file */
            same = true;
            rc = RD_OK;
        } else if (g->diff_of_to[i] >= 0 && g->diffs[g->diff_of_to[i]].has_sha)
            rc = same_as_digest(path, g->diffs[g->diff_of_to[i]].to_sha256, &same, err);
        else
            rc = same_as_entry(g, g->to, g->to_entries[i], path, &same, err);
        if (rc != RD_OK)
            goto out;
        if (!same && partial_apply_skipped(&rep, name)) {
            /* add-if-not kept the installed (from) file: it must be the from one */
            const struct mar_entry *fe = mar_find(g->from, name);
            if (fe) {
                rc = same_as_entry(g, g->from, fe, path, &same, err);
                if (rc != RD_OK)
                    goto out;
            }
        }
        if (!same) {
            rc = rd_error_set(err, RD_ECORRUPT,
                              "verify: %.200s differs from the to MAR after applying", name);
            goto out;
        }
    }
    lo.root_len = strlen(dir);
    walk_ctx = &lo;
    if (nftw(dir, walk_files, 16, FTW_PHYS) != 0) {
        rc = rd_error_set(err, RD_ECORRUPT, "verify: %.200s is left over after applying",
                          lo.first[0] ? lo.first : "a file");
        goto out;
    }
    rc = RD_OK;
out:
    walk_ctx = NULL;
    partial_apply_report_fini(&rep);
    mar_close(pm);
    if (made)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

void partial_gen_stats(const struct partial_gen *g, struct partial_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->n_from = g->n_from;
    st->n_to = g->n_to;
    st->n_diffs = g->n_diffs;
    for (size_t i = 0; i < g->n_diffs; i++) {
        const struct partial_diff_info *d = &g->diffs[i].info;
        if (!d->done)
            continue;
        if (d->choice == PARTIAL_SAME)
            st->n_same++;
        else if (d->choice == PARTIAL_PATCH)
            st->n_patch++;
        else
            st->n_full++;
        switch (d->cache) {
        case PARTIAL_CACHE_HIT:
            st->cache_hits++;
            st->bytes_from_cache += d->patch_size;
            break;
        case PARTIAL_CACHE_MISS:
            st->cache_misses++;
            break;
        case PARTIAL_CACHE_CORRUPT:
            st->cache_corrupt++;
            st->cache_misses++;
            break;
        case PARTIAL_CACHE_BYPASS:
            st->cache_bypass++;
            break;
        case PARTIAL_CACHE_NONE:
            break;
        }
    }
    st->partial_size = g->partial_size;
    st->n_entries = g->n_entries;
}

const char *partial_gen_channel(const struct partial_gen *g)
{
    return g->channel;
}

const char *partial_gen_version(const struct partial_gen *g)
{
    return g->version;
}

int partial_gen_verify(struct partial_gen *g, const char *out_path, struct rd_error *err)
{
    struct rd_error sub = {0};
    size_t n_lazy = 0;
    int rc = verify_once(g, out_path, err);

    if (rc != RD_ECORRUPT)
        return rc;
    for (size_t i = 0; i < g->n_diffs; i++)
        n_lazy += g->diffs[i].lazy;
    if (n_lazy == 0)
        return rc;
    /* Some patches came from the cache unchecked: check each of them now by
       applying it (the strict path), which drops and regenerates the ones
       that do not reproduce their file; then pack and verify again. */
    for (size_t i = 0; i < g->n_diffs; i++) {
        struct gen_diff *d = &g->diffs[i];
        const char *path = d->info.path;

        if (!d->lazy)
            continue;
        free(d->patch);
        d->patch = NULL;
        d->patch_len = 0;
        d->lazy = false;
        d->has_sha = false;
        memset(&d->info, 0, sizeof(d->info));
        d->info.path = path;
        rc = diff_strict(g, d, d->has_ops ? &d->ops : NULL, false, &sub);
        if (rc != RD_OK)
            return rd_error_set(err, rc, "verify: regenerating %.200s: %s", path, sub.msg);
        d->info.done = true;
    }
    rc = partial_gen_pack(g, out_path, err);
    if (rc != RD_OK)
        return rc;
    return verify_once(g, out_path, err);
}
