/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/server.c -- the proxy's own listener (default
 * 127.0.0.1:3128) on the host's libevent loop: one bufferevent per client,
 * the strict request parser (http_req.c), request routing (reverse mode by
 * backend name or Host suffix, forward mode for configured upstream hosts
 * only), and responses: cached objects as file segments (sendfile), objects
 * in flight streamed from their temporary file as it grows, and JSON errors.
 * Everything runs on the loop thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "modules/proxy/cache_key.h"
#include "modules/proxy/proxy.h"

#define OUT_LOW (64 * 1024) /* write callback once the output is this small */
#define MAX_SINGLE_WRITE (4 * 1024 * 1024)
/* Bodies this small are kept in memory once hit: the head and the body then
   go out in one writev instead of a writev and a sendfile. */
#define SMALL_BODY_MAX (16 * 1024)
#define SMALL_BODIES_MAX (16 * 1024 * 1024)

static void conn_process(struct proxy_conn *c);
static void response_done(struct proxy_conn *c);

/* ------------------------------------------------------------ helpers */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 410:
        return "Gone";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

static const char *date_now(struct proxy *p)
{
    time_t now = time(NULL);

    if ((int64_t)now != p->date_s) {
        p->date_s = (int64_t)now;
        proxy_http_date_fmt(p->date_s, p->date);
    }
    return p->date;
}

static void set_timeouts(struct proxy_conn *c, bool reading)
{
    struct timeval tv = {(time_t)(c->p->conf.client_timeout_ms / 1000),
                         (suseconds_t)(c->p->conf.client_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, reading ? &tv : NULL, &tv);
}

static void conn_free(struct proxy_conn *c)
{
    struct proxy *p = c->p;

    if (c->obj)
        proxy_obj_detach(c->obj, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->n_conns--;
    rd_metric_set(p->m_clients, (double)p->n_conns);
    if (c->kick)
        event_free(c->kick);
    /* Drained here, not when libevent finalises the bufferevent later in
       the loop: the file segments in it hold object references that must
       go while the module exists. */
    evbuffer_drain(bufferevent_get_output(c->bev),
                   evbuffer_get_length(bufferevent_get_output(c->bev)));
    bufferevent_free(c->bev);
    free(c);
}

static void kick(struct proxy_conn *c)
{
    event_active(c->kick, EV_TIMEOUT, 0);
}

/* Ends the exchange after this response: no more reading, close once the
   output is written. */
static void conn_close_after(struct proxy_conn *c)
{
    c->keep_alive = false;
    c->st = PC_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    kick(c);
}

/* A JSON error {"error":{"code","message"}}; close: end the connection. */
static void send_error(struct proxy_conn *c, int status, const char *code, const char *msg,
                       bool close_after)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg ? msg : "");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) + 1 : 0;

    if (close_after)
        c->keep_alive = false;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nDate: %s\r\nVia: 1.1 relengd\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s\r\n",
                        status, reason(status), date_now(c->p), len,
                        status == 405 ? "Allow: GET, HEAD\r\n" : "",
                        c->keep_alive ? (c->minor == 0 ? "Connection: keep-alive\r\n" : "")
                                      : "Connection: close\r\n");
    if (text && !c->head_only) {
        evbuffer_add(out, text, len - 1);
        evbuffer_add(out, "\n", 1);
    }
    free(text);
    json_decref(body);
    rd_log(c->p->h, RD_DEBUG, "%d %s: %s", status, code, msg ? msg : "");
    if (c->be)
        proxy_count_request(c->p, c->be, PROXY_R_ERROR);
    response_done(c);
}

static const char *connection_hdr(const struct proxy_conn *c)
{
    if (!c->keep_alive)
        return "Connection: close\r\n";
    return c->minor == 0 ? "Connection: keep-alive\r\n" : "";
}

/* ------------------------------------------------------ cached objects */

/* Opens e's file once; the segment is shared by every response. A small
   body is read into memory instead (up to SMALL_BODIES_MAX in all). */
