/* SPDX-License-Identifier: MIT */
/*
 * core/fetch.c -- one curl multi handle driven by the libevent loop (the
 * curl "hiperfifo" pattern): curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to time out (CURLMOPT_TIMERFUNCTION);
 * libevent calls back into curl_multi_socket_action; finished transfers are
 * collected with curl_multi_info_read and their done callbacks run on the
 * loop thread. Transfers are tracked per owner so the host can abort a
 * module's fetches before its destroy. Loop thread only; never from inside
 * a curl callback (write, header, progress functions). curl_global_init is
 * main's job.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "core/fetch.h"
#include "core/log.h"

struct fetch_xfer {
    CURL *easy;
    void *owner;
    rd_fetch_done_fn done;
    void *arg;
    CURLcode result;
    struct fetch_xfer *prev, *next;
};

/* One socket curl asked us to watch; curl keeps the pointer (curl_multi_assign). */
struct fetch_sock {
    struct fetch *f;
    curl_socket_t fd;
    struct event *ev;
    struct fetch_sock *prev, *next;
};

struct fetch {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct fetch_xfer *xfers; /* in flight */
    int n_xfers;
    struct fetch_sock *socks;
    bool closing; /* fetch_free runs: no new transfers */
};

/* ------------------------------------------------------------ lists */

static void xfer_link(struct fetch *f, struct fetch_xfer *x)
{
    x->prev = NULL;
    x->next = f->xfers;
    if (f->xfers)
        f->xfers->prev = x;
    f->xfers = x;
    f->n_xfers++;
}

static void xfer_unlink(struct fetch *f, struct fetch_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        f->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    f->n_xfers--;
}

static struct fetch_xfer *xfer_find(struct fetch *f, CURL *easy)
{
    for (struct fetch_xfer *x = f->xfers; x; x = x->next)
        if (x->easy == easy)
            return x;
    return NULL;
}

/* Runs done for each transfer of a detached list (oldest first), then cleans
   the easy handle up. The list is detached first so that done callbacks may
   add transfers or drop owners without upsetting the walk. */
static void xfers_finish(struct fetch_xfer *list)
{
    while (list) {
        struct fetch_xfer *next = list->next;
        if (list->done)
            list->done(list->arg, list->easy, list->result);
        curl_easy_cleanup(list->easy);
        free(list);
        list = next;
    }
}

static void sock_free(struct fetch *f, struct fetch_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        f->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->ev)
        event_free(s->ev);
    free(s);
}

/* ------------------------------------------------------------ driving */

/* Collects every finished transfer, then runs their done callbacks. */
static void fetch_check_done(struct fetch *f)
{
    struct fetch_xfer *head = NULL, *tail = NULL;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        struct fetch_xfer *x;
        CURLcode result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        result = msg->data.result; /* msg dies with remove_handle below */
        x = xfer_find(f, msg->easy_handle);
        if (!x)
            continue;
        curl_multi_remove_handle(f->multi, x->easy);
        xfer_unlink(f, x);
        x->result = result;
        if (tail)
            tail->next = x;
        else
            head = x;
        tail = x;
    }
    xfers_finish(head);
}

static void fetch_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct fetch *f = arg;
    int running = 0;

    (void)fd;
    (void)what;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    fetch_check_done(f);
}

static void fetch_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct fetch_sock *s = arg;
    struct fetch *f = s->f; /* s may be freed inside socket_action */
    int action = 0, running = 0;

    if (what & EV_READ)
        action |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    curl_multi_socket_action(f->multi, fd, action, &running);
    fetch_check_done(f);
    if (running <= 0 && f->n_xfers == 0)
        evtimer_del(f->timer);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching socket fd. */
static int fetch_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct fetch *f = userp;
    struct fetch_sock *s = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(f, s);
        curl_multi_assign(f->multi, fd, NULL);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->f = f;
        s->fd = fd;
        s->next = f->socks;
        if (f->socks)
            f->socks->prev = s;
        f->socks = s;
        curl_multi_assign(f->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (s->ev)
        event_free(s->ev); /* also deletes it */
    s->ev = event_new(f->base, fd, kind, fetch_on_socket_event, s);
    if (!s->ev || event_add(s->ev, NULL) != 0) {
        curl_multi_assign(f->multi, fd, NULL);
        sock_free(f, s);
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the one timeout curl wants. */
static int fetch_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct fetch *f = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    /* 0 means "now": the loop runs the timer on its next turn rather than
       calling socket_action from inside curl. */
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ public */

int fetch_new(struct event_base *base, struct fetch **out)
{
    struct fetch *f;

    *out = NULL;
    if (!base)
        return RD_EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return RD_ENOMEM;
    f->base = base;
    f->multi = curl_multi_init();
    f->timer = evtimer_new(base, fetch_on_timeout, f);
    if (!f->multi || !f->timer) {
        fetch_free(f);
        return RD_ENOMEM;
    }
    if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, fetch_socket_cb) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, fetch_timer_cb) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
        fetch_free(f);
        return RD_EUNAVAIL;
    }
    *out = f;
    return RD_OK;
}

int fetch_add(struct fetch *f, void *owner, CURL *easy, rd_fetch_done_fn done, void *arg)
{
    struct fetch_xfer *x = NULL;
    CURLMcode mc;

    if (!easy)
        return RD_EINVAL;
    if (!f || f->closing) {
        curl_easy_cleanup(easy);
        return f ? RD_EUNAVAIL : RD_EINVAL;
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        curl_easy_cleanup(easy);
        return RD_ENOMEM;
    }
    x->easy = easy;
    x->owner = owner;
    x->done = done;
    x->arg = arg;
    /* Signals belong to the host, and a resolver timeout must not raise one. */
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    xfer_link(f, x);
    mc = curl_multi_add_handle(f->multi, easy);
    if (mc != CURLM_OK) {
        log_msg("core", RD_WARN, "fetch: cannot add a transfer: %s", curl_multi_strerror(mc));
        xfer_unlink(f, x);
        curl_easy_cleanup(easy);
        free(x);
        return mc == CURLM_OUT_OF_MEMORY ? RD_ENOMEM : RD_EINVAL;
    }
    return RD_OK;
}

/* Detaches the owner's transfers (all of them if all), as aborted; the
   result is oldest first. */
static struct fetch_xfer *fetch_detach(struct fetch *f, bool all, void *owner)
{
    struct fetch_xfer *x, *next, *head = NULL;

    /* f->xfers is newest first, so pushing each on the front of the result
       leaves the oldest at its head. */
    for (x = f->xfers; x; x = next) {
        next = x->next;
        if (!all && x->owner != owner)
            continue;
        curl_multi_remove_handle(f->multi, x->easy);
        xfer_unlink(f, x);
        x->result = CURLE_ABORTED_BY_CALLBACK;
        x->next = head;
        head = x;
    }
    return head;
}

void fetch_drop_owner(struct fetch *f, void *owner)
{
    if (!f)
        return;
    xfers_finish(fetch_detach(f, false, owner));
}

int fetch_active(struct fetch *f)
{
    return f ? f->n_xfers : 0;
}

void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    f->closing = true;
    if (f->multi) {
        xfers_finish(fetch_detach(f, true, NULL));
        /* Closes cached connections; curl may still call the socket and
           timer callbacks, so the timer and sockets outlive it. */
        curl_multi_cleanup(f->multi);
        f->multi = NULL;
    }
    while (f->socks)
        sock_free(f, f->socks);
    if (f->timer)
        event_free(f->timer);
    free(f);
}
