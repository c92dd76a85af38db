/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/names.c -- name and number validation for the dispatch
 * API (see names.h). No host calls; tested in tables of cases.
 */
#include "config.h"

#include <string.h>

#include "modules/dispatch/names.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* 1..max bytes, each alphanumeric or one of extra. */
static bool charset_valid(const char *s, size_t max, const char *extra)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++) {
        if (n >= max)
            return false;
        if (!is_alnum(s[n]) && !strchr(extra, s[n]))
            return false;
    }
    return true;
}

bool dispatch_id_valid(const char *s)
{
    return charset_valid(s, DISPATCH_NAME_MAX, "_.-");
}

bool dispatch_worker_id_valid(const char *s)
{
    return charset_valid(s, DISPATCH_NAME_MAX, "_.:-");
}

bool dispatch_artifact_name_valid(const char *s)
{
    /* No '/' or '\\' is allowed at all, and no leading dot, so "." and ".."
       and our ".upload-*" temporaries are out too. */
    return charset_valid(s, DISPATCH_ARTIFACT_MAX, "._-") && s[0] != '.';
}

bool dispatch_sha256_hex_parse(const char *s, char out[65])
{
    size_t i;

    if (!s)
        return false;
    for (i = 0; i < 64; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        out[i] = c;
    }
    if (s[64] != '\0')
        return false;
    out[64] = '\0';
    return true;
}

bool dispatch_u64_parse(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s || strlen(s) > 19 || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = v;
    return true;
}

bool dispatch_run_id_parse(const char *s, uint32_t *out)
{
    uint64_t v;

    if (!dispatch_u64_parse(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}
