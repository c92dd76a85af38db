/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/placement.h -- the placement policy: when several
 * waiting workers could take a task, which one should. Pull model: the
 * worker that asks (self) gets the task unless another worker that is
 * waiting right now is clearly better for it:
 *
 *   1. a task pending for hold_max or longer goes to whoever asks;
 *   2. warm (prefer_warm): a worker whose last run had the same label on
 *      the same branch (its object directory is warm) -- self first, then
 *      the first warm one among the others;
 *   3. fast (prefer_fast): the waiting worker with the highest speed score,
 *      if it beats self's by more than speed_margin (relative);
 *   4. otherwise self.
 *
 * Plus the speed score: an exponential average of (label's mean run time /
 * this run's time), so 1.0 is average, 2.0 twice as fast. Pure functions (no
 * host calls), any thread.
 */
#ifndef RELENGD_DISPATCH_PLACEMENT_H
#define RELENGD_DISPATCH_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dispatch_place_conf {
    bool prefer_warm;
    bool prefer_fast;
    double speed_margin;  /* 0.2: 20% faster to count as faster */
    uint64_t hold_max_ms; /* 0: never hold a task back */
};

struct dispatch_place_task {
    const char *label;
    const char *branch;
    uint64_t pending_since_ms;
};

struct dispatch_place_worker {
    const char *last_label;  /* NULL: has run nothing yet */
    const char *last_branch; /* NULL as last_label */
    double speed;            /* speed score, 1.0 average */
    int free;                /* slots it asked for and has not filled yet */
};

/* The index in workers[0..n) of the worker that should get task; self is the
   asking worker's index (< n). Returns self when no one else is better. */
size_t dispatch_place_pick(const struct dispatch_place_conf *conf,
                           const struct dispatch_place_task *task, uint64_t now_ms,
                           const struct dispatch_place_worker *workers, size_t n, size_t self);

/* Whether w last ran task's label on task's branch. */
bool dispatch_place_warm(const struct dispatch_place_worker *w,
                         const struct dispatch_place_task *task);

/* The new speed score after a completed run of duration_ms of a label whose
   mean so far is label_mean_ms over label_n runs (any worker). old is the
   worker's score over n_samples earlier samples. No baseline yet (label_n 0)
   or a zero duration leaves the score as it was (1.0 with no samples). The
   ratio is clamped to 0.1 .. 10 so that one odd run cannot dominate. */
double dispatch_speed_update(double old, uint64_t n_samples, double label_mean_ms, uint64_t label_n,
                             uint64_t duration_ms, double alpha);

/* The running mean after one more sample. */
double dispatch_mean_update(double mean, uint64_t n, double sample);

/* Nearest-rank percentile (p in 0..100) of sorted[0..n); 0 when n is 0. */
uint64_t dispatch_percentile(const uint64_t *sorted, size_t n, double p);

#endif
