// SPDX-License-Identifier: MIT
/* Reading everything detour has pinned into one model; see snapshot.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "bpfobj.h"
#include "cgpath.h"
#include "detourctl.h"
#include "enroll.h"
#include "format.h"
#include "pinned.h"
#include "setdiff.h"
#include "sigsum.h"
#include "snapshot.h"

static int cmp_addr(const void *a, const void *b)
{
	const struct ctl_endpoint *x = a, *y = b;

	return memcmp(&x->addr, &y->addr, sizeof(x->addr));
}

/* Provider, current before stale, address. */
static int cmp_display(const void *a, const void *b)
{
	const struct ctl_endpoint *x = a, *y = b;

	if (x->provider_id != y->provider_id)
		return x->provider_id < y->provider_id ? -1 : 1;
	if (x->stale != y->stale)
		return x->stale ? 1 : -1;
	return cmp_addr(a, b);
}

static void walk_intercept(struct ctl_snapshot *snap, int ic_fd, int verdicts_fd, int ep_stats_fd)
{
	struct dt_endpoint key, next, *prev = NULL;

	/* bounded by the map's capacity even if the walk keeps restarting */
	while (snap->n_endpoints < DT_MAX_ENDPOINTS &&
	       bpf_map_get_next_key(ic_fd, prev, &next) == 0) {
		struct ctl_endpoint *e = &snap->endpoints[snap->n_endpoints];
		struct dt_intercept ic;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(ic_fd, &key, &ic))
			continue; /* removed meanwhile */
		e->addr = key;
		e->provider_id = ic.provider_id;
		e->stale = ic.flags & DT_EP_STALE;
		e->has_verdict = bpf_map_lookup_elem(verdicts_fd, &key, &e->verdict) == 0;
		if (e->has_verdict) {
			e->since_age_ns = ctl_age(e->verdict.since_ns, snap->now_ns);
			e->hold_left_ns = ctl_remaining(e->verdict.until_ns, snap->now_ns);
		}
		/* absent until the hook first sees the endpoint: stays zero */
		bpf_map_lookup_elem(ep_stats_fd, &key, &e->hook);
		snap->n_endpoints++;
	}
}

static int read_endpoints(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	const size_t ep_size = sizeof(struct dt_endpoint);
	int ic_fd, verdicts_fd = -1, ep_stats_fd = -1, rc;

	ic_fd = ctl_map_open(snap->pin_dir, DT_MAP_INTERCEPT, ep_size,
			     sizeof(struct dt_intercept), err, errlen);
	if (ic_fd < 0)
		return ic_fd;
	verdicts_fd = ctl_map_open(snap->pin_dir, DT_MAP_VERDICTS, ep_size,
				   sizeof(struct dt_verdict), err, errlen);
	if (verdicts_fd < 0) {
		rc = verdicts_fd;
		goto out;
	}
	ep_stats_fd = ctl_map_open(snap->pin_dir, DT_MAP_EP_STATS, ep_size,
				   sizeof(struct dt_ep_stats), err, errlen);
	if (ep_stats_fd < 0) {
		rc = ep_stats_fd;
		goto out;
	}
	snap->endpoints = calloc(DT_MAX_ENDPOINTS, sizeof(*snap->endpoints));
	if (!snap->endpoints) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	walk_intercept(snap, ic_fd, verdicts_fd, ep_stats_fd);
	/* a hash map walked while detourd changes it may hand out some keys twice */
	snap->n_endpoints = dt_sort_unique(snap->endpoints, snap->n_endpoints,
					   sizeof(*snap->endpoints), cmp_addr);
	qsort(snap->endpoints, snap->n_endpoints, sizeof(*snap->endpoints), cmp_display);
	rc = 0;
out:
	if (ep_stats_fd >= 0)
		close(ep_stats_fd);
	if (verdicts_fd >= 0)
		close(verdicts_fd);
	close(ic_fd);
	return rc;
}

/* Endpoints are sorted by provider id, providers come by id: hand each
 * provider its slice. Endpoints of an id no provider uses any more are
 * left out; detourd removes them at its next intercept sync. */
static void attach_endpoints(struct ctl_snapshot *snap)
{
	size_t e = 0;

	for (size_t i = 0; i < snap->n_providers; i++) {
		struct ctl_provider *p = &snap->providers[i];

		while (e < snap->n_endpoints && snap->endpoints[e].provider_id < p->id)
			e++;
		p->endpoints = &snap->endpoints[e];
		while (e < snap->n_endpoints && snap->endpoints[e].provider_id == p->id) {
			p->n_endpoints++;
			e++;
		}
	}
}

