/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/test_core_tls.c -- HTTPS through the real daemon: with [http]
 * tls_cert set to a PEM (certificate + key, made here with OpenSSL), the API
 * port speaks TLS only. libcurl with certificate verification on (the PEM
 * as its CA) reaches /healthz, the API and the event stream; a client that
 * trusts another certificate is refused by verification; plain HTTP to the
 * port gets no answer from the API; a missing or broken certificate file
 * stops start-up with an error naming it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "tests/e2e/harness.h"

static const struct e2e_opts tls_opts = {.tls = true};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* GET url with libcurl and CA file ca (verification on); resolve maps a
   host name to 127.0.0.1 when not NULL ("localhost:PORT:127.0.0.1").
   Returns the curl code; *status the HTTP status (0 if none). */
static CURLcode fetch(const char *url, const char *ca, const char *resolve, long *status)
{
    CURL *c = curl_easy_init();
    struct curl_slist *res = NULL;
    CURLcode cc;

    assert_non_null(c);
    *status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (resolve) {
        res = curl_slist_append(NULL, resolve);
        curl_easy_setopt(c, CURLOPT_RESOLVE, res);
    }
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(res);
    curl_easy_cleanup(c);
    return cc;
}

static void test_https_serves(void **state)
{
    struct e2e_daemon *d = *state;
    struct e2e_resp r;
    struct e2e_sse *s;
    json_t *snap;

    assert_true(json_is_true(json_object_get(d->ready, "tls")));
    assert_int_equal(strncmp(d->base_url, "https://", 8), 0);

    assert_int_equal(e2e_get(d, "/healthz", NULL, &r), 200);
    assert_string_equal(e2e_json_str(&r, "status"), "ok");
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, "/readyz", NULL, &r), 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, "/api/v1/status", NULL, &r), 200);
    assert_non_null(json_object_get(r.json, "modules"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_get(d, "/", NULL, &r), 200);
    assert_non_null(strstr(e2e_header(&r, "Content-Type"), "text/html"));
    e2e_resp_free(&r);

    /* tokens and writes over TLS */
    assert_int_equal(e2e_get(d, "/api/v1/whoami", d->admin_token, &r), 200);
    e2e_resp_free(&r);
    e2e_post(d, "/api/v1/example/notes", NULL, "{\"text\":\"tls\"}", &r);
    assert_int_equal(r.status, 401);
    e2e_resp_free(&r);

    /* the event stream over TLS */
    s = e2e_sse_open(d, "/api/v1/events?type=example", NULL, NULL, 20000);
    assert_non_null(s);
    assert_true(e2e_sse_wait_open(s, 5000));
    assert_int_equal(e2e_post(d, "/api/v1/example/notes", d->admin_token, "{\"text\":\"tls\"}", &r),
                     201);
    e2e_resp_free(&r);
    assert_int_equal(e2e_sse_wait(s, 1, 10000), 1);
    snap = e2e_sse_snapshot(s);
    e2e_sse_close(s);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(snap, "events"), 0), "data"), "text")),
        "tls");
    json_decref(snap);
    e2e_pass(d);
}

