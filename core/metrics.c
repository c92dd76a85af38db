/* SPDX-License-Identifier: MIT */
/*
 * core/metrics.c -- the metrics registry: counters, gauges and histograms
 * with labels, rendered as Prometheus text (exposition format 0.0.4) for
 * /metrics, and mirrored to StatsD/DogStatsD over UDP when configured.
 *
 * Threads. Registration (metrics_get) and rendering take the registry mutex.
 * Updates are lock-free: counter and gauge values are doubles kept as their
 * bit patterns in an _Atomic uint64_t and changed with a CAS loop; a
 * histogram's buckets, sum and count sit under a mutex of their own. The
 * StatsD socket and its strings sit under a read-write lock that updates
 * take only when StatsD is on; sending never blocks (non-blocking UDP) and
 * never fails the caller. Handles live until metrics_free.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/metrics.h"

/* Durations in seconds. */
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,  5,     10,   30,  60};
/* Sizes in bytes: 1 KiB to 1 GiB, each four times the last. */
static const double bytes_bounds[] = {1024.0,     4096.0,      16384.0,     65536.0,
                                      262144.0,   1048576.0,   4194304.0,   16777216.0,
                                      67108864.0, 268435456.0, 1073741824.0};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define STATSD_LINE_MAX 1024

struct family;

struct metric {
    struct rd_metric pub; /* first: api is the table given to metrics_new */
    struct family *fam;
    char *key;             /* normalised tags "k=v,k=v", sorted by name; "" for none */
    char *labels;          /* Prometheus label pairs k="v",k="v" (escaped); "" for none */
    char *stags;           /* DogStatsD tags k:v,k:v; "" for none */
    _Atomic uint64_t bits; /* counter/gauge value as the bits of a double */
    pthread_mutex_t lock;  /* histograms: buckets, sum, count */
    uint64_t *buckets;     /* per bound plus +Inf; not cumulative */
    double sum;
    uint64_t count;
    struct metric *next;
};

struct family {
    char *base;  /* Prometheus name without _total: the identity of the family */
    char *prom;  /* Prometheus name as rendered (counters end in _total) */
    char *sname; /* StatsD name "<module>.<name>" */
    char *help;
    enum rd_metric_kind kind;
    const double *bounds;
    size_t n_bounds;
    bool is_ms; /* a histogram in seconds: StatsD gets milliseconds */
    struct metric *head, *tail;
    size_t n_metrics;
    struct metrics *ms;
    struct family *next;
};

struct metrics {
    const struct rd_host_api *api;
    pthread_mutex_t lock; /* the registry: families and their metric lists */
    struct family *families;
    size_t n_families;

    pthread_rwlock_t statsd_lock; /* the three fields below */
    int statsd_fd;                /* connected UDP socket, or -1 */
    char *statsd_ns;              /* "" or "releng" */
    char *statsd_tags;            /* "" or "k:v,k:v" */
    atomic_bool statsd_on;        /* statsd_fd >= 0, read without the lock */

    /* Process figures, filled in at render. */
    struct metric *p_start, *p_cpu, *p_rss, *p_fds, *p_threads;
    double start_time_s; /* fallback when /proc is unreadable */
};

/* ------------------------------------------------------------ helpers */

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Shortest of %.15g..%.17g that reads back as v; Prometheus spellings for
   the special values. */
static void fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) RD_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->oom = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sb_putn(b, big, (size_t)n);
        free(big);
    }
}

/* Appends s with the characters that Prometheus escapes escaped: \ and newline
   always, " too when in_quotes (label values; HELP text keeps its quotes). */
