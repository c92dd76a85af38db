/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/module.c -- the dispatch module's descriptor,
 * configuration, migrations and life cycle; the wake-ups of waiting
 * long-polls; the one-shot expiry timer; log compression and artifact
 * expiry as pool work; the subscriptions (task.pending wakes claims, talos
 * machine problems quarantine workers).
 *
 * Threads: init/start/stop/destroy on the main thread; timers, bus
 * callbacks and "done" callbacks on the loop thread; work on pool threads;
 * the wake and schedule functions from any thread (d->lock, briefly).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/module.h"
#include "modules/dispatch/dispatch.h"
#include "modules/dispatch/lease.h"
#include "modules/dispatch/sql.h"

#define PRUNE_EVERY_MS (60ull * 60 * 1000) /* artifact expiry runs hourly */
#define PRUNE_BATCH 200
#define PACK_DELAY_MS 1000 /* resolved runs' logs are packed together, this often at most */

const struct rd_cfg_key dispatch_keys[] = {
    RD_CFG_DURATION("lease", struct dispatch_conf, lease_ms, "5m",
                    "lease granted by claim and reclaim (takenUntil = now + lease)"),
    RD_CFG_DURATION("external_lease", struct dispatch_conf, external_lease_ms, "24h",
                    "lease of a run claimed by an external reporter"),
    RD_CFG_DURATION("max_wait", struct dispatch_conf, max_wait_ms, "20s",
                    "longest long-poll a claim or log tail may ask for"),
    RD_CFG_INT("max_waiting", struct dispatch_conf, max_waiting, "8",
               "long-polls waiting at once (each holds an HTTP thread); more get an empty answer"),
    RD_CFG_DURATION("online_after", struct dispatch_conf, online_after_ms, "60s",
                    "a worker seen within this is online"),
    RD_CFG_INT("quarantine_after", struct dispatch_conf, quarantine_after, "5",
               "consecutive exception results that quarantine a worker (0: never)"),
    RD_CFG_DURATION("auto_quarantine_for", struct dispatch_conf, auto_quarantine_ms, "1h",
                    "how long an automatic quarantine lasts (0: until lifted)"),
    RD_CFG_BOOL("prefer_warm", struct dispatch_conf, prefer_warm, "yes",
                "placement: a waiting worker that last ran the same label and branch first"),
    RD_CFG_BOOL("prefer_fast", struct dispatch_conf, prefer_fast, "yes",
                "placement: then the waiting worker with the best speed score"),
    RD_CFG_DOUBLE("speed_margin", struct dispatch_conf, speed_margin, "0.2",
                  "a worker counts as faster when its score is this much (relative) higher"),
    RD_CFG_DURATION("hold_max", struct dispatch_conf, hold_max_ms, "2s",
                    "a task pending longer goes to whoever asks first"),
    RD_CFG_DOUBLE("speed_alpha", struct dispatch_conf, speed_alpha, "0.2",
                  "weight of the newest run in the speed score"),
    RD_CFG_SIZE("max_log_size", struct dispatch_conf, max_log_size, "64MiB",
                "log bytes kept per run"),
    RD_CFG_SIZE("max_log_chunk", struct dispatch_conf, max_log_chunk, "4MiB",
                "largest single log chunk"),
    RD_CFG_BOOL("compress_logs", struct dispatch_conf, compress_logs, "yes",
                "xz-compress a run's log once it resolved"),
    RD_CFG_SIZE("max_artifact_size", struct dispatch_conf, max_artifact_size, "4GiB",
                "largest artifact"),
    RD_CFG_DURATION("artifact_expiry", struct dispatch_conf, artifact_expiry_ms, "30d",
                    "artifacts and logs of runs resolved longer ago are deleted (0: never)"),
    RD_CFG_END,
};

