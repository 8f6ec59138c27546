// SPDX-License-Identifier: MIT
/* Streamed answers translated between OpenAI, Anthropic and Gemini: every
 * from -> to pair (text, tool calls, finish, usage, ids, model), any split
 * of the provider's bytes, keep-alives, errors, cut streams, bad JSON. The
 * client's bytes are read back by a small reference reader written from the
 * API references, independent of the translator's decoders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "sse.h"
#include "xlate.h"

#define OPENAI    DT_FAMILY_OPENAI
#define ANTHROPIC DT_FAMILY_ANTHROPIC
#define GEMINI    DT_FAMILY_GEMINI

static const struct dt_xctx ctx = {
	.client_model = "client-model", .now = 1700000000, .seed = 0xabc, .stream_usage = true,
};

/* ---- fixtures ------------------------------------------------------------ */

static const char *const text_fixture[] = { "openai_text", "anthropic_text", "gemini_text" };
static const char *const tools_fixture[] = { "openai_tools", "anthropic_tools", "gemini_tools" };

/* tests/fixtures/streams/<name>.sse, found from this file's path */
static char *fixture(const char *name, size_t *len)
{
	char path[512];
	const char *slash = strrchr(__FILE__, '/');
	FILE *f;
	char *text;
	long n;

	snprintf(path, sizeof(path), "%.*s/../fixtures/streams/%s.sse",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return text;
}

/* ---- running a translation ---------------------------------------------- */

struct run {
	char *out;
	size_t len;
	int feed_rc, finish_rc;
	size_t finish_bytes; /* what finish wrote */
	struct dt_xstream_info info;
	char err[256];
};

/* Feed in pieces of `piece` bytes, or in two at `cut`, or whole (both 0). */
static struct run translate_ctx(enum dt_family from, enum dt_family to, const struct dt_xctx *c,
				const char *in, size_t len, size_t cut, size_t piece)
{
	struct dt_xstream *s = dt_xstream_new(from, to, c);
	struct evbuffer *out = evbuffer_new();
	struct run r = { 0 };
	size_t before;

	assert_non_null(s);
	for (size_t off = 0; off < len && !r.feed_rc;) {
		size_t n = piece ? piece : cut && off < cut ? cut : len - off;

		if (n > len - off)
			n = len - off;
		r.feed_rc = dt_xstream_feed(s, in + off, n, out, r.err, sizeof(r.err));
		off += n;
	}
	before = evbuffer_get_length(out);
	if (!r.feed_rc)
		r.finish_rc = dt_xstream_finish(s, out, r.err, sizeof(r.err));
	r.finish_bytes = evbuffer_get_length(out) - before;
	r.info = *dt_xstream_info(s);
	r.len = evbuffer_get_length(out);
	r.out = calloc(1, r.len + 1);
	assert_non_null(r.out);
	evbuffer_remove(out, r.out, r.len);
	evbuffer_free(out);
	dt_xstream_free(s);
	return r;
}

static struct run translate(enum dt_family from, enum dt_family to, const char *in, size_t len)
{
	return translate_ctx(from, to, &ctx, in, len, 0, 0);
}

/* ---- the reference reader of the client's stream -------------------------- */

struct call {
	char id[64], name[64], args[256];
};

struct summary {
	enum dt_family family;
	char id[128], model[64], text[256], finish[32];
	struct call calls[4];
	size_t n_calls, blocks;
	bool usage, ended;
	int64_t in, out, cached;
};

static void cat(char *dst, size_t size, const char *s)
{
	strncat(dst, s, size - strlen(dst) - 1);
}

static void copy(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s ? s : "");
}

