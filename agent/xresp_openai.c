// SPDX-License-Identifier: MIT
/* OpenAI Chat Completions answers (object "chat.completion"), read and
 * written; see docs/translation-responses.md. */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

void dt_xopenai_usage_parse(const json_t *obj, struct dt_xusage *u)
{
	if (!json_is_object(obj))
		return;
	*u = (struct dt_xusage){
		.known = true,
		.input_tokens = dt_xj_int(obj, "prompt_tokens", 0),
		.output_tokens = dt_xj_int(obj, "completion_tokens", 0),
		.cached_input_tokens = dt_xj_int(json_object_get(obj, "prompt_tokens_details"),
						 "cached_tokens", 0),
	};
}

void dt_xopenai_usage_emit(struct dt_xbuf *b, const struct dt_xusage *u)
{
	dt_xb_lit(b, "{\"prompt_tokens\":");
	dt_xb_int(b, u->input_tokens);
	dt_xb_lit(b, ",\"completion_tokens\":");
	dt_xb_int(b, u->output_tokens);
	dt_xb_lit(b, ",\"total_tokens\":");
	dt_xb_int(b, u->input_tokens + u->output_tokens);
	dt_xb_lit(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
	dt_xb_int(b, u->cached_input_tokens);
	dt_xb_lit(b, "}}");
}

static void add_text(struct dt_xresponse *r, const char *text)
{
	if (text && *text)
		r->parts[r->n_parts++] = (struct dt_xpart){ .type = DT_XPART_TEXT, .text = text };
}

int dt_xopenai_parse(json_t *root, struct dt_xresponse *r, char *err, size_t errlen)
{
	json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
	json_t *msg = json_object_get(choice, "message");
	json_t *calls = json_object_get(msg, "tool_calls");
	const char *finish = dt_xj_str(choice, "finish_reason");
	size_t i;
	json_t *call;

	if (!json_is_object(msg)) {
		snprintf(err, errlen, "the provider's answer has no choices[0].message");
		return -1;
	}
	r->id = dt_xj_str(root, "id");
	r->model = dt_xj_str(root, "model");
	r->created = dt_xj_int(root, "created", 0);
	/* text, refusal, then the calls */
	r->parts = dt_arena_alloc(&r->arena, (json_array_size(calls) + 2) * sizeof(*r->parts));
	if (!r->parts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	add_text(r, dt_xj_str(msg, "content"));
	add_text(r, dt_xj_str(msg, "refusal"));
	json_array_foreach(calls, i, call) {
		json_t *fn = json_object_get(call, "function");
		const char *args = dt_xj_str(fn, "arguments");

		if (!dt_xj_str(fn, "name")) {
			snprintf(err, errlen, "the provider's tool call %zu has no function name", i);
			return -1;
		}
		r->parts[r->n_parts++] = (struct dt_xpart){
			.type = DT_XPART_TOOL_CALL,
			.id = dt_xj_str(call, "id"),
			.name = dt_xj_str(fn, "name"),
			.arguments = args ? args : "",
		};
	}
	r->finish = finish ? dt_xfinish_parse(DT_FAMILY_OPENAI, finish) : DT_XFINISH_NONE;
	dt_xopenai_usage_parse(json_object_get(root, "usage"), &r->usage);
	return 0;
}

void dt_xopenai_emit(struct dt_xbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx)
{
	char id[DT_XID_LEN], call_id[DT_XID_LEN];
	size_t calls = 0;
	bool text = false;

	dt_xb_lit(b, "{\"id\":");
	dt_xb_cstr(b, dt_xid(DT_FAMILY_OPENAI, r->shape, r->id, ctx->seed, id));
	dt_xb_lit(b, ",\"object\":\"chat.completion\",\"created\":");
	dt_xb_int(b, r->created ? r->created : ctx->now);
	dt_xb_lit(b, ",\"model\":");
	dt_xb_cstr(b, dt_xmodel(ctx, r->model));
	dt_xb_lit(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
	/* the text parts joined into one string; null when there is none */
	for (size_t i = 0; i < r->n_parts; i++) {
		if (r->parts[i].type != DT_XPART_TEXT)
			continue;
		if (!text)
			dt_xb_lit(b, "\"");
		text = true;
		dt_xb_escaped(b, r->parts[i].text, strlen(r->parts[i].text));
	}
	if (text)
		dt_xb_lit(b, "\"");
	else
		dt_xb_lit(b, "null");
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (p->type != DT_XPART_TOOL_CALL)
			continue;
		if (calls)
			dt_xb_lit(b, ",{\"id\":");
		else
			dt_xb_lit(b, ",\"tool_calls\":[{\"id\":");
		dt_xb_cstr(b, dt_xtool_id(DT_FAMILY_OPENAI, p->id, ctx->seed, calls, call_id));
		dt_xb_lit(b, ",\"type\":\"function\",\"function\":{\"name\":");
		dt_xb_cstr(b, p->name);
		dt_xb_lit(b, ",\"arguments\":");
		dt_xb_cstr(b, p->arguments ? p->arguments : "");
		dt_xb_lit(b, "}}");
		calls++;
	}
	if (calls)
		dt_xb_lit(b, "]");
	dt_xb_lit(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
	dt_xb_cstr(b, dt_xfinish_name(DT_FAMILY_OPENAI, r->finish));
	dt_xb_lit(b, "}],\"usage\":");
	dt_xopenai_usage_emit(b, &r->usage);
	dt_xb_lit(b, "}");
}
