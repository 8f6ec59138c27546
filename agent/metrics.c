// SPDX-License-Identifier: MIT
/* Request metrics; see metrics.h and docs/metrics.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "config.h"
#include "metrics.h"
#include "promtext.h"
#include "reqrec.h"
#include "spend.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NS_PER_S 1e9

/* Whole requests take seconds to minutes; first tokens, tens of ms to seconds. */
static const double duration_bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
static const double ttft_bounds[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
_Static_assert(ARRAY_SIZE(duration_bounds) <= DT_PROM_MAX_BUCKETS, "too many buckets");
_Static_assert(ARRAY_SIZE(ttft_bounds) <= DT_PROM_MAX_BUCKETS, "too many buckets");

/* Status classes of the code label: none (the client left first), 1xx..5xx. */
#define N_CODES 6
static const char *const code_names[N_CODES] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };

/* The blames an attempt error is counted under (NONE is no error). */
static const enum dt_blame error_blames[] = {
	DT_BLAME_REQUEST, DT_BLAME_CONTEXT, DT_BLAME_KEY, DT_BLAME_PROVIDER, DT_BLAME_RATE_LIMIT,
};
#define N_BLAMES (DT_BLAME_RATE_LIMIT + 1)

/* The counters of one label set. */
struct series {
	uint64_t hash;
	char app[DT_NAME_LEN], provider[DT_NAME_LEN], model[DT_MODEL_LEN], class_[DT_NAME_LEN];
	uint64_t requests[N_CODES];
	uint64_t attempts;
	uint64_t errors[N_BLAMES];
	uint64_t failovers, hedges, hedges_won, retries_refused;
	struct dt_prom_hist duration, ttft;
};

/* A (provider, model) the configuration names, and its class. */
struct known_model {
	char provider[DT_NAME_LEN];
	char model[DT_MODEL_LEN];
	char class_[DT_NAME_LEN];   /* "-": none */
};

struct dt_metrics {
	struct known_model *known;
	size_t n_known;
	struct series *series;      /* DT_METRICS_MAX_SERIES, the last for "other" */
	size_t n_series;
};

struct dt_metrics *dt_metrics_new(void)
{
	struct dt_metrics *m = calloc(1, sizeof(*m));

	if (m && !(m->series = calloc(DT_METRICS_MAX_SERIES, sizeof(*m->series)))) {
		free(m);
		return NULL;
	}
	return m;
}

void dt_metrics_free(struct dt_metrics *m)
{
	if (!m)
		return;
	free(m->known);
	free(m->series);
	free(m);
}

static void known_set(struct known_model *k, const char *provider, const char *model,
		      const char *class_)
{
	snprintf(k->provider, sizeof(k->provider), "%s", provider);
	snprintf(k->model, sizeof(k->model), "%s", model);
	snprintf(k->class_, sizeof(k->class_), "%s", class_);
}

int dt_metrics_configure(struct dt_metrics *m, const struct dt_cfg *cfg)
{
	size_t n = cfg->n_providers, k = 0;
	struct known_model *known;

	for (size_t c = 0; c < cfg->n_classes; c++)
		n += cfg->classes[c].n_members;
	known = calloc(n ? n : 1, sizeof(*known));
	if (!known)
		return -1;
	for (size_t c = 0; c < cfg->n_classes; c++)
		for (size_t i = 0; i < cfg->classes[c].n_members; i++)
			known_set(&known[k++], cfg->classes[c].members[i].provider,
				  cfg->classes[c].members[i].model, cfg->classes[c].name);
	for (size_t p = 0; p < cfg->n_providers; p++)
		if (cfg->providers[p].probe_ttft_model[0])
			known_set(&known[k++], cfg->providers[p].name,
				  cfg->providers[p].probe_ttft_model, "-");
	free(m->known);
	m->known = known;
	m->n_known = k;
	return 0;
}

/* Its class member first: a probe model may be one as well. */
static const struct known_model *known_find(const struct dt_metrics *m, const char *provider,
					    const char *model, bool any_provider)
{
	const struct known_model *any = NULL;

	for (size_t i = 0; i < m->n_known; i++) {
		const struct known_model *k = &m->known[i];

		if (strcmp(k->model, model) != 0)
			continue;
		if (strcmp(k->provider, provider) == 0)
			return k;
		if (any_provider && !any)
			any = k;
	}
	return any;
}

