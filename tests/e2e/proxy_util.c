/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/proxy_util.c -- helpers for the proxy's end-to-end tests (see
 * proxy_util.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/hash/hash.h"
#include "tests/e2e/proxy_util.h"

void sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[32];

    if (hash_buf(HASH_SHA256, data, len, md, NULL) != RD_OK)
        memset(md, 0, sizeof(md));
    hash_hex(md, sizeof(md), out);
}

/* A port that was free a moment ago and has no listener now. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts proxy_origin.py (HTTPS with cert when not NULL); its pid and port. */
static int origin_launch(struct px *x, const char *name, const char *cert, pid_t *pid, int *port)
{
    char ready[400], script[600];
    uint64_t deadline;

    snprintf(ready, sizeof(ready), "%s/%s.port", x->d->dir, name);
    snprintf(script, sizeof(script), "%s/tests/e2e/proxy_origin.py", e2e_srcdir());
    *pid = fork();
    if (*pid < 0)
        return -1;
    if (*pid == 0) {
        /* never the test's stdout/stderr: an origin outliving a crashed
           test must not hold a pipe of make's open */
        char log[400];
        int null = open("/dev/null", O_RDWR), lf;
        snprintf(log, sizeof(log), "%s/%s.log", x->d->dir, name);
        lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (lf >= 0)
            dup2(lf, 2);
        execlp("python3", "python3", script, ready, cert, (char *)NULL);
        _exit(127);
    }
    deadline = e2e_now_ms() + 10000;
    while (e2e_now_ms() < deadline) {
        char *s = e2e_read_file(ready, NULL);
        if (s) {
            *port = atoi(s);
            free(s);
            return *port > 0 ? 0 : -1;
        }
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            fprintf(stderr, "proxy_origin.py exited before it was ready\n");
            return -1;
        }
        e2e_sleep_ms(20);
    }
    fprintf(stderr, "proxy_origin.py was not ready in 10 s\n");
    return -1;
}

void px_reload_port(struct px *x)
{
    json_t *p = x->d->ready ? json_object_get(x->d->ready, "proxy") : NULL;
    x->port = p ? (int)json_integer_value(p) : -1;
}

static struct px *start(const char *main, bool tls)
{
    struct px *x = calloc(1, sizeof(*x));
    char path[400], cert[400], tls_conf[1200] = "", *conf = NULL;

    if (!x)
        return NULL;
    x->d = e2e_new(NULL);
    if (!x->d || origin_launch(x, "origin", NULL, &x->origin_pid, &x->origin_port) != 0)
        goto fail;
    if (tls) {
        snprintf(cert, sizeof(cert), "%s/origin-cert.pem", x->d->dir);
        if (e2e_make_cert(cert) != 0 ||
            origin_launch(x, "tls-origin", cert, &x->tls_pid, &x->tls_port) != 0)
            goto fail;
        /* "tls" trusts the test's certificate; "tlsbad" only the system's */
        snprintf(tls_conf, sizeof(tls_conf),
                 "[backend.tls]\nurl = https://127.0.0.1:%d\nca_file = %s\n"
                 "[backend.tlsbad]\nurl = https://127.0.0.1:%d\n",
                 x->tls_port, cert, x->tls_port);
    }
    x->dead_port = free_port();
    if (asprintf(&conf,
                 "listen = 127.0.0.1:0\n"
                 "connect_timeout = 2s\n"
                 "upstream_idle_timeout = 1s\n"
                 "flush_interval = 100ms\n"
                 "%s\n"
                 "[backend.o]\nurl = http://127.0.0.1:%d\ndefault_ttl = 1h\n"
                 "[backend.ca]\nurl = http://127.0.0.1:%d/ca/\ncontent_digest = sha512\n"
                 "[backend.imm]\nurl = http://127.0.0.1:%d/imm\nimmutable = yes\n"
                 "[backend.dead]\nurl = http://127.0.0.1:%d\n%s",
                 main ? main : "", x->origin_port, x->origin_port, x->origin_port, x->dead_port,
                 tls_conf) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/modules.d/proxy.conf", x->d->etc_dir);
    if (e2e_write_file(path, conf, strlen(conf)) != 0)
        goto fail;
    free(conf);
    conf = NULL;
    e2e_set_modules(x->d, "proxy");
    if (e2e_launch(x->d) != E2E_READY) {
        e2e_log_dump(x->d);
        goto fail;
    }
    px_reload_port(x);
    if (x->port <= 0)
        goto fail;
    return x;
fail:
    free(conf);
    px_stop(x);
    return NULL;
}

struct px *px_start(const char *main)
{
    return start(main, false);
}

struct px *px_start_tls(const char *main)
{
    return start(main, true);
}

int px_stop(struct px *x)
{
    int rc = 0;

    if (!x)
        return -1;
    if (x->d) {
        if (x->d->pid > 0)
            rc = e2e_stop(x->d);
        e2e_free(x->d);
    }
    if (x->origin_pid > 0) {
        kill(x->origin_pid, SIGTERM);
        waitpid(x->origin_pid, NULL, 0);
    }
    if (x->tls_pid > 0) {
        kill(x->tls_pid, SIGTERM);
        waitpid(x->tls_pid, NULL, 0);
    }
    free(x);
    return rc;
}

/* ------------------------------------------------------------ HTTP */

struct buf {
    char *data;
    size_t len;
};

static size_t buf_write(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t len = size * n;
    char *d = realloc(b->data, b->len + len + 1);

    if (!d)
        return 0;
    memcpy(d + b->len, p, len);
    b->data = d;
    b->len += len;
    d[b->len] = '\0';
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name), vl;

    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    line += nl + 1;
    len -= nl + 1;
    while (len && *line == ' ') {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    vl = len < n - 1 ? len : n - 1;
    memcpy(out, line, vl);
    out[vl] = '\0';
}

static size_t resp_header(char *p, size_t size, size_t n, void *arg)
{
    struct px_resp *r = arg;
    size_t len = size * n;

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        r->xcache[0] = r->content_range[0] = r->age[0] = r->via[0] = '\0';
        return len;
    }
    header_value(p, len, "X-Cache", r->xcache, sizeof(r->xcache));
    header_value(p, len, "Content-Range", r->content_range, sizeof(r->content_range));
    header_value(p, len, "Age", r->age, sizeof(r->age));
    header_value(p, len, "Via", r->via, sizeof(r->via));
    return len;
}

