/* SPDX-License-Identifier: MIT */
/*
 * core/err.h -- enum rd_err to words and to HTTP status. The only place that
 * maps errors to HTTP. Pure functions, any thread.
 */
#ifndef RELENGD_ERR_H
#define RELENGD_ERR_H

#include "core/module.h"

/* A sentence for code ("not found"); never NULL. */
const char *rd_strerror(int code);
/* A snake_case code for JSON errors ("not_found"); never NULL. */
const char *rd_err_code(int code);
/* The HTTP status for code: EINVAL 400, EAUTH 401, EPERM 403, ENOTFOUND 404,
   ECONFLICT 409, ETOOBIG 413, ECORRUPT 422, EUNAVAIL 503, ETIMEDOUT 504,
   others 500. */
int rd_err_http_status(int code);

#endif
