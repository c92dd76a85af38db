/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/upstream.c -- upstream fetches: one object per cache key in
 * flight, driven by the host's curl multi on the loop thread (rd_fetch).
 * The body is written to a temporary file as it arrives; the readers (client
 * connections) stream from that file and are woken on every chunk. At the
 * end the object is verified (length; SHA-512 or SHA-256 for content-
 * addressed backends), renamed into place and put in the index, in that
 * order; on failure every reader gets a clean error and the file goes. All
 * functions run on the loop thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/evp.h>

#include "lib/hash/hash.h"
#include "modules/proxy/cache_key.h"
#include "modules/proxy/proxy.h"

#define PROXY_MAX_UPSTREAM_HEADERS (64 * 1024)
#define DIRECT_MAX_BUFFERED (4 * 1024 * 1024) /* per reader, in direct mode */

/* The status code after "HTTP/x " (three digits), or 0. */
static int status_code(const char *s)
{
    if (s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return 0;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

static void obj_ref(struct proxy_obj *o)
{
    o->refs++;
}

static void obj_unlink(struct proxy_obj *o)
{
    struct proxy *p = o->p;

    pthread_mutex_lock(&p->lock);
    if (o->prev || p->objs == o) {
        if (o->prev)
            o->prev->next = o->next;
        else
            p->objs = o->next;
        if (o->next)
            o->next->prev = o->prev;
        o->next = o->prev = NULL;
        p->n_objs--;
    }
    pthread_mutex_unlock(&p->lock);
    rd_metric_set(p->m_inflight, (double)p->n_objs);
}

static void obj_unref(struct proxy_obj *o)
{
    if (!o || --o->refs > 0)
        return;
    obj_unlink(o);
    if (o->fd >= 0)
        close(o->fd);
    if (o->tmp_path) {
        unlink(o->tmp_path); /* gone already when committed */
        free(o->tmp_path);
    }
    if (o->stale)
        proxy_entry_unref(o->stale);
    if (o->serve)
        proxy_entry_unref(o->serve);
    curl_slist_free_all(o->slist);
    EVP_MD_CTX_free(o->sha256);
    EVP_MD_CTX_free(o->sha512);
    free(o->headers);
    free(o->cc);
    free(o->expires);
    free(o->date);
    free(o->age);
    free(o->etag);
    free(o->last_modified);
    free(o->key);
    free(o->url);
    free(o);
}

/* Wakes every reader; o stays alive through the walk. */
static void obj_wake(struct proxy_obj *o)
{
    struct proxy_conn *c, *next;

    obj_ref(o);
    for (c = o->readers; c; c = next) {
        next = c->rnext;
        proxy_conn_wake(c);
    }
    obj_unref(o);
}

void proxy_obj_hold(struct proxy_obj *o)
{
    obj_ref(o);
}

void proxy_obj_release(struct proxy_obj *o)
{
    obj_unref(o);
}

struct proxy_obj *proxy_obj_find(struct proxy *p, const char *key)
{
    for (struct proxy_obj *o = p->objs; o; o = o->next)
        if (!o->done && !o->failed && !o->direct && strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

void proxy_obj_attach(struct proxy_obj *o, struct proxy_conn *c)
{
    c->obj = o;
    c->rprev = NULL;
    c->rnext = o->readers;
    if (o->readers)
        o->readers->rprev = c;
    o->readers = c;
    o->n_readers++;
    obj_ref(o);
}

void proxy_obj_detach(struct proxy_obj *o, struct proxy_conn *c)
{
    if (c->obj != o)
        return;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        o->readers = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    c->rnext = c->rprev = NULL;
    c->obj = NULL;
    o->n_readers--;
    if (o->direct && !o->readers && !o->done) {
        o->stopped = true; /* nobody left to pass the bytes to */
        proxy_obj_resume(o);
    }
    obj_unref(o);
}

/* Whether the stale entry may answer instead of an upstream error (RFC 5861
   stale-if-error, with the window from the configuration). */
static bool stale_usable(struct proxy_obj *o)
{
    struct proxy_entry *e = o->stale;
    int64_t age, limit;

    if (!e || !o->p->conf.serve_stale)
        return false;
    age = proxy_age_ms(e->initial_age_ms, e->stored_ms, (int64_t)rd_now_ms(o->p->h));
    if (e->lifetime_ms > INT64_MAX / 2)
        return true;
    limit = e->lifetime_ms + (int64_t)o->p->conf.stale_if_error_ms;
    return age <= limit;
}

static void obj_fail(struct proxy_obj *o, int status, const char *code, const char *fmt, ...)
    RD_PRINTF(4, 5);
static void obj_fail(struct proxy_obj *o, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (o->failed)
        return;
    o->failed = true;
    o->err_status = status;
    snprintf(o->err_code, sizeof(o->err_code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(o->err_msg, sizeof(o->err_msg), fmt, ap);
    va_end(ap);
    rd_log(o->p->h, RD_WARN, "upstream %s failed: %s", o->url, o->err_msg);
    rd_metric_add(o->be->m_error, 1);
    pthread_mutex_lock(&o->p->lock);
    o->be->c.errors++;
    pthread_mutex_unlock(&o->p->lock);
    /* A stale copy may stand in for readers that got nothing yet. */
    if (!o->serve && stale_usable(o)) {
        o->serve = o->stale;
        o->serve->refs++;
    }
}

/* ------------------------------------------------------- curl callbacks */

static char *dup_value(const char *v, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, v, len);
        s[len] = '\0';
    }
    return s;
}

static void replace(char **slot, const char *v, size_t len)
{
    free(*slot);
    *slot = dup_value(v, len);
}

/* Header lines the proxy sets itself, and hop-by-hop ones, are not passed on. */
static bool header_dropped(const char *name, size_t len)
{
    static const char *const drop[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "date",
        "age",
        "server",
        "set-cookie",
        "accept-ranges",
        "x-cache",
        "via",
        "proxy-authenticate",
        "content-range",
        NULL,
    };
    for (size_t i = 0; drop[i]; i++)
        if (strlen(drop[i]) == len && strncasecmp(drop[i], name, len) == 0)
            return true;
    return false;
}

static int headers_add(struct proxy_obj *o, const char *line, size_t len)
{
    if (o->headers_len + len + 1 > o->headers_cap) {
        size_t cap = o->headers_cap ? o->headers_cap * 2 : 1024;
        char *n;
        while (cap < o->headers_len + len + 1)
            cap *= 2;
        if (cap > PROXY_MAX_UPSTREAM_HEADERS)
            return RD_ETOOBIG;
        n = realloc(o->headers, cap);
        if (!n)
            return RD_ENOMEM;
        o->headers = n;
        o->headers_cap = cap;
    }
    memcpy(o->headers + o->headers_len, line, len);
    o->headers_len += len;
    o->headers[o->headers_len] = '\0';
    return RD_OK;
}

static void headers_reset(struct proxy_obj *o)
{
    o->headers_len = 0;
    if (o->headers)
        o->headers[0] = '\0';
    o->length = -1;
    o->vary_star = false;
    free(o->cc);
    free(o->expires);
    free(o->date);
    free(o->age);
    free(o->etag);
    free(o->last_modified);
    o->cc = o->expires = o->date = o->age = o->etag = o->last_modified = NULL;
}

/* Refreshes a stored entry from a 304 (RFC 9111 4.3.4): new freshness from
   the 304's own fields, else from those stored with the entry. */
static void obj_revalidated(struct proxy_obj *o)
{
    struct proxy *p = o->p;
    struct proxy_entry *e = o->stale;
    struct proxy_fresh_in in = {.status = 200,
                                .cache_control = o->cc,
                                .expires = o->expires,
                                .date = o->date,
                                .age = o->age,
                                .now_ms = (int64_t)rd_now_ms(p->h),
                                .default_ttl_ms = (int64_t)o->be->conf.default_ttl_ms,
                                .immutable_backend = o->be->conf.immutable};
    struct proxy_fresh f;
    char *cc = NULL, *exp = NULL;

    if (!o->cc && !o->expires && e->headers) {
        /* The stored Cache-Control/Expires still describe the object. */
        const char *s = e->headers;
        while (*s) {
            const char *eol = strstr(s, "\r\n");
            const char *colon = memchr(s, ':', eol ? (size_t)(eol - s) : strlen(s));
            if (!eol)
                break;
            if (colon) {
                size_t nl = (size_t)(colon - s);
                const char *v = colon + 1;
                while (*v == ' ')
                    v++;
                if (nl == 13 && strncasecmp(s, "cache-control", 13) == 0 && !cc)
                    cc = dup_value(v, (size_t)(eol - v));
                else if (nl == 7 && strncasecmp(s, "expires", 7) == 0 && !exp)
                    exp = dup_value(v, (size_t)(eol - v));
            }
            s = eol + 2;
        }
        in.cache_control = cc;
        in.expires = exp;
    }
    proxy_freshness(&in, &f);
    pthread_mutex_lock(&p->lock);
    e->stored_ms = in.now_ms;
    e->initial_age_ms = f.initial_age_ms;
    e->lifetime_ms = f.storable ? f.lifetime_ms : 0;
    e->dirty = true;
    o->be->c.revalidated++;
    pthread_mutex_unlock(&p->lock);
    if (e->in_index)
        proxy_stq_upsert(p, e);
    proxy_stq_kick(p);
    o->serve = e;
    e->refs++;
    free(cc);
    free(exp);
}

static void obj_headers_done(struct proxy_obj *o)
{
    struct proxy *p = o->p;
    struct proxy_fresh f;
    struct proxy_fresh_in in = {.status = o->status,
                                .cache_control = o->cc,
                                .expires = o->expires,
                                .date = o->date,
                                .age = o->age,
                                .now_ms = (int64_t)rd_now_ms(p->h),
                                .default_ttl_ms = (int64_t)o->be->conf.default_ttl_ms,
                                .immutable_backend = o->be->conf.immutable};

    o->headers_done = true;
    rd_metric_observe(o->be->m_latency, (double)(in.now_ms - o->started_ms) / 1000.0);
    if (o->revalidating && o->status == 304 && o->stale) {
        obj_revalidated(o);
        o->stopped = true;
        obj_wake(o);
        return;
    }
    if (o->status >= 500 && stale_usable(o)) {
        /* The stale copy answers; the error's body is not needed. */
        obj_fail(o, 502, "upstream_error", "GET %s: upstream answered %d", o->url, o->status);
        o->stopped = true;
        obj_wake(o);
        return;
    }
    proxy_freshness(&in, &f);
    o->cacheable = f.storable && !o->vary_star && !p->disk_full &&
                   (o->length < 0 || (uint64_t)o->length <= p->conf.max_object_size);
    if (!o->cacheable) {
        pthread_mutex_lock(&p->lock);
        o->be->c.uncacheable++;
        pthread_mutex_unlock(&p->lock);
        rd_log(p->h, RD_DEBUG, "not caching %s: %s", o->url,
               f.storable ? "too large, Vary: * or disk full" : f.why_not);
    }
    obj_wake(o);
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct proxy_obj *o = arg;
    size_t len = size * n, l = len;
    const char *colon;

    if (o->stopped)
        return 0;
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
        l--;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len);
        headers_reset(o);
        o->status = sp && sp + 4 <= buf + len ? status_code(sp + 1) : 0;
        return len;
    }
    if (l == 0) {
        if (o->status >= 100 && o->status < 200)
            return len; /* an interim response: the real one follows */
        obj_headers_done(o);
        return o->stopped ? 0 : len;
    }
    colon = memchr(buf, ':', l);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1;
    while (v < buf + l && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(buf + l - v);
#define IS(word) (nl == sizeof(word) - 1 && strncasecmp(buf, word, nl) == 0)
    if (IS("cache-control")) {
        if (o->cc) { /* several lines: one comma-separated list */
            size_t ol = strlen(o->cc);
            char *m = malloc(ol + vl + 3);
            if (m) {
                memcpy(m, o->cc, ol);
                memcpy(m + ol, ", ", 2);
                memcpy(m + ol + 2, v, vl);
                m[ol + 2 + vl] = '\0';
            }
            free(o->cc);
            o->cc = m;
        } else {
            replace(&o->cc, v, vl);
        }
    } else if (IS("expires")) {
        replace(&o->expires, v, vl);
    } else if (IS("date")) {
        replace(&o->date, v, vl);
    } else if (IS("age")) {
        replace(&o->age, v, vl);
    } else if (IS("etag")) {
        replace(&o->etag, v, vl);
    } else if (IS("last-modified")) {
        replace(&o->last_modified, v, vl);
    } else if (IS("vary")) {
        if (proxy_value_has_token(v, vl, "*"))
            o->vary_star = true;
    } else if (IS("content-length")) {
        int64_t cl = 0;
        bool ok = vl > 0 && vl < 19;
        for (size_t i = 0; ok && i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                ok = false;
            else
                cl = cl * 10 + (v[i] - '0');
        }
        o->length = ok ? cl : -1;
    }
#undef IS
    if (header_dropped(buf, nl))
        return len;
    /* Kept as "Name: value\r\n", normalised. */
    if (headers_add(o, buf, nl) != RD_OK || headers_add(o, ": ", 2) != RD_OK ||
        headers_add(o, v, vl) != RD_OK || headers_add(o, "\r\n", 2) != RD_OK) {
        obj_fail(o, 502, "upstream_error", "GET %s: response headers too large", o->url);
        o->stopped = true;
        obj_wake(o);
        return 0;
    }
    return len;
}

void proxy_obj_resume(struct proxy_obj *o)
{
    if (o->paused && o->easy) {
        o->paused = false;
        curl_easy_pause(o->easy, CURLPAUSE_CONT);
    }
}

/* Direct mode (the disk is full): no file, no coalescing; the bytes go to
   the one reader, and curl pauses while that reader is behind. */
static size_t on_body_direct(struct proxy_obj *o, char *data, size_t len)
{
    struct proxy_conn *c = o->readers;

    if (!c || c->st != PC_STREAMING)
        return 0;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > DIRECT_MAX_BUFFERED) {
        o->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    EVP_DigestUpdate(o->sha256, data, len);
    o->written += (int64_t)len;
    proxy_count_upstream(o->p, o->be, len);
    proxy_conn_push(c, data, len);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct proxy_obj *o = arg;
    struct proxy *p = o->p;
    size_t len = size * n, off = 0;

    if (o->stopped || o->failed)
        return 0;
    if (o->direct)
        return on_body_direct(o, data, len);
    while (off < len) {
        ssize_t w = write(o->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            if (e == ENOSPC || e == EDQUOT) {
                if (!p->disk_full)
                    rd_log(p->h, RD_ERROR,
                           "cache disk full (%s): caching stops until space is freed",
                           p->cache_dir);
                p->disk_full = true;
                p->disk_full_ms = (int64_t)rd_now_ms(p->h);
                p->disk_full_avail = proxy_disk_avail(p);
                rd_metric_set(p->m_disk_full, 1);
            }
            obj_fail(o, 502, "cache_write_failed", "GET %s: cannot write the cache file: %s",
                     o->url, strerror(e));
            o->stopped = true;
            obj_wake(o);
            return 0;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(o->sha256, data, len);
    if (o->sha512)
        EVP_DigestUpdate(o->sha512, data, len);
    o->written += (int64_t)len;
    if (o->cacheable && (uint64_t)o->written > p->conf.max_object_size)
        o->cacheable = false;
    proxy_count_upstream(p, o->be, len);
    obj_wake(o);
    return len;
}

/* The directory entry of a rename reaches the disk on a pool thread. */
static void dir_sync_work(void *arg)
{
    int fd = open((const char *)arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void dir_sync_done(void *arg)
{
    free(arg);
}

static void dir_sync_submit(struct proxy *p, const char *file)
{
    const char *slash = strrchr(file, '/');
    char *dir = slash ? strndup(file, (size_t)(slash - file)) : NULL;

    /* Best effort: without it a power loss can lose the name, never leave a
       short file under it, and the start-up check drops the row then. */
    if (dir && rd_submit(p->h, dir_sync_work, dir_sync_done, dir) != RD_OK)
        free(dir);
}

/* Verified: rename into place, then the index, then the row (queued). */
static void obj_commit(struct proxy_obj *o, const char *sha256)
{
    struct proxy *p = o->p;
    struct proxy_entry *e = proxy_entry_new(o->key), *old = NULL;
    struct proxy_fresh f;
    struct proxy_fresh_in in = {.status = o->status,
                                .cache_control = o->cc,
                                .expires = o->expires,
                                .date = o->date,
                                .age = o->age,
                                .now_ms = (int64_t)rd_now_ms(p->h),
                                .default_ttl_ms = (int64_t)o->be->conf.default_ttl_ms,
                                .immutable_backend = o->be->conf.immutable};
    char path[4300];

    if (!e || !(e->headers = strdup(o->headers ? o->headers : "")) ||
        (o->etag && !(e->etag = strdup(o->etag))) ||
        (o->last_modified && !(e->last_modified = strdup(o->last_modified)))) {
        rd_log(p->h, RD_WARN, "not caching %s: out of memory", o->url);
        proxy_entry_unref(e);
        return;
    }
    proxy_freshness(&in, &f);
    e->be = o->be;
    e->size = o->written;
    memcpy(e->sha256, sha256, 65);
    e->status = o->status;
    e->stored_ms = in.now_ms;
    e->initial_age_ms = f.initial_age_ms;
    e->lifetime_ms = f.lifetime_ms;
    e->last_access_ms = in.now_ms;
    proxy_entry_path(p, e, path, sizeof(path));
    pthread_mutex_lock(&p->lock);
    if (o->purged) {
        pthread_mutex_unlock(&p->lock);
        proxy_entry_unref(e);
        return;
    }
    if (rename(o->tmp_path, path) != 0) {
        pthread_mutex_unlock(&p->lock);
        rd_log(p->h, RD_ERROR, "not caching %s: rename to %s: %s", o->url, path, strerror(errno));
        proxy_entry_unref(e);
        return;
    }
    free(o->tmp_path);
    o->tmp_path = NULL;
    e->refs++; /* the index's and ours */
    old = proxy_index_put(p, e);
    pthread_mutex_unlock(&p->lock);
    dir_sync_submit(p, path);
    proxy_stq_upsert(p, e);
    proxy_entry_unref(e);
    if (old)
        proxy_entry_unref(old);
    proxy_evict(p);
    proxy_stq_kick(p);
}

/* Pool thread: the whole body reaches the disk before the file gets its
   final name, so a power loss never leaves a short file under it. Only
   sync_err is written here; the loop reads it in sync_done. */
static void sync_work(void *arg)
{
    struct proxy_obj *o = arg;

    o->sync_err = fsync(o->fd) == 0 ? 0 : errno;
}

static void sync_done(void *arg)
{
    struct proxy_obj *o = arg;

    o->committing = false;
    if (o->sync_err)
        rd_log(o->p->h, RD_ERROR, "not caching %s: fsync: %s", o->url, strerror(o->sync_err));
    else
        obj_commit(o, o->body_sha256);
    o->done = true;
    obj_unlink(o);
    obj_wake(o);  /* the readers' last byte goes out now */
    obj_unref(o); /* the work item's reference */
}

/* Until it is done the object stays in flight (a request joins it, a purge
   marks it) and its readers get every byte but the last (server.c), so a
   client that has the whole body finds the object in the index. */
static void sync_start(struct proxy_obj *o, const char *sha256)
{
    memcpy(o->body_sha256, sha256, sizeof(o->body_sha256));
    /* Set before the work can run: it stays set if the pool drops the item
       (shutdown), and then nothing is committed. */
    o->sync_err = EIO;
    o->committing = true;
    obj_ref(o);
    if (rd_submit(o->p->h, sync_work, sync_done, o) != RD_OK) {
        rd_log(o->p->h, RD_WARN, "not caching %s: cannot queue the fsync", o->url);
        o->committing = false;
        obj_unref(o);
    }
}

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct proxy_obj *o = arg;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char sha256[65], sha512[129], want[129];

    (void)easy;
    o->easy = NULL; /* the host cleans it up after this */
    if (o->failed || o->serve) {
        /* decided already: a stale copy or a revalidated entry answers, or
           the error stands */
    } else if (result != CURLE_OK) {
        bool timeout = result == CURLE_OPERATION_TIMEDOUT;
        obj_fail(o, timeout ? 504 : 502, timeout ? "upstream_timeout" : "upstream_error",
                 "GET %s: %s", o->url, curl_easy_strerror(result));
    } else if (o->length >= 0 && o->written != o->length) {
        obj_fail(o, 502, "upstream_error", "GET %s: got %lld of %lld bytes", o->url,
                 (long long)o->written, (long long)o->length);
    } else {
        EVP_DigestFinal_ex(o->sha256, md, &mdlen);
        hash_hex(md, mdlen, sha256);
        if (o->sha512) {
            EVP_DigestFinal_ex(o->sha512, md, &mdlen);
            hash_hex(md, mdlen, sha512);
        }
        if (o->be->digest_hex && o->status == 200) {
            const char *got = o->be->digest_hex == 128 ? sha512 : sha256;
            if (proxy_digest_from_path(o->key + strlen(o->be->name) + 1, o->be->digest_hex, want) !=
                    RD_OK ||
                strcmp(want, got) != 0) {
                obj_fail(o, 502, "digest_mismatch",
                         "GET %s: body digest %.16s... does not match the URL", o->url, got);
            }
        }
        if (!o->failed) {
            o->verified = true;
            if (o->cacheable && o->status == 200 && !o->direct)
                sync_start(o, sha256);
        }
    }
    if (o->committing) {
        obj_wake(o);  /* verified: content-addressed readers may start */
        obj_unref(o); /* the transfer's reference; sync_done finishes */
        return;
    }
    o->done = true;
    obj_unlink(o); /* new requests look in the index, or start afresh */
    obj_wake(o);
    obj_unref(o); /* the transfer's reference */
}

/* ---------------------------------------------------------------- start */

int proxy_obj_start(struct proxy *p, struct proxy_backend *be, const char *key, const char *url,
                    struct proxy_entry *stale, struct proxy_obj **out)
{
    struct proxy_obj *o = NULL;
    CURL *easy = NULL;
    struct curl_slist *hdrs = NULL;
    char path[4300];
    int rc = RD_ENOMEM;

    *out = NULL;
    o = calloc(1, sizeof(*o));
    if (!o)
        return RD_ENOMEM;
    o->p = p;
    o->be = be;
    o->fd = -1;
    o->length = -1;
    o->refs = 1;
    o->started_ms = (int64_t)rd_now_ms(p->h);
    o->key = strdup(key);
    o->url = strdup(url);
    o->sha256 = EVP_MD_CTX_new();
    if (be->digest_hex == 128)
        o->sha512 = EVP_MD_CTX_new();
    if (!o->key || !o->url || !o->sha256 || (be->digest_hex == 128 && !o->sha512))
        goto fail;
    if (!EVP_DigestInit_ex(o->sha256, EVP_sha256(), NULL) ||
        (o->sha512 && !EVP_DigestInit_ex(o->sha512, EVP_sha512(), NULL)))
        goto fail;
    if (p->disk_full) {
        /* Caching stopped: pass the bytes through instead. Content-
           addressed bodies cannot be verified before they are sent then. */
        if (be->digest_hex) {
            rc = RD_EUNAVAIL;
            goto fail;
        }
        o->direct = true;
        goto no_file;
    }
    snprintf(path, sizeof(path), "%s/%d-%lld.part", p->tmp_dir, (int)getpid(),
             (long long)++p->tmp_seq);
    o->tmp_path = strdup(path);
    if (!o->tmp_path)
        goto fail;
    o->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (o->fd < 0 && (errno == ENOSPC || errno == EDQUOT)) {
        free(o->tmp_path);
        o->tmp_path = NULL;
        o->direct = true;
    } else if (o->fd < 0) {
        rd_log(p->h, RD_ERROR, "cannot create %s: %s", path, strerror(errno));
        free(o->tmp_path);
        o->tmp_path = NULL;
        rc = RD_EIO;
        goto fail;
    }
no_file:
    if (stale) {
        o->stale = stale;
        stale->refs++;
        if (stale->etag || stale->last_modified) {
            char line[1200];
            o->revalidating = true;
            if (stale->etag) {
                snprintf(line, sizeof(line), "If-None-Match: %s", stale->etag);
                hdrs = curl_slist_append(hdrs, line);
            }
            if (stale->last_modified) {
                snprintf(line, sizeof(line), "If-Modified-Since: %s", stale->last_modified);
                hdrs = curl_slist_append(hdrs, line);
            }
        }
    }
    hdrs = curl_slist_append(hdrs, "Via: 1.1 relengd");
    if (!hdrs)
        goto fail;
    easy = curl_easy_init();
    if (!easy)
        goto fail;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "relengd-proxy/" PACKAGE_VERSION);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*"); /* never through the environment's proxy */
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->conf.connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                     (long)((p->conf.upstream_idle_timeout_ms + 999) / 1000));
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, o);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, o);
    if (be->conf.ca_file && be->conf.ca_file[0])
        curl_easy_setopt(easy, CURLOPT_CAINFO, be->conf.ca_file);
    /* curl keeps the header list's pointer: it lives as long as the object,
       which outlives the transfer (on_done drops the transfer's reference). */
    o->slist = hdrs;
    hdrs = NULL;
    pthread_mutex_lock(&p->lock);
    o->next = p->objs;
    if (p->objs)
        p->objs->prev = o;
    p->objs = o;
    p->n_objs++;
    be->c.fetches++;
    pthread_mutex_unlock(&p->lock);
    rd_metric_set(p->m_inflight, (double)p->n_objs);
    o->easy = easy;
    rc = rd_fetch(p->h, easy, on_done, o); /* takes easy, even on failure */
    if (rc != RD_OK) {
        o->easy = NULL;
        obj_unref(o);
        return rc;
    }
    *out = o;
    return RD_OK;
fail:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(easy);
    obj_unref(o);
    return rc;
}

void proxy_obj_abort_all(struct proxy *p)
{
    for (struct proxy_obj *o = p->objs; o; o = o->next)
        o->stopped = true;
}

json_t *proxy_obj_list_json(struct proxy *p)
{
    json_t *a = json_array();

    for (struct proxy_obj *o = p->objs; o && a; o = o->next) {
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:I, s:b}", "key", o->key, "backend",
                         o->be->name, "url", o->url, "bytes", (json_int_t)o->written, "length",
                         (json_int_t)o->length, "readers", (int)o->n_readers, "started_ms",
                         (json_int_t)o->started_ms, "revalidating", o->revalidating));
    }
    return a;
}
