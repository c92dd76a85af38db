/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_partials.c -- the partials module end to end on the real
 * daemon: upload two complete MARs (two compiled builds, trees.h), run a
 * job, download the partial and apply it to the from tree; a second locale
 * served from the diff cache; jobs from URLs on a loopback HTTP server that
 * also acts as the shared remote cache (PUT/GET), which a second appliance
 * then hits; bad input (corrupt upload 400, unknown id 404, missing scope
 * 403/401, a MAR that is not a complete update gives a failed job); a
 * kill -9 in the middle of a job, after which the job still finishes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/hash/hash.h"
#include "lib/partial/apply.h"
#include "tests/e2e/harness.h"
#include "tests/unit/partial/trees.h"

#define API "/api/v1/partials"

static struct trees_mars g;

/* ------------------------------------------- a loopback file + cache server */

struct srv {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t lock;
    int puts, gets, hits;
    char put_auth[512]; /* the Authorization header of the last PUT */
    char put_sha[80];   /* its x-amz-content-sha256, if any */
    int put_sha_ok;     /* PUTs whose x-amz-content-sha256 is their body's */
    struct {
        char path[256];
        char *data;
        size_t len;
    } objs[64];
    size_t n_objs;
};

static void srv_reply(int c, int status, const char *body, size_t len)
{
    char head[256];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, len);
    if (write(c, head, (size_t)n) < 0 || (len && write(c, body, len) < 0))
        return;
}

/* One request per connection: GET /files/NAME (from g.dir), PUT and GET
   /cache/... (kept in memory). */
static void srv_handle(struct srv *s, int c)
{
    char buf[8192], method[8] = "", path[256] = "";
    size_t got = 0, clen = 0, head_len;
    char *end, *cl, *body;

    for (;;) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            return;
        got += (size_t)n;
        buf[got] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")))
            break;
        if (got == sizeof(buf) - 1)
            return;
    }
    head_len = (size_t)(end + 4 - buf);
    if (sscanf(buf, "%7s %255s", method, path) != 2)
        return;
    cl = strcasestr(buf, "content-length:");
    if (cl && cl < end)
        clen = strtoul(cl + 15, NULL, 10);
    if (strcmp(method, "PUT") == 0) {
        const char *a = strcasestr(buf, "\r\nauthorization: ");
        const char *z = strcasestr(buf, "\r\nx-amz-content-sha256: ");
        pthread_mutex_lock(&s->lock);
        if (a && a < end)
            snprintf(s->put_auth, sizeof(s->put_auth), "%.*s", (int)strcspn(a + 17, "\r"), a + 17);
        if (z && z < end)
            snprintf(s->put_sha, sizeof(s->put_sha), "%.*s", (int)strcspn(z + 24, "\r"), z + 24);
        pthread_mutex_unlock(&s->lock);
        body = malloc(clen + 1);
        memcpy(body, buf + head_len, got - head_len);
        for (size_t off = got - head_len; off < clen;) {
            ssize_t n = read(c, body + off, clen - off);
            if (n <= 0) {
                free(body);
                return;
            }
            off += (size_t)n;
        }
        pthread_mutex_lock(&s->lock);
        s->puts++;
        {
            uint8_t d[32];
            char hex[65];
            hash_buf(HASH_SHA256, body, clen, d, NULL);
            hash_hex(d, 32, hex);
            s->put_sha_ok += strcmp(hex, s->put_sha) == 0;
        }
        if (s->n_objs < 64) {
            snprintf(s->objs[s->n_objs].path, sizeof(s->objs[0].path), "%s", path);
            s->objs[s->n_objs].data = body;
            s->objs[s->n_objs].len = clen;
            s->n_objs++;
            body = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        free(body);
        srv_reply(c, 201, "", 0);
        return;
    }
    if (strncmp(path, "/files/", 7) == 0 && !strstr(path, "..")) {
        char file[600];
        size_t len = 0;
        char *data;
        snprintf(file, sizeof(file), "%s/%s", g.dir, path + 7);
        data = trees_slurp(file, &len);
        if (data)
            srv_reply(c, 200, data, len);
        else
            srv_reply(c, 404, "", 0);
        free(data);
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->gets++;
    for (size_t i = 0; i < s->n_objs; i++)
        if (strcmp(s->objs[i].path, path) == 0) {
            s->hits++;
            srv_reply(c, 200, s->objs[i].data, s->objs[i].len);
            pthread_mutex_unlock(&s->lock);
            return;
        }
    pthread_mutex_unlock(&s->lock);
    srv_reply(c, 404, "", 0);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;

    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        srv_handle(s, c);
        close(c);
    }
    return NULL;
}

