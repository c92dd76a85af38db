/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/harness.c -- runs the real relengd for end-to-end tests and
 * talks to it over loopback HTTP (libcurl). See harness.h for the contract.
 * Everything here runs on the test's thread, except the SSE reader, which
 * runs a curl multi loop on a thread of its own and shares its results under
 * a mutex. Every wait is bounded by a deadline.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/e2e/harness.h"

extern char **environ;

#define DEFAULT_READY_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 10000
#define HTTP_TIMEOUT_MS 10000
#define MAX_BODY_BYTES (64u * 1024 * 1024)
#define SSE_MAX_RAW (1024u * 1024)

/* ------------------------------------------------------------ utilities */

static void e2e_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void e2e_msg(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fprintf(stderr, "e2e: %s\n", line);
    fflush(stderr);
}

uint64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void e2e_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    /* A daemon that dies under a write must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void ensure_init(void)
{
    pthread_once(&global_once, global_init);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p) {
        e2e_msg("out of memory");
        abort();
    }
    return p;
}

/* NULL-terminated copy of a NULL-terminated list (NULL -> empty list). */
static char **strv_dup(const char *const *v)
{
    size_t n = 0;
    char **out;

    while (v && v[n])
        n++;
    out = calloc(n + 1, sizeof(*out));
    if (!out)
        abort();
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static size_t strv_len(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int strv_push(char ***v, const char *s)
{
    size_t n = strv_len(*v);
    char **nv = realloc(*v, (n + 2) * sizeof(*nv));

    if (!nv)
        return -1;
    nv[n] = xstrdup(s);
    nv[n + 1] = NULL;
    *v = nv;
    return 0;
}

/* ------------------------------------------------------- trees and paths */

const char *e2e_srcdir(void)
{
    const char *s = getenv("top_srcdir");
    if (s && *s)
        return s;
#ifdef TOP_SRCDIR
    return TOP_SRCDIR;
#else
    return ".";
#endif
}

const char *e2e_builddir(void)
{
    const char *s = getenv("top_builddir");
    if (s && *s)
        return s;
#ifdef TOP_BUILDDIR
    return TOP_BUILDDIR;
#else
    return ".";
#endif
}

const char *e2e_relengd_path(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/core/relengd", e2e_builddir());
    return path;
}

const char *e2e_module_path(void)
{
    static char path[2048];
    snprintf(path, sizeof(path), "%s/modules/.libs:%s/tests/modules/.libs", e2e_builddir(),
             e2e_builddir());
    return path;
}

/* ------------------------------------------------------------- files */

int e2e_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *p = data;

    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0 ? 0 : -1;
}

int e2e_append_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

char *e2e_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t used = 0, cap = 0;

    if (len)
        *len = 0;
    if (fd < 0)
        return NULL;
    for (;;) {
        ssize_t n;
        if (cap - used < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    size_t len;
    char *data = e2e_read_file(src, &len);
    int rc;

    if (!data)
        return -1;
    rc = e2e_write_file(dst, data, len);
    free(data);
    if (rc == 0)
        rc = chmod(dst, mode & 07777);
    return rc;
}

int e2e_copy_tree(const char *src, const char *dst)
{
    DIR *dir;
    struct dirent *de;
    int rc = 0;

    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        return -1;
    dir = opendir(src);
    if (!dir)
        return -1;
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        char s[4096], t[4096];
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
        snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
        if (lstat(s, &st) != 0) {
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = e2e_copy_tree(s, t);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(s, target, sizeof(target) - 1);
            if (n < 0) {
                rc = -1;
            } else {
                target[n] = '\0';
                rc = symlink(target, t);
            }
        } else if (S_ISREG(st.st_mode)) {
            rc = copy_file(s, t, st.st_mode);
        }
    }
    closedir(dir);
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int e2e_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------- processes */

/* The environment for a child: ours minus RELENGD_* and every name in add,
   plus add's NAME=value entries. Built before fork (no allocation after). */
static char **child_env(const char *const *add1, const char *const *add2)
{
    char **env = NULL;
    const char *const *adds[2] = {add1, add2};

    for (char **e = environ; e && *e; e++) {
        bool skip = strncmp(*e, "RELENGD_", 8) == 0;
        size_t nlen = strcspn(*e, "=");
        for (int k = 0; k < 2 && !skip; k++) {
            for (size_t i = 0; adds[k] && adds[k][i] && !skip; i++) {
                size_t alen = strcspn(adds[k][i], "=");
                skip = alen == nlen && strncmp(adds[k][i], *e, nlen) == 0;
            }
        }
        if (!skip && strv_push(&env, *e) != 0)
            abort();
    }
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; adds[k] && adds[k][i]; i++)
            if (strchr(adds[k][i], '=') && strv_push(&env, adds[k][i]) != 0)
                abort();
    if (!env)
        env = calloc(1, sizeof(*env));
    return env;
}

static int status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* Waits for pid up to timeout_ms; its status code, or -1 (still running). */
static int reap_within(pid_t pid, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        int wstatus;
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r == pid)
            return status_code(wstatus);
        if (r < 0 && errno != EINTR)
            return -2;
        if (e2e_now_ms() >= deadline)
            return -1;
        e2e_sleep_ms(5);
    }
}

