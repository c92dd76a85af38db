/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/spec.c -- see spec.h. Three linear passes: (1) each task's
 * own fields, expanding chunks and filling a label -> index map; (2)
 * dependencies resolved through the map (a dependency on a chunked task's
 * label means every chunk); (3) Kahn's algorithm over the new tasks: what
 * is left afterwards holds a cycle, found by walking dependencies inside the
 * leftover subgraph until a label repeats. Pure logic.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/graph/spec.h"

#define SPEC_ENOMEM (-1)
#define SPEC_EINVAL (-2)

static void problem(json_t *problems, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(json_t *problems, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (json_array_size(problems) > GRAPH_PROBLEMS_MAX)
        return;
    if (json_array_size(problems) == GRAPH_PROBLEMS_MAX) {
        json_array_append_new(problems, json_string("... and more problems (list cut short)"));
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

const char *graph_requires_name(enum graph_requires r)
{
    return r == GRAPH_REQ_ALL_RESOLVED ? "all-resolved" : "all-completed";
}

static bool key_in(const char *key, const char *const *keys)
{
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0)
            return true;
    return false;
}

static void unknown_keys(const json_t *obj, const char *const *keys, const char *where,
                         json_t *problems)
{
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        (void)v;
        if (!key_in(key, keys))
            problem(problems, "%s: unknown field \"%.64s\"", where, key);
    }
}

/* An optional string member: NULL when absent; a problem when not a string
   or longer than max_len. */
static const char *opt_string(const json_t *obj, const char *key, size_t max_len, const char *where,
                              json_t *problems)
{
    const json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        problem(problems, "%s: \"%s\" must be a string", where, key);
        return NULL;
    }
    if (json_string_length(v) > max_len) {
        problem(problems, "%s: \"%s\" is longer than %zu bytes", where, key, max_len);
        return NULL;
    }
    return json_string_value(v);
}

static bool opt_bool(const json_t *obj, const char *key, const char *where, json_t *problems)
{
    const json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return false;
    if (!json_is_boolean(v)) {
        problem(problems, "%s: \"%s\" must be true or false", where, key);
        return false;
    }
    return json_is_true(v);
}

static int64_t opt_int(const json_t *obj, const char *key, int64_t def, int64_t lo, int64_t hi,
                       const char *where, json_t *problems)
{
    const json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        problem(problems, "%s: \"%s\" must be an integer from %lld to %lld", where, key,
                (long long)lo, (long long)hi);
        return def;
    }
    return (int64_t)json_integer_value(v);
}

static bool label_ok(const char *s, size_t len)
{
    if (len == 0 || len > GRAPH_LABEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool worker_type_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

bool graph_payload_check(const json_t *payload, const struct graph_limits *lim, const char *where,
                         json_t *problems)
{
    static const char *const keys[] = {"command", "env", "artifacts", "maxRunTime", "cache", NULL};
    size_t before = json_array_size(problems), i;
    const json_t *cmd, *env, *arts, *v;
    const char *k;

    if (!json_is_object(payload)) {
        problem(problems, "%s: \"payload\" must be an object", where);
        return false;
    }
    unknown_keys(payload, keys, where, problems);
    cmd = json_object_get(payload, "command");
    if (json_is_string(cmd)) {
        if (json_string_length(cmd) == 0)
            problem(problems, "%s: payload \"command\" is empty", where);
    } else if (json_is_array(cmd)) {
        if (json_array_size(cmd) == 0)
            problem(problems, "%s: payload \"command\" is empty", where);
        json_array_foreach(cmd, i, v) if (!json_is_string(v))
        {
            problem(problems, "%s: payload \"command\" must hold only strings", where);
            break;
        }
    } else {
        problem(problems, "%s: payload \"command\" must be a string or an array of strings", where);
    }
    env = json_object_get(payload, "env");
    if (env && !json_is_object(env)) {
        problem(problems, "%s: payload \"env\" must be an object of strings", where);
    } else if (env) {
        json_object_foreach((json_t *)env, k, v)
        {
            if (!json_is_string(v) || !*k) {
                problem(problems, "%s: payload env \"%.64s\" must be a string", where, k);
                break;
            }
        }
    }
    arts = json_object_get(payload, "artifacts");
    if (arts && !json_is_array(arts)) {
        problem(problems, "%s: payload \"artifacts\" must be an array", where);
    } else if (arts) {
        json_array_foreach(arts, i, v)
        {
            const char *name = json_string_value(json_object_get(v, "name"));
            const char *path = json_string_value(json_object_get(v, "path"));
            if (!json_is_object(v) || !name || !*name || !path || !*path || strchr(name, '/') ||
                strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
                problem(problems,
                        "%s: payload artifacts[%zu] needs \"name\" (a file name, no '/') and "
                        "\"path\"",
                        where, i);
                break;
            }
        }
    }
    v = json_object_get(payload, "maxRunTime");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
              json_integer_value(v) > lim->max_run_time_s))
        problem(problems, "%s: payload \"maxRunTime\" must be an integer from 1 to %lld seconds",
                where, (long long)lim->max_run_time_s);
    v = json_object_get(payload, "cache");
    if (v && !json_is_string(v))
        problem(problems, "%s: payload \"cache\" must be a string", where);
    return json_array_size(problems) == before;
}

