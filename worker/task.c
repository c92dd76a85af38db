/* SPDX-License-Identifier: MIT */
/*
 * worker/task.c -- one task from claim to report (see task.h). Runs on the
 * task's own thread; the child process gets its own process group so that
 * a stop kills everything it started. The whole output is kept in the task
 * directory (output.log), so any chunk can be sent again from any offset
 * the server asks for.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/hash/hash.h"
#include "worker/task.h"
#include "worker/whttp.h"

extern char **environ;

volatile sig_atomic_t worker_stopping;
volatile sig_atomic_t worker_hard_stop;

#define READ_CHUNK 65536
#define POLL_MS 50

enum outcome {
    OUT_EXIT = 0,  /* exited: completed or failed by exit code */
    OUT_TIMEOUT,   /* max run time: failed */
    OUT_SHUTDOWN,  /* worker stopping: exception/worker-shutdown */
    OUT_MALFORMED, /* exception/malformed-payload */
    OUT_INTERNAL,  /* exception/internal-error */
    OUT_CANCELLED, /* the server said stop: nothing to report */
};

struct task {
    const struct wconf *c;
    json_t *t;
    const json_t *payload;
    char task_id[65];
    unsigned run_id;
    char base[160]; /* /api/v1/dispatch/runs/<task>/<run> */
    char dir[1200];
    char cache[1200];
    char log_path[1300];
    int log_fd;
    unsigned long long log_size; /* bytes in output.log */
    unsigned long long log_sent; /* bytes the server has */
    unsigned long long last_flush_ms;
    unsigned long long next_flush_try_ms;
    unsigned long long taken_until;
    unsigned long long next_reclaim_ms;
    unsigned long long grace_end; /* after SIGTERM: when the command is stopped */
    bool log_closed;              /* the server takes no more (413, 409) */
    bool cancelled;               /* 409 on reclaim: stop, report nothing */
    struct whttp http;
};

unsigned long long task_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

unsigned long long task_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

