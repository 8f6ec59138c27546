/* SPDX-License-Identifier: MIT */
/* Internals shared by proxy.c (connections) and exchange.c (requests). */
#ifndef DT_PROXY_INT_H
#define DT_PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <linux/types.h>
#include "detour.h"
#include "hedge.h"
#include "http_server.h"
#include "proxy.h"

struct dt_accesslog;
struct dt_ca;
struct dt_prices;
struct dt_health;
struct dt_pacer;
struct dt_rb;
struct dt_metrics;
struct dt_router;
struct dt_upstream;
struct exchange;

/* A provider as the proxy sees it. */
struct pprovider {
	bool used;
	char name[DT_NAME_LEN];
	enum dt_family family;
	uint16_t port;
	char base_url[512];     /* where its API lives, e.g. https://api.groq.com/openai/v1 */
	const char *api_path;   /* the path part of base_url: what a client's target starts with */
	char *key;              /* detour's key for it (NULL: none configured) */
	bool ask_stream_usage;  /* a relayed OpenAI stream asks for its usage chunk */
	char **hosts;
	size_t n_hosts;
};

/* Keys of one application (an enrolled cgroup) for its original provider. */
struct papp {
	char name[DT_NAME_LEN];
	uint64_t *cgroup_ids;
	size_t n_cgroups;
	char *keys[DT_MAX_PROVIDERS]; /* by provider id; NULL: the app's own */
};

/* What one configuration gives the proxy. Replaced whole on reload; the
 * connections started under it keep it (refcount) until they end. */
struct pconf {
	int refs;
	struct pprovider providers[DT_MAX_PROVIDERS];
	struct papp *apps;
	size_t n_apps;
	struct dt_http_limits http;
	unsigned first_byte_timeout_ms;
	unsigned stream_idle_timeout_ms;
	struct dt_hedge_opts hedge;
	bool intercept_tls;
	unsigned max_connections;
	struct dt_prices *prices;   /* held: what answers cost (prices.h) */
};

struct dt_proxy {
	struct event_base *base;
	struct dt_ca *ca;
	struct dt_upstream *upstream;
	struct dt_router *router;
	struct dt_health *health;   /* the daemon's: outcomes go there */
	struct pconf *conf;
	dt_passthrough_fn passthrough;
	void *passthrough_ctx;
	LIST_HEAD(, session) sessions;
	size_t active;
	uint64_t requests;      /* seeds the weighted order */
	struct dt_spend *spend; /* what the answers cost */
	struct dt_rb *rb;       /* rate-limit budgets */
	struct dt_pacer *pacer; /* their pacing queues, */
	struct event *pace_timer; /* ... polled by this timer */
	struct dt_proxy_stats stats;
	struct dt_metrics *metrics;     /* each request ends in these (NULL: none) */
	struct dt_accesslog *alog;
};

/* One intercepted client connection. */
struct session {
	struct dt_proxy *p;
	struct pconf *conf;     /* held */
	LIST_ENTRY(session) link;
	int fd;                 /* until the TLS bufferevent owns it */
	struct event *peek_read;  /* nothing came yet: wait for bytes */
	struct event *peek_timer; /* a ClientHello in part: look again soon */
	uint64_t peek_deadline_ns;
	struct dt_origin origin;
	uint32_t provider_id;   /* the provider the SNI names */
	char sni[256];
	const struct papp *app;
	struct dt_http_conn *http;
	struct exchange *ex;    /* the request being served, if any */
	/* exchange.c's timer for s->ex, made by the first request and kept
	 * for the next ones (owned here, freed with the session) */
	struct event *timer;
};

/* exchange.c: serve one request of s (takes req). */
void exchange_start(struct session *s, struct dt_http_request *req);
/* The client is gone: stop the exchange, no more output. */
void exchange_cancel(struct exchange *ex);

void pconf_put(struct pconf *c);

struct dt_price;
struct dt_xusage;
/* The price of model at provider id under c (prices.h); false: unknown. */
bool pconf_price(const struct pconf *c, uint32_t id, const char *model, struct dt_price *out);
/* Count an answer (spend.h) of provider id and model under c for app
 * (NULL: "-"), at price (NULL: unknown), in its class. */
void proxy_account(struct dt_proxy *p, const struct pconf *c, const char *app, uint32_t id,
		   const char *model, const struct dt_xusage *u, const struct dt_price *price);

/* proxy_budget.c: the rate-limit budgets and pacing queue. */
int proxy_budgets_new(struct dt_proxy *p);
int proxy_budgets_configure(struct dt_proxy *p, const struct dt_cfg *cfg, const uint32_t *ids);
void proxy_budgets_free(struct dt_proxy *p);
/* Look at the pacing queues soon (from the event loop): after a wait is
 * queued, and whenever a budget may have grown. */
void proxy_pace_soon(struct dt_proxy *p);

#endif
