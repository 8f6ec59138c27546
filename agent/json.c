// SPDX-License-Identifier: MIT
/*
 * JSON scanner and writer; see json.h. The scanner makes one pass,
 * allocates from the caller's arena and copies a string only when it is
 * read. Strings, the bulk of any document, are scanned and escaped eight
 * bytes at a time.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "json.h"

/* ---- bytes ---------------------------------------------------------------- */

/* Bytes a string scan or the escaper must look at: '"', '\\', controls;
 * the scanner also stops at non-ASCII bytes (UTF-8 to validate). */
#define SPECIAL 1
#define NON_ASCII 2
static const unsigned char byte_class[256] = {
	[0 ... 0x1f] = SPECIAL, ['"'] = SPECIAL, ['\\'] = SPECIAL, [0x80 ... 0xff] = NON_ASCII,
};

/* The first byte from p on that byte_class marks (with non_ascii: any
 * class; else SPECIAL only), eight bytes at a time while none is. */
static const char *skip_plain(const char *p, const char *end, bool non_ascii)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (end - p >= 8) {
		uint64_t x, quote, slash, hit;

		memcpy(&x, p, 8);
		quote = x ^ (ones * '"');
		slash = x ^ (ones * '\\');
		/* a zero byte of quote or slash, or a byte below 0x20, sets its
		 * high bit (a borrow may set more, only above the first) */
		hit = ((quote - ones) | (slash - ones) | (x - ones * 0x20)) & ~x & highs;
		if (non_ascii)
			hit |= x & highs;
		if (hit) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			/* most strings are short: the first marked byte at once */
			return p + (__builtin_ctzll(hit) >> 3);
#else
			break;
#endif
		}
		p += 8;
	}
	while (p < end && !(byte_class[(unsigned char)*p] & (non_ascii ? SPECIAL | NON_ASCII : SPECIAL)))
		p++;
	return p;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
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

/* Unescape a scanned (so well-formed) string into a, with its length;
 * never longer than raw. */
static char *unescape(struct dt_arena *a, const char *raw, size_t n, size_t *len)
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
	*len = (size_t)(o - out);
	return out;
}

/* ---- scanner -------------------------------------------------------------- */

struct scan {
	const char *base, *p, *end;
	struct dt_arena *a;     /* NULL: validate only, build nothing */
	struct dt_json scratch; /* the value being scanned when building nothing */
	size_t values;
	const char *error;      /* what is wrong, at p */
};

static bool fail(struct scan *s, const char *why)
{
	if (!s->error)
		s->error = why;
	return false;
}

/* Inline: called around every value and member, nearly always at none. */
static inline void skip_space(struct scan *s)
{
	while (s->p < s->end && is_space(*s->p))
		s->p++;
}

/* The string at s->p (the opening quote): its contents' span. */
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

static const char *skip_digits(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* Integers of up to 18 digits are read here (exact in int64, and what
 * every token count and index is); others go through strtod. */
static bool scan_number(struct scan *s, struct dt_json *v)
{
	const char *p = s->p, *start = p, *digits;
	char text[DT_JSON_MAX_NUMBER_TEXT + 1];
	bool integral = true, negative = false;

	if (p < s->end && *p == '-') {
		negative = true;
		p++;
	}
	digits = p;
	if (p < s->end && *p == '0')
		p++;
	else if (p < s->end && *p >= '1' && *p <= '9')
		p = skip_digits(p, s->end);
	else
		return fail(s, "invalid number");
	if (p < s->end && *p == '.') {
		integral = false;
		if (++p >= s->end || *p < '0' || *p > '9')
			return fail(s, "invalid number");
		p = skip_digits(p, s->end);
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		integral = false;
		if (++p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return fail(s, "invalid number");
		p = skip_digits(p, s->end);
	}
	if ((size_t)(p - start) > DT_JSON_MAX_NUMBER_TEXT)
		return fail(s, "number too long");
	v->type = DT_JSON_NUMBER;
	s->p = p;
	if (integral && p - digits <= 18) {
		int64_t n = 0;

		for (const char *d = digits; d < p; d++)
			n = n * 10 + (*d - '0');
		v->integer = negative ? -n : n;
		v->number = negative ? -(double)n : (double)n; /* -0 stays -0 */
		v->is_integer = true;
		return true;
	}
	memcpy(text, start, (size_t)(p - start));
	text[p - start] = '\0';
	v->number = strtod(text, NULL);
	if (isinf(v->number)) {
		s->p = start;
		return fail(s, "number out of range");
	}
	if (integral) {
		errno = 0;
		v->integer = strtoll(text, NULL, 10);
		v->is_integer = errno != ERANGE;
	}
	return true;
}

static bool literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, "invalid literal");
	s->p += n;
	return true;
}

