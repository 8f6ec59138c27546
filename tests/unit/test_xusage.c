// SPDX-License-Identifier: MIT
/* Usage of relayed answers: whole JSON answers and streams of each family,
 * fed whole and split at every byte; cached input; the usage chunk asked
 * for the client stripped again, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <event2/buffer.h>

#include "json.h"
#include "xlate.h"

/* Meter text fed in pieces of `piece` bytes (0: at once); what a strip
 * meter writes is returned in *shown (malloc'ed), when shown is given. */
static struct dt_xusage meter(enum dt_family f, bool sse, bool strip, const char *text,
			      size_t piece, char **shown)
{
	struct dt_xmeter *m = dt_xmeter_new(f, sse, strip);
	struct evbuffer *out = evbuffer_new();
	size_t len = strlen(text), n;
	struct dt_xusage u;

	assert_non_null(m);
	assert_non_null(out);
	for (size_t at = 0; at < len; at += n) {
		n = piece && len - at > piece ? piece : len - at;
		assert_int_equal(dt_xmeter_feed(m, text + at, n, out), 0);
	}
	assert_int_equal(dt_xmeter_finish(m, out), 0);
	u = *dt_xmeter_usage(m);
	if (shown) {
		n = evbuffer_get_length(out);
		*shown = calloc(1, n + 1);
		evbuffer_copyout(out, *shown, n);
	} else {
		assert_int_equal(evbuffer_get_length(out), 0);
	}
	evbuffer_free(out);
	dt_xmeter_free(m);
	return u;
}

static void expect(const struct dt_xusage *u, int64_t in, int64_t cached, int64_t written,
		   int64_t out)
{
	assert_true(u->known);
	assert_int_equal(u->input_tokens, in);
	assert_int_equal(u->cached_input_tokens, cached);
	assert_int_equal(u->cache_write_tokens, written);
	assert_int_equal(u->output_tokens, out);
}

/* The same usage, whole and split at every size. */
static void expect_any_split(enum dt_family f, bool sse, const char *text, int64_t in,
			     int64_t cached, int64_t written, int64_t out)
{
	for (size_t piece = 0; piece <= strlen(text); piece++) {
		struct dt_xusage u = meter(f, sse, false, text, piece, NULL);

		expect(&u, in, cached, written, out);
	}
}

static void test_openai_whole_answer(void **state)
{
	(void)state;
	/* a "usage" inside the content, or deeper, is not the answer's */
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\","
			 "\"tool\":{\"usage\":{\"prompt_tokens\":99}}}}],\n"
			 "  \"usage\" : {\"prompt_tokens\":120,\"completion_tokens\":30,\"total_tokens\":150,"
			 "\"prompt_tokens_details\":{\"cached_tokens\":100}},\"system_fingerprint\":\"x\"}",
			 120, 100, 0, 30);
}

static void test_openai_responses_api_names(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"object\":\"response\",\"usage\":{\"input_tokens\":50,\"input_tokens_details\":"
			 "{\"cached_tokens\":20},\"output_tokens\":8,\"total_tokens\":58}}",
			 50, 20, 0, 8);
}

static void test_anthropic_whole_answer(void **state)
{
	(void)state;
	/* input_tokens are the fresh ones: the IR's input holds all three */
	expect_any_split(DT_FAMILY_ANTHROPIC, false,
			 "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"input\":{\"usage\":1}}],"
			 "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":5,"
			 "\"cache_read_input_tokens\":200,\"output_tokens\":42}}",
			 215, 200, 5, 42);
}

static void test_gemini_whole_and_json_array_stream(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_GEMINI, false,
			 "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":70,"
			 "\"candidatesTokenCount\":11,\"thoughtsTokenCount\":4,\"cachedContentTokenCount\":64}}",
			 70, 64, 0, 15);
	/* a JSON stream: an array of answers, the last usage is the whole */
	expect_any_split(DT_FAMILY_GEMINI, false,
			 "[{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":7}}\n,\r\n"
			 "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":3}}]",
			 7, 0, 0, 3);
}

static void test_no_usage_is_unknown(void **state)
{
	struct dt_xusage u;

	(void)state;
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"data\":[{\"id\":\"gpt-4o\"}]}", 0, NULL);
	assert_false(u.known);
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"usage\":null}", 0, NULL);
	assert_false(u.known);
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"usage\":{\"prompt_tokens\":1", 0, NULL);
	assert_false(u.known);
	u = meter(DT_FAMILY_OPENAI, true, false, "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", 0, NULL);
	assert_false(u.known);
}

/* An answer whose usage object is `size` bytes long, in text. */
static void usage_of_size(char *text, size_t size)
{
	static const char head[] = "{\"usage\":", value[] = "{\"prompt_tokens\":5,\"x\":\"";
	size_t pad = size - (sizeof(value) - 1) - 2;

	memcpy(text, head, sizeof(head) - 1);
	text += sizeof(head) - 1;
	memcpy(text, value, sizeof(value) - 1);
	text += sizeof(value) - 1;
	memset(text, 'a', pad);
	strcpy(text + pad, "\"}}");
}

