/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/partials/test_module.c -- the partials module through the fake
 * host: uploads, jobs from upload and from URL, the result, events and
 * metrics, the disk cache (hits across locales, threshold, LRU cap,
 * corrupt files on disk regenerated, half-written files discarded), the
 * signing service, bad input, resuming after a restart, and failure
 * injection of every host call at load.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/partial/apply.h"
#include "modules/partials/signing.h"
#include "tests/fakes/fake_host.h"
#include "tests/unit/partial/trees.h"

const struct rd_module *rd_module_entry(void);

#define API "/api/v1/partials"
#define CREATE "partials:create"

/* Built once for the group. */
static struct trees_mars g;

static int group_setup(void **state)
{
    (void)state;
    return trees_mars_make(&g, "partials-mod");
}

static int group_teardown(void **state)
{
    (void)state;
    trees_mars_free(&g);
    return 0;
}

static struct fake_host *load(const char *conf)
{
    struct fake_host *fh = fake_host_new("partials", conf);

    assert_non_null(fh);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    return fh;
}

static const char *err_code(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

static const char *err_message(const struct fake_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));
}

/* POST /uploads with the bytes of path; returns the status, id in id[65]. */
static int upload(struct fake_host *fh, const char *path, const char *scopes, char *id)
{
    size_t len = 0;
    char *data = trees_slurp(path, &len);
    struct fake_call c = {.method = "POST",
                          .path = API "/uploads",
                          .body = data,
                          .body_len = len,
                          .headers = "Content-Type: application/octet-stream",
                          .scopes = scopes};
    struct fake_resp r;
    int status;

    assert_non_null(data);
    r = fake_host_request(fh, &c);
    status = r.status;
    if (status == 201 && id)
        snprintf(id, 65, "%s", json_string_value(json_object_get(r.body, "id")));
    fake_resp_free(&r);
    free(data);
    return status;
}

/* Queues a job from two uploads; returns its id. */
static json_int_t submit(struct fake_host *fh, const char *from_id, const char *to_id,
                         const char *locale)
{
    char body[512];
    struct fake_resp r;
    json_int_t id;

    snprintf(body, sizeof(body),
             "{\"from_upload\":\"%s\",\"to_upload\":\"%s\",\"platform\":\"linux64\","
             "\"locale\":\"%s\",\"update_number\":1}",
             from_id, to_id, locale);
    r = fake_host_call(fh, "POST", API "/jobs", body, CREATE);
    if (r.status != 202)
        fail_msg("POST /jobs: %d %s", r.status, r.raw);
    assert_string_equal(json_string_value(json_object_get(r.body, "state")), "queued");
    id = json_integer_value(json_object_get(r.body, "id"));
    fake_resp_free(&r);
    return id;
}

static json_t *get_job(struct fake_host *fh, json_int_t id)
{
    char path[128];
    struct fake_resp r;
    json_t *job;

    snprintf(path, sizeof(path), API "/jobs/%lld", (long long)id);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    job = json_incref(r.body);
    fake_resp_free(&r);
    return job;
}

static json_int_t stat_of(const json_t *job, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(job, "stats"), key));
}

/* Applies the result of job id to the from tree and checks the to tree. */
static void check_result(struct fake_host *fh, json_int_t id, const struct tree *to)
{
    char path[128], dir[400], file[600];
    struct fake_resp r;
    struct mar *pm = NULL, *from = NULL;
    struct rd_error err = {0};

    snprintf(path, sizeof(path), API "/jobs/%lld/result", (long long)id);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(mar_open_mem(r.raw, r.raw_len, &pm, &err), RD_OK);
    snprintf(dir, sizeof(dir), "%s/apply-%lld", fake_host_dir(fh), (long long)id);
    mkdir(dir, 0755);
    assert_int_equal(mar_open(g.from, &from, &err), RD_OK);
    assert_int_equal(mar_extract_all(from, dir, 0, &err), RD_OK);
    if (partial_apply_dir(pm, dir, 0, NULL, &err) != RD_OK)
        fail_msg("apply: %s", err.msg);
    for (size_t i = 0; i < to->n; i++) {
        const struct tree_file *tf = &to->files[i];
        size_t len = 0;
        char *got;

        if (strcmp(tf->name, "update-settings.ini") == 0)
            continue; /* add-if-not: the installed one stays */
        snprintf(file, sizeof(file), "%s/%s", dir, tf->name);
        got = trees_slurp(file, &len);
        assert_non_null(got);
        if (len != tf->len || memcmp(got, tf->data, len) != 0)
            fail_msg("%s differs", tf->name);
        free(got);
    }
    trees_rmrf(dir);
    mar_close(from);
    mar_close(pm);
    fake_resp_free(&r);
}

