// SPDX-License-Identifier: MIT
/*
 * Provider signals on the uplink (bpf/uplink.bpf.c, agent/uplink.c).
 *
 * Crafted frames are run through the loaded XDP program with
 * BPF_PROG_TEST_RUN: resets and ICMP errors from and about provider
 * endpoints are counted, everything else is not, and every frame (cut
 * short at every length, malformed, tagged) passes. Then the program is
 * attached to a private namespace's lo in generic mode and real resets on
 * real sockets are counted, flagged as flows a local socket owns, and as
 * the agent's own when that socket carries detour's SO_MARK.
 *
 * Needs root and BPF. Runs in private network and mount namespaces with
 * its own intercept map and bpffs: a running detour is never touched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/event.h>

#include "bpfobj.h"
#include "frames.h"
#include "uplink.h"
#include "bpf_world.h"

#define PROVIDER4   "198.18.0.2"
#define PROVIDER6   "fd00:de70::2"
#define STRANGER4   "198.18.0.9"
#define STRANGER6   "fd00:de70::9"
#define LOCAL4      "198.18.0.1"
#define LOCAL6      "fd00:de70::1"
#define PORT        443
#define LO_PROVIDER "127.0.0.2"
#define LO_PORT     20443
#define MARK        0x44540001u
#define MAX_RECS    64
#define TCP_STATE_ESTABLISHED 1
#define TCP_STATE_SYN_SENT    2

static struct {
	bool skip;
	struct bpf_world bw;           /* namespaces, bpffs, intercept map */
	struct event_base *base;
	struct dt_uplink *up;
	struct dt_uplink_event recs[MAX_RECS];
	int nrecs;
} w = { .bw = BPF_WORLD_INIT };

/* ---- frames ------------------------------------------------------------------ */

/* The frames counted, each as short as it can be and still be counted. */
static struct frame rst4(const char *src, int tags)
{
	struct frame f = { .len = 0 };

	frame_eth(&f, ETH_P_IP, tags);
	frame_ipv4(&f, src, LOCAL4, IPPROTO_TCP, 0);
	frame_tcp(&f, PORT, 40000, TH_RST | TH_ACK);
	return f;
}

static struct frame rst6(const char *src)
{
	struct frame f = { .len = 0 };

	frame_eth(&f, ETH_P_IPV6, 0);
	frame_ipv6(&f, src, LOCAL6, IPPROTO_TCP);
	frame_tcp(&f, PORT, 40000, TH_RST);
	return f;
}

/* A router's ICMP error about our segment to @dst. */
static struct frame unreach4(const char *dst, uint8_t type, uint8_t code)
{
	struct frame f = { .len = 0 };

	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, "203.0.113.1", LOCAL4, IPPROTO_ICMP, 0);
	frame_icmp(&f, type, code);
	frame_ipv4(&f, LOCAL4, dst, IPPROTO_TCP, 0);
	frame_ports(&f, 40000, PORT);
	return f;
}

static struct frame unreach6(const char *dst, uint8_t type, uint8_t code)
{
	struct frame f = { .len = 0 };

	frame_eth(&f, ETH_P_IPV6, 0);
	frame_ipv6(&f, "2001:db8::1", LOCAL6, IPPROTO_ICMPV6);
	frame_icmp(&f, type, code);
	frame_ipv6(&f, LOCAL6, dst, IPPROTO_TCP);
	frame_ports(&f, 40000, PORT);
	return f;
}

/* ---- running and reading -------------------------------------------------------- */

static void on_event(const struct dt_uplink_event *ev, void *arg)
{
	(void)arg;
	if (w.nrecs < MAX_RECS)
		w.recs[w.nrecs++] = *ev;
}

/* Run @f through the program: it always passes. Returns the events it made. */
static int run(const struct frame *f)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->b, .data_size_in = (__u32)f->len,
		    .repeat = 1);
	int before = w.nrecs;

	assert_int_equal(bpf_prog_test_run_opts(dt_uplink_prog_fd(w.up), &o), 0);
	assert_int_equal(o.retval, XDP_PASS);
	dt_uplink_drain(w.up);
	return w.nrecs - before;
}

static struct dt_endpoint ep_of(const char *addr, uint16_t port)
{
	struct dt_endpoint ep = { .port = htons(port) };

