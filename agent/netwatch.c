// SPDX-License-Identifier: MIT
/* Route and link changes of provider endpoints; see netwatch.h. */
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/rtnetlink.h>
#include <event2/event.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>

#include "intercept.h"
#include "log.h"
#include "netwatch.h"

#define DEBOUNCE_MS_DEFAULT 5
#define RETRY_MS            100        /* after a pass that could not ask the kernel */
#define EVENT_RCVBUF        (1 << 20)  /* a link flap on a host with many routes sends thousands */

struct route {
	bool routed;
	int oif;
	uint8_t gw[16];       /* all 0: directly connected */
};

struct watched {
	struct dt_endpoint ep;
	bool known;           /* looked up at least once: there is something to compare */
	struct route route;
	int link_oif;         /* the interface it goes out of, or last went out of */
	bool link_up;
};

struct dt_netwatch {
	dt_netwatch_fn cb;
	void *ctx;
	struct timeval debounce;
	uint32_t mark;
	struct nl_sock *events;   /* subscribed, non-blocking, on the loop */
	struct nl_cb *event_cb;   /* the events socket's own, for nl_recvmsgs_report */
	struct nl_sock *query;    /* blocking requests and their answers */
	struct nl_cb *route_cb;   /* answers to RTM_GETROUTE */
	struct nl_cache *links;
	struct event *readable, *timer;
	uint64_t seen_ns;         /* first message of the pending burst; 0: none pending */
	struct watched *eps;
	size_t n;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- one endpoint's route and link, as the kernel says now --------------- */

struct answer {
	bool answered;
	struct route route;
};

static void copy_addr(uint8_t gw[16], const void *addr, int len)
{
	if (len > 0)
		memcpy(gw, addr, len < 16 ? (size_t)len : 16);
}

static void gateway_of(struct nlattr **tb, uint8_t gw[16])
{
	if (tb[RTA_GATEWAY]) {
		copy_addr(gw, nla_data(tb[RTA_GATEWAY]), nla_len(tb[RTA_GATEWAY]));
	} else if (tb[RTA_VIA]) { /* an IPv4 route through an IPv6 neighbour */
		const struct rtvia *via = nla_data(tb[RTA_VIA]);

		copy_addr(gw, via->rtvia_addr, nla_len(tb[RTA_VIA]) - (int)sizeof(via->rtvia_family));
	}
}

static int on_route(struct nl_msg *msg, void *arg)
{
	struct answer *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	const struct rtmsg *rtm = nlmsg_data(h);
	struct nlattr *tb[RTA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWROUTE || nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, NULL) < 0)
		return NL_SKIP;
	a->answered = true;
	/* older kernels answer an IPv6 lookup with the unreachable route itself */
	a->route.routed = rtm->rtm_type == RTN_UNICAST || rtm->rtm_type == RTN_LOCAL;
	if (a->route.routed && tb[RTA_OIF])
		a->route.oif = (int)nla_get_u32(tb[RTA_OIF]);
	if (a->route.routed)
		gateway_of(tb, a->route.gw);
	return NL_STOP;
}

/* The kernel's "no route": ENETUNREACH, EHOSTUNREACH (unreachable), EACCES
 * (prohibit), EINVAL (blackhole). */
static int on_no_route(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct answer *a = arg;

	(void)nla;
	(void)e;
	a->answered = true;
	return NL_STOP;
}

static struct nl_msg *route_request(const struct dt_endpoint *ep, uint32_t mark)
{
	bool v4 = dt_endpoint_is_v4(ep);
	struct rtmsg rtm = {
		.rtm_family = v4 ? AF_INET : AF_INET6,
		.rtm_dst_len = v4 ? 32 : 128,
	};
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETROUTE, 0);

	if (!msg)
		return NULL;
	if (nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, RTA_DST, v4 ? 4 : 16, v4 ? (const void *)&ep->addr[3] : ep->addr) < 0 ||
	    (mark && nla_put_u32(msg, RTA_MARK, mark) < 0)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* The route a connect to ep would take. -1 when the kernel could not be
 * asked (not "no route": that is an answer). */
static int lookup_route(struct dt_netwatch *w, const struct dt_endpoint *ep, struct route *out)
{
	struct answer a = { 0 };
	struct nl_msg *msg = route_request(ep, w->mark);

	if (!msg)
		return -1;
	nl_cb_set(w->route_cb, NL_CB_VALID, NL_CB_CUSTOM, on_route, &a);
	nl_cb_err(w->route_cb, NL_CB_CUSTOM, on_no_route, &a);
	if (nl_send_auto(w->query, msg) >= 0)
		nl_recvmsgs(w->query, w->route_cb);
	nlmsg_free(msg);
	if (!a.answered)
		return -1;
	*out = a.route;
	return 0;
}

