/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/apply.c -- the updater's view of a partial MAR: parse its
 * manifest and apply it to a directory (see apply.h). Used to verify every
 * partial before it is published. One thread per call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mar/mar.h"
#include "lib/mbsdiff/mbsdiff.h"
#include "lib/partial/apply.h"
#include "lib/partial/manifest.h"

/* --------------------------------------------------------------- parse */

static const struct {
    const char *method;
    size_t n_params;
} methods[] = {
    {"type", 1},     {"add", 1},    {"add-if", 2}, {"add-if-not", 2}, {"patch", 2},
    {"patch-if", 3}, {"remove", 1}, {"rmdir", 1},  {"rmrfdir", 1},
};

static bool is_lws(char c)
{
    return c == ' ' || c == '\t';
}

int partial_line_parse(char *line, struct partial_line *out, struct rd_error *err)
{
    char *p = line;
    size_t want = 0;
    bool known = false;

    memset(out, 0, sizeof(*out));
    /* a CRLF manifest is valid too */
    {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
    }
    out->method = p;
    while (*p && !is_lws(*p))
        p++;
    if (*p)
        *p++ = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(out->method, methods[i].method) == 0) {
            want = methods[i].n_params;
            known = true;
        }
    if (!known)
        return rd_error_set(err, RD_EINVAL, "unknown manifest instruction \"%.40s\"", out->method);
    for (;;) {
        char *end;
        while (is_lws(*p))
            p++;
        if (!*p)
            break;
        if (*p != '"')
            return rd_error_set(err, RD_EINVAL, "%s: parameter not in double quotes", out->method);
        end = strchr(p + 1, '"');
        if (!end)
            return rd_error_set(err, RD_EINVAL, "%s: unterminated parameter", out->method);
        if (out->n_params == 3)
            return rd_error_set(err, RD_EINVAL, "%s: too many parameters", out->method);
        *end = '\0';
        out->param[out->n_params++] = p + 1;
        p = end + 1;
        if (*p && !is_lws(*p))
            return rd_error_set(err, RD_EINVAL, "%s: text after a parameter", out->method);
    }
    if (out->n_params != want)
        return rd_error_set(err, RD_EINVAL, "%s: %zu parameters, expected %zu", out->method,
                            out->n_params, want);
    return RD_OK;
}

/* --------------------------------------------------------------- apply */

struct applier {
    const struct mar *m;
    const char *dir;
    size_t max_entry;
    struct partial_apply_report *rep;
    struct rd_error *err;
};

/* dir + "/" + rel (rel without a trailing slash) into out. */
static int join(const struct applier *a, const char *rel, char *out, size_t len)
{
    char tmp[PATH_MAX];
    size_t rl = strlen(rel);

    if (rl >= sizeof(tmp))
        return rd_error_set(a->err, RD_EINVAL, "path too long: %.100s", rel);
    memcpy(tmp, rel, rl + 1);
    if (rl > 0 && tmp[rl - 1] == '/')
        tmp[rl - 1] = '\0';
    if (!partial_path_ok(tmp))
        return rd_error_set(a->err, RD_EINVAL, "refusing manifest path \"%.200s\"", rel);
    if (snprintf(out, len, "%s/%s", a->dir, tmp) >= (int)len)
        return rd_error_set(a->err, RD_EINVAL, "path too long: %.100s", rel);
    return RD_OK;
}