	if (strchr(addr, ':')) {
		assert_int_equal(inet_pton(AF_INET6, addr, ep.addr), 1);
	} else {
		ep.addr[2] = htonl(0xffff);
		assert_int_equal(inet_pton(AF_INET, addr, &ep.addr[3]), 1);
	}
	return ep;
}

static void provide(const char *addr, uint16_t port)
{
	struct dt_endpoint ep = ep_of(addr, port);
	struct dt_intercept val = { .provider_id = 1 };

	assert_int_equal(bpf_map_update_elem(w.bw.intercept_fd, &ep, &val, BPF_ANY), 0);
}

static struct dt_uplink_signals counters(const char *addr, uint16_t port)
{
	struct dt_endpoint ep = ep_of(addr, port);
	struct dt_uplink_signals s = { 0 };

	bpf_map_lookup_elem(dt_uplink_fd(w.up), &ep, &s);
	return s;
}

/* Every counter of every endpoint, added up. */
static __u64 counted_anywhere(void)
{
	struct dt_endpoint key, next;
	struct dt_uplink_signals s;
	const void *prev = NULL;
	__u64 n = 0;

	while (bpf_map_get_next_key(dt_uplink_fd(w.up), prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(dt_uplink_fd(w.up), &key, &s) == 0)
			n += s.resets + s.unreachable + s.time_exceeded;
	}
	return n;
}

static void not_counted(const struct frame *f)
{
	__u64 before = counted_anywhere();

	assert_int_equal(run(f), 0);
	assert_true(counted_anywhere() == before);
}

static const struct dt_uplink_event *last(void)
{
	assert_true(w.nrecs > 0);
	return &w.recs[w.nrecs - 1];
}

/* ---- the private world ------------------------------------------------------------ */

static int open_uplink(const char *ifname, enum dt_xdp_mode mode)
{
	struct dt_uplink_opts o = {
		.intercept_fd = w.bw.intercept_fd,
		.ifname = ifname,
		.mode = mode,
		.mark = MARK,
		.pin_dir = w.bw.mnt,
		.cb = on_event,
	};
	char err[256];
	int rc = dt_uplink_open(&w.up, w.base, &o, err, sizeof(err));

	if (rc)
		fprintf(stderr, "test_uplink: %s\n", err);
	return rc;
}

static int group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_uplink: needs root (BPF, namespaces): skipped\n");
		w.skip = true;
		return 0;
	}
	if (bpf_world_enter(&w.bw, "uplink"))
		return -1;
	w.base = event_base_new();
	if (!w.base)
		return -1;
	return open_uplink(NULL, DT_XDP_AUTO);
}

static int group_teardown(void **state)
{
	(void)state;
	dt_uplink_close(w.up);
	if (w.base)
		event_base_free(w.base);
	bpf_world_leave(&w.bw);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	if (w.skip)
		return 0;
	provide(PROVIDER4, PORT);
	provide(PROVIDER6, PORT);
	dt_uplink_drain(w.up);
	w.nrecs = 0;
	return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_reset_from_provider(void **state)
{
	struct frame f4 = rst4(PROVIDER4, 0), f6 = rst6(PROVIDER6);
	struct dt_endpoint ep = ep_of(PROVIDER4, PORT), local = ep_of(LOCAL4, 40000);
	const struct dt_uplink_event *e;
	struct dt_uplink_signals s;

	(void)state;
	if (w.skip)
		skip();
	assert_int_equal(run(&f4), 1);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_RESET);
	assert_memory_equal(&e->ep, &ep, sizeof(ep));
	assert_memory_equal(e->local, local.addr, sizeof(e->local));
	assert_int_equal(e->local_port, local.port);
	assert_int_equal(e->flags, 0); /* no socket here owns 198.18.0.1:40000 */
	assert_int_equal(e->sk_state, 0);
	s = counters(PROVIDER4, PORT);
	assert_int_equal(s.resets, 1);
	assert_int_equal(s.unreachable + s.time_exceeded + s.local, 0);
	assert_int_equal(s.last_kind, DT_UPLINK_RESET);
	assert_true(s.last_event_ns == e->ts_ns && e->ts_ns <= dt_now_ns());

	ep = ep_of(PROVIDER6, PORT);
	assert_int_equal(run(&f6), 1);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_RESET);
	assert_memory_equal(&e->ep, &ep, sizeof(ep));
	assert_int_equal(e->flags, DT_UPLINK_F_IPV6);
	assert_int_equal(counters(PROVIDER6, PORT).resets, 1);
	assert_int_equal(run(&f6), 1);
	assert_int_equal(counters(PROVIDER6, PORT).resets, 2);
}

