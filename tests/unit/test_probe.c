// SPDX-License-Identifier: MIT
/* The prober against a real fakellm over plain HTTP on 127.0.0.1, through a
 * real upstream client and a real health engine on an injected clock: each
 * family's model-list probe and its credentials, answers and failures
 * turned into the engine's verdicts, the opt-in TTFT completion and its
 * hourly cap and cost, reloads, and keys kept out of the logs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "health.h"
#include "log.h"
#include "probe.h"
#include "upstream.h"
#include "xlate.h"

#define WAIT_MS   5000
#define BODY_MAX  (64 * 1024)
#define MS        1000000ull
#define KEY_OAI   "sk-probe-openai-0123456789"
#define KEY_ANT   "sk-ant-probe-0123456789"
#define KEY_GEM   "AIza-probe-0123456789"

/* ---- the world: one fakellm for the whole group, logs in a file ---------- */

static struct {
	char dir[64];
	pid_t pid;
	unsigned port, admin_port;
	int saved_stderr;
} world;

static char *world_path(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", world.dir, name);
	return buf[i];
}

/* ---- the fakellm child and its admin API ----------------------------------- */

static unsigned fakellm_admin_port(void)
{
	return world.admin_port;
}

#include "fakellm_child.h"

static int world_setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	strcpy(world.dir, "/tmp/dt-probe-XXXXXX");
	assert_non_null(mkdtemp(world.dir));
	world.pid = fakellm_spawn(world_path("fakellm.log"), world_path("fakellm.pid"),
				  (const char *const[]){ "--name", "probe-test", NULL });
	fakellm_wait_ready(world_path("fakellm.log"), world_path("fakellm.pid"), &world.port,
			   &world.admin_port);
	/* every line the prober may log, debug ones too, is checked for keys */
	dt_log_level = DT_LOG_DEBUG;
	return 0;
}

