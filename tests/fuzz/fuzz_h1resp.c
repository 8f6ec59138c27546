// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for reading a provider's HTTP/1.1 response (h1resp.c,
 * the own upstream client's parser). Input: byte 0 picks the piece size the
 * rest is fed in (1 to 64 bytes: heads and chunks split anywhere), whether
 * the request was HEAD, and whether a callback stops the reading; the rest
 * is what the provider sent, then the connection ends.
 *
 * Checked: the head comes once and before any body byte, nothing is fed
 * after the reader stopped, no crash or leak, and the head read in pieces
 * (each in a buffer of its own, freed after its feed: a field kept pointing
 * into the bytes fed is caught) is the head read whole.
 *
 * And, differentially, h1resp read whole against libhttp-parser (the
 * parser h1resp replaced, kept here only as the oracle, with the rules
 * h1resp had on top of it): they agree on refusing, the status, the
 * fields, the body bytes, where the response ends and the connection's
 * reuse. Where h1resp is stricter on purpose, each of its refusals is
 * allowed only when the input has what it refuses (deliberate[] below);
 * h1resp never accepts what the oracle refuses, but for 204 and 304, whose
 * body h1resp never reads (RFC 9110 6.4.1) where libhttp-parser reads one
 * when a Content-Length says so.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <http_parser.h>

#include "h1resp.h"

struct buf {
	char *p;
	size_t len;
};

static void put(struct buf *b, const char *s, size_t n)
{
	char *p = realloc(b->p, b->len + n + 1);

	if (!p)
		abort();
	if (n)
		memcpy(p + b->len, s, n);
	b->p = p;
	b->len += n;
	p[b->len] = '\0';
}

static bool same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (!a->len || memcmp(a->p, b->p, a->len) == 0);
}

/* "status\nname\0value\0..." */
static void put_status(struct buf *b, int status)
{
	char code[4] = { (char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
			 (char)('0' + status % 10), '\n' };

	put(b, code, sizeof(code));
}

static void put_field(struct buf *b, const char *name, size_t name_len, const char *value,
		      size_t value_len)
{
	put(b, name, name_len);
	put(b, "", 1);
	put(b, value, value_len);
	put(b, "", 1);
}

/* ---- piecewise == whole, with stops ------------------------------------------ */

struct run {
	int heads;
	size_t body;
	bool stop_in_head, stop_in_body;
	struct buf head;
};

static bool on_head(void *ctx, int status, const struct dt_headers *h)
{
	struct run *r = ctx;

	if (r->heads++ || status < 200 || status > 999)
		abort();
	put_status(&r->head, status);
	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].name[0] && !h->v[i].value)
			abort();
		put_field(&r->head, h->v[i].name, h->v[i].name_len, h->v[i].value,
			  h->v[i].value_len);
	}
	return r->stop_in_head;
}

static bool on_body(void *ctx, const char *buf, size_t len)
{
	struct run *r = ctx;

	if (!r->heads || !len || !buf)
		abort();
	r->body += len;
	return r->stop_in_body && r->body > 16;
}

static const struct dt_h1resp_ops ops = { .head = on_head, .body = on_body };

/* Read data[1..size) fed piece bytes at a time, each piece copied into a
 * buffer of its own that is freed after its feed. */
static enum dt_h1resp_state read_all(const uint8_t *data, size_t size, size_t piece,
				     struct run *r)
{
	struct dt_h1resp resp;
	enum dt_h1resp_state st = DT_H1RESP_MORE;
	size_t off = 1;

	r->stop_in_head = data[0] & 0x40 && !(data[0] & 0x80);
	r->stop_in_body = data[0] & 0x80 && !(data[0] & 0x40);
	dt_h1resp_init(&resp, (data[0] & 0xc0) == 0xc0, &ops, r);
	while (off < size && st == DT_H1RESP_MORE) {
		size_t n = size - off < piece ? size - off : piece, used;
		char *bytes = malloc(n);

		if (!bytes)
			abort();
		memcpy(bytes, data + off, n);
		st = dt_h1resp_feed(&resp, bytes, n, &used);
		free(bytes);
		if (used > n || (st == DT_H1RESP_MORE && used != n))
			abort();
		off += n;
	}
	if (st == DT_H1RESP_MORE)
		st = dt_h1resp_eof(&resp);
	if (st == DT_H1RESP_ERROR && !resp.error[0])
		abort();
	if (st == DT_H1RESP_COMPLETE && r->heads != 1)
		abort();
	dt_h1resp_free(&resp);
	return st;
}

