/* SPDX-License-Identifier: MIT */
/*
 * core/http.c -- the HTTP server on civetweb: the dashboard's static files
 * from web_root, and the JSON API. civetweb's begin_request callback sees
 * every request first and decides:
 *   - a path with a ".." segment (after percent-decoding, '/' or '\'):
 *     400, whatever it is for;
 *   - "/api" and "/api/...": the router, token auth and scope checks, the
 *     JSON body, the handler, one JSON (or streamed, or file) reply;
 *   - exactly "/healthz", "/readyz", "/metrics": answered here;
 *   - anything else: GET and HEAD go to civetweb's static file serving
 *     (index.html, no listing, no CGI, no SSI), other methods get 405.
 * Replies carry Content-Type, Content-Length (or chunked), Cache-Control:
 * no-store and X-Content-Type-Options: nosniff. Every request is counted in
 * http.requests{route,method,status} and timed in
 * http.request_duration_seconds{route}, with the route template (never the
 * raw path) as route, and logged at DEBUG without tokens or query strings.
 *
 * Tokens come from "Authorization: Bearer <token>". EventSource cannot set
 * headers, so a GET whose Accept asks for text/event-stream may carry the
 * token as ?access_token= instead; anywhere else that parameter is a 400 so
 * that tokens do not end up in URLs (and proxy logs) by habit. The
 * parameter is never visible to handlers through rd_req_param.
 *
 * TLS: Debian's civetweb 1.15 loads OpenSSL at run time by the names
 * libssl.so and libcrypto.so and wants SSL_get_peer_certificate, which
 * OpenSSL 3 only has as a macro (civetweb issue #1334), so its TLS set-up
 * fails -- and a second mg_init_library call then pretends it worked and
 * crashes at the first handshake. We therefore check first that civetweb
 * will find what it needs, after loading civetweb_ssl_compat.so (a library
 * with SONAME libssl.so that defines the missing function and depends on
 * libssl.so.3) and civetweb_crypto_compat.so (SONAME libcrypto.so) from
 * the module directories, the install's module directory or the program's
 * own directory, where present: glibc hands an already loaded
 * object to a dlopen of its SONAME. Without them (and without a libssl.so
 * that works as it is) HTTPS refuses to start with that explanation,
 * never half-initialised. The certificate file is checked with OpenSSL
 * first so that errors name the file and the problem.
 *
 * Threads: http_start and http_stop on the main thread; everything else on
 * civetweb worker threads, one request per thread.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "core/host.h"
#include "core/log.h"

#define HTTP_MAX_THREADS 1024
#define HTTP_MAX_QUERY 64            /* query parameters looked at */
#define HTTP_DRAIN_MAX (1024 * 1024) /* body bytes read and dropped before a close */
#define HTTP_FILE_CHUNK (64 * 1024)
#define HTTP_READ_CHUNK (1024 * 1024)   /* one mg_read at most (it returns int) */
#define HTTP_BODY_HARD_MAX (1ull << 30) /* max_body is clamped to this */
#define HTTP_API_HEADERS "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"

struct http_req;

struct http {
    struct host *h;
    struct mg_context *ctx;
    struct http_conf conf; /* strings borrowed from the host's configuration */
    int port;
    bool is_tls;

    pthread_mutex_t lock; /* the in-flight list and the stop hand-off */
    pthread_cond_t cond;
    struct http_req *inflight;
    bool stopped;   /* mg_stop returned */
    bool abandoned; /* http_stop gave up waiting: the stop thread frees */

    char start_error[256]; /* civetweb's last message while starting */
    bool starting;
};

/* One API request; lives on the stack of the worker thread's callback. */
struct http_req {
    struct rd_req pub; /* first: the handle handlers get */
    struct http *srv;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const char *method;
    const char *path;  /* percent-decoded, as routed */
    const char *route; /* metrics label: the route template or a fixed word */
    struct route_match match;
    bool has_match;
    struct principal principal;
    json_t *body;
    char **query; /* decoded name, value, name, value ... */
    size_t n_query;
    bool query_parsed;
    int64_t content_length; /* -1: chunked */
    bool is_head;
    int status; /* 0 until the reply started */
    bool chunked;
    bool http10_stream; /* a stream to an HTTP/1.0 client: raw bytes, then close */
    int64_t declared;   /* Content-Length sent, -1 if none */
    int64_t sent;
    struct timespec t0;
    struct http_req *prev, *next;
};

/* What begin_request counted itself, for end_request (same worker thread). */
static _Thread_local struct {
    bool handled;
    struct timespec t0;
} http_tls_req;

static struct http_req *req_of(struct rd_req *r)
{
    return (struct http_req *)r;
}

/* A path for the log: control characters (an escape sequence, a NUL that
   civetweb decoded) become '?'. */
static const char *log_safe(char *dst, size_t len, const char *src)
{
    size_t i = 0;

    for (; src && src[i] && i + 1 < len; i++)
        dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
    dst[i] = '\0';
    return dst;
}

static double http_elapsed_s(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ------------------------------------------------------------- metrics */

/* A label value: no ',' (the tag separator), bounded. */
static void label_copy(char *dst, size_t len, const char *src)
{
    size_t i = 0;

    for (; src && src[i] && i + 1 < len; i++)
        dst[i] = src[i] == ',' ? '_' : src[i];
    dst[i] = '\0';
}

static void http_count(struct http *s, const char *route, const char *method, int status,
                       double seconds)
{
    char r[256], m[24], tags[320];
    struct rd_metric *c, *hist;

    if (!s->h->metrics)
        return;
    label_copy(r, sizeof(r), route);
    label_copy(m, sizeof(m), method);
    snprintf(tags, sizeof(tags), "route=%s,method=%s,status=%d", r, m, status);
    c = metrics_get(s->h->metrics, RD_COUNTER, NULL, "http.requests",
                    "HTTP requests by route template, method and status", tags);
    metrics_add(c, 1);
    if (seconds >= 0) {
        snprintf(tags, sizeof(tags), "route=%s", r);
        hist = metrics_get(s->h->metrics, RD_HISTOGRAM, NULL, "http.request_duration_seconds",
                           "HTTP request duration by route template", tags);
        metrics_observe(hist, seconds);
    }
}

/* ------------------------------------------------------------- replies */

/* Starts a reply: status line and headers. length >= 0: Content-Length;
   -1: chunked (HTTP/1.1) or until close (HTTP/1.0). extra: "Name: v\r\n"
   lines or NULL. RD_ECONFLICT if a reply was started already. */
static int reply_head(struct http_req *q, int status, const char *content_type, const char *extra,
                      int64_t length)
{
    char num[32];

    if (q->status != 0)
        return RD_ECONFLICT;
    if (status < 100 || status > 599 || !content_type || !content_type[0] ||
        strpbrk(content_type, "\r\n"))
        return RD_EINVAL;
    if (length < 0 && q->ri->http_version && strcmp(q->ri->http_version, "1.0") == 0) {
        /* No chunked encoding for HTTP/1.0: the end of the body is the close. */
        mg_disable_connection_keep_alive(q->conn);
        q->http10_stream = true;
    }
    if (mg_response_header_start(q->conn, status) < 0)
        return RD_EIO;
    q->status = status;
    q->declared = length;
    mg_response_header_add(q->conn, "Content-Type", content_type, -1);
    if (length >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, length);
        mg_response_header_add(q->conn, "Content-Length", num, -1);
    } else if (!q->http10_stream) {
        mg_response_header_add(q->conn, "Transfer-Encoding", "chunked", -1);
        q->chunked = true;
    }
    mg_response_header_add_lines(q->conn, HTTP_API_HEADERS);
    if (extra && extra[0])
        mg_response_header_add_lines(q->conn, extra);
    if (mg_response_header_send(q->conn) < 0)
        return RD_EIO;
    return RD_OK;
}

