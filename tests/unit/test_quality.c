// SPDX-License-Identifier: MIT
/* Quality verdicts on whole and streamed answers, with what the request
 * asked for. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "quality.h"

static struct dt_xpart text_part(const char *text)
{
	return (struct dt_xpart){ .type = DT_XPART_TEXT, .text = text };
}

static const struct dt_xpart tool_part = {
	.type = DT_XPART_TOOL_CALL, .id = "call_1", .name = "f", .arguments = "{}",
};

static enum dt_quality check(const struct dt_xrequest *req, struct dt_xpart *parts, size_t n,
			     enum dt_xfinish finish, int64_t output_tokens)
{
	struct dt_xresponse r = {
		.parts = parts, .n_parts = n, .finish = finish,
		.usage = { .known = output_tokens >= 0, .output_tokens = output_tokens },
	};

	return dt_quality_of_response(req, &r);
}

static void test_response(void **state)
{
	struct dt_xrequest plain = { .max_tokens = -1 }, capped = { .max_tokens = 10 };
	struct dt_xrequest json = { .max_tokens = -1, .format = DT_XFORMAT_JSON };
	struct dt_xrequest schema = { .max_tokens = -1, .format = DT_XFORMAT_JSON_SCHEMA };
	struct dt_xpart hello[] = { text_part("hello") }, none[] = { text_part("") };
	struct dt_xpart split_json[] = { text_part("{\"a\":"), text_part(" 1}") };
	struct dt_xpart array[] = { text_part("[1, 2]") }, prose[] = { text_part("Sure! {\"a\":1}") };
	struct dt_xpart tool[] = { tool_part };

	(void)state;
	assert_int_equal(check(&plain, hello, 1, DT_XFINISH_STOP, 1), DT_QUALITY_OK);
	assert_int_equal(check(NULL, hello, 1, DT_XFINISH_STOP, -1), DT_QUALITY_OK);
	assert_int_equal(check(&plain, none, 1, DT_XFINISH_STOP, 0), DT_QUALITY_EMPTY);
	assert_int_equal(check(&plain, NULL, 0, DT_XFINISH_STOP, 0), DT_QUALITY_EMPTY);
	assert_int_equal(check(&plain, tool, 1, DT_XFINISH_TOOL_CALLS, 5), DT_QUALITY_OK);
	/* length: explained only by the request's own max_tokens, reached */
	assert_int_equal(check(&plain, hello, 1, DT_XFINISH_LENGTH, 3), DT_QUALITY_TRUNCATED);
	assert_int_equal(check(&capped, hello, 1, DT_XFINISH_LENGTH, 10), DT_QUALITY_OK);
	assert_int_equal(check(&capped, hello, 1, DT_XFINISH_LENGTH, 4), DT_QUALITY_TRUNCATED);
	assert_int_equal(check(&capped, hello, 1, DT_XFINISH_LENGTH, -1), DT_QUALITY_OK);
	assert_int_equal(check(NULL, hello, 1, DT_XFINISH_LENGTH, 3), DT_QUALITY_TRUNCATED);
	assert_int_equal(check(&plain, none, 1, DT_XFINISH_CONTENT_FILTER, 0), DT_QUALITY_FILTERED);
	assert_int_equal(check(&plain, hello, 1, DT_XFINISH_CONTENT_FILTER, 1), DT_QUALITY_FILTERED);
	/* JSON asked: an object, possibly split over parts */
	assert_int_equal(check(&json, split_json, 2, DT_XFINISH_STOP, 4), DT_QUALITY_OK);
	assert_int_equal(check(&schema, split_json, 2, DT_XFINISH_STOP, 4), DT_QUALITY_OK);
	assert_int_equal(check(&json, array, 1, DT_XFINISH_STOP, 4), DT_QUALITY_NOT_JSON);
	assert_int_equal(check(&json, prose, 1, DT_XFINISH_STOP, 4), DT_QUALITY_NOT_JSON);
	assert_int_equal(check(&plain, prose, 1, DT_XFINISH_STOP, 4), DT_QUALITY_OK);
	assert_int_equal(check(&json, tool, 1, DT_XFINISH_TOOL_CALLS, 4), DT_QUALITY_OK);
	assert_int_equal(check(&json, none, 1, DT_XFINISH_STOP, 0), DT_QUALITY_EMPTY);
}

static void test_stream(void **state)
{
	struct dt_xrequest plain = { .max_tokens = -1 }, capped = { .max_tokens = 2 };
	struct dt_xstream_info i = { .complete = true, .finish = DT_XFINISH_STOP };

	(void)state;
	assert_int_equal(dt_quality_of_stream(&plain, &i), DT_QUALITY_EMPTY);
	i.content = true;
	assert_int_equal(dt_quality_of_stream(&plain, &i), DT_QUALITY_OK);
	i.finish = DT_XFINISH_LENGTH;
	i.usage = (struct dt_xusage){ .known = true, .output_tokens = 2 };
	assert_int_equal(dt_quality_of_stream(&plain, &i), DT_QUALITY_TRUNCATED);
	assert_int_equal(dt_quality_of_stream(&capped, &i), DT_QUALITY_OK);
	i.finish = DT_XFINISH_CONTENT_FILTER;
	assert_int_equal(dt_quality_of_stream(&capped, &i), DT_QUALITY_FILTERED);
	assert_string_equal(dt_quality_str(DT_QUALITY_NOT_JSON), "not-json");
	assert_string_equal(dt_quality_str(DT_QUALITY_OK), "ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
