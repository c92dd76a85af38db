/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_create.c -- relengd-mar create: pack files into a new MAR,
 * each compressed on its own (xz by default, bzip2 with -j), with the
 * product information block (-H/-V) and zeroed signature slots (filled in
 * by a signer; -s ALG:SIZE).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/mar/cmd.h"
#include "lib/mar/mar.h"

static int parse_slot(const char *s, uint32_t *alg, uint32_t *size)
{
    char *end;
    unsigned long a, n;

    errno = 0;
    a = strtoul(s, &end, 10);
    if (errno || end == s || *end != ':')
        return -1;
    s = end + 1;
    n = strtoul(s, &end, 10);
    if (errno || end == s || *end || n > MAR_MAX_SIGNATURE_LEN || a > UINT32_MAX)
        return -1;
    *alg = (uint32_t)a;
    *size = (uint32_t)n;
    return 0;
}

int cmd_create(int argc, char **argv)
{
    struct rd_error err = {0, ""};
    struct mar_write_opts o;
    struct mar_input *in = NULL;
    char **paths = NULL;
    const char *dir = NULL, *out;
    size_t n = 0;
    int opt, rc = MAR_EXIT_OK;

    mar_write_opts_init(&o);
    optind = 1;
    while ((opt = getopt(argc, argv, "+C:H:V:jJs:")) != -1) {
        switch (opt) {
        case 'C':
            dir = optarg;
            break;
        case 'H':
            o.channel = optarg;
            break;
        case 'V':
            o.product_version = optarg;
            break;
        case 'j':
            o.compression = MAR_COMP_BZ2;
            break;
        case 'J':
            o.compression = MAR_COMP_XZ;
            break;
        case 's':
            if (o.n_signatures == MAR_MAX_SIGNATURES ||
                parse_slot(optarg, &o.sig_algorithm[o.n_signatures], &o.sig_size[o.n_signatures]) !=
                    0)
                return mar_cli_usage("create");
            o.n_signatures++;
            break;
        default:
            return mar_cli_usage("create");
        }
    }
    if (argc - optind < 1 || !o.channel != !o.product_version)
        return mar_cli_usage("create");
    o.has_product_info = o.channel != NULL;
    out = argv[optind++];
    n = (size_t)(argc - optind);
    in = calloc(n ? n : 1, sizeof(*in));
    paths = calloc(n ? n : 1, sizeof(*paths));
    if (!in || !paths) {
        rc = mar_cli_fail("create", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = argv[optind + (int)i];
        struct stat st;
        size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;

        paths[i] = malloc(len);
        if (!paths[i]) {
            rc = mar_cli_fail("create", "out of memory");
            goto out;
        }
        snprintf(paths[i], len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
        if (stat(paths[i], &st) != 0) {
            rc = mar_cli_fail("create", "%s: %s", paths[i], strerror(errno));
            goto out;
        }
        in[i] = (struct mar_input){.name = name, .flags = st.st_mode & 0777, .path = paths[i]};
    }
    if (mar_write_file(&o, in, n, out, &err) != RD_OK)
        rc = mar_cli_fail("create", "%s", err.msg);
out:
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(in);
    return rc;
}
