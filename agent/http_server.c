// SPDX-License-Identifier: MIT
/*
 * HTTP/1.1 server connections; see http_server.h.
 *
 * The bufferevent callbacks only note what happened and schedule conn_run()
 * (the "kick" event), which does all the work from the event loop: OpenSSL
 * bufferevents may call back synchronously from inside a write, and the
 * handler must never be re-entered from its own dt_http_* call. conn_run()
 * calls into the handler at most once, as its last step, because the
 * handler may free the connection there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <http_parser.h>
#include <openssl/ssl.h>

#include "errors.h"
#include "http_server.h"
#include "log.h"

/* Complete requests held while one is served; reading stops when full. */
#define PIPELINE_MAX   4
/* Framing counted per header field in the head size: ": " and CRLF. */
#define FIELD_OVERHEAD 4

/* How an HTTP/2 client with prior knowledge starts (RFC 9113 3.4). */
static const char h2_preface[] = "PRI * HTTP/2";
static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char last_chunk[] = "0\r\n\r\n";

enum timer_mode { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST };

/* The response being written. */
struct outgoing {
	bool head_sent;
	bool chunked;     /* Transfer-Encoding: chunked was announced */
	bool no_body;     /* HEAD request, 1xx, 204, 304: body bytes are dropped */
	bool close_after;
	int64_t left;     /* Content-Length bytes still due; -1 when not length-delimited */
};

struct dt_http_conn {
	struct bufferevent *bev;
	enum dt_family family;
	struct dt_http_limits lim;
	const struct dt_http_conn_ops *ops;
	void *ctx;
	struct event *kick;           /* runs conn_run() from the loop */
	struct event *timer;
	enum timer_mode timer_mode;
	struct evbuffer *scratch;     /* a response head or chunk, written in one go */

	/* receiving */
	http_parser parser;
	struct dt_http_request *req;  /* being received; NULL between requests */
	struct evbuffer *url, *field, *value;
	size_t head_bytes, n_fields;
	bool in_value;                /* the parser's last data was a header value */
	bool continue_due;            /* the client waits for "100 Continue" */
	struct dt_http_request *queue[PIPELINE_MAX];
	unsigned q_first, q_len;
	bool no_more_requests;        /* the last one was received, or refused */
	bool peer_eof;
	int fail_status;              /* the refusal, answered after the queue */
	char fail_msg[128];

	/* answering */
	bool serving;
	bool req_is_head, req_http10, req_keep_alive;
	struct outgoing out;
	void (*drain_cb)(void *arg);
	void *drain_arg;
	bool drain_armed;             /* the output went over the high-water mark */

	bool broken;                  /* the transport failed */
	bool cut_short;               /* the last response was aborted as broken */
	bool closing;                 /* close once the output has drained */
	unsigned served;
};

static void kick(struct dt_http_conn *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}

