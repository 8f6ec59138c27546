// SPDX-License-Identifier: MIT
/*
 * bench/xlate_cost: what translation costs the proxy, on one core, in
 * memory (no I/O).
 *
 *   request   a ~4 KB OpenAI chat request with three tools, a system prompt,
 *             a tool-call round trip in its history: parsed into the neutral
 *             form and emitted as Anthropic's and Gemini's request; next to it
 *             the passthrough path (the same-family failover: scan it, splice
 *             the new model in)
 *   stream    a 200-event stream of each family translated into every other
 *             client shape, fed as it would come off the wire (one read per
 *             event); next to it a same-family re-encoding (another model)
 *
 * Each figure is the median over blocks of the mean per operation in a
 * block, so a noisy neighbour in one block does not move it.
 *
 *   xlate_cost [--reps N] [--blocks N]
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "bench.h"
#include "json.h"
#include "xlate.h"

#define EVENTS 200

/* ---- the request ---------------------------------------------------------- */

static const char tool_fmt[] =
	"{\"type\":\"function\",\"function\":{\"name\":\"%s\",\"description\":\"%s\","
	"\"parameters\":{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\","
	"\"description\":\"What to look for\"},\"limit\":{\"type\":\"integer\",\"minimum\":1,"
	"\"maximum\":50},\"filters\":{\"type\":\"object\",\"properties\":{\"since\":{\"type\":"
	"\"string\",\"format\":\"date\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":"
	"\"string\"}}}}},\"required\":[\"query\"]}}}";

/* A request of about `size` bytes: the tools and history are fixed, the
 * user's question is padded to the size. */
static char *make_request(size_t size, size_t *len)
{
	static const char *const tools[][2] = {
		{ "search_docs", "Search the product documentation" },
		{ "lookup_order", "Find an order by its number or the customer's email" },
		{ "create_ticket", "Open a support ticket for a human to follow up" },
	};
	json_t *req = json_pack("{s:s, s:[], s:[], s:i, s:f, s:b}", "model", "gpt-4o-mini",
				"messages", "tools", "max_tokens", 512, "temperature", 0.2,
				"stream", 0);
	json_t *msgs = json_object_get(req, "messages"), *list = json_object_get(req, "tools");
	char buf[2048], *text, *pad;
	size_t have;

	for (size_t i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), tool_fmt, tools[i][0], tools[i][1]);
		json_array_append_new(list, json_loads(buf, 0, NULL));
	}
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content",
		"You are the support assistant of an online shop. Answer briefly, use the tools "
		"when an order or the documentation is involved, never invent order numbers."));
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content",
		"Where is my order 10442? It was supposed to arrive on Monday."));
	json_array_append_new(msgs, json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}",
		"role", "assistant", "content", "tool_calls", "id", "call_8f2a1c", "type", "function",
		"function", "name", "lookup_order", "arguments", "{\"query\":\"10442\"}"));
	json_array_append_new(msgs, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id",
		"call_8f2a1c", "content",
		"{\"order\":10442,\"status\":\"in transit\",\"carrier\":\"DHL\",\"eta\":\"2026-11-26\"}"));
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content",
		"Your order 10442 is in transit with DHL and should arrive on November 26."));
	text = json_dumps(req, JSON_COMPACT);
	have = strlen(text);
	free(text);
	pad = calloc(1, size > have + 64 ? size - have - 64 + 1 : 32);
	for (size_t i = 0; pad && i + 1 < (size > have + 64 ? size - have - 64 + 1 : 32); i++)
		pad[i] = "Could you also check the other order I placed last week? "[i % 57];
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", pad ? pad : "?"));
	free(pad);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	*len = strlen(text);
	return text;
}

struct req_case {
	const char *body;
	size_t len;
	enum dt_family to;
};

