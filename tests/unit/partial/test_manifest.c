/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/partial/test_manifest.c -- make_incremental_update.sh's rules
 * (lib/partial/manifest.c) in tables: classification, the extension test
 * directory, path checks, and whole manifests checked line by line.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/partial/manifest.h"

static const struct partial_rules v3_rules = {.forced = NULL, .main_exe = "firefox.exe"};

static void test_classify(void **state)
{
    static const char *const forced_extra[] = {"Contents/MacOS/firefox", "chrome.manifest", NULL};
    const struct partial_rules rules = {.forced = forced_extra};
    static const struct {
        const char *path;
        enum partial_class want;
    } cases[] = {
        {"precomplete", PARTIAL_CLASS_FORCED},
        {"Contents/Resources/precomplete", PARTIAL_CLASS_FORCED},
        {"removed-files", PARTIAL_CLASS_FORCED},
        {"Contents/Resources/removed-files", PARTIAL_CLASS_FORCED},
        {"Contents/CodeResources", PARTIAL_CLASS_FORCED},
        {"update.chk", PARTIAL_CLASS_FORCED},
        {"dir/freebl3.chk", PARTIAL_CLASS_FORCED},
        {"Contents/MacOS/firefox", PARTIAL_CLASS_FORCED},
        {"chrome.manifest", PARTIAL_CLASS_FORCED},
        {"defaults/pref/channel-prefs.js", PARTIAL_CLASS_ADD_IF_NOT},
        {"channel-prefs.js", PARTIAL_CLASS_ADD_IF_NOT},
        {"update-settings.ini", PARTIAL_CLASS_ADD_IF_NOT},
        {"Contents/Resources/update-settings.ini", PARTIAL_CLASS_ADD_IF_NOT},
        {"Contents/Frameworks/ChannelPrefs.framework/ChannelPrefs", PARTIAL_CLASS_ADD_IF_NOT},
        {"Contents/Frameworks/UpdateSettings.framework/Info.plist", PARTIAL_CLASS_ADD_IF_NOT},
        {"XChannelPrefs.framework/x", PARTIAL_CLASS_DIFF},
        {"sub/precomplete", PARTIAL_CLASS_DIFF},
        {"precomplete.txt", PARTIAL_CLASS_DIFF},
        {"chk", PARTIAL_CLASS_DIFF},
        {"a.chkx", PARTIAL_CLASS_DIFF},
        {"my-channel-prefs.js", PARTIAL_CLASS_DIFF},
        {"xul.dll", PARTIAL_CLASS_DIFF},
        {"sub/chrome.manifest", PARTIAL_CLASS_DIFF},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum partial_class got = partial_classify(&rules, cases[i].path);
        if (got != cases[i].want)
            fail_msg("%s: class %d, want %d", cases[i].path, got, cases[i].want);
    }
    /* the extra list is only forced when configured */
    assert_int_equal(partial_classify(&v3_rules, "chrome.manifest"), PARTIAL_CLASS_DIFF);
}

static void test_extension_dir(void **state)
{
    static const struct {
        const char *path;
        const char *want; /* NULL: not under an extension */
    } cases[] = {
        {"distribution/extensions/foo@bar/install.rdf", "distribution/extensions/foo@bar"},
        {"distribution/extensions/foo@bar/a/b/c.js", "distribution/extensions/foo@bar"},
        {"browser/distribution/extensions/x/y", "browser/distribution/extensions/x"},
        {"distribution/extensions/a/distribution/extensions/b/c",
         "distribution/extensions/a/distribution/extensions/b"},
        {"distribution/extensions/foo.xpi", NULL},
        {"distribution/extensions/", NULL},
        {"distribution/foo/bar", NULL},
        {"xul.dll", NULL},
    };
    char out[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = partial_extension_dir(cases[i].path, out, sizeof(out));
        if (got != (cases[i].want != NULL))
            fail_msg("%s: %d", cases[i].path, got);
        if (got)
            assert_string_equal(out, cases[i].want);
    }
    /* too small a buffer is refused, not truncated */
    assert_false(partial_extension_dir("distribution/extensions/foo@bar/x", out, 10));
}

