/* SPDX-License-Identifier: MIT */
/*
 * The optional JSON-lines access log: one line per client request (struct
 * dt_reqrec), appended with one write(2) so lines never interleave. Never a
 * key; the request body only when the configuration asks for prompts. A
 * failed or short write drops that line and is counted: logging never
 * blocks or fails a request. Reopened by detourd on SIGHUP (logrotate).
 * Fields: docs/metrics.md.
 */
#ifndef DT_ACCESSLOG_H
#define DT_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dt_accesslog;
struct dt_reqrec;

/* NULL with a reason in err when path cannot be opened for appending. */
struct dt_accesslog *dt_accesslog_open(const char *path, bool prompts, char *err, size_t errlen);
/* The file again, by its path (moved away by logrotate); -1 with errno
 * when it cannot be opened, the old one kept. */
int dt_accesslog_reopen(struct dt_accesslog *l);
void dt_accesslog_close(struct dt_accesslog *l);

const char *dt_accesslog_path(const struct dt_accesslog *l);
/* Does it want the request body (dt_reqrec.prompt)? */
bool dt_accesslog_prompts(const struct dt_accesslog *l);
/* Lines written, and lines lost to a failed or short write. */
uint64_t dt_accesslog_lines(const struct dt_accesslog *l);
uint64_t dt_accesslog_failures(const struct dt_accesslog *l);

void dt_accesslog_write(struct dt_accesslog *l, const struct dt_reqrec *r);

/* r's line with its line feed, malloc'ed (NULL: out of memory). */
char *dt_accesslog_line(const struct dt_reqrec *r, size_t *len);

#endif
