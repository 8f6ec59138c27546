/* SPDX-License-Identifier: MIT */
/* Routing decisions of the re-signing proxy: which provider and model each
 * attempt of a request goes to (in the order the health engine gives the
 * members of a class), who is to blame for an answer, which of detour's keys
 * are refused, and how many retries the host may spend.
 * Pure logic with an injected clock (`now`, CLOCK_MONOTONIC ns); the proxy
 * does the I/O. Semantics: docs/routing.md. */
#ifndef DT_ROUTER_H
#define DT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "balance.h"
#include "detour.h"
#include "health.h"

#define DT_MODEL_LEN 128

/* Which credential an attempt carries. */
#define DT_KEY_SLOT_APP    0 /* the application's own (only on its original provider) */
#define DT_KEY_SLOT_DETOUR 1 /* detour's configured key for that provider */

struct dt_class_member {
	uint32_t provider_id;          /* < DT_MAX_PROVIDERS */
	char model[DT_MODEL_LEN];
	uint32_t context_tokens;       /* 0: unknown */
	unsigned weight;               /* for weighted order; 0 → 1 */
	unsigned price_in, price_out;  /* cheapest, combined: µ$ per million tokens */
};

/* Equivalent models across providers. A class holds each provider at most
 * once, and a (provider, model) pair belongs to at most one class. */
struct dt_model_class {
	char name[DT_NAME_LEN];
	struct dt_class_member *members;  /* in configured order */
	size_t n_members;
	enum dt_class_strategy {
		DT_STRATEGY_PRIORITY,
		DT_STRATEGY_WEIGHTED,
		/* balanced (balance.h): the strategy picks among all usable
		 * members, the original included */
		DT_STRATEGY_LEAST_LATENCY,
		DT_STRATEGY_CHEAPEST,
		DT_STRATEGY_COMBINED,
	} strategy;
	unsigned latency_factor_percent; /* combined: 0 → balance.h's default */
	/* Which answers are checked (empty, not the JSON asked for, cut short
	 * for no reason the request gives) before the client gets them. */
	enum dt_quality_mode {
		DT_QUALITY_FAILOVER,  /* answers of members other than the original (default) */
		DT_QUALITY_ALWAYS,    /* every member's */
		DT_QUALITY_OFF,
	} quality;
};

/* A field left 0 takes its default, except retry_budget_percent and
 * retry_budget_min, taken as given (0% allows only the floor; a floor of 0
 * makes the budget strictly proportional). */
struct dt_router_opts {
	unsigned retry_budget_percent;   /* retries allowed as a share of requests in the window (default 20) */
	unsigned retry_budget_min;       /* retries always allowed per window, so a quiet host can still fail over (default 10) */
	unsigned budget_window_ms;       /* default 10000 */
	unsigned key_disable_ms;         /* how long a key that got 401/402/403 is skipped (default 300000) */
};

struct dt_router;

/* o NULL: every default, budget included. health: the verdicts plans
 * follow (not owned; outcomes are reported to it by the caller). Returns
 * NULL when out of memory. */
struct dt_router *dt_router_new(const struct dt_router_opts *o, struct dt_health *health);
/* New options (a reload); key state and the budget's history stay. */
void dt_router_set_opts(struct dt_router *r, const struct dt_router_opts *o);
void dt_router_free(struct dt_router *r);

/* Replace the classes (copied). Key state survives (by id). Returns 0,
 * -EINVAL (a provider id out of range, an empty or unterminated model or
 * name, a provider twice in one class, a (provider, model) in two classes;
 * the previous classes stay) or -ENOMEM. */
int dt_router_set_classes(struct dt_router *r, const struct dt_model_class *classes, size_t n);

struct dt_attempt {
	uint32_t provider_id;
	const char *model;     /* the model to ask that provider for (points into the router's copy, or the caller's model for a passthrough); valid until the next set_classes */
	uint32_t key_slot;     /* DT_KEY_SLOT_APP or DT_KEY_SLOT_DETOUR */
	bool check_quality;    /* the class asks for this attempt's answer to be checked */
};

