/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_core_http.c -- the core's HTTP surface through the real
 * daemon on 127.0.0.1: health and readiness, static files (and the ways a
 * path may try to leave web_root, directory listings, CGI and SSI), JSON
 * errors (404, 405 + Allow, 400 malformed, 413 oversized), /metrics,
 * /api/v1/status, the OpenAPI document against the registered routes, and
 * the command line (--version, --help, --check-config). Each test starts
 * its own daemon.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/e2e/harness.h"

/* ------------------------------------------------------------ fixtures */

/* A copy of the repository's web/ under the daemon's directory with a few
   extra files, served as web_root; a secret file next to (outside) it. */
struct webroot {
    char root[512];
    char secret_path[512];
    char secret[64];
};

static void make_webroot(struct e2e_daemon *d, struct webroot *w)
{
    char src[1024], p[1024], kv[700];

    snprintf(src, sizeof(src), "%s/web", e2e_srcdir());
    snprintf(w->root, sizeof(w->root), "%s/webroot", d->dir);
    assert_int_equal(e2e_copy_tree(src, w->root), 0);
    snprintf(w->secret, sizeof(w->secret), "E2E-SECRET-%d-%d", (int)getpid(), rand());
    snprintf(w->secret_path, sizeof(w->secret_path), "%s/secret.txt", d->dir);
    assert_int_equal(e2e_write_file(w->secret_path, w->secret, strlen(w->secret)), 0);
    /* a sibling directory whose name starts like the root's */
    snprintf(p, sizeof(p), "%s/webroot-private", d->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/webroot-private/secret.txt", d->dir);
    assert_int_equal(e2e_write_file(p, w->secret, strlen(w->secret)), 0);
    snprintf(kv, sizeof(kv), "http.web_root=%s", w->root);
    assert_int_equal(e2e_add_set(d, kv), 0);
}

static bool body_has(const struct e2e_resp *r, const char *needle)
{
    return r->body && memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

static void assert_json_error(const struct e2e_resp *r, int status)
{
    const char *ct = e2e_header(r, "Content-Type");

    if (r->status != status)
        fprintf(stderr, "want %d, got %d: %s\n", status, r->status, r->body);
    assert_int_equal(r->status, status);
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    assert_non_null(r->json);
    assert_non_null(e2e_error_code(r));
    assert_true(strlen(e2e_error_code(r)) > 0);
    assert_non_null(e2e_error_message(r));
    assert_true(strlen(e2e_error_message(r)) > 0);
}

/* ---------------------------------------------------------------- health */

static void test_health_and_ready(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;

    assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
    assert_non_null(r.json);
    assert_string_equal(e2e_json_str(&r, "status"), "ok");
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "application/json"));
    e2e_resp_free(&r);

    /* HEAD: the headers of GET, no body */
    assert_int_equal(e2e_request(d, "HEAD", "/healthz", NULL, NULL, NULL, 0, &r), 200);
    assert_int_equal(r.body_len, 0);
    e2e_resp_free(&r);

    /* started: every module started and the store writable */
    assert_int_equal(e2e_get(d, "/readyz", NULL, &r), 200);
    assert_non_null(r.json);
    e2e_resp_free(&r);

    /* the ready file says what was bound */
    assert_non_null(d->ready);
    assert_int_equal(json_integer_value(json_object_get(d->ready, "api")), d->port);
    assert_int_equal(json_integer_value(json_object_get(d->ready, "pid")), d->pid);
    assert_true(json_is_false(json_object_get(d->ready, "tls")));
    e2e_pass(d);
}

/* ----------------------------------------------------------- static files */

static void test_static_index(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char path[1024];
    size_t len;
    char *want;

    snprintf(path, sizeof(path), "%s/web/index.html", e2e_srcdir());
    want = e2e_read_file(path, &len);
    assert_non_null(want);

    assert_int_equal(e2e_get(d, "/", NULL, &r), 200);
    assert_non_null(e2e_header(&r, "Content-Type"));
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "text/html"));
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, want, len);
    e2e_resp_free(&r);

    assert_int_equal(e2e_get(d, "/index.html", NULL, &r), 200);
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "text/html"));
    assert_int_equal(r.body_len, len);
    e2e_resp_free(&r);

    /* a file that is not there */
    assert_int_equal(e2e_get(d, "/no-such-file.html", NULL, &r), 404);
    e2e_resp_free(&r);
    free(want);
    e2e_pass(d);
}

/* Every way of escaping web_root must fail: never the secret, never
   /etc/passwd, never a 200 for them; and the daemon keeps serving. */
