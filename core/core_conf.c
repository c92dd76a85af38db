/* SPDX-License-Identifier: MIT */
/*
 * core/core_conf.c -- relengd.conf: the key tables of each core section with
 * their defaults, and the layering of environment and command line on top
 * of the file. Defaults run on one machine with nothing else installed.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_conf.h"

extern char **environ;

static const struct rd_cfg_key core_keys[] = {
    RD_CFG_STRING("state_dir", struct core_conf, state_dir, "state",
                  "where the database and module state live (relative to the working directory)"),
    RD_CFG_STRING("module_dir", struct core_conf, module_dir, MODULE_DIR,
                  "where module .so files are looked up; a colon-separated list"),
    RD_CFG_STRING("modules", struct core_conf, modules, "",
                  "modules to load, in start order, separated by spaces or commas"),
    RD_CFG_STRING("modules_conf", struct core_conf, modules_conf, "modules.d",
                  "directory of <module>.conf files, relative to this file"),
    RD_CFG_STRING("log_level", struct core_conf, log_level, "info", "debug, info, warn or error"),
    RD_CFG_STRING("ready_file", struct core_conf, ready_file, "",
                  "written with the bound ports once serving (for tests and supervisors)"),
    RD_CFG_DURATION("shutdown_timeout", struct core_conf, shutdown_timeout_ms, "20s",
                    "the whole shutdown may take this long before the process exits anyway"),
    RD_CFG_INT("pool_threads", struct core_conf, pool_threads, "0",
               "threads for CPU work; 0 = one per core"),
    RD_CFG_END,
};

static const struct rd_cfg_key http_keys[] = {
    RD_CFG_STRING("listen", struct core_conf, http.listen, "127.0.0.1:8080",
                  "address:port of the dashboard and API; port 0 picks a free port"),
    RD_CFG_INT("threads", struct core_conf, http.threads, "32",
               "HTTP worker threads (each SSE client holds one)"),
    RD_CFG_INT("max_streams", struct core_conf, http.max_streams, "0",
               "event streams and long-polls at once (each holds a thread); 0 = threads / 2"),
    RD_CFG_DURATION("request_timeout", struct core_conf, http.request_timeout_ms, "30s",
                    "how long a client may take to send a request"),
    RD_CFG_DURATION("keep_alive", struct core_conf, http.keep_alive_ms, "5s",
                    "idle keep-alive connections are closed after this; 0 = no keep-alive"),
    RD_CFG_SIZE("max_body", struct core_conf, http.max_body, "1MiB",
                "largest JSON request body accepted (413 above)"),
    RD_CFG_STRING("web_root", struct core_conf, http.web_root, "web",
                  "dashboard files (relative to the working directory)"),
    RD_CFG_STRING("tls_cert", struct core_conf, http.tls_cert, "",
                  "PEM file with certificate and key: serve HTTPS instead of HTTP"),
    RD_CFG_DURATION("shutdown_grace", struct core_conf, http.shutdown_grace_ms, "10s",
                    "in-flight requests get this long to finish at shutdown"),
    RD_CFG_END,
};

static const struct rd_cfg_key auth_keys[] = {
    RD_CFG_BOOL("anonymous_read", struct core_conf, anonymous_read, "yes",
                "GET requests need no token"),
    RD_CFG_STRING("admin_token", struct core_conf, admin_token, "",
                  "a token (rd_ + 43 base64url chars) made an admin token at start"),
    RD_CFG_END,
};

static const struct rd_cfg_key store_keys[] = {
    RD_CFG_DURATION("busy_timeout", struct core_conf, busy_timeout_ms, "5s",
                    "how long a database call waits for a lock"),
    RD_CFG_STRING("synchronous", struct core_conf, synchronous, "full",
                  "full (survives power loss) or normal (survives a crash)"),
    RD_CFG_END,
};

static const struct rd_cfg_key events_keys[] = {
    RD_CFG_DURATION("retention", struct core_conf, events_retention_ms, "30d",
                    "events older than this are deleted"),
    RD_CFG_INT("keep_min", struct core_conf, events_keep_min, "10000",
               "but the newest this many are always kept"),
    RD_CFG_END,
};

static const struct rd_cfg_key statsd_keys[] = {
    RD_CFG_STRING("address", struct core_conf, statsd, "",
                  "host:port of a StatsD/DogStatsD server (UDP); empty = off"),
    RD_CFG_STRING("namespace", struct core_conf, statsd_namespace, "releng",
                  "prefix of every StatsD metric"),
    RD_CFG_STRING("tags", struct core_conf, statsd_tags, "",
                  "DogStatsD tags added to every metric, k:v,k:v"),
    RD_CFG_END,
};

static const struct rd_cfg_key webhook_keys[] = {
    RD_CFG_STRING("url", struct webhook_conf, url, NULL, "where events are POSTed"),
    RD_CFG_STRING("secret", struct webhook_conf, secret, "",
                  "HMAC-SHA256 key for X-Relengd-Signature"),
    RD_CFG_STRING("types", struct webhook_conf, types, "",
                  "event types to send (prefixes, comma-separated); empty = all"),
    RD_CFG_DURATION("timeout", struct webhook_conf, timeout_ms, "10s", "per delivery"),
    RD_CFG_INT("max_attempts", struct webhook_conf, max_attempts, "10",
               "deliveries of one event before it is skipped"),
    RD_CFG_END,
};

struct core_section {
    const char *name;
    const struct rd_cfg_key *keys;
};

static const struct core_section core_sections[] = {
    {"relengd", core_keys}, {"http", http_keys},     {"auth", auth_keys},
    {"store", store_keys},  {"events", events_keys}, {"statsd", statsd_keys},
};

/* Environment variable -> section.key. */
static const struct {
    const char *env, *section, *key;
} core_env[] = {
    {"RELENGD_STATE_DIR", "relengd", "state_dir"},
    {"RELENGD_MODULE_DIR", "relengd", "module_dir"},
    {"RELENGD_MODULES", "relengd", "modules"},
    {"RELENGD_LOG_LEVEL", "relengd", "log_level"},
    {"RELENGD_READY_FILE", "relengd", "ready_file"},
    {"RELENGD_LISTEN", "http", "listen"},
    {"RELENGD_WEB_ROOT", "http", "web_root"},
    {"RELENGD_ADMIN_TOKEN", "auth", "admin_token"},
};

