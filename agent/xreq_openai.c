// SPDX-License-Identifier: MIT
/* OpenAI Chat Completions requests <-> neutral form; rules in
 * docs/translation.md, "Requests". */
#include <stdio.h>
#include <string.h>

#include "xreq_int.h"

/* ---- parsing ---------------------------------------------------------- */

/* The function object of {"type": "function", "function": {...}} (the type
 * implied when not type_required), with "function" pushed on the path;
 * what, before the type, names the thing when it is another type. */
static int function_of(struct xparse *p, const struct dt_json *obj, bool type_required,
		       const char *what, const struct dt_json **fn)
{
	const char *type = "function";

	if (xp_str(p, obj, "type", type_required, &type))
		return -1;
	if (strcmp(type, "function") != 0)
		return xp_fail_at(p, "type", "%s\"%s\" is not supported", what, type);
	if (xp_object(p, obj, "function", true, fn))
		return -1;
	xp_push_key(p, "function");
	return 0;
}

/* One part of a user or assistant content array. */
static int content_part(struct xparse *p, struct dt_xmessage *m, const struct dt_json *part,
			bool assistant)
{
	const char *type = NULL, *url = NULL;
	const struct dt_json *image;
	struct dt_xpart *x;

	if (xp_str(p, part, "type", true, &type))
		return -1;
	if (strcmp(type, "text") == 0 || (assistant && strcmp(type, "refusal") == 0)) {
		if (!(x = xp_part(p, m, DT_XPART_TEXT)))
			return -1;
		return xp_str(p, part, type, true, &x->text);
	}
	if (strcmp(type, "image_url") != 0 || assistant)
		return xp_fail_at(p, "type", "content part \"%s\" is not supported%s", type,
			       assistant ? " in assistant messages" : "");
	if (xp_object(p, part, "image_url", true, &image) || !(x = xp_part(p, m, DT_XPART_IMAGE)))
		return -1;
	xp_push_key(p, "image_url");
	if (xp_str(p, image, "url", true, &url))
		return -1;
	xp_push_key(p, "url");
	if (xp_image_url(p, x, url))
		return -1;
	p->depth -= 2;
	return 0;
}

static int content_parts(struct xparse *p, struct dt_xmessage *m, const struct dt_json *msg,
			 bool assistant)
{
	const struct dt_json *c = dt_json_get(msg, "content");
	size_t i = 0;

	if (!c || c->type == DT_JSON_NULL)
		return 0;
	if (c->type == DT_JSON_STRING) {
		struct dt_xpart *x = xp_part(p, m, DT_XPART_TEXT);

		return x ? xp_str(p, msg, "content", true, &x->text) : -1;
	}
	if (xp_array(p, msg, "content", true, XREQ_MAX_PARTS, &c))
		return -1;
	xp_push_key(p, "content");
	for (const struct dt_json *part = c->first; part; part = part->next, i++) {
		xp_push_index(p, i);
		if (content_part(p, m, part, assistant))
			return -1;
		p->depth--;
	}
	p->depth--;
	return 0;
}

static int tool_call(struct xparse *p, struct dt_xmessage *m, const struct dt_json *call)
{
	struct dt_xpart *x = xp_part(p, m, DT_XPART_TOOL_CALL);
	const struct dt_json *fn;

	if (!x || xp_str(p, call, "id", true, &x->id) ||
	    function_of(p, call, false, "tool call ", &fn) ||
	    xp_str(p, fn, "name", true, &x->name) || xp_str(p, fn, "arguments", false, &x->arguments))
		return -1;
	p->depth--;
	return 0;
}

static int assistant_message(struct xparse *p, const struct dt_json *msg)
{
	const struct dt_json *c = dt_json_get(msg, "content"), *calls;
	size_t n = c && c->type == DT_JSON_ARRAY ? c->len : 1, i = 0;
	struct dt_xmessage *m;

	if (xp_array(p, msg, "tool_calls", false, XREQ_MAX_TOOL_CALLS, &calls) ||
	    !(m = xp_message(p, DT_XROLE_ASSISTANT, n + (calls ? calls->len : 0))) ||
	    content_parts(p, m, msg, true))
		return -1;
	if (!calls)
		return 0;
	xp_push_key(p, "tool_calls");
	for (const struct dt_json *call = calls->first; call; call = call->next, i++) {
		xp_push_index(p, i);
		if (tool_call(p, m, call))
			return -1;
		p->depth--;
	}
	p->depth--;
	return 0;
}