static void task_fini(struct graph_task_spec *t)
{
    free(t->label);
    free(t->platform);
    json_decref(t->payload);
    free(t->deps);
    free(t->ext_deps);
}

void graph_spec_fini(struct graph_spec *s)
{
    for (size_t i = 0; i < s->n_tasks; i++)
        task_fini(&s->tasks[i]);
    free(s->tasks);
    json_decref(s->problems);
    memset(s, 0, sizeof(*s));
}

static char *platform_of(const char *platform, const char *worker_type)
{
    const char *dash;

    if (platform)
        return strdup(platform);
    if (!worker_type)
        return strdup("");
    dash = strchr(worker_type, '-');
    return dash ? strndup(worker_type, (size_t)(dash - worker_type)) : strdup(worker_type);
}

/* The payload of chunk `chunk` of `total` (1-based): a copy with the two
   variables in env. */
static json_t *chunk_payload(const json_t *payload, int64_t chunk, int64_t total)
{
    json_t *p, *env;
    char buf[24];

    /* unchunked: the body's own payload, shared (the body outlives the spec) */
    if (total <= 1)
        return json_incref((json_t *)payload);
    p = json_deep_copy(payload);
    if (!p)
        return NULL;
    env = json_object_get(p, "env");
    if (!env) {
        env = json_object();
        if (json_object_set_new(p, "env", env) != 0)
            goto fail;
    }
    snprintf(buf, sizeof(buf), "%lld", (long long)chunk);
    if (json_object_set_new(env, "THIS_CHUNK", json_string(buf)) != 0)
        goto fail;
    snprintf(buf, sizeof(buf), "%lld", (long long)total);
    if (json_object_set_new(env, "TOTAL_CHUNKS", json_string(buf)) != 0)
        goto fail;
    return p;
fail:
    json_decref(p);
    return NULL;
}

/* Per input task: where its expansion starts in spec->tasks and how many. */
struct span {
    size_t first, n;
};

/* Pass 1 for one input task: its fields, then its expansion into spec. */
static int parse_task(const json_t *in, size_t i, const struct graph_limits *lim,
                      const struct labelmap *existing, struct graph_spec *s,
                      struct labelmap *byname, struct span *sp)
{
    static const char *const keys[] = {
        "label",   "workerType", "platform", "payload",    "dependencies", "requires", "priority",
        "retries", "deadline",   "inactive", "breakpoint", "final",        "chunks",   NULL};
    json_t *pr = s->problems;
    char where[200];
    const char *label = json_string_value(json_object_get(in, "label"));
    const char *wt, *req, *platform;
    struct graph_task_spec proto = {0};
    int64_t chunks;
    size_t before = json_array_size(pr);

