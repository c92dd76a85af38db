/* SPDX-License-Identifier: MIT */
/*
 * tests/fakes/fake_host.c -- a deterministic host for unit tests of modules
 * (see fake_host.h for what is real and what is faked). One struct
 * fake_host per module under test; it carries its own copy of the API table,
 * so every handle the module gets (host, request, transaction, timer,
 * metric) leads back to its fake_host through the table pointer. Single
 * threaded: everything runs on the test's thread.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/store.h"
#include "tests/fakes/fake_host.h"

#define FAKE_MAX_BODY ((size_t)1 << 20) /* the daemon's default http.max_body */
#define FAKE_MAX_RUN 100000             /* queue items per run: a runaway guard */
#define FAKE_PRINCIPAL "test"

struct fake_route {
    char *method;
    char *path; /* full: /api/v1/<name>/... */
    char *scope;
    unsigned flags;
    rd_route_fn fn;
    void *arg;
    char **segs;
    size_t n_segs;
};

struct fake_sub {
    char *pattern;
    rd_event_fn fn;
    void *arg;
};

struct fake_timer {
    struct rd_timer pub; /* first: the module's handle */
    uint64_t due_ms;
    uint64_t every_ms; /* 0: one-shot */
    uint64_t seq;
    rd_timer_fn fn;
    void *arg;
    bool is_live;   /* will fire */
    bool is_firing; /* its callback is running */
    bool is_cancelled;
    struct fake_timer *next;
};

struct fake_metric {
    struct rd_metric pub; /* first: the module's handle */
    enum rd_metric_kind kind;
    char *name;
    char *tags;
    double value; /* counter, gauge; histogram: observations */
    double sum;   /* histogram */
};

enum fake_item_kind { ITEM_CALL, ITEM_FANOUT, ITEM_FETCH };

struct fake_item {
    enum fake_item_kind kind;
    rd_done_fn fn; /* ITEM_CALL */
    void *arg;
    json_t *env; /* ITEM_FANOUT: an envelope reference */
    rd_fetch_done_fn fetch_done;
    CURL *easy;
    CURLcode result;
    struct fake_item *next;
};

struct fake_log {
    enum rd_level lv;
    char *msg;
};

struct fake_service {
    char *name;
    uint32_t ver;
    const void *vtable;
    bool is_module_owned; /* provided by the module, not by the test */
};

struct fake_inject {
    unsigned n;
    int rc;
};

struct fake_token {
    char *token;
    char *scopes;
};

struct fake_host {
    struct rd_host pub;     /* first: the module's handle */
    struct rd_host_api api; /* this host's table: every handle points here */
    char *name;
    char *dir;
    bool is_own_dir;
    char *state_dir;
    struct cfg_file *conf;
    struct cfg_strings strings;
    struct store *store;
    struct event_base *base;

    const struct rd_module *desc;
    void *mod;
    bool is_load_tried, is_initialized, is_started, is_stopping;
    bool anonymous_read;
    bool is_verbose;

    uint64_t now_ms;
    uint64_t timer_seq;
    struct fake_timer *timers;

    struct fake_route *routes;
    size_t n_routes;
    struct fake_sub *subs;
    size_t n_subs;
    struct fake_service *services;
    size_t n_services;
    struct fake_metric **metrics;
    size_t n_metrics;
    struct fake_log *logs;
    size_t n_logs;
    struct fake_token *tokens;
    size_t n_tokens;
    struct fake_inject *injects;
    size_t n_injects;
    unsigned n_calls;

    json_t *events;      /* envelopes, in commit order */
    json_t *ready_ports; /* {"name": port} */
    struct fake_item *q_head, *q_tail;
    fake_fetch_fn fetch_fn;
    void *fetch_arg;
};

struct fake_kv {
    char *k, *v;
};

struct fake_req {
    struct rd_req pub; /* first: the handler's handle */
    struct fake_host *fh;
    const char *method;
    char *path; /* decoded, without the query */
    char **segs;
    size_t n_segs;
    const struct fake_route *route;
    struct fake_kv *query;
    size_t n_query;
    struct fake_kv *headers;
    size_t n_headers;
    char **scopes;
    size_t n_scopes;
    bool is_anonymous;
    json_t *body;
    const char *raw;
    size_t raw_len, read_off;
    struct fake_resp *resp;
    bool is_replied, is_streaming;
    int64_t stream_len;
};

/* ------------------------------------------------------------- helpers */

static struct fake_host *fh_of_api(const struct rd_host_api *api)
{
    return (struct fake_host *)((const char *)api - offsetof(struct fake_host, api));
}

static struct fake_host *fh_of(struct rd_host *h)
{
    return fh_of_api(h->api);
}

/* Makes room for one more element in arr, which has n: RD_OK, or RD_ENOMEM
   with arr unchanged. tmp is a void * variable of the caller's. */
#define GROW(arr, n, tmp)                                                                          \
    (((tmp) = realloc((arr), ((n) + 1) * sizeof(*(arr)))) != NULL ? ((arr) = (tmp), RD_OK)         \
                                                                  : RD_ENOMEM)

static char *dup_or_null(const char *s, bool *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static char *str_printf(const char *fmt, ...) RD_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static void fh_logf(struct fake_host *fh, enum rd_level lv, const char *fmt, ...) RD_PRINTF(3, 4);

/* Counts one failable host call; true (with *rc) if it is to fail. */
static bool fh_fails(struct fake_host *fh, const char *what, int *rc)
{
    unsigned n = ++fh->n_calls;

    for (size_t i = 0; i < fh->n_injects; i++) {
        if (fh->injects[i].n == n) {
            *rc = fh->injects[i].rc;
            if (fh->is_verbose)
                fprintf(stderr, "fake_host: host call %u (%s) fails with %d (injected)\n", n, what,
                        *rc);
            return true;
        }
    }
    return false;
}

static int fh_queue(struct fake_host *fh, const struct fake_item *src)
{
    struct fake_item *it = malloc(sizeof(*it));

    if (!it)
        return RD_ENOMEM;
    *it = *src;
    it->next = NULL;
    if (fh->q_tail)
        fh->q_tail->next = it;
    else
        fh->q_head = it;
    fh->q_tail = it;
    return RD_OK;
}

/* "a, b c" -> ["a", "b", "c"] */
static int split_scopes(const char *s, char ***out, size_t *n_out)
{
    void *tmp;
    char **v = NULL;
    size_t n = 0;

    while (s && *s) {
        size_t len;
        s += strspn(s, ", \t");
        len = strcspn(s, ", \t");
        if (len == 0)
            break;
        if (GROW(v, n, tmp) != RD_OK || !(v[n] = strndup(s, len)))
            goto fail;
        n++;
        s += len;
    }
    *out = v;
    *n_out = n;
    return RD_OK;
fail:
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return RD_ENOMEM;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The daemon's rule: "admin" grants everything, "x:*" every scope starting
   "x:", anything else only itself. */
static bool scope_grants(const char *granted, const char *needed)
{
    size_t n = strlen(granted);

    if (strcmp(granted, "admin") == 0 || strcmp(granted, needed) == 0)
        return true;
    return n >= 2 && strcmp(granted + n - 2, ":*") == 0 && strncmp(granted, needed, n - 1) == 0;
}

static bool scopes_grant(char *const *scopes, size_t n, const char *needed)
{
    for (size_t i = 0; i < n; i++)
        if (scope_grants(scopes[i], needed))
            return true;
    return false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) (and '+' to space when plus) into *out.
   RD_EINVAL on a bad escape or an encoded NUL. */
static int url_decode(const char *s, size_t n, bool plus, char **out)
{
    char *d = malloc(n + 1);
    size_t j = 0;

    if (!d)
        return RD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                free(d);
                return RD_EINVAL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(d);
                return RD_EINVAL;
            }
            d[j++] = (char)(a * 16 + b);
            i += 2;
        } else if (plus && s[i] == '+') {
            d[j++] = ' ';
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    return RD_OK;
}

/* "/a/b/{id}" -> ["a", "b", "{id}"]; "" and "/" give none; a trailing '/'
   gives a last empty segment (which then matches no route). */
static int split_path(const char *path, char ***out, size_t *n_out)
{
    void *tmp;
    char **v = NULL;
    size_t n = 0;
    const char *p = path;

    if (*p == '/')
        p++;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (GROW(v, n, tmp) != RD_OK || !(v[n] = strndup(p, len)))
            goto fail;
        n++;
        p += len;
        if (*p != '/')
            break;
        p++;
        if (!*p) {
            if (GROW(v, n, tmp) != RD_OK || !(v[n] = strdup("")))
                goto fail;
            n++;
        }
    }
    *out = v;
    *n_out = n;
    return RD_OK;
fail:
    free_strv(v, n);
    return RD_ENOMEM;
}

