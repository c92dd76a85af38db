/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/api.c -- the routes under /api/v1/graph: graphs (submit,
 * list, show, add tasks, activate, rerun failed, cancel), tasks (show,
 * rerun, cancel, activate, release) and templates (list, show, store,
 * delete, render). Handlers run on HTTP worker threads; each change is one
 * write transaction through engine.c. Bad input gets a JSON 400 naming
 * every problem and changes nothing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/graph/api.h"
#include "modules/graph/engine.h"
#include "modules/graph/read.h"
#include "modules/graph/template.h"

#define SCOPE_SUBMIT "graph:submit"
#define SCOPE_OPERATE "graph:operate"
#define SCOPE_TEMPLATES "graph:templates"

/* Replies 400 invalid_graph with the problems list. */
static int reply_problems(struct rd_req *r, const char *code, const char *what, json_t *problems)
{
    char msg[600];
    size_t len;

    len = (size_t)snprintf(msg, sizeof(msg), "%s: ", what);
    for (size_t i = 0; i < json_array_size(problems) && len < sizeof(msg); i++)
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s", i ? "; " : "",
                                json_string_value(json_array_get(problems, i)));
    return rd_reply_json(r, 400,
                         json_pack("{s:{s:s, s:s, s:O}}", "error", "code", code, "message", msg,
                                   "problems", problems));
}

/* Maps an engine error to a reply. */
static int reply_engine_error(struct rd_req *r, int rc, const struct rd_error *err,
                              const char *notfound_code)
{
    const char *msg = err->msg[0] ? err->msg : "failed";

    switch (rc) {
    case RD_ENOTFOUND:
        return rd_reply_error(r, 404, notfound_code, "%s", msg);
    case RD_ECONFLICT:
        return rd_reply_error(r, 409, "conflict", "%s", msg);
    case RD_EINVAL:
        return rd_reply_error(r, 400, "bad_request", "%s", msg);
    default:
        return rc;
    }
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > RD_TASK_ID_MAX)
        return false;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '-' || *id == '_' || *id == '.'))
            return false;
    return true;
}

/* ---------------------------------------------------------------- graphs */

struct submit_tx {
    struct graph *g;
    const struct graph_spec *s;
    const char *principal;
    char id[GRAPH_ID_LEN + 1];
    struct rd_error err;
};

static int submit_tx(struct rd_tx *tx, void *arg)
{
    struct submit_tx *st = arg;
    return graph_engine_submit(st->g, tx, st->s, st->principal, st->id, &st->err);
}

int graph_submit_body(struct graph *g, struct rd_req *r, const json_t *body)
{
    struct graph_spec s;
    struct submit_tx st = {.g = g};
    int rc;

    rc = graph_spec_parse(body, &g->lim, NULL, false, &s);
    if (rc == RD_EINVAL) {
        rd_log(g->h, RD_DEBUG, "graph rejected: %zu problems", json_array_size(s.problems));
        rc = reply_problems(r, "invalid_graph", "the graph is not valid", s.problems);
        goto out;
    }
    if (rc != RD_OK)
        goto out;
    st.s = &s;
    st.principal = rd_req_principal(r);
    rc = rd_store_write(g->h, submit_tx, &st);
    if (rc != RD_OK) {
        rc = reply_engine_error(r, rc, &st.err, "unknown_graph");
        goto out;
    }
    rd_log(g->h, RD_INFO, "graph %s submitted by %s: %zu tasks", st.id, st.principal, s.n_tasks);
    rc = rd_reply_json(r, 201,
                       json_pack("{s:s, s:I, s:s}", "id", st.id, "tasks", (json_int_t)s.n_tasks,
                                 "state", "running"));
out:
    graph_spec_fini(&s);
    return rc;
}

/* POST /graphs */
static int graphs_submit(struct rd_req *r, void *arg)
{
    return graph_submit_body(arg, r, rd_req_body(r));
}

struct read_tx {
    struct graph *g;
    const char *id;
    const struct graph_list_query *q;
    json_t *out;
    int which;
};

static int read_tx(struct rd_tx *tx, void *arg)
{
    struct read_tx *rt = arg;

    switch (rt->which) {
    case 0:
        return graph_read_list(rt->g, tx, rt->q, &rt->out);
    case 1:
        return graph_read_graph(rt->g, tx, rt->id, &rt->out);
    default:
        return graph_read_task(rt->g, tx, rt->id, &rt->out);
    }
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s)
        return RD_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi)
        return RD_EINVAL;
    *out = v;
    return RD_OK;
}

