/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/hostcheck.c -- a test module (after Redis tests/modules/)
 * that exercises every entry of the host API, for the loader unit test, the
 * fake host's own tests and the end-to-end tests. init and start fail with
 * the host's error when a host call that must work fails; the status
 * callback says which checks passed (some pass later: when the work's done,
 * the timers, the deferred call, the fetch and the event fan-out have run).
 *
 * Status (GET /api/v1/modules/hostcheck, "status"):
 *   {"checks": {"config": true, ...}, "passed": N, "total": M,
 *    "all_passed": bool, "events_seen": N, "ticks": N, "pings": N,
 *    "echoes": N, "reloads": N}
 * Routes under /api/v1/hostcheck:
 *   GET  /ping    {"pong": true}                                 read
 *   POST /echo    200 with the JSON body as it came              hostcheck:echo
 *   POST /raw     RD_ROUTE_RAW: the body bytes back, text/plain,
 *                 streamed with rd_reply_start/rd_reply_write    hostcheck:echo
 *   GET  /whoami  {"principal","method","path","has_echo_scope",
 *                  "q" (query parameter q),"user_agent","content_length"}  read
 *   GET  /file    the file created in the state directory (rd_reply_file)  read
 * Events out: hostcheck.stored {"id"} (start, in a write transaction),
 *   hostcheck.worked {"sum"} (the rd_submit done), hostcheck.timer
 *   {"at_ms"} (the one-shot timer). Events in: "hostcheck" (counted).
 * Configuration: the keys of hostcheck_keys, and any number of [item.NAME]
 * sections with "value = N" (loaded through rd_config_sections).
 * Also: table hostcheck_items; metrics pings (counter), checks_passed
 * (gauge), work_seconds (histogram); service "hostcheck.svc" version 1
 * (struct hostcheck_svc below); ready port "hostcheck": 1; a file
 * <state>/hostcheck/hostcheck.touch, fetched back through rd_fetch as a
 * file:// URL (the "fetch" check; a host that refuses file:// fails only
 * that check).
 * Callbacks run on the threads core/module.h gives them; counters and
 * check flags are atomics because status runs on HTTP threads.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/module.h"

enum hc_check {
    HC_config,
    HC_sections,
    HC_metric,
    HC_migrate,
    HC_service_provide,
    HC_subscribe,
    HC_route,
    HC_write,
    HC_tx_publish,
    HC_read,
    HC_service_get,
    HC_state_dir,
    HC_ready_port,
    HC_now,
    HC_event_base,
    HC_module_name,
    HC_stopping,
    HC_auth_check,
    HC_submit,
    HC_publish,
    HC_defer,
    HC_timer,
    HC_timer_every,
    HC_fetch,
    HC_N_CHECKS
};

/* Status keys: one name per check. */
static const char *const hc_check_names[HC_N_CHECKS] = {
    [HC_config] = "config",
    [HC_sections] = "sections",
    [HC_metric] = "metric",
    [HC_migrate] = "migrate",
    [HC_service_provide] = "service_provide",
    [HC_subscribe] = "subscribe",
    [HC_route] = "route",
    [HC_write] = "write",
    [HC_tx_publish] = "tx_publish",
    [HC_read] = "read",
    [HC_service_get] = "service_get",
    [HC_state_dir] = "state_dir",
    [HC_ready_port] = "ready_port",
    [HC_now] = "now",
    [HC_event_base] = "event_base",
    [HC_module_name] = "module_name",
    [HC_stopping] = "stopping",
    [HC_auth_check] = "auth_check",
    [HC_submit] = "submit",
    [HC_publish] = "publish",
    [HC_defer] = "defer",
    [HC_timer] = "timer",
    [HC_timer_every] = "timer_every",
    [HC_fetch] = "fetch",
};

#define HC_RAW_MAX (64 * 1024) /* POST /raw body cap */

/* The service this module provides to itself (and to anyone else). */
struct hostcheck_svc {
    int (*add)(int a, int b);
};

struct hostcheck_conf {
    const char *greeting;
    int64_t answer;
    bool enabled;
    uint64_t timer_ms;
    uint64_t tick_ms;
    uint64_t max_bytes;
    double ratio;
    const char *touch_file;
};

