/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl.h -- what every relengctl command gets: the client context (server
 * URL, token, output mode), the command table entry type, option parsing
 * shared by all commands, and error reporting with relengctl's exit codes.
 * Single-threaded.
 *
 * Adding commands (for module issues). Write cli/ctl_<module>.c that defines
 *
 *     const struct ctl_command ctl_<module>_commands[] = {
 *         {"list", "[--state S]", "List ...", "Details ...", cmd_list, NULL},
 *         {NULL, NULL, NULL, NULL, NULL, NULL},
 *     };
 *
 * declare it below, add one group entry {"<module>", "COMMAND", "...", NULL,
 * NULL, ctl_<module>_commands} to the top-level table in cli/relengctl.c and
 * the file to cli_relengctl_SOURCES in Makefile.am. A command's run function
 * gets argv with argv[0] = its own name, parses its options with
 * ctl_getopt(), calls the API with ctl_call()/ctl_get() and prints either a
 * table (cli/ctl_table.h) or, with --json, the server's JSON (ctl_print_json).
 */
#ifndef RELENGD_CTL_H
#define RELENGD_CTL_H

#include <getopt.h>
#include <stdbool.h>

#include <jansson.h>

#include "cli/ctl_http.h"

/* Exit codes, part of relengctl's interface for scripts. */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_SERVER = 1, /* the server answered with an error (or nonsense) */
    CTL_EXIT_USAGE = 2,  /* bad command line, unreadable token file */
    CTL_EXIT_CONN = 3,   /* could not reach the server */
};

struct ctl_command;

/* The client context, filled from the environment and global options. */
struct ctl {
    const char *url;        /* --url, RELENGD_URL, default http://127.0.0.1:8080 */
    const char *token;      /* --token, RELENGD_TOKEN */
    const char *token_file; /* --token-file, RELENGD_TOKEN_FILE (used when no token) */
    bool json;              /* --json: print the server's JSON */
    char *token_buf;        /* owned: the token read from token_file */
    struct ctl_http http;   /* built by ctl_connect() */
    bool connected;
    const char *path; /* "relengctl token create": for help and errors */
};

/* One entry of a command table; a table ends with an all-NULL entry. A
   leaf has run; a group has subs (and run NULL). */
struct ctl_command {
    const char *name;
    const char *args;    /* synopsis after the name: "NAME --scope S [--expires 30d]" */
    const char *summary; /* one line, shown in the parent's command list */
    const char *help;    /* more lines (options, output), or NULL */
    int (*run)(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
    const struct ctl_command *subs;
};

/* Command groups defined in other files go here. */
extern const struct ctl_command ctl_graph_commands[];  /* cli/ctl_graph.c */
extern const struct ctl_command ctl_task_commands[];   /* cli/ctl_graph.c */
extern const struct ctl_command ctl_worker_commands[]; /* cli/ctl_dispatch.c */
/* "task log ID [--run N] [--follow]", in the task group (cli/ctl_dispatch.c). */
int ctl_task_log(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
/* The partials group (cli/ctl_partials.c). */
extern const struct ctl_command ctl_partials_commands[];
/* The proxy group: stats, purge (cli/ctl_proxy.c). */
extern const struct ctl_command ctl_proxy_commands[];

/* Returned by ctl_getopt() besides option values. */
#define CTL_OPT_END (-1)
#define CTL_OPT_HELP (-2)  /* --help was given: help was printed, return CTL_EXIT_OK */
#define CTL_OPT_ERROR (-3) /* a usage error was printed, return CTL_EXIT_USAGE */

/* getopt_long over a command's argv (argv[0] = command name) with the
   command's own long options (NULL-terminated array, values > 0 and < 256)
   plus the global ones (--url, --token, --token-file, --json, --help), which
   it applies to c itself. Returns an option value with optarg set, or one of
   CTL_OPT_*. Afterwards optind is the first positional argument (options and
   positional arguments may be mixed). */
int ctl_getopt(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv,
               const struct option *opts);

/* Prints the help of cmd (its synopsis, help text and sub-commands) to stdout. */
void ctl_help(const struct ctl *c, const struct ctl_command *cmd);

/* Prints "relengctl: <message>" and a hint to run --help to stderr; returns
   CTL_EXIT_USAGE. */
int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "relengctl: <message>" to stderr and returns code. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolves the token (reading the token file) and fills c->http. Returns
   CTL_EXIT_OK or CTL_EXIT_USAGE (message printed). Idempotent. */
int ctl_connect(struct ctl *c);

/* Sends a request (body may be NULL; borrowed) and checks the answer: on
   2xx stores the parsed JSON body in *out (new reference; json null for an
   empty body) and returns CTL_EXIT_OK; on an HTTP error prints the server's
   message and returns CTL_EXIT_SERVER; on a transport failure prints it and
   returns CTL_EXIT_CONN. out may be NULL. */
int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body, json_t **out);
static inline int ctl_get(struct ctl *c, const char *path, json_t **out)
{
    return ctl_call(c, "GET", path, NULL, out);
}

/* Prints an HTTP error answer: the server's {"error":{"code","message"}} if
   present, else the status line and the start of the body. Returns
   CTL_EXIT_SERVER. */
int ctl_report_http_error(const struct ctl_http_resp *resp);

/* Prints v as indented JSON and a newline to stdout. */
void ctl_print_json(const json_t *v);

/* A table cell for a JSON value: strings as they are, numbers, true/false,
   null as "-", arrays of scalars comma-joined, objects as compact JSON.
   Returns a new string (free()). */
char *ctl_cell(const json_t *v);

#endif
