/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/dispatch.h -- the dispatch module's state, shared by its
 * files (module.c, queue.c, routes_*.c), and the functions they share.
 *
 * Threads and locks. Route handlers run on HTTP threads; timers, bus
 * callbacks and rd_submit "done" on the loop thread. d->lock guards only
 * the in-memory parts below (waiting long-polls, wake generations, the
 * expiry timer's bookkeeping) and is never held across a store call or a
 * call into graph, so graph may call our enqueue() inside its transaction
 * and we may call its resolved() inside ours without lock-order trouble.
 * Everything that must survive a restart is in SQLite (dispatch_*).
 */
#ifndef RELENGD_DISPATCH_H
#define RELENGD_DISPATCH_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/module.h"
#include "core/services/tasks.h"
#include "modules/dispatch/names.h"
#include "modules/dispatch/placement.h"

#define DISPATCH_MAX_CAPACITY 64
#define DISPATCH_WAITERS_MAX 256 /* hard bound of max_waiting */

struct dispatch_conf {
    uint64_t lease_ms;
    uint64_t external_lease_ms;
    uint64_t max_wait_ms;
    int64_t max_waiting;
    uint64_t online_after_ms;
    int64_t quarantine_after;
    uint64_t auto_quarantine_ms;
    bool prefer_warm;
    bool prefer_fast;
    double speed_margin;
    uint64_t hold_max_ms;
    double speed_alpha;
    uint64_t max_log_size;
    uint64_t max_log_chunk;
    bool compress_logs;
    uint64_t max_artifact_size;
    uint64_t artifact_expiry_ms;
};

/* A claim that is waiting right now (lives on its handler's stack, linked
   into d->waiters under d->lock). The placement policy reads these. */
struct dispatch_waiter {
    struct dispatch_waiter *next;
    char worker_id[65];
    char worker_type[65];
    char last_label[RD_TASK_ID_MAX * 2 + 1];
    char last_branch[256];
    bool known; /* the fields above are filled */
    bool has_last;
    double speed;
    int free;
    bool kicked;    /* a task was held back for this waiter: look again */
    bool preferred; /* someone held a task back for it: wake others when it leaves */
};

struct dispatch {
    struct rd_host *h;
    struct dispatch_conf conf;
    struct dispatch_place_conf place;
    const struct rd_taskruns *runs; /* graph's, looked up at start; NULL without graph */
    struct rd_taskqueue queue;      /* the service we provide */
    char art_dir[PATH_MAX];

    pthread_mutex_t lock;
    pthread_mutex_t log_lock; /* serialises log appends and the compression's switch */
    /* group commit (batch.c) */
    pthread_mutex_t batch_lock;
    pthread_cond_t batch_cond;
    struct dispatch_batch_item *batch_head, *batch_tail;
    bool batch_leader;
    pthread_cond_t claim_cond; /* claims wait here; CLOCK_MONOTONIC */
    pthread_cond_t log_cond;   /* log tails wait here */
    uint64_t claim_gen;        /* bumped whenever there may be new work */
    uint64_t log_gen;          /* bumped on every log append and resolution */
    int n_waiting;             /* long-polls (claims and tails) waiting */
    struct dispatch_waiter *waiters;
    bool stopping;

    /* the expiry timer (loop thread) and its wishes (any thread, under lock) */
    struct rd_timer *expiry_timer;
    struct rd_timer *prune_timer;
    uint64_t expiry_want_ms; /* earliest due time asked for; UINT64_MAX none */
    bool expiry_defer_pending;
    bool expiry_running;
    bool started;
    bool compress_wanted, compress_running, compress_defer_pending;
    struct rd_timer *compress_timer; /* loop thread */

    struct rd_metric *m_claims, *m_wait, *m_expiries, *m_online, *m_pending, *m_log_bytes,
        *m_artifacts, *m_waiting;
};

/* ---- module.c */

/* Wakes every waiting claim (new work may be there). Any thread; takes
   d->lock briefly, so never call it with d->lock held. */
void dispatch_wake_claims(struct dispatch *d);
/* Wakes log tails (new bytes, or a run resolved). Any thread. */
void dispatch_wake_logs(struct dispatch *d);
/* Asks for the expiry timer to fire at due_ms at the latest. Any thread,
   inside or outside a transaction (the timer only looks; the truth is in
   the store). */
void dispatch_schedule_expiry(struct dispatch *d, uint64_t due_ms);
/* Asks for the logs of resolved runs to be compressed (pool work, one job
   at a time, which takes every resolved run it finds). Any thread. */
void dispatch_schedule_compress(struct dispatch *d);
/* Takes one long-poll slot; false when max_waiting wait already. */
bool dispatch_waiting_enter(struct dispatch *d);
void dispatch_waiting_leave(struct dispatch *d);
/* "<art_dir>/<task>@<run>" into out. */
void dispatch_art_dir(const struct dispatch *d, const char *task_id, uint32_t run_id, char *out,
                      size_t len);
/* CLOCK_MONOTONIC in ms, the clock of the module's condition variables. */
uint64_t dispatch_mono_ms(void);
/* pthread_cond_timedwait (lock held) until a signal or dispatch_mono_ms()
   reaches until_ms. */
void dispatch_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t until_ms);