static void sb_escape(struct sbuf *b, const char *s, bool in_quotes)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_puts(b, "\\\\");
        else if (*s == '\n')
            sb_puts(b, "\\n");
        else if (*s == '"' && in_quotes)
            sb_puts(b, "\\\"");
        else
            sb_putn(b, s, 1);
    }
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* A metric or module name: [a-zA-Z_][a-zA-Z0-9_.-]* */
static bool valid_metric_name(const char *s)
{
    if (!s || !is_name_start(*s))
        return false;
    for (s++; *s; s++)
        if (!is_name_char(*s) && *s != '.' && *s != '-')
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------- labels */

struct label {
    char *name;
    char *value;
};

static void labels_free(struct label *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* Parses "k=v,k=v" into labels sorted by name. Names are
   [a-zA-Z_][a-zA-Z0-9_]*, values anything but ','; a name given twice, an
   empty piece or a missing '=' is RD_EINVAL. NULL or "" is no labels. */
static int labels_parse(const char *tags, struct label **out, size_t *n_out)
{
    int rc = RD_OK;
    struct label *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = tags;

    *out = NULL;
    *n_out = 0;
    if (!tags || !*tags)
        return RD_OK;
    for (;;) {
        const char *end = strchr(p, ',');
        const char *eq;
        size_t piece = end ? (size_t)(end - p) : strlen(p);

        eq = memchr(p, '=', piece);
        if (!eq || eq == p) {
            rc = RD_EINVAL;
            goto out;
        }
        if (!is_name_start(*p)) {
            rc = RD_EINVAL;
            goto out;
        }
        for (const char *c = p; c < eq; c++) {
            if (!is_name_char(*c)) {
                rc = RD_EINVAL;
                goto out;
            }
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct label *nv = realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                rc = RD_ENOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        v[n].name = strndup(p, (size_t)(eq - p));
        v[n].value = strndup(eq + 1, piece - (size_t)(eq - p) - 1);
        n++;
        if (!v[n - 1].name || !v[n - 1].value) {
            rc = RD_ENOMEM;
            goto out;
        }
        if (!end)
            break;
        p = end + 1;
    }
    qsort(v, n, sizeof(*v), label_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1].name, v[i].name) == 0) {
            rc = RD_EINVAL;
            goto out;
        }
    }
out:
    if (rc != RD_OK) {
        labels_free(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return RD_OK;
}

/* DogStatsD tags cannot hold '|', ',', '#' or line breaks: those become '_'. */
static void sb_statsd_tag(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c == '|' || c == ',' || c == '#' || c == '\n' || c == '\r')
            c = '_';
        sb_putn(b, &c, 1);
    }
}

/* Fills m->key, m->labels and m->stags from the parsed labels. */
static int metric_set_labels(struct metric *m, const struct label *v, size_t n)
{
    struct sbuf key = {0}, labels = {0}, stags = {0};

    for (size_t i = 0; i < n; i++) {
        if (i) {
            sb_puts(&key, ",");
            sb_puts(&labels, ",");
            sb_puts(&stags, ",");
        }
        sb_printf(&key, "%s=%s", v[i].name, v[i].value);
        sb_printf(&labels, "%s=\"", v[i].name);
        sb_escape(&labels, v[i].value, true);
        sb_puts(&labels, "\"");
        sb_printf(&stags, "%s:", v[i].name);
        sb_statsd_tag(&stags, v[i].value);
    }
    /* An empty sbuf has no storage yet: give every field a string. */
    sb_puts(&key, "");
    sb_puts(&labels, "");
    sb_puts(&stags, "");
    if (key.oom || labels.oom || stags.oom) {
        free(key.p);
        free(labels.p);
        free(stags.p);
        return RD_ENOMEM;
    }
    m->key = key.p;
    m->labels = labels.p;
    m->stags = stags.p;
    return RD_OK;
}

/* ------------------------------------------------------------ registry */

static void metric_free(struct metric *m)
{
    if (!m)
        return;
    if (m->fam && m->fam->kind == RD_HISTOGRAM)
        pthread_mutex_destroy(&m->lock);
    free(m->buckets);
    free(m->key);
    free(m->labels);
    free(m->stags);
    free(m);
}

