/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/read.c -- open and validate a MAR. Every structure is checked
 * against the buffer's length before it is read, with 64-bit arithmetic so
 * that no sum of 32-bit fields can wrap; after mar_open_mem succeeds every
 * offset and length in struct mar is known to lie inside the buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mar/mar_int.h"

/* An entry's place in the content area, for the overlap check. */
struct span {
    uint32_t offset, size;
    size_t index;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Parses the index at m->index_offset into m->entries (names unchecked). */
static int parse_index(struct mar *m, struct rd_error *err)
{
    const uint8_t *b = m->buf;
    uint64_t pos = (uint64_t)m->index_offset + 4, end;
    uint32_t index_size;
    size_t n = 0, cap = 0;

    if ((uint64_t)m->index_offset + 4 > m->len)
        return rd_error_set(err, RD_ECORRUPT,
                            "index offset %u is past the end of the %zu-byte file", m->index_offset,
                            m->len);
    index_size = mar_be32(b + m->index_offset);
    end = pos + index_size;
    if (end > m->len)
        return rd_error_set(err, RD_ECORRUPT,
                            "index of %u bytes at %u runs past the end of the %zu-byte file",
                            index_size, m->index_offset, m->len);
    if (end != m->len)
        return rd_error_set(err, RD_ECORRUPT, "%llu unexpected bytes after the index",
                            (unsigned long long)(m->len - end));
    while (pos < end) {
        const uint8_t *nul;
        uint64_t name_len;

        if (end - pos < MAR_INDEX_ENTRY_HEADER + 1)
            return rd_error_set(err, RD_ECORRUPT,
                                "index entry %zu at %llu is truncated (%llu bytes left)", n,
                                (unsigned long long)pos, (unsigned long long)(end - pos));
        nul = memchr(b + pos + MAR_INDEX_ENTRY_HEADER, '\0',
                     (size_t)(end - pos - MAR_INDEX_ENTRY_HEADER));
        if (!nul)
            return rd_error_set(err, RD_ECORRUPT,
                                "index entry %zu at %llu: name not NUL-terminated within the "
                                "index",
                                n, (unsigned long long)pos);
        name_len = (uint64_t)(nul - (b + pos + MAR_INDEX_ENTRY_HEADER));
        if (name_len == 0)
            return rd_error_set(err, RD_ECORRUPT, "index entry %zu at %llu: empty name", n,
                                (unsigned long long)pos);
        if (name_len > MAR_MAX_NAME_LEN)
            return rd_error_set(
                err, RD_ECORRUPT, "index entry %zu at %llu: name of %llu bytes, the limit is %u", n,
                (unsigned long long)pos, (unsigned long long)name_len, MAR_MAX_NAME_LEN);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mar_entry *ne = realloc(m->entries, ncap * sizeof(*ne));
            if (!ne)
                return rd_error_set(err, RD_ENOMEM, "index: out of memory");
            m->entries = ne;
            cap = ncap;
        }
        m->entries[n].offset = mar_be32(b + pos);
        m->entries[n].size = mar_be32(b + pos + 4);
        m->entries[n].flags = mar_be32(b + pos + 8);
        m->entries[n].name = (const char *)(b + pos + MAR_INDEX_ENTRY_HEADER);
        n++;
        pos += MAR_INDEX_ENTRY_HEADER + name_len + 1;
    }
    m->n_entries = n;
    return RD_OK;
}

