// SPDX-License-Identifier: MIT
/* Endpoint verdicts: hold-down, back-off, recovery, candidate order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "epstate.h"

#define SEC 1000000000ull

struct published {
	int count;
	struct dt_endpoint ep;
	struct dt_verdict v;
};

static void record(void *ctx, const struct dt_endpoint *ep, const struct dt_verdict *v)
{
	struct published *p = ctx;

	p->count++;
	p->ep = *ep;
	p->v = *v;
}

static struct dt_endpoint v4(uint8_t last, uint16_t port)
{
	struct dt_endpoint ep = {0};

	ep.addr[2] = htonl(0xffff);
	ep.addr[3] = htonl(0xc6120000u | last); /* 198.18.0.last */
	ep.port = htons(port);
	return ep;
}

static void test_failure_holds_down_and_backs_off(void **state)
{
	struct published pub = {0};
	struct dt_epstate *st = dt_epstate_new(record, &pub);
	struct dt_endpoint a = v4(1, 443);
	struct dt_verdict v;

	(void)state;
	dt_epstate_set_hold(st, 5 * SEC);
	dt_epstate_failure(st, &a, 7, DT_REASON_CONNECT_REFUSED, 100 * SEC);
	v = dt_epstate_get(st, &a);
	assert_int_equal(v.state, DT_DOWN);
	assert_int_equal(v.reason, DT_REASON_CONNECT_REFUSED);
	assert_int_equal(v.provider_id, 7);
	assert_int_equal(v.until_ns, 105 * SEC);
	assert_int_equal(v.since_ns, 100 * SEC);
	assert_int_equal(pub.count, 1);

	/* a second failure doubles the hold; "since" keeps the first change */
	dt_epstate_failure(st, &a, 7, DT_REASON_CONNECT_TIMEOUT, 106 * SEC);
	v = dt_epstate_get(st, &a);
	assert_int_equal(v.until_ns, 116 * SEC);
	assert_int_equal(v.since_ns, 100 * SEC);
	assert_int_equal(v.consecutive_failures, 2);
	assert_int_equal(v.failures, 2);

	/* back-off is capped at 2^8 times the hold */
	for (int i = 0; i < 20; i++)
		dt_epstate_failure(st, &a, 7, DT_REASON_RESET, 200 * SEC);
	assert_int_equal(dt_epstate_get(st, &a).until_ns, 200 * SEC + (5 * SEC << 8));
	dt_epstate_free(st);
}

static void test_success_recovers(void **state)
{
	struct published pub = {0};
	struct dt_epstate *st = dt_epstate_new(record, &pub);
	struct dt_endpoint a = v4(1, 443);
	struct dt_verdict v;

	(void)state;
	dt_epstate_failure(st, &a, 1, DT_REASON_RESET, 10 * SEC);
	dt_epstate_success(st, &a, 1, 20 * SEC);
	v = dt_epstate_get(st, &a);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.reason, DT_REASON_RECOVERED);
	assert_int_equal(v.since_ns, 20 * SEC);
	assert_int_equal(v.consecutive_failures, 0);
	assert_int_equal(v.until_ns, 0);
	assert_int_equal(v.relayed, 1);
	assert_int_equal(v.failures, 1);
	assert_int_equal(pub.count, 2);
	assert_true(dt_endpoint_equal(&pub.ep, &a));
	dt_epstate_free(st);
}

