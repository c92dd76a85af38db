/* SPDX-License-Identifier: MIT */
/*
 * worker/task.h -- running one claimed task: a fresh task directory, the
 * command with the payload's environment and max run time, the log
 * buffered and sent in chunks by offset, lease renewal, declared artifacts,
 * the report (retried until the server has it). Each task runs on a thread
 * of its own (task_run); the shared flags below are set by signal handlers.
 */
#ifndef RELENGD_WORKER_TASK_H
#define RELENGD_WORKER_TASK_H

#include <signal.h>

#include <jansson.h>

#include "worker/wconf.h"

/* Set on the first SIGTERM/SIGINT: claim no more; running tasks get
   shutdown_grace seconds, then are stopped and reported worker-shutdown. */
extern volatile sig_atomic_t worker_stopping;
/* Set on the second: give up retrying reports too. */
extern volatile sig_atomic_t worker_hard_stop;

/* Runs the task t (a claim answer's task; new reference handed over) to
   its end. Blocking; call on a thread of its own. Never fails: problems are
   reported to the server as the task's result when possible, and printed. */
void task_run(const struct wconf *c, json_t *t);

/* Milliseconds since the epoch, and on a monotonic clock. */
unsigned long long task_wall_ms(void);
unsigned long long task_mono_ms(void);
/* Sleeps ms, waking early when worker_hard_stop is set. */
void task_sleep_ms(int ms);

#endif
