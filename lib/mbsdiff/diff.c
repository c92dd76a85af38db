/* SPDX-License-Identifier: MIT */
/*
 * lib/mbsdiff/diff.c -- make an MBDIFF10 patch. The matching is Colin
 * Percival's bsdiff scan (find the longest match of the new file's next
 * bytes in the old file by binary search over a suffix array, accept it when
 * it beats the current alignment by more than 8 bytes, extend the previous
 * match forwards and the new one backwards, split any overlap), so patches
 * are as small as bsdiff's. What differs is the machinery around it:
 *  - the suffix array comes from libdivsufsort (32-bit, 4 bytes per old
 *    byte, O(n log n)) instead of qsufsort's two 8-byte arrays;
 *  - the scan records only the control triples; the diff and extra blocks
 *    are derived afterwards by replaying the triples, once the suffix array
 *    is freed, straight into the exactly sized patch buffer. So peak memory
 *    is old + new + 4 x old (+ triples) during the scan and old + new +
 *    patch after it, never both.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <divsufsort.h>

#include "lib/hash/hash.h"
#include "lib/mbsdiff/mbsdiff.h"

struct triple {
    uint32_t x, y; /* diff bytes, extra bytes */
    int32_t z;     /* seek in old after them */
};

struct triples {
    struct triple *t;
    size_t n, cap;
};

static int triples_add(struct triples *v, uint32_t x, uint32_t y, int32_t z)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 1024;
        struct triple *nt = realloc(v->t, ncap * sizeof(*nt));
        if (!nt)
            return RD_ENOMEM;
        v->t = nt;
        v->cap = ncap;
    }
    v->t[v->n++] = (struct triple){x, y, z};
    return RD_OK;
}

/* Length of the common prefix of a and b, both at least n bytes: eight
   bytes at a time, then the first differing byte. */
static int64_t common(const uint8_t *a, const uint8_t *b, int64_t n)
{
    int64_t i = 0;

    while (i + 8 <= n) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            break;
        i += 8;
    }
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Where each two-byte prefix's suffixes start in the suffix array, so a
   search begins inside its prefix's range instead of halving the whole
   array ~22 times per byte of new. Key of a suffix: b0 * 257 + b1 + 1, or
   b0 * 257 for the one-byte suffix (it sorts first among b0's). */
#define N_KEYS (256 * 257 + 1)

struct index {
    const saidx_t *sa;
    const uint8_t *old;
    int64_t n;
    uint32_t *bucket; /* N_KEYS + 1 entries: start of each key's range */
};

static uint32_t suffix_key(const uint8_t *p, int64_t len)
{
    return (uint32_t)p[0] * 257 + (len >= 2 ? (uint32_t)p[1] + 1 : 0);
}

static int index_buckets(struct index *ix)
{
    ix->bucket = calloc(N_KEYS + 1, sizeof(*ix->bucket));
    if (!ix->bucket)
        return RD_ENOMEM;
    for (int64_t i = 0; i < ix->n; i++)
        ix->bucket[suffix_key(ix->old + i, ix->n - i) + 1]++;
    for (uint32_t k = 1; k <= N_KEYS; k++)
        ix->bucket[k] += ix->bucket[k - 1];
    return RD_OK;
}

/* The longest prefix of nw[0, nlen) found in old, by binary search over the
   sorted suffixes sa[lo, hi]. Returns its length; *pos gets where in old.
   Two departures from bsdiff's search, both finding longer matches for
   less work: a suffix that is a proper prefix of the pattern sorts before
   it (bsdiff's memcmp over the shorter length calls them equal and goes
   the wrong way, which on periodic data finds 1-byte matches next to
   megabyte ones and turns the scan quadratic); and each comparison starts
   after the prefix the pattern shares with both bounds (every suffix
   between them shares it too). */
static int64_t search_range(const struct index *ix, int64_t lo, int64_t hi, const uint8_t *nw,
                            int64_t nlen, int64_t *pos)
{
    const saidx_t *sa = ix->sa;
    const uint8_t *old = ix->old;
    int64_t n = ix->n, llcp, rlcp;

    llcp = common(old + sa[lo], nw, n - sa[lo] < nlen ? n - sa[lo] : nlen);
    rlcp = common(old + sa[hi], nw, n - sa[hi] < nlen ? n - sa[hi] : nlen);
    while (hi - lo >= 2) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t slen = n - sa[mid], l = slen < nlen ? slen : nlen;
        int64_t k = llcp < rlcp ? llcp : rlcp, c;
        bool less;
        /* The search is bound by memory latency (a suffix array entry, then
           the text it points at, per step): fetch the next two levels'
           entries and the next level's text while this step's arrives. */
        {
            int64_t a = lo + (mid - lo) / 2, b = mid + (hi - mid) / 2;
            __builtin_prefetch(&sa[a]);
            __builtin_prefetch(&sa[b]);
            __builtin_prefetch(&sa[lo + (a - lo) / 2]);
            __builtin_prefetch(&sa[a + (mid - a) / 2]);
            __builtin_prefetch(&sa[mid + (b - mid) / 2]);
            __builtin_prefetch(&sa[b + (hi - b) / 2]);
            __builtin_prefetch(old + sa[a] + k);
            __builtin_prefetch(old + sa[b] + k);
        }
        c = k + common(old + sa[mid] + k, nw + k, l - k);
        if (c == l)
            less = slen < nlen; /* a proper prefix of the pattern is smaller */
        else
            less = old[sa[mid] + c] < nw[c];
        if (less) {
            lo = mid;
            llcp = c;
        } else {
            hi = mid;
            rlcp = c;
        }
    }
    if (llcp > rlcp) {
        *pos = sa[lo];
        return llcp;
    }
    *pos = sa[hi];
    return rlcp;
}

