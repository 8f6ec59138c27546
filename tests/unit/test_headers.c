// SPDX-License-Identifier: MIT
/* agent/headers.c: adding, finding and removing fields, tokens, hop-by-hop
 * stripping, and copies of lists whose text spans several blocks, with
 * removed fields, into empty and non-empty lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "headers.h"

static void add(struct dt_headers *h, const char *name, const char *value)
{
	assert_int_equal(dt_headers_add_str(h, name, value), 0);
}

static void assert_same(const struct dt_headers *a, size_t from, const struct dt_headers *b)
{
	assert_int_equal(a->n - from, b->n);
	for (size_t i = 0; i < b->n; i++) {
		assert_string_equal(a->v[from + i].name, b->v[i].name);
		assert_string_equal(a->v[from + i].value, b->v[i].value);
		assert_int_equal(a->v[from + i].name_len, strlen(b->v[i].name));
		assert_int_equal(a->v[from + i].value_len, strlen(b->v[i].value));
		/* a copy owns its text */
		assert_ptr_not_equal(a->v[from + i].name, b->v[i].name);
	}
}

static void test_get_set_del(void **state)
{
	struct dt_headers h = { 0 };

	(void)state;
	add(&h, "Content-Type", "application/json");
	add(&h, "X-A", "1");
	add(&h, "x-a", "2");
	assert_string_equal(dt_headers_get(&h, "content-type"), "application/json");
	assert_string_equal(dt_headers_get(&h, "X-a"), "1");
	assert_null(dt_headers_get(&h, "x-b"));
	assert_int_equal(dt_headers_set(&h, "X-A", "3"), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(dt_headers_get(&h, "x-a"), "3");
	assert_int_equal(dt_headers_del(&h, "CONTENT-TYPE"), 1);
	assert_int_equal(h.n, 1);
	/* a name is what its C string says, as for every reader of it */
	assert_int_equal(dt_headers_add(&h, "x-c\0d", 5, "v\0w", 3), 0);
	assert_int_equal(h.v[1].name_len, 3);
	assert_int_equal(h.v[1].value_len, 1);
	assert_string_equal(dt_headers_get(&h, "x-c"), "v");
	assert_null(dt_headers_get(&h, "x-"));
	assert_int_equal(dt_headers_del(&h, "X-C"), 1);
	dt_headers_free(&h);
	assert_int_equal(h.n, 0);
}

static void test_tokens_and_hop_by_hop(void **state)
{
	struct dt_headers h = { 0 };

	(void)state;
	add(&h, "X-One", "named by Connection, blank-separated");
	add(&h, "Connection", "keep-alive, X-Private, x-one\tx-two");
	add(&h, "x-two", "named too");
	add(&h, "X-Private", "secret");
	add(&h, "Keep-Alive", "timeout=5");
	add(&h, "Transfer-Encoding", "chunked");
	add(&h, "Content-Length", "12");
	assert_true(dt_headers_has_token(&h, "connection", "x-private"));
	assert_false(dt_headers_has_token(&h, "connection", "x-priv"));
	/* a list field's tokens are split at commas only */
	assert_false(dt_headers_has_token(&h, "connection", "x-one"));
	assert_true(dt_headers_hop_by_hop(&h, "X-Private", 9));
	assert_true(dt_headers_hop_by_hop(&h, "te", 2));
	assert_false(dt_headers_hop_by_hop(&h, "content-length", 14));
	assert_int_equal(dt_headers_strip_hop_by_hop(&h), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.v[0].name, "Content-Length");
	dt_headers_free(&h);

	/* a second Connection field's names go too */
	add(&h, "Connection", "keep-alive");
	add(&h, "X-Kept", "kept");
	add(&h, "Connection", "X-Later");
	add(&h, "X-Later", "secret");
	assert_int_equal(dt_headers_strip_hop_by_hop(&h), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.v[0].name, "X-Kept");
	dt_headers_free(&h);

	/* naming only what goes anyway */
	add(&h, "X-A", "kept");
	add(&h, "Connection", " Keep-Alive ,upgrade");
	add(&h, "Keep-Alive", "timeout=5");
	add(&h, "X-B", "kept");
	dt_headers_strip_hop_by_hop(&h);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.v[0].name, "X-A");
	assert_string_equal(h.v[1].name, "X-B");
	dt_headers_free(&h);
}