    sp->first = s->n_tasks;
    sp->n = 0;
    if (label && label_ok(label, strlen(label)))
        snprintf(where, sizeof(where), "tasks[%zu] (\"%.64s\")", i, label);
    else
        snprintf(where, sizeof(where), "tasks[%zu]", i);
    if (!json_is_object(in)) {
        problem(pr, "%s: must be an object", where);
        return 0;
    }
    unknown_keys(in, keys, where, pr);
    if (!label)
        problem(pr, "%s: \"label\" (a string) is required", where);
    else if (!label_ok(label, strlen(label)))
        problem(pr, "%s: \"label\" must be 1 to %d bytes without control characters", where,
                GRAPH_LABEL_MAX);
    wt = opt_string(in, "workerType", 64, where, pr);
    if (!wt && !json_object_get(in, "workerType")) {
        problem(pr, "%s: \"workerType\" is required", where);
    } else if (wt && !worker_type_ok(wt)) {
        problem(pr, "%s: \"workerType\" must be 1 to 64 of [A-Za-z0-9._-]", where);
    } else if (wt && lim->worker_types) {
        const char *const *w = lim->worker_types;
        while (*w && strcmp(*w, wt) != 0)
            w++;
        if (!*w)
            problem(pr, "%s: unknown worker type \"%s\" (allowed: see worker_types in graph.conf)",
                    where, wt);
    }
    platform = opt_string(in, "platform", 64, where, pr);
    if (!json_object_get(in, "payload"))
        problem(pr, "%s: \"payload\" is required", where);
    else
        graph_payload_check(json_object_get(in, "payload"), lim, where, pr);
    req = opt_string(in, "requires", 32, where, pr);
    if (!req || strcmp(req, "all-completed") == 0)
    proto.requires = GRAPH_REQ_ALL_COMPLETED;
    else if (strcmp(req, "all-resolved") == 0) proto.requires = GRAPH_REQ_ALL_RESOLVED;
    else problem(pr, "%s: \"requires\" must be \"all-completed\" or \"all-resolved\"", where);
    proto.priority = opt_int(in, "priority", 0, -1000000, 1000000, where, pr);
    proto.retries = opt_int(in, "retries", lim->default_retries, 0, lim->max_retries, where, pr);
    proto.deadline_s = opt_int(in, "deadline", 0, 0, INT64_C(365) * 86400, where, pr);
    proto.is_inactive = opt_bool(in, "inactive", where, pr);
    proto.is_breakpoint = opt_bool(in, "breakpoint", where, pr);
    proto.is_final = opt_bool(in, "final", where, pr);
    chunks = opt_int(in, "chunks", 1, 1, lim->max_chunks, where, pr);
    if (json_object_get(in, "dependencies") && !json_is_array(json_object_get(in, "dependencies")))
        problem(pr, "%s: \"dependencies\" must be an array of labels", where);
    if (proto.is_final && json_array_size(json_object_get(in, "dependencies")) > 0)
        problem(pr, "%s: a final task runs after every other task and takes no \"dependencies\"",
                where);
    if (json_array_size(pr) != before)
        return 0;
    if (s->n_tasks + (size_t)chunks > lim->max_tasks) {
        /* reported once by the caller, which counts every task */
        return 0;
    }
    if (labelmap_get(byname, label) != SIZE_MAX ||
        (existing && labelmap_get(existing, label) != SIZE_MAX)) {
        problem(pr, "%s: duplicate label \"%.64s\"", where, label);
        return 0;
    }
    if (labelmap_put(byname, label, i) < 0)
        return SPEC_ENOMEM;
    for (int64_t c = 1; c <= chunks; c++) {
        struct graph_task_spec *t = &s->tasks[s->n_tasks];
        char buf[GRAPH_LABEL_MAX + 48];

        *t = proto;
        if (chunks > 1) {
            snprintf(buf, sizeof(buf), "%s-%lld/%lld", label, (long long)c, (long long)chunks);
            t->label = strdup(buf);
        } else {
            t->label = strdup(label);
        }
        t->worker_type = wt;
        t->platform = platform_of(platform, wt);
        t->payload = chunk_payload(json_object_get(in, "payload"), c, chunks);
        s->n_tasks++;
        if (!t->label || !t->platform || !t->payload)
            return SPEC_ENOMEM;
        sp->n++;
    }
    return 0;
}

