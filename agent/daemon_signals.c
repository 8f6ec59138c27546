// SPDX-License-Identifier: MIT
/*
 * The health engine's signal sources besides the proxy's own outcomes
 * (docs/health.md): active probes through the proxy's upstream client
 * (probe.c), the kernel's TCP signals per provider endpoint (tcpsig.c) and
 * route and link changes on the way to the endpoints (netwatch.c). Each is
 * optional and fails open: one that cannot start is logged and the agent
 * runs without it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "health.h"
#include "intercept.h"
#include "log.h"
#include "netwatch.h"
#include "probe.h"
#include "proxy.h"
#include "resolver.h"
#include "spend.h"
#include "tcpsig.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Kernel signals of one provider gathered in one loop turn. */
struct tcp_pending {
	struct dt_tcp_sample s;
	uint64_t latency_sum_ns;
	uint32_t timed;                       /* connects with a latency */
	bool queued;
};

/* An endpoint netwatch says cannot be reached now, and why. */
struct lost_endpoint {
	struct dt_endpoint ep;
	bool route_lost;
	bool link_down;
};

struct daemon_signals {
	struct dt_prober *prober;
	struct dt_tcpsig *tcpsig;
	struct event *tcp_flush;              /* feeds the turn's kernel signals to the engine */
	struct tcp_pending tcp[DT_MAX_PROVIDERS];
	struct dt_netwatch *netwatch;
	struct lost_endpoint *lost;
	size_t n_lost;
	enum dt_health_path path[DT_MAX_PROVIDERS]; /* as last told to the engine */
	uint32_t mark;                        /* tcpsig and netwatch were opened with */
};

/* ---- active probes ---------------------------------------------------------- */

static uint64_t engine_clock(void *ctx)
{
	(void)ctx;
	return dt_now_ns();
}

/* Every provider to probe, in the prober's terms; keys are the proxy's. */
static void set_probed(struct detourd *d)
{
	struct dt_probe_provider v[DT_MAX_PROVIDERS];
	size_t n = 0;

	for (size_t i = 0; i < d->cfg->n_providers; i++) {
		const struct dt_provider_cfg *pc = &d->cfg->providers[i];

		if (!pc->probe)
			continue;
		v[n++] = (struct dt_probe_provider){
			.id = d->ids[i], .name = pc->name, .family = pc->family,
			.base_url = pc->base_url, .key = dt_proxy_provider_key(d->proxy, d->ids[i]),
			.ttft_model = pc->probe_ttft_model, .ttft_per_hour = pc->probe_ttft_per_hour,
		};
	}
	if (dt_prober_set_providers(d->signals->prober, v, n))
		log_error("probes: out of memory; probing the previous providers");
}

/* A TTFT probe costs as an answer does: counted with the proxy's. */
static void probe_cost(void *ctx, uint32_t provider_id, const char *model, const struct dt_xusage *u)
{
	struct detourd *d = ctx;

	if (d->proxy)
		dt_proxy_account(d->proxy, DT_SPEND_PROBE, provider_id, model, u);
}

/* Probes go through the proxy's upstream: without the proxy, none. */
static void probes_apply(struct detourd *d)
{
	struct daemon_signals *s = d->signals;
	char err[256] = "";

	if (!d->cfg->probes || !d->proxy) {
		if (s->prober)
			log_info("probes stopped");
		dt_prober_free(s->prober);
		s->prober = NULL;
		return;
	}
	if (!s->prober) {
		struct dt_prober_opts o = { .timeout_ms = d->cfg->probe_timeout_ms, .clock = engine_clock,
					    .cost = probe_cost, .cost_ctx = d };

		s->prober = dt_prober_new(d->base, dt_proxy_upstream(d->proxy), d->health, &o,
					  err, sizeof(err));
		if (!s->prober) {
			log_warn("probes: %s; running without them", err);
			return;
		}
	}
	dt_prober_set_timeout(s->prober, d->cfg->probe_timeout_ms);
	set_probed(d);
}

/* ---- kernel TCP signals ------------------------------------------------------- */

/* One loop turn's events of a provider are one sample: the engine counts a
 * refused connect twice (kernel and proxy) only when nothing connected in
 * it, which takes the turn's successes to see (docs/health.md). */
