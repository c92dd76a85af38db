/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/cache_key.c -- cache-key normalisation (see cache_key.h).
 * Two spellings of one URL must give one key, or the cache stores the same
 * artifact twice and a purge misses one of them; and a path must never
 * climb out of its backend's prefix upstream.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/module.h"
#include "modules/proxy/cache_key.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Pass 1: escapes and characters; writes into out, returns length or -1. */
static long normalize_escapes(const char *in, size_t in_len, char *out, size_t out_size,
                              size_t *query_at, const char **why)
{
    size_t o = 0;
    bool in_query = false;

    *query_at = (size_t)-1;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        char buf[3];
        size_t n = 1;

        if (c <= 0x20 || c >= 0x7f) {
            *why = "control, space or non-ASCII byte in the path";
            return -1;
        }
        if (c == '#') {
            *why = "fragment in the request target";
            return -1;
        }
        buf[0] = (char)c;
        if (c == '?' && !in_query) {
            in_query = true;
            *query_at = o;
        } else if (c == '%') {
            int hi, lo, v;
            if (i + 2 >= in_len) {
                *why = "truncated percent-escape";
                return -1;
            }
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) {
                *why = "bad percent-escape";
                return -1;
            }
            v = hi * 16 + lo;
            if (v == 0) {
                *why = "%00 in the path";
                return -1;
            }
            i += 2;
            if (is_unreserved((unsigned char)v)) {
                buf[0] = (char)v;
            } else {
                static const char hex[] = "0123456789ABCDEF";
                buf[0] = '%';
                buf[1] = hex[v >> 4];
                buf[2] = hex[v & 15];
                n = 3;
            }
        }
        if (o + n >= out_size) {
            *why = "path too long";
            return -1;
        }
        memcpy(out + o, buf, n);
        o += n;
    }
    out[o] = '\0';
    return (long)o;
}

/* Pass 2: RFC 3986 5.2.4 remove_dot_segments on out[0..path_len), in place;
   a ".." at the root is an error rather than silently dropped, so that a
   client that tries to climb learns it. Returns the new length or -1. */
