// SPDX-License-Identifier: MIT
/* The re-signing proxy's connections: configuration, the SNI peek, TLS
 * termination; requests are exchange.c's. See proxy.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "bpfobj.h"
#include "ca.h"
#include "config.h"
#include "enroll.h"
#include "keys.h"
#include "log.h"
#include "proxy_int.h"
#include "router.h"
#include "prices.h"
#include "sni.h"
#include "spend.h"
#include "upstream.h"

/* A ClientHello, post-quantum key shares included, fits in this. */
#define PEEK_MAX        (64 * 1024)
/* While a ClientHello is incomplete, look again this often (the bytes stay
 * in the socket: waiting for readability would spin). */
#define PEEK_RETRY_MS   2
#define NS_PER_MS       1000000ull

/* ---- configuration -------------------------------------------------------- */

static void pprovider_clear(struct pprovider *pp)
{
	dt_key_free(pp->key);
	for (size_t i = 0; i < pp->n_hosts; i++)
		free(pp->hosts[i]);
	free(pp->hosts);
	memset(pp, 0, sizeof(*pp));
}

static void pconf_free(struct pconf *c)
{
	for (size_t i = 0; i < DT_MAX_PROVIDERS; i++)
		pprovider_clear(&c->providers[i]);
	for (size_t a = 0; a < c->n_apps; a++) {
		for (size_t i = 0; i < DT_MAX_PROVIDERS; i++)
			dt_key_free(c->apps[a].keys[i]);
		free(c->apps[a].cgroup_ids);
	}
	free(c->apps);
	dt_prices_put(c->prices);
	free(c);
}

void pconf_put(struct pconf *c)
{
	if (c && --c->refs == 0)
		pconf_free(c);
}

static int provider_id_of(const struct dt_cfg *cfg, const uint32_t *ids, const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return (int)ids[i];
	return -1;
}

/* The path part of a base URL ("https://h/openai/v1" -> "/openai/v1"). */
static const char *url_path(const char *url)
{
	const char *host = strstr(url, "://");
	const char *slash = host ? strchr(host + 3, '/') : NULL;

	return slash ? slash : "";
}

static int load_provider(struct pprovider *pp, const struct dt_provider_cfg *pc,
			 char *err, size_t errlen)
{
	pp->used = true;
	snprintf(pp->name, sizeof(pp->name), "%s", pc->name);
	pp->family = pc->family;
	pp->port = pc->port;
	pp->ask_stream_usage = pc->ask_stream_usage;
	snprintf(pp->base_url, sizeof(pp->base_url), "%s", pc->base_url);
	pp->api_path = url_path(pp->base_url);
	pp->hosts = calloc(pc->n_hosts, sizeof(char *));
	if (!pp->hosts)
		goto nomem;
	for (size_t h = 0; h < pc->n_hosts; h++) {
		pp->hosts[h] = strdup(pc->hosts[h]);
		if (!pp->hosts[h])
			goto nomem;
		pp->n_hosts++;
	}
	/* without its key a provider still serves its own applications; it
	 * only cannot take other providers' requests */
	if (pc->key.kind != DT_KEY_NONE && dt_key_load(&pc->key, &pp->key, err, errlen)) {
		log_warn("provider %s: %s; it will not be a failover target", pc->name, err);
		err[0] = '\0';
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int load_app(struct papp *pa, const struct dt_app_cfg *ac, const struct dt_cfg *cfg,
		    const uint32_t *ids, char *err, size_t errlen)
{
	snprintf(pa->name, sizeof(pa->name), "%s", ac->name);
	pa->cgroup_ids = calloc(ac->n_cgroups ? ac->n_cgroups : 1, sizeof(uint64_t));
	if (!pa->cgroup_ids) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < ac->n_cgroups; i++)
		if (dt_cgroup_id(ac->cgroups[i], &pa->cgroup_ids[pa->n_cgroups]) == 0)
			pa->n_cgroups++;
	for (size_t k = 0; k < ac->n_keys; k++) {
		int id = provider_id_of(cfg, ids, ac->keys[k].provider);

		if (id < 0)
			continue; /* the parser checked the name: cannot happen */
		if (dt_key_load(&ac->keys[k].key, &pa->keys[id], err, errlen))
			return -1;
	}
	return 0;
}

static struct pconf *pconf_build(const struct dt_cfg *cfg, const uint32_t *ids,
				 char *err, size_t errlen)
{
	const struct dt_proxy_cfg *px = &cfg->proxy;
	struct pconf *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->http = (struct dt_http_limits){
		.max_header_bytes = px->max_header_bytes,
		.max_headers = px->max_headers,
		.max_body_bytes = px->max_body_bytes,
		.idle_timeout_ms = px->idle_timeout_ms,
		.request_timeout_ms = px->request_timeout_ms,
	};
	c->first_byte_timeout_ms = px->first_byte_timeout_ms;
	c->stream_idle_timeout_ms = px->stream_idle_timeout_ms;
	c->hedge = (struct dt_hedge_opts){
		.on = px->hedge,
		.factor_percent = px->hedge_factor_percent,
		.min_ms = px->hedge_min_ms,
		.max_ms = px->hedge_max_ms,
	};
	c->intercept_tls = px->intercept_tls;
	c->max_connections = cfg->max_connections;
	c->prices = dt_prices_hold(cfg->prices);
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (load_provider(&c->providers[ids[i]], &cfg->providers[i], err, errlen))
			goto fail;
	c->apps = calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(*c->apps));
	if (!c->apps)
		goto fail;
	for (size_t a = 0; a < cfg->n_apps; a++) {
		c->n_apps++; /* counted first: one that fails half-way is freed too */
		if (load_app(&c->apps[a], &cfg->apps[a], cfg, ids, err, errlen))
			goto fail;
	}
	return c;
fail:
	pconf_free(c);
	return NULL;
}