const char *dt_metrics_model_label(const struct dt_metrics *m, const char *provider,
				   const char *model)
{
	const struct known_model *k;

	if (!model || !*model)
		return "-";
	k = known_find(m, provider, model, true);
	return k ? k->model : "other";
}

const char *dt_metrics_class_label(const struct dt_metrics *m, const char *provider,
				   const char *model)
{
	const struct known_model *k = model && *model ? known_find(m, provider, model, false) : NULL;

	return k ? k->class_ : "-";
}

/* FNV-1a over the label values, each with its end. */
static uint64_t hash_labels(const char *const v[4])
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < 4; i++)
		for (const char *s = v[i];; s++) {
			h = (h ^ (unsigned char)*s) * 1099511628211ull;
			if (!*s)
				break;
		}
	return h;
}

/* The series of (app, provider, model) with their labels as the rules say,
 * made on first use; past the limit, the last one ("other"). */
static struct series *series_of(struct dt_metrics *m, const char *app, const char *provider,
				const char *model)
{
	const char *v[4] = {
		app, provider, dt_metrics_model_label(m, provider, model),
		dt_metrics_class_label(m, provider, model),
	};
	uint64_t h = hash_labels(v);
	struct series *s;

	for (size_t i = 0; i < m->n_series; i++) {
		s = &m->series[i];
		if (s->hash == h && strcmp(s->app, v[0]) == 0 && strcmp(s->provider, v[1]) == 0 &&
		    strcmp(s->model, v[2]) == 0 && strcmp(s->class_, v[3]) == 0)
			return s;
	}
	if (m->n_series < DT_METRICS_MAX_SERIES - 1) {
		s = &m->series[m->n_series++];
	} else {
		s = &m->series[DT_METRICS_MAX_SERIES - 1];
		if (s->app[0])
			return s;
		v[0] = v[1] = v[2] = v[3] = "other";
		m->n_series = DT_METRICS_MAX_SERIES;
	}
	s->hash = hash_labels(v);
	snprintf(s->app, sizeof(s->app), "%s", v[0]);
	snprintf(s->provider, sizeof(s->provider), "%s", v[1]);
	snprintf(s->model, sizeof(s->model), "%s", v[2]);
	snprintf(s->class_, sizeof(s->class_), "%s", v[3]);
	return s;
}

/* An attempt's model: the one it asked for, else the client's. */
static const char *attempt_model(const struct dt_reqrec *r, const struct dt_reqrec_attempt *a)
{
	return a->model && *a->model ? a->model : r->model;
}

void dt_metrics_request(struct dt_metrics *m, const struct dt_reqrec *r)
{
	const struct dt_reqrec_attempt *won = r->served >= 0 ? &r->attempts[r->served] : NULL;
	struct series *s = won ? series_of(m, r->app, won->provider, attempt_model(r, won))
			       : series_of(m, r->app, r->provider, r->model);
	int code = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;

	s->requests[code]++;
	s->retries_refused += r->budget_refused;
	if (won && r->failover)
		s->failovers++;
	if (r->status) {
		dt_prom_observe(&s->duration, duration_bounds, ARRAY_SIZE(duration_bounds),
				(double)r->total_ns / NS_PER_S);
		if (r->ttft_ns)
			dt_prom_observe(&s->ttft, ttft_bounds, ARRAY_SIZE(ttft_bounds),
					(double)r->ttft_ns / NS_PER_S);
	}
	for (size_t i = 0; i < r->n_attempts; i++) {
		const struct dt_reqrec_attempt *a = &r->attempts[i];
		struct series *as = series_of(m, r->app, a->provider, attempt_model(r, a));

		as->attempts++;
		if ((unsigned)a->blame < N_BLAMES)
			as->errors[a->blame]++;
		if (a->hedge) {
			as->hedges++;
			if (a == won)
				as->hedges_won++;
		}
	}
}

/* ---- exposition ------------------------------------------------------------ */

#define N_BASE 4

static void base_labels(const struct series *s, struct dt_prom_label *l)
{
	l[0] = (struct dt_prom_label){ "application", s->app };
	l[1] = (struct dt_prom_label){ "provider", s->provider };
	l[2] = (struct dt_prom_label){ "model", s->model };
	l[3] = (struct dt_prom_label){ "class", s->class_ };
}

/* A counter family with one sample per series: the field at offset. */
static void counter_family(const struct dt_metrics *m, struct evbuffer *out, const char *name,
			   const char *help, size_t offset)
{
	struct dt_prom_label l[N_BASE];

	dt_prom_family(out, name, "counter", help);
	for (size_t i = 0; i < m->n_series; i++) {
		const struct series *s = &m->series[i];

		base_labels(s, l);
		dt_prom_sample(out, name, l, N_BASE, (double)*(const uint64_t *)((const char *)s + offset));
	}
}

