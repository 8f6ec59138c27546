/* SPDX-License-Identifier: MIT */
/* Provider host name resolution off the event loop: getaddrinfo() may block
 * for seconds, so a worker thread resolves and the loop is woken with the
 * result through an eventfd. */
#ifndef DT_RESOLVER_H
#define DT_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_cfg;
struct dt_resolver;

#define DT_RESOLVE_MAX_PER_PROVIDER 64

struct dt_resolution {
	uint32_t provider_id;
	bool ok;                 /* at least one host name resolved */
	size_t n;
	struct dt_endpoint eps[DT_RESOLVE_MAX_PER_PROVIDER];
};

/* Called on the loop with one result per provider of the job. */
typedef void (*dt_resolved_fn)(void *ctx, const struct dt_resolution *res, size_t n);

struct dt_resolver *dt_resolver_new(struct event_base *base, dt_resolved_fn done, void *ctx);
void dt_resolver_free(struct dt_resolver *r);

/* Resolve every provider of cfg (provider i gets id ids[i]). Returns false
 * when a job is still running (the caller retries at its next refresh). */
bool dt_resolver_start(struct dt_resolver *r, const struct dt_cfg *cfg, const uint32_t *ids);

/* The same work, synchronously, for start-up. res has cfg->n_providers slots. */
void dt_resolve_now(const struct dt_cfg *cfg, const uint32_t *ids, struct dt_resolution *res);

#endif