/* The signature block: FileSize, NumSignatures, the signatures. */
static int parse_signatures(struct mar *m, struct rd_error *err)
{
    const uint8_t *b = m->buf;
    uint64_t file_size, pos;
    uint32_t count;

    if (m->index_offset < MAR_SIG_HEADER_END)
        return rd_error_set(err, RD_ECORRUPT,
                            "index offset %u leaves no room for the signature block header",
                            m->index_offset);
    file_size = mar_be64(b + MAR_HEADER_LEN);
    if (file_size != m->len)
        return rd_error_set(err, RD_ECORRUPT,
                            "header says the file is %llu bytes, it is %zu (truncated or "
                            "extended)",
                            (unsigned long long)file_size, m->len);
    count = mar_be32(b + MAR_SIG_COUNT_OFFSET);
    if (count > MAR_MAX_SIGNATURES)
        return rd_error_set(err, RD_ECORRUPT, "%u signatures, the limit is %u", count,
                            MAR_MAX_SIGNATURES);
    pos = MAR_SIG_HEADER_END;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size;
        if (pos + 8 > m->index_offset)
            return rd_error_set(err, RD_ECORRUPT, "signature %u header at %llu is truncated", i,
                                (unsigned long long)pos);
        size = mar_be32(b + pos + 4);
        if (size > MAR_MAX_SIGNATURE_LEN)
            return rd_error_set(err, RD_ECORRUPT, "signature %u is %u bytes, the limit is %u", i,
                                size, MAR_MAX_SIGNATURE_LEN);
        if (pos + 8 + size > m->index_offset)
            return rd_error_set(err, RD_ECORRUPT,
                                "signature %u (%u bytes at %llu) runs into the index", i, size,
                                (unsigned long long)(pos + 8));
        m->sigs[i].algorithm = mar_be32(b + pos);
        m->sigs[i].size = size;
        m->sigs[i].offset = (uint32_t)(pos + 8);
        m->sigs[i].bytes = b + pos + 8;
        pos += 8 + (uint64_t)size;
    }
    m->n_sigs = count;
    m->sig_end = (uint32_t)pos;
    return RD_OK;
}

static int parse_pib(struct mar *m, uint64_t data, uint32_t data_len, struct rd_error *err)
{
    const char *p = (const char *)m->buf + data;
    const char *nul1, *nul2;

    if (data_len > MAR_PIB_MAX_DATA)
        return rd_error_set(err, RD_ECORRUPT,
                            "product information block holds %u bytes, the limit is %u", data_len,
                            MAR_PIB_MAX_DATA);
    nul1 = memchr(p, '\0', data_len);
    if (!nul1)
        return rd_error_set(err, RD_ECORRUPT, "product information: channel not NUL-terminated");
    if ((size_t)(nul1 - p) > MAR_MAX_CHANNEL_LEN)
        return rd_error_set(err, RD_ECORRUPT,
                            "product information: channel of %zu bytes, the limit is %u",
                            (size_t)(nul1 - p), MAR_MAX_CHANNEL_LEN);
    nul2 = memchr(nul1 + 1, '\0', data_len - (size_t)(nul1 + 1 - p));
    if (!nul2)
        return rd_error_set(err, RD_ECORRUPT, "product information: version not NUL-terminated");
    if ((size_t)(nul2 - nul1 - 1) > MAR_MAX_VERSION_LEN)
        return rd_error_set(err, RD_ECORRUPT,
                            "product information: version of %zu bytes, the limit is %u",
                            (size_t)(nul2 - nul1 - 1), MAR_MAX_VERSION_LEN);
    m->has_pib = true;
    m->channel = p;
    m->version = nul1 + 1;
    return RD_OK;
}

