/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/dispatch_util.c -- worker processes and API helpers for the
 * dispatch end-to-end tests (see dispatch_util.h).
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/dispatch_util.h"

extern char **environ;

void dw_start(struct dworker *w, struct e2e_daemon *d, const char *url, const char *type,
              const char *id, int capacity, const char *const *env)
{
    char bin[600], cap[16], envs[32][300], o_id[] = "--worker-id", o_cap[] = "--capacity",
                                           o_dir[] = "--work-dir";
    char *argv[16], *envp[128];
    size_t ne = 0, i;
    int fd;

    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    snprintf(w->dir, sizeof(w->dir), "%s/work-%s", d->dir, id);
    snprintf(w->log_path, sizeof(w->log_path), "%s/worker-%s.log", d->dir, id);
    snprintf(bin, sizeof(bin), "%s/worker/relengd-worker", e2e_builddir());
    snprintf(cap, sizeof(cap), "%d", capacity);
    for (char **e = environ; *e && ne < 100; e++)
        if (strncmp(*e, "RELENGD_", 8) != 0)
            envp[ne++] = *e;
    snprintf(envs[0], sizeof(envs[0]), "RELENGD_WORKER_URL=%s", url ? url : d->base_url);
    snprintf(envs[1], sizeof(envs[1]), "RELENGD_WORKER_TOKEN=%s", d->admin_token);
    snprintf(envs[2], sizeof(envs[2]), "RELENGD_WORKER_WORKER_TYPE=%s", type);
    snprintf(envs[3], sizeof(envs[3]), "RELENGD_WORKER_MAX_BACKOFF_MS=200");
    snprintf(envs[4], sizeof(envs[4]), "RELENGD_WORKER_WAIT=5");
    snprintf(envs[5], sizeof(envs[5]), "RELENGD_WORKER_LOG_INTERVAL_MS=100");
    for (i = 0; i < 6; i++)
        envp[ne++] = envs[i];
    for (i = 0; env && env[i] && ne < 126; i++)
        envp[ne++] = (char *)env[i];
    envp[ne] = NULL;
    argv[0] = bin;
    argv[1] = o_id;
    argv[2] = w->id;
    argv[3] = o_cap;
    argv[4] = cap;
    argv[5] = o_dir;
    argv[6] = w->dir;
    argv[7] = NULL;
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        fd = open(w->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve(bin, argv, envp);
        _exit(127);
    }
}

void dw_kill9(struct dworker *w)
{
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        w->pid = 0;
    }
}

int dw_stop(struct dworker *w, int timeout_ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)timeout_ms;
    int status;

    if (w->pid <= 0)
        return -1;
    kill(w->pid, SIGTERM);
    while (e2e_now_ms() < end) {
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            w->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        e2e_sleep_ms(20);
    }
    dw_kill9(w);
    return -1;
}

void dw_dump(const struct dworker *w)
{
    char *text = e2e_read_file(w->log_path, NULL);
    fprintf(stderr, "---- worker %s ----\n%s---- end of worker %s ----\n", w->id, text ? text : "",
            w->id);
    free(text);
}

/* The JSON answer of a GET or POST as admin; asserts status want unless 0. */
static json_t *dx_call(struct e2e_daemon *d, bool post, const char *path, const char *json,
                       int want)
{
    struct e2e_resp r;
    json_t *out;

    if (post)
        e2e_post(d, path, d->admin_token, json, &r);
    else
        e2e_get(d, path, d->admin_token, &r);
    if (want && r.status != want)
        fprintf(stderr, "%s %s -> %d %s\n", post ? "POST" : "GET", path, r.status, r.body);
    if (want)
        assert_int_equal(r.status, want);
    out = json_incref(r.json);
    e2e_resp_free(&r);
    return out;
}

json_t *dx_post(struct e2e_daemon *d, const char *path, const char *json, int want)
{
    return dx_call(d, true, path, json, want);
}

json_t *dx_get(struct e2e_daemon *d, const char *path, int want)
{
    return dx_call(d, false, path, NULL, want);
}

json_t *dx_wait_str(struct e2e_daemon *d, const char *path, const char *key, const char *value,
                    int timeout_ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        json_t *j = dx_get(d, path, 0);
        const char *v = json_string_value(json_object_get(j, key));
        if (v && strcmp(v, value) == 0)
            return j;
        if (e2e_now_ms() >= end) {
            fprintf(stderr, "%s: %s is %s, not %s after %d ms\n", path, key, v ? v : "(none)",
                    value, timeout_ms);
            json_decref(j);
            return NULL;
        }
        json_decref(j);
        e2e_sleep_ms(20);
    }
}

bool dx_wait_waiting(struct e2e_daemon *d, const char *id, int timeout_ms)
{
    uint64_t end = e2e_now_ms() + (uint64_t)timeout_ms;
    char path[200];

    snprintf(path, sizeof(path), "/api/v1/dispatch/workers/%s", id);
    for (;;) {
        json_t *j = dx_get(d, path, 0);
        bool waiting = json_is_true(json_object_get(j, "waiting"));
        json_decref(j);
        if (waiting)
            return true;
        if (e2e_now_ms() >= end)
            return false;
        e2e_sleep_ms(10);
    }
}
