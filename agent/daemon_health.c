// SPDX-License-Identifier: MIT
/*
 * The agent's health engine (health.h) and what it takes to run it: options
 * from the configuration, every change logged and the verdict written to
 * the provider_health or model_health map at once, the ticks its
 * time-driven changes (ejections ending, rate limits resetting) need, the
 * operator's overrides polled from their map, and in failover mode the
 * abort of direct connections to a provider that stops being healthy.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <event2/event.h>

#include "bpfobj.h"
#include "config.h"
#include "daemon.h"
#include "enroll.h"
#include "health.h"
#include "intercept.h"
#include "log.h"
#include "overrides.h"
#include "sockdiag.h"

#define NS_PER_US 1000ull
/* Ticks also come at least this often: changes the engine schedules
 * without announcing them (a trial slot that was never reported) wait no
 * longer than this. */
#define TICK_MAX_NS (1000ull * 1000 * 1000)
/* The overrides map is polled this often: BPF maps tell no one of a
 * write, and polling an empty map costs one syscall. */
#define OVERRIDE_POLL_MS 50
/* Counters, rates, baselines and probe counts of every verdict are written
 * again this often (changes are written at once); models the engine forgot
 * without a change leave the map then too. */
#define REFRESH_NS (1000ull * 1000 * 1000)

static struct dt_health_opts opts_from(const struct dt_cfg *cfg)
{
	struct dt_health_opts o = cfg->health;

	o.consecutive_failures = cfg->proxy.provider_failures_to_eject;
	o.eject_base_ms = cfg->proxy.provider_eject_ms;
	o.seed = (uint64_t)getpid() ^ dt_now_ns();
	return o;
}

/* The verdict of the provider (model NULL) or of one of its models, into
 * its map; a model the engine no longer tracks leaves it. */
static void publish(struct detourd *d, uint32_t id, const char *model, uint64_t now)
{
	struct dt_health_verdict v;
	struct dt_provider_health ph = {0};
	int rc;

	if (!dt_health_verdict(d->health, id, model, now, &v)) {
		if (model)
			dt_bpf_set_model_health(&d->bpf, id, model, NULL);
		return;
	}
	ph.state = v.state;
	ph.reason = v.reason;
	snprintf(ph.reason_text, sizeof(ph.reason_text), "%s", v.reason_text);
	ph.since_ns = v.since;
	ph.until_ns = v.until;
	ph.ejections = v.ejections;
	ph.consecutive_failures = v.consecutive_failures;
	ph.calls = v.calls;
	ph.error_rate_percent = v.error_rate_percent;
	ph.slow_rate_percent = v.slow_rate_percent;
	ph.override = v.override;
	ph.ttft_baseline_ns = v.ttft_baseline_ns;
	ph.connect_baseline_ns = v.connect_baseline_ns;
	/* probes ask the provider as a whole */
	if (!model)
		ph.probes = daemon_signals_probe_stats(d, id);
	rc = model ? dt_bpf_set_model_health(&d->bpf, id, model, &ph)
		   : dt_bpf_set_provider_health(&d->bpf, id, &ph);
	if (rc)
		log_warn("health: %s map: %s", model ? DT_MAP_MODEL_HEALTH : DT_MAP_PROVIDER_HEALTH,
			 strerror(-rc));
}

static void arm(struct detourd *d)
{
	uint64_t now = dt_now_ns(), at = dt_health_next_event(d->health), in;
	struct timeval tv;

	if (at > now + TICK_MAX_NS)
		at = now + TICK_MAX_NS;
	in = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(in / 1000000000ull);
	tv.tv_usec = (suseconds_t)(in % 1000000000ull / NS_PER_US);
	evtimer_add(d->health_timer, &tv);
}

/* The cgroups the hook acts on: every enrolled one (configuration or
 * detourctl) and those below them. */
