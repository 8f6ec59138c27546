// SPDX-License-Identifier: MIT
/* Load balancing: each strategy's distribution over many requests with
 * fixed seeds, the peak-EWMA latency estimate, and unusable members left
 * behind the usable ones whatever the strategy. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "balance.h"

#define MS 1000000ull
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PICKS 10000

static const enum dt_balance_strategy all_strategies[] = {
	DT_BALANCE_PRIORITY, DT_BALANCE_WEIGHTED, DT_BALANCE_LEAST_LATENCY,
	DT_BALANCE_CHEAPEST, DT_BALANCE_COMBINED,
};

static void identity(size_t *order, size_t n)
{
	for (size_t i = 0; i < n; i++)
		order[i] = i;
}

/* How often each member is tried first over `picks` requests, with all n
 * usable. */
static void count_first(enum dt_balance_strategy s, struct dt_balance_member *m, size_t n,
			unsigned picks, uint64_t seed, unsigned *first)
{
	size_t order[8];
	uint64_t prng = seed;

	memset(first, 0, n * sizeof(*first));
	for (unsigned i = 0; i < picks; i++) {
		identity(order, n);
		dt_balance_order(s, m, order, n, &prng, NULL, 0);
		first[order[0]]++;
	}
}

static void test_priority_keeps_the_order(void **state)
{
	struct dt_balance_member m[4] = {{ .price = 9 }, { .price = 1 }, { .price = 5 }, { .price = 3 }};
	size_t order[4] = { 2, 0, 3, 1 };
	uint64_t prng = 1;

	(void)state;
	dt_balance_order(DT_BALANCE_PRIORITY, m, order, 4, &prng, NULL, 0);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 0);
	assert_int_equal(order[2], 3);
	assert_int_equal(order[3], 1);
}

/* Smooth WRR: exactly weight picks per member in every cycle of
 * sum(weights) requests, the heavy member spread out, the rest of the
 * order untouched. */
static void test_weighted_exact_per_cycle(void **state)
{
	struct dt_balance_member m[3] = {{ .weight = 5 }, { .weight = 1 }, { .weight = 0 /* → 1 */ }};
	unsigned first[3];
	size_t order[3];
	uint64_t prng = 0;

	(void)state;
	for (int cycle = 0; cycle < 20; cycle++) {
		count_first(DT_BALANCE_WEIGHTED, m, 3, 7, 0, first);
		assert_int_equal(first[0], 5);
		assert_int_equal(first[1], 1);
		assert_int_equal(first[2], 1);
	}
	/* nginx's sequence for 5,1,1: a a b a c a a — never b and c back to back */
	memset(m, 0, sizeof(m));
	m[0].weight = 5;
	m[1].weight = m[2].weight = 1;
	{
		static const size_t expected[7] = { 0, 0, 1, 0, 2, 0, 0 };

		for (size_t i = 0; i < 7; i++) {
			identity(order, 3);
			dt_balance_order(DT_BALANCE_WEIGHTED, m, order, 3, &prng, NULL, 0);
			assert_int_equal(order[0], expected[i]);
			/* the failover order behind the pick is the given one */
			assert_true(order[1] < order[2]);
		}
	}
}

/* Power of two choices: the fast member is first whenever it is one of
 * the two drawn (2/3 with three members), never when it is not; the slow
 * ones still get their share, so no herd. */
static void test_least_latency_prefers_fast(void **state)
{
	struct dt_balance_member m[3] = {
		{ .ttft_ewma_ns = 300 * MS }, { .ttft_ewma_ns = 100 * MS }, { .ttft_ewma_ns = 300 * MS },
	};
	unsigned first[3];

	(void)state;
	count_first(DT_BALANCE_LEAST_LATENCY, m, 3, PICKS, 42, first);
	/* expected 6667, 1667, 1667; σ ≈ 47 and 37 */
	assert_in_range(first[1], 6400, 6900);
	assert_in_range(first[0], 1450, 1900);
	assert_in_range(first[2], 1450, 1900);
}

/* In-flight requests count: with equal latency the loaded member loses
 * every pair it is drawn in. */
static void test_least_latency_avoids_loaded(void **state)
{
	struct dt_balance_member m[4] = {
		{ .ttft_ewma_ns = 100 * MS, .in_flight = 4 }, { .ttft_ewma_ns = 100 * MS },
		{ .ttft_ewma_ns = 100 * MS }, { .ttft_ewma_ns = 100 * MS },
	};
	unsigned first[4];

	(void)state;
	count_first(DT_BALANCE_LEAST_LATENCY, m, 4, PICKS, 7, first);
	assert_int_equal(first[0], 0);
	for (size_t i = 1; i < 4; i++)
		assert_in_range(first[i], 3000, 3700);
	/* the same seed, the same picks */
	{
		unsigned again[4];

		count_first(DT_BALANCE_LEAST_LATENCY, m, 4, PICKS, 7, again);
		assert_memory_equal(first, again, sizeof(first));
	}
}

