/* SPDX-License-Identifier: MIT */
/*
 * worker/main.c -- relengd-worker: claims tasks of its worker type from a
 * relengd dispatch module and runs up to `capacity` of them at once, each
 * on a thread of its own (worker/task.c). The main thread long-polls for
 * work whenever a slot is free, backing off while the server is away. On
 * SIGTERM/SIGINT it stops claiming and waits for the running tasks (which
 * finish within shutdown_grace or are reported worker-shutdown); a second
 * signal stops retrying too. See worker/README.md.
 */
#include "config.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "worker/task.h"
#include "worker/wconf.h"
#include "worker/whttp.h"

extern char **environ;

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cond = PTHREAD_COND_INITIALIZER;
static int running;
/* {"taskId","runId"} of every task a thread runs, sent with each claim so
   that the server releases runs whose claim answer never reached us. */
static json_t *running_runs;

struct job {
    const struct wconf *c;
    json_t *task;
    json_t *entry; /* its element of running_runs */
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    size_t i;
    json_t *e;

    task_run(j->c, j->task);
    pthread_mutex_lock(&slots_lock);
    running--;
    json_array_foreach(running_runs, i, e) if (e == j->entry)
    {
        json_array_remove(running_runs, i);
        break;
    }
    pthread_cond_broadcast(&slots_cond);
    pthread_mutex_unlock(&slots_lock);
    json_decref(j->entry);
    free(j);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    if (worker_stopping)
        worker_hard_stop = 1;
    worker_stopping = 1;
}

static void usage(FILE *f)
{
    fputs("Usage: relengd-worker [OPTIONS]\n"
          "Claims tasks from a relengd dispatch module and runs them.\n\n"
          "  -c, --config FILE     key = value settings (env RELENGD_WORKER_CONFIG)\n"
          "      --url URL         relengd's address (url)\n"
          "      --token TOKEN     a token with the scope worker:TYPE (token, token_file)\n"
          "      --worker-type T   the worker type to claim for (worker_type)\n"
          "      --worker-id ID    this worker's id (worker_id; default the host name)\n"
          "      --capacity N      tasks at once (capacity; default 1)\n"
          "      --work-dir DIR    task and cache directories (work_dir)\n"
          "      --once            exit after the first tasks claimed are done\n"
          "  -h, --help            this help\n\n"
          "Every setting can also come from RELENGD_WORKER_<KEY> (e.g.\n"
          "RELENGD_WORKER_TOKEN); the command line wins over the environment,\n"
          "which wins over the file. See worker/README.md for all keys.\n",
          f);
}

static json_t *claim_body(const struct wconf *c, int free_slots)
{
    json_t *labels = json_array(), *body, *mine;
    char buf[sizeof(c->labels)], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", c->labels);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            json_array_append_new(labels, json_string(tok));
    body = json_pack("{s:s, s:s, s:i, s:f, s:{s:s, s:i, s:o}}", "workerId", c->worker_id,
                     "workerType", c->worker_type, "capacity", free_slots, "wait", c->wait_s,
                     "capabilities", "platform", c->platform, "cores", c->cores, "labels", labels);
    pthread_mutex_lock(&slots_lock);
    mine = json_deep_copy(running_runs);
    pthread_mutex_unlock(&slots_lock);
    if (body && mine)
        json_object_set_new(body, "running", mine);
    else
        json_decref(mine);
    return body;
}

/* Starts a thread for each claimed task. Returns how many started. */
static int start_tasks(const struct wconf *c, const json_t *tasks)
{
    const json_t *t;
    size_t i;
    int n = 0;

    json_array_foreach(tasks, i, t)
    {
        struct job *j = calloc(1, sizeof(*j));
        pthread_attr_t attr;
        pthread_t tid;

        if (!j)
            continue;
        j->c = c;
        j->task = json_incref((json_t *)t);
        j->entry = json_pack("{s:O, s:O}", "taskId", json_object_get(t, "taskId"), "runId",
                             json_object_get(t, "runId"));
        pthread_mutex_lock(&slots_lock);
        running++;
        if (j->entry)
            json_array_append(running_runs, j->entry);
        pthread_mutex_unlock(&slots_lock);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, job_main, j) != 0) {
            /* Run it here rather than lose it. */
            job_main(j);
        }
        pthread_attr_destroy(&attr);
        n++;
    }
    return n;
}

