// SPDX-License-Identifier: MIT
/*
 * The usage of answers relayed as they are (see xlate.h, "usage of relayed
 * answers"). A whole JSON answer is scanned as it passes (its strings
 * skipped with memchr), without being kept: only the value of its usage
 * member is read, where it is when it came whole in one piece, else from
 * a copy of its pieces. A stream is cut into its events on their blank
 * lines; an event whose usage member holds an object is read (Gemini's,
 * which repeat the whole usage, only the last, when asked).
 * Only the part of an event still to come is held: an open stream's meter
 * is small.
 */
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "xresp_int.h"

/* A usage object is a few hundred bytes; one larger is not read. */
#define USAGE_MAX       4096
/* No provider event comes near this: past it the stream is not read. */
#define MAX_EVENT_BYTES (1u << 20)
/* The longest key compared: "usageMetadata". */
#define KEY_MAX         16
/* The stack buffer a usage, or an event with one, parses into: a usage
 * object's tree is about 1 KB, an event's a few. */
#define PARSE_BUF       4096

/* Where a whole JSON answer's scan is. */
struct jscan {
	unsigned depth;          /* { and [ open */
	unsigned level;          /* depth of the answers' members: 1 (an object), 2 (an
				  * array of them, a Gemini JSON stream); 0: not known yet */
	bool in_string, escaped;
	bool members;            /* the container at `level` is an object */
	bool key_next;           /* ... and its next string is a member's name */
	bool in_key;
	char key[KEY_MAX];
	size_t key_len;          /* > KEY_MAX: too long to match */
	bool want;               /* the name just read is the usage's, */
	bool value_next;         /* ... its ':' came: an object value is read */
	bool in_value;           /* in that value */
	char *value;             /* USAGE_MAX bytes, right after the meter: */
	size_t value_len;        /* the value's earlier pieces (> USAGE_MAX: too large, not read) */
};

struct dt_xmeter {
	enum dt_family from;
	bool sse;
	bool strip;
	bool off;                /* the stream could not be followed: bytes pass, unread */
	struct dt_xusage usage;
	struct jscan js;
	/* a stream: the part of an event that came so far */
	char *held;
	size_t held_len, held_cap;
	/* Gemini: the last event with a usage, read when asked */
	char *pending;
	size_t pending_len, pending_cap;
};

/* A whole JSON answer's meter, 4 KB with its usage buffer, is made and
 * freed for nearly every request, and an allocation that size costs: the
 * last one freed is kept for the next (meters live on the event loop's
 * thread only). */
static struct dt_xmeter *spare;

/* A whole JSON answer's meter has the buffer its usage value is copied
 * into in the same allocation (nearly every answer has a usage); a
 * stream's needs none. */
struct dt_xmeter *dt_xmeter_new(enum dt_family from, bool sse, bool strip)
{
	struct dt_xmeter *m;

	if ((unsigned)from > DT_FAMILY_GEMINI)
		return NULL;
	if (!sse && spare) {
		m = spare;
		spare = NULL;
	} else if (!(m = malloc(sizeof(*m) + (sse ? 0 : USAGE_MAX)))) {
		return NULL;
	}
	*m = (struct dt_xmeter){
		.from = from,
		.sse = sse,
		.strip = strip && sse && from == DT_FAMILY_OPENAI,
		.js.value = sse ? NULL : (char *)(m + 1),
	};
	return m;
}

void dt_xmeter_free(struct dt_xmeter *m)
{
	if (!m)
		return;
	free(m->held);
	free(m->pending);
	if (!m->sse && !spare)
		spare = m;
	else
		free(m);
}

/* OpenAI names its usage's counts two ways (Chat Completions, Responses):
 * xresp_openai.c reads both. */
static void usage_read(struct dt_xmeter *m, const struct dt_json *usage)
{
	if (!usage || usage->type != DT_JSON_OBJECT)
		return;
	if (m->from == DT_FAMILY_OPENAI)
		dt_xopenai_usage_parse(usage, &m->usage);
	else if (m->from == DT_FAMILY_ANTHROPIC)
		dt_xanthropic_usage_parse(usage, &m->usage);
	else
		dt_xgemini_usage_parse(usage, &m->usage);
}

static const char *usage_key(enum dt_family f)
{
	return f == DT_FAMILY_GEMINI ? "usageMetadata" : "usage";
}