static int do_get(struct px *x, const char *url, const char *proxy, const char *const *headers,
                  bool head, struct px_resp *r)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct buf b = {0};

    memset(r, 0, sizeof(*r));
    r->status = -1;
    (void)x;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, proxy ? "" : "*");
    if (proxy)
        curl_easy_setopt(c, CURLOPT_PROXY, proxy);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, resp_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (head)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status == 0)
        r->status = -1;
    r->body = b.data ? b.data : calloc(1, 1);
    r->len = b.len;
    sha256_hex(r->body, r->len, r->sha256);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return (int)r->status;
}

int px_get(struct px *x, const char *path, const char *const *headers, struct px_resp *r)
{
    char url[4096];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", x->port, path);
    return do_get(x, url, NULL, headers, false, r);
}

int px_head(struct px *x, const char *path, struct px_resp *r)
{
    char url[4096];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", x->port, path);
    return do_get(x, url, NULL, NULL, true, r);
}

int px_get_via_proxy(struct px *x, const char *absolute_url, struct px_resp *r)
{
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", x->port);
    return do_get(x, absolute_url, proxy, NULL, false, r);
}

void px_resp_free(struct px_resp *r)
{
    free(r->body);
    r->body = NULL;
}

static json_t *origin_json(struct px *x, const char *method, const char *path, const char *body)
{
    CURL *c = curl_easy_init();
    struct buf b = {0};
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    char url[1024];
    json_t *j = NULL;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", x->origin_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    if (curl_easy_perform(c) == CURLE_OK && b.data)
        j = json_loads(b.data, 0, NULL);
    if (!j)
        fprintf(stderr, "origin %s %s failed\n", method, path);
    free(b.data);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return j;
}

void origin_ctl(struct px *x, const char *json)
{
    json_decref(origin_json(x, "POST", "/__ctl", json));
}

void origin_open(struct px *x, const char *path)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"path\":\"%s\"}", path);
    json_decref(origin_json(x, "POST", "/__open", body));
}

long origin_count(struct px *x, const char *path, const char *field)
{
    char q[600];
    json_t *j;
    long n;

    snprintf(q, sizeof(q), "/__count?path=%s", path);
    j = origin_json(x, "GET", q, NULL);
    n = j ? (long)json_integer_value(json_object_get(j, field)) : -1;
    json_decref(j);
    return n;
}

void origin_digest(struct px *x, const char *path, const char *which, char *out, size_t n)
{
    char q[600];
    json_t *j;

    snprintf(q, sizeof(q), "/__digest?path=%s", path);
    j = origin_json(x, "GET", q, NULL);
    snprintf(out, n, "%s", j ? json_string_value(json_object_get(j, which)) : "");
    json_decref(j);
}

json_t *px_api(struct px *x, const char *path)
{
    struct e2e_resp r;
    json_t *j = NULL;

    if (e2e_get(x->d, path, NULL, &r) == 200)
        j = json_incref(r.json);
    e2e_resp_free(&r);
    return j;
}

