// SPDX-License-Identifier: MIT
/*
 * sock_diag requests, see sockdiag.h. The cookie lookup is one exact-match
 * request (no dump): the kernel finds the socket by its 4-tuple in the TCP
 * hash, as for an incoming packet. libnl-idiag offers only full dumps without
 * filters, which cost a walk of every socket on the host and a copy of each
 * to userspace; the destroy dumps with a filter run in the kernel instead.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
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

union diag_reply {
	struct nlmsghdr nlh;
	char buf[1024]; /* a socket's diag message; or the request echoed, extended ack attributes */
};

/* One request (type, extra flags) about the TCP socket `id` of `family`,
 * and the kernel's one reply: 0, or -errno (-EBADMSG: not a netlink message). */
static int one_socket_request(int fd, __u16 type, __u16 flags, __u8 family,
			      const struct inet_diag_sockid *id, union diag_reply *reply)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = type,
			.nlmsg_flags = NLM_F_REQUEST | flags,
		},
		.req = {
			.sdiag_family = family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = ~0u,
			.id = *id,
		},
	};
	ssize_t n;

	if (send(fd, &msg, sizeof(msg), 0) < 0)
		return -errno;
	n = recv(fd, reply, sizeof(*reply), 0);
	if (n < 0)
		return -errno;
	return NLMSG_OK(&reply->nlh, (size_t)n) ? 0 : -EBADMSG;
}

