// SPDX-License-Identifier: MIT
/*
 * dt_sockdiag_destroy (agent/sockdiag.c) and dt_cgroup_subtree
 * (agent/enroll.c) on real sockets: the sockets failover mode must abort
 * are aborted, and no other one.
 *
 * Needs root. Runs in a network namespace of its own with loopback up, so
 * only its own sockets can be seen; its cgroups are created under the
 * cgroup v2 root (detour-unit-sockdiag-PID/{enrolled,enrolled/child,other})
 * and removed at the end. A socket belongs to the cgroup its creator was in,
 * so the test moves itself into a cgroup before creating each client.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enroll.h"
#include "intercept.h"
#include "sockdiag.h"
#include "lo_up.h"

#define MARK 0x44540001u

enum cg { CG_ORIG, CG_ENROLLED, CG_CHILD, CG_OTHER, CG_COUNT };

static struct {
	bool skip;
	char root[512];               /* detour-unit-sockdiag-PID */
	char path[CG_COUNT][600];     /* CG_ORIG: where the test started */
	uint64_t id[CG_COUNT];
} w;

/* ---- the private world ---------------------------------------------------- */

static int cgroup2_mount(char *buf, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	int rc = -1;

	while (f && rc && (m = getmntent(f)))
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(buf, len, "%s", m->mnt_dir);
			rc = 0;
		}
	if (f)
		endmntent(f);
	return rc;
}

static int own_cgroup(const char *mnt, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512];
	int rc = -1;

	while (f && rc && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s%s", mnt, line + 3);
			rc = 0;
		}
	if (f)
		fclose(f);
	return rc;
}

/* Move this (single-threaded) process into a cgroup. */
static int enter(enum cg cg)
{
	char procs[700], pid[16];
	int fd, n, rc = 0;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", w.path[cg]);
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, (size_t)n) != n)
		rc = -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

static int group_setup(void **state)
{
	char mnt[256];

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_sockdiag: needs root (namespaces, cgroups, SOCK_DESTROY): skipped\n");
		w.skip = true;
		return 0;
	}
	if (unshare(CLONE_NEWNET) || lo_up()) {
		perror("test_sockdiag: private network namespace");
		return -1;
	}
	if (cgroup2_mount(mnt, sizeof(mnt)) || own_cgroup(mnt, w.path[CG_ORIG], sizeof(w.path[0]))) {
		fprintf(stderr, "test_sockdiag: no cgroup v2 hierarchy\n");
		return -1;
	}
	snprintf(w.root, sizeof(w.root), "%s/detour-unit-sockdiag-%d", mnt, getpid());
	snprintf(w.path[CG_ENROLLED], sizeof(w.path[0]), "%s/enrolled", w.root);
	snprintf(w.path[CG_CHILD], sizeof(w.path[0]), "%s/enrolled/child", w.root);
	snprintf(w.path[CG_OTHER], sizeof(w.path[0]), "%s/other", w.root);
	if (mkdir(w.root, 0755))
		return -1;
	for (int cg = CG_ORIG; cg < CG_COUNT; cg++)
		if ((cg != CG_ORIG && mkdir(w.path[cg], 0755)) || dt_cgroup_id(w.path[cg], &w.id[cg]))
			return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (w.skip || !w.root[0])
		return 0;
	enter(CG_ORIG);
	for (int cg = CG_COUNT - 1; cg > CG_ORIG; cg--)
		rmdir(w.path[cg]);
	rmdir(w.root);
	return 0;
}

/* ---- sockets ---------------------------------------------------------------- */

static socklen_t sa_of(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	return sizeof(*sin6);
}

