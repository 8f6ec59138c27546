/* SPDX-License-Identifier: MIT */
/* detourd's BPF object: the skeleton loaded with its maps pinned under the
 * pin dir (reused across restarts) and its programs pinned for detourctl. */
#ifndef DT_BPFOBJ_H
#define DT_BPFOBJ_H

#include <limits.h>
#include <linux/types.h>
#include "detour.h"
#include "enroll.h"

struct detour_bpf;

struct dt_bpf {
	struct detour_bpf *skel;
	char pin_dir[PATH_MAX];
	int prog_fds[DT_PROG_COUNT];
	int settings_fd, intercept_fd, verdicts_fd, providers_fd, redirects_fd, provider_health_fd;
	int model_health_fd, overrides_fd;
	int proxy_stats_fd;
};

/* Load the programs, reusing pinned maps (or pinning fresh ones), and pin
 * the programs. Returns 0 or -errno with err filled. */
int dt_bpf_load(struct dt_bpf *b, const char *pin_dir, char *err, size_t errlen);

/* Release the skeleton. Pinned maps stay; pinned programs are removed. */
void dt_bpf_close(struct dt_bpf *b);

int dt_bpf_write_settings(const struct dt_bpf *b, const struct dt_config *s);

/* The origin of a redirected application socket, by its cookie; the entry
 * is consumed. Returns 0, or -ENOENT when the socket was not redirected. */
int dt_bpf_take_origin(const struct dt_bpf *b, __u64 cookie, struct dt_origin *out);

int dt_bpf_set_provider(const struct dt_bpf *b, __u32 id, const struct dt_provider *p);
int dt_bpf_set_provider_health(const struct dt_bpf *b, __u32 id, const struct dt_provider_health *h);
/* A model's verdict (h NULL: removed), keyed by provider id and model name. */
int dt_bpf_set_model_health(const struct dt_bpf *b, __u32 id, const char *model,
			    const struct dt_provider_health *h);
int dt_bpf_set_proxy_stats(const struct dt_bpf *b, const struct dt_proxy_stats *s);
int dt_bpf_set_verdict(const struct dt_bpf *b, const struct dt_endpoint *ep,
		       const struct dt_verdict *v);
int dt_bpf_delete_verdict(const struct dt_bpf *b, const struct dt_endpoint *ep);
int dt_bpf_set_intercept(const struct dt_bpf *b, const struct dt_endpoint *ep,
			 const struct dt_intercept *val);

/* CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(). */
__u64 dt_now_ns(void);

#endif
