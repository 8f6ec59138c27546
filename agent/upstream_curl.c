// SPDX-License-Identifier: MIT
/* The upstream client's libcurl transport; see upstream_int.h and
 * docs/upstream.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <event2/event.h>

#include "log.h"
#include "upstream_int.h"

/* Idle connections kept for reuse, all hosts together. libcurl's default
 * (4 x the transfers in progress) shrinks the pool whenever traffic dips, and
 * the next burst pays TCP and TLS handshakes again. */
#define MAX_IDLE_CONNECTIONS 256

/* One libevent event per socket libcurl asks us to watch. */
struct sock_watch {
	LIST_ENTRY(sock_watch) link;
	struct event *ev;
	short kind;        /* EV_READ | EV_WRITE it is added with, 0: not added */
};

#define SPARE_HANDLES 64
/* libcurl's smallest upload buffer: request bodies go out of it */
#define UPLOAD_BUFFER 16384L

struct dt_curl {
	struct event_base *base;
	CURLM *multi;
	CURLSH *share;             /* TLS sessions, so new connections resume */
	struct event *timer;       /* libcurl's one timeout */
	struct event *deferred;    /* work libcurl forbids inside its callbacks */
	LIST_HEAD(, curl_fetch) fetches;  /* every live fetch */
	LIST_HEAD(, sock_watch) watches;
	LIST_HEAD(, curl_fetch) trim;     /* fetches that received data: see trim_idle */
	CURL *spare[SPARE_HANDLES]; /* reset handles kept for the next fetches */
	size_t n_spare;
	char *ca_bundle;
	char *default_file, *default_dir; /* libcurl's own trust, as built */
	bool trust_file;           /* a CA file is known: no hash directory (set_trust) */
	uint32_t mark;
	unsigned connect_timeout_ms;
	bool http11_only;
	/* >0 while a fetch callback runs inside libcurl (or the deferred work
	 * walks the fetches): removals, additions and resumes wait for
	 * run_deferred then. */
	unsigned in_callback;
};

struct curl_fetch {
	struct dt_fetch base;
	struct dt_curl *u;
	LIST_ENTRY(curl_fetch) link;
	LIST_ENTRY(curl_fetch) trim_link; /* on u->trim (trim_queued) */
	CURL *easy;
	curl_off_t body_len;        /* of the request, to tell when it has all gone out */
	struct curl_slist *req_fields;
	struct dt_headers resp_fields;
	const struct dt_fetch_ops *ops;
	void *ctx;
	struct dt_h1_endpoint *learn;   /* told what the connection spoke */
	bool on_multi;     /* added to the multi handle (else waiting in run_deferred) */
	bool connected;    /* a connection was ready to carry the request */
	bool head_sent;
	bool want_paused;  /* the caller's wish */
	bool curl_paused;  /* libcurl holds the body until curl_easy_pause(CONT) */
	bool cancelled;    /* no more callbacks; freed by run_deferred */
	bool finishing;    /* inside done(): cancel and pause have nothing to do */
	bool trim_queued;
	bool upload_freed; /* the request went out: its upload buffer was freed */
	bool connect_retry; /* a connect attempt failed: run it again (next_address) */
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- fetch life cycle ------------------------------------------------------ */

static void upstream_defer(struct dt_curl *u)
{
	event_active(u->deferred, EV_TIMEOUT, 1);
}

static void fetch_link(struct dt_curl *u, struct curl_fetch *f)
{
	f->u = u;
	LIST_INSERT_HEAD(&u->fetches, f, link);
}

/* A handle and its buffers cost more to make than to reset: keep some. */
static CURL *easy_get(struct dt_curl *u)
{
	return u->n_spare ? u->spare[--u->n_spare] : curl_easy_init();
}

static void easy_put(struct dt_curl *u, CURL *e)
{
	if (!e)
		return;
	if (u->n_spare < SPARE_HANDLES) {
		curl_easy_reset(e);
		u->spare[u->n_spare++] = e;
		return;
	}
	curl_easy_cleanup(e);
}

static void fetch_destroy(struct curl_fetch *f)
{
	struct dt_curl *u = f->u;

	LIST_REMOVE(f, link);
	if (f->trim_queued)
		LIST_REMOVE(f, trim_link);
	if (f->on_multi)
		curl_multi_remove_handle(u->multi, f->easy);
	easy_put(u, f->easy);
	curl_slist_free_all(f->req_fields);
	dt_headers_free(&f->resp_fields);
	free(f);
}

static int fetch_attach(struct curl_fetch *f)
{
	if (curl_multi_add_handle(f->u->multi, f->easy) != CURLM_OK)
		return -1;
	f->on_multi = true;
	return 0;
}

/* Tell the caller how it ended, then free the fetch. */
static void fetch_finish(struct curl_fetch *f, enum dt_fetch_error e, const char *errmsg)
{
	if (!f->cancelled) {
		f->finishing = true;
		f->ops->done(f->ctx, &f->base, e, errmsg);
	}
	fetch_destroy(f);
}

static enum dt_fetch_error classify(const struct curl_fetch *f, CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return DT_FETCH_OK;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return DT_FETCH_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		/* the connect timeout, or the total one striking first, before
		 * any connection could carry the request: the provider is not
		 * reachable, which is not the same as slow */
		return f->connected ? DT_FETCH_TIMEOUT : DT_FETCH_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return DT_FETCH_TLS;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2_STREAM:
		return DT_FETCH_RESET;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
		return DT_FETCH_PROTOCOL;
	default:
		/* ours: out of memory, a bad URL or CA bundle, a callback abort */
		return DT_FETCH_INTERNAL;
	}
}

