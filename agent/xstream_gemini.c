// SPDX-License-Identifier: MIT
/* Gemini streamGenerateContent?alt=sse streams (one GenerateContentResponse
 * per event): decoder and encoder; see docs/translation.md, "Streams". */
#include <string.h>

#include "xresp_int.h"

/* ---- decoder ------------------------------------------------------------- */

/* A functionCall part comes whole: a call opened, its arguments in one
 * piece, closed. */
static int decode_call(struct dt_xstream *s, const struct dt_json *fn)
{
	const struct dt_json *args = dt_json_get(fn, "args");
	struct dt_xev stop = { .type = DT_XEV_BLOCK_STOP };
	struct dt_xev piece = { .type = DT_XEV_TOOL_ARGS, .text = "{}" };

	if (args && !(piece.text = dt_xread_text(&s->rd, args)))
		return dt_xstream_fail(s, "out of memory translating the stream");
	piece.len = strlen(piece.text);
	return dt_xstream_tool_start(s, dt_xread_str(&s->rd, fn, "id"),
				     dt_xread_str(&s->rd, fn, "name")) ||
	       dt_xstream_emit(s, &piece) || dt_xstream_emit(s, &stop) ? -1 : 0;
}

static int decode_chunk(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *parts = dt_xgemini_parts(root);
	struct dt_xev ev = { .type = DT_XEV_START };

	if (dt_json_get(root, "error"))
		return dt_xstream_provider_error(s, root);
	/* usage first: an Anthropic client's opening event shows the input count */
	dt_xstream_usage(s, dt_json_get(root, "usageMetadata"), dt_xgemini_usage_parse);
	if (!s->started) {
		ev.id = dt_xread_str(&s->rd, root, "responseId");
		ev.model = dt_xread_str(&s->rd, root, "modelVersion");
		dt_xstream_emit(s, &ev);
	}
	for (const struct dt_json *part = parts ? parts->first : NULL; part; part = part->next) {
		const struct dt_json *fn = dt_json_get(part, "functionCall");
		int rc;

		if (fn && fn->type == DT_JSON_OBJECT)
			rc = decode_call(s, fn);
		else if (dt_json_get_true(part, "thought"))
			rc = 0; /* thought summaries are not the answer */
		else
			rc = dt_xstream_emit_string(s, DT_XEV_TEXT, dt_json_get(part, "text"));
		if (rc)
			return -1;
	}
	ev = (struct dt_xev){
		.type = DT_XEV_FINISH,
		.finish = dt_xgemini_finish(&s->rd, root, s->info.tool_calls > 0),
	};
	return ev.finish != DT_XFINISH_NONE ? dt_xstream_emit(s, &ev) : 0;
}

int dt_xgemini_decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	const struct dt_json *root = dt_xstream_json(s, e);

	return root ? decode_chunk(s, root) : -1;
}

/* ---- encoder ------------------------------------------------------------- */

static void begin_chunk(struct dt_xstream *s)
{
	dt_jbuf_lit(&s->out, "data: {\"candidates\":[{\"content\":{\"parts\":[");
}

/* Every chunk ends alike: ",modelVersion, responseId}". */
static void end_chunk(struct dt_xstream *s)
{
	dt_jbuf_put(&s->out, s->enc.head.data, s->enc.head.len);
}

static void encode_start(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_jbuf *h = &s->enc.head;
	char id[DT_XID_LEN];

	dt_jbuf_lit(h, ",\"modelVersion\":");
	dt_jbuf_str(h, dt_xmodel(&s->ctx, ev->model));
	dt_jbuf_lit(h, ",\"responseId\":");
	dt_jbuf_str(h, dt_xid(DT_FAMILY_GEMINI, s->from, ev->id, s->ctx.seed, id));
	dt_jbuf_lit(h, "}\n\n");
	if (h->failed)
		s->out.failed = true;
}

/* The open call goes out whole, now that its arguments are. */
static void flush_call(struct dt_xstream *s)
{
	struct dt_jbuf *c = &s->enc.call;

	if (s->enc.block != DT_XBLOCK_TOOL)
		return;
	s->enc.block = DT_XBLOCK_NONE;
	if (c->failed) {
		s->out.failed = true;
		return;
	}
	begin_chunk(s);
	dt_jbuf_put(&s->out, c->data, s->enc.call_start);
	dt_jbuf_object(&s->out, c->data + s->enc.call_start, c->len - s->enc.call_start);
	dt_jbuf_lit(&s->out, "}}],\"role\":\"model\"},\"index\":0}]");
	end_chunk(s);
}

/* The call's part up to "args": kept until its arguments are complete. */
static void open_call(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_jbuf *c = &s->enc.call;

	flush_call(s);
	c->len = 0;
	dt_xgemini_call_open(c, ev->id, ev->name);
	s->enc.call_start = c->len;
	s->enc.block = DT_XBLOCK_TOOL;
}

static void encode_end(struct dt_xstream *s)
{
	const char *finish = dt_xfinish_name(DT_FAMILY_GEMINI, s->enc.finish);

	flush_call(s);
	begin_chunk(s);
	dt_jbuf_lit(&s->out, "{\"text\":\"\"}],\"role\":\"model\"}");
	if (finish) {
		dt_jbuf_lit(&s->out, ",\"finishReason\":");
		dt_jbuf_str(&s->out, finish);
	}
	dt_jbuf_lit(&s->out, ",\"index\":0}]");
	if (s->info.usage.known) {
		dt_jbuf_lit(&s->out, ",\"usageMetadata\":");
		dt_xgemini_usage_emit(&s->out, &s->info.usage);
	}
	end_chunk(s);
}

void dt_xgemini_encode(struct dt_xstream *s, const struct dt_xev *ev)
{
	switch (ev->type) {
	case DT_XEV_START:
		encode_start(s, ev);
		break;
	case DT_XEV_TEXT:
		flush_call(s);
		begin_chunk(s);
		dt_jbuf_lit(&s->out, "{\"text\":");
		dt_jbuf_strn(&s->out, ev->text, ev->len);
		dt_jbuf_lit(&s->out, "}],\"role\":\"model\"},\"index\":0}]");
		end_chunk(s);
		break;
	case DT_XEV_TOOL_START:
		open_call(s, ev);
		break;
	case DT_XEV_TOOL_ARGS:
		if (s->enc.block == DT_XBLOCK_TOOL)
			dt_jbuf_put(&s->enc.call, ev->text, ev->len);
		break;
	case DT_XEV_BLOCK_STOP:
		flush_call(s);
		break;
	case DT_XEV_FINISH:
		flush_call(s);
		s->enc.finish = ev->finish;
		break;
	case DT_XEV_END:
		encode_end(s);
		break;
	case DT_XEV_USAGE:
		break; /* in the last chunk */
	}
}
