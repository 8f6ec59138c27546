// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * detour's cgroup hooks.
 *
 * connect4/connect6 rewrite an enrolled application's connect() to a
 * configured provider endpoint into the local proxy, and remember where it
 * wanted to go: in socket storage (for getpeername4/6, which give the
 * application back the address it asked for) and in the redirects map under
 * the socket cookie, which the proxy learns from sock_diag for the peer of an
 * accepted connection. No program runs on any other socket event, so a
 * connect that is not intercepted pays one hash lookup and nothing more.
 *
 * Every hook returns 1 (allow): failing a connect() would turn an agent
 * problem into an application outage. A redirect happens only while the
 * agent's heartbeat is fresh and its listener exists in the caller's netns.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "detour.h"

#define AF_INET   2
#define AF_INET6  10
#define SOCK_STREAM 1
#define ALLOW     1

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_intercept);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} intercept SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_verdict);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DT_MAX_PROVIDERS);
	__type(key, __u32);
	__type(value, struct dt_provider);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} providers SEC(".maps");

/* written by detourd: its health engine's verdict per provider, which
 * failover mode follows (operator drains included: they publish DOWN) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DT_MAX_PROVIDERS);
	__type(key, __u32);
	__type(value, struct dt_provider_health);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} provider_health SEC(".maps");

/* written by detourd: its health verdict per (provider, model) it tracks */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_PROVIDERS * DT_MODELS_PER_PROVIDER);
	__type(key, struct dt_model_key);
	__type(value, struct dt_provider_health);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} model_health SEC(".maps");

/* written by detourctl only (drain, undrain, force), applied by detourd;
 * pinned, so an override outlives detourd's restarts */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DT_MAX_OVERRIDES);
	__type(key, struct dt_override_key);
	__type(value, struct dt_override);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} overrides SEC(".maps");

/* written by detourd: the proxy's hedge counters (one entry) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_proxy_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} proxy_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_MAX_ENDPOINTS);
	__type(key, struct dt_endpoint);
	__type(value, struct dt_ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* Socket cookie of the application's socket -> origin; the proxy deletes
 * what it consumed, LRU bounds what it never did (connections never accepted). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_MAX_REDIRECTS);
	__type(key, __u64);
	__type(value, struct dt_origin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} redirects SEC(".maps");

/* Per-socket origin of redirected application sockets; freed with the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dt_origin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sk_origin SEC(".maps");

static __always_inline struct dt_stats *global_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

#define count(field) do {                                   \
		struct dt_stats *s__ = global_stats();      \
		if (s__)                                    \
			s__->field++; /* per-CPU: no atomics */ \
	} while (0)

static __always_inline void count_endpoint(const struct dt_endpoint *ep, bool redirected)
{
	struct dt_ep_stats *s = bpf_map_lookup_elem(&ep_stats, ep);

	if (!s) {
		struct dt_ep_stats fresh = {};

		bpf_map_update_elem(&ep_stats, ep, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&ep_stats, ep);
		if (!s)
			return;
	}
	if (redirected)
		__sync_fetch_and_add(&s->redirected, 1);
	else
		__sync_fetch_and_add(&s->passed, 1);
}

/* Failover mode leaves a connection direct while both its provider's verdict
 * (health engine) and its endpoint's (relay) are HEALTHY. A provider the agent
 * never wrote reads as zeroes: HEALTHY. */
static __always_inline bool healthy(const struct dt_intercept *ic, const struct dt_endpoint *dst)
{
	__u32 id = ic->provider_id;
	struct dt_provider_health *ph = bpf_map_lookup_elem(&provider_health, &id);
	struct dt_verdict *v;

	if (ph && ph->state != DT_HEALTHY)
		return false;
	v = bpf_map_lookup_elem(&verdicts, dst);
	return !v || v->state == DT_HEALTHY;
}

