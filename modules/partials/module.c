/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/module.c -- the partials module's descriptor, config key
 * table, life cycle and status. init/start/stop/destroy run on the main
 * thread; status on HTTP threads. See README.md for the contract.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/module.h"
#include "modules/partials/partials.h"

const struct rd_cfg_key partials_keys[] = {
    RD_CFG_PATH("jobs_dir", struct partials_conf, jobs_dir, "jobs",
                "job inputs and results, one directory per job (under the state dir)"),
    RD_CFG_PATH("uploads_dir", struct partials_conf, uploads_dir, "uploads",
                "uploaded MARs, named by their SHA-256"),
    RD_CFG_PATH("cache_dir", struct partials_conf, cache_dir, "cache", "the diff cache's patches"),
    RD_CFG_SIZE("cache_max_bytes", struct partials_conf, cache_max_bytes, "4GiB",
                "diff cache size cap; least recently used entries are evicted above it"),
    RD_CFG_SIZE("cache_min_size", struct partials_conf, cache_min_size, "64KiB",
                "files smaller than this are diffed every time, never cached (see README)"),
    RD_CFG_SIZE("max_upload", struct partials_conf, max_upload, "500MiB",
                "largest MAR accepted by upload or download"),
    RD_CFG_DURATION("fetch_timeout", struct partials_conf, fetch_timeout_ms, "10m",
                    "time limit of one MAR download"),
    RD_CFG_STRING("fetch_proxy", struct partials_conf, fetch_proxy, "",
                  "proxy for MAR downloads, e.g. the proxy module's http://127.0.0.1:3128"),
    RD_CFG_STRING("format", struct partials_conf, format, "xz",
                  "default partial format: xz (updatev3) or bz2 (updatev2+v3, Firefox < 56)"),
    RD_CFG_INT("xz_preset", struct partials_conf, xz_preset, "6", "xz level 0-9 for patches"),
    RD_CFG_BOOL("xz_extreme", struct partials_conf, xz_extreme, "no",
                "xz -e for patches (Mozilla's packaging uses -7e; slower)"),
    RD_CFG_STRING("main_exe", struct partials_conf, main_exe, "firefox.exe",
                  "top-level executable whose manifest lines go last"),
    RD_CFG_STRING("forced", struct partials_conf, forced, "Contents/MacOS/firefox",
                  "space-separated paths always shipped whole (the script's -f)"),
    RD_CFG_STRING("remote_cache", struct partials_conf, remote_cache, "",
                  "shared cache base URL (http/https, PUT and GET); empty: none"),
    RD_CFG_STRING("remote_kind", struct partials_conf, remote_kind, "http",
                  "remote cache protocol: http (plain PUT/GET) or s3 (AWS SigV4)"),
    RD_CFG_STRING("s3_region", struct partials_conf, s3_region, "us-east-1", "S3 region for SigV4"),
    RD_CFG_STRING("s3_access_key", struct partials_conf, s3_access_key, "", "S3 access key id"),
    RD_CFG_STRING("s3_secret_key", struct partials_conf, s3_secret_key, "", "S3 secret key"),
    RD_CFG_DURATION("remote_timeout", struct partials_conf, remote_timeout_ms, "30s",
                    "time limit of one remote cache request"),
    RD_CFG_STRING("signing_key", struct partials_conf, signing_key, "",
                  "key name for the signing service; empty: its default MAR key"),
    RD_CFG_END,
};

static int check_conf(struct partials *p, struct rd_error *err)
{
    const struct partials_conf *c = &p->conf;

    if (strcmp(c->format, "xz") != 0 && strcmp(c->format, "bz2") != 0)
        return rd_error_set(err, RD_EINVAL, "format must be xz or bz2, not \"%s\"", c->format);
    if (c->xz_preset < 0 || c->xz_preset > 9)
        return rd_error_set(err, RD_EINVAL, "xz_preset must be 0 to 9");
    if (strcmp(c->remote_kind, "http") != 0 && strcmp(c->remote_kind, "s3") != 0)
        return rd_error_set(err, RD_EINVAL, "remote_kind must be http or s3");
    if (*c->remote_cache && !partials_url_ok(c->remote_cache))
        return rd_error_set(err, RD_EINVAL, "remote_cache must be an http:// or https:// URL");
    if (strcmp(c->remote_kind, "s3") == 0 && *c->remote_cache &&
        (!*c->s3_access_key || !*c->s3_secret_key))
        return rd_error_set(err, RD_EINVAL,
                            "remote_kind = s3 needs s3_access_key and "
                            "s3_secret_key");
    if (c->max_upload < 1)
        return rd_error_set(err, RD_EINVAL, "max_upload must be at least 1 byte");
    return RD_OK;
}

