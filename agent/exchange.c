// SPDX-License-Identifier: MIT
/*
 * One request through the proxy: the router's plan of attempts, each attempt
 * re-derived from the client's original request (URL, credential, model),
 * failover before the commit point (the first byte sent to the client), and
 * after it, streams that break, stall or end without their end marker are
 * ended with an error in the client's API shape.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "bpfobj.h"
#include "errors.h"
#include "family.h"
#include "log.h"
#include "proxy_int.h"
#include "router.h"
#include "upstream.h"

#define MAX_ATTEMPTS    8
/* An error body is held (to classify it, or to relay it as is) up to this. */
#define HELD_MAX        (64 * 1024)
#define NS_PER_MS       1000000ull

struct exchange {
	struct session *s;
	struct dt_http_request *req;      /* the client's original, never modified */
	json_t *body;                     /* its JSON body, NULL if not JSON */
	const char *model;                /* the model it names (in body), NULL if none */
	struct dt_attempt plan[MAX_ATTEMPTS];
	char models[MAX_ATTEMPTS][DT_MODEL_LEN]; /* the plan's models, copied */
	size_t n_plan, next, cur;
	int context_failed;               /* index of an attempt refused for its window, -1 */
	struct dt_fetch *fetch;
	uint64_t started_ns;
	int status;                       /* of the current attempt's answer */
	int held_status;                  /* a 4xx being held, its fields and body */
	struct dt_headers held_headers;
	struct evbuffer *held;
	bool committed, sse, end_seen;
	bool reported;                    /* the router already heard of this attempt */
	unsigned failures, rate_limited;  /* attempts failed, of which by 429 */
	char tail[64];                    /* end of the stream so far, for its end marker */
	size_t tail_len;
	struct evbuffer *tried;           /* "openai=503, groq=reset"; NULL until one fails */
};

static const struct pprovider *provider(const struct exchange *ex, uint32_t id)
{
	return &ex->s->conf->providers[id];
}

static const struct pprovider *original(const struct exchange *ex)
{
	return provider(ex, ex->s->provider_id);
}

static size_t tried_len(const struct exchange *ex)
{
	return ex->tried ? evbuffer_get_length(ex->tried) : 0;
}

/* Most requests are answered by their first attempt: the buffer is made
 * when one is not (a note lost to a failed allocation only shortens the
 * x-detour-tried field). */
static void note_tried(struct exchange *ex, uint32_t provider_id, const char *what)
{
	if (!ex->tried && !(ex->tried = evbuffer_new()))
		return;
	evbuffer_add_printf(ex->tried, "%s%s=%s", tried_len(ex) ? ", " : "",
			    provider(ex, provider_id)->name, what);
}

static void exchange_free(struct exchange *ex)
{
	if (ex->fetch)
		dt_fetch_cancel(ex->fetch);
	/* the session's, kept for its next request (NULL if making them failed) */
	if (ex->s->ttfb_timer)
		evtimer_del(ex->s->ttfb_timer);
	if (ex->s->idle_timer)
		evtimer_del(ex->s->idle_timer);
	if (ex->held)
		evbuffer_free(ex->held);
	if (ex->tried)
		evbuffer_free(ex->tried);
	dt_headers_free(&ex->held_headers);
	json_decref(ex->body);
	dt_http_request_free(ex->req);
	free(ex);
}

/* The session no longer serves this exchange: the next request may come. */
static struct dt_http_conn *detach(struct exchange *ex)
{
	struct dt_http_conn *http = ex->s->http;

	ex->s->ex = NULL;
	exchange_free(ex);
	return http;
}

void exchange_cancel(struct exchange *ex)
{
	ex->s->ex = NULL;
	exchange_free(ex);
}

static void report(struct exchange *ex, enum dt_blame blame, uint64_t retry_after_ms)
{
	dt_router_report(ex->s->p->router, &ex->plan[ex->cur], blame, retry_after_ms, dt_now_ns());
}

static void add_detour_headers(struct exchange *ex, struct dt_headers *h, bool answered)
{
	if (answered) {
		const struct dt_attempt *a = &ex->plan[ex->cur];

		dt_headers_set(h, "x-detour-provider", provider(ex, a->provider_id)->name);
		if (*a->model)
			dt_headers_set(h, "x-detour-model", a->model);
	}
	if (tried_len(ex)) {
		size_t n = tried_len(ex);
		char *tried = strndup((const char *)evbuffer_pullup(ex->tried, (ev_ssize_t)n), n);

		if (tried)
			dt_headers_set(h, "x-detour-tried", tried);
		free(tried);
	}
}

