// SPDX-License-Identifier: MIT
/* Router: plans (in the health engine's order), weighted order, blame, keys,
 * retry budget, context-window failover, class validation. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ratebudget.h"
#include "router.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { OPENAI = 1, GROQ = 2, DEEPSEEK = 3, MISTRAL = 4 };

#define MINI  "gpt-4o-mini"
#define LLAMA "llama-3.3-70b-versatile"
#define DSEEK "deepseek-chat"
#define SMALL "mistral-small-latest"

/* gpt-4o-mini ≈ llama-3.3-70b on Groq ≈ deepseek-chat ≈ mistral-small
 * (window unknown), in this priority order */
static struct dt_class_member mini_members[] = {
	{ OPENAI, MINI, 128000, 1, 0, 0, false, 0 },
	{ GROQ, LLAMA, 131072, 1, 0, 0, false, 0 },
	{ DEEPSEEK, DSEEK, 65536, 1, 0, 0, false, 0 },
	{ MISTRAL, SMALL, 0, 1, 0, 0, false, 0 },
};

static struct dt_model_class mini_class = {
	.name = "mini", .members = mini_members, .n_members = ARRAY_LEN(mini_members),
	.strategy = DT_STRATEGY_PRIORITY,
};

/* A fresh health engine for each test: plans follow its verdicts. It ejects
 * after 3 transport failures, for 10 s; no ejection cap, so its order is
 * the plain one. */
static struct dt_health *health;
static const struct dt_health_opts health_opts = {
	.consecutive_failures = 3, .eject_base_ms = 10000, .class_max_ejected_percent = 100,
};

static int setup(void **state)
{
	(void)state;
	health = dt_health_new(&health_opts, NULL, NULL);
	return health ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	dt_health_free(health);
	health = NULL;
	return 0;
}

static struct dt_router *router_with_mini(void)
{
	struct dt_router *r = dt_router_new(NULL, health);

	assert_non_null(r);
	assert_int_equal(dt_router_set_classes(r, &mini_class, 1), 0);
	return r;
}

struct want {
	uint32_t provider_id;
	const char *model;
	uint32_t key_slot;
};

static void assert_plan(const struct dt_attempt *got, size_t n, const struct want *want,
			size_t n_want)
{
	assert_int_equal(n, n_want);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].provider_id, want[i].provider_id);
		assert_string_equal(got[i].model, want[i].model);
		assert_int_equal(got[i].key_slot, want[i].key_slot);
	}
}

#define ASSERT_PLAN(got, n, ...) do { \
	const struct want w_[] = { __VA_ARGS__ }; \
	assert_plan(got, n, w_, ARRAY_LEN(w_)); \
} while (0)

#define APP    DT_KEY_SLOT_APP
#define DETOUR DT_KEY_SLOT_DETOUR

static void fail_provider(uint32_t provider_id, int times, uint64_t now)
{
	const struct dt_outcome o = { .kind = DT_OUTCOME_CONNECT_FAILED, .started = now };

	for (int i = 0; i < times; i++)
		dt_health_outcome(health, provider_id, NULL, &o, now);
}

static void rate_limit(uint32_t provider_id, const char *model, uint64_t retry_after_ms,
		       uint64_t now)
{
	const struct dt_outcome o = { .kind = DT_OUTCOME_RATE_LIMITED, .status = 429,
				      .started = now, .retry_after_ms = retry_after_ms };

	dt_health_outcome(health, provider_id, model, &o, now);
}

static void report(struct dt_router *r, uint32_t provider_id, uint32_t slot, enum dt_blame b,
		   uint64_t now)
{
	struct dt_attempt a = { provider_id, "any", slot, false };

	dt_router_report(r, &a, b, now);
}

/* (provider, model) is set aside up to, and not including, `until`. */
static void assert_aside_until(uint32_t provider_id, const char *model, uint64_t until)
{
	dt_health_tick(health, until - 1);
	assert_false(dt_health_usable(health, provider_id, model, until - 1));
	dt_health_tick(health, until);
	assert_true(dt_health_usable(health, provider_id, model, until));
}

/* ---- plans -------------------------------------------------------------- */

static void test_passthrough_plan(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];
	const char *model = "gpt-4o";
	size_t n;

	(void)state;
	n = dt_router_plan(r, OPENAI, model, NULL, 0, 0, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, "gpt-4o", APP });
	assert_ptr_equal(out[0].model, model);

	/* matching is exact: case, and the provider the request was sent to */
	n = dt_router_plan(r, OPENAI, "GPT-4o-mini", NULL, 0, 0, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, "GPT-4o-mini", APP });
	n = dt_router_plan(r, GROQ, MINI, NULL, 0, 0, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, MINI, APP });

	/* a passthrough has nowhere else to go, ejected or not */
	fail_provider(OPENAI, 3, 0);
	n = dt_router_plan(r, OPENAI, model, NULL, 0, 1 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, "gpt-4o", APP });

	/* beyond any configured provider id */
	n = dt_router_plan(r, 100000, "m", NULL, 0, 0, out, 8, NULL);
	ASSERT_PLAN(out, n, { 100000, "m", APP });
	dt_router_report(r, &out[0], DT_BLAME_KEY, 0); /* ignored, no crash */

	assert_int_equal(dt_router_plan(r, OPENAI, model, NULL, 0, 0, out, 0, NULL), 0);
	dt_router_free(r);
}

static void test_class_plan_starts_with_the_original(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];
	char model[] = LLAMA;
	size_t n;

	(void)state;
	n = dt_router_plan(r, GROQ, model, NULL, 0, 0, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP }, { OPENAI, MINI, DETOUR },
		    { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR });
	/* the router's copy, so the caller's buffer may go */
	assert_ptr_not_equal(out[0].model, model);

	n = dt_router_plan(r, GROQ, model, NULL, 0, 0, out, 2, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP }, { OPENAI, MINI, DETOUR });
	dt_router_free(r);
}

static void test_classes_are_copied(void **state)
{
	struct dt_class_member members[] = { { OPENAI, MINI, 0, 1, 0, 0, false, 0 }, { GROQ, LLAMA, 0, 1, 0, 0, false, 0 } };
	struct dt_model_class cls = { .name = "c", .members = members, .n_members = 2 };
	struct dt_router *r = dt_router_new(NULL, health);
	struct dt_attempt out[4];
	size_t n;

	(void)state;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	strcpy(members[1].model, "changed");
	members[1].provider_id = DEEPSEEK;
	cls.n_members = 1;
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, out, 4, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR });
	dt_router_free(r);
}

