// SPDX-License-Identifier: MIT
/* Anthropic Messages streams (message_start ... message_stop): decoder and
 * encoder; see docs/translation.md, "Streams". */
#include <string.h>

#include "xresp_int.h"

/* ---- decoder ------------------------------------------------------------- */

static int decode_message_start(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *msg = dt_json_get(root, "message");
	struct dt_xev ev = {
		.type = DT_XEV_START, .id = dt_xread_str(&s->rd, msg, "id"),
		.model = dt_xread_str(&s->rd, msg, "model"),
	};

	/* usage first: the client's opening event shows the input count */
	dt_xstream_usage(s, dt_json_get(msg, "usage"), dt_xanthropic_usage_parse);
	return dt_xstream_emit(s, &ev);
}

/* Thinking and server-tool blocks have no place in the other shapes: their
 * deltas and stop are skipped. */
static int decode_block_start(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *block = dt_json_get(root, "content_block");
	const char *type = dt_xread_str(&s->rd, block, "type");

	if (type && strcmp(type, "text") == 0) {
		s->dec.block = DT_XBLOCK_TEXT;
		return dt_xstream_emit_string(s, DT_XEV_TEXT, dt_json_get(block, "text"));
	}
	if (type && strcmp(type, "tool_use") == 0) {
		s->dec.block = DT_XBLOCK_TOOL;
		return dt_xstream_tool_start(s, dt_xread_str(&s->rd, block, "id"),
					     dt_xread_str(&s->rd, block, "name"));
	}
	s->dec.block = DT_XBLOCK_SKIPPED;
	return 0;
}

static int decode_block_delta(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *delta = dt_json_get(root, "delta");
	const char *type = dt_xread_str(&s->rd, delta, "type");

	if (!type)
		return 0;
	if (s->dec.block == DT_XBLOCK_TEXT && strcmp(type, "text_delta") == 0)
		return dt_xstream_emit_string(s, DT_XEV_TEXT, dt_json_get(delta, "text"));
	if (s->dec.block == DT_XBLOCK_TOOL && strcmp(type, "input_json_delta") == 0)
		return dt_xstream_emit_string(s, DT_XEV_TOOL_ARGS,
					      dt_json_get(delta, "partial_json"));
	return 0;
}

static int decode_block_stop(struct dt_xstream *s)
{
	struct dt_xev ev = { .type = DT_XEV_BLOCK_STOP };
	bool open = s->dec.block == DT_XBLOCK_TEXT || s->dec.block == DT_XBLOCK_TOOL;

	s->dec.block = DT_XBLOCK_NONE;
	return open ? dt_xstream_emit(s, &ev) : 0;
}

static int decode_message_delta(struct dt_xstream *s, const struct dt_json *root)
{
	const struct dt_json *delta = dt_json_get(root, "delta");
	const char *stop = dt_xread_str(&s->rd, delta, "stop_reason");

	if (dt_xstream_usage(s, dt_json_get(root, "usage"), dt_xanthropic_usage_parse))
		return -1;
	if (stop) {
		struct dt_xev ev = {
			.type = DT_XEV_FINISH, .finish = dt_xfinish_parse(DT_FAMILY_ANTHROPIC, stop),
			.stop_sequence = dt_xread_str(&s->rd, delta, "stop_sequence"),
		};

		return dt_xstream_emit(s, &ev);
	}
	return 0;
}

static int decode_event(struct dt_xstream *s, const struct dt_json *root, const char *type)
{
	struct dt_xev end = { .type = DT_XEV_END };

	if (strcmp(type, "message_start") == 0)
		return decode_message_start(s, root);
	if (strcmp(type, "content_block_start") == 0)
		return decode_block_start(s, root);
	if (strcmp(type, "content_block_delta") == 0)
		return decode_block_delta(s, root);
	if (strcmp(type, "content_block_stop") == 0)
		return decode_block_stop(s);
	if (strcmp(type, "message_delta") == 0)
		return decode_message_delta(s, root);
	if (strcmp(type, "message_stop") == 0)
		return dt_xstream_emit(s, &end);
	if (strcmp(type, "error") == 0)
		return dt_xstream_provider_error(s, root);
	return 0; /* ping, and event types added later: nothing for the client */
}

int dt_xanthropic_decode(struct dt_xstream *s, const struct dt_sse_event *e)
{
	const struct dt_json *root = dt_xstream_json(s, e);
	const char *type;

	if (!root)
		return -1;
	/* the data's type is the event's; the SSE event name only repeats it */
	type = dt_xread_str(&s->rd, root, "type");
	return decode_event(s, root, type ? type : e->type);
}

/* ---- encoder ------------------------------------------------------------- */

static void begin_event(struct dt_xstream *s, const char *type)
{
	dt_jbuf_lit(&s->out, "event: ");
	dt_jbuf_put(&s->out, type, strlen(type));
	dt_jbuf_lit(&s->out, "\ndata: {\"type\":\"");
	dt_jbuf_put(&s->out, type, strlen(type));
	dt_jbuf_lit(&s->out, "\"");
}

static void end_event(struct dt_xstream *s)
{
	dt_jbuf_lit(&s->out, "}\n\n");
}

