// SPDX-License-Identifier: MIT
/* detourctl: operator CLI of detour. Global options, then a command. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "detourctl.h"

#define DETOURCTL_VERSION "0.1.0"
#define DEFAULT_PIN_DIR   "/sys/fs/bpf/detour"
#define DEFAULT_STATE_DIR "/var/lib/detour"

static const struct command {
	const char *name;
	int (*run)(const char *pin_dir, int argc, char **argv);
} commands[] = {
	{ "status", ctl_cmd_status },
	{ "enroll", ctl_cmd_enroll },
	{ "unenroll", ctl_cmd_unenroll },
	{ "watch", ctl_cmd_watch },
	{ "drain", ctl_cmd_drain },
	{ "undrain", ctl_cmd_undrain },
	{ "force", ctl_cmd_force },
};

static void usage(FILE *f)
{
	fputs("usage: detourctl [--pin-dir DIR] [-c CONFIG] COMMAND [ARGS]\n"
	      "commands:\n"
	      "  status [--json]          agent, providers, health verdicts, overrides, endpoints,\n"
	      "                           counters, cgroups\n"
	      "  watch [--json] [--count N] [--timeout S] [--interval MS]\n"
	      "                           one line per provider or model verdict change, live\n"
	      "  drain PROVIDER [MODEL]   route nothing there (recorded until undrain)\n"
	      "  force PROVIDER [MODEL]   route there whatever the health signals say\n"
	      "  undrain PROVIDER [MODEL] clear a drain or force: the signals decide again\n"
	      "  enroll CGROUP_PATH       protect a cgroup (needs detourd's pinned programs)\n"
	      "  unenroll CGROUP_PATH     undo an enroll (not cgroups of the configuration)\n"
	      "  top [--once] [--json] [--interval MS] [--metrics ADDRESS:PORT]\n"
	      "                           live traffic, errors, spend and headroom per application\n"
	      "                           and provider, from detourd's /metrics\n"
	      "  ca show|path|install [--trust-dir DIR] [--no-update]\n"
	      "                           the local CA's root: print it, or install it for clients\n"
	      "  spend [--json]           requests, tokens and cost per application, provider,\n"
	      "                           model and class since detourd started\n"
	      "CGROUP_PATH is absolute, or relative to the cgroup v2 mount.\n"
	      "options:\n"
	      "  --pin-dir DIR            detour's BPF pin dir (default: pin_dir of CONFIG, else "
	      DEFAULT_PIN_DIR ")\n"
	      "  -c, --config CONFIG      detourd's configuration file, for its pin_dir (ca, spend:\n"
	      "                           state_dir; top: [metrics] listen)\n"
	      "  -h, --help               this help\n"
	      "      --version            print the version\n"
	      "exit: 0 ok (status: agent running), 1 agent down or stopped / refused (unknown\n"
	      "      provider; watch: --timeout before --count changes), 2 usage,\n"
	      "      3 detour never ran with this pin dir (ca: no CA yet; spend: nothing\n"
	      "      answered yet), 4 failure\n", f);
}

int ctl_state_dir(const char *config, char out[PATH_MAX])
{
	struct dt_cfg *cfg;
	char err[1024];

	if (!config) {
		snprintf(out, PATH_MAX, "%s", DEFAULT_STATE_DIR);
		return CTL_EXIT_OK;
	}
	if (dt_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "detourctl: %s\n", err);
		return CTL_EXIT_FAILURE;
	}
	snprintf(out, PATH_MAX, "%s", cfg->state_dir);
	dt_config_free(cfg);
	return CTL_EXIT_OK;
}

/* --pin-dir wins; else the configuration's pin_dir; else the default. */
static int pin_dir_choose(const char *pin_dir, const char *config, char out[PATH_MAX])
{
	struct dt_cfg *cfg;
	char err[1024];

	if (pin_dir || !config) {
		snprintf(out, PATH_MAX, "%s", pin_dir ? pin_dir : DEFAULT_PIN_DIR);
		return 0;
	}
	if (dt_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "detourctl: %s\n", err);
		return -1;
	}
	snprintf(out, PATH_MAX, "%s", cfg->pin_dir);
	dt_config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pin_dir_opt = NULL, *config = NULL;
	char pin_dir[PATH_MAX];
	int c;

	/* "+": stop at the command, whose options are its own */
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pin_dir_opt = optarg; break;
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return CTL_EXIT_OK;
		case 'V': puts("detourctl " DETOURCTL_VERSION); return CTL_EXIT_OK;
		default: usage(stderr); return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	/* the CA lives in the state dir, not the pin dir: ca reads the configuration itself */
	if (strcmp(argv[optind], "ca") == 0)
		return ctl_cmd_ca(config, argc - optind, argv + optind);
	/* top reads detourd's /metrics, whose address is in the configuration */
	if (strcmp(argv[optind], "top") == 0)
		return ctl_cmd_top(config, argc - optind, argv + optind);
	if (strcmp(argv[optind], "spend") == 0)
		return ctl_cmd_spend(config, argc - optind, argv + optind);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (pin_dir_choose(pin_dir_opt, config, pin_dir))
			return CTL_EXIT_FAILURE;
		return commands[i].run(pin_dir, argc - optind, argv + optind);
	}
	fprintf(stderr, "detourctl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return CTL_EXIT_USAGE;
}
