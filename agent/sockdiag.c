// SPDX-License-Identifier: MIT
/* One exact-match sock_diag lookup (no dump): the kernel finds the socket by
 * its 4-tuple in the TCP hash, as for an incoming packet. libnl-idiag offers
 * only full dumps, which cost a walk of every socket on the host. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "sockdiag.h"

int dt_sockdiag_open(void)
{
	return socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

static void fill_side(const struct sockaddr *sa, __be16 *port, __be32 addr[4])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		*port = sin->sin_port;
		addr[0] = sin->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		*port = sin6->sin6_port;
		memcpy(addr, &sin6->sin6_addr, 16);
	}
}

int dt_sockdiag_cookie(int nl_fd, const struct sockaddr *local,
		       const struct sockaddr *remote, uint64_t *cookie)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST,
		},
		.req = {
			.sdiag_family = (__u8)local->sa_family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = ~0u,
			.id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
		},
	};
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} reply;
	const struct inet_diag_msg *diag;
	ssize_t n;

	if (local->sa_family != remote->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	fill_side(local, &msg.req.id.idiag_sport, msg.req.id.idiag_src);
	fill_side(remote, &msg.req.id.idiag_dport, msg.req.id.idiag_dst);

	if (send(nl_fd, &msg, sizeof(msg), 0) < 0)
		return -errno;
	n = recv(nl_fd, &reply, sizeof(reply), 0);
	if (n < 0)
		return -errno;
	if (!NLMSG_OK(&reply.nlh, (size_t)n))
		return -EBADMSG;
	if (reply.nlh.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(&reply.nlh);

		return e->error ? e->error : -ENOENT;
	}
	if (reply.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    reply.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(*diag)))
		return -EBADMSG;
	diag = NLMSG_DATA(&reply.nlh);
	*cookie = (uint64_t)diag->id.idiag_cookie[0] |
		  ((uint64_t)diag->id.idiag_cookie[1] << 32);
	return 0;
}
