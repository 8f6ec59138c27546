// SPDX-License-Identifier: MIT
/* Active probes of the providers; see probe.h and docs/probe.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "apicall.h"
#include "family.h"
#include "headers.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "probe.h"
#include "ratelimit.h"
#include "sse.h"
#include "upstream.h"
#include "xlate.h"

#define DEFAULT_TIMEOUT_MS    10000
#define DEFAULT_TTFT_PER_HOUR 4
#define HOUR_NS               (3600ull * 1000000000ull)
#define SSE_MAX_EVENT         (64 * 1024)
/* The TTFT probe's question: short, so the prompt costs a token or two. */
#define TTFT_PROMPT           "Say hi"
/* Its input tokens when the answer tells none: about 4 bytes a token. */
#define TTFT_PROMPT_TOKENS    ((sizeof(TTFT_PROMPT) - 1 + 3) / 4)

struct flight;

/* A provider as probed: its configuration (owned copies) and what the
 * prober keeps of it; the schedule itself is the health engine's. */
struct probe {
	struct dt_prober *owner;
	uint32_t id;
	char name[DT_NAME_LEN];
	enum dt_family family;
	char *base_url;
	char *key;                  /* NULL: none; wiped on free */
	char *ttft_model;           /* NULL: model-list probes only */
	uint64_t ttft_spacing;      /* ns between two TTFT probes: the hourly cap */
	bool ttft_sent;             /* ever */
	uint64_t last_ttft;         /* when the last one was sent */
	uint64_t hold_until;        /* a probe could not be started: not before this */
	bool warned;                /* a refused key or odd answer is logged once */
	struct dt_probe_stats stats;
	struct flight *flight;      /* the probe in flight, if any */
};

/* One probe in flight. */
struct flight {
	struct probe *probe;        /* handed to the new one on a reload */
	struct dt_fetch *f;
	bool ttft;
	uint64_t started;
	int status;                 /* 0 until the answer's head */
	bool reported;
	struct dt_sse sse;          /* TTFT: the stream's events */
	bool sse_broken;            /* ... stopped being parsed */
	struct dt_xmeter *meter;    /* TTFT: its usage, as the proxy reads answers' */
};

struct dt_prober {
	struct dt_upstream *u;
	struct dt_health *h;
	struct event *timer;
	unsigned timeout_ms;
	dt_probe_clock_fn clock;
	void *clock_ctx;
	dt_probe_cost_fn cost;
	void *cost_ctx;
	struct probe *probes[DT_MAX_PROVIDERS];  /* by id; NULL: not probed */
};

static uint64_t monotonic_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t prober_now(const struct dt_prober *p)
{
	return p->clock(p->clock_ctx);
}

static bool is_2xx(int status)
{
	return status >= 200 && status < 300;
}

/* ---- probes in flight ----------------------------------------------------- */

static void flight_end(struct flight *fl)
{
	fl->probe->flight = NULL;
	dt_sse_free(&fl->sse);
	dt_xmeter_free(fl->meter);
	free(fl);
}

static void flight_cancel(struct flight *fl)
{
	dt_fetch_cancel(fl->f);
	flight_end(fl);
}

/* ---- the provider list ---------------------------------------------------- */

static void probe_free(struct probe *pr)
{
	if (!pr)
		return;
	if (pr->flight)
		flight_cancel(pr->flight);
	if (pr->key) {
		explicit_bzero(pr->key, strlen(pr->key));
		free(pr->key);
	}
	free(pr->base_url);
	free(pr->ttft_model);
	free(pr);
}

static char *dup_given(const char *s, bool *failed)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

static struct probe *probe_new(struct dt_prober *owner, const struct dt_probe_provider *v)
{
	struct probe *pr = calloc(1, sizeof(*pr));
	bool failed = false;
	unsigned per_hour = v->ttft_per_hour ? v->ttft_per_hour : DEFAULT_TTFT_PER_HOUR;

