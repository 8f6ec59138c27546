// SPDX-License-Identifier: MIT
/* Requests in neutral form: dispatch to the family parsers and emitters,
 * and what they share (error paths, typed members, IR building, turns, tool
 * call look-ups). Rules: docs/translation.md, "Requests". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xreq_int.h"

/* ---- errors and paths --------------------------------------------------- */

static size_t path_text(const struct xparse *p, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->depth && n < size; i++) {
		const struct xpath_seg *s = &p->path[i];
		/* a "camel|snake" key shows its first name */
		int w = s->key ? snprintf(out + n, size - n, "%s%.*s", n ? "." : "",
					  (int)strcspn(s->key, "|"), s->key)
			       : snprintf(out + n, size - n, "[%zu]", s->index);

		n += w > 0 ? (size_t)w : 0;
	}
	return n < size ? n : size - 1;
}

static int vfail(struct xparse *p, const char *fmt, va_list ap)
{
	char path[256];
	size_t n = path_text(p, path, sizeof(path));
	int w = snprintf(p->err, p->errlen, "%s%s", path, n ? ": " : "");

	if (w >= 0 && (size_t)w < p->errlen)
		vsnprintf(p->err + w, p->errlen - (size_t)w, fmt, ap);
	return -1;
}

int xp_fail(struct xparse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, fmt, ap);
	va_end(ap);
	return -1;
}

int xp_fail_at(struct xparse *p, const char *key, const char *fmt, ...)
{
	va_list ap;

	xp_push_key(p, key);
	va_start(ap, fmt);
	vfail(p, fmt, ap);
	va_end(ap);
	p->depth--;
	return -1;
}

/* Past the last segment the path has room for, pushes only count: the
 * message then names the deepest place it can. */
void xp_push_key(struct xparse *p, const char *key)
{
	if (p->depth < sizeof(p->path) / sizeof(p->path[0]))
		p->path[p->depth] = (struct xpath_seg){ .key = key };
	p->depth++;
}

void xp_push_index(struct xparse *p, size_t index)
{
	if (p->depth < sizeof(p->path) / sizeof(p->path[0]))
		p->path[p->depth] = (struct xpath_seg){ .index = index };
	p->depth++;
}

static const char *const type_names[] = {
	[DT_JSON_NULL] = "null", [DT_JSON_BOOL] = "a boolean", [DT_JSON_NUMBER] = "a number",
	[DT_JSON_STRING] = "a string", [DT_JSON_ARRAY] = "an array", [DT_JSON_OBJECT] = "an object",
};

/* Member key of obj when it has the type; NULL when absent (or null, which
 * clients send for "not given"); -1 with an error when it has another type
 * or is required and absent. */
static int member(struct xparse *p, const struct dt_json *obj, const char *key,
		  enum dt_json_type type, bool required, const struct dt_json **out)
{
	const struct dt_json *v = dt_json_get(obj, key);

	*out = NULL;
	if (v && v->type == type) {
		*out = v;
		return 0;
	}
	if (v && v->type != DT_JSON_NULL)
		return xp_fail_at(p, key, "must be %s, not %s", type_names[type], type_names[v->type]);
	return required ? xp_fail_at(p, key, "required, missing") : 0;
}

int xp_str(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	   const char **out)
{
	const struct dt_json *v;

	if (member(p, obj, key, DT_JSON_STRING, required, &v))
		return -1;
	if (v && !(*out = dt_json_cstr(&p->r->arena, v)))
		return xp_fail(p, "out of memory");
	return 0;
}

int xp_int(struct xparse *p, const struct dt_json *obj, const char *key, int64_t min, int64_t max,
	   bool *has, int64_t *out)
{
	const struct dt_json *v;

	if (member(p, obj, key, DT_JSON_NUMBER, false, &v))
		return -1;
	if (!v)
		return 0;
	if (!v->is_integer)
		return xp_fail_at(p, key, "must be an integer");
	if (v->integer < min || v->integer > max)
		return xp_fail_at(p, key, "%lld is out of range [%lld, %lld]", (long long)v->integer,
				  (long long)min, (long long)max);
	*out = v->integer;
	if (has)
		*has = true;
	return 0;
}

int xp_num(struct xparse *p, const struct dt_json *obj, const char *key, double min, double max,
	   bool *has, double *out)
{
	const struct dt_json *v;

	if (member(p, obj, key, DT_JSON_NUMBER, false, &v))
		return -1;
	if (!v)
		return 0;
	if (v->number < min || v->number > max)
		return xp_fail_at(p, key, "%g is out of range [%g, %g]", v->number, min, max);
	*has = true;
	*out = v->number;
	return 0;
}

