/* SPDX-License-Identifier: MIT */
/*
 * core/timer.c -- one-shot and repeating libevent timers for modules, kept
 * in a list per struct timers so that every timer of an owner (a module)
 * can be dropped before the owner's destroy. A handle stays valid after a
 * one-shot timer fired, until timers_cancel or timers_drop_owner; cancelling
 * a timer from inside its own callback (or dropping its owner there) is
 * safe: the handle is freed when the callback returns. Loop thread only.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "core/timer.h"

struct timer {
    struct rd_timer pub; /* first: api is the table given to timers_new */
    struct timers *ts;
    void *owner;
    struct event *ev;
    rd_timer_fn fn;
    void *arg;
    bool repeat;
    bool in_callback; /* fn is running: freeing waits until it returns */
    bool cancelled;   /* unlinked; free when the callback returns */
    struct timer *prev, *next;
};

struct timers {
    struct event_base *base;
    const struct rd_host_api *api;
    struct timer *head;
};

static void timer_unlink(struct timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->ts->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void timer_destroy(struct timer *t)
{
    event_free(t->ev);
    free(t);
}

static void timer_on_event(evutil_socket_t fd, short what, void *arg)
{
    struct timer *t = arg;

    (void)fd;
    (void)what;
    t->in_callback = true;
    t->fn(t->arg);
    t->in_callback = false;
    if (t->cancelled)
        timer_destroy(t);
}

int timers_new(struct event_base *base, const struct rd_host_api *api, struct timers **out)
{
    struct timers *ts;

    *out = NULL;
    if (!base)
        return RD_EINVAL;
    ts = calloc(1, sizeof(*ts));
    if (!ts)
        return RD_ENOMEM;
    ts->base = base;
    ts->api = api;
    *out = ts;
    return RD_OK;
}

struct rd_timer *timers_add(struct timers *ts, void *owner, uint64_t ms, bool repeat,
                            rd_timer_fn fn, void *arg)
{
    struct timer *t;
    struct timeval tv;

    if (!ts || !fn)
        return NULL;
    /* A repeating timer of 0 ms would starve the loop: 1 ms is the floor. */
    if (repeat && ms == 0)
        ms = 1;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->pub.api = ts->api;
    t->ts = ts;
    t->owner = owner;
    t->fn = fn;
    t->arg = arg;
    t->repeat = repeat;
    t->ev = event_new(ts->base, -1, repeat ? EV_PERSIST : 0, timer_on_event, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    if (event_add(t->ev, &tv) != 0) {
        timer_destroy(t);
        return NULL;
    }
    t->next = ts->head;
    if (ts->head)
        ts->head->prev = t;
    ts->head = t;
    return &t->pub;
}

void timers_cancel(struct rd_timer *pub)
{
    struct timer *t = (struct timer *)pub;

    if (!t || t->cancelled)
        return;
    event_del(t->ev);
    timer_unlink(t);
    if (t->in_callback)
        t->cancelled = true; /* timer_on_event frees it after fn returns */
    else
        timer_destroy(t);
}

void timers_drop_owner(struct timers *ts, void *owner)
{
    struct timer *t, *next;

    if (!ts)
        return;
    for (t = ts->head; t; t = next) {
        next = t->next;
        if (t->owner == owner)
            timers_cancel(&t->pub);
    }
}

void timers_free(struct timers *ts)
{
    if (!ts)
        return;
    while (ts->head)
        timers_cancel(&ts->head->pub);
    free(ts);
}