/* ------------------------------------------------------------- tests */

static void test_job_from_uploads(void **state)
{
    struct fake_host *fh = load("cache_min_size = 1KiB\n");
    char from_id[65], to_id[65], de_id[65];
    json_int_t id, id2;
    json_t *job, *phases;
    const json_t *ev;
    struct fake_resp r;

    (void)state;
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    assert_int_equal(upload(fh, g.to_de, "admin", de_id), 201);
    /* the same bytes again: the same id */
    {
        char again[65];
        assert_int_equal(upload(fh, g.to, CREATE, again), 201);
        assert_string_equal(again, to_id);
    }
    id = submit(fh, from_id, to_id, "en-US");
    assert_int_equal(id, 1);
    fake_host_run_pending(fh);

    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_string_equal(json_string_value(json_object_get(job, "platform")), "linux64");
    assert_string_equal(json_string_value(json_object_get(job, "author")), "test");
    phases = json_object_get(job, "phases");
    assert_non_null(json_object_get(phases, "unpack"));
    assert_non_null(json_object_get(phases, "diff"));
    assert_non_null(json_object_get(phases, "pack"));
    assert_non_null(json_object_get(phases, "verify"));
    assert_null(json_object_get(phases, "download")); /* uploads: nothing to fetch */
    assert_null(json_object_get(phases, "sign"));     /* no signing service */
    assert_int_equal(stat_of(job, "compared"), 7);
    assert_int_equal(stat_of(job, "unchanged"), 1);
    assert_int_equal(stat_of(job, "patched") + stat_of(job, "full"), 6);
    assert_int_equal(stat_of(job, "cache_misses"), 4);
    assert_int_equal(stat_of(job, "cache_hits"), 0);
    assert_int_equal(stat_of(job, "cache_bypassed"), 2);
    assert_false(json_is_true(json_object_get(json_object_get(job, "result"), "signed")));
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(job, "result"), "sha256"))), 64);
    json_decref(job);
    check_result(fh, id, &g.to_tree);

    assert_int_equal(fake_host_n_events(fh, "partials.job.done"), 1);
    ev = fake_host_event(fh, "partials.job.done", 0);
    assert_int_equal(json_integer_value(json_object_get(ev, "id")), id);
    assert_string_equal(json_string_value(json_object_get(ev, "state")), "done");
    assert_true(fake_host_metric(fh, "jobs", "result=done") == 1);
    assert_true(fake_host_metric(fh, "cache_misses", NULL) == 4);
    assert_true(fake_host_metric(fh, "phase_seconds",
                                 "phase=diff,platform=linux64,locale=en-US,update_number=1") == 1);

    /* the second locale: every shared file comes from the cache */
    id2 = submit(fh, from_id, de_id, "de");
    fake_host_run_pending(fh);
    job = get_job(fh, id2);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_int_equal(stat_of(job, "cache_hits"), 4);
    assert_int_equal(stat_of(job, "cache_misses"), 0);
    assert_true(stat_of(job, "bytes_from_cache") > 0);
    json_decref(job);
    assert_true(fake_host_metric(fh, "cache_hits", NULL) == 4);

    r = fake_host_call(fh, "GET", API "/cache", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.body, "cache"), "entries")), 4);
    assert_true(json_real_value(
                    json_object_get(json_object_get(r.body, "totals"), "cache_hit_rate")) == 0.5);
    fake_resp_free(&r);

    /* the list, newest first, and by state */
    r = fake_host_call(fh, "GET", API "/jobs?state=done&limit=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "jobs")), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(r.body, "jobs"), 0), "id")),
                     id2);
    fake_resp_free(&r);
    fake_host_free(fh);
}

