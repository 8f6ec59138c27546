// SPDX-License-Identifier: MIT
/* The access log: one JSON line per request with its attempts; the prompt
 * only when the record carries it; a failed write is counted, never fatal;
 * reopened by its path after logrotate moved it. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "accesslog.h"
#include "reqrec.h"

/* A failover: openai said 503, groq answered. */
static void failover_record(struct dt_reqrec *r)
{
	*r = (struct dt_reqrec){
		.wall_ms = 1764037627263, .app = "chatbot", .provider = "openai",
		.shape = DT_FAMILY_OPENAI, .method = "POST",
		.path = "/v1/chat/completions?key=AIza-secret", .path_len = 20,
		.model = "gpt-4o-mini", .status = 200, .served = 1,
		.ttfb_ns = 7015000, .total_ns = 7057000, .failover = true, .n_attempts = 2,
		.usage = { .known = true, .input_tokens = 12, .cached_input_tokens = 4, .output_tokens = 7 },
	};
	r->attempts[0] = (struct dt_reqrec_attempt){
		.provider = "openai", .model = "", .outcome = DT_OUTCOME_SERVER_ERROR,
		.blame = DT_BLAME_PROVIDER, .status = 503, .start_ns = 17000, .end_ns = 272000,
	};
	r->attempts[1] = (struct dt_reqrec_attempt){
		.provider = "groq", .model = "llama-3.3-70b", .outcome = DT_OUTCOME_OK,
		.status = 200, .start_ns = 288000, .end_ns = 7038000,
	};
}

static json_t *parse_line(const struct dt_reqrec *r)
{
	size_t len;
	char *line = dt_accesslog_line(r, &len);
	json_error_t e;
	json_t *o;

	assert_non_null(line);
	assert_int_equal(strlen(line), len);
	assert_true(len > 1 && line[len - 1] == '\n');
	assert_null(memchr(line, '\n', len - 1)); /* one line */
	o = json_loadb(line, len, 0, &e);
	free(line);
	assert_non_null(o);
	return o;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_a_failover_line(void **state)
{
	struct dt_reqrec r;
	json_t *o, *a;

	(void)state;
	failover_record(&r);
	o = parse_line(&r);
	assert_string_equal(str(o, "time"), "2025-11-25T02:27:07.263Z");
	assert_string_equal(str(o, "app"), "chatbot");
	assert_string_equal(str(o, "api"), "openai");
	assert_string_equal(str(o, "provider"), "openai");
	/* the query, where a Gemini key may be, is not logged */
	assert_string_equal(str(o, "path"), "/v1/chat/completions");
	assert_string_equal(str(o, "model"), "gpt-4o-mini");
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
	assert_string_equal(str(o, "served_provider"), "groq");
	assert_string_equal(str(o, "served_model"), "llama-3.3-70b");
	assert_true(json_is_true(json_object_get(o, "failover")));
	assert_true(json_is_false(json_object_get(o, "hedged")));
	assert_true(json_real_value(json_object_get(o, "ttfb_ms")) == 7.015);
	assert_null(json_object_get(o, "ttft_ms")); /* not a stream */
	assert_true(json_real_value(json_object_get(o, "total_ms")) == 7.057);
	a = json_object_get(o, "attempts");
	assert_int_equal(json_array_size(a), 2);
	/* "" is the client's own model */
	assert_string_equal(str(json_array_get(a, 0), "model"), "gpt-4o-mini");
	assert_string_equal(str(json_array_get(a, 0), "outcome"), "server_error");
	assert_string_equal(str(json_array_get(a, 0), "blame"), "provider");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "status")), 503);
	assert_true(json_real_value(json_object_get(json_array_get(a, 0), "ms")) == 0.255);
	assert_string_equal(str(json_array_get(a, 1), "provider"), "groq");
	assert_string_equal(str(json_array_get(a, 1), "outcome"), "ok");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "tokens"), "cached_input")), 4);
	assert_null(json_object_get(o, "prompt"));
	assert_null(json_object_get(o, "cost_usd")); /* no price known */
	json_decref(o);
	r.priced = true;
	r.cost_pico = 1250000;
	o = parse_line(&r);
	assert_true(json_real_value(json_object_get(o, "cost_usd")) == 0.00000125);
	json_decref(o);
}

/* The time, written without gmtime: as gmtime says it, leap days and
 * century years included. */
