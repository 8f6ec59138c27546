/* SPDX-License-Identifier: MIT */
/*
 * Writes provider responses as JSON text from templates.
 *
 * Requests are read with jansson; responses on the hot path are not built
 * with it: json_pack + json_dumpb cost 40% of the CPU per request (the dump
 * formats every container's address for its loop check), twice what this
 * writer costs, and fakellm must never be a benchmark's bottleneck.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fakellm.h"

#define JW_INITIAL_CAP (16 * 1024)

static bool jw_reserve(struct fl_jw *w, size_t more)
{
	size_t cap = w->cap ? w->cap : JW_INITIAL_CAP;
	char *grown;

	if (w->failed)
		return false;
	if (more <= w->cap - w->len)
		return true;
	while (cap - w->len < more)
		cap *= 2;
	grown = realloc(w->buf, cap);
	if (!grown) {
		w->failed = true;
		return false;
	}
	w->buf = grown;
	w->cap = cap;
	return true;
}

static void jw_put(struct fl_jw *w, const char *s, size_t len)
{
	if (!jw_reserve(w, len))
		return;
	memcpy(w->buf + w->len, s, len);
	w->len += len;
}

static void jw_string(struct fl_jw *w, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	/* Worst case: every byte becomes \u00XX. */
	if (!jw_reserve(w, 6 * len + 2))
		return;
	w->buf[w->len++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char *out = w->buf + w->len;

		if (ch >= 0x20 && ch != '"' && ch != '\\') {
			run++;
			continue;
		}
		memcpy(out, s + i - run, run);
		out += run;
		w->len += run;
		run = 0;
		*out++ = '\\';
		switch (ch) {
		case '"':  *out = '"'; break;
		case '\\': *out = '\\'; break;
		case '\n': *out = 'n'; break;
		case '\r': *out = 'r'; break;
		case '\t': *out = 't'; break;
		case '\b': *out = 'b'; break;
		case '\f': *out = 'f'; break;
		default:
			memcpy(out, "u00", 3);
			out[3] = hex[ch >> 4];
			out[4] = hex[ch & 15];
			w->len += 4;
		}
		w->len += 2;
	}
	memcpy(w->buf + w->len, s + len - run, run);
	w->len += run;
	w->buf[w->len++] = '"';
}

static void jw_uint(struct fl_jw *w, unsigned long long v)
{
	char digits[24];
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jw_put(w, digits + n, sizeof(digits) - n);
}

void fl_jw_reset(struct fl_jw *w)
{
	w->len = 0;
	w->failed = false;
}

void fl_jw_format(struct fl_jw *w, const char *fmt, ...)
{
	const char *s, *lit = fmt;
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%')
			continue;
		jw_put(w, lit, (size_t)(fmt - lit));
		switch (*++fmt) {
		case 's':
			s = va_arg(ap, const char *);
			if (s)
				jw_string(w, s, strlen(s));
			else
				jw_put(w, "null", 4);
			break;
		case 'S':
			s = va_arg(ap, const char *);
			jw_string(w, s, va_arg(ap, size_t));
			break;
		case 'R':
			s = va_arg(ap, const char *);
			jw_put(w, s, va_arg(ap, size_t));
			break;
		case 'u':
			jw_uint(w, va_arg(ap, unsigned));
			break;
		case 'U':
			jw_uint(w, va_arg(ap, unsigned long long));
			break;
		default: /* "%%" */
			jw_put(w, fmt, 1);
			break;
		}
		lit = fmt + 1;
	}
	jw_put(w, lit, (size_t)(fmt - lit));
	va_end(ap);
}

void fl_jw_free(struct fl_jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}
