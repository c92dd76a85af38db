/* SPDX-License-Identifier: MIT */
/*
 * core/daemon.c -- start-up, serving, reload and shutdown of the process.
 *
 * Start: config -> state dir lock -> loop, store, bus, metrics, pool, timers,
 * fetches, router, auth -> every module's init (in the configured order),
 * leftover-config check, needs, every start -> core routes -> webhooks ->
 * HTTP -> ready file. Any failure undoes what was done and the process
 * exits 1 with a message naming the module: never a half-running appliance.
 *
 * Stop (SIGTERM/SIGINT): not ready, stop accepting, wake SSE clients, let
 * in-flight requests finish (bounded), stop modules in reverse order, finish
 * pool work, drop registrations, destroy modules, close the store. A
 * watchdog bounds the whole shutdown. Runs on the main (loop) thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "core/daemon.h"
#include "core/err.h"
#include "core/log.h"
#include "core/module_loader.h"

#define DAEMON_PRUNE_MS (10u * 60u * 1000u)

struct daemon {
    struct host h;
    const struct core_cli *cli;
    int lock_fd;
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *prune;
    pthread_t watchdog;
    bool has_watchdog;
    int exit_status;
};

/* ------------------------------------------------------------ helpers */

/* Splits "a b,c" into names; *out is malloc'd, names point into *buf. */
static int daemon_split_modules(const char *list, char **buf, char ***out, size_t *n)
{
    char *s = strdup(list ? list : ""), *save = NULL, **v = NULL;
    size_t k = 0;

    if (!s)
        return RD_ENOMEM;
    for (char *tok = strtok_r(s, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
        char **nv = realloc(v, (k + 1) * sizeof(*nv));
        if (!nv) {
            free(v);
            free(s);
            return RD_ENOMEM;
        }
        v = nv;
        v[k++] = tok;
    }
    *buf = s;
    *out = v;
    *n = k;
    return RD_OK;
}

static int daemon_mkdirs(const char *path, struct rd_error *err)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp))
        return rd_error_set(err, RD_EINVAL, "state_dir '%s' is not a usable path", path);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return rd_error_set(err, RD_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return rd_error_set(err, RD_EIO, "cannot create state directory %s: %s", tmp,
                            strerror(errno));
    return RD_OK;
}

/* One daemon per state directory: two would share one SQLite writer role
   and one set of cache files without knowing it. */
