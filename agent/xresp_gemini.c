// SPDX-License-Identifier: MIT
/* Gemini generateContent answers (GenerateContentResponse), read and
 * written; see docs/translation-responses.md. */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

/* Thoughts count as output (as OpenAI's reasoning tokens do), tool-use
 * prompts as input: the IR's totals are what is billed. */
void dt_xgemini_usage_parse(const json_t *obj, struct dt_xusage *u)
{
	if (!json_is_object(obj))
		return;
	*u = (struct dt_xusage){
		.known = true,
		.input_tokens = dt_xj_int(obj, "promptTokenCount", 0) +
				dt_xj_int(obj, "toolUsePromptTokenCount", 0),
		.output_tokens = dt_xj_int(obj, "candidatesTokenCount", 0) +
				 dt_xj_int(obj, "thoughtsTokenCount", 0),
		.cached_input_tokens = dt_xj_int(obj, "cachedContentTokenCount", 0),
	};
}

void dt_xgemini_usage_emit(struct dt_xbuf *b, const struct dt_xusage *u)
{
	dt_xb_lit(b, "{\"promptTokenCount\":");
	dt_xb_int(b, u->input_tokens);
	dt_xb_lit(b, ",\"candidatesTokenCount\":");
	dt_xb_int(b, u->output_tokens);
	dt_xb_lit(b, ",\"totalTokenCount\":");
	dt_xb_int(b, u->input_tokens + u->output_tokens);
	if (u->cached_input_tokens) {
		dt_xb_lit(b, ",\"cachedContentTokenCount\":");
		dt_xb_int(b, u->cached_input_tokens);
	}
	dt_xb_lit(b, "}");
}

enum dt_xfinish dt_xgemini_finish(const json_t *root, bool tool_calls)
{
	json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
	const char *reason = dt_xj_str(cand, "finishReason");
	enum dt_xfinish f;

	if (!reason)
		return dt_xj_str(json_object_get(root, "promptFeedback"), "blockReason") ?
			DT_XFINISH_CONTENT_FILTER : DT_XFINISH_NONE;
	f = dt_xfinish_parse(DT_FAMILY_GEMINI, reason);
	return f == DT_XFINISH_STOP && tool_calls ? DT_XFINISH_TOOL_CALLS : f;
}

int dt_xgemini_parse(json_t *root, struct dt_xresponse *r, char *err, size_t errlen)
{
	json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
	json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
	bool calls = false;
	size_t i;
	json_t *part;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "the provider's answer is not a JSON object");
		return -1;
	}
	r->id = dt_xj_str(root, "responseId");
	r->model = dt_xj_str(root, "modelVersion");
	r->parts = dt_arena_alloc(&r->arena, (json_array_size(parts) + 1) * sizeof(*r->parts));
	if (!r->parts)
		goto oom;
	json_array_foreach(parts, i, part) {
		json_t *fn = json_object_get(part, "functionCall");
		struct dt_xpart *p = &r->parts[r->n_parts];

		if (json_is_object(fn)) {
			json_t *args = json_object_get(fn, "args");

			*p = (struct dt_xpart){
				.type = DT_XPART_TOOL_CALL,
				.id = dt_xj_str(fn, "id"),
				.name = dt_xj_str(fn, "name"),
				.arguments = args ? dt_xj_text(&r->arena, args) : "{}",
			};
			if (!p->name) {
				snprintf(err, errlen, "the provider's functionCall %zu has no name", i);
				return -1;
			}
			if (!p->arguments)
				goto oom;
			calls = true;
			r->n_parts++;
		} else if (dt_xj_str(part, "text") && !json_is_true(json_object_get(part, "thought"))) {
			*p = (struct dt_xpart){ .type = DT_XPART_TEXT, .text = dt_xj_str(part, "text") };
			r->n_parts++;
		}
	}
	r->finish = dt_xgemini_finish(root, calls);
	dt_xgemini_usage_parse(json_object_get(root, "usageMetadata"), &r->usage);
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

void dt_xgemini_emit(struct dt_xbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx)
{
	const char *finish = dt_xfinish_name(DT_FAMILY_GEMINI, r->finish);
	char id[DT_XID_LEN];

	dt_xb_lit(b, "{\"candidates\":[{\"content\":{\"parts\":[");
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (i)
			dt_xb_lit(b, ",");
		if (p->type == DT_XPART_TOOL_CALL) {
			const char *args = p->arguments ? p->arguments : "";

			/* Gemini's calls need no id: the provider's is kept, none made */
			dt_xb_lit(b, "{\"functionCall\":{");
			if (p->id) {
				dt_xb_lit(b, "\"id\":");
				dt_xb_cstr(b, p->id);
				dt_xb_lit(b, ",");
			}
			dt_xb_lit(b, "\"name\":");
			dt_xb_cstr(b, p->name);
			dt_xb_lit(b, ",\"args\":");
			dt_xb_object(b, args, strlen(args));
			dt_xb_lit(b, "}}");
		} else {
			dt_xb_lit(b, "{\"text\":");
			dt_xb_cstr(b, p->text);
			dt_xb_lit(b, "}");
		}
	}
	dt_xb_lit(b, "],\"role\":\"model\"}");
	if (finish) {
		dt_xb_lit(b, ",\"finishReason\":");
		dt_xb_cstr(b, finish);
	}
	dt_xb_lit(b, ",\"index\":0}]");
	if (r->usage.known) {
		dt_xb_lit(b, ",\"usageMetadata\":");
		dt_xgemini_usage_emit(b, &r->usage);
	}
	dt_xb_lit(b, ",\"modelVersion\":");
	dt_xb_cstr(b, dt_xmodel(ctx, r->model));
	dt_xb_lit(b, ",\"responseId\":");
	dt_xb_cstr(b, dt_xid(DT_FAMILY_GEMINI, r->shape, r->id, ctx->seed, id));
	dt_xb_lit(b, "}");
}
