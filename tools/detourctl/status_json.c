// SPDX-License-Identifier: MIT
/* `detourctl status --json`; see status_render.h. Field names are an
 * interface (docs/detourctl.md): add fields, never rename them. */
#include <jansson.h>

#include "format.h"
#include "intercept.h"
#include "status_render.h"

#define NS_PER_MS 1000000ull

static json_int_t ms(uint64_t ns)
{
	return (json_int_t)(ns / NS_PER_MS);
}

static json_t *agent_json(const struct ctl_snapshot *snap)
{
	const struct ctl_agent *a = &snap->agent;
	json_t *age = a->heartbeat_age_ns == CTL_NEVER_BEAT ? json_null()
							     : json_integer(ms(a->heartbeat_age_ns));

	return json_pack("{s:s, s:s, s:I, s:b, s:o, s:I, s:b}",
			 "state", ctl_agent_state_name(a->state),
			 "summary", a->summary,
			 "pid", (json_int_t)a->pid,
			 "pid_alive", a->pid_alive,
			 "heartbeat_age_ms", age,
			 "heartbeat_ttl_ms", ms(snap->settings.heartbeat_ttl_ns),
			 "enabled", snap->settings.enabled != 0);
}

static json_t *verdict_json(const struct ctl_endpoint *e)
{
	const struct dt_verdict *v = &e->verdict;

	if (!e->has_verdict)
		return json_null(); /* detourd has not relayed to it yet */
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "state", ctl_state_name(v->state),
			 "reason", ctl_reason_name(v->reason),
			 "since_ms", ms(e->since_age_ns),
			 "hold_remaining_ms", ms(e->hold_left_ns),
			 "consecutive_failures", (json_int_t)v->consecutive_failures,
			 "relayed", (json_int_t)v->relayed,
			 "failures", (json_int_t)v->failures,
			 "failovers", (json_int_t)v->failovers);
}

#define NS_PER_US 1000ull

/* A verdict of the health engine: the provider's or a model's. */
static json_t *health_json(const struct ctl_snapshot *snap, const struct dt_health_row *r)
{
	const struct dt_provider_health *v = &r->v;
	uint64_t until = ctl_remaining(v->until_ns, snap->now_ns);

	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
			 "state", ctl_state_name(v->state),
			 "reason", ctl_health_reason_name(v->reason),
			 "reason_text", v->reason_text,
			 "since_ms", ms(ctl_age(v->since_ns, snap->now_ns)),
			 "until_ms", until ? json_integer(ms(until)) : json_null(),
			 "ejections", (json_int_t)v->ejections,
			 "consecutive_failures", (json_int_t)v->consecutive_failures,
			 "ttft_baseline_us", (json_int_t)(v->ttft_baseline_ns / NS_PER_US),
			 "connect_baseline_us", (json_int_t)(v->connect_baseline_ns / NS_PER_US),
			 "error_rate_percent", (json_int_t)v->error_rate_percent,
			 "slow_rate_percent", (json_int_t)v->slow_rate_percent,
			 "calls", (json_int_t)v->calls,
			 "override", ctl_override_name(v->override));
}

static json_t *models_json(const struct ctl_snapshot *snap, const struct ctl_provider *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < p->n_models; i++) {
		json_t *m = health_json(snap, &p->models[i]);

		if (!m || json_object_set_new(m, "model", json_string(p->models[i].model)) ||
		    json_array_append_new(arr, m)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* A set of counters as an object of name: value. */
static json_t *counters_json(const struct ctl_counter_set *set, const void *values)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj && i < set->n; i++) {
		uint64_t v = ctl_counter_value(values, &set->v[i]);

		if (json_object_set_new(obj, set->v[i].name, json_integer((json_int_t)v))) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

static json_t *provider_json(const struct ctl_snapshot *snap, const struct ctl_provider *p)
{
	json_t *eps = json_array();

	for (size_t i = 0; eps && i < p->n_endpoints; i++) {
		const struct ctl_endpoint *e = &p->endpoints[i];
		char addr[DT_ENDPOINT_STRLEN];

		if (json_array_append_new(eps, json_pack("{s:s, s:b, s:o, s:I, s:I}",
				"address", dt_endpoint_str(&e->addr, addr, sizeof(addr)),
				"stale", e->stale,
				"verdict", verdict_json(e),
				"redirected", (json_int_t)e->hook.redirected,
				"passed", (json_int_t)e->hook.passed))) {
			json_decref(eps);
			return NULL;
		}
	}
	return json_pack("{s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "id", (json_int_t)p->id,
			 "name", p->name,
			 "family", ctl_family_name(p->family),
			 "port", (json_int_t)p->port,
			 "endpoints", eps,
			 "health", p->health ? health_json(snap, p->health) : json_null(),
			 "models", models_json(snap, p),
			 "probes", counters_json(&ctl_probe_counters, p),
			 /* null: the map is not pinned */
			 "tcp", snap->has_tcp ? counters_json(&ctl_tcp_counters, p) : json_null(),
			 "uplink", snap->has_uplink ? counters_json(&ctl_uplink_counters, p)
						    : json_null());
}

static json_t *providers_json(const struct ctl_snapshot *snap)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < snap->n_providers; i++) {
		if (json_array_append_new(arr, provider_json(snap, &snap->providers[i]))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *overrides_json(const struct ctl_snapshot *snap)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < snap->n_overrides; i++) {
		const struct ctl_override *o = &snap->overrides[i];

		if (json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:b, s:b}",
				"provider", o->provider,
				"model", o->model[0] ? o->model : NULL,
				"override", ctl_override_name(o->kind),
				"configured", o->configured,
				"applied", o->applied))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *cgroups_json(const struct ctl_snapshot *snap)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < snap->n_cgroups; i++) {
		const struct ctl_cgroup *cg = &snap->cgroups[i];

		if (json_array_append_new(arr, json_pack("{s:s, s:I, s:b, s:I, s:I, s:s?}",
				"tag", cg->tag,
				"id", (json_int_t)cg->id,
				"alive", cg->attached > 0,
				"links", (json_int_t)cg->links,
				"attached", (json_int_t)cg->attached,
				"path", cg->path))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int ctl_status_json(const struct ctl_snapshot *snap, FILE *out)
{
	char v4[DT_ENDPOINT_STRLEN], v6[DT_ENDPOINT_STRLEN];
	json_t *root;
	int rc;

	/* "o" steals each reference, also when json_pack fails */
	root = json_pack("{s:s, s:o, s:s, s:{s:s, s:s}, s:o, s:o, s:o, s:o, s:o}",
			 "pin_dir", snap->pin_dir,
			 "agent", agent_json(snap),
			 "mode", ctl_mode_name(snap->settings.mode),
			 "listener",
			 "ipv4", ctl_listener_str(&snap->settings, false, v4, sizeof(v4)),
			 "ipv6", ctl_listener_str(&snap->settings, true, v6, sizeof(v6)),
			 "providers", providers_json(snap),
			 "overrides", overrides_json(snap),
			 "counters", counters_json(&ctl_hook_counters, &snap->counters),
			 "proxy", counters_json(&ctl_proxy_counters, &snap->proxy),
			 "cgroups", cgroups_json(snap));
	if (!root)
		return -1;
	rc = json_dumpf(root, out, JSON_INDENT(2));
	json_decref(root);
	if (rc == 0)
		fputc('\n', out);
	return rc ? -1 : 0;
}
