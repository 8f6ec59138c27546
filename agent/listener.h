/* SPDX-License-Identifier: MIT */
/* The proxy's listening sockets (loopback IPv4 and IPv6, one port) and the
 * accept path: every accepted connection is handed over with both its
 * addresses, so the agent can find the application socket behind it. */
#ifndef DT_LISTENER_H
#define DT_LISTENER_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dt_listener;

typedef void (*dt_accept_fn)(void *ctx, int fd, const struct sockaddr *peer,
			     const struct sockaddr *local);

struct dt_listener *dt_listener_new(struct event_base *base, struct in_addr listen4,
				    struct in6_addr listen6, uint16_t port,
				    dt_accept_fn accepted, void *ctx, char *err, size_t errlen);
/* One socket on one address (detourd's /metrics). */
struct dt_listener *dt_listener_new_at(struct event_base *base, const struct sockaddr *sa,
				       socklen_t len, dt_accept_fn accepted, void *ctx,
				       char *err, size_t errlen);
void dt_listener_free(struct dt_listener *l);

/* Writes are forwarded as they come: Nagle would hold a message's tail for
 * the peer's delayed ACK (~40 ms on Linux). */
void dt_socket_nodelay(int fd);

#endif
