/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/module.c -- the proxy module's descriptor, configuration
 * (main section and [backend.NAME] sections), life cycle, status, the
 * periodic flush of access times and counters, and the counting helpers.
 * init/start/stop/destroy run on the main thread (the loop is not running
 * yet, or any more); the flush timer on the loop thread; status on an HTTP
 * thread (it takes p->lock).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "core/module.h"
#include "modules/proxy/cache_key.h"
#include "modules/proxy/proxy.h"

const struct rd_cfg_key proxy_keys[] = {
    RD_CFG_STRING("listen", struct proxy_conf, listen, "127.0.0.1:3128",
                  "HOST:PORT of the proxy's own listener (port 0: any free port)"),
    RD_CFG_PATH("cache_dir", struct proxy_conf, cache_dir, "cache",
                "directory of cached objects (relative: under the module's state directory)"),
    RD_CFG_SIZE("max_cache_size", struct proxy_conf, max_cache_size, "10GiB",
                "total size of cached objects; the least recently used go above it"),
    RD_CFG_SIZE("max_object_size", struct proxy_conf, max_object_size, "4GiB",
                "larger responses are passed on but not cached"),
    RD_CFG_DURATION("connect_timeout", struct proxy_conf, connect_timeout_ms, "10s",
                    "connecting to an upstream; past it the client gets 502"),
    RD_CFG_DURATION("upstream_idle_timeout", struct proxy_conf, upstream_idle_timeout_ms, "30s",
                    "an upstream that sends nothing for this long fails with 504"),
    RD_CFG_DURATION("client_timeout", struct proxy_conf, client_timeout_ms, "60s",
                    "idle keep-alive connections and clients that stop reading are closed"),
    RD_CFG_SIZE("max_header_size", struct proxy_conf, max_header_size, "16KiB",
                "request line plus headers; longer requests get 414 or 431"),
    RD_CFG_BOOL("serve_stale", struct proxy_conf, serve_stale, "yes",
                "answer with a stale cached copy (X-Cache: STALE) when the upstream fails"),
    RD_CFG_DURATION("stale_if_error", struct proxy_conf, stale_if_error_ms, "7d",
                    "how long past its freshness a copy may stand in for a failed upstream"),
    RD_CFG_BOOL("forward", struct proxy_conf, forward, "yes",
                "accept absolute-URI requests (http_proxy clients), for configured upstreams only"),
    RD_CFG_STRING("host_suffix", struct proxy_conf, host_suffix, "",
                  "reverse mode by Host header: BACKEND.<host_suffix> selects a backend"),
    RD_CFG_DURATION("flush_interval", struct proxy_conf, flush_interval_ms, "2s",
                    "how often access times, hit counts and totals are written to the store"),
    RD_CFG_INT("max_clients", struct proxy_conf, max_clients, "4096",
               "client connections beyond this many are closed at once"),
    RD_CFG_END,
};

static const struct rd_cfg_key proxy_backend_keys[] = {
    RD_CFG_STRING("url", struct proxy_backend_conf, url, NULL,
                  "upstream base URL (http:// or https://, optional path prefix); required"),
    RD_CFG_DURATION("default_ttl", struct proxy_backend_conf, default_ttl_ms, "1h",
                    "freshness lifetime of responses that name none"),
    RD_CFG_BOOL("immutable", struct proxy_backend_conf, immutable, "no",
                "URLs never change: objects are fresh forever and never revalidated"),
    RD_CFG_STRING("content_digest", struct proxy_backend_conf, content_digest, "",
                  "sha512 or sha256: the URL's last segment is the body's digest, verified"),
    RD_CFG_STRING("ca_file", struct proxy_backend_conf, ca_file, "",
                  "CA bundle for an https upstream (default: the system's)"),
    RD_CFG_END,
};

/* ------------------------------------------------------------ counting */

