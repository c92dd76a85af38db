/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/labelmap.h -- a string -> index hash map (open addressing,
 * linear probing) for task labels: validation of a 100,000-task graph needs
 * every label lookup in O(1). Keys are borrowed (they live in the request
 * body or the spec). Pure logic, no host calls; any thread, not shared.
 */
#ifndef RELENGD_GRAPH_LABELMAP_H
#define RELENGD_GRAPH_LABELMAP_H

#include <stddef.h>
#include <stdint.h>

struct labelmap {
    const char **keys; /* NULL = empty slot; borrowed */
    size_t *vals;
    size_t cap; /* a power of two, kept at least twice the count */
    size_t n;
};

/* Sizes the map for n_expected keys. 0 or -1 (out of memory). */
int labelmap_init(struct labelmap *m, size_t n_expected);
void labelmap_fini(struct labelmap *m);
/* Adds key -> val. 0, 1 if the key was there already (its value is kept),
   -1 out of memory. key is borrowed and must outlive the map. */
int labelmap_put(struct labelmap *m, const char *key, size_t val);
/* The value of key, or SIZE_MAX when absent. */
size_t labelmap_get(const struct labelmap *m, const char *key);

#endif
