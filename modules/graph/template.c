/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/template.c -- see template.h. Substitution walks a JSON
 * value and copies it; a string's "{name}" is looked up first in the task's
 * loop variables, then in the string parameters. Pure logic.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/graph/template.h"

#define TPL_ENOMEM (-1)
#define TPL_EINVAL (-2)
#define TPL_MAX_EXPANSION 100000

static void tproblem(json_t *problems, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tproblem(json_t *problems, const char *fmt, ...)
{
    char buf[300];
    va_list ap;

    if (json_array_size(problems) >= 50)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

int graph_template_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 64)
        return 0;
    for (; *name; name++)
        if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
              (*name >= '0' && *name <= '9') || *name == '-' || *name == '_'))
            return 0;
    return 1;
}

int graph_template_check(const json_t *tpl, json_t *problems)
{
    const json_t *params = json_object_get(tpl, "parameters"),
                 *graph = json_object_get(tpl, "graph");
    const json_t *p, *tasks, *t;
    const char *k;
    size_t before = json_array_size(problems), i;

    if (!json_is_object(tpl)) {
        tproblem(problems, "a template must be a JSON object");
        return TPL_EINVAL;
    }
    if (params && !json_is_object(params))
        tproblem(problems, "\"parameters\" must be an object");
    json_object_foreach((json_t *)params, k, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        const json_t *def = json_object_get(p, "default");
        if (!json_is_object(p) || !type ||
            (strcmp(type, "string") != 0 && strcmp(type, "list") != 0)) {
            tproblem(problems, "parameter \"%.64s\": \"type\" must be \"string\" or \"list\"", k);
            continue;
        }
        if (strcmp(k, "inactive") == 0)
            tproblem(problems, "parameter name \"inactive\" is reserved");
        if (def && strcmp(type, "string") == 0 && !json_is_string(def))
            tproblem(problems, "parameter \"%.64s\": the default must be a string", k);
        if (def && strcmp(type, "list") == 0 && !json_is_array(def))
            tproblem(problems, "parameter \"%.64s\": the default must be a list of strings", k);
    }
    if (!json_is_object(graph)) {
        tproblem(problems, "\"graph\" (an object) is required");
        return TPL_EINVAL;
    }
    tasks = json_object_get(graph, "tasks");
    if (!json_is_array(tasks) || json_array_size(tasks) == 0)
        tproblem(problems, "graph \"tasks\" must be a non-empty array");
    json_array_foreach(tasks, i, t)
    {
        const json_t *fe = json_object_get(t, "forEach"), *v;
        if (!json_is_object(t)) {
            tproblem(problems, "graph tasks[%zu] must be an object", i);
            continue;
        }
        if (fe && !json_is_object(fe)) {
            tproblem(problems,
                     "graph tasks[%zu]: \"forEach\" must map variables to list parameters", i);
            continue;
        }
        json_object_foreach((json_t *)fe, k, v)
        {
            const json_t *pd =
                json_is_string(v) ? json_object_get(params, json_string_value(v)) : NULL;
            const char *type = json_string_value(json_object_get(pd, "type"));
            if (!type || strcmp(type, "list") != 0)
                tproblem(problems, "graph tasks[%zu]: forEach \"%.64s\" must name a list parameter",
                         i, k);
        }
    }
    return json_array_size(problems) == before ? 0 : TPL_EINVAL;
}

/* One binding of loop variables: names[i] = values[i]. */
struct binding {
    const char **names;
    const char **values;
    size_t n;
};

static const char *lookup(const char *name, size_t len, const struct binding *b,
                          const json_t *strings)
{
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->names[i]) == len && strncmp(b->names[i], name, len) == 0)
            return b->values[i];
    {
        char key[80];
        if (len >= sizeof(key))
            return NULL;
        memcpy(key, name, len);
        key[len] = '\0';
        return json_string_value(json_object_get(strings, key));
    }
}

/* s with every {name} replaced; NULL when out of memory or a name is
   unknown (*bad set then). */
static char *subst(const char *s, const struct binding *b, const json_t *strings, bool *bad,
                   json_t *problems)
{
    size_t cap = strlen(s) + 64, len = 0;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    while (*s) {
        const char *open = *s == '{' ? s : NULL, *close = open ? strchr(open, '}') : NULL;
        const char *piece = s;
        size_t plen = 1;

        if (open && close && close > open + 1) {
            const char *v = lookup(open + 1, (size_t)(close - open - 1), b, strings);
            if (!v) {
                tproblem(problems, "unknown parameter \"{%.*s}\"", (int)(close - open - 1),
                         open + 1);
                *bad = true;
                v = "";
            }
            piece = v;
            plen = strlen(v);
            s = close + 1;
        } else {
            s++;
        }
        if (len + plen + 1 > cap) {
            char *grown;
            cap = (len + plen + 1) * 2;
            grown = realloc(out, cap);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, piece, plen);
        len += plen;
    }
    out[len] = '\0';
    return out;
}

