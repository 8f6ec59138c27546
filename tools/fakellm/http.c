/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 connections: parsing with http_parser, request limits,
 * keep-alive and pipelining, and the response writers.
 *
 * Requests are served strictly in order. The parser pauses on each complete
 * request; while a reply is delayed or streamed, the following pipelined
 * requests stay unparsed in the input buffer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "fakellm.h"

static void conn_process(struct fl_conn *c);

/* ---- request capture ------------------------------------------------------ */

static struct fl_conn *conn_of(http_parser *p)
{
	return p->data;
}

/* Stops the parser on a request we refuse before it is complete. */
static int refuse(http_parser *p, int status)
{
	conn_of(p)->req.reject_status = status;
	http_parser_pause(p, 1);
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct fl_conn *c = conn_of(p);
	struct fl_request *r = &c->req;

	r->url_len = 0;
	r->url[0] = '\0';
	r->field_len = 0;
	r->in_value = false;
	r->capture = NULL;
	r->authorization.len = 0;
	r->x_api_key.len = 0;
	r->anthropic_version.len = 0;
	r->x_goog_api_key.len = 0;
	r->expect.len = 0;
	r->authorization.text[0] = r->x_api_key.text[0] = '\0';
	r->anthropic_version.text[0] = r->x_goog_api_key.text[0] = r->expect.text[0] = '\0';
	r->body_len = 0;
	r->reject_status = 0;
	c->in_message = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct fl_request *r = &conn_of(p)->req;

	if (len > FL_MAX_URL_BYTES - r->url_len)
		return refuse(p, 414);
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	r->url[r->url_len] = '\0';
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct fl_request *r = &conn_of(p)->req;
	size_t i;

	if (r->in_value) {
		r->field_len = 0;
		r->in_value = false;
	}
	/* Names longer than the buffer are none we keep: saturate past it. */
	for (i = 0; i < len && r->field_len <= sizeof(r->field); i++, r->field_len++)
		if (r->field_len < sizeof(r->field))
			r->field[r->field_len] = (char)tolower((unsigned char)at[i]);
	return 0;
}

static struct fl_header_value *captured_header(struct fl_request *r)
{
	static const struct {
		const char *name;
		size_t offset;
	} kept[] = {
		{ "authorization", offsetof(struct fl_request, authorization) },
		{ "x-api-key", offsetof(struct fl_request, x_api_key) },
		{ "anthropic-version", offsetof(struct fl_request, anthropic_version) },
		{ "x-goog-api-key", offsetof(struct fl_request, x_goog_api_key) },
		{ "expect", offsetof(struct fl_request, expect) },
	};
	size_t i;

	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (strlen(kept[i].name) == r->field_len &&
		    memcmp(kept[i].name, r->field, r->field_len) == 0)
			return (struct fl_header_value *)((char *)r + kept[i].offset);
	return NULL;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct fl_request *r = &conn_of(p)->req;
	struct fl_header_value *v;
	size_t room;

	if (!r->in_value) {
		r->in_value = true;
		r->capture = captured_header(r);
		if (r->capture)
			r->capture->len = 0;
	}
	v = r->capture;
	if (!v)
		return 0;
	room = sizeof(v->text) - 1 - v->len;
	if (len > room)
		len = room;
	memcpy(v->text + v->len, at, len);
	v->len += len;
	v->text[v->len] = '\0';
	return 0;
}

static bool body_reserve(struct fl_request *r, size_t need)
{
	size_t cap = r->body_cap ? r->body_cap : 4096;
	char *grown;

	if (need <= r->body_cap)
		return true;
	while (cap < need)
		cap *= 2;
	grown = realloc(r->body, cap);
	if (!grown)
		return false;
	r->body = grown;
	r->body_cap = cap;
	return true;
}