static struct srv *srv_start(void)
{
    struct srv *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);

    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
        return NULL;
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, srv_main, s);
    return s;
}

static void srv_stop(struct srv *s)
{
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->n_objs; i++)
        free(s->objs[i].data);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------ helpers */

static int group_setup(void **state)
{
    (void)state;
    return trees_mars_make(&g, "e2e-partials");
}

static int group_teardown(void **state)
{
    (void)state;
    trees_mars_free(&g);
    return 0;
}

static const char *const cache_env[] = {"RELENGD_PARTIALS_CACHE_MIN_SIZE=1KiB", NULL};
static const struct e2e_opts opts = {.modules = "partials", .env = cache_env};

static int upload(struct e2e_daemon *d, const char *token, const char *path, char *id)
{
    size_t len = 0;
    char *data = trees_slurp(path, &len);
    const char *const headers[] = {"Content-Type: application/octet-stream", NULL};
    struct e2e_resp r;
    int status;

    assert_non_null(data);
    status = e2e_request(d, "POST", API "/uploads", token, headers, data, len, &r);
    if (status < 0)
        fprintf(stderr, "upload: %s\n", r.error);
    if (status == 201 && id)
        snprintf(id, 65, "%s", e2e_json_str(&r, "id"));
    e2e_resp_free(&r);
    free(data);
    return status;
}

static long long submit(struct e2e_daemon *d, const char *token, const char *body)
{
    struct e2e_resp r;
    long long id;

    if (e2e_post(d, API "/jobs", token, body, &r) != 202)
        fail_msg("POST /jobs: %d %s", r.status, r.body);
    id = (long long)json_integer_value(json_object_get(r.json, "id"));
    e2e_resp_free(&r);
    return id;
}

/* Submits a linux64 job from two uploads; extra is more JSON members
   (",\"k\":v") or "". */
static long long submit_uploads(struct e2e_daemon *d, const char *token, const char *from_id,
                                const char *to_id, const char *locale, const char *extra)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"from_upload\":\"%s\",\"to_upload\":\"%s\",\"platform\":\"linux64\","
             "\"locale\":\"%s\"%s}",
             from_id, to_id, locale, extra);
    return submit(d, token, body);
}

/* Submits an en-US job whose MARs the loopback server on port serves
   (GET /files/NAME). */
static long long submit_urls(struct e2e_daemon *d, const char *token, int port,
                             const char *from_name, const char *platform)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"from_url\":\"http://127.0.0.1:%d/files/%s\",\"to_url\":"
             "\"http://127.0.0.1:%d/files/to.mar\",\"platform\":\"%s\",\"locale\":\"en-US\"}",
             port, from_name, port, platform);
    return submit(d, token, body);
}

/* Polls the job (bounded) until it is done or failed; a new reference. */
static json_t *wait_job(struct e2e_daemon *d, long long id)
{
    char path[128];
    uint64_t deadline = e2e_now_ms() + 60000;

    snprintf(path, sizeof(path), API "/jobs/%lld", id);
    while (e2e_now_ms() < deadline) {
        struct e2e_resp r;
        const char *state;
        json_t *job;

        assert_int_equal(e2e_get(d, path, d->admin_token, &r), 200);
        state = json_string_value(json_object_get(r.json, "state"));
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0) {
            job = json_incref(r.json);
            e2e_resp_free(&r);
            return job;
        }
        e2e_resp_free(&r);
        e2e_sleep_ms(50);
    }
    fail_msg("job %lld did not finish in 60 s", id);
    return NULL;
}

static long long stat_of(const json_t *job, const char *key)
{
    return (long long)json_integer_value(json_object_get(json_object_get(job, "stats"), key));
}