static size_t output_len(const struct dt_http_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* ---- requests -------------------------------------------------------------- */

static struct dt_http_request *request_new(void)
{
	struct dt_http_request *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->body = evbuffer_new();
	if (!req->body) {
		free(req);
		return NULL;
	}
	return req;
}

void dt_http_request_free(struct dt_http_request *req)
{
	if (!req)
		return;
	free(req->target);
	dt_headers_free(&req->headers);
	if (req->body)
		evbuffer_free(req->body);
	free(req);
}

static void queue_push(struct dt_http_conn *c, struct dt_http_request *req)
{
	c->queue[(c->q_first + c->q_len++) % PIPELINE_MAX] = req;
}

static struct dt_http_request *queue_pop(struct dt_http_conn *c)
{
	struct dt_http_request *req = c->queue[c->q_first];

	c->q_first = (c->q_first + 1) % PIPELINE_MAX;
	c->q_len--;
	return req;
}

/* ---- timers and reading ------------------------------------------------------ */

static void set_timer(struct dt_http_conn *c, enum timer_mode mode)
{
	unsigned ms = mode == TIMER_IDLE ? c->lim.idle_timeout_ms :
		      mode == TIMER_REQUEST ? c->lim.request_timeout_ms : 0;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (mode == c->timer_mode)
		return;
	c->timer_mode = mode;
	evtimer_del(c->timer);
	if (ms)
		evtimer_add(c->timer, &tv);
}

/* Read while another request may come and there is room to queue it. */
static void update_reading(struct dt_http_conn *c)
{
	if (!c->no_more_requests && !c->peer_eof && c->q_len < PIPELINE_MAX)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

static void stop_receiving(struct dt_http_conn *c)
{
	c->no_more_requests = true;
	c->continue_due = false;
	dt_http_request_free(c->req);
	c->req = NULL;
	set_timer(c, TIMER_NONE);
	update_reading(c);
}

/* Close once what is written has gone out; the idle timeout bounds the wait
 * for a client that does not read. */
static void start_closing(struct dt_http_conn *c)
{
	stop_receiving(c);
	c->closing = true;
	set_timer(c, TIMER_IDLE);
	kick(c);
}

/* The request being received cannot be served: answer @status once the
 * requests before it are, then close. The first reason stands. */
static void refuse(struct dt_http_conn *c, int status, const char *message)
{
	if (c->fail_status)
		return;
	c->fail_status = status;
	snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", message);
	stop_receiving(c);
}

/* ---- parser callbacks ---------------------------------------------------------- */

/* Refuse from a parser callback, which then stops the parser. */
static int refuse_cb(struct dt_http_conn *c, int status, const char *message)
{
	refuse(c, status, message);
	return -1;
}

static int append(struct dt_http_conn *c, struct evbuffer *buf, const char *at, size_t len)
{
	return evbuffer_add(buf, at, len) ? refuse_cb(c, 500, "out of memory") : 0;
}

static int count_head(struct dt_http_conn *c, size_t len)
{
	c->head_bytes += len;
	if (c->lim.max_header_bytes && c->head_bytes > c->lim.max_header_bytes)
		return refuse_cb(c, 431, "request header fields too large");
	return 0;
}

/* The contents of @buf, made contiguous ("" when empty). */
static const char *buffer_text(struct evbuffer *buf, size_t *len)
{
	*len = evbuffer_get_length(buf);
	return *len ? (const char *)evbuffer_pullup(buf, -1) : "";
}

/* The field whose name and value the parser has delivered, maybe in pieces. */
static int commit_field(struct dt_http_conn *c)
{
	size_t name_len, value_len;
	const char *name = buffer_text(c->field, &name_len);
	const char *value = buffer_text(c->value, &value_len);

	if (dt_headers_add(&c->req->headers, name, name_len, value, value_len))
		return refuse_cb(c, 500, "out of memory");
	evbuffer_drain(c->field, name_len);
	evbuffer_drain(c->value, value_len);
	c->in_value = false;
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct dt_http_conn *c = p->data;

	c->req = request_new();
	if (!c->req)
		return refuse_cb(c, 500, "out of memory");
	c->head_bytes = 0;
	c->n_fields = 0;
	set_timer(c, TIMER_REQUEST);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct dt_http_conn *c = p->data;

	return count_head(c, len) ? -1 : append(c, c->url, at, len);
}

/* Trailer fields, after a chunked body, are counted but not kept: nothing
 * downstream uses them. The target is set once the head is complete. */
static bool in_trailer(const struct dt_http_conn *c)
{
	return c->req->target != NULL;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct dt_http_conn *c = p->data;

	if (in_trailer(c))
		return count_head(c, len);
	if (c->in_value && commit_field(c))
		return -1;
	if (evbuffer_get_length(c->field) == 0) { /* a new field, not a continued name */
		if (c->lim.max_headers && ++c->n_fields > c->lim.max_headers)
			return refuse_cb(c, 431, "too many request header fields");
		if (count_head(c, FIELD_OVERHEAD))
			return -1;
	}
	return count_head(c, len) ? -1 : append(c, c->field, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct dt_http_conn *c = p->data;

	if (in_trailer(c))
		return count_head(c, len);
	c->in_value = true;
	return count_head(c, len) ? -1 : append(c, c->value, at, len);
}

static size_t count_fields(const struct dt_headers *h, const char *name, const char **value)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0) {
			*value = h->v[i].value;
			n++;
		}
	return n;
}

/* What the head says about the request, checked before any body is read. */
static int check_head(struct dt_http_conn *c, const http_parser *p)
{
	const struct dt_http_request *req = c->req;
	const char *host = NULL, *coding = NULL;
	size_t hosts = count_fields(&req->headers, "host", &host);
	size_t codings = count_fields(&req->headers, "transfer-encoding", &coding);

	if (req->http_major != 1)
		return refuse_cb(c, 505, "HTTP version not supported");
	if (req->target[0] != '/')
		return refuse_cb(c, 400, "the request target must be an absolute path");
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one before */
	if (hosts > 1 || (hosts == 0 && req->http_minor >= 1))
		return refuse_cb(c, 400, "a request needs exactly one Host header field");
	if (codings > 1 || (codings == 1 && strcasecmp(coding, "chunked") != 0))
		return refuse_cb(c, 501, "transfer coding not supported");
	if (c->lim.max_body_bytes && (p->flags & F_CONTENTLENGTH) &&
	    p->content_length > c->lim.max_body_bytes)
		return refuse_cb(c, 413, "request body too large");
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct dt_http_conn *c = p->data;
	struct dt_http_request *req = c->req;
	size_t target_len = evbuffer_get_length(c->url);
	bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);

	if (c->in_value && commit_field(c))
		return -1;
	req->target = malloc(target_len + 1);
	if (!req->target)
		return refuse_cb(c, 500, "out of memory");
	evbuffer_remove(c->url, req->target, target_len);
	req->target[target_len] = '\0';
	snprintf(req->method, sizeof(req->method), "%s", http_method_str(p->method));
	req->http_major = p->http_major;
	req->http_minor = p->http_minor;
	req->keep_alive = http_should_keep_alive(p);
	if (check_head(c, p))
		return -1;
	/* HTTP/1.0 clients do not know 100-continue (RFC 9110 10.1.1) */
	c->continue_due = has_body && req->http_minor >= 1 &&
			  dt_headers_has_token(&req->headers, "expect", "100-continue");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct dt_http_conn *c = p->data;
	struct evbuffer *body = c->req->body;

	if (c->lim.max_body_bytes && evbuffer_get_length(body) + len > c->lim.max_body_bytes)
		return refuse_cb(c, 413, "request body too large");
	c->continue_due = false; /* the client did not wait for it */
	return append(c, body, at, len);
}

