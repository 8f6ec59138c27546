// SPDX-License-Identifier: MIT
/* Rate-limit budgets: the minute's window, headers against our own counts,
 * a token estimate corrected by the usage, applications' shares, headroom
 * rows, a reload. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ratebudget.h"
#include "router.h"

#define S 1000000000ull
#define MS 1000000ull
#define P 3       /* the provider id the tests use */
#define N_APPS 2  /* "chat" (0) and "batch" (1); id 2 is "-" */

struct bed {
	struct dt_rb *rb;
	bool used[DT_MAX_PROVIDERS];
	struct dt_rb_provider_cfg providers[DT_MAX_PROVIDERS];
	uint8_t share[N_APPS][DT_MAX_PROVIDERS];
	bool own_key[N_APPS][DT_MAX_PROVIDERS];
	uint32_t own_rpm[N_APPS][DT_MAX_PROVIDERS];  /* rpm.PROVIDER of an application's key */
};

static void configure(struct bed *b)
{
	const struct dt_rb_app_cfg apps[N_APPS] = {
		{ .name = "chat", .share_percent = b->share[0], .own_key = b->own_key[0],
		  .key_limit = { b->own_rpm[0], NULL } },
		{ .name = "batch", .share_percent = b->share[1], .own_key = b->own_key[1],
		  .key_limit = { b->own_rpm[1], NULL } },
	};

	assert_int_equal(dt_rb_configure(b->rb, b->used, b->providers, apps, N_APPS), 0);
}

/* Provider P with limits rpm, tpm (0: none). */
static void bed_init(struct bed *b, uint32_t rpm, uint32_t tpm)
{
	memset(b, 0, sizeof(*b));
	b->rb = dt_rb_new();
	assert_non_null(b->rb);
	b->used[P] = true;
	b->providers[P].limit[DT_RB_REQUESTS] = rpm;
	b->providers[P].limit[DT_RB_TOKENS] = tpm;
	configure(b);
}

static struct dt_rb_demand demand(uint32_t app, uint64_t tokens)
{
	return (struct dt_rb_demand){ P, DT_KEY_SLOT_DETOUR, app, tokens };
}

static void take(struct bed *b, uint32_t app, uint64_t tokens, uint64_t now)
{
	struct dt_rb_demand d = demand(app, tokens);
	struct dt_rb_ticket t;

	dt_rb_take(b->rb, &d, now, &t);
	assert_int_not_equal(t.gen, 0);
}

static uint64_t fit_at(struct bed *b, uint32_t app, uint64_t tokens, uint64_t now)
{
	struct dt_rb_demand d = demand(app, tokens);

	return dt_rb_fit_at(b->rb, &d, now);
}

static void test_estimate(void **state)
{
	(void)state;
	assert_int_equal(dt_rb_estimate(400, 100), 200);
	assert_int_equal(dt_rb_estimate(401, 0), 101);
	assert_int_equal(dt_rb_estimate(0, -1), 1024);
}

/* rpm = 3: the fourth request of a minute fits once the first has left the
 * window, 61 s after the start of its second (the provider counts from the
 * request; our view is the safe side of it). */
static void test_window(void **state)
{
	struct bed b;

	(void)state;
	bed_init(&b, 3, 0);
	assert_int_equal(fit_at(&b, 2, 10, 500 * MS), 0);
	take(&b, 2, 10, 500 * MS);
	take(&b, 2, 10, 20 * S);
	take(&b, 2, 10, 20 * S + 1);
	assert_int_equal(fit_at(&b, 2, 10, 30 * S), 61 * S);
	assert_int_equal(fit_at(&b, 2, 10, 60 * S + 999 * MS), 61 * S);
	assert_int_equal(fit_at(&b, 2, 10, 61 * S), 0);
	take(&b, 2, 10, 61 * S);
	/* the two of second 20 leave at 81 s */
	assert_int_equal(fit_at(&b, 2, 10, 62 * S), 81 * S);
	assert_int_equal(fit_at(&b, 2, 10, 81 * S), 0);
	/* a provider that is not configured has no budget */
	struct dt_rb_demand other = { P + 1, DT_KEY_SLOT_DETOUR, 0, 10 };
	assert_int_equal(dt_rb_fit_at(b.rb, &other, 62 * S), 0);
	dt_rb_free(b.rb);
}

