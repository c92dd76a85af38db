/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_metrics.c -- core/metrics.c: the exact Prometheus
 * text of a small registry (escaping, sorting, cumulative buckets), handle
 * identity and rejected registrations, process figures, StatsD lines for
 * every kind, and a real datagram on 127.0.0.1. Single-threaded except for
 * the concurrent-update test.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/metrics.h"

static const struct rd_host_api test_api = {.abi = RD_MODULE_ABI,
                                            .size = sizeof(struct rd_host_api)};

static int setup(void **state)
{
    struct metrics *ms = NULL;

    if (metrics_new(&test_api, &ms) != RD_OK)
        return -1;
    *state = ms;
    return 0;
}

static int teardown(void **state)
{
    metrics_free(*state);
    return 0;
}

/* The rendered text without the relengd_process_* families. */
static char *render_without_process(struct metrics *ms)
{
    char *text = NULL, *out;
    size_t len = 0, o = 0;
    const char *p;

    assert_int_equal(metrics_render(ms, &text, &len), RD_OK);
    assert_int_equal(strlen(text), len);
    out = calloc(1, len + 1);
    assert_non_null(out);
    for (p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (!strstr(p, "relengd_process_") || (size_t)(strstr(p, "relengd_process_") - p) >= n) {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    free(text);
    return out;
}

static void test_render_exact(void **state)
{
    struct metrics *ms = *state;
    struct rd_metric *hit, *miss, *odd, *bytes, *diff;
    char *text;
    static const char expected[] =
        "# HELP relengd_partials_diff_time_seconds Time to diff one file.\n"
        "# TYPE relengd_partials_diff_time_seconds histogram\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.001\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.005\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.01\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.025\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.05\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.1\"} 0\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.25\"} 1\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"0.5\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"1\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"2.5\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"5\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"10\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"30\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"60\"} 2\n"
        "relengd_partials_diff_time_seconds_bucket{platform=\"linux64\",le=\"+Inf\"} 3\n"
        "relengd_partials_diff_time_seconds_sum{platform=\"linux64\"} 100.75\n"
        "relengd_partials_diff_time_seconds_count{platform=\"linux64\"} 3\n"
        "# HELP relengd_proxy_cache_bytes Bytes in the cache, \\\\ and \\n escaped.\n"
        "# TYPE relengd_proxy_cache_bytes gauge\n"
        "relengd_proxy_cache_bytes 1024\n"
        "# HELP relengd_proxy_requests_total Requests served.\n"
        "# TYPE relengd_proxy_requests_total counter\n"
        "relengd_proxy_requests_total{path=\"a\\\"b\\\\c\\nd\",result=\"odd\"} 1\n"
        "relengd_proxy_requests_total{result=\"hit\"} 3\n"
        "relengd_proxy_requests_total{result=\"miss\"} 0.5\n";

    /* Registered out of order: families and series come out sorted. */
    hit = metrics_get(ms, RD_COUNTER, "proxy", "requests", "Requests served.", "result=hit");
    miss = metrics_get(ms, RD_COUNTER, "proxy", "requests", "ignored", "result=miss");
    odd = metrics_get(ms, RD_COUNTER, "proxy", "requests", NULL, "result=odd,path=a\"b\\c\nd");
    bytes = metrics_get(ms, RD_GAUGE, "proxy", "cache-bytes",
                        "Bytes in the cache, \\ and \n escaped.", NULL);
    diff = metrics_get(ms, RD_HISTOGRAM, "partials", "diff.time_seconds", "Time to diff one file.",
                       "platform=linux64");
    assert_non_null(hit);
    assert_non_null(miss);
    assert_non_null(odd);
    assert_non_null(bytes);
    assert_non_null(diff);
    assert_ptr_equal(hit->api, &test_api);

    metrics_add(hit, 2);
    metrics_add(hit, 1);
    metrics_add(hit, -5); /* counters only go up */
    metrics_add(miss, 0.5);
    metrics_add(odd, 1);
    metrics_set(bytes, 4096);
    metrics_add(bytes, -3072);
    metrics_observe(diff, 0.25); /* le is inclusive */
    metrics_observe(diff, 0.5);
    metrics_observe(diff, 100);
    metrics_set(hit, 100);     /* set is for gauges */
    metrics_observe(hit, 100); /* observe is for histograms */

    assert_true(metrics_value(hit) == 3.0);
    assert_true(metrics_value(bytes) == 1024.0);
    assert_true(metrics_value(diff) == 3.0);

    text = render_without_process(ms);
    assert_string_equal(text, expected);
    free(text);
}

static void test_bytes_buckets(void **state)
{
    struct metrics *ms = *state;
    struct rd_metric *m = metrics_get(ms, RD_HISTOGRAM, "proxy", "object_bytes", "Sizes.", NULL);
    char *text;

    assert_non_null(m);
    metrics_observe(m, 2000);
    metrics_observe(m, 1024);
    metrics_observe(m, 5e9);
    text = render_without_process(ms);
    assert_non_null(strstr(text, "relengd_proxy_object_bytes_bucket{le=\"1024\"} 1\n"
                                 "relengd_proxy_object_bytes_bucket{le=\"4096\"} 2\n"
                                 "relengd_proxy_object_bytes_bucket{le=\"16384\"} 2\n"));
    assert_non_null(strstr(text, "relengd_proxy_object_bytes_bucket{le=\"1073741824\"} 2\n"
                                 "relengd_proxy_object_bytes_bucket{le=\"+Inf\"} 3\n"
                                 "relengd_proxy_object_bytes_sum 5000003024\n"
                                 "relengd_proxy_object_bytes_count 3\n"));
    assert_null(strstr(text, "0.001"));
    free(text);
}

static void test_same_handle_and_conflicts(void **state)
{
    struct metrics *ms = *state;
    struct rd_metric *a, *b;

    a = metrics_get(ms, RD_COUNTER, "graph", "tasks", "Tasks.", "state=done,kind=build");
    b = metrics_get(ms, RD_COUNTER, "graph", "tasks", "Tasks.", "kind=build,state=done");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    /* "tasks_total" names the same family. */
    assert_ptr_equal(
        metrics_get(ms, RD_COUNTER, "graph", "tasks_total", NULL, "state=done,kind=build"), a);
    b = metrics_get(ms, RD_COUNTER, "graph", "tasks", "Tasks.", "state=failed,kind=build");
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(metrics_get(ms, RD_COUNTER, "graph", "tasks", NULL, NULL),
                     metrics_get(ms, RD_COUNTER, "graph", "tasks", NULL, ""));

    /* The same name with another kind. */
    assert_null(metrics_get(ms, RD_GAUGE, "graph", "tasks", NULL, "state=done,kind=build"));
    assert_null(metrics_get(ms, RD_HISTOGRAM, "graph", "tasks", NULL, NULL));
    /* Bad names, tags and kinds. */
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "1tasks", NULL, NULL));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "", NULL, NULL));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", NULL, NULL, NULL));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "ta sks", NULL, NULL));
    assert_null(metrics_get(ms, RD_COUNTER, "gr aph", "tasks2", NULL, NULL));
    assert_null(metrics_get(ms, (enum rd_metric_kind)7, "graph", "tasks3", NULL, NULL));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "bad-name=1"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "9a=1"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "a=1,a=2"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "a"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "=1"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "a=1,"));
    assert_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, ",a=1"));
    assert_null(metrics_get(ms, RD_HISTOGRAM, "graph", "y_seconds", NULL, "le=1"));
    /* A label value may hold '=' and be empty. */
    assert_non_null(metrics_get(ms, RD_COUNTER, "graph", "x", NULL, "a=b=c,d="));
    /* Module-less names (the core's own). */
    a = metrics_get(ms, RD_COUNTER, NULL, "webhook.deliveries", NULL, "webhook=w,result=ok");
    assert_non_null(a);
    metrics_add(a, 1);
    {
        char *text = render_without_process(ms);
        assert_non_null(
            strstr(text, "relengd_webhook_deliveries_total{result=\"ok\",webhook=\"w\"} 1\n"));
        free(text);
    }
}