static int on_message_complete(http_parser *p)
{
	struct dt_http_conn *c = p->data;

	if (!c->req->keep_alive)
		c->no_more_requests = true;
	queue_push(c, c->req);
	c->req = NULL;
	c->continue_due = false;
	set_timer(c, TIMER_NONE);
	/* execute() returns right after this message: the queue is full, or
	 * what follows the last request is not ours to read */
	if (c->q_len == PIPELINE_MAX || c->no_more_requests)
		http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- parsing ------------------------------------------------------------------- */

enum preface { NOT_PREFACE, MAYBE_PREFACE, PREFACE };

/* A client with prior knowledge of HTTP/2 sends the preface first thing. */
static bool nothing_received(const struct dt_http_conn *c)
{
	return !c->served && !c->q_len && !c->req;
}

/* http_parser calls "PRI" an invalid method; the answer an HTTP/2 client
 * needs is 505, so its preface is recognised first. */
static enum preface h2_preface_at_start(struct evbuffer *in)
{
	char start[sizeof(h2_preface) - 1];
	ev_ssize_t n = evbuffer_copyout(in, start, sizeof(start));

	if (n <= 0 || memcmp(start, h2_preface, (size_t)n) != 0)
		return NOT_PREFACE;
	return (size_t)n < sizeof(start) ? MAYBE_PREFACE : PREFACE;
}

static void parse_failed(struct dt_http_conn *c)
{
	enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
	char msg[128];

	if (err == HPE_HEADER_OVERFLOW) {
		refuse(c, 431, "request header fields too large");
		return;
	}
	snprintf(msg, sizeof(msg), "malformed request: %s", http_errno_description(err));
	refuse(c, 400, msg); /* a callback's own refusal came first and stands */
}

/* Feed what has arrived to the parser, until it is all parsed, the queue is
 * full or no more requests are wanted. */
static void parse_input(struct dt_http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->no_more_requests && c->q_len < PIPELINE_MAX && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		enum preface preface = nothing_received(c) ? h2_preface_at_start(in) : NOT_PREFACE;
		size_t n;

		if (preface == PREFACE) {
			refuse(c, 505, "HTTP/2 is not supported here: use HTTP/1.1");
			return;
		}
		if (preface == MAYBE_PREFACE && !c->peer_eof)
			return; /* wait for the bytes that tell */
		evbuffer_peek(in, -1, NULL, &v, 1);
		n = http_parser_execute(&c->parser, &parser_settings, v.iov_base, v.iov_len);
		evbuffer_drain(in, n);
		if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
		} else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
			parse_failed(c);
			return;
		}
	}
	/* the client stopped sending in the middle of a request */
	if (c->peer_eof && c->req && !c->no_more_requests && !evbuffer_get_length(in)) {
		http_parser_execute(&c->parser, &parser_settings, NULL, 0);
		parse_failed(c);
	}
}

