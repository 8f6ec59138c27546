// SPDX-License-Identifier: MIT
/* Cost accounting: rows in an array, found by an open-addressed index of
 * their keys' hashes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "spend.h"

/* Slots of the index: a power of two, at least twice the rows. */
#define INDEX_SLOTS   (2 * DT_SPEND_MAX_ROWS)
/* Past this many rows a new key keeps its application and provider only;
 * the last row is kept for keys that come when even those are full. */
#define FOLD_MODELS   (DT_SPEND_MAX_ROWS / 2)

struct dt_spend {
	struct dt_spend_row *rows;
	size_t n, cap;
	uint64_t answers;
	uint32_t index[INDEX_SLOTS];  /* row + 1; 0: empty */
};

struct dt_spend *dt_spend_new(void)
{
	return calloc(1, sizeof(struct dt_spend));
}

void dt_spend_free(struct dt_spend *s)
{
	if (!s)
		return;
	free(s->rows);
	free(s);
}

static uint64_t tokens(int64_t n)
{
	return n > 0 ? (uint64_t)n : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* n tokens at price pico-dollars each, saturating. */
static uint64_t mul_sat(uint64_t n, uint64_t price)
{
	return price && n > UINT64_MAX / price ? UINT64_MAX : n * price;
}

uint64_t dt_spend_cost_pico(const struct dt_xusage *u, const struct dt_price *p)
{
	uint64_t input = tokens(u->input_tokens), cached = tokens(u->cached_input_tokens);
	uint64_t written = tokens(u->cache_write_tokens), fresh = 0, cost;

	if (input > cached + written)
		fresh = input - cached - written;
	cost = mul_sat(fresh, p->input);
	cost = add_sat(cost, mul_sat(cached, p->cached_input));
	cost = add_sat(cost, mul_sat(written, p->cache_write));
	return add_sat(cost, mul_sat(tokens(u->output_tokens), p->output));
}

uint64_t dt_spend_micro(uint64_t pico)
{
	return pico / 1000000 + (pico % 1000000 >= 500000);
}

static const char *label(const char *s)
{
	return s && *s ? s : DT_SPEND_NONE;
}

/* FNV-1a over the key's fields, each ended by a 0 byte. */
static uint32_t key_hash(const char *const f[4])
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < 4; i++) {
		for (const char *c = f[i]; ; c++) {
			h = (h ^ (unsigned char)*c) * 16777619u;
			if (!*c)
				break;
		}
	}
	return h;
}

static bool row_is(const struct dt_spend_row *r, const char *const f[4])
{
	return strcmp(r->app, f[0]) == 0 && strcmp(r->provider, f[1]) == 0 &&
	       strcmp(r->model, f[2]) == 0 && strcmp(r->class_name, f[3]) == 0;
}

/* The row of key f, made when new; NULL when out of memory, or full
 * (*full: the caller folds the key). */
static struct dt_spend_row *row_of(struct dt_spend *s, const char *const f[4], size_t limit,
				   bool *full)
{
	uint32_t slot = key_hash(f) & (INDEX_SLOTS - 1);
	struct dt_spend_row *r;

	*full = false;
	for (; s->index[slot]; slot = (slot + 1) & (INDEX_SLOTS - 1))
		if (row_is(&s->rows[s->index[slot] - 1], f))
			return &s->rows[s->index[slot] - 1];
	if (s->n >= limit) {
		*full = true;
		return NULL;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct dt_spend_row *rows = realloc(s->rows, cap * sizeof(*rows));

		if (!rows)
			return NULL;
		s->rows = rows;
		s->cap = cap;
	}
	r = &s->rows[s->n];
	*r = (struct dt_spend_row){0};
	/* longer labels are cut: the names configured fit, models may not */
	snprintf(r->app, sizeof(r->app), "%s", f[0]);
	snprintf(r->provider, sizeof(r->provider), "%s", f[1]);
	snprintf(r->model, sizeof(r->model), "%s", f[2]);
	snprintf(r->class_name, sizeof(r->class_name), "%s", f[3]);
	if (!row_is(r, f)) {
		/* a cut label would make a second row for the same cut key */
		*full = true;
		return NULL;
	}
	s->index[slot] = (uint32_t)++s->n;
	return r;
}

