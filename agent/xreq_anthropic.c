// SPDX-License-Identifier: MIT
/* Anthropic Messages requests <-> neutral form; rules in
 * docs/translation.md, "Requests". */
#include <string.h>

#include "xreq_int.h"

/* Anthropic has no JSON mode: the system prompt asks for it. */
#define JSON_INSTRUCTION "Respond with a single JSON object and nothing else: no prose, no code fence."
#define SCHEMA_INSTRUCTION "Respond with a single JSON object that matches this JSON Schema, " \
	"and nothing else: no prose, no code fence.\nSchema: "

/* ---- parsing ---------------------------------------------------------- */

static int image_block(struct xparse *p, struct dt_xpart *x, const struct dt_json *block)
{
	const struct dt_json *src;
	const char *type = NULL;

	if (xp_object(p, block, "source", true, &src))
		return -1;
	xp_push_key(p, "source");
	if (xp_str(p, src, "type", true, &type))
		return -1;
	if (strcmp(type, "base64") == 0) {
		if (xp_str(p, src, "media_type", true, &x->media_type) ||
		    xp_str(p, src, "data", true, &x->data))
			return -1;
	} else if (strcmp(type, "url") == 0) {
		if (xp_str(p, src, "url", true, &x->url))
			return -1;
	} else {
		return xp_fail_at(p, "type", "image source \"%s\" is not supported", type);
	}
	p->depth--;
	return 0;
}

static int tool_result_block(struct xparse *p, struct dt_xpart *x, const struct dt_json *block)
{
	bool is_error = false;

	if (xp_str(p, block, "tool_use_id", true, &x->id) ||
	    xp_bool(p, block, "is_error", &is_error, NULL) ||
	    xp_text(p, block, "content", false, "blocks", &x->text))
		return -1;
	x->is_error = is_error;
	return 0;
}

static int tool_use_block(struct xparse *p, struct dt_xpart *x, const struct dt_json *block)
{
	const struct dt_json *input;

	if (xp_str(p, block, "id", true, &x->id) || xp_str(p, block, "name", true, &x->name) ||
	    xp_object(p, block, "input", true, &input))
		return -1;
	x->arguments = dt_json_text(&p->r->arena, input, 0);
	return x->arguments ? 0 : xp_fail(p, "out of memory");
}

/* One content block; *m is the IR message being filled, replaced by a new
 * one when the block belongs to another role (tool results become a tool
 * message of their own). left: blocks left in the source message. */
static int block(struct xparse *p, struct dt_xmessage **m, const struct dt_json *blk,
		 bool assistant, size_t left)
{
	const char *type = NULL;
	enum dt_xrole role = assistant ? DT_XROLE_ASSISTANT : DT_XROLE_USER;
	enum dt_xpart_type ptype;
	struct dt_xpart *x;

	if (blk->type != DT_JSON_OBJECT)
		return xp_fail(p, "a content block must be an object");
	if (xp_str(p, blk, "type", true, &type))
		return -1;
	if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)
		return assistant ? 0 : xp_fail_at(p, "type", "\"%s\" only in assistant messages", type);
	if (strcmp(type, "text") == 0)
		ptype = DT_XPART_TEXT;
	else if (strcmp(type, "image") == 0 && !assistant)
		ptype = DT_XPART_IMAGE;
	else if (strcmp(type, "tool_use") == 0 && assistant)
		ptype = DT_XPART_TOOL_CALL;
	else if (strcmp(type, "tool_result") == 0 && !assistant)
		ptype = DT_XPART_TOOL_RESULT;
	else
		return xp_fail_at(p, "type", "content block \"%s\" is not supported in %s messages", type,
			       assistant ? "assistant" : "user");
	if (ptype == DT_XPART_TOOL_RESULT)
		role = DT_XROLE_TOOL;
	if (!(x = xp_run_part(p, m, role, left, ptype)))
		return -1;
	switch (ptype) {
	case DT_XPART_TEXT:
		return xp_str(p, blk, "text", true, &x->text);
	case DT_XPART_IMAGE:
		return image_block(p, x, blk);
	case DT_XPART_TOOL_CALL:
		return tool_use_block(p, x, blk);
	default:
		return tool_result_block(p, x, blk);
	}
}