/* Pass 2 for one input task: dependencies by label. byname maps an input
   label to its input index; chunk labels "x-2/3" map through `expanded`. */
static int resolve_deps(const json_t *in, size_t i, const struct labelmap *byname,
                        const struct labelmap *expanded, const struct labelmap *existing,
                        const struct span *spans, struct graph_spec *s)
{
    const json_t *deps = json_object_get(in, "dependencies"), *d;
    const struct span *sp = &spans[i];
    size_t n = 0, n_ext = 0, j, total = 0;
    size_t *idx = NULL;
    const char **ext = NULL;
    const char *label = json_string_value(json_object_get(in, "label"));

    if (sp->n == 0 || json_array_size(deps) == 0)
        return 0;
    json_array_foreach(deps, j, d)
    {
        size_t at = json_is_string(d) ? labelmap_get(byname, json_string_value(d)) : SIZE_MAX;
        total += at != SIZE_MAX ? spans[at].n : 1;
    }
    idx = calloc(total, sizeof(*idx));
    ext = calloc(json_array_size(deps), sizeof(*ext));
    if (!idx || !ext)
        goto nomem;
    json_array_foreach(deps, j, d)
    {
        const char *dl = json_string_value(d);
        size_t at, e;

        if (!dl) {
            problem(s->problems, "tasks[%zu] (\"%.64s\"): dependencies[%zu] must be a label", i,
                    label, j);
            continue;
        }
        at = labelmap_get(byname, dl);
        if (at != SIZE_MAX) {
            if (at == i) {
                problem(s->problems, "tasks[%zu] (\"%.64s\"): depends on itself", i, label);
                continue;
            }
            if (s->tasks[spans[at].first].is_final) {
                problem(s->problems,
                        "tasks[%zu] (\"%.64s\"): depends on final task \"%.64s\" (final tasks "
                        "run last)",
                        i, label, dl);
                continue;
            }
            for (size_t c = 0; c < spans[at].n; c++)
                idx[n++] = spans[at].first + c;
            continue;
        }
        e = labelmap_get(expanded, dl);
        if (e != SIZE_MAX) {
            idx[n++] = e;
            continue;
        }
        e = existing ? labelmap_get(existing, dl) : SIZE_MAX;
        if (e != SIZE_MAX) {
            if (e & GRAPH_EXISTING_FINAL)
                problem(s->problems,
                        "tasks[%zu] (\"%.64s\"): depends on final task \"%.64s\" (final tasks "
                        "run last)",
                        i, label, dl);
            else
                ext[n_ext++] = dl;
            continue;
        }
        problem(s->problems, "tasks[%zu] (\"%.64s\"): unknown dependency \"%.64s\"", i, label, dl);
    }
    /* every chunk of a chunked task has the same dependencies */
    for (size_t c = 0; c < sp->n; c++) {
        struct graph_task_spec *t = &s->tasks[sp->first + c];
        t->n_deps = n;
        t->n_ext_deps = n_ext;
        t->deps = c == 0 ? idx : (n ? malloc(n * sizeof(*idx)) : NULL);
        t->ext_deps = c == 0 ? ext : (n_ext ? malloc(n_ext * sizeof(*ext)) : NULL);
        if ((n && !t->deps) || (n_ext && !t->ext_deps)) {
            t->n_deps = t->n_ext_deps = 0;
            return SPEC_ENOMEM;
        }
        if (c > 0) {
            if (n)
                memcpy(t->deps, idx, n * sizeof(*idx));
            if (n_ext)
                memcpy(t->ext_deps, ext, n_ext * sizeof(*ext));
        }
    }
    return 0;
nomem:
    free(idx);
    free(ext);
    return SPEC_ENOMEM;
}

