// SPDX-License-Identifier: MIT
/* Per-provider sums of the kernel's per-endpoint counters; see sigsum.h. */
#include "sigsum.h"

void dt_tcp_signals_add(struct dt_tcp_signals *sum, const struct dt_tcp_signals *s)
{
	if (s->last_event_ns > sum->last_event_ns) {
		sum->last_event_ns = s->last_event_ns;
		sum->last_kind = s->last_kind;
		sum->last_errno = s->last_errno;
		sum->connect_lat_last_ns = s->connect_lat_last_ns;
	}
	sum->resets_recv += s->resets_recv;
	sum->resets_sent += s->resets_sent;
	sum->retransmits += s->retransmits;
	sum->syn_retransmits += s->syn_retransmits;
	sum->connect_ok += s->connect_ok;
	sum->connect_fail += s->connect_fail;
	sum->connect_abandoned += s->connect_abandoned;
	sum->connect_lat_sum_ns += s->connect_lat_sum_ns;
	sum->connect_lat_count += s->connect_lat_count;
}

void dt_uplink_signals_add(struct dt_uplink_signals *sum, const struct dt_uplink_signals *s)
{
	if (s->last_event_ns > sum->last_event_ns) {
		sum->last_event_ns = s->last_event_ns;
		sum->last_kind = s->last_kind;
		sum->last_icmp_type = s->last_icmp_type;
		sum->last_icmp_code = s->last_icmp_code;
	}
	sum->resets += s->resets;
	sum->unreachable += s->unreachable;
	sum->time_exceeded += s->time_exceeded;
	sum->local += s->local;
}

uint64_t dt_tcp_signals_connect_mean_ns(const struct dt_tcp_signals *s)
{
	return s->connect_lat_count ? s->connect_lat_sum_ns / s->connect_lat_count : 0;
}