static int world_teardown(void **state)
{
	static const char *const files[] = { "fakellm.log", "fakellm.pid", "agent.log" };

	(void)state;
	if (world.pid > 0) {
		kill(world.pid, SIGTERM);
		waitpid(world.pid, NULL, 0);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(world_path(files[i]));
	rmdir(world.dir);
	curl_global_cleanup();
	return 0;
}


static json_t *stats(void)
{
	static char out[BODY_MAX];
	json_t *s;

	admin("/stats", NULL, out);
	s = json_loads(out, 0, NULL);
	assert_non_null(s);
	return s;
}

static long stat_path(const char *path)
{
	json_t *s = stats();
	long n = (long)json_integer_value(json_object_get(json_object_get(s, "by_path"), path));

	json_decref(s);
	return n;
}

static long stat_requests(void)
{
	json_t *s = stats();
	long n = (long)json_integer_value(json_object_get(s, "requests"));

	json_decref(s);
	return n;
}

/* A field of the last request fakellm saw, copied to out. */
static const char *last_request(const char *field, char *out, size_t len)
{
	json_t *s = stats();
	const char *v = json_string_value(json_object_get(json_object_get(s, "last_request"), field));

	snprintf(out, len, "%s", v ? v : "");
	json_decref(s);
	return out;
}

/* ---- one prober on a fresh loop, upstream and health engine --------------- */

struct fixture {
	struct event_base *base;
	struct dt_upstream *u;
	struct dt_health *h;
	struct dt_prober *p;
	uint64_t offset;             /* the injected clock: monotonic + this */
	enum dt_state state[DT_MAX_PROVIDERS];
	enum dt_health_reason reason[DT_MAX_PROVIDERS];
	/* what the prober told the cost accounting, last */
	unsigned costs;
	uint32_t cost_id;
	char cost_model[64];
	struct dt_xusage cost_usage;
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t test_clock(void *ctx)
{
	const struct fixture *fx = ctx;

	return monotonic_ns() + fx->offset;
}

static void on_change(void *ctx, const struct dt_health_change *c)
{
	struct fixture *fx = ctx;

	if (c->model)
		return;
	fx->state[c->provider_id] = c->to;
	fx->reason[c->provider_id] = c->reason;
	/* a change to DOWN or PROBING brings the next probe forward */
	if (fx->p)
		dt_prober_reschedule(fx->p);
}

static void on_cost(void *ctx, uint32_t id, const char *model, const struct dt_xusage *u)
{
	struct fixture *fx = ctx;

	fx->costs++;
	fx->cost_id = id;
	snprintf(fx->cost_model, sizeof(fx->cost_model), "%s", model);
	fx->cost_usage = *u;
}

/* Probes fast so a test sees several within a second; short ejections. */
static const struct dt_health_opts health_opts = {
	.probe_interval_ms = 100,
	.probe_interval_down_ms = 50,
	.probe_interval_max_ms = 400,
	.eject_base_ms = 300,
};

static struct fixture *new_fixture(unsigned timeout_ms)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct dt_upstream_opts uo = { .connect_timeout_ms = 1000 };
	struct dt_prober_opts po = { .timeout_ms = timeout_ms, .clock = test_clock };
	char err[256];

	assert_non_null(fx);
	po.clock_ctx = fx;
	po.cost = on_cost;
	po.cost_ctx = fx;
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->u = dt_upstream_new(fx->base, &uo, err, sizeof(err));
	assert_non_null(fx->u);
	fx->h = dt_health_new(&health_opts, on_change, fx);
	assert_non_null(fx->h);
	fx->p = dt_prober_new(fx->base, fx->u, fx->h, &po, err, sizeof(err));
	assert_non_null(fx->p);
	return fx;
}

/* The prober's logs go to agent.log for the test, then to stderr too. */
static void capture_logs(void)
{
	int fd = open(world_path("agent.log"), O_WRONLY | O_CREAT | O_APPEND, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	world.saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static void release_logs(void)
{
	fflush(stderr);
	dup2(world.saved_stderr, STDERR_FILENO);
	close(world.saved_stderr);
}

static int fixture_setup(void **state)
{
	static char out[BODY_MAX];

	set_fault("{\"mode\":\"ok\"}");
	admin("/reset-stats", "{}", out);
	capture_logs();
	*state = new_fixture(1000);
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	dt_prober_free(fx->p);
	dt_health_free(fx->h);
	dt_upstream_free(fx->u);
	event_base_free(fx->base);
	free(fx);
	release_logs();
	set_fault("{\"mode\":\"ok\"}");
	return 0;
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until provider id has had n probe reports (each one moves
 * its due time) or ms pass; returns how many came. */
static int run_reports(struct fixture *fx, uint32_t id, int n, int ms)
{
	struct event *guard = evtimer_new(fx->base, on_guard, NULL);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	uint64_t due = dt_health_probe_due(fx->h, id);
	int seen = 0;

	evtimer_add(guard, &tv);
	while (seen < n && evtimer_pending(guard, NULL)) {
		uint64_t now_due;

		event_base_loop(fx->base, EVLOOP_ONCE);
		now_due = dt_health_probe_due(fx->h, id);
		if (now_due != due)
			seen++;
		due = now_due;
	}
	event_free(guard);
	return seen;
}

/* Run the loop until provider id's state is `to` or ms pass. */
static void run_until_state(struct fixture *fx, uint32_t id, enum dt_state to, int ms)
{
	struct event *guard = evtimer_new(fx->base, on_guard, NULL);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(guard, &tv);
	while (fx->state[id] != to && evtimer_pending(guard, NULL))
		event_base_loop(fx->base, EVLOOP_ONCE);
	event_free(guard);
	assert_int_equal(fx->state[id], to);
}

static void run_for(struct fixture *fx, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

static struct dt_health_verdict verdict(struct fixture *fx, uint32_t id)
{
	struct dt_health_verdict v;

	assert_true(dt_health_verdict(fx->h, id, NULL, test_clock(fx), &v));
	return v;
}

static void base_url(char *buf, size_t len, unsigned port, const char *path)
{
	snprintf(buf, len, "http://127.0.0.1:%u%s", port, path);
}

static void probe_one(struct fixture *fx, const struct dt_probe_provider *pv)
{
	assert_int_equal(dt_prober_set_providers(fx->p, pv, 1), 0);
}

/* ---- tests ---------------------------------------------------------------- */

struct family_case {
	enum dt_family family;
	const char *api_path;         /* under which base_url ends */
	const char *key;
	const char *list_path;        /* what the probe asks */
	const char *auth_field;       /* last_request's field holding the key */
	const char *auth_value;
	const char *ttft_stat;        /* by_path of the TTFT completion */
	const char *one_token;        /* the body's one-token limit */
};

static const struct family_case families[] = {
	{ DT_FAMILY_OPENAI, "/v1", KEY_OAI, "/v1/models", "authorization", "Bearer " KEY_OAI,
	  "/v1/chat/completions", "\"max_tokens\":1" },
	{ DT_FAMILY_ANTHROPIC, "/v1", KEY_ANT, "/v1/models", "x_api_key", KEY_ANT,
	  "/v1/messages", "\"max_tokens\":1" },
	{ DT_FAMILY_GEMINI, "/v1beta", KEY_GEM, "/v1beta/models", "x_goog_api_key", KEY_GEM,
	  "/v1beta/models/*:streamGenerateContent", "\"maxOutputTokens\":1" },
};

static void test_list_probe_per_family(void **state)
{
	struct fixture *fx = *state;
	char url[128], got[512];

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family_case *c = &families[i];
		struct dt_probe_provider pv = { .id = (uint32_t)i, .name = "p", .family = c->family,
						.base_url = url, .key = c->key };

		base_url(url, sizeof(url), world.port, c->api_path);
		probe_one(fx, &pv);
		assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
		assert_string_equal(last_request("path", got, sizeof(got)), c->list_path);
		assert_string_equal(last_request(c->auth_field, got, sizeof(got)), c->auth_value);
		assert_string_equal(last_request("anthropic_version", got, sizeof(got)),
				    c->family == DT_FAMILY_ANTHROPIC ? "2023-06-01" : "");
		/* answered: a success the engine counts */
		assert_int_equal(verdict(fx, pv.id).state, DT_HEALTHY);
		assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
		assert_int_equal(dt_prober_stats(fx->p, pv.id).ttft_probes, 0);
		assert_int_equal(dt_prober_stats(fx->p, pv.id).sent, 1);
		assert_int_equal(dt_prober_stats(fx->p, pv.id).failed, 0);
	}
	/* the free probe only: no completion was ever asked */
	assert_int_equal(stat_path("/v1/chat/completions"), 0);
	assert_int_equal(stat_path("/v1/messages"), 0);
	assert_int_equal(stat_path("/v1/models"), 2);
	assert_int_equal(stat_path("/v1beta/models"), 1);
}

/* Probes follow the engine's schedule, one at a time. */
static void test_probes_repeat_on_schedule(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 7, .name = "openai", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI };
	uint64_t t0 = monotonic_ns();

	base_url(url, sizeof(url), world.port, "/v1");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 4, WAIT_MS), 4);
	/* the first at once, then every 100 ms +- 20% */
	assert_true(monotonic_ns() - t0 >= 3 * 80 * MS);
	assert_int_equal(stat_path("/v1/models"), 4);
}

static void test_server_error_ejects_then_recovers(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 2, .name = "openai", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI };
	struct dt_health_verdict v;

	base_url(url, sizeof(url), world.port, "/v1");
	set_fault("{\"mode\":\"status\",\"status\":503}");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	v = verdict(fx, pv.id);
	assert_int_equal(v.consecutive_failures, 1);
	assert_int_equal(v.state, DT_HEALTHY);
	/* 5 consecutive failures eject (docs/health.md) */
	run_until_state(fx, pv.id, DT_DOWN, WAIT_MS);
	assert_int_equal(fx->reason[pv.id], DT_HR_CONSECUTIVE_FAILURES);
	assert_int_equal(stat_path("/v1/models"), 5);
	assert_int_equal(dt_prober_stats(fx->p, pv.id).sent, 5);
	assert_int_equal(dt_prober_stats(fx->p, pv.id).failed, 5);
	/* back up: once the 300 ms ejection is over, the probes are the trials */
	set_fault("{\"mode\":\"ok\"}");
	run_until_state(fx, pv.id, DT_PROBING, WAIT_MS);
	run_until_state(fx, pv.id, DT_HEALTHY, WAIT_MS);
	assert_int_equal(fx->reason[pv.id], DT_HR_TRIALS_PASSED);
}

