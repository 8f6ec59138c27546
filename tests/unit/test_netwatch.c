// SPDX-License-Identifier: MIT
/*
 * Route and link changes of provider endpoints (agent/netwatch.c) on real
 * interfaces.
 *
 * Needs root. The whole test runs in a private network namespace: the host's
 * interfaces and routes are never seen or touched, and everything made here
 * goes with the process. Each test gets two fresh veth pairs, nw0 and nw1,
 * with the "A" prefixes routed through nw0 and the "B" prefixes through
 * nw1, and a watcher on A and B endpoints. Changes are made by `ip -batch`
 * (or an ioctl for a link's flags) on a thread while the loop runs, as they
 * would come to the agent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "intercept.h"
#include "netwatch.h"

#define WAIT_MS   1000  /* bound on a report; they come in milliseconds */
#define SETTLE_MS 50    /* ten debounce periods: anything more would have come */
#define MAX_RECS  64
#define NS_PER_MS 1000000.0

#define WORLD \
	"link add nw0 type veth peer name nw0p\n" \
	"link add nw1 type veth peer name nw1p\n" \
	"link set nw0p up\n" "link set nw1p up\n" "link set nw0 up\n" "link set nw1 up\n" \
	"addr add 10.200.0.1/24 dev nw0\n" "addr add fd00:aa::1/64 dev nw0 nodad\n" \
	"addr add 10.201.0.1/24 dev nw1\n" "addr add fd00:bb::1/64 dev nw1 nodad\n" \
	"route add 198.18.5.0/24 dev nw0\n" "route add fd00:de71::/64 dev nw0\n" \
	"route add 198.18.9.0/24 dev nw1\n" "route add fd00:de72::/64 dev nw1\n"

#define A_VIA_NW1 "route replace 198.18.5.0/24 dev nw1\nroute replace fd00:de71::/64 dev nw1\n"
#define A_VIA_NW0 "route replace 198.18.5.0/24 dev nw0\nroute replace fd00:de71::/64 dev nw0\n"

struct rec {
	struct dt_endpoint ep;
	enum dt_netwatch_change change;
	int ifindex;
	uint64_t seen_ns, recv_ns;
};

/* A change made on a thread while the loop runs. */
struct changer {
	pthread_t thread;
	int (*apply)(const char *arg);
	const char *arg;
	uint64_t started_ns;
	int rc;
};

static struct {
	bool skip;
	struct event_base *base;
	struct dt_netwatch *nw;
	struct dt_endpoint a4, a6, b4, b6;
	int nw0, nw1;               /* ifindexes */
	struct rec recs[MAX_RECS];
	int nrecs;
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct dt_endpoint endpoint(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct dt_endpoint ep;

	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	dt_endpoint_from_sockaddr(&ep, (struct sockaddr *)&ss);
	ep.port = htons(443);
	return ep;
}

/* ---- changes -------------------------------------------------------------- */

static int ip_batch(const char *lines)
{
	FILE *ip = popen("ip -batch -", "w");

	if (!ip)
		return -1;
	fputs(lines, ip);
	return pclose(ip);
}

static int set_link(const char *ifname, bool up)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int link_down(const char *ifname)
{
	return set_link(ifname, false);
}

static int link_up(const char *ifname)
{
	return set_link(ifname, true);
}

static int nothing(const char *arg)
{
	(void)arg;
	return 0;
}

static void *changer_main(void *arg)
{
	struct changer *c = arg;

	c->started_ns = now_ns();
	c->rc = c->apply(c->arg);
	return NULL;
}

/* ---- the loop ------------------------------------------------------------- */

static void on_change(void *ctx, const struct dt_netwatch_event *ev)
{
	struct rec *r;

	(void)ctx;
	assert_true(g.nrecs < MAX_RECS);
	r = &g.recs[g.nrecs++];
	r->recv_ns = now_ns();
	r->ep = *ev->ep;
	r->change = ev->change;
	r->ifindex = ev->ifindex;
	r->seen_ns = ev->seen_ns;
}

/* Run the loop until n reports came or ms passed. */
static void loop_until(int n, unsigned ms)
{
	uint64_t end = now_ns() + ms * 1000000ull;

	while (g.nrecs < n) {
		uint64_t t = now_ns(), left;
		struct timeval tv;

		if (t >= end)
			break;
		left = end - t;
		tv.tv_sec = (time_t)(left / 1000000000ull);
		tv.tv_usec = (suseconds_t)(left % 1000000000ull / 1000);
		event_base_loopexit(g.base, &tv);
		event_base_loop(g.base, EVLOOP_ONCE);
	}
}

/* Make the change while the loop runs; expect exactly n reports, none more
 * within SETTLE_MS. Returns when the change started. */
static uint64_t change(int (*apply)(const char *), const char *arg, int n)
{
	struct changer c = { .apply = apply, .arg = arg };

	g.nrecs = 0;
	assert_int_equal(pthread_create(&c.thread, NULL, changer_main, &c), 0);
	loop_until(n, WAIT_MS);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, 0);
	loop_until(MAX_RECS, SETTLE_MS);
	assert_int_equal(g.nrecs, n);
	return c.started_ns;
}

