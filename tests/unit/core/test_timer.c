/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/core/test_timer.c -- core/timer.c on a real libevent loop:
 * one-shot timers fire once and keep their handle, repeating timers repeat,
 * cancel from inside a callback is safe, dropping an owner cancels only its
 * timers (also from inside one of them), timers_free frees what is left.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/timer.h"

static const struct rd_host_api test_api = {.abi = RD_MODULE_ABI,
                                            .size = sizeof(struct rd_host_api)};

struct fixture {
    struct event_base *base;
    struct timers *ts;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    fx->base = event_base_new();
    if (!fx->base || timers_new(fx->base, &test_api, &fx->ts) != RD_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    timers_free(fx->ts);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct fixture *fx, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct probe {
    struct fixture *fx;
    int fired;
    int cancel_at; /* cancel own handle on this firing (0: never) */
    struct rd_timer *self;
    void *drop_owner; /* drop this owner on the first firing */
    bool drop;
    uint64_t first_ms;
};

static void on_fire(void *arg)
{
    struct probe *p = arg;

    p->fired++;
    if (p->fired == 1)
        p->first_ms = now_ms();
    if (p->cancel_at && p->fired == p->cancel_at) {
        timers_cancel(p->self);
        p->self = NULL;
    }
    if (p->drop && p->fired == 1)
        timers_drop_owner(p->fx->ts, p->drop_owner);
    if (p->fired >= 5)
        event_base_loopbreak(p->fx->base);
}

static void test_one_shot(void **state)
{
    struct fixture *fx = *state;
    struct probe p = {.fx = fx};
    uint64_t t0 = now_ms();
    struct rd_timer *t = timers_add(fx->ts, NULL, 30, false, on_fire, &p);

    assert_non_null(t);
    assert_ptr_equal(t->api, &test_api);
    run_for(fx, 15);
    assert_int_equal(p.fired, 0);
    run_for(fx, 100);
    assert_int_equal(p.fired, 1);
    assert_true(p.first_ms - t0 >= 29);
    run_for(fx, 30);
    assert_int_equal(p.fired, 1);
    /* The handle is still valid after firing: cancel frees it. */
    timers_cancel(t);
    timers_cancel(NULL);
}

static void test_zero_ms_one_shot(void **state)
{
    struct fixture *fx = *state;
    struct probe p = {.fx = fx};

    assert_non_null(timers_add(fx->ts, NULL, 0, false, on_fire, &p));
    run_for(fx, 10);
    assert_int_equal(p.fired, 1);
    /* left for timers_free */
}

static void test_repeat(void **state)
{
    struct fixture *fx = *state;
    struct probe p = {.fx = fx};
    uint64_t deadline = now_ms() + 5000;
    struct rd_timer *t = timers_add(fx->ts, NULL, 5, true, on_fire, &p);

    assert_non_null(t);
    /* on_fire breaks the loop at 5 firings */
    while (p.fired < 5 && now_ms() < deadline)
        run_for(fx, 100);
    assert_int_equal(p.fired, 5);
    timers_cancel(t);
    run_for(fx, 30);
    assert_int_equal(p.fired, 5);
}

static void test_cancel_inside_callback(void **state)
{
    struct fixture *fx = *state;
    struct probe rep = {.fx = fx, .cancel_at = 3};
    struct probe once = {.fx = fx, .cancel_at = 1};

    rep.self = timers_add(fx->ts, NULL, 2, true, on_fire, &rep);
    once.self = timers_add(fx->ts, NULL, 1, false, on_fire, &once);
    assert_non_null(rep.self);
    assert_non_null(once.self);
    run_for(fx, 60);
    assert_int_equal(rep.fired, 3);
    assert_null(rep.self);
    assert_int_equal(once.fired, 1);
    assert_null(once.self);
}

static void test_cancel_before_firing(void **state)
{
    struct fixture *fx = *state;
    struct probe p = {.fx = fx};
    struct rd_timer *t = timers_add(fx->ts, NULL, 5, false, on_fire, &p);

    timers_cancel(t);
    run_for(fx, 20);
    assert_int_equal(p.fired, 0);
}

static void test_drop_owner(void **state)
{
    struct fixture *fx = *state;
    int owner_a, owner_b;
    struct probe a1 = {.fx = fx}, a2 = {.fx = fx}, b = {.fx = fx};

    assert_non_null(timers_add(fx->ts, &owner_a, 5, true, on_fire, &a1));
    assert_non_null(timers_add(fx->ts, &owner_a, 10, false, on_fire, &a2));
    assert_non_null(timers_add(fx->ts, &owner_b, 10, false, on_fire, &b));
    timers_drop_owner(fx->ts, &owner_a);
    timers_drop_owner(fx->ts, &owner_a); /* nothing left: no-op */
    timers_drop_owner(NULL, &owner_a);
    run_for(fx, 40);
    assert_int_equal(a1.fired, 0);
    assert_int_equal(a2.fired, 0);
    assert_int_equal(b.fired, 1);
}

static void test_drop_owner_inside_callback(void **state)
{
    struct fixture *fx = *state;
    int owner;
    struct probe self = {.fx = fx, .drop = true, .drop_owner = &owner};
    struct probe other = {.fx = fx};

    assert_non_null(timers_add(fx->ts, &owner, 2, true, on_fire, &self));
    assert_non_null(timers_add(fx->ts, &owner, 30, false, on_fire, &other));
    run_for(fx, 60);
    /* The callback dropped its own owner, itself included. */
    assert_int_equal(self.fired, 1);
    assert_int_equal(other.fired, 0);
}

static void test_bad_args_and_free(void **state)
{
    struct fixture *fx = *state;
    struct timers *ts = NULL;
    struct probe p = {.fx = fx};

    assert_null(timers_add(fx->ts, NULL, 5, false, NULL, NULL));
    assert_null(timers_add(NULL, NULL, 5, false, on_fire, &p));
    assert_int_equal(timers_new(NULL, &test_api, &ts), RD_EINVAL);
    /* timers_free frees pending timers (LeakSanitizer/valgrind check it) */
    assert_int_equal(timers_new(fx->base, &test_api, &ts), RD_OK);
    assert_non_null(timers_add(ts, NULL, 1000, false, on_fire, &p));
    assert_non_null(timers_add(ts, NULL, 1000, true, on_fire, &p));
    assert_non_null(timers_add(ts, NULL, 0, true, on_fire, &p)); /* 0 ms repeat: 1 ms */
    run_for(fx, 20);
    assert_true(p.fired >= 3);
    timers_free(ts);
    timers_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_ms_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_firing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_owner_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args_and_free, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