/* Is the proxy listening on @listener:@port in the caller's network namespace? */
static __always_inline bool listener_alive(struct bpf_sock_addr *ctx, bool v4,
					   const struct dt_config *cfg)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 len;

	if (v4) {
		tuple.ipv4.daddr = cfg->listen4;
		tuple.ipv4.dport = cfg->listen_port;
		len = sizeof(tuple.ipv4);
	} else {
		__builtin_memcpy(tuple.ipv6.daddr, cfg->listen6, sizeof(tuple.ipv6.daddr));
		tuple.ipv6.dport = cfg->listen_port;
		len = sizeof(tuple.ipv6);
	}
	sk = bpf_sk_lookup_tcp(ctx, &tuple, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

/*
 * Decide whether this connect() to @dst is redirected, and record its origin.
 * @v4_target: the proxy is reached over IPv4 (plain AF_INET or IPv4-mapped).
 */
static __always_inline bool redirect_wanted(struct bpf_sock_addr *ctx,
					    const struct dt_endpoint *dst,
					    bool v4_target,
					    const struct dt_config **cfg_out)
{
	struct dt_intercept *ic;
	const struct dt_config *cfg;
	struct dt_origin *origin;
	struct bpf_sock *sk;
	__u32 zero = 0;
	__u64 now;

	if (ctx->type != SOCK_STREAM)
		return false;
	ic = bpf_map_lookup_elem(&intercept, dst);
	if (!ic)
		return false; /* the common case: one hash lookup, nothing else */

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !cfg->enabled)
		return false;

	sk = ctx->sk;
	if (!sk)
		return false;
	if ((cfg->mark && sk->mark == cfg->mark) ||
	    (bpf_get_current_pid_tgid() >> 32) == cfg->agent_tgid) {
		count(pass_own);
		return false;
	}

	now = bpf_ktime_get_ns();
	if (now - cfg->heartbeat_ns > cfg->heartbeat_ttl_ns) {
		count(pass_stale);
		count_endpoint(dst, false);
		return false;
	}

	if (cfg->mode == DT_MODE_FAILOVER && healthy(ic, dst)) {
		count(pass_healthy);
		count_endpoint(dst, false);
		return false;
	}

	if (!listener_alive(ctx, v4_target, cfg)) {
		count(pass_no_listener);
		count_endpoint(dst, false);
		return false;
	}

	origin = bpf_sk_storage_get(&sk_origin, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!origin) {
		count(pass_no_storage);
		count_endpoint(dst, false);
		return false;
	}
	origin->dst = *dst;
	origin->cookie = bpf_get_socket_cookie(ctx);
	origin->cgroup_id = bpf_get_current_cgroup_id();
	origin->ts_ns = now;
	origin->pid = bpf_get_current_pid_tgid() >> 32;
	origin->provider_id = ic->provider_id;
	bpf_get_current_comm(origin->comm, sizeof(origin->comm));
	/* without its origin the proxy could not relay: stay direct */
	if (bpf_map_update_elem(&redirects, &origin->cookie, origin, BPF_ANY)) {
		bpf_sk_storage_delete(&sk_origin, sk);
		count(pass_no_storage);
		count_endpoint(dst, false);
		return false;
	}
	count(origins_published);

	count(redirected);
	count_endpoint(dst, true);
	*cfg_out = cfg;
	return true;
}

SEC("cgroup/connect4")
int dt_connect4(struct bpf_sock_addr *ctx)
{
	struct dt_endpoint dst = {};
	const struct dt_config *cfg;

	dst.addr[2] = bpf_htonl(0xffff);
	dst.addr[3] = ctx->user_ip4;
	dst.port = (__u16)ctx->user_port;
	if (redirect_wanted(ctx, &dst, true, &cfg)) {
		ctx->user_ip4 = cfg->listen4;
		ctx->user_port = cfg->listen_port;
	}
	return ALLOW;
}

static __always_inline bool is_v4_mapped(const struct dt_endpoint *ep)
{
	return ep->addr[0] == 0 && ep->addr[1] == 0 && ep->addr[2] == bpf_htonl(0xffff);
}

SEC("cgroup/connect6")
int dt_connect6(struct bpf_sock_addr *ctx)
{
	struct dt_endpoint dst = {};
	const struct dt_config *cfg;
	bool mapped;

	dst.addr[0] = ctx->user_ip6[0];
	dst.addr[1] = ctx->user_ip6[1];
	dst.addr[2] = ctx->user_ip6[2];
	dst.addr[3] = ctx->user_ip6[3];
	dst.port = (__u16)ctx->user_port;
	mapped = is_v4_mapped(&dst);
	if (!redirect_wanted(ctx, &dst, mapped, &cfg))
		return ALLOW;

	/* A dual-stack socket reaching an IPv4 provider goes to the IPv4
	 * listener, still written in the mapped form the socket expects. */
	if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = cfg->listen4;
	} else {
		ctx->user_ip6[0] = cfg->listen6[0];
		ctx->user_ip6[1] = cfg->listen6[1];
		ctx->user_ip6[2] = cfg->listen6[2];
		ctx->user_ip6[3] = cfg->listen6[3];
	}
	ctx->user_port = cfg->listen_port;
	return ALLOW;
}

static __always_inline struct dt_origin *origin_of(struct bpf_sock_addr *ctx)
{
	if (!ctx->sk)
		return NULL;
	return bpf_sk_storage_get(&sk_origin, ctx->sk, 0, 0);
}

SEC("cgroup/getpeername4")
int dt_getpeername4(struct bpf_sock_addr *ctx)
{
	struct dt_origin *origin = origin_of(ctx);

	if (origin) {
		ctx->user_ip4 = origin->dst.addr[3];
		ctx->user_port = origin->dst.port;
		count(peer_rewritten);
	}
	return ALLOW;
}

SEC("cgroup/getpeername6")
int dt_getpeername6(struct bpf_sock_addr *ctx)
{
	struct dt_origin *origin = origin_of(ctx);

	if (origin) {
		ctx->user_ip6[0] = origin->dst.addr[0];
		ctx->user_ip6[1] = origin->dst.addr[1];
		ctx->user_ip6[2] = origin->dst.addr[2];
		ctx->user_ip6[3] = origin->dst.addr[3];
		ctx->user_port = origin->dst.port;
		count(peer_rewritten);
	}
	return ALLOW;
}
