/* SPDX-License-Identifier: MIT */
/*
 * core/config.h -- INI files (parsed by libinih) held as entries with their
 * origin ("etc/relengd.conf:12", "env RELENGD_LISTEN"), and applied to C
 * structs through rd_cfg_key tables: defaults, typed values with units,
 * unknown keys and bad values rejected with their origin. Main thread.
 */
#ifndef RELENGD_CONFIG_H
#define RELENGD_CONFIG_H

#include <stdio.h>

#include "core/module.h"

struct cfg_entry {
    char *section; /* "" before any [header] */
    char *key;
    char *value;
    char *origin; /* "file:line" or "env NAME" or "--set" */
    bool used;    /* consumed by a cfg_apply; leftovers are reported */
};

struct cfg_file {
    char *path;
    struct cfg_entry *v;
    size_t n;
};

/* Strings handed out to conf structs; freed together. */
struct cfg_strings {
    char **v;
    size_t n, cap;
};

/* RD_ENOTFOUND if the file does not exist; RD_EINVAL with "file:line: ..."
   on a syntax error or a key given twice in one section. */
int cfg_file_load(const char *path, struct cfg_file **out, struct rd_error *err);
int cfg_file_new(const char *path, struct cfg_file **out);
void cfg_file_free(struct cfg_file *f);
/* Sets (replacing) section.key; origin says where it came from. */
int cfg_file_set(struct cfg_file *f, const char *section, const char *key, const char *value,
                 const char *origin);
const struct cfg_entry *cfg_file_get(const struct cfg_file *f, const char *section,
                                     const char *key);
/* Section names in file order, each once; fn stops the walk by returning != 0. */
int cfg_file_sections(const struct cfg_file *f, const char *prefix, rd_section_fn fn, void *arg);

/* Fills conf from section's entries (section may be an alias list "a|b":
   entries of any of them count). Unknown keys in that section are errors.
   Relative PATH values are resolved against path_base (if not NULL). */
int cfg_apply(struct cfg_file *f, const char *section, const struct rd_cfg_key *keys, void *conf,
              const char *path_base, struct cfg_strings *strings, struct rd_error *err);

void cfg_strings_free(struct cfg_strings *s);
/* Takes str (may be NULL) into s; returns it, or NULL (str freed) on ENOMEM. */
char *cfg_strings_keep(struct cfg_strings *s, char *str);

/* The first entry no cfg_apply consumed (an unknown section), or NULL. */
const struct cfg_entry *cfg_file_unused(const struct cfg_file *f);

/* Value parsers: RD_OK or RD_EINVAL. */
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_int(const char *s, int64_t *out);
int cfg_parse_double(const char *s, double *out);
int cfg_parse_size(const char *s, uint64_t *out);    /* 512, 64k, 64KiB, 10MB, 20GiB */
int cfg_parse_duration(const char *s, uint64_t *ms); /* 250ms, 30s, 5m, 2h, 7d; bare = s */

/* A sample file documenting every key of a table (for --print-config). */
int cfg_write_sample(FILE *out, const char *section, const struct rd_cfg_key *keys);

#endif
