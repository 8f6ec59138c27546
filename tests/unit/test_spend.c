// SPDX-License-Identifier: MIT
/* Cost accounting: exact integer cost, cached input and cache writes at
 * their prices, rounding to micro-dollars, rows per key, unmetered and
 * unpriced answers, the bound on rows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spend.h"

/* $2.50 / $1.25 / $3.125 / $10.00 per million tokens */
static const struct dt_price gpt = {
	.input = 2500000, .cached_input = 1250000, .cache_write = 3125000, .output = 10000000,
};

static struct dt_xusage usage(int64_t in, int64_t cached, int64_t written, int64_t out)
{
	return (struct dt_xusage){ .known = true, .input_tokens = in, .cached_input_tokens = cached,
				   .cache_write_tokens = written, .output_tokens = out };
}

static void test_cost_is_exact_per_kind_of_token(void **state)
{
	struct dt_xusage u = usage(1000, 0, 0, 0);

	(void)state;
	/* 1000 input tokens at $2.50/M: $0.0025 = 2500 µ$ = 2.5e9 p$ */
	assert_int_equal(dt_spend_cost_pico(&u, &gpt), 2500000000ull);
	/* 1 output token at $10/M: 10 µ$ */
	u = usage(0, 0, 0, 1);
	assert_int_equal(dt_spend_cost_pico(&u, &gpt), 10000000ull);
	/* 1000 input of which 600 cached and 100 written: 300 fresh */
	u = usage(1000, 600, 100, 7);
	assert_int_equal(dt_spend_cost_pico(&u, &gpt),
			 300ull * 2500000 + 600ull * 1250000 + 100ull * 3125000 + 7ull * 10000000);
}

static void test_cached_beyond_input_prices_no_negative_fresh_input(void **state)
{
	struct dt_xusage u = usage(10, 20, 0, 0);

	(void)state;
	assert_int_equal(dt_spend_cost_pico(&u, &gpt), 20ull * 1250000);
	u = usage(-5, 0, 0, -1);
	assert_int_equal(dt_spend_cost_pico(&u, &gpt), 0);
}

static void test_cost_saturates(void **state)
{
	struct dt_xusage u = usage(INT64_MAX, 0, 0, INT64_MAX);

	(void)state;
	assert_int_equal(dt_spend_cost_pico(&u, &gpt), UINT64_MAX);
}

static void test_micro_rounds_half_up(void **state)
{
	(void)state;
	assert_int_equal(dt_spend_micro(0), 0);
	assert_int_equal(dt_spend_micro(499999), 0);
	assert_int_equal(dt_spend_micro(500000), 1);
	assert_int_equal(dt_spend_micro(1499999), 1);
	assert_int_equal(dt_spend_micro(1500000), 2);
	assert_int_equal(dt_spend_micro(UINT64_MAX), UINT64_MAX / 1000000 + 1);
}

/* Sub-micro-dollar answers add up exactly: rounded once, on the total. */
static void test_totals_round_once(void **state)
{
	struct dt_spend *s = dt_spend_new();
	struct dt_spend_key k = { "chat", "openai", "gpt-4o-mini", "small" };
	/* $0.15/M: one token is 0.15 µ$ */
	struct dt_price cheap = { 150000, 75000, 150000, 600000 };
	struct dt_xusage u = usage(1, 0, 0, 0);
	const struct dt_spend_row *rows;

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(dt_spend_add(s, &k, &u, &cheap), 0);
	assert_int_equal(dt_spend_rows(s, &rows), 1);
	assert_int_equal(rows[0].cost_pico, 1500000);
	assert_int_equal(dt_spend_micro(rows[0].cost_pico), 2);
	dt_spend_free(s);
}

static void test_rows_per_key_and_counts(void **state)
{
	struct dt_spend *s = dt_spend_new();
	struct dt_spend_key a = { "chat", "openai", "gpt-4o", "big" };
	struct dt_spend_key b = { NULL, "anthropic", "", NULL };
	struct dt_xusage u1 = usage(100, 40, 0, 10), u2 = usage(7, 0, 3, 2), unknown = {0};
	const struct dt_spend_row *rows;

	(void)state;
	assert_int_equal(dt_spend_add(s, &a, &u1, &gpt), 0);
	assert_int_equal(dt_spend_add(s, &b, &u2, NULL), 0);
	assert_int_equal(dt_spend_add(s, &a, &u2, &gpt), 0);
	assert_int_equal(dt_spend_add(s, &a, &unknown, &gpt), 0);
	assert_int_equal(dt_spend_add(s, &b, NULL, &gpt), 0);
	assert_int_equal(dt_spend_rows(s, &rows), 2);

	assert_string_equal(rows[0].app, "chat");
	assert_string_equal(rows[0].class_name, "big");
	assert_int_equal(rows[0].requests, 3);
	assert_int_equal(rows[0].unmetered, 1);
	assert_int_equal(rows[0].unpriced, 0);
	assert_int_equal(rows[0].input_tokens, 107);
	assert_int_equal(rows[0].cached_input_tokens, 40);
	assert_int_equal(rows[0].cache_write_tokens, 3);
	assert_int_equal(rows[0].output_tokens, 12);
	assert_int_equal(rows[0].cost_pico, dt_spend_cost_pico(&u1, &gpt) + dt_spend_cost_pico(&u2, &gpt));

	/* no label: "-"; no price: tokens counted, no cost */
	assert_string_equal(rows[1].app, DT_SPEND_NONE);
	assert_string_equal(rows[1].model, DT_SPEND_NONE);
	assert_string_equal(rows[1].class_name, DT_SPEND_NONE);
	assert_int_equal(rows[1].requests, 2);
	assert_int_equal(rows[1].unpriced, 1);
	assert_int_equal(rows[1].unmetered, 1);
	assert_int_equal(rows[1].input_tokens, 7);
	assert_int_equal(rows[1].cost_pico, 0);
	dt_spend_free(s);
}

