// SPDX-License-Identifier: MIT
/* Rate-limit budgets; see ratebudget.h and docs/routing.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratebudget.h"
#include "router.h"

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
/* The window is the current second and the 60 before it: a request made at
 * 0.9 s still counts at 60.9 s, as it does at the provider, so our view
 * errs on the safe side by up to a second. */
#define WINDOW_S 60
#define RING 64                 /* > WINDOW_S: a slot is reused only after it left */
#define DEFAULT_OUTPUT_TOKENS 1024
#define DEFAULT_PACE_WAIT_MS 2000
#define DEFAULT_PACE_QUEUE 100
#define UNLIMITED INT64_MAX

struct bucket {
	uint64_t second;
	uint64_t n[DT_RB_DIMS];
};

struct ring {
	struct bucket b[RING];
	/* The window's sums as of one second: the routing decisions of that
	 * second add the buckets up once. A cache, kept right by take and
	 * settle. */
	uint64_t summed;        /* that second + 1; 0: none */
	uint64_t sum[DT_RB_DIMS];
};

/* What the last answer's headers said of one dimension. */
struct heard {
	int64_t limit;          /* -1: not given */
	int64_t remaining;      /* -1: not given */
	uint64_t until;         /* remaining holds until then (its reset) */
	uint64_t since;         /* sent since, which it does not count */
};

struct budget {
	struct ring total;
	/* [n_apps]: the counts of each application holding a share of this
	 * key (NULL for the others); NULL when none does */
	struct ring **apps;
	struct heard heard[DT_RB_DIMS];
	uint64_t header_seq;
	uint64_t pending_tokens;  /* estimates of attempts not settled yet */
	uint32_t limit[DT_RB_DIMS]; /* configured for this key, 0: the provider's */
	bool seen;              /* traffic or headers: worth a snapshot row */
};

struct rprovider {
	struct dt_rb_provider_cfg cfg;
	struct budget shared[2];        /* DT_RB_KEY_DETOUR, DT_RB_KEY_CLIENT */
	struct budget **own;            /* [n_apps]: each application's own key here, NULL if none */
	uint8_t *share;                 /* [n_apps] percent */
	bool shares;                    /* some application has a share here */
};

struct dt_rb {
	uint64_t gen;
	struct rprovider *p[DT_MAX_PROVIDERS];
	char (*names)[DT_NAME_LEN];     /* [n_apps] */
	size_t n_apps;
};

static const struct heard nothing_heard = { -1, -1, 0, 0 };

uint64_t dt_rb_estimate(size_t body_len, int64_t max_output)
{
	/* about 4 bytes a token in English text and JSON; the JSON around the
	 * prompt makes it an overestimate, which is the safe side */
	return (body_len + 3) / 4 + (uint64_t)(max_output >= 0 ? max_output : DEFAULT_OUTPUT_TOKENS);
}

struct dt_rb *dt_rb_new(void)
{
	struct dt_rb *rb = calloc(1, sizeof(*rb));

	if (rb)
		rb->gen = 1;
	return rb;
}

static void provider_free(struct rprovider *p, size_t n_apps)
{
	if (!p)
		return;
	for (size_t a = 0; a < n_apps; a++) {
		for (size_t k = 0; k < 2 && p->shared[k].apps; k++)
			free(p->shared[k].apps[a]);
		if (p->own)
			free(p->own[a]);
	}
	for (size_t k = 0; k < 2; k++)
		free(p->shared[k].apps);
	free(p->own);
	free(p->share);
	free(p);
}

static void providers_free(struct rprovider **p, size_t n_apps)
{
	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++)
		provider_free(p[id], n_apps);
}

void dt_rb_free(struct dt_rb *rb)
{
	if (!rb)
		return;
	providers_free(rb->p, rb->n_apps);
	free(rb->names);
	free(rb);
}

static void budget_init(struct budget *b)
{
	b->heard[DT_RB_REQUESTS] = b->heard[DT_RB_TOKENS] = nothing_heard;
}

/* Provider id's state under the new configuration: its shared keys'
 * counts and headers from old (may be NULL), the applications' fresh. */
