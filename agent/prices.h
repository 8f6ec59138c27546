/* SPDX-License-Identifier: MIT */
/*
 * Models' list prices, looked up by provider and model: the price list
 * shipped with detour (data/prices.conf, dated), the configuration's
 * [prices NAME] sections and the price options of class members, in one
 * table; docs/cost.md. Pure: the caller reads the files; the parser takes
 * text and gives "NAME:LINE: reason".
 *
 * A price list is in detour's configuration syntax:
 *
 *   [price_list]
 *   date = 2026-11-25
 *   [prices api.openai.com]            # a provider's name or one of its hosts
 *   model = gpt-4o input=2.50 cached_input=1.25 output=10.00
 *   model = gpt-4o-20* input=2.50 cached_input=1.25 output=10.00
 *
 * Dollars per million tokens, at most 6 decimals, 0 to 1000. A model name
 * ending in '*' prices every model starting with what comes before it.
 */
#ifndef DT_PRICES_H
#define DT_PRICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spend.h"

#define DT_PRICE_MAX_MICRO 1000000000ull  /* $1000 per million tokens */
#define DT_PRICES_DATE_LEN 11             /* "YYYY-MM-DD" */

/* Where a price comes from; a higher one wins. */
enum dt_price_rank {
	DT_PRICE_LIST,      /* the price list file */
	DT_PRICE_CONFIG,    /* a [prices NAME] section of the configuration */
	DT_PRICE_MEMBER,    /* price_in= ... of a class member */
};

struct dt_prices;

/* An empty table, held once; NULL when out of memory. */
struct dt_prices *dt_prices_new(void);
/* Another holder (a running proxy keeps the table of its configuration). */
struct dt_prices *dt_prices_hold(struct dt_prices *t);
/* A holder lets go; the last frees the table. */
void dt_prices_put(struct dt_prices *t);

#define DT_PRICES_OWNER_MAX 253           /* a host name's length */

/* Whether s names a price's owner: 1 to DT_PRICES_OWNER_MAX letters,
 * digits, '-', '_' or '.' (a provider's name or a host). */
bool dt_prices_owner_valid(const char *s);

/* "2.50" (dollars per million tokens, up to 6 decimals) in micro-dollars
 * per million tokens, at most max. Returns 0, or -1 when s is not that. */
int dt_price_dollars(const char *s, uint64_t max, uint64_t *out);

/* The text of a price list (len bytes), called name in errors: its
 * entries added at DT_PRICE_LIST and its date kept. Returns 0, or -1 with
 * "name:LINE: reason" (or "name: reason") in err. */
int dt_prices_parse(struct dt_prices *t, const char *text, size_t len, const char *name,
		    char *err, size_t errlen);

/* One "MODEL input=$ [cached_input=$] [cache_write=$] output=$" of owner
 * (a provider's name or host) at rank; line is kept to name a duplicate.
 * Returns 0, or -1 with the reason (no name, no line) in why. */
int dt_prices_add_line(struct dt_prices *t, const char *owner, const char *value,
		       enum dt_price_rank rank, int line, char *why, size_t whylen);

/* An entry made elsewhere (a class member's options): model exactly.
 * Returns 0 or -ENOMEM. */
int dt_prices_add(struct dt_prices *t, const char *owner, const char *model,
		  const struct dt_price *p, enum dt_price_rank rank);

/* The price of model served by the provider called name, whose hosts are
 * given: of the entries for its name or one of its hosts that match the
 * model, the one of highest rank; within a rank an exact name before a
 * prefix, a longer prefix first, the provider's name before a host. false:
 * none (the cost is unknown). */
bool dt_prices_find(const struct dt_prices *t, const char *name, char *const *hosts,
		    size_t n_hosts, const char *model, struct dt_price *out);

/* The price list's date, "" when none was read. */
const char *dt_prices_date(const struct dt_prices *t);
/* How many entries the table holds. */
size_t dt_prices_count(const struct dt_prices *t);

#endif /* DT_PRICES_H */
