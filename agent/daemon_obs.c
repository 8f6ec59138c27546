// SPDX-License-Identifier: MIT
/*
 * detourd's observability: the /metrics endpoint (Prometheus text format,
 * served on the event loop from what is in memory: a scrape costs one
 * render) and the access log, both as d->cfg says, handed to the proxy so
 * each request ends in them. Series: docs/metrics.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "config.h"
#include "daemon.h"
#include "health.h"
#include "http_server.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "promtext.h"
#include "proxy.h"
#include "ratebudget.h"
#include "spend.h"

/* Scrapes served at once; more are refused (closed). */
#define MAX_SCRAPERS 16

static const struct dt_http_limits scrape_limits = {
	.max_header_bytes = 8192,
	.max_headers = 64,
	.max_body_bytes = 1024,
	.idle_timeout_ms = 30000,
	.request_timeout_ms = 10000,
};

struct scraper {
	struct daemon_obs *obs;
	struct dt_http_conn *http;
	LIST_ENTRY(scraper) link;
};

struct daemon_obs {
	struct detourd *d;
	struct dt_metrics *metrics;   /* NULL: no [metrics] listen */
	struct dt_listener *listener;
	char listen[64];              /* what it listens on */
	LIST_HEAD(, scraper) scrapers;
	size_t n_scrapers;
	struct dt_accesslog *alog;    /* NULL: no [access_log] path */
};

/* ---- what a scrape shows beyond the requests ------------------------------- */

#define N_STATES (DT_PROBING + 1)

static void state_samples(struct evbuffer *out, const char *name, struct dt_prom_label *l,
			  size_t n, enum dt_state now)
{
	for (int st = 0; st < N_STATES; st++) {
		l[n] = (struct dt_prom_label){ "state", dt_health_state_name((enum dt_state)st) };
		dt_prom_sample(out, name, l, n + 1, st == (int)now);
	}
}

/* The health engine's verdicts: one sample per state, 1 for the one held.
 * Models only as the label rules name them (a model counted as "other"
 * has no verdict series: several would share its labels). */
static void render_health(const struct daemon_obs *obs, struct evbuffer *out)
{
	struct detourd *d = obs->d;
	uint64_t now = dt_now_ns();
	struct dt_health_verdict v;
	struct dt_prom_label l[4];

	dt_prom_family(out, "detour_provider_state", "gauge",
		       "The health engine's verdict of a provider: 1 for the state it is in.");
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		if (!d->names[id][0] || !dt_health_verdict(d->health, id, NULL, now, &v))
			continue;
		l[0] = (struct dt_prom_label){ "provider", d->names[id] };
		state_samples(out, "detour_provider_state", l, 1, v.state);
	}
	dt_prom_family(out, "detour_model_state", "gauge",
		       "The health engine's verdict of a provider's model: 1 for the state it is in.");
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		const char *models[DT_HEALTH_MODEL_SLOTS];
		size_t n;

		if (!d->names[id][0])
			continue;
		n = dt_health_models(d->health, id, models);
		for (size_t i = 0; i < n; i++) {
			const char *model = dt_metrics_model_label(obs->metrics, d->names[id], models[i]);

			if (strcmp(model, models[i]) != 0 ||
			    !dt_health_verdict(d->health, id, models[i], now, &v))
				continue;
			l[0] = (struct dt_prom_label){ "provider", d->names[id] };
			l[1] = (struct dt_prom_label){ "model", model };
			l[2] = (struct dt_prom_label){ "class",
				dt_metrics_class_label(obs->metrics, d->names[id], model) };
			state_samples(out, "detour_model_state", l, 3, v.state);
		}
	}
}

static void render_access_log(const struct daemon_obs *obs, struct evbuffer *out)
{
	if (!obs->alog)
		return;
	dt_prom_family(out, "detour_access_log_lines_total", "counter",
		       "Lines written to the access log since it was opened.");
	dt_prom_sample(out, "detour_access_log_lines_total", NULL, 0,
		       (double)dt_accesslog_lines(obs->alog));
	dt_prom_family(out, "detour_access_log_write_errors_total", "counter",
		       "Access log lines lost to a failed or short write since it was opened.");
	dt_prom_sample(out, "detour_access_log_write_errors_total", NULL, 0,
		       (double)dt_accesslog_failures(obs->alog));
}

static void render_spend(const struct daemon_obs *obs, struct evbuffer *out)
{
	const struct dt_spend *spend = obs->d->proxy ? dt_proxy_spend(obs->d->proxy) : NULL;
	const struct dt_spend_row *rows;

	if (spend)
		dt_metrics_render_spend(obs->metrics, rows, dt_spend_rows(spend, &rows), out);
}

