/* SPDX-License-Identifier: MIT */
/* The socket cookie of the other end of a local TCP connection, from
 * sock_diag: how the relay finds which application socket it accepted. */
#ifndef DT_SOCKDIAG_H
#define DT_SOCKDIAG_H

#include <stdint.h>
#include <sys/socket.h>

/* A NETLINK_SOCK_DIAG socket, or -1 with errno set. */
int dt_sockdiag_open(void);

/* Cookie of the TCP socket whose local address is @local and whose remote
 * address is @remote (both of one family), in the caller's netns.
 * Returns 0, or -errno (-ENOENT: no such socket). */
int dt_sockdiag_cookie(int nl_fd, const struct sockaddr *local,
		       const struct sockaddr *remote, uint64_t *cookie);

#endif
