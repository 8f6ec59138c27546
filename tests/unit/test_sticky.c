// SPDX-License-Identifier: MIT
/* Stickiness table: hits, misses, the TTL from the last answer, eviction of
 * the least recently answered, the bound on memory, the key hash. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sticky.h"

#define SEC 1000000000ull
#define TTL (300 * SEC)

static uint32_t get(const struct dt_sticky *t, uint64_t key, uint64_t now)
{
	uint32_t provider_id = UINT32_MAX;

	return dt_sticky_get(t, key, TTL, now, &provider_id) ? provider_id : UINT32_MAX;
}

static void test_hit_miss_and_overwrite(void **state)
{
	struct dt_sticky *t = dt_sticky_new(64);

	(void)state;
	assert_non_null(t);
	assert_int_equal(get(t, 42, SEC), UINT32_MAX);
	dt_sticky_put(t, 42, 7, SEC);
	assert_int_equal(get(t, 42, 2 * SEC), 7);
	assert_int_equal(get(t, 43, 2 * SEC), UINT32_MAX);
	/* answered by another provider: that one now */
	dt_sticky_put(t, 42, 9, 3 * SEC);
	assert_int_equal(get(t, 42, 4 * SEC), 9);
	/* key 0 is no conversation */
	dt_sticky_put(t, 0, 5, SEC);
	assert_int_equal(get(t, 0, SEC), UINT32_MAX);
	dt_sticky_free(t);
}

static void test_ttl_counts_from_the_last_answer(void **state)
{
	struct dt_sticky *t = dt_sticky_new(64);

	(void)state;
	dt_sticky_put(t, 42, 7, 10 * SEC);
	assert_int_equal(get(t, 42, 10 * SEC + TTL - 1), 7);
	assert_int_equal(get(t, 42, 10 * SEC + TTL), UINT32_MAX);
	/* a lookup does not keep it alive, an answer does */
	dt_sticky_put(t, 42, 7, 10 * SEC + TTL - 1);
	assert_int_equal(get(t, 42, 10 * SEC + 2 * TTL - 2), 7);
	/* a clock gone back does not expire it */
	assert_int_equal(get(t, 42, SEC), 7);
	dt_sticky_free(t);
}

static void test_capacity_rounds_up_to_whole_sets(void **state)
{
	const size_t asked[] = { 0, 1, 4, 5, 8, 9, 4096 };
	const size_t got[] = { 4, 4, 4, 8, 8, 16, 4096 };

	(void)state;
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		struct dt_sticky *t = dt_sticky_new(asked[i]);

		assert_int_equal(dt_sticky_capacity(t), got[i]);
		dt_sticky_free(t);
	}
}

/* One set: a full table gives the least recently answered entry away. */
static void test_eviction_least_recently_answered(void **state)
{
	struct dt_sticky *t = dt_sticky_new(DT_STICKY_WAYS);

	(void)state;
	assert_int_equal(dt_sticky_capacity(t), DT_STICKY_WAYS);
	for (uint64_t k = 1; k <= 4; k++)
		dt_sticky_put(t, k, (uint32_t)k, k * SEC);
	/* looked up, not answered: 1 is still the oldest */
	assert_int_equal(get(t, 1, 5 * SEC), 1);
	dt_sticky_put(t, 5, 5, 6 * SEC);
	assert_int_equal(get(t, 1, 6 * SEC), UINT32_MAX);
	for (uint64_t k = 2; k <= 5; k++)
		assert_int_equal(get(t, k, 6 * SEC), k);
	/* 2 answered again: 3 is the oldest now */
	dt_sticky_put(t, 2, 2, 7 * SEC);
	dt_sticky_put(t, 6, 6, 8 * SEC);
	assert_int_equal(get(t, 3, 8 * SEC), UINT32_MAX);
	assert_int_equal(get(t, 2, 8 * SEC), 2);
	assert_int_equal(get(t, 6, 8 * SEC), 6);
	dt_sticky_free(t);
}

/* However many conversations come, the table holds at most its capacity,
 * and the most recent of them are found. */
static void test_bounded(void **state)
{
	struct dt_sticky *t = dt_sticky_new(256);
	size_t found = 0, recent = 0;
	uint64_t h = 1;

	(void)state;
	for (uint64_t k = 1; k <= 100000; k++) {
		h = dt_sticky_hash(h, &k, sizeof(k));
		dt_sticky_put(t, h, (uint32_t)(k % 256), k);
	}
	h = 1;
	for (uint64_t k = 1; k <= 100000; k++) {
		uint32_t p;

		h = dt_sticky_hash(h, &k, sizeof(k));
		if (dt_sticky_get(t, h, TTL, 100001, &p)) {
			assert_int_equal(p, k % 256);
			found++;
			recent += k > 100000 - 256;
		}
	}
	assert_true(found <= dt_sticky_capacity(t));
	/* the last 256 spread over 64 sets: most of them fit */
	assert_true(recent >= 160);
	dt_sticky_free(t);
}

static void test_hash(void **state)
{
	(void)state;
	assert_int_equal(dt_sticky_hash(1, "conversation", 12), dt_sticky_hash(1, "conversation", 12));
	assert_int_not_equal(dt_sticky_hash(1, "conversation", 12), dt_sticky_hash(2, "conversation", 12));
	assert_int_not_equal(dt_sticky_hash(1, "conversation", 12), dt_sticky_hash(1, "conversatioN", 12));
	/* the length is hashed: trailing zero bytes count */
	assert_int_not_equal(dt_sticky_hash(1, "a", 1), dt_sticky_hash(1, "a\0", 2));
	assert_int_not_equal(dt_sticky_hash(1, "", 0), dt_sticky_hash(1, "\0", 1));
	/* a byte past the first word */
	assert_int_not_equal(dt_sticky_hash(1, "0123456789", 10), dt_sticky_hash(1, "0123456788", 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss_and_overwrite),
		cmocka_unit_test(test_ttl_counts_from_the_last_answer),
		cmocka_unit_test(test_capacity_rounds_up_to_whole_sets),
		cmocka_unit_test(test_eviction_least_recently_answered),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