/* A counter family with one sample per series and value of an array
 * field (at offset), the extra label naming the index. */
static void counter_family_by(const struct dt_metrics *m, struct evbuffer *out, const char *name,
			      const char *help, size_t offset, const char *label,
			      const char *const *values, const size_t *index, size_t n)
{
	struct dt_prom_label l[N_BASE + 1];

	dt_prom_family(out, name, "counter", help);
	for (size_t i = 0; i < m->n_series; i++) {
		const struct series *s = &m->series[i];
		const uint64_t *v = (const uint64_t *)((const char *)s + offset);

		base_labels(s, l);
		for (size_t k = 0; k < n; k++) {
			l[N_BASE] = (struct dt_prom_label){ label, values[k] };
			dt_prom_sample(out, name, l, N_BASE + 1, (double)v[index[k]]);
		}
	}
}

static void histogram_family(const struct dt_metrics *m, struct evbuffer *out, const char *name,
			     const char *help, size_t offset, const double *bounds, size_t n_bounds)
{
	struct dt_prom_label l[N_BASE];

	dt_prom_family(out, name, "histogram", help);
	for (size_t i = 0; i < m->n_series; i++) {
		const struct series *s = &m->series[i];

		base_labels(s, l);
		dt_prom_histogram(out, name, l, N_BASE, bounds, n_bounds,
				  (const struct dt_prom_hist *)((const char *)s + offset));
	}
}

void dt_metrics_render(const struct dt_metrics *m, struct evbuffer *out)
{
	static const size_t code_index[N_CODES] = { 0, 1, 2, 3, 4, 5 };
	const char *blame_names[ARRAY_SIZE(error_blames)];
	size_t blame_index[ARRAY_SIZE(error_blames)];

	for (size_t k = 0; k < ARRAY_SIZE(error_blames); k++) {
		blame_names[k] = dt_reqrec_blame_name(error_blames[k]);
		blame_index[k] = error_blames[k];
	}
	counter_family_by(m, out, "detour_requests_total",
			  "Client requests ended, by the member that answered (else the provider addressed) and status class (none: the client left first).",
			  offsetof(struct series, requests), "code", code_names, code_index, N_CODES);
	counter_family(m, out, "detour_attempts_total",
		       "Attempts sent to a member (a request's first, its failovers and hedges).",
		       offsetof(struct series, attempts));
	counter_family_by(m, out, "detour_attempt_errors_total",
			  "Attempts that did not give an answer to relay, by whom the answer blamed.",
			  offsetof(struct series, errors), "blame", blame_names, blame_index,
			  ARRAY_SIZE(error_blames));
	counter_family(m, out, "detour_failovers_total",
		       "Requests answered by this member after another one failed.",
		       offsetof(struct series, failovers));
	counter_family(m, out, "detour_hedges_total",
		       "Attempts sent to this member as hedges, while a slower one was still in flight.",
		       offsetof(struct series, hedges));
	counter_family(m, out, "detour_hedges_won_total",
		       "Hedge attempts to this member that answered first.",
		       offsetof(struct series, hedges_won));
	counter_family(m, out, "detour_retries_refused_total",
		       "Failovers and hedges not sent because the retry budget was spent.",
		       offsetof(struct series, retries_refused));
	histogram_family(m, out, "detour_request_duration_seconds",
			 "Time from a request's arrival to the end of its answer.",
			 offsetof(struct series, duration), duration_bounds, ARRAY_SIZE(duration_bounds));
	histogram_family(m, out, "detour_time_to_first_token_seconds",
			 "Time from a streamed request's arrival to the first token of its answer.",
			 offsetof(struct series, ttft), ttft_bounds, ARRAY_SIZE(ttft_bounds));
}

/* ---- tokens and cost ------------------------------------------------------------ */

/* A spend row's model under the label rules: its own markers kept as ours. */
static const char *spend_model(const struct dt_metrics *m, const struct dt_spend_row *r)
{
	if (strcmp(r->model, DT_SPEND_NONE) == 0)
		return "-";
	if (strcmp(r->model, DT_SPEND_OTHER) == 0)
		return "other";
	return dt_metrics_model_label(m, r->provider, r->model);
}

