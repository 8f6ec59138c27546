// SPDX-License-Identifier: MIT
/* The HTTP/1.1 server layer, driven over a socketpair on a real event loop:
 * the test writes requests as a client would and reads what comes back. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "http_server.h"

#define DEADLINE_MS 3000
#define STREAM_CHUNK (64 * 1024)

/* What the test handler does with a request. */
enum mode {
	ECHO,     /* 200 with "<method> <target> <body>|", Content-Length */
	HOLD,     /* keep it, answered later by the test */
	CHUNKED,  /* 200 with the echo in two chunks (no length) */
	STREAM,   /* chunked, written until backlogged; ends from the drain callback */
	ABORT,    /* one chunk, then a broken abort */
	FAIL,     /* dt_http_respond_error 502 */
	FREE,     /* frees the connection from the callback */
};

struct fixture {
	struct event_base *base;
	struct event *client_ev, *tick;
	int client;                /* the test's end: the "application" */
	struct evbuffer *got;      /* everything it has read */
	char *text;                /* the same as a string, see got() */
	size_t text_cap;
	int server;                /* the other end, until start() serves it */
	bool client_eof;
	struct dt_http_limits lim;
	enum dt_family family;
	struct dt_http_conn *conn;
	enum mode mode;
	struct dt_http_request *held[8];
	unsigned n_held, requests, drained;
	bool closed, backlogged;
};

/* ---- the handler ------------------------------------------------------------- */

static void echo_text(const struct dt_http_request *req, char *buf, size_t len)
{
	size_t body_len = evbuffer_get_length(req->body);

	snprintf(buf, len, "%s %s %.*s|", req->method, req->target, (int)body_len,
		 body_len ? (const char *)evbuffer_pullup(req->body, -1) : "");
}

static void answer_echo(struct dt_http_conn *c, struct dt_http_request *req)
{
	struct dt_headers h = { 0 };
	char body[1024];

	echo_text(req, body, sizeof(body));
	/* hop-by-hop fields and framing are the layer's: these must not pass */
	dt_headers_add_str(&h, "Content-Type", "text/plain");
	dt_headers_add_str(&h, "Connection", "X-Private");
	dt_headers_add_str(&h, "X-Private", "1");
	dt_headers_add_str(&h, "Keep-Alive", "timeout=5");
	dt_headers_add_str(&h, "upgrade", "h2c");
	dt_headers_add_str(&h, "Proxy-Authenticate", "Basic");
	dt_headers_add_str(&h, "TE", "trailers");
	dt_headers_add_str(&h, "Transfer-Encoding", "gzip");
	dt_headers_add_str(&h, "Content-Length", "999");
	assert_int_equal(dt_http_respond_head(c, 200, &h, (int64_t)strlen(body)), 0);
	assert_int_equal(dt_http_respond_body(c, body, strlen(body)), 0);
	assert_int_equal(dt_http_respond_end(c), 0);
	dt_headers_free(&h);
	dt_http_request_free(req);
}

static void answer_chunked(struct dt_http_conn *c, struct dt_http_request *req)
{
	char body[1024];
	size_t half;

	echo_text(req, body, sizeof(body));
	half = strlen(body) / 2;
	assert_int_equal(dt_http_respond_head(c, 200, NULL, -1), 0);
	assert_int_equal(dt_http_respond_body(c, body, half), 0);
	assert_int_equal(dt_http_respond_body(c, body + half, strlen(body) - half), 0);
	assert_int_equal(dt_http_respond_end(c), 0);
	dt_http_request_free(req);
}

static void stream_drained(void *arg)
{
	struct fixture *fx = arg;

	fx->drained++;
	assert_false(dt_http_backlogged(fx->conn));
	assert_int_equal(dt_http_respond_body(fx->conn, "done", 4), 0);
	assert_int_equal(dt_http_respond_end(fx->conn), 0);
}