/* ---- the final answers -------------------------------------------------------- */

/* Relay the held 4xx of the current attempt as the answer. */
static void answer_held(struct exchange *ex)
{
	struct dt_headers h = {0};
	struct evbuffer *body = ex->held;
	int status = ex->held_status;
	struct dt_http_conn *http;
	size_t n = evbuffer_get_length(body);

	dt_headers_copy(&h, &ex->held_headers);
	dt_headers_del(&h, "content-length");
	add_detour_headers(ex, &h, true);
	ex->held = NULL;
	http = detach(ex);
	dt_http_respond_head(http, status, &h, (int64_t)n);
	dt_http_respond_body(http, evbuffer_pullup(body, (ev_ssize_t)n), n);
	evbuffer_free(body);
	dt_headers_free(&h);
	dt_http_respond_end(http);
}

/* Nothing could answer: an error in the client's provider's shape. */
static void answer_failed(struct exchange *ex, const char *why)
{
	struct dt_headers h = {0};
	char msg[1024];
	int status = ex->failures && ex->failures == ex->rate_limited ? 429 : 503;
	size_t n = tried_len(ex);
	struct dt_http_conn *http;

	if (ex->held) {
		answer_held(ex); /* the provider's own words say more than ours */
		return;
	}
	snprintf(msg, sizeof(msg), "detour: no provider could answer this request (%s%s%.*s)",
		 why, n ? "; tried " : "", (int)n, n ? (const char *)evbuffer_pullup(ex->tried, -1) : "");
	add_detour_headers(ex, &h, false);
	log_info("proxy: %s %s: %s", ex->req->method, ex->req->target, msg);
	http = detach(ex);
	dt_http_respond_error(http, status, msg, &h);
	dt_headers_free(&h);
}

/* After the commit point: the answer cannot be replaced any more. End it
 * so the client sees an error, never a truncated success. */
static void answer_broken(struct exchange *ex, const char *why)
{
	struct evbuffer *event = evbuffer_new();
	struct dt_http_conn *http;
	char msg[512];

	log_warn("proxy: stream from %s broke after the first byte: %s",
		 provider(ex, ex->plan[ex->cur].provider_id)->name, why);
	report(ex, DT_BLAME_PROVIDER, 0);
	snprintf(msg, sizeof(msg), "detour: the provider's stream broke: %s", why);
	if (event && ex->sse)
		dt_error_event(original(ex)->family, 502, msg, event);
	http = detach(ex);
	if (event && evbuffer_get_length(event))
		dt_http_respond_body(http, evbuffer_pullup(event, -1), evbuffer_get_length(event));
	if (event)
		evbuffer_free(event);
	dt_http_respond_abort(http, true);
}

/* ---- attempts ---------------------------------------------------------------- */

static void next_attempt(struct exchange *ex);

static const struct dt_fetch_ops fetch_ops;

/* The URL of the client's request on attempt a's provider; NULL when its
 * path is not under the original provider's API. */
static char *attempt_url(const struct exchange *ex, const struct dt_attempt *a)
{
	const struct pprovider *from = original(ex), *to = provider(ex, a->provider_id);
	const char *target = ex->req->target;
	size_t plen = strlen(from->api_path);
	char *url = NULL;
	int n;

	if (a->provider_id == ex->s->provider_id) {
		n = from->port == 443 ? asprintf(&url, "https://%s%s", ex->s->sni, target)
				      : asprintf(&url, "https://%s:%u%s", ex->s->sni, from->port, target);
		return n < 0 ? NULL : url;
	}
	if (strncmp(target, from->api_path, plen) != 0 ||
	    (target[plen] != '/' && target[plen] != '?' && target[plen] != '\0'))
		return NULL;
	return asprintf(&url, "%s%s", to->base_url, target + plen) < 0 ? NULL : url;
}

/* The credential attempt a is sent with: NULL keeps the application's own. */
static const char *attempt_key(const struct exchange *ex, const struct dt_attempt *a,
			       bool *missing)
{
	const struct papp *app = ex->s->app;

	*missing = false;
	if (a->provider_id == ex->s->provider_id && a->key_slot == 0)
		return app ? app->keys[a->provider_id] : NULL;
	*missing = !provider(ex, a->provider_id)->key;
	return provider(ex, a->provider_id)->key;
}

