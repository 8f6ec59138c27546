// SPDX-License-Identifier: MIT
/*
 * Reading an HTTP/1.1 response; see h1resp.h.
 *
 * The head, chunk sizes and trailers are lines: memchr finds a line's end,
 * one table look-up a byte finds a field's colon and checks its name, and
 * eight bytes at a time are checked in the value. A line whole in the bytes fed is read there;
 * only one split across feeds is copied (into r->line), and a field's name
 * and value are copied once, into the head. Body bytes are handed over
 * where they were fed.
 *
 * Stricter than RFC 9112 lets a recipient be, where leniency could frame
 * the body differently from another reader on the way: a bare CR or LF,
 * obs-fold, blanks before a field's colon, a Transfer-Encoding other than
 * "chunked" alone, Content-Length with it or twice, framing fields in an
 * interim response or in the trailers are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1resp.h"

enum part {
	PART_STATUS,            /* the status line (or empty lines before it) */
	PART_FIELDS,            /* head fields, up to the empty line */
	PART_LENGTH_BODY,       /* r->left bytes of Content-Length body */
	PART_CLOSE_BODY,        /* body up to the connection's end */
	PART_CHUNK_SIZE,        /* a chunk's size line */
	PART_CHUNK_DATA,        /* r->left bytes of chunk */
	PART_CHUNK_END,         /* the CRLF after a chunk's data */
	PART_TRAILERS,          /* trailer fields, up to the empty line */
	PART_DONE,
};

/* What a field name is made of (RFC 9110 5.6.2 tchar), and the colon
 * that ends it: one look-up a byte finds the name's end and checks it. */
enum { NAME_OTHER, NAME_TCHAR, NAME_COLON };
static const unsigned char name_class[256] = {
	['0' ... '9'] = NAME_TCHAR, ['A' ... 'Z'] = NAME_TCHAR, ['a' ... 'z'] = NAME_TCHAR,
	['!'] = NAME_TCHAR, ['#'] = NAME_TCHAR, ['$'] = NAME_TCHAR, ['%'] = NAME_TCHAR,
	['&'] = NAME_TCHAR, ['\''] = NAME_TCHAR, ['*'] = NAME_TCHAR, ['+'] = NAME_TCHAR,
	['-'] = NAME_TCHAR, ['.'] = NAME_TCHAR, ['^'] = NAME_TCHAR, ['_'] = NAME_TCHAR,
	['`'] = NAME_TCHAR, ['|'] = NAME_TCHAR, ['~'] = NAME_TCHAR, [':'] = NAME_COLON,
};

static int fail(struct dt_h1resp *r, const char *why)
{
	snprintf(r->error, sizeof(r->error), "%s", why);
	return -1;
}

/* ---- lines ----------------------------------------------------------------- */

static int keep_line(struct dt_h1resp *r, const char *p, size_t n)
{
	if (r->line_len + n > r->line_cap) {
		size_t cap = r->line_cap ? r->line_cap : 256;
		char *line;

		while (cap < r->line_len + n)
			cap *= 2;
		line = realloc(r->line, cap);
		if (!line)
			return fail(r, "out of memory");
		r->line = line;
		r->line_cap = cap;
	}
	memcpy(r->line + r->line_len, p, n);
	r->line_len += n;
	return 0;
}

static bool in_head(const struct dt_h1resp *r)
{
	return r->part == PART_STATUS || r->part == PART_FIELDS || r->part == PART_TRAILERS;
}

/* Bytes of a line taken, which bound what is kept: a head's lines all
 * together, a chunk size line on its own. */
static int count_line(struct dt_h1resp *r, size_t n)
{
	if (in_head(r)) {
		r->head_bytes += n;
		return r->head_bytes > DT_H1RESP_MAX_HEAD ? fail(r, "response head too large") : 0;
	}
	if (r->line_len + n > DT_H1RESP_MAX_HEAD)
		return fail(r, "malformed response: chunk size line too long");
	return 0;
}

/*
 * The next line from p, without its CRLF (which still follows it), in
 * *line and *len: where it was fed when it is whole there, else gathered
 * across feeds. Returns where the bytes after it start; end with *line
 * NULL when it has not ended yet (what came of it is kept); NULL on error.
 * A line ends in CRLF: a bare LF is refused (a reader taking it for a
 * line's end and one not would see different fields).
 */
