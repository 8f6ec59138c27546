// SPDX-License-Identifier: MIT
/* OpenAI Chat Completions streams (chat.completion.chunk): decoder and
 * encoder; see docs/translation-responses.md. */
#include <string.h>

#include "xresp_int.h"

/* ---- decoder ------------------------------------------------------------- */

/* A delta of a tool call: a new call when the index changes or, for the
 * compatible providers that number every call 0, when another id comes. */
static int decode_tool_call(struct dt_xstream *s, const json_t *call)
{
	json_t *fn = json_object_get(call, "function");
	const char *id = dt_xj_str(call, "id");
	int64_t index = dt_xj_int(call, "index", 0);

	if (index != s->dec.tool_index ||
	    (id && (!s->dec.tool_id || strcmp(id, s->dec.tool_id) != 0))) {
		const char *name = dt_xj_str(fn, "name");
		struct dt_xev ev = { .type = DT_XEV_TOOL_START, .id = id, .name = name ? name : "" };

		s->dec.tool_index = index;
		s->dec.tool_id = id ? dt_arena_strdup(&s->arena, id) : NULL;
		if (id && !s->dec.tool_id)
			return dt_xstream_fail(s, "out of memory translating the stream");
		if (dt_xstream_emit(s, &ev))
			return -1;
	}
	return dt_xstream_emit_string(s, DT_XEV_TOOL_ARGS, json_object_get(fn, "arguments"));
}

static int decode_chunk(struct dt_xstream *s, const json_t *root)
{
	json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
	json_t *delta = json_object_get(choice, "delta");
	json_t *usage = json_object_get(root, "usage");
	const char *finish = dt_xj_str(choice, "finish_reason");
	size_t i;
	json_t *call;

	if (json_object_get(root, "error"))
		return dt_xstream_provider_error(s, root);
	if (!s->started) {
		struct dt_xev ev = {
			.type = DT_XEV_START, .id = dt_xj_str(root, "id"),
			.model = dt_xj_str(root, "model"), .created = dt_xj_int(root, "created", 0),
		};

		dt_xstream_emit(s, &ev);
	}
	/* a refusal is text the model wrote, whatever its field */
	if (dt_xstream_emit_string(s, DT_XEV_TEXT, json_object_get(delta, "content")) ||
	    dt_xstream_emit_string(s, DT_XEV_TEXT, json_object_get(delta, "refusal")))
		return -1;
	json_array_foreach(json_object_get(delta, "tool_calls"), i, call)
		if (decode_tool_call(s, call))
			return -1;
	if (finish) {
		struct dt_xev ev = {
			.type = DT_XEV_FINISH, .finish = dt_xfinish_parse(DT_FAMILY_OPENAI, finish),
		};

		dt_xstream_emit(s, &ev);
	}
	if (json_is_object(usage)) {
		struct dt_xev ev = { .type = DT_XEV_USAGE };

		dt_xopenai_usage_parse(usage, &ev.usage);
		dt_xstream_emit(s, &ev);
	}
	return 0;
}

int dt_xopenai_decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	json_t *root;
	int rc;

	if (e->len == 6 && memcmp(e->data, "[DONE]", 6) == 0) {
		struct dt_xev ev = { .type = DT_XEV_END };

		return dt_xstream_emit(s, &ev);
	}
	if (!(root = dt_xstream_json(s, e)))
		return -1;
	rc = decode_chunk(s, root);
	json_decref(root);
	return rc;
}

/* ---- encoder ------------------------------------------------------------- */

/* Every chunk starts alike: "data: {id, object, created, model, choices":". */
static void begin_chunk(struct dt_xstream *s)
{
	dt_xb_add(&s->out, s->enc.head.p, s->enc.head.len);
}

static void begin_delta(struct dt_xstream *s)
{
	begin_chunk(s);
	dt_xb_lit(&s->out, "[{\"index\":0,\"delta\":");
}

static void end_delta(struct dt_xstream *s, enum dt_xfinish finish)
{
	dt_xb_lit(&s->out, ",\"finish_reason\":");
	dt_xb_cstr(&s->out, dt_xfinish_name(DT_FAMILY_OPENAI, finish));
	dt_xb_lit(&s->out, "}]}\n\n");
}

static void encode_start(struct dt_xstream *s, const struct dt_xev *ev)
{
	struct dt_xbuf *h = &s->enc.head;
	char id[DT_XID_LEN];

	dt_xb_lit(h, "data: {\"id\":");
	dt_xb_cstr(h, dt_xid(DT_FAMILY_OPENAI, s->from, ev->id, s->ctx.seed, id));
	dt_xb_lit(h, ",\"object\":\"chat.completion.chunk\",\"created\":");
	dt_xb_int(h, ev->created ? ev->created : s->ctx.now);
	dt_xb_lit(h, ",\"model\":");
	dt_xb_cstr(h, dt_xmodel(&s->ctx, ev->model));
	dt_xb_lit(h, ",\"choices\":");
	if (h->failed)
		s->out.failed = true;
	begin_delta(s);
	dt_xb_lit(&s->out, "{\"role\":\"assistant\",\"content\":\"\"}");
	end_delta(s, DT_XFINISH_NONE);
}

static void encode_end(struct dt_xstream *s)
{
	if (s->ctx.stream_usage && s->info.usage.known) {
		begin_chunk(s);
		dt_xb_lit(&s->out, "[],\"usage\":");
		dt_xopenai_usage_emit(&s->out, &s->info.usage);
		dt_xb_lit(&s->out, "}\n\n");
	}
	dt_xb_lit(&s->out, "data: [DONE]\n\n");
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
		dt_xb_lit(&s->out, "{\"content\":");
		dt_xb_str(&s->out, ev->text, ev->len);
		dt_xb_lit(&s->out, "}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_TOOL_START:
		begin_delta(s);
		dt_xb_lit(&s->out, "{\"tool_calls\":[{\"index\":");
		dt_xb_int(&s->out, (int64_t)ev->index);
		dt_xb_lit(&s->out, ",\"id\":");
		dt_xb_cstr(&s->out, dt_xtool_id(DT_FAMILY_OPENAI, ev->id, s->ctx.seed, ev->index, id));
		dt_xb_lit(&s->out, ",\"type\":\"function\",\"function\":{\"name\":");
		dt_xb_cstr(&s->out, ev->name);
		dt_xb_lit(&s->out, ",\"arguments\":\"\"}}]}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_TOOL_ARGS:
		begin_delta(s);
		dt_xb_lit(&s->out, "{\"tool_calls\":[{\"index\":");
		dt_xb_int(&s->out, (int64_t)ev->index);
		dt_xb_lit(&s->out, ",\"function\":{\"arguments\":");
		dt_xb_str(&s->out, ev->text, ev->len);
		dt_xb_lit(&s->out, "}}]}");
		end_delta(s, DT_XFINISH_NONE);
		break;
	case DT_XEV_FINISH:
		begin_delta(s);
		dt_xb_lit(&s->out, "{}");
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
