// SPDX-License-Identifier: MIT
/* Judging detourd's liveness; see agent_state.h. */
#include <stdio.h>
#include <string.h>

#include "agent_state.h"
#include "format.h"

/* A killed agent stays a zombie until reaped: that is not an agent. */
static bool process_alive(uint32_t pid)
{
	char path[64], line[512], *state;
	size_t n;
	FILE *f;

	if (!pid)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, the state follows the last ')' */
	state = strrchr(line, ')');
	return state && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static const char fail_open[] = "hook is failing open (connections go direct)";

void ctl_agent_assess(const struct dt_config *s, uint64_t now_ns, struct ctl_agent *out)
{
	char age[32];

	memset(out, 0, sizeof(*out));
	out->pid = s->agent_tgid;
	out->pid_alive = process_alive(s->agent_tgid);
	if (!s->heartbeat_ns)
		out->heartbeat_age_ns = CTL_NEVER_BEAT;
	else
		out->heartbeat_age_ns = now_ns > s->heartbeat_ns ? now_ns - s->heartbeat_ns : 0;
	ctl_fmt_age(out->heartbeat_age_ns, age, sizeof(age));

	if (!s->enabled && s->heartbeat_ns) {
		out->state = CTL_AGENT_STOPPED;
		snprintf(out->summary, sizeof(out->summary), "stopped cleanly (disabled)");
	} else if (!s->heartbeat_ns) {
		out->state = CTL_AGENT_DOWN;
		snprintf(out->summary, sizeof(out->summary),
			 "DOWN: no heartbeat was ever written — %s", fail_open);
	} else if (out->heartbeat_age_ns > s->heartbeat_ttl_ns) {
		out->state = CTL_AGENT_DOWN;
		snprintf(out->summary, sizeof(out->summary), "DOWN: heartbeat %s old%s — %s", age,
			 out->pid_alive ? " (its process is still there: hung?)" : "", fail_open);
	} else if (!out->pid_alive) {
		/* the beat is fresh but nobody listens any more: the listener
		 * check in the hook already sends connections direct */
		out->state = CTL_AGENT_DOWN;
		snprintf(out->summary, sizeof(out->summary), "DOWN: process %u is gone — %s",
			 s->agent_tgid, fail_open);
	} else {
		out->state = CTL_AGENT_RUNNING;
		snprintf(out->summary, sizeof(out->summary), "running (pid %u, heartbeat %s ago)",
			 s->agent_tgid, age);
	}
}

const char *ctl_agent_state_name(enum ctl_agent_state state)
{
	switch (state) {
	case CTL_AGENT_RUNNING: return "running";
	case CTL_AGENT_DOWN:    return "down";
	case CTL_AGENT_STOPPED: return "stopped";
	}
	return "unknown";
}