/* Fields enough to fill several text blocks, some removed: the copy has
 * the fields left, in order, into an empty list and after a list's own. */
/* Every name always hop-by-hop, in any case; names of the same lengths or
 * first letters are not. */
static void test_always_hop_by_hop(void **state)
{
	static const char *const always[] = {
		"Connection", "KEEP-ALIVE", "proxy-connection", "Proxy-Authenticate",
		"proxy-authorization", "TE", "Trailer", "transfer-ENCODING", "upgrade",
	};
	static const char *const not[] = {
		"Connectiom", "keep-alivf", "te-", "t", "", "trailers", "upgrades", "content-length",
		"proxy-status", "x-connection", "Transfer-Encodinf", "transfer-encoding-of-a-long-name",
	};
	struct dt_headers none = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		assert_true(dt_headers_hop_by_hop(&none, always[i], strlen(always[i])));
	for (size_t i = 0; i < sizeof(not) / sizeof(not[0]); i++)
		assert_false(dt_headers_hop_by_hop(&none, not[i], strlen(not[i])));
	assert_true(DT_NAME_IS("Content-Length", 14, "content-length"));
	assert_false(DT_NAME_IS("Content-Lengtx", 14, "content-length"));
	assert_false(DT_NAME_IS("Content-Length", 13, "content-length"));
	assert_true(DT_NAME_IS("", 0, ""));
}

static void test_copy(void **state)
{
	struct dt_headers src = { 0 }, empty = { 0 }, dst = { 0 }, none = { 0 };
	char name[32], value[300];

	(void)state;
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "x-field-%d", i);
		memset(value, 'a' + i % 26, sizeof(value) - 1);
		value[sizeof(value) - 1 - (size_t)i] = '\0';
		add(&src, name, value);
	}
	add(&src, "x-gone", "1");
	assert_int_equal(dt_headers_del(&src, "x-field-7"), 1);
	assert_int_equal(dt_headers_del(&src, "x-gone"), 1);

	assert_int_equal(dt_headers_copy(&empty, &src), 0);
	assert_same(&empty, 0, &src);
	/* the copy grows on its own */
	add(&empty, "x-after", "yes");
	assert_string_equal(dt_headers_get(&empty, "x-after"), "yes");

	add(&dst, "x-own", "first");
	assert_int_equal(dt_headers_copy(&dst, &src), 0);
	assert_string_equal(dst.v[0].name, "x-own");
	assert_same(&dst, 1, &src);

	assert_int_equal(dt_headers_copy(&none, &dst), 0);
	assert_int_equal(dt_headers_copy(&dst, &(struct dt_headers){ 0 }), 0);
	assert_int_equal(dst.n, src.n + 1);
	assert_same(&none, 0, &dst);

	dt_headers_free(&src);
	dt_headers_free(&empty);
	dt_headers_free(&dst);
	dt_headers_free(&none);

	/* a small head's copy, its fields in its one block, grows out of it */
	add(&src, "Host", "a.example");
	add(&src, "Accept", "*/*");
	assert_int_equal(dt_headers_copy(&empty, &src), 0);
	assert_same(&empty, 0, &src);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "x-more-%d", i);
		add(&empty, name, "v");
	}
	assert_int_equal(empty.n, 42);
	assert_string_equal(dt_headers_get(&empty, "accept"), "*/*");
	assert_string_equal(dt_headers_get(&empty, "x-more-39"), "v");
	dt_headers_free(&src);
	dt_headers_free(&empty);
	/* and a list freed is empty and usable again */
	add(&empty, "x-again", "1");
	assert_int_equal(empty.n, 1);
	dt_headers_free(&empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_set_del),
		cmocka_unit_test(test_tokens_and_hop_by_hop),
		cmocka_unit_test(test_always_hop_by_hop),
		cmocka_unit_test(test_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
