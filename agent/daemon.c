// SPDX-License-Identifier: MIT
/* detourd's life cycle; see daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "epstate.h"
#include "intercept.h"
#include "listener.h"
#include "proxy.h"
#include "log.h"
#include "relay.h"
#include "resolver.h"
#include "sockdiag.h"

#define NS_PER_MS 1000000ull
#define DRAIN_LIMIT_MS 5000u /* below systemd's TimeoutStopSec (10 s) */
#define DRAIN_POLL_MS 50

/* ---- provider ids: stable by name across reloads and restarts ---------- */

static int provider_index(const struct dt_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Give every provider of cfg an id: the one its name already has, else the
 * lowest free one. Ids of providers gone from cfg are freed and dropped. */
static void assign_ids(struct detourd *d, const struct dt_cfg *cfg)
{
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		if (d->names[id][0] && provider_index(cfg, d->names[id]) < 0) {
			log_info("provider %s removed", d->names[id]);
			dt_itable_drop_provider(d->itable, id);
			if (d->health)
				dt_health_forget(d->health, id);
			d->names[id][0] = '\0';
			dt_bpf_set_provider(&d->bpf, id, &(struct dt_provider){0});
			dt_bpf_set_provider_health(&d->bpf, id, &(struct dt_provider_health){0});
		}
	}
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct dt_provider_cfg *p = &cfg->providers[i];
		uint32_t id, free_id = DT_MAX_PROVIDERS;

		for (id = 0; id < DT_MAX_PROVIDERS; id++) {
			if (strcmp(d->names[id], p->name) == 0)
				break;
			if (!d->names[id][0] && free_id == DT_MAX_PROVIDERS)
				free_id = id;
		}
		if (id == DT_MAX_PROVIDERS) {
			id = free_id; /* the config caps providers at DT_MAX_PROVIDERS */
			snprintf(d->names[id], DT_NAME_LEN, "%s", p->name);
		}
		d->ids[i] = id;
		struct dt_provider val = { .family = p->family, .port = htons(p->port), .used = 1 };
		snprintf(val.name, sizeof(val.name), "%s", p->name);
		dt_bpf_set_provider(&d->bpf, id, &val);
	}
}

/* What the previous agent left pinned: provider names by id. */
static void load_pinned_names(struct detourd *d)
{
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct dt_provider p;

		if (bpf_map_lookup_elem(d->bpf.providers_fd, &id, &p) == 0 && p.used)
			snprintf(d->names[id], DT_NAME_LEN, "%.*s", DT_NAME_LEN - 1, p.name);
	}
}

/* ---- intercept map ---------------------------------------------------- */

static int apply_intercept(void *ctx, const struct dt_endpoint *ep, const struct dt_intercept *val)
{
	struct detourd *d = ctx;

	if (!val) {
		dt_epstate_forget(d->endpoints, ep);
		dt_bpf_delete_verdict(&d->bpf, ep);
	}
	return dt_bpf_set_intercept(&d->bpf, ep, val);
}

static void sync_intercepts(struct detourd *d)
{
	int rc = dt_itable_sync(d->itable, apply_intercept, d);

	if (rc)
		log_error("intercept map update: %s", strerror(rc < 0 ? -rc : rc));
	daemon_signals_endpoints(d);
}

static void apply_resolutions(struct detourd *d, const struct dt_resolution *res, size_t n)
{
	uint64_t now = dt_now_ns();

	for (size_t i = 0; i < n; i++) {
		uint32_t id = res[i].provider_id;
		int conflicts;

		if (!res[i].ok || !d->names[id][0])
			continue; /* a failed lookup keeps the addresses we had */
		conflicts = dt_itable_resolved(d->itable, id, res[i].eps, res[i].n, now);
		if (conflicts < 0)
			log_error("provider %s: too many endpoints", d->names[id]);
		else if (conflicts > 0)
			log_warn("provider %s: %d address(es) already belong to another provider",
				 d->names[id], conflicts);
	}
	sync_intercepts(d);
}

