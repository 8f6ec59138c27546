/* SPDX-License-Identifier: MIT */
/* Active probes: one cheap authenticated request per provider, sent through
 * the upstream client when the health engine says it is due
 * (dt_health_probe_due) and reported to it (dt_health_probe). The engine
 * owns the schedule (interval, jitter, back-off while traffic proves
 * health); the prober keeps one timer at the earliest due time, at most one
 * probe in flight per provider. A probe is free by default (the family's
 * model list); a one-token streamed completion that measures the time to
 * first token is opt-in per provider, capped per hour and its tokens
 * counted, as are the probes sent and failed (detourd publishes them in
 * provider_health). Runs on the loop's thread. See docs/probe.md. */
#ifndef DT_PROBE_H
#define DT_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct dt_xusage;

struct event_base;
struct dt_upstream;
struct dt_health;
struct dt_prober;

/* The health engine's clock: CLOCK_MONOTONIC ns, or a test's. */
typedef uint64_t (*dt_probe_clock_fn)(void *ctx);

/* A TTFT probe was answered: what it used (u->known false when the answer
 * told nothing), for the cost accounting. */
typedef void (*dt_probe_cost_fn)(void *ctx, uint32_t provider_id, const char *model,
				 const struct dt_xusage *u);

struct dt_prober_opts {
	unsigned timeout_ms;        /* a probe's whole exchange (0: 10000) */
	dt_probe_clock_fn clock;    /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
	dt_probe_cost_fn cost;      /* NULL: not told */
	void *cost_ctx;
};

/* One provider to probe; every string is copied (the key wiped on free). */
struct dt_probe_provider {
	uint32_t id;                /* the health engine's provider id */
	const char *name;           /* for logs */
	enum dt_family family;
	const char *base_url;       /* where its API lives: https://api.openai.com/v1 */
	const char *key;            /* NULL or "": probed without credentials */
	/* Opt-in: a one-token streamed completion to this model measures the
	 * time to first token. NULL or "": model-list probes only. */
	const char *ttft_model;
	unsigned ttft_per_hour;     /* at most this many an hour (0: 4) */
};

/* NULL with a reason in err on failure. u and h must outlive the prober. */
struct dt_prober *dt_prober_new(struct event_base *base, struct dt_upstream *u,
				struct dt_health *h, const struct dt_prober_opts *o,
				char *err, size_t errlen);
/* Cancels every probe in flight, no report. Not from inside dt_health's
 * change callback of a probe report. */
void dt_prober_free(struct dt_prober *p);

/* The providers to probe (a reload): a provider whose id stays keeps its
 * TTFT budget, its counts and its probe in flight (cancelled when its URL,
 * family or key changed); the others are dropped. Returns 0, or -ENOMEM
 * with the previous list kept; ids must be < DT_MAX_PROVIDERS and unique
 * (-EINVAL). */
int dt_prober_set_providers(struct dt_prober *p, const struct dt_probe_provider *v, size_t n);

/* A new timeout (a reload), for the probes sent from now on (0: 10000). */
void dt_prober_set_timeout(struct dt_prober *p, unsigned timeout_ms);

/* The engine's schedule moved outside a probe report (a change to DOWN or
 * PROBING brings the next probe forward): re-arm the timer. Safe from the
 * engine's change callback. */
void dt_prober_reschedule(struct dt_prober *p);

/* What provider id's probes did and cost (struct dt_probe_stats, detour.h);
 * zeros when it is not probed. */
struct dt_probe_stats dt_prober_stats(const struct dt_prober *p, uint32_t id);

#endif
