/* SPDX-License-Identifier: MIT */
/*
 * core/pool.c -- the thread pool behind rd_submit. n worker threads take
 * items from one FIFO queue (a mutex and a condition variable), run work on
 * the pool thread, then hand done to the loop thread through the loopq.
 * pool_submit and pool_busy: any thread. pool_stop and pool_free: the thread
 * that owns the loop (done callbacks that could not be queued run there).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/pool.h"

struct pool_item {
    rd_work_fn work;
    rd_done_fn done;
    void *arg;
    struct pool_item *next;
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled when an item is queued or on stop */
    struct pool_item *head, *tail;
    struct pool_item *orphans; /* finished items whose done could not be queued */
    int n_busy;                /* queued + running */
    bool stopping;
    bool joined;
    struct loopq *q;
    pthread_t *threads;
    int n_threads;
};

/* Loop thread: runs one item's done and frees the item. */
static void pool_run_done(void *arg)
{
    struct pool_item *it = arg;

    it->done(it->arg);
    free(it);
}

/* Pool thread: hands the item's done to the loop. A push can only fail when
   out of memory or when the loopq is already closed; the item is then kept
   and its done runs in pool_stop or pool_free, on the loop thread, rather
   than here on the wrong thread. */
static void pool_finish(struct pool *p, struct pool_item *it)
{
    if (!it->done) {
        free(it);
        return;
    }
    if (loopq_push(p->q, pool_run_done, it) == RD_OK)
        return;
    log_msg("core", RD_ERROR, "pool: could not queue a done callback; it runs at pool stop");
    pthread_mutex_lock(&p->lock);
    it->next = p->orphans;
    p->orphans = it;
    pthread_mutex_unlock(&p->lock);
}

static void *pool_main(void *arg)
{
    struct pool *p = arg;

    for (;;) {
        struct pool_item *it;

        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        it = p->head;
        if (!it) {
            /* stopping and nothing left: queued work always finishes first */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        if (it->work)
            it->work(it->arg);
        /* Counted as busy until done is queued, so that pool_busy() == 0
           means every done is already on the loopq. */
        pool_finish(p, it);
        pthread_mutex_lock(&p->lock);
        p->n_busy--;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

int pool_new(int n_threads, struct loopq *q, struct pool **out)
{
    struct pool *p = NULL;
    int rc = RD_OK;

    *out = NULL;
    if (n_threads < 1 || !q)
        return RD_EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return RD_ENOMEM;
    p->q = q;
    p->threads = calloc((size_t)n_threads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return RD_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
        p->n_threads++;
    }
out:
    if (rc != RD_OK) {
        pool_free(p); /* stops and joins the threads that did start */
        return rc;
    }
    *out = p;
    return RD_OK;
}

int pool_submit(struct pool *p, rd_work_fn work, rd_done_fn done, void *arg)
{
    struct pool_item *it;

    if (!p || (!work && !done))
        return RD_EINVAL;
    it = malloc(sizeof(*it));
    if (!it)
        return RD_ENOMEM;
    it->work = work;
    it->done = done;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        free(it);
        return RD_EUNAVAIL;
    }
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    p->n_busy++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return RD_OK;
}

int pool_busy(struct pool *p)
{
    int n;

    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    n = p->n_busy;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Takes the orphan list, oldest first. */
static struct pool_item *pool_take_orphans(struct pool *p)
{
    struct pool_item *list, *rev = NULL;

    pthread_mutex_lock(&p->lock);
    list = p->orphans;
    p->orphans = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list) {
        struct pool_item *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    return rev;
}

void pool_stop(struct pool *p)
{
    struct pool_item *it;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (!p->joined) {
        for (int i = 0; i < p->n_threads; i++)
            pthread_join(p->threads[i], NULL);
        p->joined = true;
    }
    /* Retry the orphans now that the threads are quiet. */
    it = pool_take_orphans(p);
    while (it) {
        struct pool_item *next = it->next;
        if (loopq_push(p->q, pool_run_done, it) != RD_OK) {
            pthread_mutex_lock(&p->lock);
            it->next = p->orphans;
            p->orphans = it;
            pthread_mutex_unlock(&p->lock);
        }
        it = next;
    }
}

void pool_free(struct pool *p)
{
    struct pool_item *it;

    if (!p)
        return;
    pool_stop(p);
    /* Last resort for done callbacks the loopq never took: we are on the
       loop thread, so running them here keeps their contract. */
    it = pool_take_orphans(p);
    while (it) {
        struct pool_item *next = it->next;
        pool_run_done(it);
        it = next;
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
