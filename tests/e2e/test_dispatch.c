/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_dispatch.c -- the dispatch module end to end on its own
 * (direct runs through POST /enqueue, no graph), with real relengd-worker
 * processes: a task's log (several chunks) and artifact arrive intact;
 * priority then FIFO order across branches; the warm worker gets the
 * task; log chunk retry, overlap and gap; artifact hash mismatch and path
 * traversal refused; manual and automatic quarantine; an external status
 * report; a lease that expires; a worker's SIGTERM reports worker-shutdown;
 * the routes are in the OpenAPI document.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hash/hash.h"
#include "tests/e2e/dispatch_util.h"
#include "tests/e2e/harness.h"

#define API "/api/v1/dispatch"

static const char *const daemon_env[] = {
    "RELENGD_DISPATCH_LEASE=2s",
    "RELENGD_DISPATCH_QUARANTINE_AFTER=2",
    "RELENGD_DISPATCH_HOLD_MAX=10s",
    NULL,
};
static const struct e2e_opts opts = {.modules = "dispatch", .env = daemon_env};
static const char *const long_lease_env[] = {"RELENGD_DISPATCH_LEASE=5m", NULL};
static const struct e2e_opts opts_long_lease = {.modules = "dispatch", .env = long_lease_env};

static void enqueue(struct e2e_daemon *d, const char *task_id, const char *type, const char *label,
                    const char *branch, int priority, const char *payload)
{
    char body[2048];
    json_t *j;

    snprintf(body, sizeof(body),
             "{\"taskId\":\"%s\",\"workerType\":\"%s\",\"label\":\"%s\",\"branch\":\"%s\","
             "\"priority\":%d,\"payload\":%s}",
             task_id, type, label, branch, priority, payload);
    j = dx_post(d, API "/enqueue", body, 201);
    json_decref(j);
}

static json_t *wait_resolved(struct e2e_daemon *d, const char *task_id, uint32_t run_id)
{
    char path[200];
    json_t *j;

    snprintf(path, sizeof(path), API "/runs/%s/%u", task_id, run_id);
    j = dx_wait_str(d, path, "state", "resolved", 20000);
    assert_non_null(j);
    return j;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[HASH_MAX_LEN];

    assert_int_equal(hash_buf(HASH_SHA256, data, len, md, NULL), RD_OK);
    hash_hex(md, hash_len(HASH_SHA256), out);
}

/* --------------------------------------------------------------- tests */

static void test_worker_runs_task_with_log_and_artifact(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    struct e2e_resp r;
    json_t *run;
    char *want = NULL, sha[65];
    size_t len = 0, cap = 400000;

    /* ~190 KB of output: several chunks (64 KiB or 100 ms each) */
    enqueue(d, "t-log", "linux", "build", "main", 0,
            "{\"command\":\"seq 1 32000; echo artifact > out.txt\","
            "\"artifacts\":[{\"name\":\"out.txt\",\"path\":\"out.txt\"}]}");
    dw_start(&w, d, NULL, "linux", "w-log", 1, NULL);
    run = wait_resolved(d, "t-log", 0);
    assert_string_equal(json_string_value(json_object_get(run, "result")), "completed");
    assert_int_equal(json_integer_value(json_object_get(run, "exitCode")), 0);
    assert_string_equal(json_string_value(json_object_get(run, "workerId")), "w-log");
    json_decref(run);
    want = malloc(cap);
    assert_non_null(want);
    for (int i = 1; i <= 32000; i++)
        len += (size_t)snprintf(want + len, cap - len, "%d\n", i);
    assert_int_equal(e2e_get(d, API "/runs/t-log/0/log", NULL, &r), 200);
    /* the worker's own lines frame the command's output */
    assert_non_null(strstr(r.body, "[relengd-worker] running t-log/0"));
    assert_non_null(strstr(r.body, "[relengd-worker] artifact out.txt: 9 bytes uploaded"));
    {
        const char *start = strstr(r.body, "\n1\n");
        assert_non_null(start);
        assert_memory_equal(start + 1, want, len);
    }
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, API "/runs/t-log/0/artifacts/out.txt", NULL, &r), 200);
    assert_string_equal(r.body, "artifact\n");
    sha256_hex(r.body, r.body_len, sha);
    e2e_resp_free(&r);
    run = dx_get(d, API "/runs/t-log/0/artifacts", 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(run, "artifacts"), 0), "sha256")),
                        sha);
    json_decref(run);
    assert_int_equal(dw_stop(&w, 10000), 0);
    free(want);
    e2e_pass(d);
}

