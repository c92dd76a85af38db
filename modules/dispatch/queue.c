/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/queue.c -- the run state changes of dispatch_runs, each
 * inside a write transaction of its caller: enqueue and cancel (the
 * dispatch.queue service graph calls inside its own transactions), claim,
 * reclaim, external claim, report, expiry, quarantine. Calls into graph
 * (started, resolved) happen here, inside our transactions; graph may call
 * back into dispatch_enqueue() for a retry run from inside resolved(), which
 * is safe because nothing here holds a lock across those calls.
 *
 * Threads: whatever thread runs the transaction (HTTP threads, the pool for
 * expiry, graph's threads for enqueue/cancel).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/lease.h"
#include "modules/dispatch/names.h"
#include "modules/dispatch/sql.h"

#define LABEL_MAX 256
#define BRANCH_MAX 255
#define CLAIM_LOOKAHEAD 64 /* pending runs looked at beyond want (held-back ones) */

/* ------------------------------------------------------------ JSON */

static json_t *opt_int(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(st, col));
}

static json_t *opt_text(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_string(dsql_text(st, col));
}

json_t *dispatch_run_json(sqlite3_stmt *st, bool with_payload)
{
    json_t *o, *payload = NULL;
    json_error_t je;

    o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "taskId",
                  dsql_text(st, 0), "runId", (json_int_t)sqlite3_column_int64(st, 1), "source",
                  dsql_text(st, 2), "graphId", dsql_text(st, 3), "label", dsql_text(st, 4),
                  "workerType", dsql_text(st, 5), "branch", dsql_text(st, 6), "priority",
                  (json_int_t)sqlite3_column_int64(st, 7), "pendingSince",
                  (json_int_t)sqlite3_column_int64(st, 8), "deadline",
                  (json_int_t)sqlite3_column_int64(st, 9), "state", dsql_text(st, 11));
    if (!o)
        return NULL;
    if (with_payload) {
        payload = json_loads(dsql_text(st, 10), JSON_DECODE_ANY, &je);
        json_object_set_new(o, "payload", payload ? payload : json_object());
    }
    json_object_set_new(o, "workerId", opt_text(st, 12));
    json_object_set_new(o, "claimedAt", opt_int(st, 13));
    json_object_set_new(o, "takenUntil", opt_int(st, 14));
    json_object_set_new(o, "resolvedAt", opt_int(st, 15));
    json_object_set_new(o, "result", opt_text(st, 16));
    json_object_set_new(o, "reason", opt_text(st, 17));
    json_object_set_new(o, "exitCode", opt_int(st, 18));
    return o;
}

static int run_json_get(sqlite3 *db, const char *task_id, uint32_t run_id, bool with_payload,
                        json_t **out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = dsql_prepare(db, &st,
                      "SELECT " DISPATCH_RUN_COLUMNS
                      " FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
                      "sI", task_id, (int64_t)run_id);
    if (rc != RD_OK)
        return rc;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *out = dispatch_run_json(st, with_payload);
        rc = *out ? RD_OK : RD_ENOMEM;
        break;
    case SQLITE_DONE:
        rc = RD_ENOTFOUND;
        break;
    default:
        rc = RD_EIO;
    }
    dsql_finalize(st);
    return rc;
}

int dispatch_run_info_get(struct dispatch *d, struct rd_tx *tx, const char *task_id,
                          uint32_t run_id, struct dispatch_run_info *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    (void)d;
    rc = dsql_prepare(rd_tx_db(tx), &st,
                      "SELECT state, source, worker_type, coalesce(worker_id, '')"
                      " FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
                      "sI", task_id, (int64_t)run_id);
    if (rc != RD_OK)
        return rc;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        snprintf(out->state, sizeof(out->state), "%s", dsql_text(st, 0));
        snprintf(out->source, sizeof(out->source), "%s", dsql_text(st, 1));
        snprintf(out->worker_type, sizeof(out->worker_type), "%s", dsql_text(st, 2));
        snprintf(out->worker_id, sizeof(out->worker_id), "%s", dsql_text(st, 3));
        rc = RD_OK;
        break;
    case SQLITE_DONE:
        rc = RD_ENOTFOUND;
        break;
    default:
        rc = RD_EIO;
    }
    dsql_finalize(st);
    return rc;
}

/* --------------------------------------------------- enqueue, cancel */

