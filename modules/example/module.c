/* SPDX-License-Identifier: MIT */
/*
 * modules/example/module.c -- the template module: its descriptor, config
 * key table, table migration, life cycle (init/start/stop/destroy), status,
 * and the three route handlers of /api/v1/example/notes. Copy this module to
 * start a new one (see README.md). Handlers run on HTTP worker threads; the
 * life cycle and status run where the host calls them (init/start/stop/
 * destroy on the main thread). The module keeps no mutable state after
 * start except the metric, which the host makes thread-safe.
 */
#include "config.h"

#include <stdlib.h>

#include "core/module.h"
#include "modules/example/notes.h"

#define EXAMPLE_EVENT_NOTED "example.noted"

/* Everything the module owns: one struct, handed back to every callback. */
struct example {
    struct rd_host *h;
    struct example_conf conf;
    struct rd_metric *notes_created;
};

const struct rd_cfg_key example_keys[] = {
    RD_CFG_SIZE("max_note_len", struct example_conf, max_note_len, "4KiB",
                "longest note text accepted by POST /notes, in bytes"),
    RD_CFG_STRING("greeting", struct example_conf, greeting, "hello",
                  "logged when the module starts"),
    RD_CFG_END,
};

/* Step i brings example_* from schema version i to i+1. Never edit a step
   that has shipped: append a new one. */
static const char *const example_migrations[] = {
    "CREATE TABLE example_notes ("
    " id INTEGER PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " author TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL)",
    NULL,
};

#define NOTE_COLUMNS "id, text, author, created_ms"

/* -------------------------------------------------------------- store */

/* A row of SELECT NOTE_COLUMNS as JSON (new reference, NULL when out of
   memory). The strings are copied by jansson before the row goes away. */
static json_t *note_row_json(sqlite3_stmt *st)
{
    struct example_note n = {
        .id = sqlite3_column_int64(st, 0),
        .text = (const char *)sqlite3_column_text(st, 1),
        .author = (const char *)sqlite3_column_text(st, 2),
        .created_ms = sqlite3_column_int64(st, 3),
    };

    if (!n.text || !n.author)
        return NULL;
    return example_note_json(&n);
}

struct note_insert {
    struct example *ex;
    const struct example_note_input *in;
    const char *author;
    int64_t created_ms;
    json_t *note; /* out: the stored note, a new reference */
};