/* The attempts, in order, for a request the application addressed to
 * (provider_id, model), matched exactly (case-sensitive). The original
 * member first (with the app's own key); then the other members of the
 * model's class (detour's key), in priority order or in weighted order
 * (weighted random without replacement, deterministic given seed, e.g. a
 * request counter). Then the health engine orders them (dt_health_order:
 * usable ones in that order, healthy before degraded; ejected ones it
 * readmits under its ejection cap or in panic; the rest soonest usable
 * first, still tried; drained ones left out), and members whose key is
 * disabled go behind the routable ones. The balanced strategies then
 * reorder the routable ones (dt_balance_order; seed feeds its draws). max
 * cuts the list. *mode (may be
 * NULL) says whether the health engine capped or panicked. No class holds
 * (provider_id, model): exactly one attempt, unchanged. Returns the count
 * written (≤ max). */
size_t dt_router_plan(struct dt_router *r, uint32_t provider_id, const char *model,
		      uint64_t seed, uint64_t now, struct dt_attempt *out, size_t max,
		      enum dt_health_mode *mode);

/* Rate-limit budgets (ratebudget.h) as a plan weighs them: when member
 * (provider_id, key_slot) can take this request, 0 meaning now (it fits
 * the budget, or is worth waiting for in its pacing queue). */
struct dt_plan_budget {
	uint64_t (*usable_at)(void *ctx, uint32_t provider_id, uint32_t key_slot, uint64_t now);
	void *ctx;
};

/* dt_router_plan with predictive overflow: a member that cannot take the
 * request now goes behind the routable ones, as a disabled key does,
 * soonest usable first; when none can, they all still go, in that order.
 * budget NULL: dt_router_plan. */
size_t dt_router_plan_budgeted(struct dt_router *r, uint32_t provider_id, const char *model,
			       uint64_t seed, uint64_t now, const struct dt_plan_budget *budget,
			       struct dt_attempt *out, size_t max, enum dt_health_mode *mode);

enum dt_blame {
	DT_BLAME_NONE,       /* success: relay it */
	DT_BLAME_REQUEST,    /* the request is at fault: return as is, never retry */
	DT_BLAME_CONTEXT,    /* context window exceeded: may move to a member with a larger window */
	DT_BLAME_KEY,        /* the key is at fault: disable it, move on */
	DT_BLAME_PROVIDER,   /* the provider is at fault: count it, move on */
	DT_BLAME_RATE_LIMIT, /* 429: overflow to the next member, never the same provider */
};

/* An attempt is sent, and ends (whatever became of it, once): the
 * balanced strategies' in-flight count and latency estimate. ttft_ns: its
 * time to first token (a whole answer: to the answer), 0 when it had none.
 * A passthrough is ignored. */
void dt_router_attempt_start(struct dt_router *r, const struct dt_attempt *a);
void dt_router_attempt_end(struct dt_router *r, const struct dt_attempt *a, uint64_t ttft_ns,
			   uint64_t now);

/* Classify an HTTP answer. body may be a prefix of the error body (JSON in
 * any provider's shape), NULL when len is 0; it tells context-window,
 * content-policy and quota errors apart. */
enum dt_blame dt_router_classify_status(int status, const char *body, size_t len);

/* Report whom an attempt's answer blames, for detour's keys: a KEY blame
 * disables the key for key_disable_ms, an answer shows it works. Provider
 * and model health is the health engine's (dt_health_outcome). */
void dt_router_report(struct dt_router *r, const struct dt_attempt *a, enum dt_blame b, uint64_t now);

/* The class holding (provider_id, model) and that member; NULL when none
 * does. Valid until the next dt_router_set_classes. */
const struct dt_model_class *dt_router_class_of(const struct dt_router *r, uint32_t provider_id,
						const char *model, const struct dt_class_member **member);

/* Context-window failover: is this later attempt allowed after a CONTEXT
 * blame on `failed`? Only when both windows are known and next's is larger. */
bool dt_router_larger_context(const struct dt_router *r, const struct dt_attempt *failed,
			      const struct dt_attempt *next);

/* Retry budget: count every client request; before each attempt after the
 * first, take a token; false = budget exhausted (the proxy then returns the
 * last error). */
void dt_router_request(struct dt_router *r, uint64_t now);
bool dt_router_retry_take(struct dt_router *r, uint64_t now);

#endif
