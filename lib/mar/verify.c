/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/verify.c -- MAR signatures: the digest over exactly the bytes
 * libmar's mar_verify_extracted_signatures feeds its hash (the whole file
 * minus each signature's bytes), RSA PKCS#1 v1.5 verification with SHA-1
 * (algorithm 1) or SHA-384 (algorithm 2), and signing laid out as
 * signmar's mar_repackage_and_sign does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "lib/mar/mar_int.h"

static const EVP_MD *sig_md(uint32_t algorithm)
{
    if (algorithm == MAR_SIG_RSA_PKCS1_SHA1)
        return EVP_sha1();
    if (algorithm == MAR_SIG_RSA_PKCS1_SHA384)
        return EVP_sha384();
    return NULL;
}

int mar_signed_digest(const struct mar *m, uint32_t algorithm, uint8_t *out, size_t *out_len,
                      struct rd_error *err)
{
    const EVP_MD *md = sig_md(algorithm);
    EVP_MD_CTX *ctx = NULL;
    unsigned int n = 0;
    int ok, rc = RD_OK;

    if (!md)
        return rd_error_set(err, RD_EINVAL, "unsupported signature algorithm %u", algorithm);
    if (!m->has_sig_block)
        return rd_error_set(err, RD_EINVAL, "a 2005-format MAR has no signature block");
    ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) &&
         EVP_DigestUpdate(ctx, m->buf, MAR_SIG_HEADER_END);
    for (size_t i = 0; ok && i < m->n_sigs; i++) /* AlgorithmID and SignatureSize */
        ok = EVP_DigestUpdate(ctx, m->buf + m->sigs[i].offset - 8, 8);
    ok = ok && EVP_DigestUpdate(ctx, m->buf + m->sig_end, m->len - m->sig_end) &&
         EVP_DigestFinal_ex(ctx, out, &n);
    if (!ok)
        rc = rd_error_set(err, RD_ENOMEM, "digest failed");
    else
        *out_len = n;
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int load_public(const char *pem, size_t len, EVP_PKEY **out, struct rd_error *err)
{
    BIO *bio = BIO_new_mem_buf(pem, len ? (int)len : -1);
    EVP_PKEY *k = NULL;

    if (!bio)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!k)
        return rd_error_set(err, RD_EINVAL, "not a PEM public key");
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return rd_error_set(err, RD_EINVAL, "not an RSA public key");
    }
    *out = k;
    return RD_OK;
}

static int verify_one(const struct mar *m, size_t i, EVP_PKEY *key, struct rd_error *err)
{
    const struct mar_signature *s = &m->sigs[i];
    uint8_t digest[EVP_MAX_MD_SIZE];
    size_t dlen = 0;
    EVP_PKEY_CTX *ctx = NULL;
    int rc, v;

    rc = mar_signed_digest(m, s->algorithm, digest, &dlen, err);
    if (rc != RD_OK)
        return rc;
    ctx = EVP_PKEY_CTX_new(key, NULL);
    if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(ctx, sig_md(s->algorithm)) <= 0) {
        rc = rd_error_set(err, RD_ENOMEM, "signature %zu: verifier setup failed", i);
        goto out;
    }
    v = EVP_PKEY_verify(ctx, s->bytes, s->size, digest, dlen);
    if (v != 1)
        rc = rd_error_set(err, RD_ECORRUPT,
                          "signature %zu (algorithm %u, %u bytes) does not verify with the key", i,
                          s->algorithm, s->size);
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int mar_verify(const struct mar *m, const char *const *pem_keys, const size_t *pem_lens,
               size_t n_keys, struct rd_error *err)
{
    int rc = RD_OK;

    if (!m->has_sig_block || m->n_sigs == 0)
        return rd_error_set(err, RD_ENOTFOUND, "the archive is not signed");
    for (size_t i = 0; i < m->n_sigs; i++)
        if (!sig_md(m->sigs[i].algorithm))
            return rd_error_set(err, RD_EINVAL, "signature %zu: unsupported algorithm %u", i,
                                m->sigs[i].algorithm);
    if (n_keys != m->n_sigs)
        return rd_error_set(err, RD_EINVAL, "%zu signatures but %zu keys: one key per signature",
                            m->n_sigs, n_keys);
    for (size_t i = 0; rc == RD_OK && i < n_keys; i++) {
        EVP_PKEY *k = NULL;
        rc = load_public(pem_keys[i], pem_lens ? pem_lens[i] : 0, &k, err);
        if (rc == RD_OK)
            rc = verify_one(m, i, k, err);
        EVP_PKEY_free(k);
    }
    return rc;
}