static bool is_param_seg(const char *seg)
{
    size_t n = strlen(seg);
    return n >= 2 && seg[0] == '{' && seg[n - 1] == '}';
}

/* ----------------------------------------------------------------- log */

static void fh_record(struct fake_host *fh, enum rd_level lv, const char *msg)
{
    void *tmp;
    char *copy = strdup(msg);

    if (fh->is_verbose)
        log_msg(fh->name, lv, "%s", msg);
    if (!copy || GROW(fh->logs, fh->n_logs, tmp) != RD_OK) {
        free(copy);
        return;
    }
    fh->logs[fh->n_logs].lv = lv;
    fh->logs[fh->n_logs].msg = copy;
    fh->n_logs++;
}

static void fh_logv(struct rd_host *h, enum rd_level lv, const char *fmt, va_list ap)
    RD_PRINTF(3, 0);
static void fh_logv(struct rd_host *h, enum rd_level lv, const char *fmt, va_list ap)
{
    char line[2048];

    vsnprintf(line, sizeof(line), fmt, ap);
    fh_record(fh_of(h), lv, line);
}

static void fh_logf(struct fake_host *fh, enum rd_level lv, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fh_logv(&fh->pub, lv, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------- metrics */

static bool str_eq_null(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static struct rd_metric *fh_metric(struct rd_host *h, enum rd_metric_kind k, const char *name,
                                   const char *help, const char *tags)
{
    void *tmp;
    struct fake_host *fh = fh_of(h);
    struct fake_metric *m = NULL;
    bool failed = false;
    int rc;

    (void)help;
    if (fh_fails(fh, "metric", &rc))
        return NULL;
    if (!name || !name[0] || (k != RD_COUNTER && k != RD_GAUGE && k != RD_HISTOGRAM))
        return NULL;
    for (size_t i = 0; i < fh->n_metrics; i++) {
        struct fake_metric *o = fh->metrics[i];
        if (strcmp(o->name, name) != 0)
            continue;
        if (o->kind != k)
            return NULL; /* the same name with another kind */
        if (str_eq_null(o->tags, tags))
            return &o->pub;
    }
    if (GROW(fh->metrics, fh->n_metrics, tmp) != RD_OK)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->pub.api = &fh->api;
    m->kind = k;
    m->name = dup_or_null(name, &failed);
    m->tags = dup_or_null(tags, &failed);
    if (failed) {
        free(m->name);
        free(m->tags);
        free(m);
        return NULL;
    }
    fh->metrics[fh->n_metrics++] = m;
    return &m->pub;
}

static void fh_metric_add(struct rd_metric *pm, double v)
{
    struct fake_metric *m = (struct fake_metric *)pm;

    if (m->kind == RD_HISTOGRAM) {
        m->value += 1;
        m->sum += v;
    } else if (m->kind == RD_GAUGE || v >= 0) {
        m->value += v; /* counters only go up */
    }
}

static void fh_metric_set(struct rd_metric *pm, double v)
{
    struct fake_metric *m = (struct fake_metric *)pm;

    if (m->kind == RD_GAUGE)
        m->value = v;
}

static void fh_metric_observe(struct rd_metric *pm, double v)
{
    struct fake_metric *m = (struct fake_metric *)pm;

    if (m->kind == RD_HISTOGRAM) {
        m->value += 1;
        m->sum += v;
    }
}

/* --------------------------------------------------------------- config */

static int fh_config_load(struct rd_host *h, const char *section, const struct rd_cfg_key *keys,
                          void *conf, struct rd_error *err)
{
    struct fake_host *fh = fh_of(h);
    char main_section[128];
    int rc;

    if (fh_fails(fh, "config_load", &rc))
        return rd_error_set(err, rc, "fake_host: injected failure of host call %u", fh->n_calls);
    if (!keys || !conf)
        return rd_error_set(err, RD_EINVAL, "rd_config_load: keys and conf are required");
    if (!section) {
        /* As the daemon: keys before any [header], or under [<module>]. */
        snprintf(main_section, sizeof(main_section), "|%s", fh->name);
        section = main_section;
    }
    return cfg_apply(fh->conf, section, keys, conf, fh->state_dir, &fh->strings, err);
}

static int fh_config_sections(struct rd_host *h, const char *prefix, rd_section_fn fn, void *arg)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "config_sections", &rc))
        return rc;
    if (!fn)
        return RD_EINVAL;
    return cfg_file_sections(fh->conf, prefix ? prefix : "", fn, arg);
}

/* ---------------------------------------------------------------- store */

static int fh_store_migrate(struct rd_host *h, const char *const *steps, struct rd_error *err)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "store_migrate", &rc))
        return rd_error_set(err, rc, "fake_host: injected failure of host call %u", fh->n_calls);
    if (!steps)
        return rd_error_set(err, RD_EINVAL, "rd_store_migrate: steps are required");
    return store_migrate(fh->store, fh->name, steps, err);
}

static int fh_store_read(struct rd_host *h, rd_tx_fn fn, void *arg)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "store_read", &rc))
        return rc;
    if (!fn)
        return RD_EINVAL;
    return store_read(fh->store, &fh->api, fn, arg);
}

static int fh_store_write(struct rd_host *h, rd_tx_fn fn, void *arg)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "store_write", &rc))
        return rc;
    if (!fn)
        return RD_EINVAL;
    return store_write(fh->store, &fh->api, fh->name, fn, arg);
}

static sqlite3 *fh_tx_db(struct rd_tx *tx)
{
    return ((struct store_tx *)tx)->db;
}

static int fh_tx_publish(struct rd_tx *tx, const char *type, json_t *data)
{
    struct fake_host *fh = fh_of_api(tx->api);
    int rc;

    if (fh_fails(fh, "tx_publish", &rc)) {
        json_decref(data);
        return rc;
    }
    return store_tx_publish((struct store_tx *)tx, type, data);
}

struct fh_publish {
    const char *type;
    json_t *data; /* NULL once handed to the transaction */
};

static int fh_publish_tx(struct rd_tx *tx, void *arg)
{
    struct fh_publish *p = arg;
    json_t *data = p->data;

    p->data = NULL;
    return store_tx_publish((struct store_tx *)tx, p->type, data);
}

static int fh_publish(struct rd_host *h, const char *type, json_t *data)
{
    struct fake_host *fh = fh_of(h);
    struct fh_publish p = {type, data};
    int rc;

    if (fh_fails(fh, "publish", &rc)) {
        json_decref(data);
        return rc;
    }
    rc = store_write(fh->store, &fh->api, fh->name, fh_publish_tx, &p);
    json_decref(p.data); /* still ours if the transaction never ran */
    return rc;
}

/* The store's commit hook: record each envelope, queue its fan-out. */
static void fh_on_commit(void *arg, const json_t *envelopes)
{
    struct fake_host *fh = arg;
    size_t i;
    json_t *env;

    json_array_foreach(envelopes, i, env)
    {
        struct fake_item it = {.kind = ITEM_FANOUT, .env = json_incref(env)};
        if (json_array_append(fh->events, env) != 0 || fh_queue(fh, &it) != RD_OK) {
            json_decref(it.env);
            fh_logf(fh, RD_ERROR, "fake_host: out of memory recording an event");
        }
    }
}