static int message(struct xparse *p, const struct dt_json *msg)
{
	const char *role = NULL;
	const struct dt_json *c;
	struct dt_xmessage *m = NULL;
	bool assistant;
	size_t i = 0;

	if (msg->type != DT_JSON_OBJECT)
		return xp_fail(p, "a message must be an object");
	if (xp_str(p, msg, "role", true, &role))
		return -1;
	if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
		return xp_fail_at(p, "role", "unknown role \"%s\"", role);
	assistant = role[0] == 'a';
	c = dt_json_get(msg, "content");
	if (c && c->type == DT_JSON_STRING) {
		struct dt_xpart *x;

		if (!(m = xp_message(p, assistant ? DT_XROLE_ASSISTANT : DT_XROLE_USER, 1)) ||
		    !(x = xp_part(p, m, DT_XPART_TEXT)))
			return -1;
		return xp_str(p, msg, "content", true, &x->text);
	}
	if (xp_array(p, msg, "content", true, XREQ_MAX_PARTS, &c))
		return -1;
	xp_push_key(p, "content");
	for (const struct dt_json *blk = c->first; blk; blk = blk->next, i++) {
		xp_push_index(p, i);
		if (block(p, &m, blk, assistant, c->len - i))
			return -1;
		p->depth--;
	}
	p->depth--;
	return 0;
}

static int tool(struct xparse *p, struct dt_xtool *t, const struct dt_json *spec)
{
	const char *type = NULL;
	const struct dt_json *schema;

	if (spec->type != DT_JSON_OBJECT)
		return xp_fail(p, "a tool must be an object");
	if (xp_str(p, spec, "type", false, &type))
		return -1;
	if (type && strcmp(type, "custom") != 0)
		return xp_fail_at(p, "type", "server tool \"%s\" cannot be translated", type);
	if (xp_str(p, spec, "name", true, &t->name) ||
	    xp_str(p, spec, "description", false, &t->description) ||
	    xp_object(p, spec, "input_schema", true, &schema))
		return -1;
	t->parameters = dt_json_text(&p->r->arena, schema, 0);
	return t->parameters ? 0 : xp_fail(p, "out of memory");
}

static int tool_choice(struct xparse *p, const struct dt_json *root)
{
	static const struct { const char *name; enum dt_xtool_choice choice; } types[] = {
		{ "auto", DT_XTOOL_CHOICE_AUTO }, { "any", DT_XTOOL_CHOICE_REQUIRED },
		{ "tool", DT_XTOOL_CHOICE_NAMED }, { "none", DT_XTOOL_CHOICE_NONE },
	};
	struct dt_xrequest *r = p->r;
	bool disable = false, has_disable = false;
	const char *type = NULL;
	const struct dt_json *c;

	if (xp_object(p, root, "tool_choice", false, &c))
		return -1;
	if (!c)
		return 0;
	xp_push_key(p, "tool_choice");
	if (xp_str(p, c, "type", true, &type) ||
	    xp_bool(p, c, "disable_parallel_tool_use", &disable, &has_disable))
		return -1;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !r->tool_choice; i++)
		if (strcmp(type, types[i].name) == 0)
			r->tool_choice = types[i].choice;
	if (!r->tool_choice)
		return xp_fail_at(p, "type", "unknown value \"%s\"", type);
	if (r->tool_choice == DT_XTOOL_CHOICE_NAMED && xp_str(p, c, "name", true, &r->tool_choice_name))
		return -1;
	if (has_disable)
		r->parallel_tool_calls = !disable;
	p->depth--;
	return 0;
}

int xreq_parse_anthropic(struct xparse *p, const struct dt_json *root)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *msgs, *meta;
	const char *system = NULL;
	size_t i = 0;

	if (xp_str(p, root, "model", true, &r->model) ||
	    xp_array(p, root, "messages", true, XREQ_MAX_MESSAGES, &msgs))
		return -1;
	if (!dt_json_get(root, "max_tokens"))
		return xp_fail_at(p, "max_tokens", "required, missing");
	if (xp_reserve_runs(p, msgs, "content"))
		return -1;
	xp_push_key(p, "messages");
	for (const struct dt_json *msg = msgs->first; msg; msg = msg->next, i++) {
		xp_push_index(p, i);
		if (message(p, msg))
			return -1;
		p->depth--;
	}
	p->depth--;
	if (dt_json_get(root, "system") && (xp_text(p, root, "system", false, "blocks", &system) ||
				       xp_system(p, system)))
		return -1;
	if (xp_tools(p, root, tool) || tool_choice(p, root) ||
	    xp_int(p, root, "max_tokens", 1, INT32_MAX, NULL, &r->max_tokens) ||
	    xp_num(p, root, "temperature", 0, 1, &r->has_temperature, &r->temperature) ||
	    xp_num(p, root, "top_p", 0, 1, &r->has_top_p, &r->top_p) ||
	    xp_int(p, root, "top_k", 0, INT32_MAX, &r->has_top_k, &r->top_k) ||
	    xp_stop(p, root, "stop_sequences") ||
	    xp_bool(p, root, "stream", &r->stream, NULL) ||
	    xp_object(p, root, "metadata", false, &meta))
		return -1;
	if (meta) {
		xp_push_key(p, "metadata");
		if (xp_str(p, meta, "user_id", false, &r->user))
			return -1;
		p->depth--;
	}
	return 0;
}

