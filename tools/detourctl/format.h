/* SPDX-License-Identifier: MIT */
/* Names and units shared by the table and the JSON output, so both say
 * the same thing in the same words. */
#ifndef CTL_FORMAT_H
#define CTL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "detour.h"

/* Values a newer detourd may add come out as "unknown". */
const char *ctl_state_name(uint32_t state);   /* enum dt_state */
const char *ctl_reason_name(uint32_t reason); /* enum dt_reason */
const char *ctl_family_name(uint32_t family); /* enum dt_family */
const char *ctl_mode_name(uint32_t mode);     /* enum dt_mode */
const char *ctl_health_reason_name(uint32_t reason); /* enum dt_health_reason */
const char *ctl_override_name(uint32_t override);    /* enum dt_health_override */

/* "850 ms", "42 s", "7 min", "3 h", "2 d"; "never" for UINT64_MAX. Returns buf. */
const char *ctl_fmt_age(uint64_t ns, char *buf, size_t len);

/* How long ago a CLOCK_MONOTONIC time was, and how long until one is; 0
 * when that time is 0 (never set), or not in the past / future. */
uint64_t ctl_age(uint64_t at_ns, uint64_t now_ns);
uint64_t ctl_remaining(uint64_t at_ns, uint64_t now_ns);

/* The proxy listener the hook redirects to, "127.0.0.1:15001" or
 * "[::1]:15001". Returns buf (DT_ENDPOINT_STRLEN bytes are enough). */
const char *ctl_listener_str(const struct dt_config *settings, bool ipv6, char *buf, size_t len);

/* Counters by stable name (the JSON field; the table's header is it in
 * capitals), each a __u64 at offset in the structure it is read from. */
struct ctl_counter {
	const char *name;
	size_t offset;
};

struct ctl_counter_set {
	const struct ctl_counter *v;
	size_t n;
};

/* counters of a per-provider set at most: the columns of its table */
#define CTL_COUNTER_SET_MAX 8

extern const struct ctl_counter_set ctl_hook_counters;   /* of struct dt_stats, in its order */
extern const struct ctl_counter_set ctl_proxy_counters;  /* of struct dt_proxy_stats */
/* of a struct ctl_provider (snapshot.h): its probes, kernel TCP signals,
 * uplink signals */
extern const struct ctl_counter_set ctl_probe_counters;
extern const struct ctl_counter_set ctl_tcp_counters;
extern const struct ctl_counter_set ctl_uplink_counters;

uint64_t ctl_counter_value(const void *counters, const struct ctl_counter *c);

/* "connect_ok" -> "CONNECT OK", into buf. Returns buf. */
const char *ctl_counter_header(const struct ctl_counter *c, char *buf, size_t len);

#endif
