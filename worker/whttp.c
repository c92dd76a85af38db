/* SPDX-License-Identifier: MIT */
/*
 * worker/whttp.c -- the worker's libcurl calls (see whttp.h). Any thread,
 * one struct whttp per thread.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/whttp.h"

#define MAX_ANSWER (8u << 20)

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t k = size * n;
    char *grown;

    if (b->len + k > MAX_ANSWER)
        return 0;
    grown = realloc(b->data, b->len + k + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, p, k);
    b->data = grown;
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct whttp *h = arg;
    size_t k = size * n;
    static const char name[] = "x-log-offset:";

    if (k > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        size_t i = sizeof(name) - 1, j = 0;
        while (i < k && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (i < k && j + 1 < sizeof(h->log_offset) && p[i] >= '0' && p[i] <= '9')
            h->log_offset[j++] = p[i++];
        h->log_offset[j] = '\0';
    }
    return k;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct whttp *h = arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return h->abort_flag && *h->abort_flag ? 1 : 0;
}

int whttp_init(struct whttp *h, const struct wconf *c, volatile sig_atomic_t *abort_flag)
{
    memset(h, 0, sizeof(*h));
    h->conf = c;
    h->abort_flag = abort_flag;
    h->curl = curl_easy_init();
    return h->curl ? 0 : -1;
}

void whttp_fini(struct whttp *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    h->curl = NULL;
}

/* Runs the prepared transfer; headers is freed here. */
static long perform(struct whttp *h, const char *method, const char *path,
                    struct curl_slist *headers, long timeout_ms, json_t **out)
{
    char url[1024], auth[300];
    struct buf b = {0};
    json_error_t je;
    long status = -1;
    CURLcode rc;

    if (out)
        *out = NULL;
    snprintf(url, sizeof(url), "%s%s", h->conf->url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", h->conf->token);
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Expect:");
    h->error[0] = '\0';
    h->log_offset[0] = '\0';
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
    rc = curl_easy_perform(h->curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
        if (out && b.data)
            *out = json_loadb(b.data, b.len, 0, &je);
    } else if (!h->error[0]) {
        snprintf(h->error, sizeof(h->error), "%s", curl_easy_strerror(rc));
    }
    h->last_status = status;
    free(b.data);
    curl_slist_free_all(headers);
    /* The handle is reused: forget this request's body settings. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(h->curl, CURLOPT_READDATA, NULL);
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    return status;
}

long whttp_json(struct whttp *h, const char *method, const char *path, const json_t *body,
                long timeout_ms, json_t **out)
{
    struct curl_slist *headers = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long status;

    if (body && !text)
        return -1;
    if (text) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    status = perform(h, method, path, headers, timeout_ms, out);
    free(text);
    return status;
}

long whttp_post_raw(struct whttp *h, const char *path, const void *data, size_t len, json_t **out)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");

    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, data ? data : "");
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    return perform(h, "POST", path, headers, 30000, out);
}

long whttp_put_file(struct whttp *h, const char *path, FILE *f, long long size,
                    const char *sha256_hex, json_t **out)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    char sha[100];

    snprintf(sha, sizeof(sha), "X-Content-SHA256: %s", sha256_hex);
    headers = curl_slist_append(headers, sha);
    curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h->curl, CURLOPT_READDATA, f);
    curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, NULL);
    curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    return perform(h, "PUT", path, headers, 600000, out);
}
