// SPDX-License-Identifier: MIT
/* The pacing queue: release just under the limit (the injected clock),
 * order, the bounded wait then overflow, the queue bound, cancellation,
 * and the shares through it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "pacer.h"
#include "router.h"

#define S 1000000000ull
#define MS 1000000ull
#define P 5

struct bed {
	struct dt_rb *rb;
	struct dt_pacer *pacer;
	bool used[DT_MAX_PROVIDERS];
	struct dt_rb_provider_cfg providers[DT_MAX_PROVIDERS];
	uint8_t share[DT_MAX_PROVIDERS];
	bool own_key[DT_MAX_PROVIDERS];
};

/* What became of a wait: released (taking its budget at once, as the
 * proxy does) or over, and when. */
struct waiter {
	struct dt_pacer_wait w;
	struct bed *bed;
	int outcome;        /* 0 waiting, 1 released, -1 over */
	uint64_t at;
	int order;
};

static uint64_t clock_now;
static int ended;

static void on_done(struct dt_pacer_wait *w, bool released)
{
	struct waiter *x = w->ctx;
	struct dt_rb_ticket t;

	x->outcome = released ? 1 : -1;
	x->at = clock_now;
	x->order = ++ended;
	if (released)
		dt_rb_take(x->bed->rb, &w->demand, clock_now, &t);
}

/* Provider P: rpm, pacing with a wait of wait_ms and a queue of queue;
 * application 0 ("chat") holds share percent of it. */
static void bed_init(struct bed *b, uint32_t rpm, unsigned wait_ms, unsigned queue, uint8_t share)
{
	const struct dt_rb_app_cfg apps[1] = { { .name = "chat", .share_percent = b->share, .own_key = b->own_key } };

	memset(b, 0, sizeof(*b));
	b->used[P] = true;
	b->providers[P] = (struct dt_rb_provider_cfg){
		.limit = { rpm, 0 }, .pace = true, .pace_max_wait_ms = wait_ms, .pace_max_queue = queue,
	};
	b->share[P] = share;
	b->rb = dt_rb_new();
	assert_non_null(b->rb);
	assert_int_equal(dt_rb_configure(b->rb, b->used, b->providers, apps, 1), 0);
	b->pacer = dt_pacer_new(b->rb);
	assert_non_null(b->pacer);
	clock_now = 0;
	ended = 0;
}

static void bed_free(struct bed *b)
{
	dt_pacer_free(b->pacer);
	dt_rb_free(b->rb);
}

static void spend(struct bed *b, uint32_t app, int n, uint64_t now)
{
	struct dt_rb_demand d = { P, DT_KEY_SLOT_DETOUR, app, 1 };
	struct dt_rb_ticket t;

	for (int i = 0; i < n; i++)
		dt_rb_take(b->rb, &d, now, &t);
}

static void waiter_init(struct waiter *x, struct bed *b, uint32_t app)
{
	memset(x, 0, sizeof(*x));
	x->bed = b;
	x->w.demand = (struct dt_rb_demand){ P, DT_KEY_SLOT_DETOUR, app, 1 };
	x->w.done = on_done;
	x->w.ctx = x;
}

/* Poll as the proxy's timer does: at each time the pacer asks for, up to
 * `until`. */
static void run_until(struct bed *b, uint64_t until)
{
	uint64_t next = dt_pacer_poll(b->pacer, clock_now);

	while (next != UINT64_MAX && next <= until) {
		clock_now = next;
		next = dt_pacer_poll(b->pacer, clock_now);
	}
	clock_now = until;
}

/* rpm 2, spent at 0.5 s and 1.5 s: two waiters queued at 59 s are released
 * one at 61 s, one at 62 s, in their order: each just as the window lets
 * it, never before. */
