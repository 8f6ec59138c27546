// SPDX-License-Identifier: MIT
/* Routing decisions; see router.h and docs/routing.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "balance.h"
#include "router.h"
#include "sticky.h"

#define NS_PER_MS 1000000ull
/* Conversations remembered by sticky classes, all classes together: 96 KB. */
#define STICKY_ENTRIES 4096
#define STICKY_TTL_MS 300000
/* The budget window is kept as this many buckets and slides one at a time. */
#define BUDGET_BUCKETS 10

struct budget_bucket {
	uint64_t epoch;      /* now / bucket width, when last counted into */
	unsigned requests;
	unsigned retries;
};

struct dt_router {
	struct dt_router_opts opts;      /* defaults filled in */
	struct dt_health *health;        /* not owned: whether providers and models are usable */
	struct dt_model_class *classes;  /* own copy, members included */
	size_t n_classes;
	/* per class, per member: the balanced strategies' configuration and
	 * state, carried over a set_classes by (provider, model) */
	struct dt_balance_member **balance;
	/* detour's key only: the application's keys differ from one application
	 * to the next, so one application's rejected key says nothing about the
	 * others' and is not remembered */
	uint64_t key_disabled_until[DT_MAX_PROVIDERS];
	struct budget_bucket budget[BUDGET_BUCKETS];
	/* sticky classes' conversations, by (class name, conversation): kept
	 * over a set_classes, checked against the members at each use */
	struct dt_sticky *sticky;
};

/* Taken whole when no options are given. Otherwise a field left 0 takes its
 * value from here, except the budget's share and floor: for those 0 is a
 * setting of its own (only the floor; strictly proportional). */
static const struct dt_router_opts defaults = {
	.retry_budget_percent = 20,
	.retry_budget_min = 10,
	.budget_window_ms = 10000,
	.key_disable_ms = 300000,
};

static unsigned or_default(unsigned value, unsigned def)
{
	return value ? value : def;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void dt_router_set_opts(struct dt_router *r, const struct dt_router_opts *o)
{
	if (!o)
		o = &defaults;
	r->opts = (struct dt_router_opts){
		.retry_budget_percent = o->retry_budget_percent,
		.retry_budget_min = o->retry_budget_min,
		.budget_window_ms = or_default(o->budget_window_ms, defaults.budget_window_ms),
		.key_disable_ms = or_default(o->key_disable_ms, defaults.key_disable_ms),
	};
}

struct dt_router *dt_router_new(const struct dt_router_opts *o, struct dt_health *health)
{
	struct dt_router *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->sticky = dt_sticky_new(STICKY_ENTRIES);
	if (!r->sticky) {
		free(r);
		return NULL;
	}
	dt_router_set_opts(r, o);
	r->health = health;
	return r;
}

static void free_classes(struct dt_model_class *classes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(classes[i].members);
	free(classes);
}

static void free_balance(struct dt_balance_member **balance, size_t n)
{
	for (size_t i = 0; balance && i < n; i++)
		free(balance[i]);
	free(balance);
}

void dt_router_free(struct dt_router *r)
{
	if (!r)
		return;
	free_classes(r->classes, r->n_classes);
	free_balance(r->balance, r->n_classes);
	dt_sticky_free(r->sticky);
	free(r);
}

/* ---- classes ------------------------------------------------------------ */

const char *dt_router_caps_str(unsigned caps, char *buf, size_t len)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ DT_CAP_TOOLS, "tools" }, { DT_CAP_IMAGES, "images" },
		{ DT_CAP_JSON, "json" }, { DT_CAP_CONTEXT, "context" },
	};
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(caps & names[i].bit) || used + 1 >= len)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "+" : "",
					 names[i].name);
		if (used >= len)
			used = len - 1;
	}
	return buf;
}

static const struct dt_class_member *class_member(const struct dt_model_class *c,
						  uint32_t provider_id, const char *model)
{
	for (size_t i = 0; i < c->n_members; i++)
		if (c->members[i].provider_id == provider_id &&
		    strcmp(c->members[i].model, model) == 0)
			return &c->members[i];
	return NULL;
}

/* The member (provider_id, model) is, and its class through *cls unless cls
 * is NULL; NULL when no class holds it. */