static int64_t num(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static struct call *new_call(struct summary *m, const char *id, const char *name)
{
	struct call *c;

	assert_true(m->n_calls < 4);
	c = &m->calls[m->n_calls++];
	copy(c->id, sizeof(c->id), id);
	copy(c->name, sizeof(c->name), name);
	return c;
}

static void read_openai(struct summary *m, const char *data, json_t *root)
{
	json_t *choices = json_object_get(root, "choices");
	json_t *choice = json_array_get(choices, 0);
	json_t *delta = json_object_get(choice, "delta");
	json_t *usage = json_object_get(root, "usage");
	size_t i;
	json_t *tc;

	assert_false(m->ended);
	assert_string_equal(json_string_value(json_object_get(root, "object")),
			    "chat.completion.chunk");
	assert_true(json_is_integer(json_object_get(root, "created")));
	copy(m->id, sizeof(m->id), json_string_value(json_object_get(root, "id")));
	copy(m->model, sizeof(m->model), json_string_value(json_object_get(root, "model")));
	if (json_array_size(choices) == 0) {
		assert_true(json_is_object(usage));
		m->usage = true;
		m->in = num(usage, "prompt_tokens");
		m->out = num(usage, "completion_tokens");
		m->cached = num(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
		assert_int_equal(num(usage, "total_tokens"), m->in + m->out);
		return;
	}
	if (json_string_value(json_object_get(delta, "content")))
		cat(m->text, sizeof(m->text), json_string_value(json_object_get(delta, "content")));
	json_array_foreach(json_object_get(delta, "tool_calls"), i, tc) {
		json_t *fn = json_object_get(tc, "function");
		size_t index = (size_t)num(tc, "index");

		if (index == m->n_calls) {
			assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
			new_call(m, json_string_value(json_object_get(tc, "id")),
				 json_string_value(json_object_get(fn, "name")));
		}
		assert_int_equal(index, m->n_calls - 1);
		cat(m->calls[index].args, sizeof(m->calls[index].args),
		    json_string_value(json_object_get(fn, "arguments")));
	}
	if (json_string_value(json_object_get(choice, "finish_reason")))
		copy(m->finish, sizeof(m->finish),
		     json_string_value(json_object_get(choice, "finish_reason")));
	(void)data;
}

static void read_anthropic_usage(struct summary *m, const json_t *u)
{
	m->usage = true;
	m->in = num(u, "input_tokens") + num(u, "cache_read_input_tokens") +
		num(u, "cache_creation_input_tokens");
	m->cached = num(u, "cache_read_input_tokens");
	m->out = num(u, "output_tokens");
}

static void read_anthropic(struct summary *m, const char *type, json_t *root)
{
	json_t *delta = json_object_get(root, "delta");
	json_t *block = json_object_get(root, "content_block");

	assert_false(m->ended);
	assert_string_equal(json_string_value(json_object_get(root, "type")), type);
	if (strcmp(type, "message_start") == 0) {
		json_t *msg = json_object_get(root, "message");

		assert_string_equal(json_string_value(json_object_get(msg, "type")), "message");
		assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
		assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
		copy(m->id, sizeof(m->id), json_string_value(json_object_get(msg, "id")));
		copy(m->model, sizeof(m->model), json_string_value(json_object_get(msg, "model")));
		read_anthropic_usage(m, json_object_get(msg, "usage"));
	} else if (strcmp(type, "content_block_start") == 0) {
		const char *btype = json_string_value(json_object_get(block, "type"));

		assert_int_equal(num(root, "index"), m->blocks++);
		if (strcmp(btype, "tool_use") == 0)
			new_call(m, json_string_value(json_object_get(block, "id")),
				 json_string_value(json_object_get(block, "name")));
		else
			assert_string_equal(btype, "text");
	} else if (strcmp(type, "content_block_delta") == 0) {
		const char *dtype = json_string_value(json_object_get(delta, "type"));

		assert_int_equal(num(root, "index"), m->blocks - 1);
		if (strcmp(dtype, "text_delta") == 0)
			cat(m->text, sizeof(m->text), json_string_value(json_object_get(delta, "text")));
		else
			cat(m->calls[m->n_calls - 1].args, sizeof(m->calls[0].args),
			    json_string_value(json_object_get(delta, "partial_json")));
	} else if (strcmp(type, "content_block_stop") == 0) {
		assert_int_equal(num(root, "index"), m->blocks - 1);
	} else if (strcmp(type, "message_delta") == 0) {
		copy(m->finish, sizeof(m->finish),
		     json_string_value(json_object_get(delta, "stop_reason")));
		read_anthropic_usage(m, json_object_get(root, "usage"));
	} else {
		assert_string_equal(type, "message_stop");
		m->ended = true;
	}
}

static void read_gemini(struct summary *m, json_t *root)
{
	json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
	json_t *usage = json_object_get(root, "usageMetadata");
	size_t i;
	json_t *part;

	assert_false(m->ended);
	copy(m->id, sizeof(m->id), json_string_value(json_object_get(root, "responseId")));
	copy(m->model, sizeof(m->model), json_string_value(json_object_get(root, "modelVersion")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(cand, "content"),
							      "role")), "model");
	json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part) {
		json_t *fn = json_object_get(part, "functionCall");

		if (fn) {
			char *args = json_dumps(json_object_get(fn, "args"), JSON_COMPACT);
			struct call *c = new_call(m, json_string_value(json_object_get(fn, "id")),
						  json_string_value(json_object_get(fn, "name")));

			assert_non_null(args);
			copy(c->args, sizeof(c->args), args);
			free(args);
		} else {
			cat(m->text, sizeof(m->text), json_string_value(json_object_get(part, "text")));
		}
	}
	if (json_object_get(cand, "finishReason")) {
		copy(m->finish, sizeof(m->finish),
		     json_string_value(json_object_get(cand, "finishReason")));
		m->ended = true; /* the last chunk */
	}
	if (usage) {
		m->usage = true;
		m->in = num(usage, "promptTokenCount");
		m->out = num(usage, "candidatesTokenCount");
		m->cached = num(usage, "cachedContentTokenCount");
		assert_int_equal(num(usage, "totalTokenCount"), m->in + m->out);
	}
}