static void translate_request(const void *arg)
{
	const struct req_case *c = arg;
	struct dt_xrequest r;
	char err[256], *out;
	size_t n;

	if (dt_xreq_parse(DT_FAMILY_OPENAI, c->body, c->len, NULL, false, &r, err, sizeof(err))) {
		fprintf(stderr, "xlate_cost: the request does not parse: %s\n", err);
		exit(1);
	}
	out = dt_xreq_emit(c->to, &r, "target-model", &n, err, sizeof(err));
	if (!out) {
		fprintf(stderr, "xlate_cost: emit failed: %s\n", err);
		exit(1);
	}
	free(out);
	dt_xreq_free(&r);
}

/* What a same-family failover does to the body (exchange.c): the model read,
 * its value spliced, the rest copied as it is. */
static void rename_request(const void *arg)
{
	const struct req_case *c = arg;
	struct dt_arena a = {0};
	char err[128];
	const struct dt_json *doc = dt_json_parse(&a, c->body, c->len, err, sizeof(err));
	size_t n;
	char *out = doc ? dt_json_splice_str(c->body, c->len, doc, "model", "target-model", &n) : NULL;

	if (!out) {
		fprintf(stderr, "xlate_cost: the request could not be renamed\n");
		exit(1);
	}
	free(out);
	dt_arena_free(&a);
}

/* ---- the streams ---------------------------------------------------------- */

struct stream_case {
	enum dt_family from, to;
	char **events;          /* one wire read each */
	size_t *lens;
	size_t n;
};

static void add_event(struct stream_case *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_event(struct stream_case *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&c->events[c->n], fmt, ap);
	va_end(ap);
	if (n < 0)
		exit(1);
	c->lens[c->n++] = (size_t)n;
}