static int daemon_lock_state(struct daemon *d, struct rd_error *err)
{
    char path[4200], pid[32];
    int fd, n;

    snprintf(path, sizeof(path), "%s/relengd.lock", d->h.conf.state_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return rd_error_set(err, RD_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char other[32] = "";
        ssize_t r = pread(fd, other, sizeof(other) - 1, 0);
        if (r > 0)
            other[r] = '\0';
        other[strcspn(other, " \n")] = '\0';
        close(fd);
        return rd_error_set(err, RD_ECONFLICT,
                            "state directory %s is in use by another relengd (pid %s)",
                            d->h.conf.state_dir, other[0] ? other : "?");
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return rd_error_set(err, RD_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    d->lock_fd = fd;
    return RD_OK;
}

static int daemon_write_ready(struct daemon *d, struct rd_error *err)
{
    struct host *h = &d->h;
    const char *path = h->conf.ready_file;
    char tmp[4200];
    json_t *doc;
    int rc = RD_OK;

    if (!path || !path[0])
        return RD_OK;
    pthread_mutex_lock(&h->lock);
    doc = json_deep_copy(h->ready_ports);
    pthread_mutex_unlock(&h->lock);
    if (!doc)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    json_object_set_new(doc, "api", json_integer(http_port(h->http)));
    json_object_set_new(doc, "pid", json_integer(getpid()));
    json_object_set_new(doc, "tls", json_boolean(http_is_tls(h->http)));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* Written whole, then renamed: a reader never sees half a file. */
    if (json_dump_file(doc, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0)
        rc = rd_error_set(err, RD_EIO, "cannot write ready file %s: %s", path, strerror(errno));
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------ modules */

static int daemon_module_conf(struct host *h, struct host_module *m, struct rd_error *err)
{
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/%s.conf", h->conf.modules_conf, m->name);
    rc = cfg_file_load(path, &m->conf, err);
    if (rc == RD_ENOTFOUND) {
        /* No file: the module runs on its defaults. */
        rc = cfg_file_new(path, &m->conf);
        if (rc != RD_OK)
            return rd_error_set(err, rc, "out of memory");
    } else if (rc != RD_OK) {
        return rc;
    }
    rc = core_conf_module_env(m->conf, m->name);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "module '%s': cannot apply environment overrides", m->name);
    return RD_OK;
}

/* Loads, configures and inits every module in order; on failure undoes the
   ones done and leaves h->n_mods at 0. */
static int daemon_init_modules(struct host *h, struct rd_error *err)
{
    char *buf = NULL, **names = NULL;
    size_t n = 0;
    int rc = daemon_split_modules(h->conf.modules, &buf, &names, &n);

    if (rc != RD_OK)
        return rd_error_set(err, rc, "out of memory");
    h->mods = calloc(n ? n : 1, sizeof(*h->mods));
    if (!h->mods) {
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct host_module *m;
        const struct cfg_entry *left;

        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[j], names[i]) == 0) {
                rc = rd_error_set(err, RD_EINVAL, "module '%s' is listed twice in modules",
                                  names[i]);
                goto out;
            }
        }
        if (!loader_valid_name(names[i])) {
            rc = rd_error_set(err, RD_EINVAL,
                              "module name '%s' is not valid (lowercase letters, digits, _)",
                              names[i]);
            goto out;
        }
        m = calloc(1, sizeof(*m));
        if (!m) {
            rc = rd_error_set(err, RD_ENOMEM, "out of memory");
            goto out;
        }
        rc = host_module_init(h, m, names[i], err);
        if (rc != RD_OK) {
            free(m);
            goto out;
        }
        h->mods[h->n_mods++] = m;
        rc = loader_open(m, h->conf.module_dir, err);
        if (rc == RD_OK)
            rc = daemon_module_conf(h, m, err);
        if (rc != RD_OK)
            goto out;
        log_msg("core", RD_DEBUG, "module %s %s from %s", m->name, m->desc->version, m->so_path);
        rc = m->desc->init(&m->pub, &m->mod);
        if (rc != RD_OK) {
            /* Its own reason is in the log lines just above; the state stays
               LOADED so that destroy is never called on a failed init. */
            rd_error_set(err, rc,
                         "module '%s' failed to initialise: %s (%d); see its log "
                         "lines above",
                         m->name, rd_strerror(rc), rc);
            m->mod = NULL;
            goto out;
        }
        m->state = MODULE_INITIALIZED;
        left = cfg_file_unused(m->conf);
        if (left) {
            rc = rd_error_set(err, RD_EINVAL,
                              "module '%s': %s: '%s' in [%s] is not a setting "
                              "of this module",
                              m->name, left->origin, left->key,
                              left->section[0] ? left->section : m->name);
            goto out;
        }
    }
out:
    free(names);
    free(buf);
    return rc;
}

static int daemon_start_modules(struct host *h, struct rd_error *err)
{
    for (size_t i = 0; i < h->n_mods; i++) {
        struct host_module *m = h->mods[i];
        for (const char *const *need = m->desc->needs; need && *need; need++) {
            if (!host_api.service_get(&m->pub, *need, 0))
                return rd_error_set(err, RD_EUNAVAIL,
                                    "module '%s' needs service '%s', which no loaded module "
                                    "provides",
                                    m->name, *need);
        }
    }
    for (size_t i = 0; i < h->n_mods; i++) {
        struct host_module *m = h->mods[i];
        int rc = m->desc->start(m->mod);
        if (rc != RD_OK) {
            /* Stays INITIALIZED: not stopped, but destroyed. */
            return rd_error_set(err, rc, "module '%s' failed to start: %s (%d)", m->name,
                                rd_strerror(rc), rc);
        }
        m->state = MODULE_STARTED;
        log_msg("core", RD_INFO, "module %s %s started", m->name, m->desc->version);
    }
    return RD_OK;
}

/* Stops started modules in reverse order, finishes pool work, drops every
   registration, destroys modules in reverse order. */
static void daemon_unload_modules(struct host *h)
{
    for (size_t i = h->n_mods; i-- > 0;) {
        struct host_module *m = h->mods[i];
        if (m->state == MODULE_STARTED) {
            m->desc->stop(m->mod);
            m->state = MODULE_STOPPED;
            log_msg("core", RD_INFO, "module %s stopped", m->name);
        }
    }
    if (h->pool)
        pool_stop(h->pool);
    if (h->loopq)
        loopq_drain(h->loopq);
    for (size_t i = h->n_mods; i-- > 0;)
        host_module_drop(h->mods[i]);
    host_module_drop(&h->core);
    if (h->loopq)
        loopq_drain(h->loopq);
    for (size_t i = h->n_mods; i-- > 0;) {
        struct host_module *m = h->mods[i];
        if (m->desc && m->state != MODULE_LOADED)
            m->desc->destroy(m->mod);
        m->mod = NULL;
        loader_close(m);
        host_module_fini(m);
        free(m);
    }
    free(h->mods);
    h->mods = NULL;
    h->n_mods = 0;
}

/* ------------------------------------------------------------ signals */

static void *daemon_watchdog(void *arg)
{
    struct daemon *d = arg;
    uint64_t ms = d->h.conf.shutdown_timeout_ms;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    /* Cancelled at the end of a clean shutdown; if it fires, something hangs. */
    nanosleep(&ts, NULL);
    log_msg("core", RD_ERROR, "shutdown took longer than %llu ms; exiting now",
            (unsigned long long)ms);
    _exit(1);
    return NULL;
}

static void daemon_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;

    if (atomic_exchange(&d->h.stopping, true))
        return;
    log_msg("core", RD_INFO, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&d->h.ready, false);
    if (d->h.conf.shutdown_timeout_ms > 0 &&
        pthread_create(&d->watchdog, NULL, daemon_watchdog, d) == 0)
        d->has_watchdog = true;
    event_base_loopexit(d->h.base, NULL);
}

