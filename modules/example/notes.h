/* SPDX-License-Identifier: MIT */
/*
 * modules/example/notes.h -- the example module's pure logic: a note, the
 * validation of a POST /notes body and of the GET /notes query, and the
 * note <-> JSON conversion. No host calls: everything here is tested
 * directly by tests/unit/example/test_notes.c. Any thread.
 */
#ifndef RELENGD_EXAMPLE_NOTES_H
#define RELENGD_EXAMPLE_NOTES_H

#include "core/module.h"

/* Page size of GET /notes when ?limit is absent, and the largest accepted. */
#define EXAMPLE_LIST_DEFAULT 50
#define EXAMPLE_LIST_MAX 500

/* The module's configuration (etc/modules.d/example.conf, see module.c). */
struct example_conf {
    uint64_t max_note_len; /* bytes of "text" accepted by POST /notes */
    const char *greeting;  /* logged at start; owned by the host */
};

/* The config key table (module.c), also reachable as the descriptor's keys:
   tests/check_samples.sh and test_module.c compare it with the sample. */
extern const struct rd_cfg_key example_keys[];

/* A stored note. The strings are borrowed from wherever the note came from
   (a request body or a SQLite row) and live as long as that source does. */
struct example_note {
    int64_t id;
    const char *text;
    const char *author;
    int64_t created_ms;
};

/* A validated POST /notes body. text is borrowed from the body. */
struct example_note_input {
    const char *text;
    size_t text_len;
};

/* A validated GET /notes query: notes with id > after, at most limit. */
struct example_list_query {
    int64_t after;
    int64_t limit;
};

/* Validates body ({"text": "..."}) into *out. Bad input is RD_EINVAL with a
   message that starts with the field at fault ("text: ..."): a missing,
   non-string, empty, NUL-containing or longer than max_len text, a body that
   is not an object, or an unknown field. Nothing is allocated. */
int example_note_parse(const json_t *body, uint64_t max_len, struct example_note_input *out,
                       struct rd_error *err);

/* Parses ?limit and ?after (each may be NULL: absent) into *out. RD_EINVAL
   naming the parameter when it is not a decimal integer in range
   (limit 1..EXAMPLE_LIST_MAX, after >= 0). */
int example_list_query_parse(const char *limit, const char *after, struct example_list_query *out,
                             struct rd_error *err);

/* Parses a {id} path segment: a positive decimal integer, RD_EINVAL otherwise. */
int example_id_parse(const char *s, int64_t *out);

/* {"id":..,"text":..,"author":..,"created_ms":..}: a new reference, or NULL
   when out of memory. */
json_t *example_note_json(const struct example_note *n);

#endif
