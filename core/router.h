/* SPDX-License-Identifier: MIT */
/*
 * core/router.h -- the route table behind /api/v1. Routes are full paths with
 * {name} segments; matching is by segment, exact segments beat {params}.
 * Registration happens at start (any thread, under a write lock); matching
 * takes a read lock, so HTTP threads never block each other.
 */
#ifndef RELENGD_ROUTER_H
#define RELENGD_ROUTER_H

#include "core/module.h"

#define ROUTE_MAX_PARAMS 8

struct route {
    char *method;     /* "GET" */
    char *path;       /* "/api/v1/graph/tasks/{id}" */
    char *scope;      /* NULL: a read */
    unsigned flags;   /* RD_ROUTE_* */
    rd_route_fn fn;
    void *arg;
    void *owner;      /* struct host_module *, for drop */
    char *owner_name; /* "graph", "core" */
    char **segs;      /* path split on '/' */
    size_t n_segs;
};

struct route_match {
    const struct route *route; /* valid while the read lock is held */
    size_t n_params;
    const char *names[ROUTE_MAX_PARAMS];
    char *values[ROUTE_MAX_PARAMS]; /* owned by the match: route_match_fini */
    char allow[64];                 /* for 405: "GET, POST" */
};

enum router_result { ROUTER_FOUND = 0, ROUTER_NO_PATH = 1, ROUTER_NO_METHOD = 2 };

struct router;

int router_new(struct router **out);
void router_free(struct router *rt);
/* RD_ECONFLICT if method+path is registered already; RD_EINVAL on a bad path
   (must start with '/', no empty, '.' or '..' segments, {} names [a-z_]+). */
int router_add(struct router *rt, void *owner, const char *owner_name, const char *method,
               const char *path, const char *scope, unsigned flags, rd_route_fn fn, void *arg);
void router_drop_owner(struct router *rt, void *owner);

/* Matches a decoded path. On ROUTER_FOUND the read lock stays held until
   router_release; otherwise it is released already. HEAD matches GET. */
enum router_result router_match(struct router *rt, const char *method, const char *path,
                                struct route_match *m);
void router_release(struct router *rt, struct route_match *m);

/* [{"method":..,"path":..,"scope":..,"module":..}] sorted by path, method. */
json_t *router_list(struct router *rt);

#endif
