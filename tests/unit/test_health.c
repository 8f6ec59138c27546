// SPDX-License-Identifier: MIT
/* Health engine, scenario by scenario with an injected clock: outages,
 * failure rates, slow calls, rate limits, flapping, half-open trials,
 * per-model outages, the class cap and panic, operator overrides, the
 * change callback, kernel signals, probes, a lost path, the model table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "health.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (100 * SEC)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { OPENAI = 1, ANTHROPIC = 2, GROQ = 3, DEEPSEEK = 4 };

#define MINI  "gpt-4o-mini"
#define GPT4O "gpt-4o"
#define O3    "o3-mini"

struct change {
	uint32_t provider_id;
	char model[DT_HEALTH_MODEL_LEN];   /* "" for the provider */
	enum dt_state from, to;
	enum dt_health_reason reason;
	char text[DT_HEALTH_REASON_LEN];
	uint64_t since, until;
};

struct changes {
	size_t n;
	struct change c[64];
};

static void record(void *ctx, const struct dt_health_change *ch)
{
	struct changes *l = ctx;
	struct change *c;

	assert_true(l->n < ARRAY_LEN(l->c));
	c = &l->c[l->n++];
	*c = (struct change){ ch->provider_id, "", ch->from, ch->to, ch->reason, "", ch->since,
			      ch->until };
	if (ch->model)
		snprintf(c->model, sizeof(c->model), "%s", ch->model);
	snprintf(c->text, sizeof(c->text), "%s", ch->reason_text);
}

static struct changes changes;

static struct dt_health *engine(const struct dt_health_opts *o)
{
	struct dt_health *h;

	memset(&changes, 0, sizeof(changes));
	h = dt_health_new(o, record, &changes);
	assert_non_null(h);
	return h;
}

static const struct change *last_change(void)
{
	assert_true(changes.n > 0);
	return &changes.c[changes.n - 1];
}

/* An attempt sent and answered at `now`. */
static void outcome_at(struct dt_health *h, uint32_t id, const char *model,
		       enum dt_outcome_kind kind, uint64_t ttft, uint64_t now)
{
	struct dt_outcome o = { .kind = kind, .started = now, .ttft_ns = ttft, .total_ns = ttft };

	o.status = kind == DT_OUTCOME_OK ? 200 : kind == DT_OUTCOME_SERVER_ERROR ? 503 : 0;
	dt_health_outcome(h, id, model, &o, now);
}

static void fail_n(struct dt_health *h, uint32_t id, const char *model, enum dt_outcome_kind kind,
		   int n, uint64_t now)
{
	for (int i = 0; i < n; i++)
		outcome_at(h, id, model, kind, 0, now);
}

static struct dt_health_verdict verdict(struct dt_health *h, uint32_t id, const char *model,
					uint64_t now)
{
	struct dt_health_verdict v;

	assert_true(dt_health_verdict(h, id, model, now, &v));
	return v;
}

static enum dt_state state_of(struct dt_health *h, uint32_t id, const char *model, uint64_t now)
{
	return verdict(h, id, model, now).state;
}

/* ---- outages and rates -------------------------------------------------- */

static void test_full_outage_ejects_after_consecutive_failures(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;

	(void)state;
	/* an answer in between starts the count again */
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 4, T0);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, T0);
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 4, T0 + MS);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + MS), DT_HEALTHY);
	assert_true(dt_health_usable(h, OPENAI, MINI, T0 + MS));
	assert_int_equal(changes.n, 0);

	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0 + 2 * MS);
	v = verdict(h, OPENAI, MINI, T0 + 2 * MS);
	assert_int_equal(v.state, DT_DOWN);
	assert_int_equal(v.reason, DT_HR_CONSECUTIVE_FAILURES);
	assert_string_equal(v.reason_text, "5 consecutive failures");
	assert_int_equal(v.since, T0 + 2 * MS);
	assert_int_equal(v.until, T0 + 2 * MS + 10 * SEC);
	assert_int_equal(v.ejections, 1);
	assert_int_equal(v.last_status, 503);
	assert_false(dt_health_usable(h, OPENAI, MINI, T0 + 3 * MS));
	/* 5xx are the model's: the provider still answers its other models */
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + 3 * MS), DT_HEALTHY);
	assert_true(dt_health_usable(h, OPENAI, GPT4O, T0 + 3 * MS));
	assert_int_equal(changes.n, 1);
	assert_string_equal(last_change()->model, MINI);
	assert_int_equal(last_change()->until, T0 + 2 * MS + 10 * SEC);
	dt_health_free(h);
}

static void test_first_byte_timeouts_eject_the_model(void **state)
{
	struct dt_health *h = engine(NULL);

	(void)state;
	fail_n(h, OPENAI, MINI, DT_OUTCOME_FIRST_BYTE_TIMEOUT, 5, T0);
	assert_int_equal(state_of(h, OPENAI, MINI, T0), DT_DOWN);
	assert_int_equal(state_of(h, OPENAI, NULL, T0), DT_HEALTHY);
	dt_health_free(h);
}

static void test_transport_failures_eject_the_provider(void **state)
{
	static const enum dt_outcome_kind kinds[] = {
		DT_OUTCOME_CONNECT_FAILED, DT_OUTCOME_TLS_FAILED, DT_OUTCOME_RESET,
		DT_OUTCOME_CONNECT_FAILED, DT_OUTCOME_RESET,
	};
	struct dt_health *h = engine(NULL);

	(void)state;
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, T0);
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
		assert_int_equal(state_of(h, OPENAI, NULL, T0), DT_HEALTHY);
		outcome_at(h, OPENAI, MINI, kinds[i], 0, T0);
	}
	assert_int_equal(state_of(h, OPENAI, NULL, T0), DT_DOWN);
	/* every model of it is unusable, while its own verdict is untouched */
	assert_false(dt_health_usable(h, OPENAI, MINI, T0));
	assert_false(dt_health_usable(h, OPENAI, GPT4O, T0));
	assert_int_equal(state_of(h, OPENAI, MINI, T0), DT_HEALTHY);
	dt_health_free(h);
}

static void test_failure_rate_needs_the_minimum_volume(void **state)
{
	struct dt_health_opts o = { .consecutive_failures = 1000, .min_calls = 10 };
	struct dt_health *h = engine(&o);
	struct dt_health_verdict v;

	(void)state;
	/* 5 of 9 failed: 55%, but below the volume */
	for (int i = 0; i < 9; i++)
		outcome_at(h, OPENAI, MINI, i % 2 ? DT_OUTCOME_OK : DT_OUTCOME_SERVER_ERROR, 0,
			   T0 + i * MS);
	v = verdict(h, OPENAI, MINI, T0 + 9 * MS);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.calls, 9);
	assert_int_equal(v.error_rate_percent, 55);
	/* the tenth call brings the volume: 6 of 10 */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0 + 10 * MS);
	v = verdict(h, OPENAI, MINI, T0 + 10 * MS);
	assert_int_equal(v.state, DT_DOWN);
	assert_string_equal(v.reason_text, "failure rate 60% over 10 calls");
	dt_health_free(h);

	/* with a higher minimum the same calls eject nothing */
	o.min_calls = 20;
	h = engine(&o);
	for (int i = 0; i < 10; i++)
		outcome_at(h, OPENAI, MINI, i % 2 ? DT_OUTCOME_OK : DT_OUTCOME_SERVER_ERROR, 0,
			   T0 + i * MS);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0 + 10 * MS);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + 10 * MS), DT_HEALTHY);
	dt_health_free(h);
}

static void test_failure_rate_is_over_a_sliding_window(void **state)
{
	struct dt_health_opts o = { .consecutive_failures = 1000 };
	struct dt_health *h = engine(&o);

	(void)state;
	/* 5 failures, then 31 s later (past the 30 s window) 5 successes and
	 * 4 failures: 44% of the 9 calls in the window, below the volume */
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 5, T0);
	for (int i = 0; i < 5; i++)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, T0 + 31 * SEC);
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 4, T0 + 31 * SEC);
	assert_int_equal(verdict(h, OPENAI, MINI, T0 + 31 * SEC).calls, 9);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + 31 * SEC), DT_HEALTHY);
	/* within the window they would have counted: 5+1 of 11 is not 50%,
	 * 5+2 of 12 is */
	fail_n(h, OPENAI, GPT4O, DT_OUTCOME_SERVER_ERROR, 5, T0);
	for (int i = 0; i < 5; i++)
		outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 0, T0 + 20 * SEC);
	outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 0, T0 + 20 * SEC);
	outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_SERVER_ERROR, 0, T0 + 20 * SEC);
	assert_int_equal(state_of(h, OPENAI, GPT4O, T0 + 20 * SEC), DT_DOWN);
	dt_health_free(h);
}