static void test_connect_refused(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[128];
	struct dt_probe_provider pv = { .id = 3, .name = "gone", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI };

	/* a port bound but not listening refuses, and nobody else takes it */
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	base_url(url, sizeof(url), ntohs(a.sin_port), "/v1");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 2, WAIT_MS), 2);
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 2);
	/* not answered at all: failed as well */
	assert_int_equal(dt_prober_stats(fx->p, pv.id).failed, 2);
	close(fd);
}

static void test_hang_times_out(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 4, .name = "hung", .family = DT_FAMILY_ANTHROPIC,
					.base_url = url, .key = KEY_ANT };
	uint64_t t0 = monotonic_ns(), took;

	base_url(url, sizeof(url), world.port, "/v1");
	set_fault("{\"mode\":\"hang\"}");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	took = monotonic_ns() - t0;
	/* the fixture's prober gives a probe 1 s */
	assert_true(took >= 1000 * MS);
	assert_true(took < 3000 * MS);
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 1);
	/* one at a time: nothing else was sent while it hung */
	assert_int_equal(stat_requests(), 1);

	/* a new timeout (a reload) bounds the probes sent from then on */
	dt_prober_set_timeout(fx->p, 300);
	pv.id = 5;
	t0 = monotonic_ns();
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	took = monotonic_ns() - t0;
	assert_true(took >= 300 * MS);
	assert_true(took < 1000 * MS);
}