void proxy_count_request(struct proxy *p, struct proxy_backend *be, enum proxy_result r)
{
    if (!be)
        return;
    pthread_mutex_lock(&p->lock);
    be->c.requests++;
    switch (r) {
    case PROXY_R_HIT:
        be->c.hits++;
        break;
    case PROXY_R_MISS:
        be->c.misses++;
        break;
    case PROXY_R_COALESCED:
        be->c.coalesced++;
        break;
    case PROXY_R_STALE:
        be->c.stale++;
        break;
    case PROXY_R_ERROR:
        break; /* upstream errors are counted where they happen */
    }
    pthread_mutex_unlock(&p->lock);
    switch (r) {
    case PROXY_R_HIT:
        rd_metric_add(be->m_hit, 1);
        break;
    case PROXY_R_MISS:
        rd_metric_add(be->m_miss, 1);
        break;
    case PROXY_R_COALESCED:
        rd_metric_add(be->m_coalesced, 1);
        break;
    case PROXY_R_STALE:
        rd_metric_add(be->m_stale, 1);
        break;
    case PROXY_R_ERROR:
        break;
    }
}

void proxy_count_bytes(struct proxy *p, struct proxy_backend *be, uint64_t served, bool from_cache)
{
    if (!be)
        return;
    pthread_mutex_lock(&p->lock);
    be->c.bytes_served += served;
    if (from_cache)
        be->c.bytes_hit += served;
    pthread_mutex_unlock(&p->lock);
    rd_metric_add(be->m_bytes_served, (double)served);
    if (from_cache)
        rd_metric_add(be->m_bytes_cache, (double)served);
}

void proxy_count_upstream(struct proxy *p, struct proxy_backend *be, uint64_t bytes)
{
    pthread_mutex_lock(&p->lock);
    be->c.bytes_upstream += bytes;
    pthread_mutex_unlock(&p->lock);
    rd_metric_add(be->m_bytes_upstream, (double)bytes);
}

/* --------------------------------------------------------- configuration */

struct backend_load {
    struct proxy *p;
    int rc;
};

static int backend_url_parse(struct proxy *p, struct proxy_backend *be)
{
    struct proxy_uri u;
    const char *why = NULL, *url = be->conf.url;
    size_t len;

    if (!url || !url[0]) {
        rd_log(p->h, RD_ERROR, "configuration: [backend.%s] needs url", be->name);
        return RD_EINVAL;
    }
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (proxy_uri_parse(url, len, &u, &why) != RD_OK || memchr(url, '?', len)) {
        rd_log(p->h, RD_ERROR, "configuration: [backend.%s] url = %s: %s", be->name, url,
               why ? why : "a base URL takes no query");
        return RD_EINVAL;
    }
    memcpy(be->scheme, u.scheme, sizeof(be->scheme));
    memcpy(be->host, u.host, sizeof(be->host));
    be->port = u.port;
    /* base = the URL as configured minus trailing slashes; the prefix is
       its path ("" when the URL has none). */
    if ((size_t)snprintf(be->base, sizeof(be->base), "%.*s", (int)len, url) >= sizeof(be->base)) {
        rd_log(p->h, RD_ERROR, "configuration: [backend.%s] url is too long", be->name);
        return RD_EINVAL;
    }
    be->prefix_off = u.path >= url && u.path < url + len ? (size_t)(u.path - url) : len;
    return RD_OK;
}

