/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/partials.h -- the partials module's state and the
 * functions its files share: the job store (store.c), the job pipeline
 * (job.c) and the route handlers (api.c). Which thread each runs on is
 * said at each declaration.
 */
#ifndef RELENGD_PARTIALS_PARTIALS_H
#define RELENGD_PARTIALS_PARTIALS_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/module.h"
#include "lib/partial/generate.h"
#include "modules/partials/cache.h"
#include "modules/partials/signing.h"
#include "modules/partials/spec.h"

#define PARTIALS_EVENT_DONE "partials.job.done"
#define PARTIALS_EVENT_FAILED "partials.job.failed"

struct pjob;

/* Everything the module owns. */
struct partials {
    struct rd_host *h;
    struct partials_conf conf;
    char **forced; /* conf.forced split into words */
    struct partials_cache *cache;
    const struct partials_signing_v1 *signer; /* NULL: publish unsigned */
    pthread_mutex_t lock;                     /* jobs */
    struct pjob *jobs;                        /* live jobs */
    atomic_bool stopping;
    struct rd_metric *m_done, *m_failed, *m_running, *m_uploads, *m_partial_bytes;
    _Atomic int64_t n_running;
};

/* ------------------------------------------------------------ store.c */

extern const char *const partials_migrations[];

/* What a finished job stores. */
struct partials_result {
    bool ok;
    const char *error;  /* failed jobs */
    const char *phase;  /* the phase that failed */
    json_t *phases;     /* {"download": ms, ...}; borrowed */
    json_t *stats;      /* partial_stats as JSON; borrowed */
    uint64_t size;      /* the partial's bytes */
    const char *sha256; /* its hex digest */
    bool is_signed;
    uint64_t ms_saved;
};

/* Any thread. Inserts a queued job; *job is the stored row as JSON (new
   reference). */
int partials_job_insert(struct partials *p, const struct partials_job_spec *s, const char *format,
                        const char *author, int64_t *id, json_t **job);
/* Any thread. RD_ENOTFOUND for an unknown id. *out: a new reference. */
int partials_job_get(struct partials *p, int64_t id, json_t **out);
int partials_job_list(struct partials *p, const struct partials_list_query *q, json_t **out);
/* Any thread: marks the job running (at now). */
int partials_job_running(struct partials *p, int64_t id);
/* Any thread: stores the outcome and publishes partials.job.done or
   partials.job.failed with it, in one transaction. */
int partials_job_finish(struct partials *p, int64_t id, const struct partials_result *res);
/* Init/start: the ids of jobs queued or running when the daemon stopped,
   oldest first (a new reference: array of job objects). */
int partials_jobs_unfinished(struct partials *p, json_t **out);
/* Any thread: totals over finished jobs for status and the dashboard. */
json_t *partials_totals(struct partials *p);

/* -------------------------------------------------------------- job.c */

/* Starts the pipeline of the stored job row (a JSON object from the store;
   borrowed). Any thread: the work begins on the loop thread. */
int partials_job_launch(struct partials *p, const json_t *row);
/* stop: in-flight work finishes without starting new phases; destroy:
   frees jobs that are left (their rows stay queued/running and resume at
   the next start). */
void partials_jobs_stop(struct partials *p);
void partials_jobs_free(struct partials *p);
/* Paths of a job's files. */
int partials_job_dir(const struct partials *p, int64_t id, char *out, size_t len);
int partials_upload_path(const struct partials *p, const char *sha_hex, char *out, size_t len);

/* -------------------------------------------------------------- api.c */

/* start: registers the routes. */
int partials_routes(struct partials *p);

#endif