/* The index of the one report of (ep, change); -1 if none. */
static int reported(const struct dt_endpoint *ep, enum dt_netwatch_change change, int ifindex)
{
	int found = -1;

	for (int i = 0; i < g.nrecs; i++) {
		if (memcmp(&g.recs[i].ep, ep, sizeof(*ep)) || g.recs[i].change != change)
			continue;
		assert_int_equal(found, -1);
		assert_int_equal(g.recs[i].ifindex, ifindex);
		found = i;
	}
	assert_int_not_equal(found, -1);
	return found;
}

static void print_latency(const char *what, uint64_t started_ns)
{
	const struct rec *first = &g.recs[0];

	fprintf(stderr, "test_netwatch: %s: first report %.2f ms after the change, "
		"%.2f ms after its first message was read\n", what,
		(double)(first->recv_ns - started_ns) / NS_PER_MS,
		(double)(first->recv_ns - first->seen_ns) / NS_PER_MS);
}

/* ---- set-up ----------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_netwatch: needs root (network namespace): skipped\n");
		g.skip = true;
		return 0;
	}
	if (unshare(CLONE_NEWNET) || ip_batch("link set lo up\n")) {
		perror("test_netwatch: private network namespace");
		return -1;
	}
	g.base = event_base_new();
	g.a4 = endpoint("198.18.5.10");
	g.a6 = endpoint("fd00:de71::10");
	g.b4 = endpoint("198.18.9.10");
	g.b6 = endpoint("fd00:de72::10");
	return g.base ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (g.base)
		event_base_free(g.base);
	return 0;
}

static int setup(void **state)
{
	const struct dt_endpoint eps[] = { g.a4, g.a6, g.b4, g.b6 };

	(void)state;
	if (g.skip)
		return 0;               /* each test skips itself: cmocka counts a skip here as an error */
	if (ip_batch(WORLD))
		return -1;
	g.nw0 = (int)if_nametoindex("nw0");
	g.nw1 = (int)if_nametoindex("nw1");
	g.nw = dt_netwatch_new(g.base, NULL, on_change, NULL);
	if (!g.nw || dt_netwatch_set_endpoints(g.nw, eps, 4))
		return -1;
	g.nrecs = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (g.skip)
		return 0;
	dt_netwatch_free(g.nw);
	g.nw = NULL;
	/* a veth goes with its peer and its routes; the device-less routes the
	 * tests made do not */
	if (ip_batch("link del nw0\nlink del nw1\nroute flush root 198.18.0.0/15\n"))
		return -1;
	return system("ip -6 route flush root fd00:de70::/28") ? -1 : 0;
}

