/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_http.c -- relengctl's HTTP client: one libcurl easy handle per
 * request, JSON in and out, and a Server-Sent Events reader that follows the
 * WHATWG parsing rules (CR, LF and CRLF line ends, "data" lines joined, "id"
 * kept for resuming, comments ignored). Single-threaded.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cli/ctl_http.h"

/* ------------------------------------------------------------ buffers */

struct buf {
    char *p;
    size_t len, cap;
    size_t max;
    bool too_big;
};

/* Appends len bytes keeping a NUL after them; false on ENOMEM or over max. */
static bool buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->max) {
        b->too_big = true;
        return false;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return true;
}

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    return buf_add(b, ptr, n) ? n : 0;
}

/* --------------------------------------------------------- the handle */

static char *join_url(const char *base, const char *path_query)
{
    size_t n = strlen(base) + strlen(path_query) + 1;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "%s%s", base, path_query);
    return url;
}

/* An easy handle with what every request shares; *hdrs (owned by the caller,
   curl_slist_free_all) gets the headers. NULL on ENOMEM. */
static CURL *easy_new(const struct ctl_http *c, const char *url, const char *accept,
                      struct curl_slist **hdrs, char *curl_err)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL, *t = NULL;
    char line[4096];

    *hdrs = NULL;
    if (!e)
        return NULL;
    snprintf(line, sizeof(line), "Accept: %s", accept);
    t = curl_slist_append(h, line);
    if (!t)
        goto fail;
    h = t;
    if (c->token && *c->token) {
        int n = snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
        if (n < 0 || (size_t)n >= sizeof(line))
            goto fail;
        t = curl_slist_append(h, line);
        if (!t)
            goto fail;
        h = t;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "relengctl/" PACKAGE_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 10000L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    *hdrs = h;
    return e;
fail:
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

static void set_err(char *errbuf, size_t errlen, const char *url, CURLcode rc, const char *detail)
{
    if (!errbuf || !errlen)
        return;
    snprintf(errbuf, errlen, "cannot reach %s: %s", url,
             detail && *detail ? detail : curl_easy_strerror(rc));
}

static void fill_resp(CURL *e, struct ctl_http_resp *resp)
{
    char *ct = NULL;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) {
        free(resp->content_type);
        resp->content_type = strdup(ct);
    }
}

static void parse_json_body(struct ctl_http_resp *resp)
{
    if (resp->body && resp->body_len > 0)
        resp->json = json_loadb(resp->body, resp->body_len, 0, NULL);
}

int ctl_http_request(const struct ctl_http *c, const char *method, const char *path_query,
                     const json_t *body, struct ctl_http_resp *resp, char *errbuf, size_t errlen)
{
    int rc = CTL_HTTP_NOMEM;
    char curl_err[CURL_ERROR_SIZE] = "";
    char *url = NULL, *payload = NULL;
    struct curl_slist *hdrs = NULL, *t = NULL;
    struct buf b = {.max = CTL_HTTP_MAX_BODY};
    CURL *e = NULL;
    CURLcode cc;

    memset(resp, 0, sizeof(*resp));
    url = join_url(c->base_url, path_query);
    if (!url)
        goto out;
    e = easy_new(c, url, "application/json", &hdrs, curl_err);
    if (!e)
        goto out;
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload)
            goto out;
        t = curl_slist_append(hdrs, "Content-Type: application/json");
        if (!t)
            goto out;
        hdrs = t;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (!body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, ""); /* POST without a body: never read stdin */
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (c->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);

    cc = curl_easy_perform(e);
    if (cc == CURLE_WRITE_ERROR && b.too_big) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "the answer from %s is larger than %u bytes", url,
                     CTL_HTTP_MAX_BODY);
        rc = CTL_HTTP_TOOBIG;
        goto out;
    }
    if (cc == CURLE_WRITE_ERROR) {
        rc = CTL_HTTP_NOMEM;
        goto out;
    }
    if (cc != CURLE_OK) {
        set_err(errbuf, errlen, url, cc, curl_err);
        rc = CTL_HTTP_CONN;
        goto out;
    }
    fill_resp(e, resp);
    resp->body = b.p ? b.p : strdup("");
    resp->body_len = b.len;
    b.p = NULL;
    if (!resp->body)
        goto out;
    parse_json_body(resp);
    rc = CTL_HTTP_OK;
out:
    if (rc == CTL_HTTP_NOMEM && errbuf && errlen)
        snprintf(errbuf, errlen, "out of memory");
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    free(payload);
    free(url);
    return rc;
}

