/* SPDX-License-Identifier: MIT */
/*
 * modules/graph/api.h -- the graph module's routes (api.c). Registered in
 * start; handlers run on HTTP worker threads.
 */
#ifndef RELENGD_GRAPH_API_H
#define RELENGD_GRAPH_API_H

#include "modules/graph/graph.h"

/* Registers every route under /api/v1/graph. RD_OK or the host's error. */
int graph_api_register(struct graph *g);
/* Validates and stores a graph body, replying 201 / 400 / error. */
int graph_submit_body(struct graph *g, struct rd_req *r, const json_t *body);

#endif
