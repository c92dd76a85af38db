/* SPDX-License-Identifier: MIT */
/*
 * core/metrics.h -- counters, gauges and histograms with labels, rendered in
 * the Prometheus text format for /metrics and sent to StatsD/DogStatsD over
 * UDP when configured. Registration takes a mutex; updates are lock-free
 * (atomics) except histogram buckets (a per-metric mutex). Any thread.
 */
#ifndef RELENGD_METRICS_H
#define RELENGD_METRICS_H

#include "core/module.h"

struct metrics;

int metrics_new(const struct rd_host_api *api, struct metrics **out);
void metrics_free(struct metrics *ms);

/* Prometheus name: relengd_<module>_<name> ('.' and '-' become '_'),
   counters get _total. tags "k=v,k=v" become labels. The same
   module+name+tags returns the same handle; the same name with another kind
   is NULL. Histogram buckets: 0.001 .. 60 s, or bytes buckets when the name
   ends in _bytes. */
/* module NULL or "" gives relengd_<name> (the core's own metrics). StatsD
   names are "<module>.<name>" as given, without a _total or _seconds suffix. */
struct rd_metric *metrics_get(struct metrics *ms, enum rd_metric_kind k, const char *module,
                              const char *name, const char *help, const char *tags);
/* add: counters (v < 0 ignored) and gauges (v may be negative); on a
   histogram it observes. set: gauges only. observe: histograms only. Calls
   that do not fit the kind, and NaN, are ignored. NULL-safe. */
void metrics_add(struct rd_metric *m, double v);
void metrics_set(struct rd_metric *m, double v);
void metrics_observe(struct rd_metric *m, double v);
double metrics_value(struct rd_metric *m); /* counter/gauge value; histogram count */

/* The whole registry plus process figures (start time, CPU seconds, RSS,
   open fds, threads) as Prometheus text; *out is malloc'd. */
int metrics_render(struct metrics *ms, char **out, size_t *len);

/* StatsD: addr "host:port" (UDP), ns "releng", tags "k:v,k:v" appended to
   every metric (DogStatsD). addr NULL or "" turns it off. */
int metrics_statsd(struct metrics *ms, const char *addr, const char *ns, const char *tags,
                   struct rd_error *err);
/* One StatsD line for m and value v into buf ("releng.partials.diff_time:12|ms|#platform:linux64");
   returns its length or < 0. Exposed for tests. */
int metrics_statsd_line(struct metrics *ms, struct rd_metric *m, double v, char *buf, size_t len);

#endif
