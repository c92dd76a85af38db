/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_extract.c -- relengd-mar extract: every entry, decompressed,
 * below a directory (created if missing), refusing names that would leave it.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/mar/cmd.h"
#include "lib/mar/mar.h"

int cmd_extract(int argc, char **argv)
{
    struct rd_error err = {0, ""};
    const char *dir = ".";
    struct mar *m = NULL;
    int opt, rc = MAR_EXIT_OK;

    optind = 1;
    while ((opt = getopt(argc, argv, "+C:")) != -1) {
        if (opt != 'C')
            return mar_cli_usage("extract");
        dir = optarg;
    }
    if (argc - optind != 1)
        return mar_cli_usage("extract");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return mar_cli_fail("extract", "%s: %s", dir, strerror(errno));
    if (mar_open(argv[optind], &m, &err) != RD_OK || mar_extract_all(m, dir, 0, &err) != RD_OK)
        rc = mar_cli_fail("extract", "%s", err.msg);
    mar_close(m);
    return rc;
}
