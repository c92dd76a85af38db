/* SPDX-License-Identifier: MIT */
/*
 * core/config.c -- configuration files and typed values. libinih does the
 * INI syntax; we feed it through a line-counting reader so every entry keeps
 * its file:line, and apply entries to structs through rd_cfg_key tables.
 * Main thread only (libinih's options are process-wide globals).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "core/config.h"

struct cfg_reader {
    FILE *fp;
    int line;
};

struct cfg_parse {
    struct cfg_file *f;
    struct cfg_reader *rd;
    struct rd_error *err;
    int rc;
};

static char *cfg_reader_gets(char *str, int num, void *stream)
{
    struct cfg_reader *rd = stream;
    char *s = fgets(str, num, rd->fp);

    if (s)
        rd->line++;
    return s;
}

static char *cfg_strdup_unquoted(const char *v)
{
    size_t n = strlen(v);

    /* "a value with # or ; in it" keeps its quotes out of the value. */
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        return strndup(v + 1, n - 2);
    return strdup(v);
}

static int cfg_file_add(struct cfg_file *f, const char *section, const char *key, const char *value,
                        const char *origin)
{
    struct cfg_entry *v = realloc(f->v, (f->n + 1) * sizeof(*v));
    struct cfg_entry *e;

    if (!v)
        return RD_ENOMEM;
    f->v = v;
    e = &f->v[f->n];
    memset(e, 0, sizeof(*e));
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = cfg_strdup_unquoted(value);
    e->origin = strdup(origin);
    if (!e->section || !e->key || !e->value || !e->origin) {
        free(e->section);
        free(e->key);
        free(e->value);
        free(e->origin);
        return RD_ENOMEM;
    }
    f->n++;
    return RD_OK;
}

static int cfg_on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_parse *p = user;
    char origin[512];
    const struct cfg_entry *dup;

    snprintf(origin, sizeof(origin), "%s:%d", p->f->path, p->rd->line);
    dup = cfg_file_get(p->f, section, name);
    if (dup) {
        p->rc = rd_error_set(p->err, RD_EINVAL, "%s: '%s' is set twice in [%s] (first at %s)",
                             origin, name, section, dup->origin);
        return 0;
    }
    if (cfg_file_add(p->f, section, name, value ? value : "", origin) != RD_OK) {
        p->rc = rd_error_set(p->err, RD_ENOMEM, "%s: out of memory", origin);
        return 0;
    }
    return 1;
}

int cfg_file_new(const char *path, struct cfg_file **out)
{
    struct cfg_file *f = calloc(1, sizeof(*f));

    if (!f)
        return RD_ENOMEM;
    f->path = strdup(path ? path : "(none)");
    if (!f->path) {
        free(f);
        return RD_ENOMEM;
    }
    *out = f;
    return RD_OK;
}

int cfg_file_load(const char *path, struct cfg_file **out, struct rd_error *err)
{
    struct cfg_reader rd = {0};
    struct cfg_parse p = {0};
    struct cfg_file *f = NULL;
    int rc, line;

    rd.fp = fopen(path, "r");
    if (!rd.fp) {
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "%s: cannot open: %s",
                            path, strerror(errno));
    }
    rc = cfg_file_new(path, &f);
    if (rc != RD_OK)
        goto out;
    /* Options are globals in Debian's libinih; set them on every parse. */
    ini_allow_multiline = false;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = (char *)"#;";
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 16384;
    ini_stop_on_first_error = true;
    ini_allow_no_value = false;

    p.f = f;
    p.rd = &rd;
    p.err = err;
    line = ini_parse_stream(cfg_reader_gets, &rd, cfg_on_entry, &p);
    if (p.rc != RD_OK) {
        rc = p.rc;
    } else if (line > 0) {
        rc = rd_error_set(err, RD_EINVAL,
                          "%s:%d: syntax error (expected [section], key = value, or # comment)",
                          path, line);
    } else if (line < 0) {
        rc = rd_error_set(err, RD_ENOMEM, "%s: out of memory while parsing", path);
    }
out:
    fclose(rd.fp);
    if (rc != RD_OK) {
        cfg_file_free(f);
        return rc;
    }
    *out = f;
    return RD_OK;
}

void cfg_file_free(struct cfg_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].section);
        free(f->v[i].key);
        free(f->v[i].value);
        free(f->v[i].origin);
    }
    free(f->v);
    free(f->path);
    free(f);
}

const struct cfg_entry *cfg_file_get(const struct cfg_file *f, const char *section, const char *key)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->v[i].section, section) == 0 && strcmp(f->v[i].key, key) == 0)
            return &f->v[i];
    return NULL;
}

