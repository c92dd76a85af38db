/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/job.c -- a job's pipeline. The loop thread moves a job
 * from phase to phase; the slow parts run on the host's thread pool:
 *
 *   download  rd_fetch of from_url / to_url (loop thread, curl multi)
 *   unpack    partial_gen_open                           one pool item
 *   diff      partial_gen_diff for every file in both    one pool item per file,
 *             trees, with the diff cache                 all queued at once
 *   pack      manifests and the MAR        \
 *   verify    apply to the from tree        } one pool item
 *   sign      the signing service, if any  /
 *
 * Each phase is timed (histogram phase_seconds with phase, platform,
 * locale and update_number tags) and stored with the job. A job whose
 * daemon stops mid-way keeps its row queued/running and starts again from
 * its inputs at the next start (partials_jobs_unfinished).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash/hash.h"
#include "modules/partials/partials.h"

enum phase { PH_DOWNLOAD, PH_UNPACK, PH_DIFF, PH_PACK, PH_VERIFY, PH_SIGN, PH_N };
static const char *const phase_names[PH_N] = {"download", "unpack", "diff",
                                              "pack",     "verify", "sign"};

struct fetch_one {
    struct pjob *j;
    FILE *f;
    char part[PATH_MAX], final[PATH_MAX];
    uint64_t bytes, max;
    bool too_big;
};

struct diff_item {
    struct pjob *j;
    size_t i;
    int rc;
    struct rd_error err;
};