/* Write transaction: insert the note and publish it with the same commit. */
static int note_insert_tx(struct rd_tx *tx, void *arg)
{
    struct note_insert *ni = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    struct example_note n;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO example_notes (text, author, created_ms)"
                           " VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, ni->in->text, (int)ni->in->text_len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, ni->author, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, ni->created_ms) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
        rd_log(ni->ex->h, RD_ERROR, "inserting a note failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    n.id = sqlite3_last_insert_rowid(db);
    n.text = ni->in->text;
    n.author = ni->author;
    n.created_ms = ni->created_ms;
    ni->note = example_note_json(&n);
    if (!ni->note) {
        rc = RD_ENOMEM;
        goto out;
    }
    /* rd_tx_publish steals its reference; ours stays for the reply. */
    rc = rd_tx_publish(tx, EXAMPLE_EVENT_NOTED, json_incref(ni->note));
out:
    sqlite3_finalize(st);
    return rc;
}

struct note_list {
    struct example *ex;
    struct example_list_query q;
    json_t *notes; /* out: array, a new reference */
};

static int note_list_tx(struct rd_tx *tx, void *arg)
{
    struct note_list *nl = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    json_t *note;
    int rc = RD_EIO, step;

    nl->notes = json_array();
    if (!nl->notes) {
        rc = RD_ENOMEM;
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT " NOTE_COLUMNS " FROM example_notes"
                           " WHERE id > ?1 ORDER BY id LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, nl->q.after) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, nl->q.limit) != SQLITE_OK)
        goto sql_error;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        note = note_row_json(st);
        if (json_array_append_new(nl->notes, note) != 0) {
            rc = RD_ENOMEM;
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        goto sql_error;
    rc = RD_OK;
    goto out;
sql_error:
    rd_log(nl->ex->h, RD_ERROR, "listing notes failed: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    return rc;
}

struct note_get {
    struct example *ex;
    int64_t id;
    json_t *note; /* out: a new reference */
};

static int note_get_tx(struct rd_tx *tx, void *arg)
{
    struct note_get *ng = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO, step;

    if (sqlite3_prepare_v2(db, "SELECT " NOTE_COLUMNS " FROM example_notes WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, ng->id) != SQLITE_OK)
        goto sql_error;
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = RD_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW)
        goto sql_error;
    ng->note = note_row_json(st);
    rc = ng->note ? RD_OK : RD_ENOMEM;
    goto out;
sql_error:
    rd_log(ng->ex->h, RD_ERROR, "reading note %lld failed: %s", (long long)ng->id,
           sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    return rc;
}

struct note_count {
    struct example *ex;
    int64_t n;
};

static int note_count_tx(struct rd_tx *tx, void *arg)
{
    struct note_count *nc = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM example_notes", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rd_log(nc->ex->h, RD_ERROR, "counting notes failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    nc->n = sqlite3_column_int64(st, 0);
    rc = RD_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------- routes
 * Bad input gets a 400 here. Any other failure is returned to the host,
 * which maps the rd_err to the HTTP status and a JSON error. */

/* POST /notes {"text": "..."} -> 201 and the note; publishes example.noted. */
static int notes_create(struct rd_req *r, void *arg)
{
    struct example *ex = arg;
    struct rd_error err = {0};
    struct example_note_input in;
    struct note_insert ni = {.ex = ex, .in = &in};
    int rc;

    rc = example_note_parse(rd_req_body(r), ex->conf.max_note_len, &in, &err);
    if (rc != RD_OK) {
        rd_log(ex->h, RD_DEBUG, "POST /notes rejected: %s", err.msg);
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    }
    ni.author = rd_req_principal(r);
    ni.created_ms = (int64_t)rd_now_ms(ex->h);
    rc = rd_store_write(ex->h, note_insert_tx, &ni);
    if (rc != RD_OK)
        goto out;
    rd_metric_add(ex->notes_created, 1);
    rd_log(ex->h, RD_DEBUG, "note %lld created by %s",
           (long long)json_integer_value(json_object_get(ni.note, "id")), ni.author);
    rc = rd_reply_json(r, 201, ni.note);
    ni.note = NULL; /* stolen by the reply */
out:
    json_decref(ni.note);
    return rc;
}

/* GET /notes?limit=N&after=ID -> {"notes": [...]}, oldest first. */
static int notes_list(struct rd_req *r, void *arg)
{
    struct example *ex = arg;
    struct rd_error err = {0};
    struct note_list nl = {.ex = ex};
    json_t *body = NULL;
    int rc;

    rc = example_list_query_parse(rd_req_param(r, "limit"), rd_req_param(r, "after"), &nl.q, &err);
    if (rc != RD_OK)
        return rd_reply_error(r, 400, "bad_request", "%s", err.msg);
    rc = rd_store_read(ex->h, note_list_tx, &nl);
    if (rc != RD_OK)
        goto out;
    body = json_pack("{s:O}", "notes", nl.notes);
    if (!body) {
        rc = RD_ENOMEM;
        goto out;
    }
    rc = rd_reply_json(r, 200, body);
out:
    json_decref(nl.notes);
    return rc;
}

/* GET /notes/{id} -> the note, or 404 unknown_note. */
static int notes_get(struct rd_req *r, void *arg)
{
    struct example *ex = arg;
    const char *id = rd_req_param(r, "id");
    struct note_get ng = {.ex = ex};
    int rc;

    /* An id that is not a number names no note either. The bytes are not
       echoed: they need not even be UTF-8. */
    if (example_id_parse(id, &ng.id) != RD_OK)
        return rd_reply_error(r, 404, "unknown_note", "no such note (ids are positive integers)");
    rc = rd_store_read(ex->h, note_get_tx, &ng);
    if (rc == RD_ENOTFOUND)
        return rd_reply_error(r, 404, "unknown_note", "no note %lld", (long long)ng.id);
    if (rc != RD_OK)
        return rc;
    return rd_reply_json(r, 200, ng.note);
}

/* ---------------------------------------------------------- life cycle */

static void example_destroy(void *mod)
{
    free(mod);
}

static int example_init(struct rd_host *h, void **out)
{
    struct example *ex = NULL;
    struct rd_error err = {0};
    int rc;

    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return RD_ENOMEM;
    ex->h = h;
    rc = rd_config_load(h, NULL, example_keys, &ex->conf, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    if (ex->conf.max_note_len < 1) {
        rc = RD_EINVAL;
        rd_log(h, RD_ERROR, "configuration: max_note_len must be at least 1 byte");
        goto out;
    }
    rc = rd_store_migrate(h, example_migrations, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "migration: %s", err.msg);
        goto out;
    }
    ex->notes_created =
        rd_metric(h, RD_COUNTER, "notes_created", "notes created through POST /notes", NULL);
    if (!ex->notes_created) {
        rc = RD_ENOMEM;
        rd_log(h, RD_ERROR, "cannot register metric notes_created");
        goto out;
    }
    *out = ex;
    ex = NULL;
out:
    example_destroy(ex);
    return rc;
}

static int example_start(void *mod)
{
    struct example *ex = mod;
    int rc;

    /* A failed start leaves the routes registered so far to the host, which
       drops them before destroy. */
    rc = rd_route(ex->h, "POST", "/notes", "example:write", notes_create, ex);
    if (rc == RD_OK)
        rc = rd_route(ex->h, "GET", "/notes", NULL, notes_list, ex);
    if (rc == RD_OK)
        rc = rd_route(ex->h, "GET", "/notes/{id}", NULL, notes_get, ex);
    if (rc != RD_OK) {
        rd_log(ex->h, RD_ERROR, "cannot register routes (error %d)", rc);
        return rc;
    }
    rd_log(ex->h, RD_INFO, "started: greeting=\"%s\" max_note_len=%llu", ex->conf.greeting,
           (unsigned long long)ex->conf.max_note_len);
    return RD_OK;
}

static void example_stop(void *mod)
{
    /* Nothing runs in the background: no timers to cancel, no work to
       refuse. A module with timers cancels them here. */
    (void)mod;
}

/* {"notes": N}. Called on an HTTP thread. */
static json_t *example_status(void *mod)
{
    struct example *ex = mod;
    struct note_count nc = {.ex = ex};
    int rc;

    rc = rd_store_read(ex->h, note_count_tx, &nc);
    if (rc != RD_OK)
        return json_pack("{s:n, s:i}", "notes", "error", rc);
    return json_pack("{s:I}", "notes", (json_int_t)nc.n);
}

static const struct rd_module example_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "example",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi =
#include "modules/example/openapi.json.h"
        ,
    .keys = example_keys,
    .init = example_init,
    .start = example_start,
    .stop = example_stop,
    .destroy = example_destroy,
    .status = example_status,
    .reload = NULL,
};

RD_MODULE_EXPORT(example_module)