	if (!pr)
		return NULL;
	pr->owner = owner;
	pr->id = v->id;
	snprintf(pr->name, sizeof(pr->name), "%s", v->name ? v->name : "");
	pr->family = v->family;
	pr->base_url = strdup(v->base_url ? v->base_url : "");
	pr->key = dup_given(v->key, &failed);
	pr->ttft_model = dup_given(v->ttft_model, &failed);
	pr->ttft_spacing = HOUR_NS / per_hour;
	if (!pr->base_url || failed) {
		probe_free(pr);
		return NULL;
	}
	return pr;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Does a probe sent under old still say something of pr? */
static bool same_target(const struct probe *old, const struct probe *pr)
{
	return old->family == pr->family && strcmp(old->base_url, pr->base_url) == 0 &&
	       same_str(old->key, pr->key) && same_str(old->ttft_model, pr->ttft_model);
}

/* pr replaces old (the same id, reloaded): what was measured stays. */
static void carry_over(struct probe *old, struct probe *pr)
{
	pr->ttft_sent = old->ttft_sent;
	pr->last_ttft = old->last_ttft;
	pr->stats = old->stats;
	if (!same_target(old, pr))
		return;
	pr->warned = old->warned;
	pr->hold_until = old->hold_until;
	if (old->flight) {
		pr->flight = old->flight;
		pr->flight->probe = pr;
		old->flight = NULL;
	}
}

/* ---- the timer ------------------------------------------------------------ */

/* When pr's next probe may go; UINT64_MAX while one is in flight. */
static uint64_t probe_due(const struct probe *pr)
{
	uint64_t due;

	if (pr->flight)
		return UINT64_MAX;
	due = dt_health_probe_due(pr->owner->h, pr->id);
	return due > pr->hold_until ? due : pr->hold_until;
}

static void arm(struct dt_prober *p)
{
	uint64_t next = UINT64_MAX, now, wait;
	struct timeval tv;

	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		uint64_t due = p->probes[id] ? probe_due(p->probes[id]) : UINT64_MAX;

		next = due < next ? due : next;
	}
	if (next == UINT64_MAX) {
		evtimer_del(p->timer);
		return;
	}
	now = prober_now(p);
	wait = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(wait / 1000000000ull);
	tv.tv_usec = (suseconds_t)(wait % 1000000000ull / 1000);
	evtimer_add(p->timer, &tv);
}

/* ---- reports -------------------------------------------------------------- */

static void report(struct flight *fl, bool ok, uint64_t now)
{
	struct probe *pr = fl->probe;

	fl->reported = true;
	if (!ok)
		pr->stats.failed++;
	dt_health_probe(pr->owner->h, pr->id, ok, now - fl->started, now);
}

/* What an answer says of the provider: reachable unless it is not serving.
 * A refused key is the key's fault, not the provider's, but worth saying. */
static bool answer_ok(struct probe *pr, int status)
{
	if (status >= 500 || status == 408)
		return false;
	if (is_2xx(status)) {
		pr->warned = false;
		return true;
	}
	if (status == 429 || pr->warned)
		return true;
	if (status == 401 || status == 403) {
		/* without a key a refusal is what the probe expects */
		if (pr->key)
			log_warn("provider %s: probe: its key was refused (%d); requests signed with it will fail",
				 pr->name, status);
	} else {
		log_warn("provider %s: probe answered %d: reachable, but the probe does not suit it",
			 pr->name, status);
	}
	pr->warned = true;
	return true;
}

/* A failed fetch is a failed probe, unless an answer that is not a 2xx
 * came before it: its status judges. */
