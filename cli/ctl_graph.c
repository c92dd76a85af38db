/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_graph.c -- relengctl's graph and task commands over
 * /api/v1/graph: graph submit FILE|-, graph show ID, graph activate ID
 * PATTERN, and task rerun|cancel|release ID. The `task` group is a plain
 * table (ctl_task_commands) that other parts of the tree may extend with a
 * line. Single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/ctl_table.h"

#define GRAPH_API "/api/v1/graph"

/* Parses global options and exactly n positional arguments (min..max).
   Returns -1 to go on, else the exit code. */
static int args_of(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, int min,
                   int max, const struct option *opts, int (*opt_fn)(struct ctl *, int, void *),
                   void *arg)
{
    int ch;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            return CTL_EXIT_OK;
        if (ch == CTL_OPT_ERROR)
            return CTL_EXIT_USAGE;
        if (!opt_fn || opt_fn(c, ch, arg) != 0)
            return CTL_EXIT_USAGE;
    }
    if (argc - optind < min)
        return ctl_usage_error(c, "missing argument: %s", cmd->args);
    if (argc - optind > max)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind + max]);
    return -1;
}

/* FILE or "-" (stdin) as JSON. NULL after printing why. */
static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                                       : json_load_file(path, JSON_REJECT_DUPLICATES, &je);

    if (!j)
        ctl_fail(CTL_EXIT_USAGE, "%s: not valid JSON: %s (line %d)",
                 strcmp(path, "-") == 0 ? "stdin" : path, je.text, je.line);
    return j;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

/* --------------------------------------------------------------- graph */