static int on_headers_complete(http_parser *p)
{
	struct fl_conn *c = conn_of(p);
	bool sized = !(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX;

	if (sized && p->content_length > FL_MAX_BODY_BYTES)
		return refuse(p, 413);
	if (sized && !body_reserve(&c->req, p->content_length))
		return refuse(p, 503);
	/* curl waits a second for this before sending large bodies. */
	if (p->http_major == 1 && p->http_minor >= 1 &&
	    strcasecmp(c->req.expect.text, "100-continue") == 0)
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct fl_request *r = &conn_of(p)->req;

	if (len > FL_MAX_BODY_BYTES - r->body_len)
		return refuse(p, 413);
	if (!body_reserve(r, r->body_len + len))
		return refuse(p, 503);
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct fl_conn *c = conn_of(p);

	c->in_message = false;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin    = on_message_begin,
	.on_url              = on_url,
	.on_header_field     = on_header_field,
	.on_header_value     = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body             = on_body,
	.on_message_complete = on_message_complete,
};

size_t fl_request_path_len(const struct fl_request *req)
{
	const char *query = memchr(req->url, '?', req->url_len);

	return query ? (size_t)(query - req->url) : req->url_len;
}

bool fl_request_path_is(const struct fl_request *req, const char *prefix, const char *pattern,
			struct fl_span *star)
{
	size_t len = fl_request_path_len(req), plen = strlen(prefix);
	const char *path = req->url + plen, *wild = strchr(pattern, '*');
	size_t head = wild ? (size_t)(wild - pattern) : strlen(pattern);
	size_t tail = wild ? strlen(wild + 1) : 0, i;

	if (len < plen || memcmp(req->url, prefix, plen) != 0)
		return false;
	len -= plen;
	if (!wild)
		return len == head && memcmp(path, pattern, head) == 0;
	if (len <= head + tail || memcmp(path, pattern, head) != 0 ||
	    memcmp(path + len - tail, wild + 1, tail) != 0)
		return false;
	for (i = head; i < len - tail; i++)
		if (path[i] == '/' || path[i] == ':')
			return false;
	if (star) {
		star->text = path + head;
		star->len = len - tail - head;
	}
	return true;
}

bool fl_request_query(const struct fl_request *req, const char *name, struct fl_span *value)
{
	const char *p = memchr(req->url, '?', req->url_len), *end = req->url + req->url_len;
	size_t nlen = strlen(name);

	while (p && p < end) {
		const char *param = p + 1, *next = memchr(param, '&', (size_t)(end - param));

		if (!next)
			next = end;
		if ((size_t)(next - param) > nlen && memcmp(param, name, nlen) == 0 &&
		    param[nlen] == '=') {
			value->text = param + nlen + 1;
			value->len = (size_t)(next - value->text);
			return true;
		}
		p = next;
	}
	return false;
}

void fl_http_init(void)
{
	http_parser_set_max_header_size(FL_MAX_HEADER_BYTES);
}

/* ---- connection flow ------------------------------------------------------ */

static void conn_refuse(struct fl_conn *c, int status)
{
	c->keep_alive = false;
	if (c->admin)
		fl_admin_reject(c, status);
	else
		fl_provider_reject(c, status);
}

static void conn_dispatch(struct fl_conn *c)
{
	if (c->req.reject_status) {
		conn_refuse(c, c->req.reject_status);
	} else {
		c->keep_alive = http_should_keep_alive(&c->parser);
		if (c->admin)
			fl_admin_handle(c);
		else
			fl_provider_handle(c);
	}
	if (c->state == FL_CONN_READING && !c->keep_alive)
		c->state = FL_CONN_CLOSING;
}

/* Closes gracefully once the output is sent: FIN (after close_notify on
 * TLS), then read and drop what the client still sends until it closes.
 * Closing with unread input would make the kernel send a RST, which can
 * destroy the response (a 413, say) before the client reads it. */
static void conn_linger(struct fl_conn *c)
{
	struct timeval linger = { .tv_sec = FL_LINGER_SECONDS };
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->state = FL_CONN_LINGERING;
	if (ssl)
		SSL_shutdown(ssl);
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_set_timeouts(c->bev, &linger, NULL);
	bufferevent_enable(c->bev, EV_READ);
}

/* Feeds buffered input to the parser and serves each complete request until
 * the input runs out, a reply is in progress or the client stops reading.
 * May free c. */
static void conn_process(struct fl_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct fl_fault taken;
	struct evbuffer_iovec vec;
	enum http_errno err;
	size_t used;

	if (c->state == FL_CONN_LINGERING) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	c->processing = true;
	while (c->state == FL_CONN_READING && evbuffer_get_length(in) &&
	       evbuffer_get_length(out) < FL_OUTPUT_HIGH) {
		if (!c->in_message && !c->admin &&
		    fl_fault_take(&c->srv->fault, FL_FAULT_ON_DATA, &taken)) {
			fl_conn_reset(c);
			return;
		}
		if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1)
			break;
		used = http_parser_execute(&c->parser, &parser_settings, vec.iov_base, vec.iov_len);
		evbuffer_drain(in, used);
		err = HTTP_PARSER_ERRNO(&c->parser);
		if (err == HPE_PAUSED) {
			/* A complete request, or one refused early. */
			http_parser_pause(&c->parser, 0);
			conn_dispatch(c);
		} else if (err != HPE_OK) {
			conn_refuse(c, err == HPE_HEADER_OVERFLOW ? 431 : 400);
			c->state = FL_CONN_CLOSING;
		}
	}
	c->processing = false;
	if (c->state == FL_CONN_CLOSING && evbuffer_get_length(out) == 0)
		conn_linger(c);
}