struct pjob {
    struct partials *p;
    struct pjob *next;
    int64_t id;
    char dir[PATH_MAX];
    char from_path[PATH_MAX], to_path[PATH_MAX], out_path[PATH_MAX], unsigned_path[PATH_MAX];
    char *from_url, *to_url, *channel, *version;
    char platform[PARTIALS_LABEL_MAX + 1], locale[PARTIALS_LABEL_MAX + 1];
    int64_t update_number;
    enum partial_format format;
    struct partial_gen *g;
    struct partials_cache_use use;
    struct partial_cache_ops ops;
    struct fetch_one fetch[2];
    int fetches_pending;
    struct diff_item *items;
    size_t n_items, items_done;
    int rc;
    enum phase failed;
    struct rd_error err;
    uint64_t phase_ms[PH_N];
    bool phase_ran[PH_N];
    uint64_t t0;
    bool is_signed;
    uint64_t result_size;
    char result_sha[65];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int partials_job_dir(const struct partials *p, int64_t id, char *out, size_t len)
{
    return snprintf(out, len, "%s/%lld", p->conf.jobs_dir, (long long)id) < (int)len ? RD_OK
                                                                                     : RD_EINVAL;
}

int partials_upload_path(const struct partials *p, const char *sha_hex, char *out, size_t len)
{
    if (!partials_sha_hex_ok(sha_hex))
        return RD_EINVAL;
    return snprintf(out, len, "%s/%s.mar", p->conf.uploads_dir, sha_hex) < (int)len ? RD_OK
                                                                                    : RD_EINVAL;
}

/* --------------------------------------------------------- life cycle */

static void job_unlink(struct pjob *j)
{
    struct partials *p = j->p;

    pthread_mutex_lock(&p->lock);
    for (struct pjob **pp = &p->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    pthread_mutex_unlock(&p->lock);
}

static void job_free(struct pjob *j)
{
    if (!j)
        return;
    for (int k = 0; k < 2; k++)
        if (j->fetch[k].f)
            fclose(j->fetch[k].f);
    partial_gen_free(j->g);
    free(j->items);
    free(j->from_url);
    free(j->to_url);
    free(j->channel);
    free(j->version);
    free(j);
}

static void observe_phase(struct pjob *j, enum phase ph)
{
    char tags[256];
    struct rd_metric *m;

    snprintf(tags, sizeof(tags), "phase=%s,platform=%s,locale=%s,update_number=%lld",
             phase_names[ph], j->platform, j->locale, (long long)j->update_number);
    m = rd_metric(j->p->h, RD_HISTOGRAM, "phase_seconds",
                  "time of each phase of a partial job (download, unpack, diff, pack, verify, "
                  "sign)",
                  tags);
    rd_metric_observe(m, (double)j->phase_ms[ph] / 1000.0);
}

static json_t *stats_json(const struct pjob *j)
{
    struct partial_stats st = {0};

    if (j->g)
        partial_gen_stats(j->g, &st);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "from_files", (json_int_t)st.n_from, "to_files", (json_int_t)st.n_to,
                     "compared", (json_int_t)st.n_diffs, "unchanged", (json_int_t)st.n_same,
                     "patched", (json_int_t)st.n_patch, "full", (json_int_t)st.n_full, "entries",
                     (json_int_t)st.n_entries, "cache_hits", (json_int_t)st.cache_hits,
                     "cache_misses", (json_int_t)st.cache_misses, "cache_bypassed",
                     (json_int_t)st.cache_bypass, "cache_corrupt", (json_int_t)st.cache_corrupt,
                     "bytes_from_cache", (json_int_t)st.bytes_from_cache, "remote_hits",
                     (json_int_t)atomic_load(&j->use.remote_hits), "ms_saved",
                     (json_int_t)atomic_load(&j->use.ms_saved));
}

/* Loop thread: stores the outcome, publishes the event, frees the job. */
static void job_finish(struct pjob *j)
{
    struct partials *p = j->p;
    struct partials_result res = {0};
    json_t *phases = json_object();
    json_t *stats = stats_json(j);
    struct partial_stats st = {0};
    int rc;

    for (int k = 0; k < PH_N; k++)
        if (j->phase_ran[k]) {
            json_object_set_new(phases, phase_names[k], json_integer((json_int_t)j->phase_ms[k]));
            observe_phase(j, (enum phase)k);
        }
    res.ok = j->rc == RD_OK;
    res.error = j->err.msg[0] ? j->err.msg : "failed";
    res.phase = phase_names[j->failed];
    res.phases = phases;
    res.stats = stats;
    res.size = j->result_size;
    res.sha256 = j->result_sha;
    res.is_signed = j->is_signed;
    res.ms_saved = atomic_load(&j->use.ms_saved);
    rc = partials_job_finish(p, j->id, &res);
    if (rc != RD_OK)
        rd_log(p->h, RD_ERROR, "job %lld: storing the outcome failed (%d)", (long long)j->id, rc);
    if (j->g) {
        partial_gen_stats(j->g, &st);
        partials_cache_count(p->cache, &st, res.ms_saved);
    }
    if (res.ok) {
        rd_metric_add(p->m_done, 1);
        rd_metric_add(p->m_partial_bytes, (double)j->result_size);
        rd_log(p->h, RD_INFO, "job %lld done: %s %s, %llu bytes, %zu hits %zu misses",
               (long long)j->id, j->platform, j->locale, (unsigned long long)j->result_size,
               st.cache_hits, st.cache_misses);
        /* the inputs are not needed any more (uploads stay in uploads/) */
        if (j->from_url)
            unlink(j->from_path);
        if (j->to_url)
            unlink(j->to_path);
        unlink(j->unsigned_path);
    } else {
        rd_metric_add(p->m_failed, 1);
        rd_log(p->h, RD_WARN, "job %lld failed in %s: %s", (long long)j->id, res.phase, res.error);
    }
    json_decref(phases);
    json_decref(stats);
    atomic_fetch_sub(&p->n_running, 1);
    rd_metric_set(p->m_running, (double)atomic_load(&p->n_running));
    job_unlink(j);
    job_free(j);
}

/* Loop thread: a stopping daemon leaves the row as it is (it resumes at the
   next start) and only frees the job. */
static bool job_abandon_if_stopping(struct pjob *j)
{
    if (!atomic_load(&j->p->stopping))
        return false;
    atomic_fetch_sub(&j->p->n_running, 1);
    job_unlink(j);
    job_free(j);
    return true;
}

static void job_fail(struct pjob *j, enum phase ph, int rc)
{
    j->rc = rc != RD_OK ? rc : RD_EIO;
    j->failed = ph;
    job_finish(j);
}

/* ----------------------------------------------------- pack/verify/sign */

static void work_finish(void *arg)
{
    struct pjob *j = arg;
    struct partials *p = j->p;
    const char *target = p->signer ? j->unsigned_path : j->out_path;
    uint64_t t;
    int fd, rc;

    if (atomic_load(&p->stopping)) {
        j->rc = RD_EUNAVAIL;
        return;
    }
    t = mono_ms();
    rc = partial_gen_pack(j->g, target, &j->err);
    j->phase_ms[PH_PACK] = mono_ms() - t;
    j->phase_ran[PH_PACK] = true;
    if (rc != RD_OK) {
        j->failed = PH_PACK;
        goto out;
    }
    t = mono_ms();
    rc = partial_gen_verify(j->g, target, &j->err);
    j->phase_ms[PH_VERIFY] = mono_ms() - t;
    j->phase_ran[PH_VERIFY] = true;
    if (rc != RD_OK) {
        j->failed = PH_VERIFY;
        goto out;
    }
    if (p->signer) {
        t = mono_ms();
        rc = p->signer->sign_mar(p->signer->ctx, p->conf.signing_key, j->unsigned_path, j->out_path,
                                 &j->err);
        j->phase_ms[PH_SIGN] = mono_ms() - t;
        j->phase_ran[PH_SIGN] = true;
        if (rc != RD_OK) {
            j->failed = PH_SIGN;
            goto out;
        }
        j->is_signed = true;
    }
    fd = open(j->out_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = rd_error_set(&j->err, RD_EIO, "cannot open the result: %s", strerror(errno));
        j->failed = PH_PACK;
        goto out;
    }
    {
        uint8_t digest[32];
        struct stat st;
        if (fstat(fd, &st) == 0)
            j->result_size = (uint64_t)st.st_size;
        rc = hash_fd(HASH_SHA256, fd, digest, &j->err);
        if (rc == RD_OK)
            hash_hex(digest, 32, j->result_sha);
    }
    close(fd);
out:
    j->rc = rc;
}

static void done_finish(void *arg)
{
    struct pjob *j = arg;

    if (job_abandon_if_stopping(j))
        return;
    job_finish(j);
}

static void start_finish(struct pjob *j)
{
    int rc = rd_submit(j->p->h, work_finish, done_finish, j);
    if (rc != RD_OK && !job_abandon_if_stopping(j))
        job_fail(j, PH_PACK, rc);
}

/* --------------------------------------------------------------- diff */

static void work_diff(void *arg)
{
    struct diff_item *it = arg;
    struct pjob *j = it->j;

    if (atomic_load(&j->p->stopping)) {
        it->rc = RD_EUNAVAIL;
        return;
    }
    it->rc = partial_gen_diff(j->g, it->i, &j->ops, &it->err);
}

static void done_diff(void *arg)
{
    struct diff_item *it = arg;
    struct pjob *j = it->j;

    if (++j->items_done < j->n_items)
        return;
    j->phase_ms[PH_DIFF] = mono_ms() - j->t0;
    j->phase_ran[PH_DIFF] = true;
    if (job_abandon_if_stopping(j))
        return;
    for (size_t i = 0; i < j->n_items; i++)
        if (j->items[i].rc != RD_OK) {
            j->err = j->items[i].err;
            job_fail(j, PH_DIFF, j->items[i].rc);
            return;
        }
    start_finish(j);
}

/* ------------------------------------------------------------- unpack */

static void work_unpack(void *arg)
{
    struct pjob *j = arg;
    struct partials *p = j->p;
    struct partial_opts o;
    uint64_t t = mono_ms();

    if (atomic_load(&p->stopping)) {
        j->rc = RD_EUNAVAIL;
        return;
    }
    partial_opts_init(&o);
    o.format = j->format;
    o.rules.forced = (const char *const *)p->forced;
    o.rules.main_exe = p->conf.main_exe;
    o.channel = j->channel;
    o.version = j->version;
    o.xz_preset = (uint32_t)p->conf.xz_preset | (p->conf.xz_extreme ? 0x80000000u : 0);
    o.workdir = j->dir;
    j->rc = partial_gen_open(j->from_path, j->to_path, &o, &j->g, &j->err);
    j->phase_ms[PH_UNPACK] = mono_ms() - t;
    j->phase_ran[PH_UNPACK] = true;
}

static void done_unpack(void *arg)
{
    struct pjob *j = arg;
    int rc;

    if (job_abandon_if_stopping(j))
        return;
    if (j->rc != RD_OK) {
        job_fail(j, PH_UNPACK, j->rc);
        return;
    }
    j->n_items = partial_gen_n_diffs(j->g);
    j->t0 = mono_ms();
    if (j->n_items == 0) {
        j->phase_ran[PH_DIFF] = true;
        start_finish(j);
        return;
    }
    j->items = calloc(j->n_items, sizeof(*j->items));
    if (!j->items) {
        job_fail(j, PH_DIFF, RD_ENOMEM);
        return;
    }
    for (size_t i = 0; i < j->n_items; i++) {
        j->items[i].j = j;
        j->items[i].i = i;
    }
    /* every file of the partial is queued at once: the pool's threads (one
       per core) take them in parallel */
    for (size_t i = 0; i < j->n_items; i++) {
        rc = rd_submit(j->p->h, work_diff, done_diff, &j->items[i]);
        if (rc != RD_OK) {
            /* the items already queued finish on their own; this one and
               the rest count as failed */
            for (size_t k = i; k < j->n_items; k++) {
                j->items[k].rc = rc;
                rd_error_set(&j->items[k].err, rc, "cannot queue the diff");
            }
            j->items_done += j->n_items - i - 1;
            done_diff(&j->items[i]);
            return;
        }
    }
}

static void start_unpack(struct pjob *j)
{
    int rc;

    j->rc = RD_OK;
    rc = rd_submit(j->p->h, work_unpack, done_unpack, j);
    if (rc != RD_OK && !job_abandon_if_stopping(j))
        job_fail(j, PH_UNPACK, rc);
}

/* ----------------------------------------------------------- download */

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct fetch_one *fo = arg;
    size_t n = size * nmemb;