struct hostcheck {
    struct rd_host *h;
    struct hostcheck_conf conf;
    struct rd_metric *pings_metric, *passed_metric, *work_metric;
    struct rd_timer *timer, *ticker;
    atomic_bool checks[HC_N_CHECKS];
    atomic_uint events_seen, ticks, pings, echoes, reloads;
    size_t touch_len;   /* bytes written to touch_file */
    size_t fetched_len; /* bytes the fetch got back */
};

struct hc_work {
    struct hostcheck *hc;
    uint64_t sum;
};

static const struct rd_cfg_key hostcheck_keys[] = {
    RD_CFG_STRING("greeting", struct hostcheck_conf, greeting, "hello", "a string key"),
    RD_CFG_INT("answer", struct hostcheck_conf, answer, "42", "an integer key"),
    RD_CFG_BOOL("enabled", struct hostcheck_conf, enabled, "yes", "a boolean key"),
    RD_CFG_DURATION("timer", struct hostcheck_conf, timer_ms, "50ms",
                    "delay of the one-shot timer that publishes hostcheck.timer"),
    RD_CFG_DURATION("tick", struct hostcheck_conf, tick_ms, "100ms",
                    "period of the repeating timer"),
    RD_CFG_SIZE("max_bytes", struct hostcheck_conf, max_bytes, "1MiB", "a size key"),
    RD_CFG_DOUBLE("ratio", struct hostcheck_conf, ratio, "0.5", "a number key"),
    RD_CFG_PATH("touch_file", struct hostcheck_conf, touch_file, "hostcheck.touch",
                "file created at start; relative to the state directory"),
    RD_CFG_END,
};

static const char *const hostcheck_migrations[] = {
    "CREATE TABLE hostcheck_items (id INTEGER PRIMARY KEY, what TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL)",
    NULL,
};

static int hc_add(int a, int b)
{
    return a + b;
}
static const struct hostcheck_svc hostcheck_svc_v1 = {hc_add};

static void hc_pass(struct hostcheck *hc, enum hc_check c)
{
    atomic_store(&hc->checks[c], true);
}

static unsigned hc_passed(struct hostcheck *hc)
{
    unsigned n = 0;

    for (size_t i = 0; i < HC_N_CHECKS; i++)
        n += atomic_load(&hc->checks[i]);
    return n;
}

/* -------------------------------------------------------------- store */

static int hc_insert_tx(struct rd_tx *tx, void *arg)
{
    struct hostcheck *hc = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db, "INSERT INTO hostcheck_items (what, created_ms) VALUES (?1, ?2)", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, "start", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (sqlite3_int64)rd_now_ms(hc->h)) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        rd_log(hc->h, RD_ERROR, "insert failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    hc_pass(hc, HC_write);
    rc = rd_tx_publish(tx, "hostcheck.stored",
                       json_pack("{s:I}", "id", (json_int_t)sqlite3_last_insert_rowid(db)));
    if (rc == RD_OK)
        hc_pass(hc, HC_tx_publish);
out:
    sqlite3_finalize(st);
    return rc;
}

