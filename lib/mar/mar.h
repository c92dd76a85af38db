/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/mar.h -- Mozilla ARchive (MAR) files: read, extract, write, verify,
 * sign. Host-independent: no rd_* host calls, only the error type and codes
 * of core/module.h (struct rd_error, RD_E*), so a module can hand its own
 * struct rd_error straight through.
 *
 * Format (all integers big-endian; see lib/README.md and
 * ../shared/reference/mar.md):
 *   "MAR1" | u32 OffsetToIndex
 *   [new format] u64 FileSize | u32 NumSignatures | NumSignatures x
 *                (u32 AlgorithmID | u32 SignatureSize | bytes)
 *   [new format] u32 NumAdditionalSections | sections (u32 BlockSize incl.
 *                its 8-byte header | u32 BlockID | data); id 1 = product
 *                information: channel id NUL, product version NUL, padding
 *   content (each entry a whole bzip2 or xz stream, compressed per file)
 *   index at OffsetToIndex: u32 IndexSize (bytes) | entries
 *                (u32 offset | u32 size | u32 flags | name NUL)
 *
 * Thread safety: a struct mar is immutable after mar_open*; any number of
 * threads may read, extract from and verify one archive at once. Every
 * function returns RD_OK (0) or a negative RD_E* code and, when err is not
 * NULL, fills err with a sentence naming the problem. Nothing aborts.
 *
 * Error codes used: RD_EINVAL (bad argument, hostile name, unsupported
 * algorithm), RD_ECORRUPT (malformed or truncated archive, bad compressed
 * stream, signature does not verify), RD_ETOOBIG (over a size limit),
 * RD_ENOTFOUND (no such entry; unsigned archive on verify), RD_EIO (file
 * system), RD_ENOMEM, RD_ECONFLICT (target file already exists).
 */
#ifndef RELENGD_LIB_MAR_H
#define RELENGD_LIB_MAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h" /* struct rd_error, RD_E* only */

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ limits */
#define MAR_MAX_FILE_SIZE (500u * 1024u * 1024u) /* libmar MAX_SIZE_OF_MAR_FILE */
#define MAR_MAX_SIGNATURES 8u                    /* libmar MAX_SIGNATURES */
#define MAR_MAX_SIGNATURE_LEN 2048u              /* libmar MAX_SIGNATURE_LENGTH */
#define MAR_MAX_CHANNEL_LEN 63u                  /* strlen limit, PIB_MAX_MAR_CHANNEL_ID_SIZE */
#define MAR_MAX_VERSION_LEN 31u                  /* strlen limit, PIB_MAX_PRODUCT_VERSION_SIZE */
#define MAR_PIB_BLOCK_SIZE 104u                  /* 8 + 63+1 + 31+1, what libmar writes */
#define MAR_MAX_NAME_LEN 1024u                   /* our limit on an entry name */
/* Default cap on one decompressed entry (the updater's xz dictionary limit is
   64 MiB; files themselves can be bigger, so callers may raise it). */
#define MAR_DEFAULT_MAX_ENTRY (1024u * 1024u * 1024u)

/* Signature algorithm ids. */
#define MAR_SIG_RSA_PKCS1_SHA1 1u   /* RSA-PKCS#1 v1.5 + SHA-1 (Firefox 10-56) */
#define MAR_SIG_RSA_PKCS1_SHA384 2u /* RSA-PKCS#1 v1.5 + SHA-384 (current) */

/* xz preset flag (liblzma's LZMA_PRESET_EXTREME, "xz -e"). */
#define MAR_XZ_EXTREME 0x80000000u

/* Per-entry compression. */
enum mar_compression {
    MAR_COMP_NONE = 0, /* stored as is (not what Mozilla's updater reads) */
    MAR_COMP_BZ2 = 1,  /* bzip2 -9 (updaters before Firefox 56) */
    MAR_COMP_XZ = 2,   /* xz, lzma2, CRC64 check (current) */
};

/* ------------------------------------------------------------- reading */

struct mar; /* an opened, fully validated archive; owns a copy of its bytes */

/* One index entry. Borrowed from its struct mar, valid until mar_close. */
struct mar_entry {
    uint32_t offset; /* absolute offset of the stored (compressed) bytes */
    uint32_t size;   /* stored (compressed) length */
    uint32_t flags;  /* unix permission bits (st_mode & 0777 when written) */
    const char *name;
};

/* One signature of the signature block. Borrowed, valid until mar_close. */
struct mar_signature {
    uint32_t algorithm; /* MAR_SIG_* (other ids are listed, never verified) */
    uint32_t size;      /* length of bytes */
    uint32_t offset;    /* where bytes start in the file */
    const uint8_t *bytes;
};

