/* SPDX-License-Identifier: MIT */
/*
 * core/fetch.h -- one curl multi handle driven by the libevent loop (socket
 * and timer callbacks, the hiperfifo pattern). curl_global_init is called
 * once in main, not here. Loop thread.
 */
#ifndef RELENGD_FETCH_H
#define RELENGD_FETCH_H

#include "core/module.h"

struct fetch;

int fetch_new(struct event_base *base, struct fetch **out);
/* Takes easy, even on failure (then done is not called). done runs on the
   loop thread with the result; the easy handle is cleaned up after done. */
int fetch_add(struct fetch *f, void *owner, CURL *easy, rd_fetch_done_fn done, void *arg);
/* done callbacks may call fetch_add and fetch_drop_owner; none of these
   functions may be called from inside a curl callback (write, header,
   progress), and fetch_free not from a done callback.
   Aborts the owner's transfers (done is called with CURLE_ABORTED_BY_CALLBACK,
   synchronously, oldest first). */
void fetch_drop_owner(struct fetch *f, void *owner);
int fetch_active(struct fetch *f);
void fetch_free(struct fetch *f); /* aborts what is left, as drop_owner does */

#endif
