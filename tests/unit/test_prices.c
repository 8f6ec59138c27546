// SPDX-License-Identifier: MIT
/* The price table: the price list's syntax, good and bad (FILE:LINE
 * errors), dollars to micro-dollars exactly, and which entry a lookup
 * finds (rank, exact before prefix, longer prefix, name before host). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "prices.h"

static char err[512];

static struct dt_prices *parse_ok(const char *text)
{
	struct dt_prices *t = dt_prices_new();

	assert_non_null(t);
	if (dt_prices_parse(t, text, strlen(text), "list", err, sizeof(err)))
		fail_msg("unexpected error: %s", err);
	return t;
}

static void parse_fails(const char *text, const char *want)
{
	struct dt_prices *t = dt_prices_new();

	assert_int_equal(dt_prices_parse(t, text, strlen(text), "list", err, sizeof(err)), -1);
	if (strcmp(err, want) != 0)
		fail_msg("expected \"%s\", got \"%s\"", want, err);
	dt_prices_put(t);
}

static void test_dollars(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(dt_price_dollars("2.50", DT_PRICE_MAX_MICRO, &v), 0);
	assert_int_equal(v, 2500000);
	assert_int_equal(dt_price_dollars("0.000001", DT_PRICE_MAX_MICRO, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(dt_price_dollars("1000", DT_PRICE_MAX_MICRO, &v), 0);
	assert_int_equal(v, DT_PRICE_MAX_MICRO);
	assert_int_equal(dt_price_dollars("0", DT_PRICE_MAX_MICRO, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dt_price_dollars("1000.000001", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("1.0000001", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars(".5", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("5.", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("-1", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("1e3", DT_PRICE_MAX_MICRO, &v), -1);
	assert_int_equal(dt_price_dollars("99999999999999999999999", DT_PRICE_MAX_MICRO, &v), -1);
}

static void test_list_parsed(void **state)
{
	struct dt_prices *t = parse_ok(
		"\xEF\xBB\xBF# a list\r\n"
		"[price_list]   ; dated\r\n"
		"  date = 2026-11-25\r\n"
		"\n"
		"[prices api.example.com]\n"
		"model = big input=2.50 cached_input=1.25 output=10   # list price\n"
		"model = big-20* input=2.50 cached_input=1.25 output=10\n"
		"model = claude-x input=3 cached_input=0.30 cache_write=3.75 output=15\n"
		"[prices other]\n"
		"model = big input=1 output=1\n");
	char *hosts[] = { "API.example.com" };
	struct dt_price p;

	(void)state;
	assert_string_equal(dt_prices_date(t), "2026-11-25");
	assert_int_equal(dt_prices_count(t), 4);
	assert_true(dt_prices_find(t, "openai", hosts, 1, "big-2024-08-06", &p));
	assert_int_equal(p.input, 2500000);
	assert_int_equal(p.cached_input, 1250000);
	assert_int_equal(p.cache_write, 2500000);
	assert_int_equal(p.output, 10000000);
	assert_true(dt_prices_find(t, "openai", hosts, 1, "claude-x", &p));
	assert_int_equal(p.cache_write, 3750000);
	/* nothing guessed: another model, another provider */
	assert_false(dt_prices_find(t, "openai", hosts, 1, "bigger", &p));
	assert_false(dt_prices_find(t, "openai", NULL, 0, "big", &p));
	assert_false(dt_prices_find(t, "openai", hosts, 1, NULL, &p));
	assert_true(dt_prices_find(t, "other", NULL, 0, "big", &p));
	assert_int_equal(p.input, 1000000);
	dt_prices_put(t);
}

static void test_lookup_order(void **state)
{
	struct dt_prices *t = parse_ok("[price_list]\ndate = 2026-01-01\n[prices h.example]\n"
				       "model = m* input=1 output=1\nmodel = m-long* input=2 output=2\n"
				       "model = m-long-x input=3 output=3\n[prices prov]\n"
				       "model = m-long* input=4 output=4\n");
	char *hosts[] = { "h.example" };
	struct dt_price p, mine = { 9, 9, 9, 9 };
	char why[256];

	(void)state;
	/* exact over prefix, whoever owns it */
	assert_true(dt_prices_find(t, "prov", hosts, 1, "m-long-x", &p));
	assert_int_equal(p.input, 3000000);
	/* a longer prefix; equal: the provider's name over its host */
	assert_true(dt_prices_find(t, "prov", hosts, 1, "m-long-y", &p));
	assert_int_equal(p.input, 4000000);
	assert_true(dt_prices_find(t, "prov", hosts, 1, "m-short", &p));
	assert_int_equal(p.input, 1000000);
	/* the configuration over the list, a member over both, even a prefix */
	assert_int_equal(dt_prices_add_line(t, "h.example", "m* input=5 output=5", DT_PRICE_CONFIG, 7,
					    why, sizeof(why)), 0);
	assert_true(dt_prices_find(t, "prov", hosts, 1, "m-long-x", &p));
	assert_int_equal(p.input, 5000000);
	assert_int_equal(dt_prices_add(t, "prov", "m-long-x", &mine, DT_PRICE_MEMBER), 0);
	assert_true(dt_prices_find(t, "prov", hosts, 1, "m-long-x", &p));
	assert_int_equal(p.input, 9);
	/* the same entry twice in one rank is refused, naming the first */
	assert_int_equal(dt_prices_add_line(t, "h.example", "m* input=6 output=6", DT_PRICE_CONFIG, 8,
					    why, sizeof(why)), -1);
	assert_string_equal(why, "m* is priced for h.example already (line 7)");
	/* held twice: the last put frees */
	dt_prices_put(dt_prices_hold(t));
	dt_prices_put(t);
}

