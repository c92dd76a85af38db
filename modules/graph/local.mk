# SPDX-License-Identifier: MIT
# modules/graph/local.mk -- included by the top-level Makefile.am: the graph
# module, its tools and its tests.
