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
 *
 * An attempt that has not reached the commit point by its hedge deadline
 * (hedge.h) is joined by the next member: two attempts race, the first to
 * commit wins and the other is cancelled. Each attempt's state is its own
 * (struct attempt); the exchange has one timer for all their deadlines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "apicall.h"
#include "bpfobj.h"
#include "errors.h"
#include "family.h"
#include "health.h"
#include "hedge.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pacer.h"
#include "proxy_int.h"
#include "quality.h"
#include "ratebudget.h"
#include "ratelimit.h"
#include "reqrec.h"
#include "router.h"
#include "spend.h"
#include "traits.h"
#include "upstream.h"
#include "xlate.h"

#define MAX_ATTEMPTS    8
/* Attempts in flight at once: one, and the member a hedge asks as well. */
#define MAX_LIVE        2
/* An error body is held (to classify it, or to relay it as is) up to this. */
#define HELD_MAX        (64 * 1024)
/* A whole answer is read to be translated up to this. */
#define ANSWER_MAX      (16 * 1024 * 1024)
#define NS_PER_MS       1000000ull
/* A request in logs: its method and path, never its query, where a Gemini
 * client may carry its key (?key=). */
#define REQ_FMT         "%s %.*s"
#define REQ_ARGS(ex)    (ex)->req->method, (int)strcspn((ex)->req->target, "?"), (ex)->req->target

struct exchange;

/* One member of the plan asked, and what its answer has shown so far. It
 * lives in a slot of its exchange, which keeps the slot's buffer for the
 * next attempt. */
struct attempt {
	struct exchange *ex;
	bool live;                        /* in flight, or its end being handled */
	size_t i;                         /* its member in the plan */
	struct dt_fetch *fetch;
	uint64_t started;                 /* when it was sent */
	uint64_t deadline;                /* its first byte, or its stream's next event, by then (0: none) */
	uint64_t hedge_at;                /* alone and not committed by then: hedged (0: not) */
	bool head;                        /* its answer's head came, */
	int status;                       /* ... with this status */
	bool holding;                     /* its 4xx is being held in `body` */
	bool reported;                    /* the health engine already heard of it */
	enum dt_blame blame;              /* what its held 4xx blamed (NONE: by its outcome) */
	struct dt_reqrec_attempt *rec;    /* its entry in the request's record (NULL: none left) */
	uint64_t ttft_ns;                 /* its first content came (streams; 0: not yet) */
	uint64_t retry_after_ms;          /* its answer's retry-after, parsed (0: none) */
	struct dt_rb_ticket ticket;       /* its rate-limit reservation */
	/* its answer, when it goes through the neutral form */
	bool xlate;
	enum dt_family from;              /* the family of the provider answering */
	struct dt_xstream *xs;            /* streamed: its translator */
	struct dt_xmeter *meter;          /* relayed as it is: reads its usage */
	bool usage_asked;                 /* detour asked for the usage chunk: stripped */
	struct dt_xusage usage;           /* a whole answer translated: its usage */
	struct dt_headers headers;        /* its head, while the answer or a 4xx is held */
	struct evbuffer *body;            /* what waits for the commit point, the whole answer, or the 4xx */
};

/* A provider's 4xx, kept to be the answer if nothing better comes. */
struct kept_error {
	size_t i;                         /* the member that said it */
	int status;
	enum dt_family family;
	struct dt_headers headers;
	struct evbuffer *body;            /* NULL: none kept */
	struct dt_reqrec_attempt *rec;    /* the attempt's entry in the record */
};

