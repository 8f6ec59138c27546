// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Provider signals seen on the uplink (docs/uplink.md).
 *
 * An XDP program on the interface toward the providers counts, per provider
 * endpoint (an address:port in detour's intercept map): TCP resets coming
 * from the endpoint, and ICMP/ICMPv6 destination-unreachable and
 * time-exceeded errors about a TCP segment that was going to it. Counters go
 * to uplink_signals; each counted packet also goes to a ring buffer, so the
 * agent hears of it within milliseconds without polling.
 *
 * Unlike the TCP tracepoints (tcpsig.bpf.c), this sees flows the host only
 * forwards (containers behind a bridge, VMs, a gateway), and errors TCP
 * keeps to itself (an unreachable on an established connection is a soft
 * error). Whether a socket of the uplink's network namespace owns the flow
 * is looked up and reported (DT_UPLINK_F_LOCAL, and DT_UPLINK_F_AGENT for
 * the agent's own), so the agent can leave what is reported already (by the
 * socket's owner, or the tracepoints) to them.
 *
 * Parsing: Ethernet, one 802.1Q/802.1ad tag, IPv4 (options, first fragments
 * only), IPv6 (up to MAX_EXT_HEADERS extension headers). Every packet
 * passes, untouched, whatever it holds: the program only reads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "detour.h"
#include "observer.bpf.h"

#define ETH_P_IP        0x0800
#define ETH_P_IPV6      0x86DD
#define ETH_P_8021Q     0x8100
#define ETH_P_8021AD    0x88A8
#define PROTO_ICMP      1
#define PROTO_TCP       6
#define PROTO_ICMPV6    58
#define NEXTHDR_HOP     0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAG    44
#define NEXTHDR_DEST    60
#define IP_OFFSET       0x1fff   /* IPv4 fragment offset bits */
#define IP6_OFFSET      0xfff8   /* IPv6 fragment offset bits */
#define ICMP_DEST_UNREACH    3
#define ICMP_FRAG_NEEDED     4   /* path MTU discovery, not a failure */
#define ICMP_TIME_EXCEEDED   11
#define ICMPV6_DEST_UNREACH  1
#define ICMPV6_TIME_EXCEED   3
#define MAX_EXT_HEADERS 4

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Per-endpoint counters; pinned by the loader when given a pin dir. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_uplink_signals);
} uplink_signals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} uplink_events SEC(".maps");

/* The part of the packet not parsed yet. */
struct cursor {
	void *pos;
	void *end;
};

/* The first 4 bytes of a TCP header: all an ICMP error is sure to quote. */
struct ports {
	__be16 source;
	__be16 dest;
};

/* What one counted packet says. */
struct sighting {
	struct dt_endpoint ep;        /* the provider end */
	struct bpf_sock_tuple tuple;  /* the flow as a segment from the provider carries it */
	__u32 kind;
	__u32 flags;
	__u8 icmp_type, icmp_code;
};

static __always_inline void *take(struct cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

static __always_inline void addr_v4(__u32 *out, __be32 a)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0xffff);
	out[3] = a;
}

static __always_inline void addr_v6(__u32 *out, const struct in6_addr *a)
{
	out[0] = a->in6_u.u6_addr32[0];
	out[1] = a->in6_u.u6_addr32[1];
	out[2] = a->in6_u.u6_addr32[2];
	out[3] = a->in6_u.u6_addr32[3];
}

/* An IPv4 header with its options; NULL when malformed, cut short, or not
 * a first fragment (the others carry no transport header). */
static __always_inline struct iphdr *ipv4_header(struct cursor *c, __u8 *proto)
{
	struct iphdr *ip = c->pos;
	__u32 len;

	if ((void *)(ip + 1) > c->end || ip->version != 4 || ip->ihl < 5)
		return NULL;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return NULL;
	len = ip->ihl * 4;
	if (!take(c, len))
		return NULL;
	*proto = ip->protocol;
	return ip;
}