/* EVENTS wire events of family f: its preamble, text deltas, its ending. */
static void make_stream(struct stream_case *c, enum dt_family f)
{
	static const char *const words[] = { "The ", "order ", "10442 ", "is ", "on ", "its ", "way, ",
					     "expect ", "it ", "soon. " };
	size_t deltas;

	c->events = calloc(EVENTS + 8, sizeof(*c->events));
	c->lens = calloc(EVENTS + 8, sizeof(*c->lens));
	c->n = 0;
	switch (f) {
	case DT_FAMILY_ANTHROPIC:
		deltas = EVENTS - 5;
		add_event(c, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
			  "\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
			  "\"content\":[],\"model\":\"claude-haiku-4-5\",\"stop_reason\":null,"
			  "\"stop_sequence\":null,\"usage\":{\"input_tokens\":1024,\"output_tokens\":1}}}\n\n");
		add_event(c, "event: content_block_start\ndata: {\"type\":\"content_block_start\","
			  "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
		for (size_t i = 0; i < deltas; i++)
			add_event(c, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
				  "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n",
				  words[i % 10]);
		add_event(c, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
		add_event(c, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
			  "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%zu}}\n\n", deltas);
		add_event(c, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
		break;
	case DT_FAMILY_GEMINI:
		deltas = EVENTS - 1;
		for (size_t i = 0; i < deltas; i++)
			add_event(c, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}],"
				  "\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.0-flash\","
				  "\"responseId\":\"mcIwaf2lBKuHz7IPq5rX6A0\"}\r\n\r\n", words[i % 10]);
		add_event(c, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
			  "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1024,"
			  "\"candidatesTokenCount\":%zu,\"totalTokenCount\":%zu},\"modelVersion\":"
			  "\"gemini-2.0-flash\",\"responseId\":\"mcIwaf2lBKuHz7IPq5rX6A0\"}\r\n\r\n",
			  deltas, deltas + 1024);
		break;
	case DT_FAMILY_OPENAI:
	default:
		deltas = EVENTS - 4;
		add_event(c, "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":"
			  "\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"gpt-4o-mini\","
			  "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
			  "\"finish_reason\":null}]}\n\n");
		for (size_t i = 0; i < deltas; i++)
			add_event(c, "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":"
				  "\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"gpt-4o-mini\","
				  "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
				  words[i % 10]);
		add_event(c, "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":"
			  "\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"gpt-4o-mini\","
			  "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
		add_event(c, "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":"
			  "\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"gpt-4o-mini\","
			  "\"choices\":[],\"usage\":{\"prompt_tokens\":1024,\"completion_tokens\":%zu,"
			  "\"total_tokens\":%zu}}\n\n", deltas, deltas + 1024);
		add_event(c, "data: [DONE]\n\n");
		break;
	}
}

static void translate_stream(const void *arg)
{
	const struct stream_case *c = arg;
	struct dt_xctx ctx = { .client_model = "gpt-4o-mini", .now = 1764000000, .seed = 42 };
	struct dt_xstream *s = dt_xstream_new(c->from, c->to, &ctx);
	struct evbuffer *out = evbuffer_new();
	char err[256];

	if (!s || !out)
		exit(1);
	for (size_t i = 0; i < c->n; i++) {
		if (dt_xstream_feed(s, c->events[i], c->lens[i], out, err, sizeof(err))) {
			fprintf(stderr, "xlate_cost: stream feed failed: %s\n", err);
			exit(1);
		}
		/* the proxy sends each read's output on: drain as it would */
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	if (dt_xstream_finish(s, out, err, sizeof(err))) {
		fprintf(stderr, "xlate_cost: stream did not end well: %s\n", err);
		exit(1);
	}
	evbuffer_free(out);
	dt_xstream_free(s);
}

static const char *const family_names[] = { "openai", "anthropic", "gemini" };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "blocks", required_argument, NULL, 'b' },
		{ 0 },
	};
	int reps = 2000, blocks = 9, o;
	struct stream_case streams[3];
	struct req_case rc;
	double ns, worst_req = 0, worst_event = 0;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'r')
			reps = atoi(optarg);
		else if (o == 'b')
			blocks = atoi(optarg);
		else
			return 2;
	}
	if (reps < 1 || blocks < 1 || blocks > BENCH_MAX_BLOCKS) {
		fprintf(stderr, "xlate_cost: --reps >= 1, --blocks 1..%d\n", BENCH_MAX_BLOCKS);
		return 2;
	}
	rc.body = make_request(4096, &rc.len);
	printf("request: OpenAI chat, %zu bytes, 3 tools, a tool-call round trip in its history\n", rc.len);
	ns = bench_ns_per_op(rename_request, &rc, reps, blocks);
	printf("  passthrough (same family, model renamed)   %8.2f us\n", ns / 1000);
	for (enum dt_family to = DT_FAMILY_ANTHROPIC; to <= DT_FAMILY_GEMINI; to++) {
		rc.to = to;
		ns = bench_ns_per_op(translate_request, &rc, reps, blocks);
		printf("  translated to %-10s                  %8.2f us\n", family_names[to], ns / 1000);
		worst_req = ns > worst_req ? ns : worst_req;
	}
	printf("stream: %d events, one read each, output drained per read\n", EVENTS);
	for (int f = 0; f < 3; f++) {
		make_stream(&streams[f], (enum dt_family)f);
		for (int t = 0; t < 3; t++) {
			streams[f].from = (enum dt_family)f;
			streams[f].to = (enum dt_family)t;
			ns = bench_ns_per_op(translate_stream, &streams[f], reps / 20 ? reps / 20 : 1, blocks) /
			     (double)streams[f].n;
			printf("  %-9s -> %-9s %s %8.3f us/event\n", family_names[f], family_names[t],
			       f == t ? "(re-encoded)" : "            ", ns / 1000);
			if (f != t)
				worst_event = ns > worst_event ? ns : worst_event;
		}
	}
	printf("xlate_cost: request %.2f us (target < 20), event %.3f us (target < 2)\n",
	       worst_req / 1000, worst_event / 1000);
	for (int f = 0; f < 3; f++) {
		for (size_t i = 0; i < streams[f].n; i++)
			free(streams[f].events[i]);
		free(streams[f].events);
		free(streams[f].lens);
	}
	free((char *)rc.body);
	return 0;
}
