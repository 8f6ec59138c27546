/* SPDX-License-Identifier: MIT */
/* The re-signing proxy: takes redirected connections whose ClientHello names
 * a configured provider host, terminates their TLS with a leaf of the local
 * CA, and serves each HTTP request from the best provider that can answer it
 * (exchange.c). Anything else is handed back for the transport relay. */
#ifndef DT_PROXY_H
#define DT_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_accesslog;
struct dt_cfg;
struct dt_health;
struct dt_metrics;
struct dt_proxy;
struct dt_spend;
struct dt_xusage;
struct dt_rb;
struct dt_upstream;

/* Relay this connection untouched (not TLS, or not for a provider host). */
typedef void (*dt_passthrough_fn)(void *ctx, int fd, const struct dt_origin *o);

/* ids[i] is the provider id of cfg->providers[i]. */
struct dt_proxy *dt_proxy_new(struct event_base *base, const struct dt_cfg *cfg,
			      const uint32_t *ids, struct dt_health *health,
			      dt_passthrough_fn passthrough, void *ctx, char *err, size_t errlen);
/* A new configuration: providers, keys, classes, limits. Connections and
 * requests in flight finish with what they started with. */
int dt_proxy_configure(struct dt_proxy *p, const struct dt_cfg *cfg, const uint32_t *ids,
		       char *err, size_t errlen);
/* Take over a redirected connection (fd) and its origin. */
void dt_proxy_accept(struct dt_proxy *p, int fd, const struct dt_origin *o);
size_t dt_proxy_active(const struct dt_proxy *p);
/* Its upstream client, for the active probes (the same pool, TLS
 * verification and SO_MARK as the requests). */
struct dt_upstream *dt_proxy_upstream(struct dt_proxy *p);
/* detour's key for provider id as the last configuration loaded it; NULL:
 * none. Valid until the next dt_proxy_configure(). */
const char *dt_proxy_provider_key(const struct dt_proxy *p, uint32_t id);
/* What it spent beyond one attempt a request (the proxy_stats map). */
const struct dt_proxy_stats *dt_proxy_stats(const struct dt_proxy *p);
/* What the answers cost so far (spend.h): read by /metrics and detourctl.
 * It outlives reloads. */
const struct dt_spend *dt_proxy_spend(const struct dt_proxy *p);
/* An answer detour asked for itself (a TTFT probe, app DT_SPEND_PROBE):
 * counted as the proxy counts its clients', at the current configuration's
 * prices. An unknown provider id is ignored. */
void dt_proxy_account(struct dt_proxy *p, const char *app, uint32_t provider_id, const char *model,
		      const struct dt_xusage *u);
/* The rate-limit budgets (ratebudget.h: dt_rb_snapshot for the headroom). */
const struct dt_rb *dt_proxy_ratebudget(const struct dt_proxy *p);
/* Where each request's record goes when it ends (either may be NULL; not
 * owned, kept until changed). */
void dt_proxy_set_observers(struct dt_proxy *p, struct dt_metrics *m, struct dt_accesslog *alog);
/* Closes every connection. */
void dt_proxy_free(struct dt_proxy *p);

#endif
