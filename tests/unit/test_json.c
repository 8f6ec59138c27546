// SPDX-License-Identifier: MIT
/* agent/json.c: the scanner against valid and invalid documents (jansson
 * judging alongside), values and spans, member look-ups, the splice
 * helper, the writer and its escaper. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "json.h"

static char *repeat(const char *open, size_t n, const char *close)
{
	size_t a = strlen(open), b = strlen(close);
	char *s = malloc(n * (a + b) + 1), *p = s;

	assert_non_null(s);
	for (size_t i = 0; i < n; i++, p += a)
		memcpy(p, open, a);
	for (size_t i = 0; i < n; i++, p += b)
		memcpy(p, close, b);
	*p = '\0';
	return s;
}

static json_t *jansson(const char *text, size_t len)
{
	return json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
}

/* Parse text; it must be accepted, and read by jansson as the same value. */
static const struct dt_json *parse_ok(struct dt_arena *a, const char *text, size_t len)
{
	char err[128] = "";
	const struct dt_json *v = dt_json_parse(a, text, len, err, sizeof(err));
	json_t *want = jansson(text, len), *got;
	const char *compact;

	if (!v)
		fail_msg("refused %.*s: %s", (int)len, text, err);
	assert_non_null(want);
	compact = dt_json_text(a, v, DT_JSON_COMPACT);
	got = jansson(compact, strlen(compact));
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	return v;
}

static void test_valid_documents(void **state)
{
	static const char *const docs[] = {
		"{}", "[]", "\"\"", "0", "-0", "1.5e+3", "-2E-2", "true", "false", "null",
		" \t\r\n{ \"a\" : [ 1 , 2 ] } \n",
		"{\"a\":{\"b\":{\"c\":[[],{}]}}}",
		"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20AC \\ud83d\\ude00\"",
		"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"",
		"{\"k\\u00e9y\":1,\"\":2}",
		"1e-400",                /* underflows to 0: a number still */
		"123456789012345678901", /* past int64: a number, not an integer */
		"{\"a\":1,\"a\":2}",     /* duplicate names: kept (the last wins) */
	};
	char *deep = repeat("[", DT_JSON_MAX_DEPTH, "]");

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct dt_arena a = { 0 };
		const struct dt_json *v = parse_ok(&a, docs[i], strlen(docs[i]));

		assert_int_equal(dt_json_is_object_text(docs[i], strlen(docs[i])),
				 v->type == DT_JSON_OBJECT);
		dt_arena_free(&a);
	}
	{
		struct dt_arena a = { 0 };

		parse_ok(&a, deep, strlen(deep));
		dt_arena_free(&a);
	}
	free(deep);
}

/* An arena on a caller's buffer: a small tree is carved from it, a large
 * one goes on in allocated blocks, and freeing leaves the buffer (the
 * SAN=1 build catches a free of it). */
static void test_arena_on_buffer(void **state)
{
	static const char small[] = "{\"prompt_tokens\":12,\"completion_tokens\":3}";
	char buf[2048], tiny[8];
	char large[2 + 200 * 2];
	struct dt_arena a;
	const struct dt_json *v;

	(void)state;
	/* [1,1,...,1]: 200 values, far more than buf holds */
	for (size_t i = 0; i < 200; i++)
		memcpy(large + 2 * i, i ? ",1" : "[1", 2);
	memcpy(large + 400, "]", 2);
	dt_arena_init_buf(&a, buf, sizeof(buf));
	v = parse_ok(&a, small, strlen(small));
	assert_true((const char *)v >= buf && (const char *)v < buf + sizeof(buf));
	assert_true((const char *)v->first >= buf && (const char *)v->first < buf + sizeof(buf));
	dt_arena_free(&a);
	assert_null(a.head);

	dt_arena_init_buf(&a, buf, sizeof(buf));
	v = parse_ok(&a, large, strlen(large));
	assert_int_equal(v->len, 200);
	dt_arena_free(&a);

	dt_arena_init_buf(&a, tiny, sizeof(tiny));   /* no room for a block: allocated */
	parse_ok(&a, small, strlen(small));
	dt_arena_free(&a);
}

