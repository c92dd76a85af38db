/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/logchunk.h -- what to do with a log chunk: the server has
 * have bytes of the run's log; the worker sends len bytes that belong at
 * offset. Appends are idempotent: bytes the server has already are skipped,
 * a chunk that starts past the end is a gap, bytes past the size cap are
 * refused. Pure function (no host calls), any thread.
 */
#ifndef RELENGD_DISPATCH_LOGCHUNK_H
#define RELENGD_DISPATCH_LOGCHUNK_H

#include <stdint.h>

enum dispatch_chunk_verdict {
    DISPATCH_CHUNK_WRITE = 0, /* write skip.. of the chunk at have (write_len may be 0) */
    DISPATCH_CHUNK_GAP,       /* offset > have: 416, the worker resends from have */
    DISPATCH_CHUNK_TOOBIG,    /* the log would pass the cap: 413 (write_len bytes still fit) */
};

struct dispatch_chunk_plan {
    enum dispatch_chunk_verdict verdict;
    uint64_t skip;      /* bytes at the chunk's start the server has already */
    uint64_t write_len; /* bytes to append at have */
    uint64_t new_size;  /* the log's size afterwards */
};

struct dispatch_chunk_plan dispatch_chunk_plan(uint64_t have, uint64_t offset, uint64_t len,
                                               uint64_t cap);

#endif