/* Body bytes of a started reply (none for HEAD). */
static int reply_body(struct http_req *q, const void *data, size_t len)
{
    int n;

    if (q->status == 0)
        return RD_ECONFLICT;
    if (len == 0)
        return RD_OK;
    if (q->declared >= 0 && (uint64_t)q->sent + len > (uint64_t)q->declared)
        return RD_EINVAL; /* more than the Content-Length announced */
    q->sent += (int64_t)len;
    if (q->is_head)
        return RD_OK;
    if (len > INT_MAX)
        return RD_EINVAL;
    n = q->chunked ? mg_send_chunk(q->conn, data, (unsigned int)len) : mg_write(q->conn, data, len);
    return n > 0 ? RD_OK : RD_EIO;
}

/* A whole reply in one go. */
static int reply_full(struct http_req *q, int status, const char *content_type, const char *extra,
                      const char *data, size_t len)
{
    int rc = reply_head(q, status, content_type, extra, (int64_t)len);

    if (rc == RD_OK)
        rc = reply_body(q, data, len);
    return rc;
}

static int reply_json_full(struct http_req *q, int status, json_t *body, const char *extra)
{
    char *text = NULL;
    int rc;

    if (!body) {
        /* The handler's json_pack failed (out of memory, most likely). */
        if (q->status == 0) {
            static const char oom[] =
                "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
            reply_full(q, 500, "application/json", NULL, oom, sizeof(oom) - 1);
        }
        return RD_ENOMEM;
    }
    if (q->status != 0) {
        json_decref(body);
        return RD_ECONFLICT;
    }
    text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text)
        return reply_json_full(q, status, NULL, extra);
    rc = reply_full(q, status, "application/json", extra, text, strlen(text));
    free(text);
    return rc;
}

/* {"error":{"code":..,"message":..}} with status and extra headers. */
static int reply_error(struct http_req *q, int status, const char *code, const char *extra,
                       const char *fmt, ...) RD_PRINTF(5, 6);
static int reply_error(struct http_req *q, int status, const char *code, const char *extra,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return reply_json_full(
        q, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg), extra);
}

/* --------------------------------------------- struct rd_req functions */

const char *http_req_method(struct rd_req *r)
{
    return req_of(r)->method;
}
const char *http_req_path(struct rd_req *r)
{
    return req_of(r)->path;
}

/* Splits the query string into decoded pairs, once. access_token is left
   out: it is a credential, not a parameter. */
static void query_parse(struct http_req *q)
{
    const char *qs = q->ri->query_string;
    const char *p = qs;

    q->query_parsed = true;
    if (!qs || !*qs)
        return;
    q->query = calloc(2 * HTTP_MAX_QUERY, sizeof(*q->query));
    if (!q->query)
        return;
    while (*p && q->n_query < HTTP_MAX_QUERY) {
        const char *amp = strchr(p, '&');
        size_t piece = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', piece);
        size_t nlen = eq ? (size_t)(eq - p) : piece;
        size_t vlen = eq ? piece - nlen - 1 : 0;
        char *name = malloc(nlen + 1), *value = malloc(vlen + 1);

        if (!name || !value) {
            free(name);
            free(value);
            return;
        }
        if (nlen == 0 || mg_url_decode(p, (int)nlen, name, (int)nlen + 1, 1) < 0 ||
            strcasecmp(name, "access_token") == 0) {
            free(name);
            free(value);
        } else {
            if (mg_url_decode(eq ? eq + 1 : "", (int)vlen, value, (int)vlen + 1, 1) < 0)
                value[0] = '\0';
            q->query[2 * q->n_query] = name;
            q->query[2 * q->n_query + 1] = value;
            q->n_query++;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
}

const char *http_req_param(struct rd_req *r, const char *name)
{
    struct http_req *q = req_of(r);

    if (!name)
        return NULL;
    for (size_t i = 0; i < q->match.n_params; i++)
        if (strcmp(q->match.names[i], name) == 0)
            return q->match.values[i];
    if (!q->query_parsed)
        query_parse(q);
    for (size_t i = 0; i < q->n_query; i++)
        if (strcmp(q->query[2 * i], name) == 0)
            return q->query[2 * i + 1];
    return NULL;
}

const char *http_req_header(struct rd_req *r, const char *name)
{
    return name ? mg_get_header(req_of(r)->conn, name) : NULL;
}

const json_t *http_req_body(struct rd_req *r)
{
    return req_of(r)->body;
}

int64_t http_req_content_length(struct rd_req *r)
{
    return req_of(r)->content_length;
}

int64_t http_req_read(struct rd_req *r, void *buf, size_t len)
{
    struct http_req *q = req_of(r);
    int n;

    if (!q->has_match || !(q->match.route->flags & RD_ROUTE_RAW))
        return RD_EINVAL; /* the host read the body already */
    if (len == 0 || q->content_length == 0)
        return 0;
    n = mg_read(q->conn, buf, len > INT_MAX ? INT_MAX : len);
    return n < 0 ? RD_EIO : n;
}

bool http_req_has_scope(struct rd_req *r, const char *scope)
{
    return principal_has(&req_of(r)->principal, scope);
}

const char *http_req_principal(struct rd_req *r)
{
    return req_of(r)->principal.name;
}

const struct principal *http_req_auth(struct rd_req *r)
{
    if (!r || r->api != &host_api || req_of(r)->principal.anonymous)
        return NULL;
    return &req_of(r)->principal;
}

int http_reply_json(struct rd_req *r, int status, json_t *body)
{
    return reply_json_full(req_of(r), status, body, NULL);
}

int http_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt, va_list ap)
{
    char msg[512] = "";

    if (fmt)
        vsnprintf(msg, sizeof(msg), fmt, ap);
    return reply_json_full(
        req_of(r), status,
        json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "error", "message", msg), NULL);
}

int http_reply_start(struct rd_req *r, int status, const char *content_type,
                     const char *extra_headers, int64_t length)
{
    return reply_head(req_of(r), status, content_type, extra_headers, length < 0 ? -1 : length);
}

