// SPDX-License-Identifier: MIT
/*
 * bench/route_cost: what one load-balancing decision costs, on one core, in
 * memory: dt_balance_order over a class of 10 usable members (measured
 * latencies, some requests in flight, distinct prices), for each strategy,
 * the list reset before each decision as the router builds it afresh.
 * Then whole plans (dt_router_plan: the class looked up, the health
 * engine's order, the strategy) over 10 healthy members: a priority and a
 * cheapest class, a cheapest class with capability tiers (a request with
 * tools, which half the members lack), a sticky weighted class (a
 * conversation going back to its member); and what reading a request's
 * needs costs (dt_traits_of on a parsed three-turn chat with tools). With
 * rate-limit budgets: the check of one decision (dt_rb_fit_at for each of
 * the 10 members, each with rpm and tpm, traffic and headers of the minute,
 * two applications holding shares), and the priority plan weighing them.
 *
 * Each figure is the fastest block's mean per decision: the work is pure
 * CPU, so the slowest blocks measure only the neighbours.
 *
 *   route_cost [--reps N] [--blocks N]
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "balance.h"
#include "bpfobj.h"
#include "ratebudget.h"
#include "router.h"
#include "traits.h"

#define MEMBERS 10
#define NOW 1000000000ull

static const struct {
	enum dt_balance_strategy s;
	const char *name;
} strategies[] = {
	{ DT_BALANCE_PRIORITY, "priority" },
	{ DT_BALANCE_WEIGHTED, "weighted" },
	{ DT_BALANCE_LEAST_LATENCY, "least_latency" },
	{ DT_BALANCE_CHEAPEST, "cheapest" },
	{ DT_BALANCE_COMBINED, "combined" },
};

/* A class as a busy host would see it: 80 to 500 ms to the first token,
 * last measured up to a second before NOW, up to 3 requests in flight,
 * prices in no particular order. */
static void make_class(struct dt_balance_member *m)
{
	for (unsigned i = 0; i < MEMBERS; i++)
		m[i] = (struct dt_balance_member){
			.weight = 1 + i % 4,
			.price = 1000 + (i * 7919) % 5000,
			.ttft_ewma_ns = (80 + (i * 37) % 420) * 1000000ull,
			.in_flight = i % 4,
			.sampled_at = i * 100000000ull,
		};
}

/* One way of deciding, run `reps` times; returns what it picked, which
 * feeds the output so that the loop cannot be optimised away. */
struct decision {
	uint64_t (*run)(struct decision *d, long reps);
	/* balance */
	enum dt_balance_strategy s;
	struct dt_balance_member m[MEMBERS];
	uint64_t prng;
	/* plans */
	struct dt_router *router;
	struct dt_route_needs needs;
	const struct dt_plan_budget *budget; /* NULL: none */
	/* the budget check */
	struct dt_rb *rb;
	/* traits */
	struct dt_xrequest *request;
};

static uint64_t run_balance(struct decision *d, long reps)
{
	size_t order[MEMBERS];
	uint64_t sink = 0;

	for (long r = 0; r < reps; r++) {
		for (size_t i = 0; i < MEMBERS; i++)
			order[i] = i;
		dt_balance_order(d->s, d->m, order, MEMBERS, &d->prng, NULL, NOW);
		sink += order[0];
	}
	return sink;
}

static uint64_t run_plan(struct decision *d, long reps)
{
	struct dt_attempt plan[MEMBERS];
	struct dt_plan_notes notes;
	uint64_t sink = 0;

	for (long r = 0; r < reps; r++) {
		dt_router_plan_budgeted(d->router, 0, "model-0", &d->needs, (uint64_t)r, NOW, d->budget,
					plan, MEMBERS, &notes);
		sink += plan[0].provider_id;
	}
	return sink;
}

static uint64_t budget_usable_at(void *ctx, uint32_t provider_id, uint32_t key_slot, uint64_t now)
{
	struct dt_rb_demand d = { provider_id, key_slot, 0, 1500 };

	return dt_rb_fit_at(ctx, &d, now);
}

static uint64_t run_budget(struct decision *d, long reps)
{
	uint64_t sink = 0;

	for (long r = 0; r < reps; r++)
		for (uint32_t id = 0; id < MEMBERS; id++)
			sink += budget_usable_at(d->rb, id, DT_KEY_SLOT_DETOUR, NOW);
	return sink;
}

/* Budgets of providers 0-9 with rpm and tpm, two applications holding
 * shares, 60 requests in the window behind each and one answer's headers. */