/* Step i brings dispatch_* from schema version i to i+1. */
static const char *const dispatch_migrations[] = {
    "CREATE TABLE dispatch_runs ("
    " task_id TEXT NOT NULL, run_id INTEGER NOT NULL, source TEXT NOT NULL,"
    " graph_id TEXT NOT NULL, label TEXT NOT NULL, worker_type TEXT NOT NULL,"
    " branch TEXT NOT NULL, priority INTEGER NOT NULL, pending_since_ms INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL,"
    " worker_id TEXT, claimed_ms INTEGER, taken_until_ms INTEGER, resolved_ms INTEGER,"
    " result TEXT, reason TEXT, exit_code INTEGER, pruned INTEGER NOT NULL DEFAULT 0,"
    " log_size INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (task_id, run_id));"
    "CREATE TABLE dispatch_log_chunks (task_id TEXT NOT NULL, run_id INTEGER NOT NULL,"
    " off INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (task_id, run_id, off))"
    " WITHOUT ROWID;"
    "CREATE TABLE dispatch_logs_packed (task_id TEXT NOT NULL, run_id INTEGER NOT NULL,"
    " size INTEGER NOT NULL, codec TEXT NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY (task_id, run_id));"
    "CREATE INDEX dispatch_runs_pending ON dispatch_runs"
    " (worker_type, priority DESC, pending_since_ms, task_id, run_id) WHERE state = 'pending';"
    "CREATE INDEX dispatch_runs_lease ON dispatch_runs (taken_until_ms) WHERE state = 'claimed';"
    "CREATE INDEX dispatch_runs_deadline ON dispatch_runs (deadline_ms)"
    " WHERE state IN ('pending', 'claimed') AND deadline_ms > 0;"
    "CREATE INDEX dispatch_runs_claimed ON dispatch_runs (worker_type, claimed_ms)"
    " WHERE claimed_ms IS NOT NULL;"
    "CREATE INDEX dispatch_runs_worker ON dispatch_runs (worker_id) WHERE state = 'claimed';"
    "CREATE INDEX dispatch_runs_resolved ON dispatch_runs (resolved_ms)"
    " WHERE state IN ('resolved', 'cancelled') AND pruned = 0;"
    "CREATE TABLE dispatch_workers ("
    " worker_id TEXT PRIMARY KEY, worker_type TEXT NOT NULL,"
    " capabilities TEXT NOT NULL DEFAULT '{}', capacity INTEGER NOT NULL,"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " last_label TEXT, last_branch TEXT, speed REAL NOT NULL DEFAULT 1.0,"
    " speed_n INTEGER NOT NULL DEFAULT 0, n_runs INTEGER NOT NULL DEFAULT 0,"
    " consecutive_exceptions INTEGER NOT NULL DEFAULT 0,"
    " quarantined INTEGER NOT NULL DEFAULT 0, quarantine_reason TEXT,"
    " quarantine_until_ms INTEGER NOT NULL DEFAULT 0, quarantine_by TEXT);"
    "CREATE TABLE dispatch_labels (label TEXT PRIMARY KEY, n INTEGER NOT NULL,"
    " mean_ms REAL NOT NULL);"
    "CREATE TABLE dispatch_artifacts (task_id TEXT NOT NULL, run_id INTEGER NOT NULL,"
    " name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY (task_id, run_id, name))",
    NULL,
};

/* ------------------------------------------------------------ helpers */

uint64_t dispatch_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void dispatch_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t until_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(until_ms / 1000),
                          .tv_nsec = (long)(until_ms % 1000) * 1000000L};

    pthread_cond_timedwait(cond, lock, &ts);
}

void dispatch_art_dir(const struct dispatch *d, const char *task_id, uint32_t run_id, char *out,
                      size_t len)
{
    snprintf(out, len, "%s/%s@%u", d->art_dir, task_id, run_id);
}

void dispatch_wake_claims(struct dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    d->claim_gen++;
    pthread_cond_broadcast(&d->claim_cond);
    pthread_mutex_unlock(&d->lock);
}

