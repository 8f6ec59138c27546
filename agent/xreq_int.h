/* SPDX-License-Identifier: MIT */
/* Shared by the request translators (xreq*.c): the parse context with its
 * error path, the limits, and the helpers every family's parser and
 * emitter uses. Not for use elsewhere. */
#ifndef DT_XREQ_INT_H
#define DT_XREQ_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "xlate.h"

/* Limits on what a client may send (docs/translation.md, "Limits"; the
 * JSON's own in json.h). */
#define XREQ_MAX_MESSAGES     10000
#define XREQ_MAX_PARTS        10000  /* in one message */
#define XREQ_MAX_TOTAL_PARTS  50000
#define XREQ_MAX_TOOL_CALLS   256    /* in one message: bounds id look-ups */
#define XREQ_MAX_TOOLS        1000
#define XREQ_MAX_STOP         64

/* Anthropic requires max_tokens; this is sent when the client named none. */
#define XREQ_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* ---- parsing -------------------------------------------------------------- */

/* Where the parser is in the client's document, for error messages:
 * `messages[2].content[0].image_url.url`. */
struct xpath_seg {
	const char *key;        /* NULL: an array index */
	size_t index;
};

struct xparse {
	struct dt_xrequest *r;
	char *err;
	size_t errlen;
	struct xpath_seg path[16];
	size_t depth;
	size_t room;            /* messages reserved */
	size_t total_parts;
};

/* -1, with "<path>: <message>" in p->err; _at: at member key of the path. */
int xp_fail(struct xparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int xp_fail_at(struct xparse *p, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void xp_push_key(struct xparse *p, const char *key);
void xp_push_index(struct xparse *p, size_t index);
/* Typed members of obj: 0 when absent (outputs untouched) or read, -1 with
 * an error naming the member otherwise. Required members fail when absent.
 * null reads as absent (clients send it for "not given"). *has (when not
 * NULL) is set when the member was read. */
int xp_str(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	   const char **out);
int xp_int(struct xparse *p, const struct dt_json *obj, const char *key, int64_t min, int64_t max,
	   bool *has, int64_t *out);
int xp_num(struct xparse *p, const struct dt_json *obj, const char *key, double min, double max,
	   bool *has, double *out);
int xp_bool(struct xparse *p, const struct dt_json *obj, const char *key, bool *out, bool *has);
/* An array (or, with allow_object, an object) member, checked against max
 * items; *out NULL when absent. */
int xp_array(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	     size_t max, const struct dt_json **out);
int xp_object(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	      const struct dt_json **out);
/* A string, or an array of text parts ({"type": "text", "text": ...},
 * called `noun` in errors) joined by blank lines: the text-only contents of
 * OpenAI and Anthropic. "" when absent. */
int xp_text(struct xparse *p, const struct dt_json *obj, const char *key, bool required,
	    const char *noun, const char **out);
/* The array member "tools" into r->tools, each item read by tool. */
typedef int (*xp_tool_fn)(struct xparse *p, struct dt_xtool *t, const struct dt_json *spec);
int xp_tools(struct xparse *p, const struct dt_json *root, xp_tool_fn tool);
/* A string or array of strings into r->stop. */
int xp_stop(struct xparse *p, const struct dt_json *obj, const char *key);

/* Building the IR. */
struct dt_xmessage *xp_message(struct xparse *p, enum dt_xrole role, size_t max_parts);
struct dt_xpart *xp_part(struct xparse *p, struct dt_xmessage *m, enum dt_xpart_type type);
/* A part in *m, or in a new message when *m is NULL or of another role:
 * an Anthropic or Gemini message splits into runs of one role each (tool
 * results are a tool message). left: the source message's parts from this
 * one on, room for the run. */
struct dt_xpart *xp_run_part(struct xparse *p, struct dt_xmessage **m, enum dt_xrole role,
			     size_t left, enum dt_xpart_type type);
/* Adds text to r->system, joined to what is there by a blank line. */
int xp_system(struct xparse *p, const char *text);
/* Joins s onto *acc (NULL: none yet) with a blank line between. */
const char *xp_join(struct xparse *p, const char *acc, const char *s);
/* An image from an OpenAI-style URL: `data:<type>;base64,<data>` or http(s). */
int xp_image_url(struct xparse *p, struct dt_xpart *part, const char *url);
/* Room in r->messages for up to n messages (at most XREQ_MAX_MESSAGES:
 * xp_message refuses more). */
int xp_reserve_messages(struct xparse *p, size_t n);
/* Room for the messages of the array list when each item may split into
 * runs (xp_run_part): at most one per item of its array member key. */
int xp_reserve_runs(struct xparse *p, const struct dt_json *list, const char *key);

/* Per family: fill p->r from the scanned document root. */
int xreq_parse_openai(struct xparse *p, const struct dt_json *root);
int xreq_parse_anthropic(struct xparse *p, const struct dt_json *root);
int xreq_parse_gemini(struct xparse *p, const struct dt_json *root, const char *path_model);

/* ---- emitting ------------------------------------------------------------- */

struct xemit {
	const struct dt_xrequest *r;
	struct dt_jbuf b;
	char *err;
	size_t errlen;
};

int xe_fail(struct xemit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The next turn of Anthropic and Gemini: consecutive messages the wire
 * shows under one role (assistant, or user for user and tool messages).
 * Moves *i past messages without parts (they are not sent) to the turn's
 * first message and returns the end of the turn; *i when no message is
 * left. */
size_t xe_turn(const struct dt_xrequest *r, size_t *i);
/* The name of the function the call `id` made, looked up in the closest
 * assistant message before messages[i]; NULL when none made it. */
const char *xe_call_name(const struct dt_xrequest *r, size_t i, const char *id);
/* A call's arguments as a JSON object text ("" reads as {}); -1 with an
 * error when they are not one. */
int xe_arguments(struct xemit *e, const struct dt_xpart *call, const char **out);
/* Optional members: written only when has. */
void xe_num(struct dt_jbuf *b, const char *key, bool has, double v);
void xe_int(struct dt_jbuf *b, const char *key, bool has, int64_t v);
/* r->stop as an array member named key; nothing when there is none. */
void xe_stop(struct xemit *e, const char *key);
/* r->tools as array items: each is open, the tool's name, description
 * (when given) and parameters under parameters_key (no_parameters when it
 * has none; NULL: left out), then close. */
void xe_tools(struct xemit *e, const char *open, const char *close, const char *parameters_key,
	      const char *no_parameters);
/* An http(s) URL (the only ones OpenAI and Anthropic fetch). */
bool xe_http_url(const char *url);
/* A file uploaded to Gemini's Files API: only Gemini reads it. */
#define GEMINI_FILES "https://generativelanguage.googleapis.com/"
bool xe_gemini_file(const char *url);

int xreq_emit_openai(struct xemit *e, const char *model);
int xreq_emit_anthropic(struct xemit *e, const char *model);
int xreq_emit_gemini(struct xemit *e);

#endif