static int message(struct xparse *p, const struct dt_json *msg)
{
	const char *role = NULL, *text = NULL;
	const struct dt_json *c = dt_json_get(msg, "content");
	struct dt_xmessage *m;
	struct dt_xpart *x;

	if (msg->type != DT_JSON_OBJECT)
		return xp_fail(p, "a message must be an object");
	if (xp_str(p, msg, "role", true, &role))
		return -1;
	if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
		return xp_text(p, msg, "content", true, "parts", &text) || xp_system(p, text);
	if (strcmp(role, "assistant") == 0)
		return assistant_message(p, msg);
	if (strcmp(role, "user") == 0) {
		if (!c || c->type == DT_JSON_NULL)
			return xp_fail_at(p, "content", "required, missing");
		m = xp_message(p, DT_XROLE_USER, c->type == DT_JSON_ARRAY ? c->len : 1);
		return m ? content_parts(p, m, msg, false) : -1;
	}
	if (strcmp(role, "tool") == 0) {
		if (!(m = xp_message(p, DT_XROLE_TOOL, 1)) || !(x = xp_part(p, m, DT_XPART_TOOL_RESULT)))
			return -1;
		return xp_str(p, msg, "tool_call_id", true, &x->id) ||
		       xp_text(p, msg, "content", true, "parts", &x->text);
	}
	return xp_fail_at(p, "role", "unknown role \"%s\"", role);
}

static int tool(struct xparse *p, struct dt_xtool *t, const struct dt_json *spec)
{
	const struct dt_json *fn, *params;

	if (function_of(p, spec, true, "tool type ", &fn) ||
	    xp_str(p, fn, "name", true, &t->name) ||
	    xp_str(p, fn, "description", false, &t->description) ||
	    xp_object(p, fn, "parameters", false, &params))
		return -1;
	if (params && !(t->parameters = dt_json_text(&p->r->arena, params, 0)))
		return xp_fail(p, "out of memory");
	p->depth--;
	return 0;
}

static int tool_choice(struct xparse *p, const struct dt_json *root)
{
	const struct dt_json *c = dt_json_get(root, "tool_choice"), *fn;
	struct dt_xrequest *r = p->r;
	const char *mode = NULL;

	if (!c || c->type == DT_JSON_NULL)
		return 0;
	xp_push_key(p, "tool_choice");
	if (c->type == DT_JSON_STRING) {
		mode = dt_json_cstr(&r->arena, c);
		if (mode && strcmp(mode, "auto") == 0)
			r->tool_choice = DT_XTOOL_CHOICE_AUTO;
		else if (mode && strcmp(mode, "none") == 0)
			r->tool_choice = DT_XTOOL_CHOICE_NONE;
		else if (mode && strcmp(mode, "required") == 0)
			r->tool_choice = DT_XTOOL_CHOICE_REQUIRED;
		else
			return xp_fail(p, "unknown value \"%s\"", mode ? mode : "");
	} else if (c->type == DT_JSON_OBJECT) {
		if (function_of(p, c, true, "", &fn) ||
		    xp_str(p, fn, "name", true, &r->tool_choice_name))
			return -1;
		p->depth--;
		r->tool_choice = DT_XTOOL_CHOICE_NAMED;
	} else {
		return xp_fail(p, "must be a string or an object");
	}
	p->depth--;
	return 0;
}

static int response_format(struct xparse *p, const struct dt_json *root)
{
	const struct dt_json *f, *js, *schema;
	struct dt_xrequest *r = p->r;
	const char *type = NULL;

	if (xp_object(p, root, "response_format", false, &f))
		return -1;
	if (!f)
		return 0;
	xp_push_key(p, "response_format");
	if (xp_str(p, f, "type", true, &type))
		return -1;
	if (strcmp(type, "json_object") == 0) {
		r->format = DT_XFORMAT_JSON;
	} else if (strcmp(type, "json_schema") == 0) {
		if (xp_object(p, f, "json_schema", true, &js))
			return -1;
		xp_push_key(p, "json_schema");
		if (xp_str(p, js, "name", false, &r->schema_name) ||
		    xp_object(p, js, "schema", false, &schema))
			return -1;
		r->format = schema ? DT_XFORMAT_JSON_SCHEMA : DT_XFORMAT_JSON;
		if (schema && !(r->schema = dt_json_text(&r->arena, schema, 0)))
			return xp_fail(p, "out of memory");
		p->depth--;
	} else if (strcmp(type, "text") != 0) {
		return xp_fail_at(p, "type", "unknown format \"%s\"", type);
	}
	p->depth--;
	return 0;
}

