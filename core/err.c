/* SPDX-License-Identifier: MIT */
/*
 * core/err.c -- enum rd_err to words and HTTP status. Pure; any thread.
 */
#include "config.h"

#include "core/err.h"

struct err_row {
    int code;
    const char *id;
    const char *text;
    int http;
};

static const struct err_row err_rows[] = {
    {RD_OK, "ok", "success", 200},
    {RD_ENOMEM, "out_of_memory", "out of memory", 500},
    {RD_EINVAL, "bad_request", "invalid argument", 400},
    {RD_ENOTFOUND, "not_found", "not found", 404},
    {RD_ECONFLICT, "conflict", "conflict with the current state", 409},
    {RD_ETOOBIG, "too_large", "too large", 413},
    {RD_ECORRUPT, "corrupt", "corrupt data", 422},
    {RD_EIO, "io_error", "input/output error", 500},
    {RD_ETIMEDOUT, "timeout", "timed out", 504},
    {RD_EUNAVAIL, "unavailable", "temporarily unavailable", 503},
    {RD_EPERM, "forbidden", "not allowed", 403},
    {RD_EAUTH, "unauthorized", "missing, unknown or expired credentials", 401},
};

static const struct err_row *err_find(int code)
{
    for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
        if (err_rows[i].code == code)
            return &err_rows[i];
    return NULL;
}

const char *rd_strerror(int code)
{
    const struct err_row *e = err_find(code);
    return e ? e->text : "unknown error";
}

const char *rd_err_code(int code)
{
    const struct err_row *e = err_find(code);
    return e ? e->id : "internal_error";
}

int rd_err_http_status(int code)
{
    const struct err_row *e = err_find(code);
    return e ? e->http : 500;
}
