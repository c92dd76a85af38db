/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_config.c -- INI parsing with origins, typed values
 * with units, key tables, the core's layering of file < env < command line,
 * module environment overrides and samples.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/core_conf.h"
#include "tests/unit/tmpdir.h"

struct tconf {
    const char *name;
    const char *dir;
    int64_t count;
    bool on;
    uint64_t size;
    uint64_t wait_ms;
    double ratio;
};

static const struct rd_cfg_key tkeys[] = {
    RD_CFG_STRING("name", struct tconf, name, "anon", "a name"),
    RD_CFG_PATH("dir", struct tconf, dir, "cache", "a directory"),
    RD_CFG_INT("count", struct tconf, count, "3", "a count"),
    RD_CFG_BOOL("on", struct tconf, on, "no", "a switch"),
    RD_CFG_SIZE("size", struct tconf, size, "1MiB", "a size"),
    RD_CFG_DURATION("wait", struct tconf, wait_ms, "30s", "a duration"),
    RD_CFG_DOUBLE("ratio", struct tconf, ratio, "0.5", "a ratio"),
    RD_CFG_END,
};

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_make(tmpdir, sizeof(tmpdir), "rd-test-config");
}

static int teardown(void **state)
{
    (void)state;
    test_tmpdir_remove(tmpdir);
    return 0;
}

