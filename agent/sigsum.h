/* SPDX-License-Identifier: MIT */
/* The kernel's per-endpoint counters (tcp_signals, uplink_signals) summed
 * per provider, for `detourctl status`. */
#ifndef DT_SIGSUM_H
#define DT_SIGSUM_H

#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

/* Add one endpoint's counters to sum; the last event's details (kind,
 * errno, ICMP type, last connect latency) are those of the later one. */
void dt_tcp_signals_add(struct dt_tcp_signals *sum, const struct dt_tcp_signals *s);
void dt_uplink_signals_add(struct dt_uplink_signals *sum, const struct dt_uplink_signals *s);

/* The mean connect latency of the timed connects; 0 when none was timed. */
uint64_t dt_tcp_signals_connect_mean_ns(const struct dt_tcp_signals *s);

#endif