int http_reply_write(struct rd_req *r, const void *data, size_t len)
{
    if (!data && len)
        return RD_EINVAL;
    return reply_body(req_of(r), data, len);
}

/* "bytes=a-b", "bytes=a-", "bytes=-n" against size: true and [*from, *to]
   for one satisfiable range; *bad for a syntactically valid range that
   cannot be satisfied. Anything else (several ranges, other units, junk)
   is ignored: the whole file is sent, as RFC 9110 allows. */
static bool range_parse(const char *h, uint64_t size, uint64_t *from, uint64_t *to, bool *bad)
{
    const char *p;
    char *end;
    uint64_t a, b;

    *bad = false;
    if (!h || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return false;
    p = h + 6;
    while (*p == ' ')
        p++;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9')
            return false;
        errno = 0;
        b = strtoull(p + 1, &end, 10);
        if (errno || *end != '\0')
            return false;
        if (b == 0 || size == 0) {
            *bad = true;
            return false;
        }
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return true;
    }
    if (*p < '0' || *p > '9')
        return false;
    errno = 0;
    a = strtoull(p, &end, 10);
    if (errno || *end != '-')
        return false;
    p = end + 1;
    if (*p == '\0') {
        b = size ? size - 1 : 0;
    } else {
        if (*p < '0' || *p > '9')
            return false;
        errno = 0;
        b = strtoull(p, &end, 10);
        if (errno || *end != '\0' || b < a)
            return false;
        if (b >= size)
            b = size ? size - 1 : 0;
    }
    if (a >= size) {
        *bad = true;
        return false;
    }
    *from = a;
    *to = b;
    return true;
}

int http_reply_file(struct rd_req *r, const char *path, const char *content_type)
{
    struct http_req *q = req_of(r);
    char extra[256], lm[64];
    char *buf = NULL;
    struct stat st;
    struct tm tm;
    uint64_t from = 0, to = 0, left;
    bool partial, unsatisfiable;
    int fd = -1, rc = RD_OK;

    if (q->status != 0)
        return RD_ECONFLICT;
    if (!path)
        return RD_EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? RD_ENOTFOUND
               : errno == EACCES                   ? RD_EPERM
                                                   : RD_EIO;
    if (fstat(fd, &st) != 0) {
        rc = RD_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = RD_ENOTFOUND;
        goto out;
    }
    if (!content_type)
        content_type = mg_get_builtin_mime_type(path);
    gmtime_r(&st.st_mtime, &tm);
    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);

    partial = range_parse(mg_get_header(q->conn, "Range"), (uint64_t)st.st_size, &from, &to,
                          &unsatisfiable);
    if (unsatisfiable) {
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%lld\r\n", (long long)st.st_size);
        rc = reply_error(q, 416, "range_not_satisfiable", extra,
                         "the range is outside the file (%lld bytes)", (long long)st.st_size);
        goto out;
    }
    if (partial) {
        snprintf(extra, sizeof(extra),
                 "Accept-Ranges: bytes\r\nLast-Modified: %s\r\nContent-Range: bytes "
                 "%" PRIu64 "-%" PRIu64 "/%lld\r\n",
                 lm, from, to, (long long)st.st_size);
        left = to - from + 1;
    } else {
        snprintf(extra, sizeof(extra), "Accept-Ranges: bytes\r\nLast-Modified: %s\r\n", lm);
        from = 0;
        left = (uint64_t)st.st_size;
    }
    rc = reply_head(q, partial ? 206 : 200, content_type, extra, (int64_t)left);
    if (rc != RD_OK || q->is_head)
        goto out;
    buf = malloc(HTTP_FILE_CHUNK);
    if (!buf) {
        rc = RD_ENOMEM;
        mg_disable_connection_keep_alive(q->conn);
        goto out;
    }
    while (left > 0) {
        size_t want = left < HTTP_FILE_CHUNK ? (size_t)left : HTTP_FILE_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)from);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            /* The file shrank or failed under us: the length is a lie now. */
            mg_disable_connection_keep_alive(q->conn);
            rc = RD_EIO;
            goto out;
        }
        rc = reply_body(q, buf, (size_t)n);
        if (rc != RD_OK)
            goto out;
        from += (uint64_t)n;
        left -= (uint64_t)n;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* --------------------------------------------------------- in flight */

static void inflight_add(struct http *s, struct http_req *q)
{
    pthread_mutex_lock(&s->lock);
    q->prev = NULL;
    q->next = s->inflight;
    if (s->inflight)
        s->inflight->prev = q;
    s->inflight = q;
    pthread_mutex_unlock(&s->lock);
}

static void inflight_remove(struct http *s, struct http_req *q)
{
    pthread_mutex_lock(&s->lock);
    if (q->prev)
        q->prev->next = q->next;
    else
        s->inflight = q->next;
    if (q->next)
        q->next->prev = q->prev;
    pthread_mutex_unlock(&s->lock);
}

/* ----------------------------------------------------------- the API */

static bool method_is(const char *m, const char *want)
{
    return m && strcmp(m, want) == 0;
}

static bool method_has_body(const char *m)
{
    return method_is(m, "POST") || method_is(m, "PUT") || method_is(m, "PATCH") ||
           method_is(m, "DELETE");
}

/* Reads and drops up to HTTP_DRAIN_MAX body bytes of a request we refused,
   so that closing the connection does not reset it under the client before
   it has read our answer. Not when the client waits for "100 Continue"
   (it has sent nothing). */
static void req_drain(struct http_req *q)
{
    const char *expect = mg_get_header(q->conn, "Expect");
    char buf[8192];
    size_t total = 0;
    int n;

    if (expect && strncasecmp(expect, "100-continue", 12) == 0)
        return;
    while (total < HTTP_DRAIN_MAX && (n = mg_read(q->conn, buf, sizeof(buf))) > 0)
        total += (size_t)n;
}

/* jansson parses recursively, and civetweb's worker threads have small
   stacks (100 KiB in Debian's build): a body of a few thousand '[' would
   overflow one. API bodies never nest deeply, so count before parsing. */
#define HTTP_MAX_JSON_DEPTH 64

