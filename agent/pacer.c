// SPDX-License-Identifier: MIT
/* The pacing queue; see pacer.h and docs/routing.md. */
#include <stdlib.h>

#include "pacer.h"

#define NS_PER_MS 1000000ull

TAILQ_HEAD(wait_queue, dt_pacer_wait);

struct dt_pacer {
	const struct dt_rb *rb;
	struct wait_queue queue[DT_MAX_PROVIDERS];
	unsigned waiting[DT_MAX_PROVIDERS];
	unsigned total;
	bool queued;    /* a wait was queued since the poll began */
};

struct dt_pacer *dt_pacer_new(const struct dt_rb *rb)
{
	struct dt_pacer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->rb = rb;
	for (size_t i = 0; i < DT_MAX_PROVIDERS; i++)
		TAILQ_INIT(&p->queue[i]);
	return p;
}

void dt_pacer_free(struct dt_pacer *p)
{
	free(p);
}

unsigned dt_pacer_waiting(const struct dt_pacer *p, uint32_t provider_id)
{
	return provider_id < DT_MAX_PROVIDERS ? p->waiting[provider_id] : 0;
}

unsigned dt_pacer_total(const struct dt_pacer *p)
{
	return p->total;
}

/* The provider's pacing settings when it paces, else NULL. */
static const struct dt_rb_provider_cfg *pacing(const struct dt_pacer *p, uint32_t provider_id)
{
	const struct dt_rb_provider_cfg *c = dt_rb_provider(p->rb, provider_id);

	return c && c->pace ? c : NULL;
}

bool dt_pacer_worth_waiting(const struct dt_pacer *p, const struct dt_rb_demand *d,
			    uint64_t fit_at, uint64_t now)
{
	const struct dt_rb_provider_cfg *c = pacing(p, d->provider_id);

	return c && p->waiting[d->provider_id] < c->pace_max_queue &&
	       (fit_at <= now + (uint64_t)c->pace_max_wait_ms * NS_PER_MS ||
		dt_rb_may_fit_sooner(p->rb, d, now));
}

bool dt_pacer_wait(struct dt_pacer *p, struct dt_pacer_wait *w, uint64_t now)
{
	const struct dt_rb_provider_cfg *c = pacing(p, w->demand.provider_id);
	uint32_t id = w->demand.provider_id;

	if (!c || p->waiting[id] >= c->pace_max_queue)
		return false;
	w->deadline = now + (uint64_t)c->pace_max_wait_ms * NS_PER_MS;
	w->queued = true;
	TAILQ_INSERT_TAIL(&p->queue[id], w, link);
	p->waiting[id]++;
	p->total++;
	p->queued = true;
	return true;
}

void dt_pacer_cancel(struct dt_pacer *p, struct dt_pacer_wait *w)
{
	uint32_t id = w->demand.provider_id;

	if (!w->queued)
		return;
	TAILQ_REMOVE(&p->queue[id], w, link);
	w->queued = false;
	p->waiting[id]--;
	p->total--;
}

/* Look at provider id's queue once: the first wait that fits or is over
 * ends (true: look again, done may have changed anything); otherwise
 * *next is lowered to the soonest time one may. */
static bool poll_queue(struct dt_pacer *p, uint32_t id, uint64_t now, uint64_t *next)
{
	struct dt_pacer_wait *w;

	TAILQ_FOREACH(w, &p->queue[id], link) {
		uint64_t fit = w->deadline > now ? dt_rb_fit_at(p->rb, &w->demand, now) : UINT64_MAX;

		if (fit == 0 || w->deadline <= now) {
			dt_pacer_cancel(p, w);
			w->done(w, fit == 0);
			return true;
		}
		if (fit < *next)
			*next = fit;
		if (w->deadline < *next)
			*next = w->deadline;
	}
	return false;
}

uint64_t dt_pacer_poll(struct dt_pacer *p, uint64_t now)
{
	uint64_t next;

	/* a done that queues a wait (the request's next member paces too)
	 * may do so in a queue already looked at: then all are again */
	do {
		p->queued = false;
		next = UINT64_MAX;
		for (uint32_t id = 0; id < DT_MAX_PROVIDERS && p->total; id++) {
			uint64_t soonest;

			do
				soonest = UINT64_MAX;
			while (p->waiting[id] && poll_queue(p, id, now, &soonest));
			if (soonest < next)
				next = soonest;
		}
	} while (p->queued);
	return next;
}
