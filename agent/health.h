/* SPDX-License-Identifier: MIT */
/* The health engine: a verdict per provider and per (provider, model), from
 * request outcomes, rate-limit headers, kernel TCP signals, active probes
 * and operator overrides; answers the router's questions (usable now, in
 * what order, may a trial go there) and says when to probe. Semantics of
 * Envoy's outlier detection and resilience4j's circuit breaker.
 * Pure logic with an injected clock (`now`, CLOCK_MONOTONIC ns): no I/O, no
 * threads, no allocation after dt_health_new. Every state change is handed
 * to a callback at once. Semantics, defaults and use: docs/health.md. */
#ifndef DT_HEALTH_H
#define DT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"
#include "ratelimit.h"

/* Models tracked per provider; the least recently used healthy one makes
 * room for a new one. */
#define DT_HEALTH_MODEL_SLOTS DT_MODELS_PER_PROVIDER
#define DT_HEALTH_MODEL_LEN   DT_MODEL_LEN
#define DT_HEALTH_REASON_LEN  64

/* Every field 0 takes its default (docs/health.md says why each is what it
 * is). */
struct dt_health_opts {
	unsigned consecutive_failures;     /* failures in a row that eject (5) */
	unsigned window_ms;                /* sliding window of the rates, 10 buckets (30000) */
	unsigned min_calls;                /* calls in the window before a rate counts (10) */
	unsigned failure_rate_percent;     /* failure rate that ejects (50) */
	unsigned slow_rate_percent;        /* slow-call rate that degrades (50) */
	unsigned poor_rate_percent;        /* refused or cut answers that degrade (50) */
	unsigned slow_factor_percent;      /* slow: TTFT above this share of the baseline (300) */
	unsigned slow_min_ms;              /* ... and above this (1000) */
	unsigned slow_ceiling_ms;          /* slow whatever the baseline (10000) */
	unsigned connect_slow_min_ms;      /* connect latency: slow above max(factor x baseline, this) (200) */
	unsigned connect_ceiling_ms;       /* ... or above this (3000) */
	unsigned baseline_samples;         /* samples before a baseline judges (10) */
	unsigned retransmit_percent;       /* retransmitted share of segments that degrades (5) */
	unsigned retransmit_min_segments;  /* segments in the window before it counts (200) */
	unsigned eject_base_ms;            /* first ejection (10000) */
	unsigned eject_max_ms;             /* longest ejection (300000) */
	unsigned eject_decay_ms;           /* healthy time that takes one step off the next ejection (60000) */
	unsigned trial_requests;           /* trials admitted while half-open (3) */
	unsigned trial_success_percent;    /* successful share of trials that closes (100) */
	unsigned trial_timeout_ms;         /* a trial never reported frees its slot after (30000) */
	unsigned models_down_for_provider; /* models ejected at once that eject their provider (2) */
	unsigned class_max_ejected_percent;/* share of a member list that may be ejected (50) */
	unsigned rate_limit_default_ms;    /* a 429 or exhausted limit saying nothing of its reset (1000) */
	unsigned rate_limit_token_floor;   /* fewer tokens left than this: exhausted (1000) */
	unsigned probe_interval_ms;        /* probe period of a provider in service (15000) */
	unsigned probe_interval_down_ms;   /* ... while DOWN, PROBING or failing (2000) */
	unsigned probe_interval_max_ms;    /* longest, backed off while traffic proves health (120000) */
	unsigned probe_jitter_percent;     /* each interval drawn within +- this share (20) */
	uint64_t seed;                     /* jitter stream (0: a fixed one) */
};

/* Why a verdict is what it is; dt_health_verdict's reason_text says it
 * with its numbers ("5 consecutive failures"). */
enum dt_health_reason {
	DT_HR_NONE,                 /* nothing seen against it */
	DT_HR_CONSECUTIVE_FAILURES,
	DT_HR_FAILURE_RATE,
	DT_HR_CONNECTS_FAILING,     /* kernel: connects failing or reset, none succeeding */
	DT_HR_MODELS_DOWN,          /* several of the provider's models ejected at once */
	DT_HR_TRIAL_FAILED,         /* half-open trials failed: ejected again, longer */
	DT_HR_EJECTION_ENDED,       /* half-open: trials admitted */
	DT_HR_TRIALS_PASSED,        /* closed again */
	DT_HR_RATE_LIMITED,         /* a 429 */
	DT_HR_LIMIT_EXHAUSTED,      /* rate-limit headers: nothing left until the reset */
	DT_HR_SLOW_CALLS,
	DT_HR_POOR_ANSWERS,         /* refusals and cut answers */
	DT_HR_SLOW_CONNECTS,
	DT_HR_RETRANSMITS,
	DT_HR_RECOVERED,            /* a rate limit or degradation is over */
	DT_HR_DRAINED,              /* operator: never route */
	DT_HR_FORCED,               /* operator: always route */
	DT_HR_CLEARED,              /* operator override removed */
	DT_HR_FORGOTTEN,            /* its model slot was taken by another model */
	DT_HR_NO_ROUTE,             /* netlink: no route to any of its endpoints */
	DT_HR_LINK_DOWN,            /* netlink: the interface they go out of is down */
	DT_HR_PATH_BACK,            /* ... routed again: half-open, trials admitted */
	DT_HR_COUNT                 /* keep last: detourctl names each (format.c) */
};

