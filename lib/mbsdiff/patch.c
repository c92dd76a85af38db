/* SPDX-License-Identifier: MIT */
/*
 * lib/mbsdiff/patch.c -- read an MBDIFF10 header and apply a patch with the
 * checks Mozilla's updater makes (source length and CRC-32/BZIP2 first),
 * plus every bound of every control triple, in 64-bit arithmetic.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/hash/hash.h"
#include "lib/mbsdiff/mbsdiff.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int mbsdiff_read_header(const uint8_t *patch, size_t patch_len, struct mbsdiff_header *h,
                        struct rd_error *err)
{
    uint64_t want;

    if (patch_len < MBSDIFF_HEADER_LEN)
        return rd_error_set(err, RD_ECORRUPT, "patch of %zu bytes: shorter than its header",
                            patch_len);
    if (memcmp(patch, MBSDIFF_MAGIC, 8) != 0)
        return rd_error_set(err, RD_ECORRUPT, "not an MBDIFF10 patch");
    h->slen = be32(patch + 8);
    h->scrc32 = be32(patch + 12);
    h->dlen = be32(patch + 16);
    h->cblen = be32(patch + 20);
    h->difflen = be32(patch + 24);
    h->extralen = be32(patch + 28);
    if (h->cblen % 12)
        return rd_error_set(err, RD_ECORRUPT, "control block of %u bytes: not whole triples",
                            h->cblen);
    want = (uint64_t)MBSDIFF_HEADER_LEN + h->cblen + h->difflen + h->extralen;
    if (want != patch_len)
        return rd_error_set(err, RD_ECORRUPT, "patch is %zu bytes but its header accounts for %llu",
                            patch_len, (unsigned long long)want);
    return RD_OK;
}

int mbsdiff_apply(const uint8_t *old, size_t old_len, const uint8_t *patch, size_t patch_len,
                  uint8_t **out, size_t *out_len, struct rd_error *err)
{
    struct mbsdiff_header h;
    const uint8_t *ctrl, *diff, *extra;
    uint64_t newpos = 0, diffpos = 0, extrapos = 0;
    int64_t oldpos = 0;
    uint8_t *res = NULL;
    uint32_t crc;
    int rc;

    *out = NULL;
    *out_len = 0;
    rc = mbsdiff_read_header(patch, patch_len, &h, err);
    if (rc != RD_OK)
        return rc;
    if (old_len != h.slen)
        return rd_error_set(err, RD_ECONFLICT,
                            "source length %zu does not match the patch's %u (wrong source file)",
                            old_len, h.slen);
    crc = hash_crc32_bzip2(old_len ? old : (const uint8_t *)"", old_len);
    if (crc != h.scrc32)
        return rd_error_set(err, RD_ECONFLICT,
                            "source CRC %08x does not match the patch's %08x (wrong source file)",
                            crc, h.scrc32);
    res = malloc(h.dlen ? h.dlen : 1);
    if (!res)
        return rd_error_set(err, RD_ENOMEM, "result of %u bytes: out of memory", h.dlen);
    ctrl = patch + MBSDIFF_HEADER_LEN;
    diff = ctrl + h.cblen;
    extra = diff + h.difflen;
    for (uint32_t t = 0; t < h.cblen / 12; t++) {
        uint32_t x = be32(ctrl + 12 * t), y = be32(ctrl + 12 * t + 4);
        int32_t z = (int32_t)be32(ctrl + 12 * t + 8);

        if (x > h.dlen - newpos || x > h.difflen - diffpos ||
            oldpos + (int64_t)x > (int64_t)old_len) {
            rc = rd_error_set(err, RD_ECORRUPT,
                              "triple %u: %u diff bytes overrun the result, the diff block or "
                              "the source",
                              t, x);
            goto out;
        }
        for (uint32_t i = 0; i < x; i++)
            res[newpos + i] = (uint8_t)(diff[diffpos + i] + old[oldpos + i]);
        newpos += x;
        diffpos += x;
        oldpos += x;
        if (y > h.dlen - newpos || y > h.extralen - extrapos) {
            rc = rd_error_set(err, RD_ECORRUPT,
                              "triple %u: %u extra bytes overrun the result or the extra block", t,
                              y);
            goto out;
        }
        memcpy(res + newpos, extra + extrapos, y);
        newpos += y;
        extrapos += y;
        oldpos += z;
        if (oldpos < 0 || oldpos > (int64_t)old_len) {
            rc = rd_error_set(err, RD_ECORRUPT,
                              "triple %u: seek by %d leaves the source (position %lld)", t, z,
                              (long long)oldpos);
            goto out;
        }
    }
    if (newpos != h.dlen || diffpos != h.difflen || extrapos != h.extralen) {
        rc = rd_error_set(err, RD_ECORRUPT,
                          "patch produced %llu of %u bytes, used %llu of %u diff and %llu of %u "
                          "extra bytes",
                          (unsigned long long)newpos, h.dlen, (unsigned long long)diffpos,
                          h.difflen, (unsigned long long)extrapos, h.extralen);
        goto out;
    }
    *out = res;
    *out_len = h.dlen;
    res = NULL;
out:
    free(res);
    return rc;
}