/* Downloads the result of job id and applies it to the from tree. */
static void check_result(struct e2e_daemon *d, long long id)
{
    char path[128], dir[400], file[600];
    struct e2e_resp r;
    struct mar *pm = NULL, *from = NULL;
    struct rd_error err = {0};

    snprintf(path, sizeof(path), API "/jobs/%lld/result", id);
    assert_int_equal(e2e_get(d, path, d->admin_token, &r), 200);
    assert_int_equal(mar_open_mem(r.body, r.body_len, &pm, &err), RD_OK);
    snprintf(dir, sizeof(dir), "%s/apply-%lld-XXXXXX", g.dir, id);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mar_open(g.from, &from, &err), RD_OK);
    assert_int_equal(mar_extract_all(from, dir, 0, &err), RD_OK);
    if (partial_apply_dir(pm, dir, 0, NULL, &err) != RD_OK)
        fail_msg("apply: %s", err.msg);
    for (size_t i = 0; i < g.to_tree.n; i++) {
        const struct tree_file *tf = &g.to_tree.files[i];
        size_t len = 0;
        char *got;

        if (strcmp(tf->name, "update-settings.ini") == 0)
            continue; /* add-if-not keeps the installed copy */
        snprintf(file, sizeof(file), "%s/%s", dir, tf->name);
        got = trees_slurp(file, &len);
        if (!got || len != tf->len || memcmp(got, tf->data, len) != 0)
            fail_msg("%s differs after applying the downloaded partial", tf->name);
        free(got);
    }
    trees_rmrf(dir);
    mar_close(from);
    mar_close(pm);
    e2e_resp_free(&r);
}

static void make_token(struct e2e_daemon *d, const char *scopes, char *token)
{
    assert_int_equal(e2e_token_create(d, "partials-test", scopes, NULL, token, NULL), 0);
}

/* ------------------------------------------------------------- tests */

static void test_upload_job_download(void **state)
{
    struct e2e_daemon *d = *state;
    char token[64], from_id[65], to_id[65], de_id[65];
    long long id, id2;
    json_t *job, *events;

    make_token(d, "[\"partials:create\"]", token);
    assert_int_equal(upload(d, token, g.from, from_id), 201);
    assert_int_equal(upload(d, token, g.to, to_id), 201);
    assert_int_equal(upload(d, token, g.to_de, de_id), 201);
    id = submit_uploads(d, token, from_id, to_id, "en-US", ",\"update_number\":1");
    job = wait_job(d, id);
    if (strcmp(json_string_value(json_object_get(job, "state")), "done") != 0)
        fail_msg("job failed: %s", json_string_value(json_object_get(job, "error")));
    assert_int_equal(stat_of(job, "cache_misses"), 4);
    assert_true(stat_of(job, "patched") >= 3);
    json_decref(job);
    check_result(d, id);

    /* the second locale diffs nothing it shares with the first */
    id2 = submit_uploads(d, token, from_id, de_id, "de", "");
    job = wait_job(d, id2);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_int_equal(stat_of(job, "cache_hits"), 4);
    assert_int_equal(stat_of(job, "cache_misses"), 0);
    json_decref(job);

    events = e2e_sse_collect(d, "/api/v1/events?type=partials", d->admin_token, "0", 2, 10000);
    assert_int_equal(json_array_size(json_object_get(events, "events")), 2);
    for (size_t i = 0; i < 2; i++) {
        const json_t *ev = json_array_get(json_object_get(events, "events"), i);
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (!type || strcmp(type, "partials.job.done") != 0)
            fail_msg("event %zu: %s", i, json_dumps(ev, 0));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "id")),
                         i == 0 ? id : id2);
    }
    json_decref(events);
    assert_true(e2e_metric(d, "relengd_partials_jobs_total{result=\"done\"}") == 2.0);
    assert_true(e2e_metric(d, "relengd_partials_cache_hits_total") == 4.0);
    assert_true(e2e_metric(d, "relengd_partials_phase_seconds_count{phase=\"diff\","
                              "locale=\"de\"}") == 1.0);
    e2e_pass(d);
}