/* Pass 3: Kahn's algorithm. indeg[i] counts i's dependencies not yet
   ordered; the dependents of each task are found through a CSR index built
   here (offsets into one array), so the whole pass is O(tasks + edges). */
static int check_cycles(struct graph_spec *s)
{
    size_t n = s->n_tasks, n_edges = 0, head = 0, tail = 0, done = 0;
    size_t *indeg = NULL, *off = NULL, *adj = NULL, *queue = NULL, *fill = NULL;
    int rc = SPEC_ENOMEM;

    for (size_t i = 0; i < n; i++)
        n_edges += s->tasks[i].n_deps;
    indeg = calloc(n + 1, sizeof(*indeg));
    off = calloc(n + 2, sizeof(*off));
    fill = calloc(n + 1, sizeof(*fill));
    adj = calloc(n_edges + 1, sizeof(*adj));
    queue = calloc(n + 1, sizeof(*queue));
    if (!indeg || !off || !fill || !adj || !queue)
        goto out;
    for (size_t i = 0; i < n; i++) {
        indeg[i] = s->tasks[i].n_deps;
        for (size_t k = 0; k < s->tasks[i].n_deps; k++)
            off[s->tasks[i].deps[k] + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        off[i + 1] += off[i];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s->tasks[i].n_deps; k++) {
            size_t d = s->tasks[i].deps[k];
            adj[off[d] + fill[d]++] = i;
        }
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            queue[tail++] = i;
    while (head < tail) {
        size_t d = queue[head++];
        done++;
        for (size_t k = off[d]; k < off[d + 1]; k++)
            if (--indeg[adj[k]] == 0)
                queue[tail++] = adj[k];
    }
    if (done < n) {
        /* Every task left has a dependency that is left too: walking those
           must repeat a task, and the repeated stretch is a cycle. fill[]
           now holds the step at which the walk visited a task (+1). */
        size_t start = 0, at, step = 0, len = 0;
        char msg[480];

        memset(fill, 0, (n + 1) * sizeof(*fill));
        while (indeg[start] == 0)
            start++;
        at = start;
        while (!fill[at]) {
            fill[at] = ++step;
            queue[step - 1] = at;
            for (size_t k = 0; k < s->tasks[at].n_deps; k++) {
                size_t d = s->tasks[at].deps[k];
                if (indeg[d] > 0) {
                    at = d;
                    break;
                }
            }
        }
        /* queue[first] depends on queue[step-1], which depends on
           queue[step-2], ... which depends on queue[first]: print it in run
           order, dependency -> dependent */
        size_t first = fill[at] - 1;
        len = (size_t)snprintf(msg, sizeof(msg), "dependency cycle: \"%.40s\"",
                               s->tasks[queue[first]].label);
        for (size_t k = step - 1; k > first && len < sizeof(msg); k--)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, " -> \"%.40s\"",
                                    s->tasks[queue[k]].label);
        if (len < sizeof(msg))
            snprintf(msg + len, sizeof(msg) - len, " -> \"%.40s\"", s->tasks[queue[first]].label);
        json_array_append_new(s->problems, json_string(msg));
        rc = SPEC_EINVAL;
        goto out;
    }
    rc = 0;
out:
    free(indeg);
    free(off);
    free(fill);
    free(adj);
    free(queue);
    return rc;
}

static int parse_meta(const json_t *body, struct graph_spec *s)
{
    static const char *const keys[] = {"name",   "repository", "revision", "branch", "owner",
                                       "labels", "template",   "coalesce", "tasks",  NULL};
    json_t *pr = s->problems;
    const json_t *labels = json_object_get(body, "labels"), *v;
    const char *k;

    unknown_keys(body, keys, "graph", pr);
    s->name = opt_string(body, "name", 200, "graph", pr);
    s->repository = opt_string(body, "repository", 500, "graph", pr);
    s->revision = opt_string(body, "revision", 100, "graph", pr);
    s->branch = opt_string(body, "branch", 200, "graph", pr);
    s->owner = opt_string(body, "owner", 200, "graph", pr);
    s->template_name = opt_string(body, "template", 100, "graph", pr);
    s->coalesce = opt_bool(body, "coalesce", "graph", pr);
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels)) {
            problem(pr, "graph: \"labels\" must be an object of strings");
        } else {
            json_object_foreach((json_t *)labels, k, v) if (!json_is_string(v))
            {
                problem(pr, "graph: label \"%.64s\" must be a string", k);
                break;
            }
            s->labels = labels;
        }
    }
    if (s->coalesce && (!s->branch || !s->template_name))
        problem(pr, "graph: \"coalesce\" needs \"branch\" and \"template\"");
    return 0;
}

