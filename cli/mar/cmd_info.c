/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd_info.c -- relengd-mar info and list: what an archive holds.
 */
#include "config.h"

#include <stdio.h>

#include "cli/mar/cmd.h"
#include "lib/mar/mar.h"

static int open_one(const char *cmd, int argc, char **argv, struct mar **m)
{
    struct rd_error err = {0, ""};

    if (argc != 2)
        return mar_cli_usage(cmd);
    if (mar_open(argv[1], m, &err) != RD_OK)
        return mar_cli_fail(cmd, "%s", err.msg);
    return MAR_EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    struct mar *m = NULL;
    size_t len;
    int rc = open_one("info", argc, argv, &m);

    if (rc != MAR_EXIT_OK)
        return rc;
    mar_bytes(m, &len);
    printf("file: %s\nsize: %zu\nindex offset: %u\n", argv[1], len, mar_index_offset(m));
    if (!mar_has_signature_block(m)) {
        printf("format: 2005 (no signature block)\n");
    } else {
        printf("signatures: %zu\n", mar_signature_count(m));
        for (size_t i = 0; i < mar_signature_count(m); i++) {
            const struct mar_signature *s = mar_signature_get(m, i);
            printf("  signature %zu: algorithm %u (%s), %u bytes at %u\n", i, s->algorithm,
                   s->algorithm == MAR_SIG_RSA_PKCS1_SHA1     ? "RSA-PKCS1-SHA1"
                   : s->algorithm == MAR_SIG_RSA_PKCS1_SHA384 ? "RSA-PKCS1-SHA384"
                                                              : "unknown",
                   s->size, s->offset);
        }
        printf("additional sections: %zu\n", mar_additional_section_count(m));
    }
    if (mar_has_product_info(m))
        printf("channel: %s\nversion: %s\n", mar_channel(m), mar_product_version(m));
    printf("entries: %zu\n", mar_entry_count(m));
    mar_close(m);
    return MAR_EXIT_OK;
}

int cmd_list(int argc, char **argv)
{
    static const char *const comp[] = {"none", "bz2", "xz"};
    struct mar *m = NULL;
    int rc = open_one("list", argc, argv, &m);

    if (rc != MAR_EXIT_OK)
        return rc;
    printf("SIZE\tMODE\tCOMP\tNAME\n");
    for (size_t i = 0; i < mar_entry_count(m); i++) {
        const struct mar_entry *e = mar_entry_get(m, i);
        printf("%u\t%03o\t%s\t%s\n", e->size, e->flags & 0777, comp[mar_entry_compression(m, e)],
               e->name);
    }
    mar_close(m);
    return MAR_EXIT_OK;
}