static double sample_value(const char *text, const char *name)
{
    char needle[128];
    const char *p;

    snprintf(needle, sizeof(needle), "\n%s ", name);
    p = strstr(text, needle);
    assert_non_null(p);
    return strtod(p + strlen(needle), NULL);
}

static void test_process_figures(void **state)
{
    struct metrics *ms = *state;
    char *text = NULL;
    size_t len;
    double now = (double)time(NULL), start;

    assert_int_equal(metrics_render(ms, &text, &len), RD_OK);
    assert_non_null(strstr(text, "# TYPE relengd_process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE relengd_process_start_time_seconds gauge\n"));
    start = sample_value(text, "relengd_process_start_time_seconds");
    assert_true(start > now - 86400.0 * 30);
    assert_true(start <= now + 1);
    assert_true(sample_value(text, "relengd_process_cpu_seconds_total") >= 0);
    assert_true(sample_value(text, "relengd_process_resident_memory_bytes") > 1e5);
    assert_true(sample_value(text, "relengd_process_open_fds") >= 3);
    assert_true(sample_value(text, "relengd_process_threads") >= 1);
    /* Sorted: partials < process < proxy. */
    free(text);
    metrics_get(ms, RD_GAUGE, "proxy", "a", NULL, NULL);
    metrics_get(ms, RD_GAUGE, "partials", "a", NULL, NULL);
    assert_int_equal(metrics_render(ms, &text, &len), RD_OK);
    assert_true(strstr(text, "relengd_partials_a") < strstr(text, "relengd_process_"));
    assert_true(strstr(text, "relengd_process_threads") < strstr(text, "relengd_proxy_a"));
    free(text);
}

