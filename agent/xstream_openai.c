// SPDX-License-Identifier: MIT
/* OpenAI Chat Completions streams (chat.completion.chunk): decoder and
 * encoder; see docs/translation.md, "Streams". */
#include <string.h>

#include "xresp_int.h"

/* ---- decoder ------------------------------------------------------------- */

/* A delta of a tool call: a new call when the index changes or, for the
 * compatible providers that number every call 0, when another id comes. */
static int decode_tool_call(struct dt_xstream *s, const struct dt_json *call)
{
	const struct dt_json *fn = dt_json_get(call, "function");
	const char *id = dt_xread_str(&s->rd, call, "id");
	int64_t index = dt_json_get_int(call, "index", 0);

	if (index != s->dec.tool_index ||
	    (id && (!s->dec.tool_id || strcmp(id, s->dec.tool_id) != 0))) {
		s->dec.tool_index = index;
		s->dec.tool_id = id ? dt_arena_strdup(&s->arena, id) : NULL;
		if (id && !s->dec.tool_id)
			return dt_xstream_fail(s, "out of memory translating the stream");
		if (dt_xstream_tool_start(s, id, dt_xread_str(&s->rd, fn, "name")))
			return -1;
	}
	return dt_xstream_emit_string(s, DT_XEV_TOOL_ARGS, dt_json_get(fn, "arguments"));
}

static int decode_chunk(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *choice = dt_json_at(dt_json_get(root, "choices"), 0);
	const struct dt_json *delta = dt_json_get(choice, "delta");
	const struct dt_json *calls = dt_json_get(delta, "tool_calls");
	const char *finish = dt_xread_str(&s->rd, choice, "finish_reason");

	if (dt_json_get(root, "error"))
		return dt_xstream_provider_error(s, root);
	if (!s->started) {
		struct dt_xev ev = {
			.type = DT_XEV_START, .id = dt_xread_str(&s->rd, root, "id"),
			.model = dt_xread_str(&s->rd, root, "model"),
			.created = dt_json_get_int(root, "created", 0),
		};

		dt_xstream_emit(s, &ev);
	}
	/* a refusal is text the model wrote, whatever its field */
	if (dt_xstream_emit_string(s, DT_XEV_TEXT, dt_json_get(delta, "content")) ||
	    dt_xstream_emit_string(s, DT_XEV_TEXT, dt_json_get(delta, "refusal")))
		return -1;
	for (const struct dt_json *call = calls && calls->type == DT_JSON_ARRAY ? calls->first : NULL;
	     call; call = call->next)
		if (decode_tool_call(s, call))
			return -1;
	if (finish) {
		struct dt_xev ev = {
			.type = DT_XEV_FINISH, .finish = dt_xfinish_parse(DT_FAMILY_OPENAI, finish),
		};

		dt_xstream_emit(s, &ev);
	}
	return dt_xstream_usage(s, dt_json_get(root, "usage"), dt_xopenai_usage_parse);
}

int dt_xopenai_decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	const struct dt_json *root;

	if (e->len == 6 && memcmp(e->data, "[DONE]", 6) == 0) {
		struct dt_xev ev = { .type = DT_XEV_END };

		return dt_xstream_emit(s, &ev);
	}
	root = dt_xstream_json(s, e);
	return root ? decode_chunk(s, root) : -1;
}

/* ---- encoder ------------------------------------------------------------- */

/* Every chunk starts alike: "data: {id, object, created, model, choices":". */
static void begin_chunk(struct dt_xstream *s)
{
	dt_jbuf_put(&s->out, s->enc.head.data, s->enc.head.len);
}

static void begin_delta(struct dt_xstream *s)
{
	begin_chunk(s);
	dt_jbuf_lit(&s->out, "[{\"index\":0,\"delta\":");
}

static void end_delta(struct dt_xstream *s, enum dt_xfinish finish)
{
	dt_jbuf_lit(&s->out, ",\"finish_reason\":");
	dt_jbuf_str(&s->out, dt_xfinish_name(DT_FAMILY_OPENAI, finish));
	dt_jbuf_lit(&s->out, "}]}\n\n");
}

static void encode_start(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_jbuf *h = &s->enc.head;
	char id[DT_XID_LEN];

	dt_jbuf_lit(h, "data: {\"id\":");
	dt_jbuf_str(h, dt_xid(DT_FAMILY_OPENAI, s->from, ev->id, s->ctx.seed, id));
	dt_jbuf_lit(h, ",\"object\":\"chat.completion.chunk\",\"created\":");
	dt_jbuf_int(h, ev->created ? ev->created : s->ctx.now);
	dt_jbuf_lit(h, ",\"model\":");
	dt_jbuf_str(h, dt_xmodel(&s->ctx, ev->model));
	dt_jbuf_lit(h, ",\"choices\":");
	if (h->failed)
		s->out.failed = true;
	begin_delta(s);
	dt_jbuf_lit(&s->out, "{\"role\":\"assistant\",\"content\":\"\"}");
	end_delta(s, DT_XFINISH_NONE);
}

static void encode_end(struct dt_xstream *s)
{
	if (s->ctx.stream_usage && s->info.usage.known) {
		begin_chunk(s);
		dt_jbuf_lit(&s->out, "[],\"usage\":");
		dt_xopenai_usage_emit(&s->out, &s->info.usage);
		dt_jbuf_lit(&s->out, "}\n\n");
	}
	dt_jbuf_lit(&s->out, "data: [DONE]\n\n");
}

void dt_xopenai_encode(struct dt_xstream *s, const struct dt_xev *ev)
{
	char id[DT_XID_LEN];

	switch (ev->type) {
	case DT_XEV_START:
		encode_start(s, ev);
		break;
	case DT_XEV_TEXT:
		begin_delta(s);
		dt_jbuf_lit(&s->out, "{\"content\":");
		dt_jbuf_strn(&s->out, ev->text, ev->len);
		dt_jbuf_lit(&s->out, "}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_TOOL_START:
		begin_delta(s);
		dt_jbuf_lit(&s->out, "{\"tool_calls\":[{\"index\":");
		dt_jbuf_int(&s->out, (int64_t)ev->index);
		dt_jbuf_lit(&s->out, ",\"id\":");
		dt_jbuf_str(&s->out, dt_xtool_id(DT_FAMILY_OPENAI, ev->id, s->ctx.seed, ev->index, id));
		dt_jbuf_lit(&s->out, ",\"type\":\"function\",\"function\":{\"name\":");
		dt_jbuf_str(&s->out, ev->name);
		dt_jbuf_lit(&s->out, ",\"arguments\":\"\"}}]}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_TOOL_ARGS:
		begin_delta(s);
		dt_jbuf_lit(&s->out, "{\"tool_calls\":[{\"index\":");
		dt_jbuf_int(&s->out, (int64_t)ev->index);
		dt_jbuf_lit(&s->out, ",\"function\":{\"arguments\":");
		dt_jbuf_strn(&s->out, ev->text, ev->len);
		dt_jbuf_lit(&s->out, "}}]}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_FINISH:
		begin_delta(s);
		dt_jbuf_lit(&s->out, "{}");
		end_delta(s, ev->finish);
		break;
	case DT_XEV_END:
		encode_end(s);
		break;
	case DT_XEV_BLOCK_STOP:
	case DT_XEV_USAGE:
		break; /* OpenAI has no block ends; usage goes in its own chunk at the end */
	}
}
