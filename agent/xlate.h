/* SPDX-License-Identifier: MIT */
/*
 * Translation between the three API shapes detour serves: OpenAI Chat
 * Completions, Anthropic Messages and Gemini generateContent. Every
 * translation goes through one neutral form (the "IR" below): a client's
 * request is parsed from its shape into a dt_xrequest and emitted in the
 * provider's; a provider's answer is parsed into a dt_xresponse (or, streamed,
 * into IR events inside dt_xstream) and emitted in the client's shape. Three
 * parsers and three emitters per direction instead of six pairwise
 * translators; the mapping rules are tabled in docs/translation.md.
 *
 * Pure functions on memory: no I/O, no clock (the caller passes `now`).
 * Requests: xreq*.c. Responses and streams: xresp*.c, xstream*.c, sse.c.
 */
#ifndef DT_XLATE_H
#define DT_XLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "arena.h"
#include "detour.h"

struct evbuffer;
struct dt_json;

/* ---- the neutral form --------------------------------------------------- */

/* Strings in the IR are NUL-terminated and live in the IR's arena: an IR
 * holds all of itself and outlives the text it was parsed from. */

enum dt_xrole {
	DT_XROLE_USER,
	DT_XROLE_ASSISTANT,
	DT_XROLE_TOOL,          /* results of tool calls (OpenAI "tool" messages) */
};

enum dt_xpart_type {
	DT_XPART_TEXT,
	DT_XPART_IMAGE,
	DT_XPART_TOOL_CALL,     /* assistant: a call the model made */
	DT_XPART_TOOL_RESULT,   /* tool: what the application's tool returned */
};

struct dt_xpart {
	enum dt_xpart_type type;
	const char *text;       /* TEXT; TOOL_RESULT: the result as text */
	/* IMAGE: either inline (media_type + base64 data) or by url */
	const char *media_type; /* "image/png" */
	const char *data;       /* base64, no "data:" prefix */
	const char *url;        /* http(s) URL */
	/* TOOL_CALL, TOOL_RESULT: the call's id (the same on both sides of a
	 * round trip) and the function's name */
	const char *id;
	const char *name;
	const char *arguments;  /* TOOL_CALL: JSON text of the arguments object */
	bool is_error;          /* TOOL_RESULT */
};

struct dt_xmessage {
	enum dt_xrole role;
	struct dt_xpart *parts;
	size_t n_parts;
};

struct dt_xtool {
	const char *name;
	const char *description; /* NULL: none */
	const char *parameters;  /* JSON Schema object, as JSON text; NULL: none */
};

enum dt_xtool_choice {
	DT_XTOOL_CHOICE_UNSET,   /* the provider's default (auto) */
	DT_XTOOL_CHOICE_AUTO,
	DT_XTOOL_CHOICE_NONE,
	DT_XTOOL_CHOICE_REQUIRED, /* any tool */
	DT_XTOOL_CHOICE_NAMED,    /* tool_choice_name */
};

enum dt_xformat {
	DT_XFORMAT_TEXT,         /* nothing asked */
	DT_XFORMAT_JSON,         /* any JSON object */
	DT_XFORMAT_JSON_SCHEMA,  /* JSON matching `schema` */
};

struct dt_xrequest {
	enum dt_family shape;    /* the shape it was parsed from */
	const char *model;       /* NULL: none named */
	const char *system;      /* system/developer text, joined; NULL: none */
	struct dt_xmessage *messages;
	size_t n_messages;
	struct dt_xtool *tools;
	size_t n_tools;
	enum dt_xtool_choice tool_choice;
	const char *tool_choice_name;
	int parallel_tool_calls; /* -1 unset, 0, 1 */
	int64_t max_tokens;      /* -1 unset */
	bool has_temperature, has_top_p, has_top_k, has_seed;
	bool has_presence_penalty, has_frequency_penalty;
	double temperature, top_p, presence_penalty, frequency_penalty;
	int64_t top_k, seed;
	const char **stop;
	size_t n_stop;
	enum dt_xformat format;
	const char *schema;      /* DT_XFORMAT_JSON_SCHEMA: JSON Schema, as JSON text */
	const char *schema_name; /* NULL: none given */
	const char *user;        /* end-user id (OpenAI user, Anthropic metadata.user_id) */
	int64_t n;               /* candidates asked for; 1 when unset */
	bool stream;
	bool stream_usage;       /* OpenAI stream_options.include_usage */
	struct dt_arena arena;   /* holds all of the request: no src document */
};

