// SPDX-License-Identifier: MIT
/* Rate-limit headers: OpenAI's and Anthropic's forms, retry-after in
 * seconds, HTTP-date and ms, malformed values ignored. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ratelimit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 2024-05-01T12:00:00Z */
#define WALL_MS 1714564800000ll

static void test_go_durations(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} good[] = {
		/* OpenAI's documented examples and what its API sends */
		{ "1s", 1000 }, { "6m0s", 360000 }, { "20ms", 20 }, { "0s", 0 }, { "0", 0 },
		{ "59.988s", 59988 }, { "2m59.56s", 179560 }, { "1h2m3s", 3723000 },
		{ "17ms", 17 }, { "8.64s", 8640 }, { "1.5h", 5400000 },
		/* below a millisecond rounds up: a little late beats a 429 */
		{ "500us", 1 }, { "1\xc2\xb5s", 1 }, { "1\xce\xbcs", 1 }, { "999ns", 1 },
		{ "1000000ns", 1 }, { "1000001ns", 2 }, { "0.0001s", 1 },
		{ "1.0000000001s", 1000 }, /* past nanoseconds: dropped */
	};
	static const char *const bad[] = {
		"", "s", "1", "1x", "-1s", "+1s", "1 s", "1s ", "1.s", ".5s", "1m1", "ms",
		"1sm", "1.5.5s", "99999999999999999999s", "9999999999h",
	};
	uint64_t ms;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		ms = 12345;
		assert_true(dt_parse_go_duration_ms(good[i].text, strlen(good[i].text), &ms));
		if (ms != good[i].ms)
			fail_msg("%s: %llu, not %llu", good[i].text, (unsigned long long)ms,
				 (unsigned long long)good[i].ms);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (dt_parse_go_duration_ms(bad[i], strlen(bad[i]), &ms))
			fail_msg("accepted %s", bad[i]);
	/* the length is honoured: no NUL needed, none read past */
	assert_true(dt_parse_go_duration_ms("20msXX", 4, &ms));
	assert_int_equal(ms, 20);
}

static void test_rfc3339(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} good[] = {
		{ "2024-05-01T12:00:00Z", WALL_MS },
		{ "2024-05-01T12:00:30Z", WALL_MS + 30000 },
		{ "2024-05-01T12:00:30.250Z", WALL_MS + 30250 },
		{ "2024-05-01T12:00:30.2509999Z", WALL_MS + 30250 },
		{ "2024-05-01t12:00:30z", WALL_MS + 30000 },
		{ "2024-05-01 12:00:30Z", WALL_MS + 30000 },
		{ "2024-05-01T14:00:30+02:00", WALL_MS + 30000 },
		{ "2024-05-01T07:30:30-04:30", WALL_MS + 30000 },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2024-02-29T00:00:00Z", 1709164800000ll },
		{ "2000-02-29T00:00:00Z", 951782400000ll },
		{ "1969-12-31T23:59:59Z", -1000 },
	};
	static const char *const bad[] = {
		"", "2024-05-01", "2024-05-01T12:00:00", "2024-05-01T12:00Z",
		"2024-13-01T12:00:00Z", "2024-00-01T12:00:00Z", "2024-04-31T12:00:00Z",
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-05-01T24:00:00Z",
		"2024-05-01T12:60:00Z", "2024-05-01T12:00:61Z", "2024-05-01X12:00:00Z",
		"2024-05-01T12:00:00+0200", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00Z ",
		"2024-5-01T12:00:00Z", "24-05-01T12:00:00Z", "2024-05-01T12:00:00.Z",
		"Wed, 01 May 2024 12:00:00 GMT",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		assert_true(dt_parse_rfc3339_ms(good[i].text, strlen(good[i].text), &ms));
		if (ms != good[i].ms)
			fail_msg("%s: %lld, not %lld", good[i].text, (long long)ms,
				 (long long)good[i].ms);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (dt_parse_rfc3339_ms(bad[i], strlen(bad[i]), &ms))
			fail_msg("accepted %s", bad[i]);
}

