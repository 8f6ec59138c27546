// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for agent/json.c, differential against jansson.
 *
 * Accept and reject must agree, except where the scanner is stricter on
 * purpose (json.h): nesting over DT_JSON_MAX_DEPTH, numbers over
 * DT_JSON_MAX_NUMBER_TEXT bytes, more than DT_JSON_MAX_VALUES values;
 * and jansson skips NUL bytes (in strings too) where RFC 8259 has none.
 * jansson reads integers as reals here, so big integers are numbers for
 * both. When both accept, the trees must match (duplicate names: the last
 * wins), every value's span must be its text in the input, the tree
 * written back with dt_jbuf must read as the same value, so must the
 * compact text, and replacing a string member with dt_json_splice_str
 * must change that member only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "json.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The last member named like m (jansson keeps the last of duplicates). */
static const struct dt_json *last_named(const struct dt_json *obj, const struct dt_json *m)
{
	const struct dt_json *found = NULL;

	for (const struct dt_json *o = obj->first; o; o = o->next)
		if (o->key_len == m->key_len && memcmp(o->key, m->key, m->key_len) == 0)
			found = o;
	return found;
}

static void same(struct dt_arena *a, const char *base, const struct dt_json *v, const json_t *j)
{
	size_t len, i = 0;

	check(v->text == base + v->offset && v->length > 0);
	switch (v->type) {
	case DT_JSON_NULL:
		check(json_is_null(j));
		break;
	case DT_JSON_BOOL:
		check(v->boolean ? json_is_true(j) : json_is_false(j));
		break;
	case DT_JSON_NUMBER:
		check(json_is_real(j) && json_real_value(j) == v->number);
		break;
	case DT_JSON_STRING: {
		const char *s = dt_json_strn(a, v, &len);

		check(json_is_string(j) && s && len == json_string_length(j) &&
		      memcmp(s, json_string_value(j), len) == 0);
		check(v->text[0] == '"' && v->text[v->length - 1] == '"');
		break;
	}
	case DT_JSON_ARRAY:
		check(json_is_array(j) && json_array_size(j) == v->len);
		check(v->text[0] == '[' && v->text[v->length - 1] == ']');
		for (const struct dt_json *item = v->first; item; item = item->next, i++)
			same(a, base, item, json_array_get(j, i));
		check(i == v->len);
		break;
	case DT_JSON_OBJECT:
		check(json_is_object(j) && v->text[0] == '{' && v->text[v->length - 1] == '}');
		for (const struct dt_json *m = v->first; m; m = m->next, i++) {
			char *key = strndup(m->key, m->key_len);
			json_t *jm = key ? json_object_get(j, key) : NULL;

			check(jm != NULL);
			if (last_named(v, m) == m) {
				same(a, base, m, jm);
				/* '|' separates aliases for dt_json_get */
				check(strchr(key, '|') || dt_json_get(v, key) == m);
			}
			free(key);
		}
		check(i == v->len && json_object_size(j) <= v->len);
		break;
	}
}

/* The tree written back as JSON text. */
static void write_back(struct dt_arena *a, struct dt_jbuf *b, const struct dt_json *v)
{
	size_t len;
	const char *s;

	switch (v->type) {
	case DT_JSON_STRING:
		s = dt_json_strn(a, v, &len);
		dt_jbuf_strn(b, s, len);
		break;
	case DT_JSON_ARRAY:
	case DT_JSON_OBJECT:
		dt_jbuf_put(b, v->type == DT_JSON_ARRAY ? "[" : "{", 1);
		for (const struct dt_json *m = v->first; m; m = m->next) {
			dt_jbuf_sep(b);
			if (v->type == DT_JSON_OBJECT) {
				dt_jbuf_strn(b, m->key, m->key_len);
				dt_jbuf_lit(b, ":");
			}
			write_back(a, b, m);
		}
		dt_jbuf_put(b, v->type == DT_JSON_ARRAY ? "]" : "}", 1);
		break;
	default:
		dt_jbuf_put(b, v->text, v->length);
		break;
	}
}

static void check_text(const char *text, size_t len, const json_t *want)
{
	json_t *got = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);

	check(got && json_equal(got, want));
	json_decref(got);
}

/* Replace the first member when it is a string given once. */
static void check_splice(const char *data, size_t size, const struct dt_json *root,
			 const json_t *j)
{
	static const char value[] = "spliced \"\\\n\x01 \xc3\xa9";
	const struct dt_json *m = root->first;
	json_t *want;
	char *key, *out;
	size_t len;

	if (!m || !(key = strndup(m->key, m->key_len)))
		return;
	out = dt_json_splice_str(data, size, root, key, value, &len);
	if (m->type != DT_JSON_STRING || last_named(root, m) != m) {
		check(!out);
	} else {
		check(out && strlen(out) == len);
		want = json_deep_copy(j);
		json_object_set_new(want, key, json_string(value));
		check_text(out, len, want);
		json_decref(want);
	}
	free(out);
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	const char *data = (const char *)bytes;
	struct dt_arena a = { 0 };
	char err[256];
	struct dt_json *root = dt_json_parse(&a, data, size, err, sizeof(err));
	json_t *j = json_loadb(data, size, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);

	check(dt_json_is_object_text(data, size) == (root && root->type == DT_JSON_OBJECT));
	if (!root) {
		/* jansson may accept what the limits refuse, and it skips NUL
		 * bytes where RFC 8259 has none */
		check(!j || strstr(err, "nested too deep") || strstr(err, "number too long") ||
		      strstr(err, "too many values") || memchr(data, '\0', size));
	} else {
		struct dt_jbuf b = { 0 };
		const char *compact = dt_json_text(&a, root, DT_JSON_COMPACT);
		char *text;
		size_t len;

		check(j != NULL);
		same(&a, data, root, j);
		write_back(&a, &b, root);
		text = dt_jbuf_finish(&b, &len);
		check(text && compact);
		check_text(text, len, j);
		check_text(compact, strlen(compact), j);
		if (root->type == DT_JSON_OBJECT)
			check_splice(data, size, root, j);
		free(text);
	}
	json_decref(j);
	dt_arena_free(&a);
	return 0;
}