static void test_bad_lists(void **state)
{
	(void)state;
	parse_fails("[prices p]\nmodel = a input=1 output=1\n",
		    "list: no date: a price list says when its prices were read ([price_list] date = YYYY-MM-DD)");
	parse_fails("[price_list]\ndate = 2026-13-01\n", "list:2: date: expected YYYY-MM-DD, got \"2026-13-01\"");
	parse_fails("[price_list]\ndate = 26-1-1\n", "list:2: date: expected YYYY-MM-DD, got \"26-1-1\"");
	parse_fails("[price_list]\ndate = 2026-01-01\ndate = 2026-01-02\n", "list:3: date given twice (line 2)");
	parse_fails("date = 2026-01-01\n", "list:1: key \"date\" outside of any section");
	parse_fails("[price_list]\nmodel = a input=1 output=1\n", "list:2: unknown key \"model\" in [price_list]");
	parse_fails("[prices p]\ndate = 2026-01-01\n", "list:2: unknown key \"date\" in [prices]");
	parse_fails("[prices]\n", "list:1: expected [price_list] or [prices NAME]");
	parse_fails("[prices a b]\n", "list:1: expected [price_list] or [prices NAME]");
	parse_fails("[prices a/b]\n", "list:1: [prices NAME]: NAME is a provider's name or host, got \"a/b\"");
	parse_fails("[prices a] x\n", "list:1: text after section header");
	parse_fails("[prices a\n", "list:1: syntax error: expected [section] or key = value");
	parse_fails("[prices a]\njunk\n", "list:2: syntax error: expected [section] or key = value");
	parse_fails("[prices a]\nmodel = m input=1\n", "list:2: model: m: input= and output= are required");
	parse_fails("[prices a]\nmodel = m input=1 output=2 cached_input=1001\n",
		    "list:2: model: cached_input: expected dollars per million tokens from 0 to 1000, at most 6 decimals, got \"1001\"");
	parse_fails("[prices a]\nmodel = m output\n",
		    "list:2: model: unknown option \"output\" (input=$, cached_input=$, cache_write=$, output=$)");
	parse_fails("[prices a]\nmodel = * input=1 output=1\n", "list:2: model: expected MODEL (1 to 127 characters, or a prefix ending in *), got \"*\"");
	parse_fails("[prices a]\nmodel = m input=1 output=1\nmodel = m input=2 output=2\n",
		    "list:3: model: m is priced for a already (line 2)");
}

static void test_nul_refused(void **state)
{
	static const char text[] = "[price_list]\ndate = 2026-01-01\n\0\n";
	struct dt_prices *t = dt_prices_new();

	(void)state;
	assert_int_equal(dt_prices_parse(t, text, sizeof(text) - 1, "list", err, sizeof(err)), -1);
	assert_string_equal(err, "list: contains a NUL byte: not a text file");
	dt_prices_put(t);
}

/* The list shipped with detour parses, is dated, and prices the common
 * models of each family's own API host. */
static void test_shipped_list(void **state)
{
	FILE *f = fopen("data/prices.conf", "r");
	static char text[256 * 1024];
	struct dt_prices *t = dt_prices_new();
	char *openai[] = { "api.openai.com" }, *anthropic[] = { "api.anthropic.com" };
	char *gemini[] = { "generativelanguage.googleapis.com" };
	struct dt_price p;
	size_t len;

	(void)state;
	assert_non_null(f);
	len = fread(text, 1, sizeof(text), f);
	fclose(f);
	if (dt_prices_parse(t, text, len, "data/prices.conf", err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(strlen(dt_prices_date(t)), 10);
	assert_true(dt_prices_find(t, "openai", openai, 1, "gpt-4o-mini", &p));
	assert_true(p.cached_input < p.input && p.input < p.output);
	assert_true(dt_prices_find(t, "anthropic", anthropic, 1, "claude-sonnet-4-5-20250929", &p));
	assert_true(p.cached_input < p.input && p.input < p.cache_write && p.cache_write < p.output);
	assert_true(dt_prices_find(t, "gemini", gemini, 1, "gemini-2.5-flash", &p));
	dt_prices_put(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dollars),
		cmocka_unit_test(test_list_parsed),
		cmocka_unit_test(test_lookup_order),
		cmocka_unit_test(test_bad_lists),
		cmocka_unit_test(test_nul_refused),
		cmocka_unit_test(test_shipped_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