char *core_conf_dir(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int core_conf_set_arg(struct cfg_file *f, const char *arg, struct rd_error *err)
{
    const char *dot = strchr(arg, '.'), *eq = strchr(arg, '=');
    char *section = NULL, *key = NULL;
    int rc;

    if (!dot || !eq || dot > eq || dot == arg || eq == dot + 1)
        return rd_error_set(err, RD_EINVAL, "--set %s: expected section.key=value", arg);
    section = strndup(arg, (size_t)(dot - arg));
    key = strndup(dot + 1, (size_t)(eq - dot - 1));
    if (!section || !key)
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
    else
        rc = cfg_file_set(f, section, key, eq + 1, "--set");
    free(section);
    free(key);
    return rc;
}

int core_conf_read(const struct core_cli *cli, struct cfg_file **file_out, struct core_conf *conf,
                   struct cfg_strings *strings, struct rd_error *err)
{
    struct cfg_file *f = NULL;
    int rc;

    rc = cfg_file_load(cli->config, &f, err);
    if (rc != RD_OK)
        return rc;
    for (size_t i = 0; i < sizeof(core_env) / sizeof(core_env[0]); i++) {
        const char *v = getenv(core_env[i].env);
        char origin[64];
        if (!v)
            continue;
        snprintf(origin, sizeof(origin), "env %s", core_env[i].env);
        rc = cfg_file_set(f, core_env[i].section, core_env[i].key, v, origin);
        if (rc != RD_OK)
            goto out;
    }
    {
        const struct {
            const char *v, *section, *key;
        } flags[] = {
            {cli->state_dir, "relengd", "state_dir"},   {cli->module_dir, "relengd", "module_dir"},
            {cli->modules, "relengd", "modules"},       {cli->log_level, "relengd", "log_level"},
            {cli->ready_file, "relengd", "ready_file"}, {cli->listen, "http", "listen"},
        };
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
            if (!flags[i].v)
                continue;
            rc = cfg_file_set(f, flags[i].section, flags[i].key, flags[i].v, "command line");
            if (rc != RD_OK)
                goto out;
        }
    }
    for (size_t i = 0; i < cli->n_sets; i++) {
        rc = core_conf_set_arg(f, cli->sets[i], err);
        if (rc != RD_OK)
            goto out;
    }

    memset(conf, 0, sizeof(*conf));
    for (size_t i = 0; i < sizeof(core_sections) / sizeof(core_sections[0]); i++) {
        rc = cfg_apply(f, core_sections[i].name, core_sections[i].keys, conf, NULL, strings, err);
        if (rc != RD_OK)
            goto out;
    }
    if (strcmp(conf->synchronous, "full") == 0) {
        conf->sync_full = true;
    } else if (strcmp(conf->synchronous, "normal") == 0) {
        conf->sync_full = false;
    } else {
        const struct cfg_entry *e = cfg_file_get(f, "store", "synchronous");
        rc = rd_error_set(err, RD_EINVAL, "%s: synchronous = '%s' is not full or normal",
                          e ? e->origin : f->path, conf->synchronous);
        goto out;
    }
    /* Webhook sections are read by core_conf_webhooks; mark them used here
       so that the leftover check only reports truly unknown sections. */
    for (size_t i = 0; i < f->n; i++)
        if (strncmp(f->v[i].section, "webhook.", 8) == 0)
            f->v[i].used = true;
    {
        const struct cfg_entry *left = cfg_file_unused(f);
        if (left) {
            rc = rd_error_set(err, RD_EINVAL,
                              "%s: unknown section [%s] (known: relengd, http, auth, store, "
                              "events, statsd, webhook.NAME)",
                              left->origin, left->section[0] ? left->section : "top level");
            goto out;
        }
    }
    if (conf->http.threads < 2 || conf->http.threads > 1024) {
        rc = rd_error_set(err, RD_EINVAL, "http.threads = %lld: must be 2..1024",
                          (long long)conf->http.threads);
        goto out;
    }
    if (conf->pool_threads < 0 || conf->pool_threads > 256) {
        rc = rd_error_set(err, RD_EINVAL, "relengd.pool_threads = %lld: must be 0..256",
                          (long long)conf->pool_threads);
        goto out;
    }
out:
    if (rc != RD_OK) {
        cfg_file_free(f);
        return rc;
    }
    *file_out = f;
    return RD_OK;
}