static int fh_subscribe(struct rd_host *h, const char *pattern, rd_event_fn fn, void *arg)
{
    void *tmp;
    struct fake_host *fh = fh_of(h);
    char *p;
    int rc;

    if (fh_fails(fh, "subscribe", &rc))
        return rc;
    if (!pattern || !pattern[0] || !fn)
        return RD_EINVAL;
    p = strdup(pattern);
    if (!p || GROW(fh->subs, fh->n_subs, tmp) != RD_OK) {
        free(p);
        return RD_ENOMEM;
    }
    fh->subs[fh->n_subs].pattern = p;
    fh->subs[fh->n_subs].fn = fn;
    fh->subs[fh->n_subs].arg = arg;
    fh->n_subs++;
    return RD_OK;
}

/* ----------------------------------------------------------------- HTTP */

static void route_fini(struct fake_route *r)
{
    free(r->method);
    free(r->path);
    free(r->scope);
    free_strv(r->segs, r->n_segs);
}

static bool route_method_ok(const char *m)
{
    if (!m || !*m)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

/* As core/router.c: no empty, "." or ".." segments; {name} with [a-z_]+. */
static bool route_segs_ok(char *const *segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = segs[i];
        size_t len = strlen(s);
        if (len == 0 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
            return false;
        if (s[0] == '{' || s[len - 1] == '}' || strchr(s, '{') || strchr(s, '}')) {
            if (!is_param_seg(s) || len == 2)
                return false;
            for (size_t j = 1; j + 1 < len; j++)
                if (!(s[j] >= 'a' && s[j] <= 'z') && s[j] != '_')
                    return false;
        }
    }
    return true;
}

static int fh_route(struct rd_host *h, const char *method, const char *path, const char *scope,
                    unsigned flags, rd_route_fn fn, void *arg)
{
    void *tmp;
    struct fake_host *fh = fh_of(h);
    struct fake_route r = {0};
    bool failed = false;
    int rc;

    if (fh_fails(fh, "route", &rc))
        return rc;
    if (!route_method_ok(method) || !path || !fn || (path[0] != '\0' && path[0] != '/'))
        return RD_EINVAL;
    r.path = str_printf("/api/v1/%s%s", fh->name, path);
    r.method = dup_or_null(method, &failed);
    r.scope = dup_or_null(scope, &failed);
    if (!r.path || failed || split_path(r.path, &r.segs, &r.n_segs) != RD_OK) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (!route_segs_ok(r.segs, r.n_segs)) {
        rc = RD_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < fh->n_routes; i++) {
        if (strcmp(fh->routes[i].method, method) == 0 && strcmp(fh->routes[i].path, r.path) == 0) {
            fh_logf(fh, RD_ERROR, "fake_host: route %s %s registered twice", method, r.path);
            rc = RD_ECONFLICT;
            goto out;
        }
    }
    rc = GROW(fh->routes, fh->n_routes, tmp);
    if (rc != RD_OK)
        goto out;
    r.flags = flags;
    r.fn = fn;
    r.arg = arg;
    fh->routes[fh->n_routes++] = r;
    return RD_OK;
out:
    route_fini(&r);
    return rc;
}

static struct fake_req *req_of(struct rd_req *r)
{
    return (struct fake_req *)r;
}

static const char *fh_req_method(struct rd_req *r)
{
    return req_of(r)->method;
}
static const char *fh_req_path(struct rd_req *r)
{
    return req_of(r)->path;
}

static const char *fh_req_param(struct rd_req *r, const char *name)
{
    struct fake_req *rq = req_of(r);
    size_t n;

    if (!name)
        return NULL;
    n = strlen(name);
    for (size_t i = 0; rq->route && i < rq->route->n_segs; i++) {
        const char *s = rq->route->segs[i];
        if (is_param_seg(s) && strlen(s) == n + 2 && strncmp(s + 1, name, n) == 0)
            return rq->segs[i];
    }
    for (size_t i = 0; i < rq->n_query; i++)
        if (strcmp(rq->query[i].k, name) == 0)
            return rq->query[i].v;
    return NULL;
}

static const char *fh_req_header(struct rd_req *r, const char *name)
{
    struct fake_req *rq = req_of(r);

    for (size_t i = 0; name && i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].k, name) == 0)
            return rq->headers[i].v;
    return NULL;
}

static const json_t *fh_req_body(struct rd_req *r)
{
    return req_of(r)->body;
}

static int64_t fh_req_content_length(struct rd_req *r)
{
    return (int64_t)req_of(r)->raw_len;
}

static int64_t fh_req_read(struct rd_req *r, void *buf, size_t len)
{
    struct fake_req *rq = req_of(r);
    size_t n;

    if (!(rq->route->flags & RD_ROUTE_RAW))
        return 0; /* the host read the body already */
    n = rq->raw_len - rq->read_off;
    if (n > len)
        n = len;
    memcpy(buf, rq->raw + rq->read_off, n);
    rq->read_off += n;
    return (int64_t)n;
}

static bool fh_req_has_scope(struct rd_req *r, const char *scope)
{
    struct fake_req *rq = req_of(r);
    return scope && scopes_grant(rq->scopes, rq->n_scopes, scope);
}

static const char *fh_req_principal(struct rd_req *r)
{
    return req_of(r)->is_anonymous ? "anonymous" : FAKE_PRINCIPAL;
}

static int resp_append(struct fake_resp *resp, const void *data, size_t len)
{
    char *p = realloc(resp->raw, resp->raw_len + len + 1);

    if (!p)
        return RD_ENOMEM;
    memcpy(p + resp->raw_len, data, len);
    resp->raw = p;
    resp->raw_len += len;
    p[resp->raw_len] = '\0';
    return RD_OK;
}

static int req_check_reply(struct fake_req *rq, int status, const char *what)
{
    if (rq->is_replied) {
        fh_logf(rq->fh, RD_ERROR, "fake_host: %s after the request was replied to (%s %s)", what,
                rq->method, rq->path);
        return RD_ECONFLICT;
    }
    if (status < 100 || status > 599) {
        fh_logf(rq->fh, RD_ERROR, "fake_host: %s with HTTP status %d", what, status);
        return RD_EINVAL;
    }
    return RD_OK;
}

static int fh_reply_json(struct rd_req *r, int status, json_t *body)
{
    struct fake_req *rq = req_of(r);
    struct fake_resp *resp = rq->resp;
    char *raw = NULL;
    int rc;

    rc = req_check_reply(rq, status, "rd_reply_json");
    if (rc != RD_OK)
        goto out;
    if (!body) {
        rc = RD_ENOMEM; /* the module's json_pack failed: the host answers 500 */
        goto out;
    }
    raw = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    resp->content_type = strdup("application/json");
    if (!raw || !resp->content_type) {
        free(resp->content_type);
        resp->content_type = NULL;
        rc = RD_ENOMEM;
        goto out;
    }
    rq->is_replied = true;
    resp->status = status;
    resp->body = body;
    body = NULL;
    resp->raw = raw;
    resp->raw_len = strlen(raw);
    raw = NULL;
out:
    free(raw);
    json_decref(body);
    return rc;
}

/* A message that is not UTF-8 (bytes from a request echoed back) would make
   json_string fail: replace what is not ASCII. */
static void ascii_only(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
            *s = '?';
}

static int req_reply_error(struct fake_req *rq, int status, const char *code, const char *msg)
{
    json_t *body;
    char copy[512];

    body = json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "internal_error", "message",
                     msg ? msg : "");
    if (!body && msg) {
        snprintf(copy, sizeof(copy), "%s", msg);
        ascii_only(copy);
        body = json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "internal_error",
                         "message", copy);
    }
    return fh_reply_json(&rq->pub, status, body);
}

static int fh_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt,
                           va_list ap) RD_PRINTF(4, 0);
