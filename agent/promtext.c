// SPDX-License-Identifier: MIT
/* The Prometheus text format, written and read back; see promtext.h. */
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "promtext.h"

/* Escape what the format escapes: in label values backslash, quote and
 * line feed; in HELP text the same without the quote (quote_too false). */
static void escape(struct evbuffer *out, const char *s, bool quote_too)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" :
				  *s == '"' && quote_too ? "\\\"" : NULL;

		if (!esc)
			continue;
		evbuffer_add(out, run, (size_t)(s - run));
		evbuffer_add(out, esc, 2);
		run = s + 1;
	}
	evbuffer_add(out, run, (size_t)(s - run));
}

void dt_prom_escape(struct evbuffer *out, const char *s)
{
	escape(out, s, true);
}

void dt_prom_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s ", name);
	escape(out, help, false);
	evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* Integers as integers (counters mostly are), else the shortest form that
 * reads back as the same double. */
static void add_value(struct evbuffer *out, double v)
{
	char text[32];

	if (isnan(v))
		snprintf(text, sizeof(text), "NaN");
	else if (isinf(v))
		snprintf(text, sizeof(text), "%sInf", v > 0 ? "+" : "-");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
		snprintf(text, sizeof(text), "%lld", (long long)v);
	else {
		snprintf(text, sizeof(text), "%.15g", v);
		if (strtod(text, NULL) != v)
			snprintf(text, sizeof(text), "%.17g", v);
	}
	evbuffer_add(out, text, strlen(text));
}

/* name{a="x",b="y"}: extra, when not NULL, is one more label at the end. */
static void add_series(struct evbuffer *out, const char *name, const char *suffix,
		       const struct dt_prom_label *l, size_t n, const struct dt_prom_label *extra)
{
	evbuffer_add_printf(out, "%s%s", name, suffix);
	if (!n && !extra)
		return;
	for (size_t i = 0; i <= n; i++) {
		const struct dt_prom_label *lab = i < n ? &l[i] : extra;

		if (!lab)
			break;
		evbuffer_add_printf(out, "%c%s=\"", i ? ',' : '{', lab->name);
		escape(out, lab->value, true);
		evbuffer_add(out, "\"", 1);
	}
	evbuffer_add(out, "}", 1);
}

void dt_prom_sample(struct evbuffer *out, const char *name, const struct dt_prom_label *l,
		    size_t n, double value)
{
	add_series(out, name, "", l, n, NULL);
	evbuffer_add(out, " ", 1);
	add_value(out, value);
	evbuffer_add(out, "\n", 1);
}

void dt_prom_observe(struct dt_prom_hist *h, const double *bounds, size_t n_bounds, double v)
{
	size_t i = 0;

	while (i < n_bounds && i < DT_PROM_MAX_BUCKETS && v > bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
}

void dt_prom_histogram(struct evbuffer *out, const char *name, const struct dt_prom_label *l,
		       size_t n, const double *bounds, size_t n_bounds, const struct dt_prom_hist *h)
{
	uint64_t cumulative = 0;
	char le[32];

	if (n_bounds > DT_PROM_MAX_BUCKETS)
		n_bounds = DT_PROM_MAX_BUCKETS;
	for (size_t i = 0; i <= n_bounds; i++) {
		cumulative += h->counts[i];
		if (i < n_bounds)
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		add_series(out, name, "_bucket", l, n, &(struct dt_prom_label){ "le", le });
		evbuffer_add_printf(out, " %llu\n", (unsigned long long)cumulative);
	}
	add_series(out, name, "_sum", l, n, NULL);
	evbuffer_add(out, " ", 1);
	add_value(out, h->sum);
	evbuffer_add(out, "\n", 1);
	add_series(out, name, "_count", l, n, NULL);
	evbuffer_add_printf(out, " %llu\n", (unsigned long long)cumulative);
}

/* ---- reading -------------------------------------------------------------- */

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* A quoted label value at *p (after the quote), unescaped in place; *p is
 * left after the closing quote. NULL when it does not end. */
static char *read_quoted(char **p)
{
	char *r = *p, *w = *p, *start = *p;

	for (; *r && *r != '"'; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		r++;
		if (*r == 'n')
			*w++ = '\n';
		else if (*r == '\\' || *r == '"')
			*w++ = *r;
		else
			return NULL;
	}
	if (*r != '"')
		return NULL;
	*w = '\0';
	*p = r + 1;
	return start;
}

static int read_labels(char **p, struct dt_prom_sample *out)
{
	char *s = *p;

	while (*s != '}') {
		struct dt_prom_label *l = &out->labels[out->n_labels];

		if (out->n_labels == DT_PROM_MAX_LABELS || !name_char(*s, true))
			return -1;
		l->name = s;
		while (name_char(*s, false))
			s++;
		if (*s != '=' || s[1] != '"')
			return -1;
		*s = '\0';
		s += 2;
		if (!(l->value = read_quoted(&s)))
			return -1;
		out->n_labels++;
		if (*s == ',')
			s++;
		else if (*s != '}')
			return -1;
	}
	*p = s + 1;
	return 0;
}

int dt_prom_parse_line(char *line, struct dt_prom_sample *out)
{
	char *p = line, *end;

	memset(out, 0, sizeof(*out));
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 1;
	if (!name_char(*p, true))
		return -1;
	out->name = p;
	while (name_char(*p, false))
		p++;
	if (*p == '{') {
		*p++ = '\0';
		if (read_labels(&p, out))
			return -1;
	} else if (*p == ' ') {
		*p++ = '\0';
	} else {
		return -1;
	}
	while (*p == ' ')
		p++;
	if (strncmp(p, "+Inf", 4) == 0 || strncmp(p, "-Inf", 4) == 0) {
		out->value = *p == '+' ? INFINITY : -INFINITY;
		end = p + 4;
	} else if (strncmp(p, "NaN", 3) == 0) {
		out->value = NAN;
		end = p + 3;
	} else {
		out->value = strtod(p, &end);
		if (end == p)
			return -1;
	}
	/* an optional timestamp, nothing else */
	while (*end == ' ')
		end++;
	while (isdigit((unsigned char)*end) || *end == '-')
		end++;
	return *end ? -1 : 0;
}

const char *dt_prom_label_value(const struct dt_prom_sample *s, const char *name)
{
	for (size_t i = 0; i < s->n_labels; i++)
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	return NULL;
}