int dt_sockdiag_cookie(int nl_fd, const struct sockaddr *local,
		       const struct sockaddr *remote, uint64_t *cookie)
{
	struct inet_diag_sockid id = {
		.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
	};
	union diag_reply reply;
	const struct inet_diag_msg *diag;
	int rc;

	if (local->sa_family != remote->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	fill_side(local, &id.idiag_sport, id.idiag_src);
	fill_side(remote, &id.idiag_dport, id.idiag_dst);
	rc = one_socket_request(nl_fd, SOCK_DIAG_BY_FAMILY, 0, (__u8)local->sa_family, &id, &reply);
	if (rc)
		return rc;
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

/* ---- destroy: a filtered dump, then one SOCK_DESTROY per socket ---------- */

/* Connections an application may still be waiting on: established ones
 * (a keep-alive connection to a hung provider) and connects in progress. */
#define VICTIM_STATES ((1u << TCP_ESTABLISHED) | (1u << TCP_SYN_SENT))

/* One dump's filter holds at most this many endpoints and cgroups (more are
 * covered by more dumps), so that it stays well below the 64 KiB an
 * attribute and a jump offset (u16) can span. */
#define EPS_PER_DUMP     256
#define CGROUPS_PER_DUMP 1024
#define COND_MAX   (sizeof(struct inet_diag_bc_op) + sizeof(struct inet_diag_hostcond) + 16)
#define JMP_LEN    sizeof(struct inet_diag_bc_op)
#define FILTER_MAX ((EPS_PER_DUMP + CGROUPS_PER_DUMP) * (COND_MAX + JMP_LEN) + 4 * JMP_LEN)
#define RECV_BUF   65536
_Static_assert(NLA_HDRLEN + FILTER_MAX <= 0xffff, "a filter fits an attribute");
_Static_assert(NLMSG_LENGTH(sizeof(struct inet_diag_req_v2)) + NLA_HDRLEN + FILTER_MAX <= RECV_BUF,
	       "a dump request is built in the receive buffer");

/* One condition of the filter: an op and its operand. */
struct cond {
	__u8 code;
	size_t len;                        /* op included, a multiple of 4 */
	union {
		struct {
			struct inet_diag_hostcond h;
			__be32 addr[4];
		} host;
		__u64 cgroup_id;
		struct inet_diag_markcond mark;
	} arg;
};

/*
 * The filter is inet_diag bytecode: ops jumping forward by `yes` on a match
 * and by `no` otherwise; a socket is selected when a jump lands exactly on
 * the end, rejected when one lands 4 bytes past it. The kernel accepts only
 * programs whose `yes` jumps, followed from the start, visit every op, so a
 * choice between conditions is built as ss(8) does: each condition matching
 * falls through to an unconditional jump (INET_DIAG_BC_JMP takes `no`).
 */
struct filter {
	unsigned char *code;
	size_t len;                        /* written so far */
	size_t total;                      /* of the whole program */
};

static void put_op(struct filter *f, const struct cond *c, size_t yes_at, size_t no_at)
{
	struct inet_diag_bc_op op = {
		.code = c->code,
		.yes = (__u8)(yes_at - f->len),
		.no = (__u16)(no_at - f->len),
	};

	memcpy(f->code + f->len, &op, sizeof(op));
	memcpy(f->code + f->len + sizeof(op), &c->arg, c->len - sizeof(op));
	f->len += c->len;
}

static const struct cond jmp = { .code = INET_DIAG_BC_JMP, .len = JMP_LEN };

static size_t any_len(const struct cond *c, size_t n)
{
	size_t len = (n - 1) * JMP_LEN;

	for (size_t i = 0; i < n; i++)
		len += c[i].len;
	return len;
}

/* One of c[0..n) matches (n > 0), else reject. */
static void put_any(struct filter *f, const struct cond *c, size_t n)
{
	size_t end = f->len + any_len(c, n), reject = f->total + 4;

	for (size_t i = 0; i + 1 < n; i++) {
		put_op(f, &c[i], f->len + c[i].len, f->len + c[i].len + JMP_LEN);
		put_op(f, &jmp, f->len + JMP_LEN, end);
	}
	put_op(f, &c[n - 1], end, reject);
}

/* The mark is not c's, else reject. */
static void put_not(struct filter *f, const struct cond *c)
{
	size_t end = f->len + c->len + JMP_LEN, reject = f->total + 4;

	put_op(f, c, f->len + c->len, end);
	put_op(f, &jmp, f->len + JMP_LEN, reject);
}

/* An endpoint as a destination condition: IPv4 ones in AF_INET form, which
 * the kernel also matches against IPv4-mapped destinations of AF_INET6
 * sockets. Ports are in host order there. */
static void cond_dst(struct cond *c, const struct dt_endpoint *ep)
{
	bool v4 = ep->addr[0] == 0 && ep->addr[1] == 0 && ep->addr[2] == htonl(0xffff);

	memset(c, 0, sizeof(*c));
	c->code = INET_DIAG_BC_D_COND;
	c->arg.host.h.family = v4 ? AF_INET : AF_INET6;
	c->arg.host.h.prefix_len = v4 ? 32 : 128;
	c->arg.host.h.port = ntohs(ep->port);
	if (v4)
		c->arg.host.addr[0] = ep->addr[3];
	else
		memcpy(c->arg.host.addr, ep->addr, 16);
	c->len = sizeof(struct inet_diag_bc_op) + sizeof(c->arg.host.h) + (v4 ? 4 : 16);
}

static void cond_cgroup(struct cond *c, uint64_t id)
{
	memset(c, 0, sizeof(*c));
	c->code = INET_DIAG_BC_CGROUP_COND;
	c->arg.cgroup_id = id;
	c->len = sizeof(struct inet_diag_bc_op) + sizeof(__u64);
}

/* What one call needs, too big for the stack. */
struct work {
	unsigned char recv[RECV_BUF];
	unsigned char code[FILTER_MAX];
	struct cond dst[EPS_PER_DUMP];
	struct cond cg[CGROUPS_PER_DUMP];
};

/* Into w->code: destination one of eps, cgroup one of cgs, mark not skip_mark. */
static size_t build_filter(struct work *w, const struct dt_endpoint *eps, size_t n_eps,
			   const uint64_t *cgs, size_t n_cgs, uint32_t skip_mark)
{
	struct cond mark = {
		.code = INET_DIAG_BC_MARK_COND,
		.len = sizeof(struct inet_diag_bc_op) + sizeof(struct inet_diag_markcond),
		.arg.mark = { .mark = skip_mark, .mask = ~0u },
	};
	struct filter f = { .code = w->code };

	for (size_t i = 0; i < n_eps; i++)
		cond_dst(&w->dst[i], &eps[i]);
	for (size_t i = 0; i < n_cgs; i++)
		cond_cgroup(&w->cg[i], cgs[i]);
	f.total = any_len(w->dst, n_eps) + any_len(w->cg, n_cgs) + mark.len + JMP_LEN;
	put_any(&f, w->dst, n_eps);
	put_any(&f, w->cg, n_cgs);
	put_not(&f, &mark);
	return f.len;
}

/* A socket the dump returned, as SOCK_DESTROY names it (cookie included:
 * a new socket on the same 4-tuple is not the one that was checked). */
struct victim {
	__u8 family;
	struct inet_diag_sockid id;
};

struct victims {
	struct victim *v;
	size_t n, cap;
};

static bool has_ep(const struct dt_sockdiag_victims *want, const struct dt_endpoint *ep)
{
	for (size_t i = 0; i < want->n_eps; i++)
		if (memcmp(want->eps[i].addr, ep->addr, sizeof(ep->addr)) == 0 &&
		    want->eps[i].port == ep->port)
			return true;
	return false;
}

static bool has_cgroup(const struct dt_sockdiag_victims *want, uint64_t id)
{
	for (size_t i = 0; i < want->n_cgroups; i++)
		if (want->cgroups[i] == id)
			return true;
	return false;
}

/* The kernel's filter chose this socket: check it again against what was
 * asked, so that only a socket both agree on is destroyed. */
static bool wanted(const struct dt_sockdiag_victims *want, const struct nlmsghdr *nlh)
{
	const struct inet_diag_msg *m = NLMSG_DATA(nlh);
	const struct rtattr *a = (const struct rtattr *)(m + 1);
	int len = (int)nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	bool cgroup_ok = false, mark_ok = false;
	struct dt_endpoint ep = { .port = m->id.idiag_dport };

	if (!(VICTIM_STATES & (1u << m->idiag_state)))
		return false;
	if (m->idiag_family == AF_INET) {
		ep.addr[2] = htonl(0xffff);
		ep.addr[3] = m->id.idiag_dst[0];
	} else {
		memcpy(ep.addr, m->id.idiag_dst, sizeof(ep.addr));
	}
	if (!has_ep(want, &ep))
		return false;
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == INET_DIAG_CGROUP_ID && RTA_PAYLOAD(a) >= (int)sizeof(__u64)) {
			__u64 id;

			memcpy(&id, RTA_DATA(a), sizeof(id));
			cgroup_ok = has_cgroup(want, id);
		} else if (a->rta_type == INET_DIAG_MARK && RTA_PAYLOAD(a) >= (int)sizeof(__u32)) {
			__u32 mark;

			memcpy(&mark, RTA_DATA(a), sizeof(mark));
			mark_ok = mark != want->skip_mark;
		}
	}
	return cgroup_ok && mark_ok;
}