/* ---- emitting --------------------------------------------------------- */

/* Anthropic takes ids matching [a-zA-Z0-9_-]+; others' become that by
 * replacing every other byte with '_', the same on both sides of a call. */
static void id_out(struct dt_jbuf *b, const char *id)
{
	dt_jbuf_lit(b, "\"");
	for (const char *c = id ? id : ""; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';

		dt_jbuf_put(b, ok ? c : "_", 1);
	}
	dt_jbuf_lit(b, "\"");
}

static bool supported_media_type(const char *t)
{
	return t && (strcmp(t, "image/jpeg") == 0 || strcmp(t, "image/png") == 0 ||
		     strcmp(t, "image/gif") == 0 || strcmp(t, "image/webp") == 0);
}

static int image_out(struct xemit *e, const struct dt_xpart *x)
{
	struct dt_jbuf *b = &e->b;

	if (x->url && xe_gemini_file(x->url))
		return xe_fail(e, "image %s is a Gemini file: only Gemini can read it", x->url);
	if (x->url) {
		dt_jbuf_lit(b, "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
		dt_jbuf_str(b, x->url);
	} else {
		if (!supported_media_type(x->media_type))
			return xe_fail(e, "Anthropic does not take images of type %s",
				       x->media_type ? x->media_type : "(none)");
		dt_jbuf_lit(b, "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":");
		dt_jbuf_str(b, x->media_type);
		dt_jbuf_key(b, "data");
		dt_jbuf_str(b, x->data ? x->data : "");
	}
	dt_jbuf_lit(b, "}}");
	return 0;
}

static int part_out(struct xemit *e, const struct dt_xpart *x, bool assistant)
{
	struct dt_jbuf *b = &e->b;
	const char *args;

	if (x->type == DT_XPART_TEXT && !x->text[0])
		return 0; /* Anthropic refuses empty text blocks */
	dt_jbuf_sep(b);
	switch (x->type) {
	case DT_XPART_TEXT:
		dt_jbuf_lit(b, "{\"type\":\"text\",\"text\":");
		dt_jbuf_str(b, x->text);
		break;
	case DT_XPART_IMAGE:
		if (assistant)
			return xe_fail(e, "Anthropic assistant messages cannot hold images");
		return image_out(e, x);
	case DT_XPART_TOOL_CALL:
		if (xe_arguments(e, x, &args))
			return -1;
		dt_jbuf_lit(b, "{\"type\":\"tool_use\",\"id\":");
		id_out(b, x->id);
		dt_jbuf_key(b, "name");
		dt_jbuf_str(b, x->name ? x->name : "");
		dt_jbuf_key(b, "input");
		dt_jbuf_put(b, args, strlen(args));
		break;
	case DT_XPART_TOOL_RESULT:
		dt_jbuf_lit(b, "{\"type\":\"tool_result\",\"tool_use_id\":");
		id_out(b, x->id);
		if (x->text && x->text[0]) {
			dt_jbuf_key(b, "content");
			dt_jbuf_str(b, x->text);
		}
		if (x->is_error)
			dt_jbuf_lit(b, ",\"is_error\":true");
		break;
	}
	dt_jbuf_lit(b, "}");
	return 0;
}

static int messages_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;
	size_t end;

	dt_jbuf_key(b, "messages");
	dt_jbuf_lit(b, "[");
	for (size_t i = 0; (end = xe_turn(r, &i)) > i; i = end) {
		bool assistant = r->messages[i].role == DT_XROLE_ASSISTANT;
		size_t start = b->len;

		dt_jbuf_sep(b);
		dt_jbuf_lit(b, "{\"role\":");
		dt_jbuf_str(b, assistant ? "assistant" : "user");
		dt_jbuf_lit(b, ",\"content\":[");
		for (size_t k = i; k < end; k++)
			for (size_t j = 0; j < r->messages[k].n_parts; j++)
				if (part_out(e, &r->messages[k].parts[j], assistant))
					return -1;
		if (b->data[b->len - 1] == '[')
			b->len = start; /* nothing to send in this turn */
		else
			dt_jbuf_lit(b, "]}");
	}
	dt_jbuf_lit(b, "]");
	return 0;
}

static void system_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	if (!r->system && r->format == DT_XFORMAT_TEXT)
		return;
	dt_jbuf_key(b, "system");
	dt_jbuf_lit(b, "\"");
	if (r->system)
		dt_jbuf_esc(b, r->system);
	if (r->system && r->format != DT_XFORMAT_TEXT)
		dt_jbuf_lit(b, "\\n\\n");
	if (r->format == DT_XFORMAT_JSON) {
		dt_jbuf_esc(b, JSON_INSTRUCTION);
	} else if (r->format == DT_XFORMAT_JSON_SCHEMA) {
		dt_jbuf_esc(b, SCHEMA_INSTRUCTION);
		dt_jbuf_esc(b, r->schema);
	}
	dt_jbuf_lit(b, "\"");
}

