/* SPDX-License-Identifier: MIT */
/*
 * core/module.h -- the host API: the one core header a relengd module may include.
 *
 * A module is a shared object exporting rd_module_entry(), which returns a
 * struct rd_module. The host hands the module a struct rd_host; every host
 * function below is a static inline wrapper over a function pointer in
 * struct rd_host_api, so a module links nothing from the daemon and a unit
 * test can swap in a fake table (tests/fakes/fake_host.h).
 *
 * Compatibility: struct rd_host_api starts with abi and size and only grows
 * at its end. RD_MODULE_ABI changes on any incompatible change.
 *
 * Threads. Route handlers run on HTTP worker threads: they may use the store
 * and block on their own I/O, but must not wait for the event loop. Bus
 * callbacks, timers, rd_defer and rd_submit "done" callbacks, and fetch
 * callbacks run on the loop thread and must not block; slow work goes
 * through rd_submit. Each function says which threads may call it.
 *
 * Ownership. One json_t rule: every host function that takes a json_t *
 * steals it, even on failure. Every callback receives a const json_t *
 * borrowed for the duration of the call. A json_t * returned by a module
 * callback is a new reference. Strings the host returns are borrowed; the
 * comment says until when.
 *
 * Errors. Functions return RD_OK (0) or a negative enum rd_err.
 */
#ifndef RELENGD_MODULE_H
#define RELENGD_MODULE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RD_MODULE_ABI 1 /* bump on any incompatible change */

#define RD_PUBLIC __attribute__((visibility("default")))
#define RD_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))

/* ---------------------------------------------------------------- errors */

enum rd_err {
    RD_OK = 0,
    RD_ENOMEM = -1,    /* out of memory */
    RD_EINVAL = -2,    /* bad argument or bad input */
    RD_ENOTFOUND = -3, /* no such thing */
    RD_ECONFLICT = -4, /* state does not allow it */
    RD_ETOOBIG = -5,   /* over a size limit */
    RD_ECORRUPT = -6,  /* data fails its own checks */
    RD_EIO = -7,       /* file system or database failure */
    RD_ETIMEDOUT = -8, /* took too long */
    RD_EUNAVAIL = -9,  /* a dependency is not there (yet) */
    RD_EPERM = -10,    /* not allowed */
    RD_EAUTH = -11,    /* no credentials, or bad or expired ones */
};

/* Detail for users: the code plus a sentence that names the problem. */
struct rd_error {
    int code;
    char msg[256];
};

/* Sets err (NULL-safe) and returns code, so that `return rd_error_set(...)` works.
   Implemented inline so modules and libraries need no host call for it. */
static inline int rd_error_set(struct rd_error *err, int code, const char *fmt, ...)
    RD_PRINTF(3, 4);
