// SPDX-License-Identifier: MIT
/* SSE parser: fields, line ends, comments, BOM, any split, the size cap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sse.h"

/* Events seen, as "type|data" lines ("\n" in data shown as "\\n"). */
struct log {
	char text[4096];
	size_t len;
	int stop_after; /* the callback fails on this event (1-based); 0: never */
	int events;
};

static int collect(void *arg, const struct dt_sse_event *ev)
{
	struct log *l = arg;

	assert_int_equal(strlen(ev->data), ev->len);
	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s|", ev->type);
	for (size_t i = 0; i < ev->len; i++)
		l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s",
					   ev->data[i] == '\n' ? "\\n" : (char[]){ ev->data[i], 0 });
	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "\n");
	return ++l->events == l->stop_after ? -1 : 0;
}

/* Parse text fed in pieces of `piece` bytes (0: at once). */
static int parse(const char *text, size_t len, size_t piece, struct log *l)
{
	struct dt_sse p;
	int rc = 0;

	dt_sse_init(&p, 1 << 20);
	if (!piece)
		piece = len ? len : 1;
	for (size_t off = 0; off < len && !rc; off += piece)
		rc = dt_sse_feed(&p, text + off, len - off < piece ? len - off : piece, collect, l);
	dt_sse_free(&p);
	return rc;
}

static void assert_events(const char *text, const char *want)
{
	size_t len = strlen(text);
	struct log whole = { 0 };

	assert_int_equal(parse(text, len, 0, &whole), 0);
	assert_string_equal(whole.text, want);
	/* the same at every split and byte by byte */
	for (size_t cut = 1; cut < len; cut++) {
		struct log split = { 0 };
		struct dt_sse p;

		dt_sse_init(&p, 1 << 20);
		assert_int_equal(dt_sse_feed(&p, text, cut, collect, &split), 0);
		assert_int_equal(dt_sse_feed(&p, text + cut, len - cut, collect, &split), 0);
		dt_sse_free(&p);
		assert_string_equal(split.text, want);
	}
	struct log bytes = { 0 };

	assert_int_equal(parse(text, len, 1, &bytes), 0);
	assert_string_equal(bytes.text, want);
}

static void test_fields_and_several_events_per_read(void **state)
{
	(void)state;
	assert_events("event: message_start\ndata: {\"a\":1}\n\n"
		      "data: {\"b\":2}\n\n"
		      "event:ping\ndata:x\n\n",
		      "message_start|{\"a\":1}\nmessage|{\"b\":2}\nping|x\n");
}

static void test_multiline_data_joined(void **state)
{
	(void)state;
	assert_events("data: one\ndata:  two\ndata\n\n", "message|one\\n two\\n\n");
}

static void test_line_ends(void **state)
{
	(void)state;
	assert_events("event: e\r\ndata: a\r\n\r\n", "e|a\n");
	assert_events("event: e\rdata: a\r\rdata: b\r\r", "e|a\nmessage|b\n");
	assert_events("data: a\r\n\ndata: b\n\r\n", "message|a\nmessage|b\n");
}

static void test_comments_ids_and_empty_events_skipped(void **state)
{
	(void)state;
	assert_events(": keep-alive\n\n"
		      "id: 7\nretry: 100\n\n"
		      "event: lonely\n\n"
		      ":comment\ndata: x\nid: 8\nunknown: y\n\n",
		      "message|x\n");
}

static void test_the_type_does_not_outlive_its_event(void **state)
{
	(void)state;
	assert_events("event: a\ndata: 1\n\ndata: 2\n\n", "a|1\nmessage|2\n");
}

static void test_leading_bom_skipped(void **state)
{
	(void)state;
	assert_events("\xef\xbb\xbf" "data: x\n\n", "message|x\n");
	/* only at the start; a partial one is part of the first line */
	assert_events("\xef" "data: x\n\ndata: y\n\n", "message|y\n");
	assert_events("data: \xef\xbb\xbfx\n\n", "message|\xef\xbb\xbfx\n");
}

static void test_unfinished_event_not_dispatched(void **state)
{
	struct log l = { 0 };

	(void)state;
	assert_int_equal(parse("data: a\n\ndata: b\n", 17, 0, &l), 0);
	assert_string_equal(l.text, "message|a\n");
}

static void test_event_over_the_cap_fails(void **state)
{
	static char big[4096];
	struct log l = { 0 };
	struct dt_sse p;

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);
	/* one long line in many reads */
	dt_sse_init(&p, 1000);
	assert_int_equal(dt_sse_feed(&p, big, 900, collect, &l), 0);
	assert_int_equal(dt_sse_feed(&p, big + 900, 900, collect, &l), -1);
	dt_sse_free(&p);
	/* many short lines of one event */
	dt_sse_init(&p, 1000);
	for (int i = 0; i < 200; i++)
		if (dt_sse_feed(&p, "data: 0123456789\n", 17, collect, &l))
			break;
	assert_int_equal(dt_sse_feed(&p, "data: 0123456789\n", 17, collect, &l), -1);
	dt_sse_free(&p);
	assert_int_equal(l.events, 0);
}

static void test_callback_failure_stops_the_feed(void **state)
{
	struct log l = { .stop_after = 1 };

	(void)state;
	assert_int_equal(parse("data: a\n\ndata: b\n\n", 18, 0, &l), -1);
	assert_string_equal(l.text, "message|a\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_and_several_events_per_read),
		cmocka_unit_test(test_multiline_data_joined),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_comments_ids_and_empty_events_skipped),
		cmocka_unit_test(test_the_type_does_not_outlive_its_event),
		cmocka_unit_test(test_leading_bom_skipped),
		cmocka_unit_test(test_unfinished_event_not_dispatched),
		cmocka_unit_test(test_event_over_the_cap_fails),
		cmocka_unit_test(test_callback_failure_stops_the_feed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