static void tools_out(struct xemit *e)
{
	static const char *const choices[] = {
		[DT_XTOOL_CHOICE_AUTO] = "auto", [DT_XTOOL_CHOICE_NONE] = "none",
		[DT_XTOOL_CHOICE_REQUIRED] = "any", [DT_XTOOL_CHOICE_NAMED] = "tool",
	};
	const struct dt_xrequest *r = e->r;
	enum dt_xtool_choice choice = r->tool_choice;
	struct dt_jbuf *b = &e->b;

	dt_jbuf_key(b, "tools");
	dt_jbuf_lit(b, "[");
	/* Anthropic requires a schema */
	xe_tools(e, "{", "}", "input_schema", "{\"type\":\"object\",\"properties\":{}}");
	dt_jbuf_lit(b, "]");
	/* parallel use is switched off inside tool_choice */
	if (choice == DT_XTOOL_CHOICE_UNSET && r->parallel_tool_calls == 0)
		choice = DT_XTOOL_CHOICE_AUTO;
	if (choice == DT_XTOOL_CHOICE_UNSET)
		return;
	dt_jbuf_key(b, "tool_choice");
	dt_jbuf_lit(b, "{\"type\":");
	dt_jbuf_str(b, choices[choice]);
	if (choice == DT_XTOOL_CHOICE_NAMED) {
		dt_jbuf_key(b, "name");
		dt_jbuf_str(b, r->tool_choice_name ? r->tool_choice_name : "");
	}
	if (r->parallel_tool_calls == 0 && choice != DT_XTOOL_CHOICE_NONE)
		dt_jbuf_lit(b, ",\"disable_parallel_tool_use\":true");
	dt_jbuf_lit(b, "}");
}

static void options_out(struct xemit *e)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	/* Anthropic's range is 0..1: hotter asks get its hottest */
	xe_num(b, "temperature", r->has_temperature, r->temperature > 1 ? 1 : r->temperature);
	/* recent models refuse both: temperature wins */
	xe_num(b, "top_p", r->has_top_p && !r->has_temperature, r->top_p);
	xe_int(b, "top_k", r->has_top_k, r->top_k);
	xe_stop(e, "stop_sequences");
	if (r->user) {
		dt_jbuf_lit(b, ",\"metadata\":{\"user_id\":");
		dt_jbuf_str(b, r->user);
		dt_jbuf_lit(b, "}");
	}
	if (r->stream)
		dt_jbuf_lit(b, ",\"stream\":true");
}

int xreq_emit_anthropic(struct xemit *e, const char *model)
{
	const struct dt_xrequest *r = e->r;
	struct dt_jbuf *b = &e->b;

	if (r->n > 1)
		return xe_fail(e, "n: Anthropic answers with one candidate only, %lld were asked",
			       (long long)r->n);
	dt_jbuf_lit(b, "{\"model\":");
	dt_jbuf_str(b, model ? model : r->model ? r->model : "");
	dt_jbuf_key(b, "max_tokens");
	dt_jbuf_int(b, r->max_tokens >= 0 ? r->max_tokens : XREQ_ANTHROPIC_DEFAULT_MAX_TOKENS);
	system_out(e);
	if (messages_out(e))
		return -1;
	if (r->n_tools)
		tools_out(e);
	options_out(e);
	dt_jbuf_lit(b, "}");
	return 0;
}
