// SPDX-License-Identifier: MIT
/*
 * The JSON scanner and writer of the request translators. jansson builds a
 * hashed tree of separately allocated values; for a 4 KB request that alone
 * costs several times the whole translation budget. This scanner makes one
 * pass, validates strictly (RFC 8259: UTF-8, escapes, surrogate pairs, no
 * NUL, numbers in range), allocates from the request's arena and copies a
 * string only when it is read. The writer appends compact JSON to a buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xreq_int.h"

/* Longest number text accepted (digits, sign, fraction, exponent). */
#define MAX_NUMBER_TEXT 63

struct scan {
	const char *p, *end;
	struct dt_arena *a;     /* NULL: validate only, build nothing */
	struct xj scratch;      /* the value being scanned when building nothing */
	size_t values;
	const char *error;      /* what is wrong, at p */
};

static bool fail(struct scan *s, const char *why)
{
	if (!s->error)
		s->error = why;
	return false;
}

static void skip_space(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p; -1 when they are not. */
static long hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int d = hex_digit(p[i]);

		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* The length of the UTF-8 sequence at p (well-formed, shortest form, no
 * surrogates, at most U+10FFFF); 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
	unsigned lo = 0x80, hi = 0xBF;

	if (c < 0xC2 || c > 0xF4 || (size_t)(end - p) < n)
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* The escape at p (after the backslash): its length, or 0 when invalid. */
static size_t escape_len(const char *p, const char *end)
{
	long cp, lo;

	if (p >= end)
		return 0;
	switch (*p) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
		return 1;
	}
	if (*p != 'u' || end - p < 5 || (cp = hex4(p + 1)) < 0)
		return 0;
	if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
		return 0;
	if (cp < 0xD800 || cp > 0xDBFF)
		return 5;
	/* a high surrogate: its low half must follow */
	if (end - p < 11 || p[5] != '\\' || p[6] != 'u' || (lo = hex4(p + 7)) < 0xDC00 ||
	    lo > 0xDFFF)
		return 0;
	return 11;
}

/* Bytes a string scan or the escaper must look at: '"', '\\', controls;
 * the scanner also stops at non-ASCII bytes (UTF-8 to validate). */
#define SPECIAL 1
#define NON_ASCII 2
static const unsigned char byte_class[256] = {
	[0 ... 0x1f] = SPECIAL, ['"'] = SPECIAL, ['\\'] = SPECIAL, [0x80 ... 0xff] = NON_ASCII,
};

/* The first byte from p on that byte_class marks (with non_ascii: any
 * class; else SPECIAL only), eight bytes at a time while none is: the
 * bulk of a request is string bytes. */
static const char *skip_plain(const char *p, const char *end, bool non_ascii)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (end - p >= 8) {
		uint64_t x, quote, slash, ctrl;

		memcpy(&x, p, 8);
		quote = x ^ (ones * '"');
		slash = x ^ (ones * '\\');
		/* a zero byte of quote or slash, or a byte below 0x20, sets its high bit */
		ctrl = ((quote - ones) | (slash - ones) | (x - ones * 0x20)) & ~x & highs;
		if (ctrl || (non_ascii && (x & highs)))
			break;
		p += 8;
	}
	while (p < end && !(byte_class[(unsigned char)*p] & (non_ascii ? 3 : SPECIAL)))
		p++;
	return p;
}

/* The string at s->p (the opening quote); v gets its raw span. */
static bool scan_string(struct scan *s, const char **raw, size_t *raw_len, bool *escaped)
{
	const char *p = ++s->p;

	*escaped = false;
	while (p < s->end) {
		unsigned char c;

		p = skip_plain(p, s->end, true);
		if (p == s->end)
			break;
		c = (unsigned char)*p;
		if (c == '"') {
			*raw = s->p;
			*raw_len = (size_t)(p - s->p);
			s->p = p + 1;
			return true;
		}
		if (c < 0x20) {
			s->p = p;
			return fail(s, c ? "control character in string" : "NUL in string");
		}
		if (c == '\\') {
			size_t n = escape_len(p + 1, s->end);

			if (!n) {
				s->p = p;
				return fail(s, s->end - p >= 6 && p[1] == 'u' && hex4(p + 2) == 0
					       ? "NUL (\\u0000) in string" : "invalid escape in string");
			}
			*escaped = true;
			p += 1 + n;
		} else {
			size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)s->end);

			if (!n) {
				s->p = p;
				return fail(s, "invalid UTF-8 in string");
			}
			p += n;
		}
	}
	return fail(s, "unterminated string");
}

