/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/routes_worker.c -- the worker protocol: claim (a
 * long-poll), reclaim, report, and the external claim. Handlers run on HTTP
 * threads. A waiting claim sleeps on d->claim_cond (never holding d->lock
 * across a store call) and is woken after commits that may have made work
 * (task.pending, our own reports and expiries) or when another claim held
 * a task back for it (placement).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/lease.h"

#define WAIT_CAP_MS 20000     /* the protocol's own limit on "wait" */
#define RETRY_AFTER_MS 1000   /* told to a worker when every long-poll slot is taken */
#define MAX_CAPABILITIES 4096 /* bytes of the capabilities object */

bool dispatch_require_worker_scope(struct rd_req *r, const char *worker_type)
{
    char scope[96];

    snprintf(scope, sizeof(scope), "worker:%s", worker_type);
    if (rd_req_has_scope(r, scope))
        return true;
    rd_reply_error(r, 403, "insufficient_scope", "this needs a token with the scope %s", scope);
    return false;
}

bool dispatch_run_params(struct rd_req *r, const char **task_id, uint32_t *run_id)
{
    *task_id = rd_req_param(r, "task_id");
    if (!dispatch_id_valid(*task_id) || !dispatch_run_id_parse(rd_req_param(r, "run_id"), run_id)) {
        rd_reply_error(r, 404, "unknown_run",
                       "no such run (task ids are 1..64 of [A-Za-z0-9_.-], run ids numbers)");
        return false;
    }
    return true;
}

struct info_read {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    struct dispatch_run_info *info;
};

static int info_tx(struct rd_tx *tx, void *arg)
{
    struct info_read *ir = arg;
    return dispatch_run_info_get(ir->d, tx, ir->task_id, ir->run_id, ir->info);
}

int dispatch_run_lookup(struct dispatch *d, struct rd_req *r, const char **task_id,
                        uint32_t *run_id, struct dispatch_run_info *info)
{
    struct info_read ir = {.d = d, .info = info};
    int rc;

    if (!dispatch_run_params(r, task_id, run_id))
        return RD_EINVAL;
    ir.task_id = *task_id;
    ir.run_id = *run_id;
    rc = rd_store_read(d->h, info_tx, &ir);
    if (rc == RD_ENOTFOUND) {
        rd_reply_error(r, 404, "unknown_run", "no run %s/%u", *task_id, *run_id);
        return RD_EINVAL;
    }
    return rc;
}

int dispatch_run_for_worker(struct dispatch *d, struct rd_req *r, const char **task_id,
                            uint32_t *run_id, struct dispatch_run_info *info)
{
    int rc = dispatch_run_lookup(d, r, task_id, run_id, info);

    if (rc == RD_OK && !dispatch_require_worker_scope(r, info->worker_type))
        return RD_EINVAL;
    return rc;
}

/* Per-run handlers share this: the path's run, checked for the caller. */
struct info_req {
    const char *task_id;
    uint32_t run_id;
    struct dispatch_run_info info;
};

static int run_for_worker(struct dispatch *d, struct rd_req *r, struct info_req *ir)
{
    return dispatch_run_for_worker(d, r, &ir->task_id, &ir->run_id, &ir->info);
}

/* ------------------------------------------------------------- claim */

struct claim_req {
    const char *worker_id;
    const char *worker_type;
    int capacity;
    double wait_s;
    char *capabilities;    /* owned JSON text or NULL */
    const json_t *running; /* borrowed from the body, or NULL */
};

