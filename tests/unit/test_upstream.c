// SPDX-License-Identifier: MIT
/* The upstream client against a real fakellm over TLS on 127.0.0.1: answers,
 * streaming, pooling, faults mapped to errors, pause/resume, cancel, SO_MARK. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "upstream.h"

#define MARK        0x44540001u
#define WAIT_MS     5000
#define BODY_MAX    (64 * 1024)

#define CHAT_BODY \
	"{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello pause test\"}]"
#define ANSWER \
	"You said: hello pause test This is a deterministic answer from fakellm. This is a deterministic"

/* ---- the world: certificates and one fakellm for the whole group ---------- */

static struct {
	char dir[64];
	pid_t pid;
	unsigned tls_port, admin_port;
} world;

static char *world_path(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", world.dir, name);
	return buf[i];
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A CA when issuer is NULL (self-signed), else a server leaf for 127.0.0.1. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX ctx;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (issuer) {
		add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE");
		add_ext(x, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
		add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
	} else {
		add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	}
	assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	if (x)
		assert_int_equal(PEM_write_X509(fp, x), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
}

/* ca.pem signs server.pem/server.key; other-ca.pem signs nothing we serve. */
static void make_certificates(void)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	EVP_PKEY *other_key = EVP_EC_gen("P-256");
	X509 *ca, *leaf, *other;

	assert_non_null(ca_key);
	assert_non_null(key);
	assert_non_null(other_key);
	ca = make_cert(ca_key, "detour test CA", NULL, NULL);
	leaf = make_cert(key, "127.0.0.1", ca, ca_key);
	other = make_cert(other_key, "detour other CA", NULL, NULL);
	write_pem(world_path("ca.pem"), ca, NULL);
	write_pem(world_path("other-ca.pem"), other, NULL);
	write_pem(world_path("server.pem"), leaf, NULL);
	write_pem(world_path("server.key"), NULL, key);
	X509_free(ca);
	X509_free(leaf);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
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
	strcpy(world.dir, "/tmp/dt-upstream-XXXXXX");
	assert_non_null(mkdtemp(world.dir));
	make_certificates();
	world.pid = fakellm_spawn(world_path("fakellm.log"), world_path("fakellm.pid"),
				  (const char *const[]){ "--tls-cert", world_path("server.pem"),
							 "--tls-key", world_path("server.key"),
							 "--name", "upstream-test", NULL });
	fakellm_wait_ready(world_path("fakellm.log"), world_path("fakellm.pid"), &world.tls_port,
			   &world.admin_port);
	return 0;
}

static int world_teardown(void **state)
{
	static const char *const files[] = {
		"ca.pem", "other-ca.pem", "server.pem", "server.key", "fakellm.log", "fakellm.pid",
		"hosts",
	};

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


/* ---- one fetch's observations ---------------------------------------------- */

struct result {
	struct event_base *base;
	struct dt_fetch *f;
	int status, heads, datas, dones;
	enum dt_fetch_error err;
	char errmsg[CURL_ERROR_SIZE];
	char content_type[64];
	bool reused;
	char body[BODY_MAX];
	size_t body_len;
	/* behaviour */
	bool cancel_in_head;
	bool pause_in_first_data;
	bool pause_from_loop;          /* pause from a timer, outside libcurl */
	struct event *pause_timer, *resume_timer;
	bool paused;
	int datas_while_paused;
	int resumes, resumes_before_done;
	struct result *start_in_head;  /* a second fetch started from head() */
	struct dt_upstream *u;
};

static void resume_later(evutil_socket_t fd, short what, void *arg)
{
	struct result *r = arg;

	(void)fd;
	(void)what;
	r->paused = false;
	r->resumes++;
	dt_fetch_pause(r->f, false);
}

/* Pause now, resume 200 ms later from the loop. */
static void pause_for_200ms(struct result *r)
{
	struct timeval later = { .tv_usec = 200 * 1000 };

	r->paused = true;
	dt_fetch_pause(r->f, true);
	r->resume_timer = evtimer_new(r->base, resume_later, r);
	evtimer_add(r->resume_timer, &later);
}

static void pause_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pause_for_200ms(arg);
}

static const struct dt_fetch_ops record_ops;

static void start_chat(struct result *r, struct dt_upstream *u, unsigned port, bool stream,
		       unsigned total_timeout_ms);

static void on_head(void *ctx, struct dt_fetch *f, int status, const struct dt_headers *h)
{
	struct result *r = ctx;
	const char *ct = dt_headers_get(h, "content-type");

	assert_ptr_equal(f, r->f);
	r->heads++;
	r->status = status;
	snprintf(r->content_type, sizeof(r->content_type), "%s", ct ? ct : "");
	r->reused = dt_fetch_reused_connection(f);
	if (r->cancel_in_head)
		dt_fetch_cancel(f);
	if (r->start_in_head)
		start_chat(r->start_in_head, r->u, world.tls_port, false, 0);
}

static void on_data(void *ctx, struct dt_fetch *f, const void *buf, size_t len)
{
	struct result *r = ctx;
	struct timeval now = { 0 };

	assert_ptr_equal(f, r->f);
	r->datas++;
	if (r->paused)
		r->datas_while_paused++;
	assert_true(r->body_len + len < sizeof(r->body));
	memcpy(r->body + r->body_len, buf, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	if (r->datas > 1)
		return;
	if (r->pause_in_first_data)
		pause_for_200ms(r);
	if (r->pause_from_loop) {
		r->pause_timer = evtimer_new(r->base, pause_now, r);
		evtimer_add(r->pause_timer, &now);
	}
}

static void on_done(void *ctx, struct dt_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	struct result *r = ctx;

	assert_ptr_equal(f, r->f);
	r->dones++;
	r->resumes_before_done = r->resumes;
	r->err = e;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg);
}

static const struct dt_fetch_ops record_ops = {
	.head = on_head, .data = on_data, .done = on_done,
};

/* A chat completion to https://HOST:PORT. */
static void start_chat_at(struct result *r, struct dt_upstream *u, const char *host, unsigned port,
			  bool stream, unsigned total_timeout_ms)
{
	struct dt_headers h = {0};
	char url[128], err[256];
	const char *body = stream ? CHAT_BODY ",\"stream\":true}" : CHAT_BODY "}";
	struct dt_fetch_req req = {
		.method = "POST", .url = url, .headers = &h,
		.body = body, .body_len = strlen(body), .total_timeout_ms = total_timeout_ms,
	};

	snprintf(url, sizeof(url), "https://%s:%u/v1/chat/completions", host, port);
	dt_headers_add_str(&h, "Content-Type", "application/json");
	dt_headers_add_str(&h, "Authorization", "Bearer sk-upstream-test");
	/* curl's to compute: a wrong one here would stall or break the request */
	dt_headers_add_str(&h, "Content-Length", "99999");
	dt_headers_add_str(&h, "Host", "wrong.example");
	dt_headers_add_str(&h, "Connection", "close");
	r->f = dt_fetch_start(u, &req, &record_ops, r, err, sizeof(err));
	dt_headers_free(&h);
	assert_non_null(r->f);
}

static void start_chat(struct result *r, struct dt_upstream *u, unsigned port, bool stream,
		       unsigned total_timeout_ms)
{
	start_chat_at(r, u, "127.0.0.1", port, stream, total_timeout_ms);
}

/* ---- loop helpers ------------------------------------------------------------- */

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until *counter reaches want or ms pass. */
static void run_until(struct event_base *base, const int *counter, int want, int ms)
{
	struct event *guard = evtimer_new(base, on_guard, NULL);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(guard, &tv);
	while (*counter < want && evtimer_pending(guard, NULL))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
}

static struct dt_upstream *new_upstream(struct event_base *base, uint32_t mark, const char *ca)
{
	struct dt_upstream_opts o = {
		.mark = mark, .ca_bundle = world_path(ca), .connect_timeout_ms = 2000,
		.max_host_connections = 8,
	};
	char err[256];
	struct dt_upstream *u = dt_upstream_new(base, &o, err, sizeof(err));

	assert_non_null(u);
	return u;
}

struct fixture {
	struct event_base *base;
	struct dt_upstream *u;
	struct result r, r2;
};

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->base = event_base_new();
	fx->r.base = fx->r2.base = fx->base;
	fx->u = new_upstream(fx->base, 0, "ca.pem");
	fx->r.u = fx->r2.u = fx->u;
	set_fault("{\"mode\":\"ok\"}");
	*state = fx;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	dt_upstream_free(fx->u);
	if (fx->r.pause_timer)
		event_free(fx->r.pause_timer);
	if (fx->r.resume_timer)
		event_free(fx->r.resume_timer);
	event_base_free(fx->base);
	free(fx);
	set_fault("{\"mode\":\"ok\"}");
	return 0;
}