static struct rprovider *provider_new(uint32_t id, const struct dt_rb_provider_cfg *cfg,
				      const struct dt_rb_app_cfg *apps, size_t n_apps,
				      const struct rprovider *old)
{
	struct rprovider *p = calloc(1, sizeof(*p));
	size_t n = n_apps ? n_apps : 1;

	if (!p)
		return NULL;
	p->cfg = *cfg;
	if (!p->cfg.pace_max_wait_ms)
		p->cfg.pace_max_wait_ms = DEFAULT_PACE_WAIT_MS;
	if (!p->cfg.pace_max_queue)
		p->cfg.pace_max_queue = DEFAULT_PACE_QUEUE;
	p->own = calloc(n, sizeof(*p->own));
	p->share = calloc(n, sizeof(*p->share));
	if (!p->own || !p->share)
		goto fail;
	for (size_t a = 0; a < n_apps; a++) {
		p->share[a] = apps[a].share_percent[id];
		p->shares |= p->share[a] > 0;
		if (apps[a].own_key[id] && !(p->own[a] = calloc(1, sizeof(**p->own))))
			goto fail;
		if (!p->own[a])
			continue;
		budget_init(p->own[a]);
		for (int d = 0; d < DT_RB_DIMS; d++)
			p->own[a]->limit[d] = apps[a].key_limit[d] ? apps[a].key_limit[d][id] : 0;
	}
	for (size_t k = 0; k < 2; k++) {
		budget_init(&p->shared[k]);
		if (old) {
			p->shared[k].total = old->shared[k].total;
			memcpy(p->shared[k].heard, old->shared[k].heard, sizeof(p->shared[k].heard));
			p->shared[k].seen = old->shared[k].seen;
		}
		if (p->shares && !(p->shared[k].apps = calloc(n, sizeof(*p->shared[k].apps))))
			goto fail;
		for (size_t a = 0; p->shares && a < n_apps; a++)
			if (p->share[a] && !(p->shared[k].apps[a] = calloc(1, sizeof(struct ring))))
				goto fail;
	}
	return p;
fail:
	provider_free(p, n_apps);
	return NULL;
}

int dt_rb_configure(struct dt_rb *rb, const bool *used, const struct dt_rb_provider_cfg *providers,
		    const struct dt_rb_app_cfg *apps, size_t n_apps)
{
	struct rprovider *p[DT_MAX_PROVIDERS] = { 0 };
	char (*names)[DT_NAME_LEN] = calloc(n_apps ? n_apps : 1, sizeof(*names));

	if (!names)
		return -ENOMEM;
	for (size_t a = 0; a < n_apps; a++)
		snprintf(names[a], sizeof(names[a]), "%s", apps[a].name);
	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		if (used[id] && !(p[id] = provider_new(id, &providers[id], apps, n_apps, rb->p[id]))) {
			providers_free(p, n_apps);
			free(names);
			return -ENOMEM;
		}
	}
	providers_free(rb->p, rb->n_apps);
	free(rb->names);
	memcpy(rb->p, p, sizeof(p));
	rb->names = names;
	rb->n_apps = n_apps;
	rb->gen++;
	return 0;
}

const struct dt_rb_provider_cfg *dt_rb_provider(const struct dt_rb *rb, uint32_t provider_id)
{
	return provider_id < DT_MAX_PROVIDERS && rb->p[provider_id] ? &rb->p[provider_id]->cfg : NULL;
}

/* ---- the window ---------------------------------------------------------- */

static uint64_t second_of(uint64_t now)
{
	return now / NS_PER_S;
}

static bool in_window(const struct bucket *b, uint64_t now_s)
{
	/* unsigned: a bucket from the future (clock went back) is out too */
	return now_s - b->second <= WINDOW_S;
}

static uint64_t used_in(const struct ring *ring, enum dt_rb_dim d, uint64_t now_s)
{
	/* the cache only is written: every ring is allocated writable */
	struct ring *r = (struct ring *)ring;

	if (r->summed != now_s + 1) {
		memset(r->sum, 0, sizeof(r->sum));
		for (size_t i = 0; i < RING; i++)
			for (int k = 0; k < DT_RB_DIMS && in_window(&r->b[i], now_s); k++)
				r->sum[k] += r->b[i].n[k];
		r->summed = now_s + 1;
	}
	return r->sum[d];
}

