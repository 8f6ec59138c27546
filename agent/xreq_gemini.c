// SPDX-License-Identifier: MIT
/* Gemini generateContent requests <-> neutral form; rules in
 * docs/translation.md, "Requests". Gemini reads both lowerCamelCase and
 * snake_case field names: every name below is looked up as both. */
#include <stdlib.h>
#include <string.h>

#include "xreq_int.h"

/* Google's documented value for function calls Gemini did not make (other
 * models' history): without a signature, thinking models refuse them. */
#define SKIP_SIGNATURE "skip_thought_signature_validator"

/* ---- parsing ---------------------------------------------------------- */

/* The model turn whose calls the next function responses answer. */
struct last_calls {
	const struct dt_xmessage *m;
	bool *answered;         /* per part of m */
};

static int image_part(struct xparse *p, struct dt_xpart *x, const struct dt_json *blob,
		      bool inline_data)
{
	if (xp_str(p, blob, "mimeType|mime_type", inline_data, &x->media_type) ||
	    (inline_data ? xp_str(p, blob, "data", true, &x->data)
			 : xp_str(p, blob, "fileUri|file_uri", true, &x->url)))
		return -1;
	if (x->media_type && strncmp(x->media_type, "image/", 6) != 0)
		return xp_fail_at(p, "mimeType", "only images can be translated, not %s", x->media_type);
	return 0;
}

static int call_part(struct xparse *p, struct dt_xpart *x, const struct dt_json *call, size_t turn,
		     size_t index)
{
	const struct dt_json *args;

	if (xp_str(p, call, "name", true, &x->name) || xp_str(p, call, "id", false, &x->id) ||
	    xp_object(p, call, "args", false, &args))
		return -1;
	x->arguments = args ? dt_json_text(&p->r->arena, args, 0) : "{}";
	/* no id from the client: one derived from where the call is, so the
	 * same history always gets the same ids */
	if (!x->id)
		x->id = dt_arena_printf(&p->r->arena, "call_%zu_%zu", turn, index);
	return x->arguments && x->id ? 0 : xp_fail(p, "out of memory");
}

/* The id of the call a response answers: its own, or the first call of
 * the same name not yet answered in the previous model turn. */
static const char *answered_call(struct last_calls *calls, const char *name)
{
	const struct dt_xmessage *m = calls->m;

	for (size_t i = 0; m && i < m->n_parts; i++)
		if (m->parts[i].type == DT_XPART_TOOL_CALL && !calls->answered[i] &&
		    strcmp(m->parts[i].name, name) == 0) {
			calls->answered[i] = true;
			return m->parts[i].id;
		}
	return NULL;
}

/* A response is {"result": "<text>"} or {"error": "<text>"} when it only
 * wraps a text; otherwise its JSON is the text. */
static int response_part(struct xparse *p, struct dt_xpart *x, const struct dt_json *resp,
			 struct last_calls *calls)
{
	const struct dt_json *body, *only;

	if (xp_str(p, resp, "name", true, &x->name) || xp_str(p, resp, "id", false, &x->id) ||
	    xp_object(p, resp, "response", true, &body))
		return -1;
	if (!x->id && !(x->id = answered_call(calls, x->name)))
		return xp_fail(p, "no call to \"%s\" in the previous model turn", x->name);
	only = body->len == 1 && body->first->type == DT_JSON_STRING ? body->first : NULL;
	if (only && (dt_json_get(body, "result") || dt_json_get(body, "error"))) {
		x->is_error = dt_json_get(body, "error") != NULL;
		x->text = dt_json_cstr(&p->r->arena, only);
	} else {
		x->text = dt_json_text(&p->r->arena, body, 0);
	}
	return x->text ? 0 : xp_fail(p, "out of memory");
}

static const char *const part_kinds[] = {
	"text", "inlineData|inline_data", "fileData|file_data", "functionCall|function_call",
	"functionResponse|function_response",
};

