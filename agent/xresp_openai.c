// SPDX-License-Identifier: MIT
/* OpenAI Chat Completions answers (object "chat.completion"), read and
 * written; see docs/translation.md, "Responses". */
#include <stdio.h>
#include <string.h>

#include "xresp_int.h"

/* Chat Completions' names, else the Responses API's (input_tokens, ...):
 * the usage of relayed answers (xusage.c) is read here too. */
void dt_xopenai_usage_parse(const struct dt_json *obj, struct dt_xusage *u)
{
	if (!obj || obj->type != DT_JSON_OBJECT)
		return;
	*u = (struct dt_xusage){
		.known = true,
		.input_tokens = dt_json_get_int(obj, "prompt_tokens|input_tokens", 0),
		.output_tokens = dt_json_get_int(obj, "completion_tokens|output_tokens", 0),
		.cached_input_tokens = dt_json_get_int(dt_json_get(obj, "prompt_tokens_details|"
									"input_tokens_details"),
						       "cached_tokens", 0),
	};
}

void dt_xopenai_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u)
{
	dt_jbuf_lit(b, "{\"prompt_tokens\":");
	dt_jbuf_int(b, u->input_tokens);
	dt_jbuf_lit(b, ",\"completion_tokens\":");
	dt_jbuf_int(b, u->output_tokens);
	dt_jbuf_lit(b, ",\"total_tokens\":");
	dt_jbuf_int(b, u->input_tokens + u->output_tokens);
	dt_jbuf_lit(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
	dt_jbuf_int(b, u->cached_input_tokens);
	dt_jbuf_lit(b, "}}");
}

static void add_text(struct dt_xresponse *r, const char *text)
{
	if (text && *text)
		r->parts[r->n_parts++] = (struct dt_xpart){ .type = DT_XPART_TEXT, .text = text };
}

int dt_xopenai_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
		     char *err, size_t errlen)
{
	const struct dt_json *choice = dt_json_at(dt_json_get(root, "choices"), 0);
	const struct dt_json *msg = dt_json_get(choice, "message");
	const struct dt_json *calls = dt_json_get(msg, "tool_calls");
	const char *finish = dt_xread_str(rd, choice, "finish_reason");
	size_t i = 0;

	if (!msg || msg->type != DT_JSON_OBJECT) {
		snprintf(err, errlen, "the provider's answer has no choices[0].message");
		return -1;
	}
	if (calls && calls->type != DT_JSON_ARRAY)
		calls = NULL;
	r->id = dt_xread_str(rd, root, "id");
	r->model = dt_xread_str(rd, root, "model");
	r->created = dt_json_get_int(root, "created", 0);
	/* text, refusal, then the calls */
	r->parts = dt_arena_alloc(&r->arena, ((calls ? calls->len : 0) + 2) * sizeof(*r->parts));
	if (!r->parts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	add_text(r, dt_xread_str(rd, msg, "content"));
	add_text(r, dt_xread_str(rd, msg, "refusal"));
	for (const struct dt_json *call = calls ? calls->first : NULL; call; call = call->next, i++) {
		const struct dt_json *fn = dt_json_get(call, "function");
		const char *name = dt_xread_str(rd, fn, "name");
		const char *args = dt_xread_str(rd, fn, "arguments");

		if (!name) {
			snprintf(err, errlen, "the provider's tool call %zu has no function name", i);
			return -1;
		}
		r->parts[r->n_parts++] = (struct dt_xpart){
			.type = DT_XPART_TOOL_CALL,
			.id = dt_xread_str(rd, call, "id"),
			.name = name,
			.arguments = args ? args : "",
		};
	}
	r->finish = finish ? dt_xfinish_parse(DT_FAMILY_OPENAI, finish) : DT_XFINISH_NONE;
	dt_xopenai_usage_parse(dt_json_get(root, "usage"), &r->usage);
	return 0;
}

void dt_xopenai_emit(struct dt_jbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx)
{
	char id[DT_XID_LEN], call_id[DT_XID_LEN];
	size_t calls = 0, text;

	dt_jbuf_lit(b, "{\"id\":");
	dt_jbuf_str(b, dt_xid(DT_FAMILY_OPENAI, r->shape, r->id, ctx->seed, id));
	dt_jbuf_lit(b, ",\"object\":\"chat.completion\",\"created\":");
	dt_jbuf_int(b, r->created ? r->created : ctx->now);
	dt_jbuf_lit(b, ",\"model\":");
	dt_jbuf_str(b, dt_xmodel(ctx, r->model));
	dt_jbuf_lit(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
	/* the text parts joined into one string; null when there is none */
	text = b->len;
	dt_jbuf_lit(b, "\"");
	if (dt_xresp_text(b, r, dt_jbuf_escn)) {
		dt_jbuf_lit(b, "\"");
	} else {
		b->len = text;
		dt_jbuf_lit(b, "null");
	}
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct dt_xpart *p = &r->parts[i];

		if (p->type != DT_XPART_TOOL_CALL)
			continue;
		if (calls)
			dt_jbuf_lit(b, ",{\"id\":");
		else
			dt_jbuf_lit(b, ",\"tool_calls\":[{\"id\":");
		dt_jbuf_str(b, dt_xtool_id(DT_FAMILY_OPENAI, p->id, ctx->seed, calls, call_id));
		dt_jbuf_lit(b, ",\"type\":\"function\",\"function\":{\"name\":");
		dt_jbuf_str(b, p->name);
		dt_jbuf_lit(b, ",\"arguments\":");
		dt_jbuf_str(b, p->arguments ? p->arguments : "");
		dt_jbuf_lit(b, "}}");
		calls++;
	}
	if (calls)
		dt_jbuf_lit(b, "]");
	dt_jbuf_lit(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
	dt_jbuf_str(b, dt_xfinish_name(DT_FAMILY_OPENAI, r->finish));
	dt_jbuf_lit(b, "}],\"usage\":");
	dt_xopenai_usage_emit(b, &r->usage);
	dt_jbuf_lit(b, "}");
}