/* Compares a key that reload cannot change and says so. */
static void daemon_reload_note(struct cfg_file *old, struct cfg_file *new, const char *section,
                               const char *key)
{
    const struct cfg_entry *a = cfg_file_get(old, section, key);
    const struct cfg_entry *b = cfg_file_get(new, section, key);
    const char *va = a ? a->value : "", *vb = b ? b->value : "";

    if (strcmp(va, vb) != 0)
        log_msg("core", RD_WARN, "%s.%s changed ('%s' -> '%s'): restart relengd to apply", section,
                key, va, vb);
}

static bool daemon_files_differ(const struct cfg_file *a, const struct cfg_file *b)
{
    if (a->n != b->n)
        return true;
    for (size_t i = 0; i < a->n; i++) {
        const struct cfg_entry *e = cfg_file_get(b, a->v[i].section, a->v[i].key);
        if (!e || strcmp(e->value, a->v[i].value) != 0)
            return true;
    }
    return false;
}

static void daemon_reload_module(struct host *h, struct host_module *m)
{
    struct rd_error err = {0};
    struct cfg_file *old = m->conf;
    int rc;

    m->conf = NULL;
    rc = daemon_module_conf(h, m, &err);
    if (rc != RD_OK) {
        log_msg("core", RD_ERROR, "reload: module %s: %s; keeping its old configuration", m->name,
                err.msg);
        cfg_file_free(m->conf);
        m->conf = old;
        return;
    }
    if (!daemon_files_differ(old, m->conf)) {
        cfg_file_free(old);
        return;
    }
    if (!m->desc->reload) {
        log_msg("core", RD_WARN,
                "reload: module %s cannot reload its configuration: restart relengd to apply "
                "%s",
                m->name, m->conf->path);
        cfg_file_free(m->conf);
        m->conf = old;
        return;
    }
    rc = m->desc->reload(m->mod);
    if (rc != RD_OK) {
        log_msg("core", RD_ERROR,
                "reload: module %s refused its new configuration (%s); "
                "keeping the old one",
                m->name, rd_strerror(rc));
        cfg_file_free(m->conf);
        m->conf = old;
        return;
    }
    log_msg("core", RD_INFO, "reload: module %s reloaded %s", m->name, m->conf->path);
    cfg_file_free(old);
}

