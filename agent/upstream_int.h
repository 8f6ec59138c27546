/* SPDX-License-Identifier: MIT */
/*
 * Inside the upstream client (upstream.h): one API, two transports.
 *
 * - upstream_h1.c, the own HTTP/1.1 client on the event loop: pooled
 *   keep-alive connections per endpoint (scheme, host, port), raw OpenSSL on
 *   non-blocking sockets, responses read with agent/h1resp.c. It serves an
 *   endpoint once it is known to speak HTTP/1.1 and its address is known.
 * - upstream_curl.c, libcurl's multi interface: name resolution, the first
 *   requests to an endpoint (whose ALPN answer and address it reports to
 *   the own client), and every request to an endpoint that chose HTTP/2.
 *
 * upstream.c picks the transport of each fetch (docs/upstream.md).
 */
#ifndef DT_UPSTREAM_INT_H
#define DT_UPSTREAM_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

struct event_base;

enum dt_transport { DT_TRANSPORT_CURL, DT_TRANSPORT_H1 };

/* The start of every transport's fetch. */
struct dt_fetch {
	enum dt_transport transport;
};

/* A request field the transport writes itself, from the URL and the body,
 * or that concerns one hop: the caller's is left out. */
bool dt_upstream_owned_field(const char *name, size_t len);

/* ---- libcurl (upstream_curl.c) ---- */
struct dt_curl;
struct dt_h1_endpoint;

struct dt_curl *dt_curl_new(struct event_base *base, const struct dt_upstream_opts *o);
void dt_curl_free(struct dt_curl *c);
int dt_curl_set_opts(struct dt_curl *c, const struct dt_upstream_opts *o);
/* The PEM file (else the hash directory) libcurl trusts by default; NULL
 * when it has none. */
const char *dt_curl_default_ca_file(const struct dt_curl *c);
const char *dt_curl_default_ca_dir(const struct dt_curl *c);
/* learn: the own client's endpoint of this URL, told what the connection
 * spoke and where it went (dt_h1_learn), or NULL. */
struct dt_fetch *dt_curl_start(struct dt_curl *c, const struct dt_fetch_req *req,
			       const struct dt_fetch_ops *ops, void *ctx,
			       struct dt_h1_endpoint *learn, char *err, size_t errlen);
void dt_curl_pause(struct dt_fetch *f, bool paused);
void dt_curl_cancel(struct dt_fetch *f);
bool dt_curl_reused(const struct dt_fetch *f);

/* ---- the own HTTP/1.1 client (upstream_h1.c) ---- */
struct dt_h1;

struct dt_h1_trust {
	const char *file;          /* PEM bundle, or NULL */
	const char *dir;           /* hash directory, when no file */
};

struct dt_h1 *dt_h1_new(struct event_base *base, const struct dt_upstream_opts *o,
			const struct dt_h1_trust *trust, char *err, size_t errlen);
void dt_h1_free(struct dt_h1 *h);
/* New options; a change of trust or mark closes the idle connections and
 * forgets the TLS sessions. */
int dt_h1_set_opts(struct dt_h1 *h, const struct dt_upstream_opts *o,
		   const struct dt_h1_trust *trust, char *err, size_t errlen);
/* The endpoint of an http(s) URL (made on first sight), and in *path where
 * the URL's path starts; NULL when the own client cannot serve it (not
 * http(s), user info, too many endpoints). */
struct dt_h1_endpoint *dt_h1_endpoint(struct dt_h1 *h, const char *url, const char **path);
/* Can the own client carry a request to it now: HTTP/1.1 learned, and an
 * idle connection or a fresh address. */
bool dt_h1_ready(const struct dt_h1_endpoint *ep);
/* What a libcurl transfer found: the address it connected to and whether
 * the connection spoke HTTP/1.1 (else HTTP/2: the endpoint stays libcurl's). */
void dt_h1_learn(struct dt_h1_endpoint *ep, const char *ip, long port, bool http11);
/* req to ep (its URL's path: path, from dt_h1_endpoint). */
struct dt_fetch *dt_h1_start(struct dt_h1_endpoint *ep, const char *path,
			     const struct dt_fetch_req *req, const struct dt_fetch_ops *ops,
			     void *ctx, char *err, size_t errlen);
void dt_h1_pause(struct dt_fetch *f, bool paused);
void dt_h1_cancel(struct dt_fetch *f);
bool dt_h1_reused(const struct dt_fetch *f);

#endif /* DT_UPSTREAM_INT_H */