/* ---- what each reader made of the whole input --------------------------------- */

struct verdict {
	bool refused;           /* malformed, said while reading */
	bool head;              /* the final head was read */
	int status;
	struct buf fields;      /* the final head's */
	struct buf body;
	bool complete;
	bool at_eof;            /* complete (or cut short) only by the end */
	size_t used;            /* where a response complete before the end ended */
	bool keep_alive;
	const char *error;
};

static void verdict_free(struct verdict *v)
{
	free(v->fields.p);
	free(v->body.p);
}

static bool mine_head(void *ctx, int status, const struct dt_headers *h)
{
	struct verdict *v = ctx;

	v->head = true;
	v->status = status;
	for (size_t i = 0; i < h->n; i++)
		put_field(&v->fields, h->v[i].name, h->v[i].name_len, h->v[i].value,
			  h->v[i].value_len);
	return false;
}

static bool mine_body(void *ctx, const char *buf, size_t len)
{
	put(&((struct verdict *)ctx)->body, buf, len);
	return false;
}

static const struct dt_h1resp_ops mine_ops = { .head = mine_head, .body = mine_body };

static void read_mine(const char *in, size_t n, bool head_request, struct verdict *v,
		      struct dt_h1resp *r)
{
	enum dt_h1resp_state st;

	dt_h1resp_init(r, head_request, &mine_ops, v);
	st = dt_h1resp_feed(r, in, n, &v->used);
	v->refused = st == DT_H1RESP_ERROR;
	if (st == DT_H1RESP_MORE) {
		v->at_eof = true;
		st = dt_h1resp_eof(r);
	}
	v->complete = st == DT_H1RESP_COMPLETE;
	v->keep_alive = dt_h1resp_keep_alive(r);
	v->error = r->error;
}

/* libhttp-parser with the rules h1resp had on it: interim responses
 * skipped, at most DT_H1RESP_MAX_FIELDS fields, no status below 100, no
 * protocol switch, no body in an interim response. Every message's fields
 * are kept as they came, for the rules on deliberate refusals. */
struct oracle {
	http_parser p;
	struct verdict *v;
	bool head_request;
	const char *in;
	size_t at;              /* the byte being fed */
	struct buf starts;      /* offsets where messages began */
	struct buf name, value;
	bool in_value;
	size_t fields;          /* of the message being read */
	struct buf interim, trailers, every;    /* "name\0value\0" ... */
	struct buf pieces;      /* offsets and lengths of the body's pieces */
	bool control_in_value;  /* a field value held a control character */
};

static bool control_char(const char *s, size_t n);

static struct oracle *of(http_parser *p)
{
	return p->data;
}

static int oracle_refuse(struct oracle *o)
{
	o->v->refused = true;
	return -1;
}

/* The field read so far: to the final head, the interim's or the
 * trailers' list, and the list of all. */
static void oracle_commit(struct oracle *o)
{
	size_t len = o->value.len;

	if (!o->in_value)
		return;
	while (len && (o->value.p[len - 1] == ' ' || o->value.p[len - 1] == '\t'))
		len--;
	put_field(&o->every, o->name.p, o->name.len, o->value.p, o->value.len);
	o->control_in_value |= control_char(o->value.p, o->value.len);
	if (o->v->head)
		put_field(&o->trailers, o->name.p, o->name.len, o->value.p, o->value.len);
	else
		put_field(&o->v->fields, o->name.p, o->name.len, o->value.p, len);
	o->name.len = o->value.len = 0;
	o->in_value = false;
}

static int oracle_begin(http_parser *p)
{
	struct oracle *o = of(p);

	o->v->fields.len = 0;
	o->fields = 0;
	put(&o->starts, (const char *)&o->at, sizeof(o->at));
	return 0;
}

static int oracle_field(http_parser *p, const char *at, size_t len)
{
	struct oracle *o = of(p);

	if (o->in_value) {
		oracle_commit(o);
		if (!o->v->head && ++o->fields >= DT_H1RESP_MAX_FIELDS)
			return oracle_refuse(o);
	}
	put(&o->name, at, len);
	return 0;
}

