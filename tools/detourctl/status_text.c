// SPDX-License-Identifier: MIT
/* `detourctl status` as aligned tables; see status_render.h. */
#include <inttypes.h>
#include <stdio.h>

#include "format.h"
#include "intercept.h"
#include "status_render.h"
#include "table.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NUM_LEN 24
#define INDENT "  "

typedef int (*fill_fn)(struct ctl_table *t, const struct ctl_snapshot *snap);

/* A title, then the table or "(none)". */
static void print_section(FILE *out, const char *title, const struct ctl_table *t)
{
	fprintf(out, "\n%s\n", title);
	if (ctl_table_rows(t))
		ctl_table_print(t, out, INDENT);
	else
		fputs(INDENT "(none)\n", out);
}

/* A titled section: the table filled by fill. */
static int section(FILE *out, const char *title, const struct ctl_column *cols, size_t ncols,
		   fill_fn fill, const struct ctl_snapshot *snap)
{
	struct ctl_table *t = ctl_table_new(cols, ncols);
	int rc;

	if (!t)
		return -1;
	rc = fill(t, snap);
	if (rc == 0)
		print_section(out, title, t);
	ctl_table_free(t);
	return rc;
}

static const char *u64_str(uint64_t v, char buf[NUM_LEN])
{
	snprintf(buf, NUM_LEN, "%" PRIu64, v);
	return buf;
}

static const struct ctl_column provider_cols[] = {
	{ "ID", true }, { "NAME", false }, { "FAMILY", false }, { "PORT", true },
	{ "ENDPOINTS", true },
};

static int fill_providers(struct ctl_table *t, const struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_providers; i++) {
		const struct ctl_provider *p = &snap->providers[i];
		char id[NUM_LEN], port[NUM_LEN], eps[NUM_LEN];
		const char *cells[] = {
			u64_str(p->id, id), p->name, ctl_family_name(p->family),
			u64_str(p->port, port), u64_str(p->n_endpoints, eps),
		};

		if (ctl_table_add(t, cells))
			return -1;
	}
	return 0;
}

static const struct ctl_column health_cols[] = {
	{ "PROVIDER", false }, { "MODEL", false }, { "STATE", false }, { "REASON", false },
	{ "SINCE", true }, { "UNTIL", true }, { "EJECTIONS", true }, { "CONSEC", true },
	{ "TTFT", true }, { "CONNECT", true }, { "ERRORS", true }, { "SLOW", true },
	{ "CALLS", true }, { "OVERRIDE", false },
};

/* A duration, "-" when there is none. */
static const char *duration_str(uint64_t ns, char *buf, size_t len)
{
	return ns ? ctl_fmt_age(ns, buf, len) : "-";
}

static int add_health(struct ctl_table *t, const struct ctl_snapshot *snap,
		      const struct ctl_provider *p, const struct dt_health_row *r)
{
	const struct dt_provider_health *v = &r->v;
	char since[32], until[32], ttft[32], connect[32], errors[NUM_LEN], slow[NUM_LEN];
	char ejections[NUM_LEN], consec[NUM_LEN], calls[NUM_LEN];
	const char *cells[] = {
		p->name, r->model[0] ? r->model : "-", ctl_state_name(v->state), v->reason_text,
		duration_str(ctl_age(v->since_ns, snap->now_ns), since, sizeof(since)),
		duration_str(ctl_remaining(v->until_ns, snap->now_ns), until, sizeof(until)),
		u64_str(v->ejections, ejections), u64_str(v->consecutive_failures, consec),
		duration_str(v->ttft_baseline_ns, ttft, sizeof(ttft)),
		duration_str(v->connect_baseline_ns, connect, sizeof(connect)),
		errors, slow, u64_str(v->calls, calls),
		v->override ? ctl_override_name(v->override) : "-",
	};

	_Static_assert(ARRAY_SIZE(cells) == ARRAY_SIZE(health_cols), "one cell per column");
	snprintf(errors, sizeof(errors), "%u%%", v->error_rate_percent);
	snprintf(slow, sizeof(slow), "%u%%", v->slow_rate_percent);
	return ctl_table_add(t, cells);
}