void dispatch_wake_logs(struct dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    d->log_gen++;
    pthread_cond_broadcast(&d->log_cond);
    pthread_mutex_unlock(&d->lock);
}

bool dispatch_waiting_enter(struct dispatch *d)
{
    bool ok;

    pthread_mutex_lock(&d->lock);
    ok = !d->stopping && d->n_waiting < d->conf.max_waiting;
    if (ok)
        d->n_waiting++;
    pthread_mutex_unlock(&d->lock);
    rd_metric_set(d->m_waiting, d->n_waiting);
    return ok;
}

void dispatch_waiting_leave(struct dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    d->n_waiting--;
    pthread_mutex_unlock(&d->lock);
    rd_metric_set(d->m_waiting, d->n_waiting);
}

/* -------------------------------------------------------- expiry timer
 * One one-shot timer for the earliest lease end or deadline. Requests come
 * from any thread (dispatch_schedule_expiry) and are handed to the loop
 * with rd_defer; the expiry itself is a write transaction, so it runs on
 * the pool, and its "done" arms the timer for the next due time. */

static void expiry_arm(struct dispatch *d);

static void expiry_done(void *arg)
{
    struct dispatch_expire *e = arg;
    struct dispatch *d = e->d;
    bool pack;

    pthread_mutex_lock(&d->lock);
    pack = e->n_resolved > 0 || d->compress_wanted;
    pthread_mutex_unlock(&d->lock);
    if (pack)
        dispatch_schedule_compress(d);
    if (e->n_resolved > 0) {
        dispatch_wake_claims(d); /* retries graph queued */
        dispatch_wake_logs(d);
    }
    pthread_mutex_lock(&d->lock);
    d->expiry_running = false;
    if (e->next_due < d->expiry_want_ms)
        d->expiry_want_ms = e->next_due;
    pthread_mutex_unlock(&d->lock);
    free(e);
    expiry_arm(d);
}

static void expiry_work(void *arg)
{
    struct dispatch_expire *e = arg;
    struct dispatch *d = e->d;
    int rc;

    rc = rd_store_write(d->h, dispatch_expire_tx, e);
    if (rc != RD_OK) {
        rd_log(d->h, RD_WARN, "lease expiry failed (error %d); trying again in a second", rc);
        e->n_resolved = 0;
        e->next_due = rd_now_ms(d->h) + 1000;
        return;
    }
    if (e->n_expired > 0)
        rd_metric_add(d->m_expiries, e->n_expired);
}

static void expiry_fire(void *arg)
{
    struct dispatch *d = arg;
    struct dispatch_expire *e;

    rd_timer_cancel(d->expiry_timer);
    d->expiry_timer = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->stopping || d->expiry_running) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    d->expiry_running = true;
    d->expiry_want_ms = UINT64_MAX;
    pthread_mutex_unlock(&d->lock);
    e = calloc(1, sizeof(*e));
    if (e) {
        e->d = d;
        if (rd_submit(d->h, expiry_work, expiry_done, e) == RD_OK)
            return;
        free(e);
    }
    /* Could not queue the work: try again in a second. */
    pthread_mutex_lock(&d->lock);
    d->expiry_running = false;
    d->expiry_want_ms = rd_now_ms(d->h) + 1000;
    pthread_mutex_unlock(&d->lock);
    expiry_arm(d);
}

/* Loop thread: (re)arms the timer for d->expiry_want_ms. */
static void expiry_arm(struct dispatch *d)
{
    uint64_t want;

    pthread_mutex_lock(&d->lock);
    d->expiry_defer_pending = false;
    want = d->expiry_want_ms;
    if (d->stopping || d->expiry_running || want == UINT64_MAX) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    pthread_mutex_unlock(&d->lock);
    rd_timer_cancel(d->expiry_timer);
    d->expiry_timer =
        rd_timer_after(d->h, dispatch_delay_until(rd_now_ms(d->h), want), expiry_fire, d);
    if (!d->expiry_timer)
        rd_log(d->h, RD_ERROR, "cannot arm the lease expiry timer");
}