/* One part of contents[turn], into the run *m (xp_run_part). */
static int part(struct xparse *p, struct dt_xmessage **m, const struct dt_json *pt, bool model,
		size_t turn, size_t index, size_t left, struct last_calls *calls)
{
	static const enum dt_xpart_type types[] = {
		DT_XPART_TEXT, DT_XPART_IMAGE, DT_XPART_IMAGE, DT_XPART_TOOL_CALL,
		DT_XPART_TOOL_RESULT,
	};
	enum dt_xrole role = model ? DT_XROLE_ASSISTANT : DT_XROLE_USER;
	const struct dt_json *v = NULL;
	bool thought = false;
	struct dt_xpart *x;
	size_t k;

	if (pt->type != DT_JSON_OBJECT)
		return xp_fail(p, "a part must be an object");
	for (k = 0; k < sizeof(part_kinds) / sizeof(part_kinds[0]) && !v; k++)
		v = dt_json_get(pt, part_kinds[k]);
	if (!v)
		return xp_fail(p, "a part must hold text, inlineData, fileData, functionCall or "
			       "functionResponse");
	k--;
	if (xp_bool(p, pt, "thought", &thought, NULL))
		return -1;
	if (thought)
		return 0; /* the model's thoughts are not sent back */
	if ((types[k] == DT_XPART_TOOL_CALL && !model) || (types[k] == DT_XPART_TOOL_RESULT && model))
		return xp_fail(p, "%.*s is not accepted in a %s turn",
			       (int)strcspn(part_kinds[k], "|"), part_kinds[k], model ? "model" : "user");
	if (types[k] == DT_XPART_TOOL_RESULT)
		role = DT_XROLE_TOOL;
	if (!(x = xp_run_part(p, m, role, left, types[k])))
		return -1;
	if (types[k] == DT_XPART_TEXT)
		return xp_str(p, pt, "text", true, &x->text);
	if (xp_object(p, pt, part_kinds[k], true, &v))
		return -1;
	xp_push_key(p, part_kinds[k]);
	if (types[k] == DT_XPART_IMAGE ? image_part(p, x, v, k == 1)
	    : types[k] == DT_XPART_TOOL_CALL ? call_part(p, x, v, turn, index)
	    : response_part(p, x, v, calls))
		return -1;
	p->depth--;
	return 0;
}

static int content(struct xparse *p, const struct dt_json *c, size_t turn, struct last_calls *calls)
{
	const char *role = "user";
	const struct dt_json *parts;
	struct dt_xmessage *m = NULL;
	bool model;
	size_t i = 0;

	if (c->type != DT_JSON_OBJECT)
		return xp_fail(p, "a content must be an object");
	if (xp_str(p, c, "role", false, &role))
		return -1;
	/* "function": how older clients sent function responses */
	if (strcmp(role, "user") != 0 && strcmp(role, "model") != 0 && strcmp(role, "function") != 0)
		return xp_fail_at(p, "role", "unknown role \"%s\"", role);
	model = role[0] == 'm';
	if (xp_array(p, c, "parts", true, XREQ_MAX_PARTS, &parts))
		return -1;
	xp_push_key(p, "parts");
	for (const struct dt_json *pt = parts->first; pt; pt = pt->next, i++) {
		xp_push_index(p, i);
		if (part(p, &m, pt, model, turn, i, parts->len - i, calls))
			return -1;
		p->depth--;
	}
	p->depth--;
	if (model) {
		calls->m = m;
		calls->answered = m ? dt_arena_alloc(&p->r->arena, m->n_parts + 1) : NULL;
		if (m && !calls->answered)
			return xp_fail(p, "out of memory");
	}
	return 0;
}

