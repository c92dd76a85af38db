/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_http.h -- relengctl's HTTP client over libcurl: JSON requests with a
 * bearer token, and a Server-Sent Events reader for /api/v1/events. Knows
 * nothing about commands or output. Single-threaded; the caller runs
 * curl_global_init() once.
 */
#ifndef RELENGD_CTL_HTTP_H
#define RELENGD_CTL_HTTP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Where and as whom. Strings are borrowed and must outlive the calls. */
struct ctl_http {
    const char *base_url; /* "http://127.0.0.1:8080", no trailing slash */
    const char *token;    /* bearer token or NULL */
    long connect_timeout_ms;
    long timeout_ms; /* whole request; 0 = none (ignored for streams) */
};

/* An answer. body is NUL-terminated (may contain NULs before body_len). */
struct ctl_http_resp {
    long status; /* HTTP status, 0 before any */
    char *body;  /* owned */
    size_t body_len;
    char *content_type; /* owned, or NULL */
    json_t *json;       /* the parsed body (owned), NULL if empty or not JSON */
};

/* Outcome of a transfer. */
enum ctl_http_rc {
    CTL_HTTP_OK = 0,      /* an HTTP answer was received (any status): see resp */
    CTL_HTTP_CONN = -1,   /* no answer: connection refused, DNS, TLS, timeout */
    CTL_HTTP_TOOBIG = -2, /* the answer exceeded CTL_HTTP_MAX_BODY */
    CTL_HTTP_NOMEM = -3,
};

#define CTL_HTTP_MAX_BODY (64u << 20) /* bytes buffered for one JSON answer */
#define CTL_HTTP_MAX_LINE (4u << 20)  /* bytes of one SSE line */

/* Sends method to base_url + path_query (which starts with "/") with body
   (borrowed; NULL: no body) as application/json. Fills *resp (caller runs
   ctl_http_resp_fini, also on failure). On failure writes a sentence to errbuf. */
int ctl_http_request(const struct ctl_http *c, const char *method, const char *path_query,
                     const json_t *body, struct ctl_http_resp *resp, char *errbuf, size_t errlen);
void ctl_http_resp_fini(struct ctl_http_resp *resp);

/* The error message of an API error answer {"error":{"code","message"}}, or
   NULL; borrowed from resp. code_out (may be NULL) gets the code or NULL. */
const char *ctl_http_error_message(const struct ctl_http_resp *resp, const char **code_out);

/* Appends "sep key=escaped(value)" to a path in a growing buffer: returns a new
   string (free()) or NULL on ENOMEM. sep is '?' for the first parameter. */
char *ctl_http_add_query(char *path, const char *key, const char *value);

/* One SSE event as dispatched by the reader (all borrowed for the call). */
struct ctl_sse_event {
    const char *id;    /* the last event id seen so far ("" if none) */
    const char *event; /* event field, "message" by default */
    const char *data;  /* data lines joined with "\n" */
};
/* Return 0 to go on, non-zero to stop the stream. */
typedef int (*ctl_sse_fn)(void *arg, const struct ctl_sse_event *ev);

enum ctl_sse_rc {
    CTL_SSE_CLOSED = 0,      /* was streaming; the server or network ended the stream */
    CTL_SSE_STOPPED = 1,     /* the callback or *stop ended it */
    CTL_SSE_HTTP_ERROR = 2,  /* answer was not 200 text/event-stream: see resp */
    CTL_SSE_CONN_FAILED = 3, /* no answer at all (errbuf says why) */
    CTL_SSE_PROTOCOL = 4,    /* over-long line or out of memory (errbuf says why) */
};

/* Streams GET base_url + path_query with Accept: text/event-stream and, when
   last_id is set and non-empty, Last-Event-ID. Calls fn for every event;
   last_id_out (size last_id_len) always holds the last id seen so the caller
   can resume. A "retry:" field is stored in *retry_ms (may be NULL). stop
   (may be NULL) is polled about once a second and between events; setting it
   from a signal handler ends the stream with CTL_SSE_STOPPED. On
   CTL_SSE_HTTP_ERROR resp holds the answer (caller runs ctl_http_resp_fini
   in every case). */
int ctl_http_sse(const struct ctl_http *c, const char *path_query, const char *last_id,
                 char *last_id_out, size_t last_id_len, long *retry_ms,
                 const volatile sig_atomic_t *stop, ctl_sse_fn fn, void *arg,
                 struct ctl_http_resp *resp, char *errbuf, size_t errlen);

#endif