long px_inflight(struct px *x, const char *path_suffix, const char *field)
{
    json_t *j = px_api(x, "/api/v1/proxy/inflight"), *o;
    size_t i, sl = strlen(path_suffix);
    long v = 0;

    json_array_foreach(json_object_get(j, "objects"), i, o)
    {
        const char *k = json_string_value(json_object_get(o, "key"));
        if (k && strlen(k) >= sl && strcmp(k + strlen(k) - sl, path_suffix) == 0)
            v = (long)json_integer_value(json_object_get(o, field));
    }
    json_decref(j);
    return v;
}

char *px_raw(struct px *x, const char *req, size_t len, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct buf b = {0};
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    size_t off = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return strdup("");
    }
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    while (e2e_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char tmp[4096];
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            break;
        buf_write(tmp, 1, (size_t)n, &b);
    }
    close(fd);
    return b.data ? b.data : strdup("");
}

/* ------------------------------------------------------------ multi */

struct px_client {
    CURL *easy;
    struct curl_slist *hl;
    EVP_MD_CTX *md;
    size_t bytes;
    bool done, dropped;
    long status;
    CURLcode rc;
    char sha[65];
    struct px_resp hdr; /* headers only */
    double first_byte_s;
};

struct px_multi {
    CURLM *multi;
    struct px_client *c;
    int n;
};

struct px_multi *px_multi_new(void)
{
    struct px_multi *m = calloc(1, sizeof(*m));
    if (m) {
        m->multi = curl_multi_init();
        m->c = calloc(256, sizeof(*m->c));
    }
    return m;
}

static size_t multi_write(char *p, size_t size, size_t n, void *arg)
{
    struct px_client *c = arg;
    EVP_DigestUpdate(c->md, p, size * n);
    c->bytes += size * n;
    return size * n;
}

int px_multi_add(struct px_multi *m, struct px *x, const char *path, const char *range)
{
    struct px_client *c = &m->c[m->n];
    char url[4096];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", x->port, path);
    c->easy = curl_easy_init();
    c->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
    if (range) {
        char h[128];
        snprintf(h, sizeof(h), "Range: %s", range);
        c->hl = curl_slist_append(NULL, h);
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hl);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, multi_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, resp_header);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, &c->hdr);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_multi_add_handle(m->multi, c->easy);
    return m->n++;
}

static void multi_collect(struct px_multi *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        struct px_client *c = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        c->rc = msg->data.result;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
        curl_easy_getinfo(c->easy, CURLINFO_STARTTRANSFER_TIME, &c->first_byte_s);
        EVP_DigestFinal_ex(c->md, md, &n);
        hash_hex(md, n, c->sha);
        c->done = true;
        curl_multi_remove_handle(m->multi, c->easy);
    }
}

int px_multi_run(struct px_multi *m, int ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)ms;
    int running = 0;

    do {
        curl_multi_perform(m->multi, &running);
        multi_collect(m);
        if (running == 0)
            break;
        curl_multi_poll(m->multi, NULL, 0, 20, NULL);
    } while (e2e_now_ms() < deadline);
    return running;
}

bool px_multi_until(struct px_multi *m, bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;

    while (e2e_now_ms() < deadline) {
        px_multi_run(m, 20);
        if (cond(arg))
            return true;
    }
    return false;
}

void px_multi_drop(struct px_multi *m, int i)
{
    struct px_client *c = &m->c[i];
    if (!c->done) {
        curl_multi_remove_handle(m->multi, c->easy);
        c->dropped = true;
        c->done = true;
    }
}

size_t px_multi_bytes(struct px_multi *m, int i)
{
    return m->c[i].bytes;
}
bool px_multi_done(struct px_multi *m, int i)
{
    return m->c[i].done;
}
long px_multi_status(struct px_multi *m, int i)
{
    return m->c[i].status;
}
CURLcode px_multi_result(struct px_multi *m, int i)
{
    return m->c[i].rc;
}
const char *px_multi_xcache(struct px_multi *m, int i)
{
    return m->c[i].hdr.xcache;
}
const char *px_multi_sha256(struct px_multi *m, int i)
{
    return m->c[i].sha;
}
double px_multi_first_byte_s(struct px_multi *m, int i)
{
    return m->c[i].first_byte_s;
}

void px_multi_free(struct px_multi *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        if (!m->c[i].done)
            curl_multi_remove_handle(m->multi, m->c[i].easy);
        curl_easy_cleanup(m->c[i].easy);
        curl_slist_free_all(m->c[i].hl);
        EVP_MD_CTX_free(m->c[i].md);
    }
    curl_multi_cleanup(m->multi);
    free(m->c);
    free(m);
}