static int victims_add(struct victims *vs, const struct inet_diag_msg *m)
{
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 16;
		struct victim *v = realloc(vs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vs->v = v;
		vs->cap = cap;
	}
	vs->v[vs->n++] = (struct victim){ m->idiag_family, m->id };
	return 0;
}

/* Read a dump to its end, adding the sockets both filters select. */
static int read_dump(int fd, const struct dt_sockdiag_victims *want, struct victims *vs,
		     unsigned char *buf)
{
	for (;;) {
		ssize_t n = recv(fd, buf, RECV_BUF, MSG_TRUNC);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		size_t left;

		if (n < 0)
			return -errno;
		if (n > RECV_BUF)
			return -EMSGSIZE;
		for (left = (size_t)n; NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left)) {
			if (nlh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				return e->error ? e->error : -EBADMSG;
			}
			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				return -EBADMSG;
			if (wanted(want, nlh)) {
				int rc = victims_add(vs, NLMSG_DATA(nlh));

				if (rc)
					return rc;
			}
		}
	}
}

static int dump(int fd, __u8 family, const unsigned char *code, size_t code_len,
		unsigned char *buf)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct inet_diag_req_v2 *req = NLMSG_DATA(nlh);
	struct nlattr *attr = (struct nlattr *)(req + 1);

	memset(buf, 0, NLMSG_LENGTH(sizeof(*req)) + NLA_HDRLEN);
	nlh->nlmsg_len = NLMSG_LENGTH(sizeof(*req)) + NLA_HDRLEN + code_len;
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = VICTIM_STATES;
	attr->nla_type = INET_DIAG_REQ_BYTECODE;
	attr->nla_len = (__u16)(NLA_HDRLEN + code_len);
	memcpy((unsigned char *)attr + NLA_HDRLEN, code, code_len);
	if (send(fd, buf, nlh->nlmsg_len, 0) < 0)
		return -errno;
	return 0;
}