/* A listener on addr, port chosen by the kernel; *port gets it. */
static int listener(int family, const char *addr, int backlog, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(family, addr, 0, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(fd, backlog), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A client socket created in cgroup cg (with SO_MARK mark unless 0),
 * connecting to addr:port; blocking unless nonblock. */
static int client(enum cg cg, int family, const char *addr, uint16_t port, uint32_t mark,
		  bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(family, addr, port, &ss);
	int fd, rc;

	assert_int_equal(enter(cg), 0);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	assert_int_equal(enter(CG_ORIG), 0);
	assert_true(fd >= 0);
	if (mark)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	rc = connect(fd, (struct sockaddr *)&ss, len);
	assert_true(rc == 0 || (nonblock && errno == EINPROGRESS));
	return fd;
}

static int accepted(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int so_error(int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	return err;
}

/* Destroyed: its owner is told ECONNABORTED. */
static void assert_aborted(int fd)
{
	char c;

	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, ECONNABORTED);
}

/* Untouched: still connected both ways (a byte each way goes through). */
static void assert_alive(int fd, int peer)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };
	char c = 'x';

	assert_int_equal(so_error(fd), 0);
	assert_int_equal(send(fd, &c, 1, MSG_NOSIGNAL), 1);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(recv(peer, &c, 1, 0), 1);
	assert_int_equal(send(peer, &c, 1, MSG_NOSIGNAL), 1);
	p.fd = fd;
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(recv(fd, &c, 1, 0), 1);
}

