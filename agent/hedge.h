/* SPDX-License-Identifier: MIT */
/* Hedged requests: an attempt that has not reached its commit point by its
 * hedge deadline is joined by the next member of the plan, and the first of
 * the two to commit wins (exchange.c runs the race). This is the policy:
 * the deadline, a multiple of what the provider and model usually take,
 * bounded. Pure. Semantics and defaults: docs/routing.md. */
#ifndef DT_HEDGE_H
#define DT_HEDGE_H

#include <stdbool.h>
#include <stdint.h>

struct dt_hedge_opts {
	bool on;
	unsigned factor_percent;  /* of the usual time (300) */
	unsigned min_ms;          /* never sooner (1000) */
	unsigned max_ms;          /* never later; also the deadline while nothing is usual yet (10000) */
};

/* How long after its start an attempt is hedged, in ns; 0: never (hedging
 * off, or not before the first-byte timeout, which moves on by itself).
 * usual_ns: the provider's usual time to what commits the attempt (time to
 * first token for a stream, the whole answer's time otherwise), 0 unknown. */
uint64_t dt_hedge_delay_ns(const struct dt_hedge_opts *o, uint64_t usual_ns,
			   unsigned first_byte_timeout_ms);

#endif