int e2e_exec(const char *const *argv, const char *const *env, const char *stdin_text,
             int timeout_ms, struct e2e_exec *r)
{
    FILE *fout = NULL, *ferr = NULL, *fin = NULL;
    char **envp = NULL;
    pid_t pid;
    int st;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    ensure_init();
    fout = tmpfile();
    ferr = tmpfile();
    fin = tmpfile();
    if (!fout || !ferr || !fin)
        goto out;
    if (stdin_text) {
        fputs(stdin_text, fin);
        fflush(fin);
        rewind(fin);
    }
    envp = child_env(env, NULL);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fileno(fin), 0);
        dup2(fileno(fout), 1);
        dup2(fileno(ferr), 2);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    st = reap_within(pid, timeout_ms);
    if (st == -1) {
        e2e_msg("%s did not finish within %d ms: killed", argv[0], timeout_ms);
        kill(pid, SIGKILL);
        reap_within(pid, 5000);
    }
    r->status = st < 0 ? -1 : st;
out:
    if (fout) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fileno(fout));
        r->out = e2e_read_file(path, NULL);
    }
    if (ferr) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fileno(ferr));
        r->err = e2e_read_file(path, NULL);
    }
    if (!r->out)
        r->out = xstrdup("");
    if (!r->err)
        r->err = xstrdup("");
    if (fout)
        fclose(fout);
    if (ferr)
        fclose(ferr);
    if (fin)
        fclose(fin);
    strv_free(envp);
    return r->status;
}

void e2e_exec_free(struct e2e_exec *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* -------------------------------------------------------- tokens, certs */

static int random_bytes(unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "rd_" + base64url(32 random bytes) without padding: 43 characters. */
int e2e_make_token(char out[64])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33] = {0};
    size_t o = 0;

    if (random_bytes(raw, 32) != 0)
        return -1;
    out[o++] = 'r';
    out[o++] = 'd';
    out[o++] = '_';
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0; k--) {
            if (o < 3 + 43)
                out[o++] = b64[(v >> (6 * k)) & 63];
        }
    }
    out[o] = '\0';
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

