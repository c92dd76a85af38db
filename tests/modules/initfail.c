/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/initfail.c -- a test module for the loader and the daemon: a
 * valid module whose init logs "initfail: refusing to start: <reason>" at
 * ERROR and returns RD_EINVAL, allocating nothing. The daemon must refuse to
 * start with it, report the reason, and leak nothing. start, stop and
 * destroy exist (the loader requires them) but must never run.
 */
#include "config.h"

#include "core/module.h"

static int initfail_init(struct rd_host *h, void **mod)
{
    (void)mod;
    rd_log(h, RD_ERROR, "initfail: refusing to start: this test module always fails its init");
    return RD_EINVAL;
}

static int initfail_start(void *mod)
{
    (void)mod;
    return RD_EINVAL;
}

static void initfail_stop(void *mod)
{
    (void)mod;
}
static void initfail_destroy(void *mod)
{
    (void)mod;
}

static const struct rd_module initfail_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "initfail",
    .version = "1.0.0",
    .build = RD_BUILD,
    .init = initfail_init,
    .start = initfail_start,
    .stop = initfail_stop,
    .destroy = initfail_destroy,
};

RD_MODULE_EXPORT(initfail_module)