static void family_free(struct family *f)
{
    struct metric *m, *next;

    if (!f)
        return;
    for (m = f->head; m; m = next) {
        next = m->next;
        metric_free(m);
    }
    free(f->base);
    free(f->prom);
    free(f->sname);
    free(f->help);
    free(f);
}

static struct family *family_find(struct metrics *ms, const char *base)
{
    for (struct family *f = ms->families; f; f = f->next)
        if (strcmp(f->base, base) == 0)
            return f;
    return NULL;
}

/* A new family (not linked). base is the Prometheus name without _total. */
static struct family *family_new(struct metrics *ms, enum rd_metric_kind k, const char *module,
                                 const char *name, const char *base, const char *help)
{
    struct family *f = calloc(1, sizeof(*f));
    struct sbuf sname = {0}, prom = {0};
    size_t name_len = strlen(name);

    if (!f)
        return NULL;
    f->ms = ms;
    f->kind = k;
    if (k == RD_HISTOGRAM) {
        if (ends_with(name, "_bytes")) {
            f->bounds = bytes_bounds;
            f->n_bounds = N_ELEMS(bytes_bounds);
        } else {
            f->bounds = duration_bounds;
            f->n_bounds = N_ELEMS(duration_bounds);
        }
        if (ends_with(name, "_seconds")) {
            /* "diff.time_seconds" goes to StatsD as "diff.time" in ms. */
            f->is_ms = true;
            name_len -= strlen("_seconds");
        }
    } else if (k == RD_COUNTER && ends_with(name, "_total")) {
        name_len -= strlen("_total");
    }
    if (module && *module)
        sb_printf(&sname, "%s.", module);
    sb_putn(&sname, name, name_len);
    sb_puts(&prom, base);
    if (k == RD_COUNTER)
        sb_puts(&prom, "_total");
    f->sname = sname.p;
    f->prom = prom.p;
    f->base = strdup(base);
    /* Without help text, HELP repeats the name as the module gave it. */
    if (f->sname)
        f->help = strdup(help && *help ? help : f->sname);
    if (sname.oom || prom.oom || !f->sname || !f->prom || !f->base || !f->help) {
        family_free(f);
        return NULL;
    }
    return f;
}

static struct metric *metric_new(struct family *f, const struct label *v, size_t n)
{
    struct metric *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->pub.api = f->ms->api;
    if (metric_set_labels(m, v, n) != RD_OK)
        goto fail;
    atomic_init(&m->bits, dbl_bits(0.0));
    if (f->kind == RD_HISTOGRAM) {
        m->buckets = calloc(f->n_bounds + 1, sizeof(*m->buckets));
        if (!m->buckets)
            goto fail;
        if (pthread_mutex_init(&m->lock, NULL) != 0)
            goto fail;
    }
    m->fam = f;
    return m;
fail:
    free(m->buckets);
    free(m->key);
    free(m->labels);
    free(m->stags);
    free(m);
    return NULL;
}

/* The Prometheus name without _total: relengd_<module>_<name>, '.' and '-' as
   '_'. NULL when out of memory. */
static char *prom_base(const char *module, const char *name)
{
    struct sbuf b = {0};
    size_t len = strlen(name);

    if (ends_with(name, "_total"))
        len -= strlen("_total");
    sb_puts(&b, "relengd_");
    if (module && *module) {
        sb_puts(&b, module);
        sb_puts(&b, "_");
    }
    sb_putn(&b, name, len);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    for (char *c = b.p; *c; c++)
        if (*c == '.' || *c == '-')
            *c = '_';
    return b.p;
}