static int oracle_value(http_parser *p, const char *at, size_t len)
{
	struct oracle *o = of(p);

	o->in_value = true;
	put(&o->value, at, len);
	return 0;
}

static int oracle_headers_complete(http_parser *p)
{
	struct oracle *o = of(p);

	oracle_commit(o);
	if (p->status_code < 100 || p->status_code == 101 || p->upgrade)
		return oracle_refuse(o);
	if (p->status_code < 200) {
		put(&o->interim, o->v->fields.p, o->v->fields.len);
		return 0;
	}
	o->v->head = true;
	o->v->status = p->status_code;
	o->v->keep_alive = http_should_keep_alive(p);
	return o->head_request;
}

static int oracle_body(http_parser *p, const char *at, size_t len)
{
	struct oracle *o = of(p);
	size_t piece[2] = { (size_t)(at - o->in), len }, last[2];

	if (!o->v->head)
		return oracle_refuse(o);
	put(&o->v->body, at, len);
	if (o->pieces.len) {
		memcpy(last, o->pieces.p + o->pieces.len - sizeof(last), sizeof(last));
		if (last[0] + last[1] == piece[0]) {
			/* fed a byte at a time: one piece */
			o->pieces.len -= sizeof(last);
			piece[0] = last[0];
			piece[1] += last[1];
		}
	}
	put(&o->pieces, (const char *)piece, sizeof(piece));
	return 0;
}

static int oracle_complete(http_parser *p)
{
	struct oracle *o = of(p);

	if (!o->v->head)
		return 0;
	oracle_commit(o);       /* the last trailer */
	o->v->complete = true;
	o->v->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings oracle_settings = {
	.on_message_begin = oracle_begin,
	.on_header_field = oracle_field,
	.on_header_value = oracle_value,
	.on_headers_complete = oracle_headers_complete,
	.on_body = oracle_body,
	.on_message_complete = oracle_complete,
};

static void oracle_run(const char *in, size_t n, struct oracle *o)
{
	for (o->at = 0; o->at < n; o->at++) {
		size_t used = http_parser_execute(&o->p, &oracle_settings, in + o->at, 1);

		if (o->v->complete) {
			o->v->used = o->at + used;
			return;
		}
		if (o->v->refused || HTTP_PARSER_ERRNO(&o->p) != HPE_OK || o->p.upgrade) {
			o->v->refused = true;
			return;
		}
	}
	o->v->at_eof = true;
	if (n)
		http_parser_execute(&o->p, &oracle_settings, NULL, 0);
}

/* Fed a byte at a time, so that where each message begins is known. A
 * field the end left unfinished joins the lists, for the rules. */
static void read_oracle(const char *in, size_t n, bool head_request, struct oracle *o)
{
	http_parser_init(&o->p, HTTP_RESPONSE);
	o->p.data = o;
	o->head_request = head_request;
	o->in = in;
	oracle_run(in, n, o);
	if (o->name.len) {
		o->in_value = true;
		oracle_commit(o);
	}
}

/* ---- what h1resp refuses on purpose ---------------------------------------------- */

/* A bare CR or LF, or obs-fold, anywhere: h1resp refuses each, where
 * libhttp-parser (built lenient, as Debian's is) reads on. What fails
 * first on such input may say something else (a CR taken into a name). */
static bool sloppy_lines(const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && (i + 1 == n || in[i + 1] != '\n'))
			return true;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return true;
		if (in[i] == '\n' && i + 1 < n && (in[i + 1] == ' ' || in[i + 1] == '\t'))
			return true;
	}
	return false;
}

/* "HTTP/1.0" or "HTTP/1.1", one space, three digits from 100: the
 * lenient build of libhttp-parser takes any five bytes after the H, any
 * one-digit version, more spaces and up to 999 in more digits; below 100
 * it was refused at the head's end, h1resp refuses at the line's. */
static bool loose_status_line(const char *in, size_t n, const struct oracle *o)
{
	const size_t *start = (const size_t *)(const void *)o->starts.p;

	for (size_t i = 0; i < o->starts.len / sizeof(size_t); i++) {
		const char *p = in + start[i];
		size_t left = n - start[i];

		if (left < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
		    p[8] != ' ' || p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
		    p[11] < '0' || p[11] > '9' || (p[12] != ' ' && p[12] != '\r') || p[9] == '0')
			return true;
	}
	return false;
}

