// SPDX-License-Identifier: MIT
/* The price table: entries in an array, found by a scan (a few hundred at
 * most, looked up once per answer); the price list's parser. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prices.h"

#define MODEL_MAX 127
#define LINE_MAX_LEN 4096
#define DATE_KEY "date"

struct entry {
	char *owner;              /* provider name or host */
	char model[MODEL_MAX + 1];/* without the '*' of a prefix */
	size_t model_len;
	bool prefix;
	enum dt_price_rank rank;
	int line;                 /* 0: not from a file */
	struct dt_price price;
};

struct dt_prices {
	int holders;
	struct entry *e;
	size_t n, cap;
	char date[DT_PRICES_DATE_LEN];
};

struct dt_prices *dt_prices_new(void)
{
	struct dt_prices *t = calloc(1, sizeof(*t));

	if (t)
		t->holders = 1;
	return t;
}

struct dt_prices *dt_prices_hold(struct dt_prices *t)
{
	t->holders++;
	return t;
}

void dt_prices_put(struct dt_prices *t)
{
	if (!t || --t->holders > 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].owner);
	free(t->e);
	free(t);
}

const char *dt_prices_date(const struct dt_prices *t)
{
	return t->date;
}

size_t dt_prices_count(const struct dt_prices *t)
{
	return t->n;
}

int dt_price_dollars(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t micro = 0;
	const char *c = s;
	int decimals = -1; /* -1: before the point */

	for (; *c && micro <= max; c++) {
		if (*c == '.' && decimals < 0 && c != s) {
			decimals = 0;
			continue;
		}
		if (!isdigit((unsigned char)*c) || decimals >= 6)
			break;
		micro = micro * 10 + (uint64_t)(*c - '0');
		if (decimals >= 0)
			decimals++;
	}
	for (decimals = decimals < 0 ? 0 : decimals; decimals < 6 && micro <= max; decimals++)
		micro *= 10;
	if (*c || c == s || c[-1] == '.' || micro > max)
		return -1;
	*out = micro;
	return 0;
}

/* ---- entries --------------------------------------------------------------- */

static const struct entry *same_entry(const struct dt_prices *t, const char *owner,
				      const char *model, bool prefix, enum dt_price_rank rank)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].rank == rank && t->e[i].prefix == prefix &&
		    strcmp(t->e[i].model, model) == 0 && strcmp(t->e[i].owner, owner) == 0)
			return &t->e[i];
	return NULL;
}

static int entry_add(struct dt_prices *t, const struct entry *e)
{
	struct entry *grown;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;

		grown = realloc(t->e, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		t->e = grown;
		t->cap = cap;
	}
	t->e[t->n] = *e;
	t->e[t->n].model_len = strlen(e->model);
	t->e[t->n].owner = strdup(e->owner);
	if (!t->e[t->n].owner)
		return -ENOMEM;
	t->n++;
	return 0;
}

int dt_prices_add(struct dt_prices *t, const char *owner, const char *model,
		  const struct dt_price *p, enum dt_price_rank rank)
{
	struct entry e = { .owner = (char *)owner, .rank = rank, .price = *p };

	snprintf(e.model, sizeof(e.model), "%s", model);
	return entry_add(t, &e);
}

static int why_set(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* MODEL or MODEL*: printable, no blanks, '*' only last. */
static int model_read(const char *token, struct entry *e, char *why, size_t whylen)
{
	size_t len = strlen(token);

	e->prefix = len > 0 && token[len - 1] == '*';
	len -= e->prefix;
	if (len == 0 || len > MODEL_MAX)
		return why_set(why, whylen, "expected MODEL (1 to %d characters, or a prefix ending in *), got \"%s\"",
			       MODEL_MAX, token);
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)token[i]) || token[i] == '*')
			return why_set(why, whylen, "model name \"%s\": printable characters without blanks, '*' only last",
				       token);
	memcpy(e->model, token, len);
	e->model[len] = '\0';
	return 0;
}

static const char *const price_names[] = { "input", "cached_input", "cache_write", "output" };

static uint64_t *price_field(struct dt_price *p, size_t i)
{
	uint64_t *fields[] = { &p->input, &p->cached_input, &p->cache_write, &p->output };

	return fields[i];
}