static void turn_queue(struct daemon_signals *s, struct tcp_pending *t)
{
	if (!t->queued) {
		t->queued = true;
		event_active(s->tcp_flush, EV_TIMEOUT, 0);
	}
}

static void on_tcp_flush(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;
	struct daemon_signals *s = d->signals;
	uint64_t now = dt_now_ns();

	(void)fd;
	(void)what;
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct tcp_pending *t = &s->tcp[id];

		if (!t->queued)
			continue;
		if (t->timed)
			t->s.connect_latency_ns = t->latency_sum_ns / t->timed;
		if (d->names[id][0])
			dt_health_tcp(d->health, id, &t->s, now);
		*t = (struct tcp_pending){0};
	}
}

/* What the kernel saw of a socket to a provider endpoint, into the turn's
 * sample of that provider. Connect latency and retransmits count for every
 * socket. Failures count only for sockets the agent does not own: its own
 * (SO_MARK) fail in the hands of their owner, which reports it with the
 * attempt's start (the proxy, a probe) or keeps it per endpoint (the
 * relay), so counting them here would count one failure twice and race the
 * owner's report. What is left is what nobody else sees: applications'
 * direct connections (failover mode, a hook failing open). */
static void on_tcp_signal(const struct dt_endpoint *ep, enum dt_tcp_kind kind, __u64 value,
			  __u64 now, const struct dt_tcp_event *ev, void *arg)
{
	struct detourd *d = arg;
	struct daemon_signals *s = d->signals;
	bool own = ev->flags & DT_TCP_F_PROXY;
	struct tcp_pending *t;
	uint32_t id;
	char addr[64];

	(void)now;
	if (dt_itable_provider(d->itable, ep, &id) || id >= DT_MAX_PROVIDERS)
		return;
	t = &s->tcp[id];
	if (kind == DT_TCP_CONNECT_FAIL || kind == DT_TCP_RESET_RECV)
		log_debug("tcp: %s %s: %s (%s socket)%s%s", d->names[id],
			  dt_endpoint_str(ep, addr, sizeof(addr)), dt_tcp_kind_name(kind),
			  own ? "the agent's" : "a direct", kind == DT_TCP_CONNECT_FAIL ? ": " : "",
			  kind == DT_TCP_CONNECT_FAIL ? strerror((int)value) : "");
	switch (kind) {
	case DT_TCP_CONNECT_OK:
		/* a connect begun before the programs were attached has no
		 * latency: it counts as a connect, not in the mean */
		t->s.connects++;
		if (value) {
			t->timed++;
			t->latency_sum_ns += value;
		}
		break;
	case DT_TCP_CONNECT_FAIL:
		if (own)
			return;
		t->s.connect_failures++;
		break;
	case DT_TCP_RESET_RECV:
		if (own)
			return;
		t->s.resets++;
		break;
	case DT_TCP_RETRANSMIT:
		t->s.retransmits++;
		break;
	default:
		/* abandoned connects and resets sent are this host's doing */
		return;
	}
	turn_queue(s, t);
}

void daemon_signals_kernel_failure(struct detourd *d, uint32_t id, bool reset, uint64_t now)
{
	struct daemon_signals *s = d->signals;
	struct dt_tcp_sample one = { .resets = reset, .connect_failures = !reset };
	struct tcp_pending *t;

	if (!s) {
		dt_health_tcp(d->health, id, &one, now);
		return;
	}
	t = &s->tcp[id];
	t->s.resets += one.resets;
	t->s.connect_failures += one.connect_failures;
	turn_queue(s, t);
}

bool daemon_signals_tcpsig_on(const struct detourd *d)
{
	return d->signals && d->signals->tcpsig;
}

/* The cookie of the agent's network namespace: the sockets the agent and
 * the applications it redirects make are there. 0 (every namespace) when
 * the kernel cannot tell (before 5.14). */
static __u64 own_netns_cookie(void)
{
	__u64 cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	if (fd >= 0)
		close(fd);
	return cookie;
}

static void tcpsig_stop(struct daemon_signals *s)
{
	dt_tcpsig_close(s->tcpsig);
	s->tcpsig = NULL;
}

