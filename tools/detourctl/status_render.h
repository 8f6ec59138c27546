/* SPDX-License-Identifier: MIT */
/* The two faces of `detourctl status`, both drawn from one snapshot. */
#ifndef CTL_STATUS_RENDER_H
#define CTL_STATUS_RENDER_H

#include <stdio.h>

#include "snapshot.h"

/* Aligned tables for people. Returns 0, or -1 when out of memory. */
int ctl_status_text(const struct ctl_snapshot *snap, FILE *out);

/* One JSON object with stable field names (docs/detourctl.md).
 * Returns 0, or -1 when out of memory or on a write error. */
int ctl_status_json(const struct ctl_snapshot *snap, FILE *out);

#endif
