/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/routes_artifact.c -- run artifacts: streamed upload
 * (PUT, raw body) hashed with SHA-256 on the way to a temporary file and
 * renamed into place only when the hash matches X-Content-SHA256; the list;
 * the download. Names are checked by dispatch_artifact_name_valid, so a file
 * never lands outside <state>/artifacts/<task>@<run>/. Handlers run on HTTP
 * threads.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/module.h"
#include "lib/hash/hash.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/sql.h"

#define IO_CHUNK (64 * 1024)

static json_t *artifact_json(const char *task_id, uint32_t run_id, const char *name, int64_t size,
                             const char *sha256)
{
    char url[400];

    snprintf(url, sizeof(url), "/api/v1/dispatch/runs/%s/%u/artifacts/%s", task_id, run_id, name);
    return json_pack("{s:s, s:I, s:s, s:s}", "name", name, "size", (json_int_t)size, "sha256",
                     sha256, "url", url);
}

struct art_row {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    const char *name;
    int64_t size;
    const char *sha256;
    json_t *list; /* out for the list */
};

static int art_insert_tx(struct rd_tx *tx, void *arg)
{
    struct art_row *a = arg;
    return dsql_exec(rd_tx_db(tx),
                     "INSERT INTO dispatch_artifacts (task_id, run_id, name, size, sha256,"
                     " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT"
                     " (task_id, run_id, name) DO UPDATE SET size = ?4, sha256 = ?5,"
                     " created_ms = ?6",
                     "sIsIsu", a->task_id, (int64_t)a->run_id, a->name, a->size, a->sha256,
                     rd_now_ms(a->d->h));
}

static int art_upload(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_run_info info;
    const char *task_id, *name = rd_req_param(r, "name");
    const char *want_hdr = rd_req_header(r, "X-Content-SHA256");
    uint32_t run_id;
    char want[65], got_hex[65], dir[PATH_MAX + 100], tmp[PATH_MAX + 200], final[PATH_MAX + 300];
    unsigned char md[EVP_MAX_MD_SIZE], *buf = NULL;
    unsigned int md_len = 0;
    int64_t len = rd_req_content_length(r), n;
    uint64_t total = 0;
    EVP_MD_CTX *ctx = NULL;
    struct art_row a = {.d = d};
    bool keep = false;
    int rc, err, fd = -1;

    rc = dispatch_run_for_worker(d, r, &task_id, &run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (!dispatch_artifact_name_valid(name))
        return rd_reply_error(r, 400, "bad_name",
                              "artifact names are 1..128 of [A-Za-z0-9._-], not starting with '.'");
    if (!dispatch_sha256_hex_parse(want_hdr, want))
        return rd_reply_error(r, 400, "bad_request",
                              "X-Content-SHA256: required, the body's SHA-256 in 64 hex digits");
    if (strcmp(info.state, "claimed") != 0)
        return rd_reply_error(r, 409, "run_not_running", "run %s/%u is %s: no more artifacts",
                              task_id, run_id, info.state);
    if (len > 0 && (uint64_t)len > d->conf.max_artifact_size)
        return rd_reply_error(r, 413, "too_large", "artifacts are at most %" PRIu64 " bytes",
                              d->conf.max_artifact_size);
    dispatch_art_dir(d, task_id, run_id, dir, sizeof(dir));
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rd_log(d->h, RD_ERROR, "cannot create %s: %s", dir, strerror(errno));
        return RD_EIO;
    }
    /* ".upload-*" can never be an artifact name (no leading dot). */
    snprintf(tmp, sizeof(tmp), "%s/.upload-XXXXXX", dir);
    snprintf(final, sizeof(final), "%s/%s", dir, name);
    buf = malloc(IO_CHUNK);
    ctx = EVP_MD_CTX_new();
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = RD_ENOMEM;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rd_log(d->h, RD_ERROR, "cannot create %s: %s", tmp, strerror(errno));
        rc = RD_EIO;
        goto out;
    }
    while ((n = rd_req_read(r, buf, IO_CHUNK)) > 0) {
        total += (uint64_t)n;
        if (total > d->conf.max_artifact_size) {
            rc = rd_reply_error(r, 413, "too_large", "artifacts are at most %" PRIu64 " bytes",
                                d->conf.max_artifact_size);
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1 || write(fd, buf, (size_t)n) != n) {
            rd_log(d->h, RD_ERROR, "writing %s failed: %s", tmp, strerror(errno));
            rc = RD_EIO;
            goto out;
        }
    }
    if (n < 0) {
        rc = RD_EIO;
        goto out;
    }
    if (len >= 0 && total != (uint64_t)len) {
        rc = rd_reply_error(r, 400, "bad_request", "the body ended after %" PRIu64 " bytes", total);
        goto out;
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1) {
        rc = RD_ENOMEM;
        goto out;
    }
    hash_hex(md, md_len, got_hex);
    if (strcmp(got_hex, want) != 0) {
        rd_log(d->h, RD_WARN, "artifact %s of %s/%u: SHA-256 %s, expected %s; discarded", name,
               task_id, run_id, got_hex, want);
        rc = rd_reply_error(r, 400, "hash_mismatch",
                            "the body's SHA-256 is %s, X-Content-SHA256 says %s: discarded",
                            got_hex, want);
        goto out;
    }
    /* On disk before it has a name and a row: a crash must not leave a
       short file behind a recorded hash. */
    err = fsync(fd) == 0 ? 0 : errno;
    if (close(fd) != 0 && !err)
        err = errno;
    fd = -1;
    if (!err && rename(tmp, final) != 0)
        err = errno;
    if (err) {
        rd_log(d->h, RD_ERROR, "storing %s failed: %s", final, strerror(err));
        rc = RD_EIO;
        goto out;
    }
    keep = true;
    a.task_id = task_id;
    a.run_id = run_id;
    a.name = name;
    a.size = (int64_t)total;
    a.sha256 = got_hex;
    rc = rd_store_write(d->h, art_insert_tx, &a);
    if (rc != RD_OK)
        goto out;
    rd_metric_add(d->m_artifacts, 1);
    rc = rd_reply_json(r, 201, artifact_json(task_id, run_id, name, a.size, got_hex));