int xp_bool(struct xparse *p, const struct dt_json *obj, const char *key, bool *out, bool *has)
{
	const struct dt_json *v;

	if (member(p, obj, key, DT_JSON_BOOL, false, &v))
		return -1;
	if (v)
		*out = v->boolean;
	if (v && has)
		*has = true;
	return 0;
}

int xp_array(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	     size_t max, const struct dt_json **out)
{
	if (member(p, obj, key, DT_JSON_ARRAY, required, out))
		return -1;
	if (*out && (*out)->len > max)
		return xp_fail_at(p, key, "%zu items, at most %zu accepted", (*out)->len, max);
	return 0;
}

int xp_object(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	      const struct dt_json **out)
{
	return member(p, obj, key, DT_JSON_OBJECT, required, out);
}

int xp_text(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	    const char *noun, const char **out)
{
	const struct dt_json *v = dt_json_get(obj, key);
	size_t i = 0;

	*out = NULL;
	if (!v || v->type == DT_JSON_NULL || v->type == DT_JSON_STRING) {
		if (xp_str(p, obj, key, required, out))
			return -1;
		if (!*out)
			*out = "";
		return 0;
	}
	if (xp_array(p, obj, key, required, XREQ_MAX_PARTS, &v))
		return -1;
	xp_push_key(p, key);
	for (const struct dt_json *part = v->first; part; part = part->next, i++) {
		const char *type = NULL, *text = NULL;

		xp_push_index(p, i);
		if (xp_str(p, part, "type", true, &type))
			return -1;
		if (strcmp(type, "text") != 0)
			return xp_fail_at(p, "type", "only text %s are accepted here, not \"%s\"", noun,
					  type);
		if (xp_str(p, part, "text", true, &text) || !(*out = xp_join(p, *out, text)))
			return -1;
		p->depth--;
	}
	p->depth--;
	if (!*out)
		*out = "";
	return 0;
}

int xp_tools(struct xparse *p, const struct dt_json *root, xp_tool_fn tool)
{
	struct dt_xrequest *r = p->r;
	const struct dt_json *list;

	if (xp_array(p, root, "tools", false, XREQ_MAX_TOOLS, &list))
		return -1;
	if (!list)
		return 0;
	r->tools = dt_arena_alloc(&r->arena, (list->len ? list->len : 1) * sizeof(*r->tools));
	if (!r->tools)
		return xp_fail(p, "out of memory");
	xp_push_key(p, "tools");
	for (const struct dt_json *t = list->first; t; t = t->next, r->n_tools++) {
		xp_push_index(p, r->n_tools);
		if (tool(p, &r->tools[r->n_tools], t))
			return -1;
		p->depth--;
	}
	p->depth--;
	return 0;
}

int xp_stop(struct xparse *p, const struct dt_json *obj, const char *key)
{
	const struct dt_json *v = dt_json_get(obj, key);
	struct dt_xrequest *r = p->r;
	size_t depth = p->depth, i = 0;

	if (!v || v->type == DT_JSON_NULL)
		return 0;
	if (v->type == DT_JSON_STRING) {
		r->stop = dt_arena_alloc(&r->arena, sizeof(*r->stop));
		if (!r->stop || !(r->stop[0] = dt_json_cstr(&r->arena, v)))
			return xp_fail(p, "out of memory");
		r->n_stop = 1;
		return 0;
	}
	if (xp_array(p, obj, key, false, XREQ_MAX_STOP, &v))
		return -1;
	r->stop = dt_arena_alloc(&r->arena, (v->len ? v->len : 1) * sizeof(*r->stop));
	if (!r->stop)
		return xp_fail(p, "out of memory");
	xp_push_key(p, key);
	for (const struct dt_json *s = v->first; s; s = s->next, i++) {
		xp_push_index(p, i);
		if (s->type != DT_JSON_STRING)
			return xp_fail(p, "must be a string, not %s", type_names[s->type]);
		if (!(r->stop[i] = dt_json_cstr(&r->arena, s)))
			return xp_fail(p, "out of memory");
		p->depth--;
	}
	r->n_stop = i;
	p->depth = depth;
	return 0;
}

/* ---- building the IR ---------------------------------------------------- */

int xp_reserve_messages(struct xparse *p, size_t n)
{
	struct dt_xrequest *r = p->r;

	p->room = n < XREQ_MAX_MESSAGES ? n : XREQ_MAX_MESSAGES;
	r->messages = dt_arena_alloc(&r->arena, (p->room ? p->room : 1) * sizeof(*r->messages));
	return r->messages ? 0 : xp_fail(p, "out of memory");
}

struct dt_xmessage *xp_message(struct xparse *p, enum dt_xrole role, size_t max_parts)
{
	struct dt_xmessage *m;

