/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/fresh.c -- Cache-Control, freshness, HTTP dates and Range
 * (see fresh.h). The rules are those of a shared cache: private responses
 * are not ours to keep, and s-maxage wins over max-age.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "core/module.h"
#include "modules/proxy/fresh.h"

void proxy_cc_init(struct proxy_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age_s = -1;
    cc->s_maxage_s = -1;
}

/* delta-seconds, optionally quoted; -1 if bad. Values past ~68 years are
   capped (RFC 9111 1.2.2: treat overflow as the largest value). */
static int64_t delta_seconds(const char *v, size_t len)
{
    int64_t n = 0;

    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)v[i]))
            return -1;
        if (n < 2147483648LL)
            n = n * 10 + (v[i] - '0');
    }
    return n > 2147483648LL ? 2147483648LL : n;
}

void proxy_cc_parse(const char *value, size_t len, struct proxy_cc *cc)
{
    size_t i = 0;

    while (i < len) {
        size_t s, e, eq;
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        s = i;
        /* a quoted argument may hold commas */
        bool quoted = false;
        while (i < len && (quoted || value[i] != ',')) {
            if (value[i] == '"')
                quoted = !quoted;
            i++;
        }
        e = i;
        while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        eq = s;
        while (eq < e && value[eq] != '=')
            eq++;
        size_t nlen = eq - s;
        const char *arg = eq < e ? value + eq + 1 : NULL;
        size_t alen = eq < e ? e - eq - 1 : 0;
#define IS(word) (nlen == sizeof(word) - 1 && strncasecmp(value + s, word, nlen) == 0)
        if (IS("no-store"))
            cc->no_store = true;
        else if (IS("no-cache"))
            cc->no_cache = true; /* with field names, still "revalidate": the safe side */
        else if (IS("private"))
            cc->is_private = true;
        else if (IS("must-revalidate") || IS("proxy-revalidate"))
            cc->must_revalidate = true;
        else if (IS("immutable"))
            cc->immutable = true;
        else if (IS("max-age"))
            cc->max_age_s = arg ? delta_seconds(arg, alen) : -1;
        else if (IS("s-maxage"))
            cc->s_maxage_s = arg ? delta_seconds(arg, alen) : -1;
#undef IS
    }
}

int64_t proxy_http_date_ms(const char *s)
{
    time_t t;

    if (!s || !*s)
        return -1;
    t = curl_getdate(s, NULL);
    return t == (time_t)-1 ? -1 : (int64_t)t * 1000;
}

void proxy_http_date_fmt(int64_t t_s, char out[30])
{
    time_t t = (time_t)t_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void proxy_freshness(const struct proxy_fresh_in *in, struct proxy_fresh *out)
{
    struct proxy_cc cc;
    int64_t date_ms = proxy_http_date_ms(in->date), age_s = -1;

    memset(out, 0, sizeof(*out));
    proxy_cc_init(&cc);
    if (in->cache_control)
        proxy_cc_parse(in->cache_control, strlen(in->cache_control), &cc);
    if (in->age)
        age_s = delta_seconds(in->age, strlen(in->age));

    /* RFC 9111 4.2.3: the corrected initial age. */
    out->initial_age_ms = age_s > 0 ? age_s * 1000 : 0;
    if (date_ms >= 0 && in->now_ms - date_ms > out->initial_age_ms)
        out->initial_age_ms = in->now_ms - date_ms;

    if (in->status != 200) {
        out->why_not = "only 200 responses are cached";
        return;
    }
    if (in->immutable_backend) {
        out->storable = true;
        out->lifetime_ms = PROXY_FOREVER;
        out->initial_age_ms = 0;
        return;
    }
    if (cc.no_store) {
        out->why_not = "Cache-Control: no-store";
        return;
    }
    if (cc.is_private) {
        out->why_not = "Cache-Control: private";
        return;
    }
    out->storable = true;
    if (cc.no_cache) {
        out->lifetime_ms = 0;
    } else if (cc.s_maxage_s >= 0) {
        out->lifetime_ms = cc.s_maxage_s * 1000;
    } else if (cc.max_age_s >= 0) {
        out->lifetime_ms = cc.max_age_s * 1000;
    } else if (in->expires) {
        int64_t exp_ms = proxy_http_date_ms(in->expires);
        int64_t base_ms = date_ms >= 0 ? date_ms : in->now_ms;
        out->lifetime_ms = exp_ms < 0 || exp_ms <= base_ms ? 0 : exp_ms - base_ms;
    } else if (cc.immutable) {
        out->lifetime_ms = PROXY_FOREVER;
    } else {
        out->lifetime_ms = in->default_ttl_ms;
    }
}

int64_t proxy_age_ms(int64_t initial_age_ms, int64_t stored_ms, int64_t now_ms)
{
    int64_t resident = now_ms > stored_ms ? now_ms - stored_ms : 0;
    return initial_age_ms + resident;
}

bool proxy_is_fresh(int64_t lifetime_ms, int64_t initial_age_ms, int64_t stored_ms, int64_t now_ms)
{
    if (lifetime_ms == PROXY_FOREVER)
        return true;
    return proxy_age_ms(initial_age_ms, stored_ms, now_ms) < lifetime_ms;
}

/* Digits at v[*i..]; -1 if none or too many (over 18). */
static int64_t parse_digits(const char *v, size_t len, size_t *i)
{
    int64_t n = 0;
    size_t s = *i;

    while (*i < len && isdigit((unsigned char)v[*i])) {
        if (*i - s >= 18)
            return -1;
        n = n * 10 + (v[*i] - '0');
        (*i)++;
    }
    return *i == s ? -1 : n;
}

int proxy_range_parse(const char *v, size_t len, struct proxy_range *r)
{
    size_t i = 0;

    r->first = r->last = -1;
    r->suffix_len = 0;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len < 7 || strncasecmp(v, "bytes=", 6) != 0)
        return RD_EINVAL;
    i = 6;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i < len && v[i] == '-') {
        i++;
        r->suffix_len = parse_digits(v, len, &i);
        if (r->suffix_len < 0)
            return RD_EINVAL;
    } else {
        r->first = parse_digits(v, len, &i);
        if (r->first < 0 || i >= len || v[i] != '-')
            return RD_EINVAL;
        i++;
        if (i < len && isdigit((unsigned char)v[i])) {
            r->last = parse_digits(v, len, &i);
            if (r->last < 0 || r->last < r->first)
                return RD_EINVAL;
        }
    }
    /* Anything else -- a second range above all -- means "ignore Range". */
    return i == len ? RD_OK : RD_EINVAL;
}

int proxy_range_resolve(const struct proxy_range *r, int64_t size, int64_t *first, int64_t *last)
{
    if (r->first < 0) { /* suffix */
        if (r->suffix_len == 0 || size == 0)
            return RD_ENOTFOUND;
        *first = r->suffix_len >= size ? 0 : size - r->suffix_len;
        *last = size - 1;
        return RD_OK;
    }
    if (r->first >= size)
        return RD_ENOTFOUND;
    *first = r->first;
    *last = r->last < 0 || r->last >= size ? size - 1 : r->last;
    return RD_OK;
}