static int entry_segment(struct proxy *p, struct proxy_entry *e)
{
    char path[4300];
    int fd;

    if (e->seg || e->mem)
        return RD_OK;
    proxy_entry_path(p, e, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return RD_ENOTFOUND;
    if (e->size <= SMALL_BODY_MAX && p->mem_bytes + e->size <= SMALL_BODIES_MAX) {
        char *m = malloc(e->size > 0 ? (size_t)e->size : 1);
        ssize_t n = m ? pread(fd, m, (size_t)e->size, 0) : -1;
        if (n == e->size) {
            close(fd);
            e->mem = m;
            e->mem_account = &p->mem_bytes;
            p->mem_bytes += e->size;
            return RD_OK;
        }
        free(m); /* fall back on the file */
    }
    e->seg = evbuffer_file_segment_new(fd, 0, e->size, EVBUF_FS_CLOSE_ON_FREE);
    if (!e->seg) {
        close(fd);
        return RD_ENOMEM;
    }
    return RD_OK;
}

/* Serves a complete cached entry (HIT, STALE, revalidated). RD_ENOTFOUND if
   its file is gone (the caller fetches afresh). */
static int serve_entry(struct proxy_conn *c, struct proxy_entry *e, enum proxy_result result,
                       const char *xcache)
{
    struct proxy *p = c->p;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int64_t first = 0, last = e->size - 1, len = e->size;
    int64_t age_s = proxy_age_ms(e->initial_age_ms, e->stored_ms, (int64_t)rd_now_ms(p->h)) / 1000;
    int status = 200;
    char crange[96] = "";
    int rc = entry_segment(p, e);

    if (rc != RD_OK)
        return rc;
    if (c->has_range) {
        if (proxy_range_resolve(&c->range, e->size, &first, &last) != RD_OK) {
            status = 416;
            len = 0;
            snprintf(crange, sizeof(crange), "Content-Range: bytes */%lld\r\n", (long long)e->size);
        } else {
            status = 206;
            len = last - first + 1;
            snprintf(crange, sizeof(crange), "Content-Range: bytes %lld-%lld/%lld\r\n",
                     (long long)first, (long long)last, (long long)e->size);
        }
    }
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nDate: %s\r\nAge: %lld\r\nVia: 1.1 relengd\r\n"
                        "X-Cache: %s\r\nAccept-Ranges: bytes\r\n%s%sContent-Length: %lld\r\n%s\r\n",
                        status, reason(status), date_now(p), (long long)age_s, xcache,
                        status == 416 ? "" : e->headers, crange, (long long)len, connection_hdr(c));
    if (!c->head_only && len > 0) {
        if (e->mem)
            evbuffer_add(out, e->mem + first, (size_t)len);
        else
            evbuffer_add_file_segment(out, e->seg, first, len);
        proxy_count_bytes(p, e->be, (uint64_t)len, true);
    }
    proxy_count_request(p, e->be, result);
    response_done(c);
    return RD_OK;
}

/* ----------------------------------------------------- objects in flight */

static void seg_released(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    proxy_obj_release((struct proxy_obj *)arg);
}

/* Sends the response head for an object whose upstream headers are in. */
static void stream_start(struct proxy_conn *c)
{
    struct proxy *p = c->p;
    struct proxy_obj *o = c->obj;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int status = o->status;
    int64_t length = o->length, first = 0, last = length - 1;
    char crange[96] = "", clen[64] = "";
    bool bodyless = status == 204 || status == 304 || (status >= 100 && status < 200);

    c->off = 0;
    c->end = length;
    if (o->direct)
        c->has_range = false; /* the bytes pass once, from the start */
    if (c->has_range && status == 200 && length >= 0) {
        if (proxy_range_resolve(&c->range, length, &first, &last) != RD_OK) {
            evbuffer_add_printf(out,
                                "HTTP/1.1 416 %s\r\nDate: %s\r\nVia: 1.1 relengd\r\nX-Cache: %s\r\n"
                                "Content-Range: bytes */%lld\r\nContent-Length: 0\r\n%s\r\n",
                                reason(416), date_now(p), c->xcache, (long long)length,
                                connection_hdr(c));
            proxy_obj_detach(o, c);
            proxy_count_request(p, c->be, c->result);
            response_done(c);
            return;
        }
        status = 206;
        c->off = first;
        c->end = last + 1;
        snprintf(crange, sizeof(crange), "Content-Range: bytes %lld-%lld/%lld\r\n",
                 (long long)first, (long long)last, (long long)length);
    }
    if (bodyless) {
        c->end = 0;
    } else if (c->end >= 0) {
        snprintf(clen, sizeof(clen), "Content-Length: %lld\r\n", (long long)(c->end - c->off));
    } else if (c->minor >= 1) {
        c->chunked = true;
        snprintf(clen, sizeof(clen), "Transfer-Encoding: chunked\r\n");
    } else {
        c->keep_alive = false; /* an HTTP/1.0 body without a length ends at the close */
    }
    evbuffer_add_printf(
        out,
        "HTTP/1.1 %d %s\r\nDate: %s\r\nAge: 0\r\nVia: 1.1 relengd\r\nX-Cache: %s\r\n"
        "%s%s%s%s%s\r\n",
        status, reason(status), date_now(p), c->xcache,
        length >= 0 && o->status == 200 ? "Accept-Ranges: bytes\r\n" : "",
        o->headers ? o->headers : "", crange, clen, connection_hdr(c));
    c->hdr_sent = true;
    proxy_count_request(p, c->be, c->result);
    if (c->head_only || bodyless) {
        proxy_obj_detach(o, c);
        response_done(c);
        return;
    }
    c->st = PC_STREAMING;
}