static void test_bad_input(void **state)
{
    struct fake_host *fh = load(NULL);
    char from_id[65], to_id[65], path[400];
    struct fake_resp r;
    struct fake_call c = {.method = "POST", .path = API "/uploads", .scopes = CREATE};
    json_int_t id;
    json_t *job;

    (void)state;
    /* not a MAR, an empty body, a truncated MAR */
    c.body = "MAR1garbage that is not an archive";
    c.body_len = strlen(c.body);
    r = fake_host_request(fh, &c);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_code(&r), "corrupt_mar");
    fake_resp_free(&r);
    c.body = "";
    c.body_len = 0;
    r = fake_host_request(fh, &c);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);
    {
        size_t len = 0;
        char *data = trees_slurp(g.to, &len);
        c.body = data;
        c.body_len = len / 2;
        r = fake_host_request(fh, &c);
        assert_int_equal(r.status, 400);
        assert_string_equal(err_code(&r), "corrupt_mar");
        fake_resp_free(&r);
        free(data);
    }
    /* scopes: anonymous 401, a reader 403 */
    assert_int_equal(upload(fh, g.from, NULL, NULL), 401);
    assert_int_equal(upload(fh, g.from, "partials:read", NULL), 403);
    r = fake_host_call(fh, "POST", API "/jobs", "{}", "graph:*");
    assert_int_equal(r.status, 403);
    fake_resp_free(&r);

    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    /* bodies */
    r = fake_host_call(fh, "POST", API "/jobs",
                       "{\"from_upload\":\"0000000000000000000000000000000000000000000000000000"
                       "000000000000\",\"to_url\":\"http://h/x\",\"platform\":\"p\","
                       "\"locale\":\"l\"}",
                       CREATE);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(err_message(&r), "from_upload: no upload"));
    fake_resp_free(&r);
    r = fake_host_call(fh, "POST", API "/jobs", "{\"platform\":\"p\"}", CREATE);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(err_message(&r), "from:"));
    fake_resp_free(&r);
    /* nothing was stored */
    r = fake_host_call(fh, "GET", API "/jobs", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "jobs")), 0);
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/jobs?state=nope", NULL, NULL);
    assert_int_equal(r.status, 400);
    fake_resp_free(&r);

    /* unknown ids */
    r = fake_host_call(fh, "GET", API "/jobs/99", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(err_code(&r), "unknown_job");
    fake_resp_free(&r);
    r = fake_host_call(fh, "GET", API "/jobs/x1/result", NULL, NULL);
    assert_int_equal(r.status, 404);
    fake_resp_free(&r);

    /* a valid MAR that is not a complete update: the job fails, clearly */
    assert_int_equal(upload(fh, g.noprecomplete, CREATE, to_id), 201);
    id = submit(fh, from_id, to_id, "en-US");
    snprintf(path, sizeof(path), API "/jobs/%lld/result", (long long)id);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 409); /* queued: no result yet */
    fake_resp_free(&r);
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(job, "failed_phase")), "unpack");
    assert_non_null(strstr(json_string_value(json_object_get(job, "error")), "precomplete"));
    assert_true(json_is_null(json_object_get(job, "result")));
    json_decref(job);
    assert_int_equal(fake_host_n_events(fh, "partials.job.failed"), 1);
    assert_true(fake_host_metric(fh, "jobs", "result=failed") == 1);
    r = fake_host_call(fh, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(err_code(&r), "not_ready");
    fake_resp_free(&r);
    fake_host_free(fh);
}

/* rd_fetch handler: serves http://files/<name> from g.dir. */
static CURLcode serve_files(void *arg, CURL *easy)
{
    char *url = NULL, file[600];
    const char *name;

    (void)arg;
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
    if (!url || strncmp(url, "http://files/", 13) != 0)
        return CURLE_COULDNT_RESOLVE_HOST;
    name = url + 13;
    snprintf(file, sizeof(file), "file://%s/%s", g.dir, name);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "file");
    curl_easy_setopt(easy, CURLOPT_URL, file);
    return curl_easy_perform(easy);
}

