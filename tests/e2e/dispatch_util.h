/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/dispatch_util.h -- helpers shared by the dispatch end-to-end
 * tests: real relengd-worker processes (started, killed, stopped) and small
 * calls to the dispatch and graph APIs. Every wait is bounded.
 */
#ifndef RELENGD_E2E_DISPATCH_UTIL_H
#define RELENGD_E2E_DISPATCH_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "tests/e2e/harness.h"

struct dworker {
    pid_t pid;
    char id[64];
    char dir[400];      /* its work directory */
    char log_path[420]; /* its stdout and stderr */
};

/* Starts relengd-worker for d (type, id, capacity) with its work directory
   under d->dir; extra "KEY=value" env (RELENGD_WORKER_*) may be NULL.
   url: NULL for d->base_url. */
void dw_start(struct dworker *w, struct e2e_daemon *d, const char *url, const char *type,
              const char *id, int capacity, const char *const *env);
/* kill -9 (the worker only; its task processes live on). */
void dw_kill9(struct dworker *w);
/* SIGTERM, then waits (bounded) for the exit; returns the status or -1. */
int dw_stop(struct dworker *w, int timeout_ms);
/* Prints the worker's output on stderr. */
void dw_dump(const struct dworker *w);

/* POST path with json body as admin; asserts want (0: any) and returns the
   answer's JSON (new ref, may be NULL). */
json_t *dx_post(struct e2e_daemon *d, const char *path, const char *json, int want);
json_t *dx_get(struct e2e_daemon *d, const char *path, int want);
/* Waits until GET path's JSON has member key == value (a string), or
   timeout_ms; returns the last JSON (new ref) or NULL on timeout. */
json_t *dx_wait_str(struct e2e_daemon *d, const char *path, const char *key, const char *value,
                    int timeout_ms);
/* Waits until worker id shows "waiting": true in /workers. */
bool dx_wait_waiting(struct e2e_daemon *d, const char *id, int timeout_ms);

#endif
