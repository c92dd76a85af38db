/* SPDX-License-Identifier: MIT */
/*
 * core/module_loader.c -- opens a module's shared object and refuses, with a
 * message naming the module, anything that is not a module built for this
 * host: no entry symbol, another ABI, an older descriptor, another build,
 * a name that differs from the file, missing callbacks, a bad OpenAPI
 * fragment. Main thread.
 */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/module_loader.h"

typedef const struct rd_module *(*loader_entry_fn)(void);

bool loader_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 32 || !islower((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '_')
            return false;
    return true;
}

/* The first <dir>/<name>.so that exists, malloc'd; NULL if none. */
static char *loader_find(const char *name, const char *dirs)
{
    const char *p = dirs;

    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        if (dlen > 0) {
            size_t n = dlen + strlen(name) + 5;
            char *path = malloc(n);
            if (!path)
                return NULL;
            snprintf(path, n, "%.*s/%s.so", (int)dlen, p, name);
            if (access(path, F_OK) == 0)
                return path;
            free(path);
        }
        p = colon ? colon + 1 : NULL;
    }
    return NULL;
}

static int loader_check(struct host_module *m, const struct rd_module *d, struct rd_error *err)
{
    const char *n = m->name;

    if (!d)
        return rd_error_set(err, RD_EINVAL, "module '%s' (%s): rd_module_entry() returned NULL", n,
                            m->so_path);
    if (d->abi != RD_MODULE_ABI)
        return rd_error_set(err, RD_EINVAL,
                            "module '%s' (%s) was built for host ABI %u, this relengd has ABI %u: "
                            "rebuild the module against this relengd",
                            n, m->so_path, d->abi, RD_MODULE_ABI);
    if (d->size < offsetof(struct rd_module, reload))
        return rd_error_set(err, RD_EINVAL,
                            "module '%s' (%s): descriptor is %u bytes, too small for ABI %u", n,
                            m->so_path, d->size, RD_MODULE_ABI);
    if (!d->build || strcmp(d->build, RD_BUILD) != 0)
        return rd_error_set(err, RD_EINVAL,
                            "module '%s' (%s) was built for relengd %s, this is relengd %s: "
                            "rebuild the module in the same tree",
                            n, m->so_path, d->build ? d->build : "(none)", RD_BUILD);
    if (!d->name || strcmp(d->name, n) != 0)
        return rd_error_set(err, RD_EINVAL, "module file %s calls itself '%s', expected '%s'",
                            m->so_path, d->name ? d->name : "(null)", n);
    if (!d->init || !d->start || !d->stop || !d->destroy)
        return rd_error_set(err, RD_EINVAL,
                            "module '%s' (%s): init, start, stop and destroy are all required", n,
                            m->so_path);
    if (d->openapi) {
        json_error_t je;
        json_t *doc = json_loads(d->openapi, 0, &je);
        if (!doc || !json_is_object(json_object_get(doc, "paths"))) {
            json_decref(doc);
            return rd_error_set(err, RD_EINVAL,
                                "module '%s': its OpenAPI fragment is not {\"paths\":{...}}: %s "
                                "(line %d)",
                                n, doc ? "no paths object" : je.text, je.line);
        }
        m->openapi = doc;
    }
    return RD_OK;
}

int loader_open(struct host_module *m, const char *dirs, struct rd_error *err)
{
    loader_entry_fn entry;
    void *sym;
    int rc;

    if (!loader_valid_name(m->name))
        return rd_error_set(err, RD_EINVAL,
                            "module name '%s' is not valid (lowercase letters, digits, _; "
                            "at most 32)",
                            m->name);
    m->so_path = loader_find(m->name, dirs);
    if (!m->so_path)
        return rd_error_set(err, RD_ENOTFOUND, "module '%s' not found: no %s.so in module_dir %s",
                            m->name, m->name, dirs);
    /* RTLD_LOCAL: a module's symbols never satisfy another module's. */
    m->dl = dlopen(m->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl)
        return rd_error_set(err, RD_EINVAL, "module '%s' cannot be loaded: %s", m->name, dlerror());
    dlerror();
    sym = dlsym(m->dl, "rd_module_entry");
    if (!sym) {
        rc = rd_error_set(err, RD_EINVAL,
                          "module '%s' (%s) has no rd_module_entry symbol: not a relengd module",
                          m->name, m->so_path);
        goto fail;
    }
    /* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
    memcpy(&entry, &sym, sizeof(entry));
    m->desc = entry();
    rc = loader_check(m, m->desc, err);
    if (rc != RD_OK)
        goto fail;
    return RD_OK;
fail:
    loader_close(m);
    return rc;
}

void loader_close(struct host_module *m)
{
    if (!m || !m->dl)
        return;
    dlclose(m->dl);
    m->dl = NULL;
    m->desc = NULL;
}
