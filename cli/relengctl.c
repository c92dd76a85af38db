/* SPDX-License-Identifier: MIT */
/*
 * cli/relengctl.c -- relengctl, the relengd JSON API from a shell: global
 * options, the command table and the core commands (status, whoami, events,
 * token create|list|revoke). Tables for people, --json for scripts; exit
 * codes in cli/ctl.h. Module issues add command groups (see cli/ctl.h).
 * Single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cli/ctl.h"
#include "cli/ctl_table.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static const char *const global_help =
    "Options (before or after the command):\n"
    "  --url URL          relengd's address (env RELENGD_URL; default " DEFAULT_URL ")\n"
    "  --token TOKEN      API token (env RELENGD_TOKEN)\n"
    "  --token-file FILE  read the token from FILE's first line (env RELENGD_TOKEN_FILE)\n"
    "  --json             print the server's JSON instead of tables\n"
    "  -h, --help         show help (\"relengctl COMMAND --help\" for one command)\n"
    "  --version          show relengctl's version\n"
    "\n"
    "Exit status: 0 done; 1 the server answered with an error (its message is\n"
    "printed on stderr); 2 bad usage; 3 the server could not be reached.\n";

/* ------------------------------------------------------------ reporting */

int ctl_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("relengctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    fputs("relengctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", c->path ? c->path : "relengctl");
    return CTL_EXIT_USAGE;
}

int ctl_report_http_error(const struct ctl_http_resp *resp)
{
    const char *code = NULL;
    const char *msg = ctl_http_error_message(resp, &code);

    if (msg) {
        fprintf(stderr, "relengctl: %s (HTTP %ld%s%s)\n", msg, resp->status, code ? " " : "",
                code ? code : "");
    } else {
        /* not an API error body: show the start of what came back */
        int n = (int)(resp->body_len < 200 ? resp->body_len : 200);
        for (int i = 0; i < n; i++)
            if (resp->body[i] == '\n' || resp->body[i] == '\r')
                n = i;
        fprintf(stderr, "relengctl: the server answered HTTP %ld%s%.*s\n", resp->status,
                n > 0 ? ": " : "", n, resp->body ? resp->body : "");
    }
    return CTL_EXIT_SERVER;
}

void ctl_print_json(const json_t *v)
{
    if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) == 0)
        fputc('\n', stdout);
}

char *ctl_cell(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.6g", json_real_value(v));
        return strdup(buf);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_ARRAY: {
        size_t i, len = 0;
        const json_t *item;
        char *out = strdup(""), *cell = NULL;
        json_array_foreach(v, i, item)
        {
            cell = json_is_object(item) || json_is_array(item) ? json_dumps(item, JSON_COMPACT)
                                                               : ctl_cell(item);
            size_t need = cell ? len + strlen(cell) + 2 : 0;
            char *grown = cell && out ? realloc(out, need) : NULL;
            if (!grown) {
                free(cell);
                free(out);
                return NULL;
            }
            out = grown;
            len += (size_t)snprintf(out + len, need - len, "%s%s", i ? "," : "", cell);
            free(cell);
        }
        return out;
    }
    case JSON_OBJECT:
        return json_dumps(v, JSON_COMPACT);
    case JSON_NULL:
    default:
        return strdup("-");
    }
}

/* ----------------------------------------------------- options and help */

enum {
    OPT_URL = 1001,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_JSON,
    OPT_VERSION,
};

static const struct option global_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

#define MAX_OPTS 48

static const struct ctl_command root_command;

static void print_synopsis(FILE *f, const struct ctl *c, const struct ctl_command *cmd)
{
    fprintf(f, "Usage: %s%s%s\n", c->path, cmd && cmd->args && *cmd->args ? " " : "",
            cmd && cmd->args ? cmd->args : "");
}

void ctl_help(const struct ctl *c, const struct ctl_command *cmd)
{
    print_synopsis(stdout, c, cmd);
    if (cmd->summary)
        printf("\n%s\n", cmd->summary);
    if (cmd->help)
        printf("\n%s", cmd->help);
    if (cmd->subs) {
        size_t w = 0;
        for (const struct ctl_command *s = cmd->subs; s->name; s++)
            if (strlen(s->name) > w)
                w = strlen(s->name);
        printf("\nCommands:\n");
        for (const struct ctl_command *s = cmd->subs; s->name; s++)
            printf("  %-*s  %s\n", (int)w, s->name, s->summary ? s->summary : "");
        printf("\nRun '%s COMMAND --help' for a command's options.\n", c->path);
    }
    if (cmd == &root_command)
        printf("\n%s", global_help);
    else
        printf("\nGlobal options: --url URL, --token TOKEN, --token-file FILE, --json\n"
               "(see 'relengctl --help'; exit status 1 server error, 2 usage, 3 unreachable).\n");
}

