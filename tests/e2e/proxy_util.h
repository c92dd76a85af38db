/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/proxy_util.h -- helpers for the proxy's end-to-end tests: the
 * counting origin (tests/e2e/proxy_origin.py) as a child process, a relengd
 * with the proxy module configured against it, and HTTP through the proxy
 * port (plain libcurl, raw sockets, and a curl multi for many concurrent
 * clients). Every wait is bounded. Single-threaded.
 */
#ifndef RELENGD_E2E_PROXY_UTIL_H
#define RELENGD_E2E_PROXY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#include "tests/e2e/harness.h"

struct px {
    struct e2e_daemon *d;
    pid_t origin_pid;
    int origin_port;
    int dead_port; /* a port nothing listens on */
    int port;      /* the proxy's */
    pid_t tls_pid; /* the HTTPS origin of px_start_tls */
    int tls_port;
};

/* Starts the origin, writes the proxy config (main-section lines `main`
   first, then backends o, ca (sha512, prefix /ca), imm (immutable, prefix
   /imm), dead) and starts relengd with only the proxy module. NULL on
   failure (printed). */
struct px *px_start(const char *main);
/* px_start plus an HTTPS origin (a self-signed certificate for 127.0.0.1)
   and backends tls (ca_file = that certificate) and tlsbad (system CAs). */
struct px *px_start_tls(const char *main);
/* Stops relengd (must exit 0) and the origin; frees. Returns 0 if the
   daemon stopped cleanly. */
int px_stop(struct px *x);
/* Re-reads the proxy port after a relaunch. */
void px_reload_port(struct px *x);

/* Origin control. */
void origin_ctl(struct px *x, const char *json);
void origin_open(struct px *x, const char *path);
long origin_count(struct px *x, const char *path, const char *field);
/* Hex digest of the origin's body for path ("sha256" or "sha512"), into out. */
void origin_digest(struct px *x, const char *path, const char *which, char *out, size_t n);

/* One exchange through the proxy. */
struct px_resp {
    long status;     /* -1: no response */
    CURLcode rc;     /* CURLE_OK when the body arrived whole */
    char xcache[32]; /* X-Cache, "" when absent */
    char content_range[96];
    char age[32];
    char via[64];
    char *body;
    size_t len;
    char sha256[65];
};
/* GET (or HEAD when head) target through the proxy: a path sent to the
   proxy port, or with proxy_url set an absolute URL sent through it as an
   HTTP proxy. headers: NULL-terminated "Name: value" or NULL. */
int px_get(struct px *x, const char *path, const char *const *headers, struct px_resp *r);
int px_head(struct px *x, const char *path, struct px_resp *r);
int px_get_via_proxy(struct px *x, const char *absolute_url, struct px_resp *r);
void px_resp_free(struct px_resp *r);

/* Raw bytes to the proxy port; the reply until close, max bytes or
   timeout. Malloc'd, NUL-terminated. */
char *px_raw(struct px *x, const char *req, size_t len, int timeout_ms);

/* GET on the API (JSON), new reference or NULL. */
json_t *px_api(struct px *x, const char *path);

/* Many concurrent clients on one curl multi. */
struct px_multi;
struct px_multi *px_multi_new(void);
/* Adds a client for path (Range header optional); returns its index. */
int px_multi_add(struct px_multi *m, struct px *x, const char *path, const char *range);
/* Runs the transfers for up to ms (or until all are done). Returns how many
   are still running. */
int px_multi_run(struct px_multi *m, int ms);
/* Runs until cond(arg) holds or timeout_ms; true if it did. */
bool px_multi_until(struct px_multi *m, bool (*cond)(void *arg), void *arg, int timeout_ms);
/* Removes client i (a client that goes away mid-download). */
void px_multi_drop(struct px_multi *m, int i);
size_t px_multi_bytes(struct px_multi *m, int i);
bool px_multi_done(struct px_multi *m, int i);
/* Results of client i once done: status, curl result, X-Cache, SHA-256 hex. */
long px_multi_status(struct px_multi *m, int i);
CURLcode px_multi_result(struct px_multi *m, int i);
const char *px_multi_xcache(struct px_multi *m, int i);
const char *px_multi_sha256(struct px_multi *m, int i);
double px_multi_first_byte_s(struct px_multi *m, int i);
void px_multi_free(struct px_multi *m);

/* The proxy's inflight entry for key-path ("/herd"), or 0 fields. */
long px_inflight(struct px *x, const char *path_suffix, const char *field);

void sha256_hex(const void *data, size_t len, char out[65]);

#endif
