// SPDX-License-Identifier: MIT
/* `detourctl status [--json]`: what detour is doing, from the pins alone. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "detour.h"
#include "detourctl.h"
#include "status_render.h"

static int usage_error(const char *bad)
{
	fprintf(stderr, "detourctl: status: unexpected '%s'\nusage: detourctl status [--json]\n",
		bad);
	return CTL_EXIT_USAGE;
}

/* Nothing pinned is a state of its own: detour never ran with this pin dir
 * (or it was cleaned up), which scripts want to tell apart from errors. */
static int read_failed(const char *pin_dir, int rc, const char *err)
{
	char settings[PATH_MAX];
	struct stat st;

	snprintf(settings, sizeof(settings), "%s/%s", pin_dir, DT_MAP_SETTINGS);
	if (rc == -ENOENT && stat(pin_dir, &st) != 0) {
		fprintf(stderr, "detourctl: detour is not running and has never run with pin dir %s\n",
			pin_dir);
		return CTL_EXIT_NEVER;
	}
	if (rc == -ENOENT && stat(settings, &st) != 0) {
		fprintf(stderr, "detourctl: detour is not running and nothing of it is pinned in %s\n",
			pin_dir);
		return CTL_EXIT_NEVER;
	}
	fprintf(stderr, "detourctl: %s\n", err);
	if (rc == -EPERM || rc == -EACCES)
		fputs("detourctl: reading BPF pins needs root (CAP_BPF and access to the pin dir)\n",
		      stderr);
	return CTL_EXIT_FAILURE;
}

int ctl_cmd_status(const char *pin_dir, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_snapshot snap;
	bool json = false;
	char err[512];
	int c, rc;

	optind = 0; /* glibc: restart parsing on this command's own argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return usage_error(argv[optind - 1]);
		json = true;
	}
	if (optind != argc)
		return usage_error(argv[optind]);

	rc = ctl_snapshot_read(&snap, pin_dir, err, sizeof(err));
	if (rc)
		return read_failed(pin_dir, rc, err);
	if (json ? ctl_status_json(&snap, stdout) : ctl_status_text(&snap, stdout)) {
		fputs("detourctl: cannot write the status (out of memory or output error)\n", stderr);
		rc = CTL_EXIT_FAILURE;
	} else {
		rc = snap.agent.state == CTL_AGENT_RUNNING ? CTL_EXIT_OK : CTL_EXIT_AGENT;
	}
	ctl_snapshot_free(&snap);
	if (fflush(stdout)) {
		perror("detourctl: stdout");
		return CTL_EXIT_FAILURE;
	}
	return rc;
}