/* The text of an OpenAI stream: every "content" value, in order. */
static void stream_text(const char *body, char *out, size_t outlen)
{
	static const char key[] = "\"content\":\"";
	size_t n = 0;

	for (const char *p = strstr(body, key); p; p = strstr(p, key)) {
		const char *end;

		p += sizeof(key) - 1;
		end = strchr(p, '"');
		assert_non_null(end);
		assert_true(n + (size_t)(end - p) < outlen);
		memcpy(out + n, p, (size_t)(end - p));
		n += (size_t)(end - p);
	}
	out[n] = '\0';
}

static void assert_ok(const struct result *r, int status)
{
	assert_int_equal(r->dones, 1);
	assert_int_equal(r->err, DT_FETCH_OK);
	assert_string_equal(r->errmsg, "");
	assert_int_equal(r->heads, 1);
	assert_int_equal(r->status, status);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_post_completion(void **state)
{
	struct fixture *fx = *state;
	static char stats[BODY_MAX];

	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_string_equal(fx->r.content_type, "application/json");
	assert_true(fx->r.datas >= 1);
	assert_non_null(strstr(fx->r.body, "\"object\":\"chat.completion\""));
	assert_non_null(strstr(fx->r.body, "You said: hello pause test"));
	assert_false(fx->r.reused);
	/* the caller's credential went through as given */
	admin("/stats", NULL, stats);
	assert_non_null(strstr(stats, "\"authorization\": \"Bearer sk-upstream-test\"") ?:
			strstr(stats, "\"authorization\":\"Bearer sk-upstream-test\""));
}

static void test_sse_stream(void **state)
{
	struct fixture *fx = *state;
	char text[1024];

	/* a token every 5 ms: the events cannot all arrive in one read */
	set_fault("{\"mode\":\"slow\",\"ttft_ms\":0,\"token_ms\":5}");
	start_chat(&fx->r, fx->u, world.tls_port, true, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_int_equal(strncmp(fx->r.content_type, "text/event-stream", 17), 0);
	assert_true(fx->r.datas >= 3);
	stream_text(fx->r.body, text, sizeof(text));
	assert_string_equal(text, ANSWER);
	assert_true(fx->r.body_len > 14);
	assert_string_equal(fx->r.body + fx->r.body_len - 14, "data: [DONE]\n\n");
}

static void test_connection_reused(void **state)
{
	struct fixture *fx = *state;

	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_false(fx->r.reused);
	start_chat(&fx->r2, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r2.dones, 1, WAIT_MS);
	assert_ok(&fx->r2, 200);
	assert_true(fx->r2.reused);
}

static void test_status_503(void **state)
{
	struct fixture *fx = *state;

	set_fault("{\"mode\":\"status\",\"status\":503}");
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 503);
	assert_non_null(strstr(fx->r.body, "server_error"));
}

static void expect_error(struct fixture *fx, unsigned port, unsigned total_timeout_ms,
			 enum dt_fetch_error want)
{
	start_chat(&fx->r, fx->u, port, false, total_timeout_ms);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_int_equal(fx->r.dones, 1);
	assert_string_equal(dt_fetch_error_str(fx->r.err), dt_fetch_error_str(want));
	assert_true(fx->r.errmsg[0] != '\0');
}

static void test_reset(void **state)
{
	set_fault("{\"mode\":\"reset\"}");
	expect_error(*state, world.tls_port, 0, DT_FETCH_RESET);
}

static void test_tls_failure(void **state)
{
	set_fault("{\"mode\":\"tls_fail\"}");
	expect_error(*state, world.tls_port, 0, DT_FETCH_TLS);
}

static void test_wrong_ca(void **state)
{
	struct fixture *fx = *state;

	dt_upstream_free(fx->u);
	fx->u = new_upstream(fx->base, 0, "other-ca.pem");
	expect_error(fx, world.tls_port, 0, DT_FETCH_TLS);
}

/* A port nobody listens on: bound, then closed. */
static unsigned closed_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void test_refused(void **state)
{
	expect_error(*state, closed_port(), 0, DT_FETCH_CONNECT);
}

/* NAME resolves to every address in ADDRS, in this process only: a private
 * mount namespace, a hosts file bound over /etc/hosts (the name is found
 * there, so no resolver is asked). False without the privilege. */
static bool private_hosts(const char *name, const char *const *addrs)
{
	FILE *fp;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return false;
	fp = fopen(world_path("hosts"), "w");
	assert_non_null(fp);
	for (; *addrs; addrs++)
		fprintf(fp, "%s %s\n", *addrs, name);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(mount(world_path("hosts"), "/etc/hosts", NULL, MS_BIND, NULL), 0);
	return true;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * A provider whose every address refuses (the e2e bed's names have two per
 * family) fails as a connect failure, from the refusals: libcurl 7.88 left
 * a host's next address to the failed attempt's timeout, half of what was
 * left of the connect timeout (upstream.c, next_address), and a caller's
 * first-byte deadline struck first. With a minute to connect, that wait
 * would outlast WAIT_MS.
 */
static void test_refused_every_address(void **state)
{
	static const char *const addrs[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "::1", NULL };
	struct fixture *fx = *state;
	struct dt_upstream_opts o = { .ca_bundle = world_path("ca.pem"), .connect_timeout_ms = 60000 };
	struct timespec t0;

	if (!private_hosts("refusing.test", addrs))
		skip();         /* needs CAP_SYS_ADMIN */
	assert_int_equal(dt_upstream_set_opts(fx->u, &o), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	start_chat_at(&fx->r, fx->u, "refusing.test", closed_port(), false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	print_message("4 refusing addresses: %s after %.1f ms\n",
		      fx->r.dones ? "failed" : "still connecting", ms_since(&t0));
	umount("/etc/hosts");
	assert_int_equal(fx->r.dones, 1);
	assert_string_equal(dt_fetch_error_str(fx->r.err), dt_fetch_error_str(DT_FETCH_CONNECT));
	/* ended by the refusals, not by a timeout */
	assert_non_null(strstr(fx->r.errmsg, curl_easy_strerror(CURLE_COULDNT_CONNECT)));
}

static void test_hang_total_timeout(void **state)
{
	struct fixture *fx = *state;

	set_fault("{\"mode\":\"hang\"}");
	expect_error(fx, world.tls_port, 300, DT_FETCH_TIMEOUT);
	assert_int_equal(fx->r.heads, 0);
}

/* The stream arrives whole and in order, nothing while paused. */
static void run_paused_stream(struct fixture *fx)
{
	char text[1024];

	/* the whole stream is sent within the pause: libcurl holds it */
	set_fault("{\"mode\":\"slow\",\"ttft_ms\":0,\"token_ms\":5}");
	start_chat(&fx->r, fx->u, world.tls_port, true, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_int_equal(fx->r.datas_while_paused, 0);
	assert_int_equal(fx->r.resumes_before_done, 1);
	assert_true(fx->r.datas >= 2);
	stream_text(fx->r.body, text, sizeof(text));
	assert_string_equal(text, ANSWER);
	assert_string_equal(fx->r.body + fx->r.body_len - 14, "data: [DONE]\n\n");
}

static void test_pause_in_data(void **state)
{
	struct fixture *fx = *state;

	fx->r.pause_in_first_data = true;
	run_paused_stream(fx);
}

static void test_pause_from_loop(void **state)
{
	struct fixture *fx = *state;

	fx->r.pause_from_loop = true;
	run_paused_stream(fx);
}

static void test_cancel_from_loop(void **state)
{
	struct fixture *fx = *state;
	int never = 0;

	/* cancelled while fakellm holds the answer back */
	set_fault("{\"mode\":\"slow\",\"ttft_ms\":200,\"token_ms\":0}");
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &never, 1, 20);
	dt_fetch_cancel(fx->r.f);
	run_until(fx->base, &never, 1, 400);
	assert_int_equal(fx->r.heads + fx->r.datas + fx->r.dones, 0);
}

static void test_free_with_fetch_in_flight(void **state)
{
	struct fixture *fx = *state;
	int never = 0;

	set_fault("{\"mode\":\"hang\"}");
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &never, 1, 100);
	dt_upstream_free(fx->u);
	fx->u = NULL;
	run_until(fx->base, &never, 1, 50);
	assert_int_equal(fx->r.heads + fx->r.datas + fx->r.dones, 0);
}

static void test_cancel_in_head(void **state)
{
	struct fixture *fx = *state;
	int never = 0;

	set_fault("{\"mode\":\"slow\",\"ttft_ms\":0,\"token_ms\":5}");
	fx->r.cancel_in_head = true;
	start_chat(&fx->r, fx->u, world.tls_port, true, 0);
	run_until(fx->base, &fx->r.heads, 1, WAIT_MS);
	assert_int_equal(fx->r.heads, 1);
	/* the rest of the stream would have come by now */
	run_until(fx->base, &never, 1, 300);
	assert_int_equal(fx->r.datas, 0);
	assert_int_equal(fx->r.dones, 0);
}

static void test_start_in_head(void **state)
{
	struct fixture *fx = *state;

	fx->r.start_in_head = &fx->r2;
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	run_until(fx->base, &fx->r2.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_ok(&fx->r2, 200);
	assert_non_null(strstr(fx->r2.body, "chat.completion"));
}

/* The marks of this process's sockets connected to 127.0.0.1:port. */
static int socket_marks(unsigned port, uint32_t *marks, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) && n < max) {
		int fd = atoi(de->d_name);
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer), mlen = sizeof(marks[n]);
		struct stat st;

		if (de->d_name[0] == '.' || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		if (getpeername(fd, (struct sockaddr *)&peer, &len) || peer.sin_family != AF_INET ||
		    ntohs(peer.sin_port) != port)
			continue;
		assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_MARK, &marks[n], &mlen), 0);
		n++;
	}
	closedir(d);
	return n;
}