static struct dt_json *new_value(struct scan *s)
{
	struct dt_json *v;

	if (++s->values > DT_JSON_MAX_VALUES) {
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

static bool scan_value(struct scan *s, struct dt_json *v, unsigned depth);

/* The member name at s->p, unescaped when it has escapes, and its ':'. */
static bool scan_key(struct scan *s, struct dt_json *item)
{
	const char *key;
	size_t key_len;
	bool escaped;

	if (s->p >= s->end || *s->p != '"')
		return fail(s, "expected a member name");
	if (!scan_string(s, &key, &key_len, &escaped))
		return false;
	if (s->a) {
		item->key = escaped ? unescape(s->a, key, key_len, &key_len) : key;
		item->key_len = key_len;
		if (!item->key)
			return fail(s, "out of memory");
	}
	skip_space(s);
	if (s->p >= s->end || *s->p != ':')
		return fail(s, "expected ':'");
	s->p++;
	return true;
}

/* The members or items of the object or array at s->p, linked under v. */
static bool scan_container(struct scan *s, struct dt_json *v, unsigned depth)
{
	bool object = *s->p == '{';
	char close = object ? '}' : ']';
	struct dt_json **tail = &v->first;

	if (depth >= DT_JSON_MAX_DEPTH)
		return fail(s, "nested too deep");
	v->type = object ? DT_JSON_OBJECT : DT_JSON_ARRAY;
	s->p++;
	skip_space(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return true;
	}
	for (;;) {
		struct dt_json *item = new_value(s);

		skip_space(s);
		if (!item || (object && !scan_key(s, item)) || !scan_value(s, item, depth + 1))
			return false;
		if (s->a) {
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

static bool scan_value(struct scan *s, struct dt_json *v, unsigned depth)
{
	const char *raw;
	size_t raw_len;
	bool ok;

	skip_space(s);
	if (s->p >= s->end)
		return fail(s, "unexpected end of input");
	v->text = s->p;
	v->offset = (size_t)(s->p - s->base);
	switch (*s->p) {
	case '{':
	case '[':
		ok = scan_container(s, v, depth);
		break;
	case '"':
		v->type = DT_JSON_STRING;
		ok = scan_string(s, &raw, &raw_len, &v->escaped);
		break;
	case 't':
		v->type = DT_JSON_BOOL;
		v->boolean = true;
		ok = literal(s, "true", 4);
		break;
	case 'f':
		v->type = DT_JSON_BOOL;
		ok = literal(s, "false", 5);
		break;
	case 'n':
		v->type = DT_JSON_NULL;
		ok = literal(s, "null", 4);
		break;
	default:
		ok = scan_number(s, v);
		break;
	}
	v->length = (size_t)(s->p - v->text);
	return ok;
}

static struct dt_json *scan_document(struct scan *s)
{
	struct dt_json *root = new_value(s);

	if (!root || !scan_value(s, root, 0))
		return NULL;
	skip_space(s);
	if (s->p != s->end) {
		fail(s, "text after the JSON value");
		return NULL;
	}
	return root;
}

struct dt_json *dt_json_parse(struct dt_arena *a, const char *text, size_t len,
			      char *err, size_t errlen)
{
	struct scan s = { .base = text, .p = text, .end = text + len, .a = a };
	struct dt_json *root = scan_document(&s);

	if (!root && errlen)
		snprintf(err, errlen, "malformed JSON at byte %zu: %s", (size_t)(s.p - text), s.error);
	return root;
}

bool dt_json_is_object_text(const char *text, size_t len)
{
	struct scan s = { .base = text, .p = text, .end = text + len };

	skip_space(&s);
	return s.p < s.end && *s.p == '{' && scan_document(&s);
}

/* ---- reading -------------------------------------------------------------- */

static bool key_is(const struct dt_json *m, const char *name, size_t n)
{
	return m->key_len == n && memcmp(m->key, name, n) == 0;
}

const struct dt_json *dt_json_get(const struct dt_json *obj, const char *key)
{
	if (!obj || obj->type != DT_JSON_OBJECT)
		return NULL;
	for (const char *k = key;; k++) {
		const struct dt_json *found = NULL;
		size_t n = (size_t)(strchrnul(k, '|') - k);

		for (const struct dt_json *m = obj->first; m; m = m->next)
			if (key_is(m, k, n))
				found = m;
		if (found)
			return found;
		k += n;
		if (!*k)
			return NULL;
	}
}

const struct dt_json *dt_json_at(const struct dt_json *v, size_t i)
{
	const struct dt_json *item;

	if (!v || v->type != DT_JSON_ARRAY)
		return NULL;
	for (item = v->first; item && i; i--)
		item = item->next;
	return item;
}

int64_t dt_json_get_int(const struct dt_json *obj, const char *key, int64_t def)
{
	const struct dt_json *v = dt_json_get(obj, key);

	return v && v->type == DT_JSON_NUMBER && v->is_integer ? v->integer : def;
}

bool dt_json_get_true(const struct dt_json *obj, const char *key)
{
	const struct dt_json *v = dt_json_get(obj, key);

	return v && v->type == DT_JSON_BOOL && v->boolean;
}

const char *dt_json_strn(struct dt_arena *a, const struct dt_json *v, size_t *len)
{
	if (!v || v->type != DT_JSON_STRING)
		return NULL;
	if (v->escaped)
		return unescape(a, v->text + 1, v->length - 2, len);
	*len = v->length - 2;
	return v->text + 1;
}

const char *dt_json_cstr(struct dt_arena *a, const struct dt_json *v)
{
	size_t len;

	if (!v || v->type != DT_JSON_STRING)
		return NULL;
	if (v->escaped)
		return unescape(a, v->text + 1, v->length - 2, &len);
	return dt_arena_strndup(a, v->text + 1, v->length - 2);
}

/* Lowercase, in copy (which holds v's text), every string held by a member
 * named "type". */
static void lowercase_types(char *copy, const char *base, const struct dt_json *v)
{
	for (const struct dt_json *m = v->first; m; m = m->next) {
		if (m->type == DT_JSON_STRING && m->key && key_is(m, "type", 4)) {
			char *c = copy + (m->text - base);

			for (size_t i = 0; i < m->length; i++)
				if (c[i] >= 'A' && c[i] <= 'Z')
					c[i] = (char)(c[i] - 'A' + 'a');
		} else if (m->type == DT_JSON_OBJECT || m->type == DT_JSON_ARRAY) {
			lowercase_types(copy, base, m);
		}
	}
}

/* Drop, in place, the whitespace outside strings of well-formed text. */
static void compact(char *t)
{
	char *o = t;
	bool in_string = false;

	for (; *t; t++) {
		if (in_string && *t == '\\')
			*o++ = *t++; /* and the escaped byte after it */
		else if (*t == '"')
			in_string = !in_string;
		else if (!in_string && is_space(*t))
			continue;
		*o++ = *t;
	}
	*o = '\0';
}

const char *dt_json_text(struct dt_arena *a, const struct dt_json *v, unsigned flags)
{
	char *copy = dt_arena_strndup(a, v->text, v->length);

	if (!copy)
		return NULL;
	if (flags & DT_JSON_LOWERCASE_TYPES)
		lowercase_types(copy, v->text, v);
	if (flags & DT_JSON_COMPACT)
		compact(copy);
	return copy;
}

char *dt_json_splice_str(const char *source, size_t len, const struct dt_json *obj,
			 const char *key, const char *value, size_t *out_len)
{
	const struct dt_json *found = NULL;
	size_t n = strlen(key), count = 0;
	struct dt_jbuf b = { 0 };

	if (!obj || obj->type != DT_JSON_OBJECT)
		return NULL;
	for (const struct dt_json *m = obj->first; m; m = m->next)
		if (key_is(m, key, n) && count++ == 0)
			found = m;
	if (count != 1 || found->type != DT_JSON_STRING || found->offset + found->length > len)
		return NULL;
	dt_jbuf_put(&b, source, found->offset);
	dt_jbuf_str(&b, value);
	dt_jbuf_put(&b, source + found->offset + found->length, len - found->offset - found->length);
	return dt_jbuf_finish(&b, out_len);
}

/* ---- writer --------------------------------------------------------------- */

static bool reserve(struct dt_jbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *d;

	if (b->failed)
		return false;
	if (b->cap - b->len >= n)
		return true;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	d = realloc(b->data, cap);
	if (!d) {
		b->failed = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void dt_jbuf_put(struct dt_jbuf *b, const char *s, size_t n)
{
	if (n && reserve(b, n)) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

void dt_jbuf_sep(struct dt_jbuf *b)
{
	if (b->len && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
		dt_jbuf_lit(b, ",");
}

void dt_jbuf_key(struct dt_jbuf *b, const char *key)
{
	dt_jbuf_sep(b);
	dt_jbuf_lit(b, "\"");
	dt_jbuf_put(b, key, strlen(key));
	dt_jbuf_lit(b, "\":");
}

void dt_jbuf_escn(struct dt_jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* the short escapes; any other control character is \u00XX */
	static const char named[0x60] = {
		['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
		['"'] = '"', ['\\'] = '\\',
	};
	size_t run = 0;

	for (size_t i = 0; (i = (size_t)(skip_plain(s + i, s + n, false) - s)) < n; i++) {
		unsigned char c = (unsigned char)s[i];

		dt_jbuf_put(b, s + run, i - run);
		run = i + 1;
		if (named[c]) {
			char pair[2] = { '\\', named[c] };

			dt_jbuf_put(b, pair, sizeof(pair));
		} else {
			char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			dt_jbuf_put(b, u, sizeof(u));
		}
	}
	dt_jbuf_put(b, s + run, n - run);
}

void dt_jbuf_esc(struct dt_jbuf *b, const char *s)
{
	dt_jbuf_escn(b, s, strlen(s));
}

void dt_jbuf_strn(struct dt_jbuf *b, const char *s, size_t n)
{
	dt_jbuf_lit(b, "\"");
	dt_jbuf_escn(b, s, n);
	dt_jbuf_lit(b, "\"");
}

void dt_jbuf_str(struct dt_jbuf *b, const char *s)
{
	if (s)
		dt_jbuf_strn(b, s, strlen(s));
	else
		dt_jbuf_lit(b, "null");
}

void dt_jbuf_int(struct dt_jbuf *b, int64_t v)
{
	char text[DT_DECIMAL_MAX + 1];
	char *p = dt_decimal(text + sizeof(text), v < 0 ? -(uint64_t)v : (uint64_t)v);

	if (v < 0)
		*--p = '-';
	dt_jbuf_put(b, p, (size_t)(text + sizeof(text) - p));
}

void dt_jbuf_num(struct dt_jbuf *b, double v)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%.15g", v);

	if (strtod(text, NULL) != v)
		n = snprintf(text, sizeof(text), "%.17g", v);
	dt_jbuf_put(b, text, (size_t)n);
}

void dt_jbuf_bool(struct dt_jbuf *b, bool v)
{
	if (v)
		dt_jbuf_lit(b, "true");
	else
		dt_jbuf_lit(b, "false");
}

void dt_jbuf_object(struct dt_jbuf *b, const char *text, size_t len)
{
	if (dt_json_is_object_text(text, len))
		dt_jbuf_put(b, text, len);
	else
		dt_jbuf_lit(b, "{}");
}

char *dt_jbuf_finish(struct dt_jbuf *b, size_t *len)
{
	char *text;

	if (!reserve(b, 1)) {
		dt_jbuf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0';
	if (len)
		*len = b->len;
	text = b->data;
	*b = (struct dt_jbuf){ 0 };
	return text;
}

void dt_jbuf_free(struct dt_jbuf *b)
{
	free(b->data);
	*b = (struct dt_jbuf){ 0 };
}
