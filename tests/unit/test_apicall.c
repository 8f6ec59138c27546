// SPDX-License-Identifier: MIT
/* Which calls are translatable, and their URLs on each family. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "apicall.h"

static const struct {
	enum dt_family family;
	const char *rest;
	bool generate, stream, sse;
	const char *model;
} calls[] = {
	{ DT_FAMILY_OPENAI, "/chat/completions", true, false, true, "" },
	{ DT_FAMILY_OPENAI, "/chat/completions?x=1", true, false, true, "" },
	{ DT_FAMILY_OPENAI, "/chat/completionsX", false, false, false, "" },
	{ DT_FAMILY_OPENAI, "/chat/completions/abc", false, false, false, "" },
	{ DT_FAMILY_OPENAI, "/embeddings", false, false, false, "" },
	{ DT_FAMILY_OPENAI, "/messages", false, false, false, "" },
	{ DT_FAMILY_ANTHROPIC, "/messages", true, false, true, "" },
	{ DT_FAMILY_ANTHROPIC, "/messages?beta=true", true, false, true, "" },
	{ DT_FAMILY_ANTHROPIC, "/messages/count_tokens", false, false, false, "" },
	{ DT_FAMILY_ANTHROPIC, "/messages/batches", false, false, false, "" },
	{ DT_FAMILY_ANTHROPIC, "/chat/completions", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/models/gemini-2.0-flash:generateContent", true, false, false, "gemini-2.0-flash" },
	{ DT_FAMILY_GEMINI, "/models/gemini-2.0-flash:generateContent?key=k", true, false, false, "gemini-2.0-flash" },
	{ DT_FAMILY_GEMINI, "/models/g:streamGenerateContent?alt=sse", true, true, true, "g" },
	{ DT_FAMILY_GEMINI, "/models/g:streamGenerateContent?key=k&alt=sse", true, true, true, "g" },
	{ DT_FAMILY_GEMINI, "/models/g:streamGenerateContent?alt=ssex", true, true, false, "g" },
	{ DT_FAMILY_GEMINI, "/models/g:streamGenerateContent", true, true, false, "g" },
	{ DT_FAMILY_GEMINI, "/models/g:countTokens", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/models/:generateContent", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/models/a/b:generateContent", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/models/g", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/models", false, false, false, "" },
	{ DT_FAMILY_GEMINI, "/chat/completions", false, false, false, "" },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		struct dt_apicall c;

		dt_apicall_parse(calls[i].family, calls[i].rest, &c);
		if (c.generate != calls[i].generate || c.path_stream != calls[i].stream ||
		    c.sse != calls[i].sse || strcmp(c.path_model, calls[i].model) != 0)
			fail_msg("%s: generate %d stream %d sse %d model %s", calls[i].rest,
				 c.generate, c.path_stream, c.sse, c.path_model);
	}
}

/* A model name that fills the field is refused rather than cut. */
static void test_long_gemini_model(void **state)
{
	char rest[DT_MODEL_LEN + 64];
	struct dt_apicall c;

	(void)state;
	snprintf(rest, sizeof(rest), "/models/%0*d:generateContent", DT_MODEL_LEN - 1, 7);
	dt_apicall_parse(DT_FAMILY_GEMINI, rest, &c);
	assert_true(c.generate);
	assert_int_equal(strlen(c.path_model), DT_MODEL_LEN - 1);
	snprintf(rest, sizeof(rest), "/models/%0*d:generateContent", DT_MODEL_LEN, 7);
	dt_apicall_parse(DT_FAMILY_GEMINI, rest, &c);
	assert_false(c.generate);
}

static void test_url(void **state)
{
	char *u;

	(void)state;
	u = dt_apicall_url(DT_FAMILY_OPENAI, "https://api.groq.com/openai/v1", "llama", true);
	assert_string_equal(u, "https://api.groq.com/openai/v1/chat/completions");
	free(u);
	u = dt_apicall_url(DT_FAMILY_ANTHROPIC, "https://api.anthropic.com/v1", "claude", false);
	assert_string_equal(u, "https://api.anthropic.com/v1/messages");
	free(u);
	u = dt_apicall_url(DT_FAMILY_GEMINI, "https://g.example/v1beta", "gemini-2.0-flash", false);
	assert_string_equal(u, "https://g.example/v1beta/models/gemini-2.0-flash:generateContent");
	free(u);
	u = dt_apicall_url(DT_FAMILY_GEMINI, "https://g.example/v1beta", "g", true);
	assert_string_equal(u, "https://g.example/v1beta/models/g:streamGenerateContent?alt=sse");
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_long_gemini_model),
		cmocka_unit_test(test_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