static int sampling(struct xparse *p, const struct dt_json *root)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *so;

	return xp_int(p, root, "max_tokens", 1, INT32_MAX, NULL, &r->max_tokens) ||
	       /* the newer name wins when a client sends both */
	       xp_int(p, root, "max_completion_tokens", 1, INT32_MAX, NULL, &r->max_tokens) ||
	       xp_num(p, root, "temperature", 0, 2, &r->has_temperature, &r->temperature) ||
	       xp_num(p, root, "top_p", 0, 1, &r->has_top_p, &r->top_p) ||
	       xp_num(p, root, "presence_penalty", -2, 2, &r->has_presence_penalty,
		      &r->presence_penalty) ||
	       xp_num(p, root, "frequency_penalty", -2, 2, &r->has_frequency_penalty,
		      &r->frequency_penalty) ||
	       xp_int(p, root, "seed", INT64_MIN, INT64_MAX, &r->has_seed, &r->seed) ||
	       xp_int(p, root, "n", 1, 128, NULL, &r->n) ||
	       xp_stop(p, root, "stop") ||
	       xp_str(p, root, "user", false, &r->user) ||
	       xp_bool(p, root, "stream", &r->stream, NULL) ||
	       xp_object(p, root, "stream_options", false, &so) ||
	       (so && xp_bool(p, so, "include_usage", &r->stream_usage, NULL));
}

int xreq_parse_openai(struct xparse *p, const struct dt_json *root)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *msgs;
	bool parallel = false, has_parallel = false;
	size_t i = 0;

	if (xp_str(p, root, "model", true, &r->model) ||
	    xp_array(p, root, "messages", true, XREQ_MAX_MESSAGES, &msgs) ||
	    xp_reserve_messages(p, msgs->len))
		return -1;
	xp_push_key(p, "messages");
	for (const struct dt_json *msg = msgs->first; msg; msg = msg->next, i++) {
		xp_push_index(p, i);
		if (message(p, msg))
			return -1;
		p->depth--;
	}
	p->depth--;
	if (xp_tools(p, root, tool) ||
	    xp_bool(p, root, "parallel_tool_calls", &parallel, &has_parallel))
		return -1;
	if (has_parallel)
		r->parallel_tool_calls = parallel;
	return tool_choice(p, root) || response_format(p, root) || sampling(p, root) ? -1 : 0;
}

/* ---- emitting --------------------------------------------------------- */

static int image(struct xemit *e, const struct dt_xpart *x)
{
	struct dt_jbuf *b = &e->b;

	dt_jbuf_sep(b);
	dt_jbuf_lit(b, "{\"type\":\"image_url\",\"image_url\":{\"url\":");
	if (x->url) {
		if (xe_gemini_file(x->url))
			return xe_fail(e, "image %s is a Gemini file: only Gemini can read it", x->url);
		dt_jbuf_str(b, x->url);
	} else {
		dt_jbuf_lit(b, "\"data:");
		dt_jbuf_esc(b, x->media_type ? x->media_type : "");
		dt_jbuf_lit(b, ";base64,");
		dt_jbuf_esc(b, x->data ? x->data : "");
		dt_jbuf_lit(b, "\"");
	}
	dt_jbuf_lit(b, "}}");
	return 0;
}

static size_t count_parts(const struct dt_xmessage *m, enum dt_xpart_type type)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_parts; i++)
		n += m->parts[i].type == type;
	return n;
}

/* Texts (and, for users, images) as the content: a string when it is one
 * text, else an array of parts; null when there is none. */
static int content(struct xemit *e, const struct dt_xmessage *m)
{
	size_t texts = count_parts(m, DT_XPART_TEXT), images = count_parts(m, DT_XPART_IMAGE);
	struct dt_jbuf *b = &e->b;

	dt_jbuf_key(b, "content");
	if (texts + images == 0 && m->role == DT_XROLE_ASSISTANT) {
		dt_jbuf_lit(b, "null");
		return 0;
	}
	if (texts + images == 0) {
		dt_jbuf_str(b, "");
		return 0;
	}
	if (images && m->role == DT_XROLE_ASSISTANT)
		return xe_fail(e, "OpenAI assistant messages cannot hold images");
	if (texts == 1 && !images) {
		for (size_t i = 0; i < m->n_parts; i++)
			if (m->parts[i].type == DT_XPART_TEXT)
				dt_jbuf_str(b, m->parts[i].text);
		return 0;
	}
	dt_jbuf_lit(b, "[");
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct dt_xpart *x = &m->parts[i];

		if (x->type == DT_XPART_IMAGE && image(e, x))
			return -1;
		if (x->type != DT_XPART_TEXT)
			continue;
		dt_jbuf_sep(b);
		dt_jbuf_lit(b, "{\"type\":\"text\",\"text\":");
		dt_jbuf_str(b, x->text);
		dt_jbuf_lit(b, "}");
	}
	dt_jbuf_lit(b, "]");
	return 0;
}

