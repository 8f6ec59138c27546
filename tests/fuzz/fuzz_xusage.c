// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the usage of relayed answers (agent/xusage.c) and
 * the request asking for it (dt_xreq_ask_stream_usage): any bytes, whole
 * JSON or SSE, of each family, with and without the strip. Split anywhere,
 * the meter reads the same usage and a stripping meter writes the same
 * bytes; a stream naming no usage is written exactly as it came. A JSON
 * object request changed to ask for the usage chunk is still one object,
 * asking for it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "json.h"
#include "xlate.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The meter's usage and output, data fed in pieces of piece bytes. */
static struct dt_xusage meter(enum dt_family f, bool sse, bool strip, const char *data,
			      size_t size, size_t piece, struct evbuffer *out)
{
	struct dt_xmeter *m = dt_xmeter_new(f, sse, strip);
	struct dt_xusage u;

	if (!m)
		abort();
	for (size_t at = 0; at < size; at += piece)
		check(dt_xmeter_feed(m, data + at, size - at < piece ? size - at : piece, out) == 0);
	check(dt_xmeter_finish(m, out) == 0);
	u = *dt_xmeter_usage(m);
	dt_xmeter_free(m);
	return u;
}

static bool same_usage(const struct dt_xusage *a, const struct dt_xusage *b)
{
	return a->known == b->known && a->input_tokens == b->input_tokens &&
	       a->output_tokens == b->output_tokens && a->cached_input_tokens == b->cached_input_tokens &&
	       a->cache_write_tokens == b->cache_write_tokens;
}

static void check_request(const char *data, size_t size)
{
	struct dt_arena a = {0}, b = {0};
	char err[128], *out;
	const struct dt_json *root = dt_json_parse(&a, data, size, err, sizeof(err)), *changed;
	size_t len;

	if (!root || root->type != DT_JSON_OBJECT) {
		dt_arena_free(&a);
		return;
	}
	out = dt_xreq_ask_stream_usage(data, size, root, &len);
	if (out) {
		changed = dt_json_parse(&b, out, len, err, sizeof(err));
		check(changed && changed->type == DT_JSON_OBJECT);
		check(dt_json_get_true(dt_json_get(changed, "stream_options"), "include_usage"));
		free(out);
	}
	dt_arena_free(&a);
	dt_arena_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	const char *data = (const char *)bytes;
	size_t piece = size ? 1 + bytes[0] % 7 : 1;

	for (int f = DT_FAMILY_OPENAI; f <= DT_FAMILY_GEMINI; f++) {
		for (int mode = 0; mode < 3; mode++) {
			bool sse = mode > 0, strip = mode == 2;
			struct evbuffer *whole = evbuffer_new(), *split = evbuffer_new();
			struct dt_xusage u1, u2;
			size_t n;

			if (!whole || !split)
				abort();
			u1 = meter((enum dt_family)f, sse, strip, data, size, size ? size : 1, whole);
			u2 = meter((enum dt_family)f, sse, strip, data, size, piece, split);
			check(same_usage(&u1, &u2));
			n = evbuffer_get_length(whole);
			check(n == evbuffer_get_length(split));
			check(n == 0 || memcmp(evbuffer_pullup(whole, -1), evbuffer_pullup(split, -1), n) == 0);
			if (strip && f == DT_FAMILY_OPENAI && !memmem(data, size, "usage", 5))
				check(n == size && (n == 0 || memcmp(evbuffer_pullup(whole, -1), data, n) == 0));
			if (!strip || f != DT_FAMILY_OPENAI)
				check(n == 0);
			evbuffer_free(whole);
			evbuffer_free(split);
		}
	}
	check_request(data, size);
	return 0;
}