static const struct dt_class_member *find_member(const struct dt_router *r, uint32_t provider_id,
						 const char *model, const struct dt_model_class **cls)
{
	for (size_t i = 0; i < r->n_classes; i++) {
		const struct dt_class_member *m = class_member(&r->classes[i], provider_id, model);

		if (m && cls)
			*cls = &r->classes[i];
		if (m)
			return m;
	}
	return NULL;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool member_valid(const struct dt_model_class *classes, size_t ci, size_t mi)
{
	const struct dt_model_class *c = &classes[ci];
	const struct dt_class_member *m = &c->members[mi];

	if (m->provider_id >= DT_MAX_PROVIDERS || !terminated(m->model, DT_MODEL_LEN) ||
	    !m->model[0])
		return false;
	/* provider state is per provider: a second member there would meet the
	 * same outage, the same rate limit and the same key */
	for (size_t j = 0; j < mi; j++)
		if (c->members[j].provider_id == m->provider_id)
			return false;
	/* a request's (provider, model) must name one class */
	for (size_t k = 0; k < ci; k++)
		if (class_member(&classes[k], m->provider_id, m->model))
			return false;
	return true;
}

static bool classes_valid(const struct dt_model_class *classes, size_t n)
{
	for (size_t ci = 0; ci < n; ci++) {
		if (!terminated(classes[ci].name, DT_NAME_LEN))
			return false;
		for (size_t mi = 0; mi < classes[ci].n_members; mi++)
			if (!member_valid(classes, ci, mi))
				return false;
	}
	return true;
}

static struct dt_model_class *copy_classes(const struct dt_model_class *src, size_t n)
{
	/* never calloc(0): its NULL would read as a failure */
	struct dt_model_class *copy = calloc(n ? n : 1, sizeof(*copy));

	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t bytes = src[i].n_members * sizeof(*src[i].members);

		copy[i] = src[i];
		copy[i].members = malloc(bytes ? bytes : 1);
		if (!copy[i].members) {
			free_classes(copy, i);
			return NULL;
		}
		memcpy(copy[i].members, src[i].members, bytes);
	}
	return copy;
}

/* The balance state of (provider_id, model) in the current classes, NULL
 * when no class holds it. */
static struct dt_balance_member *balance_of(const struct dt_router *r, uint32_t provider_id,
					    const char *model)
{
	for (size_t i = 0; i < r->n_classes; i++) {
		const struct dt_class_member *m = class_member(&r->classes[i], provider_id, model);

		if (m)
			return &r->balance[i][m - r->classes[i].members];
	}
	return NULL;
}

/* Each member's weight and price, and the state it had in r's classes. */
static struct dt_balance_member **new_balance(const struct dt_router *r,
					      const struct dt_model_class *classes, size_t n)
{
	struct dt_balance_member **balance = calloc(n ? n : 1, sizeof(*balance));

	for (size_t i = 0; balance && i < n; i++) {
		balance[i] = calloc(classes[i].n_members ? classes[i].n_members : 1, sizeof(**balance));
		if (!balance[i]) {
			free_balance(balance, i);
			return NULL;
		}
		for (size_t j = 0; j < classes[i].n_members; j++) {
			const struct dt_class_member *m = &classes[i].members[j];
			const struct dt_balance_member *old = balance_of(r, m->provider_id, m->model);

			if (old)
				balance[i][j] = *old;
			balance[i][j].weight = m->weight;
			balance[i][j].price = (uint64_t)m->price_in + m->price_out;
		}
	}
	return balance;
}

int dt_router_set_classes(struct dt_router *r, const struct dt_model_class *classes, size_t n)
{
	struct dt_model_class *copy;
	struct dt_balance_member **balance;

	if (!classes_valid(classes, n))
		return -EINVAL;
	copy = copy_classes(classes, n);
	balance = new_balance(r, classes, n);
	if (!copy || !balance) {
		free_classes(copy, copy ? n : 0);
		free_balance(balance, n);
		return -ENOMEM;
	}
	free_classes(r->classes, r->n_classes);
	free_balance(r->balance, r->n_classes);
	r->classes = copy;
	r->balance = balance;
	r->n_classes = n;
	return 0;
}

/* ---- plans -------------------------------------------------------------- */

/* When detour's key for a provider may be used again (0: now). */
static uint64_t key_usable_at(const struct dt_router *r, uint32_t provider_id, uint32_t key_slot,
			      uint64_t now)
{
	uint64_t until = r->key_disabled_until[provider_id];

	return key_slot == DT_KEY_SLOT_DETOUR && until > now ? until : 0;
}