/* ---- responses ------------------------------------------------------------------ */

/* http_parser knows the registered phrases; the phrase is optional (RFC 9112
 * 4), so an unregistered status such as 529 goes without one. */
static const char *reason_phrase(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return strcmp(s, "<unknown>") != 0 ? s : "";
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static void note_backlog(struct dt_http_conn *c)
{
	if (output_len(c) >= DT_HTTP_HIGH_WATER)
		c->drain_armed = true;
}

static int send_bytes(struct dt_http_conn *c, const void *data, size_t len)
{
	if (bufferevent_write(c->bev, data, len))
		return -ENOMEM;
	note_backlog(c);
	return 0;
}

/* Move what was assembled in the scratch buffer to the output at once (one
 * TLS record rather than one per piece). */
static int send_scratch(struct dt_http_conn *c, bool assembled)
{
	int err = assembled && !bufferevent_write_buffer(c->bev, c->scratch) ? 0 : -ENOMEM;

	evbuffer_drain(c->scratch, evbuffer_get_length(c->scratch));
	note_backlog(c);
	return err;
}

static void begin_response(struct dt_http_conn *c, bool is_head, bool http10, bool keep_alive)
{
	c->serving = true;
	c->req_is_head = is_head;
	c->req_http10 = http10;
	c->req_keep_alive = keep_alive;
	c->out = (struct outgoing){ .left = -1 };
}

static void end_response(struct dt_http_conn *c)
{
	c->serving = false;
	c->drain_cb = NULL;
	c->drain_arg = NULL;
	c->drain_armed = false;
	if (c->out.close_after)
		start_closing(c);
	else
		kick(c); /* the next request may be waiting */
}

/* How the body will be delimited, and whether the connection survives it. */
static void frame_response(struct dt_http_conn *c, int status, int64_t content_length)
{
	struct outgoing *out = &c->out;

	out->no_body = c->req_is_head || !status_has_body(status);
	out->close_after = !c->req_keep_alive;
	if (!status_has_body(status))
		return;
	if (content_length >= 0)
		out->left = content_length;
	else if (!c->req_http10)
		out->chunked = true;
	else
		out->close_after = true; /* HTTP/1.0: the end of the body is the close */
}

/* A field from the handler, unless the layer owns it or it would split the
 * head. */
static bool field_passes(const struct dt_header *f)
{
	return strcasecmp(f->name, "content-length") != 0 && !strpbrk(f->name, "\r\n:") &&
	       !strpbrk(f->value, "\r\n");
}

/* "name: value\r\n", without printf and, when it is short, in one
 * evbuffer_add: a head is a dozen of them. */
static bool add_field(struct evbuffer *b, const struct dt_header *f)
{
	size_t n = strlen(f->name), v = strlen(f->value);
	char line[256];

	if (n + v + 4 > sizeof(line))
		return evbuffer_add(b, f->name, n) == 0 && evbuffer_add(b, ": ", 2) == 0 &&
		       evbuffer_add(b, f->value, v) == 0 && evbuffer_add(b, "\r\n", 2) == 0;
	memcpy(line, f->name, n);
	memcpy(line + n, ": ", 2);
	memcpy(line + n + 2, f->value, v);
	memcpy(line + n + 2 + v, "\r\n", 2);
	return evbuffer_add(b, line, n + v + 4) == 0;
}

static bool assemble_head(struct dt_http_conn *c, int status, const struct dt_headers *h,
			  int64_t content_length)
{
	struct evbuffer *b = c->scratch;
	bool ok = evbuffer_add_printf(b, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status)) >= 0;

	for (size_t i = 0; ok && h && i < h->n; i++)
		if (field_passes(&h->v[i]) && !dt_headers_hop_by_hop(h, h->v[i].name))
			ok = add_field(b, &h->v[i]);
	if (ok && status_has_body(status) && content_length >= 0)
		ok = evbuffer_add_printf(b, "Content-Length: %" PRId64 "\r\n", content_length) >= 0;
	if (ok && c->out.chunked)
		ok = evbuffer_add_printf(b, "Transfer-Encoding: chunked\r\n") >= 0;
	if (ok && c->out.close_after)
		ok = evbuffer_add_printf(b, "Connection: close\r\n") >= 0;
	else if (ok && c->req_http10)
		ok = evbuffer_add_printf(b, "Connection: keep-alive\r\n") >= 0;
	return ok && evbuffer_add(b, "\r\n", 2) == 0;
}