static int cmd_graph_submit(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    json_t *body = NULL, *out = NULL;
    int rc = args_of(c, cmd, argc, argv, 1, 1, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    body = load_json(argv[optind]);
    if (!body)
        return CTL_EXIT_USAGE;
    rc = ctl_call(c, "POST", GRAPH_API "/graphs", body, &out);
    if (rc == CTL_EXIT_OK) {
        if (c->json)
            ctl_print_json(out);
        else
            printf("graph %s submitted: %" JSON_INTEGER_FORMAT " tasks\n", str(out, "id"),
                   json_integer_value(json_object_get(out, "tasks")));
    }
    json_decref(body);
    json_decref(out);
    return rc;
}

static void print_counts(const json_t *counts)
{
    const char *k;
    const json_t *v;
    bool first = true;

    json_object_foreach((json_t *)counts, k, v)
    {
        if (json_integer_value(v) == 0)
            continue;
        printf("%s%s %" JSON_INTEGER_FORMAT, first ? "" : ", ", k, json_integer_value(v));
        first = false;
    }
    printf("\n");
}

static int cmd_graph_show(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const char *const hdr[] = {"LABEL", "STATE", "PLATFORM", "RUNS", "WORKER", "TASK"};
    char path[256];
    json_t *g = NULL, *t;
    struct ctl_table *tab = NULL;
    size_t i;
    int rc = args_of(c, cmd, argc, argv, 1, 1, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    snprintf(path, sizeof(path), GRAPH_API "/graphs/%s", argv[optind]);
    rc = ctl_get(c, path, &g);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(g);
        goto out;
    }
    printf("graph %s  %s  %s\n", str(g, "id"), str(g, "state"), str(g, "name"));
    printf("repository %s  revision %s  branch %s  owner %s\n", str(g, "repository"),
           str(g, "revision"), str(g, "branch"), str(g, "owner"));
    if (json_is_integer(json_object_get(g, "durationMs")))
        printf("end to end: %.1f s\n",
               (double)json_integer_value(json_object_get(g, "durationMs")) / 1000.0);
    printf("tasks: ");
    print_counts(json_object_get(g, "counts"));
    tab = ctl_table_new(6, hdr);
    if (!tab) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    json_array_foreach(json_object_get(g, "tasks"), i, t)
    {
        char *cells[6];
        const json_t *lr = json_object_get(t, "lastRun");
        cells[0] = strdup(str(t, "label"));
        cells[1] = strdup(str(t, "state"));
        cells[2] = strdup(str(t, "platform"));
        cells[3] = ctl_cell(json_object_get(t, "runs"));
        cells[4] = strdup(lr ? str(lr, "workerId") : "-");
        cells[5] = strdup(str(t, "id"));
        if (ctl_table_add_owned(tab, cells) != 0) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    ctl_table_print(tab, stdout);
out:
    ctl_table_free(tab);
    json_decref(g);
    return rc;
}

static int cmd_graph_activate(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    char path[256];
    json_t *body, *out = NULL, *id;
    size_t i;
    int rc = args_of(c, cmd, argc, argv, 2, 2, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    snprintf(path, sizeof(path), GRAPH_API "/graphs/%s/activate", argv[optind]);
    body = json_pack("{s:s}", "pattern", argv[optind + 1]);
    rc = ctl_call(c, "POST", path, body, &out);
    if (rc == CTL_EXIT_OK) {
        if (c->json) {
            ctl_print_json(out);
        } else {
            printf("%zu tasks activated\n", json_array_size(json_object_get(out, "tasks")));
            json_array_foreach(json_object_get(out, "tasks"), i, id)
                printf("%s\n", json_string_value(id));
        }
    }
    json_decref(body);
    json_decref(out);
    return rc;
}

/* ---------------------------------------------------------------- task */

static int task_op(struct ctl *c, const char *id, const char *verb, const json_t *body)
{
    char path[256];
    json_t *out = NULL;
    int rc;

    snprintf(path, sizeof(path), GRAPH_API "/tasks/%s/%s", id, verb);
    rc = ctl_call(c, "POST", path, body, &out);
    if (rc == CTL_EXIT_OK) {
        if (c->json)
            ctl_print_json(out);
        else
            printf("task %s (%s): %s\n", str(out, "id"), str(out, "label"), str(out, "state"));
    }
    json_decref(out);
    return rc;
}

struct rerun_opts {
    const char *payload_file;
};

static int rerun_opt(struct ctl *c, int ch, void *arg)
{
    struct rerun_opts *o = arg;

    (void)c;
    if (ch != 'p')
        return -1;
    o->payload_file = optarg;
    return 0;
}

static int cmd_task_rerun(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"payload", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    struct rerun_opts o = {0};
    json_t *body = NULL, *payload;
    int rc = args_of(c, cmd, argc, argv, 1, 1, opts, rerun_opt, &o);

    if (rc >= 0)
        return rc;
    if (o.payload_file) {
        payload = load_json(o.payload_file);
        if (!payload)
            return CTL_EXIT_USAGE;
        body = json_pack("{s:o}", "payload", payload);
    }
    rc = task_op(c, argv[optind], "rerun", body);
    json_decref(body);
    return rc;
}

static int cmd_task_cancel(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    int rc = args_of(c, cmd, argc, argv, 1, 1, NULL, NULL, NULL);

    if (rc >= 0)
        return rc;
    return task_op(c, argv[optind], "cancel", NULL);
}

static int release_opt(struct ctl *c, int ch, void *arg)
{
    (void)c;
    if (ch != 'F')
        return -1;
    *(bool *)arg = true;
    return 0;
}

static int cmd_task_release(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"failed", no_argument, NULL, 'F'}, {NULL, 0, NULL, 0}};
    bool failed = false;
    json_t *body;
    int rc = args_of(c, cmd, argc, argv, 1, 1, opts, release_opt, &failed);

    if (rc >= 0)
        return rc;
    body = json_pack("{s:s}", "state", failed ? "failed" : "completed");
    rc = task_op(c, argv[optind], "release", body);
    json_decref(body);
    return rc;
}

const struct ctl_command ctl_graph_commands[] = {
    {"submit", "FILE|-", "Submit a task graph (JSON) from a file or stdin.",
     "The graph is validated all or nothing; on errors every problem is printed\n"
     "and nothing is stored (exit status 1). Needs the scope graph:submit.\n",
     cmd_graph_submit, NULL},
    {"show", "ID", "Show a graph: state, counts by state, and every task.",
     "Columns: label, state, platform, runs, worker of the latest run, task id.\n", cmd_graph_show,
     NULL},
    {"activate", "ID PATTERN", "Activate the graph's inactive tasks matching a label glob.",
     "Backfill: e.g. 'test-*' activates every inactive task whose label starts\n"
     "with test-. Needs the scope graph:operate.\n",
     cmd_graph_activate, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const struct ctl_command ctl_task_commands[] = {
    {"rerun", "ID [--payload FILE|-]", "Rerun a resolved task (optionally with an edited payload).",
     "Dependents blocked only by this task's failure run again if the rerun\n"
     "completes; dependents that already ran keep their results.\n"
     "Needs the scope graph:operate.\n",
     cmd_task_rerun, NULL},
    {"cancel", "ID", "Cancel a task that has not resolved.",
     "A claimed run is withdrawn from its worker. Needs the scope graph:operate.\n",
     cmd_task_cancel, NULL},
    {"release", "ID [--failed]", "Mark a waiting breakpoint finished (completed, or --failed).",
     "Needs the scope graph:operate.\n", cmd_task_release, NULL},
    {"log", "ID [--run N] [--follow]", "Print a task's log (latest run), or follow it live.", NULL,
     ctl_task_log, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
