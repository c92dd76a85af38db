/* SPDX-License-Identifier: MIT */
/*
 * core/auth.h -- API tokens. A token is "rd_" + 43 base64url chars of
 * randomness; only its SHA-256 is stored (core_tokens). Each has a name,
 * scopes, an optional expiry and can be revoked. Scopes: "admin" grants
 * everything; "graph:*" grants every scope starting "graph:"; otherwise exact.
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

/* Bootstrap: if admin_token is set it is ensured as token "bootstrap-admin"
   with scope admin; else if no token exists a new admin token is generated and
   printed once to stderr (never logged again). */
int auth_new(struct store *s, const struct auth_conf *c, struct auth **out, struct rd_error *err);
void auth_free(struct auth *a);
void auth_set_anonymous_read(struct auth *a, bool on);
bool auth_anonymous_read(struct auth *a);

/* token -> principal. RD_EAUTH (err says unknown, revoked or expired). */
int auth_lookup(struct auth *a, const char *token, struct principal *p, struct rd_error *err);
void principal_fini(struct principal *p);
bool auth_scope_match(const char *granted, const char *needed);
bool principal_has(const struct principal *p, const char *needed);

/* Creates a token; *out (new) is {"id","name","scopes","created","expires","token"}
   -- the only time the secret is shown. expires_ms 0: never. Scopes must be
   non-empty strings of [a-zA-Z0-9:_.*-]. */
int auth_token_create(struct auth *a, const char *name, const json_t *scopes,
                      uint64_t expires_ms, json_t **out, struct rd_error *err);
/* [{id,name,scopes,created,expires,revoked,last_used}] */
int auth_token_list(struct auth *a, json_t **out);
/* RD_ENOTFOUND if no such id. */
int auth_token_revoke(struct auth *a, const char *id);

#endif