static void test_path_traversal(void **state)
{
    struct e2e_daemon *d = *state;
    struct webroot w;
    static const char *const paths[] = {
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/..\\secret.txt",
        "/web/../../secret.txt",
        "/index.html/../../secret.txt",
        "/%252e%252e/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/..;/secret.txt",
        "/./.././secret.txt",
        "//../secret.txt",
        "/../webroot-private/secret.txt",
        "/%2e%2e/webroot-private/secret.txt",
        "/../etc/passwd",
        "/../../../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/..%5c..%5c..%5c..%5c..%5c..%5cetc%5cpasswd",
        "/%5c..%5c..%5c..%5c..%5c..%5c..%5cetc/passwd",
        "/web/../../../../../../etc/passwd",
        "/web/..%2f..%2f..%2f..%2f..%2fetc/passwd",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/static/../../../../../../etc/passwd",
    };
    int rc;

    assert_non_null(d);
    make_webroot(d, &w);
    rc = e2e_launch(d);
    assert_int_equal(rc, E2E_READY);

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct e2e_resp r;
        char req[1024], *reply = NULL;
        long n;

        /* through libcurl, path as is */
        e2e_get(d, paths[i], NULL, &r);
        if (body_has(&r, w.secret) || body_has(&r, "root:x:0:0") || body_has(&r, "root:*:0:0") ||
            r.status == 200 || r.status == 206)
            fprintf(stderr, "GET %s -> %d: %.200s\n", paths[i], r.status, r.body);
        assert_true(r.status > 0);
        assert_false(body_has(&r, w.secret));
        assert_false(body_has(&r, "root:x:0:0"));
        assert_false(body_has(&r, "root:*:0:0"));
        assert_int_not_equal(r.status, 200);
        assert_int_not_equal(r.status, 206);
        e2e_resp_free(&r);

        /* and as raw bytes, in case a client library cleaned anything up */
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", paths[i]);
        n = e2e_raw(d, req, strlen(req), 5000, 1 << 20, &reply);
        assert_true(n >= 0);
        if (strstr(reply, w.secret) || strstr(reply, "root:x:0:0") ||
            strncmp(reply, "HTTP/1.1 200", 12) == 0)
            fprintf(stderr, "raw GET %s -> %.300s\n", paths[i], reply);
        assert_null(strstr(reply, w.secret));
        assert_null(strstr(reply, "root:x:0:0"));
        assert_int_not_equal(strncmp(reply, "HTTP/1.1 200", 12), 0);
        assert_int_not_equal(strncmp(reply, "HTTP/1.0 200", 12), 0);
        free(reply);
    }

    /* still serving, and files inside web_root still work */
    {
        struct e2e_resp r;
        assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
        e2e_resp_free(&r);
        assert_int_equal(e2e_get(d, "/index.html", NULL, &r), 200);
        e2e_resp_free(&r);
    }
    e2e_pass(d);
}

/* A directory without index.html is not listed; its files are served. */
static void test_no_directory_listing(void **state)
{
    struct e2e_daemon *d = *state;
    struct webroot w;
    struct e2e_resp r;
    char p[1024];
    static const char *const dirs[] = {"/sub/", "/sub", "/sub/inner/", "/sub/./", "/sub/%2e/"};

    assert_non_null(d);
    make_webroot(d, &w);
    snprintf(p, sizeof(p), "%s/sub", w.root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/inner", w.root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/listed-file-one.txt", w.root);
    assert_int_equal(e2e_write_file(p, "one\n", 4), 0);
    snprintf(p, sizeof(p), "%s/sub/inner/listed-file-two.txt", w.root);
    assert_int_equal(e2e_write_file(p, "two\n", 4), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        e2e_get(d, dirs[i], NULL, &r);
        if (body_has(&r, "listed-file-") || r.status == 200)
            fprintf(stderr, "GET %s -> %d: %.300s\n", dirs[i], r.status, r.body);
        assert_true(r.status > 0);
        assert_false(body_has(&r, "listed-file-one"));
        assert_false(body_has(&r, "listed-file-two"));
        assert_false(body_has(&r, "inner/"));
        assert_int_not_equal(r.status, 200);
        e2e_resp_free(&r);
    }

    assert_int_equal(e2e_get(d, "/sub/listed-file-one.txt", NULL, &r), 200);
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "one\n", 4);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* Neither CGI nor server-side includes run: a script in web_root is at most
   a file, and the side effects it would have never happen. */
