/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/api.c -- the proxy's JSON API under /api/v1/proxy: cache
 * statistics per backend, objects in flight, the biggest and hottest
 * objects, and purge (scope proxy:purge). Handlers run on HTTP worker
 * threads: they read and change the index under p->lock only and never
 * wait for the loop; a purged entry's last reference is dropped on the loop
 * thread (the flush timer empties p->graveyard).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modules/proxy/cache_key.h"
#include "modules/proxy/proxy.h"

static json_t *counts_json(const struct proxy_counts *c)
{
    double served = (double)c->bytes_served;
    double saved =
        c->bytes_served > c->bytes_upstream ? (double)(c->bytes_served - c->bytes_upstream) : 0.0;
    uint64_t answered = c->hits + c->misses + c->coalesced + c->stale;

    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "requests",
        (json_int_t)c->requests, "hits", (json_int_t)c->hits, "misses", (json_int_t)c->misses,
        "coalesced", (json_int_t)c->coalesced, "stale", (json_int_t)c->stale, "revalidated",
        (json_int_t)c->revalidated, "errors", (json_int_t)c->errors, "uncacheable",
        (json_int_t)c->uncacheable, "fetches", (json_int_t)c->fetches, "bytes_served",
        (json_int_t)c->bytes_served, "bytes_from_cache", (json_int_t)c->bytes_hit, "bytes_upstream",
        (json_int_t)c->bytes_upstream, "bytes_saved", saved, "hit_ratio",
        answered ? (double)(c->hits + c->coalesced + c->stale) / (double)answered : 0.0,
        "byte_hit_ratio", served > 0 ? saved / served : 0.0);
}

static void counts_add(struct proxy_counts *t, const struct proxy_counts *c)
{
    t->requests += c->requests;
    t->hits += c->hits;
    t->misses += c->misses;
    t->coalesced += c->coalesced;
    t->stale += c->stale;
    t->revalidated += c->revalidated;
    t->errors += c->errors;
    t->uncacheable += c->uncacheable;
    t->bytes_served += c->bytes_served;
    t->bytes_hit += c->bytes_hit;
    t->bytes_upstream += c->bytes_upstream;
    t->fetches += c->fetches;
}

json_t *proxy_stats_json(struct proxy *p)
{
    struct proxy_counts total = {0};
    json_t *backends = json_object(), *out;

    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_backends && backends; i++) {
        struct proxy_backend *be = &p->backends[i];
        json_t *b = counts_json(&be->c);
        if (b) {
            json_object_set_new(b, "url", json_string(be->base));
            json_object_set_new(b, "immutable", json_boolean(be->conf.immutable));
            json_object_set_new(
                b, "content_digest",
                json_string(be->conf.content_digest ? be->conf.content_digest : ""));
        }
        json_object_set_new(backends, be->name, b);
        counts_add(&total, &be->c);
    }
    out = json_pack("{s:o, s:o, s:{s:I, s:I, s:I, s:I, s:b}, s:i, s:I, s:i}", "total",
                    counts_json(&total), "backends", backends, "cache", "objects",
                    (json_int_t)p->n_entries, "bytes", (json_int_t)p->cache_bytes, "max_bytes",
                    (json_int_t)p->conf.max_cache_size, "max_object_bytes",
                    (json_int_t)p->conf.max_object_size, "disk_full", p->disk_full, "inflight",
                    (int)p->n_objs, "time_ms", (json_int_t)rd_now_ms(p->h), "port", p->port);
    pthread_mutex_unlock(&p->lock);
    return out;
}

/* GET /stats */
static int api_stats(struct rd_req *r, void *arg)
{
    json_t *s = proxy_stats_json(arg);
    return s ? rd_reply_json(r, 200, s) : RD_ENOMEM;
}

/* GET /inflight */
static int api_inflight(struct rd_req *r, void *arg)
{
    struct proxy *p = arg;
    json_t *list;

    pthread_mutex_lock(&p->lock);
    list = proxy_obj_list_json(p);
    pthread_mutex_unlock(&p->lock);
    if (!list)
        return RD_ENOMEM;
    return rd_reply_json(r, 200, json_pack("{s:o}", "objects", list));
}

struct obj_row {
    const char *key; /* borrowed under the lock only */
    const char *backend;
    int64_t size, hits, last_access_ms, stored_ms;
};

static int by_size(const void *a, const void *b)
{
    const struct obj_row *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : strcmp(x->key, y->key);
}

static int by_hits(const void *a, const void *b)
{
    const struct obj_row *x = a, *y = b;
    return x->hits < y->hits ? 1 : x->hits > y->hits ? -1 : by_size(a, b);
}

