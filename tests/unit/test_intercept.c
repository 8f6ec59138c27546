/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "intercept.h"

#define SEC 1000000000ull

static struct dt_endpoint ep(const char *addr, uint16_t port)
{
	struct dt_endpoint e = { .port = htons(port) };

	if (inet_pton(AF_INET, addr, &e.addr[3]) == 1)
		e.addr[2] = htonl(0xffff);
	else
		assert_int_equal(inet_pton(AF_INET6, addr, e.addr), 1);
	return e;
}

static bool ep_eq(const struct dt_endpoint *a, const struct dt_endpoint *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Records what dt_itable_sync() hands over; fails the call numbered
 * fail_at (counting from 0 over the recorder's life) with -7. */
struct recorder {
	struct op {
		struct dt_endpoint ep;
		bool del;
		struct dt_intercept val;
	} ops[DT_MAX_ENDPOINTS * 2];
	size_t n;
	size_t calls;
	long fail_at;
};

static int record(void *ctx, const struct dt_endpoint *e, const struct dt_intercept *val)
{
	struct recorder *r = ctx;

	if ((long)r->calls++ == r->fail_at)
		return -7;
	r->ops[r->n].ep = *e;
	r->ops[r->n].del = val == NULL;
	if (val)
		r->ops[r->n].val = *val;
	r->n++;
	return 0;
}

static struct recorder rec;

static void rec_reset(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.fail_at = -1;
}

static size_t sync_all(struct dt_itable *t)
{
	rec_reset();
	assert_int_equal(dt_itable_sync(t, record, &rec), 0);
	return rec.n;
}

static void assert_upsert(size_t i, struct dt_endpoint e, uint32_t provider, uint32_t flags)
{
	assert_true(i < rec.n);
	assert_false(rec.ops[i].del);
	assert_true(ep_eq(&rec.ops[i].ep, &e));
	assert_int_equal(rec.ops[i].val.provider_id, provider);
	assert_int_equal(rec.ops[i].val.flags, flags);
}

static void assert_delete(size_t i, struct dt_endpoint e)
{
	assert_true(i < rec.n);
	assert_true(rec.ops[i].del);
	assert_true(ep_eq(&rec.ops[i].ep, &e));
}

static int setup(void **state)
{
	*state = dt_itable_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	dt_itable_free(*state);
	return 0;
}

static void test_empty(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), out[4];
	uint32_t pid = 99;

	assert_int_equal(dt_itable_count(t), 0);
	assert_int_equal(dt_itable_provider(t, &a, &pid), -1);
	assert_int_equal(pid, 99);
	assert_int_equal(dt_itable_endpoints(t, 0, out, 4), 0);
	assert_int_equal(sync_all(t), 0);
	assert_int_equal(dt_itable_expire(t, 100 * SEC, 0), 0);
}

static void test_add_and_lookup(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint eps[] = { ep("192.0.2.2", 443), ep("2001:db8::1", 443),
				     ep("192.0.2.1", 443) };
	struct dt_endpoint other_port = ep("192.0.2.1", 8443), out[4];
	uint32_t pid;

	assert_int_equal(dt_itable_resolved(t, 3, eps, 3, SEC), 0);
	assert_int_equal(dt_itable_count(t), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(dt_itable_provider(t, &eps[i], &pid), 0);
		assert_int_equal(pid, 3);
	}
	assert_int_equal(dt_itable_provider(t, &other_port, &pid), -1);

	/* address order: mapped IPv4 (::ffff:...) sorts before 2001:db8:: */
	assert_int_equal(dt_itable_endpoints(t, 3, out, 4), 3);
	assert_true(ep_eq(&out[0], &eps[2]));
	assert_true(ep_eq(&out[1], &eps[0]));
	assert_true(ep_eq(&out[2], &eps[1]));
	assert_int_equal(dt_itable_endpoints(t, 3, out, 2), 2);
	assert_int_equal(dt_itable_endpoints(t, 4, out, 4), 0);

	assert_int_equal(sync_all(t), 3);
	assert_upsert(0, eps[2], 3, 0);
	assert_upsert(1, eps[0], 3, 0);
	assert_upsert(2, eps[1], 3, 0);
}

static void test_reresolve_same_is_no_change(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint eps[] = { ep("192.0.2.1", 443), ep("192.0.2.2", 443) };
	struct dt_endpoint twice[] = { eps[1], eps[0], eps[1] };

	assert_int_equal(dt_itable_resolved(t, 1, eps, 2, SEC), 0);
	assert_int_equal(sync_all(t), 2);
	assert_int_equal(dt_itable_resolved(t, 1, twice, 3, 2 * SEC), 0);
	assert_int_equal(dt_itable_count(t), 2);
	assert_int_equal(sync_all(t), 0);
}

static void test_stale_marking(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443),
			   c = ep("192.0.2.3", 443), out[4];
	struct dt_endpoint first[] = { a, b }, second[] = { b, c };

	assert_int_equal(dt_itable_resolved(t, 1, first, 2, SEC), 0);
	sync_all(t);
	assert_int_equal(dt_itable_resolved(t, 1, second, 2, 2 * SEC), 0);
	assert_int_equal(dt_itable_count(t), 3);

	/* current first (b, c), then stale (a) */
	assert_int_equal(dt_itable_endpoints(t, 1, out, 4), 3);
	assert_true(ep_eq(&out[0], &b));
	assert_true(ep_eq(&out[1], &c));
	assert_true(ep_eq(&out[2], &a));

	assert_int_equal(sync_all(t), 2);
	assert_upsert(0, a, 1, DT_EP_STALE);
	assert_upsert(1, c, 1, 0);

	/* a comes back: the flag is cleared */
	assert_int_equal(dt_itable_resolved(t, 1, first, 2, 3 * SEC), 0);
	assert_int_equal(sync_all(t), 2);
	assert_upsert(0, a, 1, 0);
	assert_upsert(1, c, 1, DT_EP_STALE);
}