static void test_key_refusals_and_rate_limits_are_not_failures(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;

	(void)state;
	fail_n(h, OPENAI, MINI, DT_OUTCOME_KEY_REFUSED, 20, T0);
	fail_n(h, OPENAI, MINI, DT_OUTCOME_RATE_LIMITED, 20, T0);
	v = verdict(h, OPENAI, MINI, T0);
	assert_int_equal(v.consecutive_failures, 0);
	assert_int_equal(v.ejections, 0);
	assert_int_equal(v.state, DT_RATE_LIMITED);
	assert_int_equal(verdict(h, OPENAI, NULL, T0).consecutive_failures, 0);
	assert_int_equal(state_of(h, OPENAI, NULL, T0), DT_HEALTHY);
	dt_health_free(h);
}

/* ---- slow calls and poor answers ----------------------------------------- */

static void test_slow_calls_against_the_baseline(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;
	uint64_t t = T0;

	(void)state;
	/* the model's normal: 300 ms to the first token */
	for (int i = 0; i < 10; i++, t += 100 * MS)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 300 * MS, t);
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.ttft_baseline_ns, 300 * MS);
	/* 950 ms is over 3x the baseline but under the 1 s floor: not slow */
	for (int i = 0; i < 10; i++, t += 100 * MS)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 950 * MS, t);
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.slow_rate_percent, 0);
	/* degradation: 4 s instead of 300 ms */
	for (int i = 0; i < 19; i++, t += 100 * MS)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 4 * SEC, t);
	assert_int_equal(state_of(h, OPENAI, MINI, t), DT_HEALTHY);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 4 * SEC, t);
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.state, DT_DEGRADED);
	assert_string_equal(v.reason_text, "slow calls 50% over 40 calls");
	/* the baseline moves slowly under slow calls: still well under 1 s */
	assert_true(v.ttft_baseline_ns < SEC);
	/* degraded still answers: usable, but ranked behind a healthy peer */
	assert_true(dt_health_usable(h, OPENAI, MINI, t));
	assert_int_equal(last_change()->to, DT_DEGRADED);
	/* with no more calls, the slowness ages out of the window */
	assert_true(dt_health_next_event(h) <= t + 3 * SEC);
	dt_health_tick(h, t + 31 * SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, t + 31 * SEC), DT_HEALTHY);
	assert_int_equal(last_change()->reason, DT_HR_RECOVERED);
	dt_health_free(h);
}

static void test_slow_calls_against_the_ceiling(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t t = T0;

	(void)state;
	/* a slow model by nature: 6 s; 11 s is under 3x that, over the ceiling */
	for (int i = 0; i < 10; i++, t += MS)
		outcome_at(h, OPENAI, O3, DT_OUTCOME_OK, 6 * SEC, t);
	for (int i = 0; i < 9; i++, t += MS)
		outcome_at(h, OPENAI, O3, DT_OUTCOME_OK, 11 * SEC, t);
	assert_int_equal(state_of(h, OPENAI, O3, t), DT_HEALTHY);
	outcome_at(h, OPENAI, O3, DT_OUTCOME_OK, 11 * SEC, t);
	assert_int_equal(state_of(h, OPENAI, O3, t), DT_DEGRADED);

	/* the ceiling judges before any baseline exists */
	for (int i = 0; i < 10; i++)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 12 * SEC, t);
	assert_int_equal(state_of(h, OPENAI, MINI, t), DT_DEGRADED);
	/* untimed answers (whole, not streamed) neither help nor hurt */
	for (int i = 0; i < 10; i++)
		outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 0, t);
	assert_int_equal(verdict(h, OPENAI, GPT4O, t).ttft_baseline_ns, 0);
	dt_health_free(h);
}

/* A call cancelled because another member answered first (a hedge): what
 * it had waited proves it slow or says nothing; never a failure, never an
 * answer. */
static void test_cancelled_calls_are_slow_not_failures(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;
	uint64_t t = T0;

	(void)state;
	for (int i = 0; i < 10; i++, t += 100 * MS)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 300 * MS, t);
	/* four failures, then cancelled calls: the count is not reset */
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 4, t);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_CANCELLED, 5 * SEC, t);
	assert_int_equal(verdict(h, OPENAI, MINI, t).consecutive_failures, 4);
	/* waited under the slow threshold (1 s floor): it says nothing */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_CANCELLED, 600 * MS, t);
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.calls, 14);
	assert_int_equal(v.state, DT_HEALTHY);
	/* not a stream (0): nothing either */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_CANCELLED, 0, t);
	/* slow ones: the slow rate counts them, the failure counts do not */
	for (int i = 0; i < 9; i++)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_CANCELLED, 2 * SEC, t);
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.state, DT_DEGRADED);
	assert_string_equal(v.reason_text, "slow calls 50% over 20 calls");
	assert_int_equal(v.calls, 14);
	assert_int_equal(v.error_rate_percent, 4 * 100 / 14);
	assert_int_equal(v.consecutive_failures, 4);
	/* the baseline learns nothing from a lower bound */
	assert_int_equal(v.ttft_baseline_ns, 300 * MS);
	/* the provider is neither judged nor timed by it */
	assert_int_equal(verdict(h, OPENAI, NULL, t).state, DT_HEALTHY);
	dt_health_free(h);
}

/* What a hedge deadline is made of: baselines once they have enough
 * samples; a model not tracked is its provider. */
static void test_latency_baselines(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t ttft, total, t = T0;

	(void)state;
	dt_health_latency(h, OPENAI, MINI, t, &ttft, &total);
	assert_int_equal(ttft, 0);
	assert_int_equal(total, 0);
	for (int i = 0; i < 9; i++, t += MS)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 400 * MS, t);
	dt_health_latency(h, OPENAI, MINI, t, &ttft, &total);
	assert_int_equal(ttft, 0);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 400 * MS, t);
	dt_health_latency(h, OPENAI, MINI, t, &ttft, &total);
	assert_int_equal(ttft, 400 * MS);
	assert_int_equal(total, 400 * MS);
	/* whole answers: a total, no time to first token */
	for (int i = 0; i < 10; i++, t += MS)
		outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 0, t);
	dt_health_latency(h, OPENAI, "never-seen", t, &ttft, &total);
	assert_int_equal(ttft, 400 * MS); /* the provider's, over its models */
	dt_health_latency(h, 999, MINI, t, &ttft, &total);
	assert_int_equal(ttft, 0);
	dt_health_free(h);
}

static void test_poor_answers_degrade_without_ejecting(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;

	(void)state;
	fail_n(h, OPENAI, MINI, DT_OUTCOME_POOR_ANSWER, 9, T0);
	assert_int_equal(state_of(h, OPENAI, MINI, T0), DT_HEALTHY);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_POOR_ANSWER, 0, T0);
	v = verdict(h, OPENAI, MINI, T0);
	assert_int_equal(v.state, DT_DEGRADED);
	assert_string_equal(v.reason_text, "poor answers 100% over 10 calls");
	assert_int_equal(v.ejections, 0);
	dt_health_free(h);
}

/* ---- rate limits ---------------------------------------------------------- */

static struct dt_ratelimit limits(int64_t requests_left, int64_t reset_ms)
{
	struct dt_ratelimit rl;

	dt_ratelimit_init(&rl);
	rl.limits[DT_RL_REQUESTS] = (struct dt_rl_limit){ requests_left, reset_ms, -1 };
	return rl;
}

static void test_rate_limit_headers_set_aside_before_any_429(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_ratelimit rl = limits(3, 12000);
	struct dt_health_verdict v;

	(void)state;
	dt_health_ratelimit(h, OPENAI, MINI, &rl, T0);
	assert_int_equal(state_of(h, OPENAI, MINI, T0), DT_HEALTHY);
	/* the last request of the window is spent: set aside until the reset */
	rl = limits(0, 12000);
	dt_health_ratelimit(h, OPENAI, MINI, &rl, T0);
	v = verdict(h, OPENAI, MINI, T0);
	assert_int_equal(v.state, DT_RATE_LIMITED);
	assert_int_equal(v.until, T0 + 12 * SEC);
	assert_string_equal(v.reason_text, "requests exhausted, reset in 12 s");
	assert_false(dt_health_usable(h, OPENAI, MINI, T0 + SEC));
	/* other models and the provider are untouched */
	assert_true(dt_health_usable(h, OPENAI, GPT4O, T0 + SEC));

	/* never shortened: by a later, earlier reset, a success, a probe */
	rl = limits(0, 2000);
	dt_health_ratelimit(h, OPENAI, MINI, &rl, T0 + SEC);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, T0 + SEC);
	dt_health_probe(h, OPENAI, true, 50 * MS, T0 + 2 * SEC);
	v = verdict(h, OPENAI, MINI, T0 + 4 * SEC);
	assert_int_equal(v.state, DT_RATE_LIMITED);
	assert_int_equal(v.until, T0 + 12 * SEC);
	assert_int_equal(dt_health_next_event(h), T0 + 12 * SEC);
	dt_health_tick(h, T0 + 12 * SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + 12 * SEC), DT_HEALTHY);
	assert_true(dt_health_usable(h, OPENAI, MINI, T0 + 12 * SEC));
	dt_health_free(h);
}