static const char *take_line(struct dt_h1resp *r, const char *p, const char *end,
			     const char **line, size_t *len)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n = (size_t)((lf ? lf + 1 : end) - p);

	*line = NULL;
	if (count_line(r, n))
		return NULL;
	if (!lf || r->line_len) {
		if (keep_line(r, p, n))
			return NULL;
		if (!lf)
			return end;
		*line = r->line;
		*len = r->line_len;
		r->line_len = 0;        /* read from r->line before the next take */
	} else {
		*line = p;
		*len = n;
	}
	if (*len < 2 || (*line)[*len - 2] != '\r')
		return fail(r, "malformed response: a line ending in a bare LF"), NULL;
	*len -= 2;
	return lf + 1;
}

/* ---- the head -------------------------------------------------------------- */

static bool bytes_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return false;
	return true;
}

/* May some of these eight bytes be below 0x20 (a tab, or not allowed) or
 * DEL? */
static bool word_suspect(const unsigned char *s)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t w, del;

	memcpy(&w, s, sizeof(w));
	del = w ^ (ones * 0x7f);
	return ((w - ones * 0x20) & ~w & highs) || ((del - ones) & ~del & highs);
}

/* Is every byte of a field value allowed (RFC 9110 5.5: VCHAR, obs-text,
 * SP, HTAB)? Eight at a time, the last eight overlapping, while none is
 * suspect: values are most of a head's bytes. A CR among them is a bare
 * one. */
static bool value_chars_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	if (n < 8)
		return bytes_ok(s, n);
	for (; i + 8 <= n; i += 8)
		if (word_suspect(s + i))
			return bytes_ok(s + i, n - i);
	return i == n || !word_suspect(s + n - 8) || bytes_ok(s + n - 8, 8);
}

/* The digits at s (of base 10 or 16): how many, or -1 when none or when
 * the number could overflow (libhttp-parser's bound: what is read so far
 * must leave room for one more digit). */
static long parse_number(const char *s, size_t n, unsigned base, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < n; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && (s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
			d = (unsigned)((s[i] | 0x20) - 'a' + 10);
		else
			break;
		if (v > (UINT64_MAX - base) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return i ? (long)i : -1;
}

static int content_length(struct dt_h1resp *r, const char *v, size_t n)
{
	long digits = parse_number(v, n, 10, &r->left);

	if (r->has_length)
		return fail(r, "malformed response: more than one Content-Length");
	/* then spaces only, as libhttp-parser reads it */
	if (digits < 0 || (size_t)digits + strspn(v + digits, " ") < n)
		return fail(r, "malformed response: invalid Content-Length");
	r->has_length = true;
	return 0;
}

/* Only "chunked" alone: any other coding would reach the client still
 * applied, and "chunked" not last would leave the length to the
 * connection's end (RFC 9112 6.3), where a second reader might not. */
static int transfer_encoding(struct dt_h1resp *r, const char *v, size_t n)
{
	if (r->chunked || n < 7 || strncasecmp(v, "chunked", 7) != 0 ||
	    strspn(v + 7, " ") < n - 7)
		return fail(r, "malformed response: unsupported Transfer-Encoding");
	r->chunked = true;
	return 0;
}

/* Connection's options, comma-separated: close and keep-alive are what
 * the connection's reuse depends on. */
static void connection(struct dt_h1resp *r, const char *v, size_t n)
{
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		v += strspn(v, " \t");
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > v && DT_NAME_IS(v, (size_t)(e - v), "close"))
			r->conn_close = true;
		else if (e > v && DT_NAME_IS(v, (size_t)(e - v), "keep-alive"))
			r->conn_keep_alive = true;
		v = comma ? comma + 1 : end;
	}
}

/* The fields that frame the message or decide the connection's reuse;
 * value is as it came (leading blanks skipped, trailing kept). */
static int framing_field(struct dt_h1resp *r, const char *name, size_t name_len,
			 const char *value, size_t value_len)
{
	if (DT_NAME_IS(name, name_len, "content-length"))
		return content_length(r, value, value_len);
	if (DT_NAME_IS(name, name_len, "transfer-encoding"))
		return transfer_encoding(r, value, value_len);
	if (DT_NAME_IS(name, name_len, "connection"))
		connection(r, value, value_len);
	return 0;
}