#define SKIP_UNLESS_ROOT() do { if (g.skip) skip(); } while (0)

/* ---- tests ------------------------------------------------------------------ */

static void test_link_down_loses_its_routes(void **state)
{
	uint64_t t0;

	(void)state;
	SKIP_UNLESS_ROOT();
	t0 = change(link_down, "nw0", 4);
	/* the link first, then what it did to the route */
	assert_true(reported(&g.a4, DT_NETWATCH_LINK_DOWN, g.nw0) <
		    reported(&g.a4, DT_NETWATCH_ROUTE_LOST, 0));
	assert_true(reported(&g.a6, DT_NETWATCH_LINK_DOWN, g.nw0) <
		    reported(&g.a6, DT_NETWATCH_ROUTE_LOST, 0));
	print_latency("link down", t0);
}

static void test_link_up_and_route_back(void **state)
{
	uint64_t t0;

	(void)state;
	SKIP_UNLESS_ROOT();
	change(link_down, "nw0", 4);
	t0 = change(link_up, "nw0", 2);
	reported(&g.a4, DT_NETWATCH_LINK_UP, g.nw0);
	reported(&g.a6, DT_NETWATCH_LINK_UP, g.nw0);
	print_latency("link up", t0);
	/* the kernel flushed the routes through it: back once added again */
	t0 = change(ip_batch, "route add 198.18.5.0/24 dev nw0\nroute add fd00:de71::/64 dev nw0\n", 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_BACK, g.nw0);
	reported(&g.a6, DT_NETWATCH_ROUTE_BACK, g.nw0);
	print_latency("route back", t0);
}

static void test_carrier_loss_is_link_down_with_the_route_kept(void **state)
{
	(void)state;
	SKIP_UNLESS_ROOT();
	change(link_down, "nw0p", 2);
	reported(&g.a4, DT_NETWATCH_LINK_DOWN, g.nw0);
	reported(&g.a6, DT_NETWATCH_LINK_DOWN, g.nw0);
	change(link_up, "nw0p", 2);
	reported(&g.a4, DT_NETWATCH_LINK_UP, g.nw0);
	reported(&g.a6, DT_NETWATCH_LINK_UP, g.nw0);
}

static void test_unusable_routes_are_lost(void **state)
{
	uint64_t t0;

	(void)state;
	SKIP_UNLESS_ROOT();
	t0 = change(ip_batch, "route replace blackhole 198.18.5.0/24\n"
		    "route replace unreachable fd00:de71::/64\n", 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_LOST, 0);
	reported(&g.a6, DT_NETWATCH_ROUTE_LOST, 0);
	print_latency("blackhole / unreachable", t0);
	change(ip_batch, "route replace prohibit 198.18.5.0/24\n"
	       "route replace blackhole fd00:de71::/64\n", 0);
	change(ip_batch, A_VIA_NW0, 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_BACK, g.nw0);
	reported(&g.a6, DT_NETWATCH_ROUTE_BACK, g.nw0);
	change(ip_batch, "route replace unreachable 198.18.5.0/24\n"
	       "route replace prohibit fd00:de71::/64\n", 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_LOST, 0);
	reported(&g.a6, DT_NETWATCH_ROUTE_LOST, 0);
}

