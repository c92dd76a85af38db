/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/apply.h -- applying a partial update MAR to an installed tree
 * the way Mozilla's updater does, to verify a partial before it is
 * published (and to test one). Lines of updatev3.manifest (else
 * updatev2.manifest):
 *
 *   type "partial"                 must come first
 *   add "f"                        write entry f to f
 *   add-if "test" "f"              ... only if test exists
 *   add-if-not "f" "f"             ... only if f does not exist
 *   patch "f.patch" "f"            apply the MBDIFF10 entry f.patch to f
 *   patch-if "test" "f.patch" "f"  ... only if test exists
 *   remove "f"                     delete f (absent is fine)
 *   rmdir "d/"                     remove d if empty
 *   rmrfdir "d/"                   remove d and everything in it
 *
 * Every path passes partial_path_ok (no absolute names, no "..") and the
 * tree is walked without following symbolic links. No host calls, one
 * thread per call.
 */
#ifndef RELENGD_PARTIAL_APPLY_H
#define RELENGD_PARTIAL_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h"

struct mar;

/* One manifest line split into its method and quoted parameters (borrowed
   from the buffer partial_line_parse wrote into). */
struct partial_line {
    const char *method;
    const char *param[3];
    size_t n_params;
};

/* Splits line (modified in place: quotes and separators become NULs) into
   *out. RD_EINVAL for an unknown method, a wrong number of parameters, an
   unquoted or unterminated parameter, or trailing text. Pure. */
int partial_line_parse(char *line, struct partial_line *out, struct rd_error *err);

/* What a run skipped, for the caller's comparison: paths whose conditional
   line did not apply (add-if / patch-if with an absent test path, add-if-not
   with f present). Owned: partial_apply_report_fini. */
struct partial_apply_report {
    char **skipped;
    size_t n_skipped;
    size_t n_lines;
};

/* Applies the partial m to the tree at dir. RD_EINVAL for a bad manifest or
   path, RD_ENOTFOUND for a line naming a missing entry or a patch target
   that does not exist, RD_ECONFLICT for a patch whose source length or CRC
   does not match, RD_ECORRUPT for a broken entry, RD_EIO. rep may be NULL. */
int partial_apply_dir(const struct mar *m, const char *dir, size_t max_entry,
                      struct partial_apply_report *rep, struct rd_error *err);
void partial_apply_report_fini(struct partial_apply_report *rep);

/* Writes len bytes as the file rel (checked with partial_path_ok) below
   dir, creating its directories, replacing a file that is there, never
   following a symbolic link. RD_OK, RD_EINVAL, RD_ECONFLICT, RD_EIO. */
int partial_tree_write(const char *dir, const char *rel, const void *data, size_t len,
                       unsigned mode, struct rd_error *err);

/* Reads the regular file at path whole (not through a symbolic link) into
   *out (malloc'd, one spare byte) and *len. RD_OK, RD_ENOTFOUND, RD_EIO
   (a short read too) or RD_ENOMEM. */
int partial_read_file(const char *path, uint8_t **out, size_t *len, struct rd_error *err);

/* Whether rep lists path as skipped. */
bool partial_apply_skipped(const struct partial_apply_report *rep, const char *path);

#endif