/* Rate-limited or refused keys: the provider answered, so it is reachable;
 * a refused key is logged once. */
static void test_refusals_are_reachable(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 5, .name = "refused", .family = DT_FAMILY_GEMINI,
					.base_url = url, .key = KEY_GEM };

	base_url(url, sizeof(url), world.port, "/v1beta");
	set_fault("{\"mode\":\"status\",\"status\":401}");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 3, WAIT_MS), 3);
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
	assert_int_equal(verdict(fx, pv.id).state, DT_HEALTHY);

	set_fault("{\"mode\":\"status\",\"status\":429,\"retry_after\":30}");
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
	/* its retry-after went to the engine */
	assert_int_equal(verdict(fx, pv.id).state, DT_RATE_LIMITED);
	assert_int_equal(dt_prober_stats(fx->p, pv.id).sent, 4);
	assert_int_equal(dt_prober_stats(fx->p, pv.id).failed, 0);
}

/* Without a key the probe carries no credential and any answer, even 401,
 * shows the provider reachable, with nothing to log. */
static void test_keyless_provider(void **state)
{
	struct fixture *fx = *state;
	char url[128], got[256];
	struct dt_probe_provider pv = { .id = 6, .name = "keyless", .family = DT_FAMILY_OPENAI,
					.base_url = url };

	base_url(url, sizeof(url), world.port, "/v1");
	set_fault("{\"mode\":\"status\",\"status\":401}");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 2, WAIT_MS), 2);
	assert_string_equal(last_request("authorization", got, sizeof(got)), "");
	assert_string_equal(last_request("path", got, sizeof(got)), "/v1/models");
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
}

static void test_ttft_probe_per_family(void **state)
{
	struct fixture *fx = *state;
	char url[128], got[BODY_MAX];

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family_case *c = &families[i];
		struct dt_probe_provider pv = { .id = (uint32_t)i, .name = "t", .family = c->family,
						.base_url = url, .key = c->key,
						.ttft_model = "probe-model", .ttft_per_hour = 2 };
		struct dt_probe_stats cost;

		base_url(url, sizeof(url), world.port, c->api_path);
		probe_one(fx, &pv);
		assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
		/* reported at the first token; its cost once the stream ended */
		while (dt_prober_stats(fx->p, pv.id).output_tokens == 0)
			assert_int_equal(event_base_loop(fx->base, EVLOOP_ONCE), 0);
		assert_int_equal(stat_path(c->ttft_stat), 1);
		last_request("body", got, sizeof(got));
		assert_non_null(strstr(got, c->one_token));
		assert_string_equal(last_request(c->auth_field, got, sizeof(got)), c->auth_value);
		assert_string_equal(last_request("model", got, sizeof(got)), "probe-model");
		cost = dt_prober_stats(fx->p, pv.id);
		assert_int_equal(cost.ttft_probes, 1);
		assert_int_equal(cost.sent, 1);
		assert_int_equal(cost.failed, 0);
		/* fakellm's usage: a token a word of "Say hi", one out */
		assert_int_equal(cost.input_tokens, 2);
		assert_int_equal(cost.output_tokens, 1);
		/* ... told the cost accounting as well */
		assert_int_equal(fx->costs, i + 1);
		assert_int_equal(fx->cost_id, pv.id);
		assert_string_equal(fx->cost_model, "probe-model");
		assert_true(fx->cost_usage.known);
		assert_int_equal(fx->cost_usage.input_tokens, 2);
		assert_int_equal(fx->cost_usage.output_tokens, 1);
		assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
	}
}

