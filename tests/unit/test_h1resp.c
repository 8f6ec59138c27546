// SPDX-License-Identifier: MIT
/* Reading a provider's HTTP/1.1 response (h1resp.c): the head, every body
 * framing, keep-alive, interim answers, stops, what follows an answer, any
 * split of the bytes, and each refusal with its reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "h1resp.h"

/* What reading made of it: the head as "status\nName: value\n...", the
 * body, and how it ended. */
struct out {
	char head[8192];
	char body[4096];
	size_t body_len;
	int heads;
	bool stop_in_head;
	size_t stop_after;      /* body() says stop once this much came (0: never) */
	enum dt_h1resp_state st;
	size_t used;            /* bytes taken, all feeds together */
	bool keep_alive;
	char error[96];
};

static bool on_head(void *ctx, int status, const struct dt_headers *h)
{
	struct out *o = ctx;
	size_t len = (size_t)snprintf(o->head, sizeof(o->head), "%d\n", status);

	o->heads++;
	for (size_t i = 0; i < h->n; i++)
		len += (size_t)snprintf(o->head + len, sizeof(o->head) - len, "%s: %s\n",
					h->v[i].name, h->v[i].value);
	return o->stop_in_head;
}

static bool on_body(void *ctx, const char *buf, size_t len)
{
	struct out *o = ctx;

	assert_int_equal(o->heads, 1);
	assert_true(len > 0);
	assert_true(o->body_len + len < sizeof(o->body));
	memcpy(o->body + o->body_len, buf, len);
	o->body_len += len;
	o->body[o->body_len] = '\0';
	return o->stop_after && o->body_len >= o->stop_after;
}

static const struct dt_h1resp_ops ops = { .head = on_head, .body = on_body };

/* Feed text in pieces of `piece` bytes (0: at once), each in a buffer of its
 * own freed after its feed (a pointer kept into it is caught under ASan),
 * then the connection's end when eof and it still wants more. */
static void read_in(const char *text, size_t len, size_t piece, bool head_request, bool eof,
		    struct out *o)
{
	struct dt_h1resp r;
	size_t off = 0;

	dt_h1resp_init(&r, head_request, &ops, o);
	o->st = DT_H1RESP_MORE;
	while (off < len && o->st == DT_H1RESP_MORE) {
		size_t n = piece && len - off > piece ? piece : len - off, used;
		char *bytes = malloc(n);

		assert_non_null(bytes);
		memcpy(bytes, text + off, n);
		o->st = dt_h1resp_feed(&r, bytes, n, &used);
		free(bytes);
		assert_true(used <= n);
		if (o->st == DT_H1RESP_MORE)
			assert_int_equal(used, n);
		o->used += used;
		off += n;
	}
	if (eof && o->st == DT_H1RESP_MORE)
		o->st = dt_h1resp_eof(&r);
	o->keep_alive = dt_h1resp_keep_alive(&r);
	snprintf(o->error, sizeof(o->error), "%s", r.error);
	dt_h1resp_free(&r);
}

/* Read whole, then split at every piece size: each must come out the same. */
static void read_every_split(const char *text, bool head_request, bool eof, struct out *whole)
{
	size_t len = strlen(text);

	memset(whole, 0, sizeof(*whole));
	read_in(text, len, 0, head_request, eof, whole);
	for (size_t piece = 1; piece < len; piece++) {
		struct out o = {0};

		read_in(text, len, piece, head_request, eof, &o);
		assert_int_equal(o.st, whole->st);
		assert_string_equal(o.head, whole->head);
		assert_int_equal(o.body_len, whole->body_len);
		assert_memory_equal(o.body, whole->body, whole->body_len);
		if (o.st != DT_H1RESP_ERROR)    /* a refusal's place is not said */
			assert_int_equal(o.used, whole->used);
		assert_int_equal(o.keep_alive, whole->keep_alive);
		assert_string_equal(o.error, whole->error);
	}
}