static int fill_health(struct ctl_table *t, const struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_providers; i++) {
		const struct ctl_provider *p = &snap->providers[i];

		if (p->health && add_health(t, snap, p, p->health))
			return -1;
		for (size_t j = 0; j < p->n_models; j++)
			if (add_health(t, snap, p, &p->models[j]))
				return -1;
	}
	return 0;
}

static const struct ctl_column override_cols[] = {
	{ "PROVIDER", false }, { "MODEL", false }, { "OVERRIDE", false }, { "STATUS", false },
};

static int fill_overrides(struct ctl_table *t, const struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_overrides; i++) {
		const struct ctl_override *o = &snap->overrides[i];
		const char *cells[] = {
			o->provider, o->model[0] ? o->model : "-", ctl_override_name(o->kind),
			!o->configured ? "no such provider configured" :
			o->applied ? "applied" : "pending",
		};

		if (ctl_table_add(t, cells))
			return -1;
	}
	return 0;
}

static const struct ctl_column endpoint_cols[] = {
	{ "PROVIDER", false }, { "ENDPOINT", false }, { "DNS", false }, { "STATE", false },
	{ "REASON", false }, { "SINCE", true }, { "HELD", true }, { "CONSEC", true },
	{ "RELAYED", true }, { "FAILURES", true }, { "FAILOVERS", true },
	{ "REDIRECTED", true }, { "PASSED", true },
};

static int add_endpoint(struct ctl_table *t, const struct ctl_provider *p,
			const struct ctl_endpoint *e)
{
	const struct dt_verdict *v = &e->verdict;
	char addr[DT_ENDPOINT_STRLEN], since[32], held[32];
	char consec[NUM_LEN], relayed[NUM_LEN], failures[NUM_LEN], failovers[NUM_LEN];
	char redirected[NUM_LEN], passed[NUM_LEN];
	const char *cells[] = {
		p->name, dt_endpoint_str(&e->addr, addr, sizeof(addr)),
		e->stale ? "stale" : "current",
		/* no verdict until detourd has relayed to the endpoint */
		e->has_verdict ? ctl_state_name(v->state) : "untried",
		e->has_verdict ? ctl_reason_name(v->reason) : "-",
		e->has_verdict ? ctl_fmt_age(e->since_age_ns, since, sizeof(since)) : "-",
		e->hold_left_ns ? ctl_fmt_age(e->hold_left_ns, held, sizeof(held)) : "-",
		e->has_verdict ? u64_str(v->consecutive_failures, consec) : "-",
		e->has_verdict ? u64_str(v->relayed, relayed) : "-",
		e->has_verdict ? u64_str(v->failures, failures) : "-",
		e->has_verdict ? u64_str(v->failovers, failovers) : "-",
		u64_str(e->hook.redirected, redirected), u64_str(e->hook.passed, passed),
	};

	_Static_assert(ARRAY_SIZE(cells) == ARRAY_SIZE(endpoint_cols), "one cell per column");
	return ctl_table_add(t, cells);
}

static int fill_endpoints(struct ctl_table *t, const struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_providers; i++) {
		const struct ctl_provider *p = &snap->providers[i];

		for (size_t j = 0; j < p->n_endpoints; j++)
			if (add_endpoint(t, p, &p->endpoints[j]))
				return -1;
	}
	return 0;
}

static const struct ctl_column counter_cols[] = { { "COUNTER", false }, { "VALUE", true } };

/* A set of global counters, one row each. */
static int counter_rows(FILE *out, const char *title, const struct ctl_counter_set *set,
			const void *values)
{
	struct ctl_table *t = ctl_table_new(counter_cols, ARRAY_SIZE(counter_cols));
	int rc = 0;

	if (!t)
		return -1;
	for (size_t i = 0; rc == 0 && i < set->n; i++) {
		char value[NUM_LEN];
		const char *cells[] = {
			set->v[i].name, u64_str(ctl_counter_value(values, &set->v[i]), value),
		};

		rc = ctl_table_add(t, cells);
	}
	if (rc == 0)
		print_section(out, title, t);
	ctl_table_free(t);
	return rc;
}

/* A set of per-provider counters, one row a provider, one column a counter;
 * "(map not pinned)" when its map is absent. */