static int fh_reply_errorv(struct rd_req *r, int status, const char *code, const char *fmt,
                           va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    return req_reply_error(req_of(r), status, code, msg);
}

static int fh_reply_start(struct rd_req *r, int status, const char *content_type,
                          const char *extra_headers, int64_t length)
{
    struct fake_req *rq = req_of(r);
    struct fake_resp *resp = rq->resp;
    bool failed = false;
    int rc;

    rc = req_check_reply(rq, status, "rd_reply_start");
    if (rc != RD_OK)
        return rc;
    resp->content_type =
        dup_or_null(content_type ? content_type : "application/octet-stream", &failed);
    resp->headers = dup_or_null(extra_headers, &failed);
    if (failed || resp_append(resp, "", 0) != RD_OK) {
        free(resp->content_type);
        free(resp->headers);
        resp->content_type = resp->headers = NULL;
        return RD_ENOMEM;
    }
    rq->is_replied = rq->is_streaming = true;
    rq->stream_len = length;
    resp->status = status;
    return RD_OK;
}

static int fh_reply_write(struct rd_req *r, const void *data, size_t len)
{
    struct fake_req *rq = req_of(r);

    if (!rq->is_streaming) {
        fh_logf(rq->fh, RD_ERROR, "fake_host: rd_reply_write without rd_reply_start");
        return RD_EINVAL;
    }
    if (rq->stream_len >= 0 && rq->resp->raw_len + len > (uint64_t)rq->stream_len) {
        fh_logf(rq->fh, RD_ERROR, "fake_host: rd_reply_write beyond the announced length %lld",
                (long long)rq->stream_len);
        return RD_EINVAL;
    }
    return resp_append(rq->resp, data, len);
}

static int fh_reply_file(struct rd_req *r, const char *path, const char *content_type)
{
    struct fake_req *rq = req_of(r);
    struct fake_resp *resp = rq->resp;
    FILE *f = NULL;
    char buf[8192];
    size_t n;
    int rc;

    rc = req_check_reply(rq, 200, "rd_reply_file");
    if (rc != RD_OK)
        return rc;
    f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return errno == ENOENT || !path ? RD_ENOTFOUND : RD_EIO;
    rc = resp_append(resp, "", 0);
    while (rc == RD_OK && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        rc = resp_append(resp, buf, n);
    if (rc == RD_OK && ferror(f))
        rc = RD_EIO;
    if (rc == RD_OK) {
        resp->content_type = strdup(content_type ? content_type : "application/octet-stream");
        if (!resp->content_type)
            rc = RD_ENOMEM;
    }
    if (rc != RD_OK) {
        free(resp->raw);
        resp->raw = NULL;
        resp->raw_len = 0;
        goto out;
    }
    rq->is_replied = true;
    resp->status = 200;
out:
    fclose(f);
    return rc;
}

static int fh_auth_check(struct rd_host *h, const char *token, const char *scope)
{
    struct fake_host *fh = fh_of(h);
    char **scopes = NULL;
    size_t n = 0;
    int rc = RD_EAUTH;

    for (size_t i = 0; token && i < fh->n_tokens; i++) {
        if (strcmp(fh->tokens[i].token, token) != 0)
            continue;
        if (!scope)
            return RD_OK;
        if (split_scopes(fh->tokens[i].scopes, &scopes, &n) != RD_OK)
            return RD_ENOMEM;
        rc = scopes_grant(scopes, n, scope) ? RD_OK : RD_EPERM;
        free_strv(scopes, n);
        break;
    }
    return rc;
}

/* --------------------------------------------- threads, loop and timers */

static int fh_submit(struct rd_host *h, rd_work_fn work, rd_done_fn done, void *arg)
{
    struct fake_host *fh = fh_of(h);
    struct fake_item it = {.kind = ITEM_CALL, .fn = done, .arg = arg};
    int rc;

    if (fh_fails(fh, "submit", &rc))
        return rc;
    if (!work)
        return RD_EINVAL;
    /* Queue first: a failure must leave arg to the caller, untouched. */
    if (done) {
        rc = fh_queue(fh, &it);
        if (rc != RD_OK)
            return rc;
    }
    work(arg);
    return RD_OK;
}

static int fh_defer(struct rd_host *h, rd_done_fn fn, void *arg)
{
    struct fake_host *fh = fh_of(h);
    struct fake_item it = {.kind = ITEM_CALL, .fn = fn, .arg = arg};
    int rc;

    if (fh_fails(fh, "defer", &rc))
        return rc;
    if (!fn)
        return RD_EINVAL;
    return fh_queue(fh, &it);
}

static struct rd_timer *fh_timer_add(struct rd_host *h, const char *what, uint64_t ms, bool repeat,
                                     rd_timer_fn fn, void *arg)
{
    struct fake_host *fh = fh_of(h);
    struct fake_timer *t;
    int rc;

    if (fh_fails(fh, what, &rc))
        return NULL;
    if (!fn || (repeat && ms == 0))
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->pub.api = &fh->api;
    t->due_ms = fh->now_ms + ms;
    t->every_ms = repeat ? ms : 0;
    t->seq = fh->timer_seq++;
    t->fn = fn;
    t->arg = arg;
    t->is_live = true;
    t->next = fh->timers;
    fh->timers = t;
    return &t->pub;
}

static struct rd_timer *fh_timer_every(struct rd_host *h, uint64_t ms, rd_timer_fn fn, void *arg)
{
    return fh_timer_add(h, "timer_every", ms, true, fn, arg);
}

static struct rd_timer *fh_timer_after(struct rd_host *h, uint64_t ms, rd_timer_fn fn, void *arg)
{
    return fh_timer_add(h, "timer_after", ms, false, fn, arg);
}

static void timer_unlink_free(struct fake_host *fh, struct fake_timer *t)
{
    for (struct fake_timer **pp = &fh->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
}

static void fh_timer_cancel(struct rd_timer *pt)
{
    struct fake_timer *t = (struct fake_timer *)pt;

    t->is_live = false;
    if (t->is_firing)
        t->is_cancelled = true; /* freed when its callback returns */
    else
        timer_unlink_free(fh_of_api(pt->api), t);
}

static int fh_fetch(struct rd_host *h, CURL *easy, rd_fetch_done_fn done, void *arg)
{
    struct fake_host *fh = fh_of(h);
    struct fake_item it = {.kind = ITEM_FETCH, .fetch_done = done, .arg = arg, .easy = easy};
    int rc;

    if (fh_fails(fh, "fetch", &rc))
        goto fail;
    rc = RD_EINVAL;
    if (!easy)
        goto fail;
    rc = RD_EUNAVAIL;
    if (!fh->fetch_fn)
        goto fail;
    /* Queue first, so that a failure leaves done uncalled as documented. */
    rc = fh_queue(fh, &it);
    if (rc != RD_OK)
        goto fail;
    fh->q_tail->result = fh->fetch_fn(fh->fetch_arg, easy);
    return RD_OK;
fail:
    curl_easy_cleanup(easy); /* taken even on failure */
    return rc;
}

static struct event_base *fh_event_base(struct rd_host *h)
{
    return fh_of(h)->base;
}
static uint64_t fh_now_ms(struct rd_host *h)
{
    return fh_of(h)->now_ms;
}

/* ------------------------------------------------------------ services */

static int service_add(struct fake_host *fh, const char *name, uint32_t ver, const void *vtable,
                       bool by_module)
{
    void *tmp;
    char *n;

    if (!name || !name[0] || !vtable)
        return RD_EINVAL;
    for (size_t i = 0; i < fh->n_services; i++) {
        if (strcmp(fh->services[i].name, name) == 0) {
            fh_logf(fh, RD_ERROR, "service '%s' is already provided", name);
            return RD_ECONFLICT;
        }
    }
    n = strdup(name);
    if (!n || GROW(fh->services, fh->n_services, tmp) != RD_OK) {
        free(n);
        return RD_ENOMEM;
    }
    fh->services[fh->n_services].name = n;
    fh->services[fh->n_services].ver = ver;
    fh->services[fh->n_services].vtable = vtable;
    fh->services[fh->n_services].is_module_owned = by_module;
    fh->n_services++;
    return RD_OK;
}

static int fh_service_provide(struct rd_host *h, const char *name, uint32_t ver, const void *vtable)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "service_provide", &rc))
        return rc;
    return service_add(fh, name, ver, vtable, true);
}

