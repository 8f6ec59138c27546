// SPDX-License-Identifier: MIT
/*
 * connect_cost: what detour's cgroup hooks add to connect().
 *
 * Times connect() alone (socket() and close() are outside the clock) to a
 * loopback listener in four set-ups, interleaved in short blocks so that
 * drift on a noisy machine hits them all alike:
 *
 *   no hook        the bench cgroup is not enrolled
 *   passed         enrolled, destination not in the intercept map
 *   redirected     enrolled, destination intercepted and rewritten
 *   failover       enrolled, destination intercepted, failover mode, its
 *                  provider and endpoint healthy: left direct
 *
 * The first three end on the same listener (127.0.0.1:PORT): the redirected
 * one connects to 127.0.0.2:PORT, which is intercepted and whose proxy
 * address in the settings map is that listener. Nothing listens on
 * 127.0.0.2, so a connect that succeeds there proves the redirect happened.
 * The failover one connects to 127.0.0.3:PORT, intercepted too, where a
 * listener of its own counts the connections it gets: all of them, or the
 * hook did not leave them direct.
 *
 * The bench runs in a world of its own: private network and mount
 * namespaces, a private bpffs, a cgroup it creates and removes. The listener
 * is created before the bench enters that cgroup, so the accepting side is
 * not enrolled (a real provider is not either).
 *
 * Usage: connect_cost [--connects N]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "bench.h"
#include "bpfobj.h"
#include "config.h"
#include "enroll.h"

#define LISTEN_PORT  18080
#define BACKLOG      4096
/* connects timed in a row for one set-up; pending connections are accepted
 * (and closed) after each block, outside the clock, long before the accept
 * queue (BACKLOG) fills */
#define BLOCK        500
/* a bench round lasts well under a second and the heartbeat is refreshed
 * before each one: a long TTL keeps the hook from failing open mid-round */
#define HEARTBEAT_TTL_NS (60ull * 1000000000ull)
#define BENCH_TAG    "bench"
#define DEFAULT_CONNECTS 30000
#define MAX_CONNECTS 10000000
#define TARGET_NS    300.0

enum setup { SETUP_NO_HOOK, SETUP_PASSED, SETUP_REDIRECTED, SETUP_FAILOVER_DIRECT, SETUP_COUNT };

static const char *const setup_names[SETUP_COUNT] = {
	[SETUP_NO_HOOK]         = "no hook",
	[SETUP_PASSED]          = "hook, not intercepted",
	[SETUP_REDIRECTED]      = "hook, intercepted (redirected)",
	[SETUP_FAILOVER_DIRECT] = "hook, failover mode, healthy",
};

struct bench {
	char mnt_dir[PATH_MAX];   /* private bpffs mount point */
	char pin_dir[PATH_MAX];
	char cgroup[PATH_MAX];
	char home_cgroup[PATH_MAX];
	uint64_t cgroup_id;
	int listen_fd;
	int direct_fd;            /* 127.0.0.3: failover mode's direct connects */
	struct dt_bpf bpf;
	bool mounted, cgroup_made, cgroup_entered, enrolled;
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int fail(const char *what)
{
	int rc = -errno;

	fprintf(stderr, "connect_cost: %s: %s\n", what, strerror(errno));
	return rc;
}

/* New network and mount namespaces, loopback up: the hook, the listener and
 * every connect stay out of the host's sight. */
static int enter_private_world(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, rc = 0;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		return fail("unshare");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return fail("make mounts private");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = fail("get lo flags");
	ifr.ifr_flags |= IFF_UP;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = fail("bring lo up");
	close(fd);
	return rc;
}

static struct sockaddr_in loopback(const char *ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &sa.sin_addr);
	return sa;
}