int mar_verify_pem(const struct mar *m, const char *pem, size_t pem_len, struct rd_error *err)
{
    return mar_verify(m, &pem, &pem_len, 1, err);
}

static int slurp_key(const char *path, char **out, size_t *out_len, struct rd_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = RD_OK;
    enum { KEY_MAX = 64 * 1024 };

    if (fd < 0)
        return rd_error_set(err, errno == ENOENT ? RD_ENOTFOUND : RD_EIO, "%s: %s", path,
                            strerror(errno));
    buf = malloc(KEY_MAX);
    if (!buf) {
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, KEY_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rd_error_set(err, RD_EIO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == KEY_MAX) {
            rc =
                rd_error_set(err, RD_ETOOBIG, "%s: larger than %d bytes: not a key", path, KEY_MAX);
            goto out;
        }
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int mar_verify_pem_file(const struct mar *m, const char *key_path, struct rd_error *err)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = slurp_key(key_path, &pem, &len, err);

    if (rc == RD_OK && len == 0)
        rc = rd_error_set(err, RD_EINVAL, "%s: empty key file", key_path);
    if (rc == RD_OK)
        rc = mar_verify_pem(m, pem, len, err);
    free(pem);
    return rc;
}

/* ---------------------------------------------------------------- signing */

static int load_private(const char *pem, size_t len, EVP_PKEY **out, struct rd_error *err)
{
    BIO *bio = BIO_new_mem_buf(pem, len ? (int)len : -1);
    EVP_PKEY *k = NULL;

    if (!bio)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!k)
        return rd_error_set(err, RD_EINVAL, "not a PEM private key");
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return rd_error_set(err, RD_EINVAL, "not an RSA private key");
    }
    *out = k;
    return RD_OK;
}

/* m's bytes with a new signature block of n zeroed signatures of the given
   sizes, every offset after it moved by the change in its size. */
static int relayout(const struct mar *m, size_t n, const uint32_t *sizes, uint32_t algorithm,
                    uint8_t **out, size_t *out_len, struct rd_error *err)
{
    uint64_t old_block = m->sig_end - MAR_SIG_HEADER_END, new_block = 0;
    uint64_t len;
    int64_t delta;
    uint8_t *b, *p;

    for (size_t i = 0; i < n; i++)
        new_block += 8 + (uint64_t)sizes[i];
    delta = (int64_t)new_block - (int64_t)old_block;
    len = (uint64_t)((int64_t)m->len + delta);
    if (len > MAR_MAX_FILE_SIZE)
        return rd_error_set(err, RD_ETOOBIG, "signed archive would exceed %u bytes",
                            MAR_MAX_FILE_SIZE);
    b = calloc(1, (size_t)len);
    if (!b)
        return rd_error_set(err, RD_ENOMEM, "out of memory");
    memcpy(b, MAR_ID, MAR_ID_LEN);
    mar_put32(b + MAR_ID_LEN, (uint32_t)((int64_t)m->index_offset + delta));
    mar_put64(b + MAR_HEADER_LEN, len);
    mar_put32(b + MAR_SIG_COUNT_OFFSET, (uint32_t)n);
    p = b + MAR_SIG_HEADER_END;
    for (size_t i = 0; i < n; i++) {
        mar_put32(p, algorithm);
        mar_put32(p + 4, sizes[i]);
        p += 8 + sizes[i];
    }
    memcpy(p, m->buf + m->sig_end, m->len - m->sig_end);
    /* Each index entry's OffsetToContent moves with the content. */
    {
        uint8_t *idx = b + (int64_t)m->index_offset + delta + 4;
        for (size_t i = 0; i < m->n_entries; i++) {
            mar_put32(idx, (uint32_t)((int64_t)mar_be32(idx) + delta));
            idx += MAR_INDEX_ENTRY_HEADER + strlen((const char *)idx + MAR_INDEX_ENTRY_HEADER) + 1;
        }
    }
    *out = b;
    *out_len = (size_t)len;
    return RD_OK;
}