static int system_instruction(struct xparse *p, const struct dt_json *root)
{
	const struct dt_json *si, *parts;
	size_t i = 0;

	if (xp_object(p, root, "systemInstruction|system_instruction", false, &si))
		return -1;
	if (!si)
		return 0;
	xp_push_key(p, "systemInstruction");
	if (xp_array(p, si, "parts", true, XREQ_MAX_PARTS, &parts))
		return -1;
	xp_push_key(p, "parts");
	for (const struct dt_json *pt = parts->first; pt; pt = pt->next, i++) {
		const char *text = NULL;

		xp_push_index(p, i);
		if (xp_str(p, pt, "text", true, &text) || xp_system(p, text))
			return -1;
		p->depth--;
	}
	p->depth -= 2;
	return 0;
}

static int declaration(struct xparse *p, struct dt_xtool *t, const struct dt_json *decl)
{
	const struct dt_json *json_schema, *openapi;

	if (decl->type != DT_JSON_OBJECT)
		return xp_fail(p, "a function declaration must be an object");
	if (xp_str(p, decl, "name", true, &t->name) ||
	    xp_str(p, decl, "description", false, &t->description) ||
	    xp_object(p, decl, "parametersJsonSchema|parameters_json_schema", false, &json_schema) ||
	    xp_object(p, decl, "parameters", false, &openapi))
		return -1;
	if (json_schema)
		t->parameters = dt_json_text(&p->r->arena, json_schema, 0);
	else if (openapi)
		t->parameters = dt_json_text(&p->r->arena, openapi, DT_JSON_LOWERCASE_TYPES);
	return !t->parameters && (json_schema || openapi) ? xp_fail(p, "out of memory") : 0;
}

static int tools(struct xparse *p, const struct dt_json *root)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *list, *decls;
	size_t n = 0, i = 0;

	if (xp_array(p, root, "tools", false, XREQ_MAX_TOOLS, &list))
		return -1;
	if (!list)
		return 0;
	xp_push_key(p, "tools");
	for (const struct dt_json *t = list->first; t; t = t->next, i++) {
		xp_push_index(p, i);
		if (!dt_json_get(t, "functionDeclarations|function_declarations") || t->len != 1)
			return xp_fail(p, "only functionDeclarations can be translated");
		if (xp_array(p, t, "functionDeclarations|function_declarations", true,
			     XREQ_MAX_TOOLS, &decls))
			return -1;
		n += decls->len;
		p->depth--;
	}
	if (n > XREQ_MAX_TOOLS)
		return xp_fail(p, "%zu function declarations, at most %d accepted", n, XREQ_MAX_TOOLS);
	if (!(r->tools = dt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*r->tools))))
		return xp_fail(p, "out of memory");
	i = 0;
	for (const struct dt_json *t = list->first; t; t = t->next, i++) {
		size_t k = 0;

		xp_push_index(p, i);
		xp_push_key(p, "functionDeclarations");
		for (const struct dt_json *d = t->first->first; d; d = d->next, k++, r->n_tools++) {
			xp_push_index(p, k);
			if (declaration(p, &r->tools[r->n_tools], d))
				return -1;
			p->depth--;
		}
		p->depth -= 2;
	}
	p->depth--;
	return 0;
}

