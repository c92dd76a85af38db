/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/write.c -- build a MAR in memory as libmar's mar_create lays it
 * out: header, signature block (zeroed signature slots of the requested
 * sizes, filled in by a signer), the additional sections (the 104-byte product
 * information block), every entry compressed on its own, then the index.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mar/mar_int.h"

struct outbuf {
    uint8_t *p;
    size_t len, cap;
};

static int out_reserve(struct outbuf *o, size_t n, struct rd_error *err)
{
    if (n > MAR_MAX_FILE_SIZE || o->len > MAR_MAX_FILE_SIZE - n)
        return rd_error_set(err, RD_ETOOBIG, "archive would exceed %u bytes", MAR_MAX_FILE_SIZE);
    if (o->len + n > o->cap) {
        size_t ncap = o->cap ? o->cap : 4096;
        uint8_t *np;
        while (ncap < o->len + n)
            ncap *= 2;
        np = realloc(o->p, ncap);
        if (!np)
            return rd_error_set(err, RD_ENOMEM, "archive: out of memory");
        o->p = np;
        o->cap = ncap;
    }
    return RD_OK;
}

static int out_put(struct outbuf *o, const void *data, size_t n, struct rd_error *err)
{
    int rc = out_reserve(o, n, err);
    if (rc == RD_OK && n) {
        if (data)
            memcpy(o->p + o->len, data, n);
        else
            memset(o->p + o->len, 0, n);
        o->len += n;
    }
    return rc;
}

static int out_put32(struct outbuf *o, uint32_t v, struct rd_error *err)
{
    uint8_t b[4];
    mar_put32(b, v);
    return out_put(o, b, 4, err);
}

