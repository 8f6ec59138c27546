// SPDX-License-Identifier: MIT
/* Non-streamed answers: each family's body parsed into the IR and written
 * in every client shape (text, tool calls, finish reasons, usage, ids,
 * model, created), read back with plain jansson; the finish table both
 * ways; blocked prompts, bad bodies, JSON escaping. Bodies follow the API
 * references' examples. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "xlate.h"

#define OPENAI    DT_FAMILY_OPENAI
#define ANTHROPIC DT_FAMILY_ANTHROPIC
#define GEMINI    DT_FAMILY_GEMINI

static const struct dt_xctx ctx = {
	.client_model = "client-model", .now = 1700000000, .seed = 0xabc,
};

static const char *const text_body[] = {
	"{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion\","
	"\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,"
	"\"message\":{\"role\":\"assistant\",\"content\":\"Hello, \\\"w\xc3\xb6rld\\\"\\n\","
	"\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"length\"}],"
	"\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,"
	"\"prompt_tokens_details\":{\"cached_tokens\":4,\"audio_tokens\":0},"
	"\"completion_tokens_details\":{\"reasoning_tokens\":0}},\"service_tier\":\"default\"}",

	"{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\",\"role\":\"assistant\","
	"\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\","
	"\"thinking\":\"Greet.\",\"signature\":\"EqQB\"},{\"type\":\"text\","
	"\"text\":\"Hello, \\\"w\xc3\xb6rld\\\"\\n\"}],\"stop_reason\":\"max_tokens\","
	"\"stop_sequence\":null,\"usage\":{\"input_tokens\":15,\"cache_creation_input_tokens\":0,"
	"\"cache_read_input_tokens\":4,\"output_tokens\":10}}",

	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello, \"},"
	"{\"text\":\"\\\"w\xc3\xb6rld\\\"\\n\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\","
	"\"avgLogprobs\":-0.1,\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":19,"
	"\"candidatesTokenCount\":10,\"totalTokenCount\":29,\"cachedContentTokenCount\":4},"
	"\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"mHGaZ8uWKM6mmtkPkZ6F2AE\"}",
};

static const char *const tools_body[] = {
	"{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion\",\"created\":1699896916,"
	"\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	"\"content\":null,\"tool_calls\":[{\"id\":\"call_abc123\",\"type\":\"function\",\"function\":"
	"{\"name\":\"get_weather\",\"arguments\":\"{\\n\\\"location\\\": \\\"Paris\\\"\\n}\"}},"
	"{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
	"\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"logprobs\":null,"
	"\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":80,"
	"\"completion_tokens\":30,\"total_tokens\":110}}",

	"{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\","
	"\"model\":\"claude-sonnet-4-5\",\"content\":[{\"type\":\"tool_use\","
	"\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"get_weather\","
	"\"input\":{\"location\":\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"toolu_2\","
	"\"name\":\"get_time\",\"input\":{\"tz\":\"CET\"}}],\"stop_reason\":\"tool_use\","
	"\"stop_sequence\":null,\"usage\":{\"input_tokens\":80,\"output_tokens\":30}}",

	"{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
	"\"args\":{\"location\":\"Paris\"}}},{\"functionCall\":{\"name\":\"get_time\","
	"\"args\":{\"tz\":\"CET\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],"
	"\"usageMetadata\":{\"promptTokenCount\":80,\"candidatesTokenCount\":30,"
	"\"totalTokenCount\":110},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"gemTools\"}",
};

static const char *const text_id[] = {
	"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "msg_013Zva2CMHLNnXjNJJKqJ2EF",
	"mHGaZ8uWKM6mmtkPkZ6F2AE",
};
static const char *const tools_id[] = { "chatcmpl-abc123", "msg_01Aq9w938a90dw8q", "gemTools" };
static const char *const made_id[] = {
	"chatcmpl-0000000000000abc", "msg_0000000000000abc", "0000000000000abc",
};
static const char *const call_id[][2] = {
	{ "call_abc123", "call_2" }, { "toolu_01A09q90qw90lq917835lq9", "toolu_2" }, { NULL, NULL },
};
static const char *const made_call_id[][2] = {
	{ "call_0000000000000abc_0", "call_0000000000000abc_1" },
	{ "toolu_0000000000000abc_0", "toolu_0000000000000abc_1" },
	{ "", "" },
};
static const char *const length_name[] = { "length", "max_tokens", "MAX_TOKENS" };
static const char *const tools_name[] = { "tool_calls", "tool_use", "STOP" };
static const int64_t provider_created[] = { 1741570283, 0, 0 };

static void parse_ok(enum dt_family from, const char *body, struct dt_xresponse *r)
{
	char err[256] = "";

	assert_int_equal(dt_xresp_parse(from, body, strlen(body), r, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

/* ---- the reference reader of the client's body ------------------------------ */