/* GET /graphs?branch=&repository=&state=&limit=&before=&include=jobs */
static int graphs_list(struct rd_req *r, void *arg)
{
    struct graph *g = arg;
    struct graph_list_query q = {.limit = 50};
    struct read_tx rt = {.g = g, .q = &q, .which = 0};
    const char *limit = rd_req_param(r, "limit"), *before = rd_req_param(r, "before");
    const char *include = rd_req_param(r, "include");
    int rc;

    q.branch = rd_req_param(r, "branch");
    q.repository = rd_req_param(r, "repository");
    q.state = rd_req_param(r, "state");
    if (q.branch && !*q.branch)
        q.branch = NULL;
    if (q.repository && !*q.repository)
        q.repository = NULL;
    if (q.state && !*q.state)
        q.state = NULL;
    if (q.state && strcmp(q.state, "running") != 0 && strcmp(q.state, "completed") != 0 &&
        strcmp(q.state, "failed") != 0 && strcmp(q.state, "canceled") != 0)
        return rd_reply_error(r, 400, "bad_request",
                              "state must be running, completed, failed or canceled");
    if (limit && parse_int(limit, 1, 500, &q.limit) != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "limit must be an integer from 1 to 500");
    if (before && parse_int(before, 1, INT64_MAX, &q.before) != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "before must be a positive integer");
    if (include && strcmp(include, "jobs") != 0)
        return rd_reply_error(r, 400, "bad_request", "include must be \"jobs\"");
    q.with_tasks = include != NULL;
    rc = rd_store_read(g->h, read_tx, &rt);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, rt.out);
}

/* GET /graphs/{id} */
static int graphs_get(struct rd_req *r, void *arg)
{
    struct read_tx rt = {.g = arg, .id = rd_req_param(r, "id"), .which = 1};
    int rc;

    if (!id_ok(rt.id))
        return rd_reply_error(r, 404, "unknown_graph", "no such graph");
    rc = rd_store_read(rt.g->h, read_tx, &rt);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_graph", "no graph %s", rt.id);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, rt.out);
}

enum op_kind {
    OP_ADD,
    OP_ACTIVATE_MATCHING,
    OP_RERUN_FAILED,
    OP_CANCEL_GRAPH,
    OP_TASK_RERUN,
    OP_TASK_CANCEL,
    OP_TASK_ACTIVATE,
    OP_TASK_RELEASE,
};

static const char *const op_names[] = {
    [OP_ADD] = "tasks added",           [OP_ACTIVATE_MATCHING] = "activated by pattern",
    [OP_RERUN_FAILED] = "failed rerun", [OP_CANCEL_GRAPH] = "canceled",
    [OP_TASK_RERUN] = "rerun",          [OP_TASK_CANCEL] = "canceled",
    [OP_TASK_ACTIVATE] = "activated",   [OP_TASK_RELEASE] = "released",
};

struct op_tx {
    struct graph *g;
    enum op_kind kind;
    const char *id;
    const char *pattern;
    const json_t *body;
    const json_t *payload;
    bool completed;
    const char *by;
    json_t *ids;      /* out */
    json_t *problems; /* out (OP_ADD) */
    struct rd_error err;
};

static int op_tx(struct rd_tx *tx, void *arg)
{
    struct op_tx *o = arg;
    struct graph *g = o->g;

    switch (o->kind) {
    case OP_ADD:
        return graph_engine_add(g, tx, o->id, o->body, &o->problems, &o->ids, &o->err);
    case OP_ACTIVATE_MATCHING:
        return graph_engine_activate_matching(g, tx, o->id, o->pattern, o->ids, &o->err);
    case OP_RERUN_FAILED:
        return graph_engine_rerun_failed(g, tx, o->id, o->ids, &o->err);
    case OP_CANCEL_GRAPH:
        return graph_engine_cancel_graph(g, tx, o->id, &o->err);
    case OP_TASK_RERUN:
        return graph_engine_rerun(g, tx, o->id, o->payload, &o->err);
    case OP_TASK_CANCEL:
        return graph_engine_cancel_task(g, tx, o->id, &o->err);
    case OP_TASK_ACTIVATE:
        return graph_engine_activate(g, tx, o->id, &o->err);
    case OP_TASK_RELEASE:
        return graph_engine_release(g, tx, o->id, o->completed, o->by, &o->err);
    }
    return RD_EINVAL;
}