void ctl_http_resp_fini(struct ctl_http_resp *resp)
{
    if (!resp)
        return;
    free(resp->body);
    free(resp->content_type);
    json_decref(resp->json);
    memset(resp, 0, sizeof(*resp));
}

const char *ctl_http_error_message(const struct ctl_http_resp *resp, const char **code_out)
{
    const json_t *err = resp && resp->json ? json_object_get(resp->json, "error") : NULL;
    const char *msg = json_string_value(json_object_get(err, "message"));

    if (code_out)
        *code_out = json_string_value(json_object_get(err, "code"));
    return msg;
}

char *ctl_http_add_query(char *path, const char *key, const char *value)
{
    char *ek = curl_easy_escape(NULL, key, 0);
    char *ev = curl_easy_escape(NULL, value, 0);
    char *out = NULL;

    if (path && ek && ev) {
        size_t n = strlen(path) + strlen(ek) + strlen(ev) + 3;
        out = malloc(n);
        if (out)
            snprintf(out, n, "%s%c%s=%s", path, strchr(path, '?') ? '&' : '?', ek, ev);
    }
    curl_free(ek);
    curl_free(ev);
    free(path);
    return out;
}

/* ---------------------------------------------------- Server-Sent Events */

struct sse {
    CURL *easy;
    ctl_sse_fn fn;
    void *arg;
    const volatile sig_atomic_t *stop;
    struct ctl_http_resp *resp;

    bool checked;   /* status and content type looked at */
    bool streaming; /* 200 text/event-stream */
    bool stopped;
    bool protocol_error;
    char *errbuf;
    size_t errlen;

    struct buf err_body; /* non-stream answer, for the error message */
    struct buf line;
    struct buf data;
    bool has_data;
    bool after_cr;
    char event[64];
    char *last_id;
    size_t last_id_len;
    long *retry_ms;
};

static bool is_event_stream(const char *ct)
{
    static const char want[] = "text/event-stream";
    return ct && strncasecmp(ct, want, sizeof(want) - 1) == 0 &&
           (ct[sizeof(want) - 1] == '\0' || ct[sizeof(want) - 1] == ';' ||
            ct[sizeof(want) - 1] == ' ');
}

static void sse_check(struct sse *s)
{
    long status = 0;
    char *ct = NULL;

    if (s->checked)
        return;
    s->checked = true;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_CONTENT_TYPE, &ct);
    s->streaming = status == 200 && is_event_stream(ct);
}

static void sse_protocol_error(struct sse *s, const char *what)
{
    s->protocol_error = true;
    if (s->errbuf && s->errlen)
        snprintf(s->errbuf, s->errlen, "event stream: %s", what);
}

/* Dispatches the event collected so far (blank line). */
static void sse_dispatch(struct sse *s)
{
    struct ctl_sse_event ev;

    if (!s->has_data) {
        s->event[0] = '\0';
        return;
    }
    /* the data buffer ends with the "\n" added after the last data line */
    if (s->data.len > 0 && s->data.p[s->data.len - 1] == '\n')
        s->data.p[--s->data.len] = '\0';
    ev.id = s->last_id;
    ev.event = s->event[0] ? s->event : "message";
    ev.data = s->data.p ? s->data.p : "";
    if (s->fn(s->arg, &ev) != 0 || (s->stop && *s->stop))
        s->stopped = true;
    s->data.len = 0;
    if (s->data.p)
        s->data.p[0] = '\0';
    s->has_data = false;
    s->event[0] = '\0';
}

static void sse_field(struct sse *s, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = len - (size_t)(value - line);

    if (len == 0) {
        sse_dispatch(s);
        return;
    }
    if (line[0] == ':') /* comment, e.g. a keep-alive */
        return;
    if (value_len > 0 && value[0] == ' ')
        value++, value_len--;
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < sizeof(s->event) - 1 ? value_len : sizeof(s->event) - 1;
        memcpy(s->event, value, n);
        s->event[n] = '\0';
    } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (!buf_add(&s->data, value, value_len) || !buf_add(&s->data, "\n", 1))
            sse_protocol_error(s, s->data.too_big ? "event data too large" : "out of memory");
        s->has_data = true;
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        /* ids with NUL are ignored (spec); so are ids we cannot keep whole */
        if (!memchr(value, '\0', value_len) && value_len < s->last_id_len) {
            memcpy(s->last_id, value, value_len);
            s->last_id[value_len] = '\0';
        }
    } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
        long ms = 0;
        size_t i;
        for (i = 0; i < value_len && value[i] >= '0' && value[i] <= '9' && ms < 100000000; i++)
            ms = ms * 10 + (value[i] - '0');
        if (i == value_len && value_len > 0 && s->retry_ms)
            *s->retry_ms = ms;
    }
}