/* Queues every byte of the object that is there and not sent yet, as file
   segments of the temporary file (sendfile; no copy in memory). */
static void stream_pump(struct proxy_conn *c)
{
    struct proxy_obj *o = c->obj;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int64_t limit = o->written;

    if (c->end >= 0 && limit > c->end)
        limit = c->end;
    /* The last byte waits until the object is committed (upstream.c
       sync_start): whoever has the whole body finds it in the cache. */
    if (!o->done && o->length > 0 && limit >= o->length)
        limit = o->length - 1;
    if (o->direct)
        limit = c->off; /* pushed as they come (proxy_conn_push) */
    if (limit > c->off) {
        int64_t n = limit - c->off;
        struct evbuffer_file_segment *seg =
            evbuffer_file_segment_new(o->fd, c->off, n, EVBUF_FS_DISABLE_LOCKING);
        if (!seg) {
            conn_free(c);
            return;
        }
        /* The segment borrows the object's descriptor: it holds a
           reference until libevent lets the segment go. */
        proxy_obj_hold(o);
        evbuffer_file_segment_add_cleanup_cb(seg, seg_released, o);
        if (c->chunked)
            evbuffer_add_printf(out, "%llx\r\n", (unsigned long long)n);
        evbuffer_add_file_segment(out, seg, 0, n);
        evbuffer_file_segment_free(seg); /* the buffer keeps its own reference */
        if (c->chunked)
            evbuffer_add(out, "\r\n", 2);
        proxy_count_bytes(c->p, c->be, (uint64_t)n, false);
        c->off = limit;
    }
    if ((c->end >= 0 && c->off >= c->end) ||
        (c->end < 0 && o->done && !o->failed && c->off >= o->written)) {
        if (c->chunked)
            evbuffer_add(out, "0\r\n\r\n", 5);
        proxy_obj_detach(o, c);
        response_done(c);
        return;
    }
    if (o->failed || (o->done && c->off < (c->end >= 0 ? c->end : o->written))) {
        /* The upstream broke off after our headers went out: cut the
           connection so the client sees a truncated body, never a short
           one that looks complete. */
        conn_free(c);
    }
}

void proxy_conn_push(struct proxy_conn *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->chunked)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (c->chunked)
        evbuffer_add(out, "\r\n", 2);
    proxy_count_bytes(c->p, c->be, (uint64_t)len, false);
    c->off += (int64_t)len;
}

void proxy_conn_wake(struct proxy_conn *c)
{
    struct proxy_obj *o = c->obj;

    if (!o)
        return;
    if (c->st == PC_WAITING) {
        if (o->serve) {
            struct proxy_entry *e = o->serve;
            bool stale = o->failed;
            e->refs++;
            proxy_obj_detach(o, c);
            c->st = PC_READING;
            if (serve_entry(c, e, stale ? PROXY_R_STALE : PROXY_R_HIT, stale ? "STALE" : "HIT") !=
                RD_OK)
                send_error(c, 502, "cache_error", "the cached copy is unreadable", false);
            proxy_entry_unref(e);
            return;
        }
        if (o->failed) {
            char msg[300];
            int status = o->err_status;
            snprintf(msg, sizeof(msg), "%s", o->err_msg);
            proxy_obj_detach(o, c);
            c->st = PC_READING;
            send_error(c, status, o->err_code, msg, false);
            return;
        }
        if (!o->headers_done)
            return;
        if (o->be->digest_hex && o->status == 200 && !o->verified)
            return; /* content-addressed: no byte before the digest checks out */
        stream_start(c);
        if (c->st != PC_STREAMING)
            return;
    }
    /* A reader with plenty queued is pumped by its write callback once it
       drains: one big file segment then, not one per upstream chunk. */
    if (c->st == PC_STREAMING &&
        (evbuffer_get_length(bufferevent_get_output(c->bev)) <= OUT_LOW || o->done || o->failed))
        stream_pump(c);
}