/* The body for attempt a: the original, with the model renamed if needed. */
static char *attempt_body(const struct exchange *ex, const struct dt_attempt *a, size_t *len)
{
	json_t *copy;
	char *text;

	if (!ex->body || !ex->model || strcmp(ex->model, a->model) == 0) {
		*len = evbuffer_get_length(ex->req->body);
		text = malloc(*len ? *len : 1);
		if (text)
			evbuffer_copyout(ex->req->body, text, *len);
		return text;
	}
	copy = json_copy(ex->body); /* shallow: only "model" changes */
	if (!copy || json_object_set_new(copy, "model", json_string(a->model))) {
		json_decref(copy);
		return NULL;
	}
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	*len = text ? strlen(text) : 0;
	return text;
}

/* Start attempt i; returns 0, or -1 when it cannot be made (noted). */
static int start_attempt(struct exchange *ex, size_t i)
{
	const struct dt_attempt *a = &ex->plan[i];
	const struct pprovider *to = provider(ex, a->provider_id);
	struct dt_headers h = {0};
	struct timeval ttfb;
	char err[256], *url = NULL, *body = NULL;
	const char *key;
	bool missing;
	size_t len = 0;
	int rc = -1;

	if (to->family != original(ex)->family) {
		note_tried(ex, a->provider_id, "other-api-family");
		return -1;
	}
	key = attempt_key(ex, a, &missing);
	if (missing) {
		note_tried(ex, a->provider_id, "no-key");
		return -1;
	}
	url = attempt_url(ex, a);
	if (!url) {
		note_tried(ex, a->provider_id, "path-outside-api");
		return -1;
	}
	body = attempt_body(ex, a, &len);
	if (!body || dt_headers_copy(&h, &ex->req->headers))
		goto out;
	dt_headers_strip_hop_by_hop(&h);
	if (key && dt_family_sign(to->family, &h, key))
		goto out;
	ex->cur = i;
	ex->status = 0;
	log_debug("proxy: %s %s: attempt %zu: %s model %s", ex->req->method, ex->req->target,
		  i + 1, to->name, *a->model ? a->model : "(unchanged)");
	ex->fetch = dt_fetch_start(ex->s->p->upstream, &(struct dt_fetch_req){
			.method = ex->req->method, .url = url, .headers = &h,
			.body = body, .body_len = len,
		}, &fetch_ops, ex, err, sizeof(err));
	if (!ex->fetch) {
		note_tried(ex, a->provider_id, "internal");
		log_error("proxy: %s", err);
		goto out;
	}
	ttfb.tv_sec = ex->s->conf->first_byte_timeout_ms / 1000;
	ttfb.tv_usec = (ex->s->conf->first_byte_timeout_ms % 1000) * 1000;
	evtimer_add(ex->s->ttfb_timer, &ttfb);
	rc = 0;
out:
	free(url);
	free(body);
	dt_headers_free(&h);
	return rc;
}

static void next_attempt(struct exchange *ex)
{
	struct dt_router *router = ex->s->p->router;

	while (ex->next < ex->n_plan) {
		size_t i = ex->next++;

		if (ex->context_failed >= 0 &&
		    !dt_router_larger_context(router, &ex->plan[ex->context_failed], &ex->plan[i]))
			continue;
		if (i > 0 && !dt_router_retry_take(router, dt_now_ns())) {
			answer_failed(ex, "retry budget exhausted");
			return;
		}
		if (start_attempt(ex, i) == 0)
			return;
	}
	answer_failed(ex, "every member failed");
}

/* A failure before the commit point: blame, note, and move on. */
static void attempt_failed(struct exchange *ex, enum dt_blame blame, uint64_t retry_after_ms,
			   const char *what)
{
	evtimer_del(ex->s->ttfb_timer);
	if (ex->fetch) {
		dt_fetch_cancel(ex->fetch);
		ex->fetch = NULL;
	}
	log_info("proxy: %s %s: %s failed (%s)", ex->req->method, ex->req->target,
		 provider(ex, ex->plan[ex->cur].provider_id)->name, what);
	ex->failures++;
	if (blame == DT_BLAME_RATE_LIMIT)
		ex->rate_limited++;
	report(ex, blame, retry_after_ms);
	note_tried(ex, ex->plan[ex->cur].provider_id, what);
	next_attempt(ex);
}

/* ---- upstream callbacks --------------------------------------------------------- */

static uint64_t retry_after_ms(const struct dt_headers *h)
{
	const char *v = dt_headers_get(h, "retry-after-ms");

	if (v)
		return strtoull(v, NULL, 10);
	v = dt_headers_get(h, "retry-after");
	return v ? strtoull(v, NULL, 10) * 1000 : 0; /* an HTTP date reads as 0: unknown */
}