static void test_no_cgi_no_ssi(void **state)
{
    struct e2e_daemon *d = *state;
    struct webroot w;
    struct e2e_resp r;
    char p[1024], marker_cgi[1024], marker_ssi[1024], script[4096];
    static const char *const cgi_names[] = {"run.cgi", "run.pl", "run.php", "run.sh"};
    static const char *const cgi_urls[] = {"/run.cgi", "/run.pl",      "/run.php",
                                           "/run.sh",  "/run.cgi?x=1", "/run.cgi/extra/path"};

    assert_non_null(d);
    make_webroot(d, &w);
    snprintf(marker_cgi, sizeof(marker_cgi), "%s/cgi-ran", d->dir);
    snprintf(marker_ssi, sizeof(marker_ssi), "%s/ssi-ran", d->dir);
    snprintf(script, sizeof(script),
             "#!/bin/sh\ntouch %s\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
             "echo CGI-OUTPUT-$((6*7))\n",
             marker_cgi);
    for (size_t i = 0; i < sizeof(cgi_names) / sizeof(cgi_names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", w.root, cgi_names[i]);
        assert_int_equal(e2e_write_file(p, script, strlen(script)), 0);
        assert_int_equal(chmod(p, 0755), 0);
    }
    snprintf(script, sizeof(script),
             "<html><body><!--#exec cmd=\"touch %s\" -->"
             "<!--#include virtual=\"/index.html\" -->"
             "<!--#echo var=\"DOCUMENT_NAME\" -->SSI-PAGE</body></html>\n",
             marker_ssi);
    snprintf(p, sizeof(p), "%s/page.shtml", w.root);
    assert_int_equal(e2e_write_file(p, script, strlen(script)), 0);
    snprintf(p, sizeof(p), "%s/page.shtm", w.root);
    assert_int_equal(e2e_write_file(p, script, strlen(script)), 0);
    assert_int_equal(e2e_launch(d), E2E_READY);

    for (size_t i = 0; i < sizeof(cgi_urls) / sizeof(cgi_urls[0]); i++) {
        e2e_get(d, cgi_urls[i], NULL, &r);
        assert_true(r.status > 0);
        assert_false(body_has(&r, "CGI-OUTPUT-42"));
        e2e_resp_free(&r);
        e2e_post(d, cgi_urls[i], NULL, "{}", &r);
        assert_true(r.status > 0);
        assert_false(body_has(&r, "CGI-OUTPUT-42"));
        e2e_resp_free(&r);
    }
    /* served at most as the file it is: every directive still there */
    for (int k = 0; k < 2; k++) {
        e2e_get(d, k ? "/page.shtm" : "/page.shtml", NULL, &r);
        assert_true(r.status > 0);
        if (r.status == 200) {
            assert_true(body_has(&r, "<!--#exec cmd="));
            assert_true(body_has(&r, "<!--#include virtual="));
            assert_true(body_has(&r, "<!--#echo var=\"DOCUMENT_NAME\" -->SSI-PAGE"));
        }
        e2e_resp_free(&r);
    }

    assert_int_not_equal(access(marker_cgi, F_OK), 0);
    assert_int_not_equal(access(marker_ssi, F_OK), 0);
    e2e_pass(d);
}

/* ---------------------------------------------------------- JSON errors */

static void test_unknown_route_404(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    static const char *const paths[] = {"/api/v1/nonexistent", "/api/v1/example/nope",
                                        "/api/v1/example/notes/1/extra", "/api/v2/status",
                                        "/api/v1/"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        e2e_get(d, paths[i], d->admin_token, &r);
        assert_json_error(&r, 404);
        e2e_resp_free(&r);
    }
    /* an unknown module */
    e2e_get(d, "/api/v1/modules/nosuchmodule", NULL, &r);
    assert_json_error(&r, 404);
    e2e_resp_free(&r);
    e2e_pass(d);
}

static void test_wrong_method_405(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    const char *allow;

    /* GET-only core route */
    e2e_request(d, "PUT", "/api/v1/status", d->admin_token, NULL, "{}", 2, &r);
    assert_json_error(&r, 405);
    allow = e2e_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_null(strstr(allow, "PUT"));
    e2e_resp_free(&r);

    /* a module route with GET only */
    e2e_delete(d, "/api/v1/example/notes/1", d->admin_token, &r);
    assert_json_error(&r, 405);
    allow = e2e_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_null(strstr(allow, "DELETE"));
    e2e_resp_free(&r);

    /* GET and POST on /notes: the Allow header lists both */
    e2e_request(d, "PATCH", "/api/v1/example/notes", d->admin_token, NULL, "{}", 2, &r);
    assert_json_error(&r, 405);
    allow = e2e_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "POST"));
    e2e_resp_free(&r);
    e2e_pass(d);
}

static void test_malformed_json_400(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    static const char *const bodies[] = {
        "{not json",  "{\"text\": \"unterminated",  "[1, 2", "{\"text\": \"a\",}",
        "\xff\xfe{}", "{\"text\": \"a\"} trailing",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        e2e_post(d, "/api/v1/example/notes", d->admin_token, bodies[i], &r);
        assert_json_error(&r, 400);
        e2e_resp_free(&r);
    }
    /* nothing was stored */
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 0);
    e2e_resp_free(&r);
    /* a well-formed request still works afterwards */
    assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"ok\"}", &r),
                     201);
    e2e_resp_free(&r);
    e2e_pass(d);
}

static const char *const small_body_set[] = {"http.max_body=1KiB", NULL};
static const struct e2e_opts small_body_opts = {.set = small_body_set};

static char *json_note_of_size(size_t total)
{
    /* {"text":"aaaa...."} of exactly total bytes */
    char *s = malloc(total + 1);
    size_t pre = strlen("{\"text\":\""), post = strlen("\"}");

    assert_non_null(s);
    assert_true(total > pre + post);
    memcpy(s, "{\"text\":\"", pre);
    memset(s + pre, 'a', total - pre - post);
    memcpy(s + total - post, "\"}", post);
    s[total] = '\0';
    return s;
}