static int tool_config(struct xparse *p, const struct dt_json *root)
{
	static const struct { const char *name; enum dt_xtool_choice choice; } modes[] = {
		{ "AUTO", DT_XTOOL_CHOICE_AUTO }, { "ANY", DT_XTOOL_CHOICE_REQUIRED },
		{ "NONE", DT_XTOOL_CHOICE_NONE },
		/* calls checked against their schema: still the model's choice */
		{ "VALIDATED", DT_XTOOL_CHOICE_AUTO },
		{ "MODE_UNSPECIFIED", DT_XTOOL_CHOICE_UNSET },
	};
	struct dt_xrequest *r = p->r;
	const struct dt_json *tc, *fc, *names = NULL;
	const char *mode = NULL;
	size_t i;

	if (xp_object(p, root, "toolConfig|tool_config", false, &tc))
		return -1;
	if (!tc)
		return 0;
	xp_push_key(p, "toolConfig");
	if (xp_object(p, tc, "functionCallingConfig|function_calling_config", false, &fc))
		return -1;
	xp_push_key(p, "functionCallingConfig");
	if (fc && (xp_str(p, fc, "mode", false, &mode) ||
		   xp_array(p, fc, "allowedFunctionNames|allowed_function_names", false,
			    XREQ_MAX_TOOLS, &names)))
		return -1;
	if (names && names->len > 1)
		return xp_fail_at(p, "allowedFunctionNames", "more than one name cannot be translated");
	for (i = 0; mode && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(mode, modes[i].name) == 0)
			break;
	if (mode && i == sizeof(modes) / sizeof(modes[0]))
		return xp_fail_at(p, "mode", "unknown value \"%s\"", mode);
	r->tool_choice = mode ? modes[i].choice : DT_XTOOL_CHOICE_UNSET;
	if (names && names->len && r->tool_choice == DT_XTOOL_CHOICE_REQUIRED) {
		if (names->first->type != DT_JSON_STRING)
			return xp_fail_at(p, "allowedFunctionNames", "must hold strings");
		r->tool_choice = DT_XTOOL_CHOICE_NAMED;
		if (!(r->tool_choice_name = dt_json_cstr(&r->arena, names->first)))
			return xp_fail(p, "out of memory");
	}
	p->depth -= 2;
	return 0;
}

static int generation_config(struct xparse *p, const struct dt_json *root)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *gc, *schema, *json_schema;
	const char *mime = NULL;

	if (xp_object(p, root, "generationConfig|generation_config", false, &gc))
		return -1;
	if (!gc)
		return 0;
	xp_push_key(p, "generationConfig");
	if (xp_num(p, gc, "temperature", 0, 2, &r->has_temperature, &r->temperature) ||
	    xp_num(p, gc, "topP|top_p", 0, 1, &r->has_top_p, &r->top_p) ||
	    xp_int(p, gc, "topK|top_k", 0, INT32_MAX, &r->has_top_k, &r->top_k) ||
	    xp_int(p, gc, "maxOutputTokens|max_output_tokens", 1, INT32_MAX, NULL, &r->max_tokens) ||
	    xp_stop(p, gc, "stopSequences|stop_sequences") ||
	    xp_int(p, gc, "candidateCount|candidate_count", 1, 128, NULL, &r->n) ||
	    xp_int(p, gc, "seed", INT32_MIN, INT32_MAX, &r->has_seed, &r->seed) ||
	    xp_num(p, gc, "presencePenalty|presence_penalty", -2, 2, &r->has_presence_penalty,
		   &r->presence_penalty) ||
	    xp_num(p, gc, "frequencyPenalty|frequency_penalty", -2, 2, &r->has_frequency_penalty,
		   &r->frequency_penalty) ||
	    xp_str(p, gc, "responseMimeType|response_mime_type", false, &mime) ||
	    xp_object(p, gc, "responseJsonSchema|response_json_schema", false, &json_schema) ||
	    xp_object(p, gc, "responseSchema|response_schema", false, &schema))
		return -1;
	if (mime && strcmp(mime, "application/json") == 0)
		r->format = DT_XFORMAT_JSON;
	else if (mime && strcmp(mime, "text/plain") != 0)
		return xp_fail_at(p, "responseMimeType", "\"%s\" cannot be translated", mime);
	if (r->format == DT_XFORMAT_JSON && (json_schema || schema)) {
		r->format = DT_XFORMAT_JSON_SCHEMA;
		r->schema = json_schema ? dt_json_text(&r->arena, json_schema, 0)
					: dt_json_text(&r->arena, schema, DT_JSON_LOWERCASE_TYPES);
		if (!r->schema)
			return xp_fail(p, "out of memory");
	}
	p->depth--;
	return 0;
}

