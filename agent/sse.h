/* SPDX-License-Identifier: MIT */
/* An incremental parser of Server-Sent Events (the WHATWG event-stream
 * format): bytes go in split anywhere, each complete event comes out once,
 * with its type and its data lines joined by "\n". id: and retry: fields,
 * comments and events without data are dropped: the providers' streams do
 * not need them. */
#ifndef DT_SSE_H
#define DT_SSE_H

#include <stdbool.h>
#include <stddef.h>

struct dt_sse_event {
	const char *type;        /* "message" when the event named none */
	const char *data;        /* NUL-terminated as well */
	size_t len;
};

/* Returns 0 to go on, -1 to stop the feed (it then returns -1 too). */
typedef int (*dt_sse_cb)(void *arg, const struct dt_sse_event *ev);

struct dt_sse {
	char *line;              /* the line being read */
	size_t line_len, line_cap;
	char *data;              /* the event's data so far */
	size_t data_len, data_cap;
	char *type;              /* the event's type so far; NULL: none */
	size_t type_len, type_cap;
	size_t max_event;        /* bytes one event may take */
	unsigned bom_seen;       /* bytes of a leading BOM matched so far */
	bool started;            /* past the place of a leading BOM */
	bool has_data;           /* a data: line came (even empty) */
	bool after_cr;           /* the last line ended with CR: skip one LF */
};

/* max_event: the cap on one event's field text (1 MiB is plenty). */
void dt_sse_init(struct dt_sse *p, size_t max_event);

/* Parse len more bytes, calling cb for each event completed. Returns 0, or
 * -1 when an event outgrew the cap, memory ran out or cb returned -1; the
 * parser must not be fed again then. */
int dt_sse_feed(struct dt_sse *p, const char *buf, size_t len, dt_sse_cb cb, void *arg);

void dt_sse_free(struct dt_sse *p);

#endif
