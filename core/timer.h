/* SPDX-License-Identifier: MIT */
/*
 * core/timer.h -- libevent timers for modules, tracked per owner so the host
 * can drop every timer of a module before its destroy. Loop thread.
 */
#ifndef RELENGD_TIMER_H
#define RELENGD_TIMER_H

#include "core/module.h"

struct timers;

int timers_new(struct event_base *base, const struct rd_host_api *api, struct timers **out);
/* repeat: every ms, else once after ms. The handle stays valid until
   timers_cancel or timers_drop_owner. NULL on failure. */
struct rd_timer *timers_add(struct timers *ts, void *owner, uint64_t ms, bool repeat,
                            rd_timer_fn fn, void *arg);
/* Frees the handle (NULL-safe); safe from inside the timer's own callback,
   which then frees it when the callback returns. */
void timers_cancel(struct rd_timer *t);
void timers_drop_owner(struct timers *ts, void *owner);
void timers_free(struct timers *ts);

#endif
