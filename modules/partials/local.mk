# SPDX-License-Identifier: MIT
# modules/partials/local.mk -- included by the top-level Makefile.am: the partials
# module, its tools and its tests.

# ------------------------------------------------- lib/partial (generation)
# Host-independent: tree diffing, manifest rules, generation, apply-to-verify.
# Used by the partials module and by relengd-mar make-partial.
noinst_LTLIBRARIES += lib/partial/libpartial.la
lib_partial_libpartial_la_SOURCES = lib/partial/manifest.c lib/partial/manifest.h \
	lib/partial/apply.c lib/partial/apply.h lib/partial/generate.c lib/partial/generate.h

check_PROGRAMS += tests/unit/partial/test_manifest
tests_unit_partial_test_manifest_SOURCES = tests/unit/partial/test_manifest.c
tests_unit_partial_test_manifest_CFLAGS = $(TEST_CFLAGS)
tests_unit_partial_test_manifest_LDADD = lib/partial/libpartial.la $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/partial/test_generate
tests_unit_partial_test_generate_SOURCES = tests/unit/partial/test_generate.c
tests_unit_partial_test_generate_CFLAGS = $(TEST_CFLAGS)
tests_unit_partial_test_generate_LDADD = lib/partial/libpartial.la $(RDLIB_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += tests/unit/partial/trees.h

# ------------------------------------------------------- the partials module
noinst_LTLIBRARIES += modules/libpartials_core.la
modules_libpartials_core_la_SOURCES = modules/partials/module.c modules/partials/partials.h \
	modules/partials/spec.c modules/partials/spec.h modules/partials/store.c \
	modules/partials/cache.c modules/partials/cache.h modules/partials/job.c \
	modules/partials/api.c modules/partials/signing.h
nodist_modules_libpartials_core_la_SOURCES = modules/partials/openapi.json.h
BUILT_SOURCES += modules/partials/openapi.json.h
CLEANFILES += modules/partials/openapi.json.h
modules/partials/module.lo: modules/partials/openapi.json.h
EXTRA_DIST += modules/partials/openapi.json modules/partials/README.md
pkglib_LTLIBRARIES += modules/partials.la
modules_partials_la_SOURCES =
modules_partials_la_LIBADD = modules/libpartials_core.la lib/partial/libpartial.la $(RDLIB_LIBS) \
	$(JANSSON_LIBS) $(SQLITE3_LIBS) $(CURL_LIBS)
modules_partials_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_confmods_DATA += etc/modules.d/partials.conf

PARTIALS_TEST_LDADD = modules/libpartials_core.la lib/partial/libpartial.la $(RDLIB_LIBS) \
	tests/fakes/libfakehost.la $(CORE_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/partials/test_spec tests/unit/partials/test_module
tests_unit_partials_test_spec_SOURCES = tests/unit/partials/test_spec.c
tests_unit_partials_test_spec_CFLAGS = $(TEST_CFLAGS)
tests_unit_partials_test_spec_LDADD = $(PARTIALS_TEST_LDADD)
tests_unit_partials_test_module_SOURCES = tests/unit/partials/test_module.c
tests_unit_partials_test_module_CFLAGS = $(TEST_CFLAGS)
tests_unit_partials_test_module_LDADD = $(PARTIALS_TEST_LDADD)

check_PROGRAMS += tests/e2e/test_partials
tests_e2e_test_partials_SOURCES = tests/e2e/test_partials.c
tests_e2e_test_partials_CFLAGS = $(TEST_CFLAGS)
tests_e2e_test_partials_LDADD = lib/partial/libpartial.la $(RDLIB_LIBS) $(E2E_LDADD)

# relengd-mar make-partial (the command table line is in cli/mar/relengd-mar.c)
cli_mar_relengd_mar_SOURCES += cli/mar/cmd_partial.c
cli_mar_relengd_mar_LDADD += lib/partial/libpartial.la $(RDLIB_LIBS)

# relengctl partials (the group line is in cli/relengctl.c)
cli_relengctl_SOURCES += cli/ctl_partials.c
EXTRA_DIST += tests/browser/partials.test.mjs
