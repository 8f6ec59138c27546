/* SPDX-License-Identifier: MIT */
/* The operator's overrides (detourctl drain|undrain|force), read from the
 * pinned overrides map and handed to the health engine as they change. The
 * map is the record: detourctl writes it, detourd only reads it, so what it
 * holds is applied again after a restart or a reload. */
#ifndef DT_OVERRIDES_H
#define DT_OVERRIDES_H

#include <stdint.h>
#include "detour.h"

struct dt_health;
struct dt_overrides;

/* NULL when out of memory. */
struct dt_overrides *dt_overrides_new(void);
void dt_overrides_free(struct dt_overrides *o);

/* Read the map (fd) and apply to h what differs from the previous call:
 * each new or changed override, and NONE where one was removed. Provider
 * names are resolved through names[id] ("" = free id); an override of a
 * provider not configured waits until one by that name is. Returns how
 * many changes were applied, or -errno (nothing applied). */
int dt_overrides_sync(struct dt_overrides *o, int fd, const char names[][DT_NAME_LEN],
		      struct dt_health *h, uint64_t now);

#endif