struct call {
	char id[64], name[64], args[256];
};

struct summary {
	char id[128], model[64], text[256], finish[32];
	struct call calls[4];
	size_t n_calls;
	int64_t created, in, out, cached;
	bool usage, content_null;
};

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static int64_t num(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static void add_call(struct summary *m, const char *id, const char *name, const json_t *args)
{
	json_t *parsed = json_is_string(args) ? json_loads(json_string_value(args), 0, NULL) : NULL;
	char *text = json_dumps(parsed ? parsed : args, JSON_COMPACT | JSON_SORT_KEYS);
	struct call *c = &m->calls[m->n_calls++];

	assert_non_null(text);
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->args, sizeof(c->args), "%s", text);
	free(text);
	json_decref(parsed);
}

static void read_openai(struct summary *m, const json_t *root)
{
	json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
	json_t *msg = json_object_get(choice, "message");
	json_t *usage = json_object_get(root, "usage");
	size_t i;
	json_t *tc;

	assert_string_equal(str(root, "object"), "chat.completion");
	assert_string_equal(str(msg, "role"), "assistant");
	m->created = num(root, "created");
	snprintf(m->id, sizeof(m->id), "%s", str(root, "id"));
	snprintf(m->model, sizeof(m->model), "%s", str(root, "model"));
	m->content_null = json_is_null(json_object_get(msg, "content"));
	snprintf(m->text, sizeof(m->text), "%s", str(msg, "content"));
	json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
		json_t *fn = json_object_get(tc, "function");

		assert_string_equal(str(tc, "type"), "function");
		add_call(m, str(tc, "id"), str(fn, "name"), json_object_get(fn, "arguments"));
	}
	snprintf(m->finish, sizeof(m->finish), "%s", str(choice, "finish_reason"));
	m->usage = json_is_object(usage);
	m->in = num(usage, "prompt_tokens");
	m->out = num(usage, "completion_tokens");
	m->cached = num(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
	assert_int_equal(num(usage, "total_tokens"), m->in + m->out);
}

static void read_anthropic(struct summary *m, const json_t *root)
{
	json_t *usage = json_object_get(root, "usage");
	size_t i;
	json_t *block;

	assert_string_equal(str(root, "type"), "message");
	assert_string_equal(str(root, "role"), "assistant");
	snprintf(m->id, sizeof(m->id), "%s", str(root, "id"));
	snprintf(m->model, sizeof(m->model), "%s", str(root, "model"));
	json_array_foreach(json_object_get(root, "content"), i, block) {
		if (strcmp(str(block, "type"), "tool_use") == 0)
			add_call(m, str(block, "id"), str(block, "name"), json_object_get(block, "input"));
		else
			strncat(m->text, str(block, "text"), sizeof(m->text) - strlen(m->text) - 1);
	}
	snprintf(m->finish, sizeof(m->finish), "%s", str(root, "stop_reason"));
	assert_true(json_object_get(root, "stop_sequence") != NULL);
	m->usage = json_is_object(usage);
	m->in = num(usage, "input_tokens") + num(usage, "cache_read_input_tokens") +
		num(usage, "cache_creation_input_tokens");
	m->cached = num(usage, "cache_read_input_tokens");
	m->out = num(usage, "output_tokens");
}

static void read_gemini(struct summary *m, const json_t *root)
{
	json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
	json_t *content = json_object_get(cand, "content");
	json_t *usage = json_object_get(root, "usageMetadata");
	size_t i;
	json_t *part;

	assert_string_equal(str(content, "role"), "model");
	snprintf(m->id, sizeof(m->id), "%s", str(root, "responseId"));
	snprintf(m->model, sizeof(m->model), "%s", str(root, "modelVersion"));
	json_array_foreach(json_object_get(content, "parts"), i, part) {
		json_t *fn = json_object_get(part, "functionCall");

		if (fn)
			add_call(m, str(fn, "id"), str(fn, "name"), json_object_get(fn, "args"));
		else
			strncat(m->text, str(part, "text"), sizeof(m->text) - strlen(m->text) - 1);
	}
	snprintf(m->finish, sizeof(m->finish), "%s", str(cand, "finishReason"));
	m->usage = json_is_object(usage);
	m->in = num(usage, "promptTokenCount");
	m->out = num(usage, "candidatesTokenCount");
	m->cached = num(usage, "cachedContentTokenCount");
	if (m->usage)
		assert_int_equal(num(usage, "totalTokenCount"), m->in + m->out);
}