int e2e_make_cert(const char *pem_path)
{
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    FILE *f = NULL;
    int fd = -1, rc = -1;
    unsigned char serial[8];

    key = EVP_EC_gen("P-256");
    x = X509_new();
    if (!key || !x || random_bytes(serial, sizeof(serial)) != 0)
        goto out;
    serial[0] &= 0x7f;
    if (!X509_set_version(x, 2))
        goto out;
    {
        BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
        ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
        int ok = ai && X509_set_serialNumber(x, ai);
        ASN1_INTEGER_free(ai);
        BN_free(bn);
        if (!ok)
            goto out;
    }
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 86400))
        goto out;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"relengd e2e",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
        goto out;
    if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") != 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth") != 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") != 0)
        goto out;
    if (!X509_sign(x, key, EVP_sha256()))
        goto out;
    fd = open(pem_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    f = fdopen(fd, "w");
    if (!f)
        goto out;
    fd = -1;
    if (!PEM_write_X509(f, x) || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    if (fd >= 0)
        close(fd);
    X509_free(x);
    EVP_PKEY_free(key);
    if (rc != 0)
        e2e_msg("could not make a certificate at %s", pem_path);
    return rc;
}

/* --------------------------------------------------------- the daemon */

struct e2e_daemon *e2e_new(const struct e2e_opts *opts)
{
    struct e2e_opts none = {0};
    struct e2e_daemon *d = calloc(1, sizeof(*d));
    const char *tmp = getenv("TMPDIR");
    char etc_src[1024];

    ensure_init();
    if (!opts)
        opts = &none;
    if (!d)
        return NULL;
    d->exit_status = -1;
    snprintf(d->dir, sizeof(d->dir), "%s/relengd-e2e-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        e2e_msg("mkdtemp %s: %s", d->dir, strerror(errno));
        free(d);
        return NULL;
    }
    snprintf(d->etc_dir, sizeof(d->etc_dir), "%s/etc", d->dir);
    snprintf(d->conf_path, sizeof(d->conf_path), "%s/relengd.conf", d->etc_dir);
    snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", d->dir);
    snprintf(d->ready_path, sizeof(d->ready_path), "%s/ready.json", d->dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/relengd.log", d->dir);
    snprintf(etc_src, sizeof(etc_src), "%s/tests/e2e/etc", e2e_srcdir());
    d->argv_set = strv_dup(opts->set);
    d->argv_extra = strv_dup(opts->args);
    d->env_extra = strv_dup(opts->env);
    d->modules = opts->modules ? xstrdup(opts->modules) : NULL;
    d->ready_timeout_ms =
        opts->ready_timeout_ms > 0 ? opts->ready_timeout_ms : DEFAULT_READY_TIMEOUT_MS;
    d->http_timeout_ms = HTTP_TIMEOUT_MS;
    d->passed = false;
    d->listen_from_config = opts->listen_from_config;

    if (e2e_copy_tree(etc_src, d->etc_dir) != 0) {
        e2e_msg("cannot copy %s to %s: %s", etc_src, d->etc_dir, strerror(errno));
        goto fail;
    }
    if (mkdir(d->state_dir, 0700) != 0) {
        e2e_msg("mkdir %s: %s", d->state_dir, strerror(errno));
        goto fail;
    }
    if (!opts->no_admin_token && e2e_make_token(d->admin_token) != 0) {
        e2e_msg("no randomness for the admin token");
        goto fail;
    }
    if (opts->tls) {
        char kv[400];
        snprintf(d->cert_path, sizeof(d->cert_path), "%s/cert.pem", d->dir);
        if (e2e_make_cert(d->cert_path) != 0)
            goto fail;
        snprintf(kv, sizeof(kv), "http.tls_cert=%s", d->cert_path);
        if (e2e_add_set(d, kv) != 0)
            goto fail;
    }
    return d;
fail:
    d->passed = true; /* nothing to dump */
    e2e_free(d);
    return NULL;
}

int e2e_add_set(struct e2e_daemon *d, const char *kv)
{
    return strv_push(&d->argv_set, kv);
}

int e2e_set_modules(struct e2e_daemon *d, const char *modules)
{
    free(d->modules);
    d->modules = modules ? xstrdup(modules) : NULL;
    return 0;
}

static char **daemon_argv(struct e2e_daemon *d)
{
    char **v = NULL;
    char web[1200];

    snprintf(web, sizeof(web), "http.web_root=%s/web", e2e_srcdir());
    strv_push(&v, e2e_relengd_path());
    strv_push(&v, "-c");
    strv_push(&v, d->conf_path);
    strv_push(&v, "--state-dir");
    strv_push(&v, d->state_dir);
    if (!d->listen_from_config) {
        strv_push(&v, "--listen");
        strv_push(&v, "127.0.0.1:0");
    }
    strv_push(&v, "--ready-file");
    strv_push(&v, d->ready_path);
    strv_push(&v, "--module-dir");
    strv_push(&v, e2e_module_path());
    strv_push(&v, "--set");
    strv_push(&v, web);
    if (d->modules) {
        strv_push(&v, "--modules");
        strv_push(&v, d->modules);
    }
    for (size_t i = 0; d->argv_set[i]; i++) {
        strv_push(&v, "--set");
        strv_push(&v, d->argv_set[i]);
    }
    for (size_t i = 0; d->argv_extra[i]; i++)
        strv_push(&v, d->argv_extra[i]);
    return v;
}

/* The ready file, if it is there and complete: sets port, tls, base_url. */
static bool read_ready(struct e2e_daemon *d)
{
    json_error_t jerr;
    json_t *j = json_load_file(d->ready_path, 0, &jerr);
    json_t *api;

    if (!j)
        return false;
    api = json_object_get(j, "api");
    if (!json_is_integer(api) || json_integer_value(api) <= 0 || json_integer_value(api) > 65535) {
        json_decref(j);
        return false;
    }
    json_decref(d->ready);
    d->ready = j;
    d->port = (int)json_integer_value(api);
    d->tls = json_is_true(json_object_get(j, "tls"));
    snprintf(d->base_url, sizeof(d->base_url), "%s://127.0.0.1:%d", d->tls ? "https" : "http",
             d->port);
    return true;
}

int e2e_launch(struct e2e_daemon *d)
{
    char **argv = NULL, **envp = NULL;
    char tokenv[100];
    const char *tok_env[2] = {NULL, NULL};
    int logfd = -1, nullfd = -1, rc = E2E_ERROR;
    uint64_t deadline;
    pid_t pid;

    ensure_init();
    if (d->pid > 0) {
        e2e_msg("launch: the daemon runs already (pid %d)", (int)d->pid);
        return E2E_ERROR;
    }
    if (unlink(d->ready_path) != 0 && errno != ENOENT) {
        e2e_msg("cannot remove %s: %s", d->ready_path, strerror(errno));
        return E2E_ERROR;
    }
    json_decref(d->ready);
    d->ready = NULL;
    d->port = 0;
    d->base_url[0] = '\0';
    d->exit_status = -1;
    d->n_launches++;

    argv = daemon_argv(d);
    if (d->admin_token[0]) {
        snprintf(tokenv, sizeof(tokenv), "RELENGD_ADMIN_TOKEN=%s", d->admin_token);
        tok_env[0] = tokenv;
    }
    envp = child_env(tok_env, (const char *const *)d->env_extra);

    logfd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        e2e_msg("cannot open %s: %s", d->log_path, strerror(errno));
        goto out;
    }
    {
        char mark[8192];
        size_t o = 0;
        o += (size_t)snprintf(mark + o, sizeof(mark) - o, "=== e2e launch %d:", d->n_launches);
        for (size_t i = 0; argv[i] && o < sizeof(mark) - 2; i++)
            o += (size_t)snprintf(mark + o, sizeof(mark) - o, " %s", argv[i]);
        if (o > sizeof(mark) - 2)
            o = sizeof(mark) - 2;
        mark[o++] = '\n';
        if (write(logfd, mark, o) < 0)
            goto out;
    }

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        e2e_msg("fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* never outlive the test program, even if it crashes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execve(argv[0], argv, envp);
        {
            static const char msg[] = "e2e: execve of relengd failed\n";
            ssize_t n = write(2, msg, sizeof(msg) - 1);
            (void)n;
        }
        _exit(127);
    }
    d->pid = pid;

    deadline = e2e_now_ms() + (uint64_t)d->ready_timeout_ms;
    for (;;) {
        int wstatus;
        pid_t w = waitpid(pid, &wstatus, WNOHANG);

        if (w == pid) {
            d->pid = 0;
            d->exit_status = status_code(wstatus);
            rc = E2E_EXITED;
            break;
        }
        if (read_ready(d)) {
            rc = E2E_READY;
            break;
        }
        if (e2e_now_ms() >= deadline) {
            e2e_msg("relengd (pid %d) not ready within %d ms: killing it", (int)pid,
                    d->ready_timeout_ms);
            kill(pid, SIGKILL);
            d->exit_status = reap_within(pid, 5000);
            d->pid = 0;
            rc = E2E_TIMEOUT;
            break;
        }
        e2e_sleep_ms(10);
    }
out:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    strv_free(argv);
    strv_free(envp);
    return rc;
}

struct e2e_daemon *e2e_start(const struct e2e_opts *opts)
{
    struct e2e_daemon *d = e2e_new(opts);
    int rc;

    if (!d)
        return NULL;
    rc = e2e_launch(d);
    if (rc == E2E_READY)
        return d;
    if (rc == E2E_EXITED)
        e2e_msg("relengd exited with status %d before it was ready", d->exit_status);
    else if (rc == E2E_TIMEOUT)
        e2e_msg("relengd did not get ready in time");
    e2e_log_dump(d);
    d->passed = true; /* dumped already */
    e2e_free(d);
    return NULL;
}

int e2e_signal(struct e2e_daemon *d, int sig)
{
    if (!d || d->pid <= 0)
        return -1;
    return kill(d->pid, sig);
}

int e2e_wait_exit(struct e2e_daemon *d, int timeout_ms)
{
    int st;

    if (d->pid <= 0)
        return d->exit_status;
    st = reap_within(d->pid, timeout_ms);
    if (st == -1)
        return -1;
    d->pid = 0;
    d->exit_status = st < 0 ? -1 : st;
    return d->exit_status;
}

int e2e_stop(struct e2e_daemon *d)
{
    int st;

    if (!d)
        return -1;
    if (d->pid <= 0)
        return d->exit_status == 0 ? 0 : -1;
    st = reap_within(d->pid, 0);
    if (st >= 0) {
        /* it was gone before we asked it to stop */
        d->pid = 0;
        d->exit_status = st;
        e2e_msg("relengd had exited already, with status %d%s, before the stop", st,
                st > 128 ? " (killed by a signal: a crash?)" : "");
        e2e_log_dump(d);
        return -1;
    }
    kill(d->pid, SIGTERM);
    st = reap_within(d->pid, STOP_TIMEOUT_MS);
    if (st == -1) {
        e2e_msg("relengd (pid %d) did not exit within %d ms of SIGTERM: killing it", (int)d->pid,
                STOP_TIMEOUT_MS);
        kill(d->pid, SIGKILL);
        reap_within(d->pid, 5000);
        d->pid = 0;
        d->exit_status = -1;
        e2e_log_dump(d);
        return -1;
    }
    d->pid = 0;
    d->exit_status = st < 0 ? -1 : st;
    if (d->exit_status != 0) {
        e2e_msg("relengd exited with status %d after SIGTERM (want 0)", d->exit_status);
        e2e_log_dump(d);
        return -1;
    }
    return 0;
}

void e2e_kill9(struct e2e_daemon *d)
{
    if (!d || d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    d->exit_status = reap_within(d->pid, 10000);
    d->pid = 0;
}

int e2e_restart(struct e2e_daemon *d)
{
    if (d->pid > 0 && e2e_stop(d) != 0)
        return E2E_ERROR;
    return e2e_launch(d);
}

void e2e_pass(struct e2e_daemon *d)
{
    if (d)
        d->passed = true;
}

void e2e_free(struct e2e_daemon *d)
{
    const char *keep = getenv("E2E_KEEP");
    bool dumped = false;

    if (!d)
        return;
    if (d->pid > 0) {
        e2e_msg("relengd (pid %d) still running at the end of the test: killing it", (int)d->pid);
        e2e_kill9(d);
        e2e_log_dump(d);
        dumped = true;
    }
    if (!d->passed && !dumped) {
        e2e_msg("the test did not pass; the daemon's log follows");
        e2e_log_dump(d);
    }
    if (keep && *keep && strcmp(keep, "0") != 0)
        e2e_msg("kept %s", d->dir);
    else if (d->dir[0])
        e2e_remove_tree(d->dir);
    json_decref(d->ready);
    strv_free(d->argv_set);
    strv_free(d->argv_extra);
    strv_free(d->env_extra);
    free(d->modules);
    free(d);
}

/* ------------------------------------------------------------------ log */

char *e2e_log_text(struct e2e_daemon *d)
{
    char *t = e2e_read_file(d->log_path, NULL);
    return t ? t : xstrdup("");
}

size_t e2e_log_size(struct e2e_daemon *d)
{
    struct stat st;
    return stat(d->log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

bool e2e_log_contains_from(struct e2e_daemon *d, size_t offset, const char *needle)
{
    size_t len;
    char *t = e2e_read_file(d->log_path, &len);
    bool found;

    if (!t)
        return false;
    found = offset <= len && strstr(t + offset, needle) != NULL;
    free(t);
    return found;
}

bool e2e_log_contains(struct e2e_daemon *d, const char *needle)
{
    return e2e_log_contains_from(d, 0, needle);
}

bool e2e_wait_log(struct e2e_daemon *d, size_t offset, const char *needle, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        if (e2e_log_contains_from(d, offset, needle))
            return true;
        if (e2e_now_ms() >= deadline)
            return false;
        e2e_sleep_ms(20);
    }
}

void e2e_log_dump(struct e2e_daemon *d)
{
    char *t = e2e_log_text(d);
    fprintf(stderr, "----- relengd log %s -----\n%s%s----- end of relengd log -----\n", d->log_path,
            t, (*t && t[strlen(t) - 1] != '\n') ? "\n" : "");
    fflush(stderr);
    free(t);
}

/* ----------------------------------------------------------------- HTTP */

struct buf {
    char *p;
    size_t len, cap, max;
};

static int buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->max && b->len + len > b->max)
        return -1;
    if (b->len + len + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *np;
        while (ncap < b->len + len + 1)
            ncap *= 2;
        np = realloc(b->p, ncap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static size_t body_cb(char *data, size_t size, size_t n, void *arg)
{
    return buf_add(arg, data, size * n) == 0 ? size * n : 0;
}

static void header_put(json_t *headers, const char *line, size_t len)
{
    char name[128], value[4096];
    size_t i = 0, nl;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or a redirect): start over */
        json_object_clear(headers);
        return;
    }
    while (i < len && line[i] != ':')
        i++;
    if (i == len || i == 0 || i >= sizeof(name))
        return;
    for (nl = 0; nl < i; nl++)
        name[nl] = (char)tolower((unsigned char)line[nl]);
    name[nl] = '\0';
    i++;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    snprintf(value, sizeof(value), "%.*s", (int)(len - i), line + i);
    json_object_set_new(headers, name, json_string(value));
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
    header_put(arg, data, size * n);
    return size * n;
}

/* Common options for every request to d. */
static void setup_easy(struct e2e_daemon *d, CURL *c, const char *path, int timeout_ms)
{
    char url[4096];

    snprintf(url, sizeof(url), "%s%s", d->base_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (d->cert_path[0]) {
        curl_easy_setopt(c, CURLOPT_CAINFO, d->cert_path);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    }
}

int e2e_request(struct e2e_daemon *d, const char *method, const char *path, const char *token,
                const char *const *headers, const void *body, size_t body_len, struct e2e_resp *r)
{
    CURL *c;
    struct curl_slist *hl = NULL;
    struct buf b = {.max = MAX_BODY_BYTES};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc;
    long status = 0;

    ensure_init();
    memset(r, 0, sizeof(*r));
    r->status = -1;
    r->headers = json_object();
    if (!d || d->port <= 0) {
        snprintf(r->error, sizeof(r->error), "the daemon is not running");
        r->body = xstrdup("");
        return -1;
    }
    c = curl_easy_init();
    if (!c) {
        snprintf(r->error, sizeof(r->error), "curl_easy_init failed");
        r->body = xstrdup("");
        return -1;
    }
    setup_easy(d, c, path, d->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r->headers);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || body) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        }
    }
    if (token) {
        char h[512];
        snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, h);
    }
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);

    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s %s: %s", method, path,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        /* A server that answers and closes before reading the whole body
           (413) can make the upload fail after the status arrived. */
        r->status = status > 0 ? (int)status : -1;
    } else {
        r->status = (int)status;
    }
    r->body = b.p ? b.p : xstrdup("");
    r->body_len = b.len;
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return r->status;
}

