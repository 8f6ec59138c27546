// SPDX-License-Identifier: MIT
/*
 * The own HTTP/1.1 upstream client; see upstream_int.h and docs/upstream.md.
 *
 * A connection is a non-blocking socket (SO_MARK set before connect), an SSL
 * object on it for https, and one libevent event whose interest follows what
 * the connection waits for. All I/O runs in that event's callback, never
 * inside a dt_* call: starting a fetch on an idle connection activates the
 * event. Responses are read into one buffer shared by every connection and
 * parsed at once (h1resp.c); body bytes that arrive while the caller is
 * paused are held by the fetch (at most one read) and reading stops, so the
 * rest waits in the kernel and pushes back on the provider.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "decimal.h"
#include "h1resp.h"
#include "log.h"
#include "sockio.h"
#include "upstream_int.h"

#define MAX_ENDPOINTS       256
/* Idle connections kept, all endpoints together (as the libcurl side). */
#define MAX_IDLE            256
#define IDLE_SECONDS        60
/* How long a learned address is used for new connections: libcurl's DNS
 * cache lifetime, after which libcurl resolves (and teaches) again. */
#define ADDRESS_SECONDS     60
#define READ_BUFFER         16384
/* libcurl's connect timeout when none is configured */
#define DEFAULT_CONNECT_MS  300000
#define NS_PER_SEC          1000000000ull
/* Forward secrecy and AEAD only, as on the libcurl side. */
#define TLS12_SUITES        "ECDHE+AESGCM:ECDHE+CHACHA20"

struct h1_conn;
struct h1_fetch;

struct dt_h1_endpoint {
	LIST_ENTRY(dt_h1_endpoint) link;
	struct dt_h1 *h;
	bool tls;
	bool ip_literal;
	uint16_t port;
	char *host;                 /* without brackets: SNI, certificate check */
	char *prefix;               /* "scheme://authority" as the URL that made it says */
	size_t prefix_len;
	const char *authority;      /* in prefix, the Host field: host[:port] as in the URL */
	bool http11;                /* libcurl's connection spoke HTTP/1.1 */
	bool h2;                    /* ... HTTP/2: the endpoint stays libcurl's */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t addr_until;        /* new connections go there until then */
	SSL_SESSION *session;       /* resumed by new connections */
	TAILQ_HEAD(, h1_conn) idle; /* most recently used first */
	TAILQ_HEAD(, h1_fetch) waiting;
	unsigned n_conns;           /* open, in any state */
};

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_BUSY, CONN_IDLE };

struct h1_conn {
	LIST_ENTRY(h1_conn) link;       /* every connection, for dt_h1_free */
	TAILQ_ENTRY(h1_conn) idle_link;
	struct dt_h1_endpoint *ep;
	enum conn_state state;
	int fd;
	int connect_errno;              /* connect() failed at once */
	SSL *ssl;                       /* NULL on http:// */
	struct event *io;
	struct event *timer;            /* connect timeout, then idle expiry */
	short io_kind;                  /* what io is added with */
	short read_needs;               /* what SSL_read waits for */
	short write_needs;              /* what a blocked write waits for; 0: none */
	struct h1_fetch *f;
	unsigned served;                /* requests answered on it */
};

struct h1_fetch {
	struct dt_fetch base;
	LIST_ENTRY(h1_fetch) link;      /* every fetch, for dt_h1_free */
	TAILQ_ENTRY(h1_fetch) wait_link;
	bool waiting;
	struct dt_h1_endpoint *ep;
	const struct dt_fetch_ops *ops;
	void *ctx;
	char *req;                      /* head and body, kept until an answer starts */
	size_t req_len, req_off;
	bool head_request;
	bool cut_short;                 /* answered before the request was all sent */
	bool reusable;                  /* the complete answer leaves the connection clean */
	struct h1_conn *conn;
	struct dt_h1resp resp;
	char *held;                     /* body bytes read while paused */
	size_t held_len;
	struct event *deadline;         /* total_timeout_ms */
	unsigned total_timeout_ms;
	bool connected;                 /* a connection was ready for the request */
	bool reused;
	bool want_paused;
	bool in_callback;
	bool cancelled;                 /* inside a callback: torn down after it */
	bool finishing;                 /* inside done() */
};