static void tcpsig_apply(struct detourd *d)
{
	struct daemon_signals *s = d->signals;
	char err[256] = "";
	int rc;

	if (!d->cfg->tcp_signals) {
		if (s->tcpsig)
			log_info("kernel TCP signals stopped");
		tcpsig_stop(s);
		return;
	}
	if (s->tcpsig)
		return;
	rc = dt_tcpsig_open(&s->tcpsig, d->base, &(struct dt_tcpsig_opts){
		.intercept_fd = d->bpf.intercept_fd, .pin_dir = d->cfg->pin_dir,
		.mark = d->cfg->mark, .netns_cookie = own_netns_cookie(),
		.cb = on_tcp_signal, .arg = d,
	}, err, sizeof(err));
	if (rc) {
		s->tcpsig = NULL;
		log_warn("kernel TCP signals: %s; running without them", err);
	}
}

/* ---- routes and links ---------------------------------------------------------- */

static struct lost_endpoint *lost_find(struct daemon_signals *s, const struct dt_endpoint *ep)
{
	for (size_t i = 0; i < s->n_lost; i++)
		if (memcmp(&s->lost[i].ep, ep, sizeof(*ep)) == 0)
			return &s->lost[i];
	return NULL;
}

/* Record what netwatch says of ep: its route and its interface are told
 * apart, as an interface comes up before the routes through it are back.
 * Returns -1 out of memory. */
static int lost_note(struct daemon_signals *s, const struct dt_endpoint *ep,
		     enum dt_netwatch_change change)
{
	struct lost_endpoint *l = lost_find(s, ep), now = { .ep = *ep };

	if (l)
		now = *l;
	switch (change) {
	case DT_NETWATCH_ROUTE_LOST:
		now.route_lost = true;
		break;
	case DT_NETWATCH_ROUTE_CHANGED:
	case DT_NETWATCH_ROUTE_BACK:
		now.route_lost = false;
		break;
	case DT_NETWATCH_LINK_DOWN:
		now.link_down = true;
		break;
	case DT_NETWATCH_LINK_UP:
		now.link_down = false;
		break;
	}
	if (!now.route_lost && !now.link_down) {
		if (l)
			*l = s->lost[--s->n_lost];
		return 0;
	}
	if (!l) {
		l = realloc(s->lost, (s->n_lost + 1) * sizeof(*l));
		if (!l)
			return -1;
		s->lost = l;
		l += s->n_lost++;
	}
	*l = now;
	return 0;
}

/* A provider's path is lost when every endpoint it has is; an interface
 * down is named rather than the routes it took with it. */
static enum dt_health_path provider_path(struct detourd *d, uint32_t id)
{
	struct dt_endpoint eps[DT_RESOLVE_MAX_PER_PROVIDER];
	size_t n = dt_itable_endpoints(d->itable, id, eps, DT_RESOLVE_MAX_PER_PROVIDER);
	enum dt_health_path path = DT_PATH_OK;

	for (size_t i = 0; i < n; i++) {
		const struct lost_endpoint *l = lost_find(d->signals, &eps[i]);

		if (!l)
			return DT_PATH_OK;
		if (l->link_down)
			path = DT_PATH_LINK_DOWN;
		else if (path == DT_PATH_OK)
			path = DT_PATH_NO_ROUTE;
	}
	return path;
}

/* Tell the engine of a provider whose path changed, or is new (@moved): a
 * path that is back or new is probed at once. */
static void path_update(struct detourd *d, uint32_t id, bool moved)
{
	struct daemon_signals *s = d->signals;
	enum dt_health_path path = provider_path(d, id);

	if (path == s->path[id] && !(moved && path == DT_PATH_OK))
		return;
	s->path[id] = path;
	dt_health_path(d->health, id, path, dt_now_ns());
	if (s->prober)
		dt_prober_reschedule(s->prober);
}

static void on_route_change(void *ctx, const struct dt_netwatch_event *ev)
{
	struct detourd *d = ctx;
	uint32_t id;
	char addr[64];

	if (dt_itable_provider(d->itable, ev->ep, &id) || id >= DT_MAX_PROVIDERS)
		return;
	log_info("net: %s %s: %s (interface %d)", d->names[id],
		 dt_endpoint_str(ev->ep, addr, sizeof(addr)), dt_netwatch_change_name(ev->change),
		 ev->ifindex);
	if (lost_note(d->signals, ev->ep, ev->change)) {
		log_error("net: out of memory; %s's path not judged", d->names[id]);
		return;
	}
	path_update(d, id, ev->change == DT_NETWATCH_ROUTE_CHANGED);
}

