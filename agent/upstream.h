/* SPDX-License-Identifier: MIT */
/*
 * The proxy's upstream client: HTTP(S) requests to providers on the agent's
 * libevent loop, through its own HTTP/1.1 client or, for name resolution,
 * first contact and HTTP/2, a libcurl multi handle. Connections are
 * pooled and reused, TLS is always verified, HTTP/2 is used where the server
 * offers it, and every socket carries the agent's SO_MARK so the connect hook
 * never redirects the proxy into itself. Responses stream to the caller as
 * they arrive, with backpressure (dt_fetch_pause). See docs/upstream.md.
 *
 * Everything runs on the loop's thread. Callbacks are never called from
 * inside a dt_* call of this API, only from the event loop.
 */
#ifndef DT_UPSTREAM_H
#define DT_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "headers.h"

struct event_base;
struct dt_upstream;

struct dt_upstream_opts {
	uint32_t mark;                 /* SO_MARK on every upstream socket (0: none) */
	const char *ca_bundle;         /* NULL: system trust store; else a PEM file (tests) */
	unsigned connect_timeout_ms;   /* TCP + TLS connect (0: libcurl's default) */
	long max_host_connections;     /* per host pool bound (0: libcurl default) */
	bool http11_only;              /* never offer HTTP/2: every endpoint is the own client's */
};

/* Returns NULL with a reason in err on failure. */
struct dt_upstream *dt_upstream_new(struct event_base *base, const struct dt_upstream_opts *o,
				    char *err, size_t errlen);
/* Cancels every fetch, no callbacks. Not from inside a fetch callback. */
void dt_upstream_free(struct dt_upstream *u);
/* New options (a reload), for fetches started from now on; libcurl pools
 * connections per TLS configuration, so a new CA bundle gets new ones. */
int dt_upstream_set_opts(struct dt_upstream *u, const struct dt_upstream_opts *o);

enum dt_fetch_error {
	DT_FETCH_OK = 0,
	DT_FETCH_CONNECT,      /* resolve, refused, unreachable, connect timeout */
	DT_FETCH_TLS,          /* handshake or verification failed */
	DT_FETCH_RESET,        /* connection reset / closed before the response ended */
	DT_FETCH_TIMEOUT,      /* total timeout */
	DT_FETCH_PROTOCOL,     /* malformed response */
	DT_FETCH_INTERNAL,
};

struct dt_fetch;

struct dt_fetch_req {
	const char *method;            /* "POST", "GET" */
	const char *url;               /* https://api.groq.com/openai/v1/chat/completions */
	/* Sent as given (the caller sets auth); Host, Content-Length,
	 * Transfer-Encoding, Connection and Expect are curl's and are dropped. */
	const struct dt_headers *headers;
	const void *body;              /* copied: the caller may free it on return */
	size_t body_len;
	unsigned total_timeout_ms;     /* 0: none */
};

struct dt_fetch_ops {
	/* Status and headers of the final response (1xx are skipped), once;
	 * h is valid during the call only. */
	void (*head)(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h);
	/* Body bytes as they arrive (de-chunked by libcurl; content codings untouched). */
	void (*data)(void *ctx, struct dt_fetch *f, const void *buf, size_t len);
	/* The end: DT_FETCH_OK after the whole body (errmsg ""), else what failed
	 * (errmsg from libcurl's error buffer). The fetch is freed right after
	 * this returns. */
	void (*done)(void *ctx, struct dt_fetch *f, enum dt_fetch_error e, const char *errmsg);
};

/* Start a request. Returns NULL with a reason in err when it cannot start;
 * otherwise exactly one done() follows, unless the fetch is cancelled. */
struct dt_fetch *dt_fetch_start(struct dt_upstream *u, const struct dt_fetch_req *req,
				const struct dt_fetch_ops *ops, void *ctx, char *err, size_t errlen);
/* Backpressure: stop / resume delivering data. Safe from inside callbacks.
 * Held bytes are delivered, in order, from the loop after the resume. */
void dt_fetch_pause(struct dt_fetch *f, bool paused);
/* Abort now; no further callback. Safe from inside any callback. */
void dt_fetch_cancel(struct dt_fetch *f);
/* Was the connection reused from the pool? Meaningful from head() on. */
bool dt_fetch_reused_connection(const struct dt_fetch *f);
/* Which transport carries it: "http/1.1" (the own client) or "libcurl". */
const char *dt_fetch_transport(const struct dt_fetch *f);
const char *dt_fetch_error_str(enum dt_fetch_error e);

#endif /* DT_UPSTREAM_H */