/* How many "name\0value\0" of list f says yes to. */
static size_t count_fields(const struct buf *list, bool (*f)(const char *name, const char *value))
{
	size_t yes = 0;

	if (!list->len)
		return 0;
	for (const char *p = list->p, *end = list->p + list->len; p < end;) {
		const char *value = p + strlen(p) + 1;

		yes += f(p, value);
		p = value + strlen(value) + 1;
	}
	return yes;
}

static bool any_field(const struct buf *list, bool (*f)(const char *name, const char *value))
{
	return count_fields(list, f) > 0;
}

/* libhttp-parser's lenient build takes blanks into names */
static bool name_not_token(const char *name, const char *value)
{
	(void)value;
	for (; *name; name++)
		if (!strchr("!#$%&'*+-.^_`|~", *name) && !(*name >= '0' && *name <= '9') &&
		    !((*name | 0x20) >= 'a' && (*name | 0x20) <= 'z'))
			return true;
	return false;
}

static bool bad_name(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return any_field(&o->every, name_not_token);
}

/* libhttp-parser checks a value's bytes from its second on */
static bool control_char(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return true;
	return false;
}

static bool bad_value(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return o->control_in_value;
}

/* libhttp-parser reads up to the end any coding but chunked alone, and
 * merges a second field */
static bool te_field(const char *name, const char *value)
{
	(void)value;
	return strcasecmp(name, "transfer-encoding") == 0;
}

static bool te_not_chunked(const char *name, const char *value)
{
	return te_field(name, value) &&
	       (strncasecmp(value, "chunked", 7) != 0 || value[7 + strspn(value + 7, " ")]);
}

static bool odd_transfer_encoding(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return count_fields(&o->every, te_field) > 1 || any_field(&o->every, te_not_chunked);
}

/* libhttp-parser takes an empty Content-Length for none */
static bool empty_length(const char *name, const char *value)
{
	return strcasecmp(name, "content-length") == 0 && !value[strspn(value, " \t")];
}

static bool odd_content_length(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return any_field(&o->every, empty_length);
}

/* libhttp-parser lets a 1xx frame a body of nothing */
static bool framing(const char *name, const char *value)
{
	(void)value;
	return strcasecmp(name, "content-length") == 0 || te_field(name, value);
}

static bool framed_interim(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return any_field(&o->interim, framing);
}

/* libhttp-parser acts on framing and Connection in trailers */
static bool framing_or_connection(const char *name, const char *value)
{
	return framing(name, value) || strcasecmp(name, "connection") == 0;
}

static bool framing_trailer(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)n;
	return any_field(&o->trailers, framing_or_connection);
}

/* libhttp-parser's lenient build skips any two bytes after a chunk */
static bool chunk_without_crlf(const char *in, size_t n, const struct oracle *o)
{
	const size_t *piece = (const size_t *)(const void *)o->pieces.p;

	for (size_t i = 0; i < o->pieces.len / sizeof(size_t); i += 2) {
		size_t end = piece[i] + piece[i + 1];

		if (end < n && (in[end] != '\r' || (end + 1 < n && in[end + 1] != '\n')))
			return true;
	}
	return false;
}

/* libhttp-parser reads a byte above 0x7f in a chunk size as the digit 0 */
static bool high_byte(const char *in, size_t n, const struct oracle *o)
{
	(void)o;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)in[i] > 0x7f)
			return true;
	return false;
}

static bool huge(const char *in, size_t n, const struct oracle *o)
{
	(void)in;
	(void)o;
	return n > DT_H1RESP_MAX_HEAD;
}

static const struct {
	const char *error;      /* h1resp's, or a part of it */
	bool (*has)(const char *in, size_t n, const struct oracle *o);
} deliberate[] = {
	{ "invalid status line", loose_status_line },
	{ "invalid status code", loose_status_line },
	{ "invalid header field name", bad_name },
	{ "invalid character in a header field", bad_value },
	{ "unsupported Transfer-Encoding", odd_transfer_encoding },
	{ "invalid Content-Length", odd_content_length },
	{ "an interim response with a body", framed_interim },
	{ "a framing field in the trailers", framing_trailer },
	{ "chunk data not followed by CRLF", chunk_without_crlf },
	{ "bare LF", chunk_without_crlf },     /* the chunk's data ended in CR */
	{ "invalid chunk size", high_byte },
	{ "response head too large", huge },
	{ "chunk size line too long", huge },
};