/* Inserts the run unless it exists. source "graph" or "direct". */
static int enqueue_source(struct dispatch *d, struct rd_tx *tx, const struct rd_task_run_spec *run,
                          const char *source, bool *inserted)
{
    sqlite3 *db = rd_tx_db(tx);
    char *payload = NULL;
    int rc;

    if (!run || !dispatch_id_valid(run->task_id) || !dispatch_id_valid(run->worker_type) ||
        !run->label || !run->label[0] || strlen(run->label) > LABEL_MAX ||
        (run->branch && strlen(run->branch) > BRANCH_MAX) ||
        (run->graph_id && strlen(run->graph_id) > LABEL_MAX) ||
        (run->payload && !json_is_object(run->payload)))
        return RD_EINVAL;
    payload = run->payload ? json_dumps(run->payload, JSON_COMPACT) : strdup("{}");
    if (!payload)
        return RD_ENOMEM;
    rc = dsql_exec(db,
                   "INSERT INTO dispatch_runs (task_id, run_id, source, graph_id, label,"
                   " worker_type, branch, priority, pending_since_ms, deadline_ms, payload, state)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending')"
                   " ON CONFLICT (task_id, run_id) DO NOTHING",
                   "sIsssssiuus", run->task_id, (int64_t)run->run_id, source,
                   run->graph_id ? run->graph_id : "", run->label, run->worker_type,
                   run->branch ? run->branch : "", (int)run->priority, run->pending_since_ms,
                   run->deadline_ms, payload);
    free(payload);
    if (rc != RD_OK) {
        rd_log(d->h, RD_ERROR, "enqueue %s/%u: %s", run->task_id, run->run_id, sqlite3_errmsg(db));
        return rc;
    }
    if (inserted)
        *inserted = sqlite3_changes(db) > 0;
    if (sqlite3_changes(db) > 0 && run->deadline_ms)
        dispatch_schedule_expiry(d, run->deadline_ms);
    return RD_OK;
}

int dispatch_enqueue(void *ctx, struct rd_tx *tx, const struct rd_task_run_spec *run)
{
    return enqueue_source(ctx, tx, run, "graph", NULL);
}

int dispatch_enqueue_direct(struct dispatch *d, struct rd_tx *tx,
                            const struct rd_task_run_spec *run, bool *inserted)
{
    return enqueue_source(d, tx, run, "direct", inserted);
}

int dispatch_cancel(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id)
{
    struct dispatch *d = ctx;
    struct dispatch_run_info info;
    int rc;

    if (!task_id)
        return RD_EINVAL;
    rc = dispatch_run_info_get(d, tx, task_id, run_id, &info);
    if (rc != RD_OK)
        return rc;
    if (strcmp(info.state, "pending") != 0 && strcmp(info.state, "claimed") != 0)
        return RD_OK; /* resolved or cancelled already: nothing to withdraw */
    rc = dsql_exec(rd_tx_db(tx),
                   "UPDATE dispatch_runs SET state = 'cancelled', resolved_ms = ?3,"
                   " reason = 'canceled' WHERE task_id = ?1 AND run_id = ?2",
                   "sIu", task_id, (int64_t)run_id, rd_now_ms(d->h));
    if (rc == RD_OK) {
        /* A tail following the log sees the end (possibly before COMMIT; it
           then looks again on its next wake or timeout). */
        dispatch_wake_logs(d);
    }
    return rc;
}

/* ------------------------------------------------------------ claim */

struct candidate {
    char task_id[DISPATCH_NAME_MAX + 1];
    uint32_t run_id;
    bool from_graph;
    char *label;
    char *branch;
    uint64_t pending_since;
    uint64_t deadline;
};

static void candidates_free(struct candidate *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].label);
        free(c[i].branch);
    }
    free(c);
}

