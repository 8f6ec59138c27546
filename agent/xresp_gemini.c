// SPDX-License-Identifier: MIT
/* Gemini generateContent answers (GenerateContentResponse), read and
 * written; see docs/translation.md, "Responses". */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

/* Thoughts count as output (as OpenAI's reasoning tokens do), tool-use
 * prompts as input: the IR's totals are what is billed. */
void dt_xgemini_usage_parse(const struct dt_json *obj, struct dt_xusage *u)
{
	if (!obj || obj->type != DT_JSON_OBJECT)
		return;
	*u = (struct dt_xusage){
		.known = true,
		.input_tokens = dt_json_get_int(obj, "promptTokenCount", 0) +
				dt_json_get_int(obj, "toolUsePromptTokenCount", 0),
		.output_tokens = dt_json_get_int(obj, "candidatesTokenCount", 0) +
				 dt_json_get_int(obj, "thoughtsTokenCount", 0),
		.cached_input_tokens = dt_json_get_int(obj, "cachedContentTokenCount", 0),
	};
}

void dt_xgemini_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u)
{
	dt_jbuf_lit(b, "{\"promptTokenCount\":");
	dt_jbuf_int(b, u->input_tokens);
	dt_jbuf_lit(b, ",\"candidatesTokenCount\":");
	dt_jbuf_int(b, u->output_tokens);
	dt_jbuf_lit(b, ",\"totalTokenCount\":");
	dt_jbuf_int(b, u->input_tokens + u->output_tokens);
	if (u->cached_input_tokens) {
		dt_jbuf_lit(b, ",\"cachedContentTokenCount\":");
		dt_jbuf_int(b, u->cached_input_tokens);
	}
	dt_jbuf_lit(b, "}");
}

enum dt_xfinish dt_xgemini_finish(struct dt_xread *rd, const struct dt_json *root,
				  bool tool_calls)
{
	const struct dt_json *cand = dt_json_at(dt_json_get(root, "candidates"), 0);
	const char *reason = dt_xread_str(rd, cand, "finishReason");
	const struct dt_json *block = dt_json_get(dt_json_get(root, "promptFeedback"), "blockReason");
	enum dt_xfinish f;

	if (!reason)
		return block && block->type == DT_JSON_STRING ? DT_XFINISH_CONTENT_FILTER
							       : DT_XFINISH_NONE;
	f = dt_xfinish_parse(DT_FAMILY_GEMINI, reason);
	return f == DT_XFINISH_STOP && tool_calls ? DT_XFINISH_TOOL_CALLS : f;
}

const struct dt_json *dt_xgemini_parts(const struct dt_json *root)
{
	const struct dt_json *cand = dt_json_at(dt_json_get(root, "candidates"), 0);
	const struct dt_json *parts = dt_json_get(dt_json_get(cand, "content"), "parts");

	return parts && parts->type == DT_JSON_ARRAY ? parts : NULL;
}

void dt_xgemini_call_open(struct dt_jbuf *b, const char *id, const char *name)
{
	dt_jbuf_lit(b, "{\"functionCall\":{");
	if (id) {
		dt_jbuf_lit(b, "\"id\":");
		dt_jbuf_str(b, id);
		dt_jbuf_lit(b, ",");
	}
	dt_jbuf_lit(b, "\"name\":");
	dt_jbuf_str(b, name);
	dt_jbuf_lit(b, ",\"args\":");
}

int dt_xgemini_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
		     char *err, size_t errlen)
{
	const struct dt_json *parts = dt_xgemini_parts(root);
	bool calls = false;
	size_t i = 0;

	if (root->type != DT_JSON_OBJECT) {
		snprintf(err, errlen, "the provider's answer is not a JSON object");
		return -1;
	}
	r->id = dt_xread_str(rd, root, "responseId");
	r->model = dt_xread_str(rd, root, "modelVersion");
	r->parts = dt_arena_alloc(&r->arena, ((parts ? parts->len : 0) + 1) * sizeof(*r->parts));
	if (!r->parts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const struct dt_json *part = parts ? parts->first : NULL; part; part = part->next, i++) {
		const struct dt_json *fn = dt_json_get(part, "functionCall");
		struct dt_xpart *p = &r->parts[r->n_parts];

		if (fn && fn->type == DT_JSON_OBJECT) {
			const struct dt_json *args = dt_json_get(fn, "args");

			*p = (struct dt_xpart){
				.type = DT_XPART_TOOL_CALL,
				.id = dt_xread_str(rd, fn, "id"),
				.name = dt_xread_str(rd, fn, "name"),
				.arguments = args ? dt_xread_text(rd, args) : "{}",
			};
			if (!p->name) {
				snprintf(err, errlen, "the provider's functionCall %zu has no name", i);
				return -1;
			}
			calls = true;
			r->n_parts++;
		} else if (!dt_json_get_true(part, "thought")) {
			*p = (struct dt_xpart){
				.type = DT_XPART_TEXT, .text = dt_xread_str(rd, part, "text"),
			};
			r->n_parts += p->text != NULL;
		}
	}
	r->finish = dt_xgemini_finish(rd, root, calls);
	dt_xgemini_usage_parse(dt_json_get(root, "usageMetadata"), &r->usage);
	return 0;
}

void dt_xgemini_emit(struct dt_jbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx)
{
	const char *finish = dt_xfinish_name(DT_FAMILY_GEMINI, r->finish);
	char id[DT_XID_LEN];

	dt_jbuf_lit(b, "{\"candidates\":[{\"content\":{\"parts\":[");
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (i)
			dt_jbuf_lit(b, ",");
		if (p->type == DT_XPART_TOOL_CALL) {
			/* Gemini's calls need no id: the provider's is kept, none made */
			dt_xgemini_call_open(b, p->id, p->name);
			dt_xargs_emit(b, p->arguments);
			dt_jbuf_lit(b, "}}");
		} else {
			dt_jbuf_lit(b, "{\"text\":");
			dt_jbuf_str(b, p->text);
			dt_jbuf_lit(b, "}");
		}
	}
	dt_jbuf_lit(b, "],\"role\":\"model\"}");
	if (finish) {
		dt_jbuf_lit(b, ",\"finishReason\":");
		dt_jbuf_str(b, finish);
	}
	dt_jbuf_lit(b, ",\"index\":0}]");
	if (r->usage.known) {
		dt_jbuf_lit(b, ",\"usageMetadata\":");
		dt_xgemini_usage_emit(b, &r->usage);
	}
	dt_jbuf_lit(b, ",\"modelVersion\":");
	dt_jbuf_str(b, dt_xmodel(ctx, r->model));
	dt_jbuf_lit(b, ",\"responseId\":");
	dt_jbuf_str(b, dt_xid(DT_FAMILY_GEMINI, r->shape, r->id, ctx->seed, id));
	dt_jbuf_lit(b, "}");
}