/* A head like fakellm's: its fields with their blanks trimmed, the body by
 * Content-Length, and the connection kept. */
static void test_content_length(void **state)
{
	static const char text[] =
		"HTTP/1.1 200 OK\r\n"
		"Content-Type: application/json\r\n"
		"X-Blanks: \t  both sides \t \r\n"
		"X-Empty:\r\n"
		"x-request-id:req_1\r\n"
		"Content-Length: 11\r\n"
		"\r\n"
		"hello world";
	struct out o;

	(void)state;
	read_every_split(text, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_string_equal(o.head, "200\nContent-Type: application/json\nX-Blanks: both sides\n"
			    "X-Empty: \nx-request-id: req_1\nContent-Length: 11\n");
	assert_string_equal(o.body, "hello world");
	assert_int_equal(o.used, strlen(text));
	assert_true(o.keep_alive);
}

/* Chunked: sizes in either case, extensions skipped, trailers read and
 * dropped; a reason phrase may be missing. */
static void test_chunked(void **state)
{
	static const char text[] =
		"HTTP/1.1 201\r\n"
		"Transfer-Encoding: Chunked  \r\n"
		"\r\n"
		"5;name=value\r\nhello\r\n"
		"a ; x\r\n world, 12\r\n"
		"000\r\n"
		"X-Checksum: abc\r\n"
		"\r\n";
	struct out o;

	(void)state;
	read_every_split(text, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_string_equal(o.head, "201\nTransfer-Encoding: Chunked\n");
	assert_string_equal(o.body, "hello world, 12");
	assert_int_equal(o.used, strlen(text));
	assert_true(o.keep_alive);
}

/* No length: the body runs to the connection's end, which completes it,
 * and the connection cannot be kept. */
static void test_close_delimited(void **state)
{
	struct out o;

	(void)state;
	read_every_split("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
			 false, true, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_string_equal(o.body, "until the end");
	assert_false(o.keep_alive);
	/* before the end it wants more */
	memset(&o, 0, sizeof(o));
	read_in("HTTP/1.1 200 OK\r\n\r\nabc", 22, 0, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_MORE);
}

/* HTTP/1.0 keeps the connection only when asked; 1.1 unless told to close. */
static void test_keep_alive_rules(void **state)
{
	static const struct {
		const char *text;
		bool keep;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true },
		{ "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false },
		{ "HTTP/1.1 200 OK\r\nConnection: foo, CLOSE \r\nContent-Length: 0\r\n\r\n", false },
		{ "HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", true },
		{ "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false },
		{ "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true },
		{ "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true },
		{ "HTTP/1.1 204 No Content\r\n\r\n", true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct out o = {0};

		read_in(cases[i].text, strlen(cases[i].text), 0, false, false, &o);
		assert_int_equal(o.st, DT_H1RESP_COMPLETE);
		assert_int_equal(o.keep_alive, cases[i].keep);
	}
}

/* No body after HEAD, 204 or 304, whatever the fields say: the response
 * ends with its head and what follows is the next one's. */
static void test_no_body(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	static const char *const statuses[] = {
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	struct out o = {0};
	char text[128];

	(void)state;
	snprintf(text, sizeof(text), "%sHTTP/1.1", head);
	read_in(text, strlen(text), 0, true, false, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_int_equal(o.used, strlen(head));
	assert_int_equal(o.body_len, 0);
	assert_true(o.keep_alive);
	for (size_t i = 0; i < 3; i++) {
		memset(&o, 0, sizeof(o));
		snprintf(text, sizeof(text), "%sHTTP/1.1", statuses[i]);
		read_in(text, strlen(text), 0, false, false, &o);
		assert_int_equal(o.st, DT_H1RESP_COMPLETE);
		assert_int_equal(o.used, strlen(statuses[i]));
		assert_int_equal(o.body_len, 0);
	}
}

/* Interim 1xx answers are skipped, their fields with them; the final head
 * comes once. 101 is refused: no protocol was asked to switch. */
static void test_interim(void **state)
{
	static const char text[] =
		"HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct out o;

	(void)state;
	read_every_split(text, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_int_equal(o.heads, 1);
	assert_string_equal(o.head, "200\nContent-Length: 2\n");
	assert_string_equal(o.body, "ok");
	memset(&o, 0, sizeof(o));
	read_in("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 51, 0, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_ERROR);
	assert_string_equal(o.error, "unexpected protocol switch");
	assert_int_equal(o.heads, 0);
}

/* What follows a complete response is not taken; empty lines before a
 * status line are skipped. */
static void test_what_follows_not_taken(void **state)
{
	static const char first[] = "\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	char text[128];
	struct out o = {0};

	(void)state;
	snprintf(text, sizeof(text), "%sHTTP/1.1 200 OK\r\n\r\n", first);
	read_in(text, strlen(text), 0, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	assert_int_equal(o.used, strlen(first));
	assert_string_equal(o.body, "abc");
}

/* A callback's stop ends the reading where it was. */
static void test_stop(void **state)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	struct out o = { .stop_in_head = true };

	(void)state;
	read_in(text, strlen(text), 0, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_STOPPED);
	assert_int_equal(o.body_len, 0);
	assert_false(o.keep_alive);
	memset(&o, 0, sizeof(o));
	o.stop_after = 4;
	read_in(text, strlen(text), 1, false, false, &o);
	assert_int_equal(o.st, DT_H1RESP_STOPPED);
	assert_string_equal(o.body, "0123");
	assert_false(o.keep_alive);
}

/* The connection ended: with nothing, in the head, in a framed body. */
static void test_early_end(void **state)
{
	static const char *const cut[] = {
		"HTTP/1.1 200 OK\r\nContent-Le",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
	};
	struct out o = {0};

	(void)state;
	read_in("", 0, 0, false, true, &o);
	assert_int_equal(o.st, DT_H1RESP_ERROR);
	assert_string_equal(o.error, "the connection closed with no response");
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		memset(&o, 0, sizeof(o));
		read_in(cut[i], strlen(cut[i]), 0, false, true, &o);
		assert_int_equal(o.st, DT_H1RESP_ERROR);
		assert_string_equal(o.error, "the connection closed before the response ended");
	}
}

/* n fields "X-Fn: v", then a Content-Length of 0. */
static char *many_fields(size_t n, size_t value_len)
{
	size_t cap = 64 + n * (value_len + 16), len;
	char *text = malloc(cap);

	assert_non_null(text);
	len = (size_t)snprintf(text, cap, "HTTP/1.1 200 OK\r\n");
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(text + len, cap - len, "X-F%zu: ", i);
		memset(text + len, 'v', value_len);
		len += value_len;
		len += (size_t)snprintf(text + len, cap - len, "\r\n");
	}
	snprintf(text + len, cap - len, "\r\n");
	return text;
}

/* DT_H1RESP_MAX_FIELDS fields are taken, one more is not; a head above
 * DT_H1RESP_MAX_HEAD is refused, also when it comes a line at a time. */
static void test_limits(void **state)
{
	char *text = many_fields(DT_H1RESP_MAX_FIELDS - 1, 1);
	struct out o = {0};

	(void)state;
	read_in(text, strlen(text), 0, false, true, &o);
	assert_int_equal(o.st, DT_H1RESP_COMPLETE);
	free(text);
	memset(&o, 0, sizeof(o));
	text = many_fields(DT_H1RESP_MAX_FIELDS + 1, 1);
	read_in(text, strlen(text), 0, false, true, &o);
	assert_int_equal(o.st, DT_H1RESP_ERROR);
	assert_string_equal(o.error, "too many response header fields");
	free(text);
	for (size_t piece = 0; piece <= 100; piece += 100) {
		memset(&o, 0, sizeof(o));
		text = many_fields(2, DT_H1RESP_MAX_HEAD / 2);
		read_in(text, strlen(text), piece, false, true, &o);
		assert_int_equal(o.st, DT_H1RESP_ERROR);
		assert_string_equal(o.error, "response head too large");
		free(text);
	}
}

/* The largest lengths libhttp-parser took are taken: the reading goes on. */
static void test_largest_lengths(void **state)
{
	static const char *const texts[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551600\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFE\r\nabc",
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct out o = {0};

		read_in(texts[i], strlen(texts[i]), 0, false, false, &o);
		assert_int_equal(o.st, DT_H1RESP_MORE);
		assert_string_equal(o.body, "abc");
	}
}

/* Each refusal, with its reason; all of them split anywhere alike. Those
 * in the body come after the head was handed over. */
static void test_refusals(void **state)
{
	static const struct {
		const char *text, *why;
		bool in_body;
	} bad[] = {
		{ "garbage\r\n\r\n", "invalid status line", false },
		{ "HTTP/1.1 abc OK\r\n\r\n", "invalid status line", false },
		{ "HTTP/2.0 200 OK\r\n\r\n", "invalid status line", false },
		{ "HTTP/1.1  200 OK\r\n\r\n", "invalid status line", false },
		{ "HTTP/1.1 2000 OK\r\n\r\n", "invalid status line", false },
		{ "HTTP/1.1 099 Low\r\n\r\n", "invalid status code", false },
		{ "HTTP/1.1 200 O\rK\r\n\r\n", "bare CR", false },
		{ "HTTP/1.1 200 OK\n\r\n", "bare LF", false },
		{ "HTTP/1.1 200 OK\r\nA: b\n\r\n", "bare LF", false },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n\n", "bare LF", false },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obs-fold", false },
		{ "HTTP/1.1 200 OK\r\n\tA: b\r\n\r\n", "obs-fold", false },
		{ "HTTP/1.1 200 OK\r\nA B: c\r\n\r\n", "invalid header field name", false },
		{ "HTTP/1.1 200 OK\r\nA : c\r\n\r\n", "invalid header field name", false },
		{ "HTTP/1.1 200 OK\r\n: c\r\n\r\n", "invalid header field name", false },
		{ "HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n", "invalid header field name", false },
		{ "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "invalid character", false },
		{ "HTTP/1.1 200 OK\r\nA: b\x01" "c\r\n\r\n", "invalid character", false },
		{ "HTTP/1.1 200 OK\r\nA: 0123456789\x7f" "abcdef\r\n\r\n",
		  "invalid character", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		  "more than one", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
		  "more than one", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
		  "invalid Content-Length", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
		  "invalid Content-Length", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", "invalid Content-Length", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551610\r\n\r\n",
		  "invalid Content-Length", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		  "invalid Content-Length", false },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "both Content-Length and Transfer-Encoding", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		  "unsupported Transfer-Encoding", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		  "unsupported Transfer-Encoding", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		  "unsupported Transfer-Encoding", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "unsupported Transfer-Encoding", false },
		{ "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n",
		  "an interim response with a body", false },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		  "invalid chunk size", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n",
		  "invalid chunk size", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
		  "invalid chunk size", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFF0\r\n",
		  "invalid chunk size", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
		  "invalid chunk size", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n",
		  "bare CR", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY0\r\n\r\n",
		  "chunk data not followed by CRLF", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n",
		  "a framing field in the trailers", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\n",
		  "a framing field in the trailers", true },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Name: 1\r\n\r\n",
		  "invalid header field name", true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct out o;

		read_every_split(bad[i].text, false, true, &o);
		if (o.st != DT_H1RESP_ERROR || !strstr(o.error, bad[i].why))
			fail_msg("case %zu: state %d, \"%s\", not \"%s\"", i, o.st, o.error, bad[i].why);
		assert_int_equal(o.heads, bad[i].in_body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_keep_alive_rules),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_interim),
		cmocka_unit_test(test_what_follows_not_taken),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_early_end),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_largest_lengths),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
