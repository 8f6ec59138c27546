// SPDX-License-Identifier: MIT
/* Differences of sorted keyed sets (setdiff.c) and of two readings of the
 * health maps (healthmap.c's diff, what `detourctl watch` prints). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "healthmap.h"
#include "setdiff.h"

struct item {
	int key;
	int value;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

/* each call as "+key", "-key", "=key" or "~key" (same key, value changed) */
struct log {
	char text[256];
};

static void log_item(void *ctx, const void *old, const void *new)
{
	const struct item *o = old, *n = new;
	struct log *l = ctx;
	size_t len = strlen(l->text);
	char op = !o ? '+' : !n ? '-' : o->value == n->value ? '=' : '~';

	snprintf(l->text + len, sizeof(l->text) - len, "%s%c%d", len ? " " : "", op,
		 (o ? o : n)->key);
}

static void test_setdiff_walks_both_in_order(void **state)
{
	const struct item old[] = { { 1, 10 }, { 3, 30 }, { 5, 50 }, { 9, 90 } };
	const struct item new[] = { { 0, 0 }, { 3, 31 }, { 5, 50 }, { 7, 70 } };
	struct log l = { "" };

	(void)state;
	dt_setdiff(old, 4, new, 4, sizeof(struct item), cmp_item, log_item, &l);
	assert_string_equal(l.text, "+0 -1 ~3 =5 +7 -9");
}

static void test_setdiff_of_empty_sides(void **state)
{
	const struct item some[] = { { 1, 10 }, { 2, 20 } };
	struct log l = { "" };

	(void)state;
	dt_setdiff(NULL, 0, NULL, 0, sizeof(struct item), cmp_item, log_item, &l);
	assert_string_equal(l.text, "");
	dt_setdiff(NULL, 0, some, 2, sizeof(struct item), cmp_item, log_item, &l);
	assert_string_equal(l.text, "+1 +2");
	l.text[0] = '\0';
	dt_setdiff(some, 2, NULL, 0, sizeof(struct item), cmp_item, log_item, &l);
	assert_string_equal(l.text, "-1 -2");
}

static void test_sort_unique_drops_repeats(void **state)
{
	struct item a[] = { { 5, 1 }, { 2, 1 }, { 5, 1 }, { 9, 1 }, { 2, 1 }, { 2, 1 } };
	size_t n;

	(void)state;
	n = dt_sort_unique(a, 6, sizeof(a[0]), cmp_item);
	assert_int_equal(n, 3);
	assert_int_equal(a[0].key, 2);
	assert_int_equal(a[1].key, 5);
	assert_int_equal(a[2].key, 9);
	assert_int_equal(dt_sort_unique(a, 0, sizeof(a[0]), cmp_item), 0);
}

/* ---- health readings --------------------------------------------------------- */

static struct dt_health_row row(uint32_t id, const char *model, enum dt_state s, uint64_t since)
{
	struct dt_health_row r = { .provider_id = id };

	snprintf(r.model, sizeof(r.model), "%s", model);
	r.v.state = s;
	r.v.since_ns = since;
	return r;
}

static void log_row(void *ctx, const struct dt_health_row *old, const struct dt_health_row *new)
{
	const struct dt_health_row *r = new ? new : old;
	struct log *l = ctx;
	size_t len = strlen(l->text);

	snprintf(l->text + len, sizeof(l->text) - len, "%s%u/%s:%d->%d", len ? " " : "",
		 r->provider_id, r->model[0] ? r->model : "-", old ? (int)old->v.state : -1,
		 new ? (int)new->v.state : -1);
}

static void test_health_rows_order_provider_before_models(void **state)
{
	struct dt_health_row a = row(1, "", DT_HEALTHY, 1), b = row(1, "a", DT_HEALTHY, 1),
			     c = row(0, "z", DT_HEALTHY, 1);

	(void)state;
	assert_true(dt_health_row_cmp(&a, &b) < 0);
	assert_true(dt_health_row_cmp(&c, &a) < 0);
	assert_int_equal(dt_health_row_cmp(&b, &b), 0);
}

static void test_health_diff_reports_changes_only(void **state)
{
	struct dt_health_row old[] = {
		row(0, "", DT_HEALTHY, 100),        /* goes DOWN */
		row(0, "gpt", DT_HEALTHY, 100),     /* counters refreshed only */
		row(0, "old", DT_DOWN, 100),        /* forgotten */
		row(1, "", DT_DOWN, 100),           /* DOWN again, a new ejection */
		row(2, "", DT_DEGRADED, 100),       /* same state, another reason */
	};
	struct dt_health_row new[] = {
		row(0, "", DT_DOWN, 200),
		row(0, "gpt", DT_HEALTHY, 100),
		row(0, "new", DT_RATE_LIMITED, 200),
		row(1, "", DT_DOWN, 300),
		row(2, "", DT_DEGRADED, 100),
	};
	struct log l = { "" };

	(void)state;
	new[1].v.calls = 40;
	new[1].v.error_rate_percent = 5;
	old[4].v.reason = 10;
	new[4].v.reason = 11;
	dt_healthmap_diff(old, 5, new, 5, log_row, &l);
	assert_string_equal(l.text, "0/-:0->3 0/new:-1->2 0/old:3->-1 1/-:3->3 2/-:1->1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setdiff_walks_both_in_order),
		cmocka_unit_test(test_setdiff_of_empty_sides),
		cmocka_unit_test(test_sort_unique_drops_repeats),
		cmocka_unit_test(test_health_rows_order_provider_before_models),
		cmocka_unit_test(test_health_diff_reports_changes_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
