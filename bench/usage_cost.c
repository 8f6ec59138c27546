// SPDX-License-Identifier: MIT
/*
 * bench/usage_cost: what cost accounting adds to an answer, on one core, in
 * memory (no I/O).
 *
 *   meter     reading the usage of answers relayed as they are: a whole
 *             16 KB OpenAI answer scanned as it passes (one read); a
 *             200-event stream of each family fed one event per read; the
 *             OpenAI stream with the usage chunk taken out again (its bytes
 *             written to a buffer, as the proxy relays them)
 *   price     one lookup in the price list shipped with detour
 *             (data/prices.conf: a model near its end, and one it lacks)
 *   account   one answer added to a table of 50 rows
 *
 * Each figure is the median over blocks of the mean per operation in a
 * block, so a noisy neighbour in one block does not move it.
 *
 *   usage_cost [--reps N] [--blocks N] [--prices FILE]
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/buffer.h>

#include "bench.h"
#include "prices.h"
#include "spend.h"
#include "xlate.h"

#define EVENTS 200

/* ---- answers -------------------------------------------------------------- */

static char *answer_openai(size_t size)
{
	char *text = malloc(size + 512), *p = text;

	p += sprintf(p, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\","
		     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
	while ((size_t)(p - text) < size)
		p += sprintf(p, "The order is in transit and should arrive soon. ");
	sprintf(p, "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1200,"
		"\"completion_tokens\":3400,\"total_tokens\":4600,\"prompt_tokens_details\":"
		"{\"cached_tokens\":1024}}}");
	return text;
}

/* A stream of family f, its events one string each. */
static char **stream_events(enum dt_family f, size_t *n)
{
	char **ev = calloc(EVENTS + 3, sizeof(*ev));
	size_t k = 0;

	if (f == DT_FAMILY_ANTHROPIC)
		asprintf(&ev[k++], "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
			 "{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":120,\"cache_read_input_tokens\":1024,"
			 "\"output_tokens\":1}}}\n\n");
	for (int i = 0; i < EVENTS; i++) {
		if (f == DT_FAMILY_OPENAI)
			asprintf(&ev[k++], "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
				 "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
				 "\" word%d\"},\"finish_reason\":null}],\"usage\":null}\n\n", i);
		else if (f == DT_FAMILY_ANTHROPIC)
			asprintf(&ev[k++], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
				 "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word%d\"}}\n\n", i);
		else
			asprintf(&ev[k++], "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" word%d\"}],"
				 "\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1200}}\r\n\r\n",
				 i);
	}
	if (f == DT_FAMILY_OPENAI)
		asprintf(&ev[k++], "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":1200,"
			 "\"completion_tokens\":200,\"prompt_tokens_details\":{\"cached_tokens\":1024}}}\n\n"
			 "data: [DONE]\n\n");
	else if (f == DT_FAMILY_ANTHROPIC)
		asprintf(&ev[k++], "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
			 "{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":200}}\n\n");
	else
		asprintf(&ev[k++], "data: {\"candidates\":[{\"finishReason\":\"STOP\",\"index\":0}],"
			 "\"usageMetadata\":{\"promptTokenCount\":1200,\"candidatesTokenCount\":200,"
			 "\"cachedContentTokenCount\":1024}}\r\n\r\n");
	*n = k;
	return ev;
}

struct meter_case {
	enum dt_family f;
	bool sse, strip;
	char **parts;
	size_t n;
	struct evbuffer *out;
};

static void meter_answer(const void *arg)
{
	const struct meter_case *c = arg;
	struct dt_xmeter *m = dt_xmeter_new(c->f, c->sse, c->strip);

	for (size_t i = 0; i < c->n; i++)
		dt_xmeter_feed(m, c->parts[i], strlen(c->parts[i]), c->out);
	dt_xmeter_finish(m, c->out);
	if (!dt_xmeter_usage(m)->known)
		abort();
	dt_xmeter_free(m);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
}

/* ---- prices and accounting -------------------------------------------------- */

struct price_case {
	const struct dt_prices *t;
	const char *provider, *model;
	char *hosts[1];
	bool found;
};

static void price_lookup(const void *arg)
{
	const struct price_case *c = arg;
	struct dt_price p;

	if (dt_prices_find(c->t, c->provider, (char *const *)c->hosts, 1, c->model, &p) != c->found)
		abort();
}

struct account_case {
	struct dt_spend *s;
	struct dt_spend_key k;
	struct dt_xusage u;
	struct dt_price p;
};

static void account(const void *arg)
{
	const struct account_case *c = arg;

	dt_spend_add(c->s, &c->k, &c->u, &c->p);
}

