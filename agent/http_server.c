// SPDX-License-Identifier: MIT
/*
 * HTTP/1.1 server connections; see http_server.h.
 *
 * A connection runs on the event loop itself, with raw socket or OpenSSL
 * steps (sockio.h): one persistent event on its socket, interested in
 * reading while a request may come, and in writing only while a write is
 * blocked, so that a keep-alive connection in its steady state changes
 * nothing in epoll from one request to the next.
 *
 * Reads go to the loop's shared buffer and are parsed there; only what must
 * outlive the read (the pieces of an unfinished head, requests waiting their
 * turn) is copied into the connection's own. Output is gathered in the
 * connection's buffer and written at the end of a response, once a TLS
 * record's worth is there, or else at the end of the loop turn (the flush
 * event): a small answer leaves in one record, stream events as they come.
 *
 * Handler callbacks come from conn_run() only, from the loop (the socket's
 * event, or the kick a dt_http_* call schedules), as its last step: the
 * handler may answer, end, or free the connection there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>
#include <openssl/ssl.h>

#include "decimal.h"
#include "errors.h"
#include "http_server.h"
#include "log.h"
#include "sockio.h"

/* Complete requests held while one is served; reading stops when full. */
#define PIPELINE_MAX   4
/* Framing counted per header field in the head size: ": " and CRLF. */
#define FIELD_OVERHEAD 4
/* One read; also the most plaintext a TLS record carries, and the output
 * written at once rather than at the end of the loop turn. */
#define IO_CHUNK       16384
/* Input kept between reads: beyond it a head is refused (431); the
 * parser's own head limit (80 KB) comes first. */
#define KEEP_MAX       (256 * 1024)
/* An output buffer larger than this is given back once written. */
#define OUT_KEEP       IO_CHUNK

/* How an HTTP/2 client with prior knowledge starts (RFC 9113 3.4). */
static const char h2_preface[] = "PRI * HTTP/2";
static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char last_chunk[] = "0\r\n\r\n";

/* The loop's read buffer: parsed right after each read (one loop). */
static char read_buf[IO_CHUNK];

enum timer_mode { TIMER_NONE, TIMER_IDLE, TIMER_REQUEST };

/* The response being written. */
struct outgoing {
	bool head_sent;
	bool chunked;     /* Transfer-Encoding: chunked was announced */
	bool no_body;     /* HEAD request, 1xx, 204, 304: body bytes are dropped */
	bool close_after;
	int64_t left;     /* Content-Length bytes still due; -1 when not length-delimited */
};

/* Bytes of the input being parsed (offsets: the buffer may move). */
struct span {
	size_t off, len;
};

struct dt_http_conn {
	int fd;
	SSL *ssl;                     /* NULL: plain */
	bool handshaking;
	enum dt_family family;
	struct dt_http_limits lim;
	const struct dt_http_conn_ops *ops;
	void *ctx;
	struct event *io;             /* the socket, with interest io_kind */
	short io_kind;
	short read_needs;             /* what a read (or the handshake) waits for */
	short write_needs;            /* what a blocked write waits for; 0: not blocked */
	struct event *kick;           /* runs conn_run() from the loop */
	struct event *flush;          /* writes the output at the end of the loop turn */
	struct event *timer;
	enum timer_mode timer_mode;

	/* receiving */
	http_parser parser;
	char *in;                     /* being parsed: read_buf, or keep; NULL: nothing */
	size_t in_start, in_end;
	char *keep;                   /* input that outlived its read */
	size_t keep_cap;
	struct span url, field, value;
	struct dt_http_request *req;  /* being received; NULL between requests */
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
	char *obuf;                   /* [o_off, o_len) is still to be written */
	size_t o_off, o_len, o_cap;
	void (*drain_cb)(void *arg);
	void *drain_arg;
	bool drain_armed;             /* the output went over the high-water mark */