static void test_certificate_is_verified(void **state)
{
    struct e2e_daemon *d = *state;
    char url[256], other[512], resolve[128];
    long status;
    CURLcode cc;

    /* the right CA, by IP and by name (subjectAltName) */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", d->port);
    assert_int_equal(fetch(url, d->cert_path, NULL, &status), CURLE_OK);
    assert_int_equal(status, 200);
    snprintf(url, sizeof(url), "https://localhost:%d/healthz", d->port);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", d->port);
    assert_int_equal(fetch(url, d->cert_path, resolve, &status), CURLE_OK);
    assert_int_equal(status, 200);

    /* a client that trusts another certificate refuses this server */
    snprintf(other, sizeof(other), "%s/other.pem", d->dir);
    assert_int_equal(e2e_make_cert(other), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", d->port);
    cc = fetch(url, other, NULL, &status);
    assert_int_not_equal(cc, CURLE_OK);
    assert_int_equal(status, 0);
    /* and the server is fine afterwards */
    assert_int_equal(fetch(url, d->cert_path, NULL, &status), CURLE_OK);
    assert_int_equal(status, 200);
    e2e_pass(d);
}

static void test_plain_http_refused(void **state)
{
    struct e2e_daemon *d = *state;
    static const char req[] =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char url[256], *reply = NULL;
    long n, status;
    CURLcode cc;

    n = e2e_raw(d, req, strlen(req), 5000, 1 << 16, &reply);
    if (n > 0 && strncmp(reply, "HTTP/1.1 200", 12) == 0)
        fprintf(stderr, "plain HTTP to the TLS port answered: %.200s\n", reply);
    assert_int_not_equal(strncmp(reply, "HTTP/1.1 200", 12), 0);
    assert_int_not_equal(strncmp(reply, "HTTP/1.0 200", 12), 0);
    assert_null(strstr(reply, "\"ok\""));
    free(reply);

    /* the same with a client: an error or no 200, never the API's answer */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", d->port);
    cc = fetch(url, NULL, NULL, &status);
    assert_true(cc != CURLE_OK || status != 200);

    /* TLS still works after that */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", d->port);
    assert_int_equal(fetch(url, d->cert_path, NULL, &status), CURLE_OK);
    assert_int_equal(status, 200);
    e2e_pass(d);
}

static char *last_output(struct e2e_daemon *d)
{
    char *log = e2e_log_text(d), *mark = NULL, *p, *out;

    for (p = strstr(log, "=== e2e launch"); p; p = strstr(p + 1, "=== e2e launch"))
        mark = p;
    p = mark ? strchr(mark, '\n') : NULL;
    out = strdup(p ? p + 1 : log);
    free(log);
    assert_non_null(out);
    return out;
}

static void test_bad_certificate_refused(void **state)
{
    struct e2e_daemon *d = *state;
    char path[512], kv[600], *out;
    static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                               "-----END CERTIFICATE-----\n";

    /* missing */
    snprintf(path, sizeof(path), "%s/missing-cert.pem", d->dir);
    snprintf(kv, sizeof(kv), "http.tls_cert=%s", path);
    assert_int_equal(e2e_add_set(d, kv), 0);
    assert_int_equal(e2e_launch(d), E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    out = last_output(d);
    if (!strstr(out, path))
        fprintf(stderr, "refusal does not name %s:\n%s\n", path, out);
    assert_non_null(strstr(out, path));
    free(out);

    /* present but broken (the later --set wins) */
    snprintf(path, sizeof(path), "%s/junk-cert.pem", d->dir);
    assert_int_equal(e2e_write_file(path, junk, strlen(junk)), 0);
    snprintf(kv, sizeof(kv), "http.tls_cert=%s", path);
    assert_int_equal(e2e_add_set(d, kv), 0);
    assert_int_equal(e2e_launch(d), E2E_EXITED);
    assert_int_not_equal(d->exit_status, 0);
    assert_int_not_equal(access(d->ready_path, F_OK), 0);
    out = last_output(d);
    if (!strstr(out, path))
        fprintf(stderr, "refusal does not name %s:\n%s\n", path, out);
    assert_non_null(strstr(out, path));
    free(out);
    e2e_pass(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_https_serves, e2e_setup, e2e_teardown,
                                                 (void *)&tls_opts),
        cmocka_unit_test_prestate_setup_teardown(test_certificate_is_verified, e2e_setup,
                                                 e2e_teardown, (void *)&tls_opts),
        cmocka_unit_test_prestate_setup_teardown(test_plain_http_refused, e2e_setup, e2e_teardown,
                                                 (void *)&tls_opts),
        cmocka_unit_test_setup_teardown(test_bad_certificate_refused, e2e_setup_new, e2e_teardown),
    };
    return cmocka_run_group_tests_name("e2e core tls", tests, NULL, NULL);
}
