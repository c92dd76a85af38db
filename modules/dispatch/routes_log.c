/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/routes_log.c -- run logs: idempotent chunk appends by
 * offset (POST, raw body), the whole log and a long-poll tail by offset
 * (GET), and the xz compression of a resolved run's log. The file's size
 * is the log's size: appends take d->log_lock for the fstat + pwrite, so
 * two retries of one chunk never write it twice. Handlers on HTTP threads;
 * dispatch_log_compress on a pool thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lzma.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/lease.h"
#include "modules/dispatch/logchunk.h"

#define TAIL_MAX (1u << 20) /* bytes answered to one tail request */
#define XZ_PRESET 3         /* fast; logs compress well anyway */
#define IO_CHUNK (64 * 1024)

static bool run_done(const struct dispatch_run_info *info)
{
    return strcmp(info->state, "resolved") == 0 || strcmp(info->state, "cancelled") == 0;
}

/* A JSON answer with X-Log-Offset (for 200, 413 and 416 alike). */
static int reply_offset(struct rd_req *r, int status, const char *code, const char *msg,
                        uint64_t offset)
{
    json_t *body = code ? json_pack("{s:{s:s, s:s}, s:I}", "error", "code", code, "message", msg,
                                    "offset", (json_int_t)offset)
                        : json_pack("{s:I}", "offset", (json_int_t)offset);
    char hdr[64], *text;
    int rc;

    if (!body)
        return RD_ENOMEM;
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return RD_ENOMEM;
    snprintf(hdr, sizeof(hdr), "X-Log-Offset: %" PRIu64 "\r\n", offset);
    rc = rd_reply_start(r, status, "application/json", hdr, (int64_t)strlen(text));
    if (rc == RD_OK)
        rc = rd_reply_write(r, text, strlen(text));
    free(text);
    return rc;
}

/* ------------------------------------------------------------ append */