static const char *const rb_key_names[] = {
	[DT_RB_KEY_DETOUR] = "detour", [DT_RB_KEY_CLIENT] = "client", [DT_RB_KEY_APP] = "app",
};

/* One gauge of the rate-limit rows: the field at offset, by kind; values
 * below 0 (unknown, unlimited) are left out. */
static void headroom_family(const struct daemon_obs *obs, struct evbuffer *out, const char *name,
			    const char *help, const struct dt_rb_row *rows, size_t n, size_t offset)
{
	static const char *const kinds[DT_RB_DIMS] = { [DT_RB_REQUESTS] = "requests", [DT_RB_TOKENS] = "tokens" };
	struct dt_prom_label l[4];

	dt_prom_family(out, name, "gauge", help);
	for (size_t i = 0; i < n; i++) {
		const int64_t *v = (const int64_t *)((const char *)&rows[i] + offset);

		if (rows[i].provider_id >= DT_MAX_PROVIDERS || !obs->d->names[rows[i].provider_id][0])
			continue;
		l[0] = (struct dt_prom_label){ "provider", obs->d->names[rows[i].provider_id] };
		l[1] = (struct dt_prom_label){ "key", rb_key_names[rows[i].key] };
		/* "*": the key as a whole; else the application whose share or key it is */
		l[2] = (struct dt_prom_label){ "application", rows[i].app ? rows[i].app : "*" };
		for (int k = 0; k < DT_RB_DIMS; k++) {
			if (v[k] < 0)
				continue;
			l[3] = (struct dt_prom_label){ "kind", kinds[k] };
			dt_prom_sample(out, name, l, 4, (double)v[k]);
		}
	}
}

/* The rate-limit budgets' headroom (ratebudget.h). */
static void render_headroom(const struct daemon_obs *obs, struct evbuffer *out)
{
	const struct dt_rb *rb = obs->d->proxy ? dt_proxy_ratebudget(obs->d->proxy) : NULL;
	uint64_t now = dt_now_ns();
	struct dt_rb_row *rows;
	size_t n;

	if (!rb)
		return;
	n = dt_rb_snapshot(rb, now, NULL, 0);
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return;
	n = dt_rb_snapshot(rb, now, rows, n);
	headroom_family(obs, out, "detour_ratelimit_headroom",
			"What may still be sent this minute under a provider key's rate limit (an application's row: of its share).",
			rows, n, offsetof(struct dt_rb_row, left));
	headroom_family(obs, out, "detour_ratelimit_limit",
			"A provider key's limit per minute, from its headers or the configuration.",
			rows, n, offsetof(struct dt_rb_row, limit));
	headroom_family(obs, out, "detour_ratelimit_used",
			"What detour counted against it in the last minute (estimates until the usage is known).",
			rows, n, offsetof(struct dt_rb_row, used));
	free(rows);
}

static void render(const struct daemon_obs *obs, struct evbuffer *out)
{
	dt_metrics_render(obs->metrics, out);
	render_spend(obs, out);
	render_headroom(obs, out);
	render_health(obs, out);
	render_access_log(obs, out);
}

/* ---- the endpoint ------------------------------------------------------------ */

static void scrape_request(void *ctx, struct dt_http_conn *c, struct dt_http_request *req)
{
	struct scraper *sc = ctx;
	size_t path_len = strcspn(req->target, "?");
	struct dt_headers h = {0};
	struct evbuffer *body;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		dt_http_request_free(req);
		dt_http_respond_error(c, 405, "detourd: only GET /metrics", NULL);
		return;
	}
	if (path_len != strlen("/metrics") || strncmp(req->target, "/metrics", path_len) != 0) {
		dt_http_request_free(req);
		dt_http_respond_error(c, 404, "detourd: only GET /metrics", NULL);
		return;
	}
	dt_http_request_free(req);
	body = evbuffer_new();
	if (!body || dt_headers_set(&h, "content-type", DT_PROM_CONTENT_TYPE)) {
		if (body)
			evbuffer_free(body);
		dt_headers_free(&h);
		dt_http_respond_error(c, 500, "detourd: out of memory", NULL);
		return;
	}
	render(sc->obs, body);
	dt_http_respond_head(c, 200, &h, (int64_t)evbuffer_get_length(body));
	dt_http_respond_body(c, evbuffer_pullup(body, -1), evbuffer_get_length(body));
	dt_http_respond_end(c);
	evbuffer_free(body);
	dt_headers_free(&h);
}

static void scraper_free(struct scraper *sc)
{
	LIST_REMOVE(sc, link);
	sc->obs->n_scrapers--;
	free(sc);
}