void task_sleep_ms(int ms)
{
    while (ms > 0 && !worker_hard_stop) {
        int step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* A line of the worker's own into the task's log (and stderr). */
static void note(struct task *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct task *k, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    int n;

    n = snprintf(line, sizeof(line), "[relengd-worker] ");
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (k->log_fd >= 0 && write(k->log_fd, line, (size_t)n) == n)
        k->log_size += (unsigned long long)n;
    fprintf(stderr, "relengd-worker: %s/%u: %.*s", k->task_id, k->run_id, n - 17, line + 17);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int mkdirs(const char *path)
{
    char tmp[1300];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* [A-Za-z0-9_.-] only, for directory names; never "." or "..". */
static void sanitize(const char *in, char *out, size_t len)
{
    size_t i = 0;

    for (; in && *in && i + 1 < len; in++)
        out[i++] = (char)((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') ||
                                  (*in >= '0' && *in <= '9') || *in == '_' || *in == '-'
                              ? *in
                              : '_');
    out[i] = '\0';
    if (i == 0)
        snprintf(out, len, "default");
}

/* ------------------------------------------------------------------ log */

/* Sends what the server does not have yet (at most log_chunk bytes per
   request). force: send even a small remainder now. 0 when everything
   pending went out (or the server takes no more), -1 to try again later. */
static int log_flush(struct task *k, bool force)
{
    unsigned long long now = task_mono_ms();
    char path[300], *buf = NULL;
    json_t *ans = NULL;
    int rc = 0;

    if (k->log_closed || k->log_sent >= k->log_size)
        return 0;
    if (!force && k->log_size - k->log_sent < (unsigned long long)k->c->log_chunk &&
        now - k->last_flush_ms < (unsigned long long)k->c->log_interval_ms)
        return 0;
    if (now < k->next_flush_try_ms && !force)
        return -1;
    buf = malloc((size_t)k->c->log_chunk);
    if (!buf)
        return -1;
    while (k->log_sent < k->log_size && !k->log_closed) {
        size_t n = k->log_size - k->log_sent > (unsigned long long)k->c->log_chunk
                       ? (size_t)k->c->log_chunk
                       : (size_t)(k->log_size - k->log_sent);
        ssize_t got = pread(k->log_fd, buf, n, (off_t)k->log_sent);
        long status;

        if (got <= 0) {
            rc = -1;
            break;
        }
        snprintf(path, sizeof(path), "%s/log?offset=%llu", k->base, k->log_sent);
        status = whttp_post_raw(&k->http, path, buf, (size_t)got, &ans);
        if (status == 200 || status == 416) {
            /* 416: a gap; the server says where it is, we resend from there. */
            const json_t *off = json_object_get(ans, "offset");
            if (json_is_integer(off) && json_integer_value(off) >= 0 &&
                (unsigned long long)json_integer_value(off) <= k->log_size)
                k->log_sent = (unsigned long long)json_integer_value(off);
            else if (status == 200)
                k->log_sent += (unsigned long long)got;
        } else if (status == 413 || status == 409 || status == 404 || status == 403) {
            k->log_closed = true; /* capped, or the run is over: nothing more goes */
        } else {
            k->next_flush_try_ms = now + 1000;
            rc = -1;
        }
        json_decref(ans);
        ans = NULL;
        if (rc != 0 || !force)
            break;
    }
    k->last_flush_ms = now;
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- lease */

static void lease_renew(struct task *k)
{
    unsigned long long now = task_mono_ms(), wall = task_wall_ms();
    char path[300];
    json_t *ans = NULL;
    long status;

    if (now < k->next_reclaim_ms)
        return;
    snprintf(path, sizeof(path), "%s/reclaim", k->base);
    status = whttp_json(&k->http, "POST", path, NULL, 10000, &ans);
    if (status == 200 && json_is_integer(json_object_get(ans, "takenUntil"))) {
        k->taken_until = (unsigned long long)json_integer_value(json_object_get(ans, "takenUntil"));
        /* Renew again halfway to the new end. */
        k->next_reclaim_ms = now + (k->taken_until > wall ? (k->taken_until - wall) / 2 : 0) + 100;
    } else if (status == 409 || status == 404) {
        note(k, "the server says to stop: %s",
             json_string_value(json_object_get(json_object_get(ans, "error"), "message"))
                 ? json_string_value(json_object_get(json_object_get(ans, "error"), "message"))
                 : "run not running");
        k->cancelled = true;
    } else {
        k->next_reclaim_ms = now + 500; /* server away: try again soon */
    }
    json_decref(ans);
}

/* ------------------------------------------------------------ the child */

/* The child's environment: ours without the worker's own settings (the
   token stays with the worker), plus the payload's and the task's. */
static char **child_env(struct task *k)
{
    const json_t *env = json_object_get(k->payload, "env"), *v;
    size_t n = 0, i = 0;
    const char *key;
    char **out;

    for (char **e = environ; *e; e++)
        n++;
    out = calloc(n + json_object_size(env) + 16, sizeof(*out));
    if (!out)
        return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "RELENGD_WORKER_", 15) != 0 && strncmp(*e, "RELENGD_TOKEN", 13) != 0)
            out[i++] = strdup(*e);
    json_object_foreach((json_t *)env, key, v)
    {
        char *s = NULL;
        if (json_is_string(v) && asprintf(&s, "%s=%s", key, json_string_value(v)) > 0)
            out[i++] = s;
        else if (json_is_integer(v) &&
                 asprintf(&s, "%s=%" JSON_INTEGER_FORMAT, key, json_integer_value(v)) > 0)
            out[i++] = s;
    }
#define ADD(fmt, ...)                                                                              \
    do {                                                                                           \
        char *s_ = NULL;                                                                           \
        if (asprintf(&s_, fmt, __VA_ARGS__) > 0)                                                   \
            out[i++] = s_;                                                                         \
    } while (0)
    ADD("RELENGD_TASK_ID=%s", k->task_id);
    ADD("RELENGD_RUN_ID=%u", k->run_id);
    ADD("RELENGD_TASK_DIR=%s", k->dir);
    ADD("RELENGD_CACHE_DIR=%s", k->cache);
    ADD("RELENGD_LABEL=%s", json_string_value(json_object_get(k->t, "label")) ?: "");
    ADD("RELENGD_BRANCH=%s", json_string_value(json_object_get(k->t, "branch")) ?: "");
    ADD("RELENGD_WORKER_ID_OF_TASK=%s", k->c->worker_id);
#undef ADD
    out[i] = NULL;
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* argv from payload.command: an array of strings, or a shell string. */
static char **command_argv(const json_t *cmd)
{
    char **argv = NULL;
    size_t i;
    const json_t *v;

    if (json_is_string(cmd) && json_string_length(cmd) > 0) {
        argv = calloc(4, sizeof(*argv));
        if (!argv)
            return NULL;
        argv[0] = strdup("/bin/sh");
        argv[1] = strdup("-c");
        argv[2] = strdup(json_string_value(cmd));
        return argv;
    }
    if (!json_is_array(cmd) || json_array_size(cmd) == 0)
        return NULL;
    argv = calloc(json_array_size(cmd) + 1, sizeof(*argv));
    if (!argv)
        return NULL;
    json_array_foreach(cmd, i, v)
    {
        if (!json_is_string(v)) {
            strv_free(argv);
            return NULL;
        }
        argv[i] = strdup(json_string_value(v));
    }
    return argv;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* Runs the command; returns the outcome and sets *exit_code. */
static enum outcome run_command(struct task *k, int *exit_code)
{
    const json_t *mrt = json_object_get(k->payload, "maxRunTime");
    char **argv = command_argv(json_object_get(k->payload, "command")), **envp = NULL;
    unsigned long long start = task_mono_ms(), stop_at = 0, max_ms = 0;
    enum outcome out = OUT_EXIT;
    char *buf = NULL;
    int pfd[2] = {-1, -1}, status = 0;
    bool eof = false, exited = false, killed = false;
    pid_t pid;

    *exit_code = -1;
    if (!argv ||
        (mrt && !json_is_null(mrt) && (!json_is_number(mrt) || json_number_value(mrt) <= 0))) {
        note(k, "malformed payload: command must be a non-empty array of strings or a string,"
                " maxRunTime a positive number of seconds");
        strv_free(argv);
        return OUT_MALFORMED;
    }
    if (json_is_number(mrt))
        max_ms = (unsigned long long)(json_number_value(mrt) * 1000.0);
    envp = child_env(k);
    buf = malloc(READ_CHUNK);
    if (!envp || !buf || pipe2(pfd, O_CLOEXEC) != 0) {
        note(k, "cannot prepare the command: %s", strerror(errno));
        out = OUT_INTERNAL;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        note(k, "fork failed: %s", strerror(errno));
        out = OUT_INTERNAL;
        goto out;
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        setpgid(0, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        if (chdir(k->dir) != 0)
            _exit(126);
        execvpe(argv[0], argv, envp);
        {
            static const char msg[] = "[relengd-worker] cannot execute the command\n";
            ssize_t ignored = write(2, msg, sizeof(msg) - 1);
            (void)ignored;
        }
        _exit(127);
    }
    setpgid(pid, pid);
    close(pfd[1]);
    pfd[1] = -1;
    while (!eof || !exited) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        unsigned long long now;

        if (!eof && poll(&p, 1, POLL_MS) > 0) {
            ssize_t n = read(pfd[0], buf, READ_CHUNK);
            if (n > 0) {
                if (write(k->log_fd, buf, (size_t)n) == n)
                    k->log_size += (unsigned long long)n;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                eof = true;
            }
        } else if (eof) {
            task_sleep_ms(POLL_MS);
        }
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                exited = true;
                /* Children of the command may keep the pipe open: stop
                   waiting for its end shortly after the command exited. */
                if (!eof)
                    stop_at = task_mono_ms() + 2000;
            }
        }
        now = task_mono_ms();
        if (exited && !eof && stop_at && now >= stop_at) {
            kill(-pid, SIGKILL);
            eof = true;
        }
        log_flush(k, false);
        lease_renew(k);
        if (killed || exited)
            continue;
        if (k->cancelled) {
            kill_group(pid);
            killed = true;
            out = OUT_CANCELLED;
        } else if (max_ms && now - start >= max_ms) {
            note(k, "max run time of %llus exceeded: stopped", max_ms / 1000);
            kill_group(pid);
            killed = true;
            out = OUT_TIMEOUT;
        } else if (worker_stopping) {
            if (k->grace_end == 0)
                k->grace_end = now + (unsigned long long)k->c->shutdown_grace_s * 1000;
            if (now >= k->grace_end || worker_hard_stop) {
                note(k, "the worker is shutting down: stopped");
                kill_group(pid);
                killed = true;
                out = OUT_SHUTDOWN;
            }
        }
    }
    if (out == OUT_EXIT) {
        if (WIFEXITED(status)) {
            *exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            note(k, "the command died of signal %d", WTERMSIG(status));
            *exit_code = -1;
        }
    }
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    free(buf);
    strv_free(envp);
    strv_free(argv);
    return out;
}

/* ------------------------------------------------------------ artifacts */

/* The SHA-256 (hex) and size of f, left rewound for the upload. */
static int sha256_file(FILE *f, char out[65], long long *size)
{
    uint8_t md[HASH_MAX_LEN];
    struct stat st;

    if (hash_fd(HASH_SHA256, fileno(f), md, NULL) != RD_OK || fstat(fileno(f), &st) != 0)
        return -1;
    hash_hex(md, hash_len(HASH_SHA256), out);
    *size = (long long)st.st_size;
    rewind(f);
    return 0;
}

/* Uploads the declared artifacts; false when one is missing or refused. */
static bool upload_artifacts(struct task *k)
{
    const json_t *arts = json_object_get(k->payload, "artifacts"), *a;
    bool ok = true;
    size_t i;

    json_array_foreach(arts, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *rel = json_string_value(json_object_get(a, "path"));
        char path[2600], url[400], sha[65];
        long long size;
        FILE *f;

        if (!rel)
            rel = name;
        if (!name || !rel || rel[0] == '/' || strstr(rel, "..")) {
            note(k, "artifact %zu: needs a name and a relative path inside the task directory", i);
            ok = false;
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", k->dir, rel);
        f = fopen(path, "rb");
        if (!f) {
            note(k, "artifact %s: %s: %s", name, rel, strerror(errno));
            ok = false;
            continue;
        }
        if (sha256_file(f, sha, &size) != 0) {
            note(k, "artifact %s: cannot read %s", name, rel);
            fclose(f);
            ok = false;
            continue;
        }
        snprintf(url, sizeof(url), "%s/artifacts/%s", k->base, name);
        for (int attempt = 0, backoff = 200;; attempt++) {
            json_t *ans = NULL;
            long status = whttp_put_file(&k->http, url, f, size, sha, &ans);
            const char *msg =
                json_string_value(json_object_get(json_object_get(ans, "error"), "message"));
            if (status == 201) {
                note(k, "artifact %s: %lld bytes uploaded", name, size);
            } else if (status >= 400 && status < 500) {
                note(k, "artifact %s refused (HTTP %ld): %s", name, status, msg ? msg : "");
                ok = false;
            }
            json_decref(ans);
            if ((status >= 200 && status < 500) || worker_hard_stop || attempt > 30)
                break;
            rewind(f);
            task_sleep_ms(backoff);
            backoff = backoff * 2 > k->c->max_backoff_ms ? k->c->max_backoff_ms : backoff * 2;
        }
        fclose(f);
    }
    return ok;
}

/* --------------------------------------------------------------- report */

static void report(struct task *k, const char *state, const char *reason, int exit_code)
{
    json_t *body = json_pack("{s:s, s:s}", "state", state, "reason", reason), *ans = NULL;
    char path[300];
    int backoff = 100;

    if (!body)
        return;
    if (exit_code >= 0)
        json_object_set_new(body, "exitCode", json_integer(exit_code));
    snprintf(path, sizeof(path), "%s/report", k->base);
    /* A finished result is never dropped: retry while the server is away
       (a restart), until it answers or we are told to stop hard. */
    for (;;) {
        long status = whttp_json(&k->http, "POST", path, body, 10000, &ans);
        if (status >= 200 && status < 500) {
            if (status != 200)
                fprintf(stderr, "relengd-worker: %s/%u: report %s refused (HTTP %ld)\n", k->task_id,
                        k->run_id, state, status);
            else
                fprintf(stderr, "relengd-worker: %s/%u: %s (%s)\n", k->task_id, k->run_id, state,
                        reason);
            break;
        }
        json_decref(ans);
        ans = NULL;
        if (worker_hard_stop)
            break;
        task_sleep_ms(backoff);
        backoff = backoff * 2 > k->c->max_backoff_ms ? k->c->max_backoff_ms : backoff * 2;
    }
    json_decref(ans);
    json_decref(body);
}

/* ------------------------------------------------------------------ run */

void task_run(const struct wconf *c, json_t *t)
{
    struct task k = {.c = c, .t = t, .log_fd = -1};
    const char *cache = NULL;
    char name[200];
    enum outcome out;
    int exit_code = -1;

    snprintf(k.task_id, sizeof(k.task_id), "%s",
             json_string_value(json_object_get(t, "taskId")) ?: "");
    k.run_id = (unsigned)json_integer_value(json_object_get(t, "runId"));
    k.payload = json_object_get(t, "payload");
    k.taken_until = (unsigned long long)json_integer_value(json_object_get(t, "takenUntil"));
    {
        unsigned long long wall = task_wall_ms();
        k.next_reclaim_ms =
            task_mono_ms() + (k.taken_until > wall ? (k.taken_until - wall) / 2 : 0);
    }
    snprintf(k.base, sizeof(k.base), "/api/v1/dispatch/runs/%s/%u", k.task_id, k.run_id);
    snprintf(k.dir, sizeof(k.dir), "%s/tasks/%s@%u", c->work_dir, k.task_id, k.run_id);
    cache = json_string_value(json_object_get(k.payload, "cache"));
    sanitize(cache ? cache : json_string_value(json_object_get(t, "label")), name, sizeof(name));
    snprintf(k.cache, sizeof(k.cache), "%s/caches/%s", c->work_dir, name);
    snprintf(k.log_path, sizeof(k.log_path), "%s/tasks/%s@%u.log", c->work_dir, k.task_id,
             k.run_id);
    if (whttp_init(&k.http, c, &worker_hard_stop) != 0) {
        fprintf(stderr, "relengd-worker: out of memory\n");
        json_decref(t);
        return;
    }
    /* A fresh task directory every time; the cache directory is kept. */
    nftw(k.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdirs(k.dir) == 0 && mkdirs(k.cache) == 0)
        k.log_fd = open(k.log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (k.log_fd < 0) {
        note(&k, "cannot create the task directory %s: %s", k.dir, strerror(errno));
        out = OUT_INTERNAL;
    } else if (!json_is_object(k.payload)) {
        note(&k, "malformed payload: not an object");
        out = OUT_MALFORMED;
    } else if (worker_stopping) {
        out = OUT_SHUTDOWN;
    } else {
        note(&k, "running %s/%u (%s) in %s", k.task_id, k.run_id,
             json_string_value(json_object_get(t, "label")) ?: "", k.dir);
        out = run_command(&k, &exit_code);
    }
    if (out == OUT_EXIT || out == OUT_TIMEOUT) {
        if (!upload_artifacts(&k) && out == OUT_EXIT && exit_code == 0) {
            note(&k, "declared artifacts are missing: the task failed");
            exit_code = -1;
            out = OUT_TIMEOUT; /* reported as failed without an exit code */
        }
    }
    if (out != OUT_CANCELLED) {
        /* Everything in the log goes out before the report. */
        for (int backoff = 100; log_flush(&k, true) != 0 && !worker_hard_stop;) {
            task_sleep_ms(backoff);
            backoff = backoff * 2 > c->max_backoff_ms ? c->max_backoff_ms : backoff * 2;
        }
    }
    switch (out) {
    case OUT_EXIT:
        if (exit_code == 0)
            report(&k, "completed", "completed", 0);
        else
            report(&k, "failed", "failed", exit_code);
        break;
    case OUT_TIMEOUT:
        report(&k, "failed", "failed", -1);
        break;
    case OUT_SHUTDOWN:
        report(&k, "exception", "worker-shutdown", -1);
        break;
    case OUT_MALFORMED:
        report(&k, "exception", "malformed-payload", -1);
        break;
    case OUT_INTERNAL:
        report(&k, "exception", "internal-error", -1);
        break;
    case OUT_CANCELLED:
        fprintf(stderr, "relengd-worker: %s/%u: stopped on the server's word\n", k.task_id,
                k.run_id);
        break;
    }
    if (k.log_fd >= 0)
        close(k.log_fd);
    whttp_fini(&k.http);
    json_decref(t);
}