/* The cache directory of a label survives between tasks (the warm object
   directory) while the task directory is fresh each time; maxRunTime
   stops a command and fails the task; a bad payload is an exception. */
static void test_worker_cache_max_run_time_and_bad_payload(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    json_t *run;

    enqueue(d, "c-1", "linux", "compile", "main", 0,
            "{\"command\":\"touch $RELENGD_CACHE_DIR/objects && touch leftover\"}");
    enqueue(d, "c-2", "linux", "compile", "main", 0,
            "{\"command\":\"test -f $RELENGD_CACHE_DIR/objects && test ! -e leftover\"}");
    enqueue(d, "c-3", "linux", "slow", "main", 0,
            "{\"command\":[\"sleep\",\"30\"],\"maxRunTime\":1}");
    enqueue(d, "c-4", "linux", "odd", "main", 0, "{\"command\":\"true\",\"maxRunTime\":\"x\"}");
    dw_start(&w, d, NULL, "linux", "w-cache", 1, NULL);
    run = wait_resolved(d, "c-2", 0);
    assert_string_equal(json_string_value(json_object_get(run, "result")), "completed");
    json_decref(run);
    run = wait_resolved(d, "c-3", 0);
    assert_string_equal(json_string_value(json_object_get(run, "result")), "failed");
    json_decref(run);
    run = wait_resolved(d, "c-4", 0);
    assert_string_equal(json_string_value(json_object_get(run, "reason")), "malformed-payload");
    json_decref(run);
    assert_int_equal(dw_stop(&w, 10000), 0);
    e2e_pass(d);
}

static int cmp_claimed(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    json_int_t p = json_integer_value(json_object_get(x, "claimedAt"));
    json_int_t q = json_integer_value(json_object_get(y, "claimedAt"));
    return p < q ? -1 : p > q;
}

static void test_priority_then_fifo_across_branches(void **state)
{
    struct e2e_daemon *d = *state;
    static const char *const order[] = {"f-9-urgent", "f-1", "f-2", "f-3", "f-4", "f-5"};
    static const char *const branches[] = {"main", "beta", "try", "main", "beta"};
    struct dworker w;
    json_t *runs, *sorted[6];
    char id[32];

    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "f-%d", i + 1);
        enqueue(d, id, "linux", id, branches[i], 0, "{\"command\":\"true\"}");
        e2e_sleep_ms(3); /* distinct pending times */
    }
    enqueue(d, "f-9-urgent", "linux", "urgent", "try", 5, "{\"command\":\"true\"}");
    dw_start(&w, d, NULL, "linux", "w-fifo", 1, NULL);
    for (int i = 0; i < 6; i++)
        json_decref(wait_resolved(d, order[i], 0));
    runs = dx_get(d, API "/runs?state=resolved&workerType=linux", 200);
    assert_int_equal(json_array_size(json_object_get(runs, "runs")), 6);
    for (int i = 0; i < 6; i++)
        sorted[i] = json_array_get(json_object_get(runs, "runs"), (size_t)i);
    qsort(sorted, 6, sizeof(sorted[0]), cmp_claimed);
    for (int i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_object_get(sorted[i], "taskId")), order[i]);
    json_decref(runs);
    assert_int_equal(dw_stop(&w, 10000), 0);
    e2e_pass(d);
}

