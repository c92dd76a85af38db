/* SPDX-License-Identifier: MIT */
/*
 * lib/hash/crc32.c -- CRC-32/BZIP2, the checksum Mozilla's mbsdiff stores
 * for the source file (bzip2's table: MSB first, unreflected), four bytes
 * per step with four derived tables ("slicing by 4"): the updater checks
 * every source file with it, so it runs over whole installations.
 */
#include <pthread.h>

#include "lib/hash/hash.h"

static uint32_t crc_table[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 24;
        for (int k = 0; k < 8; k++)
            c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
        crc_table[0][i] = c;
    }
    /* table[k][i]: the CRC of byte i followed by k zero bytes. */
    for (int k = 1; k < 4; k++)
        for (uint32_t i = 0; i < 256; i++)
            crc_table[k][i] = (crc_table[k - 1][i] << 8) ^ crc_table[0][crc_table[k - 1][i] >> 24];
}

uint32_t hash_crc32_bzip2_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i = 0;

    pthread_once(&crc_once, crc_table_init);
    for (; i + 4 <= len; i += 4) {
        crc ^= (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
        crc = crc_table[3][crc >> 24] ^ crc_table[2][(crc >> 16) & 0xff] ^
              crc_table[1][(crc >> 8) & 0xff] ^ crc_table[0][crc & 0xff];
    }
    for (; i < len; i++)
        crc = (crc << 8) ^ crc_table[0][(crc >> 24) ^ p[i]];
    return crc;
}

uint32_t hash_crc32_bzip2(const void *buf, size_t len)
{
    return ~hash_crc32_bzip2_update(0xFFFFFFFFu, buf, len);
}
