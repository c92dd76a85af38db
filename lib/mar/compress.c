/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/compress.c -- per-entry compression: xz (liblzma, CRC64 check,
 * optional x86 BCJ filter, as Mozilla's packaging writes) and bzip2 -9
 * (libbz2), and streamed decompression of one whole stream of either kind
 * with an output cap and a refusal of trailing bytes.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <bzlib.h>
#include <lzma.h>

#include "lib/mar/mar_int.h"

/* liblzma's decoder memory limit: generous for real dictionaries (the
   updater itself allows 64 MiB), small enough that a hostile header cannot
   make us allocate without bound. */
#define XZ_MEMLIMIT (256u * 1024u * 1024u)
#define CHUNK 65536u

/* ---------------------------------------------------------- growing buffer */

struct growbuf {
    uint8_t *p;
    size_t len, cap, max;
};

static int growbuf_sink(void *arg, const uint8_t *data, size_t len, struct rd_error *err)
{
    struct growbuf *g = arg;

    if (len > g->max - g->len)
        return rd_error_set(err, RD_ETOOBIG, "decompressed entry exceeds the limit of %zu bytes",
                            g->max);
    if (g->len + len > g->cap) {
        size_t ncap = g->cap ? g->cap : CHUNK;
        uint8_t *np;
        while (ncap < g->len + len)
            ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
        np = realloc(g->p, ncap);
        if (!np)
            return rd_error_set(err, RD_ENOMEM, "decompression: out of memory");
        g->p = np;
        g->cap = ncap;
    }
    memcpy(g->p + g->len, data, len);
    g->len += len;
    return RD_OK;
}

/* ------------------------------------------------------------- decoding */

static int xz_decode(const uint8_t *in, size_t len, size_t max_len, mar_sink_fn sink, void *arg,
                     struct rd_error *err)
{
    lzma_stream s = LZMA_STREAM_INIT;
    uint8_t *chunk = NULL;
    size_t total = 0;
    int rc = RD_OK;
    lzma_ret lr;

    if (lzma_stream_decoder(&s, XZ_MEMLIMIT, 0) != LZMA_OK)
        return rd_error_set(err, RD_ENOMEM, "xz: decoder setup failed");
    chunk = malloc(CHUNK);
    if (!chunk) {
        rc = rd_error_set(err, RD_ENOMEM, "xz: out of memory");
        goto out;
    }
    s.next_in = in;
    s.avail_in = len;
    for (;;) {
        s.next_out = chunk;
        s.avail_out = CHUNK;
        lr = lzma_code(&s, LZMA_FINISH);
        if (CHUNK - s.avail_out) {
            size_t n = CHUNK - s.avail_out;
            if (n > max_len - total) {
                rc = rd_error_set(err, RD_ETOOBIG,
                                  "decompressed entry exceeds the limit of %zu bytes", max_len);
                goto out;
            }
            total += n;
            rc = sink(arg, chunk, n, err);
            if (rc != RD_OK)
                goto out;
        }
        if (lr == LZMA_STREAM_END)
            break;
        if (lr == LZMA_OK)
            continue;
        if (lr == LZMA_MEMLIMIT_ERROR)
            rc = rd_error_set(err, RD_ETOOBIG, "xz: stream needs more than %u MiB to decode",
                              XZ_MEMLIMIT >> 20);
        else if (lr == LZMA_MEM_ERROR)
            rc = rd_error_set(err, RD_ENOMEM, "xz: out of memory");
        else if (lr == LZMA_BUF_ERROR)
            rc = rd_error_set(err, RD_ECORRUPT, "xz: truncated stream");
        else
            rc = rd_error_set(err, RD_ECORRUPT, "xz: corrupt stream (liblzma error %d)", (int)lr);
        goto out;
    }
    if (s.avail_in)
        rc =
            rd_error_set(err, RD_ECORRUPT, "xz: %zu bytes after the end of the stream", s.avail_in);
out:
    free(chunk);
    lzma_end(&s);
    return rc;
}

static int bz2_decode(const uint8_t *in, size_t len, size_t max_len, mar_sink_fn sink, void *arg,
                      struct rd_error *err)
{
    bz_stream s;
    char *chunk = NULL;
    size_t total = 0, left = len;
    int rc = RD_OK, br;

    memset(&s, 0, sizeof(s));
    if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
        return rd_error_set(err, RD_ENOMEM, "bzip2: decoder setup failed");
    chunk = malloc(CHUNK);
    if (!chunk) {
        rc = rd_error_set(err, RD_ENOMEM, "bzip2: out of memory");
        goto out;
    }
    s.next_in = (char *)(uintptr_t)in; /* libbz2 does not write through next_in */
    for (;;) {
        /* avail_in is an unsigned int: feed at most UINT_MAX at a time. */
        if (s.avail_in == 0 && left) {
            unsigned int n = left > UINT_MAX ? UINT_MAX : (unsigned int)left;
            s.avail_in = n;
            left -= n;
        }
        s.next_out = chunk;
        s.avail_out = CHUNK;
        br = BZ2_bzDecompress(&s);
        if (CHUNK - s.avail_out) {
            size_t n = CHUNK - s.avail_out;
            if (n > max_len - total) {
                rc = rd_error_set(err, RD_ETOOBIG,
                                  "decompressed entry exceeds the limit of %zu bytes", max_len);
                goto out;
            }
            total += n;
            rc = sink(arg, (const uint8_t *)chunk, n, err);
            if (rc != RD_OK)
                goto out;
        }
        if (br == BZ_STREAM_END)
            break;
        if (br != BZ_OK) {
            rc = rd_error_set(err, br == BZ_MEM_ERROR ? RD_ENOMEM : RD_ECORRUPT,
                              "bzip2: corrupt stream (libbz2 error %d)", br);
            goto out;
        }
        if (s.avail_in == 0 && !left && s.avail_out != 0) {
            rc = rd_error_set(err, RD_ECORRUPT, "bzip2: truncated stream");
            goto out;
        }
    }
    if (s.avail_in || left)
        rc = rd_error_set(err, RD_ECORRUPT, "bzip2: %zu bytes after the end of the stream",
                          (size_t)s.avail_in + left);
out:
    free(chunk);
    BZ2_bzDecompressEnd(&s);
    return rc;
}

int mar_decompress_to(const uint8_t *in, size_t len, size_t max_len, mar_sink_fn sink, void *arg,
                      struct rd_error *err)
{
    static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};

    if (max_len == 0)
        max_len = MAR_DEFAULT_MAX_ENTRY;
    if (len >= 6 && memcmp(in, xz_magic, 6) == 0)
        return xz_decode(in, len, max_len, sink, arg, err);
    if (len >= 3 && memcmp(in, "BZh", 3) == 0)
        return bz2_decode(in, len, max_len, sink, arg, err);
    if (len > max_len)
        return rd_error_set(err, RD_ETOOBIG, "entry exceeds the limit of %zu bytes", max_len);
    return len ? sink(arg, in, len, err) : RD_OK;
}

