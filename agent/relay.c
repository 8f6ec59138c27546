// SPDX-License-Identifier: MIT
/* The transport relay; see relay.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "intercept.h"
#include "log.h"
#include "listener.h"
#include "relay.h"

#define MAX_CANDIDATES 8
/* Client bytes kept until upstream answers, to replay them elsewhere when it
 * resets first: a TLS ClientHello or an HTTP request head fits easily. */
#define REPLAY_MAX    (64 * 1024)
/* Per-direction buffering before the sender is paused (backpressure). */
#define HIGH_WATER    (256 * 1024)

struct conn {
	struct dt_relay *relay;
	LIST_ENTRY(conn) link;
	struct bufferevent *client, *up;
	struct event *connect_timer;
	struct evbuffer *replay;       /* NULL once answered, or when too big */
	struct dt_origin origin;
	struct dt_endpoint cands[MAX_CANDIDATES];
	size_t n_cands, attempt;
	bool connected, answered;
	bool client_eof, up_eof;       /* that side will send nothing more */
};

struct dt_relay {
	struct event_base *base;
	const struct dt_relay_ops *ops;
	void *ctx;
	struct dt_relay_limits limits;
	LIST_HEAD(, conn) conns;
	size_t active;
};

static const struct dt_endpoint *current_endpoint(const struct conn *c)
{
	return &c->cands[c->attempt - 1];
}

static void conn_free(struct conn *c)
{
	struct dt_relay *r = c->relay;

	LIST_REMOVE(c, link);
	r->active--;
	if (c->client)
		bufferevent_free(c->client);
	if (c->up)
		bufferevent_free(c->up);
	if (c->replay)
		evbuffer_free(c->replay);
	event_free(c->connect_timer);
	free(c);
}

/* End the client connection with a reset, so it fails at once instead of
 * waiting on a half-open connection. */
static void conn_abort(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = bufferevent_getfd(c->client);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_free(c);
}

static void maybe_finish(struct conn *c)
{
	if (c->client_eof && c->up_eof &&
	    evbuffer_get_length(bufferevent_get_output(c->client)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->up)) == 0)
		conn_free(c);
}

/* Forward an end-of-stream once everything before it has been written. */
static void forward_eof(struct bufferevent *to, bool from_eof)
{
	if (from_eof && evbuffer_get_length(bufferevent_get_output(to)) == 0)
		shutdown(bufferevent_getfd(to), SHUT_WR);
}

/* Move what @from has read into @to, pausing @from when @to is backed up. */
static void pump(struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *out = bufferevent_get_output(to);

	evbuffer_add_buffer(out, bufferevent_get_input(from));
	if (evbuffer_get_length(out) >= HIGH_WATER)
		bufferevent_disable(from, EV_READ);
}

static void try_next(struct conn *c);

static enum dt_reason reason_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return DT_REASON_CONNECT_REFUSED;
	case ETIMEDOUT:
		return DT_REASON_CONNECT_TIMEOUT;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EADDRNOTAVAIL:
		return DT_REASON_UNREACHABLE;
	default:
		return DT_REASON_RESET;
	}
}

/* The current endpoint failed before answering: blame it, move on. */
static void attempt_failed(struct conn *c, enum dt_reason reason)
{
	struct dt_relay *r = c->relay;
	const struct dt_endpoint *ep = current_endpoint(c);
	char buf[64];

	log_info("relay: %s failed (%s), %zu candidate(s) left",
		 dt_endpoint_str(ep, buf, sizeof(buf)),
		 reason == DT_REASON_CONNECT_REFUSED ? "refused" :
		 reason == DT_REASON_CONNECT_TIMEOUT ? "connect timeout" :
		 reason == DT_REASON_UNREACHABLE ? "unreachable" : "reset",
		 c->n_cands - c->attempt);
	r->ops->failed(r->ctx, ep, c->origin.provider_id, reason);
	if (c->attempt < c->n_cands)
		r->ops->failover(r->ctx, ep);
	try_next(c);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	attempt_failed(arg, DT_REASON_CONNECT_TIMEOUT);
}

static void on_up_connected(struct conn *c)
{
	size_t n = evbuffer_get_length(c->replay);

	evtimer_del(c->connect_timer);
	c->connected = true;
	/* whatever the client already sent (to a failed endpoint) goes first */
	if (n)
		bufferevent_write(c->up, evbuffer_pullup(c->replay, (ev_ssize_t)n), n);
	bufferevent_enable(c->up, EV_READ);
	if (c->client_eof)
		forward_eof(c->up, true);
	else
		bufferevent_enable(c->client, EV_READ);
}

static void up_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct dt_relay *r = c->relay;

	if (!c->answered) {
		c->answered = true;
		evbuffer_free(c->replay);
		c->replay = NULL;
		r->ops->connected(r->ctx, current_endpoint(c), c->origin.provider_id);
	}
	pump(bev, c->client);
}

static void up_drained(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->client_eof) {
		forward_eof(c->up, true);
		maybe_finish(c);
		return;
	}
	bufferevent_enable(c->client, EV_READ);
}