static void answer_stream(struct fixture *fx, struct dt_http_conn *c, struct dt_http_request *req)
{
	static char chunk[STREAM_CHUNK];
	unsigned n = 0;

	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(dt_http_respond_head(c, 200, NULL, -1), 0);
	/* well past the mark: the socket takes a few hundred KiB by itself */
	while (n < 4 || !dt_http_backlogged(c) || n < 12) {
		assert_int_equal(dt_http_respond_body(c, chunk, sizeof(chunk)), 0);
		n++;
	}
	fx->backlogged = true;
	dt_http_set_drain_cb(c, stream_drained, fx);
	dt_http_request_free(req);
}

static void on_request(void *ctx, struct dt_http_conn *c, struct dt_http_request *req)
{
	struct fixture *fx = ctx;

	assert_ptr_equal(c, fx->conn);
	fx->requests++;
	assert_int_equal(dt_http_requests_served(c), fx->requests);
	switch (fx->mode) {
	case ECHO:
		answer_echo(c, req);
		break;
	case HOLD:
		assert_true(fx->n_held < sizeof(fx->held) / sizeof(fx->held[0]));
		fx->held[fx->n_held++] = req;
		break;
	case CHUNKED:
		answer_chunked(c, req);
		break;
	case STREAM:
		answer_stream(fx, c, req);
		break;
	case ABORT:
		assert_int_equal(dt_http_respond_head(c, 200, NULL, -1), 0);
		assert_int_equal(dt_http_respond_body(c, "data: partial\n\n", 15), 0);
		dt_http_respond_abort(c, true);
		dt_http_request_free(req);
		break;
	case FAIL:
		assert_int_equal(dt_http_respond_error(c, 502, "every upstream failed", NULL), 0);
		dt_http_request_free(req);
		break;
	case FREE:
		dt_http_conn_free(c);
		fx->conn = NULL;
		dt_http_request_free(req);
		break;
	}
}

static void on_closed(void *ctx, struct dt_http_conn *c)
{
	struct fixture *fx = ctx;

	assert_ptr_equal(c, fx->conn);
	fx->closed = true;
	fx->conn = NULL;
}

static const struct dt_http_conn_ops ops = { .request = on_request, .closed = on_closed };

/* ---- the client side and the loop -------------------------------------------------- */

