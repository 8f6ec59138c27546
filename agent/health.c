// SPDX-License-Identifier: MIT
/* The health engine; see health.h and docs/health.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"

#define NS_PER_MS 1000000ull
/* The rates' window slides a tenth at a time. */
#define BUCKETS 10
/* A baseline learns a normal sample with weight 1/8 and a slow one with
 * 1/1024: an outage's hundred slow calls move it by a tenth of the way, so
 * they stay slow; a change that lasts thousands of calls becomes the norm. */
#define LEARN_SHIFT      3
#define LEARN_SHIFT_SLOW 10

struct bucket {
	uint64_t epoch;          /* now / bucket width when last counted into */
	uint32_t calls;
	uint32_t failures;
	uint32_t timed;          /* calls with a time to first token */
	uint32_t slow;
	uint32_t poor;           /* refused or cut answers */
	uint32_t connects;       /* kernel: completed connects with a latency */
	uint32_t slow_connects;
	uint32_t segments;
	uint32_t retransmits;
};

struct latency {
	uint64_t avg_ns;         /* exponentially weighted */
	uint32_t samples;
};

/* A state's cause and the numbers its text needs. */
struct cause {
	enum dt_health_reason reason;
	uint64_t a, b;
};

enum breaker { CLOSED, OPEN, HALF_OPEN };

/* One verdict: a provider's, or one of its models'. */
struct circuit {
	bool used;                        /* model slots only */
	char model[DT_HEALTH_MODEL_LEN];  /* "" for the provider itself */
	uint64_t last_used;               /* model slots: for eviction */

	enum breaker breaker;
	struct cause open_cause;          /* OPEN and HALF_OPEN */
	bool held;                        /* OPEN while the path is lost: no timer ends it */
	struct cause held_over;           /* ... the ejection's cause it interrupted */
	uint64_t epoch;                   /* outcomes of attempts begun before this decide nothing */
	uint64_t open_until;
	unsigned eject_level;             /* the next ejection lasts base << level, less the decay */
	uint64_t closed_at;               /* the decay runs from here */
	unsigned ejections;
	unsigned consecutive;
	unsigned trials_admitted, trials_ok, trials_failed;
	uint64_t last_admit;

	uint64_t limited_until;
	struct cause limit_cause;
	struct cause degraded;            /* reason NONE: not degraded */
	struct cause healthy_cause;       /* shown at the next change to HEALTHY, then forgotten */
	enum dt_health_override override;

	struct bucket window[BUCKETS];
	struct latency ttft, connect, total;
	int last_status;

	/* as last published */
	enum dt_state state;
	struct cause shown;
	uint64_t shown_until;
	uint64_t since;
};

struct provider {
	struct circuit c;
	struct circuit models[DT_HEALTH_MODEL_SLOTS];
	uint64_t probe_due;
	unsigned probe_shift;             /* interval doubled this often while traffic proves health */
	bool traffic_since_probe;
};

struct dt_health {
	struct dt_health_opts o;          /* defaults filled in */
	dt_health_change_fn change;
	void *ctx;
	uint64_t prng;
	uint64_t next_event;
	uint32_t n_seen;                  /* highest provider id seen + 1: what a tick walks */
	struct provider p[DT_MAX_PROVIDERS];
};

static const struct dt_health_opts defaults = {
	.consecutive_failures = 5,
	.window_ms = 30000,
	.min_calls = 10,
	.failure_rate_percent = 50,
	.slow_rate_percent = 50,
	.poor_rate_percent = 50,
	.slow_factor_percent = 300,
	.slow_min_ms = 1000,
	.slow_ceiling_ms = 10000,
	.connect_slow_min_ms = 200,
	.connect_ceiling_ms = 3000,
	.baseline_samples = 10,
	.retransmit_percent = 5,
	.retransmit_min_segments = 200,
	.eject_base_ms = 10000,
	.eject_max_ms = 300000,
	.eject_decay_ms = 60000,
	.trial_requests = 3,
	.trial_success_percent = 100,
	.trial_timeout_ms = 30000,
	.models_down_for_provider = 2,
	.class_max_ejected_percent = 50,
	.rate_limit_default_ms = 1000,
	.rate_limit_token_floor = 1000,
	.probe_interval_ms = 15000,
	.probe_interval_down_ms = 2000,
	.probe_interval_max_ms = 120000,
	.probe_jitter_percent = 20,
	.seed = 0x6465746f75720001ull,
};

static unsigned pick(unsigned value, unsigned def, unsigned max)
{
	value = value ? value : def;
	return value < max ? value : max;
}

void dt_health_set_opts(struct dt_health *h, const struct dt_health_opts *o)
{
	const struct dt_health_opts *d = &defaults;

	if (!o)
		o = d;
	h->o = (struct dt_health_opts){
		.consecutive_failures = pick(o->consecutive_failures, d->consecutive_failures, UINT32_MAX),
		.window_ms = pick(o->window_ms, d->window_ms, UINT32_MAX),
		.min_calls = pick(o->min_calls, d->min_calls, UINT32_MAX),
		.failure_rate_percent = pick(o->failure_rate_percent, d->failure_rate_percent, 100),
		.slow_rate_percent = pick(o->slow_rate_percent, d->slow_rate_percent, 100),
		.poor_rate_percent = pick(o->poor_rate_percent, d->poor_rate_percent, 100),
		.slow_factor_percent = pick(o->slow_factor_percent, d->slow_factor_percent, UINT32_MAX),
		.slow_min_ms = pick(o->slow_min_ms, d->slow_min_ms, UINT32_MAX),
		.slow_ceiling_ms = pick(o->slow_ceiling_ms, d->slow_ceiling_ms, UINT32_MAX),
		.connect_slow_min_ms = pick(o->connect_slow_min_ms, d->connect_slow_min_ms, UINT32_MAX),
		.connect_ceiling_ms = pick(o->connect_ceiling_ms, d->connect_ceiling_ms, UINT32_MAX),
		.baseline_samples = pick(o->baseline_samples, d->baseline_samples, UINT32_MAX),
		.retransmit_percent = pick(o->retransmit_percent, d->retransmit_percent, 100),
		.retransmit_min_segments = pick(o->retransmit_min_segments, d->retransmit_min_segments,
						UINT32_MAX),
		.eject_base_ms = pick(o->eject_base_ms, d->eject_base_ms, UINT32_MAX),
		.eject_max_ms = pick(o->eject_max_ms, d->eject_max_ms, UINT32_MAX),
		.eject_decay_ms = pick(o->eject_decay_ms, d->eject_decay_ms, UINT32_MAX),
		.trial_requests = pick(o->trial_requests, d->trial_requests, UINT32_MAX),
		.trial_success_percent = pick(o->trial_success_percent, d->trial_success_percent, 100),
		.trial_timeout_ms = pick(o->trial_timeout_ms, d->trial_timeout_ms, UINT32_MAX),
		.models_down_for_provider = pick(o->models_down_for_provider,
						 d->models_down_for_provider, UINT32_MAX),
		.class_max_ejected_percent = pick(o->class_max_ejected_percent,
						  d->class_max_ejected_percent, 100),
		.rate_limit_default_ms = pick(o->rate_limit_default_ms, d->rate_limit_default_ms,
					      UINT32_MAX),
		.rate_limit_token_floor = pick(o->rate_limit_token_floor, d->rate_limit_token_floor,
					       UINT32_MAX),
		.probe_interval_ms = pick(o->probe_interval_ms, d->probe_interval_ms, UINT32_MAX),
		.probe_interval_down_ms = pick(o->probe_interval_down_ms, d->probe_interval_down_ms,
					       UINT32_MAX),
		.probe_interval_max_ms = pick(o->probe_interval_max_ms, d->probe_interval_max_ms,
					      UINT32_MAX),
		.probe_jitter_percent = pick(o->probe_jitter_percent, d->probe_jitter_percent, 100),
		.seed = o->seed ? o->seed : d->seed,
	};
}

