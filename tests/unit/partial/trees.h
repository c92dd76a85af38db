/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/partial/trees.h -- two realistic builds for partial tests: a
 * small C program compiled twice (the second build with a small source
 * change) as the main executable and a library, a text resource changed on
 * one line, locale files, channel-prefs.js, update-settings.ini, an
 * extension under distribution/extensions/ID/, precomplete, removed-files
 * with file, "dir/" and "dir/ *" entries, a removed file and directory, a
 * new file, a one-byte file that changes and an incompressible file that is
 * replaced. Both trees are packed as complete MARs (xz, product
 * information, an add-per-file updatev3.manifest) with lib/mar.
 *
 * Tests only (header with static functions, as tests/unit/tmpdir.h).
 */
#ifndef RELENGD_TESTS_PARTIAL_TREES_H
#define RELENGD_TESTS_PARTIAL_TREES_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/mar/mar.h"

extern char **environ;

struct tree_file {
    const char *name;
    char *data;
    size_t len;
    unsigned mode;
};

struct tree {
    struct tree_file files[32];
    size_t n;
};

static inline void tree_add(struct tree *t, const char *name, const void *data, size_t len,
                            unsigned mode)
{
    struct tree_file *f = &t->files[t->n++];
    f->name = name;
    f->data = malloc(len + 1);
    memcpy(f->data, data, len);
    f->len = len;
    f->mode = mode;
}

static inline void tree_add_str(struct tree *t, const char *name, const char *s)
{
    tree_add(t, name, s, strlen(s), 0644);
}

static inline void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->files[i].data);
    t->n = 0;
}

static inline const struct tree_file *tree_find(const struct tree *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->files[i].name, name) == 0)
            return &t->files[i];
    return NULL;
}

static inline char *trees_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && len)
        *len = (size_t)n;
    return buf;
}

/* Compiles a generated C program (n_funcs functions; "change" alters one
   constant and adds a function, as a small source change does) into out.
   Returns 0 or -1. */