static int make_listener(const char *ip, int *fd_out)
{
	struct sockaddr_in sa = loopback(ip, LISTEN_PORT);
	int one = 1, fd;

	fd = *fd_out = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("listener socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, BACKLOG))
		return fail(ip);
	return 0;
}

/* Accept and close what is pending; returns how many. */
static int drain_accepts(int listen_fd)
{
	int fd, n = 0;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

static int mount_bpffs(struct bench *b)
{
	snprintf(b->mnt_dir, sizeof(b->mnt_dir), "/tmp/detour-bench.XXXXXX");
	if (!mkdtemp(b->mnt_dir)) {
		b->mnt_dir[0] = '\0';
		return fail("mkdtemp");
	}
	if (mount("bpf", b->mnt_dir, "bpf", 0, "mode=0700"))
		return fail("mount bpffs");
	b->mounted = true;
	snprintf(b->pin_dir, sizeof(b->pin_dir), "%s/detour", b->mnt_dir);
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int move_self(const char *cgroup)
{
	char procs[PATH_MAX + 16], pid[16];

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return write_file(procs, pid);
}

/* Our cgroup v2 directory, from the "0::PATH" line of /proc/self/cgroup. */
static int current_cgroup(const char *mount_point, char *out, size_t outlen)
{
	char line[PATH_MAX];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (rc && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, outlen, "%s%s", mount_point, line + 3);
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

static int enter_bench_cgroup(struct bench *b)
{
	char mount_point[PATH_MAX];
	int rc;

	if (dt_cgroup2_mount("/proc/mounts", mount_point, sizeof(mount_point)))
		return fail("cgroup v2 mount");
	rc = current_cgroup(mount_point, b->home_cgroup, sizeof(b->home_cgroup));
	if (rc) {
		errno = -rc;
		return fail("/proc/self/cgroup");
	}
	snprintf(b->cgroup, sizeof(b->cgroup), "%s/detour-bench-%d", mount_point, (int)getpid());
	if (mkdir(b->cgroup, 0755))
		return fail(b->cgroup);
	b->cgroup_made = true;
	rc = move_self(b->cgroup);
	if (rc) {
		errno = -rc;
		return fail("enter the bench cgroup");
	}
	b->cgroup_entered = true;
	rc = dt_cgroup_id(b->cgroup, &b->cgroup_id);
	if (rc) {
		errno = -rc;
		return fail("cgroup id");
	}
	return 0;
}

static struct dt_endpoint endpoint_of(const struct sockaddr_in *sa)
{
	struct dt_endpoint ep = { .port = sa->sin_port };

	ep.addr[2] = htonl(0xffff);
	ep.addr[3] = sa->sin_addr.s_addr;
	return ep;
}

static int refresh_settings(struct bench *b, enum dt_mode mode)
{
	struct sockaddr_in proxy = loopback("127.0.0.1", LISTEN_PORT);
	struct dt_config s = {
		.heartbeat_ns = dt_now_ns(),
		.heartbeat_ttl_ns = HEARTBEAT_TTL_NS,
		.listen4 = proxy.sin_addr.s_addr,
		.listen_port = proxy.sin_port,
		.mode = mode,
		.enabled = 1,
		/* agent_tgid 0 matches no process: the bench is not the agent */
	};

	return dt_bpf_write_settings(&b->bpf, &s);
}

/* Both intercepted destinations are provider 0's, whose verdict nobody
 * writes: HEALTHY (zeroes), as its endpoints' (no verdicts entry). */
static int load_hooks(struct bench *b, const struct sockaddr_in *redirected,
		      const struct sockaddr_in *direct)
{
	struct dt_endpoint ep = endpoint_of(redirected), ep_direct = endpoint_of(direct);
	struct dt_intercept val = { .provider_id = 0 };
	char err[512];
	int rc;

	rc = dt_bpf_load(&b->bpf, b->pin_dir, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "connect_cost: %s\n", err);
		return rc;
	}
	rc = dt_bpf_set_intercept(&b->bpf, &ep, &val);
	if (!rc)
		rc = dt_bpf_set_intercept(&b->bpf, &ep_direct, &val);
	if (!rc)
		rc = refresh_settings(b, DT_MODE_PROXY);
	if (rc)
		fprintf(stderr, "connect_cost: BPF maps: %s\n", strerror(-rc));
	return rc;
}

static int set_enrolled(struct bench *b, bool enrolled)
{
	char err[512];
	int rc;

	if (b->enrolled == enrolled)
		return 0;
	if (enrolled) {
		rc = dt_enroll(b->pin_dir, b->bpf.prog_fds, b->cgroup, BENCH_TAG, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "connect_cost: %s\n", err);
			return rc;
		}
	} else {
		rc = dt_unenroll(b->pin_dir, b->cgroup_id, BENCH_TAG);
		if (rc < 0) {
			fprintf(stderr, "connect_cost: unenroll: %s\n", strerror(-rc));
			return rc;
		}
	}
	b->enrolled = enrolled;
	return 0;
}

/* Time each of n connects to dst into ns[]. Each socket is closed with an
 * RST (SO_LINGER 0) so no TIME_WAIT piles up on the ports. */
static int time_connects(const struct bench *b, const struct sockaddr_in *dst, int n,
			 uint32_t *ns)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };

	for (int i = 0; i < n; i++) {
		uint64_t start, end;
		int fd, rc;

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail("socket");
		start = dt_now_ns();
		rc = connect(fd, (const struct sockaddr *)dst, sizeof(*dst));
		end = dt_now_ns();
		if (rc) {
			char ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &dst->sin_addr, ip, sizeof(ip));
			fprintf(stderr, "connect_cost: connect to %s:%u: %s\n", ip,
				ntohs(dst->sin_port), strerror(errno));
			close(fd);
			return -1;
		}
		ns[i] = (uint32_t)(end - start);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
	}
	drain_accepts(b->listen_fd);
	if (drain_accepts(b->direct_fd) != (dst->sin_addr.s_addr == htonl(0x7f000003) ? n : 0)) {
		fprintf(stderr, "connect_cost: failover mode did not leave every connect direct\n");
		return -1;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Sorts v. */
static double median_u32(uint32_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u32);
	return n % 2 ? v[n / 2] : ((double)v[n / 2 - 1] + v[n / 2]) / 2;
}