static int hc_count_tx(struct rd_tx *tx, void *arg)
{
    int64_t *n = arg;
    sqlite3 *db = rd_tx_db(tx);
    sqlite3_stmt *st = NULL;
    int rc = RD_EIO;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM hostcheck_items", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        rc = RD_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------ loop callbacks */

static void hc_on_event(void *arg, uint64_t id, const char *type, const json_t *data)
{
    struct hostcheck *hc = arg;

    (void)data;
    if (id > 0 && strncmp(type, "hostcheck", 9) == 0) {
        atomic_fetch_add(&hc->events_seen, 1);
        hc_pass(hc, HC_subscribe);
    }
}

static void hc_work(void *arg)
{
    struct hc_work *w = arg;

    for (uint64_t i = 1; i <= 1000; i++)
        w->sum += i;
}

static void hc_work_done(void *arg)
{
    struct hc_work *w = arg;
    struct hostcheck *hc = w->hc;

    if (w->sum == 500500) {
        hc_pass(hc, HC_submit);
        rd_metric_observe(hc->work_metric, 0.001);
        if (rd_publish(hc->h, "hostcheck.worked", json_pack("{s:I}", "sum", (json_int_t)w->sum)) ==
            RD_OK)
            hc_pass(hc, HC_publish);
    }
    rd_metric_set(hc->passed_metric, hc_passed(hc));
    free(w);
}

static void hc_deferred(void *arg)
{
    hc_pass(arg, HC_defer);
}

static void hc_on_timer(void *arg)
{
    struct hostcheck *hc = arg;

    if (rd_publish(hc->h, "hostcheck.timer",
                   json_pack("{s:I}", "at_ms", (json_int_t)rd_now_ms(hc->h))) == RD_OK)
        hc_pass(hc, HC_timer);
}

static void hc_on_tick(void *arg)
{
    struct hostcheck *hc = arg;

    atomic_fetch_add(&hc->ticks, 1);
    hc_pass(hc, HC_timer_every);
}

static size_t hc_fetch_write(char *data, size_t size, size_t n, void *arg)
{
    struct hostcheck *hc = arg;

    (void)data;
    hc->fetched_len += size * n;
    return size * n;
}

static void hc_fetch_done(void *arg, CURL *easy, CURLcode result)
{
    struct hostcheck *hc = arg;

    (void)easy;
    if (result == CURLE_OK && hc->fetched_len == hc->touch_len)
        hc_pass(hc, HC_fetch);
    else
        rd_log(hc->h, RD_WARN, "fetch of %s: %s, %zu of %zu bytes", hc->conf.touch_file,
               curl_easy_strerror(result), hc->fetched_len, hc->touch_len);
}

struct hc_item {
    int64_t value;
};

static const struct rd_cfg_key hc_item_keys[] = {
    RD_CFG_INT("value", struct hc_item, value, "0", "a number in an [item.NAME] section"),
    RD_CFG_END,
};

struct hc_sections {
    struct hostcheck *hc;
    size_t n;
    int rc;
};

/* Each [item.NAME] section is loaded with a table of its own. */
static int hc_section(const char *section, void *arg)
{
    struct hc_sections *s = arg;
    struct hc_item item;
    struct rd_error err = {0};

    s->rc = rd_config_load(s->hc->h, section, hc_item_keys, &item, &err);
    if (s->rc != RD_OK) {
        rd_log(s->hc->h, RD_ERROR, "configuration: [%s]: %s", section, err.msg);
        return 1;
    }
    s->n++;
    return 0;
}

/* ------------------------------------------------------------- routes */

static int hc_ping(struct rd_req *r, void *arg)
{
    struct hostcheck *hc = arg;

    atomic_fetch_add(&hc->pings, 1);
    rd_metric_add(hc->pings_metric, 1);
    return rd_reply_json(r, 200, json_pack("{s:b}", "pong", 1));
}

static int hc_echo(struct rd_req *r, void *arg)
{
    struct hostcheck *hc = arg;
    const json_t *body = rd_req_body(r);

    if (!body)
        return rd_reply_error(r, 400, "bad_request", "body: expected JSON");
    atomic_fetch_add(&hc->echoes, 1);
    return rd_reply_json(r, 200, json_deep_copy(body));
}

static int hc_raw(struct rd_req *r, void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    int64_t n;
    int rc;

    (void)arg;
    buf = malloc(HC_RAW_MAX);
    if (!buf)
        return RD_ENOMEM;
    while ((n = rd_req_read(r, buf + len, HC_RAW_MAX - len)) > 0) {
        len += (size_t)n;
        if (len == HC_RAW_MAX) {
            rc = rd_reply_error(r, 413, "too_large", "at most %d bytes", HC_RAW_MAX);
            goto out;
        }
    }
    if (n < 0) {
        rc = RD_EIO;
        goto out;
    }
    rc = rd_reply_start(r, 200, "text/plain", "X-Hostcheck: raw\r\n", (int64_t)len);
    if (rc == RD_OK && len > 0)
        rc = rd_reply_write(r, buf, len);
out:
    free(buf);
    return rc;
}

static json_t *hc_str(const char *s)
{
    json_t *v = s ? json_string(s) : NULL; /* NULL too for bytes that are not UTF-8 */
    return v ? v : json_null();
}

static int hc_whoami(struct rd_req *r, void *arg)
{
    json_t *o = json_object();

    (void)arg;
    if (!o || json_object_set_new(o, "principal", hc_str(rd_req_principal(r))) != 0 ||
        json_object_set_new(o, "method", hc_str(rd_req_method(r))) != 0 ||
        json_object_set_new(o, "path", hc_str(rd_req_path(r))) != 0 ||
        json_object_set_new(o, "has_echo_scope",
                            json_boolean(rd_req_has_scope(r, "hostcheck:echo"))) != 0 ||
        json_object_set_new(o, "q", hc_str(rd_req_param(r, "q"))) != 0 ||
        json_object_set_new(o, "user_agent", hc_str(rd_req_header(r, "User-Agent"))) != 0 ||
        json_object_set_new(o, "content_length",
                            json_integer((json_int_t)rd_req_content_length(r))) != 0) {
        json_decref(o);
        return RD_ENOMEM;
    }
    return rd_reply_json(r, 200, o);
}

static int hc_file(struct rd_req *r, void *arg)
{
    struct hostcheck *hc = arg;
    return rd_reply_file(r, hc->conf.touch_file, "text/plain");
}

/* ---------------------------------------------------------- life cycle */

static void hostcheck_destroy(void *mod)
{
    free(mod);
}

static int hostcheck_init(struct rd_host *h, void **out)
{
    struct hostcheck *hc = NULL;
    struct rd_error err = {0};
    struct hc_sections sections = {0};
    int rc;

    hc = calloc(1, sizeof(*hc));
    if (!hc)
        return RD_ENOMEM;
    hc->h = h;
    rc = rd_config_load(h, NULL, hostcheck_keys, &hc->conf, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "configuration: %s", err.msg);
        goto out;
    }
    hc_pass(hc, HC_config);
    sections.hc = hc;
    rc = rd_config_sections(h, "item.", hc_section, &sections);
    if (rc == RD_OK)
        rc = sections.rc;
    if (rc != RD_OK)
        goto out;
    hc_pass(hc, HC_sections);
    hc->pings_metric = rd_metric(h, RD_COUNTER, "pings", "GET /ping requests", NULL);
    hc->passed_metric = rd_metric(h, RD_GAUGE, "checks_passed", "host API checks passed", NULL);
    hc->work_metric = rd_metric(h, RD_HISTOGRAM, "work_seconds", "rd_submit work time", NULL);
    if (!hc->pings_metric || !hc->passed_metric || !hc->work_metric) {
        rc = RD_ENOMEM;
        goto out;
    }
    hc_pass(hc, HC_metric);
    rc = rd_store_migrate(h, hostcheck_migrations, &err);
    if (rc != RD_OK) {
        rd_log(h, RD_ERROR, "migration: %s", err.msg);
        goto out;
    }
    hc_pass(hc, HC_migrate);
    rc = rd_service_provide(h, "hostcheck.svc", 1, &hostcheck_svc_v1);
    if (rc != RD_OK)
        goto out;
    hc_pass(hc, HC_service_provide);
    *out = hc;
    hc = NULL;
out:
    if (rc != RD_OK)
        rd_log(h, RD_ERROR, "init failed (error %d)", rc);
    hostcheck_destroy(hc);
    return rc;
}

