/* SPDX-License-Identifier: MIT */
/*
 * core/host.h -- the process: one struct host that owns every shared
 * resource (loop, store, bus, HTTP, metrics, pool, fetches, auth, modules),
 * and one struct host_module per loaded module, whose first member is the
 * struct rd_host handed to the module. Core-internal; never included by a
 * module.
 */
#ifndef RELENGD_HOST_H
#define RELENGD_HOST_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/auth.h"
#include "core/bus.h"
#include "core/config.h"
#include "core/fetch.h"
#include "core/http.h"
#include "core/loopq.h"
#include "core/metrics.h"
#include "core/module.h"
#include "core/pool.h"
#include "core/router.h"
#include "core/store.h"
#include "core/timer.h"
#include "core/webhook.h"

struct core_conf {
    const char *state_dir;
    const char *module_dir;
    const char *modules;      /* space- or comma-separated names */
    const char *modules_conf; /* directory of <name>.conf */
    const char *log_level;
    const char *ready_file;
    uint64_t shutdown_timeout_ms;
    int64_t pool_threads;
    uint64_t events_retention_ms;
    int64_t events_keep_min;
    struct http_conf http;
    bool anonymous_read;
    const char *admin_token;
    uint64_t busy_timeout_ms;
    const char *synchronous; /* "full" or "normal" */
    bool sync_full;
    const char *statsd;
    const char *statsd_namespace;
    const char *statsd_tags;
};

enum module_state {
    MODULE_LOADED = 0,
    MODULE_INITIALIZED,
    MODULE_STARTED,
    MODULE_STOPPED,
    MODULE_FAILED,
};

struct host;

struct host_service {
    char *name;
    uint32_t ver;
    const void *vtable;
    struct host_module *owner;
};

struct host_module {
    struct rd_host pub; /* first: the handle the module gets */
    struct host *host;
    char *name;
    char *so_path;
    void *dl;                     /* dlopen handle; NULL for the core itself */
    const struct rd_module *desc; /* NULL for the core itself */
    void *mod;                    /* what init returned */
    enum module_state state;
    char *state_dir;
    struct cfg_file *conf;      /* etc/modules.d/<name>.conf (may be empty) */
    struct cfg_strings strings; /* config strings handed to the module */
    json_t *openapi;            /* parsed desc->openapi, or NULL */
};

struct host {
    struct core_conf conf;
    struct cfg_file *core_cfg;
    struct cfg_strings strings;
    char *config_path;
    char *config_dir;

    struct event_base *base;
    struct loopq *loopq;
    struct store *store;
    struct bus *bus;
    struct metrics *metrics;
    struct pool *pool;
    struct timers *timers;
    struct fetch *fetch;
    struct router *router;
    struct auth *auth;
    struct http *http;
    struct webhooks *webhooks;

    struct host_module core; /* the host's own handle: core routes, [core] logs */
    struct host_module **mods;
    size_t n_mods;

    pthread_mutex_t lock; /* services, ready ports */
    struct host_service *services;
    size_t n_services;
    json_t *ready_ports; /* {"api": port, "proxy": port} */

    atomic_bool stopping;
    atomic_bool ready;
    atomic_int streams; /* event streams and long-polls holding a thread */
    uint64_t started_ms;
};

/* The table every module handle points to. */
extern const struct rd_host_api host_api;

/* Sets up m as a handle of h for module name (state dir <state>/<name>). */
int host_module_init(struct host *h, struct host_module *m, const char *name, struct rd_error *err);
/* Drops everything m registered: routes, subscriptions, timers, fetches,
   services. Loop thread, HTTP stopped. */
void host_module_drop(struct host_module *m);
void host_module_fini(struct host_module *m);

static inline struct host_module *host_module_of(struct rd_host *h)
{
    return (struct host_module *)h;
}

uint64_t host_clock_ms(void);
/* Routes for /api/v1/status, /api/v1/modules, /api/v1/tokens, /api/v1/events,
   /api/v1/openapi.json, registered on h->core. */
int host_core_routes(struct host *h);
/* /readyz body and status. */
json_t *host_status(struct host *h);
json_t *host_openapi(struct host *h);
/* GET /api/v1/events (SSE and JSON polling): core/api_events.c. */
int api_events_routes(struct host *h);
/* /api/v1/tokens and /api/v1/whoami: core/api_tokens.c. */
int api_tokens_routes(struct host *h);

#endif