static void daemon_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct host *h = &d->h;
    struct core_conf conf;
    struct cfg_file *file = NULL;
    struct webhook_conf *hooks = NULL;
    size_t n_hooks = 0;
    struct rd_error err = {0};
    enum rd_level lv;
    static const char *const fixed[][2] = {
        {"relengd", "state_dir"},    {"relengd", "module_dir"},   {"relengd", "modules"},
        {"relengd", "modules_conf"}, {"relengd", "pool_threads"}, {"http", "listen"},
        {"http", "threads"},         {"http", "tls_cert"},        {"http", "web_root"},
        {"http", "request_timeout"}, {"http", "keep_alive"},      {"store", "busy_timeout"},
        {"store", "synchronous"},    {"auth", "admin_token"},
    };
    (void)sig;
    (void)what;

    log_msg("core", RD_INFO, "SIGHUP: reloading %s", h->config_path);
    if (core_conf_read(d->cli, &file, &conf, &h->strings, &err) != RD_OK) {
        log_msg("core", RD_ERROR, "reload: %s; keeping the running configuration", err.msg);
        return;
    }
    if (core_conf_webhooks(file, &hooks, &n_hooks, &h->strings, &err) != RD_OK) {
        log_msg("core", RD_ERROR, "reload: %s; keeping the running configuration", err.msg);
        cfg_file_free(file);
        return;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        daemon_reload_note(h->core_cfg, file, fixed[i][0], fixed[i][1]);
    if (log_level_parse(conf.log_level, &lv) == RD_OK && lv != log_get_level()) {
        log_set_level(lv);
        log_msg("core", RD_INFO, "reload: log_level is now %s", conf.log_level);
    }
    h->conf.log_level = conf.log_level;
    if (conf.anonymous_read != h->conf.anonymous_read) {
        auth_set_anonymous_read(h->auth, conf.anonymous_read);
        log_msg("core", RD_INFO, "reload: auth.anonymous_read is now %s",
                conf.anonymous_read ? "yes" : "no");
    }
    h->conf.anonymous_read = conf.anonymous_read;
    if (metrics_statsd(h->metrics, conf.statsd, conf.statsd_namespace, conf.statsd_tags, &err) !=
        RD_OK)
        log_msg("core", RD_ERROR, "reload: statsd: %s", err.msg);
    h->conf.statsd = conf.statsd;
    h->conf.statsd_namespace = conf.statsd_namespace;
    h->conf.statsd_tags = conf.statsd_tags;
    h->conf.events_retention_ms = conf.events_retention_ms;
    h->conf.events_keep_min = conf.events_keep_min;
    h->conf.shutdown_timeout_ms = conf.shutdown_timeout_ms;
    if (webhooks_configure(h->webhooks, hooks, n_hooks, &err) != RD_OK)
        log_msg("core", RD_ERROR, "reload: webhooks: %s", err.msg);
    free(hooks);
    cfg_file_free(h->core_cfg);
    h->core_cfg = file;
    for (size_t i = 0; i < h->n_mods; i++)
        daemon_reload_module(h, h->mods[i]);
    log_msg("core", RD_INFO, "reload done");
}

static void daemon_on_prune(evutil_socket_t fd, short what, void *arg)
{
    struct host *h = arg;
    int n;
    (void)fd;
    (void)what;

    n = bus_prune(h->store, host_clock_ms(), h->conf.events_retention_ms,
                  (uint64_t)h->conf.events_keep_min);
    if (n > 0)
        log_msg("core", RD_INFO, "pruned %d events older than the retention", n);
    else if (n < 0)
        log_msg("core", RD_WARN, "pruning events failed: %s", rd_strerror(n));
}

static void daemon_on_commit(void *arg, const json_t *events)
{
    struct host *h = arg;

    bus_committed(h->bus, events);
    /* Webhooks read the table themselves; only wake them (loop thread). */
    if (h->webhooks && loopq_push(h->loopq, (void (*)(void *))webhooks_kick, h->webhooks) != RD_OK)
        log_msg("core", RD_WARN, "could not wake webhook deliveries");
}

/* ------------------------------------------------------------ start/stop */