static void test_unusable_members_go_last_soonest_usable_first(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	fail_provider(OPENAI, 3, 1 * SEC);           /* ejected until 11 s */
	rate_limit(GROQ, LLAMA, 4000, 1 * SEC);      /* aside until 5 s */
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 2 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR },
		    { GROQ, LLAMA, DETOUR }, { OPENAI, MINI, APP });

	/* max leaves the unusable ones out first */
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 2 * SEC, out, 2, NULL);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR });

	dt_health_tick(health, 5 * SEC);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 5 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { OPENAI, MINI, APP });

	/* once its ejection has passed the original leads again (on trial) */
	dt_health_tick(health, 11 * SEC);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 11 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR },
		    { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR });
	dt_router_free(r);
}

static void test_health_survives_set_classes(void **state)
{
	struct dt_class_member members[] = { { DEEPSEEK, DSEEK, 0, 1, 0, 0, false, 0 }, { GROQ, LLAMA, 0, 1, 0, 0, false, 0 } };
	struct dt_model_class cls = { .name = "c", .members = members, .n_members = 2 };
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[4];
	size_t n;

	(void)state;
	fail_provider(GROQ, 3, 0);
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 1 * SEC, out, 4, NULL);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, DETOUR }, { GROQ, LLAMA, APP });
	/* gpt-4o-mini is no longer in a class */
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 1 * SEC, out, 4, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP });
	dt_router_free(r);
}

/* ---- weighted order ------------------------------------------------------ */

static void test_weighted_order_follows_the_weights(void **state)
{
	/* weights 5, 3, 1 and 0 (counts as 1): every cycle of 10 plans leads
	 * with each member exactly its weight's times (smooth weighted
	 * round-robin), the original included, which keeps its own key */
	struct dt_class_member members[] = {
		{ OPENAI, MINI, 0, 5, 0, 0, false, 0 }, { GROQ, LLAMA, 0, 3, 0, 0, false, 0 }, { DEEPSEEK, DSEEK, 0, 1, 0, 0, false, 0 },
		{ MISTRAL, SMALL, 0, 0, 0, 0, false, 0 },
	};
	struct dt_model_class cls = { .name = "w", .members = members, .n_members = 4,
				      .strategy = DT_STRATEGY_WEIGHTED };
	struct dt_router *r = dt_router_new(NULL, health);
	struct dt_attempt out[4];

	(void)state;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	for (int cycle = 0; cycle < 3; cycle++) {
		unsigned first[5] = {0};

		for (int i = 0; i < 10; i++) {
			assert_int_equal(dt_router_plan(r, GROQ, LLAMA, NULL, 0, 0, out, 4, NULL), 4);
			first[out[0].provider_id]++;
			for (int k = 0; k < 4; k++)
				assert_int_equal(out[k].key_slot, out[k].provider_id == GROQ ?
						 DT_KEY_SLOT_APP : DT_KEY_SLOT_DETOUR);
		}
		assert_int_equal(first[OPENAI], 5);
		assert_int_equal(first[GROQ], 3);
		assert_int_equal(first[DEEPSEEK], 1);
		assert_int_equal(first[MISTRAL], 1);
	}
	/* an ejected member takes no turn: the others share its turns */
	fail_provider(OPENAI, 3, 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(dt_router_plan(r, GROQ, LLAMA, NULL, 0, 1 * MS, out, 4, NULL), 4);
		assert_int_not_equal(out[0].provider_id, OPENAI);
		assert_int_equal(out[3].provider_id, OPENAI);
	}
	dt_router_free(r);
}

/* ---- blame -------------------------------------------------------------- */

#define OPENAI_CONTEXT "{\"error\":{\"message\":\"This model's maximum context length is 128000 " \
	"tokens. However, your messages resulted in 130412 tokens.\",\"type\":" \
	"\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}"
#define ANTHROPIC_CONTEXT "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\"," \
	"\"message\":\"prompt is too long: 208310 tokens > 200000 maximum\"}}"
#define OPENAI_POLICY "{\"error\":{\"code\":\"content_policy_violation\",\"message\":" \
	"\"Your request was rejected as a result of our safety system.\"}}"
#define OPENAI_QUOTA "{\"error\":{\"message\":\"You exceeded your current quota.\"," \
	"\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}"
#define OPENAI_BAD "{\"error\":{\"message\":\"Invalid value for 'temperature'\"," \
	"\"type\":\"invalid_request_error\"}}"

static void test_classify(void **state)
{
	static const struct {
		int status;
		const char *body;
		size_t prefix; /* 0: the whole body */
		enum dt_blame want;
	} cases[] = {
		{ 200, "", 0, DT_BLAME_NONE },
		{ 201, "", 0, DT_BLAME_NONE },
		{ 400, OPENAI_BAD, 0, DT_BLAME_REQUEST },
		{ 400, NULL, 0, DT_BLAME_REQUEST },
		{ 400, OPENAI_CONTEXT, 0, DT_BLAME_CONTEXT },
		{ 400, ANTHROPIC_CONTEXT, 0, DT_BLAME_CONTEXT },
		/* the phrase lies past the prefix handed in */
		{ 400, ANTHROPIC_CONTEXT, 60, DT_BLAME_REQUEST },
		{ 400, "{\"detail\":\"Maximum Context Length exceeded\"}", 0, DT_BLAME_CONTEXT },
		{ 400, OPENAI_POLICY, 0, DT_BLAME_REQUEST },
		/* a refusal stays a refusal even if it speaks of the context */
		{ 400, "{\"error\":{\"code\":\"content_filter\",\"message\":\"context length\"}}", 0,
		  DT_BLAME_REQUEST },
		{ 401, "", 0, DT_BLAME_KEY },
		{ 402, "", 0, DT_BLAME_KEY },
		{ 403, "", 0, DT_BLAME_KEY },
		{ 404, "", 0, DT_BLAME_REQUEST },
		{ 408, "", 0, DT_BLAME_PROVIDER },
		{ 409, "", 0, DT_BLAME_PROVIDER },
		{ 413, "", 0, DT_BLAME_REQUEST },
		{ 422, "", 0, DT_BLAME_REQUEST },
		{ 429, "", 0, DT_BLAME_RATE_LIMIT },
		{ 429, OPENAI_QUOTA, 0, DT_BLAME_KEY },
		{ 500, "", 0, DT_BLAME_PROVIDER },
		{ 502, "", 0, DT_BLAME_PROVIDER },
		{ 503, OPENAI_CONTEXT, 0, DT_BLAME_PROVIDER },
		{ 504, "", 0, DT_BLAME_PROVIDER },
		{ 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}", 0,
		  DT_BLAME_PROVIDER },
		{ 0, "", 0, DT_BLAME_PROVIDER },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *body = cases[i].body;
		size_t len = cases[i].prefix ? cases[i].prefix : body ? strlen(body) : 0;

		if (dt_router_classify_status(cases[i].status, body, len) != cases[i].want)
			fail_msg("case %zu: status %d", i, cases[i].status);
	}
}