static void test_body_too_large_413(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char *small = json_note_of_size(900), *big = json_note_of_size(4096);
    char *huge = json_note_of_size(2 * 1024 * 1024);
    char head[1024], *reply = NULL;
    long n;

    /* under the limit: accepted */
    assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, small, &r), 201);
    e2e_resp_free(&r);

    /* over it, with a Content-Length */
    e2e_post(d, "/api/v1/example/notes", d->admin_token, big, &r);
    assert_json_error(&r, 413);
    e2e_resp_free(&r);
    e2e_post(d, "/api/v1/example/notes", d->admin_token, huge, &r);
    assert_int_equal(r.status, 413);
    e2e_resp_free(&r);

    /* over it, chunked (no Content-Length to look at) */
    {
        size_t cap = strlen(big) + 4096, o = 0;
        char *req = malloc(cap);
        assert_non_null(req);
        o += (size_t)snprintf(req + o, cap - o,
                              "POST /api/v1/example/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                              d->admin_token);
        for (size_t off = 0; off < strlen(big); off += 512) {
            size_t len = strlen(big) - off < 512 ? strlen(big) - off : 512;
            o += (size_t)snprintf(req + o, cap - o, "%zx\r\n%.*s\r\n", len, (int)len, big + off);
        }
        o += (size_t)snprintf(req + o, cap - o, "0\r\n\r\n");
        n = e2e_raw(d, req, o, 10000, 1 << 20, &reply);
        assert_true(n > 0);
        snprintf(head, sizeof(head), "%.*s", 12, reply);
        if (strcmp(head, "HTTP/1.1 413") != 0)
            fprintf(stderr, "chunked oversized body -> %.300s\n", reply);
        assert_string_equal(head, "HTTP/1.1 413");
        free(reply);
        free(req);
    }

    /* a client that asks first (Expect: 100-continue) is told 413 without
       having to send the body */
    {
        char req[1024];
        snprintf(req, sizeof(req),
                 "POST /api/v1/example/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: 104857600\r\nExpect: 100-continue\r\n"
                 "Connection: close\r\n\r\n",
                 d->admin_token);
        n = e2e_raw(d, req, strlen(req), 5000, 1 << 16, &reply);
        assert_true(n > 0);
        snprintf(head, sizeof(head), "%.*s", 12, reply);
        if (strcmp(head, "HTTP/1.1 413") != 0)
            fprintf(stderr, "Expect: 100-continue, 100 MiB -> %.300s\n", reply);
        assert_string_equal(head, "HTTP/1.1 413");
        free(reply);
    }

    /* only the small note was stored, and the daemon still serves */
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 1);
    e2e_resp_free(&r);
    free(small);
    free(big);
    free(huge);
    e2e_pass(d);
}

/* Garbage on the wire gets an error or a closed connection, never a crash
   or a hang: afterwards the daemon answers as before. */
static void test_hostile_requests(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    char *reply, *big;
    static const char *const raws[] = {
        "\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        "FROB /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
        "POST /api/v1/example/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n"
        "Connection: close\r\n\r\n",
        "POST /api/v1/example/notes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\x02\xff\r\n"
        "Connection: close\r\n\r\n",
        "GET /api/v1/example/notes/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /api/v1/example/notes?limit=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /api/v1/example/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"te",
    };

    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        long n = e2e_raw(d, raws[i], strlen(raws[i]), 3000, 1 << 16, &reply);
        assert_true(n >= 0);
        /* if it answered, it did not claim success for nonsense */
        if (n > 12 && i != 3 && strncmp(reply, "HTTP/1.1 2", 10) == 0)
            fprintf(stderr, "request %zu (%.60s) -> %.40s\n", i, raws[i], reply);
        if (n > 12 && i != 3)
            assert_int_not_equal(strncmp(reply, "HTTP/1.1 2", 10), 0);
        assert_null(strstr(reply, "root:x:0:0"));
        free(reply);
    }

    /* a 64 KiB URL and a 64 KiB header */
    big = malloc(70000);
    assert_non_null(big);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 65536);
    snprintf(big + 5 + 65536, 70000 - 5 - 65536,
             " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(e2e_raw(d, big, strlen(big), 5000, 1 << 16, &reply) >= 0);
    assert_int_not_equal(strncmp(reply, "HTTP/1.1 2", 10), 0);
    free(reply);
    snprintf(big, 70000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + strlen(big), 'b', 65536);
    snprintf(big + strlen("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ") + 65536, 100,
             "\r\nConnection: close\r\n\r\n");
    assert_true(e2e_raw(d, big, strlen(big), 5000, 1 << 16, &reply) >= 0);
    free(reply);
    free(big);

    /* still serving, and nothing was created */
    assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, "/api/v1/example/notes", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "notes")), 0);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* Deeply nested JSON (a 1 KiB body of "[[[[...") is bad input like any
   other: a 400, not a stack overflow on an HTTP thread. */