/* Up and running: administratively up, with a carrier, not dormant. A
 * vanished interface is down. */
static bool link_running(struct nl_cache *links, int ifindex)
{
	struct rtnl_link *l = ifindex ? rtnl_link_get(links, ifindex) : NULL;
	bool running;

	if (!l)
		return false;
	running = (rtnl_link_get_flags(l) & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
	rtnl_link_put(l);
	return running;
}

/* What is true of was's endpoint now; the link cache must be fresh. */
static int observe(struct dt_netwatch *w, const struct watched *was, struct watched *now)
{
	memset(now, 0, sizeof(*now));
	now->ep = was->ep;
	if (lookup_route(w, &was->ep, &now->route) < 0)
		return -1;
	now->known = true;
	now->link_oif = now->route.routed ? now->route.oif : was->link_oif;
	now->link_up = link_running(w->links, now->link_oif);
	return 0;
}

/* A failed lookup may leave its answer queued, where the next request would
 * take it for its own: requests are answered within send(), so it is there
 * now. */
static void drop_stale_answers(struct dt_netwatch *w)
{
	char buf[64];
	int fd = nl_socket_get_fd(w->query);

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) >= 0 || errno == ENOBUFS)
		;
}

/* ---- reports ------------------------------------------------------------------ */

static void report(struct dt_netwatch *w, const struct watched *we, enum dt_netwatch_change c,
		   int ifindex)
{
	struct dt_netwatch_event ev = {
		.ep = &we->ep, .change = c, .ifindex = ifindex, .seen_ns = w->seen_ns,
	};

	w->cb(w->ctx, &ev);
}

static bool same_path(const struct route *a, const struct route *b)
{
	return a->oif == b->oif && memcmp(a->gw, b->gw, sizeof(a->gw)) == 0;
}

static void report_changes(struct dt_netwatch *w, const struct watched *was,
			   const struct watched *now)
{
	enum dt_netwatch_change link = now->link_up ? DT_NETWATCH_LINK_UP : DT_NETWATCH_LINK_DOWN;

	/* no interface before: the first route found says it with ROUTE_BACK alone */
	if (was->link_oif && was->link_up != now->link_up)
		report(w, now, link, now->link_oif);
	if (was->route.routed && !now->route.routed)
		report(w, now, DT_NETWATCH_ROUTE_LOST, 0);
	else if (!was->route.routed && now->route.routed)
		report(w, now, DT_NETWATCH_ROUTE_BACK, now->route.oif);
	else if (now->route.routed && !same_path(&was->route, &now->route))
		report(w, now, DT_NETWATCH_ROUTE_CHANGED, now->route.oif);
}

/* Every endpoint looked up again; false when some could not be. */
static bool check_all(struct dt_netwatch *w)
{
	bool ok = true;
	int rc = nl_cache_refill(w->query, w->links);

	if (rc < 0) {
		log_warn("netwatch: link dump: %s", nl_geterror(rc));
		return false;
	}
	for (size_t i = 0; i < w->n; i++) {
		struct watched was = w->eps[i], now;

		if (observe(w, &was, &now) < 0) {
			ok = false;
			continue;
		}
		w->eps[i] = now;
		if (was.known)
			report_changes(w, &was, &w->eps[i]);
	}
	return ok;
}

static void retry_later(struct dt_netwatch *w)
{
	struct timeval retry = { .tv_usec = RETRY_MS * 1000 };

	log_warn("netwatch: route lookups failed; again in %d ms", RETRY_MS);
	drop_stale_answers(w);
	if (!w->seen_ns)
		w->seen_ns = now_ns();
	evtimer_add(w->timer, &retry);
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
	struct dt_netwatch *w = arg;

	(void)fd;
	(void)what;
	if (check_all(w))
		w->seen_ns = 0;
	else
		retry_later(w);
}

/* ---- events ------------------------------------------------------------------- */

/* The first message of a burst starts the debounce; later ones ride on it,
 * so a steady stream still gets a pass every debounce period. */
static void note_change(struct dt_netwatch *w)
{
	if (w->seen_ns)
		return;
	w->seen_ns = now_ns();
	evtimer_add(w->timer, &w->debounce);
}

static int on_event_msg(struct nl_msg *msg, void *arg)
{
	(void)msg;
	note_change(arg);
	return NL_OK;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dt_netwatch *w = arg;
	int rc;

	(void)fd;
	(void)what;
	for (;;) {
		rc = nl_recvmsgs_report(w->events, w->event_cb);
		if (rc > 0)
			continue;
		if (rc != -NLE_NOMEM)
			break;
		/* ENOBUFS: messages lost; the pass looks everything up anyway */
		log_debug("netwatch: event socket overrun; resyncing");
		note_change(w);
	}
	if (rc < 0 && rc != -NLE_AGAIN)
		log_warn("netwatch: %s", nl_geterror(rc));
}