static void test_token_limits_and_their_floor(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_ratelimit rl;

	(void)state;
	dt_ratelimit_init(&rl);
	rl.limits[DT_RL_TOKENS] = (struct dt_rl_limit){ 5000, 6000, -1 };
	dt_health_ratelimit(h, ANTHROPIC, "claude", &rl, T0);
	assert_int_equal(state_of(h, ANTHROPIC, "claude", T0), DT_HEALTHY);
	/* fewer tokens than a request needs: as good as none */
	rl.limits[DT_RL_OUTPUT_TOKENS] = (struct dt_rl_limit){ 500, 3000, -1 };
	dt_health_ratelimit(h, ANTHROPIC, "claude", &rl, T0);
	assert_int_equal(state_of(h, ANTHROPIC, "claude", T0), DT_RATE_LIMITED);
	assert_string_equal(verdict(h, ANTHROPIC, "claude", T0).reason_text,
			    "output tokens exhausted, reset in 3 s");
	/* exhausted without a reset: the default second */
	dt_ratelimit_init(&rl);
	rl.limits[DT_RL_REQUESTS].remaining = 0;
	dt_health_ratelimit(h, ANTHROPIC, NULL, &rl, T0);
	assert_int_equal(verdict(h, ANTHROPIC, NULL, T0).until, T0 + SEC);
	/* a retry-after among the headers sets aside too */
	dt_ratelimit_init(&rl);
	rl.retry_after_ms = 7000;
	dt_health_ratelimit(h, ANTHROPIC, "opus", &rl, T0);
	assert_int_equal(verdict(h, ANTHROPIC, "opus", T0).until, T0 + 7 * SEC);
	dt_health_free(h);
}

static void test_429_storm(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_outcome o = { .kind = DT_OUTCOME_RATE_LIMITED, .status = 429, .started = T0,
				.retry_after_ms = 5000 };
	struct dt_health_verdict v;

	(void)state;
	dt_health_outcome(h, OPENAI, MINI, &o, T0);
	v = verdict(h, OPENAI, MINI, T0);
	assert_int_equal(v.state, DT_RATE_LIMITED);
	assert_int_equal(v.until, T0 + 5 * SEC);
	assert_string_equal(v.reason_text, "429, rate limit reset in 5 s");
	assert_int_equal(v.last_status, 429);
	/* a storm of them: extended by a later, longer one, never shortened */
	for (int i = 0; i < 50; i++) {
		o.retry_after_ms = i == 25 ? 9000 : 1000;
		o.started = T0 + (uint64_t)i * 10 * MS;
		dt_health_outcome(h, OPENAI, MINI, &o, o.started);
	}
	v = verdict(h, OPENAI, MINI, T0 + SEC);
	assert_int_equal(v.until, T0 + 250 * MS + 9 * SEC);
	assert_int_equal(v.ejections, 0);
	/* no retry-after: the default second */
	o.retry_after_ms = 0;
	dt_health_outcome(h, OPENAI, GPT4O, &o, T0);
	assert_int_equal(verdict(h, OPENAI, GPT4O, T0).until, T0 + SEC);
	dt_health_free(h);
}

/* ---- ejection, half-open, flapping ------------------------------------------ */

static uint64_t eject_model(struct dt_health *h, uint32_t id, const char *model, uint64_t now)
{
	fail_n(h, id, model, DT_OUTCOME_SERVER_ERROR, 5, now);
	assert_int_equal(state_of(h, id, model, now), DT_DOWN);
	return verdict(h, id, model, now).until;
}

/* A trial at `now` on a half-open model, answered as `kind`. */
static void trial(struct dt_health *h, const char *model, enum dt_outcome_kind kind, uint64_t now)
{
	assert_true(dt_health_begin(h, OPENAI, model, now));
	outcome_at(h, OPENAI, model, kind, 0, now);
}

static void test_half_open_admits_limited_trials(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end = eject_model(h, OPENAI, MINI, T0), t;
	struct dt_health_verdict v;

	(void)state;
	assert_int_equal(dt_health_next_event(h), end);
	dt_health_tick(h, end - 1);
	assert_int_equal(state_of(h, OPENAI, MINI, end - 1), DT_DOWN);
	dt_health_tick(h, end);
	v = verdict(h, OPENAI, MINI, end);
	assert_int_equal(v.state, DT_PROBING);
	assert_string_equal(v.reason_text, "ejection over, 3 trials admitted");
	/* three trials in flight, the fourth is refused */
	t = end + SEC;
	assert_true(dt_health_usable(h, OPENAI, MINI, t));
	for (int i = 0; i < 3; i++)
		assert_true(dt_health_begin(h, OPENAI, MINI, t));
	assert_false(dt_health_begin(h, OPENAI, MINI, t));
	assert_false(dt_health_usable(h, OPENAI, MINI, t));
	/* a 429 says nothing either way: its slot is given back */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_KEY_REFUSED, 0, t);
	assert_true(dt_health_usable(h, OPENAI, MINI, t));
	assert_true(dt_health_begin(h, OPENAI, MINI, t));
	/* trials never reported free their slots after the trial timeout */
	assert_false(dt_health_usable(h, OPENAI, MINI, t + 29 * SEC));
	assert_true(dt_health_usable(h, OPENAI, MINI, t + 30 * SEC));
	/* all three succeed: closed */
	t += 30 * SEC;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(state_of(h, OPENAI, MINI, t), DT_PROBING);
		trial(h, MINI, DT_OUTCOME_OK, t);
	}
	v = verdict(h, OPENAI, MINI, t);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_string_equal(v.reason_text, "3 of 3 trials succeeded");
	assert_int_equal(v.calls, 0); /* judged afresh from here */
	dt_health_free(h);
}

/* A cancelled trial gives its slot back. */
static void test_cancelled_trial_frees_its_slot(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end = eject_model(h, OPENAI, MINI, T0);

	(void)state;
	dt_health_tick(h, end);
	for (int i = 0; i < 3; i++)
		assert_true(dt_health_begin(h, OPENAI, MINI, end));
	assert_false(dt_health_usable(h, OPENAI, MINI, end));
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_CANCELLED, 20 * SEC, end);
	assert_true(dt_health_usable(h, OPENAI, MINI, end));
	assert_int_equal(state_of(h, OPENAI, MINI, end), DT_PROBING);
	dt_health_free(h);
}

static void test_failed_trial_reopens_longer(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end = eject_model(h, OPENAI, MINI, T0);
	struct dt_health_verdict v;

	(void)state;
	assert_int_equal(end, T0 + 10 * SEC);
	trial(h, MINI, DT_OUTCOME_OK, end);
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end + SEC);
	v = verdict(h, OPENAI, MINI, end + SEC);
	assert_int_equal(v.state, DT_DOWN);
	assert_string_equal(v.reason_text, "1 of 3 trials failed");
	assert_int_equal(v.until, end + SEC + 20 * SEC);
	assert_int_equal(v.ejections, 2);
	dt_health_free(h);
}

static void test_trial_success_ratio(void **state)
{
	struct dt_health_opts o = { .trial_requests = 4, .trial_success_percent = 50 };
	struct dt_health *h = engine(&o);
	uint64_t end = eject_model(h, OPENAI, MINI, T0);

	(void)state;
	/* 2 of 4 must succeed: one failure is survived, two succeed: closed */
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	trial(h, MINI, DT_OUTCOME_OK, end);
	assert_int_equal(state_of(h, OPENAI, MINI, end), DT_PROBING);
	trial(h, MINI, DT_OUTCOME_OK, end);
	assert_int_equal(state_of(h, OPENAI, MINI, end), DT_HEALTHY);

	/* three failures of four: 50% out of reach, re-opened at once */
	end = eject_model(h, OPENAI, MINI, end + 60 * SEC);
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	assert_int_equal(state_of(h, OPENAI, MINI, end), DT_PROBING);
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	assert_int_equal(state_of(h, OPENAI, MINI, end), DT_DOWN);
	dt_health_free(h);
}

