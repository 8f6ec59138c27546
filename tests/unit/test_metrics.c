// SPDX-License-Identifier: MIT
/* Request metrics: what each request record adds (per member answered,
 * per attempt, by blame), the label rules bounding cardinality (models the
 * configuration does not name are "other"; past the series limit
 * everything is "other"), and an exposition that reads back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/buffer.h>

#include "config.h"
#include "metrics.h"
#include "promtext.h"
#include "reqrec.h"
#include "spend.h"

static struct dt_member_cfg members[] = {
	{ .provider = "openai", .model = "gpt-4o-mini" },
	{ .provider = "groq", .model = "llama-3.3-70b" },
};
static struct dt_class_cfg classes[] = {
	{ .name = "chat-small", .members = members, .n_members = 2 },
};
static struct dt_provider_cfg providers[] = {
	{ .name = "openai", .probe_ttft_model = "gpt-4.1-nano" },
	{ .name = "groq" },
};
static const struct dt_cfg cfg = {
	.providers = providers, .n_providers = 2, .classes = classes, .n_classes = 1,
};

static struct dt_metrics *configured(void)
{
	struct dt_metrics *m = dt_metrics_new();

	assert_non_null(m);
	assert_int_equal(dt_metrics_configure(m, &cfg), 0);
	return m;
}

/* The value of name{labels} in m's exposition, where labels is "k=v,k=v"
 * naming the labels that must match; -1 when no sample matches. Every line
 * must read back. */
static const struct dt_spend_row *spend_rows;
static size_t n_spend_rows;

static double value_of(const struct dt_metrics *m, const char *name, const char *labels)
{
	struct evbuffer *b = evbuffer_new();
	double found = -1;
	char *text, *line, *save = NULL;
	size_t n;

	dt_metrics_render(m, b);
	dt_metrics_render_spend(m, spend_rows, n_spend_rows, b);
	n = evbuffer_get_length(b);
	text = malloc(n + 1);
	assert_non_null(text);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	evbuffer_free(b);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct dt_prom_sample s;
		char want[256], *kv, *wsave = NULL;
		bool match;

		assert_int_not_equal(dt_prom_parse_line(line, &s), -1);
		if (!s.name || strcmp(s.name, name) != 0)
			continue;
		snprintf(want, sizeof(want), "%s", labels);
		match = true;
		for (kv = strtok_r(want, ",", &wsave); kv && match; kv = strtok_r(NULL, ",", &wsave)) {
			char *eq = strchr(kv, '=');
			const char *v;

			*eq = '\0';
			v = dt_prom_label_value(&s, kv);
			match = v && strcmp(v, eq + 1) == 0;
		}
		if (match) {
			assert_true(found < 0); /* one sample only */
			found = s.value;
		}
	}
	free(text);
	return found;
}

static void attempt(struct dt_reqrec *r, const char *provider, const char *model,
		    enum dt_outcome_kind k, enum dt_blame b, bool hedge)
{
	r->attempts[r->n_attempts++] = (struct dt_reqrec_attempt){
		.provider = provider, .model = (char *)model, .outcome = k, .blame = b, .hedge = hedge,
	};
}

static struct dt_reqrec request(const char *app, const char *model)
{
	return (struct dt_reqrec){ .app = app, .provider = "openai", .model = (char *)model,
				   .served = -1, .total_ns = 300000000, .ttft_ns = 70000000 };
}

