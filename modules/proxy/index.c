/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/index.c -- the in-memory cache index: a hash table of the
 * complete objects by key, an LRU list, the total size, and eviction. The
 * SQLite rows (store.c) are its durable copy. The caller of the proxy_index_*
 * functions holds p->lock (the API handlers read and purge from HTTP
 * threads); entries are freed on the loop thread only, when their last
 * reference goes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include "lib/hash/hash.h"
#include "modules/proxy/proxy.h"

int proxy_sha256_hex(const char *s, char out[65])
{
    uint8_t md[32];
    int rc = hash_buf(HASH_SHA256, s, strlen(s), md, NULL);

    if (rc == RD_OK)
        hash_hex(md, sizeof(md), out);
    return rc;
}

/* FNV-1a: the keys are ours, not an attacker's choice of collisions alone
   (a client picks paths, but chains stay short at load factor 1 and a
   pathological chain costs only CPU on one lookup). */
static size_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

struct proxy_entry *proxy_entry_new(const char *key)
{
    struct proxy_entry *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->key = strdup(key);
    if (!e->key || proxy_sha256_hex(key, e->name) != RD_OK) {
        free(e->key);
        free(e);
        return NULL;
    }
    e->refs = 1;
    e->status = 200;
    return e;
}

void proxy_entry_unref(struct proxy_entry *e)
{
    if (!e || --e->refs > 0)
        return;
    if (e->seg)
        evbuffer_file_segment_free(e->seg);
    if (e->mem && e->mem_account)
        *e->mem_account -= e->size;
    free(e->mem);
    free(e->key);
    free(e->headers);
    free(e->etag);
    free(e->last_modified);
    free(e);
}

void proxy_entry_path(const struct proxy *p, const struct proxy_entry *e, char *out, size_t n)
{
    snprintf(out, n, "%s/%.2s/%s", p->cache_dir, e->name, e->name);
}

int proxy_index_grow(struct proxy *p)
{
    size_t n = p->n_buckets ? p->n_buckets * 2 : 1024;
    struct proxy_entry **b = calloc(n, sizeof(*b));

    if (!b)
        return RD_ENOMEM;
    for (size_t i = 0; i < p->n_buckets; i++) {
        struct proxy_entry *e = p->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            size_t j = key_hash(e->key) & (n - 1);
            e->hnext = b[j];
            b[j] = e;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->n_buckets = n;
    return RD_OK;
}

struct proxy_entry *proxy_index_get(struct proxy *p, const char *key)
{
    if (!p->n_buckets)
        return NULL;
    for (struct proxy_entry *e = p->buckets[key_hash(key) & (p->n_buckets - 1)]; e; e = e->hnext)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void lru_unlink(struct proxy *p, struct proxy_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        p->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        p->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct proxy *p, struct proxy_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = p->lru_head;
    if (p->lru_head)
        p->lru_head->lru_prev = e;
    p->lru_head = e;
    if (!p->lru_tail)
        p->lru_tail = e;
}

void proxy_index_remove(struct proxy *p, struct proxy_entry *e)
{
    struct proxy_entry **pp;

    if (!e->in_index)
        return;
    pp = &p->buckets[key_hash(e->key) & (p->n_buckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(p, e);
    e->in_index = false;
    p->n_entries--;
    p->cache_bytes -= e->size;
}

void proxy_index_drop(struct proxy *p, struct proxy_entry *e)
{
    char path[4300];

    proxy_index_remove(p, e);
    /* Unlinked under the lock: a commit renames under it too, so the path is
       never a newer object's. */
    proxy_entry_path(p, e, path, sizeof(path));
    unlink(path);
}

struct proxy_entry *proxy_index_put(struct proxy *p, struct proxy_entry *e)
{
    struct proxy_entry *old = proxy_index_get(p, e->key);
    size_t i;

    if (old)
        proxy_index_remove(p, old);
    if (p->n_entries + 1 > p->n_buckets && proxy_index_grow(p) != RD_OK && !p->n_buckets) {
        /* no table at all: keep the entry out of the index */
        return old;
    }
    i = key_hash(e->key) & (p->n_buckets - 1);
    e->hnext = p->buckets[i];
    p->buckets[i] = e;
    lru_push_head(p, e);
    e->in_index = true;
    p->n_entries++;
    p->cache_bytes += e->size;
    return old;
}

void proxy_index_touch(struct proxy *p, struct proxy_entry *e, int64_t now_ms)
{
    e->last_access_ms = now_ms;
    e->hits++;
    e->dirty = true;
    if (e->in_index && p->lru_head != e) {
        lru_unlink(p, e);
        lru_push_head(p, e);
    }
}

void proxy_evict(struct proxy *p)
{
    struct proxy_entry *victims = NULL;
    int64_t n = 0;

    pthread_mutex_lock(&p->lock);
    while (p->cache_bytes > (int64_t)p->conf.max_cache_size && p->lru_tail) {
        struct proxy_entry *e = p->lru_tail;
        proxy_index_drop(p, e);
        e->hnext = victims; /* the index's reference moves to the list */
        victims = e;
        n++;
    }
    rd_metric_set(p->m_cache_bytes, (double)p->cache_bytes);
    rd_metric_set(p->m_cache_objects, (double)p->n_entries);
    pthread_mutex_unlock(&p->lock);
    while (victims) {
        struct proxy_entry *next = victims->hnext;
        rd_log(p->h, RD_DEBUG, "evicted %s (%lld bytes)", victims->key, (long long)victims->size);
        proxy_stq_delete(p, victims->key);
        victims->hnext = NULL;
        proxy_entry_unref(victims);
        victims = next;
    }
    if (n)
        rd_metric_add(p->m_evicted, (double)n);
}
