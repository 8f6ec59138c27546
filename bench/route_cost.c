// SPDX-License-Identifier: MIT
/*
 * bench/route_cost: what one load-balancing decision costs, on one core, in
 * memory: dt_balance_order over a class of 10 usable members (measured
 * latencies, some requests in flight, distinct prices), for each strategy,
 * the list reset before each decision as the router builds it afresh.
 *
 * The figure per strategy is the fastest block's mean per decision: the
 * work is pure CPU, so the slowest blocks measure only the neighbours.
 *
 *   route_cost [--reps N] [--blocks N]
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "balance.h"

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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

/* ns per decision, the fastest of `blocks` blocks of `reps` decisions. */
static double decision_ns(enum dt_balance_strategy s, long reps, int blocks)
{
	struct dt_balance_member m[MEMBERS];
	size_t order[MEMBERS];
	uint64_t prng = 1, sink = 0;
	double best = 0;

	make_class(m);
	for (int b = 0; b < blocks; b++) {
		uint64_t t0 = now_ns();
		double per;

		for (long r = 0; r < reps; r++) {
			for (size_t i = 0; i < MEMBERS; i++)
				order[i] = i;
			dt_balance_order(s, m, order, MEMBERS, &prng, NULL, NOW);
			sink += order[0];
		}
		per = (double)(now_ns() - t0) / (double)reps;
		if (b == 0 || per < best)
			best = per;
	}
	/* the picks feed the output, so the loop cannot be optimised away */
	if (sink == UINT64_MAX)
		printf("unreachable\n");
	return best;
}

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
	printf("route_cost: ns per decision, %d members:", MEMBERS);
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		printf(" %s %.0f", strategies[i].name, decision_ns(strategies[i].s, reps, blocks));
	printf("\n");
	return 0;
}
