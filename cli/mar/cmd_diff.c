/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_diff.c -- relengd-mar diff and patch: MBDIFF10 patches
 * between two files, uncompressed, as Mozilla's mbsdiff writes them.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "cli/mar/cmd.h"
#include "lib/mbsdiff/mbsdiff.h"

int cmd_diff(int argc, char **argv)
{
    struct rd_error err = {0, ""};
    uint8_t *old = NULL, *nw = NULL, *patch = NULL;
    size_t old_len = 0, new_len = 0, patch_len = 0;
    int rc = MAR_EXIT_OK;

    if (argc != 4)
        return mar_cli_usage("diff");
    if (mar_cli_read(argv[1], &old, &old_len, &err) != RD_OK ||
        mar_cli_read(argv[2], &nw, &new_len, &err) != RD_OK ||
        mbsdiff_diff(old, old_len, nw, new_len, &patch, &patch_len, &err) != RD_OK) {
        rc = mar_cli_fail("diff", "%s", err.msg);
        goto out;
    }
    /* The inputs go before the patch is written: peak memory stays the
       differ's own. */
    free(old);
    old = NULL;
    free(nw);
    nw = NULL;
    if (mar_cli_write(argv[3], patch, patch_len, 0644, &err) != RD_OK)
        rc = mar_cli_fail("diff", "%s", err.msg);
out:
    free(old);
    free(nw);
    free(patch);
    return rc;
}

int cmd_patch(int argc, char **argv)
{
    struct rd_error err = {0, ""};
    uint8_t *old = NULL, *patch = NULL, *nw = NULL;
    size_t old_len = 0, patch_len = 0, new_len = 0;
    struct stat st;
    int rc = MAR_EXIT_OK;

    if (argc != 4)
        return mar_cli_usage("patch");
    if (mar_cli_read(argv[1], &old, &old_len, &err) != RD_OK ||
        mar_cli_read(argv[2], &patch, &patch_len, &err) != RD_OK ||
        mbsdiff_apply(old, old_len, patch, patch_len, &nw, &new_len, &err) != RD_OK ||
        mar_cli_write(argv[3], nw, new_len, stat(argv[1], &st) == 0 ? st.st_mode & 0777 : 0644,
                      &err) != RD_OK)
        rc = mar_cli_fail("patch", "%s", err.msg);
    free(old);
    free(patch);
    free(nw);
    return rc;
}
