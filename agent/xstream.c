// SPDX-License-Identifier: MIT
/* Streamed answers: provider SSE -> decoder -> IR events -> encoder ->
 * client SSE, event by event; see xlate.h and docs/translation.md, "Streams". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "xresp_int.h"

/* No provider event comes near this; a bigger one is a broken stream. */
#define MAX_EVENT_BYTES (1u << 20)

struct dt_xstream *dt_xstream_new(enum dt_family from, enum dt_family to,
				  const struct dt_xctx *ctx)
{
	struct dt_xstream *s;

	if ((unsigned)from > DT_FAMILY_GEMINI || (unsigned)to > DT_FAMILY_GEMINI)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->from = from;
	s->to = to;
	s->ctx = *ctx;
	s->dec.tool_index = -1;
	s->rd.arena = &s->event;
	dt_sse_init(&s->sse, MAX_EVENT_BYTES);
	if (ctx->client_model &&
	    !(s->ctx.client_model = dt_arena_strdup(&s->arena, ctx->client_model))) {
		dt_xstream_free(s);
		return NULL;
	}
	return s;
}

void dt_xstream_free(struct dt_xstream *s)
{
	if (!s)
		return;
	dt_sse_free(&s->sse);
	dt_jbuf_free(&s->out);
	dt_jbuf_free(&s->enc.head);
	dt_jbuf_free(&s->enc.call);
	dt_arena_free(&s->arena);
	dt_arena_free(&s->event);
	free(s);
}

const struct dt_xstream_info *dt_xstream_info(const struct dt_xstream *s)
{
	return &s->info;
}