	bool broken;                  /* the transport failed */
	bool cut_short;               /* the last response was aborted as broken */
	bool closing;                 /* close once the output has drained */
	unsigned served;
};

static void conn_run(evutil_socket_t fd, short what, void *arg);

static void kick(struct dt_http_conn *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}

static size_t output_len(const struct dt_http_conn *c)
{
	return c->o_len - c->o_off;
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

/* ---- timers and interest ----------------------------------------------------- */

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
static bool reading_wanted(const struct dt_http_conn *c)
{
	return !c->no_more_requests && !c->peer_eof && !c->broken && c->q_len < PIPELINE_MAX;
}

/* Bytes OpenSSL has read ahead: no socket event will tell of them. */
static bool tls_pending(const struct dt_http_conn *c)
{
	return c->ssl && SSL_has_pending(c->ssl);
}

/* Input to parse, received already or waiting inside OpenSSL. */
static bool input_waiting(const struct dt_http_conn *c)
{
	return c->in_start < c->in_end || tls_pending(c);
}

/* Watch the socket for what the connection waits for, changing the event
 * only when that changed. */
static void update_interest(struct dt_http_conn *c)
{
	short kind = 0;

	if (c->broken)
		kind = 0;
	else if (c->handshaking)
		kind = c->read_needs;
	else {
		if (output_len(c))
			kind |= c->write_needs;
		if (reading_wanted(c))
			kind |= c->read_needs;
	}
	dt_sockio_want(c->io, &c->io_kind, kind);
}

static void stop_receiving(struct dt_http_conn *c)
{
	c->no_more_requests = true;
	c->continue_due = false;
	dt_http_request_free(c->req);
	c->req = NULL;
	c->url = c->field = c->value = (struct span){ 0 };
	set_timer(c, TIMER_NONE);
	update_interest(c);
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

static int count_head(struct dt_http_conn *c, size_t len)
{
	c->head_bytes += len;
	if (c->lim.max_header_bytes && c->head_bytes > c->lim.max_header_bytes)
		return refuse_cb(c, 431, "request header fields too large");
	return 0;
}

/* Add the parser's piece of a target, name or value to its span. The pieces
 * of one are adjacent in the input (kept input is read onto), except a value
 * continued on a folded line (obs-fold): that piece is moved back over the
 * fold, which the parser has passed. */
static void span_add(struct dt_http_conn *c, struct span *s, const char *at, size_t len)
{
	size_t off = (size_t)(at - c->in);

	if (!s->len) {
		s->off = off;
		s->len = len;
		return;
	}
	if (off != s->off + s->len)
		memmove(c->in + s->off + s->len, at, len);
	s->len += len;
}

static const char *span_text(const struct dt_http_conn *c, const struct span *s)
{
	return s->len ? c->in + s->off : "";
}

/* The field whose name and value the parser has delivered, maybe in pieces. */
static int commit_field(struct dt_http_conn *c)
{
	if (dt_headers_add(&c->req->headers, span_text(c, &c->field), c->field.len,
			   span_text(c, &c->value), c->value.len))
		return refuse_cb(c, 500, "out of memory");
	c->field = c->value = (struct span){ 0 };
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

	if (count_head(c, len))
		return -1;
	span_add(c, &c->url, at, len);
	return 0;
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
	if (!c->field.len) { /* a new field, not a continued name */
		if (c->lim.max_headers && ++c->n_fields > c->lim.max_headers)
			return refuse_cb(c, 431, "too many request header fields");
		if (count_head(c, FIELD_OVERHEAD))
			return -1;
	}
	if (count_head(c, len))
		return -1;
	span_add(c, &c->field, at, len);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct dt_http_conn *c = p->data;

	if (in_trailer(c))
		return count_head(c, len);
	c->in_value = true;
	if (count_head(c, len))
		return -1;
	span_add(c, &c->value, at, len);
	return 0;
}

static size_t count_fields(const struct dt_headers *h, const char *name, const char **value)
{
	size_t n = 0, len = strlen(name);

	for (size_t i = 0; i < h->n; i++)
		if (dt_name_is(h->v[i].name, h->v[i].name_len, name, len)) {
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
	bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
	const char *method;
	size_t n;

	if (c->in_value && commit_field(c))
		return -1;
	req->target = strndup(span_text(c, &c->url), c->url.len);
	if (!req->target)
		return refuse_cb(c, 500, "out of memory");
	c->url = (struct span){ 0 };
	method = http_method_str(p->method);
	n = strnlen(method, sizeof(req->method) - 1);
	memcpy(req->method, method, n);
	req->method[n] = '\0';
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
	return evbuffer_add(body, at, len) ? refuse_cb(c, 500, "out of memory") : 0;
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
static enum preface h2_preface_at_start(const char *in, size_t len)
{
	size_t n = len < sizeof(h2_preface) - 1 ? len : sizeof(h2_preface) - 1;

	if (memcmp(in, h2_preface, n) != 0)
		return NOT_PREFACE;
	return n < sizeof(h2_preface) - 1 ? MAYBE_PREFACE : PREFACE;
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
	while (!c->no_more_requests && c->q_len < PIPELINE_MAX && c->in_start < c->in_end) {
		const char *at = c->in + c->in_start;
		size_t len = c->in_end - c->in_start;
		enum preface preface = nothing_received(c) ? h2_preface_at_start(at, len) : NOT_PREFACE;

		if (preface == PREFACE) {
			refuse(c, 505, "HTTP/2 is not supported here: use HTTP/1.1");
			return;
		}
		if (preface == MAYBE_PREFACE && !c->peer_eof)
			return; /* wait for the bytes that tell */
		c->in_start += http_parser_execute(&c->parser, &parser_settings, at, len);
		if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
		} else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
			parse_failed(c);
			return;
		}
	}
	/* the client stopped sending in the middle of a request */
	if (c->peer_eof && c->req && !c->no_more_requests && c->in_start == c->in_end) {
		http_parser_execute(&c->parser, &parser_settings, NULL, 0);
		parse_failed(c);
	}
}

static void forget_input(struct dt_http_conn *c)
{
	free(c->keep);
	c->keep = c->in = NULL;
	c->keep_cap = c->in_start = c->in_end = 0;
}

static size_t lowest(size_t off, const struct span *s)
{
	return s->len && s->off < off ? s->off : off;
}

/* After parsing: what the parser has not taken yet, and the pieces of the
 * head being received, move to the start of the connection's own buffer
 * (from the read buffer, or within the own one). False when out of memory. */
static bool keep_input(struct dt_http_conn *c)
{
	size_t from = lowest(lowest(lowest(c->in_start, &c->url), &c->field), &c->value);
	size_t len = c->in_end - from;

	if (c->no_more_requests || !len) {
		forget_input(c);
		return true;
	}
	if (c->in == read_buf) {
		if (c->keep_cap < len + IO_CHUNK) {
			char *k = realloc(c->keep, len + IO_CHUNK);

			if (!k) {
				forget_input(c);
				return false;
			}
			c->keep = k;
			c->keep_cap = len + IO_CHUNK;
		}
		memcpy(c->keep, read_buf + from, len);
		c->in = c->keep;
	} else if (from) {
		memmove(c->keep, c->keep + from, len);
	}
	c->in_start -= from;
	c->in_end = len;
	c->url.off -= from;
	c->field.off -= from;
	c->value.off -= from;
	return true;
}

/* Where the next read goes: after the kept input, or the read buffer. */
static char *read_room(struct dt_http_conn *c, size_t *room)
{
	if (!c->in) {
		c->in = read_buf;
		c->in_start = c->in_end = 0;
		*room = sizeof(read_buf);
		return read_buf;
	}
	if (c->keep_cap - c->in_end < IO_CHUNK / 4) {
		size_t cap = c->keep_cap * 2 > KEEP_MAX ? KEEP_MAX : c->keep_cap * 2;
		char *k = cap > c->keep_cap ? realloc(c->keep, cap) : NULL;

		if (!k)
			return NULL;
		c->keep = c->in = k;
		c->keep_cap = cap;
	}
	*room = c->keep_cap - c->in_end;
	return c->in + c->in_end;
}

/* Read and parse while requests may come, until the socket has no more. */
static void receive(struct dt_http_conn *c)
{
	char err[160];

	while (reading_wanted(c)) {
		size_t room;
		char *at = read_room(c, &room);
		ssize_t n;

		if (!at) {
			refuse(c, c->keep_cap >= KEEP_MAX ? 431 : 500, c->keep_cap >= KEEP_MAX ?
			       "request header fields too large" : "out of memory");
			return;
		}
		n = dt_sockio_read(c->fd, c->ssl, at, room, &c->read_needs, err, sizeof(err));
		if (n == DT_SOCKIO_ERROR) {
			log_debug("http: %s", err);
			c->broken = true;
		} else if (n == DT_SOCKIO_EOF) {
			c->peer_eof = true; /* a half-close: answers still go out */
		} else if (n > 0) {
			c->in_end += (size_t)n;
		}
		if (n != DT_SOCKIO_ERROR)
			parse_input(c);
		if (!keep_input(c))
			refuse(c, 500, "out of memory");
		/* a short read took what there was; epoll tells of more */
		if (n <= 0 || ((size_t)n < room && !tls_pending(c)))
			return;
	}
}

/* ---- output --------------------------------------------------------------------- */

/* Write what is gathered, until done or the socket is full. */
static void flush_output(struct dt_http_conn *c)
{
	char err[160];

	while (c->o_off < c->o_len) {
		ssize_t n = dt_sockio_write(c->fd, c->ssl, c->obuf + c->o_off, c->o_len - c->o_off,
					    &c->write_needs, err, sizeof(err));

		if (n == DT_SOCKIO_WAIT)
			return;
		if (n < 0) {
			log_debug("http: %s", err);
			c->broken = true;
			return;
		}
		c->o_off += (size_t)n;
	}
	c->write_needs = 0;
	c->o_off = c->o_len = 0;
	if (c->o_cap > OUT_KEEP) {
		free(c->obuf);
		c->obuf = NULL;
		c->o_cap = 0;
	}
}

/* Flush from inside a dt_http_* call: what must follow (closing a broken
 * connection, telling of a drained backlog) is left to the loop. */
static void flush_now(struct dt_http_conn *c)
{
	event_del(c->flush);
	flush_output(c);
	if (c->broken || (c->drain_armed && output_len(c) <= DT_HTTP_LOW_WATER))
		kick(c);
	update_interest(c);
}

/* Room for n more bytes of output (OpenSSL is told the unwritten rest may
 * move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static char *out_room(struct dt_http_conn *c, size_t n)
{
	size_t cap;
	char *b;

	if (c->o_len + n <= c->o_cap)
		return c->obuf + c->o_len;
	if (c->o_off) {
		memmove(c->obuf, c->obuf + c->o_off, c->o_len - c->o_off);
		c->o_len -= c->o_off;
		c->o_off = 0;
		if (c->o_len + n <= c->o_cap)
			return c->obuf + c->o_len;
	}
	cap = c->o_cap ? c->o_cap : 4096;
	while (cap < c->o_len + n)
		cap *= 2;
	b = realloc(c->obuf, cap);
	if (!b)
		return NULL;
	c->obuf = b;
	c->o_cap = cap;
	return b + c->o_len;
}

static bool put(struct dt_http_conn *c, const void *data, size_t len)
{
	char *at = out_room(c, len);

	if (!at)
		return false;
	memcpy(at, data, len);
	c->o_len += len;
	return true;
}

/* Output was added: written at once when a record's worth is there (or
 * end is set: the response is complete), else at the end of this loop turn
 * with what else comes meanwhile. */
static void out_added(struct dt_http_conn *c, bool end)
{
	if (output_len(c) >= DT_HTTP_HIGH_WATER)
		c->drain_armed = true;
	if (c->write_needs)
		return; /* the socket's event writes once it can */
	if (end || output_len(c) >= IO_CHUNK)
		flush_now(c);
	else
		event_active(c->flush, EV_TIMEOUT, 0);
}

static int send_bytes(struct dt_http_conn *c, const void *data, size_t len, bool end)
{
	if (!put(c, data, len))
		return -ENOMEM;
	out_added(c, end);
	return 0;
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

static void begin_response(struct dt_http_conn *c, bool is_head, bool http10, bool keep_alive)
{
	c->serving = true;
	c->req_is_head = is_head;
	c->req_http10 = http10;
	c->req_keep_alive = keep_alive;
	c->out = (struct outgoing){ .left = -1 };
}

/* Does conn_run() have anything to do between responses? */
static bool work_waiting(const struct dt_http_conn *c)
{
	return c->q_len || c->fail_status || c->peer_eof || c->continue_due || c->broken ||
	       input_waiting(c);
}

static void end_response(struct dt_http_conn *c)
{
	c->serving = false;
	c->drain_cb = NULL;
	c->drain_arg = NULL;
	c->drain_armed = false;
	if (c->out.close_after)
		start_closing(c);
	else if (work_waiting(c))
		kick(c); /* the next request may be waiting */
	else
		set_timer(c, c->req ? TIMER_REQUEST : TIMER_IDLE);
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

static bool put_status_line(struct dt_http_conn *c, int status)
{
	const char *phrase = reason_phrase(status);
	size_t plen = strlen(phrase);
	char *at = out_room(c, 9 + 3 + 1 + plen + 2);

	if (!at)
		return false;
	memcpy(at, "HTTP/1.1 ", 9);
	at[9] = (char)('0' + status / 100);
	at[10] = (char)('0' + status / 10 % 10);
	at[11] = (char)('0' + status % 10);
	at[12] = ' ';
	memcpy(at + 13, phrase, plen);
	memcpy(at + 13 + plen, "\r\n", 2);
	c->o_len += 15 + plen;
	return true;
}

/* What a head leaves out of the fields it is given, beside the layer's own
 * rules: the names in drop, and those the extra fields set. */
struct left_out {
	const char *const *drop;
	const struct dt_headers *extra;
};

static bool is_left_out(const struct left_out *lo, const struct dt_header *f)
{
	for (const char *const *d = lo->drop; d && *d; d++)
		if (dt_name_is(f->name, f->name_len, *d, strlen(*d)))
			return true;
	for (size_t i = 0; lo->extra && i < lo->extra->n; i++)
		if (dt_name_is(f->name, f->name_len, lo->extra->v[i].name, lo->extra->v[i].name_len))
			return true;
	return false;
}

/* "name: value\r\n" for a field from the handler, unless the layer owns it
 * (Content-Length, hop-by-hop: also those named by a Connection field of
 * conn, see dt_headers_connection_named), the caller leaves it out, or it
 * would split the head. */
static bool put_field(struct dt_http_conn *c, const struct dt_header *f,
		      const struct dt_headers *conn, const struct left_out *lo)
{
	size_t n = strcspn(f->name, "\r\n:"), v;
	char *at;

	if (f->name[n] || DT_NAME_IS(f->name, n, "content-length") ||
	    dt_headers_hop_by_hop(conn, f->name, n) || (lo && is_left_out(lo, f)))
		return true;
	v = strcspn(f->value, "\r\n");
	if (f->value[v])
		return true;
	at = out_room(c, n + v + 4);
	if (!at)
		return false;
	memcpy(at, f->name, n);
	memcpy(at + n, ": ", 2);
	memcpy(at + n + 2, f->value, v);
	memcpy(at + n + 2 + v, "\r\n", 2);
	c->o_len += n + v + 4;
	return true;
}

#define PUT_LITERAL(c, s) put(c, s, sizeof(s) - 1)

static bool put_head(struct dt_http_conn *c, int status, const struct dt_headers *h,
		     const struct left_out *lo, int64_t content_length)
{
	/* fields named by a Connection field are hop-by-hop too */
	struct dt_headers conn = { 0 };
	bool ok = (!h || dt_headers_connection_named(h, &conn) == 0) && put_status_line(c, status);

	for (size_t i = 0; ok && h && i < h->n; i++)
		ok = put_field(c, &h->v[i], &conn, lo);
	for (size_t i = 0; ok && lo->extra && i < lo->extra->n; i++)
		ok = put_field(c, &lo->extra->v[i], &conn, NULL);
	dt_headers_free(&conn);
	if (ok && status_has_body(status) && content_length >= 0) {
		char digits[DT_DECIMAL_MAX], *d = dt_decimal(digits + sizeof(digits), (uint64_t)content_length);

		ok = PUT_LITERAL(c, "Content-Length: ") &&
		     put(c, d, (size_t)(digits + sizeof(digits) - d)) && PUT_LITERAL(c, "\r\n");
	}
	if (ok && c->out.chunked)
		ok = PUT_LITERAL(c, "Transfer-Encoding: chunked\r\n");
	if (ok && c->out.close_after)
		ok = PUT_LITERAL(c, "Connection: close\r\n");
	else if (ok && c->req_http10)
		ok = PUT_LITERAL(c, "Connection: keep-alive\r\n");
	return ok && PUT_LITERAL(c, "\r\n");
}

int dt_http_respond_head_with(struct dt_http_conn *c, int status, const struct dt_headers *h,
			      const char *const *drop, const struct dt_headers *extra,
			      int64_t content_length)
{
	const struct left_out lo = { .drop = drop, .extra = extra };
	size_t mark = c->o_len;

	if (!c->serving || c->out.head_sent || status < 200 || status > 999)
		return -EINVAL;
	if (c->broken)
		return -EPIPE;
	frame_response(c, status, content_length);
	if (!put_head(c, status, h, &lo, content_length)) {
		c->o_len = mark; /* no half head */
		return -ENOMEM;
	}
	c->out.head_sent = true;
	out_added(c, false);
	return 0;
}

int dt_http_respond_head(struct dt_http_conn *c, int status, const struct dt_headers *h,
			 int64_t content_length)
{
	return dt_http_respond_head_with(c, status, h, NULL, NULL, content_length);
}

int dt_http_respond_body(struct dt_http_conn *c, const void *data, size_t len)
{
	struct outgoing *out = &c->out;
	size_t mark = c->o_len;

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
	if (out->chunked) {
		static const char hex[] = "0123456789abcdef";
		char size[18], *d = size + sizeof(size) - 2;

		memcpy(d, "\r\n", 2);
		for (size_t v = len; v; v >>= 4)
			*--d = hex[v & 15];
		if (!put(c, d, (size_t)(size + sizeof(size) - d)) || !put(c, data, len) ||
		    !PUT_LITERAL(c, "\r\n")) {
			c->o_len = mark;
			return -ENOMEM;
		}
		out_added(c, false);
		return 0;
	}
	return send_bytes(c, data, len, false);
}

int dt_http_respond_end(struct dt_http_conn *c)
{
	struct outgoing *out = &c->out;
	int err = 0;

	if (!c->serving || !out->head_sent)
		return -EINVAL;
	if (out->chunked && !out->no_body)
		err = send_bytes(c, last_chunk, sizeof(last_chunk) - 1, true);
	else if (output_len(c) && !c->broken)
		out_added(c, true);
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
		put(c, last_chunk, sizeof(last_chunk) - 1);
	c->cut_short = broken;
	out->close_after = true;
	end_response(c); /* conn_run() writes the rest, then closes */
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
	/* over TLS, close_notify tells the client the stream ended where it
	 * did; a stream cut short, or output left unsent, must not look ended
	 * (RFC 9112 9.8) */
	if (c->ssl && !c->handshaking && !c->broken && !c->cut_short && output_len(c) == 0)
		SSL_shutdown(c->ssl);
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
	update_interest(c); /* reading resumes when the queue was full */
	/* what waited in the input while the queue was full */
	if (input_waiting(c))
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

/* One step of the TLS handshake; the first request may follow it in the
 * same read. */
static void handshake(struct dt_http_conn *c)
{
	char err[160];
	int rc = dt_sockio_handshake(c->ssl, &c->read_needs, err, sizeof(err));

	if (rc == DT_SOCKIO_ERROR) {
		log_debug("http: TLS handshake: %s", err);
		c->broken = true;
	} else if (rc == 1) {
		c->handshaking = false;
		c->read_needs = EV_READ;
	}
}

/* Everything a connection does, from the loop: its socket's event (what:
 * EV_READ / EV_WRITE), the kick or the flush (neither). */
static void conn_run(evutil_socket_t fd, short what, void *arg)
{
	struct dt_http_conn *c = arg;

	(void)fd;
	if (c->handshaking && !c->broken) {
		handshake(c);
		if (c->handshaking && !c->broken) {
			update_interest(c);
			return;
		}
		what |= EV_READ;
	}
	if (output_len(c) && !c->broken && (!c->write_needs || (what & c->write_needs)))
		flush_output(c);
	if (c->broken || (c->closing && output_len(c) == 0)) {
		conn_close(c);
		return;
	}
	if (c->closing) {
		update_interest(c); /* the socket's event writes the rest */
		return;
	}
	if (c->in_start < c->in_end) {
		parse_input(c);
		if (!keep_input(c))
			refuse(c, 500, "out of memory");
	}
	if (reading_wanted(c) && ((what & c->read_needs) || tls_pending(c)))
		receive(c);
	if (c->broken) {
		conn_close(c);
		return;
	}
	update_interest(c);
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
		send_bytes(c, continue_line, sizeof(continue_line) - 1, true);
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

struct dt_http_conn *dt_http_conn_new(struct event_base *base, int fd, SSL *ssl,
				      enum dt_family family, const struct dt_http_limits *lim,
				      const struct dt_http_conn_ops *ops, void *ctx)
{
	struct dt_http_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->ssl = ssl;
	c->family = family;
	c->lim = *lim;
	c->ops = ops;
	c->ctx = ctx;
	c->read_needs = EV_READ;
	c->io = event_new(base, fd, 0, conn_run, c);
	c->kick = event_new(base, -1, 0, conn_run, c);
	c->flush = event_new(base, -1, 0, conn_run, c);
	c->timer = evtimer_new(base, on_timer, c);
	if (!c->io || !c->kick || !c->flush || !c->timer ||
	    (ssl && SSL_set_fd(ssl, fd) != 1)) {
		dt_http_conn_free(c);
		return NULL;
	}
	if (ssl) {
		SSL_set_accept_state(ssl);
		SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		/* one read() per request rather than one for a record's header and
		 * one for the rest; what is read ahead is seen by SSL_has_pending() */
		SSL_set_read_ahead(ssl, 1);
		c->handshaking = true;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	set_timer(c, TIMER_IDLE);
	/* the client spoke first: its bytes may be there already */
	event_active(c->io, EV_READ, 0);
	return c;
}

void dt_http_conn_free(struct dt_http_conn *c)
{
	if (!c)
		return;
	if (c->io)
		event_free(c->io);
	if (c->kick)
		event_free(c->kick);
	if (c->flush)
		event_free(c->flush);
	if (c->timer)
		event_free(c->timer);
	SSL_free(c->ssl);
	close(c->fd);
	dt_http_request_free(c->req);
	while (c->q_len)
		dt_http_request_free(queue_pop(c));
	free(c->keep);
	free(c->obuf);
	free(c);
}