/* Runs o; replies with the graph or task as it is afterwards. Takes o->ids. */
static int run_op(struct rd_req *r, struct op_tx *o, bool on_task)
{
    struct read_tx rt = {.g = o->g, .id = o->id, .which = on_task ? 2 : 1};
    const char *nf = on_task ? "unknown_task" : "unknown_graph";
    json_t *body;
    int rc;

    if (!id_ok(o->id)) {
        rc = rd_reply_error(r, 404, nf, "no such %s", on_task ? "task" : "graph");
        goto out;
    }
    rc = rd_store_write(o->g->h, op_tx, o);
    if (rc == RD_EINVAL && o->problems) {
        rc = reply_problems(r, "invalid_tasks", "the tasks are not valid", o->problems);
        goto out;
    }
    if (rc != RD_OK) {
        rc = reply_engine_error(r, rc, &o->err, nf);
        goto out;
    }
    rd_log(o->g->h, RD_INFO, "%s %s: %s by %s", on_task ? "task" : "graph", o->id,
           op_names[o->kind], rd_req_principal(r));
    rc = rd_store_read(o->g->h, read_tx, &rt);
    if (rc != RD_OK)
        goto out;
    body = on_task ? rt.out : json_pack("{s:o}", "graph", rt.out);
    if (!on_task && o->ids)
        json_object_set(body, "tasks", o->ids);
    rc = rd_reply_json(r, 200, body);
out:
    json_decref(o->ids);
    json_decref(o->problems);
    return rc;
}

/* POST /graphs/{id}/tasks {"tasks": [...]} */
static int graphs_add(struct rd_req *r, void *arg)
{
    struct op_tx o = {
        .g = arg, .kind = OP_ADD, .id = rd_req_param(r, "id"), .body = rd_req_body(r)};
    return run_op(r, &o, false);
}

/* POST /graphs/{id}/activate {"pattern": "test-*"} */
static int graphs_activate(struct rd_req *r, void *arg)
{
    const json_t *body = rd_req_body(r);
    struct op_tx o = {.g = arg, .kind = OP_ACTIVATE_MATCHING, .id = rd_req_param(r, "id")};
    const json_t *p = json_object_get(body, "pattern");

    if (!json_is_object(body) || !json_is_string(p) || json_string_length(p) == 0 ||
        json_object_size(body) != 1)
        return rd_reply_error(r, 400, "bad_request",
                              "the body must be {\"pattern\": \"<label glob, e.g. test-*>\"}");
    o.pattern = json_string_value(p);
    o.ids = json_array();
    if (!o.ids)
        return RD_ENOMEM;
    return run_op(r, &o, false);
}

/* POST /graphs/{id}/rerun-failed */
static int graphs_rerun_failed(struct rd_req *r, void *arg)
{
    struct op_tx o = {.g = arg, .kind = OP_RERUN_FAILED, .id = rd_req_param(r, "id")};

    o.ids = json_array();
    if (!o.ids)
        return RD_ENOMEM;
    return run_op(r, &o, false);
}

/* POST /graphs/{id}/cancel */
static int graphs_cancel(struct rd_req *r, void *arg)
{
    struct op_tx o = {.g = arg, .kind = OP_CANCEL_GRAPH, .id = rd_req_param(r, "id")};
    return run_op(r, &o, false);
}

/* ----------------------------------------------------------------- tasks */

/* GET /tasks/{id} */
static int tasks_get(struct rd_req *r, void *arg)
{
    struct read_tx rt = {.g = arg, .id = rd_req_param(r, "id"), .which = 2};
    int rc;

    if (!id_ok(rt.id))
        return rd_reply_error(r, 404, "unknown_task", "no such task");
    rc = rd_store_read(rt.g->h, read_tx, &rt);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_task", "no task %s", rt.id);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, rt.out);
}

