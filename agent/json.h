/* SPDX-License-Identifier: MIT */
/*
 * detour's JSON: a strict one-pass scanner into an arena tree, and a text
 * writer with the one string escaper of the translators. jansson builds a
 * hashed tree of separately allocated values and reads through a stream,
 * byte by byte: several times the budget of a translated request or event.
 *
 * The scanner is RFC 8259 and strict (UTF-8 validated, escapes and
 * surrogate pairs checked, \u0000 refused so strings can be C strings,
 * numbers that overflow a double refused) within limits: nesting depth,
 * values per document, number text length. Strings point into the source
 * until read; every value knows its byte span in the source, so a caller
 * can replace one value and keep the rest of the text as it was.
 */
#ifndef DT_JSON_H
#define DT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define DT_JSON_MAX_DEPTH       128     /* nesting */
#define DT_JSON_MAX_VALUES      1000000 /* values in one document */
#define DT_JSON_MAX_NUMBER_TEXT 63      /* bytes of one number */

/* ---- reading -------------------------------------------------------------- */

enum dt_json_type {
	DT_JSON_NULL, DT_JSON_BOOL, DT_JSON_NUMBER, DT_JSON_STRING, DT_JSON_ARRAY, DT_JSON_OBJECT,
};

/* One value of a parsed document; the source text must outlive it. */
struct dt_json {
	enum dt_json_type type;
	bool boolean;
	bool escaped;           /* STRING: holds backslash escapes */
	bool is_integer;        /* NUMBER: an integer that fits int64 */
	const char *text;       /* the value's JSON text in the source (a STRING's with quotes) */
	size_t offset, length;  /* where that is: text == source + offset */
	size_t len;             /* ARRAY, OBJECT: how many items or members */
	struct dt_json *first;  /* ARRAY, OBJECT */
	struct dt_json *next;   /* the next item or member of the parent */
	const char *key;        /* member of an object: its name, unescaped */
	size_t key_len;
	double number;
	int64_t integer;
};

/* Scan text into a tree allocated in a; NULL with "malformed JSON at byte
 * N: why" in err. Duplicate member names are kept (see dt_json_get). */
struct dt_json *dt_json_parse(struct dt_arena *a, const char *text, size_t len,
			      char *err, size_t errlen);
/* Whether text is one well-formed JSON object (nothing allocated). */
bool dt_json_is_object_text(const char *text, size_t len);

/* A member by name, NULL when obj is not an object (or NULL) or has none.
 * key may list aliases, "camelCase|snake_case": the first name present
 * wins. Of duplicate members the last wins, as with jansson and most
 * parsers (the providers' among them). */
const struct dt_json *dt_json_get(const struct dt_json *obj, const char *key);
/* Item i of an array; NULL when v is not an array or is shorter. */
const struct dt_json *dt_json_at(const struct dt_json *v, size_t i);
/* A member's integer; def when absent or not an integer in int64. */
int64_t dt_json_get_int(const struct dt_json *obj, const char *key, int64_t def);
/* Whether a member is true. */
bool dt_json_get_true(const struct dt_json *obj, const char *key);

/* A STRING's value, NUL-terminated in a; NULL when v is not a string (or
 * NULL) or out of memory. Unescaped values are copied out as they are. */
const char *dt_json_cstr(struct dt_arena *a, const struct dt_json *v);
/* The same without a copy when the string has no escapes: *len bytes at
 * the returned pointer, which is then not NUL-terminated. */
const char *dt_json_strn(struct dt_arena *a, const struct dt_json *v, size_t *len);

/* Options of dt_json_text. */
#define DT_JSON_COMPACT         1u /* no whitespace between tokens */
#define DT_JSON_LOWERCASE_TYPES 2u /* every "type" member's string lowercased (Gemini's
				    * OpenAPI schemas say "OBJECT", JSON Schema "object") */

/* A copy of v's JSON text, NUL-terminated in a; NULL when out of memory. */
const char *dt_json_text(struct dt_arena *a, const struct dt_json *v, unsigned flags);

/* source (len bytes, parsed into a tree holding obj) with the value of
 * obj's member named key replaced by value, written as a JSON string;
 * every other byte as it was. The member must be present once and be a
 * string: a name given twice reads differently to different parsers, so
 * replacing one of them would not do. malloc'ed and NUL-terminated, its
 * length in *out_len; NULL when the member is not so, or out of memory. */
char *dt_json_splice_str(const char *source, size_t len, const struct dt_json *obj,
			 const char *key, const char *value, size_t *out_len);

/* ---- writing -------------------------------------------------------------- */

/* A growing text; after a failed allocation it stays failed and ignores
 * further writes, so writers check once, at the end. */
struct dt_jbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

void dt_jbuf_put(struct dt_jbuf *b, const char *s, size_t n);
/* "" s: only a literal compiles (sizeof a pointer would be wrong) */
#define dt_jbuf_lit(b, s) dt_jbuf_put((b), "" s, sizeof(s) - 1)
/* A comma unless the text is empty or ends with '{' or '['. */
void dt_jbuf_sep(struct dt_jbuf *b);
/* A separator and "key": (a literal name needing no escapes). */
void dt_jbuf_key(struct dt_jbuf *b, const char *key);
/* s as a JSON string, quoted and escaped; NULL is written as null. */
void dt_jbuf_str(struct dt_jbuf *b, const char *s);
void dt_jbuf_strn(struct dt_jbuf *b, const char *s, size_t n);
/* s escaped without quotes: pieces of one string written one by one.
 * Quotes, backslashes and control characters are escaped, other bytes
 * (UTF-8, or not) copied as they are. */
void dt_jbuf_esc(struct dt_jbuf *b, const char *s);
void dt_jbuf_escn(struct dt_jbuf *b, const char *s, size_t n);
void dt_jbuf_int(struct dt_jbuf *b, int64_t v);
/* The shortest of %.15g and %.17g that reads back as v. */
void dt_jbuf_num(struct dt_jbuf *b, double v);
void dt_jbuf_bool(struct dt_jbuf *b, bool v);
/* text when it is one JSON object (tool arguments), {} otherwise (empty,
 * truncated, another value). */
void dt_jbuf_object(struct dt_jbuf *b, const char *text, size_t len);
/* The text, NUL-terminated and malloc'ed, its length in *len (when not
 * NULL); the buffer is left empty. NULL when an allocation failed (the
 * buffer is freed). */
char *dt_jbuf_finish(struct dt_jbuf *b, size_t *len);
void dt_jbuf_free(struct dt_jbuf *b);

#endif /* DT_JSON_H */