static bool outcome_ok(struct flight *fl, enum dt_fetch_error e, const char *errmsg)
{
	if (e != DT_FETCH_OK && (!fl->status || is_2xx(fl->status))) {
		log_debug("provider %s: probe failed: %s (%s)", fl->probe->name,
			  dt_fetch_error_str(e), errmsg);
		return false;
	}
	return answer_ok(fl->probe, fl->status);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A 429 tells when the limit resets: the engine sets the provider aside. */
static void report_ratelimit(struct probe *pr, const struct dt_headers *h)
{
	struct dt_ratelimit rl;

	dt_ratelimit_headers(&rl, h, wall_ms());
	dt_health_ratelimit(pr->owner->h, pr->id, NULL, &rl, prober_now(pr->owner));
}

/* ---- the TTFT probe's stream ---------------------------------------------- */

static int on_event(void *arg, const struct dt_sse_event *ev)
{
	struct flight *fl = arg;

	(void)ev;
	/* the first data line is the first token's time */
	if (!fl->reported)
		report(fl, true, prober_now(fl->probe->owner));
	return 0;
}

static void count_cost(struct flight *fl)
{
	struct dt_probe_stats *c = &fl->probe->stats;
	const struct dt_xusage *u = fl->meter ? dt_xmeter_usage(fl->meter) : NULL;
	/* the answer told none (or its meter could not be made): what was asked */
	unsigned long long in = u && u->known ? (unsigned long long)u->input_tokens : TTFT_PROMPT_TOKENS;
	unsigned long long out = u && u->known ? (unsigned long long)u->output_tokens : 1;

	c->input_tokens += in;
	c->output_tokens += out;
	if (fl->probe->owner->cost)
		fl->probe->owner->cost(fl->probe->owner->cost_ctx, fl->probe->id, fl->probe->ttft_model,
				       u ? u : &(struct dt_xusage){0});
	/* probes that cost money say so, each time */
	log_info("provider %s: TTFT probe cost %llu input + %llu output tokens; "
		 "%llu TTFT probes so far, %llu + %llu tokens", fl->probe->name, in, out,
		 c->ttft_probes, c->input_tokens, c->output_tokens);
}

/* ---- fetch callbacks ------------------------------------------------------ */

static void on_head(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h)
{
	struct flight *fl = ctx;

	(void)f;
	fl->status = status;
	if (status == 429)
		report_ratelimit(fl->probe, h);
}

static void on_data(void *ctx, struct dt_fetch *f, const void *buf, size_t len)
{
	struct flight *fl = ctx;

	(void)f;
	if (!fl->ttft || !is_2xx(fl->status))
		return;
	if (fl->meter)
		dt_xmeter_feed(fl->meter, buf, len, NULL);
	if (!fl->sse_broken && dt_sse_feed(&fl->sse, buf, len, on_event, fl) < 0)
		fl->sse_broken = true;
}

static void on_done(void *ctx, struct dt_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	struct flight *fl = ctx;
	struct dt_prober *p = fl->probe->owner;

	(void)f;
	if (!fl->reported)
		report(fl, outcome_ok(fl, e, errmsg), prober_now(p));
	if (fl->ttft && is_2xx(fl->status))
		count_cost(fl);
	flight_end(fl);
	arm(p);
}

static const struct dt_fetch_ops probe_ops = {
	.head = on_head, .data = on_data, .done = on_done,
};

/* ---- sending -------------------------------------------------------------- */

/* The TTFT probe's turn: opted in, and the hourly cap's spacing passed. */
static bool ttft_turn(const struct probe *pr, uint64_t now)
{
	return pr->ttft_model && (!pr->ttft_sent || now - pr->last_ttft >= pr->ttft_spacing);
}

/* A one-token streamed completion in the family's shape. */
static char *ttft_body(const struct probe *pr, size_t *len)
{
	struct dt_jbuf b = {0};

	switch (pr->family) {
	case DT_FAMILY_GEMINI:
		dt_jbuf_lit(&b, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\""
			   TTFT_PROMPT "\"}]}],\"generationConfig\":{\"maxOutputTokens\":1}}");
		break;
	case DT_FAMILY_ANTHROPIC:
		dt_jbuf_lit(&b, "{\"model\":");
		dt_jbuf_str(&b, pr->ttft_model);
		dt_jbuf_lit(&b, ",\"max_tokens\":1,\"stream\":true,"
			   "\"messages\":[{\"role\":\"user\",\"content\":\"" TTFT_PROMPT "\"}]}");
		break;
	case DT_FAMILY_OPENAI:
	default:
		dt_jbuf_lit(&b, "{\"model\":");
		dt_jbuf_str(&b, pr->ttft_model);
		dt_jbuf_lit(&b, ",\"max_tokens\":1,\"stream\":true,"
			   "\"stream_options\":{\"include_usage\":true},"
			   "\"messages\":[{\"role\":\"user\",\"content\":\"" TTFT_PROMPT "\"}]}");
		break;
	}
	return dt_jbuf_finish(&b, len);
}

/* The request's fields: the family's version (fakellm and Anthropic tell
 * the families' model lists apart by it) and the key, when there is one. */
static int probe_headers(const struct probe *pr, bool ttft, struct dt_headers *h)
{
	if (pr->family == DT_FAMILY_ANTHROPIC &&
	    dt_headers_add_str(h, "anthropic-version", "2023-06-01"))
		return -1;
	if (ttft && dt_headers_add_str(h, "content-type", "application/json"))
		return -1;
	return pr->key ? dt_family_sign(pr->family, h, pr->key) : 0;
}

static struct flight *flight_new(struct probe *pr, bool ttft, uint64_t now)
{
	struct flight *fl = calloc(1, sizeof(*fl));

	if (!fl)
		return NULL;
	fl->probe = pr;
	fl->ttft = ttft;
	fl->started = now;
	/* without a meter the probe still measures; its cost is then the one asked */
	fl->meter = ttft ? dt_xmeter_new(pr->family, true, false) : NULL;
	dt_sse_init(&fl->sse, SSE_MAX_EVENT);
	return fl;
}

static int probe_send(struct probe *pr, bool ttft, uint64_t now, char *err, size_t errlen)
{
	struct dt_headers h = {0};
	struct dt_fetch_req req = { .method = ttft ? "POST" : "GET", .headers = &h,
				    .total_timeout_ms = pr->owner->timeout_ms };
	char *url = NULL, *body = NULL;
	struct flight *fl = flight_new(pr, ttft, now);
	int rc = -1;

	if (ttft) {
		url = dt_apicall_url(pr->family, pr->base_url, pr->ttft_model, true);
		body = ttft_body(pr, &req.body_len);
	} else if (asprintf(&url, "%s/models", pr->base_url) < 0) {
		url = NULL;
	}
	snprintf(err, errlen, "out of memory");
	if (fl && url && (body || !ttft) && !probe_headers(pr, ttft, &h)) {
		req.url = url;
		req.body = body;
		fl->f = dt_fetch_start(pr->owner->u, &req, &probe_ops, fl, err, errlen);
		rc = fl->f ? 0 : -1;
	}
	if (rc == 0)
		pr->flight = fl;
	else if (fl)
		flight_end(fl);
	/* the signed fields hold the key */
	for (size_t i = 0; i < h.n; i++)
		explicit_bzero(h.v[i].value, strlen(h.v[i].value));
	dt_headers_free(&h);
	free(url);
	free(body);
	return rc;
}

static void probe_start(struct probe *pr, uint64_t now)
{
	bool ttft = ttft_turn(pr, now);
	char err[256];

	if (probe_send(pr, ttft, now, err, sizeof(err))) {
		/* our failure, not the provider's: try again a timeout later */
		log_warn("provider %s: probe not sent: %s", pr->name, err);
		pr->hold_until = now + (uint64_t)pr->owner->timeout_ms * 1000000ull;
		return;
	}
	pr->stats.sent++;
	if (!ttft)
		return;
	pr->ttft_sent = true;
	pr->last_ttft = now;
	pr->stats.ttft_probes++;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dt_prober *p = arg;
	uint64_t now = prober_now(p);

	(void)fd;
	(void)what;
	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++)
		if (p->probes[id] && probe_due(p->probes[id]) <= now)
			probe_start(p->probes[id], now);
	arm(p);
}