struct results {
	uint32_t *ns[SETUP_COUNT];    /* every connect's time, per set-up */
	double *added[SETUP_COUNT];   /* per block: its median minus no hook's */
	long blocks;
};

/*
 * Blocks of BLOCK connects, one per set-up in turn, the order rotating so
 * that no set-up always runs first after an enrollment change. Comparing
 * each block with its neighbours cancels the slow drift of a shared VM,
 * which is larger than the cost measured.
 */
static int run_blocks(struct bench *b, struct results *res)
{
	const struct sockaddr_in targets[SETUP_COUNT] = {
		[SETUP_NO_HOOK]    = loopback("127.0.0.1", LISTEN_PORT),
		[SETUP_PASSED]     = loopback("127.0.0.1", LISTEN_PORT),
		[SETUP_REDIRECTED] = loopback("127.0.0.2", LISTEN_PORT),
		[SETUP_FAILOVER_DIRECT] = loopback("127.0.0.3", LISTEN_PORT),
	};
	uint32_t scratch[BLOCK];
	int rc;

	rc = load_hooks(b, &targets[SETUP_REDIRECTED], &targets[SETUP_FAILOVER_DIRECT]);
	if (rc)
		return rc;
	for (long blk = 0; blk < res->blocks && !stopping; blk++) {
		double block_median[SETUP_COUNT];

		for (int k = 0; k < SETUP_COUNT; k++) {
			int s = (int)((blk + k) % SETUP_COUNT);
			uint32_t *ns = res->ns[s] + blk * BLOCK;

			rc = set_enrolled(b, s != SETUP_NO_HOOK);
			if (!rc)
				rc = refresh_settings(b, s == SETUP_FAILOVER_DIRECT ? DT_MODE_FAILOVER
										     : DT_MODE_PROXY);
			if (!rc)
				rc = time_connects(b, &targets[s], BLOCK, ns);
			if (rc)
				return rc;
			memcpy(scratch, ns, sizeof(scratch));
			block_median[s] = median_u32(scratch, BLOCK);
		}
		for (int s = 0; s < SETUP_COUNT; s++)
			res->added[s][blk] = block_median[s] - block_median[SETUP_NO_HOOK];
	}
	return stopping ? -EINTR : 0;
}

