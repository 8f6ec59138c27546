/* SPDX-License-Identifier: MIT */
/* Enrollment of cgroups: detour's programs attached through BPF links that are
 * pinned under <pin_dir>/links, so they survive the agent (which the heartbeat
 * makes harmless) and can be updated in place by the next agent. Used by
 * detourd (programs from its skeleton) and detourctl (programs from pins). */
#ifndef DT_ENROLL_H
#define DT_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dt_prog {
	DT_PROG_CONNECT4,
	DT_PROG_CONNECT6,
	DT_PROG_GETPEERNAME4,
	DT_PROG_GETPEERNAME6,
	DT_PROG_COUNT,
};

/* Who made an enrollment: the configuration, or an operator's detourctl. */
#define DT_TAG_CONFIG "cfg"
#define DT_TAG_CTL    "ctl"

/* Pin name of each program under <pin_dir>/progs, also used in link names. */
extern const char *const dt_prog_names[DT_PROG_COUNT];

struct dt_link_pin {
	char     tag[8];
	uint64_t cgroup_id;   /* as named in the pin */
	enum dt_prog prog;
	bool     alive;       /* still attached to a live cgroup */
	uint32_t link_id;
	uint32_t prog_id;
};

/* Make sure pin_dir is a directory on a bpf filesystem, mounting bpffs on
 * /sys/fs/bpf when the pin dir lives there and nothing is mounted yet. */
int dt_pin_dir_prepare(const char *pin_dir, char *err, size_t errlen);

/* The cgroup id (cgroup v2 inode number) of a cgroup directory. */
int dt_cgroup_id(const char *cgroup_path, uint64_t *id);

/* The cgroup ids of roots[0..n_roots) and of every cgroup below them (the
 * hook acts on descendants too), from a walk of the cgroup v2 hierarchy.
 * Roots that do not exist are left out. *ids (free it) gets *n_ids of them.
 * Returns 0 or -errno. */
int dt_cgroup_subtree(const uint64_t *roots, size_t n_roots, uint64_t **ids, size_t *n_ids);

/* Attach every program to the cgroup, or update the pinned links already
 * there in place. Returns 0, or -errno with err filled. */
int dt_enroll(const char *pin_dir, const int prog_fds[DT_PROG_COUNT],
	      const char *cgroup_path, const char *tag, char *err, size_t errlen);

/* Detach and unpin the links of one cgroup id (tag NULL: any tag).
 * Returns how many links were removed, or -errno. */
int dt_unenroll(const char *pin_dir, uint64_t cgroup_id, const char *tag);

/* Detach and unpin every link (tag NULL: any tag); returns how many. */
int dt_unenroll_all(const char *pin_dir, const char *tag);

/* Point every live link of a tag at these programs; returns how many. */
int dt_links_update(const char *pin_dir, const int prog_fds[DT_PROG_COUNT], const char *tag);

/* Unpin links whose cgroup is gone; returns how many. */
int dt_links_prune(const char *pin_dir);

/* Every link pin, for status and reconciliation. Returns the count written
 * (at most max) or -errno. */
int dt_links_list(const char *pin_dir, struct dt_link_pin *out, size_t max);

#endif