static struct dt_ratelimit heard(int64_t limit, int64_t remaining, int64_t reset_ms)
{
	struct dt_ratelimit rl;

	dt_ratelimit_init(&rl);
	rl.limits[DT_RL_REQUESTS] = (struct dt_rl_limit){
		.remaining = remaining, .reset_ms = reset_ms, .limit = limit };
	return rl;
}

/* No limit configured: the headers' remaining, less what went since, holds
 * until their reset; then nothing is known. Our own counts still bind
 * against a limit the headers announced. */
static void test_headers_and_own_counts(void **state)
{
	struct dt_rb_demand d = demand(2, 10);
	struct dt_rb_ticket t;
	struct dt_ratelimit rl;
	struct bed b;

	(void)state;
	bed_init(&b, 0, 0);
	dt_rb_take(b.rb, &d, 1 * S, &t);
	rl = heard(-1, 2, 10000);
	dt_rb_headers(b.rb, &t, &rl, 2 * S);
	assert_int_equal(fit_at(&b, 2, 10, 2 * S), 0);
	take(&b, 2, 10, 2 * S);
	take(&b, 2, 10, 3 * S);
	/* the headers' 2 are spent: relieved at their reset */
	assert_int_equal(fit_at(&b, 2, 10, 4 * S), 12 * S);
	assert_int_equal(fit_at(&b, 2, 10, 12 * S), 0);

	/* an answer announcing a limit of 4: our 4 requests of the minute
	 * bind, although its remaining has passed its reset */
	dt_rb_take(b.rb, &d, 13 * S, &t);
	rl = heard(4, 3, 1);
	dt_rb_headers(b.rb, &t, &rl, 14 * S);
	assert_int_equal(fit_at(&b, 2, 10, 15 * S), 62 * S);
	/* a configured limit lower than the announced one wins */
	dt_rb_free(b.rb);
	bed_init(&b, 2, 0);
	dt_rb_take(b.rb, &d, 1 * S, &t);
	rl = heard(100, 99, 60000);
	dt_rb_headers(b.rb, &t, &rl, 1 * S);
	take(&b, 2, 10, 1 * S);
	assert_int_equal(fit_at(&b, 2, 10, 2 * S), 62 * S);
	dt_rb_free(b.rb);
}

/* tpm = 1000: an estimate of 800 leaves no room for 300 until the answer
 * says it used 100; a request larger than the allowance fits an empty
 * window. */
static void test_estimate_then_correction(void **state)
{
	struct dt_rb_demand d = demand(2, 800);
	struct dt_rb_ticket t, spent;
	struct bed b;

	(void)state;
	bed_init(&b, 0, 1000);
	dt_rb_take(b.rb, &d, 1 * S, &t);
	assert_int_equal(fit_at(&b, 2, 300, 2 * S), 62 * S);
	dt_rb_settle(b.rb, &t, 100);
	assert_int_equal(t.gen, 0);
	assert_int_equal(fit_at(&b, 2, 300, 2 * S), 0);
	assert_int_equal(fit_at(&b, 2, 900, 2 * S), 0);
	assert_int_equal(fit_at(&b, 2, 901, 2 * S), 62 * S);
	/* settling twice, or keeping the estimate, changes nothing */
	spent = t;
	dt_rb_settle(b.rb, &spent, 0);
	assert_int_equal(fit_at(&b, 2, 901, 2 * S), 62 * S);
	dt_rb_take(b.rb, &d, 2 * S, &t);
	dt_rb_settle(b.rb, &t, -1);
	assert_int_equal(fit_at(&b, 2, 100, 3 * S), 0);
	assert_int_equal(fit_at(&b, 2, 101, 3 * S), 62 * S);
	/* a correction after its second left the window is dropped */
	dt_rb_take(b.rb, &d, 70 * S, &t);
	assert_int_equal(fit_at(&b, 2, 5000, 200 * S), 0);
	dt_rb_settle(b.rb, &t, 100000);
	assert_int_equal(fit_at(&b, 2, 1000, 200 * S), 0);
	dt_rb_free(b.rb);
}

/* tpm = 2300: with two estimates of 1000 in flight a third does not fit
 * until the window moves, but may as soon as they settle; once they have,
 * nothing in flight can make room any more. */
