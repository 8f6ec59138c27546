/* SPDX-License-Identifier: MIT */
/* Endpoint verdicts: which addresses of a provider currently work, from the
 * relay's connection outcomes. Pure logic with an injected clock; every
 * change is handed to a publish callback (detourd writes the verdicts map). */
#ifndef DT_EPSTATE_H
#define DT_EPSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct dt_epstate;

typedef void (*dt_verdict_publish_fn)(void *ctx, const struct dt_endpoint *ep,
				      const struct dt_verdict *v);

struct dt_epstate *dt_epstate_new(dt_verdict_publish_fn publish, void *ctx);
void dt_epstate_free(struct dt_epstate *st);

/* Hold-down after a failure: the endpoint is skipped for hold_ns, doubled
 * for each further consecutive failure up to 8 times. */
void dt_epstate_set_hold(struct dt_epstate *st, uint64_t hold_ns);

void dt_epstate_success(struct dt_epstate *st, const struct dt_endpoint *ep,
			uint32_t provider_id, uint64_t now);
void dt_epstate_failure(struct dt_epstate *st, const struct dt_endpoint *ep,
			uint32_t provider_id, enum dt_reason reason, uint64_t now);
/* A connection left this endpoint for another one. */
void dt_epstate_failover(struct dt_epstate *st, const struct dt_endpoint *ep);

/* Take over a verdict a previous agent published. */
void dt_epstate_seed(struct dt_epstate *st, const struct dt_endpoint *ep,
		     const struct dt_verdict *v);

/* Forget endpoints that are no longer intercepted. */
void dt_epstate_forget(struct dt_epstate *st, const struct dt_endpoint *ep);

/* Order the endpoints to try for a connection that wanted @wanted: usable
 * endpoints first (@wanted first among them), then held-down ones, earliest
 * release first, as a last resort. @cands may contain @wanted or not.
 * Returns the number written to @out (at most max). */
size_t dt_epstate_order(const struct dt_epstate *st, const struct dt_endpoint *wanted,
			const struct dt_endpoint *cands, size_t n, uint64_t now,
			struct dt_endpoint *out, size_t max);

/* Current verdict of an endpoint (HEALTHY with zero counters if unknown). */
struct dt_verdict dt_epstate_get(const struct dt_epstate *st, const struct dt_endpoint *ep);

bool dt_endpoint_equal(const struct dt_endpoint *a, const struct dt_endpoint *b);

#endif