static void test_deeply_nested_json(void **state)
{
    struct e2e_daemon *d = *state;
    static const size_t depths[] = {100, 1000, 5000, 30000};
    struct e2e_resp r;

    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        size_t n = depths[i];
        char *body = malloc(2 * n + 32);
        int len;

        assert_non_null(body);
        /* {"text":[[[...]]]}: well formed, closed */
        len = snprintf(body, 2 * n + 32, "{\"text\":");
        memset(body + len, '[', n);
        memset(body + len + n, ']', n);
        snprintf(body + len + 2 * n, 32, "}");
        e2e_post(d, "/api/v1/example/notes", d->admin_token, body, &r);
        if (r.status != 400)
            fprintf(stderr, "nesting %zu (closed) -> %d %s\n", n, r.status, r.error);
        assert_int_equal(r.status, 400);
        e2e_resp_free(&r);
        /* and unterminated */
        memset(body, '[', n);
        body[n] = '\0';
        e2e_post(d, "/api/v1/example/notes", d->admin_token, body, &r);
        if (r.status != 400)
            fprintf(stderr, "nesting %zu (open) -> %d %s\n", n, r.status, r.error);
        assert_int_equal(r.status, 400);
        e2e_resp_free(&r);
        free(body);
    }
    assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* A NUL byte (%00) in a path is malformed: 400 or 404, never the file
   named by the part before it ("/index.html%00.txt" is not "/index.html",
   the classic way around extension checks). */
static void test_nul_in_path(void **state)
{
    struct e2e_daemon *d = *state;
    static const char *const paths[] = {
        "/index.html%00.txt", "/index.html%00",         "/%00",
        "/%00/etc/passwd",    "/api/v1/status%00.json", "/api/v1/example/notes%00/1"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct e2e_resp r;
        e2e_get(d, paths[i], NULL, &r);
        if (r.status != 400 && r.status != 404)
            fprintf(stderr, "GET %s -> %d (%s)\n", paths[i], r.status,
                    e2e_header(&r, "Content-Type") ? e2e_header(&r, "Content-Type") : "-");
        assert_true(r.status == 400 || r.status == 404);
        e2e_resp_free(&r);
    }
    e2e_pass(d);
}

/* -------------------------------------------------------------- metrics */

/* A request is counted once it is complete, which may be just after its
   client got the reply: poll /metrics (bounded) until series reaches want. */
static double metric_at_least(struct e2e_daemon *d, const char *series, double want)
{
    uint64_t deadline = e2e_now_ms() + 5000;
    double v = e2e_metric(d, series);

    while (!(v >= want) && e2e_now_ms() < deadline) {
        e2e_sleep_ms(20);
        v = e2e_metric(d, series);
    }
    return v;
}

static void test_metrics(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    double before, after;
    const char *ct;
    static const char healthz_200[] =
        "relengd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}";
    static const char notes_404[] = "relengd_http_requests_total{method=\"GET\",status=\"404\","
                                    "route=\"/api/v1/example/notes/{id}\"}";

    for (int i = 0; i < 3; i++) {
        assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
        e2e_resp_free(&r);
    }
    e2e_get(d, "/api/v1/example/notes/424242", NULL, &r);
    assert_int_equal(r.status, 404);
    e2e_resp_free(&r);

    /* the 404 is counted under its route template, not the raw path */
    assert_true(metric_at_least(d, notes_404, 1) == 1.0);
    before = metric_at_least(d, healthz_200, 3);
    assert_true(before >= 3);

    assert_int_equal(e2e_get(d, "/metrics", NULL, &r), 200);
    ct = e2e_header(&r, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/plain"));
    if (!body_has(&r, "# TYPE relengd_http_requests_total counter"))
        fprintf(stderr, "/metrics:\n%s\n", r.body);
    assert_true(body_has(&r, "# TYPE relengd_http_requests_total counter"));
    assert_true(body_has(&r, "# TYPE relengd_http_request_duration_seconds histogram"));
    assert_true(body_has(&r, "\nrelengd_process_"));
    assert_false(body_has(&r, "424242"));
    assert_true(
        e2e_metric_in(r.body, "relengd_http_request_duration_seconds_count{route=\"/healthz\"}") >=
        3);
    assert_true(e2e_metric_in(r.body, "relengd_http_request_duration_seconds_bucket{"
                                      "route=\"/healthz\",le=\"+Inf\"}") >= 3);
    assert_false(isnan(
        e2e_metric_in(r.body, "relengd_http_request_duration_seconds_sum{route=\"/healthz\"}")));
    e2e_resp_free(&r);

    /* exactly two more */
    before = e2e_metric(d, healthz_200);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
        e2e_resp_free(&r);
    }
    after = metric_at_least(d, healthz_200, before + 2);
    assert_true(after - before == 2.0);
    e2e_pass(d);
}

/* --------------------------------------------------------------- status */

static void test_status(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    json_t *mods, *m;
    size_t i;
    bool found = false;

    assert_int_equal(e2e_get(d, "/api/v1/status", NULL, &r), 200);
    assert_non_null(r.json);
    assert_non_null(e2e_json_str(&r, "version"));
    assert_string_equal(e2e_json_str(&r, "version"), PACKAGE_VERSION);
    assert_true(json_is_number(json_object_get(r.json, "uptime_s")));
    assert_true(json_number_value(json_object_get(r.json, "uptime_s")) >= 0);
    mods = json_object_get(r.json, "modules");
    assert_true(json_is_array(mods));
    json_array_foreach(mods, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), "example") != 0)
            continue;
        found = true;
        assert_string_equal(json_string_value(json_object_get(m, "version")), "1.0.0");
        assert_string_equal(json_string_value(json_object_get(m, "state")), "started");
        assert_non_null(json_object_get(m, "status"));
    }
    assert_true(found);
    e2e_resp_free(&r);

    assert_int_equal(e2e_get(d, "/api/v1/modules/example", NULL, &r), 200);
    assert_string_equal(e2e_json_str(&r, "name"), "example");
    assert_string_equal(e2e_json_str(&r, "state"), "started");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "status"), "notes")), 0);
    e2e_resp_free(&r);
    e2e_pass(d);
}

