/* SPDX-License-Identifier: MIT */
/* The pacing queue: a request whose provider paces (ratebudget.h's
 * `pace`) and has no budget left for it now waits, in its provider's
 * queue, to be released as soon as it fits, rather than overflowing to
 * the next member at once; it waits no longer than the provider's
 * pace_max_wait_ms (then it overflows), and at most pace_max_queue wait
 * per provider. Pure logic with an injected clock (`now`, CLOCK_MONOTONIC
 * ns): the caller polls it at the time it asks for. Semantics:
 * docs/routing.md, "Rate limits". */
#ifndef DT_PACER_H
#define DT_PACER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include "ratebudget.h"

/* One request waiting, held in the caller's object. */
struct dt_pacer_wait {
	TAILQ_ENTRY(dt_pacer_wait) link;
	struct dt_rb_demand demand;     /* set by the caller */
	/* released: it fits now (take the budget before anything else
	 * runs); else its wait is over. Called once, off the queue. */
	void (*done)(struct dt_pacer_wait *w, bool released);
	void *ctx;                      /* the caller's */
	uint64_t deadline;
	bool queued;
};

struct dt_pacer;

/* rb: the budgets the queues wait on (not owned). NULL: out of memory. */
struct dt_pacer *dt_pacer_new(const struct dt_rb *rb);
/* Every wait must have ended or been cancelled. */
void dt_pacer_free(struct dt_pacer *p);

/* Is a request that fits d's budget at fit_at (dt_rb_fit_at, > now)
 * better off waiting? Its provider paces, its queue has room, and fit_at
 * comes within its longest wait or the answers in flight there may make
 * room sooner (dt_rb_may_fit_sooner). The caller polls again whenever an
 * attempt settles. */
bool dt_pacer_worth_waiting(const struct dt_pacer *p, const struct dt_rb_demand *d,
			    uint64_t fit_at, uint64_t now);

/* Queue w (its demand and done set) until it fits or its provider's
 * longest wait has passed. false: not queued (the provider does not pace,
 * or its queue is full). */
bool dt_pacer_wait(struct dt_pacer *p, struct dt_pacer_wait *w, uint64_t now);

/* Take w off its queue (its client went away); done is not called. A w
 * not queued is left as it is. */
void dt_pacer_cancel(struct dt_pacer *p, struct dt_pacer_wait *w);

/* Release, in each provider's queue order, every wait that fits now, and
 * end those whose wait is over (done, each before the next is looked at;
 * done may queue, cancel and poll again). Returns when to poll next (a
 * deadline, or when a budget may fit), UINT64_MAX when nothing waits. */
uint64_t dt_pacer_poll(struct dt_pacer *p, uint64_t now);

/* Requests waiting for provider_id; for every provider. */
unsigned dt_pacer_waiting(const struct dt_pacer *p, uint32_t provider_id);
unsigned dt_pacer_total(const struct dt_pacer *p);

#endif