static void up_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		on_up_connected(c);
		return;
	}
	if (!c->connected) {
		evtimer_del(c->connect_timer);
		attempt_failed(c, reason_of(err));
		return;
	}
	if (!c->answered) {
		/* closed or reset before its first byte: nothing reached the
		 * client, so another address can take the whole exchange */
		evtimer_del(c->connect_timer);
		if (c->replay) {
			attempt_failed(c, DT_REASON_RESET);
			return;
		}
		conn_abort(c);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		conn_abort(c); /* pass the reset on */
		return;
	}
	/* orderly end of the upstream stream */
	pump(bev, c->client);
	c->up_eof = true;
	bufferevent_disable(bev, EV_READ);
	forward_eof(c->client, true);
	maybe_finish(c);
}

static void client_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (c->replay) {
		if (evbuffer_get_length(c->replay) + n > REPLAY_MAX) {
			evbuffer_free(c->replay);
			c->replay = NULL;
		} else {
			evbuffer_add(c->replay, evbuffer_pullup(in, (ev_ssize_t)n), n);
		}
	}
	pump(bev, c->up);
}

static void client_drained(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->up_eof) {
		forward_eof(c->client, true);
		maybe_finish(c);
		return;
	}
	if (c->up)
		bufferevent_enable(c->up, EV_READ);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_ERROR) {
		conn_free(c);
		return;
	}
	c->client_eof = true;
	bufferevent_disable(bev, EV_READ);
	if (c->connected) {
		forward_eof(c->up, true);
		maybe_finish(c);
	}
}

static int upstream_socket(struct dt_relay *r, int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	dt_socket_nodelay(fd);
	/* the mark is what keeps the hook from redirecting our own connects */
	if (r->limits.mark &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &r->limits.mark, sizeof(r->limits.mark))) {
		log_warn("relay: SO_MARK: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void try_next(struct conn *c)
{
	struct dt_relay *r = c->relay;
	struct sockaddr_storage ss;
	struct timeval tv;
	socklen_t len;
	int fd;

	if (c->up) {
		bufferevent_free(c->up);
		c->up = NULL;
	}
	c->connected = false;
	bufferevent_disable(c->client, EV_READ);
	if (c->attempt >= c->n_cands) {
		log_warn("relay: every endpoint of provider %u failed; closing", c->origin.provider_id);
		conn_abort(c);
		return;
	}
	len = dt_endpoint_to_sockaddr(&c->cands[c->attempt++], &ss);
	fd = upstream_socket(r, ss.ss_family);
	if (fd < 0) {
		conn_abort(c);
		return;
	}
	c->up = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->up) {
		close(fd);
		conn_abort(c);
		return;
	}
	bufferevent_setcb(c->up, up_read, up_drained, up_event, c);
	if (bufferevent_socket_connect(c->up, (struct sockaddr *)&ss, (int)len) < 0) {
		attempt_failed(c, reason_of(errno));
		return;
	}
	tv.tv_sec = r->limits.connect_timeout_ms / 1000;
	tv.tv_usec = (r->limits.connect_timeout_ms % 1000) * 1000;
	evtimer_add(c->connect_timer, &tv);
}

void dt_relay_start(struct dt_relay *r, int fd, const struct dt_origin *origin)
{
	struct conn *c;

	if (r->active >= r->limits.max_connections) {
		log_warn("relay: %zu connections, limit reached; refusing", r->active);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->relay = r;
	c->origin = *origin;
	c->n_cands = r->ops->candidates(r->ctx, &c->origin, c->cands, MAX_CANDIDATES);
	c->client = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->connect_timer = evtimer_new(r->base, on_connect_timeout, c);
	c->replay = evbuffer_new();
	LIST_INSERT_HEAD(&r->conns, c, link);
	r->active++;
	if (!c->client || !c->connect_timer || !c->replay || c->n_cands == 0) {
		if (!c->client)
			close(fd);
		conn_abort(c);
		return;
	}
	bufferevent_setcb(c->client, client_read, client_drained, client_event, c);
	if (dt_log_level >= DT_LOG_DEBUG) {
		char dst[DT_ENDPOINT_STRLEN];

		log_debug("relay: pid %u (%.*s) -> %s", c->origin.pid, DT_COMM_LEN,
			  c->origin.comm, dt_endpoint_str(&c->origin.dst, dst, sizeof(dst)));
	}
	try_next(c);
}

struct dt_relay *dt_relay_new(struct event_base *base, const struct dt_relay_ops *ops,
			      void *ctx, const struct dt_relay_limits *limits)
{
	struct dt_relay *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->base = base;
	r->ops = ops;
	r->ctx = ctx;
	r->limits = *limits;
	return r;
}

void dt_relay_set_limits(struct dt_relay *r, const struct dt_relay_limits *limits)
{
	r->limits = *limits;
}

void dt_relay_free(struct dt_relay *r)
{
	if (!r)
		return;
	while (!LIST_EMPTY(&r->conns))
		conn_free(LIST_FIRST(&r->conns));
	free(r);
}

size_t dt_relay_active(const struct dt_relay *r)
{
	return r->active;
}
