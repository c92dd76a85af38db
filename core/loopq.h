/* SPDX-License-Identifier: MIT */
/*
 * core/loopq.h -- hand work to the event loop thread from any thread: a
 * mutex-protected queue drained by one libevent event made active with
 * event_active() (libevent is set up with evthread_use_pthreads()).
 */
#ifndef RELENGD_LOOPQ_H
#define RELENGD_LOOPQ_H

#include <event2/event.h>

struct loopq;

/* Any thread after creation. */
int loopq_new(struct event_base *base, struct loopq **out);
/* Queues fn(arg) to run on the loop thread, in push order. Any thread.
   RD_ENOMEM, or RD_EUNAVAIL once loopq_close ran (fn is then not called). */
int loopq_push(struct loopq *q, void (*fn)(void *arg), void *arg);
/* Runs everything queued now, on the calling (loop) thread. */
void loopq_drain(struct loopq *q);
/* Refuses further pushes; runs what is queued; frees. Loop thread, loop stopped. */
void loopq_free(struct loopq *q);

#endif