    if (fo->bytes + n > fo->max) {
        fo->too_big = true;
        return 0;
    }
    if (fwrite(ptr, 1, n, fo->f) != n)
        return 0;
    fo->bytes += n;
    return n;
}

static void fetch_done(void *arg, CURL *easy, CURLcode result)
{
    struct fetch_one *fo = arg;
    struct pjob *j = fo->j;
    long status = 0;
    char *scheme = NULL;
    bool is_http;
    int rc = RD_OK;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_SCHEME, &scheme);
    /* only http(s) is allowed; another scheme is a test's file:// stand-in,
       which has no status code */
    is_http = scheme && strncasecmp(scheme, "http", 4) == 0;
    if (fclose(fo->f) != 0 && result == CURLE_OK)
        result = CURLE_WRITE_ERROR;
    fo->f = NULL;
    if (result == CURLE_OK && (status == 200 || !is_http)) {
        if (rename(fo->part, fo->final) != 0)
            rc = rd_error_set(&j->err, RD_EIO, "saving the download: %s", strerror(errno));
    } else {
        unlink(fo->part);
        if (fo->too_big)
            rc = rd_error_set(&j->err, RD_ETOOBIG, "download over max_upload (%llu bytes)",
                              (unsigned long long)fo->max);
        else if (result != CURLE_OK)
            rc = rd_error_set(&j->err, RD_EUNAVAIL, "download failed: %s",
                              curl_easy_strerror(result));
        else
            rc = rd_error_set(&j->err, RD_EUNAVAIL, "download failed: HTTP %ld", status);
    }
    if (rc != RD_OK && j->rc == RD_OK)
        j->rc = rc;
    if (--j->fetches_pending > 0)
        return;
    j->phase_ms[PH_DOWNLOAD] = mono_ms() - j->t0;
    j->phase_ran[PH_DOWNLOAD] = true;
    if (job_abandon_if_stopping(j))
        return;
    if (j->rc != RD_OK) {
        job_fail(j, PH_DOWNLOAD, j->rc);
        return;
    }
    start_unpack(j);
}