static void test_bad_input(void **state)
{
    struct e2e_daemon *d = *state;
    char token[64], reader[64], from_id[65], bad_id[65], body[512];
    const char *const headers[] = {"Content-Type: application/octet-stream", NULL};
    struct e2e_resp r;
    long long id;
    json_t *job;

    make_token(d, "[\"partials:create\"]", token);
    make_token(d, "[\"example:write\"]", reader);
    /* corrupt upload */
    assert_int_equal(e2e_request(d, "POST", API "/uploads", token, headers, "MAR1nonsense", 12, &r),
                     400);
    assert_string_equal(e2e_error_code(&r), "corrupt_mar");
    e2e_resp_free(&r);
    /* scopes */
    assert_int_equal(upload(d, reader, g.from, NULL), 403);
    assert_int_equal(upload(d, NULL, g.from, NULL), 401);
    assert_int_equal(e2e_post(d, API "/jobs", reader, "{}", &r), 403);
    assert_string_equal(e2e_error_code(&r), "insufficient_scope");
    e2e_resp_free(&r);
    /* unknown ids */
    assert_int_equal(e2e_get(d, API "/jobs/12345", NULL, &r), 404);
    assert_string_equal(e2e_error_code(&r), "unknown_job");
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, API "/jobs/12345/result", NULL, &r), 404);
    e2e_resp_free(&r);
    /* a bad body */
    assert_int_equal(e2e_post(d, API "/jobs", token, "{\"platform\":\"x y\"}", &r), 400);
    assert_non_null(strstr(e2e_error_message(&r), "from:"));
    e2e_resp_free(&r);
    /* a valid MAR that is not a complete update: a failed job, a clear error */
    assert_int_equal(upload(d, token, g.from, from_id), 201);
    assert_int_equal(upload(d, token, g.noprecomplete, bad_id), 201);
    id = submit_uploads(d, token, from_id, bad_id, "en-US", "");
    job = wait_job(d, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(job, "error")), "precomplete"));
    json_decref(job);
    snprintf(body, sizeof(body), API "/jobs/%lld/result", id);
    assert_int_equal(e2e_get(d, body, NULL, &r), 409);
    e2e_resp_free(&r);
    assert_true(e2e_metric(d, "relengd_partials_jobs_total{result=\"failed\"}") == 1.0);

    /* every route is in the OpenAPI document with its scope */
    {
        static const struct {
            const char *method, *path, *scope;
        } routes[] = {
            {"post", "/uploads", "partials:create"},
            {"post", "/jobs", "partials:create"},
            {"get", "/jobs", NULL},
            {"get", "/jobs/{id}", NULL},
            {"get", "/jobs/{id}/result", NULL},
            {"get", "/cache", NULL},
        };
        json_t *paths;
        assert_int_equal(e2e_get(d, "/api/v1/openapi.json", NULL, &r), 200);
        paths = json_object_get(r.json, "paths");
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
            char full[128];
            const json_t *op, *scope;
            snprintf(full, sizeof(full), "/api/v1/partials%s", routes[i].path);
            op = json_object_get(json_object_get(paths, full), routes[i].method);
            if (!op)
                fail_msg("%s %s is not documented", routes[i].method, full);
            scope = json_object_get(op, "x-scope");
            if (routes[i].scope ? !json_is_string(scope) ||
                                      strcmp(json_string_value(scope), routes[i].scope) != 0
                                : !json_is_null(scope))
                fail_msg("%s %s: wrong x-scope", routes[i].method, full);
        }
        e2e_resp_free(&r);
    }
    e2e_pass(d);
}