out:
    if (fd >= 0)
        close(fd);
    if (!keep)
        unlink(tmp);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static int art_list_tx(struct rd_tx *tx, void *arg)
{
    struct art_row *a = arg;
    sqlite3_stmt *st = NULL;
    int rc, step;

    a->list = json_array();
    if (!a->list)
        return RD_ENOMEM;
    rc = dsql_prepare(rd_tx_db(tx), &st,
                      "SELECT name, size, sha256 FROM dispatch_artifacts"
                      " WHERE task_id = ?1 AND run_id = ?2 ORDER BY name",
                      "sI", a->task_id, (int64_t)a->run_id);
    if (rc != RD_OK)
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a->list,
                              artifact_json(a->task_id, a->run_id, dsql_text(st, 0),
                                            sqlite3_column_int64(st, 1), dsql_text(st, 2)));
    dsql_finalize(st);
    return step == SQLITE_DONE ? RD_OK : RD_EIO;
}

static int art_list(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_run_info info;
    struct art_row a = {.d = d};
    int rc;

    rc = dispatch_run_lookup(d, r, &a.task_id, &a.run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    rc = rd_store_read(d->h, art_list_tx, &a);
    if (rc != RD_OK) {
        json_decref(a.list);
        return rc;
    }
    return rd_reply_json(r, 200, json_pack("{s:o}", "artifacts", a.list));
}

static int art_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_run_info info;
    struct art_row a = {.d = d};
    const char *name = rd_req_param(r, "name");
    char dir[PATH_MAX + 100], path[PATH_MAX + 300];
    bool found = false;
    size_t i;
    json_t *item;
    int rc;

    rc = dispatch_run_lookup(d, r, &a.task_id, &a.run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (!dispatch_artifact_name_valid(name))
        return rd_reply_error(r, 404, "unknown_artifact", "no such artifact");
    rc = rd_store_read(d->h, art_list_tx, &a);
    if (rc != RD_OK) {
        json_decref(a.list);
        return rc;
    }
    json_array_foreach(a.list, i, item) found =
        found || strcmp(json_string_value(json_object_get(item, "name")), name) == 0;
    json_decref(a.list);
    if (!found)
        return rd_reply_error(r, 404, "unknown_artifact", "run %s/%u has no artifact %s", a.task_id,
                              a.run_id, name);
    dispatch_art_dir(d, a.task_id, a.run_id, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return rd_reply_file(r, path, "application/octet-stream");
}

int dispatch_routes_artifact(struct dispatch *d)
{
    int rc = rd_route_flags(d->h, "PUT", "/runs/{task_id}/{run_id}/artifacts/{name}", NULL,
                            RD_ROUTE_RAW, art_upload, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/runs/{task_id}/{run_id}/artifacts", NULL, art_list, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/runs/{task_id}/{run_id}/artifacts/{name}", NULL, art_get, d);
    return rc;
}
