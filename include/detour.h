/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the BPF programs (bpf/detour.bpf.c) and userspace
 * (detourd, detourctl). One definition, two users: the BPF side includes
 * vmlinux.h first, userspace includes <linux/types.h> first.
 *
 * Every address is kept in one 16-byte form: IPv6, or IPv4-mapped IPv6
 * (::ffff:a.b.c.d), in network byte order. Ports are in network byte order.
 */
#ifndef DETOUR_H
#define DETOUR_H

#define DT_NAME_LEN       32
#define DT_COMM_LEN       16
#define DT_MAX_ENDPOINTS  4096
#define DT_MAX_PROVIDERS  256
#define DT_MAX_REDIRECTS  65536
#define DT_MODEL_LEN      128   /* a model name and its NUL */
#define DT_MODELS_PER_PROVIDER 8 /* model verdicts the health engine keeps per provider */
#define DT_MAX_OVERRIDES  1024

/* Names of the pinned objects under the pin directory. */
#define DT_MAP_SETTINGS   "settings"
#define DT_MAP_INTERCEPT  "intercept"
#define DT_MAP_VERDICTS   "verdicts"
#define DT_MAP_PROVIDERS  "providers"
#define DT_MAP_EP_STATS   "ep_stats"
#define DT_MAP_STATS      "stats"
#define DT_MAP_REDIRECTS  "redirects"
#define DT_MAP_SK_ORIGIN  "sk_origin"
#define DT_MAP_PROVIDER_HEALTH "provider_health"
#define DT_MAP_MODEL_HEALTH "model_health"
#define DT_MAP_OVERRIDES  "overrides"
#define DT_MAP_PROXY_STATS "proxy_stats"
#define DT_PIN_LINKS      "links"
#define DT_PIN_PROGS      "progs"

/* An address:port in the one 16-byte form; the key of the intercept,
 * verdicts and ep_stats maps. */