int mar_decompress(const void *in, size_t len, size_t max_len, uint8_t **out, size_t *out_len,
                   struct rd_error *err)
{
    static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
    struct growbuf g = {NULL, 0, 0, max_len ? max_len : MAR_DEFAULT_MAX_ENTRY};
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!(len >= 6 && memcmp(in, xz_magic, 6) == 0) && !(len >= 3 && memcmp(in, "BZh", 3) == 0))
        return rd_error_set(err, RD_ECORRUPT, "neither an xz nor a bzip2 stream");
    rc = mar_decompress_to(in, len, g.max, growbuf_sink, &g, err);
    if (rc == RD_OK && !g.p && !(g.p = malloc(1)))
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
    if (rc != RD_OK) {
        free(g.p);
        return rc;
    }
    *out = g.p;
    *out_len = g.len;
    return RD_OK;
}

/* ------------------------------------------------------------- encoding */

static int xz_encode(uint32_t preset, bool bcj_x86, const uint8_t *in, size_t len, uint8_t **out,
                     size_t *out_len, struct rd_error *err)
{
    lzma_options_lzma opt;
    lzma_filter filters[3];
    size_t cap = lzma_stream_buffer_bound(len), pos = 0;
    uint8_t *buf = NULL;
    lzma_ret lr;
    int i = 0;

    if (lzma_lzma_preset(&opt, preset))
        return rd_error_set(err, RD_EINVAL, "xz: unsupported preset %u", preset & 0xff);
    if (bcj_x86)
        filters[i++] = (lzma_filter){LZMA_FILTER_X86, NULL};
    filters[i++] = (lzma_filter){LZMA_FILTER_LZMA2, &opt};
    filters[i] = (lzma_filter){LZMA_VLI_UNKNOWN, NULL};
    if (cap == 0)
        return rd_error_set(err, RD_ETOOBIG, "xz: %zu bytes is too much to compress", len);
    buf = malloc(cap);
    if (!buf)
        return rd_error_set(err, RD_ENOMEM, "xz: out of memory");
    lr = lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC64, NULL, in, len, buf, &pos, cap);
    if (lr != LZMA_OK) {
        free(buf);
        return rd_error_set(err, lr == LZMA_MEM_ERROR ? RD_ENOMEM : RD_EINVAL,
                            "xz: compression failed (liblzma error %d)", (int)lr);
    }
    *out = buf;
    *out_len = pos;
    return RD_OK;
}

static int bz2_encode(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                      struct rd_error *err)
{
    /* bzip2's documented worst case: 1% + 600 bytes. */
    size_t cap = len + len / 100 + 601;
    unsigned int dest_len;
    uint8_t *buf;
    int br;

    if (len > UINT_MAX / 2)
        return rd_error_set(err, RD_ETOOBIG, "bzip2: %zu bytes is too much to compress", len);
    buf = malloc(cap);
    if (!buf)
        return rd_error_set(err, RD_ENOMEM, "bzip2: out of memory");
    dest_len = (unsigned int)cap;
    br = BZ2_bzBuffToBuffCompress((char *)buf, &dest_len, (char *)(uintptr_t)in, (unsigned int)len,
                                  9, 0, 0);
    if (br != BZ_OK) {
        free(buf);
        return rd_error_set(err, br == BZ_MEM_ERROR ? RD_ENOMEM : RD_EINVAL,
                            "bzip2: compression failed (libbz2 error %d)", br);
    }
    *out = buf;
    *out_len = dest_len;
    return RD_OK;
}

int mar_compress(enum mar_compression c, uint32_t xz_preset, bool xz_bcj_x86, const void *in,
                 size_t len, uint8_t **out, size_t *out_len, struct rd_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (!in && len)
        return rd_error_set(err, RD_EINVAL, "compress: no input");
    if (!in)
        in = "";
    switch (c) {
    case MAR_COMP_XZ:
        return xz_encode(xz_preset, xz_bcj_x86, in, len, out, out_len, err);
    case MAR_COMP_BZ2:
        return bz2_encode(in, len, out, out_len, err);
    case MAR_COMP_NONE:
        *out = malloc(len ? len : 1);
        if (!*out)
            return rd_error_set(err, RD_ENOMEM, "out of memory");
        memcpy(*out, in, len);
        *out_len = len;
        return RD_OK;
    }
    return rd_error_set(err, RD_EINVAL, "unknown compression %d", (int)c);
}