static void test_invalid_documents(void **state)
{
	static const struct {
		const char *text;
		const char *reason;
	} rows[] = {
		{ "", "unexpected end of input" },
		{ "  ", "unexpected end of input" },
		{ "{", "expected a member name" },
		{ "{\"a\"}", "expected ':'" },
		{ "{\"a\":1,}", "expected a member name" },
		{ "[1,]", "invalid number" },
		{ "[1 2]", "expected ',' or ']'" },
		{ "{\"a\":1 \"b\":2}", "expected ',' or '}'" },
		{ "{a:1}", "expected a member name" },
		{ "{} {}", "text after the JSON value" },
		{ "'a'", "invalid number" },
		{ "tru", "invalid literal" },
		{ "nul", "invalid literal" },
		{ "True", "invalid number" },
		{ "01", "text after the JSON value" },
		{ "1.", "invalid number" },
		{ ".5", "invalid number" },
		{ "+1", "invalid number" },
		{ "1e", "invalid number" },
		{ "-", "invalid number" },
		{ "NaN", "invalid number" },
		{ "1e400", "number out of range" },
		{ "-1e400", "number out of range" },
		{ "\"abc", "unterminated string" },
		{ "\"a\nb\"", "control character in string" },
		{ "\"a\x1f\"", "control character in string" },
		{ "\"\\u0000\"", "NUL (\\u0000) in string" },
		{ "\"\\x\"", "invalid escape" },
		{ "\"\\u12\"", "invalid escape" },
		{ "\"\\u12G4\"", "invalid escape" },
		{ "\"\\ud800\"", "invalid escape" },          /* a high surrogate alone */
		{ "\"\\ud800\\u0041\"", "invalid escape" },   /* not followed by a low one */
		{ "\"\\udc00\"", "invalid escape" },          /* a low surrogate alone */
		{ "\"\\ude00\\ud83d\"", "invalid escape" },   /* the pair reversed */
		{ "\"\xc0\xaf\"", "invalid UTF-8" },          /* overlong '/' */
		{ "\"\xe0\x80\xaf\"", "invalid UTF-8" },      /* overlong, three bytes */
		{ "\"\xed\xa0\x80\"", "invalid UTF-8" },      /* an encoded surrogate */
		{ "\"\xf4\x90\x80\x80\"", "invalid UTF-8" },  /* past U+10FFFF */
		{ "\"\xf5\x80\x80\x80\"", "invalid UTF-8" },
		{ "\"\x80\"", "invalid UTF-8" },              /* a lone continuation byte */
		{ "\"\xe2\x82\"", "invalid UTF-8" },          /* truncated */
		{ "\"\xff\"", "invalid UTF-8" },
		{ "[1]\xef\xbb\xbf", "text after the JSON value" },
		{ "\xef\xbb\xbf[1]", "invalid number" },      /* no BOM in JSON text */
	};
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dt_arena a = { 0 };
		size_t len = strlen(rows[i].text);
		json_t *j = jansson(rows[i].text, len);

		err[0] = '\0';
		assert_null(dt_json_parse(&a, rows[i].text, len, err, sizeof(err)));
		if (!strstr(err, rows[i].reason))
			fail_msg("%s: \"%s\", not \"%s\"", rows[i].text, err, rows[i].reason);
		assert_non_null(strstr(err, "malformed JSON at byte "));
		assert_false(dt_json_is_object_text(rows[i].text, len));
		if (j) /* jansson agrees */
			fail_msg("jansson accepts %s", rows[i].text);
		json_decref(j);
		dt_arena_free(&a);
	}
}

/* Numbers: DT_JSON_MAX_NUMBER_TEXT bytes at most, where jansson has no
 * limit. */
static void test_number_limit(void **state)
{
	static const char ok[] = "-0.1234567890123456789012345678901234567890123456789012345678e0";
	static const char over[] = "-0.123456789012345678901234567890123456789012345678901234567890e0";
	struct dt_arena a = { 0 };
	char err[128];
	json_t *j = jansson(over, sizeof(over) - 1);

	(void)state;
	assert_int_equal(sizeof(ok) - 1, DT_JSON_MAX_NUMBER_TEXT);
	parse_ok(&a, ok, sizeof(ok) - 1);
	assert_null(dt_json_parse(&a, over, sizeof(over) - 1, err, sizeof(err)));
	assert_non_null(strstr(err, "number too long"));
	assert_non_null(j);
	json_decref(j);
	dt_arena_free(&a);
}

/* Nesting: DT_JSON_MAX_DEPTH containers are read (test_valid_documents),
 * one more is refused where jansson (up to 2048) reads on. */