/* Writes text to <tmpdir>/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_parse_entries_with_origins(void **state)
{
    struct cfg_file *f = NULL;
    struct rd_error err = {0};
    const struct cfg_entry *e;
    const char *path = write_file("a.conf", "# comment\n"
                                            "top = 1\n"
                                            "; other comment\n"
                                            "[one]\n"
                                            "k = value with spaces   # trailing comment\n"
                                            "q = \"# not a comment\"\n"
                                            "[two.x]\n"
                                            "k = 2\n");
    (void)state;

    assert_int_equal(cfg_file_load(path, &f, &err), RD_OK);
    assert_int_equal(f->n, 4);
    e = cfg_file_get(f, "", "top");
    assert_non_null(e);
    assert_string_equal(e->value, "1");
    assert_non_null(strstr(e->origin, "a.conf:2"));
    e = cfg_file_get(f, "one", "k");
    assert_string_equal(e->value, "value with spaces");
    assert_non_null(strstr(e->origin, "a.conf:5"));
    assert_string_equal(cfg_file_get(f, "one", "q")->value, "# not a comment");
    assert_string_equal(cfg_file_get(f, "two.x", "k")->value, "2");
    assert_null(cfg_file_get(f, "two", "k"));
    cfg_file_free(f);
}

static void test_parse_errors_name_the_line(void **state)
{
    struct cfg_file *f = NULL;
    struct rd_error err = {0};
    (void)state;

    assert_int_equal(cfg_file_load(write_file("b.conf", "a = 1\n\n[s\nb = 2\n"), &f, &err),
                     RD_EINVAL);
    assert_null(f);
    assert_non_null(strstr(err.msg, "b.conf:3"));

    assert_int_equal(cfg_file_load(write_file("c.conf", "[s]\na = 1\nnovalue\n"), &f, &err),
                     RD_EINVAL);
    assert_non_null(strstr(err.msg, "c.conf:3"));

    assert_int_equal(cfg_file_load(write_file("d.conf", "[s]\na = 1\na = 2\n"), &f, &err),
                     RD_EINVAL);
    assert_non_null(strstr(err.msg, "d.conf:3"));
    assert_non_null(strstr(err.msg, "twice"));

    assert_int_equal(cfg_file_load("/nonexistent/x.conf", &f, &err), RD_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/x.conf"));
}

static void test_values_with_units(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } sizes[] = {{"0", 0},
                 {"512", 512},
                 {"64k", 65536},
                 {"64KiB", 65536},
                 {"1KB", 1000},
                 {"10MiB", 10485760},
                 {"1.5MiB", 1572864},
                 {"20GiB", 21474836480ull},
                 {"2 GB", 2000000000ull},
                 {"1TiB", 1099511627776ull}},
      durations[] = {{"250ms", 250},  {"30s", 30000},    {"30", 30000},  {"5m", 300000},
                     {"2h", 7200000}, {"7d", 604800000}, {"1.5s", 1500}, {"0", 0}};
    static const char *const bad_sizes[] = {"", "-1", "1XB", "abc", "1 2", "1e400", "MiB"};
    static const char *const bad_durations[] = {"", "-5s", "5x", "s", "1.2.3s"};
    uint64_t v;
    bool b;
    int64_t i;
    (void)state;

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        assert_int_equal(cfg_parse_size(sizes[k].s, &v), RD_OK);
        assert_int_equal(v, sizes[k].v);
    }
    for (size_t k = 0; k < sizeof(durations) / sizeof(durations[0]); k++) {
        assert_int_equal(cfg_parse_duration(durations[k].s, &v), RD_OK);
        assert_int_equal(v, durations[k].v);
    }
    for (size_t k = 0; k < sizeof(bad_sizes) / sizeof(bad_sizes[0]); k++)
        assert_int_equal(cfg_parse_size(bad_sizes[k], &v), RD_EINVAL);
    for (size_t k = 0; k < sizeof(bad_durations) / sizeof(bad_durations[0]); k++)
        assert_int_equal(cfg_parse_duration(bad_durations[k], &v), RD_EINVAL);
    assert_int_equal(cfg_parse_bool("Yes", &b), RD_OK);
    assert_true(b);
    assert_int_equal(cfg_parse_bool("off", &b), RD_OK);
    assert_false(b);
    assert_int_equal(cfg_parse_bool("maybe", &b), RD_EINVAL);
    assert_int_equal(cfg_parse_int("-42", &i), RD_OK);
    assert_int_equal(i, -42);
    assert_int_equal(cfg_parse_int("42abc", &i), RD_EINVAL);
    assert_int_equal(cfg_parse_int("99999999999999999999", &i), RD_EINVAL);
}

static void test_apply_defaults_values_and_errors(void **state)
{
    struct cfg_file *f = NULL;
    struct cfg_strings strings = {0};
    struct rd_error err = {0};
    struct tconf c;
    (void)state;

    /* Defaults alone. */
    assert_int_equal(cfg_apply(NULL, "", tkeys, &c, "/base", &strings, &err), RD_OK);
    assert_string_equal(c.name, "anon");
    assert_string_equal(c.dir, "/base/cache");
    assert_int_equal(c.count, 3);
    assert_false(c.on);
    assert_int_equal(c.size, 1048576);
    assert_int_equal(c.wait_ms, 30000);
    assert_true(c.ratio > 0.49 && c.ratio < 0.51);

    /* Values from the main section under either alias. */
    assert_int_equal(cfg_file_load(write_file("e.conf", "name = x\n[mod]\ndir = /abs\nsize = "
                                                        "2KiB\nwait = 100ms\non = yes\n"),
                                   &f, &err),
                     RD_OK);
    assert_int_equal(cfg_apply(f, "|mod", tkeys, &c, "/base", &strings, &err), RD_OK);
    assert_string_equal(c.name, "x");
    assert_string_equal(c.dir, "/abs");
    assert_int_equal(c.size, 2048);
    assert_int_equal(c.wait_ms, 100);
    assert_true(c.on);
    assert_null(cfg_file_unused(f));
    cfg_file_free(f);

    /* A bad value names file:line, key and what was expected. */
    assert_int_equal(cfg_file_load(write_file("f.conf", "\nsize = lots\n"), &f, &err), RD_OK);
    assert_int_equal(cfg_apply(f, "", tkeys, &c, NULL, &strings, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "f.conf:2"));
    assert_non_null(strstr(err.msg, "size"));
    assert_non_null(strstr(err.msg, "64KiB"));
    cfg_file_free(f);

    /* An unknown key is refused and the known ones are listed. */
    assert_int_equal(cfg_file_load(write_file("g.conf", "nmae = typo\n"), &f, &err), RD_OK);
    assert_int_equal(cfg_apply(f, "", tkeys, &c, NULL, &strings, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "g.conf:1"));
    assert_non_null(strstr(err.msg, "'nmae'"));
    assert_non_null(strstr(err.msg, "name, dir, count"));
    cfg_file_free(f);

    /* Sections nobody applied are left over. */
    assert_int_equal(cfg_file_load(write_file("h.conf", "name = a\n[other]\nx = 1\n"), &f, &err),
                     RD_OK);
    assert_int_equal(cfg_apply(f, "", tkeys, &c, NULL, &strings, &err), RD_OK);
    assert_non_null(cfg_file_unused(f));
    assert_string_equal(cfg_file_unused(f)->section, "other");
    cfg_file_free(f);
    cfg_strings_free(&strings);
}

static int count_section(const char *section, void *arg)
{
    char *seen = arg;
    strcat(seen, section);
    strcat(seen, ";");
    return 0;
}

static void test_sections_in_file_order_once(void **state)
{
    struct cfg_file *f = NULL;
    struct rd_error err = {0};
    char seen[256] = "";
    (void)state;

    assert_int_equal(cfg_file_load(write_file("i.conf", "a = 1\n[backend.b]\nx = 1\ny = 2\n"
                                                        "[other]\nz = 1\n[backend.a]\nx = 3\n"),
                                   &f, &err),
                     RD_OK);
    assert_int_equal(cfg_file_sections(f, "backend.", count_section, seen), 0);
    assert_string_equal(seen, "backend.b;backend.a;");
    cfg_file_free(f);
}

