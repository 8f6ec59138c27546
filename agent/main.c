// SPDX-License-Identifier: MIT
/* detourd: keeps LLM applications alive through provider failures. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/detour/detour.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: detourd [-c CONFIG] [--pidfile FILE] [--check]\n"
		"  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
		"      --pidfile FILE  write the pid once ready, remove it on exit\n"
		"      --check         validate the configuration and exit\n"
		"  -h, --help          this help\n"
		"Signals: SIGHUP reloads the configuration, SIGTERM shuts down cleanly.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG, *pidfile = NULL;
	bool check = false;
	struct detourd d;
	struct dt_cfg *cfg;
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'p': pidfile = optarg; break;
		case 'k': check = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (dt_config_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "detourd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (%zu provider(s), %zu cgroup(s))\n", path, cfg->n_providers,
		       cfg->n_enroll);
		dt_config_free(cfg);
		return 0;
	}
	/* a client that resets mid-write must cost its connection, not the agent */
	signal(SIGPIPE, SIG_IGN);
	if (detourd_start(&d, cfg, pidfile)) {
		detourd_abort(&d);
		return 1;
	}
	return detourd_run(&d);
}
