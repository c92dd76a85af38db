/* SPDX-License-Identifier: MIT */
/*
 * worker/whttp.h -- relengd-worker's HTTP calls to the dispatch API over
 * libcurl: JSON requests, raw log chunks, streamed artifact uploads. One
 * struct whttp per thread (each has its own easy handle); the caller runs
 * curl_global_init once. A transfer is abandoned early when *abort_flag is
 * set (shutdown), and every call has a timeout.
 */
#ifndef RELENGD_WORKER_WHTTP_H
#define RELENGD_WORKER_WHTTP_H

#include <signal.h>
#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

#include "worker/wconf.h"

struct whttp {
    CURL *curl;
    const struct wconf *conf;
    volatile sig_atomic_t *abort_flag; /* may be NULL */
    char error[CURL_ERROR_SIZE];
    long last_status;
    char log_offset[32]; /* X-Log-Offset of the last answer, "" if none */
};

int whttp_init(struct whttp *h, const struct wconf *c, volatile sig_atomic_t *abort_flag);
void whttp_fini(struct whttp *h);

/* method path (under the server URL, starting "/api/...") with a JSON body
   (borrowed, may be NULL). Returns the HTTP status, or -1 on a transport
   error (h->error says why). *out: the parsed answer (new ref) or NULL. */
long whttp_json(struct whttp *h, const char *method, const char *path, const json_t *body,
                long timeout_ms, json_t **out);
/* POST raw bytes (log chunks). Same returns. */
long whttp_post_raw(struct whttp *h, const char *path, const void *data, size_t len, json_t **out);
/* PUT a file of size bytes, streamed, with X-Content-SHA256. */
long whttp_put_file(struct whttp *h, const char *path, FILE *f, long long size,
                    const char *sha256_hex, json_t **out);

#endif