int cfg_file_set(struct cfg_file *f, const char *section, const char *key, const char *value,
                 const char *origin)
{
    for (size_t i = 0; i < f->n; i++) {
        struct cfg_entry *e = &f->v[i];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0) {
            char *v = strdup(value), *o = strdup(origin);
            if (!v || !o) {
                free(v);
                free(o);
                return RD_ENOMEM;
            }
            free(e->value);
            free(e->origin);
            e->value = v;
            e->origin = o;
            return RD_OK;
        }
    }
    return cfg_file_add(f, section, key, value, origin);
}

int cfg_file_sections(const struct cfg_file *f, const char *prefix, rd_section_fn fn, void *arg)
{
    size_t plen = prefix ? strlen(prefix) : 0;

    for (size_t i = 0; f && i < f->n; i++) {
        const char *sec = f->v[i].section;
        bool seen = false;
        int rc;

        if (strncmp(sec, prefix ? prefix : "", plen) != 0 || sec[0] == '\0')
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(f->v[j].section, sec) == 0;
        if (seen)
            continue;
        rc = fn(sec, arg);
        if (rc != 0)
            return rc;
    }
    return RD_OK;
}

const struct cfg_entry *cfg_file_unused(const struct cfg_file *f)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (!f->v[i].used)
            return &f->v[i];
    return NULL;
}

/* ------------------------------------------------------------ values */

int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return RD_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return RD_OK;
        }
    }
    return RD_EINVAL;
}

int cfg_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return RD_EINVAL;
    *out = v;
    return RD_OK;
}

int cfg_parse_double(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return RD_EINVAL;
    *out = v;
    return RD_OK;
}

/* A non-negative number followed by a unit from table; "" is the bare unit. */
struct cfg_unit {
    const char *name;
    double mult;
};

static int cfg_parse_units(const char *s, const struct cfg_unit *units, size_t n_units,
                           bool allow_fraction, uint64_t *out)
{
    char *end;
    double v;

    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return RD_EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0)
        return RD_EINVAL;
    if (!allow_fraction && memchr(s, '.', (size_t)(end - s)))
        return RD_EINVAL;
    while (isspace((unsigned char)*end))
        end++;
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(end, units[i].name) == 0) {
            double r = v * units[i].mult;
            if (r >= 18446744073709551615.0)
                return RD_EINVAL;
            *out = (uint64_t)llround(r);
            return RD_OK;
        }
    }
    return RD_EINVAL;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
    static const struct cfg_unit units[] = {
        {"", 1},
        {"B", 1},
        {"k", 1024.0},
        {"K", 1024.0},
        {"KiB", 1024.0},
        {"KB", 1e3},
        {"M", 1048576.0},
        {"MiB", 1048576.0},
        {"MB", 1e6},
        {"G", 1073741824.0},
        {"GiB", 1073741824.0},
        {"GB", 1e9},
        {"T", 1099511627776.0},
        {"TiB", 1099511627776.0},
        {"TB", 1e12},
    };
    return cfg_parse_units(s, units, sizeof(units) / sizeof(units[0]), true, out);
}

int cfg_parse_duration(const char *s, uint64_t *ms)
{
    static const struct cfg_unit units[] = {
        {"", 1000},     {"ms", 1},      {"s", 1000},     {"m", 60000},
        {"min", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    return cfg_parse_units(s, units, sizeof(units) / sizeof(units[0]), true, ms);
}

/* ------------------------------------------------------------ tables */

void cfg_strings_free(struct cfg_strings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

char *cfg_strings_keep(struct cfg_strings *s, char *str)
{
    if (!str)
        return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v) {
            free(str);
            return NULL;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return str;
}

static bool cfg_section_in(const char *section, const char *aliases)
{
    size_t len = strlen(section);
    const char *p = aliases;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, section, n) == 0)
            return true;
        if (!bar)
            return false;
        p = bar + 1;
    }
}

static const char *cfg_type_words(enum rd_cfg_type t)
{
    switch (t) {
    case RD_CFG_T_BOOL:
        return "yes or no";
    case RD_CFG_T_INT:
        return "a whole number";
    case RD_CFG_T_DOUBLE:
        return "a number";
    case RD_CFG_T_SIZE:
        return "a size such as 512, 64KiB, 10MiB or 20GiB";
    case RD_CFG_T_DURATION:
        return "a duration such as 250ms, 30s, 5m, 2h or 7d";
    default:
        return "a string";
    }
}

