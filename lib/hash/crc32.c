/* SPDX-License-Identifier: MIT */
/*
 * lib/hash/crc32.c -- CRC-32/BZIP2, the checksum Mozilla's mbsdiff stores
 * for the source file (bzip2's table: MSB first, unreflected).
 */
#include <pthread.h>

#include "lib/hash/hash.h"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 24;
        for (int k = 0; k < 8; k++)
            c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
        crc_table[i] = c;
    }
}

uint32_t hash_crc32_bzip2_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    pthread_once(&crc_once, crc_table_init);
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ crc_table[(crc >> 24) ^ p[i]];
    return crc;
}

uint32_t hash_crc32_bzip2(const void *buf, size_t len)
{
    return ~hash_crc32_bzip2_update(0xFFFFFFFFu, buf, len);
}