static void test_time_as_gmtime_says(void **state)
{
	struct dt_reqrec r;

	(void)state;
	failover_record(&r);
	for (int64_t t = 0; t < 4102444800000ll; t += 86400000ll * 17 + 3723456) {
		int64_t when[] = { t, 951782400000ll + t % 86400000, 4107542399999ll - t % 1000 };

		for (size_t i = 0; i < 3; i++) {
			time_t secs = (time_t)(when[i] / 1000);
			char want[40];
			struct tm tm;
			json_t *o;

			gmtime_r(&secs, &tm);
			strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(want + 19, sizeof(want) - 19, ".%03dZ", (int)(when[i] % 1000));
			r.wall_ms = when[i];
			o = parse_line(&r);
			assert_string_equal(str(o, "time"), want);
			json_decref(o);
		}
	}
}

static void test_nothing_answered(void **state)
{
	struct dt_reqrec r = {
		.app = "-", .provider = "openai", .method = "POST", .path = "/v1/x", .path_len = 5,
		.status = 503, .served = -1, .budget_refused = 1, .n_attempts = 1,
	};
	json_t *o;

	(void)state;
	r.attempts[0] = (struct dt_reqrec_attempt){
		.provider = "openai", .model = "", .outcome = DT_OUTCOME_CONNECT_FAILED,
		.blame = DT_BLAME_PROVIDER,
	};
	o = parse_line(&r);
	assert_true(json_is_null(json_object_get(o, "model")));
	assert_true(json_is_null(json_object_get(o, "served_provider")));
	assert_null(json_object_get(o, "ttfb_ms")); /* no byte was sent */
	assert_null(json_object_get(o, "tokens"));
	assert_int_equal(json_integer_value(json_object_get(o, "budget_refused")), 1);
	assert_string_equal(str(json_array_get(json_object_get(o, "attempts"), 0), "outcome"),
			    "connect_failed");
	json_decref(o);
}

static void test_the_prompt_when_carried_escaped(void **state)
{
	struct dt_reqrec r;
	char body[] = "{\"messages\":[{\"content\":\"line1\nline2 \\\"quoted\\\"\"}]}";
	json_t *o;

	(void)state;
	failover_record(&r);
	r.prompt = body;
	r.prompt_len = strlen(body);
	o = parse_line(&r);
	assert_string_equal(str(o, "prompt"), body);
	json_decref(o);
}

static void test_written_counted_reopened(void **state)
{
	char dir[] = "/tmp/test_accesslog.XXXXXX", path[64], moved[64], err[256], buf[4096];
	struct dt_accesslog *l;
	struct dt_reqrec r;
	ssize_t n;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(moved, sizeof(moved), "%s/access.log.1", dir);
	failover_record(&r);
	l = dt_accesslog_open(path, false, err, sizeof(err));
	assert_non_null(l);
	dt_accesslog_write(l, &r);
	dt_accesslog_write(l, &r);
	assert_int_equal(dt_accesslog_lines(l), 2);
	/* logrotate: moved away, then reopened: a new file */
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(dt_accesslog_reopen(l), 0);
	dt_accesslog_write(l, &r);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0 && memchr(buf, '\n', (size_t)n) == buf + n - 1);
	dt_accesslog_close(l);
	unlink(path);
	unlink(moved);
	rmdir(dir);
}

static void test_a_failed_write_is_counted(void **state)
{
	struct dt_accesslog *l;
	struct dt_reqrec r;
	char err[256];

	(void)state;
	if (access("/dev/full", W_OK)) {
		skip();
		return;
	}
	failover_record(&r);
	l = dt_accesslog_open("/dev/full", false, err, sizeof(err));
	assert_non_null(l);
	dt_accesslog_write(l, &r);
	dt_accesslog_write(l, &r);
	assert_int_equal(dt_accesslog_failures(l), 2);
	assert_int_equal(dt_accesslog_lines(l), 0);
	dt_accesslog_close(l);
}

static void test_an_unwritable_path_is_refused(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(dt_accesslog_open("/nonexistent-dir/access.log", false, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/access.log"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_failover_line),
		cmocka_unit_test(test_time_as_gmtime_says),
		cmocka_unit_test(test_nothing_answered),
		cmocka_unit_test(test_the_prompt_when_carried_escaped),
		cmocka_unit_test(test_written_counted_reopened),
		cmocka_unit_test(test_a_failed_write_is_counted),
		cmocka_unit_test(test_an_unwritable_path_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
