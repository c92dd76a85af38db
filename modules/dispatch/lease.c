/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/lease.c -- lease and expiry arithmetic (see lease.h).
 * No host calls; tested in tables of cases.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>

#include "modules/dispatch/lease.h"

uint64_t dispatch_lease_until(uint64_t now_ms, uint64_t lease_ms, uint64_t deadline_ms)
{
    uint64_t until = lease_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + lease_ms;

    if (deadline_ms != 0 && until > deadline_ms)
        until = deadline_ms;
    return until;
}

uint64_t dispatch_run_due(uint64_t taken_until_ms, uint64_t deadline_ms)
{
    if (taken_until_ms == 0)
        return deadline_ms;
    if (deadline_ms == 0)
        return taken_until_ms;
    return taken_until_ms < deadline_ms ? taken_until_ms : deadline_ms;
}

const char *dispatch_expiry_reason(uint64_t now_ms, int is_claimed, uint64_t taken_until_ms,
                                   uint64_t deadline_ms)
{
    if (deadline_ms != 0 && now_ms >= deadline_ms)
        return "deadline-exceeded";
    if (is_claimed && now_ms >= taken_until_ms)
        return "claim-expired";
    return NULL;
}

uint64_t dispatch_delay_until(uint64_t now_ms, uint64_t due_ms)
{
    return due_ms > now_ms ? due_ms - now_ms : 0;
}

uint64_t dispatch_wait_ms(double requested_s, uint64_t max_ms)
{
    double ms;

    if (!(requested_s > 0)) /* also NaN */
        return 0;
    ms = requested_s * 1000.0;
    if (ms >= (double)max_ms)
        return max_ms;
    return (uint64_t)ms;
}