/* "NAME=DOLLARS", each of price_names once. */
static int price_read(char *token, struct entry *e, bool seen[], char *why, size_t whylen)
{
	char *eq = strchr(token, '=');
	size_t i;

	if (eq)
		*eq = '\0';
	for (i = 0; eq && i < sizeof(price_names) / sizeof(price_names[0]); i++)
		if (strcmp(token, price_names[i]) == 0)
			break;
	if (!eq || i == sizeof(price_names) / sizeof(price_names[0]))
		return why_set(why, whylen, "unknown option \"%s\" (input=$, cached_input=$, cache_write=$, output=$)",
			       token);
	if (seen[i])
		return why_set(why, whylen, "%s= given twice", token);
	seen[i] = true;
	if (dt_price_dollars(eq + 1, DT_PRICE_MAX_MICRO, price_field(&e->price, i)))
		return why_set(why, whylen, "%s: expected dollars per million tokens from 0 to %llu, at most 6 decimals, got \"%s\"",
			       token, DT_PRICE_MAX_MICRO / 1000000, eq + 1);
	return 0;
}

int dt_prices_add_line(struct dt_prices *t, const char *owner, const char *value,
		       enum dt_price_rank rank, int line, char *why, size_t whylen)
{
	struct entry e = { .owner = (char *)owner, .rank = rank, .line = line };
	bool seen[4] = { false };
	char *list = strdup(value), *cursor = list, *token;
	const struct entry *dup;
	int n = 0, rc = 0;

	if (!list)
		return why_set(why, whylen, "out of memory");
	while (rc == 0 && (token = strsep(&cursor, " \t")))
		if (*token)
			rc = n++ == 0 ? model_read(token, &e, why, whylen) :
					price_read(token, &e, seen, why, whylen);
	free(list);
	if (rc)
		return -1;
	if (n == 0)
		return why_set(why, whylen, "expected MODEL input=$ [cached_input=$] [cache_write=$] output=$");
	if (!seen[0] || !seen[3])
		return why_set(why, whylen, "%s: input= and output= are required", e.model);
	/* no discount given: cached and written input cost what input costs */
	if (!seen[1])
		e.price.cached_input = e.price.input;
	if (!seen[2])
		e.price.cache_write = e.price.input;
	dup = same_entry(t, owner, e.model, e.prefix, rank);
	if (dup)
		return why_set(why, whylen, "%s%s is priced for %s already (line %d)", e.model,
			       e.prefix ? "*" : "", owner, dup->line);
	return entry_add(t, &e) ? why_set(why, whylen, "out of memory") : 0;
}

/* ---- lookup ------------------------------------------------------------------ */

/* How well e prices model for a provider called name with hosts: 0 not at
 * all, else higher is better. */
static uint64_t match(const struct entry *e, const char *name, char *const *hosts,
		      size_t n_hosts, const char *model)
{
	bool by_name, by_host = false;

	/* the model first: most entries differ there in their first bytes */
	if (model[0] != e->model[0] ||
	    (e->prefix ? strncmp(model, e->model, e->model_len) != 0 : strcmp(model, e->model) != 0))
		return 0;
	by_name = strcmp(e->owner, name) == 0;
	for (size_t i = 0; !by_name && !by_host && i < n_hosts; i++)
		by_host = strcasecmp(e->owner, hosts[i]) == 0;
	if (!by_name && !by_host)
		return 0;
	/* rank, then exact, then the prefix's length, then name over host */
	return ((uint64_t)(e->rank + 1) << 32) | ((uint64_t)!e->prefix << 31) |
	       ((uint64_t)e->model_len << 1) | by_name;
}

bool dt_prices_find(const struct dt_prices *t, const char *name, char *const *hosts,
		    size_t n_hosts, const char *model, struct dt_price *out)
{
	const struct entry *best = NULL;
	uint64_t best_score = 0;

	for (size_t i = 0; t && model && i < t->n; i++) {
		uint64_t score = match(&t->e[i], name, hosts, n_hosts, model);

		if (score > best_score) {
			best_score = score;
			best = &t->e[i];
		}
	}
	if (best)
		*out = best->price;
	return best != NULL;
}

/* ---- the price list ---------------------------------------------------------- */

struct list_parser {
	struct dt_prices *t;
	const char *name;
	int line;
	char *owner;              /* the [prices NAME] being read; NULL: none */
	bool in_list;             /* in [price_list] */
	int date_line;
	char *err;
	size_t errlen;
};

