/* SPDX-License-Identifier: MIT */
/* An ordered list of HTTP header fields, owned copies, names compared
 * case-insensitively. Shared by the HTTP server side, the upstream client and
 * the request rewriting between them. */
#ifndef DT_HEADERS_H
#define DT_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

struct dt_header {
	char *name;
	char *value;      /* right after name's '\0' */
	size_t name_len, value_len;  /* their strlen: looked up and written for every request */
};

struct dt_header_text;

/* Is name (len bytes) other (olen bytes), case-insensitively? Names are
 * compared dozens of times for every request, and their lengths, or else
 * their first letters, differ for nearly every pair: those go first. */
static inline bool dt_name_is(const char *name, size_t len, const char *other, size_t olen)
{
	return len == olen && (!len || ((name[0] | 0x20) == (other[0] | 0x20) &&
					strncasecmp(name, other, len) == 0));
}

#define DT_NAME_IS(name, len, lit) dt_name_is(name, len, lit, sizeof(lit) - 1)

struct dt_headers {
	struct dt_header *v;
	size_t n, cap;
	struct dt_header_text *text;  /* the fields' names and values, in blocks */
	bool fields_in_text;          /* v is in the first of them: not freed alone */
};

/* Append a field; returns 0 or -ENOMEM. */
int dt_headers_add(struct dt_headers *h, const char *name, size_t name_len,
		   const char *value, size_t value_len);
int dt_headers_add_str(struct dt_headers *h, const char *name, const char *value);
/* Replace every field of that name by one (appended when absent). */
int dt_headers_set(struct dt_headers *h, const char *name, const char *value);
/* The first value of that name, or NULL. */
const char *dt_headers_get(const struct dt_headers *h, const char *name);
/* Remove every field of that name; returns how many. */
size_t dt_headers_del(struct dt_headers *h, const char *name);
/* Does a comma-separated field of that name hold the token (case-insensitive)? */
bool dt_headers_has_token(const struct dt_headers *h, const char *name, const char *token);
int dt_headers_copy(struct dt_headers *dst, const struct dt_headers *src);
void dt_headers_free(struct dt_headers *h);

/* Hop-by-hop fields (RFC 9110 7.6.1), never forwarded: Connection and the
 * fields it names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding,
 * Upgrade. */
int dt_headers_strip_hop_by_hop(struct dt_headers *h);
/* Every Connection field of h, copied into conn, when one of them names a
 * field h has besides those always hop-by-hop; conn stays empty otherwise
 * (the usual "keep-alive"), so that no field needs looking up in it. The
 * caller frees conn, also after a failure. */
int dt_headers_connection_named(const struct dt_headers *h, struct dt_headers *conn);
/* Is a field of that name (len bytes) one of them: always, or named (blank-
 * or comma-separated) by a Connection field of conn? */
bool dt_headers_hop_by_hop(const struct dt_headers *conn, const char *name, size_t len);

#endif