static void test_job_from_urls(void **state)
{
    struct fake_host *fh = load(NULL);
    struct fake_resp r;
    json_t *job;
    json_int_t id;

    (void)state;
    fake_host_set_fetch(fh, serve_files, NULL);
    r = fake_host_call(fh, "POST", API "/jobs",
                       "{\"from_url\":\"http://files/from.mar\",\"to_url\":\"http://files/to.mar\","
                       "\"platform\":\"win64\",\"locale\":\"en-US\",\"channel\":\"beta\","
                       "\"version\":\"2.0b1\"}",
                       CREATE);
    assert_int_equal(r.status, 202);
    id = json_integer_value(json_object_get(r.body, "id"));
    fake_resp_free(&r);
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    if (strcmp(json_string_value(json_object_get(job, "state")), "done") != 0)
        fail_msg("job: %s", json_dumps(job, 0));
    assert_non_null(json_object_get(json_object_get(job, "phases"), "download"));
    json_decref(job);
    check_result(fh, id, &g.to_tree);
    {
        char path[128];
        struct mar *m = NULL;
        snprintf(path, sizeof(path), API "/jobs/%lld/result", (long long)id);
        r = fake_host_call(fh, "GET", path, NULL, NULL);
        assert_int_equal(mar_open_mem(r.raw, r.raw_len, &m, NULL), RD_OK);
        assert_string_equal(mar_channel(m), "beta");
        assert_string_equal(mar_product_version(m), "2.0b1");
        mar_close(m);
        fake_resp_free(&r);
    }

    /* a download that fails: the job fails in the download phase */
    r = fake_host_call(fh, "POST", API "/jobs",
                       "{\"from_url\":\"http://files/missing.mar\",\"to_url\":"
                       "\"http://files/to.mar\",\"platform\":\"win64\",\"locale\":\"en-US\"}",
                       CREATE);
    id = json_integer_value(json_object_get(r.body, "id"));
    fake_resp_free(&r);
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(job, "failed_phase")), "download");
    json_decref(job);
    fake_host_free(fh);
}

/* Counts files below dir whose name has the suffix. */
static int count_suffix(const char *dir, const char *suffix)
{
    char cmd[700];
    FILE *p;
    int n = 0;

    snprintf(cmd, sizeof(cmd), "find '%s' -type f -name '*%s' | wc -l", dir, suffix);
    p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

static void test_cache_on_disk(void **state)
{
    struct fake_host *fh = load("cache_min_size = 1KiB\n");
    char from_id[65], to_id[65], cache[400], cmd[800];
    json_int_t id;
    json_t *job;
    struct fake_resp r;

    (void)state;
    snprintf(cache, sizeof(cache), "%s/partials/cache", fake_host_dir(fh));
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    assert_int_equal(count_suffix(cache, ".mbdiff10+xz"), 4);

    /* damage every cached patch on disk: detected, dropped, regenerated */
    snprintf(cmd, sizeof(cmd),
             "find '%s' -type f -name '*.mbdiff10+xz' -exec sh -c "
             "'printf \"\\375\\067\\172\\130\\132\\000garbage\" > \"$1\"' _ {} \\;",
             cache);
    assert_int_equal(system(cmd), 0);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_int_equal(stat_of(job, "cache_corrupt"), 4);
    assert_int_equal(stat_of(job, "cache_hits"), 0);
    json_decref(job);
    assert_true(fake_host_metric(fh, "cache_corrupt", NULL) == 4);
    check_result(fh, id, &g.to_tree);
    /* regenerated: the next run hits */
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_int_equal(stat_of(job, "cache_hits"), 4);
    json_decref(job);

    /* a file gone from disk is a miss, and the index forgets it */
    snprintf(cmd, sizeof(cmd), "find '%s' -type f -name '*.mbdiff10+xz' -delete", cache);
    assert_int_equal(system(cmd), 0);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_int_equal(stat_of(job, "cache_hits"), 0);
    assert_int_equal(stat_of(job, "cache_misses"), 4);
    json_decref(job);
    r = fake_host_call(fh, "GET", API "/cache", NULL, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.body, "cache"), "entries")), 4);
    fake_resp_free(&r);

    /* a cached patch replaced by a symbolic link is not followed: a miss,
       and the regenerated patch replaces the link */
    snprintf(cmd, sizeof(cmd), "find '%s' -type f -name '*.mbdiff10+xz' -exec ln -sf '%s' {} \\;",
             cache, g.to);
    assert_int_equal(system(cmd), 0);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_int_equal(stat_of(job, "cache_hits"), 0);
    assert_int_equal(stat_of(job, "cache_misses"), 4);
    json_decref(job);
    check_result(fh, id, &g.to_tree);
    assert_int_equal(count_suffix(cache, ".mbdiff10+xz"), 4);
    fake_host_free(fh);
}