static int list_fail(struct list_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int list_fail(struct list_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n = line ? snprintf(p->err, p->errlen, "%s:%d: ", p->name, line)
		     : snprintf(p->err, p->errlen, "%s: ", p->name);

	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

bool dt_prices_owner_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > DT_PRICES_OWNER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static bool date_valid(const char *s)
{
	int y, m, d, n = 0;

	return strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 && n == 10 &&
	       s[4] == '-' && s[7] == '-' && isdigit((unsigned char)s[5]) &&
	       isdigit((unsigned char)s[8]) && y >= 2000 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static char *trim(char *s)
{
	char *end;

	while (isblank((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isblank((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* "[price_list]" or "[prices NAME]" (inside the brackets: header). */
static int header_read(struct list_parser *p, char *header)
{
	char *words[3], *w;
	size_t n = 0;

	while (n < 3 && (w = strsep(&header, " \t")))
		if (*w)
			words[n++] = w;
	free(p->owner);
	p->owner = NULL;
	p->in_list = false;
	if (n == 1 && strcmp(words[0], "price_list") == 0) {
		p->in_list = true;
		return 0;
	}
	if (n == 2 && strcmp(words[0], "prices") == 0) {
		if (!dt_prices_owner_valid(words[1]))
			return list_fail(p, p->line, "[prices NAME]: NAME is a provider's name or host, got \"%s\"",
					 words[1]);
		p->owner = strdup(words[1]);
		return p->owner ? 0 : list_fail(p, p->line, "out of memory");
	}
	return list_fail(p, p->line, "expected [price_list] or [prices NAME]");
}

static int key_read(struct list_parser *p, char *line)
{
	char *eq = strchr(line, '='), *key, *value, why[256];

	if (!eq)
		return list_fail(p, p->line, "syntax error: expected [section] or key = value");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (p->in_list && strcmp(key, DATE_KEY) == 0) {
		if (p->date_line)
			return list_fail(p, p->line, "date given twice (line %d)", p->date_line);
		if (!date_valid(value))
			return list_fail(p, p->line, "date: expected YYYY-MM-DD, got \"%s\"", value);
		p->date_line = p->line;
		memcpy(p->t->date, value, DT_PRICES_DATE_LEN);
		return 0;
	}
	if (p->owner && strcmp(key, "model") == 0) {
		if (dt_prices_add_line(p->t, p->owner, value, DT_PRICE_LIST, p->line, why, sizeof(why)))
			return list_fail(p, p->line, "model: %s", why);
		return 0;
	}
	if (!p->in_list && !p->owner)
		return list_fail(p, p->line, "key \"%s\" outside of any section", key);
	return list_fail(p, p->line, "unknown key \"%s\" in [%s]", key,
			 p->in_list ? "price_list" : "prices");
}

/* One line, its end of line gone; comments start with '#' or ';' at the
 * start or after a blank, as in the configuration. */
static int line_read(struct list_parser *p, char *line)
{
	char *s = trim(line), *close;

	for (char *c = s; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == s || isblank((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	}
	s = trim(s);
	if (!*s)
		return 0;
	if (*s != '[')
		return key_read(p, s);
	close = strchr(s, ']');
	if (!close || *trim(close + 1))
		return list_fail(p, p->line, close ? "text after section header" :
				 "syntax error: expected [section] or key = value");
	*close = '\0';
	return header_read(p, s + 1);
}

int dt_prices_parse(struct dt_prices *t, const char *text, size_t len, const char *name,
		    char *err, size_t errlen)
{
	struct list_parser p = { .t = t, .name = name, .err = err, .errlen = errlen };
	char buf[LINE_MAX_LEN + 1];
	size_t at = 0;
	int rc = 0;

	if (memchr(text, '\0', len))
		return list_fail(&p, 0, "contains a NUL byte: not a text file");
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		at = 3; /* UTF-8 byte order mark */
	while (rc == 0 && at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = (nl ? (size_t)(nl - text) : len) - at;

		p.line++;
		if (n && text[at + n - 1] == '\r')
			n--;
		if (n > LINE_MAX_LEN) {
			rc = list_fail(&p, p.line, "line longer than %d characters", LINE_MAX_LEN);
			break;
		}
		memcpy(buf, text + at, n);
		buf[n] = '\0';
		rc = line_read(&p, buf);
		at = nl ? (size_t)(nl - text) + 1 : len;
	}
	free(p.owner);
	if (rc == 0 && !p.date_line)
		rc = list_fail(&p, 0, "no date: a price list says when its prices were read ([price_list] date = YYYY-MM-DD)");
	return rc;
}