static void test_depth_limit(void **state)
{
	char *deep = repeat("{\"a\":[", DT_JSON_MAX_DEPTH / 2, "]}"), *deeper;
	struct dt_arena a = { 0 };
	char err[128];
	json_t *j;

	(void)state;
	assert_non_null(dt_json_parse(&a, deep, strlen(deep), err, sizeof(err)));
	deeper = repeat("[", DT_JSON_MAX_DEPTH + 1, "]");
	assert_null(dt_json_parse(&a, deeper, strlen(deeper), err, sizeof(err)));
	assert_non_null(strstr(err, "nested too deep"));
	assert_false(dt_json_is_object_text(deeper, strlen(deeper)));
	j = jansson(deeper, strlen(deeper));
	assert_non_null(j);
	json_decref(j);
	free(deep);
	free(deeper);
	dt_arena_free(&a);
}

static void test_values(void **state)
{
	static const char doc[] =
		"{\"i\":-42,\"big\":9223372036854775807,\"over\":9223372036854775808,"
		"\"min\":-9223372036854775808,\"f\":0.7,\"e\":6.02e23,\"t\":true,\"n\":null,"
		"\"s\":\"a\\tb\\u00e9\\ud83d\\ude00\\/\",\"plain\":\"xyz\",\"arr\":[1,\"2\",[3]],"
		"\"snake_case\":1,\"camelCase\":2,\"dup\":1,\"dup\":2}";
	struct dt_arena a = { 0 };
	const struct dt_json *root = parse_ok(&a, doc, sizeof(doc) - 1);
	const struct dt_json *v;
	size_t len;

	(void)state;
	assert_int_equal(root->type, DT_JSON_OBJECT);
	assert_int_equal(root->len, 15);
	assert_int_equal(dt_json_get_int(root, "i", 0), -42);
	assert_int_equal(dt_json_get_int(root, "big", 0), INT64_MAX);
	v = dt_json_get(root, "over");
	assert_false(v->is_integer);
	assert_true(v->number == 9223372036854775808.0);
	assert_int_equal(dt_json_get_int(root, "over", 7), 7);
	assert_int_equal(dt_json_get_int(root, "min", 0), INT64_MIN);
	assert_true(dt_json_get(root, "f")->number == 0.7);
	assert_false(dt_json_get(root, "f")->is_integer);
	assert_true(dt_json_get(root, "e")->number == 6.02e23);
	assert_true(dt_json_get_true(root, "t"));
	assert_false(dt_json_get_true(root, "n"));
	assert_false(dt_json_get_true(root, "i"));
	assert_int_equal(dt_json_get(root, "n")->type, DT_JSON_NULL);
	/* strings: unescaped when read; without escapes, no copy needed */
	assert_string_equal(dt_json_cstr(&a, dt_json_get(root, "s")),
			    "a\tb\xc3\xa9\xf0\x9f\x98\x80/");
	assert_ptr_equal(dt_json_strn(&a, dt_json_get(root, "plain"), &len), strstr(doc, "xyz"));
	assert_int_equal(len, 3);
	assert_null(dt_json_cstr(&a, dt_json_get(root, "i")));
	assert_null(dt_json_cstr(&a, NULL));
	/* arrays */
	v = dt_json_get(root, "arr");
	assert_int_equal(dt_json_at(v, 0)->integer, 1);
	assert_string_equal(dt_json_cstr(&a, dt_json_at(v, 1)), "2");
	assert_int_equal(dt_json_at(v, 2)->type, DT_JSON_ARRAY);
	assert_null(dt_json_at(v, 3));
	assert_null(dt_json_at(root, 0));
	/* look-ups: aliases in order, the last of duplicates, NULL-safe */
	assert_int_equal(dt_json_get_int(root, "camelCase|snake_case", 0), 2);
	assert_int_equal(dt_json_get_int(root, "snakeCase|snake_case", 0), 1);
	assert_int_equal(dt_json_get_int(root, "dup", 0), 2);
	assert_null(dt_json_get(root, "missing"));
	assert_null(dt_json_get(NULL, "i"));
	assert_null(dt_json_get(v, "i"));
	dt_arena_free(&a);
}

