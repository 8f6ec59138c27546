// SPDX-License-Identifier: MIT
/*
 * The uplink XDP program in the agent ([health] uplink, docs/uplink.md):
 * attached at start and on a reload that names another interface or mode,
 * detached on stop, and every reset or ICMP error it reports that nobody on
 * this host reports already handed to the health engine as a kernel failure
 * of the endpoint's provider, in the loop turn's sample (daemon_signals.c).
 * Fails open: an attach that fails is logged and the agent runs without it.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "intercept.h"
#include "log.h"
#include "uplink.h"

static const char *const state_names[] = {
	[1] = "established", [2] = "syn_sent", [3] = "syn_recv", [4] = "fin_wait1",
	[5] = "fin_wait2", [6] = "time_wait", [7] = "close", [8] = "close_wait",
	[9] = "last_ack", [10] = "listen", [11] = "closing", [12] = "new_syn_recv",
};

static const char *owner_of(const struct dt_uplink_event *ev)
{
	if (!(ev->flags & DT_UPLINK_F_LOCAL))
		return "no local socket";
	if (ev->sk_state < sizeof(state_names) / sizeof(state_names[0]) && state_names[ev->sk_state])
		return state_names[ev->sk_state];
	return "local socket";
}

/* Whether someone on this host reports it already. A reset to a local
 * socket is learnt by its owner at once: the agent's own (SO_MARK) report
 * it themselves (the proxy, a probe, the relay), an application's direct
 * one is tcpsig's while it runs. An ICMP error is not, or not at once: TCP
 * takes most as soft errors and keeps trying, so the uplink's is the early
 * word; one that ends a connect is reported by the owner too, which the
 * engine acts on only when nothing connected (docs/uplink.md). Nor is
 * anything about a flow this host forwards. */
static const char *reported_by(const struct detourd *d, const struct dt_uplink_event *ev)
{
	if (ev->kind != DT_UPLINK_RESET || !(ev->flags & DT_UPLINK_F_LOCAL))
		return NULL;
	if (ev->flags & DT_UPLINK_F_AGENT)
		return "the agent's own socket: its owner reports it";
	return daemon_signals_tcpsig_on(d) ? "tcpsig reports it" : NULL;
}

static void on_uplink_event(const struct dt_uplink_event *ev, void *arg)
{
	struct detourd *d = arg;
	char ep[DT_ENDPOINT_STRLEN];
	const char *by;
	uint32_t id;

	if (dt_itable_provider(d->itable, &ev->ep, &id) || id >= DT_MAX_PROVIDERS || !d->names[id][0])
		return; /* no longer a provider's endpoint */
	by = reported_by(d, ev);
	log_debug("uplink: %s %s %s (icmp %u/%u, %s%s%s)", d->names[id],
		  dt_endpoint_str(&ev->ep, ep, sizeof(ep)), dt_uplink_kind_name(ev->kind),
		  ev->icmp_type, ev->icmp_code, owner_of(ev), by ? ", " : "", by ? by : "");
	if (!by)
		daemon_signals_kernel_failure(d, id, ev->kind == DT_UPLINK_RESET, ev->ts_ns);
}

static void uplink_open(struct detourd *d)
{
	const struct dt_cfg *cfg = d->cfg;
	struct dt_uplink_opts o = {
		.intercept_fd = d->bpf.intercept_fd,
		.ifname = cfg->uplink,
		.mode = cfg->uplink_xdp_mode,
		.mark = cfg->mark,
		.pin_dir = cfg->pin_dir,
		.cb = on_uplink_event,
		.arg = d,
	};
	char err[512];

	if (dt_uplink_open(&d->uplink, d->base, &o, err, sizeof(err))) {
		log_warn("%s; going on without uplink signals", err);
		return;
	}
	log_info("uplink: watching %s (%s XDP)", cfg->uplink, dt_uplink_mode_name(d->uplink));
}

void daemon_uplink_start(struct detourd *d)
{
	if (d->cfg->uplink[0])
		uplink_open(d);
}

/* Detached and attached again only when the interface or the mode
 * changed, or the last attach failed (the interface may be there now). */
void daemon_uplink_reconfigure(struct detourd *d)
{
	const struct dt_cfg *cfg = d->cfg;

	if (d->uplink && dt_uplink_attached_as(d->uplink, cfg->uplink, cfg->uplink_xdp_mode))
		return;
	daemon_uplink_stop(d);
	daemon_uplink_start(d);
}

void daemon_uplink_stop(struct detourd *d)
{
	if (!d->uplink)
		return;
	dt_uplink_close(d->uplink);
	d->uplink = NULL;
	log_info("uplink: detached");
}
