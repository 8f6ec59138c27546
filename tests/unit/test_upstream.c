// SPDX-License-Identifier: MIT
/* The upstream client against a real fakellm over TLS on 127.0.0.1: answers,
 * streaming, pooling, faults mapped to errors, pause/resume, cancel, SO_MARK;
 * each through libcurl (a cold endpoint) and through the own HTTP/1.1 client
 * (an endpoint libcurl has taught). A scripted plain-HTTP server in the test
 * gives the own client's edge cases: keep-alive, pool limits, a pooled
 * connection the server closed, chunked and close-delimited bodies,
 * malformed answers, the request on the wire. */
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
#include "upstream_int.h"

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
	const char *want_transport;    /* NULL: either */
	char transport[16];
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
	snprintf(r->transport, sizeof(r->transport), "%s", dt_fetch_transport(f));
	if (r->want_transport)
		assert_string_equal(r->transport, r->want_transport);
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
	bool warm;                     /* the own client serves the fakellm endpoint */
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

/* One answer through libcurl teaches the own client the endpoint: the
 * test's fetches then go through it. */
static void warm_up(struct fixture *fx)
{
	struct result *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->base = fx->base;
	w->want_transport = "libcurl";
	start_chat(w, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &w->dones, 1, WAIT_MS);
	assert_int_equal(w->err, DT_FETCH_OK);
	free(w);
	fx->warm = true;
	fx->r.want_transport = fx->r2.want_transport = "http/1.1";
}

static int fixture_setup_warm(void **state)
{
	fixture_setup(state);
	warm_up(*state);
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

/* libcurl's first answer teaches the own client, whose first request makes
 * a connection of its own and whose next one reuses it. */
static void test_connection_reused(void **state)
{
	struct fixture *fx = *state;
	struct result r3 = { .base = fx->base };

	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	assert_false(fx->r.reused);
	assert_string_equal(fx->r.transport, "libcurl");
	start_chat(&fx->r2, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r2.dones, 1, WAIT_MS);
	assert_ok(&fx->r2, 200);
	assert_false(fx->r2.reused);
	assert_string_equal(fx->r2.transport, "http/1.1");
	start_chat(&r3, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &r3.dones, 1, WAIT_MS);
	assert_ok(&r3, 200);
	assert_true(r3.reused);
	assert_string_equal(r3.transport, "http/1.1");
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

/* ---- the own client: certificates and faults on a taught endpoint ------------- */

/* Its sockets carry the mark too: libcurl's pooled one and its own. */
static void test_h1_so_mark(void **state)
{
	struct fixture *fx = *state;
	uint32_t marks[8];
	int n;

	if (geteuid() != 0)
		skip();         /* SO_MARK needs CAP_NET_ADMIN */
	dt_upstream_free(fx->u);
	fx->u = new_upstream(fx->base, MARK, "ca.pem");
	warm_up(fx);
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_ok(&fx->r, 200);
	n = socket_marks(world.tls_port, marks, 8);
	assert_true(n >= 2);
	for (int i = 0; i < n; i++)
		assert_int_equal(marks[i], MARK);
}

/* A new trust (a reload) closes the idle connections and forgets the TLS
 * sessions: the next connection is verified against it, and fails. */
static void test_h1_trust_change(void **state)
{
	struct fixture *fx = *state;
	struct dt_upstream_opts o = { .ca_bundle = world_path("other-ca.pem"),
				      .connect_timeout_ms = 2000 };

	start_chat(&fx->r2, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r2.dones, 1, WAIT_MS);
	assert_ok(&fx->r2, 200);
	assert_int_equal(dt_upstream_set_opts(fx->u, &o), 0);
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_int_equal(fx->r.err, DT_FETCH_TLS);
	assert_non_null(strstr(fx->r.errmsg, "certificate verify failed"));
}

/* The learned address refuses: a connect failure, and the next request goes
 * through libcurl, which resolves and tries every address again. */
static void test_h1_refused_then_libcurl(void **state)
{
	struct fixture *fx = *state;

	set_fault("{\"mode\":\"refuse\"}");
	start_chat(&fx->r, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r.dones, 1, WAIT_MS);
	assert_int_equal(fx->r.dones, 1);
	assert_int_equal(fx->r.err, DT_FETCH_CONNECT);
	set_fault("{\"mode\":\"ok\"}");
	fx->r2.want_transport = "libcurl";
	start_chat(&fx->r2, fx->u, world.tls_port, false, 0);
	run_until(fx->base, &fx->r2.dones, 1, WAIT_MS);
	assert_ok(&fx->r2, 200);
}

/* ---- the own client against a scripted plain-HTTP server ------------------------ */

#define SCRIPT_MAX 8

/* Answers the n-th request it gets with answer[n] (a default 200 when
 * NULL), then closes the connection when close_after[n]. */
static struct script {
	int listen_fd;
	unsigned port;
	struct event *accept_ev;
	int fds[32];
	struct event *evs[32];
	char in[32][4096];
	size_t in_len[32];
	int accepted, requests;
	const char *answer[SCRIPT_MAX];
	bool close_after[SCRIPT_MAX];
	char last_request[4096];
} srv;

static const char ok_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static void script_close(int i)
{
	event_free(srv.evs[i]);
	close(srv.fds[i]);
	srv.fds[i] = -1;
	srv.evs[i] = NULL;
}

/* A whole request: its head, then Content-Length bytes. */
static size_t request_end(const char *in, size_t len)
{
	const char *end = memmem(in, len, "\r\n\r\n", 4);
	const char *cl;
	size_t head, body = 0;

	if (!end)
		return 0;
	head = (size_t)(end - in) + 4;
	cl = memmem(in, head, "Content-Length: ", 16);
	if (cl)
		body = strtoul(cl + 16, NULL, 10);
	return len >= head + body ? head + body : 0;
}

static void script_read(evutil_socket_t fd, short what, void *arg)
{
	int i = (int)(intptr_t)arg;
	ssize_t n = read(fd, srv.in[i] + srv.in_len[i], sizeof(srv.in[i]) - srv.in_len[i] - 1);
	size_t end;

	(void)what;
	if (n <= 0) {
		script_close(i);
		return;
	}
	srv.in_len[i] += (size_t)n;
	while ((end = request_end(srv.in[i], srv.in_len[i]))) {
		int k = srv.requests++ % SCRIPT_MAX;
		const char *a = srv.answer[k] ? srv.answer[k] : ok_answer;

		memcpy(srv.last_request, srv.in[i], end);
		srv.last_request[end] = '\0';
		memmove(srv.in[i], srv.in[i] + end, srv.in_len[i] - end);
		srv.in_len[i] -= end;
		assert_int_equal(write(fd, a, strlen(a)), (ssize_t)strlen(a));
		if (srv.close_after[k]) {
			script_close(i);
			return;
		}
	}
}

static void script_accept(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;
	int c = accept(fd, NULL, NULL);

	(void)what;
	assert_true(c >= 0);
	assert_true(srv.accepted < 32);
	srv.fds[srv.accepted] = c;
	srv.evs[srv.accepted] = event_new(base, c, EV_READ | EV_PERSIST, script_read,
					  (void *)(intptr_t)srv.accepted);
	event_add(srv.evs[srv.accepted], NULL);
	srv.accepted++;
}

/* The server side closes every connection it holds. */
static void script_close_all(void)
{
	for (int i = 0; i < srv.accepted; i++)
		if (srv.fds[i] >= 0)
			script_close(i);
}

static void script_start(struct event_base *base)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	memset(&srv, 0, sizeof(srv));
	srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(srv.listen_fd, 16), 0);
	assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&sin, &len), 0);
	srv.port = ntohs(sin.sin_port);
	srv.accept_ev = event_new(base, srv.listen_fd, EV_READ | EV_PERSIST, script_accept, base);
	event_add(srv.accept_ev, NULL);
}