struct dt_health *dt_health_new(const struct dt_health_opts *o, dt_health_change_fn change,
				void *ctx)
{
	struct dt_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	dt_health_set_opts(h, o);
	h->change = change;
	h->ctx = ctx;
	h->prng = h->o.seed;
	h->next_event = UINT64_MAX;
	return h;
}

void dt_health_free(struct dt_health *h)
{
	free(h);
}

void dt_health_forget(struct dt_health *h, uint32_t provider_id)
{
	if (provider_id < DT_MAX_PROVIDERS)
		memset(&h->p[provider_id], 0, sizeof(h->p[provider_id]));
}

static uint64_t ms_ns(unsigned ms)
{
	return (uint64_t)ms * NS_PER_MS;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- reasons ------------------------------------------------------------ */

static const char *const state_names[] = {
	[DT_HEALTHY] = "healthy", [DT_DEGRADED] = "degraded", [DT_RATE_LIMITED] = "rate-limited",
	[DT_DOWN] = "down", [DT_PROBING] = "probing",
};

const char *dt_health_state_name(enum dt_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

static const char *const limit_names[] = {
	[DT_RL_REQUESTS] = "requests", [DT_RL_TOKENS] = "tokens",
	[DT_RL_INPUT_TOKENS] = "input tokens", [DT_RL_OUTPUT_TOKENS] = "output tokens",
};

/* "250 ms" below a second, whole seconds (rounded up) above */
static void format_ms(char *buf, size_t len, uint64_t ms)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else
		snprintf(buf, len, "%" PRIu64 " s", (ms + 999) / 1000);
}

static void reason_text(const struct cause *c, char *buf, size_t len)
{
	char d[24];

	switch (c->reason) {
	case DT_HR_NONE:
		snprintf(buf, len, "no trouble seen");
		return;
	case DT_HR_CONSECUTIVE_FAILURES:
		snprintf(buf, len, "%" PRIu64 " consecutive failures", c->a);
		return;
	case DT_HR_FAILURE_RATE:
		snprintf(buf, len, "failure rate %" PRIu64 "%% over %" PRIu64 " calls", c->a, c->b);
		return;
	case DT_HR_CONNECTS_FAILING:
		snprintf(buf, len, "%" PRIu64 " connects failed or reset, none succeeded", c->a);
		return;
	case DT_HR_MODELS_DOWN:
		snprintf(buf, len, "%" PRIu64 " models down", c->a);
		return;
	case DT_HR_TRIAL_FAILED:
		snprintf(buf, len, "%" PRIu64 " of %" PRIu64 " trials failed", c->a, c->b);
		return;
	case DT_HR_EJECTION_ENDED:
		snprintf(buf, len, "ejection over, %" PRIu64 " trials admitted", c->a);
		return;
	case DT_HR_TRIALS_PASSED:
		snprintf(buf, len, "%" PRIu64 " of %" PRIu64 " trials succeeded", c->a, c->b);
		return;
	case DT_HR_RATE_LIMITED:
		format_ms(d, sizeof(d), c->a);
		snprintf(buf, len, "429, rate limit reset in %s", d);
		return;
	case DT_HR_LIMIT_EXHAUSTED:
		format_ms(d, sizeof(d), c->a);
		snprintf(buf, len, "%s exhausted, reset in %s",
			 c->b < DT_RL_KINDS ? limit_names[c->b] : "limit", d);
		return;
	case DT_HR_SLOW_CALLS:
		snprintf(buf, len, "slow calls %" PRIu64 "%% over %" PRIu64 " calls", c->a, c->b);
		return;
	case DT_HR_POOR_ANSWERS:
		snprintf(buf, len, "poor answers %" PRIu64 "%% over %" PRIu64 " calls", c->a, c->b);
		return;
	case DT_HR_SLOW_CONNECTS:
		snprintf(buf, len, "slow connects %" PRIu64 "%% over %" PRIu64 " connects", c->a, c->b);
		return;
	case DT_HR_RETRANSMITS:
		snprintf(buf, len, "retransmits %" PRIu64 "%% of %" PRIu64 " segments", c->a, c->b);
		return;
	case DT_HR_RECOVERED:
		snprintf(buf, len, "recovered");
		return;
	case DT_HR_DRAINED:
		snprintf(buf, len, "drained by operator");
		return;
	case DT_HR_FORCED:
		snprintf(buf, len, "forced by operator");
		return;
	case DT_HR_CLEARED:
		snprintf(buf, len, "override cleared");
		return;
	case DT_HR_FORGOTTEN:
		snprintf(buf, len, "no longer tracked");
		return;
	case DT_HR_NO_ROUTE:
		snprintf(buf, len, "route lost");
		return;
	case DT_HR_LINK_DOWN:
		snprintf(buf, len, "uplink down");
		return;
	case DT_HR_PATH_BACK:
		snprintf(buf, len, "path back, %" PRIu64 " trials admitted", c->a);
		return;
	case DT_HR_COUNT:
		break;
	}
	snprintf(buf, len, "?");
}

/* ---- window and baselines ------------------------------------------------ */

static uint64_t bucket_width(const struct dt_health *h)
{
	return ms_ns(h->o.window_ms) / BUCKETS;
}

/* The bucket now falls in, emptied when it last held older counts. */
static struct bucket *bucket_now(const struct dt_health *h, struct circuit *c, uint64_t now)
{
	uint64_t epoch = now / bucket_width(h);
	struct bucket *b = &c->window[epoch % BUCKETS];

	if (b->epoch != epoch)
		*b = (struct bucket){ .epoch = epoch };
	return b;
}

static struct bucket window_sum(const struct dt_health *h, const struct circuit *c, uint64_t now)
{
	uint64_t epoch = now / bucket_width(h);
	struct bucket s = { .epoch = epoch };

	for (size_t i = 0; i < BUCKETS; i++) {
		const struct bucket *b = &c->window[i];

		/* unsigned: a bucket from the future (clock went back) is out too */
		if (epoch - b->epoch >= BUCKETS)
			continue;
		s.calls += b->calls;
		s.failures += b->failures;
		s.timed += b->timed;
		s.slow += b->slow;
		s.poor += b->poor;
		s.connects += b->connects;
		s.slow_connects += b->slow_connects;
		s.segments += b->segments;
		s.retransmits += b->retransmits;
	}
	return s;
}

static uint64_t percent(uint64_t part, uint64_t whole)
{
	return whole ? part * 100 / whole : 0;
}

/* part/whole reaches threshold% with at least `volume` in whole */
static bool rate_reached(uint64_t part, uint64_t whole, unsigned volume, unsigned threshold)
{
	return whole >= volume && part * 100 >= whole * threshold;
}

/* Slow: above the ceiling, or, once the baseline has seen enough, above
 * max(factor x baseline, floor). */
static bool latency_slow(const struct dt_health *h, const struct latency *l, uint64_t v,
			 uint64_t floor, uint64_t ceiling)
{
	uint64_t limit;

	if (v > ceiling)
		return true;
	if (l->samples < h->o.baseline_samples)
		return false;
	limit = l->avg_ns / 100 * h->o.slow_factor_percent;
	return v > (limit > floor ? limit : floor);
}

static void latency_learn(struct latency *l, uint64_t v, bool slow)
{
	unsigned shift = slow ? LEARN_SHIFT_SLOW : LEARN_SHIFT;

	l->avg_ns = l->samples ? l->avg_ns - (l->avg_ns >> shift) + (v >> shift) : v;
	if (l->samples < UINT32_MAX)
		l->samples++;
}

/* The first degradation the window shows, or none. */
static struct cause degradation(const struct dt_health *h, const struct circuit *c, uint64_t now)
{
	struct bucket s = window_sum(h, c, now);
	unsigned v = h->o.min_calls;

	if (rate_reached(s.slow, s.timed, v, h->o.slow_rate_percent))
		return (struct cause){ DT_HR_SLOW_CALLS, percent(s.slow, s.timed), s.timed };
	if (rate_reached(s.poor, s.calls, v, h->o.poor_rate_percent))
		return (struct cause){ DT_HR_POOR_ANSWERS, percent(s.poor, s.calls), s.calls };
	if (rate_reached(s.slow_connects, s.connects, v, h->o.slow_rate_percent))
		return (struct cause){ DT_HR_SLOW_CONNECTS, percent(s.slow_connects, s.connects),
				       s.connects };
	if (rate_reached(s.retransmits, s.segments, h->o.retransmit_min_segments,
			 h->o.retransmit_percent))
		return (struct cause){ DT_HR_RETRANSMITS, percent(s.retransmits, s.segments),
				       s.segments };
	return (struct cause){ DT_HR_NONE, 0, 0 };
}

/* ---- state and publishing ---------------------------------------------- */

static const char *model_of(const struct circuit *c)
{
	return c->model[0] ? c->model : NULL;
}

/* The state the circuit is in now, and why. Worst first: an operator's
 * word, then an ejection, a rate limit, trials, slowness. */
static enum dt_state effective(const struct circuit *c, uint64_t now, struct cause *why)
{
	if (c->override == DT_OVERRIDE_DRAIN) {
		*why = (struct cause){ DT_HR_DRAINED, 0, 0 };
		return DT_DOWN;
	}
	if (c->override == DT_OVERRIDE_FORCE) {
		*why = (struct cause){ DT_HR_FORCED, 0, 0 };
		return DT_HEALTHY;
	}
	if (c->breaker == OPEN) {
		*why = c->open_cause;
		return DT_DOWN;
	}
	if (now < c->limited_until) {
		*why = c->limit_cause;
		return DT_RATE_LIMITED;
	}
	if (c->breaker == HALF_OPEN) {
		*why = c->open_cause;
		return DT_PROBING;
	}
	if (c->degraded.reason != DT_HR_NONE) {
		*why = c->degraded;
		return DT_DEGRADED;
	}
	*why = c->healthy_cause;
	return DT_HEALTHY;
}

static uint64_t until_of(const struct circuit *c, enum dt_state s)
{
	if (s == DT_DOWN && c->breaker == OPEN && !c->held && c->override != DT_OVERRIDE_DRAIN)
		return c->open_until;
	return s == DT_RATE_LIMITED ? c->limited_until : 0;
}

/* When this circuit may next change by time alone. */
static uint64_t deadline(const struct dt_health *h, const struct circuit *c, uint64_t now)
{
	uint64_t at = UINT64_MAX;

	if (c->breaker == OPEN && !c->held)
		at = c->open_until;
	if (now < c->limited_until)
		at = min_u64(at, c->limited_until);
	if (c->breaker == HALF_OPEN && c->trials_admitted > c->trials_ok + c->trials_failed)
		at = min_u64(at, c->last_admit + ms_ns(h->o.trial_timeout_ms));
	/* slowness ages out of the window a bucket at a time */
	if (c->degraded.reason != DT_HR_NONE)
		at = min_u64(at, (now / bucket_width(h) + 1) * bucket_width(h));
	return at;
}

static uint64_t jittered(struct dt_health *h, unsigned interval_ms)
{
	uint64_t iv = ms_ns(interval_ms), spread = iv / 100 * h->o.probe_jitter_percent;
	/* xorshift64*: jitter needs spread, not strength */
	uint64_t x = h->prng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	h->prng = x;
	return iv - spread + (x * 0x2545f4914f6cdd1dull) % (2 * spread + 1);
}

static void notify(struct dt_health *h, uint32_t id, const struct circuit *c, enum dt_state from)
{
	char text[DT_HEALTH_REASON_LEN];
	struct dt_health_change ch = {
		.provider_id = id, .model = model_of(c), .from = from, .to = c->state,
		.reason = c->shown.reason, .reason_text = text, .since = c->since,
		.until = c->shown_until,
	};

	if (!h->change)
		return;
	reason_text(&c->shown, text, sizeof(text));
	h->change(h->ctx, &ch);
}

/* Bring the published verdict up to date; the callback hears of every
 * change of state, of reason, or of when it ends. */
static void publish(struct dt_health *h, uint32_t id, struct circuit *c, uint64_t now)
{
	struct cause why;
	enum dt_state s = effective(c, now, &why), from = c->state;
	uint64_t until = until_of(c, s);

	c->healthy_cause = (struct cause){ DT_HR_NONE, 0, 0 };
	if (s == DT_HEALTHY && why.reason == DT_HR_NONE)
		why = from == DT_HEALTHY ? c->shown : (struct cause){ DT_HR_RECOVERED, 0, 0 };
	h->next_event = min_u64(h->next_event, deadline(h, c, now));
	if (s == from && why.reason == c->shown.reason && until == c->shown_until)
		return;
	if (s != from)
		c->since = now;
	c->state = s;
	c->shown = why;
	c->shown_until = until;
	if (!model_of(c) && (s == DT_DOWN || s == DT_PROBING) && s != from) {
		/* probe a provider in trouble sooner */
		struct provider *p = &h->p[id];

		p->probe_due = min_u64(p->probe_due, now + jittered(h, h->o.probe_interval_down_ms));
	}
	notify(h, id, c, from);
}

/* ---- ejection ----------------------------------------------------------- */

/* The ejection level after the healthy time since the last close. */
static unsigned decayed_level(const struct dt_health *h, const struct circuit *c, uint64_t now)
{
	uint64_t steps;

	if (c->breaker != CLOSED || !c->eject_level)
		return c->eject_level;
	steps = (now - c->closed_at) / ms_ns(h->o.eject_decay_ms);
	return steps >= c->eject_level ? 0 : c->eject_level - (unsigned)steps;
}

static void reset_judgement(struct circuit *c)
{
	memset(c->window, 0, sizeof(c->window));
	c->consecutive = 0;
	c->trials_admitted = c->trials_ok = c->trials_failed = 0;
}

static void open_circuit(struct dt_health *h, struct circuit *c, struct cause why, uint64_t now)
{
	unsigned level = decayed_level(h, c, now);
	uint64_t max = ms_ns(h->o.eject_max_ms), d = ms_ns(h->o.eject_base_ms);

	/* base << level, doubled only while under the max: no overflow */
	for (unsigned i = 0; i < level && d < max; i++)
		d <<= 1;
	c->breaker = OPEN;
	c->open_cause = why;
	c->open_until = now + min_u64(d, max);
	c->epoch = now;
	c->eject_level = level + 1;
	c->ejections++;
	reset_judgement(c);
}

static unsigned models_open(const struct provider *p)
{
	unsigned n = 0;

	for (size_t i = 0; i < DT_HEALTH_MODEL_SLOTS; i++)
		n += p->models[i].used && p->models[i].breaker == OPEN;
	return n;
}

/* Eject c; models failing together take their provider with them. */
static void eject(struct dt_health *h, uint32_t id, struct circuit *c, struct cause why,
		  uint64_t now)
{
	struct provider *p = &h->p[id];
	unsigned down;

	open_circuit(h, c, why, now);
	publish(h, id, c, now);
	if (c == &p->c || p->c.breaker != CLOSED)
		return;
	down = models_open(p);
	if (down >= h->o.models_down_for_provider) {
		open_circuit(h, &p->c, (struct cause){ DT_HR_MODELS_DOWN, down, 0 }, now);
		publish(h, id, &p->c, now);
	}
}

static void trial_result(struct dt_health *h, uint32_t id, struct circuit *c, bool ok,
			 uint64_t now)
{
	uint64_t n = h->o.trial_requests, pct = h->o.trial_success_percent;
	unsigned done;

	if (ok)
		c->trials_ok++;
	else
		c->trials_failed++;
	done = c->trials_ok + c->trials_failed;
	/* an outcome that did not go through dt_health_begin still counts */
	if (c->trials_admitted < done)
		c->trials_admitted = done;
	/* re-open as soon as the ratio can no longer be met */
	if (c->trials_failed * 100 > (100 - pct) * n) {
		eject(h, id, c, (struct cause){ DT_HR_TRIAL_FAILED, c->trials_failed, n }, now);
	} else if (c->trials_ok * 100 >= pct * n) {
		struct cause passed = { DT_HR_TRIALS_PASSED, c->trials_ok, done };

		c->breaker = CLOSED;
		c->closed_at = c->epoch = now;
		reset_judgement(c);
		c->healthy_cause = passed;
	}
}

/* Time alone: an ejection ends (half-open), lost trials free their slots,
 * slowness ages out. */
static void half_open(const struct dt_health *h, struct circuit *c, enum dt_health_reason why,
		      uint64_t at)
{
	c->breaker = HALF_OPEN;
	c->epoch = at;
	c->open_cause = (struct cause){ why, h->o.trial_requests, 0 };
	c->trials_admitted = c->trials_ok = c->trials_failed = 0;
}

static void advance(struct dt_health *h, uint32_t id, struct circuit *c, uint64_t now)
{
	if (c->breaker == OPEN && !c->held && now >= c->open_until)
		half_open(h, c, DT_HR_EJECTION_ENDED, c->open_until);
	if (c->breaker == HALF_OPEN && now - c->last_admit >= ms_ns(h->o.trial_timeout_ms))
		c->trials_admitted = c->trials_ok + c->trials_failed;
	if (c->degraded.reason != DT_HR_NONE)
		c->degraded = degradation(h, c, now);
	publish(h, id, c, now);
}

/* ---- judging calls ------------------------------------------------------ */

struct call {
	bool failed;
	bool poor;
	bool unfinished;    /* cancelled: neither a success nor a failure */
	uint64_t ttft_ns;   /* 0: not timed */
};

/* A call that says nothing either way (a 429, a refused key, a lost race)
 * gives its trial slot back. */
static void release_trial(struct circuit *c)
{
	if (c->breaker == HALF_OPEN && c->trials_admitted > c->trials_ok + c->trials_failed)
		c->trials_admitted--;
}

/* One call's verdict on c: counted while closed, a trial while half-open,
 * nothing while ejected (an ejection is never shortened nor stretched) or
 * when the call began before the current phase. */
static void judge(struct dt_health *h, uint32_t id, struct circuit *c, const struct call *k,
		  uint64_t started, uint64_t now)
{
	struct bucket *b, s;

	if (started < c->epoch || c->breaker == OPEN)
		return;
	if (c->breaker == HALF_OPEN) {
		if (k->unfinished)
			release_trial(c);
		else
			trial_result(h, id, c, !k->failed, now);
		return;
	}
	b = bucket_now(h, c, now);
	if (k->unfinished) {
		/* only its slowness is known: a slow call, never an answer */
		b->timed++;
		b->slow++;
		c->degraded = degradation(h, c, now);
		return;
	}
	b->calls++;
	b->poor += k->poor;
	if (k->ttft_ns) {
		bool slow = latency_slow(h, &c->ttft, k->ttft_ns, ms_ns(h->o.slow_min_ms),
					 ms_ns(h->o.slow_ceiling_ms));

		b->timed++;
		b->slow += slow;
		latency_learn(&c->ttft, k->ttft_ns, slow);
	}
	c->degraded = degradation(h, c, now);
	if (!k->failed) {
		c->consecutive = 0;
		return;
	}
	b->failures++;
	c->consecutive++;
	s = window_sum(h, c, now);
	if (c->consecutive >= h->o.consecutive_failures)
		eject(h, id, c, (struct cause){ DT_HR_CONSECUTIVE_FAILURES, c->consecutive, 0 }, now);
	else if (rate_reached(s.failures, s.calls, h->o.min_calls, h->o.failure_rate_percent))
		eject(h, id, c,
		      (struct cause){ DT_HR_FAILURE_RATE, percent(s.failures, s.calls), s.calls }, now);
}

/* Set aside until `until`; a later signal may lengthen it, never shorten it. */
static void set_aside(struct circuit *c, uint64_t until, struct cause why)
{
	if (until <= c->limited_until)
		return;
	c->limited_until = until;
	c->limit_cause = why;
}

/* ---- circuits ----------------------------------------------------------- */

static struct provider *provider(struct dt_health *h, uint32_t id)
{
	if (id >= DT_MAX_PROVIDERS)
		return NULL;
	if (id >= h->n_seen)
		h->n_seen = id + 1;
	return &h->p[id];
}

static bool model_given(const char *model)
{
	return model && model[0];
}

/* A model given and short enough to keep; a longer one is judged at its
 * provider's level only. */
static bool names_model(const char *model)
{
	return model_given(model) && strnlen(model, DT_HEALTH_MODEL_LEN) < DT_HEALTH_MODEL_LEN;
}

static struct circuit *find_model(struct provider *p, const char *model)
{
	if (!names_model(model))
		return NULL;
	for (size_t i = 0; i < DT_HEALTH_MODEL_SLOTS; i++)
		if (p->models[i].used && strcmp(p->models[i].model, model) == 0)
			return &p->models[i];
	return NULL;
}

/* Which slot a new model takes: a free one, else the least recently used
 * healthy one, else the least recently used of any state; never one an
 * operator has overridden. */
static struct circuit *victim(struct provider *p)
{
	struct circuit *healthy = NULL, *any = NULL;

	for (size_t i = 0; i < DT_HEALTH_MODEL_SLOTS; i++) {
		struct circuit *c = &p->models[i];

		if (!c->used)
			return c;
		if (c->override != DT_OVERRIDE_NONE)
			continue;
		if (c->state == DT_HEALTHY && (!healthy || c->last_used < healthy->last_used))
			healthy = c;
		if (!any || c->last_used < any->last_used)
			any = c;
	}
	return healthy ? healthy : any;
}

/* The model's circuit, taking a slot for it when it has none; NULL when
 * the model names nothing trackable or every slot is overridden. */
static struct circuit *model_circuit(struct dt_health *h, uint32_t id, const char *model,
				     uint64_t now)
{
	struct provider *p = &h->p[id];
	struct circuit *c = find_model(p, model);

	if (!c && names_model(model) && (c = victim(p))) {
		if (c->used && c->state != DT_HEALTHY) {
			/* its publisher drops it */
			enum dt_state from = c->state;

			c->state = DT_HEALTHY;
			c->shown = (struct cause){ DT_HR_FORGOTTEN, 0, 0 };
			c->shown_until = 0;
			c->since = now;
			notify(h, id, c, from);
		}
		*c = (struct circuit){ .used = true, .since = now };
		strcpy(c->model, model);
	}
	if (c) {
		c->last_used = now;
		advance(h, id, c, now);
	}
	return c;
}

/* ---- inputs ------------------------------------------------------------- */

static bool half_open_full(const struct dt_health *h, const struct circuit *c)
{
	return c->breaker == HALF_OPEN && c->override != DT_OVERRIDE_FORCE &&
	       c->trials_admitted >= h->o.trial_requests;
}

static void admit(struct circuit *c, uint64_t now)
{
	if (c->breaker == HALF_OPEN && c->override != DT_OVERRIDE_FORCE) {
		c->trials_admitted++;
		c->last_admit = now;
	}
}

bool dt_health_begin(struct dt_health *h, uint32_t provider_id, const char *model, uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *m;

	if (!p)
		return true;
	advance(h, provider_id, &p->c, now);
	m = model_circuit(h, provider_id, model, now);
	if (half_open_full(h, &p->c) || (m && half_open_full(h, m)))
		return false;
	admit(&p->c, now);
	if (m)
		admit(m, now);
	return true;
}

static bool transport_failure(enum dt_outcome_kind k)
{
	return k == DT_OUTCOME_CONNECT_FAILED || k == DT_OUTCOME_TLS_FAILED || k == DT_OUTCOME_RESET;
}

/* What the outcome says of the provider's reachability: the transport
 * failed, or it carried an answer; a first-byte timeout or a lost race says
 * neither. A 5xx is the model's failure and no proof that the provider
 * serves: nothing while the provider is closed, but a failed trial while it
 * is half-open. Taken as a success, a trial answered 503 would readmit a
 * provider that probes ejected in a full outage; taken as nothing, its slot
 * given back would let the outage draw trial after trial. */
static void judge_provider(struct dt_health *h, uint32_t id, struct provider *p,
			   const struct dt_outcome *o, uint64_t now)
{
	bool server_error = o->kind == DT_OUTCOME_SERVER_ERROR;
	struct call k = { .failed = transport_failure(o->kind) || server_error };

	if (o->kind == DT_OUTCOME_FIRST_BYTE_TIMEOUT || o->kind == DT_OUTCOME_CANCELLED) {
		release_trial(&p->c);
		return;
	}
	if (server_error && p->c.breaker != HALF_OPEN)
		return;
	judge(h, id, &p->c, &k, o->started, now);
	if (o->kind == DT_OUTCOME_OK || o->kind == DT_OUTCOME_POOR_ANSWER)
		p->traffic_since_probe = true;
	if (o->ttft_ns && o->kind == DT_OUTCOME_OK)
		/* shown only: models differ too much for one provider baseline to judge */
		latency_learn(&p->c.ttft, o->ttft_ns, false);
}

/* What the outcome says of the model: it answered (well or poorly), or it
 * failed; rate limits set it aside. */
static void judge_model(struct dt_health *h, uint32_t id, struct circuit *m,
			const struct dt_outcome *o, uint64_t now)
{
	struct call k = { .ttft_ns = o->kind == DT_OUTCOME_OK ? o->ttft_ns : 0 };

	switch (o->kind) {
	case DT_OUTCOME_SERVER_ERROR:
	case DT_OUTCOME_FIRST_BYTE_TIMEOUT:
		k.failed = true;
		break;
	case DT_OUTCOME_CANCELLED:
		/* it lost a race: slow if what it waited already proves it,
		 * else it says nothing */
		if (!o->ttft_ns || !latency_slow(h, &m->ttft, o->ttft_ns, ms_ns(h->o.slow_min_ms),
						 ms_ns(h->o.slow_ceiling_ms))) {
			release_trial(m);
			return;
		}
		k.unfinished = true;
		break;
	case DT_OUTCOME_POOR_ANSWER:
		k.poor = true;
		break;
	case DT_OUTCOME_OK:
		break;
	default:
		/* the key's or the transport's: nothing about the model */
		release_trial(m);
		return;
	}
	judge(h, id, m, &k, o->started, now);
}

void dt_health_outcome(struct dt_health *h, uint32_t provider_id, const char *model,
		       const struct dt_outcome *o, uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *m, *limited;

	if (!p)
		return;
	advance(h, provider_id, &p->c, now);
	m = model_circuit(h, provider_id, model, now);
	limited = m ? m : &p->c;
	if (o->kind == DT_OUTCOME_RATE_LIMITED) {
		/* providers limit per model; a provider-wide limit shows as 429s
		 * on each model in turn */
		uint64_t ms = o->retry_after_ms ? o->retry_after_ms : h->o.rate_limit_default_ms;

		set_aside(limited, now + ms * NS_PER_MS, (struct cause){ DT_HR_RATE_LIMITED, ms, 0 });
	}
	if (o->total_ns && o->kind == DT_OUTCOME_OK)
		latency_learn(&limited->total, o->total_ns, false);
	if (o->status)
		limited->last_status = p->c.last_status = o->status;
	judge_provider(h, provider_id, p, o, now);
	if (m) {
		judge_model(h, provider_id, m, o, now);
		publish(h, provider_id, m, now);
	}
	publish(h, provider_id, &p->c, now);
}

void dt_health_ratelimit(struct dt_health *h, uint32_t provider_id, const char *model,
			 const struct dt_ratelimit *rl, uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;

	if (!p)
		return;
	advance(h, provider_id, &p->c, now);
	c = model_circuit(h, provider_id, model, now);
	if (!c)
		c = &p->c;
	if (rl->retry_after_ms > 0)
		set_aside(c, now + (uint64_t)rl->retry_after_ms * NS_PER_MS,
		      (struct cause){ DT_HR_RATE_LIMITED, (uint64_t)rl->retry_after_ms, 0 });
	for (int k = 0; k < DT_RL_KINDS; k++) {
		const struct dt_rl_limit *l = &rl->limits[k];
		int64_t floor = k == DT_RL_REQUESTS ? 1 : h->o.rate_limit_token_floor;
		uint64_t ms;

		if (l->remaining < 0 || l->remaining >= floor)
			continue;
		ms = l->reset_ms >= 0 ? (uint64_t)l->reset_ms : h->o.rate_limit_default_ms;
		set_aside(c, now + ms * NS_PER_MS, (struct cause){ DT_HR_LIMIT_EXHAUSTED, ms, k });
	}
	publish(h, provider_id, c, now);
}

void dt_health_tcp(struct dt_health *h, uint32_t provider_id, const struct dt_tcp_sample *s,
		   uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;
	struct bucket *b;

	if (!p)
		return;
	c = &p->c;
	advance(h, provider_id, c, now);
	/* kernel counters carry no start time: they judge a closed circuit
	 * only, and never stand in for trials */
	if (c->breaker != CLOSED) {
		publish(h, provider_id, c, now);
		return;
	}
	b = bucket_now(h, c, now);
	b->segments += s->segments_out;
	b->retransmits += s->retransmits;
	if (s->connects && s->connect_latency_ns) {
		bool slow = latency_slow(h, &c->connect, s->connect_latency_ns,
					 ms_ns(h->o.connect_slow_min_ms), ms_ns(h->o.connect_ceiling_ms));

		b->connects += s->connects;
		b->slow_connects += slow ? s->connects : 0;
		latency_learn(&c->connect, s->connect_latency_ns, slow);
	}
	c->degraded = degradation(h, c, now);
	/* the proxy reports its own failed connects too: counting them again
	 * here only when nothing connects at all makes an outage show sooner,
	 * never a healthy provider look worse */
	if (!s->connects && s->connect_failures + s->resets) {
		c->consecutive += s->connect_failures + s->resets;
		if (c->consecutive >= h->o.consecutive_failures) {
			eject(h, provider_id, c,
			      (struct cause){ DT_HR_CONNECTS_FAILING, c->consecutive, 0 }, now);
			return;
		}
	}
	publish(h, provider_id, c, now);
}

static void schedule_probe(struct dt_health *h, struct provider *p, uint64_t now)
{
	unsigned iv = h->o.probe_interval_ms;

	/* in trouble, or failing on the way there: watched closely (never
	 * less than normally), so that an idle provider (or one whose traffic
	 * does not pass the proxy) is judged within a few probes */
	if (p->c.state == DT_DOWN || p->c.state == DT_PROBING || p->c.consecutive) {
		p->probe_shift = 0;
		iv = (unsigned)min_u64(h->o.probe_interval_down_ms, iv);
	} else if (p->traffic_since_probe) {
		/* real answers prove more than a probe: probe less, up to the max */
		if (((uint64_t)iv << (p->probe_shift + 1)) <= h->o.probe_interval_max_ms)
			p->probe_shift++;
		iv = (unsigned)min_u64((uint64_t)iv << p->probe_shift, h->o.probe_interval_max_ms);
	} else {
		p->probe_shift = 0;
	}
	p->traffic_since_probe = false;
	p->probe_due = now + jittered(h, iv);
}

void dt_health_probe(struct dt_health *h, uint32_t provider_id, bool ok, uint64_t latency_ns,
		     uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct call k = { .failed = !ok };

	if (!p)
		return;
	advance(h, provider_id, &p->c, now);
	judge(h, provider_id, &p->c, &k, now - min_u64(latency_ns, now), now);
	publish(h, provider_id, &p->c, now);
	schedule_probe(h, p, now);
}

void dt_health_override(struct dt_health *h, uint32_t provider_id, const char *model,
			enum dt_health_override ov, uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;

	if (!p)
		return;
	c = model_given(model) ? model_circuit(h, provider_id, model, now) : &p->c;
	if (!c)
		return;
	if (ov == DT_OVERRIDE_NONE && c->override != DT_OVERRIDE_NONE)
		c->healthy_cause = (struct cause){ DT_HR_CLEARED, 0, 0 };
	c->override = ov;
	advance(h, provider_id, c, now);
}

void dt_health_path(struct dt_health *h, uint32_t provider_id, enum dt_health_path path,
		    uint64_t now)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;

	if (!p)
		return;
	c = &p->c;
	advance(h, provider_id, c, now);
	if (path != DT_PATH_OK) {
		if (!c->held) {
			c->held_over = c->open_cause;
			if (c->breaker != OPEN)
				c->open_until = now; /* no ejection of its own to serve after */
		}
		c->breaker = OPEN;
		c->held = true;
		c->open_cause = (struct cause){
			path == DT_PATH_LINK_DOWN ? DT_HR_LINK_DOWN : DT_HR_NO_ROUTE, 0, 0 };
		c->epoch = now;
		reset_judgement(c);
	} else if (c->held) {
		c->held = false;
		c->open_cause = c->held_over;
		if (now >= c->open_until)
			half_open(h, c, DT_HR_PATH_BACK, now);
	}
	if (path == DT_PATH_OK)
		p->probe_due = now;
	publish(h, provider_id, c, now);
}