static int read_event(void *arg, const struct dt_sse_event *e)
{
	struct summary *m = arg;
	json_t *root;

	if (m->family == OPENAI && strcmp(e->data, "[DONE]") == 0) {
		assert_false(m->ended);
		m->ended = true;
		return 0;
	}
	root = json_loadb(e->data, e->len, 0, NULL);
	assert_non_null(root);
	if (m->family == OPENAI)
		read_openai(m, e->data, root);
	else if (m->family == ANTHROPIC)
		read_anthropic(m, e->type, root);
	else
		read_gemini(m, root);
	json_decref(root);
	return 0;
}

/* Arguments compared as JSON, whatever their spacing. */
static void normalize_args(struct call *c)
{
	json_t *v = json_loads(c->args, 0, NULL);
	char *text;

	assert_non_null(v);
	text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	copy(c->args, sizeof(c->args), text);
	free(text);
	json_decref(v);
}

static struct summary summarize(enum dt_family family, const struct run *r)
{
	struct summary m = { .family = family };
	struct dt_sse p;

	dt_sse_init(&p, 1 << 20);
	assert_int_equal(dt_sse_feed(&p, r->out, r->len, read_event, &m), 0);
	dt_sse_free(&p);
	for (size_t i = 0; i < m.n_calls; i++)
		normalize_args(&m.calls[i]);
	return m;
}

/* ---- every pair ------------------------------------------------------------ */