static void script_stop(void)
{
	script_close_all();
	event_free(srv.accept_ev);
	close(srv.listen_fd);
}

static void start_plain(struct result *r, struct dt_upstream *u, const char *method,
			const char *body)
{
	struct dt_headers h = {0};
	char url[128], err[256];
	struct dt_fetch_req req = {
		.method = method, .url = url, .headers = &h,
		.body = body, .body_len = body ? strlen(body) : 0,
	};

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/models?x=1", srv.port);
	dt_headers_add_str(&h, "Authorization", "Bearer sk-plain");
	dt_headers_add_str(&h, "X-Empty", "");
	dt_headers_add_str(&h, "Connection", "close");
	dt_headers_add_str(&h, "Transfer-Encoding", "chunked");
	r->f = dt_fetch_start(u, &req, &record_ops, r, err, sizeof(err));
	dt_headers_free(&h);
	assert_non_null(r->f);
}

/* One request to the scripted server, run to its end. */
static void plain_fetch(struct fixture *fx, struct result *r, const char *transport)
{
	memset(r, 0, sizeof(*r));
	r->base = fx->base;
	r->want_transport = transport;
	start_plain(r, fx->u, "POST", "{\"q\":1}");
	run_until(fx->base, &r->dones, 1, WAIT_MS);
	assert_int_equal(r->dones, 1);
}

