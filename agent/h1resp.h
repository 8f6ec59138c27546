/* SPDX-License-Identifier: MIT */
/*
 * Reading one HTTP/1.1 response from a provider (the own upstream client's
 * side, agent/upstream_h1.c), with libhttp-parser as the server side uses
 * it: interim 1xx responses skipped, the final head handed over once, the
 * body de-chunked as it arrives. Bad input ends in a clear error, never a
 * crash.
 */
#ifndef DT_H1RESP_H
#define DT_H1RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <http_parser.h>

#include "headers.h"

/* A response head larger than this, or with more fields, is refused. */
#define DT_H1RESP_MAX_HEAD   (64 * 1024)
#define DT_H1RESP_MAX_FIELDS 128

struct dt_h1resp_ops {
	/* The final head, once; h is valid during the call. Returns true to
	 * stop reading (the reader is then DT_H1RESP_STOPPED). */
	bool (*head)(void *ctx, int status, const struct dt_headers *h);
	/* Body bytes, de-chunked. Returns true to stop reading. */
	bool (*body)(void *ctx, const char *buf, size_t len);
};

enum dt_h1resp_state {
	DT_H1RESP_MORE,      /* everything fed was used: feed more */
	DT_H1RESP_STOPPED,   /* head() or body() asked to stop */
	DT_H1RESP_COMPLETE,  /* the whole response is in */
	DT_H1RESP_ERROR,     /* malformed (dt_h1resp_error says why) */
};

struct dt_h1resp {
	http_parser parser;
	const struct dt_h1resp_ops *ops;
	void *ctx;
	bool head_request;            /* the answer to HEAD has no body */
	struct dt_headers fields;     /* the head being read */
	/* the field being read, while its name and value are in the bytes
	 * being fed: taken from there when it ends (name_at NULL: none) */
	const char *name_at, *value_at;
	size_t name_at_len, value_at_len;
	char *field;                  /* ... else "name\0value", copied */
	size_t name_len, field_len, field_cap;
	bool in_value;
	size_t head_bytes;
	bool head_done;               /* the final head was handed over */
	bool complete;
	bool stop;                    /* a callback said stop */
	bool got_bytes;               /* anything at all was fed */
	char error[96];
};

void dt_h1resp_init(struct dt_h1resp *r, bool head_request, const struct dt_h1resp_ops *ops,
		    void *ctx);
void dt_h1resp_free(struct dt_h1resp *r);
/* Feed len bytes; *used says how many were taken (fewer when it stopped or
 * completed: what follows a complete response is not part of it). Not to be
 * fed again once it is no longer MORE. */
enum dt_h1resp_state dt_h1resp_feed(struct dt_h1resp *r, const char *buf, size_t len,
				    size_t *used);
/* The connection ended: COMPLETE when that is how the body was delimited,
 * else ERROR. */
enum dt_h1resp_state dt_h1resp_eof(struct dt_h1resp *r);
/* May the connection carry another request after this complete response? */
bool dt_h1resp_keep_alive(const struct dt_h1resp *r);

#endif /* DT_H1RESP_H */
