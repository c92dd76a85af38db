/* SPDX-License-Identifier: MIT */
/*
 * core/router.c -- the route table behind /api/v1: registration with path
 * validation and conflict checks, segment matching where literal segments
 * beat {params} (compared from the left), HEAD served by GET routes, and the
 * Allow list for 405 answers.
 *
 * Threads: router_add and router_drop_owner take the write lock (start and
 * stop, any thread); router_match takes the read lock and, on a match, keeps
 * it until router_release, so a route (and its handler's module) cannot go
 * away while its handler runs. The lock prefers readers, so a handler may
 * call router_list (a nested read lock) without deadlocking against a
 * waiting writer. A handler must never call router_add or router_drop_owner
 * (that would wait for its own read lock).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/router.h"

/* Registration limits: generous for /api/v1/<module>/<noun>/{id}/<verb>. */
#define ROUTER_MAX_PATH 512
#define ROUTER_MAX_SEGS 32
#define ROUTER_MAX_METHOD 16
#define ROUTER_MAX_PARAM_NAME 32

struct router {
    pthread_rwlock_t lock;
    struct route **v;
    size_t n, cap;
};

/* One segment of a request path: a slice of the caller's string. */
struct seg {
    const char *p;
    size_t len;
};

int router_new(struct router **out)
{
    struct router *rt = NULL;
    pthread_rwlockattr_t attr;
    int rc = RD_OK;

    *out = NULL;
    rt = calloc(1, sizeof(*rt));
    if (!rt)
        return RD_ENOMEM;
    if (pthread_rwlockattr_init(&attr) != 0) {
        rc = RD_ENOMEM;
        goto out;
    }
    /* Readers first: nested read locks (a handler listing routes) must not
       queue behind a writer that waits for the outer read lock. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
    if (pthread_rwlock_init(&rt->lock, &attr) != 0)
        rc = RD_ENOMEM;
    pthread_rwlockattr_destroy(&attr);
out:
    if (rc != RD_OK) {
        free(rt);
        return rc;
    }
    *out = rt;
    return RD_OK;
}

static void route_free(struct route *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->segs && i < r->n_segs; i++) {
        free(r->segs[i]);
        if (r->params)
            free(r->params[i]);
    }
    free(r->segs);
    free(r->params);
    free(r->method);
    free(r->path);
    free(r->scope);
    free(r->owner_name);
    free(r);
}

void router_free(struct router *rt)
{
    if (!rt)
        return;
    /* A handler still running (one the HTTP shutdown grace gave up on)
       holds a read lock: wait for it rather than free under it. */
    pthread_rwlock_wrlock(&rt->lock);
    pthread_rwlock_unlock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++)
        route_free(rt->v[i]);
    free(rt->v);
    pthread_rwlock_destroy(&rt->lock);
    free(rt);
}

/* ------------------------------------------------------------ validation */

static bool method_valid(const char *m)
{
    size_t n = 0;

    for (; m[n]; n++)
        if (m[n] < 'A' || m[n] > 'Z')
            return false;
    return n > 0 && n <= ROUTER_MAX_METHOD;
}

/* A route's scope is a scope name as tokens are granted them, but exact:
   wildcards belong to granted scopes, never to routes. */
static bool scope_valid(const char *s)
{
    return auth_scope_valid(s) && !strchr(s, '*');
}

