// SPDX-License-Identifier: MIT
/* A request's record: whom an outcome blames, usage summed over the
 * answers, the prompt kept up to its bound. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/buffer.h>

#include "reqrec.h"

static void test_blame_of_outcomes(void **state)
{
	(void)state;
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_OK), DT_BLAME_NONE);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_CANCELLED), DT_BLAME_NONE);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_RATE_LIMITED), DT_BLAME_RATE_LIMIT);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_KEY_REFUSED), DT_BLAME_KEY);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_SERVER_ERROR), DT_BLAME_PROVIDER);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_CONNECT_FAILED), DT_BLAME_PROVIDER);
	assert_int_equal(dt_reqrec_blame_of(DT_OUTCOME_POOR_ANSWER), DT_BLAME_PROVIDER);
	assert_string_equal(dt_reqrec_blame_name(DT_BLAME_RATE_LIMIT), "rate_limit");
	assert_string_equal(dt_reqrec_outcome_name(DT_OUTCOME_FIRST_BYTE_TIMEOUT), "first_byte_timeout");
	assert_string_equal(dt_reqrec_outcome_name((enum dt_outcome_kind)99), "?");
}

static void test_usage_summed(void **state)
{
	struct dt_reqrec r = { .served = -1 };
	const struct dt_xusage refused = { .known = true, .input_tokens = 10, .output_tokens = 3 };
	const struct dt_xusage answered = { .known = true, .input_tokens = 12, .cached_input_tokens = 8,
					    .output_tokens = 40 };
	const struct dt_xusage unread = { .known = false, .input_tokens = 99 };
	const struct dt_price price = { .input = 2000000, .cached_input = 500000, .output = 8000000 };

	(void)state;
	dt_reqrec_add_usage(&r, &unread, &price);
	assert_false(r.usage.known);
	dt_reqrec_add_usage(&r, &refused, &price);
	dt_reqrec_add_usage(&r, &answered, &price);
	dt_reqrec_add_usage(&r, &unread, &price);
	assert_true(r.usage.known);
	assert_int_equal(r.usage.input_tokens, 22);
	assert_int_equal(r.usage.cached_input_tokens, 8);
	assert_int_equal(r.usage.output_tokens, 43);
	/* (10 + 4) fresh x 2 + 8 cached x 0.5 + 43 x 8 µ$ */
	assert_true(r.priced);
	assert_int_equal(r.cost_pico, 28000000 + 4000000 + 344000000);
	/* an answer without a price: the sum is no longer the whole cost */
	dt_reqrec_add_usage(&r, &refused, NULL);
	assert_false(r.priced);
	dt_reqrec_add_usage(&r, &refused, &price);
	assert_false(r.priced);
}

static void test_unpriced_from_the_start(void **state)
{
	struct dt_reqrec r = { .served = -1 };
	const struct dt_xusage u = { .known = true, .input_tokens = 1 };

	(void)state;
	dt_reqrec_add_usage(&r, &u, NULL);
	assert_true(r.usage.known);
	assert_false(r.priced);
	assert_int_equal(r.cost_pico, 0);
}

static void test_prompt_bounded(void **state)
{
	struct evbuffer *body = evbuffer_new();
	struct dt_reqrec r = { .served = -1 };
	char *big = malloc(DT_REQREC_PROMPT_MAX + 100);

	(void)state;
	evbuffer_add(body, "{\"a\":1}", 7);
	dt_reqrec_keep_prompt(&r, body);
	assert_int_equal(r.prompt_len, 7);
	assert_memory_equal(r.prompt, "{\"a\":1}", 7);
	assert_int_equal(evbuffer_get_length(body), 7); /* the body stays for the request */
	dt_reqrec_free(&r);
	assert_null(r.prompt);

	memset(big, 'x', DT_REQREC_PROMPT_MAX + 100);
	evbuffer_add(body, big, DT_REQREC_PROMPT_MAX + 100);
	dt_reqrec_keep_prompt(&r, body);
	assert_int_equal(r.prompt_len, DT_REQREC_PROMPT_MAX);
	dt_reqrec_free(&r);
	evbuffer_drain(body, evbuffer_get_length(body));
	dt_reqrec_keep_prompt(&r, body);
	assert_int_equal(r.prompt_len, 0);
	assert_non_null(r.prompt);
	dt_reqrec_free(&r);
	free(big);
	evbuffer_free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blame_of_outcomes),
		cmocka_unit_test(test_usage_summed),
		cmocka_unit_test(test_unpriced_from_the_start),
		cmocka_unit_test(test_prompt_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
