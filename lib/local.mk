# SPDX-License-Identifier: MIT
# lib/local.mk -- included by the top-level Makefile.am: the MAR and mbsdiff
# libraries, relengd-mar, their unit tests and the fuzz target.
