/* SPDX-License-Identifier: MIT */
/*
 * modules/proxy/http_req.h -- a strict HTTP/1.1 request-head parser for the
 * proxy's own listener. Pure: no host calls, no allocation; the parsed
 * request points into the caller's buffer. Any thread.
 */
#ifndef RELENGD_PROXY_HTTP_REQ_H
#define RELENGD_PROXY_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#define PROXY_MAX_HEADERS 64

enum proxy_method { PROXY_M_GET, PROXY_M_HEAD, PROXY_M_CONNECT, PROXY_M_OTHER };

struct proxy_hdr {
    const char *name;
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
};

struct proxy_req {
    enum proxy_method method;
    const char *method_str;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor; /* HTTP/1.minor: 0 or 1 */
    struct proxy_hdr hdrs[PROXY_MAX_HEADERS];
    size_t n_hdrs;
    size_t head_len; /* bytes of the head, final empty line included */
};

/* Parses one request head at the start of buf[0..len). Returns the head's
   length (> 0) when it is complete and valid; 0 when more bytes are needed
   (and len < max_head); or a negative HTTP status: -400 malformed, -414
   request line longer than max_head, -431 head longer than max_head or
   more than PROXY_MAX_HEADERS fields, -505 an HTTP version other than 1.0
   and 1.1. On an error *why is a static sentence naming the problem. A
   malformed request line is reported as soon as its line is complete. */
long proxy_req_parse(const char *buf, size_t len, size_t max_head, struct proxy_req *req,
                     const char **why);

/* The first header named name (case-insensitive), or NULL. Borrowed from req. */
const struct proxy_hdr *proxy_req_header(const struct proxy_req *req, const char *name);
/* How many headers are named name. */
size_t proxy_req_header_count(const struct proxy_req *req, const char *name);
/* Whether a comma-separated header value contains token (case-insensitive). */
bool proxy_value_has_token(const char *value, size_t len, const char *token);

#endif