static void on_drain(void *arg)
{
	struct exchange *ex = arg;

	if (ex->fetch)
		dt_fetch_pause(ex->fetch, false);
}

static void arm_idle(struct exchange *ex)
{
	struct timeval tv = { .tv_sec = ex->s->conf->stream_idle_timeout_ms / 1000,
			      .tv_usec = (ex->s->conf->stream_idle_timeout_ms % 1000) * 1000 };

	evtimer_add(ex->s->idle_timer, &tv);
}

static void commit(struct exchange *ex, int status, const struct dt_headers *up)
{
	struct dt_headers h = {0};
	const char *type = dt_headers_get(up, "content-type");
	const char *clen = dt_headers_get(up, "content-length");
	int64_t length = -1;

	ex->committed = true;
	ex->sse = type && strncasecmp(type, "text/event-stream", 17) == 0;
	if (clen && !ex->sse)
		length = strtoll(clen, NULL, 10);
	dt_headers_copy(&h, up);
	dt_headers_strip_hop_by_hop(&h);
	dt_headers_del(&h, "content-length");
	add_detour_headers(ex, &h, true);
	dt_http_respond_head(ex->s->http, status, &h, length);
	dt_headers_free(&h);
	dt_http_set_drain_cb(ex->s->http, on_drain, ex);
	if (ex->sse)
		arm_idle(ex);
}

static void on_head(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h)
{
	struct exchange *ex = ctx;
	enum dt_blame blame;
	char what[16];

	(void)f;
	evtimer_del(ex->s->ttfb_timer);
	ex->status = status;
	if (status >= 200 && status < 300) {
		commit(ex, status, h);
		return;
	}
	blame = dt_router_classify_status(status, NULL, 0);
	if ((blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) && ex->next >= ex->n_plan) {
		/* nowhere else to go: the provider's own answer says most */
		report(ex, blame, retry_after_ms(h));
		ex->reported = true;
		commit(ex, status, h);
		return;
	}
	if (blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) {
		snprintf(what, sizeof(what), "%d", status);
		attempt_failed(ex, blame, retry_after_ms(h), what);
		return;
	}
	/* the body tells whom a 4xx blames: hold it until the end */
	ex->held_status = status;
	dt_headers_free(&ex->held_headers);
	dt_headers_copy(&ex->held_headers, h);
	if (!ex->held)
		ex->held = evbuffer_new();
	else
		evbuffer_drain(ex->held, evbuffer_get_length(ex->held));
}

/* Has the family's end-of-stream marker passed by? It may straddle reads,
 * so the last bytes of each read are kept to be searched with the next. */
static void watch_end(struct exchange *ex, const char *buf, size_t len)
{
	const char *marker = dt_family_info(original(ex)->family)->stream_end;
	size_t m = marker ? strlen(marker) : 0, head, keep;
	char window[2 * sizeof(ex->tail)];

	if (!marker || ex->end_seen)
		return;
	head = len < m - 1 ? len : m - 1;
	memcpy(window, ex->tail, ex->tail_len);
	memcpy(window + ex->tail_len, buf, head);
	if (memmem(window, ex->tail_len + head, marker, m) || memmem(buf, len, marker, m)) {
		ex->end_seen = true;
		return;
	}
	/* the new tail: the last m-1 bytes of what came so far */
	if (len >= m - 1) {
		memcpy(ex->tail, buf + len - (m - 1), m - 1);
		ex->tail_len = m - 1;
		return;
	}
	keep = ex->tail_len + len > m - 1 ? m - 1 : ex->tail_len + len;
	memmove(window, window + ex->tail_len + len - keep, keep);
	memcpy(ex->tail, window, keep);
	ex->tail_len = keep;
}

static void on_data(void *ctx, struct dt_fetch *f, const void *buf, size_t len)
{
	struct exchange *ex = ctx;

	if (!ex->committed) {
		if (ex->held && evbuffer_get_length(ex->held) + len <= HELD_MAX)
			evbuffer_add(ex->held, buf, len);
		return;
	}
	if (ex->sse) {
		watch_end(ex, buf, len);
		arm_idle(ex);
	}
	dt_http_respond_body(ex->s->http, buf, len);
	if (dt_http_backlogged(ex->s->http))
		dt_fetch_pause(f, true);
}

