/* SPDX-License-Identifier: MIT */
/*
 * Reading one HTTP/1.1 response from a provider (the own upstream client's
 * side, agent/upstream_h1.c): interim 1xx responses skipped, the final head
 * handed over once, the body de-chunked as it arrives. Its own parser, a
 * line at a time (memchr for the line's end, a table for the field's
 * name) where libhttp-parser went a byte at a time with a callback per
 * piece: this runs for every proxied answer. Bad input ends in a clear error, never a crash;
 * whatever could make two readers frame the body differently is refused
 * (tests/fuzz/fuzz_h1resp.c holds it against libhttp-parser).
 */
#ifndef DT_H1RESP_H
#define DT_H1RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	const struct dt_h1resp_ops *ops;
	void *ctx;
	bool head_request;            /* the answer to HEAD has no body */
	unsigned char part;           /* what comes next (h1resp.c's enum part) */
	/* the message being read: the final one, or an interim 1xx */
	int status;
	bool http10;
	bool has_length, chunked, conn_close, conn_keep_alive;
	uint64_t left;                /* body bytes to come: Content-Length's or the chunk's */
	struct dt_headers fields;     /* the head being read */
	/* a line split across feeds, copied (a whole line is read where it
	 * was fed) */
	char *line;
	size_t line_len, line_cap;
	size_t head_bytes;            /* all heads' and trailers' bytes so far */
	bool head_done;               /* the final head was handed over */
	bool keep_alive;              /* as its head says */
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
