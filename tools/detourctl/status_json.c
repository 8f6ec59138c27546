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

static json_t *provider_json(const struct ctl_provider *p)
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
	return json_pack("{s:I, s:s, s:s, s:I, s:o}",
			 "id", (json_int_t)p->id,
			 "name", p->name,
			 "family", ctl_family_name(p->family),
			 "port", (json_int_t)p->port,
			 "endpoints", eps);
}

static json_t *providers_json(const struct ctl_snapshot *snap)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < snap->n_providers; i++) {
		if (json_array_append_new(arr, provider_json(&snap->providers[i]))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *counters_json(const struct ctl_snapshot *snap)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj && i < ctl_n_counters; i++) {
		uint64_t v = ctl_counter_value(&snap->counters, &ctl_counters[i]);

		if (json_object_set_new(obj, ctl_counters[i].name, json_integer((json_int_t)v))) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
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
	root = json_pack("{s:s, s:o, s:s, s:{s:s, s:s}, s:o, s:o, s:o}",
			 "pin_dir", snap->pin_dir,
			 "agent", agent_json(snap),
			 "mode", ctl_mode_name(snap->settings.mode),
			 "listener",
			 "ipv4", ctl_listener_str(&snap->settings, false, v4, sizeof(v4)),
			 "ipv6", ctl_listener_str(&snap->settings, true, v6, sizeof(v6)),
			 "providers", providers_json(snap),
			 "counters", counters_json(snap),
			 "cgroups", cgroups_json(snap));
	if (!root)
		return -1;
	rc = json_dumpf(root, out, JSON_INDENT(2));
	json_decref(root);
	if (rc == 0)
		fputc('\n', out);
	return rc ? -1 : 0;
}
