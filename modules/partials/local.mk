# SPDX-License-Identifier: MIT
# modules/partials/local.mk -- included by the top-level Makefile.am: the partials
# module, its tools and its tests.

# ------------------------------------------------- lib/partial (generation)
# Host-independent: tree diffing, manifest rules, generation, apply-to-verify.
# Used by the partials module and by relengd-mar make-partial.
noinst_LTLIBRARIES += lib/partial/libpartial.la
lib_partial_libpartial_la_SOURCES = lib/partial/manifest.c lib/partial/manifest.h

check_PROGRAMS += tests/unit/partial/test_manifest
tests_unit_partial_test_manifest_SOURCES = tests/unit/partial/test_manifest.c
tests_unit_partial_test_manifest_CFLAGS = $(TEST_CFLAGS)
tests_unit_partial_test_manifest_LDADD = lib/partial/libpartial.la $(CMOCKA_LIBS)