static void fetch_complete(struct curl_fetch *f, CURLcode rc)
{
	const char *errmsg = "";

	if (rc != CURLE_OK) {
		errmsg = f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc);
		log_debug("upstream: fetch failed: %s", errmsg);
	}
	fetch_finish(f, classify(f, rc), errmsg);
}

/* Every action on the multi handle may have ended transfers. */
static void check_multi_info(struct dt_curl *u)
{
	CURLMsg *msg;
	char *f;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &f);
		fetch_complete((struct curl_fetch *)f, msg->data.result);
	}
}

/*
 * Whether the whole request went out in libcurl's first send, so that its
 * upload buffer will not be read again (setting the size frees it). libcurl
 * 7.88 sends a request (head and body) in one SSL_write of up to
 * UPLOAD_BUFFER bytes, all or nothing (no SSL_MODE_ENABLE_PARTIAL_WRITE),
 * and adds what that send took to the request size; the rest, if any, goes
 * out of the buffer later, and the upload count alone cannot tell when (it
 * may count head bytes sent then). So: the first send took more than the
 * body, less than a full buffer, and all of the body is counted. Anything
 * else keeps the buffer to the end of the transfer, as before.
 */
static bool request_sent(struct curl_fetch *f)
{
	curl_off_t sent = 0;
	long first = 0;

	return f->body_len &&
	       curl_easy_getinfo(f->easy, CURLINFO_REQUEST_SIZE, &first) == CURLE_OK &&
	       first > f->body_len && first < UPLOAD_BUFFER &&
	       curl_easy_getinfo(f->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
	       sent >= f->body_len;
}

/*
 * What an open stream holds between its events. libcurl copies every HTTPS
 * request into a 16 KiB upload buffer (its minimum) and keeps it until the
 * transfer ends; OpenSSL, even with SSL_MODE_RELEASE_BUFFERS, keeps its
 * ~16 KiB read buffer after a read that found nothing (the last read of
 * every batch). Measured with heaptrack on 1,000 open streams: ~31 KB of
 * the ~96 KB per stream. Both are released once the socket has been served,
 * for the fetches that received data during it.
 */
static void trim_idle(struct dt_curl *u)
{
	while (!LIST_EMPTY(&u->trim)) {
		struct curl_fetch *f = LIST_FIRST(&u->trim);
		struct curl_tlssessioninfo *tls = NULL;

		LIST_REMOVE(f, trim_link);
		f->trim_queued = false;
		if (!f->upload_freed && request_sent(f)) {
			curl_easy_setopt(f->easy, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER);
			f->upload_freed = true;
		}
		/* frees nothing while a record is half read or written */
		if (curl_easy_getinfo(f->easy, CURLINFO_TLS_SSL_PTR, &tls) == CURLE_OK && tls &&
		    tls->backend == CURLSSLBACKEND_OPENSSL && tls->internals)
			SSL_free_buffers(tls->internals);
	}
}

/* Resuming makes libcurl deliver what it held before curl_easy_pause
 * returns: from here, never inside the caller of dt_fetch_pause. */
static void fetch_resume(struct curl_fetch *f)
{
	f->curl_paused = false;
	if (curl_easy_pause(f->easy, CURLPAUSE_CONT) != CURLE_OK)
		fetch_finish(f, DT_FETCH_INTERNAL, "cannot resume the transfer");
}

/*
 * libcurl 7.88 opens the socket for a host's next address only when it runs
 * the transfer again, and after a refused connect it asks for no such run:
 * under the socket API the transfer waits for its next timer, the happy
 * eyeballs delay or the failed attempt's own timeout (half of what is left
 * of the connect timeout while addresses of its family remain). Later
 * libcurl asks for the run itself. Changing the pause state is the public
 * call that has libcurl run one transfer at once; nothing is sent before
 * the connection is up, so pausing the sending side changes nothing else.
 */
static void next_address(struct curl_fetch *f)
{
	int held = f->curl_paused ? CURLPAUSE_RECV : CURLPAUSE_CONT;

	f->connect_retry = false;
	if (curl_easy_pause(f->easy, held | CURLPAUSE_SEND) == CURLE_OK)
		curl_easy_pause(f->easy, held);
}

/* A fetch started inside a callback joins the multi handle here. */
static void fetch_attach_late(struct curl_fetch *f)
{
	if (fetch_attach(f))
		fetch_finish(f, DT_FETCH_INTERNAL, "cannot add the transfer");
}

static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct dt_curl *u = arg;
	struct curl_fetch *f, *next;

	(void)fd;
	(void)what;
	/* callbacks run below (data on resume, done on failure) only flag
	 * what they cancel or start, so next stays valid */
	u->in_callback++;
	for (f = LIST_FIRST(&u->fetches); f; f = next) {
		next = LIST_NEXT(f, link);
		if (f->cancelled)
			fetch_destroy(f);
		else if (!f->on_multi)
			fetch_attach_late(f);
		else if (f->curl_paused && !f->want_paused)
			fetch_resume(f);
		else if (f->connect_retry)
			next_address(f);
	}
	u->in_callback--;
	check_multi_info(u);
	trim_idle(u);
}

