/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_table.h -- aligned text tables for relengctl's human output: add a
 * header and rows of strings, print with every column as wide as its widest
 * cell (UTF-8 aware) separated by two spaces; the last column is not padded.
 * Single-threaded.
 */
#ifndef RELENGD_CTL_TABLE_H
#define RELENGD_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct ctl_table;

/* A table with n_cols columns and these headers (copied). NULL on ENOMEM. */
struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers);
void ctl_table_free(struct ctl_table *t); /* NULL-safe */

/* Adds a row of n_cols cells (copied; NULL prints as "-"). Control characters
   in cells print as '?', so a cell can never break the layout. -1 on ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* Like ctl_table_add, but takes ownership of n_cols malloc'd strings (freed
   even on failure). */
int ctl_table_add_owned(struct ctl_table *t, char **cells);

size_t ctl_table_rows(const struct ctl_table *t);

/* Prints the header and the rows. */
void ctl_table_print(const struct ctl_table *t, FILE *f);

/* Display width of a UTF-8 string (code points; control characters count 1). */
size_t ctl_text_width(const char *s);

#endif