/* Open path (read whole into memory; refused above MAR_MAX_FILE_SIZE), or a
   buffer (copied; the caller keeps buf). The whole structure is validated
   here: header, signature block (count <= 8, sizes <= 2048), additional
   sections, product information block, index (IndexSize consumed exactly,
   every name NUL-terminated, non-empty, <= MAR_MAX_NAME_LEN), every entry
   inside the content area (after the headers, before the index) and no two
   non-empty entries overlapping. Names are NOT checked for safety here (a
   listing must show what is there); mar_extract_all and mar_name_check do. */
int mar_open(const char *path, struct mar **out, struct rd_error *err);
int mar_open_mem(const void *buf, size_t len, struct mar **out, struct rd_error *err);
void mar_close(struct mar *m); /* NULL-safe */

/* The archive's bytes, borrowed until mar_close. */
const uint8_t *mar_bytes(const struct mar *m, size_t *len);
uint32_t mar_index_offset(const struct mar *m);

/* true if the archive has the signature block (FileSize + NumSignatures):
   every MAR written since 2012; false for the 2005 format. */
bool mar_has_signature_block(const struct mar *m);
size_t mar_signature_count(const struct mar *m);
const struct mar_signature *mar_signature_get(const struct mar *m, size_t i); /* NULL if out */

/* Product information block (additional section id 1). Borrowed strings;
   both NULL when the archive has none. */
bool mar_has_product_info(const struct mar *m);
const char *mar_channel(const struct mar *m);
const char *mar_product_version(const struct mar *m);
size_t mar_additional_section_count(const struct mar *m);

/* Entries in index order (the order of the file's index, which for archives
   written by mar_write_* is the order given to the writer). */
size_t mar_entry_count(const struct mar *m);
const struct mar_entry *mar_entry_get(const struct mar *m, size_t i);    /* NULL if out */
const struct mar_entry *mar_find(const struct mar *m, const char *name); /* NULL if none */

/* The stored bytes of e, borrowed until mar_close. */
const uint8_t *mar_entry_stored(const struct mar *m, const struct mar_entry *e);
/* The compression of e's stored bytes by magic: "BZh" bz2, FD 37 7A 58 5A 00
   xz, anything else MAR_COMP_NONE. */
enum mar_compression mar_entry_compression(const struct mar *m, const struct mar_entry *e);

/* Extract e decompressed (bz2/xz transparently, MAR_COMP_NONE copied) into
   a malloc'ed buffer *out (caller frees) of *out_len bytes. A result over
   max_len (0 = MAR_DEFAULT_MAX_ENTRY) is refused with RD_ETOOBIG; a bad or
   truncated stream, or trailing garbage after it, with RD_ECORRUPT. */
int mar_extract_mem(const struct mar *m, const struct mar_entry *e, size_t max_len, uint8_t **out,
                    size_t *out_len, struct rd_error *err);
/* The same, streamed to fd (written fully; fd stays open, not rewound). */
int mar_extract_fd(const struct mar *m, const struct mar_entry *e, int fd, size_t max_len,
                   struct rd_error *err);

/* Is name safe to create below a directory? Refuses empty names, absolute
   names, "." or ".." components, empty components ("a//b", trailing '/'),
   backslashes and control characters. RD_OK or RD_EINVAL. Pure. */
int mar_name_check(const char *name, struct rd_error *err);

/* Extract every entry, decompressed, below dir_fd (a directory the caller
   opened) or below the directory path dir (which must exist). Every name is
   checked with mar_name_check first (nothing is written if one fails);
   directories are created (0755) and walked with openat(O_NOFOLLOW |
   O_DIRECTORY), files created with openat(O_CREAT | O_EXCL | O_NOFOLLOW)
   and mode flags & 0777, so no symlink already in the tree, no name and no
   duplicate entry can make a write land outside the target or replace a
   file (RD_ECONFLICT). max_entry as for mar_extract_mem. */
int mar_extract_all_at(const struct mar *m, int dir_fd, size_t max_entry, struct rd_error *err);
int mar_extract_all(const struct mar *m, const char *dir, size_t max_entry, struct rd_error *err);

/* ------------------------------------------------------- verification */

/* The digest of exactly the bytes Mozilla's verifier hashes: the whole file
   with only each signature's bytes left out (bytes [0, 20), then each
   signature's AlgorithmID and SignatureSize, then everything after the
   signature block). algorithm selects SHA-1 (1) or SHA-384 (2); out must
   hold 48 bytes; *out_len gets 20 or 48. RD_EINVAL for another algorithm or
   an archive without a signature block. */
int mar_signed_digest(const struct mar *m, uint32_t algorithm, uint8_t *out, size_t *out_len,
                      struct rd_error *err);