int dt_xstream_fail(struct dt_xstream *s, const char *fmt, ...)
{
	va_list ap;

	s->info.failed = true;
	if (s->err && s->errlen) {
		va_start(ap, fmt);
		vsnprintf(s->err, s->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const struct dt_json *dt_xstream_json(struct dt_xstream *s, const struct dt_sse_event *e)
{
	char why[128];
	const struct dt_json *v = dt_json_parse(&s->event, e->data, e->len, why, sizeof(why));

	if (v && v->type == DT_JSON_OBJECT)
		return v;
	dt_xstream_fail(s, "the provider sent a malformed %s event: %s", e->type,
			v ? "not an object" : why);
	return NULL;
}

int dt_xstream_provider_error(struct dt_xstream *s, const struct dt_json *root)
{
	const char *msg = dt_xread_str(&s->rd, dt_json_get(root, "error"), "message");

	return dt_xstream_fail(s, "the provider reported an error in the stream: %s",
			       msg ? msg : "(no message)");
}

static void encode(struct dt_xstream *s, const struct dt_xev *ev)
{
	switch (s->to) {
	case DT_FAMILY_OPENAI:
		dt_xopenai_encode(s, ev);
		break;
	case DT_FAMILY_ANTHROPIC:
		dt_xanthropic_encode(s, ev);
		break;
	case DT_FAMILY_GEMINI:
		dt_xgemini_encode(s, ev);
		break;
	}
}

int dt_xstream_emit(struct dt_xstream *s, struct dt_xev *ev)
{
	if (s->info.complete)
		return 0;
	/* usage is only kept: it may come before the start (to be shown in it) */
	if (!s->started && ev->type != DT_XEV_START && ev->type != DT_XEV_USAGE) {
		struct dt_xev start = { .type = DT_XEV_START };

		dt_xstream_emit(s, &start);
	}
	switch (ev->type) {
	case DT_XEV_START:
		if (s->started)
			return 0;
		s->started = true;
		break;
	case DT_XEV_TEXT:
		if (!ev->len)
			return 0;
		s->info.content = true;
		s->info.text_bytes += ev->len;
		break;
	case DT_XEV_TOOL_START:
		s->info.content = true;
		ev->index = s->info.tool_calls++;
		break;
	case DT_XEV_TOOL_ARGS:
		if (!ev->len)
			return 0;
		if (!s->info.tool_calls)
			return dt_xstream_fail(s, "the provider sent tool arguments outside a call");
		ev->index = s->info.tool_calls - 1;
		break;
	case DT_XEV_FINISH:
		if (s->finished)
			return 0;
		s->finished = true;
		s->info.finish = ev->finish;
		break;
	case DT_XEV_USAGE:
		s->info.usage = ev->usage;
		break;
	case DT_XEV_END:
		s->info.complete = true;
		break;
	case DT_XEV_BLOCK_STOP:
		break;
	}
	encode(s, ev);
	return 0;
}

int dt_xstream_emit_string(struct dt_xstream *s, enum dt_xev_type type,
			   const struct dt_json *str)
{
	struct dt_xev ev = { .type = type };

	if (!str || str->type != DT_JSON_STRING)
		return 0;
	ev.text = dt_json_strn(&s->event, str, &ev.len);
	if (!ev.text)
		return dt_xstream_fail(s, "out of memory translating the stream");
	return dt_xstream_emit(s, &ev);
}

int dt_xstream_tool_start(struct dt_xstream *s, const char *id, const char *name)
{
	struct dt_xev ev = { .type = DT_XEV_TOOL_START, .id = id, .name = name ? name : "" };

	return dt_xstream_emit(s, &ev);
}

int dt_xstream_usage(struct dt_xstream *s, const struct dt_json *obj,
		     void (*parse)(const struct dt_json *obj, struct dt_xusage *u))
{
	struct dt_xev ev = { .type = DT_XEV_USAGE };

	if (!obj || obj->type != DT_JSON_OBJECT)
		return 0;
	parse(obj, &s->dec.usage);
	ev.usage = s->dec.usage;
	return dt_xstream_emit(s, &ev);
}

static int decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	switch (s->from) {
	case DT_FAMILY_OPENAI:
		return dt_xopenai_decode(s, e);
	case DT_FAMILY_ANTHROPIC:
		return dt_xanthropic_decode(s, e);
	case DT_FAMILY_GEMINI:
	default:
		return dt_xgemini_decode(s, e);
	}
}

/* An event's tree and strings live until the next event: whatever an
 * encoder keeps longer it copies into s->arena. */
static int on_event(void *arg, const struct dt_sse_event *e)
{
	struct dt_xstream *s = arg;
	int rc;

	if (s->info.complete)
		return 0; /* nothing is due after the end */
	rc = decode(s, e);
	if (!rc && s->rd.oom)
		rc = dt_xstream_fail(s, "out of memory translating the stream");
	dt_arena_free(&s->event);
	return rc;
}

/* What the encoders wrote goes out, even when a later event failed: it was
 * whole and valid. */
static void flush(struct dt_xstream *s, struct evbuffer *out)
{
	if (s->out.failed || evbuffer_add(out, s->out.data, s->out.len))
		dt_xstream_fail(s, "out of memory translating the stream");
	s->out.len = 0;
}

static void set_err(struct dt_xstream *s, char *err, size_t errlen)
{
	s->err = err;
	s->errlen = errlen;
	if (err && errlen)
		*err = '\0';
}

int dt_xstream_feed(struct dt_xstream *s, const void *buf, size_t len,
		    struct evbuffer *out, char *err, size_t errlen)
{
	set_err(s, err, errlen);
	if (s->info.failed)
		return dt_xstream_fail(s, "the provider's stream had already failed");
	if (dt_sse_feed(&s->sse, buf, len, on_event, s) && !s->info.failed)
		dt_xstream_fail(s, "the provider sent an event over %u bytes", MAX_EVENT_BYTES);
	flush(s, out);
	return s->info.failed ? -1 : 0;
}

int dt_xstream_finish(struct dt_xstream *s, struct evbuffer *out, char *err, size_t errlen)
{
	set_err(s, err, errlen);
	if (s->info.failed)
		return dt_xstream_fail(s, "the provider's stream had failed");
	/* Gemini has no end event: a finish reason, then the end of the body */
	if (s->from == DT_FAMILY_GEMINI && s->finished) {
		struct dt_xev end = { .type = DT_XEV_END };

		dt_xstream_emit(s, &end);
	}
	flush(s, out);
	if (s->info.failed)
		return -1;
	if (!s->info.complete) {
		if (err && errlen)
			snprintf(err, errlen, "the provider's stream ended before its end");
		return -1;
	}
	return 0;
}