static void test_stale_and_back_before_sync_is_no_change(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443);
	struct dt_endpoint both[] = { a, b };

	assert_int_equal(dt_itable_resolved(t, 1, both, 2, SEC), 0);
	sync_all(t);
	assert_int_equal(dt_itable_resolved(t, 1, &b, 1, 2 * SEC), 0);
	assert_int_equal(dt_itable_resolved(t, 1, both, 2, 3 * SEC), 0);
	assert_int_equal(sync_all(t), 0);
}

static void test_expire_at_grace_boundary(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443);
	struct dt_endpoint both[] = { a, b };
	const uint64_t grace = 600 * SEC;
	uint32_t pid;

	assert_int_equal(dt_itable_resolved(t, 1, both, 2, 10 * SEC), 0);
	/* a last resolved at 10 s; b keeps being resolved */
	assert_int_equal(dt_itable_resolved(t, 1, &b, 1, 20 * SEC), 0);
	sync_all(t);

	assert_int_equal(dt_itable_expire(t, 10 * SEC + grace, grace), 0);
	assert_int_equal(dt_itable_count(t), 2);
	/* a clock behind the entry keeps it */
	assert_int_equal(dt_itable_expire(t, 5 * SEC, 0), 0);
	assert_int_equal(dt_itable_expire(t, 10 * SEC + grace + 1, grace), 1);
	assert_int_equal(dt_itable_count(t), 1);
	assert_int_equal(dt_itable_provider(t, &a, &pid), -1);

	/* b is current: never expires, however old */
	assert_int_equal(dt_itable_expire(t, 1000000 * SEC, 0), 0);

	assert_int_equal(sync_all(t), 1);
	assert_delete(0, a);
	assert_int_equal(sync_all(t), 0);
}