static bool json_depth_ok(const char *buf, size_t len, int max)
{
    bool in_string = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

/* Reads the JSON body; on a problem replies (400/413) and returns false. */
static bool req_read_json(struct http_req *q)
{
    uint64_t max =
        q->srv->conf.max_body < HTTP_BODY_HARD_MAX ? q->srv->conf.max_body : HTTP_BODY_HARD_MAX;
    char *buf = NULL;
    size_t len = 0, cap;
    json_error_t jerr;
    bool ok = false;

    if (q->content_length > 0 && (uint64_t)q->content_length > max) {
        mg_disable_connection_keep_alive(q->conn);
        reply_error(q, 413, rd_err_code(RD_ETOOBIG), NULL,
                    "the body is %" PRId64 " bytes, the limit is %" PRIu64, q->content_length, max);
        req_drain(q);
        return false;
    }
    if (q->content_length == 0)
        return true;
    cap = q->content_length > 0 ? (size_t)q->content_length : (max < 65536 ? (size_t)max : 65536);
    buf = malloc(cap + 1);
    if (!buf) {
        mg_disable_connection_keep_alive(q->conn);
        reply_error(q, 500, rd_err_code(RD_ENOMEM), NULL, "out of memory");
        return false;
    }
    for (;;) {
        int n;
        if (len == cap) {
            /* Chunked: grow, but never past max_body + 1 byte. */
            size_t ncap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
            char *nb;
            if (q->content_length >= 0 || len > max)
                break;
            if (ncap <= cap)
                ncap = cap + 1;
            nb = realloc(buf, ncap + 1);
            if (!nb) {
                mg_disable_connection_keep_alive(q->conn);
                reply_error(q, 500, rd_err_code(RD_ENOMEM), NULL, "out of memory");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        n = mg_read(q->conn, buf + len, cap - len < HTTP_READ_CHUNK ? cap - len : HTTP_READ_CHUNK);
        if (n < 0) {
            mg_disable_connection_keep_alive(q->conn);
            reply_error(q, 400, "bad_request", NULL, "the body could not be read");
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        mg_disable_connection_keep_alive(q->conn);
        reply_error(q, 413, rd_err_code(RD_ETOOBIG), NULL,
                    "the body is over the limit of %" PRIu64 " bytes", max);
        req_drain(q);
        goto out;
    }
    if (q->content_length > 0 && len < (size_t)q->content_length) {
        mg_disable_connection_keep_alive(q->conn);
        reply_error(q, 400, "bad_request", NULL, "the body ended after %zu of %" PRId64 " bytes",
                    len, q->content_length);
        goto out;
    }
    if (len == 0) {
        ok = true;
        goto out;
    }
    buf[len] = '\0';
    if (!json_depth_ok(buf, len, HTTP_MAX_JSON_DEPTH)) {
        reply_error(q, 400, "bad_request", NULL, "the JSON body nests deeper than %d levels",
                    HTTP_MAX_JSON_DEPTH);
        goto out;
    }
    q->body = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!q->body) {
        reply_error(q, 400, "bad_request", NULL, "invalid JSON at line %d, column %d: %s",
                    jerr.line, jerr.column, jerr.text);
        goto out;
    }
    ok = true;
out:
    free(buf);
    return ok;
}

/* Whether the request asks for an event stream (EventSource). */
static bool wants_event_stream(struct http_req *q)
{
    const char *accept = mg_get_header(q->conn, "Accept");
    return accept && strstr(accept, "text/event-stream") != NULL;
}

/* ?access_token=: 1 and the decoded value in buf, 0 if absent, -1 if it is
   there but too long to be a token. */
static int access_token_param(struct http_req *q, char *buf, size_t len)
{
    const char *qs = q->ri->query_string;
    int n;

    if (!qs)
        return 0;
    n = mg_get_var(qs, strlen(qs), "access_token", buf, len);
    return n >= 0 ? 1 : n == -1 ? 0 : -1;
}

/* Authenticates and checks the route's scope; replies and returns false on
   a refusal. */
static bool req_authorize(struct http_req *q)
{
    struct http *s = q->srv;
    const char *authz = mg_get_header(q->conn, "Authorization");
    const char *scope = q->match.route->scope;
    const char *token = NULL;
    char qtoken[128];
    struct rd_error err = {0};
    bool is_read = method_is(q->method, "GET") || method_is(q->method, "HEAD");
    int rc;

    rc = access_token_param(q, qtoken, sizeof(qtoken));
    if (rc != 0) {
        if (rc < 0)
            snprintf(qtoken, sizeof(qtoken), "too-long"); /* fails as an unknown token */
        if (authz) {
            reply_error(q, 400, "bad_request", NULL,
                        "give the token once: the Authorization header or access_token");
            return false;
        }
        if (!method_is(q->method, "GET") || !wants_event_stream(q)) {
            reply_error(q, 400, "bad_request", NULL,
                        "access_token is only accepted on GET requests for text/event-stream "
                        "(EventSource); send Authorization: Bearer <token>");
            return false;
        }
        token = qtoken;
    } else if (authz) {
        token = auth_bearer_token(authz);
        if (!token) {
            reply_error(q, 401, "unauthorized",
                        "WWW-Authenticate: Bearer realm=\"relengd\", error=\"invalid_request\"\r\n",
                        "send the token as Authorization: Bearer <token>");
            return false;
        }
    }

    if (token) {
        rc = auth_lookup(s->h->auth, token, &q->principal, &err);
        if (rc == RD_EAUTH) {
            reply_error(q, 401, "unauthorized",
                        "WWW-Authenticate: Bearer realm=\"relengd\", error=\"invalid_token\"\r\n",
                        "%s", err.msg);
            return false;
        }
        if (rc != RD_OK) {
            log_msg("core", RD_ERROR, "http: token lookup failed: %s", err.msg);
            reply_error(q, rd_err_http_status(rc) == 503 ? 503 : 500, "internal_error", NULL,
                        "cannot check the token now");
            return false;
        }
    }

    if (!scope) {
        /* A read: anonymous when allowed (and only for GET/HEAD: a route
           that changes state always needs a token). */
        if (!q->principal.anonymous || (is_read && auth_anonymous_read(s->h->auth)))
            return true;
        reply_error(q, 401, "unauthorized", "WWW-Authenticate: Bearer realm=\"relengd\"\r\n",
                    "this route needs a token: send Authorization: Bearer <token>");
        return false;
    }
    if (q->principal.anonymous) {
        reply_error(q, 401, "unauthorized", "WWW-Authenticate: Bearer realm=\"relengd\"\r\n",
                    "this route needs a token with scope %s: send Authorization: Bearer <token>",
                    scope);
        return false;
    }
    if (!principal_has(&q->principal, scope)) {
        reply_error(q, 403, "insufficient_scope",
                    "WWW-Authenticate: Bearer realm=\"relengd\", error=\"insufficient_scope\"\r\n",
                    "token %s lacks scope %s", q->principal.name, scope);
        return false;
    }
    return true;
}

static void req_init(struct http_req *q, struct http *s, struct mg_connection *conn,
                     const struct mg_request_info *ri, const char *path)
{
    const char *te = mg_get_header(conn, "Transfer-Encoding");

    memset(q, 0, sizeof(*q));
    q->pub.api = &host_api;
    q->srv = s;
    q->conn = conn;
    q->ri = ri;
    q->method = ri->request_method;
    q->path = path;
    q->route = "unmatched";
    q->is_head = method_is(q->method, "HEAD");
    q->declared = -1;
    if (te && strcasestr(te, "chunked"))
        q->content_length = -1;
    else
        q->content_length = ri->content_length > 0 ? ri->content_length : 0;
    q->principal.anonymous = true;
    snprintf(q->principal.name, sizeof(q->principal.name), "anonymous");
    clock_gettime(CLOCK_MONOTONIC, &q->t0);
}

/* Counting, logging and freeing, for every request answered here. */
static int req_finish(struct http_req *q)
{
    int status;

    if (q->status != 0 && q->chunked && !q->is_head && mg_send_chunk(q->conn, "", 0) < 0)
        mg_disable_connection_keep_alive(q->conn);
    if (q->status != 0 && q->declared >= 0 && q->sent < q->declared) {
        /* Fewer bytes than announced: the connection cannot be reused. */
        mg_disable_connection_keep_alive(q->conn);
    }
    status = q->status ? q->status : 500;
    http_count(q->srv, q->route, q->method, status, http_elapsed_s(&q->t0));
    if (log_enabled(RD_DEBUG)) {
        char path[512];
        log_msg("core", RD_DEBUG, "http: %s %s %d %.1fms %s", q->method,
                log_safe(path, sizeof(path), q->path), status, http_elapsed_s(&q->t0) * 1000.0,
                q->principal.name);
    }
    if (q->has_match)
        router_release(q->srv->h->router, &q->match);
    q->has_match = false;
    principal_fini(&q->principal);
    json_decref(q->body);
    q->body = NULL;
    for (size_t i = 0; i < 2 * q->n_query; i++)
        free(q->query[i]);
    free(q->query);
    q->query = NULL;
    q->n_query = 0;
    return status;
}

static int http_api(struct http *s, struct mg_connection *conn, const struct mg_request_info *ri,
                    const char *path)
{
    struct host *h = s->h;
    struct http_req q;
    enum router_result res;
    int rc, status;

    req_init(&q, s, conn, ri, path);
    inflight_add(s, &q);
    if (atomic_load(&h->stopping)) {
        mg_disable_connection_keep_alive(conn);
        reply_error(&q, 503, "shutting_down", NULL, "relengd is shutting down");
        goto out;
    }
    res = router_match(h->router, q.method, path, &q.match);
    if (res == ROUTER_NO_PATH) {
        reply_error(&q, 404, "not_found", NULL, "no route %s %s", q.method, path);
        goto out;
    }
    if (res == ROUTER_NO_METHOD) {
        char allow[96];
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", q.match.allow);
        reply_error(&q, 405, "method_not_allowed", allow, "%s is not allowed on %s (allowed: %s)",
                    q.method, path, q.match.allow);
        goto out;
    }
    q.has_match = true;
    q.route = q.match.route->path;
    if (!req_authorize(&q))
        goto out;
    if (!(q.match.route->flags & RD_ROUTE_RAW) && method_has_body(q.method) && !req_read_json(&q))
        goto out;

    rc = q.match.route->fn(&q.pub, q.match.route->arg);
    if (q.status == 0) {
        if (rc < 0) {
            reply_error(&q, rd_err_http_status(rc), rd_err_code(rc), NULL, "%s", rd_strerror(rc));
        } else {
            log_msg("core", RD_WARN, "http: the handler of %s %s sent no reply", q.method, q.route);
            reply_error(&q, 500, "internal_error", NULL, "handler sent no reply");
        }
    }
out:
    inflight_remove(s, &q);
    status = req_finish(&q);
    return status;
}

/* ------------------------------------------------- /healthz /readyz /metrics */

static int http_core_endpoint(struct http *s, struct mg_connection *conn,
                              const struct mg_request_info *ri, const char *path)
{
    struct host *h = s->h;
    struct http_req q;
    int status;

    req_init(&q, s, conn, ri, path);
    q.route = path;
    if (!method_is(q.method, "GET") && !method_is(q.method, "HEAD")) {
        reply_error(&q, 405, "method_not_allowed", "Allow: GET, HEAD\r\n",
                    "%s is not allowed on %s (allowed: GET, HEAD)", q.method, path);
    } else if (strcmp(path, "/healthz") == 0) {
        reply_json_full(&q, 200, json_pack("{s:s}", "status", "ok"), NULL);
    } else if (strcmp(path, "/readyz") == 0) {
        json_t *reasons = json_array();
        int rc;

        if (atomic_load(&h->stopping))
            json_array_append_new(reasons, json_string("stopping"));
        else if (!atomic_load(&h->ready))
            json_array_append_new(reasons, json_string("starting"));
        for (size_t i = 0; i < h->n_mods; i++) {
            char why[160];
            if (h->mods[i]->state == MODULE_STARTED)
                continue;
            snprintf(why, sizeof(why), "module %s is not started", h->mods[i]->name);
            json_array_append_new(reasons, json_string(why));
        }
        rc = h->store ? store_ping(h->store) : RD_EUNAVAIL;
        if (rc != RD_OK) {
            char why[160];
            snprintf(why, sizeof(why), "store: %s", rd_strerror(rc));
            json_array_append_new(reasons, json_string(why));
        }
        if (json_array_size(reasons) == 0) {
            json_decref(reasons);
            reply_json_full(&q, 200, json_pack("{s:b}", "ready", 1), NULL);
        } else {
            reply_json_full(&q, 503, json_pack("{s:b, s:o}", "ready", 0, "reasons", reasons), NULL);
        }
    } else {
        char *text = NULL;
        size_t len = 0;

        if (metrics_render(h->metrics, &text, &len) == RD_OK)
            reply_full(&q, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
        else
            reply_error(&q, 500, "internal_error", NULL, "cannot render the metrics");
        free(text);
    }
    status = req_finish(&q);
    return status;
}

/* ------------------------------------------------------------ dispatch */

/* A ".." segment anywhere, with '/' or '\' as separators (civetweb treats
   both as separators when it maps a path to a file). */
static bool path_has_dotdot(const char *p)
{
    const char *seg = p;

    for (;; p++) {
        if (*p == '/' || *p == '\\' || *p == '\0') {
            if (p - seg == 2 && seg[0] == '.' && seg[1] == '.')
                return true;
            if (*p == '\0')
                return false;
            seg = p + 1;
        }
    }
}

enum http_kind { HTTP_STATIC = 0, HTTP_API, HTTP_CORE };

static enum http_kind http_classify(const char *path)
{
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0)
        return HTTP_API;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/metrics") == 0)
        return HTTP_CORE;
    return HTTP_STATIC;
}

static int http_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct http *s = ri ? ri->user_data : NULL;
    const char *raw, *path = NULL;
    char decoded[4096];
    struct http_req q;
    bool nul;
    int status;

    http_tls_req.handled = false;
    clock_gettime(CLOCK_MONOTONIC, &http_tls_req.t0);
    if (!s)
        return 0;
    /* civetweb runs with decode_url = no, so this is the path as sent: a
       %00 is refused before decoding (decoded, it would cut the path short
       and serve another file than the one named), then we decode it. */
    raw = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
    nul = raw && strstr(raw, "%00");
    if (raw && !nul && mg_url_decode(raw, (int)strlen(raw), decoded, (int)sizeof(decoded), 0) >= 0)
        path = decoded;
    if (!path || path[0] != '/' || path_has_dotdot(path) || nul) {
        http_tls_req.handled = true;
        req_init(&q, s, conn, ri, path ? path : "");
        q.route = "invalid";
        if (nul)
            reply_error(&q, 400, "bad_path", NULL, "the path may not contain NUL bytes (%%00)");
        else if (!path && raw && raw[0] == '/')
            reply_error(&q, 414, "uri_too_long", NULL, "the path is longer than %zu bytes",
                        sizeof(decoded) - 1);
        else if (!path || path[0] != '/')
            reply_error(&q, 400, "bad_path", NULL, "the request target must be a path");
        else
            reply_error(&q, 400, "bad_path", NULL, "the path may not contain '..' segments");
        return req_finish(&q);
    }
    switch (http_classify(path)) {
    case HTTP_API:
        http_tls_req.handled = true;
        return http_api(s, conn, ri, path);
    case HTTP_CORE:
        http_tls_req.handled = true;
        return http_core_endpoint(s, conn, ri, path);
    case HTTP_STATIC:
        break;
    }
    if (!method_is(ri->request_method, "GET") && !method_is(ri->request_method, "HEAD")) {
        /* Static files are read-only: no PUT/DELETE/MKCOL/PROPFIND/CGI POST. */
        http_tls_req.handled = true;
        req_init(&q, s, conn, ri, path);
        q.route = "static";
        reply_error(&q, 405, "method_not_allowed", "Allow: GET, HEAD\r\n",
                    "%s is not allowed on static files (allowed: GET, HEAD)", ri->request_method);
        status = req_finish(&q);
        return status;
    }
    return 0; /* civetweb serves the file */
}

static void http_end_request(const struct mg_connection *conn, int status)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct http *s = ri ? ri->user_data : NULL;
    double secs;

    if (!s || http_tls_req.handled)
        return;
    secs = http_elapsed_s(&http_tls_req.t0);
    http_count(s, "static", ri->request_method, status, secs);
    if (log_enabled(RD_DEBUG)) {
        char path[512];
        log_msg("core", RD_DEBUG, "http: %s %s %d %.1fms static", ri->request_method,
                log_safe(path, sizeof(path), ri->local_uri ? ri->local_uri : "?"), status,
                secs * 1000.0);
    }
}

static int http_log_message(const struct mg_connection *conn, const char *message)
{
    struct mg_context *ctx = conn ? mg_get_context(conn) : NULL;
    struct http *s = ctx ? mg_get_user_data(ctx) : NULL;

    if (s && s->starting)
        snprintf(s->start_error, sizeof(s->start_error), "%s", message);
    /* A client speaking plain HTTP to the TLS port (or failing its
       handshake) is not the operator's problem. */
    if (strncmp(message, "sslize", 6) == 0 || strstr(message, "SSL_accept"))
        log_msg("core", RD_DEBUG, "civetweb: %s", message);
    else
        log_msg("core", RD_WARN, "civetweb: %s", message);
    return 1;
}

static int http_log_access(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    (void)message;
    return 1; /* we log requests ourselves, at DEBUG */
}

/* --------------------------------------------------------- TLS set-up */

static pthread_mutex_t http_lib_lock = PTHREAD_MUTEX_INITIALIZER;
static bool http_lib_inited; /* mg_init_library called */
static int http_lib_tls = 0; /* 0 not tried, 1 ready, -1 failed (never retried) */
static char http_lib_tls_why[512];

/* Whether civetweb's dlopen of libssl.so/libcrypto.so will find what it
   needs; why says what is missing. */
static bool http_ssl_libs_usable(char *why, size_t len)
{
    void *crypto = dlopen("libcrypto.so", RTLD_NOW | RTLD_LOCAL);
    void *ssl = NULL;
    bool ok = false;

    if (!crypto) {
        snprintf(why, len, "cannot load libcrypto.so: %s", dlerror());
        goto out;
    }
    ssl = dlopen("libssl.so", RTLD_NOW | RTLD_LOCAL);
    if (!ssl) {
        snprintf(why, len, "cannot load libssl.so: %s", dlerror());
        goto out;
    }
    if (!dlsym(ssl, "SSL_CTX_new") || !dlsym(ssl, "SSL_get_peer_certificate")) {
        snprintf(why, len, "libssl.so has no SSL_get_peer_certificate");
        goto out;
    }
    ok = true;
out:
    if (ssl)
        dlclose(ssl);
    if (crypto)
        dlclose(crypto);
    return ok;
}

/* Loads the compat libraries from dirs (colon-separated, like module_dir)
   where they are present; they stay loaded for good. */
static void http_ssl_load_compat(const char *dirs)
{
    static const char *const names[] = {"civetweb_ssl_compat.so", "civetweb_crypto_compat.so"};
    const char *d = dirs;
    char path[PATH_MAX];

    while (d && *d) {
        const char *end = strchr(d, ':');
        size_t len = end ? (size_t)(end - d) : strlen(d);

        for (size_t i = 0; len > 0 && i < sizeof(names) / sizeof(names[0]); i++) {
            if ((size_t)snprintf(path, sizeof(path), "%.*s/%s", (int)len, d, names[i]) >=
                    sizeof(path) ||
                access(path, R_OK) != 0)
                continue;
            if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL))
                log_msg("core", RD_WARN, "http: cannot load %s: %s", path, dlerror());
            else
                log_msg("core", RD_INFO, "http: loaded %s for civetweb's TLS", path);
        }
        d = end ? end + 1 : NULL;
    }
}

