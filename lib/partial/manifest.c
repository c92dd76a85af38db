/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/manifest.c -- make_incremental_update.sh's manifest rules as
 * pure functions (see manifest.h for the rules). No I/O, any thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/partial/manifest.h"

/* ------------------------------------------------------------ helpers */

/* A growable list of owned lines. */
struct lines {
    char **v;
    size_t n, cap;
};

static int lines_add(struct lines *l, char *s)
{
    if (!s)
        return RD_ENOMEM;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            free(s);
            return RD_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return RD_OK;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static char *fmt_line(const char *fmt, ...) RD_PRINTF(1, 2);
static char *fmt_line(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool sorted_has(const char *const *v, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Whether path has a segment-aligned occurrence of dir ("X.framework/"). */
static bool has_dir_segment(const char *path, const char *dir)
{
    for (const char *p = path; (p = strstr(p, dir)); p++)
        if (p == path || p[-1] == '/')
            return true;
    return false;
}

/* ------------------------------------------------------ classification */

static const char *const always_forced[] = {
    "precomplete",
    "Contents/Resources/precomplete",
    "removed-files",
    "Contents/Resources/removed-files",
    "Contents/CodeResources",
    NULL,
};

enum partial_class partial_classify(const struct partial_rules *rules, const char *path)
{
    const char *base = base_name(path);
    const char *dot;

    /* add-if-not comes first: the script tests it before the forced list */
    if (strcmp(base, "channel-prefs.js") == 0 || strcmp(base, "update-settings.ini") == 0 ||
        has_dir_segment(path, "ChannelPrefs.framework/") ||
        has_dir_segment(path, "UpdateSettings.framework/"))
        return PARTIAL_CLASS_ADD_IF_NOT;
    for (size_t i = 0; always_forced[i]; i++)
        if (strcmp(path, always_forced[i]) == 0)
            return PARTIAL_CLASS_FORCED;
    /* ${f##*.} = "chk": the text after the last dot of the whole path */
    dot = strrchr(path, '.');
    if (dot && strcmp(dot + 1, "chk") == 0)
        return PARTIAL_CLASS_FORCED;
    if (rules && rules->forced)
        for (size_t i = 0; rules->forced[i]; i++)
            if (strcmp(path, rules->forced[i]) == 0)
                return PARTIAL_CLASS_FORCED;
    return PARTIAL_CLASS_DIFF;
}

bool partial_extension_dir(const char *path, char *out, size_t out_len)
{
    static const char key[] = "distribution/extensions/";
    const char *best = NULL, *end = NULL;

    /* The script's sed keeps the greedy prefix up to the ID: the last occurrence
       of the key that is followed by an ID and a slash wins. */
    for (const char *p = path; (p = strstr(p, key)); p++) {
        const char *slash = strchr(p + sizeof(key) - 1, '/');
        if (slash) {
            best = p;
            end = slash;
        }
    }
    if (!best || (size_t)(end - path) >= out_len)
        return false;
    memcpy(out, path, (size_t)(end - path));
    out[end - path] = '\0';
    return true;
}

bool partial_path_ok(const char *path)
{
    const char *seg = path;

    if (!path || !*path || *path == '/')
        return false;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*p == '\0')
                return true;
            seg = p + 1;
        } else if (*p == '"' || (unsigned char)*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
}

const char *partial_removed_files_path(const char *const *to_files, size_t n_to)
{
    const char *mac = NULL;

    for (size_t i = 0; i < n_to; i++) {
        if (strcmp(to_files[i], "removed-files") == 0)
            return to_files[i];
        if (strcmp(to_files[i], "Contents/Resources/removed-files") == 0)
            mac = to_files[i];
    }
    return mac;
}

bool partial_has_precomplete(const char *const *to_files, size_t n_to)
{
    for (size_t i = 0; i < n_to; i++)
        if (strcmp(to_files[i], "precomplete") == 0 ||
            strcmp(to_files[i], "Contents/Resources/precomplete") == 0)
            return true;
    return false;
}

/* --------------------------------------------------------------- build */

struct build {
    const struct partial_rules *rules;
    struct lines v3, v2;
    struct partial_entry *entries;
    size_t n_entries;
};

/* Adds the same line to v3 and (when written) v2; takes s. */
static int emit_both(struct build *b, char *s)
{
    int rc;

    if (!s)
        return RD_ENOMEM;
    if (b->rules->v2) {
        char *copy = strdup(s);
        rc = lines_add(&b->v2, copy);
        if (rc != RD_OK) {
            free(s);
            return rc;
        }
    }
    return lines_add(&b->v3, s);
}

static int add_entry(struct build *b, const char *path, size_t ti, bool is_patch)
{
    char *name = is_patch ? fmt_line("%s.patch", path) : strdup(path);

    if (!name)
        return RD_ENOMEM;
    b->entries[b->n_entries].name = name;
    b->entries[b->n_entries].path = path;
    b->entries[b->n_entries].to_index = ti;
    b->entries[b->n_entries].is_patch = is_patch;
    b->n_entries++;
    return RD_OK;
}

/* add "f" or add-if "ext" "f", and the file as an entry. */
static int emit_add(struct build *b, const char *f, size_t ti)
{
    char ext[4096];
    int rc;

    if (partial_extension_dir(f, ext, sizeof(ext)))
        rc = emit_both(b, fmt_line("add-if \"%s\" \"%s\"", ext, f));
    else
        rc = emit_both(b, fmt_line("add \"%s\"", f));
    return rc == RD_OK ? add_entry(b, f, ti, false) : rc;
}

/* add-if-not "f" "f": v3 only (v2 has no add-if-not). */
static int emit_add_if_not(struct build *b, const char *f, size_t ti)
{
    int rc = lines_add(&b->v3, fmt_line("add-if-not \"%s\" \"%s\"", f, f));
    return rc == RD_OK ? add_entry(b, f, ti, false) : rc;
}

static int emit_patch(struct build *b, const char *f, size_t ti)
{
    char ext[4096];
    int rc;

    if (partial_extension_dir(f, ext, sizeof(ext)))
        rc = emit_both(b, fmt_line("patch-if \"%s\" \"%s.patch\" \"%s\"", ext, f, f));
    else
        rc = emit_both(b, fmt_line("patch \"%s.patch\" \"%s\"", f, f));
    return rc == RD_OK ? add_entry(b, f, ti, true) : rc;
}

/* One removed-files line, normalised as the script's echo does: CR
   dropped, leading/trailing whitespace trimmed, inner runs collapsed to one
   space. Returns a new string, "" for a line to skip is still returned. */
static char *normalise_line(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    bool space = false;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\r')
            continue;
        if (c == ' ' || c == '\t') {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

static int cmp_str_rev(const void *a, const void *b)
{
    return -cmp_str(a, b);
}

static int emit_removed_files(struct build *b, const char *text, struct rd_error *err)
{
    struct lines l = {0};
    int rc = RD_OK;

    if (!text)
        return RD_OK;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *s = normalise_line(p, len);

        if (!s) {
            rc = RD_ENOMEM;
            goto out;
        }
        if (!*s || *s == '#') {
            free(s);
        } else {
            rc = lines_add(&l, s);
            if (rc != RD_OK)
                goto out;
        }
        p += len + (nl ? 1 : 0);
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str_rev);
    for (size_t i = 0; i < l.n; i++) {
        char *f = l.v[i];
        size_t len = strlen(f);
        const char *check = f;
        char *line;

        if (len >= 2 && f[len - 2] == '/' && f[len - 1] == '*') {
            f[len - 1] = '\0'; /* "d/" and a star: rmrfdir "d/" */
            line = fmt_line("rmrfdir \"%s\"", f);
        } else if (f[len - 1] == '/') {
            line = fmt_line("rmdir \"%s\"", f);
        } else {
            line = fmt_line("remove \"%s\"", f);
        }
        /* the path checks want no trailing slash */
        {
            char tmp[4096];
            size_t tl = strlen(check);
            if (tl >= sizeof(tmp)) {
                free(line);
                rc = rd_error_set(err, RD_EINVAL, "removed-files: line too long");
                goto out;
            }
            memcpy(tmp, check, tl + 1);
            if (tl > 0 && tmp[tl - 1] == '/')
                tmp[tl - 1] = '\0';
            if (!partial_path_ok(tmp)) {
                free(line);
                rc = rd_error_set(err, RD_EINVAL, "removed-files: refusing path \"%.200s\"", check);
                goto out;
            }
        }
        rc = emit_both(b, line);
        if (rc != RD_OK)
            goto out;
    }
out:
    lines_free(&l);
    return rc;
}

/* Every directory implied by the paths ("a/b/c" -> "a", "a/b"), sorted,
   unique, into *out (owned strings). */
static int implied_dirs(const char *const *files, size_t n, struct lines *out)
{
    struct lines all = {0};
    int rc = RD_OK;

    for (size_t i = 0; i < n; i++)
        for (const char *p = files[i]; (p = strchr(p, '/')); p++) {
            rc = lines_add(&all, strndup(files[i], (size_t)(p - files[i])));
            if (rc != RD_OK)
                goto out;
        }
    if (all.n > 1)
        qsort(all.v, all.n, sizeof(*all.v), cmp_str);
    for (size_t i = 0; i < all.n; i++) {
        if (out->n > 0 && strcmp(out->v[out->n - 1], all.v[i]) == 0)
            continue;
        rc = lines_add(out, all.v[i]);
        if (rc != RD_OK)
            goto out;
        all.v[i] = NULL; /* moved */
    }
out:
    lines_free(&all);
    return rc;
}

/* Moves lines whose last parameter is "<main_exe>" to the end, keeping the
   order within each group. */
static void move_main_exe_last(struct lines *l, const char *exe)
{
    char want[512];
    size_t wl, k = 0, n_tail = 0;
    char **tail;

    if (!exe || !*exe || l->n == 0)
        return;
    if (snprintf(want, sizeof(want), "\"%s\"", exe) >= (int)sizeof(want))
        return;
    wl = strlen(want);
    tail = malloc(l->n * sizeof(*tail));
    if (!tail)
        return; /* order is a nicety of the updater; keep the lines */
    for (size_t i = 0; i < l->n; i++) {
        size_t len = strlen(l->v[i]);
        if (len >= wl && strcmp(l->v[i] + len - wl, want) == 0)
            tail[n_tail++] = l->v[i];
        else
            l->v[k++] = l->v[i];
    }
    memcpy(l->v + k, tail, n_tail * sizeof(*tail));
    free(tail);
}

static char *join_lines(const struct lines *l)
{
    size_t total = 1, off = 0;
    char *s;

    for (size_t i = 0; i < l->n; i++)
        total += strlen(l->v[i]) + 1;
    s = malloc(total);
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        size_t len = strlen(l->v[i]);
        memcpy(s + off, l->v[i], len);
        s[off + len] = '\n';
        off += len + 1;
    }
    s[off] = '\0';
    return s;
}

/* Index of path in to_files (sorted index idx over to_files). */
struct to_index {
    const char *path;
    size_t i;
};

static int cmp_to_index(const void *a, const void *b)
{
    return strcmp(((const struct to_index *)a)->path, ((const struct to_index *)b)->path);
}

int partial_manifest_build(const struct partial_rules *rules, const struct partial_manifest_in *in,
                           struct partial_manifest *out, struct rd_error *err)
{
    struct build b = {.rules = rules};
    const char **from = NULL;
    struct to_index *to = NULL;
    const char **to_sorted = NULL;
    const char **removes = NULL;
    size_t n_removes = 0;
    struct lines from_dirs = {0}, to_dirs = {0};
    int rc = RD_OK;

    memset(out, 0, sizeof(*out));
    from = malloc((in->n_from + 1) * sizeof(*from));
    removes = malloc((in->n_from + 1) * sizeof(*removes));
    to = malloc((in->n_to + 1) * sizeof(*to));
    to_sorted = malloc((in->n_to + 1) * sizeof(*to_sorted));
    b.entries = calloc(in->n_to + 1, sizeof(*b.entries));
    if (!from || !removes || !to || !to_sorted || !b.entries) {
        rc = RD_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < in->n_from; i++) {
        if (!partial_path_ok(in->from_files[i])) {
            rc = rd_error_set(err, RD_EINVAL, "from tree: refusing path \"%.200s\"",
                              in->from_files[i] ? in->from_files[i] : "(null)");
            goto out;
        }
        from[i] = in->from_files[i];
    }
    for (size_t i = 0; i < in->n_to; i++) {
        if (!partial_path_ok(in->to_files[i])) {
            rc = rd_error_set(err, RD_EINVAL, "to tree: refusing path \"%.200s\"",
                              in->to_files[i] ? in->to_files[i] : "(null)");
            goto out;
        }
        to[i].path = in->to_files[i];
        to[i].i = i;
    }
    qsort(from, in->n_from, sizeof(*from), cmp_str);
    qsort(to, in->n_to, sizeof(*to), cmp_to_index);
    for (size_t i = 0; i < in->n_to; i++)
        to_sorted[i] = to[i].path;

    rc = lines_add(&b.v3, strdup("type \"partial\""));
    if (rc == RD_OK && rules->v2)
        rc = lines_add(&b.v2, strdup("type \"partial\""));
    if (rc != RD_OK)
        goto out;

    /* 2. from files, reverse order */
    for (size_t k = in->n_from; k-- > 0;) {
        const char *f = from[k];
        struct to_index key = {.path = f}, *hit;
        enum partial_choice c;

        hit = in->n_to ? bsearch(&key, to, in->n_to, sizeof(*to), cmp_to_index) : NULL;
        if (!hit) {
            removes[n_removes++] = f;
            continue;
        }
        /* the entry must point at the to list's string */
        f = hit->path;
        switch (partial_classify(rules, f)) {
        case PARTIAL_CLASS_ADD_IF_NOT:
            rc = emit_add_if_not(&b, f, hit->i);
            break;
        case PARTIAL_CLASS_FORCED:
            rc = emit_add(&b, f, hit->i);
            break;
        case PARTIAL_CLASS_DIFF:
            c = in->choice[hit->i];
            if (c == PARTIAL_PATCH)
                rc = emit_patch(&b, f, hit->i);
            else if (c == PARTIAL_FULL)
                rc = emit_add(&b, f, hit->i);
            else if (c != PARTIAL_SAME)
                rc = rd_error_set(err, RD_EINVAL, "%.200s: unknown choice %d", f, (int)c);
            break;
        }
        if (rc != RD_OK)
            goto out;
    }
    /* 3. to-only files, reverse order */
    for (size_t k = in->n_to; k-- > 0;) {
        const char *f = to[k].path;
        if (sorted_has(from, in->n_from, f))
            continue;
        if (partial_classify(rules, f) == PARTIAL_CLASS_ADD_IF_NOT)
            rc = emit_add_if_not(&b, f, to[k].i);
        else
            rc = emit_add(&b, f, to[k].i);
        if (rc != RD_OK)
            goto out;
    }
    /* 4. removes, removed-files, vanished directories */
    for (size_t i = 0; i < n_removes; i++) {
        rc = emit_both(&b, fmt_line("remove \"%s\"", removes[i]));
        if (rc != RD_OK)
            goto out;
    }
    rc = emit_removed_files(&b, in->removed_files, err);
    if (rc != RD_OK)
        goto out;
    rc = implied_dirs(from, in->n_from, &from_dirs);
    if (rc == RD_OK)
        rc = implied_dirs(to_sorted, in->n_to, &to_dirs);
    if (rc != RD_OK)
        goto out;
    for (size_t k = from_dirs.n; k-- > 0;) {
        if (sorted_has((const char *const *)to_dirs.v, to_dirs.n, from_dirs.v[k]))
            continue;
        rc = emit_both(&b, fmt_line("rmdir \"%s/\"", from_dirs.v[k]));
        if (rc != RD_OK)
            goto out;
    }
    /* 5. the main executable last */
    move_main_exe_last(&b.v3, rules->main_exe);
    move_main_exe_last(&b.v2, rules->main_exe);

    out->v3 = join_lines(&b.v3);
    out->v2 = rules->v2 ? join_lines(&b.v2) : NULL;
    if (!out->v3 || (rules->v2 && !out->v2)) {
        rc = RD_ENOMEM;
        goto out;
    }
    out->entries = b.entries;
    out->n_entries = b.n_entries;
    b.entries = NULL;
out:
    if (rc != RD_OK)
        partial_manifest_fini(out);
    if (b.entries)
        for (size_t i = 0; i < b.n_entries; i++)
            free(b.entries[i].name);
    free(b.entries);
    lines_free(&b.v3);
    lines_free(&b.v2);
    lines_free(&from_dirs);
    lines_free(&to_dirs);
    free(from);
    free(removes);
    free(to);
    free(to_sorted);
    return rc;
}

void partial_manifest_fini(struct partial_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].name);
    free(m->entries);
    free(m->v3);
    free(m->v2);
    memset(m, 0, sizeof(*m));
}
