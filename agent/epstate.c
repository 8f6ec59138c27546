// SPDX-License-Identifier: MIT
/* Endpoint verdicts; see epstate.h. */
#include <stdlib.h>
#include <string.h>

#include "epstate.h"

/* Open addressing, linear probing, twice the endpoint bound: lookups stay
 * short and the table never fills (dt_itable caps endpoints). */
#define SLOTS (2 * DT_MAX_ENDPOINTS)
#define MAX_BACKOFF_SHIFT 8

struct slot {
	bool used;
	struct dt_endpoint ep;
	struct dt_verdict v;
};

struct dt_epstate {
	dt_verdict_publish_fn publish;
	void *ctx;
	uint64_t hold_ns;
	struct slot slots[SLOTS];
};

bool dt_endpoint_equal(const struct dt_endpoint *a, const struct dt_endpoint *b)
{
	return memcmp(a->addr, b->addr, sizeof(a->addr)) == 0 && a->port == b->port;
}

static size_t endpoint_hash(const struct dt_endpoint *ep)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	const unsigned char *p = (const unsigned char *)ep;

	for (size_t i = 0; i < offsetof(struct dt_endpoint, pad); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (size_t)(h % SLOTS);
}

static struct slot *find(const struct dt_epstate *st, const struct dt_endpoint *ep)
{
	size_t i = endpoint_hash(ep);

	for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		const struct slot *s = &st->slots[i];

		if (!s->used)
			return NULL;
		if (dt_endpoint_equal(&s->ep, ep))
			return (struct slot *)s;
	}
	return NULL;
}

static struct slot *find_or_add(struct dt_epstate *st, const struct dt_endpoint *ep,
				uint32_t provider_id, uint64_t now)
{
	size_t i = endpoint_hash(ep);

	for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		struct slot *s = &st->slots[i];

		if (s->used && dt_endpoint_equal(&s->ep, ep))
			return s;
		if (!s->used) {
			memset(s, 0, sizeof(*s));
			s->used = true;
			s->ep = *ep;
			s->ep.pad = 0;
			s->v.provider_id = provider_id;
			s->v.state = DT_HEALTHY;
			s->v.since_ns = now;
			return s;
		}
	}
	return NULL;
}

struct dt_epstate *dt_epstate_new(dt_verdict_publish_fn publish, void *ctx)
{
	struct dt_epstate *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->publish = publish;
	st->ctx = ctx;
	st->hold_ns = 5000000000ull;
	return st;
}

void dt_epstate_free(struct dt_epstate *st)
{
	free(st);
}

void dt_epstate_set_hold(struct dt_epstate *st, uint64_t hold_ns)
{
	st->hold_ns = hold_ns;
}

static void publish(struct dt_epstate *st, const struct slot *s)
{
	if (st->publish)
		st->publish(st->ctx, &s->ep, &s->v);
}

void dt_epstate_success(struct dt_epstate *st, const struct dt_endpoint *ep,
			uint32_t provider_id, uint64_t now)
{
	struct slot *s = find_or_add(st, ep, provider_id, now);

	if (!s)
		return;
	s->v.relayed++;
	s->v.consecutive_failures = 0;
	s->v.until_ns = 0;
	if (s->v.state != DT_HEALTHY) {
		s->v.state = DT_HEALTHY;
		s->v.reason = DT_REASON_RECOVERED;
		s->v.since_ns = now;
	}
	publish(st, s);
}

void dt_epstate_failure(struct dt_epstate *st, const struct dt_endpoint *ep,
			uint32_t provider_id, enum dt_reason reason, uint64_t now)
{
	struct slot *s = find_or_add(st, ep, provider_id, now);
	unsigned shift;

	if (!s)
		return;
	s->v.failures++;
	s->v.consecutive_failures++;
	shift = s->v.consecutive_failures - 1;
	if (shift > MAX_BACKOFF_SHIFT)
		shift = MAX_BACKOFF_SHIFT;
	s->v.until_ns = now + (st->hold_ns << shift);
	s->v.reason = reason;
	if (s->v.state != DT_DOWN) {
		s->v.state = DT_DOWN;
		s->v.since_ns = now;
	}
	publish(st, s);
}

void dt_epstate_seed(struct dt_epstate *st, const struct dt_endpoint *ep,
		     const struct dt_verdict *v)
{
	struct slot *s = find_or_add(st, ep, v->provider_id, v->since_ns);

	if (s)
		s->v = *v;
}

void dt_epstate_failover(struct dt_epstate *st, const struct dt_endpoint *ep)
{
	struct slot *s = find(st, ep);

	if (!s)
		return;
	s->v.failovers++;
	publish(st, s);
}

void dt_epstate_forget(struct dt_epstate *st, const struct dt_endpoint *ep)
{
	struct slot *s = find(st, ep);
	size_t hole, i;

	if (!s)
		return;
	/* backward-shift deletion keeps every probe chain unbroken */
	hole = (size_t)(s - st->slots);
	s->used = false;
	for (i = (hole + 1) % SLOTS; st->slots[i].used; i = (i + 1) % SLOTS) {
		size_t home = endpoint_hash(&st->slots[i].ep);
		bool movable = hole <= i ? (home <= hole || home > i)
					 : (home <= hole && home > i);

		if (movable) {
			st->slots[hole] = st->slots[i];
			st->slots[i].used = false;
			hole = i;
		}
	}
}

struct dt_verdict dt_epstate_get(const struct dt_epstate *st, const struct dt_endpoint *ep)
{
	const struct slot *s = find(st, ep);
	struct dt_verdict none = { .state = DT_HEALTHY };

	return s ? s->v : none;
}

static bool held_down(const struct dt_verdict *v, uint64_t now)
{
	return v->state == DT_DOWN && now < v->until_ns;
}

size_t dt_epstate_order(const struct dt_epstate *st, const struct dt_endpoint *wanted,
			const struct dt_endpoint *cands, size_t n, uint64_t now,
			struct dt_endpoint *out, size_t max)
{
	struct dt_verdict wv = dt_epstate_get(st, wanted);
	size_t count = 0, first_held;

	if (max == 0)
		return 0;
	if (!held_down(&wv, now))
		out[count++] = *wanted;
	for (size_t i = 0; i < n && count < max; i++) {
		struct dt_verdict v = dt_epstate_get(st, &cands[i]);

		if (!dt_endpoint_equal(&cands[i], wanted) && !held_down(&v, now))
			out[count++] = cands[i];
	}

	/* last resort: held-down endpoints, the one released soonest first */
	first_held = count;
	if (held_down(&wv, now) && count < max)
		out[count++] = *wanted;
	for (size_t i = 0; i < n && count < max; i++) {
		struct dt_verdict v = dt_epstate_get(st, &cands[i]);

		if (!dt_endpoint_equal(&cands[i], wanted) && held_down(&v, now))
			out[count++] = cands[i];
	}
	for (size_t i = first_held + 1; i < count; i++) {
		struct dt_endpoint key = out[i];
		uint64_t until = dt_epstate_get(st, &key).until_ns;
		size_t j = i;

		while (j > first_held && dt_epstate_get(st, &out[j - 1]).until_ns > until) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = key;
	}
	return count;
}
