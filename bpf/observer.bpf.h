/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * What the observing programs (tcpsig.bpf.c, uplink.bpf.c) share: the
 * loader's settings, the lost-events counter and detour's intercept map,
 * which the loader hands in (bpf_map__reuse_fd) so that the hook and they
 * read one table. Its definition must stay the one in detour.bpf.c: the
 * reuse checks it. Include after vmlinux.h, bpf_helpers.h and detour.h.
 */
#ifndef DT_OBSERVER_BPF_H
#define DT_OBSERVER_BPF_H

/* Set by the loader before load: detour's SO_MARK; 0: not flagged. */
const volatile __u32 dt_mark = 0;

/* Lost events (ring buffer full); read by the agent from .bss. */
__u64 events_lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_intercept);
} intercept SEC(".maps");

#endif
