/* SPDX-License-Identifier: MIT */
/*
 * detourd's configuration: an INI file (docs/configuration.md), parsed and
 * validated as a whole, so a running agent only ever sees a complete and
 * consistent configuration.
 */
#ifndef DT_CONFIG_H
#define DT_CONFIG_H

#include <linux/types.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detour.h"
#include "health.h"
#include "uplink.h"
#include "log.h"

struct dt_prices;

struct dt_key_source {
	enum dt_key_kind {
		DT_KEY_NONE,       /* no key: requests keep their own credential */
		DT_KEY_FILE,       /* ref: absolute path of a file */
		DT_KEY_CREDENTIAL, /* ref: systemd credential name */
		DT_KEY_ENV,        /* ref: environment variable name */
	} kind;
	char *ref;
};

struct dt_provider_cfg {
	char name[DT_NAME_LEN];     /* from the section name: [provider NAME] */
	char **hosts;               /* lower-case names or address literals */
	size_t n_hosts;
	uint16_t port;              /* host byte order, default 443 */
	enum dt_family family;      /* default DT_FAMILY_OPENAI */
	struct dt_key_source key;
	/* Where requests detour sends to this provider go: scheme, host,
	 * optional port and path, no trailing slash. Default by family from
	 * the first host: https://HOST[:PORT]/v1 (openai, anthropic) or
	 * .../v1beta (gemini). */
	char base_url[512];
	bool probe;                 /* probed actively (default yes) */
	char probe_ttft_model[128]; /* "": model-list probes only (docs/probe.md) */
	unsigned probe_ttft_per_hour; /* its cap, default 4 */
	/* rate limits of each key used there (docs/routing.md "Rate limits") */
	unsigned rpm, tpm;          /* requests, tokens per minute; 0: not configured */
	bool pace;                  /* over budget: wait in the pacing queue first */
	unsigned pace_max_wait_ms;  /* 0: the default, 2000 */
	unsigned pace_max_queue;    /* 0: the default, 100 */
	/* OpenAI-family streams relayed to it ask for the usage chunk their
	 * client did not ask for (docs/cost.md); default yes */
	bool ask_stream_usage;
	int line;                   /* line of the section header */
};

/* A model of a provider, in a class of equivalent models. */
struct dt_member_cfg {
	char provider[DT_NAME_LEN]; /* names a configured provider */
	char model[128];            /* 1-127 printable characters, no blanks */
	uint32_t context_tokens;    /* context window, 0: not given */
	unsigned weight;            /* >= 1, default 1; given only in weighted classes */
	/* µ$ per million input, output and cached input tokens; CFG_PRICE_UNSET
	 * unless given (price_in and price_out together). Entered in the price
	 * table (cfg->prices), where cheapest and combined classes and the cost
	 * accounting look them up. */
	unsigned price_in, price_out, price_cached;
	/* caps=: what it serves beyond text, router.h's DT_CAP_* bits; in a
	 * class, given on every member or on none */
	bool caps_declared;
	unsigned caps;
	int line;
};
#define CFG_PRICE_UNSET UINT_MAX

/* [class NAME]: models that can stand in for each other. A provider is in
 * a class once; a (provider, model) pair is in one class at most. */
struct dt_class_cfg {
	char name[DT_NAME_LEN];
	struct dt_member_cfg *members; /* at least 2, in file order */
	size_t n_members;
	int strategy;               /* priority, weighted, least_latency, cheapest,
				     * combined: router.h's enum dt_class_strategy */
	unsigned latency_factor_percent; /* combined: "fast" is within this of the fastest (0: default) */
	int quality_check;          /* 0 failover, 1 always, 2 off: router.h's
				     * enum dt_quality_mode */
	bool sticky;                /* conversations stay on their member */
	unsigned sticky_ttl_ms;     /* ... this long after their last answer (0: default) */
	int line;                   /* line of the section header */
};

/* [proxy]: the re-signing proxy. */
struct dt_proxy_cfg {
	char upstream_ca_bundle[PATH_MAX]; /* empty: the system trust store */
	bool upstream_http2;            /* offer HTTP/2 to providers (else HTTP/1.1 only) */
	unsigned max_header_bytes;
	unsigned max_headers;
	unsigned max_body_bytes;
	unsigned idle_timeout_ms;       /* keep-alive idle, downstream */
	unsigned request_timeout_ms;    /* to receive a whole request */
	unsigned first_byte_timeout_ms; /* then the next member is tried */
	unsigned stream_idle_timeout_ms;/* silence after the first byte */
	unsigned upstream_connect_timeout_ms;
	unsigned retry_budget_percent;  /* of recent requests, 0-100 */
	unsigned retry_budget_min;      /* retries always allowed per window */
	unsigned budget_window_ms;
	unsigned provider_failures_to_eject;
	unsigned provider_eject_ms;
	unsigned key_disable_ms;        /* a refused key (401/402/403) rests */
	bool intercept_tls;             /* false: relay TLS untouched */
	bool hedge;                     /* a slow attempt is joined by the next member */
	unsigned hedge_factor_percent;  /* hedge deadline: this share of the usual time, */
	unsigned hedge_min_ms;          /* ... never sooner */
	unsigned hedge_max_ms;          /* ... never later */
};

struct dt_app_key_cfg {
	char provider[DT_NAME_LEN]; /* names a configured provider */
	struct dt_key_source key;   /* never DT_KEY_NONE */
	int line;
};