static int start_fetch(struct pjob *j, int k, const char *url, const char *final)
{
    struct fetch_one *fo = &j->fetch[k];
    struct partials *p = j->p;
    CURL *e;
    int rc;

    fo->j = j;
    fo->max = p->conf.max_upload;
    snprintf(fo->final, sizeof(fo->final), "%s", final);
    if (snprintf(fo->part, sizeof(fo->part), "%s.part", final) >= (int)sizeof(fo->part))
        return RD_EINVAL;
    fo->f = fopen(fo->part, "wbe");
    if (!fo->f)
        return rd_error_set(&j->err, RD_EIO, "cannot create %s: %s", fo->part, strerror(errno));
    e = curl_easy_init();
    if (!e)
        return RD_ENOMEM;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->conf.fetch_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->conf.max_upload);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, fo);
    if (p->conf.fetch_proxy && *p->conf.fetch_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, p->conf.fetch_proxy);
    j->fetches_pending++;
    rc = rd_fetch(p->h, e, fetch_done, fo);
    if (rc != RD_OK) {
        j->fetches_pending--;
        rd_error_set(&j->err, rc, "cannot start the download");
    }
    return rc;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Loop thread: the job's first step. */
static void job_begin(void *arg)
{
    struct pjob *j = arg;
    int rc = RD_OK;

    if (job_abandon_if_stopping(j))
        return;
    rc = partials_job_running(j->p, j->id);
    if (rc != RD_OK) {
        job_fail(j, PH_DOWNLOAD, rc);
        return;
    }
    j->t0 = mono_ms();
    j->rc = RD_OK;
    /* fetched inputs that a previous run finished are reused */
    if (j->from_url && !file_exists(j->from_path))
        rc = start_fetch(j, 0, j->from_url, j->from_path);
    if (rc == RD_OK && j->to_url && !file_exists(j->to_path))
        rc = start_fetch(j, 1, j->to_url, j->to_path);
    if (rc != RD_OK) {
        j->rc = rc;
        if (j->fetches_pending > 0)
            return; /* the running download's done finishes the job */
        job_fail(j, PH_DOWNLOAD, rc);
        return;
    }
    if (j->fetches_pending > 0)
        return;
    start_unpack(j);
}

