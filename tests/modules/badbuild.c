/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/badbuild.c -- a test module for the loader: right ABI, but
 * built for another relengd ("0.0.0-other" instead of RD_BUILD). The loader
 * must refuse it with a message naming the module and both builds.
 */
#include "config.h"

#include "core/module.h"

static int badbuild_init(struct rd_host *h, void **mod)
{
    rd_log(h, RD_ERROR, "badbuild: init must never run");
    *mod = NULL;
    return RD_OK;
}

static int badbuild_start(void *mod)
{
    (void)mod;
    return RD_OK;
}

static void badbuild_stop(void *mod)
{
    (void)mod;
}
static void badbuild_destroy(void *mod)
{
    (void)mod;
}

static const struct rd_module badbuild_module = {
    .abi = RD_MODULE_ABI,
    .size = sizeof(struct rd_module),
    .name = "badbuild",
    .version = "1.0.0",
    .build = "0.0.0-other",
    .init = badbuild_init,
    .start = badbuild_start,
    .stop = badbuild_stop,
    .destroy = badbuild_destroy,
};

RD_MODULE_EXPORT(badbuild_module)
