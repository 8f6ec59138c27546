// SPDX-License-Identifier: MIT
/* The kernel's per-endpoint counters summed per provider (sigsum.c), as
 * `detourctl status` shows them. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sigsum.h"

static void test_tcp_counters_add_up(void **state)
{
	struct dt_tcp_signals sum = {0};
	const struct dt_tcp_signals a = {
		.resets_recv = 1, .resets_sent = 2, .retransmits = 3, .syn_retransmits = 1,
		.connect_ok = 4, .connect_fail = 5, .connect_abandoned = 6,
		.connect_lat_sum_ns = 4000, .connect_lat_count = 4, .connect_lat_last_ns = 900,
		.last_event_ns = 100, .last_kind = DT_TCP_CONNECT_OK,
	};
	const struct dt_tcp_signals b = {
		.resets_recv = 10, .retransmits = 30, .connect_ok = 1, .connect_fail = 2,
		.connect_lat_sum_ns = 11000, .connect_lat_count = 1, .connect_lat_last_ns = 11000,
		.last_event_ns = 50, .last_kind = DT_TCP_CONNECT_FAIL, .last_errno = ECONNREFUSED,
	};

	(void)state;
	dt_tcp_signals_add(&sum, &a);
	dt_tcp_signals_add(&sum, &b);
	assert_int_equal(sum.resets_recv, 11);
	assert_int_equal(sum.resets_sent, 2);
	assert_int_equal(sum.retransmits, 33);
	assert_int_equal(sum.syn_retransmits, 1);
	assert_int_equal(sum.connect_ok, 5);
	assert_int_equal(sum.connect_fail, 7);
	assert_int_equal(sum.connect_abandoned, 6);
	assert_int_equal(sum.connect_lat_count, 5);
	/* the mean of every timed connect, not the mean of the endpoints' means */
	assert_int_equal(dt_tcp_signals_connect_mean_ns(&sum), 3000);
	/* the last event is a's, which came later, whatever the order added */
	assert_int_equal(sum.last_event_ns, 100);
	assert_int_equal(sum.last_kind, DT_TCP_CONNECT_OK);
	assert_int_equal(sum.last_errno, 0);
	assert_int_equal(sum.connect_lat_last_ns, 900);
}

static void test_tcp_mean_without_timed_connects(void **state)
{
	const struct dt_tcp_signals s = { .connect_ok = 3 };

	(void)state;
	assert_int_equal(dt_tcp_signals_connect_mean_ns(&s), 0);
}

static void test_uplink_counters_add_up(void **state)
{
	struct dt_uplink_signals sum = {0};
	const struct dt_uplink_signals a = {
		.resets = 2, .unreachable = 1, .local = 1, .last_event_ns = 10,
		.last_kind = DT_UPLINK_RESET,
	};
	const struct dt_uplink_signals b = {
		.resets = 1, .unreachable = 4, .time_exceeded = 3, .local = 2, .last_event_ns = 20,
		.last_kind = DT_UPLINK_UNREACHABLE, .last_icmp_type = 3, .last_icmp_code = 1,
	};

	(void)state;
	dt_uplink_signals_add(&sum, &a);
	dt_uplink_signals_add(&sum, &b);
	assert_int_equal(sum.resets, 3);
	assert_int_equal(sum.unreachable, 5);
	assert_int_equal(sum.time_exceeded, 3);
	assert_int_equal(sum.local, 3);
	assert_int_equal(sum.last_event_ns, 20);
	assert_int_equal(sum.last_kind, DT_UPLINK_UNREACHABLE);
	assert_int_equal(sum.last_icmp_type, 3);
	assert_int_equal(sum.last_icmp_code, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_counters_add_up),
		cmocka_unit_test(test_tcp_mean_without_timed_connects),
		cmocka_unit_test(test_uplink_counters_add_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