static int script_setup(void **state)
{
	struct fixture *fx;

	fixture_setup(state);
	fx = *state;
	script_start(fx->base);
	plain_fetch(fx, &fx->r, "libcurl");     /* teaches the own client */
	assert_ok(&fx->r, 200);
	return 0;
}

static int script_teardown(void **state)
{
	script_stop();
	return fixture_teardown(state);
}

/* Keep-alive: one connection of its own carries every request, framed as
 * given (Host, Content-Length; the caller's hop fields dropped). */
static void test_h1_keep_alive(void **state)
{
	struct fixture *fx = *state;
	char host[64];

	for (int i = 0; i < 3; i++) {
		plain_fetch(fx, &fx->r, "http/1.1");
		assert_ok(&fx->r, 200);
		assert_string_equal(fx->r.body, "ok");
		assert_true(fx->r.reused == (i > 0));
	}
	assert_int_equal(srv.accepted, 2);      /* libcurl's, and its own */
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", srv.port);
	assert_ptr_equal(strstr(srv.last_request, "POST /v1/models?x=1 HTTP/1.1\r\n"), srv.last_request);
	assert_non_null(strstr(srv.last_request, host));
	assert_non_null(strstr(srv.last_request, "\r\nAuthorization: Bearer sk-plain\r\n"));
	assert_non_null(strstr(srv.last_request, "\r\nX-Empty: \r\n"));
	assert_non_null(strstr(srv.last_request, "\r\nContent-Length: 7\r\n\r\n{\"q\":1}"));
	assert_null(strstr(srv.last_request, "Connection"));
	assert_null(strstr(srv.last_request, "Transfer-Encoding"));
	assert_null(strcasestr(srv.last_request, "Expect"));
}

/* max_host_connections bounds the connections: the rest wait their turn. */
static void test_h1_pool_limit(void **state)
{
	struct fixture *fx = *state;
	struct dt_upstream_opts o = { .ca_bundle = world_path("ca.pem"), .connect_timeout_ms = 2000,
				      .max_host_connections = 2 };
	struct result r[5];
	int done = 0;

	assert_int_equal(dt_upstream_set_opts(fx->u, &o), 0);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 5; i++) {
		r[i].base = fx->base;
		r[i].want_transport = "http/1.1";
		start_plain(&r[i], fx->u, "GET", NULL);
	}
	while (done < 5) {
		int before = done;

		run_until(fx->base, &r[done].dones, 1, WAIT_MS);
		for (done = 0; done < 5 && r[done].dones; done++)
			;
		assert_true(done > before);
	}
	for (int i = 0; i < 5; i++)
		assert_ok(&r[i], 200);
	assert_int_equal(srv.accepted, 1 + 2);
}

/* The server closed a pooled connection: a request that met it and got no
 * byte back goes again on a new one. */
static void test_h1_stale_connection_retried(void **state)
{
	struct fixture *fx = *state;

	plain_fetch(fx, &fx->r, "http/1.1");
	assert_ok(&fx->r, 200);
	script_close_all();     /* the loop has not seen it yet */
	plain_fetch(fx, &fx->r2, "http/1.1");
	assert_ok(&fx->r2, 200);
	assert_false(fx->r2.reused);
	assert_int_equal(srv.accepted, 3);
}

/* ... but never once an answer has begun. */
static void test_h1_no_retry_after_answer(void **state)
{
	struct fixture *fx = *state;

	plain_fetch(fx, &fx->r, "http/1.1");
	srv.answer[2] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	srv.close_after[2] = true;
	plain_fetch(fx, &fx->r2, "http/1.1");
	assert_int_equal(fx->r2.err, DT_FETCH_RESET);
	assert_int_equal(fx->r2.heads, 1);
	assert_string_equal(fx->r2.body, "abc");
	assert_int_equal(srv.requests, 3);
}

/* Chunked, interim 1xx, close-delimited: the body arrives de-framed. */
static void test_h1_framings(void **state)
{
	struct fixture *fx = *state;

	srv.answer[1] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	srv.answer[2] = "HTTP/1.1 100 Continue\r\n\r\n"
			"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
	srv.answer[3] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
	srv.close_after[3] = true;
	plain_fetch(fx, &fx->r, "http/1.1");
	assert_ok(&fx->r, 200);
	assert_string_equal(fx->r.body, "hello world");
	plain_fetch(fx, &fx->r, "http/1.1");
	assert_ok(&fx->r, 201);
	assert_true(fx->r.reused);              /* after a chunked answer */
	assert_string_equal(fx->r.content_type, "text/plain");
	assert_string_equal(fx->r.body, "hi");
	plain_fetch(fx, &fx->r, "http/1.1");
	assert_ok(&fx->r, 200);
	assert_string_equal(fx->r.body, "until the end");
	plain_fetch(fx, &fx->r, "http/1.1");    /* a new connection, not the closed one */
	assert_ok(&fx->r, 200);
	assert_false(fx->r.reused);
	assert_int_equal(srv.accepted, 3);
}

