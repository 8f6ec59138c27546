/* SPDX-License-Identifier: MIT */
/* Private to the answer translators (xresp*.c, xstream*.c) and the quality
 * check (quality.c): reading the provider's JSON, the shared mapping tables
 * and the stream's IR events. */
#ifndef DT_XRESP_INT_H
#define DT_XRESP_INT_H

#include "json.h"
#include "sse.h"
#include "xlate.h"

/* ---- shared rules (xresp.c) ---------------------------------------------- */

/* Reading a provider's JSON: strings are copied into arena (unescaped,
 * NUL-terminated) as they are read. A copy that fails reads as absent and
 * sets oom, which the reader checks once, at the end. */
struct dt_xread {
	struct dt_arena *arena;
	bool oom;
};

/* A member's string; NULL when absent or not a string. */
const char *dt_xread_str(struct dt_xread *rd, const struct dt_json *obj, const char *key);
/* v's JSON text, compact; NULL when v is NULL. */
const char *dt_xread_text(struct dt_xread *rd, const struct dt_json *v);

/* Finish reasons both ways, from one table: the IR value of a family's
 * name (DT_XFINISH_OTHER when unknown) and the family's name for an IR
 * value (NULL for DT_XFINISH_NONE). */
enum dt_xfinish dt_xfinish_parse(enum dt_family f, const char *name);
const char *dt_xfinish_name(enum dt_family f, enum dt_xfinish finish);

#define DT_XID_LEN 64

/* The answer's id the client sees: the provider's when it is of the
 * client's family, otherwise one made from seed in the client's style
 * ("chatcmpl-<hex>", "msg_<hex>", "<hex>"), written into buf. */
const char *dt_xid(enum dt_family to, enum dt_family from, const char *id, uint64_t seed,
		   char buf[DT_XID_LEN]);
/* A tool call's id for an OpenAI or Anthropic client: the provider's, or
 * one made from seed and the call's index ("call_<hex>_<i>",
 * "toolu_<hex>_<i>"). Gemini's calls need none: its clients get the
 * provider's or none. */
const char *dt_xtool_id(enum dt_family to, const char *id, uint64_t seed, size_t index,
			char buf[DT_XID_LEN]);
/* The model the client sees: the one it asked for, else the provider's. */
const char *dt_xmodel(const struct dt_xctx *ctx, const char *model);

/* The answer's text: its text parts one after the other, each written with
 * put (dt_jbuf_put for the text itself, dt_jbuf_escn inside a JSON string).
 * What OpenAI shows as the content and JSON mode applies to. Returns how
 * many parts were written. */
size_t dt_xresp_text(struct dt_jbuf *b, const struct dt_xresponse *r,
		     void (*put)(struct dt_jbuf *b, const char *s, size_t n));
/* A call's arguments written as an object (Anthropic input, Gemini args):
 * {} when they are not one (none, empty, cut short, another value). */
void dt_xargs_emit(struct dt_jbuf *b, const char *arguments);

/* Usage objects of each family, read into u (u->known set when obj is
 * one; Anthropic's fields absent from obj keep their value in u, for a
 * stream's partial updates) and written (the object, "{" to "}"). */
void dt_xopenai_usage_parse(const struct dt_json *obj, struct dt_xusage *u);
void dt_xopenai_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u);
void dt_xanthropic_usage_parse(const struct dt_json *obj, struct dt_xusage *u);
void dt_xanthropic_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u);
void dt_xgemini_usage_parse(const struct dt_json *obj, struct dt_xusage *u);
void dt_xgemini_usage_emit(struct dt_jbuf *b, const struct dt_xusage *u);

/* ---- per family, non-streamed (xresp_<family>.c) -------------------------- */

/* Fill r from the parsed answer; strings are read through rd (into r's
 * arena). */
int dt_xopenai_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
		     char *err, size_t errlen);
int dt_xanthropic_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
			char *err, size_t errlen);
int dt_xgemini_parse(const struct dt_json *root, struct dt_xread *rd, struct dt_xresponse *r,
		     char *err, size_t errlen);
void dt_xopenai_emit(struct dt_jbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx);
void dt_xanthropic_emit(struct dt_jbuf *b, const struct dt_xresponse *r,
			const struct dt_xctx *ctx);
void dt_xgemini_emit(struct dt_jbuf *b, const struct dt_xresponse *r, const struct dt_xctx *ctx);

/* Gemini's finish for a candidate (or a prompt blocked before it). A STOP
 * with function calls is a tool-call finish for the other families. */
enum dt_xfinish dt_xgemini_finish(struct dt_xread *rd, const struct dt_json *root,
				  bool tool_calls);
/* The parts of a Gemini answer's first candidate; NULL when there are none. */
const struct dt_json *dt_xgemini_parts(const struct dt_json *root);
/* A functionCall part up to its args' value: {"functionCall":{"id"?,"name","args": */
void dt_xgemini_call_open(struct dt_jbuf *b, const char *id, const char *name);