static void report(struct results *res)
{
	size_t n = (size_t)res->blocks * BLOCK;
	double added[SETUP_COUNT];

	printf("connect() to loopback, %zu connects per set-up in blocks of %d, interleaved:\n",
	       n, BLOCK);
	printf("  %-32s %12s %12s\n", "", "median ns", "added ns");
	for (int s = 0; s < SETUP_COUNT; s++) {
		added[s] = bench_median(res->added[s], res->blocks);
		printf("  %-32s %12.0f", setup_names[s], median_u32(res->ns[s], n));
		if (s != SETUP_NO_HOOK)
			printf(" %+12.0f", added[s]);
		printf("\n");
	}
	printf("  (added: median over blocks of the block's median minus the adjacent\n"
	       "   no-hook block's median)\n");
	printf("summary: connect() hook cost, not intercepted: %+.0f ns per connect "
	       "(target < %.0f ns: %s)\n", added[SETUP_PASSED], TARGET_NS,
	       added[SETUP_PASSED] < TARGET_NS ? "met" : "MISSED");
	printf("summary: connect() hook cost, intercepted (redirected): %+.0f ns per connect\n",
	       added[SETUP_REDIRECTED]);
	printf("summary: connect() hook cost, failover mode, healthy (left direct): %+.0f ns per connect\n",
	       added[SETUP_FAILOVER_DIRECT]);
}

static int results_alloc(struct results *res, long connects)
{
	res->blocks = (connects + BLOCK - 1) / BLOCK;
	for (int s = 0; s < SETUP_COUNT; s++) {
		res->ns[s] = calloc((size_t)res->blocks * BLOCK, sizeof(*res->ns[s]));
		res->added[s] = calloc((size_t)res->blocks, sizeof(*res->added[s]));
		if (!res->ns[s] || !res->added[s])
			return fail("calloc");
	}
	return 0;
}

static void results_free(struct results *res)
{
	for (int s = 0; s < SETUP_COUNT; s++) {
		free(res->ns[s]);
		free(res->added[s]);
	}
}

static void cleanup(struct bench *b)
{
	set_enrolled(b, false);
	dt_bpf_close(&b->bpf);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	if (b->direct_fd >= 0)
		close(b->direct_fd);
	if (b->cgroup_entered && move_self(b->home_cgroup))
		fprintf(stderr, "connect_cost: could not return to %s\n", b->home_cgroup);
	if (b->cgroup_made && rmdir(b->cgroup))
		fprintf(stderr, "connect_cost: rmdir %s: %s\n", b->cgroup, strerror(errno));
	if (b->mounted && umount(b->mnt_dir))
		fprintf(stderr, "connect_cost: umount %s: %s\n", b->mnt_dir, strerror(errno));
	if (b->mnt_dir[0])
		rmdir(b->mnt_dir);
}

static void usage(void)
{
	fprintf(stderr, "usage: connect_cost [--connects N]   (per set-up, default %d)\n",
		DEFAULT_CONNECTS);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "connects", required_argument, NULL, 'n' },
		{ "help",     no_argument,       NULL, 'h' },
		{ 0 },
	};
	struct sigaction stop = { .sa_handler = on_stop };
	struct bench b = { .listen_fd = -1, .direct_fd = -1 };
	struct results res = { 0 };
	long connects = DEFAULT_CONNECTS;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "n:h", options, NULL)) != -1) {
		if (opt != 'n') {
			usage();
			return opt == 'h' ? 0 : 2;
		}
		connects = strtol(optarg, NULL, 10);
	}
	if (connects < 1 || connects > MAX_CONNECTS || optind != argc) {
		usage();
		return 2;
	}
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);

	if (enter_private_world())
		return 1;
	rc = results_alloc(&res, connects);
	if (!rc)
		rc = make_listener("127.0.0.1", &b.listen_fd);
	if (!rc)
		rc = make_listener("127.0.0.3", &b.direct_fd);
	if (!rc)
		rc = mount_bpffs(&b);
	if (!rc)
		rc = enter_bench_cgroup(&b);
	if (!rc)
		rc = run_blocks(&b, &res);
	cleanup(&b);
	if (!rc)
		report(&res);
	results_free(&res);
	return rc ? 1 : 0;
}