static int candidates_load(sqlite3 *db, const char *worker_type, int limit, struct candidate **out,
                           size_t *n_out)
{
    sqlite3_stmt *st = NULL;
    struct candidate *c = NULL;
    size_t n = 0;
    int rc, step;

    *out = NULL;
    *n_out = 0;
    c = calloc((size_t)limit, sizeof(*c));
    if (!c)
        return RD_ENOMEM;
    rc = dsql_prepare(db, &st,
                      "SELECT task_id, run_id, source, label, branch, pending_since_ms, deadline_ms"
                      " FROM dispatch_runs WHERE state = 'pending' AND worker_type = ?1"
                      " ORDER BY priority DESC, pending_since_ms, task_id, run_id LIMIT ?2",
                      "si", worker_type, limit);
    if (rc != RD_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && n < (size_t)limit) {
        struct candidate *k = &c[n++];
        snprintf(k->task_id, sizeof(k->task_id), "%s", dsql_text(st, 0));
        k->run_id = (uint32_t)sqlite3_column_int64(st, 1);
        k->from_graph = strcmp(dsql_text(st, 2), "graph") == 0;
        k->label = strdup(dsql_text(st, 3));
        k->branch = strdup(dsql_text(st, 4));
        k->pending_since = (uint64_t)sqlite3_column_int64(st, 5);
        k->deadline = (uint64_t)sqlite3_column_int64(st, 6);
        if (!k->label || !k->branch) {
            rc = RD_ENOMEM;
            goto out;
        }
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = RD_EIO;
out:
    dsql_finalize(st);
    if (rc != RD_OK) {
        candidates_free(c, n);
        return rc;
    }
    *out = c;
    *n_out = n;
    return RD_OK;
}

/* Registers the worker and reads what placement needs; sets c->quarantined. */
static int claim_worker(struct dispatch_claim *c, struct rd_tx *tx, uint64_t now)
{
    struct dispatch *d = c->d;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    uint64_t until;
    int rc;

    rc = dsql_exec(db,
                   "INSERT INTO dispatch_workers (worker_id, worker_type, capabilities, capacity,"
                   " first_seen_ms, last_seen_ms) VALUES (?1, ?2, coalesce(?3, '{}'), ?4, ?5, ?5)"
                   " ON CONFLICT (worker_id) DO UPDATE SET worker_type = ?2,"
                   " capabilities = coalesce(?3, capabilities), capacity = ?4, last_seen_ms = ?5",
                   "sssiu", c->worker_id, c->worker_type, c->capabilities, c->capacity, now);
    if (rc != RD_OK)
        return rc;
    rc = dsql_prepare(db, &st,
                      "SELECT quarantined, quarantine_until_ms, last_label, last_branch, speed"
                      " FROM dispatch_workers WHERE worker_id = ?1",
                      "s", c->worker_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        return RD_EIO;
    }
    c->quarantined = sqlite3_column_int(st, 0) != 0;
    until = (uint64_t)sqlite3_column_int64(st, 1);
    c->has_last = sqlite3_column_type(st, 2) != SQLITE_NULL;
    snprintf(c->last_label, sizeof(c->last_label), "%s", dsql_text(st, 2));
    snprintf(c->last_branch, sizeof(c->last_branch), "%s", dsql_text(st, 3));
    c->speed = sqlite3_column_double(st, 4);
    dsql_finalize(st);
    if (c->quarantined && until != 0 && until <= now) {
        /* The quarantine ran out. */
        c->quarantined = false;
        rc = dsql_exec(db,
                       "UPDATE dispatch_workers SET quarantined = 0, quarantine_reason = NULL,"
                       " quarantine_until_ms = 0, quarantine_by = NULL,"
                       " consecutive_exceptions = 0 WHERE worker_id = ?1",
                       "s", c->worker_id);
        if (rc == RD_OK)
            rc = rd_tx_publish(tx, "dispatch.unquarantined",
                               json_pack("{s:s, s:s}", "workerId", c->worker_id, "by", "expiry"));
        if (rc != RD_OK)
            return rc;
        rd_log(d->h, RD_INFO, "worker %s: quarantine ended", c->worker_id);
    }
    return RD_OK;
}

/* Hands run k to the worker: graph's started(), the row, the task JSON. */
static int claim_one(struct dispatch_claim *c, struct rd_tx *tx, const struct candidate *k,
                     uint64_t now, bool *refused)
{
    struct dispatch *d = c->d;
    sqlite3 *db = rd_tx_db(tx);
    uint64_t until = dispatch_lease_until(now, d->conf.lease_ms, k->deadline);
    json_t *task = NULL;
    int rc;

    *refused = false;
    if (k->from_graph) {
        rc = d->runs->started(d->runs->ctx, tx, k->task_id, k->run_id, c->worker_id);
        if (rc == RD_ECONFLICT || rc == RD_ENOTFOUND) {
            /* Graph cancelled or superseded it meanwhile: never hand it out. */
            *refused = true;
            return dsql_exec(db,
                             "UPDATE dispatch_runs SET state = 'cancelled', resolved_ms = ?3,"
                             " reason = 'refused-by-graph' WHERE task_id = ?1 AND run_id = ?2",
                             "sIu", k->task_id, (int64_t)k->run_id, now);
        }
        if (rc != RD_OK) {
            rd_log(d->h, RD_ERROR, "graph refused to start %s/%u (error %d)", k->task_id, k->run_id,
                   rc);
            return rc;
        }
    }
    rc = dsql_exec(db,
                   "UPDATE dispatch_runs SET state = 'claimed', worker_id = ?3, claimed_ms = ?4,"
                   " taken_until_ms = ?5 WHERE task_id = ?1 AND run_id = ?2",
                   "sIsuu", k->task_id, (int64_t)k->run_id, c->worker_id, now, until);
    if (rc == RD_OK)
        rc = run_json_get(db, k->task_id, k->run_id, true, &task);
    if (rc == RD_OK && json_array_append_new(c->tasks, task) != 0)
        rc = RD_ENOMEM;
    if (rc != RD_OK)
        return rc;
    if (c->earliest_due == 0 || until < c->earliest_due)
        c->earliest_due = until;
    if (c->n_waited < DISPATCH_MAX_CAPACITY)
        c->waited_s[c->n_waited++] =
            (double)(now > k->pending_since ? now - k->pending_since : 0) / 1000.0;
    return RD_OK;
}

static int release_lost(struct dispatch_claim *c, struct rd_tx *tx);

int dispatch_claim_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_claim *c = arg;
    struct dispatch *d = c->d;
    struct candidate *cand = NULL;
    struct dispatch_place_worker *ws = NULL;
    size_t n_cand = 0, i, n_ws;
    uint64_t now = rd_now_ms(d->h);
    int rc, got = 0;

    /* Outputs first: a failed group commit runs this again (batch.c). */
    json_decref(c->tasks);
    c->tasks = json_array();
    c->quarantined = false;
    c->recheck_ms = 0;
    c->held_for[0] = '\0';
    c->earliest_due = 0;
    if (!c->tasks)
        return RD_ENOMEM;
    c->n_lost = 0;
    c->n_waited = 0;
    rc = claim_worker(c, tx, now);
    if (rc == RD_OK && c->running)
        rc = release_lost(c, tx);
    if (rc != RD_OK || c->quarantined || c->want <= 0)
        goto out;
    rc = candidates_load(rd_tx_db(tx), c->worker_type, c->want + CLAIM_LOOKAHEAD, &cand, &n_cand);
    if (rc != RD_OK || n_cand == 0)
        goto out;
    /* Placement sees self at index 0, then the other waiting workers. */
    n_ws = c->n_others + 1;
    ws = calloc(n_ws, sizeof(*ws));
    if (!ws) {
        rc = RD_ENOMEM;
        goto out;
    }
    ws[0].last_label = c->has_last ? c->last_label : NULL;
    ws[0].last_branch = c->has_last ? c->last_branch : NULL;
    ws[0].speed = c->speed;
    for (i = 0; i < c->n_others; i++)
        ws[i + 1] = c->others[i];
    for (i = 0; i < n_cand && got < c->want; i++) {
        const struct candidate *k = &cand[i];
        struct dispatch_place_task t = {k->label, k->branch, k->pending_since};
        size_t pick;
        bool refused;

        if (k->deadline != 0 && k->deadline <= now) {
            dispatch_schedule_expiry(d, k->deadline); /* the expiry resolves it */
            continue;
        }
        if (k->from_graph && !d->runs)
            continue;
        ws[0].free = c->want - got;
        pick = dispatch_place_pick(&d->place, &t, now, ws, n_ws, 0);
        if (pick != 0) {
            /* Held back for a better worker that is waiting right now. */
            uint64_t until_free = k->pending_since + d->place.hold_max_ms;
            ws[pick].free--;
            snprintf(c->held_for, sizeof(c->held_for), "%s", c->other_ids[pick - 1]);
            if (c->recheck_ms == 0 || until_free < c->recheck_ms)
                c->recheck_ms = until_free;
            continue;
        }
        rc = claim_one(c, tx, k, now, &refused);
        if (rc != RD_OK)
            goto out;
        if (!refused)
            got++;
    }
    if (got > 0)
        rd_metric_add(d->m_claims, got);
out:
    candidates_free(cand, n_cand);
    free(ws);
    return rc;
}