/* lstat says it exists (a file, a directory, anything). */
static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* mkdir -p of path's parent directories (never through a symlink). */
static int make_parents(const struct applier *a, const char *path)
{
    char tmp[PATH_MAX];
    size_t skip = strlen(a->dir) + 1;

    if (strlen(path) >= sizeof(tmp))
        return RD_EINVAL;
    memcpy(tmp, path, strlen(path) + 1);
    for (char *p = tmp + skip; (p = strchr(p, '/')); p++) {
        struct stat st;
        *p = '\0';
        if (lstat(tmp, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return rd_error_set(a->err, RD_ECONFLICT, "%s is not a directory", tmp + skip);
        } else if (mkdir(tmp, 0755) != 0) {
            return rd_error_set(a->err, RD_EIO, "mkdir %s: %s", tmp + skip, strerror(errno));
        }
        *p = '/';
    }
    return RD_OK;
}

static int write_file(const struct applier *a, const char *path, const uint8_t *data, size_t len,
                      mode_t mode)
{
    int fd, rc = RD_OK;
    size_t off = 0;

    rc = make_parents(a, path);
    if (rc != RD_OK)
        return rc;
    /* the updater replaces the file: unlink first so a symlink is never followed */
    if (unlink(path) != 0 && errno != ENOENT)
        return rd_error_set(a->err, RD_EIO, "replacing %s: %s", path, strerror(errno));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return rd_error_set(a->err, RD_EIO, "creating %s: %s", path, strerror(errno));
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rd_error_set(a->err, RD_EIO, "writing %s: %s", path, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0 && rc == RD_OK)
        rc = rd_error_set(a->err, RD_EIO, "closing %s: %s", path, strerror(errno));
    return rc;
}

int partial_read_file(const char *path, uint8_t **out, size_t *len, struct rd_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    uint8_t *buf = NULL;
    size_t off = 0;
    int rc = RD_OK;

    if (fd < 0)
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "opening %s: %s", path,
                            strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rd_error_set(err, RD_EIO, "%s is not a regular file", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = RD_ENOMEM;
        goto out;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rd_error_set(err, RD_EIO, "reading %s", path);
            goto out;
        }
        off += (size_t)n;
    }
    *out = buf;
    *len = off;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int entry_data(const struct applier *a, const char *name, uint8_t **out, size_t *len,
                      uint32_t *flags)
{
    const struct mar_entry *e = mar_find(a->m, name);

    if (!e)
        return rd_error_set(a->err, RD_ENOTFOUND, "the manifest names \"%.200s\", not in the MAR",
                            name);
    if (flags)
        *flags = e->flags;
    return mar_extract_mem(a->m, e, a->max_entry, out, len, a->err);
}

static int do_add(const struct applier *a, const char *f)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    uint32_t flags = 0644;
    int rc;

    rc = join(a, f, path, sizeof(path));
    if (rc == RD_OK)
        rc = entry_data(a, f, &data, &len, &flags);
    if (rc == RD_OK)
        rc = write_file(a, path, data, len, (mode_t)(flags & 0777));
    free(data);
    return rc;
}

