/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/cache.h -- the diff cache: compressed patches keyed by
 * (SHA-256 of the from file, SHA-256 of the to file, patch format), stored
 * as files under cache_dir with an index in the table partials_cache
 * (size, time the diff took, last use, hits). A total size cap evicts the
 * least recently used entries; files below cache_min_size bypass the cache
 * (see README.md for the measurement behind the default). An optional
 * remote cache (HTTP PUT/GET, or S3 with SigV4) is consulted on a local
 * miss and filled on every store, so several appliances share diffs.
 *
 * The file name is not part of the key: identical bytes make identical
 * patches whatever they are called, which is what lets locales share.
 *
 * Threads: partials_cache_new/free on the main thread (init/destroy); the
 * lookup functions (through struct partial_cache_ops) on pool threads, any
 * number at once; status on HTTP threads.
 */
#ifndef RELENGD_PARTIALS_CACHE_H
#define RELENGD_PARTIALS_CACHE_H

#include <stdatomic.h>

#include "core/module.h"
#include "lib/partial/generate.h"
#include "modules/partials/spec.h"

struct partials_cache;

/* Makes the directories, discards half-written files (".tmp-*") left by a
   crash and sums the index. conf is borrowed for the cache's life. */
int partials_cache_new(struct rd_host *h, const struct partials_conf *conf,
                       struct partials_cache **out);
void partials_cache_free(struct partials_cache *c); /* NULL-safe */

/* What one job got from the cache (filled by the ops' callbacks). */
struct partials_cache_use {
    struct partials_cache *c;
    _Atomic uint64_t ms_saved; /* diff time the hits did not spend */
    _Atomic uint64_t remote_hits;
};

/* Fills ops for the generation library; use must outlive the job's diffs. */
void partials_cache_ops(struct partials_cache_use *use, struct partial_cache_ops *ops);

/* Counts a finished job's cache outcomes (from the library's stats) and the
   diff time its hits saved into the metrics and status. Any thread. */
void partials_cache_count(struct partials_cache *c, const struct partial_stats *st,
                          uint64_t ms_saved);

/* {"entries","bytes","max_bytes","min_size","hits","misses","bypassed",
   "corrupt","evictions","remote":"http"|"s3"|null}: a new reference. Any thread. */
json_t *partials_cache_status(struct partials_cache *c);

#endif
