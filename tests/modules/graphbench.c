/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/graphbench.c -- a test module for bench/graph.sh: an
 * in-process completer for the graph module. It provides dispatch.queue
 * (so load it instead of dispatch) and keeps what graph enqueues in memory;
 * POST /api/v1/graphbench/drain {"batch": N} then claims and completes
 * every queued run through graph.runs -- started() and resolved() exactly as
 * dispatch calls them -- N runs per write transaction, until the queue is
 * empty, and answers {"resolved", "transactions", "ms"}. Runs enqueued by
 * a transaction that rolls back would stay in memory: the bench never rolls
 * back, and this module is for measurements only. Route handler on an HTTP
 * thread; enqueue/cancel inside graph's transactions; the queue is behind
 * a mutex.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/module.h"
#include "core/services/tasks.h"

struct qrun {
    char task_id[RD_TASK_ID_MAX + 1];
    uint32_t run_id;
};

struct bench {
    struct rd_host *h;
    struct rd_taskqueue queue;
    const struct rd_taskruns *runs;
    pthread_mutex_t lock;
    struct qrun *v; /* a FIFO: [head, n) */
    size_t head, n, cap;
};

static int bq_enqueue(void *ctx, struct rd_tx *tx, const struct rd_task_run_spec *run)
{
    struct bench *b = ctx;
    int rc = RD_OK;

    (void)tx;
    pthread_mutex_lock(&b->lock);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        struct qrun *v = realloc(b->v, cap * sizeof(*v));
        if (!v) {
            rc = RD_ENOMEM;
            goto out;
        }
        b->v = v;
        b->cap = cap;
    }
    snprintf(b->v[b->n].task_id, sizeof(b->v[0].task_id), "%s", run->task_id);
    b->v[b->n].run_id = run->run_id;
    b->n++;
out:
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static int bq_cancel(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id)
{
    (void)ctx;
    (void)tx;
    (void)task_id;
    (void)run_id;
    return RD_ENOTFOUND;
}

struct batch {
    struct bench *b;
    size_t max, done;
};

static int batch_tx(struct rd_tx *tx, void *arg)
{
    struct batch *bt = arg;
    struct bench *b = bt->b;

    bt->done = 0;
    while (bt->done < bt->max) {
        struct qrun r;
        int rc;

        pthread_mutex_lock(&b->lock);
        if (b->head == b->n) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        r = b->v[b->head++];
        pthread_mutex_unlock(&b->lock);
        rc = b->runs->started(b->runs->ctx, tx, r.task_id, r.run_id, "bench");
        if (rc == RD_OK)
            rc = b->runs->resolved(b->runs->ctx, tx, r.task_id, r.run_id, "completed", "completed",
                                   0);
        if (rc != RD_OK && rc != RD_ECONFLICT && rc != RD_ENOTFOUND)
            return rc;
        bt->done++;
    }
    return RD_OK;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* POST /drain {"batch": N} */
static int drain(struct rd_req *r, void *arg)
{
    struct bench *b = arg;
    const json_t *batch = json_object_get(rd_req_body(r), "batch");
    struct batch bt = {.b = b, .max = 500};
    size_t resolved = 0, txs = 0;
    uint64_t t0 = mono_ms();
    int rc;

    if (!b->runs)
        return rd_reply_error(r, 409, "no_graph", "the graph module is not loaded");
    if (batch && (!json_is_integer(batch) || json_integer_value(batch) < 1 ||
                  json_integer_value(batch) > 100000))
        return rd_reply_error(r, 400, "bad_request", "batch must be an integer from 1 to 100000");
    if (batch)
        bt.max = (size_t)json_integer_value(batch);
    do {
        rc = rd_store_write(b->h, batch_tx, &bt);
        if (rc != RD_OK)
            return rc;
        resolved += bt.done;
        txs++;
    } while (bt.done > 0);
    pthread_mutex_lock(&b->lock);
    b->head = b->n = 0; /* drained: start the array over */
    pthread_mutex_unlock(&b->lock);
    return rd_reply_json(r, 200,
                         json_pack("{s:I, s:I, s:I}", "resolved", (json_int_t)resolved,
                                   "transactions", (json_int_t)(txs - 1), "ms",
                                   (json_int_t)(mono_ms() - t0)));
}

static void bench_destroy(void *mod)
{
    struct bench *b = mod;

    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->v);
    free(b);
}

static int bench_init(struct rd_host *h, void **out)
{
    struct bench *b = calloc(1, sizeof(*b));
    int rc;

    if (!b)
        return RD_ENOMEM;
    b->h = h;
    pthread_mutex_init(&b->lock, NULL);
    b->queue = (struct rd_taskqueue){.ctx = b, .enqueue = bq_enqueue, .cancel = bq_cancel};
    rc = rd_service_provide(h, RD_TASKQUEUE_SERVICE, RD_TASKQUEUE_VERSION, &b->queue);
    if (rc != RD_OK) {
        bench_destroy(b);
        return rc;
    }
    *out = b;
    return RD_OK;
}

static int bench_start(void *mod)
{
    struct bench *b = mod;

    b->runs = rd_service_get(b->h, RD_TASKRUNS_SERVICE, RD_TASKRUNS_VERSION);
    return rd_route(b->h, "POST", "/drain", "graphbench:run", drain, b);
}

static void bench_stop(void *mod)
{
    (void)mod;
}

static const struct rd_module bench_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "graphbench",
    .version = "1.0.0",
    .build = RD_BUILD,
    .openapi = "{\"paths\":{\"/drain\":{\"post\":{\"summary\":\"Complete every queued run\","
               "\"x-scope\":\"graphbench:run\",\"responses\":{\"200\":{\"description\":"
               "\"counts\"}}}}}}",
    .init = bench_init,
    .start = bench_start,
    .stop = bench_stop,
    .destroy = bench_destroy,
};

RD_MODULE_EXPORT(bench_module)