static bool is_framing_name(const char *name, size_t len)
{
	return DT_NAME_IS(name, len, "content-length") ||
	       DT_NAME_IS(name, len, "transfer-encoding") || DT_NAME_IS(name, len, "connection");
}

/* "name: value" (RFC 9112 5): a head's field joins the head, a trailer's
 * is checked and dropped. The line's CR follows it (s[n]): no name runs
 * past it. */
static int field_line(struct dt_h1resp *r, const char *s, size_t n, bool trailer)
{
	const char *value, *end = s + n;
	size_t name_len = 0;

	if (s[0] == ' ' || s[0] == '\t')
		return fail(r, "malformed response: a folded header field (obs-fold)");
	while (name_class[(unsigned char)s[name_len]] == NAME_TCHAR)
		name_len++;
	if (!name_len || s[name_len] != ':')
		return fail(r, "malformed response: invalid header field name");
	for (value = s + name_len + 1; value < end && (*value == ' ' || *value == '\t'); value++)
		;
	if (!value_chars_ok((const unsigned char *)value, (size_t)(end - value)))
		return fail(r, "malformed response: invalid character in a header field");
	if (trailer)
		return is_framing_name(s, name_len) ?
		       fail(r, "malformed response: a framing field in the trailers") : 0;
	if (framing_field(r, s, name_len, value, (size_t)(end - value)))
		return -1;
	if (r->fields.n >= DT_H1RESP_MAX_FIELDS)
		return fail(r, "too many response header fields");
	/* a value's trailing blanks are not part of it (RFC 9110 5.5) */
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (dt_headers_add(&r->fields, s, name_len, value, (size_t)(end - value)))
		return fail(r, "out of memory");
	return 0;
}

/* "HTTP/1.x NNN[ reason]": the reason is not read, it says nothing. */
static int status_line(struct dt_h1resp *r, const char *s, size_t n)
{
	if (memchr(s, '\r', n))
		return fail(r, "malformed response: a bare CR in the status line");
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
	    s[8] != ' ' || (n > 12 && s[12] != ' '))
		return fail(r, "malformed response: invalid status line");
	r->status = 0;
	for (size_t i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return fail(r, "malformed response: invalid status line");
		r->status = r->status * 10 + (s[i] - '0');
	}
	if (r->status < 100)
		return fail(r, "malformed response: invalid status code");
	r->http10 = s[7] == '0';
	r->has_length = r->chunked = r->conn_close = r->conn_keep_alive = false;
	r->part = PART_FIELDS;
	return 0;
}

/* How the final head frames the body (RFC 9112 6.3): none after HEAD, 204
 * and 304 whatever the fields say, else chunked, Content-Length or the
 * connection's end. */
static enum part body_part(const struct dt_h1resp *r)
{
	if (r->head_request || r->status == 204 || r->status == 304)
		return PART_DONE;
	if (r->chunked)
		return PART_CHUNK_SIZE;
	if (r->has_length)
		return r->left ? PART_LENGTH_BODY : PART_DONE;
	return PART_CLOSE_BODY;
}

static void drop_fields(struct dt_h1resp *r)
{
	dt_headers_free(&r->fields);
	r->fields = (struct dt_headers){0};
}

/* The empty line: an interim response ends here, the final head is handed
 * over. */
static int head_end(struct dt_h1resp *r)
{
	if (r->has_length && r->chunked)
		return fail(r, "malformed response: both Content-Length and Transfer-Encoding");
	if (r->status == 101)
		return fail(r, "unexpected protocol switch");
	if (r->status < 200) {
		/* 1xx has no body (RFC 9110 15.2): one framed anyway is refused */
		if (r->has_length || r->chunked)
			return fail(r, "malformed response: an interim response with a body");
		drop_fields(r);
		r->part = PART_STATUS;
		return 0;
	}
	r->part = (unsigned char)body_part(r);
	r->head_done = true;
	r->keep_alive = r->part != PART_CLOSE_BODY && !r->conn_close &&
			(!r->http10 || r->conn_keep_alive);
	r->stop = r->ops->head(r->ctx, r->status, &r->fields);
	drop_fields(r);
	free(r->line);
	r->line = NULL;
	r->line_cap = 0;
	r->complete = r->part == PART_DONE;
	return 0;
}

/* ---- the body -------------------------------------------------------------- */