static void test_path_ok(void **state)
{
    static const struct {
        const char *path;
        bool ok;
    } cases[] = {
        {"a", true},          {"a/b.c", true}, {"spaced name.txt", true}, {".hidden/x", true},
        {"a..b", true},       {"", false},     {"/abs", false},           {"a//b", false},
        {"a/", false},        {"./a", false},  {"a/./b", false},          {"../a", false},
        {"a/../b", false},    {"a/..", false}, {"quo\"te", false},        {"new\nline", false},
        {"tab\tname", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (partial_path_ok(cases[i].path) != cases[i].ok)
            fail_msg("\"%s\": want %d", cases[i].path, cases[i].ok);
    assert_false(partial_path_ok(NULL));
}

static void test_precomplete_and_removed_files(void **state)
{
    const char *const win[] = {"a", "removed-files", "precomplete"};
    const char *const mac[] = {"Contents/Resources/removed-files",
                               "Contents/Resources/precomplete"};
    const char *const none[] = {"a/precomplete", "a/removed-files"};

    (void)state;
    assert_true(partial_has_precomplete(win, 3));
    assert_true(partial_has_precomplete(mac, 2));
    assert_false(partial_has_precomplete(none, 2));
    assert_string_equal(partial_removed_files_path(win, 3), "removed-files");
    assert_string_equal(partial_removed_files_path(mac, 2), "Contents/Resources/removed-files");
    assert_null(partial_removed_files_path(none, 2));
}

/* ---------------------------------------------------- whole manifests */

/* The to tree of the main case, with the decision for each file. */
static const char *const main_from[] = {
    "xul.dll",
    "update.chk",
    "update-settings.ini",
    "removed-files",
    "precomplete",
    "old/gone.txt",
    "locale/de.properties",
    "firefox.exe",
    "distribution/extensions/foo@bar/install.rdf",
    "distribution/extensions/foo@bar/chrome/x.js",
    "defaults/pref/channel-prefs.js",
};

static const char *const main_to[] = {
    "ChannelPrefs.framework/x",
    "defaults/pref/channel-prefs.js",
    "distribution/extensions/foo@bar/chrome/x.js",
    "distribution/extensions/foo@bar/install.rdf",
    "distribution/extensions/new@x/a.js",
    "firefox.exe",
    "locale/de.properties",
    "new/file.txt",
    "precomplete",
    "removed-files",
    "update-settings.ini",
    "update.chk",
    "xul.dll",
};

static const enum partial_choice main_choice[] = {
    PARTIAL_SAME,  /* ChannelPrefs.framework/x: new, not read */
    PARTIAL_SAME,  /* channel-prefs.js: add-if-not, not read */
    PARTIAL_FULL,  /* extension x.js: patch not smaller */
    PARTIAL_PATCH, /* extension install.rdf */
    PARTIAL_SAME,  /* new extension file: not read */
    PARTIAL_PATCH, /* firefox.exe */
    PARTIAL_SAME,  /* de.properties: unchanged */
    PARTIAL_SAME,  /* new file: not read */
    PARTIAL_SAME,  /* precomplete: forced even when unchanged */
    PARTIAL_SAME,  /* removed-files: forced */
    PARTIAL_SAME,  /* update-settings.ini: add-if-not */
    PARTIAL_SAME,  /* update.chk: forced */
    PARTIAL_FULL,  /* xul.dll */
};

static const char main_removed_files[] = "# files that are gone\n"
                                         "\n"
                                         "legacy/\n"
                                         "plugins/*\n"
                                         "old.dll\r\n"
                                         "  spaced   name.txt \n"
                                         "   # indented comment\n";

static const char *const main_v3[] = {
    "type \"partial\"",
    "add \"xul.dll\"",
    "add \"update.chk\"",
    "add-if-not \"update-settings.ini\" \"update-settings.ini\"",
    "add \"removed-files\"",
    "add \"precomplete\"",
    "patch-if \"distribution/extensions/foo@bar\" "
    "\"distribution/extensions/foo@bar/install.rdf.patch\" "
    "\"distribution/extensions/foo@bar/install.rdf\"",
    "add-if \"distribution/extensions/foo@bar\" \"distribution/extensions/foo@bar/chrome/x.js\"",
    "add-if-not \"defaults/pref/channel-prefs.js\" \"defaults/pref/channel-prefs.js\"",
    "add \"new/file.txt\"",
    "add-if \"distribution/extensions/new@x\" \"distribution/extensions/new@x/a.js\"",
    "add-if-not \"ChannelPrefs.framework/x\" \"ChannelPrefs.framework/x\"",
    "remove \"old/gone.txt\"",
    "remove \"spaced name.txt\"",
    "rmrfdir \"plugins/\"",
    "remove \"old.dll\"",
    "rmdir \"legacy/\"",
    "rmdir \"old/\"",
    "patch \"firefox.exe.patch\" \"firefox.exe\"",
    NULL,
};

static const char *const main_entries[] = {
    "xul.dll",
    "update.chk",
    "update-settings.ini",
    "removed-files",
    "precomplete",
    "firefox.exe.patch",
    "distribution/extensions/foo@bar/install.rdf.patch",
    "distribution/extensions/foo@bar/chrome/x.js",
    "defaults/pref/channel-prefs.js",
    "new/file.txt",
    "distribution/extensions/new@x/a.js",
    "ChannelPrefs.framework/x",
    NULL,
};

/* Compares a manifest text with expected lines, one by one. */
static void assert_lines(const char *text, const char *const *want)
{
    const char *p = text;
    size_t i = 0;

    for (; want[i]; i++) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("line %zu missing, want: %s", i + 1, want[i]);
        if ((size_t)(nl - p) != strlen(want[i]) || strncmp(p, want[i], (size_t)(nl - p)) != 0)
            fail_msg("line %zu: got %.*s\n want %s", i + 1, (int)(nl - p), p, want[i]);
        p = nl + 1;
    }
    if (*p)
        fail_msg("extra lines after %zu: %s", i, p);
}

static void build_main(const struct partial_rules *rules, struct partial_manifest *m)
{
    struct partial_manifest_in in = {
        .from_files = main_from,
        .n_from = sizeof(main_from) / sizeof(main_from[0]),
        .to_files = main_to,
        .n_to = sizeof(main_to) / sizeof(main_to[0]),
        .choice = main_choice,
        .removed_files = main_removed_files,
    };
    struct rd_error err = {0};

    assert_int_equal(partial_manifest_build(rules, &in, m, &err), RD_OK);
}

static void test_main_case_v3(void **state)
{
    struct partial_manifest m;
    size_t i;

    (void)state;
    build_main(&v3_rules, &m);
    assert_null(m.v2);
    assert_lines(m.v3, main_v3);
    for (i = 0; main_entries[i]; i++) {
        assert_true(i < m.n_entries);
        assert_string_equal(m.entries[i].name, main_entries[i]);
        assert_int_equal(m.entries[i].is_patch, strstr(main_entries[i], ".patch") != NULL);
    }
    assert_int_equal(m.n_entries, i);
    /* entries point at the to list's own strings */
    assert_ptr_equal(m.entries[0].path, main_to[12]);
    partial_manifest_fini(&m);
    partial_manifest_fini(&m); /* idempotent */
}

static void test_main_case_v2(void **state)
{
    const struct partial_rules rules = {.main_exe = "firefox.exe", .v2 = true};
    struct partial_manifest m;
    const char *v2[sizeof(main_v3) / sizeof(main_v3[0])];
    size_t n = 0;

    (void)state;
    /* v2 is v3 without the add-if-not lines */
    for (size_t i = 0; main_v3[i]; i++)
        if (strncmp(main_v3[i], "add-if-not ", 11) != 0)
            v2[n++] = main_v3[i];
    v2[n] = NULL;
    build_main(&rules, &m);
    assert_lines(m.v3, main_v3);
    assert_non_null(m.v2);
    assert_lines(m.v2, v2);
    partial_manifest_fini(&m);
}

static void test_no_main_exe_keeps_order(void **state)
{
    const struct partial_rules rules = {.main_exe = NULL};
    struct partial_manifest m;

    (void)state;
    build_main(&rules, &m);
    /* firefox.exe is handled in from-tree order: after add "precomplete" */
    assert_non_null(strstr(m.v3, "add \"precomplete\"\npatch \"firefox.exe.patch\" "
                                 "\"firefox.exe\"\npatch-if"));
    partial_manifest_fini(&m);
}

/* Small table of whole-manifest cases. */
struct mcase {
    const char *name;
    const char *const *from;
    const char *const *to;
    const enum partial_choice *choice;
    const char *removed_files;
    const char *want; /* whole v3 text */
};

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    return n;
}