int dt_http_respond_head(struct dt_http_conn *c, int status, const struct dt_headers *h,
			 int64_t content_length)
{
	int err;

	if (!c->serving || c->out.head_sent || status < 200 || status > 999)
		return -EINVAL;
	if (c->broken)
		return -EPIPE;
	frame_response(c, status, content_length);
	err = send_scratch(c, assemble_head(c, status, h, content_length));
	if (!err)
		c->out.head_sent = true;
	return err;
}

int dt_http_respond_body(struct dt_http_conn *c, const void *data, size_t len)
{
	struct outgoing *out = &c->out;

	if (!c->serving || !out->head_sent)
		return -EINVAL;
	if (c->broken)
		return -EPIPE;
	if (out->no_body || len == 0) /* an empty chunk would end the body */
		return 0;
	if (out->left >= 0) {
		if ((uint64_t)len > (uint64_t)out->left)
			return -EINVAL; /* more than the Content-Length announced */
		out->left -= (int64_t)len;
	}
	if (!out->chunked)
		return send_bytes(c, data, len);
	return send_scratch(c, evbuffer_add_printf(c->scratch, "%zx\r\n", len) >= 0 &&
			       evbuffer_add(c->scratch, data, len) == 0 &&
			       evbuffer_add(c->scratch, "\r\n", 2) == 0);
}

int dt_http_respond_end(struct dt_http_conn *c)
{
	struct outgoing *out = &c->out;
	int err = 0;

	if (!c->serving || !out->head_sent)
		return -EINVAL;
	if (out->chunked && !out->no_body)
		err = send_bytes(c, last_chunk, sizeof(last_chunk) - 1);
	/* a body shorter than announced: only the close tells the client */
	if (!out->no_body && out->left > 0)
		out->close_after = true;
	end_response(c);
	return c->broken ? -EPIPE : err;
}

int dt_http_respond_error(struct dt_http_conn *c, int status, const char *message,
			  const struct dt_headers *extra)
{
	struct dt_headers h = { 0 };
	struct evbuffer *body = evbuffer_new();
	const char *type;
	size_t len;
	int err;

	if (!body)
		return -ENOMEM;
	type = dt_error_body(c->family, status, message, body);
	len = evbuffer_get_length(body);
	err = extra ? dt_headers_copy(&h, extra) : 0;
	if (!err)
		err = dt_headers_set(&h, "Content-Type", type);
	if (!err)
		err = dt_http_respond_head(c, status, &h, (int64_t)len);
	if (!err)
		err = dt_http_respond_body(c, evbuffer_pullup(body, -1), len);
	if (!err)
		err = dt_http_respond_end(c);
	dt_headers_free(&h);
	evbuffer_free(body);
	return err;
}

void dt_http_respond_abort(struct dt_http_conn *c, bool broken)
{
	struct outgoing *out = &c->out;

	if (!c->serving)
		return;
	if (!broken && out->head_sent && out->chunked && !out->no_body)
		send_bytes(c, last_chunk, sizeof(last_chunk) - 1);
	c->cut_short = broken;
	out->close_after = true;
	end_response(c);
}

bool dt_http_backlogged(const struct dt_http_conn *c)
{
	return output_len(c) >= DT_HTTP_HIGH_WATER;
}

void dt_http_set_drain_cb(struct dt_http_conn *c, void (*cb)(void *arg), void *arg)
{
	c->drain_cb = cb;
	c->drain_arg = arg;
}

unsigned dt_http_requests_served(const struct dt_http_conn *c)
{
	return c->served;
}

/* ---- the connection ------------------------------------------------------------- */

static void conn_close(struct dt_http_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	/* over TLS, close_notify tells the client the stream ended where it
	 * did; a stream cut short, or output left unsent, must not look ended
	 * (RFC 9112 9.8) */
	if (ssl && !c->broken && !c->cut_short && output_len(c) == 0)
		SSL_shutdown(ssl);
	c->ops->closed(c->ctx, c);
	dt_http_conn_free(c);
}

