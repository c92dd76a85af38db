/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_loopq_pool.c -- core/loopq.c and core/pool.c on a real
 * libevent loop: callbacks pushed from other threads run on the loop thread
 * in order; pool work runs on pool threads and done on the loop thread,
 * each exactly once; pool_stop drains queued work; pool_busy counts.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "core/loopq.h"
#include "core/pool.h"

struct fixture {
    struct event_base *base;
    struct loopq *q;
    struct pool *pool;
    struct event *tick;
    pthread_t loop_thread;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct timeval tv = {0, 10000};

    if (!fx)
        return -1;
    fx->base = event_base_new();
    if (!fx->base || loopq_new(fx->base, &fx->q) != RD_OK)
        return -1;
    if (pool_new(4, fx->q, &fx->pool) != RD_OK)
        return -1;
    /* A periodic tick keeps event_base_loop(EVLOOP_ONCE) from returning at
       once when nothing else is pending, so run_until can check its clock. */
    fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
    if (!fx->tick || event_add(fx->tick, &tv) != 0)
        return -1;
    fx->loop_thread = pthread_self();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    pool_free(fx->pool);
    loopq_free(fx->q);
    event_free(fx->tick);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until *counter reaches target or 10 s pass. */
static void run_until(struct fixture *fx, atomic_int *counter, int target)
{
    uint64_t deadline = now_ms() + 10000;

    while (atomic_load(counter) < target && now_ms() < deadline)
        event_base_loop(fx->base, EVLOOP_ONCE);
    assert_int_equal(atomic_load(counter), target);
}

/* ------------------------------------------------------------- loopq */

struct order_rec {
    int seen[64];
    atomic_int n;
    pthread_t loop_thread;
    bool wrong_thread;
};

struct order_arg {
    struct order_rec *rec;
    int value;
};

static void record_order(void *arg)
{
    struct order_arg *oa = arg;
    int i = atomic_load(&oa->rec->n);

    if (!pthread_equal(pthread_self(), oa->rec->loop_thread))
        oa->rec->wrong_thread = true;
    oa->rec->seen[i] = oa->value;
    atomic_store(&oa->rec->n, i + 1);
}

struct pusher {
    struct loopq *q;
    struct order_arg *args;
    int n;
    int failures; /* cmocka asserts belong on the main thread */
};

static void *push_from_thread(void *arg)
{
    struct pusher *p = arg;

    for (int i = 0; i < p->n; i++)
        if (loopq_push(p->q, record_order, &p->args[i]) != RD_OK)
            p->failures++;
    return NULL;
}

static void test_loopq_order_and_thread(void **state)
{
    struct fixture *fx = *state;
    struct order_rec rec = {.loop_thread = fx->loop_thread};
    struct order_arg args[50];
    struct pusher p = {.q = fx->q, .args = args, .n = 50};
    pthread_t t;

    for (int i = 0; i < 50; i++) {
        args[i].rec = &rec;
        args[i].value = i;
    }
    assert_int_equal(pthread_create(&t, NULL, push_from_thread, &p), 0);
    run_until(fx, &rec.n, 50);
    pthread_join(t, NULL);
    assert_int_equal(p.failures, 0);
    assert_false(rec.wrong_thread);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rec.seen[i], i);
}

static void test_loopq_free_runs_queued(void **state)
{
    struct fixture *fx = *state;
    struct order_rec rec = {.loop_thread = fx->loop_thread};
    struct order_arg args[3];
    struct loopq *q = NULL;

    assert_int_equal(loopq_new(fx->base, &q), RD_OK);
    for (int i = 0; i < 3; i++) {
        args[i].rec = &rec;
        args[i].value = 10 + i;
        assert_int_equal(loopq_push(q, record_order, &args[i]), RD_OK);
    }
    loopq_free(q); /* runs what is queued */
    assert_int_equal(atomic_load(&rec.n), 3);
    assert_int_equal(rec.seen[2], 12);
    loopq_free(NULL);
}

/* -------------------------------------------------------------- pool */

struct job_set {
    atomic_int work_runs[1000];
    atomic_int done_runs[1000];
    atomic_int n_done;
    atomic_int wrong_thread; /* work on the loop thread, or done off it */
    pthread_t loop_thread;
};

struct job {
    struct job_set *set;
    int i;
};

static void job_work(void *arg)
{
    struct job *j = arg;

    if (pthread_equal(pthread_self(), j->set->loop_thread))
        atomic_fetch_add(&j->set->wrong_thread, 1);
    atomic_fetch_add(&j->set->work_runs[j->i], 1);
}

static void job_done(void *arg)
{
    struct job *j = arg;

    if (!pthread_equal(pthread_self(), j->set->loop_thread))
        atomic_fetch_add(&j->set->wrong_thread, 1);
    /* done comes after work, never before */
    assert_int_equal(atomic_load(&j->set->work_runs[j->i]), 1);
    atomic_fetch_add(&j->set->done_runs[j->i], 1);
    atomic_fetch_add(&j->set->n_done, 1);
}

static struct job_set *job_set_new(struct fixture *fx, struct job **jobs)
{
    struct job_set *set = calloc(1, sizeof(*set));

    assert_non_null(set);
    set->loop_thread = fx->loop_thread;
    *jobs = calloc(1000, sizeof(**jobs));
    assert_non_null(*jobs);
    for (int i = 0; i < 1000; i++) {
        (*jobs)[i].set = set;
        (*jobs)[i].i = i;
    }
    return set;
}