/* A usage object read where it is (whole in one piece) or copied (split)
 * is the same: a malformed one says nothing, the last of two wins, and
 * one larger than the meter reads (4 KB) is not read either way. */
static void test_usage_in_place_or_copied(void **state)
{
	char big[5000];
	struct dt_xusage u;

	(void)state;
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"usage\":{\"prompt_tokens\":1,},\"a\":1}", 0, NULL);
	assert_false(u.known);
	/* whole, in an answer cut after it */
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"usage\":{\"prompt_tokens\":1}", 0, NULL);
	expect(&u, 1, 0, 0, 0);
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"usage\":"
			 "{\"prompt_tokens\":3,\"completion_tokens\":4}}", 3, 0, 0, 4);
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"x\":[1,{\"}\":\"]\"}]}}",
			 1, 0, 0, 2);
	/* escapes: runs of backslashes before quotes, in members' names and
	 * values at the answer's level, deeper, and in the usage itself */
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"a\":\"x\\\\\",\"b\":\"\\\"usage\\\":{\\\\\\\"\",\"us\\u0061ge\":{\"prompt_tokens\":9},"
			 "\"choices\":[{\"c\":\"\\\"]}\\\\\",\"d\":[\"\\\\\\\\\"]}],"
			 "\"usage\":{\"prompt_tokens\":4,\"n\":\"\\\\\\\"}\"},\"z\":\"\\\\\"}", 4, 0, 0, 0);
	u = meter(DT_FAMILY_OPENAI, false, false, "{\"us\\u0061ge\":{\"prompt_tokens\":9}}", 0, NULL);
	assert_false(u.known);
	/* control characters in strings are bytes as any other */
	expect_any_split(DT_FAMILY_OPENAI, false,
			 "{\"a\":\"x\ty\n\",\"us\x01age\":{\"prompt_tokens\":9},\"usage\":{\"prompt_tokens\":2}}",
			 2, 0, 0, 0);
	for (size_t piece = 0; piece < 4; piece++) {
		usage_of_size(big, 4096);
		u = meter(DT_FAMILY_OPENAI, false, false, big, piece * 1500, NULL);
		expect(&u, 5, 0, 0, 0);
		usage_of_size(big, 4097);
		u = meter(DT_FAMILY_OPENAI, false, false, big, piece * 1500, NULL);
		assert_false(u.known);
	}
}

static const char openai_stream[] =
	"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n"
	"data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
	"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,"
	"\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n"
	"data: [DONE]\n\n";
/* The same stream as the client asked for it: no usage at all. */
static const char openai_stream_asked[] =
	"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
	"data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	"data: [DONE]\n\n";

static void test_openai_stream(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_OPENAI, true, openai_stream, 12, 8, 0, 2);
}

/* Groq tells a stream's usage in its last chunk's x_groq, asked or not. */
static void test_groq_stream(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_OPENAI, true,
			 "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
			 "data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
			 "\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":4}}}\n\n"
			 "data: [DONE]\n\n", 30, 0, 0, 4);
}

static void test_openai_stream_stripped_byte_for_byte(void **state)
{
	(void)state;
	for (size_t piece = 0; piece <= sizeof(openai_stream) - 1; piece++) {
		char *shown;
		struct dt_xusage u = meter(DT_FAMILY_OPENAI, true, true, openai_stream, piece, &shown);

		expect(&u, 12, 8, 0, 2);
		assert_string_equal(shown, openai_stream_asked);
		free(shown);
	}
}

/* "usage":null first, alone, with blanks, CRLF lines, an event: line. */
static void test_strip_member_anywhere(void **state)
{
	char *shown;

	(void)state;
	meter(DT_FAMILY_OPENAI, true, true,
	      "data: {\"usage\":null,\"choices\":[]}\r\n\r\n"
	      "data: {\"usage\" : null }\r\n\r\n"
	      "event: x\ndata: {\"a\":1 , \"usage\":null}\n\n"
	      ": keep-alive\n\n"
	      "data: {\"a\":1}\n", 0, &shown);
	assert_string_equal(shown,
			    "data: {\"choices\":[]}\r\n\r\n"
			    "data: {}\r\n\r\n"
			    "event: x\ndata: {\"a\":1 }\n\n"
			    ": keep-alive\n\n"
			    "data: {\"a\":1}\n");
	free(shown);
}

static void test_anthropic_stream_merges_start_and_delta(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_ANTHROPIC, true,
			 "event: message_start\n"
			 "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,"
			 "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n"
			 "event: content_block_delta\n"
			 "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"usage\"}}\n\n"
			 "event: message_delta\n"
			 "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
			 "\"usage\":{\"output_tokens\":17}}\n\n"
			 "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			 125, 100, 0, 17);
}