/* A number an [app] gives per provider: NAME.PROVIDER = VALUE. */
struct dt_app_number_cfg {
	char provider[DT_NAME_LEN]; /* names a configured provider */
	unsigned value;
	int line;
};

struct dt_app_numbers {
	struct dt_app_number_cfg *v; /* one per provider */
	size_t n;
};

/* [app NAME]: an application's own keys and shares of rate limits. */
struct dt_app_cfg {
	char name[DT_NAME_LEN];
	char **cgroups;             /* resolved like [enroll]'s, each enrolled */
	size_t n_cgroups;           /* at least 1 */
	struct dt_app_key_cfg *keys;/* one per provider; keys and shares: at least 1 */
	size_t n_keys;
	/* share.PROVIDER: the percentage (1-100) of each shared key's limit
	 * there kept for the application; the shares of one provider add up
	 * to 100 at most */
	struct dt_app_numbers shares;
	/* rpm.PROVIDER, tpm.PROVIDER: the limits of its own key there (needs
	 * its key.PROVIDER), in place of the provider's rpm and tpm */
	struct dt_app_numbers rpm, tpm;
	int line;                   /* line of the section header */
};

/* [metrics]: the Prometheus endpoint (docs/metrics.md). */
struct dt_metrics_cfg {
	bool on;                        /* listen given: serve /metrics */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char listen[64];                /* as written, for logs and detourctl */
	bool allow_remote;              /* an address other than loopback allowed */
};

/* [access_log]: one JSON line per client request (docs/metrics.md). */
struct dt_access_log_cfg {
	char path[PATH_MAX];            /* "": no access log (default) */
	bool prompts;                   /* the request body logged too (default no) */
};

struct dt_enroll_cfg {
	char *cgroup;               /* absolute cgroup v2 directory, resolved */
	int line;                   /* 0 for the default (the cgroup v2 root) */
};

struct dt_cfg {
	char *path;                 /* file it was read from */
	enum dt_mode mode;          /* default DT_MODE_PROXY */
	struct in_addr listen4;     /* loopback, default 127.0.0.1 */
	struct in6_addr listen6;    /* loopback, default ::1 */
	uint16_t listen_port;       /* host order, default 15001 */
	char pin_dir[PATH_MAX];     /* default /sys/fs/bpf/detour */
	char state_dir[PATH_MAX];   /* default /var/lib/detour */
	enum dt_log_level log_level;
	uint32_t mark;              /* SO_MARK of the proxy's own sockets */
	unsigned heartbeat_interval_ms;
	unsigned heartbeat_ttl_ms;  /* always > 2 * heartbeat_interval_ms */
	unsigned connect_timeout_ms;
	unsigned down_hold_ms;      /* how long a failed endpoint is skipped */
	unsigned dns_refresh_s;
	unsigned dns_grace_s;       /* unresolved addresses stay intercepted */
	unsigned max_connections;
	struct dt_provider_cfg *providers; /* at least one */
	size_t n_providers;
	struct dt_enroll_cfg *enroll;      /* default: the cgroup v2 root */
	size_t n_enroll;
	struct dt_class_cfg *classes;
	size_t n_classes;
	struct dt_proxy_cfg proxy;
	/* [health]: the health engine's thresholds, 0 = its default
	 * (docs/health.md); its consecutive_failures and eject_base_ms are
	 * [proxy]'s provider_failures_to_eject and provider_eject_ms. */
	struct dt_health_opts health;
	/* [health]: the signal sources feeding it (daemon_signals.c). */
	bool probes;                /* active probes, default yes */
	unsigned probe_timeout_ms;  /* a probe's whole exchange */
	bool tcp_signals;           /* kernel TCP signals (tcpsig), default yes */
	bool netwatch;              /* route and link events (netwatch), default yes */
	/* [health] uplink: the interface whose XDP program counts provider
	 * resets and ICMP errors (docs/uplink.md); "" = none, the default. */
	char uplink[16];            /* IFNAMSIZ */
	enum dt_xdp_mode uplink_xdp_mode;
	struct dt_app_cfg *apps;
	size_t n_apps;
	struct dt_metrics_cfg metrics;
	struct dt_access_log_cfg access_log;
	/* Prices (prices.h): the price list file's, the [prices NAME]
	 * sections', the class members'. Never NULL once loaded. */
	struct dt_prices *prices;
	/* [detour] prices_file: the price list; "": prices.conf next to the
	 * configuration file, when there is one. */
	char prices_file[PATH_MAX];
};

/*
 * Parse and validate path. Returns 0 with *out set (free it with
 * dt_config_free()), or -1 with "FILE:LINE: reason" (or "FILE: reason" when
 * no line applies) in err.
 *
 * Cgroups are looked up under the cgroup v2 mount found in /proc/mounts.
 * Test seam: the environment variable DETOUR_CGROUP_ROOT, when set, names
 * the directory used instead; it is meant for tests only.
 */
int dt_config_load(const char *path, struct dt_cfg **out, char *err, size_t errlen);
void dt_config_free(struct dt_cfg *cfg);

/* The cgroup v2 mount point, read from proc_mounts (normally /proc/mounts).
 * Returns 0 with out filled, or -1 with errno set (ENOENT: no cgroup2
 * mount, ENAMETOOLONG: out too small). */
int dt_cgroup2_mount(const char *proc_mounts, char *out, size_t outlen);

#endif /* DT_CONFIG_H */
