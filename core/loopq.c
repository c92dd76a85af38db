/* SPDX-License-Identifier: MIT */
/*
 * core/loopq.c -- a queue of callbacks run on the loop thread. Pushers take
 * the mutex and make one persistent event active; the loop swaps the whole
 * list out under the mutex and runs it without holding it.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "core/loopq.h"
#include "core/module.h"

struct loopq_item {
    void (*fn)(void *arg);
    void *arg;
    struct loopq_item *next;
};

struct loopq {
    pthread_mutex_t lock;
    struct loopq_item *head, *tail;
    struct event *ev;
    bool closed;
};

static void loopq_run_list(struct loopq_item *it)
{
    while (it) {
        struct loopq_item *next = it->next;
        it->fn(it->arg);
        free(it);
        it = next;
    }
}

void loopq_drain(struct loopq *q)
{
    struct loopq_item *list;

    pthread_mutex_lock(&q->lock);
    list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    loopq_run_list(list);
}

static void loopq_on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loopq_drain(arg);
}

int loopq_new(struct event_base *base, struct loopq **out)
{
    struct loopq *q = calloc(1, sizeof(*q));

    if (!q)
        return RD_ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    q->ev = event_new(base, -1, 0, loopq_on_event, q);
    if (!q->ev) {
        pthread_mutex_destroy(&q->lock);
        free(q);
        return RD_ENOMEM;
    }
    *out = q;
    return RD_OK;
}

int loopq_push(struct loopq *q, void (*fn)(void *arg), void *arg)
{
    struct loopq_item *it = malloc(sizeof(*it));

    if (!it)
        return RD_ENOMEM;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        free(it);
        return RD_EUNAVAIL;
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    /* Activating an already active event is a no-op, so one wake-up may
       carry many items; the drain takes them all. */
    event_active(q->ev, EV_READ, 0);
    pthread_mutex_unlock(&q->lock);
    return RD_OK;
}

void loopq_free(struct loopq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
    loopq_drain(q);
    event_free(q->ev);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
