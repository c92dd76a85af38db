/* SPDX-License-Identifier: MIT */
/*
 * core/bus.h -- the event bus. Events are rows of core_events (id INTEGER
 * PRIMARY KEY AUTOINCREMENT: increasing, never reused); an envelope is
 * {"id":N,"type":"task.resolved","time":"2026-11-22T10:34:25.123Z",
 *  "source":"graph","data":{...}}. After a commit, the bus fans envelopes out
 * to subscribers on the loop thread (in id order) and wakes SSE/long-poll
 * waiters, who read the table from their last id: no gap, no duplicate.
 */
#ifndef RELENGD_BUS_H
#define RELENGD_BUS_H

#include "core/loopq.h"
#include "core/module.h"
#include "core/store.h"

struct bus;

int bus_new(struct loopq *q, struct bus **out);
void bus_free(struct bus *b);

/* In a write transaction: inserts the event; *env_out (new reference) is its
   envelope. Steals data (must be a JSON object). type must be
   [a-z0-9_-]+(\.[a-z0-9_-]+)*, at most 64 bytes: RD_EINVAL otherwise. */
int bus_event_insert(sqlite3 *db, const char *source, const char *type, json_t *data,
                     json_t **env_out);
/* The store's commit hook (arg = bus). Any thread. */
void bus_committed(void *bus, const json_t *envelopes);
/* Sets the last id at start (from the table) so waiters start right. */
void bus_set_last_id(struct bus *b, uint64_t id);
uint64_t bus_last_id(struct bus *b);

/* Loop-thread subscribers; owner lets the host drop a module's subscriptions. */
int bus_subscribe(struct bus *b, void *owner, const char *pattern, rd_event_fn fn, void *arg);
void bus_unsubscribe_owner(struct bus *b, void *owner);

/* "*" matches all; "task" matches "task" and "task.*"; "task.res*" is a prefix.
   filter: comma-separated patterns, NULL or "" matches all. */
bool bus_type_match(const char *pattern, const char *type);
bool bus_filter_match(const char *filter, const char *type);
/* Whether every comma-separated pattern of filter (spaces around items are
   ignored) is "*" or [a-z0-9_.-]+ optionally ending in '*', and filter is at
   most BUS_FILTER_MAX bytes. NULL and "" are valid. For checking ?type=. */
#define BUS_FILTER_MAX 1024
bool bus_filter_valid(const char *filter);

/* Envelopes with id > after matching filter, oldest first, at most limit,
   into *out (new array). Any thread (uses a read transaction). */
int bus_read_after(struct store *s, uint64_t after, const char *filter, size_t limit, json_t **out);
/* bus_read_after that also sets *scanned_out (NULL-safe) to the largest id it
   examined (>= after): a reader with a filter continues from there, so the
   events that did not match are not scanned again. */
int bus_read_after_scan(struct store *s, uint64_t after, const char *filter, size_t limit,
                        json_t **out, uint64_t *scanned_out);
/* The largest event id in the table (0 if empty). */
int bus_max_id(struct store *s, uint64_t *out);

/* Blocks the calling (HTTP) thread until an event with id > after is
   committed, timeout_ms passes, or bus_shutdown; returns the last id. */
uint64_t bus_wait(struct bus *b, uint64_t after, uint64_t timeout_ms);
/* Wakes every waiter and makes further waits return at once. */
void bus_shutdown(struct bus *b);
bool bus_is_shutdown(struct bus *b);

/* Deletes events older than keep_ms (by time) beyond the newest keep_min
   rows. Returns rows deleted or < 0. */
int bus_prune(struct store *s, uint64_t now_ms, uint64_t keep_ms, uint64_t keep_min);

#endif