static void test_not_from_provider(void **state)
{
	struct frame f;

	(void)state;
	if (w.skip)
		skip();
	f = rst4(STRANGER4, 0);
	not_counted(&f);
	f = rst6(STRANGER6);
	not_counted(&f);
	/* the provider's address, another port */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, PROVIDER4, LOCAL4, IPPROTO_TCP, 0);
	frame_tcp(&f, 8443, 40000, TH_RST);
	not_counted(&f);
	/* the provider, not a reset */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, PROVIDER4, LOCAL4, IPPROTO_TCP, 0);
	frame_tcp(&f, PORT, 40000, TH_ACK);
	not_counted(&f);
	/* a reset *to* the provider (sent by us) */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, LOCAL4, PROVIDER4, IPPROTO_TCP, 0);
	frame_tcp(&f, 40000, PORT, TH_RST);
	not_counted(&f);
	/* ICMP errors about segments to somebody else */
	f = unreach4(STRANGER4, 3, 1);
	not_counted(&f);
	f = unreach6(STRANGER6, 1, 0);
	not_counted(&f);
}

static void test_icmp_about_provider(void **state)
{
	struct frame f4 = unreach4(PROVIDER4, 3, 1), f6 = unreach6(PROVIDER6, 1, 3);
	struct dt_endpoint ep = ep_of(PROVIDER4, PORT), local = ep_of(LOCAL4, 40000);
	const struct dt_uplink_event *e;
	struct dt_uplink_signals s;

	(void)state;
	if (w.skip)
		skip();
	assert_int_equal(run(&f4), 1);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_UNREACHABLE);
	assert_int_equal(e->icmp_type, 3);
	assert_int_equal(e->icmp_code, 1);
	assert_memory_equal(&e->ep, &ep, sizeof(ep));
	assert_memory_equal(e->local, local.addr, sizeof(e->local));
	assert_int_equal(e->local_port, local.port);
	s = counters(PROVIDER4, PORT);
	assert_int_equal(s.unreachable, 1);
	assert_int_equal(s.last_icmp_type, 3);
	assert_int_equal(s.last_icmp_code, 1);

	ep = ep_of(PROVIDER6, PORT);
	assert_int_equal(run(&f6), 1);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_UNREACHABLE);
	assert_int_equal(e->flags, DT_UPLINK_F_IPV6);
	assert_int_equal(e->icmp_code, 3);
	assert_memory_equal(&e->ep, &ep, sizeof(ep));
	assert_int_equal(counters(PROVIDER6, PORT).unreachable, 1);

	/* time exceeded, both families */
	f4 = unreach4(PROVIDER4, 11, 0);
	assert_int_equal(run(&f4), 1);
	assert_int_equal(last()->kind, DT_UPLINK_TIME_EXCEEDED);
	f6 = unreach6(PROVIDER6, 3, 0);
	assert_int_equal(run(&f6), 1);
	assert_int_equal(last()->kind, DT_UPLINK_TIME_EXCEEDED);
	assert_int_equal(counters(PROVIDER4, PORT).time_exceeded, 1);
	assert_int_equal(counters(PROVIDER6, PORT).time_exceeded, 1);

	/* path MTU discovery is not a failure: fragmentation needed, too big */
	f4 = unreach4(PROVIDER4, 3, 4);
	not_counted(&f4);
	f6 = unreach6(PROVIDER6, 2, 0);
	not_counted(&f6);
	/* nor are echo replies */
	f4 = unreach4(PROVIDER4, 0, 0);
	not_counted(&f4);
}

/* Every counted frame, cut at every length: passes, and is counted only
 * when whole. */
static void test_truncated(void **state)
{
	struct frame frames[] = {
		rst4(PROVIDER4, 0), rst4(PROVIDER4, 1), rst6(PROVIDER6),
		unreach4(PROVIDER4, 3, 1), unreach6(PROVIDER6, 1, 0),
	};

	(void)state;
	if (w.skip)
		skip();
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		for (size_t len = ETH_HLEN; len < frames[i].len; len++) {
			struct frame cut = frames[i];

			cut.len = len;
			not_counted(&cut);
		}
		assert_int_equal(run(&frames[i]), 1);
	}
}