/* RFC 3986 pchar without percent-encoding (paths are matched decoded). */
static bool literal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* "{name}" with name [a-z_]+: the name (malloc'd) in *name; RD_EINVAL else. */
static int param_parse(const char *s, size_t len, char **name)
{
    *name = NULL;
    if (len < 3 || s[0] != '{' || s[len - 1] != '}' || len - 2 > ROUTER_MAX_PARAM_NAME)
        return RD_EINVAL;
    for (size_t i = 1; i < len - 1; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return RD_EINVAL;
    *name = strndup(s + 1, len - 2);
    return *name ? RD_OK : RD_ENOMEM;
}

/* Splits a route path into r->segs / r->params. "/" alone has no segments. */
static int route_split(struct route *r, const char *path)
{
    const char *p = path;
    size_t n_params = 0;

    if (path[0] != '/' || strlen(path) > ROUTER_MAX_PATH)
        return RD_EINVAL;
    r->segs = calloc(ROUTER_MAX_SEGS, sizeof(*r->segs));
    r->params = calloc(ROUTER_MAX_SEGS, sizeof(*r->params));
    if (!r->segs || !r->params)
        return RD_ENOMEM;
    if (strcmp(path, "/") == 0)
        return RD_OK;
    while (*p == '/') {
        const char *s = p + 1;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        int rc;

        if (len == 0 || r->n_segs == ROUTER_MAX_SEGS)
            return RD_EINVAL;
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return RD_EINVAL;
        if (s[0] == '{') {
            rc = param_parse(s, len, &r->params[r->n_segs]);
            if (rc != RD_OK)
                return rc;
            for (size_t i = 0; i < r->n_segs; i++)
                if (r->params[i] && strcmp(r->params[i], r->params[r->n_segs]) == 0) {
                    free(r->params[r->n_segs]);
                    r->params[r->n_segs] = NULL;
                    return RD_EINVAL; /* the same {name} twice */
                }
            if (++n_params > ROUTE_MAX_PARAMS) {
                free(r->params[r->n_segs]);
                r->params[r->n_segs] = NULL;
                return RD_EINVAL;
            }
        } else {
            for (size_t i = 0; i < len; i++)
                if (!literal_char(s[i]))
                    return RD_EINVAL;
        }
        r->segs[r->n_segs] = strndup(s, len);
        if (!r->segs[r->n_segs]) {
            free(r->params[r->n_segs]);
            r->params[r->n_segs] = NULL;
            return RD_ENOMEM;
        }
        r->n_segs++;
        p = s + len;
    }
    return *p == '\0' ? RD_OK : RD_EINVAL;
}

/* Same shape: the same literals at the same places and params at the same
   places (whatever their names). Two such routes could never be told apart. */
static bool route_same_shape(const struct route *a, const struct route *b)
{
    if (a->n_segs != b->n_segs)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        bool pa = a->params[i] != NULL, pb = b->params[i] != NULL;
        if (pa != pb || (!pa && strcmp(a->segs[i], b->segs[i]) != 0))
            return false;
    }
    return true;
}

int router_add(struct router *rt, void *owner, const char *owner_name, const char *method,
               const char *path, const char *scope, unsigned flags, rd_route_fn fn, void *arg)
{
    struct route *r = NULL;
    int rc = RD_OK;

    if (!rt || !method || !path || !fn || !method_valid(method) || (scope && !scope_valid(scope)) ||
        (flags & ~RD_ROUTE_RAW) != 0)
        return RD_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return RD_ENOMEM;
    rc = route_split(r, path);
    if (rc != RD_OK)
        goto out;
    r->method = strdup(method);
    r->path = strdup(path);
    r->scope = scope ? strdup(scope) : NULL;
    r->owner_name = strdup(owner_name ? owner_name : "");
    if (!r->method || !r->path || (scope && !r->scope) || !r->owner_name) {
        rc = RD_ENOMEM;
        goto out;
    }
    r->flags = flags;
    r->fn = fn;
    r->arg = arg;
    r->owner = owner;

    pthread_rwlock_wrlock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++) {
        if (strcmp(rt->v[i]->method, method) == 0 && route_same_shape(rt->v[i], r)) {
            rc = RD_ECONFLICT;
            break;
        }
    }
    if (rc == RD_OK && rt->n == rt->cap) {
        size_t ncap = rt->cap ? rt->cap * 2 : 32;
        struct route **nv = realloc(rt->v, ncap * sizeof(*nv));
        if (nv) {
            rt->v = nv;
            rt->cap = ncap;
        } else {
            rc = RD_ENOMEM;
        }
    }
    if (rc == RD_OK) {
        rt->v[rt->n++] = r;
        r = NULL;
    }
    pthread_rwlock_unlock(&rt->lock);
out:
    route_free(r);
    return rc;
}

void router_drop_owner(struct router *rt, void *owner)
{
    size_t j = 0;

    if (!rt)
        return;
    pthread_rwlock_wrlock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++) {
        if (rt->v[i]->owner == owner)
            route_free(rt->v[i]);
        else
            rt->v[j++] = rt->v[i];
    }
    rt->n = j;
    pthread_rwlock_unlock(&rt->lock);
}

/* -------------------------------------------------------------- matching */

/* Splits a request path into slices; false if it cannot match any route
   (not absolute, an empty segment, too many segments). */
static bool path_slices(const char *path, struct seg *segs, size_t *n_out)
{
    const char *p = path;
    size_t n = 0;

    *n_out = 0;
    if (!path || path[0] != '/')
        return false;
    if (strcmp(path, "/") == 0)
        return true;
    while (*p == '/') {
        const char *s = p + 1;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);

        if (len == 0 || n == ROUTER_MAX_SEGS)
            return false;
        segs[n].p = s;
        segs[n].len = len;
        n++;
        p = s + len;
    }
    *n_out = n;
    return true;
}

/* Whether r matches the path; *spec ranks it: bit (31 - i) is set for each
   literal segment i, so comparing spec compares literal-vs-param from the
   left. */
static bool route_matches(const struct route *r, const struct seg *segs, size_t n, uint32_t *spec)
{
    uint32_t s = 0;

    if (r->n_segs != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (r->params[i])
            continue;
        if (strlen(r->segs[i]) != segs[i].len || memcmp(r->segs[i], segs[i].p, segs[i].len) != 0)
            return false;
        s |= 1u << (31 - i);
    }
    *spec = s;
    return true;
}

