/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/placement.c -- the placement policy and speed score (see
 * placement.h for the rules). No host calls; tested in tables of cases.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "modules/dispatch/placement.h"

bool dispatch_place_warm(const struct dispatch_place_worker *w,
                         const struct dispatch_place_task *task)
{
    return w->last_label && w->last_branch && task->label && task->branch &&
           strcmp(w->last_label, task->label) == 0 && strcmp(w->last_branch, task->branch) == 0;
}

size_t dispatch_place_pick(const struct dispatch_place_conf *conf,
                           const struct dispatch_place_task *task, uint64_t now_ms,
                           const struct dispatch_place_worker *workers, size_t n, size_t self)
{
    size_t i, best = self;

    if (self >= n)
        return self;
    /* A task that waited long enough is not held back for anyone. */
    if (conf->hold_max_ms == 0 ||
        (now_ms > task->pending_since_ms && now_ms - task->pending_since_ms >= conf->hold_max_ms))
        return self;
    if (conf->prefer_warm) {
        if (dispatch_place_warm(&workers[self], task))
            return self;
        for (i = 0; i < n; i++)
            if (i != self && workers[i].free > 0 && dispatch_place_warm(&workers[i], task))
                return i;
    }
    if (conf->prefer_fast) {
        for (i = 0; i < n; i++)
            if (i != self && workers[i].free > 0 && workers[i].speed > workers[best].speed)
                best = i;
        if (best != self && workers[best].speed > workers[self].speed * (1.0 + conf->speed_margin))
            return best;
    }
    return self;
}

double dispatch_speed_update(double old, uint64_t n_samples, double label_mean_ms, uint64_t label_n,
                             uint64_t duration_ms, double alpha)
{
    double ratio;

    if (n_samples == 0 || !isfinite(old) || old <= 0)
        old = 1.0;
    if (label_n == 0 || duration_ms == 0 || !(label_mean_ms > 0))
        return old;
    ratio = label_mean_ms / (double)duration_ms;
    if (ratio < 0.1)
        ratio = 0.1;
    if (ratio > 10.0)
        ratio = 10.0;
    if (n_samples == 0)
        return ratio;
    if (!(alpha > 0) || alpha > 1)
        alpha = 0.2;
    return old * (1.0 - alpha) + ratio * alpha;
}

double dispatch_mean_update(double mean, uint64_t n, double sample)
{
    return mean + (sample - mean) / (double)(n + 1);
}

uint64_t dispatch_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0;
    if (p <= 0)
        return sorted[0];
    if (p >= 100)
        return sorted[n - 1];
    rank = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[rank == 0 ? 0 : rank - 1];
}