/* ---------------------------------------------------- reclaim, external */

int dispatch_reclaim_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_reclaim *rc_ = arg;
    struct dispatch *d = rc_->d;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    uint64_t now = rd_now_ms(d->h), taken, deadline, lease;
    char state[16], worker_id[65];
    int rc;

    rc = dsql_prepare(
        db, &st,
        "SELECT state, coalesce(taken_until_ms, 0), deadline_ms, coalesce(worker_id, '')"
        " FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
        "sI", rc_->task_id, (int64_t)rc_->run_id);
    rc_->conflict = false;
    rc_->notfound = false;
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        rc_->notfound = true; /* not an error: keeps a group commit going */
        return RD_OK;
    }
    snprintf(state, sizeof(state), "%s", dsql_text(st, 0));
    taken = (uint64_t)sqlite3_column_int64(st, 1);
    deadline = (uint64_t)sqlite3_column_int64(st, 2);
    snprintf(worker_id, sizeof(worker_id), "%s", dsql_text(st, 3));
    dsql_finalize(st);
    if (strcmp(state, "claimed") != 0) {
        snprintf(rc_->why, sizeof(rc_->why), "run %s/%u is %s, not running: stop it", rc_->task_id,
                 rc_->run_id, state);
        return RD_ECONFLICT;
    }
    if (dispatch_expiry_reason(now, 1, taken, deadline)) {
        snprintf(rc_->why, sizeof(rc_->why), "run %s/%u: %s, stop it", rc_->task_id, rc_->run_id,
                 dispatch_expiry_reason(now, 1, taken, deadline));
        dispatch_schedule_expiry(d, now);
        rc_->conflict = true;
        return RD_OK;
    }
    lease = strncmp(worker_id, "external:", 9) == 0 ? d->conf.external_lease_ms : d->conf.lease_ms;
    rc_->taken_until = dispatch_lease_until(now, lease, deadline);
    rc = dsql_exec(
        db, "UPDATE dispatch_runs SET taken_until_ms = ?3 WHERE task_id = ?1 AND run_id = ?2",
        "sIu", rc_->task_id, (int64_t)rc_->run_id, rc_->taken_until);
    if (rc == RD_OK)
        rc = dsql_exec(db, "UPDATE dispatch_workers SET last_seen_ms = ?2 WHERE worker_id = ?1",
                       "su", worker_id, now);
    return rc;
}

