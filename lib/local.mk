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
check_PROGRAMS += tests/unit/lib/test_mar_write
tests_unit_lib_test_mar_write_SOURCES = tests/unit/lib/test_mar_write.c
tests_unit_lib_test_mar_write_CFLAGS = $(TEST_CFLAGS)
tests_unit_lib_test_mar_write_LDADD = $(LIBTEST_LDADD)
check_PROGRAMS += tests/unit/lib/test_mar_robust
tests_unit_lib_test_mar_robust_SOURCES = tests/unit/lib/test_mar_robust.c
tests_unit_lib_test_mar_robust_CFLAGS = $(TEST_CFLAGS)
tests_unit_lib_test_mar_robust_LDADD = $(LIBTEST_LDADD)
check_PROGRAMS += tests/unit/lib/test_mbsdiff
tests_unit_lib_test_mbsdiff_SOURCES = tests/unit/lib/test_mbsdiff.c
tests_unit_lib_test_mbsdiff_CFLAGS = $(TEST_CFLAGS)
tests_unit_lib_test_mbsdiff_LDADD = $(LIBTEST_LDADD)

# ------------------------------------------------------------------ fuzz
# The MAR reader's libFuzzer target, built by clang straight from the
# library's sources (automake's flags and libtool stay out of it), and a
# bounded run of it in make check. Without clang the script skips.
FUZZ_MAR_SRCS = lib/fuzz/fuzz_mar.c lib/mar/read.c lib/mar/name.c lib/mar/compress.c \
	lib/mar/extract.c lib/mar/verify.c lib/hash/crc32.c lib/hash/digest.c
EXTRA_DIST += lib/fuzz/fuzz_mar.c
lib/fuzz/fuzz_mar: $(FUZZ_MAR_SRCS:%=$(srcdir)/%)
	$(AM_V_CCLD)$(MKDIR_P) lib/fuzz && if test -n "$(CLANG)"; then \
		$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-include $(top_builddir)/config.h -I$(top_srcdir) -I$(top_builddir) -D_GNU_SOURCE \
		$(LZMA_CFLAGS) $(OPENSSL_CFLAGS) $(JANSSON_CFLAGS) $(SQLITE3_CFLAGS) $(CURL_CFLAGS) \
		$(LIBEVENT_CFLAGS) -o $@ $(FUZZ_MAR_SRCS:%=$(srcdir)/%) \
		$(LZMA_LIBS) $(BZ2_LIBS) $(OPENSSL_LIBS) -lpthread; \
	else echo "no clang: lib/fuzz/fuzz_mar not built"; fi
CLEANFILES += lib/fuzz/fuzz_mar
# The fuzz run needs the target; nothing else depends on it. (Named through a
# variable: the log's rule itself is automake's.)
FUZZ_MAR_LOG = tests/unit/lib/fuzz_mar.sh.log
$(FUZZ_MAR_LOG): lib/fuzz/fuzz_mar
TESTS += tests/unit/lib/fuzz_mar.sh
dist_check_SCRIPTS += tests/unit/lib/fuzz_mar.sh

# relengd-mar from a shell.
TESTS += tests/unit/lib/test_relengd_mar.sh
dist_check_SCRIPTS += tests/unit/lib/test_relengd_mar.sh