/* enum dt_health_override (NONE, DRAIN, FORCE) is in detour.h: the
 * published verdicts and the overrides map carry it too. */

/* What became of one attempt, as the proxy saw it. */
enum dt_outcome_kind {
	DT_OUTCOME_OK,                  /* an answer (2xx, or a 4xx the request caused) */
	DT_OUTCOME_SERVER_ERROR,        /* 5xx, 408, 409: against the model */
	DT_OUTCOME_FIRST_BYTE_TIMEOUT,  /* no answer head in time: against the model */
	DT_OUTCOME_CONNECT_FAILED,      /* refused, unreachable, timed out: against the provider */
	DT_OUTCOME_TLS_FAILED,          /* against the provider */
	DT_OUTCOME_RESET,               /* reset or closed before the answer: against the provider */
	DT_OUTCOME_RATE_LIMITED,        /* 429: set aside, not a failure */
	DT_OUTCOME_KEY_REFUSED,         /* 401/402/403: the key's fault, not the provider's */
	DT_OUTCOME_POOR_ANSWER,         /* answered, but refused or cut short (quality.c) */
	DT_OUTCOME_CANCELLED,           /* lost a hedge race: cancelled before its commit point; ttft_ns is how long it had waited, a lower bound (0: not a stream) */
};

struct dt_outcome {
	enum dt_outcome_kind kind;
	int status;               /* HTTP status, 0 when none came */
	uint64_t started;         /* `now` when the attempt was sent: outcomes of attempts sent before an ejection began decide nothing */
	uint64_t ttft_ns;         /* time to first token of a stream; 0 when unknown (a whole answer's head says nothing of it) */
	uint64_t total_ns;        /* to the answer's end */
	uint64_t retry_after_ms;  /* a 429's, parsed (ratelimit.h); 0: unknown */
};

/* Kernel TCP counters of one provider since the previous sample. */
struct dt_tcp_sample {
	uint32_t connects;             /* completed */
	uint32_t connect_failures;
	uint32_t resets;               /* received */
	uint32_t retransmits;
	uint32_t segments_out;         /* of the connections the retransmits belong to */
	uint64_t connect_latency_ns;   /* mean over `connects`; 0: unknown */
};

struct dt_health_change {
	uint32_t provider_id;
	const char *model;           /* NULL: the provider itself */
	enum dt_state from, to;
	enum dt_health_reason reason;
	const char *reason_text;
	uint64_t since;              /* when it changed */
	uint64_t until;              /* DOWN, RATE_LIMITED: when that ends (0: open-ended) */
};

typedef void (*dt_health_change_fn)(void *ctx, const struct dt_health_change *c);

struct dt_health;

/* o NULL: every default. change may be NULL. NULL when out of memory. */
struct dt_health *dt_health_new(const struct dt_health_opts *o, dt_health_change_fn change,
				void *ctx);
/* New options (a reload); every state stays. */
void dt_health_set_opts(struct dt_health *h, const struct dt_health_opts *o);
void dt_health_free(struct dt_health *h);
/* A provider gone from the configuration: everything known of it (circuits,
 * models, probe schedule) is dropped, so a provider given its id later
 * starts afresh. */
void dt_health_forget(struct dt_health *h, uint32_t provider_id);

/* ---- inputs (model NULL or "": the provider as a whole) ------------------ */

/* An attempt is about to go to (provider, model) at `now` (kept by the
 * caller as dt_outcome.started). False when it is half-open and every
 * trial slot is taken: send it elsewhere. Otherwise takes a trial slot
 * when half-open. */
bool dt_health_begin(struct dt_health *h, uint32_t provider_id, const char *model, uint64_t now);
void dt_health_outcome(struct dt_health *h, uint32_t provider_id, const char *model,
		       const struct dt_outcome *o, uint64_t now);
/* Rate-limit headers of any answer (model: the one asked for). */
void dt_health_ratelimit(struct dt_health *h, uint32_t provider_id, const char *model,
			 const struct dt_ratelimit *rl, uint64_t now);
