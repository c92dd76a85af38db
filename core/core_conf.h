/* SPDX-License-Identifier: MIT */
/*
 * core/core_conf.h -- the core's configuration: relengd.conf's sections as
 * rd_cfg_key tables, layered file < environment < command line. Main thread.
 */
#ifndef RELENGD_CORE_CONF_H
#define RELENGD_CORE_CONF_H

#include "core/config.h"
#include "core/host.h"
#include "core/webhook.h"

/* What the command line says; NULL fields are not given. */
struct core_cli {
    const char *config;
    const char *state_dir;
    const char *listen;
    const char *module_dir;
    const char *modules;
    const char *ready_file;
    const char *log_level;
    const char **sets; /* "section.key=value" */
    size_t n_sets;
};

/* Reads the core file (RD_ENOTFOUND when it is missing), layers the
   environment (RELENGD_STATE_DIR, RELENGD_LISTEN, RELENGD_LOG_LEVEL,
   RELENGD_MODULE_DIR, RELENGD_MODULES, RELENGD_WEB_ROOT, RELENGD_ADMIN_TOKEN,
   RELENGD_READY_FILE) and cli on top, and fills conf. *file_out keeps the
   entries (for webhooks and reload). Strings go to strings. */
int core_conf_read(const struct core_cli *cli, struct cfg_file **file_out, struct core_conf *conf,
                   struct cfg_strings *strings, struct rd_error *err);

/* The [webhook.NAME] sections as an array (*out malloc'd, strings in strings). */
int core_conf_webhooks(struct cfg_file *f, struct webhook_conf **out, size_t *n,
                       struct cfg_strings *strings, struct rd_error *err);

/* Layers RELENGD_<MODULE>_<KEY> environment variables on a module's file
   (main section): e.g. RELENGD_PROXY_LISTEN sets listen in proxy.conf. */
int core_conf_module_env(struct cfg_file *f, const char *module);

/* The directory the config file is in ("." for a bare name); malloc'd. */
char *core_conf_dir(const char *path);

/* Writes a commented sample of every core key to out. */
int core_conf_sample(FILE *out);

#endif