static long remove_dots(char *p, size_t path_len, const char **why)
{
    size_t r = 0, w = 0;

    while (r < path_len) {
        /* p[r] is '/' here: the path starts with one and every step stops at one. */
        size_t e = r + 1;
        while (e < path_len && p[e] != '/')
            e++;
        size_t seg = e - r - 1;
        if (seg == 1 && p[r + 1] == '.') {
            if (e == path_len)
                p[w++] = '/';
        } else if (seg == 2 && p[r + 1] == '.' && p[r + 2] == '.') {
            if (w == 0) {
                *why = "path climbs above the root";
                return -1;
            }
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* drop the segment's own slash */
            if (e == path_len)
                p[w++] = '/';
        } else {
            memmove(p + w, p + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0)
        p[w++] = '/';
    return (long)w;
}

int proxy_path_normalize(const char *in, size_t in_len, char *out, size_t out_size,
                         const char **why)
{
    size_t query_at, path_len, total;
    long n, pl;

    *why = NULL;
    if (out_size < 2 || in_len == 0 || in[0] != '/') {
        *why = "the path must start with /";
        return RD_EINVAL;
    }
    n = normalize_escapes(in, in_len, out, out_size, &query_at, why);
    if (n < 0)
        return RD_EINVAL;
    total = (size_t)n;
    path_len = query_at == (size_t)-1 ? total : query_at;
    pl = remove_dots(out, path_len, why);
    if (pl < 0)
        return RD_EINVAL;
    if (query_at != (size_t)-1) {
        size_t qlen = total - query_at; /* with the '?' */
        if (qlen == 1)
            qlen = 0; /* "?" alone: no query */
        memmove(out + pl, out + query_at, qlen);
        total = (size_t)pl + qlen;
    } else {
        total = (size_t)pl;
    }
    out[total] = '\0';
    return RD_OK;
}

int proxy_uri_parse(const char *s, size_t len, struct proxy_uri *u, const char **why)
{
    size_t i, hs, he, hostlen;
    const char *slash;

    memset(u, 0, sizeof(*u));
    *why = NULL;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0) {
        memcpy(u->scheme, "http", 5);
        u->port = 80;
        i = 7;
    } else if (len > 8 && strncasecmp(s, "https://", 8) == 0) {
        memcpy(u->scheme, "https", 6);
        u->port = 443;
        i = 8;
    } else {
        *why = "only http:// and https:// URIs are proxied";
        return RD_EINVAL;
    }
    hs = i;
    while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    he = i;
    for (size_t j = hs; j < he; j++)
        if (s[j] == '@') {
            *why = "user information in the URI";
            return RD_EINVAL;
        }
    /* host[:port], or [v6]:port */
    size_t host_s = hs, host_e = he, colon = he;
    if (hs < he && s[hs] == '[') {
        const char *rb = memchr(s + hs, ']', he - hs);
        if (!rb) {
            *why = "bad IPv6 literal in the URI";
            return RD_EINVAL;
        }
        host_s = hs + 1;
        host_e = (size_t)(rb - s);
        colon = host_e + 1 < he ? host_e + 1 : he;
        if (colon < he && s[colon] != ':') {
            *why = "bad host in the URI";
            return RD_EINVAL;
        }
    } else {
        const char *c = memchr(s + hs, ':', he - hs);
        if (c)
            colon = (size_t)(c - s);
        host_e = colon;
    }
    hostlen = host_e - host_s;
    if (hostlen == 0 || hostlen >= sizeof(u->host)) {
        *why = "bad host in the URI";
        return RD_EINVAL;
    }
    for (size_t j = 0; j < hostlen; j++) {
        unsigned char c = (unsigned char)s[host_s + j];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || (c == ':' && s[hs] == '['))) {
            *why = "bad host in the URI";
            return RD_EINVAL;
        }
        u->host[j] = (char)tolower(c);
    }
    if (colon < he) {
        long port = 0;
        if (colon + 1 == he) {
            *why = "bad port in the URI";
            return RD_EINVAL;
        }
        for (size_t j = colon + 1; j < he; j++) {
            if (!isdigit((unsigned char)s[j]) || port > 65535) {
                *why = "bad port in the URI";
                return RD_EINVAL;
            }
            port = port * 10 + (s[j] - '0');
        }
        if (port < 1 || port > 65535) {
            *why = "bad port in the URI";
            return RD_EINVAL;
        }
        u->port = (int)port;
    }
    if (he < len && s[he] == '#') {
        *why = "fragment in the request target";
        return RD_EINVAL;
    }
    if (he == len || s[he] == '?') {
        /* "http://h" and "http://h?q" have the path "/" (RFC 9112 3.2.4). */
        if (he < len) {
            *why = "a query without a path";
            return RD_EINVAL;
        }
        u->path = "/";
        u->path_len = 1;
        return RD_OK;
    }
    slash = s + he;
    u->path = slash;
    u->path_len = len - he;
    return RD_OK;
}

int proxy_cache_key(const char *backend, const char *norm_path, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s %s", backend, norm_path);
    return n < 0 || (size_t)n >= out_size ? RD_ETOOBIG : RD_OK;
}

int proxy_digest_from_path(const char *norm_path, size_t hex_len, char *out)
{
    const char *q = strchr(norm_path, '?');
    size_t plen = q ? (size_t)(q - norm_path) : strlen(norm_path);
    const char *seg = norm_path + plen;

    while (seg > norm_path && seg[-1] != '/')
        seg--;
    if ((size_t)(norm_path + plen - seg) != hex_len)
        return RD_EINVAL;
    for (size_t i = 0; i < hex_len; i++) {
        if (hexval((unsigned char)seg[i]) < 0)
            return RD_EINVAL;
        out[i] = (char)tolower((unsigned char)seg[i]);
    }
    out[hex_len] = '\0';
    return RD_OK;
}

bool proxy_host_backend(const char *host, size_t host_len, const char *suffix, char *name,
                        size_t name_size)
{
    size_t sl, hl = host_len, nl;
    const char *c;

    if (!suffix || !suffix[0] || host_len == 0 || host[0] == '[')
        return false;
    c = memchr(host, ':', host_len);
    if (c)
        hl = (size_t)(c - host);
    sl = strlen(suffix);
    if (hl < sl + 2 || host[hl - sl - 1] != '.' || strncasecmp(host + hl - sl, suffix, sl) != 0)
        return false;
    nl = hl - sl - 1;
    if (nl + 1 > name_size)
        return false;
    for (size_t i = 0; i < nl; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!(isalnum(ch) || ch == '-' || ch == '_'))
            return false;
        name[i] = (char)tolower(ch);
    }
    name[nl] = '\0';
    return true;
}