/* The layer answers in place of a handler, for the request it refused. */
static void answer_refusal(struct dt_http_conn *c)
{
	log_debug("http: refusing a request: %d %s", c->fail_status, c->fail_msg);
	begin_response(c, false, false, false);
	if (dt_http_respond_error(c, c->fail_status, c->fail_msg, NULL))
		dt_http_respond_abort(c, true);
}

static void dispatch(struct dt_http_conn *c)
{
	struct dt_http_request *req = queue_pop(c);

	c->served++;
	begin_response(c, strcmp(req->method, "HEAD") == 0, req->http_minor == 0, req->keep_alive);
	update_reading(c);
	/* what waited in the input while the queue was full */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)))
		kick(c);
	c->ops->request(c->ctx, c, req);
}

static void notify_drain(struct dt_http_conn *c)
{
	if (!c->drain_armed || output_len(c) > DT_HTTP_LOW_WATER)
		return;
	c->drain_armed = false;
	if (c->drain_cb)
		c->drain_cb(c->drain_arg);
}

static void conn_run(evutil_socket_t fd, short what, void *arg)
{
	struct dt_http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->broken || (c->closing && output_len(c) == 0)) {
		conn_close(c);
		return;
	}
	if (c->closing)
		return; /* the write callback kicks again as the output drains */
	parse_input(c);
	update_reading(c);
	if (c->serving) {
		notify_drain(c);
		return;
	}
	if (c->q_len) {
		dispatch(c);
		return;
	}
	if (c->fail_status) {
		answer_refusal(c);
		return;
	}
	if (c->peer_eof && !c->req) {
		start_closing(c);
		return;
	}
	if (c->continue_due) {
		c->continue_due = false;
		send_bytes(c, continue_line, sizeof(continue_line) - 1);
	}
	set_timer(c, c->req ? TIMER_REQUEST : TIMER_IDLE);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dt_http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->timer_mode == TIMER_IDLE) {
		conn_close(c);
		return;
	}
	refuse(c, 408, "request timeout");
	kick(c);
}

/* Input arrived, or the output drained to the low-water mark. */
static void on_progress(struct bufferevent *bev, void *arg)
{
	(void)bev;
	kick(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct dt_http_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return; /* an OpenSSL bufferevent finished its handshake */
	/* an end of the request stream is a half-close: answers still go out */
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING))
		c->peer_eof = true;
	else
		c->broken = true;
	kick(c);
}

struct dt_http_conn *dt_http_conn_new(struct event_base *base, struct bufferevent *bev,
				      enum dt_family family, const struct dt_http_limits *lim,
				      const struct dt_http_conn_ops *ops, void *ctx)
{
	struct dt_http_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		bufferevent_free(bev);
		return NULL;
	}
	c->bev = bev;
	c->family = family;
	c->lim = *lim;
	c->ops = ops;
	c->ctx = ctx;
	c->kick = event_new(base, -1, 0, conn_run, c);
	c->timer = evtimer_new(base, on_timer, c);
	c->scratch = evbuffer_new();
	c->url = evbuffer_new();
	c->field = evbuffer_new();
	c->value = evbuffer_new();
	if (!c->kick || !c->timer || !c->scratch || !c->url || !c->field || !c->value) {
		dt_http_conn_free(c);
		return NULL;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	bufferevent_setcb(bev, on_progress, on_progress, on_event, c);
	bufferevent_setwatermark(bev, EV_WRITE, DT_HTTP_LOW_WATER, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	set_timer(c, TIMER_IDLE);
	kick(c); /* bytes may be buffered already */
	return c;
}

static void buffer_free(struct evbuffer *b)
{
	if (b)
		evbuffer_free(b);
}

void dt_http_conn_free(struct dt_http_conn *c)
{
	if (!c)
		return;
	bufferevent_free(c->bev);
	if (c->kick)
		event_free(c->kick);
	if (c->timer)
		event_free(c->timer);
	dt_http_request_free(c->req);
	while (c->q_len)
		dt_http_request_free(queue_pop(c));
	buffer_free(c->scratch);
	buffer_free(c->url);
	buffer_free(c->field);
	buffer_free(c->value);
	free(c);
}
