/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/harness.h -- the end-to-end harness: runs the real relengd on
 * 127.0.0.1 (port 0) with a temporary state directory and drives it over
 * HTTP with libcurl, exactly as users and scripts do.
 *
 * A daemon's life:
 *
 *     struct e2e_opts o = {.modules = "example"};
 *     struct e2e_daemon *d = e2e_start(&o);       -- NULL if it did not get ready
 *     struct e2e_resp r;
 *     assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
 *     e2e_resp_free(&r);
 *     e2e_pass(d);                                  -- the test body got to its end
 *     assert_int_equal(e2e_stop(d), 0);             -- SIGTERM, exit 0 within 10 s
 *     e2e_free(d);                                  -- dumps the daemon log unless passed
 *
 * e2e_new() makes the temporary directory (mkdtemp under $TMPDIR or /tmp),
 * copies tests/e2e/etc into <dir>/etc so a test can change or add files, and
 * makes an admin token; e2e_launch() then runs
 *
 *     <builddir>/core/relengd -c <dir>/etc/relengd.conf --state-dir <dir>/state
 *         --listen 127.0.0.1:0 --ready-file <dir>/ready.json
 *         --module-dir <builddir>/modules/.libs:<builddir>/tests/modules/.libs
 *         --set http.web_root=<srcdir>/web [--modules M] [--set K=V]... [args]...
 *
 * with RELENGD_ADMIN_TOKEN set (and every other RELENGD_* variable of the
 * test's environment removed), stdout and stderr appended to <dir>/relengd.log,
 * and waits (bounded, polling the ready file and waitpid) until the ready file
 * names the API port. The source and build trees come from the environment
 * (top_srcdir, top_builddir, as `make check` exports them) or else from the
 * TOP_SRCDIR / TOP_BUILDDIR macros the Makefile passes.
 *
 * Failure reporting (Redis --dump-logs): e2e_stop() prints the daemon log when
 * the daemon does not exit 0 in time, e2e_free() prints it unless e2e_pass()
 * was called, and e2e_start() prints it when start-up fails. E2E_KEEP=1 in
 * the environment keeps the temporary directory for a post-mortem.
 *
 * Every wait in here is bounded. Only 127.0.0.1 is ever contacted. Not
 * thread-safe except where noted (the SSE reader runs its own thread).
 */
#ifndef RELENGD_E2E_HARNESS_H
#define RELENGD_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ the daemon */

struct e2e_opts {
    const char *modules;     /* --modules "example hostcheck"; NULL: the e2e config's */
    const char *const *set;  /* NULL-terminated "section.key=value", each a --set */
    const char *const *args; /* NULL-terminated extra command-line arguments */
    const char *const *env;  /* NULL-terminated "NAME=value" for the daemon's env */
    bool no_admin_token;     /* leave RELENGD_ADMIN_TOKEN unset */
    bool tls;                /* make a self-signed cert, set http.tls_cert, use https */
    bool listen_from_config; /* no --listen: [http] listen of etc/relengd.conf counts */
    int ready_timeout_ms;    /* 0: 20000 */
};

struct e2e_daemon {
    char dir[256];        /* the temporary directory (everything below lives in it) */
    char etc_dir[300];    /* <dir>/etc, a copy of tests/e2e/etc */
    char conf_path[320];  /* <dir>/etc/relengd.conf */
    char state_dir[300];  /* <dir>/state */
    char ready_path[300]; /* <dir>/ready.json */
    char log_path[300];   /* <dir>/relengd.log: the daemon's stdout and stderr */
    char cert_path[300];  /* <dir>/cert.pem when opts.tls, else "" */
    char admin_token[64]; /* "rd_" + 43 base64url chars; "" with opts.no_admin_token */
    char base_url[128];   /* "http://127.0.0.1:PORT" (https with TLS) once ready */

    pid_t pid;               /* > 0 while the daemon runs */
    int port;                /* the API port from the ready file */
    bool tls;                /* "tls" from the ready file */
    json_t *ready;           /* the ready file's JSON, or NULL */
    int exit_status;         /* after it exited: exit code, or 128 + signal; -1 unknown */
    int n_launches;          /* how many times e2e_launch ran */
    bool passed;             /* set by e2e_pass */
    bool listen_from_config; /* opts.listen_from_config */

    /* private */
    char **argv_set;   /* --set values, NULL-terminated */
    char **argv_extra; /* extra args, NULL-terminated */
    char **env_extra;  /* extra env, NULL-terminated */
    char *modules;
    int ready_timeout_ms;
    int http_timeout_ms;
};

/* Results of e2e_launch. */
#define E2E_READY 0
#define E2E_ERROR (-1) /* the harness could not run it (message on stderr) */
#define E2E_EXITED 1   /* the daemon exited before it was ready: see exit_status */
#define E2E_TIMEOUT 2  /* not ready in time: the daemon was killed */

/* Makes the temporary directory, etc copy and admin token; does not start
   anything. opts may be NULL; everything in it is copied. NULL on failure. */
struct e2e_daemon *e2e_new(const struct e2e_opts *opts);
/* Starts the daemon (again) on d's directory and waits until it is ready
   (E2E_READY), exits (E2E_EXITED, d->exit_status set, no ready file is a
   must: the caller checks), or the ready timeout passes (E2E_TIMEOUT). A
   stale ready file is removed first. */
int e2e_launch(struct e2e_daemon *d);
/* e2e_new + e2e_launch; on failure prints why and the log, frees, NULL. */
struct e2e_daemon *e2e_start(const struct e2e_opts *opts);
/* Replaces --modules for the following launches (NULL: the config's). */
int e2e_set_modules(struct e2e_daemon *d, const char *modules);
/* Adds a --set "section.key=value" for the following launches. */
int e2e_add_set(struct e2e_daemon *d, const char *kv);
/* SIGTERM, then waits 10 s for the exit. 0 iff it exited with status 0;
   otherwise -1 (killed if still running) after printing the log. A daemon
   that is not running returns 0 if its last exit status was 0. */
int e2e_stop(struct e2e_daemon *d);
/* SIGKILL and reap. */
void e2e_kill9(struct e2e_daemon *d);
/* Stops (e2e_stop, must succeed) when running, then e2e_launch again on the
   same state directory. Returns what e2e_launch returns (E2E_ERROR if the
   stop failed). */
int e2e_restart(struct e2e_daemon *d);
/* Sends sig to the daemon; -1 if not running. */
int e2e_signal(struct e2e_daemon *d, int sig);
/* Waits up to timeout_ms for the daemon to exit; its status, or -1 on timeout
   (the daemon keeps running). */
int e2e_wait_exit(struct e2e_daemon *d, int timeout_ms);
/* Marks the test as passed: e2e_free will not print the log. */
void e2e_pass(struct e2e_daemon *d);
/* Kills the daemon if it still runs (printing the log), prints the log unless
   passed, removes the directory (kept with E2E_KEEP=1). NULL-safe. */
void e2e_free(struct e2e_daemon *d);

/* A fresh random token in the daemon's format: "rd_" + 43 base64url
   characters, into out[64]. 0 or -1. */
int e2e_make_token(char out[64]);

/* Trees and programs (borrowed, static storage). */
const char *e2e_srcdir(void);
const char *e2e_builddir(void);
const char *e2e_relengd_path(void); /* <builddir>/core/relengd */
const char *e2e_module_path(void);  /* "<builddir>/modules/.libs:<builddir>/tests/modules/.libs" */

/* ------------------------------------------------------------------ log */

/* The daemon's log so far (malloc'd, NUL-terminated; "" if none). */
char *e2e_log_text(struct e2e_daemon *d);
/* The log's current size: pass it to e2e_log_contains_from to look only at
   what came after. */
size_t e2e_log_size(struct e2e_daemon *d);
bool e2e_log_contains(struct e2e_daemon *d, const char *needle);
bool e2e_log_contains_from(struct e2e_daemon *d, size_t offset, const char *needle);
/* Polls the log (from offset) until needle appears or timeout_ms passes. */
bool e2e_wait_log(struct e2e_daemon *d, size_t offset, const char *needle, int timeout_ms);
/* Prints the log on stderr between markers. */
void e2e_log_dump(struct e2e_daemon *d);

/* ----------------------------------------------------------------- HTTP */

struct e2e_resp {
    int status; /* HTTP status, or -1 on a transport error */
    char *body; /* NUL-terminated (may hold other NULs: see body_len) */
    size_t body_len;
    json_t *json;    /* body parsed as JSON, or NULL */
    json_t *headers; /* object: lowercase name -> value (the last one wins) */
    char error[256]; /* the libcurl error on a transport error; "" when the
                        exchange completed. status may still be set when the
                        transfer failed after the status line (a 413 that
                        closes before the upload ends, a daemon killed
                        mid-reply) */
};

/* One request to d's API port. path is sent as is (no dot-segment removal),
   e.g. "/api/v1/status?x=1". token NULL: no Authorization header; else
   "Authorization: Bearer <token>". headers: NULL-terminated "Name: value"
   lines, may be NULL. body may be NULL. Returns r->status. Timeout 10 s. */
int e2e_request(struct e2e_daemon *d, const char *method, const char *path, const char *token,
                const char *const *headers, const void *body, size_t body_len, struct e2e_resp *r);
int e2e_get(struct e2e_daemon *d, const char *path, const char *token, struct e2e_resp *r);
/* POST with Content-Type: application/json; json_text may be NULL (empty body). */
int e2e_post(struct e2e_daemon *d, const char *path, const char *token, const char *json_text,
             struct e2e_resp *r);
int e2e_delete(struct e2e_daemon *d, const char *path, const char *token, struct e2e_resp *r);
/* The per-request timeout of the HTTP helpers for d (default 10000 ms). */
void e2e_set_http_timeout(struct e2e_daemon *d, int timeout_ms);
/* A response header (name case-insensitive), borrowed from r; NULL if absent. */
const char *e2e_header(const struct e2e_resp *r, const char *name);
/* error.code / error.message of a JSON error body, borrowed; NULL if none. */
const char *e2e_error_code(const struct e2e_resp *r);
const char *e2e_error_message(const struct e2e_resp *r);
/* A string member of the JSON body ("token", "id"), borrowed; NULL if none. */
const char *e2e_json_str(const struct e2e_resp *r, const char *key);
void e2e_resp_free(struct e2e_resp *r);

/* POST /api/v1/tokens as admin: {"name":name,"scopes":<scopes_json>} plus
   "expires_in":<expires_in_json> when not NULL (e.g. "2" or "\"2s\"").
   On 201 copies the secret into token[64] and the id into id[64] (either
   may be NULL) and returns 0; else prints the reply and returns the status. */
int e2e_token_create(struct e2e_daemon *d, const char *name, const char *scopes_json,
                     const char *expires_in_json, char *token, char *id);

/* Sends raw bytes to 127.0.0.1:<api port> over plain TCP (even if the port
   speaks TLS) and reads the reply until the peer closes, max_reply bytes or
   timeout_ms pass. *reply is malloc'd and NUL-terminated. Returns the number
   of bytes read, or -1 if the connection failed. */
long e2e_raw(struct e2e_daemon *d, const char *request, size_t len, int timeout_ms,
             size_t max_reply, char **reply);

/* ---------------------------------------------------------------- metrics */

/* The value of a Prometheus series from GET /metrics: "name" or
   "name{k=\"v\",k2=\"v2\"}" (labels may be given in any order and are a
   subset: the values of every series carrying them are summed). NAN if no
   series matches or /metrics fails. */
double e2e_metric(struct e2e_daemon *d, const char *series);
/* The same on a /metrics text the caller fetched. */
double e2e_metric_in(const char *text, const char *series);

/* ------------------------------------------------------------------ SSE */

struct e2e_sse;

/* Opens GET path (e.g. "/api/v1/events?type=example") with Accept:
   text/event-stream and, if last_event_id is not NULL, Last-Event-ID, on a
   thread of its own; the stream is cut after timeout_ms at the latest.
   NULL only if the thread could not start. */
struct e2e_sse *e2e_sse_open(struct e2e_daemon *d, const char *path, const char *token,
                             const char *last_event_id, int timeout_ms);
/* Waits until the response headers arrived (true) or timeout_ms / the end. */
bool e2e_sse_wait_open(struct e2e_sse *s, int timeout_ms);
/* Waits until n data frames arrived, the stream ended or timeout_ms passed;
   returns how many data frames there are. */
size_t e2e_sse_wait(struct e2e_sse *s, size_t n, int timeout_ms);
/* A snapshot (new reference):
   {"status":200, "content_type":"text/event-stream", "retry":2000 or null,
    "frames":[{"id":"7" or null, "event":null or "name", "data":"raw text"}],
    "events":[<each frame's data parsed as JSON, in order>],
    "ended":bool, "error":"curl message" or null}
   Comment lines (": ping") are skipped; a frame with only "retry:" sets
   "retry" and is not a data frame. */
json_t *e2e_sse_snapshot(struct e2e_sse *s);
/* Stops the stream (at once) and frees. NULL-safe. */
void e2e_sse_close(struct e2e_sse *s);
/* open + wait for n events (or timeout_ms) + snapshot + close. */
json_t *e2e_sse_collect(struct e2e_daemon *d, const char *path, const char *token,
                        const char *last_event_id, size_t n, int timeout_ms);

/* ------------------------------------------------------- files, processes */

/* A self-signed certificate for CN=localhost with subjectAltName
   IP:127.0.0.1 and DNS:localhost (EC P-256, 1 day), written with its private
   key into one PEM file (mode 0600). 0 or -1. */
int e2e_make_cert(const char *pem_path);

int e2e_write_file(const char *path, const void *data, size_t len);
/* malloc'd, NUL-terminated, or NULL; len may be NULL. */
char *e2e_read_file(const char *path, size_t *len);
/* cp -R src dst (dst is created). 0 or -1. */
int e2e_copy_tree(const char *src, const char *dst);
/* rm -rf. */
int e2e_remove_tree(const char *path);
/* Appends text to a file (creating it). */
int e2e_append_file(const char *path, const char *text);

struct e2e_exec {
    int status; /* exit code, 128 + signal, or -1 on timeout (killed) / failure */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr, NUL-terminated */
};
/* Runs argv[0] (a path) with argv, env = the test's environment minus every
   RELENGD_* variable, plus env ("NAME=value"; "NAME" alone unsets), stdin
   from stdin_text (or /dev/null), bounded by timeout_ms. Returns r->status. */
int e2e_exec(const char *const *argv, const char *const *env, const char *stdin_text,
             int timeout_ms, struct e2e_exec *r);
void e2e_exec_free(struct e2e_exec *r);

/* A monotonic clock and a short sleep, for bounded polls. */
uint64_t e2e_now_ms(void);
void e2e_sleep_ms(int ms);

/* cmocka fixtures shared by the e2e programs. The prestate is the struct
   e2e_opts for the test (NULL: defaults). e2e_setup starts a daemon;
   e2e_setup_new only makes its directory (the test prepares files, then
   e2e_launch); e2e_teardown requires a daemon still running to stop cleanly
   (SIGTERM, exit 0 within 10 s) and frees it. */
int e2e_setup(void **state);
int e2e_setup_new(void **state);
int e2e_teardown(void **state);

#ifdef __cplusplus
}
#endif
#endif /* RELENGD_E2E_HARNESS_H */