static const struct fake_service *service_find(struct fake_host *fh, const char *name)
{
    for (size_t i = 0; name && i < fh->n_services; i++)
        if (strcmp(fh->services[i].name, name) == 0)
            return &fh->services[i];
    return NULL;
}

static const void *fh_service_get(struct rd_host *h, const char *name, uint32_t min_ver)
{
    struct fake_host *fh = fh_of(h);
    const struct fake_service *s;
    int rc;

    if (fh_fails(fh, "service_get", &rc))
        return NULL;
    s = service_find(fh, name);
    return s && s->ver >= min_ver ? s->vtable : NULL;
}

/* ------------------------------------------------------------- process */

static const char *fh_state_dir(struct rd_host *h)
{
    return fh_of(h)->state_dir;
}
static const char *fh_module_name(struct rd_host *h)
{
    return fh_of(h)->name;
}
static bool fh_stopping(struct rd_host *h)
{
    return fh_of(h)->is_stopping;
}

static int fh_ready_port(struct rd_host *h, const char *name, int port)
{
    struct fake_host *fh = fh_of(h);
    int rc;

    if (fh_fails(fh, "ready_port", &rc))
        return rc;
    /* As the daemon: api, pid and tls are the host's own keys. */
    if (!name || !name[0] || strcmp(name, "api") == 0 || strcmp(name, "pid") == 0 ||
        strcmp(name, "tls") == 0 || port < 0 || port > 65535)
        return RD_EINVAL;
    return json_object_set_new(fh->ready_ports, name, json_integer(port)) == 0 ? RD_OK : RD_ENOMEM;
}

static const struct rd_host_api fake_api_template = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_host_api),
    .logv = fh_logv,
    .metric = fh_metric,
    .metric_add = fh_metric_add,
    .metric_set = fh_metric_set,
    .metric_observe = fh_metric_observe,
    .config_load = fh_config_load,
    .config_sections = fh_config_sections,
    .store_migrate = fh_store_migrate,
    .store_read = fh_store_read,
    .store_write = fh_store_write,
    .tx_db = fh_tx_db,
    .tx_publish = fh_tx_publish,
    .publish = fh_publish,
    .subscribe = fh_subscribe,
    .route = fh_route,
    .req_method = fh_req_method,
    .req_path = fh_req_path,
    .req_param = fh_req_param,
    .req_header = fh_req_header,
    .req_body = fh_req_body,
    .req_content_length = fh_req_content_length,
    .req_read = fh_req_read,
    .req_has_scope = fh_req_has_scope,
    .req_principal = fh_req_principal,
    .reply_json = fh_reply_json,
    .reply_errorv = fh_reply_errorv,
    .reply_start = fh_reply_start,
    .reply_write = fh_reply_write,
    .reply_file = fh_reply_file,
    .auth_check = fh_auth_check,
    .submit = fh_submit,
    .defer = fh_defer,
    .timer_every = fh_timer_every,
    .timer_after = fh_timer_after,
    .timer_cancel = fh_timer_cancel,
    .fetch = fh_fetch,
    .event_base = fh_event_base,
    .now_ms = fh_now_ms,
    .service_provide = fh_service_provide,
    .service_get = fh_service_get,
    .state_dir = fh_state_dir,
    .module_name = fh_module_name,
    .stopping = fh_stopping,
    .ready_port = fh_ready_port,
};

/* -------------------------------------------------------- HTTP requests */

static void kv_free(struct fake_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].k);
        free(v[i].v);
    }
    free(v);
}

static int kv_add(struct fake_kv **v, size_t *n, char *k, char *val)
{
    void *tmp;
    if (!k || !val || GROW(*v, *n, tmp) != RD_OK) {
        free(k);
        free(val);
        return RD_ENOMEM;
    }
    (*v)[*n].k = k;
    (*v)[*n].v = val;
    (*n)++;
    return RD_OK;
}

/* "a=1&b=x+y&c" -> a: "1", b: "x y", c: "". RD_EINVAL on a bad escape. */
static int parse_query(const char *q, struct fake_kv **out, size_t *n_out)
{
    int rc = RD_OK;

    while (rc == RD_OK && *q) {
        size_t len = strcspn(q, "&");
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            char *k = NULL, *v = NULL;
            rc = url_decode(q, klen, true, &k);
            if (rc == RD_OK)
                rc = url_decode(eq ? eq + 1 : "", eq ? len - klen - 1 : 0, true, &v);
            if (rc == RD_OK)
                rc = kv_add(out, n_out, k, v);
            else {
                free(k);
                free(v);
            }
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return rc;
}

/* "Name: value" lines separated by "\n" or "\r\n". RD_EINVAL without ':'. */
static int parse_headers(const char *h, struct fake_kv **out, size_t *n_out)
{
    int rc = RD_OK;

    while (rc == RD_OK && h && *h) {
        size_t len = strcspn(h, "\r\n");
        if (len > 0) {
            const char *colon = memchr(h, ':', len);
            const char *v;
            size_t vlen;
            if (!colon || colon == h)
                return RD_EINVAL;
            v = colon + 1;
            vlen = len - (size_t)(v - h);
            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            rc = kv_add(out, n_out, strndup(h, (size_t)(colon - h)), strndup(v, vlen));
        }
        h += len;
        h += strspn(h, "\r\n");
    }
    return rc;
}

/* Whether a beats b: at the first segment where one is a literal and the
   other a {param}, the literal wins (core/router.c's rule). */
static bool route_more_exact(const struct fake_route *a, const struct fake_route *b)
{
    for (size_t i = 0; i < a->n_segs && i < b->n_segs; i++) {
        bool al = !is_param_seg(a->segs[i]), bl = !is_param_seg(b->segs[i]);
        if (al != bl)
            return al;
    }
    return false;
}

static const struct fake_route *match_route(struct fake_host *fh, const char *method,
                                            char *const *segs, size_t n, bool *path_found)
{
    const struct fake_route *best = NULL;
    bool is_head = strcmp(method, "HEAD") == 0;

    *path_found = false;
    for (size_t i = 0; i < fh->n_routes; i++) {
        const struct fake_route *r = &fh->routes[i];
        bool ok = r->n_segs == n;
        for (size_t j = 0; ok && j < n; j++)
            ok = is_param_seg(r->segs[j]) ? segs[j][0] != '\0' : strcmp(r->segs[j], segs[j]) == 0;
        if (!ok)
            continue;
        *path_found = true;
        if (strcmp(r->method, method) != 0 && !(is_head && strcmp(r->method, "GET") == 0))
            continue;
        if (!best || route_more_exact(r, best))
            best = r;
    }
    return best;
}

static int method_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "Allow: GET, HEAD, POST\r\n" for a path that matched without its method:
   as core/router.c, sorted, each once, HEAD wherever GET is. NULL when out
   of memory (the 405 stands without it). */
static char *allow_header(struct fake_host *fh, char *const *segs, size_t n)
{
    const char **methods = calloc(fh->n_routes + 1, sizeof(*methods));
    char buf[256] = "Allow: ";
    size_t n_methods = 0, len = strlen(buf);
    bool has_get = false, has_head = false;
    char *out = NULL;

    if (!methods)
        return NULL;
    for (size_t i = 0; i < fh->n_routes; i++) {
        const struct fake_route *r = &fh->routes[i];
        bool ok = r->n_segs == n;
        for (size_t j = 0; ok && j < n; j++)
            ok = is_param_seg(r->segs[j]) ? segs[j][0] != '\0' : strcmp(r->segs[j], segs[j]) == 0;
        if (!ok)
            continue;
        has_get |= strcmp(r->method, "GET") == 0;
        has_head |= strcmp(r->method, "HEAD") == 0;
        methods[n_methods++] = r->method;
    }
    if (has_get && !has_head)
        methods[n_methods++] = "HEAD";
    qsort(methods, n_methods, sizeof(*methods), method_cmp);
    for (size_t i = 0; i < n_methods; i++) {
        if (i > 0 && strcmp(methods[i], methods[i - 1]) == 0)
            continue;
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? ", " : "", methods[i]);
        if (len >= sizeof(buf))
            goto out;
    }
    if (len + 3 <= sizeof(buf)) {
        memcpy(buf + len, "\r\n", 3);
        out = strdup(buf);
    }
out:
    free(methods);
    return out;
}