/* Random model names cannot grow the table without bound. */
static void test_rows_are_bounded(void **state)
{
	struct dt_spend *s = dt_spend_new();
	struct dt_xusage u = usage(1, 0, 0, 1);
	const struct dt_spend_row *rows;
	uint64_t requests = 0, tokens = 0;
	char model[32], app[32];
	size_t n;

	(void)state;
	for (int i = 0; i < 3 * DT_SPEND_MAX_ROWS; i++) {
		snprintf(model, sizeof(model), "m%d", i);
		snprintf(app, sizeof(app), "app%d", i % 700);
		assert_int_equal(dt_spend_add(s, &(struct dt_spend_key){ app, "p", model, "c" }, &u, NULL), 0);
	}
	n = dt_spend_rows(s, &rows);
	assert_true(n <= DT_SPEND_MAX_ROWS);
	for (size_t i = 0; i < n; i++) {
		requests += rows[i].requests;
		tokens += rows[i].input_tokens;
	}
	/* nothing lost: folded rows keep the counts */
	assert_int_equal(requests, 3 * DT_SPEND_MAX_ROWS);
	assert_int_equal(tokens, 3 * DT_SPEND_MAX_ROWS);
	assert_string_equal(rows[n - 1].app, DT_SPEND_OTHER);
	dt_spend_free(s);
}

/* A model name too long for its row folds, never collides with another. */
static void test_long_model_folds(void **state)
{
	struct dt_spend *s = dt_spend_new();
	struct dt_xusage u = usage(1, 0, 0, 1);
	const struct dt_spend_row *rows;
	char model[300];

	(void)state;
	memset(model, 'x', sizeof(model) - 1);
	model[sizeof(model) - 1] = '\0';
	assert_int_equal(dt_spend_add(s, &(struct dt_spend_key){ "a", "p", model, "c" }, &u, NULL), 0);
	assert_int_equal(dt_spend_rows(s, &rows), 1);
	assert_string_equal(rows[0].model, DT_SPEND_OTHER);
	dt_spend_free(s);
}

static void test_json(void **state)
{
	struct dt_spend *s = dt_spend_new();
	struct dt_xusage u = usage(1000, 600, 0, 7);
	char *json;
	size_t len;

	(void)state;
	json = dt_spend_json(s, "", &len);
	assert_string_equal(json, "{\"prices_date\":null,\"rows\":[]}\n");
	free(json);
	assert_int_equal(dt_spend_add(s, &(struct dt_spend_key){ "a\"b", "p", "m", NULL }, &u, &gpt), 0);
	assert_int_equal(dt_spend_answers(s), 1);
	json = dt_spend_json(s, "2026-11-25", &len);
	assert_int_equal(len, strlen(json));
	assert_string_equal(json, "{\"prices_date\":\"2026-11-25\",\"rows\":[{\"app\":\"a\\\"b\","
			    "\"provider\":\"p\",\"model\":\"m\",\"class\":\"-\",\"requests\":1,"
			    "\"unmetered\":0,\"unpriced\":0,\"input_tokens\":1000,\"cached_input_tokens\":600,"
			    "\"cache_write_tokens\":0,\"output_tokens\":7,\"cost_usd_micro\":1820,"
			    "\"cost_usd_pico\":1820000000}]}\n");
	free(json);
	dt_spend_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost_is_exact_per_kind_of_token),
		cmocka_unit_test(test_cached_beyond_input_prices_no_negative_fresh_input),
		cmocka_unit_test(test_cost_saturates),
		cmocka_unit_test(test_micro_rounds_half_up),
		cmocka_unit_test(test_totals_round_once),
		cmocka_unit_test(test_rows_per_key_and_counts),
		cmocka_unit_test(test_rows_are_bounded),
		cmocka_unit_test(test_long_model_folds),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
