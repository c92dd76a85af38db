/* SPDX-License-Identifier: MIT */
/*
 * core/host.c -- struct rd_host_api: the table of host functions every module
 * handle points to. Each entry finds its struct host_module from the handle
 * and forwards to the subsystem that does the work, adding the module's
 * name (logs, metrics, events, tables, routes) and ownership (so that the
 * host can drop a module's registrations before its destroy).
 * Each entry's thread rules are those documented in core/module.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/err.h"
#include "core/host.h"
#include "core/log.h"

uint64_t host_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------- logs, metrics */

static void host_logv(struct rd_host *rh, enum rd_level lv, const char *fmt, va_list ap)
    RD_PRINTF(3, 0);
static void host_logv(struct rd_host *rh, enum rd_level lv, const char *fmt, va_list ap)
{
    log_msgv(host_module_of(rh)->name, lv, fmt, ap);
}

static struct rd_metric *host_metric(struct rd_host *rh, enum rd_metric_kind k, const char *name,
                                     const char *help, const char *tags)
{
    struct host_module *m = host_module_of(rh);
    return metrics_get(m->host->metrics, k, m->name, name, help, tags);
}

/* --------------------------------------------------------- configuration */

static int host_config_load(struct rd_host *rh, const char *section, const struct rd_cfg_key *keys,
                            void *conf, struct rd_error *err)
{
    struct host_module *m = host_module_of(rh);
    char main_section[128];

    if (!keys || !conf)
        return rd_error_set(err, RD_EINVAL, "rd_config_load: keys and conf are required");
    if (!section) {
        /* Keys before any [header], or under [<module>], are the main section. */
        snprintf(main_section, sizeof(main_section), "|%s", m->name);
        section = main_section;
    }
    return cfg_apply(m->conf, section, keys, conf, m->state_dir, &m->strings, err);
}

static int host_config_sections(struct rd_host *rh, const char *prefix, rd_section_fn fn, void *arg)
{
    return cfg_file_sections(host_module_of(rh)->conf, prefix, fn, arg);
}

/* ------------------------------------------------------- store, events */

static int host_store_migrate(struct rd_host *rh, const char *const *steps, struct rd_error *err)
{
    struct host_module *m = host_module_of(rh);
    return store_migrate(m->host->store, m->name, steps, err);
}

static int host_store_read(struct rd_host *rh, rd_tx_fn fn, void *arg)
{
    return store_read(host_module_of(rh)->host->store, &host_api, fn, arg);
}

static int host_store_write(struct rd_host *rh, rd_tx_fn fn, void *arg)
{
    struct host_module *m = host_module_of(rh);
    return store_write(m->host->store, &host_api, m->name, fn, arg);
}

static sqlite3 *host_tx_db(struct rd_tx *tx)
{
    return ((struct store_tx *)tx)->db;
}

static int host_tx_publish(struct rd_tx *tx, const char *type, json_t *data)
{
    return store_tx_publish((struct store_tx *)tx, type, data);
}

struct host_publish {
    const char *type;
    json_t *data; /* NULL once handed to the transaction */
};

static int host_publish_tx(struct rd_tx *tx, void *arg)
{
    struct host_publish *p = arg;
    json_t *data = p->data;

    p->data = NULL;
    return store_tx_publish((struct store_tx *)tx, p->type, data);
}

static int host_publish(struct rd_host *rh, const char *type, json_t *data)
{
    struct host_module *m = host_module_of(rh);
    struct host_publish p = {type, data};
    int rc = store_write(m->host->store, &host_api, m->name, host_publish_tx, &p);

    json_decref(p.data); /* still ours if the transaction never ran */
    return rc;
}

static int host_subscribe(struct rd_host *rh, const char *pattern, rd_event_fn fn, void *arg)
{
    struct host_module *m = host_module_of(rh);

    if (!pattern || !fn)
        return RD_EINVAL;
    return bus_subscribe(m->host->bus, m, pattern, fn, arg);
}

/* ---------------------------------------------------------------- HTTP */

