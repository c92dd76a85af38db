/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/fresh.h -- HTTP caching rules for a shared cache (RFC 9111):
 * Cache-Control parsing, whether a response may be stored, its freshness
 * lifetime and age, and single byte-range requests (RFC 9110 14). Pure: no
 * host calls, no allocation. Any thread.
 */
#ifndef RELENGD_PROXY_FRESH_H
#define RELENGD_PROXY_FRESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_FOREVER INT64_MAX /* lifetime of an immutable object */

struct proxy_cc {
    bool no_store, no_cache, is_private, must_revalidate, immutable;
    int64_t max_age_s, s_maxage_s; /* -1 when absent or invalid */
};

/* Parses a Cache-Control value into cc (which the caller zeroes with
   proxy_cc_init first; several header lines may be parsed into one cc).
   Unknown directives are ignored; a bad delta-seconds counts as absent. */
void proxy_cc_init(struct proxy_cc *cc);
void proxy_cc_parse(const char *value, size_t len, struct proxy_cc *cc);

/* What a response's headers say (values NUL-terminated or NULL). */
struct proxy_fresh_in {
    int status;
    const char *cache_control;
    const char *expires;
    const char *date;
    const char *age;
    int64_t now_ms;         /* when the response arrived */
    int64_t default_ttl_ms; /* the backend's lifetime when the response names none */
    bool immutable_backend; /* the backend's URLs never change */
};

struct proxy_fresh {
    bool storable;
    const char *why_not;    /* static, when not storable */
    int64_t lifetime_ms;    /* PROXY_FOREVER for immutable */
    int64_t initial_age_ms; /* the age the response had when it arrived */
};

/* Decides storability and freshness: only 200 responses are stored; no-store
   and private are not (a shared cache); an immutable backend stores every
   200 forever; no-cache stores with lifetime 0 (always revalidate);
   otherwise s-maxage, then max-age, then Expires minus Date, then the
   backend default. Expires that does not parse means already expired. */
void proxy_freshness(const struct proxy_fresh_in *in, struct proxy_fresh *out);

/* The current age of a stored response, and whether it is still fresh. */
int64_t proxy_age_ms(int64_t initial_age_ms, int64_t stored_ms, int64_t now_ms);
bool proxy_is_fresh(int64_t lifetime_ms, int64_t initial_age_ms, int64_t stored_ms, int64_t now_ms);

/* An HTTP date (IMF-fixdate, RFC 850 or asctime) in ms since the epoch; -1
   when it does not parse. */
int64_t proxy_http_date_ms(const char *s);
/* IMF-fixdate of t (seconds) into out[30]. */
void proxy_http_date_fmt(int64_t t_s, char out[30]);

/* A parsed Range header: bytes=first-last, first-, or -suffix_len. */
struct proxy_range {
    int64_t first;      /* -1 for a suffix range */
    int64_t last;       /* -1 when open-ended */
    int64_t suffix_len; /* for a suffix range */
};

/* Parses a Range value. RD_OK for one valid byte range; RD_EINVAL for
   anything a server ignores (another unit, bad syntax, several ranges),
   after which the whole representation is served. */
int proxy_range_parse(const char *value, size_t len, struct proxy_range *r);

/* Resolves r against a representation of size bytes: RD_OK with the
   inclusive [*first, *last], or RD_ENOTFOUND when unsatisfiable (416). */
int proxy_range_resolve(const struct proxy_range *r, int64_t size, int64_t *first, int64_t *last);

#endif