/* The directory of the running program (where a build tree keeps the
   compat library next to relengd), or NULL. */
static const char *http_exe_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    char *slash;

    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return buf;
}

/* mg_init_library once per process, with TLS when asked; TLS is tried at
   most once (a failed civetweb TLS init must never be retried: civetweb
   would then claim success and crash at the first handshake). */
static int http_lib_init(struct host *h, bool tls, struct rd_error *err)
{
    int rc = RD_OK;

    pthread_mutex_lock(&http_lib_lock);
    if (!tls) {
        if (!http_lib_inited) {
            mg_init_library(0);
            http_lib_inited = true;
        }
        goto out;
    }
    if (http_lib_tls == 0) {
        char why[256], exe_dir[PATH_MAX];
        bool usable;

        http_lib_tls = -1;
        if (!mg_check_feature(MG_FEATURES_TLS)) {
            snprintf(http_lib_tls_why, sizeof(http_lib_tls_why),
                     "this civetweb was built without TLS support");
            goto out_tls;
        }
        /* The compat libraries first: a dlopen("libssl.so") that finds the
           real file would make that name an alias of libssl.so.3 for good. */
        http_ssl_load_compat(h->conf.module_dir);
#ifdef MODULE_DIR
        http_ssl_load_compat(MODULE_DIR);
#endif
        http_ssl_load_compat(http_exe_dir(exe_dir, sizeof(exe_dir)));
        usable = http_ssl_libs_usable(why, sizeof(why));
        if (!usable) {
            snprintf(http_lib_tls_why, sizeof(http_lib_tls_why),
                     "install civetweb_ssl_compat.so in the module directory: civetweb 1.15 "
                     "cannot use OpenSSL 3 as it is (%s)",
                     why);
            log_msg("core", RD_ERROR,
                    "http: civetweb 1.15 loads OpenSSL at run time as libssl.so and libcrypto.so "
                    "and needs SSL_get_peer_certificate, which OpenSSL 3 defines only as a macro "
                    "(civetweb issue #1334); looked for civetweb_ssl_compat.so (SONAME "
                    "libssl.so) in %s%s%s and next to the program",
                    h->conf.module_dir ? h->conf.module_dir : "",
#ifdef MODULE_DIR
                    ":", MODULE_DIR
#else
                    "", ""
#endif
            );
            goto out_tls;
        }
        http_lib_inited = true;
        if (!(mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS)) {
            snprintf(http_lib_tls_why, sizeof(http_lib_tls_why),
                     "civetweb could not initialise OpenSSL");
            goto out_tls;
        }
        http_lib_tls = 1;
    }
out_tls:
    if (http_lib_tls != 1)
        rc = rd_error_set(err, RD_EUNAVAIL, "cannot serve HTTPS: %s", http_lib_tls_why);
out:
    pthread_mutex_unlock(&http_lib_lock);
    return rc;
}