static void client_readable(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *fx = arg;
	int n = evbuffer_read(fx->got, fd, -1);

	(void)what;
	if (n <= 0) {
		fx->client_eof = true;
		event_del(fx->client_ev);
	}
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct timeval every = { .tv_usec = 5000 };
	int sv[2];

	assert_non_null(fx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fx->base = event_base_new();
	fx->got = evbuffer_new();
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	fx->client = sv[1];
	fx->client_ev = event_new(fx->base, sv[1], EV_READ | EV_PERSIST, client_readable, fx);
	fx->tick = event_new(fx->base, -1, EV_PERSIST, tick, fx);
	event_add(fx->client_ev, NULL);
	event_add(fx->tick, &every); /* wakes the loop so that conditions are checked */
	fx->lim = (struct dt_http_limits){
		.max_header_bytes = 8192, .max_headers = 50, .max_body_bytes = 1 << 20,
		.idle_timeout_ms = 5000, .request_timeout_ms = 5000,
	};
	fx->family = DT_FAMILY_OPENAI;
	fx->server = sv[0];
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	for (unsigned i = 0; i < fx->n_held; i++)
		dt_http_request_free(fx->held[i]);
	dt_http_conn_free(fx->conn);
	if (fx->server >= 0)
		close(fx->server);
	event_free(fx->client_ev);
	event_free(fx->tick);
	if (fx->client >= 0)
		close(fx->client);
	evbuffer_free(fx->got);
	free(fx->text);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* Serve the server end of the pair with the fixture's limits and family. */
static void start(struct fixture *fx)
{
	fx->conn = dt_http_conn_new(fx->base, fx->server, NULL, fx->family, &fx->lim, &ops, fx);
	fx->server = -1;
	assert_non_null(fx->conn);
}

static void send_bytes(struct fixture *fx, const void *data, size_t len)
{
	assert_int_equal(write(fx->client, data, len), (ssize_t)len);
}

static void send_str(struct fixture *fx, const char *s)
{
	send_bytes(fx, s, strlen(s));
}

/* What the client has read, as a string; it stays put until the loop runs
 * again, so that two results can be compared. */
static const char *got(struct fixture *fx)
{
	size_t n = evbuffer_get_length(fx->got);

	if (n + 1 > fx->text_cap) {
		free(fx->text);
		fx->text_cap = 2 * (n + 1);
		fx->text = malloc(fx->text_cap);
		assert_non_null(fx->text);
	}
	evbuffer_copyout(fx->got, fx->text, n);
	fx->text[n] = '\0';
	return fx->text;
}

typedef bool (*cond_fn)(struct fixture *fx, const void *arg);

static void run_until(struct fixture *fx, cond_fn cond, const void *arg)
{
	struct timeval start, now;

	evutil_gettimeofday(&start, NULL);
	while (!cond(fx, arg)) {
		long ms;

		event_base_loop(fx->base, EVLOOP_ONCE);
		evutil_gettimeofday(&now, NULL);
		ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
		if (ms > DEADLINE_MS)
			fail_msg("condition not met in %d ms; client read: %s", DEADLINE_MS, got(fx));
	}
}

static bool has_text(struct fixture *fx, const void *needle)
{
	return strstr(got(fx), needle) != NULL;
}

static bool is_closed(struct fixture *fx, const void *arg)
{
	(void)arg;
	return fx->closed && fx->client_eof;
}

static bool client_got_eof(struct fixture *fx, const void *arg)
{
	(void)arg;
	return fx->client_eof;
}

static bool has_requests(struct fixture *fx, const void *n)
{
	return fx->requests >= *(const unsigned *)n;
}

static bool elapsed(struct fixture *fx, const void *until)
{
	struct timeval now;

	(void)fx;
	evutil_gettimeofday(&now, NULL);
	return evutil_timercmp(&now, (const struct timeval *)until, >=);
}

static void run_for(struct fixture *fx, unsigned ms)
{
	struct timeval now, d = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 }, until;

	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &d, &until);
	run_until(fx, elapsed, &until);
}

static bool starts_with(struct fixture *fx, const char *prefix)
{
	return strncmp(got(fx), prefix, strlen(prefix)) == 0;
}