/* Emit r for a client of family `to` and read it back. */
static struct summary emit_read(enum dt_family to, const struct dt_xresponse *r,
				const struct dt_xctx *c)
{
	struct summary m = { 0 };
	size_t len;
	char *body = dt_xresp_emit(to, r, c, &len);
	json_t *root;

	assert_non_null(body);
	assert_int_equal(strlen(body), len);
	root = json_loadb(body, len, 0, NULL);
	assert_non_null(root);
	if (to == OPENAI)
		read_openai(&m, root);
	else if (to == ANTHROPIC)
		read_anthropic(&m, root);
	else
		read_gemini(&m, root);
	json_decref(root);
	free(body);
	return m;
}

/* ---- parsing ------------------------------------------------------------------- */

static void test_parse_text_each_family(void **state)
{
	static const char *const models[] = {
		"gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gemini-2.0-flash",
	};

	(void)state;
	for (int from = 0; from < 3; from++) {
		struct dt_xresponse r;
		size_t text = 0;

		parse_ok(from, text_body[from], &r);
		assert_int_equal(r.shape, from);
		assert_string_equal(r.id, text_id[from]);
		assert_string_equal(r.model, models[from]);
		assert_int_equal(r.created, provider_created[from]);
		for (size_t i = 0; i < r.n_parts; i++) {
			assert_int_equal(r.parts[i].type, DT_XPART_TEXT);
			text += strlen(r.parts[i].text);
		}
		assert_int_equal(text, 16); /* the thinking block is dropped */
		assert_int_equal(r.finish, DT_XFINISH_LENGTH);
		assert_null(r.stop_sequence);
		assert_true(r.usage.known);
		assert_int_equal(r.usage.input_tokens, 19);
		assert_int_equal(r.usage.output_tokens, 10);
		assert_int_equal(r.usage.cached_input_tokens, 4);
		dt_xresp_free(&r);
	}
}

static void test_parse_tool_calls_each_family(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		struct dt_xresponse r;

		parse_ok(from, tools_body[from], &r);
		assert_int_equal(r.n_parts, 2);
		assert_int_equal(r.parts[0].type, DT_XPART_TOOL_CALL);
		assert_string_equal(r.parts[0].name, "get_weather");
		if (call_id[from][0])
			assert_string_equal(r.parts[0].id, call_id[from][0]);
		else
			assert_null(r.parts[0].id); /* made when written, from the seed */
		assert_non_null(strstr(r.parts[0].arguments, "Paris"));
		assert_string_equal(r.parts[1].name, "get_time");
		assert_int_equal(r.finish, DT_XFINISH_TOOL_CALLS); /* Gemini: STOP with calls */
		assert_int_equal(r.usage.input_tokens, 80);
		assert_int_equal(r.usage.output_tokens, 30);
		dt_xresp_free(&r);
	}
}

/* ---- every pair ------------------------------------------------------------------ */

static void test_text_every_pair(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		struct dt_xresponse r;

		parse_ok(from, text_body[from], &r);
		for (int to = 0; to < 3; to++) {
			struct summary m = emit_read(to, &r, &ctx);

			assert_string_equal(m.text, "Hello, \"w\xc3\xb6rld\"\n");
			assert_int_equal(m.n_calls, 0);
			assert_string_equal(m.finish, length_name[to]);
			assert_true(m.usage);
			assert_int_equal(m.in, 19);
			assert_int_equal(m.out, 10);
			assert_int_equal(m.cached, 4);
			assert_string_equal(m.model, "client-model");
			assert_string_equal(m.id, from == to ? text_id[from] : made_id[to]);
			if (to == OPENAI)
				assert_int_equal(m.created, from == OPENAI ? 1741570283 : ctx.now);
		}
		dt_xresp_free(&r);
	}
}