	if (p->r->n_messages >= p->room) {
		xp_fail(p, "more than %d messages", XREQ_MAX_MESSAGES);
		return NULL;
	}
	m = &p->r->messages[p->r->n_messages];
	if (max_parts > XREQ_MAX_PARTS) {
		xp_fail(p, "%zu parts, at most %d accepted", max_parts, XREQ_MAX_PARTS);
		return NULL;
	}
	m->role = role;
	m->parts = dt_arena_alloc(&p->r->arena, (max_parts ? max_parts : 1) * sizeof(*m->parts));
	if (!m->parts) {
		xp_fail(p, "out of memory");
		return NULL;
	}
	p->r->n_messages++;
	return m;
}

int xp_reserve_runs(struct xparse *p, const struct dt_json *list, const char *key)
{
	size_t room = 0;

	for (const struct dt_json *item = list->first; item; item = item->next) {
		const struct dt_json *parts = dt_json_get(item, key);

		room += parts && parts->type == DT_JSON_ARRAY && parts->len ? parts->len : 1;
	}
	return xp_reserve_messages(p, room);
}

/* The caller sized m->parts for every part its source message can give. */
struct dt_xpart *xp_part(struct xparse *p, struct dt_xmessage *m, enum dt_xpart_type type)
{
	struct dt_xpart *part = &m->parts[m->n_parts];

	if (++p->total_parts > XREQ_MAX_TOTAL_PARTS) {
		xp_fail(p, "more than %d parts in all", XREQ_MAX_TOTAL_PARTS);
		return NULL;
	}
	m->n_parts++;
	part->type = type;
	return part;
}

struct dt_xpart *xp_run_part(struct xparse *p, struct dt_xmessage **m, enum dt_xrole role,
			     size_t left, enum dt_xpart_type type)
{
	if ((!*m || (*m)->role != role) && !(*m = xp_message(p, role, left)))
		return NULL;
	return xp_part(p, *m, type);
}

const char *xp_join(struct xparse *p, const char *acc, const char *s)
{
	const char *joined = acc ? dt_arena_printf(&p->r->arena, "%s\n\n%s", acc, s) : s;

	if (!joined)
		xp_fail(p, "out of memory");
	return joined;
}

int xp_system(struct xparse *p, const char *text)
{
	const char *joined = xp_join(p, p->r->system, text);

	if (!joined)
		return -1;
	p->r->system = joined;
	return 0;
}

int xp_image_url(struct xparse *p, struct dt_xpart *part, const char *url)
{
	static const char b64[] = ";base64,";
	const char *sep;

	if (xe_http_url(url)) {
		part->url = url;
		return 0;
	}
	if (strncmp(url, "data:", 5) != 0)
		return xp_fail(p, "only http(s) and data: URLs are accepted");
	sep = strstr(url, b64);
	if (!sep || sep == url + 5)
		return xp_fail(p, "a data: URL must read data:<media type>;base64,<data>");
	part->media_type = dt_arena_strndup(&p->r->arena, url + 5, (size_t)(sep - url - 5));
	part->data = sep + sizeof(b64) - 1;
	return part->media_type ? 0 : xp_fail(p, "out of memory");
}

/* ---- emitting --------------------------------------------------------- */