/* ---- libcurl callbacks ---------------------------------------------------- */

/* An unmarked socket would be redirected by the hook into the proxy itself:
 * failing the connect is the only safe answer. */
static int on_curl_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct dt_curl *u = arg;

	(void)purpose;
	if (u->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &u->mark, sizeof(u->mark))) {
		log_warn("upstream: SO_MARK %#x: %s", u->mark, strerror(errno));
		return CURL_SOCKOPT_ERROR;
	}
	return CURL_SOCKOPT_OK;
}

/* Called once a connection (new or reused) is ready for the request. */
static int on_curl_prereq(void *arg, char *primary_ip, char *local_ip,
			  int primary_port, int local_port)
{
	struct curl_fetch *f = arg;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	f->connected = true;
	return CURL_PREREQFUNC_OK;
}

/* The own client learns where this endpoint is and what it speaks. */
static void learn(struct curl_fetch *f)
{
	char *ip = NULL;
	long port = 0, version = 0;

	if (!f->learn ||
	    curl_easy_getinfo(f->easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
	    curl_easy_getinfo(f->easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK ||
	    curl_easy_getinfo(f->easy, CURLINFO_PRIMARY_PORT, &port) != CURLE_OK)
		return;
	if (version == CURL_HTTP_VERSION_1_1 || version == CURL_HTTP_VERSION_2_0)
		dt_h1_learn(f->learn, ip, port, version == CURL_HTTP_VERSION_1_1);
}

static void header_end(struct curl_fetch *f)
{
	long status = 0;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200) {
		/* interim (100, 103): the final response's fields follow */
		dt_headers_free(&f->resp_fields);
		return;
	}
	f->head_sent = true;
	learn(f);
	f->u->in_callback++;
	f->ops->head(f->ctx, &f->base, (int)status, &f->resp_fields);
	f->u->in_callback--;
	/* the caller copied what it keeps: an open stream does not hold them */
	dt_headers_free(&f->resp_fields);
}

/* "Name: value\r\n" into the response fields; 0 or -ENOMEM. */
static int header_field(struct curl_fetch *f, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *value, *end = line + len;

	/* obs-fold continuations (RFC 9112 5.2) are obsolete and dropped */
	if (!colon || colon == line)
		return 0;
	value = colon + 1;
	while (value < end && (*value == ' ' || *value == '\t'))
		value++;
	while (end > value && (end[-1] == '\r' || end[-1] == '\n' ||
			       end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return dt_headers_add(&f->resp_fields, line, (size_t)(colon - line),
			      value, (size_t)(end - value));
}

static size_t on_curl_header(char *line, size_t size, size_t n, void *arg)
{
	struct curl_fetch *f = arg;
	size_t len = size * n;

	if (f->cancelled)
		return 0;
	if (f->head_sent)
		return len;                     /* trailers: not part of the head */
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		dt_headers_free(&f->resp_fields);  /* a new (final or interim) response */
		return len;
	}
	if (line[0] == '\r' || line[0] == '\n') {
		header_end(f);
		return f->cancelled ? 0 : len;
	}
	return header_field(f, line, len) ? 0 : len;
}

static size_t on_curl_body(char *buf, size_t size, size_t n, void *arg)
{
	struct curl_fetch *f = arg;
	size_t len = size * n;

	if (f->cancelled)
		return 0;       /* a short count aborts the transfer at once */
	if (f->want_paused) {
		/* libcurl keeps this chunk and hands it over again on resume */
		f->curl_paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (!f->trim_queued) {
		f->trim_queued = true;
		LIST_INSERT_HEAD(&f->u->trim, f, trim_link);
	}
	f->u->in_callback++;
	f->ops->data(f->ctx, &f->base, buf, len);
	f->u->in_callback--;
	/* pausing inside data() takes effect at the next chunk: this one was
	 * consumed, and a pause return would make libcurl deliver it twice */
	return f->cancelled ? 0 : len;
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dt_curl *u = arg;
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
		    (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(u->multi, fd, flags, &running);
	check_multi_info(u);
	trim_idle(u);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dt_curl *u = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(u);
	trim_idle(u);
}

static struct sock_watch *watch_new(struct dt_curl *u, curl_socket_t s)
{
	struct sock_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->ev = event_new(u->base, s, 0, on_socket_ready, u);
	if (!w->ev) {
		free(w);
		return NULL;
	}
	LIST_INSERT_HEAD(&u->watches, w, link);
	return w;
}

static void watch_free(struct sock_watch *w)
{
	LIST_REMOVE(w, link);
	event_free(w->ev);
	free(w);
}

/* A socket closed before its fetch connected: an attempt failed, and the
 * host may have addresses left to try (next_address). */
static void connect_attempt_closed(struct dt_curl *u, CURL *easy)
{
	char *f = NULL;

	if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &f) != CURLE_OK || !f ||
	    ((struct curl_fetch *)f)->connected)
		return;
	((struct curl_fetch *)f)->connect_retry = true;
	upstream_defer(u);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct dt_curl *u = arg;
	struct sock_watch *w = sockp;
	short kind = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	if (what == CURL_POLL_REMOVE) {
		if (w)
			watch_free(w);
		connect_attempt_closed(u, easy);
		return 0;
	}
	if (!w) {
		w = watch_new(u, s);
		if (!w)
			return -1;      /* libcurl fails the transfers on this socket */
		curl_multi_assign(u->multi, s, w);
	}
	/* libcurl repeats its wish for every transfer on a connection; each
	 * change costs two epoll_ctl calls (delete, add) */
	if (kind == w->kind)
		return 0;
	event_del(w->ev);
	w->kind = 0;
	event_assign(w->ev, u->base, s, kind | EV_PERSIST, on_socket_ready, u);
	if (event_add(w->ev, NULL))
		return -1;
	w->kind = kind;
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct dt_curl *u = arg;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(u->timer);
	/* 0 means "now", but socket_action may not be called from here */
	return evtimer_add(u->timer, &tv);
}

/* ---- the request ------------------------------------------------------------ */

static int append_line(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (!l)
		return -1;
	*list = l;
	return 0;
}

static int append_field(struct curl_slist **list, const struct dt_header *h)
{
	char *line;
	int rc;

	/* "Name;" is libcurl's spelling of an empty value: "Name:" deletes */
	if (asprintf(&line, "%s%s%s", h->name, h->value[0] ? ": " : ";", h->value) < 0)
		return -1;
	rc = append_line(list, line);
	free(line);
	return rc;
}

/* The caller's fields as libcurl must send them; NULL when out of memory. */
static struct curl_slist *request_fields(const struct dt_headers *given)
{
	/* libcurl adds these on its own unless told "Name:" (no such field) */
	static const char *const curl_defaults[] = { "Accept", "Content-Type" };
	struct curl_slist *list = NULL;
	size_t n = given ? given->n : 0;

	for (size_t i = 0; i < n; i++)
		if (!dt_upstream_owned_field(given->v[i].name, given->v[i].name_len) && append_field(&list, &given->v[i]))
			goto fail;
	for (size_t i = 0; i < sizeof(curl_defaults) / sizeof(curl_defaults[0]); i++) {
		char line[32];

		if (given && dt_headers_get(given, curl_defaults[i]))
			continue;
		snprintf(line, sizeof(line), "%s:", curl_defaults[i]);
		if (append_line(&list, line))
			goto fail;
	}
	/* libcurl would send "Expect: 100-continue" with large bodies and wait
	 * up to a second for an interim answer few providers send */
	if (append_line(&list, "Expect:"))
		goto fail;
	return list;
fail:
	curl_slist_free_all(list);
	return NULL;
}

static CURLcode set_method(CURL *e, const struct dt_fetch_req *req)
{
	bool post = strcmp(req->method, "POST") == 0;
	CURLcode rc;

	if (strcmp(req->method, "HEAD") == 0)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (post || req->body_len) {
		/* copied: the body need not outlive dt_fetch_start */
		rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
					      req->body_len ? req->body : "");
		if (rc != CURLE_OK || post)
			return rc;
	} else if (strcmp(req->method, "GET") == 0) {
		return CURLE_OK;
	}
	return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
}

static CURLcode on_curl_ssl_ctx(CURL *e, void *ssl_ctx, void *arg)
{
	(void)e;
	(void)arg;
	SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	return CURLE_OK;
}

/* Forward secrecy and AEAD only: what every provider's TLS 1.2 offers. */
#define TLS12_SUITES "ECDHE+AESGCM:ECDHE+CHACHA20"

/* How long libcurl keeps a CA store it built, so that changes to the file are
 * seen without a restart. */
#define CA_CACHE_SECONDS 600L

/*
 * Trust comes from one PEM file, the configured bundle or libcurl's default
 * one, and not also from a hash directory (Debian's libcurl adds
 * /etc/ssl/certs, whose certificates are those of its bundle). libcurl builds
 * the store of a file-only configuration once per multi handle and shares it;
 * with a directory it parses the whole file again for each new connection, on
 * the event loop, and each connection holds its own copy.
 */
static CURLcode set_trust(CURL *e, const struct dt_curl *u)
{
	CURLcode rc;

	if (u->ca_bundle && (rc = curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_bundle)))
		return rc;
	if (!u->trust_file)
		return CURLE_OK;
	if ((rc = curl_easy_setopt(e, CURLOPT_CAPATH, NULL)))
		return rc;
	return curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, CA_CACHE_SECONDS);
}