/* ---- provider state ----------------------------------------------------- */

static void test_rate_limited_member_is_overflowed_then_back(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	rate_limit(GROQ, LLAMA, 3000, 10 * SEC);
	/* never the same provider again while aside: the next members first */
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 11 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { GROQ, LLAMA, APP });
	assert_aside_until(GROQ, LLAMA, 13 * SEC);
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 13 * SEC, out, 1, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP });
	dt_router_free(r);
}

/* ---- rate-limit budgets --------------------------------------------------- */

/* Requests per minute of OpenAI, Groq, DeepSeek and Mistral's keys (0: no
 * limit), as plans see them. */
struct budget_bed {
	struct dt_rb *rb;
	uint32_t app;
	uint64_t tokens;
};

static uint64_t bed_usable_at(void *ctx, uint32_t provider_id, uint32_t key_slot, uint64_t now)
{
	const struct budget_bed *b = ctx;
	struct dt_rb_demand d = { provider_id, key_slot, b->app, b->tokens };

	return dt_rb_fit_at(b->rb, &d, now);
}

static struct dt_rb *budgets(uint32_t openai, uint32_t groq, uint32_t deepseek, uint32_t mistral)
{
	static bool used[DT_MAX_PROVIDERS];
	static struct dt_rb_provider_cfg providers[DT_MAX_PROVIDERS];
	struct dt_rb *rb = dt_rb_new();

	assert_non_null(rb);
	used[OPENAI] = used[GROQ] = used[DEEPSEEK] = used[MISTRAL] = true;
	providers[OPENAI].limit[DT_RB_REQUESTS] = openai;
	providers[GROQ].limit[DT_RB_REQUESTS] = groq;
	providers[DEEPSEEK].limit[DT_RB_REQUESTS] = deepseek;
	providers[MISTRAL].limit[DT_RB_REQUESTS] = mistral;
	assert_int_equal(dt_rb_configure(rb, used, providers, NULL, 0), 0);
	return rb;
}

static void spend(struct dt_rb *rb, uint32_t provider_id, uint32_t slot, uint64_t now)
{
	struct dt_rb_demand d = { provider_id, slot, 0, 10 };
	struct dt_rb_ticket t;

	dt_rb_take(rb, &d, now, &t);
}

/* A member whose budget cannot take the request goes behind the others
 * before its 429, the original too, and comes back when the window lets
 * it; when none has budget left, all still go, soonest first. */
static void test_predictive_overflow(void **state)
{
	struct dt_router *r = router_with_mini();
	struct budget_bed bed = { budgets(2, 1, 1, 1), 0, 10 };
	const struct dt_plan_budget b = { bed_usable_at, &bed };
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	n = dt_router_plan_budgeted(r, OPENAI, MINI, NULL, 0, 1 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR });
	spend(bed.rb, OPENAI, APP, 1 * SEC);
	spend(bed.rb, OPENAI, APP, 2 * SEC);
	n = dt_router_plan_budgeted(r, OPENAI, MINI, NULL, 0, 3 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { OPENAI, MINI, APP });
	/* detour's key on OpenAI is a budget of its own */
	n = dt_router_plan_budgeted(r, GROQ, LLAMA, NULL, 0, 3 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP }, { OPENAI, MINI, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR });
	/* every member's budget spent: all still go, the one free soonest
	 * first (a request leaves the window 61 s after its second began) */
	spend(bed.rb, GROQ, DETOUR, 2 * SEC);
	spend(bed.rb, DEEPSEEK, DETOUR, 5 * SEC);
	spend(bed.rb, MISTRAL, DETOUR, 4 * SEC);
	n = dt_router_plan_budgeted(r, OPENAI, MINI, NULL, 0, 6 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { DEEPSEEK, DSEEK, DETOUR });
	n = dt_router_plan_budgeted(r, GROQ, LLAMA, NULL, 0, 6 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP }, { OPENAI, MINI, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { DEEPSEEK, DSEEK, DETOUR });
	/* at 63 s OpenAI's and Groq's first have left: they are routable */
	n = dt_router_plan_budgeted(r, OPENAI, MINI, NULL, 0, 63 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { DEEPSEEK, DSEEK, DETOUR });
	/* DeepSeek's spent budget was detour's key's: the client's is whole */
	n = dt_router_plan_budgeted(r, DEEPSEEK, DSEEK, NULL, 0, 63 * SEC, &b, out, 8, NULL);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, APP }, { OPENAI, MINI, DETOUR }, { GROQ, LLAMA, DETOUR },
		    { MISTRAL, SMALL, DETOUR });
	/* a plan without budgets is the health engine's alone */
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 3 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR });
	dt_rb_free(bed.rb);
	dt_router_free(r);
}

/* A balanced class balances among the members with budget only. */
static void test_predictive_overflow_balanced(void **state)
{
	struct dt_model_class c = mini_class;
	struct budget_bed bed = { budgets(1, 0, 0, 0), 0, 10 };
	const struct dt_plan_budget b = { bed_usable_at, &bed };
	struct dt_router *r = dt_router_new(NULL, health);
	struct dt_attempt out[8];

	(void)state;
	c.strategy = DT_STRATEGY_WEIGHTED;
	assert_non_null(r);
	assert_int_equal(dt_router_set_classes(r, &c, 1), 0);
	spend(bed.rb, OPENAI, DETOUR, 1 * SEC);
	for (uint64_t seed = 0; seed < 16; seed++) {
		size_t n = dt_router_plan_budgeted(r, GROQ, LLAMA, NULL, seed, 2 * SEC, &b, out, 8, NULL);

		assert_int_equal(n, 4);
		assert_int_not_equal(out[0].provider_id, OPENAI);
		assert_int_equal(out[3].provider_id, OPENAI);
	}
	dt_rb_free(bed.rb);
	dt_router_free(r);
}

