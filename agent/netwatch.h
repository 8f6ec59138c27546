/* SPDX-License-Identifier: MIT */
/*
 * Route and link changes that concern provider endpoints (docs/netwatch.md).
 * An rtnetlink socket subscribed to link and IPv4/IPv6 route events sits on
 * the agent's libevent loop; a burst of messages is gathered for a few
 * milliseconds, then the kernel is asked the route to every watched endpoint
 * (RTM_GETROUTE, the lookup a connect would make) and the state of its
 * output interface. What differs from the previous answer is reported per
 * endpoint. No message's content is trusted for the answer, so a lost
 * message (ENOBUFS) costs only one more lookup pass.
 */
#ifndef DT_NETWATCH_H
#define DT_NETWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_netwatch;

enum dt_netwatch_change {
	DT_NETWATCH_ROUTE_LOST,    /* no route now: none, unreachable, prohibit, blackhole */
	DT_NETWATCH_ROUTE_CHANGED, /* still routed, through another interface or gateway */
	DT_NETWATCH_ROUTE_BACK,    /* routed again (after a loss, or for the first time) */
	DT_NETWATCH_LINK_DOWN,     /* its output interface is down or lost its carrier */
	DT_NETWATCH_LINK_UP,       /* ... is up and running again */
};

struct dt_netwatch_event {
	const struct dt_endpoint *ep;  /* the watched endpoint (the watcher's copy) */
	enum dt_netwatch_change change;
	int ifindex;       /* its output interface now (LINK_*: the one that changed); 0: none */
	uint64_t seen_ns;  /* CLOCK_MONOTONIC when the burst's first message was read */
};

/* Called on the loop, LINK_* before ROUTE_* for one endpoint. It must not
 * call dt_netwatch_set_endpoints() or dt_netwatch_free(). */
typedef void (*dt_netwatch_fn)(void *ctx, const struct dt_netwatch_event *ev);

struct dt_netwatch_opts {
	unsigned debounce_ms;  /* gather a burst this long after its first message (0: 5) */
	uint32_t mark;         /* route lookups with this fwmark, as detour's own sockets (0: none) */
};

/* o NULL: the defaults. NULL when out of memory or rtnetlink cannot be
 * opened and subscribed to (logged). */
struct dt_netwatch *dt_netwatch_new(struct event_base *base, const struct dt_netwatch_opts *o,
				    dt_netwatch_fn cb, void *ctx);
void dt_netwatch_free(struct dt_netwatch *w);

/* Watch exactly eps[0..n) from now on (a reload: the intercept table's
 * endpoints). Endpoints already watched keep their state; new ones are
 * looked up now and reported only when that changes. The port plays no
 * part in routing but is part of an endpoint's identity. Returns 0, or
 * -ENOMEM with the previous list kept. */
int dt_netwatch_set_endpoints(struct dt_netwatch *w, const struct dt_endpoint *eps, size_t n);

const char *dt_netwatch_change_name(enum dt_netwatch_change c);

#endif /* DT_NETWATCH_H */