static int enrolled_cgroups(const struct detourd *d, uint64_t **ids, size_t *n)
{
	struct dt_link_pin *pins = NULL;
	uint64_t *roots = NULL;
	size_t max = 256, n_roots = 0;
	int n_pins = (int)max, rc;

	/* a full list may have left pins out: ask again with room for more */
	while (n_pins == (int)max) {
		free(pins);
		free(roots);
		max *= 2;
		pins = calloc(max, sizeof(*pins));
		roots = calloc(max, sizeof(*roots));
		n_pins = pins && roots ? dt_links_list(d->cfg->pin_dir, pins, max) : -ENOMEM;
	}
	for (int i = 0; i < n_pins; i++)
		if (pins[i].alive && pins[i].prog == DT_PROG_CONNECT4)
			roots[n_roots++] = pins[i].cgroup_id;
	rc = n_pins < 0 ? n_pins : dt_cgroup_subtree(roots, n_roots, ids, n);
	free(roots);
	free(pins);
	return rc;
}

/*
 * Failover mode: the provider stopped being healthy. Its new verdict is
 * already in the map, so new connects are redirected; connections enrolled
 * applications opened directly while it was healthy (a keep-alive client
 * waiting on a hung provider) are aborted, so that their owners reconnect,
 * through the proxy. The proxy's own connections carry the mark and stay.
 * sock_diag sees the agent's network namespace only.
 */
static void abort_direct(struct detourd *d, uint32_t provider_id)
{
	struct dt_endpoint *eps = calloc(DT_MAX_ENDPOINTS, sizeof(*eps));
	struct dt_sockdiag_victims v = { .eps = eps, .skip_mark = d->cfg->mark };
	uint64_t *cgroups = NULL, started = dt_now_ns();
	int rc = -ENOMEM;

	if (eps) {
		v.n_eps = dt_itable_endpoints(d->itable, provider_id, eps, DT_MAX_ENDPOINTS);
		rc = enrolled_cgroups(d, &cgroups, &v.n_cgroups);
	}
	/* nothing intercepted or enrolled (yet: at start, overrides are applied
	 * before the cgroups are; daemon_health_abort_unhealthy comes after) */
	if (rc == 0 && (!v.n_eps || !v.n_cgroups))
		goto out;
	if (rc == 0) {
		v.cgroups = cgroups;
		rc = dt_sockdiag_destroy(&v);
	}
	if (rc < 0)
		log_error("failover: %s: aborting its direct connections: %s",
			  d->names[provider_id], strerror(-rc));
	else
		log_info("failover: %s: aborted %d direct connection(s) of enrolled applications "
			 "(%zu cgroup(s), %zu endpoint(s), %llu us)", d->names[provider_id], rc,
			 v.n_cgroups, v.n_eps, (unsigned long long)((dt_now_ns() - started) / NS_PER_US));
out:
	free(cgroups);
	free(eps);
}

void daemon_health_abort_unhealthy(struct detourd *d)
{
	uint64_t now = dt_now_ns();

	if (d->cfg->mode != DT_MODE_FAILOVER)
		return;
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct dt_health_verdict v;

		if (d->names[id][0] && dt_health_verdict(d->health, id, NULL, now, &v) &&
		    v.state != DT_HEALTHY)
			abort_direct(d, id);
	}
}