static int backend_section(const char *section, void *arg)
{
    struct backend_load *bl = arg;
    struct proxy *p = bl->p;
    struct proxy_backend *be, *n;
    struct rd_error err = {0};
    const char *name = section + strlen("backend.");
    int rc;

    if (!name[0] || strlen(name) >= sizeof(be->name) ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(name)) {
        rd_log(p->h, RD_ERROR, "configuration: [%s]: backend names are 1-63 of a-z 0-9 - _",
               section);
        return bl->rc = RD_EINVAL;
    }
    for (size_t i = 0; i < p->n_backends; i++)
        if (strcmp(p->backends[i].name, name) == 0) {
            rd_log(p->h, RD_ERROR, "configuration: [%s] is given twice", section);
            return bl->rc = RD_EINVAL;
        }
    n = realloc(p->backends, (p->n_backends + 1) * sizeof(*n));
    if (!n)
        return bl->rc = RD_ENOMEM;
    p->backends = n;
    be = &p->backends[p->n_backends];
    memset(be, 0, sizeof(*be));
    snprintf(be->name, sizeof(be->name), "%s", name);
    rc = rd_config_load(p->h, section, proxy_backend_keys, &be->conf, &err);
    if (rc != RD_OK) {
        rd_log(p->h, RD_ERROR, "configuration: %s", err.msg);
        return bl->rc = rc;
    }
    if (backend_url_parse(p, be) != RD_OK)
        return bl->rc = RD_EINVAL;
    if (!be->conf.content_digest || !be->conf.content_digest[0])
        be->digest_hex = 0;
    else if (strcmp(be->conf.content_digest, "sha512") == 0)
        be->digest_hex = 128;
    else if (strcmp(be->conf.content_digest, "sha256") == 0)
        be->digest_hex = 64;
    else {
        rd_log(p->h, RD_ERROR, "configuration: [%s] content_digest = %s: sha512, sha256 or empty",
               section, be->conf.content_digest);
        return bl->rc = RD_EINVAL;
    }
    p->n_backends++;
    return RD_OK;
}

/* Backends are known once all are read (realloc moves them), so their
   metrics and prefix pointers are set afterwards. */
static int backend_metrics(struct proxy *p, struct proxy_backend *be)
{
    char tags[96];
    struct rd_host *h = p->h;

    snprintf(tags, sizeof(tags), "backend=%s", be->name);
    be->m_hit = rd_metric(h, RD_COUNTER, "hits", "requests answered from the cache", tags);
    be->m_miss =
        rd_metric(h, RD_COUNTER, "misses", "requests that started an upstream fetch", tags);
    be->m_coalesced = rd_metric(h, RD_COUNTER, "coalesced",
                                "requests that joined an upstream fetch in flight", tags);
    be->m_stale = rd_metric(h, RD_COUNTER, "stale",
                            "requests answered with a stale copy on an upstream error", tags);
    be->m_error = rd_metric(h, RD_COUNTER, "upstream_errors", "failed upstream fetches", tags);
    snprintf(tags, sizeof(tags), "backend=%s,source=cache", be->name);
    be->m_bytes_cache = rd_metric(h, RD_COUNTER, "bytes", "body bytes by source", tags);
    snprintf(tags, sizeof(tags), "backend=%s,source=upstream", be->name);
    be->m_bytes_upstream = rd_metric(h, RD_COUNTER, "bytes", "body bytes by source", tags);
    snprintf(tags, sizeof(tags), "backend=%s,source=served", be->name);
    be->m_bytes_served = rd_metric(h, RD_COUNTER, "bytes", "body bytes by source", tags);
    snprintf(tags, sizeof(tags), "backend=%s", be->name);
    be->m_latency = rd_metric(h, RD_HISTOGRAM, "upstream_latency_seconds",
                              "time to the upstream's response headers", tags);
    if (!be->m_hit || !be->m_miss || !be->m_coalesced || !be->m_stale || !be->m_error ||
        !be->m_bytes_cache || !be->m_bytes_upstream || !be->m_bytes_served || !be->m_latency)
        return RD_ENOMEM;
    return RD_OK;
}