static void test_may_fit_sooner(void **state)
{
	struct dt_rb_demand d = demand(2, 1000);
	struct dt_rb_ticket t1, t2;
	struct bed b;

	(void)state;
	bed_init(&b, 0, 2300);
	assert_false(dt_rb_may_fit_sooner(b.rb, &d, 1 * S));
	dt_rb_take(b.rb, &d, 1 * S, &t1);
	dt_rb_take(b.rb, &d, 1 * S, &t2);
	assert_int_equal(fit_at(&b, 2, 1000, 2 * S), 62 * S);
	assert_true(dt_rb_may_fit_sooner(b.rb, &d, 2 * S));
	/* more than the allowance and all in flight: no */
	assert_false(dt_rb_may_fit_sooner(b.rb, &(struct dt_rb_demand){ P, DT_KEY_SLOT_DETOUR, 2, 2301 },
					  2 * S));
	dt_rb_settle(b.rb, &t1, 40);
	assert_int_equal(fit_at(&b, 2, 1000, 2 * S), 0);
	dt_rb_take(b.rb, &d, 2 * S, &t1);
	dt_rb_settle(b.rb, &t1, 1000);
	dt_rb_settle(b.rb, &t2, 1000);
	/* 2040 used, nothing in flight */
	assert_int_not_equal(fit_at(&b, 2, 1000, 3 * S), 0);
	assert_false(dt_rb_may_fit_sooner(b.rb, &d, 3 * S));
	dt_rb_free(b.rb);
}

/* rpm = 10, chat holds 30%: the batch job (no share) gets 7 and is then
 * over budget while chat still gets its 3; chat past its share competes
 * for what is left like anyone. */
static void test_shares(void **state)
{
	struct bed b;
	int i;

	(void)state;
	bed_init(&b, 10, 0);
	b.share[0][P] = 30;
	configure(&b);
	for (i = 0; i < 7; i++) {
		assert_int_equal(fit_at(&b, 1, 1, 1 * S), 0);
		take(&b, 1, 1, 1 * S);
	}
	assert_int_not_equal(fit_at(&b, 1, 1, 1 * S), 0);
	/* "-" has no share either */
	assert_int_not_equal(fit_at(&b, 2, 1, 1 * S), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(fit_at(&b, 0, 1, 2 * S), 0);
		take(&b, 0, 1, 2 * S);
	}
	assert_int_equal(fit_at(&b, 0, 1, 2 * S), 61 * S + S);
	dt_rb_free(b.rb);

	/* chat first: past its 3 it takes from the common 7, which batch
	 * then finds smaller */
	bed_init(&b, 10, 0);
	b.share[0][P] = 30;
	configure(&b);
	for (i = 0; i < 5; i++)
		take(&b, 0, 1, 1 * S);
	for (i = 0; i < 5; i++) {
		assert_int_equal(fit_at(&b, 1, 1, 1 * S), 0);
		take(&b, 1, 1, 1 * S);
	}
	assert_int_not_equal(fit_at(&b, 1, 1, 1 * S), 0);
	assert_int_not_equal(fit_at(&b, 0, 1, 1 * S), 0);
	dt_rb_free(b.rb);
}

/* An application's own key is a budget of its own; the client's credential
 * is another, detour's key a third. */
static void test_keys_apart(void **state)
{
	struct dt_rb_demand own = { P, DT_KEY_SLOT_APP, 0, 1 }, client = { P, DT_KEY_SLOT_APP, 1, 1 },
			    detour = { P, DT_KEY_SLOT_DETOUR, 0, 1 };
	struct dt_rb_ticket t;
	struct bed b;

	(void)state;
	bed_init(&b, 1, 0);
	b.own_key[0][P] = true;
	configure(&b);
	dt_rb_take(b.rb, &own, 1 * S, &t);
	assert_int_equal(t.key, DT_RB_KEY_APP);
	assert_int_not_equal(dt_rb_fit_at(b.rb, &own, 1 * S), 0);
	assert_int_equal(dt_rb_fit_at(b.rb, &client, 1 * S), 0);
	assert_int_equal(dt_rb_fit_at(b.rb, &detour, 1 * S), 0);
	dt_rb_take(b.rb, &client, 1 * S, &t);
	assert_int_equal(t.key, DT_RB_KEY_CLIENT);
	assert_int_equal(dt_rb_fit_at(b.rb, &detour, 1 * S), 0);
	/* the application's key with limits of its own (rpm.PROVIDER = 3) */
	b.own_rpm[0][P] = 3;
	configure(&b);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(dt_rb_fit_at(b.rb, &own, 2 * S), 0);
		dt_rb_take(b.rb, &own, 2 * S, &t);
	}
	assert_int_equal(dt_rb_fit_at(b.rb, &own, 2 * S), 63 * S);
	/* the provider's rpm still holds for the shared keys */
	assert_int_not_equal(dt_rb_fit_at(b.rb, &client, 2 * S), 0);
	dt_rb_free(b.rb);
}