/* When the oldest usage in the window leaves it; UINT64_MAX: none there. */
static uint64_t next_expiry(const struct ring *r, uint64_t now_s)
{
	uint64_t at = UINT64_MAX;

	for (size_t i = 0; i < RING; i++) {
		const struct bucket *b = &r->b[i];
		uint64_t leaves = (b->second + WINDOW_S + 1) * NS_PER_S;

		if (in_window(b, now_s) && (b->n[DT_RB_REQUESTS] || b->n[DT_RB_TOKENS]) && leaves < at)
			at = leaves;
	}
	return at;
}

/* Add delta to dimension d of the bucket of `second`, if it is still that
 * second's (a correction after the window moved on changes nothing), and
 * to the cached sums it is part of. */
static void adjust(struct ring *r, uint64_t second, enum dt_rb_dim d, int64_t delta)
{
	struct bucket *b = &r->b[second % RING];
	uint64_t before = b->n[d];

	if (b->second != second)
		return;
	b->n[d] = delta < 0 && (uint64_t)-delta > before ? 0 : before + (uint64_t)delta;
	if (r->summed && in_window(b, r->summed - 1))
		r->sum[d] = r->sum[d] + b->n[d] - before;
}

/* Count n more of dimension d in the bucket of `second`. */
static void count(struct ring *r, uint64_t second, enum dt_rb_dim d, uint64_t n)
{
	struct bucket *b = &r->b[second % RING];

	if (b->second != second) {
		*b = (struct bucket){ .second = second };
		r->summed = 0; /* the slot's old second may be in the sums */
	}
	adjust(r, second, d, (int64_t)n);
}

/* ---- budgets ------------------------------------------------------------- */

static enum dt_rb_key key_of(const struct rprovider *p, uint32_t key_slot, uint32_t app,
			     size_t n_apps)
{
	if (key_slot == DT_KEY_SLOT_DETOUR)
		return DT_RB_KEY_DETOUR;
	return app < n_apps && p->own[app] ? DT_RB_KEY_APP : DT_RB_KEY_CLIENT;
}

static struct budget *budget_of(const struct dt_rb *rb, uint32_t provider_id, enum dt_rb_key k,
				uint32_t app)
{
	struct rprovider *p = provider_id < DT_MAX_PROVIDERS ? rb->p[provider_id] : NULL;

	if (!p)
		return NULL;
	return k == DT_RB_KEY_APP ? p->own[app] : &p->shared[k];
}

/* The allowance per minute: the lower of what the provider announced and
 * what the configuration says (for this key, else for the provider's
 * keys); -1: neither. */
static int64_t limit_of(const struct rprovider *p, const struct budget *b, enum dt_rb_dim d)
{
	uint32_t set = b->limit[d] ? b->limit[d] : p->cfg.limit[d];
	int64_t heard = b->heard[d].limit, configured = set ? (int64_t)set : -1;

	if (heard < 0 || (configured >= 0 && configured < heard))
		return configured;
	return heard;
}

/* The headers' remaining, less what was sent since, while it holds. */
static bool heard_left(const struct heard *h, uint64_t now, int64_t *left)
{
	if (h->remaining < 0 || now >= h->until)
		return false;
	*left = h->remaining - (int64_t)h->since;
	return true;
}

/* What the key has left now, UNLIMITED when no limit is known. */
static int64_t key_left(const struct rprovider *p, const struct budget *b, enum dt_rb_dim d,
			uint64_t now)
{
	int64_t limit = limit_of(p, b, d), left = UNLIMITED, h;

	if (limit >= 0)
		left = limit - (int64_t)used_in(&b->total, d, second_of(now));
	if (heard_left(&b->heard[d], now, &h) && h < left)
		left = h;
	return left;
}

/* An application's counts on key b: NULL when it holds no share there. */
static struct ring *app_ring(const struct budget *b, uint32_t app, size_t n_apps)
{
	return b->apps && app < n_apps ? b->apps[app] : NULL;
}

/* One application's view of one key. */
struct rb_view {
	const struct dt_rb *rb;
	const struct rprovider *p;
	const struct budget *b;
	uint32_t app;
};

/* The unused parts of the other applications' guaranteed shares: kept
 * free for them, whoever else asks. */
static int64_t reserved_for_others(const struct rb_view *v, enum dt_rb_dim d, uint64_t now)
{
	int64_t limit = limit_of(v->p, v->b, d), sum = 0;

	if (!v->b->apps || limit < 0)
		return 0;
	for (uint32_t a = 0; a < v->rb->n_apps; a++) {
		int64_t guaranteed = limit * v->p->share[a] / 100, used;

		if (a == v->app || !v->p->share[a])
			continue;
		used = (int64_t)used_in(v->b->apps[a], d, second_of(now));
		if (guaranteed > used)
			sum += guaranteed - used;
	}
	return sum;
}

