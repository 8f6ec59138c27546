/* SPDX-License-Identifier: MIT */
/*
 * Listeners, accepted sockets and TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "fakellm.h"

/* Fails the handshake of connections accepted during a tls_fail fault: the
 * client gets a fatal handshake_failure alert instead of a ServerHello. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct fl_conn *c = SSL_get_app_data(ssl);

	(void)arg;
	if (c && c->tls_fail) {
		*alert = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

int fl_server_tls(struct fl_server *srv, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
	srv->tls = ctx;
	return 0;
fail:
	fprintf(stderr, "fakellm: TLS setup with %s and %s failed: %s\n", cert, key,
		ERR_reason_error_string(ERR_get_error()));
	SSL_CTX_free(ctx);
	return -1;
}

static void tune_socket(evutil_socket_t fd)
{
	int one = 1;

	/* Streamed tokens must leave at once, not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct fl_server *srv = arg;
	bool admin = l == srv->admin;
	struct fl_fault taken;
	struct bufferevent *bev;
	struct fl_conn *c;
	SSL *ssl = NULL;

	(void)sa;
	(void)salen;
	tune_socket(fd);
	if (!admin && srv->tls) {
		ssl = SSL_new(srv->tls);
		if (!ssl) {
			close(fd);
			return;
		}
		bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (bev)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev) {
		/* Whether libevent 2.1 frees ssl when this fails differs between
		 * releases: leaking it on out-of-memory beats a double free. */
		close(fd);
		return;
	}
	c = fl_conn_new(srv, bev, admin);
	if (!c) {
		bufferevent_free(bev);
		return;
	}
	if (admin)
		return;
	srv->stats.connections++;
	if (ssl) {
		SSL_set_app_data(ssl, c);
		if (fl_fault_take(&srv->fault, FL_FAULT_ON_TLS, &taken)) {
			c->tls_fail = true;
			srv->stats.tls_failures++;
		}
	}
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct fl_server *srv = arg;

	(void)l;
	/* Out of descriptors: keep running, the next accept may succeed. */
	if (!srv->quiet)
		fprintf(stderr, "fakellm: accept: %s\n", strerror(errno));
}

static void print_bound(struct evconnlistener *l, bool admin, bool tls)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		fprintf(stderr, "fakellm: listening on %s:%u (%s)\n", host, port,
			admin ? "admin" : tls ? "tls" : "plain");
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		fprintf(stderr, "fakellm: listening on [%s]:%u (%s)\n", host, port,
			admin ? "admin" : tls ? "tls" : "plain");
	}
}

/* "a.b.c.d:port" or "[v6]:port"; port 0 lets the kernel choose (the bound
 * port is printed), which evutil_parse_sockaddr_port refuses. */
static int parse_address(const char *text, struct sockaddr_storage *ss, int *len)
{
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN];
	size_t host_len;
	unsigned long port;
	char *end;

	if (!colon || colon[1] == '\0')
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		return -1;
	host_len = (size_t)(colon - text);
	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (host_len < 3 || text[host_len - 1] != ']' || host_len - 2 >= sizeof(host))
			return -1;
		memcpy(host, text + 1, host_len - 2);
		host[host_len - 2] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (host_len >= sizeof(host))
			return -1;
		memcpy(host, text, host_len);
		host[host_len] = '\0';
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
	}
}

/* A listening socket on ss; NULL (errno set) when it cannot be bound. */
static struct evconnlistener *bind_listener(struct fl_server *srv, const struct sockaddr_storage *ss,
					    int len)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	struct evconnlistener *l;

	/* [::]:P must not take 0.0.0.0:P too: both may be asked for. */
	if (ss->ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	l = evconnlistener_new_bind(srv->base, accept_cb, srv, flags, 1024,
				    (const struct sockaddr *)ss, len);
	if (l)
		evconnlistener_set_error_cb(l, accept_error_cb);
	return l;
}

int fl_server_listen(struct fl_server *srv, const char *addr, bool admin)
{
	struct sockaddr_storage ss;
	int len = 0;
	struct evconnlistener *l;
	size_t i = srv->n_listeners;

	if (!admin && i == FL_MAX_LISTENERS) {
		fprintf(stderr, "fakellm: at most %d --listen\n", FL_MAX_LISTENERS);
		return -1;
	}
	if (parse_address(addr, &ss, &len) != 0) {
		fprintf(stderr, "fakellm: %s: expected IPv4:PORT or [IPv6]:PORT\n", addr);
		return -1;
	}
	l = bind_listener(srv, &ss, len);
	if (!l) {
		fprintf(stderr, "fakellm: cannot listen on %s: %s\n", addr, strerror(errno));
		return -1;
	}
	if (admin) {
		srv->admin = l;
	} else {
		/* Port 0 is bound again on the port the kernel chose. */
		socklen_t bound = sizeof(srv->listen_addr[i]);

		if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&srv->listen_addr[i],
				&bound) != 0) {
			srv->listen_addr[i] = ss;
			bound = (socklen_t)len;
		}
		srv->listen_addr_len[i] = (int)bound;
		srv->listeners[srv->n_listeners++] = l;
	}
	if (!srv->quiet)
		print_bound(l, admin, srv->tls != NULL);
	return 0;
}

/* Closes the --listen sockets and the provider connections: connects are
 * refused and kept-alive clients see their connection end, as when a
 * provider's process dies. */
static void refuse(struct fl_server *srv)
{
	struct fl_conn *c = srv->conns, *next;
	size_t i;

	for (i = 0; i < srv->n_listeners; i++) {
		if (srv->listeners[i])
			evconnlistener_free(srv->listeners[i]);
		srv->listeners[i] = NULL;
	}
	for (; c; c = next) {
		next = c->next;
		if (!c->admin)
			fl_conn_free(c);
	}
}

/* Binds the closed --listen sockets again; -1 if one cannot be. */
static int accept_again(struct fl_server *srv)
{
	size_t i;

	for (i = 0; i < srv->n_listeners; i++) {
		if (srv->listeners[i])
			continue;
		srv->listeners[i] = bind_listener(srv, &srv->listen_addr[i], srv->listen_addr_len[i]);
		if (!srv->listeners[i]) {
			fprintf(stderr, "fakellm: %s: cannot listen again: %s\n", srv->name,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

int fl_server_set_fault(struct fl_server *srv, const struct fl_fault *fault)
{
	bool refusing = srv->fault.mode == FL_FAULT_REFUSE;

	if (fault->mode == FL_FAULT_REFUSE && !refusing)
		refuse(srv);
	else if (fault->mode != FL_FAULT_REFUSE && refusing && accept_again(srv) != 0)
		return -1;
	srv->fault = *fault;
	return 0;
}

void fl_server_close(struct fl_server *srv)
{
	size_t i;

	while (srv->conns)
		fl_conn_free(srv->conns);
	for (i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i])
			evconnlistener_free(srv->listeners[i]);
	srv->n_listeners = 0;
	if (srv->admin)
		evconnlistener_free(srv->admin);
	srv->admin = NULL;
	SSL_CTX_free(srv->tls);
	srv->tls = NULL;
}