void fl_conn_reply_done(struct fl_conn *c)
{
	c->state = c->keep_alive ? FL_CONN_READING : FL_CONN_CLOSING;
	if (!c->processing)
		conn_process(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

/* Runs each time the output drains to FL_OUTPUT_LOW or below. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	struct fl_conn *c = arg;

	if (c->state == FL_CONN_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_linger(c);
	} else if (c->state == FL_CONN_READING && evbuffer_get_length(bufferevent_get_input(bev))) {
		conn_process(c);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fl_conn *c = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	/* the client gave up waiting (a proxy cancelling a hedged request) */
	if (c->state == FL_CONN_RESPONDING || c->state == FL_CONN_HANGING)
		c->srv->stats.abandoned++;
	fl_conn_free(c);
}

struct fl_conn *fl_conn_new(struct fl_server *srv, struct bufferevent *bev, bool admin)
{
	struct fl_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->bev = bev;
	c->admin = admin;
	c->state = FL_CONN_READING;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0, FL_INPUT_HIGH);
	bufferevent_setwatermark(bev, EV_WRITE, FL_OUTPUT_LOW, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

void fl_conn_free(struct fl_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	fl_reply_clear(&c->reply);
	if (c->timer)
		event_free(c->timer);
	bufferevent_free(c->bev);
	free(c->req.body);
	free(c);
}

void fl_conn_reset(struct fl_conn *c)
{
	struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
	c->srv->stats.resets++;
	fl_conn_free(c);
}

/* ---- response writers ----------------------------------------------------- */

const char *fl_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 529: return "Site Overloaded";
	default:  return status < 500 ? "Client Error" : "Server Error";
	}
}

static const char *http_date(struct fl_server *srv)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != srv->date_at) {
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		srv->date_at = now;
	}
	return srv->date;
}

/* Whether a streamed body is sent chunked; HTTP/1.0 gets it close-delimited. */
static bool conn_chunked(const struct fl_conn *c)
{
	return c->parser.http_major > 1 || (c->parser.http_major == 1 && c->parser.http_minor >= 1);
}

void fl_http_head(struct fl_conn *c, int status, const char *content_type,
		  long content_length, const struct fl_meta *meta)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct fl_server *srv = c->srv;

	if (content_length < 0 && !conn_chunked(c))
		c->keep_alive = false;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n",
			    status, fl_http_reason(status), http_date(srv), content_type);
	if (content_length >= 0)
		evbuffer_add_printf(out, "Content-Length: %ld\r\n", content_length);
	else
		evbuffer_add_printf(out, "%sCache-Control: no-cache\r\n",
				    conn_chunked(c) ? "Transfer-Encoding: chunked\r\n" : "");
	evbuffer_add_printf(out, "Connection: %s\r\nx-fakellm-name: %s\r\n",
			    c->keep_alive ? "keep-alive" : "close", srv->name);
	if (meta && meta->api)
		meta->api->headers(out, meta);
	if (meta && meta->retry_after >= 0)
		evbuffer_add_printf(out, "retry-after: %d\r\n", meta->retry_after);
	evbuffer_add(out, "\r\n", 2);
	if (!c->admin)
		fl_stats_status(&srv->stats, status);
}

void fl_http_body(struct fl_conn *c, int status, const struct fl_meta *meta)
{
	struct fl_jw *body = &c->srv->body;

	/* Out of memory while writing: an empty object beats a cut one. */
	if (body->failed) {
		status = 500;
		fl_jw_reset(body);
		fl_jw_format(body, "{}");
	}
	fl_http_head(c, status, "application/json", (long)body->len, meta);
	evbuffer_add(bufferevent_get_output(c->bev), body->buf, body->len);
}

void fl_http_json(struct fl_conn *c, int status, json_t *body, const struct fl_meta *meta)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *sent = text ? text : "{}";

	json_decref(body);
	fl_http_head(c, text ? status : 500, "application/json", (long)strlen(sent), meta);
	evbuffer_add(bufferevent_get_output(c->bev), sent, strlen(sent));
	free(text);
}

void fl_http_sse(struct fl_conn *c, const char *event)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct fl_jw *data = &c->srv->body;
	size_t len = (event ? strlen("event: \n") + strlen(event) : 0) + strlen("data: \n\n") + data->len;
	bool chunked = conn_chunked(c);

	if (data->failed)
		return; /* out of memory: lose this event rather than send half */
	if (chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	if (event)
		evbuffer_add_printf(out, "event: %s\n", event);
	evbuffer_add(out, "data: ", 6);
	evbuffer_add(out, data->buf, data->len);
	evbuffer_add(out, chunked ? "\n\n\r\n" : "\n\n", chunked ? 4 : 2);
}

void fl_http_stream_end(struct fl_conn *c)
{
	if (conn_chunked(c))
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
}