static void test_a_failover_counted(void **state)
{
	struct dt_metrics *m = configured();
	struct dt_reqrec r = request("chatbot", "gpt-4o-mini");

	(void)state;
	attempt(&r, "openai", "", DT_OUTCOME_SERVER_ERROR, DT_BLAME_PROVIDER, false);
	attempt(&r, "groq", "llama-3.3-70b", DT_OUTCOME_OK, DT_BLAME_NONE, false);
	r.served = 1;
	r.status = 200;
	r.failover = true;
	dt_metrics_request(m, &r);
	dt_metrics_request(m, &r);
	assert_true(value_of(m, "detour_requests_total",
			     "application=chatbot,provider=groq,model=llama-3.3-70b,class=chat-small,code=2xx") == 2);
	assert_true(value_of(m, "detour_requests_total", "provider=openai,code=2xx") == 0);
	assert_true(value_of(m, "detour_failovers_total", "provider=groq") == 2);
	assert_true(value_of(m, "detour_attempts_total", "provider=openai") == 2);
	assert_true(value_of(m, "detour_attempt_errors_total",
			     "provider=openai,model=gpt-4o-mini,class=chat-small,blame=provider") == 2);
	assert_true(value_of(m, "detour_attempt_errors_total", "provider=groq,blame=provider") == 0);
	assert_true(value_of(m, "detour_request_duration_seconds_bucket", "provider=groq,le=0.25") == 0);
	assert_true(value_of(m, "detour_request_duration_seconds_bucket", "provider=groq,le=0.5") == 2);
	assert_true(value_of(m, "detour_request_duration_seconds_sum", "provider=groq") == 0.6);
	assert_true(value_of(m, "detour_time_to_first_token_seconds_bucket", "provider=groq,le=0.05") == 0);
	assert_true(value_of(m, "detour_time_to_first_token_seconds_bucket", "provider=groq,le=0.1") == 2);
	assert_true(value_of(m, "detour_time_to_first_token_seconds_count", "provider=groq") == 2);
	dt_metrics_free(m);
}

static void test_blames_hedges_budget(void **state)
{
	struct dt_metrics *m = configured();
	struct dt_reqrec r = request("-", "gpt-4o-mini");

	(void)state;
	attempt(&r, "openai", "", DT_OUTCOME_CANCELLED, DT_BLAME_NONE, false);
	attempt(&r, "groq", "llama-3.3-70b", DT_OUTCOME_OK, DT_BLAME_NONE, true);
	r.served = 1;
	r.status = 200;
	r.hedged = true;
	r.budget_refused = 1;
	dt_metrics_request(m, &r);
	r = request("-", "gpt-4o-mini");
	attempt(&r, "openai", "", DT_OUTCOME_OK, DT_BLAME_REQUEST, false);
	attempt(&r, "openai", "", DT_OUTCOME_RATE_LIMITED, DT_BLAME_RATE_LIMIT, false);
	attempt(&r, "openai", "", DT_OUTCOME_KEY_REFUSED, DT_BLAME_KEY, false);
	attempt(&r, "openai", "", DT_OUTCOME_OK, DT_BLAME_CONTEXT, false);
	r.status = 0; /* the client left */
	dt_metrics_request(m, &r);
	assert_true(value_of(m, "detour_hedges_total", "application=-,provider=groq") == 1);
	assert_true(value_of(m, "detour_hedges_won_total", "provider=groq") == 1);
	assert_true(value_of(m, "detour_hedges_total", "provider=openai") == 0);
	assert_true(value_of(m, "detour_retries_refused_total", "provider=groq") == 1);
	assert_true(value_of(m, "detour_failovers_total", "provider=groq") == 0);
	assert_true(value_of(m, "detour_requests_total", "provider=openai,code=none") == 1);
	for (const char *const *b = (const char *const[]){ "request", "rate_limit", "key", "context", NULL }; *b; b++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "provider=openai,blame=%s", *b);
		assert_true(value_of(m, "detour_attempt_errors_total", labels) == 1);
	}
	assert_true(value_of(m, "detour_attempt_errors_total", "provider=openai,blame=provider") == 0);
	/* a request nobody answered takes no duration */
	assert_true(value_of(m, "detour_request_duration_seconds_count", "provider=openai") == 0);
	dt_metrics_free(m);
}

static void test_model_labels_bounded(void **state)
{
	struct dt_metrics *m = configured();
	char model[32];

	(void)state;
	assert_string_equal(dt_metrics_model_label(m, "openai", "gpt-4o-mini"), "gpt-4o-mini");
	assert_string_equal(dt_metrics_class_label(m, "openai", "gpt-4o-mini"), "chat-small");
	/* a probe model is named, in no class */
	assert_string_equal(dt_metrics_model_label(m, "openai", "gpt-4.1-nano"), "gpt-4.1-nano");
	assert_string_equal(dt_metrics_class_label(m, "openai", "gpt-4.1-nano"), "-");
	/* a configured model on another provider keeps its name, not the class */
	assert_string_equal(dt_metrics_model_label(m, "groq", "gpt-4o-mini"), "gpt-4o-mini");
	assert_string_equal(dt_metrics_class_label(m, "groq", "gpt-4o-mini"), "-");
	assert_string_equal(dt_metrics_model_label(m, "openai", "whatever-the-app-says"), "other");
	assert_string_equal(dt_metrics_model_label(m, "openai", ""), "-");
	assert_string_equal(dt_metrics_model_label(m, "openai", NULL), "-");
	/* a thousand models the configuration does not name: one series */
	for (int i = 0; i < 1000; i++) {
		struct dt_reqrec r = request("chatbot", model);

		snprintf(model, sizeof(model), "model-%d", i);
		attempt(&r, "openai", "", DT_OUTCOME_OK, DT_BLAME_NONE, false);
		r.served = 0;
		r.status = 200;
		dt_metrics_request(m, &r);
	}
	assert_true(value_of(m, "detour_requests_total", "provider=openai,model=other,class=-,code=2xx") == 1000);
	dt_metrics_free(m);
}