/* A listening socket on 127.0.0.1 the test answers by hand. */
static int listen_local(unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* The TTFT probe is reported at its first data line, not at its end: a
 * stream that breaks after its first event still proved the provider, and
 * its cost is counted with the estimates when it gives no usage.
 * (fakellm sends a one-token stream in one piece.) */
static void test_ttft_reported_at_first_token(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	static const char event[] = "c\r\ndata: {}\n\n\r\n";
	struct fixture *fx = *state;
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	char url[128], req[4096];
	unsigned port;
	int lfd = listen_local(&port), cfd;
	struct dt_probe_provider pv = { .id = 8, .name = "by-hand", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI,
					.ttft_model = "gpt-4o-mini", .ttft_per_hour = 1 };
	struct dt_probe_stats cost;

	base_url(url, sizeof(url), port, "/v1");
	probe_one(fx, &pv);
	run_for(fx, 100);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	assert_true(recv(cfd, req, sizeof(req), 0) > 0);
	assert_int_equal(strncmp(req, "POST /v1/chat/completions ", 26), 0);
	assert_int_equal(send(cfd, head, sizeof(head) - 1, 0), (ssize_t)sizeof(head) - 1);
	assert_int_equal(send(cfd, event, sizeof(event) - 1, 0), (ssize_t)sizeof(event) - 1);
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	/* reported while the stream goes on: no cost counted yet */
	assert_int_equal(dt_prober_stats(fx->p, pv.id).output_tokens, 0);
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);

	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	close(cfd);
	while (dt_prober_stats(fx->p, pv.id).output_tokens == 0)
		assert_int_equal(event_base_loop(fx->base, EVLOOP_ONCE), 0);
	cost = dt_prober_stats(fx->p, pv.id);
	assert_int_equal(cost.output_tokens, 1);
	assert_int_equal(cost.input_tokens, 2); /* "Say hi" at 4 bytes a token */
	/* the reset after the first token is no failure */
	assert_int_equal(verdict(fx, pv.id).consecutive_failures, 0);
	close(lfd);
}

static void test_ttft_hourly_cap(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 9, .name = "capped", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI,
					.ttft_model = "gpt-4o-mini", .ttft_per_hour = 2 };

	base_url(url, sizeof(url), world.port, "/v1");
	probe_one(fx, &pv);
	assert_int_equal(run_reports(fx, pv.id, 4, WAIT_MS), 4);
	/* 2 an hour: one, then the free list call until half an hour passed */
	assert_int_equal(stat_path("/v1/chat/completions"), 1);
	assert_int_equal(stat_path("/v1/models"), 3);
	fx->offset += 29 * 60 * 1000 * MS;
	assert_int_equal(run_reports(fx, pv.id, 1, WAIT_MS), 1);
	assert_int_equal(stat_path("/v1/chat/completions"), 1);
	fx->offset += 60 * 1000 * MS;
	assert_int_equal(run_reports(fx, pv.id, 2, WAIT_MS), 2);
	assert_int_equal(stat_path("/v1/chat/completions"), 2);
	assert_int_equal(stat_path("/v1/models"), 5);
	assert_int_equal(dt_prober_stats(fx->p, pv.id).ttft_probes, 2);
}

/* Wait, running the loop, until fakellm has seen n requests. */
static void run_until_requests(struct fixture *fx, long n)
{
	for (int i = 0; i < WAIT_MS / 20 && stat_requests() < n; i++)
		run_for(fx, 20);
	assert_int_equal(stat_requests(), n);
}