/* What v's application may still send on v's key now; UNLIMITED: no
 * limit known. */
static int64_t app_left(const struct rb_view *v, enum dt_rb_dim d, uint64_t now)
{
	int64_t left = key_left(v->p, v->b, d, now);

	return left == UNLIMITED ? left : left - reserved_for_others(v, d, now);
}

static bool view_of(const struct dt_rb *rb, const struct dt_rb_demand *d, struct rb_view *v)
{
	const struct rprovider *p = d->provider_id < DT_MAX_PROVIDERS ? rb->p[d->provider_id] : NULL;
	uint32_t app = d->app < rb->n_apps ? d->app : (uint32_t)rb->n_apps;

	if (!p)
		return false;
	*v = (struct rb_view){ rb, p, budget_of(rb, d->provider_id, key_of(p, d->key_slot, app, rb->n_apps), app), app };
	return true;
}

static uint64_t demand_of(const struct dt_rb_demand *d, enum dt_rb_dim dim)
{
	return dim == DT_RB_REQUESTS ? 1 : d->tokens;
}

uint64_t dt_rb_fit_at(const struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now)
{
	uint64_t at = 0;
	struct rb_view v;

	if (!view_of(rb, d, &v))
		return 0;
	for (int dim = 0; dim < DT_RB_DIMS; dim++) {
		int64_t left = app_left(&v, dim, now), limit = limit_of(v.p, v.b, dim), h;
		/* a request larger than the whole allowance fits an empty window */
		int64_t need = (int64_t)demand_of(d, dim);
		uint64_t relief;

		if (limit >= 0 && need > limit)
			need = limit;
		if (left == UNLIMITED || need <= left)
			continue;
		/* what binds is relieved by its headers' reset, or by usage
		 * leaving the window */
		relief = heard_left(&v.b->heard[dim], now, &h) && h < need ? v.b->heard[dim].until :
			 next_expiry(&v.b->total, second_of(now));
		if (relief > at)
			at = relief;
	}
	return at;
}

bool dt_rb_may_fit_sooner(const struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now)
{
	int64_t requests, tokens, need;
	struct rb_view v;

	if (!view_of(rb, d, &v) || !v.b->pending_tokens)
		return false;
	requests = app_left(&v, DT_RB_REQUESTS, now);
	tokens = app_left(&v, DT_RB_TOKENS, now);
	need = (int64_t)d->tokens;
	return (requests == UNLIMITED || requests >= 1) &&
	       (tokens == UNLIMITED || need <= tokens + (int64_t)v.b->pending_tokens);
}

void dt_rb_take(struct dt_rb *rb, const struct dt_rb_demand *d, uint64_t now,
		struct dt_rb_ticket *t)
{
	uint64_t s = second_of(now);
	struct budget *b;
	struct rb_view v;

	*t = (struct dt_rb_ticket){ 0 };
	if (!view_of(rb, d, &v))
		return;
	b = (struct budget *)v.b;
	for (int dim = 0; dim < DT_RB_DIMS; dim++) {
		count(&b->total, s, dim, demand_of(d, dim));
		if (app_ring(b, v.app, rb->n_apps))
			count(app_ring(b, v.app, rb->n_apps), s, dim, demand_of(d, dim));
		b->heard[dim].since += demand_of(d, dim);
	}
	b->pending_tokens += d->tokens;
	b->seen = true;
	*t = (struct dt_rb_ticket){
		.gen = rb->gen, .provider_id = d->provider_id, .app = v.app,
		.key = key_of(v.p, d->key_slot, v.app, rb->n_apps), .second = s,
		.tokens = d->tokens, .header_seq = b->header_seq,
	};
}

