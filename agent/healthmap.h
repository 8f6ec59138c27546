/* SPDX-License-Identifier: MIT */
/* The published health verdicts (provider_health and model_health maps) read
 * back as rows, and what changed between two readings: the material of
 * `detourctl status` and `detourctl watch`. */
#ifndef DT_HEALTHMAP_H
#define DT_HEALTHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"

/* Every provider's verdict and each of its models'. */
#define DT_HEALTH_ROWS_MAX (DT_MAX_PROVIDERS * (1 + DT_MODELS_PER_PROVIDER))

struct dt_health_row {
	uint32_t provider_id;
	char model[DT_MODEL_LEN];          /* "": the provider itself */
	struct dt_provider_health v;
};

/* By provider id, the provider before its models, models by name. */
int dt_health_row_cmp(const void *a, const void *b);

/* The verdicts of the providers with used[id] and of their models, sorted,
 * into rows (room for DT_HEALTH_ROWS_MAX). Returns how many, or -errno. */
int dt_healthmap_read(int provider_health_fd, int model_health_fd,
		      const bool used[DT_MAX_PROVIDERS], struct dt_health_row *rows);

/* old NULL: a verdict appeared; new NULL: it vanished (a model no longer
 * tracked, a provider removed). */
typedef void (*dt_health_row_change_fn)(void *ctx, const struct dt_health_row *old,
					const struct dt_health_row *new);

/* fn for each verdict that appeared, vanished, or whose state, reason or
 * since differ between the two readings (a since that moved with the
 * state unchanged is a change, and back, between the readings).
 * Refreshed counters alone are no change. */
void dt_healthmap_diff(const struct dt_health_row *old, size_t n_old,
		       const struct dt_health_row *new, size_t n_new,
		       dt_health_row_change_fn fn, void *ctx);

#endif