/* Writes the touch file; RD_EIO if it cannot. */
static int hc_touch(struct hostcheck *hc)
{
    static const char text[] = "hostcheck was here\n";
    const char *dir = rd_state_dir(hc->h);
    FILE *f;

    if (!dir || strncmp(hc->conf.touch_file, dir, strlen(dir)) != 0)
        rd_log(hc->h, RD_WARN, "touch_file %s is outside the state directory %s",
               hc->conf.touch_file, dir ? dir : "(none)");
    f = fopen(hc->conf.touch_file, "w");
    if (!f)
        return RD_EIO;
    if (fputs(text, f) < 0) {
        fclose(f);
        return RD_EIO;
    }
    if (fclose(f) != 0)
        return RD_EIO;
    hc->touch_len = sizeof(text) - 1;
    hc_pass(hc, HC_state_dir);
    return RD_OK;
}

/* rd_fetch of the touch file as file://. Not fatal: the host may refuse it. */
static void hc_start_fetch(struct hostcheck *hc)
{
    CURL *easy = NULL;
    char *url = NULL;
    size_t n = strlen(hc->conf.touch_file) + 8;
    int rc;

    if (hc->conf.touch_file[0] != '/')
        return;
    url = malloc(n);
    easy = curl_easy_init();
    if (!url || !easy) {
        curl_easy_cleanup(easy);
        goto out;
    }
    snprintf(url, n, "file://%s", hc->conf.touch_file);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, hc_fetch_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, hc);
    rc = rd_fetch(hc->h, easy, hc_fetch_done, hc); /* takes easy */
    if (rc != RD_OK)
        rd_log(hc->h, RD_WARN, "rd_fetch refused a file:// URL (error %d)", rc);