/* The PEM must hold a certificate and its private key. */
static int http_check_cert(const char *path, struct rd_error *err)
{
    FILE *fp = fopen(path, "r");
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = RD_OK;

    if (!fp)
        return rd_error_set(err, RD_EINVAL, "http.tls_cert %s: %s", path, strerror(errno));
    cert = PEM_read_X509(fp, NULL, NULL, NULL);
    if (!cert) {
        rc = rd_error_set(err, RD_EINVAL, "http.tls_cert %s: no readable PEM certificate", path);
        goto out;
    }
    rewind(fp);
    key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    if (!key) {
        rc = rd_error_set(err, RD_EINVAL,
                          "http.tls_cert %s: no readable (unencrypted) PEM private key; the file "
                          "must hold the certificate and its key",
                          path);
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1)
        rc = rd_error_set(err, RD_EINVAL,
                          "http.tls_cert %s: the private key does not match the certificate", path);
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    fclose(fp);
    return rc;
}

/* ------------------------------------------------------- start and stop */

/* "[host:]port" -> civetweb's listening_ports (with "s" for TLS). */
static int http_listen_option(const char *listen, bool tls, char *out, size_t len,
                              struct rd_error *err)
{
    const char *colon, *port;
    char *end;
    unsigned long n;

    if (!listen || !listen[0])
        return rd_error_set(err, RD_EINVAL, "http.listen is empty");
    colon = strrchr(listen, ':');
    port = colon ? colon + 1 : listen;
    errno = 0;
    n = strtoul(port, &end, 10);
    if (!*port || *end != '\0' || errno || n > 65535 || strpbrk(listen, ", \t") ||
        (colon && colon == listen))
        return rd_error_set(err, RD_EINVAL,
                            "http.listen \"%s\": want address:port (port 0 picks a free one)",
                            listen);
    if ((size_t)snprintf(out, len, "%s%s", listen, tls ? "s" : "") >= len)
        return rd_error_set(err, RD_EINVAL, "http.listen \"%s\" is too long", listen);
    return RD_OK;
}

