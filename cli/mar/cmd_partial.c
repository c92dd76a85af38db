/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_partial.c -- relengd-mar make-partial: a partial update MAR
 * from two complete MARs, without the daemon, with the same code as the
 * partials module (lib/partial): make_incremental_update.sh's rules, the
 * changed files diffed on one thread per core, the result verified by
 * applying it to the from tree before it is written. No diff cache.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/mar/cmd.h"
#include "lib/partial/generate.h"

#define MAX_FORCED 64

struct pool_ctx {
    struct partial_gen *g;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock;
    struct rd_error err; /* the first failure */
};

static void *diff_thread(void *arg)
{
    struct pool_ctx *c = arg;
    size_t n = partial_gen_n_diffs(c->g);

    for (;;) {
        size_t i = atomic_fetch_add(&c->next, 1);
        struct rd_error err = {0, ""};

        if (i >= n || atomic_load(&c->failed))
            break;
        if (partial_gen_diff(c->g, i, NULL, &err) != RD_OK) {
            pthread_mutex_lock(&c->lock);
            if (!atomic_exchange(&c->failed, 1))
                c->err = err;
            pthread_mutex_unlock(&c->lock);
            break;
        }
    }
    return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_make_partial(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'},
        {"exe", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *forced[MAX_FORCED + 1] = {NULL};
    size_t n_forced = 0;
    struct partial_opts o;
    struct partial_gen *g = NULL;
    struct partial_stats st;
    struct rd_error err = {0, ""};
    struct pool_ctx ctx = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t threads[64];
    long n_threads = sysconf(_SC_NPROCESSORS_ONLN);
    char work[4096] = "";
    const char *tmp = getenv("TMPDIR");
    bool quiet = false;
    double t0 = now_s(), t_diff = 0;
    int opt, rc = MAR_EXIT_OK, started = 0;

    partial_opts_init(&o);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "jf:H:V:t:e:q", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            o.format = PARTIAL_FMT_BZ2;
            break;
        case 'f':
            if (n_forced == MAX_FORCED)
                return mar_cli_fail("make-partial", "at most %d -f files", MAX_FORCED);
            forced[n_forced++] = optarg;
            break;
        case 'H':
            o.channel = optarg;
            break;
        case 'V':
            o.version = optarg;
            break;
        case 't':
            n_threads = strtol(optarg, NULL, 10);
            if (n_threads < 1 || n_threads > 64)
                return mar_cli_fail("make-partial", "--threads: 1 to 64");
            break;
        case 'e':
            o.rules.main_exe = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            return mar_cli_usage("make-partial");
        }
    }
    if (argc - optind != 3)
        return mar_cli_usage("make-partial");
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > 64)
        n_threads = 64;
    /* the script's default -f, plus the user's */
    if (n_forced < MAX_FORCED)
        forced[n_forced++] = "Contents/MacOS/firefox";
    o.rules.forced = forced;
    snprintf(work, sizeof(work), "%s/relengd-partial-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(work)) {
        work[0] = '\0';
        rc = mar_cli_fail("make-partial", "mkdtemp: %s", strerror(errno));
        goto out;
    }
    o.workdir = work;
    if (partial_gen_open(argv[optind], argv[optind + 1], &o, &g, &err) != RD_OK) {
        rc = mar_cli_fail("make-partial", "%s", err.msg);
        goto out;
    }
    ctx.g = g;
    t_diff = now_s();
    for (long i = 0; i < n_threads; i++) {
        if (pthread_create(&threads[i], NULL, diff_thread, &ctx) != 0)
            break;
        started++;
    }
    if (started == 0)
        diff_thread(&ctx);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    t_diff = now_s() - t_diff;
    if (atomic_load(&ctx.failed)) {
        rc = mar_cli_fail("make-partial", "%s", ctx.err.msg);
        goto out;
    }
    if (partial_gen_pack(g, argv[optind + 2], &err) != RD_OK) {
        rc = mar_cli_fail("make-partial", "%s", err.msg);
        goto out;
    }
    if (partial_gen_verify(g, argv[optind + 2], &err) != RD_OK) {
        unlink(argv[optind + 2]);
        rc = mar_cli_fail("make-partial", "%s (nothing written)", err.msg);
        goto out;
    }
    if (!quiet) {
        partial_gen_stats(g, &st);
        printf("%s: %llu bytes, %zu entries, channel %s, version %s\n", argv[optind + 2],
               (unsigned long long)st.partial_size, st.n_entries, partial_gen_channel(g),
               partial_gen_version(g));
        printf("files: %zu from, %zu to; compared %zu: %zu unchanged, %zu patched, %zu whole\n",
               st.n_from, st.n_to, st.n_diffs, st.n_same, st.n_patch, st.n_full);
        printf("time: %.2f s (diff %.2f s on %d threads); verified by applying\n", now_s() - t0,
               t_diff, started ? started : 1);
    }
out:
    if (work[0])
        nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    partial_gen_free(g);
    pthread_mutex_destroy(&ctx.lock);
    return rc;
}
