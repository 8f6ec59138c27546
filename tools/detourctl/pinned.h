/* SPDX-License-Identifier: MIT */
/* Reading detour's maps through their pins under the pin dir. */
#ifndef CTL_PINNED_H
#define CTL_PINNED_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "detour.h"

/* Open <pin_dir>/<name> and check its key and value sizes are the ones this
 * build knows, so a detourd of another version is reported, not misread.
 * Returns the fd, or -errno with err filled. */
int ctl_map_open(const char *pin_dir, const char *name, uint32_t key_size,
		 uint32_t value_size, char *err, size_t errlen);

/* The single entry of the settings map. Returns 0 or -errno with err filled;
 * -ENOENT means nothing is pinned there. */
int ctl_read_settings(const char *pin_dir, struct dt_config *out, char *err, size_t errlen);

/* The per-CPU stats entry, summed across CPUs. Returns 0 or -errno. */
int ctl_read_stats(int stats_fd, struct dt_stats *out);

/* Say why reading the pins failed (rc, err from the reader) and return the
 * exit code: CTL_EXIT_NEVER when nothing is pinned (detour never ran with
 * this pin dir, or was cleaned up: scripts tell that apart from errors),
 * else CTL_EXIT_FAILURE. */
int ctl_read_failed(const char *pin_dir, int rc, const char *err);

#endif