static int do_patch(const struct applier *a, const char *patch_name, const char *f)
{
    char path[PATH_MAX];
    uint8_t *patch = NULL, *old = NULL, *result = NULL;
    size_t patch_len = 0, old_len = 0, result_len = 0;
    struct stat st = {0};
    int rc;

    rc = join(a, f, path, sizeof(path));
    if (rc == RD_OK)
        rc = entry_data(a, patch_name, &patch, &patch_len, NULL);
    if (rc == RD_OK)
        rc = partial_read_file(path, &old, &old_len, a->err);
    if (rc == RD_OK)
        rc = mbsdiff_apply(old, old_len, patch, patch_len, &result, &result_len, a->err);
    if (rc == RD_OK && lstat(path, &st) != 0)
        rc = rd_error_set(a->err, RD_EIO, "stat %s", path);
    /* patching keeps the installed file's permissions */
    if (rc == RD_OK)
        rc = write_file(a, path, result, result_len, st.st_mode & 0777);
    if (rc != RD_OK && a->err && !strstr(a->err->msg, f)) {
        char msg[sizeof(a->err->msg)];
        memcpy(msg, a->err->msg, sizeof(msg));
        rd_error_set(a->err, rc, "patching %.120s: %s", f, msg);
    }
    free(patch);
    free(old);
    free(result);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int do_remove(const struct applier *a, const char *method, const char *f)
{
    char path[PATH_MAX];
    int rc = join(a, f, path, sizeof(path));

    if (rc != RD_OK)
        return rc;
    if (strcmp(method, "remove") == 0) {
        if (unlink(path) != 0 && errno != ENOENT)
            return rd_error_set(a->err, RD_EIO, "remove %s: %s", f, strerror(errno));
    } else if (strcmp(method, "rmdir") == 0) {
        /* the updater leaves a directory that is not empty */
        (void)rmdir(path);
    } else if (exists(path)) {
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return rd_error_set(a->err, RD_EIO, "rmrfdir %s: %s", f, strerror(errno));
    }
    return RD_OK;
}

static int skip(const struct applier *a, const char *f)
{
    char **v;
    struct partial_apply_report *rep = a->rep;

    if (!rep)
        return RD_OK;
    v = realloc(rep->skipped, (rep->n_skipped + 1) * sizeof(*v));
    if (!v)
        return RD_ENOMEM;
    rep->skipped = v;
    v[rep->n_skipped] = strdup(f);
    if (!v[rep->n_skipped])
        return RD_ENOMEM;
    rep->n_skipped++;
    return RD_OK;
}

static int apply_line(const struct applier *a, const struct partial_line *l)
{
    char test[PATH_MAX];
    const char *m = l->method;
    int rc;

    if (strcmp(m, "add") == 0)
        return do_add(a, l->param[0]);
    if (strcmp(m, "add-if") == 0 || strcmp(m, "patch-if") == 0) {
        const char *f = l->param[l->n_params - 1];
        rc = join(a, l->param[0], test, sizeof(test));
        if (rc != RD_OK)
            return rc;
        if (!exists(test))
            return skip(a, f);
        return strcmp(m, "add-if") == 0 ? do_add(a, f) : do_patch(a, l->param[1], f);
    }
    if (strcmp(m, "add-if-not") == 0) {
        rc = join(a, l->param[0], test, sizeof(test));
        if (rc != RD_OK)
            return rc;
        if (exists(test))
            return skip(a, l->param[1]);
        return do_add(a, l->param[1]);
    }
    if (strcmp(m, "patch") == 0)
        return do_patch(a, l->param[0], l->param[1]);
    if (strcmp(m, "type") == 0)
        return rd_error_set(a->err, RD_EINVAL, "type may only be the first line");
    return do_remove(a, m, l->param[0]);
}

int partial_apply_dir(const struct mar *m, const char *dir, size_t max_entry,
                      struct partial_apply_report *rep, struct rd_error *err)
{
    struct applier a = {.m = m, .dir = dir, .max_entry = max_entry, .rep = rep, .err = err};
    const struct mar_entry *e = mar_find(m, "updatev3.manifest");
    uint8_t *text = NULL;
    size_t len = 0, n = 0;
    int rc;

    if (rep)
        memset(rep, 0, sizeof(*rep));
    if (!e)
        e = mar_find(m, "updatev2.manifest");
    if (!e)
        return rd_error_set(err, RD_EINVAL,
                            "the MAR has no updatev3.manifest or updatev2.manifest");
    rc = mar_extract_mem(m, e, 64u * 1024 * 1024, &text, &len, err);
    if (rc != RD_OK)
        return rc;
    if (memchr(text, '\0', len)) {
        rc = rd_error_set(err, RD_EINVAL, "%s holds a NUL byte", e->name);
        goto out;
    }
    {
        uint8_t *t = realloc(text, len + 1);
        if (!t) {
            rc = RD_ENOMEM;
            goto out;
        }
        text = t;
        text[len] = '\0';
    }
    for (char *p = (char *)text; *p;) {
        char *nl = strchr(p, '\n');
        struct partial_line l;

        if (nl)
            *nl = '\0';
        if (*p && !(p[0] == '\r' && p[1] == '\0')) {
            rc = partial_line_parse(p, &l, err);
            if (rc != RD_OK)
                goto out;
            if (n == 0) {
                if (strcmp(l.method, "type") != 0 || strcmp(l.param[0], "partial") != 0) {
                    rc = rd_error_set(err, RD_EINVAL,
                                      "the manifest does not start with type \"partial\"");
                    goto out;
                }
            } else {
                rc = apply_line(&a, &l);
                if (rc != RD_OK)
                    goto out;
            }
            n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (n == 0)
        rc = rd_error_set(err, RD_EINVAL, "the manifest is empty");
    if (rep)
        rep->n_lines = n;
out:
    free(text);
    if (rc != RD_OK && rep)
        partial_apply_report_fini(rep);
    return rc;
}

int partial_tree_write(const char *dir, const char *rel, const void *data, size_t len,
                       unsigned mode, struct rd_error *err)
{
    struct applier a = {.dir = dir, .err = err};
    char path[PATH_MAX];
    int rc = join(&a, rel, path, sizeof(path));

    return rc == RD_OK ? write_file(&a, path, data, len, (mode_t)(mode & 0777)) : rc;
}

void partial_apply_report_fini(struct partial_apply_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n_skipped; i++)
        free(rep->skipped[i]);
    free(rep->skipped);
    memset(rep, 0, sizeof(*rep));
}

bool partial_apply_skipped(const struct partial_apply_report *rep, const char *path)
{
    for (size_t i = 0; rep && i < rep->n_skipped; i++)
        if (strcmp(rep->skipped[i], path) == 0)
            return true;
    return false;
}
