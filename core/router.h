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
    char *method;   /* "GET" */
    char *path;     /* "/api/v1/graph/tasks/{id}" */
    char *scope;    /* NULL: a read */
    unsigned flags; /* RD_ROUTE_* */
    rd_route_fn fn;
    void *arg;
    void *owner;      /* struct host_module *, for drop */
    char *owner_name; /* "graph", "core" */
    char **segs;      /* path split on '/' */
    char **params;    /* per segment: the {name} without braces, NULL for literals */
    size_t n_segs;
};

struct route_match {
    const struct route *route; /* valid while the read lock is held */
    size_t n_params;
    const char *names[ROUTE_MAX_PARAMS];
    char *values[ROUTE_MAX_PARAMS]; /* owned by the match: freed by router_release */
    char allow[64];                 /* for 405: "GET, POST" */
};

enum router_result { ROUTER_FOUND = 0, ROUTER_NO_PATH = 1, ROUTER_NO_METHOD = 2 };

struct router;

int router_new(struct router **out);
/* Waits for matches still held (handlers still running), then frees. */
void router_free(struct router *rt);
/* RD_ECONFLICT if method+path is registered already (also when only the
   {param} names differ); RD_EINVAL on a bad method ([A-Z]+), a bad scope
   (NULL, or segments of [a-zA-Z0-9_.-] joined by ':'; no wildcards), unknown
   flags, or a bad path (must start with '/', no empty, '.' or '..' segments,
   literal segments of RFC 3986 pchars, at most ROUTE_MAX_PARAMS {} names
   [a-z_]+, each once). Strings are copied. */
int router_add(struct router *rt, void *owner, const char *owner_name, const char *method,
               const char *path, const char *scope, unsigned flags, rd_route_fn fn, void *arg);
void router_drop_owner(struct router *rt, void *owner);

/* Matches a decoded path. On ROUTER_FOUND the read lock stays held until
   router_release; otherwise it is released already (and m->allow lists the
   path's methods on ROUTER_NO_METHOD). HEAD matches GET. Literal segments
   beat {params}, compared from the left; a route must match the method
   first, so GET /a/b falls back to GET /a/{id} when /a/b only has POST.
   router_release is harmless after a miss. A handler running under the read
   lock may call router_list but never router_add/router_drop_owner. */
enum router_result router_match(struct router *rt, const char *method, const char *path,
                                struct route_match *m);
void router_release(struct router *rt, struct route_match *m);

/* [{"method":..,"path":..,"scope":..,"module":..}] sorted by path, method. */
json_t *router_list(struct router *rt);

#endif