enum dt_xfinish {
	DT_XFINISH_NONE,         /* not known (yet) */
	DT_XFINISH_STOP,         /* natural end */
	DT_XFINISH_STOP_SEQUENCE,/* a stop sequence matched (stop_sequence) */
	DT_XFINISH_LENGTH,       /* max tokens reached */
	DT_XFINISH_TOOL_CALLS,
	DT_XFINISH_CONTENT_FILTER, /* safety, recitation, refusal */
	DT_XFINISH_OTHER,
};

struct dt_xusage {
	bool known;
	int64_t input_tokens;    /* all prompt tokens, cached ones included */
	int64_t output_tokens;
	int64_t cached_input_tokens;  /* of input_tokens: read from a cache */
	int64_t cache_write_tokens;   /* of input_tokens: written to a cache (Anthropic) */
};

struct dt_xresponse {
	enum dt_family shape;    /* the provider's: its ids are kept for clients of that shape */
	const char *id;          /* the provider's; NULL: none */
	const char *model;       /* the model that answered */
	int64_t created;         /* unix seconds; 0: not given */
	struct dt_xpart *parts;  /* TEXT and TOOL_CALL, in order */
	size_t n_parts;
	enum dt_xfinish finish;
	const char *stop_sequence;
	struct dt_xusage usage;
	struct dt_arena arena;
};

/* What the client should see that the provider's answer cannot tell. */
struct dt_xctx {
	const char *client_model; /* the model the client asked for: shown in the answer */
	int64_t now;              /* unix seconds, for `created` */
	uint64_t seed;            /* makes ids the client sees unique (e.g. a request counter) */
	bool stream_usage;        /* OpenAI client asked for the usage chunk */
};

/* ---- requests (xreq*.c) ---------------------------------------------------- */

/* Parse a client's request body in `shape` into r (zeroed first). Gemini
 * names the model and streaming in the URL: path_model and stream are used
 * for it and ignored for the others (NULL, false). Returns 0, or -1 with a
 * message for the client (a 400 in its shape) in err; r is then empty. */
int dt_xreq_parse(enum dt_family shape, const char *body, size_t len,
		  const char *path_model, bool stream, struct dt_xrequest *r,
		  char *err, size_t errlen);

/* The request body for a provider of family `to`, asking for `model`.
 * Returns malloc'ed JSON text (length in *len), or NULL with a message in
 * err when r asks for something `to` cannot do (a 400 for the client). */
char *dt_xreq_emit(enum dt_family to, const struct dt_xrequest *r, const char *model,
		   size_t *len, char *err, size_t errlen);

void dt_xreq_free(struct dt_xrequest *r);

/* An OpenAI Chat Completions stream request (src, parsed into root) that
 * does not ask for the usage chunk, changed to ask for it
 * (stream_options.include_usage true), every other byte as it was; a
 * meter with strip (below) gives the client the stream it asked for.
 * malloc'ed, its length in *out_len; NULL when the request needs no change
 * or cannot be changed safely (stream_options not an object or null, a
 * member given twice), or out of memory. */
char *dt_xreq_ask_stream_usage(const char *src, size_t len, const struct dt_json *root,
			       size_t *out_len);

/* ---- responses (xresp*.c) ------------------------------------------------- */

/* Parse a provider's non-streamed 2xx answer of family `from`. Returns 0,
 * or -1 with a reason in err (a malformed answer blames the provider). */
