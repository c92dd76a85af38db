/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/graph/test_state.c -- the task state machine
 * (modules/graph/state.c), directly: every (from, to) pair against the
 * expected table, readiness (all-completed vs all-resolved, breakpoints,
 * final tasks), reported results and which exceptions are retried, and a
 * graph's outcome.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "modules/graph/state.h"

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < GS_N; i++) {
        const char *n = graph_state_name((enum graph_state)i);
        assert_non_null(n);
        assert_int_equal(graph_state_parse(n), i);
    }
    assert_null(graph_state_name(GS_N));
    assert_int_equal(graph_state_parse("nope"), GS_N);
    assert_int_equal(graph_state_parse(NULL), GS_N);
}

/* Every pair: exactly these transitions are legal. */
static void test_every_transition(void **state)
{
    static const struct {
        enum graph_state from, to;
    } legal[] = {
        {GS_UNSCHEDULED, GS_PENDING},    {GS_UNSCHEDULED, GS_WAITING},
        {GS_UNSCHEDULED, GS_BLOCKED},    {GS_UNSCHEDULED, GS_EXCEPTION},
        {GS_UNSCHEDULED, GS_SUPERSEDED}, {GS_PENDING, GS_RUNNING},
        {GS_PENDING, GS_EXCEPTION},      {GS_PENDING, GS_SUPERSEDED},
        {GS_RUNNING, GS_COMPLETED},      {GS_RUNNING, GS_FAILED},
        {GS_RUNNING, GS_EXCEPTION},      {GS_RUNNING, GS_PENDING},
        {GS_COMPLETED, GS_PENDING},      {GS_COMPLETED, GS_WAITING},
        {GS_FAILED, GS_PENDING},         {GS_FAILED, GS_WAITING},
        {GS_EXCEPTION, GS_PENDING},      {GS_EXCEPTION, GS_WAITING},
        {GS_BLOCKED, GS_UNSCHEDULED},    {GS_INACTIVE, GS_UNSCHEDULED},
        {GS_INACTIVE, GS_EXCEPTION},     {GS_INACTIVE, GS_SUPERSEDED},
        {GS_WAITING, GS_COMPLETED},      {GS_WAITING, GS_FAILED},
        {GS_WAITING, GS_EXCEPTION},
    };
    (void)state;
    for (int f = 0; f < GS_N; f++)
        for (int t = 0; t < GS_N; t++) {
            bool want = false;
            for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
                if (legal[i].from == (enum graph_state)f && legal[i].to == (enum graph_state)t)
                    want = true;
            if (graph_transition_ok((enum graph_state)f, (enum graph_state)t) != want)
                fail_msg("%s -> %s: want %s", graph_state_name((enum graph_state)f),
                         graph_state_name((enum graph_state)t), want ? "legal" : "illegal");
        }
    assert_false(graph_transition_ok(GS_N, GS_PENDING));
    assert_false(graph_transition_ok(GS_PENDING, GS_N));
    /* nothing leaves superseded */
    for (int t = 0; t < GS_N; t++)
        assert_false(graph_transition_ok(GS_SUPERSEDED, (enum graph_state)t));
}

static void test_resolved_and_busy(void **state)
{
    (void)state;
    for (int i = 0; i < GS_N; i++) {
        enum graph_state s = (enum graph_state)i;
        bool resolved = s == GS_COMPLETED || s == GS_FAILED || s == GS_EXCEPTION ||
                        s == GS_BLOCKED || s == GS_SUPERSEDED;
        bool busy = s == GS_PENDING || s == GS_RUNNING || s == GS_WAITING;
        assert_int_equal(graph_state_resolved(s), resolved);
        assert_int_equal(graph_state_busy(s), busy);
    }
}