static void test_http_date(void **state)
{
	static const char *const bad[] = {
		"", "Wed, 01 May 2024 12:00:00 UTC", "Wed, 1 May 2024 12:00:00 GMT",
		"Wed, 01 Mai 2024 12:00:00 GMT", "Xyz, 01 May 2024 12:00:00 GMT",
		"Wed, 31 Apr 2024 12:00:00 GMT", "Wed, 01 May 2024 25:00:00 GMT",
		"Wednesday, 01-May-24 12:00:00 GMT", /* obsolete RFC 850 form */
		"Wed May  1 12:00:00 2024",          /* obsolete asctime form */
		"Wed,_01 May 2024 12:00:00 GMT",
	};
	int64_t ms;

	(void)state;
	assert_true(dt_parse_http_date_ms("Wed, 01 May 2024 12:00:30 GMT", 29, &ms));
	assert_int_equal(ms, WALL_MS + 30000);
	assert_true(dt_parse_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT", 29, &ms));
	assert_int_equal(ms, 784111777000ll);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (dt_parse_http_date_ms(bad[i], strlen(bad[i]), &ms))
			fail_msg("accepted %s", bad[i]);
}

static bool feed(struct dt_ratelimit *rl, const char *name, const char *value)
{
	return dt_ratelimit_header(rl, name, strlen(name), value, strlen(value), WALL_MS);
}

static void test_openai_headers(void **state)
{
	struct dt_ratelimit rl;

	(void)state;
	dt_ratelimit_init(&rl);
	/* an answer's headers as OpenAI documents them */
	assert_true(feed(&rl, "x-ratelimit-limit-requests", "60"));
	assert_true(feed(&rl, "x-ratelimit-limit-tokens", "150000"));
	assert_true(feed(&rl, "x-ratelimit-remaining-requests", "59"));
	assert_true(feed(&rl, "x-ratelimit-remaining-tokens", "149984"));
	assert_true(feed(&rl, "x-ratelimit-reset-requests", "1s"));
	assert_true(feed(&rl, "x-ratelimit-reset-tokens", "6m0s"));
	assert_int_equal(rl.limits[DT_RL_REQUESTS].limit, 60);
	assert_int_equal(rl.limits[DT_RL_REQUESTS].remaining, 59);
	assert_int_equal(rl.limits[DT_RL_REQUESTS].reset_ms, 1000);
	assert_int_equal(rl.limits[DT_RL_TOKENS].limit, 150000);
	assert_int_equal(rl.limits[DT_RL_TOKENS].remaining, 149984);
	assert_int_equal(rl.limits[DT_RL_TOKENS].reset_ms, 360000);
	assert_int_equal(rl.limits[DT_RL_INPUT_TOKENS].remaining, -1);
	assert_int_equal(rl.retry_after_ms, -1);

	/* names in any case (HTTP/1.1 servers capitalise them), values with
	 * optional white space */
	assert_true(feed(&rl, "X-RateLimit-Remaining-Requests", " 0\t"));
	assert_int_equal(rl.limits[DT_RL_REQUESTS].remaining, 0);
	assert_true(feed(&rl, "retry-after-ms", "1234"));
	assert_int_equal(rl.retry_after_ms, 1234);
	assert_true(feed(&rl, "retry-after-ms", "20.5"));
	assert_int_equal(rl.retry_after_ms, 21);
}

static void test_anthropic_headers(void **state)
{
	struct dt_ratelimit rl;

	(void)state;
	dt_ratelimit_init(&rl);
	assert_true(feed(&rl, "anthropic-ratelimit-requests-limit", "50"));
	assert_false(feed(&rl, "anthropic-ratelimit-requests-limit", "5O"));
	assert_true(feed(&rl, "anthropic-ratelimit-requests-remaining", "49"));
	assert_true(feed(&rl, "anthropic-ratelimit-requests-reset", "2024-05-01T12:00:01Z"));
	assert_true(feed(&rl, "anthropic-ratelimit-tokens-remaining", "0"));
	assert_true(feed(&rl, "anthropic-ratelimit-tokens-reset", "2024-05-01T12:00:12.5Z"));
	assert_true(feed(&rl, "anthropic-ratelimit-input-tokens-remaining", "40000"));
	assert_true(feed(&rl, "anthropic-ratelimit-input-tokens-reset", "2024-05-01T12:00:06Z"));
	assert_true(feed(&rl, "anthropic-ratelimit-output-tokens-remaining", "8000"));
	assert_true(feed(&rl, "anthropic-ratelimit-output-tokens-reset", "2024-05-01T12:00:03Z"));
	assert_true(feed(&rl, "retry-after", "12"));
	assert_int_equal(rl.limits[DT_RL_REQUESTS].limit, 50);
	assert_int_equal(rl.limits[DT_RL_REQUESTS].remaining, 49);
	assert_int_equal(rl.limits[DT_RL_REQUESTS].reset_ms, 1000);
	assert_int_equal(rl.limits[DT_RL_TOKENS].limit, -1);
	assert_int_equal(rl.limits[DT_RL_TOKENS].remaining, 0);
	assert_int_equal(rl.limits[DT_RL_TOKENS].reset_ms, 12500);
	assert_int_equal(rl.limits[DT_RL_INPUT_TOKENS].remaining, 40000);
	assert_int_equal(rl.limits[DT_RL_INPUT_TOKENS].reset_ms, 6000);
	assert_int_equal(rl.limits[DT_RL_OUTPUT_TOKENS].remaining, 8000);
	assert_int_equal(rl.limits[DT_RL_OUTPUT_TOKENS].reset_ms, 3000);
	assert_int_equal(rl.retry_after_ms, 12000);

	/* a reset already past means "now" */
	assert_true(feed(&rl, "anthropic-ratelimit-requests-reset", "2024-05-01T11:59:00Z"));
	assert_int_equal(rl.limits[DT_RL_REQUESTS].reset_ms, 0);

	/* every limit's name, in any case */
	assert_true(feed(&rl, "Anthropic-RateLimit-Tokens-Limit", "90000"));
	assert_true(feed(&rl, "ANTHROPIC-RATELIMIT-INPUT-TOKENS-LIMIT", "70000"));
	assert_true(feed(&rl, "anthropic-ratelimit-output-tokens-LIMIT", "9000"));
	assert_false(feed(&rl, "anthropic-ratelimit-output-tokens-limits", "1"));
	assert_false(feed(&rl, "anthropic-ratelimit-output-tokens-limiT ", "1"));
	assert_int_equal(rl.limits[DT_RL_TOKENS].limit, 90000);
	assert_int_equal(rl.limits[DT_RL_INPUT_TOKENS].limit, 70000);
	assert_int_equal(rl.limits[DT_RL_OUTPUT_TOKENS].limit, 9000);
}

static void test_retry_after_forms(void **state)
{
	struct dt_ratelimit rl;

	(void)state;
	dt_ratelimit_init(&rl);
	assert_true(feed(&rl, "Retry-After", "0"));
	assert_int_equal(rl.retry_after_ms, 0);
	assert_true(feed(&rl, "retry-after", "Wed, 01 May 2024 12:01:00 GMT"));
	assert_int_equal(rl.retry_after_ms, 60000);
	assert_true(feed(&rl, "retry-after", "Wed, 01 May 2024 11:00:00 GMT"));
	assert_int_equal(rl.retry_after_ms, 0);
}

/* Whatever a value looks like, a malformed one changes nothing. */
static void test_malformed_values_are_ignored(void **state)
{
	static const struct {
		const char *name, *value;
	} bad[] = {
		{ "x-ratelimit-remaining-requests", "" },
		{ "x-ratelimit-remaining-requests", "-1" },
		{ "x-ratelimit-remaining-requests", "12abc" },
		{ "x-ratelimit-remaining-requests", "1 2" },
		{ "x-ratelimit-remaining-tokens", "99999999999999999999999" },
		{ "x-ratelimit-remaining-tokens", "1e3" },
		{ "x-ratelimit-reset-requests", "soon" },
		{ "x-ratelimit-reset-requests", "2024-05-01T12:00:01Z" },
		{ "x-ratelimit-reset-tokens", "-6m0s" },
		{ "anthropic-ratelimit-tokens-reset", "6m0s" },
		{ "anthropic-ratelimit-tokens-reset", "2024-05-01T12:00:01" },
		{ "anthropic-ratelimit-requests-remaining", "0x10" },
		{ "retry-after", "-5" },
		{ "retry-after", "1.5" },
		{ "retry-after", "tomorrow" },
		{ "retry-after", "99999999999999999999" },
		{ "retry-after-ms", "" },
		{ "retry-after-ms", "1.5.5" },
		{ "retry-after-ms", "NaN" },
		{ "x-ratelimit-remaining-request", "5" },
		{ "x-ratelimit-remaining-requests-x", "5" },
	};
	struct dt_ratelimit rl, before;

	(void)state;
	dt_ratelimit_init(&rl);
	assert_true(feed(&rl, "x-ratelimit-remaining-requests", "7"));
	before = rl;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		if (feed(&rl, bad[i].name, bad[i].value))
			fail_msg("accepted %s: %s", bad[i].name, bad[i].value);
		assert_memory_equal(&rl, &before, sizeof(rl));
	}
	/* no NUL needed in the name or the value */
	assert_true(dt_ratelimit_header(&rl, "retry-afterXYZ", 11, "30abc", 2, WALL_MS));
	assert_int_equal(rl.retry_after_ms, 30000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_durations),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_openai_headers),
		cmocka_unit_test(test_anthropic_headers),
		cmocka_unit_test(test_retry_after_forms),
		cmocka_unit_test(test_malformed_values_are_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