static struct dt_rb *busy_budgets(void)
{
	static bool used[DT_MAX_PROVIDERS];
	static struct dt_rb_provider_cfg providers[DT_MAX_PROVIDERS];
	static uint8_t share[2][DT_MAX_PROVIDERS];
	static bool own_key[2][DT_MAX_PROVIDERS];
	const struct dt_rb_app_cfg apps[2] = { { .name = "chat", .share_percent = share[0], .own_key = own_key[0] },
					       { .name = "batch", .share_percent = share[1], .own_key = own_key[1] } };
	struct dt_rb *rb = dt_rb_new();
	struct dt_ratelimit rl;

	for (uint32_t id = 0; id < MEMBERS; id++) {
		used[id] = true;
		providers[id].limit[DT_RB_REQUESTS] = 100000;
		providers[id].limit[DT_RB_TOKENS] = 100000000;
		share[0][id] = 30;
		share[1][id] = 20;
	}
	if (!rb || dt_rb_configure(rb, used, providers, apps, 2)) {
		fprintf(stderr, "route_cost: out of memory\n");
		exit(1);
	}
	dt_ratelimit_init(&rl);
	rl.limits[DT_RL_REQUESTS] = (struct dt_rl_limit){ 90000, 30000, 100000 };
	for (uint64_t t = 60; t > 0; t--) {
		for (uint32_t id = 0; id < MEMBERS; id++) {
			struct dt_rb_demand d = { id, DT_KEY_SLOT_DETOUR, (uint32_t)(t % 3), 1500 };
			struct dt_rb_ticket tk;

			dt_rb_take(rb, &d, NOW - t * 10000000ull, &tk);
			if (t == 1)
				dt_rb_headers(rb, &tk, &rl, NOW - t * 10000000ull);
			else
				dt_rb_settle(rb, &tk, 900);
		}
	}
	return rb;
}

static uint64_t run_traits(struct decision *d, long reps)
{
	struct dt_route_needs needs;
	uint64_t sink = 0;

	for (long r = 0; r < reps; r++) {
		dt_traits_of(d->request, "chatbot", &needs);
		sink += needs.conversation;
	}
	return sink;
}

/* ns per decision, the fastest of `blocks` blocks of `reps` decisions. */
static double decision_ns(struct decision *d, long reps, int blocks)
{
	uint64_t sink = 0;
	double best = 0;

	for (int b = 0; b < blocks; b++) {
		uint64_t t0 = dt_now_ns();
		double per;

		sink += d->run(d, reps);
		per = (double)(dt_now_ns() - t0) / (double)reps;
		if (b == 0 || per < best)
			best = per;
	}
	if (sink == UINT64_MAX)
		printf("unreachable\n");
	return best;
}

/* A router holding one class of 10 members, providers 0-9, model-0 to
 * model-9, with make_class's weights and prices; tiered: the odd ones
 * declare no tools. */
static struct dt_router *make_router(struct dt_health *health, enum dt_class_strategy s,
				     bool tiered, bool sticky)
{
	struct dt_balance_member bm[MEMBERS];
	struct dt_class_member m[MEMBERS];
	struct dt_model_class cls = { .name = "bench", .members = m, .n_members = MEMBERS,
				      .strategy = s, .sticky = sticky };
	struct dt_router *r = dt_router_new(NULL, health);

	make_class(bm);
	for (unsigned i = 0; i < MEMBERS; i++) {
		m[i] = (struct dt_class_member){
			.provider_id = i, .context_tokens = 128000, .weight = bm[i].weight,
			.price_in = (unsigned)bm[i].price, .price_out = 0,
			.caps_declared = tiered,
			.caps = DT_CAP_JSON | (i % 2 ? 0 : DT_CAP_TOOLS),
		};
		snprintf(m[i].model, sizeof(m[i].model), "model-%u", i);
	}
	if (!r || dt_router_set_classes(r, &cls, 1)) {
		fprintf(stderr, "route_cost: out of memory\n");
		exit(1);
	}
	return r;
}

/* The tiered plan leaves out the 5 members without tools, the sticky one
 * goes back to member 7: what they measure is what their names say. */
