/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/template.h -- graph templates with parameters (the try
 * chooser's source). A template is
 *
 *   {"description": "...",
 *    "parameters": {"revision": {"type": "string", "required": true},
 *                   "platforms": {"type": "list", "default": ["linux64"]}, ...},
 *    "graph": {"name": "try {revision}", ..., "tasks": [
 *        {"label": "build-{platform}", "forEach": {"platform": "platforms"}, ...}]}}
 *
 * Rendering substitutes "{name}" in every string of the graph with a
 * string parameter or a forEach variable, expands each task once per
 * combination of its forEach lists, and marks the labels listed in the
 * "inactive" parameter inactive (jobs toggled off in the chooser: created,
 * not run, backfillable). Pure logic (jansson only); any thread.
 */
#ifndef RELENGD_GRAPH_TEMPLATE_H
#define RELENGD_GRAPH_TEMPLATE_H

#include <jansson.h>

/* Checks a template's own shape; appends problems. 0 when valid. */
int graph_template_check(const json_t *tpl, json_t *problems);
/* Renders tpl (named name) with params into *out (a new graph body with
   "template": name). Returns 0, or -2 with problems appended, -1 out of
   memory. */
int graph_template_render(const char *name, const json_t *tpl, const json_t *params,
                          json_t *problems, json_t **out);
/* Whether name is a usable template name: 1-64 of [A-Za-z0-9_-]. */
int graph_template_name_ok(const char *name);

#endif