static const char *const provider_text_id[] = {
	"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
	"mHGaZ8uWKM6mmtkPkZ6F2AE",
};
static const char *const provider_tools_id[] = {
	"chatcmpl-tool1", "msg_014p7gG3wDgGV9EUtLvnow3U", "tool-resp-1",
};
static const char *const made_id[] = {
	"chatcmpl-0000000000000abc", "msg_0000000000000abc", "0000000000000abc",
};
/* the fixtures' tool-call ids; Gemini gives none */
static const char *const provider_call_id[][2] = {
	{ "call_DdmO9pD3xa9XTPNJ32zg2hcA", "call_2" },
	{ "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "toolu_2" },
	{ NULL, NULL },
};
static const char *const made_call_id[][2] = {
	{ "call_0000000000000abc_0", "call_0000000000000abc_1" },
	{ "toolu_0000000000000abc_0", "toolu_0000000000000abc_1" },
	{ "", "" },
};
static const char *const length_name[] = { "length", "max_tokens", "MAX_TOKENS" };
static const char *const tools_name[] = { "tool_calls", "tool_use", "STOP" };

static void test_text_every_pair(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		size_t len;
		char *in = fixture(text_fixture[from], &len);

		for (int to = 0; to < 3; to++) {
			struct run r = translate(from, to, in, len);
			struct summary m = summarize(to, &r);

			assert_int_equal(r.feed_rc, 0);
			assert_int_equal(r.finish_rc, 0);
			assert_true(m.ended);
			assert_string_equal(m.text, "Hello, \"w\xc3\xb6rld\"\n");
			assert_int_equal(m.n_calls, 0);
			assert_string_equal(m.finish, length_name[to]);
			assert_true(m.usage);
			assert_int_equal(m.in, 19);
			assert_int_equal(m.out, 10);
			assert_int_equal(m.cached, 4);
			assert_string_equal(m.model, "client-model");
			assert_string_equal(m.id, from == to ? provider_text_id[from] : made_id[to]);
			/* what the stream carried */
			assert_true(r.info.complete);
			assert_false(r.info.failed);
			assert_true(r.info.content);
			assert_int_equal(r.info.text_bytes, 16);
			assert_int_equal(r.info.tool_calls, 0);
			assert_int_equal(r.info.finish, DT_XFINISH_LENGTH);
			assert_true(r.info.usage.known);
			assert_int_equal(r.info.usage.input_tokens, 19);
			assert_int_equal(r.info.usage.output_tokens, 10);
			assert_int_equal(r.info.usage.cached_input_tokens, 4);
			free(r.out);
		}
		free(in);
	}
}

static void test_tool_calls_every_pair(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		size_t len;
		char *in = fixture(tools_fixture[from], &len);

		for (int to = 0; to < 3; to++) {
			struct run r = translate(from, to, in, len);
			struct summary m = summarize(to, &r);

			assert_int_equal(r.feed_rc, 0);
			assert_int_equal(r.finish_rc, 0);
			assert_true(m.ended);
			assert_string_equal(m.text, "");
			assert_int_equal(m.n_calls, 2);
			assert_string_equal(m.calls[0].name, "get_weather");
			assert_string_equal(m.calls[0].args, "{\"location\":\"Paris\"}");
			assert_string_equal(m.calls[1].name, "get_time");
			assert_string_equal(m.calls[1].args, "{\"tz\":\"CET\"}");
			for (int i = 0; i < 2; i++)
				assert_string_equal(m.calls[i].id, provider_call_id[from][i] ?
						    provider_call_id[from][i] : made_call_id[to][i]);
			assert_string_equal(m.finish, tools_name[to]);
			assert_int_equal(m.in, 80);
			assert_int_equal(m.out, 30);
			assert_string_equal(m.id, from == to ? provider_tools_id[from] : made_id[to]);
			assert_int_equal(r.info.tool_calls, 2);
			assert_int_equal(r.info.finish, DT_XFINISH_TOOL_CALLS);
			free(r.out);
		}
		free(in);
	}
}

/* ---- any split --------------------------------------------------------------- */

static void assert_same_at_every_split(enum dt_family from, const char *name)
{
	size_t len;
	char *in = fixture(name, &len);

	for (int to = 0; to < 3; to++) {
		struct run whole = translate(from, to, in, len);
		struct run bytes = translate_ctx(from, to, &ctx, in, len, 0, 1);

		assert_int_equal(whole.finish_rc, 0);
		assert_int_equal(bytes.finish_rc, 0);
		assert_int_equal(bytes.len, whole.len);
		assert_memory_equal(bytes.out, whole.out, whole.len);
		free(bytes.out);
		for (size_t cut = 1; cut < len; cut++) {
			struct run split = translate_ctx(from, to, &ctx, in, len, cut, 0);

			assert_int_equal(split.finish_rc, 0);
			assert_int_equal(split.len, whole.len);
			assert_memory_equal(split.out, whole.out, whole.len);
			free(split.out);
		}
		free(whole.out);
	}
	free(in);
}

