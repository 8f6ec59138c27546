/* SPDX-License-Identifier: MIT */
/* The transport relay: accepts connections the hook redirected, finds where
 * each wanted to go, and splices it to that endpoint, or to another address
 * of the same provider when that one refuses, resets before answering, or
 * does not complete the connect in time. Bytes pass through untouched (TLS
 * included: the name is the same on every address of a provider). */
#ifndef DT_RELAY_H
#define DT_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

struct event_base;
struct dt_relay;

/* What the relay asks of the agent. */
struct dt_relay_ops {
	/* Endpoints to try, in order, for a connection wanting @o->dst. */
	size_t (*candidates)(void *ctx, const struct dt_origin *o,
			     struct dt_endpoint *out, size_t max);
	void (*connected)(void *ctx, const struct dt_endpoint *ep, uint32_t provider_id);
	void (*failed)(void *ctx, const struct dt_endpoint *ep, uint32_t provider_id,
		       enum dt_reason reason);
	void (*failover)(void *ctx, const struct dt_endpoint *from);
};

struct dt_relay_limits {
	uint32_t mark;               /* SO_MARK of upstream sockets: never redirected */
	unsigned connect_timeout_ms;
	unsigned max_connections;
};

struct dt_relay *dt_relay_new(struct event_base *base, const struct dt_relay_ops *ops,
			      void *ctx, const struct dt_relay_limits *limits);
void dt_relay_set_limits(struct dt_relay *r, const struct dt_relay_limits *limits);
/* Relay an accepted connection (fd is taken over) to where it wanted to go. */
void dt_relay_start(struct dt_relay *r, int fd, const struct dt_origin *origin);
/* Closes every connection being relayed. */
void dt_relay_free(struct dt_relay *r);
size_t dt_relay_active(const struct dt_relay *r);

#endif