static int host_route(struct rd_host *rh, const char *method, const char *path, const char *scope,
                      unsigned flags, rd_route_fn fn, void *arg)
{
    struct host_module *m = host_module_of(rh);
    char full[512];
    int n;

    if (!method || !path || !fn)
        return RD_EINVAL;
    if (m == &m->host->core) {
        n = snprintf(full, sizeof(full), "%s", path);
    } else {
        /* A module's routes live under /api/v1/<module>, nowhere else. */
        if (path[0] != '\0' && path[0] != '/')
            return RD_EINVAL;
        n = snprintf(full, sizeof(full), "/api/v1/%s%s", m->name, path);
    }
    if (n < 0 || (size_t)n >= sizeof(full))
        return RD_EINVAL;
    return router_add(m->host->router, m, m->name, method, full, scope, flags, fn, arg);
}

static int host_auth_check(struct rd_host *rh, const char *token, const char *scope)
{
    struct host_module *m = host_module_of(rh);
    struct principal p;
    int rc;

    if (!token || !token[0])
        return RD_EAUTH;
    rc = auth_lookup(m->host->auth, token, &p, NULL);
    if (rc != RD_OK)
        return RD_EAUTH;
    rc = (!scope || principal_has(&p, scope)) ? RD_OK : RD_EPERM;
    principal_fini(&p);
    return rc;
}

/* ------------------------------------------------ threads, loop, timers */

static int host_submit(struct rd_host *rh, rd_work_fn work, rd_done_fn done, void *arg)
{
    struct host_module *m = host_module_of(rh);

    if (!work)
        return RD_EINVAL;
    return pool_submit(m->host->pool, work, done, arg);
}

static int host_defer(struct rd_host *rh, rd_done_fn fn, void *arg)
{
    if (!fn)
        return RD_EINVAL;
    return loopq_push(host_module_of(rh)->host->loopq, fn, arg);
}

static struct rd_timer *host_timer_every(struct rd_host *rh, uint64_t ms, rd_timer_fn fn, void *arg)
{
    struct host_module *m = host_module_of(rh);
    return fn ? timers_add(m->host->timers, m, ms, true, fn, arg) : NULL;
}

static struct rd_timer *host_timer_after(struct rd_host *rh, uint64_t ms, rd_timer_fn fn, void *arg)
{
    struct host_module *m = host_module_of(rh);
    return fn ? timers_add(m->host->timers, m, ms, false, fn, arg) : NULL;
}

static int host_fetch(struct rd_host *rh, CURL *easy, rd_fetch_done_fn done, void *arg)
{
    struct host_module *m = host_module_of(rh);

    if (!easy)
        return RD_EINVAL;
    return fetch_add(m->host->fetch, m, easy, done, arg);
}

static struct event_base *host_event_base(struct rd_host *rh)
{
    return host_module_of(rh)->host->base;
}

static uint64_t host_now_ms(struct rd_host *rh)
{
    (void)rh;
    return host_clock_ms();
}

/* ----------------------------------------------------------- services */

static int host_service_provide(struct rd_host *rh, const char *name, uint32_t ver,
                                const void *vtable)
{
    struct host_module *m = host_module_of(rh);
    struct host *h = m->host;
    struct host_service *v;
    int rc = RD_OK;

    if (!name || !name[0] || !vtable)
        return RD_EINVAL;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_services; i++) {
        if (strcmp(h->services[i].name, name) == 0) {
            log_msg(m->name, RD_ERROR, "service '%s' is already provided by module %s", name,
                    h->services[i].owner->name);
            rc = RD_ECONFLICT;
            goto out;
        }
    }
    v = realloc(h->services, (h->n_services + 1) * sizeof(*v));
    if (!v) {
        rc = RD_ENOMEM;
        goto out;
    }
    h->services = v;
    v[h->n_services].name = strdup(name);
    if (!v[h->n_services].name) {
        rc = RD_ENOMEM;
        goto out;
    }
    v[h->n_services].ver = ver;
    v[h->n_services].vtable = vtable;
    v[h->n_services].owner = m;
    h->n_services++;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

static const void *host_service_get(struct rd_host *rh, const char *name, uint32_t min_ver)
{
    struct host *h = host_module_of(rh)->host;
    const void *found = NULL;

    if (!name)
        return NULL;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_services; i++)
        if (strcmp(h->services[i].name, name) == 0 && h->services[i].ver >= min_ver)
            found = h->services[i].vtable;
    pthread_mutex_unlock(&h->lock);
    return found;
}

/* ------------------------------------------------------------ process */

static const char *host_state_dir(struct rd_host *rh)
{
    return host_module_of(rh)->state_dir;
}
static const char *host_module_name(struct rd_host *rh)
{
    return host_module_of(rh)->name;
}