static size_t sse_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sse *s = arg;
    size_t n = size * nmemb;

    sse_check(s);
    if (!s->streaming) {
        /* keep a bounded prefix of the error answer, drop the rest */
        if (s->err_body.len < 65536)
            buf_add(&s->err_body, ptr, n < 65536 - s->err_body.len ? n : 65536 - s->err_body.len);
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = ptr[i];
        if (ch == '\n' && s->after_cr) {
            s->after_cr = false;
            continue;
        }
        s->after_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            sse_field(s, s->line.p ? s->line.p : "", s->line.len);
            s->line.len = 0;
            if (s->stopped || s->protocol_error)
                return 0;
            continue;
        }
        if (!buf_add(&s->line, &ch, 1)) {
            sse_protocol_error(s, s->line.too_big ? "line too long" : "out of memory");
            return 0;
        }
    }
    return n;
}

static int sse_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
    struct sse *s = arg;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (s->stop && *s->stop) {
        s->stopped = true;
        return 1;
    }
    return 0;
}

int ctl_http_sse(const struct ctl_http *c, const char *path_query, const char *last_id,
                 char *last_id_out, size_t last_id_len, long *retry_ms,
                 const volatile sig_atomic_t *stop, ctl_sse_fn fn, void *arg,
                 struct ctl_http_resp *resp, char *errbuf, size_t errlen)
{
    int rc = CTL_SSE_PROTOCOL;
    char curl_err[CURL_ERROR_SIZE] = "";
    char *url = NULL;
    struct curl_slist *hdrs = NULL, *t = NULL;
    struct sse s = {
        .fn = fn,
        .arg = arg,
        .stop = stop,
        .resp = resp,
        .errbuf = errbuf,
        .errlen = errlen,
        .err_body = {.max = 65537},
        .line = {.max = CTL_HTTP_MAX_LINE},
        .data = {.max = CTL_HTTP_MAX_BODY},
        .last_id = last_id_out,
        .last_id_len = last_id_len,
        .retry_ms = retry_ms,
    };
    CURLcode cc;

    memset(resp, 0, sizeof(*resp));
    if (last_id_len == 0) {
        sse_protocol_error(&s, "no room for the last event id");
        goto out;
    }
    if (last_id != last_id_out)
        snprintf(last_id_out, last_id_len, "%s", last_id ? last_id : "");
    url = join_url(c->base_url, path_query);
    if (!url)
        goto nomem;
    s.easy = easy_new(c, url, "text/event-stream", &hdrs, curl_err);
    if (!s.easy)
        goto nomem;
    if (last_id && *last_id) {
        char line[300];
        snprintf(line, sizeof(line), "Last-Event-ID: %s", last_id);
        t = curl_slist_append(hdrs, line);
        if (!t)
            goto nomem;
        hdrs = t;
    }
    t = curl_slist_append(hdrs, "Cache-Control: no-cache");
    if (!t)
        goto nomem;
    hdrs = t;
    curl_easy_setopt(s.easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, sse_cb);
    curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s.easy, CURLOPT_XFERINFOFUNCTION, sse_progress);
    curl_easy_setopt(s.easy, CURLOPT_XFERINFODATA, &s);

    cc = curl_easy_perform(s.easy);
    sse_check(&s);
    if (s.stopped) {
        rc = CTL_SSE_STOPPED;
    } else if (s.protocol_error) {
        rc = CTL_SSE_PROTOCOL;
    } else if (s.streaming) {
        /* a transfer error after the stream started is a disconnect */
        rc = CTL_SSE_CLOSED;
    } else if (cc != CURLE_OK) {
        set_err(errbuf, errlen, url, cc, curl_err);
        rc = CTL_SSE_CONN_FAILED;
    } else {
        fill_resp(s.easy, resp);
        resp->body = s.err_body.p ? s.err_body.p : strdup("");
        resp->body_len = s.err_body.len;
        s.err_body.p = NULL;
        if (!resp->body)
            goto nomem;
        parse_json_body(resp);
        rc = CTL_SSE_HTTP_ERROR;
    }
    goto out;
nomem:
    sse_protocol_error(&s, "out of memory");
    rc = CTL_SSE_PROTOCOL;
out:
    free(s.err_body.p);
    free(s.line.p);
    free(s.data.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(s.easy);
    free(url);
    return rc;
}