static void test_core_layering(void **state)
{
    struct cfg_file *f = NULL;
    struct cfg_strings strings = {0};
    struct rd_error err = {0};
    struct core_conf c;
    struct core_cli cli = {0};
    const char *sets[] = {"http.max_body=4KiB", "auth.anonymous_read=no"};
    (void)state;

    cli.config = write_file("relengd.conf", "[relengd]\nstate_dir = /from/file\nlog_level = warn\n"
                                            "[store]\nbusy_timeout = 2s\nsynchronous = normal\n"
                                            "[http]\nlisten = 127.0.0.1:1111\n"
                                            "[webhook.ci]\nurl = http://127.0.0.1:9/hook\n");
    unsetenv("RELENGD_STATE_DIR");
    unsetenv("RELENGD_LISTEN");
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_OK);
    assert_string_equal(c.state_dir, "/from/file");
    assert_string_equal(c.http.listen, "127.0.0.1:1111");
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.http.max_body, 1048576);
    assert_true(c.anonymous_read);
    assert_false(c.sync_full);
    assert_int_equal(c.busy_timeout_ms, 2000);
    cfg_file_free(f);

    /* The environment wins over the file; the command line over both. */
    setenv("RELENGD_STATE_DIR", "/from/env", 1);
    setenv("RELENGD_LISTEN", "127.0.0.1:2222", 1);
    cli.listen = "127.0.0.1:3333";
    cli.sets = sets;
    cli.n_sets = 2;
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_OK);
    assert_string_equal(c.state_dir, "/from/env");
    assert_string_equal(c.http.listen, "127.0.0.1:3333");
    assert_int_equal(c.http.max_body, 4096);
    assert_false(c.anonymous_read);
    assert_string_equal(cfg_file_get(f, "relengd", "state_dir")->origin, "env RELENGD_STATE_DIR");
    {
        struct webhook_conf *hooks = NULL;
        size_t n = 0;
        assert_int_equal(core_conf_webhooks(f, &hooks, &n, &strings, &err), RD_OK);
        assert_int_equal(n, 1);
        assert_string_equal(hooks[0].name, "ci");
        assert_string_equal(hooks[0].url, "http://127.0.0.1:9/hook");
        assert_int_equal(hooks[0].max_attempts, 10);
        free(hooks);
    }
    cfg_file_free(f);
    unsetenv("RELENGD_STATE_DIR");
    unsetenv("RELENGD_LISTEN");

    /* A bad --set, an unknown section and a bad word are refused. */
    sets[0] = "nodot=1";
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "section.key=value"));
    cli.sets = NULL;
    cli.n_sets = 0;
    cli.config = write_file("bad.conf", "[relengd]\n[htpp]\nlisten = x\n");
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "bad.conf:3"));
    assert_non_null(strstr(err.msg, "unknown key 'listen' in [htpp]") || strstr(err.msg, "[htpp]"));
    cli.config = write_file("bad2.conf", "[store]\nsynchronous = sometimes\n");
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "bad2.conf:2"));
    cli.config = write_file("bad3.conf", "[webhook.x]\nsecret = s\n");
    assert_int_equal(core_conf_read(&cli, &f, &c, &strings, &err), RD_OK);
    {
        struct webhook_conf *hooks = NULL;
        size_t n = 0;
        assert_int_equal(core_conf_webhooks(f, &hooks, &n, &strings, &err), RD_EINVAL);
        assert_non_null(strstr(err.msg, "webhook.x"));
        assert_null(hooks);
    }
    cfg_file_free(f);
    cfg_strings_free(&strings);
}

static void test_module_env_overrides(void **state)
{
    struct cfg_file *f = NULL;
    struct cfg_strings strings = {0};
    struct rd_error err = {0};
    struct tconf c;
    (void)state;

    assert_int_equal(
        cfg_file_load(write_file("mod.conf", "[mod]\nname = file\ncount = 1\n"), &f, &err), RD_OK);
    setenv("RELENGD_MOD_NAME", "env", 1);
    setenv("RELENGD_MODX_COUNT", "7", 1); /* another module: not ours */
    assert_int_equal(core_conf_module_env(f, "mod"), RD_OK);
    assert_int_equal(cfg_apply(f, "|mod", tkeys, &c, NULL, &strings, &err), RD_OK);
    assert_string_equal(c.name, "env");
    assert_int_equal(c.count, 1);
    unsetenv("RELENGD_MOD_NAME");
    unsetenv("RELENGD_MODX_COUNT");
    cfg_file_free(f);
    cfg_strings_free(&strings);
}

static void test_sample_lists_every_key(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    (void)state;

    assert_non_null(out);
    assert_int_equal(cfg_write_sample(out, "mod", tkeys), RD_OK);
    fclose(out);
    assert_non_null(strstr(buf, "[mod]\n"));
    for (const struct rd_cfg_key *k = tkeys; k->name; k++) {
        char line[128];
        snprintf(line, sizeof(line), "# %s = %s\n", k->name, k->def);
        assert_non_null(strstr(buf, line));
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_entries_with_origins),
        cmocka_unit_test(test_parse_errors_name_the_line),
        cmocka_unit_test(test_values_with_units),
        cmocka_unit_test(test_apply_defaults_values_and_errors),
        cmocka_unit_test(test_sections_in_file_order_once),
        cmocka_unit_test(test_core_layering),
        cmocka_unit_test(test_module_env_overrides),
        cmocka_unit_test(test_sample_lists_every_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