/* POST /tasks/{id}/rerun [{"payload": {...}}] */
static int tasks_rerun(struct rd_req *r, void *arg)
{
    struct graph *g = arg;
    const json_t *body = rd_req_body(r), *payload = json_object_get(body, "payload");
    struct op_tx o = {.g = g, .kind = OP_TASK_RERUN, .id = rd_req_param(r, "id")};
    json_t *problems = NULL;
    int rc;

    if (body && (!json_is_object(body) || json_object_size(body) > (payload ? 1u : 0u)))
        return rd_reply_error(r, 400, "bad_request",
                              "the body must be empty or {\"payload\": {...}}");
    if (payload) {
        problems = json_array();
        if (!problems)
            return RD_ENOMEM;
        if (!graph_payload_check(payload, &g->lim, "rerun", problems)) {
            rc = reply_problems(r, "invalid_payload", "the payload is not valid", problems);
            json_decref(problems);
            return rc;
        }
        json_decref(problems);
        o.payload = payload;
    }
    return run_op(r, &o, true);
}

/* POST /tasks/{id}/cancel */
static int tasks_cancel(struct rd_req *r, void *arg)
{
    struct op_tx o = {.g = arg, .kind = OP_TASK_CANCEL, .id = rd_req_param(r, "id")};
    return run_op(r, &o, true);
}

/* POST /tasks/{id}/activate */
static int tasks_activate(struct rd_req *r, void *arg)
{
    struct op_tx o = {.g = arg, .kind = OP_TASK_ACTIVATE, .id = rd_req_param(r, "id")};
    return run_op(r, &o, true);
}

/* POST /tasks/{id}/release [{"state": "completed" | "failed"}] */
static int tasks_release(struct rd_req *r, void *arg)
{
    const json_t *body = rd_req_body(r), *st = json_object_get(body, "state");
    struct op_tx o = {.g = arg, .kind = OP_TASK_RELEASE, .id = rd_req_param(r, "id")};

    if (body && (!json_is_object(body) || json_object_size(body) > (st ? 1u : 0u) ||
                 (st && (!json_is_string(st) || (strcmp(json_string_value(st), "completed") != 0 &&
                                                 strcmp(json_string_value(st), "failed") != 0)))))
        return rd_reply_error(r, 400, "bad_request",
                              "the body must be empty or {\"state\": \"completed\" | \"failed\"}");
    o.completed = !st || strcmp(json_string_value(st), "completed") == 0;
    o.by = rd_req_principal(r);
    return run_op(r, &o, true);
}

/* ------------------------------------------------------------- templates */

/* A template read or write: one by name, or (name NULL) all stored ones. */
struct tpl_tx {
    const char *name;
    json_t *tpl;
    json_t *list; /* for listing: array of names stored */
    const char *body;
    const char *by;
    int64_t now;
    bool del;
};