struct candidate {
	struct dt_attempt a;
	size_t member; /* its index in the class */
	bool usable;   /* by the health engine, not just readmitted */
	bool healthy;  /* usable and not degraded */
	uint64_t rank; /* 0 when routable now, else when it becomes usable */
};

/* What m lacks of what the request needs (DT_CAP_* bits), 0 when it can
 * serve it. Undeclared capabilities and an unknown window are not held
 * against a member: nothing says it cannot. */
static unsigned unfit(const struct dt_class_member *m, const struct dt_route_needs *needs)
{
	unsigned missing = m->caps_declared ? needs->caps & ~m->caps : 0;

	if (m->context_tokens && needs->tokens > m->context_tokens)
		missing |= DT_CAP_CONTEXT;
	return missing;
}

/* Stable insertion sort by rank: usable candidates keep their order in
 * front, the others follow, soonest usable first. */
static void sort_by_rank(struct candidate *c, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct candidate key = c[i];
		size_t j = i;

		for (; j > 0 && c[j - 1].rank > key.rank; j--)
			c[j] = c[j - 1];
		c[j] = key;
	}
}

static bool balanced(enum dt_class_strategy s, enum dt_balance_strategy *out)
{
	switch (s) {
	case DT_STRATEGY_LEAST_LATENCY: *out = DT_BALANCE_LEAST_LATENCY; return true;
	case DT_STRATEGY_CHEAPEST:      *out = DT_BALANCE_CHEAPEST; return true;
	case DT_STRATEGY_COMBINED:      *out = DT_BALANCE_COMBINED; return true;
	case DT_STRATEGY_WEIGHTED:      *out = DT_BALANCE_WEIGHTED; return true;
	case DT_STRATEGY_PRIORITY:
		break;
	}
	return false;
}

/* The key of a conversation in a class's scope. */
static uint64_t sticky_key(const struct dt_model_class *cls, const struct dt_route_needs *needs)
{
	return dt_sticky_hash(needs->conversation, cls->name, strlen(cls->name));
}

static uint64_t sticky_ttl_ns(const struct dt_model_class *cls)
{
	return (uint64_t)or_default(cls->sticky_ttl_ms, STICKY_TTL_MS) * NS_PER_MS;
}

/* A sticky conversation's member among the n routable candidates in front:
 * its index, or n when it has none or that member cannot take it now. */
static size_t sticky_pick(const struct dt_router *r, const struct dt_model_class *cls,
			  const struct dt_route_needs *needs, const struct candidate *cands,
			  size_t n, uint64_t now, enum dt_sticky_note *note)
{
	uint32_t provider_id;

	*note = DT_STICKY_NONE;
	if (!cls->sticky || !needs || !needs->conversation)
		return n;
	*note = DT_STICKY_NEW;
	if (!dt_sticky_get(r->sticky, sticky_key(cls, needs), sticky_ttl_ns(cls), now, &provider_id))
		return n;
	*note = DT_STICKY_MOVED;
	for (size_t i = 0; i < n; i++) {
		if (cands[i].a.provider_id == provider_id && cands[i].healthy) {
			*note = DT_STICKY_HIT;
			return i;
		}
	}
	return n;
}

/* The routable candidates (usable, with a usable key: in front after
 * sort_by_rank, the health engine putting the readmitted after them): a
 * sticky conversation's member goes first, the others keep their order
 * (no new conversation is placed, so the strategy is not asked: its
 * round-robin credit counts placements); otherwise a balanced class's
 * strategy reorders them. The others stay behind. */
static void order_routable(struct dt_router *r, const struct dt_model_class *cls,
			   const struct dt_route_needs *needs, struct candidate *cands, size_t k,
			   uint64_t seed, uint64_t now, enum dt_sticky_note *note)
{
	const struct dt_balance_opts o = { .latency_factor_percent = cls->latency_factor_percent };
	struct candidate routable[DT_MAX_PROVIDERS];
	size_t order[DT_MAX_PROVIDERS], n = 0, stuck;
	enum dt_balance_strategy s;
	uint64_t prng = seed;

	while (n < k && cands[n].usable && cands[n].rank == 0)
		n++;
	stuck = sticky_pick(r, cls, needs, cands, n, now, note);
	if (stuck < n) {
		struct candidate first = cands[stuck];

		memmove(&cands[1], &cands[0], stuck * sizeof(*cands));
		cands[0] = first;
		return;
	}
	if (!balanced(cls->strategy, &s))
		return;
	for (size_t i = 0; i < n; i++) {
		routable[cands[i].member] = cands[i];
		order[i] = cands[i].member;
	}
	dt_balance_order(s, r->balance[cls - r->classes], order, n, &prng, &o, now);
	for (size_t i = 0; i < n; i++)
		cands[i] = routable[order[i]];
}

