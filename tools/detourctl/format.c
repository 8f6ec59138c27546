// SPDX-License-Identifier: MIT
/* Names and units; see format.h. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "format.h"
#include "health.h"
#include "intercept.h"
#include "snapshot.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, uint32_t value)
{
	return value < n && names[value] ? names[value] : "unknown";
}

const char *ctl_state_name(uint32_t state)
{
	static const char *const names[] = {
		[DT_HEALTHY] = "healthy",           [DT_DEGRADED] = "degraded",
		[DT_RATE_LIMITED] = "rate_limited", [DT_DOWN] = "down",
		[DT_PROBING] = "probing",
	};
	return name_of(names, ARRAY_SIZE(names), state);
}

const char *ctl_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[DT_REASON_NONE] = "none",
		[DT_REASON_CONNECT_REFUSED] = "connect_refused",
		[DT_REASON_CONNECT_TIMEOUT] = "connect_timeout",
		[DT_REASON_RESET] = "reset",
		[DT_REASON_UNREACHABLE] = "unreachable",
		[DT_REASON_RECOVERED] = "recovered",
	};
	return name_of(names, ARRAY_SIZE(names), reason);
}

/* the spelling of the configuration's family = key */
const char *ctl_family_name(uint32_t family)
{
	static const char *const names[] = {
		[DT_FAMILY_OPENAI] = "openai",
		[DT_FAMILY_ANTHROPIC] = "anthropic",
		[DT_FAMILY_GEMINI] = "gemini",
	};
	return name_of(names, ARRAY_SIZE(names), family);
}

const char *ctl_mode_name(uint32_t mode)
{
	static const char *const names[] = {
		[DT_MODE_PROXY] = "proxy",
		[DT_MODE_FAILOVER] = "failover",
	};
	return name_of(names, ARRAY_SIZE(names), mode);
}

const char *ctl_health_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[DT_HR_NONE] = "none",
		[DT_HR_CONSECUTIVE_FAILURES] = "consecutive_failures",
		[DT_HR_FAILURE_RATE] = "failure_rate",
		[DT_HR_CONNECTS_FAILING] = "connects_failing",
		[DT_HR_MODELS_DOWN] = "models_down",
		[DT_HR_TRIAL_FAILED] = "trial_failed",
		[DT_HR_EJECTION_ENDED] = "ejection_ended",
		[DT_HR_TRIALS_PASSED] = "trials_passed",
		[DT_HR_RATE_LIMITED] = "rate_limited",
		[DT_HR_LIMIT_EXHAUSTED] = "limit_exhausted",
		[DT_HR_SLOW_CALLS] = "slow_calls",
		[DT_HR_POOR_ANSWERS] = "poor_answers",
		[DT_HR_SLOW_CONNECTS] = "slow_connects",
		[DT_HR_RETRANSMITS] = "retransmits",
		[DT_HR_RECOVERED] = "recovered",
		[DT_HR_DRAINED] = "drained",
		[DT_HR_FORCED] = "forced",
		[DT_HR_CLEARED] = "cleared",
		[DT_HR_FORGOTTEN] = "forgotten",
		[DT_HR_NO_ROUTE] = "no_route",
		[DT_HR_LINK_DOWN] = "link_down",
		[DT_HR_PATH_BACK] = "path_back",
	};
	/* a reason added to the engine must be named here too */
	_Static_assert(ARRAY_SIZE(names) == DT_HR_COUNT, "every reason has a name");
	return name_of(names, ARRAY_SIZE(names), reason);
}

const char *ctl_override_name(uint32_t override)
{
	static const char *const names[] = {
		[DT_OVERRIDE_NONE] = "none",
		[DT_OVERRIDE_DRAIN] = "drained",
		[DT_OVERRIDE_FORCE] = "forced",
	};
	return name_of(names, ARRAY_SIZE(names), override);
}

const char *ctl_fmt_age(uint64_t ns, char *buf, size_t len)
{
	static const struct { uint64_t ns; const char *unit; } units[] = {
		{ 86400000000000ull, "d" }, { 3600000000000ull, "h" },
		{ 60000000000ull, "min" },  { 1000000000ull, "s" },
	};

	if (ns == UINT64_MAX) {
		snprintf(buf, len, "never");
		return buf;
	}
	/* tenths while they matter against a heartbeat TTL of about a second,
	 * whole units beyond */
	if (ns >= 1000000000ull && ns < 10000000000ull) {
		snprintf(buf, len, "%.1f s", (double)ns / 1e9);
		return buf;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (ns >= units[i].ns) {
			snprintf(buf, len, "%llu %s", (unsigned long long)(ns / units[i].ns),
				 units[i].unit);
			return buf;
		}
	}
	snprintf(buf, len, "%llu ms", (unsigned long long)(ns / 1000000));
	return buf;
}

