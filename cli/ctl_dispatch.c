/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_dispatch.c -- relengctl's dispatch commands: worker list,
 * worker quarantine, worker unquarantine, and task log (exported as
 * ctl_task_log for the task group of cli/ctl_graph.c). Single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cli/ctl.h"
#include "cli/ctl_table.h"

#define FOLLOW_WAIT "20" /* seconds one tail request may wait */

/* Parses argv's options with handler fn; the positional count must be in
   min..max. -1 to go on, else an exit code (help printed, usage error). */
static int parse_args(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, int min,
                      int max, const struct option *opts,
                      int (*fn)(int ch, const char *arg, void *ctx), void *ctx)
{
    int ch;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            return CTL_EXIT_OK;
        if (ch == CTL_OPT_ERROR)
            return CTL_EXIT_USAGE;
        if (!fn || fn(ch, optarg, ctx) != 0)
            return ctl_usage_error(c, "bad value for an option: %s", optarg ? optarg : "");
    }
    if (argc - optind < min)
        return ctl_usage_error(c, "missing argument: %s", cmd->args);
    if (argc - optind > max)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind + max]);
    return -1;
}

/* "30s", "5m", "2h", "7d" (or plain seconds) in ms; -1 if malformed. */
static long long duration_ms(const char *s)
{
    char *end = NULL;
    long long n;

    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || end == s || n <= 0)
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        n *= 1000;
        break;
    case 'm':
        n *= 60 * 1000;
        break;
    case 'h':
        n *= 3600 * 1000;
        break;
    case 'd':
        n *= 86400 * 1000;
        break;
    default:
        return -1;
    }
    return end[0] && end[1] ? -1 : n;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* -------------------------------------------------------------- workers */

static int cmd_worker_list(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const char *const hdr[] = {"WORKER", "TYPE",       "STATE",       "CURRENT",
                                      "SPEED",  "LAST LABEL", "LAST BRANCH", "QUARANTINE"};
    struct ctl_table *t = NULL;
    const json_t *w;
    json_t *out = NULL;
    size_t i;
    int rc = parse_args(c, cmd, argc, argv, 0, 0, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    rc = ctl_get(c, "/api/v1/dispatch/workers", &out);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(out);
        json_decref(out);
        return CTL_EXIT_OK;
    }
    t = ctl_table_new(8, hdr);
    json_array_foreach(json_object_get(out, "workers"), i, w)
    {
        const json_t *cur = json_object_get(w, "current"), *q = json_object_get(w, "quarantine");
        char speed[32], current[200] = "-", quarantine[300] = "-";
        const char *state = json_is_true(json_object_get(w, "waiting"))  ? "waiting"
                            : json_array_size(cur) > 0                   ? "busy"
                            : json_is_true(json_object_get(w, "online")) ? "online"
                                                                         : "offline";
        size_t k, len = 0;
        const json_t *run;

        json_array_foreach(cur, k, run) len +=
            (size_t)snprintf(current + len, len < sizeof(current) ? sizeof(current) - len : 0,
                             "%s%s/%lld", k ? "," : "", str(run, "taskId"),
                             (long long)json_integer_value(json_object_get(run, "runId")));
        snprintf(speed, sizeof(speed), "%.2f", json_number_value(json_object_get(w, "speed")));
        if (json_is_object(q))
            snprintf(quarantine, sizeof(quarantine), "%s (by %s)", str(q, "reason"), str(q, "by"));
        const char *cells[] = {str(w, "workerId"),  str(w, "workerType"), state,     current, speed,
                               str(w, "lastLabel"), str(w, "lastBranch"), quarantine};
        ctl_table_add(t, cells);
    }
    if (ctl_table_rows(t) == 0)
        printf("No workers have claimed yet.\n");
    else
        ctl_table_print(t, stdout);
    ctl_table_free(t);
    json_decref(out);
    return CTL_EXIT_OK;
}

struct quarantine_opts {
    const char *reason;
    long long for_ms;
};