/* When a member's budget can take the request (0: now, or no budgets). */
static uint64_t budget_usable_at(const struct dt_plan_budget *b, const struct dt_class_member *cm,
				 uint32_t slot, uint64_t now)
{
	return b ? b->usable_at(b->ctx, cm->provider_id, slot, now) : 0;
}

/* The members of cls that can serve the request, the original first (in
 * order, whose size is returned), noting the others. *original_unfit: the
 * original is not among them. */
static size_t fit_members(const struct dt_model_class *cls, const struct dt_class_member *original,
			  const struct dt_route_needs *needs, const struct dt_class_member **order,
			  bool *original_unfit, struct dt_plan_notes *notes)
{
	size_t n = 0;

	*original_unfit = needs && unfit(original, needs);
	if (!*original_unfit)
		order[n++] = original;
	for (size_t i = 0; i < cls->n_members; i++) {
		const struct dt_class_member *cm = &cls->members[i];
		unsigned missing = needs ? unfit(cm, needs) : 0;

		if (missing && notes)
			notes->unfit[notes->n_unfit++] = (struct dt_unfit){ cm->provider_id, missing };
		if (!missing && cm != original)
			order[n++] = cm;
	}
	return n;
}

/* The candidates for order[0 .. n) in the health engine's order (into
 * cands, whose count is returned), with members whose key is disabled or
 * whose budget cannot take the request moved behind the routable ones;
 * `last` ranks them behind everything. *mode (may be NULL): whether the
 * engine capped or panicked. */
static size_t rank_members(struct dt_router *r, const struct dt_model_class *cls,
			   const struct dt_class_member *original,
			   const struct dt_class_member **order, size_t n, bool last,
			   const struct dt_plan_budget *budget, uint64_t now,
			   struct candidate *cands, enum dt_health_mode *mode)
{
	struct dt_health_member members[DT_MAX_PROVIDERS] = {{0}}; /* zeroed: gcc cannot see that n of them are set */
	struct dt_health_rank ranks[DT_MAX_PROVIDERS];
	enum dt_health_mode m;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		members[i] = (struct dt_health_member){ order[i]->provider_id, order[i]->model };
	m = dt_health_order(r->health, members, n, now, ranks);
	if (mode)
		*mode = m;
	for (size_t i = 0; i < n; i++) {
		const struct dt_class_member *cm = order[ranks[i].member];
		uint32_t slot = cm == original ? DT_KEY_SLOT_APP : DT_KEY_SLOT_DETOUR;
		/* a disabled key and an exhausted budget both hold a member back */
		uint64_t key_at = max_u64(key_usable_at(r, cm->provider_id, slot, now),
					  budget_usable_at(budget, cm, slot, now));
		bool routed = ranks[i].usable || ranks[i].readmitted;

		if (!routed && ranks[i].usable_at == UINT64_MAX)
			continue; /* drained by the operator: never, not even in panic */
		cands[k] = (struct candidate){
			.a = { cm->provider_id, cm->model, slot,
			       cls->quality == DT_QUALITY_ALWAYS ||
			       (cls->quality == DT_QUALITY_FAILOVER && cm != original) },
			.member = (size_t)(cm - cls->members),
			.usable = ranks[i].usable,
			.healthy = ranks[i].usable && ranks[i].state != DT_DEGRADED,
			.rank = last ? UINT64_MAX : routed ? key_at : max_u64(ranks[i].usable_at, key_at),
		};
		k++;
	}
	return k;
}

size_t dt_router_plan(struct dt_router *r, uint32_t provider_id, const char *model,
		      const struct dt_route_needs *needs, uint64_t seed, uint64_t now,
		      struct dt_attempt *out, size_t max, struct dt_plan_notes *notes)
{
	return dt_router_plan_budgeted(r, provider_id, model, needs, seed, now, NULL, out, max,
				       notes);
}