/* ---- whole JSON answers ------------------------------------------------------ */

/* n bytes appended to buf (cap bytes) at *len; past cap they are only
 * counted, and *len stops at cap + 1: too long, and stays so. The usage
 * value and a member's name are collected so. */
static void append_capped(char *buf, size_t cap, size_t *len, const char *p, size_t n)
{
	if (*len < cap)
		memcpy(buf + *len, p, n < cap - *len ? n : cap - *len);
	*len = *len + n <= cap ? *len + n : cap + 1;
}

/* The usage value ends with last (n bytes of this piece): read where it is
 * when it is whole here, else from the copy of its pieces. */
static void value_done(struct dt_xmeter *m, const char *last, size_t n)
{
	struct jscan *js = &m->js;
	struct dt_arena arena;
	char err[64], buf[PARSE_BUF];
	const char *text = last;

	js->in_value = false;
	if (js->value_len) {
		append_capped(js->value, USAGE_MAX, &js->value_len, last, n);
		text = js->value;
		n = js->value_len;
		js->value_len = 0;
	}
	if (n > USAGE_MAX)
		return;
	dt_arena_init_buf(&arena, buf, sizeof(buf));
	usage_read(m, dt_json_parse(&arena, text, n, err, sizeof(err)));
	dt_arena_free(&arena);
}

static void key_done(struct dt_xmeter *m)
{
	struct jscan *js = &m->js;
	const char *want = usage_key(m->from);

	js->in_key = false;
	js->want = js->key_len == strlen(want) && memcmp(js->key, want, js->key_len) == 0;
}

/* One byte outside any string, at most as deep as the members looked at;
 * true when it starts the usage value. */
static bool scan_token(struct dt_xmeter *m, char c)
{
	struct jscan *js = &m->js;
	bool starts = false;

	switch (c) {
	case '"':
		js->in_string = true;
		if (js->depth == js->level && js->members && js->key_next) {
			js->in_key = true;
			js->key_next = false;
			js->key_len = 0;
		}
		break;
	case '{':
	case '[':
		if (!js->level)
			js->level = c == '{' ? 1 : 2;
		if (js->value_next && js->depth == js->level && c == '{')
			js->in_value = starts = true;
		js->value_next = js->want = false;
		if (++js->depth == js->level) {
			js->members = c == '{';
			js->key_next = js->members;
		}
		break;
	case '}':
	case ']':
		if (js->depth)
			js->depth--;
		break;
	case ':':
		if (js->depth == js->level && js->want)
			js->value_next = true;
		break;
	case ',':
		if (js->depth == js->level)
			js->key_next = js->members;
		break;
	case ' ': case '\t': case '\r': case '\n':
		break;
	default:
		/* a scalar: a usage that is not an object says nothing */
		if (js->depth == js->level)
			js->value_next = js->want = false;
		break;
	}
	return starts;
}

/* The bytes that end a run passed over in bulk: outside strings, deeper
 * than the members looked at, only strings and brackets matter. */
static const bool run_end[256] = {
	['"'] = true, ['{'] = true, ['}'] = true, ['['] = true, [']'] = true,
};

/* Where the string p[i..] ends (its closing quote), or len. A quote is
 * escaped by an odd run of backslashes before it; at the piece's end, such
 * a run escapes the next piece's first byte (js->escaped). */
static size_t string_end_escapes(struct jscan *js, const char *p, size_t len, size_t i)
{
	for (;;) {
		const char *q;
		size_t run = 0;

		if (js->escaped) {
			if (i == len)
				return len;
			js->escaped = false;
			i++;
		}
		q = memchr(p + i, '"', len - i);
		if (!q) {
			while (run < len - i && p[len - 1 - run] == '\\')
				run++;
			js->escaped = run & 1;
			return len;
		}
		while (q - run > p + i && q[-1 - (ptrdiff_t)run] == '\\')
			run++;
		if (!(run & 1))
			return (size_t)(q - p);
		i = (size_t)(q - p) + 1;
	}
}

/* The same, inline for most strings: one memchr, and no backslash before
 * the quote it finds. */
static inline size_t string_end(struct jscan *js, const char *p, size_t len, size_t i)
{
	const char *q = js->escaped ? NULL : memchr(p + i, '"', len - i);

	if (q && (q == p + i || q[-1] != '\\'))
		return (size_t)(q - p);
	return string_end_escapes(js, p, len, i);
}