void dt_health_tick(struct dt_health *h, uint64_t now)
{
	h->next_event = UINT64_MAX;
	for (uint32_t id = 0; id < h->n_seen; id++) {
		struct provider *p = &h->p[id];

		advance(h, id, &p->c, now);
		for (size_t i = 0; i < DT_HEALTH_MODEL_SLOTS; i++)
			if (p->models[i].used)
				advance(h, id, &p->models[i], now);
	}
}

uint64_t dt_health_next_event(const struct dt_health *h)
{
	return h->next_event;
}

uint64_t dt_health_probe_due(const struct dt_health *h, uint32_t provider_id)
{
	return provider_id < DT_MAX_PROVIDERS ? h->p[provider_id].probe_due : UINT64_MAX;
}

/* ---- queries ------------------------------------------------------------ */

size_t dt_health_models(const struct dt_health *h, uint32_t provider_id,
			const char *out[DT_HEALTH_MODEL_SLOTS])
{
	size_t n = 0;

	if (provider_id >= DT_MAX_PROVIDERS)
		return 0;
	for (size_t i = 0; i < DT_HEALTH_MODEL_SLOTS; i++)
		if (h->p[provider_id].models[i].used)
			out[n++] = h->p[provider_id].models[i].model;
	return n;
}

struct standing {
	enum dt_state state;
	bool usable;
	bool ejected;       /* DOWN or half-open without a free slot */
	bool drained;
	bool forced;
	uint64_t at;        /* not usable: when it may be */
};

