// SPDX-License-Identifier: MIT
/* Non-streamed answers: dispatch to the families, and the rules every
 * family shares (finish reasons, ids, model); see xlate.h and
 * docs/translation.md, "Responses". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xresp_int.h"

/* Finish reasons both ways. A family's first row for an IR value is the
 * name written for it; a name read takes the IR value of its first row. */
static const struct finish_row {
	enum dt_family family;
	const char *name;
	enum dt_xfinish finish;
} finish_table[] = {
	{ DT_FAMILY_OPENAI, "stop", DT_XFINISH_STOP },
	{ DT_FAMILY_OPENAI, "stop", DT_XFINISH_STOP_SEQUENCE },
	{ DT_FAMILY_OPENAI, "length", DT_XFINISH_LENGTH },
	{ DT_FAMILY_OPENAI, "tool_calls", DT_XFINISH_TOOL_CALLS },
	{ DT_FAMILY_OPENAI, "function_call", DT_XFINISH_TOOL_CALLS },
	{ DT_FAMILY_OPENAI, "content_filter", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_OPENAI, "stop", DT_XFINISH_OTHER },

	{ DT_FAMILY_ANTHROPIC, "end_turn", DT_XFINISH_STOP },
	{ DT_FAMILY_ANTHROPIC, "stop_sequence", DT_XFINISH_STOP_SEQUENCE },
	{ DT_FAMILY_ANTHROPIC, "max_tokens", DT_XFINISH_LENGTH },
	{ DT_FAMILY_ANTHROPIC, "model_context_window_exceeded", DT_XFINISH_LENGTH },
	{ DT_FAMILY_ANTHROPIC, "tool_use", DT_XFINISH_TOOL_CALLS },
	{ DT_FAMILY_ANTHROPIC, "refusal", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_ANTHROPIC, "end_turn", DT_XFINISH_OTHER },
	{ DT_FAMILY_ANTHROPIC, "pause_turn", DT_XFINISH_OTHER },

	{ DT_FAMILY_GEMINI, "STOP", DT_XFINISH_STOP },
	{ DT_FAMILY_GEMINI, "STOP", DT_XFINISH_STOP_SEQUENCE },
	{ DT_FAMILY_GEMINI, "MAX_TOKENS", DT_XFINISH_LENGTH },
	{ DT_FAMILY_GEMINI, "STOP", DT_XFINISH_TOOL_CALLS },
	{ DT_FAMILY_GEMINI, "SAFETY", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "RECITATION", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "BLOCKLIST", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "PROHIBITED_CONTENT", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "SPII", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "IMAGE_SAFETY", DT_XFINISH_CONTENT_FILTER },
	{ DT_FAMILY_GEMINI, "OTHER", DT_XFINISH_OTHER },
};

enum dt_xfinish dt_xfinish_parse(enum dt_family f, const char *name)
{
	for (size_t i = 0; i < sizeof(finish_table) / sizeof(finish_table[0]); i++)
		if (finish_table[i].family == f && strcmp(finish_table[i].name, name) == 0)
			return finish_table[i].finish;
	return DT_XFINISH_OTHER;
}

const char *dt_xfinish_name(enum dt_family f, enum dt_xfinish finish)
{
	for (size_t i = 0; i < sizeof(finish_table) / sizeof(finish_table[0]); i++)
		if (finish_table[i].family == f && finish_table[i].finish == finish)
			return finish_table[i].name;
	return NULL;
}

const char *dt_xfinish_str(enum dt_xfinish f)
{
	static const char *const names[] = {
		[DT_XFINISH_NONE] = "none",
		[DT_XFINISH_STOP] = "stop",
		[DT_XFINISH_STOP_SEQUENCE] = "stop_sequence",
		[DT_XFINISH_LENGTH] = "length",
		[DT_XFINISH_TOOL_CALLS] = "tool_calls",
		[DT_XFINISH_CONTENT_FILTER] = "content_filter",
		[DT_XFINISH_OTHER] = "other",
	};

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "other";
}