static void test_warm_worker_preferred(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker a, b;
    json_t *run;
    char id[32];

    /* a runs "compile" on main first: its object directory is warm */
    enqueue(d, "warm-0", "linux", "compile", "main", 0, "{\"command\":\"true\"}");
    dw_start(&a, d, NULL, "linux", "w-a", 1, NULL);
    json_decref(wait_resolved(d, "warm-0", 0));
    dw_start(&b, d, NULL, "linux", "w-b", 1, NULL);
    /* four times: with both waiting, the same label and branch goes to a */
    for (int i = 1; i <= 4; i++) {
        assert_true(dx_wait_waiting(d, "w-a", 10000));
        assert_true(dx_wait_waiting(d, "w-b", 10000));
        snprintf(id, sizeof(id), "warm-%d", i);
        enqueue(d, id, "linux", "compile", "main", 0, "{\"command\":\"true\"}");
        run = wait_resolved(d, id, 0);
        assert_string_equal(json_string_value(json_object_get(run, "workerId")), "w-a");
        json_decref(run);
    }
    run = dx_get(d, API "/workers/w-a", 200);
    assert_string_equal(json_string_value(json_object_get(run, "lastLabel")), "compile");
    assert_string_equal(json_string_value(json_object_get(run, "lastBranch")), "main");
    json_decref(run);
    assert_int_equal(dw_stop(&a, 10000), 0);
    assert_int_equal(dw_stop(&b, 10000), 0);
    e2e_pass(d);
}

static json_t *claim_as(struct e2e_daemon *d, const char *worker, const char *type)
{
    char body[200];

    snprintf(body, sizeof(body),
             "{\"workerId\":\"%s\",\"workerType\":\"%s\",\"capacity\":1,\"wait\":0}", worker, type);
    return dx_post(d, API "/claim", body, 200);
}

/* POST bytes to run's log at offset ("x" as offset sends a malformed one). */
static int post_log(struct e2e_daemon *d, const char *run, const char *offset, const char *bytes,
                    struct e2e_resp *r)
{
    char path[200];
    snprintf(path, sizeof(path), API "/runs/%s/log?offset=%s", run, offset);
    return e2e_request(d, "POST", path, d->admin_token, NULL, bytes, strlen(bytes), r);
}

static void test_log_chunk_retry_and_gap(void **state)
{
    struct e2e_daemon *d = *state;
    const char *fmt = "chunky/0";
    struct e2e_resp r;
    json_t *c;

    enqueue(d, "chunky", "manual", "logs", "main", 0, "{}");
    c = claim_as(d, "hand", "manual");
    assert_int_equal(json_array_size(json_object_get(c, "tasks")), 1);
    json_decref(c);
    assert_int_equal(post_log(d, fmt, "0", "first ", &r), 200);
    e2e_resp_free(&r);
    /* the same chunk again (the worker never saw our answer) */
    assert_int_equal(post_log(d, fmt, "0", "first ", &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "offset")), 6);
    e2e_resp_free(&r);
    /* a chunk past the end: 416 and where to resend from */
    assert_int_equal(post_log(d, fmt, "50", "later", &r), 416);
    assert_string_equal(e2e_error_code(&r), "log_gap");
    assert_string_equal(e2e_header(&r, "X-Log-Offset"), "6");
    assert_int_equal(json_integer_value(json_object_get(r.json, "offset")), 6);
    e2e_resp_free(&r);
    /* overlapping resend */
    assert_int_equal(post_log(d, fmt, "0", "first second", &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "offset")), 12);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, API "/runs/chunky/0/log", NULL, &r), 200);
    assert_string_equal(r.body, "first second");
    e2e_resp_free(&r);
    /* a tail by offset */
    assert_int_equal(e2e_get(d, API "/runs/chunky/0/log?offset=6&wait=0", NULL, &r), 200);
    assert_string_equal(r.body, "second");
    assert_string_equal(e2e_header(&r, "X-Log-Complete"), "0");
    e2e_resp_free(&r);
    assert_int_equal(post_log(d, fmt, "x0", "x", &r), 400);
    e2e_resp_free(&r);
    c = dx_post(d, API "/runs/chunky/0/report", "{\"state\":\"completed\",\"exitCode\":0}", 200);
    json_decref(c);
    assert_int_equal(post_log(d, fmt, "12", "too late", &r), 409);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, API "/runs/chunky/0/log?offset=0", NULL, &r), 200);
    assert_string_equal(r.body, "first second");
    assert_string_equal(e2e_header(&r, "X-Log-Complete"), "1");
    e2e_resp_free(&r);
    e2e_pass(d);
}