out:
    free(url);
}

static int hostcheck_start(void *mod)
{
    struct hostcheck *hc = mod;
    struct rd_host *h = hc->h;
    const struct hostcheck_svc *svc;
    struct hc_work *w = NULL;
    int64_t n_items = 0;
    int rc;

    if (rd_now_ms(h) > 0)
        hc_pass(hc, HC_now);
    if (rd_event_base(h))
        hc_pass(hc, HC_event_base);
    if (strcmp(rd_module_name(h), "hostcheck") == 0)
        hc_pass(hc, HC_module_name);
    if (!rd_stopping(h))
        hc_pass(hc, HC_stopping);
    if (rd_auth_check(h, "rd_hostcheck_not_a_token", "hostcheck:echo") == RD_EAUTH)
        hc_pass(hc, HC_auth_check);

    /* Subscribe before the first write, so our own event comes back. */
    rc = rd_subscribe(h, "hostcheck", hc_on_event, hc);
    if (rc != RD_OK)
        goto out;
    rc = rd_route(h, "GET", "/ping", NULL, hc_ping, hc);
    if (rc == RD_OK)
        rc = rd_route(h, "POST", "/echo", "hostcheck:echo", hc_echo, hc);
    if (rc == RD_OK)
        rc = rd_route_flags(h, "POST", "/raw", "hostcheck:echo", RD_ROUTE_RAW, hc_raw, hc);
    if (rc == RD_OK)
        rc = rd_route(h, "GET", "/whoami", NULL, hc_whoami, hc);
    if (rc == RD_OK)
        rc = rd_route(h, "GET", "/file", NULL, hc_file, hc);
    if (rc != RD_OK)
        goto out;
    hc_pass(hc, HC_route);
    rc = rd_store_write(h, hc_insert_tx, hc);
    if (rc != RD_OK)
        goto out;
    rc = rd_store_read(h, hc_count_tx, &n_items);
    if (rc != RD_OK)
        goto out;
    if (n_items >= 1)
        hc_pass(hc, HC_read);
    svc = rd_service_get(h, "hostcheck.svc", 1);
    if (!svc) {
        rc = RD_EUNAVAIL;
        goto out;
    }
    if (svc->add(2, 3) == 5 && !rd_service_get(h, "hostcheck.svc", 2))
        hc_pass(hc, HC_service_get);
    rc = hc_touch(hc);
    if (rc != RD_OK)
        goto out;
    rc = rd_ready_port(h, "hostcheck", 1);
    if (rc != RD_OK)
        goto out;
    hc_pass(hc, HC_ready_port);

    w = calloc(1, sizeof(*w));
    if (!w) {
        rc = RD_ENOMEM;
        goto out;
    }
    w->hc = hc;
    rc = rd_submit(h, hc_work, hc_work_done, w);
    if (rc != RD_OK)
        goto out;
    w = NULL; /* the work item's until done runs */
    rc = rd_defer(h, hc_deferred, hc);
    if (rc != RD_OK)
        goto out;
    hc->timer = rd_timer_after(h, hc->conf.timer_ms, hc_on_timer, hc);
    hc->ticker = rd_timer_every(h, hc->conf.tick_ms, hc_on_tick, hc);
    if (!hc->timer || !hc->ticker) {
        rc = RD_ENOMEM;
        goto out;
    }
    hc_start_fetch(hc);
    rd_metric_set(hc->passed_metric, hc_passed(hc));
    rd_log(h, RD_INFO, "started: %u of %d checks passed so far, greeting=\"%s\"", hc_passed(hc),
           HC_N_CHECKS, hc->conf.greeting);
out:
    free(w);
    if (rc != RD_OK)
        rd_log(h, RD_ERROR, "start failed (error %d)", rc);
    return rc;
}