static void test_tool_calls_every_pair(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		struct dt_xresponse r;

		parse_ok(from, tools_body[from], &r);
		for (int to = 0; to < 3; to++) {
			struct summary m = emit_read(to, &r, &ctx);

			assert_int_equal(m.n_calls, 2);
			assert_string_equal(m.calls[0].name, "get_weather");
			assert_string_equal(m.calls[0].args, "{\"location\":\"Paris\"}");
			assert_string_equal(m.calls[1].name, "get_time");
			assert_string_equal(m.calls[1].args, "{\"tz\":\"CET\"}");
			for (int i = 0; i < 2; i++)
				assert_string_equal(m.calls[i].id, call_id[from][i] ? call_id[from][i] :
						    made_call_id[to][i]);
			assert_string_equal(m.finish, tools_name[to]);
			assert_int_equal(m.in, 80);
			assert_int_equal(m.out, 30);
			assert_string_equal(m.id, from == to ? tools_id[from] : made_id[to]);
			if (to == OPENAI)
				assert_true(m.content_null); /* calls only */
		}
		dt_xresp_free(&r);
	}
}

static void test_model_and_created_fallbacks(void **state)
{
	struct dt_xctx bare = { .now = 42, .seed = 1 };
	struct dt_xresponse r;

	(void)state;
	parse_ok(ANTHROPIC, text_body[ANTHROPIC], &r);
	struct summary m = emit_read(OPENAI, &r, &bare);

	assert_string_equal(m.model, "claude-sonnet-4-5-20250929"); /* none asked: the provider's */
	assert_int_equal(m.created, 42);
	assert_string_equal(m.id, "chatcmpl-0000000000000001");
	dt_xresp_free(&r);
}

/* ---- finish reasons, usage ------------------------------------------------------ */

static void test_finish_table_both_ways(void **state)
{
	static const struct {
		enum dt_family family;
		const char *name;
		enum dt_xfinish finish;
		const char *written; /* the name written back for it */
	} rows[] = {
		{ OPENAI, "stop", DT_XFINISH_STOP, "stop" },
		{ OPENAI, "length", DT_XFINISH_LENGTH, "length" },
		{ OPENAI, "tool_calls", DT_XFINISH_TOOL_CALLS, "tool_calls" },
		{ OPENAI, "function_call", DT_XFINISH_TOOL_CALLS, "tool_calls" },
		{ OPENAI, "content_filter", DT_XFINISH_CONTENT_FILTER, "content_filter" },
		{ OPENAI, "something_new", DT_XFINISH_OTHER, "stop" },
		{ ANTHROPIC, "end_turn", DT_XFINISH_STOP, "end_turn" },
		{ ANTHROPIC, "stop_sequence", DT_XFINISH_STOP_SEQUENCE, "stop_sequence" },
		{ ANTHROPIC, "max_tokens", DT_XFINISH_LENGTH, "max_tokens" },
		{ ANTHROPIC, "model_context_window_exceeded", DT_XFINISH_LENGTH, "max_tokens" },
		{ ANTHROPIC, "tool_use", DT_XFINISH_TOOL_CALLS, "tool_use" },
		{ ANTHROPIC, "refusal", DT_XFINISH_CONTENT_FILTER, "refusal" },
		{ ANTHROPIC, "pause_turn", DT_XFINISH_OTHER, "end_turn" },
		{ GEMINI, "STOP", DT_XFINISH_STOP, "STOP" },
		{ GEMINI, "MAX_TOKENS", DT_XFINISH_LENGTH, "MAX_TOKENS" },
		{ GEMINI, "SAFETY", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "RECITATION", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "BLOCKLIST", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "PROHIBITED_CONTENT", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "SPII", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "IMAGE_SAFETY", DT_XFINISH_CONTENT_FILTER, "SAFETY" },
		{ GEMINI, "LANGUAGE", DT_XFINISH_OTHER, "OTHER" },
		{ GEMINI, "MALFORMED_FUNCTION_CALL", DT_XFINISH_OTHER, "OTHER" },
		{ GEMINI, "OTHER", DT_XFINISH_OTHER, "OTHER" },
	};
	static const char *const bodies[] = {
		"{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"%s\"}]}",
		"{\"content\":[],\"stop_reason\":\"%s\"}",
		"{\"candidates\":[{\"content\":{\"parts\":[]},\"finishReason\":\"%s\"}]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char body[256];
		struct dt_xresponse r;

		snprintf(body, sizeof(body), bodies[rows[i].family], rows[i].name);
		parse_ok(rows[i].family, body, &r);
		assert_int_equal(r.finish, rows[i].finish);
		struct summary m = emit_read(rows[i].family, &r, &ctx);

		assert_string_equal(m.finish, rows[i].written);
		dt_xresp_free(&r);
	}
}

