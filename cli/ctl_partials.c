/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_partials.c -- relengctl partials submit|list|show: partial update
 * jobs of the partials module from a shell. A local MAR given to submit is
 * uploaded first (POST /api/v1/partials/uploads, raw bytes); URLs are left
 * to the daemon to fetch. Single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/ctl.h"
#include "cli/ctl_table.h"

enum {
    OPT_FROM = 1,
    OPT_TO,
    OPT_PLATFORM,
    OPT_LOCALE,
    OPT_CHANNEL,
    OPT_VERSION,
    OPT_UPDATE,
    OPT_FORMAT,
    OPT_WAIT,
    OPT_STATE,
    OPT_LIMIT,
    OPT_OUTPUT,
};

/* ------------------------------------------------------------ upload */

struct grow {
    char *data;
    size_t len;
};

static size_t grow_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct grow *g = arg;
    size_t n = size * nmemb;
    char *d;

    if (g->len + n > (1u << 20))
        return 0;
    d = realloc(g->data, g->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + g->len, ptr, n);
    g->len += n;
    d[g->len] = '\0';
    g->data = d;
    return n;
}

/* Uploads the MAR at path; the upload id into id[65]. */
static int upload(struct ctl *c, const char *path, char *id)
{
    FILE *f = fopen(path, "rb");
    CURL *e = NULL;
    struct curl_slist *h = NULL;
    struct grow g = {0};
    char url[2048], auth[600];
    long status = 0;
    curl_off_t size;
    json_t *doc = NULL;
    int rc = CTL_EXIT_OK;
    CURLcode cc;

    if (!f)
        return ctl_fail(CTL_EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0 || (size = ftello(f)) < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        rc = ctl_fail(CTL_EXIT_USAGE, "cannot read %s", path);
        goto out;
    }
    rc = ctl_connect(c);
    if (rc != CTL_EXIT_OK)
        goto out;
    e = curl_easy_init();
    snprintf(url, sizeof(url), "%s/api/v1/partials/uploads", c->http.base_url);
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    if (c->http.token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->http.token);
        h = curl_slist_append(h, auth);
    }
    if (!e || !h) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READDATA, f);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grow_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->http.connect_timeout_ms);
    cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        rc = ctl_fail(CTL_EXIT_CONN, "uploading %s: %s", path, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    doc = g.data ? json_loads(g.data, 0, NULL) : NULL;
    if (status != 201 || !json_is_string(json_object_get(doc, "id"))) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        rc = ctl_fail(CTL_EXIT_SERVER, "uploading %s: %s (HTTP %ld)", path,
                      msg ? msg : "unexpected answer", status);
        goto out;
    }
    snprintf(id, 65, "%s", json_string_value(json_object_get(doc, "id")));
