/* SPDX-License-Identifier: MIT */
/*
 * lib/hash/hash.h -- hashing helpers shared by the MAR and mbsdiff libraries
 * and their users: CRC-32/BZIP2 (the checksum MBDIFF10 patches carry) and
 * SHA-256/384/512 digests through OpenSSL. Pure, thread-safe.
 */
#ifndef RELENGD_LIB_HASH_H
#define RELENGD_LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/module.h" /* struct rd_error, RD_E* only */

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32/BZIP2: polynomial 0x04C11DB7, MSB first, init 0xFFFFFFFF, final
   complement ("123456789" -> 0xFC891918). Not zlib's CRC-32. To checksum in
   pieces: c = hash_crc32_bzip2_update(0xFFFFFFFF, ...) ... then ~c. */
uint32_t hash_crc32_bzip2(const void *buf, size_t len);
uint32_t hash_crc32_bzip2_update(uint32_t crc, const void *buf, size_t len);

enum hash_alg { HASH_SHA1, HASH_SHA256, HASH_SHA384, HASH_SHA512 };
#define HASH_MAX_LEN 64 /* bytes of the longest digest (SHA-512) */

/* Digest length in bytes of alg (20, 32, 48, 64). */
size_t hash_len(enum hash_alg alg);
/* Digest of len bytes into out (hash_len(alg) bytes). RD_OK or RD_ENOMEM. */
int hash_buf(enum hash_alg alg, const void *buf, size_t len, uint8_t *out, struct rd_error *err);
/* Digest of the rest of fd (read until EOF). RD_OK, RD_EIO or RD_ENOMEM. */
int hash_fd(enum hash_alg alg, int fd, uint8_t *out, struct rd_error *err);
/* Lower-case hex of len bytes into hex (2 * len + 1 bytes, NUL-terminated). */
void hash_hex(const uint8_t *digest, size_t len, char *hex);

#ifdef __cplusplus
}
#endif

#endif