/* -------------------------------------------------------------- openapi */

static const char *const methods[] = {"get",     "put",  "post",  "delete",
                                      "options", "head", "patch", "trace"};

/* The OpenAPI path for a registered route path: the document may list full
   paths, or paths relative to a server URL such as "/api/v1". */
static json_t *doc_path(json_t *paths, const char *server, const char *route_path)
{
    json_t *p = json_object_get(paths, route_path);
    size_t sl = strlen(server);

    if (!p && sl && strncmp(route_path, server, sl) == 0)
        p = json_object_get(paths, route_path + sl);
    return p;
}

static void test_openapi_matches_routes(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp rr, ro;
    json_t *doc, *paths, *routes, *route, *servers, *item;
    const char *server = "", *ver, *path;
    size_t i, n_ops = 0, n_outside = 0;
    json_t *seen_ops = json_object();

    /* /api/v1/routes is for admins */
    e2e_get(d, "/api/v1/routes", NULL, &rr);
    assert_json_error(&rr, 401);
    e2e_resp_free(&rr);

    assert_int_equal(e2e_get(d, "/api/v1/routes", d->admin_token, &rr), 200);
    /* an array, or {"routes": [...]} */
    routes = json_is_array(rr.json) ? rr.json : json_object_get(rr.json, "routes");
    assert_true(json_is_array(routes));
    assert_true(json_array_size(routes) > 0);

    assert_int_equal(e2e_get(d, "/api/v1/openapi.json", NULL, &ro), 200);
    doc = ro.json;
    assert_true(json_is_object(doc));
    ver = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(ver);
    assert_int_equal(strncmp(ver, "3.", 2), 0);
    assert_true(json_is_object(json_object_get(doc, "info")));
    assert_non_null(json_string_value(json_object_get(json_object_get(doc, "info"), "title")));
    assert_non_null(json_string_value(json_object_get(json_object_get(doc, "info"), "version")));
    paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    servers = json_object_get(doc, "servers");
    if (json_is_array(servers) && json_array_size(servers) > 0) {
        const char *url = json_string_value(json_object_get(json_array_get(servers, 0), "url"));
        if (url && url[0] == '/' && strcmp(url, "/") != 0)
            server = url;
    }

    /* every registered route is documented */
    json_array_foreach(routes, i, route)
    {
        const char *method = json_string_value(json_object_get(route, "method"));
        const char *rpath = json_string_value(json_object_get(route, "path"));
        char lower[16];
        json_t *p, *op;
        size_t k;

        assert_non_null(method);
        assert_non_null(rpath);
        assert_non_null(json_string_value(json_object_get(route, "module")));
        assert_true(json_object_get(route, "scope") != NULL);
        for (k = 0; method[k] && k < sizeof(lower) - 1; k++)
            lower[k] = (char)(method[k] | 0x20);
        lower[k] = '\0';
        p = doc_path(paths, server, rpath);
        op = p ? json_object_get(p, lower) : NULL;
        if (!op)
            fprintf(stderr, "registered but not documented: %s %s\n", method, rpath);
        assert_non_null(op);
    }
    assert_non_null(doc_path(paths, server, "/api/v1/example/notes"));
    assert_non_null(doc_path(paths, server, "/api/v1/example/notes/{id}"));

    /* every documented operation is registered; each is well formed */
    json_object_foreach(paths, path, item)
    {
        assert_true(json_is_object(item));
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            json_t *op = json_object_get(item, methods[m]), *responses, *params, *prm;
            char full[512];
            bool registered = false;
            const char *opid;
            size_t k;

            if (!op)
                continue;
            n_ops++;
            snprintf(full, sizeof(full), "%s%s", server, path);
            json_array_foreach(routes, k, route)
            {
                const char *method = json_string_value(json_object_get(route, "method"));
                const char *rpath = json_string_value(json_object_get(route, "path"));
                if (strcasecmp(method, methods[m]) == 0 &&
                    (strcmp(rpath, full) == 0 || strcmp(rpath, path) == 0))
                    registered = true;
            }
            if (!registered && strncmp(full, "/api/", 5) != 0) {
                /* /healthz, /readyz, /metrics are served outside the API
                   router: documented, so they must answer */
                struct e2e_resp x;
                char upper[16];
                size_t u;
                for (u = 0; methods[m][u] && u < sizeof(upper) - 1; u++)
                    upper[u] = (char)(methods[m][u] & ~0x20);
                upper[u] = '\0';
                e2e_request(d, upper, full, d->admin_token, NULL, NULL, 0, &x);
                registered = x.status > 0 && x.status != 404 && x.status != 405;
                if (!registered)
                    fprintf(stderr, "%s %s is documented but answers %d\n", upper, full, x.status);
                e2e_resp_free(&x);
                n_outside++;
            }
            if (!registered)
                fprintf(stderr, "documented but not registered: %s %s\n", methods[m], full);
            assert_true(registered);
            responses = json_object_get(op, "responses");
            assert_true(json_is_object(responses));
            assert_true(json_object_size(responses) > 0);
            opid = json_string_value(json_object_get(op, "operationId"));
            if (opid) {
                assert_null(json_object_get(seen_ops, opid));
                json_object_set_new(seen_ops, opid, json_true());
            }
            /* every {param} of the template is described as a path parameter */
            params = json_object_get(op, "parameters");
            for (const char *b = strchr(path, '{'); b; b = strchr(b + 1, '{')) {
                const char *e = strchr(b, '}');
                bool described = false;
                json_t *shared = json_object_get(item, "parameters");
                assert_non_null(e);
                json_array_foreach(params, k, prm)
                {
                    const char *nm = json_string_value(json_object_get(prm, "name"));
                    const char *in = json_string_value(json_object_get(prm, "in"));
                    if (nm && in && strcmp(in, "path") == 0 && strlen(nm) == (size_t)(e - b - 1) &&
                        strncmp(nm, b + 1, (size_t)(e - b - 1)) == 0)
                        described = true;
                }
                json_array_foreach(shared, k, prm)
                {
                    const char *nm = json_string_value(json_object_get(prm, "name"));
                    const char *in = json_string_value(json_object_get(prm, "in"));
                    if (nm && in && strcmp(in, "path") == 0 && strlen(nm) == (size_t)(e - b - 1) &&
                        strncmp(nm, b + 1, (size_t)(e - b - 1)) == 0)
                        described = true;
                }
                if (!described)
                    fprintf(stderr, "%s %s: path parameter %.*s is not described\n", methods[m],
                            full, (int)(e - b - 1), b + 1);
                assert_true(described);
            }
        }
    }
    assert_int_equal(n_ops, json_array_size(routes) + n_outside);
    json_decref(seen_ops);
    e2e_resp_free(&rr);
    e2e_resp_free(&ro);
    e2e_pass(d);
}

