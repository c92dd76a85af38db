/* SPDX-License-Identifier: MIT */
/*
 * core/daemon.h -- the life of the process: start everything in order or
 * nothing at all, serve until SIGTERM/SIGINT, reload on SIGHUP, stop in
 * reverse order within a bounded time. Main (loop) thread.
 */
#ifndef RELENGD_DAEMON_H
#define RELENGD_DAEMON_H

#include "core/core_conf.h"

/* Runs the daemon in the foreground; returns the process exit status
   (0 after a clean stop, 1 when start-up was refused). */
int daemon_run(const struct core_cli *cli);

/* Parses the core and module configuration and opens every module file
   without starting anything; prints what is wrong. Returns the exit status. */
int daemon_check_config(const struct core_cli *cli);

/* Prints a commented sample of module name's main-section keys (loads the
   module file only). Returns the exit status. */
int daemon_print_sample(const struct core_cli *cli, const char *name);

#endif
