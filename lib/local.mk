# SPDX-License-Identifier: MIT
# lib/local.mk -- included by the top-level Makefile.am: the MAR and mbsdiff
# libraries, relengd-mar, their unit tests and the fuzz target.

# ------------------------------------------------------------ libraries
# Three convenience libraries. A user links what it needs plus the system
# libraries below; RDLIB_LIBS is all of it, in link order:
#   foo_LDADD = $(RDLIB_LIBS)
noinst_LTLIBRARIES += lib/mar/libmar.la lib/mbsdiff/libmbsdiff.la lib/hash/libhash.la
lib_hash_libhash_la_SOURCES = lib/hash/hash.h lib/hash/crc32.c lib/hash/digest.c
lib_mar_libmar_la_SOURCES = lib/mar/mar.h lib/mar/mar_int.h lib/mar/read.c lib/mar/name.c \
	lib/mar/compress.c lib/mar/extract.c lib/mar/write.c lib/mar/verify.c
lib_mar_libmar_la_CPPFLAGS = $(AM_CPPFLAGS) $(LZMA_CFLAGS)
lib_mbsdiff_libmbsdiff_la_SOURCES = lib/mbsdiff/mbsdiff.h lib/mbsdiff/diff.c lib/mbsdiff/patch.c
lib_mbsdiff_libmbsdiff_la_CPPFLAGS = $(AM_CPPFLAGS) $(DIVSUFSORT_CFLAGS)
RDLIB_LIBS = lib/mar/libmar.la lib/mbsdiff/libmbsdiff.la lib/hash/libhash.la $(LZMA_LIBS) \
	$(BZ2_LIBS) $(DIVSUFSORT_LIBS) $(OPENSSL_LIBS) -lpthread
EXTRA_DIST += lib/README.md

# ----------------------------------------------------------- relengd-mar
bin_PROGRAMS += cli/mar/relengd-mar
cli_mar_relengd_mar_SOURCES = cli/mar/relengd-mar.c cli/mar/cmd.h cli/mar/cmd_info.c \
	cli/mar/cmd_extract.c cli/mar/cmd_create.c cli/mar/cmd_verify.c cli/mar/cmd_diff.c
cli_mar_relengd_mar_LDADD = $(RDLIB_LIBS)

# ------------------------------------------------------------ unit tests
LIBTEST_LDADD = $(RDLIB_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += tests/unit/lib/libtest.h tests/unit/lib/data
check_PROGRAMS += tests/unit/lib/test_mar_fixtures
tests_unit_lib_test_mar_fixtures_SOURCES = tests/unit/lib/test_mar_fixtures.c
tests_unit_lib_test_mar_fixtures_CFLAGS = $(TEST_CFLAGS)
tests_unit_lib_test_mar_fixtures_LDADD = $(LIBTEST_LDADD)
