// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for reading a provider's HTTP/1.1 response (h1resp.c,
 * the own upstream client's parser). Input: byte 0 picks the piece size the
 * rest is fed in (1 to 64 bytes: heads and chunks split anywhere), whether
 * the request was HEAD, and whether a callback stops the reading; the rest
 * is what the provider sent, then the connection ends. Checked: the head
 * comes once and before any body byte, nothing is fed after the reader
 * stopped, no crash or leak.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1resp.h"

struct run {
	int heads;
	size_t body;
	bool stop_in_head, stop_in_body;
};

static bool on_head(void *ctx, int status, const struct dt_headers *h)
{
	struct run *r = ctx;

	if (r->heads++ || status < 200 || status > 999)
		abort();
	for (size_t i = 0; i < h->n; i++)
		if (!h->v[i].name[0] && !h->v[i].value)
			abort();
	return r->stop_in_head;
}

static bool on_body(void *ctx, const char *buf, size_t len)
{
	struct run *r = ctx;

	if (!r->heads || !len || !buf)
		abort();
	r->body += len;
	return r->stop_in_body && r->body > 16;
}

static const struct dt_h1resp_ops ops = { .head = on_head, .body = on_body };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = {0};
	struct dt_h1resp resp;
	enum dt_h1resp_state st = DT_H1RESP_MORE;
	size_t piece, off = 1;

	if (size < 1)
		return 0;
	piece = (data[0] & 0x3f) + 1;
	r.stop_in_head = data[0] & 0x40 && !(data[0] & 0x80);
	r.stop_in_body = data[0] & 0x80 && !(data[0] & 0x40);
	dt_h1resp_init(&resp, (data[0] & 0xc0) == 0xc0, &ops, &r);
	while (off < size && st == DT_H1RESP_MORE) {
		size_t n = size - off < piece ? size - off : piece, used;

		st = dt_h1resp_feed(&resp, (const char *)data + off, n, &used);
		if (used > n || (st == DT_H1RESP_MORE && used != n))
			abort();
		off += n;
	}
	if (st == DT_H1RESP_MORE)
		st = dt_h1resp_eof(&resp);
	if (st == DT_H1RESP_ERROR && !resp.error[0])
		abort();
	if (st == DT_H1RESP_COMPLETE && r.heads != 1)
		abort();
	dt_h1resp_free(&resp);
	return 0;
}