static void test_release_just_under_the_limit(void **state)
{
	struct waiter a, b2;
	struct bed b;

	(void)state;
	bed_init(&b, 2, 5000, 10, 0);
	spend(&b, 1, 1, 500 * MS);
	spend(&b, 1, 1, 1500 * MS);
	clock_now = 59 * S;
	waiter_init(&a, &b, 1);
	waiter_init(&b2, &b, 1);
	assert_true(dt_pacer_worth_waiting(b.pacer, &a.w.demand,
					   dt_rb_fit_at(b.rb, &a.w.demand, clock_now), clock_now));
	assert_true(dt_pacer_wait(b.pacer, &a.w, clock_now));
	assert_true(dt_pacer_wait(b.pacer, &b2.w, clock_now));
	assert_int_equal(dt_pacer_waiting(b.pacer, P), 2);
	assert_int_equal(dt_pacer_poll(b.pacer, clock_now), 61 * S);
	run_until(&b, 61 * S - 1);
	assert_int_equal(a.outcome, 0);
	run_until(&b, 64 * S);
	assert_int_equal(a.outcome, 1);
	assert_int_equal(a.at, 61 * S);
	assert_int_equal(b2.outcome, 1);
	assert_int_equal(b2.at, 62 * S);
	assert_int_equal(dt_pacer_total(b.pacer), 0);
	assert_int_equal(dt_pacer_poll(b.pacer, clock_now), UINT64_MAX);
	bed_free(&b);
}

/* A wait longer than the provider's longest is not worth it; one queued
 * whose budget does not come in time ends at its deadline (the caller
 * overflows to the next member). */
static void test_bounded_wait_then_overflow(void **state)
{
	struct waiter a;
	struct bed b;

	(void)state;
	bed_init(&b, 1, 2000, 10, 0);
	spend(&b, 1, 1, 10 * S);
	clock_now = 20 * S;
	waiter_init(&a, &b, 1);
	/* free at 71 s: 51 s away, the wait is 2 s */
	assert_false(dt_pacer_worth_waiting(b.pacer, &a.w.demand,
					    dt_rb_fit_at(b.rb, &a.w.demand, clock_now), clock_now));
	assert_true(dt_pacer_worth_waiting(b.pacer, &a.w.demand, 22 * S, clock_now));
	assert_false(dt_pacer_worth_waiting(b.pacer, &a.w.demand, 22 * S + 1, clock_now));
	assert_true(dt_pacer_wait(b.pacer, &a.w, clock_now));
	assert_int_equal(dt_pacer_poll(b.pacer, clock_now), 22 * S);
	run_until(&b, 30 * S);
	assert_int_equal(a.outcome, -1);
	assert_int_equal(a.at, 22 * S);
	assert_int_equal(dt_pacer_waiting(b.pacer, P), 0);
	bed_free(&b);
}

/* At most pace_max_queue wait; a provider that does not pace queues none. */
static void test_queue_bound(void **state)
{
	struct waiter x[3];
	struct bed b;

	(void)state;
	bed_init(&b, 1, 5000, 2, 0);
	spend(&b, 1, 1, 0);
	clock_now = 58 * S;
	for (int i = 0; i < 3; i++)
		waiter_init(&x[i], &b, 1);
	assert_true(dt_pacer_wait(b.pacer, &x[0].w, clock_now));
	assert_true(dt_pacer_worth_waiting(b.pacer, &x[1].w.demand, 61 * S, clock_now));
	assert_true(dt_pacer_wait(b.pacer, &x[1].w, clock_now));
	assert_false(dt_pacer_worth_waiting(b.pacer, &x[2].w.demand, 61 * S, clock_now));
	assert_false(dt_pacer_wait(b.pacer, &x[2].w, clock_now));
	assert_false(x[2].w.queued);
	assert_int_equal(dt_pacer_waiting(b.pacer, P), 2);
	/* the first released at 61 s, the second's wait over at 63 s */
	run_until(&b, 70 * S);
	assert_int_equal(x[0].outcome, 1);
	assert_int_equal(x[1].outcome, -1);
	assert_int_equal(x[1].at, 63 * S);
	bed_free(&b);

	bed_init(&b, 1, 5000, 2, 0);
	b.providers[P].pace = false;
	assert_int_equal(dt_rb_configure(b.rb, b.used, b.providers,
					 &(struct dt_rb_app_cfg){ .name = "chat", .share_percent = b.share, .own_key = b.own_key }, 1), 0);
	waiter_init(&x[0], &b, 1);
	assert_false(dt_pacer_worth_waiting(b.pacer, &x[0].w.demand, 1, 0));
	assert_false(dt_pacer_wait(b.pacer, &x[0].w, 0));
	bed_free(&b);
}

/* tpm 2300, two estimates of 1000 in flight: a third is worth waiting for
 * (their answers will use less), and is released by the poll after the
 * first settles, long before the window would let it. */
