/* SPDX-License-Identifier: MIT */
/* Cgroup v2 paths: from an operator's argument, and back from a cgroup id. */
#ifndef CTL_CGPATH_H
#define CTL_CGPATH_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* The absolute, resolved cgroup v2 directory named by arg: relative paths
 * are relative to the cgroup v2 mount. Returns 0, or -errno with err filled. */
int ctl_cgroup_resolve(const char *arg, char out[PATH_MAX], char *err, size_t errlen);

/* Look for the directories of ids[0..n) under the cgroup v2 mount, in one
 * walk bounded in depth and size (a huge hierarchy gives up, not hangs).
 * paths[i] gets a malloc'ed path, or NULL when not found. Returns how many
 * were found. */
size_t ctl_cgroup_find_paths(const uint64_t *ids, char **paths, size_t n);

#endif
