/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/generate.h -- making a partial update MAR from two complete
 * MARs, as Mozilla's make_incremental_update.sh does, in phases that a
 * caller can spread over threads:
 *
 *     partial_gen_open      unpack: open and validate both MARs, list and
 *                           classify their files (manifest.h rules)
 *     partial_gen_diff(i)   one work item per file present in both trees:
 *                           decompress both, hash, and when they differ get
 *                           the patch (cache or mbsdiff), compress it and
 *                           keep it only when strictly smaller than the
 *                           compressed full file. Items are independent:
 *                           call them from any threads, each index once.
 *     partial_gen_pack      write updatev3.manifest (and updatev2 for the
 *                           bz2 format) and the MAR, with the product
 *                           information of the to MAR (or the given one)
 *     partial_gen_verify    apply the new partial to the from tree (apply.h)
 *                           and check it reproduces every file of to, byte
 *                           for byte
 *
 * No host calls: used by the partials module (phases on the thread pool)
 * and by relengd-mar make-partial. The caller owns the threads; a struct
 * partial_gen is used by one thread at a time except for partial_gen_diff.
 */
#ifndef RELENGD_PARTIAL_GENERATE_H
#define RELENGD_PARTIAL_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h"
#include "lib/partial/manifest.h"

/* The compression of the partial: xz with updatev3.manifest (current), or
   bzip2 with updatev2 and updatev3 manifests (updaters before Firefox 56). */
enum partial_format {
    PARTIAL_FMT_XZ = 0,
    PARTIAL_FMT_BZ2 = 1,
};

struct partial_opts {
    enum partial_format format;
    struct partial_rules rules; /* rules.v2 is set from format */
    const char *channel;        /* product information; NULL: the to MAR's */
    const char *version;        /* NULL: the to MAR's */
    uint32_t xz_preset;         /* for what we compress; partial_opts_init: 6 */
    bool bcj_x86;               /* BCJ x86 filter on full files (x86 / x86_64 builds) */
    size_t max_entry;           /* largest decompressed file; 0: MAR_DEFAULT_MAX_ENTRY */
    const char *workdir;        /* existing directory for verification; NULL: no verify */
};

/* Defaults: xz, preset 6, main executable "firefox.exe", no extra forced
   files, no BCJ. */
void partial_opts_init(struct partial_opts *o);

/* The cache key of a diff: both files' SHA-256 and the patch format. The
   file name is not part of it: the same bytes give the same patch whatever
   they are called, which is what lets locales share entries. */
struct partial_cache_key {
    uint8_t from_sha256[32];
    uint8_t to_sha256[32];
    const char *format; /* "mbdiff10+xz" or "mbdiff10+bz2" */
    uint64_t from_size, to_size;
};

/* A patch cache (the partials module's disk cache, or none). Called from
   partial_gen_diff's threads: every function must be thread-safe. */
struct partial_cache_ops {
    void *arg;
    uint64_t min_size; /* to files smaller than this bypass the cache */
    /* RD_OK with *data (malloc'ed, the compressed patch; the library frees
       it) and *len; RD_ENOTFOUND on a miss; anything else counts as a miss. */
    int (*get)(void *arg, const struct partial_cache_key *k, uint8_t **data, size_t *len);
    /* Store a freshly made compressed patch that took diff_ms to make. */
    void (*put)(void *arg, const struct partial_cache_key *k, const uint8_t *data, size_t len,
                uint64_t diff_ms);
    /* The entry get returned does not turn from into to: drop it. */
    void (*drop)(void *arg, const struct partial_cache_key *k);
    /* Optional, both or neither: a memo of content digests keyed by the
       SHA-256 of an entry's stored (compressed) bytes, so that files whose
       archives carry the same stored bytes as before (the other locales of
       a release) are neither decompressed nor hashed again. get: RD_OK and
       the content's SHA-256 and size, or RD_ENOTFOUND. A wrong memo entry
       cannot produce a wrong partial: verification compares every file and
       falls back to decompressing. */
    int (*digest_get)(void *arg, const uint8_t stored_sha256[32], uint8_t content_sha256[32],
                      uint64_t *size);
    void (*digest_put)(void *arg, const uint8_t stored_sha256[32], const uint8_t content_sha256[32],
                       uint64_t size);
};