/* Called inside the health engine's calls, on the loop's thread. */
static void on_change(void *arg, const struct dt_health_change *c)
{
	struct detourd *d = arg;

	log_info("health: %s%s%s: %s -> %s (%s)", d->names[c->provider_id], c->model ? " model " : "",
		 c->model ? c->model : "", dt_health_state_name(c->from), dt_health_state_name(c->to),
		 c->reason_text);
	if (c->model && c->reason == DT_HR_FORGOTTEN)
		dt_bpf_set_model_health(&d->bpf, c->provider_id, c->model, NULL);
	else
		publish(d, c->provider_id, c->model, c->since);
	if (!c->model && d->cfg->mode == DT_MODE_FAILOVER && c->from == DT_HEALTHY &&
	    c->to != DT_HEALTHY)
		abort_direct(d, c->provider_id);
	if (d->health_timer)
		arm(d);
	daemon_signals_health_changed(d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;

	(void)fd;
	(void)what;
	dt_health_tick(d->health, dt_now_ns());
	arm(d);
}

/* model_health entries of providers gone or of models no longer tracked. */
static void sweep_models(struct detourd *d)
{
	struct dt_model_key key, next;
	struct dt_health_verdict v;
	uint64_t now = dt_now_ns();
	bool more = bpf_map_get_next_key(d->bpf.model_health_fd, NULL, &key) == 0;

	while (more) {
		/* the next key first: the current one may go */
		more = bpf_map_get_next_key(d->bpf.model_health_fd, &key, &next) == 0;
		key.model[DT_MODEL_LEN - 1] = '\0';
		if (key.provider_id >= DT_MAX_PROVIDERS || !d->names[key.provider_id][0] ||
		    !dt_health_verdict(d->health, key.provider_id, key.model, now, &v))
			dt_bpf_set_model_health(&d->bpf, key.provider_id, key.model, NULL);
		key = next;
	}
}

/* Every configured provider's verdict and its models' in the maps, as the
 * engine has them, and nothing else. */
static void publish_all(struct detourd *d)
{
	uint64_t now = dt_now_ns();

	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		const char *models[DT_HEALTH_MODEL_SLOTS];
		size_t n;

		if (!d->names[id][0])
			continue;
		publish(d, id, NULL, now);
		n = dt_health_models(d->health, id, models);
		for (size_t i = 0; i < n; i++)
			publish(d, id, models[i], now);
	}
	sweep_models(d);
	d->health_published = now;
}

/* The operator's overrides as they are now in the map; their verdict
 * changes are published by on_change. */
static void apply_overrides(struct detourd *d)
{
	int rc = dt_overrides_sync(d->overrides, d->bpf.overrides_fd, d->names, d->health,
				   dt_now_ns());

	if (rc < 0)
		log_warn("health: %s map: %s", DT_MAP_OVERRIDES, strerror(-rc));
	else if (rc > 0)
		arm(d);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;

	(void)fd;
	(void)what;
	apply_overrides(d);
	if (dt_now_ns() - d->health_published >= REFRESH_NS)
		publish_all(d);
}

int daemon_health_start(struct detourd *d)
{
	struct dt_health_opts o = opts_from(d->cfg);
	struct timeval poll = { .tv_usec = OVERRIDE_POLL_MS * 1000 };

	d->health = dt_health_new(&o, on_change, d);
	d->overrides = dt_overrides_new();
	if (!d->health || !d->overrides)
		return -1;
	d->health_timer = evtimer_new(d->base, on_tick, d);
	d->health_poll = event_new(d->base, -1, EV_PERSIST, on_poll, d);
	if (!d->health_timer || !d->health_poll || event_add(d->health_poll, &poll))
		return -1;
	/* the overrides left pinned hold from the first request on */
	apply_overrides(d);
	publish_all(d);
	arm(d);
	return 0;
}

void daemon_health_reconfigure(struct detourd *d)
{
	struct dt_health_opts o = opts_from(d->cfg);

	dt_health_set_opts(d->health, &o);
	/* providers added or removed: their overrides apply or end now */
	apply_overrides(d);
	publish_all(d);
	arm(d);
}

void daemon_health_stop(struct detourd *d)
{
	if (d->health_poll)
		event_free(d->health_poll);
	d->health_poll = NULL;
	if (d->health_timer)
		event_free(d->health_timer);
	d->health_timer = NULL;
	dt_overrides_free(d->overrides);
	d->overrides = NULL;
	dt_health_free(d->health);
	d->health = NULL;
}