uint64_t ctl_age(uint64_t at_ns, uint64_t now_ns)
{
	return at_ns && now_ns > at_ns ? now_ns - at_ns : 0;
}

uint64_t ctl_remaining(uint64_t at_ns, uint64_t now_ns)
{
	return at_ns > now_ns ? at_ns - now_ns : 0;
}

const char *ctl_listener_str(const struct dt_config *s, bool ipv6, char *buf, size_t len)
{
	struct dt_endpoint ep = { .port = s->listen_port };

	if (ipv6) {
		memcpy(ep.addr, s->listen6, sizeof(ep.addr));
	} else {
		ep.addr[2] = htonl(0xffff);
		ep.addr[3] = s->listen4;
	}
	return dt_endpoint_str(&ep, buf, len);
}

#define COUNTER(type, field) { #field, offsetof(type, field) }
#define SET(a) { a, ARRAY_SIZE(a) }

static const struct ctl_counter hook[] = {
	COUNTER(struct dt_stats, redirected),
	COUNTER(struct dt_stats, pass_stale),
	COUNTER(struct dt_stats, pass_no_listener),
	COUNTER(struct dt_stats, pass_own),
	COUNTER(struct dt_stats, pass_healthy),
	COUNTER(struct dt_stats, pass_no_storage),
	COUNTER(struct dt_stats, origins_published),
	COUNTER(struct dt_stats, peer_rewritten),
};
const struct ctl_counter_set ctl_hook_counters = SET(hook);

/* a counter added to dt_stats must be named here too */
_Static_assert(ARRAY_SIZE(hook) * sizeof(__u64) == sizeof(struct dt_stats),
	       "every dt_stats counter has a name");

static const struct ctl_counter proxy[] = {
	COUNTER(struct dt_proxy_stats, hedges),
	COUNTER(struct dt_proxy_stats, hedges_won),
	COUNTER(struct dt_proxy_stats, hedges_unfunded),
};
const struct ctl_counter_set ctl_proxy_counters = SET(proxy);

_Static_assert(ARRAY_SIZE(proxy) * sizeof(__u64) == sizeof(struct dt_proxy_stats),
	       "every dt_proxy_stats counter has a name");

#define OF_PROVIDER(name, member) { #name, offsetof(struct ctl_provider, member) }

static const struct ctl_counter probe[] = {
	OF_PROVIDER(sent, probes.sent),
	OF_PROVIDER(failed, probes.failed),
	OF_PROVIDER(ttft_probes, probes.ttft_probes),
	OF_PROVIDER(input_tokens, probes.input_tokens),
	OF_PROVIDER(output_tokens, probes.output_tokens),
};
const struct ctl_counter_set ctl_probe_counters = SET(probe);

static const struct ctl_counter tcp[] = {
	OF_PROVIDER(connect_ok, tcp.connect_ok),
	OF_PROVIDER(connect_fail, tcp.connect_fail),
	OF_PROVIDER(connect_abandoned, tcp.connect_abandoned),
	OF_PROVIDER(connect_mean_us, tcp_connect_mean_us),
	OF_PROVIDER(resets_recv, tcp.resets_recv),
	OF_PROVIDER(resets_sent, tcp.resets_sent),
	OF_PROVIDER(retransmits, tcp.retransmits),
	OF_PROVIDER(syn_retransmits, tcp.syn_retransmits),
};
const struct ctl_counter_set ctl_tcp_counters = SET(tcp);

static const struct ctl_counter uplink[] = {
	OF_PROVIDER(resets, uplink.resets),
	OF_PROVIDER(unreachable, uplink.unreachable),
	OF_PROVIDER(time_exceeded, uplink.time_exceeded),
	OF_PROVIDER(local, uplink.local),
};
const struct ctl_counter_set ctl_uplink_counters = SET(uplink);

_Static_assert(ARRAY_SIZE(probe) <= CTL_COUNTER_SET_MAX && ARRAY_SIZE(tcp) <= CTL_COUNTER_SET_MAX &&
	       ARRAY_SIZE(uplink) <= CTL_COUNTER_SET_MAX, "a table has a column for each");

uint64_t ctl_counter_value(const void *counters, const struct ctl_counter *c)
{
	__u64 v;

	memcpy(&v, (const char *)counters + c->offset, sizeof(v));
	return v;
}

const char *ctl_counter_header(const struct ctl_counter *c, char *buf, size_t len)
{
	size_t i;

	for (i = 0; c->name[i] && i + 1 < len; i++)
		buf[i] = c->name[i] == '_' ? ' ' : (char)toupper((unsigned char)c->name[i]);
	if (len)
		buf[i] = '\0';
	return buf;
}