static void test_order_prefers_wanted_then_usable_then_soonest_released(void **state)
{
	struct dt_epstate *st = dt_epstate_new(NULL, NULL);
	struct dt_endpoint a = v4(1, 443), b = v4(2, 443), c = v4(3, 443), d = v4(4, 443);
	struct dt_endpoint cands[] = { a, b, c, d }, out[8];
	size_t n;

	(void)state;
	dt_epstate_set_hold(st, 10 * SEC);
	/* nothing known: wanted first, then the others in their order */
	n = dt_epstate_order(st, &c, cands, 4, 0, out, 8);
	assert_int_equal(n, 4);
	assert_true(dt_endpoint_equal(&out[0], &c));
	assert_true(dt_endpoint_equal(&out[1], &a));
	assert_true(dt_endpoint_equal(&out[2], &b));
	assert_true(dt_endpoint_equal(&out[3], &d));

	/* c and a down (a released later than c): b, d, then c, then a */
	dt_epstate_failure(st, &a, 0, DT_REASON_RESET, 5 * SEC);   /* until 15 */
	dt_epstate_failure(st, &c, 0, DT_REASON_RESET, 1 * SEC);   /* until 11 */
	n = dt_epstate_order(st, &c, cands, 4, 2 * SEC, out, 8);
	assert_int_equal(n, 4);
	assert_true(dt_endpoint_equal(&out[0], &b));
	assert_true(dt_endpoint_equal(&out[1], &d));
	assert_true(dt_endpoint_equal(&out[2], &c));
	assert_true(dt_endpoint_equal(&out[3], &a));

	/* once c's hold has passed it is tried first again (half-open) */
	n = dt_epstate_order(st, &c, cands, 4, 11 * SEC, out, 8);
	assert_true(dt_endpoint_equal(&out[0], &c));
	assert_true(dt_endpoint_equal(&out[n - 1], &a));

	/* max bounds the output */
	assert_int_equal(dt_epstate_order(st, &c, cands, 4, 0, out, 2), 2);
	dt_epstate_free(st);
}

static void test_wanted_outside_candidates_is_still_tried(void **state)
{
	struct dt_epstate *st = dt_epstate_new(NULL, NULL);
	struct dt_endpoint a = v4(1, 443), b = v4(2, 443), out[4];
	size_t n;

	(void)state;
	n = dt_epstate_order(st, &a, &b, 1, 0, out, 4);
	assert_int_equal(n, 2);
	assert_true(dt_endpoint_equal(&out[0], &a));
	assert_true(dt_endpoint_equal(&out[1], &b));
	dt_epstate_free(st);
}

static void test_forget_keeps_colliding_entries_reachable(void **state)
{
	struct dt_epstate *st = dt_epstate_new(NULL, NULL);
	struct dt_endpoint eps[300];

	(void)state;
	for (int i = 0; i < 300; i++) {
		eps[i] = v4((uint8_t)(i % 250), (uint16_t)(1000 + i));
		dt_epstate_failure(st, &eps[i], 0, DT_REASON_RESET, (uint64_t)i);
	}
	for (int i = 0; i < 300; i += 2)
		dt_epstate_forget(st, &eps[i]);
	for (int i = 0; i < 300; i++) {
		struct dt_verdict v = dt_epstate_get(st, &eps[i]);

		assert_int_equal(v.state, i % 2 ? DT_DOWN : DT_HEALTHY);
		assert_int_equal(v.failures, i % 2 ? 1 : 0);
	}
	dt_epstate_free(st);
}

static void test_seed_takes_over_a_previous_verdict(void **state)
{
	struct dt_epstate *st = dt_epstate_new(NULL, NULL);
	struct dt_endpoint a = v4(9, 443);
	struct dt_verdict prev = { .provider_id = 3, .state = DT_DOWN, .until_ns = 50 * SEC,
				   .failures = 4, .relayed = 10 };
	struct dt_endpoint out[2];

	(void)state;
	dt_epstate_seed(st, &a, &prev);
	assert_int_equal(dt_epstate_get(st, &a).failures, 4);
	/* still held down after a restart */
	assert_int_equal(dt_epstate_order(st, &a, NULL, 0, 10 * SEC, out, 2), 1);
	assert_int_equal(dt_epstate_get(st, &a).state, DT_DOWN);
	dt_epstate_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_holds_down_and_backs_off),
		cmocka_unit_test(test_success_recovers),
		cmocka_unit_test(test_order_prefers_wanted_then_usable_then_soonest_released),
		cmocka_unit_test(test_wanted_outside_candidates_is_still_tried),
		cmocka_unit_test(test_forget_keeps_colliding_entries_reachable),
		cmocka_unit_test(test_seed_takes_over_a_previous_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