static void test_key_blame_disables_only_that_slot(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	/* detour's Groq key rejected: Groq goes last where it would use it... */
	report(r, GROQ, DETOUR, DT_BLAME_KEY, 0);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 1 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { DEEPSEEK, DSEEK, DETOUR },
		    { MISTRAL, SMALL, DETOUR }, { GROQ, LLAMA, DETOUR });
	/* ...not where the application's own key goes */
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 1 * SEC, out, 1, NULL);
	ASSERT_PLAN(out, n, { GROQ, LLAMA, APP });

	/* an application's key rejected: not remembered, detour's key unaffected */
	report(r, OPENAI, APP, DT_BLAME_KEY, 1 * SEC);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 2 * SEC, out, 1, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP });
	n = dt_router_plan(r, DEEPSEEK, DSEEK, NULL, 0, 2 * SEC, out, 2, NULL);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, APP }, { OPENAI, MINI, DETOUR });

	/* back after key_disable_ms (300 s) */
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 300 * SEC - 1, out, 8, NULL);
	assert_int_equal(out[n - 1].provider_id, GROQ);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 300 * SEC, out, 2, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR });

	/* or as soon as the key is seen to work */
	report(r, GROQ, DETOUR, DT_BLAME_KEY, 400 * SEC);
	report(r, GROQ, DETOUR, DT_BLAME_NONE, 401 * SEC);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 401 * SEC, out, 2, NULL);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR });
	dt_router_free(r);
}

static void test_options_replace_defaults(void **state)
{
	struct dt_router_opts o = { .key_disable_ms = 2000 };
	struct dt_router *r = dt_router_new(&o, health);
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	assert_int_equal(dt_router_set_classes(r, &mini_class, 1), 0);
	report(r, DEEPSEEK, DETOUR, DT_BLAME_KEY, 0);
	n = dt_router_plan(r, MISTRAL, SMALL, NULL, 0, 2 * SEC - 1, out, 8, NULL);
	assert_int_equal(out[n - 1].provider_id, DEEPSEEK);
	n = dt_router_plan(r, MISTRAL, SMALL, NULL, 0, 2 * SEC, out, 8, NULL);
	ASSERT_PLAN(out, n, { MISTRAL, SMALL, APP }, { OPENAI, MINI, DETOUR },
		    { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, DETOUR });
	dt_router_free(r);
}

/* ---- retry budget ------------------------------------------------------- */

static unsigned take_all(struct dt_router *r, uint64_t now)
{
	unsigned n = 0;

	while (n < 100000 && dt_router_retry_take(r, now))
		n++;
	return n;
}

static void requests(struct dt_router *r, unsigned n, uint64_t now)
{
	for (unsigned i = 0; i < n; i++)
		dt_router_request(r, now);
}

static void test_budget_is_a_share_of_requests(void **state)
{
	struct dt_router *r = dt_router_new(NULL, health);

	(void)state;
	requests(r, 100, 0);
	for (int i = 0; i < 20; i++)
		assert_true(dt_router_retry_take(r, 0));
	assert_false(dt_router_retry_take(r, 0));
	/* more requests, more retries */
	requests(r, 5, 0);
	assert_true(dt_router_retry_take(r, 0));
	assert_false(dt_router_retry_take(r, 0));
	dt_router_free(r);
}

static void test_budget_floor(void **state)
{
	struct dt_router_opts o = { .retry_budget_percent = 50, .retry_budget_min = 1 };
	struct dt_router *quiet = dt_router_new(NULL, health), *r = dt_router_new(&o, health);

	(void)state;
	/* 0 and 30 requests: 20% is below the floor of 10 */
	assert_int_equal(take_all(quiet, 0), 10);
	requests(quiet, 30, 0);
	assert_int_equal(take_all(quiet, 0), 0);
	requests(quiet, 25, 0);
	assert_int_equal(take_all(quiet, 0), 1);

	/* 50% of 7 rounds down to 3 */
	requests(r, 7, 0);
	assert_int_equal(take_all(r, 0), 3);
	dt_router_free(quiet);
	dt_router_free(r);
}

static void test_budget_zeros_are_settings(void **state)
{
	struct dt_router_opts floor_only = { .retry_budget_percent = 0, .retry_budget_min = 3 };
	struct dt_router_opts share_only = { .retry_budget_percent = 20, .retry_budget_min = 0 };
	struct dt_router *a = dt_router_new(&floor_only, health), *b = dt_router_new(&share_only, health);

	(void)state;
	requests(a, 1000, 0);
	assert_int_equal(take_all(a, 0), 3);
	/* a quiet host with no floor: no retry at all */
	assert_int_equal(take_all(b, 0), 0);
	requests(b, 10, 0);
	assert_int_equal(take_all(b, 0), 2);
	dt_router_free(a);
	dt_router_free(b);
}

static void test_budget_window_slides(void **state)
{
	struct dt_router *r = dt_router_new(NULL, health);

	(void)state;
	requests(r, 100, 0);
	assert_int_equal(take_all(r, 0), 20);
	requests(r, 50, 5 * SEC);
	assert_int_equal(take_all(r, 5 * SEC), 10);
	assert_int_equal(take_all(r, 10 * SEC - 1), 0);
	/* the second [0, 1 s) leaves: 50 requests and 10 retries remain */
	assert_int_equal(take_all(r, 10 * SEC), 0);
	requests(r, 60, 10 * SEC);
	assert_int_equal(take_all(r, 10 * SEC), 12);
	/* [5 s, 6 s) leaves too: 60 requests, 12 retries */
	assert_int_equal(take_all(r, 15 * SEC), 0);
	/* everything has left: the floor */
	assert_int_equal(take_all(r, 20 * SEC), 10);
	assert_int_equal(take_all(r, 1000 * SEC), 10);
	/* a second leaves even when its bucket has not been reused since */
	requests(r, 100, 1003 * SEC);
	assert_int_equal(take_all(r, 1003 * SEC), 10);
	assert_int_equal(take_all(r, 1014 * SEC), 10);
	dt_router_free(r);
}

/* ---- context window ----------------------------------------------------- */

static void test_larger_context(void **state)
{
	struct dt_router *r = router_with_mini();
	struct dt_attempt p[8], passthrough = { OPENAI, "gpt-4o", APP, false };
	size_t n;

	(void)state;
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, p, 8, NULL);
	ASSERT_PLAN(p, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR },
		    { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR });
	assert_true(dt_router_larger_context(r, &p[0], &p[1]));   /* 128000 → 131072 */
	assert_false(dt_router_larger_context(r, &p[0], &p[2]));  /* → 65536 */
	assert_false(dt_router_larger_context(r, &p[0], &p[3]));  /* → unknown */
	assert_false(dt_router_larger_context(r, &p[3], &p[1]));  /* unknown → */
	assert_false(dt_router_larger_context(r, &p[1], &p[1]));  /* equal */
	assert_true(dt_router_larger_context(r, &p[2], &p[0]));
	assert_false(dt_router_larger_context(r, &passthrough, &p[1]));
	dt_router_free(r);
}