static void http_free(struct http *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int http_start(struct host *h, const struct http_conf *c, struct http **out, struct rd_error *err)
{
    struct http *s = NULL;
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data merr;
    struct mg_server_port ports[4];
    pthread_condattr_t cattr;
    char listen[300], threads[16], req_timeout[24], ka_timeout[24], errtext[256] = "";
    unsigned errcode = 0;
    const char *opts[64];
    bool tls;
    size_t o = 0;
    int rc = RD_OK, n;

    *out = NULL;
    if (!h || !c)
        return rd_error_set(err, RD_EINVAL, "http_start needs a host and a configuration");
    tls = c->tls_cert && c->tls_cert[0];
    rc = http_listen_option(c->listen, tls, listen, sizeof(listen), err);
    if (rc != RD_OK)
        return rc;
    if (tls) {
        rc = http_check_cert(c->tls_cert, err);
        if (rc == RD_OK)
            rc = http_lib_init(h, true, err);
    } else {
        rc = http_lib_init(h, false, err);
    }
    if (rc != RD_OK)
        return rc;

    s = calloc(1, sizeof(*s));
    if (!s)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    s->h = h;
    s->conf = *c;
    s->is_tls = tls;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &cattr);
    pthread_condattr_destroy(&cattr);

    snprintf(threads, sizeof(threads), "%d",
             (int)(c->threads < 1                  ? 1
                   : c->threads > HTTP_MAX_THREADS ? HTTP_MAX_THREADS
                                                   : c->threads));
    snprintf(req_timeout, sizeof(req_timeout), "%" PRIu64,
             c->request_timeout_ms ? c->request_timeout_ms : 30000);
    snprintf(ka_timeout, sizeof(ka_timeout), "%" PRIu64, c->keep_alive_ms);

    opts[o++] = "listening_ports";
    opts[o++] = listen;
    opts[o++] = "num_threads";
    opts[o++] = threads;
    opts[o++] = "request_timeout_ms";
    opts[o++] = req_timeout;
    opts[o++] = "enable_keep_alive";
    opts[o++] = c->keep_alive_ms ? "yes" : "no";
    opts[o++] = "keep_alive_timeout_ms";
    opts[o++] = c->keep_alive_ms ? ka_timeout : "500";
    if (c->web_root && c->web_root[0]) {
        struct stat st;
        if (stat(c->web_root, &st) != 0 || !S_ISDIR(st.st_mode))
            log_msg("core", RD_WARN, "http: web_root %s is not a directory: no dashboard",
                    c->web_root);
        opts[o++] = "document_root";
        opts[o++] = c->web_root;
    }
    /* Nothing in web_root ever runs: empty patterns match nothing. */
    opts[o++] = "cgi_pattern";
    opts[o++] = "";
    opts[o++] = "cgi2_pattern";
    opts[o++] = "";
    opts[o++] = "ssi_pattern";
    opts[o++] = "";
    opts[o++] = "enable_directory_listing";
    opts[o++] = "no";
    /* We decode paths ourselves, after refusing %00 (see begin_request). */
    opts[o++] = "decode_url";
    opts[o++] = "no";
    opts[o++] = "index_files";
    opts[o++] = "index.html";
    /* What would be scripts elsewhere is served as text (never run). */
    opts[o++] = "extra_mime_types";
    opts[o++] = ".cgi=text/plain,.pl=text/plain,.php=text/plain,.sh=text/plain,"
                ".shtml=text/plain,.shtm=text/plain,.lp=text/plain,.lsp=text/plain,"
                ".lua=text/plain,.ssjs=text/plain";
    opts[o++] = "allow_index_script_resource";
    opts[o++] = "no";
    /* No CORS: the dashboard is same-origin; scripts are not browsers. */
    opts[o++] = "access_control_allow_origin";
    opts[o++] = "";
    opts[o++] = "access_control_allow_methods";
    opts[o++] = "";
    opts[o++] = "access_control_allow_headers";
    opts[o++] = "";
    /* Static files: revalidate (ETag) so that an upgrade shows at once. */
    opts[o++] = "static_file_cache_control";
    opts[o++] = "no-cache";
    opts[o++] = "additional_header";
    opts[o++] = "X-Content-Type-Options: nosniff";
    opts[o++] = "tcp_nodelay";
    opts[o++] = "1";
    if (tls) {
        opts[o++] = "ssl_certificate";
        opts[o++] = c->tls_cert;
        opts[o++] = "ssl_protocol_version";
        opts[o++] = "4"; /* TLS 1.2 and newer */
        opts[o++] = "ssl_verify_peer";
        opts[o++] = "no";
    }
    opts[o] = NULL;

    memset(&cb, 0, sizeof(cb));
    cb.begin_request = http_begin_request;
    cb.end_request = http_end_request;
    cb.log_message = http_log_message;
    cb.log_access = http_log_access;
    init.callbacks = &cb;
    init.user_data = s;
    init.configuration_options = opts;
    merr.code = &errcode;
    merr.text = errtext;
    merr.text_buffer_size = sizeof(errtext);

    s->starting = true;
    s->ctx = mg_start2(&init, &merr);
    s->starting = false;
    if (!s->ctx) {
        rc = rd_error_set(err, RD_EIO, "cannot serve %s on %s: %s%s%s", tls ? "HTTPS" : "HTTP",
                          c->listen, errtext[0] ? errtext : "failed",
                          s->start_error[0] && strcmp(s->start_error, errtext) != 0 ? ": " : "",
                          s->start_error[0] && strcmp(s->start_error, errtext) != 0 ? s->start_error
                                                                                    : "");
        goto out;
    }
    /* civetweb 1.15 binds port 0 to a free port and reports the real one. */
    n = mg_get_server_ports(s->ctx, (int)(sizeof(ports) / sizeof(ports[0])), ports);
    if (n < 1 || ports[0].port <= 0) {
        rc = rd_error_set(err, RD_EIO, "cannot tell which port %s was bound to", c->listen);
        goto out;
    }
    s->port = ports[0].port;
    log_msg("core", RD_INFO, "http: serving %s on port %d (%s threads, web_root %s)",
            tls ? "HTTPS" : "HTTP", s->port, threads,
            c->web_root && c->web_root[0] ? c->web_root : "none");
    *out = s;
    s = NULL;
out:
    if (s) {
        if (s->ctx)
            mg_stop(s->ctx);
        http_free(s);
    }
    return rc;
}