struct exchange {
	struct session *s;
	struct dt_http_request *req;      /* the client's original, never modified; its
					   * headers and body go at the commit point */
	enum dt_family shape;             /* its API: its original provider's family */
	struct dt_apicall call;           /* which call it is */
	struct dt_arena arena;            /* what is read of it: */
	const struct dt_json *body;       /* its JSON body, NULL if not JSON */
	const char *model;                /* the model it names (body or path), NULL if none */
	bool stream;                      /* it asks for a stream */
	struct dt_xrequest *xreq;         /* in neutral form, parsed on first need: */
	int xreq_state;                   /* 0 not yet, 1 parsed, -1 refused (refusal) */
	char *refusal;                    /* why a member could not be asked, for a 400 (NULL: none) */
	uint64_t seed;                    /* the request's number: unique ids, weighted order */
	uint32_t app;                     /* its application's id in the budgets (ratebudget.h) */
	uint64_t tokens;                  /* its token estimate, reserved by each attempt */
	struct dt_pacer_wait wait;        /* waiting in a pacing queue for member `next` */
	size_t released;                  /* 1 + the member the pacing queue let go (0: none) */
	unsigned sent;                    /* attempts sent: a later one is a retry */
	enum dt_health_mode mode;         /* the plan readmits ejected members (x-detour-health) */
	struct dt_route_needs needs;      /* what it needs of a member (read when its class uses it) */
	enum dt_sticky_note sticky;       /* its conversation's member (x-detour-sticky) */
	const char *unfit;                /* members lacking what it needs (x-detour-skipped; arena) */
	struct dt_attempt plan[MAX_ATTEMPTS];
	size_t n_plan, next;
	int context_failed;               /* index of an attempt refused for its window, -1 */
	uint64_t started_ns;
	struct attempt att[MAX_LIVE];
	struct attempt *won;              /* the attempt past the commit point (NULL: none yet) */
	const char *hedged_from;          /* the provider a hedge raced against (x-detour-hedged) */
	struct kept_error kept;           /* the last 4xx held */
	bool sse, end_seen;               /* of the answer committed */
	unsigned failures, rate_limited;  /* attempts failed, of which by 429 */
	char tail[64];                    /* end of the stream so far, for its end marker */
	size_t tail_len;
	struct evbuffer *tried;           /* "openai=503, groq=reset"; NULL until one fails */
	char *won_model;                  /* the winner's model once the arena is gone */
	struct dt_reqrec *rec;            /* for the metrics and the access log (NULL: neither) */
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

/* Why a member could not be asked, in place of the reason noted before (a
 * reason lost to a failed allocation leaves the generic 503). */
static void set_refusal(struct exchange *ex, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_refusal(struct exchange *ex, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	free(ex->refusal);
	ex->refusal = text;
}

/* The request in neutral form is needed no more. */
static void drop_xreq(struct exchange *ex)
{
	if (ex->xreq) {
		dt_xreq_free(ex->xreq);
		free(ex->xreq);
	}
	ex->xreq = NULL;
}

static const struct dt_attempt *member(const struct attempt *at)
{
	return &at->ex->plan[at->i];
}

static const char *member_name(const struct attempt *at)
{
	return provider(at->ex, member(at)->provider_id)->name;
}

static const char *attempt_model(const struct attempt *at)
{
	return *member(at)->model ? member(at)->model : NULL;
}

static struct attempt *other_live(struct exchange *ex, const struct attempt *at)
{
	for (size_t k = 0; k < MAX_LIVE; k++)
		if (&ex->att[k] != at && ex->att[k].live)
			return &ex->att[k];
	return NULL;
}

/* ---- the request's record (reqrec.h) ------------------------------------------- */

_Static_assert(DT_REQREC_ATTEMPTS >= MAX_ATTEMPTS, "every attempt has its entry");

static uint64_t since_arrival(const struct exchange *ex)
{
	return dt_now_ns() - ex->started_ns;
}

static void record_start(struct exchange *ex)
{
	struct dt_proxy *p = ex->s->p;
	struct timespec wall;
	struct dt_reqrec *r;

	/* its own allocation: no cost while nothing wants it */
	if ((!p->metrics && !p->alog) || !(r = ex->rec = calloc(1, sizeof(*r))))
		return;
	r->served = -1;
	clock_gettime(CLOCK_REALTIME, &wall);
	r->wall_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	r->app = ex->s->app ? ex->s->app->name : "-";
	r->provider = original(ex)->name;
	r->shape = ex->shape;
	r->method = ex->req->method;
	r->path = ex->req->target;
	r->path_len = strcspn(ex->req->target, "?");
	r->model = ex->model ? strdup(ex->model) : NULL;
	r->stream = ex->stream;
	if (p->alog && dt_accesslog_prompts(p->alog))
		dt_reqrec_keep_prompt(r, ex->req->body);
}

/* An attempt is sent: its entry (none when its model cannot be copied). */
static void record_attempt(struct attempt *at)
{
	struct exchange *ex = at->ex;
	struct dt_reqrec_attempt *a;

	at->rec = NULL;
	if (!ex->rec)
		return;
	a = &ex->rec->attempts[ex->rec->n_attempts];
	*a = (struct dt_reqrec_attempt){
		.provider = member_name(at), .model = strdup(member(at)->model),
		.hedge = other_live(ex, at) != NULL, .start_ns = since_arrival(ex),
	};
	if (a->model) {
		ex->rec->n_attempts++;
		at->rec = a;
	}
}

static void record_attempt_end(struct attempt *at, enum dt_outcome_kind kind)
{
	if (!at->rec)
		return;
	at->rec->outcome = kind;
	at->rec->blame = at->blame != DT_BLAME_NONE ? at->blame : dt_reqrec_blame_of(kind);
	at->rec->status = at->status;
	at->rec->end_ns = since_arrival(at->ex);
}

/* The client gets an answer of this status, from that attempt (NULL: ours). */
static void record_answer(struct exchange *ex, int status, struct dt_reqrec_attempt *from)
{
	if (!ex->rec)
		return;
	ex->rec->status = status;
	ex->rec->served = from ? (int)(from - ex->rec->attempts) : -1;
	ex->rec->ttfb_ns = since_arrival(ex);
	ex->rec->failover = from && ex->failures > 0;
}

/* The request is over: counted, and logged. */
static void record_end(struct exchange *ex)
{
	struct dt_proxy *p = ex->s->p;

	if (!ex->rec)
		return;
	ex->rec->total_ns = since_arrival(ex);
	ex->rec->hedged = ex->hedged_from != NULL;
	if (p->metrics)
		dt_metrics_request(p->metrics, ex->rec);
	if (p->alog)
		dt_accesslog_write(p->alog, ex->rec);
	dt_reqrec_free(ex->rec);
	free(ex->rec);
	ex->rec = NULL;
}

/* Stop an attempt and forget its answer; the slot is free again. */
static void retire(struct attempt *at)
{
	if (at->fetch)
		dt_fetch_cancel(at->fetch);
	at->fetch = NULL;
	at->live = false;
	at->deadline = at->hedge_at = 0;
	dt_xstream_free(at->xs);
	at->xs = NULL;
	dt_xmeter_free(at->meter);
	at->meter = NULL;
	if (at->body)
		evbuffer_drain(at->body, evbuffer_get_length(at->body));
	dt_headers_free(&at->headers);
}

static void exchange_free(struct exchange *ex)
{
	record_end(ex);
	for (size_t k = 0; k < MAX_LIVE; k++) {
		retire(&ex->att[k]);
		if (ex->att[k].body)
			evbuffer_free(ex->att[k].body);
	}
	drop_xreq(ex);
	free(ex->refusal);
	dt_pacer_cancel(ex->s->p->pacer, &ex->wait);
	/* the session's, kept for its next request (NULL if making it failed) */
	if (ex->s->timer)
		evtimer_del(ex->s->timer);
	if (ex->kept.body)
		evbuffer_free(ex->kept.body);
	dt_headers_free(&ex->kept.headers);
	if (ex->tried)
		evbuffer_free(ex->tried);
	dt_arena_free(&ex->arena);
	free(ex->won_model);
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

/* What an attempt's answer used, as far as it was read. */
static const struct dt_xusage *attempt_usage(const struct attempt *at)
{
	return at->meter ? dt_xmeter_usage(at->meter) :
	       at->xs ? &dt_xstream_info(at->xs)->usage : &at->usage;
}

/* What an attempt's answer counts against its rate limit when it ends:
 * its usage; the estimate (-1) when that is not known, and for an answer
 * cut short, which the provider counts; nothing for a failure. */
static int64_t tokens_used(const struct attempt *at, enum dt_outcome_kind kind)
{
	const struct dt_xusage *u = attempt_usage(at);

	if (kind == DT_OUTCOME_CANCELLED || (kind == DT_OUTCOME_OK && !u->known))
		return -1;
	return kind == DT_OUTCOME_OK ? u->input_tokens + u->output_tokens : 0;
}

/* What became of an attempt, with its time to first token: the health
 * engine judges the provider and model by it, the router detour's key (a
 * cancelled attempt says nothing of it). */
static void report_as(struct attempt *at, enum dt_outcome_kind kind, uint64_t ttft_ns)
{
	struct dt_proxy *p = at->ex->s->p;
	uint64_t now = dt_now_ns();
	struct dt_outcome o = {
		.kind = kind,
		.status = at->status,
		.started = at->started,
		.ttft_ns = ttft_ns,
		.total_ns = now - at->started,
		.retry_after_ms = at->retry_after_ms,
	};

	if (kind != DT_OUTCOME_CANCELLED)
		dt_router_report(p->router, member(at), kind == DT_OUTCOME_KEY_REFUSED ? DT_BLAME_KEY :
				 kind == DT_OUTCOME_OK ? DT_BLAME_NONE : DT_BLAME_PROVIDER, now);
	/* latency from answers only: a whole answer's first token is its end */
	dt_router_attempt_end(p->router, member(at),
			      kind != DT_OUTCOME_OK ? 0 : ttft_ns ? ttft_ns : o.total_ns, now);
	dt_health_outcome(p->health, member(at)->provider_id, attempt_model(at), &o, now);
	dt_rb_settle(p->rb, &at->ticket, tokens_used(at, kind));
	proxy_pace_soon(p);
	record_attempt_end(at, kind);
	at->reported = true;
}

static void report(struct attempt *at, enum dt_outcome_kind kind)
{
	report_as(at, kind, at->ttft_ns);
}

/* An attempt the proxy ended itself, which gives back a trial slot it
 * held. Lost to a hedge: what a stream waited is a lower bound of its time
 * to first token. Else (never sent, or its client left) it says nothing. */
static void report_cancelled(struct attempt *at, bool lost_race)
{
	report_as(at, DT_OUTCOME_CANCELLED,
		  lost_race && at->ex->stream ? dt_now_ns() - at->started : 0);
}

/* Does the request cost? Its POST's answer is read for its usage. */
static bool metered(const struct exchange *ex)
{
	return strcmp(ex->req->method, "POST") == 0;
}

/* An attempt's answer came (whole, cut short, or refused by a quality
 * check: the provider bills it all the same): what it used is counted for
 * its application, provider, model and class. */
static void account(struct attempt *at)
{
	struct exchange *ex = at->ex;
	const struct dt_attempt *a = member(at);
	const struct dt_xusage *u = attempt_usage(at);
	struct dt_price price;
	bool priced;

	if (!metered(ex))
		return;
	priced = pconf_price(ex->s->conf, a->provider_id, a->model, &price);
	if (ex->rec)
		dt_reqrec_add_usage(ex->rec, u, priced ? &price : NULL);
	proxy_account(ex->s->p, ex->s->conf, ex->s->app ? ex->s->app->name : NULL, a->provider_id,
		      a->model, u, priced ? &price : NULL);
}

/* The client is gone: the attempts in flight end with it. */
void exchange_cancel(struct exchange *ex)
{
	for (size_t k = 0; k < MAX_LIVE; k++)
		if (ex->att[k].live && !ex->att[k].reported)
			report_cancelled(&ex->att[k], false);
	ex->s->ex = NULL;
	exchange_free(ex);
}

/* x-detour-health: why members the health engine ejected were tried. */
static const char *health_mode_str(enum dt_health_mode m)
{
	return m == DT_HEALTH_PANIC ? "panic: no member usable, the least bad ones tried" :
	       m == DT_HEALTH_CAPPED ? "capped: too many members ejected, some readmitted" : NULL;
}

/* x-detour-sticky: what stickiness did (NULL: nothing). */
static const char *sticky_str(enum dt_sticky_note n)
{
	return n == DT_STICKY_NEW ? "new" : n == DT_STICKY_HIT ? "hit" :
	       n == DT_STICKY_MOVED ? "moved" : NULL;
}

/* answered: the member whose answer it is (NULL: none's). */
static void add_detour_headers(struct exchange *ex, struct dt_headers *h,
			       const struct dt_attempt *answered)
{
	if (ex->mode != DT_HEALTH_NORMAL)
		dt_headers_set(h, "x-detour-health", health_mode_str(ex->mode));
	if (ex->unfit)
		dt_headers_set(h, "x-detour-skipped", ex->unfit);
	if (sticky_str(ex->sticky))
		dt_headers_set(h, "x-detour-sticky", sticky_str(ex->sticky));
	if (answered) {
		dt_headers_set(h, "x-detour-provider", provider(ex, answered->provider_id)->name);
		if (*answered->model)
			dt_headers_set(h, "x-detour-model", answered->model);
	}
	if (ex->hedged_from)
		dt_headers_set(h, "x-detour-hedged", ex->hedged_from);
	if (tried_len(ex)) {
		size_t n = tried_len(ex);
		char *tried = strndup((const char *)evbuffer_pullup(ex->tried, (ev_ssize_t)n), n);

		if (tried)
			dt_headers_set(h, "x-detour-tried", tried);
		free(tried);
	}
}

/* ---- the final answers -------------------------------------------------------- */

/* Keep the 4xx an attempt held, in place of the one kept before. */
static void keep_error(struct attempt *at)
{
	struct exchange *ex = at->ex;
	struct evbuffer *spare = ex->kept.body;

	dt_headers_free(&ex->kept.headers);
	ex->kept = (struct kept_error){
		.i = at->i, .status = at->status, .family = at->from,
		.headers = at->headers, .body = at->body, .rec = at->rec,
	};
	at->headers = (struct dt_headers){0};
	at->body = spare;
	at->holding = false;
}

/* Relay the 4xx kept as the answer, in the client's shape when it came
 * from a provider of another family. */
static void answer_kept(struct exchange *ex)
{
	struct dt_headers h = {0};
	struct evbuffer *body = ex->kept.body;
	int status = ex->kept.status;
	struct dt_http_conn *http;
	size_t n = evbuffer_get_length(body);

	dt_headers_copy(&h, &ex->kept.headers);
	dt_headers_del(&h, "content-length");
	if (ex->kept.family != ex->shape) {
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
	add_detour_headers(ex, &h, &ex->plan[ex->kept.i]);
	record_answer(ex, status, ex->kept.rec);
	ex->kept.body = NULL;
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

	if (ex->kept.body) {
		answer_kept(ex); /* the provider's own words say more than ours */
		return;
	}
	if (ex->refusal) {
		/* the other members could not take this request: it is the reason */
		status = 400;
		head = ex->refusal;
		why = "no provider could answer it";
	}
	snprintf(msg, sizeof(msg), "%s (%s%s%.*s)", head, why, n ? "; tried " : "", (int)n,
		 n ? (const char *)evbuffer_pullup(ex->tried, -1) : "");
	add_detour_headers(ex, &h, NULL);
	record_answer(ex, status, NULL);
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

	log_warn("proxy: stream from %s broke after the first byte: %s", member_name(ex->won), why);
	report(ex->won, DT_OUTCOME_RESET);
	account(ex->won);
	if (ex->rec)
		ex->rec->broken = true;
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

/* ---- rate-limit budgets ---------------------------------------------------------- */

/* What a request asks of the budget of (provider_id, key_slot). */
static struct dt_rb_demand demand_of(const struct exchange *ex, uint32_t provider_id,
				     uint32_t key_slot)
{
	return (struct dt_rb_demand){ provider_id, key_slot, ex->app, ex->tokens };
}

/* The plan's view of the budgets (dt_plan_budget): a member that paces
 * and would fit within its wait keeps its place. */
static uint64_t member_usable_at(void *ctx, uint32_t provider_id, uint32_t key_slot, uint64_t now)
{
	const struct exchange *ex = ctx;
	const struct dt_proxy *p = ex->s->p;
	struct dt_rb_demand d = demand_of(ex, provider_id, key_slot);
	uint64_t at = dt_rb_fit_at(p->rb, &d, now);

	return at && dt_pacer_worth_waiting(p->pacer, &d, at, now) ? 0 : at;
}

/* The output tokens the request allows, -1 when its body does not say
 * (Gemini's body is not read: its model is in the path). */
static int64_t max_output(const struct exchange *ex)
{
	return dt_json_get_int(ex->body, "max_tokens|max_completion_tokens|max_output_tokens", -1);
}

/* The request's application id in the budgets: by its [app] section under
 * the configuration in force ("-" for a session of an older one). */
static uint32_t app_id(const struct session *s)
{
	return s->app && s->conf == s->p->conf ? (uint32_t)(s->app - s->conf->apps) : UINT32_MAX;
}

/* ---- what an attempt sends ----------------------------------------------------- */

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

/* a, b and c joined in one allocation (NULL: out of memory): an attempt's
 * URL, made for every request, where asprintf's format costs more than
 * the copies. */
static char *concat3(const char *a, const char *b, const char *c)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
	char *s = malloc(na + nb + nc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	memcpy(s + na + nb, c, nc + 1);
	return s;
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
		if (from->port == 443)
			return concat3("https://", ex->s->sni, target);
		n = asprintf(&url, "https://%s:%u%s", ex->s->sni, from->port, target);
		return n < 0 ? NULL : url;
	}
	if (strncmp(target, from->api_path, plen) != 0 ||
	    (target[plen] != '/' && target[plen] != '?' && target[plen] != '\0'))
		return NULL;
	rest = target + plen;
	if (to->family != ex->shape)
		return dt_apicall_url(to->family, to->base_url, a->model, ex->xreq->stream);
	if (ex->shape == DT_FAMILY_GEMINI && ex->call.generate)
		return gemini_url(to, a->model, rest);
	return concat3(to->base_url, rest, "");
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
	char err[200] = "out of memory";

	/* its own allocation: most requests are relayed and never need it */
	ex->xreq = calloc(1, sizeof(*ex->xreq));
	if (ex->xreq && dt_xreq_parse(ex->shape, text, n,
				      ex->call.path_model[0] ? ex->call.path_model : NULL,
				      ex->call.path_stream, ex->xreq, err, sizeof(err)) == 0) {
		ex->xreq_state = 1;
		return;
	}
	free(ex->xreq);
	ex->xreq = NULL;
	ex->xreq_state = -1;
	set_refusal(ex, "detour: the request cannot be translated for another provider: %s", err);
}

/* Can the request take the neutral form? A generation call; a Gemini
 * stream without alt=sse is a JSON array, not translated. */
static bool translatable(const struct exchange *ex)
{
	return ex->call.generate && (!ex->call.path_stream || ex->call.sse);
}

/* Does attempt a go through the neutral form? 1 yes, 0 no (relayed as it
 * is), -1 the member cannot be asked (noted). Other families need it; so
 * does another model (the client must see the one it asked for) and a
 * quality check. */
static int attempt_translation(struct exchange *ex, const struct dt_attempt *a)
{
	bool cross = provider(ex, a->provider_id)->family != ex->shape;
	bool renamed = ex->model && strcmp(ex->model, a->model) != 0;
	bool can = translatable(ex);

	if (!cross && !renamed && !a->check_quality)
		return 0;
	if (can && !ex->xreq_state)
		parse_request(ex);
	if (can && ex->xreq_state > 0)
		return 1;
	if (!cross)
		return 0;
	note_tried(ex, a->provider_id, can ? "untranslatable" : "other-api-family");
	return -1;
}

/* An OpenAI stream whose client did not ask for the usage chunk asks for
 * it, unless its provider is told not to (the meter strips it again,
 * begin_metered): the body, or NULL when it needs no change (or out of
 * memory: the stream is then not metered). */
static char *ask_usage(const struct exchange *ex, const struct pprovider *to, size_t *len)
{
	if (ex->shape != DT_FAMILY_OPENAI || !ex->call.generate || !ex->stream || !ex->body ||
	    !to->ask_stream_usage)
		return NULL;
	return dt_xreq_ask_stream_usage((const char *)evbuffer_pullup(ex->req->body, -1), *len,
					ex->body, len);
}

/* The body for attempt a: emitted in the provider's shape when it is of
 * another family, else the original with the model renamed if needed
 * (Gemini's is in the path) or asking for the usage chunk (*usage_asked).
 * NULL when it cannot be made (noted). */
static char *attempt_body(struct exchange *ex, const struct dt_attempt *a, size_t *len,
			  bool *usage_asked)
{
	const struct pprovider *to = provider(ex, a->provider_id);
	char *text, err[200];

	if (to->family != ex->shape) {
		text = dt_xreq_emit(to->family, ex->xreq, a->model, len, err, sizeof(err));
		if (!text) {
			set_refusal(ex, "detour: %s cannot take this request: %s", to->name, err);
			note_tried(ex, a->provider_id, "untranslatable");
		}
		return text;
	}
	*len = evbuffer_get_length(ex->req->body);
	/* no body read: Gemini's, whose model is in the path, or not JSON */
	if (!ex->body || !ex->model || strcmp(ex->model, a->model) == 0) {
		text = ask_usage(ex, to, len);
		*usage_asked = text != NULL;
		if (text)
			return text;
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

	if (dt_headers_copy(h, &ex->req->headers) || dt_headers_strip_hop_by_hop(h))
		return -1;
	if (to != ex->shape) {
		dt_family_strip_for_translation(ex->shape, h);
		if (dt_headers_set(h, "content-type", DT_JSON_TYPE))
			return -1;
	} else if (xlate || metered(ex)) {
		/* the answer is parsed, or its usage read */
		dt_headers_del(h, "accept-encoding");
	}
	return key ? dt_family_sign(to, h, key) : 0;
}

/* ---- the exchange's timer ----------------------------------------------------- */

/* The attempt a hedge would join: alone in flight, not past the commit
 * point, holding no error, with a hedge deadline and a member left to ask.
 * NULL: none. */
static struct attempt *hedgeable(struct exchange *ex)
{
	struct attempt *lone = NULL;

	if (ex->won || ex->next >= ex->n_plan)
		return NULL;
	for (size_t k = 0; k < MAX_LIVE; k++) {
		if (!ex->att[k].live)
			continue;
		if (lone)
			return NULL;
		lone = &ex->att[k];
	}
	return lone && lone->hedge_at && !lone->holding ? lone : NULL;
}

/* One timer (the session's) at the exchange's nearest deadline: an
 * attempt's first byte or stream event, or a hedge. A deadline that went
 * away leaves it early, and it is set again when it fires. */
static void arm_timer(struct exchange *ex)
{
	const struct attempt *lone = hedgeable(ex);
	uint64_t at = lone ? lone->hedge_at : UINT64_MAX, now, wait;
	struct timeval tv;

	for (size_t k = 0; k < MAX_LIVE; k++)
		if (ex->att[k].live && ex->att[k].deadline && ex->att[k].deadline < at)
			at = ex->att[k].deadline;
	if (at == UINT64_MAX) {
		evtimer_del(ex->s->timer);
		return;
	}
	now = dt_now_ns();
	wait = at > now ? (at - now + 999) / 1000 : 0; /* us, never early */
	tv.tv_sec = (time_t)(wait / 1000000);
	tv.tv_usec = (suseconds_t)(wait % 1000000);
	evtimer_add(ex->s->timer, &tv);
}

/* An attempt must show its next sign of life within ms. */
static void set_deadline(struct attempt *at, unsigned ms)
{
	at->deadline = dt_now_ns() + ms * NS_PER_MS;
	arm_timer(at->ex);
}

/* ---- attempts ---------------------------------------------------------------- */

static const struct dt_fetch_ops fetch_ops;

/* When attempt at, just sent, is joined by the next member: what its
 * provider and model usually take to its commit point (the first token of
 * a stream, else the whole answer), bounded by the configuration. */
static uint64_t hedge_deadline(const struct attempt *at)
{
	const struct exchange *ex = at->ex;
	uint64_t ttft, total, delay;

	if (!ex->s->conf->hedge.on)
		return 0;
	dt_health_latency(ex->s->p->health, member(at)->provider_id, attempt_model(at), at->started,
			  &ttft, &total);
	delay = dt_hedge_delay_ns(&ex->s->conf->hedge, ex->stream ? ttft : total,
				  ex->s->conf->first_byte_timeout_ms);
	return delay ? at->started + delay : 0;
}

static struct attempt *free_slot(struct exchange *ex)
{
	for (size_t k = 0; k < MAX_LIVE; k++)
		if (!ex->att[k].live)
			return &ex->att[k];
	return NULL;
}

/* Start attempt i in a free slot; returns it, or NULL when it cannot be
 * made (noted). */
static struct attempt *start_attempt(struct exchange *ex, size_t i)
{
	const struct dt_attempt *a = &ex->plan[i];
	const struct pprovider *to = provider(ex, a->provider_id);
	struct attempt *at = free_slot(ex), *rc = NULL;
	struct dt_headers h = {0};
	char err[256], *url = NULL, *body = NULL;
	struct dt_rb_demand d;
	const char *key;
	bool missing;
	size_t len = 0;
	bool usage_asked = false;
	int xlate;

	xlate = attempt_translation(ex, a);
	if (xlate < 0)
		return NULL;
	key = attempt_key(ex, a, &missing);
	if (missing) {
		note_tried(ex, a->provider_id, "no-key");
		return NULL;
	}
	url = attempt_url(ex, a);
	if (!url) {
		note_tried(ex, a->provider_id, "path-outside-api");
		return NULL;
	}
	body = attempt_body(ex, a, &len, &usage_asked);
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
	*at = (struct attempt){
		.ex = ex, .live = true, .i = i, .started = dt_now_ns(),
		.xlate = xlate, .from = to->family, .body = at->body, .usage_asked = usage_asked,
	};
	dt_router_attempt_start(ex->s->p->router, a); /* ended in report_as, also when never sent */
	ex->sent++;
	d = demand_of(ex, a->provider_id, a->key_slot);
	dt_rb_take(ex->s->p->rb, &d, at->started, &at->ticket);
	record_attempt(at);
	log_debug("proxy: " REQ_FMT ": attempt %zu: %s model %s%s", REQ_ARGS(ex),
		  i + 1, to->name, *a->model ? a->model : "(unchanged)", xlate ? " (translated)" : "");
	at->fetch = dt_fetch_start(ex->s->p->upstream, &(struct dt_fetch_req){
			.method = ex->req->method, .url = url, .headers = &h,
			.body = body, .body_len = len,
		}, &fetch_ops, at, err, sizeof(err));
	if (!at->fetch) {
		note_tried(ex, a->provider_id, "internal");
		log_error("proxy: %s", err);
		/* never sent: gives back the trial slot dt_health_begin took */
		report_cancelled(at, false);
		at->live = false;
		goto out;
	}
	at->hedge_at = hedge_deadline(at);
	set_deadline(at, ex->s->conf->first_byte_timeout_ms);
	rc = at;
out:
	free(url);
	free(body);
	dt_headers_free(&h);
	return rc;
}

/* Why launch_next started nothing. */
enum launch_stop {
	STOP_NONE_LEFT,         /* no member is left */
	STOP_SPENT,             /* the retry budget is spent (the member is kept for later) */
	STOP_WAITING,           /* the member waits in its pacing queue */
	STOP_OVER_BUDGET,       /* a hedge: the member has no rate-limit budget for it now */
};

/* May member i be asked now? Over its rate-limit budget, a hedge waits for
 * nothing, and a member that paces makes the request wait in its queue
 * (queued: *stop set); any other is asked anyway, as is one the queue let
 * go: the plan put the members with budget first, so none with budget is
 * left, and a request detour refuses is worse than one that may meet a
 * 429. */
static bool admit(struct exchange *ex, size_t i, bool hedging, enum launch_stop *stop)
{
	struct dt_proxy *p = ex->s->p;
	const struct dt_attempt *a = &ex->plan[i];
	uint64_t now = dt_now_ns(), at;

	if (ex->released == i + 1)
		return true;
	ex->wait.demand = demand_of(ex, a->provider_id, a->key_slot);
	at = dt_rb_fit_at(p->rb, &ex->wait.demand, now);
	if (!at)
		return true;
	*stop = STOP_OVER_BUDGET;
	if (hedging)
		return false;
	if (!dt_pacer_worth_waiting(p->pacer, &ex->wait.demand, at, now) ||
	    !dt_pacer_wait(p->pacer, &ex->wait, now))
		return true;
	log_debug("proxy: " REQ_FMT ": waits in the pacing queue of %s", REQ_ARGS(ex),
		  provider(ex, a->provider_id)->name);
	*stop = STOP_WAITING;
	proxy_pace_soon(p);
	return false;
}

/* Start the next member of the plan that can be asked; NULL, and why in
 * *stop, when none is started (the member is then kept for later, unless
 * none is left). */
static struct attempt *launch_next(struct exchange *ex, bool hedging, enum launch_stop *stop)
{
	struct dt_router *router = ex->s->p->router;
	struct attempt *at;

	*stop = STOP_NONE_LEFT;
	while (ex->next < ex->n_plan) {
		size_t i = ex->next++;

		if (ex->context_failed >= 0 &&
		    !dt_router_larger_context(router, &ex->plan[ex->context_failed], &ex->plan[i]))
			continue;
		if (!admit(ex, i, hedging, stop)) {
			ex->next = i;
			return NULL;
		}
		/* every attempt after the first sent takes a token, hedges too */
		if (ex->sent && !dt_router_retry_take(router, dt_now_ns())) {
			ex->next = i;
			*stop = STOP_SPENT;
			if (ex->rec)
				ex->rec->budget_refused++;
			return NULL;
		}
		at = start_attempt(ex, i);
		if (at)
			return at;
	}
	*stop = STOP_NONE_LEFT;
	return NULL;
}

/* Nothing is in flight: on to the next member, or the final answer. */
static void next_attempt(struct exchange *ex)
{
	enum launch_stop stop;

	if (launch_next(ex, false, &stop) || stop == STOP_WAITING)
		return;
	answer_failed(ex, stop == STOP_SPENT ? "retry budget exhausted" : "every member failed");
}

/* The pacing queue let the request go: released, it fits member `next`
 * now; else its wait is over, and it overflows to the next member (the
 * last one is asked anyway). */
static void on_paced(struct dt_pacer_wait *w, bool released)
{
	struct exchange *ex = w->ctx;
	size_t i = ex->next;

	if (!released && i + 1 < ex->n_plan) {
		log_info("proxy: " REQ_FMT ": %s still over its rate limit after the pacing queue's wait: overflow",
			 REQ_ARGS(ex), provider(ex, ex->plan[i].provider_id)->name);
		ex->next = i + 1;
	} else {
		ex->released = i + 1;
	}
	next_attempt(ex);
}

/* Leave an attempt before the commit point, noted: another in flight goes
 * on alone, else the next member is asked. */
static void move_on(struct attempt *at, const char *what)
{
	struct exchange *ex = at->ex;

	log_info("proxy: " REQ_FMT ": %s failed (%s)", REQ_ARGS(ex), member_name(at), what);
	ex->failures++;
	note_tried(ex, member(at)->provider_id, what);
	retire(at);
	if (other_live(ex, at))
		arm_timer(ex);
	else
		next_attempt(ex);
}

/* A failure before the commit point: reported, and moved on. */
static void attempt_failed(struct attempt *at, enum dt_outcome_kind kind, const char *what)
{
	if (kind == DT_OUTCOME_RATE_LIMITED)
		at->ex->rate_limited++;
	report(at, kind);
	move_on(at, what);
}

/* May an attempt give up and leave the request to others? */
static bool alternatives(const struct attempt *at)
{
	return at->ex->next < at->ex->n_plan || other_live(at->ex, at);
}

/* An answer the class wants checked failed its check: another member is
 * asked, while there is one. The provider answered, so it is not blamed. */
static bool quality_retry(struct attempt *at, enum dt_quality q)
{
	if (q == DT_QUALITY_OK || !member(at)->check_quality || !alternatives(at))
		return false;
	report(at, DT_OUTCOME_POOR_ANSWER);
	account(at);
	move_on(at, dt_quality_str(q));
	return true;
}

/* ---- hedges ------------------------------------------------------------------ */

/* The lone attempt has not reached its commit point by its hedge deadline:
 * the next member is asked as well, when the retry budget allows. */
static void hedge(struct attempt *slow)
{
	struct exchange *ex = slow->ex;
	struct dt_proxy_stats *n = &ex->s->p->stats;
	unsigned long long ms = (dt_now_ns() - slow->started) / NS_PER_MS;
	enum launch_stop stop;
	struct attempt *also;

	slow->hedge_at = 0;
	also = launch_next(ex, true, &stop);
	if (also) {
		n->hedges++;
		ex->hedged_from = member_name(slow);
		log_info("proxy: " REQ_FMT ": %s has not answered in %llu ms: hedged to %s",
			 REQ_ARGS(ex), member_name(slow), ms, member_name(also));
	} else if (stop == STOP_SPENT) {
		n->hedges_unfunded++;
		log_info("proxy: " REQ_FMT ": %s has not answered in %llu ms: not hedged, retry budget exhausted",
			 REQ_ARGS(ex), member_name(slow), ms);
	}
	arm_timer(ex);
}

/* Attempt at reached the commit point first: any other is cancelled, and
 * reported as what it is, a call that had not answered yet. */
static void win(struct attempt *at)
{
	struct exchange *ex = at->ex;
	struct attempt *loser = other_live(ex, at);

	ex->won = at;
	if (!loser)
		return;
	if (at->i > loser->i)
		ex->s->p->stats.hedges_won++;
	log_info("proxy: " REQ_FMT ": %s answered first, %s cancelled after %llu ms", REQ_ARGS(ex),
		 member_name(at), member_name(loser),
		 (unsigned long long)((dt_now_ns() - loser->started) / NS_PER_MS));
	report_cancelled(loser, true);
	retire(loser);
}

/* ---- upstream callbacks --------------------------------------------------------- */

/* Rate-limit headers of any answer tell the health engine what is left
 * (before a 429 comes); a 429's retry-after is kept for its report. */
static void read_rate_limits(struct attempt *at, const struct dt_headers *h)
{
	struct dt_ratelimit rl;
	struct timespec wall;
	bool any;

	clock_gettime(CLOCK_REALTIME, &wall);
	any = dt_ratelimit_headers(&rl, h, (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000);
	at->retry_after_ms = rl.retry_after_ms > 0 ? (uint64_t)rl.retry_after_ms : 0;
	if (!any)
		return;
	dt_health_ratelimit(at->ex->s->p->health, member(at)->provider_id, attempt_model(at),
			    &rl, dt_now_ns());
	dt_rb_headers(at->ex->s->p->rb, &at->ticket, &rl, dt_now_ns());
	proxy_pace_soon(at->ex->s->p);
}

static void on_drain(void *arg)
{
	struct exchange *ex = arg;

	if (ex->won->fetch)
		dt_fetch_pause(ex->won->fetch, false);
}

static void arm_idle(struct attempt *at)
{
	set_deadline(at, at->ex->s->conf->stream_idle_timeout_ms);
}

/* Past the commit point no other attempt can start: what was kept to make
 * one (the client's headers and body, their parsed and neutral forms, the
 * plan's model names, the other slot's buffer, a 4xx kept, the notes of
 * attempts failed) is freed, so an open stream holds none of it. The
 * request line stays for the logs, the winner's model for its report. */
static void forget_request(struct exchange *ex)
{
	struct attempt *at = ex->won;

	drop_xreq(ex);
	ex->xreq_state = 0;
	free(ex->refusal);
	ex->refusal = NULL;
	dt_headers_free(&ex->req->headers);
	evbuffer_free(ex->req->body);
	ex->req->body = NULL;
	dt_headers_free(&at->headers);
	for (size_t k = 0; k < MAX_LIVE; k++) {
		if (&ex->att[k] != at && ex->att[k].body) {
			evbuffer_free(ex->att[k].body);
			ex->att[k].body = NULL;
		}
	}
	if (ex->kept.body)
		evbuffer_free(ex->kept.body);
	ex->kept.body = NULL;
	dt_headers_free(&ex->kept.headers);
	if (ex->tried)
		evbuffer_free(ex->tried);
	ex->tried = NULL;
	/* the arena holds the plan's model names: the winner's is copied */
	ex->won_model = strdup(ex->plan[at->i].model);
	if (!ex->won_model)
		return; /* the arena stays to the end: memory only */
	for (size_t i = 0; i < ex->n_plan; i++)
		ex->plan[i].model = i == at->i ? ex->won_model : "";
	ex->body = NULL;
	ex->model = NULL;
	ex->unfit = NULL;
	dt_arena_free(&ex->arena);
}

/* The commit point: the head goes to the client. type NULL: the provider's
 * body as it comes; else a body of ours of that type and length (-1:
 * unknown). */
static void commit(struct attempt *at, int status, const struct dt_headers *up,
		   const char *type, int64_t length)
{
	/* a body of ours is not the provider's encoding */
	static const char *const recoded[] = { "content-encoding", NULL };
	struct exchange *ex = at->ex;
	struct dt_headers extra = {0};
	const char *const *drop = type ? recoded : NULL;

	win(at);
	/* the provider's fields go out as they are, less what the HTTP layer
	 * drops (hop-by-hop, Content-Length), drop and what extra sets */
	if (type) {
		dt_headers_add_str(&extra, "content-type", type);
	} else {
		const char *clen = dt_headers_get(up, "content-length");

		type = dt_headers_get(up, "content-type");
		length = clen ? strtoll(clen, NULL, 10) : -1;
	}
	ex->sse = type && strncasecmp(type, "text/event-stream", 17) == 0;
	if (ex->sse)
		length = -1;
	add_detour_headers(ex, &extra, member(at));
	record_answer(ex, status, at->rec);
	if (status >= 200 && status < 300)
		dt_router_stick(ex->s->p->router, member(at), &ex->needs, dt_now_ns());
	dt_http_respond_head_with(ex->s->http, status, up, drop, &extra, length);
	dt_headers_free(&extra);
	forget_request(ex);
	dt_http_set_drain_cb(ex->s->http, on_drain, ex);
	if (ex->sse)
		arm_idle(at);
}

/* What the client sees of an answer that is not what the provider said. */
static struct dt_xctx client_view(const struct attempt *at)
{
	return (struct dt_xctx){
		.client_model = at->ex->model ? at->ex->model : member(at)->model,
		.now = time(NULL),
		.seed = at->ex->seed,
		.stream_usage = at->ex->xreq->stream_usage,
	};
}

/* A 2xx to translate: a stream gets its translator, a whole answer is
 * collected; either is held until it is known to be worth committing. */
static void begin_translated(struct attempt *at, const struct dt_headers *h)
{
	struct dt_xctx view = client_view(at);

	if (dt_headers_copy(&at->headers, h) || (!at->body && !(at->body = evbuffer_new())) ||
	    (at->ex->xreq->stream && !(at->xs = dt_xstream_new(at->from, at->ex->shape, &view)))) {
		answer_failed(at->ex, "out of memory");
		return;
	}
	if (at->xs)
		arm_idle(at);
}

/* A 2xx relayed as it is, of a call that costs: its usage is read as it
 * passes, and the usage chunk detour asked for taken out of a stream.
 * An answer in a content coding cannot be read: it goes as it came. */
static void begin_metered(struct attempt *at, const struct dt_headers *h)
{
	const char *coding = dt_headers_get(h, "content-encoding");
	bool readable = metered(at->ex) && (!coding || strcasecmp(coding, "identity") == 0);

	at->usage_asked &= readable && at->ex->sse;
	if (!readable)
		return;
	at->meter = dt_xmeter_new(at->from, at->ex->sse, at->usage_asked);
	/* a stream that is stripped goes out through the slot's buffer */
	if (at->usage_asked && (!at->meter || (!at->body && !(at->body = evbuffer_new())))) {
		/* the client would see what it did not ask for */
		answer_broken(at->ex, "out of memory");
		return;
	}
	if (!at->meter)
		log_warn("proxy: the usage of an answer of %s is not read: out of memory",
			 member_name(at));
}

/* Send what the translator wrote; backpressure as for a relayed stream. */
static void flush_pending(struct attempt *at)
{
	struct dt_http_conn *http = at->ex->s->http;
	size_t n = evbuffer_get_length(at->body);

	if (n)
		dt_http_respond_body(http, evbuffer_pullup(at->body, (ev_ssize_t)n), n);
	evbuffer_drain(at->body, n);
	if (at->fetch && dt_http_backlogged(http))
		dt_fetch_pause(at->fetch, true);
}

/* The first token of a stream came: the health engine's TTFT. */
static void first_token(struct attempt *at)
{
	if (at->ttft_ns)
		return;
	at->ttft_ns = dt_now_ns() - at->started;
	if (at->ex->rec)
		at->ex->rec->ttft_ns = since_arrival(at->ex);
}

static void commit_stream(struct attempt *at)
{
	first_token(at);
	commit(at, at->status, &at->headers, "text/event-stream", -1);
	flush_pending(at);
}

/* Provider bytes of a translated stream. Before the first content an
 * error in it still moves the request on; after, it breaks the stream. */
static void feed_stream(struct attempt *at, const void *buf, size_t len)
{
	char err[256];

	if (dt_xstream_feed(at->xs, buf, len, at->body, err, sizeof(err))) {
		log_info("proxy: stream from %s: %s", member_name(at), err);
		if (at == at->ex->won)
			answer_broken(at->ex, err);
		else
			attempt_failed(at, DT_OUTCOME_SERVER_ERROR, "stream-error");
		return;
	}
	arm_idle(at);
	if (at == at->ex->won)
		flush_pending(at);
	else if (dt_xstream_info(at->xs)->content)
		commit_stream(at);
}

static void on_head(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h)
{
	struct attempt *at = ctx;
	enum dt_blame blame;
	char what[16];

	(void)f;
	at->head = true;
	at->deadline = 0;
	at->status = status;
	read_rate_limits(at, h);
	if (status >= 200 && status < 300) {
		if (at->xlate) {
			begin_translated(at, h);
		} else {
			commit(at, status, h, NULL, -1);
			begin_metered(at, h);
		}
		return;
	}
	blame = dt_router_classify_status(status, NULL, 0);
	if ((blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) && !alternatives(at) &&
	    at->from == at->ex->shape) {
		/* nowhere else to go: the provider's own answer says most */
		report(at, blame == DT_BLAME_RATE_LIMIT ? DT_OUTCOME_RATE_LIMITED : DT_OUTCOME_SERVER_ERROR);
		commit(at, status, h, NULL, -1);
		return;
	}
	if (blame == DT_BLAME_PROVIDER || blame == DT_BLAME_RATE_LIMIT) {
		snprintf(what, sizeof(what), "%d", status);
		attempt_failed(at, blame == DT_BLAME_RATE_LIMIT ? DT_OUTCOME_RATE_LIMITED :
			       DT_OUTCOME_SERVER_ERROR, what);
		return;
	}
	/* the body tells whom a 4xx blames (and another family's error is
	 * reshaped whole): hold it until the end */
	if (dt_headers_copy(&at->headers, h) || (!at->body && !(at->body = evbuffer_new()))) {
		answer_failed(at->ex, "out of memory");
		return;
	}
	at->holding = true;
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
	struct attempt *at = ctx;
	struct exchange *ex = at->ex;

	if (at->xs) {
		feed_stream(at, buf, len);
		return;
	}
	if (at != ex->won) {
		if (at->holding) {
			if (evbuffer_get_length(at->body) + len <= HELD_MAX)
				evbuffer_add(at->body, buf, len);
		} else if (at->xlate && evbuffer_get_length(at->body) + len > ANSWER_MAX) {
			attempt_failed(at, DT_OUTCOME_SERVER_ERROR, "answer-too-large");
		} else if (at->xlate) {
			evbuffer_add(at->body, buf, len);
		}
		return;
	}
	if (ex->sse) {
		first_token(at);
		watch_end(ex, buf, len);
		arm_idle(at);
	}
	if (at->meter && at->usage_asked) {
		if (dt_xmeter_feed(at->meter, buf, len, at->body))
			answer_broken(ex, "out of memory");
		else
			flush_pending(at);
		return;
	}
	if (at->meter)
		dt_xmeter_feed(at->meter, buf, len, NULL);
	dt_http_respond_body(ex->s->http, buf, len);
	if (dt_http_backlogged(ex->s->http))
		dt_fetch_pause(f, true);
}

static void finish_ok(struct exchange *ex)
{
	const char *marker = dt_family_info(original(ex)->family)->stream_end;
	struct attempt *at = ex->won;
	struct dt_http_conn *http;

	if (ex->sse && marker && !ex->end_seen && !at->xs) {
		answer_broken(ex, "the stream ended without its end marker");
		return;
	}
	if (at->meter && at->usage_asked) {
		if (dt_xmeter_finish(at->meter, at->body)) {
			answer_broken(ex, "out of memory");
			return;
		}
		flush_pending(at);
	}
	if (!at->reported)
		report(at, DT_OUTCOME_OK);
	account(at);
	log_debug("proxy: " REQ_FMT " -> %s %s: %d (%llu ms)", REQ_ARGS(ex), member_name(at),
		  member(at)->model, at->status,
		  (unsigned long long)((dt_now_ns() - ex->started_ns) / NS_PER_MS));
	http = detach(ex);
	dt_http_respond_end(http);
}

/* A translated stream ended: its closing events, or it broke. Before the
 * commit point it had no content yet: checked, and moved on if wanted. */
static void end_stream(struct attempt *at)
{
	char err[256];

	if (dt_xstream_finish(at->xs, at->body, err, sizeof(err))) {
		if (at == at->ex->won)
			answer_broken(at->ex, err);
		else
			attempt_failed(at, DT_OUTCOME_RESET, "stream-ended-early");
		return;
	}
	if (at != at->ex->won) {
		if (quality_retry(at, dt_quality_of_stream(at->ex->xreq, dt_xstream_info(at->xs))))
			return;
		commit_stream(at);
	} else {
		flush_pending(at);
	}
	finish_ok(at->ex);
}

/* A whole answer collected: parsed, checked, and given in the client's shape. */
static void answer_translated(struct attempt *at)
{
	struct exchange *ex = at->ex;
	size_t n = evbuffer_get_length(at->body), len;
	struct dt_xctx view = client_view(at);
	struct dt_xresponse r;
	char err[256], *body;

	if (dt_xresp_parse(at->from, (const char *)evbuffer_pullup(at->body, (ev_ssize_t)n), n,
			   &r, err, sizeof(err))) {
		log_info("proxy: answer of %s: %s", member_name(at), err);
		attempt_failed(at, DT_OUTCOME_SERVER_ERROR, "malformed-answer");
		return;
	}
	at->usage = r.usage;
	if (quality_retry(at, dt_quality_of_response(ex->xreq, &r))) {
		dt_xresp_free(&r);
		return;
	}
	body = dt_xresp_emit(ex->shape, &r, &view, &len);
	dt_xresp_free(&r);
	if (!body) {
		answer_failed(ex, "out of memory");
		return;
	}
	commit(at, at->status, &at->headers, DT_JSON_TYPE, (int64_t)len);
	dt_http_respond_body(ex->s->http, body, len);
	free(body);
	finish_ok(ex);
}

static void held_done(struct attempt *at)
{
	size_t n = evbuffer_get_length(at->body);
	const char *body = (const char *)evbuffer_pullup(at->body, (ev_ssize_t)n);
	enum dt_blame blame = dt_router_classify_status(at->status, body, n);
	char what[16];

	snprintf(what, sizeof(what), "%d", at->status);
	at->blame = blame;
	keep_error(at);
	switch (blame) {
	case DT_BLAME_REQUEST:
	case DT_BLAME_NONE:
		report(at, DT_OUTCOME_OK); /* it answered, the request is at fault */
		win(at);
		answer_kept(at->ex); /* never retried elsewhere */
		return;
	case DT_BLAME_CONTEXT:
		report(at, DT_OUTCOME_OK);
		at->ex->context_failed = (int)at->i;
		move_on(at, what);
		return;
	case DT_BLAME_KEY:
		attempt_failed(at, DT_OUTCOME_KEY_REFUSED, what);
		return;
	case DT_BLAME_RATE_LIMIT:
		attempt_failed(at, DT_OUTCOME_RATE_LIMITED, what);
		return;
	case DT_BLAME_PROVIDER:
		attempt_failed(at, DT_OUTCOME_SERVER_ERROR, what);
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
	struct attempt *at = ctx;
	struct exchange *ex = at->ex;

	(void)f;
	at->fetch = NULL;
	if (e == DT_FETCH_OK && at->xs) {
		end_stream(at);
		return;
	}
	if (at == ex->won) {
		if (e == DT_FETCH_OK)
			finish_ok(ex);
		else
			answer_broken(ex, errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
		return;
	}
	if (e == DT_FETCH_OK && at->holding) {
		held_done(at);
		return;
	}
	if (e == DT_FETCH_OK && at->xlate) {
		answer_translated(at);
		return;
	}
	log_debug("proxy: %s: %s", member_name(at), errmsg && *errmsg ? errmsg : dt_fetch_error_str(e));
	attempt_failed(at, outcome_of(e), dt_fetch_error_str(e));
}

static const struct dt_fetch_ops fetch_ops = {
	.head = on_head,
	.data = on_data,
	.done = on_done,
};

/* An attempt's deadline passed: no first byte, or a stream went silent. */
static void attempt_timed_out(struct attempt *at)
{
	at->deadline = 0;
	if (!at->head)
		attempt_failed(at, DT_OUTCOME_FIRST_BYTE_TIMEOUT, "first-byte-timeout");
	else if (at == at->ex->won)
		answer_broken(at->ex, "no event within the stream idle timeout");
	else
		attempt_failed(at, DT_OUTCOME_FIRST_BYTE_TIMEOUT, "stream-idle-timeout");
}

/* The timer is the session's: it is pending only while s->ex is. One
 * deadline is handled per call; what it leads to sets the timer again. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct exchange *ex = s->ex;
	struct attempt *lone = hedgeable(ex);
	uint64_t now = dt_now_ns();

	(void)fd;
	(void)what;
	for (size_t k = 0; k < MAX_LIVE; k++) {
		if (ex->att[k].live && ex->att[k].deadline && ex->att[k].deadline <= now) {
			attempt_timed_out(&ex->att[k]);
			return;
		}
	}
	if (lone && lone->hedge_at <= now) {
		hedge(lone);
		return;
	}
	arm_timer(ex);
}

/* ---- start ----------------------------------------------------------------------- */

/* What the request needs of a member, for a class that uses it: read from
 * its neutral form, parsed now and kept for the attempts. One that does
 * not parse is not filtered; it is refused only if a member needs its
 * translation. */
static void read_needs(struct exchange *ex)
{
	parse_request(ex);
	if (ex->xreq_state < 0) {
		ex->xreq_state = 0;
		free(ex->refusal);
		ex->refusal = NULL;
		return;
	}
	dt_traits_of(ex->xreq, ex->s->app ? ex->s->app->name : "-", &ex->needs);
}

/* What the plan's notes tell the client (x-detour-*) and the log. */
static void note_plan(struct exchange *ex, const struct dt_plan_notes *notes)
{
	char caps[64];

	ex->mode = notes->mode;
	ex->sticky = notes->sticky;
	if (ex->mode != DT_HEALTH_NORMAL)
		log_debug("proxy: " REQ_FMT ": %s", REQ_ARGS(ex), health_mode_str(ex->mode));
	/* a name lost to a failed allocation only shortens the field */
	for (size_t i = 0; i < notes->n_unfit; i++)
		ex->unfit = dt_arena_printf(&ex->arena, "%s%s%s=%s", ex->unfit ? ex->unfit : "",
					    ex->unfit ? ", " : "",
					    provider(ex, notes->unfit[i].provider_id)->name,
					    dt_router_caps_str(notes->unfit[i].missing, caps, sizeof(caps)));
	if (ex->unfit)
		log_debug("proxy: " REQ_FMT ": lacking what it needs: %s", REQ_ARGS(ex), ex->unfit);
}

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
		ex->stream = ex->call.path_stream;
		return;
	}
	if (text)
		ex->body = dt_json_parse(&ex->arena, text, n, err, sizeof(err));
	ex->model = dt_json_cstr(&ex->arena, dt_json_get(ex->body, "model"));
	ex->stream = dt_json_get_true(ex->body, "stream");
}

void exchange_start(struct session *s, struct dt_http_request *req)
{
	struct dt_proxy *p = s->p;
	struct exchange *ex = calloc(1, sizeof(*ex));
	uint64_t now = dt_now_ns();
	struct dt_plan_notes notes;
	const char *model;

	if (!ex) {
		dt_http_request_free(req);
		dt_http_respond_error(s->http, 500, "detour: out of memory", NULL);
		return;
	}
	ex->s = s;
	ex->req = req;
	ex->started_ns = now;
	ex->context_failed = -1;
	ex->wait.done = on_paced;
	ex->wait.ctx = ex;
	s->ex = ex;
	if (!s->timer)
		s->timer = evtimer_new(p->base, on_timer, s);
	if (!s->timer) {
		struct dt_http_conn *http = detach(ex);

		dt_http_respond_error(http, 500, "detour: out of memory", NULL);
		return;
	}
	read_call(ex);
	model = ex->model ? ex->model : "";
	if (translatable(ex) && dt_router_reads_needs(p->router, s->provider_id, model))
		read_needs(ex);
	ex->app = app_id(s);
	ex->tokens = dt_rb_estimate(evbuffer_get_length(req->body), max_output(ex));
	record_start(ex);
	dt_router_request(p->router, now);
	ex->seed = p->requests++;
	ex->n_plan = dt_router_plan_budgeted(p->router, s->provider_id, model, &ex->needs, ex->seed,
					     now, &(struct dt_plan_budget){ member_usable_at, ex },
					     ex->plan, MAX_ATTEMPTS, &notes);
	note_plan(ex, &notes);
	for (size_t i = 0; i < ex->n_plan; i++) {
		/* the router's strings live until the next reload: keep copies
		 * (in the arena: an exchange lives as long as its stream) */
		const char *model = dt_arena_strdup(&ex->arena, ex->plan[i].model);

		if (!model) {
			ex->n_plan = i;         /* out of memory: the members copied */
			break;
		}
		ex->plan[i].model = model;
	}
	next_attempt(ex);
}