static int read_providers(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	int fd;

	fd = ctl_map_open(snap->pin_dir, DT_MAP_PROVIDERS, sizeof(__u32),
			  sizeof(struct dt_provider), err, errlen);
	if (fd < 0)
		return fd;
	snap->providers = calloc(DT_MAX_PROVIDERS, sizeof(*snap->providers));
	if (!snap->providers) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (__u32 id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct ctl_provider *p = &snap->providers[snap->n_providers];
		struct dt_provider val;

		if (bpf_map_lookup_elem(fd, &id, &val) || !val.used)
			continue;
		p->id = id;
		snprintf(p->name, sizeof(p->name), "%.*s", DT_NAME_LEN - 1, val.name);
		p->family = val.family;
		p->port = ntohs(val.port);
		snap->n_providers++;
	}
	close(fd);
	attach_endpoints(snap);
	return 0;
}

/* Rows are sorted by provider id, providers come by id: hand each provider
 * its own row and its models' slice. */
static void attach_health(struct ctl_snapshot *snap)
{
	size_t r = 0;

	for (size_t i = 0; i < snap->n_providers; i++) {
		struct ctl_provider *p = &snap->providers[i];

		while (r < snap->n_health && snap->health[r].provider_id < p->id)
			r++;
		if (r < snap->n_health && snap->health[r].provider_id == p->id &&
		    !snap->health[r].model[0]) {
			p->health = &snap->health[r++];
			p->probes = p->health->v.probes;
		}
		p->models = &snap->health[r];
		while (r < snap->n_health && snap->health[r].provider_id == p->id) {
			p->n_models++;
			r++;
		}
	}
}

int ctl_health_open(const char *pin_dir, int *provider_fd, int *model_fd, char *err, size_t errlen)
{
	*provider_fd = ctl_map_open(pin_dir, DT_MAP_PROVIDER_HEALTH, sizeof(__u32),
				    sizeof(struct dt_provider_health), err, errlen);
	if (*provider_fd < 0)
		return *provider_fd;
	*model_fd = ctl_map_open(pin_dir, DT_MAP_MODEL_HEALTH, sizeof(struct dt_model_key),
				 sizeof(struct dt_provider_health), err, errlen);
	if (*model_fd < 0) {
		close(*provider_fd);
		return *model_fd;
	}
	return 0;
}

static int read_health(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	bool used[DT_MAX_PROVIDERS] = { false };
	int provider_fd, model_fd, n;

	n = ctl_health_open(snap->pin_dir, &provider_fd, &model_fd, err, errlen);
	if (n)
		return n;
	snap->health = calloc(DT_HEALTH_ROWS_MAX, sizeof(*snap->health));
	if (!snap->health) {
		snprintf(err, errlen, "out of memory");
		n = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < snap->n_providers; i++)
		used[snap->providers[i].id] = true;
	n = dt_healthmap_read(provider_fd, model_fd, used, snap->health);
	if (n < 0) {
		snprintf(err, errlen, "%s/%s: %s", snap->pin_dir, DT_MAP_PROVIDER_HEALTH,
			 strerror(-n));
		goto out;
	}
	snap->n_health = (size_t)n;
	attach_health(snap);
	n = 0;
out:
	close(model_fd);
	close(provider_fd);
	return n;
}

static int cmp_override(const void *a, const void *b)
{
	const struct ctl_override *x = a, *y = b;
	int by_provider = strcmp(x->provider, y->provider);

	return by_provider ? by_provider : strcmp(x->model, y->model);
}

/* The published verdict the override shows in: the provider's, or its model's. */
static const struct dt_health_row *override_row(const struct ctl_snapshot *snap,
						 const struct ctl_override *o)
{
	for (size_t i = 0; i < snap->n_providers; i++) {
		const struct ctl_provider *p = &snap->providers[i];

		if (strcmp(p->name, o->provider) != 0)
			continue;
		if (!o->model[0])
			return p->health;
		for (size_t j = 0; j < p->n_models; j++)
			if (strcmp(p->models[j].model, o->model) == 0)
				return &p->models[j];
		return NULL;
	}
	return NULL;
}

static void judge_override(const struct ctl_snapshot *snap, struct ctl_override *o)
{
	const struct dt_health_row *r = override_row(snap, o);

	for (size_t i = 0; i < snap->n_providers; i++)
		o->configured |= strcmp(snap->providers[i].name, o->provider) == 0;
	o->applied = r && r->v.override == o->kind;
}

