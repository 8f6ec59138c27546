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
#include <stddef.h>
#include <stdint.h>

#include "detour.h"
#include "log.h"

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
	int line;                   /* line of the section header */
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