/* ---- batch.c: runs fn(tx, arg) in a write transaction shared with the
   other callers of the moment (group commit); fn's result. fn must reset
   its outputs first: after a failed batch it runs again on its own. Any
   thread that may write to the store; never with d->lock held. */
struct dispatch_batch_item;
int dispatch_batch_write(struct dispatch *d, rd_tx_fn fn, void *arg);

/* ---- queue.c: the service and the state changes. Each *_tx runs inside
   the caller's write (or read) transaction. */

/* The struct rd_taskqueue functions. */
int dispatch_enqueue(void *ctx, struct rd_tx *tx, const struct rd_task_run_spec *run);
int dispatch_cancel(void *ctx, struct rd_tx *tx, const char *task_id, uint32_t run_id);
/* The direct enqueue API's insert: source "direct". *inserted is false when
   the run existed already. */
int dispatch_enqueue_direct(struct dispatch *d, struct rd_tx *tx,
                            const struct rd_task_run_spec *run, bool *inserted);

/* A run as the API shows it, from SELECT DISPATCH_RUN_COLUMNS (new ref). */
#define DISPATCH_RUN_COLUMNS                                                                       \
    "task_id, run_id, source, graph_id, label, worker_type, branch, priority,"                     \
    " pending_since_ms, deadline_ms, payload, state, worker_id, claimed_ms, taken_until_ms,"       \
    " resolved_ms, result, reason, exit_code"
json_t *dispatch_run_json(struct sqlite3_stmt *st, bool with_payload);

/* One run's facts needed by the per-run routes. */
struct dispatch_run_info {
    char state[16];
    char source[16];
    char worker_type[65];
    char worker_id[65];
};
/* Reads a run (read or write tx): RD_OK, RD_ENOTFOUND or RD_EIO. */
int dispatch_run_info_get(struct dispatch *d, struct rd_tx *tx, const char *task_id,
                          uint32_t run_id, struct dispatch_run_info *out);

/* Claims up to want runs for worker (see routes_worker.c). */
struct dispatch_claim {
    struct dispatch *d;
    const char *worker_id;
    const char *worker_type;
    const char *capabilities; /* JSON text, may be NULL */
    const json_t *running;    /* the runs the worker says it has, or NULL (not sent) */
    int capacity;
    int want;
    /* the waiting workers for placement (copied under d->lock), self's index */
    struct dispatch_place_worker *others;
    char (*other_ids)[65];
    size_t n_others;
    size_t self;
    /* out */
    json_t *tasks;       /* array, new reference */
    bool quarantined;    /* the worker is quarantined: nothing handed out */
    uint64_t recheck_ms; /* earliest time a held-back task stops being held; 0 none */
    char held_for[65];   /* a worker a task was held back for, "" none */
    uint64_t earliest_due;
    int n_lost; /* out: claimed runs the worker no longer had, resolved */
    /* out: how long each handed-out run waited, for the metric once committed */
    double waited_s[DISPATCH_MAX_CAPACITY];
    size_t n_waited;
    /* the worker's row, for placement */
    char last_label[RD_TASK_ID_MAX * 2 + 1];
    char last_branch[256];
    bool has_last;
    double speed;
};
int dispatch_claim_tx(struct rd_tx *tx, void *arg);