static void finish_ok(struct exchange *ex)
{
	const char *marker = dt_family_info(original(ex)->family)->stream_end;
	struct dt_http_conn *http;

	if (ex->sse && marker && !ex->end_seen) {
		answer_broken(ex, "the stream ended without its end marker");
		return;
	}
	if (!ex->reported)
		report(ex, DT_BLAME_NONE, 0);
	log_debug("proxy: %s %s -> %s %s: %d (%llu ms)", ex->req->method, ex->req->target,
		  provider(ex, ex->plan[ex->cur].provider_id)->name, ex->plan[ex->cur].model,
		  ex->status, (unsigned long long)((dt_now_ns() - ex->started_ns) / NS_PER_MS));
	http = detach(ex);
	dt_http_respond_end(http);
}

static void held_done(struct exchange *ex)
{
	size_t n = evbuffer_get_length(ex->held);
	const char *body = (const char *)evbuffer_pullup(ex->held, (ev_ssize_t)n);
	enum dt_blame blame = dt_router_classify_status(ex->held_status, body, n);
	char what[16];

	snprintf(what, sizeof(what), "%d", ex->held_status);
	switch (blame) {
	case DT_BLAME_REQUEST:
	case DT_BLAME_NONE:
		report(ex, DT_BLAME_REQUEST, 0);
		answer_held(ex); /* the request is at fault: never retried elsewhere */
		return;
	case DT_BLAME_CONTEXT:
		ex->context_failed = (int)ex->cur;
		break;
	case DT_BLAME_KEY:
	case DT_BLAME_PROVIDER:
	case DT_BLAME_RATE_LIMIT:
		break;
	}
	attempt_failed(ex, blame, retry_after_ms(&ex->held_headers), what);
}

static void on_done(void *ctx, struct dt_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	struct exchange *ex = ctx;

	(void)f;
	ex->fetch = NULL;
	evtimer_del(ex->s->ttfb_timer);
	if (ex->committed) {
		if (e == DT_FETCH_OK)
			finish_ok(ex);
		else
			answer_broken(ex, errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
		return;
	}
	if (e == DT_FETCH_OK && ex->held) {
		held_done(ex);
		return;
	}
	log_debug("proxy: %s: %s", provider(ex, ex->plan[ex->cur].provider_id)->name,
		  errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
	attempt_failed(ex, DT_BLAME_PROVIDER, 0, dt_fetch_error_str(e));
}

static const struct dt_fetch_ops fetch_ops = {
	.head = on_head,
	.data = on_data,
	.done = on_done,
};

/* The timers are the session's: they are pending only while s->ex is. */
static void on_ttfb_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	attempt_failed(s->ex, DT_BLAME_PROVIDER, 0, "first-byte-timeout");
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	answer_broken(s->ex, "no event within the stream idle timeout");
}

/* ---- start ----------------------------------------------------------------------- */

static void read_model(struct exchange *ex)
{
	size_t n = evbuffer_get_length(ex->req->body);
	const char *text = n ? (const char *)evbuffer_pullup(ex->req->body, (ev_ssize_t)n) : NULL;
	json_t *model;

	if (!text)
		return;
	ex->body = json_loadb(text, n, 0, NULL);
	model = json_is_object(ex->body) ? json_object_get(ex->body, "model") : NULL;
	ex->model = json_is_string(model) ? json_string_value(model) : NULL;
}

void exchange_start(struct session *s, struct dt_http_request *req)
{
	struct dt_proxy *p = s->p;
	struct exchange *ex = calloc(1, sizeof(*ex));
	uint64_t now = dt_now_ns();

	if (!ex) {
		dt_http_request_free(req);
		dt_http_respond_error(s->http, 500, "detour: out of memory", NULL);
		return;
	}
	ex->s = s;
	ex->req = req;
	ex->started_ns = now;
	ex->context_failed = -1;
	s->ex = ex;
	if (!s->ttfb_timer)
		s->ttfb_timer = evtimer_new(p->base, on_ttfb_timeout, s);
	if (!s->idle_timer)
		s->idle_timer = evtimer_new(p->base, on_idle_timeout, s);
	if (!s->ttfb_timer || !s->idle_timer) {
		struct dt_http_conn *http = detach(ex);

		dt_http_respond_error(http, 500, "detour: out of memory", NULL);
		return;
	}
	read_model(ex);
	dt_router_request(p->router, now);
	ex->n_plan = dt_router_plan(p->router, s->provider_id, ex->model ? ex->model : "",
				    p->requests++, now, ex->plan, MAX_ATTEMPTS);
	for (size_t i = 0; i < ex->n_plan; i++) {
		/* the router's strings live until the next reload: keep copies */
		snprintf(ex->models[i], sizeof(ex->models[i]), "%s", ex->plan[i].model);
		ex->plan[i].model = ex->models[i];
	}
	next_attempt(ex);
}