static int dup_info(CURL *e, CURLINFO what, char **out)
{
	char *s = NULL;

	*out = NULL;
	if (curl_easy_getinfo(e, what, &s) != CURLE_OK || !s || !*s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -1;
}

/* The CA file and directory libcurl was built to trust. */
static int default_trust(struct dt_curl *u)
{
	CURL *e = curl_easy_init();
	int rc;

	if (!e)
		return -1;
	rc = dup_info(e, CURLINFO_CAINFO, &u->default_file) ||
	     dup_info(e, CURLINFO_CAPATH, &u->default_dir) ? -1 : 0;
	curl_easy_cleanup(e);
	return rc;
}

const char *dt_curl_default_ca_file(const struct dt_curl *u)
{
	return u->default_file;
}

const char *dt_curl_default_ca_dir(const struct dt_curl *u)
{
	return u->default_dir;
}

/* The transport policy, the same for every fetch. */
static CURLcode set_transport(CURL *e, const struct dt_curl *u)
{
	CURLcode rc;

	/* HTTP/2 through ALPN where offered (unless only HTTP/1.1 is wanted);
	 * HTTP/1.1 on plain http:// and with a libcurl built without HTTP/2 */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, u->http11_only ? (long)CURL_HTTP_VERSION_1_1 :
			 (long)CURL_HTTP_VERSION_2TLS);
	if ((rc = curl_easy_setopt(e, CURLOPT_SHARE, u->share)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)) ||
	    /* an http_proxy in the agent's environment must not see provider traffic */
	    (rc = curl_easy_setopt(e, CURLOPT_PROXY, "")) ||
	    (rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")) ||
	    /* a redirect is the provider's answer, for the caller to judge */
	    (rc = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_curl_sockopt)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, u)))
		return rc;
	if ((rc = set_trust(e, u)))
		return rc;
	/* What an open stream keeps counts: no idle TLS buffers, request
	 * bodies out of a 16 KiB buffer (not the 64 KiB default), a 4 KiB
	 * receive buffer (an answer arrives in small events; libcurl 7.88's
	 * HTTP/2 streams stall with its 1 KiB minimum), and only the TLS 1.2 suites a provider may pick (libcurl's default,
	 * "ALL" but the weakest, makes every connection's SSL_CTX hold lists of
	 * over a hundred; TLS 1.3 suites are not affected). */
	if ((rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_curl_ssl_ctx)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, TLS12_SUITES)))
		return rc;
	if (u->connect_timeout_ms)
		return curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->connect_timeout_ms);
	return CURLE_OK;
}

