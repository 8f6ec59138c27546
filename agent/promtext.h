/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition format (version 0.0.4): written by
 * detourd's /metrics, read back by detourctl top. A family is its HELP and
 * TYPE lines followed by all of its samples; label values are escaped
 * (backslash, double quote, line feed); a histogram is its cumulative
 * _bucket samples (le="..." up to "+Inf"), _sum and _count.
 */
#ifndef DT_PROMTEXT_H
#define DT_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define DT_PROM_MAX_BUCKETS 16  /* finite bounds of a histogram */
#define DT_PROM_MAX_LABELS  8   /* of a sample read back */
#define DT_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct dt_prom_label {
	const char *name;
	const char *value;
};

/* Observations by bucket (not cumulative: the writer sums them), with
 * their sum; bounds are the histogram family's, ascending. */
struct dt_prom_hist {
	uint64_t counts[DT_PROM_MAX_BUCKETS + 1]; /* the last: above every bound */
	double sum;
};

/* # HELP and # TYPE of a family; type is "counter", "gauge" or "histogram". */
void dt_prom_family(struct evbuffer *out, const char *name, const char *type, const char *help);
/* name{labels} value. */
void dt_prom_sample(struct evbuffer *out, const char *name, const struct dt_prom_label *l,
		    size_t n, double value);
/* A label value (or anything) as it goes between the quotes. */
void dt_prom_escape(struct evbuffer *out, const char *s);

void dt_prom_observe(struct dt_prom_hist *h, const double *bounds, size_t n_bounds, double v);
/* name_bucket{labels,le=...} for each bound and +Inf, name_sum, name_count. */
void dt_prom_histogram(struct evbuffer *out, const char *name, const struct dt_prom_label *l,
		       size_t n, const double *bounds, size_t n_bounds, const struct dt_prom_hist *h);

/* One sample line read back, in place: its name and label values point
 * into the line, unescaped. */
struct dt_prom_sample {
	const char *name;
	struct dt_prom_label labels[DT_PROM_MAX_LABELS];
	size_t n_labels;
	double value;
};

/* line: one line without its end. 0 a sample, 1 a comment or a blank line,
 * -1 malformed (or more labels than DT_PROM_MAX_LABELS). */
int dt_prom_parse_line(char *line, struct dt_prom_sample *out);
/* The value of label name, NULL when the sample has none. */
const char *dt_prom_label_value(const struct dt_prom_sample *s, const char *name);

#endif