static void test_so_mark(void **state)
{
	struct fixture *fx = *state;
	uint32_t marks[8];
	int n;

	dt_upstream_free(fx->u);
	fx->u = new_upstream(fx->base, MARK, "ca.pem");
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	if (geteuid() != 0) {
		/* SO_MARK needs CAP_NET_ADMIN: without it, no connection at all */
		assert_int_equal(fx->r.err, DT_FETCH_CONNECT);
		return;
	}
	assert_ok(&fx->r, 200);
	/* the connection waits in the pool: its socket carries the mark */
	n = socket_marks(world.tls_port, marks, 8);
	assert_true(n >= 1);
	for (int i = 0; i < n; i++)
		assert_int_equal(marks[i], MARK);
}

static void test_error_strings(void **state)
{
	(void)state;
	assert_string_equal(dt_fetch_error_str(DT_FETCH_OK), "ok");
	assert_string_equal(dt_fetch_error_str(DT_FETCH_TLS), "tls");
	assert_string_equal(dt_fetch_error_str(DT_FETCH_INTERNAL), "internal");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
		T(test_post_completion),
		T(test_sse_stream),
		T(test_connection_reused),
		T(test_status_503),
		T(test_reset),
		T(test_tls_failure),
		T(test_wrong_ca),
		T(test_refused),
		T(test_refused_every_address),
		T(test_hang_total_timeout),
		T(test_pause_in_data),
		T(test_pause_from_loop),
		T(test_cancel_from_loop),
		T(test_free_with_fetch_in_flight),
		T(test_cancel_in_head),
		T(test_start_in_head),
		T(test_so_mark),
		cmocka_unit_test(test_error_strings),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