static void test_ejection_is_never_shortened_by_older_or_weaker_signals(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_outcome late_ok = { .kind = DT_OUTCOME_OK, .status = 200, .started = T0 - SEC };
	uint64_t end;

	(void)state;
	end = eject_model(h, OPENAI, MINI, T0);
	/* a success from a request sent before the ejection, answered during it */
	dt_health_outcome(h, OPENAI, MINI, &late_ok, T0 + SEC);
	/* a success and a failure of attempts sent during it (panic order) */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, T0 + 2 * SEC);
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 10, T0 + 3 * SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + 4 * SEC), DT_DOWN);
	assert_int_equal(verdict(h, OPENAI, MINI, T0 + 4 * SEC).until, end);
	/* half-open: the same late success is no trial */
	dt_health_tick(h, end);
	dt_health_outcome(h, OPENAI, MINI, &late_ok, end + SEC);
	dt_health_outcome(h, OPENAI, MINI, &late_ok, end + SEC);
	dt_health_outcome(h, OPENAI, MINI, &late_ok, end + SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, end + SEC), DT_PROBING);

	/* a provider ejected: a probe answering during the ejection does not end it */
	fail_n(h, GROQ, NULL, DT_OUTCOME_CONNECT_FAILED, 5, T0);
	end = verdict(h, GROQ, NULL, T0).until;
	dt_health_probe(h, GROQ, true, 20 * MS, T0 + SEC);
	assert_int_equal(state_of(h, GROQ, NULL, T0 + SEC), DT_DOWN);
	assert_int_equal(verdict(h, GROQ, NULL, T0 + SEC).until, end);
	/* half-open: a first-byte timeout says nothing of the provider's
	 * reachability, so it is no successful trial */
	fail_n(h, GROQ, NULL, DT_OUTCOME_FIRST_BYTE_TIMEOUT, 3, end);
	assert_int_equal(state_of(h, GROQ, NULL, end), DT_PROBING);
	dt_health_free(h);
}

static void test_flapping_ejections_grow_then_decay(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end = eject_model(h, OPENAI, MINI, T0), t;
	struct dt_health_verdict v;

	(void)state;
	/* each failed trial doubles the ejection: 10, 20, 40, 80 s */
	for (uint64_t expect = 20; expect <= 80; expect *= 2) {
		trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
		v = verdict(h, OPENAI, MINI, end);
		assert_int_equal(v.until - end, expect * SEC);
		end = v.until;
	}
	/* back: three good trials */
	for (int i = 0; i < 3; i++)
		trial(h, MINI, DT_OUTCOME_OK, end);
	v = verdict(h, OPENAI, MINI, end);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.eject_level, 4);
	assert_int_equal(v.ejections, 4);
	/* a minute healthy takes one step off: the next ejection lasts 80 s */
	t = end + 60 * SEC;
	assert_int_equal(verdict(h, OPENAI, MINI, t).eject_level, 3);
	assert_int_equal(eject_model(h, OPENAI, MINI, t) - t, 80 * SEC);
	for (int i = 0; i < 3; i++)
		trial(h, MINI, DT_OUTCOME_OK, t + 80 * SEC);
	/* long healthy: back to the base */
	t += 80 * SEC + 10 * 60 * SEC;
	assert_int_equal(verdict(h, OPENAI, MINI, t).eject_level, 0);
	assert_int_equal(eject_model(h, OPENAI, MINI, t) - t, 10 * SEC);
	dt_health_free(h);
}

static void test_ejection_time_is_capped(void **state)
{
	struct dt_health_opts o = { .eject_base_ms = 10000, .eject_max_ms = 25000 };
	struct dt_health *h = engine(&o);
	uint64_t end = eject_model(h, OPENAI, MINI, T0);

	(void)state;
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	assert_int_equal(verdict(h, OPENAI, MINI, end).until - end, 20 * SEC);
	end += 20 * SEC;
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, end);
	assert_int_equal(verdict(h, OPENAI, MINI, end).until - end, 25 * SEC);
	dt_health_free(h);
}

/* ---- per model ------------------------------------------------------------- */

static void test_model_outage_leaves_other_models_healthy(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;

	(void)state;
	outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 300 * MS, T0);
	eject_model(h, OPENAI, MINI, T0);
	outcome_at(h, OPENAI, GPT4O, DT_OUTCOME_OK, 300 * MS, T0 + SEC);
	assert_int_equal(state_of(h, OPENAI, GPT4O, T0 + SEC), DT_HEALTHY);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + SEC), DT_HEALTHY);
	assert_true(dt_health_usable(h, OPENAI, GPT4O, T0 + SEC));
	assert_true(dt_health_usable(h, OPENAI, "never-seen", T0 + SEC));
	assert_false(dt_health_usable(h, OPENAI, MINI, T0 + SEC));
	/* a second model down at the same time: the provider is down */
	eject_model(h, OPENAI, O3, T0 + 2 * SEC);
	v = verdict(h, OPENAI, NULL, T0 + 2 * SEC);
	assert_int_equal(v.state, DT_DOWN);
	assert_string_equal(v.reason_text, "2 models down");
	assert_false(dt_health_usable(h, OPENAI, GPT4O, T0 + 2 * SEC));
	assert_int_equal(state_of(h, OPENAI, GPT4O, T0 + 2 * SEC), DT_HEALTHY);
	dt_health_free(h);
}

static void test_model_table_keeps_the_troubled_ones(void **state)
{
	struct dt_health *h = engine(NULL);
	char name[16];
	struct dt_health_verdict v;

	(void)state;
	/* slot 0 down, slot 1 drained, six healthy used in order */
	eject_model(h, DEEPSEEK, "m0", T0);
	dt_health_override(h, DEEPSEEK, "m1", DT_OVERRIDE_DRAIN, T0);
	for (int i = 2; i < DT_HEALTH_MODEL_SLOTS; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		outcome_at(h, DEEPSEEK, name, DT_OUTCOME_OK, 0, T0 + (uint64_t)i * SEC);
	}
	/* a ninth model takes the least recently used healthy slot */
	outcome_at(h, DEEPSEEK, "m8", DT_OUTCOME_OK, 0, T0 + 20 * SEC);
	assert_false(dt_health_verdict(h, DEEPSEEK, "m2", T0 + 20 * SEC, &v));
	assert_true(dt_health_verdict(h, DEEPSEEK, "m0", T0 + 20 * SEC, &v));
	assert_true(dt_health_verdict(h, DEEPSEEK, "m8", T0 + 20 * SEC, &v));
	/* the tracked ones as the publisher lists them: m8 in, m2 out */
	{
		const char *models[DT_HEALTH_MODEL_SLOTS];
		size_t n = dt_health_models(h, DEEPSEEK, models);
		bool m2 = false, m8 = false;

		assert_int_equal(n, DT_HEALTH_MODEL_SLOTS);
		for (size_t i = 0; i < n; i++) {
			m2 |= strcmp(models[i], "m2") == 0;
			m8 |= strcmp(models[i], "m8") == 0;
		}
		assert_false(m2);
		assert_true(m8);
		assert_int_equal(dt_health_models(h, OPENAI, models), 0);
		assert_int_equal(dt_health_models(h, DT_MAX_PROVIDERS, models), 0);
	}
	/* queries take no slot */
	assert_true(dt_health_usable(h, DEEPSEEK, "q", T0 + 20 * SEC));
	assert_false(dt_health_verdict(h, DEEPSEEK, "q", T0 + 20 * SEC, &v));
	/* a name too long to keep is judged at the provider's level only */
	memset(name, 0, sizeof(name));
	{
		char longname[DT_HEALTH_MODEL_LEN + 8];

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		fail_n(h, DEEPSEEK, longname, DT_OUTCOME_SERVER_ERROR, 5, T0 + 20 * SEC);
		assert_false(dt_health_verdict(h, DEEPSEEK, longname, T0 + 20 * SEC, &v));
		assert_int_equal(state_of(h, DEEPSEEK, NULL, T0 + 20 * SEC), DT_HEALTHY);
	}
	dt_health_free(h);
}

