// SPDX-License-Identifier: MIT
/* Anthropic Messages answers (type "message"), read and written; see
 * docs/translation-responses.md. */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

/* Anthropic counts cache reads and writes apart from input_tokens; the IR's
 * input_tokens holds all three. */
void dt_xanthropic_usage_parse(const json_t *obj, struct dt_xusage *u)
{
	int64_t fresh = u->input_tokens - u->cached_input_tokens - u->cache_write_tokens;

	if (!json_is_object(obj))
		return;
	fresh = dt_xj_int(obj, "input_tokens", fresh);
	u->cached_input_tokens = dt_xj_int(obj, "cache_read_input_tokens", u->cached_input_tokens);
	u->cache_write_tokens = dt_xj_int(obj, "cache_creation_input_tokens", u->cache_write_tokens);
	u->input_tokens = fresh + u->cached_input_tokens + u->cache_write_tokens;
	u->output_tokens = dt_xj_int(obj, "output_tokens", u->output_tokens);
	u->known = true;
}

void dt_xanthropic_usage_emit(struct dt_xbuf *b, const struct dt_xusage *u)
{
	int64_t fresh = u->input_tokens - u->cached_input_tokens - u->cache_write_tokens;

	dt_xb_lit(b, "{\"input_tokens\":");
	dt_xb_int(b, fresh > 0 ? fresh : 0);
	dt_xb_lit(b, ",\"cache_creation_input_tokens\":");
	dt_xb_int(b, u->cache_write_tokens);
	dt_xb_lit(b, ",\"cache_read_input_tokens\":");
	dt_xb_int(b, u->cached_input_tokens);
	dt_xb_lit(b, ",\"output_tokens\":");
	dt_xb_int(b, u->output_tokens);
	dt_xb_lit(b, "}");
}

int dt_xanthropic_parse(json_t *root, struct dt_xresponse *r, char *err, size_t errlen)
{
	json_t *content = json_object_get(root, "content");
	const char *stop = dt_xj_str(root, "stop_reason");
	size_t i;
	json_t *block;

	if (!json_is_array(content)) {
		snprintf(err, errlen, "the provider's answer has no content array");
		return -1;
	}
	r->id = dt_xj_str(root, "id");
	r->model = dt_xj_str(root, "model");
	r->parts = dt_arena_alloc(&r->arena, (json_array_size(content) + 1) * sizeof(*r->parts));
	if (!r->parts)
		goto oom;
	/* thinking, redacted_thinking and server tool blocks have no place in
	 * the other shapes: dropped */
	json_array_foreach(content, i, block) {
		const char *type = dt_xj_str(block, "type");
		struct dt_xpart *p = &r->parts[r->n_parts];

		if (type && strcmp(type, "text") == 0 && dt_xj_str(block, "text")) {
			*p = (struct dt_xpart){ .type = DT_XPART_TEXT, .text = dt_xj_str(block, "text") };
			r->n_parts++;
		} else if (type && strcmp(type, "tool_use") == 0) {
			*p = (struct dt_xpart){
				.type = DT_XPART_TOOL_CALL,
				.id = dt_xj_str(block, "id"),
				.name = dt_xj_str(block, "name"),
				.arguments = dt_xj_text(&r->arena, json_object_get(block, "input")),
			};
			if (!p->name) {
				snprintf(err, errlen, "the provider's tool_use block %zu has no name", i);
				return -1;
			}
			if (!p->arguments)
				goto oom;
			r->n_parts++;
		}
	}
	r->finish = stop ? dt_xfinish_parse(DT_FAMILY_ANTHROPIC, stop) : DT_XFINISH_NONE;
	r->stop_sequence = dt_xj_str(root, "stop_sequence");
	dt_xanthropic_usage_parse(json_object_get(root, "usage"), &r->usage);
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

void dt_xanthropic_emit(struct dt_xbuf *b, const struct dt_xresponse *r,
			const struct dt_xctx *ctx)
{
	char id[DT_XID_LEN], call_id[DT_XID_LEN];
	size_t calls = 0;

	dt_xb_lit(b, "{\"id\":");
	dt_xb_cstr(b, dt_xid(DT_FAMILY_ANTHROPIC, r->shape, r->id, ctx->seed, id));
	dt_xb_lit(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
	dt_xb_cstr(b, dt_xmodel(ctx, r->model));
	dt_xb_lit(b, ",\"content\":[");
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (i)
			dt_xb_lit(b, ",");
		if (p->type == DT_XPART_TOOL_CALL) {
			const char *args = p->arguments ? p->arguments : "";

			dt_xb_lit(b, "{\"type\":\"tool_use\",\"id\":");
			dt_xb_cstr(b, dt_xtool_id(DT_FAMILY_ANTHROPIC, p->id, ctx->seed, calls++,
						  call_id));
			dt_xb_lit(b, ",\"name\":");
			dt_xb_cstr(b, p->name);
			dt_xb_lit(b, ",\"input\":");
			dt_xb_object(b, args, strlen(args));
			dt_xb_lit(b, "}");
		} else {
			dt_xb_lit(b, "{\"type\":\"text\",\"text\":");
			dt_xb_cstr(b, p->text);
			dt_xb_lit(b, "}");
		}
	}
	dt_xb_lit(b, "],\"stop_reason\":");
	dt_xb_cstr(b, dt_xfinish_name(DT_FAMILY_ANTHROPIC, r->finish));
	dt_xb_lit(b, ",\"stop_sequence\":");
	dt_xb_cstr(b, r->stop_sequence);
	dt_xb_lit(b, ",\"usage\":");
	dt_xanthropic_usage_emit(b, &r->usage);
	dt_xb_lit(b, "}");
}