static int method_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* m->allow: the methods of the matching routes, sorted, each once, plus HEAD
   wherever GET is; cut at a method boundary if it would not fit. */
static void allow_build(struct route_match *m, const char **methods, size_t n)
{
    size_t len = 0;
    bool has_get = false, has_head = false;

    for (size_t i = 0; i < n; i++) {
        has_get |= strcmp(methods[i], "GET") == 0;
        has_head |= strcmp(methods[i], "HEAD") == 0;
    }
    if (has_get && !has_head)
        methods[n++] = "HEAD";
    qsort(methods, n, sizeof(*methods), method_cmp);
    m->allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t ml = strlen(methods[i]);
        size_t need = (len ? 2 : 0) + ml;

        if (i > 0 && strcmp(methods[i], methods[i - 1]) == 0)
            continue;
        if (len + need >= sizeof(m->allow))
            break;
        if (len) {
            memcpy(m->allow + len, ", ", 2);
            len += 2;
        }
        memcpy(m->allow + len, methods[i], ml);
        len += ml;
        m->allow[len] = '\0';
    }
}

enum router_result router_match(struct router *rt, const char *method, const char *path,
                                struct route_match *m)
{
    struct seg segs[ROUTER_MAX_SEGS];
    /* Methods of path-matching routes for Allow; +1 for an added HEAD. */
    const char *methods[ROUTER_MAX_SEGS + 1];
    size_t n_segs = 0, n_methods = 0;
    const struct route *best = NULL;
    uint32_t best_spec = 0;
    bool best_exact = false, any_path = false;
    bool is_head = method && strcmp(method, "HEAD") == 0;

    memset(m, 0, sizeof(*m));
    if (!rt || !method || !path_slices(path, segs, &n_segs))
        return ROUTER_NO_PATH;

    pthread_rwlock_rdlock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++) {
        const struct route *r = rt->v[i];
        uint32_t spec;
        bool exact, usable;

        if (!route_matches(r, segs, n_segs, &spec))
            continue;
        any_path = true;
        if (n_methods < ROUTER_MAX_SEGS)
            methods[n_methods++] = r->method;
        exact = strcmp(r->method, method) == 0;
        usable = exact || (is_head && strcmp(r->method, "GET") == 0);
        if (!usable)
            continue;
        /* More literal segments on the left wins; at equal rank an explicit
           HEAD route beats GET serving HEAD. */
        if (!best || spec > best_spec || (spec == best_spec && exact && !best_exact)) {
            best = r;
            best_spec = spec;
            best_exact = exact;
        }
    }

    if (!best) {
        enum router_result res = any_path ? ROUTER_NO_METHOD : ROUTER_NO_PATH;
        if (any_path)
            allow_build(m, methods, n_methods);
        pthread_rwlock_unlock(&rt->lock);
        return res;
    }

    m->route = best;
    for (size_t i = 0; i < best->n_segs; i++) {
        if (!best->params[i])
            continue;
        m->names[m->n_params] = best->params[i];
        m->values[m->n_params] = strndup(segs[i].p, segs[i].len);
        if (!m->values[m->n_params]) {
            /* Out of memory: report no route rather than half a match. */
            router_release(rt, m);
            return ROUTER_NO_PATH;
        }
        m->n_params++;
    }
    return ROUTER_FOUND;
}

void router_release(struct router *rt, struct route_match *m)
{
    for (size_t i = 0; i < m->n_params; i++) {
        free(m->values[i]);
        m->values[i] = NULL;
    }
    m->n_params = 0;
    if (m->route && rt)
        pthread_rwlock_unlock(&rt->lock);
    m->route = NULL;
}

/* ---------------------------------------------------------------- listing */

static int route_cmp(const void *a, const void *b)
{
    const struct route *ra = *(const struct route *const *)a;
    const struct route *rb = *(const struct route *const *)b;
    int c = strcmp(ra->path, rb->path);

    return c ? c : strcmp(ra->method, rb->method);
}

json_t *router_list(struct router *rt)
{
    struct route **sorted = NULL;
    json_t *list = NULL;
    bool ok = false;
    size_t n;

    if (!rt)
        return NULL;
    pthread_rwlock_rdlock(&rt->lock);
    n = rt->n;
    sorted = malloc((n ? n : 1) * sizeof(*sorted));
    list = json_array();
    if (!sorted || !list)
        goto out;
    if (n > 0) {
        memcpy(sorted, rt->v, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), route_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        const struct route *r = sorted[i];
        json_t *o =
            json_pack("{s:s, s:s, s:o, s:s}", "method", r->method, "path", r->path, "scope",
                      r->scope ? json_string(r->scope) : json_null(), "module", r->owner_name);
        if (!o || json_array_append_new(list, o) != 0)
            goto out;
    }
    ok = true;
out:
    pthread_rwlock_unlock(&rt->lock);
    free(sorted);
    if (!ok) {
        json_decref(list);
        list = NULL;
    }
    return list;
}
