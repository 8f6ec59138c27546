// SPDX-License-Identifier: MIT
/*
 * One request through the proxy: the router's plan of attempts, each attempt
 * re-derived from the client's original request (URL, credential, model),
 * failover before the commit point (the first byte sent to the client), and
 * after it, streams that break, stall or end without their end marker are
 * ended with an error in the client's API shape.
 *
 * An attempt on a provider of the client's family with the client's model
 * is relayed as it comes. Any other attempt of a generation call goes
 * through the neutral form (xlate.h): the request is emitted in the
 * provider's shape, its answer parsed and emitted in the client's shape with
 * the model the client asked for, so a quality check can look at it before
 * the commit point. A stream is held until its first piece of content.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "apicall.h"
#include "bpfobj.h"
#include "errors.h"
#include "family.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "proxy_int.h"
#include "quality.h"
#include "ratelimit.h"
#include "router.h"
#include "upstream.h"
#include "xlate.h"

#define MAX_ATTEMPTS    8
/* An error body is held (to classify it, or to relay it as is) up to this. */
#define HELD_MAX        (64 * 1024)
/* A whole answer is read to be translated up to this. */
#define ANSWER_MAX      (16 * 1024 * 1024)
#define NS_PER_MS       1000000ull
/* A request in logs: its method and path, never its query, where a Gemini
 * client may carry its key (?key=). */
#define REQ_FMT         "%s %.*s"
#define REQ_ARGS(ex)    (ex)->req->method, (int)strcspn((ex)->req->target, "?"), (ex)->req->target

