// SPDX-License-Identifier: MIT
/* `detourctl drain|undrain|force PROVIDER [MODEL]`: the operator's word on a
 * verdict, recorded in the pinned overrides map (detourctl is its only
 * writer). detourd polls the map and hands changes to its health engine;
 * the pin outlives detourd, so a restart applies the overrides again. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent_state.h"
#include "bpfobj.h"
#include "detourctl.h"
#include "format.h"
#include "pinned.h"

/* How long to wait for a running detourd to apply it: its poll is 50 ms. */
#define APPLY_WAIT_MS 2000
#define APPLY_STEP_MS 10

static int usage_error(const char *cmd, const char *what)
{
	fprintf(stderr, "detourctl: %s: %s\nusage: detourctl %s PROVIDER [MODEL]\n", cmd, what, cmd);
	return CTL_EXIT_USAGE;
}

/* The provider's id, or -1 with the known names listed. */
static int provider_id(int providers_fd, const char *cmd, const char *name)
{
	char known[DT_MAX_PROVIDERS * (DT_NAME_LEN + 2)] = "";
	size_t len = 0;

	for (__u32 id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct dt_provider p;

		if (bpf_map_lookup_elem(providers_fd, &id, &p) || !p.used)
			continue;
		p.name[DT_NAME_LEN - 1] = '\0';
		if (strcmp(p.name, name) == 0)
			return (int)id;
		len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s", len ? ", " : "",
					p.name);
	}
	fprintf(stderr, "detourctl: %s: no provider named '%s' (configured: %s)\n", cmd, name,
		len ? known : "none");
	return -1;
}

/* The override the published verdict of (id, model) carries; -1 while it
 * has none (a model detourd has not published yet). */
static int published_override(const char *pin_dir, __u32 id, const char *model)
{
	struct dt_provider_health v;
	struct dt_model_key key = { .provider_id = id };
	char err[256];
	int fd, rc;

	if (model)
		strncpy(key.model, model, sizeof(key.model) - 1);
	fd = model ? ctl_map_open(pin_dir, DT_MAP_MODEL_HEALTH, sizeof(key), sizeof(v), err,
				  sizeof(err))
		   : ctl_map_open(pin_dir, DT_MAP_PROVIDER_HEALTH, sizeof(id), sizeof(v), err,
				  sizeof(err));
	if (fd < 0)
		return -1;
	rc = bpf_map_lookup_elem(fd, model ? (void *)&key : (void *)&id, &v) ? -1 : (int)v.override;
	close(fd);
	return rc;
}

/* Wait until a running detourd shows the override in its verdict, so the
 * next request already obeys it. True when it does. */
static bool wait_applied(const char *pin_dir, __u32 id, const char *model, __u32 kind)
{
	struct timespec step = { .tv_nsec = APPLY_STEP_MS * 1000000L };

	for (int waited = 0; waited < APPLY_WAIT_MS; waited += APPLY_STEP_MS) {
		if (published_override(pin_dir, id, model) == (int)kind)
			return true;
		nanosleep(&step, NULL);
	}
	return false;
}

static int record(int fd, const struct dt_override_key *key, __u32 kind)
{
	struct dt_override val = { .kind = kind };

	if (kind != DT_OVERRIDE_NONE)
		return bpf_map_update_elem(fd, key, &val, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		return -errno;
	return 0;
}

static int override_cmd(const char *pin_dir, int argc, char **argv, __u32 kind)
{
	const char *cmd = argv[0], *provider = argc > 1 ? argv[1] : NULL;
	const char *model = argc > 2 ? argv[2] : NULL;
	struct dt_override_key key = {0};
	struct dt_config settings;
	struct ctl_agent agent;
	char err[512];
	int providers_fd, fd, id, rc;

	if (argc < 2 || argc > 3 || provider[0] == '-')
		return usage_error(cmd, argc < 2 ? "which provider?" : "unexpected arguments");
	if (strlen(provider) >= sizeof(key.provider))
		return usage_error(cmd, "provider name too long");
	if (model && (!model[0] || strlen(model) >= sizeof(key.model)))
		return usage_error(cmd, "model name empty or too long (127 bytes at most)");

	rc = ctl_read_settings(pin_dir, &settings, err, sizeof(err));
	if (rc)
		return ctl_read_failed(pin_dir, rc, err);
	providers_fd = ctl_map_open(pin_dir, DT_MAP_PROVIDERS, sizeof(__u32),
				    sizeof(struct dt_provider), err, sizeof(err));
	if (providers_fd < 0)
		return ctl_read_failed(pin_dir, providers_fd, err);
	id = provider_id(providers_fd, cmd, provider);
	close(providers_fd);
	if (id < 0)
		return CTL_EXIT_AGENT;

	fd = ctl_map_open(pin_dir, DT_MAP_OVERRIDES, sizeof(key), sizeof(struct dt_override), err,
			  sizeof(err));
	if (fd < 0)
		return ctl_read_failed(pin_dir, fd, err);
	/* the rest stays zero: the kernel hashes every byte of the key */
	strncpy(key.provider, provider, sizeof(key.provider) - 1);
	if (model)
		strncpy(key.model, model, sizeof(key.model) - 1);
	rc = record(fd, &key, kind);
	close(fd);
	if (rc) {
		fprintf(stderr, "detourctl: %s: %s/%s: %s\n", cmd, pin_dir, DT_MAP_OVERRIDES,
			strerror(-rc));
		return CTL_EXIT_FAILURE;
	}

	printf("%s%s%s: %s", provider, model ? " model " : "", model ? model : "",
	       kind == DT_OVERRIDE_NONE ? "override cleared" : ctl_override_name(kind));
	ctl_agent_assess(&settings, dt_now_ns(), &agent);
	if (agent.state != CTL_AGENT_RUNNING)
		puts(" (recorded; detourd applies it when it starts)");
	else if (wait_applied(pin_dir, (__u32)id, model, kind))
		puts(" (applied)");
	else
		puts(" (recorded; detourd has not applied it yet)");
	return CTL_EXIT_OK;
}

int ctl_cmd_drain(const char *pin_dir, int argc, char **argv)
{
	return override_cmd(pin_dir, argc, argv, DT_OVERRIDE_DRAIN);
}

int ctl_cmd_undrain(const char *pin_dir, int argc, char **argv)
{
	return override_cmd(pin_dir, argc, argv, DT_OVERRIDE_NONE);
}

int ctl_cmd_force(const char *pin_dir, int argc, char **argv)
{
	return override_cmd(pin_dir, argc, argv, DT_OVERRIDE_FORCE);
}