/* ------------------------------------------------------------- routing */

static struct proxy_backend *backend_by_name(struct proxy *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n_backends; i++)
        if (strlen(p->backends[i].name) == len && memcmp(p->backends[i].name, name, len) == 0)
            return &p->backends[i];
    return NULL;
}

/* Forward mode: the backend whose scheme, host, port and path prefix match
   the absolute URI. *path is what follows the prefix. */
static struct proxy_backend *backend_by_uri(struct proxy *p, const struct proxy_uri *u,
                                            const char *norm, const char **path)
{
    struct proxy_backend *best = NULL;
    size_t best_len = 0;

    /* The longest matching prefix wins: /ca beats "" on the same host. */
    for (size_t i = 0; i < p->n_backends; i++) {
        struct proxy_backend *be = &p->backends[i];
        size_t pl = strlen(be->prefix);
        if (strcmp(be->scheme, u->scheme) != 0 || strcmp(be->host, u->host) != 0 ||
            be->port != u->port)
            continue;
        if (pl > 0 && (strncmp(norm, be->prefix, pl) != 0 || (norm[pl] != '/' && norm[pl] != '?')))
            continue;
        if (!best || pl > best_len) {
            best = be;
            best_len = pl;
        }
    }
    if (best)
        *path = norm + best_len;
    return best;
}

/* Starts (or joins) the fetch of key and makes c a reader. */
static void fetch_and_wait(struct proxy_conn *c, const char *key, const char *url,
                           struct proxy_entry *stale)
{
    struct proxy *p = c->p;
    struct proxy_obj *o = proxy_obj_find(p, key);

    if (o) {
        c->xcache = "COALESCED";
        c->result = PROXY_R_COALESCED;
    } else {
        int rc = proxy_obj_start(p, c->be, key, url, stale, &o);
        if (rc != RD_OK) {
            send_error(c, 502, "upstream_error", "cannot start the upstream request", false);
            return;
        }
        c->xcache = "MISS";
        c->result = PROXY_R_MISS;
    }
    c->st = PC_WAITING;
    proxy_obj_attach(o, c);
    proxy_conn_wake(c);
}

static bool hdr_is(const struct proxy_hdr *h, const char *v)
{
    size_t n = strlen(v);
    return h && h->value_len == n && strncasecmp(h->value, v, n) == 0;
}