static void test_malformed(void **state)
{
	struct frame f;

	(void)state;
	if (w.skip)
		skip();
	/* IPv4 header length below 5 words */
	f = rst4(PROVIDER4, 0);
	f.b[ETH_HLEN] = 0x44;
	not_counted(&f);
	/* a header length reaching past the end */
	f.b[ETH_HLEN] = 0x4f;
	not_counted(&f);
	/* IPv4 in an IPv6 ethertype, and the other way round */
	f = rst4(PROVIDER4, 0);
	f.b[12] = 0x86;
	f.b[13] = 0xdd;
	not_counted(&f);
	f = rst6(PROVIDER6);
	f.b[12] = 0x08;
	f.b[13] = 0x00;
	not_counted(&f);
	/* a later fragment: what looks like a TCP header is data */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, PROVIDER4, LOCAL4, IPPROTO_TCP, 185);
	frame_tcp(&f, PORT, 40000, TH_RST);
	not_counted(&f);
	/* the quoted segment is UDP (a QUIC probe), not TCP */
	f = unreach4(PROVIDER4, 3, 3);
	f.b[ETH_HLEN + 20 + 8 + 9] = IPPROTO_UDP;
	not_counted(&f);
	/* an ICMP error quoting a non-first fragment */
	f = unreach4(PROVIDER4, 3, 1);
	f.b[ETH_HLEN + 20 + 8 + 7] = 1;
	not_counted(&f);
	/* not IP at all: ARP */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_ARP, 0);
	frame_put(&f, (uint8_t[28]){ 0 }, 28);
	not_counted(&f);
}

static void test_vlan_and_ext_headers(void **state)
{
	struct frame f = rst4(PROVIDER4, 1);
	uint8_t hop[8] = { IPPROTO_TCP, 0, 1, 4 }, frag[8] = { IPPROTO_TCP };

	(void)state;
	if (w.skip)
		skip();
	assert_int_equal(run(&f), 1);
	assert_int_equal(last()->flags, DT_UPLINK_F_VLAN);
	/* one tag is parsed, not two */
	f = rst4(PROVIDER4, 2);
	not_counted(&f);

	/* IPv6: a hop-by-hop header, then a first fragment, then the reset */
	f = (struct frame){ .len = 0 };
	frame_eth(&f, ETH_P_IPV6, 0);
	frame_ipv6(&f, PROVIDER6, LOCAL6, 0);
	hop[0] = 44;
	frame_put(&f, hop, sizeof(hop));
	frame_put(&f, frag, sizeof(frag));
	frame_tcp(&f, PORT, 40000, TH_RST);
	assert_int_equal(run(&f), 1);
	assert_int_equal(last()->kind, DT_UPLINK_RESET);
	/* the same as a later fragment */
	f.b[ETH_HLEN + 40 + 8 + 3] = 0x08;
	not_counted(&f);
}

/* ---- real sockets, the program attached to lo ---------------------------------- */

static void run_loop_until(int events, int ms)
{
	__u64 deadline = dt_now_ns() + (__u64)ms * 1000000ull;

	while (w.nrecs < events && dt_now_ns() < deadline) {
		struct timeval tv = { .tv_usec = 10000 };

		event_base_loopexit(w.base, &tv);
		event_base_dispatch(w.base);
	}
}

/* A connect to @addr:@port, from a socket with SO_MARK @mark (0: none). */
static int tcp_socket_to(const char *addr, uint16_t port, bool wait, __u32 mark)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	assert_true(fd >= 0);
	if (mark)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (wait)
		assert_int_equal(rc, 0);
	return fd;
}