static void on_resolved(void *ctx, const struct dt_resolution *res, size_t n)
{
	struct detourd *d = ctx;

	apply_resolutions(d, res, n);
	log_debug("resolved: %zu endpoint(s) intercepted", dt_itable_count(d->itable));
}

/* Entries the previous agent pinned stay protected until re-resolved and,
 * if gone from DNS, until the grace period ends. Each provider's endpoints
 * are handed over in one call: a call is that provider's whole current set. */
static void seed_from_pinned(struct detourd *d)
{
	struct dt_endpoint key, next, *prev = NULL;
	struct dt_endpoint *eps = calloc(DT_MAX_ENDPOINTS, sizeof(*eps));
	uint32_t *owner = calloc(DT_MAX_ENDPOINTS, sizeof(*owner));
	struct dt_intercept val;
	struct dt_verdict v;
	size_t n = 0;

	if (!eps || !owner)
		goto out;
	while (n < DT_MAX_ENDPOINTS && bpf_map_get_next_key(d->bpf.intercept_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(d->bpf.intercept_fd, &key, &val))
			continue;
		if (val.provider_id >= DT_MAX_PROVIDERS || !d->names[val.provider_id][0]) {
			bpf_map_delete_elem(d->bpf.intercept_fd, &key);
			prev = NULL; /* deletion invalidates the walk: restart it */
			continue;
		}
		owner[n] = val.provider_id;
		eps[n++] = key;
		if (bpf_map_lookup_elem(d->bpf.verdicts_fd, &key, &v) == 0)
			dt_epstate_seed(d->endpoints, &key, &v);
	}
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct dt_endpoint group[DT_RESOLVE_MAX_PER_PROVIDER];
		size_t g = 0;

		for (size_t i = 0; i < n && g < DT_RESOLVE_MAX_PER_PROVIDER; i++)
			if (owner[i] == id)
				group[g++] = eps[i];
		if (g)
			dt_itable_resolved(d->itable, id, group, g, dt_now_ns());
	}
out:
	free(eps);
	free(owner);
}

/* ---- relay callbacks ---------------------------------------------------- */

static size_t relay_candidates(void *ctx, const struct dt_origin *o,
			       struct dt_endpoint *out, size_t max)
{
	struct detourd *d = ctx;
	struct dt_endpoint eps[DT_RESOLVE_MAX_PER_PROVIDER];
	size_t n = 0;

	if (o->provider_id < DT_MAX_PROVIDERS && d->names[o->provider_id][0])
		n = dt_itable_endpoints(d->itable, o->provider_id, eps, DT_RESOLVE_MAX_PER_PROVIDER);
	return dt_epstate_order(d->endpoints, &o->dst, eps, n, dt_now_ns(), out, max);
}

static void relay_connected(void *ctx, const struct dt_endpoint *ep, uint32_t provider_id)
{
	struct detourd *d = ctx;

	dt_epstate_success(d->endpoints, ep, provider_id, dt_now_ns());
}

static void relay_failed(void *ctx, const struct dt_endpoint *ep, uint32_t provider_id,
			 enum dt_reason reason)
{
	struct detourd *d = ctx;

	dt_epstate_failure(d->endpoints, ep, provider_id, reason, dt_now_ns());
}

static void relay_failover(void *ctx, const struct dt_endpoint *from)
{
	struct detourd *d = ctx;

	dt_epstate_failover(d->endpoints, from);
}

static const struct dt_relay_ops relay_ops = {
	.candidates = relay_candidates,
	.connected = relay_connected,
	.failed = relay_failed,
	.failover = relay_failover,
};

static void publish_verdict(void *ctx, const struct dt_endpoint *ep, const struct dt_verdict *v)
{
	struct detourd *d = ctx;
	int rc = dt_bpf_set_verdict(&d->bpf, ep, v);

	if (rc)
		log_warn("verdicts map: %s", strerror(-rc));
}