/* ---- life cycle --------------------------------------------------------------- */

static struct nl_sock *event_socket(struct dt_netwatch *w)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	if (!sk)
		return NULL;
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_event_msg, w);
	rc = nl_connect(sk, NETLINK_ROUTE);
	if (!rc)
		rc = nl_socket_add_memberships(sk, RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE,
					       RTNLGRP_IPV6_ROUTE, 0);
	if (!rc)
		rc = nl_socket_set_nonblocking(sk);
	if (!rc)
		rc = nl_socket_set_buffer_size(sk, EVENT_RCVBUF, 0);
	if (rc < 0) {
		log_error("netwatch: rtnetlink events: %s", nl_geterror(rc));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static struct nl_sock *query_socket(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	if (!sk)
		return NULL;
	/* an answer, or an error instead, never an acknowledgement after it */
	nl_socket_disable_auto_ack(sk);
	rc = nl_connect(sk, NETLINK_ROUTE);
	if (rc < 0) {
		log_error("netwatch: rtnetlink: %s", nl_geterror(rc));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

struct dt_netwatch *dt_netwatch_new(struct event_base *base, const struct dt_netwatch_opts *o,
				    dt_netwatch_fn cb, void *ctx)
{
	struct dt_netwatch *w = calloc(1, sizeof(*w));
	unsigned debounce_ms = o && o->debounce_ms ? o->debounce_ms : DEBOUNCE_MS_DEFAULT;

	if (!w)
		return NULL;
	w->cb = cb;
	w->ctx = ctx;
	w->mark = o ? o->mark : 0;
	w->debounce.tv_sec = debounce_ms / 1000;
	w->debounce.tv_usec = (debounce_ms % 1000) * 1000;
	w->events = event_socket(w);
	w->query = query_socket();
	if (!w->events || !w->query)
		goto fail;
	w->event_cb = nl_socket_get_cb(w->events);
	w->route_cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!w->event_cb || !w->route_cb ||
	    rtnl_link_alloc_cache(w->query, AF_UNSPEC, &w->links) < 0)
		goto fail;
	w->timer = evtimer_new(base, on_settled, w);
	w->readable = event_new(base, nl_socket_get_fd(w->events), EV_READ | EV_PERSIST,
				on_readable, w);
	if (!w->timer || !w->readable || event_add(w->readable, NULL))
		goto fail;
	return w;
fail:
	dt_netwatch_free(w);
	return NULL;
}

void dt_netwatch_free(struct dt_netwatch *w)
{
	if (!w)
		return;
	if (w->readable)
		event_free(w->readable);
	if (w->timer)
		event_free(w->timer);
	nl_cache_free(w->links);
	nl_cb_put(w->route_cb);
	nl_cb_put(w->event_cb);
	nl_socket_free(w->query);
	nl_socket_free(w->events);
	free(w->eps);
	free(w);
}

static const struct watched *find(const struct dt_netwatch *w, const struct dt_endpoint *ep)
{
	for (size_t i = 0; i < w->n; i++)
		if (memcmp(&w->eps[i].ep, ep, sizeof(*ep)) == 0)
			return &w->eps[i];
	return NULL;
}

int dt_netwatch_set_endpoints(struct dt_netwatch *w, const struct dt_endpoint *eps, size_t n)
{
	struct watched *next = calloc(n ? n : 1, sizeof(*next));
	bool links_fresh, all_known = true;

	if (!next)
		return -ENOMEM;
	links_fresh = nl_cache_refill(w->query, w->links) >= 0;
	for (size_t i = 0; i < n; i++) {
		const struct watched *old = find(w, &eps[i]);
		struct watched fresh = { .ep = eps[i] };

		if (old)
			next[i] = *old;
		else if (!links_fresh || observe(w, &fresh, &next[i]) < 0)
			next[i] = fresh; /* its first pass takes the baseline */
		all_known &= next[i].known;
	}
	free(w->eps);
	w->eps = next;
	w->n = n;
	if (!all_known)
		retry_later(w);
	return 0;
}

const char *dt_netwatch_change_name(enum dt_netwatch_change c)
{
	switch (c) {
	case DT_NETWATCH_ROUTE_LOST:    return "route-lost";
	case DT_NETWATCH_ROUTE_CHANGED: return "route-changed";
	case DT_NETWATCH_ROUTE_BACK:    return "route-back";
	case DT_NETWATCH_LINK_DOWN:     return "link-down";
	case DT_NETWATCH_LINK_UP:       return "link-up";
	}
	return "?";
}