static void test_every_split_gives_the_same_bytes(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		assert_same_at_every_split(from, text_fixture[from]);
		assert_same_at_every_split(from, tools_fixture[from]);
	}
}

/* ---- the exact bytes, checked against the API references -------------------- */

static void assert_output(enum dt_family from, enum dt_family to, const char *name,
			  const char *want)
{
	size_t len;
	char *in = fixture(name, &len);
	struct run r = translate(from, to, in, len);

	assert_int_equal(r.finish_rc, 0);
	assert_string_equal(r.out, want);
	free(r.out);
	free(in);
}

static void test_openai_text_to_anthropic_bytes(void **state)
{
	(void)state;
	assert_output(OPENAI, ANTHROPIC, "openai_text",
		"event: message_start\n"
		"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_0000000000000abc\","
		"\"type\":\"message\",\"role\":\"assistant\",\"model\":\"client-model\",\"content\":[],"
		"\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
		"\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n"
		"event: content_block_start\n"
		"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
		"\"text\":\", \\\"w\xc3\xb6rld\\\"\\n\"}}\n\n"
		"event: content_block_stop\n"
		"data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
		"event: message_delta\n"
		"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},"
		"\"usage\":{\"input_tokens\":15,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":4,"
		"\"output_tokens\":10}}\n\n"
		"event: message_stop\n"
		"data: {\"type\":\"message_stop\"}\n\n");
}

#define CHUNK "data: {\"id\":\"chatcmpl-0000000000000abc\",\"object\":\"chat.completion.chunk\"," \
	"\"created\":1700000000,\"model\":\"client-model\",\"choices\":"