/* ---- settings, heartbeat -------------------------------------------------- */

static void write_settings(struct detourd *d, bool enabled)
{
	const struct dt_cfg *cfg = d->cfg;
	struct dt_config s = {
		.heartbeat_ns = dt_now_ns(),
		.heartbeat_ttl_ns = (uint64_t)cfg->heartbeat_ttl_ms * NS_PER_MS,
		.listen4 = cfg->listen4.s_addr,
		.listen_port = htons(cfg->listen_port),
		.mark = cfg->mark,
		.agent_tgid = (uint32_t)getpid(),
		.mode = cfg->mode,
		.enabled = enabled,
	};
	int rc;

	memcpy(s.listen6, &cfg->listen6, sizeof(s.listen6));
	rc = dt_bpf_write_settings(&d->bpf, &s);
	if (rc)
		log_error("settings map: %s", strerror(-rc));
}

/* The proxy's counters, into their map when they changed (a beat late at
 * most: hedges are counted in the request path, written here). */
static void write_proxy_stats(struct detourd *d)
{
	const struct dt_proxy_stats *now = d->proxy ? dt_proxy_stats(d->proxy) : &d->proxy_stats;
	int rc;

	if (d->proxy_stats_written && memcmp(now, &d->proxy_stats, sizeof(*now)) == 0)
		return;
	d->proxy_stats = *now;
	rc = dt_bpf_set_proxy_stats(&d->bpf, now);
	d->proxy_stats_written = rc == 0;
	if (rc)
		log_warn("proxy_stats map: %s", strerror(-rc));
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;

	(void)fd;
	(void)what;
	write_settings(d, true);
	write_proxy_stats(d);
	daemon_spend_write(d);
	if (dt_itable_expire(d->itable, dt_now_ns(), (uint64_t)d->cfg->dns_grace_s * 1000 * NS_PER_MS))
		sync_intercepts(d);
}

static void on_dns_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;

	(void)fd;
	(void)what;
	if (!dt_resolver_start(d->resolver, d->cfg, d->ids))
		log_debug("resolver still busy; next refresh will retry");
}

static void arm_timers(struct detourd *d)
{
	struct timeval beat = { .tv_sec = d->cfg->heartbeat_interval_ms / 1000,
				.tv_usec = (d->cfg->heartbeat_interval_ms % 1000) * 1000 };
	struct timeval dns = { .tv_sec = d->cfg->dns_refresh_s };

	event_del(d->beat_timer);
	event_del(d->dns_timer);
	event_add(d->beat_timer, &beat);
	event_add(d->dns_timer, &dns);
}

/* ---- enrollment ------------------------------------------------------------ */

static bool cgroup_configured(const struct dt_cfg *cfg, uint64_t cgid)
{
	for (size_t i = 0; i < cfg->n_enroll; i++) {
		uint64_t id;

		if (dt_cgroup_id(cfg->enroll[i].cgroup, &id) == 0 && id == cgid)
			return true;
	}
	return false;
}

/* Attach to every configured cgroup (updating pinned links in place) and
 * detach from cgroups the configuration no longer names. */
static int enroll_configured(struct detourd *d)
{
	struct dt_link_pin pins[256];
	char err[512];
	int n, failed = 0;

	n = dt_links_prune(d->cfg->pin_dir);
	if (n > 0)
		log_info("removed %d link(s) of cgroups that are gone", n);
	n = dt_links_list(d->cfg->pin_dir, pins, sizeof(pins) / sizeof(pins[0]));
	for (int i = 0; i < n; i++) {
		if (strcmp(pins[i].tag, DT_TAG_CONFIG) == 0 && pins[i].prog == DT_PROG_CONNECT4 &&
		    !cgroup_configured(d->cfg, pins[i].cgroup_id)) {
			dt_unenroll(d->cfg->pin_dir, pins[i].cgroup_id, DT_TAG_CONFIG);
			log_info("cgroup %llu unenrolled", (unsigned long long)pins[i].cgroup_id);
		}
	}
	for (size_t i = 0; i < d->cfg->n_enroll; i++) {
		if (dt_enroll(d->cfg->pin_dir, d->bpf.prog_fds, d->cfg->enroll[i].cgroup,
			      DT_TAG_CONFIG, err, sizeof(err))) {
			log_error("enroll: %s", err);
			failed++;
			continue;
		}
		log_info("enrolled %s", d->cfg->enroll[i].cgroup);
	}
	/* links detourctl made hold the previous agent's programs: move them too */
	n = dt_links_update(d->cfg->pin_dir, d->bpf.prog_fds, DT_TAG_CTL);
	if (n < 0)
		log_warn("updating detourctl's links: %s", strerror(-n));
	return failed ? -1 : 0;
}