enum partial_cache_outcome {
    PARTIAL_CACHE_NONE = 0,    /* not looked up (identical, or no cache) */
    PARTIAL_CACHE_BYPASS = 1,  /* below min_size */
    PARTIAL_CACHE_MISS = 2,    /* diffed, then stored */
    PARTIAL_CACHE_HIT = 3,     /* patch from the cache (checked by applying it, at once or
                                  when the partial is verified) */
    PARTIAL_CACHE_CORRUPT = 4, /* cached patch did not reproduce to: dropped, diffed again */
};

/* One diff work item, after partial_gen_diff ran on it. */
struct partial_diff_info {
    const char *path;
    uint64_t from_size, to_size; /* decompressed */
    enum partial_choice choice;  /* SAME, PATCH or FULL */
    enum partial_cache_outcome cache;
    uint64_t patch_size; /* compressed patch (0 if SAME) */
    uint64_t full_size;  /* compressed full file (0 if SAME) */
    uint64_t ms;         /* time of the item */
    bool done;
};

struct partial_stats {
    size_t n_from, n_to; /* files of each tree (manifests excluded) */
    size_t n_diffs;      /* work items */
    size_t n_same, n_patch, n_full;
    size_t cache_hits, cache_misses, cache_corrupt, cache_bypass;
    uint64_t bytes_from_cache; /* compressed patch bytes reused */
    uint64_t partial_size;     /* the written MAR, after pack */
    size_t n_entries;          /* MAR entries (manifests included), after pack */
};

struct partial_gen;

/* Opens both MARs and plans the work. Refuses (RD_EINVAL, err names it) a
   to MAR without precomplete, a name that manifest.h or mar_name_check
   refuses; RD_ECORRUPT for a broken archive. */
int partial_gen_open(const char *from_mar, const char *to_mar, const struct partial_opts *o,
                     struct partial_gen **out, struct rd_error *err);
void partial_gen_free(struct partial_gen *g); /* NULL-safe */

/* Work items, the biggest to file first (so a pool taking them in order
   ends with small ones and keeps every core busy). */
size_t partial_gen_n_diffs(const struct partial_gen *g);
/* Runs work item i (0 <= i < n_diffs); cache may be NULL (the same ops for
   every item: verification uses them again). Thread-safe for distinct i.
   RD_OK, or the error of decompressing / diffing.

   Fast paths: identical stored bytes are unchanged files without
   decompressing. With the digest memo, a file pair whose digests are both
   known and whose patch is cached is taken without decompressing either:
   such a hit is checked when the partial is verified, and if its file does
   not come out right the entry is dropped, the file diffed again, the
   partial packed again and verified again (counted as corrupt). */
int partial_gen_diff(struct partial_gen *g, size_t i, const struct partial_cache_ops *cache,
                     struct rd_error *err);
/* Item i's outcome (borrowed until partial_gen_free). */
const struct partial_diff_info *partial_gen_diff_info(const struct partial_gen *g, size_t i);

/* Builds the manifests and writes the partial to out_path (atomically).
   Every diff item must have run (RD_ECONFLICT otherwise). */
int partial_gen_pack(struct partial_gen *g, const char *out_path, struct rd_error *err);
/* The v3 manifest text after pack (borrowed), else NULL. */
const char *partial_gen_manifest(const struct partial_gen *g);

/* Applies out_path to a copy of the from tree under o->workdir and checks
   the result against the to tree (see apply.h for what conditional lines
   may leave out). RD_ECORRUPT naming the first file that differs. When the
   files that differ all came from unchecked cache hits, those are
   regenerated and out_path is rewritten and verified again first. */
int partial_gen_verify(struct partial_gen *g, const char *out_path, struct rd_error *err);

void partial_gen_stats(const struct partial_gen *g, struct partial_stats *st);
/* The product information the partial gets (borrowed). */
const char *partial_gen_channel(const struct partial_gen *g);
const char *partial_gen_version(const struct partial_gen *g);

#endif