static void test_expire_unsynced_needs_no_delete(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443);
	struct dt_endpoint both[] = { a, b };

	assert_int_equal(dt_itable_resolved(t, 1, both, 2, SEC), 0);
	assert_int_equal(dt_itable_resolved(t, 1, &b, 1, 2 * SEC), 0);
	assert_int_equal(dt_itable_expire(t, 3 * SEC, SEC / 2), 1);
	assert_int_equal(sync_all(t), 1);
	assert_upsert(0, b, 1, 0);
}

static void test_drop_provider(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443),
			   c = ep("192.0.2.3", 443), out[4];
	uint32_t pid;

	assert_int_equal(dt_itable_resolved(t, 1, &a, 1, SEC), 0);
	assert_int_equal(dt_itable_resolved(t, 2, &c, 1, SEC), 0);
	sync_all(t);
	/* b is added and dropped before any sync: the map never hears of it */
	assert_int_equal(dt_itable_resolved(t, 1, (struct dt_endpoint[]){ a, b }, 2, 2 * SEC), 0);

	dt_itable_drop_provider(t, 1);
	assert_int_equal(dt_itable_count(t), 1);
	assert_int_equal(dt_itable_endpoints(t, 1, out, 4), 0);
	assert_int_equal(dt_itable_provider(t, &c, &pid), 0);
	assert_int_equal(pid, 2);

	assert_int_equal(sync_all(t), 1);
	assert_delete(0, a);
	assert_int_equal(sync_all(t), 0);
}

static void test_sync_deletes_before_upserts(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), z = ep("192.0.2.200", 443);

	assert_int_equal(dt_itable_resolved(t, 1, &z, 1, SEC), 0);
	sync_all(t);
	dt_itable_drop_provider(t, 1);
	assert_int_equal(dt_itable_resolved(t, 2, &a, 1, 2 * SEC), 0);
	assert_int_equal(sync_all(t), 2);
	assert_delete(0, z);
	assert_upsert(1, a, 2, 0);
}

static void test_readd_before_delete_synced(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443);

	assert_int_equal(dt_itable_resolved(t, 1, (struct dt_endpoint[]){ a, b }, 2, SEC), 0);
	sync_all(t);
	dt_itable_drop_provider(t, 1);
	assert_int_equal(dt_itable_count(t), 0);
	/* a comes back unchanged: nothing to do; b under another provider */
	assert_int_equal(dt_itable_resolved(t, 1, &a, 1, 2 * SEC), 0);
	assert_int_equal(dt_itable_resolved(t, 5, &b, 1, 2 * SEC), 0);
	assert_int_equal(dt_itable_count(t), 2);
	assert_int_equal(sync_all(t), 1);
	assert_upsert(0, b, 5, 0);
}

static void test_failing_apply_keeps_changes_pending(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443),
			   c = ep("192.0.2.3", 443), d = ep("192.0.2.4", 443);

	assert_int_equal(dt_itable_resolved(t, 1, (struct dt_endpoint[]){ a, d }, 2, SEC), 0);
	sync_all(t);
	dt_itable_drop_provider(t, 1);
	assert_int_equal(dt_itable_resolved(t, 2, (struct dt_endpoint[]){ b, c }, 2, SEC), 0);

	/* deletes d, a (fails on a), nothing upserted */
	rec_reset();
	rec.fail_at = 1;
	assert_int_equal(dt_itable_sync(t, record, &rec), -7);
	assert_int_equal(rec.n, 1);
	assert_delete(0, d);

	/* a's delete is handed over again, then b fails */
	rec.fail_at = 3;
	rec.n = 0;
	assert_int_equal(dt_itable_sync(t, record, &rec), -7);
	assert_int_equal(rec.n, 1);
	assert_delete(0, a);

	assert_int_equal(sync_all(t), 2);
	assert_upsert(0, b, 2, 0);
	assert_upsert(1, c, 2, 0);
	assert_int_equal(sync_all(t), 0);
}

