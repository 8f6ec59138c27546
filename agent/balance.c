// SPDX-License-Identifier: MIT
/* Load balancing within a model class; see balance.h and docs/routing.md. */
#include "balance.h"

#define NS_PER_MS 1000000ull

static const struct dt_balance_opts defaults = {
	.decay_ms = 10000,
	.latency_factor_percent = 150,
};

static unsigned or_default(unsigned value, unsigned def)
{
	return value ? value : def;
}

static uint64_t decay_ms(const struct dt_balance_opts *o)
{
	return or_default(o ? o->decay_ms : 0, defaults.decay_ms);
}

uint64_t dt_balance_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- latency ------------------------------------------------------------ */

void dt_balance_start(struct dt_balance_member *m)
{
	m->in_flight++;
}

/* Peak EWMA: a slower sample is taken at once (a provider slowing down is
 * avoided from its first slow answer), a faster one pulls the estimate
 * down with weight dt / (tau + dt), a first-order stand-in for 1 - e^-dt/tau
 * that needs no floating point. */
void dt_balance_end(struct dt_balance_member *m, uint64_t ttft_ns, uint64_t now,
		    const struct dt_balance_opts *o)
{
	uint64_t dt = now > m->sampled_at ? now - m->sampled_at : 0;

	if (m->in_flight)
		m->in_flight--;
	if (!ttft_ns)
		return;
	if (ttft_ns >= m->ttft_ewma_ns || !m->ttft_ewma_ns) {
		m->ttft_ewma_ns = ttft_ns;
	} else {
		/* in ms and 128 bits: a member idle for weeks must not wrap */
		unsigned __int128 t = decay_ms(o), d = dt / NS_PER_MS;

		m->ttft_ewma_ns = (uint64_t)((m->ttft_ewma_ns * t + ttft_ns * d) / (t + d ? t + d : 1));
		if (!m->ttft_ewma_ns)
			m->ttft_ewma_ns = 1; /* measured stays measured */
	}
	m->sampled_at = now;
}

/* The estimate fades while no sample comes (by decay / (decay + idle)): a
 * member that lost every draw since it was slow looks fast again in time,
 * is asked, and its next answer says what it is now. */
static uint64_t faded_estimate(const struct dt_balance_member *m, uint64_t now,
			       const struct dt_balance_opts *o)
{
	unsigned __int128 t = decay_ms(o);
	unsigned __int128 d = (now > m->sampled_at ? now - m->sampled_at : 0) / NS_PER_MS;

	return (uint64_t)(m->ttft_ewma_ns * t / (t + d));
}

uint64_t dt_balance_score(const struct dt_balance_member *m, uint64_t now,
			  const struct dt_balance_opts *o)
{
	return (faded_estimate(m, now, o) + 1) * ((uint64_t)m->in_flight + 1);
}

/* ---- strategies --------------------------------------------------------- */

/* Move order[i] to the front, the members before it shifting back one. */
static void move_to_front(size_t *order, size_t i)
{
	size_t chosen = order[i];

	for (; i > 0; i--)
		order[i] = order[i - 1];
	order[0] = chosen;
}

static unsigned member_weight(const struct dt_balance_member *m)
{
	return m->weight ? m->weight : 1;
}

/* Smooth weighted round-robin (as nginx's upstream): every member gains
 * its weight, the richest is picked and pays the total. Over any cycle of
 * sum(weights) picks each member is picked exactly weight times, spread
 * out rather than in runs. */
static size_t weighted_pick(struct dt_balance_member *m, const size_t *order, size_t n)
{
	int64_t total = 0;
	size_t best = 0;

	for (size_t i = 0; i < n; i++) {
		struct dt_balance_member *x = &m[order[i]];

		x->wrr_current += member_weight(x);
		total += member_weight(x);
		if (x->wrr_current > m[order[best]].wrr_current)
			best = i;
	}
	m[order[best]].wrr_current -= total;
	return best;
}

/* Power of two choices: two distinct members at random, the lower score
 * wins (the first drawn on a tie, so ties spread at random too). Near the
 * best of all at the cost of two looks, without the herd a strict minimum
 * sends to one member between two measurements. */
static size_t two_choices_pick(const struct dt_balance_member *m, const size_t *order, size_t n,
			       uint64_t *prng, uint64_t now, const struct dt_balance_opts *o)
{
	size_t a, b;

	if (n < 2)
		return 0;
	a = dt_balance_random(prng) % n;
	b = dt_balance_random(prng) % (n - 1);
	if (b >= a)
		b++;
	return dt_balance_score(&m[order[b]], now, o) < dt_balance_score(&m[order[a]], now, o) ? b : a;
}

/* Stable insertion sort of order[0 .. n) by price: ties keep the given order. */
static void sort_by_price(const struct dt_balance_member *m, size_t *order, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		size_t key = order[i], j = i;

		for (; j > 0 && m[order[j - 1]].price > m[key].price; j--)
			order[j] = order[j - 1];
		order[j] = key;
	}
}

/* Combined: the members whose score is within the factor of the best
 * measured one count as fast (unmeasured ones too, so they get measured),
 * the cheapest of them first; the slow follow, cheapest first. */
static void combined_order(const struct dt_balance_member *m, size_t *order, size_t n,
			   uint64_t now, const struct dt_balance_opts *o, unsigned factor_percent)
{
	size_t slow[DT_BALANCE_MAX_MEMBERS], n_fast = 0, n_slow = 0;
	uint64_t best = UINT64_MAX;
	unsigned __int128 limit;

	for (size_t i = 0; i < n; i++)
		if (m[order[i]].ttft_ewma_ns && dt_balance_score(&m[order[i]], now, o) < best)
			best = dt_balance_score(&m[order[i]], now, o);
	/* in 128 bits: a score near 2^64 times the factor must not wrap */
	limit = (unsigned __int128)best * factor_percent / 100;
	/* stable partition: the fast in front, the slow behind them */
	for (size_t i = 0; i < n; i++) {
		const struct dt_balance_member *x = &m[order[i]];

		if (!x->ttft_ewma_ns || dt_balance_score(x, now, o) <= limit)
			order[n_fast++] = order[i];
		else
			slow[n_slow++] = order[i];
	}
	for (size_t i = 0; i < n_slow; i++)
		order[n_fast + i] = slow[i];
	sort_by_price(m, order, n_fast);
	sort_by_price(m, order + n_fast, n_slow);
}

void dt_balance_order(enum dt_balance_strategy s, struct dt_balance_member *m, size_t *order,
		      size_t n_usable, uint64_t *prng, const struct dt_balance_opts *o, uint64_t now)
{
	unsigned factor = or_default(o ? o->latency_factor_percent : 0,
				     defaults.latency_factor_percent);

	if (n_usable == 0)
		return;
	if (n_usable > DT_BALANCE_MAX_MEMBERS)
		n_usable = DT_BALANCE_MAX_MEMBERS;
	switch (s) {
	case DT_BALANCE_PRIORITY:
		break;
	case DT_BALANCE_WEIGHTED:
		move_to_front(order, weighted_pick(m, order, n_usable));
		break;
	case DT_BALANCE_LEAST_LATENCY:
		move_to_front(order, two_choices_pick(m, order, n_usable, prng, now, o));
		break;
	case DT_BALANCE_CHEAPEST:
		sort_by_price(m, order, n_usable);
		break;
	case DT_BALANCE_COMBINED:
		combined_order(m, order, n_usable, now, o, factor < 100 ? 100 : factor);
		break;
	}
}
