// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kernel TCP signals per provider endpoint (docs/tcpsig.md).
 *
 * tp_btf programs on the TCP tracepoints count, for sockets whose remote
 * address:port is in detour's intercept map: connects completed (with their
 * latency from the SYN_SENT transition), connects failed or abandoned,
 * resets received and sent, retransmits. Counters go to tcp_signals; each
 * signal the health engine acts on also goes to a ring buffer, so the agent
 * hears of it within milliseconds without polling.
 *
 * Attribution is by the socket's remote address as the kernel holds it. A
 * connect the cgroup hook redirected has the proxy's address there, so the
 * application's side of a proxied connection is never counted; the proxy's
 * upstream socket, which is the one reaching the provider, is (flagged by
 * detour's SO_MARK). A connection the hook left direct (failover mode,
 * fail-open) is the application's own and is counted as such.
 *
 * The programs only read: they never change a socket or drop a packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "detour.h"
#include "observer.bpf.h"

#define AF_INET      2
#define AF_INET6     10
#define IPPROTO_TCP  6
#define ECONNABORTED 103

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the loader before load: count one netns only; 0: all. */
const volatile __u64 dt_netns_cookie = 0;

/* Per-endpoint counters; pinned by the loader when given a pin dir. LRU:
 * endpoints come and go with DNS, the table never fills. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_tcp_signals);
} tcp_signals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tcp_events SEC(".maps");

/* What a provider socket remembers; only provider sockets get one. */
struct sk_sig {
	__u64 syn_ns;   /* when it entered SYN_SENT; 0: before we were loaded */
	__u32 retrans;  /* retransmits seen, to thin out their events */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_sig);
} sk_sig SEC(".maps");

/* The remote end in the one 16-byte form of detour.h. A dual-stack socket
 * talking to an IPv4 peer already holds ::ffff:a.b.c.d in skc_v6_daddr, the
 * same key detour.bpf.c builds for it. Returns false for sockets not
 * counted: not TCP, another netns, not a provider. */
static __always_inline bool provider_of(const struct sock *sk, struct dt_endpoint *ep)
{
	const struct sock_common *c = &sk->__sk_common;
	__u16 family = c->skc_family;

	if (dt_netns_cookie && c->skc_net.net->net_cookie != dt_netns_cookie)
		return false;
	if (family == AF_INET) {
		ep->addr[0] = 0;
		ep->addr[1] = 0;
		ep->addr[2] = bpf_htonl(0xffff);
		ep->addr[3] = c->skc_daddr;
	} else if (family == AF_INET6) {
		ep->addr[0] = c->skc_v6_daddr.in6_u.u6_addr32[0];
		ep->addr[1] = c->skc_v6_daddr.in6_u.u6_addr32[1];
		ep->addr[2] = c->skc_v6_daddr.in6_u.u6_addr32[2];
		ep->addr[3] = c->skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		return false;
	}
	ep->port = c->skc_dport;
	ep->pad = 0;
	return bpf_map_lookup_elem(&intercept, ep) != NULL;
}

static __always_inline struct dt_tcp_signals *signals_of(const struct dt_endpoint *ep)
{
	struct dt_tcp_signals *s = bpf_map_lookup_elem(&tcp_signals, ep);

	if (!s) {
		struct dt_tcp_signals fresh = {};

		bpf_map_update_elem(&tcp_signals, ep, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&tcp_signals, ep);
	}
	return s;
}

/* @state: the socket's state as of the event (inet_sock_set_state fires
 * before the change is made). */