struct rd_metric *metrics_get(struct metrics *ms, enum rd_metric_kind k, const char *module,
                              const char *name, const char *help, const char *tags)
{
    struct metric *found = NULL;
    struct family *f = NULL;
    struct label *labels = NULL;
    size_t n_labels = 0;
    char *base = NULL;
    bool new_family = false;

    if (!ms || (k != RD_COUNTER && k != RD_GAUGE && k != RD_HISTOGRAM))
        return NULL;
    if (!valid_metric_name(name) || (module && *module && !valid_metric_name(module)))
        return NULL;
    if (labels_parse(tags, &labels, &n_labels) != RD_OK)
        return NULL;
    if (k == RD_HISTOGRAM) {
        for (size_t i = 0; i < n_labels; i++)
            if (strcmp(labels[i].name, "le") == 0)
                goto out;
    }
    base = prom_base(module, name);
    if (!base)
        goto out;

    pthread_mutex_lock(&ms->lock);
    f = family_find(ms, base);
    if (f && f->kind != k) {
        pthread_mutex_unlock(&ms->lock);
        goto out;
    }
    if (!f) {
        f = family_new(ms, k, module, name, base, help);
        if (!f) {
            pthread_mutex_unlock(&ms->lock);
            goto out;
        }
        new_family = true;
    } else {
        struct metric probe = {0};
        /* Compare normalised keys so "a=1,b=2" and "b=2,a=1" are one series. */
        if (metric_set_labels(&probe, labels, n_labels) != RD_OK) {
            pthread_mutex_unlock(&ms->lock);
            goto out;
        }
        for (struct metric *m = f->head; m; m = m->next) {
            if (strcmp(m->key, probe.key) == 0) {
                found = m;
                break;
            }
        }
        free(probe.key);
        free(probe.labels);
        free(probe.stags);
        if (found) {
            pthread_mutex_unlock(&ms->lock);
            goto out;
        }
    }
    found = metric_new(f, labels, n_labels);
    if (!found) {
        if (new_family)
            family_free(f);
        pthread_mutex_unlock(&ms->lock);
        goto out;
    }
    if (f->tail)
        f->tail->next = found;
    else
        f->head = found;
    f->tail = found;
    f->n_metrics++;
    if (new_family) {
        f->next = ms->families;
        ms->families = f;
        ms->n_families++;
    }
    pthread_mutex_unlock(&ms->lock);
out:
    free(base);
    labels_free(labels, n_labels);
    return found ? &found->pub : NULL;
}

/* ------------------------------------------------------------ StatsD */

/* The line for m and v with the given namespace and global tags. */
static int statsd_format(const char *ns, const char *gtags, struct metric *m, double v, char *buf,
                         size_t len)
{
    struct family *f = m->fam;
    const char *type = "c";
    char num[64];
    int n;

    if (!isfinite(v))
        return RD_EINVAL;
    switch (f->kind) {
    case RD_COUNTER:
        type = "c";
        break;
    case RD_GAUGE:
        type = "g";
        break;
    case RD_HISTOGRAM:
        type = f->is_ms ? "ms" : "h";
        if (f->is_ms)
            v *= 1000.0;
        break;
    }
    /* 15 significant digits: 0.012 s is "12" ms, not 12.000000000000002. */
    snprintf(num, sizeof(num), "%.15g", v);
    n = snprintf(buf, len, "%s%s%s:%s|%s%s%s%s%s", ns, *ns ? "." : "", f->sname, num, type,
                 (*m->stags || *gtags) ? "|#" : "", m->stags, (*m->stags && *gtags) ? "," : "",
                 gtags);
    if (n < 0 || (size_t)n >= len)
        return RD_ETOOBIG;
    return n;
}

int metrics_statsd_line(struct metrics *ms, struct rd_metric *pub, double v, char *buf, size_t len)
{
    int n;

    if (!ms || !pub || !buf)
        return RD_EINVAL;
    pthread_rwlock_rdlock(&ms->statsd_lock);
    n = statsd_format(ms->statsd_ns, ms->statsd_tags, (struct metric *)pub, v, buf, len);
    pthread_rwlock_unlock(&ms->statsd_lock);
    return n;
}

/* Sends one update; drops it silently when the socket would block or the
   peer is gone (ECONNREFUSED from an earlier datagram): metrics never fail
   or slow the caller. */