static void test_cache_lru_cap_and_threshold(void **state)
{
    struct fake_host *fh;
    char from_id[65], to_id[65], cache[400], tmpfile[500], conf[128];
    struct fake_resp r;
    json_t *c;
    json_int_t id, full;

    (void)state;
    /* measure what the four patches take, then give the cache a byte less:
       the least recently used ones are evicted */
    fh = load("cache_min_size = 1KiB\n");
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    r = fake_host_call(fh, "GET", API "/cache", NULL, NULL);
    full = json_integer_value(json_object_get(json_object_get(r.body, "cache"), "bytes"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.body, "cache"), "entries")), 4);
    fake_resp_free(&r);
    fake_host_free(fh);

    snprintf(conf, sizeof(conf), "cache_min_size = 1KiB\ncache_max_bytes = %lld\n",
             (long long)full - 1);
    fh = load(conf);
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    r = fake_host_call(fh, "GET", API "/cache", NULL, NULL);
    c = json_object_get(r.body, "cache");
    assert_true(json_integer_value(json_object_get(c, "bytes")) <= full - 1);
    assert_true(json_integer_value(json_object_get(c, "evictions")) >= 1);
    assert_true(json_integer_value(json_object_get(c, "entries")) < 4);
    fake_resp_free(&r);
    snprintf(cache, sizeof(cache), "%s/partials/cache", fake_host_dir(fh));
    /* the files follow the index */
    r = fake_host_call(fh, "GET", API "/cache", NULL, NULL);
    assert_int_equal(
        count_suffix(cache, ".mbdiff10+xz"),
        json_integer_value(json_object_get(json_object_get(r.body, "cache"), "entries")));
    fake_resp_free(&r);
    fake_host_free(fh);

    /* a threshold above every file: nothing is cached */
    fh = load("cache_min_size = 100MiB\n");
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    {
        json_t *job = get_job(fh, id);
        assert_int_equal(stat_of(job, "cache_bypassed"), 6);
        assert_int_equal(stat_of(job, "cache_misses"), 0);
        json_decref(job);
    }
    snprintf(cache, sizeof(cache), "%s/partials/cache", fake_host_dir(fh));
    assert_int_equal(count_suffix(cache, ".mbdiff10+xz"), 0);
    /* a half-written file from a crash is discarded at the next start */
    snprintf(tmpfile, sizeof(tmpfile), "%s/ab", cache);
    mkdir(tmpfile, 0755);
    snprintf(tmpfile, sizeof(tmpfile), "%s/ab/.tmp-123456", cache);
    {
        FILE *f = fopen(tmpfile, "w");
        fputs("half", f);
        fclose(f);
    }
    {
        char dir[300];
        struct fake_host *fh2;
        snprintf(dir, sizeof(dir), "%s", fake_host_dir(fh));
        fh2 = fake_host_new_in("partials", "cache_min_size = 100MiB\n", dir);
        assert_int_equal(fake_host_load(fh2, rd_module_entry()), RD_OK);
        assert_int_equal(access(tmpfile, F_OK), -1);
        fake_host_free(fh2);
    }
    fake_host_free(fh);
}

/* ----------------------------------------------------------- signing */

struct signer {
    int calls;
    int rc;
};

static int sign_copy(void *ctx, const char *key, const char *in, const char *out,
                     struct rd_error *err)
{
    struct signer *s = ctx;
    size_t len = 0;
    char *data;
    FILE *f;

    (void)key;
    s->calls++;
    if (s->rc != RD_OK)
        return rd_error_set(err, s->rc, "the test signer refuses");
    data = trees_slurp(in, &len);
    f = fopen(out, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    return RD_OK;
}

static void test_signing_service(void **state)
{
    struct signer s = {0};
    struct partials_signing_v1 vt = {.ctx = &s, .sign_mar = sign_copy};
    struct fake_host *fh = fake_host_new("partials", NULL);
    char from_id[65], to_id[65];
    json_int_t id;
    json_t *job;

    (void)state;
    assert_int_equal(fake_host_provide(fh, PARTIALS_SIGNING_SERVICE, 1, &vt), RD_OK);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_true(json_is_true(json_object_get(json_object_get(job, "result"), "signed")));
    assert_non_null(json_object_get(json_object_get(job, "phases"), "sign"));
    json_decref(job);
    assert_int_equal(s.calls, 1);
    check_result(fh, id, &g.to_tree);

    s.rc = RD_ENOTFOUND;
    id = submit(fh, from_id, to_id, "en-US");
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(job, "failed_phase")), "sign");
    assert_non_null(strstr(json_string_value(json_object_get(job, "error")), "refuses"));
    json_decref(job);
    fake_host_free(fh);
}

