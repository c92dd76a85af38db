/* SPDX-License-Identifier: MIT */
/*
 * modules/dispatch/lease.h -- lease and expiry arithmetic: when a lease
 * ends, what is due when, why a run expired, how long a long-poll may wait.
 * Pure functions (no host calls), any thread. Times are ms since the epoch;
 * 0 means "none" for deadlines.
 */
#ifndef RELENGD_DISPATCH_LEASE_H
#define RELENGD_DISPATCH_LEASE_H

#include <stdint.h>

/* The end of a lease granted at now for lease_ms, never past the run's
   deadline (a run cannot be held beyond it); saturates instead of wrapping. */
uint64_t dispatch_lease_until(uint64_t now_ms, uint64_t lease_ms, uint64_t deadline_ms);

/* When a claimed run next needs the expiry timer: the earlier of its lease
   end and its deadline (0 = none). */
uint64_t dispatch_run_due(uint64_t taken_until_ms, uint64_t deadline_ms);

/* Why a run is due at now: "deadline-exceeded" when its deadline passed,
   else "claim-expired" when claimed and its lease ended, else NULL (not
   due). A static string. */
const char *dispatch_expiry_reason(uint64_t now_ms, int is_claimed, uint64_t taken_until_ms,
                                   uint64_t deadline_ms);

/* The timer delay to reach due_ms from now_ms (0 if already due). */
uint64_t dispatch_delay_until(uint64_t now_ms, uint64_t due_ms);

/* A long-poll's wait: the requested seconds (may be fractional, negative
   counts as 0), capped at max_ms, in ms. */
uint64_t dispatch_wait_ms(double requested_s, uint64_t max_ms);

#endif