int dt_spend_add(struct dt_spend *s, const struct dt_spend_key *k, const struct dt_xusage *u,
		 const struct dt_price *p)
{
	const char *f[4] = { label(k->app), label(k->provider), label(k->model), label(k->class_name) };
	struct dt_spend_row *r;
	bool full;

	r = row_of(s, f, FOLD_MODELS, &full);
	if (full) {
		f[2] = DT_SPEND_OTHER;
		f[3] = DT_SPEND_NONE;
		r = row_of(s, f, DT_SPEND_MAX_ROWS - 1, &full);
	}
	if (full) {
		f[0] = f[1] = f[2] = f[3] = DT_SPEND_OTHER;
		r = row_of(s, f, DT_SPEND_MAX_ROWS, &full);
	}
	if (!r)
		return -ENOMEM;
	s->answers++;
	r->requests++;
	if (!u || !u->known) {
		r->unmetered++;
		return 0;
	}
	r->input_tokens = add_sat(r->input_tokens, tokens(u->input_tokens));
	r->cached_input_tokens = add_sat(r->cached_input_tokens, tokens(u->cached_input_tokens));
	r->cache_write_tokens = add_sat(r->cache_write_tokens, tokens(u->cache_write_tokens));
	r->output_tokens = add_sat(r->output_tokens, tokens(u->output_tokens));
	if (p)
		r->cost_pico = add_sat(r->cost_pico, dt_spend_cost_pico(u, p));
	else
		r->unpriced++;
	return 0;
}

size_t dt_spend_rows(const struct dt_spend *s, const struct dt_spend_row **rows)
{
	*rows = s->rows;
	return s->n;
}

uint64_t dt_spend_answers(const struct dt_spend *s)
{
	return s->answers;
}

static void json_count(struct dt_jbuf *b, const char *key, uint64_t v)
{
	dt_jbuf_key(b, key);
	/* int64 JSON numbers: a count past it shows as its largest */
	dt_jbuf_int(b, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

char *dt_spend_json(const struct dt_spend *s, const char *prices_date, size_t *len)
{
	struct dt_jbuf b = {0};

	dt_jbuf_lit(&b, "{\"prices_date\":");
	dt_jbuf_str(&b, prices_date && *prices_date ? prices_date : NULL);
	dt_jbuf_lit(&b, ",\"rows\":[");
	for (size_t i = 0; i < s->n; i++) {
		const struct dt_spend_row *r = &s->rows[i];

		dt_jbuf_sep(&b);
		dt_jbuf_lit(&b, "{\"app\":");
		dt_jbuf_str(&b, r->app);
		dt_jbuf_key(&b, "provider");
		dt_jbuf_str(&b, r->provider);
		dt_jbuf_key(&b, "model");
		dt_jbuf_str(&b, r->model);
		dt_jbuf_key(&b, "class");
		dt_jbuf_str(&b, r->class_name);
		json_count(&b, "requests", r->requests);
		json_count(&b, "unmetered", r->unmetered);
		json_count(&b, "unpriced", r->unpriced);
		json_count(&b, "input_tokens", r->input_tokens);
		json_count(&b, "cached_input_tokens", r->cached_input_tokens);
		json_count(&b, "cache_write_tokens", r->cache_write_tokens);
		json_count(&b, "output_tokens", r->output_tokens);
		json_count(&b, "cost_usd_micro", dt_spend_micro(r->cost_pico));
		json_count(&b, "cost_usd_pico", r->cost_pico);
		dt_jbuf_lit(&b, "}");
	}
	dt_jbuf_lit(&b, "]}\n");
	return dt_jbuf_finish(&b, len);
}