static int put_artifact(struct e2e_daemon *d, const char *name, const char *data, const char *sha,
                        struct e2e_resp *r)
{
    char path[300], hdr[120];
    const char *headers[] = {hdr, NULL};

    snprintf(path, sizeof(path), API "/runs/arty/0/artifacts/%s", name);
    snprintf(hdr, sizeof(hdr), "X-Content-SHA256: %s", sha);
    return e2e_request(d, "PUT", path, d->admin_token, headers, data, strlen(data), r);
}

static void test_artifact_hash_mismatch_and_traversal(void **state)
{
    struct e2e_daemon *d = *state;
    static const char *const evil[] = {"..%2F..%2Fescaped", "%2E%2E", ".hidden", "a%5Cb",
                                       "..%2Fdispatch.db",  NULL};
    struct e2e_resp r;
    char sha[65], other[65], path[600];
    json_t *c;

    enqueue(d, "arty", "manual", "arts", "main", 0, "{}");
    c = claim_as(d, "hand2", "manual");
    json_decref(c);
    sha256_hex("the bytes", 9, sha);
    sha256_hex("other bytes", 11, other);
    assert_int_equal(put_artifact(d, "out.bin", "the bytes", other, &r), 400);
    assert_string_equal(e2e_error_code(&r), "hash_mismatch");
    e2e_resp_free(&r);
    c = dx_get(d, API "/runs/arty/0/artifacts", 200);
    assert_int_equal(json_array_size(json_object_get(c, "artifacts")), 0);
    json_decref(c);
    for (int i = 0; evil[i]; i++) {
        int status = put_artifact(d, evil[i], "the bytes", sha, &r);
        if (status != 400)
            fprintf(stderr, "%s -> %d %s\n", evil[i], status, r.body);
        assert_int_equal(status, 400);
        e2e_resp_free(&r);
    }
    snprintf(path, sizeof(path), "%s/state/escaped", d->dir);
    assert_null(e2e_read_file(path, NULL));
    snprintf(path, sizeof(path), "%s/state/dispatch/escaped", d->dir);
    assert_null(e2e_read_file(path, NULL));
    /* nothing but the good one ever lands in the run's directory */
    assert_int_equal(put_artifact(d, "out.bin", "the bytes", sha, &r), 201);
    e2e_resp_free(&r);
    c = dx_get(d, API "/runs/arty/0/artifacts", 200);
    assert_int_equal(json_array_size(json_object_get(c, "artifacts")), 1);
    json_decref(c);
    e2e_pass(d);
}

