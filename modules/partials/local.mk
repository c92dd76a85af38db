# SPDX-License-Identifier: MIT
# modules/partials/local.mk -- included by the top-level Makefile.am: the partials
# module, its tools and its tests.
