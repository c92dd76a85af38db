# SPDX-License-Identifier: MIT
# modules/proxy/local.mk -- included by the top-level Makefile.am: the proxy
# module, its tools and its tests.

# ----------------------------------------------------------- the module
noinst_LTLIBRARIES += modules/libproxy_core.la
modules_libproxy_core_la_SOURCES = modules/proxy/module.c modules/proxy/proxy.h \
	modules/proxy/http_req.c modules/proxy/http_req.h \
	modules/proxy/cache_key.c modules/proxy/cache_key.h \
	modules/proxy/fresh.c modules/proxy/fresh.h \
	modules/proxy/index.c modules/proxy/store.c modules/proxy/server.c \
	modules/proxy/upstream.c modules/proxy/api.c
nodist_modules_libproxy_core_la_SOURCES = modules/proxy/openapi.json.h
modules_libproxy_core_la_LIBADD = lib/hash/libhash.la $(LIBEVENT_LIBS) $(CURL_LIBS) $(OPENSSL_LIBS) $(JANSSON_LIBS) \
	$(SQLITE3_LIBS)
BUILT_SOURCES += modules/proxy/openapi.json.h
CLEANFILES += modules/proxy/openapi.json.h
modules/proxy/module.lo: modules/proxy/openapi.json.h
pkglib_LTLIBRARIES += modules/proxy.la
modules_proxy_la_SOURCES =
modules_proxy_la_LIBADD = modules/libproxy_core.la
modules_proxy_la_LDFLAGS = $(MODULE_LDFLAGS)
EXTRA_DIST += modules/proxy/openapi.json modules/proxy/README.md

# ------------------------------------------------------ end-to-end tests
check_PROGRAMS += tests/e2e/test_proxy
tests_e2e_test_proxy_SOURCES = tests/e2e/test_proxy.c tests/e2e/proxy_util.c \
	tests/e2e/proxy_util.h
tests_e2e_test_proxy_CFLAGS = $(TEST_CFLAGS)
tests_e2e_test_proxy_LDADD = lib/hash/libhash.la $(E2E_LDADD)
EXTRA_DIST += tests/e2e/proxy_origin.py
dist_confmods_DATA += etc/modules.d/proxy.conf

# ------------------------------------------------------------ unit tests
check_PROGRAMS += tests/unit/proxy/test_cache_key tests/unit/proxy/test_fresh \
	tests/unit/proxy/test_http_req
tests_unit_proxy_test_cache_key_SOURCES = tests/unit/proxy/test_cache_key.c
tests_unit_proxy_test_cache_key_CFLAGS = $(TEST_CFLAGS)
tests_unit_proxy_test_cache_key_LDADD = modules/libproxy_core.la $(CORE_LIBS) $(CMOCKA_LIBS)
tests_unit_proxy_test_fresh_SOURCES = tests/unit/proxy/test_fresh.c
tests_unit_proxy_test_fresh_CFLAGS = $(TEST_CFLAGS)
tests_unit_proxy_test_fresh_LDADD = modules/libproxy_core.la $(CORE_LIBS) $(CMOCKA_LIBS)
tests_unit_proxy_test_http_req_SOURCES = tests/unit/proxy/test_http_req.c
tests_unit_proxy_test_http_req_CFLAGS = $(TEST_CFLAGS)
tests_unit_proxy_test_http_req_LDADD = modules/libproxy_core.la $(CORE_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/proxy/test_module
tests_unit_proxy_test_module_SOURCES = tests/unit/proxy/test_module.c
tests_unit_proxy_test_module_CFLAGS = $(TEST_CFLAGS)
tests_unit_proxy_test_module_LDADD = modules/libproxy_core.la tests/fakes/libfakehost.la \
	$(CORE_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += tests/browser/proxy.test.mjs
cli_relengctl_SOURCES += cli/ctl_proxy.c
