/* SPDX-License-Identifier: MIT */
/*
 * Kernel TCP signals per provider endpoint (bpf/tcpsig.bpf.c,
 * docs/tcpsig.md): connect latency, connect failures, resets, retransmits
 * of sockets whose remote end is in detour's intercept map, counted in the
 * tcp_signals map and reported event by event on the agent's libevent loop.
 *
 * The programs are attached through BPF links that are not pinned: they
 * detach when the agent closes them or dies, so no observer outlives its
 * reader. Loading can fail (no BTF, kernel older than about 5.12): the
 * caller reports it and goes on without these signals.
 */
#ifndef DT_TCPSIG_H
#define DT_TCPSIG_H

#include <stddef.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_tcpsig;

/*
 * One signal, as it happened: @ep the provider endpoint, @kind and @value as
 * enum dt_tcp_kind says, @now the kernel's time of the event on
 * CLOCK_MONOTONIC (dt_now_ns()'s clock), not the time of the call. @ev has
 * the rest (flags, socket cookie, local port, time since SYN_SENT). Called
 * from the loop's read event: it must not call dt_tcpsig_close().
 */
typedef void (*dt_tcpsig_cb)(const struct dt_endpoint *ep, enum dt_tcp_kind kind,
			     __u64 value, __u64 now, const struct dt_tcp_event *ev, void *arg);

struct dt_tcpsig_opts {
	int intercept_fd;       /* detour's intercept map (required) */
	const char *pin_dir;    /* pin tcp_signals there (reused across restarts); NULL: not pinned */
	__u32 mark;             /* detour's SO_MARK: flags the proxy's own sockets; 0: none */
	__u64 netns_cookie;     /* count sockets of this network namespace only; 0: all */
	dt_tcpsig_cb cb;        /* may be NULL: counters only */
	void *arg;
};

/* Load and attach the programs and watch the ring buffer on @base.
 * Returns 0 with *out set, or -errno with @err saying why (nothing left
 * loaded, attached or pinned anew). */
int dt_tcpsig_open(struct dt_tcpsig **out, struct event_base *base,
		   const struct dt_tcpsig_opts *opts, char *err, size_t errlen);

/* Detach the programs and free everything. A pinned tcp_signals stays. */
void dt_tcpsig_close(struct dt_tcpsig *t);

/* Deliver what the ring buffer holds now, without waiting for the loop.
 * Returns the number of events delivered or -errno. */
int dt_tcpsig_drain(struct dt_tcpsig *t);

/* The counters of one endpoint. Returns 0, or -ENOENT if none yet. */
int dt_tcpsig_read(const struct dt_tcpsig *t, const struct dt_endpoint *ep,
		   struct dt_tcp_signals *out);

/* Call @fn for every endpoint with counters; stops at its first non-zero
 * return, which is returned. @map_fd: dt_tcpsig_fd(), or the pinned
 * tcp_signals opened by a reader while the agent is down. */
typedef int (*dt_tcpsig_each_fn)(const struct dt_endpoint *ep,
				 const struct dt_tcp_signals *s, void *arg);
int dt_tcpsig_foreach_fd(int map_fd, dt_tcpsig_each_fn fn, void *arg);
int dt_tcpsig_fd(const struct dt_tcpsig *t);

/* Events delivered to the callback, and events the ring buffer dropped. */
void dt_tcpsig_stats(const struct dt_tcpsig *t, __u64 *delivered, __u64 *lost);

/* "connect_ok", "reset_recv"... for logs and status. */
const char *dt_tcp_kind_name(enum dt_tcp_kind kind);

#endif