int mar_sign(const struct mar *m, const char *const *pem_keys, const size_t *pem_lens,
             size_t n_keys, uint32_t algorithm, bool replace, uint8_t **out, size_t *out_len,
             struct rd_error *err)
{
    EVP_PKEY *keys[MAR_MAX_SIGNATURES] = {NULL};
    uint32_t sizes[MAR_MAX_SIGNATURES];
    uint8_t *b = NULL;
    size_t blen = 0;
    struct mar *signed_m = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    size_t dlen = 0;
    int rc = RD_OK;

    *out = NULL;
    *out_len = 0;
    if (!sig_md(algorithm))
        return rd_error_set(err, RD_EINVAL, "unsupported signature algorithm %u", algorithm);
    if (!m->has_sig_block)
        return rd_error_set(err, RD_EINVAL, "a 2005-format MAR has no signature block");
    if (m->n_sigs && !replace)
        return rd_error_set(err, RD_ECONFLICT, "the archive is already signed");
    if (n_keys == 0 || n_keys > MAR_MAX_SIGNATURES)
        return rd_error_set(err, RD_EINVAL, "%zu keys: between 1 and %u", n_keys,
                            MAR_MAX_SIGNATURES);
    for (size_t i = 0; i < n_keys; i++) {
        int bits;
        rc = load_private(pem_keys[i], pem_lens ? pem_lens[i] : 0, &keys[i], err);
        if (rc != RD_OK)
            goto out;
        bits = EVP_PKEY_get_bits(keys[i]);
        if (bits < 2048) {
            rc = rd_error_set(err, RD_EINVAL, "key %zu: %d bits, Mozilla requires at least 2048", i,
                              bits);
            goto out;
        }
        sizes[i] = (uint32_t)EVP_PKEY_get_size(keys[i]);
        if (sizes[i] > MAR_MAX_SIGNATURE_LEN) {
            rc = rd_error_set(err, RD_EINVAL, "key %zu: %u-byte signatures, the limit is %u", i,
                              sizes[i], MAR_MAX_SIGNATURE_LEN);
            goto out;
        }
    }
    rc = relayout(m, n_keys, sizes, algorithm, &b, &blen, err);
    if (rc == RD_OK)
        rc = mar_open_mem(b, blen, &signed_m, err);
    if (rc == RD_OK)
        rc = mar_signed_digest(signed_m, algorithm, digest, &dlen, err);
    if (rc != RD_OK)
        goto out;
    for (size_t i = 0; i < n_keys; i++) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(keys[i], NULL);
        size_t slen = sizes[i];
        if (!ctx || EVP_PKEY_sign_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(ctx, sig_md(algorithm)) <= 0 ||
            EVP_PKEY_sign(ctx, b + signed_m->sigs[i].offset, &slen, digest, dlen) <= 0 ||
            slen != sizes[i])
            rc = rd_error_set(err, RD_EINVAL, "key %zu: signing failed", i);
        EVP_PKEY_CTX_free(ctx);
        if (rc != RD_OK)
            goto out;
    }
    *out = b;
    *out_len = blen;
    b = NULL;
out:
    mar_close(signed_m);
    free(b);
    for (size_t i = 0; i < n_keys && i < MAR_MAX_SIGNATURES; i++)
        EVP_PKEY_free(keys[i]);
    return rc;
}