static void test_pool_1000_items(void **state)
{
    struct fixture *fx = *state;
    struct job *jobs;
    struct job_set *set = job_set_new(fx, &jobs);

    for (int i = 0; i < 1000; i++)
        assert_int_equal(pool_submit(fx->pool, job_work, job_done, &jobs[i]), RD_OK);
    run_until(fx, &set->n_done, 1000);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(atomic_load(&set->work_runs[i]), 1);
        assert_int_equal(atomic_load(&set->done_runs[i]), 1);
    }
    assert_int_equal(atomic_load(&set->wrong_thread), 0);
    assert_int_equal(pool_busy(fx->pool), 0);
    free(jobs);
    free(set);
}

static void test_pool_done_on_loop_thread(void **state)
{
    struct fixture *fx = *state;
    struct job *jobs;
    struct job_set *set = job_set_new(fx, &jobs);

    /* done without work runs straight on the loop thread via the queue */
    set->work_runs[0] = 1;
    assert_int_equal(pool_submit(fx->pool, NULL, job_done, &jobs[0]), RD_OK);
    assert_int_equal(pool_submit(fx->pool, job_work, job_done, &jobs[1]), RD_OK);
    run_until(fx, &set->n_done, 2);
    assert_int_equal(atomic_load(&set->wrong_thread), 0);
    /* work without done */
    assert_int_equal(pool_submit(fx->pool, job_work, NULL, &jobs[2]), RD_OK);
    assert_int_equal(pool_submit(fx->pool, NULL, NULL, &jobs[3]), RD_EINVAL);
    pool_stop(fx->pool);
    assert_int_equal(atomic_load(&set->work_runs[2]), 1);
    free(jobs);
    free(set);
}

static void test_pool_stop_drains(void **state)
{
    struct fixture *fx = *state;
    struct job *jobs;
    struct job_set *set = job_set_new(fx, &jobs);

    for (int i = 0; i < 500; i++)
        assert_int_equal(pool_submit(fx->pool, job_work, job_done, &jobs[i]), RD_OK);
    pool_stop(fx->pool); /* queued work still runs */
    assert_int_equal(pool_busy(fx->pool), 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(atomic_load(&set->work_runs[i]), 1);
    assert_int_equal(pool_submit(fx->pool, job_work, job_done, &jobs[500]), RD_EUNAVAIL);
    pool_stop(fx->pool); /* twice is fine */
    /* the done callbacks wait on the loopq */
    loopq_drain(fx->q);
    assert_int_equal(atomic_load(&set->n_done), 500);
    for (int i = 0; i < 500; i++)
        assert_int_equal(atomic_load(&set->done_runs[i]), 1);
    assert_int_equal(atomic_load(&set->work_runs[500]), 0);
    assert_int_equal(atomic_load(&set->wrong_thread), 0);
    free(jobs);
    free(set);
}

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int entered;
    atomic_int n_done;
};

static void gate_work(void *arg)
{
    struct gate *g = arg;

    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_done(void *arg)
{
    struct gate *g = arg;
    atomic_fetch_add(&g->n_done, 1);
}

static void test_pool_busy(void **state)
{
    struct fixture *fx = *state;
    struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    uint64_t deadline = now_ms() + 10000;

    assert_int_equal(pool_busy(fx->pool), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pool_submit(fx->pool, gate_work, gate_done, &g), RD_OK);
    /* 4 threads hold 4 items; 6 wait in the queue: all 10 are busy */
    while (atomic_load(&g.entered) < 4 && now_ms() < deadline)
        sched_yield();
    assert_int_equal(atomic_load(&g.entered), 4);
    assert_int_equal(pool_busy(fx->pool), 10);
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    run_until(fx, &g.n_done, 10);
    /* A worker counts its item busy until after its done is queued, so the
       last done may run a moment before the count drops: wait for it. */
    while (pool_busy(fx->pool) != 0 && now_ms() < deadline)
        sched_yield();
    assert_int_equal(pool_busy(fx->pool), 0);
    assert_int_equal(pool_busy(NULL), 0);
}

static void test_pool_bad_args(void **state)
{
    struct fixture *fx = *state;
    struct pool *p = (struct pool *)&p;

    assert_int_equal(pool_new(0, fx->q, &p), RD_EINVAL);
    assert_null(p);
    assert_int_equal(pool_new(2, NULL, &p), RD_EINVAL);
    assert_int_equal(pool_submit(NULL, job_work, NULL, NULL), RD_EINVAL);
    pool_stop(NULL);
    pool_free(NULL);
    /* a pool freed with work queued runs the work, and its dones are queued */
    {
        struct job *jobs;
        struct job_set *set = job_set_new(fx, &jobs);
        assert_int_equal(pool_new(1, fx->q, &p), RD_OK);
        for (int i = 0; i < 20; i++)
            assert_int_equal(pool_submit(p, job_work, job_done, &jobs[i]), RD_OK);
        pool_free(p);
        loopq_drain(fx->q);
        assert_int_equal(atomic_load(&set->n_done), 20);
        free(jobs);
        free(set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loopq_order_and_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopq_free_runs_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_1000_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_done_on_loop_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_stop_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_bad_args, setup, teardown),
    };

    /* Threads make loopq_push activate the event from other threads. */
    int rc;

    if (evthread_use_pthreads() != 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown();
    return rc;
}
