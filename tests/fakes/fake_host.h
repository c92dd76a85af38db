/* SPDX-License-Identifier: MIT */
/*
 * tests/fakes/fake_host.h -- a deterministic struct rd_host_api for unit
 * tests of modules (the collectd mock-host idea). What is real and what is
 * faked:
 *
 *   real   configuration: the INI text is written to <dir>/<name>.conf, read
 *          with cfg_file_load and applied with cfg_apply, exactly as the
 *          daemon does (main section = keys before any [header] or [<name>];
 *          relative PATH values under the module's state directory).
 *   real   the store: SQLite through core/store.c on <dir>/relengd.db, so
 *          migrations, core tables, events (core_events, via core/bus.c) and
 *          transactions behave as in the daemon.
 *   faked  everything that would need threads or a clock: rd_submit runs
 *          work inline and queues done; rd_defer queues; events committed by
 *          a transaction are recorded at once and their fan-out to
 *          subscribers is queued. fake_host_run_pending runs the queue.
 *          Timers follow a manual clock (fake_host_advance).
 *   faked  HTTP: routes are called directly by fake_host_call, with path
 *          parameters, query, JSON body and the daemon's scope rules; replies
 *          are recorded in a struct fake_resp.
 *   faked  metrics (kept in a table, read with fake_host_metric), logs
 *          (recorded, queried with fake_host_logged; printed to stderr too
 *          when FAKE_HOST_VERBOSE is set), rd_fetch (RD_EUNAVAIL unless a
 *          handler is installed), tokens for rd_auth_check. The core's own log
          lines (store, bus) are shown from WARN up, or all of them with
          FAKE_HOST_VERBOSE.
 *
 * Failure injection: every host entry point that can fail counts as one
 * call (metric, config_load, config_sections, store_migrate, store_read,
 * store_write, tx_publish, publish, subscribe, route, submit, defer,
 * timer_every, timer_after, fetch, service_provide, service_get, ready_port).
 * fake_host_fail_call(fh, n, rc) makes the n-th such call (counted from
 * fake_host_new, 1-based) fail with rc -- or return NULL for the entries that
 * return pointers -- without doing anything else (a stolen json_t is still
 * released, a CURL handle still cleaned up).
 *
 * Life cycle, mirroring the daemon's loader:
 *   fake_host_load: checks the descriptor (abi, size, build == RD_BUILD,
 *     name, init/start/stop/destroy present, OpenAPI fragment parses to
 *     {"paths":{...}}), runs init, refuses a setting of the file that init
 *     did not read (RD_EINVAL), checks desc->needs against services
 *     provided with fake_host_provide, then runs start. If init fails, the host
 *     drops whatever init registered and runs pending work. If start fails,
 *     the host drops the registrations, runs pending work, then calls
 *     destroy (stop is not called). Either way the error is returned and
 *     fake_host_free then has nothing left to do but free.
 *   fake_host_free: stop, run pending, drop routes/subscriptions/timers,
 *     run pending again (so work items can free their argument), destroy,
 *     drop services, close the store, remove a temporary directory, free.
 *
 * Threads: none. Everything runs on the calling thread; the fake is not
 * thread-safe and a test must not call it from more than one thread.
 */
#ifndef RELENGD_FAKE_HOST_H
#define RELENGD_FAKE_HOST_H

#include "core/module.h"

struct fake_host;

/* What a handler replied. body: the JSON sent (rd_reply_json/rd_reply_error,
   or a raw reply that parses as JSON), else NULL. raw: the bytes sent,
   NUL-terminated (raw_len without the NUL). headers: the extra_headers of
   rd_reply_start, or NULL. All owned by the struct: fake_resp_free. status is
   0 when the request never got a reply (a bug the fake also logs). */
struct fake_resp {
    int status;
    json_t *body;
    char *raw;
    size_t raw_len;
    char *content_type;
    char *headers;
};

/* A new host for module_name with config_text as the module's INI file
   (NULL: no file), in a new temporary directory that fake_host_free removes.
   NULL on failure (a syntax error in config_text included; the reason is
   printed on stderr). */
struct fake_host *fake_host_new(const char *module_name, const char *config_text);
/* The same in an existing directory dir, which is kept: the database is
   <dir>/relengd.db, the state directory <dir>/<module_name>. A second host
   on the same dir sees what the first stored (restart tests). */
struct fake_host *fake_host_new_in(const char *module_name, const char *config_text,
                                   const char *dir);
/* The directory of fh (borrowed, valid until fake_host_free). */
const char *fake_host_dir(struct fake_host *fh);

/* Checks desc, then init and start (see the life cycle above). RD_OK, or
   the error of the check (RD_EINVAL, RD_EUNAVAIL for a missing need) or of
   init/start. A host loads one module once: RD_ECONFLICT after that. */
int fake_host_load(struct fake_host *fh, const struct rd_module *desc);
/* Stops and destroys the module (if loaded) and frees everything. NULL-safe. */
void fake_host_free(struct fake_host *fh);

/* The handle the module got, to call rd_* functions from a test; the
   module's state (what init returned, NULL before or after a failed load). */
struct rd_host *fake_host_handle(struct fake_host *fh);
void *fake_host_mod(struct fake_host *fh);
/* desc->status(mod) (a new reference), or NULL if there is none. */
json_t *fake_host_status(struct fake_host *fh);