static void router_opts_from(const struct dt_cfg *cfg, struct dt_router_opts *o)
{
	const struct dt_proxy_cfg *px = &cfg->proxy;

	*o = (struct dt_router_opts){
		.retry_budget_percent = px->retry_budget_percent,
		.retry_budget_min = px->retry_budget_min,
		.budget_window_ms = px->budget_window_ms,
		.key_disable_ms = px->key_disable_ms,
	};
}

static void member_price(const struct dt_cfg *cfg, const struct dt_member_cfg *mc,
			 struct dt_class_member *dm)
{
	struct dt_price price;

	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct dt_provider_cfg *pc = &cfg->providers[i];

		if (strcmp(pc->name, mc->provider) == 0 &&
		    dt_prices_find(cfg->prices, pc->name, pc->hosts, pc->n_hosts, mc->model, &price)) {
			dm->price_in = (unsigned)price.input;
			dm->price_out = (unsigned)price.output;
		}
	}
}

/* Model classes in the router's terms (provider names become ids). */
static int set_classes(struct dt_router *r, const struct dt_cfg *cfg, const uint32_t *ids)
{
	struct dt_model_class *classes = calloc(cfg->n_classes ? cfg->n_classes : 1, sizeof(*classes));
	size_t n = 0;
	int rc = -ENOMEM;

	if (!classes)
		return rc;
	for (; n < cfg->n_classes; n++) {
		const struct dt_class_cfg *cc = &cfg->classes[n];
		struct dt_model_class *mc = &classes[n];

		snprintf(mc->name, sizeof(mc->name), "%s", cc->name);
		mc->strategy = (enum dt_class_strategy)cc->strategy;
		mc->latency_factor_percent = cc->latency_factor_percent;
		mc->quality = (enum dt_quality_mode)cc->quality_check;
		mc->sticky = cc->sticky;
		mc->sticky_ttl_ms = cc->sticky_ttl_ms;
		mc->members = calloc(cc->n_members, sizeof(*mc->members));
		if (!mc->members)
			goto out;
		for (size_t m = 0; m < cc->n_members; m++) {
			struct dt_class_member *dm = &mc->members[mc->n_members++];

			dm->provider_id = (uint32_t)provider_id_of(cfg, ids, cc->members[m].provider);
			snprintf(dm->model, sizeof(dm->model), "%s", cc->members[m].model);
			dm->context_tokens = cc->members[m].context_tokens;
			dm->weight = cc->members[m].weight;
			dm->caps_declared = cc->members[m].caps_declared;
			dm->caps = cc->members[m].caps; /* router.h's DT_CAP_* bits */
			/* the member's own, else the price list's: only cheapest and
			 * combined classes use it, and the parser made sure they have it */
			member_price(cfg, &cc->members[m], dm);
		}
	}
	rc = dt_router_set_classes(r, classes, n);
out:
	for (size_t i = 0; i < cfg->n_classes; i++)
		free(classes[i].members);
	free(classes);
	return rc;
}