static void test_spans(void **state)
{
	static const char doc[] = " {\"a\" : \"x\\ny\" , \"b\":[ 1 ,{\"c\":null} ], \"d\":-1.5e3 } ";
	struct dt_arena a = { 0 };
	const struct dt_json *root = parse_ok(&a, doc, sizeof(doc) - 1), *b, *c;

	(void)state;
#define SPAN(v, want) do { \
		assert_ptr_equal((v)->text, doc + (v)->offset); \
		assert_int_equal((v)->length, strlen(want)); \
		assert_memory_equal((v)->text, want, strlen(want)); \
	} while (0)
	assert_int_equal(root->offset, 1);
	SPAN(root, "{\"a\" : \"x\\ny\" , \"b\":[ 1 ,{\"c\":null} ], \"d\":-1.5e3 }");
	SPAN(dt_json_get(root, "a"), "\"x\\ny\"");
	b = dt_json_get(root, "b");
	SPAN(b, "[ 1 ,{\"c\":null} ]");
	SPAN(dt_json_at(b, 0), "1");
	c = dt_json_at(b, 1);
	SPAN(c, "{\"c\":null}");
	SPAN(dt_json_get(c, "c"), "null");
	SPAN(dt_json_get(root, "d"), "-1.5e3");
#undef SPAN
	/* copies of a value's text */
	assert_string_equal(dt_json_text(&a, b, 0), "[ 1 ,{\"c\":null} ]");
	assert_string_equal(dt_json_text(&a, root, DT_JSON_COMPACT),
			    "{\"a\":\"x\\ny\",\"b\":[1,{\"c\":null}],\"d\":-1.5e3}");
	dt_arena_free(&a);
}

static void test_text_lowercase_types(void **state)
{
	static const char doc[] =
		"{ \"type\": \"OBJECT\", \"properties\": { \"q\": { \"type\": \"STRING\", "
		"\"description\": \"Keep CASE \\\" here\" }, \"type\": { \"type\": \"ARRAY\" } } }";
	struct dt_arena a = { 0 };
	const struct dt_json *root = parse_ok(&a, doc, sizeof(doc) - 1);

	(void)state;
	assert_string_equal(dt_json_text(&a, root, DT_JSON_LOWERCASE_TYPES | DT_JSON_COMPACT),
			    "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\","
			    "\"description\":\"Keep CASE \\\" here\"},\"type\":{\"type\":\"array\"}}}");
	dt_arena_free(&a);
}

/* Splice `value` into doc's member `key`; NULL when refused. */
static char *splice(const char *doc, const char *key, const char *value)
{
	struct dt_arena a = { 0 };
	char err[128];
	const struct dt_json *root = dt_json_parse(&a, doc, strlen(doc), err, sizeof(err));
	size_t len = 0;
	char *out;

	assert_non_null(root);
	out = dt_json_splice_str(doc, strlen(doc), root, key, value, &len);
	if (out)
		assert_int_equal(strlen(out), len);
	dt_arena_free(&a);
	return out;
}

static void test_splice(void **state)
{
	static const char doc[] =
		"{\n  \"model\" : \"gpt-4o\",\n  \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
		" \"n\":1, \"esc\":\"a\\u00e9\"}";
	char *out;

	(void)state;
	/* everything but the value is kept byte for byte */
	out = splice(doc, "model", "claude-3-5-sonnet");
	assert_string_equal(out,
		"{\n  \"model\" : \"claude-3-5-sonnet\",\n  \"messages\":[{\"role\":\"user\","
		"\"content\":\"hi\"}], \"n\":1, \"esc\":\"a\\u00e9\"}");
	free(out);
	/* the new value is escaped; an escaped old one is replaced whole */
	out = splice(doc, "esc", "q\"b\\s\n\x01 \xc3\xa9");
	assert_non_null(strstr(out, "\"esc\":\"q\\\"b\\\\s\\n\\u0001 \xc3\xa9\"}"));
	free(out);
	out = splice("{\"model\":\"\"}", "model", "");
	assert_string_equal(out, "{\"model\":\"\"}");
	free(out);
	/* refused: absent, not a string, given twice, not an object */
	assert_null(splice(doc, "absent", "x"));
	assert_null(splice(doc, "n", "x"));
	assert_null(splice(doc, "messages", "x"));
	assert_null(splice("{\"model\":\"a\",\"model\":\"b\"}", "model", "x"));
	assert_null(splice("{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", "model", "x"));
	assert_null(splice("[\"model\"]", "model", "x"));
	/* an alias list is not a name here */
	assert_null(splice(doc, "model|x", "y"));
}