static void test_conflicts(void **state)
{
	struct dt_itable *t = *state;
	struct dt_endpoint a = ep("192.0.2.1", 443), b = ep("192.0.2.2", 443),
			   d = ep("192.0.2.4", 443), out[4];
	uint32_t pid;

	assert_int_equal(dt_itable_resolved(t, 1, (struct dt_endpoint[]){ a, b }, 2, SEC), 0);
	/* a is current for provider 1: it keeps it */
	assert_int_equal(dt_itable_resolved(t, 2, (struct dt_endpoint[]){ a, b, d }, 3, SEC), 2);
	assert_int_equal(dt_itable_provider(t, &a, &pid), 0);
	assert_int_equal(pid, 1);
	assert_int_equal(dt_itable_provider(t, &d, &pid), 0);
	assert_int_equal(pid, 2);
	assert_int_equal(dt_itable_endpoints(t, 2, out, 4), 1);
	assert_true(ep_eq(&out[0], &d));

	/* provider 1 no longer resolves to a: stale, so provider 2 takes it */
	assert_int_equal(dt_itable_resolved(t, 1, &b, 1, 2 * SEC), 0);
	assert_int_equal(dt_itable_resolved(t, 2, (struct dt_endpoint[]){ a, d }, 2, 3 * SEC), 0);
	assert_int_equal(dt_itable_provider(t, &a, &pid), 0);
	assert_int_equal(pid, 2);
	assert_int_equal(dt_itable_endpoints(t, 1, out, 4), 1);
	assert_true(ep_eq(&out[0], &b));
	assert_int_equal(dt_itable_count(t), 3);

	/* and provider 1 listing a again is now the conflict */
	assert_int_equal(dt_itable_resolved(t, 1, (struct dt_endpoint[]){ a, b }, 2, 4 * SEC), 1);
}

static struct dt_endpoint nth_endpoint(uint32_t i)
{
	struct dt_endpoint e = ep("2001:db8::", 443);

	e.addr[3] = htonl(i);
	return e;
}

static void test_capacity(void **state)
{
	static struct dt_endpoint eps[DT_MAX_ENDPOINTS + 1];
	struct dt_itable *t = *state;
	struct dt_endpoint extra = nth_endpoint(DT_MAX_ENDPOINTS);

	for (uint32_t i = 0; i < DT_MAX_ENDPOINTS; i++)
		eps[i] = nth_endpoint(i);
	assert_int_equal(dt_itable_resolved(t, 1, eps, DT_MAX_ENDPOINTS, SEC), 0);
	assert_int_equal(dt_itable_count(t), DT_MAX_ENDPOINTS);
	assert_int_equal(sync_all(t), DT_MAX_ENDPOINTS);

	/* one more is refused and changes nothing, not even staleness */
	errno = 0;
	assert_int_equal(dt_itable_resolved(t, 1, &extra, 1, 2 * SEC), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(dt_itable_count(t), DT_MAX_ENDPOINTS);
	assert_int_equal(sync_all(t), 0);
	errno = 0;
	assert_int_equal(dt_itable_resolved(t, 2, &extra, 1, 2 * SEC), -1);
	assert_int_equal(errno, ENOSPC);

	/* the same set with a duplicate is not "more" */
	eps[DT_MAX_ENDPOINTS] = eps[7];
	assert_int_equal(dt_itable_resolved(t, 1, eps, DT_MAX_ENDPOINTS + 1, 3 * SEC), 0);

	/* removed entries awaiting their delete do not count */
	dt_itable_drop_provider(t, 1);
	for (uint32_t i = 0; i < DT_MAX_ENDPOINTS; i++)
		eps[i] = nth_endpoint(i + DT_MAX_ENDPOINTS);
	assert_int_equal(dt_itable_resolved(t, 2, eps, DT_MAX_ENDPOINTS, 4 * SEC), 0);
	assert_int_equal(dt_itable_count(t), DT_MAX_ENDPOINTS);
	assert_int_equal(sync_all(t), 2 * DT_MAX_ENDPOINTS);
	assert_true(rec.ops[DT_MAX_ENDPOINTS - 1].del);
	assert_false(rec.ops[DT_MAX_ENDPOINTS].del);
}

/* ---- endpoint helpers ------------------------------------------------------ */

static void test_endpoint_v4_round_trip(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(443) };
	struct sockaddr_storage ss;
	struct dt_endpoint e, expected = ep("192.0.2.1", 443);
	char buf[DT_ENDPOINT_STRLEN];

	(void)state;
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	memset(&e, 0xaa, sizeof(e));
	dt_endpoint_from_sockaddr(&e, (struct sockaddr *)&sin);
	assert_int_equal(e.addr[0], 0);
	assert_int_equal(e.addr[1], 0);
	assert_int_equal(e.addr[2], htonl(0xffff));
	assert_int_equal(e.addr[3], sin.sin_addr.s_addr);
	assert_int_equal(e.port, htons(443));
	assert_int_equal(e.pad, 0);
	assert_true(dt_endpoint_is_v4(&e));
	assert_true(ep_eq(&e, &expected));
	assert_string_equal(dt_endpoint_str(&e, buf, sizeof(buf)), "192.0.2.1:443");

	assert_int_equal(dt_endpoint_to_sockaddr(&e, &ss), sizeof(struct sockaddr_in));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_memory_equal(&ss, &sin, sizeof(sin));
}