static void test_quarantine_manual_and_automatic(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    json_t *j;

    /* manual: a registered worker's claims return nothing */
    j = claim_as(d, "q-hand", "qtype");
    json_decref(j);
    enqueue(d, "q-1", "qtype", "q", "main", 0, "{\"command\":\"true\"}");
    j = dx_post(d, API "/workers/q-hand/quarantine", "{\"reason\":\"bad disk\"}", 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "quarantine"), "reason")), "bad disk");
    json_decref(j);
    j = claim_as(d, "q-hand", "qtype");
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 0);
    assert_true(json_is_true(json_object_get(j, "quarantined")));
    json_decref(j);
    j = dx_get(d, API "/runs/q-1/0", 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "pending");
    json_decref(j);
    j = dx_get(d, "/api/v1/events?type=dispatch.quarantined", 200);
    json_decref(j);
    {
        struct e2e_resp r;
        assert_int_equal(e2e_delete(d, API "/workers/q-hand/quarantine", d->admin_token, &r), 200);
        e2e_resp_free(&r);
    }
    j = claim_as(d, "q-hand", "qtype");
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 1);
    json_decref(j);

    /* automatic: two exceptions in a row (malformed payloads) */
    enqueue(d, "q-bad-1", "qbad", "bad", "main", 0, "{\"command\":5}");
    enqueue(d, "q-bad-2", "qbad", "bad", "main", 0, "{\"command\":[]}");
    dw_start(&w, d, NULL, "qbad", "w-flaky", 1, NULL);
    j = wait_resolved(d, "q-bad-2", 0);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "malformed-payload");
    json_decref(j);
    j = dx_get(d, API "/workers/w-flaky", 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "quarantine"), "by")),
                        "automatic");
    json_decref(j);
    enqueue(d, "q-good", "qbad", "good", "main", 0, "{\"command\":\"true\"}");
    j = claim_as(d, "w-flaky", "qbad");
    assert_true(json_is_true(json_object_get(j, "quarantined")));
    json_decref(j);
    assert_int_equal(dw_stop(&w, 10000), 0);
    e2e_pass(d);
}

static void test_external_status_report(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char sha[65];
    const char *hdrs[2];
    char hdr[120];
    json_t *j;

    enqueue(d, "ext-solaris", "solaris", "build-solaris", "main", 0, "{}");
    j = dx_post(d, API "/runs/ext-solaris/0/external", "{\"name\":\"community-box\"}", 200);
    assert_string_equal(json_string_value(json_object_get(j, "workerId")),
                        "external:community-box");
    json_decref(j);
    assert_int_equal(post_log(d, "ext-solaris/0", "0", "built on sol\n", &r), 200);
    e2e_resp_free(&r);
    sha256_hex("pkg", 3, sha);
    snprintf(hdr, sizeof(hdr), "X-Content-SHA256: %s", sha);
    hdrs[0] = hdr;
    hdrs[1] = NULL;
    assert_int_equal(e2e_request(d, "PUT", API "/runs/ext-solaris/0/artifacts/pkg.tar",
                                 d->admin_token, hdrs, "pkg", 3, &r),
                     201);
    e2e_resp_free(&r);
    j = dx_post(d, API "/runs/ext-solaris/0/report", "{\"state\":\"failed\",\"exitCode\":2}", 200);
    json_decref(j);
    j = dx_get(d, API "/runs/ext-solaris/0", 200);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "workerId")),
                        "external:community-box");
    json_decref(j);
    assert_int_equal(e2e_get(d, API "/runs/ext-solaris/0/log", NULL, &r), 200);
    assert_string_equal(r.body, "built on sol\n");
    e2e_resp_free(&r);
    /* a second claim of the same run is refused */
    j = dx_post(d, API "/runs/ext-solaris/0/external", "{\"name\":\"other\"}", 409);
    json_decref(j);
    e2e_pass(d);
}

static void test_lease_expires(void **state)
{
    struct e2e_daemon *d = *state;
    json_t *j;
    struct e2e_resp r;

    enqueue(d, "lost", "manual", "lost", "main", 0, "{}");
    j = claim_as(d, "vanishing", "manual");
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 1);
    json_decref(j);
    /* nobody renews: the 2 s lease ends and the run is resolved */
    j = wait_resolved(d, "lost", 0);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "exception");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "claim-expired");
    json_decref(j);
    assert_int_equal(e2e_post(d, API "/runs/lost/0/reclaim", d->admin_token, NULL, &r), 409);
    e2e_resp_free(&r);
    assert_true(e2e_metric(d, "relengd_dispatch_lease_expiries_total") >= 1);
    e2e_pass(d);
}