out:
    json_decref(doc);
    free(g.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    fclose(f);
    return rc;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* ------------------------------------------------------------ output */

static const char *str_or(const json_t *v, const char *def)
{
    return json_is_string(v) ? json_string_value(v) : def;
}

static void print_job(const json_t *job)
{
    const json_t *phases = json_object_get(job, "phases"), *stats = json_object_get(job, "stats");
    const json_t *result = json_object_get(job, "result");
    const char *key;
    json_t *v;

    printf("job %lld: %s\n", (long long)json_integer_value(json_object_get(job, "id")),
           str_or(json_object_get(job, "state"), "?"));
    printf("  platform %s, locale %s, update %lld, format %s\n",
           str_or(json_object_get(job, "platform"), "-"),
           str_or(json_object_get(job, "locale"), "-"),
           (long long)json_integer_value(json_object_get(job, "update_number")),
           str_or(json_object_get(job, "format"), "-"));
    if (json_is_string(json_object_get(job, "error")))
        printf("  failed in %s: %s\n", str_or(json_object_get(job, "failed_phase"), "?"),
               json_string_value(json_object_get(job, "error")));
    if (json_is_object(phases) && json_object_size(phases) > 0) {
        printf("  phases (ms):");
        json_object_foreach((json_t *)phases, key, v)
        {
            printf(" %s %lld", key, (long long)json_integer_value(v));
        }
        printf("\n");
    }
    if (json_is_object(stats))
        printf("  files: %lld compared, %lld unchanged, %lld patched, %lld whole; cache %lld "
               "hits, %lld misses, %lld bypassed, %lld corrupt\n",
               (long long)json_integer_value(json_object_get(stats, "compared")),
               (long long)json_integer_value(json_object_get(stats, "unchanged")),
               (long long)json_integer_value(json_object_get(stats, "patched")),
               (long long)json_integer_value(json_object_get(stats, "full")),
               (long long)json_integer_value(json_object_get(stats, "cache_hits")),
               (long long)json_integer_value(json_object_get(stats, "cache_misses")),
               (long long)json_integer_value(json_object_get(stats, "cache_bypassed")),
               (long long)json_integer_value(json_object_get(stats, "cache_corrupt")));
    if (json_is_object(result))
        printf("  result: %lld bytes, sha256 %s, %s, %s\n",
               (long long)json_integer_value(json_object_get(result, "size")),
               str_or(json_object_get(result, "sha256"), "-"),
               json_is_true(json_object_get(result, "signed")) ? "signed" : "unsigned",
               str_or(json_object_get(result, "url"), "-"));
}

/* Downloads the result of job id into path. */
static int download(struct ctl *c, long long id, const char *path)
{
    char url[2048], auth[600], tmp[4096];
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    FILE *f = NULL;
    long status = 0;
    int rc = CTL_EXIT_OK;
    CURLcode cc;

    snprintf(tmp, sizeof(tmp), "%s.part", path);
    f = fopen(tmp, "wb");
    if (!e || !f) {
        rc = ctl_fail(CTL_EXIT_USAGE, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    snprintf(url, sizeof(url), "%s/api/v1/partials/jobs/%lld/result", c->http.base_url, id);
    if (c->http.token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->http.token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (fclose(f) != 0 && cc == CURLE_OK)
        cc = CURLE_WRITE_ERROR;
    f = NULL;
    if (cc != CURLE_OK || status != 200) {
        unlink(tmp);
        rc = cc != CURLE_OK ? ctl_fail(CTL_EXIT_CONN, "download: %s", curl_easy_strerror(cc))
                            : ctl_fail(CTL_EXIT_SERVER, "download: HTTP %ld", status);
        goto out;
    }
    if (rename(tmp, path) != 0)
        rc = ctl_fail(CTL_EXIT_USAGE, "cannot rename to %s: %s", path, strerror(errno));
out:
    if (f)
        fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return rc;
}

/* ------------------------------------------------------------ commands */

static int cmd_submit(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"locale", required_argument, NULL, OPT_LOCALE},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"version", required_argument, NULL, OPT_VERSION},
        {"update-number", required_argument, NULL, OPT_UPDATE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *output = NULL;
    char from_id[65], to_id[65], path[64];
    json_t *body = json_object(), *job = NULL;
    bool wait = false;
    long long id;
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        const char *key = NULL;
        switch (ch) {
        case CTL_OPT_HELP:
            goto out;
        case CTL_OPT_ERROR:
            rc = CTL_EXIT_USAGE;
            goto out;
        case OPT_FROM:
            from = optarg;
            break;
        case OPT_TO:
            to = optarg;
            break;
        case OPT_PLATFORM:
            key = "platform";
            break;
        case OPT_LOCALE:
            key = "locale";
            break;
        case OPT_CHANNEL:
            key = "channel";
            break;
        case OPT_VERSION:
            key = "version";
            break;
        case OPT_FORMAT:
            key = "format";
            break;
        case OPT_UPDATE: {
            char *end = NULL;
            long long n = strtoll(optarg, &end, 10);
            if (!end || *end || n < 0) {
                rc = ctl_usage_error(c, "--update-number: expected an integer >= 0");
                goto out;
            }
            json_object_set_new(body, "update_number", json_integer(n));
            break;
        }
        case OPT_WAIT:
            wait = true;
            break;
        case OPT_OUTPUT:
            output = optarg;
            wait = true;
            break;
        default:
            rc = CTL_EXIT_USAGE;
            goto out;
        }
        if (key)
            json_object_set_new(body, key, json_string(optarg));
    }
    if (optind < argc) {
        rc = ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!from || !to) {
        rc = ctl_usage_error(c, "--from and --to are required (a MAR file or an http(s) URL)");
        goto out;
    }
    if (is_url(from)) {
        json_object_set_new(body, "from_url", json_string(from));
    } else {
        rc = upload(c, from, from_id);
        if (rc != CTL_EXIT_OK)
            goto out;
        json_object_set_new(body, "from_upload", json_string(from_id));
    }
    if (is_url(to)) {
        json_object_set_new(body, "to_url", json_string(to));
    } else {
        rc = upload(c, to, to_id);
        if (rc != CTL_EXIT_OK)
            goto out;
        json_object_set_new(body, "to_upload", json_string(to_id));
    }
    rc = ctl_call(c, "POST", "/api/v1/partials/jobs", body, &job);
    if (rc != CTL_EXIT_OK)
        goto out;
    id = (long long)json_integer_value(json_object_get(job, "id"));
    /* poll until the job ends; every step is bounded by the HTTP timeout */
    while (wait) {
        const char *state = json_string_value(json_object_get(job, "state"));
        if (state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0))
            break;
        usleep(200 * 1000);
        json_decref(job);
        job = NULL;
        snprintf(path, sizeof(path), "/api/v1/partials/jobs/%lld", id);
        rc = ctl_get(c, path, &job);
        if (rc != CTL_EXIT_OK)
            goto out;
    }
    if (c->json)
        ctl_print_json(job);
    else if (wait)
        print_job(job);
    else
        printf("job %lld queued\n", id);
    if (wait && strcmp(str_or(json_object_get(job, "state"), ""), "done") != 0) {
        rc = CTL_EXIT_SERVER;
        goto out;
    }
    if (output)
        rc = download(c, id, output);
out:
    json_decref(body);
    json_decref(job);
    return rc;
}

static int cmd_list(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {NULL, 0, NULL, 0},
    };
    static const char *const hdr[] = {"ID",   "STATE", "PLATFORM", "LOCALE",
                                      "SIZE", "HITS",  "MISSES",   "ERROR"};
    const char *state = NULL, *limit = NULL;
    char *path = strdup("/api/v1/partials/jobs");
    json_t *doc = NULL, *job;
    struct ctl_table *t = NULL;
    size_t i;
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            goto out;
        if (ch == OPT_STATE)
            state = optarg;
        else if (ch == OPT_LIMIT)
            limit = optarg;
        else {
            rc = CTL_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        rc = ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (path && state)
        path = ctl_http_add_query(path, "state", state);
    if (path && limit)
        path = ctl_http_add_query(path, "limit", limit);
    if (!path) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    rc = ctl_get(c, path, &doc);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(doc);
        goto out;
    }
    t = ctl_table_new(8, hdr);
    if (!t) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    json_array_foreach(json_object_get(doc, "jobs"), i, job)
    {
        const json_t *stats = json_object_get(job, "stats");
        char *cells[8] = {
            ctl_cell(json_object_get(job, "id")),
            ctl_cell(json_object_get(job, "state")),
            ctl_cell(json_object_get(job, "platform")),
            ctl_cell(json_object_get(job, "locale")),
            ctl_cell(json_object_get(json_object_get(job, "result"), "size")),
            ctl_cell(json_object_get(stats, "cache_hits")),
            ctl_cell(json_object_get(stats, "cache_misses")),
            ctl_cell(json_object_get(job, "error")),
        };
        if (ctl_table_add_owned(t, cells) != 0) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    if (ctl_table_rows(t) == 0)
        printf("No jobs.\n");
    else
        ctl_table_print(t, stdout);
out:
    ctl_table_free(t);
    json_decref(doc);
    free(path);
    return rc;
}

static int cmd_show(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, OPT_OUTPUT},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    char path[64], *end = NULL;
    json_t *job = NULL;
    long long id;
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            return CTL_EXIT_OK;
        if (ch != OPT_OUTPUT)
            return CTL_EXIT_USAGE;
        output = optarg;
    }
    if (argc - optind != 1)
        return ctl_usage_error(c, "expected one job id");
    id = strtoll(argv[optind], &end, 10);
    if (!end || *end || id < 1)
        return ctl_usage_error(c, "'%s' is not a job id", argv[optind]);
    snprintf(path, sizeof(path), "/api/v1/partials/jobs/%lld", id);
    rc = ctl_get(c, path, &job);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json)
        ctl_print_json(job);
    else
        print_job(job);
    json_decref(job);
    if (output)
        rc = download(c, id, output);
    return rc;
}

const struct ctl_command ctl_partials_commands[] = {
    {"submit",
     "--from MAR|URL --to MAR|URL --platform P --locale L [--channel C] [--version V] "
     "[--update-number N] [--format xz|bz2] [--wait] [--output FILE]",
     "Queue a partial update job.",
     "A local MAR is uploaded first; an http(s) URL is fetched by the daemon.\n"
     "  --wait           poll until the job is done or failed, then show it (exit 1\n"
     "                   if it failed)\n"
     "  --output FILE    wait, then download the partial MAR to FILE\n",
     cmd_submit, NULL},
    {"list", "[--state queued|running|done|failed] [--limit N]", "List jobs, newest first.", NULL,
     cmd_list, NULL},
    {"show", "ID [--output FILE]", "Show a job: phases, cache figures, result.",
     "  --output FILE    also download the job's partial MAR to FILE\n", cmd_show, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