static struct standing standing_of(const struct dt_health *h, const struct circuit *c,
				   uint64_t now)
{
	struct cause why;
	enum dt_state s = effective(c, now, &why);

	if (c->override == DT_OVERRIDE_DRAIN)
		return (struct standing){ s, false, false, true, false, UINT64_MAX };
	if (c->override == DT_OVERRIDE_FORCE)
		return (struct standing){ s, true, false, false, true, 0 };
	if (s == DT_DOWN)
		return (struct standing){ s, false, true, false, false, c->open_until };
	if (s == DT_RATE_LIMITED)
		return (struct standing){ s, false, false, false, false, c->limited_until };
	if (half_open_full(h, c))
		return (struct standing){ s, false, true, false, false,
					  c->last_admit + ms_ns(h->o.trial_timeout_ms) };
	return (struct standing){ s, true, false, false, false, 0 };
}

/* How bad a state is to show, worst highest. */
static const int severity[] = {
	[DT_HEALTHY] = 0, [DT_DEGRADED] = 1, [DT_PROBING] = 2, [DT_RATE_LIMITED] = 3, [DT_DOWN] = 4,
};

/* A member stands as the worse of its provider and its model; a drain on
 * either wins, then a force on either. */
static struct standing combine(struct standing a, struct standing b)
{
	struct standing w = severity[b.state] > severity[a.state] ? b : a;

