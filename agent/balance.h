/* SPDX-License-Identifier: MIT */
/* Load balancing within a model class: which of the usable members a
 * request tries first, by the class's strategy (priority, smooth weighted
 * round-robin, least latency by power of two choices over a peak-EWMA of
 * time to first token and in-flight requests, cheapest, or the cheapest
 * among the fast). Pure logic with an injected clock (`now`, CLOCK_MONOTONIC
 * ns) and a caller-held PRNG state; the caller keeps the per-member state
 * between requests. Semantics: docs/routing.md. */
#ifndef DT_BALANCE_H
#define DT_BALANCE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

/* A class holds each provider at most once. */
#define DT_BALANCE_MAX_MEMBERS DT_MAX_PROVIDERS

enum dt_balance_strategy {
	DT_BALANCE_PRIORITY,       /* the given order */
	DT_BALANCE_WEIGHTED,       /* smooth weighted round-robin first, then the given order */
	DT_BALANCE_LEAST_LATENCY,  /* the better of two random members first */
	DT_BALANCE_CHEAPEST,       /* by price */
	DT_BALANCE_COMBINED,       /* by price among those within latency_factor of the fastest */
};

struct dt_balance_opts {
	unsigned decay_ms;               /* how fast the latency estimate forgets a peak, and fades without samples (default 10000) */
	unsigned latency_factor_percent; /* combined: fast enough = score ≤ best × this / 100 (default 150, ≥ 100) */
};

/* One member's configuration and the state the strategies keep. Zeroed
 * state is a fresh member. */
struct dt_balance_member {
	unsigned weight;        /* weighted: share of first picks; 0 → 1 */
	uint64_t price;         /* cheapest, combined: any unit, lower is cheaper (e.g. µ$ per million input + output tokens) */
	/* state */
	int64_t wrr_current;    /* smooth round-robin credit */
	uint64_t ttft_ewma_ns;  /* 0: never measured */
	uint64_t sampled_at;    /* when ttft_ewma_ns was last updated */
	unsigned in_flight;
};

/* A request's attempt starts on m, and ends (answered or not). ttft_ns is
 * the time to its first token, 0 when it never got one (no sample: the
 * health engine judges failures). */
void dt_balance_start(struct dt_balance_member *m);
void dt_balance_end(struct dt_balance_member *m, uint64_t ttft_ns, uint64_t now,
		    const struct dt_balance_opts *o);

/* Lower is better: the latency estimate, faded by the time since its last
 * sample, times the requests it would queue behind. A member never
 * measured scores below every measured one, so it gets measured. */
uint64_t dt_balance_score(const struct dt_balance_member *m, uint64_t now,
			  const struct dt_balance_opts *o);

/* Reorder order[0 .. n_usable) (indexes into m, the usable members in the
 * health engine's order) for one request by strategy; the rest of the
 * list, the unusable members, is not the strategy's and stays behind.
 * n_usable ≤ DT_BALANCE_MAX_MEMBERS (members past it stay where they are).
 * Updates the round-robin credit; *prng is advanced (least latency).
 * Ties keep the given order. o NULL: the defaults. */
void dt_balance_order(enum dt_balance_strategy s, struct dt_balance_member *m, size_t *order,
		      size_t n_usable, uint64_t *prng, const struct dt_balance_opts *o, uint64_t now);

/* splitmix64: a good 64-bit stream even from consecutive seeds. */
uint64_t dt_balance_random(uint64_t *state);

#endif