static inline int trees_compile(const char *dir, const char *out, int n_funcs, bool change,
                                bool shared)
{
    char src[512];
    FILE *f;
    pid_t pid;
    int status;
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[10];
    int k = 0;

    /* the builds do not depend on the locale: a second tree reuses them */
    if (access(out, R_OK) == 0)
        return 0;
    snprintf(src, sizeof(src), "%s/%s.c", dir, shared ? "lib" : "prog");
    f = fopen(src, "w");
    if (!f)
        return -1;
    fprintf(f, "#include <stdio.h>\n#include <string.h>\n");
    for (int i = 0; i < n_funcs; i++)
        fprintf(f,
                "int f%d(const char *s) { int h = %d; for (; *s; s++) h = h * 31 + *s + %d;"
                " if (h %% 7 == %d) puts(\"branch %d\"); return h ^ %d; }\n",
                i, i * 17 + 1, i % 13, i % 7, i, (change && i == n_funcs / 2) ? 4242 : i);
    if (change)
        fprintf(f, "int fnew(int x) { return x * 3 + 1; }\n");
    fprintf(f, "%sint run(int argc, char **argv) { int t = 0;\n", shared ? "" : "static ");
    for (int i = 0; i < n_funcs; i++)
        fprintf(f, " t += f%d(argc > 1 ? argv[1] : \"%s\");\n", i, change ? "v2" : "v1");
    fprintf(f, " printf(\"version %%s %%d\\n\", \"%s\", t); return 0; }\n", change ? "2.0" : "1.0");
    if (!shared)
        fprintf(f, "int main(int argc, char **argv) { return run(argc, argv); }\n");
    fclose(f);
    argv[k++] = (char *)cc;
    argv[k++] = (char *)"-O1";
    if (shared) {
        argv[k++] = (char *)"-shared";
        argv[k++] = (char *)"-fPIC";
    }
    argv[k++] = (char *)"-o";
    argv[k++] = (char *)out;
    argv[k++] = src;
    argv[k] = NULL;
    if (posix_spawnp(&pid, cc, NULL, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

/* A text resource of about 200 KB; "change" edits one line. */
static inline char *trees_text(bool change, size_t *len)
{
    size_t cap = 256 * 1024, n = 0;
    char *s = malloc(cap);

    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(s + n, cap - n, "resource.line.%d = %s value number %d of the omni\n",
                              i, (change && i == 1500) ? "CHANGED" : "original", i * 7);
    *len = n;
    return s;
}

/* Deterministic incompressible bytes. */
static inline void trees_random(char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (char)(x & 0xff);
    }
}

/* Fills from and to (see the file comment). locale_text varies one locale
   file so that a "second locale" shares every other file. Returns 0 or -1
   (compiler failure, printed). */
static inline int trees_build(const char *workdir, struct tree *from, struct tree *to,
                              const char *locale_text)
{
    char exe1[512], exe2[512], lib1[512], lib2[512];
    char *data;
    size_t len = 0;
    char rnd[4096];

    snprintf(exe1, sizeof(exe1), "%s/exe1", workdir);
    snprintf(exe2, sizeof(exe2), "%s/exe2", workdir);
    snprintf(lib1, sizeof(lib1), "%s/lib1", workdir);
    snprintf(lib2, sizeof(lib2), "%s/lib2", workdir);
    if (trees_compile(workdir, exe1, 40, false, false) != 0 ||
        trees_compile(workdir, exe2, 40, true, false) != 0 ||
        trees_compile(workdir, lib1, 200, false, true) != 0 ||
        trees_compile(workdir, lib2, 200, true, true) != 0) {
        fprintf(stderr, "trees: compiling the test program failed\n");
        return -1;
    }
    memset(from, 0, sizeof(*from));
    memset(to, 0, sizeof(*to));

    data = trees_slurp(exe1, &len);
    tree_add(from, "firefox.exe", data, len, 0755);
    free(data);
    data = trees_slurp(exe2, &len);
    tree_add(to, "firefox.exe", data, len, 0755);
    free(data);
    data = trees_slurp(lib1, &len);
    tree_add(from, "libxul.so", data, len, 0755);
    free(data);
    data = trees_slurp(lib2, &len);
    tree_add(to, "libxul.so", data, len, 0755);
    free(data);

    data = trees_text(false, &len);
    tree_add(from, "browser/omni.ja", data, len, 0644);
    free(data);
    data = trees_text(true, &len);
    tree_add(to, "browser/omni.ja", data, len, 0644);
    free(data);

    tree_add_str(from, "locale/browser.properties", locale_text);
    tree_add_str(to, "locale/browser.properties", locale_text);
    tree_add_str(from, "defaults/pref/channel-prefs.js",
                 "pref(\"app.update.channel\", \"release\");\n");
    tree_add_str(to, "defaults/pref/channel-prefs.js",
                 "pref(\"app.update.channel\", \"release\");\n");
    tree_add_str(from, "update-settings.ini",
                 "[Settings]\nACCEPTED_MAR_CHANNEL_IDS=firefox-mozilla-release\n");
    tree_add_str(to, "update-settings.ini",
                 "[Settings]\nACCEPTED_MAR_CHANNEL_IDS=firefox-mozilla-release,firefox-beta\n");
    tree_add_str(from, "distribution/extensions/helper@example.com/bootstrap.js",
                 "// helper 1.0\nfunction startup() { return 1; }\n");
    tree_add_str(to, "distribution/extensions/helper@example.com/bootstrap.js",
                 "// helper 1.1\nfunction startup() { return 2; }\n");
    tree_add_str(from, "obsolete/gone.txt", "this file is removed in the new build\n");
    tree_add_str(to, "new/feature.js", "export const feature = true;\n");
    tree_add_str(from, "tiny.txt", "a");
    tree_add_str(to, "tiny.txt", "b");
    trees_random(rnd, sizeof(rnd), 1);
    tree_add(from, "data/random.bin", rnd, sizeof(rnd), 0644);
    trees_random(rnd, sizeof(rnd), 2);
    tree_add(to, "data/random.bin", rnd, sizeof(rnd), 0644);
    tree_add_str(from, "precomplete",
                 "remove \"firefox.exe\"\nremove \"libxul.so\"\nrmdir \"obsolete/\"\n");
    tree_add_str(to, "precomplete",
                 "remove \"firefox.exe\"\nremove \"libxul.so\"\nremove \"new/feature.js\"\n");
    tree_add_str(from, "removed-files", "plugins/*\n");
    tree_add_str(to, "removed-files", "# gone\nold-extras/\nplugins/*\nlegacy.dll\n");
    return 0;
}

/* Packs t as a complete MAR at path (xz; an updatev3.manifest adding every
   file first, as a complete update has). 0 or -1. */
static inline int trees_pack(const struct tree *t, const char *path, const char *channel,
                             const char *version)
{
    struct mar_input in[40];
    struct mar_write_opts o;
    struct rd_error err = {0};
    char manifest[8192];
    size_t n = 0, off = 0;
    int rc;

    off += (size_t)snprintf(manifest + off, sizeof(manifest) - off, "type \"complete\"\n");
    for (size_t i = 0; i < t->n; i++)
        off += (size_t)snprintf(manifest + off, sizeof(manifest) - off, "add \"%s\"\n",
                                t->files[i].name);
    in[n++] = (struct mar_input){
        .name = "updatev3.manifest", .flags = 0644, .data = manifest, .len = off};
    for (size_t i = 0; i < t->n; i++)
        in[n++] = (struct mar_input){.name = t->files[i].name,
                                     .flags = t->files[i].mode,
                                     .data = t->files[i].data,
                                     .len = t->files[i].len};
    mar_write_opts_init(&o);
    o.compression = MAR_COMP_XZ;
    o.has_product_info = true;
    o.channel = channel;
    o.product_version = version;
    rc = mar_write_file(&o, in, n, path, &err);
    if (rc != RD_OK)
        fprintf(stderr, "trees: packing %s: %s\n", path, err.msg);
    return rc == RD_OK ? 0 : -1;
}

static inline int trees_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf dir. */
static inline void trees_rmrf(const char *dir)
{
    nftw(dir, trees_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The MARs the partials module's tests share, in a fresh directory under
   $TMPDIR: from.mar (1.0) and to.mar (2.0) from trees_build, to-de.mar (a
   2.0 whose text resource differs) and noprecomplete.mar (one file, no
   precomplete). */
struct trees_mars {
    char dir[256], from[300], to[300], to_de[300], noprecomplete[300];
    struct tree from_tree, to_tree;
};

/* Builds m in a new directory named prefix-XXXXXX. 0 or -1. */
static inline int trees_mars_make(struct trees_mars *m, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    struct tree a = {0}, b = {0}, bad = {0};
    int rc = -1;

    snprintf(m->dir, sizeof(m->dir), "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (!mkdtemp(m->dir))
        return -1;
    snprintf(m->from, sizeof(m->from), "%s/from.mar", m->dir);
    snprintf(m->to, sizeof(m->to), "%s/to.mar", m->dir);
    snprintf(m->to_de, sizeof(m->to_de), "%s/to-de.mar", m->dir);
    snprintf(m->noprecomplete, sizeof(m->noprecomplete), "%s/noprecomplete.mar", m->dir);
    tree_add_str(&bad, "a.txt", "no precomplete here");
    if (trees_build(m->dir, &m->from_tree, &m->to_tree, "title = Firefox\n") == 0 &&
        trees_pack(&m->from_tree, m->from, "firefox-mozilla-release", "1.0") == 0 &&
        trees_pack(&m->to_tree, m->to, "firefox-mozilla-release", "2.0") == 0 &&
        trees_build(m->dir, &a, &b, "title = Feuerfuchs\n") == 0 &&
        trees_pack(&b, m->to_de, "firefox-mozilla-release", "2.0") == 0 &&
        trees_pack(&bad, m->noprecomplete, "c", "1") == 0)
        rc = 0;
    tree_free(&a);
    tree_free(&b);
    tree_free(&bad);
    return rc;
}

/* Frees m's trees and removes its directory. */
static inline void trees_mars_free(struct trees_mars *m)
{
    tree_free(&m->from_tree);
    tree_free(&m->to_tree);
    trees_rmrf(m->dir);
}

#endif