struct exchange {
	struct session *s;
	struct dt_http_request *req;      /* the client's original, never modified */
	enum dt_family shape;             /* its API: its original provider's family */
	struct dt_apicall call;           /* which call it is */
	struct dt_arena arena;            /* what is read of it: */
	const struct dt_json *body;       /* its JSON body, NULL if not JSON */
	const char *model;                /* the model it names (body or path), NULL if none */
	struct dt_xrequest xreq;          /* in neutral form, parsed on first need: */
	int xreq_state;                   /* 0 not yet, 1 parsed, -1 refused (refusal) */
	char refusal[256];                /* why a member could not be asked, for a 400 */
	uint64_t seed;                    /* the request's number: unique ids, weighted order */
	enum dt_health_mode mode;         /* the plan readmits ejected members (x-detour-health) */
	struct dt_attempt plan[MAX_ATTEMPTS];
	char models[MAX_ATTEMPTS][DT_MODEL_LEN]; /* the plan's models, copied */
	size_t n_plan, next, cur;
	int context_failed;               /* index of an attempt refused for its window, -1 */
	struct dt_fetch *fetch;
	uint64_t started_ns;
	int status;                       /* of the current attempt's answer */
	bool holding;                     /* the current attempt's 4xx is being held */
	int held_status;                  /* the last 4xx held, its fields and body */
	struct dt_headers held_headers;
	struct evbuffer *held;
	bool committed, sse, end_seen;
	bool reported;                    /* the health engine already heard of this attempt */
	uint64_t attempt_started;         /* when the current attempt was sent */
	uint64_t ttft_ns;                 /* ... and its first content came (streams; 0: not yet) */
	uint64_t retry_after_ms;          /* ... its answer's retry-after, parsed (0: none) */
	/* the current attempt's answer, when it goes through the neutral form */
	bool xlate;
	enum dt_family from;              /* the family of the provider answering */
	struct dt_xstream *xs;            /* streamed: its translator */
	struct evbuffer *pending;         /* what waits for the commit point, or the whole answer */
	struct dt_headers answer_headers; /* its head (its status is `status`) */
	enum dt_family held_family;       /* of the provider whose 4xx is held */
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

/* The current attempt's translation state, gone with the attempt. */
static void drop_answer(struct exchange *ex)
{
	dt_xstream_free(ex->xs);
	ex->xs = NULL;
	if (ex->pending)
		evbuffer_drain(ex->pending, evbuffer_get_length(ex->pending));
	dt_headers_free(&ex->answer_headers);
}

static void exchange_free(struct exchange *ex)
{
	if (ex->fetch)
		dt_fetch_cancel(ex->fetch);
	drop_answer(ex);
	if (ex->pending)
		evbuffer_free(ex->pending);
	if (ex->xreq_state > 0)
		dt_xreq_free(&ex->xreq);
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
	dt_arena_free(&ex->arena);
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

static const char *attempt_model(const struct exchange *ex)
{
	return *ex->plan[ex->cur].model ? ex->plan[ex->cur].model : NULL;
}

/* What became of the current attempt: the health engine judges the
 * provider and model by it, the router detour's key. */
static void report(struct exchange *ex, enum dt_outcome_kind kind)
{
	const struct dt_attempt *a = &ex->plan[ex->cur];
	uint64_t now = dt_now_ns();
	struct dt_outcome o = {
		.kind = kind,
		.status = ex->status,
		.started = ex->attempt_started,
		.ttft_ns = ex->ttft_ns,
		.total_ns = now - ex->attempt_started,
		.retry_after_ms = ex->retry_after_ms,
	};

	dt_router_report(ex->s->p->router, a, kind == DT_OUTCOME_KEY_REFUSED ? DT_BLAME_KEY :
			 kind == DT_OUTCOME_OK ? DT_BLAME_NONE : DT_BLAME_PROVIDER, now);
	dt_health_outcome(ex->s->p->health, a->provider_id, attempt_model(ex), &o, now);
	ex->reported = true;
}

/* x-detour-health: why members the health engine ejected were tried. */
static const char *health_mode_str(enum dt_health_mode m)
{
	return m == DT_HEALTH_PANIC ? "panic: no member usable, the least bad ones tried" :
	       m == DT_HEALTH_CAPPED ? "capped: too many members ejected, some readmitted" : NULL;
}

static void add_detour_headers(struct exchange *ex, struct dt_headers *h, bool answered)
{
	if (ex->mode != DT_HEALTH_NORMAL)
		dt_headers_set(h, "x-detour-health", health_mode_str(ex->mode));
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

/* Relay the held 4xx of the current attempt as the answer, in the
 * client's shape when it came from a provider of another family. */
static void answer_held(struct exchange *ex)
{
	struct dt_headers h = {0};
	struct evbuffer *body = ex->held;
	int status = ex->held_status;
	struct dt_http_conn *http;
	size_t n = evbuffer_get_length(body);

	dt_headers_copy(&h, &ex->held_headers);
	dt_headers_del(&h, "content-length");
	if (ex->held_family != ex->shape) {
		struct evbuffer *shaped = evbuffer_new();

		if (shaped) {
			dt_headers_del(&h, "content-encoding");
			dt_headers_set(&h, "content-type",
				       dt_error_reshape(ex->shape, status,
							(const char *)evbuffer_pullup(body, (ev_ssize_t)n),
							n, shaped));
			evbuffer_free(body);
			body = shaped;
			n = evbuffer_get_length(body);
		}
	}
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
	const char *head = "detour: no provider could answer this request";
	char msg[1024];
	int status = ex->failures && ex->failures == ex->rate_limited ? 429 : 503;
	size_t n = tried_len(ex);
	struct dt_http_conn *http;

	if (ex->held) {
		answer_held(ex); /* the provider's own words say more than ours */
		return;
	}
	if (ex->refusal[0]) {
		/* the other members could not take this request: it is the reason */
		status = 400;
		head = ex->refusal;
		why = "no provider could answer it";
	}
	snprintf(msg, sizeof(msg), "%s (%s%s%.*s)", head, why, n ? "; tried " : "", (int)n,
		 n ? (const char *)evbuffer_pullup(ex->tried, -1) : "");
	add_detour_headers(ex, &h, false);
	log_info("proxy: " REQ_FMT ": %s", REQ_ARGS(ex), msg);
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
	report(ex, DT_OUTCOME_RESET);
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

/* Gemini names the model in the path: the client's call for another
 * model or provider, without a key= the client may have put in its query. */
static char *gemini_url(const struct pprovider *to, const char *model, const char *rest)
{
	const char *method = strchr(rest + sizeof("/models/") - 1, ':');
	size_t method_len = strcspn(method, "?");
	const char *p = method + method_len;
	struct evbuffer *b = evbuffer_new();
	char sep = '?', *url;
	size_t n;

	if (!b)
		return NULL;
	evbuffer_add_printf(b, "%s/models/%s%.*s", to->base_url, model, (int)method_len, method);
	while (*p) {
		size_t len = strcspn(++p, "&");

		if (len && strncmp(p, "key=", 4) != 0) {
			evbuffer_add_printf(b, "%c%.*s", sep, (int)len, p);
			sep = '&';
		}
		p += len;
	}
	n = evbuffer_get_length(b);
	url = strndup((const char *)evbuffer_pullup(b, (ev_ssize_t)n), n);
	evbuffer_free(b);
	return url;
}

/* The URL of attempt a: the generation call in the provider's family when
 * translated, else the client's request on that provider; NULL when its
 * path is not under the original provider's API. */
static char *attempt_url(const struct exchange *ex, const struct dt_attempt *a)
{
	const struct pprovider *from = original(ex), *to = provider(ex, a->provider_id);
	const char *target = ex->req->target, *rest;
	size_t plen = strlen(from->api_path);
	char *url = NULL;
	int n;

	if (a->provider_id == ex->s->provider_id && (!ex->model || strcmp(ex->model, a->model) == 0)) {
		n = from->port == 443 ? asprintf(&url, "https://%s%s", ex->s->sni, target)
				      : asprintf(&url, "https://%s:%u%s", ex->s->sni, from->port, target);
		return n < 0 ? NULL : url;
	}
	if (strncmp(target, from->api_path, plen) != 0 ||
	    (target[plen] != '/' && target[plen] != '?' && target[plen] != '\0'))
		return NULL;
	rest = target + plen;
	if (to->family != ex->shape)
		return dt_apicall_url(to->family, to->base_url, a->model, ex->xreq.stream);
	if (ex->shape == DT_FAMILY_GEMINI && ex->call.generate)
		return gemini_url(to, a->model, rest);
	return asprintf(&url, "%s%s", to->base_url, rest) < 0 ? NULL : url;
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

/* The client's request in neutral form, parsed once; a request that does
 * not parse can still be relayed as it is to its own family. */
static void parse_request(struct exchange *ex)
{
	size_t n = evbuffer_get_length(ex->req->body);
	const char *text = n ? (const char *)evbuffer_pullup(ex->req->body, (ev_ssize_t)n) : "";
	char err[200];

	if (dt_xreq_parse(ex->shape, text, n, ex->call.path_model[0] ? ex->call.path_model : NULL,
			  ex->call.path_stream, &ex->xreq, err, sizeof(err)) == 0) {
		ex->xreq_state = 1;
		return;
	}
	ex->xreq_state = -1;
	snprintf(ex->refusal, sizeof(ex->refusal),
		 "detour: the request cannot be translated for another provider: %s", err);
}

/* Does attempt a go through the neutral form? 1 yes, 0 no (relayed as it
 * is), -1 the member cannot be asked (noted). Other families need it; so
 * does another model (the client must see the one it asked for) and a
 * quality check. */
static int attempt_translation(struct exchange *ex, const struct dt_attempt *a)
{
	bool cross = provider(ex, a->provider_id)->family != ex->shape;
	bool renamed = ex->model && strcmp(ex->model, a->model) != 0;
	/* a Gemini stream without alt=sse is a JSON array, not translated */
	bool translatable = ex->call.generate && (!ex->call.path_stream || ex->call.sse);

	if (!cross && !renamed && !a->check_quality)
		return 0;
	if (translatable && !ex->xreq_state)
		parse_request(ex);
	if (translatable && ex->xreq_state > 0)
		return 1;
	if (!cross)
		return 0;
	note_tried(ex, a->provider_id, translatable ? "untranslatable" : "other-api-family");
	return -1;
}

/* The body for attempt a: emitted in the provider's shape when it is of
 * another family, else the original with the model renamed if needed
 * (Gemini's is in the path). NULL when it cannot be made (noted). */
static char *attempt_body(struct exchange *ex, const struct dt_attempt *a, size_t *len)
{
	const struct pprovider *to = provider(ex, a->provider_id);
	char *text, err[200];

	if (to->family != ex->shape) {
		text = dt_xreq_emit(to->family, &ex->xreq, a->model, len, err, sizeof(err));
		if (!text) {
			snprintf(ex->refusal, sizeof(ex->refusal),
				 "detour: %s cannot take this request: %s", to->name, err);
			note_tried(ex, a->provider_id, "untranslatable");
		}
		return text;
	}
	*len = evbuffer_get_length(ex->req->body);
	/* no body read: Gemini's, whose model is in the path, or not JSON */
	if (!ex->body || !ex->model || strcmp(ex->model, a->model) == 0) {
		text = malloc(*len ? *len : 1);
		if (text)
			evbuffer_copyout(ex->req->body, text, *len);
	} else {
		/* the rest of the body stays byte for byte the client's */
		text = dt_json_splice_str((const char *)evbuffer_pullup(ex->req->body, -1), *len,
					  ex->body, "model", a->model, len);
	}
	if (!text)
		note_tried(ex, a->provider_id, "internal");
	return text;
}

/* The request headers of attempt a: the client's, signed for the provider. */
static int attempt_headers(const struct exchange *ex, const struct dt_attempt *a, bool xlate,
			   const char *key, struct dt_headers *h)
{
	enum dt_family to = provider(ex, a->provider_id)->family;

	if (dt_headers_copy(h, &ex->req->headers))
		return -1;
	dt_headers_strip_hop_by_hop(h);
	if (to != ex->shape) {
		dt_family_strip_for_translation(ex->shape, h);
		if (dt_headers_set(h, "content-type", DT_JSON_TYPE))
			return -1;
	} else if (xlate) {
		dt_headers_del(h, "accept-encoding"); /* the answer is parsed */
	}
	return key ? dt_family_sign(to, h, key) : 0;
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
	int rc = -1, xlate;

	xlate = attempt_translation(ex, a);
	if (xlate < 0)
		return -1;
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
	if (!body)
		goto out;
	if (attempt_headers(ex, a, xlate, key, &h)) {
		note_tried(ex, a->provider_id, "internal");
		goto out;
	}
	if (!dt_health_begin(ex->s->p->health, a->provider_id, *a->model ? a->model : NULL, dt_now_ns())) {
		note_tried(ex, a->provider_id, "half-open-busy");
		goto out;
	}
	ex->cur = i;
	ex->status = 0;
	ex->holding = false;
	ex->reported = false;
	ex->attempt_started = dt_now_ns();
	ex->ttft_ns = 0;
	ex->retry_after_ms = 0;
	ex->xlate = xlate;
	ex->from = to->family;
	log_debug("proxy: " REQ_FMT ": attempt %zu: %s model %s%s", REQ_ARGS(ex),
		  i + 1, to->name, *a->model ? a->model : "(unchanged)", xlate ? " (translated)" : "");
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

/* Leave the current attempt before the commit point, noted, for the next. */
static void move_on(struct exchange *ex, const char *what)
{
	evtimer_del(ex->s->ttfb_timer);
	evtimer_del(ex->s->idle_timer);
	if (ex->fetch) {
		dt_fetch_cancel(ex->fetch);
		ex->fetch = NULL;
	}
	drop_answer(ex);
	log_info("proxy: " REQ_FMT ": %s failed (%s)", REQ_ARGS(ex),
		 provider(ex, ex->plan[ex->cur].provider_id)->name, what);
	ex->failures++;
	note_tried(ex, ex->plan[ex->cur].provider_id, what);
	next_attempt(ex);
}

/* A failure before the commit point: reported, and on to the next. */
static void attempt_failed(struct exchange *ex, enum dt_outcome_kind kind, const char *what)
{
	if (kind == DT_OUTCOME_RATE_LIMITED)
		ex->rate_limited++;
	report(ex, kind);
	move_on(ex, what);
}

/* An answer the class wants checked failed its check: the next member is
 * asked, while there is one. The provider answered, so it is not blamed. */
static bool quality_retry(struct exchange *ex, enum dt_quality q)
{
	if (q == DT_QUALITY_OK || !ex->plan[ex->cur].check_quality || ex->next >= ex->n_plan)
		return false;
	report(ex, DT_OUTCOME_POOR_ANSWER);
	move_on(ex, dt_quality_str(q));
	return true;
}

/* ---- upstream callbacks --------------------------------------------------------- */

/* Rate-limit headers of any answer tell the health engine what is left
 * (before a 429 comes); a 429's retry-after is kept for its report. */
static void read_rate_limits(struct exchange *ex, const struct dt_headers *h)
{
	struct dt_ratelimit rl;
	struct timespec wall;
	bool any = false;

	clock_gettime(CLOCK_REALTIME, &wall);
	dt_ratelimit_init(&rl);
	for (size_t i = 0; i < h->n; i++)
		any |= dt_ratelimit_header(&rl, h->v[i].name, strlen(h->v[i].name), h->v[i].value,
					   strlen(h->v[i].value),
					   (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
	ex->retry_after_ms = rl.retry_after_ms > 0 ? (uint64_t)rl.retry_after_ms : 0;
	if (any)
		dt_health_ratelimit(ex->s->p->health, ex->plan[ex->cur].provider_id, attempt_model(ex),
				    &rl, dt_now_ns());
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

/* The commit point: the head goes to the client. type NULL: the provider's
 * body as it comes; else a body of ours of that type and length (-1:
 * unknown). */
static void commit(struct exchange *ex, int status, const struct dt_headers *up,
		   const char *type, int64_t length)
{
	struct dt_headers h = {0};
	const char *clen = dt_headers_get(up, "content-length");

	ex->committed = true;
	dt_headers_copy(&h, up);
	dt_headers_strip_hop_by_hop(&h);
	dt_headers_del(&h, "content-length");
	if (type) {
		dt_headers_del(&h, "content-encoding");
		dt_headers_set(&h, "content-type", type);
	} else {
		type = dt_headers_get(up, "content-type");
		length = clen ? strtoll(clen, NULL, 10) : -1;
	}
	ex->sse = type && strncasecmp(type, "text/event-stream", 17) == 0;
	if (ex->sse)
		length = -1;
	add_detour_headers(ex, &h, true);
	dt_http_respond_head(ex->s->http, status, &h, length);
	dt_headers_free(&h);
	dt_http_set_drain_cb(ex->s->http, on_drain, ex);
	if (ex->sse)
		arm_idle(ex);
}

/* What the client sees of an answer that is not what the provider said. */
static struct dt_xctx client_view(const struct exchange *ex)
{
	return (struct dt_xctx){
		.client_model = ex->model ? ex->model : ex->plan[ex->cur].model,
		.now = time(NULL),
		.seed = ex->seed,
		.stream_usage = ex->xreq.stream_usage,
	};
}

/* A 2xx to translate: a stream gets its translator, a whole answer is
 * collected; either is held until it is known to be worth committing. */
static void begin_translated(struct exchange *ex, const struct dt_headers *h)
{
	struct dt_xctx view = client_view(ex);

	if (dt_headers_copy(&ex->answer_headers, h) ||
	    (!ex->pending && !(ex->pending = evbuffer_new())) ||
	    (ex->xreq.stream && !(ex->xs = dt_xstream_new(ex->from, ex->shape, &view)))) {
		answer_failed(ex, "out of memory");
		return;
	}
	if (ex->xs)
		arm_idle(ex);
}

/* Send what the translator wrote; backpressure as for a relayed stream. */
static void flush_pending(struct exchange *ex)
{
	size_t n = evbuffer_get_length(ex->pending);

	if (n)
		dt_http_respond_body(ex->s->http, evbuffer_pullup(ex->pending, (ev_ssize_t)n), n);
	evbuffer_drain(ex->pending, n);
	if (ex->fetch && dt_http_backlogged(ex->s->http))
		dt_fetch_pause(ex->fetch, true);
}

/* The first token of a stream came: the health engine's TTFT. */
static void first_token(struct exchange *ex)
{
	if (!ex->ttft_ns)
		ex->ttft_ns = dt_now_ns() - ex->attempt_started;
}

static void commit_stream(struct exchange *ex)
{
	first_token(ex);
	commit(ex, ex->status, &ex->answer_headers, "text/event-stream", -1);
	flush_pending(ex);
}

/* Provider bytes of a translated stream. Before the first content an
 * error in it still moves the request on; after, it breaks the stream. */
static void feed_stream(struct exchange *ex, const void *buf, size_t len)
{
	char err[256];

	if (dt_xstream_feed(ex->xs, buf, len, ex->pending, err, sizeof(err))) {
		log_info("proxy: stream from %s: %s", provider(ex, ex->plan[ex->cur].provider_id)->name, err);
		if (ex->committed)
			answer_broken(ex, err);
		else
			attempt_failed(ex, DT_OUTCOME_SERVER_ERROR, "stream-error");
		return;
	}
	arm_idle(ex);
	if (ex->committed)
		flush_pending(ex);
	else if (dt_xstream_info(ex->xs)->content)
		commit_stream(ex);
}

static void on_head(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h)
{
	struct exchange *ex = ctx;
	enum dt_blame blame;
	char what[16];

	(void)f;
	evtimer_del(ex->s->ttfb_timer);
	ex->status = status;
	read_rate_limits(ex, h);
	if (status >= 200 && status < 300) {
		if (ex->xlate)
			begin_translated(ex, h);
		else
			commit(ex, status, h, NULL, -1);
		return;
	}
	blame = dt_router_classify_status(status, NULL, 0);
	if ((blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) && ex->next >= ex->n_plan &&
	    ex->from == ex->shape) {
		/* nowhere else to go: the provider's own answer says most */
		report(ex, blame == DT_BLAME_RATE_LIMIT ? DT_OUTCOME_RATE_LIMITED : DT_OUTCOME_SERVER_ERROR);
		commit(ex, status, h, NULL, -1);
		return;
	}
	if (blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) {
		snprintf(what, sizeof(what), "%d", status);
		attempt_failed(ex, blame == DT_BLAME_RATE_LIMIT ? DT_OUTCOME_RATE_LIMITED :
			       DT_OUTCOME_SERVER_ERROR, what);
		return;
	}
	/* the body tells whom a 4xx blames (and another family's error is
	 * reshaped whole): hold it until the end */
	ex->held_status = status;
	ex->held_family = ex->from;
	dt_headers_free(&ex->held_headers);
	dt_headers_copy(&ex->held_headers, h);
	if (!ex->held && !(ex->held = evbuffer_new())) {
		answer_failed(ex, "out of memory");
		return;
	}
	evbuffer_drain(ex->held, evbuffer_get_length(ex->held));
	ex->holding = true;
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

	if (ex->xs) {
		feed_stream(ex, buf, len);
		return;
	}
	if (!ex->committed) {
		if (ex->holding) {
			if (evbuffer_get_length(ex->held) + len <= HELD_MAX)
				evbuffer_add(ex->held, buf, len);
		} else if (ex->xlate && evbuffer_get_length(ex->pending) + len > ANSWER_MAX) {
			attempt_failed(ex, DT_OUTCOME_SERVER_ERROR, "answer-too-large");
		} else if (ex->xlate) {
			evbuffer_add(ex->pending, buf, len);
		}
		return;
	}
	if (ex->sse) {
		first_token(ex);
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

	if (ex->sse && marker && !ex->end_seen && !ex->xs) {
		answer_broken(ex, "the stream ended without its end marker");
		return;
	}
	if (!ex->reported)
		report(ex, DT_OUTCOME_OK);
	log_debug("proxy: " REQ_FMT " -> %s %s: %d (%llu ms)", REQ_ARGS(ex),
		  provider(ex, ex->plan[ex->cur].provider_id)->name, ex->plan[ex->cur].model,
		  ex->status, (unsigned long long)((dt_now_ns() - ex->started_ns) / NS_PER_MS));
	http = detach(ex);
	dt_http_respond_end(http);
}

/* A translated stream ended: its closing events, or it broke. Before the
 * commit point it had no content yet: checked, and moved on if wanted. */
static void end_stream(struct exchange *ex)
{
	char err[256];

	if (dt_xstream_finish(ex->xs, ex->pending, err, sizeof(err))) {
		if (ex->committed)
			answer_broken(ex, err);
		else
			attempt_failed(ex, DT_OUTCOME_RESET, "stream-ended-early");
		return;
	}
	if (!ex->committed) {
		if (quality_retry(ex, dt_quality_of_stream(&ex->xreq, dt_xstream_info(ex->xs))))
			return;
		commit_stream(ex);
	} else {
		flush_pending(ex);
	}
	finish_ok(ex);
}

/* A whole answer collected: parsed, checked, and given in the client's shape. */
static void answer_translated(struct exchange *ex)
{
	size_t n = evbuffer_get_length(ex->pending), len;
	struct dt_xctx view = client_view(ex);
	struct dt_xresponse r;
	char err[256], *body;

	if (dt_xresp_parse(ex->from, (const char *)evbuffer_pullup(ex->pending, (ev_ssize_t)n), n,
			   &r, err, sizeof(err))) {
		log_info("proxy: answer of %s: %s", provider(ex, ex->plan[ex->cur].provider_id)->name, err);
		attempt_failed(ex, DT_OUTCOME_SERVER_ERROR, "malformed-answer");
		return;
	}
	if (quality_retry(ex, dt_quality_of_response(&ex->xreq, &r))) {
		dt_xresp_free(&r);
		return;
	}
	body = dt_xresp_emit(ex->shape, &r, &view, &len);
	dt_xresp_free(&r);
	if (!body) {
		answer_failed(ex, "out of memory");
		return;
	}
	commit(ex, ex->status, &ex->answer_headers, DT_JSON_TYPE, (int64_t)len);
	dt_http_respond_body(ex->s->http, body, len);
	free(body);
	finish_ok(ex);
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
		report(ex, DT_OUTCOME_OK); /* it answered, the request is at fault */
		answer_held(ex); /* never retried elsewhere */
		return;
	case DT_BLAME_CONTEXT:
		report(ex, DT_OUTCOME_OK);
		ex->context_failed = (int)ex->cur;
		move_on(ex, what);
		return;
	case DT_BLAME_KEY:
		attempt_failed(ex, DT_OUTCOME_KEY_REFUSED, what);
		return;
	case DT_BLAME_RATE_LIMIT:
		attempt_failed(ex, DT_OUTCOME_RATE_LIMITED, what);
		return;
	case DT_BLAME_PROVIDER:
		attempt_failed(ex, DT_OUTCOME_SERVER_ERROR, what);
		return;
	}
}

/* A transport failure as the health engine judges it. */
static enum dt_outcome_kind outcome_of(enum dt_fetch_error e)
{
	switch (e) {
	case DT_FETCH_CONNECT:
		return DT_OUTCOME_CONNECT_FAILED;
	case DT_FETCH_TLS:
		return DT_OUTCOME_TLS_FAILED;
	case DT_FETCH_RESET:
		return DT_OUTCOME_RESET;
	case DT_FETCH_TIMEOUT:
		return DT_OUTCOME_FIRST_BYTE_TIMEOUT;
	default:
		return DT_OUTCOME_SERVER_ERROR;
	}
}

static void on_done(void *ctx, struct dt_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	struct exchange *ex = ctx;

	(void)f;
	ex->fetch = NULL;
	evtimer_del(ex->s->ttfb_timer);
	if (e == DT_FETCH_OK && ex->xs) {
		end_stream(ex);
		return;
	}
	if (ex->committed) {
		if (e == DT_FETCH_OK)
			finish_ok(ex);
		else
			answer_broken(ex, errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
		return;
	}
	if (e == DT_FETCH_OK && ex->holding) {
		held_done(ex);
		return;
	}
	if (e == DT_FETCH_OK && ex->xlate) {
		answer_translated(ex);
		return;
	}
	log_debug("proxy: %s: %s", provider(ex, ex->plan[ex->cur].provider_id)->name,
		  errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
	attempt_failed(ex, outcome_of(e), dt_fetch_error_str(e));
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
	attempt_failed(s->ex, DT_OUTCOME_FIRST_BYTE_TIMEOUT, "first-byte-timeout");
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->ex->committed)
		answer_broken(s->ex, "no event within the stream idle timeout");
	else
		attempt_failed(s->ex, DT_OUTCOME_FIRST_BYTE_TIMEOUT, "stream-idle-timeout");
}

/* ---- start ----------------------------------------------------------------------- */

/* Which call the client made and for which model (in the body, read for
 * a rename, or in Gemini's path). */
static void read_call(struct exchange *ex)
{
	const struct pprovider *from = original(ex);
	size_t plen = strlen(from->api_path), n = evbuffer_get_length(ex->req->body);
	const char *text = n ? (const char *)evbuffer_pullup(ex->req->body, (ev_ssize_t)n) : NULL;
	char err[128];

	ex->shape = from->family;
	if (strncmp(ex->req->target, from->api_path, plen) == 0)
		dt_apicall_parse(ex->shape, ex->req->target + plen, &ex->call);
	if (ex->call.path_model[0]) {
		/* Gemini's body names no model: nothing in it is renamed */
		ex->model = ex->call.path_model;
		return;
	}
	if (text)
		ex->body = dt_json_parse(&ex->arena, text, n, err, sizeof(err));
	ex->model = dt_json_cstr(&ex->arena, dt_json_get(ex->body, "model"));
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
	read_call(ex);
	dt_router_request(p->router, now);
	ex->seed = p->requests++;
	ex->n_plan = dt_router_plan(p->router, s->provider_id, ex->model ? ex->model : "",
				    ex->seed, now, ex->plan, MAX_ATTEMPTS, &ex->mode);
	if (ex->mode != DT_HEALTH_NORMAL)
		log_debug("proxy: " REQ_FMT ": %s", REQ_ARGS(ex), health_mode_str(ex->mode));
	for (size_t i = 0; i < ex->n_plan; i++) {
		/* the router's strings live until the next reload: keep copies */
		snprintf(ex->models[i], sizeof(ex->models[i]), "%s", ex->plan[i].model);
		ex->plan[i].model = ex->models[i];
	}
	next_attempt(ex);
}
