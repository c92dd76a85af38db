/* SPDX-License-Identifier: MIT */
/*
 * cli/mar/cmd.h -- relengd-mar's command table entry type, the commands and
 * the helpers they share (whole-file read/write, error reporting).
 *
 * Adding a command: write cli/mar/cmd_NAME.c defining
 *     int cmd_NAME(int argc, char **argv);   (argv[0] = the command's name)
 * declare it below and add one line to the table in cli/mar/relengd-mar.c.
 * Exit codes: 0 done, 1 failed (message on stderr), 2 bad usage.
 */
#ifndef RELENGD_CLI_MAR_CMD_H
#define RELENGD_CLI_MAR_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "core/module.h" /* struct rd_error */

enum { MAR_EXIT_OK = 0, MAR_EXIT_FAIL = 1, MAR_EXIT_USAGE = 2 };

struct mar_command {
    const char *name;
    const char *usage; /* synopsis after the name */
    const char *summary;
    int (*run)(int argc, char **argv);
};

int cmd_info(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_make_partial(int argc, char **argv);

/* "relengd-mar: CMD: message" on stderr; returns MAR_EXIT_FAIL. */
int mar_cli_fail(const char *cmd, const char *fmt, ...) RD_PRINTF(2, 3);
/* Prints the command's usage line on stderr; returns MAR_EXIT_USAGE. */
int mar_cli_usage(const char *cmd);
/* Reads path whole into a malloc'ed buffer (caller frees). */
int mar_cli_read(const char *path, uint8_t **out, size_t *out_len, struct rd_error *err);
/* Writes buf to path.tmp and renames it to path; mode for a new file. */
int mar_cli_write(const char *path, const uint8_t *buf, size_t len, unsigned mode,
                  struct rd_error *err);

#endif
