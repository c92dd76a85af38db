/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/mar_int.h -- the parsed archive and byte-order helpers shared by
 * the files of lib/mar. Private to the library.
 */
#ifndef RELENGD_LIB_MAR_INT_H
#define RELENGD_LIB_MAR_INT_H

#include "lib/mar/mar.h"

#define MAR_ID "MAR1"
#define MAR_ID_LEN 4u
#define MAR_HEADER_LEN 8u          /* MAR1 + OffsetToIndex */
#define MAR_SIG_COUNT_OFFSET 16u   /* NumSignatures, after the u64 FileSize */
#define MAR_SIG_HEADER_END 20u     /* first signature entry */
#define MAR_INDEX_ENTRY_HEADER 12u /* offset, size, flags */
#define MAR_PIB_ID 1u              /* additional section: product information */
#define MAR_PIB_MAX_DATA 96u       /* libmar MAXADDITIONALBLOCKSIZE */

struct mar {
    uint8_t *buf; /* owned copy of the file */
    size_t len;
    uint32_t index_offset;
    bool has_sig_block;
    uint32_t sig_end;       /* first byte after the signature block (8 in old format) */
    uint32_t content_start; /* first byte entries may use */
    size_t n_sigs;
    struct mar_signature sigs[MAR_MAX_SIGNATURES];
    size_t n_sections;
    bool has_pib;
    const char *channel; /* into buf */
    const char *version; /* into buf */
    size_t n_entries;
    struct mar_entry *entries; /* names point into buf */
};

static inline uint32_t mar_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t mar_be64(const uint8_t *p)
{
    return (uint64_t)mar_be32(p) << 32 | mar_be32(p + 4);
}

static inline void mar_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void mar_put64(uint8_t *p, uint64_t v)
{
    mar_put32(p, (uint32_t)(v >> 32));
    mar_put32(p + 4, (uint32_t)v);
}

/* A byte sink for streamed decompression: called with each piece of output. */
typedef int (*mar_sink_fn)(void *arg, const uint8_t *data, size_t len, struct rd_error *err);

/* Decompress in (bz2/xz by magic; MAR_COMP_NONE passed through) into sink,
   refusing more than max_len bytes of output. compress.c. */
int mar_decompress_to(const uint8_t *in, size_t len, size_t max_len, mar_sink_fn sink, void *arg,
                      struct rd_error *err);

#endif
