/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/routes_log.c -- the log routes: idempotent chunk
 * appends by offset (POST, raw body, group-committed with the other
 * worker writes), the whole log, and a long-poll tail by offset (GET). The
 * logs themselves live in the store (logstore.c). Handlers on HTTP
 * threads.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/lease.h"
#include "modules/dispatch/logchunk.h"

#define TAIL_MAX (1u << 20) /* bytes answered to one tail request */

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
    struct dispatch_log_append a = {.d = d};
    const char *task_id;
    uint32_t run_id;
    int64_t len = rd_req_content_length(r), got = 0, n;
    size_t cap = (size_t)d->conf.max_log_chunk + 1;
    char *buf = NULL, msg[160];
    int rc;

    rc = dispatch_run_for_worker(d, r, &task_id, &run_id, &info);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (!dispatch_u64_parse(rd_req_param(r, "offset"), &a.offset))
        return rd_reply_error(r, 400, "bad_request", "offset: required, a byte offset >= 0");
    if (len > (int64_t)d->conf.max_log_chunk)
        return rd_reply_error(r, 413, "log_too_big", "a chunk is at most %" PRIu64 " bytes",
                              d->conf.max_log_chunk);
    /* Chunked uploads have no length: read up to the cap + 1 byte. */
    if (len >= 0)
        cap = (size_t)len;
    buf = malloc(cap ? cap : 1);
    if (!buf)
        return RD_ENOMEM;
    while ((size_t)got < cap && (n = rd_req_read(r, buf + got, cap - (size_t)got)) > 0)
        got += n;
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
    a.task_id = task_id;
    a.run_id = run_id;
    a.data = buf;
    a.len = (uint64_t)got;
    rc = dispatch_batch_write(d, dispatch_log_append_tx, &a);
    if (rc != RD_OK)
        goto out;
    if (a.notfound) {
        rc = rd_reply_error(r, 404, "unknown_run", "no run %s/%u", task_id, run_id);
        goto out;
    }
    if (strcmp(a.state, "claimed") != 0) {
        rc = rd_reply_error(r, 409, "run_not_running", "run %s/%u is %s: no more log", task_id,
                            run_id, a.state);
        goto out;
    }
    if (a.plan.write_len > 0) {
        rd_metric_add(d->m_log_bytes, (double)a.plan.write_len);
        dispatch_wake_logs(d);
    }
    switch (a.plan.verdict) {
    case DISPATCH_CHUNK_GAP:
        snprintf(msg, sizeof(msg), "the log has %" PRIu64 " bytes; resend from there",
                 a.plan.new_size);
        rc = reply_offset(r, 416, "log_gap", msg, a.plan.new_size);
        break;
    case DISPATCH_CHUNK_TOOBIG:
        snprintf(msg, sizeof(msg), "the log is capped at %" PRIu64 " bytes (max_log_size)",
                 d->conf.max_log_size);
        rc = reply_offset(r, 413, "log_too_big", msg, a.plan.new_size);
        break;
    default:
        rc = reply_offset(r, 200, NULL, NULL, a.plan.new_size);
    }
out:
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- read */

static int reply_text(struct rd_req *r, const struct dispatch_log_read *q)
{
    char hdr[128];
    int rc;

    snprintf(hdr, sizeof(hdr), "X-Log-Offset: %" PRIu64 "\r\nX-Log-Complete: %d\r\n",
             q->offset + q->n, q->done && q->offset + q->n >= q->total ? 1 : 0);
    rc = rd_reply_start(r, 200, "text/plain; charset=utf-8", hdr, (int64_t)q->n);
    if (rc == RD_OK && q->n > 0)
        rc = rd_reply_write(r, q->buf, q->n);
    return rc;
}

/* GET .../log?offset=N[&wait=S]: the bytes from N as soon as there are any. */
static int log_tail(struct dispatch *d, struct rd_req *r, struct dispatch_log_read *q)
{
    const char *wait_s = rd_req_param(r, "wait");
    uint64_t wait_ms = 0, end, gen0;
    char *endp = NULL;
    bool waiting = false;
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
    end = dispatch_mono_ms() + wait_ms;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        gen0 = d->log_gen;
        pthread_mutex_unlock(&d->lock);
        rc = rd_store_read(d->h, dispatch_log_read_tx, q);
        if (rc != RD_OK)
            goto out;
        if (q->offset > q->total) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the log has %" PRIu64 " bytes", q->total);
            rc = reply_offset(r, 416, "log_gap", msg, q->total);
            goto out;
        }
        if (q->n > 0 || q->done || dispatch_mono_ms() >= end)
            break;
        pthread_mutex_lock(&d->lock);
        while (d->log_gen == gen0 && !d->stopping && dispatch_mono_ms() < end)
            dispatch_cond_wait_until(&d->log_cond, &d->lock, end);
        if (d->stopping)
            end = 0;
        pthread_mutex_unlock(&d->lock);
    }
    rc = reply_text(r, q);
out:
    if (waiting)
        dispatch_waiting_leave(d);
    return rc;
}

static int log_get(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_log_read q = {.d = d};
    const char *off = rd_req_param(r, "offset");
    int rc;

    if (!dispatch_run_params(r, &q.task_id, &q.run_id))
        return RD_OK;
    if (off && !dispatch_u64_parse(off, &q.offset))
        return rd_reply_error(r, 400, "bad_request", "offset: a byte offset >= 0");
    q.max = off ? TAIL_MAX : (size_t)d->conf.max_log_size;
    rc = off ? log_tail(d, r, &q) : rd_store_read(d->h, dispatch_log_read_tx, &q);
    if (rc == RD_ENOTFOUND)
        rc = rd_reply_error(r, 404, "unknown_run", "no run %s/%u", q.task_id, q.run_id);
    else if (rc == RD_OK && !off)
        rc = reply_text(r, &q);
    free(q.buf);
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
