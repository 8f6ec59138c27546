// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the answer translators. Byte 0 picks the provider's
 * family and the client's (from = b % 3, to = b / 3 % 3; bit 7: the OpenAI
 * usage chunk asked for); the rest is the provider's stream, fed in pieces
 * whose sizes come from the data (the first byte of each piece, mod 64,
 * sets its size), then finished. The same bytes then go through
 * dt_xresp_parse and dt_xresp_emit as a non-streamed answer. Besides no
 * crash and no leak, what the client gets must parse: every event's data
 * and every body JSON ("[DONE]" aside).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "sse.h"
#include "xlate.h"

static int check_event(void *arg, const struct dt_sse_event *ev)
{
	json_t *v;

	(void)arg;
	if (strcmp(ev->data, "[DONE]") == 0)
		return 0;
	v = json_loadb(ev->data, ev->len, 0, NULL);
	if (!json_is_object(v))
		abort(); /* the translator wrote broken JSON */
	json_decref(v);
	return 0;
}

static void check_client_stream(struct evbuffer *out)
{
	struct dt_sse p;

	dt_sse_init(&p, SIZE_MAX);
	if (dt_sse_feed(&p, (const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out),
			check_event, NULL))
		abort();
	dt_sse_free(&p);
}

static void stream(enum dt_family from, enum dt_family to, const struct dt_xctx *ctx,
		   const uint8_t *data, size_t size)
{
	struct dt_xstream *s = dt_xstream_new(from, to, ctx);
	struct evbuffer *out = evbuffer_new();
	char err[256];
	int rc = 0;

	if (!s || !out)
		abort();
	while (size && !rc) {
		size_t n = 1 + data[0] % 64;

		if (n > size)
			n = size;
		rc = dt_xstream_feed(s, data, n, out, err, sizeof(err));
		data += n;
		size -= n;
	}
	if (!rc)
		dt_xstream_finish(s, out, err, sizeof(err));
	check_client_stream(out);
	dt_xstream_free(s);
	evbuffer_free(out);
}

static void answer(enum dt_family from, enum dt_family to, const struct dt_xctx *ctx,
		   const uint8_t *data, size_t size)
{
	struct dt_xresponse r;
	char err[256];
	json_t *v;
	char *body;
	size_t len;

	if (dt_xresp_parse(from, (const char *)data, size, &r, err, sizeof(err)))
		return;
	body = dt_xresp_emit(to, &r, ctx, &len);
	v = body ? json_loadb(body, len, 0, NULL) : NULL;
	if (!json_is_object(v))
		abort();
	json_decref(v);
	free(body);
	dt_xresp_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_xctx ctx = { .client_model = "m", .now = 1, .seed = 2 };
	enum dt_family from, to;

	if (size < 1)
		return 0;
	from = (enum dt_family)(data[0] % 3);
	to = (enum dt_family)(data[0] / 3 % 3);
	ctx.stream_usage = data[0] & 0x80;
	stream(from, to, &ctx, data + 1, size - 1);
	answer(from, to, &ctx, data + 1, size - 1);
	return 0;
}
