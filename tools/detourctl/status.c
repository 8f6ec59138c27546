// SPDX-License-Identifier: MIT
/* `detourctl status [--json]`: what detour is doing, from the pins alone. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "detourctl.h"
#include "pinned.h"
#include "status_render.h"

static int usage_error(const char *bad)
{
	fprintf(stderr, "detourctl: status: unexpected '%s'\nusage: detourctl status [--json]\n",
		bad);
	return CTL_EXIT_USAGE;
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
		return ctl_read_failed(pin_dir, rc, err);
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
