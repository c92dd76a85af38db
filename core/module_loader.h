/* SPDX-License-Identifier: MIT */
/*
 * core/module_loader.h -- finding, opening and checking module shared
 * objects: dlopen(RTLD_NOW|RTLD_LOCAL), dlsym("rd_module_entry"), then the
 * ABI, size, build, name and callback checks. Main thread.
 */
#ifndef RELENGD_MODULE_LOADER_H
#define RELENGD_MODULE_LOADER_H

#include "core/host.h"

/* Looks for <dir>/<name>.so in each dir of the colon-separated dirs, opens
   and checks it, and fills m->dl, m->desc, m->so_path, m->openapi. Every
   error names the module and says what to do. */
int loader_open(struct host_module *m, const char *dirs, struct rd_error *err);
/* dlclose; NULL-safe. */
void loader_close(struct host_module *m);
/* A module name: [a-z][a-z0-9_]{0,31}. */
bool loader_valid_name(const char *name);

#endif