static void test_evicting_a_troubled_model_is_announced(void **state)
{
	struct dt_health *h = engine(NULL);
	char name[16];

	(void)state;
	/* m0, the least recently used, is drained: an operator's word stays */
	dt_health_override(h, GROQ, "m0", DT_OVERRIDE_DRAIN, T0);
	for (int i = 1; i < DT_HEALTH_MODEL_SLOTS; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		outcome_at(h, GROQ, name, DT_OUTCOME_RATE_LIMITED, 0, T0 + (uint64_t)i * MS);
	}
	outcome_at(h, GROQ, "new", DT_OUTCOME_OK, 0, T0 + SEC / 2);
	assert_string_equal(last_change()->model, "m1");
	assert_int_equal(last_change()->from, DT_RATE_LIMITED);
	assert_int_equal(last_change()->to, DT_HEALTHY);
	assert_int_equal(last_change()->reason, DT_HR_FORGOTTEN);
	dt_health_free(h);
}

/* ---- order, cap, panic ---------------------------------------------------- */

static const struct dt_health_member class4[] = {
	{ OPENAI, MINI }, { ANTHROPIC, "claude-3-5-haiku" }, { GROQ, "llama-3.3-70b" },
	{ DEEPSEEK, "deepseek-chat" },
};

static void eject_provider(struct dt_health *h, uint32_t id, uint64_t now)
{
	fail_n(h, id, NULL, DT_OUTCOME_CONNECT_FAILED, 5, now);
	assert_int_equal(state_of(h, id, NULL, now), DT_DOWN);
}

static void test_order_puts_healthy_first_then_degraded_then_soonest_back(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_rank r[4];
	struct dt_ratelimit rl = limits(0, 5000);

	(void)state;
	/* OpenAI's mini degraded, Anthropic ejected (back in 10 s), Groq
	 * rate-limited (back in 5 s), DeepSeek healthy */
	for (int i = 0; i < 10; i++)
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 12 * SEC, T0);
	eject_provider(h, ANTHROPIC, T0);
	dt_health_ratelimit(h, GROQ, "llama-3.3-70b", &rl, T0);
	assert_int_equal(dt_health_order(h, class4, 4, T0 + SEC, r), DT_HEALTH_NORMAL);
	assert_int_equal(r[0].member, 3);
	assert_true(r[0].usable);
	assert_int_equal(r[1].member, 0);
	assert_int_equal(r[1].state, DT_DEGRADED);
	assert_true(r[1].usable);
	assert_int_equal(r[2].member, 2);
	assert_int_equal(r[2].state, DT_RATE_LIMITED);
	assert_int_equal(r[2].usable_at, T0 + 5 * SEC);
	assert_false(r[2].usable);
	assert_int_equal(r[3].member, 1);
	assert_int_equal(r[3].state, DT_DOWN);
	assert_int_equal(r[3].usable_at, T0 + 10 * SEC);
	assert_false(r[3].readmitted);
	dt_health_free(h);
}

static void test_class_cap_readmits_the_soonest_back(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_rank r[4];

	(void)state;
	eject_provider(h, ANTHROPIC, T0 + SEC);
	eject_provider(h, GROQ, T0);
	assert_int_equal(dt_health_order(h, class4, 4, T0 + 2 * SEC, r), DT_HEALTH_NORMAL);
	/* a third of four is over the 50% cap: Groq, back first, is readmitted */
	eject_provider(h, DEEPSEEK, T0 + 2 * SEC);
	assert_int_equal(dt_health_order(h, class4, 4, T0 + 3 * SEC, r), DT_HEALTH_CAPPED);
	assert_int_equal(r[0].member, 0);
	assert_int_equal(r[1].member, 2);
	assert_true(r[1].readmitted);
	assert_true(r[1].usable);
	assert_int_equal(r[1].state, DT_DOWN);
	assert_int_equal(r[2].member, 1);
	assert_false(r[2].usable);
	assert_int_equal(r[3].member, 3);
	dt_health_free(h);
}

static void test_panic_routes_to_the_least_bad(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_rank r[4];

	(void)state;
	eject_provider(h, OPENAI, T0 + 3 * SEC);
	eject_provider(h, ANTHROPIC, T0 + 1 * SEC);
	eject_provider(h, GROQ, T0);
	eject_provider(h, DEEPSEEK, T0 + 2 * SEC);
	assert_false(dt_health_usable(h, GROQ, NULL, T0 + 4 * SEC));
	/* all four ejected: the least bad (Groq, back first) carries traffic,
	 * and the cap lets one more (Anthropic) in */
	assert_int_equal(dt_health_order(h, class4, 4, T0 + 4 * SEC, r), DT_HEALTH_PANIC);
	assert_int_equal(r[0].member, 2);
	assert_true(r[0].readmitted);
	assert_int_equal(r[1].member, 1);
	assert_true(r[1].readmitted);
	assert_int_equal(r[2].member, 3);
	assert_false(r[2].usable);
	assert_int_equal(r[3].member, 0);

	/* a class of one, ejected: panic, not failure */
	assert_int_equal(dt_health_order(h, class4, 1, T0 + 4 * SEC, r), DT_HEALTH_PANIC);
	assert_true(r[0].usable);
	/* a drained one is never readmitted */
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_DRAIN, T0 + 4 * SEC);
	assert_int_equal(dt_health_order(h, class4, 1, T0 + 4 * SEC, r), DT_HEALTH_NORMAL);
	assert_false(r[0].usable);
	assert_int_equal(r[0].usable_at, UINT64_MAX);
	dt_health_free(h);
}

static void test_panic_without_a_cap(void **state)
{
	struct dt_health_opts o = { .class_max_ejected_percent = 100 };
	struct dt_health *h = engine(&o);
	const struct dt_health_member two[] = { { OPENAI, MINI }, { GROQ, "llama" } };
	struct dt_health_rank r[2];
	struct dt_ratelimit rl = limits(0, 4000);

	(void)state;
	/* both rate-limited (no ejection for any cap to spare): the soonest
	 * reset is readmitted, the other is not */
	dt_health_ratelimit(h, OPENAI, MINI, &rl, T0);
	rl = limits(0, 2000);
	dt_health_ratelimit(h, GROQ, "llama", &rl, T0);
	assert_int_equal(dt_health_order(h, two, 2, T0 + SEC, r), DT_HEALTH_PANIC);
	assert_int_equal(r[0].member, 1);
	assert_true(r[0].readmitted);
	assert_int_equal(r[0].state, DT_RATE_LIMITED);
	assert_false(r[1].usable);
	/* both ejected, every one may be: panic readmits exactly one */
	eject_provider(h, OPENAI, T0);
	eject_provider(h, GROQ, T0 + SEC);
	assert_int_equal(dt_health_order(h, two, 2, T0 + 5 * SEC, r), DT_HEALTH_PANIC);
	assert_int_equal(r[0].member, 0);
	assert_true(r[0].usable);
	assert_false(r[1].usable);
	dt_health_free(h);
}

/* ---- operator -------------------------------------------------------------- */

static void test_operator_drain_force_clear(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;
	struct dt_health_rank r[2];

	(void)state;
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_DRAIN, T0);
	v = verdict(h, OPENAI, NULL, T0);
	assert_int_equal(v.state, DT_DOWN);
	assert_int_equal(v.override, DT_OVERRIDE_DRAIN);
	assert_string_equal(v.reason_text, "drained by operator");
	assert_int_equal(v.until, 0);
	assert_false(dt_health_usable(h, OPENAI, MINI, T0));
	assert_int_equal(last_change()->to, DT_DOWN);
	assert_int_equal(last_change()->reason, DT_HR_DRAINED);
	/* the signals still count underneath */
	fail_n(h, OPENAI, NULL, DT_OUTCOME_CONNECT_FAILED, 5, T0);
	assert_int_equal(verdict(h, OPENAI, NULL, T0).ejections, 1);
	/* forced: routed whatever the signals say */
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_FORCE, T0 + SEC);
	v = verdict(h, OPENAI, NULL, T0 + SEC);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_string_equal(v.reason_text, "forced by operator");
	assert_true(dt_health_usable(h, OPENAI, MINI, T0 + SEC));
	/* cleared: back to what the signals say (still ejected) */
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_NONE, T0 + 2 * SEC);
	v = verdict(h, OPENAI, NULL, T0 + 2 * SEC);
	assert_int_equal(v.state, DT_DOWN);
	assert_string_equal(v.reason_text, "5 consecutive failures");
	/* cleared on a healthy one says so */
	dt_health_override(h, GROQ, NULL, DT_OVERRIDE_FORCE, T0);
	dt_health_override(h, GROQ, NULL, DT_OVERRIDE_NONE, T0 + SEC);
	assert_string_equal(verdict(h, GROQ, NULL, T0 + SEC).reason_text, "override cleared");
	/* per model; a drain on the provider beats a force on its model */
	dt_health_override(h, GROQ, "llama", DT_OVERRIDE_FORCE, T0 + SEC);
	dt_health_override(h, GROQ, NULL, DT_OVERRIDE_DRAIN, T0 + SEC);
	assert_false(dt_health_usable(h, GROQ, "llama", T0 + SEC));
	/* a force on the provider lifts its models' ejections */
	eject_model(h, DEEPSEEK, "chat", T0);
	dt_health_override(h, DEEPSEEK, NULL, DT_OVERRIDE_FORCE, T0);
	assert_true(dt_health_usable(h, DEEPSEEK, "chat", T0));
	{
		const struct dt_health_member m[] = { { GROQ, "llama" }, { DEEPSEEK, "chat" } };

		assert_int_equal(dt_health_order(h, m, 2, T0 + SEC, r), DT_HEALTH_NORMAL);
		assert_int_equal(r[0].member, 1);
		assert_true(r[0].usable);
		assert_false(r[1].usable);
		assert_false(r[1].readmitted);
	}
	dt_health_free(h);
}