static int daemon_open_core(struct daemon *d, struct rd_error *err)
{
    struct host *h = &d->h;
    struct store_conf sc;
    struct auth_conf ac;
    struct webhook_conf *hooks = NULL;
    size_t n_hooks = 0;
    char db_path[4200];
    uint64_t last = 0;
    int threads, rc;

    h->base = event_base_new();
    if (!h->base)
        return rd_error_set(err, RD_ENOMEM, "cannot create the event loop");
    rc = loopq_new(h->base, &h->loopq);
    if (rc == RD_OK)
        rc = metrics_new(&host_api, &h->metrics);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "out of memory");
    rc = metrics_statsd(h->metrics, h->conf.statsd, h->conf.statsd_namespace, h->conf.statsd_tags,
                        err);
    if (rc != RD_OK)
        return rc;

    snprintf(db_path, sizeof(db_path), "%s/relengd.db", h->conf.state_dir);
    sc.path = db_path;
    sc.busy_timeout_ms = h->conf.busy_timeout_ms;
    sc.sync_full = h->conf.sync_full;
    rc = store_open(&sc, &h->store, err);
    if (rc != RD_OK)
        return rc;
    rc = bus_new(h->loopq, &h->bus);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot create the event bus");
    rc = bus_max_id(h->store, &last);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot read the events table of %s", db_path);
    bus_set_last_id(h->bus, last);
    store_set_commit_hook(h->store, daemon_on_commit, h);

    threads =
        h->conf.pool_threads > 0 ? (int)h->conf.pool_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    rc = pool_new(threads, h->loopq, &h->pool);
    if (rc == RD_OK)
        rc = timers_new(h->base, &host_api, &h->timers);
    if (rc == RD_OK)
        rc = fetch_new(h->base, &h->fetch);
    if (rc == RD_OK)
        rc = router_new(&h->router);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot set up threads, timers, fetches or routes");
    ac.anonymous_read = h->conf.anonymous_read;
    ac.admin_token = h->conf.admin_token;
    rc = auth_new(h->store, &ac, &h->auth, err);
    if (rc != RD_OK)
        return rc;
    rc = webhooks_new(h->base, h->store, h->bus, h->fetch, h->metrics, &h->webhooks);
    if (rc != RD_OK)
        return rd_error_set(err, rc, "cannot set up webhooks");
    rc = core_conf_webhooks(h->core_cfg, &hooks, &n_hooks, &h->strings, err);
    if (rc == RD_OK)
        rc = webhooks_configure(h->webhooks, hooks, n_hooks, err);
    free(hooks);
    return rc;
}

static void daemon_close_core(struct daemon *d)
{
    struct host *h = &d->h;

    /* No more commits may queue webhook wake-ups once webhooks are gone. */
    if (h->store)
        store_set_commit_hook(h->store, NULL, NULL);
    if (h->loopq)
        loopq_drain(h->loopq);
    webhooks_free(h->webhooks);
    h->webhooks = NULL;
    fetch_free(h->fetch);
    h->fetch = NULL;
    timers_free(h->timers);
    h->timers = NULL;
    if (h->pool) {
        pool_stop(h->pool);
        pool_free(h->pool);
        h->pool = NULL;
    }
    if (h->loopq)
        loopq_drain(h->loopq);
    /* The router waits for handlers the HTTP grace gave up on: before
       anything they may use is freed. */
    router_free(h->router);
    h->router = NULL;
    auth_free(h->auth);
    h->auth = NULL;
    bus_free(h->bus);
    h->bus = NULL;
    store_close(h->store);
    h->store = NULL;
    metrics_free(h->metrics);
    h->metrics = NULL;
    loopq_free(h->loopq);
    h->loopq = NULL;
    if (h->base)
        event_base_free(h->base);
    h->base = NULL;
}

static int daemon_signals(struct daemon *d)
{
    struct host *h = &d->h;

    d->sig_term = evsignal_new(h->base, SIGTERM, daemon_on_stop, d);
    d->sig_int = evsignal_new(h->base, SIGINT, daemon_on_stop, d);
    d->sig_hup = evsignal_new(h->base, SIGHUP, daemon_on_hup, d);
    d->prune = event_new(h->base, -1, EV_PERSIST, daemon_on_prune, h);
    if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->prune)
        return RD_ENOMEM;
    {
        struct timeval tv = {DAEMON_PRUNE_MS / 1000, 0};
        if (evsignal_add(d->sig_term, NULL) || evsignal_add(d->sig_int, NULL) ||
            evsignal_add(d->sig_hup, NULL) || event_add(d->prune, &tv))
            return RD_EIO;
    }
    return RD_OK;
}

static void daemon_free_signals(struct daemon *d)
{
    struct event *evs[] = {d->sig_term, d->sig_int, d->sig_hup, d->prune};

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    d->sig_term = d->sig_int = d->sig_hup = d->prune = NULL;
}

