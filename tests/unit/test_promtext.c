// SPDX-License-Identifier: MIT
/* The Prometheus text format: label values and HELP escaped as the format
 * says, histogram buckets cumulative up to +Inf with _sum and _count, and
 * what is written reads back the same. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/buffer.h>

#include "promtext.h"

/* The buffer's text, NUL-terminated (the caller frees it). */
static char *text_of(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *t = malloc(n + 1);

	assert_non_null(t);
	evbuffer_remove(b, t, n);
	t[n] = '\0';
	return t;
}

static void test_label_values_escaped(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const struct dt_prom_label l[] = {
		{ "model", "a\"b\\c\nd" }, { "application", "plain" },
	};
	char *t;

	(void)state;
	dt_prom_sample(b, "x_total", l, 2, 3);
	t = text_of(b);
	assert_string_equal(t, "x_total{model=\"a\\\"b\\\\c\\nd\",application=\"plain\"} 3\n");
	free(t);
	evbuffer_free(b);
}

static void test_help_escaped_type_given(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	/* in HELP a quote stays as it is; backslash and line feed do not */
	dt_prom_family(b, "x_total", "counter", "say \"hi\"\\now\nthen");
	t = text_of(b);
	assert_string_equal(t, "# HELP x_total say \"hi\"\\\\now\\nthen\n# TYPE x_total counter\n");
	free(t);
	evbuffer_free(b);
}

static void test_values(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	dt_prom_sample(b, "a", NULL, 0, 0);
	dt_prom_sample(b, "a", NULL, 0, 12345678901234.0);
	dt_prom_sample(b, "a", NULL, 0, 0.1);
	dt_prom_sample(b, "a", NULL, 0, INFINITY);
	dt_prom_sample(b, "a", NULL, 0, -INFINITY);
	dt_prom_sample(b, "a", NULL, 0, NAN);
	t = text_of(b);
	assert_string_equal(t, "a 0\na 12345678901234\na 0.1\na +Inf\na -Inf\na NaN\n");
	free(t);
	evbuffer_free(b);
}

static void test_histogram_cumulative_to_inf(void **state)
{
	static const double bounds[] = { 0.1, 1, 10 };
	const struct dt_prom_label l[] = { { "provider", "p" } };
	struct dt_prom_hist h = {0};
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	dt_prom_observe(&h, bounds, 3, 0.05);
	dt_prom_observe(&h, bounds, 3, 0.1);  /* on the bound: le is "less or equal" */
	dt_prom_observe(&h, bounds, 3, 5);
	dt_prom_observe(&h, bounds, 3, 50);
	dt_prom_histogram(b, "lat_seconds", l, 1, bounds, 3, &h);
	t = text_of(b);
	assert_string_equal(t,
		"lat_seconds_bucket{provider=\"p\",le=\"0.1\"} 2\n"
		"lat_seconds_bucket{provider=\"p\",le=\"1\"} 2\n"
		"lat_seconds_bucket{provider=\"p\",le=\"10\"} 3\n"
		"lat_seconds_bucket{provider=\"p\",le=\"+Inf\"} 4\n"
		"lat_seconds_sum{provider=\"p\"} 55.15\n"
		"lat_seconds_count{provider=\"p\"} 4\n");
	free(t);
	evbuffer_free(b);
}

static void test_histogram_without_labels(void **state)
{
	static const double bounds[] = { 1 };
	struct dt_prom_hist h = {0};
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	dt_prom_histogram(b, "h", NULL, 0, bounds, 1, &h);
	t = text_of(b);
	assert_string_equal(t, "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
	free(t);
	evbuffer_free(b);
}

static void test_read_back(void **state)
{
	struct evbuffer *b = evbuffer_new();
	const struct dt_prom_label l[] = { { "model", "we\"ird\\na\nme" }, { "class", "" } };
	struct dt_prom_sample s;
	char *t, *nl;

	(void)state;
	dt_prom_sample(b, "x_total", l, 2, 42.5);
	t = text_of(b);
	nl = strchr(t, '\n');
	*nl = '\0';
	assert_int_equal(dt_prom_parse_line(t, &s), 0);
	assert_string_equal(s.name, "x_total");
	assert_int_equal(s.n_labels, 2);
	assert_string_equal(dt_prom_label_value(&s, "model"), "we\"ird\\na\nme");
	assert_string_equal(dt_prom_label_value(&s, "class"), "");
	assert_null(dt_prom_label_value(&s, "provider"));
	assert_true(s.value == 42.5);
	free(t);
	evbuffer_free(b);
}

static void test_read_lines(void **state)
{
	struct dt_prom_sample s;
	char comment[] = "# HELP x y", blank[] = "", bare[] = "up 1", stamped[] = "up 1 1700000000000",
	     inf[] = "x{le=\"+Inf\"} +Inf";
	char *bad[] = {
		strdup("x{a=\"b} 1"), strdup("x{a=b} 1"), strdup("x 1 junk"), strdup("x{a=\"\\q\"} 1"),
		strdup("x"), strdup("1x 1"), strdup("x{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"9\"} 1"),
	};

	(void)state;
	assert_int_equal(dt_prom_parse_line(comment, &s), 1);
	assert_int_equal(dt_prom_parse_line(blank, &s), 1);
	assert_int_equal(dt_prom_parse_line(bare, &s), 0);
	assert_string_equal(s.name, "up");
	assert_true(s.value == 1);
	assert_int_equal(dt_prom_parse_line(stamped, &s), 0);
	assert_int_equal(dt_prom_parse_line(inf, &s), 0);
	assert_true(isinf(s.value));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(dt_prom_parse_line(bad[i], &s), -1);
		free(bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values_escaped),
		cmocka_unit_test(test_help_escaped_type_given),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_histogram_cumulative_to_inf),
		cmocka_unit_test(test_histogram_without_labels),
		cmocka_unit_test(test_read_back),
		cmocka_unit_test(test_read_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
