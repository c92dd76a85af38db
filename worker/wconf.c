/* SPDX-License-Identifier: MIT */
/*
 * worker/wconf.c -- relengd-worker's settings (see wconf.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/wconf.h"

void wconf_defaults(struct wconf *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:8080");
    if (gethostname(c->worker_id, sizeof(c->worker_id) - 1) != 0 || !c->worker_id[0])
        snprintf(c->worker_id, sizeof(c->worker_id), "worker");
    for (char *p = c->worker_id; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
            *p = '-';
    c->capacity = 1;
    snprintf(c->work_dir, sizeof(c->work_dir), "relengd-work");
    c->wait_s = 20;
    c->log_interval_ms = 1000;
    c->log_chunk = 64 * 1024;
    c->max_backoff_ms = 5000;
    c->shutdown_grace_s = 0;
    c->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(c->platform, sizeof(c->platform), "linux");
}

static int parse_int(const char *v, long min, long max, int *out)
{
    char *end = NULL;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = (int)n;
    return 0;
}

static int set_str(char *dst, size_t len, const char *v)
{
    if (strlen(v) >= len)
        return -1;
    snprintf(dst, len, "%s", v);
    return 0;
}

int wconf_set(struct wconf *c, const char *key, const char *v, char *err, size_t err_len)
{
    int rc = -1;
    char *end = NULL;

    if (strcmp(key, "url") == 0)
        rc = set_str(c->url, sizeof(c->url), v);
    else if (strcmp(key, "token") == 0)
        rc = set_str(c->token, sizeof(c->token), v);
    else if (strcmp(key, "token_file") == 0) {
        FILE *f = fopen(v, "r");
        if (f) {
            if (fgets(c->token, sizeof(c->token), f)) {
                c->token[strcspn(c->token, "\r\n")] = '\0';
                rc = 0;
            }
            fclose(f);
        }
    } else if (strcmp(key, "worker_type") == 0)
        rc = set_str(c->worker_type, sizeof(c->worker_type), v);
    else if (strcmp(key, "worker_id") == 0)
        rc = set_str(c->worker_id, sizeof(c->worker_id), v);
    else if (strcmp(key, "capacity") == 0)
        rc = parse_int(v, 1, 64, &c->capacity);
    else if (strcmp(key, "work_dir") == 0)
        rc = set_str(c->work_dir, sizeof(c->work_dir), v);
    else if (strcmp(key, "wait") == 0) {
        c->wait_s = strtod(v, &end);
        rc = end != v && !*end && c->wait_s >= 0 && c->wait_s <= 20 ? 0 : -1;
    } else if (strcmp(key, "log_interval_ms") == 0)
        rc = parse_int(v, 10, 60000, &c->log_interval_ms);
    else if (strcmp(key, "log_chunk") == 0)
        rc = parse_int(v, 1024, 4 << 20, &c->log_chunk);
    else if (strcmp(key, "max_backoff_ms") == 0)
        rc = parse_int(v, 10, 600000, &c->max_backoff_ms);
    else if (strcmp(key, "shutdown_grace") == 0)
        rc = parse_int(v, 0, 86400, &c->shutdown_grace_s);
    else if (strcmp(key, "platform") == 0)
        rc = set_str(c->platform, sizeof(c->platform), v);
    else if (strcmp(key, "cores") == 0)
        rc = parse_int(v, 1, 4096, &c->cores);
    else if (strcmp(key, "labels") == 0)
        rc = set_str(c->labels, sizeof(c->labels), v);
    else if (strcmp(key, "once") == 0) {
        c->once = strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0;
        rc = c->once || strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ? 0
                                                                                               : -1;
    } else {
        snprintf(err, err_len, "unknown setting '%s'", key);
        return -1;
    }
    if (rc != 0)
        snprintf(err, err_len, "bad value for %s: '%s'", key, v);
    return rc;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int wconf_load_file(struct wconf *c, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    char line[1024], sub[256];
    int n = 0, rc = 0;

    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        char *s = trim(line), *eq;
        n++;
        if (!*s || *s == '#' || *s == ';' || *s == '[')
            continue;
        eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, err_len, "%s:%d: expected key = value", path, n);
            rc = -1;
            break;
        }
        *eq = '\0';
        rc = wconf_set(c, trim(s), trim(eq + 1), sub, sizeof(sub));
        if (rc != 0)
            snprintf(err, err_len, "%s:%d: %s", path, n, sub);
    }
    fclose(f);
    return rc;
}

int wconf_load_env(struct wconf *c, char *const *envp, char *err, size_t err_len)
{
    static const char prefix[] = "RELENGD_WORKER_";

    for (; envp && *envp; envp++) {
        char key[64];
        const char *eq = strchr(*envp, '=');
        size_t klen;

        if (strncmp(*envp, prefix, sizeof(prefix) - 1) != 0 || !eq)
            continue;
        klen = (size_t)(eq - *envp) - (sizeof(prefix) - 1);
        if (klen == 0 || klen >= sizeof(key))
            continue;
        for (size_t i = 0; i < klen; i++)
            key[i] = (char)tolower((unsigned char)(*envp)[sizeof(prefix) - 1 + i]);
        key[klen] = '\0';
        if (strcmp(key, "config") == 0)
            continue;
        if (wconf_set(c, key, eq + 1, err, err_len) != 0)
            return -1;
    }
    return 0;
}

int wconf_check(const struct wconf *c, char *err, size_t err_len)
{
    if (!c->worker_type[0]) {
        snprintf(err, err_len, "worker_type is required");
        return -1;
    }
    if (!c->token[0]) {
        snprintf(err, err_len, "token (or token_file) is required");
        return -1;
    }
    if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        snprintf(err, err_len, "url must start with http:// or https://");
        return -1;
    }
    return 0;
}