/* ---- API ------------------------------------------------------------------ */

struct dt_prober *dt_prober_new(struct event_base *base, struct dt_upstream *u,
				struct dt_health *h, const struct dt_prober_opts *o,
				char *err, size_t errlen)
{
	struct dt_prober *p = calloc(1, sizeof(*p));

	if (!p || !(p->timer = evtimer_new(base, on_timer, p))) {
		snprintf(err, errlen, "out of memory");
		free(p);
		return NULL;
	}
	p->u = u;
	p->h = h;
	dt_prober_set_timeout(p, o ? o->timeout_ms : 0);
	p->clock = o && o->clock ? o->clock : monotonic_ns;
	p->clock_ctx = o ? o->clock_ctx : NULL;
	p->cost = o ? o->cost : NULL;
	p->cost_ctx = o ? o->cost_ctx : NULL;
	return p;
}

void dt_prober_free(struct dt_prober *p)
{
	if (!p)
		return;
	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++)
		probe_free(p->probes[id]);
	event_free(p->timer);
	free(p);
}

static int check_ids(const struct dt_probe_provider *v, size_t n)
{
	bool seen[DT_MAX_PROVIDERS] = {0};

	for (size_t i = 0; i < n; i++) {
		if (v[i].id >= DT_MAX_PROVIDERS || seen[v[i].id])
			return -EINVAL;
		seen[v[i].id] = true;
	}
	return 0;
}

int dt_prober_set_providers(struct dt_prober *p, const struct dt_probe_provider *v, size_t n)
{
	struct probe *next[DT_MAX_PROVIDERS] = {0};
	int rc = check_ids(v, n);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		next[v[i].id] = probe_new(p, &v[i]);
		if (!next[v[i].id]) {
			for (size_t id = 0; id < DT_MAX_PROVIDERS; id++)
				probe_free(next[id]);
			return -ENOMEM;
		}
	}
	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		if (p->probes[id] && next[id])
			carry_over(p->probes[id], next[id]);
		probe_free(p->probes[id]);
		p->probes[id] = next[id];
	}
	arm(p);
	return 0;
}

void dt_prober_reschedule(struct dt_prober *p)
{
	arm(p);
}

void dt_prober_set_timeout(struct dt_prober *p, unsigned timeout_ms)
{
	p->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

struct dt_probe_stats dt_prober_stats(const struct dt_prober *p, uint32_t id)
{
	struct dt_probe_stats none = {0};

	return id < DT_MAX_PROVIDERS && p->probes[id] ? p->probes[id]->stats : none;
}
