/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/labelmap.c -- see labelmap.h. FNV-1a hashing; the table
 * doubles when half full, so probes stay short. Pure logic.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "modules/graph/labelmap.h"

static uint64_t lm_hash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static int lm_alloc(struct labelmap *m, size_t cap)
{
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = calloc(cap, sizeof(*m->vals));
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        labelmap_fini(m);
        return -1;
    }
    return 0;
}

int labelmap_init(struct labelmap *m, size_t n_expected)
{
    size_t cap = 16;

    while (cap < 2 * n_expected + 2)
        cap *= 2;
    return lm_alloc(m, cap);
}

void labelmap_fini(struct labelmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static size_t lm_slot(const struct labelmap *m, const char *key)
{
    size_t i = (size_t)lm_hash(key) & (m->cap - 1);

    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int lm_grow(struct labelmap *m)
{
    struct labelmap old = *m;

    if (lm_alloc(m, old.cap * 2) != 0) {
        *m = old;
        return -1;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i]) {
            size_t s = lm_slot(m, old.keys[i]);
            m->keys[s] = old.keys[i];
            m->vals[s] = old.vals[i];
            m->n++;
        }
    }
    labelmap_fini(&old);
    return 0;
}

int labelmap_put(struct labelmap *m, const char *key, size_t val)
{
    size_t s;

    if (!m->keys)
        return -1;
    if (2 * (m->n + 1) > m->cap && lm_grow(m) != 0)
        return -1;
    s = lm_slot(m, key);
    if (m->keys[s])
        return 1;
    m->keys[s] = key;
    m->vals[s] = val;
    m->n++;
    return 0;
}

size_t labelmap_get(const struct labelmap *m, const char *key)
{
    size_t s;

    if (!m->keys)
        return SIZE_MAX;
    s = lm_slot(m, key);
    return m->keys[s] ? m->vals[s] : SIZE_MAX;
}
