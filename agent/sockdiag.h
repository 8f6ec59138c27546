/* SPDX-License-Identifier: MIT */
/* sock_diag: the socket cookie of the other end of a local TCP connection
 * (how the relay finds which application socket it accepted), and the abort
 * of applications' direct connections to a provider (failover mode). */
#ifndef DT_SOCKDIAG_H
#define DT_SOCKDIAG_H

#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "detour.h"

/* A NETLINK_SOCK_DIAG socket, or -1 with errno set. */
int dt_sockdiag_open(void);

/* Cookie of the TCP socket whose local address is @local and whose remote
 * address is @remote (both of one family), in the caller's netns.
 * Returns 0, or -errno (-ENOENT: no such socket). */
int dt_sockdiag_cookie(int nl_fd, const struct sockaddr *local,
		       const struct sockaddr *remote, uint64_t *cookie);

/* Which sockets dt_sockdiag_destroy() aborts: TCP sockets established or
 * connecting to one of eps (IPv4 endpoints also as IPv4-mapped destinations
 * of AF_INET6 sockets), created in one of cgroups (cgroup v2 ids, exact:
 * pass descendants too), whose SO_MARK is not skip_mark. */
struct dt_sockdiag_victims {
	const struct dt_endpoint *eps;
	size_t n_eps;
	const uint64_t *cgroups;
	size_t n_cgroups;
	uint32_t skip_mark;
};

/* Abort (SOCK_DESTROY: the owner sees ECONNABORTED, the peer a reset) every
 * socket @v describes in the caller's netns. The kernel selects them by a
 * filter and each is checked again here before it is destroyed. Needs
 * CAP_NET_ADMIN. Returns how many were destroyed, or -errno. */
int dt_sockdiag_destroy(const struct dt_sockdiag_victims *v);

#endif