static int proxy_metrics(struct proxy *p)
{
    struct rd_host *h = p->h;

    p->m_cache_bytes = rd_metric(h, RD_GAUGE, "cache_bytes", "bytes of cached objects", NULL);
    p->m_cache_objects = rd_metric(h, RD_GAUGE, "cache_objects", "cached objects", NULL);
    p->m_inflight = rd_metric(h, RD_GAUGE, "inflight", "upstream fetches in flight", NULL);
    p->m_disk_full = rd_metric(h, RD_GAUGE, "disk_full",
                               "1 while caching is stopped because the disk is full", NULL);
    p->m_bad_requests = rd_metric(h, RD_COUNTER, "bad_requests",
                                  "requests refused as malformed (400, 414, 431, 505)", NULL);
    p->m_forbidden = rd_metric(h, RD_COUNTER, "forbidden",
                               "forward-mode requests for hosts that are not configured", NULL);
    p->m_evicted =
        rd_metric(h, RD_COUNTER, "evicted", "objects evicted to stay under the cap", NULL);
    p->m_clients = rd_metric(h, RD_GAUGE, "clients", "open client connections", NULL);
    p->m_requests = rd_metric(h, RD_COUNTER, "requests", "requests on the proxy listener", NULL);
    if (!p->m_cache_bytes || !p->m_cache_objects || !p->m_inflight || !p->m_disk_full ||
        !p->m_bad_requests || !p->m_forbidden || !p->m_evicted || !p->m_clients || !p->m_requests)
        return RD_ENOMEM;
    return RD_OK;
}

/* ---------------------------------------------------------- life cycle */

/* Drops the index references of purged entries (loop thread, or destroy). */
static void graveyard_empty(struct proxy *p)
{
    struct proxy_entry *e;

    pthread_mutex_lock(&p->lock);
    e = p->graveyard;
    p->graveyard = NULL;
    pthread_mutex_unlock(&p->lock);
    while (e) {
        struct proxy_entry *next = e->hnext;
        e->hnext = NULL;
        proxy_entry_unref(e);
        e = next;
    }
}

/* Queues the access times and hit counts that changed, and the totals. */
static void flush_queue(struct proxy *p)
{
    pthread_mutex_lock(&p->lock);
    for (struct proxy_entry *e = p->lru_head; e && e->dirty; e = e->lru_next) {
        /* The LRU order puts every touched entry at the front. */
        e->dirty = false;
        proxy_stq_touch(p, e->key, e->last_access_ms, e->hits);
    }
    pthread_mutex_unlock(&p->lock);
    proxy_stq_totals(p);
}

int64_t proxy_disk_avail(const struct proxy *p)
{
    struct statvfs sv;

    if (statvfs(p->cache_dir, &sv) != 0)
        return -1;
    return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}

/* Caching resumes 30 s after the disk filled up, or as soon as at least
   DISK_FREED more bytes are free (a purge, an operator's cleanup). */
#define DISK_FREED (1024 * 1024)

static void on_flush(void *arg)
{
    struct proxy *p = arg;

    if (p->disk_full) {
        int64_t avail = proxy_disk_avail(p);
        bool freed =
            avail >= 0 && p->disk_full_avail >= 0 && avail - p->disk_full_avail >= DISK_FREED;
        if (freed || (int64_t)rd_now_ms(p->h) - p->disk_full_ms > 30000) {
            p->disk_full = false; /* try caching again */
            rd_metric_set(p->m_disk_full, 0);
            rd_log(p->h, RD_INFO, "caching resumes (%s)",
                   freed ? "disk space was freed" : "disk space is tried again");
        }
    }
    graveyard_empty(p);
    flush_queue(p);
    proxy_stq_kick(p);
}