/* ---- streams (xstream*.c) ------------------------------------------------- */

/* What a decoder tells an encoder. Blocks (a text, a tool call) come one
 * after the other; an encoder closes the open one itself when the next one
 * starts or the answer finishes, BLOCK_STOP only says it ended earlier. */
enum dt_xev_type {
	DT_XEV_START,      /* id, model, created (0: none) */
	DT_XEV_TEXT,       /* text, len */
	DT_XEV_TOOL_START, /* index (0, 1, ... in order), id (NULL: none), name */
	DT_XEV_TOOL_ARGS,  /* text, len: the next piece of the open call's arguments */
	DT_XEV_BLOCK_STOP,
	DT_XEV_FINISH,     /* finish, stop_sequence */
	DT_XEV_USAGE,      /* usage: the totals so far; info.usage holds them */
	DT_XEV_END,        /* the provider's proper end: the client's closing events */
};

struct dt_xev {
	enum dt_xev_type type;
	const char *id, *model, *name, *stop_sequence;
	int64_t created;
	const char *text;
	size_t len, index;
	enum dt_xfinish finish;
	struct dt_xusage usage;
};

enum dt_xblock { DT_XBLOCK_NONE, DT_XBLOCK_TEXT, DT_XBLOCK_TOOL, DT_XBLOCK_SKIPPED };

struct dt_xstream {
	enum dt_family from, to;
	struct dt_xctx ctx;
	struct dt_sse sse;
	struct dt_xstream_info info;
	struct dt_jbuf out;          /* the client's bytes of the current feed */
	struct dt_arena arena;       /* strings kept from one event to a later one */
	struct dt_arena event;       /* the provider's event being decoded: its tree, strings */
	struct dt_xread rd;          /* reads into event */
	char *err;                   /* where the current feed reports */
	size_t errlen;
	bool started, finished;
	struct {                     /* decoder state */
		enum dt_xblock block;    /* Anthropic: the kind of the open block */
		int64_t tool_index;      /* OpenAI: the provider's index of the open call */
		const char *tool_id;     /* OpenAI: its id (in arena); NULL: none */
		struct dt_xusage usage;  /* the totals so far (Anthropic's come in pieces) */
	} dec;
	struct {                     /* encoder state */
		enum dt_xblock block;
		size_t blocks;           /* Anthropic: content blocks opened */
		size_t call_start;       /* Gemini: where the open call's arguments start in call */
		struct dt_jbuf head;     /* OpenAI: a chunk's start; Gemini: a chunk's end */
		struct dt_jbuf call;     /* Gemini: the open call's part, arguments last */
		const char *stop_sequence;
		enum dt_xfinish finish;
	} enc;
};

/* Hand an IR event to the client's encoder, keeping info. 0 or -1. */
int dt_xstream_emit(struct dt_xstream *s, struct dt_xev *ev);
/* Fail the stream with the message of the provider's {"error": ...}. */
int dt_xstream_provider_error(struct dt_xstream *s, const struct dt_json *root);
/* A TOOL_START event: a call opened (its name "" when the provider gave
 * none). */
int dt_xstream_tool_start(struct dt_xstream *s, const char *id, const char *name);
/* A USAGE event of the provider's usage object obj, read by parse into the
 * totals so far (dec.usage); nothing when obj is no object. */
int dt_xstream_usage(struct dt_xstream *s, const struct dt_json *obj,
		     void (*parse)(const struct dt_json *obj, struct dt_xusage *u));
/* A TEXT or TOOL_ARGS event of a JSON string; nothing when str is none. */
int dt_xstream_emit_string(struct dt_xstream *s, enum dt_xev_type type,
			   const struct dt_json *str);
/* Fail the stream with a reason. Always -1. */
int dt_xstream_fail(struct dt_xstream *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Decoders: one provider event each; 0 or -1 (through dt_xstream_fail). */
int dt_xopenai_decode(struct dt_xstream *s, const struct dt_sse_event *e);
int dt_xanthropic_decode(struct dt_xstream *s, const struct dt_sse_event *e);
int dt_xgemini_decode(struct dt_xstream *s, const struct dt_sse_event *e);
/* Encoders: one IR event each, written to s->out (whose failed flag tells
 * of memory running out). */
void dt_xopenai_encode(struct dt_xstream *s, const struct dt_xev *ev);
void dt_xanthropic_encode(struct dt_xstream *s, const struct dt_xev *ev);
void dt_xgemini_encode(struct dt_xstream *s, const struct dt_xev *ev);

/* The data of a provider's event as a JSON object (in s->event, freed
 * after the event), or NULL after failing the stream. */
const struct dt_json *dt_xstream_json(struct dt_xstream *s, const struct dt_sse_event *e);

#endif