/* ---- the change callback ----------------------------------------------------- */

static void test_change_callback_sequence(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_ratelimit rl = limits(0, 3000);
	static const struct {
		enum dt_state from, to;
		const char *text;
	} want[] = {
		{ DT_HEALTHY, DT_DOWN, "5 consecutive failures" },
		{ DT_DOWN, DT_PROBING, "ejection over, 3 trials admitted" },
		{ DT_PROBING, DT_DOWN, "1 of 3 trials failed" },
		{ DT_DOWN, DT_PROBING, "ejection over, 3 trials admitted" },
		{ DT_PROBING, DT_HEALTHY, "3 of 3 trials succeeded" },
		{ DT_HEALTHY, DT_RATE_LIMITED, "requests exhausted, reset in 3 s" },
		{ DT_RATE_LIMITED, DT_RATE_LIMITED, "429, rate limit reset in 10 s" },
		{ DT_RATE_LIMITED, DT_HEALTHY, "recovered" },
	};
	struct dt_outcome o429 = { .kind = DT_OUTCOME_RATE_LIMITED, .retry_after_ms = 10000 };
	uint64_t t;

	(void)state;
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 5, T0);
	/* synchronous: heard before the call returns */
	assert_int_equal(changes.n, 1);
	assert_int_equal(changes.c[0].since, T0);
	dt_health_tick(h, dt_health_next_event(h));
	assert_int_equal(changes.n, 2);
	t = T0 + 10 * SEC;
	trial(h, MINI, DT_OUTCOME_SERVER_ERROR, t);
	dt_health_tick(h, dt_health_next_event(h));
	t += 20 * SEC;
	for (int i = 0; i < 3; i++)
		trial(h, MINI, DT_OUTCOME_OK, t);
	/* quiet ticks and repeated signals announce nothing */
	dt_health_tick(h, t + SEC);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, t + SEC);
	assert_int_equal(changes.n, 5);
	dt_health_ratelimit(h, OPENAI, MINI, &rl, t + SEC);
	dt_health_ratelimit(h, OPENAI, MINI, &rl, t + SEC);
	/* lengthened by a 429: announced, with the new end */
	o429.started = t + 2 * SEC;
	dt_health_outcome(h, OPENAI, MINI, &o429, t + 2 * SEC);
	assert_int_equal(changes.c[6].until, t + 12 * SEC);
	assert_int_equal(changes.c[6].since, t + SEC); /* the state did not change */
	/* the next event may come early (the 3 s reset it was): a tick then
	 * changes nothing and finds the true one */
	assert_int_equal(dt_health_next_event(h), t + 4 * SEC);
	dt_health_tick(h, t + 4 * SEC);
	assert_int_equal(changes.n, 7);
	assert_int_equal(dt_health_next_event(h), t + 12 * SEC);
	dt_health_tick(h, t + 12 * SEC);
	assert_int_equal(changes.n, ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		assert_int_equal(changes.c[i].provider_id, OPENAI);
		assert_string_equal(changes.c[i].model, MINI);
		assert_int_equal(changes.c[i].from, want[i].from);
		assert_int_equal(changes.c[i].to, want[i].to);
		assert_string_equal(changes.c[i].text, want[i].text);
	}
	assert_int_equal(changes.c[1].since, T0 + 10 * SEC);
	assert_int_equal(changes.c[2].until, T0 + 30 * SEC);
	dt_health_free(h);
}

/* ---- kernel signals -------------------------------------------------------- */

static void test_kernel_connect_failures_eject_only_when_nothing_connects(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_tcp_sample s = { .connects = 1, .connect_failures = 4, .resets = 4 };

	(void)state;
	/* some connects succeed: not an outage */
	for (int i = 0; i < 5; i++)
		dt_health_tcp(h, OPENAI, &s, T0 + (uint64_t)i * 100 * MS);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + SEC), DT_HEALTHY);
	/* none does */
	s = (struct dt_tcp_sample){ .connect_failures = 2, .resets = 1 };
	dt_health_tcp(h, OPENAI, &s, T0 + SEC);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + SEC), DT_HEALTHY);
	dt_health_tcp(h, OPENAI, &s, T0 + SEC + 100 * MS);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + 2 * SEC), DT_DOWN);
	assert_string_equal(verdict(h, OPENAI, NULL, T0 + 2 * SEC).reason_text,
			    "6 connects failed or reset, none succeeded");
	dt_health_free(h);
}

static void test_kernel_retransmits_and_slow_connects_degrade(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_tcp_sample s = { .connects = 1, .segments_out = 150, .retransmits = 6,
				   .connect_latency_ns = 20 * MS };
	struct dt_health_verdict v;

	(void)state;
	/* 4% of 150, then of 300 segments: below 5%, and the first below 200 */
	dt_health_tcp(h, OPENAI, &s, T0);
	dt_health_tcp(h, OPENAI, &s, T0);
	assert_int_equal(state_of(h, OPENAI, NULL, T0), DT_HEALTHY);
	s.retransmits = 30;
	dt_health_tcp(h, OPENAI, &s, T0);
	v = verdict(h, OPENAI, NULL, T0);
	assert_int_equal(v.state, DT_DEGRADED);
	assert_string_equal(v.reason_text, "retransmits 9% of 450 segments");

	/* connects: a 20 ms baseline, then 400 ms (over 3x and over 200 ms) */
	s = (struct dt_tcp_sample){ .connects = 1, .connect_latency_ns = 20 * MS };
	for (int i = 0; i < 10; i++)
		dt_health_tcp(h, GROQ, &s, T0);
	assert_int_equal(verdict(h, GROQ, NULL, T0).connect_baseline_ns, 20 * MS);
	s = (struct dt_tcp_sample){ .connects = 10, .connect_latency_ns = 400 * MS };
	dt_health_tcp(h, GROQ, &s, T0);
	v = verdict(h, GROQ, NULL, T0);
	assert_int_equal(v.state, DT_DEGRADED);
	assert_string_equal(v.reason_text, "slow connects 50% over 20 connects");
	assert_int_equal(v.slow_rate_percent, 50);
	dt_health_free(h);
}

/* ---- probes ---------------------------------------------------------------- */

static void assert_due_within(struct dt_health *h, uint32_t id, uint64_t now, uint64_t iv)
{
	uint64_t due = dt_health_probe_due(h, id);

	if (due < now + iv / 100 * 80 || due > now + iv / 100 * 120)
		fail_msg("due in %llu ms, not %llu ms +-20%%", (unsigned long long)((due - now) / MS),
			 (unsigned long long)(iv / MS));
}