static void hostcheck_stop(void *mod)
{
    struct hostcheck *hc = mod;

    rd_timer_cancel(hc->timer);
    rd_timer_cancel(hc->ticker);
    hc->timer = hc->ticker = NULL;
}

static int hostcheck_reload(void *mod)
{
    struct hostcheck *hc = mod;
    struct hostcheck_conf conf;
    struct rd_error err = {0};
    int rc;

    rc = rd_config_load(hc->h, NULL, hostcheck_keys, &conf, &err);
    if (rc != RD_OK) {
        rd_log(hc->h, RD_ERROR, "reload: %s", err.msg);
        return rc;
    }
    /* Timers keep their periods until the next start; the rest applies now. */
    hc->conf.greeting = conf.greeting;
    hc->conf.answer = conf.answer;
    hc->conf.enabled = conf.enabled;
    hc->conf.max_bytes = conf.max_bytes;
    hc->conf.ratio = conf.ratio;
    atomic_fetch_add(&hc->reloads, 1);
    rd_log(hc->h, RD_INFO, "reloaded: greeting=\"%s\"", conf.greeting);
    return RD_OK;
}

static json_t *hostcheck_status(void *mod)
{
    struct hostcheck *hc = mod;
    json_t *checks = json_object(), *o = NULL;
    unsigned passed = hc_passed(hc);

    for (size_t i = 0; checks && i < HC_N_CHECKS; i++) {
        if (json_object_set_new(checks, hc_check_names[i],
                                json_boolean(atomic_load(&hc->checks[i]))) != 0) {
            json_decref(checks);
            checks = NULL;
        }
    }
    if (checks)
        o = json_pack("{s:o, s:i, s:i, s:b, s:i, s:i, s:i, s:i, s:i}", "checks", checks, "passed",
                      (int)passed, "total", HC_N_CHECKS, "all_passed", passed == HC_N_CHECKS,
                      "events_seen", (int)atomic_load(&hc->events_seen), "ticks",
                      (int)atomic_load(&hc->ticks), "pings", (int)atomic_load(&hc->pings), "echoes",
                      (int)atomic_load(&hc->echoes), "reloads", (int)atomic_load(&hc->reloads));
    rd_metric_set(hc->passed_metric, passed);
    return o;
}

static const struct rd_module hostcheck_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "hostcheck",
    .version = "1.0.0",
    .build = RD_BUILD,
    .needs = NULL,
    .openapi = "{\"paths\": {"
               "\"/ping\": {\"get\": {\"summary\": \"Liveness of the module\", \"x-scope\": null,"
               " \"responses\": {\"200\": {\"description\": \"{\\\"pong\\\": true}\"}}}},"
               "\"/echo\": {\"post\": {\"summary\": \"The JSON body back\","
               " \"x-scope\": \"hostcheck:echo\","
               " \"responses\": {\"200\": {\"description\": \"the body\"}}}},"
               "\"/raw\": {\"post\": {\"summary\": \"The raw body back\","
               " \"x-scope\": \"hostcheck:echo\","
               " \"responses\": {\"200\": {\"description\": \"the bytes\"}}}},"
               "\"/whoami\": {\"get\": {\"summary\": \"What the host says about the request\","
               " \"x-scope\": null, \"responses\": {\"200\": {\"description\": \"facts\"}}}},"
               "\"/file\": {\"get\": {\"summary\": \"The file created at start\","
               " \"x-scope\": null, \"responses\": {\"200\": {\"description\": \"the file\"}}}}"
               "}}",
    .keys = hostcheck_keys,
    .init = hostcheck_init,
    .start = hostcheck_start,
    .stop = hostcheck_stop,
    .destroy = hostcheck_destroy,
    .status = hostcheck_status,
    .reload = hostcheck_reload,
};

RD_MODULE_EXPORT(hostcheck_module)