/* A claim answer that never reached its worker (the daemon killed
   mid-reply, a dropped connection): the worker's next claim lists what it
   runs, and the run it never got is released at once instead of after its
   5-minute lease. */
static void test_lost_claim_answer_released_by_next_claim(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    json_t *j;

    enqueue(d, "unseen", "linux", "unseen", "main", 0, "{\"command\":\"true\"}");
    j = claim_as(d, "w-forgetful", "linux"); /* as if the answer got lost */
    assert_int_equal(json_array_size(json_object_get(j, "tasks")), 1);
    json_decref(j);
    dw_start(&w, d, NULL, "linux", "w-forgetful", 1, NULL);
    j = wait_resolved(d, "unseen", 0);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "exception");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "claim-expired");
    json_decref(j);
    assert_int_equal(dw_stop(&w, 10000), 0);
    e2e_pass(d);
}

static void test_worker_sigterm_reports_shutdown(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    json_t *j;

    enqueue(d, "long", "linux", "long", "main", 0, "{\"command\":\"sleep 30\"}");
    dw_start(&w, d, NULL, "linux", "w-term", 1, NULL);
    j = dx_wait_str(d, API "/runs/long/0", "state", "claimed", 10000);
    assert_non_null(j);
    json_decref(j);
    assert_int_equal(dw_stop(&w, 10000), 0);
    j = dx_get(d, API "/runs/long/0", 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "resolved");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "worker-shutdown");
    json_decref(j);
    e2e_pass(d);
}

static void test_routes_documented_and_bad_input(void **state)
{
    struct e2e_daemon *d = *state;
    static const char *const paths[] = {
        API "/claim",
        API "/runs/{task_id}/{run_id}/reclaim",
        API "/runs/{task_id}/{run_id}/report",
        API "/runs/{task_id}/{run_id}/log",
        API "/runs/{task_id}/{run_id}/artifacts/{name}",
        API "/workers/{id}/quarantine",
        NULL,
    };
    struct e2e_resp r;
    json_t *doc = dx_get(d, "/api/v1/openapi.json", 200);

    for (int i = 0; paths[i]; i++)
        if (!json_object_get(json_object_get(doc, "paths"), paths[i]))
            fail_msg("%s is not in the OpenAPI document", paths[i]);
    json_decref(doc);
    assert_int_equal(e2e_post(d, API "/claim", d->admin_token, "[1,2]", &r), 400);
    e2e_resp_free(&r);
    assert_int_equal(e2e_post(d, API "/claim", d->admin_token,
                              "{\"workerId\":\"w\",\"workerType\":\"bad type\"}", &r),
                     400);
    assert_non_null(strstr(e2e_error_message(&r), "workerType"));
    e2e_resp_free(&r);
    assert_int_equal(
        e2e_post(d, API "/runs/none/0/report", d->admin_token, "{\"state\":\"completed\"}", &r),
        404);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, API "/runs/none/abc", NULL, &r), 404);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* relengctl as a shell user: worker list, quarantine, unquarantine, task
   log (whole, and --follow of a running task until it ends). */
static int ctl(struct e2e_daemon *d, const char *const *args, struct e2e_exec *x)
{
    char bin[600], url[160], tok[100];
    const char *argv[16];
    const char *env[] = {url, tok, NULL};
    int n = 0;

    snprintf(bin, sizeof(bin), "%s/cli/relengctl", e2e_builddir());
    snprintf(url, sizeof(url), "RELENGD_URL=%s", d->base_url);
    snprintf(tok, sizeof(tok), "RELENGD_TOKEN=%s", d->admin_token);
    argv[n++] = bin;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return e2e_exec(argv, env, NULL, 30000, x);
}

