/* SPDX-License-Identifier: MIT */
/*
 * cli/ctl_table.c -- aligned text tables (see ctl_table.h). Cells are copied
 * and sanitised on the way in, so printing cannot fail halfway. Single-threaded.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli/ctl_table.h"

struct ctl_table {
    size_t n_cols;
    size_t n_rows, cap_rows;
    char **cells; /* (n_rows + 1) * n_cols: row 0 is the header */
    size_t *width;
};

size_t ctl_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) /* not a UTF-8 continuation byte */
            w++;
    return w;
}

/* A copy with control characters replaced, so cells stay on one line. */
static char *clean_dup(const char *s)
{
    char *d = strdup(s ? s : "-");
    if (!d)
        return NULL;
    for (unsigned char *p = (unsigned char *)d; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return d;
}

static int add_row(struct ctl_table *t, char **row)
{
    if (t->n_rows + 1 >= t->cap_rows) {
        size_t cap = t->cap_rows * 2;
        char **cells = realloc(t->cells, cap * t->n_cols * sizeof(*cells));
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap_rows = cap;
    }
    t->n_rows++;
    for (size_t c = 0; c < t->n_cols; c++) {
        size_t w = ctl_text_width(row[c]);
        t->cells[t->n_rows * t->n_cols + c] = row[c];
        if (w > t->width[c])
            t->width[c] = w;
    }
    return 0;
}

struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers)
{
    struct ctl_table *t = calloc(1, sizeof(*t));

    if (!t || n_cols == 0)
        goto fail;
    t->n_cols = n_cols;
    t->cap_rows = 16;
    t->cells = calloc(t->cap_rows * n_cols, sizeof(*t->cells));
    t->width = calloc(n_cols, sizeof(*t->width));
    if (!t->cells || !t->width)
        goto fail;
    for (size_t c = 0; c < n_cols; c++) {
        t->cells[c] = clean_dup(headers[c]);
        if (!t->cells[c])
            goto fail;
        t->width[c] = ctl_text_width(t->cells[c]);
    }
    return t;
fail:
    ctl_table_free(t);
    return NULL;
}

void ctl_table_free(struct ctl_table *t)
{
    if (!t)
        return;
    if (t->cells)
        for (size_t i = 0; i < (t->n_rows + 1) * t->n_cols; i++)
            free(t->cells[i]);
    free(t->cells);
    free(t->width);
    free(t);
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    char **row = calloc(t->n_cols, sizeof(*row));
    if (!row)
        return -1;
    for (size_t c = 0; c < t->n_cols; c++) {
        row[c] = strdup(cells[c] ? cells[c] : "-");
        if (!row[c]) {
            for (size_t k = 0; k < c; k++)
                free(row[k]);
            free(row);
            return -1;
        }
    }
    int rc = ctl_table_add_owned(t, row);
    free(row);
    return rc;
}

int ctl_table_add_owned(struct ctl_table *t, char **cells)
{
    char **row = calloc(t->n_cols, sizeof(*row));
    int rc = -1;

    if (!row)
        goto out;
    for (size_t c = 0; c < t->n_cols; c++) {
        row[c] = clean_dup(cells[c]);
        if (!row[c])
            goto out;
    }
    if (add_row(t, row) == 0) {
        free(row);
        row = NULL;
        rc = 0;
    }
out:
    if (row) {
        for (size_t c = 0; c < t->n_cols; c++)
            free(row[c]);
        free(row);
    }
    for (size_t c = 0; c < t->n_cols; c++)
        free(cells[c]);
    return rc;
}

size_t ctl_table_rows(const struct ctl_table *t)
{
    return t->n_rows;
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
    for (size_t r = 0; r <= t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            fputs(cell, f);
            if (c + 1 < t->n_cols) {
                for (size_t w = ctl_text_width(cell); w < t->width[c] + 2; w++)
                    fputc(' ', f);
            }
        }
        fputc('\n', f);
    }
}