static int tpl_get_tx(struct rd_tx *tx, void *arg)
{
    struct tpl_tx *t = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_OK, step;

    if (sqlite3_prepare_v2(db,
                           t->name ? "SELECT name, body FROM graph_templates WHERE name = ?1"
                                   : "SELECT name, body FROM graph_templates ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return RD_EIO;
    if (t->name)
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *body = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (t->name) {
            t->tpl = body;
            break;
        }
        if (body)
            json_object_set_new(t->list, (const char *)sqlite3_column_text(st, 0), body);
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = RD_EIO;
    sqlite3_finalize(st);
    return rc;
}

static json_t *tpl_from_file(struct graph *g, const char *name)
{
    char path[4200];

    if (!g->templates_dir || !graph_template_name_ok(name))
        return NULL;
    snprintf(path, sizeof(path), "%s/%s.json", g->templates_dir, name);
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

/* The template named name: from the store, else the templates directory;
 *source says which ("api", "file"). NULL when there is none. New reference. */
static json_t *tpl_find(struct graph *g, const char *name, const char **source)
{
    struct tpl_tx t = {.name = name};

    if (rd_store_read(g->h, tpl_get_tx, &t) == RD_OK && t.tpl) {
        *source = "api";
        return t.tpl;
    }
    *source = "file";
    return tpl_from_file(g, name);
}

static json_t *tpl_summary(const char *name, const json_t *tpl, const char *source)
{
    return json_pack("{s:s, s:s, s:O?, s:O?}", "name", name, "source", source, "description",
                     json_object_get(tpl, "description"), "parameters",
                     json_object_get(tpl, "parameters"));
}

/* GET /templates */
static int templates_list(struct rd_req *r, void *arg)
{
    struct graph *g = arg;
    struct tpl_tx t = {0};
    json_t *out = json_array(), *v;
    const char *k;
    DIR *dir = NULL;
    struct dirent *e;
    int rc;

    t.list = json_object();
    if (!out || !t.list) {
        rc = RD_ENOMEM;
        goto out;
    }
    rc = rd_store_read(g->h, tpl_get_tx, &t);
    if (rc != RD_OK)
        goto out;
    json_object_foreach(t.list, k, v) json_array_append_new(out, tpl_summary(k, v, "api"));
    dir = g->templates_dir ? opendir(g->templates_dir) : NULL;
    while (dir && (e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        char name[80];
        json_t *tpl;
        if (n <= 5 || n - 5 >= sizeof(name) || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = '\0';
        if (!graph_template_name_ok(name) || json_object_get(t.list, name))
            continue;
        tpl = tpl_from_file(g, name);
        if (tpl)
            json_array_append_new(out, tpl_summary(name, tpl, "file"));
        json_decref(tpl);
    }
    rc = rd_reply_json(r, 200, json_pack("{s:O}", "templates", out));
out:
    if (dir)
        closedir(dir);
    json_decref(t.list);
    json_decref(out);
    return rc;
}

/* GET /templates/{name} */
static int templates_get(struct rd_req *r, void *arg)
{
    const char *name = rd_req_param(r, "name"), *source = NULL;
    json_t *tpl = graph_template_name_ok(name) ? tpl_find(arg, name, &source) : NULL;
    json_t *body;

    if (!tpl)
        return rd_reply_error(r, 404, "unknown_template", "no such template");
    body = tpl_summary(name, tpl, source);
    json_object_set(body, "template", tpl);
    json_decref(tpl);
    return rd_reply_json(r, 200, body);
}

static int tpl_put_tx(struct rd_tx *tx, void *arg)
{
    struct tpl_tx *t = arg;
    sqlite3_stmt *st = NULL;
    int rc = RD_OK;

    if (sqlite3_prepare_v2(rd_tx_db(tx),
                           t->del ? "DELETE FROM graph_templates WHERE name = ?1"
                                  : "INSERT INTO graph_templates (name, body, updated_ms, "
                                    "updated_by) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO "
                                    "UPDATE SET body = ?2, updated_ms = ?3, updated_by = ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return RD_EIO;
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    if (!t->del) {
        sqlite3_bind_text(st, 2, t->body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, t->now);
        sqlite3_bind_text(st, 4, t->by, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = RD_EIO;
    else if (t->del && sqlite3_changes(rd_tx_db(tx)) == 0)
        rc = RD_ENOTFOUND;
    sqlite3_finalize(st);
    if (rc == RD_OK)
        rc = rd_tx_publish(tx, t->del ? "graph.template_deleted" : "graph.template_stored",
                           json_pack("{s:s, s:s}", "name", t->name, "by", t->by));
    return rc;
}

/* PUT /templates/{name} <template> */
static int templates_put(struct rd_req *r, void *arg)
{
    struct graph *g = arg;
    const json_t *body = rd_req_body(r);
    struct tpl_tx t = {.name = rd_req_param(r, "name")};
    json_t *problems = json_array();
    char *text = NULL;
    int rc;

    if (!problems)
        return RD_ENOMEM;
    if (!graph_template_name_ok(t.name)) {
        rc = rd_reply_error(r, 400, "bad_request", "a template name is 1 to 64 of [A-Za-z0-9_-]");
        goto out;
    }
    if (graph_template_check(body, problems) != 0) {
        rc = reply_problems(r, "invalid_template", "the template is not valid", problems);
        goto out;
    }
    text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        rc = RD_ENOMEM;
        goto out;
    }
    t.body = text;
    t.by = rd_req_principal(r);
    t.now = (int64_t)rd_now_ms(g->h);
    rc = rd_store_write(g->h, tpl_put_tx, &t);
    if (rc == RD_OK)
        rc = rd_reply_json(r, 200, tpl_summary(t.name, body, "api"));
out:
    free(text);
    json_decref(problems);
    return rc;
}

/* DELETE /templates/{name}: only stored ones (files stay). */
static int templates_delete(struct rd_req *r, void *arg)
{
    struct graph *g = arg;
    struct tpl_tx t = {.name = rd_req_param(r, "name"), .del = true};
    int rc;

    if (!graph_template_name_ok(t.name))
        return rd_reply_error(r, 404, "unknown_template", "no such template");
    t.by = rd_req_principal(r);
    rc = rd_store_write(g->h, tpl_put_tx, &t);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_template",
                              "no stored template %s (files in the templates directory stay)",
                              t.name);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, json_pack("{s:s, s:b}", "name", t.name, "deleted", 1));
}

/* POST /templates/{name}/render {params} -> {"graph": {...}} (nothing stored)
   POST /templates/{name}/submit {params} -> 201 as POST /graphs */
static int templates_render_or_submit(struct rd_req *r, struct graph *g, bool submit)
{
    const char *name = rd_req_param(r, "name"), *source;
    json_t *tpl = graph_template_name_ok(name) ? tpl_find(g, name, &source) : NULL;
    json_t *problems = json_array(), *out = NULL;
    int rc;

    if (!problems) {
        json_decref(tpl);
        return RD_ENOMEM;
    }
    if (!tpl) {
        rc = rd_reply_error(r, 404, "unknown_template", "no such template");
        goto out;
    }
    rc = graph_template_render(name, tpl, rd_req_body(r), problems, &out);
    if (rc == -2) {
        rc = reply_problems(r, "invalid_parameters", "the template cannot be rendered", problems);
        goto out;
    }
    if (rc != 0) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (submit) {
        rc = graph_submit_body(g, r, out);
        goto out;
    }
    /* validated as a submission would be, so the chooser shows problems early */
    {
        struct graph_spec s;
        int v = graph_spec_parse(out, &g->lim, NULL, false, &s);
        rc = rd_reply_json(r, 200,
                           json_pack("{s:O, s:o}", "graph", out, "problems",
                                     v == RD_EINVAL ? json_incref(s.problems) : json_array()));
        graph_spec_fini(&s);
    }
out:
    json_decref(out);
    json_decref(tpl);
    json_decref(problems);
    return rc;
}

static int templates_render(struct rd_req *r, void *arg)
{
    return templates_render_or_submit(r, arg, false);
}

static int templates_submit(struct rd_req *r, void *arg)
{
    return templates_render_or_submit(r, arg, true);
}

/* ---------------------------------------------------------------- table */

struct route {
    const char *method, *path, *scope;
    rd_route_fn fn;
};

static const struct route routes[] = {
    {"POST", "/graphs", SCOPE_SUBMIT, graphs_submit},
    {"GET", "/graphs", NULL, graphs_list},
    {"GET", "/graphs/{id}", NULL, graphs_get},
    {"POST", "/graphs/{id}/tasks", SCOPE_SUBMIT, graphs_add},
    {"POST", "/graphs/{id}/activate", SCOPE_OPERATE, graphs_activate},
    {"POST", "/graphs/{id}/rerun-failed", SCOPE_OPERATE, graphs_rerun_failed},
    {"POST", "/graphs/{id}/cancel", SCOPE_OPERATE, graphs_cancel},
    {"GET", "/tasks/{id}", NULL, tasks_get},
    {"POST", "/tasks/{id}/rerun", SCOPE_OPERATE, tasks_rerun},
    {"POST", "/tasks/{id}/cancel", SCOPE_OPERATE, tasks_cancel},
    {"POST", "/tasks/{id}/activate", SCOPE_OPERATE, tasks_activate},
    {"POST", "/tasks/{id}/release", SCOPE_OPERATE, tasks_release},
    {"GET", "/templates", NULL, templates_list},
    {"GET", "/templates/{name}", NULL, templates_get},
    {"PUT", "/templates/{name}", SCOPE_TEMPLATES, templates_put},
    {"DELETE", "/templates/{name}", SCOPE_TEMPLATES, templates_delete},
    {"POST", "/templates/{name}/render", NULL, templates_render},
    {"POST", "/templates/{name}/submit", SCOPE_SUBMIT, templates_submit},
};

int graph_api_register(struct graph *g)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = rd_route(g->h, routes[i].method, routes[i].path, routes[i].scope, routes[i].fn, g);
        if (rc != RD_OK) {
            rd_log(g->h, RD_ERROR, "cannot register %s %s (error %d)", routes[i].method,
                   routes[i].path, rc);
            return rc;
        }
    }
    return RD_OK;
}