/* --------------------------------------------------------- command line */

static void test_version_and_help(void **state)
{
    struct e2e_exec x;
    const char *argv_v[] = {e2e_relengd_path(), "--version", NULL};
    const char *argv_h[] = {e2e_relengd_path(), "--help", NULL};
    const char *argv_bad[] = {e2e_relengd_path(), "--no-such-option", NULL};

    (void)state;
    assert_int_equal(e2e_exec(argv_v, NULL, NULL, 10000, &x), 0);
    assert_non_null(strstr(x.out, "relengd"));
    assert_non_null(strstr(x.out, PACKAGE_VERSION));
    e2e_exec_free(&x);

    assert_int_equal(e2e_exec(argv_h, NULL, NULL, 10000, &x), 0);
    assert_non_null(strstr(x.out, "-c"));
    assert_non_null(strstr(x.out, "--check-config"));
    assert_non_null(strstr(x.out, "--state-dir"));
    assert_non_null(strstr(x.out, "--ready-file"));
    e2e_exec_free(&x);

    assert_int_not_equal(e2e_exec(argv_bad, NULL, NULL, 10000, &x), 0);
    assert_non_null(strstr(x.err, "no-such-option"));
    e2e_exec_free(&x);
}

static int check_config(struct e2e_daemon *d, struct e2e_exec *x, const char *modules)
{
    const char *argv[] = {e2e_relengd_path(),
                          "-c",
                          d->conf_path,
                          "--state-dir",
                          d->state_dir,
                          "--modules",
                          modules,
                          "--module-dir",
                          e2e_module_path(),
                          "--check-config",
                          NULL};
    return e2e_exec(argv, NULL, NULL, 15000, x);
}

/* The line number (1-based) of the first line of path containing needle. */
static int line_of(const char *path, const char *needle)
{
    char *t = e2e_read_file(path, NULL);
    int line = 1;
    char *hit;

    assert_non_null(t);
    hit = strstr(t, needle);
    assert_non_null(hit);
    for (char *p = t; p < hit; p++)
        if (*p == '\n')
            line++;
    free(t);
    return line;
}

