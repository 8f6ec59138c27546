// SPDX-License-Identifier: MIT
/* The hedge deadline; see hedge.h and docs/routing.md. */
#include "hedge.h"

#define NS_PER_MS 1000000ull

uint64_t dt_hedge_delay_ns(const struct dt_hedge_opts *o, uint64_t usual_ns,
			   unsigned first_byte_timeout_ms)
{
	uint64_t min = o->min_ms * NS_PER_MS, max = o->max_ms * NS_PER_MS, d;

	if (!o->on)
		return 0;
	/* no usual time yet: as late as allowed */
	d = usual_ns ? usual_ns / 100 * o->factor_percent : max;
	if (d > max)
		d = max;
	if (d < min)
		d = min;
	return d < first_byte_timeout_ms * NS_PER_MS ? d : 0;
}