static void test_endpoint_v6_round_trip(void **state)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(8443) };
	struct sockaddr_storage ss;
	struct dt_endpoint e;
	char buf[DT_ENDPOINT_STRLEN];

	(void)state;
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	dt_endpoint_from_sockaddr(&e, (struct sockaddr *)&sin6);
	assert_memory_equal(e.addr, &sin6.sin6_addr, 16);
	assert_int_equal(e.port, htons(8443));
	assert_int_equal(e.pad, 0);
	assert_false(dt_endpoint_is_v4(&e));
	assert_string_equal(dt_endpoint_str(&e, buf, sizeof(buf)), "[2001:db8::1]:8443");

	assert_int_equal(dt_endpoint_to_sockaddr(&e, &ss), sizeof(struct sockaddr_in6));
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_memory_equal(&ss, &sin6, sizeof(sin6));

	/* the longest text fits the documented size */
	e = ep("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	assert_string_equal(dt_endpoint_str(&e, buf, sizeof(buf)),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
}

/* A dual-stack socket connecting to an IPv4 address uses the mapped form:
 * it is the same endpoint as the plain IPv4 one. */
static void test_endpoint_mapped(void **state)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct dt_endpoint e, expected = ep("198.51.100.7", 443);
	char buf[DT_ENDPOINT_STRLEN];

	(void)state;
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &sin6.sin6_addr);
	dt_endpoint_from_sockaddr(&e, (struct sockaddr *)&sin6);
	assert_true(dt_endpoint_is_v4(&e));
	assert_true(ep_eq(&e, &expected));
	assert_string_equal(dt_endpoint_str(&e, buf, sizeof(buf)), "198.51.100.7:443");
	assert_int_equal(dt_endpoint_to_sockaddr(&e, &ss), sizeof(struct sockaddr_in));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_port, htons(443));
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)), "198.51.100.7");
}

static void test_endpoint_other_family_and_short_buffer(void **state)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct dt_endpoint e, zero = { 0 }, v4 = ep("192.0.2.1", 443);
	char buf[8];

	(void)state;
	memset(&e, 0xaa, sizeof(e));
	dt_endpoint_from_sockaddr(&e, &sa);
	assert_memory_equal(&e, &zero, sizeof(e));
	assert_string_equal(dt_endpoint_str(&v4, buf, sizeof(buf)), "192.0.2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_and_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reresolve_same_is_no_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_marking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_and_back_before_sync_is_no_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_at_grace_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_unsynced_needs_no_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_provider, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_deletes_before_upserts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readd_before_delete_synced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_apply_keeps_changes_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
		cmocka_unit_test(test_endpoint_v4_round_trip),
		cmocka_unit_test(test_endpoint_v6_round_trip),
		cmocka_unit_test(test_endpoint_mapped),
		cmocka_unit_test(test_endpoint_other_family_and_short_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