static void scrape_closed(void *ctx, struct dt_http_conn *c)
{
	(void)c;
	scraper_free(ctx);
}

static const struct dt_http_conn_ops scrape_ops = {
	.request = scrape_request,
	.closed = scrape_closed,
};

static void on_scraper(void *ctx, int fd, const struct sockaddr *peer, const struct sockaddr *local)
{
	struct daemon_obs *obs = ctx;
	struct scraper *sc;

	(void)peer;
	(void)local;
	if (obs->n_scrapers >= MAX_SCRAPERS || !(sc = calloc(1, sizeof(*sc)))) {
		close(fd);
		return;
	}
	sc->obs = obs;
	/* the openai family only shapes the errors the layer answers itself */
	sc->http = dt_http_conn_new(obs->d->base, fd, NULL, DT_FAMILY_OPENAI, &scrape_limits, &scrape_ops, sc);
	if (!sc->http) {
		free(sc);
		return;
	}
	LIST_INSERT_HEAD(&obs->scrapers, sc, link);
	obs->n_scrapers++;
}

static void stop_endpoint(struct daemon_obs *obs)
{
	while (!LIST_EMPTY(&obs->scrapers)) {
		struct scraper *sc = LIST_FIRST(&obs->scrapers);

		dt_http_conn_free(sc->http);
		scraper_free(sc);
	}
	dt_listener_free(obs->listener);
	obs->listener = NULL;
	obs->listen[0] = '\0';
	dt_metrics_free(obs->metrics);
	obs->metrics = NULL;
}

/* The endpoint as cfg says; its counters stay across reloads. A listener
 * that cannot open keeps the one before (if any). */
static void apply_metrics(struct daemon_obs *obs, const struct dt_cfg *cfg)
{
	struct dt_listener *l;
	char err[256];

	if (!cfg->metrics.on) {
		stop_endpoint(obs);
		return;
	}
	if (!obs->metrics && !(obs->metrics = dt_metrics_new())) {
		log_error("metrics: out of memory");
		return;
	}
	if (dt_metrics_configure(obs->metrics, cfg))
		log_error("metrics: out of memory; the previous label rules stay");
	if (obs->listener && strcmp(obs->listen, cfg->metrics.listen) == 0)
		return;
	l = dt_listener_new_at(obs->d->base, (const struct sockaddr *)&cfg->metrics.addr,
			       cfg->metrics.addr_len, on_scraper, obs, err, sizeof(err));
	if (!l) {
		log_error("metrics: %s", err);
		return;
	}
	dt_listener_free(obs->listener);
	obs->listener = l;
	snprintf(obs->listen, sizeof(obs->listen), "%s", cfg->metrics.listen);
	log_info("metrics: serving /metrics on %s", obs->listen);
}

/* The access log as cfg says: the same one reopened (logrotate moved it
 * away before the SIGHUP), or another. */
static void apply_access_log(struct daemon_obs *obs, const struct dt_cfg *cfg)
{
	const struct dt_access_log_cfg *a = &cfg->access_log;
	struct dt_accesslog *l;
	char err[PATH_MAX + 64];

	if (obs->alog && a->path[0] && strcmp(dt_accesslog_path(obs->alog), a->path) == 0 &&
	    dt_accesslog_prompts(obs->alog) == a->prompts) {
		if (dt_accesslog_reopen(obs->alog))
			log_error("access log %s: %s; writing to the file open before", a->path,
				  strerror(errno));
		return;
	}
	if (!a->path[0]) {
		dt_accesslog_close(obs->alog);
		obs->alog = NULL;
		return;
	}
	l = dt_accesslog_open(a->path, a->prompts, err, sizeof(err));
	if (!l) {
		log_error("%s", err);
		return;
	}
	dt_accesslog_close(obs->alog);
	obs->alog = l;
}

void daemon_obs_apply(struct detourd *d)
{
	struct daemon_obs *obs = d->obs;

	if (!obs && (!d->cfg->metrics.on && !d->cfg->access_log.path[0]))
		return;
	if (!obs && !(obs = d->obs = calloc(1, sizeof(*obs)))) {
		log_error("metrics, access log: out of memory");
		return;
	}
	obs->d = d;
	apply_metrics(obs, d->cfg);
	apply_access_log(obs, d->cfg);
	if (d->proxy)
		dt_proxy_set_observers(d->proxy, obs->metrics, obs->alog);
}

void daemon_obs_stop(struct detourd *d)
{
	struct daemon_obs *obs = d->obs;

	if (!obs)
		return;
	if (d->proxy)
		dt_proxy_set_observers(d->proxy, NULL, NULL);
	stop_endpoint(obs);
	dt_accesslog_close(obs->alog);
	free(obs);
	d->obs = NULL;
}
