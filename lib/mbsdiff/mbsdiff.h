/* SPDX-License-Identifier: MIT */
/*
 * lib/mbsdiff/mbsdiff.h -- Mozilla's MBDIFF10 binary patches: make them (a
 * bsdiff-family differ on a libdivsufsort suffix array) and apply them.
 *
 * Patch layout (what Mozilla's mbsdiff writes and its updater's bspatch
 * reads; all u32 big-endian):
 *   0  "MBDIFF10"
 *   8  slen      length of the source (old) file
 *   12 scrc32    CRC-32/BZIP2 of the source file
 *   16 dlen      length of the result (new) file
 *   20 cblen     control block length (12 x number of triples)
 *   24 difflen   diff block length
 *   28 extralen  extra block length
 *   32 control block: triples (u32 x, u32 y, i32 z)
 *      diff block, extra block -- all uncompressed; the whole patch file is
 *      compressed afterwards (xz or bz2, e.g. with mar_compress).
 * Applying a triple: new += (diff[x bytes] + old[oldpos..]) bytewise mod 256,
 * oldpos += x; new += extra[y bytes]; oldpos += z.
 *
 * Memory: besides the caller's old and new buffers, mbsdiff_diff holds a
 * 32-bit suffix array of old (4 x old) and the control triples while it
 * scans, frees the suffix array, then builds the patch (at most 32 + control
 * + new bytes): peak about 5 x old + new in all, against bsdiff 4.3's 17 x
 * old. Inputs must be under 2 GiB (the format's offsets are 32-bit).
 *
 * Thread-safe (no shared state). Every function returns RD_OK or a negative
 * RD_E* code (core/module.h) and fills err when it is not NULL.
 */
#ifndef RELENGD_LIB_MBSDIFF_H
#define RELENGD_LIB_MBSDIFF_H

#include <stddef.h>
#include <stdint.h>

#include "core/module.h" /* struct rd_error, RD_E* only */

#ifdef __cplusplus
extern "C" {
#endif

#define MBSDIFF_MAGIC "MBDIFF10"
#define MBSDIFF_HEADER_LEN 32u
#define MBSDIFF_MAX_INPUT 0x7fffffffu /* each of old and new */

struct mbsdiff_header {
    uint32_t slen;     /* source length */
    uint32_t scrc32;   /* CRC-32/BZIP2 of the source */
    uint32_t dlen;     /* result length */
    uint32_t cblen;    /* control block bytes */
    uint32_t difflen;  /* diff block bytes */
    uint32_t extralen; /* extra block bytes */
};

/* Make a patch that turns old into new. *patch is malloc'ed (caller frees),
   *patch_len == 32 + cblen + difflen + extralen. old or new may be empty
   (NULL with length 0 is fine). RD_ETOOBIG for inputs over
   MBSDIFF_MAX_INPUT, RD_ENOMEM. */
int mbsdiff_diff(const uint8_t *old, size_t old_len, const uint8_t *new_buf, size_t new_len,
                 uint8_t **patch, size_t *patch_len, struct rd_error *err);

/* Parse and check the header: magic, and patch_len == 32 + cblen + difflen +
   extralen exactly, cblen a multiple of 12. RD_ECORRUPT otherwise. Pure. */
int mbsdiff_read_header(const uint8_t *patch, size_t patch_len, struct mbsdiff_header *h,
                        struct rd_error *err);

/* Apply patch to old: checks the header, then old_len == slen
   (RD_ECONFLICT "source length ...") and CRC-32/BZIP2(old) == scrc32
   (RD_ECONFLICT "source CRC ..."), then every triple against the blocks
   and old (RD_ECORRUPT on any overrun, a negative old position, a result
   longer or shorter than dlen, or unused diff/extra bytes). *out is
   malloc'ed (caller frees; non-NULL even when *out_len is 0). */
int mbsdiff_apply(const uint8_t *old, size_t old_len, const uint8_t *patch, size_t patch_len,
                  uint8_t **out, size_t *out_len, struct rd_error *err);

#ifdef __cplusplus
}
#endif

#endif