static const struct dt_rb_row *find_row(const struct dt_rb_row *rows, size_t n, enum dt_rb_key key,
					const char *app)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].key == key && ((!app && !rows[i].app) ||
					   (app && rows[i].app && strcmp(rows[i].app, app) == 0)))
			return &rows[i];
	return NULL;
}

static void test_snapshot(void **state)
{
	struct dt_rb_row rows[8];
	const struct dt_rb_row *r;
	struct bed b;
	size_t n;

	(void)state;
	bed_init(&b, 10, 5000);
	b.share[0][P] = 30;
	configure(&b);
	take(&b, 1, 1000, 1 * S);
	take(&b, 0, 200, 1 * S);
	n = dt_rb_snapshot(b.rb, 2 * S, NULL, 0);
	/* detour's key, chat's share of it; the client key: configured limit */
	assert_int_equal(n, 4);
	assert_int_equal(dt_rb_snapshot(b.rb, 2 * S, rows, 8), n);
	r = find_row(rows, n, DT_RB_KEY_DETOUR, NULL);
	assert_non_null(r);
	assert_int_equal(r->provider_id, P);
	assert_int_equal(r->limit[DT_RB_REQUESTS], 10);
	assert_int_equal(r->used[DT_RB_REQUESTS], 2);
	assert_int_equal(r->left[DT_RB_REQUESTS], 8);
	assert_int_equal(r->used[DT_RB_TOKENS], 1200);
	assert_int_equal(r->left[DT_RB_TOKENS], 3800);
	r = find_row(rows, n, DT_RB_KEY_DETOUR, "chat");
	assert_non_null(r);
	assert_int_equal(r->used[DT_RB_REQUESTS], 1);
	assert_int_equal(r->left[DT_RB_REQUESTS], 8);
	r = find_row(rows, n, DT_RB_KEY_CLIENT, NULL);
	assert_non_null(r);
	assert_int_equal(r->used[DT_RB_REQUESTS], 0);
	/* nothing known, nothing seen: no rows */
	dt_rb_free(b.rb);
	bed_init(&b, 0, 0);
	assert_int_equal(dt_rb_snapshot(b.rb, 2 * S, rows, 8), 0);
	take(&b, 2, 5, 1 * S);
	assert_int_equal(dt_rb_snapshot(b.rb, 2 * S, rows, 8), 1);
	assert_int_equal(rows[0].left[DT_RB_REQUESTS], -1);
	assert_int_equal(rows[0].limit[DT_RB_TOKENS], -1);
	dt_rb_free(b.rb);
}

/* A reload keeps the shared keys' counts; a ticket of before settles as a
 * no-op. */
static void test_reload(void **state)
{
	struct dt_rb_demand d = demand(2, 100);
	struct dt_rb_ticket t;
	struct bed b;

	(void)state;
	bed_init(&b, 2, 0);
	dt_rb_take(b.rb, &d, 1 * S, &t);
	take(&b, 2, 1, 1 * S);
	configure(&b);
	assert_int_equal(fit_at(&b, 2, 1, 2 * S), 62 * S);
	dt_rb_settle(b.rb, &t, 5);
	assert_int_equal(t.gen, 0);
	b.used[P] = false;
	configure(&b);
	assert_null(dt_rb_provider(b.rb, P));
	assert_int_equal(fit_at(&b, 2, 1, 2 * S), 0);
	dt_rb_free(b.rb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_headers_and_own_counts),
		cmocka_unit_test(test_estimate_then_correction),
		cmocka_unit_test(test_may_fit_sooner),
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_keys_apart),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