static void test_probe_schedule_with_jitter(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t t = T0, first, lo = UINT64_MAX, hi = 0;

	(void)state;
	assert_int_equal(dt_health_probe_due(h, OPENAI), 0);
	for (int i = 0; i < 200; i++) {
		uint64_t gap;

		dt_health_probe(h, OPENAI, true, 30 * MS, t);
		assert_due_within(h, OPENAI, t, 15 * SEC);
		gap = dt_health_probe_due(h, OPENAI) - t;
		lo = gap < lo ? gap : lo;
		hi = gap > hi ? gap : hi;
		t = dt_health_probe_due(h, OPENAI);
	}
	/* jitter spreads the probes (over most of the +-20% band) */
	assert_true(lo < 13 * SEC);
	assert_true(hi > 17 * SEC);

	/* real answers between probes back the probing off, up to the max */
	for (uint64_t iv = 30; iv <= 120; iv *= 2) {
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, t);
		dt_health_probe(h, OPENAI, true, 30 * MS, t);
		assert_due_within(h, OPENAI, t, iv * SEC);
		t = dt_health_probe_due(h, OPENAI);
	}
	for (int i = 0; i < 70; i++) { /* and stays there */
		outcome_at(h, OPENAI, MINI, DT_OUTCOME_OK, 0, t);
		dt_health_probe(h, OPENAI, true, 30 * MS, t);
		assert_due_within(h, OPENAI, t, 120 * SEC);
		t = dt_health_probe_due(h, OPENAI);
	}
	/* failures prove nothing: a 5xx between probes does not back off */
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, t);
	dt_health_probe(h, OPENAI, true, 30 * MS, t);
	assert_due_within(h, OPENAI, t, 15 * SEC);

	/* a failed probe (a failure pending) is checked again soon; once one
	 * succeeds the interval is the normal one again */
	t += SEC;
	dt_health_probe(h, OPENAI, false, 30 * MS, t);
	assert_int_equal(state_of(h, OPENAI, NULL, t), DT_HEALTHY);
	assert_due_within(h, OPENAI, t, 2 * SEC);
	t = dt_health_probe_due(h, OPENAI);
	dt_health_probe(h, OPENAI, true, 30 * MS, t);
	assert_due_within(h, OPENAI, t, 15 * SEC);

	/* an outage brings the next probe forward and keeps probing fast */
	t += SEC;
	eject_provider(h, OPENAI, t);
	assert_due_within(h, OPENAI, t, 2 * SEC);
	first = dt_health_probe_due(h, OPENAI);
	dt_health_probe(h, OPENAI, false, 30 * MS, first);
	assert_due_within(h, OPENAI, first, 2 * SEC);
	dt_health_free(h);
}

static void test_probes_judge_the_provider(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end;

	(void)state;
	for (int i = 0; i < 5; i++)
		dt_health_probe(h, ANTHROPIC, false, 2 * SEC, T0 + (uint64_t)i * 2 * SEC);
	assert_int_equal(state_of(h, ANTHROPIC, NULL, T0 + 8 * SEC), DT_DOWN);
	end = verdict(h, ANTHROPIC, NULL, T0 + 8 * SEC).until;
	/* half-open: the provider's trial slots are shared by all its models */
	assert_true(dt_health_begin(h, ANTHROPIC, "a", end));
	assert_true(dt_health_begin(h, ANTHROPIC, "b", end));
	assert_true(dt_health_begin(h, ANTHROPIC, NULL, end));
	assert_false(dt_health_begin(h, ANTHROPIC, "c", end));
	assert_false(dt_health_usable(h, ANTHROPIC, "c", end));
	end += 30 * SEC; /* never answered: their slots are free again */
	/* probe answers are trials too */
	for (int i = 0; i < 3; i++)
		dt_health_probe(h, ANTHROPIC, true, 100 * MS, end + (uint64_t)(i + 1) * SEC);
	assert_int_equal(state_of(h, ANTHROPIC, NULL, end + 3 * SEC), DT_HEALTHY);
	/* a probe sent before the half-open phase began is no trial */
	eject_provider(h, ANTHROPIC, end + 4 * SEC);
	end = verdict(h, ANTHROPIC, NULL, end + 4 * SEC).until;
	dt_health_probe(h, ANTHROPIC, false, 2 * SEC, end + SEC);
	assert_int_equal(state_of(h, ANTHROPIC, NULL, end + SEC), DT_PROBING);
	dt_health_free(h);
}

/* A full outage answering 503: probes eject the provider; a trial answered
 * 503 does not readmit it, it fails the trial (ejected again, longer). */
static void test_server_errors_never_readmit_a_provider(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t end;

	(void)state;
	for (int i = 0; i < 5; i++)
		dt_health_probe(h, OPENAI, false, 10 * MS, T0 + (uint64_t)i * SEC);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + 5 * SEC), DT_DOWN);
	end = verdict(h, OPENAI, NULL, T0 + 5 * SEC).until;
	for (int i = 0; i < 3; i++)
		assert_true(dt_health_begin(h, OPENAI, MINI, end));
	assert_false(dt_health_begin(h, OPENAI, MINI, end));
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, end);
	assert_int_equal(state_of(h, OPENAI, NULL, end), DT_DOWN);
	assert_int_equal(verdict(h, OPENAI, NULL, end).ejections, 2);
	assert_false(dt_health_usable(h, OPENAI, NULL, end));
	/* and while closed, a 503 does not clear the probes' failures */
	dt_health_free(h);
	h = engine(NULL);
	dt_health_probe(h, OPENAI, false, 10 * MS, T0);
	dt_health_probe(h, OPENAI, false, 10 * MS, T0 + SEC);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0 + SEC);
	assert_int_equal(verdict(h, OPENAI, NULL, T0 + SEC).consecutive_failures, 2);
	dt_health_free(h);
}

/* A provider removed from the configuration leaves nothing to the next
 * one given its id. */
static void test_forgotten_provider_starts_afresh(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;

	(void)state;
	eject_provider(h, GROQ, T0);
	eject_model(h, GROQ, MINI, T0);
	dt_health_forget(h, GROQ);
	v = verdict(h, GROQ, NULL, T0 + SEC);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.ejections, 0);
	assert_int_equal(v.consecutive_failures, 0);
	assert_false(dt_health_verdict(h, GROQ, MINI, T0 + SEC, &v)); /* its models untracked */
	assert_true(dt_health_usable(h, GROQ, MINI, T0 + SEC));
	dt_health_free(h);
}

/* ---- the path to a provider (netlink) ------------------------------------------ */

static void test_lost_path_holds_down_until_it_is_back(void **state)
{
	struct dt_health *h = engine(NULL);
	struct dt_health_verdict v;
	uint64_t back = T0 + 600 * SEC;

	(void)state;
	dt_health_probe(h, GROQ, true, 10 * MS, T0);
	dt_health_path(h, GROQ, DT_PATH_NO_ROUTE, T0 + SEC);
	v = verdict(h, GROQ, NULL, T0 + SEC);
	assert_int_equal(v.state, DT_DOWN);
	assert_int_equal(v.reason, DT_HR_NO_ROUTE);
	assert_string_equal(v.reason_text, "route lost");
	assert_int_equal(v.until, 0); /* open-ended: no timer ends it */
	assert_int_equal(v.ejections, 0);
	assert_int_equal(last_change()->to, DT_DOWN);
	assert_int_equal(last_change()->since, T0 + SEC);
	assert_false(dt_health_usable(h, GROQ, MINI, T0 + SEC));
	/* the interface the routes went out of is named once it is known */
	dt_health_path(h, GROQ, DT_PATH_LINK_DOWN, T0 + 2 * SEC);
	assert_string_equal(last_change()->text, "uplink down");
	/* far past any ejection time, nothing but the path ends it; probes,
	 * answers and ticks meanwhile decide nothing */
	dt_health_tick(h, back - SEC);
	dt_health_probe(h, GROQ, true, 10 * MS, back - SEC);
	outcome_at(h, GROQ, MINI, DT_OUTCOME_OK, 0, back - SEC);
	assert_int_equal(state_of(h, GROQ, NULL, back - SEC), DT_DOWN);

	/* back: half-open at once, its probe due now, trials decide */
	dt_health_path(h, GROQ, DT_PATH_OK, back);
	v = verdict(h, GROQ, NULL, back);
	assert_int_equal(v.state, DT_PROBING);
	assert_string_equal(v.reason_text, "path back, 3 trials admitted");
	assert_int_equal(dt_health_probe_due(h, GROQ), back);
	for (int i = 1; i <= 3; i++)
		dt_health_probe(h, GROQ, true, 10 * MS, back + (uint64_t)i * SEC);
	v = verdict(h, GROQ, NULL, back + 3 * SEC);
	assert_int_equal(v.state, DT_HEALTHY);
	assert_int_equal(v.ejections, 0);
	/* not an ejection of its making: the next one starts from the base */
	fail_n(h, GROQ, NULL, DT_OUTCOME_CONNECT_FAILED, 5, back + 4 * SEC);
	assert_int_equal(verdict(h, GROQ, NULL, back + 4 * SEC).until, back + 4 * SEC + 10 * SEC);
	dt_health_free(h);
}