/* No CURLOPT_ACCEPT_ENCODING: bodies reach the caller as the provider
 * encoded them, to be relayed as they are. */
static CURLcode set_request(struct curl_fetch *f, const struct dt_fetch_req *req)
{
	CURL *e = f->easy;
	CURLcode rc;

	if ((rc = curl_easy_setopt(e, CURLOPT_URL, req->url)) ||
	    (rc = set_method(e, req)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->req_fields)))
		return rc;
	if (req->total_timeout_ms)
		return curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->total_timeout_ms);
	return CURLE_OK;
}

static CURLcode set_callbacks(struct curl_fetch *f)
{
	CURL *e = f->easy;
	CURLcode rc;

	if ((rc = curl_easy_setopt(e, CURLOPT_PRIVATE, f)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_curl_prereq)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_PREREQDATA, f)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, f)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_body)) ||
	    (rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, f)))
		return rc;
	return CURLE_OK;
}

/* ---- API ---------------------------------------------------------------------- */

static struct curl_fetch *fetch_of(struct dt_fetch *f)
{
	return (struct curl_fetch *)f;
}

struct dt_fetch *dt_curl_start(struct dt_curl *u, const struct dt_fetch_req *req,
			       const struct dt_fetch_ops *ops, void *ctx,
			       struct dt_h1_endpoint *learn, char *err, size_t errlen)
{
	struct curl_fetch *f = calloc(1, sizeof(*f));
	CURLcode rc;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fetch_link(u, f);
	f->base.transport = DT_TRANSPORT_CURL;
	f->ops = ops;
	f->ctx = ctx;
	f->learn = learn;
	f->body_len = (curl_off_t)req->body_len;
	f->easy = easy_get(u);
	f->req_fields = request_fields(req->headers);
	if (!f->easy || !f->req_fields) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = set_transport(f->easy, u)) || (rc = set_request(f, req)) ||
	    (rc = set_callbacks(f))) {
		/* not the URL: some providers take their key in the query */
		snprintf(err, errlen, "%s request: %s", req->method, curl_easy_strerror(rc));
		goto fail;
	}
	if (u->in_callback) {
		upstream_defer(u);      /* libcurl refuses new handles inside its callbacks */
		return &f->base;
	}
	if (fetch_attach(f)) {
		snprintf(err, errlen, "%s request: cannot add the transfer", req->method);
		goto fail;
	}
	return &f->base;
