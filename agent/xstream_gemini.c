// SPDX-License-Identifier: MIT
/* Gemini streamGenerateContent?alt=sse streams (one GenerateContentResponse
 * per event): decoder and encoder; see docs/translation-responses.md. */
#include <stdlib.h>
#include <string.h>

#include "xresp_int.h"

/* ---- decoder ------------------------------------------------------------- */

/* A functionCall part comes whole: a call opened, its arguments in one
 * piece, closed. */
static int decode_call(struct dt_xstream *s, const json_t *fn)
{
	const char *name = dt_xj_str(fn, "name");
	json_t *args = json_object_get(fn, "args");
	struct dt_xev start = {
		.type = DT_XEV_TOOL_START, .id = dt_xj_str(fn, "id"), .name = name ? name : "",
	};
	struct dt_xev stop = { .type = DT_XEV_BLOCK_STOP };
	struct dt_xev piece = { .type = DT_XEV_TOOL_ARGS };
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	int rc;

	if (!text)
		return dt_xstream_fail(s, "out of memory translating the stream");
	piece.text = text;
	piece.len = strlen(text);
	rc = dt_xstream_emit(s, &start) || dt_xstream_emit(s, &piece) ||
	     dt_xstream_emit(s, &stop) ? -1 : 0;
	free(text);
	return rc;
}

static int decode_chunk(struct dt_xstream *s, const json_t *root)
{
	json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
	json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
	json_t *usage = json_object_get(root, "usageMetadata");
	struct dt_xev ev = { .type = DT_XEV_START };
	size_t i;
	json_t *part;

	if (json_object_get(root, "error"))
		return dt_xstream_provider_error(s, root);
	/* usage first: an Anthropic client's opening event shows the input count */
	if (json_is_object(usage)) {
		struct dt_xev u = { .type = DT_XEV_USAGE };

		dt_xgemini_usage_parse(usage, &u.usage);
		dt_xstream_emit(s, &u);
	}
	if (!s->started) {
		ev.id = dt_xj_str(root, "responseId");
		ev.model = dt_xj_str(root, "modelVersion");
		dt_xstream_emit(s, &ev);
	}
	json_array_foreach(parts, i, part) {
		json_t *fn = json_object_get(part, "functionCall");
		int rc;

		if (json_is_object(fn))
			rc = decode_call(s, fn);
		else if (json_is_true(json_object_get(part, "thought")))
			rc = 0; /* thought summaries are not the answer */
		else
			rc = dt_xstream_emit_string(s, DT_XEV_TEXT, json_object_get(part, "text"));
		if (rc)
			return -1;
	}
	ev = (struct dt_xev){
		.type = DT_XEV_FINISH, .finish = dt_xgemini_finish(root, s->info.tool_calls > 0),
	};
	return ev.finish != DT_XFINISH_NONE ? dt_xstream_emit(s, &ev) : 0;
}

int dt_xgemini_decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	json_t *root = dt_xstream_json(s, e);
	int rc;

	if (!root)
		return -1;
	rc = decode_chunk(s, root);
	json_decref(root);
	return rc;
}

/* ---- encoder ------------------------------------------------------------- */

static void begin_chunk(struct dt_xstream *s)
{
	dt_xb_lit(&s->out, "data: {\"candidates\":[{\"content\":{\"parts\":[");
}

/* Every chunk ends alike: ",modelVersion, responseId}". */
static void end_chunk(struct dt_xstream *s)
{
	dt_xb_add(&s->out, s->enc.head.p, s->enc.head.len);
}

static void encode_start(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_xbuf *h = &s->enc.head;
	char id[DT_XID_LEN];

	dt_xb_lit(h, ",\"modelVersion\":");
	dt_xb_cstr(h, dt_xmodel(&s->ctx, ev->model));
	dt_xb_lit(h, ",\"responseId\":");
	dt_xb_cstr(h, dt_xid(DT_FAMILY_GEMINI, s->from, ev->id, s->ctx.seed, id));
	dt_xb_lit(h, "}\n\n");
	if (h->failed)
		s->out.failed = true;
}

/* The open call goes out whole, now that its arguments are. */
static void flush_call(struct dt_xstream *s)
{
	struct dt_xbuf *c = &s->enc.call;

	if (s->enc.block != DT_XBLOCK_TOOL)
		return;
	s->enc.block = DT_XBLOCK_NONE;
	if (c->failed) {
		s->out.failed = true;
		return;
	}
	begin_chunk(s);
	dt_xb_add(&s->out, c->p, s->enc.call_start);
	dt_xb_object(&s->out, c->p + s->enc.call_start, c->len - s->enc.call_start);
	dt_xb_lit(&s->out, "}}],\"role\":\"model\"},\"index\":0}]");
	end_chunk(s);
}

/* The call's part up to "args": kept until its arguments are complete. */
static void open_call(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_xbuf *c = &s->enc.call;

	flush_call(s);
	c->len = 0;
	dt_xb_lit(c, "{\"functionCall\":{");
	if (ev->id) {
		dt_xb_lit(c, "\"id\":");
		dt_xb_cstr(c, ev->id);
		dt_xb_lit(c, ",");
	}
	dt_xb_lit(c, "\"name\":");
	dt_xb_cstr(c, ev->name);
	dt_xb_lit(c, ",\"args\":");
	s->enc.call_start = c->len;
	s->enc.block = DT_XBLOCK_TOOL;
}

static void encode_end(struct dt_xstream *s)
{
	const char *finish = dt_xfinish_name(DT_FAMILY_GEMINI, s->enc.finish);

	flush_call(s);
	begin_chunk(s);
	dt_xb_lit(&s->out, "{\"text\":\"\"}],\"role\":\"model\"}");
	if (finish) {
		dt_xb_lit(&s->out, ",\"finishReason\":");
		dt_xb_cstr(&s->out, finish);
	}
	dt_xb_lit(&s->out, ",\"index\":0}]");
	if (s->info.usage.known) {
		dt_xb_lit(&s->out, ",\"usageMetadata\":");
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
		dt_xb_lit(&s->out, "{\"text\":");
		dt_xb_str(&s->out, ev->text, ev->len);
		dt_xb_lit(&s->out, "}],\"role\":\"model\"},\"index\":0}]");
		end_chunk(s);
		break;
	case DT_XEV_TOOL_START:
		open_call(s, ev);
		break;
	case DT_XEV_TOOL_ARGS:
		if (s->enc.block == DT_XBLOCK_TOOL)
			dt_xb_add(&s->enc.call, ev->text, ev->len);
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
