/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_verify.c -- relengd-mar verify: signature i must verify with
 * the i-th -k key, as libmar's mar_verify_signatures requires.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/mar/cmd.h"
#include "lib/mar/mar.h"

int cmd_verify(int argc, char **argv)
{
    struct rd_error err = {0, ""};
    const char *key_paths[MAR_MAX_SIGNATURES];
    char *keys[MAR_MAX_SIGNATURES] = {NULL};
    size_t lens[MAR_MAX_SIGNATURES] = {0}, n = 0;
    struct mar *m = NULL;
    int opt, rc = MAR_EXIT_OK;

    optind = 1;
    while ((opt = getopt(argc, argv, "+k:")) != -1) {
        if (opt != 'k' || n == MAR_MAX_SIGNATURES)
            return mar_cli_usage("verify");
        key_paths[n++] = optarg;
    }
    if (n == 0 || argc - optind != 1)
        return mar_cli_usage("verify");
    for (size_t i = 0; i < n; i++) {
        if (mar_cli_read(key_paths[i], (uint8_t **)&keys[i], &lens[i], &err) != RD_OK) {
            rc = mar_cli_fail("verify", "%s", err.msg);
            goto out;
        }
    }
    if (mar_open(argv[optind], &m, &err) != RD_OK ||
        mar_verify(m, (const char *const *)keys, lens, n, &err) != RD_OK) {
        rc = mar_cli_fail("verify", "%s: %s", argv[optind], err.msg);
        goto out;
    }
    printf("%s: %zu signature%s verified\n", argv[optind], n, n == 1 ? "" : "s");
out:
    mar_close(m);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    return rc;
}