static int quarantine_opt(int ch, const char *arg, void *ctx)
{
    struct quarantine_opts *o = ctx;

    if (ch == 'r') {
        o->reason = arg;
        return 0;
    }
    if (ch == 'f') {
        o->for_ms = duration_ms(arg);
        return o->for_ms > 0 ? 0 : -1;
    }
    return -1;
}

static char *worker_path(const char *id, const char *suffix)
{
    char *esc = curl_easy_escape(NULL, id, 0), *path = NULL;

    if (esc && asprintf(&path, "/api/v1/dispatch/workers/%s%s", esc, suffix) < 0)
        path = NULL;
    curl_free(esc);
    return path;
}

static int cmd_worker_quarantine(struct ctl *c, const struct ctl_command *cmd, int argc,
                                 char **argv)
{
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {"for", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    struct quarantine_opts o = {0};
    json_t *body = NULL, *out = NULL;
    char *path = NULL;
    int rc = parse_args(c, cmd, argc, argv, 1, 1, opts, quarantine_opt, &o);

    if (rc >= 0)
        return rc;
    if (!o.reason || !o.reason[0])
        return ctl_usage_error(c, "--reason is required (it is shown with the worker)");
    body = json_pack("{s:s}", "reason", o.reason);
    if (o.for_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        json_object_set_new(
            body, "until",
            json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + o.for_ms));
    }
    path = worker_path(argv[optind], "/quarantine");
    rc = path ? ctl_call(c, "POST", path, body, &out) : ctl_fail(CTL_EXIT_USAGE, "out of memory");
    if (rc == CTL_EXIT_OK) {
        if (c->json)
            ctl_print_json(out);
        else
            printf("Worker %s is quarantined: its claims get no tasks.\n", argv[optind]);
    }
    free(path);
    json_decref(body);
    json_decref(out);
    return rc;
}