static int daemon_load_config(struct daemon *d, struct rd_error *err)
{
    struct host *h = &d->h;
    enum rd_level lv;
    char *dir;
    int rc;

    rc = core_conf_read(d->cli, &h->core_cfg, &h->conf, &h->strings, err);
    if (rc != RD_OK)
        return rc;
    if (log_level_parse(h->conf.log_level, &lv) != RD_OK) {
        const struct cfg_entry *e = cfg_file_get(h->core_cfg, "relengd", "log_level");
        return rd_error_set(err, RD_EINVAL,
                            "%s: log_level = '%s' is not debug, info, warn or "
                            "error",
                            e ? e->origin : d->cli->config, h->conf.log_level);
    }
    log_set_level(lv);
    h->config_path = strdup(d->cli->config);
    dir = core_conf_dir(d->cli->config);
    if (!h->config_path || !dir) {
        free(dir);
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    }
    h->config_dir = dir;
    if (h->conf.modules_conf[0] != '/') {
        size_t n = strlen(dir) + strlen(h->conf.modules_conf) + 2;
        char *p = malloc(n);
        if (!p)
            return rd_error_set(err, RD_ENOMEM, "out of memory");
        snprintf(p, n, "%s/%s", dir, h->conf.modules_conf);
        h->conf.modules_conf = cfg_strings_keep(&h->strings, p);
        if (!h->conf.modules_conf)
            return rd_error_set(err, RD_ENOMEM, "out of memory");
    }
    return RD_OK;
}

static void daemon_free_config(struct daemon *d)
{
    struct host *h = &d->h;

    cfg_file_free(h->core_cfg);
    h->core_cfg = NULL;
    cfg_strings_free(&h->strings);
    free(h->config_path);
    free(h->config_dir);
    h->config_path = h->config_dir = NULL;
}

int daemon_run(const struct core_cli *cli)
{
    struct daemon d;
    struct host *h = &d.h;
    struct rd_error err = {0};
    bool core_ready = false;
    int rc;

    memset(&d, 0, sizeof(d));
    d.cli = cli;
    d.lock_fd = -1;
    d.exit_status = 1;
    pthread_mutex_init(&h->lock, NULL);
    h->ready_ports = json_object();
    h->started_ms = host_clock_ms();
    signal(SIGPIPE, SIG_IGN);
    if (!h->ready_ports || evthread_use_pthreads() != 0) {
        rd_error_set(&err, RD_ENOMEM, "cannot set up threads for the event loop");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rd_error_set(&err, RD_EIO, "curl_global_init failed");
        goto out;
    }

    rc = daemon_load_config(&d, &err);
    if (rc == RD_OK)
        rc = daemon_mkdirs(h->conf.state_dir, &err);
    if (rc == RD_OK)
        rc = daemon_lock_state(&d, &err);
    if (rc == RD_OK)
        rc = daemon_open_core(&d, &err);
    if (rc == RD_OK)
        rc = host_module_init(h, &h->core, "core", &err);
    if (rc != RD_OK)
        goto out;
    core_ready = true;
    rc = daemon_init_modules(h, &err);
    if (rc == RD_OK)
        rc = daemon_start_modules(h, &err);
    if (rc == RD_OK)
        rc = host_core_routes(h);
    if (rc == RD_OK)
        rc = daemon_signals(&d);
    if (rc != RD_OK) {
        if (err.msg[0] == '\0')
            rd_error_set(&err, rc, "cannot set up the core: %s", rd_strerror(rc));
        goto out;
    }
    rc = http_start(h, &h->conf.http, &h->http, &err);
    if (rc != RD_OK)
        goto out;
    atomic_store(&h->ready, true);
    rc = daemon_write_ready(&d, &err);
    if (rc != RD_OK)
        goto out;
    log_msg("core", RD_INFO, "relengd %s ready: %s port %d (%zu modules, state %s)",
            PACKAGE_VERSION, http_is_tls(h->http) ? "https" : "http", http_port(h->http), h->n_mods,
            h->conf.state_dir);

    event_base_dispatch(h->base);
    d.exit_status = 0;

out:
    if (d.exit_status != 0 && err.msg[0])
        log_msg("core", RD_ERROR, "relengd cannot start: %s", err.msg);
    atomic_store(&h->stopping, true);
    atomic_store(&h->ready, false);
    if (h->bus)
        bus_shutdown(h->bus);
    if (h->http) {
        http_stop(h->http);
        h->http = NULL;
    }
    if (core_ready)
        daemon_unload_modules(h);
    if (core_ready)
        host_module_fini(&h->core);
    daemon_free_signals(&d);
    daemon_close_core(&d);
    if (h->conf.ready_file && h->conf.ready_file[0] && d.exit_status == 0)
        unlink(h->conf.ready_file);
    daemon_free_config(&d);
    free(h->services);
    json_decref(h->ready_ports);
    pthread_mutex_destroy(&h->lock);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    curl_global_cleanup();
    libevent_global_shutdown();
    if (d.exit_status == 0)
        log_msg("core", RD_INFO, "relengd stopped");
    if (d.has_watchdog) {
        pthread_cancel(d.watchdog);
        pthread_join(d.watchdog, NULL);
    }
    return d.exit_status;
}

