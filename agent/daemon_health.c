// SPDX-License-Identifier: MIT
/*
 * The agent's health engine (health.h) and what it takes to run it: options
 * from the configuration, every change logged and the provider's verdict
 * written to the provider_health map at once, and the ticks its time-driven
 * changes (ejections ending, rate limits resetting) need.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <event2/event.h>

#include "bpfobj.h"
#include "config.h"
#include "daemon.h"
#include "health.h"
#include "log.h"

#define NS_PER_US 1000ull
/* Ticks also come at least this often: changes the engine schedules
 * without announcing them (a trial slot that was never reported) wait no
 * longer than this. */
#define TICK_MAX_NS (1000ull * 1000 * 1000)

static struct dt_health_opts opts_from(const struct dt_cfg *cfg)
{
	struct dt_health_opts o = cfg->health;

	o.consecutive_failures = cfg->proxy.provider_failures_to_eject;
	o.eject_base_ms = cfg->proxy.provider_eject_ms;
	o.seed = (uint64_t)getpid() ^ dt_now_ns();
	return o;
}

static void publish(struct detourd *d, uint32_t id, uint64_t now)
{
	struct dt_health_verdict v;
	struct dt_provider_health ph = {0};
	int rc;

	if (!dt_health_verdict(d->health, id, NULL, now, &v))
		return;
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
	rc = dt_bpf_set_provider_health(&d->bpf, id, &ph);
	if (rc)
		log_warn("health: provider_health map: %s", strerror(-rc));
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

/* Called inside the health engine's calls, on the loop's thread. */
static void on_change(void *arg, const struct dt_health_change *c)
{
	struct detourd *d = arg;

	log_info("health: %s%s%s: %s -> %s (%s)", d->names[c->provider_id], c->model ? " model " : "",
		 c->model ? c->model : "", dt_health_state_name(c->from), dt_health_state_name(c->to),
		 c->reason_text);
	if (!c->model)
		publish(d, c->provider_id, c->since);
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

/* Every configured provider's verdict in the map, as the engine has it. */
static void publish_all(struct detourd *d)
{
	uint64_t now = dt_now_ns();

	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++)
		if (d->names[id][0])
			publish(d, id, now);
}

int daemon_health_start(struct detourd *d)
{
	struct dt_health_opts o = opts_from(d->cfg);

	d->health = dt_health_new(&o, on_change, d);
	d->health_timer = d->health ? evtimer_new(d->base, on_tick, d) : NULL;
	if (!d->health_timer)
		return -1;
	publish_all(d);
	arm(d);
	return 0;
}

void daemon_health_reconfigure(struct detourd *d)
{
	struct dt_health_opts o = opts_from(d->cfg);

	dt_health_set_opts(d->health, &o);
	publish_all(d);
	arm(d);
}

void daemon_health_stop(struct detourd *d)
{
	if (d->health_timer)
		event_free(d->health_timer);
	d->health_timer = NULL;
	dt_health_free(d->health);
	d->health = NULL;
}