static int claim_parse(const json_t *body, struct claim_req *q, char *why, size_t why_len)
{
    const json_t *v;

    if (!json_is_object(body)) {
        snprintf(why, why_len, "the body must be a JSON object");
        return RD_EINVAL;
    }
    q->worker_id = json_string_value(json_object_get(body, "workerId"));
    if (!dispatch_worker_id_valid(q->worker_id) || strncmp(q->worker_id, "external:", 9) == 0) {
        snprintf(why, why_len, "workerId: required, 1..64 of [A-Za-z0-9_.:-], not external:*");
        return RD_EINVAL;
    }
    q->worker_type = json_string_value(json_object_get(body, "workerType"));
    if (!dispatch_id_valid(q->worker_type)) {
        snprintf(why, why_len, "workerType: required, 1..64 of [A-Za-z0-9_.-]");
        return RD_EINVAL;
    }
    q->capacity = 1;
    v = json_object_get(body, "capacity");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > DISPATCH_MAX_CAPACITY) {
            snprintf(why, why_len, "capacity: an integer 1..%d", DISPATCH_MAX_CAPACITY);
            return RD_EINVAL;
        }
        q->capacity = (int)json_integer_value(v);
    }
    q->wait_s = 0;
    v = json_object_get(body, "wait");
    if (v) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 20) {
            snprintf(why, why_len, "wait: seconds, 0..20");
            return RD_EINVAL;
        }
        q->wait_s = json_number_value(v);
    }
    v = json_object_get(body, "running");
    if (v && !json_is_null(v)) {
        const json_t *r;
        size_t i;
        if (!json_is_array(v) || json_array_size(v) > 256) {
            snprintf(why, why_len, "running: an array of {taskId, runId} (what the worker runs)");
            return RD_EINVAL;
        }
        json_array_foreach(v, i, r) if (!json_is_object(r) ||
                                        !json_is_string(json_object_get(r, "taskId")) ||
                                        !json_is_integer(json_object_get(r, "runId")))
        {
            snprintf(why, why_len, "running[%zu]: {\"taskId\": string, \"runId\": integer}", i);
            return RD_EINVAL;
        }
        q->running = v;
    }
    v = json_object_get(body, "capabilities");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            snprintf(why, why_len, "capabilities: an object {platform, cores, labels}");
            return RD_EINVAL;
        }
        q->capabilities = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (!q->capabilities)
            return RD_ENOMEM;
        if (strlen(q->capabilities) > MAX_CAPABILITIES) {
            snprintf(why, why_len, "capabilities: at most %d bytes of JSON", MAX_CAPABILITIES);
            return RD_EINVAL;
        }
    }
    return RD_OK;
}

/* A copy of the other waiters taken under d->lock, since they may change
   once it is released; cap entries, allocated once per claim. */
struct snapshot {
    size_t cap;
    struct dispatch_place_worker *ws;
    char (*ids)[65];
    char (*labels)[RD_TASK_ID_MAX * 2 + 1];
    char (*branches)[256];
};

static void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    free(s->ws);
    free(s->ids);
    free(s->labels);
    free(s->branches);
    free(s);
}

static struct snapshot *snapshot_new(size_t cap)
{
    struct snapshot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cap = cap ? cap : 1;
    s->ws = calloc(s->cap, sizeof(*s->ws));
    s->ids = calloc(s->cap, sizeof(*s->ids));
    s->labels = calloc(s->cap, sizeof(*s->labels));
    s->branches = calloc(s->cap, sizeof(*s->branches));
    if (!s->ws || !s->ids || !s->labels || !s->branches) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

/* Under d->lock: copies the other known waiters of the same type. */
static size_t snapshot_take(struct dispatch *d, const struct dispatch_waiter *me,
                            struct snapshot *s)
{
    size_t n = 0;