static struct dt_prices *load_prices(const char *path)
{
	struct dt_prices *t = dt_prices_new();
	static char text[1 << 20];
	char err[512];
	FILE *f = fopen(path, "r");
	size_t len;

	if (!f || !t) {
		fprintf(stderr, "usage_cost: %s: cannot open\n", path);
		exit(1);
	}
	len = fread(text, 1, sizeof(text), f);
	fclose(f);
	if (dt_prices_parse(t, text, len, path, err, sizeof(err))) {
		fprintf(stderr, "usage_cost: %s\n", err);
		exit(1);
	}
	return t;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "prices", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "openai", "anthropic", "gemini" };
	int reps = 2000, blocks = 15, c;
	const char *prices_path = "data/prices.conf";
	struct evbuffer *out = evbuffer_new();
	char *whole = answer_openai(16 * 1024);
	struct meter_case whole_case = { DT_FAMILY_OPENAI, false, false, &whole, 1, out };
	double ns, stream_ns[3], strip_ns = 0;
	struct dt_prices *t;
	struct account_case ac = {
		.s = dt_spend_new(), .k = { "chat", "openai", "gpt-4o", "big" },
		.u = { .known = true, .input_tokens = 1200, .cached_input_tokens = 1024, .output_tokens = 200 },
		.p = { 2500000, 1250000, 2500000, 10000000 },
	};
	char model[32];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': reps = atoi(optarg); break;
		case 'b': blocks = atoi(optarg); break;
		case 'p': prices_path = optarg; break;
		default:
			fprintf(stderr, "usage: usage_cost [--reps N] [--blocks N] [--prices FILE]\n");
			return 2;
		}
	}
	if (reps < 1 || blocks < 1 || blocks > BENCH_MAX_BLOCKS) {
		fprintf(stderr, "usage_cost: --reps >= 1, --blocks 1..%d\n", BENCH_MAX_BLOCKS);
		return 2;
	}
	ns = bench_ns_per_op(meter_answer, &whole_case, reps, blocks);
	printf("meter  whole 16 KB OpenAI answer        %8.2f us  (%.0f ns/KB)\n", ns / 1000, ns / 16);
	for (int f = DT_FAMILY_OPENAI; f <= DT_FAMILY_GEMINI; f++) {
		struct meter_case sc = { (enum dt_family)f, true, false, NULL, 0, out };

		sc.parts = stream_events((enum dt_family)f, &sc.n);
		stream_ns[f] = bench_ns_per_op(meter_answer, &sc, reps / 10 + 1, blocks);
		printf("meter  %-9s stream, %d events       %8.2f us  (%.0f ns/event)\n", names[f], EVENTS,
		       stream_ns[f] / 1000, stream_ns[f] / EVENTS);
		if (f == DT_FAMILY_OPENAI) {
			sc.strip = true;
			strip_ns = bench_ns_per_op(meter_answer, &sc, reps / 10 + 1, blocks);
			printf("meter  openai    stream, usage stripped  %8.2f us  (%.0f ns/event)\n",
			       strip_ns / 1000, strip_ns / EVENTS);
		}
		for (size_t i = 0; i < sc.n; i++)
			free(sc.parts[i]);
		free(sc.parts);
	}
	t = load_prices(prices_path);
	struct price_case hit = { t, "openai", "o3-mini-2025-01-31", { "api.openai.com" }, true };
	struct price_case miss = { t, "openai", "no-such-model", { "api.openai.com" }, false };
	double hit_ns = bench_ns_per_op(price_lookup, &hit, reps * 10, blocks);
	double miss_ns = bench_ns_per_op(price_lookup, &miss, reps * 10, blocks);

	printf("price  lookup, %zu entries: hit %.0f ns, miss %.0f ns\n", dt_prices_count(t), hit_ns,
	       miss_ns);
	for (int i = 0; i < 50; i++) {
		snprintf(model, sizeof(model), "model-%d", i);
		dt_spend_add(ac.s, &(struct dt_spend_key){ "chat", "openai", model, "big" }, &ac.u, &ac.p);
	}
	double acc_ns = bench_ns_per_op(account, &ac, reps * 10, blocks);

	printf("account  one answer, 50 rows: %.0f ns\n", acc_ns);
	printf("usage_cost: whole 16KB %.1f us, stream/event openai %.0f anthropic %.0f gemini %.0f "
	       "stripped %.0f ns, price lookup %.0f ns, account %.0f ns\n",
	       ns / 1000, stream_ns[0] / EVENTS, stream_ns[1] / EVENTS, stream_ns[2] / EVENTS,
	       strip_ns / EVENTS, hit_ns, acc_ns);
	dt_prices_put(t);
	dt_spend_free(ac.s);
	evbuffer_free(out);
	free(whole);
	return 0;
}