static unsigned count_text(struct fixture *fx, const char *needle)
{
	unsigned n = 0;

	for (const char *p = got(fx); (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* A request served with ECHO, and the connection still open. */
static void expect_echo(struct fixture *fx, const char *echo)
{
	run_until(fx, has_text, echo);
	assert_false(fx->closed);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_get_and_post(void **state)
{
	struct fixture *fx = *state;
	const char *r;

	start(fx);
	send_str(fx, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
	expect_echo(fx, "GET /v1/models |");
	r = got(fx);
	assert_true(starts_with(fx, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Length: 16\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain\r\n"));
	/* the handler's hop-by-hop and framing fields did not pass */
	assert_null(strstr(r, "X-Private"));
	assert_null(strstr(r, "Keep-Alive"));
	assert_null(strcasestr(r, "upgrade"));
	assert_null(strstr(r, "Proxy-Authenticate"));
	assert_null(strstr(r, "TE:"));
	assert_null(strstr(r, "Transfer-Encoding"));
	assert_null(strstr(r, "999"));
	assert_null(strstr(r, "Connection"));

	send_str(fx, "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\n"
		     "Content-Length: 11\r\nX-Empty:\r\n\r\nhello world");
	expect_echo(fx, "POST /v1/chat/completions?x=1 hello world|");
	assert_int_equal(fx->requests, 2);
}

/* A relayed head: the fields as given, less the names dropped and those the
 * extra fields set, then the extra fields; the layer's own rules still hold
 * (a field named by Connection goes too). */
static void test_head_with_drop_and_extra(void **state)
{
	struct fixture *fx = *state;
	static const char *const drop[] = { "content-encoding", NULL };
	struct dt_headers h = { 0 }, extra = { 0 };
	unsigned one = 1;
	const char *r;

	fx->mode = HOLD;
	start(fx);
	send_str(fx, "GET /h HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_requests, &one);
	dt_headers_add_str(&h, "Content-Type", "text/plain");
	dt_headers_add_str(&h, "Content-Encoding", "gzip");
	dt_headers_add_str(&h, "X-Detour-Provider", "upstream");
	dt_headers_add_str(&h, "Connection", "keep-alive, X-Hop");
	dt_headers_add_str(&h, "X-Hop", "1");
	dt_headers_add_str(&h, "X-Keep", "kept");
	dt_headers_add_str(&extra, "content-type", "application/json");
	dt_headers_add_str(&extra, "x-detour-provider", "groq");
	assert_int_equal(dt_http_respond_head_with(fx->conn, 200, &h, drop, &extra, 2), 0);
	assert_int_equal(dt_http_respond_body(fx->conn, "{}", 2), 0);
	assert_int_equal(dt_http_respond_end(fx->conn), 0);
	run_until(fx, has_text, "\r\n\r\n{}");
	r = got(fx);
	assert_non_null(strstr(r, "\r\nX-Keep: kept\r\ncontent-type: application/json\r\n"
				  "x-detour-provider: groq\r\nContent-Length: 2\r\n\r\n{}"));
	assert_null(strstr(r, "text/plain"));
	assert_null(strstr(r, "gzip"));
	assert_null(strstr(r, "upstream"));
	assert_null(strstr(r, "X-Hop"));
	assert_null(strstr(r, "Connection"));
	dt_headers_free(&h);
	dt_headers_free(&extra);
	dt_http_request_free(fx->held[0]);
	fx->held[0] = NULL;
}

static void test_keep_alive_three_requests(void **state)
{
	struct fixture *fx = *state;
	char req[128], echo[64];

	start(fx);
	for (int i = 1; i <= 3; i++) {
		snprintf(req, sizeof(req), "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
		snprintf(echo, sizeof(echo), "GET /%d |", i);
		send_str(fx, req);
		expect_echo(fx, echo);
	}
	assert_int_equal(fx->requests, 3);
	assert_int_equal(count_text(fx, "HTTP/1.1 200 OK"), 3);
}

static void test_pipelined_answers_in_order(void **state)
{
	struct fixture *fx = *state;
	const char *r;

	start(fx);
	/* more than the layer queues: it must stop reading and resume */
	send_str(fx, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
		     "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
		     "GET /3 HTTP/1.1\r\nHost: a\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
		     "GET /5 HTTP/1.1\r\nHost: a\r\n\r\nGET /6 HTTP/1.1\r\nHost: a\r\n\r\n");
	expect_echo(fx, "GET /6 |");
	r = got(fx);
	assert_true(strstr(r, "GET /1 |") < strstr(r, "POST /2 abc|"));
	assert_true(strstr(r, "POST /2 abc|") < strstr(r, "GET /3 |"));
	assert_true(strstr(r, "GET /3 |") < strstr(r, "GET /4 |"));
	assert_true(strstr(r, "GET /5 |") < strstr(r, "GET /6 |"));
	assert_int_equal(fx->requests, 6);
}

static void test_pipelined_one_at_a_time(void **state)
{
	struct fixture *fx = *state;
	unsigned one = 1;

	fx->mode = HOLD;
	start(fx);
	send_str(fx, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
		     "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_requests, &one);
	run_for(fx, 30);
	assert_int_equal(fx->requests, 1); /* the next waits for the end of this answer */
	for (unsigned i = 0; i < 3; i++) {
		unsigned next = i + 2;

		fx->mode = i < 2 ? HOLD : ECHO;
		answer_echo(fx->conn, fx->held[i]);
		fx->held[i] = NULL;
		if (i < 2)
			run_until(fx, has_requests, &next);
	}
	run_until(fx, has_text, "GET /3 |");
	assert_true(strstr(got(fx), "GET /1 |") < strstr(got(fx), "GET /2 |"));
	assert_true(strstr(got(fx), "GET /2 |") < strstr(got(fx), "GET /3 |"));
}

static void test_chunked_request_body(void **state)
{
	struct fixture *fx = *state;
	unsigned one = 1, two = 2;

	fx->mode = HOLD;
	start(fx);
	/* trailer fields are dropped, and do not leak into the next request */
	send_str(fx, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
		     "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_requests, &one);
	assert_int_equal(fx->held[0]->headers.n, 2);
	answer_echo(fx->conn, fx->held[0]);
	fx->held[0] = NULL;
	run_until(fx, has_requests, &two);
	assert_int_equal(fx->held[1]->headers.n, 1);
	assert_string_equal(fx->held[1]->headers.v[0].name, "Host");
	answer_echo(fx->conn, fx->held[1]);
	fx->held[1] = NULL;
	run_until(fx, has_text, "GET /next |");
	assert_non_null(strstr(got(fx), "POST /c hello world|"));
}

static void test_body_byte_by_byte(void **state)
{
	struct fixture *fx = *state;
	const char *req = "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\none by 1!";

	start(fx);
	for (const char *p = req; *p; p++) {
		send_bytes(fx, p, 1);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	expect_echo(fx, "POST /b one by 1!|");
	assert_int_equal(fx->requests, 1);
}

/* A head arriving in pieces, a folded value among them: the fields are
 * whole, in order, as if it had come in one read. */
static void test_head_in_pieces(void **state)
{
	struct fixture *fx = *state;
	const char *req = "GET /long/target?q=1 HTTP/1.1\r\nHost: example\r\n"
			  "X-Folded: first\r\n  second\r\nX-Last: end value\r\n\r\n";
	const struct dt_headers *h;
	unsigned one = 1;

	fx->mode = HOLD;
	start(fx);
	for (size_t off = 0, len = strlen(req); off < len; off += 3) {
		send_bytes(fx, req + off, len - off < 3 ? len - off : 3);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	run_until(fx, has_requests, &one);
	assert_string_equal(fx->held[0]->target, "/long/target?q=1");
	h = &fx->held[0]->headers;
	assert_int_equal(h->n, 3);
	assert_string_equal(h->v[0].name, "Host");
	assert_string_equal(h->v[0].value, "example");
	assert_string_equal(h->v[1].name, "X-Folded");
	assert_non_null(strstr(h->v[1].value, "first"));
	assert_non_null(strstr(h->v[1].value, "second"));
	assert_string_equal(h->v[2].name, "X-Last");
	assert_string_equal(h->v[2].value, "end value");
}

/* Output is gathered, but a stream's event goes out on its own: it must not
 * wait for the next one, or for the end. */
static void test_stream_event_not_held(void **state)
{
	struct fixture *fx = *state;
	unsigned one = 1;

	fx->mode = HOLD;
	start(fx);
	send_str(fx, "GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_requests, &one);
	assert_int_equal(dt_http_respond_head(fx->conn, 200, NULL, -1), 0);
	assert_int_equal(dt_http_respond_body(fx->conn, "data: 1\n\n", 9), 0);
	run_until(fx, has_text, "data: 1\n\n\r\n");
	assert_null(strstr(got(fx), "data: 2"));
	assert_int_equal(dt_http_respond_body(fx->conn, "data: 2\n\n", 9), 0);
	run_until(fx, has_text, "data: 2\n\n\r\n");
	assert_null(strstr(got(fx), "\r\n0\r\n\r\n"));
	assert_int_equal(dt_http_respond_end(fx->conn), 0);
	run_until(fx, has_text, "\r\n0\r\n\r\n");
	dt_http_request_free(fx->held[0]);
	fx->held[0] = NULL;
}

/* A small whole answer (head, two chunks, the last chunk) leaves in one
 * write, i.e. one TLS record: over a SEQPACKET pair each write is one
 * message. */
static void test_small_answer_one_write(void **state)
{
	struct fixture *fx = *state;
	const char *req = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
	char msg[4096];
	ssize_t n = -1;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	fx->mode = CHUNKED;
	fx->conn = dt_http_conn_new(fx->base, sv[0], NULL, fx->family, &fx->lim, &ops, fx);
	assert_non_null(fx->conn);
	assert_int_equal(send(sv[1], req, strlen(req), 0), (ssize_t)strlen(req));
	for (int i = 0; i < 1000 && n < 0; i++) {
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		n = recv(sv[1], msg, sizeof(msg) - 1, MSG_DONTWAIT);
	}
	assert_true(n > 0);
	msg[n] = '\0';
	assert_true(strncmp(msg, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(msg, "Transfer-Encoding: chunked\r\n"));
	assert_true(n > 7 && strcmp(msg + n - 7, "\r\n0\r\n\r\n") == 0); /* the whole answer */
	for (int i = 0; i < 10; i++)
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(recv(sv[1], msg, sizeof(msg), MSG_DONTWAIT), -1);
	assert_int_equal(fx->requests, 1);
	close(sv[1]);
}

static void test_expect_continue(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	send_str(fx, "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
	run_until(fx, has_text, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_int_equal(fx->requests, 0);
	send_str(fx, "body");
	expect_echo(fx, "POST /e body|");
	assert_true(strstr(got(fx), "100 Continue") < strstr(got(fx), "200 OK"));
}

static void test_expect_over_limit(void **state)
{
	struct fixture *fx = *state;

	fx->lim.max_body_bytes = 100;
	start(fx);
	send_str(fx, "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
		     "Content-Length: 1000000\r\n\r\n");
	run_until(fx, is_closed, NULL);
	assert_true(starts_with(fx, "HTTP/1.1 413 Payload Too Large\r\n"));
	assert_null(strstr(got(fx), "100 Continue"));
	assert_non_null(strstr(got(fx), "Connection: close\r\n"));
	assert_int_equal(fx->requests, 0);
}

/* A request the layer refuses: @status, the connection closed after. */
static void expect_refusal(struct fixture *fx, const char *request, const char *status_line)
{
	start(fx);
	send_str(fx, request);
	run_until(fx, is_closed, NULL);
	assert_true(starts_with(fx, status_line));
	assert_non_null(strstr(got(fx), "Connection: close\r\n"));
	assert_non_null(strstr(got(fx), "Content-Type: application/json\r\n"));
	assert_int_equal(fx->requests, 0);
}

static void test_too_many_headers(void **state)
{
	struct fixture *fx = *state;

	fx->lim.max_headers = 3;
	expect_refusal(fx, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
		       "HTTP/1.1 431 Request Header Fields Too Large\r\n");
}

static void test_head_too_large(void **state)
{
	struct fixture *fx = *state;
	char req[512];

	fx->lim.max_header_bytes = 200;
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0300d\r\n\r\n", 0);
	expect_refusal(fx, req, "HTTP/1.1 431 ");
}

static void test_body_too_large(void **state)
{
	struct fixture *fx = *state;

	fx->lim.max_body_bytes = 10;
	expect_refusal(fx, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
		       "HTTP/1.1 413 ");
}

static void test_malformed(void **state)
{
	struct fixture *fx = *state;

	expect_refusal(fx, "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
		       "HTTP/1.1 400 Bad Request\r\n");
	/* http_parser's reason, in OpenAI's error shape */
	assert_non_null(strstr(got(fx), "{\"error\":{\"message\":\"malformed request: "
					"invalid character in header\""));
}

static void test_host_required(void **state)
{
	struct fixture *fx = *state;

	expect_refusal(fx, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
	assert_non_null(strstr(got(fx), "Host"));
}

static void test_http2_preface(void **state)
{
	struct fixture *fx = *state;

	expect_refusal(fx, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		       "HTTP/1.1 505 HTTP Version Not Supported\r\n");
}

static void test_http2_version(void **state)
{
	struct fixture *fx = *state;

	expect_refusal(fx, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ");
}

static void test_unsupported_coding(void **state)
{
	struct fixture *fx = *state;

	expect_refusal(fx, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
			   "0\r\n\r\n",
		       "HTTP/1.1 501 Not Implemented\r\n");
}

static void test_refusal_after_pipelined_answers(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	send_str(fx, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n");
	run_until(fx, is_closed, NULL);
	assert_true(strstr(got(fx), "GET /ok |") < strstr(got(fx), "HTTP/1.1 400 "));
	assert_int_equal(fx->requests, 1);
}

static void test_idle_timeout(void **state)
{
	struct fixture *fx = *state;

	fx->lim.idle_timeout_ms = 50;
	start(fx);
	send_str(fx, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, is_closed, NULL); /* silently, after the answer */
	assert_int_equal(count_text(fx, "HTTP/1.1 "), 1);
}

static void test_request_timeout(void **state)
{
	struct fixture *fx = *state;

	fx->lim.request_timeout_ms = 50;
	expect_refusal(fx, "GET / HTTP/1.1\r\nHost: a\r\n", "HTTP/1.1 408 Request Timeout\r\n");
}

static void test_chunked_response(void **state)
{
	struct fixture *fx = *state;

	fx->mode = CHUNKED;
	start(fx);
	send_str(fx, "GET /abcd HTTP/1.1\r\nHost: a\r\n\r\n");
	/* "GET /abcd |" in two chunks of 5 and 6 bytes, then the last chunk */
	run_until(fx, has_text, "Transfer-Encoding: chunked\r\n\r\n"
				"5\r\nGET /\r\n6\r\nabcd |\r\n0\r\n\r\n");
	assert_null(strstr(got(fx), "Content-Length"));
}

static void test_http10_close_delimited(void **state)
{
	struct fixture *fx = *state;

	fx->mode = CHUNKED;
	start(fx);
	send_str(fx, "GET /old HTTP/1.0\r\n\r\n");
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "Connection: close\r\n\r\nGET /old |"));
	assert_null(strstr(got(fx), "Transfer-Encoding"));
}

static void test_http10_keep_alive(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	send_str(fx, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	expect_echo(fx, "GET /a |");
	assert_non_null(strstr(got(fx), "Connection: keep-alive\r\n"));
	send_str(fx, "GET /b HTTP/1.0\r\n\r\n");
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "Connection: close\r\n\r\nGET /b |"));
}

static void test_connection_close(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	/* what follows the last request is not read */
	send_str(fx, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n");
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "Connection: close\r\n"));
	assert_int_equal(fx->requests, 1);
}

static void test_half_close_gets_answer(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	send_str(fx, "POST /h HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
	shutdown(fx->client, SHUT_WR);
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "POST /h hi|"));
}

static void test_eof_mid_request(void **state)
{
	struct fixture *fx = *state;

	start(fx);
	send_str(fx, "POST /h HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\nhi");
	shutdown(fx->client, SHUT_WR);
	run_until(fx, is_closed, NULL);
	assert_true(starts_with(fx, "HTTP/1.1 400 "));
	assert_int_equal(fx->requests, 0);
}

static void test_backpressure(void **state)
{
	struct fixture *fx = *state;
	unsigned one = 1;

	fx->mode = STREAM;
	start(fx);
	event_del(fx->client_ev); /* the client does not read */
	send_str(fx, "GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_requests, &one);
	assert_true(fx->backlogged);
	run_for(fx, 50);
	assert_true(dt_http_backlogged(fx->conn));
	assert_int_equal(fx->drained, 0);
	event_add(fx->client_ev, NULL);
	run_until(fx, has_text, "\r\n4\r\ndone\r\n0\r\n\r\n");
	assert_int_equal(fx->drained, 1);
	assert_false(fx->closed);
}

static void test_abort_broken(void **state)
{
	struct fixture *fx = *state;

	fx->mode = ABORT;
	start(fx);
	send_str(fx, "GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "Transfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(got(fx), "\r\nf\r\ndata: partial\n\n\r\n"));
	assert_null(strstr(got(fx), "0\r\n\r\n")); /* no last chunk: not complete */
}

static void test_handler_error_keeps_connection(void **state)
{
	struct fixture *fx = *state;

	fx->mode = FAIL;
	start(fx);
	send_str(fx, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, has_text, "every upstream failed\"");
	assert_true(starts_with(fx, "HTTP/1.1 502 Bad Gateway\r\n"));
	fx->mode = ECHO;
	send_str(fx, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
	expect_echo(fx, "GET /2 |");
}

static void test_anthropic_shape(void **state)
{
	struct fixture *fx = *state;

	fx->family = DT_FAMILY_ANTHROPIC;
	expect_refusal(fx, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
	assert_non_null(strstr(got(fx), "{\"type\":\"error\",\"error\":{\"type\":"
					"\"invalid_request_error\",\"message\":"));
}

static void test_free_from_handler(void **state)
{
	struct fixture *fx = *state;

	fx->mode = FREE;
	start(fx);
	send_str(fx, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
	run_until(fx, client_got_eof, NULL);
	assert_int_equal(fx->requests, 1);
	assert_false(fx->closed); /* no callback after dt_http_conn_free */
}

/* ---- over TLS, as the proxy serves it ----------------------------------------------- */

static SSL_CTX *self_signed_server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	X509_NAME *name = X509_get_subject_name(cert);

	assert_non_null(ctx);
	assert_non_null(key);
	assert_non_null(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"api.openai.com", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static void tls_client_read(struct bufferevent *bev, void *arg)
{
	struct fixture *fx = arg;

	evbuffer_add_buffer(fx->got, bufferevent_get_input(bev));
}

static void tls_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct fixture *fx = arg;

	(void)bev;
	/* only a clean end: close_notify after the last response */
	if (what & BEV_EVENT_EOF)
		fx->client_eof = true;
	else if (what & BEV_EVENT_ERROR)
		fail_msg("TLS client error event 0x%x", what);
}

static void test_over_tls(void **state)
{
	struct fixture *fx = *state;
	SSL_CTX *sctx = self_signed_server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct bufferevent *client;
	const char *req = "POST /tls HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nsecret";

	event_del(fx->client_ev); /* the TLS client reads instead */
	client = bufferevent_openssl_socket_new(fx->base, fx->client, SSL_new(cctx),
						BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(client);
	fx->conn = dt_http_conn_new(fx->base, fx->server, SSL_new(sctx), fx->family, &fx->lim,
				    &ops, fx);
	fx->server = fx->client = -1; /* the layer and the bufferevent own them */
	assert_non_null(fx->conn);
	bufferevent_setcb(client, tls_client_read, NULL, tls_client_event, fx);
	bufferevent_enable(client, EV_READ | EV_WRITE);

	bufferevent_write(client, req, strlen(req));
	expect_echo(fx, "POST /tls secret|");
	req = "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	bufferevent_write(client, req, strlen(req));
	run_until(fx, is_closed, NULL);
	assert_non_null(strstr(got(fx), "GET /bye |"));
	assert_int_equal(fx->requests, 2);
	bufferevent_free(client);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_get_and_post),
		T(test_head_with_drop_and_extra),
		T(test_keep_alive_three_requests),
		T(test_pipelined_answers_in_order),
		T(test_pipelined_one_at_a_time),
		T(test_chunked_request_body),
		T(test_body_byte_by_byte),
		T(test_head_in_pieces),
		T(test_stream_event_not_held),
		T(test_small_answer_one_write),
		T(test_expect_continue),
		T(test_expect_over_limit),
		T(test_too_many_headers),
		T(test_head_too_large),
		T(test_body_too_large),
		T(test_malformed),
		T(test_host_required),
		T(test_http2_preface),
		T(test_http2_version),
		T(test_unsupported_coding),
		T(test_refusal_after_pipelined_answers),
		T(test_idle_timeout),
		T(test_request_timeout),
		T(test_chunked_response),
		T(test_http10_close_delimited),
		T(test_http10_keep_alive),
		T(test_connection_close),
		T(test_half_close_gets_answer),
		T(test_eof_mid_request),
		T(test_backpressure),
		T(test_abort_broken),
		T(test_handler_error_keeps_connection),
		T(test_anthropic_shape),
		T(test_free_from_handler),
		T(test_over_tls),
#undef T
	};

	/* a write to a peer that has gone must be an error to handle, not a
	 * signal that ends the process */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