/* An IPv6 header and the extension headers before the transport header. */
static __always_inline struct ipv6hdr *ipv6_header(struct cursor *c, __u8 *proto)
{
	struct ipv6hdr *ip6 = take(c, sizeof(*ip6));
	__u8 next;

	if (!ip6 || ip6->version != 6)
		return NULL;
	next = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < MAX_EXT_HEADERS; i++) {
		struct ipv6_opt_hdr *h;

		if (next == NEXTHDR_FRAG) {
			struct frag_hdr *f = take(c, sizeof(*f));

			if (!f || (f->frag_off & bpf_htons(IP6_OFFSET)))
				return NULL;
			next = f->nexthdr;
			continue;
		}
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST)
			break;
		h = c->pos;
		if ((void *)(h + 1) > c->end || !take(c, (h->hdrlen + 1) * 8))
			return NULL;
		next = h->nexthdr;
	}
	*proto = next;
	return ip6;
}

/* The TCP state of the uplink namespace's socket owning the flow, 0 when
 * none does (TCP states start at 1); a full socket carrying detour's
 * SO_MARK is the agent's own (DT_UPLINK_F_AGENT). */
static __always_inline __u8 local_state(struct xdp_md *ctx, struct sighting *s)
{
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	__u8 state;

	if (s->flags & DT_UPLINK_F_IPV6)
		sk = bpf_skc_lookup_tcp(ctx, &s->tuple, sizeof(s->tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_skc_lookup_tcp(ctx, &s->tuple, sizeof(s->tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	state = sk->state;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp && dt_mark && tp->inet_conn.icsk_inet.sk.sk_mark == dt_mark)
		s->flags |= DT_UPLINK_F_AGENT;
	bpf_sk_release(sk);
	return state;
}

static __always_inline struct dt_uplink_signals *signals_of(const struct dt_endpoint *ep)
{
	struct dt_uplink_signals *s = bpf_map_lookup_elem(&uplink_signals, ep);

	if (!s) {
		struct dt_uplink_signals fresh = {};

		bpf_map_update_elem(&uplink_signals, ep, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&uplink_signals, ep);
	}
	return s;
}

/* Counted and reported when the endpoint is a provider's. */
static __always_inline void sighted(struct xdp_md *ctx, struct sighting *s)
{
	struct dt_uplink_signals *sig;
	struct dt_uplink_event *e;
	__u64 now;
	__u8 state;

	s->ep.pad = 0;
	if (!bpf_map_lookup_elem(&intercept, &s->ep))
		return;
	now = bpf_ktime_get_ns();
	state = local_state(ctx, s);
	if (state)
		s->flags |= DT_UPLINK_F_LOCAL;
	sig = signals_of(&s->ep);
	if (sig) {
		if (s->kind == DT_UPLINK_RESET)
			__sync_fetch_and_add(&sig->resets, 1);
		else if (s->kind == DT_UPLINK_UNREACHABLE)
			__sync_fetch_and_add(&sig->unreachable, 1);
		else
			__sync_fetch_and_add(&sig->time_exceeded, 1);
		if (state)
			__sync_fetch_and_add(&sig->local, 1);
		sig->last_event_ns = now;
		sig->last_kind = s->kind;
		sig->last_icmp_type = s->icmp_type;
		sig->last_icmp_code = s->icmp_code;
	}

	e = bpf_ringbuf_reserve(&uplink_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	e->ep = s->ep;
	if (s->flags & DT_UPLINK_F_IPV6) {
		addr_v6(e->local, (const struct in6_addr *)s->tuple.ipv6.daddr);
		e->local_port = s->tuple.ipv6.dport;
	} else {
		addr_v4(e->local, s->tuple.ipv4.daddr);
		e->local_port = s->tuple.ipv4.dport;
	}
	e->ts_ns = now;
	e->kind = s->kind;
	e->flags = s->flags;
	e->icmp_type = s->icmp_type;
	e->icmp_code = s->icmp_code;
	e->sk_state = state;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	bpf_ringbuf_submit(e, 0);
}

/* The kind of an ICMP error worth counting; 0 for the rest. */
static __always_inline __u32 icmp_kind(bool v6, __u8 type, __u8 code)
{
	if (v6)
		return type == ICMPV6_DEST_UNREACH ? DT_UPLINK_UNREACHABLE :
		       type == ICMPV6_TIME_EXCEED ? DT_UPLINK_TIME_EXCEEDED : 0;
	if (type == ICMP_DEST_UNREACH)
		return code == ICMP_FRAG_NEEDED ? 0 : DT_UPLINK_UNREACHABLE;
	return type == ICMP_TIME_EXCEEDED ? DT_UPLINK_TIME_EXCEEDED : 0;
}

/* The segment an ICMP error quotes went from here to the endpoint: the
 * endpoint is its destination, and the flow, as a segment from the
 * endpoint would carry it, is the quote reversed. */
static __always_inline void quoted_ipv4(struct xdp_md *ctx, struct cursor *c, struct sighting *s)
{
	struct iphdr *ip;
	struct ports *p;
	__u8 proto;

	ip = ipv4_header(c, &proto);
	if (!ip || proto != PROTO_TCP || !(p = take(c, sizeof(*p))))
		return;
	addr_v4(s->ep.addr, ip->daddr);
	s->ep.port = p->dest;
	s->tuple.ipv4.saddr = ip->daddr;
	s->tuple.ipv4.daddr = ip->saddr;
	s->tuple.ipv4.sport = p->dest;
	s->tuple.ipv4.dport = p->source;
	sighted(ctx, s);
}

static __always_inline void quoted_ipv6(struct xdp_md *ctx, struct cursor *c, struct sighting *s)
{
	struct ipv6hdr *ip6;
	struct ports *p;
	__u8 proto;

	ip6 = ipv6_header(c, &proto);
	if (!ip6 || proto != PROTO_TCP || !(p = take(c, sizeof(*p))))
		return;
	addr_v6(s->ep.addr, &ip6->daddr);
	s->ep.port = p->dest;
	__builtin_memcpy(s->tuple.ipv6.saddr, &ip6->daddr, 16);
	__builtin_memcpy(s->tuple.ipv6.daddr, &ip6->saddr, 16);
	s->tuple.ipv6.sport = p->dest;
	s->tuple.ipv6.dport = p->source;
	sighted(ctx, s);
}

/* After the outer IP header: a reset from the endpoint, or an ICMP error
 * quoting a segment to it. */
static __always_inline void transport(struct xdp_md *ctx, struct cursor *c, __u8 proto,
				      struct sighting *s)
{
	bool v6 = s->flags & DT_UPLINK_F_IPV6;

	if (proto == PROTO_TCP) {
		struct tcphdr *th = take(c, sizeof(*th));

		if (!th || !th->rst)
			return;
		s->kind = DT_UPLINK_RESET;
		s->ep.port = th->source;
		if (v6) {
			s->tuple.ipv6.sport = th->source;
			s->tuple.ipv6.dport = th->dest;
		} else {
			s->tuple.ipv4.sport = th->source;
			s->tuple.ipv4.dport = th->dest;
		}
		sighted(ctx, s);
		return;
	}
	if (proto != (v6 ? PROTO_ICMPV6 : PROTO_ICMP))
		return;
	/* ICMP and ICMPv6 share the layout of their first 8 bytes */
	{
		struct icmphdr *ih = take(c, sizeof(*ih));

		if (!ih)
			return;
		s->kind = icmp_kind(v6, ih->type, ih->code);
		if (!s->kind)
			return;
		s->icmp_type = ih->type;
		s->icmp_code = ih->code;
	}
	if (v6)
		quoted_ipv6(ctx, c, s);
	else
		quoted_ipv4(ctx, c, s);
}

SEC("xdp")
int uplink_watch(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct sighting s = {};
	struct ethhdr *eth = take(&c, sizeof(*eth));
	__be16 proto;
	__u8 l4;

	if (!eth)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *tag = take(&c, sizeof(*tag));

		if (!tag)
			return XDP_PASS;
		proto = tag->h_vlan_encapsulated_proto;
		s.flags |= DT_UPLINK_F_VLAN;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = ipv4_header(&c, &l4);

		if (!ip)
			return XDP_PASS;
		/* a reset's source; overwritten by an ICMP error's quote */
		addr_v4(s.ep.addr, ip->saddr);
		s.tuple.ipv4.saddr = ip->saddr;
		s.tuple.ipv4.daddr = ip->daddr;
		transport(ctx, &c, l4, &s);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = ipv6_header(&c, &l4);

		if (!ip6)
			return XDP_PASS;
		s.flags |= DT_UPLINK_F_IPV6;
		addr_v6(s.ep.addr, &ip6->saddr);
		__builtin_memcpy(s.tuple.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(s.tuple.ipv6.daddr, &ip6->daddr, 16);
		transport(ctx, &c, l4, &s);
	}
	return XDP_PASS;
}