int dispatch_external_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_external *x = arg;
    struct dispatch *d = x->d;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    struct candidate k = {0};
    char state[16];
    uint64_t now = rd_now_ms(d->h), until;
    int rc;

    rc = dsql_prepare(db, &st,
                      "SELECT state, source, deadline_ms FROM dispatch_runs"
                      " WHERE task_id = ?1 AND run_id = ?2",
                      "sI", x->task_id, (int64_t)x->run_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        return RD_ENOTFOUND;
    }
    snprintf(state, sizeof(state), "%s", dsql_text(st, 0));
    k.from_graph = strcmp(dsql_text(st, 1), "graph") == 0;
    k.deadline = (uint64_t)sqlite3_column_int64(st, 2);
    dsql_finalize(st);
    if (strcmp(state, "pending") != 0) {
        snprintf(x->why, sizeof(x->why), "run %s/%u is %s, not pending", x->task_id, x->run_id,
                 state);
        return RD_ECONFLICT;
    }
    if (k.from_graph) {
        if (!d->runs) {
            snprintf(x->why, sizeof(x->why), "the graph module is not loaded");
            return RD_ECONFLICT;
        }
        rc = d->runs->started(d->runs->ctx, tx, x->task_id, x->run_id, x->worker_id);
        if (rc == RD_ECONFLICT || rc == RD_ENOTFOUND) {
            snprintf(x->why, sizeof(x->why), "graph refused: run %s/%u was cancelled or superseded",
                     x->task_id, x->run_id);
            return RD_ECONFLICT;
        }
        if (rc != RD_OK)
            return rc;
    }
    until = dispatch_lease_until(now, d->conf.external_lease_ms, k.deadline);
    rc = dsql_exec(db,
                   "UPDATE dispatch_runs SET state = 'claimed', worker_id = ?3, claimed_ms = ?4,"
                   " taken_until_ms = ?5 WHERE task_id = ?1 AND run_id = ?2",
                   "sIsuu", x->task_id, (int64_t)x->run_id, x->worker_id, now, until);
    if (rc == RD_OK)
        rc = run_json_get(db, x->task_id, x->run_id, true, &x->run);
    if (rc == RD_OK)
        dispatch_schedule_expiry(d, until);
    return rc;
}

/* ------------------------------------------------------- quarantine */

int dispatch_quarantine_tx(struct dispatch *d, struct rd_tx *tx, const char *worker_id,
                           const char *reason, uint64_t until, const char *by)
{
    sqlite3 *db = rd_tx_db(tx);
    int rc;

    rc = dsql_exec(db,
                   "UPDATE dispatch_workers SET quarantined = 1, quarantine_reason = ?2,"
                   " quarantine_until_ms = ?3, quarantine_by = ?4 WHERE worker_id = ?1",
                   "ssus", worker_id, reason, until, by);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_changes(db) == 0)
        return RD_ENOTFOUND;
    rd_log(d->h, RD_INFO, "worker %s quarantined by %s: %s", worker_id, by, reason);
    return rd_tx_publish(tx, "dispatch.quarantined",
                         json_pack("{s:s, s:s, s:I, s:s}", "workerId", worker_id, "reason", reason,
                                   "until", (json_int_t)until, "by", by));
}

/* ------------------------------------------------ report and expiry */

/* Worker statistics after one of its runs resolved: last label/branch,
   exception streak (and automatic quarantine), speed score. */
