// SPDX-License-Identifier: MIT
/* Differences of sorted keyed sets; see setdiff.h. */
#include <stdlib.h>
#include <string.h>

#include "setdiff.h"

void dt_setdiff(const void *old, size_t n_old, const void *new, size_t n_new, size_t size,
		int (*cmp)(const void *, const void *), dt_setdiff_fn fn, void *ctx)
{
	const char *o = old, *n = new;
	size_t i = 0, j = 0;

	while (i < n_old || j < n_new) {
		int order = i == n_old ? 1 : j == n_new ? -1 : cmp(o + i * size, n + j * size);

		if (order < 0)
			fn(ctx, o + i++ * size, NULL);
		else if (order > 0)
			fn(ctx, NULL, n + j++ * size);
		else
			fn(ctx, o + i++ * size, n + j++ * size);
	}
}

size_t dt_sort_unique(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	char *a = items;
	size_t kept = 0;

	qsort(items, n, size, cmp);
	for (size_t i = 0; i < n; i++) {
		if (kept && cmp(a + (kept - 1) * size, a + i * size) == 0)
			continue;
		if (kept != i)
			memcpy(a + kept * size, a + i * size, size);
		kept++;
	}
	return kept;
}
