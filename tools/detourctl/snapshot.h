/* SPDX-License-Identifier: MIT */
/* One reading of everything detour has pinned: the model that both the
 * status table and the status JSON are rendered from. */
#ifndef CTL_SNAPSHOT_H
#define CTL_SNAPSHOT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "agent_state.h"
#include "detour.h"
#include "healthmap.h"

struct ctl_endpoint {
	struct dt_endpoint addr;
	uint32_t provider_id;
	bool stale;                /* DT_EP_STALE: kept for the DNS grace period */
	bool has_verdict;          /* false until detourd relayed to it */
	struct dt_verdict verdict;
	uint64_t since_age_ns;     /* how long the verdict has held */
	uint64_t hold_left_ns;     /* until a held-down endpoint is tried again */
	struct dt_ep_stats hook;   /* zero when the hook never saw it */
};

struct ctl_provider {
	uint32_t id;
	char name[DT_NAME_LEN];
	uint32_t family;           /* enum dt_family */
	uint16_t port;             /* host byte order */
	const struct ctl_endpoint *endpoints; /* slice of the snapshot's array */
	size_t n_endpoints;
	const struct dt_health_row *health;   /* the provider's verdict; NULL: none read */
	const struct dt_health_row *models;   /* its models' verdicts, by name */
	size_t n_models;
	struct dt_probe_stats probes;         /* from its verdict; zero without one */
	/* the kernel's counters summed over its endpoints, when their map is pinned */
	struct dt_tcp_signals tcp;
	__u64 tcp_connect_mean_us;            /* of its timed connects; 0: none */
	struct dt_uplink_signals uplink;
};

/* One override the operator recorded (the overrides map), and whether
 * detourd's published verdict carries it yet. */
struct ctl_override {
	char provider[DT_NAME_LEN];
	char model[DT_MODEL_LEN];  /* "": the provider as a whole */
	uint32_t kind;             /* enum dt_health_override */
	bool configured;           /* a provider by that name is configured */
	bool applied;              /* its verdict shows the override */
};

/* One enrollment: the links of one tag on one cgroup. */
struct ctl_cgroup {
	char tag[8];               /* DT_TAG_CONFIG or DT_TAG_CTL */
	uint64_t id;
	unsigned links;            /* link pins found */
	unsigned attached;         /* of which still attached to a live cgroup */
	char *path;                /* NULL when not found under the cgroup v2 mount */
};

struct ctl_snapshot {
	const char *pin_dir;
	uint64_t now_ns;           /* CLOCK_MONOTONIC when read */
	struct dt_config settings;
	struct ctl_agent agent;
	struct ctl_provider *providers; /* used entries, by id */
	size_t n_providers;
	struct ctl_endpoint *endpoints; /* by provider, current first, by address */
	size_t n_endpoints;
	struct dt_health_row *health; /* by provider, the provider before its models */
	size_t n_health;
	struct ctl_override *overrides; /* by provider name, then model */
	size_t n_overrides;
	struct dt_stats counters;  /* summed across CPUs */
	struct dt_proxy_stats proxy; /* the re-signing proxy's hedges */
	bool has_tcp;              /* tcp_signals is pinned (tcp_signals = yes, once run) */
	bool has_uplink;           /* uplink_signals is pinned (an uplink configured, once run) */
	struct ctl_cgroup *cgroups; /* by tag, then cgroup id */
	size_t n_cgroups;
};

/* Read everything under pin_dir (kept by pointer: it must outlive snap).
 * Returns 0, or -errno with err filled (-ENOENT: a pin is missing). */
int ctl_snapshot_read(struct ctl_snapshot *snap, const char *pin_dir, char *err, size_t errlen);

void ctl_snapshot_free(struct ctl_snapshot *snap);

/* Open the provider_health and model_health maps (for dt_healthmap_read).
 * Returns 0, or -errno with err filled and neither open. */
int ctl_health_open(const char *pin_dir, int *provider_fd, int *model_fd, char *err, size_t errlen);

#endif