/* Malformed answers end as protocol errors, with a reason; the connection
 * is not reused. */
static void test_h1_malformed(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 abc OK\r\n\r\n",
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		srv.answer[srv.requests % SCRIPT_MAX] = bad[i];
		plain_fetch(fx, &fx->r, "http/1.1");
		assert_string_equal(dt_fetch_error_str(fx->r.err), "protocol");
		assert_true(fx->r.errmsg[0] != '\0');
	}
	memset(srv.answer, 0, sizeof(srv.answer));
	plain_fetch(fx, &fx->r, "http/1.1");
	assert_ok(&fx->r, 200);
	assert_false(fx->r.reused);
}

/* A field that would split the request's head is refused at the start. */
static void test_h1_field_with_line_break(void **state)
{
	struct fixture *fx = *state;
	struct dt_headers h = {0};
	char url[128], err[256];
	struct dt_fetch_req req = { .method = "GET", .url = url, .headers = &h };

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/models", srv.port);
	dt_headers_add_str(&h, "X-Injected", "a\r\nEvil: 1");
	assert_null(dt_fetch_start(fx->u, &req, &record_ops, &fx->r2, err, sizeof(err)));
	assert_non_null(strstr(err, "split the head"));
	dt_headers_free(&h);
}

/* URLs to the same scheme and authority, in any case, are one endpoint,
 * its path where the URL's starts; another authority or scheme is
 * another; what the own client cannot serve is none. */
static void test_h1_endpoints(void **state)
{
	static const char *const none[] = {
		"https://api.example.com#frag", "https://user@api.example.com/", "ftp://x/",
		"https://", "https://[::1/",
	};
	struct event_base *base = event_base_new();
	struct dt_upstream_opts o = { .ca_bundle = world_path("ca.pem") };
	struct dt_h1_trust trust = { .file = o.ca_bundle };
	char err[256];
	struct dt_h1 *h = dt_h1_new(base, &o, &trust, err, sizeof(err));
	struct dt_h1_endpoint *ep, *other;
	const char *url, *path = NULL;

	(void)state;
	assert_non_null(h);
	url = "https://api.example.com/v1/chat?x=1";
	ep = dt_h1_endpoint(h, url, &path);
	assert_non_null(ep);
	assert_ptr_equal(path, url + 23);
	url = "HTTPS://API.Example.COM?q";
	assert_ptr_equal(dt_h1_endpoint(h, url, &path), ep);
	assert_string_equal(path, "?q");
	url = "https://api.example.com";
	assert_ptr_equal(dt_h1_endpoint(h, url, &path), ep);
	assert_string_equal(path, "");
	other = dt_h1_endpoint(h, "https://api.example.com:443/v1", &path);
	assert_non_null(other);
	assert_ptr_not_equal(other, ep);
	assert_string_equal(path, "/v1");
	assert_ptr_equal(dt_h1_endpoint(h, "https://API.example.com:443", &path), other);
	other = dt_h1_endpoint(h, "http://api.example.com/v1", &path);
	assert_non_null(other);
	assert_ptr_not_equal(other, ep);
	other = dt_h1_endpoint(h, "https://api.example.com.evil/v1", &path);
	assert_non_null(other);
	assert_ptr_not_equal(other, ep);
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_null(dt_h1_endpoint(h, none[i], &path));
	dt_h1_free(h);
	event_base_free(base);
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
#define W(fn) { "own client: " #fn, fn, fixture_setup_warm, fixture_teardown, NULL }
#define S(fn) cmocka_unit_test_setup_teardown(fn, script_setup, script_teardown)
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
		/* the same through the own client, on a taught endpoint */
		W(test_post_completion),
		W(test_sse_stream),
		W(test_status_503),
		W(test_reset),
		W(test_tls_failure),
		W(test_hang_total_timeout),
		W(test_pause_in_data),
		W(test_pause_from_loop),
		W(test_cancel_from_loop),
		W(test_free_with_fetch_in_flight),
		W(test_cancel_in_head),
		W(test_start_in_head),
		W(test_h1_trust_change),
		W(test_h1_refused_then_libcurl),
		T(test_h1_so_mark),
		S(test_h1_keep_alive),
		S(test_h1_pool_limit),
		S(test_h1_stale_connection_retried),
		S(test_h1_no_retry_after_answer),
		S(test_h1_framings),
		S(test_h1_malformed),
		S(test_h1_field_with_line_break),
		cmocka_unit_test(test_h1_endpoints),
		cmocka_unit_test(test_error_strings),
#undef T
#undef W
#undef S
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
