/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/spec.h -- the partials module's pure logic: its
 * configuration struct, the validation of a POST /jobs body into a job
 * spec, list queries, ids, metric tag values, cache file names and the
 * remote cache URL. No host calls: tested in tables by
 * tests/unit/partials/test_spec.c. Any thread.
 */
#ifndef RELENGD_PARTIALS_SPEC_H
#define RELENGD_PARTIALS_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/module.h"

/* The module's configuration (etc/modules.d/partials.conf, module.c). */
struct partials_conf {
    const char *jobs_dir;      /* job inputs and results */
    const char *uploads_dir;   /* uploaded MARs, by SHA-256 */
    const char *cache_dir;     /* the diff cache's patches */
    uint64_t cache_max_bytes;  /* LRU eviction above this */
    uint64_t cache_min_size;   /* to files smaller than this bypass the cache */
    uint64_t max_upload;       /* largest upload / download */
    uint64_t fetch_timeout_ms; /* per download */
    const char *fetch_proxy;   /* e.g. the proxy module's http://127.0.0.1:3128; "" none */
    const char *format;        /* default partial format: xz or bz2 */
    int64_t xz_preset;         /* 0..9 */
    bool xz_extreme;           /* xz -e */
    const char *main_exe;      /* its manifest lines go last */
    const char *forced;        /* extra always-added paths, space-separated */
    const char *remote_cache;  /* "": none; http(s)://host/prefix (PUT/GET) */
    const char *remote_kind;   /* "http" or "s3" */
    const char *s3_region;     /* for SigV4 */
    const char *s3_access_key;
    const char *s3_secret_key;
    uint64_t remote_timeout_ms;
    const char *signing_key; /* key name handed to the signing service; "" default */
};

extern const struct rd_cfg_key partials_keys[];

#define PARTIALS_LABEL_MAX 64
#define PARTIALS_URL_MAX 2048
#define PARTIALS_SHA_HEX 64

/* A validated POST /jobs body. Strings are borrowed from the body. Exactly
   one of url / upload is set for each of from and to. */
struct partials_job_spec {
    const char *from_url, *from_upload;
    const char *to_url, *to_upload;
    const char *platform, *locale;
    const char *channel, *version; /* NULL: the to MAR's */
    int64_t update_number;         /* 0 when absent */
    const char *format;            /* "xz" or "bz2"; NULL: the configured one */
};

/* Validates body into *out. RD_EINVAL with a message starting with the
   field at fault: unknown fields, from/to given both or neither way, a URL
   that is not http(s):// or too long, an upload id that is not 64 hex
   digits, platform/locale missing or not a label (partials_label_ok), a
   channel over 63 or version over 31 bytes, update_number out of 0..1e6, an
   unknown format. */
int partials_job_spec_parse(const json_t *body, struct partials_job_spec *out,
                            struct rd_error *err);

/* [A-Za-z0-9_.@+-]{1,64}: safe as a metric tag value and in file names. */
bool partials_label_ok(const char *s);
/* 64 lower-case hex digits. */
bool partials_sha_hex_ok(const char *s);
/* http:// or https:// then a host, at most PARTIALS_URL_MAX bytes, no
   whitespace or control characters. */
bool partials_url_ok(const char *s);
/* A {id}: positive decimal integer. */
int partials_id_parse(const char *s, int64_t *out);

/* GET /jobs?state=&limit=&after= */
struct partials_list_query {
    const char *state; /* NULL: all; else queued/running/done/failed */
    int64_t limit;     /* 1..500, default 50 */
    int64_t before;    /* newest first: ids < before; 0 = from the newest */
};
int partials_list_query_parse(const char *state, const char *limit, const char *before,
                              struct partials_list_query *out, struct rd_error *err);

/* The file name of a cache entry below the cache directory:
   "ab/<from hex>-<to hex>.<format>" where ab are the first two hex digits of
   from (256 subdirectories). out must hold PARTIALS_CACHE_NAME_MAX bytes.
   RD_EINVAL for a format that is not [a-z0-9+]{1,16}. */
#define PARTIALS_CACHE_NAME_MAX 160
int partials_cache_name(const char *from_hex, const char *to_hex, const char *format, char *out);

/* The remote object URL: base (trailing '/' optional) + "/<from>/<to>/<format>".
   A new string (free), NULL when out of memory. */
char *partials_remote_url(const char *base, const char *from_hex, const char *to_hex,
                          const char *format);

/* Splits the space-separated forced list into a NULL-terminated array of
   new strings (free each and the array with partials_strv_free). */
char **partials_split_words(const char *s);
void partials_strv_free(char **v);

#endif