/* ------------------------------------------------------------- launch */

static char *dup_opt(const json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* Where one input of j is read from: the upload's file, or name in the
   job's directory (a download). */
static int input_path(const struct pjob *j, const char *upload, const char *name, char *out,
                      size_t len)
{
    if (upload)
        return partials_upload_path(j->p, upload, out, len);
    return snprintf(out, len, "%s/%s", j->dir, name) >= (int)len ? RD_EINVAL : RD_OK;
}

int partials_job_launch(struct partials *p, const json_t *row)
{
    struct pjob *j = calloc(1, sizeof(*j));
    const json_t *from = json_object_get(row, "from"), *to = json_object_get(row, "to");
    const char *from_up = json_string_value(json_object_get(from, "upload"));
    const char *to_up = json_string_value(json_object_get(to, "upload"));
    const char *fmt = json_string_value(json_object_get(row, "format"));
    int rc = RD_EINVAL;

    if (!j)
        return RD_ENOMEM;
    j->p = p;
    j->id = (int64_t)json_integer_value(json_object_get(row, "id"));
    j->update_number = (int64_t)json_integer_value(json_object_get(row, "update_number"));
    j->format = fmt && strcmp(fmt, "bz2") == 0 ? PARTIAL_FMT_BZ2 : PARTIAL_FMT_XZ;
    snprintf(j->platform, sizeof(j->platform), "%s",
             json_string_value(json_object_get(row, "platform")));
    snprintf(j->locale, sizeof(j->locale), "%s", json_string_value(json_object_get(row, "locale")));
    j->from_url = dup_opt(json_object_get(from, "url"));
    j->to_url = dup_opt(json_object_get(to, "url"));
    j->channel = dup_opt(json_object_get(row, "channel"));
    j->version = dup_opt(json_object_get(row, "version"));
    j->use.c = p->cache;
    partials_cache_ops(&j->use, &j->ops);
    if (partials_job_dir(p, j->id, j->dir, sizeof(j->dir)) != RD_OK)
        goto out;
    if (mkdir(j->dir, 0755) != 0 && errno != EEXIST) {
        rc = RD_EIO;
        goto out;
    }
    if (input_path(j, from_up, "from.mar", j->from_path, sizeof(j->from_path)) != RD_OK ||
        input_path(j, to_up, "to.mar", j->to_path, sizeof(j->to_path)) != RD_OK)
        goto out;
    if (snprintf(j->out_path, sizeof(j->out_path), "%s/partial.mar", j->dir) >=
            (int)sizeof(j->out_path) ||
        snprintf(j->unsigned_path, sizeof(j->unsigned_path), "%s/partial.unsigned.mar", j->dir) >=
            (int)sizeof(j->unsigned_path))
        goto out;
    pthread_mutex_lock(&p->lock);
    j->next = p->jobs;
    p->jobs = j;
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_add(&p->n_running, 1);
    rd_metric_set(p->m_running, (double)atomic_load(&p->n_running));
    rc = rd_defer(p->h, job_begin, j);
    if (rc != RD_OK) {
        atomic_fetch_sub(&p->n_running, 1);
        job_unlink(j);
        goto out;
    }
    return RD_OK;
out:
    job_free(j);
    return rc;
}

void partials_jobs_stop(struct partials *p)
{
    atomic_store(&p->stopping, true);
}

void partials_jobs_free(struct partials *p)
{
    struct pjob *j = p->jobs, *next;

    p->jobs = NULL;
    for (; j; j = next) {
        next = j->next;
        job_free(j);
    }
}