static int make_dir(struct rd_host *h, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rd_log(h, RD_ERROR, "cannot create %s: %s", dir, strerror(errno));
        return RD_EIO;
    }
    return RD_OK;
}

static void partials_destroy(void *mod)
{
    struct partials *p = mod;

    if (!p)
        return;
    partials_jobs_free(p);
    partials_cache_free(p->cache);
    partials_strv_free(p->forced);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int partials_init(struct rd_host *h, void **out)
{
    struct partials *p = calloc(1, sizeof(*p));
    struct rd_error err = {0};
    int rc;

    if (!p)
        return RD_ENOMEM;
    p->h = h;
    pthread_mutex_init(&p->lock, NULL);
    rc = rd_config_load(h, NULL, partials_keys, &p->conf, &err);
    if (rc == RD_OK)
        rc = check_conf(p, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    p->forced = partials_split_words(p->conf.forced);
    if (!p->forced) {
        rc = RD_ENOMEM;
        goto out;
    }
    rc = rd_store_migrate(h, partials_migrations, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "migration: %s", err.msg);
        goto out;
    }
    rc = make_dir(h, p->conf.jobs_dir);
    if (rc == RD_OK)
        rc = make_dir(h, p->conf.uploads_dir);
    if (rc == RD_OK)
        rc = partials_cache_new(h, &p->conf, &p->cache);
    if (rc != RD_OK)
        goto out;
#define M(field, kind, name, help, tags)                                                           \
    if (!(p->field = rd_metric(h, kind, name, help, tags))) {                                      \
        rc = RD_ENOMEM;                                                                            \
        goto out;                                                                                  \
    }
    M(m_done, RD_COUNTER, "jobs", "finished partial jobs", "result=done");
    M(m_failed, RD_COUNTER, "jobs", "finished partial jobs", "result=failed");
    M(m_running, RD_GAUGE, "jobs_active", "jobs queued or running", NULL);
    M(m_uploads, RD_COUNTER, "uploads", "MARs uploaded through POST /uploads", NULL);
    M(m_partial_bytes, RD_COUNTER, "partial_bytes", "bytes of partial MARs produced", NULL);
#undef M
    *out = p;
    p = NULL;
out:
    partials_destroy(p);
    return rc;
}

static int partials_start(void *mod)
{
    struct partials *p = mod;
    json_t *left = NULL, *row;
    size_t i;
    int rc;

    rc = partials_routes(p);
    if (rc != RD_OK) {
        rd_log(p->h, RD_ERROR, "cannot register routes (error %d)", rc);
        return rc;
    }
    /* the signing module may not be loaded (or written): then partials are
       published unsigned */
    p->signer = rd_service_get(p->h, PARTIALS_SIGNING_SERVICE, PARTIALS_SIGNING_VERSION);
    if (p->signer && !p->signer->sign_mar)
        p->signer = NULL;
    /* jobs the last run did not finish start again from their inputs */
    rc = partials_jobs_unfinished(p, &left);
    if (rc != RD_OK)
        return rc;
    json_array_foreach(left, i, row)
    {
        rc = partials_job_launch(p, row);
        if (rc != RD_OK)
            break;
        rd_log(p->h, RD_INFO, "job %lld resumed",
               (long long)json_integer_value(json_object_get(row, "id")));
    }
    json_decref(left);
    if (rc != RD_OK)
        return rc;
    rd_log(p->h, RD_INFO, "started: format=%s cache_min_size=%llu cache_max_bytes=%llu signing=%s",
           p->conf.format, (unsigned long long)p->conf.cache_min_size,
           (unsigned long long)p->conf.cache_max_bytes, p->signer ? "yes" : "no");
    return RD_OK;
}

static void partials_stop(void *mod)
{
    partials_jobs_stop(mod);
}

/* {"jobs": totals, "cache": figures, "signing": bool}. HTTP thread. */
static json_t *partials_status(void *mod)
{
    struct partials *p = mod;
    json_t *totals = partials_totals(p);

    return json_pack("{s:o, s:o, s:b}", "jobs", totals ? totals : json_null(), "cache",
                     partials_cache_status(p->cache), "signing", p->signer != NULL);
}

static const struct rd_module partials_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "partials",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi =
#include "modules/partials/openapi.json.h"
        ,
    .keys = partials_keys,
    .init = partials_init,
    .start = partials_start,
    .stop = partials_stop,
    .destroy = partials_destroy,
    .status = partials_status,
    .reload = NULL,
};

RD_MODULE_EXPORT(partials_module)