static void test_gemini_tools_to_openai_bytes(void **state)
{
	(void)state;
	assert_output(GEMINI, OPENAI, "gemini_tools",
		CHUNK "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
		CHUNK "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_0000000000000abc_0\","
		"\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
		CHUNK "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		"\"{\\\"location\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
		CHUNK "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_0000000000000abc_1\","
		"\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
		CHUNK "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":"
		"\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
		CHUNK "[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		CHUNK "[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":30,\"total_tokens\":110,"
		"\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n"
		"data: [DONE]\n\n");
}

static void test_anthropic_tools_to_gemini_bytes(void **state)
{
	(void)state;
	assert_output(ANTHROPIC, GEMINI, "anthropic_tools",
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\","
		"\"name\":\"get_weather\",\"args\":{\"location\":\"Paris\"}}}],\"role\":\"model\"},\"index\":0}],"
		"\"modelVersion\":\"client-model\",\"responseId\":\"0000000000000abc\"}\n\n"
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"toolu_2\","
		"\"name\":\"get_time\",\"args\":{\"tz\":\"CET\"}}}],\"role\":\"model\"},\"index\":0}],"
		"\"modelVersion\":\"client-model\",\"responseId\":\"0000000000000abc\"}\n\n"
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
		"\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":80,"
		"\"candidatesTokenCount\":30,\"totalTokenCount\":110},"
		"\"modelVersion\":\"client-model\",\"responseId\":\"0000000000000abc\"}\n\n");
}

/* ---- rules shown on small streams ------------------------------------------- */

static struct summary run_text(enum dt_family from, enum dt_family to, const char *in,
			       struct run *r)
{
	*r = translate(from, to, in, strlen(in));
	return summarize(to, r);
}

static void test_usage_chunk_only_when_asked(void **state)
{
	struct dt_xctx quiet = ctx;
	size_t len;
	char *in = fixture("openai_text", &len);

	(void)state;
	quiet.stream_usage = false;
	for (int from = 0; from < 3; from++) {
		char *src = from == OPENAI ? in : fixture(text_fixture[from], &len);
		struct run r = translate_ctx(from, OPENAI, &quiet, src, len, 0, 0);
		struct summary m = summarize(OPENAI, &r);

		assert_int_equal(r.finish_rc, 0);
		assert_true(m.ended);
		assert_false(m.usage);
		assert_null(strstr(r.out, "usage"));
		assert_true(r.info.usage.known); /* still known to detour */
		free(r.out);
		if (src != in)
			free(src);
	}
	free(in);
}

static void test_anthropic_stop_sequence_and_cache_writes(void **state)
{
	static const char in[] =
		"event: message_start\n"
		"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\","
		"\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":6,"
		"\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n"
		"event: content_block_start\n"
		"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"a\"}}\n\n"
		"event: content_block_stop\n"
		"data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
		"event: message_delta\n"
		"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\","
		"\"stop_sequence\":\"###\"},\"usage\":{\"output_tokens\":7}}\n\n"
		"event: message_stop\n"
		"data: {\"type\":\"message_stop\"}\n\n";
	static const char *const names[] = { "stop", "stop_sequence", "STOP" };
	struct run r;

	(void)state;
	for (int to = 0; to < 3; to++) {
		struct summary m = run_text(ANTHROPIC, to, in, &r);

		assert_string_equal(m.text, "a");
		assert_string_equal(m.finish, names[to]);
		assert_int_equal(m.in, 19);
		assert_int_equal(m.cached, 3);
		assert_int_equal(m.out, 7);
		assert_int_equal(r.info.finish, DT_XFINISH_STOP_SEQUENCE);
		assert_int_equal(r.info.usage.cache_write_tokens, 6);
		if (to == ANTHROPIC) {
			assert_non_null(strstr(r.out, "\"stop_sequence\":\"###\""));
			assert_non_null(strstr(r.out, "\"cache_creation_input_tokens\":6"));
			assert_non_null(strstr(r.out, "\"input_tokens\":10,"));
		}
		free(r.out);
	}
}

static void test_gemini_safety_several_parts_and_thoughts(void **state)
{
	static const char in[] =
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true},"
		"{\"text\":\"a\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"text\":\"b\"}],"
		"\"role\":\"model\"},\"finishReason\":\"SAFETY\",\"index\":0}],"
		"\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2,"
		"\"thoughtsTokenCount\":3,\"totalTokenCount\":10}}\r\n\r\n";
	static const char *const names[] = { "content_filter", "refusal", "SAFETY" };
	struct run r;

	(void)state;
	for (int to = 0; to < 3; to++) {
		struct summary m = run_text(GEMINI, to, in, &r);

		assert_string_equal(m.text, "ab");
		assert_int_equal(m.n_calls, 1);
		assert_string_equal(m.calls[0].name, "f");
		assert_string_equal(m.calls[0].args, "{}");
		assert_string_equal(m.finish, names[to]);
		assert_int_equal(m.in, 5);
		assert_int_equal(m.out, 5); /* thoughts are output */
		free(r.out);
	}
	/* an Anthropic client sees text, tool, text as three blocks in order */
	run_text(GEMINI, ANTHROPIC, in, &r);
	assert_non_null(strstr(r.out, "\"index\":2,\"content_block\":{\"type\":\"text\""));
	free(r.out);
}

static void test_gemini_stop_with_calls_is_tool_calls(void **state)
{
	static const char in[] =
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"g1\",\"name\":\"f\","
		"\"args\":{\"x\":1}}}],\"role\":\"model\"},\"index\":0}]}\n\n"
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
		"\"finishReason\":\"STOP\",\"index\":0}]}\n\n";
	struct run r;
	struct summary m = run_text(GEMINI, OPENAI, in, &r);

	(void)state;
	assert_string_equal(m.finish, "tool_calls");
	assert_string_equal(m.calls[0].id, "g1"); /* Gemini's optional id is kept */
	assert_false(m.usage);                    /* none given, none made up */
	free(r.out);
	m = run_text(GEMINI, GEMINI, in, &r);
	assert_string_equal(m.finish, "STOP");
	assert_string_equal(m.calls[0].id, "g1");
	free(r.out);
}

static void test_openai_compatible_calls_all_numbered_zero(void **state)
{
	static const char in[] =
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
		"\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n"
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"b\","
		"\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"y\\\":2}\"}}]}}]}\n\n"
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		"data: [DONE]\n\n";
	struct run r;
	struct summary m = run_text(OPENAI, ANTHROPIC, in, &r);

	(void)state;
	assert_int_equal(m.n_calls, 2);
	assert_string_equal(m.calls[0].id, "a");
	assert_string_equal(m.calls[1].id, "b");
	assert_string_equal(m.calls[1].args, "{\"y\":2}");
	assert_string_equal(m.finish, "tool_use");
	free(r.out);
}