/* A member never measured is drawn ahead of measured ones, so it gets
 * measured; start/end keep the in-flight count. */
static void test_unmeasured_and_in_flight(void **state)
{
	struct dt_balance_member fresh = { 0 }, known = { .ttft_ewma_ns = 1 * MS };

	(void)state;
	assert_true(dt_balance_score(&fresh, 0, NULL) < dt_balance_score(&known, 0, NULL));
	dt_balance_start(&known);
	dt_balance_start(&known);
	assert_int_equal(known.in_flight, 2);
	assert_int_equal(dt_balance_score(&known, 0, NULL), 3 * (1 * MS + 1)); /* behind two: a third in line */
	dt_balance_end(&known, 0, 5 * MS, NULL);
	dt_balance_end(&known, 0, 5 * MS, NULL);
	dt_balance_end(&known, 0, 5 * MS, NULL); /* one too many: stays 0 */
	assert_int_equal(known.in_flight, 0);
	assert_int_equal(known.ttft_ewma_ns, 1 * MS); /* no first token: no sample */
}

/* Peak EWMA: a slower sample at once, a faster one blended by how long
 * since the last sample (dt / (tau + dt)). */
static void test_peak_ewma(void **state)
{
	const struct dt_balance_opts o = { .decay_ms = 10000 };
	struct dt_balance_member m = { 0 };
	uint64_t t = 1000 * MS;

	(void)state;
	dt_balance_start(&m);
	dt_balance_end(&m, 200 * MS, t, &o);
	assert_int_equal(m.ttft_ewma_ns, 200 * MS);
	dt_balance_start(&m);
	dt_balance_end(&m, 800 * MS, t + 1 * MS, &o);
	assert_int_equal(m.ttft_ewma_ns, 800 * MS);
	/* tau later: half way to the new sample */
	dt_balance_start(&m);
	dt_balance_end(&m, 200 * MS, t + 1 * MS + 10000 * MS, &o);
	assert_int_equal(m.ttft_ewma_ns, 500 * MS);
	/* a fast sample right after: barely moves it */
	dt_balance_start(&m);
	dt_balance_end(&m, 100 * MS, t + 1 * MS + 10000 * MS, &o);
	assert_int_equal(m.ttft_ewma_ns, 500 * MS);
	/* extremes: an hour-long estimate, 60 days idle, a 50-minute sample
	 * (sample × days in ms is past 2^64): the old estimate is forgotten,
	 * nothing wraps */
	m.ttft_ewma_ns = 3600000 * MS;
	dt_balance_start(&m);
	dt_balance_end(&m, 3000000 * MS, m.sampled_at + 60ull * 86400 * 1000 * MS, &o);
	assert_in_range(m.ttft_ewma_ns, 3000000 * MS, 3000002 * MS);
}

/* A member that was slow loses every draw, so no answer updates it: its
 * estimate fades with the time since its last sample until it is asked
 * again, while a member answering all along stays as measured. */
static void test_estimate_fades_without_samples(void **state)
{
	struct dt_balance_member m[2] = {
		{ .ttft_ewma_ns = 900 * MS, .sampled_at = 0 },
		{ .ttft_ewma_ns = 100 * MS },
	};
	size_t order[2];
	uint64_t prng = 5, now;

	(void)state;
	/* decay 10 s: 10 s idle halves it (450 ms), still slower */
	now = 10000 * MS;
	m[1].sampled_at = now;
	assert_int_equal(dt_balance_score(&m[0], now, NULL), 450 * MS + 1);
	identity(order, 2);
	dt_balance_order(DT_BALANCE_LEAST_LATENCY, m, order, 2, &prng, NULL, now);
	assert_int_equal(order[0], 1);
	/* 100 s idle: 900 × 10 / 110 ≈ 82 ms, now ahead of the fresh 100 ms */
	now = 100000 * MS;
	m[1].sampled_at = now;
	identity(order, 2);
	dt_balance_order(DT_BALANCE_LEAST_LATENCY, m, order, 2, &prng, NULL, now);
	assert_int_equal(order[0], 0);
	/* asked, it answers slowly again: the peak is back at once */
	dt_balance_start(&m[0]);
	dt_balance_end(&m[0], 900 * MS, now, NULL);
	identity(order, 2);
	dt_balance_order(DT_BALANCE_LEAST_LATENCY, m, order, 2, &prng, NULL, now);
	assert_int_equal(order[0], 1);
}

