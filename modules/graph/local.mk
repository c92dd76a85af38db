# SPDX-License-Identifier: MIT
# modules/graph/local.mk -- included by the top-level Makefile.am: the graph
# module, its tools and its tests.

noinst_LTLIBRARIES += modules/libgraph_core.la
modules_libgraph_core_la_SOURCES = modules/graph/module.c modules/graph/graph.h \
	modules/graph/api.c modules/graph/api.h modules/graph/engine.c modules/graph/engine.h \
	modules/graph/read.c modules/graph/read.h modules/graph/spec.c modules/graph/spec.h \
	modules/graph/state.c modules/graph/state.h modules/graph/template.c \
	modules/graph/template.h modules/graph/labelmap.c modules/graph/labelmap.h
nodist_modules_libgraph_core_la_SOURCES = modules/graph/openapi.json.h
BUILT_SOURCES += modules/graph/openapi.json.h
CLEANFILES += modules/graph/openapi.json.h
modules/graph/module.lo: modules/graph/openapi.json.h
pkglib_LTLIBRARIES += modules/graph.la
modules_graph_la_SOURCES =
modules_graph_la_LIBADD = modules/libgraph_core.la $(JANSSON_LIBS) $(SQLITE3_LIBS)
modules_graph_la_LDFLAGS = $(MODULE_LDFLAGS)
EXTRA_DIST += modules/graph/openapi.json modules/graph/README.md
dist_confmods_DATA += etc/modules.d/graph.conf

# Templates for the try chooser, installed beside relengd.conf.
graphtpldir = $(sysconfdir)/relengd/graph
dist_graphtpl_DATA = etc/graph/try.json etc/graph/release.json

# ------------------------------------------------------------ unit tests
GRAPH_TEST_LDADD = modules/libgraph_core.la tests/fakes/libfakehost.la $(CORE_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/graph/test_spec tests/unit/graph/test_state \
	tests/unit/graph/test_template tests/unit/graph/test_module
tests_unit_graph_test_spec_SOURCES = tests/unit/graph/test_spec.c
tests_unit_graph_test_spec_CFLAGS = $(TEST_CFLAGS)
tests_unit_graph_test_spec_LDADD = $(GRAPH_TEST_LDADD)
tests_unit_graph_test_state_SOURCES = tests/unit/graph/test_state.c
tests_unit_graph_test_state_CFLAGS = $(TEST_CFLAGS)
tests_unit_graph_test_state_LDADD = $(GRAPH_TEST_LDADD)
tests_unit_graph_test_template_SOURCES = tests/unit/graph/test_template.c
tests_unit_graph_test_template_CFLAGS = $(TEST_CFLAGS)
tests_unit_graph_test_template_LDADD = $(GRAPH_TEST_LDADD)
tests_unit_graph_test_module_SOURCES = tests/unit/graph/test_module.c
tests_unit_graph_test_module_CFLAGS = $(TEST_CFLAGS)
tests_unit_graph_test_module_LDADD = $(GRAPH_TEST_LDADD)


# ----------------------------------------------------------------- tools
cli_relengctl_SOURCES += cli/ctl_graph.c

# ----------------------------------------------------- end-to-end tests
# graph with the dispatch module: this test is the worker.
check_PROGRAMS += tests/e2e/test_graph
tests_e2e_test_graph_SOURCES = tests/e2e/test_graph.c
tests_e2e_test_graph_CFLAGS = $(TEST_CFLAGS)
tests_e2e_test_graph_LDADD = $(E2E_LDADD)

# ------------------------------------------------------------------ bench
# bench/graph.sh's in-process completer (provides dispatch.queue).
check_LTLIBRARIES += tests/modules/graphbench.la
tests_modules_graphbench_la_SOURCES = tests/modules/graphbench.c
tests_modules_graphbench_la_LDFLAGS = $(TEST_MODULE_LDFLAGS)
tests_modules_graphbench_la_LIBADD = $(JANSSON_LIBS) -lpthread

# ------------------------------------------------------------ dashboard
EXTRA_DIST += tests/browser/graph.test.mjs