static bool host_stopping(struct rd_host *rh)
{
    return atomic_load(&host_module_of(rh)->host->stopping);
}

static int host_ready_port(struct rd_host *rh, const char *name, int port)
{
    struct host *h = host_module_of(rh)->host;
    int rc;

    if (!name || !name[0] || strcmp(name, "api") == 0 || strcmp(name, "pid") == 0 ||
        strcmp(name, "tls") == 0 || port < 0 || port > 65535)
        return RD_EINVAL;
    pthread_mutex_lock(&h->lock);
    rc = json_object_set_new(h->ready_ports, name, json_integer(port)) == 0 ? RD_OK : RD_ENOMEM;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

const struct rd_host_api host_api = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_host_api),
    .logv = host_logv,
    .metric = host_metric,
    .metric_add = metrics_add,
    .metric_set = metrics_set,
    .metric_observe = metrics_observe,
    .config_load = host_config_load,
    .config_sections = host_config_sections,
    .store_migrate = host_store_migrate,
    .store_read = host_store_read,
    .store_write = host_store_write,
    .tx_db = host_tx_db,
    .tx_publish = host_tx_publish,
    .publish = host_publish,
    .subscribe = host_subscribe,
    .route = host_route,
    .req_method = http_req_method,
    .req_path = http_req_path,
    .req_param = http_req_param,
    .req_header = http_req_header,
    .req_body = http_req_body,
    .req_content_length = http_req_content_length,
    .req_read = http_req_read,
    .req_has_scope = http_req_has_scope,
    .req_principal = http_req_principal,
    .reply_json = http_reply_json,
    .reply_errorv = http_reply_errorv,
    .reply_start = http_reply_start,
    .reply_write = http_reply_write,
    .reply_file = http_reply_file,
    .auth_check = host_auth_check,
    .submit = host_submit,
    .defer = host_defer,
    .timer_every = host_timer_every,
    .timer_after = host_timer_after,
    .timer_cancel = timers_cancel,
    .fetch = host_fetch,
    .event_base = host_event_base,
    .now_ms = host_now_ms,
    .service_provide = host_service_provide,
    .service_get = host_service_get,
    .state_dir = host_state_dir,
    .module_name = host_module_name,
    .stopping = host_stopping,
    .ready_port = host_ready_port,
};

/* ------------------------------------------------------ module handles */

int host_module_init(struct host *h, struct host_module *m, const char *name, struct rd_error *err)
{
    size_t n;

    memset(m, 0, sizeof(*m));
    m->pub.api = &host_api;
    m->host = h;
    m->name = strdup(name);
    n = strlen(h->conf.state_dir) + strlen(name) + 3;
    m->state_dir = malloc(n);
    if (!m->name || !m->state_dir) {
        host_module_fini(m);
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    }
    if (m == &h->core)
        snprintf(m->state_dir, n, "%s", h->conf.state_dir);
    else
        snprintf(m->state_dir, n, "%s/%s", h->conf.state_dir, name);
    if (mkdir(m->state_dir, 0750) != 0 && errno != EEXIST) {
        int e = errno;
        rd_error_set(err, RD_EIO, "cannot create state directory %s: %s", m->state_dir,
                     strerror(e));
        host_module_fini(m);
        return RD_EIO;
    }
    return RD_OK;
}

void host_module_drop(struct host_module *m)
{
    struct host *h = m->host;
    size_t j = 0;

    if (h->router)
        router_drop_owner(h->router, m);
    if (h->bus)
        bus_unsubscribe_owner(h->bus, m);
    if (h->timers)
        timers_drop_owner(h->timers, m);
    if (h->fetch)
        fetch_drop_owner(h->fetch, m);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_services; i++) {
        if (h->services[i].owner == m)
            free(h->services[i].name);
        else
            h->services[j++] = h->services[i];
    }
    h->n_services = j;
    pthread_mutex_unlock(&h->lock);
}

void host_module_fini(struct host_module *m)
{
    if (!m)
        return;
    cfg_file_free(m->conf);
    cfg_strings_free(&m->strings);
    json_decref(m->openapi);
    free(m->so_path);
    free(m->state_dir);
    free(m->name);
    m->conf = NULL;
    m->openapi = NULL;
    m->so_path = m->state_dir = m->name = NULL;
}