	if (a.drained || b.drained)
		return a.drained ? a : b;
	if (a.forced || b.forced)
		return (struct standing){ DT_HEALTHY, true, false, false, true, 0 };
	w.usable = a.usable && b.usable;
	w.ejected = a.ejected || b.ejected;
	w.at = w.usable ? 0 : (a.at > b.at ? a.at : b.at);
	return w;
}

static struct standing member_standing(struct dt_health *h, uint32_t id, const char *model,
				       uint64_t now)
{
	struct provider *p = provider(h, id);
	struct circuit *m;
	struct standing s;

	if (!p)
		return (struct standing){ DT_HEALTHY, true, false, false, false, 0 };
	advance(h, id, &p->c, now);
	s = standing_of(h, &p->c, now);
	/* queries never take a model slot: an untracked model is as its provider */
	m = find_model(p, model);
	if (m) {
		advance(h, id, m, now);
		s = combine(s, standing_of(h, m, now));
	}
	return s;
}

bool dt_health_usable(struct dt_health *h, uint32_t provider_id, const char *model, uint64_t now)
{
	return member_standing(h, provider_id, model, now).usable;
}

/* Sort groups: usable healthy (incl. probing, forced), usable degraded,
 * readmitted, set aside (by when usable), drained. */
static int group(const struct dt_health_rank *r)
{
	if (r->readmitted)
		return 2;
	if (r->usable)
		return r->state == DT_DEGRADED ? 1 : 0;
	return r->usable_at == UINT64_MAX ? 4 : 3;
}

