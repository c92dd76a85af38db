# SPDX-License-Identifier: MIT
# modules/dispatch/local.mk -- included by the top-level Makefile.am: the dispatch
# module, its tools and its tests.