static int worker_after_run(struct dispatch *d, struct rd_tx *tx, const char *worker_id,
                            const char *label, const char *branch, const char *state,
                            const char *reason, uint64_t duration_ms)
{
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int64_t streak = 0, quarantined = 0, speed_n = 0, label_n = 0;
    double speed = 1.0, label_mean = 0;
    bool counts = strcmp(state, "exception") == 0 && strcmp(reason, "worker-shutdown") != 0;
    bool completed = strcmp(state, "completed") == 0;
    int rc;

    if (strncmp(worker_id, "external:", 9) == 0 || !worker_id[0])
        return RD_OK;
    rc = dsql_prepare(db, &st,
                      "SELECT consecutive_exceptions, quarantined, speed, speed_n"
                      " FROM dispatch_workers WHERE worker_id = ?1",
                      "s", worker_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        streak = sqlite3_column_int64(st, 0);
        quarantined = sqlite3_column_int64(st, 1);
        speed = sqlite3_column_double(st, 2);
        speed_n = sqlite3_column_int64(st, 3);
    } else {
        dsql_finalize(st);
        return RD_OK; /* the worker row went away: nothing to keep */
    }
    dsql_finalize(st);
    if (counts)
        streak++;
    else if (strcmp(state, "exception") != 0)
        streak = 0;
    if (completed) {
        rc = dsql_prepare(db, &st, "SELECT n, mean_ms FROM dispatch_labels WHERE label = ?1", "s",
                          label);
        if (rc != RD_OK)
            return rc;
        if (sqlite3_step(st) == SQLITE_ROW) {
            label_n = sqlite3_column_int64(st, 0);
            label_mean = sqlite3_column_double(st, 1);
        }
        dsql_finalize(st);
        speed = dispatch_speed_update(speed, (uint64_t)speed_n, label_mean, (uint64_t)label_n,
                                      duration_ms, d->conf.speed_alpha);
        if (label_n > 0 && duration_ms > 0)
            speed_n++;
        rc = dsql_exec(db,
                       "INSERT INTO dispatch_labels (label, n, mean_ms) VALUES (?1, 1, ?2)"
                       " ON CONFLICT (label) DO UPDATE SET n = n + 1, mean_ms = ?3",
                       "sdd", label, (double)duration_ms,
                       dispatch_mean_update(label_mean, (uint64_t)label_n, (double)duration_ms));
        if (rc != RD_OK)
            return rc;
    }
    rc = dsql_exec(db,
                   "UPDATE dispatch_workers SET n_runs = n_runs + 1, last_label = ?2,"
                   " last_branch = ?3, consecutive_exceptions = ?4, speed = ?5, speed_n = ?6"
                   " WHERE worker_id = ?1",
                   "sssIdI", worker_id, label, branch, streak, speed, speed_n);
    if (rc != RD_OK)
        return rc;
    if (counts && !quarantined && d->conf.quarantine_after > 0 &&
        streak >= d->conf.quarantine_after) {
        char why[96];
        uint64_t until =
            d->conf.auto_quarantine_ms ? rd_now_ms(d->h) + d->conf.auto_quarantine_ms : 0;
        snprintf(why, sizeof(why), "%lld consecutive exceptions", (long long)streak);
        rc = dispatch_quarantine_tx(d, tx, worker_id, why, until, "automatic");
    }
    return rc;
}

struct run_row {
    char state[16];
    bool from_graph;
    char worker_id[65];
    char result[16];
    char reason[32];
    int64_t exit_code;
    uint64_t claimed_ms;
    char *label;
    char *branch;
};

static int run_row_get(sqlite3 *db, const char *task_id, uint32_t run_id, struct run_row *r)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = dsql_prepare(db, &st,
                      "SELECT state, source, coalesce(worker_id, ''), coalesce(result, ''),"
                      " coalesce(reason, ''), coalesce(exit_code, -1), coalesce(claimed_ms, 0),"
                      " label, branch FROM dispatch_runs WHERE task_id = ?1 AND run_id = ?2",
                      "sI", task_id, (int64_t)run_id);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        dsql_finalize(st);
        return RD_ENOTFOUND;
    }
    snprintf(r->state, sizeof(r->state), "%s", dsql_text(st, 0));
    r->from_graph = strcmp(dsql_text(st, 1), "graph") == 0;
    snprintf(r->worker_id, sizeof(r->worker_id), "%s", dsql_text(st, 2));
    snprintf(r->result, sizeof(r->result), "%s", dsql_text(st, 3));
    snprintf(r->reason, sizeof(r->reason), "%s", dsql_text(st, 4));
    r->exit_code = sqlite3_column_int64(st, 5);
    r->claimed_ms = (uint64_t)sqlite3_column_int64(st, 6);
    r->label = strdup(dsql_text(st, 7));
    r->branch = strdup(dsql_text(st, 8));
    dsql_finalize(st);
    return r->label && r->branch ? RD_OK : RD_ENOMEM;
}

static void run_row_fini(struct run_row *r)
{
    free(r->label);
    free(r->branch);
}

/* Resolves a pending or claimed run: graph's resolved() (which may enqueue
   a retry through us), the row, the worker's statistics, the event for
   runs graph does not know. *refused when graph would not take it (the run
   is then marked cancelled here). */