static bool before(const struct dt_health_rank *a, const struct dt_health_rank *b)
{
	int ga = group(a), gb = group(b);

	if (ga != gb)
		return ga < gb;
	return ga >= 2 && a->usable_at < b->usable_at;
}

/* Stable insertion sort: the caller's order holds within a group. */
static void sort_ranks(struct dt_health_rank *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct dt_health_rank key = r[i];
		size_t j = i;

		for (; j > 0 && before(&key, &r[j - 1]); j--)
			r[j] = r[j - 1];
		r[j] = key;
	}
}

static void readmit(struct dt_health_rank *r)
{
	r->usable = true;
	r->readmitted = true;
}

enum dt_health_mode dt_health_order(struct dt_health *h, const struct dt_health_member *m,
				    size_t n, uint64_t now, struct dt_health_rank *out)
{
	bool ejected[DT_MAX_PROVIDERS];
	enum dt_health_mode mode = DT_HEALTH_NORMAL;
	size_t n_ejected = 0, allowed, usable = 0;

	if (n > DT_MAX_PROVIDERS)
		n = DT_MAX_PROVIDERS;
	for (size_t i = 0; i < n; i++) {
		struct standing s = member_standing(h, m[i].provider_id, m[i].model, now);

		out[i] = (struct dt_health_rank){ i, s.state, s.usable, false, s.at };
		ejected[i] = s.ejected;
		n_ejected += s.ejected;
		usable += s.usable;
	}
	sort_ranks(out, n);
	/* panic: nothing usable, so the least bad rather than certain failure
	 * (never a drained one: the operator said never) */
	if (!usable && n && out[0].usable_at != UINT64_MAX) {
		readmit(&out[0]);
		n_ejected -= ejected[out[0].member];
		mode = DT_HEALTH_PANIC;
	}
	/* the cap: beyond this share, the soonest back of the ejected are
	 * routed anyway (a detector gone wrong must not empty the class) */
	allowed = n * h->o.class_max_ejected_percent / 100;
	for (size_t i = 0; i < n && n_ejected > allowed; i++) {
		if (ejected[out[i].member] && !out[i].usable) {
			readmit(&out[i]);
			n_ejected--;
			if (mode == DT_HEALTH_NORMAL)
				mode = DT_HEALTH_CAPPED;
		}
	}
	sort_ranks(out, n);
	return mode;
}

