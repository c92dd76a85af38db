/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/names.h -- validation of the names that come from the
 * network: task ids, worker ids and types, external reporter names, artifact
 * names, SHA-256 hex digests. Pure functions (no host calls), any thread.
 */
#ifndef RELENGD_DISPATCH_NAMES_H
#define RELENGD_DISPATCH_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISPATCH_NAME_MAX 64      /* task ids, worker ids and types */
#define DISPATCH_ARTIFACT_MAX 128 /* artifact names */

/* A task id or worker type: 1..64 bytes of [A-Za-z0-9_.-]. */
bool dispatch_id_valid(const char *s);
/* A worker id: 1..64 bytes of [A-Za-z0-9_.:-] ("external:<name>" included). */
bool dispatch_worker_id_valid(const char *s);
/* An artifact name: 1..128 bytes of [A-Za-z0-9._-], not starting with '.',
   so it names a plain file inside the run's directory and never "..", a
   hidden temporary file or anything outside. */
bool dispatch_artifact_name_valid(const char *s);
/* 64 hex digits (either case); lowercases them into out[65]. */
bool dispatch_sha256_hex_parse(const char *s, char out[65]);
/* A run id in decimal without sign or leading zeros, 0..UINT32_MAX. */
bool dispatch_run_id_parse(const char *s, uint32_t *out);
/* A non-negative decimal integer (log offsets) up to INT64_MAX. */
bool dispatch_u64_parse(const char *s, uint64_t *out);

#endif