static bool method_is_read(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* The methods whose body the daemon reads (core/http.c). */
static bool method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
           strcmp(m, "DELETE") == 0;
}

static void req_fini(struct fake_req *rq)
{
    free(rq->path);
    free_strv(rq->segs, rq->n_segs);
    kv_free(rq->query, rq->n_query);
    kv_free(rq->headers, rq->n_headers);
    free_strv(rq->scopes, rq->n_scopes);
    json_decref(rq->body);
}

/* Checks and the handler call, as core/http.c does them. */
static void req_dispatch(struct fake_host *fh, struct fake_req *rq, const struct fake_call *c)
{
    const char *q = strchr(c->path, '?');
    const struct fake_route *route;
    json_error_t je;
    char msg[256];
    bool path_found;
    int rc;

    rc = url_decode(c->path, q ? (size_t)(q - c->path) : strlen(c->path), false, &rq->path);
    if (rc == RD_OK)
        rc = parse_query(q ? q + 1 : "", &rq->query, &rq->n_query);
    if (rc == RD_OK)
        rc = split_path(rq->path, &rq->segs, &rq->n_segs);
    if (rc == RD_OK)
        rc = split_scopes(c->scopes, &rq->scopes, &rq->n_scopes);
    if (rc == RD_OK)
        rc = parse_headers(c->headers, &rq->headers, &rq->n_headers);
    if (rc == RD_ENOMEM) {
        req_reply_error(rq, 500, "out_of_memory", "out of memory");
        return;
    }
    if (rc != RD_OK) {
        req_reply_error(rq, 400, "bad_request", "malformed path, query or headers");
        return;
    }
    route = match_route(fh, rq->method, rq->segs, rq->n_segs, &path_found);
    if (!route) {
        if (path_found) {
            req_reply_error(rq, 405, "method_not_allowed", "method not allowed on this path");
            rq->resp->headers = allow_header(fh, rq->segs, rq->n_segs);
        } else
            req_reply_error(rq, 404, "not_found", "no such API path");
        return;
    }
    rq->route = route;
    if (route->scope && rq->is_anonymous) {
        snprintf(msg, sizeof(msg), "this route needs a token with scope %s", route->scope);
        req_reply_error(rq, 401, "unauthorized", msg);
        return;
    }
    if (!route->scope && rq->is_anonymous && !(method_is_read(rq->method) && fh->anonymous_read)) {
        /* A route without a scope is anonymous only for reads, and only
           while anonymous reads are on. */
        req_reply_error(rq, 401, "unauthorized", "this route needs a token");
        return;
    }
    if (route->scope && !scopes_grant(rq->scopes, rq->n_scopes, route->scope)) {
        snprintf(msg, sizeof(msg), "token %s lacks scope %s", FAKE_PRINCIPAL, route->scope);
        req_reply_error(rq, 403, "insufficient_scope", msg);
        return;
    }
    if (!method_has_body(rq->method)) {
        rq->raw_len = 0; /* the daemon does not read it */
    } else if (rq->raw_len > FAKE_MAX_BODY) {
        req_reply_error(rq, 413, "too_large", "the body is larger than 1048576 bytes");
        return;
    }
    if (!(route->flags & RD_ROUTE_RAW) && rq->raw_len > 0) {
        rq->body = json_loadb(rq->raw, rq->raw_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!rq->body) {
            snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", je.line, je.column,
                     je.text);
            req_reply_error(rq, 400, "bad_request", msg);
            return;
        }
    }
    rc = route->fn(&rq->pub, route->arg);
    if (rq->is_replied)
        return;
    if (rc != RD_OK) {
        req_reply_error(rq, rd_err_http_status(rc), rd_err_code(rc), rd_strerror(rc));
        return;
    }
    fh_logf(fh, RD_ERROR, "fake_host: %s %s returned RD_OK without a reply", route->method,
            route->path);
    req_reply_error(rq, 500, "internal_error", "the handler did not reply");
}

struct fake_resp fake_host_request(struct fake_host *fh, const struct fake_call *c)
{
    struct fake_resp resp = {0};
    struct fake_req rq = {0};

    rq.pub.api = &fh->api;
    rq.fh = fh;
    rq.resp = &resp;
    rq.method = c->method ? c->method : "GET";
    rq.is_anonymous = c->scopes == NULL;
    rq.raw = c->body ? c->body : "";
    rq.raw_len = c->body ? c->body_len : 0;
    if (!c->path || c->path[0] != '/')
        req_reply_error(&rq, 400, "bad_request", "the path must start with /");
    else
        req_dispatch(fh, &rq, c);
    if (rq.is_streaming && rq.stream_len >= 0 && (uint64_t)rq.stream_len != resp.raw_len)
        fh_logf(fh, RD_ERROR, "fake_host: reply of %zu bytes, %lld announced", resp.raw_len,
                (long long)rq.stream_len);
    if (!resp.body && resp.raw && resp.content_type &&
        strncmp(resp.content_type, "application/json", 16) == 0)
        resp.body = json_loadb(resp.raw, resp.raw_len, JSON_DECODE_ANY, NULL);
    req_fini(&rq);
    return resp;
}

struct fake_resp fake_host_call(struct fake_host *fh, const char *method, const char *path,
                                const char *body_json, const char *scopes)
{
    struct fake_call c = {
        .method = method,
        .path = path,
        .body = body_json,
        .body_len = body_json ? strlen(body_json) : 0,
        .headers = NULL,
        .scopes = scopes,
    };
    return fake_host_request(fh, &c);
}

