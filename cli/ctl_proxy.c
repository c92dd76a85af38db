/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_proxy.c -- relengctl's proxy commands: "proxy stats" (cache
 * statistics per backend, GET /api/v1/proxy/stats) and "proxy purge"
 * (POST /api/v1/proxy/purge, scope proxy:purge). Single-threaded.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/ctl_table.h"

enum { OPT_PREFIX = 1 };

/* "12.3 %" for a ratio, malloc'd. */
static char *percent(const json_t *v)
{
    char *s = NULL;
    if (asprintf(&s, "%.1f %%", 100.0 * json_number_value(v)) < 0)
        return NULL;
    return s;
}

/* Bytes with a binary unit, malloc'd. */
static char *human_bytes(const json_t *v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double n = json_number_value(v);
    size_t u = 0;
    char *s = NULL;

    while (n >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        n /= 1024.0;
        u++;
    }
    if (asprintf(&s, u ? "%.1f %s" : "%.0f %s", n, units[u]) < 0)
        return NULL;
    return s;
}

static int add_row(struct ctl_table *t, const char *name, const json_t *b)
{
    char *cells[10] = {
        strdup(name),
        ctl_cell(json_object_get(b, "requests")),
        ctl_cell(json_object_get(b, "hits")),
        ctl_cell(json_object_get(b, "misses")),
        ctl_cell(json_object_get(b, "coalesced")),
        ctl_cell(json_object_get(b, "stale")),
        ctl_cell(json_object_get(b, "errors")),
        percent(json_object_get(b, "hit_ratio")),
        human_bytes(json_object_get(b, "bytes_served")),
        human_bytes(json_object_get(b, "bytes_saved")),
    };
    return ctl_table_add_owned(t, cells);
}

static int cmd_stats(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{NULL, 0, NULL, 0}};
    static const char *const hdr[] = {"BACKEND", "REQUESTS", "HITS",      "MISSES", "COALESCED",
                                      "STALE",   "ERRORS",   "HIT RATIO", "SERVED", "SAVED"};
    json_t *doc = NULL, *b, *cache;
    struct ctl_table *t = NULL;
    const char *name;
    char *size = NULL, *cap = NULL;
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            goto out;
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (optind < argc) {
        rc = ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    rc = ctl_get(c, "/api/v1/proxy/stats", &doc);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(doc);
        goto out;
    }
    t = ctl_table_new(10, hdr);
    if (!t) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    json_object_foreach(json_object_get(doc, "backends"), name, b)
    {
        if (add_row(t, name, b) != 0) {
            rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    if (add_row(t, "(total)", json_object_get(doc, "total")) != 0) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    ctl_table_print(t, stdout);
    cache = json_object_get(doc, "cache");
    size = human_bytes(json_object_get(cache, "bytes"));
    cap = human_bytes(json_object_get(cache, "max_bytes"));
    printf("\ncache: %lld objects, %s of %s; %lld downloads in flight%s\n",
           (long long)json_integer_value(json_object_get(cache, "objects")), size ? size : "?",
           cap ? cap : "?", (long long)json_integer_value(json_object_get(doc, "inflight")),
           json_is_true(json_object_get(cache, "disk_full")) ? "; DISK FULL: not caching" : "");
out:
    free(size);
    free(cap);
    ctl_table_free(t);
    json_decref(doc);
    return rc;
}

static int cmd_purge(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"prefix", no_argument, NULL, OPT_PREFIX},
        {NULL, 0, NULL, 0},
    };
    json_t *body = NULL, *doc = NULL;
    bool prefix = false;
    int ch, rc = CTL_EXIT_OK;

    while ((ch = ctl_getopt(c, cmd, argc, argv, opts)) != CTL_OPT_END) {
        if (ch == CTL_OPT_HELP)
            goto out;
        if (ch == OPT_PREFIX) {
            prefix = true;
        } else {
            rc = CTL_EXIT_USAGE;
            goto out;
        }
    }
    if (optind + 1 != argc) {
        rc = ctl_usage_error(c, "purge takes exactly one URL");
        goto out;
    }
    body = json_pack("{s:s}", prefix ? "prefix" : "url", argv[optind]);
    if (!body) {
        rc = ctl_fail(CTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    rc = ctl_call(c, "POST", "/api/v1/proxy/purge", body, &doc);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (c->json) {
        ctl_print_json(doc);
        goto out;
    }
    printf("purged %lld objects (%lld bytes)",
           (long long)json_integer_value(json_object_get(doc, "purged")),
           (long long)json_integer_value(json_object_get(doc, "bytes")));
    if (json_integer_value(json_object_get(doc, "inflight")) > 0)
        printf("; %lld downloads in flight will not be cached",
               (long long)json_integer_value(json_object_get(doc, "inflight")));
    printf("\n");
out:
    json_decref(body);
    json_decref(doc);
    return rc;
}

const struct ctl_command ctl_proxy_commands[] = {
    {"stats", "", "Cache statistics per backend.",
     "Requests by result (hits, misses, coalesced, stale), errors, the hit ratio\n"
     "by requests, bytes served and bytes saved (served minus fetched upstream),\n"
     "per backend and in total; then the cache's size and downloads in flight.\n"
     "With --json: the server's document.\n",
     cmd_stats, NULL},
    {"purge", "URL [--prefix]", "Remove cached objects (scope proxy:purge).",
     "URL is an upstream URL (https://host/path) of a configured backend or a\n"
     "proxy path (/BACKEND/path). With --prefix every object under it goes.\n"
     "Objects being downloaded finish for their clients but are not kept.\n",
     cmd_purge, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
