/* SPDX-License-Identifier: MIT */
/*
 * Provider signals on the uplink (bpf/uplink.bpf.c, docs/uplink.md): an XDP
 * program on one interface counting, per provider endpoint, TCP resets from
 * it and ICMP unreachables and time-exceeded errors about packets to it, in
 * the uplink_signals map, and reporting each on the agent's libevent loop.
 *
 * The program is attached through a BPF link that is not pinned: it
 * detaches when the agent closes it or dies. It never drops or changes a
 * packet. Attaching can fail (no such interface, another XDP program
 * there, no driver support): the caller reports it and goes on without.
 */
#ifndef DT_UPLINK_H
#define DT_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_uplink;

enum dt_xdp_mode {
	DT_XDP_AUTO,     /* the driver's (native) XDP, else generic */
	DT_XDP_NATIVE,   /* the driver's only */
	DT_XDP_GENERIC,  /* generic (skb) XDP only: any interface, after the skb is built */
};

/* One packet counted, as it came. Called from the loop's read event: it
 * must not call dt_uplink_close(). */
typedef void (*dt_uplink_cb)(const struct dt_uplink_event *ev, void *arg);

struct dt_uplink_opts {
	int intercept_fd;       /* detour's intercept map (required) */
	const char *ifname;     /* attach there; NULL: loaded, not attached
				 * (to run it with BPF_PROG_TEST_RUN) */
	enum dt_xdp_mode mode;
	__u32 mark;             /* detour's SO_MARK: flags the agent's own sockets; 0: none */
	const char *pin_dir;    /* pin uplink_signals there (reused across restarts); NULL: not pinned */
	dt_uplink_cb cb;        /* may be NULL: counters only */
	void *arg;
};

/* Load and attach the program and watch its ring buffer on @base.
 * Returns 0 with *out set, or -errno with @err saying why (nothing left
 * loaded, attached or pinned anew). */
int dt_uplink_open(struct dt_uplink **out, struct event_base *base,
		   const struct dt_uplink_opts *opts, char *err, size_t errlen);

/* Detach and free everything. A pinned uplink_signals stays. */
void dt_uplink_close(struct dt_uplink *u);

/* Deliver what the ring buffer holds now. Returns the events delivered or -errno. */
int dt_uplink_drain(struct dt_uplink *u);

/* Attached to @ifname, as asked with @mode. */
bool dt_uplink_attached_as(const struct dt_uplink *u, const char *ifname, enum dt_xdp_mode mode);

/* "native" or "generic" as attached; "none" when not attached. */
const char *dt_uplink_mode_name(const struct dt_uplink *u);

int dt_uplink_fd(const struct dt_uplink *u);       /* uplink_signals */
int dt_uplink_prog_fd(const struct dt_uplink *u);

/* Events delivered to the callback, and events the ring buffer dropped. */
void dt_uplink_stats(const struct dt_uplink *u, __u64 *delivered, __u64 *lost);

/* "reset", "unreachable", "time_exceeded" for logs. */
const char *dt_uplink_kind_name(enum dt_uplink_kind kind);

#endif