int proxy_resolve(struct proxy *p, const char *target, size_t target_len, const char *host,
                  size_t host_len, struct proxy_backend **be_out, char *key, size_t key_size,
                  char *url, size_t url_size, int *status, const char **code, char *msg,
                  size_t msg_size)
{
    char norm[PROXY_KEY_MAX];
    const char *why = NULL, *path = NULL;
    struct proxy_backend *be = NULL;
    char name[64];

    *be_out = NULL;
    *status = 400;
    *code = "bad_request";
    if (target_len > 0 && target[0] == '/') {
        /* Reverse mode: by Host suffix, else by the first path segment. */
        if (host && proxy_host_backend(host, host_len, p->conf.host_suffix, name, sizeof(name))) {
            be = backend_by_name(p, name, strlen(name));
            if (!be) {
                *status = 404;
                *code = "unknown_backend";
                snprintf(msg, msg_size, "no backend named '%s'", name);
                return RD_ENOTFOUND;
            }
            if (proxy_path_normalize(target, target_len, norm, sizeof(norm), &why) != RD_OK)
                goto bad;
        } else {
            size_t i = 1;
            while (i < target_len && target[i] != '/' && target[i] != '?')
                i++;
            be = backend_by_name(p, target + 1, i - 1);
            if (!be) {
                *status = 404;
                *code = "unknown_backend";
                snprintf(msg, msg_size, "no backend named '%.*s' (the path starts with one)",
                         (int)(i - 1 > 64 ? 64 : i - 1), target + 1);
                for (char *s = msg; *s; s++)
                    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
                        *s = '?';
                return RD_ENOTFOUND;
            }
            if (i == target_len || target[i] == '?') {
                /* "/hg" and "/hg?x": the backend's root */
                char tmp[PROXY_KEY_MAX];
                int n = snprintf(tmp, sizeof(tmp), "/%.*s", (int)(target_len - i), target + i);
                if (n < 0 || (size_t)n >= sizeof(tmp)) {
                    why = "path too long";
                    goto bad;
                }
                if (proxy_path_normalize(tmp, (size_t)n, norm, sizeof(norm), &why) != RD_OK)
                    goto bad;
            } else if (proxy_path_normalize(target + i, target_len - i, norm, sizeof(norm), &why) !=
                       RD_OK) {
                goto bad;
            }
        }
        path = norm;
    } else if (target_len > 0 && target[0] != '*') {
        /* Forward mode: an absolute URI, for configured upstreams only. */
        struct proxy_uri u;
        char tnorm[PROXY_KEY_MAX];
        if (proxy_uri_parse(target, target_len, &u, &why) != RD_OK ||
            proxy_path_normalize(u.path, u.path_len, tnorm, sizeof(tnorm), &why) != RD_OK)
            goto bad;
        be = p->conf.forward ? backend_by_uri(p, &u, tnorm, &path) : NULL;
        if (!be) {
            rd_metric_add(p->m_forbidden, 1);
            *status = 403;
            *code = "forbidden_upstream";
            snprintf(msg, msg_size, "%s://%s:%d is not a configured upstream%s", u.scheme, u.host,
                     u.port, p->conf.forward ? "" : " (forward mode is off)");
            return RD_EPERM;
        }
        snprintf(norm, sizeof(norm), "%s", path[0] ? path : "/");
        path = norm;
    } else {
        why = "unsupported request target";
        goto bad;
    }
    *be_out = be;
    if (be->digest_hex) {
        char want[129];
        if (proxy_digest_from_path(path, be->digest_hex, want) != RD_OK) {
            snprintf(msg, msg_size,
                     "backend %s is content-addressed: the URL must end in the %s of the file",
                     be->name, be->digest_hex == 128 ? "SHA-512" : "SHA-256");
            return RD_EINVAL;
        }
    }
    if (proxy_cache_key(be->name, path, key, key_size) != RD_OK ||
        (url && (size_t)snprintf(url, url_size, "%s%s", be->base, path) >= url_size)) {
        *status = 414;
        *code = "uri_too_long";
        snprintf(msg, msg_size, "the URL is too long");
        return RD_ETOOBIG;
    }
    return RD_OK;
bad:
    snprintf(msg, msg_size, "%s", why ? why : "bad request target");
    return RD_EINVAL;
}

