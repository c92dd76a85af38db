/* SPDX-License-Identifier: MIT */
/*
 * core/http.h -- civetweb: the dashboard (static files from web_root) and
 * the JSON API (/api/v1/..., /healthz, /readyz, /metrics) through the router,
 * with token auth and scope checks, body limits, JSON errors and per-route
 * metrics. Risky civetweb features are off: no directory listing, no CGI, no
 * SSI, no PUT/DELETE on files. Handlers run on civetweb worker threads.
 *
 * Tokens: "Authorization: Bearer <token>". Because EventSource cannot set
 * headers, a GET whose Accept includes text/event-stream may instead pass
 * ?access_token=<token>; on any other request that parameter is a 400, and
 * handlers never see it through rd_req_param. A route with scope NULL is a
 * read: anonymous callers pass only for GET/HEAD and only while
 * auth_anonymous_read is on; a bad token is a 401 even there.
 */
#ifndef RELENGD_HTTP_H
#define RELENGD_HTTP_H

#include "core/module.h"

struct host;
struct http;

struct http_conf {
    const char *listen;          /* "127.0.0.1:8080"; port 0 picks one */
    int64_t threads;             /* civetweb worker threads */
    int64_t max_streams;         /* event streams/long-polls at once; 0: threads / 2 */
    uint64_t request_timeout_ms; /* civetweb request_timeout_ms */
    uint64_t keep_alive_ms;      /* 0: no keep-alive */
    uint64_t max_body;           /* bytes, for JSON bodies (413 above) */
    const char *web_root;        /* dashboard files */
    const char *tls_cert;        /* PEM cert+key file: serve HTTPS; NULL/"": plain */
    uint64_t shutdown_grace_ms;  /* in-flight requests get this long at stop */
};

/* Starts serving. The router, auth and metrics come from h. c->listen may
   use port 0 (http_port tells the port bound). With c->tls_cert the file
   is checked first (errors name it) and the port speaks TLS 1.2+ only. */
int http_start(struct host *h, const struct http_conf *c, struct http **out, struct rd_error *err);
/* The bound port, and whether it is TLS. */
int http_port(struct http *s);
bool http_is_tls(struct http *s);
/* Stops accepting, waits for in-flight requests (bounded by the grace), closes.
   When the grace runs out it logs what is still running and returns; the
   server is then freed by a helper thread once civetweb has stopped. */
void http_stop(struct http *s);

/* struct rd_req functions for the host API table (see core/module.h). */
const char *http_req_method(struct rd_req *r);
const char *http_req_path(struct rd_req *r);
const char *http_req_param(struct rd_req *r, const char *name);
const char *http_req_header(struct rd_req *r, const char *name);
const json_t *http_req_body(struct rd_req *r);
int64_t http_req_content_length(struct rd_req *r);
int64_t http_req_read(struct rd_req *r, void *buf, size_t len);
bool http_req_has_scope(struct rd_req *r, const char *scope);
const char *http_req_principal(struct rd_req *r);
int http_reply_json(struct rd_req *r, int status, json_t *body);
int http_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt, va_list ap)
    RD_PRINTF(4, 0);
int http_reply_start(struct rd_req *r, int status, const char *content_type,
                     const char *extra_headers, int64_t length);
int http_reply_write(struct rd_req *r, const void *data, size_t len);
int http_reply_file(struct rd_req *r, const char *path, const char *content_type);

struct principal;
/* For core routes (e.g. /api/v1/whoami): the caller's token as checked for
   this request, borrowed until the handler returns; NULL when anonymous,
   or when r is not a request of this server (a fake host's). */
const struct principal *http_req_auth(struct rd_req *r);

#endif