int ctl_getopt(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv,
               const struct option *opts)
{
    struct option all[MAX_OPTS];
    char shortopts[3 + 2 * MAX_OPTS] = ":h";
    size_t n = 0, ns = 2;
    int ch, idx = 0;

    /* an option whose value is a letter also has that letter as short form */
    for (; opts && opts[n].name && n < MAX_OPTS - 7; n++) {
        all[n] = opts[n];
        if (opts[n].flag == NULL && opts[n].val < 128 &&
            ((opts[n].val >= 'a' && opts[n].val <= 'z') ||
             (opts[n].val >= 'A' && opts[n].val <= 'Z'))) {
            shortopts[ns++] = (char)opts[n].val;
            if (opts[n].has_arg == required_argument)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    for (size_t g = 0; g < sizeof(global_opts) / sizeof(global_opts[0]); g++)
        all[n++] = global_opts[g];
    opterr = 0;
    for (;;) {
        /* ':' first: a missing value returns ':' so we can word the error */
        ch = getopt_long(argc, argv, shortopts, all, &idx);
        switch (ch) {
        case -1:
            return CTL_OPT_END;
        case 'h':
            ctl_help(c, cmd);
            return CTL_OPT_HELP;
        case OPT_URL:
            c->url = optarg;
            break;
        case OPT_TOKEN:
            c->token = optarg;
            break;
        case OPT_TOKEN_FILE:
            c->token_file = optarg;
            c->token = NULL;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        case ':':
            ctl_usage_error(c, "option '%s' needs a value", argv[optind - 1]);
            return CTL_OPT_ERROR;
        case '?':
            if (optopt)
                ctl_usage_error(c, "unknown option '-%c'", optopt);
            else
                ctl_usage_error(c, "unknown option '%s'", argv[optind - 1]);
            return CTL_OPT_ERROR;
        default:
            return ch;
        }
    }
}

/* Parses a command that takes only global options and exactly n_args
   positional arguments. Returns -1 to go on, else the exit code. */
static int simple_args(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv,
                       int n_args)
{
    int ch = ctl_getopt(c, cmd, argc, argv, NULL);
    if (ch == CTL_OPT_HELP)
        return CTL_EXIT_OK;
    if (ch != CTL_OPT_END)
        return CTL_EXIT_USAGE;
    if (argc - optind < n_args)
        return ctl_usage_error(c, "missing argument: %s", cmd->args);
    if (argc - optind > n_args)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind + n_args]);
    return -1;
}

/* ----------------------------------------------------------- connection */

static char *read_token_file(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    char *start, *end;

    if (!f) {
        snprintf(why, why_len, "%s", strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof(line), f)) {
        snprintf(why, why_len, "%s", ferror(f) ? strerror(errno) : "the file is empty");
        fclose(f);
        return NULL;
    }
    fclose(f);
    for (start = line; *start == ' ' || *start == '\t'; start++)
        ;
    end = start + strlen(start);
    while (end > start && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (!*start) {
        snprintf(why, why_len, "the first line is empty");
        return NULL;
    }
    return strdup(start);
}

int ctl_connect(struct ctl *c)
{
    size_t len;

    if (c->connected)
        return CTL_EXIT_OK;
    if (!c->token && c->token_file && *c->token_file) {
        char why[256] = "out of memory";
        c->token_buf = read_token_file(c->token_file, why, sizeof(why));
        if (!c->token_buf)
            return ctl_fail(CTL_EXIT_USAGE, "cannot read token file %s: %s", c->token_file, why);
        c->token = c->token_buf;
    }
    len = strlen(c->url);
    if (len == 0 || (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0))
        return ctl_usage_error(c, "the URL '%s' does not start with http:// or https://", c->url);
    /* base URL without trailing slashes: paths start with "/" */
    while (len > 0 && c->url[len - 1] == '/')
        len--;
    c->http.base_url = strndup(c->url, len);
    if (!c->http.base_url)
        return ctl_fail(CTL_EXIT_USAGE, "out of memory");
    c->http.token = c->token;
    c->http.connect_timeout_ms = 10000;
    c->http.timeout_ms = 60000;
    c->connected = true;
    return CTL_EXIT_OK;
}

int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body, json_t **out)
{
    struct ctl_http_resp resp;
    char err[512] = "";
    int rc;

    if (out)
        *out = NULL;
    rc = ctl_connect(c);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_http_request(&c->http, method, path, body, &resp, err, sizeof(err));
    if (rc == CTL_HTTP_CONN) {
        rc = ctl_fail(CTL_EXIT_CONN, "%s", err);
    } else if (rc != CTL_HTTP_OK) {
        rc = ctl_fail(CTL_EXIT_SERVER, "%s", err);
    } else if (resp.status < 200 || resp.status > 299) {
        rc = ctl_report_http_error(&resp);
    } else if (resp.body_len > 0 && !resp.json) {
        rc = ctl_fail(CTL_EXIT_SERVER, "%s %s: the server's answer is not JSON", method, path);
    } else {
        if (out)
            *out = resp.json ? json_incref(resp.json) : json_null();
        rc = CTL_EXIT_OK;
    }
    ctl_http_resp_fini(&resp);
    return rc;
}