static void tool_calls(struct xemit *e, const struct dt_xmessage *m)
{
	struct dt_jbuf *b = &e->b;

	if (!count_parts(m, DT_XPART_TOOL_CALL))
		return;
	dt_jbuf_key(b, "tool_calls");
	dt_jbuf_lit(b, "[");
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct dt_xpart *x = &m->parts[i];

		if (x->type != DT_XPART_TOOL_CALL)
			continue;
		dt_jbuf_sep(b);
		dt_jbuf_lit(b, "{\"id\":");
		dt_jbuf_str(b, x->id ? x->id : "");
		dt_jbuf_lit(b, ",\"type\":\"function\",\"function\":{\"name\":");
		dt_jbuf_str(b, x->name ? x->name : "");
		dt_jbuf_lit(b, ",\"arguments\":");
		dt_jbuf_str(b, x->arguments ? x->arguments : "{}");
		dt_jbuf_lit(b, "}}");
	}
	dt_jbuf_lit(b, "]");
}

static int message_out(struct xemit *e, const struct dt_xmessage *m)
{
	struct dt_jbuf *b = &e->b;

	if (m->role == DT_XROLE_TOOL) {
		for (size_t i = 0; i < m->n_parts; i++) {
			const struct dt_xpart *x = &m->parts[i];

			if (x->type != DT_XPART_TOOL_RESULT)
				return xe_fail(e, "a tool message holds only tool results");
			dt_jbuf_sep(b);
			dt_jbuf_lit(b, "{\"role\":\"tool\",\"tool_call_id\":");
			dt_jbuf_str(b, x->id ? x->id : "");
			dt_jbuf_key(b, "content");
			dt_jbuf_str(b, x->text ? x->text : "");
			dt_jbuf_lit(b, "}");
		}
		return 0;
	}
	dt_jbuf_sep(b);
	dt_jbuf_lit(b, "{\"role\":");
	dt_jbuf_str(b, m->role == DT_XROLE_ASSISTANT ? "assistant" : "user");
	if (content(e, m))
		return -1;
	tool_calls(e, m);
	dt_jbuf_lit(b, "}");
	return 0;
}

static void tools_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	dt_jbuf_key(b, "tools");
	dt_jbuf_lit(b, "[");
	xe_tools(e, "{\"type\":\"function\",\"function\":{", "}}", "parameters", NULL);
	dt_jbuf_lit(b, "]");
	switch (r->tool_choice) {
	case DT_XTOOL_CHOICE_UNSET:
		break;
	case DT_XTOOL_CHOICE_AUTO:
		dt_jbuf_key(b, "tool_choice");
		dt_jbuf_lit(b, "\"auto\"");
		break;
	case DT_XTOOL_CHOICE_NONE:
		dt_jbuf_key(b, "tool_choice");
		dt_jbuf_lit(b, "\"none\"");
		break;
	case DT_XTOOL_CHOICE_REQUIRED:
		dt_jbuf_key(b, "tool_choice");
		dt_jbuf_lit(b, "\"required\"");
		break;
	case DT_XTOOL_CHOICE_NAMED:
		dt_jbuf_key(b, "tool_choice");
		dt_jbuf_lit(b, "{\"type\":\"function\",\"function\":{\"name\":");
		dt_jbuf_str(b, r->tool_choice_name ? r->tool_choice_name : "");
		dt_jbuf_lit(b, "}}");
		break;
	}
	if (r->parallel_tool_calls >= 0) {
		dt_jbuf_key(b, "parallel_tool_calls");
		dt_jbuf_bool(b, r->parallel_tool_calls);
	}
}