/* Every host name the CA may mint leaves for (address literals need none). */
static const char **ca_hosts(const struct dt_cfg *cfg, size_t *n)
{
	size_t total = 0;
	const char **hosts;

	for (size_t i = 0; i < cfg->n_providers; i++)
		total += cfg->providers[i].n_hosts;
	hosts = calloc(total ? total : 1, sizeof(*hosts));
	*n = 0;
	if (!hosts)
		return NULL;
	for (size_t i = 0; i < cfg->n_providers; i++) {
		for (size_t h = 0; h < cfg->providers[i].n_hosts; h++) {
			const char *name = cfg->providers[i].hosts[h];
			unsigned char buf[sizeof(struct in6_addr)];

			if (inet_pton(AF_INET, name, buf) != 1 && inet_pton(AF_INET6, name, buf) != 1)
				hosts[(*n)++] = name;
		}
	}
	return hosts;
}

static int open_ca(struct dt_proxy *p, const struct dt_cfg *cfg, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	size_t n;
	const char **hosts = ca_hosts(cfg, &n);
	struct dt_ca_opts o = { .dir = dir, .hosts = hosts, .n_hosts = n };
	bool reissued = false;
	struct dt_ca *ca;

	if (!hosts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/%s", cfg->state_dir, DT_CA_SUBDIR);
	ca = dt_ca_open(&o, &reissued, err, errlen);
	free(hosts);
	if (!ca)
		return -1;
	if (reissued)
		log_warn("local CA (re)issued for the configured provider hosts: clients must trust "
			 "the new root %s (detourctl ca install)", dt_ca_root_path(ca));
	dt_ca_free(p->ca);
	p->ca = ca;
	return 0;
}

static struct dt_upstream_opts upstream_opts_from(const struct dt_cfg *cfg)
{
	return (struct dt_upstream_opts){
		.mark = cfg->mark,
		.ca_bundle = cfg->proxy.upstream_ca_bundle[0] ? cfg->proxy.upstream_ca_bundle : NULL,
		.connect_timeout_ms = cfg->proxy.upstream_connect_timeout_ms,
		.http11_only = !cfg->proxy.upstream_http2,
	};
}

int dt_proxy_configure(struct dt_proxy *p, const struct dt_cfg *cfg, const uint32_t *ids,
		       char *err, size_t errlen)
{
	struct dt_upstream_opts uo = upstream_opts_from(cfg);
	struct dt_router_opts ro;
	struct pconf *c = pconf_build(cfg, ids, err, errlen);

	if (!c)
		return -1;
	if (dt_upstream_set_opts(p->upstream, &uo)) {
		snprintf(err, errlen, "upstream options: out of memory");
		pconf_put(c);
		return -1;
	}
	if (open_ca(p, cfg, err, errlen) || set_classes(p->router, cfg, ids)) {
		if (!*err)
			snprintf(err, errlen, "model classes: invalid");
		pconf_put(c);
		return -1;
	}
	if (proxy_budgets_configure(p, cfg, ids)) {
		snprintf(err, errlen, "rate-limit budgets: out of memory");
		pconf_put(c);
		return -1;
	}
	router_opts_from(cfg, &ro);
	dt_router_set_opts(p->router, &ro);
	pconf_put(p->conf);
	p->conf = c;
	return 0;
}

/* ---- connections ------------------------------------------------------------ */

/* The ClientHello was read: its events are not needed again. */
static void end_peek(struct session *s)
{
	if (s->peek_timer)
		event_free(s->peek_timer);
	if (s->peek_read)
		event_free(s->peek_read);
	s->peek_timer = s->peek_read = NULL;
}

static void session_free(struct session *s)
{
	struct dt_proxy *p = s->p;

	LIST_REMOVE(s, link);
	p->active--;
	if (s->ex)
		exchange_cancel(s->ex);
	if (s->http)
		dt_http_conn_free(s->http);
	else if (s->fd >= 0)
		close(s->fd);
	if (s->timer)
		event_free(s->timer);
	end_peek(s);
	pconf_put(s->conf);
	free(s);
}

static void on_request(void *ctx, struct dt_http_conn *c, struct dt_http_request *req)
{
	struct session *s = ctx;

	(void)c;
	exchange_start(s, req);
}

static void on_closed(void *ctx, struct dt_http_conn *c)
{
	struct session *s = ctx;

	(void)c;
	s->http = NULL; /* the layer frees it */
	session_free(s);
}

static const struct dt_http_conn_ops http_ops = {
	.request = on_request,
	.closed = on_closed,
};

static const struct papp *app_of(const struct pconf *c, uint64_t cgroup_id)
{
	for (size_t a = 0; a < c->n_apps; a++)
		for (size_t i = 0; i < c->apps[a].n_cgroups; i++)
			if (c->apps[a].cgroup_ids[i] == cgroup_id)
				return &c->apps[a];
	return NULL;
}

/* The provider a host name belongs to, -1 if none. */
static int provider_by_host(const struct pconf *c, const char *host)
{
	for (int id = 0; id < DT_MAX_PROVIDERS; id++) {
		const struct pprovider *pp = &c->providers[id];

		for (size_t h = 0; pp->used && h < pp->n_hosts; h++)
			if (strcasecmp(pp->hosts[h], host) == 0)
				return id;
	}
	return -1;
}

static void hand_to_relay(struct session *s)
{
	struct dt_proxy *p = s->p;
	struct dt_origin origin = s->origin;
	int fd = s->fd;

	s->fd = -1;
	session_free(s);
	p->passthrough(p->passthrough_ctx, fd, &origin);
}

static void terminate_tls(struct session *s)
{
	struct dt_proxy *p = s->p;
	char err[256] = "";
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;

	end_peek(s);
	ctx = dt_ca_server_ctx(p->ca, s->sni, err, sizeof(err));
	if (!ctx) {
		log_warn("proxy: no certificate for %s (%s): relaying untouched", s->sni, err);
		hand_to_relay(s);
		return;
	}
	ssl = SSL_new(ctx);
	if (!ssl) {
		session_free(s);
		return;
	}
	fd = s->fd;
	s->fd = -1; /* the HTTP layer owns it now */
	s->app = app_of(s->conf, s->origin.cgroup_id);
	s->http = dt_http_conn_new(p->base, fd, ssl, s->conf->providers[s->provider_id].family,
				   &s->conf->http, &http_ops, s);
	if (!s->http)
		session_free(s); /* dt_http_conn_new closed fd and freed ssl */
}

/* Look at the first bytes without taking them: a ClientHello for a
 * provider host is ours; anything else goes to the relay unchanged. */
static void peek(struct session *s)
{
	/* one event loop, one peek at a time: no allocation per connection */
	static uint8_t buf[PEEK_MAX];
	struct timeval retry = { .tv_usec = PEEK_RETRY_MS * 1000 };
	enum dt_sni_result r;
	ssize_t n;
	int id;

	n = recv(s->fd, buf, PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		session_free(s); /* the client went away */
		return;
	}
	r = n > 0 ? dt_sni_parse(buf, (size_t)n, s->sni, sizeof(s->sni)) : DT_SNI_NEED_MORE;
	if (r == DT_SNI_NEED_MORE && n < PEEK_MAX && dt_now_ns() < s->peek_deadline_ns) {
		uint64_t left_us = (s->peek_deadline_ns - dt_now_ns()) / 1000;
		struct timeval left = { .tv_sec = (time_t)(left_us / 1000000),
					.tv_usec = (suseconds_t)(left_us % 1000000) };

		if (n > 0)
			evtimer_add(s->peek_timer, &retry);
		else
			event_add(s->peek_read, &left);
		return;
	}
	id = r == DT_SNI_FOUND ? provider_by_host(s->conf, s->sni) : -1;
	if (id < 0) {
		hand_to_relay(s);
		return;
	}
	s->provider_id = (uint32_t)id;
	terminate_tls(s);
}

static void on_peek_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peek(arg);
}

