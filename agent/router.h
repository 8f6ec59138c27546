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

/* Capability tiers: what a request may need of the model that serves it,
 * beyond plain text. */
#define DT_CAP_TOOLS   (1u << 0)  /* function calling */
#define DT_CAP_IMAGES  (1u << 1)  /* image input */
#define DT_CAP_JSON    (1u << 2)  /* JSON output (a JSON object, or by a schema) */
/* not a capability a member declares: in notes, a window too small */
#define DT_CAP_CONTEXT (1u << 3)

/* caps as "tools+images+json+context" (in that order) into buf, cut to
 * len - 1 characters; "" for none. Returns buf. */
const char *dt_router_caps_str(unsigned caps, char *buf, size_t len);

struct dt_class_member {
	uint32_t provider_id;          /* < DT_MAX_PROVIDERS */
	char model[DT_MODEL_LEN];
	uint32_t context_tokens;       /* 0: unknown */
	unsigned weight;               /* for weighted order; 0 → 1 */
	unsigned price_in, price_out;  /* cheapest, combined: µ$ per million tokens */
	bool caps_declared;            /* false: what it serves is unknown, nothing is filtered */
	unsigned caps;                 /* DT_CAP_TOOLS | _IMAGES | _JSON it serves, when declared */
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
	/* A conversation goes on with the member that answered its last turn
	 * while it is healthy and capable, for up to sticky_ttl_ms after it. */
	bool sticky;
	unsigned sticky_ttl_ms;           /* 0 → 300000 */
};

/* What the router is told of a request, read from it (agent/traits.c):
 * zeroed, nothing is known and nothing is filtered. */
struct dt_route_needs {
	unsigned caps;                    /* DT_CAP_TOOLS | _IMAGES | _JSON it uses */
	uint64_t tokens;                  /* its prompt (estimated) and most output; 0: unknown */
	uint64_t conversation;            /* its application and first turn, hashed; 0: none */
};

/* Why a plan is what it is, for the x-detour-* headers and the log. */
struct dt_plan_notes {
	enum dt_health_mode mode;         /* the health engine capped or panicked */
	enum dt_sticky_note {
		DT_STICKY_NONE,               /* not a sticky class, or no conversation */
		DT_STICKY_NEW,                /* a conversation not seen within its TTL */
		DT_STICKY_HIT,                /* back to the member of its last answer */
		DT_STICKY_MOVED,              /* that member cannot take it now: the strategy's choice */
	} sticky;
	/* members lacking what the request needs (DT_CAP_* bits missing):
	 * left out of the plan, except the original, tried last */
	struct dt_unfit {
		uint32_t provider_id;
		unsigned missing;
	} unfit[DT_MAX_PROVIDERS];
	size_t n_unfit;
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
 * model's class (detour's key), in the configured order. Members lacking
 * what needs asks for (capability tiers; needs NULL: nothing known) are
 * left out, except the original, which goes last. Then the health engine
 * orders them (dt_health_order: usable ones in that order, healthy before
 * degraded; ejected ones it readmits under its ejection cap or in panic;
 * the rest soonest usable first, still tried; drained ones left out), and
 * members whose key is disabled go behind the routable ones. A sticky
 * class's conversation goes back to the member of its last answer when it
 * is routable and healthy; otherwise the balanced strategies reorder the
 * routable ones (dt_balance_order; seed feeds its draws). max cuts the
 * list. notes (may be NULL) says why. No class holds (provider_id,
 * model): exactly one attempt, unchanged. Returns the count written
 * (≤ max). */
size_t dt_router_plan(struct dt_router *r, uint32_t provider_id, const char *model,
		      const struct dt_route_needs *needs, uint64_t seed, uint64_t now,
		      struct dt_attempt *out, size_t max, struct dt_plan_notes *notes);

/* Does the class of (provider_id, model) use what a request needs: a
 * member declares its capabilities or its window, or the class is sticky?
 * Reading the needs costs a parse of the request: only then is it done. */
bool dt_router_reads_needs(const struct dt_router *r, uint32_t provider_id, const char *model);

/* Attempt a, planned for a request with these needs, is the answer the
 * client gets (a 2xx): in a sticky class the conversation's next turns
 * go to its provider. */
void dt_router_stick(struct dt_router *r, const struct dt_attempt *a,
		     const struct dt_route_needs *needs, uint64_t now);

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
			       const struct dt_route_needs *needs, uint64_t seed, uint64_t now,
			       const struct dt_plan_budget *budget, struct dt_attempt *out,
			       size_t max, struct dt_plan_notes *notes);

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
