/* SPDX-License-Identifier: MIT */
/* detourctl: the operator's view of detour, read from the pinned BPF
 * objects so it works whether detourd is up, down or gone. */
#ifndef CTL_DETOURCTL_H
#define CTL_DETOURCTL_H

#include <limits.h>

#include "enroll.h"

/* Link pins read at once: every program of 2048 cgroups under both tags. */
#define CTL_MAX_LINK_PINS (DT_PROG_COUNT * 2 * 2048)

/* Exit codes, documented in docs/detourctl.md. */
enum ctl_exit {
	CTL_EXIT_OK      = 0, /* done; status: the agent is running */
	CTL_EXIT_AGENT   = 1, /* status: agent down or stopped; enroll, drain...: refused;
			       * watch: --timeout before --count changes */
	CTL_EXIT_USAGE   = 2, /* bad command line */
	CTL_EXIT_NEVER   = 3, /* nothing pinned: detour never ran with this pin dir */
	CTL_EXIT_FAILURE = 4, /* could not do it (permissions, BPF, configuration) */
};

/* Each command takes its own arguments (argv[0] is the command name) and
 * returns an enum ctl_exit. */
int ctl_cmd_status(const char *pin_dir, int argc, char **argv);
int ctl_cmd_enroll(const char *pin_dir, int argc, char **argv);
int ctl_cmd_unenroll(const char *pin_dir, int argc, char **argv);
int ctl_cmd_watch(const char *pin_dir, int argc, char **argv);
int ctl_cmd_drain(const char *pin_dir, int argc, char **argv);
int ctl_cmd_undrain(const char *pin_dir, int argc, char **argv);
int ctl_cmd_force(const char *pin_dir, int argc, char **argv);
/* ca and spend take the configuration path (NULL: defaults), for its
 * state_dir; top for its [metrics] listen. */
int ctl_cmd_ca(const char *config, int argc, char **argv);
int ctl_cmd_spend(const char *config, int argc, char **argv);
int ctl_cmd_top(const char *config, int argc, char **argv);

/* detourd's state_dir: the configuration's, else the default. Returns
 * CTL_EXIT_OK or CTL_EXIT_FAILURE (the configuration did not load; said). */
int ctl_state_dir(const char *config, char out[PATH_MAX]);

#endif