int dt_xresp_parse(enum dt_family from, const char *body, size_t len,
		   struct dt_xresponse *r, char *err, size_t errlen);

/* The answer in the client's shape `to`. Returns malloc'ed JSON text, NULL
 * when out of memory. */
char *dt_xresp_emit(enum dt_family to, const struct dt_xresponse *r,
		    const struct dt_xctx *ctx, size_t *len);

void dt_xresp_free(struct dt_xresponse *r);

/* ---- streams (xstream*.c, sse.c) ----------------------------------------- */

struct dt_xstream;

/* What a stream carried so far (for quality checks, costs, logs). */
struct dt_xstream_info {
	bool content;            /* a text or tool-call delta came */
	size_t text_bytes;
	size_t tool_calls;
	enum dt_xfinish finish;
	struct dt_xusage usage;
	bool complete;           /* the provider's stream reached its proper end */
	bool failed;             /* malformed, or the provider sent an error event */
};

/* Translate the SSE stream of a provider of family `from` into the client's
 * shape `to` (from == to is allowed: the stream is re-encoded). ctx is
 * copied. NULL when out of memory. */
struct dt_xstream *dt_xstream_new(enum dt_family from, enum dt_family to,
				  const struct dt_xctx *ctx);

/* Feed provider bytes as they come (any split); what the client gets is
 * appended to out. Returns 0, or -1 with a reason in err when the stream is
 * malformed or the provider reported an error in it (info.failed; nothing
 * more is accepted; the caller ends the client's stream with an error). */
int dt_xstream_feed(struct dt_xstream *s, const void *buf, size_t len,
		    struct evbuffer *out, char *err, size_t errlen);

/* The provider's stream ended (EOF). When it had reached its proper end,
 * writes the client's closing events (if not written yet) and returns 0;
 * otherwise returns -1 with a reason in err and writes nothing. */
int dt_xstream_finish(struct dt_xstream *s, struct evbuffer *out, char *err, size_t errlen);

const struct dt_xstream_info *dt_xstream_info(const struct dt_xstream *s);
void dt_xstream_free(struct dt_xstream *s);

/* ---- usage of relayed answers (xusage.c) ---------------------------------- */

/* An answer relayed as it is, untranslated, still tells what it used: a
 * meter reads the usage of a provider's 2xx answer of family `from` from
 * its bytes as they pass, an SSE stream (sse) or a whole JSON answer (a
 * Gemini JSON stream too: an array of answers, the last usage wins).
 *
 * strip (OpenAI streams only): detour asked for the usage chunk the client
 * did not ask for (stream_options.include_usage): the client's bytes are
 * those of the stream it asked for: the chunk with the usage and no
 * choices is left out, the "usage":null member of the others taken out;
 * every other byte as it came. Without strip the meter only reads. */
struct dt_xmeter;

/* NULL when out of memory. */
struct dt_xmeter *dt_xmeter_new(enum dt_family from, bool sse, bool strip);
/* Bytes of the answer, split anywhere. strip: what the client gets is
 * appended to out (an event is held until it is complete); otherwise out
 * is unused and the caller relays buf. Returns 0, or -1 when out could
 * not take the bytes (strip only; out of memory). A stream that cannot be
 * followed (an event over 1 MiB, memory) is passed on unread. */
int dt_xmeter_feed(struct dt_xmeter *m, const void *buf, size_t len, struct evbuffer *out);
/* The answer ended: strip writes what it held of an unfinished event. */
int dt_xmeter_finish(struct dt_xmeter *m, struct evbuffer *out);
/* What was read so far: known once the answer gave its usage (the last
 * of Gemini's is read here). */
const struct dt_xusage *dt_xmeter_usage(struct dt_xmeter *m);
void dt_xmeter_free(struct dt_xmeter *m);

/* Names for logs and headers: "stop", "length", ... */
const char *dt_xfinish_str(enum dt_xfinish f);

#endif /* DT_XLATE_H */