static __always_inline void emit(const struct sock *sk, const struct dt_endpoint *ep,
				 __u32 kind, __u64 value, __u64 elapsed, __u32 flags,
				 __u16 state, __u64 now)
{
	struct dt_tcp_event *e;

	e = bpf_ringbuf_reserve(&tcp_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	e->ep = *ep;
	e->kind = kind;
	e->flags = flags;
	e->value = value;
	e->ts_ns = now;
	e->elapsed_ns = elapsed;
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->sport = sk->__sk_common.skc_num;
	e->state = state;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

/* sk_mark exists on full sockets only, not on time-wait or request socks. */
static __always_inline __u32 flags_of(const struct sock *sk, bool full)
{
	if (full && dt_mark && sk->sk_mark == dt_mark)
		return DT_TCP_F_PROXY;
	return 0;
}

static __always_inline void touch(struct dt_tcp_signals *s, __u32 kind, __u64 now)
{
	s->last_event_ns = now;
	s->last_kind = kind;
}

/* SYN_SENT: start the connect clock. SYN_SENT -> ESTABLISHED: connected.
 * SYN_SENT -> CLOSE: failed (the kernel set sk_err: refused, timed out,
 * unreachable) or abandoned (closed by its owner, or destroyed). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpsig_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct dt_tcp_signals *s;
	struct dt_endpoint ep;
	struct sk_sig *sig;
	__u64 now, elapsed = 0;
	__u32 kind;
	int err;

	/* the cheap filter first: this runs on every TCP state change */
	if (newstate != TCP_SYN_SENT && oldstate != TCP_SYN_SENT)
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP || !provider_of(sk, &ep))
		return 0;

	now = bpf_ktime_get_ns();
	if (newstate == TCP_SYN_SENT) {
		sig = bpf_sk_storage_get(&sk_sig, (void *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (sig) {
			sig->syn_ns = now;
			sig->retrans = 0;
		}
		return 0;
	}
	if (newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;

	sig = bpf_sk_storage_get(&sk_sig, (void *)sk, 0, 0);
	if (sig && sig->syn_ns)
		elapsed = now - sig->syn_ns;
	s = signals_of(&ep);
	if (newstate == TCP_ESTABLISHED) {
		kind = DT_TCP_CONNECT_OK;
		if (s) {
			__sync_fetch_and_add(&s->connect_ok, 1);
			if (elapsed) {
				__sync_fetch_and_add(&s->connect_lat_sum_ns, elapsed);
				__sync_fetch_and_add(&s->connect_lat_count, 1);
				s->connect_lat_last_ns = elapsed;
			}
			touch(s, kind, now);
		}
		emit(sk, &ep, kind, elapsed, elapsed, flags_of(sk, true), newstate, now);
		return 0;
	}

	err = sk->sk_err;
	kind = (err && err != ECONNABORTED) ? DT_TCP_CONNECT_FAIL : DT_TCP_CONNECT_ABANDONED;
	if (s) {
		if (kind == DT_TCP_CONNECT_FAIL) {
			__sync_fetch_and_add(&s->connect_fail, 1);
			s->last_errno = err;
		} else {
			__sync_fetch_and_add(&s->connect_abandoned, 1);
		}
		touch(s, kind, now);
	}
	emit(sk, &ep, kind, err, elapsed, flags_of(sk, true), newstate, now);
	return 0;
}

/* A reset to a connect in SYN_SENT is a refusal, counted as a connect
 * failure (ECONNREFUSED) by tcpsig_state; here only resets that cut a
 * synchronized connection. */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcpsig_reset_recv, struct sock *sk)
{
	struct dt_tcp_signals *s;
	struct dt_endpoint ep;
	__u8 state;
	__u64 now;

	if (sk->__sk_common.skc_state == TCP_SYN_SENT || !provider_of(sk, &ep))
		return 0;
	now = bpf_ktime_get_ns();
	s = signals_of(&ep);
	if (s) {
		__sync_fetch_and_add(&s->resets_recv, 1);
		touch(s, DT_TCP_RESET_RECV, now);
	}
	state = sk->__sk_common.skc_state;
	emit(sk, &ep, DT_TCP_RESET_RECV, state, 0, flags_of(sk, true), state, now);
	return 0;
}

/* Only the socket argument is read: it has been first on every kernel,
 * the skb and reason arguments came later. sk is NULL for a reset sent on
 * behalf of no socket (a segment to a closed port: not a provider's). */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcpsig_reset_sent, const struct sock *sk)
{
	struct dt_tcp_signals *s;
	struct dt_endpoint ep;
	__u8 state;
	__u64 now;

	if (!sk || !provider_of(sk, &ep))
		return 0;
	state = sk->__sk_common.skc_state;
	now = bpf_ktime_get_ns();
	s = signals_of(&ep);
	if (s) {
		__sync_fetch_and_add(&s->resets_sent, 1);
		touch(s, DT_TCP_RESET_SENT, now);
	}
	emit(sk, &ep, DT_TCP_RESET_SENT, state, 0,
	     flags_of(sk, state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV), state, now);
	return 0;
}

/* Every retransmission is counted; events are thinned to the SYN ones
 * (at most tcp_syn_retries per connect: a blackholed provider) and to the
 * 1st, 2nd, 4th, 8th... of a socket, so a lossy bulk transfer cannot
 * flood the ring buffer. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcpsig_retransmit, const struct sock *sk)
{
	struct dt_tcp_signals *s;
	struct dt_endpoint ep;
	struct sk_sig *sig;
	__u32 n = 1, flags;
	bool syn;
	__u64 now;

	if (!provider_of(sk, &ep))
		return 0;
	now = bpf_ktime_get_ns();
	syn = sk->__sk_common.skc_state == TCP_SYN_SENT;
	sig = bpf_sk_storage_get(&sk_sig, (void *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (sig)
		n = ++sig->retrans;
	s = signals_of(&ep);
	if (s) {
		__sync_fetch_and_add(&s->retransmits, 1);
		if (syn)
			__sync_fetch_and_add(&s->syn_retransmits, 1);
		touch(s, DT_TCP_RETRANSMIT, now);
	}
	if (!syn && (n & (n - 1)))
		return 0;
	flags = flags_of(sk, true) | (syn ? DT_TCP_F_SYN : 0);
	emit(sk, &ep, DT_TCP_RETRANSMIT, n, 0, flags, sk->__sk_common.skc_state, now);
	return 0;
}
