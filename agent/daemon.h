/* SPDX-License-Identifier: MIT */
/* detourd's state and life cycle: start, reload, heartbeat, shutdown. */
#ifndef DT_DAEMON_H
#define DT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include "bpfobj.h"
#include "detour.h"

struct event_base;
struct event;
struct dt_cfg;
struct dt_itable;
struct dt_epstate;
struct dt_health;
struct dt_overrides;
struct dt_listener;
struct dt_relay;
struct dt_proxy;
struct dt_resolver;
struct daemon_signals;
struct dt_uplink;
struct daemon_obs;

struct detourd {
	struct event_base *base;
	struct dt_cfg *cfg;
	const char *pidfile;
	int lock_fd;                          /* flock on the pin dir: one agent per dir */
	int diag_fd;                          /* sock_diag: cookies of accepted peers */
	struct dt_bpf bpf;
	struct dt_itable *itable;
	struct dt_epstate *endpoints;         /* endpoint verdicts (relay) */
	struct dt_health *health;             /* provider and model verdicts (daemon_health.c) */
	struct event *health_timer;
	struct daemon_signals *signals;       /* probes, kernel TCP, netlink (daemon_signals.c) */
	struct event *health_poll;            /* overrides map, verdict refresh */
	uint64_t health_published;            /* when every verdict was last written */
	struct dt_overrides *overrides;       /* as last applied from the overrides map */
	struct dt_uplink *uplink;             /* NULL: none configured, or failed (daemon_uplink.c) */
	struct dt_listener *listener;
	struct dt_relay *relay;
	struct dt_proxy *proxy;               /* NULL: everything is relayed */
	struct daemon_obs *obs;               /* /metrics, access log (daemon_obs.c) */
	struct dt_proxy_stats proxy_stats;    /* as last written to its map */
	bool proxy_stats_written;
	uint64_t spend_answers;               /* answers counted when spend.json was written */
	bool spend_written;
	bool spend_failing;                   /* the last write failed (logged once) */
	struct dt_resolver *resolver;
	struct event *beat_timer, *dns_timer;
	struct event *drain_timer;            /* set once shutdown has begun */
	uint64_t drain_deadline_ns;
	bool detached;                        /* hook disabled, links removed */
	struct event *sig_term, *sig_int, *sig_hup;
	uint32_t ids[DT_MAX_PROVIDERS];       /* provider id of cfg->providers[i] */
	char names[DT_MAX_PROVIDERS][DT_NAME_LEN]; /* by id; "" = free */
};

/* Take ownership of cfg and bring the agent up. Returns 0 or -1 (logged). */
int detourd_start(struct detourd *d, struct dt_cfg *cfg, const char *pidfile);
/* Run until SIGTERM/SIGINT, then shut down cleanly. */
int detourd_run(struct detourd *d);
/* Undo a failed detourd_start(). */
void detourd_abort(struct detourd *d);

/* daemon_health.c: the health engine of d, from d->cfg, publishing into
 * d->bpf (needs d->base, d->bpf, d->names). */
int daemon_health_start(struct detourd *d);
void daemon_health_reconfigure(struct detourd *d);
/* Failover mode, once the hook redirects at start: providers already not
 * HEALTHY (drained while the agent was down) lose their direct connections,
 * as a provider leaving HEALTHY later does. */
void daemon_health_abort_unhealthy(struct detourd *d);
void daemon_health_stop(struct detourd *d);

/* daemon_signals.c: the health engine's probes, kernel TCP signals and
 * route/link events, each as d->cfg says; one that cannot start is logged
 * and left out. apply: at start and on reload, after the proxy and the
 * intercept table; endpoints: after the table changed; health_changed:
 * from the engine's change callback; stop: before the proxy is freed. */
void daemon_signals_apply(struct detourd *d);
void daemon_signals_endpoints(struct detourd *d);
void daemon_signals_health_changed(struct detourd *d);
void daemon_signals_stop(struct detourd *d);
/* A provider reset or a failed path another kernel source saw (the uplink,
 * daemon_uplink.c): counted in this loop turn's sample with tcpsig's. */
void daemon_signals_kernel_failure(struct detourd *d, uint32_t id, bool reset, uint64_t now);
/* What provider id's active probes did and cost; zeros when not probed. */
struct dt_probe_stats daemon_signals_probe_stats(const struct detourd *d, uint32_t id);
/* tcpsig reports the failures of applications' direct sockets now. */
bool daemon_signals_tcpsig_on(const struct detourd *d);

/* daemon_uplink.c: the uplink XDP program of d->cfg, feeding d->health
 * (needs d->base, d->bpf, d->itable, d->health). Never fails the agent. */
void daemon_uplink_start(struct detourd *d);
void daemon_uplink_reconfigure(struct detourd *d);
void daemon_uplink_stop(struct detourd *d);

/* daemon_obs.c: /metrics and the access log as d->cfg says, handed to
 * d->proxy: at start and on reload (reopening the access log), after the
 * proxy; stop: before the proxy is freed. */
void daemon_obs_apply(struct detourd *d);
void daemon_obs_stop(struct detourd *d);

/* daemon_spend.c: what the answers cost, into <state_dir>/DT_SPEND_FILE
 * when it changed (at most once a beat). */
#define DT_SPEND_FILE "spend.json"
void daemon_spend_write(struct detourd *d);

#endif