/* ---- validation ---------------------------------------------------------- */

static void test_set_classes_rejects_ambiguous_or_malformed(void **state)
{
	struct dt_class_member good[] = { { OPENAI, "o", 0, 1, 0, 0, false, 0 }, { GROQ, "g", 0, 1, 0, 0, false, 0 } };
	struct dt_class_member bad[2];
	struct dt_model_class classes[2] = {
		{ .name = "a", .members = good, .n_members = 2 },
		{ .name = "b", .members = bad, .n_members = 2 },
	};
	static const struct {
		const char *what;
		struct dt_class_member second[2];
		bool name_unterminated;
	} cases[] = {
		{ "provider id out of range", { { DEEPSEEK, "d", 0, 1, 0, 0, false, 0 }, { DT_MAX_PROVIDERS, "x", 0, 1, 0, 0, false, 0 } }, false },
		{ "empty model", { { DEEPSEEK, "d", 0, 1, 0, 0, false, 0 }, { MISTRAL, "", 0, 1, 0, 0, false, 0 } }, false },
		{ "provider twice in a class", { { DEEPSEEK, "d", 0, 1, 0, 0, false, 0 }, { DEEPSEEK, "e", 0, 1, 0, 0, false, 0 } }, false },
		{ "(provider, model) in two classes", { { DEEPSEEK, "d", 0, 1, 0, 0, false, 0 }, { GROQ, "g", 0, 1, 0, 0, false, 0 } }, false },
		{ "unterminated name", { { DEEPSEEK, "d", 0, 1, 0, 0, false, 0 }, { MISTRAL, "m", 0, 1, 0, 0, false, 0 } }, true },
	};
	struct dt_router *r = router_with_mini();
	struct dt_attempt out[8];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		memcpy(bad, cases[i].second, sizeof(bad));
		if (cases[i].name_unterminated)
			memset(classes[1].name, 'n', DT_NAME_LEN);
		if (dt_router_set_classes(r, classes, 2) != -EINVAL)
			fail_msg("accepted: %s", cases[i].what);
		strcpy(classes[1].name, "b");
		/* the previous classes stay */
		assert_int_equal(dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, out, 8, NULL), 4);
	}
	/* an unterminated model */
	memcpy(bad, cases[0].second, sizeof(bad));
	bad[1].provider_id = MISTRAL;
	memset(bad[1].model, 'm', DT_MODEL_LEN);
	assert_int_equal(dt_router_set_classes(r, classes, 2), -EINVAL);

	/* the same model name on other providers, a provider in two classes: fine */
	strcpy(bad[1].model, "o");
	assert_int_equal(dt_router_set_classes(r, classes, 2), 0);
	assert_int_equal(dt_router_plan(r, MISTRAL, "o", NULL, 0, 0, out, 8, NULL), 2);
	assert_int_equal(dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, out, 8, NULL), 1);
	/* no classes at all */
	assert_int_equal(dt_router_set_classes(r, NULL, 0), 0);
	assert_int_equal(dt_router_plan(r, OPENAI, "o", NULL, 0, 0, out, 8, NULL), 1);
	dt_router_free(r);
}

/* Which attempts the class wants checked: by default the members standing
 * in for the original (also when the original is set aside and another
 * member goes first), or all, or none; a passthrough never. */
static void test_quality_check_by_class_mode(void **state)
{
	struct dt_model_class cls = mini_class;
	struct dt_attempt a[8];
	struct dt_router *r;
	size_t n;

	(void)state;
	r = router_with_mini();
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, a, 8, NULL);
	assert_int_equal(n, 4);
	assert_false(a[0].check_quality);
	for (size_t i = 1; i < n; i++)
		assert_true(a[i].check_quality);
	fail_provider(OPENAI, 3, 0);
	n = dt_router_plan(r, OPENAI, MINI, NULL, 0, 1, a, 8, NULL);
	assert_int_equal(a[0].provider_id, GROQ);
	assert_true(a[0].check_quality);
	assert_int_equal(a[n - 1].provider_id, OPENAI);
	assert_false(a[n - 1].check_quality);

	cls.quality = DT_QUALITY_ALWAYS;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 2, a, 8, NULL);
	for (size_t i = 0; i < n; i++)
		assert_true(a[i].check_quality);
	cls.quality = DT_QUALITY_OFF;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 0, 2, a, 8, NULL);
	for (size_t i = 0; i < n; i++)
		assert_false(a[i].check_quality);
	assert_int_equal(dt_router_plan(r, GROQ, "unclassed", NULL, 0, 2, a, 8, NULL), 1);
	assert_false(a[0].check_quality);
	dt_router_free(r);
}

/* A balanced class: members priced (µ$ per million tokens, in + out). */
static struct dt_router *router_balanced(enum dt_class_strategy strategy)
{
	struct dt_class_member members[] = {
		{ OPENAI, MINI, 0, 1, 150000, 600000, false, 0 },  /* 0.75 $ */
		{ GROQ, LLAMA, 0, 1, 590000, 790000, false, 0 },   /* 1.38 $ */
		{ DEEPSEEK, DSEEK, 0, 1, 270000, 0, false, 0 },    /* 0.27 $ */
		{ MISTRAL, SMALL, 0, 1, 100000, 300000, false, 0 }, /* 0.40 $ */
	};
	struct dt_model_class cls = {
		.name = "bal", .members = members, .n_members = ARRAY_LEN(members),
		.strategy = strategy,
	};
	struct dt_router *r = dt_router_new(NULL, health);

	assert_non_null(r);
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	return r;
}

/* Cheapest: the strategy, not the address, picks the first member: the
 * original keeps its own key wherever it lands; an unusable member stays
 * behind however cheap. */
static void test_plan_cheapest(void **state)
{
	struct dt_router *r = router_balanced(DT_STRATEGY_CHEAPEST);
	struct dt_attempt plan[8];
	size_t n;

	(void)state;
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 1, 0, plan, 8, NULL);
	ASSERT_PLAN(plan, n, { DEEPSEEK, DSEEK, DETOUR }, { MISTRAL, SMALL, DETOUR },
		    { OPENAI, MINI, DETOUR }, { GROQ, LLAMA, APP });
	fail_provider(DEEPSEEK, 3, 0);
	n = dt_router_plan(r, GROQ, LLAMA, NULL, 1, 1 * MS, plan, 8, NULL);
	ASSERT_PLAN(plan, n, { MISTRAL, SMALL, DETOUR }, { OPENAI, MINI, DETOUR },
		    { GROQ, LLAMA, APP }, { DEEPSEEK, DSEEK, DETOUR });
	dt_router_free(r);
}