static void test_ready(void **state)
{
    static const struct {
        enum graph_requires req;
        bool bp, fin, released;
        int64_t left, failed;
        enum graph_state want;
    } cases[] = {
        /* all-completed */
        {GRAPH_REQ_ALL_COMPLETED, false, false, false, 2, 0, GS_UNSCHEDULED},
        {GRAPH_REQ_ALL_COMPLETED, false, false, false, 0, 0, GS_PENDING},
        {GRAPH_REQ_ALL_COMPLETED, false, false, false, 1, 1, GS_BLOCKED}, /* at once */
        {GRAPH_REQ_ALL_COMPLETED, false, false, false, 0, 1, GS_BLOCKED},
        /* all-resolved: failures do not block */
        {GRAPH_REQ_ALL_RESOLVED, false, false, false, 1, 1, GS_UNSCHEDULED},
        {GRAPH_REQ_ALL_RESOLVED, false, false, false, 0, 2, GS_PENDING},
        {GRAPH_REQ_ALL_RESOLVED, false, false, false, 0, 0, GS_PENDING},
        /* breakpoints wait instead of running */
        {GRAPH_REQ_ALL_COMPLETED, true, false, false, 0, 0, GS_WAITING},
        {GRAPH_REQ_ALL_COMPLETED, true, false, false, 1, 0, GS_UNSCHEDULED},
        {GRAPH_REQ_ALL_COMPLETED, true, false, false, 0, 1, GS_BLOCKED},
        /* final tasks wait for the graph, whatever failed */
        {GRAPH_REQ_ALL_COMPLETED, false, true, false, 0, 0, GS_UNSCHEDULED},
        {GRAPH_REQ_ALL_COMPLETED, false, true, true, 0, 0, GS_PENDING},
        {GRAPH_REQ_ALL_COMPLETED, false, true, true, 0, 3, GS_PENDING},
        {GRAPH_REQ_ALL_COMPLETED, true, true, true, 0, 0, GS_WAITING},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph_ready_in in = {cases[i].req,      cases[i].bp,   cases[i].fin,
                                    cases[i].released, cases[i].left, cases[i].failed};
        enum graph_state got = graph_ready_state(&in);
        if (got != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, graph_state_name(got),
                     graph_state_name(cases[i].want));
    }
}

static void test_reports(void **state)
{
    static const struct {
        const char *state, *reason;
        enum graph_state want;
        bool retried;
    } cases[] = {
        {"completed", "completed", GS_COMPLETED, false},
        {"completed", NULL, GS_COMPLETED, false},
        {"completed", "failed", GS_N, false},
        {"failed", "failed", GS_FAILED, false},
        {"failed", NULL, GS_FAILED, false},
        {"exception", "claim-expired", GS_EXCEPTION, true},
        {"exception", "worker-shutdown", GS_EXCEPTION, true},
        {"exception", "intermittent-task", GS_EXCEPTION, true},
        {"exception", "deadline-exceeded", GS_EXCEPTION, false},
        {"exception", "malformed-payload", GS_EXCEPTION, false},
        {"exception", "internal-error", GS_EXCEPTION, false},
        {"exception", NULL, GS_N, false},
        {"exception", "canceled", GS_N, false},
        {"running", NULL, GS_N, false},
        {NULL, NULL, GS_N, false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(graph_report_state(cases[i].state, cases[i].reason), cases[i].want);
        if (cases[i].reason)
            assert_int_equal(graph_reason_retried(cases[i].reason), cases[i].retried);
    }
    assert_false(graph_reason_retried(NULL));
}

static void test_outcome(void **state)
{
    int64_t c[GS_N] = {0};

    (void)state;
    c[GS_COMPLETED] = 5;
    c[GS_SUPERSEDED] = 2;
    c[GS_INACTIVE] = 1;
    assert_string_equal(graph_outcome(c), "completed");
    c[GS_BLOCKED] = 1;
    assert_string_equal(graph_outcome(c), "failed");
    c[GS_BLOCKED] = 0;
    c[GS_EXCEPTION] = 1;
    assert_string_equal(graph_outcome(c), "failed");
    c[GS_EXCEPTION] = 0;
    c[GS_FAILED] = 1;
    assert_string_equal(graph_outcome(c), "failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_every_transition),
        cmocka_unit_test(test_resolved_and_busy),
        cmocka_unit_test(test_ready),
        cmocka_unit_test(test_reports),
        cmocka_unit_test(test_outcome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