/* ---------------------------------------------------------------- status */

static void format_duration(char *buf, size_t len, int64_t s)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%lldd %lldh %lldm", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600), (long long)(s % 3600 / 60));
    else if (s >= 3600)
        snprintf(buf, len, "%lldh %lldm %llds", (long long)(s / 3600), (long long)(s % 3600 / 60),
                 (long long)(s % 60));
    else if (s >= 60)
        snprintf(buf, len, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%llds", (long long)s);
}

/* Appends "sep key=value" to *out (growing it); false on ENOMEM. */
static bool summary_add(char **out, size_t *len, const char *key, const char *value)
{
    size_t need = *len + strlen(key) + strlen(value) + 3;
    char *grown = realloc(*out, need);

    if (!grown)
        return false;
    *out = grown;
    *len += (size_t)snprintf(grown + *len, need - *len, "%s%s=%s", *len ? " " : "", key, value);
    return true;
}

/* "k=v k=v" of a module's status object for a table cell: scalars as they
   are, a small object of scalars flattened one level (tasks.pending=3), a
   bigger or deeper one as {N}, an array as [N]. --json has the whole. */
static char *status_summary(const json_t *st)
{
    const char *key, *k2;
    const json_t *v, *v2;
    char *out = NULL, *cell = NULL;
    size_t len = 0;
    char buf[64], name[256];
    bool ok = true;

    if (!json_is_object(st))
        return ctl_cell(st);
    out = calloc(1, 1);
    json_object_foreach((json_t *)st, key, v)
    {
        if (!out || !ok)
            break;
        if (json_is_array(v)) {
            snprintf(buf, sizeof(buf), "[%zu]", json_array_size(v));
            ok = summary_add(&out, &len, key, buf);
            continue;
        }
        if (json_is_object(v)) {
            bool flat = json_object_size(v) <= 4;
            json_object_foreach((json_t *)v, k2, v2) flat =
                flat && !json_is_object(v2) && !json_is_array(v2);
            if (!flat) {
                snprintf(buf, sizeof(buf), "{%zu}", json_object_size(v));
                ok = summary_add(&out, &len, key, buf);
                continue;
            }
            json_object_foreach((json_t *)v, k2, v2)
            {
                snprintf(name, sizeof(name), "%s.%s", key, k2);
                cell = ctl_cell(v2);
                ok = ok && cell && summary_add(&out, &len, name, cell);
                free(cell);
            }
            continue;
        }
        cell = ctl_cell(v);
        ok = cell && summary_add(&out, &len, key, cell);
        free(cell);
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

static int cmd_status(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const char *const hdr[] = {"MODULE", "VERSION", "STATE", "STATUS"};
    json_t *st = NULL;
    struct ctl_table *t = NULL;
    const json_t *mods, *m;
    size_t i;
    char up[64];
    int rc = simple_args(c, cmd, argc, argv, 0);

    if (rc >= 0)
        return rc;
    rc = ctl_get(c, "/api/v1/status", &st);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(st);
        goto out;
    }
    format_duration(up, sizeof(up), json_integer_value(json_object_get(st, "uptime_s")));
    printf("relengd %s, up %s",
           json_string_value(json_object_get(st, "version"))
               ? json_string_value(json_object_get(st, "version"))
               : "?",
           up);
    if (json_is_string(json_object_get(st, "started")))
        printf(" (since %s)", json_string_value(json_object_get(st, "started")));
    printf("\n\n");
    t = ctl_table_new(4, hdr);
    if (!t) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    mods = json_object_get(st, "modules");
    json_array_foreach(mods, i, m)
    {
        char *cells[4] = {
            ctl_cell(json_object_get(m, "name")),
            ctl_cell(json_object_get(m, "version")),
            ctl_cell(json_object_get(m, "state")),
            status_summary(json_object_get(m, "status")),
        };
        if (ctl_table_add_owned(t, cells) != 0) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    if (ctl_table_rows(t) == 0)
        printf("No modules are loaded.\n");
    else
        ctl_table_print(t, stdout);
out:
    ctl_table_free(t);
    json_decref(st);
    return rc;
}

/* ---------------------------------------------------------------- whoami */

static int cmd_whoami(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    json_t *who = NULL;
    const char *key;
    const json_t *v;
    int rc = simple_args(c, cmd, argc, argv, 0);

    if (rc >= 0)
        return rc;
    rc = ctl_get(c, "/api/v1/whoami", &who);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_json(who);
    } else {
        json_object_foreach(who, key, v)
        {
            char *cell = ctl_cell(v);
            printf("%s: %s\n", key, cell ? cell : "?");
            free(cell);
        }
    }
    json_decref(who);
    return CTL_EXIT_OK;
}

/* ---------------------------------------------------------------- events */

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct events_opts {
    bool follow;
    char *types;       /* comma-joined prefixes, owned, or NULL */
    const char *after; /* digits or NULL */
    long long limit;   /* 0: no limit */
    long long printed;
};

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* One human line per event: id, time, type, source, data (compact JSON). */
static void print_event_line(const json_t *env)
{
    char *id = ctl_cell(json_object_get(env, "id"));
    const json_t *d = json_object_get(env, "data");
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    const char *time_s = json_string_value(json_object_get(env, "time"));
    const char *type = json_string_value(json_object_get(env, "type"));
    const char *source = json_string_value(json_object_get(env, "source"));

    printf("%-6s  %-24s  %-24s  %-10s  %s\n", id ? id : "?", time_s ? time_s : "-",
           type ? type : "-", source ? source : "-", data ? data : "{}");
    free(id);
    free(data);
}

static int events_list(struct ctl *c, struct events_opts *o)
{
    static const char *const hdr[] = {"ID", "TIME", "TYPE", "SOURCE", "DATA"};
    json_t *all = json_array(), *page = NULL, *last_id = NULL;
    struct ctl_table *t = NULL;
    unsigned long long after = o->after ? strtoull(o->after, NULL, 10) : 0;
    int rc = CTL_EXIT_OK;

    if (!all)
        return ctl_fail(CTL_EXIT_SERVER, "out of memory");
    for (;;) {
        char num[32];
        char *path = strdup("/api/v1/events");
        const json_t *events, *ev;
        unsigned long long next = after;
        size_t i, n_page;

        snprintf(num, sizeof(num), "%llu", after);
        path = ctl_http_add_query(path, "after", num);
        if (o->limit > 0) {
            snprintf(num, sizeof(num), "%lld", o->limit - (long long)json_array_size(all));
            path = path ? ctl_http_add_query(path, "limit", num) : NULL;
        }
        if (o->types)
            path = path ? ctl_http_add_query(path, "type", o->types) : NULL;
        if (!path) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
        rc = ctl_get(c, path, &page);
        free(path);
        if (rc != CTL_EXIT_OK)
            goto out;
        events = json_object_get(page, "events");
        if (!json_is_array(events)) {
            rc = ctl_fail(CTL_EXIT_SERVER, "the server's answer has no \"events\" list");
            goto out;
        }
        json_decref(last_id);
        last_id = json_incref(json_object_get(page, "last_id"));
        json_array_foreach(events, i, ev)
        {
            json_int_t id = json_integer_value(json_object_get(ev, "id"));
            if (id > 0 && (unsigned long long)id > next)
                next = (unsigned long long)id;
            json_array_append(all, (json_t *)ev);
        }
        n_page = json_array_size(events);
        json_decref(page);
        page = NULL;
        /* an empty page, a full --limit, or no progress ends the listing */
        if (n_page == 0 || next <= after ||
            (o->limit > 0 && (long long)json_array_size(all) >= o->limit))
            break;
        after = next;
    }
    if (c->json) {
        json_t *doc = json_pack("{s:O,s:O}", "events", all, "last_id",
                                last_id ? last_id : json_integer((json_int_t)after));
        if (!doc) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
        ctl_print_json(doc);
        json_decref(doc);
        goto out;
    }
    if (json_array_size(all) == 0) {
        printf("No events.\n");
        goto out;
    }
    t = ctl_table_new(5, hdr);
    if (!t) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    {
        size_t i;
        const json_t *ev;
        json_array_foreach(all, i, ev)
        {
            const json_t *data = json_object_get(ev, "data");
            char *cells[5] = {
                ctl_cell(json_object_get(ev, "id")),
                ctl_cell(json_object_get(ev, "time")),
                ctl_cell(json_object_get(ev, "type")),
                ctl_cell(json_object_get(ev, "source")),
                data ? json_dumps(data, JSON_COMPACT) : strdup("{}"),
            };
            if (ctl_table_add_owned(t, cells) != 0) {
                rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
                goto out;
            }
        }
    }
    ctl_table_print(t, stdout);
out:
    ctl_table_free(t);
    json_decref(page);
    json_decref(last_id);
    json_decref(all);
    return rc;
}

static int on_sse_event(void *arg, const struct ctl_sse_event *ev)
{
    struct ctl *c = ((void **)arg)[0];
    struct events_opts *o = ((void **)arg)[1];
    json_t *env = json_loads(ev->data, 0, NULL);

    if (!env) {
        fprintf(stderr, "relengctl: skipping an event that is not JSON (id %s)\n", ev->id);
        return 0;
    }
    if (c->json) {
        char *line = json_dumps(env, JSON_COMPACT);
        if (line)
            printf("%s\n", line);
        free(line);
    } else {
        print_event_line(env);
    }
    json_decref(env);
    fflush(stdout);
    o->printed++;
    return o->limit > 0 && o->printed >= o->limit;
}

/* Sleeps ms in slices, returning early when a stop signal came. */
static void sleep_ms(long ms)
{
    while (ms > 0 && !stop_flag) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

static int events_follow(struct ctl *c, struct events_opts *o)
{
    char last_id[256];
    char err[512];
    char *path = strdup("/api/v1/events");
    void *cb_arg[2] = {c, o};
    bool ever_connected = false;
    long retry_ms = 1000, backoff_ms = 0;
    int rc = CTL_EXIT_OK;
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (o->types)
        path = path ? ctl_http_add_query(path, "type", o->types) : NULL;
    if (!path)
        return ctl_fail(CTL_EXIT_SERVER, "out of memory");
    rc = ctl_connect(c);
    if (rc != CTL_EXIT_OK)
        goto out;
    /* --after N is where the stream starts; afterwards the last id seen */
    snprintf(last_id, sizeof(last_id), "%s", o->after ? o->after : "");
    while (!stop_flag) {
        struct ctl_http_resp resp;
        long long before = o->printed;
        int src = ctl_http_sse(&c->http, path, last_id, last_id, sizeof(last_id), &retry_ms,
                               &stop_flag, on_sse_event, cb_arg, &resp, err, sizeof(err));
        switch (src) {
        case CTL_SSE_STOPPED:
            rc = CTL_EXIT_OK;
            ctl_http_resp_fini(&resp);
            goto out;
        case CTL_SSE_HTTP_ERROR:
            if (resp.status >= 500 && ever_connected) {
                fprintf(stderr, "relengctl: the server answered HTTP %ld, retrying\n", resp.status);
                break;
            }
            rc = ctl_report_http_error(&resp);
            ctl_http_resp_fini(&resp);
            goto out;
        case CTL_SSE_CONN_FAILED:
            if (!ever_connected) {
                rc = ctl_fail(CTL_EXIT_CONN, "%s", err);
                ctl_http_resp_fini(&resp);
                goto out;
            }
            fprintf(stderr, "relengctl: %s\n", err);
            break;
        case CTL_SSE_PROTOCOL:
            rc = ctl_fail(CTL_EXIT_SERVER, "%s", err);
            ctl_http_resp_fini(&resp);
            goto out;
        case CTL_SSE_CLOSED:
        default:
            ever_connected = true;
            break;
        }
        ctl_http_resp_fini(&resp);
        /* back off while nothing comes through; start over after events */
        backoff_ms = o->printed > before ? retry_ms : (backoff_ms ? backoff_ms * 2 : retry_ms);
        if (backoff_ms > 30000)
            backoff_ms = 30000;
        if (stop_flag)
            break;
        fprintf(stderr, "relengctl: event stream ended; reconnecting in %.1fs%s%s\n",
                (double)backoff_ms / 1000.0, last_id[0] ? " from id " : "", last_id);
        sleep_ms(backoff_ms);
    }
out:
    free(path);
    return rc;
}

static int cmd_events(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"type", required_argument, NULL, 't'},
        {"after", required_argument, NULL, 'a'},
        {"limit", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct events_opts o = {0};
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        switch (ch) {
        case CTL_OPT_HELP:
            goto out;
        case CTL_OPT_ERROR:
            rc = CTL_EXIT_USAGE;
            goto out;
        case 'f':
            o.follow = true;
            break;
        case 't': {
            size_t len = o.types ? strlen(o.types) : 0;
            char *types = realloc(o.types, len + strlen(optarg) + 2);
            if (!types) {
                rc = ctl_fail(CTL_EXIT_USAGE, "out of memory");
                goto out;
            }
            snprintf(types + len, strlen(optarg) + 2, "%s%s", len ? "," : "", optarg);
            o.types = types;
            break;
        }
        case 'a':
            if (!all_digits(optarg) || strlen(optarg) > 19) {
                rc = ctl_usage_error(c, "--after needs an event id (a number), not '%s'", optarg);
                goto out;
            }
            o.after = optarg;
            break;
        case 'n':
            if (!all_digits(optarg) || strlen(optarg) > 9 || strtoll(optarg, NULL, 10) == 0) {
                rc = ctl_usage_error(c, "--limit needs a positive number, not '%s'", optarg);
                goto out;
            }
            o.limit = strtoll(optarg, NULL, 10);
            break;
        default:
            rc = CTL_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        rc = ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    rc = o.follow ? events_follow(c, &o) : events_list(c, &o);
out:
    free(o.types);
    return rc;
}

/* ---------------------------------------------------------------- tokens */

static int cmd_token_create(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"scope", required_argument, NULL, 's'},
        {"expires", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    json_t *scopes = json_array(), *body = NULL, *tok = NULL;
    const char *expires = NULL;
    int ch, rc = CTL_EXIT_OK;

    if (!scopes)
        return ctl_fail(CTL_EXIT_USAGE, "out of memory");
    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        switch (ch) {
        case CTL_OPT_HELP:
            goto out;
        case 's':
            if (!*optarg) {
                rc = ctl_usage_error(c, "--scope needs a non-empty scope");
                goto out;
            }
            json_array_append_new(scopes, json_string(optarg));
            break;
        case 'e':
            expires = optarg;
            break;
        case CTL_OPT_ERROR:
        default:
            rc = CTL_EXIT_USAGE;
            goto out;
        }
    }
    if (argc - optind < 1) {
        rc = ctl_usage_error(c, "missing the token's NAME");
        goto out;
    }
    if (argc - optind > 1) {
        rc = ctl_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
        goto out;
    }
    if (json_array_size(scopes) == 0) {
        rc = ctl_usage_error(c, "a token needs at least one --scope (e.g. --scope admin)");
        goto out;
    }
    body = json_pack("{s:s,s:O}", "name", argv[optind], "scopes", scopes);
    if (body && expires)
        json_object_set_new(body, "expires_in",
                            all_digits(expires) && strlen(expires) <= 18
                                ? json_integer((json_int_t)strtoll(expires, NULL, 10))
                                : json_string(expires));
    if (!body) {
        rc = ctl_fail(CTL_EXIT_USAGE, "the token NAME must be UTF-8 text");
        goto out;
    }
    rc = ctl_call(c, "POST", "/api/v1/tokens", body, &tok);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(tok);
    } else {
        char *sc = ctl_cell(json_object_get(tok, "scopes"));
        char *exp = ctl_cell(json_object_get(tok, "expires"));
        char *id = ctl_cell(json_object_get(tok, "id"));
        printf("id:      %s\n", id ? id : "?");
        printf("name:    %s\n", json_string_value(json_object_get(tok, "name"))
                                    ? json_string_value(json_object_get(tok, "name"))
                                    : "?");
        printf("scopes:  %s\n", sc ? sc : "?");
        printf("expires: %s\n", exp && strcmp(exp, "-") != 0 ? exp : "never");
        printf("\nThe token is shown only this once; store it now:\n%s\n",
               json_string_value(json_object_get(tok, "token"))
                   ? json_string_value(json_object_get(tok, "token"))
                   : "?");
        free(sc);
        free(exp);
        free(id);
    }
out:
    json_decref(tok);
    json_decref(body);
    json_decref(scopes);
    return rc;
}

static const char *token_state(const json_t *t)
{
    const json_t *rev = json_object_get(t, "revoked");
    if (json_is_true(rev) || json_is_string(rev) ||
        (json_is_integer(rev) && json_integer_value(rev)))
        return "revoked";
    if (json_is_true(json_object_get(t, "expired")))
        return "expired";
    return "active";
}

static int cmd_token_list(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const char *const hdr[] = {"ID",      "NAME",      "SCOPES", "CREATED",
                                      "EXPIRES", "LAST USED", "STATE"};
    json_t *doc = NULL;
    const json_t *toks, *tk;
    struct ctl_table *t = NULL;
    size_t i;
    int rc = simple_args(c, cmd, argc, argv, 0);

    if (rc >= 0)
        return rc;
    rc = ctl_get(c, "/api/v1/tokens", &doc);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(doc);
        goto out;
    }
    toks = json_object_get(doc, "tokens");
    if (!json_is_array(toks)) {
        rc = ctl_fail(CTL_EXIT_SERVER, "the server's answer has no \"tokens\" list");
        goto out;
    }
    t = ctl_table_new(7, hdr);
    if (!t) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    json_array_foreach(toks, i, tk)
    {
        const json_t *exp = json_object_get(tk, "expires");
        char *cells[7] = {
            ctl_cell(json_object_get(tk, "id")),
            ctl_cell(json_object_get(tk, "name")),
            ctl_cell(json_object_get(tk, "scopes")),
            ctl_cell(json_object_get(tk, "created")),
            exp && !json_is_null(exp) ? ctl_cell(exp) : strdup("never"),
            ctl_cell(json_object_get(tk, "last_used")),
            strdup(token_state(tk)),
        };
        if (ctl_table_add_owned(t, cells) != 0) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    if (ctl_table_rows(t) == 0)
        printf("No tokens.\n");
    else
        ctl_table_print(t, stdout);
out:
    ctl_table_free(t);
    json_decref(doc);
    return rc;
}

static int cmd_token_revoke(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    json_t *ans = NULL;
    char *id = NULL, *path = NULL;
    int rc = simple_args(c, cmd, argc, argv, 1);

    if (rc >= 0)
        return rc;
    id = curl_easy_escape(NULL, argv[optind], 0);
    if (id) {
        size_t n = strlen("/api/v1/tokens/") + strlen(id) + 1;
        path = malloc(n);
        if (path)
            snprintf(path, n, "/api/v1/tokens/%s", id);
    }
    if (!path) {
        rc = ctl_fail(CTL_EXIT_USAGE, "out of memory");
        goto out;
    }
    rc = ctl_call(c, "DELETE", path, NULL, &ans);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json && json_is_null(ans)) {
        /* an empty 204 answer: say what happened in the same shape as a body */
        json_decref(ans);
        ans = json_pack("{s:s,s:b}", "id", argv[optind], "revoked", 1);
    }
    if (c->json)
        ctl_print_json(ans);
    else
        printf("Revoked token %s.\n", argv[optind]);
out:
    json_decref(ans);
    curl_free(id);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ the table */

static int cmd_help(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);

static const struct ctl_command token_commands[] = {
    {"create", "NAME --scope SCOPE [--scope SCOPE ...] [--expires 30d|SECONDS]",
     "Create an API token (needs an admin token).",
     "Scopes: admin, a module scope such as example:write or graph:submit, or a\n"
     "prefix wildcard such as graph:*. --expires takes a duration (90m, 12h, 30d)\n"
     "or seconds; without it the token does not expire. The secret is printed\n"
     "once, on the last line; the server keeps only its hash.\n",
     cmd_token_create, NULL},
    {"list", "", "List API tokens (needs an admin token).",
     "Columns: id, name, scopes, created, expires, last used, state\n"
     "(active or revoked). Secrets are never shown again.\n",
     cmd_token_list, NULL},
    {"revoke", "ID", "Revoke an API token by its id (needs an admin token).",
     "The token stops working at once; it stays in 'token list' as revoked.\n", cmd_token_revoke,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct ctl_command top_commands[] = {
    {"status", "", "Show relengd's version, uptime and each module's state.",
     "One row per loaded module: name, version, state and the figures of its\n"
     "status object. --json prints GET /api/v1/status as it is.\n",
     cmd_status, NULL},
    {"whoami", "", "Show which token the server sees (or anonymous).", NULL, cmd_whoami, NULL},
    {"events", "[--follow] [--type PREFIX]... [--after ID] [--limit N]",
     "List events, or follow the live event stream.",
     "Options:\n"
     "  -f, --follow       stream events as they happen (Server-Sent Events), one\n"
     "                     line per event, reconnecting with Last-Event-ID after a\n"
     "                     disconnect; stops on Ctrl-C, or after --limit events\n"
     "  -t, --type PREFIX  only events whose type matches PREFIX (\"task\" matches\n"
     "                     task and task.*; \"task.res*\" is a prefix); repeatable\n"
     "  -a, --after ID     only events with an id greater than ID\n"
     "  -n, --limit N      at most N events\n"
     "Without --follow all stored events after ID are listed (paged), oldest\n"
     "first. With --json: the server's {\"events\":[...],\"last_id\":N}, or with\n"
     "--follow one JSON envelope per line.\n",
     cmd_events, NULL},
    {"token", "COMMAND", "Manage API tokens: create, list, revoke.", NULL, NULL, token_commands},
    {"graph", "COMMAND", "Task graphs: submit, show, activate.", NULL, NULL, ctl_graph_commands},
    {"task", "COMMAND", "Tasks of a graph: rerun, cancel, release.", NULL, NULL, ctl_task_commands},
    {"worker", "COMMAND", "Workers of the farm: list, quarantine, unquarantine.", NULL, NULL,
     ctl_worker_commands},
    {"partials", "COMMAND", "Partial update jobs: submit, list, show.", NULL, NULL,
     ctl_partials_commands},
    {"proxy", "COMMAND", "The artifact cache: stats, purge.", NULL, NULL, ctl_proxy_commands},
    {"help", "[COMMAND...]", "Show help for relengctl or one of its commands.", NULL, cmd_help,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct ctl_command root_command = {
    "relengctl",
    "[OPTIONS] COMMAND [ARGS...]",
    "relengctl talks to a relengd daemon over its JSON API.",
    NULL,
    NULL,
    top_commands};

static const struct ctl_command *find_command(const struct ctl_command *table, const char *name)
{
    for (const struct ctl_command *cmd = table; cmd && cmd->name; cmd++)
        if (strcmp(cmd->name, name) == 0)
            return cmd;
    return NULL;
}

/* Appends " word" to c->path (kept in a static buffer: single-threaded). */
static void path_push(struct ctl *c, const char *word)
{
    static char buf[256];
    if (c->path != buf)
        snprintf(buf, sizeof(buf), "%s", c->path);
    size_t len = strlen(buf);
    snprintf(buf + len, sizeof(buf) - len, " %s", word);
    c->path = buf;
}

/* argv[0] is the group's name; argv[1] names a sub-command. */
static int dispatch(struct ctl *c, const struct ctl_command *group, int argc, char **argv)
{
    const struct ctl_command *cmd;

    if (argc < 2) {
        char names[256] = "";
        size_t len = 0;
        for (cmd = group->subs; cmd && cmd->name && len < sizeof(names); cmd++)
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "",
                                    cmd->name);
        return ctl_usage_error(c, "missing a command (%s)", names);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        ctl_help(c, group);
        return CTL_EXIT_OK;
    }
    if (argv[1][0] == '-')
        return ctl_usage_error(c, "expected a command before the option '%s'", argv[1]);
    cmd = find_command(group->subs, argv[1]);
    if (!cmd)
        return ctl_usage_error(c, "unknown command '%s'", argv[1]);
    path_push(c, cmd->name);
    if (cmd->subs)
        return dispatch(c, cmd, argc - 1, argv + 1);
    optind = 0; /* glibc: a full re-initialisation for the command's argv */
    return cmd->run(c, cmd, argc - 1, argv + 1);
}

static int cmd_help(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    const struct ctl_command *target = &root_command;
    (void)cmd;

    c->path = "relengctl";
    for (int i = 1; i < argc; i++) {
        const struct ctl_command *next = find_command(target->subs, argv[i]);
        if (!next)
            return ctl_usage_error(c, "unknown command '%s'", argv[i]);
        path_push(c, next->name);
        target = next;
    }
    ctl_help(c, target);
    return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct ctl c = {0};
    int ch, idx = 0, rc;
    static const struct option opts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };

    c.path = "relengctl";
    c.url = getenv("RELENGD_URL") && *getenv("RELENGD_URL") ? getenv("RELENGD_URL") : DEFAULT_URL;
    c.token = getenv("RELENGD_TOKEN") && *getenv("RELENGD_TOKEN") ? getenv("RELENGD_TOKEN") : NULL;
    c.token_file = getenv("RELENGD_TOKEN_FILE");

    /* global options stop at the command ('+'); the command parses the rest */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:h", opts, &idx)) != -1) {
        switch (ch) {
        case OPT_URL:
            c.url = optarg;
            break;
        case OPT_TOKEN:
            c.token = optarg;
            break;
        case OPT_TOKEN_FILE:
            c.token_file = optarg;
            c.token = NULL;
            break;
        case OPT_JSON:
            c.json = true;
            break;
        case OPT_VERSION:
            printf("relengctl %s\n", PACKAGE_VERSION);
            return CTL_EXIT_OK;
        case 'h':
            ctl_help(&c, &root_command);
            return CTL_EXIT_OK;
        case ':':
            return ctl_usage_error(&c, "option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return ctl_usage_error(&c, "unknown option '-%c'", optopt);
            return ctl_usage_error(&c, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return ctl_usage_error(&c, "missing a command (status, events, token, ...)");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ctl_fail(CTL_EXIT_CONN, "cannot initialise libcurl");
    /* dispatch expects argv[0] to be the group's own name */
    rc = dispatch(&c, &root_command, argc - optind + 1, argv + optind - 1);
    free((char *)c.http.base_url);
    free(c.token_buf);
    curl_global_cleanup();
    return rc;
}