/* Least latency: the attempts' times to first token steer the first
 * pick; a fast member leads most plans, a slow one few; the state survives
 * a set_classes (a reload) by (provider, model). */
static void test_plan_least_latency(void **state)
{
	struct dt_router *r = router_balanced(DT_STRATEGY_LEAST_LATENCY);
	const struct dt_attempt fast = { MISTRAL, SMALL, DT_KEY_SLOT_DETOUR, false };
	unsigned first_fast = 0, first_unmeasured = 0;
	struct dt_attempt plan[8];
	const uint32_t slow[] = { OPENAI, GROQ, DEEPSEEK };
	const char *const slow_model[] = { MINI, LLAMA, DSEEK };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(slow); i++) {
		const struct dt_attempt a = { slow[i], slow_model[i], DT_KEY_SLOT_DETOUR, false };

		dt_router_attempt_start(r, &a);
		dt_router_attempt_end(r, &a, 900 * MS, 1 * SEC);
	}
	dt_router_attempt_start(r, &fast);
	dt_router_attempt_end(r, &fast, 100 * MS, 1 * SEC);
	for (uint64_t seed = 0; seed < 1000; seed++) {
		size_t n = dt_router_plan(r, OPENAI, MINI, NULL, seed, 2 * SEC, plan, 8, NULL);

		assert_int_equal(n, 4);
		first_fast += plan[0].provider_id == MISTRAL;
	}
	/* in 1/2 of the draws of two among four: ~500 */
	assert_in_range(first_fast, 420, 580);
	/* a reload with one more member: what was measured stays (MISTRAL
	 * still wins against the slow), the new one, never measured, goes
	 * first whenever drawn */
	{
		struct dt_class_member members[] = {
			{ OPENAI, MINI, 0, 1, 0, 0, false, 0 }, { GROQ, LLAMA, 0, 1, 0, 0, false, 0 },
			{ DEEPSEEK, DSEEK, 0, 1, 0, 0, false, 0 }, { MISTRAL, SMALL, 0, 1, 0, 0, false, 0 },
			{ 5, "new-model", 0, 1, 0, 0, false, 0 },
		};
		struct dt_model_class cls = { .name = "bal", .members = members,
					      .n_members = ARRAY_LEN(members),
					      .strategy = DT_STRATEGY_LEAST_LATENCY };

		assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
		first_fast = 0;
		for (uint64_t seed = 0; seed < 1000; seed++) {
			dt_router_plan(r, OPENAI, MINI, NULL, seed, 2 * SEC, plan, 8, NULL);
			first_unmeasured += plan[0].provider_id == 5;
			first_fast += plan[0].provider_id == MISTRAL;
		}
		/* each drawn in 2/5 of the pairs; MISTRAL loses only to the new one */
		assert_in_range(first_unmeasured, 330, 470);
		assert_in_range(first_fast, 230, 370);
	}
	dt_router_free(r);
}

/* ---- capability tiers -------------------------------------------------------- */

#define TOOLS  DT_CAP_TOOLS
#define IMAGES DT_CAP_IMAGES
#define JSON   DT_CAP_JSON

/* OpenAI serves everything, Groq tools, DeepSeek JSON output, Mistral
 * text only, each with its window. */
static struct dt_router *router_tiered(enum dt_class_strategy strategy, bool sticky)
{
	struct dt_class_member members[] = {
		{ OPENAI, MINI, 128000, 1, 0, 0, true, TOOLS | IMAGES | JSON },
		{ GROQ, LLAMA, 131072, 1, 0, 0, true, TOOLS },
		{ DEEPSEEK, DSEEK, 65536, 1, 0, 0, true, JSON },
		{ MISTRAL, SMALL, 32000, 1, 0, 0, true, 0 },
	};
	struct dt_model_class cls = {
		.name = "tiered", .members = members, .n_members = ARRAY_LEN(members),
		.strategy = strategy, .sticky = sticky, .sticky_ttl_ms = 60000,
	};
	struct dt_router *r = dt_router_new(NULL, health);

	assert_non_null(r);
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	return r;
}

static void assert_unfit(const struct dt_plan_notes *notes, size_t n, ...)
{
	va_list ap;

	assert_int_equal(notes->n_unfit, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(notes->unfit[i].provider_id, va_arg(ap, unsigned));
		assert_int_equal(notes->unfit[i].missing, va_arg(ap, unsigned));
	}
	va_end(ap);
}

static void test_tiers_leave_out_unfit_members(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, false);
	struct dt_route_needs needs = { .caps = TOOLS };
	struct dt_plan_notes notes;
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	n = dt_router_plan(r, OPENAI, MINI, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR });
	assert_unfit(&notes, 2, DEEPSEEK, TOOLS, MISTRAL, TOOLS);
	assert_int_equal(notes.sticky, DT_STICKY_NONE);

	/* the original lacking it is still tried, last, with its own key */
	needs.caps = IMAGES;
	n = dt_router_plan(r, GROQ, LLAMA, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { OPENAI, MINI, DETOUR }, { GROQ, LLAMA, APP });
	assert_unfit(&notes, 3, GROQ, IMAGES, DEEPSEEK, IMAGES, MISTRAL, IMAGES);
	needs.caps = TOOLS | JSON;
	n = dt_router_plan(r, MISTRAL, SMALL, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { OPENAI, MINI, DETOUR }, { MISTRAL, SMALL, APP });
	assert_unfit(&notes, 3, GROQ, JSON, DEEPSEEK, TOOLS, MISTRAL, TOOLS | JSON);

	/* the window: the prompt and its answer must fit */
	needs = (struct dt_route_needs){ .tokens = 65537 };
	n = dt_router_plan(r, DEEPSEEK, DSEEK, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { OPENAI, MINI, DETOUR }, { GROQ, LLAMA, DETOUR }, { DEEPSEEK, DSEEK, APP });
	assert_unfit(&notes, 2, DEEPSEEK, DT_CAP_CONTEXT, MISTRAL, DT_CAP_CONTEXT);
	needs.tokens = 65536;
	n = dt_router_plan(r, DEEPSEEK, DSEEK, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { DEEPSEEK, DSEEK, APP }, { OPENAI, MINI, DETOUR }, { GROQ, LLAMA, DETOUR });

	/* nothing needed, or nothing known: every member */
	needs = (struct dt_route_needs){ 0 };
	assert_int_equal(dt_router_plan(r, OPENAI, MINI, &needs, 0, 0, out, 8, &notes), 4);
	assert_int_equal(notes.n_unfit, 0);
	assert_int_equal(dt_router_plan(r, OPENAI, MINI, NULL, 0, 0, out, 8, &notes), 4);
	dt_router_free(r);
}