fail:
	fetch_destroy(f);
	return NULL;
}

void dt_curl_pause(struct dt_fetch *base, bool paused)
{
	struct curl_fetch *f = fetch_of(base);

	if (f->finishing || f->cancelled || f->want_paused == paused)
		return;
	f->want_paused = paused;
	if (!paused) {
		if (f->curl_paused)
			upstream_defer(f->u);
		return;
	}
	/* Outside libcurl, stop reading the socket now. Inside a callback
	 * (or if this fails) the next body chunk is answered with
	 * CURL_WRITEFUNC_PAUSE, and libcurl holds it. */
	if (!f->u->in_callback && f->on_multi &&
	    curl_easy_pause(f->easy, CURLPAUSE_RECV) == CURLE_OK)
		f->curl_paused = true;
}

void dt_curl_cancel(struct dt_fetch *base)
{
	struct curl_fetch *f = fetch_of(base);

	if (f->finishing || f->cancelled)
		return;
	if (f->u->in_callback) {
		/* removing a handle inside a libcurl callback is not allowed */
		f->cancelled = true;
		upstream_defer(f->u);
		return;
	}
	fetch_destroy(f);
}

bool dt_curl_reused(const struct dt_fetch *base)
{
	const struct curl_fetch *f = (const struct curl_fetch *)base;
	long new_connections = 0;

	if (!f->connected)
		return false;
	curl_easy_getinfo(f->easy, CURLINFO_NUM_CONNECTS, &new_connections);
	return new_connections == 0;
}