/* ------------------------------------------------------------------ HTTP
 * fake_host_call: method, the full path with query ("/api/v1/example/notes?
 * limit=2"), a JSON body (text, NULL: none) and the caller's scopes: NULL is
 * an anonymous caller; else a comma- or space-separated list such as "admin"
 * or "example:write,graph:*" held by a token named "test".
 *
 * As core/http.c: 404 not_found (no route), 405 method_not_allowed with
 * "Allow: ..." in resp.headers, HEAD matches GET; then 401 unauthorized for
 * an anonymous caller on a route with a scope, or on a route without one
 * unless the method is GET/HEAD and anonymous reads are on; 403
 * insufficient_scope when the scopes lack the route's ("admin" grants
 * everything, "x:*" every scope starting "x:"); the body is read for POST,
 * PUT, PATCH and DELETE only: 413 too_large over 1 MiB, 400 bad_request when
 * it is not JSON (duplicate keys included). A handler that returns an error
 * without replying gets the status and code core/err.c gives it; one that
 * returns RD_OK without replying gets 500 internal_error. */
struct fake_resp fake_host_call(struct fake_host *fh, const char *method, const char *path,
                                const char *body_json, const char *scopes);

/* The general form: any body bytes (not parsed for RD_ROUTE_RAW routes) and
   request headers as "Name: value" lines separated by "\n" or "\r\n". */
struct fake_call {
    const char *method;
    const char *path;
    const void *body; /* NULL: no body */
    size_t body_len;
    const char *headers; /* NULL: none */
    const char *scopes;  /* as for fake_host_call */
};
struct fake_resp fake_host_request(struct fake_host *fh, const struct fake_call *c);
void fake_resp_free(struct fake_resp *r);

/* Anonymous reads (routes without a scope); on by default as in etc/. */
void fake_host_set_anonymous_read(struct fake_host *fh, bool on);
/* Registers token for rd_auth_check with scopes (as for fake_host_call).
   RD_OK or RD_ENOMEM. */
int fake_host_add_token(struct fake_host *fh, const char *token, const char *scopes);

/* ------------------------------------------------------- loop and clock */

/* Runs the queue -- rd_submit done callbacks, rd_defer callbacks, event
   fan-out to subscribers, fetch done callbacks -- in the order queued, and
   whatever those queue in turn, until it is empty. Returns how many ran. */
size_t fake_host_run_pending(struct fake_host *fh);
/* Moves the manual clock (rd_now_ms) forward by ms, firing due timers in
   order of due time (then of creation), each with the clock set to its due
   time. Work the timers queue is left for fake_host_run_pending. */
void fake_host_advance(struct fake_host *fh, uint64_t ms);
/* The manual clock; it starts at FAKE_HOST_EPOCH_MS. */
#define FAKE_HOST_EPOCH_MS UINT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
uint64_t fake_host_now(struct fake_host *fh);
/* Live timers (not cancelled, and for one-shot timers not fired yet). */
size_t fake_host_n_timers(struct fake_host *fh);

/* --------------------------------------------------------------- events
 * Events committed so far, in commit (id) order, whoever published them.
 * type NULL matches every type. */
size_t fake_host_n_events(struct fake_host *fh, const char *type);
/* The data of the nth (0-based) event of type; borrowed until
   fake_host_free. NULL if there is no such event. */
const json_t *fake_host_event(struct fake_host *fh, const char *type, size_t nth);
/* The whole envelope {"id","type","time","source","data"}; same rules. */
const json_t *fake_host_envelope(struct fake_host *fh, const char *type, size_t nth);

/* ------------------------------------------------------ logs and metrics */

/* Whether a line at exactly level lv containing substring was logged. */
bool fake_host_logged(struct fake_host *fh, enum rd_level lv, const char *substring);
/* A counter's or gauge's value, a histogram's count of observations; NAN if
   no metric name+tags (tags as given to rd_metric, NULL for none) exists. */
double fake_host_metric(struct fake_host *fh, const char *name, const char *tags);

/* ---------------------------------------------------- failure injection */

/* The n-th (1-based) failable host call fails with rc (a negative rd_err).
   Several calls may be set; setting n again replaces its rc. */
void fake_host_fail_call(struct fake_host *fh, unsigned n, int rc);
/* Disarms every injection not hit yet (one set past the last call a run
   made would otherwise fail a later call). */
void fake_host_fail_clear(struct fake_host *fh);
/* Failable host calls made so far. */
unsigned fake_host_calls(struct fake_host *fh);

/* ---------------------------------------------- services, fetch, ports */

/* Provides a service as another module would (for desc->needs and
   rd_service_get). RD_ECONFLICT if name is provided already. */
int fake_host_provide(struct fake_host *fh, const char *name, uint32_t ver, const void *vtable);
/* rd_fetch handler: runs the transfer inline (it may call
   curl_easy_perform(easy) on a file:// URL, or fill the module's buffers
   itself) and returns the result handed to the module's done, which is
   queued. Without a handler rd_fetch fails with RD_EUNAVAIL. */
typedef CURLcode (*fake_fetch_fn)(void *arg, CURL *easy);
void fake_host_set_fetch(struct fake_host *fh, fake_fetch_fn fn, void *arg);
/* The port a module announced with rd_ready_port, or -1. */
int fake_host_ready_port(struct fake_host *fh, const char *name);

#endif