static void options_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	xe_int(b, "max_completion_tokens", r->max_tokens >= 0, r->max_tokens);
	xe_num(b, "temperature", r->has_temperature, r->temperature);
	xe_num(b, "top_p", r->has_top_p, r->top_p);
	xe_stop(e, "stop");
	xe_num(b, "presence_penalty", r->has_presence_penalty, r->presence_penalty);
	xe_num(b, "frequency_penalty", r->has_frequency_penalty, r->frequency_penalty);
	xe_int(b, "seed", r->has_seed, r->seed);
	xe_int(b, "n", r->n != 1, r->n);
	if (r->user) {
		dt_jbuf_key(b, "user");
		dt_jbuf_str(b, r->user);
	}
	if (r->format == DT_XFORMAT_JSON) {
		dt_jbuf_key(b, "response_format");
		dt_jbuf_lit(b, "{\"type\":\"json_object\"}");
	} else if (r->format == DT_XFORMAT_JSON_SCHEMA) {
		dt_jbuf_key(b, "response_format");
		dt_jbuf_lit(b, "{\"type\":\"json_schema\",\"json_schema\":{\"name\":");
		dt_jbuf_str(b, r->schema_name ? r->schema_name : "response");
		dt_jbuf_key(b, "schema");
		dt_jbuf_put(b, r->schema, strlen(r->schema));
		dt_jbuf_lit(b, "}}");
	}
	/* always ask for the usage chunk: the answer's translator drops it when
	 * the client did not ask */
	if (r->stream)
		dt_jbuf_lit(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
}

int xreq_emit_openai(struct xemit *e, const char *model)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	dt_jbuf_lit(b, "{\"model\":");
	dt_jbuf_str(b, model ? model : r->model ? r->model : "");
	dt_jbuf_key(b, "messages");
	dt_jbuf_lit(b, "[");
	if (r->system) {
		dt_jbuf_lit(b, "{\"role\":\"system\",\"content\":");
		dt_jbuf_str(b, r->system);
		dt_jbuf_lit(b, "}");
	}
	for (size_t i = 0; i < r->n_messages; i++)
		if (r->messages[i].n_parts && message_out(e, &r->messages[i]))
			return -1;
	dt_jbuf_lit(b, "]");
	if (r->n_tools)
		tools_out(e);
	options_out(e);
	dt_jbuf_lit(b, "}");
	return 0;
}

/* ---- the usage chunk of a relayed stream --------------------------------- */

/* obj's only member named key; NULL when none, *twice when more. */
static const struct dt_json *only_member(const struct dt_json *obj, const char *key, bool *twice)
{
	const struct dt_json *found = NULL;
	size_t n = strlen(key);

	for (const struct dt_json *m = obj->first; m; m = m->next) {
		if (m->key_len != n || memcmp(m->key, key, n) != 0)
			continue;
		*twice |= found != NULL;
		found = m;
	}
	return found;
}

/* The last member of a non-empty object. */
static const struct dt_json *last_member(const struct dt_json *obj)
{
	const struct dt_json *m = obj->first;

	while (m->next)
		m = m->next;
	return m;
}

/* src with [from, to) replaced by text. */
static char *splice(const char *src, size_t len, size_t from, size_t to, const char *text,
		    size_t *out_len)
{
	struct dt_jbuf b = {0};

	dt_jbuf_put(&b, src, from);
	dt_jbuf_put(&b, text, strlen(text));
	dt_jbuf_put(&b, src + to, len - to);
	return dt_jbuf_finish(&b, out_len);
}

/* A new member goes after obj's last one, or fills it when empty. */
static char *add_member(const char *src, size_t len, const struct dt_json *obj,
			const char *member, size_t *out_len)
{
	char text[64];
	const struct dt_json *last;

	if (!obj->first) {
		snprintf(text, sizeof(text), "{%s}", member);
		return splice(src, len, obj->offset, obj->offset + obj->length, text, out_len);
	}
	last = last_member(obj);
	snprintf(text, sizeof(text), ",%s", member);
	return splice(src, len, last->offset + last->length, last->offset + last->length, text,
		      out_len);
}

char *dt_xreq_ask_stream_usage(const char *src, size_t len, const struct dt_json *root,
			       size_t *out_len)
{
	const struct dt_json *so, *iu = NULL;
	bool twice = false;

	if (!root || root->type != DT_JSON_OBJECT || root->offset + root->length > len)
		return NULL;
	so = only_member(root, "stream_options", &twice);
	if (so && so->type == DT_JSON_OBJECT)
		iu = only_member(so, "include_usage", &twice);
	if (twice || (iu && iu->type == DT_JSON_BOOL && iu->boolean))
		return NULL;
	if (!so)
		return add_member(src, len, root, "\"stream_options\":{\"include_usage\":true}", out_len);
	if (so->type == DT_JSON_NULL)
		return splice(src, len, so->offset, so->offset + so->length,
			      "{\"include_usage\":true}", out_len);
	if (so->type != DT_JSON_OBJECT)
		return NULL;
	if (iu)
		return splice(src, len, iu->offset, iu->offset + iu->length, "true", out_len);
	return add_member(src, len, so, "\"include_usage\":true", out_len);
}