static json_t *render_value(const json_t *v, const struct binding *b, const json_t *strings,
                            bool *bad, json_t *problems)
{
    json_t *out = NULL, *x;
    const json_t *item;
    const char *k;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING: {
        char *s = subst(json_string_value(v), b, strings, bad, problems);
        out = s ? json_string(s) : NULL;
        free(s);
        return out;
    }
    case JSON_ARRAY:
        out = json_array();
        json_array_foreach(v, i, item)
        {
            x = render_value(item, b, strings, bad, problems);
            if (!out || !x || json_array_append_new(out, x) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    case JSON_OBJECT:
        out = json_object();
        json_object_foreach((json_t *)v, k, item)
        {
            if (strcmp(k, "forEach") == 0)
                continue;
            x = render_value(item, b, strings, bad, problems);
            if (!out || !x || json_object_set_new(out, k, x) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    default:
        return json_deep_copy(v);
    }
}

/* The value of parameter name: from params, else its default. */
static const json_t *param_value(const json_t *decl, const json_t *params, const char *name)
{
    const json_t *v = json_object_get(params, name);
    return v ? v : json_object_get(json_object_get(decl, name), "default");
}

int graph_template_render(const char *name, const json_t *tpl, const json_t *params,
                          json_t *problems, json_t **out)
{
    const json_t *decl = json_object_get(tpl, "parameters"), *graph = json_object_get(tpl, "graph");
    const json_t *p, *t, *inactive = json_object_get(params, "inactive");
    json_t *strings = NULL, *lists = NULL, *res = NULL, *tasks = NULL;
    const char *k;
    size_t before = json_array_size(problems), i;
    bool bad = false;
    struct binding none = {0};
    int rc = TPL_ENOMEM;

    *out = NULL;
    if (graph_template_check(tpl, problems) != 0)
        return TPL_EINVAL;
    if (params && !json_is_object(params)) {
        tproblem(problems, "the parameters must be a JSON object");
        return TPL_EINVAL;
    }
    strings = json_object();
    lists = json_object();
    if (!strings || !lists)
        goto out;
    json_object_foreach((json_t *)params, k, p)
    {
        if (strcmp(k, "inactive") != 0 && !json_object_get(decl, k))
            tproblem(problems, "unknown parameter \"%.64s\"", k);
    }
    if (inactive && !json_is_array(inactive))
        tproblem(problems, "parameter \"inactive\" must be a list of labels");
    json_object_foreach((json_t *)decl, k, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        const json_t *v = param_value(decl, params, k), *e;
        if (!v) {
            if (json_is_true(json_object_get(p, "required")))
                tproblem(problems, "parameter \"%.64s\" is required", k);
            else if (strcmp(type, "list") == 0)
                json_object_set_new(lists, k, json_array());
            else
                json_object_set_new(strings, k, json_string(""));
            continue;
        }
        if (strcmp(type, "string") == 0) {
            if (!json_is_string(v) ||
                (json_is_true(json_object_get(p, "required")) && json_string_length(v) == 0))
                tproblem(problems, "parameter \"%.64s\" must be a non-empty string", k);
            else
                json_object_set(strings, k, (json_t *)v);
            continue;
        }
        if (!json_is_array(v)) {
            tproblem(problems, "parameter \"%.64s\" must be a list of strings", k);
            continue;
        }
        json_array_foreach(v, i, e) if (!json_is_string(e))
        {
            tproblem(problems, "parameter \"%.64s\" must be a list of strings", k);
            break;
        }
        json_object_set(lists, k, (json_t *)v);
    }
    if (json_array_size(problems) != before) {
        rc = TPL_EINVAL;
        goto out;
    }
    {
        /* the graph's own fields; its tasks are rendered one by one below */
        json_t *meta = json_copy((json_t *)graph);
        if (meta)
            json_object_del(meta, "tasks");
        res = meta ? render_value(meta, &none, strings, &bad, problems) : NULL;
        json_decref(meta);
    }
    tasks = json_array();
    if (!res || !tasks)
        goto out;
    json_array_foreach(json_object_get(graph, "tasks"), i, t)
    {
        const json_t *fe = json_object_get(t, "forEach");
        size_t nv = json_object_size(fe), total = 1, c;
        const char *names[16];
        const json_t *vals[16];
        const char *values[16];
        struct binding b = {names, values, 0};
        const json_t *lv;

        if (nv > 16) {
            tproblem(problems, "graph tasks[%zu]: at most 16 forEach variables", i);
            continue;
        }
        json_object_foreach((json_t *)fe, k, lv)
        {
            names[b.n] = k;
            vals[b.n] = json_object_get(lists, json_string_value(lv));
            total *= json_array_size(vals[b.n]);
            b.n++;
        }
        if (total > TPL_MAX_EXPANSION) {
            tproblem(problems, "graph tasks[%zu]: forEach makes too many tasks", i);
            continue;
        }
        for (c = 0; c < total; c++) {
            size_t rest = c;
            json_t *task, *label;
            for (size_t v = b.n; v-- > 0;) {
                size_t len = json_array_size(vals[v]);
                values[v] = json_string_value(json_array_get(vals[v], rest % len));
                rest /= len;
            }
            task = render_value(t, &b, strings, &bad, problems);
            if (!task || json_array_append_new(tasks, task) != 0)
                goto out;
            label = json_object_get(task, "label");
            for (size_t j = 0; json_is_string(label) && j < json_array_size(inactive); j++)
                if (json_equal(json_array_get(inactive, j), label))
                    json_object_set_new(task, "inactive", json_true());
        }
    }
    if (bad || json_array_size(problems) != before) {
        rc = TPL_EINVAL;
        goto out;
    }
    if (json_object_set(res, "tasks", tasks) != 0 ||
        json_object_set_new(res, "template", json_string(name)) != 0)
        goto out;
    *out = res;
    res = NULL;
    rc = 0;
out:
    json_decref(strings);
    json_decref(lists);
    json_decref(res);
    json_decref(tasks);
    return rc;
}
