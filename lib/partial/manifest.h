/* SPDX-License-Identifier: MIT */
/*
 * lib/partial/manifest.h -- the rules of Mozilla's make_incremental_update.sh
 * (tools/update-packaging, with common.sh) as pure functions: given the file
 * lists of the from and to trees, what was decided for each changed file and
 * the to tree's removed-files text, the exact lines of updatev3.manifest
 * (and updatev2.manifest for the old bz2 format) and the list of MAR entries
 * to pack, in order. No I/O, no host calls, any thread: tested in tables by
 * tests/unit/partial/test_manifest.c.
 *
 * The rules, in the order the script applies them:
 *   1. `type "partial"` first.
 *   2. Every from file, in reverse byte order (`sort -r` in the C locale):
 *      - present in to and an add-if-not file (basename channel-prefs.js or
 *        update-settings.ini, or under a ChannelPrefs.framework/ or
 *        UpdateSettings.framework/ directory): `add-if-not "f" "f"`, always,
 *        even when unchanged (v3 only: v2 has no add-if-not);
 *      - present in to and forced (precomplete, removed-files and their
 *        Contents/Resources/ copies, Contents/CodeResources, any *.chk, and
 *        the configured list): `add "f"` (`add-if` under an extension),
 *        always, even when unchanged;
 *      - present in to and different: `patch "f.patch" "f"` when the
 *        compressed patch is strictly smaller than the compressed file, else
 *        `add "f"`; under distribution/extensions/ID/ these are `patch-if
 *        "…/distribution/extensions/ID" "f.patch" "f"` and `add-if "…ID" "f"`;
 *      - present in to and identical: nothing;
 *      - absent from to: a `remove "f"`, emitted after all adds and patches.
 *   3. Every to-only file, in reverse order: `add-if-not` / `add-if` / `add`.
 *   4. The removes of 2, then the removed-files instructions (lines in
 *      reverse order, CR dropped, blanks and #comments skipped, whitespace
 *      trimmed and runs collapsed; "d/" -> rmdir "d/", "d/" + "*" -> rmrfdir
 *      "d/", else remove "f"), then `rmdir "d/"` for every from directory
 *      absent from to, in reverse order.
 *   5. Lines whose last parameter is the main executable ("firefox.exe" by
 *      default, top level only) move to the end, in their order.
 * Directories are those implied by the file paths (a MAR stores files only).
 */
#ifndef RELENGD_PARTIAL_MANIFEST_H
#define RELENGD_PARTIAL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/module.h"

/* What the generator decided for a file present in both trees and neither
   forced nor add-if-not. */
enum partial_choice {
    PARTIAL_SAME = 0,  /* identical content: no line */
    PARTIAL_PATCH = 1, /* compressed patch strictly smaller: patch / patch-if */
    PARTIAL_FULL = 2,  /* changed, patch not smaller: add / add-if */
};

/* How a path present in both trees is treated before any diff. */
enum partial_class {
    PARTIAL_CLASS_DIFF = 0,       /* compare, maybe diff */
    PARTIAL_CLASS_FORCED = 1,     /* always add */
    PARTIAL_CLASS_ADD_IF_NOT = 2, /* always add-if-not */
};

struct partial_rules {
    const char *const *forced; /* extra forced paths (the script's -f), NULL-terminated;
                                  may be NULL */
    const char *main_exe;      /* top-level name whose lines go last; NULL or "": none */
    bool v2;                   /* also write updatev2.manifest (old format) */
};

/* One MAR entry of the partial: name in the archive ("f" or "f.patch"), the
   to-tree path it comes from, and whether it is a patch (else the file). */
struct partial_entry {
    char *name;
    const char *path; /* borrowed from the input to_files */
    size_t to_index;  /* of path in the input to_files */
    bool is_patch;
};

/* The result. v3 and v2 are whole manifest texts ("line\n" each); v2 is
   NULL unless rules->v2. entries excludes the manifests themselves. Owned:
   partial_manifest_fini. */
struct partial_manifest {
    char *v3;
    char *v2;
    struct partial_entry *entries;
    size_t n_entries;
};

/* The input. from_files / to_files: relative '/'-separated paths, any
   order, no duplicates. choice: one per to_files entry, read only for paths
   in both trees of class PARTIAL_CLASS_DIFF. removed_files: the to tree's
   removed-files text (NUL-terminated) or NULL. */
struct partial_manifest_in {
    const char *const *from_files;
    size_t n_from;
    const char *const *to_files;
    size_t n_to;
    const enum partial_choice *choice;
    const char *removed_files;
};

/* The class of path under rules. */
enum partial_class partial_classify(const struct partial_rules *rules, const char *path);

/* The extension directory that add-if / patch-if test for path
   ("distribution/extensions/ID" with whatever precedes it), written into
   out (NUL-terminated) when path lies under one; false otherwise or when it
   does not fit in out_len. */
bool partial_extension_dir(const char *path, char *out, size_t out_len);

/* Whether a path may appear in a manifest and a MAR: non-empty, relative,
   no "." or ".." segment, no empty segment, no '"', no control character. */
bool partial_path_ok(const char *path);

/* The name of the removed-files list in a to tree ("removed-files" or
   "Contents/Resources/removed-files"), or NULL if the tree has neither. */
const char *partial_removed_files_path(const char *const *to_files, size_t n_to);

/* Whether the to tree holds a precomplete file (the script refuses without). */
bool partial_has_precomplete(const char *const *to_files, size_t n_to);

/* Builds the manifests and entry list. RD_EINVAL (err names the path) for a
   path partial_path_ok refuses or a choice out of range, RD_ENOMEM. On
   error *out is left empty. */
int partial_manifest_build(const struct partial_rules *rules, const struct partial_manifest_in *in,
                           struct partial_manifest *out, struct rd_error *err);

/* Frees what partial_manifest_build filled; NULL-safe, idempotent. */
void partial_manifest_fini(struct partial_manifest *m);

#endif
