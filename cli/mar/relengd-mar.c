/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/relengd-mar.c -- relengd-mar, MAR archives and MBDIFF10 patches
 * from a shell, without the daemon: the command table, usage, and the
 * helpers shared by the commands (cli/mar/cmd.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/mar/cmd.h"

static const struct mar_command commands[] = {
    {"info", "FILE.mar", "header, signatures, product information", cmd_info},
    {"list", "FILE.mar", "entries: stored size, mode, name", cmd_list},
    {"extract", "[-C DIR] FILE.mar", "unpack every entry, decompressed, below DIR", cmd_extract},
    {"create", "[-C DIR] [-H CHANNEL -V VERSION] [-j | -J] [-s ALG:SIZE]... OUT.mar FILE...",
     "pack files (names relative to DIR), xz (-J, default) or bzip2 (-j)", cmd_create},
    {"verify", "-k KEY.pem [-k KEY.pem]... FILE.mar",
     "check the signatures, signature i with key i", cmd_verify},
    {"diff", "OLD NEW PATCH", "write an MBDIFF10 patch turning OLD into NEW", cmd_diff},
    {"patch", "OLD PATCH NEW", "apply an MBDIFF10 patch to OLD", cmd_patch},
    {"make-partial", "[-j] [-f FILE]... [-H CHANNEL] [-V VERSION] [-t N] FROM.mar TO.mar OUT.mar",
     "a partial update from two complete MARs, verified by applying it", cmd_make_partial},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fputs("usage: relengd-mar COMMAND [ARGS]\n\nCommands:\n", f);
    for (const struct mar_command *c = commands; c->name; c++)
        fprintf(f, "  %-8s %s\n           %s\n", c->name, c->usage, c->summary);
    fputs("\nExit status: 0 done, 1 failed, 2 bad usage.\n", f);
}

int mar_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "relengd-mar: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MAR_EXIT_FAIL;
}

int mar_cli_usage(const char *cmd)
{
    for (const struct mar_command *c = commands; c->name; c++)
        if (strcmp(c->name, cmd) == 0)
            fprintf(stderr, "usage: relengd-mar %s %s\n", c->name, c->usage);
    return MAR_EXIT_USAGE;
}

int mar_cli_read(const char *path, uint8_t **out, size_t *out_len, struct rd_error *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = RD_OK;

    if (fd < 0)
        return rd_error_set(err, RD_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rd_error_set(err, RD_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        rc = rd_error_set(err, RD_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rd_error_set(err, RD_EIO, "%s: %s", path, n ? strerror(errno) : "short read");
            goto out;
        }
        got += (size_t)n;
    }
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int mar_cli_write(const char *path, const uint8_t *buf, size_t len, unsigned mode,
                  struct rd_error *err)
{
    char tmp[4096];
    size_t done = 0;
    int fd, rc = RD_OK;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return rd_error_set(err, RD_EINVAL, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
            break;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0 && rc == RD_OK)
        rc = rd_error_set(err, RD_EIO, "%s: %s", tmp, strerror(errno));
    if (rc == RD_OK && rename(tmp, path) != 0)
        rc = rd_error_set(err, RD_EIO, "rename to %s: %s", path, strerror(errno));
    if (rc != RD_OK)
        unlink(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MAR_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return MAR_EXIT_OK;
    }
    for (const struct mar_command *c = commands; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "relengd-mar: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return MAR_EXIT_USAGE;
}