static void test_urls_and_remote_cache(void **state)
{
    struct e2e_daemon *d = NULL, *d2 = NULL;
    struct srv *s = srv_start();
    char env_remote[128], token[64];
    const char *env[] = {"RELENGD_PARTIALS_CACHE_MIN_SIZE=1KiB", env_remote, NULL};
    struct e2e_opts o = {.modules = "partials", .env = env};
    long long id;
    json_t *job;

    (void)state;
    assert_non_null(s);
    snprintf(env_remote, sizeof(env_remote),
             "RELENGD_PARTIALS_REMOTE_CACHE=http://127.0.0.1:%d/cache/", s->port);

    d = e2e_start(&o);
    assert_non_null(d);
    make_token(d, "[\"partials:*\"]", token);
    id = submit_urls(d, token, s->port, "from.mar", "win64");
    job = wait_job(d, id);
    if (strcmp(json_string_value(json_object_get(job, "state")), "done") != 0)
        fail_msg("job failed: %s", json_string_value(json_object_get(job, "error")));
    assert_non_null(json_object_get(json_object_get(job, "phases"), "download"));
    assert_int_equal(stat_of(job, "cache_misses"), 4);
    json_decref(job);
    check_result(d, id);
    assert_int_equal(s->puts, 4); /* every new patch went to the shared cache */
    e2e_pass(d);
    assert_int_equal(e2e_stop(d), 0);

    /* another appliance, empty local cache: the shared cache serves */
    d2 = e2e_start(&o);
    assert_non_null(d2);
    make_token(d2, "[\"partials:create\"]", token);
    id = submit_urls(d2, token, s->port, "from.mar", "win64");
    job = wait_job(d2, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    assert_int_equal(stat_of(job, "remote_hits"), 4);
    assert_int_equal(stat_of(job, "cache_hits"), 4);
    json_decref(job);
    check_result(d2, id);
    assert_int_equal(s->hits, 4);

    /* a URL that 404s fails the job in the download phase */
    id = submit_urls(d2, token, s->port, "nope.mar", "win64");
    job = wait_job(d2, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(job, "failed_phase")), "download");
    assert_non_null(strstr(json_string_value(json_object_get(job, "error")), "404"));
    json_decref(job);
    e2e_pass(d2);
    assert_int_equal(e2e_stop(d2), 0);
    e2e_free(d2);
    e2e_free(d);
    srv_stop(s);
}