static void test_gemini_sse_stream(void **state)
{
	(void)state;
	expect_any_split(DT_FAMILY_GEMINI, true,
			 "data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":9}}\r\n\r\n"
			 "data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":9,"
			 "\"candidatesTokenCount\":5,\"cachedContentTokenCount\":4}}\r\n\r\n",
			 9, 4, 0, 5);
}

/* An event past the cap: the rest passes unread, nothing is lost. */
static void test_oversized_event_passes(void **state)
{
	size_t big = 2u << 20;
	char *text = malloc(big + 64), *shown;
	struct dt_xusage u;

	(void)state;
	strcpy(text, "data: \"");
	memset(text + 7, 'a', big);
	strcpy(text + 7 + big, "\"\n\ndata: {\"usage\":null}\n\n");
	u = meter(DT_FAMILY_OPENAI, true, true, text, 4096, &shown);
	assert_false(u.known);
	assert_int_equal(strlen(shown), strlen(text));
	assert_string_equal(shown, text);
	free(shown);
	free(text);
}

/* The request asks for the usage chunk, every other byte as it was; NULL
 * when it asks already or cannot be changed safely. */
static void expect_asked(const char *body, const char *want)
{
	struct dt_arena arena = {0};
	char err[128], *out;
	const struct dt_json *root = dt_json_parse(&arena, body, strlen(body), err, sizeof(err));
	size_t len = 0;

	assert_non_null(root);
	out = dt_xreq_ask_stream_usage(body, strlen(body), root, &len);
	if (!want) {
		assert_null(out);
	} else {
		assert_non_null(out);
		assert_int_equal(len, strlen(want));
		assert_string_equal(out, want);
	}
	free(out);
	dt_arena_free(&arena);
}

static void test_request_asks_for_usage(void **state)
{
	(void)state;
	expect_asked("{\"model\":\"m\", \"stream\": true }",
		     "{\"model\":\"m\", \"stream\": true,\"stream_options\":{\"include_usage\":true} }");
	expect_asked("{\"stream\":true,\"stream_options\":{}}",
		     "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	expect_asked("{\"stream\":true,\"stream_options\":null}",
		     "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	expect_asked("{\"stream_options\":{\"include_obfuscation\":false},\"stream\":true}",
		     "{\"stream_options\":{\"include_obfuscation\":false,\"include_usage\":true},\"stream\":true}");
	expect_asked("{\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
		     "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	/* asked already, or not safely changed */
	expect_asked("{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", NULL);
	expect_asked("{\"stream\":true,\"stream_options\":7}", NULL);
	expect_asked("{\"stream\":true,\"stream_options\":{},\"stream_options\":{}}", NULL);
	expect_asked("[1]", NULL);
}

/* A whole answer's meter is reused once freed: one left mid-string, deep
 * in a usage value, tells the next nothing. */
static void test_meter_reused(void **state)
{
	static const char part[] = "{\"usage\":{\"prompt_tokens\":7,\"x\":\"ab";
	static const char whole[] = "{\"id\":\"a\",\"usage\":{\"prompt_tokens\":3,"
				    "\"completion_tokens\":4}}";
	struct dt_xmeter *m = dt_xmeter_new(DT_FAMILY_OPENAI, false, false);
	struct dt_xusage u;

	(void)state;
	assert_non_null(m);
	assert_int_equal(dt_xmeter_feed(m, part, sizeof(part) - 1, NULL), 0);
	dt_xmeter_free(m);
	m = dt_xmeter_new(DT_FAMILY_OPENAI, false, false);
	assert_non_null(m);
	assert_false(dt_xmeter_usage(m)->known);
	assert_int_equal(dt_xmeter_feed(m, whole, sizeof(whole) - 1, NULL), 0);
	u = *dt_xmeter_usage(m);
	dt_xmeter_free(m);
	expect(&u, 3, 0, 0, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_whole_answer),
		cmocka_unit_test(test_meter_reused),
		cmocka_unit_test(test_openai_responses_api_names),
		cmocka_unit_test(test_anthropic_whole_answer),
		cmocka_unit_test(test_gemini_whole_and_json_array_stream),
		cmocka_unit_test(test_no_usage_is_unknown),
		cmocka_unit_test(test_usage_in_place_or_copied),
		cmocka_unit_test(test_openai_stream),
		cmocka_unit_test(test_groq_stream),
		cmocka_unit_test(test_openai_stream_stripped_byte_for_byte),
		cmocka_unit_test(test_strip_member_anywhere),
		cmocka_unit_test(test_anthropic_stream_merges_start_and_delta),
		cmocka_unit_test(test_gemini_sse_stream),
		cmocka_unit_test(test_oversized_event_passes),
		cmocka_unit_test(test_request_asks_for_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