/* "size[ ;extensions]": extensions are not read (none is defined). */
static int chunk_size_line(struct dt_h1resp *r, const char *s, size_t n)
{
	long digits = parse_number(s, n, 16, &r->left);

	if (digits < 0 || ((size_t)digits < n && s[digits] != ';' && s[digits] != ' '))
		return fail(r, "malformed response: invalid chunk size");
	if (memchr(s, '\r', n))
		return fail(r, "malformed response: a bare CR in a chunk size line");
	r->part = r->left ? PART_CHUNK_DATA : PART_TRAILERS;
	return 0;
}

/* Body bytes from p: returns how many were handed over. */
static size_t body(struct dt_h1resp *r, const char *p, size_t avail)
{
	size_t n = avail;

	if (r->part != PART_CLOSE_BODY) {
		if (r->left < n)
			n = (size_t)r->left;
		r->left -= n;
		if (!r->left)
			r->part = r->part == PART_CHUNK_DATA ? PART_CHUNK_END : PART_DONE;
	}
	r->complete = r->part == PART_DONE;
	r->stop = r->ops->body(r->ctx, p, n);
	if (r->stop)
		r->complete = false;    /* as told: it stopped */
	return n;
}

/* A whole line of the part being read. */
static int line(struct dt_h1resp *r, const char *s, size_t n)
{
	switch (r->part) {
	case PART_STATUS:
		return n ? status_line(r, s, n) : 0;     /* empty lines before it skipped */
	case PART_FIELDS:
		return n ? field_line(r, s, n, false) : head_end(r);
	case PART_CHUNK_SIZE:
		return chunk_size_line(r, s, n);
	case PART_CHUNK_END:
		if (n)
			return fail(r, "malformed response: chunk data not followed by CRLF");
		r->part = PART_CHUNK_SIZE;
		return 0;
	case PART_TRAILERS:
		if (n)
			return field_line(r, s, n, true);
		r->part = PART_DONE;
		r->complete = true;
		return 0;
	}
	return fail(r, "internal error: no line expected");
}

/* ---- API ------------------------------------------------------------------- */

void dt_h1resp_init(struct dt_h1resp *r, bool head_request, const struct dt_h1resp_ops *ops,
		    void *ctx)
{
	*r = (struct dt_h1resp){ .ops = ops, .ctx = ctx, .head_request = head_request };
}

void dt_h1resp_free(struct dt_h1resp *r)
{
	dt_headers_free(&r->fields);
	r->fields = (struct dt_headers){0};
	free(r->line);
	r->line = NULL;
	r->line_cap = r->line_len = 0;
}

enum dt_h1resp_state dt_h1resp_feed(struct dt_h1resp *r, const char *buf, size_t len,
				    size_t *used)
{
	const char *p = buf, *end = buf + len;

	r->got_bytes |= len > 0;
	while (p < end && !r->complete && !r->stop) {
		const char *s, *next;
		size_t n;

		if (r->part == PART_LENGTH_BODY || r->part == PART_CLOSE_BODY ||
		    r->part == PART_CHUNK_DATA) {
			p += body(r, p, (size_t)(end - p));
			continue;
		}
		next = take_line(r, p, end, &s, &n);
		if (!next || (s && line(r, s, n))) {
			*used = (size_t)(p - buf);
			return DT_H1RESP_ERROR;
		}
		p = next;
	}
	*used = (size_t)(p - buf);
	if (r->stop)
		return DT_H1RESP_STOPPED;
	return r->complete ? DT_H1RESP_COMPLETE : DT_H1RESP_MORE;
}

enum dt_h1resp_state dt_h1resp_eof(struct dt_h1resp *r)
{
	if (r->complete)
		return DT_H1RESP_COMPLETE;
	if (!r->got_bytes) {
		snprintf(r->error, sizeof(r->error), "the connection closed with no response");
		return DT_H1RESP_ERROR;
	}
	if (r->part == PART_CLOSE_BODY && !r->stop) {
		r->part = PART_DONE;
		r->complete = true;
		return DT_H1RESP_COMPLETE;
	}
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "the connection closed before the response ended");
	return r->stop ? DT_H1RESP_STOPPED : DT_H1RESP_ERROR;
}

bool dt_h1resp_keep_alive(const struct dt_h1resp *r)
{
	return r->complete && r->keep_alive;
}
