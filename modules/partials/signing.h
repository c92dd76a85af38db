/* SPDX-License-Identifier: MIT */
/*
 * modules/partials/signing.h -- the signing service the partials module
 * expects, looked up at start with rd_service_get(h, "signing", 1). The
 * signing module is not written yet: until a module provides "signing",
 * partials are published unsigned (the job's "signed" is false and its
 * sign phase is skipped). When the signing module lands, it should provide
 * a vtable starting with these members (it may append more, and move the
 * struct to core/services/signing.h; this one then includes that).
 *
 * Threads: sign_mar is called on a pool thread and may block (it signs
 * locally with the key, or talks to a remote signer); it must be
 * thread-safe. Keys never cross this interface: only a key name.
 */
#ifndef RELENGD_PARTIALS_SIGNING_H
#define RELENGD_PARTIALS_SIGNING_H

#include <stdint.h>

#include "core/module.h"

#define PARTIALS_SIGNING_SERVICE "signing"
#define PARTIALS_SIGNING_VERSION 1

struct partials_signing_v1 {
    void *ctx; /* the provider's state, handed back to every call */
    /* Signs the MAR at in_path with the key named key (NULL or "": the
       provider's default MAR key) and writes the signed MAR to out_path
       (atomically; in_path is left alone). RD_OK, or an RD_E* code with err
       naming the problem (unknown key RD_ENOTFOUND, not a MAR RD_ECORRUPT,
       already signed RD_ECONFLICT). */
    int (*sign_mar)(void *ctx, const char *key, const char *in_path, const char *out_path,
                    struct rd_error *err);
};

#endif
