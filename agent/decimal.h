/* SPDX-License-Identifier: MIT */
/* Decimal digits without printf, for what is written for every request. */
#ifndef DT_DECIMAL_H
#define DT_DECIMAL_H

#include <stdint.h>

/* The longest: UINT64_MAX's. */
#define DT_DECIMAL_MAX 20

/* The digits of v, written backwards so that they end at end (at most
 * DT_DECIMAL_MAX bytes before it); returns where they start. */
static inline char *dt_decimal(char *end, uint64_t v)
{
	do
		*--end = (char)('0' + v % 10);
	while (v /= 10);
	return end;
}

#endif