int e2e_get(struct e2e_daemon *d, const char *path, const char *token, struct e2e_resp *r)
{
    return e2e_request(d, "GET", path, token, NULL, NULL, 0, r);
}

int e2e_post(struct e2e_daemon *d, const char *path, const char *token, const char *json_text,
             struct e2e_resp *r)
{
    static const char *const h[] = {"Content-Type: application/json", NULL};
    return e2e_request(d, "POST", path, token, h, json_text ? json_text : "",
                       json_text ? strlen(json_text) : 0, r);
}

int e2e_delete(struct e2e_daemon *d, const char *path, const char *token, struct e2e_resp *r)
{
    return e2e_request(d, "DELETE", path, token, NULL, NULL, 0, r);
}

void e2e_set_http_timeout(struct e2e_daemon *d, int timeout_ms)
{
    d->http_timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_TIMEOUT_MS;
}

const char *e2e_header(const struct e2e_resp *r, const char *name)
{
    char lower[128];
    size_t i;

    for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    return json_string_value(json_object_get(r->headers, lower));
}

const char *e2e_error_code(const struct e2e_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

const char *e2e_error_message(const struct e2e_resp *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

const char *e2e_json_str(const struct e2e_resp *r, const char *key)
{
    return json_string_value(json_object_get(r->json, key));
}

void e2e_resp_free(struct e2e_resp *r)
{
    free(r->body);
    json_decref(r->json);
    json_decref(r->headers);
    memset(r, 0, sizeof(*r));
}

int e2e_token_create(struct e2e_daemon *d, const char *name, const char *scopes_json,
                     const char *expires_in_json, char *token, char *id)
{
    struct e2e_resp r;
    json_t *req = json_object(), *scopes = json_loads(scopes_json, JSON_DECODE_ANY, NULL);
    char *body;
    int status;

    json_object_set_new(req, "name", json_string(name));
    json_object_set_new(req, "scopes", scopes ? scopes : json_string(scopes_json));
    if (expires_in_json) {
        json_t *e = json_loads(expires_in_json, JSON_DECODE_ANY, NULL);
        json_object_set_new(req, "expires_in", e ? e : json_string(expires_in_json));
    }
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    status = e2e_post(d, "/api/v1/tokens", d->admin_token, body, &r);
    free(body);
    if (status == 201 && e2e_json_str(&r, "token")) {
        if (token)
            snprintf(token, 64, "%s", e2e_json_str(&r, "token"));
        if (id) {
            json_t *jid = json_object_get(r.json, "id");
            if (json_is_integer(jid))
                snprintf(id, 64, "%lld", (long long)json_integer_value(jid));
            else
                snprintf(id, 64, "%s", json_string_value(jid) ? json_string_value(jid) : "");
        }
        e2e_resp_free(&r);
        return 0;
    }
    e2e_msg("POST /api/v1/tokens %s: status %d: %s", name, status, r.body);
    e2e_resp_free(&r);
    return status == 0 ? -1 : status;
}

long e2e_raw(struct e2e_daemon *d, const char *request, size_t len, int timeout_ms,
             size_t max_reply, char **reply)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct buf b = {.max = max_reply};
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    int fd;
    size_t off = 0;

    *reply = NULL;
    if (d->port <= 0)
        return -1;
    sa.sin_port = htons((uint16_t)d->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    while (off < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int64_t left = (int64_t)deadline - (int64_t)e2e_now_ms();
        ssize_t n;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        n = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = (int64_t)deadline - (int64_t)e2e_now_ms();
        char tmp[8192];
        ssize_t n;
        if (left <= 0)
            break;
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
        n = recv(fd, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (b.max && b.len + (size_t)n > b.max)
            n = (ssize_t)(b.max - b.len);
        if (n > 0 && buf_add(&b, tmp, (size_t)n) != 0)
            break;
        if (b.max && b.len >= b.max)
            break;
    }
    close(fd);
    *reply = b.p ? b.p : xstrdup("");
    return (long)b.len;
}

/* -------------------------------------------------------------- metrics */

struct label {
    char name[128];
    char value[512];
};

/* Parses `{a="x",b="y"}` at *p (pointing at '{'); advances past '}'. */
static int parse_labels(const char **p, struct label *labels, size_t max, size_t *n)
{
    const char *s = *p;

    *n = 0;
    if (*s != '{')
        return 0;
    s++;
    for (;;) {
        size_t i = 0;
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == '}') {
            s++;
            break;
        }
        if (*n >= max)
            return -1;
        while (*s && *s != '=' && i < sizeof(labels[*n].name) - 1)
            labels[*n].name[i++] = *s++;
        labels[*n].name[i] = '\0';
        if (*s++ != '=' || *s++ != '"')
            return -1;
        i = 0;
        while (*s && *s != '"') {
            char ch = *s++;
            if (ch == '\\' && *s) {
                ch = *s++;
                if (ch == 'n')
                    ch = '\n';
            }
            if (i < sizeof(labels[*n].value) - 1)
                labels[*n].value[i++] = ch;
        }
        labels[*n].value[i] = '\0';
        if (*s++ != '"')
            return -1;
        (*n)++;
    }
    *p = s;
    return 0;
}

double e2e_metric_in(const char *text, const char *series)
{
    char want_name[256];
    struct label want[16];
    size_t n_want = 0, i = 0;
    const char *q = series;
    double sum = 0;
    bool found = false;

    while (*q && *q != '{' && *q != ' ' && i < sizeof(want_name) - 1)
        want_name[i++] = *q++;
    want_name[i] = '\0';
    if (*q == '{' && parse_labels(&q, want, 16, &n_want) != 0)
        return NAN;

    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        char l[4096];

        if (llen < sizeof(l) && line[0] != '#') {
            char name[256];
            struct label have[16];
            size_t n_have = 0, k = 0;
            const char *s;

            memcpy(l, line, llen);
            l[llen] = '\0';
            s = l;
            while (*s && *s != '{' && *s != ' ' && k < sizeof(name) - 1)
                name[k++] = *s++;
            name[k] = '\0';
            if (strcmp(name, want_name) == 0 &&
                (*s != '{' || parse_labels(&s, have, 16, &n_have) == 0)) {
                bool match = true;
                for (size_t w = 0; w < n_want && match; w++) {
                    bool one = false;
                    for (size_t h = 0; h < n_have && !one; h++)
                        one = strcmp(want[w].name, have[h].name) == 0 &&
                              strcmp(want[w].value, have[h].value) == 0;
                    match = one;
                }
                if (match) {
                    char *end;
                    double v;
                    while (*s == ' ')
                        s++;
                    v = strtod(s, &end);
                    if (end != s) {
                        sum += v;
                        found = true;
                    }
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return found ? sum : NAN;
}

double e2e_metric(struct e2e_daemon *d, const char *series)
{
    struct e2e_resp r;
    double v = NAN;

    if (e2e_get(d, "/metrics", d->admin_token[0] ? d->admin_token : NULL, &r) == 200)
        v = e2e_metric_in(r.body, series);
    e2e_resp_free(&r);
    return v;
}

/* ------------------------------------------------------------------ SSE */

struct e2e_sse {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hl;
    atomic_bool stop;
    uint64_t deadline;

    /* under lock */
    bool opened, ended;
    long status;
    char content_type[128];
    json_t *retry;  /* integer or null */
    json_t *frames; /* [{"id","event","data"}] */
    json_t *events; /* parsed data */
    char error[CURL_ERROR_SIZE];

    /* parser state (thread only) */
    struct buf line;
    struct buf data;
    char *frame_id;
    char *frame_event;
    bool has_data, has_field, after_cr;
    size_t raw_bytes;
};

static void sse_dispatch(struct e2e_sse *s)
{
    if (s->has_data) {
        json_t *frame = json_object();
        json_t *ev;
        const char *text = s->data.p ? s->data.p : "";
        size_t len = s->data.len;

        /* the data of a frame ends without its last newline */
        if (len > 0 && text[len - 1] == '\n')
            len--;
        json_object_set_new(frame, "id", s->frame_id ? json_string(s->frame_id) : json_null());
        json_object_set_new(frame, "event",
                            s->frame_event ? json_string(s->frame_event) : json_null());
        json_object_set_new(frame, "data", json_stringn(text, len));
        ev = json_loadb(text, len, JSON_DECODE_ANY, NULL);
        if (!ev)
            ev = json_stringn(text, len);
        pthread_mutex_lock(&s->lock);
        json_array_append_new(s->frames, frame);
        json_array_append_new(s->events, ev);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    free(s->frame_id);
    free(s->frame_event);
    s->frame_id = s->frame_event = NULL;
    s->data.len = 0;
    if (s->data.p)
        s->data.p[0] = '\0';
    s->has_data = s->has_field = false;
}

static void sse_line(struct e2e_sse *s, char *l, size_t len)
{
    char *colon, *value;

    if (len == 0) {
        sse_dispatch(s);
        return;
    }
    if (l[0] == ':')
        return; /* comment / keep-alive */
    colon = memchr(l, ':', len);
    if (colon) {
        *colon = '\0';
        value = colon + 1;
        if (*value == ' ')
            value++;
    } else {
        value = l + len;
    }
    s->has_field = true;
    if (strcmp(l, "data") == 0) {
        buf_add(&s->data, value, strlen(value));
        buf_add(&s->data, "\n", 1);
        s->has_data = true;
    } else if (strcmp(l, "id") == 0) {
        free(s->frame_id);
        s->frame_id = xstrdup(value);
    } else if (strcmp(l, "event") == 0) {
        free(s->frame_event);
        s->frame_event = xstrdup(value);
    } else if (strcmp(l, "retry") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        pthread_mutex_lock(&s->lock);
        json_decref(s->retry);
        s->retry = (*value && *end == '\0') ? json_integer(v) : json_string(value);
        pthread_mutex_unlock(&s->lock);
    }
}

static size_t sse_body_cb(char *data, size_t size, size_t n, void *arg)
{
    struct e2e_sse *s = arg;
    size_t len = size * n;

    if (atomic_load(&s->stop))
        return 0;
    s->raw_bytes += len;
    if (s->raw_bytes > SSE_MAX_RAW * 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        bool after_cr = s->after_cr;

        s->after_cr = ch == '\r';
        if (ch == '\n' && after_cr)
            continue; /* "\r\n" is one line end, even split across writes */
        if (ch == '\n' || ch == '\r') {
            char empty[1] = "";
            sse_line(s, s->line.p ? s->line.p : empty, s->line.len);
            s->line.len = 0;
            if (s->line.p)
                s->line.p[0] = '\0';
        } else if (buf_add(&s->line, &ch, 1) != 0) {
            return 0;
        }
    }
    return len;
}

static size_t sse_header_cb(char *data, size_t size, size_t n, void *arg)
{
    struct e2e_sse *s = arg;
    size_t len = size * n;

    pthread_mutex_lock(&s->lock);
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        s->content_type[0] = '\0';
    } else if (len > 13 && strncasecmp(data, "content-type:", 13) == 0) {
        size_t i = 13, e = len;
        while (i < len && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == '\n'))
            e--;
        snprintf(s->content_type, sizeof(s->content_type), "%.*s", (int)(e - i), data + i);
    } else if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200) {
            s->status = status;
            s->opened = true;
            pthread_cond_broadcast(&s->cond);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return len;
}

static void *sse_thread(void *arg)
{
    struct e2e_sse *s = arg;
    int running = 1;
    CURLcode result = CURLE_OK;
    bool have_result = false;

    while (running && !atomic_load(&s->stop) && e2e_now_ms() < s->deadline) {
        CURLMsg *m;
        int left;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            break;
        while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                result = m->data.result;
                have_result = true;
            }
        }
        if (!running)
            break;
        curl_multi_poll(s->multi, NULL, 0, 100, NULL);
    }
    pthread_mutex_lock(&s->lock);
    if (have_result && result != CURLE_OK && !s->error[0])
        snprintf(s->error, sizeof(s->error), "%s", curl_easy_strerror(result));
    if (!s->opened) {
        long status = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        s->status = status;
    }
    s->ended = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

struct e2e_sse *e2e_sse_open(struct e2e_daemon *d, const char *path, const char *token,
                             const char *last_event_id, int timeout_ms)
{
    struct e2e_sse *s = calloc(1, sizeof(*s));
    char h[512];

    ensure_init();
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->retry = json_null();
    s->frames = json_array();
    s->events = json_array();
    s->deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    s->multi = curl_multi_init();
    s->easy = curl_easy_init();
    if (!s->multi || !s->easy)
        goto fail;
    setup_easy(d, s->easy, path, timeout_ms);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, sse_body_cb);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, sse_header_cb);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->error);
    s->hl = curl_slist_append(s->hl, "Accept: text/event-stream");
    if (token) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
        s->hl = curl_slist_append(s->hl, h);
    }
    if (last_event_id) {
        snprintf(h, sizeof(h), "Last-Event-ID: %s", last_event_id);
        s->hl = curl_slist_append(s->hl, h);
    }
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hl);
    if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK)
        goto fail;
    if (d->port <= 0) {
        snprintf(s->error, sizeof(s->error), "the daemon is not running");
        s->deadline = 0;
    }
    if (pthread_create(&s->thread, NULL, sse_thread, s) != 0)
        goto fail;
    return s;