static void test_statsd_lines(void **state)
{
    struct metrics *ms = *state;
    struct rd_error err = {0};
    char buf[256];
    struct rd_metric *c, *g, *h_ms, *h, *plain;

    c = metrics_get(ms, RD_COUNTER, "proxy", "requests", NULL, "result=hit");
    g = metrics_get(ms, RD_GAUGE, "proxy", "cache.bytes", NULL, NULL);
    h_ms = metrics_get(ms, RD_HISTOGRAM, "partials", "diff.time_seconds", NULL, "platform=linux64");
    h = metrics_get(ms, RD_HISTOGRAM, "proxy", "object_bytes", NULL, "kind=mar");
    plain = metrics_get(ms, RD_COUNTER, "proxy", "errors_total", NULL, "why=a|b#c");
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h_ms);
    assert_non_null(h);
    assert_non_null(plain);

    /* The example from the issue: namespace, no global tags. */
    assert_int_equal(metrics_statsd(ms, NULL, "releng", NULL, &err), RD_OK);
    assert_int_equal(metrics_statsd_line(ms, h_ms, 0.012, buf, sizeof(buf)),
                     (int)strlen("releng.partials.diff.time:12|ms|#platform:linux64"));
    assert_string_equal(buf, "releng.partials.diff.time:12|ms|#platform:linux64");

    /* Global tags are appended after the metric's own. */
    assert_int_equal(metrics_statsd(ms, "", "releng", "env:ci,region:eu", &err), RD_OK);
    assert_true(metrics_statsd_line(ms, c, 1, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "releng.proxy.requests:1|c|#result:hit,env:ci,region:eu");
    assert_true(metrics_statsd_line(ms, g, 2048.5, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "releng.proxy.cache.bytes:2048.5|g|#env:ci,region:eu");
    assert_true(metrics_statsd_line(ms, h, 4096, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "releng.proxy.object_bytes:4096|h|#kind:mar,env:ci,region:eu");
    assert_true(metrics_statsd_line(ms, h_ms, 1.5, buf, sizeof(buf)) > 0);
    assert_string_equal(buf,
                        "releng.partials.diff.time:1500|ms|#platform:linux64,env:ci,region:eu");
    /* Tag values are made safe for the line format; _total is not sent. */
    assert_true(metrics_statsd_line(ms, plain, 3, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "releng.proxy.errors:3|c|#why:a_b_c,env:ci,region:eu");

    /* No namespace, no tags at all. */
    assert_int_equal(metrics_statsd(ms, NULL, NULL, NULL, &err), RD_OK);
    assert_true(metrics_statsd_line(ms, g, 7, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "proxy.cache.bytes:7|g");

    /* Too small a buffer, non-finite values. */
    assert_true(metrics_statsd_line(ms, g, 7, buf, 5) < 0);
    assert_true(metrics_statsd_line(ms, g, 1.0 / 0.0, buf, sizeof(buf)) < 0);

    /* Bad settings. */
    assert_int_equal(metrics_statsd(ms, "nocolon", "releng", NULL, &err), RD_EINVAL);
    assert_non_null(strstr(err.msg, "nocolon"));
    assert_int_equal(metrics_statsd(ms, "127.0.0.1:http", "releng", NULL, &err), RD_EINVAL);
    assert_int_equal(metrics_statsd(ms, "127.0.0.1:8125", "rel eng", NULL, &err), RD_EINVAL);
    assert_int_equal(metrics_statsd(ms, "127.0.0.1:8125", "releng", "a:b|c", &err), RD_EINVAL);
    assert_int_equal(metrics_statsd(ms, "[::1:8125", "releng", NULL, &err), RD_EINVAL);
}

/* Waits up to 2 s for one datagram on fd. */
static void recv_line(int fd, char *buf, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;

    assert_int_equal(poll(&p, 1, 2000), 1);
    n = recv(fd, buf, len - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
}

static void test_statsd_udp(void **state)
{
    struct metrics *ms = *state;
    struct rd_error err = {0};
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    char addr[64], buf[512];
    struct rd_metric *c, *h;
    int fd;

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

    c = metrics_get(ms, RD_COUNTER, "partials", "diffs", NULL, "platform=linux64");
    h = metrics_get(ms, RD_HISTOGRAM, "partials", "diff.time_seconds", NULL, "platform=linux64");
    assert_int_equal(metrics_statsd(ms, addr, "releng", "host:ci1", &err), RD_OK);
    metrics_add(c, 2);
    recv_line(fd, buf, sizeof(buf));
    assert_string_equal(buf, "releng.partials.diffs:2|c|#platform:linux64,host:ci1");
    metrics_observe(h, 0.012);
    recv_line(fd, buf, sizeof(buf));
    assert_string_equal(buf, "releng.partials.diff.time:12|ms|#platform:linux64,host:ci1");

    /* Turned off: nothing more is sent, updates still count. */
    assert_int_equal(metrics_statsd(ms, NULL, "releng", NULL, &err), RD_OK);
    metrics_add(c, 1);
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 50), 0);
    }
    assert_true(metrics_value(c) == 3.0);

    /* A receiver that went away never fails or blocks the caller. */
    assert_int_equal(metrics_statsd(ms, addr, "releng", NULL, &err), RD_OK);
    close(fd);
    for (int i = 0; i < 100; i++)
        metrics_add(c, 1);
    assert_true(metrics_value(c) == 103.0);
}

struct hammer {
    struct rd_metric *c, *g, *h;
};

static void *hammer_run(void *arg)
{
    struct hammer *hm = arg;

    for (int i = 0; i < 10000; i++) {
        metrics_add(hm->c, 1);
        metrics_add(hm->g, 0.5);
        metrics_observe(hm->h, 0.002);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    struct metrics *ms = *state;
    struct hammer hm;
    pthread_t t[4];
    char *text;

    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    struct rd_error err = {0};
    char addr[64];
    int fd;

    /* A receiver that never reads: its buffer fills, sends are dropped. */
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

    hm.c = metrics_get(ms, RD_COUNTER, "t", "c", NULL, NULL);
    hm.g = metrics_get(ms, RD_GAUGE, "t", "g", NULL, NULL);
    hm.h = metrics_get(ms, RD_HISTOGRAM, "t", "h_seconds", NULL, NULL);
    assert_int_equal(metrics_statsd(ms, addr, "releng", NULL, &err), RD_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &hm), 0);
    /* Reconfiguring StatsD and rendering while updates run. */
    for (int i = 0; i < 20; i++) {
        char *snapshot = NULL;
        size_t len;
        assert_int_equal(metrics_statsd(ms, (i % 2) ? addr : NULL, "releng", "k:v", &err), RD_OK);
        assert_int_equal(metrics_render(ms, &snapshot, &len), RD_OK);
        free(snapshot);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    close(fd);
    assert_true(metrics_value(hm.c) == 40000.0);
    assert_true(metrics_value(hm.g) == 20000.0);
    assert_true(metrics_value(hm.h) == 40000.0);
    text = render_without_process(ms);
    assert_non_null(strstr(text, "relengd_t_h_seconds_bucket{le=\"0.001\"} 0\n"
                                 "relengd_t_h_seconds_bucket{le=\"0.005\"} 40000\n"));
    assert_non_null(strstr(text, "relengd_t_h_seconds_count 40000\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_handle_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statsd_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statsd_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