static int cfg_set_value(const struct rd_cfg_key *k, void *conf, const char *value,
                         const char *path_base, struct cfg_strings *strings)
{
    char *field = (char *)conf + k->offset;
    int rc = RD_OK;

    switch (k->type) {
    case RD_CFG_T_STRING: {
        char *v = cfg_strings_keep(strings, strdup(value));
        if (!v)
            return RD_ENOMEM;
        *(const char **)field = v;
        break;
    }
    case RD_CFG_T_PATH: {
        char *v;
        if (value[0] == '\0' || value[0] == '/' || !path_base) {
            v = strdup(value);
        } else {
            size_t n = strlen(path_base) + strlen(value) + 2;
            v = malloc(n);
            if (v)
                snprintf(v, n, "%s/%s", path_base, value);
        }
        v = cfg_strings_keep(strings, v);
        if (!v)
            return RD_ENOMEM;
        *(const char **)field = v;
        break;
    }
    case RD_CFG_T_INT:
        rc = cfg_parse_int(value, (int64_t *)(void *)field);
        break;
    case RD_CFG_T_BOOL:
        rc = cfg_parse_bool(value, (bool *)(void *)field);
        break;
    case RD_CFG_T_SIZE:
        rc = cfg_parse_size(value, (uint64_t *)(void *)field);
        break;
    case RD_CFG_T_DURATION:
        rc = cfg_parse_duration(value, (uint64_t *)(void *)field);
        break;
    case RD_CFG_T_DOUBLE:
        rc = cfg_parse_double(value, (double *)(void *)field);
        break;
    default:
        rc = RD_EINVAL;
    }
    return rc;
}

static void cfg_known_keys(const struct rd_cfg_key *keys, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (const struct rd_cfg_key *k = keys; k->name && n < len; k++) {
        int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", k->name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

int cfg_apply(struct cfg_file *f, const char *section, const struct rd_cfg_key *keys, void *conf,
              const char *path_base, struct cfg_strings *strings, struct rd_error *err)
{
    int rc;

    /* Defaults first, so a table is complete even with an empty file. */
    for (const struct rd_cfg_key *k = keys; k->name; k++) {
        if (!k->def) {
            memset((char *)conf + k->offset, 0,
                   k->type == RD_CFG_T_BOOL                                 ? sizeof(bool)
                   : k->type == RD_CFG_T_STRING || k->type == RD_CFG_T_PATH ? sizeof(char *)
                                                                            : sizeof(uint64_t));
            continue;
        }
        rc = cfg_set_value(k, conf, k->def, path_base, strings);
        if (rc != RD_OK)
            return rd_error_set(err, rc == RD_ENOMEM ? RD_ENOMEM : RD_EINVAL,
                                "built-in default of '%s' (%s) is not %s", k->name, k->def,
                                cfg_type_words(k->type));
    }
    for (size_t i = 0; f && i < f->n; i++) {
        struct cfg_entry *e = &f->v[i];
        const struct rd_cfg_key *k = keys;

        if (!cfg_section_in(e->section, section))
            continue;
        while (k->name && strcmp(k->name, e->key) != 0)
            k++;
        if (!k->name) {
            char known[512];
            cfg_known_keys(keys, known, sizeof(known));
            return rd_error_set(err, RD_EINVAL, "%s: unknown key '%s' in [%s] (known keys: %s)",
                                e->origin, e->key, e->section[0] ? e->section : "top level", known);
        }
        rc = cfg_set_value(k, conf, e->value, path_base, strings);
        if (rc == RD_ENOMEM)
            return rd_error_set(err, rc, "%s: out of memory", e->origin);
        if (rc != RD_OK)
            return rd_error_set(err, RD_EINVAL, "%s: %s = '%s' is not %s", e->origin, e->key,
                                e->value, cfg_type_words(k->type));
        e->used = true;
    }
    return RD_OK;
}

static const char *cfg_default_text(const struct rd_cfg_key *k)
{
    if (k->def && k->def[0])
        return k->def;
    return k->type == RD_CFG_T_BOOL ? "no" : "";
}

int cfg_write_sample(FILE *out, const char *section, const struct rd_cfg_key *keys)
{
    if (section && section[0])
        fprintf(out, "[%s]\n", section);
    for (const struct rd_cfg_key *k = keys; k && k->name; k++)
        fprintf(out, "# %s = %s\n#   %s\n", k->name, cfg_default_text(k), k->doc ? k->doc : "");
    return ferror(out) ? RD_EIO : RD_OK;
}