static int resolve_run(struct dispatch *d, struct rd_tx *tx, const char *task_id, uint32_t run_id,
                       const struct run_row *row, const char *state, const char *reason,
                       int exit_code, bool *refused)
{
    sqlite3 *db = rd_tx_db(tx);
    uint64_t now = rd_now_ms(d->h);
    int rc;

    *refused = false;
    if (row->from_graph) {
        rc = d->runs
                 ? d->runs->resolved(d->runs->ctx, tx, task_id, run_id, state, reason, exit_code)
                 : RD_ECONFLICT;
        if (rc == RD_ECONFLICT || rc == RD_ENOTFOUND) {
            *refused = true;
            return dsql_exec(db,
                             "UPDATE dispatch_runs SET state = 'cancelled', resolved_ms = ?3,"
                             " reason = 'refused-by-graph' WHERE task_id = ?1 AND run_id = ?2",
                             "sIu", task_id, (int64_t)run_id, now);
        }
        if (rc != RD_OK)
            return rc;
    }
    rc = dsql_exec(db,
                   "UPDATE dispatch_runs SET state = 'resolved', resolved_ms = ?3, result = ?4,"
                   " reason = ?5, exit_code = ?6 WHERE task_id = ?1 AND run_id = ?2",
                   "sIussi", task_id, (int64_t)run_id, now, state, reason, exit_code);
    if (rc == RD_OK && strcmp(row->state, "claimed") == 0)
        rc = worker_after_run(d, tx, row->worker_id, row->label, row->branch, state, reason,
                              now > row->claimed_ms ? now - row->claimed_ms : 0);
    if (rc == RD_OK && !row->from_graph)
        rc = rd_tx_publish(tx, "dispatch.resolved",
                           json_pack("{s:s, s:I, s:s, s:s, s:i, s:s, s:s}", "taskId", task_id,
                                     "runId", (json_int_t)run_id, "state", state, "reason", reason,
                                     "exitCode", exit_code, "workerId", row->worker_id, "source",
                                     "direct"));
    return rc;
}

int dispatch_report_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_report *p = arg;
    struct dispatch *d = p->d;
    sqlite3 *db = rd_tx_db(tx);
    struct run_row row = {0};
    bool refused;
    int rc;

    /* Outputs first: a failed group commit runs this again (batch.c). */
    json_decref(p->run);
    p->run = NULL;
    p->conflict = false;
    p->resolved = false;
    p->why[0] = '\0';
    rc = run_row_get(db, p->task_id, p->run_id, &row);
    if (rc != RD_OK)
        goto out;
    if (strcmp(row.state, "resolved") == 0) {
        /* The same report again (a worker that lost our answer) is fine. */
        if (strcmp(row.result, p->state) == 0 && strcmp(row.reason, p->reason) == 0 &&
            row.exit_code == p->exit_code) {
            rc = run_json_get(db, p->task_id, p->run_id, false, &p->run);
            goto out;
        }
        p->conflict = true;
        snprintf(p->why, sizeof(p->why), "run %s/%u was resolved already as %s/%s", p->task_id,
                 p->run_id, row.result, row.reason);
        goto out;
    }
    if (strcmp(row.state, "claimed") != 0) {
        p->conflict = true;
        snprintf(p->why, sizeof(p->why), "run %s/%u is %s, not running", p->task_id, p->run_id,
                 row.state);
        goto out;
    }
    rc = resolve_run(d, tx, p->task_id, p->run_id, &row, p->state, p->reason, p->exit_code,
                     &refused);
    if (rc != RD_OK)
        goto out;
    p->resolved = true;
    if (refused) {
        p->conflict = true;
        snprintf(p->why, sizeof(p->why),
                 "graph refused the result: run %s/%u was cancelled or superseded", p->task_id,
                 p->run_id);
        goto out;
    }
    rc = run_json_get(db, p->task_id, p->run_id, false, &p->run);
out:
    run_row_fini(&row);
    return rc;
}

