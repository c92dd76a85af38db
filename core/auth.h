/* SPDX-License-Identifier: MIT */
/*
 * core/auth.h -- API tokens. A token is "rd_" + 43 base64url chars of
 * randomness; only its SHA-256 is stored (core_tokens). Each has a name,
 * scopes, an optional expiry and can be revoked. Scopes: "admin" grants
 * everything; "graph:*" grants every scope starting "graph:" (a trailing
 * '*' is a prefix match); otherwise exact.
 * Any thread.
 */
#ifndef RELENGD_AUTH_H
#define RELENGD_AUTH_H

#include "core/module.h"
#include "core/store.h"

struct auth;

struct auth_conf {
    bool anonymous_read;     /* GET routes without a token */
    const char *admin_token; /* config/env bootstrap token, or NULL/"" */
};

struct principal {
    bool anonymous;
    char id[40];    /* token id (public), "" when anonymous */
    char name[64];  /* "anonymous" when anonymous */
    json_t *scopes; /* array of strings, owned: principal_fini */
};

/* Bootstrap: if admin_token is set (it must look like a generated token:
   RD_EINVAL otherwise) it is ensured as token "bootstrap-admin" with scope
   admin, never expiring, and any other live "bootstrap-admin" token is
   revoked (so changing the value rotates it); RD_ECONFLICT if the value is
   the secret of another token. Else if core_tokens is empty (a new
   database) an admin token "bootstrap-admin" is generated and printed once
   to stderr in a banner (never logged); later starts print nothing. */
int auth_new(struct store *s, const struct auth_conf *c, struct auth **out, struct rd_error *err);
void auth_free(struct auth *a);
void auth_set_anonymous_read(struct auth *a, bool on);
bool auth_anonymous_read(struct auth *a);

/* token -> principal. RD_EAUTH (err says "unknown token", "token revoked"
   or "token expired at <time>"); other errors are store failures. On
   success p->scopes is owned by p (principal_fini); on failure p holds
   nothing. Records the use in last_used_ms at most once a minute. */
int auth_lookup(struct auth *a, const char *token, struct principal *p, struct rd_error *err);
void principal_fini(struct principal *p);
/* granted "admin" matches everything; a trailing '*' any non-empty rest:
   "graph:*" every scope that starts with "graph:" (not "graph", not
   "graphs:x"), "example:w*" "example:write"; otherwise equality only
   ("graph:sub" does not grant "graph:submit"). */
bool auth_scope_match(const char *granted, const char *needed);
/* False for anonymous principals. */
bool principal_has(const struct principal *p, const char *needed);
/* A grantable scope: segments of [a-zA-Z0-9_.-] joined by ':', optionally
   ending in '*' (not "*" alone); at most 128 bytes. */
bool auth_scope_valid(const char *scope);
/* A token name: 1..63 bytes of UTF-8 without control characters. */
bool auth_name_valid(const char *name);
/* The token of an "Authorization: Bearer <token>" header value (scheme
   case-insensitive), pointing into authorization; NULL for another scheme
   or no token. The token is not checked. */
const char *auth_bearer_token(const char *authorization);

/* Creates a token; *out (new) is {"id","name","scopes","created","expires","token"}
   -- the only time the secret is shown. Times are ISO 8601 UTC strings,
   expires null for never. expires_ms is absolute (epoch ms), 0: never; it
   must lie in the future. Scopes must be a non-empty array of
   auth_scope_valid strings; the name must be auth_name_valid and not
   "bootstrap-admin" or "anonymous". RD_EINVAL with err naming the problem.
   Callers log the creation (with who asked). */
int auth_token_create(struct auth *a, const char *name, const json_t *scopes, uint64_t expires_ms,
                      json_t **out, struct rd_error *err);
/* *out (new): [{id,name,scopes,created,expires,revoked,last_used}] oldest
   first, times as ISO 8601 strings or null. Never hashes or secrets. */
int auth_token_list(struct auth *a, json_t **out);
/* RD_ENOTFOUND if no such id; revoking a revoked token is RD_OK. */
int auth_token_revoke(struct auth *a, const char *id);

#endif