static void test_lost_path_never_shortens_an_ejection(void **state)
{
	struct dt_health *h = engine(NULL);
	uint64_t until;

	(void)state;
	fail_n(h, DEEPSEEK, NULL, DT_OUTCOME_CONNECT_FAILED, 5, T0);
	until = verdict(h, DEEPSEEK, NULL, T0).until;
	dt_health_path(h, DEEPSEEK, DT_PATH_NO_ROUTE, T0 + SEC);
	assert_string_equal(last_change()->text, "route lost");
	/* back before the ejection is over: the ejection runs out, its cause shown again */
	dt_health_path(h, DEEPSEEK, DT_PATH_OK, T0 + 2 * SEC);
	assert_int_equal(state_of(h, DEEPSEEK, NULL, T0 + 2 * SEC), DT_DOWN);
	assert_int_equal(verdict(h, DEEPSEEK, NULL, T0 + 2 * SEC).until, until);
	assert_string_equal(last_change()->text, "5 consecutive failures");
	dt_health_tick(h, until);
	assert_int_equal(state_of(h, DEEPSEEK, NULL, until), DT_PROBING);
	assert_string_equal(last_change()->text, "ejection over, 3 trials admitted");
	dt_health_free(h);
}

static void test_new_path_is_probed_at_once(void **state)
{
	struct dt_health *h = engine(NULL);

	(void)state;
	dt_health_probe(h, OPENAI, true, 10 * MS, T0);
	assert_true(dt_health_probe_due(h, OPENAI) > T0 + SEC);
	changes.n = 0;
	/* a route moved: nothing lost, nothing announced, but worth a probe */
	dt_health_path(h, OPENAI, DT_PATH_OK, T0 + SEC);
	assert_int_equal(dt_health_probe_due(h, OPENAI), T0 + SEC);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + SEC), DT_HEALTHY);
	assert_int_equal(changes.n, 0);
	/* an operator's force beats a lost path */
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_FORCE, T0 + 2 * SEC);
	dt_health_path(h, OPENAI, DT_PATH_LINK_DOWN, T0 + 3 * SEC);
	assert_true(dt_health_usable(h, OPENAI, MINI, T0 + 3 * SEC));
	dt_health_override(h, OPENAI, NULL, DT_OVERRIDE_NONE, T0 + 4 * SEC);
	assert_int_equal(state_of(h, OPENAI, NULL, T0 + 4 * SEC), DT_DOWN);
	dt_health_free(h);
}

/* ---- options and snapshot ----------------------------------------------------- */

static void test_options(void **state)
{
	struct dt_health_opts o = { .consecutive_failures = 2, .eject_base_ms = 1000,
				    .trial_success_percent = 250 };
	struct dt_health *h = engine(&o);

	(void)state;
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 2, T0);
	assert_int_equal(verdict(h, OPENAI, MINI, T0).until, T0 + SEC);
	/* a percentage over 100 is taken as 100: every trial must succeed */
	trial(h, MINI, DT_OUTCOME_OK, T0 + SEC);
	trial(h, MINI, DT_OUTCOME_OK, T0 + SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + SEC), DT_PROBING);
	trial(h, MINI, DT_OUTCOME_OK, T0 + SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + SEC), DT_HEALTHY);
	/* a reload keeps the state */
	dt_health_set_opts(h, NULL);
	fail_n(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 4, T0 + 2 * SEC);
	assert_int_equal(state_of(h, OPENAI, MINI, T0 + 2 * SEC), DT_HEALTHY);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0 + 2 * SEC);
	assert_int_equal(verdict(h, OPENAI, MINI, T0 + 2 * SEC).ejections, 2);
	dt_health_free(h);

	/* a provider in trouble is never probed less often than a healthy one */
	o = (struct dt_health_opts){ .probe_interval_ms = 1000, .probe_interval_down_ms = 5000 };
	h = engine(&o);
	dt_health_probe(h, OPENAI, false, 30 * MS, T0);
	assert_due_within(h, OPENAI, T0, SEC);
	dt_health_free(h);
}

static void test_snapshot_and_bounds(void **state)
{
	struct dt_health *h = dt_health_new(NULL, NULL, NULL);
	struct dt_health_verdict v;
	struct dt_outcome o = { .kind = DT_OUTCOME_OK, .status = 200, .started = T0,
				.ttft_ns = 200 * MS, .total_ns = 2 * SEC };

	(void)state;
	assert_non_null(h);
	/* no callback: fine */
	for (int i = 0; i < 3; i++)
		dt_health_outcome(h, OPENAI, MINI, &o, T0);
	outcome_at(h, OPENAI, MINI, DT_OUTCOME_SERVER_ERROR, 0, T0);
	v = verdict(h, OPENAI, MINI, T0);
	assert_int_equal(v.calls, 4);
	assert_int_equal(v.error_rate_percent, 25);
	assert_int_equal(v.consecutive_failures, 1);
	assert_int_equal(v.ttft_baseline_ns, 200 * MS);
	assert_int_equal(v.total_avg_ns, 2 * SEC);
	assert_int_equal(v.since, T0); /* first seen */
	assert_string_equal(v.reason_text, "no trouble seen");
	/* the provider shows its models' time to first token too */
	assert_int_equal(verdict(h, OPENAI, NULL, T0).ttft_baseline_ns, 200 * MS);
	/* provider ids out of range are ignored, never written */
	dt_health_outcome(h, DT_MAX_PROVIDERS, MINI, &o, T0);
	dt_health_probe(h, DT_MAX_PROVIDERS + 5, false, 0, T0);
	assert_true(dt_health_usable(h, DT_MAX_PROVIDERS, MINI, T0));
	assert_true(dt_health_begin(h, DT_MAX_PROVIDERS, MINI, T0));
	assert_false(dt_health_verdict(h, DT_MAX_PROVIDERS, NULL, T0, &v));
	assert_int_equal(dt_health_probe_due(h, DT_MAX_PROVIDERS), UINT64_MAX);
	assert_int_equal(dt_health_next_event(h), UINT64_MAX);
	assert_string_equal(dt_health_state_name(DT_RATE_LIMITED), "rate-limited");
	dt_health_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_outage_ejects_after_consecutive_failures),
		cmocka_unit_test(test_first_byte_timeouts_eject_the_model),
		cmocka_unit_test(test_transport_failures_eject_the_provider),
		cmocka_unit_test(test_failure_rate_needs_the_minimum_volume),
		cmocka_unit_test(test_failure_rate_is_over_a_sliding_window),
		cmocka_unit_test(test_key_refusals_and_rate_limits_are_not_failures),
		cmocka_unit_test(test_slow_calls_against_the_baseline),
		cmocka_unit_test(test_slow_calls_against_the_ceiling),
		cmocka_unit_test(test_cancelled_calls_are_slow_not_failures),
		cmocka_unit_test(test_cancelled_trial_frees_its_slot),
		cmocka_unit_test(test_latency_baselines),
		cmocka_unit_test(test_poor_answers_degrade_without_ejecting),
		cmocka_unit_test(test_rate_limit_headers_set_aside_before_any_429),
		cmocka_unit_test(test_token_limits_and_their_floor),
		cmocka_unit_test(test_429_storm),
		cmocka_unit_test(test_half_open_admits_limited_trials),
		cmocka_unit_test(test_failed_trial_reopens_longer),
		cmocka_unit_test(test_trial_success_ratio),
		cmocka_unit_test(test_ejection_is_never_shortened_by_older_or_weaker_signals),
		cmocka_unit_test(test_flapping_ejections_grow_then_decay),
		cmocka_unit_test(test_ejection_time_is_capped),
		cmocka_unit_test(test_model_outage_leaves_other_models_healthy),
		cmocka_unit_test(test_model_table_keeps_the_troubled_ones),
		cmocka_unit_test(test_evicting_a_troubled_model_is_announced),
		cmocka_unit_test(test_order_puts_healthy_first_then_degraded_then_soonest_back),
		cmocka_unit_test(test_class_cap_readmits_the_soonest_back),
		cmocka_unit_test(test_panic_routes_to_the_least_bad),
		cmocka_unit_test(test_panic_without_a_cap),
		cmocka_unit_test(test_operator_drain_force_clear),
		cmocka_unit_test(test_change_callback_sequence),
		cmocka_unit_test(test_kernel_connect_failures_eject_only_when_nothing_connects),
		cmocka_unit_test(test_kernel_retransmits_and_slow_connects_degrade),
		cmocka_unit_test(test_probe_schedule_with_jitter),
		cmocka_unit_test(test_probes_judge_the_provider),
		cmocka_unit_test(test_server_errors_never_readmit_a_provider),
		cmocka_unit_test(test_forgotten_provider_starts_afresh),
		cmocka_unit_test(test_lost_path_holds_down_until_it_is_back),
		cmocka_unit_test(test_lost_path_never_shortens_an_ejection),
		cmocka_unit_test(test_new_path_is_probed_at_once),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_snapshot_and_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