static int read_file(const char *path, uint8_t **out, size_t *out_len, struct rd_error *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = RD_OK;

    if (fd < 0)
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "%s: %s", path,
                            strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rd_error_set(err, RD_EINVAL, "%s: not a readable regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MAR_MAX_FILE_SIZE) {
        rc = rd_error_set(err, RD_ETOOBIG, "%s: %lld bytes, more than a MAR can hold", path,
                          (long long)st.st_size);
        goto out;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        rc = rd_error_set(err, RD_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rd_error_set(err, RD_EIO, "%s: %s", path,
                              n < 0 ? strerror(errno) : "file shrank while reading");
            goto out;
        }
        got += (size_t)n;
    }
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

void mar_write_opts_init(struct mar_write_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->compression = MAR_COMP_XZ;
    o->xz_preset = 6;
}

static int check_opts(const struct mar_write_opts *o, const struct mar_input *in, size_t n,
                      struct rd_error *err)
{
    int rc;

    if (o->compression != MAR_COMP_XZ && o->compression != MAR_COMP_BZ2 &&
        o->compression != MAR_COMP_NONE)
        return rd_error_set(err, RD_EINVAL, "unknown compression %d", (int)o->compression);
    if (o->old_format && (o->n_signatures || o->has_product_info))
        return rd_error_set(err, RD_EINVAL,
                            "the 2005 format has no signatures and no product information");
    if (o->n_signatures > MAR_MAX_SIGNATURES)
        return rd_error_set(err, RD_EINVAL, "%zu signatures, the limit is %u", o->n_signatures,
                            MAR_MAX_SIGNATURES);
    for (size_t i = 0; i < o->n_signatures; i++)
        if (o->sig_size[i] > MAR_MAX_SIGNATURE_LEN)
            return rd_error_set(err, RD_EINVAL, "signature %zu: %u bytes, the limit is %u", i,
                                o->sig_size[i], MAR_MAX_SIGNATURE_LEN);
    if (o->has_product_info) {
        if (!o->channel || !o->product_version)
            return rd_error_set(err, RD_EINVAL, "product information needs channel and version");
        if (strlen(o->channel) > MAR_MAX_CHANNEL_LEN)
            return rd_error_set(err, RD_EINVAL, "channel id of %zu bytes, the limit is %u",
                                strlen(o->channel), MAR_MAX_CHANNEL_LEN);
        if (strlen(o->product_version) > MAR_MAX_VERSION_LEN)
            return rd_error_set(err, RD_EINVAL, "product version of %zu bytes, the limit is %u",
                                strlen(o->product_version), MAR_MAX_VERSION_LEN);
    }
    for (size_t i = 0; i < n; i++) {
        rc = mar_name_check(in[i].name, err);
        if (rc != RD_OK)
            return rc;
        if (!in[i].data == !in[i].path)
            return rd_error_set(err, RD_EINVAL, "\"%.64s\": give exactly one of data and path",
                                in[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(in[i].name, in[j].name) == 0)
                return rd_error_set(err, RD_EINVAL, "\"%.64s\": duplicate entry name", in[i].name);
    }
    return RD_OK;
}

/* Header, signature block and sections; returns where content starts. */
static int write_head(const struct mar_write_opts *o, struct outbuf *b, struct rd_error *err)
{
    int rc = out_put(b, MAR_ID, MAR_ID_LEN, err);

    if (rc == RD_OK)
        rc = out_put32(b, 0, err); /* OffsetToIndex, known at the end */
    if (rc != RD_OK || o->old_format)
        return rc;
    rc = out_put(b, NULL, 8, err); /* FileSize, known at the end */
    if (rc == RD_OK)
        rc = out_put32(b, (uint32_t)o->n_signatures, err);
    for (size_t i = 0; rc == RD_OK && i < o->n_signatures; i++) {
        rc = out_put32(b, o->sig_algorithm[i], err);
        if (rc == RD_OK)
            rc = out_put32(b, o->sig_size[i], err);
        if (rc == RD_OK)
            rc = out_put(b, NULL, o->sig_size[i], err);
    }
    if (rc == RD_OK)
        rc = out_put32(b, o->has_product_info ? 1 : 0, err);
    if (rc == RD_OK && o->has_product_info) {
        /* The fixed maximum size, as libmar writes it, so the channel can be
           rewritten in place later. */
        size_t start = b->len, cl = strlen(o->channel);
        rc = out_put(b, NULL, MAR_PIB_BLOCK_SIZE, err);
        if (rc == RD_OK) {
            mar_put32(b->p + start, MAR_PIB_BLOCK_SIZE);
            mar_put32(b->p + start + 4, MAR_PIB_ID);
            memcpy(b->p + start + 8, o->channel, cl);
            memcpy(b->p + start + 8 + cl + 1, o->product_version, strlen(o->product_version));
        }
    }
    return rc;
}

int mar_write_mem(const struct mar_write_opts *o, const struct mar_input *in, size_t n,
                  uint8_t **out, size_t *out_len, struct rd_error *err)
{
    struct outbuf b = {NULL, 0, 0};
    uint32_t *offsets = NULL, *sizes = NULL;
    uint8_t *raw = NULL, *packed = NULL;
    size_t index_at, index_len = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    rc = check_opts(o, in, n, err);
    if (rc != RD_OK)
        return rc;
    offsets = calloc(n ? n : 1, sizeof(*offsets));
    sizes = calloc(n ? n : 1, sizeof(*sizes));
    if (!offsets || !sizes) {
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    rc = write_head(o, &b, err);
    for (size_t i = 0; rc == RD_OK && i < n; i++) {
        const uint8_t *data = in[i].data;
        size_t len = in[i].len, plen;
        if (in[i].path) {
            rc = read_file(in[i].path, &raw, &len, err);
            if (rc != RD_OK)
                break;
            data = raw;
        }
        if (in[i].is_compressed) {
            rc = out_put(&b, data, len, err);
            plen = len;
        } else {
            rc = mar_compress(o->compression, o->xz_preset, o->xz_bcj_x86, data, len, &packed,
                              &plen, err);
            if (rc == RD_OK)
                rc = out_put(&b, packed, plen, err);
        }
        if (rc == RD_OK && plen > UINT32_MAX - b.len)
            rc = rd_error_set(err, RD_ETOOBIG, "archive too large");
        offsets[i] = (uint32_t)(b.len - plen);
        sizes[i] = (uint32_t)plen;
        free(raw);
        raw = NULL;
        free(packed);
        packed = NULL;
    }
    if (rc != RD_OK)
        goto out;
    index_at = b.len;
    rc = out_put32(&b, 0, err);
    for (size_t i = 0; rc == RD_OK && i < n; i++) {
        size_t nl = strlen(in[i].name) + 1;
        rc = out_put32(&b, offsets[i], err);
        if (rc == RD_OK)
            rc = out_put32(&b, sizes[i], err);
        if (rc == RD_OK)
            rc = out_put32(&b, in[i].flags & 0777, err);
        if (rc == RD_OK)
            rc = out_put(&b, in[i].name, nl, err);
        index_len += MAR_INDEX_ENTRY_HEADER + nl;
    }
    if (rc != RD_OK)
        goto out;
    mar_put32(b.p + MAR_ID_LEN, (uint32_t)index_at);
    mar_put32(b.p + index_at, (uint32_t)index_len);
    if (!o->old_format)
        mar_put64(b.p + MAR_HEADER_LEN, b.len);
    *out = b.p;
    *out_len = b.len;
    b.p = NULL;
out:
    free(b.p);
    free(offsets);
    free(sizes);
    return rc;
}

int mar_write_file(const struct mar_write_opts *o, const struct mar_input *in, size_t n,
                   const char *path, struct rd_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, done = 0;
    char tmp[4096];
    int fd = -1, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return rd_error_set(err, RD_EINVAL, "%s: path too long", path);
    rc = mar_write_mem(o, in, n, &buf, &len, err);
    if (rc != RD_OK)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        rc = rd_error_set(err, RD_EIO, "rename to %s: %s", path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (rc != RD_OK)
        unlink(tmp);
    free(buf);
    return rc;
}
