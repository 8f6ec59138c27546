// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for reading a provider's HTTP/1.1 response (h1resp.c,
 * the own upstream client's parser). Input: byte 0 picks the piece size the
 * rest is fed in (1 to 64 bytes: heads and chunks split anywhere), whether
 * the request was HEAD, and whether a callback stops the reading; the rest
 * is what the provider sent, then the connection ends. Checked: the head
 * comes once and before any body byte, nothing is fed after the reader
 * stopped, no crash or leak, and the head read in pieces (each in a buffer
 * of its own, freed after its feed: a field kept pointing into the bytes
 * fed is caught) is the head read whole.
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
	char *head;             /* the head seen: "status\nname\0value\0..." */
	size_t head_len;
};

static void keep(struct run *r, const char *s, size_t n)
{
	char *head = realloc(r->head, r->head_len + n);

	if (!head)
		abort();
	memcpy(head + r->head_len, s, n);
	r->head = head;
	r->head_len += n;
}

static bool on_head(void *ctx, int status, const struct dt_headers *h)
{
	struct run *r = ctx;
	char code[8];

	if (r->heads++ || status < 200 || status > 999)
		abort();
	code[0] = (char)('0' + status / 100);
	code[1] = (char)('0' + status / 10 % 10);
	code[2] = (char)('0' + status % 10);
	keep(r, code, 3);
	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].name[0] && !h->v[i].value)
			abort();
		keep(r, h->v[i].name, h->v[i].name_len + 1);
		keep(r, h->v[i].value, h->v[i].value_len + 1);
	}
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

/* Read data[1..size) fed piece bytes at a time, each piece copied into a
 * buffer of its own that is freed after its feed. */
static enum dt_h1resp_state read_all(const uint8_t *data, size_t size, size_t piece,
				     struct run *r)
{
	struct dt_h1resp resp;
	enum dt_h1resp_state st = DT_H1RESP_MORE;
	size_t off = 1;

	r->stop_in_head = data[0] & 0x40 && !(data[0] & 0x80);
	r->stop_in_body = data[0] & 0x80 && !(data[0] & 0x40);
	dt_h1resp_init(&resp, (data[0] & 0xc0) == 0xc0, &ops, r);
	while (off < size && st == DT_H1RESP_MORE) {
		size_t n = size - off < piece ? size - off : piece, used;
		char *bytes = malloc(n);

		if (!bytes)
			abort();
		memcpy(bytes, data + off, n);
		st = dt_h1resp_feed(&resp, bytes, n, &used);
		free(bytes);
		if (used > n || (st == DT_H1RESP_MORE && used != n))
			abort();
		off += n;
	}
	if (st == DT_H1RESP_MORE)
		st = dt_h1resp_eof(&resp);
	if (st == DT_H1RESP_ERROR && !resp.error[0])
		abort();
	if (st == DT_H1RESP_COMPLETE && r->heads != 1)
		abort();
	dt_h1resp_free(&resp);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run pieces = {0}, whole = {0};

	if (size < 1)
		return 0;
	read_all(data, size, (data[0] & 0x3f) + 1, &pieces);
	read_all(data, size, size, &whole);
	if (pieces.heads != whole.heads || pieces.head_len != whole.head_len ||
	    (whole.head_len && memcmp(pieces.head, whole.head, whole.head_len) != 0))
		abort();
	free(pieces.head);
	free(whole.head);
	return 0;
}