int dt_curl_set_opts(struct dt_curl *u, const struct dt_upstream_opts *o)
{
	char *bundle = NULL;

	if (o->ca_bundle && !(bundle = strdup(o->ca_bundle)))
		return -1;
	free(u->ca_bundle);
	u->ca_bundle = bundle;
	u->trust_file = bundle || u->default_file;
	u->mark = o->mark;
	u->connect_timeout_ms = o->connect_timeout_ms;
	u->http11_only = o->http11_only;
	if (o->max_host_connections > 0 &&
	    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_host_connections))
		return -1;
	return 0;
}

static int upstream_setup(struct dt_curl *u, const struct dt_upstream_opts *o)
{
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	u->timer = evtimer_new(u->base, on_timer, u);
	u->deferred = event_new(u->base, -1, 0, run_deferred, u);
	if (!u->multi || !u->share || !u->timer || !u->deferred || default_trust(u))
		return -1;
	if (curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) ||
	    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) ||
	    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u) ||
	    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) ||
	    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u) ||
	    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) ||
	    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)MAX_IDLE_CONNECTIONS))
		return -1;
	return dt_curl_set_opts(u, o);
}

struct dt_curl *dt_curl_new(struct event_base *base, const struct dt_upstream_opts *o)
{
	struct dt_curl *u;

	/* reference-counted, and thread-safe in this libcurl ("threadsafe") */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		curl_global_cleanup();
		return NULL;
	}
	u->base = base;
	if (upstream_setup(u, o)) {
		dt_curl_free(u);
		return NULL;
	}
	return u;
}

void dt_curl_free(struct dt_curl *u)
{
	if (!u)
		return;
	while (!LIST_EMPTY(&u->fetches))
		fetch_destroy(LIST_FIRST(&u->fetches));
	while (u->n_spare)
		curl_easy_cleanup(u->spare[--u->n_spare]);
	/* closes the pooled connections; may still call on_curl_socket/timer */
	if (u->multi)
		curl_multi_cleanup(u->multi);
	/* sockets whose removal libcurl never reported */
	while (!LIST_EMPTY(&u->watches))
		watch_free(LIST_FIRST(&u->watches));
	if (u->share)
		curl_share_cleanup(u->share);
	if (u->timer)
		event_free(u->timer);
	if (u->deferred)
		event_free(u->deferred);
	free(u->ca_bundle);
	free(u->default_file);
	free(u->default_dir);
	free(u);
	curl_global_cleanup();
}