static void test_released_by_a_settle(void **state)
{
	struct dt_rb_demand big = { P, DT_KEY_SLOT_DETOUR, 1, 1000 };
	struct dt_rb_ticket t1, t2;
	struct waiter x;
	struct bed b;

	(void)state;
	bed_init(&b, 0, 2000, 10, 0);
	b.providers[P].limit[DT_RB_TOKENS] = 2300;
	assert_int_equal(dt_rb_configure(b.rb, b.used, b.providers,
					 &(struct dt_rb_app_cfg){ .name = "chat", .share_percent = b.share, .own_key = b.own_key }, 1), 0);
	dt_rb_take(b.rb, &big, 1 * S, &t1);
	dt_rb_take(b.rb, &big, 1 * S, &t2);
	clock_now = 1 * S + 100 * MS;
	waiter_init(&x, &b, 1);
	x.w.demand.tokens = 1000;
	assert_int_equal(dt_rb_fit_at(b.rb, &x.w.demand, clock_now), 62 * S);
	assert_true(dt_pacer_worth_waiting(b.pacer, &x.w.demand, 62 * S, clock_now));
	assert_true(dt_pacer_wait(b.pacer, &x.w, clock_now));
	/* nothing to wake for but its deadline: a settle will poll */
	assert_int_equal(dt_pacer_poll(b.pacer, clock_now), 3 * S + 100 * MS);
	clock_now = 1 * S + 700 * MS;
	dt_rb_settle(b.rb, &t1, 60);
	dt_pacer_poll(b.pacer, clock_now);
	assert_int_equal(x.outcome, 1);
	assert_int_equal(x.at, 1 * S + 700 * MS);
	dt_rb_settle(b.rb, &t2, 60);
	bed_free(&b);
}

/* A client that goes away leaves the queue; the one behind it moves up. */
static void test_cancel(void **state)
{
	struct waiter a, b2;
	struct bed b;

	(void)state;
	bed_init(&b, 1, 5000, 10, 0);
	spend(&b, 1, 1, 0);
	clock_now = 59 * S;
	waiter_init(&a, &b, 1);
	waiter_init(&b2, &b, 1);
	assert_true(dt_pacer_wait(b.pacer, &a.w, clock_now));
	assert_true(dt_pacer_wait(b.pacer, &b2.w, clock_now));
	dt_pacer_cancel(b.pacer, &a.w);
	assert_false(a.w.queued);
	dt_pacer_cancel(b.pacer, &a.w); /* twice: nothing */
	assert_int_equal(dt_pacer_waiting(b.pacer, P), 1);
	run_until(&b, 62 * S);
	assert_int_equal(a.outcome, 0);
	assert_int_equal(b2.outcome, 1);
	assert_int_equal(b2.at, 61 * S);
	bed_free(&b);
}

/* rpm 4, chat holds 50%: the batch job's requests wait behind its 2, while
 * chat's go at once; a released batch request does not take chat's part. */
static void test_share_skips_the_queue(void **state)
{
	struct waiter batch, chat;
	struct bed b;

	(void)state;
	bed_init(&b, 4, 5000, 10, 50);
	spend(&b, 1, 2, 0);
	clock_now = 58 * S;
	waiter_init(&batch, &b, 1);
	waiter_init(&chat, &b, 0);
	assert_int_not_equal(dt_rb_fit_at(b.rb, &batch.w.demand, clock_now), 0);
	assert_int_equal(dt_rb_fit_at(b.rb, &chat.w.demand, clock_now), 0);
	assert_true(dt_pacer_wait(b.pacer, &batch.w, clock_now));
	/* chat found room without waiting; had it queued behind, it goes first */
	assert_true(dt_pacer_wait(b.pacer, &chat.w, clock_now));
	run_until(&b, 58 * S);
	assert_int_equal(chat.outcome, 1);
	assert_int_equal(batch.outcome, 0);
	run_until(&b, 62 * S);
	assert_int_equal(batch.outcome, 1);
	assert_int_equal(batch.at, 61 * S);
	bed_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_just_under_the_limit),
		cmocka_unit_test(test_bounded_wait_then_overflow),
		cmocka_unit_test(test_queue_bound),
		cmocka_unit_test(test_released_by_a_settle),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_share_skips_the_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