static void statsd_send(struct metric *m, double v)
{
    struct metrics *ms = m->fam->ms;
    char line[STATSD_LINE_MAX];
    int n;

    if (!atomic_load_explicit(&ms->statsd_on, memory_order_relaxed))
        return;
    pthread_rwlock_rdlock(&ms->statsd_lock);
    if (ms->statsd_fd >= 0) {
        n = statsd_format(ms->statsd_ns, ms->statsd_tags, m, v, line, sizeof(line));
        if (n > 0) {
            ssize_t sent = send(ms->statsd_fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)sent;
        }
    }
    pthread_rwlock_unlock(&ms->statsd_lock);
}

/* "host:port" or "[v6]:port" into host and port strings. */
static int split_addr(const char *addr, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon, *h = addr;
    size_t hl;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return RD_EINVAL;
        h = addr + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return RD_EINVAL;
        hl = (size_t)(colon - addr);
    }
    if (hl == 0 || hl >= host_len || !colon[1] || strlen(colon + 1) >= port_len)
        return RD_EINVAL;
    for (const char *c = colon + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return RD_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, port_len, "%s", colon + 1);
    return RD_OK;
}

static bool valid_statsd_tags(const char *s)
{
    for (; *s; s++)
        if (*s == '|' || *s == '#' || *s == '\n' || *s == '\r' || *s == ' ')
            return false;
    return true;
}

static bool valid_statsd_ns(const char *s)
{
    for (; *s; s++)
        if (!is_name_char(*s) && *s != '.' && *s != '-')
            return false;
    return true;
}

int metrics_statsd(struct metrics *ms, const char *addr, const char *ns, const char *tags,
                   struct rd_error *err)
{
    int rc = RD_OK;
    int fd = -1, old_fd;
    char host[256], port[16];
    char *ns_copy = NULL, *tags_copy = NULL, *old_ns, *old_tags;
    struct addrinfo hints, *res = NULL;

    if (!ns)
        ns = "";
    if (!tags)
        tags = "";
    if (!valid_statsd_ns(ns)) {
        rc = rd_error_set(err, RD_EINVAL, "statsd namespace '%s': use letters, digits, _ . -", ns);
        goto out;
    }
    if (!valid_statsd_tags(tags)) {
        rc = rd_error_set(err, RD_EINVAL, "statsd tags '%s': expected k:v,k:v", tags);
        goto out;
    }
    ns_copy = strdup(ns);
    tags_copy = strdup(tags);
    if (!ns_copy || !tags_copy) {
        rc = rd_error_set(err, RD_ENOMEM, "out of memory");
        goto out;
    }
    if (addr && *addr) {
        int gai;

        if (split_addr(addr, host, sizeof(host), port, sizeof(port)) != RD_OK) {
            rc = rd_error_set(err, RD_EINVAL, "statsd address '%s': expected host:port", addr);
            goto out;
        }
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_NUMERICSERV;
        gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0) {
            rc = rd_error_set(err, RD_EINVAL, "statsd address '%s': %s", addr, gai_strerror(gai));
            goto out;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
            if (fd < 0)
                continue;
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            close(fd);
            fd = -1;
        }
        if (fd < 0) {
            rc = rd_error_set(err, RD_EIO, "statsd address '%s': %s", addr, strerror(errno));
            goto out;
        }
    }

    pthread_rwlock_wrlock(&ms->statsd_lock);
    old_fd = ms->statsd_fd;
    old_ns = ms->statsd_ns;
    old_tags = ms->statsd_tags;
    ms->statsd_fd = fd;
    ms->statsd_ns = ns_copy;
    ms->statsd_tags = tags_copy;
    atomic_store(&ms->statsd_on, fd >= 0);
    pthread_rwlock_unlock(&ms->statsd_lock);
    if (old_fd >= 0)
        close(old_fd);
    free(old_ns);
    free(old_tags);
    fd = -1;
    ns_copy = tags_copy = NULL;
