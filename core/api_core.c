/* SPDX-License-Identifier: MIT */
/*
 * core/api_core.c -- the core's own read routes: /api/v1/status,
 * /api/v1/modules/{name}, /api/v1/routes and /api/v1/openapi.json, and the
 * registration of every core route. Handlers run on HTTP threads; module
 * status callbacks are called from there too (see core/module.h).
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "core/host.h"

static const char *const module_state_names[] = {"loaded", "initialized", "started", "stopped",
                                                 "failed"};

static json_t *api_time(uint64_t ms)
{
    char buf[40];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *api_module_json(struct host_module *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", m->name, "version", m->desc->version, "state",
                          module_state_names[m->state]);

    if (o && m->desc->status && m->state == MODULE_STARTED) {
        json_t *st = m->desc->status(m->mod);
        json_object_set_new(o, "status", st ? st : json_object());
    }
    return o;
}

json_t *host_status(struct host *h)
{
    uint64_t now = host_clock_ms();
    json_t *mods = json_array(), *o;

    for (size_t i = 0; mods && i < h->n_mods; i++)
        json_array_append_new(mods, api_module_json(h->mods[i]));
    o = json_pack("{s:s, s:s, s:i, s:o, s:I, s:b, s:b, s:o}", "version", PACKAGE_VERSION, "build",
                  RD_BUILD, "abi", RD_MODULE_ABI, "started", api_time(h->started_ms), "uptime_s",
                  (json_int_t)((now - h->started_ms) / 1000), "ready", atomic_load(&h->ready),
                  "stopping", atomic_load(&h->stopping), "modules", mods);
    if (o && h->webhooks)
        json_object_set_new(o, "webhooks", webhooks_status(h->webhooks));
    return o;
}

static int api_status(struct rd_req *r, void *arg)
{
    json_t *o = host_status(arg);
    return o ? rd_reply_json(r, 200, o) : RD_ENOMEM;
}

static int api_module(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    const char *name = rd_req_param(r, "name");

    for (size_t i = 0; name && i < h->n_mods; i++) {
        if (strcmp(h->mods[i]->name, name) == 0) {
            json_t *o = api_module_json(h->mods[i]);
            return o ? rd_reply_json(r, 200, o) : RD_ENOMEM;
        }
    }
    return rd_reply_error(r, 404, "unknown_module", "no module '%s' is loaded", name ? name : "");
}

static int api_routes(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    json_t *list = router_list(h->router);
    return list ? rd_reply_json(r, 200, json_pack("{s:o}", "routes", list)) : RD_ENOMEM;
}

static int api_openapi(struct rd_req *r, void *arg)
{
    json_t *doc = host_openapi(arg);
    return doc ? rd_reply_json(r, 200, doc) : RD_ENOMEM;
}

int host_core_routes(struct host *h)
{
    static const struct {
        const char *method, *path, *scope;
        rd_route_fn fn;
    } routes[] = {
        {"GET", "/api/v1/status", NULL, api_status},
        {"GET", "/api/v1/modules/{name}", NULL, api_module},
        {"GET", "/api/v1/routes", "admin", api_routes},
        {"GET", "/api/v1/openapi.json", NULL, api_openapi},
    };
    int rc;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        rc = router_add(h->router, &h->core, "core", routes[i].method, routes[i].path,
                        routes[i].scope, 0, routes[i].fn, h);
        if (rc != RD_OK)
            return rc;
    }
    rc = api_events_routes(h);
    if (rc == RD_OK)
        rc = api_tokens_routes(h);
    return rc;
}