struct dt_h1 {
	struct event_base *base;
	struct event *kick;             /* waiting fetches take freed slots */
	SSL_CTX *ctx;
	char *trust_file, *trust_dir;
	uint32_t mark;
	unsigned connect_timeout_ms;
	long max_host_connections;      /* 0: no bound */
	bool http11_only;               /* libcurl offers no HTTP/2 either */
	unsigned n_idle;
	size_t n_endpoints;
	LIST_HEAD(, dt_h1_endpoint) endpoints;
	LIST_HEAD(, h1_conn) conns;
	LIST_HEAD(, h1_fetch) fetches;
	char rbuf[READ_BUFFER];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static struct h1_fetch *fetch_of(struct dt_fetch *f)
{
	return (struct h1_fetch *)f;
}

static struct timeval ms_tv(unsigned ms)
{
	return (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
}

static void conn_io(evutil_socket_t fd, short what, void *arg);
static void next_connection(struct h1_fetch *f);
static const struct dt_h1resp_ops resp_ops;

/* ---- connections ------------------------------------------------------------ */

static void conn_want(struct h1_conn *c, short kind)
{
	dt_sockio_want(c->io, &c->io_kind, kind);
}

/* What a busy connection waits for: the rest of the request to go out, the
 * answer to come in (not while the caller is paused). */
static void busy_interest(struct h1_conn *c)
{
	struct h1_fetch *f = c->f;
	short kind = 0;

	if (f->req_off < f->req_len)
		kind |= c->write_needs;
	if (!f->want_paused && !f->held_len)
		kind |= c->read_needs;
	conn_want(c, kind);
}

static void idle_remove(struct h1_conn *c)
{
	TAILQ_REMOVE(&c->ep->idle, c, idle_link);
	c->ep->h->n_idle--;
}

static void conn_free(struct h1_conn *c)
{
	struct dt_h1_endpoint *ep = c->ep;

	if (c->state == CONN_IDLE)
		idle_remove(c);
	LIST_REMOVE(c, link);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->io)
		event_free(c->io);
	if (c->timer)
		event_free(c->timer);
	if (c->fd >= 0)
		close(c->fd);
	ep->n_conns--;
	free(c);
}

/* A connection went away: a fetch waiting for a free slot may open one,
 * from the loop (opening may fail, and that is told by a callback). */
static void conn_close(struct h1_conn *c)
{
	struct dt_h1_endpoint *ep = c->ep;

	conn_free(c);
	if (!TAILQ_EMPTY(&ep->waiting))
		event_active(ep->h->kick, EV_TIMEOUT, 1);
}

static void attach(struct h1_conn *c, struct h1_fetch *f)
{
	c->f = f;
	f->conn = c;
	f->req_off = 0;
	f->reused = c->served > 0;
	c->read_needs = EV_READ;
	c->write_needs = 0;     /* the request is written from the loop at once */
	dt_h1resp_free(&f->resp);
	dt_h1resp_init(&f->resp, f->head_request, &resp_ops, f);
}

/* An open connection carries f's request, from the loop. */
static void assign(struct h1_conn *c, struct h1_fetch *f)
{
	c->state = CONN_BUSY;
	attach(c, f);
	f->connected = true;
	busy_interest(c);
	event_active(c->io, EV_WRITE, 1);
}

static void on_idle_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_close(arg);
}

/* A connection whose answer is complete: to a waiting fetch, the pool, or
 * closed when the pool is full. */
static void conn_release(struct h1_conn *c)
{
	struct dt_h1_endpoint *ep = c->ep;
	struct h1_fetch *next = TAILQ_FIRST(&ep->waiting);
	struct timeval idle = { .tv_sec = IDLE_SECONDS };

	c->f = NULL;
	c->served++;
	if (next) {
		TAILQ_REMOVE(&ep->waiting, next, wait_link);
		next->waiting = false;
		assign(c, next);
		return;
	}
	if (ep->h->n_idle >= MAX_IDLE) {
		conn_close(c);
		return;
	}
	c->state = CONN_IDLE;
	TAILQ_INSERT_HEAD(&ep->idle, c, idle_link);
	ep->h->n_idle++;
	c->read_needs = EV_READ;
	conn_want(c, EV_READ);          /* the provider closing it, or junk */
	event_assign(c->timer, event_get_base(c->io), -1, 0, on_idle_expired, c);
	evtimer_add(c->timer, &idle);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg);

static bool is_ip_literal(const char *host)
{
	struct in6_addr a;

	return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct h1_conn *c = SSL_get_app_data(ssl);

	if (!c)
		return 0;
	if (c->ep->session)
		SSL_SESSION_free(c->ep->session);
	c->ep->session = sess;
	return 1;                       /* the endpoint keeps the reference */
}

/* The TLS side of a new connection: SNI and the name the certificate must
 * carry (an address for an IP literal), the endpoint's session resumed. */
static int conn_tls(struct h1_conn *c, char *err, size_t errlen)
{
	struct dt_h1_endpoint *ep = c->ep;
	bool ok;

	c->ssl = SSL_new(ep->h->ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
		snprintf(err, errlen, "TLS: out of memory");
		return -1;
	}
	SSL_set_app_data(c->ssl, c);
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ep->ip_literal)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ep->host) == 1;
	else
		ok = SSL_set_tlsext_host_name(c->ssl, ep->host) == 1 &&
		     SSL_set1_host(c->ssl, ep->host) == 1;
	if (!ok) {
		snprintf(err, errlen, "TLS: cannot set the server name");
		return -1;
	}
	if (ep->session)
		SSL_set_session(c->ssl, ep->session);
	SSL_set_connect_state(c->ssl);
	return 0;
}