/* Inside a value nested deeper than the members looked at (another
 * member's, or the usage's), only strings and brackets matter: passed over
 * here to the bracket that closes it (returned), or to the piece's end. */
static size_t skip_nested(struct jscan *js, const char *p, size_t len, size_t i)
{
	while (i < len) {
		char c;

		if (js->in_string) {
			i = string_end(js, p, len, i);
			if (i == len)
				break;
			js->in_string = false;
			i++;
			continue;
		}
		while (i < len && !run_end[(unsigned char)p[i]])
			i++;
		if (i == len)
			break;
		c = p[i];
		if (c == '"')
			js->in_string = true;
		else if (c == '{' || c == '[')
			js->depth++;
		else if (--js->depth == js->level)
			return i;
		i++;
	}
	return len;
}

static void scan_json(struct dt_xmeter *m, const char *p, size_t len)
{
	struct jscan *js = &m->js;
	size_t value_from = 0;   /* where the usage value is in this piece */

	for (size_t i = 0; i < len; i++) {
		if (js->depth > js->level) {
			i = skip_nested(js, p, len, i);
			if (i == len)
				break;
			if (js->in_value)
				value_done(m, p + value_from, i + 1 - value_from);
		} else if (js->in_string) {
			/* a member's name is taken whole, as it is written: an
			 * escaped one matches no key */
			size_t from = i;

			i = string_end(js, p, len, i);
			if (js->in_key)
				append_capped(js->key, KEY_MAX, &js->key_len, p + from, i - from);
			if (i == len)
				break;
			js->in_string = false;
			if (js->in_key)
				key_done(m);
		} else {
			if (js->depth < js->level) {
				/* between the answers of an array of them */
				while (i < len && !run_end[(unsigned char)p[i]])
					i++;
				if (i == len)
					break;
			}
			if (scan_token(m, p[i]))
				value_from = i;
		}
	}
	/* the value goes on in the next piece: this one's part is kept */
	if (js->in_value)
		append_capped(js->value, USAGE_MAX, &js->value_len, p + value_from, len - value_from);
}

/* ---- streams ----------------------------------------------------------------- */

/* An event's data lines, joined; where the single one is, when there is
 * one (so an edit of the data maps onto the event's bytes). */
struct event_data {
	char *text;              /* malloc'ed, NUL-terminated; NULL: no data */
	size_t len;
	size_t lines;
	size_t at;               /* one line: its offset in the event */
};

/* The end of the line starting at p (before its terminator), and where the
 * next starts in *next; NULL when the line has not ended yet (a CR at the
 * very end may still be followed by its LF). */
static const char *line_end(const char *p, const char *end, const char **next)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	const char *cr = memchr(p, '\r', (size_t)((lf ? lf : end) - p));
	const char *e = cr ? cr : lf ? lf : end;

	if (e == end || (*e == '\r' && e + 1 == end))
		return NULL;
	*next = e + 1 + (*e == '\r' && e[1] == '\n');
	return e;
}

static int event_data(const char *ev, size_t len, struct event_data *d)
{
	const char *p = ev, *end = ev + len, *e, *next;

	*d = (struct event_data){0};
	for (; p < end && (e = line_end(p, end, &next)); p = next) {
		const char *v = p + 5;
		size_t n;
		char *text;

		if ((size_t)(e - p) < 5 || memcmp(p, "data:", 5) != 0)
			continue;
		v += v < e && *v == ' ';
		n = (size_t)(e - v);
		text = realloc(d->text, d->len + !!d->lines + n + 1);
		if (!text)
			return -1;
		d->text = text;
		if (d->lines)
			d->text[d->len++] = '\n';
		memcpy(d->text + d->len, v, n);
		d->len += n;
		d->text[d->len] = '\0';
		if (!d->lines++)
			d->at = (size_t)(v - ev);
	}
	return 0;
}

/* The usage an event's JSON gives: Chat Completions' chunk "usage",
 * Responses' "response" "usage" (Groq's streams: "x_groq" "usage"),
 * Anthropic's message_start "message" "usage" and message_delta "usage",
 * Gemini's "usageMetadata". */