static int read_overrides(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	struct dt_override_key key, next, *prev = NULL;
	int fd;

	fd = ctl_map_open(snap->pin_dir, DT_MAP_OVERRIDES, sizeof(key), sizeof(struct dt_override),
			  err, errlen);
	if (fd < 0)
		return fd;
	snap->overrides = calloc(DT_MAX_OVERRIDES, sizeof(*snap->overrides));
	if (!snap->overrides) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (snap->n_overrides < DT_MAX_OVERRIDES && bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct ctl_override *o = &snap->overrides[snap->n_overrides];
		struct dt_override val;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &val))
			continue; /* removed meanwhile */
		snprintf(o->provider, sizeof(o->provider), "%.*s", DT_NAME_LEN - 1, key.provider);
		snprintf(o->model, sizeof(o->model), "%.*s", DT_MODEL_LEN - 1, key.model);
		o->kind = val.kind;
		snap->n_overrides++;
	}
	close(fd);
	snap->n_overrides = dt_sort_unique(snap->overrides, snap->n_overrides,
					   sizeof(*snap->overrides), cmp_override);
	for (size_t i = 0; i < snap->n_overrides; i++)
		judge_override(snap, &snap->overrides[i]);
	return 0;
}

static int read_counters(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	int fd, rc;

	fd = ctl_map_open(snap->pin_dir, DT_MAP_STATS, sizeof(__u32), sizeof(struct dt_stats),
			  err, errlen);
	if (fd < 0)
		return fd;
	rc = ctl_read_stats(fd, &snap->counters);
	if (rc)
		snprintf(err, errlen, "%s/%s: %s", snap->pin_dir, DT_MAP_STATS, strerror(-rc));
	close(fd);
	return rc;
}

static int read_proxy_stats(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	__u32 key = 0;
	int fd, rc = 0;

	fd = ctl_map_open(snap->pin_dir, DT_MAP_PROXY_STATS, sizeof(key),
			  sizeof(struct dt_proxy_stats), err, errlen);
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &key, &snap->proxy)) {
		rc = -errno;
		snprintf(err, errlen, "%s/%s: %s", snap->pin_dir, DT_MAP_PROXY_STATS, strerror(errno));
	}
	close(fd);
	return rc;
}

/* The kernel's per-endpoint counters, summed for each provider over its
 * endpoints (current and stale). */
static int read_signals(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	const uint32_t ep_size = sizeof(struct dt_endpoint);
	int tcp_fd, uplink_fd;

	/* either map is absent when its observer never ran with this pin dir */
	tcp_fd = ctl_map_open(snap->pin_dir, DT_MAP_TCP_SIGNALS, ep_size,
			      sizeof(struct dt_tcp_signals), err, errlen);
	if (tcp_fd < 0 && tcp_fd != -ENOENT)
		return tcp_fd;
	uplink_fd = ctl_map_open(snap->pin_dir, DT_MAP_UPLINK_SIGNALS, ep_size,
				 sizeof(struct dt_uplink_signals), err, errlen);
	if (uplink_fd < 0 && uplink_fd != -ENOENT) {
		if (tcp_fd >= 0)
			close(tcp_fd);
		return uplink_fd;
	}
	snap->has_tcp = tcp_fd >= 0;
	snap->has_uplink = uplink_fd >= 0;
	for (size_t i = 0; i < snap->n_providers; i++) {
		struct ctl_provider *p = &snap->providers[i];

		for (size_t j = 0; j < p->n_endpoints; j++) {
			const struct dt_endpoint *ep = &p->endpoints[j].addr;
			struct dt_tcp_signals tcp;
			struct dt_uplink_signals uplink;

			/* an endpoint nothing happened to yet has no entry */
			if (snap->has_tcp && bpf_map_lookup_elem(tcp_fd, ep, &tcp) == 0)
				dt_tcp_signals_add(&p->tcp, &tcp);
			if (snap->has_uplink && bpf_map_lookup_elem(uplink_fd, ep, &uplink) == 0)
				dt_uplink_signals_add(&p->uplink, &uplink);
		}
		p->tcp_connect_mean_us = dt_tcp_signals_connect_mean_ns(&p->tcp) / 1000;
	}
	if (uplink_fd >= 0)
		close(uplink_fd);
	if (tcp_fd >= 0)
		close(tcp_fd);
	return 0;
}