/* An unmarked socket would be redirected by the hook into the proxy itself:
 * without the mark there is no connection. */
static int open_socket(struct dt_h1_endpoint *ep, char *err, size_t errlen)
{
	int one = 1;
	uint32_t mark = ep->h->mark;
	int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		snprintf(err, errlen, "SO_MARK %#x: %s", mark, strerror(errno));
		log_warn("upstream: %s", err);
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* A new connection to the endpoint's learned address, for f. */
static struct h1_conn *conn_open(struct h1_fetch *f, char *err, size_t errlen)
{
	struct dt_h1_endpoint *ep = f->ep;
	struct dt_h1 *h = ep->h;
	struct h1_conn *c = calloc(1, sizeof(*c));
	unsigned ms = h->connect_timeout_ms ? h->connect_timeout_ms : DEFAULT_CONNECT_MS;
	struct timeval tv = ms_tv(ms);

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ep = ep;
	ep->n_conns++;
	LIST_INSERT_HEAD(&h->conns, c, link);
	c->fd = open_socket(ep, err, errlen);
	if (c->fd < 0)
		goto fail;
	c->io = event_new(h->base, c->fd, 0, conn_io, c);
	c->timer = evtimer_new(h->base, on_connect_timeout, c);
	if (!c->io || !c->timer) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (ep->tls && conn_tls(c, err, errlen))
		goto fail;
	if (connect(c->fd, (struct sockaddr *)&ep->addr, ep->addr_len) && errno != EINPROGRESS)
		c->connect_errno = errno;       /* told from the loop, like a late failure */
	c->state = CONN_CONNECTING;
	attach(c, f);
	evtimer_add(c->timer, &tv);
	conn_want(c, EV_WRITE);
	if (c->connect_errno)
		event_active(c->io, EV_WRITE, 1);
	return c;
fail:
	conn_free(c);
	return NULL;
}

/* ---- fetches ------------------------------------------------------------------ */

static void fetch_free(struct h1_fetch *f)
{
	if (f->waiting)
		TAILQ_REMOVE(&f->ep->waiting, f, wait_link);
	LIST_REMOVE(f, link);
	if (f->deadline)
		event_free(f->deadline);
	dt_h1resp_free(&f->resp);
	free(f->req);
	free(f->held);
	free(f);
}

/* Tell the caller how it ended, then free the fetch. */
static void fetch_finish(struct h1_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	if (!f->cancelled) {
		f->finishing = true;
		f->ops->done(f->ctx, &f->base, e, errmsg);
	}
	fetch_free(f);
}

/* The connection of f failed with e. A request on a reused connection that
 * got no byte back met a connection the provider had closed meanwhile: it
 * goes again, on another one. */
static void conn_failed(struct h1_conn *c, enum dt_fetch_error e, const char *errmsg)
{
	struct h1_fetch *f = c->f;

	c->f = NULL;
	f->conn = NULL;
	if (e == DT_FETCH_CONNECT)
		c->ep->addr_until = 0;  /* libcurl resolves and tries every address again */
	if (e == DT_FETCH_RESET && f->reused && !f->resp.got_bytes && f->req) {
		log_debug("upstream: %s: a reused connection was closed (%s): sending again",
			  c->ep->host, errmsg);
		conn_close(c);
		next_connection(f);
		return;
	}
	log_debug("upstream: fetch failed: %s", errmsg);
	conn_close(c);
	fetch_finish(f, e, errmsg);
}

/* Find f a connection: an idle one, a new one, or a place in the queue.
 * -1 with err when a new one cannot be opened. */
static int take_connection(struct h1_fetch *f, char *err, size_t errlen)
{
	struct dt_h1_endpoint *ep = f->ep;
	long limit = ep->h->max_host_connections;
	struct h1_conn *c = TAILQ_FIRST(&ep->idle);

	if (c) {
		idle_remove(c);
		evtimer_del(c->timer);
		assign(c, f);
		return 0;
	}
	if (limit > 0 && ep->n_conns >= (unsigned long)limit) {
		TAILQ_INSERT_TAIL(&ep->waiting, f, wait_link);
		f->waiting = true;
		return 0;
	}
	return conn_open(f, err, errlen) ? 0 : -1;
}

/* The same from the loop, where a failure is the fetch's end. */
static void next_connection(struct h1_fetch *f)
{
	char err[256];

	if (take_connection(f, err, sizeof(err)))
		fetch_finish(f, DT_FETCH_CONNECT, err);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dt_h1 *h = arg;
	struct dt_h1_endpoint *ep;
	long limit = h->max_host_connections;

	(void)fd;
	(void)what;
	LIST_FOREACH(ep, &h->endpoints, link) {
		while (!TAILQ_EMPTY(&ep->waiting) &&
		       (limit <= 0 || ep->n_conns < (unsigned long)limit)) {
			struct h1_fetch *f = TAILQ_FIRST(&ep->waiting);

			TAILQ_REMOVE(&ep->waiting, f, wait_link);
			f->waiting = false;
			next_connection(f);
		}
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct h1_fetch *f = arg;
	char msg[64];

	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "timed out after %u ms", f->total_timeout_ms);
	if (f->conn) {
		f->conn->f = NULL;
		conn_close(f->conn);
		f->conn = NULL;
	}
	/* before a connection could carry the request: unreachable, not slow */
	fetch_finish(f, f->connected ? DT_FETCH_TIMEOUT : DT_FETCH_CONNECT, msg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct h1_conn *c = arg;
	char msg[64];
	unsigned ms = c->ep->h->connect_timeout_ms ? c->ep->h->connect_timeout_ms :
						     DEFAULT_CONNECT_MS;

	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "connect timed out after %u ms", ms);
	conn_failed(c, DT_FETCH_CONNECT, msg);
}

/* ---- reading the answer --------------------------------------------------------- */

static bool on_resp_head(void *ctx, int status, const struct dt_headers *h)
{
	struct h1_fetch *f = ctx;

	/* an answer started: it will not be sent again, and what the provider
	 * did not wait for stays unsent */
	f->cut_short = f->req_off < f->req_len;
	free(f->req);
	f->req = NULL;
	f->req_len = f->req_off = 0;
	f->in_callback = true;
	f->ops->head(f->ctx, &f->base, status, h);
	f->in_callback = false;
	return f->cancelled;
}

static int hold(struct h1_fetch *f, const char *buf, size_t len)
{
	char *held = realloc(f->held, f->held_len + len);

	if (!held)
		return -1;
	memcpy(held + f->held_len, buf, len);
	f->held = held;
	f->held_len += len;
	return 0;
}

static bool deliver(struct h1_fetch *f, const char *buf, size_t len)
{
	f->in_callback = true;
	f->ops->data(f->ctx, &f->base, buf, len);
	f->in_callback = false;
	return f->cancelled;
}

static bool on_resp_body(void *ctx, const char *buf, size_t len)
{
	struct h1_fetch *f = ctx;

	/* paused inside data(): the rest of this read waits for the resume */
	if (f->want_paused || f->held_len) {
		if (hold(f, buf, len)) {
			snprintf(f->resp.error, sizeof(f->resp.error), "out of memory");
			return true;
		}
		return false;
	}
	return deliver(f, buf, len);
}

static const struct dt_h1resp_ops resp_ops = { .head = on_resp_head, .body = on_resp_body };

/* The answer is complete: the connection goes back when it may carry
 * another request, and the caller is told. */
static void answer_complete(struct h1_fetch *f, bool reusable)
{
	struct h1_conn *c = f->conn;

	f->conn = NULL;
	if (reusable && !f->cut_short) {
		conn_release(c);
	} else {
		c->f = NULL;
		conn_close(c);
	}
	fetch_finish(f, DT_FETCH_OK, "");
}

/* Cancelled: the fetch goes without a word, and its connection with it
 * (in the middle of an answer, it cannot carry another request). */
static void fetch_drop(struct h1_fetch *f)
{
	struct h1_conn *c = f->conn;

	if (c) {
		c->f = NULL;
		f->conn = NULL;
		conn_close(c);
	}
	fetch_free(f);
}

/* Parse what was read; false when the fetch is over (or went elsewhere). */
static bool parse(struct h1_conn *c, const char *buf, size_t len)
{
	struct h1_fetch *f = c->f;
	size_t used;
	enum dt_h1resp_state st = dt_h1resp_feed(&f->resp, buf, len, &used);

	switch (st) {
	case DT_H1RESP_MORE:
		return true;
	case DT_H1RESP_STOPPED:
		if (f->cancelled) {
			fetch_drop(f);
			return false;
		}
		conn_failed(c, DT_FETCH_INTERNAL, f->resp.error);
		return false;
	case DT_H1RESP_COMPLETE:
		/* nothing may follow an answer we did not ask for */
		f->reusable = used == len && dt_h1resp_keep_alive(&f->resp);
		if (f->held_len) {
			busy_interest(c);       /* done() after the held bytes, on resume */
			return false;
		}
		answer_complete(f, f->reusable);
		return false;
	case DT_H1RESP_ERROR:
		break;
	}
	conn_failed(c, DT_FETCH_PROTOCOL, f->resp.error);
	return false;
}

/* The held bytes of a resumed fetch, then its end if it came meanwhile;
 * false when the fetch is over. */
static bool deliver_held(struct h1_conn *c)
{
	struct h1_fetch *f = c->f;
	char *held = f->held;
	size_t len = f->held_len;

	f->held = NULL;
	f->held_len = 0;
	if (deliver(f, held, len)) {
		free(held);
		fetch_drop(f);
		return false;
	}
	free(held);
	if (f->resp.complete) {
		answer_complete(f, f->reusable);
		return false;
	}
	return true;
}

/* Read into the shared buffer: bytes, DT_SOCKIO_WAIT, _EOF or _ERROR (msg). */
static ssize_t conn_read(struct h1_conn *c, char *msg, size_t msglen)
{
	return dt_sockio_read(c->fd, c->ssl, c->ep->h->rbuf, READ_BUFFER, &c->read_needs,
			      msg, msglen);
}

/* The provider closed the connection. */
static void conn_eof(struct h1_conn *c)
{
	struct h1_fetch *f = c->f;

	switch (dt_h1resp_eof(&f->resp)) {
	case DT_H1RESP_COMPLETE:
		if (!f->held_len)
			answer_complete(f, false);
		return;
	case DT_H1RESP_STOPPED:
		fetch_drop(f);
		return;
	default:
		conn_failed(c, DT_FETCH_RESET, f->resp.error);
	}
}

static void receive(struct h1_conn *c)
{
	char msg[160];

	while (!c->f->want_paused) {
		ssize_t n = conn_read(c, msg, sizeof(msg));

		if (n == DT_SOCKIO_WAIT)
			break;
		if (n == DT_SOCKIO_EOF) {
			conn_eof(c);
			return;
		}
		if (n == DT_SOCKIO_ERROR) {
			conn_failed(c, DT_FETCH_RESET, msg);
			return;
		}
		if (!parse(c, c->ep->h->rbuf, (size_t)n))
			return;
	}
	busy_interest(c);
}

/* ---- sending the request ----------------------------------------------------------- */

/* Returns false when the connection failed (and was handled). */
static bool send_request(struct h1_conn *c)
{
	struct h1_fetch *f = c->f;
	char msg[160];

	while (f->req_off < f->req_len) {
		ssize_t n = dt_sockio_write(c->fd, c->ssl, f->req + f->req_off,
					    f->req_len - f->req_off, &c->write_needs, msg, sizeof(msg));

		if (n == DT_SOCKIO_WAIT)
			break;
		if (n < 0) {
			conn_failed(c, DT_FETCH_RESET, msg);
			return false;
		}
		f->req_off += (size_t)n;
	}
	if (f->req_off == f->req_len)
		c->write_needs = 0;
	return true;
}

/* ---- connecting ------------------------------------------------------------------------ */

static void conn_ready(struct h1_conn *c)
{
	evtimer_del(c->timer);
	c->state = CONN_BUSY;
	c->f->connected = true;
}

/* False when the connection failed (and is gone). */
static bool handshake(struct h1_conn *c)
{
	char msg[192];
	size_t off = (size_t)snprintf(msg, sizeof(msg), "TLS handshake with %s: ", c->ep->host);
	short needs;
	int rc;

	if (off >= sizeof(msg))
		off = sizeof(msg) - 1;
	rc = dt_sockio_handshake(c->ssl, &needs, msg + off, sizeof(msg) - off);
	if (rc == 1) {
		conn_ready(c);
		return true;
	}
	if (rc == DT_SOCKIO_WAIT) {
		conn_want(c, needs);
		return true;
	}
	conn_failed(c, DT_FETCH_TLS, msg);
	return false;
}

/* False when the connection failed (and is gone). */
static bool tcp_connected(struct h1_conn *c)
{
	int err = c->connect_errno;
	socklen_t len = sizeof(err);
	char addr[INET6_ADDRSTRLEN] = "?", msg[192];
	const struct sockaddr_storage *ss = &c->ep->addr;

	if (!err && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		inet_ntop(ss->ss_family, ss->ss_family == AF_INET ?
			  (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
			  (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
			  addr, sizeof(addr));
		snprintf(msg, sizeof(msg), "connect to %s port %u: %s", addr, c->ep->port,
			 strerror(err));
		conn_failed(c, DT_FETCH_CONNECT, msg);
		return false;
	}
	if (c->ssl) {
		c->state = CONN_HANDSHAKE;
		return handshake(c);
	}
	conn_ready(c);
	return true;
}

/* Data or an end on an idle connection: it cannot carry a request. */
static void idle_event(struct h1_conn *c)
{
	char msg[160];

	if (conn_read(c, msg, sizeof(msg)) == DT_SOCKIO_WAIT) {
		conn_want(c, c->read_needs);
		return;
	}
	conn_close(c);
}

static void conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct h1_conn *c = arg;

	(void)fd;
	switch (c->state) {
	case CONN_CONNECTING:
		if (!tcp_connected(c))
			return;
		break;
	case CONN_HANDSHAKE:
		if (!handshake(c))
			return;
		break;
	case CONN_IDLE:
		idle_event(c);
		return;
	case CONN_BUSY:
		break;
	}
	if (c->state != CONN_BUSY)
		return;         /* still connecting */
	if (!send_request(c))
		return;
	if (c->f->held_len && !c->f->want_paused && !deliver_held(c))
		return;
	/* after writing, read only when told: reading at once finds nothing */
	if (what & c->read_needs)
		receive(c);
	else
		busy_interest(c);
}

/* ---- the request ------------------------------------------------------------------------ */

/* "METHOD PATH HTTP/1.1", Host, the caller's fields, Content-Length when a
 * body goes with the method, the body: one buffer, copied piece by piece
 * (no printf: this runs for every request). */
struct request_writer {
	char *p;
	size_t off, cap;        /* past cap nothing is written, only counted */
};

/* A request's bytes besides its method, path, authority, fields and body:
 * " /", " HTTP/1.1\r\nHost: ", "\r\n", the longest Content-Length line
 * and the blank line; and each field's ": " and "\r\n". */
#define REQUEST_FRAME_MAX (2 + 17 + 2 + sizeof("Content-Length: 18446744073709551615\r\n") - 1 + 2)
#define FIELD_FRAME       4

static void put(struct request_writer *w, const char *s, size_t len)
{
	bool fits = w->off <= w->cap && len <= w->cap - w->off;

	if (fits)
		memcpy(w->p + w->off, s, len);
	w->off = fits ? w->off + len : w->cap + 1;
}

static void put_str(struct request_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_uint(struct request_writer *w, size_t v)
{
	char digits[DT_DECIMAL_MAX], *d = dt_decimal(digits + sizeof(digits), v);

	put(w, d, (size_t)(digits + sizeof(digits) - d));
}

static void write_request(struct request_writer *w, const struct dt_fetch_req *req,
			  const char *path, const char *authority, bool length)
{
	size_t n = req->headers ? req->headers->n : 0;

	put_str(w, req->method);
	put(w, " /", *path == '/' ? 1 : 2);     /* "https://h?q" asks for "/?q" */
	put_str(w, path);
	put_str(w, " HTTP/1.1\r\nHost: ");
	put_str(w, authority);
	put(w, "\r\n", 2);
	for (size_t i = 0; i < n; i++) {
		const struct dt_header *h = &req->headers->v[i];

		if (dt_upstream_owned_field(h->name, h->name_len))
			continue;
		put(w, h->name, h->name_len);
		put(w, ": ", 2);
		put(w, h->value, h->value_len);
		put(w, "\r\n", 2);
	}
	if (length) {
		put_str(w, "Content-Length: ");
		put_uint(w, req->body_len);
		put(w, "\r\n", 2);
	}
	put(w, "\r\n", 2);
	if (req->body_len && length)
		put(w, req->body, req->body_len);
}

/* The request is written once into room for all of it, every field
 * counted (the few a transport writes itself are left out). */
static int build_request(struct h1_fetch *f, const struct dt_fetch_req *req, const char *path,
			 char *err, size_t errlen)
{
	size_t n = req->headers ? req->headers->n : 0;
	bool head = strcmp(req->method, "HEAD") == 0;
	bool length = !head && (strcmp(req->method, "POST") == 0 || req->body_len);
	size_t room = strlen(req->method) + strlen(path) + strlen(f->ep->authority) +
		      REQUEST_FRAME_MAX + req->body_len;
	struct request_writer w = { 0 };

	if (!*req->method || strpbrk(req->method, " \r\n") || strpbrk(path, " \r\n")) {
		snprintf(err, errlen, "%s request: bad method or path", req->method);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dt_header *h = &req->headers->v[i];

		if (!*h->name || strpbrk(h->name, "\r\n:") || strpbrk(h->value, "\r\n")) {
			snprintf(err, errlen, "%s request: a header field would split the head",
				 req->method);
			return -1;
		}
		room += h->name_len + h->value_len + FIELD_FRAME;
	}
	w.p = malloc(room);
	if (!w.p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w.cap = room;
	write_request(&w, req, path, f->ep->authority, length);
	if (w.off > w.cap) {
		free(w.p);
		snprintf(err, errlen, "%s request: larger than its room", req->method);
		return -1;
	}
	f->req_len = w.off;
	f->req = w.p;
	f->head_request = head;
	return 0;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

struct url_parts {
	bool tls;
	const char *host;
	size_t host_len;
	const char *authority;
	size_t authority_len;
	uint16_t port;
	const char *path;       /* "/..." or "?..." or "" */
};

static int split_url(const char *url, struct url_parts *u)
{
	const char *p, *end, *colon;
	unsigned long port;

	if (strncasecmp(url, "https://", 8) == 0) {
		u->tls = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		u->tls = false;
		p = url + 7;
	} else {
		return -1;
	}
	end = p + strcspn(p, "/?#");
	u->authority = p;
	u->authority_len = (size_t)(end - p);
	u->path = end;
	if (memchr(p, '@', u->authority_len) || *end == '#' || !u->authority_len)
		return -1;
	if (*p == '[') {
		const char *close = memchr(p, ']', u->authority_len);

		if (!close)
			return -1;
		u->host = p + 1;
		u->host_len = (size_t)(close - p - 1);
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		if (!colon && close + 1 != end)
			return -1;
	} else {
		colon = memchr(p, ':', u->authority_len);
		u->host = p;
		u->host_len = colon ? (size_t)(colon - p) : u->authority_len;
	}
	port = u->tls ? 443 : 80;
	if (colon) {
		char *stop;

		port = strtoul(colon + 1, &stop, 10);
		if (stop != end || colon + 1 == end || port == 0 || port > 65535)
			return -1;
	}
	u->port = (uint16_t)port;
	return u->host_len && u->host_len < 256 ? 0 : -1;
}

static struct dt_h1_endpoint *endpoint_new(struct dt_h1 *h, const char *url,
					   const struct url_parts *u)
{
	struct dt_h1_endpoint *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->h = h;
	ep->tls = u->tls;
	ep->port = u->port;
	ep->host = strndup(u->host, u->host_len);
	ep->prefix_len = (size_t)(u->path - url);
	ep->prefix = strndup(url, ep->prefix_len);
	if (!ep->host || !ep->prefix) {
		free(ep->host);
		free(ep->prefix);
		free(ep);
		return NULL;
	}
	ep->authority = ep->prefix + (u->authority - url);
	ep->ip_literal = is_ip_literal(ep->host);
	TAILQ_INIT(&ep->idle);
	TAILQ_INIT(&ep->waiting);
	LIST_INSERT_HEAD(&h->endpoints, ep, link);
	h->n_endpoints++;
	return ep;
}

/* Endpoints are one per scheme and authority, both compared
 * case-insensitively: a URL whose start is an endpoint's prefix, followed
 * by its path, is that endpoint's, and is not taken apart again (this runs
 * for every request). */
struct dt_h1_endpoint *dt_h1_endpoint(struct dt_h1 *h, const char *url, const char **path)
{
	struct url_parts u;
	struct dt_h1_endpoint *ep;

	LIST_FOREACH(ep, &h->endpoints, link) {
		const char *rest;

		if (strncasecmp(url, ep->prefix, ep->prefix_len) != 0)
			continue;
		rest = url + ep->prefix_len;
		if (*rest == '/' || *rest == '?' || *rest == '\0') {
			*path = rest;
			return ep;
		}
	}
	if (split_url(url, &u) || h->n_endpoints >= MAX_ENDPOINTS)
		return NULL;
	*path = u.path;
	return endpoint_new(h, url, &u);
}

bool dt_h1_ready(const struct dt_h1_endpoint *ep)
{
	return ep->http11 && !ep->h2 && (!TAILQ_EMPTY(&ep->idle) || now_ns() < ep->addr_until);
}

void dt_h1_learn(struct dt_h1_endpoint *ep, const char *ip, long port, bool http11)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;

	if (!http11) {
		ep->h2 = true;
		return;
	}
	if (!ip || port <= 0 || port > 65535)
		return;
	memset(&ep->addr, 0, sizeof(ep->addr));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		ep->addr_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		ep->addr_len = sizeof(*sin6);
	} else {
		return;
	}
	ep->http11 = true;
	ep->addr_until = now_ns() + ADDRESS_SECONDS * NS_PER_SEC;
}

static void endpoint_forget_sessions(struct dt_h1_endpoint *ep)
{
	if (ep->session)
		SSL_SESSION_free(ep->session);
	ep->session = NULL;
}

static void close_idle(struct dt_h1_endpoint *ep)
{
	while (!TAILQ_EMPTY(&ep->idle))
		conn_close(TAILQ_FIRST(&ep->idle));
}

/* ---- API ------------------------------------------------------------------------------------- */

struct dt_fetch *dt_h1_start(struct dt_h1_endpoint *ep, const char *path,
			     const struct dt_fetch_req *req, const struct dt_fetch_ops *ops,
			     void *ctx, char *err, size_t errlen)
{
	struct dt_h1 *h = ep->h;
	struct h1_fetch *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->base.transport = DT_TRANSPORT_H1;
	f->ep = ep;
	f->ops = ops;
	f->ctx = ctx;
	f->total_timeout_ms = req->total_timeout_ms;
	LIST_INSERT_HEAD(&h->fetches, f, link);
	dt_h1resp_init(&f->resp, false, &resp_ops, f);
	if (build_request(f, req, path, err, errlen))
		goto fail;
	if (req->total_timeout_ms) {
		struct timeval tv = ms_tv(req->total_timeout_ms);

		f->deadline = evtimer_new(h->base, on_deadline, f);
		if (!f->deadline || evtimer_add(f->deadline, &tv)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (take_connection(f, err, errlen))
		goto fail;
	return &f->base;
fail:
	fetch_free(f);
	return NULL;
}

void dt_h1_pause(struct dt_fetch *base, bool paused)
{
	struct h1_fetch *f = fetch_of(base);

	if (f->finishing || f->cancelled || f->want_paused == paused)
		return;
	f->want_paused = paused;
	if (!f->conn || f->conn->state != CONN_BUSY)
		return;
	if (paused) {
		if (!f->in_callback)    /* else when the callback returns */
			busy_interest(f->conn);
		return;
	}
	/* what is held, or already decrypted inside OpenSSL, goes on from the loop */
	event_active(f->conn->io, EV_READ | EV_WRITE, 1);
}

void dt_h1_cancel(struct dt_fetch *base)
{
	struct h1_fetch *f = fetch_of(base);

	if (f->finishing || f->cancelled)
		return;
	if (f->in_callback) {
		f->cancelled = true;    /* torn down when the callback returns */
		return;
	}
	fetch_drop(f);
}

bool dt_h1_reused(const struct dt_fetch *base)
{
	return ((const struct h1_fetch *)base)->reused;
}

static SSL_CTX *make_ctx(const struct dt_h1_trust *trust, char *err, size_t errlen)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "TLS context: out of memory");
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* the body's framing tells a truncated answer, not close_notify */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* one read() takes what the socket holds, not a record header and then
	 * its body: receive() reads until OpenSSL wants the socket again, so
	 * nothing read ahead is left waiting */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_SUITES) != 1 ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
		snprintf(err, errlen, "TLS context: cannot set the suites");
		goto fail;
	}
	/* the libcurl side's verification: intermediates in the store are
	 * anchors too (libcurl's default), trusted certificates first */
	X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx),
			     X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_TRUSTED_FIRST);
	if ((trust->file || trust->dir) &&
	    SSL_CTX_load_verify_locations(ctx, trust->file, trust->file ? NULL : trust->dir) != 1) {
		snprintf(err, errlen, "cannot load the CA bundle %s", trust->file ?: trust->dir);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int dup_str(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -1 : 0;
}

int dt_h1_set_opts(struct dt_h1 *h, const struct dt_upstream_opts *o,
		   const struct dt_h1_trust *trust, char *err, size_t errlen)
{
	bool new_trust = !h->ctx || !same_str(trust->file, h->trust_file) ||
			 !same_str(trust->dir, h->trust_dir);
	struct dt_h1_endpoint *ep;

	h->connect_timeout_ms = o->connect_timeout_ms;
	if (o->max_host_connections > 0)
		h->max_host_connections = o->max_host_connections;
	if (o->http11_only != h->http11_only) {
		/* what each endpoint spoke depended on what libcurl offered: learnt again */
		h->http11_only = o->http11_only;
		LIST_FOREACH(ep, &h->endpoints, link)
			ep->http11 = ep->h2 = false;
	}
	if (!new_trust && o->mark == h->mark)
		return 0;
	if (new_trust) {
		SSL_CTX *ctx = make_ctx(trust, err, errlen);
		char *file, *dir = NULL;

		if (!ctx)
			return -1;
		if (dup_str(trust->file, &file) || dup_str(trust->dir, &dir)) {
			free(file);
			SSL_CTX_free(ctx);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		SSL_CTX_free(h->ctx);   /* connections in use hold their own reference */
		h->ctx = ctx;
		free(h->trust_file);
		free(h->trust_dir);
		h->trust_file = file;
		h->trust_dir = dir;
	}
	h->mark = o->mark;
	/* connections and sessions made under the old trust or mark */
	LIST_FOREACH(ep, &h->endpoints, link) {
		close_idle(ep);
		if (new_trust)
			endpoint_forget_sessions(ep);
	}
	return 0;
}

struct dt_h1 *dt_h1_new(struct event_base *base, const struct dt_upstream_opts *o,
			const struct dt_h1_trust *trust, char *err, size_t errlen)
{
	struct dt_h1 *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->kick = event_new(base, -1, 0, on_kick, h);
	if (!h->kick) {
		snprintf(err, errlen, "out of memory");
		dt_h1_free(h);
		return NULL;
	}
	if (dt_h1_set_opts(h, o, trust, err, errlen)) {
		dt_h1_free(h);
		return NULL;
	}
	return h;
}

void dt_h1_free(struct dt_h1 *h)
{
	if (!h)
		return;
	while (!LIST_EMPTY(&h->fetches)) {
		struct h1_fetch *f = LIST_FIRST(&h->fetches);

		if (f->conn)
			f->conn->f = NULL;
		fetch_free(f);
	}
	while (!LIST_EMPTY(&h->conns))
		conn_free(LIST_FIRST(&h->conns));
	while (!LIST_EMPTY(&h->endpoints)) {
		struct dt_h1_endpoint *ep = LIST_FIRST(&h->endpoints);

		LIST_REMOVE(ep, link);
		endpoint_forget_sessions(ep);
		free(ep->host);
		free(ep->prefix);
		free(ep);
	}
	SSL_CTX_free(h->ctx);
	if (h->kick)
		event_free(h->kick);
	free(h->trust_file);
	free(h->trust_dir);
	free(h);
}
