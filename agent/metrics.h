/* SPDX-License-Identifier: MIT */
/*
 * detourd's request metrics: counters and histograms of the requests the
 * proxy served (struct dt_reqrec), by application, provider, model and
 * model class, written in the Prometheus text format (promtext.h) for
 * /metrics. Semantics of every series: docs/metrics.md.
 *
 * Label cardinality is bounded: applications and providers are the
 * configured ones ("-": no [app]); a model is named only when the
 * configuration names it (a class member or a probe model), every other
 * one is "other"; the class is the class holding (provider, model), "-"
 * for none. Past DT_METRICS_MAX_SERIES label sets, new ones are counted
 * under every label "other".
 */
#ifndef DT_METRICS_H
#define DT_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct dt_cfg;
struct dt_spend_row;
struct dt_metrics;
struct dt_reqrec;

#define DT_METRICS_MAX_SERIES 1024

struct dt_metrics *dt_metrics_new(void);
void dt_metrics_free(struct dt_metrics *m);
/* The label rules of a configuration (the counters stay). -1: out of memory,
 * the previous rules stay. */
int dt_metrics_configure(struct dt_metrics *m, const struct dt_cfg *cfg);

/* The labels a (provider, model) is counted under: model as given, or
 * "other", or "-" for none; its class or "-". Valid until the next
 * dt_metrics_configure. */
const char *dt_metrics_model_label(const struct dt_metrics *m, const char *provider,
				   const char *model);
const char *dt_metrics_class_label(const struct dt_metrics *m, const char *provider,
				   const char *model);

/* A request ended. */
void dt_metrics_request(struct dt_metrics *m, const struct dt_reqrec *r);

/* Every request series, each family with its HELP and TYPE. */
void dt_metrics_render(const struct dt_metrics *m, struct evbuffer *out);
/* Tokens and cost of the spend module's rows (spend.h), under the same
 * label rules: rows whose labels the rules merge are summed. */
void dt_metrics_render_spend(const struct dt_metrics *m, const struct dt_spend_row *rows,
			     size_t n, struct evbuffer *out);

#endif