fail:
    e2e_msg("cannot open the SSE reader");
    if (s->multi && s->easy)
        curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->hl);
    json_decref(s->retry);
    json_decref(s->frames);
    json_decref(s->events);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
    return NULL;
}

/* Waits on s->cond until pred(s) or the deadline; called with the lock held. */
static void sse_wait_until(struct e2e_sse *s, bool (*pred)(struct e2e_sse *, size_t), size_t n,
                           int timeout_ms)
{
    struct timespec ts;
    uint64_t ns;

    clock_gettime(CLOCK_REALTIME, &ts);
    ns = (uint64_t)ts.tv_nsec + (uint64_t)timeout_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (!pred(s, n) && !s->ended) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
}

static bool pred_open(struct e2e_sse *s, size_t n)
{
    (void)n;
    return s->opened;
}

static bool pred_count(struct e2e_sse *s, size_t n)
{
    return json_array_size(s->events) >= n;
}

bool e2e_sse_wait_open(struct e2e_sse *s, int timeout_ms)
{
    bool ok;

    pthread_mutex_lock(&s->lock);
    sse_wait_until(s, pred_open, 0, timeout_ms);
    ok = s->opened;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

size_t e2e_sse_wait(struct e2e_sse *s, size_t n, int timeout_ms)
{
    size_t have;

    pthread_mutex_lock(&s->lock);
    sse_wait_until(s, pred_count, n, timeout_ms);
    have = json_array_size(s->events);
    pthread_mutex_unlock(&s->lock);
    return have;
}

json_t *e2e_sse_snapshot(struct e2e_sse *s)
{
    json_t *j;

    pthread_mutex_lock(&s->lock);
    j = json_pack("{s:I, s:s, s:O, s:o, s:o, s:b, s:o}", "status", (json_int_t)s->status,
                  "content_type", s->content_type, "retry", s->retry, "frames",
                  json_deep_copy(s->frames), "events", json_deep_copy(s->events), "ended", s->ended,
                  "error", s->error[0] ? json_string(s->error) : json_null());
    pthread_mutex_unlock(&s->lock);
    return j;
}

void e2e_sse_close(struct e2e_sse *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);
    curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->hl);
    json_decref(s->retry);
    json_decref(s->frames);
    json_decref(s->events);
    free(s->line.p);
    free(s->data.p);
    free(s->frame_id);
    free(s->frame_event);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

json_t *e2e_sse_collect(struct e2e_daemon *d, const char *path, const char *token,
                        const char *last_event_id, size_t n, int timeout_ms)
{
    struct e2e_sse *s = e2e_sse_open(d, path, token, last_event_id, timeout_ms + 1000);
    json_t *j;

    if (!s)
        return NULL;
    e2e_sse_wait(s, n, timeout_ms);
    j = e2e_sse_snapshot(s);
    e2e_sse_close(s);
    return j;
}

int e2e_setup(void **state)
{
    struct e2e_daemon *d = e2e_start(*state);

    if (!d)
        return -1;
    *state = d;
    return 0;
}

int e2e_setup_new(void **state)
{
    struct e2e_daemon *d = e2e_new(*state);

    if (!d)
        return -1;
    *state = d;
    return 0;
}

int e2e_teardown(void **state)
{
    struct e2e_daemon *d = *state;
    int rc = d->pid > 0 ? e2e_stop(d) : 0;

    e2e_free(d);
    return rc;
}