static void test_relengctl_workers_and_task_log(void **state)
{
    struct e2e_daemon *d = *state;
    struct dworker w;
    struct e2e_exec x;
    json_t *j;

    enqueue(d, "ctl-1", "linux", "build", "main", 0,
            "{\"command\":\"echo one; sleep 1; echo two\"}");
    dw_start(&w, d, NULL, "linux", "w-ctl", 1, NULL);
    j = dx_wait_str(d, API "/runs/ctl-1/0", "state", "claimed", 10000);
    assert_non_null(j);
    json_decref(j);
    {
        const char *a[] = {"task", "log", "ctl-1", "--follow", NULL};
        assert_int_equal(ctl(d, a, &x), 0);
        assert_non_null(strstr(x.out, "one\n"));
        assert_non_null(strstr(x.out, "two\n")); /* followed to the end */
        e2e_exec_free(&x);
    }
    {
        const char *a[] = {"task", "log", "ctl-1", "--run", "0", NULL};
        assert_int_equal(ctl(d, a, &x), 0);
        assert_non_null(strstr(x.out, "one\ntwo\n"));
        e2e_exec_free(&x);
    }
    {
        const char *a[] = {"worker", "list", NULL};
        assert_int_equal(ctl(d, a, &x), 0);
        assert_non_null(strstr(x.out, "w-ctl"));
        assert_non_null(strstr(x.out, "build"));
        e2e_exec_free(&x);
    }
    {
        const char *a[] = {"worker",     "quarantine", "w-ctl", "--reason",
                           "flaky disk", "--for",      "1h",    NULL};
        assert_int_equal(ctl(d, a, &x), 0);
        e2e_exec_free(&x);
        j = dx_get(d, API "/workers/w-ctl", 200);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(j, "quarantine"), "reason")),
            "flaky disk");
        assert_true(json_integer_value(json_object_get(json_object_get(j, "quarantine"), "until")) >
                    0);
        json_decref(j);
    }
    {
        const char *a[] = {"worker", "quarantine", "w-ctl", NULL};
        assert_int_equal(ctl(d, a, &x), 2); /* --reason is required */
        e2e_exec_free(&x);
    }
    {
        const char *a[] = {"worker", "unquarantine", "w-ctl", NULL};
        assert_int_equal(ctl(d, a, &x), 0);
        e2e_exec_free(&x);
        j = dx_get(d, API "/workers/w-ctl", 200);
        assert_true(json_is_null(json_object_get(j, "quarantine")));
        json_decref(j);
    }
    {
        const char *a[] = {"worker", "unquarantine", "nobody", NULL};
        assert_int_equal(ctl(d, a, &x), 1);
        e2e_exec_free(&x);
    }
    {
        const char *a[] = {"task", "log", "no-such-task", NULL};
        assert_int_equal(ctl(d, a, &x), 1);
        e2e_exec_free(&x);
    }
    assert_int_equal(dw_stop(&w, 10000), 0);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_worker_runs_task_with_log_and_artifact,
                                                 e2e_setup, e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_worker_cache_max_run_time_and_bad_payload,
                                                 e2e_setup, e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_priority_then_fifo_across_branches, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_warm_worker_preferred, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_log_chunk_retry_and_gap, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_artifact_hash_mismatch_and_traversal,
                                                 e2e_setup, e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_quarantine_manual_and_automatic, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_external_status_report, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_lease_expires, e2e_setup, e2e_teardown,
                                                 (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_lost_claim_answer_released_by_next_claim,
                                                 e2e_setup, e2e_teardown, (void *)&opts_long_lease),
        cmocka_unit_test_prestate_setup_teardown(test_worker_sigterm_reports_shutdown, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_routes_documented_and_bad_input, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
        cmocka_unit_test_prestate_setup_teardown(test_relengctl_workers_and_task_log, e2e_setup,
                                                 e2e_teardown, (void *)&opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