int xe_fail(struct xemit *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err, e->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool same_turn(enum dt_xrole a, enum dt_xrole b)
{
	return (a == DT_XROLE_ASSISTANT) == (b == DT_XROLE_ASSISTANT);
}

size_t xe_turn(const struct dt_xrequest *r, size_t *i)
{
	size_t j;

	while (*i < r->n_messages && !r->messages[*i].n_parts)
		(*i)++;
	for (j = *i + 1; j < r->n_messages; j++)
		if (r->messages[j].n_parts && !same_turn(r->messages[*i].role, r->messages[j].role))
			break;
	return *i < r->n_messages ? j : *i;
}

const char *xe_call_name(const struct dt_xrequest *r, size_t i, const char *id)
{
	while (i-- > 0) {
		const struct dt_xmessage *m = &r->messages[i];

		if (m->role != DT_XROLE_ASSISTANT)
			continue;
		for (size_t k = 0; k < m->n_parts; k++)
			if (m->parts[k].type == DT_XPART_TOOL_CALL && m->parts[k].id && id &&
			    strcmp(m->parts[k].id, id) == 0)
				return m->parts[k].name;
		return NULL;
	}
	return NULL;
}

int xe_arguments(struct xemit *e, const struct dt_xpart *call, const char **out)
{
	const char *args = call->arguments ? call->arguments : "";

	if (!args[strspn(args, " \t\r\n")]) {
		*out = "{}";
		return 0;
	}
	if (!dt_json_is_object_text(args, strlen(args)))
		return xe_fail(e, "tool call %s (\"%s\"): arguments are not a JSON object",
			       call->id ? call->id : "", call->name ? call->name : "");
	*out = args;
	return 0;
}

void xe_num(struct dt_jbuf *b, const char *key, bool has, double v)
{
	if (!has)
		return;
	dt_jbuf_key(b, key);
	dt_jbuf_num(b, v);
}

void xe_int(struct dt_jbuf *b, const char *key, bool has, int64_t v)
{
	if (!has)
		return;
	dt_jbuf_key(b, key);
	dt_jbuf_int(b, v);
}

void xe_stop(struct xemit *e, const char *key)
{
	const struct dt_xrequest *r = e->r;

	if (!r->n_stop)
		return;
	dt_jbuf_key(&e->b, key);
	dt_jbuf_lit(&e->b, "[");
	for (size_t i = 0; i < r->n_stop; i++) {
		dt_jbuf_sep(&e->b);
		dt_jbuf_str(&e->b, r->stop[i]);
	}
	dt_jbuf_lit(&e->b, "]");
}

void xe_tools(struct xemit *e, const char *open, const char *close, const char *parameters_key,
	      const char *no_parameters)
{
	struct dt_jbuf *b = &e->b;

	for (size_t i = 0; i < e->r->n_tools; i++) {
		const struct dt_xtool *t = &e->r->tools[i];
		const char *params = t->parameters ? t->parameters : no_parameters;

		dt_jbuf_sep(b);
		dt_jbuf_put(b, open, strlen(open));
		dt_jbuf_key(b, "name");
		dt_jbuf_str(b, t->name);
		if (t->description) {
			dt_jbuf_key(b, "description");
			dt_jbuf_str(b, t->description);
		}
		if (params) {
			dt_jbuf_key(b, parameters_key);
			dt_jbuf_put(b, params, strlen(params));
		}
		dt_jbuf_put(b, close, strlen(close));
	}
}

bool xe_http_url(const char *url)
{
	return strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0;
}

bool xe_gemini_file(const char *url)
{
	return strncmp(url, GEMINI_FILES, sizeof(GEMINI_FILES) - 1) == 0;
}

/* ---- the API ------------------------------------------------------------ */

int dt_xreq_parse(enum dt_family shape, const char *body, size_t len, const char *path_model,
		  bool stream, struct dt_xrequest *r, char *err, size_t errlen)
{
	struct xparse p = { .r = r, .err = err, .errlen = errlen };
	const struct dt_json *root;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->shape = shape;
	r->parallel_tool_calls = -1;
	r->max_tokens = -1;
	r->n = 1;
	if (errlen)
		err[0] = '\0';
	root = dt_json_parse(&r->arena, body, len, err, errlen);
	if (root && root->type != DT_JSON_OBJECT)
		xp_fail(&p, "the body must be a JSON object, not %s", type_names[root->type]);
	else if (root && shape == DT_FAMILY_OPENAI)
		rc = xreq_parse_openai(&p, root);
	else if (root && shape == DT_FAMILY_ANTHROPIC)
		rc = xreq_parse_anthropic(&p, root);
	else if (root && shape == DT_FAMILY_GEMINI) {
		r->stream = stream;
		rc = xreq_parse_gemini(&p, root, path_model);
	} else if (root)
		xp_fail(&p, "unknown API shape %d", (int)shape);
	if (rc)
		dt_xreq_free(r);
	return rc;
}

char *dt_xreq_emit(enum dt_family to, const struct dt_xrequest *r, const char *model,
		   size_t *len, char *err, size_t errlen)
{
	struct xemit e = { .r = r, .err = err, .errlen = errlen };
	char *out;
	int rc;

	if (errlen)
		err[0] = '\0';
	switch (to) {
	case DT_FAMILY_OPENAI:
		rc = xreq_emit_openai(&e, model);
		break;
	case DT_FAMILY_ANTHROPIC:
		rc = xreq_emit_anthropic(&e, model);
		break;
	case DT_FAMILY_GEMINI:
		rc = xreq_emit_gemini(&e);
		break;
	default:
		rc = xe_fail(&e, "unknown API family %d", (int)to);
		break;
	}
	if (rc) {
		dt_jbuf_free(&e.b);
		return NULL;
	}
	out = dt_jbuf_finish(&e.b, len);
	if (!out)
		xe_fail(&e, "out of memory");
	return out;
}

void dt_xreq_free(struct dt_xrequest *r)
{
	dt_arena_free(&r->arena);
	memset(r, 0, sizeof(*r));
}