/* Any match of two bytes or more lies in nw's two-byte prefix range, and
   the binary search there ends next to the same insertion point as over
   the whole array; with no such suffix the best match is at most a byte. */
static int64_t search(const struct index *ix, const uint8_t *nw, int64_t nlen, int64_t *pos)
{
    if (nlen >= 2) {
        uint32_t k = suffix_key(nw, nlen);
        int64_t lo = ix->bucket[k], hi = (int64_t)ix->bucket[k + 1] - 1;
        if (lo <= hi)
            return search_range(ix, lo, hi, nw, nlen, pos);
    }
    return search_range(ix, 0, ix->n - 1, nw, nlen, pos);
}

/* The bsdiff scan over new, appending triples to v. */
static int scan(const struct index *ix, const uint8_t *nw, int64_t newsize, struct triples *v)
{
    const uint8_t *old = ix->old;
    int64_t oldsize = ix->n;
    int64_t scan = 0, len = 0, pos = 0, lastscan = 0, lastpos = 0, lastoffset = 0;

    while (scan < newsize) {
        int64_t oldscore = 0, scsc;

        for (scsc = scan += len; scan < newsize; scan++) {
            len = oldsize ? search(ix, nw + scan, newsize - scan, &pos) : 0;
            for (; scsc < scan + len; scsc++)
                if (scsc + lastoffset < oldsize && old[scsc + lastoffset] == nw[scsc])
                    oldscore++;
            if ((len == oldscore && len != 0) || len > oldscore + 8)
                break;
            if (scan + lastoffset < oldsize && old[scan + lastoffset] == nw[scan])
                oldscore--;
        }
        if (len != oldscore || scan == newsize) {
            int64_t s = 0, sf = 0, lenf = 0, lenb = 0, i;

            /* Extend the previous match forwards while it scores. */
            for (i = 0; lastscan + i < scan && lastpos + i < oldsize;) {
                if (old[lastpos + i] == nw[lastscan + i])
                    s++;
                i++;
                if (s * 2 - i > sf * 2 - lenf) {
                    sf = s;
                    lenf = i;
                }
            }
            /* And the new match backwards. */
            if (scan < newsize) {
                int64_t sb = 0;
                s = 0;
                for (i = 1; scan >= lastscan + i && pos >= i; i++) {
                    if (old[pos - i] == nw[scan - i])
                        s++;
                    if (s * 2 - i > sb * 2 - lenb) {
                        sb = s;
                        lenb = i;
                    }
                }
            }
            /* Where the two overlap, split at the best point. */
            if (lastscan + lenf > scan - lenb) {
                int64_t overlap = (lastscan + lenf) - (scan - lenb), ss = 0, lens = 0;
                s = 0;
                for (i = 0; i < overlap; i++) {
                    if (nw[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i])
                        s++;
                    if (nw[scan - lenb + i] == old[pos - lenb + i])
                        s--;
                    if (s > ss) {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }
            if (triples_add(v, (uint32_t)lenf, (uint32_t)((scan - lenb) - (lastscan + lenf)),
                            (int32_t)((pos - lenb) - (lastpos + lenf))) != RD_OK)
                return RD_ENOMEM;
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }
    return RD_OK;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The patch from the triples: header, control, then diff and extra blocks
   regenerated by walking old and new as bspatch will. */
static int build(const uint8_t *old, size_t old_len, const uint8_t *nw, size_t new_len,
                 const struct triples *v, uint8_t **patch, size_t *patch_len, struct rd_error *err)
{
    uint64_t difflen = 0, extralen = 0, cblen = 12 * (uint64_t)v->n, total;
    uint8_t *p, *ctrl, *diff, *extra;
    size_t newpos = 0;
    int64_t oldpos = 0;

    for (size_t i = 0; i < v->n; i++) {
        difflen += v->t[i].x;
        extralen += v->t[i].y;
    }
    total = MBSDIFF_HEADER_LEN + cblen + difflen + extralen;
    if (cblen > UINT32_MAX || total > SIZE_MAX)
        return rd_error_set(err, RD_ETOOBIG, "patch too large");
    p = malloc((size_t)total);
    if (!p)
        return rd_error_set(err, RD_ENOMEM, "patch of %llu bytes: out of memory",
                            (unsigned long long)total);
    memcpy(p, MBSDIFF_MAGIC, 8);
    put32(p + 8, (uint32_t)old_len);
    put32(p + 12, hash_crc32_bzip2(old_len ? old : (const uint8_t *)"", old_len));
    put32(p + 16, (uint32_t)new_len);
    put32(p + 20, (uint32_t)cblen);
    put32(p + 24, (uint32_t)difflen);
    put32(p + 28, (uint32_t)extralen);
    ctrl = p + MBSDIFF_HEADER_LEN;
    diff = ctrl + cblen;
    extra = diff + difflen;
    for (size_t i = 0; i < v->n; i++) {
        const struct triple *t = &v->t[i];
        put32(ctrl, t->x);
        put32(ctrl + 4, t->y);
        put32(ctrl + 8, (uint32_t)t->z);
        ctrl += 12;
        for (uint32_t k = 0; k < t->x; k++)
            diff[k] = (uint8_t)(nw[newpos + k] - old[oldpos + k]);
        diff += t->x;
        newpos += t->x;
        oldpos += t->x;
        memcpy(extra, nw + newpos, t->y);
        extra += t->y;
        newpos += t->y;
        oldpos += t->z;
    }
    *patch = p;
    *patch_len = (size_t)total;
    return RD_OK;
}

int mbsdiff_diff(const uint8_t *old, size_t old_len, const uint8_t *new_buf, size_t new_len,
                 uint8_t **patch, size_t *patch_len, struct rd_error *err)
{
    struct triples v = {NULL, 0, 0};
    struct index ix = {NULL, old, (int64_t)old_len, NULL};
    saidx_t *sa = NULL;
    int rc = RD_OK;

    *patch = NULL;
    *patch_len = 0;
    if (old_len > MBSDIFF_MAX_INPUT || new_len > MBSDIFF_MAX_INPUT)
        return rd_error_set(err, RD_ETOOBIG, "inputs of %zu and %zu bytes: the limit is %u",
                            old_len, new_len, MBSDIFF_MAX_INPUT);
    if (old_len) {
        sa = malloc(old_len * sizeof(*sa));
        if (!sa)
            return rd_error_set(err, RD_ENOMEM, "suffix array for %zu bytes: out of memory",
                                old_len);
        if (divsufsort(old, sa, (saidx_t)old_len) != 0) {
            rc = rd_error_set(err, RD_ENOMEM, "divsufsort failed on %zu bytes", old_len);
            goto out;
        }
        ix.sa = sa;
        if (index_buckets(&ix) != RD_OK) {
            rc = rd_error_set(err, RD_ENOMEM, "suffix index: out of memory");
            goto out;
        }
    }
    if (scan(&ix, new_buf, (int64_t)new_len, &v) != RD_OK) {
        rc = rd_error_set(err, RD_ENOMEM, "control triples: out of memory");
        goto out;
    }
    free(sa); /* before the patch is built: the two never coexist */
    sa = NULL;
    free(ix.bucket);
    ix.bucket = NULL;
    rc = build(old, old_len, new_buf, new_len, &v, patch, patch_len, err);
out:
    free(sa);
    free(ix.bucket);
    free(v.t);
    return rc;
}