static void close_block(struct dt_xstream *s)
{
	if (s->enc.block == DT_XBLOCK_NONE)
		return;
	begin_event(s, "content_block_stop");
	dt_jbuf_lit(&s->out, ",\"index\":");
	dt_jbuf_int(&s->out, (int64_t)s->enc.blocks - 1);
	end_event(s);
	s->enc.block = DT_XBLOCK_NONE;
}

/* content_block_start up to the block's own fields. */
static void open_block(struct dt_xstream *s, enum dt_xblock kind)
{
	close_block(s);
	s->enc.block = kind;
	begin_event(s, "content_block_start");
	dt_jbuf_lit(&s->out, ",\"index\":");
	dt_jbuf_int(&s->out, (int64_t)s->enc.blocks++);
	dt_jbuf_lit(&s->out, ",\"content_block\":");
}

/* A content_block_delta of the open block: the event's piece of text as
 * the delta's member key. */
static void delta(struct dt_xstream *s, const char *type, const char *key, const struct dt_xev *ev)
{
	begin_event(s, "content_block_delta");
	dt_jbuf_lit(&s->out, ",\"index\":");
	dt_jbuf_int(&s->out, (int64_t)s->enc.blocks - 1);
	dt_jbuf_lit(&s->out, ",\"delta\":{\"type\":\"");
	dt_jbuf_put(&s->out, type, strlen(type));
	dt_jbuf_lit(&s->out, "\",\"");
	dt_jbuf_put(&s->out, key, strlen(key));
	dt_jbuf_lit(&s->out, "\":");
	dt_jbuf_strn(&s->out, ev->text, ev->len);
	dt_jbuf_lit(&s->out, "}");
	end_event(s);
}

static void encode_start(struct dt_xstream *s, const struct dt_xev *ev)
{
	char id[DT_XID_LEN];

	begin_event(s, "message_start");
	dt_jbuf_lit(&s->out, ",\"message\":{\"id\":");
	dt_jbuf_str(&s->out, dt_xid(DT_FAMILY_ANTHROPIC, s->from, ev->id, s->ctx.seed, id));
	dt_jbuf_lit(&s->out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
	dt_jbuf_str(&s->out, dt_xmodel(&s->ctx, ev->model));
	dt_jbuf_lit(&s->out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
	dt_xanthropic_usage_emit(&s->out, &s->info.usage);
	dt_jbuf_lit(&s->out, "}");
	end_event(s);
}

static void encode_finish(struct dt_xstream *s, const struct dt_xev *ev)
{
	close_block(s);
	s->enc.finish = ev->finish;
	if (ev->stop_sequence &&
	    !(s->enc.stop_sequence = dt_arena_strdup(&s->arena, ev->stop_sequence)))
		s->out.failed = true;
}

/* Usage in full: a provider of another family tells the input count only
 * now, and Anthropic's clients take it from message_delta too. */
static void encode_end(struct dt_xstream *s)
{
	close_block(s);
	begin_event(s, "message_delta");
	dt_jbuf_lit(&s->out, ",\"delta\":{\"stop_reason\":");
	dt_jbuf_str(&s->out, dt_xfinish_name(DT_FAMILY_ANTHROPIC, s->enc.finish));
	dt_jbuf_lit(&s->out, ",\"stop_sequence\":");
	dt_jbuf_str(&s->out, s->enc.stop_sequence);
	dt_jbuf_lit(&s->out, "},\"usage\":");
	dt_xanthropic_usage_emit(&s->out, &s->info.usage);
	end_event(s);
	begin_event(s, "message_stop");
	end_event(s);
}

void dt_xanthropic_encode(struct dt_xstream *s, const struct dt_xev *ev)
{
	char id[DT_XID_LEN];

	switch (ev->type) {
	case DT_XEV_START:
		encode_start(s, ev);
		break;
	case DT_XEV_TEXT:
		if (s->enc.block != DT_XBLOCK_TEXT) {
			open_block(s, DT_XBLOCK_TEXT);
			dt_jbuf_lit(&s->out, "{\"type\":\"text\",\"text\":\"\"}");
			end_event(s);
		}
		delta(s, "text_delta", "text", ev);
		break;
	case DT_XEV_TOOL_START:
		open_block(s, DT_XBLOCK_TOOL);
		dt_jbuf_lit(&s->out, "{\"type\":\"tool_use\",\"id\":");
		dt_jbuf_str(&s->out, dt_xtool_id(DT_FAMILY_ANTHROPIC, ev->id, s->ctx.seed, ev->index,
						id));
		dt_jbuf_lit(&s->out, ",\"name\":");
		dt_jbuf_str(&s->out, ev->name);
		dt_jbuf_lit(&s->out, ",\"input\":{}}");
		end_event(s);
		break;
	case DT_XEV_TOOL_ARGS:
		if (s->enc.block != DT_XBLOCK_TOOL)
			break; /* its call's block was closed by text in between */
		delta(s, "input_json_delta", "partial_json", ev);
		break;
	case DT_XEV_BLOCK_STOP:
		close_block(s);
		break;
	case DT_XEV_FINISH:
		encode_finish(s, ev);
		break;
	case DT_XEV_END:
		encode_end(s);
		break;
	case DT_XEV_USAGE:
		break; /* written at the start and the end */
	}
}