static uint64_t baseline(const struct dt_health *h, const struct latency *l)
{
	return l->samples >= h->o.baseline_samples ? l->avg_ns : 0;
}

void dt_health_latency(struct dt_health *h, uint32_t provider_id, const char *model,
		       uint64_t now, uint64_t *ttft_ns, uint64_t *total_ns)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;

	*ttft_ns = *total_ns = 0;
	if (!p)
		return;
	/* a query: never takes a model slot */
	c = find_model(p, model);
	if (!c)
		c = &p->c;
	advance(h, provider_id, c, now);
	*ttft_ns = baseline(h, &c->ttft);
	*total_ns = baseline(h, &c->total);
}

bool dt_health_verdict(struct dt_health *h, uint32_t provider_id, const char *model,
		       uint64_t now, struct dt_health_verdict *out)
{
	struct provider *p = provider(h, provider_id);
	struct circuit *c;
	struct bucket s;

	if (!p)
		return false;
	c = model_given(model) ? find_model(p, model) : &p->c;
	if (!c)
		return false;
	advance(h, provider_id, c, now);
	s = window_sum(h, c, now);
	*out = (struct dt_health_verdict){
		.state = c->state,
		.reason = c->shown.reason,
		.override = c->override,
		.since = c->since,
		.until = c->shown_until,
		.ejections = c->ejections,
		.eject_level = decayed_level(h, c, now),
		.consecutive_failures = c->consecutive,
		.ttft_baseline_ns = c->ttft.avg_ns,
		.connect_baseline_ns = c->connect.avg_ns,
		.total_avg_ns = c->total.avg_ns,
		.calls = s.calls,
		.error_rate_percent = (unsigned)percent(s.failures, s.calls),
		.slow_rate_percent = (unsigned)(s.timed ? percent(s.slow, s.timed)
							: percent(s.slow_connects, s.connects)),
		.last_status = c->last_status,
	};
	reason_text(&c->shown, out->reason_text, sizeof(out->reason_text));
	return true;
}
