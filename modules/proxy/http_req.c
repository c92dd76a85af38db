/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/http_req.c -- the strict HTTP/1.1 request-head parser (see
 * http_req.h). RFC 9112 grammar, without the leniencies that let two parsers
 * disagree about where a request ends: lines end in CRLF, no obs-fold, no
 * whitespace before a field's colon, no control characters in values.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "modules/proxy/http_req.h"

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value characters: visible ASCII, obs-text, space and tab. */
static bool is_vchar_or_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static long fail(const char **why, const char *msg, long status)
{
    *why = msg;
    return -status;
}

/* Parses the request line buf[0..eol) (eol points at its '\r'). */
static long parse_request_line(const char *buf, size_t eol, struct proxy_req *req, const char **why)
{
    size_t i = 0, start;

    while (i < eol && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == 0 || i >= eol || buf[i] != ' ')
        return fail(why, "malformed request line: bad method", 400);
    req->method_str = buf;
    req->method_len = i;
    if (i == 3 && memcmp(buf, "GET", 3) == 0)
        req->method = PROXY_M_GET;
    else if (i == 4 && memcmp(buf, "HEAD", 4) == 0)
        req->method = PROXY_M_HEAD;
    else if (i == 7 && memcmp(buf, "CONNECT", 7) == 0)
        req->method = PROXY_M_CONNECT;
    else
        req->method = PROXY_M_OTHER;
    start = ++i;
    /* unsigned: with a signed char, bytes >= 0x80 would end the target on
       one platform and pass on another (char is unsigned on ARM) */
    while (i < eol && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
        i++;
    if (i == start || i >= eol || buf[i] != ' ')
        return fail(why, "malformed request line: bad request target", 400);
    req->target = buf + start;
    req->target_len = i - start;
    i++;
    if (eol - i != 8 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 6] != '.' || buf[i + 5] < '0' ||
        buf[i + 5] > '9' || buf[i + 7] < '0' || buf[i + 7] > '9')
        return fail(why, "malformed request line: bad HTTP version", 400);
    if (buf[i + 5] != '1' || buf[i + 7] > '1')
        return fail(why, "only HTTP/1.0 and HTTP/1.1 are supported", 505);
    req->minor = buf[i + 7] - '0';
    return 0;
}

/* Parses one field line buf[0..eol). */
static long parse_field(const char *buf, size_t eol, struct proxy_req *req, const char **why)
{
    size_t i = 0, vs, ve;
    struct proxy_hdr *h;

    if (buf[0] == ' ' || buf[0] == '\t')
        return fail(why, "malformed header: line folding is not allowed", 400);
    while (i < eol && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == 0 || i >= eol || buf[i] != ':')
        return fail(why, "malformed header: expected name:value", 400);
    vs = i + 1;
    while (vs < eol && (buf[vs] == ' ' || buf[vs] == '\t'))
        vs++;
    ve = eol;
    while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
        ve--;
    for (size_t j = vs; j < ve; j++)
        if (!is_vchar_or_ws((unsigned char)buf[j]))
            return fail(why, "malformed header: control character in a value", 400);
    if (req->n_hdrs >= PROXY_MAX_HEADERS)
        return fail(why, "too many header fields", 431);
    h = &req->hdrs[req->n_hdrs++];
    h->name = buf;
    h->name_len = i;
    h->value = buf + vs;
    h->value_len = ve - vs;
    return 0;
}

/* The index of the next '\n' at or after from, or len. */
static size_t find_lf(const char *buf, size_t from, size_t len)
{
    const char *p = memchr(buf + from, '\n', len - from);
    return p ? (size_t)(p - buf) : len;
}

long proxy_req_parse(const char *buf, size_t len, size_t max_head, struct proxy_req *req,
                     const char **why)
{
    size_t pos = 0, lf;
    long rc;

    memset(req, 0, sizeof(*req));
    *why = NULL;
    /* RFC 9112 2.2: ignore empty lines before the request line. */
    while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n' && pos < 8)
        pos += 2;
    lf = find_lf(buf, pos, len);
    if (lf == len) {
        if (len >= max_head)
            return fail(why, "request line too long", 414);
        for (size_t i = pos; i < len; i++)
            if (buf[i] == 0)
                return fail(why, "malformed request line: NUL byte", 400);
        return 0;
    }
    if (lf >= max_head)
        return fail(why, "request line too long", 414);
    if (lf == pos || buf[lf - 1] != '\r')
        return fail(why, "malformed request line: lines must end in CRLF", 400);
    rc = parse_request_line(buf + pos, lf - 1 - pos, req, why);
    if (rc < 0)
        return rc;
    pos = lf + 1;
    for (;;) {
        lf = find_lf(buf, pos, len);
        if (lf == len || lf >= max_head) {
            if (len >= max_head || lf >= max_head)
                return fail(why, "request header fields too large", 431);
            return 0;
        }
        if (lf == pos || buf[lf - 1] != '\r')
            return fail(why, "malformed header: lines must end in CRLF", 400);
        if (lf - 1 == pos) { /* the empty line: the head is complete */
            req->head_len = lf + 1;
            return (long)req->head_len;
        }
        rc = parse_field(buf + pos, lf - 1 - pos, req, why);
        if (rc < 0)
            return rc;
        pos = lf + 1;
    }
}

const struct proxy_hdr *proxy_req_header(const struct proxy_req *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_hdrs; i++)
        if (req->hdrs[i].name_len == n && strncasecmp(req->hdrs[i].name, name, n) == 0)
            return &req->hdrs[i];
    return NULL;
}

size_t proxy_req_header_count(const struct proxy_req *req, const char *name)
{
    size_t n = strlen(name), count = 0;

    for (size_t i = 0; i < req->n_hdrs; i++)
        if (req->hdrs[i].name_len == n && strncasecmp(req->hdrs[i].name, name, n) == 0)
            count++;
    return count;
}

bool proxy_value_has_token(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < len) {
        size_t s, e;
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        s = i;
        while (i < len && value[i] != ',')
            i++;
        e = i;
        while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(value + s, token, tl) == 0)
            return true;
    }
    return false;
}
