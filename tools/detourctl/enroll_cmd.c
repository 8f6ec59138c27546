// SPDX-License-Identifier: MIT
/* `detourctl enroll|unenroll CGROUP`: operator enrollments, made with the
 * programs detourd pinned and tagged DT_TAG_CTL, so detourd moves them to
 * its new programs on restart and the configuration's own stay untouched. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent_state.h"
#include "bpfobj.h"
#include "cgpath.h"
#include "detourctl.h"
#include "enroll.h"
#include "pinned.h"

struct enrollment {
	char path[PATH_MAX];
	uint64_t id;
	bool by_config, by_ctl;
};

/* Which tags already hold links on the cgroup named by arg. */
static int enrollment_read(const char *pin_dir, const char *arg, struct enrollment *en)
{
	struct dt_link_pin *pins;
	char err[PATH_MAX + 64];
	int n, rc;

	memset(en, 0, sizeof(*en));
	rc = ctl_cgroup_resolve(arg, en->path, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "detourctl: %s\n", err);
		return CTL_EXIT_FAILURE;
	}
	rc = dt_cgroup_id(en->path, &en->id);
	if (rc) {
		fprintf(stderr, "detourctl: cgroup %s: %s\n", en->path, strerror(-rc));
		return CTL_EXIT_FAILURE;
	}
	pins = calloc(CTL_MAX_LINK_PINS, sizeof(*pins));
	if (!pins) {
		fputs("detourctl: out of memory\n", stderr);
		return CTL_EXIT_FAILURE;
	}
	n = dt_links_list(pin_dir, pins, CTL_MAX_LINK_PINS);
	for (int i = 0; i < n; i++) {
		if (pins[i].cgroup_id != en->id)
			continue;
		en->by_config |= strcmp(pins[i].tag, DT_TAG_CONFIG) == 0;
		en->by_ctl |= strcmp(pins[i].tag, DT_TAG_CTL) == 0;
	}
	free(pins);
	if (n < 0) {
		fprintf(stderr, "detourctl: %s/%s: %s\n", pin_dir, DT_PIN_LINKS, strerror(-n));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

static void close_progs(int fds[DT_PROG_COUNT])
{
	for (int p = 0; p < DT_PROG_COUNT; p++)
		if (fds[p] >= 0)
			close(fds[p]);
}

/* The programs detourd pinned under <pin_dir>/progs; they exist while it
 * runs or after it died, and are removed when it stops cleanly. Returns 0,
 * or -errno (-ENOENT: some are missing) with none left open. */
static int open_progs(const char *pin_dir, int fds[DT_PROG_COUNT])
{
	char path[PATH_MAX];
	int rc;

	for (int p = 0; p < DT_PROG_COUNT; p++)
		fds[p] = -1;
	for (int p = 0; p < DT_PROG_COUNT; p++) {
		snprintf(path, sizeof(path), "%s/%s/%s", pin_dir, DT_PIN_PROGS, dt_prog_names[p]);
		fds[p] = bpf_obj_get(path);
		if (fds[p] < 0) {
			rc = -errno;
			close_progs(fds);
			return rc;
		}
	}
	return 0;
}

/* Enrolling works while detourd is down, but only redirects once it is back. */
static void warn_unless_running(const char *pin_dir)
{
	struct dt_config settings;
	struct ctl_agent agent;
	char err[256];

	if (ctl_read_settings(pin_dir, &settings, err, sizeof(err)))
		return;
	ctl_agent_assess(&settings, dt_now_ns(), &agent);
	if (agent.state != CTL_AGENT_RUNNING)
		fprintf(stderr, "detourctl: note: detourd is %s; nothing is redirected until it is back\n",
			agent.summary);
}

int ctl_cmd_enroll(const char *pin_dir, int argc, char **argv)
{
	int fds[DT_PROG_COUNT], rc;
	struct enrollment en;
	char err[512];

	if (argc != 2) {
		fputs("usage: detourctl enroll CGROUP_PATH\n", stderr);
		return CTL_EXIT_USAGE;
	}
	rc = enrollment_read(pin_dir, argv[1], &en);
	if (rc)
		return rc;
	if (en.by_config) {
		/* a second set of links would run every hook twice */
		printf("%s is already enrolled by the configuration\n", en.path);
		return CTL_EXIT_OK;
	}
	rc = open_progs(pin_dir, fds);
	if (rc == -ENOENT) {
		fputs("detourctl: detourd is not running: start it, or list the cgroup under "
		      "[enroll] in the configuration\n", stderr);
		return CTL_EXIT_AGENT;
	}
	if (rc) {
		fprintf(stderr, "detourctl: %s/%s: %s\n", pin_dir, DT_PIN_PROGS, strerror(-rc));
		return CTL_EXIT_FAILURE;
	}
	rc = dt_enroll(pin_dir, fds, en.path, DT_TAG_CTL, err, sizeof(err));
	close_progs(fds);
	if (rc) {
		fprintf(stderr, "detourctl: %s\n", err);
		return CTL_EXIT_FAILURE;
	}
	printf("enrolled %s (cgroup id %" PRIu64 ")\n", en.path, en.id);
	warn_unless_running(pin_dir);
	return CTL_EXIT_OK;
}

int ctl_cmd_unenroll(const char *pin_dir, int argc, char **argv)
{
	struct enrollment en;
	int rc;

	if (argc != 2) {
		fputs("usage: detourctl unenroll CGROUP_PATH\n", stderr);
		return CTL_EXIT_USAGE;
	}
	rc = enrollment_read(pin_dir, argv[1], &en);
	if (rc)
		return rc;
	if (!en.by_ctl && en.by_config) {
		fprintf(stderr, "detourctl: %s is enrolled by the configuration: remove it from "
			"[enroll] there and reload detourd (SIGHUP)\n", en.path);
		return CTL_EXIT_AGENT;
	}
	if (!en.by_ctl) {
		printf("%s is not enrolled: nothing to do\n", en.path);
		return CTL_EXIT_OK;
	}
	rc = dt_unenroll(pin_dir, en.id, DT_TAG_CTL);
	if (rc < 0) {
		fprintf(stderr, "detourctl: unenroll %s: %s\n", en.path, strerror(-rc));
		return CTL_EXIT_FAILURE;
	}
	printf("unenrolled %s (%d link(s) removed)\n", en.path, rc);
	if (en.by_config)
		printf("%s stays enrolled by the configuration\n", en.path);
	return CTL_EXIT_OK;
}