static void proxy_destroy(void *mod)
{
    struct proxy *p = mod;

    if (!p)
        return;
    /* A start that failed after listening leaves the listener to us. */
    if (p->listener || p->conns)
        proxy_server_stop(p);
    proxy_stq_free(p);
    graveyard_empty(p);
    pthread_mutex_lock(&p->lock);
    while (p->lru_head) {
        struct proxy_entry *e = p->lru_head;
        proxy_index_remove(p, e);
        proxy_entry_unref(e);
    }
    pthread_mutex_unlock(&p->lock);
    free(p->buckets);
    free(p->backends);
    free(p->cache_dir);
    free(p->tmp_dir);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int proxy_init(struct rd_host *h, void **out)
{
    struct proxy *p = NULL;
    struct rd_error err = {0};
    struct backend_load bl = {0};
    int rc;

    p = calloc(1, sizeof(*p));
    if (!p)
        return RD_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->h = h;
    rc = rd_config_load(h, NULL, proxy_keys, &p->conf, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    if (p->conf.max_object_size > p->conf.max_cache_size)
        p->conf.max_object_size = p->conf.max_cache_size;
    if (p->conf.max_header_size < 256 || p->conf.max_header_size > 1024 * 1024) {
        rd_log(h, RD_ERROR, "configuration: max_header_size must be 256 bytes to 1MiB");
        rc = RD_EINVAL;
        goto out;
    }
    if (p->conf.flush_interval_ms < 10) {
        rd_log(h, RD_ERROR, "configuration: flush_interval must be at least 10ms");
        rc = RD_EINVAL;
        goto out;
    }
    bl.p = p;
    rc = rd_config_sections(h, "backend.", backend_section, &bl);
    if (rc == RD_OK)
        rc = bl.rc;
    if (rc != RD_OK)
        goto out;
    for (size_t i = 0; i < p->n_backends; i++) {
        struct proxy_backend *be = &p->backends[i];
        be->prefix = be->base + be->prefix_off; /* base no longer moves */
        rc = backend_metrics(p, be);
        if (rc != RD_OK)
            goto out;
    }
    rc = proxy_metrics(p);
    if (rc != RD_OK)
        goto out;
    p->cache_dir = strdup(p->conf.cache_dir);
    if (!p->cache_dir || asprintf(&p->tmp_dir, "%s/tmp", p->cache_dir) < 0) {
        p->tmp_dir = NULL;
        rc = RD_ENOMEM;
        goto out;
    }
    rc = proxy_store_migrate(p);
    if (rc != RD_OK)
        goto out;
    rc = proxy_stq_new(p);
    if (rc != RD_OK)
        goto out;
    rc = proxy_index_grow(p);
    if (rc != RD_OK)
        goto out;
    *out = p;
    p = NULL;
out:
    proxy_destroy(p);
    return rc;
}

static int proxy_start(void *mod)
{
    struct proxy *p = mod;
    int rc;

    rc = proxy_store_load(p);
    if (rc != RD_OK)
        return rc;
    proxy_evict(p); /* the cap may have shrunk since the last run */
    rc = proxy_api_start(p);
    if (rc != RD_OK)
        return rc;
    p->flush_timer = rd_timer_every(p->h, p->conf.flush_interval_ms, on_flush, p);
    if (!p->flush_timer)
        return RD_ENOMEM;
    rc = proxy_server_start(p);
    if (rc != RD_OK)
        return rc;
    rd_log(p->h, RD_INFO,
           "listening on port %d: %zu backends, cache %s (cap %llu bytes, max object %llu)",
           p->port, p->n_backends, p->cache_dir, (unsigned long long)p->conf.max_cache_size,
           (unsigned long long)p->conf.max_object_size);
    return RD_OK;
}

static void proxy_stop(void *mod)
{
    struct proxy *p = mod;

    rd_timer_cancel(p->flush_timer);
    p->flush_timer = NULL;
    proxy_server_stop(p);
    proxy_obj_abort_all(p);
    /* Queued now, written by destroy (the loop no longer runs). */
    flush_queue(p);
}

static json_t *proxy_status(void *mod)
{
    struct proxy *p = mod;
    json_t *st;

    pthread_mutex_lock(&p->lock);
    st = json_pack("{s:i, s:I, s:I, s:I, s:i, s:b}", "port", p->port, "objects",
                   (json_int_t)p->n_entries, "bytes", (json_int_t)p->cache_bytes, "max_bytes",
                   (json_int_t)p->conf.max_cache_size, "inflight", (int)p->n_objs, "disk_full",
                   p->disk_full);
    pthread_mutex_unlock(&p->lock);
    return st;
}

static const struct rd_module proxy_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "proxy",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi =
#include "modules/proxy/openapi.json.h"
        ,
    .keys = proxy_keys,
    .init = proxy_init,
    .start = proxy_start,
    .stop = proxy_stop,
    .destroy = proxy_destroy,
    .status = proxy_status,
    .reload = NULL,
};

RD_MODULE_EXPORT(proxy_module)
