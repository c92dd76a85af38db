/* SPDX-License-Identifier: MIT */
/*
 * core/civetweb_ssl_compat.c -- lets Debian 12's civetweb 1.15 use OpenSSL 3
 * for HTTPS. That civetweb loads libssl.so and libcrypto.so at run time and
 * looks up SSL_get_peer_certificate, which OpenSSL 3 only has as a macro
 * (civetweb issue #1334), so its TLS set-up fails. Built twice by a plain
 * make rule (not libtool, whose own -soname would win):
 *   civetweb_ssl_compat.so    SONAME libssl.so, needs libssl.so.3, and
 *                             defines the one missing function;
 *   civetweb_crypto_compat.so SONAME libcrypto.so, needs libcrypto.so.3, so
 *                             that no libssl-dev symlink is needed at run time.
 * core/http.c dlopens them (RTLD_GLOBAL) before TLS starts; glibc then hands
 * them to civetweb's dlopen("libssl.so"/"libcrypto.so") by SONAME, and
 * civetweb's dlsym finds everything else in their libssl.so.3/libcrypto.so.3
 * dependencies. Never linked into relengd itself.
 */
#include <openssl/ssl.h>

#ifndef RD_COMPAT_CRYPTO
#undef SSL_get_peer_certificate
__attribute__((visibility("default"))) X509 *SSL_get_peer_certificate(const SSL *s);

/* The 1.1 name of the same call: a new reference to the peer's certificate. */
__attribute__((visibility("default"))) X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}
#else
/* Only the SONAME and the dependency matter; one symbol keeps it a library. */
__attribute__((visibility("default"))) const int rd_civetweb_crypto_compat = 1;
#endif
