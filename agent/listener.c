// SPDX-License-Identifier: MIT
/* The proxy's listeners; see listener.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <event2/listener.h>

#include "intercept.h"
#include "listener.h"

#define LISTEN_BACKLOG 1024

struct dt_listener {
	struct evconnlistener *sockets[2];
	dt_accept_fn accepted;
	void *ctx;
};

void dt_socket_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_accept(struct evconnlistener *el, evutil_socket_t fd,
		      struct sockaddr *peer, int peer_len, void *arg)
{
	struct dt_listener *l = arg;
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);

	(void)el;
	(void)peer_len;
	if (getsockname(fd, (struct sockaddr *)&local, &local_len)) {
		close(fd);
		return;
	}
	dt_socket_nodelay(fd);
	l->accepted(l->ctx, fd, peer, (struct sockaddr *)&local);
}

static struct evconnlistener *listen_on(struct event_base *base, struct dt_listener *l,
					const struct sockaddr *sa, socklen_t len,
					char *err, size_t errlen)
{
	struct evconnlistener *el;
	int one = 1, fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* the IPv4 listener serves IPv4-mapped clients; keep the v6 one to v6 */
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto fail;
	if (bind(fd, sa, len) || listen(fd, LISTEN_BACKLOG))
		goto fail;
	el = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (el)
		return el;
fail:
	{
		int saved = errno;
		struct dt_endpoint ep;
		char buf[DT_ENDPOINT_STRLEN];

		dt_endpoint_from_sockaddr(&ep, sa);
		snprintf(err, errlen, "listen on %s: %s",
			 dt_endpoint_str(&ep, buf, sizeof(buf)), strerror(saved));
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* A listener on each of n (at most 2) addresses, all or none. */
static struct dt_listener *listener_on(struct event_base *base, const struct sockaddr *const *sa,
				       const socklen_t *len, size_t n, dt_accept_fn accepted,
				       void *ctx, char *err, size_t errlen)
{
	struct dt_listener *l = calloc(1, sizeof(*l));

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->accepted = accepted;
	l->ctx = ctx;
	for (size_t i = 0; i < n; i++) {
		l->sockets[i] = listen_on(base, l, sa[i], len[i], err, errlen);
		if (!l->sockets[i]) {
			dt_listener_free(l);
			return NULL;
		}
	}
	return l;
}

struct dt_listener *dt_listener_new(struct event_base *base, struct in_addr listen4,
				    struct in6_addr listen6, uint16_t port,
				    dt_accept_fn accepted, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = listen4,
				   .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = listen6,
				     .sin6_port = htons(port) };
	const struct sockaddr *sa[] = { (struct sockaddr *)&sin, (struct sockaddr *)&sin6 };
	const socklen_t len[] = { sizeof(sin), sizeof(sin6) };

	return listener_on(base, sa, len, 2, accepted, ctx, err, errlen);
}

struct dt_listener *dt_listener_new_at(struct event_base *base, const struct sockaddr *sa,
				       socklen_t len, dt_accept_fn accepted, void *ctx,
				       char *err, size_t errlen)
{
	return listener_on(base, &sa, &len, 1, accepted, ctx, err, errlen);
}

void dt_listener_free(struct dt_listener *l)
{
	if (!l)
		return;
	for (int i = 0; i < 2; i++)
		if (l->sockets[i])
			evconnlistener_free(l->sockets[i]);
	free(l);
}