/* ---- reload ----------------------------------------------------------------- */

static struct dt_relay_limits relay_limits(const struct dt_cfg *cfg)
{
	return (struct dt_relay_limits){
		.mark = cfg->mark,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.max_connections = cfg->max_connections,
	};
}

static void on_accepted(void *ctx, int fd, const struct sockaddr *peer,
			const struct sockaddr *local)
{
	struct detourd *d = ctx;
	struct dt_origin origin;
	uint64_t cookie;

	/* The application's socket is the one whose local end is our peer. A
	 * connection the hook did not redirect (a local process dialling the
	 * port) has no origin and is refused: only enrolled applications may
	 * use the proxy, and with it the keys it holds. */
	if (dt_sockdiag_cookie(d->diag_fd, peer, local, &cookie) ||
	    dt_bpf_take_origin(&d->bpf, cookie, &origin)) {
		log_debug("refused a connection that was not redirected by the hook");
		close(fd);
		return;
	}
	if (d->proxy)
		dt_proxy_accept(d->proxy, fd, &origin);
	else
		dt_relay_start(d->relay, fd, &origin);
}

/* The proxy leaves what it does not intercept to the relay. */
static void passthrough(void *ctx, int fd, const struct dt_origin *o)
{
	struct detourd *d = ctx;

	dt_relay_start(d->relay, fd, o);
}

/* The proxy is optional: without it (no CA, say) the relay still carries
 * every connection, which is no worse than having no agent. */
static void start_proxy(struct detourd *d)
{
	char err[512] = "";

	d->proxy = dt_proxy_new(d->base, d->cfg, d->ids, d->health, passthrough, d, err, sizeof(err));
	if (!d->proxy)
		log_error("proxy: %s; relaying connections untouched", err);
}

static size_t connections_active(const struct detourd *d)
{
	return dt_relay_active(d->relay) + (d->proxy ? dt_proxy_active(d->proxy) : 0);
}

/* (Re)open the listeners when their address changed. */
static int apply_listener(struct detourd *d, const struct dt_cfg *cfg)
{
	struct dt_listener *l;
	char err[256];

	if (d->listener && d->cfg->listen_port == cfg->listen_port &&
	    d->cfg->listen4.s_addr == cfg->listen4.s_addr &&
	    memcmp(&d->cfg->listen6, &cfg->listen6, sizeof(cfg->listen6)) == 0)
		return 0;
	l = dt_listener_new(d->base, cfg->listen4, cfg->listen6, cfg->listen_port,
			    on_accepted, d, err, sizeof(err));
	if (!l) {
		log_error("%s", err);
		return -1;
	}
	dt_listener_free(d->listener);
	d->listener = l;
	return 0;
}