static void test_reload(void **state)
{
	struct fixture *fx = *state;
	char url[128], got[256];
	struct dt_probe_provider pv[2] = {
		{ .id = 10, .name = "a", .family = DT_FAMILY_OPENAI, .base_url = url, .key = KEY_OAI,
		  .ttft_model = "gpt-4o-mini", .ttft_per_hour = 1 },
		{ .id = 11, .name = "b", .family = DT_FAMILY_OPENAI, .base_url = url, .key = "k2" },
	};

	base_url(url, sizeof(url), world.port, "/v1");
	probe_one(fx, &pv[0]);
	assert_int_equal(run_reports(fx, pv[0].id, 1, WAIT_MS), 1);
	while (dt_prober_stats(fx->p, pv[0].id).output_tokens == 0)
		assert_int_equal(event_base_loop(fx->base, EVLOOP_ONCE), 0);

	/* a probe hangs; the same configuration again keeps it in flight */
	set_fault("{\"mode\":\"hang\"}");
	run_until_requests(fx, 2);
	probe_one(fx, &pv[0]);
	run_for(fx, 100);
	assert_int_equal(stat_requests(), 2);
	/* the TTFT budget and the counts stay with the id */
	assert_int_equal(dt_prober_stats(fx->p, pv[0].id).ttft_probes, 1);
	assert_int_equal(dt_prober_stats(fx->p, pv[0].id).sent, 2);

	/* a new key: the probe under the old one says nothing of it, a new one goes */
	pv[0].key = "sk-probe-new-key-42";
	assert_int_equal(dt_prober_set_providers(fx->p, pv, 2), 0);
	run_until_requests(fx, 4);
	assert_int_equal(dt_prober_stats(fx->p, pv[0].id).ttft_probes, 1);

	/* dropped: no cost, no probes */
	assert_int_equal(dt_prober_set_providers(fx->p, &pv[1], 1), 0);
	assert_int_equal(dt_prober_stats(fx->p, pv[0].id).ttft_probes, 0);
	assert_int_equal(dt_prober_stats(fx->p, pv[0].id).sent, 0);
	set_fault("{\"mode\":\"ok\"}");
	assert_int_equal(run_reports(fx, pv[1].id, 2, WAIT_MS), 2);
	assert_string_equal(last_request("authorization", got, sizeof(got)), "Bearer k2");

	/* ids are checked */
	pv[1].id = 10;
	assert_int_equal(dt_prober_set_providers(fx->p, pv, 2), -EINVAL);
	pv[1].id = DT_MAX_PROVIDERS;
	assert_int_equal(dt_prober_set_providers(fx->p, &pv[1], 1), -EINVAL);
}

/* Free in the middle of a probe: cancelled, no report, nothing left. */
static void test_free_cancels(void **state)
{
	struct fixture *fx = *state;
	char url[128];
	struct dt_probe_provider pv = { .id = 12, .name = "x", .family = DT_FAMILY_OPENAI,
					.base_url = url, .key = KEY_OAI };

	base_url(url, sizeof(url), world.port, "/v1");
	set_fault("{\"mode\":\"hang\"}");
	probe_one(fx, &pv);
	run_until_requests(fx, 1);
	dt_prober_free(fx->p);
	fx->p = NULL;
	run_for(fx, 50);
	assert_int_equal(dt_health_probe_due(fx->h, pv.id), 0);
}

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, BODY_MAX);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, BODY_MAX - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Last: every line logged by the tests above. */
static void test_keys_never_logged(void **state)
{
	char *log = read_file(world_path("agent.log"));
	static const char *const keys[] = { KEY_OAI, KEY_ANT, KEY_GEM, "sk-probe-new-key-42" };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_null(strstr(log, keys[i]));
	/* the refused key of test_refusals_are_reachable, once for 3 probes */
	assert_int_equal(count(log, "provider refused: probe: its key was refused (401)"), 1);
	assert_int_equal(count(log, "keyless"), 0);
	/* failures were logged (debug), without keys */
	assert_true(count(log, "probe failed") > 0);
	free(log);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(test_list_probe_per_family),
		T(test_probes_repeat_on_schedule),
		T(test_server_error_ejects_then_recovers),
		T(test_connect_refused),
		T(test_hang_times_out),
		T(test_refusals_are_reachable),
		T(test_keyless_provider),
		T(test_ttft_probe_per_family),
		T(test_ttft_reported_at_first_token),
		T(test_ttft_hourly_cap),
		T(test_reload),
		T(test_free_cancels),
		cmocka_unit_test(test_keys_never_logged),
	};
#undef T

	return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