static void test_past_the_series_limit_other(void **state)
{
	struct dt_metrics *m = configured();
	char app[32];

	(void)state;
	for (int i = 0; i < DT_METRICS_MAX_SERIES + 10; i++) {
		struct dt_reqrec r = request(app, "gpt-4o-mini");

		snprintf(app, sizeof(app), "app-%d", i);
		r.status = 503;
		dt_metrics_request(m, &r);
	}
	assert_true(value_of(m, "detour_requests_total", "application=app-0,code=5xx") == 1);
	assert_true(value_of(m, "detour_requests_total",
			     "application=other,provider=other,model=other,class=other,code=5xx") == 11);
	dt_metrics_free(m);
}

static void test_counters_survive_a_reload(void **state)
{
	struct dt_metrics *m = configured();
	struct dt_reqrec r = request("chatbot", "gpt-4o-mini");

	(void)state;
	r.status = 503;
	dt_metrics_request(m, &r);
	assert_int_equal(dt_metrics_configure(m, &cfg), 0);
	dt_metrics_request(m, &r);
	assert_true(value_of(m, "detour_requests_total", "provider=openai,code=5xx") == 2);
	dt_metrics_free(m);
}

/* Spend rows under the label rules: models the configuration does not
 * name are summed into "other", cost shown in dollars. */
static void test_spend_rows_merged(void **state)
{
	struct dt_metrics *m = configured();
	struct dt_spend_row rows[] = {
		{ .app = "chatbot", .provider = "openai", .model = "gpt-4o-mini", .class_name = "chat-small",
		  .requests = 2, .input_tokens = 10, .output_tokens = 20, .cost_pico = 1500000000000ull },
		{ .app = "chatbot", .provider = "openai", .model = "ft:mine-1", .class_name = "-",
		  .requests = 1, .input_tokens = 3, .output_tokens = 4, .unpriced = 1 },
		{ .app = "chatbot", .provider = "openai", .model = "ft:mine-2", .class_name = "-",
		  .requests = 1, .input_tokens = 5, .output_tokens = 6, .unmetered = 0, .unpriced = 1 },
		{ .app = "batch", .provider = "openai", .model = DT_SPEND_OTHER, .class_name = "-",
		  .requests = 1, .unmetered = 1 },
	};

	(void)state;
	spend_rows = rows;
	n_spend_rows = 4;
	assert_true(value_of(m, "detour_tokens_total",
			     "application=chatbot,model=gpt-4o-mini,class=chat-small,kind=output") == 20);
	assert_true(value_of(m, "detour_cost_dollars_total", "application=chatbot,model=gpt-4o-mini") == 1.5);
	assert_true(value_of(m, "detour_tokens_total", "application=chatbot,model=other,kind=input") == 8);
	assert_true(value_of(m, "detour_answers_unpriced_total", "application=chatbot,model=other") == 2);
	assert_true(value_of(m, "detour_answers_unmetered_total", "application=batch,model=other") == 1);
	assert_true(value_of(m, "detour_tokens_total", "application=chatbot,kind=cache_write,model=other") == 0);
	spend_rows = NULL;
	n_spend_rows = 0;
	dt_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_failover_counted),
		cmocka_unit_test(test_blames_hedges_budget),
		cmocka_unit_test(test_model_labels_bounded),
		cmocka_unit_test(test_past_the_series_limit_other),
		cmocka_unit_test(test_counters_survive_a_reload),
		cmocka_unit_test(test_spend_rows_merged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