void dt_rb_settle(struct dt_rb *rb, struct dt_rb_ticket *t, int64_t used)
{
	struct budget *b;
	int64_t delta;

	if (t->gen != rb->gen) {
		t->gen = 0;
		return;
	}
	b = budget_of(rb, t->provider_id, t->key, t->app);
	b->pending_tokens -= t->tokens < b->pending_tokens ? t->tokens : b->pending_tokens;
	if (used < 0) {
		t->gen = 0;
		return;
	}
	delta = used - (int64_t)t->tokens;
	adjust(&b->total, t->second, DT_RB_TOKENS, delta);
	if (app_ring(b, t->app, rb->n_apps))
		adjust(app_ring(b, t->app, rb->n_apps), t->second, DT_RB_TOKENS, delta);
	if (t->header_seq == b->header_seq) {
		struct heard *h = &b->heard[DT_RB_TOKENS];

		h->since = delta < 0 && (uint64_t)-delta > h->since ? 0 : h->since + (uint64_t)delta;
	}
	t->gen = 0;
}

void dt_rb_headers(struct dt_rb *rb, const struct dt_rb_ticket *t, const struct dt_ratelimit *rl,
		   uint64_t now)
{
	static const enum dt_rl_kind kinds[DT_RB_DIMS] = { DT_RL_REQUESTS, DT_RL_TOKENS };
	struct budget *b;

	if (!t->gen || t->gen != rb->gen)
		return;
	b = budget_of(rb, t->provider_id, t->key, t->app);
	for (int dim = 0; dim < DT_RB_DIMS; dim++) {
		const struct dt_rl_limit *l = &rl->limits[kinds[dim]];
		struct heard *h = &b->heard[dim];

		if (l->limit >= 0)
			h->limit = l->limit;
		if (l->remaining < 0)
			continue;
		h->remaining = l->remaining;
		/* without a reset, the provider's window is the most it holds for */
		h->until = now + (l->reset_ms >= 0 ? (uint64_t)l->reset_ms : WINDOW_S * 1000ull) * NS_PER_MS;
		h->since = 0;
		b->seen = true;
	}
	b->header_seq++;
}

/* ---- headroom ------------------------------------------------------------ */

static bool worth_a_row(const struct rprovider *p, const struct budget *b)
{
	return b->seen || limit_of(p, b, DT_RB_REQUESTS) >= 0 || limit_of(p, b, DT_RB_TOKENS) >= 0;
}

/* A shared key as a whole (app NULL), or what one application may send
 * on it or on its own key. */
static void fill_row(const struct rb_view *v, uint32_t id, enum dt_rb_key key, const char *app,
		     const struct ring *used, uint64_t now, struct dt_rb_row *row)
{
	row->provider_id = id;
	row->key = key;
	row->app = app;
	for (int d = 0; d < DT_RB_DIMS; d++) {
		int64_t left = app ? app_left(v, d, now) : key_left(v->p, v->b, d, now);

		row->limit[d] = limit_of(v->p, v->b, d);
		row->used[d] = (int64_t)used_in(used, d, second_of(now));
		row->left[d] = left == UNLIMITED ? -1 : left < 0 ? 0 : left;
	}
}

/* Writes row n of the snapshot if there is room; returns n + 1. */
static size_t put_row(const struct rb_view *v, uint32_t id, enum dt_rb_key key, const char *app,
		      const struct ring *used, uint64_t now, struct dt_rb_row *out, size_t max,
		      size_t n)
{
	if (out && n < max)
		fill_row(v, id, key, app, used, now, &out[n]);
	return n + 1;
}

size_t dt_rb_snapshot(const struct dt_rb *rb, uint64_t now, struct dt_rb_row *out, size_t max)
{
	size_t n = 0;

	for (uint32_t id = 0; id < DT_MAX_PROVIDERS; id++) {
		const struct rprovider *p = rb->p[id];

		if (!p)
			continue;
		for (int k = DT_RB_KEY_DETOUR; k <= DT_RB_KEY_CLIENT; k++) {
			const struct budget *b = &p->shared[k];
			struct rb_view v = { rb, p, b, 0 };

			if (!worth_a_row(p, b))
				continue;
			n = put_row(&v, id, k, NULL, &b->total, now, out, max, n);
			for (uint32_t a = 0; a < rb->n_apps; a++) {
				v.app = a;
				if (app_ring(b, a, rb->n_apps))
					n = put_row(&v, id, k, rb->names[a], b->apps[a], now, out, max, n);
			}
		}
		for (uint32_t a = 0; a < rb->n_apps; a++) {
			struct rb_view v = { rb, p, p->own[a], a };

			if (p->own[a] && worth_a_row(p, p->own[a]))
				n = put_row(&v, id, DT_RB_KEY_APP, rb->names[a], &p->own[a]->total, now,
					    out, max, n);
		}
	}
	return n;
}