int dispatch_expire_tx(struct rd_tx *tx, void *arg)
{
    struct dispatch_expire *e = arg;
    struct dispatch *d = e->d;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    struct {
        char task_id[DISPATCH_NAME_MAX + 1];
        uint32_t run_id;
    } due[DISPATCH_EXPIRE_BATCH];
    size_t n_due = 0, i;
    uint64_t now = rd_now_ms(d->h);
    int rc, step;

    e->next_due = UINT64_MAX;
    e->n_expired = 0;
    e->n_resolved = 0;
    rc = dsql_prepare(db, &st,
                      "SELECT task_id, run_id FROM dispatch_runs"
                      " WHERE state = 'claimed' AND taken_until_ms <= ?1"
                      " UNION SELECT task_id, run_id FROM dispatch_runs"
                      " WHERE state IN ('pending', 'claimed') AND deadline_ms > 0"
                      " AND deadline_ms <= ?1 LIMIT ?2",
                      "ui", now, DISPATCH_EXPIRE_BATCH);
    if (rc != RD_OK)
        return rc;
    while (n_due < DISPATCH_EXPIRE_BATCH && (step = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(due[n_due].task_id, sizeof(due[n_due].task_id), "%s", dsql_text(st, 0));
        due[n_due].run_id = (uint32_t)sqlite3_column_int64(st, 1);
        n_due++;
    }
    dsql_finalize(st);
    for (i = 0; i < n_due; i++) {
        struct run_row row = {0};
        sqlite3_stmt *q = NULL;
        uint64_t taken = 0, deadline = 0;
        const char *reason;
        bool refused;

        rc = dsql_prepare(db, &q,
                          "SELECT coalesce(taken_until_ms, 0), deadline_ms FROM dispatch_runs"
                          " WHERE task_id = ?1 AND run_id = ?2",
                          "sI", due[i].task_id, (int64_t)due[i].run_id);
        if (rc == RD_OK && sqlite3_step(q) == SQLITE_ROW) {
            taken = (uint64_t)sqlite3_column_int64(q, 0);
            deadline = (uint64_t)sqlite3_column_int64(q, 1);
        }
        dsql_finalize(q);
        if (rc == RD_OK)
            rc = run_row_get(db, due[i].task_id, due[i].run_id, &row);
        if (rc != RD_OK) {
            run_row_fini(&row);
            return rc;
        }
        reason = dispatch_expiry_reason(now, strcmp(row.state, "claimed") == 0, taken, deadline);
        if (reason) {
            rc = resolve_run(d, tx, due[i].task_id, due[i].run_id, &row, "exception", reason, -1,
                             &refused);
            if (rc == RD_OK && strcmp(reason, "claim-expired") == 0) {
                e->n_expired++;
                rd_log(d->h, RD_INFO, "run %s/%u: lease of worker %s expired", due[i].task_id,
                       due[i].run_id, row.worker_id);
                rc = rd_tx_publish(tx, "dispatch.expired",
                                   json_pack("{s:s, s:I, s:s}", "taskId", due[i].task_id, "runId",
                                             (json_int_t)due[i].run_id, "workerId", row.worker_id));
            }
            if (rc == RD_OK && e->n_resolved < DISPATCH_EXPIRE_BATCH) {
                memcpy(e->task_ids[e->n_resolved], due[i].task_id, sizeof(e->task_ids[0]));
                e->run_ids[e->n_resolved++] = due[i].run_id;
            }
        }
        run_row_fini(&row);
        if (rc != RD_OK)
            return rc;
    }
    if (n_due == DISPATCH_EXPIRE_BATCH) {
        e->next_due = now; /* more to do: come back at once */
        return RD_OK;
    }
    rc = dsql_prepare(db, &st,
                      "SELECT min(m) FROM (SELECT min(taken_until_ms) AS m FROM dispatch_runs"
                      " WHERE state = 'claimed' UNION ALL SELECT min(deadline_ms) FROM"
                      " dispatch_runs WHERE state IN ('pending', 'claimed') AND deadline_ms > 0)",
                      "");
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        e->next_due = (uint64_t)sqlite3_column_int64(st, 0);
    dsql_finalize(st);
    return RD_OK;
}

/* ------------------------------------------------------- lost claims */

static bool worker_has(const json_t *running, const char *task_id, uint32_t run_id)
{
    const json_t *r;
    size_t i;

    json_array_foreach(running, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "taskId"));
        const json_t *n = json_object_get(r, "runId");
        if (t && strcmp(t, task_id) == 0 && json_is_integer(n) &&
            json_integer_value(n) == (json_int_t)run_id)
            return true;
    }
    return false;
}

/* A worker that lists what it runs ("running" in its claim) no longer has
   the runs claimed in its name that are not on the list: the answer that
   handed them out never reached it (a daemon killed mid-reply, a dropped
   connection). They are resolved exception/claim-expired now, as their
   lease would have been later, so that graph retries them at once. */
static int release_lost(struct dispatch_claim *c, struct rd_tx *tx)
{
    struct dispatch *d = c->d;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    struct {
        char task_id[DISPATCH_NAME_MAX + 1];
        uint32_t run_id;
    } lost[DISPATCH_MAX_CAPACITY];
    size_t n = 0;
    int rc;

    rc = dsql_prepare(db, &st,
                      "SELECT task_id, run_id FROM dispatch_runs WHERE state = 'claimed'"
                      " AND worker_id = ?1",
                      "s", c->worker_id);
    if (rc != RD_OK)
        return rc;
    while (n < DISPATCH_MAX_CAPACITY && sqlite3_step(st) == SQLITE_ROW) {
        const char *t = dsql_text(st, 0);
        uint32_t r = (uint32_t)sqlite3_column_int64(st, 1);
        if (worker_has(c->running, t, r))
            continue;
        snprintf(lost[n].task_id, sizeof(lost[n].task_id), "%s", t);
        lost[n++].run_id = r;
    }
    dsql_finalize(st);
    for (size_t i = 0; i < n; i++) {
        struct run_row row = {0};
        bool refused;

        rc = run_row_get(db, lost[i].task_id, lost[i].run_id, &row);
        if (rc == RD_OK)
            rc = resolve_run(d, tx, lost[i].task_id, lost[i].run_id, &row, "exception",
                             "claim-expired", -1, &refused);
        run_row_fini(&row);
        if (rc != RD_OK)
            return rc;
        rd_log(d->h, RD_INFO, "run %s/%u: worker %s no longer has it (its claim answer was lost)",
               lost[i].task_id, lost[i].run_id, c->worker_id);
        c->n_lost++;
    }
    return RD_OK;
}
