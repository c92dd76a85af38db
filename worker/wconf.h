/* SPDX-License-Identifier: MIT */
/*
 * worker/wconf.h -- relengd-worker's configuration: defaults, then a
 * key = value file, then RELENGD_WORKER_<KEY> environment variables, then
 * command-line options (each wins over the one before). Pure parsing, no
 * I/O besides reading the file. Single-threaded (main, before anything runs).
 */
#ifndef RELENGD_WORKER_WCONF_H
#define RELENGD_WORKER_WCONF_H

#include <stdbool.h>
#include <stddef.h>

struct wconf {
    char url[512];        /* server, e.g. http://127.0.0.1:8080 */
    char token[256];      /* bearer token with worker:TYPE */
    char worker_type[65]; /* e.g. linux64-build */
    char worker_id[65];   /* default: the host name */
    int capacity;         /* tasks at once */
    char work_dir[1024];  /* tasks/ and caches/ live here */
    double wait_s;        /* long-poll of a claim (0..20) */
    int log_interval_ms;  /* a log chunk at most this often ... */
    int log_chunk;        /* ... or when this many bytes are buffered */
    int max_backoff_ms;   /* retries back off up to this */
    int shutdown_grace_s; /* after SIGTERM, running tasks get this long */
    char platform[65];    /* capabilities */
    int cores;
    char labels[512]; /* comma-separated */
    bool once;        /* exit after the first batch of tasks (tests, cron) */
};

/* Fills c with the defaults. */
void wconf_defaults(struct wconf *c);
/* Applies one setting; 0, or -1 with a sentence in err. */
int wconf_set(struct wconf *c, const char *key, const char *value, char *err, size_t err_len);
/* Reads a key = value file ('#' comments). 0, or -1 with file:line in err. */
int wconf_load_file(struct wconf *c, const char *path, char *err, size_t err_len);
/* Applies RELENGD_WORKER_<KEY> variables from envp. */
int wconf_load_env(struct wconf *c, char *const *envp, char *err, size_t err_len);
/* Checks that what is required is there. 0, or -1 with err. */
int wconf_check(const struct wconf *c, char *err, size_t err_len);

#endif