static void test_check_config(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_exec x;
    char want[1024], mod_conf[1024], orig[1024];
    char *saved;
    int line;

    assert_non_null(d);
    saved = e2e_read_file(d->conf_path, NULL);
    assert_non_null(saved);
    snprintf(orig, sizeof(orig), "%s", d->conf_path);

    /* the good configuration, with the modules that exist */
    if (check_config(d, &x, "example hostcheck") != 0)
        fprintf(stderr, "--check-config: status %d\nstdout: %s\nstderr: %s\n", x.status, x.out,
                x.err);
    assert_int_equal(x.status, 0);
    e2e_exec_free(&x);
    /* nothing was started: no ready file */
    assert_int_not_equal(access(d->ready_path, F_OK), 0);

    /* an unknown key in [http]: file:line */
    assert_int_equal(e2e_append_file(d->conf_path, "\n[http]\nbogus_key_e2e = 1\n"), 0);
    line = line_of(d->conf_path, "bogus_key_e2e");
    assert_int_not_equal(check_config(d, &x, "example"), 0);
    snprintf(want, sizeof(want), "relengd.conf:%d", line);
    if (!strstr(x.err, want) || !strstr(x.err, "bogus_key_e2e"))
        fprintf(stderr, "want '%s' and the key in stderr: %s\n", want, x.err);
    assert_non_null(strstr(x.err, want));
    assert_non_null(strstr(x.err, "bogus_key_e2e"));
    e2e_exec_free(&x);

    /* a bad value */
    assert_int_equal(e2e_write_file(d->conf_path, saved, strlen(saved)), 0);
    assert_int_equal(e2e_append_file(d->conf_path, "\n[events]\nkeep_min = many\n"), 0);
    line = line_of(d->conf_path, "keep_min = many");
    assert_int_not_equal(check_config(d, &x, "example"), 0);
    snprintf(want, sizeof(want), "relengd.conf:%d", line);
    if (!strstr(x.err, want))
        fprintf(stderr, "want '%s' in stderr: %s\n", want, x.err);
    assert_non_null(strstr(x.err, want));
    e2e_exec_free(&x);

    /* an unknown key in a module's file: the module's file:line */
    assert_int_equal(e2e_write_file(d->conf_path, saved, strlen(saved)), 0);
    snprintf(mod_conf, sizeof(mod_conf), "%s/modules.d/example.conf", d->etc_dir);
    assert_int_equal(e2e_append_file(mod_conf, "no_such_example_key = 3\n"), 0);
    line = line_of(mod_conf, "no_such_example_key");
    assert_int_not_equal(check_config(d, &x, "example"), 0);
    snprintf(want, sizeof(want), "example.conf:%d", line);
    if (!strstr(x.err, want))
        fprintf(stderr, "want '%s' in stderr: %s\n", want, x.err);
    assert_non_null(strstr(x.err, want));
    e2e_exec_free(&x);

    /* a module that cannot be loaded is named */
    assert_int_equal(e2e_write_file(mod_conf, "", 0), 0);
    assert_int_not_equal(check_config(d, &x, "example nosuchmod_e2e"), 0);
    if (!strstr(x.err, "nosuchmod_e2e"))
        fprintf(stderr, "want the module named in stderr: %s\n", x.err);
    assert_non_null(strstr(x.err, "nosuchmod_e2e"));
    e2e_exec_free(&x);
    assert_int_not_equal(check_config(d, &x, "example badabi"), 0);
    assert_non_null(strstr(x.err, "badabi"));
    e2e_exec_free(&x);

    /* a missing configuration file */
    {
        const char *argv[] = {e2e_relengd_path(), "-c", "/nonexistent/relengd-e2e.conf",
                              "--check-config", NULL};
        assert_int_not_equal(e2e_exec(argv, NULL, NULL, 10000, &x), 0);
        assert_non_null(strstr(x.err, "/nonexistent/relengd-e2e.conf"));
        e2e_exec_free(&x);
    }
    free(saved);
    e2e_pass(d);
}

/* [store] has two documented keys, busy_timeout and synchronous (full or
   normal): together they start; a bad synchronous is refused with
   file:line. */
static void test_store_section(void **state)
{
    struct e2e_daemon *d = *state;
    char *saved = e2e_read_file(d->conf_path, NULL);
    static const char *const values[] = {"full", "normal", "sometimes"};
    char text[256], want[128];

    assert_non_null(saved);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(e2e_write_file(d->conf_path, saved, strlen(saved)), 0);
        snprintf(text, sizeof(text), "\n[store]\nbusy_timeout = 5s\nsynchronous = %s\n", values[i]);
        assert_int_equal(e2e_append_file(d->conf_path, text), 0);
        if (i < 2) {
            int rc = e2e_launch(d);
            if (rc != E2E_READY)
                e2e_log_dump(d);
            assert_int_equal(rc, E2E_READY);
            assert_int_equal(e2e_stop(d), 0);
        } else {
            struct e2e_exec x;
            int line = line_of(d->conf_path, "synchronous = sometimes");
            assert_int_not_equal(check_config(d, &x, "example"), 0);
            snprintf(want, sizeof(want), "relengd.conf:%d", line);
            if (!strstr(x.err, want))
                fprintf(stderr, "want '%s' in stderr: %s\n", want, x.err);
            assert_non_null(strstr(x.err, want));
            e2e_exec_free(&x);
            assert_int_equal(e2e_launch(d), E2E_EXITED);
            assert_int_not_equal(d->exit_status, 0);
        }
    }
    free(saved);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_and_ready, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_static_index, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_path_traversal, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_no_directory_listing, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_no_cgi_no_ssi, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_route_404, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_method_405, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_json_400, e2e_setup, e2e_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_body_too_large_413, e2e_setup, e2e_teardown,
                                                 (void *)&small_body_opts),
        cmocka_unit_test_setup_teardown(test_hostile_requests, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_deeply_nested_json, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_path, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_metrics, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_status, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_openapi_matches_routes, e2e_setup, e2e_teardown),
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test_setup_teardown(test_check_config, e2e_setup_new, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_store_section, e2e_setup_new, e2e_teardown),
    };
    return cmocka_run_group_tests_name("e2e core http", tests, NULL, NULL);
}
