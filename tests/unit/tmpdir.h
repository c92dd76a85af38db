/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/tmpdir.h -- a temporary directory per test fixture: made with
 * mkdtemp under $TMPDIR (or /tmp), removed with the flat files in it (the
 * store's database, -wal and -shm files). Tests only.
 */
#ifndef RELENGD_TESTS_TMPDIR_H
#define RELENGD_TESTS_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fills dir with a new directory named after prefix; 0, or -1. */
static inline int test_tmpdir_make(char *dir, size_t len, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, len, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and the files directly in it. */
static inline void test_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    while (d && (e = readdir(d))) {
        char p[4096];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

#endif
