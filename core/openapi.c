/* SPDX-License-Identifier: MIT */
/*
 * core/openapi.c -- /api/v1/openapi.json: the core's hand-written document
 * (core/openapi.json, compiled in) plus each loaded module's fragment, its
 * paths placed under /api/v1/<module> and tagged with the module's name.
 * Built per request (it is small) so it always matches what is loaded.
 */
#include "config.h"

#include <string.h>

#include "core/host.h"

static const char openapi_core[] =
#include "core/openapi.json.h"
    ;

json_t *host_openapi(struct host *h)
{
    json_error_t je;
    json_t *doc = json_loads(openapi_core, 0, &je), *paths, *tags;

    if (!doc)
        return NULL;
    paths = json_object_get(doc, "paths");
    tags = json_object_get(doc, "tags");
    json_object_set_new(json_object_get(doc, "info"), "version", json_string(PACKAGE_VERSION));
    for (size_t i = 0; paths && i < h->n_mods; i++) {
        struct host_module *m = h->mods[i];
        const char *suffix;
        json_t *item;

        if (!m->openapi)
            continue;
        if (json_is_array(tags))
            json_array_append_new(
                tags, json_pack("{s:s, s:s}", "name", m->name, "description", "module"));
        json_object_foreach(json_object_get(m->openapi, "paths"), suffix, item)
        {
            char full[512];
            const char *method;
            json_t *op, *copy = json_deep_copy(item);

            if (!copy)
                continue;
            json_object_foreach(copy, method, op)
            {
                if (json_is_object(op) && !json_object_get(op, "tags"))
                    json_object_set_new(op, "tags", json_pack("[s]", m->name));
            }
            snprintf(full, sizeof(full), "/api/v1/%s%s", m->name, suffix);
            json_object_set_new(paths, full, copy);
        }
    }
    return doc;
}
