/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/read.h -- the JSON views of graphs and tasks that the API,
 * relengctl and the dashboard read: the graph list (filters, paging,
 * optionally each graph's jobs for the push grid), one graph with its tasks
 * and edges, one task with its payload, runs, dependencies and dependents.
 * Read transactions (rd_store_read callbacks); any thread.
 */
#ifndef RELENGD_GRAPH_READ_H
#define RELENGD_GRAPH_READ_H

#include "modules/graph/graph.h"

struct graph_list_query {
    const char *branch, *repository, *state; /* NULL: any */
    int64_t limit;                           /* 1..500 */
    int64_t before;                          /* seq cursor, 0: newest */
    bool with_tasks;                         /* each graph's jobs (push grid) */
};

/* {"graphs": [...], "next": seq|null}. *out: a new reference. */
int graph_read_list(struct graph *g, struct rd_tx *tx, const struct graph_list_query *q,
                    json_t **out);
/* The graph with "tasks" (each with "dependencies": [task ids]) */
int graph_read_graph(struct graph *g, struct rd_tx *tx, const char *id, json_t **out);
/* The task with payload, runs, dependencies and dependents. */
int graph_read_task(struct graph *g, struct rd_tx *tx, const char *id, json_t **out);

#endif