static void reload(struct detourd *d)
{
	struct dt_cfg *cfg;
	char err[1024];

	log_info("reloading %s", d->cfg->path);
	if (dt_config_load(d->cfg->path, &cfg, err, sizeof(err))) {
		log_error("%s; keeping the running configuration", err);
		return;
	}
	if (strcmp(cfg->pin_dir, d->cfg->pin_dir) != 0) {
		log_warn("pin_dir changes need a restart; keeping %s", d->cfg->pin_dir);
		snprintf(cfg->pin_dir, sizeof(cfg->pin_dir), "%s", d->cfg->pin_dir);
	}
	if (apply_listener(d, cfg)) {
		log_error("keeping the running configuration");
		dt_config_free(cfg);
		return;
	}
	dt_config_free(d->cfg);
	d->cfg = cfg;
	{
		struct dt_relay_limits limits = relay_limits(cfg);

		dt_relay_set_limits(d->relay, &limits);
	}
	dt_log_level = cfg->log_level;
	dt_epstate_set_hold(d->endpoints, (uint64_t)cfg->down_hold_ms * NS_PER_MS);
	assign_ids(d, cfg);
	daemon_health_reconfigure(d);
	daemon_uplink_reconfigure(d);
	if (d->proxy) {
		char err[512] = "";

		if (dt_proxy_configure(d->proxy, cfg, d->ids, err, sizeof(err)))
			log_error("proxy: %s; it keeps its previous configuration", err);
	} else {
		start_proxy(d);
	}
	daemon_obs_apply(d);
	sync_intercepts(d);
	daemon_signals_apply(d);
	write_settings(d, true);
	enroll_configured(d);
	arm_timers(d);
	dt_resolver_start(d->resolver, d->cfg, d->ids);
	log_info("configuration reloaded: %zu provider(s), %zu cgroup(s)",
		 cfg->n_providers, cfg->n_enroll);
}

/* ---- start, run, stop ------------------------------------------------------- */

/* The hook stops redirecting at once (enabled = 0) and every link goes;
 * safe to call twice. */
static void detach_hook(struct detourd *d)
{
	int n;

	if (!d->bpf.skel || d->detached)
		return;
	write_settings(d, false);
	n = dt_unenroll_all(d->cfg->pin_dir, NULL);
	log_info("detached %d link(s)", n < 0 ? 0 : n);
	d->detached = true;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct detourd *d = arg;

	(void)fd;
	(void)what;
	if (connections_active(d) == 0 || dt_now_ns() >= d->drain_deadline_ns)
		event_base_loopbreak(d->base);
}

/* Clean shutdown: new connections go direct from now on; the connections
 * already being relayed are finished (up to DRAIN_LIMIT_MS) rather than cut,
 * so a restart costs the applications nothing. */
