// SPDX-License-Identifier: MIT
/* The hedge deadline: a multiple of the usual time, within its bounds,
 * never at or after the first-byte timeout. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hedge.h"

#define MS 1000000ull

static const struct dt_hedge_opts defaults = {
	.on = true, .factor_percent = 300, .min_ms = 1000, .max_ms = 10000,
};

static void test_a_multiple_of_the_usual_time(void **state)
{
	struct dt_hedge_opts twice = defaults;

	(void)state;
	assert_int_equal(dt_hedge_delay_ns(&defaults, 400 * MS, 30000), 1200 * MS);
	assert_int_equal(dt_hedge_delay_ns(&defaults, 3000 * MS, 30000), 9000 * MS);
	twice.factor_percent = 200;
	assert_int_equal(dt_hedge_delay_ns(&twice, 3000 * MS, 30000), 6000 * MS);
}

static void test_bounded(void **state)
{
	(void)state;
	/* a fast model: never sooner than the floor */
	assert_int_equal(dt_hedge_delay_ns(&defaults, 50 * MS, 30000), 1000 * MS);
	assert_int_equal(dt_hedge_delay_ns(&defaults, 333 * MS, 30000), 1000 * MS);
	/* a slow one: never later than the ceiling */
	assert_int_equal(dt_hedge_delay_ns(&defaults, 8000 * MS, 30000), 10000 * MS);
	/* nothing usual known yet: as late as allowed */
	assert_int_equal(dt_hedge_delay_ns(&defaults, 0, 30000), 10000 * MS);
}

static void test_never_at_or_after_the_first_byte_timeout(void **state)
{
	(void)state;
	/* the timeout moves on by itself: a hedge then is no hedge */
	assert_int_equal(dt_hedge_delay_ns(&defaults, 0, 10000), 0);
	assert_int_equal(dt_hedge_delay_ns(&defaults, 0, 10001), 10000 * MS);
	assert_int_equal(dt_hedge_delay_ns(&defaults, 400 * MS, 1200), 0);
	assert_int_equal(dt_hedge_delay_ns(&defaults, 400 * MS, 1201), 1200 * MS);
}

static void test_off(void **state)
{
	struct dt_hedge_opts off = defaults;

	(void)state;
	off.on = false;
	assert_int_equal(dt_hedge_delay_ns(&off, 400 * MS, 30000), 0);
	assert_int_equal(dt_hedge_delay_ns(&off, 0, 30000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_multiple_of_the_usual_time),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_never_at_or_after_the_first_byte_timeout),
		cmocka_unit_test(test_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