static void test_openai_refusal_is_text(void **state)
{
	static const char in[] =
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't\"}}]}\n\n"
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
		"data: [DONE]\n\n";
	struct run r;
	struct summary m = run_text(OPENAI, GEMINI, in, &r);

	(void)state;
	assert_string_equal(m.text, "I can't");
	assert_string_equal(m.finish, "STOP");
	free(r.out);
}

/* ---- keep-alives, pings, what comes after the end ------------------------------ */

/* The fixture with a comment after every event. */
static char *with_keepalives(const char *in, size_t len, size_t *out_len)
{
	static const char ka[] = ": keep-alive\n\n: OPENROUTER PROCESSING\n\n";
	char *out = malloc(len * 4 + sizeof(ka));
	size_t n = 0;

	assert_non_null(out);
	memcpy(out, ka, sizeof(ka) - 1);
	n = sizeof(ka) - 1;
	for (size_t i = 0; i < len; i++) {
		out[n++] = in[i];
		if (i && in[i] == '\n' && in[i - 1] == '\n') {
			memcpy(out + n, ka, sizeof(ka) - 1);
			n += sizeof(ka) - 1;
		}
	}
	*out_len = n;
	return out;
}

static void test_keepalives_change_nothing(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		size_t len, ka_len;
		char *in = fixture(text_fixture[from], &len);
		char *ka = with_keepalives(in, len, &ka_len);

		for (int to = 0; to < 3; to++) {
			struct run plain = translate(from, to, in, len);
			struct run kept = translate(from, to, ka, ka_len);

			assert_int_equal(kept.finish_rc, 0);
			assert_string_equal(kept.out, plain.out);
			free(plain.out);
			free(kept.out);
		}
		free(ka);
		free(in);
	}
}

static void test_anthropic_pings_dropped(void **state)
{
	size_t len;
	char *in = fixture("anthropic_text", &len);
	struct run r = translate(ANTHROPIC, ANTHROPIC, in, len);

	(void)state;
	assert_non_null(strstr(in, "event: ping"));
	assert_null(strstr(r.out, "ping"));
	free(r.out);
	free(in);
}

static void test_nothing_after_the_end(void **state)
{
	static const char in[] =
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n"
		"data: [DONE]\n\n"
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n";
	struct run r;
	struct summary m = run_text(OPENAI, OPENAI, in, &r);

	(void)state;
	assert_int_equal(r.finish_rc, 0);
	assert_string_equal(m.text, "a");
	assert_int_equal(r.finish_bytes, 0); /* the closing events went out at [DONE] */
	free(r.out);
}

/* ---- failures ------------------------------------------------------------------ */

static void assert_fails(enum dt_family from, const char *in, const char *reason)
{
	for (int to = 0; to < 3; to++) {
		struct dt_xstream *s = dt_xstream_new(from, to, &ctx);
		struct evbuffer *out = evbuffer_new();
		char err[256] = "";

		assert_int_equal(dt_xstream_feed(s, in, strlen(in), out, err, sizeof(err)), -1);
		assert_non_null(strstr(err, reason));
		assert_true(dt_xstream_info(s)->failed);
		assert_int_equal(dt_xstream_feed(s, "\n\n", 2, out, err, sizeof(err)), -1);
		evbuffer_drain(out, evbuffer_get_length(out));
		assert_int_equal(dt_xstream_finish(s, out, err, sizeof(err)), -1);
		assert_int_equal(evbuffer_get_length(out), 0);
		evbuffer_free(out);
		dt_xstream_free(s);
	}
}

static void test_provider_error_events_fail(void **state)
{
	(void)state;
	assert_fails(ANTHROPIC,
		     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n"
		     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
		     "\"message\":\"Overloaded\"}}\n\n", "Overloaded");
	assert_fails(OPENAI,
		     "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
		     "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", "boom");
	assert_fails(GEMINI,
		     "data: {\"error\":{\"code\":500,\"message\":\"internal\",\"status\":\"INTERNAL\"}}\n\n",
		     "internal");
}