void dt_health_tcp(struct dt_health *h, uint32_t provider_id, const struct dt_tcp_sample *s,
		   uint64_t now);
/* An active probe's result; latency_ns from its start to its answer. */
void dt_health_probe(struct dt_health *h, uint32_t provider_id, bool ok, uint64_t latency_ns,
		     uint64_t now);
void dt_health_override(struct dt_health *h, uint32_t provider_id, const char *model,
			enum dt_health_override ov, uint64_t now);

/* What netlink says of the way to a provider's endpoints. */
enum dt_health_path {
	DT_PATH_OK,         /* routed (again, or through a new route) */
	DT_PATH_NO_ROUTE,   /* none of its endpoints has a route */
	DT_PATH_LINK_DOWN,  /* ... the interface they go out of is down */
};
/* Lost: the provider is DOWN at once and held there until the path is
 * back, whatever the ejection timer says; not an ejection of its making, so
 * neither its ejection count nor its level grows. OK after a loss:
 * half-open at once (an ejection it had before runs out first). OK in any
 * case: its probe is due now, the new path is worth a look. */
void dt_health_path(struct dt_health *h, uint32_t provider_id, enum dt_health_path path,
		    uint64_t now);

/* Changes due to time alone (an ejection ends, a rate limit resets, slow
 * calls age out of the window): call at dt_health_next_event. */
void dt_health_tick(struct dt_health *h, uint64_t now);
/* When the next such change may come (UINT64_MAX: none). */
uint64_t dt_health_next_event(const struct dt_health *h);

/* ---- queries ------------------------------------------------------------ */

/* May an attempt go to (provider, model) now: neither is ejected,
 * rate-limited or drained, a half-open one has a trial slot free. */
bool dt_health_usable(struct dt_health *h, uint32_t provider_id, const char *model, uint64_t now);

struct dt_health_member {
	uint32_t provider_id;
	const char *model;
};

struct dt_health_rank {
	size_t member;        /* index in the list given */
	enum dt_state state;  /* the worse of the provider's and the model's */
	bool usable;
	bool readmitted;      /* ejected, but routed anyway: the ejection cap or panic */
	uint64_t usable_at;   /* not usable: when it may be again (UINT64_MAX: drained) */
};

enum dt_health_mode {
	DT_HEALTH_NORMAL,
	DT_HEALTH_CAPPED,  /* more than the cap ejected: the least bad readmitted */
	DT_HEALTH_PANIC,   /* none usable: the least bad readmitted */
};

/* Order members (a model class) for routing into out[n]: usable ones in
 * the given order, healthy before degraded; readmitted ones next; the rest
 * soonest usable first; drained last. n <= DT_MAX_PROVIDERS. */
enum dt_health_mode dt_health_order(struct dt_health *h, const struct dt_health_member *m,
				    size_t n, uint64_t now, struct dt_health_rank *out);

struct dt_health_verdict {
	enum dt_state state;
	enum dt_health_reason reason;
	char reason_text[DT_HEALTH_REASON_LEN];
	enum dt_health_override override;
	uint64_t since;
	uint64_t until;                 /* DOWN: ejection end; RATE_LIMITED: reset */
	unsigned ejections;             /* in all */
	unsigned eject_level;           /* the next ejection lasts base << level (decays) */
	unsigned consecutive_failures;
	uint64_t ttft_baseline_ns;      /* a model's; a provider's over all its models */
	uint64_t connect_baseline_ns;   /* a provider's */
	uint64_t total_avg_ns;          /* moving average of whole answers */
	unsigned calls;                 /* in the window */
	unsigned error_rate_percent;
	unsigned slow_rate_percent;
	int last_status;
};

/* What an attempt to (provider, model) usually takes, for a hedge deadline:
 * the time to first token of a stream and the time of a whole answer,
 * each 0 until baseline_samples were seen. An untracked model's are its
 * provider's. */
void dt_health_latency(struct dt_health *h, uint32_t provider_id, const char *model,
		       uint64_t now, uint64_t *ttft_ns, uint64_t *total_ns);

/* false when the model is not tracked (yet). */
bool dt_health_verdict(struct dt_health *h, uint32_t provider_id, const char *model,
		       uint64_t now, struct dt_health_verdict *out);

/* The models of the provider the engine tracks now, into out (pointers
 * into the engine, valid until its next input). Returns how many. */
size_t dt_health_models(const struct dt_health *h, uint32_t provider_id,
			const char *out[DT_HEALTH_MODEL_SLOTS]);

/* When the provider's next probe is due. Each probe result schedules the
 * next; a change to DOWN or PROBING brings it forward. */
uint64_t dt_health_probe_due(const struct dt_health *h, uint32_t provider_id);

const char *dt_health_state_name(enum dt_state s);

#endif