static void test_route_through_another_interface_or_gateway(void **state)
{
	uint64_t t0;

	(void)state;
	SKIP_UNLESS_ROOT();
	t0 = change(ip_batch, A_VIA_NW1, 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	reported(&g.a6, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	print_latency("route changed", t0);
	change(ip_batch, "route replace 198.18.5.0/24 via 10.200.0.2 dev nw0\n"
	       "route replace fd00:de71::/64 via fd00:aa::2 dev nw0\n", 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw0);
	reported(&g.a6, DT_NETWATCH_ROUTE_CHANGED, g.nw0);
	change(ip_batch, "route replace 198.18.5.0/24 via 10.200.0.3 dev nw0\n", 1);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw0);
}

static void test_unrelated_changes_report_nothing(void **state)
{
	(void)state;
	SKIP_UNLESS_ROOT();
	change(ip_batch, "route add 198.18.6.0/24 dev nw0\nroute add fd00:de73::/64 dev nw0\n"
	       "link add nw2 type veth peer name nw2p\nlink set nw2 up\nlink set nw2 down\nlink del nw2\n", 0);
	/* a more specific route elsewhere concerns only what it covers */
	change(ip_batch, "route add 198.18.5.10/32 dev nw1\n", 1);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
}

static void test_a_burst_is_reported_once(void **state)
{
	char burst[2048] = "";

	(void)state;
	SKIP_UNLESS_ROOT();
	for (int i = 0; i < 8; i++)
		strcat(burst, A_VIA_NW1 A_VIA_NW0);
	/* ends where it started: nothing to say */
	change(ip_batch, burst, 0);
	strcat(burst, A_VIA_NW1);
	change(ip_batch, burst, 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	reported(&g.a6, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
}

static void test_first_route_is_route_back(void **state)
{
	struct dt_endpoint d4 = endpoint("198.18.77.1"), eps[] = { g.a4, d4 };

	(void)state;
	SKIP_UNLESS_ROOT();
	assert_int_equal(dt_netwatch_set_endpoints(g.nw, eps, 2), 0);
	change(ip_batch, "route add 198.18.77.0/24 dev nw1\n", 1);
	reported(&d4, DT_NETWATCH_ROUTE_BACK, g.nw1);
}

static void test_reload_keeps_state_and_drops_the_unlisted(void **state)
{
	struct dt_endpoint c4 = endpoint("198.18.9.20"), eps[] = { g.a4, c4, g.b6 };

	(void)state;
	SKIP_UNLESS_ROOT();
	/* a change the loop has not seen yet is reported for an endpoint kept */
	assert_int_equal(ip_batch(A_VIA_NW1), 0);
	assert_int_equal(dt_netwatch_set_endpoints(g.nw, eps, 3), 0);
	change(nothing, NULL, 1);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	change(link_down, "nw0p", 0);   /* a6 is no longer watched */
	change(link_down, "nw1", 6);
	for (int i = 0; i < 3; i++) {
		reported(&eps[i], DT_NETWATCH_LINK_DOWN, g.nw1);
		reported(&eps[i], DT_NETWATCH_ROUTE_LOST, 0);
	}
	assert_int_equal(dt_netwatch_set_endpoints(g.nw, NULL, 0), 0);
	change(link_up, "nw1", 0);
}

static void test_overrun_is_survived(void **state)
{
	char line[64];
	size_t cap = 200000, len = 0;
	char *batch = malloc(cap);

	(void)state;
	SKIP_UNLESS_ROOT();
	assert_non_null(batch);
	/* thousands of messages while the loop sleeps: more than the socket holds */
	for (int i = 0; i < 4000; i++) {
		int n = snprintf(line, sizeof(line), "route add 10.50.%d.%d/32 dev nw1\n", i / 250, i % 250);

		memcpy(batch + len, line, (size_t)n);
		len += (size_t)n;
	}
	batch[len] = '\0';
	assert_int_equal(ip_batch(batch), 0);
	free(batch);
	change(ip_batch, A_VIA_NW1, 2);
	reported(&g.a4, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	reported(&g.a6, DT_NETWATCH_ROUTE_CHANGED, g.nw1);
	change(link_down, "nw0", 0);
	change(link_down, "nw1", 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_down_loses_its_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_up_and_route_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carrier_loss_is_link_down_with_the_route_kept,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_routes_are_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_through_another_interface_or_gateway,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unrelated_changes_report_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_burst_is_reported_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_route_is_route_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_state_and_drops_the_unlisted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun_is_survived, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