/* 1: destroyed, 0: already gone, or -errno. */
static int destroy_one(int fd, const struct victim *v)
{
	union diag_reply reply;
	const struct nlmsgerr *e = NLMSG_DATA(&reply.nlh);
	int rc = one_socket_request(fd, SOCK_DESTROY, NLM_F_ACK, v->family, &v->id, &reply);

	if (rc)
		return rc;
	if (reply.nlh.nlmsg_type != NLMSG_ERROR)
		return -EBADMSG;
	if (e->error == -ENOENT)
		return 0;
	return e->error ? e->error : 1;
}

/* One dump per family with one filter, then the destroys. */
static int destroy_chunk(int fd, const struct dt_sockdiag_victims *want,
			 const struct dt_endpoint *eps, size_t n_eps,
			 const uint64_t *cgs, size_t n_cgs, struct work *w)
{
	static const __u8 families[] = { AF_INET, AF_INET6 };
	size_t code_len = build_filter(w, eps, n_eps, cgs, n_cgs, want->skip_mark);
	struct victims vs = { 0 };
	int rc = 0, destroyed = 0;

	for (size_t i = 0; i < sizeof(families) && rc == 0; i++) {
		rc = dump(fd, families[i], w->code, code_len, w->recv);
		if (rc == 0)
			rc = read_dump(fd, want, &vs, w->recv);
	}
	for (size_t i = 0; i < vs.n && rc == 0; i++) {
		int r = destroy_one(fd, &vs.v[i]);

		if (r < 0)
			rc = r;
		else
			destroyed += r;
	}
	free(vs.v);
	return rc ? rc : destroyed;
}

int dt_sockdiag_destroy(const struct dt_sockdiag_victims *v)
{
	struct work *w;
	int fd, total = 0;

	if (v->n_eps == 0 || v->n_cgroups == 0)
		return 0;
	fd = dt_sockdiag_open();
	if (fd < 0)
		return -errno;
	w = malloc(sizeof(*w));
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	for (size_t e = 0; e < v->n_eps && total >= 0; e += EPS_PER_DUMP) {
		size_t n_eps = v->n_eps - e < EPS_PER_DUMP ? v->n_eps - e : EPS_PER_DUMP;

		for (size_t c = 0; c < v->n_cgroups && total >= 0; c += CGROUPS_PER_DUMP) {
			size_t n_cgs = v->n_cgroups - c < CGROUPS_PER_DUMP ?
				       v->n_cgroups - c : CGROUPS_PER_DUMP;
			int rc = destroy_chunk(fd, v, v->eps + e, n_eps, v->cgroups + c, n_cgs, w);

			total = rc < 0 ? rc : total + rc;
		}
	}
	free(w);
	close(fd);
	return total;
}
