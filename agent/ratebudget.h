/* SPDX-License-Identifier: MIT */
/* Rate-limit budgets: requests and tokens per minute per provider and key,
 * from the providers' headers (what is left, when it comes back) and from
 * our own counts (a token estimate reserved when an attempt starts,
 * corrected to the exact usage when it ends), against the limits the
 * provider announces or the configuration gives. Applications may hold
 * guaranteed shares of a shared key's limit. Answers "does this request fit
 * now, else when may it" for the router and the pacing queue, and the
 * headroom for metrics. Pure logic with an injected clock (`now`,
 * CLOCK_MONOTONIC ns). Semantics: docs/routing.md, "Rate limits". */
#ifndef DT_RATEBUDGET_H
#define DT_RATEBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"
#include "ratelimit.h"

/* The two things a provider limits per minute. */
enum dt_rb_dim {
	DT_RB_REQUESTS,
	DT_RB_TOKENS,
	DT_RB_DIMS,
};

/* Whose key an attempt is signed with: each is a budget of its own at the
 * provider. */
enum dt_rb_key {
	DT_RB_KEY_DETOUR,  /* detour's configured key for the provider */
	DT_RB_KEY_CLIENT,  /* the credential the application sent itself */
	DT_RB_KEY_APP,     /* an [app]'s configured key */
};

/* A provider's rate-limit settings. */
struct dt_rb_provider_cfg {
	uint32_t limit[DT_RB_DIMS];   /* rpm, tpm of each key; 0: none configured (the headers may tell) */
	bool pace;                    /* over budget: wait in the pacing queue before overflowing */
	unsigned pace_max_wait_ms;    /* 0: default 2000 */
	unsigned pace_max_queue;      /* 0: default 100 */
};

/* An application ([app NAME]); its index in the configuration is its id.
 * Id n_apps is every enrolled process in no [app] section ("-"). */
struct dt_rb_app_cfg {
	const char *name;
	/* per provider id: its share of each shared key's limit (percent, 0:
	 * none), and whether it has a key of its own there */
	const uint8_t *share_percent;  /* [DT_MAX_PROVIDERS] */
	const bool *own_key;           /* [DT_MAX_PROVIDERS] */
	/* its own key's rpm and tpm there, 0: the provider's; NULL: all 0 */
	const uint32_t *key_limit[DT_RB_DIMS]; /* each [DT_MAX_PROVIDERS] */
};

struct dt_rb;

struct dt_rb *dt_rb_new(void);
void dt_rb_free(struct dt_rb *rb);

/* A new configuration: providers[id] for each id with used[id]; apps. The
 * counts of detour's and the clients' keys carry over by provider id, the
 * applications' ones start again. Tickets taken before are settled as
 * no-ops. Returns 0 or -ENOMEM (the previous configuration stays). */
int dt_rb_configure(struct dt_rb *rb, const bool *used, const struct dt_rb_provider_cfg *providers,
		    const struct dt_rb_app_cfg *apps, size_t n_apps);

/* What a request asks of a budget. */
struct dt_rb_demand {
	uint32_t provider_id;
	uint32_t key_slot;      /* router.h's DT_KEY_SLOT_APP / _DETOUR */
	uint32_t app;           /* application id; ≥ n_apps: "-" */
	uint64_t tokens;        /* the estimate (dt_rb_estimate) */
};

/* Prompt size estimate (a token per 4 bytes of request body) plus the
 * output tokens the request allows (max_output < 0: unknown, a default of
 * 1024 is counted). */
uint64_t dt_rb_estimate(size_t body_len, int64_t max_output);

/* 0 when d fits the budget now (or no limit is known), else when it may:
 * the next moment some of the window's usage leaves it or the headers'
 * reset comes (a re-check time, not a promise). */
uint64_t dt_rb_fit_at(const struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now);

/* Could d fit before dt_rb_fit_at's time? When the attempts in flight on
 * its key settle, their estimates give way to their usage, usually much
 * less: true when d would fit if they used nothing (its request fitting
 * now). What makes waiting in a pacing queue worth it. */
bool dt_rb_may_fit_sooner(const struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now);

/* A reservation, held by the attempt until it ends. */
struct dt_rb_ticket {
	uint64_t gen;           /* the configuration it was taken under; 0: none held */
	uint32_t provider_id, app;
	enum dt_rb_key key;
	uint64_t second;        /* the window's second it counts in */
	uint64_t tokens;        /* reserved */
	uint64_t header_seq;    /* the headers it was counted after */
};

/* An attempt of d starts: its request and token estimate are counted. */
void dt_rb_take(struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now,
		struct dt_rb_ticket *t);
/* It ended: the estimate is replaced by the tokens used (used < 0: keep
 * the estimate). The ticket is spent. Also when its window has passed. */
void dt_rb_settle(struct dt_rb *rb, struct dt_rb_ticket *t, int64_t used);
/* An answer's rate-limit headers, for the budget t's attempt used. */
void dt_rb_headers(struct dt_rb *rb, const struct dt_rb_ticket *t, const struct dt_ratelimit *rl,
		   uint64_t now);

/* A provider's pacing settings (defaults filled in); NULL when the provider
 * is not configured. */
const struct dt_rb_provider_cfg *dt_rb_provider(const struct dt_rb *rb, uint32_t provider_id);

/* ---- headroom, for metrics and detourctl ---- */

struct dt_rb_row {
	uint32_t provider_id;
	enum dt_rb_key key;
	const char *app;        /* DT_RB_KEY_APP: whose key; else the app whose
				 * share this row is, NULL for the key as a whole */
	int64_t limit[DT_RB_DIMS];  /* per minute, from the headers or the configuration; -1: unknown */
	int64_t used[DT_RB_DIMS];   /* our counts in the last minute (estimates until settled) */
	int64_t left[DT_RB_DIMS];   /* what may still be sent now (for a share row: by that
				     * application); -1: unlimited as far as is known */
};

/* The budgets that saw traffic or have a limit, and each application's
 * share of them: up to max rows written to out (out may be NULL to count).
 * Returns how many there are. Names are valid until the next configure. */
size_t dt_rb_snapshot(const struct dt_rb *rb, uint64_t now, struct dt_rb_row *out, size_t max);

#endif