out:
    if (res)
        freeaddrinfo(res);
    if (fd >= 0)
        close(fd);
    free(ns_copy);
    free(tags_copy);
    return rc;
}

/* ------------------------------------------------------------ updates */

/* Adds v to the atomic double with a CAS loop; returns the new value. */
static double atomic_add_dbl(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    double next;

    do {
        next = bits_dbl(old) + v;
    } while (!atomic_compare_exchange_weak_explicit(bits, &old, dbl_bits(next),
                                                    memory_order_relaxed, memory_order_relaxed));
    return next;
}

/* Counters: v >= 0 is added (a negative or NaN v is ignored: counters only go
   up). Gauges: v is added (may be negative). Histograms: an observation. */
void metrics_add(struct rd_metric *pub, double v)
{
    struct metric *m = (struct metric *)pub;

    if (!m || isnan(v))
        return;
    switch (m->fam->kind) {
    case RD_COUNTER:
        if (v < 0)
            return;
        atomic_add_dbl(&m->bits, v);
        statsd_send(m, v);
        break;
    case RD_GAUGE:
        /* DogStatsD has no relative gauges: send the new value. */
        statsd_send(m, atomic_add_dbl(&m->bits, v));
        break;
    case RD_HISTOGRAM:
        metrics_observe(pub, v);
        break;
    }
}

/* Gauges only; ignored for other kinds. */
void metrics_set(struct rd_metric *pub, double v)
{
    struct metric *m = (struct metric *)pub;

    if (!m || m->fam->kind != RD_GAUGE)
        return;
    atomic_store_explicit(&m->bits, dbl_bits(v), memory_order_relaxed);
    statsd_send(m, v);
}

/* Histograms only; ignored for other kinds and for NaN. */
void metrics_observe(struct rd_metric *pub, double v)
{
    struct metric *m = (struct metric *)pub;
    struct family *f;
    size_t i;

    if (!m || m->fam->kind != RD_HISTOGRAM || isnan(v))
        return;
    f = m->fam;
    for (i = 0; i < f->n_bounds; i++)
        if (v <= f->bounds[i])
            break;
    pthread_mutex_lock(&m->lock);
    m->buckets[i]++;
    m->sum += v;
    m->count++;
    pthread_mutex_unlock(&m->lock);
    statsd_send(m, v);
}

double metrics_value(struct rd_metric *pub)
{
    struct metric *m = (struct metric *)pub;
    double v;

    if (!m)
        return 0.0;
    if (m->fam->kind != RD_HISTOGRAM)
        return bits_dbl(atomic_load_explicit(&m->bits, memory_order_relaxed));
    pthread_mutex_lock(&m->lock);
    v = (double)m->count;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* ---------------------------------------------------- process figures */

static void metric_store(struct metric *m, double v)
{
    if (m)
        atomic_store_explicit(&m->bits, dbl_bits(v), memory_order_relaxed);
}

/* Reads a small /proc file into buf; false if it cannot. */
static bool read_small_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    size_t got = 0;

    if (fd < 0)
        return false;
    while (got < len - 1) {
        n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return got > 0;
}

static double boot_time_s(void)
{
    char buf[8192];
    const char *p;

    if (!read_small_file("/proc/stat", buf, sizeof(buf)))
        return -1;
    p = strstr(buf, "\nbtime ");
    if (!p)
        return -1;
    return strtod(p + strlen("\nbtime "), NULL);
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) == dirfd(d)) /* the directory we are reading */
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* Fields of /proc/self/stat after the parenthesised command name, which may
   itself hold spaces: field 3 (state) is the first after ") ". */