static inline int rd_error_set(struct rd_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ------------------------------------------------------ opaque handles
 * Every handle the host gives out starts with the API table, so that the
 * inline wrappers can reach the host from any handle. Never look inside. */
struct rd_host_api;
struct rd_host {
    const struct rd_host_api *api;
};
struct rd_req {
    const struct rd_host_api *api;
};
struct rd_tx {
    const struct rd_host_api *api;
};
struct rd_timer {
    const struct rd_host_api *api;
};
struct rd_metric {
    const struct rd_host_api *api;
};

enum rd_level { RD_DEBUG = 0, RD_INFO = 1, RD_WARN = 2, RD_ERROR = 3 };

/* Counters only go up; gauges are set; histograms observe values (use seconds
   and a name ending in _seconds for durations; StatsD gets milliseconds). */
enum rd_metric_kind { RD_COUNTER = 0, RD_GAUGE = 1, RD_HISTOGRAM = 2 };

/* --------------------------------------------------------- configuration
 * A module describes its keys in a table; the host parses the module's INI
 * file (etc/modules.d/<name>.conf), applies defaults, and rejects unknown
 * keys and bad values with file:line. Strings are owned by the host and stay
 * valid until after destroy. PATH values that are relative are taken
 * relative to the module's state directory. */
enum rd_cfg_type {
    RD_CFG_T_END = 0,
    RD_CFG_T_STRING,   /* const char *           */
    RD_CFG_T_PATH,     /* const char *, absolute */
    RD_CFG_T_INT,      /* int64_t                */
    RD_CFG_T_BOOL,     /* bool: yes/no/true/false/on/off/1/0 */
    RD_CFG_T_SIZE,     /* uint64_t bytes: 512, 64KiB, 10MiB, 20GiB, 1MB */
    RD_CFG_T_DURATION, /* uint64_t ms: 250ms, 30s, 5m, 2h, 7d */
    RD_CFG_T_DOUBLE,   /* double                 */
};

struct rd_cfg_key {
    const char *name;
    enum rd_cfg_type type;
    size_t offset;   /* of the field in the module's conf struct */
    const char *def; /* default as text, parsed like a value; NULL: none (string NULL / 0) */
    const char *doc; /* one line, shown in samples and --help-config */
};

#define RD_CFG_KEY_(n, t, T, f, d, doc)                                                            \
    {                                                                                              \
        (n), (t), offsetof(T, f), (d), (doc)                                                       \
    }
#define RD_CFG_STRING(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_STRING, T, f, d, doc)
#define RD_CFG_PATH(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_PATH, T, f, d, doc)
#define RD_CFG_INT(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_INT, T, f, d, doc)
#define RD_CFG_BOOL(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_BOOL, T, f, d, doc)
#define RD_CFG_SIZE(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_SIZE, T, f, d, doc)
#define RD_CFG_DURATION(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_DURATION, T, f, d, doc)
#define RD_CFG_DOUBLE(n, T, f, d, doc) RD_CFG_KEY_(n, RD_CFG_T_DOUBLE, T, f, d, doc)
#define RD_CFG_END                                                                                 \
    {                                                                                              \
        NULL, RD_CFG_T_END, 0, NULL, NULL                                                          \
    }

/* ------------------------------------------------------ callback types */
typedef int (*rd_tx_fn)(struct rd_tx *tx, void *arg);
typedef void (*rd_event_fn)(void *arg, uint64_t id, const char *type, const json_t *data);
typedef int (*rd_route_fn)(struct rd_req *r, void *arg);
typedef void (*rd_work_fn)(void *arg);
typedef void (*rd_done_fn)(void *arg);
typedef void (*rd_timer_fn)(void *arg);
typedef void (*rd_fetch_done_fn)(void *arg, CURL *easy, CURLcode result);
typedef int (*rd_section_fn)(const char *section, void *arg);

/* Route flags. By default the host reads the body (up to http.max_body, else
   413), parses it as JSON (else 400) before the handler runs. */
#define RD_ROUTE_RAW 0x1u /* body left unread: the handler uses rd_req_read */

/* ------------------------------------------------------ the module side */
struct rd_module {
    uint32_t abi, size;       /* RD_MODULE_ABI, sizeof(struct rd_module) */
    const char *name;         /* "proxy": config file, log prefix, tables, routes */
    const char *version;      /* the module's own version */
    const char *build;        /* RD_BUILD of the tree it was built in; must equal the host's */
    const char *const *needs; /* services needed before start, NULL-terminated; may be NULL */
    const char *openapi;      /* JSON {"paths":{...}} relative to /api/v1/<name>; may be NULL */
    const struct rd_cfg_key *keys; /* main-section keys (for samples and checks); may be NULL */
    int (*init)(struct rd_host *h, void **mod); /* config, migrations, allocation; no I/O */
    int (*start)(void *mod);                    /* routes, subscriptions, timers go live */
    void (*stop)(void *mod);                    /* stop taking work; in-flight work may finish */
    void (*destroy)(void *mod);                 /* free everything; registrations are gone */
    json_t *(*status)(void *mod);               /* optional; new reference; runs on an HTTP
                                                   thread, so it must be thread-safe */
    int (*reload)(void *mod);                   /* optional; SIGHUP, loop thread: re-read config */
};

#define RD_MODULE_EXPORT(desc)                                                                     \
    RD_PUBLIC const struct rd_module *rd_module_entry(void);                                       \
    RD_PUBLIC const struct rd_module *rd_module_entry(void)                                        \
    {                                                                                              \
        return &(desc);                                                                            \
    }

/* ------------------------------------------------------ the host side */
struct rd_host_api {
    uint32_t abi, size;

    /* logging and metrics */
    void (*logv)(struct rd_host *h, enum rd_level lv, const char *fmt, va_list ap);
    struct rd_metric *(*metric)(struct rd_host *h, enum rd_metric_kind k, const char *name,
                                const char *help, const char *tags);
    void (*metric_add)(struct rd_metric *m, double v);
    void (*metric_set)(struct rd_metric *m, double v);
    void (*metric_observe)(struct rd_metric *m, double v);

    /* configuration */
    int (*config_load)(struct rd_host *h, const char *section, const struct rd_cfg_key *keys,
                       void *conf, struct rd_error *err);
    int (*config_sections)(struct rd_host *h, const char *prefix, rd_section_fn fn, void *arg);

    /* store and events */
    int (*store_migrate)(struct rd_host *h, const char *const *steps, struct rd_error *err);
    int (*store_read)(struct rd_host *h, rd_tx_fn fn, void *arg);
    int (*store_write)(struct rd_host *h, rd_tx_fn fn, void *arg);
    sqlite3 *(*tx_db)(struct rd_tx *tx);
    int (*tx_publish)(struct rd_tx *tx, const char *type, json_t *data);
    int (*publish)(struct rd_host *h, const char *type, json_t *data);
    int (*subscribe)(struct rd_host *h, const char *pattern, rd_event_fn fn, void *arg);

    /* HTTP */
    int (*route)(struct rd_host *h, const char *method, const char *path, const char *scope,
                 unsigned flags, rd_route_fn fn, void *arg);
    const char *(*req_method)(struct rd_req *r);
    const char *(*req_path)(struct rd_req *r);
    const char *(*req_param)(struct rd_req *r, const char *name);
    const char *(*req_header)(struct rd_req *r, const char *name);
    const json_t *(*req_body)(struct rd_req *r);
    int64_t (*req_content_length)(struct rd_req *r);
    int64_t (*req_read)(struct rd_req *r, void *buf, size_t len);
    bool (*req_has_scope)(struct rd_req *r, const char *scope);
    const char *(*req_principal)(struct rd_req *r);
    int (*reply_json)(struct rd_req *r, int status, json_t *body);
    int (*reply_errorv)(struct rd_req *r, int status, const char *code, const char *fmt,
                        va_list ap);
    int (*reply_start)(struct rd_req *r, int status, const char *content_type,
                       const char *extra_headers, int64_t length);
    int (*reply_write)(struct rd_req *r, const void *data, size_t len);
    int (*reply_file)(struct rd_req *r, const char *path, const char *content_type);
    int (*auth_check)(struct rd_host *h, const char *token, const char *scope);

    /* threads, loop, timers, fetches */
    int (*submit)(struct rd_host *h, rd_work_fn work, rd_done_fn done, void *arg);
    int (*defer)(struct rd_host *h, rd_done_fn fn, void *arg);
    struct rd_timer *(*timer_every)(struct rd_host *h, uint64_t ms, rd_timer_fn fn, void *arg);
    struct rd_timer *(*timer_after)(struct rd_host *h, uint64_t ms, rd_timer_fn fn, void *arg);
    void (*timer_cancel)(struct rd_timer *t);
    int (*fetch)(struct rd_host *h, CURL *easy, rd_fetch_done_fn done, void *arg);
    struct event_base *(*event_base)(struct rd_host *h);
    uint64_t (*now_ms)(struct rd_host *h);

    /* services and process */
    int (*service_provide)(struct rd_host *h, const char *name, uint32_t ver, const void *vtable);
    const void *(*service_get)(struct rd_host *h, const char *name, uint32_t min_ver);
    const char *(*state_dir)(struct rd_host *h);
    const char *(*module_name)(struct rd_host *h);
    bool (*stopping)(struct rd_host *h);
    int (*ready_port)(struct rd_host *h, const char *name, int port);
    /* new entries go here, at the end, and only here */
};

/* True when the host's table has entry `fn` (for entries added after ABI 1). */
#define RD_API_HAS(api, fn) ((api)->size >= offsetof(struct rd_host_api, fn) + sizeof((api)->fn))

/* ---- logging: any thread. No trailing newline; the host adds time, level,
   [module]. The level is checked before formatting. Never log secrets. */
static inline void rd_log(struct rd_host *h, enum rd_level lv, const char *fmt, ...)
    RD_PRINTF(3, 4);
static inline void rd_log(struct rd_host *h, enum rd_level lv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    h->api->logv(h, lv, fmt, ap);
    va_end(ap);
}

/* ---- metrics. rd_metric: init/start (loop thread); returns a handle owned by
   the host, valid until after destroy, or NULL on bad arguments. name is
   "<module>.<thing>" style without the module prefix ("requests" in module
   proxy becomes relengd_proxy_requests_total); tags "k=v,k=v" or NULL; the
   same name+tags returns the same handle. add/set/observe: any thread. */
static inline struct rd_metric *rd_metric(struct rd_host *h, enum rd_metric_kind k,
                                          const char *name, const char *help, const char *tags)
{
    return h->api->metric(h, k, name, help, tags);
}
static inline void rd_metric_add(struct rd_metric *m, double v)
{
    if (m)
        m->api->metric_add(m, v);
}
static inline void rd_metric_set(struct rd_metric *m, double v)
{
    if (m)
        m->api->metric_set(m, v);
}
static inline void rd_metric_observe(struct rd_metric *m, double v)
{
    if (m)
        m->api->metric_observe(m, v);
}

/* ---- configuration: init (and reload). section NULL is the module's main
   section (keys before any [header], or [<name>]); otherwise a named section
   such as "backend.hg". Errors name file:line. */
static inline int rd_config_load(struct rd_host *h, const char *section,
                                 const struct rd_cfg_key *keys, void *conf, struct rd_error *err)
{
    return h->api->config_load(h, section, keys, conf, err);
}
/* Calls fn for each section of the module's file whose name starts with
   prefix ("backend."), in file order; stops at the first non-zero return. */
static inline int rd_config_sections(struct rd_host *h, const char *prefix, rd_section_fn fn,
                                     void *arg)
{
    return h->api->config_sections(h, prefix, fn, arg);
}

/* ---- store. rd_store_migrate: init only; step i brings the module's tables
   from version i to i+1; pending steps run in one transaction; err says
   which step failed. Tables must be named <module>_*. */
static inline int rd_store_migrate(struct rd_host *h, const char *const *steps,
                                   struct rd_error *err)
{
    return h->api->store_migrate(h, steps, err);
}
/* Any thread except from inside another transaction. read: a snapshot.
   write: BEGIN IMMEDIATE .. COMMIT, rolled back if fn returns non-zero; the
   result is fn's return value, or RD_EIO if the commit failed. */
static inline int rd_store_read(struct rd_host *h, rd_tx_fn fn, void *arg)
{
    return h->api->store_read(h, fn, arg);
}
static inline int rd_store_write(struct rd_host *h, rd_tx_fn fn, void *arg)
{
    return h->api->store_write(h, fn, arg);
}
/* The connection, borrowed for the callback only: never keep it. */
static inline sqlite3 *rd_tx_db(struct rd_tx *tx)
{
    return tx->api->tx_db(tx);
}
/* Stores an event with the transaction (write transactions only); it is
   fanned out to subscribers, SSE and webhooks only after COMMIT. Steals data
   (a JSON object). type is "<domain>.<past-tense>". */
static inline int rd_tx_publish(struct rd_tx *tx, const char *type, json_t *data)
{
    return tx->api->tx_publish(tx, type, data);
}
/* rd_tx_publish in a transaction of its own. Any thread. Steals data. */
static inline int rd_publish(struct rd_host *h, const char *type, json_t *data)
{
    return h->api->publish(h, type, data);
}
/* init/start. fn runs on the loop thread for each committed event whose type
   matches pattern: "*" all; "task" matches "task" and "task.*"; "task.res*"
   is a prefix. data is borrowed for the call. */
static inline int rd_subscribe(struct rd_host *h, const char *pattern, rd_event_fn fn, void *arg)
{
    return h->api->subscribe(h, pattern, fn, arg);
}

/* ---- HTTP. rd_route: init/start. path is relative to /api/v1/<module>, with
   {name} segments ("/tasks/{id}"); "" is /api/v1/<module> itself. scope NULL:
   a read, anonymous when auth.anonymous_read is on; else the token needs the
   scope (admin and wildcards such as "graph:*" match). */
static inline int rd_route(struct rd_host *h, const char *method, const char *path,
                           const char *scope, rd_route_fn fn, void *arg)
{
    return h->api->route(h, method, path, scope, 0, fn, arg);
}
static inline int rd_route_flags(struct rd_host *h, const char *method, const char *path,
                                 const char *scope, unsigned flags, rd_route_fn fn, void *arg)
{
    return h->api->route(h, method, path, scope, flags, fn, arg);
}
/* Request accessors: the handler's thread, borrowed until the handler returns. */
static inline const char *rd_req_method(struct rd_req *r)
{
    return r->api->req_method(r);
}
static inline const char *rd_req_path(struct rd_req *r)
{
    return r->api->req_path(r);
}
/* A {name} path segment, else a query parameter (URL-decoded); NULL if absent. */
static inline const char *rd_req_param(struct rd_req *r, const char *name)
{
    return r->api->req_param(r, name);
}
static inline const char *rd_req_header(struct rd_req *r, const char *name)
{
    return r->api->req_header(r, name);
}
/* The parsed JSON body, or NULL when the request had none (or RD_ROUTE_RAW). */
static inline const json_t *rd_req_body(struct rd_req *r)
{
    return r->api->req_body(r);
}
/* Content-Length, or -1 when unknown (chunked). */
static inline int64_t rd_req_content_length(struct rd_req *r)
{
    return r->api->req_content_length(r);
}
/* RD_ROUTE_RAW only: reads up to len body bytes; 0 at the end, < 0 on error. */
static inline int64_t rd_req_read(struct rd_req *r, void *buf, size_t len)
{
    return r->api->req_read(r, buf, len);
}
/* Whether the caller's token grants scope (for scopes that depend on the
   body, e.g. "signing:sign:KEY"). */
static inline bool rd_req_has_scope(struct rd_req *r, const char *scope)
{
    return r->api->req_has_scope(r, scope);
}
/* The name of the caller's token, "anonymous" without one. For audit logs. */
static inline const char *rd_req_principal(struct rd_req *r)
{
    return r->api->req_principal(r);
}
/* Replies. Exactly one reply per request. rd_reply_json steals body. */
static inline int rd_reply_json(struct rd_req *r, int status, json_t *body)
{
    return r->api->reply_json(r, status, body);
}
/* {"error":{"code":code,"message":...}} with status. */
static inline int rd_reply_error(struct rd_req *r, int status, const char *code, const char *fmt,
                                 ...) RD_PRINTF(4, 5);
static inline int rd_reply_error(struct rd_req *r, int status, const char *code, const char *fmt,
                                 ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = r->api->reply_errorv(r, status, code, fmt, ap);
    va_end(ap);
    return rc;
}
/* Streaming reply: headers now (extra_headers "Name: v\r\n..." or NULL),
   length -1 for chunked; then rd_reply_write as often as needed. */
static inline int rd_reply_start(struct rd_req *r, int status, const char *content_type,
                                 const char *extra_headers, int64_t length)
{
    return r->api->reply_start(r, status, content_type, extra_headers, length);
}
static inline int rd_reply_write(struct rd_req *r, const void *data, size_t len)
{
    return r->api->reply_write(r, data, len);
}
/* Sends a file (with Range support). */
static inline int rd_reply_file(struct rd_req *r, const char *path, const char *content_type)
{
    return r->api->reply_file(r, path, content_type);
}
/* For a module's own listener: RD_OK if token grants scope, RD_EAUTH if the
   token is unknown, revoked or expired, RD_EPERM if it lacks the scope. */
static inline int rd_auth_check(struct rd_host *h, const char *token, const char *scope)
{
    return h->api->auth_check(h, token, scope);
}

/* ---- threads and the loop. rd_submit (any thread): work runs on a pool
   thread, then done on the loop thread; arg belongs to the work item until
   done runs. rd_defer (any thread): fn runs on the loop thread soon. */
static inline int rd_submit(struct rd_host *h, rd_work_fn work, rd_done_fn done, void *arg)
{
    return h->api->submit(h, work, done, arg);
}
static inline int rd_defer(struct rd_host *h, rd_done_fn fn, void *arg)
{
    return h->api->defer(h, fn, arg);
}
/* Timers run fn on the loop thread. The handle is owned by the host and is
   valid until rd_timer_cancel (which frees it; NULL-safe), even after a
   one-shot timer fired. Loop thread or start. */
static inline struct rd_timer *rd_timer_every(struct rd_host *h, uint64_t ms, rd_timer_fn fn,
                                              void *arg)
{
    return h->api->timer_every(h, ms, fn, arg);
}
static inline struct rd_timer *rd_timer_after(struct rd_host *h, uint64_t ms, rd_timer_fn fn,
                                              void *arg)
{
    return h->api->timer_after(h, ms, fn, arg);
}
static inline void rd_timer_cancel(struct rd_timer *t)
{
    if (t)
        t->api->timer_cancel(t);
}
/* Runs a configured easy handle on the host's curl multi (loop thread).
   Takes easy, even on failure; done runs on the loop thread, then the host
   cleans the handle up. */
static inline int rd_fetch(struct rd_host *h, CURL *easy, rd_fetch_done_fn done, void *arg)
{
    return h->api->fetch(h, easy, done, arg);
}
/* Add events (a listener); never run, break or free the base. */
static inline struct event_base *rd_event_base(struct rd_host *h)
{
    return h->api->event_base(h);
}
/* Wall-clock milliseconds since the epoch (a manual clock under the fake host). */
static inline uint64_t rd_now_ms(struct rd_host *h)
{
    return h->api->now_ms(h);
}

/* ---- services: a versioned vtable that one module provides (init/start)
   and others look up (start or later; NULL if absent or older than
   min_ver). The vtable must live until the provider's destroy. */
static inline int rd_service_provide(struct rd_host *h, const char *name, uint32_t ver,
                                     const void *vtable)
{
    return h->api->service_provide(h, name, ver, vtable);
}
static inline const void *rd_service_get(struct rd_host *h, const char *name, uint32_t min_ver)
{
    return h->api->service_get(h, name, min_ver);
}

/* ---- process. rd_state_dir: <state>/<module>/, created by the host; valid
   until after destroy. rd_ready_port: a port the module bound, written to
   the ready file as "name": port (start). */
static inline const char *rd_state_dir(struct rd_host *h)
{
    return h->api->state_dir(h);
}
static inline const char *rd_module_name(struct rd_host *h)
{
    return h->api->module_name(h);
}
static inline bool rd_stopping(struct rd_host *h)
{
    return h->api->stopping(h);
}
static inline int rd_ready_port(struct rd_host *h, const char *name, int port)
{
    return h->api->ready_port(h, name, port);
}

#ifdef __cplusplus
}
#endif
#endif /* RELENGD_MODULE_H */