static void test_kill9_mid_job(void **state)
{
    struct e2e_daemon *d = *state;
    char token[64], from_id[65], to_id[65];
    long long id;
    json_t *job;

    make_token(d, "[\"partials:create\"]", token);
    assert_int_equal(upload(d, token, g.from, from_id), 201);
    assert_int_equal(upload(d, token, g.to, to_id), 201);
    id = submit_uploads(d, token, from_id, to_id, "en-US", "");
    /* wherever the job was, after a restart it ends done */
    e2e_kill9(d);
    assert_int_equal(e2e_launch(d), 0);
    job = wait_job(d, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    check_result(d, id);
    e2e_pass(d);
}

/* Several jobs at once on the real pool, sharing files: every one ends
   done with a partial that applies, whatever order the cache fills in. */
static void test_concurrent_jobs(void **state)
{
    struct e2e_daemon *d = *state;
    char token[64], from_id[65], to_id[65], de_id[65];
    long long ids[4];
    struct e2e_resp r;

    make_token(d, "[\"partials:create\"]", token);
    assert_int_equal(upload(d, token, g.from, from_id), 201);
    assert_int_equal(upload(d, token, g.to, to_id), 201);
    assert_int_equal(upload(d, token, g.to_de, de_id), 201);
    for (int i = 0; i < 4; i++) {
        char locale[8];

        snprintf(locale, sizeof(locale), "l%d", i);
        ids[i] = submit_uploads(d, token, from_id, i % 2 ? de_id : to_id, locale, "");
    }
    for (int i = 0; i < 4; i++) {
        json_t *job = wait_job(d, ids[i]);
        if (strcmp(json_string_value(json_object_get(job, "state")), "done") != 0)
            fail_msg("job %lld: %s", ids[i], json_string_value(json_object_get(job, "error")));
        json_decref(job);
        if (i % 2 == 0)
            check_result(d, ids[i]);
    }
    assert_int_equal(e2e_get(d, API "/cache", NULL, &r), 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "cache"), "entries")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "totals"), "done")),
                     4);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* remote_kind = s3: every request is signed with AWS SigV4 by libcurl
   (the loopback server checks the header's form, not the signature). */
static void test_remote_cache_s3_sigv4(void **state)
{
    struct e2e_daemon *d;
    struct srv *s = srv_start();
    char env_remote[128], token[64];
    const char *env[] = {"RELENGD_PARTIALS_CACHE_MIN_SIZE=1KiB",
                         env_remote,
                         "RELENGD_PARTIALS_REMOTE_KIND=s3",
                         "RELENGD_PARTIALS_S3_REGION=eu-west-3",
                         "RELENGD_PARTIALS_S3_ACCESS_KEY=AKIDEXAMPLE",
                         "RELENGD_PARTIALS_S3_SECRET_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         NULL};
    struct e2e_opts o = {.modules = "partials", .env = env};
    long long id;
    json_t *job;

    (void)state;
    assert_non_null(s);
    snprintf(env_remote, sizeof(env_remote),
             "RELENGD_PARTIALS_REMOTE_CACHE=http://127.0.0.1:%d/bucket", s->port);
    d = e2e_start(&o);
    assert_non_null(d);
    make_token(d, "[\"partials:create\"]", token);
    id = submit_urls(d, token, s->port, "from.mar", "mac");
    job = wait_job(d, id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    assert_int_equal(s->puts, 4);
    if (strncmp(s->put_auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) != 0 ||
        !strstr(s->put_auth, "/eu-west-3/s3/aws4_request") || !strstr(s->put_auth, "Signature="))
        fail_msg("not a SigV4 Authorization header: %s", s->put_auth);
    /* the payload's SHA-256, as S3 wants, and signed */
    assert_int_equal(s->put_sha_ok, 4);
    assert_non_null(strstr(s->put_auth, "x-amz-content-sha256"));
    e2e_pass(d);
    assert_int_equal(e2e_stop(d), 0);
    e2e_free(d);
    srv_stop(s);
}

/* relengctl partials submit (uploading local files), list and show. */
static void test_relengctl(void **state)
{
    struct e2e_daemon *d = *state;
    char tool[512], url[160], tok[96], out[400];
    const char *env[] = {url, tok, NULL};
    struct e2e_exec x;
    struct mar *m = NULL;

    snprintf(tool, sizeof(tool), "%s/cli/relengctl", e2e_builddir());
    snprintf(url, sizeof(url), "RELENGD_URL=%s", d->base_url);
    snprintf(tok, sizeof(tok), "RELENGD_TOKEN=%s", d->admin_token);
    snprintf(out, sizeof(out), "%s/ctl-partial.mar", g.dir);
    {
        const char *argv[] = {tool,   "partials", "submit",     "--from",  g.from,
                              "--to", g.to,       "--platform", "linux64", "--locale",
                              "fr",   "--output", out,          NULL};
        if (e2e_exec(argv, env, NULL, 60000, &x) != 0)
            fail_msg("relengctl submit: %d %s %s", x.status, x.out, x.err);
        assert_non_null(strstr(x.out, ": done"));
        assert_non_null(strstr(x.out, "patched"));
        e2e_exec_free(&x);
    }
    assert_int_equal(mar_open(out, &m, NULL), RD_OK);
    assert_non_null(mar_find(m, "updatev3.manifest"));
    mar_close(m);
    {
        const char *argv[] = {tool, "partials", "list", "--state", "done", NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 20000, &x), 0);
        assert_non_null(strstr(x.out, "linux64"));
        assert_non_null(strstr(x.out, "fr"));
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {tool, "partials", "show", "1", "--json", NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 20000, &x), 0);
        assert_non_null(strstr(x.out, "\"state\": \"done\""));
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {tool, "partials", "show", "77", NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 20000, &x), 1);
        assert_non_null(strstr(x.err, "no job 77"));
        e2e_exec_free(&x);
    }
    {
        const char *argv[] = {tool, "partials", "submit", "--from", g.from, NULL};
        assert_int_equal(e2e_exec(argv, env, NULL, 20000, &x), 2);
        e2e_exec_free(&x);
    }
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_upload_job_download, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_bad_input, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_concurrent_jobs, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
        cmocka_unit_test(test_urls_and_remote_cache),
        cmocka_unit_test(test_remote_cache_s3_sigv4),
        cmocka_unit_test_prestate_setup_teardown(test_relengctl, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_kill9_mid_job, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
    };
    return cmocka_run_group_tests_name("e2e partials", tests, group_setup, group_teardown);
}