static char *written(void (*write)(struct dt_jbuf *b, const void *arg), const void *arg)
{
	struct dt_jbuf b = { 0 };
	char *text;
	size_t len;

	write(&b, arg);
	text = dt_jbuf_finish(&b, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_null(b.data);
	return text;
}

static void write_str(struct dt_jbuf *b, const void *s)
{
	dt_jbuf_str(b, s);
}

static void test_escaper(void **state)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "q\"b\\s/", "\"q\\\"b\\\\s/\"" },
		{ "\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"" },
		{ "\x01\x02\x0b\x1f\x7f", "\"\\u0001\\u0002\\u000b\\u001f\x7f\"" },
		{ "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8", "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8\"" },
		/* bytes that are not UTF-8 go through as they are: what is
		 * written comes from validated input or from detour */
		{ "\xff\xc0 x", "\"\xff\xc0 x\"" },
		/* long runs take the eight-bytes-at-a-time path */
		{ "0123456789abcdef0123456789abcdef\"0123456789abcdef\n0123456789",
		  "\"0123456789abcdef0123456789abcdef\\\"0123456789abcdef\\n0123456789\"" },
		{ NULL, "null" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *out = written(write_str, rows[i].in);

		assert_string_equal(out, rows[i].out);
		free(out);
	}
	/* every byte but NUL, in one string: jansson reads back the same */
	{
		char all[256];
		struct dt_jbuf b = { 0 };
		json_t *j;
		char *out;
		size_t len;

		for (int c = 1; c < 128; c++)
			all[c - 1] = (char)c;
		memcpy(all + 127, "\xc3\xa9\xe2\x82\xac", 6);
		dt_jbuf_str(&b, all);
		out = dt_jbuf_finish(&b, &len);
		j = json_loadb(out, len, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(j), all);
		json_decref(j);
		free(out);
	}
}

static void write_mixed(struct dt_jbuf *b, const void *arg)
{
	(void)arg;
	dt_jbuf_lit(b, "{");
	dt_jbuf_key(b, "i");
	dt_jbuf_int(b, INT64_MIN);
	dt_jbuf_key(b, "j");
	dt_jbuf_int(b, INT64_MAX);
	dt_jbuf_key(b, "z");
	dt_jbuf_int(b, 0);
	dt_jbuf_key(b, "f");
	dt_jbuf_num(b, 0.7);
	dt_jbuf_key(b, "g");
	dt_jbuf_num(b, 0.1 + 0.2);
	dt_jbuf_key(b, "b");
	dt_jbuf_bool(b, true);
	dt_jbuf_key(b, "a");
	dt_jbuf_lit(b, "[");
	dt_jbuf_sep(b);
	dt_jbuf_bool(b, false);
	dt_jbuf_sep(b);
	dt_jbuf_strn(b, "ab\"c", 2);
	dt_jbuf_lit(b, "]");
	dt_jbuf_key(b, "o");
	dt_jbuf_object(b, " {\"x\": [1]} ", 12);
	dt_jbuf_key(b, "p");
	dt_jbuf_object(b, "{\"x\":", 5);
	dt_jbuf_key(b, "q");
	dt_jbuf_object(b, "[1]", 3);
	dt_jbuf_key(b, "r");
	dt_jbuf_object(b, "", 0);
	dt_jbuf_key(b, "s");
	dt_jbuf_lit(b, "\"");
	dt_jbuf_esc(b, "a\"");
	dt_jbuf_escn(b, "\nbXX", 2);
	dt_jbuf_lit(b, "\"}");
}

static void test_writer(void **state)
{
	char *out = written(write_mixed, NULL);
	json_t *j;

	(void)state;
	assert_string_equal(out,
		"{\"i\":-9223372036854775808,\"j\":9223372036854775807,\"z\":0,\"f\":0.7,"
		"\"g\":0.30000000000000004,\"b\":true,\"a\":[false,\"ab\"],\"o\": {\"x\": [1]} ,"
		"\"p\":{},\"q\":{},\"r\":{},\"s\":\"a\\\"\\nb\"}");
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	json_decref(j);
	free(out);
	/* an empty text is "", not NULL; a failed buffer gives NULL and is freed */
	{
		struct dt_jbuf b = { 0 };
		size_t len = 1;

		out = dt_jbuf_finish(&b, &len);
		assert_string_equal(out, "");
		assert_int_equal(len, 0);
		free(out);
		dt_jbuf_lit(&b, "x");
		b.failed = true;
		dt_jbuf_lit(&b, "y");
		assert_int_equal(b.len, 1);
		assert_null(dt_jbuf_finish(&b, &len));
		assert_null(b.data);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_documents),
		cmocka_unit_test(test_invalid_documents),
		cmocka_unit_test(test_number_limit),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_text_lowercase_types),
		cmocka_unit_test(test_arena_on_buffer),
		cmocka_unit_test(test_splice),
		cmocka_unit_test(test_escaper),
		cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
