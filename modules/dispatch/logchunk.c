/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/logchunk.c -- the log chunk offset logic (see
 * logchunk.h). No host calls; tested in tables of cases.
 */
#include "config.h"

#include "modules/dispatch/logchunk.h"

struct dispatch_chunk_plan dispatch_chunk_plan(uint64_t have, uint64_t offset, uint64_t len,
                                               uint64_t cap)
{
    struct dispatch_chunk_plan p = {.verdict = DISPATCH_CHUNK_WRITE, .new_size = have};
    uint64_t end;

    if (offset > have) {
        p.verdict = DISPATCH_CHUNK_GAP;
        return p;
    }
    end = len > UINT64_MAX - offset ? UINT64_MAX : offset + len;
    if (end <= have)
        return p; /* a repeat: everything is there already */
    p.skip = have - offset;
    p.write_len = end - have;
    if (end > cap) {
        /* Keep what still fits, refuse the rest. */
        p.verdict = DISPATCH_CHUNK_TOOBIG;
        p.write_len = have >= cap ? 0 : cap - have;
    }
    p.new_size = have + p.write_len;
    return p;
}
