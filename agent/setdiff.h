/* SPDX-License-Identifier: MIT */
/* The difference of two readings of a keyed set, each an array sorted by
 * the same order: what appeared, what vanished, what both hold. Serves
 * detourd's overrides (what the operator changed since the last poll) and
 * `detourctl watch` (which verdicts changed). */
#ifndef DT_SETDIFF_H
#define DT_SETDIFF_H

#include <stddef.h>

/* old NULL: new appeared; new NULL: old vanished; both: the same key in
 * both readings (the callee tells whether it changed). */
typedef void (*dt_setdiff_fn)(void *ctx, const void *old, const void *new);

/* fn for every key of either array, in order. Both arrays are sorted by
 * cmp and hold each key once. */
void dt_setdiff(const void *old, size_t n_old, const void *new, size_t n_new, size_t size,
		int (*cmp)(const void *, const void *), dt_setdiff_fn fn, void *ctx);

/* Sort by cmp and drop repeated keys (a hash map walked while it changes
 * may hand some out twice). Returns how many are left. */
size_t dt_sort_unique(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