static void expiry_arm_cb(void *arg)
{
    expiry_arm(arg);
}

void dispatch_schedule_expiry(struct dispatch *d, uint64_t due_ms)
{
    bool defer = false;

    pthread_mutex_lock(&d->lock);
    if (due_ms < d->expiry_want_ms) {
        d->expiry_want_ms = due_ms;
        if (d->started && !d->expiry_defer_pending && !d->expiry_running) {
            d->expiry_defer_pending = true;
            defer = true;
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (defer && rd_defer(d->h, expiry_arm_cb, d) != RD_OK) {
        pthread_mutex_lock(&d->lock);
        d->expiry_defer_pending = false;
        pthread_mutex_unlock(&d->lock);
        rd_log(d->h, RD_WARN, "cannot reach the loop to arm the expiry timer");
    }
}

/* ----------------------------------------------------- log compression
 * Packing waits PACK_DELAY_MS after the first request, so that the runs
 * resolving meanwhile are packed together (one transaction pair, not one
 * per run); one job at a time, and a request while it runs makes it run
 * once more after the delay. Timers on the loop; requests from any thread. */

static void compress_work(void *arg)
{
    struct dispatch *d = arg;

    pthread_mutex_lock(&d->lock);
    d->compress_wanted = false;
    pthread_mutex_unlock(&d->lock);
    dispatch_log_compress_pending(d);
}

static void compress_arm(void *arg);

static void compress_done(void *arg)
{
    struct dispatch *d = arg;
    bool again;

    pthread_mutex_lock(&d->lock);
    d->compress_running = false;
    again = d->compress_wanted && !d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (again)
        compress_arm(d);
}

static void compress_fire(void *arg)
{
    struct dispatch *d = arg;

    rd_timer_cancel(d->compress_timer);
    d->compress_timer = NULL;
    pthread_mutex_lock(&d->lock);
    d->compress_running = !d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (d->compress_running && rd_submit(d->h, compress_work, compress_done, d) != RD_OK) {
        pthread_mutex_lock(&d->lock);
        d->compress_running = false;
        pthread_mutex_unlock(&d->lock);
    }
}

/* Loop thread: arms the delay unless armed or running. */
static void compress_arm(void *arg)
{
    struct dispatch *d = arg;
    bool arm;

    pthread_mutex_lock(&d->lock);
    d->compress_defer_pending = false;
    arm = !d->compress_timer && !d->compress_running && !d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (arm)
        d->compress_timer = rd_timer_after(d->h, PACK_DELAY_MS, compress_fire, d);
}

void dispatch_schedule_compress(struct dispatch *d)
{
    bool defer;

    if (!d->conf.compress_logs)
        return;
    pthread_mutex_lock(&d->lock);
    d->compress_wanted = true;
    defer = !d->compress_defer_pending && !d->compress_running && !d->stopping;
    if (defer)
        d->compress_defer_pending = true;
    pthread_mutex_unlock(&d->lock);
    if (defer && rd_defer(d->h, compress_arm, d) != RD_OK) {
        pthread_mutex_lock(&d->lock);
        d->compress_defer_pending = false;
        pthread_mutex_unlock(&d->lock);
    }
}

static void job_free(void *arg)
{
    free(arg);
}

/* ------------------------------------------------------ artifact expiry */

struct prune_ctx {
    struct dispatch *d;
    uint64_t cutoff;
    size_t n;
    char task_ids[PRUNE_BATCH][DISPATCH_NAME_MAX + 1];
    uint32_t run_ids[PRUNE_BATCH];
};

static int prune_tx(struct rd_tx *tx, void *arg)
{
    struct prune_ctx *p = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc;

    p->n = 0;
    rc = dsql_prepare(db, &st,
                      "SELECT task_id, run_id FROM dispatch_runs WHERE state IN"
                      " ('resolved', 'cancelled') AND pruned = 0 AND resolved_ms < ?1 LIMIT ?2",
                      "ui", p->cutoff, PRUNE_BATCH);
    if (rc != RD_OK)
        return rc;
    while (p->n < PRUNE_BATCH && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(p->task_ids[p->n], sizeof(p->task_ids[0]), "%s", dsql_text(st, 0));
        p->run_ids[p->n++] = (uint32_t)sqlite3_column_int64(st, 1);
    }
    dsql_finalize(st);
    for (size_t i = 0; i < p->n && rc == RD_OK; i++) {
        /* The log goes too: its size says so (an empty, complete log). */
        rc = dsql_exec(db,
                       "UPDATE dispatch_runs SET pruned = 1, log_size = 0"
                       " WHERE task_id = ?1 AND run_id = ?2",
                       "sI", p->task_ids[i], (int64_t)p->run_ids[i]);
        if (rc == RD_OK)
            rc = dsql_exec(db, "DELETE FROM dispatch_artifacts WHERE task_id = ?1 AND run_id = ?2",
                           "sI", p->task_ids[i], (int64_t)p->run_ids[i]);
        if (rc == RD_OK)
            rc = dsql_exec(db, "DELETE FROM dispatch_log_chunks WHERE task_id = ?1 AND run_id = ?2",
                           "sI", p->task_ids[i], (int64_t)p->run_ids[i]);
        if (rc == RD_OK)
            rc =
                dsql_exec(db, "DELETE FROM dispatch_logs_packed WHERE task_id = ?1 AND run_id = ?2",
                          "sI", p->task_ids[i], (int64_t)p->run_ids[i]);
    }
    return rc;
}

static void remove_dir_files(const char *dir_path)
{
    DIR *dir = opendir(dir_path);
    struct dirent *de;
    char path[2 * PATH_MAX];

    if (!dir)
        return;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(dir_path);
}

static void prune_work(void *arg)
{
    struct prune_ctx *p = arg;
    struct dispatch *d = p->d;
    char path[PATH_MAX + 100];

    do {
        if (rd_store_write(d->h, prune_tx, p) != RD_OK)
            return;
        for (size_t i = 0; i < p->n; i++) {
            dispatch_art_dir(d, p->task_ids[i], p->run_ids[i], path, sizeof(path));
            remove_dir_files(path);
        }
        if (p->n)
            rd_log(d->h, RD_INFO, "expired the artifacts and logs of %zu runs", p->n);
    } while (p->n == PRUNE_BATCH && !rd_stopping(d->h));
}

static void prune_fire(void *arg)
{
    struct dispatch *d = arg;
    struct prune_ctx *p;
    uint64_t now = rd_now_ms(d->h);

    if (d->conf.artifact_expiry_ms == 0 || now < d->conf.artifact_expiry_ms)
        return;
    p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->d = d;
    p->cutoff = now - d->conf.artifact_expiry_ms;
    if (rd_submit(d->h, prune_work, job_free, p) != RD_OK)
        free(p);
}

/* --------------------------------------------------------- subscriptions */

static void on_task_pending(void *arg, uint64_t id, const char *type, const json_t *data)
{
    (void)id;
    (void)type;
    (void)data;
    dispatch_wake_claims(arg);
}

struct talos_quarantine {
    struct dispatch *d;
    char worker_id[DISPATCH_NAME_MAX + 1];
    char reason[200];
};

static int talos_quarantine_tx(struct rd_tx *tx, void *arg)
{
    struct talos_quarantine *q = arg;
    int rc = dispatch_quarantine_tx(
        q->d, tx, q->worker_id, q->reason,
        q->d->conf.auto_quarantine_ms ? rd_now_ms(q->d->h) + q->d->conf.auto_quarantine_ms : 0,
        "talos");
    return rc == RD_ENOTFOUND ? RD_OK : rc;
}

static void talos_quarantine_work(void *arg)
{
    struct talos_quarantine *q = arg;
    int rc = rd_store_write(q->d->h, talos_quarantine_tx, q);

    if (rc != RD_OK)
        rd_log(q->d->h, RD_WARN, "quarantining %s for talos failed (error %d)", q->worker_id, rc);
}

/* talos.* with {"verdict":"machine-problem","worker":"<id>"}: quarantine. */
static void on_talos(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct dispatch *d = arg;
    const char *verdict = json_string_value(json_object_get(data, "verdict"));
    const char *worker = json_string_value(json_object_get(data, "worker"));
    struct talos_quarantine *q;

    (void)id;
    if (!verdict ||
        (strcmp(verdict, "machine-problem") != 0 && strcmp(verdict, "machine_problem") != 0))
        return;
    if (!dispatch_worker_id_valid(worker)) {
        rd_log(d->h, RD_DEBUG, "%s: machine problem without a valid worker id", type);
        return;
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->d = d;
    snprintf(q->worker_id, sizeof(q->worker_id), "%s", worker);
    snprintf(q->reason, sizeof(q->reason), "machine problem reported by talos (%s)", type);
    if (rd_submit(d->h, talos_quarantine_work, job_free, q) != RD_OK)
        free(q);
}

/* ---------------------------------------------------------- life cycle */

static void dispatch_destroy(void *mod)
{
    struct dispatch *d = mod;

    if (!d)
        return;
    dsql_cache_clear(); /* after every route and timer stopped (see sql.c) */
    pthread_cond_destroy(&d->claim_cond);
    pthread_cond_destroy(&d->log_cond);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->batch_lock);
    pthread_cond_destroy(&d->batch_cond);
    free(d);
}

static int make_dir(struct rd_host *h, const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        rd_log(h, RD_ERROR, "cannot create %s: %s", path, strerror(errno));
        return RD_EIO;
    }
    return RD_OK;
}

static int check_conf(struct dispatch *d)
{
    const struct dispatch_conf *c = &d->conf;
    const char *bad = NULL;

    if (c->lease_ms < 1000)
        bad = "lease must be at least 1s";
    else if (c->external_lease_ms < 1000)
        bad = "external_lease must be at least 1s";
    else if (c->max_wait_ms > 60000)
        bad = "max_wait must be at most 60s";
    else if (c->max_waiting < 0 || c->max_waiting > DISPATCH_WAITERS_MAX)
        bad = "max_waiting must be 0..256";
    else if (c->quarantine_after < 0)
        bad = "quarantine_after must be 0 or more";
    else if (!(c->speed_margin >= 0) || c->speed_margin > 10)
        bad = "speed_margin must be 0..10";
    else if (!(c->speed_alpha > 0) || c->speed_alpha > 1)
        bad = "speed_alpha must be in (0, 1]";
    else if (c->max_log_chunk < 1024 || c->max_log_chunk > (64u << 20))
        bad = "max_log_chunk must be 1KiB..64MiB";
    else if (c->max_log_size < 1)
        bad = "max_log_size must be at least 1 byte";
    else if (c->max_artifact_size < 1)
        bad = "max_artifact_size must be at least 1 byte";
    if (bad) {
        rd_log(d->h, RD_ERROR, "configuration: %s", bad);
        return RD_EINVAL;
    }
    return RD_OK;
}

static int dispatch_init(struct rd_host *h, void **out)
{
    struct dispatch *d = NULL;
    struct rd_error err = {0};
    pthread_condattr_t ca;
    int rc;

    d = calloc(1, sizeof(*d));
    if (!d)
        return RD_ENOMEM;
    d->h = h;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->batch_lock, NULL);
    pthread_cond_init(&d->batch_cond, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->claim_cond, &ca);
    pthread_cond_init(&d->log_cond, &ca);
    pthread_condattr_destroy(&ca);
    d->expiry_want_ms = UINT64_MAX;
    rc = rd_config_load(h, NULL, dispatch_keys, &d->conf, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    rc = check_conf(d);
    if (rc != RD_OK)
        goto out;
    d->place = (struct dispatch_place_conf){d->conf.prefer_warm, d->conf.prefer_fast,
                                            d->conf.speed_margin, d->conf.hold_max_ms};
    snprintf(d->art_dir, sizeof(d->art_dir), "%s/artifacts", rd_state_dir(h));
    rc = make_dir(h, d->art_dir);
    if (rc != RD_OK)
        goto out;
    rc = rd_store_migrate(h, dispatch_migrations, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "migration: %s", err.msg);
        goto out;
    }
    struct {
        struct rd_metric **m;
        enum rd_metric_kind k;
        const char *name, *help;
    } metrics[] = {
        {&d->m_claims, RD_COUNTER, "claims", "runs handed out to workers"},
        {&d->m_wait, RD_HISTOGRAM, "wait_seconds", "pending to claimed"},
        {&d->m_expiries, RD_COUNTER, "lease_expiries", "leases that expired"},
        {&d->m_online, RD_GAUGE, "workers_online", "workers seen within online_after"},
        {&d->m_pending, RD_GAUGE, "pending", "pending runs (all worker types)"},
        {&d->m_log_bytes, RD_COUNTER, "log_bytes", "log bytes stored"},
        {&d->m_artifacts, RD_COUNTER, "artifacts", "artifacts stored"},
        {&d->m_waiting, RD_GAUGE, "waiting", "long-polls waiting now"},
    };
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        *metrics[i].m = rd_metric(h, metrics[i].k, metrics[i].name, metrics[i].help, NULL);
        if (!*metrics[i].m) {
            rc = RD_ENOMEM;
            rd_log(h, RD_ERROR, "cannot register metric %s", metrics[i].name);
            goto out;
        }
    }
    d->queue =
        (struct rd_taskqueue){.ctx = d, .enqueue = dispatch_enqueue, .cancel = dispatch_cancel};
    rc = rd_service_provide(h, RD_TASKQUEUE_SERVICE, RD_TASKQUEUE_VERSION, &d->queue);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "cannot provide %s (error %d)", RD_TASKQUEUE_SERVICE, rc);
        goto out;
    }
    *out = d;
    d = NULL;