size_t dt_router_plan_budgeted(struct dt_router *r, uint32_t provider_id, const char *model,
			       const struct dt_route_needs *needs, uint64_t seed, uint64_t now,
			       const struct dt_plan_budget *budget, struct dt_attempt *out,
			       size_t max, struct dt_plan_notes *notes)
{
	/* a class holds each provider once, so at most DT_MAX_PROVIDERS members */
	const struct dt_class_member *order[DT_MAX_PROVIDERS];
	struct candidate cands[DT_MAX_PROVIDERS];
	const struct dt_model_class *cls;
	const struct dt_class_member *original;
	enum dt_health_mode mode;
	enum dt_sticky_note sticky;
	bool original_unfit;
	size_t n, k, i;

	if (notes) {
		notes->mode = DT_HEALTH_NORMAL;
		notes->sticky = DT_STICKY_NONE;
		notes->n_unfit = 0;
	}
	if (max == 0)
		return 0;
	original = find_member(r, provider_id, model, &cls);
	if (!original) {
		out[0] = (struct dt_attempt){ provider_id, model, DT_KEY_SLOT_APP, false };
		return 1;
	}
	/* capability tiers: the health engine ranks the members that can serve
	 * (its ejection cap counts them); an unfit original is still tried,
	 * last, as without detour */
	n = fit_members(cls, original, needs, order, &original_unfit, notes);
	k = rank_members(r, cls, original, order, n, false, budget, now, cands, &mode);
	if (original_unfit)
		k += rank_members(r, cls, original, &original, 1, true, budget, now, cands + k, NULL);
	sort_by_rank(cands, k);
	order_routable(r, cls, needs, cands, k, seed, now, &sticky);
	for (i = 0; i < k && i < max; i++)
		out[i] = cands[i].a;
	if (notes) {
		notes->mode = mode;
		notes->sticky = sticky;
	}
	return i;
}

bool dt_router_reads_needs(const struct dt_router *r, uint32_t provider_id, const char *model)
{
	const struct dt_model_class *cls;

	if (!find_member(r, provider_id, model, &cls))
		return false;
	for (size_t i = 0; i < cls->n_members; i++)
		if (cls->members[i].caps_declared || cls->members[i].context_tokens)
			return true;
	return cls->sticky;
}

void dt_router_stick(struct dt_router *r, const struct dt_attempt *a,
		     const struct dt_route_needs *needs, uint64_t now)
{
	const struct dt_model_class *cls;

	if (!needs || !needs->conversation || !find_member(r, a->provider_id, a->model, &cls) ||
	    !cls->sticky)
		return;
	dt_sticky_put(r->sticky, sticky_key(cls, needs), a->provider_id, now);
}

void dt_router_attempt_start(struct dt_router *r, const struct dt_attempt *a)
{
	struct dt_balance_member *b = balance_of(r, a->provider_id, a->model);

	if (b)
		dt_balance_start(b);
}

void dt_router_attempt_end(struct dt_router *r, const struct dt_attempt *a, uint64_t ttft_ns,
			   uint64_t now)
{
	struct dt_balance_member *b = balance_of(r, a->provider_id, a->model);

	if (b)
		dt_balance_end(b, ttft_ns, now, NULL);
}

/* ---- blame -------------------------------------------------------------- */

/* Phrases providers use for a prompt that does not fit the model's window:
 * OpenAI, Groq, DeepSeek, vLLM ("maximum context length", code
 * context_length_exceeded), Anthropic ("prompt is too long"), Bedrock
 * ("input is too long"), Gemini ("exceeds the maximum number of tokens"). */
static const char *const context_phrases[] = {
	"context_length_exceeded", "context length", "context window",
	"prompt is too long", "input is too long", "exceeds the maximum number of tokens",
	NULL,
};

/* Content moderation refusals: the same prompt fails elsewhere too. */
static const char *const content_policy_phrases[] = {
	"content_policy_violation", "content_filter", "content policy", "safety",
	NULL,
};

/* Case-insensitive search in a body that need not be NUL-terminated. */
static bool mentions(const char *body, size_t len, const char *phrase)
{
	size_t n = strlen(phrase);

	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(body + i, phrase, n) == 0)
			return true;
	return false;
}