/* The spend rows summed by their labels under the rules. */
static size_t spend_merge(const struct dt_metrics *m, const struct dt_spend_row *rows, size_t n,
			  struct dt_spend_row *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const char *model = spend_model(m, &rows[i]);
		struct dt_spend_row *o = NULL;

		for (size_t j = 0; j < k && !o; j++)
			if (strcmp(out[j].app, rows[i].app) == 0 &&
			    strcmp(out[j].provider, rows[i].provider) == 0 &&
			    strcmp(out[j].model, model) == 0 &&
			    strcmp(out[j].class_name, rows[i].class_name) == 0)
				o = &out[j];
		if (!o) {
			o = &out[k++];
			*o = rows[i];
			snprintf(o->model, sizeof(o->model), "%s", model);
			continue;
		}
		o->requests += rows[i].requests;
		o->unmetered += rows[i].unmetered;
		o->unpriced += rows[i].unpriced;
		o->input_tokens += rows[i].input_tokens;
		o->cached_input_tokens += rows[i].cached_input_tokens;
		o->cache_write_tokens += rows[i].cache_write_tokens;
		o->output_tokens += rows[i].output_tokens;
		o->cost_pico = o->cost_pico + rows[i].cost_pico < o->cost_pico ? UINT64_MAX :
			       o->cost_pico + rows[i].cost_pico;
	}
	return k;
}

static void spend_labels(const struct dt_spend_row *r, struct dt_prom_label *l)
{
	l[0] = (struct dt_prom_label){ "application", r->app };
	l[1] = (struct dt_prom_label){ "provider", r->provider };
	l[2] = (struct dt_prom_label){ "model", r->model };
	l[3] = (struct dt_prom_label){ "class", r->class_name };
}

/* A counter family with one sample per row: the field at offset. */
static void spend_family(struct evbuffer *out, const struct dt_spend_row *rows, size_t n,
			 const char *name, const char *help, size_t offset)
{
	struct dt_prom_label l[N_BASE];

	dt_prom_family(out, name, "counter", help);
	for (size_t i = 0; i < n; i++) {
		spend_labels(&rows[i], l);
		dt_prom_sample(out, name, l, N_BASE,
			       (double)*(const uint64_t *)((const char *)&rows[i] + offset));
	}
}

void dt_metrics_render_spend(const struct dt_metrics *m, const struct dt_spend_row *rows,
			     size_t n, struct evbuffer *out)
{
	static const struct { const char *kind; size_t offset; } kinds[] = {
		{ "input", offsetof(struct dt_spend_row, input_tokens) },
		{ "cached_input", offsetof(struct dt_spend_row, cached_input_tokens) },
		{ "cache_write", offsetof(struct dt_spend_row, cache_write_tokens) },
		{ "output", offsetof(struct dt_spend_row, output_tokens) },
	};
	struct dt_spend_row *merged = calloc(n ? n : 1, sizeof(*merged));
	struct dt_prom_label l[N_BASE + 1];

	if (!merged)
		return;
	n = spend_merge(m, rows, n, merged);
	dt_prom_family(out, "detour_tokens_total", "counter",
		       "Tokens of the answers, as their usage said, by kind (input counts cached input and cache writes too).");
	for (size_t i = 0; i < n; i++) {
		spend_labels(&merged[i], l);
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			l[N_BASE] = (struct dt_prom_label){ "kind", kinds[k].kind };
			dt_prom_sample(out, "detour_tokens_total", l, N_BASE + 1,
				       (double)*(const uint64_t *)((const char *)&merged[i] + kinds[k].offset));
		}
	}
	dt_prom_family(out, "detour_cost_dollars_total", "counter",
		       "What the answers cost at the price table's prices, in dollars (answers of an unpriced model count nothing).");
	for (size_t i = 0; i < n; i++) {
		spend_labels(&merged[i], l);
		dt_prom_sample(out, "detour_cost_dollars_total", l, N_BASE,
			       (double)merged[i].cost_pico / 1e12);
	}
	spend_family(out, merged, n, "detour_answers_total",
		     "Answers whose usage was counted (failovers' and broken answers included).",
		     offsetof(struct dt_spend_row, requests));
	spend_family(out, merged, n, "detour_answers_unmetered_total",
		     "Of them: answers that gave no usage (no tokens, no cost counted).",
		     offsetof(struct dt_spend_row, unmetered));
	spend_family(out, merged, n, "detour_answers_unpriced_total",
		     "Of them: answers with usage but no known price (no cost counted).",
		     offsetof(struct dt_spend_row, unpriced));
	free(merged);
}
