/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/store.c -- the partials_jobs table: migrations, rows as
 * JSON, state changes with their events. Any thread (through the host's
 * store, which serialises writers).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "modules/partials/partials.h"

/* Step i brings partials_* from version i to i+1. Never edit a shipped step. */
const char *const partials_migrations[] = {
    "CREATE TABLE partials_jobs ("
    " id INTEGER PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " platform TEXT NOT NULL,"
    " locale TEXT NOT NULL,"
    " channel TEXT,"
    " version TEXT,"
    " update_number INTEGER NOT NULL DEFAULT 0,"
    " format TEXT NOT NULL,"
    " from_url TEXT, from_upload TEXT, to_url TEXT, to_upload TEXT,"
    " author TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " started_ms INTEGER, finished_ms INTEGER,"
    " error TEXT, failed_phase TEXT,"
    " phases TEXT, stats TEXT,"
    " result_size INTEGER, result_sha256 TEXT, signed INTEGER NOT NULL DEFAULT 0,"
    " cache_hits INTEGER NOT NULL DEFAULT 0, cache_misses INTEGER NOT NULL DEFAULT 0,"
    " cache_bypassed INTEGER NOT NULL DEFAULT 0, cache_corrupt INTEGER NOT NULL DEFAULT 0,"
    " bytes_from_cache INTEGER NOT NULL DEFAULT 0, ms_saved INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX partials_jobs_state ON partials_jobs(state, id);"
    "CREATE TABLE partials_cache ("
    " from_sha TEXT NOT NULL, to_sha TEXT NOT NULL, format TEXT NOT NULL,"
    " size INTEGER NOT NULL, diff_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (from_sha, to_sha, format));"
    "CREATE INDEX partials_cache_lru ON partials_cache(last_used_ms)",
    /* v2: the digest memo (stored bytes -> content) of files the cache uses */
    "CREATE TABLE partials_digests ("
    " stored_sha TEXT PRIMARY KEY, content_sha TEXT NOT NULL, size INTEGER NOT NULL,"
    " used_ms INTEGER NOT NULL)",
    NULL,
};

#define JOB_COLUMNS                                                                                \
    "id, state, platform, locale, channel, version, update_number, format, from_url,"              \
    " from_upload, to_url, to_upload, author, created_ms, started_ms, finished_ms, error,"         \
    " failed_phase, phases, stats, result_size, result_sha256, signed"

static json_t *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? json_string((const char *)s) : json_null();
}

static json_t *col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_integer(sqlite3_column_int64(st, i));
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    json_t *v = s ? json_loads(s, 0, NULL) : NULL;
    return v ? v : json_null();
}

/* A row of SELECT JOB_COLUMNS as the API's job object (new reference). */
static json_t *job_row_json(sqlite3_stmt *st)
{
    json_t *j = json_object(), *from = json_object(), *to = json_object(), *result = NULL;
    int64_t id = sqlite3_column_int64(st, 0);
    const char *state = (const char *)sqlite3_column_text(st, 1);

    if (!j || !from || !to)
        goto fail;
    json_object_set_new(from, "url", col_str(st, 8));
    json_object_set_new(from, "upload", col_str(st, 9));
    json_object_set_new(to, "url", col_str(st, 10));
    json_object_set_new(to, "upload", col_str(st, 11));
    if (state && strcmp(state, "done") == 0) {
        char url[96];
        snprintf(url, sizeof(url), "/api/v1/partials/jobs/%lld/result", (long long)id);
        result = json_pack("{s:o, s:o, s:b, s:s}", "size", col_int(st, 20), "sha256",
                           col_str(st, 21), "signed", sqlite3_column_int(st, 22) != 0, "url", url);
    }
    if (json_object_set_new(j, "id", json_integer(id)) != 0 ||
        json_object_set_new(j, "state", col_str(st, 1)) != 0 ||
        json_object_set_new(j, "platform", col_str(st, 2)) != 0 ||
        json_object_set_new(j, "locale", col_str(st, 3)) != 0 ||
        json_object_set_new(j, "channel", col_str(st, 4)) != 0 ||
        json_object_set_new(j, "version", col_str(st, 5)) != 0 ||
        json_object_set_new(j, "update_number", col_int(st, 6)) != 0 ||
        json_object_set_new(j, "format", col_str(st, 7)) != 0 ||
        json_object_set_new(j, "from", from) != 0 || json_object_set_new(j, "to", to) != 0 ||
        json_object_set_new(j, "author", col_str(st, 12)) != 0 ||
        json_object_set_new(j, "created_ms", col_int(st, 13)) != 0 ||
        json_object_set_new(j, "started_ms", col_int(st, 14)) != 0 ||
        json_object_set_new(j, "finished_ms", col_int(st, 15)) != 0 ||
        json_object_set_new(j, "error", col_str(st, 16)) != 0 ||
        json_object_set_new(j, "failed_phase", col_str(st, 17)) != 0 ||
        json_object_set_new(j, "phases", col_json(st, 18)) != 0 ||
        json_object_set_new(j, "stats", col_json(st, 19)) != 0 ||
        json_object_set_new(j, "result", result ? result : json_null()) != 0) {
        from = to = NULL; /* owned by j once set */
        goto fail;
    }
    return j;
fail:
    json_decref(from);
    json_decref(to);
    json_decref(j);
    return NULL;
}