static struct dt_endpoint ep_of(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	struct dt_endpoint ep;

	sa_of(family, addr, port, &ss);
	dt_endpoint_from_sockaddr(&ep, (struct sockaddr *)&ss);
	return ep;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_subtree(void **state)
{
	uint64_t *ids = NULL, roots[] = { w.id[CG_ENROLLED], 12345678901ull /* no such cgroup */ };
	size_t n = 0;
	bool enrolled = false, child = false;

	(void)state;
	if (w.skip)
		skip();
	assert_int_equal(dt_cgroup_subtree(roots, 2, &ids, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		enrolled |= ids[i] == w.id[CG_ENROLLED];
		child |= ids[i] == w.id[CG_CHILD];
	}
	assert_true(enrolled && child);
	free(ids);
}

/*
 * Provider endpoints P4 (127.0.0.1) and P6 (::1). Destroyed: connections of
 * the enrolled cgroup and its child to them, over IPv4, IPv6 and IPv4-mapped
 * IPv6, established or still connecting. Untouched: the same from another
 * cgroup, or carrying the proxy's mark; connections of the enrolled cgroup
 * to another port; the provider side of every connection (its destination
 * is the client); listeners.
 */
static void test_destroy_only_wanted(void **state)
{
	uint16_t p4, p6, q4, s4;
	int l4, l6, lq, ls;

	(void)state;
	if (w.skip)
		skip();
	/* listeners in the enrolled cgroup: what they accept is in it too */
	assert_int_equal(enter(CG_ENROLLED), 0);
	l4 = listener(AF_INET, "127.0.0.1", 16, &p4);
	l6 = listener(AF_INET6, "::1", 16, &p6);
	lq = listener(AF_INET, "127.0.0.1", 16, &q4);
	/* backlog 0: once one connection waits, further SYNs are dropped */
	ls = listener(AF_INET, "127.0.0.1", 0, &s4);
	assert_int_equal(enter(CG_ORIG), 0);

	int v4 = client(CG_ENROLLED, AF_INET, "127.0.0.1", p4, 0, false), sv4 = accepted(l4);
	int v6 = client(CG_ENROLLED, AF_INET6, "::1", p6, 0, false), sv6 = accepted(l6);
	int vm = client(CG_ENROLLED, AF_INET6, "::ffff:127.0.0.1", p4, 0, false), svm = accepted(l4);
	int vc = client(CG_CHILD, AF_INET, "127.0.0.1", p4, 0, false), svc = accepted(l4);
	int ko = client(CG_OTHER, AF_INET, "127.0.0.1", p4, 0, false), sko = accepted(l4);
	int kom = client(CG_OTHER, AF_INET6, "::ffff:127.0.0.1", p4, 0, false), skom = accepted(l4);
	int km = client(CG_ENROLLED, AF_INET, "127.0.0.1", p4, MARK, false), skm = accepted(l4);
	int km6 = client(CG_ENROLLED, AF_INET6, "::1", p6, MARK, false), skm6 = accepted(l6);
	int kq = client(CG_ENROLLED, AF_INET, "127.0.0.1", q4, 0, false), skq = accepted(lq);
	int kfill = client(CG_OTHER, AF_INET, "127.0.0.1", s4, 0, false);
	int vsyn = client(CG_ENROLLED, AF_INET, "127.0.0.1", s4, 0, true);
	struct pollfd p = { .fd = vsyn, .events = POLLOUT };

	assert_int_equal(poll(&p, 1, 100), 0); /* still connecting */

	struct dt_endpoint eps[] = {
		ep_of(AF_INET, "127.0.0.1", p4), ep_of(AF_INET6, "::1", p6),
		ep_of(AF_INET, "127.0.0.1", s4),
	};
	uint64_t *cgs = NULL, roots[] = { w.id[CG_ENROLLED] };
	size_t n_cgs = 0;

	assert_int_equal(dt_cgroup_subtree(roots, 1, &cgs, &n_cgs), 0);
	struct dt_sockdiag_victims v = {
		.eps = eps, .n_eps = 3, .cgroups = cgs, .n_cgroups = n_cgs, .skip_mark = MARK,
	};

	assert_int_equal(dt_sockdiag_destroy(&v), 5);
	assert_aborted(v4);
	assert_aborted(v6);
	assert_aborted(vm);
	assert_aborted(vc);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(so_error(vsyn), ECONNABORTED);
	assert_alive(ko, sko);
	assert_alive(kom, skom);
	assert_alive(km, skm);
	assert_alive(km6, skm6);
	assert_alive(kq, skq);
	assert_int_equal(so_error(kfill), 0);
	/* the provider sides of the destroyed ones were reset, no more */
	assert_int_equal(so_error(sv4), ECONNRESET);
	assert_int_equal(so_error(sv6), ECONNRESET);
	assert_int_equal(so_error(svm), ECONNRESET);
	assert_int_equal(so_error(svc), ECONNRESET);
	/* the listeners still accept */
	int again = client(CG_ENROLLED, AF_INET, "127.0.0.1", p4, 0, false), sagain = accepted(l4);

	assert_alive(again, sagain);
	/* nothing left to destroy */
	assert_int_equal(dt_sockdiag_destroy(&v), 1); /* the new one */
	assert_int_equal(dt_sockdiag_destroy(&v), 0);

	int fds[] = { v4, sv4, v6, sv6, vm, svm, vc, svc, ko, sko, kom, skom, km, skm, km6, skm6,
		      kq, skq, kfill, vsyn, again, sagain, l4, l6, lq, ls };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(fds[i]);
	free(cgs);
}

/* More endpoints and cgroups than one dump's filter holds: the socket whose
 * endpoint and cgroup come last is found all the same, and an empty list
 * destroys nothing. */
static void test_many_filters(void **state)
{
	enum { N_EPS = 600, N_CGS = 2500 };
	struct dt_endpoint *eps = calloc(N_EPS, sizeof(*eps));
	uint64_t *cgs = calloc(N_CGS, sizeof(*cgs));
	uint16_t port;
	char addr[64];
	int l, c, s;

	(void)state;
	if (w.skip) {
		free(eps);
		free(cgs);
		skip();
	}
	assert_non_null(eps);
	assert_non_null(cgs);
	l = listener(AF_INET6, "::1", 16, &port);
	c = client(CG_ENROLLED, AF_INET6, "::1", port, 0, false);
	s = accepted(l);
	for (int i = 0; i < N_EPS - 1; i++) { /* IPv6: the longest conditions */
		snprintf(addr, sizeof(addr), "2001:db8::%x", i + 1);
		eps[i] = ep_of(AF_INET6, addr, port);
	}
	eps[N_EPS - 1] = ep_of(AF_INET6, "::1", port);
	for (int i = 0; i < N_CGS - 1; i++)
		cgs[i] = 1000000000ull + (uint64_t)i; /* no such cgroups */
	cgs[N_CGS - 1] = w.id[CG_ENROLLED];

	struct dt_sockdiag_victims none = { .eps = eps, .n_eps = 0, .cgroups = cgs,
					    .n_cgroups = N_CGS, .skip_mark = MARK };
	struct dt_sockdiag_victims v = { .eps = eps, .n_eps = N_EPS, .cgroups = cgs,
					 .n_cgroups = N_CGS, .skip_mark = MARK };

	assert_int_equal(dt_sockdiag_destroy(&none), 0);
	assert_alive(c, s);
	assert_int_equal(dt_sockdiag_destroy(&v), 1);
	assert_aborted(c);
	close(c);
	close(s);
	close(l);
	free(eps);
	free(cgs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subtree),
		cmocka_unit_test(test_destroy_only_wanted),
		cmocka_unit_test(test_many_filters),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
