/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/nodesc.c -- a test module for the loader: a shared object
 * that loads fine but exports no rd_module_entry symbol (it exports
 * something else, so that it is not simply empty). The loader must refuse it
 * with a message naming the module and "rd_module_entry".
 */
#include "config.h"

#include "core/module.h"

/* A lookalike under another name: not the entry point the loader wants. */
RD_PUBLIC const char *rd_module_entry_missing(void);
RD_PUBLIC const char *rd_module_entry_missing(void)
{
    return "nodesc";
}