    for (struct dispatch_waiter *w = d->waiters; w && n < s->cap; w = w->next) {
        if (w == me || !w->known || strcmp(w->worker_type, me->worker_type) != 0 ||
            strcmp(w->worker_id, me->worker_id) == 0)
            continue;
        s->ws[n].speed = w->speed;
        s->ws[n].free = w->free;
        s->ws[n].last_label = NULL;
        s->ws[n].last_branch = NULL;
        if (w->has_last) {
            snprintf(s->labels[n], sizeof(s->labels[n]), "%s", w->last_label);
            snprintf(s->branches[n], sizeof(s->branches[n]), "%s", w->last_branch);
            s->ws[n].last_label = s->labels[n];
            s->ws[n].last_branch = s->branches[n];
        }
        snprintf(s->ids[n], sizeof(s->ids[n]), "%s", w->worker_id);
        n++;
    }
    return n;
}

static void waiter_remove(struct dispatch *d, struct dispatch_waiter *me)
{
    for (struct dispatch_waiter **p = &d->waiters; *p; p = &(*p)->next)
        if (*p == me) {
            *p = me->next;
            break;
        }
    if (me->preferred) {
        /* Tasks may have been held back for us that we did not take. */
        d->claim_gen++;
        pthread_cond_broadcast(&d->claim_cond);
    }
}

static int claim(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct claim_req q = {0};
    struct dispatch_waiter me = {0};
    struct dispatch_claim c = {0};
    struct snapshot *snap = NULL;
    char why[160] = "";
    uint64_t wait_ms, end_ms, gen0;
    bool waiting = false, busy = false;
    json_t *reply = NULL;
    int rc;

    rc = claim_parse(rd_req_body(r), &q, why, sizeof(why));
    if (rc == RD_EINVAL) {
        rc = rd_reply_error(r, 400, "bad_request", "%s", why);
        goto out;
    }
    if (rc != RD_OK)
        goto out;
    if (!dispatch_require_worker_scope(r, q.worker_type))
        goto out;
    snap = snapshot_new((size_t)d->conf.max_waiting);
    if (!snap) {
        rc = RD_ENOMEM;
        goto out;
    }
    wait_ms = dispatch_wait_ms(q.wait_s, d->conf.max_wait_ms < WAIT_CAP_MS ? d->conf.max_wait_ms
                                                                           : WAIT_CAP_MS);
    snprintf(me.worker_id, sizeof(me.worker_id), "%s", q.worker_id);
    snprintf(me.worker_type, sizeof(me.worker_type), "%s", q.worker_type);
    me.free = q.capacity;
    if (wait_ms > 0) {
        waiting = dispatch_waiting_enter(d);
        if (!waiting) {
            busy = true;
            wait_ms = 0;
        } else {
            pthread_mutex_lock(&d->lock);
            me.next = d->waiters;
            d->waiters = &me;
            pthread_mutex_unlock(&d->lock);
        }
    }
    end_ms = dispatch_mono_ms() + wait_ms;
    c.d = d;
    c.worker_id = q.worker_id;
    c.worker_type = q.worker_type;
    c.capabilities = q.capabilities;
    c.running = q.running;
    c.capacity = q.capacity;
    c.want = q.capacity;
    c.others = snap->ws;
    c.other_ids = snap->ids;
    for (;;) {
        uint64_t until, now;

        pthread_mutex_lock(&d->lock);
        gen0 = d->claim_gen;
        me.kicked = false;
        c.n_others = waiting ? snapshot_take(d, &me, snap) : 0;
        pthread_mutex_unlock(&d->lock);

        rc = dispatch_batch_write(d, dispatch_claim_tx, &c);
        if (rc != RD_OK)
            goto out;
        for (size_t i = 0; i < c.n_waited; i++) /* committed: count each once */
            rd_metric_observe(d->m_wait, c.waited_s[i]);
        if (c.n_lost > 0) {
            dispatch_wake_claims(d); /* graph's retries of the lost runs */
            dispatch_wake_logs(d);
            dispatch_schedule_compress(d);
        }

        pthread_mutex_lock(&d->lock);
        me.known = true;
        me.has_last = c.has_last;
        snprintf(me.last_label, sizeof(me.last_label), "%s", c.last_label);
        snprintf(me.last_branch, sizeof(me.last_branch), "%s", c.last_branch);
        me.speed = c.speed;
        if (c.held_for[0]) {
            for (struct dispatch_waiter *w = d->waiters; w; w = w->next)
                if (strcmp(w->worker_id, c.held_for) == 0) {
                    w->kicked = true;
                    w->preferred = true;
                }
            pthread_cond_broadcast(&d->claim_cond);
        }
        pthread_mutex_unlock(&d->lock);

        now = dispatch_mono_ms();
        if (json_array_size(c.tasks) > 0 || c.quarantined || now >= end_ms)
            break;
        until = end_ms;
        if (c.recheck_ms) {
            uint64_t wall = rd_now_ms(d->h);
            uint64_t rem = c.recheck_ms > wall ? c.recheck_ms - wall : 0;
            if (now + rem + 1 < until)
                until = now + rem + 1;
        }
        pthread_mutex_lock(&d->lock);
        while (d->claim_gen == gen0 && !me.kicked && !d->stopping && dispatch_mono_ms() < until)
            dispatch_cond_wait_until(&d->claim_cond, &d->lock, until);
        busy = d->stopping;
        pthread_mutex_unlock(&d->lock);
        if (busy) {
            busy = false;
            break;
        }
    }
    if (c.earliest_due)
        dispatch_schedule_expiry(d, c.earliest_due);

    reply = json_pack("{s:O}", "tasks", c.tasks);
    if (!reply) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (c.quarantined)
        json_object_set_new(reply, "quarantined", json_true());
    if (busy)
        json_object_set_new(reply, "retryAfter", json_integer(RETRY_AFTER_MS));
    rc = rd_reply_json(r, 200, reply);
out:
    if (waiting) {
        pthread_mutex_lock(&d->lock);
        waiter_remove(d, &me);
        pthread_mutex_unlock(&d->lock);
        dispatch_waiting_leave(d);
    }
    json_decref(c.tasks);
    free(q.capabilities);
    snapshot_free(snap);
    return rc;
}

/* ----------------------------------------------------------- reclaim */

static int reclaim(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct info_req ir;
    struct dispatch_reclaim rc_ = {.d = d};
    int rc;

    rc = run_for_worker(d, r, &ir);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    rc_.task_id = ir.task_id;
    rc_.run_id = ir.run_id;
    rc = dispatch_batch_write(d, dispatch_reclaim_tx, &rc_);
    if (rc != RD_OK)
        return rc;
    if (rc_.conflict)
        return rd_reply_error(r, 409, "run_not_running", "%s", rc_.why);
    if (rc_.notfound)
        return rd_reply_error(r, 404, "unknown_run", "no run %s/%u", ir.task_id, ir.run_id);
    return rd_reply_json(r, 200, json_pack("{s:I}", "takenUntil", (json_int_t)rc_.taken_until));
}

/* ------------------------------------------------------------ report */

static const char *const exception_reasons[] = {
    "worker-shutdown", "malformed-payload", "internal-error", "intermittent-task", NULL,
};

/* Validates a report body; fills state, reason, exit code. */
static int report_parse(const json_t *body, struct dispatch_report *p, char *why, size_t len)
{
    const json_t *ex;
    const char *state = json_string_value(json_object_get(body, "state"));
    const char *reason = json_string_value(json_object_get(body, "reason"));

    if (!json_is_object(body)) {
        snprintf(why, len, "the body must be a JSON object");
        return RD_EINVAL;
    }
    if (!state || (strcmp(state, "completed") != 0 && strcmp(state, "failed") != 0 &&
                   strcmp(state, "exception") != 0)) {
        snprintf(why, len, "state: one of completed, failed, exception");
        return RD_EINVAL;
    }
    if (json_object_get(body, "reason") && !json_is_null(json_object_get(body, "reason")) &&
        !reason) {
        snprintf(why, len, "reason: a string");
        return RD_EINVAL;
    }
    if (strcmp(state, "exception") == 0) {
        bool ok = false;
        for (size_t i = 0; reason && exception_reasons[i]; i++)
            ok = ok || strcmp(reason, exception_reasons[i]) == 0;
        if (!ok) {
            snprintf(why, len,
                     "reason: for an exception one of worker-shutdown, malformed-payload,"
                     " internal-error, intermittent-task");
            return RD_EINVAL;
        }
    } else if (reason && strcmp(reason, state) != 0) {
        snprintf(why, len, "reason: for %s it is \"%s\" (or absent)", state, state);
        return RD_EINVAL;
    } else {
        reason = state;
    }
    p->state = state;
    p->reason = reason;
    p->exit_code = -1;
    ex = json_object_get(body, "exitCode");
    if (ex && !json_is_null(ex)) {
        if (!json_is_integer(ex) || json_integer_value(ex) < -1 || json_integer_value(ex) > 255) {
            snprintf(why, len, "exitCode: an integer -1..255");
            return RD_EINVAL;
        }
        p->exit_code = (int)json_integer_value(ex);
    }
    if (strcmp(state, "failed") == 0 && p->exit_code == 0) {
        snprintf(why, len, "exitCode: a failed run has a non-zero exit code (or none)");
        return RD_EINVAL;
    }
    return RD_OK;
}

static int report(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct info_req ir;
    struct dispatch_report p = {.d = d};
    char why[200];
    int rc;

    rc = run_for_worker(d, r, &ir);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (report_parse(rd_req_body(r), &p, why, sizeof(why)) != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "%s", why);
    p.task_id = ir.task_id;
    p.run_id = ir.run_id;
    rc = dispatch_batch_write(d, dispatch_report_tx, &p);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_run", "no run %s/%u", ir.task_id, ir.run_id);
    if (rc != RD_OK)
        return rc;
    if (p.resolved) {
        dispatch_schedule_compress(d);
        dispatch_wake_claims(d); /* a retry run, or a warm worker freed */
        dispatch_wake_logs(d);
    }
    if (p.conflict) {
        json_decref(p.run);
        return rd_reply_error(r, 409, "run_not_running", "%s", p.why);
    }
    return rd_reply_json(r, 200, p.run);
}

/* ---------------------------------------------------------- external */

static int external(struct rd_req *r, void *arg)
{
    struct dispatch *d = arg;
    struct info_req ir;
    struct dispatch_external x = {.d = d};
    const char *name = json_string_value(json_object_get(rd_req_body(r), "name"));
    char worker_id[80];
    int rc;

    rc = run_for_worker(d, r, &ir);
    if (rc != RD_OK)
        return rc == RD_EINVAL ? RD_OK : rc;
    if (!dispatch_id_valid(name) || strlen(name) > DISPATCH_NAME_MAX - 9)
        return rd_reply_error(r, 400, "bad_request",
                              "name: required, 1..55 of [A-Za-z0-9_.-] (the reporting machine)");
    snprintf(worker_id, sizeof(worker_id), "external:%s", name);
    x.task_id = ir.task_id;
    x.run_id = ir.run_id;
    x.worker_id = worker_id;
    rc = rd_store_write(d->h, dispatch_external_tx, &x);
    if (rc == RD_ECONFLICT)
        return rd_reply_error(r, 409, "run_not_pending", "%s", x.why);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_run", "no run %s/%u", ir.task_id, ir.run_id);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, x.run);
}

int dispatch_routes_worker(struct dispatch *d)
{
    int rc = rd_route(d->h, "POST", "/claim", NULL, claim, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "POST", "/runs/{task_id}/{run_id}/reclaim", NULL, reclaim, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "POST", "/runs/{task_id}/{run_id}/report", NULL, report, d);
    if (rc == RD_OK)
        rc = rd_route(d->h, "POST", "/runs/{task_id}/{run_id}/external", NULL, external, d);
    return rc;
}