/* GET /objects?sort=hits|size&limit=N: the hottest or biggest objects. */
static int api_objects(struct rd_req *r, void *arg)
{
    struct proxy *p = arg;
    const char *sort = rd_req_param(r, "sort"), *limit_s = rd_req_param(r, "limit");
    long limit = 20;
    struct obj_row *rows = NULL;
    size_t n = 0;
    json_t *list = NULL;
    int rc = RD_ENOMEM;

    if (sort && strcmp(sort, "hits") != 0 && strcmp(sort, "size") != 0)
        return rd_reply_error(r, 400, "bad_request", "sort: hits or size");
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || end == limit_s || limit < 1 || limit > 1000)
            return rd_reply_error(r, 400, "bad_request", "limit: 1 to 1000");
    }
    list = json_array();
    if (!list)
        return RD_ENOMEM;
    pthread_mutex_lock(&p->lock);
    rows = calloc(p->n_entries ? p->n_entries : 1, sizeof(*rows));
    if (!rows) {
        pthread_mutex_unlock(&p->lock);
        goto out;
    }
    for (struct proxy_entry *e = p->lru_head; e; e = e->lru_next)
        rows[n++] = (struct obj_row){e->key,  e->be->name,       e->size,
                                     e->hits, e->last_access_ms, e->stored_ms};
    qsort(rows, n, sizeof(*rows), sort && strcmp(sort, "size") == 0 ? by_size : by_hits);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        const char *sp = strchr(rows[i].key, ' ');
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "key",
                                              rows[i].key, "backend", rows[i].backend, "path",
                                              sp ? sp + 1 : "", "size", (json_int_t)rows[i].size,
                                              "hits", (json_int_t)rows[i].hits, "last_access_ms",
                                              (json_int_t)rows[i].last_access_ms, "stored_ms",
                                              (json_int_t)rows[i].stored_ms));
    }
    pthread_mutex_unlock(&p->lock);
    rc = rd_reply_json(r, 200, json_pack("{s:O, s:I}", "objects", list, "total", (json_int_t)n));
out:
    free(rows);
    json_decref(list);
    return rc;
}

/* POST /purge {"url": U} or {"prefix": U}: U is an upstream URL
   (https://host/path) or a proxy path (/BACKEND/path). */
static int api_purge(struct rd_req *r, void *arg)
{
    struct proxy *p = arg;
    const json_t *body = rd_req_body(r), *v;
    const char *target = NULL, *field = NULL, *k, *code;
    char key[PROXY_KEY_MAX + 80], msg[400];
    struct proxy_backend *be = NULL;
    struct proxy_entry *e, *next, *gone = NULL;
    int64_t n = 0, bytes = 0, n_inflight = 0;
    int status;
    size_t klen;

    if (!json_is_object(body))
        return rd_reply_error(r, 400, "bad_request",
                              "body: expected {\"url\": ...} or {\"prefix\": ...}");
    json_object_foreach((json_t *)body, k, v)
    {
        if ((strcmp(k, "url") != 0 && strcmp(k, "prefix") != 0) || field)
            return rd_reply_error(r, 400, "bad_request", "%s: give exactly one of url and prefix",
                                  k);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return rd_reply_error(r, 400, "bad_request", "%s: a non-empty string", k);
        field = k;
        target = json_string_value(v);
    }
    if (!field)
        return rd_reply_error(r, 400, "bad_request", "url or prefix: required");
    if (proxy_resolve(p, target, strlen(target), NULL, 0, &be, key, sizeof(key), NULL, 0, &status,
                      &code, msg, sizeof(msg)) != RD_OK) {
        if (status == 403)
            status = 404, code = "unknown_upstream";
        return rd_reply_error(r, status == 414 ? 400 : status, code, "%s: %s", field, msg);
    }
    klen = strlen(key);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_buckets; i++) {
        for (e = p->buckets[i]; e; e = next) {
            next = e->hnext;
            bool match =
                field[0] == 'u' ? strcmp(e->key, key) == 0 : strncmp(e->key, key, klen) == 0;
            if (!match)
                continue;
            proxy_index_drop(p, e);
            n++;
            bytes += e->size;
            proxy_stq_delete(p, e->key);
            e->hnext = gone;
            gone = e;
        }
    }
    /* The loop drops the index references (entries are freed there). */
    while (gone) {
        next = gone->hnext;
        gone->hnext = p->graveyard;
        p->graveyard = gone;
        gone = next;
    }
    for (struct proxy_obj *o = p->objs; o; o = o->next) {
        bool match = field[0] == 'u' ? strcmp(o->key, key) == 0 : strncmp(o->key, key, klen) == 0;
        if (match && !o->purged) {
            o->purged = true; /* finishes for its readers, is never cached */
            n_inflight++;
        }
    }
    pthread_mutex_unlock(&p->lock);
    rd_log(p->h, RD_INFO, "purge %s %s by %s: %lld objects, %lld bytes", field, target,
           rd_req_principal(r), (long long)n, (long long)bytes);
    return rd_reply_json(r, 200,
                         json_pack("{s:I, s:I, s:I, s:s}", "purged", (json_int_t)n, "bytes",
                                   (json_int_t)bytes, "inflight", (json_int_t)n_inflight, "key",
                                   key));
}

int proxy_api_start(struct proxy *p)
{
    int rc = rd_route(p->h, "GET", "/stats", NULL, api_stats, p);

    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/inflight", NULL, api_inflight, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/objects", NULL, api_objects, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "POST", "/purge", "proxy:purge", api_purge, p);
    if (rc != RD_OK)
        rd_log(p->h, RD_ERROR, "cannot register routes (error %d)", rc);
    return rc;
}
