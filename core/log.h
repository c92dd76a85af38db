/* SPDX-License-Identifier: MIT */
/*
 * core/log.h -- the process log: one line per message on stderr,
 * "2026-11-22T10:34:25.123Z INFO  [proxy] message". Any thread; each line is
 * written with a single write(2) so lines from threads never interleave.
 */
#ifndef RELENGD_LOG_H
#define RELENGD_LOG_H

#include <stdbool.h>
#include "core/module.h"

/* "debug", "info", "warn"/"warning", "error" -> level; RD_EINVAL otherwise. */
int log_level_parse(const char *s, enum rd_level *out);
const char *log_level_name(enum rd_level lv);
void log_set_level(enum rd_level lv);
enum rd_level log_get_level(void);
bool log_enabled(enum rd_level lv);
/* Redirect output to fd (tests); default 2. */
void log_set_fd(int fd);
/* who: "core", a module name; the level is checked before formatting. */
void log_msgv(const char *who, enum rd_level lv, const char *fmt, va_list ap) RD_PRINTF(3, 0);
void log_msg(const char *who, enum rd_level lv, const char *fmt, ...) RD_PRINTF(3, 4);

#endif