/* Never worse than without detour: when no member can serve it, the
 * request goes to its original as it is, ejected or not. */
static void test_tiers_none_fit_original_alone(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, false);
	const struct dt_route_needs needs = { .caps = TOOLS | IMAGES, .tokens = 200000 };
	struct dt_plan_notes notes;
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	n = dt_router_plan(r, MISTRAL, SMALL, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { MISTRAL, SMALL, APP });
	assert_int_equal(notes.n_unfit, 4);
	assert_int_equal(notes.unfit[0].missing, DT_CAP_CONTEXT);
	assert_int_equal(notes.unfit[3].missing, TOOLS | IMAGES | DT_CAP_CONTEXT);
	fail_provider(MISTRAL, 3, 0);
	n = dt_router_plan(r, MISTRAL, SMALL, &needs, 0, 1 * MS, out, 8, &notes);
	ASSERT_PLAN(out, n, { MISTRAL, SMALL, APP });
	dt_router_free(r);
}

/* Undeclared capabilities and unknown windows are not held against a
 * member: mini_class declares none, and Mistral's window is unknown. */
static void test_tiers_undeclared_is_not_filtered(void **state)
{
	struct dt_router *r = router_with_mini();
	const struct dt_route_needs needs = { .caps = TOOLS | IMAGES | JSON, .tokens = 100000 };
	struct dt_plan_notes notes;
	struct dt_attempt out[8];
	size_t n;

	(void)state;
	assert_true(dt_router_reads_needs(r, OPENAI, MINI));
	n = dt_router_plan(r, OPENAI, MINI, &needs, 0, 0, out, 8, &notes);
	ASSERT_PLAN(out, n, { OPENAI, MINI, APP }, { GROQ, LLAMA, DETOUR }, { MISTRAL, SMALL, DETOUR });
	assert_unfit(&notes, 1, DEEPSEEK, DT_CAP_CONTEXT);
	dt_router_free(r);
}

/* A balanced class draws among the members that fit only, evenly here
 * (none measured: the first drawn of two goes first). */
static void test_tiers_with_least_latency(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_LEAST_LATENCY, false);
	const struct dt_route_needs needs = { .caps = JSON };
	unsigned first[MISTRAL + 1] = { 0 };
	struct dt_attempt out[8];

	(void)state;
	for (uint64_t seed = 0; seed < 1200; seed++) {
		size_t n = dt_router_plan(r, MISTRAL, SMALL, &needs, seed, 0, out, 8, NULL);

		assert_int_equal(n, 3);
		assert_int_equal(out[2].provider_id, MISTRAL); /* unfit original, last */
		first[out[0].provider_id]++;
	}
	assert_in_range(first[OPENAI], 500, 700);
	assert_in_range(first[DEEPSEEK], 500, 700);
	assert_int_equal(first[GROQ] + first[MISTRAL], 0);
	dt_router_free(r);
}

static void test_caps_str(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(dt_router_caps_str(0, buf, sizeof(buf)), "");
	assert_string_equal(dt_router_caps_str(JSON | TOOLS, buf, sizeof(buf)), "tools+json");
	assert_string_equal(dt_router_caps_str(TOOLS | IMAGES | JSON | DT_CAP_CONTEXT, buf, sizeof(buf)),
			    "tools+images+json+context");
	assert_string_equal(dt_router_caps_str(TOOLS | IMAGES, buf, 8), "tools+i");
	assert_string_equal(dt_router_caps_str(TOOLS, buf, 1), "");
}

/* ---- stickiness ---------------------------------------------------------------- */

/* The member a sticky conversation's plan puts first, and its note. */
static uint32_t sticky_first(struct dt_router *r, const struct dt_route_needs *needs, uint64_t seed,
			     uint64_t now, enum dt_sticky_note *note)
{
	struct dt_plan_notes notes;
	struct dt_attempt out[8];

	assert_true(dt_router_plan(r, OPENAI, MINI, needs, seed, now, out, 8, &notes) > 0);
	*note = notes.sticky;
	return out[0].provider_id;
}

/* Answered by provider_id (it answers for its own model). */
static void answered(struct dt_router *r, uint32_t provider_id, const struct dt_route_needs *needs,
		     uint64_t now)
{
	static const char *const models[] = { [OPENAI] = MINI, [GROQ] = LLAMA, [DEEPSEEK] = DSEEK,
					      [MISTRAL] = SMALL };
	const struct dt_attempt a = { provider_id, models[provider_id], DETOUR, false };

	dt_router_stick(r, &a, needs, now);
}

static void test_sticky_conversation_stays(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_LEAST_LATENCY, true);
	const struct dt_route_needs conv = { .conversation = 0x1234 }, other = { .conversation = 0x5678 };
	unsigned first[MISTRAL + 1] = { 0 };
	enum dt_sticky_note note;
	uint32_t p;

	(void)state;
	assert_true(dt_router_reads_needs(r, OPENAI, MINI));
	p = sticky_first(r, &conv, 0, 0, &note);
	assert_int_equal(note, DT_STICKY_NEW);
	answered(r, p, &conv, 1 * SEC);
	/* its next turns, whatever the strategy's draw */
	for (uint64_t seed = 1; seed < 200; seed++) {
		assert_int_equal(sticky_first(r, &conv, seed, 2 * SEC, &note), p);
		assert_int_equal(note, DT_STICKY_HIT);
	}
	/* another conversation is placed by the strategy: all four lead some */
	for (uint64_t seed = 1; seed < 400; seed++) {
		first[sticky_first(r, &other, seed, 2 * SEC, &note)]++;
		assert_int_equal(note, DT_STICKY_NEW);
	}
	for (uint32_t id = OPENAI; id <= MISTRAL; id++)
		assert_in_range(first[id], 60, 140);
	/* a request with no conversation, or no needs known: nothing */
	sticky_first(r, &(struct dt_route_needs){ 0 }, 1, 2 * SEC, &note);
	assert_int_equal(note, DT_STICKY_NONE);
	sticky_first(r, NULL, 1, 2 * SEC, &note);
	assert_int_equal(note, DT_STICKY_NONE);
	dt_router_free(r);
}

