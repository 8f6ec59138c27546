// SPDX-License-Identifier: MIT
/*
 * The upstream client's front: one API (upstream.h), two transports
 * (upstream_int.h). A fetch goes to the own HTTP/1.1 client when its
 * endpoint is known to speak HTTP/1.1 and can be reached without a new name
 * resolution; otherwise to libcurl, which resolves, negotiates through ALPN
 * and tells the own client what it found. See docs/upstream.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "upstream_int.h"

struct dt_upstream {
	struct dt_curl *curl;
	struct dt_h1 *h1;
};

/* The own client trusts what libcurl trusts: the configured bundle, else
 * libcurl's default file (its directory only when it has no file). */
static struct dt_h1_trust trust_of(const struct dt_upstream *u, const struct dt_upstream_opts *o)
{
	const char *file = o->ca_bundle ? o->ca_bundle : dt_curl_default_ca_file(u->curl);

	return (struct dt_h1_trust){
		.file = file,
		.dir = file ? NULL : dt_curl_default_ca_dir(u->curl),
	};
}

struct dt_upstream *dt_upstream_new(struct event_base *base, const struct dt_upstream_opts *o,
				    char *err, size_t errlen)
{
	struct dt_upstream *u = calloc(1, sizeof(*u));
	struct dt_h1_trust trust;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->curl = dt_curl_new(base, o);
	if (!u->curl) {
		snprintf(err, errlen, "cannot set up the libcurl multi handle");
		goto fail;
	}
	trust = trust_of(u, o);
	u->h1 = dt_h1_new(base, o, &trust, err, errlen);
	if (!u->h1)
		goto fail;
	return u;
fail:
	dt_upstream_free(u);
	return NULL;
}

void dt_upstream_free(struct dt_upstream *u)
{
	if (!u)
		return;
	/* libcurl's fetches point at the own client's endpoints: first */
	dt_curl_free(u->curl);
	dt_h1_free(u->h1);
	free(u);
}

int dt_upstream_set_opts(struct dt_upstream *u, const struct dt_upstream_opts *o)
{
	struct dt_h1_trust trust;
	char err[256];

	if (dt_curl_set_opts(u->curl, o))
		return -1;
	trust = trust_of(u, o);
	if (dt_h1_set_opts(u->h1, o, &trust, err, sizeof(err))) {
		log_error("upstream: %s", err);
		return -1;
	}
	return 0;
}

struct dt_fetch *dt_fetch_start(struct dt_upstream *u, const struct dt_fetch_req *req,
				const struct dt_fetch_ops *ops, void *ctx, char *err, size_t errlen)
{
	const char *path;
	struct dt_h1_endpoint *ep = dt_h1_endpoint(u->h1, req->url, &path);

	if (ep && dt_h1_ready(ep))
		return dt_h1_start(ep, path, req, ops, ctx, err, errlen);
	return dt_curl_start(u->curl, req, ops, ctx, ep, err, errlen);
}

void dt_fetch_pause(struct dt_fetch *f, bool paused)
{
	if (f->transport == DT_TRANSPORT_H1)
		dt_h1_pause(f, paused);
	else
		dt_curl_pause(f, paused);
}

void dt_fetch_cancel(struct dt_fetch *f)
{
	if (f->transport == DT_TRANSPORT_H1)
		dt_h1_cancel(f);
	else
		dt_curl_cancel(f);
}

bool dt_fetch_reused_connection(const struct dt_fetch *f)
{
	return f->transport == DT_TRANSPORT_H1 ? dt_h1_reused(f) : dt_curl_reused(f);
}

const char *dt_fetch_transport(const struct dt_fetch *f)
{
	return f->transport == DT_TRANSPORT_H1 ? "http/1.1" : "libcurl";
}

bool dt_upstream_owned_field(const char *name, size_t len)
{
	return DT_NAME_IS(name, len, "host") || DT_NAME_IS(name, len, "content-length") ||
	       DT_NAME_IS(name, len, "transfer-encoding") || DT_NAME_IS(name, len, "connection") ||
	       DT_NAME_IS(name, len, "expect");
}

const char *dt_fetch_error_str(enum dt_fetch_error e)
{
	switch (e) {
	case DT_FETCH_OK:
		return "ok";
	case DT_FETCH_CONNECT:
		return "connect";
	case DT_FETCH_TLS:
		return "tls";
	case DT_FETCH_RESET:
		return "reset";
	case DT_FETCH_TIMEOUT:
		return "timeout";
	case DT_FETCH_PROTOCOL:
		return "protocol";
	case DT_FETCH_INTERNAL:
		break;
	}
	return "internal";
}