int http_port(struct http *s)
{
    return s ? s->port : -1;
}
bool http_is_tls(struct http *s)
{
    return s && s->is_tls;
}

static void *http_stop_thread(void *arg)
{
    struct http *s = arg;
    bool abandoned;

    mg_stop(s->ctx);
    pthread_mutex_lock(&s->lock);
    s->stopped = true;
    abandoned = s->abandoned;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    /* If http_stop stopped waiting, nobody else will free s. */
    if (abandoned)
        http_free(s);
    return NULL;
}

/* Opens and closes a connection to our own listening port (loopback when
   listening on every address). Any thread; never blocks for long. */
static void http_poke(struct http *s)
{
    struct sockaddr_in sa;
    const char *colon = strrchr(s->conf.listen, ':');
    char host[64] = "127.0.0.1";
    int fd;

    if (colon && colon != s->conf.listen && (size_t)(colon - s->conf.listen) < sizeof(host)) {
        memcpy(host, s->conf.listen, (size_t)(colon - s->conf.listen));
        host[colon - s->conf.listen] = '\0';
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || sa.sin_addr.s_addr == htonl(INADDR_ANY))
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        /* Nothing listens any more: the listener is already gone. */
    }
    close(fd);
}

void http_stop(struct http *s)
{
    struct timespec deadline;
    pthread_t t;
    bool done;

    if (!s)
        return;
    if (pthread_create(&t, NULL, http_stop_thread, s) != 0) {
        /* No thread: stop inline, without a bound. */
        mg_stop(s->ctx);
        http_free(s);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(s->conf.shutdown_grace_ms / 1000);
    deadline.tv_nsec += (long)(s->conf.shutdown_grace_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->stopped) {
        /* civetweb's listener sleeps in poll() up to 2 s before it sees the
           stop flag; a connection to our own port wakes it at once. */
        struct timespec slice;
        clock_gettime(CLOCK_MONOTONIC, &slice);
        slice.tv_nsec += 50000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        if (slice.tv_sec > deadline.tv_sec ||
            (slice.tv_sec == deadline.tv_sec && slice.tv_nsec > deadline.tv_nsec))
            slice = deadline;
        if (pthread_cond_timedwait(&s->cond, &s->lock, &slice) == ETIMEDOUT) {
            if (slice.tv_sec == deadline.tv_sec && slice.tv_nsec == deadline.tv_nsec)
                break;
            if (!s->stopped) {
                pthread_mutex_unlock(&s->lock);
                http_poke(s);
                pthread_mutex_lock(&s->lock);
            }
        }
    }
    done = s->stopped;
    if (!done) {
        struct timespec now;
        size_t n = 0;

        clock_gettime(CLOCK_MONOTONIC, &now);
        for (struct http_req *q = s->inflight; q; q = q->next)
            n++;
        if (n > 0)
            log_msg("core", RD_WARN,
                    "http: %zu request(s) still running after the %" PRIu64
                    " ms shutdown grace; shutting down without them",
                    n, s->conf.shutdown_grace_ms);
        else
            log_msg("core", RD_WARN,
                    "http: civetweb's threads had not stopped after the %" PRIu64
                    " ms shutdown grace; shutting down without them",
                    s->conf.shutdown_grace_ms);
        for (struct http_req *q = s->inflight; q; q = q->next) {
            char path[512];
            log_msg("core", RD_WARN, "http: still running: %s %s (%s) for %.1f s", q->method,
                    log_safe(path, sizeof(path), q->path), q->principal.name,
                    (double)(now.tv_sec - q->t0.tv_sec) +
                        (double)(now.tv_nsec - q->t0.tv_nsec) / 1e9);
        }
        s->abandoned = true;
    }
    pthread_mutex_unlock(&s->lock);
    if (done) {
        pthread_join(t, NULL);
        http_free(s);
    } else {
        pthread_detach(t);
    }
}