/* Verify with public keys (PEM SubjectPublicKeyInfo or RSA PUBLIC KEY) as
   libmar's mar_verify_signatures does: n_keys must equal the number of
   signatures and signature i must verify with key i. RD_OK if all verify;
   RD_ENOTFOUND for an unsigned archive (never success); RD_EINVAL for an
   unsupported algorithm id, a key that does not parse, or a count
   mismatch; RD_ECORRUPT when a signature does not verify. */
int mar_verify(const struct mar *m, const char *const *pem_keys, const size_t *pem_lens,
               size_t n_keys, struct rd_error *err);
/* One key, one signature: the updater's check. pem_len 0 = strlen(pem). */
int mar_verify_pem(const struct mar *m, const char *pem, size_t pem_len, struct rd_error *err);
/* Read the key from a PEM file. */
int mar_verify_pem_file(const struct mar *m, const char *key_path, struct rd_error *err);

/* Sign: produce a new archive (malloc'ed, caller frees) equal to m with its
   signature block replaced by one signature per key (PEM private keys,
   RSA, n_keys <= 8, all with the same algorithm), laid out as signmar does
   (every offset moved by the growth of the signature block, then the
   digest taken over the final layout). Deterministic (PKCS#1 v1.5). An
   already signed m is refused (RD_ECONFLICT) unless replace is true. */
int mar_sign(const struct mar *m, const char *const *pem_keys, const size_t *pem_lens,
             size_t n_keys, uint32_t algorithm, bool replace, uint8_t **out, size_t *out_len,
             struct rd_error *err);

/* ------------------------------------------------------------- writing */

/* One file to put into an archive. Exactly one of data (len bytes, may be 0
   with data non-NULL) or path (read whole) is set. */
struct mar_input {
    const char *name;   /* stored name; must pass mar_name_check */
    uint32_t flags;     /* permission bits, & 0777 is stored */
    const void *data;   /* borrowed for the call */
    size_t len;         /* bytes at data */
    const char *path;   /* or read this file */
    bool is_compressed; /* data/path already is a bz2/xz stream: stored as is */
};

struct mar_write_opts {
    enum mar_compression compression; /* per entry; mar_write_opts_init: MAR_COMP_XZ */
    uint32_t xz_preset;               /* 0..9, | MAR_XZ_EXTREME; Mozilla's packaging uses
                                         7 | MAR_XZ_EXTREME; mar_write_opts_init sets 6 */
    bool xz_bcj_x86;                  /* add the x86 BCJ filter (Mozilla does for x86 full files) */
    bool has_product_info;            /* write the product information block */
    const char *channel;              /* MAR channel id, strlen <= 63 */
    const char *product_version;      /* strlen <= 31 */
    bool old_format;                  /* 2005 layout: no signature block, no sections */
    size_t n_signatures;              /* zeroed signature slots (filled in by a signer), <= 8 */
    uint32_t sig_algorithm[MAR_MAX_SIGNATURES];
    uint32_t sig_size[MAR_MAX_SIGNATURES]; /* <= 2048 each */
};

/* Defaults: xz, preset 6, no BCJ, product info off, new format, no signature. */
void mar_write_opts_init(struct mar_write_opts *o);

/* Build an archive from n inputs, in that order (content and index alike).
   Names are checked (mar_name_check) and must be unique; the result must
   stay within MAR_MAX_FILE_SIZE. mar_write_mem returns a malloc'ed buffer
   (caller frees); mar_write_file writes path.tmp, fsyncs it and renames it
   to path, so path is never seen half-written. */
int mar_write_mem(const struct mar_write_opts *o, const struct mar_input *in, size_t n,
                  uint8_t **out, size_t *out_len, struct rd_error *err);
int mar_write_file(const struct mar_write_opts *o, const struct mar_input *in, size_t n,
                   const char *path, struct rd_error *err);

/* ---------------------------------------------------- compression helpers */

/* Compress len bytes into a malloc'ed buffer (caller frees), as the writer
   does for one entry: MAR_COMP_XZ with xz_preset and optional x86 BCJ and a
   CRC64 check; MAR_COMP_BZ2 at level 9; MAR_COMP_NONE copies. Thread-safe:
   partial generation compares xz(patch) with xz(full file) with these. */
int mar_compress(enum mar_compression c, uint32_t xz_preset, bool xz_bcj_x86, const void *in,
                 size_t len, uint8_t **out, size_t *out_len, struct rd_error *err);
/* Decompress one whole bz2 or xz stream (detected by magic; anything else
   is refused with RD_ECORRUPT) into a malloc'ed buffer, refusing results
   over max_len (0 = MAR_DEFAULT_MAX_ENTRY) with RD_ETOOBIG. */
int mar_decompress(const void *in, size_t len, size_t max_len, uint8_t **out, size_t *out_len,
                   struct rd_error *err);

#ifdef __cplusplus
}
#endif

#endif