static void test_attached_real_resets(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(LO_PORT) };
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };
	const struct dt_uplink_event *e;
	int lfd, cfd, sfd, one = 1;
	char byte;

	(void)state;
	if (w.skip)
		skip();
	dt_uplink_close(w.up);
	w.up = NULL;
	assert_int_equal(open_uplink("lo", DT_XDP_GENERIC), 0);
	assert_string_equal(dt_uplink_mode_name(w.up), "generic");
	provide(LO_PROVIDER, LO_PORT);
	/* the pinned counters were taken up again */
	assert_true(counted_anywhere() > 0);

	/* refused: the reset answers a SYN of a socket here */
	cfd = tcp_socket_to(LO_PROVIDER, LO_PORT, false, 0);
	close(cfd);
	run_loop_until(1, 1000);
	assert_int_equal(w.nrecs, 1);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_RESET);
	assert_int_equal(e->flags, DT_UPLINK_F_LOCAL);
	assert_int_equal(e->sk_state, TCP_STATE_SYN_SENT);

	/* refused, the agent's own socket (detour's SO_MARK) */
	cfd = tcp_socket_to(LO_PROVIDER, LO_PORT, false, MARK);
	close(cfd);
	run_loop_until(2, 1000);
	assert_int_equal(w.nrecs, 2);
	assert_int_equal(last()->flags, DT_UPLINK_F_LOCAL | DT_UPLINK_F_AGENT);

	/* cut: the provider aborts an established connection */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, LO_PROVIDER, &sa.sin_addr);
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	cfd = tcp_socket_to(LO_PROVIDER, LO_PORT, true, 0);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	assert_int_equal(setsockopt(sfd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard)), 0);
	close(sfd);
	run_loop_until(3, 1000);
	assert_int_equal(w.nrecs, 3);
	e = last();
	assert_int_equal(e->kind, DT_UPLINK_RESET);
	assert_int_equal(e->flags, DT_UPLINK_F_LOCAL);
	assert_int_equal(e->sk_state, TCP_STATE_ESTABLISHED);
	assert_int_equal(counters(LO_PROVIDER, LO_PORT).resets, 3);
	assert_int_equal(counters(LO_PROVIDER, LO_PORT).local, 3);
	assert_int_equal(read(cfd, &byte, 1), -1);
	assert_int_equal(errno, ECONNRESET);
	close(cfd);
	close(lfd);

	/* closed: nothing seen any more */
	dt_uplink_close(w.up);
	w.up = NULL;
	cfd = tcp_socket_to(LO_PROVIDER, LO_PORT, false, 0);
	close(cfd);
	assert_int_equal(open_uplink(NULL, DT_XDP_AUTO), 0);
	assert_int_equal(counters(LO_PROVIDER, LO_PORT).resets, 3);
}

/* An interface that is not there, a mode the interface cannot do, an XDP
 * program already there: refused with a reason, nothing attached. */
static void test_attach_failures(void **state)
{
	struct dt_uplink_opts o = { .intercept_fd = w.bw.intercept_fd, .ifname = "nosuch0" };
	struct dt_uplink *u = (void *)1, *first;
	char err[256] = "";

	(void)state;
	if (w.skip)
		skip();
	assert_int_equal(dt_uplink_open(&u, w.base, &o, err, sizeof(err)), -ENODEV);
	assert_null(u);
	assert_non_null(strstr(err, "nosuch0"));

	o.ifname = "lo";
	o.mode = DT_XDP_GENERIC;
	assert_int_equal(dt_uplink_open(&first, w.base, &o, err, sizeof(err)), 0);
	assert_true(dt_uplink_open(&u, w.base, &o, err, sizeof(err)) < 0);
	assert_null(u);
	assert_non_null(strstr(err, "already has an XDP program"));
	dt_uplink_close(first);
	/* gone with its link: lo is free again */
	assert_int_equal(dt_uplink_open(&first, w.base, &o, err, sizeof(err)), 0);
	dt_uplink_close(first);

	o.intercept_fd = -1;
	assert_int_equal(dt_uplink_open(&u, w.base, &o, err, sizeof(err)), -EBADF);
	assert_non_null(strstr(err, "intercept"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_reset_from_provider, setup),
		cmocka_unit_test_setup(test_not_from_provider, setup),
		cmocka_unit_test_setup(test_icmp_about_provider, setup),
		cmocka_unit_test_setup(test_truncated, setup),
		cmocka_unit_test_setup(test_malformed, setup),
		cmocka_unit_test_setup(test_vlan_and_ext_headers, setup),
		cmocka_unit_test_setup(test_attached_real_resets, setup),
		cmocka_unit_test_setup(test_attach_failures, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
