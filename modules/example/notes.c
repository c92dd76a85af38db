/* SPDX-License-Identifier: MIT */
/*
 * modules/example/notes.c -- pure logic of the example module: request
 * validation and JSON conversion. No rd_* host calls, so it is tested in
 * tables without a host (tests/unit/example/test_notes.c). Any thread.
 */
#include "config.h"

#include <string.h>

#include "modules/example/notes.h"

/* The fields a POST /notes body may carry. A new field is one more row here
   plus its check in example_note_parse. */
static const char *const note_fields[] = {"text", NULL};

static bool note_field_known(const char *name)
{
    for (size_t i = 0; note_fields[i]; i++)
        if (strcmp(note_fields[i], name) == 0)
            return true;
    return false;
}

int example_note_parse(const json_t *body, uint64_t max_len, struct example_note_input *out,
                       struct rd_error *err)
{
    const char *key;
    json_t *value;
    const json_t *text;
    size_t len;

    if (!json_is_object(body))
        return rd_error_set(err, RD_EINVAL, "body: expected a JSON object");
    /* jansson's iteration macros take a non-const object; nothing is changed. */
    json_object_foreach((json_t *)body, key, value)
    {
        (void)value;
        if (!note_field_known(key))
            return rd_error_set(err, RD_EINVAL, "%.64s: unknown field", key);
    }
    text = json_object_get(body, "text");
    if (!text)
        return rd_error_set(err, RD_EINVAL, "text: required");
    if (!json_is_string(text))
        return rd_error_set(err, RD_EINVAL, "text: expected a string");
    len = json_string_length(text);
    if (len == 0)
        return rd_error_set(err, RD_EINVAL, "text: must not be empty");
    /* JSON allows \u0000; SQLite TEXT and C strings do not keep it. */
    if (strlen(json_string_value(text)) != len)
        return rd_error_set(err, RD_EINVAL, "text: contains a NUL character");
    if ((uint64_t)len > max_len)
        return rd_error_set(err, RD_EINVAL, "text: %zu bytes, the limit is %llu", len,
                            (unsigned long long)max_len);
    out->text = json_string_value(text);
    out->text_len = len;
    return RD_OK;
}

/* A decimal integer 0..INT64_MAX without sign, spaces or leading junk. */
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

int example_list_query_parse(const char *limit, const char *after, struct example_list_query *out,
                             struct rd_error *err)
{
    int64_t v;

    out->limit = EXAMPLE_LIST_DEFAULT;
    out->after = 0;
    if (limit) {
        if (parse_nonneg(limit, &v) != RD_OK || v < 1 || v > EXAMPLE_LIST_MAX)
            return rd_error_set(err, RD_EINVAL, "limit: expected an integer from 1 to %d",
                                EXAMPLE_LIST_MAX);
        out->limit = v;
    }
    if (after) {
        if (parse_nonneg(after, &v) != RD_OK)
            return rd_error_set(err, RD_EINVAL, "after: expected a note id (an integer >= 0)");
        out->after = v;
    }
    return RD_OK;
}

int example_id_parse(const char *s, int64_t *out)
{
    int64_t v;

    if (parse_nonneg(s, &v) != RD_OK || v < 1)
        return RD_EINVAL;
    *out = v;
    return RD_OK;
}

json_t *example_note_json(const struct example_note *n)
{
    return json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)n->id, "text", n->text, "author",
                     n->author, "created_ms", (json_int_t)n->created_ms);
}