static void update_process(struct metrics *ms)
{
    char buf[1024];
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    int fds;

    if (ticks <= 0)
        ticks = 100;
    if (page <= 0)
        page = 4096;
    if (read_small_file("/proc/self/stat", buf, sizeof(buf))) {
        char *p = strrchr(buf, ')');
        unsigned long long f[25] = {0}; /* f[i] = field i, i >= 4 */
        int field = 3;

        if (p && p[1] == ' ') {
            /* p + 2 is field 3 (the state); walk the space-separated fields. */
            for (p += 2; *p && field <= 24; field++) {
                char *end;
                if (field >= 4)
                    f[field] = strtoull(p, NULL, 10);
                end = strchr(p, ' ');
                if (!end)
                    break;
                p = end + 1;
            }
            if (field > 24) {
                double btime = boot_time_s();
                metric_store(ms->p_cpu, (double)(f[14] + f[15]) / (double)ticks);
                metric_store(ms->p_threads, (double)f[20]);
                metric_store(ms->p_rss, (double)f[24] * (double)page);
                metric_store(ms->p_start,
                             btime >= 0 ? btime + (double)f[22] / (double)ticks : ms->start_time_s);
            }
        }
    }
    fds = count_open_fds();
    if (fds >= 0)
        metric_store(ms->p_fds, (double)fds);
}

/* ------------------------------------------------------------- render */

static int family_cmp(const void *a, const void *b)
{
    return strcmp((*(struct family *const *)a)->prom, (*(struct family *const *)b)->prom);
}

static int metric_cmp(const void *a, const void *b)
{
    return strcmp((*(struct metric *const *)a)->key, (*(struct metric *const *)b)->key);
}

static const char *kind_name(enum rd_metric_kind k)
{
    return k == RD_COUNTER ? "counter" : k == RD_GAUGE ? "gauge" : "histogram";
}

/* name{labels[,extra]} value */
static void render_sample(struct sbuf *b, const char *name, const char *suffix, const char *labels,
                          const char *extra, double v)
{
    char num[64];

    fmt_double(num, sizeof(num), v);
    sb_puts(b, name);
    sb_puts(b, suffix);
    if (*labels || extra) {
        sb_puts(b, "{");
        sb_puts(b, labels);
        if (extra) {
            if (*labels)
                sb_puts(b, ",");
            sb_puts(b, extra);
        }
        sb_puts(b, "}");
    }
    sb_printf(b, " %s\n", num);
}

static int render_family(struct sbuf *b, struct family *f)
{
    struct metric **v = NULL;
    uint64_t *snap = NULL;
    size_t i = 0;

    v = malloc(f->n_metrics * sizeof(*v));
    if (!v)
        return RD_ENOMEM;
    for (struct metric *m = f->head; m; m = m->next)
        v[i++] = m;
    qsort(v, f->n_metrics, sizeof(*v), metric_cmp);

    sb_printf(b, "# HELP %s ", f->prom);
    sb_escape(b, f->help, false);
    sb_printf(b, "\n# TYPE %s %s\n", f->prom, kind_name(f->kind));
    if (f->kind == RD_HISTOGRAM) {
        snap = malloc((f->n_bounds + 1) * sizeof(*snap));
        if (!snap) {
            free(v);
            return RD_ENOMEM;
        }
    }
    for (i = 0; i < f->n_metrics; i++) {
        struct metric *m = v[i];
        if (f->kind != RD_HISTOGRAM) {
            render_sample(b, f->prom, "", m->labels, NULL,
                          bits_dbl(atomic_load_explicit(&m->bits, memory_order_relaxed)));
        } else {
            double sum;
            uint64_t count, cum = 0;
            char le[80], num[64];

            /* Snapshot under the lock, format without it. */
            pthread_mutex_lock(&m->lock);
            memcpy(snap, m->buckets, (f->n_bounds + 1) * sizeof(*snap));
            sum = m->sum;
            count = m->count;
            pthread_mutex_unlock(&m->lock);
            for (size_t j = 0; j <= f->n_bounds; j++) {
                cum += snap[j];
                if (j < f->n_bounds)
                    fmt_double(num, sizeof(num), f->bounds[j]);
                else
                    snprintf(num, sizeof(num), "+Inf");
                snprintf(le, sizeof(le), "le=\"%s\"", num);
                render_sample(b, f->prom, "_bucket", m->labels, le, (double)cum);
            }
            render_sample(b, f->prom, "_sum", m->labels, NULL, sum);
            render_sample(b, f->prom, "_count", m->labels, NULL, (double)count);
        }
    }
    free(snap);
    free(v);
    return RD_OK;
}