static void test_malformed_events_fail(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		assert_fails(from, "data: {\"id\":\"x\",\"choices\":[\n\n", "malformed");
		assert_fails(from, "data: [1, 2]\n\n", "not an object");
		assert_fails(from, "data: nonsense\n\n", "malformed");
	}
	assert_fails(ANTHROPIC, "event: message_start\ndata: \n\n", "malformed");
}

static void test_event_over_a_mebibyte_fails(void **state)
{
	size_t len = (1u << 20) + 100;
	char *big = malloc(len + 3);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', len);
	memcpy(big, "data: ", 6);
	strcpy(big + len, "\n\n");
	assert_fails(OPENAI, big, "over");
	free(big);
}

/* EOF anywhere before the proper end: finish fails and writes nothing. */
static void test_cut_streams_are_incomplete(void **state)
{
	(void)state;
	for (int from = 0; from < 3; from++) {
		for (int kind = 0; kind < 2; kind++) {
			size_t len;
			char *in = fixture(kind ? tools_fixture[from] : text_fixture[from], &len);
			/* the last event's start: everything before it is a cut stream */
			char *last = in + len - 3;

			while (last > in && !(last[-1] == '\n' && (last[-2] == '\n' || last[-2] == '\r')))
				last--;
			for (int to = 0; to < 3; to++) {
				for (size_t cut = 0; cut < (size_t)(last - in); cut += 7) {
					struct run r = translate(from, to, in, cut);

					assert_int_equal(r.feed_rc, 0);
					assert_int_equal(r.finish_rc, -1);
					assert_int_equal(r.finish_bytes, 0);
					assert_false(r.info.complete);
					assert_non_null(strstr(r.err, "ended before"));
					free(r.out);
				}
			}
			free(in);
		}
	}
}

static void test_gemini_needs_a_finish_before_eof(void **state)
{
	static const char in[] =
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}],\"role\":\"model\"},\"index\":0}]}\n\n";
	struct run r = translate(GEMINI, OPENAI, in, strlen(in));

	(void)state;
	assert_int_equal(r.feed_rc, 0);
	assert_int_equal(r.finish_rc, -1);
	assert_false(r.info.complete);
	assert_true(r.info.content);
	free(r.out);
}

static void test_bad_families_refused(void **state)
{
	(void)state;
	assert_null(dt_xstream_new((enum dt_family)3, OPENAI, &ctx));
	assert_null(dt_xstream_new(OPENAI, (enum dt_family)7, &ctx));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_every_pair),
		cmocka_unit_test(test_tool_calls_every_pair),
		cmocka_unit_test(test_every_split_gives_the_same_bytes),
		cmocka_unit_test(test_openai_text_to_anthropic_bytes),
		cmocka_unit_test(test_gemini_tools_to_openai_bytes),
		cmocka_unit_test(test_anthropic_tools_to_gemini_bytes),
		cmocka_unit_test(test_usage_chunk_only_when_asked),
		cmocka_unit_test(test_anthropic_stop_sequence_and_cache_writes),
		cmocka_unit_test(test_gemini_safety_several_parts_and_thoughts),
		cmocka_unit_test(test_gemini_stop_with_calls_is_tool_calls),
		cmocka_unit_test(test_openai_compatible_calls_all_numbered_zero),
		cmocka_unit_test(test_openai_refusal_is_text),
		cmocka_unit_test(test_keepalives_change_nothing),
		cmocka_unit_test(test_anthropic_pings_dropped),
		cmocka_unit_test(test_nothing_after_the_end),
		cmocka_unit_test(test_provider_error_events_fail),
		cmocka_unit_test(test_malformed_events_fail),
		cmocka_unit_test(test_event_over_a_mebibyte_fails),
		cmocka_unit_test(test_cut_streams_are_incomplete),
		cmocka_unit_test(test_gemini_needs_a_finish_before_eof),
		cmocka_unit_test(test_bad_families_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