out:
    dispatch_destroy(d);
    return rc;
}

static int dispatch_start(void *mod)
{
    struct dispatch *d = mod;
    int rc;

    d->runs = rd_service_get(d->h, RD_TASKRUNS_SERVICE, RD_TASKRUNS_VERSION);
    rc = rd_subscribe(d->h, "task.pending", on_task_pending, d);
    if (rc == RD_OK)
        rc = rd_subscribe(d->h, "talos", on_talos, d);
    if (rc == RD_OK)
        rc = dispatch_routes_worker(d);
    if (rc == RD_OK)
        rc = dispatch_routes_log(d);
    if (rc == RD_OK)
        rc = dispatch_routes_artifact(d);
    if (rc == RD_OK)
        rc = dispatch_routes_admin(d);
    if (rc != RD_OK) {
        rd_log(d->h, RD_ERROR, "cannot start (error %d)", rc);
        return rc;
    }
    if (d->conf.artifact_expiry_ms) {
        d->prune_timer = rd_timer_every(d->h, PRUNE_EVERY_MS, prune_fire, d);
        if (!d->prune_timer) {
            rd_log(d->h, RD_ERROR, "cannot start the artifact expiry timer");
            return RD_ENOMEM;
        }
    }
    /* Leases found in the store are honoured until they end: the first
       expiry pass (now) resolves only what is due and arms the timer for
       the rest. */
    pthread_mutex_lock(&d->lock);
    d->started = true;
    d->expiry_want_ms = rd_now_ms(d->h);
    pthread_mutex_unlock(&d->lock);
    d->expiry_timer = rd_timer_after(d->h, 0, expiry_fire, d);
    if (!d->expiry_timer) {
        rd_log(d->h, RD_ERROR, "cannot arm the lease expiry timer");
        return RD_ENOMEM;
    }
    /* Logs of runs that resolved while a compression was pending (a kill
       -9) are packed after the first expiry pass (expiry_done). */
    d->compress_wanted = true;
    rd_log(d->h, RD_INFO, "started: lease=%llums max_waiting=%lld graph=%s",
           (unsigned long long)d->conf.lease_ms, (long long)d->conf.max_waiting,
           d->runs ? "yes" : "no (direct runs only)");
    return RD_OK;
}