int xreq_parse_gemini(struct xparse *p, const struct dt_json *root, const char *path_model)
{
	struct dt_xrequest *r = p->r;
	struct last_calls calls = { 0 };
	const struct dt_json *contents;
	size_t i = 0;

	if (path_model && !(r->model = dt_arena_strdup(&r->arena, path_model)))
		return xp_fail(p, "out of memory");
	if (xp_array(p, root, "contents", true, XREQ_MAX_MESSAGES, &contents) ||
	    xp_reserve_runs(p, contents, "parts"))
		return -1;
	xp_push_key(p, "contents");
	for (const struct dt_json *c = contents->first; c; c = c->next, i++) {
		xp_push_index(p, i);
		if (content(p, c, i, &calls))
			return -1;
		p->depth--;
	}
	p->depth--;
	return system_instruction(p, root) || tools(p, root) || tool_config(p, root) ||
	       generation_config(p, root) ? -1 : 0;
}

/* ---- emitting --------------------------------------------------------- */

static int image_out(struct xemit *e, const struct dt_xpart *x)
{
	struct dt_jbuf *b = &e->b;

	if (x->url && !xe_gemini_file(x->url))
		return xe_fail(e, "Gemini does not fetch image URLs (%s): send the image inline", x->url);
	if (x->url)
		dt_jbuf_lit(b, "{\"fileData\":{");
	else
		dt_jbuf_lit(b, "{\"inlineData\":{");
	if (x->media_type) {
		dt_jbuf_key(b, "mimeType");
		dt_jbuf_str(b, x->media_type);
	}
	dt_jbuf_key(b, x->url ? "fileUri" : "data");
	dt_jbuf_str(b, x->url ? x->url : x->data ? x->data : "");
	dt_jbuf_lit(b, "}}");
	return 0;
}

static int result_out(struct xemit *e, size_t msg, const struct dt_xpart *x)
{
	const char *name = xe_call_name(e->r, msg, x->id);
	const char *text = x->text ? x->text : "";
	struct dt_jbuf *b = &e->b;

	if (!name && !(name = x->name))
		return xe_fail(e, "tool result %s answers no earlier tool call", x->id ? x->id : "");
	dt_jbuf_lit(b, "{\"functionResponse\":{\"name\":");
	dt_jbuf_str(b, name);
	dt_jbuf_key(b, "response");
	if (x->is_error) {
		dt_jbuf_lit(b, "{\"error\":");
		dt_jbuf_str(b, text);
		dt_jbuf_lit(b, "}");
	} else if (dt_json_is_object_text(text, strlen(text))) {
		dt_jbuf_put(b, text, strlen(text));
	} else {
		dt_jbuf_lit(b, "{\"result\":");
		dt_jbuf_str(b, text);
		dt_jbuf_lit(b, "}");
	}
	dt_jbuf_lit(b, "}}");
	return 0;
}

static int part_out(struct xemit *e, size_t msg, const struct dt_xpart *x)
{
	struct dt_jbuf *b = &e->b;
	const char *args;

	dt_jbuf_sep(b);
	switch (x->type) {
	case DT_XPART_TEXT:
		dt_jbuf_lit(b, "{\"text\":");
		dt_jbuf_str(b, x->text);
		dt_jbuf_lit(b, "}");
		return 0;
	case DT_XPART_IMAGE:
		return image_out(e, x);
	case DT_XPART_TOOL_CALL:
		if (xe_arguments(e, x, &args))
			return -1;
		dt_jbuf_lit(b, "{\"functionCall\":{\"name\":");
		dt_jbuf_str(b, x->name ? x->name : "");
		dt_jbuf_key(b, "args");
		dt_jbuf_put(b, args, strlen(args));
		dt_jbuf_lit(b, "},\"thoughtSignature\":\"" SKIP_SIGNATURE "\"}");
		return 0;
	default:
		return result_out(e, msg, x);
	}
}