int metrics_render(struct metrics *ms, char **out, size_t *len)
{
    int rc = RD_OK;
    struct sbuf b = {0};
    struct family **v = NULL;
    size_t i = 0;

    *out = NULL;
    if (len)
        *len = 0;
    update_process(ms);
    pthread_mutex_lock(&ms->lock);
    v = malloc((ms->n_families ? ms->n_families : 1) * sizeof(*v));
    if (!v) {
        rc = RD_ENOMEM;
        goto out_unlock;
    }
    for (struct family *f = ms->families; f; f = f->next)
        v[i++] = f;
    qsort(v, ms->n_families, sizeof(*v), family_cmp);
    sb_puts(&b, "");
    for (i = 0; i < ms->n_families && rc == RD_OK; i++)
        rc = render_family(&b, v[i]);
out_unlock:
    pthread_mutex_unlock(&ms->lock);
    free(v);
    if (rc == RD_OK && b.oom)
        rc = RD_ENOMEM;
    if (rc != RD_OK) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return RD_OK;
}

/* ------------------------------------------------------ life cycle */

int metrics_new(const struct rd_host_api *api, struct metrics **out)
{
    struct metrics *ms = calloc(1, sizeof(*ms));
    struct timespec now;

    *out = NULL;
    if (!ms)
        return RD_ENOMEM;
    ms->api = api;
    ms->statsd_fd = -1;
    pthread_mutex_init(&ms->lock, NULL);
    {
        /* Updates read-lock it all the time: prefer the rare writer
           (metrics_statsd) so that a busy process cannot starve it. */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&ms->statsd_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
    }
    atomic_init(&ms->statsd_on, false);
    ms->statsd_ns = strdup("");
    ms->statsd_tags = strdup("");
    clock_gettime(CLOCK_REALTIME, &now);
    ms->start_time_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;

#define PROC_METRIC(field, kind, name, help)                                                       \
    ms->field = (struct metric *)metrics_get(ms, kind, "process", name, help, NULL)
    PROC_METRIC(p_start, RD_GAUGE, "start_time_seconds",
                "Start time of the process since unix epoch in seconds.");
    PROC_METRIC(p_cpu, RD_COUNTER, "cpu_seconds",
                "Total user and system CPU time spent in seconds.");
    PROC_METRIC(p_rss, RD_GAUGE, "resident_memory_bytes", "Resident memory size in bytes.");
    PROC_METRIC(p_fds, RD_GAUGE, "open_fds", "Number of open file descriptors.");
    PROC_METRIC(p_threads, RD_GAUGE, "threads", "Number of OS threads in the process.");
#undef PROC_METRIC
    if (!ms->statsd_ns || !ms->statsd_tags || !ms->p_start || !ms->p_cpu || !ms->p_rss ||
        !ms->p_fds || !ms->p_threads) {
        metrics_free(ms);
        return RD_ENOMEM;
    }
    metric_store(ms->p_start, ms->start_time_s);
    *out = ms;
    return RD_OK;
}

void metrics_free(struct metrics *ms)
{
    struct family *f, *next;

    if (!ms)
        return;
    for (f = ms->families; f; f = next) {
        next = f->next;
        family_free(f);
    }
    if (ms->statsd_fd >= 0)
        close(ms->statsd_fd);
    free(ms->statsd_ns);
    free(ms->statsd_tags);
    pthread_rwlock_destroy(&ms->statsd_lock);
    pthread_mutex_destroy(&ms->lock);
    free(ms);
}