static int provider_columns(FILE *out, const char *title, const struct ctl_counter_set *set,
			    bool present, const struct ctl_snapshot *snap)
{
	struct ctl_column cols[1 + CTL_COUNTER_SET_MAX] = { { "PROVIDER", false } };
	char headers[CTL_COUNTER_SET_MAX][32];
	struct ctl_table *t;
	int rc = 0;

	if (!present) {
		fprintf(out, "\n%s\n" INDENT "(map not pinned)\n", title);
		return 0;
	}
	for (size_t i = 0; i < set->n; i++)
		cols[1 + i] = (struct ctl_column){
			ctl_counter_header(&set->v[i], headers[i], sizeof(headers[i])), true };
	t = ctl_table_new(cols, 1 + set->n);
	if (!t)
		return -1;
	for (size_t i = 0; rc == 0 && i < snap->n_providers; i++) {
		const struct ctl_provider *p = &snap->providers[i];
		char values[CTL_COUNTER_SET_MAX][NUM_LEN];
		const char *cells[1 + CTL_COUNTER_SET_MAX] = { p->name };

		for (size_t j = 0; j < set->n; j++)
			cells[1 + j] = u64_str(ctl_counter_value(p, &set->v[j]), values[j]);
		rc = ctl_table_add(t, cells);
	}
	if (rc == 0)
		print_section(out, title, t);
	ctl_table_free(t);
	return rc;
}

static const struct ctl_column cgroup_cols[] = {
	{ "TAG", false }, { "CGROUP ID", true }, { "ATTACHED", true }, { "PATH", false },
};

static int fill_cgroups(struct ctl_table *t, const struct ctl_snapshot *snap)
{
	for (size_t i = 0; i < snap->n_cgroups; i++) {
		const struct ctl_cgroup *cg = &snap->cgroups[i];
		char id[NUM_LEN], links[2 * NUM_LEN];
		const char *cells[] = {
			cg->tag, u64_str(cg->id, id), links,
			cg->path ? cg->path : cg->attached ? "(not found)" : "(cgroup gone)",
		};

		snprintf(links, sizeof(links), "%u/%u", cg->attached, cg->links);
		if (ctl_table_add(t, cells))
			return -1;
	}
	return 0;
}

int ctl_status_text(const struct ctl_snapshot *snap, FILE *out)
{
	char v4[DT_ENDPOINT_STRLEN], v6[DT_ENDPOINT_STRLEN];

	fprintf(out, "pin dir   %s\n", snap->pin_dir);
	fprintf(out, "agent     %s\n", snap->agent.summary);
	fprintf(out, "mode      %s\n", ctl_mode_name(snap->settings.mode));
	fprintf(out, "listener  %s %s\n", ctl_listener_str(&snap->settings, false, v4, sizeof(v4)),
		ctl_listener_str(&snap->settings, true, v6, sizeof(v6)));
	if (section(out, "providers", provider_cols, ARRAY_SIZE(provider_cols),
		    fill_providers, snap) ||
	    section(out, "health", health_cols, ARRAY_SIZE(health_cols), fill_health, snap) ||
	    section(out, "operator overrides", override_cols, ARRAY_SIZE(override_cols),
		    fill_overrides, snap) ||
	    section(out, "endpoints", endpoint_cols, ARRAY_SIZE(endpoint_cols),
		    fill_endpoints, snap) ||
	    provider_columns(out, "probes (sent, failed; the opt-in TTFT completions and their tokens)",
			     &ctl_probe_counters, true, snap) ||
	    provider_columns(out, "kernel TCP signals (tcp_signals, over each provider's endpoints)",
			     &ctl_tcp_counters, snap->has_tcp, snap) ||
	    provider_columns(out, "uplink signals (uplink_signals, over each provider's endpoints)",
			     &ctl_uplink_counters, snap->has_uplink, snap) ||
	    counter_rows(out, "hook counters", &ctl_hook_counters, &snap->counters) ||
	    counter_rows(out, "proxy counters", &ctl_proxy_counters, &snap->proxy) ||
	    section(out, "enrolled cgroups", cgroup_cols, ARRAY_SIZE(cgroup_cols),
		    fill_cgroups, snap))
		return -1;
	return 0;
}