/* ------------------------------------------------- config-only commands */

int daemon_check_config(const struct core_cli *cli)
{
    struct daemon d;
    struct host *h = &d.h;
    struct rd_error err = {0};
    struct webhook_conf *hooks = NULL;
    size_t n_hooks = 0, n = 0;
    char *buf = NULL, **names = NULL;
    int status = 1;

    memset(&d, 0, sizeof(d));
    d.cli = cli;
    if (daemon_load_config(&d, &err) != RD_OK ||
        core_conf_webhooks(h->core_cfg, &hooks, &n_hooks, &h->strings, &err) != RD_OK)
        goto out;
    if (daemon_split_modules(h->conf.modules, &buf, &names, &n) != RD_OK) {
        rd_error_set(&err, RD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct host_module m;
        int rc;

        memset(&m, 0, sizeof(m));
        m.host = h;
        m.name = names[i];
        rc = loader_open(&m, h->conf.module_dir, &err);
        if (rc == RD_OK)
            rc = daemon_module_conf(h, &m, &err);
        if (rc == RD_OK && m.desc->keys) {
            /* Validate the main section against the module's own table. */
            struct cfg_strings strings = {0};
            size_t size = 0;
            char *scratch, section[64];
            for (const struct rd_cfg_key *k = m.desc->keys; k->name; k++)
                if (k->offset + sizeof(uint64_t) > size)
                    size = k->offset + sizeof(uint64_t);
            scratch = calloc(1, size ? size : 1);
            snprintf(section, sizeof(section), "|%s", m.name);
            rc = scratch ? cfg_apply(m.conf, section, m.desc->keys, scratch, "/", &strings, &err)
                         : RD_ENOMEM;
            cfg_strings_free(&strings);
            free(scratch);
        }
        cfg_file_free(m.conf);
        json_decref(m.openapi);
        free(m.so_path);
        loader_close(&m);
        if (rc != RD_OK)
            goto out;
        printf("module %s: ok\n", names[i]);
    }
    printf("%s: ok (%zu modules, %zu webhooks)\n", cli->config, n, n_hooks);
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "relengd: %s\n", err.msg);
    free(names);
    free(buf);
    free(hooks);
    daemon_free_config(&d);
    return status;
}

int daemon_print_sample(const struct core_cli *cli, const char *name)
{
    struct daemon d;
    struct host *h = &d.h;
    struct host_module m;
    struct rd_error err = {0};
    int status = 1;

    memset(&d, 0, sizeof(d));
    memset(&m, 0, sizeof(m));
    d.cli = cli;
    if (strcmp(name, "core") == 0)
        return core_conf_sample(stdout) == RD_OK ? 0 : 1;
    if (daemon_load_config(&d, &err) != RD_OK)
        goto out;
    m.host = h;
    m.name = (char *)name;
    if (loader_open(&m, h->conf.module_dir, &err) != RD_OK)
        goto out;
    printf("# %s %s: etc/modules.d/%s.conf\n", name, m.desc->version, name);
    status = cfg_write_sample(stdout, NULL, m.desc->keys) == RD_OK ? 0 : 1;
out:
    if (status != 0 && err.msg[0])
        fprintf(stderr, "relengd: %s\n", err.msg);
    json_decref(m.openapi);
    free(m.so_path);
    loader_close(&m);
    daemon_free_config(&d);
    return status;
}
