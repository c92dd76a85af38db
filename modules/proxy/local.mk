# SPDX-License-Identifier: MIT
# modules/proxy/local.mk -- included by the top-level Makefile.am: the proxy
# module, its tools and its tests.