struct dt_endpoint {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

enum dt_mode {
	DT_MODE_PROXY    = 0, /* every intercepted connection goes to the proxy */
	DT_MODE_FAILOVER = 1, /* only connections to a provider or endpoint not HEALTHY do */
};

/* Single entry of the settings array map, written by detourd only. */
struct dt_config {
	__u64 heartbeat_ns;     /* CLOCK_MONOTONIC of the agent's last beat */
	__u64 heartbeat_ttl_ns; /* redirect only while the beat is younger */
	__u32 listen4;          /* proxy IPv4 listener address */
	__u32 listen6[4];       /* proxy IPv6 listener address */
	__u16 listen_port;      /* both listeners share this port */
	__u16 pad;
	__u32 mark;             /* SO_MARK of the proxy's own sockets */
	__u32 agent_tgid;       /* the agent's own connects are never redirected */
	__u32 mode;             /* enum dt_mode */
	__u32 enabled;
	__u32 pad2;
};

/* Value of the intercept map: an endpoint of a configured provider. */
enum dt_intercept_flags {
	DT_EP_STALE = 1, /* no longer resolved; kept for the DNS grace period */
};

struct dt_intercept {
	__u32 provider_id;
	__u32 flags;
};

enum dt_state {
	DT_HEALTHY      = 0,
	DT_DEGRADED     = 1,
	DT_RATE_LIMITED = 2,
	DT_DOWN         = 3,
	DT_PROBING      = 4,
};

enum dt_reason {
	DT_REASON_NONE            = 0,
	DT_REASON_CONNECT_REFUSED = 1,
	DT_REASON_CONNECT_TIMEOUT = 2,
	DT_REASON_RESET           = 3,
	DT_REASON_UNREACHABLE     = 4,
	DT_REASON_RECOVERED       = 5,
};

/* Value of the verdicts map, keyed by endpoint; written by detourd only. */
struct dt_verdict {
	__u32 provider_id;
	__u32 state;           /* enum dt_state */
	__u32 reason;          /* enum dt_reason of the last change */
	__u32 consecutive_failures;
	__u64 since_ns;        /* CLOCK_MONOTONIC of the last state change */
	__u64 until_ns;        /* DOWN: not tried again before this time */
	__u64 relayed;         /* connections relayed to this endpoint */
	__u64 failures;        /* connect failures, resets before the first byte */
	__u64 failovers;       /* connections moved away from this endpoint */
};

/* Operator overrides of a verdict (detourctl drain|undrain|force). */
enum dt_health_override {
	DT_OVERRIDE_NONE,   /* clear: the signals decide again */
	DT_OVERRIDE_DRAIN,  /* never route, not even in panic mode */
	DT_OVERRIDE_FORCE,  /* always route, whatever the signals */
};

/* What the active probes of one provider did and cost since detourd began
 * probing it (agent/probe.c, docs/probe.md): part of its provider_health
 * value. */
struct dt_probe_stats {
	__u64 sent;            /* probes sent, either kind */
	__u64 failed;          /* ... that found the provider failing */
	__u64 ttft_probes;     /* of the sent, one-token completions (opt-in) */
	__u64 input_tokens;    /* their answers' usage, else an estimate of the prompt */
	__u64 output_tokens;   /* ... else 1 per answered completion */
};

/* A health verdict as published: the value of the provider_health array map
 * (index = provider id: the provider as a whole) and of the model_health
 * hash map (key = struct dt_model_key). Written by detourd at each change
 * of the health engine's verdict (agent/health.h), and refreshed (calls,
 * rates, baselines, probe counts) at least every second. In failover mode the hook
 * redirects a provider's connections while its state is not HEALTHY. */
struct dt_provider_health {
	__u32 state;           /* enum dt_state */
	__u32 reason;          /* enum dt_health_reason (agent/health.h) */
	char  reason_text[64]; /* "5 consecutive failures" */
	__u64 since_ns;        /* CLOCK_MONOTONIC of the last change */
	__u64 until_ns;        /* DOWN: ejection end; RATE_LIMITED: reset; 0: open-ended */
	__u32 ejections;
	__u32 consecutive_failures;
	__u32 calls;           /* in the health engine's window */
	__u32 error_rate_percent;
	__u32 slow_rate_percent;
	__u32 override;        /* enum dt_health_override */
	__u64 ttft_baseline_ns;
	__u64 connect_baseline_ns;
	struct dt_probe_stats probes; /* the provider's row only: zero in model_health */
};

/* Key of the model_health map: one model of one provider. */
struct dt_model_key {
	__u32 provider_id;
	char  model[DT_MODEL_LEN]; /* NUL-padded */
};

/* Key of the overrides map, written by detourctl only and applied by
 * detourd. By provider name, not id: an override outlives a configuration
 * that drops the provider and applies again when it comes back. */
struct dt_override_key {
	char provider[DT_NAME_LEN];
	char model[DT_MODEL_LEN];  /* "": the provider as a whole; NUL-padded */
};

/* Value of the overrides map. */
struct dt_override {
	__u32 kind;            /* enum dt_health_override: DRAIN or FORCE */
};

/* Value of the proxy_stats array map (one entry): what the re-signing proxy
 * spent beyond one attempt a request since detourd started; written by
 * detourd on its heartbeat. */
struct dt_proxy_stats {
	__u64 hedges;          /* attempts sent as hedges: extra upstream requests */
	__u64 hedges_won;      /* ... that answered first */
	__u64 hedges_unfunded; /* hedges not sent: the retry budget was spent */
};

/* Value of the providers array map (index = provider id), for operators. */
struct dt_provider {
	char  name[DT_NAME_LEN];
	__u32 family;          /* enum dt_family */
	__u16 port;            /* network byte order */
	__u16 used;
};

enum dt_family {
	DT_FAMILY_OPENAI    = 0,
	DT_FAMILY_ANTHROPIC = 1,
	DT_FAMILY_GEMINI    = 2,
};

/* Value of the ep_stats map, counted by the hook only. */
struct dt_ep_stats {
	__u64 redirected;
	__u64 passed;          /* intercepted but left direct (fail open, healthy) */
};

/* Value of the per-CPU stats array: one entry, counted by the BPF programs. */
struct dt_stats {
	__u64 redirected;        /* connects rewritten to the proxy */
	__u64 pass_stale;        /* left direct: agent heartbeat too old */
	__u64 pass_no_listener;  /* left direct: proxy listener missing */
	__u64 pass_own;          /* left direct: the proxy's own socket */
	__u64 pass_healthy;      /* left direct: failover mode, provider and endpoint healthy */
	__u64 pass_no_storage;   /* left direct: could not record the origin */
	__u64 origins_published; /* origins handed to the proxy (redirects map) */
	__u64 peer_rewritten;    /* getpeername answers restored */
};

/* What the hook remembers of a redirected connection. Stored per socket (for
 * getpeername), and in the redirects map under the socket cookie, which the
 * proxy learns from sock_diag for the peer of the accepted connection. */
struct dt_origin {
	struct dt_endpoint dst; /* where the application wanted to go */
	__u64 cookie;           /* socket cookie of the application's socket */
	__u64 cgroup_id;
	__u64 ts_ns;
	__u32 pid;
	__u32 provider_id;
	char  comm[DT_COMM_LEN];
};

/* ---- kernel TCP signals: bpf/tcpsig.bpf.c, agent/tcpsig.c, docs/tcpsig.md ---- */

#define DT_MAP_TCP_SIGNALS "tcp_signals"

/* What happened on a socket to a provider endpoint. */
enum dt_tcp_kind {
	DT_TCP_CONNECT_OK        = 1, /* value: connect latency (SYN_SENT -> ESTABLISHED), ns; 0 unknown */
	DT_TCP_CONNECT_FAIL      = 2, /* value: the socket's errno (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...) */
	DT_TCP_CONNECT_ABANDONED = 3, /* value: 0 (closed by its owner) or ECONNABORTED (destroyed) */
	DT_TCP_RESET_RECV        = 4, /* value: TCP state the reset cut */
	DT_TCP_RESET_SENT        = 5, /* value: TCP state of the sending socket */
	DT_TCP_RETRANSMIT        = 6, /* value: retransmissions of this socket so far */
	DT_TCP_KIND_COUNT
};

enum dt_tcp_event_flags {
	DT_TCP_F_PROXY = 1, /* the socket carries detour's SO_MARK: the proxy's upstream */
	DT_TCP_F_SYN   = 2, /* a retransmitted SYN: the connect is not answered */
};

/* One record of the tcp_events ring buffer. */
struct dt_tcp_event {
	struct dt_endpoint ep;  /* the remote end: a provider endpoint */
	__u32 kind;             /* enum dt_tcp_kind */
	__u32 flags;            /* enum dt_tcp_event_flags */
	__u64 value;            /* see enum dt_tcp_kind */
	__u64 ts_ns;            /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the event */
	__u64 elapsed_ns;       /* connect events: time since SYN_SENT; 0 unknown */
	__u64 cookie;           /* socket cookie */
	__u16 sport;            /* local port, host byte order */
	__u16 state;            /* TCP state at the event */
	__u32 pad;
};

/* Value of the tcp_signals map, keyed by provider endpoint. */
struct dt_tcp_signals {
	__u64 resets_recv;         /* resets cutting a synchronized connection */
	__u64 resets_sent;
	__u64 retransmits;
	__u64 syn_retransmits;     /* of which SYNs */
	__u64 connect_ok;
	__u64 connect_fail;        /* refused, timed out, unreachable */
	__u64 connect_abandoned;   /* closed or destroyed locally before the handshake ended */
	__u64 connect_lat_sum_ns;
	__u64 connect_lat_count;
	__u64 connect_lat_last_ns;
	__u64 last_event_ns;       /* CLOCK_MONOTONIC of the last counted event */
	__u32 last_kind;           /* enum dt_tcp_kind of that event */
	__u32 last_errno;          /* of the last connect failure */
};

/* ---- uplink signals: bpf/uplink.bpf.c, agent/uplink.c, docs/uplink.md ---- */

#define DT_MAP_UPLINK_SIGNALS "uplink_signals"

/* What an XDP program on the uplink saw coming from (or about) a provider
 * endpoint. */
enum dt_uplink_kind {
	DT_UPLINK_RESET          = 1, /* a TCP reset from the endpoint */
	DT_UPLINK_UNREACHABLE    = 2, /* ICMP/ICMPv6 destination unreachable about a packet to it */
	DT_UPLINK_TIME_EXCEEDED  = 3, /* ICMP/ICMPv6 time exceeded (a loop, a too long path) */
	DT_UPLINK_KIND_COUNT
};

enum dt_uplink_event_flags {
	DT_UPLINK_F_LOCAL = 1, /* a socket of the uplink's network namespace owns the flow */
	DT_UPLINK_F_IPV6  = 2, /* came as IPv6 (ICMPv6) */
	DT_UPLINK_F_VLAN  = 4, /* came with an 802.1Q/802.1ad tag */
	DT_UPLINK_F_AGENT = 8, /* that socket carries detour's SO_MARK: the agent's own */
};

/* One record of the uplink_events ring buffer. */
struct dt_uplink_event {
	struct dt_endpoint ep;  /* the provider endpoint */
	__u32 local[4];         /* the flow's other end, same form */
	__u64 ts_ns;            /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the packet */
	__u32 kind;             /* enum dt_uplink_kind */
	__u32 flags;            /* enum dt_uplink_event_flags */
	__u16 local_port;       /* network byte order */
	__u8  icmp_type;        /* ICMP kinds: type and code as received */
	__u8  icmp_code;
	__u8  sk_state;         /* DT_UPLINK_F_LOCAL: the socket's TCP state */
	__u8  pad[3];
};

/* Value of the uplink_signals map, keyed by provider endpoint. */
struct dt_uplink_signals {
	__u64 resets;
	__u64 unreachable;
	__u64 time_exceeded;
	__u64 local;            /* of those, flows a local socket owned */
	__u64 last_event_ns;    /* CLOCK_MONOTONIC of the last counted packet */
	__u32 last_kind;        /* enum dt_uplink_kind of that packet */
	__u8  last_icmp_type;
	__u8  last_icmp_code;
	__u16 pad;
};

#endif /* DETOUR_H */