/* The conversation's member ejected, or unfit for this turn: the
 * strategy places it; whoever answers is its member from then on. */
static void test_sticky_fallback_and_move(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, true);
	struct dt_route_needs conv = { .conversation = 0x1234 };
	enum dt_sticky_note note;

	(void)state;
	answered(r, GROQ, &conv, 0);
	assert_int_equal(sticky_first(r, &conv, 0, 1 * MS, &note), GROQ);
	assert_int_equal(note, DT_STICKY_HIT);
	fail_provider(GROQ, 3, 2 * MS);
	assert_int_equal(sticky_first(r, &conv, 0, 3 * MS, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_MOVED);
	answered(r, OPENAI, &conv, 4 * MS);
	/* GROQ back: the conversation stays where its cache now is */
	dt_health_tick(health, 20 * SEC);
	assert_int_equal(sticky_first(r, &conv, 0, 20 * SEC, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_HIT);
	/* a turn with an image: OpenAI serves it; Groq could not */
	answered(r, GROQ, &conv, 21 * SEC);
	conv.caps = IMAGES;
	assert_int_equal(sticky_first(r, &conv, 0, 21 * SEC, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_MOVED);
	dt_router_free(r);
}

/* Its member out of rate-limit budget: placed by the strategy, before
 * the 429 would come. */
static void test_sticky_leaves_a_member_without_budget(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, true);
	const struct dt_route_needs conv = { .conversation = 0x1234 };
	struct budget_bed bed = { budgets(0, 1, 0, 0), 0, 10 };
	const struct dt_plan_budget b = { bed_usable_at, &bed };
	struct dt_plan_notes notes;
	struct dt_attempt out[8];

	(void)state;
	answered(r, GROQ, &conv, 0);
	dt_router_plan_budgeted(r, OPENAI, MINI, &conv, 0, 1 * SEC, &b, out, 8, &notes);
	assert_int_equal(out[0].provider_id, GROQ);
	assert_int_equal(notes.sticky, DT_STICKY_HIT);
	spend(bed.rb, GROQ, DETOUR, 1 * SEC);
	dt_router_plan_budgeted(r, OPENAI, MINI, &conv, 0, 2 * SEC, &b, out, 8, &notes);
	assert_int_equal(out[0].provider_id, OPENAI);
	assert_int_equal(notes.sticky, DT_STICKY_MOVED);
	dt_rb_free(bed.rb);
	dt_router_free(r);
}

/* Degraded (its calls slow) is usable, but not healthy: the conversation
 * goes to a healthy member while it is. */
static void test_sticky_leaves_a_degraded_member(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, true);
	const struct dt_route_needs conv = { .conversation = 0x1234 };
	const struct dt_outcome slow = { .kind = DT_OUTCOME_OK, .status = 200, .started = 0,
					 .ttft_ns = 12 * SEC, .total_ns = 12 * SEC };
	enum dt_sticky_note note;

	(void)state;
	answered(r, GROQ, &conv, 0);
	/* over the health engine's slow ceiling (10 s), its min_calls times */
	for (int i = 0; i < 10; i++)
		dt_health_outcome(health, GROQ, LLAMA, &slow, 1 * MS);
	assert_true(dt_health_usable(health, GROQ, LLAMA, 2 * MS));
	assert_int_equal(sticky_first(r, &conv, 0, 2 * MS, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_MOVED);
	dt_router_free(r);
}

static void test_sticky_expires(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, true);
	const struct dt_route_needs conv = { .conversation = 0x1234 };
	enum dt_sticky_note note;

	(void)state;
	answered(r, DEEPSEEK, &conv, 0);
	/* sticky_ttl_ms 60000, from the last answer */
	assert_int_equal(sticky_first(r, &conv, 0, 60 * SEC - 1, &note), DEEPSEEK);
	answered(r, DEEPSEEK, &conv, 30 * SEC);
	assert_int_equal(sticky_first(r, &conv, 0, 90 * SEC - 1, &note), DEEPSEEK);
	assert_int_equal(note, DT_STICKY_HIT);
	assert_int_equal(sticky_first(r, &conv, 0, 90 * SEC, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_NEW);
	dt_router_free(r);
}

/* Kept over a reload while its member is still in the class; a class
 * that is not sticky (any more) remembers nothing. */
static void test_sticky_survives_set_classes(void **state)
{
	struct dt_router *r = router_tiered(DT_STRATEGY_PRIORITY, true);
	const struct dt_route_needs conv = { .conversation = 0x1234 };
	struct dt_class_member members[] = {
		{ OPENAI, MINI, 0, 1, 0, 0, false, 0 }, { MISTRAL, SMALL, 0, 1, 0, 0, false, 0 },
		{ DEEPSEEK, DSEEK, 0, 1, 0, 0, false, 0 },
	};
	struct dt_model_class cls = { .name = "tiered", .members = members, .n_members = 3,
				      .sticky = true };
	enum dt_sticky_note note;

	(void)state;
	answered(r, MISTRAL, &conv, 0);
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	assert_int_equal(sticky_first(r, &conv, 0, 1 * SEC, &note), MISTRAL);
	assert_int_equal(note, DT_STICKY_HIT);
	/* its member gone: the strategy's */
	members[1] = members[0];
	cls.members = &members[1];
	cls.n_members = 2;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	assert_int_equal(sticky_first(r, &conv, 0, 1 * SEC, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_MOVED);
	/* no longer sticky */
	cls.sticky = false;
	assert_int_equal(dt_router_set_classes(r, &cls, 1), 0);
	answered(r, DEEPSEEK, &conv, 2 * SEC);
	assert_int_equal(sticky_first(r, &conv, 0, 3 * SEC, &note), OPENAI);
	assert_int_equal(note, DT_STICKY_NONE);
	dt_router_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passthrough_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_class_plan_starts_with_the_original, setup, teardown),
		cmocka_unit_test_setup_teardown(test_classes_are_copied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quality_check_by_class_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_members_go_last_soonest_usable_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_survives_set_classes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weighted_order_follows_the_weights, setup, teardown),
		cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limited_member_is_overflowed_then_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_blame_disables_only_that_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_predictive_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_predictive_overflow_balanced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options_replace_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_is_a_share_of_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_floor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_zeros_are_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_window_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_larger_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_cheapest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_least_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_classes_rejects_ambiguous_or_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiers_leave_out_unfit_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiers_none_fit_original_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiers_undeclared_is_not_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiers_with_least_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps_str, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_conversation_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_fallback_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_leaves_a_degraded_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_leaves_a_member_without_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_survives_set_classes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