void fake_resp_free(struct fake_resp *r)
{
    if (!r)
        return;
    json_decref(r->body);
    free(r->raw);
    free(r->content_type);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

void fake_host_set_anonymous_read(struct fake_host *fh, bool on)
{
    fh->anonymous_read = on;
}

int fake_host_add_token(struct fake_host *fh, const char *token, const char *scopes)
{
    void *tmp;
    bool failed = false;
    char *t, *s;

    if (!token)
        return RD_EINVAL;
    t = dup_or_null(token, &failed);
    s = dup_or_null(scopes ? scopes : "", &failed);
    if (failed || GROW(fh->tokens, fh->n_tokens, tmp) != RD_OK) {
        free(t);
        free(s);
        return RD_ENOMEM;
    }
    fh->tokens[fh->n_tokens].token = t;
    fh->tokens[fh->n_tokens].scopes = s;
    fh->n_tokens++;
    return RD_OK;
}

/* ---------------------------------------------------------- the queue */

static void fanout(struct fake_host *fh, const json_t *env)
{
    const char *type = json_string_value(json_object_get(env, "type"));
    uint64_t id = (uint64_t)json_integer_value(json_object_get(env, "id"));
    const json_t *data = json_object_get(env, "data");

    for (size_t i = 0; type && i < fh->n_subs; i++) {
        /* A copy: the callback may subscribe, which moves the array. */
        struct fake_sub s = fh->subs[i];
        if (bus_type_match(s.pattern, type))
            s.fn(s.arg, id, type, data);
    }
}

static void item_run(struct fake_host *fh, struct fake_item *it)
{
    switch (it->kind) {
    case ITEM_CALL:
        if (it->fn)
            it->fn(it->arg);
        break;
    case ITEM_FANOUT:
        fanout(fh, it->env);
        json_decref(it->env);
        break;
    case ITEM_FETCH:
        if (it->fetch_done)
            it->fetch_done(it->arg, it->easy, it->result);
        curl_easy_cleanup(it->easy);
        break;
    }
}

size_t fake_host_run_pending(struct fake_host *fh)
{
    size_t n = 0;

    while (fh->q_head) {
        struct fake_item *it = fh->q_head;
        if (n == FAKE_MAX_RUN) {
            fh_logf(fh, RD_ERROR, "fake_host: still work queued after %d items: a loop?",
                    FAKE_MAX_RUN);
            break;
        }
        fh->q_head = it->next;
        if (!fh->q_head)
            fh->q_tail = NULL;
        item_run(fh, it);
        free(it);
        n++;
    }
    return n;
}

/* What is still queued when the host goes away (only after a runaway). */
static void queue_discard(struct fake_host *fh)
{
    while (fh->q_head) {
        struct fake_item *it = fh->q_head;
        fh->q_head = it->next;
        if (it->kind == ITEM_FANOUT)
            json_decref(it->env);
        if (it->kind == ITEM_FETCH)
            curl_easy_cleanup(it->easy);
        free(it);
    }
    fh->q_tail = NULL;
}

/* ---------------------------------------------------------- the clock */

void fake_host_advance(struct fake_host *fh, uint64_t ms)
{
    uint64_t target = fh->now_ms + ms;

    for (;;) {
        struct fake_timer *next = NULL;
        for (struct fake_timer *t = fh->timers; t; t = t->next)
            if (t->is_live && t->due_ms <= target &&
                (!next || t->due_ms < next->due_ms ||
                 (t->due_ms == next->due_ms && t->seq < next->seq)))
                next = t;
        if (!next)
            break;
        if (next->due_ms > fh->now_ms)
            fh->now_ms = next->due_ms;
        if (next->every_ms)
            next->due_ms += next->every_ms;
        else
            next->is_live = false;
        next->is_firing = true;
        next->fn(next->arg);
        next->is_firing = false;
        if (next->is_cancelled)
            timer_unlink_free(fh, next);
    }
    fh->now_ms = target;
}

uint64_t fake_host_now(struct fake_host *fh)
{
    return fh->now_ms;
}

size_t fake_host_n_timers(struct fake_host *fh)
{
    size_t n = 0;

    for (struct fake_timer *t = fh->timers; t; t = t->next)
        n += t->is_live;
    return n;
}

/* ------------------------------------------------------------- events */

const json_t *fake_host_envelope(struct fake_host *fh, const char *type, size_t nth)
{
    size_t i, k = 0;
    json_t *env;

    json_array_foreach(fh->events, i, env)
    {
        const char *t = json_string_value(json_object_get(env, "type"));
        if (!type || (t && strcmp(t, type) == 0)) {
            if (k++ == nth)
                return env;
        }
    }
    return NULL;
}

const json_t *fake_host_event(struct fake_host *fh, const char *type, size_t nth)
{
    const json_t *env = fake_host_envelope(fh, type, nth);
    return env ? json_object_get(env, "data") : NULL;
}

size_t fake_host_n_events(struct fake_host *fh, const char *type)
{
    size_t n = 0;

    while (fake_host_envelope(fh, type, n))
        n++;
    return n;
}

/* ---------------------------------------------------- logs and metrics */

bool fake_host_logged(struct fake_host *fh, enum rd_level lv, const char *substring)
{
    for (size_t i = 0; i < fh->n_logs; i++)
        if (fh->logs[i].lv == lv && strstr(fh->logs[i].msg, substring ? substring : ""))
            return true;
    return false;
}

double fake_host_metric(struct fake_host *fh, const char *name, const char *tags)
{
    for (size_t i = 0; name && i < fh->n_metrics; i++)
        if (strcmp(fh->metrics[i]->name, name) == 0 && str_eq_null(fh->metrics[i]->tags, tags))
            return fh->metrics[i]->value;
    return NAN;
}

/* -------------------------------------------------- failure injection */

void fake_host_fail_call(struct fake_host *fh, unsigned n, int rc)
{
    void *tmp;
    for (size_t i = 0; i < fh->n_injects; i++) {
        if (fh->injects[i].n == n) {
            fh->injects[i].rc = rc;
            return;
        }
    }
    if (GROW(fh->injects, fh->n_injects, tmp) != RD_OK) {
        fprintf(stderr, "fake_host: out of memory in fake_host_fail_call\n");
        abort(); /* a test that cannot set up its injection must not pass */
    }
    fh->injects[fh->n_injects].n = n;
    fh->injects[fh->n_injects].rc = rc;
    fh->n_injects++;
}

void fake_host_fail_clear(struct fake_host *fh)
{
    free(fh->injects);
    fh->injects = NULL;
    fh->n_injects = 0;
}

unsigned fake_host_calls(struct fake_host *fh)
{
    return fh->n_calls;
}

/* ---------------------------------------------- services, fetch, ports */

int fake_host_provide(struct fake_host *fh, const char *name, uint32_t ver, const void *vtable)
{
    return service_add(fh, name, ver, vtable, false);
}

void fake_host_set_fetch(struct fake_host *fh, fake_fetch_fn fn, void *arg)
{
    fh->fetch_fn = fn;
    fh->fetch_arg = arg;
}

int fake_host_ready_port(struct fake_host *fh, const char *name)
{
    json_t *v = name ? json_object_get(fh->ready_ports, name) : NULL;
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* --------------------------------------------------------- life cycle */

/* The loader's checks (core/module_loader.c), logged as it logs them. */
static int check_desc(struct fake_host *fh, const struct rd_module *d)
{
    json_error_t je;
    json_t *doc;
    bool ok;

    if (!d) {
        fh_logf(fh, RD_ERROR, "module '%s': no descriptor", fh->name);
        return RD_EINVAL;
    }
    if (d->abi != RD_MODULE_ABI) {
        fh_logf(fh, RD_ERROR, "module '%s' was built for host ABI %u, this host has ABI %u",
                fh->name, d->abi, RD_MODULE_ABI);
        return RD_EINVAL;
    }
    if (d->size < offsetof(struct rd_module, reload)) {
        fh_logf(fh, RD_ERROR, "module '%s': descriptor is %u bytes, too small for ABI %u", fh->name,
                d->size, RD_MODULE_ABI);
        return RD_EINVAL;
    }
    if (!d->build || strcmp(d->build, RD_BUILD) != 0) {
        fh_logf(fh, RD_ERROR, "module '%s' was built for relengd %s, this is relengd %s", fh->name,
                d->build ? d->build : "(none)", RD_BUILD);
        return RD_EINVAL;
    }
    if (!d->name || strcmp(d->name, fh->name) != 0) {
        fh_logf(fh, RD_ERROR, "module calls itself '%s', expected '%s'",
                d->name ? d->name : "(null)", fh->name);
        return RD_EINVAL;
    }
    if (!d->init || !d->start || !d->stop || !d->destroy) {
        fh_logf(fh, RD_ERROR, "module '%s': init, start, stop and destroy are all required",
                fh->name);
        return RD_EINVAL;
    }
    if (d->openapi) {
        doc = json_loads(d->openapi, 0, &je);
        ok = doc && json_is_object(json_object_get(doc, "paths"));
        json_decref(doc);
        if (!ok) {
            fh_logf(fh, RD_ERROR, "module '%s': its OpenAPI fragment is not {\"paths\":{...}}: %s",
                    fh->name, doc ? "no paths object" : je.text);
            return RD_EINVAL;
        }
    }
    return RD_OK;
}

/* Drops what the module registered: routes, subscriptions, timers and the
   services it provided (as host_module_drop). */
static void drop_registrations(struct fake_host *fh)
{
    size_t j = 0;

    for (size_t i = 0; i < fh->n_routes; i++)
        route_fini(&fh->routes[i]);
    free(fh->routes);
    fh->routes = NULL;
    fh->n_routes = 0;
    for (size_t i = 0; i < fh->n_subs; i++)
        free(fh->subs[i].pattern);
    free(fh->subs);
    fh->subs = NULL;
    fh->n_subs = 0;
    while (fh->timers) {
        struct fake_timer *t = fh->timers;
        fh->timers = t->next;
        free(t);
    }
    for (size_t i = 0; i < fh->n_services; i++) {
        if (fh->services[i].is_module_owned)
            free(fh->services[i].name);
        else
            fh->services[j++] = fh->services[i];
    }
    fh->n_services = j;
}

/* After a failed load: nothing of the module may stay registered. */
static void unload(struct fake_host *fh)
{
    drop_registrations(fh);
    fake_host_run_pending(fh);
    if (fh->is_initialized)
        fh->desc->destroy(fh->mod);
    fh->is_initialized = false;
    fh->mod = NULL;
}

int fake_host_load(struct fake_host *fh, const struct rd_module *desc)
{
    const struct cfg_entry *left;
    void *mod = NULL;
    int rc;

    if (fh->is_load_tried)
        return RD_ECONFLICT;
    fh->is_load_tried = true;
    rc = check_desc(fh, desc);
    if (rc != RD_OK)
        return rc;
    fh->desc = desc;
    rc = desc->init(&fh->pub, &mod);
    if (rc != RD_OK) {
        unload(fh);
        return rc;
    }
    fh->mod = mod;
    fh->is_initialized = true;
    left = cfg_file_unused(fh->conf);
    if (left) {
        /* As the daemon: a setting that init never read is a mistake. */
        fh_logf(fh, RD_ERROR, "module '%s': %s: '%s' in [%s] is not a setting of this module",
                fh->name, left->origin, left->key, left->section[0] ? left->section : fh->name);
        unload(fh);
        return RD_EINVAL;
    }
    for (size_t i = 0; desc->needs && desc->needs[i]; i++) {
        if (!service_find(fh, desc->needs[i])) {
            fh_logf(fh, RD_ERROR, "module '%s' needs service '%s', which nobody provides", fh->name,
                    desc->needs[i]);
            unload(fh);
            return RD_EUNAVAIL;
        }
    }
    rc = desc->start(mod);
    if (rc != RD_OK) {
        unload(fh);
        return rc;
    }
    fh->is_started = true;
    return RD_OK;
}

struct rd_host *fake_host_handle(struct fake_host *fh)
{
    return &fh->pub;
}
void *fake_host_mod(struct fake_host *fh)
{
    return fh->mod;
}
const char *fake_host_dir(struct fake_host *fh)
{
    return fh->dir;
}

json_t *fake_host_status(struct fake_host *fh)
{
    if (!fh->is_initialized || !fh->desc->status)
        return NULL;
    return fh->desc->status(fh->mod);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct fake_host *fake_host_new_in(const char *module_name, const char *config_text,
                                   const char *dir)
{
    struct fake_host *fh = NULL;
    struct store_conf sc = {0};
    struct rd_error err = {0};
    char *conf_path = NULL, *db_path = NULL;
    const char *verbose = getenv("FAKE_HOST_VERBOSE");
    FILE *f = NULL;
    int rc;

    if (!module_name || !module_name[0] || !dir)
        return NULL;
    fh = calloc(1, sizeof(*fh));
    if (!fh)
        return NULL;
    fh->api = fake_api_template;
    fh->pub.api = &fh->api;
    fh->anonymous_read = true;
    fh->now_ms = FAKE_HOST_EPOCH_MS;
    fh->is_verbose = verbose && *verbose && strcmp(verbose, "0") != 0;
    /* Process-wide, as in the daemon: the core's INFO lines (migrations)
       would only bury a test's output. */
    log_set_level(fh->is_verbose ? RD_DEBUG : RD_WARN);
    fh->name = strdup(module_name);
    fh->dir = strdup(dir);
    fh->state_dir = str_printf("%s/%s", dir, module_name);
    conf_path = str_printf("%s/%s.conf", dir, module_name);
    db_path = str_printf("%s/relengd.db", dir);
    fh->events = json_array();
    fh->ready_ports = json_object();
    if (!fh->name || !fh->dir || !fh->state_dir || !conf_path || !db_path || !fh->events ||
        !fh->ready_ports) {
        fprintf(stderr, "fake_host: out of memory\n");
        goto fail;
    }
    if (mkdir(fh->state_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "fake_host: cannot create %s: %s\n", fh->state_dir, strerror(errno));
        goto fail;
    }
    if (config_text) {
        f = fopen(conf_path, "w");
        if (!f || fputs(config_text, f) < 0 || fclose(f) != 0) {
            f = NULL;
            fprintf(stderr, "fake_host: cannot write %s\n", conf_path);
            goto fail;
        }
        f = NULL;
        rc = cfg_file_load(conf_path, &fh->conf, &err);
    } else {
        rc = cfg_file_new(conf_path, &fh->conf);
        if (rc != RD_OK)
            rd_error_set(&err, rc, "out of memory");
    }
    if (rc != RD_OK) {
        fprintf(stderr, "fake_host: %s\n", err.msg);
        goto fail;
    }
    fh->base = event_base_new();
    if (!fh->base) {
        fprintf(stderr, "fake_host: event_base_new failed\n");
        goto fail;
    }
    sc.path = db_path;
    sc.busy_timeout_ms = 5000;
    sc.sync_full = false;
    rc = store_open(&sc, &fh->store, &err);
    if (rc != RD_OK) {
        fprintf(stderr, "fake_host: %s\n", err.msg);
        goto fail;
    }
    store_set_commit_hook(fh->store, fh_on_commit, fh);
    free(conf_path);
    free(db_path);
    return fh;
fail:
    if (f)
        fclose(f);
    free(conf_path);
    free(db_path);
    fake_host_free(fh);
    return NULL;
}

struct fake_host *fake_host_new(const char *module_name, const char *config_text)
{
    const char *tmp = getenv("TMPDIR");
    struct fake_host *fh = NULL;
    char *dir;

    dir = str_printf("%s/relengd-fake-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!dir)
        return NULL;
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fake_host: mkdtemp %s: %s\n", dir, strerror(errno));
        goto out;
    }
    fh = fake_host_new_in(module_name, config_text, dir);
    if (fh)
        fh->is_own_dir = true;
    else
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
out:
    free(dir);
    return fh;
}

void fake_host_free(struct fake_host *fh)
{
    if (!fh)
        return;
    if (fh->is_started) {
        fh->is_stopping = true;
        fh->desc->stop(fh->mod);
        fh->is_started = false;
    }
    fake_host_run_pending(fh);
    drop_registrations(fh);
    fake_host_run_pending(fh);
    if (fh->is_initialized)
        fh->desc->destroy(fh->mod);
    queue_discard(fh);
    for (size_t i = 0; i < fh->n_services; i++)
        free(fh->services[i].name);
    free(fh->services);
    for (size_t i = 0; i < fh->n_metrics; i++) {
        free(fh->metrics[i]->name);
        free(fh->metrics[i]->tags);
        free(fh->metrics[i]);
    }
    free(fh->metrics);
    for (size_t i = 0; i < fh->n_logs; i++)
        free(fh->logs[i].msg);
    free(fh->logs);
    for (size_t i = 0; i < fh->n_tokens; i++) {
        free(fh->tokens[i].token);
        free(fh->tokens[i].scopes);
    }
    free(fh->tokens);
    free(fh->injects);
    store_close(fh->store);
    json_decref(fh->events);
    json_decref(fh->ready_ports);
    cfg_file_free(fh->conf);
    cfg_strings_free(&fh->strings);
    if (fh->base)
        event_base_free(fh->base);
    if (fh->is_own_dir)
        nftw(fh->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fh->state_dir);
    free(fh->dir);
    free(fh->name);
    free(fh);
}
