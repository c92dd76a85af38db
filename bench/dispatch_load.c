/* SPDX-License-Identifier: MIT */
/*
 * bench/dispatch_load.c -- the load client of bench/dispatch.sh: N threads,
 * each a lightweight worker speaking relengd-worker's protocol (claim with
 * a long-poll, one log chunk, report completed) without running anything.
 * Stops after `total` tasks, or when no task came for `idle` seconds.
 * Prints, per label prefix ("drain-", "lat-"), the count, the first claim
 * and last report times (ms since the epoch) and the p50/p99 of the wait
 * from pending to claimed (the server's own claimedAt - pendingSince).
 *
 *   dispatch-load URL TOKEN TYPE THREADS CAPACITY TOTAL IDLE_S
 *
 * Built by bench/dispatch.sh with cc; needs libcurl, jansson, pthreads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define MAX_SAMPLES 200000

static const char *url, *token, *type;
static int capacity, total, idle_s;
static atomic_int done;

struct stats {
    pthread_mutex_t lock;
    long long n, first_claim, last_report;
    long long *waits;
};
static struct stats drain = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, NULL};
static struct stats lat = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, NULL};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *p, size_t s, size_t n, void *arg)
{
    struct buf *b = arg;
    char *g = realloc(b->p, b->n + s * n + 1);
    if (!g)
        return 0;
    memcpy(g + b->n, p, s * n);
    b->p = g;
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

static long post(CURL *c, const char *path, const char *body, size_t len, json_t **out)
{
    char full[512];
    struct buf b = {0};
    struct curl_slist *h = NULL;
    char auth[200];
    long status = -1;
    json_error_t je;

    snprintf(full, sizeof(full), "%s%s", url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (out)
        *out = b.p ? json_loads(b.p, 0, &je) : NULL;
    free(b.p);
    curl_slist_free_all(h);
    return status;
}

static void record(struct stats *s, long long wait, long long claimed, long long reported)
{
    pthread_mutex_lock(&s->lock);
    if (s->n < MAX_SAMPLES)
        s->waits[s->n] = wait;
    s->n++;
    if (!s->first_claim || claimed < s->first_claim)
        s->first_claim = claimed;
    if (reported > s->last_report)
        s->last_report = reported;
    pthread_mutex_unlock(&s->lock);
}

static void *worker(void *arg)
{
    CURL *c = curl_easy_init();
    char body[256], path[256];
    long long last_task = now_ms();
    int id = (int)(intptr_t)arg;

    snprintf(body, sizeof(body),
             "{\"workerId\":\"bench-%d\",\"workerType\":\"%s\",\"capacity\":%d,\"wait\":2}", id,
             type, capacity);
    while (atomic_load(&done) < total && now_ms() - last_task < idle_s * 1000LL) {
        json_t *ans = NULL, *t;
        size_t i;
        long st = post(c, "/api/v1/dispatch/claim", body, strlen(body), &ans);

        if (st != 200) {
            fprintf(stderr, "dispatch-load: claim answered %ld\n", st);
            json_decref(ans);
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            continue;
        }
        json_array_foreach(json_object_get(ans, "tasks"), i, t)
        {
            const char *tid = json_string_value(json_object_get(t, "taskId"));
            const char *label = json_string_value(json_object_get(t, "label"));
            long long run = json_integer_value(json_object_get(t, "runId"));
            long long wait = json_integer_value(json_object_get(t, "claimedAt")) -
                             json_integer_value(json_object_get(t, "pendingSince"));
            long long claimed = json_integer_value(json_object_get(t, "claimedAt"));
            static const char line[] = "bench: ok\n";

            snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s/%lld/log?offset=0", tid, run);
            if (post(c, path, line, sizeof(line) - 1, NULL) != 200)
                fprintf(stderr, "dispatch-load: log of %s refused\n", tid);
            snprintf(path, sizeof(path), "/api/v1/dispatch/runs/%s/%lld/report", tid, run);
            static const char done_body[] = "{\"state\":\"completed\",\"exitCode\":0}";
            if (post(c, path, done_body, sizeof(done_body) - 1, NULL) != 200)
                fprintf(stderr, "dispatch-load: report of %s refused\n", tid);
            record(label && strncmp(label, "lat-", 4) == 0 ? &lat : &drain, wait, claimed,
                   now_ms());
            atomic_fetch_add(&done, 1);
            last_task = now_ms();
        }
        json_decref(ans);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long pct(const struct stats *s, double p)
{
    long long n = s->n < MAX_SAMPLES ? s->n : MAX_SAMPLES, r;
    if (n == 0)
        return -1;
    r = (long long)(p / 100.0 * (double)n + 0.999999);
    return s->waits[(r < 1 ? 1 : r) - 1];
}

static void print(const char *name, struct stats *s)
{
    long long n = s->n < MAX_SAMPLES ? s->n : MAX_SAMPLES;
    qsort(s->waits, (size_t)n, sizeof(long long), cmp);
    printf("%s n=%lld first_claim=%lld last_report=%lld p50=%lld p99=%lld max=%lld\n", name, s->n,
           s->first_claim, s->last_report, pct(s, 50), pct(s, 99), n ? s->waits[n - 1] : -1);
}

int main(int argc, char **argv)
{
    pthread_t th[256];
    int n;

    if (argc != 8) {
        fprintf(stderr, "usage: dispatch-load URL TOKEN TYPE THREADS CAPACITY TOTAL IDLE_S\n");
        return 2;
    }
    url = argv[1];
    token = argv[2];
    type = argv[3];
    n = (int)strtol(argv[4], NULL, 10);
    capacity = (int)strtol(argv[5], NULL, 10);
    total = (int)strtol(argv[6], NULL, 10);
    idle_s = (int)strtol(argv[7], NULL, 10);
    if (n < 1 || n > 256 || capacity < 1 || total < 1 || idle_s < 1)
        return 2;
    drain.waits = calloc(MAX_SAMPLES, sizeof(long long));
    lat.waits = calloc(MAX_SAMPLES, sizeof(long long));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    print("drain", &drain);
    print("lat", &lat);
    curl_global_cleanup();
    return 0;
}
