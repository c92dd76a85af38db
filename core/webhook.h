/* SPDX-License-Identifier: MIT */
/*
 * core/webhook.h -- webhooks from [webhook.NAME] sections of relengd.conf:
 * url, secret, types (a bus filter), timeout, max_attempts. Each webhook
 * delivers events in id order from core_events, keeping its cursor in
 * core_webhook_cursors, so nothing is lost across restarts. A delivery is a
 * POST of the envelope with X-Relengd-Event, X-Relengd-Delivery and
 * X-Relengd-Signature: sha256=<hex HMAC-SHA256(secret, body)>; failures are
 * retried with exponential backoff (1 s doubling, capped at 5 min) up to
 * max_attempts, then skipped with a WARN. Runs on the loop thread through
 * core/fetch; the publisher never waits.
 */
#ifndef RELENGD_WEBHOOK_H
#define RELENGD_WEBHOOK_H

#include "core/bus.h"
#include "core/fetch.h"
#include "core/metrics.h"
#include "core/store.h"

struct webhook_conf {
    const char *name;
    const char *url;
    const char *secret;
    const char *types; /* filter, "" all */
    uint64_t timeout_ms;
    int64_t max_attempts;
};

struct webhooks;

int webhooks_new(struct event_base *base, struct store *s, struct bus *b, struct fetch *f,
                 struct metrics *ms, struct webhooks **out);
/* Replaces the set of webhooks (start and SIGHUP). Loop thread. Copies conf.
   Checks every conf first (RD_EINVAL changes nothing). A webhook that stays
   keeps its cursor and its delivery in flight; a new one starts after the
   newest event; one no longer listed is aborted and its cursor row deleted. */
int webhooks_configure(struct webhooks *w, const struct webhook_conf *confs, size_t n,
                       struct rd_error *err);
/* The retry delay after the first failed attempt (default 1 s) and its cap
   (default 5 min); it doubles in between. Tests make it short. */
void webhooks_set_backoff_ms(struct webhooks *w, uint64_t first_ms, uint64_t max_ms);
/* Call after each commit (loop thread) -- wakes idle deliveries. */
void webhooks_kick(struct webhooks *w);
void webhooks_free(struct webhooks *w);
/* hex HMAC-SHA256 of body with secret into out[65]. Exposed for tests. */
void webhook_sign(const char *secret, const char *body, size_t len, char out[65]);
/* New reference: [{"name","types","cursor","attempts","next_ms","in_flight",
   "last_error"}], never the URL or secret. */
json_t *webhooks_status(struct webhooks *w);

#endif