static int claim_loop(const struct wconf *c)
{
    struct whttp h;
    int backoff = 100, rc = 0;
    bool had_tasks = false;

    if (whttp_init(&h, c, &worker_stopping) != 0)
        return 1;
    while (!worker_stopping && !(c->once && had_tasks)) {
        json_t *body, *ans = NULL;
        int free_slots;
        long status;

        pthread_mutex_lock(&slots_lock);
        while (running >= c->capacity && !worker_stopping)
            pthread_cond_wait(&slots_cond, &slots_lock);
        free_slots = c->capacity - running;
        pthread_mutex_unlock(&slots_lock);
        if (worker_stopping)
            break;
        body = claim_body(c, free_slots);
        status = whttp_json(&h, "POST", "/api/v1/dispatch/claim", body,
                            (long)(c->wait_s * 1000) + 15000, &ans);
        json_decref(body);
        if (status == 200) {
            const json_t *retry = json_object_get(ans, "retryAfter");
            backoff = 100;
            if (start_tasks(c, json_object_get(ans, "tasks")) > 0)
                had_tasks = true;
            else if (json_is_integer(retry))
                task_sleep_ms((int)json_integer_value(retry));
            else if (json_is_true(json_object_get(ans, "quarantined")) || c->wait_s == 0)
                task_sleep_ms(1000);
        } else if (status == 400 || status == 401 || status == 403) {
            const char *msg =
                json_string_value(json_object_get(json_object_get(ans, "error"), "message"));
            fprintf(stderr, "relengd-worker: the server refuses our claims (HTTP %ld): %s\n",
                    status, msg ? msg : "");
            rc = 2;
            json_decref(ans);
            break;
        } else if (!worker_stopping) {
            fprintf(stderr, "relengd-worker: claim failed (%s); again in %d ms\n",
                    status < 0 ? h.error : "server error", backoff);
            task_sleep_ms(backoff);
            backoff = backoff * 2 > c->max_backoff_ms ? c->max_backoff_ms : backoff * 2;
        }
        json_decref(ans);
    }
    whttp_fini(&h);
    /* Running tasks finish (or are stopped by the shutdown grace). */
    pthread_mutex_lock(&slots_lock);
    while (running > 0)
        pthread_cond_wait(&slots_cond, &slots_lock);
    pthread_mutex_unlock(&slots_lock);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"url", required_argument, NULL, 1},
        {"token", required_argument, NULL, 2},     {"worker-type", required_argument, NULL, 3},
        {"worker-id", required_argument, NULL, 4}, {"capacity", required_argument, NULL, 5},
        {"work-dir", required_argument, NULL, 6},  {"once", no_argument, NULL, 7},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    static const char *const keys[] = {NULL,        "url",      "token",    "worker_type",
                                       "worker_id", "capacity", "work_dir", "once"};
    struct wconf c;
    struct sigaction sa;
    const char *config = getenv("RELENGD_WORKER_CONFIG");
    char err[512];
    int ch, rc;

    wconf_defaults(&c);
    /* First pass: only --config and --help, so the file comes first. */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ch == 'c')
            config = optarg;
        else if (ch == 'h') {
            usage(stdout);
            return 0;
        }
    }
    if (config && wconf_load_file(&c, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "relengd-worker: %s\n", err);
        return 2;
    }
    if (wconf_load_env(&c, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "relengd-worker: environment: %s\n", err);
        return 2;
    }
    optind = 0; /* 0: glibc re-initialises its scan */
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ch >= 1 && ch <= 7) {
            if (wconf_set(&c, keys[ch], ch == 7 ? "yes" : optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "relengd-worker: %s\n", err);
                return 2;
            }
        } else if (ch == '?') {
            usage(stderr);
            return 2;
        }
    }
    if (wconf_check(&c, err, sizeof(err)) != 0) {
        fprintf(stderr, "relengd-worker: %s\n", err);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    running_runs = json_array();
    if (!running_runs || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "relengd-worker: curl_global_init failed\n");
        return 1;
    }
    fprintf(stderr, "relengd-worker: %s (%s) claiming from %s, capacity %d\n", c.worker_id,
            c.worker_type, c.url, c.capacity);
    rc = claim_loop(&c);
    curl_global_cleanup();
    json_decref(running_runs);
    fprintf(stderr, "relengd-worker: stopped\n");
    return rc;
}
