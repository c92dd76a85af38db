/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/extract.c -- decompress entries into memory, into a file
 * descriptor, or into a directory tree that nothing in the archive can
 * escape: names are checked first, then every directory is walked with
 * openat(O_NOFOLLOW | O_DIRECTORY) and every file created with O_EXCL |
 * O_NOFOLLOW relative to its parent's descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mar/mar_int.h"

struct fd_sink {
    int fd;
};

static int fd_sink_write(void *arg, const uint8_t *data, size_t len, struct rd_error *err)
{
    struct fd_sink *s = arg;

    while (len) {
        ssize_t n = write(s->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rd_error_set(err, RD_EIO, "write: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return RD_OK;
}

static int prefix_name(const struct mar_entry *e, int rc, struct rd_error *err)
{
    if (rc != RD_OK && err) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        rd_error_set(err, rc, "%.128s: %s", e->name, msg);
    }
    return rc;
}

int mar_extract_mem(const struct mar *m, const struct mar_entry *e, size_t max_len, uint8_t **out,
                    size_t *out_len, struct rd_error *err)
{
    int rc;

    *out = NULL;
    *out_len = 0;
    if (mar_entry_compression(m, e) == MAR_COMP_NONE) {
        if (max_len && e->size > max_len)
            return prefix_name(
                e, rd_error_set(err, RD_ETOOBIG, "exceeds the limit of %zu bytes", max_len), err);
        *out = malloc(e->size ? e->size : 1);
        if (!*out)
            return rd_error_set(err, RD_ENOMEM, "out of memory");
        memcpy(*out, m->buf + e->offset, e->size);
        *out_len = e->size;
        return RD_OK;
    }
    rc = mar_decompress(m->buf + e->offset, e->size, max_len, out, out_len, err);
    return prefix_name(e, rc, err);
}

int mar_extract_fd(const struct mar *m, const struct mar_entry *e, int fd, size_t max_len,
                   struct rd_error *err)
{
    struct fd_sink s = {fd};
    return prefix_name(
        e, mar_decompress_to(m->buf + e->offset, e->size, max_len, fd_sink_write, &s, err), err);
}

/* Opens (creating it if missing) the directory name below dir_fd. */
static int open_subdir(int dir_fd, const char *name, int *out, struct rd_error *err)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(dir_fd, name, 0755) != 0 && errno != EEXIST)
            return rd_error_set(err, RD_EIO, "mkdir %s: %s", name, strerror(errno));
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        struct stat st;
        bool is_link = fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        return rd_error_set(err, RD_EINVAL, "%s: %s", name,
                            is_link ? "is a symbolic link, not followed" : "not a directory");
    }
    if (fd < 0)
        return rd_error_set(err, RD_EIO, "directory %s: %s", name, strerror(errno));
    *out = fd;
    return RD_OK;
}

static int extract_one(const struct mar *m, const struct mar_entry *e, int root_fd,
                       size_t max_entry, struct rd_error *err)
{
    char path[MAR_MAX_NAME_LEN + 1];
    char *comp = path, *slash;
    int dir_fd = -1, fd = -1, rc = RD_OK;

    snprintf(path, sizeof(path), "%s", e->name);
    dir_fd = dup(root_fd);
    if (dir_fd < 0)
        return rd_error_set(err, RD_EIO, "dup: %s", strerror(errno));
    while ((slash = strchr(comp, '/')) != NULL) {
        int next = -1;
        *slash = '\0';
        rc = open_subdir(dir_fd, comp, &next, err);
        if (rc != RD_OK)
            goto out;
        close(dir_fd);
        dir_fd = next;
        comp = slash + 1;
    }
    fd = openat(dir_fd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                (mode_t)(e->flags & 0777));
    if (fd < 0) {
        if (errno == EEXIST)
            rc = rd_error_set(err, RD_ECONFLICT, "already exists (duplicate entry?), not replaced");
        else if (errno == ELOOP)
            rc = rd_error_set(err, RD_EINVAL, "is a symbolic link, not followed");
        else
            rc = rd_error_set(err, RD_EIO, "%s", strerror(errno));
        goto out;
    }
    {
        struct fd_sink s = {fd};
        rc = mar_decompress_to(m->buf + e->offset, e->size, max_entry, fd_sink_write, &s, err);
    }
    if (rc != RD_OK) {
        unlinkat(dir_fd, comp, 0); /* no half-written file left behind */
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = rd_error_set(err, RD_EIO, "close: %s", strerror(errno));
        goto out;
    }
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    close(dir_fd);
    return rc;
}

int mar_extract_all_at(const struct mar *m, int dir_fd, size_t max_entry, struct rd_error *err)
{
    int rc;

    for (size_t i = 0; i < m->n_entries; i++) {
        rc = mar_name_check(m->entries[i].name, err);
        if (rc != RD_OK)
            return rc;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        rc = extract_one(m, &m->entries[i], dir_fd, max_entry, err);
        if (rc != RD_OK)
            return prefix_name(&m->entries[i], rc, err);
    }
    return RD_OK;
}

int mar_extract_all(const struct mar *m, const char *dir, size_t max_entry, struct rd_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "%s: %s", dir,
                            strerror(errno));
    rc = mar_extract_all_at(m, fd, max_entry, err);
    close(fd);
    return rc;
}