static void dispatch_stop(void *mod)
{
    struct dispatch *d = mod;

    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->claim_cond);
    pthread_cond_broadcast(&d->log_cond);
    pthread_mutex_unlock(&d->lock);
    rd_timer_cancel(d->expiry_timer);
    d->expiry_timer = NULL;
    rd_timer_cancel(d->prune_timer);
    d->prune_timer = NULL;
    rd_timer_cancel(d->compress_timer);
    d->compress_timer = NULL;
}

struct status_counts {
    int64_t pending, claimed, workers, quarantined, online;
    uint64_t online_since;
};

static int status_tx(struct rd_tx *tx, void *arg)
{
    struct status_counts *s = arg;
    sqlite3_stmt *st = NULL;
    int rc;

    rc = dsql_prepare(rd_tx_db(tx), &st,
                      "SELECT (SELECT count(*) FROM dispatch_runs WHERE state = 'pending'),"
                      " (SELECT count(*) FROM dispatch_runs WHERE state = 'claimed'),"
                      " (SELECT count(*) FROM dispatch_workers),"
                      " (SELECT count(*) FROM dispatch_workers WHERE quarantined = 1),"
                      " (SELECT count(*) FROM dispatch_workers WHERE last_seen_ms >= ?1)",
                      "u", s->online_since);
    if (rc != RD_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->pending = sqlite3_column_int64(st, 0);
        s->claimed = sqlite3_column_int64(st, 1);
        s->workers = sqlite3_column_int64(st, 2);
        s->quarantined = sqlite3_column_int64(st, 3);
        s->online = sqlite3_column_int64(st, 4);
    } else {
        rc = RD_EIO;
    }
    dsql_finalize(st);
    return rc;
}