static const struct dt_json *event_usage(const struct dt_xmeter *m, const struct dt_json *root)
{
	const struct dt_json *u = dt_json_get(root, usage_key(m->from));

	if (!u || u->type != DT_JSON_OBJECT)
		u = dt_json_get(dt_json_get(root, m->from == DT_FAMILY_OPENAI ? "response|x_groq" :
						"message"), "usage");
	return u;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The member text[key, end) with the comma that separates it from a
 * neighbour, and the blanks between: [*from, *to) of text. */
static void member_span(const char *text, size_t len, size_t key, size_t end,
			size_t *from, size_t *to)
{
	size_t a = key, b = end;

	while (a > 0 && blank(text[a - 1]))
		a--;
	if (a > 0 && text[a - 1] == ',') {
		*from = a - 1;
		*to = end;
		return;
	}
	while (b < len && blank(text[b]))
		b++;
	*from = a;
	*to = b < len && text[b] == ',' ? b + 1 : b;
}

/* The family's usage key, quoted as it is in the JSON text. */
static const char *quoted_key(enum dt_family f)
{
	return f == DT_FAMILY_GEMINI ? "\"usageMetadata\"" : "\"usage\"";
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && blank(*p))
		p++;
	return p;
}

/* Where the value of the member at key (the key's text) starts; NULL when
 * no ':' follows it. */
static const char *value_of(const char *key, size_t n, const char *end)
{
	const char *v = skip_blanks(key + n, end);

	return v < end && *v == ':' ? skip_blanks(v + 1, end) : NULL;
}

/* Does a member named like the usage have an object value? Most events
 * carry none (OpenAI's chunks carry "usage":null once the chunk is asked
 * for): they are not parsed. */
static bool usage_object_in(const char *text, size_t len, const char *key)
{
	size_t n = strlen(key);
	const char *end = text + len, *v;

	for (const char *p = text; (p = memmem(p, (size_t)(end - p), key, n)); p += n)
		if ((v = value_of(p, n, end)) && v < end && *v == '{')
			return true;
	return false;
}

/* An event's JSON read for its usage; when stripping, *drop says it is the
 * usage chunk. Returns -1 when out of memory. */
static int event_read(struct dt_xmeter *m, const char *ev, size_t len, bool *drop)
{
	struct event_data d;
	struct dt_arena arena;
	const struct dt_json *root, *choices, *usage;
	char err[64], buf[PARSE_BUF];

	if (event_data(ev, len, &d))
		return -1;
	dt_arena_init_buf(&arena, buf, sizeof(buf));
	root = d.text ? dt_json_parse(&arena, d.text, d.len, err, sizeof(err)) : NULL;
	usage_read(m, event_usage(m, root));
	if (m->strip && root && root->type == DT_JSON_OBJECT) {
		choices = dt_json_get(root, "choices");
		usage = dt_json_get(root, "usage");
		*drop = usage && usage->type == DT_JSON_OBJECT && choices &&
			choices->type == DT_JSON_ARRAY && choices->len == 0;
	}
	dt_arena_free(&arena);
	free(d.text);
	return 0;
}

/* The "usage":null member of a one-line event, with its comma: [*from,
 * *to) of ev; false when there is none, or more than one usage. */
static bool null_usage(const char *ev, size_t len, size_t *from, size_t *to)
{
	static const char key[] = "\"usage\"";
	struct event_data d;
	const char *p, *v, *end;
	size_t a, b;
	bool found = false;

	if (event_data(ev, len, &d) || d.lines != 1)
		goto out;
	end = d.text + d.len;
	p = memmem(d.text, d.len, key, sizeof(key) - 1);
	if (!p || memmem(p + 1, (size_t)(end - p - 1), key, sizeof(key) - 1))
		goto out;
	v = value_of(p, sizeof(key) - 1, end);
	if (!v || end - v < 4 || memcmp(v, "null", 4) != 0)
		goto out;
	member_span(d.text, d.len, (size_t)(p - d.text), (size_t)(v + 4 - d.text), &a, &b);
	*from = d.at + a;
	*to = d.at + b;
	found = true;
out:
	free(d.text);
	return found;
}

/* Gemini repeats the whole usage in every chunk: only the last one's is
 * read, when the usage is asked for. */
static int keep_pending(struct dt_xmeter *m, const char *ev, size_t len)
{
	if (len > m->pending_cap) {
		char *p = realloc(m->pending, len);

		if (!p)
			return -1;
		m->pending = p;
		m->pending_cap = len;
	}
	memcpy(m->pending, ev, len);
	m->pending_len = len;
	return 0;
}