static int cmd_worker_unquarantine(struct ctl *c, const struct ctl_command *cmd, int argc,
                                   char **argv)
{
    json_t *out = NULL;
    char *path = NULL;
    int rc = parse_args(c, cmd, argc, argv, 1, 1, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    path = worker_path(argv[optind], "/quarantine");
    rc = path ? ctl_call(c, "DELETE", path, NULL, &out) : ctl_fail(CTL_EXIT_USAGE, "out of memory");
    if (rc == CTL_EXIT_OK) {
        if (c->json)
            ctl_print_json(out);
        else
            printf("Worker %s may claim again.\n", argv[optind]);
    }
    free(path);
    json_decref(out);
    return rc;
}

const struct ctl_command ctl_worker_commands[] = {
    {"list", "", "List the workers: state, current tasks, speed, last label, quarantine.",
     "STATE is waiting (long-polling for work), busy, online or offline.\n", cmd_worker_list, NULL},
    {"quarantine", "ID --reason TEXT [--for 2h]", "Quarantine a worker: its claims get no tasks.",
     "--for ends the quarantine after a duration (30s, 5m, 2h, 7d); without it\n"
     "the quarantine lasts until 'worker unquarantine'. Needs dispatch:admin.\n",
     cmd_worker_quarantine, NULL},
    {"unquarantine", "ID", "Lift a worker's quarantine.",
     "Also resets its count of consecutive exceptions. Needs dispatch:admin.\n",
     cmd_worker_unquarantine, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------- task log */

struct log_opts {
    bool follow;
    long long run;
};

static int log_opt(int ch, const char *arg, void *ctx)
{
    struct log_opts *o = ctx;
    char *end = NULL;

    if (ch == 'f') {
        o->follow = true;
        return 0;
    }
    if (ch == 'r') {
        errno = 0;
        o->run = strtoll(arg, &end, 10);
        return errno || end == arg || *end || o->run < 0 ? -1 : 0;
    }
    return -1;
}

/* The run to show and its state: *run when >= 0, else the task's latest
   run in dispatch (then stored in *run). *state is malloc'd. */
static int run_state(struct ctl *c, const char *task_id, long long *run, char **state)
{
    json_t *out = NULL;
    char *esc = curl_easy_escape(NULL, task_id, 0), *path = NULL;
    const json_t *found;
    int rc;

    if (!esc)
        return ctl_fail(CTL_EXIT_USAGE, "out of memory");
    if (*run >= 0)
        rc = asprintf(&path, "/api/v1/dispatch/runs/%s/%lld", esc, *run);
    else
        rc = asprintf(&path, "/api/v1/dispatch/runs?taskId=%s&limit=1", esc);
    curl_free(esc);
    if (rc < 0)
        return ctl_fail(CTL_EXIT_USAGE, "out of memory");
    rc = ctl_get(c, path, &out);
    free(path);
    if (rc != CTL_EXIT_OK)
        return rc;
    found = *run >= 0 ? out : json_array_get(json_object_get(out, "runs"), 0);
    if (!found) {
        json_decref(out);
        return ctl_fail(CTL_EXIT_SERVER, "task %s has no runs in dispatch (not pending yet?)",
                        task_id);
    }
    *run = json_integer_value(json_object_get(found, "runId"));
    *state = strdup(str(found, "state"));
    json_decref(out);
    return *state ? CTL_EXIT_OK : ctl_fail(CTL_EXIT_USAGE, "out of memory");
}

/* One GET of the log (whole, or from offset with a wait); writes the bytes. */
static int log_fetch(struct ctl *c, const char *base, long long offset, bool tail, size_t *got)
{
    struct ctl_http_resp resp = {0};
    char path[400], err[256] = "";
    int rc;

    if (tail)
        snprintf(path, sizeof(path), "%s?offset=%lld&wait=" FOLLOW_WAIT, base, offset);
    else
        snprintf(path, sizeof(path), "%s", base);
    rc = ctl_http_request(&c->http, "GET", path, NULL, &resp, err, sizeof(err));
    if (rc != CTL_HTTP_OK) {
        rc = ctl_fail(CTL_EXIT_CONN, "%s", err);
    } else if (resp.status != 200) {
        rc = ctl_report_http_error(&resp);
    } else {
        fwrite(resp.body, 1, resp.body_len, stdout);
        fflush(stdout);
        *got = resp.body_len;
        rc = CTL_EXIT_OK;
    }
    ctl_http_resp_fini(&resp);
    return rc;
}

static bool run_over(const char *state)
{
    return strcmp(state, "resolved") == 0 || strcmp(state, "cancelled") == 0;
}

int ctl_task_log(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"run", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    struct log_opts o = {.run = -1};
    char base[300], *state = NULL, *esc = NULL;
    long long offset = 0;
    size_t got = 0;
    int rc = parse_args(c, cmd, argc, argv, 1, 1, opts, log_opt, &o);

    if (rc >= 0)
        return rc;
    rc = ctl_connect(c);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = run_state(c, argv[optind], &o.run, &state);
    if (rc != CTL_EXIT_OK)
        return rc;
    esc = curl_easy_escape(NULL, argv[optind], 0);
    snprintf(base, sizeof(base), "/api/v1/dispatch/runs/%s/%lld/log", esc ? esc : "", o.run);
    curl_free(esc);
    if (!o.follow) {
        rc = log_fetch(c, base, 0, false, &got);
        free(state);
        return rc;
    }
    /* Follow: long-polls by offset until the run is over and drained. */
    c->http.timeout_ms = 60000;
    for (;;) {
        rc = log_fetch(c, base, offset, true, &got);
        if (rc != CTL_EXIT_OK || got > 0) {
            offset += (long long)got;
            if (rc != CTL_EXIT_OK)
                break;
            continue;
        }
        free(state);
        state = NULL;
        rc = run_state(c, argv[optind], &o.run, &state);
        if (rc != CTL_EXIT_OK)
            break;
        if (run_over(state)) {
            rc = log_fetch(c, base, offset, true, &got); /* whatever came last */
            break;
        }
    }
    free(state);
    return rc;
}
