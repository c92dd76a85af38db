/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/spec.c -- pure logic of the partials module: request
 * validation, names and URLs (see spec.h). No host calls; any thread.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/partials/spec.h"

static const char *const job_fields[] = {
    "from_url", "from_upload", "to_url", "to_upload",     "platform", "locale",
    "channel",  "version",     "format", "update_number", NULL,
};

static bool field_known(const char *name)
{
    for (size_t i = 0; job_fields[i]; i++)
        if (strcmp(job_fields[i], name) == 0)
            return true;
    return false;
}

bool partials_label_ok(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '@' || c == '+' ||
              c == '-'))
            return false;
        if (n >= PARTIALS_LABEL_MAX)
            return false;
    }
    return n > 0;
}

bool partials_sha_hex_ok(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == PARTIALS_SHA_HEX;
}

bool partials_url_ok(const char *s)
{
    size_t n;
    const char *host;

    if (!s)
        return false;
    n = strlen(s);
    if (n > PARTIALS_URL_MAX)
        return false;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return false;
    if (!*host || *host == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* A string member: NULL when absent; RD_EINVAL when present but not a
   non-empty string without NUL. */
static int opt_string(const json_t *body, const char *name, const char **out, struct rd_error *err)
{
    const json_t *v = json_object_get(body, name);

    *out = NULL;
    if (!v || json_is_null(v))
        return RD_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return rd_error_set(err, RD_EINVAL, "%s: expected a non-empty string", name);
    *out = json_string_value(v);
    return RD_OK;
}

static int parse_source(const json_t *body, const char *which, const char **url,
                        const char **upload, struct rd_error *err)
{
    char url_key[16], up_key[16];
    int rc;

    snprintf(url_key, sizeof(url_key), "%s_url", which);
    snprintf(up_key, sizeof(up_key), "%s_upload", which);
    rc = opt_string(body, url_key, url, err);
    if (rc == RD_OK)
        rc = opt_string(body, up_key, upload, err);
    if (rc != RD_OK)
        return rc;
    if (!*url && !*upload)
        return rd_error_set(err, RD_EINVAL, "%s: give %s or %s", which, url_key, up_key);
    if (*url && *upload)
        return rd_error_set(err, RD_EINVAL, "%s: give %s or %s, not both", which, url_key, up_key);
    if (*url && !partials_url_ok(*url))
        return rd_error_set(err, RD_EINVAL, "%s: expected an http:// or https:// URL", url_key);
    if (*upload && !partials_sha_hex_ok(*upload))
        return rd_error_set(err, RD_EINVAL,
                            "%s: expected an upload id (64 hex digits from POST /uploads)", up_key);
    return RD_OK;
}

int partials_job_spec_parse(const json_t *body, struct partials_job_spec *out, struct rd_error *err)
{
    const char *key;
    json_t *value;
    const json_t *un;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(body))
        return rd_error_set(err, RD_EINVAL, "body: expected a JSON object");
    json_object_foreach((json_t *)body, key, value)
    {
        (void)value;
        if (!field_known(key))
            return rd_error_set(err, RD_EINVAL, "%.64s: unknown field", key);
    }
    rc = parse_source(body, "from", &out->from_url, &out->from_upload, err);
    if (rc == RD_OK)
        rc = parse_source(body, "to", &out->to_url, &out->to_upload, err);
    if (rc == RD_OK)
        rc = opt_string(body, "platform", &out->platform, err);
    if (rc == RD_OK)
        rc = opt_string(body, "locale", &out->locale, err);
    if (rc == RD_OK)
        rc = opt_string(body, "channel", &out->channel, err);
    if (rc == RD_OK)
        rc = opt_string(body, "version", &out->version, err);
    if (rc == RD_OK)
        rc = opt_string(body, "format", &out->format, err);
    if (rc != RD_OK)
        return rc;
    if (!out->platform || !partials_label_ok(out->platform))
        return rd_error_set(err, RD_EINVAL,
                            "platform: required, 1 to 64 of A-Z a-z 0-9 _ . @ + - (e.g. linux64)");
    if (!out->locale || !partials_label_ok(out->locale))
        return rd_error_set(err, RD_EINVAL,
                            "locale: required, 1 to 64 of A-Z a-z 0-9 _ . @ + - (e.g. en-US)");
    if (out->channel && strlen(out->channel) > 63)
        return rd_error_set(err, RD_EINVAL, "channel: at most 63 bytes");
    if (out->version && strlen(out->version) > 31)
        return rd_error_set(err, RD_EINVAL, "version: at most 31 bytes");
    if (out->format && strcmp(out->format, "xz") != 0 && strcmp(out->format, "bz2") != 0)
        return rd_error_set(err, RD_EINVAL, "format: expected \"xz\" or \"bz2\"");
    un = json_object_get(body, "update_number");
    if (un && !json_is_null(un)) {
        if (!json_is_integer(un) || json_integer_value(un) < 0 || json_integer_value(un) > 1000000)
            return rd_error_set(err, RD_EINVAL, "update_number: expected an integer 0..1000000");
        out->update_number = json_integer_value(un);
    }
    return RD_OK;
}

static int parse_nonneg(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (!s || !*s)
        return RD_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return RD_EINVAL;
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return RD_EINVAL;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return RD_OK;
}

int partials_id_parse(const char *s, int64_t *out)
{
    int64_t v;

    if (parse_nonneg(s, &v) != RD_OK || v < 1)
        return RD_EINVAL;
    *out = v;
    return RD_OK;
}

int partials_list_query_parse(const char *state, const char *limit, const char *before,
                              struct partials_list_query *out, struct rd_error *err)
{
    static const char *const states[] = {"queued", "running", "done", "failed", NULL};
    int64_t v;
    bool ok = false;

    out->state = NULL;
    out->limit = 50;
    out->before = 0;
    if (state) {
        for (size_t i = 0; states[i]; i++)
            if (strcmp(state, states[i]) == 0)
                ok = true;
        if (!ok)
            return rd_error_set(err, RD_EINVAL, "state: expected queued, running, done or failed");
        out->state = state;
    }
    if (limit) {
        if (parse_nonneg(limit, &v) != RD_OK || v < 1 || v > 500)
            return rd_error_set(err, RD_EINVAL, "limit: expected an integer from 1 to 500");
        out->limit = v;
    }
    if (before) {
        if (parse_nonneg(before, &v) != RD_OK)
            return rd_error_set(err, RD_EINVAL, "before: expected a job id");
        out->before = v;
    }
    return RD_OK;
}

static bool format_ok(const char *f)
{
    size_t n = 0;

    for (; f && f[n]; n++)
        if (!((f[n] >= 'a' && f[n] <= 'z') || (f[n] >= '0' && f[n] <= '9') || f[n] == '+'))
            return false;
    return n > 0 && n <= 16;
}

int partials_cache_name(const char *from_hex, const char *to_hex, const char *format, char *out)
{
    if (!partials_sha_hex_ok(from_hex) || !partials_sha_hex_ok(to_hex) || !format_ok(format))
        return RD_EINVAL;
    snprintf(out, PARTIALS_CACHE_NAME_MAX, "%.2s/%s-%s.%s", from_hex, from_hex, to_hex, format);
    return RD_OK;
}

char *partials_remote_url(const char *base, const char *from_hex, const char *to_hex,
                          const char *format)
{
    size_t bl = strlen(base);
    char *s = NULL;

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if (asprintf(&s, "%.*s/%s/%s/%s", (int)bl, base, from_hex, to_hex, format) < 0)
        return NULL;
    return s;
}

char **partials_split_words(const char *s)
{
    size_t n = 0, k = 0;
    char **v;

    for (const char *p = s; p && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (const char *p = s; p && *p;) {
        const char *start;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        v[k] = strndup(start, (size_t)(p - start));
        if (!v[k]) {
            partials_strv_free(v);
            return NULL;
        }
        k++;
    }
    return v;
}

void partials_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}