int graph_spec_parse(const json_t *body, const struct graph_limits *lim,
                     const struct labelmap *existing, bool tasks_only, struct graph_spec *s)
{
    const json_t *tasks, *t;
    struct labelmap byname = {0}, expanded = {0};
    struct span *spans = NULL;
    size_t i, n_in, n_total = 0;
    int rc = SPEC_ENOMEM;

    memset(s, 0, sizeof(*s));
    s->problems = json_array();
    if (!s->problems)
        return SPEC_ENOMEM;
    if (!json_is_object(body)) {
        problem(s->problems, "the body must be a JSON object");
        return SPEC_EINVAL;
    }
    tasks = json_object_get(body, "tasks");
    if (tasks_only) {
        static const char *const keys[] = {"tasks", NULL};
        unknown_keys(body, keys, "body", s->problems);
    } else {
        parse_meta(body, s);
    }
    if (!json_is_array(tasks) || json_array_size(tasks) == 0) {
        problem(s->problems, "\"tasks\" must be a non-empty array");
        return SPEC_EINVAL;
    }
    n_in = json_array_size(tasks);
    /* the expanded size first, so that the array is allocated once */
    json_array_foreach(tasks, i, t)
    {
        const json_t *c = json_object_get(t, "chunks");
        int64_t nc = json_is_integer(c) ? (int64_t)json_integer_value(c) : 1;
        if (nc < 1 || nc > lim->max_chunks)
            nc = 1;
        n_total += (size_t)nc;
    }
    if (n_total > lim->max_tasks) {
        problem(s->problems, "the graph has %zu tasks (chunks expanded), the limit is %zu", n_total,
                lim->max_tasks);
        return SPEC_EINVAL;
    }
    s->tasks = calloc(n_total ? n_total : 1, sizeof(*s->tasks));
    spans = calloc(n_in, sizeof(*spans));
    if (!s->tasks || !spans || labelmap_init(&byname, n_in) != 0 ||
        labelmap_init(&expanded, n_total) != 0)
        goto out;
    json_array_foreach(tasks, i, t)
    {
        if (parse_task(t, i, lim, existing, s, &byname, &spans[i]) != 0)
            goto out;
    }
    /* chunk labels ("x-2/3") may be named on their own as well, unless the
       same text is some other task's label */
    for (i = 0; i < n_in; i++) {
        if (spans[i].n <= 1)
            continue;
        for (size_t c = 0; c < spans[i].n; c++) {
            const char *l = s->tasks[spans[i].first + c].label;
            if (labelmap_get(&byname, l) != SIZE_MAX ||
                (existing && labelmap_get(existing, l) != SIZE_MAX)) {
                problem(s->problems, "tasks[%zu]: chunk label \"%.64s\" is also another task's", i,
                        l);
                continue;
            }
            if (labelmap_put(&expanded, l, spans[i].first + c) < 0)
                goto out;
        }
    }
    if (json_array_size(s->problems) > 0) {
        rc = SPEC_EINVAL;
        goto out;
    }
    json_array_foreach(tasks, i, t)
    {
        if (resolve_deps(t, i, &byname, &expanded, existing, spans, s) != 0)
            goto out;
    }
    if (json_array_size(s->problems) > 0) {
        rc = SPEC_EINVAL;
        goto out;
    }
    rc = check_cycles(s);
out:
    labelmap_fini(&byname);
    labelmap_fini(&expanded);
    free(spans);
    return rc;
}