/* Report (a worker's result) or expiry resolution. */
struct dispatch_report {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    const char *state;
    const char *reason;
    int exit_code;
    json_t *run;   /* out: the run afterwards (new ref) */
    bool conflict; /* out: 409 (with message) */
    char why[160]; /* out: the 409's message */
    bool resolved; /* out: this call resolved it (compress, wake) */
};
int dispatch_report_tx(struct rd_tx *tx, void *arg);

struct dispatch_reclaim {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    uint64_t taken_until; /* out */
    bool conflict;        /* out: 409, why says why */
    bool notfound;        /* out: 404 */
    char why[160];
};
int dispatch_reclaim_tx(struct rd_tx *tx, void *arg);

struct dispatch_external {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    const char *worker_id; /* "external:<name>" */
    json_t *run;           /* out */
    char why[160];         /* out on RD_ECONFLICT */
};
int dispatch_external_tx(struct rd_tx *tx, void *arg);

/* Resolves every run due at now (lease ended, deadline passed); next_due
   gets the next due time (UINT64_MAX none). */
#define DISPATCH_EXPIRE_BATCH 256
struct dispatch_expire {
    struct dispatch *d;
    uint64_t next_due;
    int n_expired;
    int n_resolved; /* runs resolved: their logs to compress */
    char task_ids[DISPATCH_EXPIRE_BATCH][DISPATCH_NAME_MAX + 1];
    uint32_t run_ids[DISPATCH_EXPIRE_BATCH];
};
int dispatch_expire_tx(struct rd_tx *tx, void *arg);

/* Quarantines a worker in tx (manual or automatic), publishing
   dispatch.quarantined. until 0: until lifted. */
int dispatch_quarantine_tx(struct dispatch *d, struct rd_tx *tx, const char *worker_id,
                           const char *reason, uint64_t until, const char *by);

/* ---- routes_*.c: each registers its routes (start). */
int dispatch_routes_worker(struct dispatch *d);
int dispatch_routes_log(struct dispatch *d);
int dispatch_routes_artifact(struct dispatch *d);
int dispatch_routes_admin(struct dispatch *d);

/* Checks that the caller may act for worker_type (worker:TYPE or admin);
   replies 403 and returns false when not. */
bool dispatch_require_worker_scope(struct rd_req *r, const char *worker_type);
/* Reads the run named by {taskId}/{runId} into info. RD_OK; RD_EINVAL
   after replying 404 (bad or unknown ids); or a store error (not replied). */
int dispatch_run_lookup(struct dispatch *d, struct rd_req *r, const char **task_id,
                        uint32_t *run_id, struct dispatch_run_info *info);
/* The same, then checks worker:TYPE for the run's type (RD_EINVAL after a 403). */
int dispatch_run_for_worker(struct dispatch *d, struct rd_req *r, const char **task_id,
                            uint32_t *run_id, struct dispatch_run_info *info);
/* Parses {taskId} and {runId}; replies 404 and returns false when bad. */
bool dispatch_run_params(struct rd_req *r, const char **task_id, uint32_t *run_id);

/* ---- logstore.c: run logs in the store (see the file's comment). */
#include "modules/dispatch/logchunk.h"
struct dispatch_log_append {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    uint64_t offset;
    const char *data;
    uint64_t len;
    /* out */
    bool notfound;
    char state[16]; /* the run's state; appended only when "claimed" */
    struct dispatch_chunk_plan plan;
};
/* Write transaction (group-commit safe): appends what of the chunk is new. */
int dispatch_log_append_tx(struct rd_tx *tx, void *arg);

struct dispatch_log_read {
    struct dispatch *d;
    const char *task_id;
    uint32_t run_id;
    uint64_t offset;
    size_t max;
    /* out */
    char *buf; /* malloc'd: bytes [offset, offset + n); free() it */
    size_t n;
    uint64_t total; /* the log's size */
    bool done;      /* the run resolved (or was cancelled): total is final */
};
/* Read (or write) transaction: RD_OK, RD_ENOTFOUND (no such run), ... */
int dispatch_log_read_tx(struct rd_tx *tx, void *arg);
/* Compresses the logs of every resolved run that still has chunks, a batch
   of runs per transaction pair; returns how many. Pool thread. */
size_t dispatch_log_compress_pending(struct dispatch *d);

#endif
