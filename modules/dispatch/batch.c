/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/batch.c -- group commit for the worker protocol's write
 * transactions (claims, reports, reclaims). Every commit of the store may
 * cost an fsync ([store] synchronous = full), and the writer is one
 * connection behind one lock, so a farm of workers reporting at once would
 * queue behind one fsync each. Instead, the first caller becomes the
 * leader: it runs every item queued so far in ONE write transaction, each
 * item's function in turn, and hands each caller its own result; callers
 * that arrive meanwhile wait and go in the next batch.
 *
 * An item that fails (returns non-zero) would roll back the whole batch, so
 * then each item of that batch runs again alone, in its own transaction,
 * and gets its own result: an item's function must therefore be safe to
 * run again after a rollback (it resets its outputs first). A batch never
 * holds d->lock across the store call.
 *
 * Threads: any thread that may call rd_store_write (HTTP threads here).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"

#define BATCH_MAX 64

struct dispatch_batch_item {
    struct dispatch_batch_item *next;
    rd_tx_fn fn;
    void *arg;
    int rc;
    bool done;
};

struct batch_run {
    struct dispatch_batch_item *items[BATCH_MAX];
    size_t n;
};

static int batch_tx(struct rd_tx *tx, void *arg)
{
    struct batch_run *b = arg;

    for (size_t i = 0; i < b->n; i++) {
        int rc = b->items[i]->fn(tx, b->items[i]->arg);
        if (rc != RD_OK)
            return rc; /* the whole batch rolls back; see below */
    }
    return RD_OK;
}

int dispatch_batch_write(struct dispatch *d, rd_tx_fn fn, void *arg)
{
    struct dispatch_batch_item me = {.fn = fn, .arg = arg};
    struct batch_run b;
    int rc;

    pthread_mutex_lock(&d->batch_lock);
    /* Join the queue (FIFO). */
    if (d->batch_tail)
        d->batch_tail->next = &me;
    else
        d->batch_head = &me;
    d->batch_tail = &me;
    while (!me.done && d->batch_leader)
        pthread_cond_wait(&d->batch_cond, &d->batch_lock);
    if (me.done) {
        pthread_mutex_unlock(&d->batch_lock);
        return me.rc;
    }
    /* Leader until the queue is empty. */
    d->batch_leader = true;
    while (d->batch_head) {
        b.n = 0;
        while (d->batch_head && b.n < BATCH_MAX) {
            b.items[b.n++] = d->batch_head;
            d->batch_head = d->batch_head->next;
        }
        if (!d->batch_head)
            d->batch_tail = NULL;
        pthread_mutex_unlock(&d->batch_lock);
        rc = rd_store_write(d->h, batch_tx, &b);
        if (rc == RD_OK) {
            for (size_t i = 0; i < b.n; i++)
                b.items[i]->rc = RD_OK;
        } else if (b.n == 1) {
            b.items[0]->rc = rc;
        } else {
            /* One item failed and took the others down: each alone. */
            for (size_t i = 0; i < b.n; i++)
                b.items[i]->rc = rd_store_write(d->h, b.items[i]->fn, b.items[i]->arg);
        }
        pthread_mutex_lock(&d->batch_lock);
        for (size_t i = 0; i < b.n; i++)
            b.items[i]->done = true;
        pthread_cond_broadcast(&d->batch_cond);
    }
    d->batch_leader = false;
    pthread_cond_broadcast(&d->batch_cond);
    pthread_mutex_unlock(&d->batch_lock);
    return me.rc;
}