const char *dt_xid(enum dt_family to, enum dt_family from, const char *id, uint64_t seed,
		   char buf[DT_XID_LEN])
{
	static const char *const prefix[] = {
		[DT_FAMILY_OPENAI] = "chatcmpl-",
		[DT_FAMILY_ANTHROPIC] = "msg_",
		[DT_FAMILY_GEMINI] = "",
	};

	if (id && to == from)
		return id;
	snprintf(buf, DT_XID_LEN, "%s%016" PRIx64, prefix[to], seed);
	return buf;
}

const char *dt_xtool_id(enum dt_family to, const char *id, uint64_t seed, size_t index,
			char buf[DT_XID_LEN])
{
	if (id)
		return id;
	snprintf(buf, DT_XID_LEN, "%s%016" PRIx64 "_%zu",
		 to == DT_FAMILY_ANTHROPIC ? "toolu_" : "call_", seed, index);
	return buf;
}

const char *dt_xmodel(const struct dt_xctx *ctx, const char *model)
{
	if (ctx->client_model)
		return ctx->client_model;
	return model ? model : "";
}

const char *dt_xread_str(struct dt_xread *rd, const struct dt_json *obj, const char *key)
{
	const struct dt_json *v = dt_json_get(obj, key);
	const char *str = dt_json_cstr(rd->arena, v);

	if (!str && v && v->type == DT_JSON_STRING)
		rd->oom = true;
	return str;
}

const char *dt_xread_text(struct dt_xread *rd, const struct dt_json *v)
{
	const char *text = v ? dt_json_text(rd->arena, v, DT_JSON_COMPACT) : NULL;

	if (v && !text)
		rd->oom = true;
	return text;
}

size_t dt_xresp_text(struct dt_jbuf *b, const struct dt_xresponse *r,
		     void (*put)(struct dt_jbuf *b, const char *s, size_t n))
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_parts; i++)
		if (r->parts[i].type == DT_XPART_TEXT && r->parts[i].text) {
			put(b, r->parts[i].text, strlen(r->parts[i].text));
			n++;
		}
	return n;
}

void dt_xargs_emit(struct dt_jbuf *b, const char *arguments)
{
	const char *args = arguments ? arguments : "";

	dt_jbuf_object(b, args, strlen(args));
}

/* The answer's tree lives in r's arena, with the strings read from it. */
int dt_xresp_parse(enum dt_family from, const char *body, size_t len,
		   struct dt_xresponse *r, char *err, size_t errlen)
{
	struct dt_xread rd = { .arena = &r->arena };
	const struct dt_json *root;
	char why[128];
	int rc;

	*r = (struct dt_xresponse){ .shape = from };
	root = dt_json_parse(&r->arena, body, len, why, sizeof(why));
	if (!root) {
		snprintf(err, errlen, "the provider's answer is not JSON: %s", why);
		dt_xresp_free(r);
		return -1;
	}
	switch (from) {
	case DT_FAMILY_OPENAI:
		rc = dt_xopenai_parse(root, &rd, r, err, errlen);
		break;
	case DT_FAMILY_ANTHROPIC:
		rc = dt_xanthropic_parse(root, &rd, r, err, errlen);
		break;
	case DT_FAMILY_GEMINI:
		rc = dt_xgemini_parse(root, &rd, r, err, errlen);
		break;
	default:
		snprintf(err, errlen, "unknown API family %d", (int)from);
		rc = -1;
	}
	if (!rc && rd.oom) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	if (rc)
		dt_xresp_free(r);
	return rc;
}

char *dt_xresp_emit(enum dt_family to, const struct dt_xresponse *r,
		    const struct dt_xctx *ctx, size_t *len)
{
	struct dt_jbuf b = { 0 };

	switch (to) {
	case DT_FAMILY_ANTHROPIC:
		dt_xanthropic_emit(&b, r, ctx);
		break;
	case DT_FAMILY_GEMINI:
		dt_xgemini_emit(&b, r, ctx);
		break;
	case DT_FAMILY_OPENAI:
	default:
		dt_xopenai_emit(&b, r, ctx);
		break;
	}
	return dt_jbuf_finish(&b, len);
}

void dt_xresp_free(struct dt_xresponse *r)
{
	dt_arena_free(&r->arena);
	*r = (struct dt_xresponse){ 0 };
}