struct webhook_walk {
    struct cfg_file *f;
    struct webhook_conf *v;
    size_t n;
    struct cfg_strings *strings;
    struct rd_error *err;
};

static int core_conf_webhook_one(const char *section, void *arg)
{
    struct webhook_walk *w = arg;
    struct webhook_conf *v = realloc(w->v, (w->n + 1) * sizeof(*v));
    struct webhook_conf *c;
    int rc;

    if (!v)
        return rd_error_set(w->err, RD_ENOMEM, "out of memory");
    w->v = v;
    c = &w->v[w->n];
    memset(c, 0, sizeof(*c));
    rc = cfg_apply(w->f, section, webhook_keys, c, NULL, w->strings, w->err);
    if (rc != RD_OK)
        return rc;
    if (!c->url || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0))
        return rd_error_set(w->err, RD_EINVAL, "%s: [%s] needs url = http(s)://...", w->f->path,
                            section);
    if (c->max_attempts < 1)
        return rd_error_set(w->err, RD_EINVAL, "%s: [%s] max_attempts must be at least 1",
                            w->f->path, section);
    c->name = cfg_strings_keep(w->strings, strdup(section + strlen("webhook.")));
    if (!c->name)
        return rd_error_set(w->err, RD_ENOMEM, "out of memory");
    w->n++;
    return RD_OK;
}

int core_conf_webhooks(struct cfg_file *f, struct webhook_conf **out, size_t *n,
                       struct cfg_strings *strings, struct rd_error *err)
{
    struct webhook_walk w = {f, NULL, 0, strings, err};
    int rc = cfg_file_sections(f, "webhook.", core_conf_webhook_one, &w);

    if (rc != RD_OK) {
        free(w.v);
        return rc;
    }
    *out = w.v;
    *n = w.n;
    return RD_OK;
}

int core_conf_module_env(struct cfg_file *f, const char *module)
{
    char prefix[80];
    size_t plen;
    int n = snprintf(prefix, sizeof(prefix), "RELENGD_%s_", module);

    if (n < 0 || (size_t)n >= sizeof(prefix))
        return RD_EINVAL;
    for (char *p = prefix; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    plen = (size_t)n;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char key[128], origin[160];
        size_t klen;
        int rc;

        if (!eq || strncmp(*e, prefix, plen) != 0)
            continue;
        klen = (size_t)(eq - *e) - plen;
        if (klen == 0 || klen >= sizeof(key))
            continue;
        for (size_t i = 0; i < klen; i++)
            key[i] = (char)tolower((unsigned char)(*e)[plen + i]);
        key[klen] = '\0';
        snprintf(origin, sizeof(origin), "env %.*s", (int)(eq - *e), *e);
        rc = cfg_file_set(f, "", key, eq + 1, origin);
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}

int core_conf_sample(FILE *out)
{
    int rc = RD_OK;

    for (size_t i = 0; i < sizeof(core_sections) / sizeof(core_sections[0]) && rc == RD_OK; i++) {
        rc = cfg_write_sample(out, core_sections[i].name, core_sections[i].keys);
        fputc('\n', out);
    }
    if (rc == RD_OK)
        rc = cfg_write_sample(out, "webhook.NAME", webhook_keys);
    return rc;
}