static void put_utf8(char **o, unsigned long cp)
{
	unsigned char *d = (unsigned char *)*o;

	if (cp < 0x80) {
		*d++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*d++ = (unsigned char)(0xC0 | cp >> 6);
		*d++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*d++ = (unsigned char)(0xE0 | cp >> 12);
		*d++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		*d++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else {
		*d++ = (unsigned char)(0xF0 | cp >> 18);
		*d++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		*d++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		*d++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	*o = (char *)d;
}

/* Unescape a scanned (so well-formed) string into a; never longer than raw. */
static char *unescape(struct dt_arena *a, const char *raw, size_t n)
{
	char *out = dt_arena_alloc(a, n + 1), *o = out;
	const char *p = raw, *end = raw + n;

	if (!out)
		return NULL;
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
		static const char plain[] = "\"\\/\b\f\n\r\t", named[] = "\"\\/bfnrt";
		unsigned long cp;

		memcpy(o, p, run);
		o += run;
		p += run;
		if (p == end)
			break;
		if (p[1] != 'u') {
			*o++ = plain[strchr(named, p[1]) - named];
			p += 2;
			continue;
		}
		cp = (unsigned long)hex4(p + 2);
		p += 6;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)hex4(p + 2) - 0xDC00);
			p += 6;
		}
		put_utf8(&o, cp);
	}
	*o = '\0';
	return out;
}