static json_t *dispatch_status(void *mod)
{
    struct dispatch *d = mod;
    struct status_counts s = {0};
    uint64_t now = rd_now_ms(d->h);
    int rc, waiting;

    s.online_since = now > d->conf.online_after_ms ? now - d->conf.online_after_ms : 0;
    rc = rd_store_read(d->h, status_tx, &s);
    if (rc != RD_OK)
        return json_pack("{s:n, s:i}", "pending", "error", rc);
    pthread_mutex_lock(&d->lock);
    waiting = d->n_waiting;
    pthread_mutex_unlock(&d->lock);
    rd_metric_set(d->m_pending, (double)s.pending);
    rd_metric_set(d->m_online, (double)s.online);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:b}", "pending", (json_int_t)s.pending,
                     "claimed", (json_int_t)s.claimed, "workers", (json_int_t)s.workers, "online",
                     (json_int_t)s.online, "quarantined", (json_int_t)s.quarantined, "waiting",
                     waiting, "graph", d->runs != NULL);
}

static const struct rd_module dispatch_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "dispatch",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi =
#include "modules/dispatch/openapi.json.h"
        ,
    .keys = dispatch_keys,
    .init = dispatch_init,
    .start = dispatch_start,
    .stop = dispatch_stop,
    .destroy = dispatch_destroy,
    .status = dispatch_status,
    .reload = NULL,
};

RD_MODULE_EXPORT(dispatch_module)
