/* SPDX-License-Identifier: MIT */
/*
 * lib/mar/name.c -- which entry names are safe to create below a target
 * directory. Pure.
 */
#include <string.h>

#include "lib/mar/mar_int.h"

int mar_name_check(const char *name, struct rd_error *err)
{
    size_t len, comp = 0;

    if (!name || !*name)
        return rd_error_set(err, RD_EINVAL, "empty entry name");
    len = strlen(name);
    if (len > MAR_MAX_NAME_LEN)
        return rd_error_set(err, RD_EINVAL, "entry name of %zu bytes, the limit is %u", len,
                            MAR_MAX_NAME_LEN);
    if (name[0] == '/')
        return rd_error_set(err, RD_EINVAL, "\"%.64s\": absolute entry name", name);
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\0') {
            size_t n = i - comp;
            const char *p = name + comp;
            if (n == 0)
                return rd_error_set(err, RD_EINVAL, "\"%.64s\": empty path component", name);
            if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                return rd_error_set(err, RD_EINVAL, "\"%.64s\": \"%.*s\" path component", name,
                                    (int)n, p);
            comp = i + 1;
            continue;
        }
        if (c == '\\')
            return rd_error_set(err, RD_EINVAL, "\"%.64s\": backslash in entry name", name);
        if (c < 0x20 || c == 0x7f)
            return rd_error_set(err, RD_EINVAL, "entry name with control character 0x%02x", c);
    }
    return RD_OK;
}