/* Additional sections between the signature block and content_start. */
static int parse_sections(struct mar *m, uint32_t content_start, struct rd_error *err)
{
    const uint8_t *b = m->buf;
    uint64_t pos = m->sig_end;
    uint32_t count;
    int rc;

    if (content_start == m->sig_end)
        return RD_OK; /* a 2012 MAR without additional sections */
    if ((uint64_t)m->sig_end + 4 > content_start)
        return rd_error_set(err, RD_ECORRUPT,
                            "%u bytes between the signature block and the content: no room for "
                            "the additional sections count",
                            content_start - m->sig_end);
    count = mar_be32(b + pos);
    pos += 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size, id;
        if (pos + 8 > content_start)
            return rd_error_set(err, RD_ECORRUPT,
                                "additional section %u of %u at %llu: header runs into the "
                                "content at %u",
                                i, count, (unsigned long long)pos, content_start);
        size = mar_be32(b + pos);
        id = mar_be32(b + pos + 4);
        if (size < 8)
            return rd_error_set(err, RD_ECORRUPT,
                                "additional section %u: block size %u is less than its header", i,
                                size);
        if (pos + size > content_start)
            return rd_error_set(err, RD_ECORRUPT,
                                "additional section %u (%u bytes at %llu) runs into the content "
                                "at %u",
                                i, size, (unsigned long long)pos, content_start);
        if (id == MAR_PIB_ID && !m->has_pib) {
            rc = parse_pib(m, pos + 8, size - 8, err);
            if (rc != RD_OK)
                return rc;
        }
        pos += size;
    }
    /* Mozilla's writers put the content right after the sections; a gap
       means the counts or sizes above are not what they claim. */
    if (pos != content_start)
        return rd_error_set(err, RD_ECORRUPT,
                            "additional sections end at %llu but the content starts at %u",
                            (unsigned long long)pos, content_start);
    m->n_sections = count;
    m->content_start = (uint32_t)pos;
    return RD_OK;
}

/* Every entry inside [content_start, index_offset), no two overlapping. */
static int check_entries(struct mar *m, struct rd_error *err)
{
    struct span *s = NULL;
    size_t n = 0;
    int rc = RD_OK;

    for (size_t i = 0; i < m->n_entries; i++) {
        const struct mar_entry *e = &m->entries[i];
        if (e->offset < m->content_start || (uint64_t)e->offset + e->size > m->index_offset) {
            rc = rd_error_set(err, RD_ECORRUPT,
                              "entry \"%.64s\": %u bytes at %u lie outside the content area "
                              "[%u, %u)",
                              e->name, e->size, e->offset, m->content_start, m->index_offset);
            goto out;
        }
    }
    s = malloc((m->n_entries ? m->n_entries : 1) * sizeof(*s));
    if (!s) {
        rc = rd_error_set(err, RD_ENOMEM, "entries: out of memory");
        goto out;
    }
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].size) /* empty entries occupy nothing (libmar agrees) */
            s[n++] = (struct span){m->entries[i].offset, m->entries[i].size, i};
    qsort(s, n, sizeof(*s), span_cmp);
    for (size_t i = 1; i < n; i++) {
        if ((uint64_t)s[i - 1].offset + s[i - 1].size > s[i].offset) {
            rc = rd_error_set(err, RD_ECORRUPT, "entries \"%.64s\" and \"%.64s\" overlap",
                              m->entries[s[i - 1].index].name, m->entries[s[i].index].name);
            goto out;
        }
    }
out:
    free(s);
    return rc;
}

static int parse(struct mar *m, struct rd_error *err)
{
    uint32_t content_start;
    int rc;

    if (m->len < MAR_HEADER_LEN)
        return rd_error_set(err, RD_ECORRUPT, "%zu bytes: too short for a MAR header", m->len);
    if (memcmp(m->buf, MAR_ID, MAR_ID_LEN) != 0)
        return rd_error_set(err, RD_ECORRUPT, "not a MAR file (no MAR1 magic)");
    m->index_offset = mar_be32(m->buf + MAR_ID_LEN);
    if (m->index_offset < MAR_HEADER_LEN)
        return rd_error_set(err, RD_ECORRUPT, "index offset %u points into the header",
                            m->index_offset);
    rc = parse_index(m, err);
    if (rc != RD_OK)
        return rc;

    /* There is no version field: a first entry at offset 8 (or, with no
       entries, an index at 8) means the 2005 layout without a signature
       block; this is libmar's own test. */
    content_start = m->n_entries ? m->entries[0].offset : m->index_offset;
    for (size_t i = 1; i < m->n_entries; i++)
        if (m->entries[i].offset < content_start)
            content_start = m->entries[i].offset;
    if ((m->n_entries && m->entries[0].offset == MAR_HEADER_LEN) ||
        (!m->n_entries && m->index_offset == MAR_HEADER_LEN)) {
        m->sig_end = MAR_HEADER_LEN;
        m->content_start = MAR_HEADER_LEN;
    } else {
        m->has_sig_block = true;
        rc = parse_signatures(m, err);
        if (rc != RD_OK)
            return rc;
        if (content_start < m->sig_end)
            return rd_error_set(err, RD_ECORRUPT,
                                "content at %u overlaps the signature block ending at %u",
                                content_start, m->sig_end);
        m->content_start = m->sig_end;
        rc = parse_sections(m, content_start, err);
        if (rc != RD_OK)
            return rc;
    }
    return check_entries(m, err);
}