/* Endpoints no longer in the table are no longer judged. */
static void lost_prune(struct detourd *d)
{
	struct daemon_signals *s = d->signals;
	uint32_t id;

	for (size_t i = 0; i < s->n_lost;)
		if (dt_itable_provider(d->itable, &s->lost[i].ep, &id))
			s->lost[i] = s->lost[--s->n_lost];
		else
			i++;
}

void daemon_signals_endpoints(struct detourd *d)
{
	struct daemon_signals *s = d->signals;
	struct dt_endpoint *eps;
	size_t n = 0;

	if (!s || !s->netwatch)
		return;
	eps = calloc(DT_MAX_ENDPOINTS, sizeof(*eps));
	if (!eps) {
		log_error("net: out of memory; watching the previous endpoints");
		return;
	}
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS && n < DT_MAX_ENDPOINTS; id++)
		if (d->names[id][0])
			n += dt_itable_endpoints(d->itable, id, eps + n,
						 DT_MAX_ENDPOINTS - n < DT_RESOLVE_MAX_PER_PROVIDER ?
						 DT_MAX_ENDPOINTS - n : DT_RESOLVE_MAX_PER_PROVIDER);
	if (dt_netwatch_set_endpoints(s->netwatch, eps, n))
		log_error("net: out of memory; watching the previous endpoints");
	free(eps);
	lost_prune(d);
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++)
		if (d->names[id][0])
			path_update(d, id, false);
}

/* Nothing is known of the paths any more: none is held lost. */
static void netwatch_stop(struct detourd *d)
{
	struct daemon_signals *s = d->signals;

	dt_netwatch_free(s->netwatch);
	s->netwatch = NULL;
	s->n_lost = 0;
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++)
		if (d->names[id][0])
			path_update(d, id, false);
}

static void netwatch_apply(struct detourd *d)
{
	struct daemon_signals *s = d->signals;

	if (!d->cfg->netwatch) {
		if (s->netwatch)
			log_info("route and link events stopped");
		netwatch_stop(d);
		return;
	}
	if (!s->netwatch) {
		s->netwatch = dt_netwatch_new(d->base, &(struct dt_netwatch_opts){ .mark = d->cfg->mark },
					      on_route_change, d);
		if (!s->netwatch)
			log_warn("route and link events: cannot watch (logged above); running without them");
	}
	daemon_signals_endpoints(d);
}

/* ---- life cycle ------------------------------------------------------------------ */

void daemon_signals_apply(struct detourd *d)
{
	if (!d->signals) {
		struct daemon_signals *s = calloc(1, sizeof(*s));

		if (s)
			s->tcp_flush = event_new(d->base, -1, 0, on_tcp_flush, d);
		if (!s || !s->tcp_flush) {
			free(s);
			log_error("signals: out of memory; running on the proxy's outcomes alone");
			return;
		}
		d->signals = s;
	}
	if (d->signals->mark != d->cfg->mark) {
		/* both were opened with the old mark: open them again */
		tcpsig_stop(d->signals);
		netwatch_stop(d);
		d->signals->mark = d->cfg->mark;
	}
	probes_apply(d);
	tcpsig_apply(d);
	netwatch_apply(d);
}

void daemon_signals_health_changed(struct detourd *d)
{
	if (d->signals && d->signals->prober)
		dt_prober_reschedule(d->signals->prober);
}

struct dt_probe_stats daemon_signals_probe_stats(const struct detourd *d, uint32_t id)
{
	struct dt_probe_stats none = {0};

	return d->signals && d->signals->prober ? dt_prober_stats(d->signals->prober, id) : none;
}

void daemon_signals_stop(struct detourd *d)
{
	struct daemon_signals *s = d->signals;

	if (!s)
		return;
	dt_prober_free(s->prober);
	tcpsig_stop(s);
	dt_netwatch_free(s->netwatch);
	event_free(s->tcp_flush);
	free(s->lost);
	free(s);
	d->signals = NULL;
}