void dt_proxy_accept(struct dt_proxy *p, int fd, const struct dt_origin *o)
{
	struct session *s;

	if (!p->conf->intercept_tls) {
		p->passthrough(p->passthrough_ctx, fd, o);
		return;
	}
	if (p->active >= p->conf->max_connections) {
		log_warn("proxy: %zu connections, limit reached; refusing", p->active);
		close(fd);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->p = p;
	s->fd = fd;
	s->origin = *o;
	s->conf = p->conf;
	s->conf->refs++;
	LIST_INSERT_HEAD(&p->sessions, s, link);
	p->active++;
	s->peek_timer = evtimer_new(p->base, on_peek_event, s);
	s->peek_read = event_new(p->base, fd, EV_READ, on_peek_event, s);
	if (!s->peek_timer || !s->peek_read) {
		session_free(s);
		return;
	}
	s->peek_deadline_ns = dt_now_ns() + (uint64_t)p->conf->http.request_timeout_ms * NS_PER_MS;
	evtimer_add(s->peek_timer, &(struct timeval){ 0 });
}

/* ---- life cycle ------------------------------------------------------------------ */

struct dt_proxy *dt_proxy_new(struct event_base *base, const struct dt_cfg *cfg,
			      const uint32_t *ids, struct dt_health *health,
			      dt_passthrough_fn passthrough, void *ctx, char *err, size_t errlen)
{
	struct dt_proxy *p = calloc(1, sizeof(*p));
	struct dt_upstream_opts uo = upstream_opts_from(cfg);
	struct dt_router_opts ro;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->base = base;
	p->passthrough = passthrough;
	p->passthrough_ctx = ctx;
	router_opts_from(cfg, &ro);
	p->health = health;
	p->router = dt_router_new(&ro, health);
	p->upstream = dt_upstream_new(base, &uo, err, errlen);
	p->spend = dt_spend_new();
	if (!p->router || !p->upstream || !p->spend || proxy_budgets_new(p) ||
	    dt_proxy_configure(p, cfg, ids, err, errlen)) {
		if (!*err)
			snprintf(err, errlen, "out of memory");
		dt_proxy_free(p);
		return NULL;
	}
	return p;
}

size_t dt_proxy_active(const struct dt_proxy *p)
{
	return p->active;
}

struct dt_upstream *dt_proxy_upstream(struct dt_proxy *p)
{
	return p->upstream;
}

const char *dt_proxy_provider_key(const struct dt_proxy *p, uint32_t id)
{
	return id < DT_MAX_PROVIDERS ? p->conf->providers[id].key : NULL;
}

const struct dt_proxy_stats *dt_proxy_stats(const struct dt_proxy *p)
{
	return &p->stats;
}

const struct dt_spend *dt_proxy_spend(const struct dt_proxy *p)
{
	return p->spend;
}

bool pconf_price(const struct pconf *c, uint32_t id, const char *model, struct dt_price *out)
{
	const struct pprovider *pp = &c->providers[id];

	return dt_prices_find(c->prices, pp->name, pp->hosts, pp->n_hosts, model, out);
}

void proxy_account(struct dt_proxy *p, const struct pconf *c, const char *app, uint32_t id,
		   const char *model, const struct dt_xusage *u, const struct dt_price *price)
{
	const struct dt_model_class *cls = dt_router_class_of(p->router, id, model, NULL);
	struct dt_spend_key k = {
		.app = app, .provider = c->providers[id].name, .model = model,
		.class_name = cls ? cls->name : NULL,
	};

	if (dt_spend_add(p->spend, &k, u, price))
		log_warn("proxy: the cost of an answer of %s is not counted: out of memory",
			 c->providers[id].name);
}

void dt_proxy_account(struct dt_proxy *p, const char *app, uint32_t id, const char *model,
		      const struct dt_xusage *u)
{
	struct dt_price price;
	bool priced;

	if (id >= DT_MAX_PROVIDERS || !p->conf->providers[id].used)
		return;
	priced = pconf_price(p->conf, id, model, &price);
	proxy_account(p, p->conf, app, id, model, u, priced ? &price : NULL);
}

void dt_proxy_set_observers(struct dt_proxy *p, struct dt_metrics *m, struct dt_accesslog *alog)
{
	p->metrics = m;
	p->alog = alog;
}

void dt_proxy_free(struct dt_proxy *p)
{
	if (!p)
		return;
	while (!LIST_EMPTY(&p->sessions))
		session_free(LIST_FIRST(&p->sessions));
	dt_upstream_free(p->upstream);
	dt_router_free(p->router);
	proxy_budgets_free(p);
	dt_ca_free(p->ca);
	dt_spend_free(p->spend);
	pconf_put(p->conf);
	free(p);
}