static bool scan_number(struct scan *s, struct xj *v)
{
	const char *p = s->p, *start = p;
	char text[MAX_NUMBER_TEXT + 1];
	bool integral = true;

	if (p < s->end && *p == '-')
		p++;
	if (p < s->end && *p == '0')
		p++;
	else if (p < s->end && *p >= '1' && *p <= '9')
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	else
		return fail(s, "invalid number");
	if (p < s->end && *p == '.') {
		integral = false;
		if (++p >= s->end || *p < '0' || *p > '9')
			return fail(s, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		integral = false;
		if (++p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return fail(s, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if ((size_t)(p - start) > MAX_NUMBER_TEXT)
		return fail(s, "number too long");
	memcpy(text, start, (size_t)(p - start));
	text[p - start] = '\0';
	v->number = strtod(text, NULL);
	if (isinf(v->number))
		return fail(s, "number out of range");
	if (integral) {
		errno = 0;
		v->integer = strtoll(text, NULL, 10);
		v->is_integer = errno != ERANGE;
	}
	v->type = XJ_NUMBER;
	s->p = p;
	return true;
}

static bool literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, "invalid literal");
	s->p += n;
	return true;
}

static struct xj *new_value(struct scan *s)
{
	struct xj *v;

	if (++s->values > XREQ_MAX_VALUES) {
		fail(s, "too many values");
		return NULL;
	}
	if (!s->a)
		return memset(&s->scratch, 0, sizeof(s->scratch));
	v = dt_arena_alloc(s->a, sizeof(*v));
	if (!v)
		fail(s, "out of memory");
	return v;
}

static bool scan_value(struct scan *s, struct xj *v, unsigned depth);

/* The members or items of the object or array at s->p, linked under v. */
static bool scan_container(struct scan *s, struct xj *v, unsigned depth)
{
	bool object = *s->p == '{';
	char close = object ? '}' : ']';
	struct xj **tail = &v->first;

	if (depth >= XREQ_MAX_DEPTH)
		return fail(s, "nested too deep");
	v->type = object ? XJ_OBJECT : XJ_ARRAY;
	s->p++;
	skip_space(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return true;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		bool key_escaped = false;
		struct xj *item;

		skip_space(s);
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return fail(s, "expected a member name");
			if (!scan_string(s, &key, &key_len, &key_escaped))
				return false;
			skip_space(s);
			if (s->p >= s->end || *s->p != ':')
				return fail(s, "expected ':'");
			s->p++;
		}
		if (!(item = new_value(s)) || !scan_value(s, item, depth + 1))
			return false;
		if (s->a) {
			item->key = key_escaped ? unescape(s->a, key, key_len) : key;
			item->key_len = key_escaped ? strlen(item->key) : key_len;
			*tail = item;
			tail = &item->next;
			v->len++;
		}
		skip_space(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return true;
		}
		return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static bool scan_value(struct scan *s, struct xj *v, unsigned depth)
{
	const char *start;
	bool ok;

	skip_space(s);
	if (s->p >= s->end)
		return fail(s, "unexpected end of input");
	start = s->p;
	switch (*s->p) {
	case '{':
	case '[':
		ok = scan_container(s, v, depth);
		break;
	case '"':
		v->type = XJ_STRING;
		return scan_string(s, &v->raw, &v->raw_len, &v->escaped);
	case 't':
		v->type = XJ_BOOL;
		v->boolean = true;
		ok = literal(s, "true", 4);
		break;
	case 'f':
		v->type = XJ_BOOL;
		ok = literal(s, "false", 5);
		break;
	case 'n':
		v->type = XJ_NULL;
		ok = literal(s, "null", 4);
		break;
	default:
		ok = scan_number(s, v);
		break;
	}
	v->raw = start;
	v->raw_len = (size_t)(s->p - start);
	return ok;
}

static struct xj *scan_document(struct scan *s)
{
	struct xj *root = new_value(s);

	if (!root || !scan_value(s, root, 0))
		return NULL;
	skip_space(s);
	if (s->p != s->end) {
		fail(s, "text after the JSON value");
		return NULL;
	}
	return root;
}

struct xj *xj_parse(struct dt_arena *a, const char *body, size_t len, char *err, size_t errlen)
{
	struct scan s = { .p = body, .end = body + len, .a = a };
	struct xj *root = scan_document(&s);

	if (!root)
		snprintf(err, errlen, "malformed JSON at byte %zu: %s", (size_t)(s.p - body), s.error);
	return root;
}

bool xj_is_object_text(const char *text, size_t len)
{
	struct scan s = { .p = text, .end = text + len };

	while (s.p < s.end && *s.p && strchr(" \t\r\n", *s.p))
		s.p++;
	return s.p < s.end && *s.p == '{' && scan_document(&s);
}

static bool key_is(const struct xj *m, const char *name, size_t n)
{
	return m->key_len == n && memcmp(m->key, name, n) == 0;
}

const struct xj *xj_get(const struct xj *obj, const char *key)
{
	if (!obj || obj->type != XJ_OBJECT)
		return NULL;
	for (const char *k = key; *k; k += *k == '|') {
		size_t n = 0;

		while (k[n] && k[n] != '|')
			n++;
		for (const struct xj *m = obj->first; m; m = m->next)
			if (key_is(m, k, n))
				return m;
		k += n;
	}
	return NULL;
}

const char *xj_cstr(struct dt_arena *a, const struct xj *s)
{
	return s->escaped ? unescape(a, s->raw, s->raw_len) : dt_arena_strndup(a, s->raw, s->raw_len);
}

/* Lowercase, in copy (which holds v's text from base on), every string
 * held by a member named "type". */
static void lowercase_types(char *copy, const char *base, const struct xj *v)
{
	for (const struct xj *m = v->first; m; m = m->next) {
		if (m->type == XJ_STRING && m->key && key_is(m, "type", 4))
			for (size_t i = 0; i < m->raw_len; i++) {
				char *c = copy + (m->raw - base) + i;

				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			}
		else if (m->type == XJ_OBJECT || m->type == XJ_ARRAY)
			lowercase_types(copy, base, m);
	}
}

const char *xj_text(struct dt_arena *a, const struct xj *v, bool lowercase)
{
	char *copy = dt_arena_strndup(a, v->raw, v->raw_len);

	if (copy && lowercase)
		lowercase_types(copy, v->raw, v);
	return copy;
}

/* ---- writer --------------------------------------------------------------- */

static bool reserve(struct xbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *d;

	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	d = realloc(b->data, cap);
	if (!d) {
		b->oom = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void xb_put(struct xbuf *b, const char *s, size_t n)
{
	if (reserve(b, n)) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

void xb_sep(struct xbuf *b)
{
	if (b->len && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
		xb_lit(b, ",");
}

void xb_key(struct xbuf *b, const char *key)
{
	xb_sep(b);
	xb_lit(b, "\"");
	xb_put(b, key, strlen(key));
	xb_lit(b, "\":");
}

static void escape(struct xbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	for (size_t i = 0; (i = (size_t)(skip_plain(s + i, s + n, false) - s)) < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 'u', '0', '0' };

		xb_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': xb_lit(b, "\\\""); break;
		case '\\': xb_lit(b, "\\\\"); break;
		case '\n': xb_lit(b, "\\n"); break;
		case '\r': xb_lit(b, "\\r"); break;
		case '\t': xb_lit(b, "\\t"); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			xb_put(b, esc, sizeof(esc));
			break;
		}
	}
	xb_put(b, s + run, n - run);
}

void xb_strn(struct xbuf *b, const char *s, size_t n)
{
	xb_lit(b, "\"");
	escape(b, s, n);
	xb_lit(b, "\"");
}

void xb_str(struct xbuf *b, const char *s)
{
	xb_strn(b, s, strlen(s));
}

void xb_esc(struct xbuf *b, const char *s)
{
	escape(b, s, strlen(s));
}

void xb_int(struct xbuf *b, int64_t v)
{
	char text[24];

	xb_put(b, text, (size_t)snprintf(text, sizeof(text), "%" PRId64, v));
}

/* The shortest of %.15g and %.17g that reads back as v: 0.7, not
 * 0.69999999999999996. */
void xb_num(struct xbuf *b, double v)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%.15g", v);

	if (strtod(text, NULL) != v)
		n = snprintf(text, sizeof(text), "%.17g", v);
	xb_put(b, text, (size_t)n);
}

void xb_bool(struct xbuf *b, bool v)
{
	if (v)
		xb_lit(b, "true");
	else
		xb_lit(b, "false");
}

char *xb_finish(struct xbuf *b, size_t *len)
{
	if (b->oom || !reserve(b, 1)) {
		free(b->data);
		b->data = NULL;
		return NULL;
	}
	b->data[b->len] = '\0';
	*len = b->len;
	return b->data;
}