static int cmp_pin(const void *a, const void *b)
{
	const struct dt_link_pin *x = a, *y = b;
	int by_tag = strcmp(x->tag, y->tag);

	if (by_tag)
		return by_tag;
	return x->cgroup_id < y->cgroup_id ? -1 : x->cgroup_id > y->cgroup_id;
}

/* One entry per (tag, cgroup) from the per-program link pins. */
static void group_pins(struct ctl_snapshot *snap, struct dt_link_pin *pins, size_t n)
{
	struct ctl_cgroup *cg = NULL;

	qsort(pins, n, sizeof(*pins), cmp_pin);
	for (size_t i = 0; i < n; i++) {
		if (!cg || strcmp(cg->tag, pins[i].tag) != 0 || cg->id != pins[i].cgroup_id) {
			cg = &snap->cgroups[snap->n_cgroups++];
			snprintf(cg->tag, sizeof(cg->tag), "%s", pins[i].tag);
			cg->id = pins[i].cgroup_id;
		}
		cg->links++;
		cg->attached += pins[i].alive;
	}
}

/* Only cgroups still attached can be found; looking for gone ones would
 * only make the walk visit the whole hierarchy. */
static void find_cgroup_paths(struct ctl_snapshot *snap)
{
	uint64_t *ids = calloc(snap->n_cgroups, sizeof(*ids));
	char **paths = calloc(snap->n_cgroups, sizeof(*paths));
	struct ctl_cgroup **wanted = calloc(snap->n_cgroups, sizeof(*wanted));
	size_t n = 0;

	if (ids && paths && wanted) {
		for (size_t i = 0; i < snap->n_cgroups; i++) {
			if (!snap->cgroups[i].attached)
				continue;
			wanted[n] = &snap->cgroups[i];
			ids[n++] = snap->cgroups[i].id;
		}
		ctl_cgroup_find_paths(ids, paths, n);
		for (size_t i = 0; i < n; i++)
			wanted[i]->path = paths[i]; /* ownership moves to the snapshot */
	}
	free(wanted);
	free(paths);
	free(ids);
}

static int read_cgroups(struct ctl_snapshot *snap, char *err, size_t errlen)
{
	struct dt_link_pin *pins = calloc(CTL_MAX_LINK_PINS, sizeof(*pins));
	int n;

	if (!pins) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = dt_links_list(snap->pin_dir, pins, CTL_MAX_LINK_PINS);
	if (n < 0) {
		snprintf(err, errlen, "%s/%s: %s", snap->pin_dir, DT_PIN_LINKS, strerror(-n));
		free(pins);
		return n;
	}
	snap->cgroups = calloc(n ? (size_t)n : 1, sizeof(*snap->cgroups));
	if (!snap->cgroups) {
		snprintf(err, errlen, "out of memory");
		free(pins);
		return -ENOMEM;
	}
	group_pins(snap, pins, (size_t)n);
	free(pins);
	find_cgroup_paths(snap);
	return 0;
}

int ctl_snapshot_read(struct ctl_snapshot *snap, const char *pin_dir, char *err, size_t errlen)
{
	int rc;

	memset(snap, 0, sizeof(*snap));
	snap->pin_dir = pin_dir;
	rc = ctl_read_settings(pin_dir, &snap->settings, err, errlen);
	if (rc)
		return rc;
	/* right after the settings: the heartbeat age is measured against it */
	snap->now_ns = dt_now_ns();
	ctl_agent_assess(&snap->settings, snap->now_ns, &snap->agent);

	rc = read_endpoints(snap, err, errlen);
	if (!rc)
		rc = read_providers(snap, err, errlen);
	if (!rc)
		rc = read_health(snap, err, errlen);
	if (!rc)
		rc = read_overrides(snap, err, errlen);
	if (!rc)
		rc = read_counters(snap, err, errlen);
	if (!rc)
		rc = read_proxy_stats(snap, err, errlen);
	if (!rc)
		rc = read_signals(snap, err, errlen);
	if (!rc)
		rc = read_cgroups(snap, err, errlen);
	if (rc)
		ctl_snapshot_free(snap);
	return rc;
}

void ctl_snapshot_free(struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_cgroups; i++)
		free(snap->cgroups[i].path);
	free(snap->cgroups);
	free(snap->providers);
	free(snap->health);
	free(snap->overrides);
	free(snap->endpoints);
	memset(snap, 0, sizeof(*snap));
}
