/* SPDX-License-Identifier: MIT */
/*
 * The downstream HTTP/1.1 server side of the proxy, on a socket of its own
 * (plain, or TLS after termination: the layer does the handshake), parsing
 * with libhttp-parser.
 *
 * Requests are handed over one at a time, whole (head and de-chunked
 * body): the next pipelined request waits until the current response has
 * ended. Errors the layer answers itself (400, 408, 413, 431, 501, 505) are
 * shaped like the errors of the provider family the application called.
 *
 * Callbacks into the handler never run from inside a dt_http_* call: they
 * come from the event loop only, so a handler may answer, end, or free the
 * connection from any callback without re-entering itself.
 */
#ifndef DT_HTTP_SERVER_H
#define DT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "detour.h"
#include "headers.h"

struct event_base;
struct evbuffer;
struct ssl_st;
struct dt_http_conn;

/* Output above the high-water mark is a backlog (dt_http_backlogged); the
 * drain callback runs once it is back under the low-water mark. */
#define DT_HTTP_HIGH_WATER (256 * 1024)
#define DT_HTTP_LOW_WATER  (64 * 1024)

/* Zero disables a limit. The head size counts the request target and the
 * header names and values, plus 4 bytes of framing per field. */
struct dt_http_limits {
	size_t max_header_bytes;       /* request line + headers; 431 beyond */
	size_t max_headers;            /* 431 beyond */
	size_t max_body_bytes;         /* 413 beyond (also at Expect: 100-continue time) */
	unsigned idle_timeout_ms;      /* keep-alive idle between requests: close silently */
	unsigned request_timeout_ms;   /* whole request (head + body) must arrive within: 408 */
};

struct dt_http_request {
	char method[16];
	char *target;                  /* origin-form "/v1/chat/completions?x" */
	int http_major, http_minor;
	struct dt_headers headers;     /* as received, in order */
	struct evbuffer *body;         /* de-chunked, complete */
	bool keep_alive;               /* after this request */
};

void dt_http_request_free(struct dt_http_request *req);

struct dt_http_conn_ops {
	/* A complete request (head and body). Ownership of req passes to the
	 * handler. The handler answers with dt_http_respond_*; the next
	 * pipelined request is dispatched only after dt_http_respond_end(). */
	void (*request)(void *ctx, struct dt_http_conn *c, struct dt_http_request *req);
	/* The connection is gone (peer closed, error, timeout, or after an
	 * error response that closes): drop every reference to c; c is freed
	 * right after this returns (do not free it here). */
	void (*closed)(void *ctx, struct dt_http_conn *c);
};

/* Serves the connected, non-blocking socket fd, over TLS when ssl is given
 * (a server session not yet handshaken: the layer binds it to fd and does
 * the handshake). Takes ownership of both, also on failure (NULL: closed and
 * freed). family shapes the errors the layer produces itself (dt_error_body
 * in agent/errors.h). */
struct dt_http_conn *dt_http_conn_new(struct event_base *base, int fd, struct ssl_st *ssl,
				      enum dt_family family, const struct dt_http_limits *lim,
				      const struct dt_http_conn_ops *ops, void *ctx);
/* Close at once (no callback). */
void dt_http_conn_free(struct dt_http_conn *c);

/*
 * The response to the request being served; each returns 0 or a negative
 * errno (-EINVAL out of order, -EPIPE once the connection broke, -ENOMEM).
 * content_length < 0: chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
 * Hop-by-hop fields in h are dropped; Content-Length / Transfer-Encoding /
 * Connection are the layer's. Bodies of HEAD, 204 and 304 responses are
 * dropped.
 */
int dt_http_respond_head(struct dt_http_conn *c, int status, const struct dt_headers *h,
			 int64_t content_length);
/* The same with fields relayed from elsewhere, written without a copy:
 * those of h less the names in drop (NULL-terminated; may be NULL) and
 * those extra sets, then extra's (may be NULL). */
int dt_http_respond_head_with(struct dt_http_conn *c, int status, const struct dt_headers *h,
			      const char *const *drop, const struct dt_headers *extra,
			      int64_t content_length);
int dt_http_respond_body(struct dt_http_conn *c, const void *data, size_t len);
/* A length-delimited body that ends short closes the connection: the client
 * must not take it as complete. */
int dt_http_respond_end(struct dt_http_conn *c);
/* A whole error response in the family's shape, e.g. 502 when every
 * upstream failed; extra headers may be NULL. */
int dt_http_respond_error(struct dt_http_conn *c, int status, const char *message,
			  const struct dt_headers *extra);
/* After a partial response: end the body with what the caller wrote last
 * (e.g. an SSE error event) and close the connection (last chunk NOT sent
 * for chunked bodies when `broken`: the client must see the stream as not
 * complete). */
void dt_http_respond_abort(struct dt_http_conn *c, bool broken);

/* Backpressure: output above DT_HTTP_HIGH_WATER. The handler stops its
 * producer and is called back once the output has drained below
 * DT_HTTP_LOW_WATER. The callback belongs to the response being served and
 * is forgotten when it ends. */
bool dt_http_backlogged(const struct dt_http_conn *c);
void dt_http_set_drain_cb(struct dt_http_conn *c, void (*cb)(void *arg), void *arg);

/* Requests handed to the handler on this connection so far, the one being
 * served included (for logs). */
unsigned dt_http_requests_served(const struct dt_http_conn *c);

#endif
