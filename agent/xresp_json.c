// SPDX-License-Identifier: MIT
/* JSON text written directly (no json_t tree per event) and small readers;
 * see xresp_int.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xresp_int.h"

static bool reserve(struct dt_xbuf *b, size_t n)
{
	size_t want;
	char *grown;

	if (b->failed)
		return false;
	if (b->cap - b->len > n)
		return true;
	want = b->cap ? b->cap : 512;
	while (want - b->len <= n) {
		if (want > SIZE_MAX / 2)
			goto fail;
		want *= 2;
	}
	grown = realloc(b->p, want);
	if (!grown)
		goto fail;
	b->p = grown;
	b->cap = want;
	return true;
fail:
	b->failed = true;
	return false;
}

void dt_xb_add(struct dt_xbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* How each byte is written inside a JSON string: 0 as is, 'u' as \u00XX,
 * any other as a backslash and that letter. */
static const char escape[256] = {
	[0x00 ... 0x07] = 'u', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [0x0b] = 'u',
	['\f'] = 'f', ['\r'] = 'r', [0x0e ... 0x1f] = 'u',
	['"'] = '"', ['\\'] = '\\',
};

void dt_xb_escaped(struct dt_xbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e = escape[c];

		if (!e)
			continue;
		dt_xb_add(b, s + run, i - run);
		run = i + 1;
		if (e == 'u') {
			char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			dt_xb_add(b, u, sizeof(u));
		} else {
			char pair[2] = { '\\', e };

			dt_xb_add(b, pair, sizeof(pair));
		}
	}
	dt_xb_add(b, s + run, n - run);
}

void dt_xb_str(struct dt_xbuf *b, const char *s, size_t n)
{
	dt_xb_lit(b, "\"");
	dt_xb_escaped(b, s, n);
	dt_xb_lit(b, "\"");
}

void dt_xb_cstr(struct dt_xbuf *b, const char *s)
{
	if (s)
		dt_xb_str(b, s, strlen(s));
	else
		dt_xb_lit(b, "null");
}

void dt_xb_int(struct dt_xbuf *b, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	dt_xb_add(b, num, (size_t)n);
}

void dt_xb_object(struct dt_xbuf *b, const char *text, size_t len)
{
	json_t *v = len ? json_loadb(text, len, JSON_DECODE_ANY, NULL) : NULL;

	if (json_is_object(v))
		dt_xb_add(b, text, len);
	else
		dt_xb_lit(b, "{}");
	json_decref(v);
}

char *dt_xb_take(struct dt_xbuf *b, size_t *len)
{
	char *p;

	dt_xb_lit(b, "\0");
	if (b->failed) {
		dt_xb_free(b);
		return NULL;
	}
	p = b->p;
	if (len)
		*len = b->len - 1;
	*b = (struct dt_xbuf){ 0 };
	return p;
}

void dt_xb_free(struct dt_xbuf *b)
{
	free(b->p);
	*b = (struct dt_xbuf){ 0 };
}

const char *dt_xj_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int64_t dt_xj_int(const json_t *obj, const char *key, int64_t def)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

const char *dt_xj_text(struct dt_arena *a, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	const char *copy = text ? dt_arena_strdup(a, text) : NULL;

	free(text);
	return copy;
}
