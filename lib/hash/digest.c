/* SPDX-License-Identifier: MIT */
/*
 * lib/hash/digest.c -- SHA-1/256/384/512 of a buffer or a file descriptor
 * through OpenSSL's EVP interface, and hex output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/hash/hash.h"

static const EVP_MD *hash_md(enum hash_alg alg)
{
    switch (alg) {
    case HASH_SHA1:
        return EVP_sha1();
    case HASH_SHA256:
        return EVP_sha256();
    case HASH_SHA384:
        return EVP_sha384();
    case HASH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

size_t hash_len(enum hash_alg alg)
{
    const EVP_MD *md = hash_md(alg);
    return md ? (size_t)EVP_MD_get_size(md) : 0;
}

int hash_buf(enum hash_alg alg, const void *buf, size_t len, uint8_t *out, struct rd_error *err)
{
    const EVP_MD *md = hash_md(alg);
    unsigned int n = 0;

    if (!md)
        return rd_error_set(err, RD_EINVAL, "unknown hash algorithm %d", (int)alg);
    if (!EVP_Digest(len ? buf : "", len, out, &n, md, NULL))
        return rd_error_set(err, RD_ENOMEM, "digest failed");
    return RD_OK;
}

int hash_fd(enum hash_alg alg, int fd, uint8_t *out, struct rd_error *err)
{
    const EVP_MD *md = hash_md(alg);
    EVP_MD_CTX *ctx = NULL;
    /* On the heap: callers include HTTP handlers, whose threads have 100 KiB
       stacks in Debian's civetweb. */
    enum { CHUNK = 65536 };
    unsigned char *chunk = NULL;
    int rc = RD_OK;

    if (!md)
        return rd_error_set(err, RD_EINVAL, "unknown hash algorithm %d", (int)alg);
    ctx = EVP_MD_CTX_new();
    chunk = malloc(CHUNK);
    if (!ctx || !chunk || !EVP_DigestInit_ex(ctx, md, NULL)) {
        rc = rd_error_set(err, RD_ENOMEM, "digest: out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rd_error_set(err, RD_EIO, "read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(ctx, chunk, (size_t)n)) {
            rc = rd_error_set(err, RD_ENOMEM, "digest failed");
            goto out;
        }
    }
    if (!EVP_DigestFinal_ex(ctx, out, NULL))
        rc = rd_error_set(err, RD_ENOMEM, "digest failed");
out:
    free(chunk);
    EVP_MD_CTX_free(ctx);
    return rc;
}

void hash_hex(const uint8_t *digest, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * len] = '\0';
}
