/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/api.c -- the routes under /api/v1/partials: uploads,
 * jobs (create, list, detail, result) and the cache's figures. Handlers
 * run on HTTP worker threads; bad input gets a JSON 4xx naming the
 * problem, anything else is returned to the host.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/hash/hash.h"
#include "lib/mar/mar.h"
#include "modules/partials/partials.h"

#define SCOPE_CREATE "partials:create"

/* ------------------------------------------------------------ uploads */

/* Streams the raw body into a temporary file under uploads_dir, hashing it
   on the way (SHA-256 into digest). Buffers are on the heap: HTTP worker
   threads have small stacks. */
static int save_body(struct partials *p, struct rd_req *r, char *tmp, size_t tmp_len,
                     uint64_t *size, uint8_t digest[32], int *status, const char **code, char *msg,
                     size_t msg_len)
{
    static const size_t chunk = 256 * 1024;
    uint8_t *buf = malloc(chunk);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int64_t cl = rd_req_content_length(r);
    int fd = -1, rc = RD_OK;

    *size = 0;
    if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (cl > 0 && (uint64_t)cl > p->conf.max_upload) {
        *status = 413;
        *code = "too_large";
        snprintf(msg, msg_len, "the upload is %lld bytes, the limit is %llu", (long long)cl,
                 (unsigned long long)p->conf.max_upload);
        rc = RD_ETOOBIG;
        goto out;
    }
    if (snprintf(tmp, tmp_len, "%s/.tmp-XXXXXX", p->conf.uploads_dir) >= (int)tmp_len) {
        rc = RD_EINVAL;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        tmp[0] = '\0';
        rc = RD_EIO;
        goto out;
    }
    for (;;) {
        int64_t n = rd_req_read(r, buf, chunk);
        if (n == 0)
            break;
        if (n < 0) {
            rc = RD_EIO;
            goto out;
        }
        if (*size + (uint64_t)n > p->conf.max_upload) {
            *status = 413;
            *code = "too_large";
            snprintf(msg, msg_len, "the upload is over the limit of %llu bytes",
                     (unsigned long long)p->conf.max_upload);
            rc = RD_ETOOBIG;
            goto out;
        }
        if (!EVP_DigestUpdate(md, buf, (size_t)n)) {
            rc = RD_ENOMEM;
            goto out;
        }
        for (int64_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = RD_EIO;
                goto out;
            }
            off += w;
        }
        *size += (uint64_t)n;
    }
    if (!EVP_DigestFinal_ex(md, digest, NULL))
        rc = RD_ENOMEM;
out:
    if (fd >= 0 && close(fd) != 0 && rc == RD_OK)
        rc = RD_EIO;
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

/* POST /uploads (raw MAR body) -> 201 {"id": sha256, "size", "channel",
   "version", "entries"}; the same bytes twice give the same id. */
static int uploads_create(struct rd_req *r, void *arg)
{
    struct partials *p = arg;
    char tmp[PATH_MAX] = "", final[PATH_MAX], hex[65], msg[256] = "";
    const char *code = NULL;
    int status = 0, rc;
    uint64_t size = 0;
    uint8_t digest[32];
    struct mar *m = NULL;
    struct rd_error err = {0};
    json_t *body;

    rc = save_body(p, r, tmp, sizeof(tmp), &size, digest, &status, &code, msg, sizeof(msg));
    if (rc != RD_OK) {
        if (status)
            rc = rd_reply_error(r, status, code, "%s", msg);
        goto out;
    }
    if (size == 0) {
        rc = rd_reply_error(r, 400, "bad_request", "body: send the MAR file's bytes");
        goto out;
    }
    /* a MAR that does not open is refused before it can be used by a job */
    if (mar_open(tmp, &m, &err) != RD_OK) {
        rc = rd_reply_error(r, 400, "corrupt_mar", "not a valid MAR file: %s", err.msg);
        goto out;
    }
    hash_hex(digest, 32, hex);
    if (partials_upload_path(p, hex, final, sizeof(final)) != RD_OK || rename(tmp, final) != 0) {
        rc = RD_EIO;
        goto out;
    }
    tmp[0] = '\0';
    rd_metric_add(p->m_uploads, 1);
    body = json_pack("{s:s, s:I, s:s?, s:s?, s:I}", "id", hex, "size", (json_int_t)size, "channel",
                     mar_channel(m), "version", mar_product_version(m), "entries",
                     (json_int_t)mar_entry_count(m));
    rc = body ? rd_reply_json(r, 201, body) : RD_ENOMEM;
out:
    mar_close(m);
    if (tmp[0])
        unlink(tmp);
    return rc;
}

/* --------------------------------------------------------------- jobs */