static void test_cheapest(void **state)
{
	/* the cheapest (3) is unusable: it stays behind, the cheapest usable leads */
	struct dt_balance_member m[5] = {
		{ .price = 150 }, { .price = 60 }, { .price = 60 }, { .price = 1 }, { .price = 400 },
	};
	size_t order[5] = { 0, 1, 2, 4, 3 };
	uint64_t prng = 3;

	(void)state;
	dt_balance_order(DT_BALANCE_CHEAPEST, m, order, 4, &prng, NULL, 0);
	assert_int_equal(order[0], 1); /* ties keep the health engine's order */
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 0);
	assert_int_equal(order[3], 4);
	assert_int_equal(order[4], 3);
}

/* Combined: the cheapest of those within the factor of the fastest, the
 * slow ones after, cheapest first; an unmeasured member counts as fast. */
static void test_combined_respects_factor(void **state)
{
	struct dt_balance_member m[4] = {
		{ .ttft_ewma_ns = 100 * MS, .price = 10 }, { .ttft_ewma_ns = 140 * MS, .price = 5 },
		{ .ttft_ewma_ns = 200 * MS, .price = 1 },  { .ttft_ewma_ns = 400 * MS, .price = 2 },
	};
	const struct dt_balance_opts tight = { .latency_factor_percent = 150 };
	const struct dt_balance_opts loose = { .latency_factor_percent = 250 };
	size_t order[4];
	uint64_t prng = 0;

	(void)state;
	identity(order, 4);
	dt_balance_order(DT_BALANCE_COMBINED, m, order, 4, &prng, &tight, 0);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 0);
	assert_int_equal(order[2], 2);
	assert_int_equal(order[3], 3);
	identity(order, 4);
	dt_balance_order(DT_BALANCE_COMBINED, m, order, 4, &prng, &loose, 0);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 0);
	assert_int_equal(order[3], 3);
	/* the fast one gets busy: its score rises, the best with it */
	m[0].in_flight = 2; /* 300 ms: now 140 is best, 200 ≤ 210 is fast */
	identity(order, 4);
	dt_balance_order(DT_BALANCE_COMBINED, m, order, 4, &prng, &tight, 0);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 1);
	/* never measured: fast by default */
	m[3].ttft_ewma_ns = 0;
	identity(order, 4);
	dt_balance_order(DT_BALANCE_COMBINED, m, order, 4, &prng, &tight, 0);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 3);
}

/* Whatever the strategy and state, the members past n_usable stay where
 * they are, and the usable ones are a permutation of themselves. */
static void test_unusable_stay_behind(void **state)
{
	struct dt_balance_member m[6] = {
		{ .weight = 1, .price = 50, .ttft_ewma_ns = 300 * MS },
		{ .weight = 3, .price = 40, .ttft_ewma_ns = 200 * MS, .in_flight = 1 },
		{ .weight = 2, .price = 90, .ttft_ewma_ns = 0 },
		{ .weight = 9, .price = 1, .ttft_ewma_ns = 1 },     /* unusable, best in every way */
		{ .weight = 9, .price = 0, .ttft_ewma_ns = 0 },     /* unusable */
		{ .weight = 1, .price = 0, .ttft_ewma_ns = 1 },     /* unusable */
	};
	uint64_t prng = 99;

	(void)state;
	for (size_t s = 0; s < ARRAY_LEN(all_strategies); s++) {
		for (unsigned i = 0; i < 1000; i++) {
			size_t order[6] = { 2, 0, 1, 5, 3, 4 };
			unsigned seen = 0;

			dt_balance_order(all_strategies[s], m, order, 3, &prng, NULL, 0);
			for (size_t k = 0; k < 3; k++) {
				assert_true(order[k] <= 2);
				seen |= 1u << order[k];
			}
			assert_int_equal(seen, 7);
			assert_int_equal(order[3], 5);
			assert_int_equal(order[4], 3);
			assert_int_equal(order[5], 4);
		}
		/* nothing usable: nothing moves */
		{
			size_t order[3] = { 2, 1, 0 };

			dt_balance_order(all_strategies[s], m, order, 0, &prng, NULL, 0);
			assert_int_equal(order[0], 2);
			assert_int_equal(order[2], 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_priority_keeps_the_order),
		cmocka_unit_test(test_weighted_exact_per_cycle),
		cmocka_unit_test(test_least_latency_prefers_fast),
		cmocka_unit_test(test_least_latency_avoids_loaded),
		cmocka_unit_test(test_unmeasured_and_in_flight),
		cmocka_unit_test(test_peak_ewma),
		cmocka_unit_test(test_estimate_fades_without_samples),
		cmocka_unit_test(test_cheapest),
		cmocka_unit_test(test_combined_respects_factor),
		cmocka_unit_test(test_unusable_stay_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
