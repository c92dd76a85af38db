/* SPDX-License-Identifier: MIT */
/*
 * core/main.c -- relengd's command line: options into struct core_cli, then
 * the daemon (core/daemon.c) in the foreground. Main thread.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/daemon.h"

static void main_usage(FILE *out)
{
    fprintf(out, "Usage: relengd [OPTIONS]\n"
                 "Runs the relengd release-engineering appliance in the foreground.\n"
                 "\n"
                 "  -c, --config FILE      core configuration (default $RELENGD_CONFIG or\n"
                 "                         " SYSCONF_DIR "/relengd.conf); module files are read\n"
                 "                         from its modules_conf directory (modules.d/)\n"
                 "      --check-config     check the configuration and module files, then exit\n"
                 "      --print-sample NAME  print every key of module NAME (or core) with its\n"
                 "                         default, as a commented configuration file\n"
                 "      --state-dir DIR    where the database and module state live\n"
                 "      --listen ADDR      dashboard and API address, e.g. 127.0.0.1:8080\n"
                 "                         (port 0 picks a free port; see --ready-file)\n"
                 "      --module-dir DIRS  colon-separated directories of module .so files\n"
                 "      --modules LIST     modules to load, e.g. \"proxy graph dispatch\"\n"
                 "      --ready-file FILE  write {\"api\":PORT,...} here once serving\n"
                 "      --log-level LEVEL  debug, info, warn or error\n"
                 "      --set S.KEY=VALUE  set any core key, e.g. --set http.max_body=4MiB\n"
                 "  -V, --version          print the version and exit\n"
                 "  -h, --help             print this help and exit\n"
                 "\n"
                 "Environment: RELENGD_CONFIG, RELENGD_STATE_DIR, RELENGD_LISTEN,\n"
                 "RELENGD_LOG_LEVEL, RELENGD_MODULE_DIR, RELENGD_MODULES, RELENGD_WEB_ROOT,\n"
                 "RELENGD_ADMIN_TOKEN, RELENGD_READY_FILE, and RELENGD_<MODULE>_<KEY> for a\n"
                 "module's main section (e.g. RELENGD_PROXY_LISTEN). The command line wins\n"
                 "over the environment, which wins over the files.\n"
                 "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the configuration.\n");
}

int main(int argc, char **argv)
{
    enum {
        OPT_CHECK = 256,
        OPT_SAMPLE,
        OPT_STATE,
        OPT_LISTEN,
        OPT_MODDIR,
        OPT_MODULES,
        OPT_READY,
        OPT_LEVEL,
        OPT_SET,
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"print-sample", required_argument, NULL, OPT_SAMPLE},
        {"state-dir", required_argument, NULL, OPT_STATE},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"module-dir", required_argument, NULL, OPT_MODDIR},
        {"modules", required_argument, NULL, OPT_MODULES},
        {"ready-file", required_argument, NULL, OPT_READY},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"set", required_argument, NULL, OPT_SET},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct core_cli cli = {0};
    const char *sample = NULL;
    bool check = false;
    int c, status;

    cli.sets = calloc((size_t)argc + 1, sizeof(*cli.sets));
    if (!cli.sets)
        return 1;
    cli.config = getenv("RELENGD_CONFIG");
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli.config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_SAMPLE:
            sample = optarg;
            break;
        case OPT_STATE:
            cli.state_dir = optarg;
            break;
        case OPT_LISTEN:
            cli.listen = optarg;
            break;
        case OPT_MODDIR:
            cli.module_dir = optarg;
            break;
        case OPT_MODULES:
            cli.modules = optarg;
            break;
        case OPT_READY:
            cli.ready_file = optarg;
            break;
        case OPT_LEVEL:
            cli.log_level = optarg;
            break;
        case OPT_SET:
            cli.sets[cli.n_sets++] = optarg;
            break;
        case 'V':
            printf("relengd %s (build %s, module ABI %d)\n", PACKAGE_VERSION, RD_BUILD,
                   RD_MODULE_ABI);
            free(cli.sets);
            return 0;
        case 'h':
            main_usage(stdout);
            free(cli.sets);
            return 0;
        default:
            main_usage(stderr);
            free(cli.sets);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "relengd: unexpected argument '%s' (see --help)\n", argv[optind]);
        free(cli.sets);
        return 2;
    }
    if (!cli.config)
        cli.config = SYSCONF_DIR "/relengd.conf";
    if (sample)
        status = daemon_print_sample(&cli, sample);
    else if (check)
        status = daemon_check_config(&cli);
    else
        status = daemon_run(&cli);
    free(cli.sets);
    return status;
}
