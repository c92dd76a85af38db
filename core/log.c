/* SPDX-License-Identifier: MIT */
/*
 * core/log.c -- the process log on stderr. Any thread: the line is built in
 * a stack buffer and written with one write(2), so lines never interleave.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static atomic_int log_level = RD_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_level_parse(const char *s, enum rd_level *out)
{
    static const struct {
        const char *name;
        enum rd_level lv;
    } names[] = {{"debug", RD_DEBUG},
                 {"info", RD_INFO},
                 {"warn", RD_WARN},
                 {"warning", RD_WARN},
                 {"error", RD_ERROR}};

    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].lv;
            return RD_OK;
        }
    }
    return RD_EINVAL;
}

const char *log_level_name(enum rd_level lv)
{
    if ((int)lv < RD_DEBUG || lv > RD_ERROR)
        return "?";
    return level_names[lv];
}

void log_set_level(enum rd_level lv)
{
    atomic_store(&log_level, (int)lv);
}
enum rd_level log_get_level(void)
{
    return (enum rd_level)atomic_load(&log_level);
}
bool log_enabled(enum rd_level lv)
{
    return (int)lv >= atomic_load(&log_level);
}
void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void log_msgv(const char *who, enum rd_level lv, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int rc;
    int saved_errno = errno; /* callers may log and then look at errno */

    if (!log_enabled(lv))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    rc = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s [%s] ", (long)(tv.tv_usec / 1000),
                  log_level_name(lv), who ? who : "core");
    if (rc > 0)
        n += (size_t)rc < sizeof(line) - n ? (size_t)rc : sizeof(line) - n - 1;
    rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (rc > 0)
        n += (size_t)rc < sizeof(line) - n ? (size_t)rc : sizeof(line) - n - 1;
    /* Keep one message on one line: a value with a newline must not forge log lines. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(atomic_load(&log_fd), line, n) < 0) {
        /* Nowhere left to report a failing stderr. */
    }
    errno = saved_errno;
}

void log_msg(const char *who, enum rd_level lv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_msgv(who, lv, fmt, ap);
    va_end(ap);
}
