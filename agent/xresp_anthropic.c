// SPDX-License-Identifier: MIT
/* Anthropic Messages answers (type "message"), read and written; see
 * docs/translation.md, "Responses". */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

/* Anthropic counts cache reads and writes apart from input_tokens; the IR's
 * input_tokens holds all three. */
void dt_xanthropic_usage_parse(const struct dt_json *obj, struct dt_xusage *u)
{
	int64_t fresh = u->input_tokens - u->cached_input_tokens - u->cache_write_tokens;

	if (!obj || obj->type != DT_JSON_OBJECT)
		return;
	fresh = dt_json_get_int(obj, "input_tokens", fresh);
	u->cached_input_tokens = dt_json_get_int(obj, "cache_read_input_tokens",
						 u->cached_input_tokens);
	u->cache_write_tokens = dt_json_get_int(obj, "cache_creation_input_tokens",
						u->cache_write_tokens);
	u->input_tokens = fresh + u->cached_input_tokens + u->cache_write_tokens;
	u->output_tokens = dt_json_get_int(obj, "output_tokens", u->output_tokens);
	u->known = true;
}

void dt_xanthropic_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u)
{
	int64_t fresh = u->input_tokens - u->cached_input_tokens - u->cache_write_tokens;

	dt_jbuf_lit(b, "{\"input_tokens\":");
	dt_jbuf_int(b, fresh > 0 ? fresh : 0);
	dt_jbuf_lit(b, ",\"cache_creation_input_tokens\":");
	dt_jbuf_int(b, u->cache_write_tokens);
	dt_jbuf_lit(b, ",\"cache_read_input_tokens\":");
	dt_jbuf_int(b, u->cached_input_tokens);
	dt_jbuf_lit(b, ",\"output_tokens\":");
	dt_jbuf_int(b, u->output_tokens);
	dt_jbuf_lit(b, "}");
}

int dt_xanthropic_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
			char *err, size_t errlen)
{
	const struct dt_json *content = dt_json_get(root, "content");
	const char *stop = dt_xread_str(rd, root, "stop_reason");
	size_t i = 0;

	if (!content || content->type != DT_JSON_ARRAY) {
		snprintf(err, errlen, "the provider's answer has no content array");
		return -1;
	}
	r->id = dt_xread_str(rd, root, "id");
	r->model = dt_xread_str(rd, root, "model");
	r->parts = dt_arena_alloc(&r->arena, (content->len + 1) * sizeof(*r->parts));
	if (!r->parts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* thinking, redacted_thinking and server tool blocks have no place in
	 * the other shapes: dropped */
	for (const struct dt_json *block = content->first; block; block = block->next, i++) {
		const char *type = dt_xread_str(rd, block, "type");
		struct dt_xpart *p = &r->parts[r->n_parts];

		if (type && strcmp(type, "text") == 0) {
			*p = (struct dt_xpart){
				.type = DT_XPART_TEXT, .text = dt_xread_str(rd, block, "text"),
			};
			r->n_parts += p->text != NULL;
		} else if (type && strcmp(type, "tool_use") == 0) {
			*p = (struct dt_xpart){
				.type = DT_XPART_TOOL_CALL,
				.id = dt_xread_str(rd, block, "id"),
				.name = dt_xread_str(rd, block, "name"),
				.arguments = dt_xread_text(rd, dt_json_get(block, "input")),
			};
			if (!p->name) {
				snprintf(err, errlen, "the provider's tool_use block %zu has no name", i);
				return -1;
			}
			r->n_parts++;
		}
	}
	r->finish = stop ? dt_xfinish_parse(DT_FAMILY_ANTHROPIC, stop) : DT_XFINISH_NONE;
	r->stop_sequence = dt_xread_str(rd, root, "stop_sequence");
	dt_xanthropic_usage_parse(dt_json_get(root, "usage"), &r->usage);
	return 0;
}

void dt_xanthropic_emit(struct dt_jbuf *b, const struct dt_xresponse *r,
			const struct dt_xctx *ctx)
{
	char id[DT_XID_LEN], call_id[DT_XID_LEN];
	size_t calls = 0;

	dt_jbuf_lit(b, "{\"id\":");
	dt_jbuf_str(b, dt_xid(DT_FAMILY_ANTHROPIC, r->shape, r->id, ctx->seed, id));
	dt_jbuf_lit(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
	dt_jbuf_str(b, dt_xmodel(ctx, r->model));
	dt_jbuf_lit(b, ",\"content\":[");
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (i)
			dt_jbuf_lit(b, ",");
		if (p->type == DT_XPART_TOOL_CALL) {
			dt_jbuf_lit(b, "{\"type\":\"tool_use\",\"id\":");
			dt_jbuf_str(b, dt_xtool_id(DT_FAMILY_ANTHROPIC, p->id, ctx->seed, calls++,
						  call_id));
			dt_jbuf_lit(b, ",\"name\":");
			dt_jbuf_str(b, p->name);
			dt_jbuf_lit(b, ",\"input\":");
			dt_xargs_emit(b, p->arguments);
			dt_jbuf_lit(b, "}");
		} else {
			dt_jbuf_lit(b, "{\"type\":\"text\",\"text\":");
			dt_jbuf_str(b, p->text);
			dt_jbuf_lit(b, "}");
		}
	}
	dt_jbuf_lit(b, "],\"stop_reason\":");
	dt_jbuf_str(b, dt_xfinish_name(DT_FAMILY_ANTHROPIC, r->finish));
	dt_jbuf_lit(b, ",\"stop_sequence\":");
	dt_jbuf_str(b, r->stop_sequence);
	dt_jbuf_lit(b, ",\"usage\":");
	dt_xanthropic_usage_emit(b, &r->usage);
	dt_jbuf_lit(b, "}");
}