/* Every IR reason as each family writes it. */
static void test_finish_written_for_each_reason(void **state)
{
	static const char *const want[][3] = {
		[DT_XFINISH_NONE] = { "", "", "" },
		[DT_XFINISH_STOP] = { "stop", "end_turn", "STOP" },
		[DT_XFINISH_STOP_SEQUENCE] = { "stop", "stop_sequence", "STOP" },
		[DT_XFINISH_LENGTH] = { "length", "max_tokens", "MAX_TOKENS" },
		[DT_XFINISH_TOOL_CALLS] = { "tool_calls", "tool_use", "STOP" },
		[DT_XFINISH_CONTENT_FILTER] = { "content_filter", "refusal", "SAFETY" },
		[DT_XFINISH_OTHER] = { "stop", "end_turn", "OTHER" },
	};
	static const char *const str_want[] = {
		"none", "stop", "stop_sequence", "length", "tool_calls", "content_filter", "other",
	};

	(void)state;
	for (int f = DT_XFINISH_NONE; f <= DT_XFINISH_OTHER; f++) {
		struct dt_xresponse r = { .shape = OPENAI, .finish = f };

		assert_string_equal(dt_xfinish_str(f), str_want[f]);
		for (int to = 0; to < 3; to++) {
			struct summary m = emit_read(to, &r, &ctx);

			assert_string_equal(m.finish, want[f][to]);
		}
	}
}

static void test_usage_rules(void **state)
{
	static const char anthropic[] =
		"{\"content\":[],\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":6,"
		"\"cache_read_input_tokens\":3,\"output_tokens\":7}}";
	static const char gemini[] =
		"{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":20,\"candidatesTokenCount\":5,"
		"\"thoughtsTokenCount\":4,\"toolUsePromptTokenCount\":2,\"cachedContentTokenCount\":8,"
		"\"totalTokenCount\":31}}";
	struct dt_xresponse r;
	char *body;

	(void)state;
	/* Anthropic: input_tokens excludes cache reads and writes; the IR's includes them */
	parse_ok(ANTHROPIC, anthropic, &r);
	assert_int_equal(r.usage.input_tokens, 19);
	assert_int_equal(r.usage.cached_input_tokens, 3);
	assert_int_equal(r.usage.cache_write_tokens, 6);
	body = dt_xresp_emit(ANTHROPIC, &r, &ctx, NULL);
	assert_non_null(strstr(body, "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":6,"
				     "\"cache_read_input_tokens\":3,\"output_tokens\":7}"));
	free(body);
	body = dt_xresp_emit(OPENAI, &r, &ctx, NULL);
	assert_non_null(strstr(body, "{\"prompt_tokens\":19,\"completion_tokens\":7,\"total_tokens\":26,"
				     "\"prompt_tokens_details\":{\"cached_tokens\":3}}"));
	free(body);
	dt_xresp_free(&r);
	/* Gemini: thoughts are output, tool-use prompts input */
	parse_ok(GEMINI, gemini, &r);
	assert_int_equal(r.usage.input_tokens, 22);
	assert_int_equal(r.usage.output_tokens, 9);
	assert_int_equal(r.usage.cached_input_tokens, 8);
	body = dt_xresp_emit(ANTHROPIC, &r, &ctx, NULL);
	assert_non_null(strstr(body, "{\"input_tokens\":14,\"cache_creation_input_tokens\":0,"
				     "\"cache_read_input_tokens\":8,\"output_tokens\":9}"));
	free(body);
	dt_xresp_free(&r);
	/* none given: Gemini's optional usageMetadata is left out */
	parse_ok(OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", &r);
	assert_false(r.usage.known);
	assert_false(emit_read(GEMINI, &r, &ctx).usage);
	dt_xresp_free(&r);
}

/* ---- special answers ------------------------------------------------------------ */

static void test_gemini_blocked_prompt(void **state)
{
	static const char body[] =
		"{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[]},"
		"\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":7}}";
	struct dt_xresponse r;

	(void)state;
	parse_ok(GEMINI, body, &r);
	assert_int_equal(r.n_parts, 0);
	assert_int_equal(r.finish, DT_XFINISH_CONTENT_FILTER);
	assert_string_equal(emit_read(OPENAI, &r, &ctx).finish, "content_filter");
	assert_string_equal(emit_read(ANTHROPIC, &r, &ctx).finish, "refusal");
	dt_xresp_free(&r);
}