static bool decides_as_meant(struct decision *tiered, struct decision *sticky)
{
	struct dt_attempt plan[MEMBERS];
	struct dt_plan_notes notes;

	if (dt_router_plan(tiered->router, 0, "model-0", &tiered->needs, 0, NOW, plan, MEMBERS,
			   &notes) != 5 || notes.n_unfit != 5)
		return false;
	dt_router_plan(sticky->router, 0, "model-0", &sticky->needs, 0, NOW, plan, MEMBERS, &notes);
	return notes.sticky == DT_STICKY_HIT && plan[0].provider_id == 7;
}

/* A chat of three turns with a tool, as applications send them. */
static const char chat[] =
	"{\"model\":\"gpt-4o-mini\",\"max_tokens\":512,\"messages\":["
	"{\"role\":\"system\",\"content\":\"You are a travel assistant. Answer briefly, in the "
	"language of the question, and use the weather tool for forecasts.\"},"
	"{\"role\":\"user\",\"content\":\"I am planning three days in Rome in May. What should I see?\"},"
	"{\"role\":\"assistant\",\"content\":\"The Colosseum, the Vatican Museums and Trastevere.\"},"
	"{\"role\":\"user\",\"content\":\"And will it rain?\"}],"
	"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\","
	"\"description\":\"The forecast for a city\",\"parameters\":{\"type\":\"object\","
	"\"properties\":{\"city\":{\"type\":\"string\"}}}}}]}";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "blocks", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	long reps = 200000;
	int blocks = 9, c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': reps = atol(optarg); break;
		case 'b': blocks = atoi(optarg); break;
		default: return 2;
		}
	}
	if (reps < 1 || blocks < 1) {
		fprintf(stderr, "route_cost: --reps >= 1, --blocks >= 1\n");
		return 2;
	}
	struct dt_health *health = dt_health_new(NULL, NULL, NULL);
	struct decision budget_check = { .run = run_budget, .rb = busy_budgets() };
	const struct dt_plan_budget budget = { budget_usable_at, budget_check.rb };
	struct dt_xrequest request;
	char err[200];
	struct {
		const char *name;
		struct decision d;
	} plans[] = {
		{ "priority", { .run = run_plan } },
		{ "cheapest", { .run = run_plan } },
		{ "weighted", { .run = run_plan } },
		{ "tiered", { .run = run_plan, .needs = { .caps = DT_CAP_TOOLS, .tokens = 2000 } } },
		{ "sticky", { .run = run_plan, .needs = { .conversation = 42 } } },
		{ "priority_budgeted", { .run = run_plan, .budget = &budget } },
	};
	struct decision traits = { .run = run_traits, .request = &request };
	const struct dt_attempt stuck = { 7, "model-7", DT_KEY_SLOT_DETOUR, false };

	if (!health || dt_xreq_parse(DT_FAMILY_OPENAI, chat, sizeof(chat) - 1, NULL, false, &request,
				     err, sizeof(err))) {
		fprintf(stderr, "route_cost: %s\n", health ? err : "out of memory");
		return 1;
	}
	plans[0].d.router = make_router(health, DT_STRATEGY_PRIORITY, false, false);
	plans[1].d.router = make_router(health, DT_STRATEGY_CHEAPEST, false, false);
	plans[2].d.router = make_router(health, DT_STRATEGY_WEIGHTED, false, false);
	plans[3].d.router = make_router(health, DT_STRATEGY_CHEAPEST, true, false);
	plans[4].d.router = make_router(health, DT_STRATEGY_WEIGHTED, false, true);
	plans[5].d.router = make_router(health, DT_STRATEGY_PRIORITY, false, false);
	dt_router_stick(plans[4].d.router, &stuck, &plans[4].d.needs, NOW);
	if (!decides_as_meant(&plans[3].d, &plans[4].d)) {
		fprintf(stderr, "route_cost: the tiered or sticky plan is not what it is meant to measure\n");
		return 1;
	}

	printf("route_cost: ns per decision, %d members:", MEMBERS);
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
		struct decision d = { .run = run_balance, .s = strategies[i].s, .prng = 1 };

		make_class(d.m);
		printf(" %s %.0f", strategies[i].name, decision_ns(&d, reps, blocks));
	}
	printf("; whole plan:");
	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
		printf(" %s %.0f", plans[i].name, decision_ns(&plans[i].d, reps, blocks));
		dt_router_free(plans[i].d.router);
	}
	printf("; budget check %.0f", decision_ns(&budget_check, reps, blocks));
	printf("; request needs %.0f\n", decision_ns(&traits, reps, blocks));
	dt_rb_free(budget_check.rb);
	dt_xreq_free(&request);
	dt_health_free(health);
	return 0;
}