static void test_small_cases(void **state)
{
    static const char *const none[] = {NULL};
    static const char *const one_a[] = {"a", NULL};
    static const char *const deep_from[] = {"x/y/z/f", "x/keep", NULL};
    static const char *const deep_to[] = {"x/keep", NULL};
    static const char *const exe_both[] = {"sub/firefox.exe", "firefox.exe", NULL};
    static const enum partial_choice patch2[] = {PARTIAL_PATCH, PARTIAL_PATCH};
    static const enum partial_choice full1[] = {PARTIAL_FULL};
    static const enum partial_choice same1[] = {PARTIAL_SAME};
    static const struct mcase cases[] = {
        {"identical trees", one_a, one_a, same1, NULL, "type \"partial\"\n"},
        {"changed, patch not smaller", one_a, one_a, full1, NULL, "type \"partial\"\nadd \"a\"\n"},
        {"everything new", none, one_a, NULL, NULL, "type \"partial\"\nadd \"a\"\n"},
        {"everything gone", one_a, none, NULL, NULL, "type \"partial\"\nremove \"a\"\n"},
        {"nested directories vanish deepest first", deep_from, deep_to, same1, NULL,
         "type \"partial\"\nremove \"x/y/z/f\"\nrmdir \"x/y/z/\"\nrmdir \"x/y/\"\n"},
        {"only the top-level exe moves", exe_both, exe_both, patch2, NULL,
         "type \"partial\"\npatch \"sub/firefox.exe.patch\" \"sub/firefox.exe\"\n"
         "patch \"firefox.exe.patch\" \"firefox.exe\"\n"},
        {"removed-files only comments", none, none, NULL, "#x\n\n  \r\n", "type \"partial\"\n"},
        {"removed-files without final newline", none, none, NULL, "b\na/*",
         "type \"partial\"\nremove \"b\"\nrmrfdir \"a/\"\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mcase *c = &cases[i];
        enum partial_choice choice[8] = {0};
        struct partial_manifest_in in = {
            .from_files = c->from,
            .n_from = count(c->from),
            .to_files = c->to,
            .n_to = count(c->to),
            .choice = choice,
            .removed_files = c->removed_files,
        };
        struct partial_manifest m;
        struct rd_error err = {0};

        if (c->choice)
            memcpy(choice, c->choice, in.n_to * sizeof(*choice));
        if (partial_manifest_build(&v3_rules, &in, &m, &err) != RD_OK)
            fail_msg("%s: %s", c->name, err.msg);
        if (strcmp(m.v3, c->want) != 0)
            fail_msg("%s:\n got:\n%s want:\n%s", c->name, m.v3, c->want);
        partial_manifest_fini(&m);
    }
}

static void test_bad_input(void **state)
{
    static const char *const bad_to[] = {"ok", "../evil"};
    static const char *const quote_from[] = {"a\"b"};
    static const char *const ok[] = {"a"};
    static const enum partial_choice choice[] = {PARTIAL_SAME, PARTIAL_SAME};
    static const enum partial_choice bogus[] = {(enum partial_choice)7};
    struct partial_manifest m;
    struct rd_error err = {0};
    struct partial_manifest_in in = {.to_files = bad_to, .n_to = 2, .choice = choice};

    (void)state;
    assert_int_equal(partial_manifest_build(&v3_rules, &in, &m, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "../evil"));
    assert_null(m.v3);
    in = (struct partial_manifest_in){.from_files = quote_from, .n_from = 1};
    assert_int_equal(partial_manifest_build(&v3_rules, &in, &m, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "from tree"));
    in = (struct partial_manifest_in){
        .from_files = ok, .n_from = 1, .to_files = ok, .n_to = 1, .choice = bogus};
    assert_int_equal(partial_manifest_build(&v3_rules, &in, &m, &err), RD_EINVAL);
    in = (struct partial_manifest_in){.removed_files = "../../etc/passwd\n"};
    assert_int_equal(partial_manifest_build(&v3_rules, &in, &m, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "removed-files"));
    assert_null(m.entries);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_extension_dir),
        cmocka_unit_test(test_path_ok),
        cmocka_unit_test(test_precomplete_and_removed_files),
        cmocka_unit_test(test_main_case_v3),
        cmocka_unit_test(test_main_case_v2),
        cmocka_unit_test(test_no_main_exe_keeps_order),
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