static bool refused_on_purpose(const char *in, size_t n, const struct oracle *o, const char *error)
{
	if (sloppy_lines(in, n))
		return true;
	for (size_t i = 0; i < sizeof(deliberate) / sizeof(deliberate[0]); i++)
		if (strstr(error, deliberate[i].error) && deliberate[i].has(in, n, o))
			return true;
	return false;
}

/* A Connection list libhttp-parser stops reading at a character a token
 * has not (or a tab after one), where h1resp reads every element. */
static bool odd_connection(const char *name, const char *value)
{
	if (strcasecmp(name, "connection") != 0)
		return false;
	for (; *value; value++)
		if (*value != ',' && *value != ' ' && name_not_token((char[]){ *value, 0 }, NULL))
			return true;
	return false;
}

/* libhttp-parser takes a field whose name starts with Content-Length,
 * Transfer-Encoding or Connection for that field (a bug of 2.9.4) */
static bool longer_framing_name(const char *name, const char *value)
{
	static const char *const framing_names[] = { "content-length", "transfer-encoding",
						     "connection" };

	(void)value;
	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(framing_names[i]);

		if (strlen(name) > len && strncasecmp(name, framing_names[i], len) == 0)
			return true;
	}
	return false;
}

static void compare(const char *in, size_t n, const struct verdict *mine, const struct oracle *o)
{
	const struct verdict *old = o->v;
	bool no_body = mine->status == 204 || mine->status == 304;

	/* what h1resp hands over it checked, whatever the oracle took */
	if (any_field(&mine->fields, name_not_token))
		abort();
	if (mine->refused) {
		if (!old->refused && !refused_on_purpose(in, n, o, mine->error))
			abort();
		return;
	}
	if (any_field(&o->every, longer_framing_name))
		return;
	if (old->refused) {
		/* h1resp's refusal waits for a line's end, where libhttp-parser
		 * refuses at the byte: neither passes the head, the body */
		if (mine->complete ? !(mine->head && no_body && old->head) : mine->head && !old->head)
			abort();
		if (mine->head && old->head &&
		    (mine->status != old->status || !same(&mine->fields, &old->fields)))
			abort();
		return;
	}
	/* cut short in a line libhttp-parser took as ended (CR and any byte) */
	if (!mine->complete && sloppy_lines(in, n))
		return;
	if (mine->head != old->head)
		abort();
	if (!mine->head)
		return;
	if (mine->status != old->status || !same(&mine->fields, &old->fields))
		abort();
	if (no_body) {
		if (!mine->complete || mine->body.len)
			abort();
	} else if (mine->complete != old->complete || !same(&mine->body, &old->body) ||
		   (mine->complete && !mine->at_eof && mine->used != old->used)) {
		abort();
	}
	if (mine->complete && mine->keep_alive != old->keep_alive &&
	    !any_field(&o->every, odd_connection))
		abort();
}

static void differential(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	bool head_request = (data[0] & 0xc0) == 0xc0;
	struct verdict mine = {0}, old = {0};
	struct oracle o = { .v = &old };
	struct dt_h1resp r;

	read_mine(in, n, head_request, &mine, &r);
	read_oracle(in, n, head_request, &o);
	compare(in, n, &mine, &o);
	dt_h1resp_free(&r);
	verdict_free(&mine);
	verdict_free(&old);
	free(o.name.p);
	free(o.value.p);
	free(o.interim.p);
	free(o.trailers.p);
	free(o.every.p);
	free(o.pieces.p);
	free(o.starts.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run pieces = {0}, whole = {0};

	if (size < 1)
		return 0;
	read_all(data, size, (data[0] & 0x3f) + 1, &pieces);
	read_all(data, size, size, &whole);
	if (pieces.heads != whole.heads || !same(&pieces.head, &whole.head))
		abort();
	free(pieces.head.p);
	free(whole.head.p);
	differential(data, size);
	return 0;
}
