/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/cache_key.h -- request targets to cache keys: path
 * normalisation (percent-encoding, dot segments), absolute-URI parsing for
 * forward mode, and the digest a content-addressed URL names. Pure: no host
 * calls, no allocation. Any thread.
 */
#ifndef RELENGD_PROXY_CACHE_KEY_H
#define RELENGD_PROXY_CACHE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#define PROXY_KEY_MAX 4096

/* Normalises an origin-form path with optional query (in[0..in_len), which
   must start with '/') into out (NUL-terminated): percent-escapes of
   unreserved characters are decoded, other escapes get upper-case hex,
   "." and ".." segments are removed, an empty query ("?" alone) is dropped.
   RD_OK, or RD_EINVAL (*why says why) for: no leading '/', a '#', a bad or
   NUL escape (%00), a control or non-ASCII byte, a ".." that climbs above the
   root, or a result that does not fit out_size. */
int proxy_path_normalize(const char *in, size_t in_len, char *out, size_t out_size,
                         const char **why);

/* An absolute URI split up. host is lower-case, without brackets for IPv6
   literals; port is the scheme's default when absent; path points into the
   input ("/" when the URI has none: path_len 1, path a static "/"). */
struct proxy_uri {
    char scheme[8]; /* "http" or "https" */
    char host[256];
    int port;
    const char *path;
    size_t path_len;
};

/* Parses "http://host[:port][/path][?query]" (or https). RD_OK, or
   RD_EINVAL with *why: another scheme, userinfo, an empty or bad host, a bad
   port, a fragment. */
int proxy_uri_parse(const char *s, size_t len, struct proxy_uri *u, const char **why);

/* The cache key of a normalised path under a backend: "<backend> <path>".
   RD_OK or RD_ETOOBIG. */
int proxy_cache_key(const char *backend, const char *norm_path, char *out, size_t out_size);

/* The digest a content-addressed URL names: the last segment of the path
   (query ignored) must be exactly hex_len hex digits; out (hex_len + 1
   bytes) gets it in lower case. RD_OK or RD_EINVAL. */
int proxy_digest_from_path(const char *norm_path, size_t hex_len, char *out);

/* Whether a Host header value names a backend through a suffix: "hg.proxy.
   example[:port]" with suffix "proxy.example" gives "hg" in name (NUL-
   terminated, case kept as lower case). false when it does not match. */
bool proxy_host_backend(const char *host, size_t host_len, const char *suffix, char *name,
                        size_t name_size);

#endif
