/* SPDX-License-Identifier: MIT */
/*
 * lib/fuzz/fuzz_mar.c -- libFuzzer target for the MAR reader: open the input
 * as an archive and, when it opens, list it, check every name, extract
 * every entry into memory (capped), take the signed digest and look up the
 * product information. Built by lib/local.mk with clang
 * -fsanitize=fuzzer,address; run by tests/unit/lib/fuzz_mar.sh.
 */
#include <stdint.h>
#include <stdlib.h>

#include "lib/mar/mar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd_error err = {0, ""};
    struct mar *m = NULL;
    uint8_t digest[48];
    size_t dlen = 0;

    if (mar_open_mem(data, size, &m, &err) != RD_OK)
        return 0;
    for (size_t i = 0; i < mar_entry_count(m); i++) {
        const struct mar_entry *e = mar_entry_get(m, i);
        uint8_t *out = NULL;
        size_t out_len = 0;
        (void)mar_name_check(e->name, &err);
        (void)mar_entry_compression(m, e);
        if (mar_extract_mem(m, e, 4u << 20, &out, &out_len, &err) == RD_OK)
            free(out);
        (void)mar_find(m, e->name);
    }
    (void)mar_signed_digest(m, MAR_SIG_RSA_PKCS1_SHA1, digest, &dlen, &err);
    (void)mar_signed_digest(m, MAR_SIG_RSA_PKCS1_SHA384, digest, &dlen, &err);
    (void)mar_channel(m);
    (void)mar_product_version(m);
    mar_close(m);
    return 0;
}