static void test_stop_sequence_kept_for_anthropic(void **state)
{
	static const char body[] =
		"{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
		"\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"###\"}";
	struct dt_xresponse r;
	char *out;

	(void)state;
	parse_ok(ANTHROPIC, body, &r);
	assert_string_equal(r.stop_sequence, "###");
	out = dt_xresp_emit(ANTHROPIC, &r, &ctx, NULL);
	assert_non_null(strstr(out, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"###\""));
	free(out);
	assert_string_equal(emit_read(OPENAI, &r, &ctx).finish, "stop");
	dt_xresp_free(&r);
}

static void test_arguments_that_are_no_object(void **state)
{
	static const char body[] =
		"{\"choices\":[{\"message\":{\"tool_calls\":["
		"{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}},"
		"{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":\"}},"
		"{\"id\":\"c\",\"function\":{\"name\":\"h\",\"arguments\":\"[1]\"}}]},"
		"\"finish_reason\":\"tool_calls\"}]}";
	struct dt_xresponse r;

	(void)state;
	parse_ok(OPENAI, body, &r);
	for (int to = ANTHROPIC; to <= GEMINI; to++) {
		struct summary m = emit_read(to, &r, &ctx);

		assert_int_equal(m.n_calls, 3);
		for (int i = 0; i < 3; i++)
			assert_string_equal(m.calls[i].args, "{}");
	}
	dt_xresp_free(&r);
}

static void test_text_escaped_for_every_family(void **state)
{
	static const char text[] = "q\" b\\ nl\n tab\t cr\r \x01\x1f del\x7f \xe2\x82\xac </script>";
	struct dt_xpart part = { .type = DT_XPART_TEXT, .text = text };
	struct dt_xresponse r = { .shape = OPENAI, .parts = &part, .n_parts = 1 };

	(void)state;
	for (int to = 0; to < 3; to++)
		assert_string_equal(emit_read(to, &r, &ctx).text, text);
}

static void test_bad_bodies_refused(void **state)
{
	static const struct {
		enum dt_family family;
		const char *body, *reason;
	} rows[] = {
		{ OPENAI, "{\"choices\":", "not JSON" },
		{ OPENAI, "[1]", "no choices" },
		{ OPENAI, "{\"choices\":[]}", "no choices" },
		{ OPENAI, "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\"}]}}]}", "no function name" },
		{ ANTHROPIC, "{\"type\":\"message\"}", "no content" },
		{ ANTHROPIC, "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}", "no name" },
		{ GEMINI, "[{\"candidates\":[]}]", "not a JSON object" },
		{ GEMINI, "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{}}]}}]}", "no name" },
		{ GEMINI, "", "not JSON" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dt_xresponse r;
		char err[256] = "";

		assert_int_equal(dt_xresp_parse(rows[i].family, rows[i].body, strlen(rows[i].body),
						&r, err, sizeof(err)), -1);
		assert_non_null(strstr(err, rows[i].reason));
		assert_int_equal(r.n_parts, 0); /* left empty: nothing to free */
		assert_null(r.arena.head);
		dt_xresp_free(&r); /* harmless after a failure */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_text_each_family),
		cmocka_unit_test(test_parse_tool_calls_each_family),
		cmocka_unit_test(test_text_every_pair),
		cmocka_unit_test(test_tool_calls_every_pair),
		cmocka_unit_test(test_model_and_created_fallbacks),
		cmocka_unit_test(test_finish_table_both_ways),
		cmocka_unit_test(test_finish_written_for_each_reason),
		cmocka_unit_test(test_usage_rules),
		cmocka_unit_test(test_gemini_blocked_prompt),
		cmocka_unit_test(test_stop_sequence_kept_for_anthropic),
		cmocka_unit_test(test_arguments_that_are_no_object),
		cmocka_unit_test(test_text_escaped_for_every_family),
		cmocka_unit_test(test_bad_bodies_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