static void begin_drain(struct detourd *d)
{
	struct timeval tick = { .tv_usec = DRAIN_POLL_MS * 1000 };
	size_t active = connections_active(d);

	event_del(d->beat_timer); /* a beat would re-enable the hook */
	event_del(d->dns_timer);
	detach_hook(d);
	dt_listener_free(d->listener);
	d->listener = NULL;
	d->drain_deadline_ns = dt_now_ns() + DRAIN_LIMIT_MS * NS_PER_MS;
	d->drain_timer = event_new(d->base, -1, EV_PERSIST, on_drain_tick, d);
	if (!active || !d->drain_timer || event_add(d->drain_timer, &tick)) {
		event_base_loopbreak(d->base);
		return;
	}
	log_info("draining %zu connection(s), at most %u ms", active, DRAIN_LIMIT_MS);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct detourd *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	if (d->drain_timer) {
		log_info("signal %d again: stopping without waiting", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	log_info("signal %d: shutting down", (int)sig);
	begin_drain(d);
}

static int lock_pin_dir(struct detourd *d)
{
	d->lock_fd = open(d->cfg->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB)) {
		log_error("pin dir %s: %s", d->cfg->pin_dir,
			  errno == EWOULDBLOCK ? "another detourd is using it" : strerror(errno));
		return -1;
	}
	return 0;
}

static int write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int first_resolution(struct detourd *d)
{
	struct dt_resolution *res = calloc(d->cfg->n_providers, sizeof(*res));

	if (!res)
		return -1;
	dt_resolve_now(d->cfg, d->ids, res);
	apply_resolutions(d, res, d->cfg->n_providers);
	free(res);
	return 0;
}

int detourd_start(struct detourd *d, struct dt_cfg *cfg, const char *pidfile)
{
	char err[512];

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->pidfile = pidfile;
	d->lock_fd = -1;
	dt_log_level = cfg->log_level;
	d->diag_fd = dt_sockdiag_open();
	if (d->diag_fd < 0) {
		log_error("sock_diag socket: %s", strerror(errno));
		return -1;
	}

	d->base = event_base_new();
	d->itable = dt_itable_new();
	d->endpoints = dt_epstate_new(publish_verdict, d);
	if (!d->base || !d->itable || !d->endpoints)
		return -1;
	dt_epstate_set_hold(d->endpoints, (uint64_t)cfg->down_hold_ms * NS_PER_MS);
	if (dt_pin_dir_prepare(cfg->pin_dir, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	/* before touching any pin: another agent's state is not ours */
	if (lock_pin_dir(d))
		return -1;
	if (dt_bpf_load(&d->bpf, cfg->pin_dir, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	load_pinned_names(d);
	assign_ids(d, cfg);
	seed_from_pinned(d);
	{
		struct dt_relay_limits limits = relay_limits(cfg);

		d->relay = dt_relay_new(d->base, &relay_ops, d, &limits);
	}
	if (!d->relay || daemon_health_start(d))
		return -1;
	daemon_uplink_start(d);
	start_proxy(d);
	daemon_obs_apply(d);
	if (apply_listener(d, cfg))
		return -1;
	d->resolver = dt_resolver_new(d->base, on_resolved, d);
	d->beat_timer = event_new(d->base, -1, EV_PERSIST, on_beat, d);
	d->dns_timer = event_new(d->base, -1, EV_PERSIST, on_dns_refresh, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (!d->resolver || !d->beat_timer || !d->dns_timer || !d->sig_term ||
	    !d->sig_int || !d->sig_hup || event_add(d->sig_term, NULL) ||
	    event_add(d->sig_int, NULL) || event_add(d->sig_hup, NULL))
		return -1;

	if (first_resolution(d))
		return -1;
	daemon_signals_apply(d);
	/* the hook starts redirecting with this beat: the listener is up */
	write_settings(d, true);
	arm_timers(d);
	if (enroll_configured(d))
		log_warn("some cgroups could not be enrolled; running with the others");
	daemon_health_abort_unhealthy(d);
	if (pidfile && write_pidfile(pidfile))
		log_warn("pidfile %s: %s", pidfile, strerror(errno));
	log_info("detourd ready: %zu provider(s), %zu endpoint(s), %s mode, listening on port %u",
		 cfg->n_providers, dt_itable_count(d->itable),
		 cfg->mode == DT_MODE_FAILOVER ? "failover" : "proxy", cfg->listen_port);
	return 0;
}

static void detourd_stop(struct detourd *d)
{
	detach_hook(d);
	dt_listener_free(d->listener);
	if (d->drain_timer)
		event_free(d->drain_timer);
	daemon_signals_stop(d);
	daemon_obs_stop(d);
	dt_proxy_free(d->proxy);
	daemon_uplink_stop(d);
	daemon_health_stop(d);
	dt_relay_free(d->relay);
	dt_resolver_free(d->resolver);
	if (d->beat_timer)
		event_free(d->beat_timer);
	if (d->dns_timer)
		event_free(d->dns_timer);
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->sig_hup)
		event_free(d->sig_hup);
	dt_bpf_close(&d->bpf);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->diag_fd >= 0)
		close(d->diag_fd);
	dt_epstate_free(d->endpoints);
	dt_itable_free(d->itable);
	if (d->base)
		event_base_free(d->base);
	if (d->pidfile)
		unlink(d->pidfile);
	dt_config_free(d->cfg);
}

int detourd_run(struct detourd *d)
{
	int rc = event_base_dispatch(d->base);

	detourd_stop(d);
	return rc < 0 ? 1 : 0;
}

void detourd_abort(struct detourd *d)
{
	detourd_stop(d);
}