/* ---------------------------------------------------- restart, faults */

static void test_resume_after_restart(void **state)
{
    struct fake_host *fh;
    char dir[300], from_id[65], to_id[65];
    const char *tmp = getenv("TMPDIR");
    json_int_t id;
    json_t *job;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/partials-restart-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    fh = fake_host_new_in("partials", NULL, dir);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    assert_int_equal(upload(fh, g.from, CREATE, from_id), 201);
    assert_int_equal(upload(fh, g.to, CREATE, to_id), 201);
    id = submit(fh, from_id, to_id, "en-US");
    /* the daemon stops before the job ran: the row stays queued */
    fake_host_free(fh);

    fh = fake_host_new_in("partials", NULL, dir);
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    assert_true(fake_host_logged(fh, RD_INFO, "resumed"));
    job = get_job(fh, id);
    assert_true(strcmp(json_string_value(json_object_get(job, "state")), "queued") == 0 ||
                strcmp(json_string_value(json_object_get(job, "state")), "running") == 0);
    json_decref(job);
    fake_host_run_pending(fh);
    job = get_job(fh, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    check_result(fh, id, &g.to_tree);
    fake_host_free(fh);
    trees_rmrf(dir);
}

static void test_load_fails_cleanly_on_any_host_failure(void **state)
{
    static const int codes[] = {RD_EIO, RD_ENOMEM};
    (void)state;

    for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
        unsigned n, n_tolerated = 0;

        for (n = 1; n < 200; n++) {
            struct fake_host *fh = fake_host_new("partials", NULL);
            int rc;

            assert_non_null(fh);
            fake_host_fail_call(fh, n, codes[c]);
            rc = fake_host_load(fh, rd_module_entry());
            if (fake_host_calls(fh) < n) {
                assert_int_equal(rc, RD_OK);
                fake_host_free(fh);
                break;
            }
            if (rc == RD_OK) {
                /* the one call whose failure is not an error: looking up
                   the signing service, which may be absent */
                json_t *st = fake_host_status(fh);
                assert_false(json_is_true(json_object_get(st, "signing")));
                json_decref(st);
                if (++n_tolerated > 1)
                    fail_msg("host call %u failed with %d, yet the load succeeded", n, codes[c]);
                fake_host_free(fh);
                continue;
            }
            assert_null(fake_host_mod(fh));
            fake_host_free(fh);
        }
        assert_true(n > 10);
        assert_true(n < 200);
    }
}

static void test_sample_and_bad_config(void **state)
{
    struct fake_host *fh;
    char *sample = NULL, path[512];
    size_t n_keys = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/etc/modules.d/partials.conf", TOP_SRCDIR);
    sample = trees_slurp(path, NULL);
    assert_non_null(sample);
    for (const struct rd_cfg_key *k = rd_module_entry()->keys; k->name; k++) {
        char line[128];
        snprintf(line, sizeof(line), "\n# %s = ", k->name);
        if (!strstr(sample, line))
            fail_msg("%s is not in the sample", k->name);
        n_keys++;
    }
    assert_true(n_keys > 10);
    free(sample);
    fh = fake_host_new("partials", "format = zip\n");
    assert_int_equal(fake_host_load(fh, rd_module_entry()), RD_EINVAL);
    assert_true(fake_host_logged(fh, RD_ERROR, "format must be xz or bz2"));
    fake_host_free(fh);
    fh = fake_host_new("partials", "remote_cache = ftp://x\n");
    assert_int_not_equal(fake_host_load(fh, rd_module_entry()), RD_OK);
    fake_host_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_from_uploads),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_job_from_urls),
        cmocka_unit_test(test_cache_on_disk),
        cmocka_unit_test(test_cache_lru_cap_and_threshold),
        cmocka_unit_test(test_signing_service),
        cmocka_unit_test(test_resume_after_restart),
        cmocka_unit_test(test_load_fails_cleanly_on_any_host_failure),
        cmocka_unit_test(test_sample_and_bad_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