int mar_open_mem(const void *buf, size_t len, struct mar **out, struct rd_error *err)
{
    struct mar *m = NULL;
    int rc;

    *out = NULL;
    if (len > MAR_MAX_FILE_SIZE)
        return rd_error_set(err, RD_ETOOBIG, "%zu bytes: a MAR is at most %u bytes", len,
                            MAR_MAX_FILE_SIZE);
    m = calloc(1, sizeof(*m));
    if (!m)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    m->buf = malloc(len ? len : 1);
    if (!m->buf) {
        free(m);
        return rd_error_set(err, RD_ENOMEM, "%zu bytes: out of memory", len);
    }
    if (len)
        memcpy(m->buf, buf, len);
    m->len = len;
    rc = parse(m, err);
    if (rc != RD_OK) {
        mar_close(m);
        return rc;
    }
    *out = m;
    return RD_OK;
}

int mar_open(const char *path, struct mar **out, struct rd_error *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "%s: %s", path,
                            strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = rd_error_set(err, RD_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rd_error_set(err, RD_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MAR_MAX_FILE_SIZE) {
        rc = rd_error_set(err, RD_ETOOBIG, "%s: %lld bytes, a MAR is at most %u bytes", path,
                          (long long)st.st_size, MAR_MAX_FILE_SIZE);
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
    rc = mar_open_mem(buf, got, out, err);
    if (rc != RD_OK && err) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        rd_error_set(err, rc, "%s: %s", path, msg);
    }
out:
    free(buf);
    close(fd);
    return rc;
}

void mar_close(struct mar *m)
{
    if (!m)
        return;
    free(m->entries);
    free(m->buf);
    free(m);
}

const uint8_t *mar_bytes(const struct mar *m, size_t *len)
{
    *len = m->len;
    return m->buf;
}

uint32_t mar_index_offset(const struct mar *m)
{
    return m->index_offset;
}
bool mar_has_signature_block(const struct mar *m)
{
    return m->has_sig_block;
}
size_t mar_signature_count(const struct mar *m)
{
    return m->n_sigs;
}

const struct mar_signature *mar_signature_get(const struct mar *m, size_t i)
{
    return i < m->n_sigs ? &m->sigs[i] : NULL;
}

bool mar_has_product_info(const struct mar *m)
{
    return m->has_pib;
}
const char *mar_channel(const struct mar *m)
{
    return m->channel;
}
const char *mar_product_version(const struct mar *m)
{
    return m->version;
}
size_t mar_additional_section_count(const struct mar *m)
{
    return m->n_sections;
}
size_t mar_entry_count(const struct mar *m)
{
    return m->n_entries;
}

const struct mar_entry *mar_entry_get(const struct mar *m, size_t i)
{
    return i < m->n_entries ? &m->entries[i] : NULL;
}

const struct mar_entry *mar_find(const struct mar *m, const char *name)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i].name, name) == 0)
            return &m->entries[i];
    return NULL;
}

const uint8_t *mar_entry_stored(const struct mar *m, const struct mar_entry *e)
{
    return m->buf + e->offset;
}

enum mar_compression mar_entry_compression(const struct mar *m, const struct mar_entry *e)
{
    static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
    const uint8_t *p = m->buf + e->offset;

    if (e->size >= 3 && memcmp(p, "BZh", 3) == 0)
        return MAR_COMP_BZ2;
    if (e->size >= 6 && memcmp(p, xz_magic, 6) == 0)
        return MAR_COMP_XZ;
    return MAR_COMP_NONE;
}
