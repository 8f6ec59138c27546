// SPDX-License-Identifier: MIT
/* Server-Sent Events parser; see sse.h. */
#include <stdlib.h>
#include <string.h>

#include "sse.h"

static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

void dt_sse_init(struct dt_sse *p, size_t max_event)
{
	*p = (struct dt_sse){ .max_event = max_event };
}

void dt_sse_free(struct dt_sse *p)
{
	free(p->line);
	free(p->data);
	free(p->type);
	dt_sse_init(p, p->max_event);
}

/* Append n bytes to a NUL-terminated growing string. */
static int append(char **s, size_t *len, size_t *cap, const char *add, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t want = *cap ? *cap * 2 : 256;
		char *grown;

		while (want < *len + n + 1)
			want *= 2;
		grown = realloc(*s, want);
		if (!grown)
			return -1;
		*s = grown;
		*cap = want;
	}
	memcpy(*s + *len, add, n);
	*len += n;
	(*s)[*len] = '\0';
	return 0;
}

static int dispatch(struct dt_sse *p, dt_sse_cb cb, void *arg)
{
	struct dt_sse_event ev = {
		.type = p->type_len ? p->type : "message",
		.data = p->data_len ? p->data : "",
		.len = p->data_len,
	};
	bool has_data = p->has_data;

	p->has_data = false;
	p->data_len = 0;
	p->type_len = 0;
	return has_data ? cb(arg, &ev) : 0;
}

static bool field_is(const char *line, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(line, name, n) == 0;
}

/* One complete line (without its end). */
static int process_line(struct dt_sse *p, const char *line, size_t n, dt_sse_cb cb, void *arg)
{
	const char *colon, *value;
	size_t name_len, value_len;

	if (n == 0)
		return dispatch(p, cb, arg);
	if (line[0] == ':')
		return 0; /* a comment: keep-alives */
	colon = memchr(line, ':', n);
	name_len = colon ? (size_t)(colon - line) : n;
	value = colon ? colon + 1 : line + n;
	value_len = n - (size_t)(value - line);
	if (value_len && *value == ' ') {
		value++;
		value_len--;
	}
	if (field_is(line, name_len, "data")) {
		if (p->has_data && append(&p->data, &p->data_len, &p->data_cap, "\n", 1))
			return -1;
		p->has_data = true;
		if (append(&p->data, &p->data_len, &p->data_cap, value, value_len))
			return -1;
	} else if (field_is(line, name_len, "event")) {
		p->type_len = 0;
		if (append(&p->type, &p->type_len, &p->type_cap, value, value_len))
			return -1;
	}
	return p->data_len + p->type_len > p->max_event ? -1 : 0;
}

static const char *line_end(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\r')
			return s + i;
	return NULL;
}

/* A leading BOM is skipped, even split across reads; a partial one that
 * turns out not to be one is text. Returns bytes consumed, or -1. */
static int skip_bom(struct dt_sse *p, const char *buf, size_t len)
{
	size_t used = 0;

	while (used < len && (unsigned char)buf[used] == bom[p->bom_seen]) {
		used++;
		if (++p->bom_seen == sizeof(bom)) {
			p->started = true;
			return (int)used;
		}
	}
	if (used == len)
		return (int)used;
	p->started = true;
	if (append(&p->line, &p->line_len, &p->line_cap, (const char *)bom, p->bom_seen))
		return -1;
	return (int)used;
}

int dt_sse_feed(struct dt_sse *p, const char *buf, size_t len, dt_sse_cb cb, void *arg)
{
	while (len) {
		const char *end, *line;
		size_t n, line_n;
		int rc;

		if (!p->started) {
			if ((rc = skip_bom(p, buf, len)) < 0)
				return -1;
			buf += rc;
			len -= (size_t)rc;
			continue;
		}
		if (p->after_cr) {
			p->after_cr = false;
			if (*buf == '\n') {
				buf++;
				len--;
				continue;
			}
		}
		end = line_end(buf, len);
		if (!end) {
			if (append(&p->line, &p->line_len, &p->line_cap, buf, len))
				return -1;
			return p->line_len > p->max_event ? -1 : 0;
		}
		n = (size_t)(end - buf);
		line = buf;
		line_n = n;
		if (p->line_len) {
			if (append(&p->line, &p->line_len, &p->line_cap, buf, n))
				return -1;
			line = p->line;
			line_n = p->line_len;
		}
		p->after_cr = *end == '\r';
		buf = end + 1;
		len -= n + 1;
		rc = process_line(p, line, line_n, cb, arg);
		p->line_len = 0;
		if (rc)
			return -1;
	}
	return 0;
}
