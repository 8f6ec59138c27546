/* SPDX-License-Identifier: MIT */
/* What the in-memory cost benchmarks share: a median, and the median over
 * blocks of an operation's mean time, which a stray interruption of one
 * block cannot move. */
#ifndef DT_BENCH_H
#define DT_BENCH_H

#include <stddef.h>
#include <stdlib.h>

#include "bpfobj.h" /* dt_now_ns */

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v. */
static inline double bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef void (*bench_op_fn)(const void *arg);

#define BENCH_MAX_BLOCKS 64

/* ns per call of fn(arg): the median over `blocks` (≤ BENCH_MAX_BLOCKS)
 * blocks of the mean of `reps` calls. */
static inline double bench_ns_per_op(bench_op_fn fn, const void *arg, int reps, int blocks)
{
	double per[BENCH_MAX_BLOCKS];

	for (int b = 0; b < blocks; b++) {
		uint64_t t0 = dt_now_ns();

		for (int i = 0; i < reps; i++)
			fn(arg);
		per[b] = (double)(dt_now_ns() - t0) / reps;
	}
	return bench_median(per, (size_t)blocks);
}

#endif
