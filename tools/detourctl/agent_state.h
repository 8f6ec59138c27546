/* SPDX-License-Identifier: MIT */
/* Whether detourd is alive, judged the way the hook judges it (the
 * heartbeat in the settings map) plus whether its process still exists. */
#ifndef CTL_AGENT_STATE_H
#define CTL_AGENT_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "detour.h"

enum ctl_agent_state {
	CTL_AGENT_RUNNING, /* beating, process present: the hook redirects */
	CTL_AGENT_DOWN,    /* died or hung without stopping: the hook fails open */
	CTL_AGENT_STOPPED, /* shut down cleanly: settings disabled */
};

#define CTL_NEVER_BEAT UINT64_MAX

struct ctl_agent {
	enum ctl_agent_state state;
	uint32_t pid;              /* as the agent wrote it, 0 if never */
	bool pid_alive;            /* /proc/<pid> exists and is not a zombie */
	uint64_t heartbeat_age_ns; /* CTL_NEVER_BEAT when no beat was written */
	char summary[160];         /* the same one line for the table and JSON */
};

/* now_ns: CLOCK_MONOTONIC, the clock of the agent's beats. */
void ctl_agent_assess(const struct dt_config *settings, uint64_t now_ns, struct ctl_agent *out);

const char *ctl_agent_state_name(enum ctl_agent_state state);

#endif