/* POST /jobs -> 202 and the queued job. */
static int jobs_create(struct rd_req *r, void *arg)
{
    struct partials *p = arg;
    struct partials_job_spec s;
    struct rd_error err = {0};
    char path[PATH_MAX];
    const char *format;
    json_t *job = NULL;
    int64_t id = 0;
    struct stat st;
    int rc;

    rc = partials_job_spec_parse(rd_req_body(r), &s, &err);
    if (rc != RD_OK) {
        rd_log(p->h, RD_DEBUG, "POST /jobs rejected: %s", err.msg);
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    }
    if (s.from_upload && (partials_upload_path(p, s.from_upload, path, sizeof(path)) != RD_OK ||
                          stat(path, &st) != 0))
        return rd_reply_error(r, 400, "bad_request", "from_upload: no upload %s", s.from_upload);
    if (s.to_upload &&
        (partials_upload_path(p, s.to_upload, path, sizeof(path)) != RD_OK || stat(path, &st) != 0))
        return rd_reply_error(r, 400, "bad_request", "to_upload: no upload %s", s.to_upload);
    if (atomic_load(&p->stopping))
        return rd_reply_error(r, 503, "unavailable", "the daemon is stopping");
    format = s.format ? s.format : p->conf.format;
    rc = partials_job_insert(p, &s, format, rd_req_principal(r), &id, &job);
    if (rc != RD_OK)
        return rc;
    rc = partials_job_launch(p, job);
    if (rc != RD_OK) {
        /* the row stays queued and is picked up at the next start */
        rd_log(p->h, RD_WARN, "job %lld queued but not started (%d)", (long long)id, rc);
    }
    return rd_reply_json(r, 202, job);
}

static int jobs_list(struct rd_req *r, void *arg)
{
    struct partials *p = arg;
    struct partials_list_query q;
    struct rd_error err = {0};
    json_t *jobs = NULL;
    int rc;

    rc = partials_list_query_parse(rd_req_param(r, "state"), rd_req_param(r, "limit"),
                                   rd_req_param(r, "before"), &q, &err);
    if (rc != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    rc = partials_job_list(p, &q, &jobs);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, json_pack("{s:o}", "jobs", jobs));
}

static int job_lookup(struct partials *p, struct rd_req *r, json_t **job)
{
    int64_t id;
    int rc;

    if (partials_id_parse(rd_req_param(r, "id"), &id) != RD_OK) {
        rd_reply_error(r, 404, "unknown_job", "no such job (ids are positive integers)");
        return RD_ENOTFOUND;
    }
    rc = partials_job_get(p, id, job);
    if (rc == RD_ENOTFOUND)
        rd_reply_error(r, 404, "unknown_job", "no job %lld", (long long)id);
    return rc;
}

static int jobs_get(struct rd_req *r, void *arg)
{
    json_t *job = NULL;
    int rc = job_lookup(arg, r, &job);

    if (rc == RD_ENOTFOUND)
        return RD_OK; /* replied */
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, job);
}

/* GET /jobs/{id}/result -> the partial MAR. */
static int jobs_result(struct rd_req *r, void *arg)
{
    struct partials *p = arg;
    json_t *job = NULL;
    char dir[PATH_MAX], path[PATH_MAX];
    const char *state;
    int rc = job_lookup(p, r, &job);

    if (rc == RD_ENOTFOUND)
        return RD_OK;
    if (rc != RD_OK)
        return rc;
    state = json_string_value(json_object_get(job, "state"));
    if (!state || strcmp(state, "done") != 0) {
        rc = rd_reply_error(r, 409, "not_ready", "job %lld is %s: no result",
                            (long long)json_integer_value(json_object_get(job, "id")),
                            state ? state : "unknown");
        goto out;
    }
    if (partials_job_dir(p, json_integer_value(json_object_get(job, "id")), dir, sizeof(dir)) !=
            RD_OK ||
        snprintf(path, sizeof(path), "%s/partial.mar", dir) >= (int)sizeof(path)) {
        rc = RD_EINVAL;
        goto out;
    }
    rc = rd_reply_file(r, path, "application/octet-stream");
out:
    json_decref(job);
    return rc;
}

/* GET /cache -> the cache's figures and the totals over finished jobs. */
static int cache_get(struct rd_req *r, void *arg)
{
    struct partials *p = arg;
    json_t *totals = partials_totals(p);
    json_t *body = json_pack("{s:o, s:o}", "cache", partials_cache_status(p->cache), "totals",
                             totals ? totals : json_null());
    return body ? rd_reply_json(r, 200, body) : RD_ENOMEM;
}

int partials_routes(struct partials *p)
{
    int rc;

    rc = rd_route_flags(p->h, "POST", "/uploads", SCOPE_CREATE, RD_ROUTE_RAW, uploads_create, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "POST", "/jobs", SCOPE_CREATE, jobs_create, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/jobs", NULL, jobs_list, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/jobs/{id}", NULL, jobs_get, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/jobs/{id}/result", NULL, jobs_result, p);
    if (rc == RD_OK)
        rc = rd_route(p->h, "GET", "/cache", NULL, cache_get, p);
    return rc;
}