static void handle(struct proxy_conn *c, const struct proxy_req *req)
{
    struct proxy *p = c->p;
    const struct proxy_hdr *host = proxy_req_header(req, "host");
    const struct proxy_hdr *conn = proxy_req_header(req, "connection");
    const struct proxy_hdr *range, *cl;
    char key[PROXY_KEY_MAX + 80], url[PROXY_KEY_MAX + 1100], msg[400];
    const char *code = NULL;
    struct proxy_entry *e;
    int status, rc;

    c->minor = req->minor;
    c->head_only = req->method == PROXY_M_HEAD;
    c->be = NULL;
    c->has_range = false;
    c->chunked = false;
    c->hdr_sent = false;
    c->started_ms = (int64_t)rd_now_ms(p->h);
    c->keep_alive =
        req->minor >= 1
            ? !(conn && proxy_value_has_token(conn->value, conn->value_len, "close"))
            : (conn && proxy_value_has_token(conn->value, conn->value_len, "keep-alive"));
    if (p->stopping)
        c->keep_alive = false;
    rd_metric_add(p->m_requests, 1);

    if (req->method == PROXY_M_CONNECT) {
        send_error(
            c, 405, "method_not_allowed",
            "CONNECT tunnels are not supported: ask for http:// URLs of configured upstreams",
            true);
        return;
    }
    if (req->method == PROXY_M_OTHER) {
        snprintf(msg, sizeof(msg), "method %.*s is not supported: GET and HEAD only",
                 (int)(req->method_len > 32 ? 32 : req->method_len), req->method_str);
        send_error(c, 405, "method_not_allowed", msg, true);
        return;
    }
    if (proxy_req_header_count(req, "host") > 1 || (req->minor >= 1 && !host)) {
        rd_metric_add(p->m_bad_requests, 1);
        send_error(c, 400, "bad_request", "exactly one Host header is required", true);
        return;
    }
    cl = proxy_req_header(req, "content-length");
    /* every Content-Length, not the first: "0" then "5" would leave five
       body bytes to be read as the next request (a desync with a front
       end that honours the last one) */
    if (proxy_req_header(req, "transfer-encoding") || (cl && !hdr_is(cl, "0")) ||
        proxy_req_header_count(req, "content-length") > 1) {
        rd_metric_add(p->m_bad_requests, 1);
        send_error(c, 400, "bad_request", "GET and HEAD requests take no body", true);
        return;
    }
    rc = proxy_resolve(p, req->target, req->target_len, host ? host->value : NULL,
                       host ? host->value_len : 0, &c->be, key, sizeof(key), url, sizeof(url),
                       &status, &code, msg, sizeof(msg));
    if (rc != RD_OK) {
        if (status == 400)
            rd_metric_add(p->m_bad_requests, 1);
        send_error(c, status, code, msg, false);
        return;
    }
    range = proxy_req_header(req, "range");
    if (range && proxy_range_parse(range->value, range->value_len, &c->range) == RD_OK)
        c->has_range = true;

    pthread_mutex_lock(&p->lock);
    e = proxy_index_get(p, key);
    if (e) {
        e->refs++;
        proxy_index_touch(p, e, (int64_t)rd_now_ms(p->h));
    }
    pthread_mutex_unlock(&p->lock);
    if (e &&
        proxy_is_fresh(e->lifetime_ms, e->initial_age_ms, e->stored_ms, (int64_t)rd_now_ms(p->h))) {
        rc = serve_entry(c, e, PROXY_R_HIT, "HIT");
        if (rc == RD_OK) {
            proxy_entry_unref(e);
            return;
        }
        /* The file went (removed by hand?): forget the entry, fetch again. */
        rd_log(p->h, RD_WARN, "cached file of %s is unreadable; fetching it again", key);
        pthread_mutex_lock(&p->lock);
        if (e->in_index) {
            proxy_index_drop(p, e);
            proxy_entry_unref(e); /* the index's reference */
        }
        pthread_mutex_unlock(&p->lock);
        proxy_stq_delete(p, key);
        proxy_stq_kick(p);
        proxy_entry_unref(e);
        e = NULL;
    }
    fetch_and_wait(c, key, url, e);
    proxy_entry_unref(e);
}

/* ------------------------------------------------------- the connection */

static void response_done(struct proxy_conn *c)
{
    c->obj = NULL;
    c->be = NULL;
    c->has_range = false;
    c->chunked = false;
    c->hdr_sent = false;
    if (!c->keep_alive) {
        conn_close_after(c);
        return;
    }
    c->st = PC_READING;
    set_timeouts(c, true);
    bufferevent_enable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        kick(c); /* a pipelined request: handled outside this call chain */
}

static int status_error_code(int status, const char **code)
{
    switch (status) {
    case 414:
        *code = "uri_too_long";
        break;
    case 431:
        *code = "headers_too_large";
        break;
    case 505:
        *code = "http_version_not_supported";
        break;
    default:
        *code = "bad_request";
        status = 400;
        break;
    }
    return status;
}

