/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/badabi.c -- a test module for the loader: a complete,
 * working descriptor that claims host ABI RD_MODULE_ABI + 1. The loader must
 * refuse it with a message naming the module and "ABI", before init.
 */
#include "config.h"

#include "core/module.h"

static int badabi_init(struct rd_host *h, void **mod)
{
    rd_log(h, RD_ERROR, "badabi: init must never run");
    *mod = NULL;
    return RD_OK;
}

static int badabi_start(void *mod)
{
    (void)mod;
    return RD_OK;
}

static void badabi_stop(void *mod)
{
    (void)mod;
}
static void badabi_destroy(void *mod)
{
    (void)mod;
}

static const struct rd_module badabi_module = {
    .abi = RD_MODULE_ABI + 1,
    .size = sizeof(struct rd_module),
    .name = "badabi",
    .version = "1.0.0",
    .build = RD_BUILD,
    .init = badabi_init,
    .start = badabi_start,
    .stop = badabi_stop,
    .destroy = badabi_destroy,
};

RD_MODULE_EXPORT(badabi_module)