static bool mentions_any(const char *body, size_t len, const char *const *phrases)
{
	for (; *phrases; phrases++)
		if (mentions(body, len, *phrases))
			return true;
	return false;
}

enum dt_blame dt_router_classify_status(int status, const char *body, size_t len)
{
	/* a server error, or an answer that is no HTTP status at all */
	if (status < 100 || status >= 500)
		return DT_BLAME_PROVIDER;
	if (status < 400)
		return DT_BLAME_NONE;
	/* OpenAI answers an exhausted account with 429 insufficient_quota:
	 * waiting does not help, it is the key's billing */
	if (status == 429)
		return mentions(body, len, "insufficient_quota") ? DT_BLAME_KEY : DT_BLAME_RATE_LIMIT;
	/* transient, retried by the OpenAI and Anthropic SDKs themselves */
	if (status == 408 || status == 409)
		return DT_BLAME_PROVIDER;
	if (status == 401 || status == 402 || status == 403)
		return DT_BLAME_KEY;
	/* checked first: a refusal stays a refusal whatever else it says */
	if (mentions_any(body, len, content_policy_phrases))
		return DT_BLAME_REQUEST;
	return mentions_any(body, len, context_phrases) ? DT_BLAME_CONTEXT : DT_BLAME_REQUEST;
}

/* ---- keys --------------------------------------------------------------- */

void dt_router_report(struct dt_router *r, const struct dt_attempt *a, enum dt_blame b, uint64_t now)
{
	/* a passthrough to a provider the router cannot know */
	if (a->provider_id >= DT_MAX_PROVIDERS || a->key_slot != DT_KEY_SLOT_DETOUR)
		return;
	switch (b) {
	case DT_BLAME_NONE:
	case DT_BLAME_REQUEST:
	case DT_BLAME_CONTEXT:
		/* providers check credentials before they read the request */
		r->key_disabled_until[a->provider_id] = 0;
		break;
	case DT_BLAME_KEY:
		r->key_disabled_until[a->provider_id] = now + (uint64_t)r->opts.key_disable_ms * NS_PER_MS;
		break;
	case DT_BLAME_PROVIDER:
	case DT_BLAME_RATE_LIMIT:
		break; /* the health engine's to judge */
	}
}

const struct dt_model_class *dt_router_class_of(const struct dt_router *r, uint32_t provider_id,
						const char *model, const struct dt_class_member **member)
{
	const struct dt_model_class *cls = NULL;
	const struct dt_class_member *m = find_member(r, provider_id, model, &cls);

	if (member)
		*member = m;
	return m ? cls : NULL;
}

bool dt_router_larger_context(const struct dt_router *r, const struct dt_attempt *failed,
			      const struct dt_attempt *next)
{
	const struct dt_class_member *f = find_member(r, failed->provider_id, failed->model, NULL);
	const struct dt_class_member *n = find_member(r, next->provider_id, next->model, NULL);

	return f && n && f->context_tokens && n->context_tokens > f->context_tokens;
}

/* ---- retry budget ------------------------------------------------------- */

/* The bucket now falls in, emptied when it last held an older bucket's counts. */
static struct budget_bucket *current_bucket(struct dt_router *r, uint64_t now)
{
	uint64_t width = (uint64_t)r->opts.budget_window_ms * NS_PER_MS / BUDGET_BUCKETS;
	uint64_t epoch = now / width;
	struct budget_bucket *b = &r->budget[epoch % BUDGET_BUCKETS];

	if (b->epoch != epoch)
		*b = (struct budget_bucket){ .epoch = epoch };
	return b;
}

void dt_router_request(struct dt_router *r, uint64_t now)
{
	current_bucket(r, now)->requests++;
}

bool dt_router_retry_take(struct dt_router *r, uint64_t now)
{
	struct budget_bucket *cur = current_bucket(r, now);
	uint64_t requests = 0, retries = 0, allowed;

	for (size_t i = 0; i < BUDGET_BUCKETS; i++) {
		const struct budget_bucket *b = &r->budget[i];

		/* unsigned: a bucket from the future (clock went back) is out too */
		if (cur->epoch - b->epoch < BUDGET_BUCKETS) {
			requests += b->requests;
			retries += b->retries;
		}
	}
	allowed = max_u64(r->opts.retry_budget_min, requests * r->opts.retry_budget_percent / 100);
	if (retries >= allowed)
		return false;
	cur->retries++;
	return true;
}