static void conn_process(struct proxy_conn *c)
{
    struct proxy *p = c->p;

    while (c->st == PC_READING) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len = evbuffer_get_length(in), max = p->conf.max_header_size, n;
        struct proxy_req req;
        const char *why = NULL, *code;
        const char *buf;
        long r;

        if (len == 0)
            return;
        n = len < max ? len : max;
        buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
        if (!buf)
            return;
        r = proxy_req_parse(buf, n, max, &req, &why);
        if (r == 0)
            return;
        if (r < 0) {
            int status = status_error_code((int)-r, &code);
            rd_metric_add(p->m_bad_requests, 1);
            c->minor = 1;
            c->head_only = false;
            evbuffer_drain(in, len);
            send_error(c, status, code, why, true);
            return;
        }
        handle(c, &req);
        /* handle copied what it needs; the head can go. A closing
           connection ignores whatever else the client sent. */
        evbuffer_drain(in, c->st == PC_CLOSING ? evbuffer_get_length(in) : (size_t)r);
        if (c->st != PC_READING && c->st != PC_CLOSING) {
            set_timeouts(c, false);
            /* Pipelined requests wait; a client that floods us while its
               response is pending is not read further. */
            if (evbuffer_get_length(in) > max)
                bufferevent_disable(c->bev, EV_READ);
        }
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->st == PC_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
        return;
    }
    if (c->st == PC_READING)
        conn_process(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct proxy_conn *c = arg;

    (void)bev;
    if (c->st == PC_READING)
        conn_process(c);
    else if (evbuffer_get_length(bufferevent_get_input(c->bev)) > c->p->conf.max_header_size)
        bufferevent_disable(c->bev, EV_READ);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct proxy_conn *c = arg;

    if (c->st == PC_STREAMING && c->obj) {
        if (c->obj->paused)
            proxy_obj_resume(c->obj);
        else
            stream_pump(c); /* may end the response, or free c */
        return;
    }
    if (c->st == PC_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c); /* a reader leaving never stops the shared download */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct proxy *p = arg;
    struct proxy_conn *c = NULL;
    int one = 1;

    (void)l;
    (void)sa;
    (void)len;
    if (p->stopping || (p->conf.max_clients > 0 && p->n_conns >= p->conf.max_clients)) {
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->p = p;
    c->bev = bufferevent_socket_new(rd_event_base(p->h), fd, BEV_OPT_CLOSE_ON_FREE);
    c->kick = event_new(rd_event_base(p->h), -1, 0, on_kick, c);
    if (!c->bev || !c->kick) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->kick)
            event_free(c->kick);
        free(c);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->st = PC_READING;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    p->n_conns++;
    rd_metric_set(p->m_clients, (double)p->n_conns);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    /* libevent writes at most 16 KiB per write event by default: 64 loop
       turns for one 1 MiB object. Let sendfile take what the socket takes. */
    bufferevent_set_max_single_write(c->bev, MAX_SINGLE_WRITE);
    set_timeouts(c, true);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* "HOST:PORT" or "[V6]:PORT" (port 0: any) into ss. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int *sslen)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    const char *colon = strrchr(s, ':');
    char host[256];
    size_t hl;
    long port;
    char *end;

    if (!colon || colon == s)
        return RD_EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return RD_EINVAL;
    hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return RD_EINVAL;
        s++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return RD_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *sslen = (int)sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *sslen = (int)sizeof(*sin6);
    } else {
        return RD_EINVAL;
    }
    return RD_OK;
}

int proxy_server_start(struct proxy *p)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    int sslen = 0;
    socklen_t bl = sizeof(ss);

    if (parse_listen(p->conf.listen, &ss, &sslen) != RD_OK) {
        rd_log(p->h, RD_ERROR, "configuration: listen = %s is not IP:PORT", p->conf.listen);
        return RD_EINVAL;
    }
    p->listener =
        evconnlistener_new_bind(rd_event_base(p->h), on_accept, p,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                1024, (struct sockaddr *)&ss, sslen);
    if (!p->listener) {
        rd_log(p->h, RD_ERROR, "cannot listen on %s: %s", p->conf.listen, strerror(errno));
        return RD_EIO;
    }
    bl = sizeof(ss);
    if (getsockname(evconnlistener_get_fd(p->listener), (struct sockaddr *)&ss, &bl) == 0)
        p->port = ss.ss_family == AF_INET6 ? ntohs(sin6->sin6_port) : ntohs(sin->sin_port);
    return rd_ready_port(p->h, "proxy", p->port);
}

void proxy_server_stop(struct proxy *p)
{
    p->stopping = true;
    if (p->listener) {
        evconnlistener_free(p->listener);
        p->listener = NULL;
    }
    while (p->conns)
        conn_free(p->conns);
}
