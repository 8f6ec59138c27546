// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the HTTP/1.1 server layer. Input: byte 0 picks
 * where the client's bytes are split in two writes, byte 1 how the handler
 * answers and the error family; the rest is what the client sends, over a
 * socketpair on a private event loop. The client then closes its write
 * side: the connection must end by itself (every request answered or
 * refused), without a crash or a leak.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "http_server.h"
#include "log.h"

/* Loop turns the connection may take to end after the client's close. */
#define MAX_TURNS 100000

struct run {
	struct event_base *base;
	int client;
	struct dt_http_conn *conn;
	uint8_t answer;
	bool closed;
};

static void on_request(void *ctx, struct dt_http_conn *c, struct dt_http_request *req)
{
	struct run *r = ctx;
	size_t body_len = evbuffer_get_length(req->body);

	switch (r->answer % 4) {
	case 0:
		dt_http_respond_head(c, 200, &req->headers, 2);
		dt_http_respond_body(c, "ok", 2);
		dt_http_respond_end(c);
		break;
	case 1:
		dt_http_respond_head(c, 200, NULL, -1);
		dt_http_respond_body(c, req->target, strlen(req->target));
		dt_http_respond_body(c, evbuffer_pullup(req->body, -1), body_len);
		dt_http_respond_end(c);
		break;
	case 2:
		dt_http_respond_error(c, 502, req->method, NULL);
		break;
	default:
		dt_http_respond_head(c, 200, NULL, -1);
		dt_http_respond_body(c, "data: x\n\n", 9);
		dt_http_respond_abort(c, r->answer & 4);
		break;
	}
	dt_http_request_free(req);
}

static void on_closed(void *ctx, struct dt_http_conn *c)
{
	struct run *r = ctx;

	(void)c;
	r->closed = true;
}

static const struct dt_http_conn_ops ops = { .request = on_request, .closed = on_closed };

/* One non-blocking loop turn; the client reads (and drops) what it got. */
static void turn(struct run *r)
{
	char sink[16384];

	event_base_loop(r->base, EVLOOP_NONBLOCK);
	while (recv(r->client, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static void client_send(struct run *r, const uint8_t *data, size_t len)
{
	while (len && !r->closed) {
		ssize_t n = send(r->client, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			return; /* the server closed */
		}
		turn(r);
	}
	for (int i = 0; i < 8 && !r->closed; i++)
		turn(r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	dt_log_level = DT_LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dt_http_limits lim = {
		.max_header_bytes = 2048, .max_headers = 16, .max_body_bytes = 4096,
		.idle_timeout_ms = 60000, .request_timeout_ms = 60000,
	};
	struct run r = { 0 };
	size_t split;
	int sv[2];

	if (size < 2 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return 0;
	r.base = event_base_new();
	r.client = sv[1];
	r.answer = data[1];
	r.conn = dt_http_conn_new(r.base, sv[0], NULL, (enum dt_family)(data[1] >> 4) % 3, &lim, &ops, &r);
	if (!r.conn)
		abort();
	data += 2;
	size -= 2;
	split = size * data[-2] / 255;
	client_send(&r, data, split);
	client_send(&r, data + split, size - split);
	shutdown(r.client, SHUT_WR);
	for (int i = 0; i < MAX_TURNS && !r.closed; i++)
		turn(&r);
	if (!r.closed)
		abort(); /* the connection outlived its client */
	close(r.client);
	event_base_free(r.base);
	return 0;
}