static int bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Reads job id into *out with the transaction's connection. */
static int job_select(sqlite3 *db, int64_t id, json_t **out)
{
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;

    if (sqlite3_prepare_v2(db, "SELECT " JOB_COLUMNS " FROM partials_jobs WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
        goto out;
    step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = RD_ENOTFOUND;
    else if (step == SQLITE_ROW) {
        *out = job_row_json(st);
        rc = *out ? RD_OK : RD_ENOMEM;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

struct job_insert {
    struct partials *p;
    const struct partials_job_spec *s;
    const char *format, *author;
    int64_t id;
    json_t *job;
};

static int job_insert_tx(struct rd_tx *tx, void *arg)
{
    struct job_insert *ji = arg;
    const struct partials_job_spec *s = ji->s;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO partials_jobs (state, platform, locale, channel, version,"
                           " update_number, format, from_url, from_upload, to_url, to_upload,"
                           " author, created_ms) VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                           " ?9, ?10, ?11, ?12)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, s->platform, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, s->locale, -1, SQLITE_STATIC) != SQLITE_OK ||
        bind_opt(st, 3, s->channel) != SQLITE_OK || bind_opt(st, 4, s->version) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, s->update_number) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, ji->format, -1, SQLITE_STATIC) != SQLITE_OK ||
        bind_opt(st, 7, s->from_url) != SQLITE_OK || bind_opt(st, 8, s->from_upload) != SQLITE_OK ||
        bind_opt(st, 9, s->to_url) != SQLITE_OK || bind_opt(st, 10, s->to_upload) != SQLITE_OK ||
        sqlite3_bind_text(st, 11, ji->author, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 12, (int64_t)rd_now_ms(ji->p->h)) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        rd_log(ji->p->h, RD_ERROR, "inserting a job failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    ji->id = sqlite3_last_insert_rowid(db);
    rc = job_select(db, ji->id, &ji->job);
out:
    sqlite3_finalize(st);
    return rc;
}

int partials_job_insert(struct partials *p, const struct partials_job_spec *s, const char *format,
                        const char *author, int64_t *id, json_t **job)
{
    struct job_insert ji = {.p = p, .s = s, .format = format, .author = author};
    int rc = rd_store_write(p->h, job_insert_tx, &ji);

    if (rc != RD_OK) {
        json_decref(ji.job);
        return rc;
    }
    *id = ji.id;
    *job = ji.job;
    return RD_OK;
}

struct job_get {
    int64_t id;
    json_t *job;
};

static int job_get_tx(struct rd_tx *tx, void *arg)
{
    struct job_get *jg = arg;
    return job_select(rd_tx_db(tx), jg->id, &jg->job);
}

int partials_job_get(struct partials *p, int64_t id, json_t **out)
{
    struct job_get jg = {.id = id};
    int rc = rd_store_read(p->h, job_get_tx, &jg);

    if (rc == RD_OK)
        *out = jg.job;
    return rc;
}

struct job_list {
    const struct partials_list_query *q;
    bool unfinished;
    json_t *jobs;
};

static int job_list_tx(struct rd_tx *tx, void *arg)
{
    struct job_list *jl = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;
    const char *sql = jl->unfinished ? "SELECT " JOB_COLUMNS
                                       " FROM partials_jobs WHERE state IN ('queued', 'running')"
                                       " ORDER BY id"
                                     : "SELECT " JOB_COLUMNS
                                       " FROM partials_jobs WHERE (?1 IS NULL OR state = ?1)"
                                       " AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3";

    jl->jobs = json_array();
    if (!jl->jobs)
        return RD_ENOMEM;
    if (sqlite3_prepare_v2(rd_tx_db(tx), sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (!jl->unfinished && (bind_opt(st, 1, jl->q->state) != SQLITE_OK ||
                            sqlite3_bind_int64(st, 2, jl->q->before) != SQLITE_OK ||
                            sqlite3_bind_int64(st, 3, jl->q->limit) != SQLITE_OK))
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (json_array_append_new(jl->jobs, job_row_json(st)) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    if (step == SQLITE_DONE)
        rc = RD_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

int partials_job_list(struct partials *p, const struct partials_list_query *q, json_t **out)
{
    struct job_list jl = {.q = q};
    int rc = rd_store_read(p->h, job_list_tx, &jl);

    if (rc != RD_OK) {
        json_decref(jl.jobs);
        return rc;
    }
    *out = jl.jobs;
    return RD_OK;
}

int partials_jobs_unfinished(struct partials *p, json_t **out)
{
    struct job_list jl = {.unfinished = true};
    int rc = rd_store_read(p->h, job_list_tx, &jl);

    if (rc != RD_OK) {
        json_decref(jl.jobs);
        return rc;
    }
    *out = jl.jobs;
    return RD_OK;
}

struct job_running {
    int64_t id, now;
};

static int job_running_tx(struct rd_tx *tx, void *arg)
{
    struct job_running *jr = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "UPDATE partials_jobs SET state = 'running', started_ms = ?2"
                           " WHERE id = ?1 AND state IN ('queued', 'running')",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, jr->id) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, jr->now) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = RD_OK;
    sqlite3_finalize(st);
    return rc;
}

int partials_job_running(struct partials *p, int64_t id)
{
    struct job_running jr = {.id = id, .now = (int64_t)rd_now_ms(p->h)};
    return rd_store_write(p->h, job_running_tx, &jr);
}

struct job_finish {
    struct partials *p;
    int64_t id;
    const struct partials_result *res;
};

static int64_t stat_int(const json_t *stats, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(stats, key));
}

static int job_finish_tx(struct rd_tx *tx, void *arg)
{
    struct job_finish *jf = arg;
    const struct partials_result *res = jf->res;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    char *phases = res->phases ? json_dumps(res->phases, JSON_COMPACT) : NULL;
    char *stats = res->stats ? json_dumps(res->stats, JSON_COMPACT) : NULL;
    json_t *job = NULL, *ev = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(
            db,
            "UPDATE partials_jobs SET state = ?2, finished_ms = ?3, error = ?4, failed_phase = ?5,"
            " phases = ?6, stats = ?7, result_size = ?8, result_sha256 = ?9, signed = ?10,"
            " cache_hits = ?11, cache_misses = ?12, cache_bypassed = ?13, cache_corrupt = ?14,"
            " bytes_from_cache = ?15, ms_saved = ?16 WHERE id = ?1",
            -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, jf->id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, res->ok ? "done" : "failed", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, (int64_t)rd_now_ms(jf->p->h)) != SQLITE_OK ||
        bind_opt(st, 4, res->ok ? NULL : res->error) != SQLITE_OK ||
        bind_opt(st, 5, res->ok ? NULL : res->phase) != SQLITE_OK ||
        bind_opt(st, 6, phases) != SQLITE_OK || bind_opt(st, 7, stats) != SQLITE_OK ||
        (res->ok ? sqlite3_bind_int64(st, 8, (int64_t)res->size) : sqlite3_bind_null(st, 8)) !=
            SQLITE_OK ||
        bind_opt(st, 9, res->ok ? res->sha256 : NULL) != SQLITE_OK ||
        sqlite3_bind_int(st, 10, res->is_signed) != SQLITE_OK ||
        sqlite3_bind_int64(st, 11, stat_int(res->stats, "cache_hits")) != SQLITE_OK ||
        sqlite3_bind_int64(st, 12, stat_int(res->stats, "cache_misses")) != SQLITE_OK ||
        sqlite3_bind_int64(st, 13, stat_int(res->stats, "cache_bypassed")) != SQLITE_OK ||
        sqlite3_bind_int64(st, 14, stat_int(res->stats, "cache_corrupt")) != SQLITE_OK ||
        sqlite3_bind_int64(st, 15, stat_int(res->stats, "bytes_from_cache")) != SQLITE_OK ||
        sqlite3_bind_int64(st, 16, (int64_t)res->ms_saved) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        rd_log(jf->p->h, RD_ERROR, "finishing job %lld failed: %s", (long long)jf->id,
               sqlite3_errmsg(db));
        goto out;
    }
    rc = job_select(db, jf->id, &job);
    if (rc != RD_OK)
        goto out;
    /* the event carries the whole job, as GET /jobs/{id} shows it */
    ev = job;
    job = NULL;
    rc = rd_tx_publish(tx, res->ok ? PARTIALS_EVENT_DONE : PARTIALS_EVENT_FAILED, ev);
out:
    json_decref(job);
    sqlite3_finalize(st);
    free(phases);
    free(stats);
    return rc;
}

int partials_job_finish(struct partials *p, int64_t id, const struct partials_result *res)
{
    struct job_finish jf = {.p = p, .id = id, .res = res};
    return rd_store_write(p->h, job_finish_tx, &jf);
}

struct totals {
    json_t *out;
};

static int totals_tx(struct rd_tx *tx, void *arg)
{
    struct totals *t = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           "SELECT count(*), coalesce(sum(state = 'done'), 0),"
                           " coalesce(sum(state = 'failed'), 0),"
                           " coalesce(sum(state IN ('queued', 'running')), 0),"
                           " coalesce(sum(cache_hits), 0), coalesce(sum(cache_misses), 0),"
                           " coalesce(sum(cache_bypassed), 0), coalesce(sum(cache_corrupt), 0),"
                           " coalesce(sum(bytes_from_cache), 0), coalesce(sum(ms_saved), 0),"
                           " coalesce(sum(result_size), 0) FROM partials_jobs",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        int64_t hits = sqlite3_column_int64(st, 4), misses = sqlite3_column_int64(st, 5);
        t->out = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I}", "jobs",
            (json_int_t)sqlite3_column_int64(st, 0), "done",
            (json_int_t)sqlite3_column_int64(st, 1), "failed",
            (json_int_t)sqlite3_column_int64(st, 2), "active",
            (json_int_t)sqlite3_column_int64(st, 3), "cache_hits", (json_int_t)hits, "cache_misses",
            (json_int_t)misses, "cache_bypassed", (json_int_t)sqlite3_column_int64(st, 6),
            "cache_corrupt", (json_int_t)sqlite3_column_int64(st, 7), "cache_hit_rate",
            hits + misses > 0 ? json_real((double)hits / (double)(hits + misses)) : json_null(),
            "bytes_from_cache", (json_int_t)sqlite3_column_int64(st, 8), "ms_saved",
            (json_int_t)sqlite3_column_int64(st, 9), "partial_bytes",
            (json_int_t)sqlite3_column_int64(st, 10));
        rc = t->out ? RD_OK : RD_ENOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

json_t *partials_totals(struct partials *p)
{
    struct totals t = {0};

    if (rd_store_read(p->h, totals_tx, &t) != RD_OK) {
        json_decref(t.out);
        return NULL;
    }
    return t.out;
}
