/* SPDX-License-Identifier: MIT */
/*
 * core/api_tokens.c -- the token routes: POST /api/v1/tokens (create; the
 * only answer that ever shows a secret), GET /api/v1/tokens (list, without
 * secrets or hashes), DELETE /api/v1/tokens/{id} (revoke), all for scope
 * admin, and GET /api/v1/whoami for any caller. Request bodies are checked
 * strictly and every problem is listed in one 400 answer. Handlers run on
 * HTTP worker threads and use the rd_req_* / rd_reply_* calls, plus
 * http_req_auth for whoami (the module API has only the caller's name).
 */
#include "config.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/host.h"
#include "core/log.h"

/* Longer than any sensible token life, short enough that ms never overflow. */
#define TOKENS_MAX_LIFE_MS (100ull * 366 * 24 * 3600 * 1000)

static uint64_t tokens_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Appends one problem (printf style) to the array. */
static void problem(json_t *problems, const char *fmt, ...) RD_PRINTF(2, 3);
static void problem(json_t *problems, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

/* 400 {"error":{"code":"bad_request","message":"a; b","problems":["a","b"]}}.
   Takes problems. */
static int reply_problems(struct rd_req *r, json_t *problems)
{
    char msg[1024];
    size_t off = 0, i;
    json_t *p;

    msg[0] = '\0';
    json_array_foreach(problems, i, p)
    {
        int n = snprintf(msg + off, sizeof(msg) - off, "%s%s", i ? "; " : "", json_string_value(p));
        if (n < 0 || (size_t)n >= sizeof(msg) - off)
            break;
        off += (size_t)n;
    }
    return rd_reply_json(r, 400,
                         json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "bad_request", "message",
                                   msg, "problems", problems));
}

/* expires_in: "30d" style text or a positive number of seconds -> *ms
   (0 after a problem). */
static void expires_parse(const json_t *v, uint64_t *ms, json_t *problems)
{
    *ms = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (cfg_parse_duration(s, ms) != RD_OK) {
            *ms = 0;
            problem(problems,
                    "expires_in \"%.32s\" is not a duration (e.g. \"90s\", \"12h\", \"30d\")", s);
            return;
        }
    } else if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!isfinite(s) || s <= 0) {
            problem(problems, "expires_in must be a positive number of seconds");
            return;
        }
        if (s >= (double)(TOKENS_MAX_LIFE_MS / 1000)) {
            problem(problems, "expires_in is too far in the future");
            return;
        }
        *ms = (uint64_t)llround(s * 1000.0);
    } else {
        problem(problems, "expires_in must be a duration string (\"30d\") or a number of "
                          "seconds");
        return;
    }
    if (*ms == 0) {
        problem(problems, "expires_in must be at least a millisecond");
    } else if (*ms >= TOKENS_MAX_LIFE_MS) {
        problem(problems, "expires_in is too far in the future");
        *ms = 0;
    }
}

static int tokens_create(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    const json_t *body = rd_req_body(r);
    const json_t *name, *scopes, *expires;
    json_t *problems = json_array(), *out = NULL;
    struct rd_error err = {0};
    uint64_t life_ms = 0;
    const char *key;
    json_t *v;
    size_t i;
    int rc;

    if (!problems)
        return RD_ENOMEM;
    if (!json_is_object(body)) {
        problem(problems, body ? "the body must be a JSON object"
                               : "a JSON body {\"name\": ..., \"scopes\": [...]} is required");
        return reply_problems(r, problems);
    }
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "scopes") != 0 &&
            strcmp(key, "expires_in") != 0)
            problem(problems, "unknown field \"%.64s\"", key);
    }
    name = json_object_get(body, "name");
    if (!name)
        problem(problems, "name is required");
    else if (!json_is_string(name))
        problem(problems, "name must be a string");
    else if (!auth_name_valid(json_string_value(name)))
        problem(problems, "name must be 1 to 63 characters without control characters");
    else if (strcmp(json_string_value(name), "bootstrap-admin") == 0 ||
             strcmp(json_string_value(name), "anonymous") == 0)
        problem(problems, "the name %s is reserved", json_string_value(name));

    scopes = json_object_get(body, "scopes");
    if (!scopes) {
        problem(problems, "scopes is required");
    } else if (!json_is_array(scopes)) {
        problem(problems, "scopes must be an array of strings");
    } else if (json_array_size(scopes) == 0) {
        problem(problems, "scopes must not be empty");
    } else {
        json_array_foreach(scopes, i, v)
        {
            if (!json_is_string(v))
                problem(problems, "scopes[%zu] must be a string", i);
            else if (!auth_scope_valid(json_string_value(v)))
                problem(problems,
                        "scopes[%zu] \"%.64s\" is not a scope (segments of [a-zA-Z0-9_.-] "
                        "joined by ':', optionally ending in '*')",
                        i, json_string_value(v));
        }
    }
    expires = json_object_get(body, "expires_in");
    if (expires && !json_is_null(expires))
        expires_parse(expires, &life_ms, problems);
    if (json_array_size(problems) > 0)
        return reply_problems(r, problems);
    json_decref(problems);

    rc = auth_token_create(h->auth, json_string_value(name), scopes,
                           life_ms ? tokens_now_ms() + life_ms : 0, &out, &err);
    if (rc == RD_EINVAL)
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    if (rc != RD_OK) {
        log_msg("core", RD_ERROR, "tokens: cannot create a token: %s", err.msg);
        return rc;
    }
    log_msg("core", RD_INFO, "auth: token %s (%s) created by %s",
            json_string_value(json_object_get(out, "id")), json_string_value(name),
            rd_req_principal(r));
    return rd_reply_json(r, 201, out);
}

static int tokens_list(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    json_t *list = NULL;
    int rc = auth_token_list(h->auth, &list);

    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, json_pack("{s:o}", "tokens", list));
}

static int tokens_revoke(struct rd_req *r, void *arg)
{
    struct host *h = arg;
    const char *id = rd_req_param(r, "id");
    int rc;

    if (rd_req_body(r))
        return rd_reply_error(r, 400, "bad_request", "DELETE takes no body");
    rc = auth_token_revoke(h->auth, id);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_token", "no token with id \"%.64s\"", id);
    if (rc != RD_OK)
        return rc;
    log_msg("core", RD_INFO, "auth: token %s revoked by %s", id, rd_req_principal(r));
    return rd_reply_json(r, 200, json_pack("{s:s}", "revoked", id));
}

/* The caller as this request was authenticated (header or, for event
   streams, access_token). */
static int tokens_whoami(struct rd_req *r, void *arg)
{
    const struct principal *p = http_req_auth(r);

    (void)arg;
    if (!p)
        return rd_reply_json(r, 200, json_pack("{s:b, s:s}", "anonymous", 1, "name", "anonymous"));
    return rd_reply_json(r, 200,
                         json_pack("{s:b, s:s, s:s, s:O}", "anonymous", 0, "id", p->id, "name",
                                   p->name, "scopes", p->scopes));
}

int api_tokens_routes(struct host *h)
{
    static const struct {
        const char *method, *path, *scope;
        rd_route_fn fn;
    } routes[] = {
        {"POST", "/api/v1/tokens", "admin", tokens_create},
        {"GET", "/api/v1/tokens", "admin", tokens_list},
        {"DELETE", "/api/v1/tokens/{id}", "admin", tokens_revoke},
        {"GET", "/api/v1/whoami", NULL, tokens_whoami},
    };
    int rc;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        rc = router_add(h->router, &h->core, "core", routes[i].method, routes[i].path,
                        routes[i].scope, 0, routes[i].fn, h);
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}
