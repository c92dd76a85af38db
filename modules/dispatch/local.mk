# SPDX-License-Identifier: MIT
# modules/dispatch/local.mk -- included by the top-level Makefile.am: the dispatch
# module, its tools and its tests.

noinst_LTLIBRARIES += modules/libdispatch_core.la
modules_libdispatch_core_la_SOURCES = modules/dispatch/module.c modules/dispatch/dispatch.h \
	modules/dispatch/queue.c modules/dispatch/routes_worker.c modules/dispatch/routes_log.c \
	modules/dispatch/routes_artifact.c modules/dispatch/routes_admin.c modules/dispatch/logstore.c \
	modules/dispatch/sql.c modules/dispatch/sql.h modules/dispatch/batch.c \
	modules/dispatch/placement.c modules/dispatch/placement.h \
	modules/dispatch/lease.c modules/dispatch/lease.h \
	modules/dispatch/logchunk.c modules/dispatch/logchunk.h \
	modules/dispatch/names.c modules/dispatch/names.h
modules_libdispatch_core_la_LIBADD = lib/hash/libhash.la $(LZMA_LIBS) $(OPENSSL_LIBS) -lm
nodist_modules_libdispatch_core_la_SOURCES = modules/dispatch/openapi.json.h
BUILT_SOURCES += modules/dispatch/openapi.json.h
CLEANFILES += modules/dispatch/openapi.json.h
modules/dispatch/module.lo: modules/dispatch/openapi.json.h
pkglib_LTLIBRARIES += modules/dispatch.la
modules_dispatch_la_SOURCES =
modules_dispatch_la_LIBADD = modules/libdispatch_core.la $(JANSSON_LIBS) $(SQLITE3_LIBS) \
	$(LZMA_LIBS) $(OPENSSL_LIBS) -lm
modules_dispatch_la_LDFLAGS = $(MODULE_LDFLAGS)
EXTRA_DIST += modules/dispatch/openapi.json modules/dispatch/README.md worker/README.md
dist_confmods_DATA += etc/modules.d/dispatch.conf

# relengd-worker, the agent on each worker machine (worker/README.md).
bin_PROGRAMS += worker/relengd-worker
worker_relengd_worker_SOURCES = worker/main.c worker/wconf.c worker/wconf.h \
	worker/whttp.c worker/whttp.h worker/task.c worker/task.h
worker_relengd_worker_LDADD = lib/hash/libhash.la $(CURL_LIBS) $(JANSSON_LIBS) $(OPENSSL_LIBS) -lpthread

# Unit tests: pure logic in tables; the module through the fake host.
check_PROGRAMS += tests/unit/dispatch/test_pure
tests_unit_dispatch_test_pure_SOURCES = tests/unit/dispatch/test_pure.c
tests_unit_dispatch_test_pure_CFLAGS = $(TEST_CFLAGS)
tests_unit_dispatch_test_pure_LDADD = modules/libdispatch_core.la $(CORE_LIBS) $(CMOCKA_LIBS) \
	$(LZMA_LIBS) -lm
check_PROGRAMS += tests/unit/dispatch/test_module
tests_unit_dispatch_test_module_SOURCES = tests/unit/dispatch/test_module.c
tests_unit_dispatch_test_module_CFLAGS = $(TEST_CFLAGS)
tests_unit_dispatch_test_module_LDADD = modules/libdispatch_core.la tests/fakes/libfakehost.la \
	$(CORE_LIBS) $(CMOCKA_LIBS) $(LZMA_LIBS) $(OPENSSL_LIBS) -lm

# End-to-end: the real daemon with real relengd-worker processes.
noinst_LTLIBRARIES += tests/e2e/libdispatchutil.la
tests_e2e_libdispatchutil_la_SOURCES = tests/e2e/dispatch_util.c tests/e2e/dispatch_util.h
tests_e2e_libdispatchutil_la_CFLAGS = $(TEST_CFLAGS)
check_PROGRAMS += tests/e2e/test_dispatch
tests_e2e_test_dispatch_SOURCES = tests/e2e/test_dispatch.c
tests_e2e_test_dispatch_CFLAGS = $(TEST_CFLAGS)
tests_e2e_test_dispatch_LDADD = tests/e2e/libdispatchutil.la lib/hash/libhash.la $(E2E_LDADD) \
	$(OPENSSL_LIBS)
check_PROGRAMS += tests/e2e/test_dispatch_graph
tests_e2e_test_dispatch_graph_SOURCES = tests/e2e/test_dispatch_graph.c
tests_e2e_test_dispatch_graph_CFLAGS = $(TEST_CFLAGS)
tests_e2e_test_dispatch_graph_LDADD = tests/e2e/libdispatchutil.la $(E2E_LDADD)
cli_relengctl_SOURCES += cli/ctl_dispatch.c
EXTRA_DIST += tests/browser/dispatch.test.mjs