static int contents_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;
	size_t end;

	dt_jbuf_lit(b, "{\"contents\":[");
	for (size_t i = 0; (end = xe_turn(r, &i)) > i; i = end) {
		dt_jbuf_sep(b);
		dt_jbuf_lit(b, "{\"role\":");
		dt_jbuf_str(b, r->messages[i].role == DT_XROLE_ASSISTANT ? "model" : "user");
		dt_jbuf_lit(b, ",\"parts\":[");
		for (size_t k = i; k < end; k++)
			for (size_t j = 0; j < r->messages[k].n_parts; j++)
				if (part_out(e, k, &r->messages[k].parts[j]))
					return -1;
		dt_jbuf_lit(b, "]}");
	}
	dt_jbuf_lit(b, "]");
	return 0;
}

static void tools_out(struct xemit *e)
{
	static const char *const modes[] = {
		[DT_XTOOL_CHOICE_AUTO] = "AUTO", [DT_XTOOL_CHOICE_NONE] = "NONE",
		[DT_XTOOL_CHOICE_REQUIRED] = "ANY", [DT_XTOOL_CHOICE_NAMED] = "ANY",
	};
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	dt_jbuf_lit(b, ",\"tools\":[{\"functionDeclarations\":[");
	xe_tools(e, "{", "}", "parametersJsonSchema", NULL);
	dt_jbuf_lit(b, "]}]");
	if (r->tool_choice == DT_XTOOL_CHOICE_UNSET)
		return;
	dt_jbuf_lit(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":");
	dt_jbuf_str(b, modes[r->tool_choice]);
	if (r->tool_choice == DT_XTOOL_CHOICE_NAMED) {
		dt_jbuf_key(b, "allowedFunctionNames");
		dt_jbuf_lit(b, "[");
		dt_jbuf_str(b, r->tool_choice_name ? r->tool_choice_name : "");
		dt_jbuf_lit(b, "]");
	}
	dt_jbuf_lit(b, "}}");
}

static void generation_config_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;
	size_t start = b->len;

	dt_jbuf_lit(b, ",\"generationConfig\":{");
	xe_num(b, "temperature", r->has_temperature, r->temperature);
	xe_num(b, "topP", r->has_top_p, r->top_p);
	xe_int(b, "topK", r->has_top_k, r->top_k);
	xe_int(b, "maxOutputTokens", r->max_tokens >= 0, r->max_tokens);
	xe_stop(e, "stopSequences");
	xe_int(b, "candidateCount", r->n != 1, r->n);
	xe_int(b, "seed", r->has_seed, r->seed);
	xe_num(b, "presencePenalty", r->has_presence_penalty, r->presence_penalty);
	xe_num(b, "frequencyPenalty", r->has_frequency_penalty, r->frequency_penalty);
	if (r->format != DT_XFORMAT_TEXT) {
		dt_jbuf_key(b, "responseMimeType");
		dt_jbuf_lit(b, "\"application/json\"");
	}
	if (r->format == DT_XFORMAT_JSON_SCHEMA) {
		dt_jbuf_key(b, "responseJsonSchema");
		dt_jbuf_put(b, r->schema, strlen(r->schema));
	}
	if (b->len > start && b->data[b->len - 1] == '{')
		b->len = start; /* nothing set */
	else
		dt_jbuf_lit(b, "}");
}

int xreq_emit_gemini(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	if (r->has_seed && (r->seed < INT32_MIN || r->seed > INT32_MAX))
		return xe_fail(e, "seed: Gemini takes a 32-bit seed, not %lld", (long long)r->seed);
	if (contents_out(e))
		return -1;
	if (r->system) {
		dt_jbuf_lit(b, ",\"systemInstruction\":{\"parts\":[{\"text\":");
		dt_jbuf_str(b, r->system);
		dt_jbuf_lit(b, "}]}");
	}
	if (r->n_tools)
		tools_out(e);
	generation_config_out(e);
	dt_jbuf_lit(b, "}");
	return 0;
}