static int log_append(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_run_info info;
    struct dispatch_chunk_plan plan;
    const char *task_id;
    uint32_t run_id;
    uint64_t offset;
    int64_t len = rd_req_content_length(r), got = 0, n;
    char *buf = NULL, path[PATH_MAX + 100], msg[160];
    struct stat sb;
    int rc, fd = -1;

    rc = dispatch_run_for_worker(d, r, &task_id, &run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (!dispatch_u64_parse(rd_req_param(r, "offset"), &offset))
        return rd_reply_error(r, 400, "bad_request", "offset: required, a byte offset >= 0");
    if (strcmp(info.state, "claimed") != 0)
        return rd_reply_error(r, 409, "run_not_running", "run %s/%u is %s: no more log", task_id,
                              run_id, info.state);
    if (len > (int64_t)d->conf.max_log_chunk)
        return rd_reply_error(r, 413, "log_too_big", "a chunk is at most %" PRIu64 " bytes",
                              d->conf.max_log_chunk);
    /* Chunked uploads have no length: read up to the cap + 1 byte. */
    buf = malloc(len >= 0 ? (size_t)len + 1 : d->conf.max_log_chunk + 1);
    if (!buf)
        return RD_ENOMEM;
    for (;;) {
        size_t room = (len >= 0 ? (size_t)len : d->conf.max_log_chunk + 1) - (size_t)got;
        if (room == 0)
            break;
        n = rd_req_read(r, buf + got, room);
        if (n < 0) {
            rc = RD_EIO;
            goto out;
        }
        if (n == 0)
            break;
        got += n;
    }
    if (len >= 0 && got != len) {
        rc = rd_reply_error(r, 400, "bad_request",
                            "the body ended after %" PRId64 " of %" PRId64 " bytes", got, len);
        goto out;
    }
    if ((uint64_t)got > d->conf.max_log_chunk) {
        rc = rd_reply_error(r, 413, "log_too_big", "a chunk is at most %" PRIu64 " bytes",
                            d->conf.max_log_chunk);
        goto out;
    }
    dispatch_log_path(d, task_id, run_id, false, path, sizeof(path));
    pthread_mutex_lock(&d->log_lock);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        pthread_mutex_unlock(&d->log_lock);
        rd_log(d->h, RD_ERROR, "log %s: %s", path, strerror(errno));
        rc = RD_EIO;
        goto out;
    }
    plan = dispatch_chunk_plan((uint64_t)sb.st_size, offset, (uint64_t)got, d->conf.max_log_size);
    if (plan.write_len > 0 &&
        pwrite(fd, buf + plan.skip, plan.write_len, (off_t)sb.st_size) != (ssize_t)plan.write_len) {
        pthread_mutex_unlock(&d->log_lock);
        rd_log(d->h, RD_ERROR, "log %s: write failed: %s", path, strerror(errno));
        rc = RD_EIO;
        goto out;
    }
    pthread_mutex_unlock(&d->log_lock);
    if (plan.write_len > 0) {
        rd_metric_add(d->m_log_bytes, (double)plan.write_len);
        dispatch_wake_logs(d);
    }
    switch (plan.verdict) {
    case DISPATCH_CHUNK_GAP:
        snprintf(msg, sizeof(msg), "the log has %" PRIu64 " bytes; resend from there",
                 (uint64_t)sb.st_size);
        rc = reply_offset(r, 416, "log_gap", msg, plan.new_size);
        break;
    case DISPATCH_CHUNK_TOOBIG:
        snprintf(msg, sizeof(msg), "the log is capped at %" PRIu64 " bytes (max_log_size)",
                 d->conf.max_log_size);
        rc = reply_offset(r, 413, "log_too_big", msg, plan.new_size);
        break;
    default:
        rc = reply_offset(r, 200, NULL, NULL, plan.new_size);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- read */

/* The whole decompressed content of an .xz file (malloc'd), capped. */
static int xz_read_all(const char *path, uint64_t cap, char **out, size_t *out_len)
{
    lzma_stream s = LZMA_STREAM_INIT;
    FILE *f = fopen(path, "rbe");
    uint8_t *in = NULL; /* heap: HTTP threads have small stacks */
    char *buf = NULL;
    size_t size = 0, alloc = 0;
    lzma_action action = LZMA_RUN;
    lzma_ret ret;
    int rc = RD_OK;

    *out = NULL;
    *out_len = 0;
    if (!f)
        return errno == ENOENT ? RD_ENOTFOUND : RD_EIO;
    in = malloc(IO_CHUNK);
    if (!in || lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
        free(in);
        fclose(f);
        return RD_ENOMEM;
    }
    for (;;) {
        if (s.avail_in == 0 && action == LZMA_RUN) {
            s.next_in = in;
            s.avail_in = fread(in, 1, IO_CHUNK, f);
            if (ferror(f)) {
                rc = RD_EIO;
                break;
            }
            if (feof(f))
                action = LZMA_FINISH;
        }
        if (size == alloc) {
            size_t grow = alloc ? alloc * 2 : IO_CHUNK;
            char *p = grow > cap + IO_CHUNK ? NULL : realloc(buf, grow);
            if (!p) {
                rc = grow > cap + IO_CHUNK ? RD_ETOOBIG : RD_ENOMEM;
                break;
            }
            buf = p;
            alloc = grow;
        }
        s.next_out = (uint8_t *)buf + size;
        s.avail_out = alloc - size;
        ret = lzma_code(&s, action);
        size = alloc - s.avail_out;
        if (ret == LZMA_STREAM_END)
            break;
        if (ret != LZMA_OK) {
            rc = RD_ECORRUPT;
            break;
        }
    }
    lzma_end(&s);
    fclose(f);
    free(in);
    if (rc != RD_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = size;
    return RD_OK;
}

/* Bytes [offset, offset + max) of a run's log into *out (malloc'd), and the
   log's whole size. A log that does not exist (yet) is empty. */
static int log_read(struct dispatch *d, const char *task_id, uint32_t run_id, uint64_t offset,
                    size_t max, char **out, size_t *n_out, uint64_t *total)
{
    char path[PATH_MAX + 100], *all = NULL;
    size_t all_len = 0, n = 0;
    struct stat sb;
    int fd, rc;

    *out = NULL;
    *n_out = 0;
    *total = 0;
    dispatch_log_path(d, task_id, run_id, false, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (fstat(fd, &sb) != 0) {
            close(fd);
            return RD_EIO;
        }
        *total = (uint64_t)sb.st_size;
        if (offset < *total) {
            n = *total - offset < max ? (size_t)(*total - offset) : max;
            *out = malloc(n ? n : 1);
            if (!*out) {
                close(fd);
                return RD_ENOMEM;
            }
            ssize_t k = pread(fd, *out, n, (off_t)offset);
            n = k > 0 ? (size_t)k : 0;
        }
        close(fd);
        *n_out = n;
        return RD_OK;
    }
    dispatch_log_path(d, task_id, run_id, true, path, sizeof(path));
    rc = xz_read_all(path, d->conf.max_log_size, &all, &all_len);
    if (rc == RD_ENOTFOUND) {
        /* Between the rename to .xz and the unlink of .log both exist, so
           neither existing means there is no log (yet). Check .log again
           in case the compression just ran the other way round. */
        dispatch_log_path(d, task_id, run_id, false, path, sizeof(path));
        return access(path, F_OK) == 0
                   ? log_read(d, task_id, run_id, offset, max, out, n_out, total)
                   : RD_OK;
    }
    if (rc != RD_OK)
        return rc;
    *total = all_len;
    if (offset < all_len) {
        n = all_len - offset < max ? (size_t)(all_len - offset) : max;
        memmove(all, all + offset, n);
    }
    *out = all;
    *n_out = n;
    return RD_OK;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct state_read {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    struct dispatch_run_info info;
};

static int state_tx(struct rd_tx *tx, void *arg)
{
    struct state_read *s = arg;
    return dispatch_run_info_get(s->d, tx, s->task_id, s->run_id, &s->info);
}

static int log_tail(struct dispatch *d, struct rd_req *r, const char *task_id, uint32_t run_id,
                    uint64_t offset)
{
    const char *wait_s = rd_req_param(r, "wait");
    struct state_read sr = {.d = d, .task_id = task_id, .run_id = run_id};
    uint64_t wait_ms = 0, end, total, gen0;
    char *buf = NULL, *endp = NULL, hdr[128];
    size_t n = 0;
    bool waiting = false, complete;
    int rc;

    if (wait_s) {
        double w = strtod(wait_s, &endp);
        if (!*wait_s || *endp || !(w >= 0) || w > 20)
            return rd_reply_error(r, 400, "bad_request", "wait: seconds, 0..20");
        wait_ms = dispatch_wait_ms(w, d->conf.max_wait_ms);
    }
    if (wait_ms > 0) {
        waiting = dispatch_waiting_enter(d);
        if (!waiting)
            wait_ms = 0;
    }
    end = mono_ms() + wait_ms;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        gen0 = d->log_gen;
        pthread_mutex_unlock(&d->lock);
        /* The state first: once resolved, the size read after it is final. */
        rc = rd_store_read(d->h, state_tx, &sr);
        if (rc != RD_OK)
            goto out;
        complete = run_done(&sr.info);
        free(buf);
        buf = NULL;
        rc = log_read(d, task_id, run_id, offset, TAIL_MAX, &buf, &n, &total);
        if (rc != RD_OK)
            goto out;
        if (offset > total) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the log has %" PRIu64 " bytes", total);
            rc = reply_offset(r, 416, "log_gap", msg, total);
            goto out;
        }
        if (n > 0 || complete || mono_ms() >= end)
            break;
        pthread_mutex_lock(&d->lock);
        while (d->log_gen == gen0 && !d->stopping && mono_ms() < end) {
            struct timespec ts;
            dispatch_abstime(&ts, end - mono_ms());
            pthread_cond_timedwait(&d->log_cond, &d->lock, &ts);
        }
        pthread_mutex_unlock(&d->lock);
        if (d->stopping)
            end = 0;
    }
    snprintf(hdr, sizeof(hdr), "X-Log-Offset: %" PRIu64 "\r\nX-Log-Complete: %d\r\n", offset + n,
             complete && offset + n >= total ? 1 : 0);
    rc = rd_reply_start(r, 200, "text/plain; charset=utf-8", hdr, (int64_t)n);
    if (rc == RD_OK && n > 0)
        rc = rd_reply_write(r, buf, n);
out:
    if (waiting)
        dispatch_waiting_leave(d);
    free(buf);
    return rc;
}

static int log_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_run_info info;
    const char *task_id, *off = rd_req_param(r, "offset");
    uint32_t run_id;
    uint64_t offset = 0, total;
    char path[PATH_MAX + 100], *buf = NULL, hdr[128];
    size_t n;
    int rc;

    rc = dispatch_run_lookup(d, r, &task_id, &run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (off) {
        if (!dispatch_u64_parse(off, &offset))
            return rd_reply_error(r, 400, "bad_request", "offset: a byte offset >= 0");
        return log_tail(d, r, task_id, run_id, offset);
    }
    dispatch_log_path(d, task_id, run_id, false, path, sizeof(path));
    if (access(path, R_OK) == 0 && !run_done(&info))
        return rd_reply_file(r, path, "text/plain; charset=utf-8");
    rc = log_read(d, task_id, run_id, 0, d->conf.max_log_size, &buf, &n, &total);
    if (rc != RD_OK)
        return rc;
    snprintf(hdr, sizeof(hdr), "X-Log-Offset: %zu\r\nX-Log-Complete: %d\r\n", n,
             run_done(&info) ? 1 : 0);
    rc = rd_reply_start(r, 200, "text/plain; charset=utf-8", hdr, (int64_t)n);
    if (rc == RD_OK && n > 0)
        rc = rd_reply_write(r, buf, n);
    free(buf);
    return rc;
}

/* -------------------------------------------------------- compression */

static int xz_file(const char *src, const char *dst)
{
    lzma_stream s = LZMA_STREAM_INIT;
    FILE *in = fopen(src, "rbe"), *out = NULL;
    uint8_t *ib = NULL, *ob = NULL; /* heap: small thread stacks */
    lzma_action action = LZMA_RUN;
    lzma_ret ret;
    int rc = RD_OK;

    if (!in)
        return errno == ENOENT ? RD_ENOTFOUND : RD_EIO;
    out = fopen(dst, "wbe");
    ib = malloc(IO_CHUNK);
    ob = malloc(IO_CHUNK);
    if (!out || !ib || !ob || lzma_easy_encoder(&s, XZ_PRESET, LZMA_CHECK_CRC64) != LZMA_OK) {
        rc = out ? RD_ENOMEM : RD_EIO;
        goto out;
    }
    s.next_out = ob;
    s.avail_out = IO_CHUNK;
    for (;;) {
        if (s.avail_in == 0 && action == LZMA_RUN) {
            s.next_in = ib;
            s.avail_in = fread(ib, 1, IO_CHUNK, in);
            if (ferror(in)) {
                rc = RD_EIO;
                break;
            }
            if (feof(in))
                action = LZMA_FINISH;
        }
        ret = lzma_code(&s, action);
        if (s.avail_out == 0 || ret == LZMA_STREAM_END) {
            size_t k = IO_CHUNK - s.avail_out;
            if (fwrite(ob, 1, k, out) != k) {
                rc = RD_EIO;
                break;
            }
            s.next_out = ob;
            s.avail_out = IO_CHUNK;
        }
        if (ret == LZMA_STREAM_END)
            break;
        if (ret != LZMA_OK) {
            rc = RD_EIO;
            break;
        }
    }
out:
    lzma_end(&s);
    fclose(in);
    free(ib);
    free(ob);
    if (out && fclose(out) != 0)
        rc = RD_EIO;
    return rc;
}

int dispatch_log_compress(struct dispatch *d, const char *task_id, uint32_t run_id)
{
    struct state_read sr = {.d = d, .task_id = task_id, .run_id = run_id};
    char src[PATH_MAX + 100], dst[PATH_MAX + 100], tmp[PATH_MAX + 110];
    struct stat before, after;
    int rc;

    /* Only logs that can no longer grow. */
    rc = rd_store_read(d->h, state_tx, &sr);
    if (rc != RD_OK || !run_done(&sr.info))
        return rc;
    dispatch_log_path(d, task_id, run_id, false, src, sizeof(src));
    dispatch_log_path(d, task_id, run_id, true, dst, sizeof(dst));
    snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
    if (stat(src, &before) != 0)
        return RD_OK; /* no log, or compressed already */
    rc = xz_file(src, tmp);
    if (rc != RD_OK) {
        unlink(tmp);
        rd_log(d->h, RD_WARN, "compressing %s failed (error %d); kept as it is", src, rc);
        return rc;
    }
    /* The switch under log_lock, and only if no append slipped in while we
       compressed: .xz appears (rename) before .log goes, so a reader always
       finds one of them. */
    pthread_mutex_lock(&d->log_lock);
    if (stat(src, &after) != 0 || after.st_size != before.st_size) {
        pthread_mutex_unlock(&d->log_lock);
        unlink(tmp);
        return RD_ECONFLICT;
    }
    rc = rename(tmp, dst) == 0 && unlink(src) == 0 ? RD_OK : RD_EIO;
    pthread_mutex_unlock(&d->log_lock);
    if (rc != RD_OK)
        rd_log(d->h, RD_WARN, "compressing %s: %s", src, strerror(errno));
    return rc;
}

int dispatch_routes_log(struct dispatch *d)
{
    int rc = rd_route_flags(d->h, "POST", "/runs/{task_id}/{run_id}/log", NULL, RD_ROUTE_RAW,
                            log_append, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "GET", "/runs/{task_id}/{run_id}/log", NULL, log_get, d);
    return rc;
}
