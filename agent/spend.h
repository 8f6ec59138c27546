/* SPDX-License-Identifier: MIT */
/*
 * What the answers cost: requests, tokens and money per (application,
 * provider, model, class), counted from each answered attempt's usage
 * (xlate.h's struct dt_xusage) and its model's price (prices.h). Pure: no
 * I/O, no clock; the proxy adds, /metrics and detourctl read the rows.
 *
 * Money is integer and exact: a price is micro-dollars per million tokens,
 * which is pico-dollars per token, so an answer costs a whole number of
 * pico-dollars; rows sum pico-dollars and are shown in micro-dollars
 * rounded half up (dt_spend_micro), rounding once, on the total.
 */
#ifndef DT_SPEND_H
#define DT_SPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "detour.h"
#include "xlate.h"

#define DT_SPEND_MODEL_LEN 128
/* Distinct keys counted at most; more (a client naming random models)
 * fold into the row of their application and provider with model
 * DT_SPEND_OTHER, so memory stays bounded. */
#define DT_SPEND_MAX_ROWS  1024
#define DT_SPEND_OTHER     "(other)"
/* The label of what has none: traffic of no [app], a model outside any
 * class, an answer naming no model. */
#define DT_SPEND_NONE      "-"
/* The application of detour's own TTFT probes (docs/probe.md). */
#define DT_SPEND_PROBE     "(probe)"

/* A model's list price, micro-dollars per million tokens (= pico-dollars
 * per token) of each kind of token. */
struct dt_price {
	uint64_t input;          /* input tokens read fresh */
	uint64_t cached_input;   /* input tokens read from the provider's cache */
	uint64_t cache_write;    /* input tokens written to the cache (Anthropic) */
	uint64_t output;         /* output tokens, reasoning included */
};

/* Who an answer is counted for; NULL or "" reads as DT_SPEND_NONE. */
struct dt_spend_key {
	const char *app;
	const char *provider;
	const char *model;
	const char *class_name;
};

struct dt_spend_row {
	char app[DT_NAME_LEN];
	char provider[DT_NAME_LEN];
	char model[DT_SPEND_MODEL_LEN];
	char class_name[DT_NAME_LEN];
	uint64_t requests;            /* answers counted */
	uint64_t unmetered;           /* of them: the answer gave no usage */
	uint64_t unpriced;            /* of them: usage, but no price known: no cost counted */
	uint64_t input_tokens;        /* all input, cached and cache writes included */
	uint64_t cached_input_tokens;
	uint64_t cache_write_tokens;
	uint64_t output_tokens;
	uint64_t cost_pico;           /* of the priced answers, pico-dollars (saturates) */
};

struct dt_spend;

/* NULL when out of memory. */
struct dt_spend *dt_spend_new(void);
void dt_spend_free(struct dt_spend *s);

/* An answer's cost in pico-dollars: fresh input (input minus cached and
 * cache writes, never below 0), cached input, cache writes and output,
 * each at its price. */
uint64_t dt_spend_cost_pico(const struct dt_xusage *u, const struct dt_price *p);

/* Pico-dollars in micro-dollars, rounded half up. */
uint64_t dt_spend_micro(uint64_t pico);

/* Count one answer: u its usage (NULL or !u->known: unmetered), p its
 * model's price (NULL: unknown, unpriced). Returns 0, or -ENOMEM (the
 * answer is not counted). */
int dt_spend_add(struct dt_spend *s, const struct dt_spend_key *k, const struct dt_xusage *u,
		 const struct dt_price *p);

/* The rows, in the order their keys were first seen; valid until the next
 * dt_spend_add. Returns how many. */
size_t dt_spend_rows(const struct dt_spend *s, const struct dt_spend_row **rows);

/* How many answers were added so far: a reader that saw this count has
 * seen every row as it is. */
uint64_t dt_spend_answers(const struct dt_spend *s);

/* The rows as JSON (docs/cost.md, "detourctl spend"): {"prices_date":
 * prices_date, "rows": [{"app", "provider", "model", "class", "requests",
 * "unmetered", "unpriced", "input_tokens", "cached_input_tokens",
 * "cache_write_tokens", "output_tokens", "cost_usd_micro",
 * "cost_usd_pico"}, ...]}, NUL-terminated and malloc'ed (length in *len);
 * NULL when out of memory. */
char *dt_spend_json(const struct dt_spend *s, const char *prices_date, size_t *len);

#endif /* DT_SPEND_H */