/* A complete event (its blank line included): read, and when stripping,
 * written to out as the client is to see it: the usage-only chunk left
 * out, the "usage": null of the others taken out. */
static int event_done(struct dt_xmeter *m, const char *ev, size_t len, struct evbuffer *out)
{
	size_t cut_from = 0, cut_to = 0;
	bool drop = false;

	if (memmem(ev, len, "usage", 5)) {
		if (!usage_object_in(ev, len, quoted_key(m->from))) {
			if (m->strip)
				null_usage(ev, len, &cut_from, &cut_to);
		} else if (m->from != DT_FAMILY_GEMINI || keep_pending(m, ev, len)) {
			/* read now (Gemini's too, when it cannot be kept) */
			if (event_read(m, ev, len, &drop) && m->strip)
				return -1;
		}
	}
	if (!m->strip || drop)
		return 0;
	if (cut_to)
		return evbuffer_add(out, ev, cut_from) || evbuffer_add(out, ev + cut_to, len - cut_to) ? -1 : 0;
	return evbuffer_add(out, ev, len);
}

/* Each complete event at the start of p, in order; *done: the bytes they
 * take, up to the end of the last blank line. */
static int events_each(struct dt_xmeter *m, const char *p, size_t len, struct evbuffer *out,
		       size_t *done)
{
	const char *end = p + len, *start = p, *q = p, *e, *next;

	*done = 0;
	for (; q < end && (e = line_end(q, end, &next)); q = next) {
		if (e != q)
			continue;
		if (event_done(m, start, (size_t)(next - start), out))
			return -1;
		start = next;
		*done = (size_t)(start - p);
	}
	return 0;
}

static int hold(struct dt_xmeter *m, const char *p, size_t len)
{
	if (m->held_len + len > m->held_cap) {
		size_t cap = m->held_len + len > 2 * m->held_cap ? m->held_len + len : 2 * m->held_cap;
		char *held = realloc(m->held, cap);

		if (!held)
			return -1;
		m->held = held;
		m->held_cap = cap;
	}
	memcpy(m->held + m->held_len, p, len);
	m->held_len += len;
	return 0;
}

/* The stream cannot be followed (an event too large, out of memory): what
 * is held and the rest not held go out as they are, and so does what
 * comes after. */
static int give_up(struct dt_xmeter *m, struct evbuffer *out, const char *rest, size_t len)
{
	int rc = 0;

	if (m->strip && m->held_len)
		rc = evbuffer_add(out, m->held, m->held_len);
	if (m->strip && len)
		rc |= evbuffer_add(out, rest, len);
	m->off = true;
	m->held_len = 0;
	return rc;
}

/* An event in part is completed in the held copy; complete events of buf
 * are read where they are, and only the part of one left is held. */
static int feed_sse(struct dt_xmeter *m, const char *buf, size_t len, struct evbuffer *out)
{
	const char *p = buf;
	size_t n = len, done;

	if (m->held_len) {
		if (hold(m, buf, len))
			return give_up(m, out, buf, len);
		p = m->held;
		n = m->held_len;
	}
	if (events_each(m, p, n, out, &done))
		return -1;
	if (p == m->held) {
		memmove(m->held, m->held + done, n - done);
		m->held_len = n - done;
	} else if (done < n && hold(m, p + done, n - done)) {
		return give_up(m, out, p + done, n - done);
	}
	return m->held_len > MAX_EVENT_BYTES ? give_up(m, out, NULL, 0) : 0;
}

int dt_xmeter_feed(struct dt_xmeter *m, const void *buf, size_t len, struct evbuffer *out)
{
	if (m->off)
		return m->strip ? evbuffer_add(out, buf, len) : 0;
	if (!m->sse) {
		scan_json(m, buf, len);
		return 0;
	}
	return feed_sse(m, buf, len, out);
}

int dt_xmeter_finish(struct dt_xmeter *m, struct evbuffer *out)
{
	return give_up(m, out, NULL, 0);
}

const struct dt_xusage *dt_xmeter_usage(struct dt_xmeter *m)
{
	bool drop;

	/* out of memory: the usage stays as read before */
	if (m->pending_len && event_read(m, m->pending, m->pending_len, &drop) == 0)
		m->pending_len = 0;
	return &m->usage;
}
