// SPDX-License-Identifier: MIT
/*
 * uplink_cost: what the uplink XDP program (bpf/uplink.bpf.c) costs a
 * frame, run by the kernel with BPF_PROG_TEST_RUN (its own clock, ns per
 * run over a block of runs), on three frames:
 *
 *   segment          a provider's TCP segment that is not a reset: what
 *                    nearly every frame on an uplink is (headers parsed)
 *   other reset      a reset from an address that is no provider's (one
 *                    intercept lookup)
 *   provider reset   a provider's reset: counted (socket lookup, counters,
 *                    a ring buffer record, drained between blocks)
 *
 * Each figure is the median over blocks, so a noisy neighbour in one block
 * does not move it. Needs root (BPF); touches no interface.
 *
 *   uplink_cost [--runs N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/event.h>

#include "uplink.h"
#include "../tests/unit/frames.h"

#define PROVIDER   "198.18.0.2"
#define STRANGER   "198.18.0.9"
#define LOCAL      "198.18.0.1"
#define PORT       443
/* runs per block: fewer than the ring buffer holds of the provider's
 * records, so none is lost (which would be a cheaper path) */
#define BLOCK_RUNS 500
#define MAX_BLOCKS 1000

enum kind { SEGMENT, OTHER_RESET, PROVIDER_RESET, KINDS };

static const char *const names[KINDS] = { "segment", "other reset", "provider reset" };

static struct frame tcp_frame(const char *src, uint8_t flags)
{
	struct frame f = { .len = 0 };

	frame_eth(&f, ETH_P_IP, 0);
	frame_ipv4(&f, src, LOCAL, IPPROTO_TCP, 0);
	frame_tcp(&f, PORT, 40000, flags);
	return f;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return (x > y) - (x < y);
}

static int provide(int intercept_fd)
{
	struct dt_endpoint ep = { .port = htons(PORT) };
	struct dt_intercept val = { .provider_id = 0 };

	ep.addr[2] = htonl(0xffff);
	frame_addr(AF_INET, PROVIDER, (uint8_t *)&ep.addr[3]);
	return bpf_map_update_elem(intercept_fd, &ep, &val, BPF_ANY);
}

int main(int argc, char **argv)
{
	struct frame frames[KINDS] = {
		[SEGMENT] = tcp_frame(PROVIDER, TH_ACK),
		[OTHER_RESET] = tcp_frame(STRANGER, TH_RST),
		[PROVIDER_RESET] = tcp_frame(PROVIDER, TH_RST),
	};
	static __u32 ns[KINDS][MAX_BLOCKS];
	struct dt_uplink_opts o = { .intercept_fd = -1 };
	struct event_base *base = event_base_new();
	struct dt_uplink *up;
	int runs = 200000, blocks, c;
	char err[256];
	__u64 lost;

	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ 0 },
	};

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'r')
			return 2;
		runs = atoi(optarg);
	}
	blocks = runs / BLOCK_RUNS;
	if (blocks < 1 || blocks > MAX_BLOCKS || !base) {
		fprintf(stderr, "uplink_cost: --runs from %d to %d\n", BLOCK_RUNS, BLOCK_RUNS * MAX_BLOCKS);
		return 2;
	}
	o.intercept_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "intercept", sizeof(struct dt_endpoint),
					sizeof(struct dt_intercept), DT_MAX_ENDPOINTS, NULL);
	if (o.intercept_fd < 0 || provide(o.intercept_fd)) {
		perror("uplink_cost: intercept map");
		return 1;
	}
	if (dt_uplink_open(&up, base, &o, err, sizeof(err))) {
		fprintf(stderr, "uplink_cost: %s\n", err);
		return 1;
	}
	/* interleaved, so drift on a busy machine hits every frame alike */
	for (int b = 0; b < blocks; b++) {
		for (int k = 0; k < KINDS; k++) {
			LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = frames[k].b,
				    .data_size_in = (__u32)frames[k].len, .repeat = BLOCK_RUNS);

			if (bpf_prog_test_run_opts(dt_uplink_prog_fd(up), &t) || t.retval != XDP_PASS) {
				perror("uplink_cost: BPF_PROG_TEST_RUN");
				return 1;
			}
			ns[k][b] = t.duration;
			dt_uplink_drain(up);
		}
	}
	dt_uplink_stats(up, NULL, &lost);
	printf("%d runs of each frame in blocks of %d, ns per frame (median of blocks, min, max):\n",
	       blocks * BLOCK_RUNS, BLOCK_RUNS);
	for (int k = 0; k < KINDS; k++) {
		qsort(ns[k], (size_t)blocks, sizeof(ns[k][0]), cmp_u32);
		printf("  %-15s %5u  (%u, %u)\n", names[k], ns[k][blocks / 2], ns[k][0], ns[k][blocks - 1]);
	}
	printf("  ring buffer records lost: %llu\n", (unsigned long long)lost);
	printf("uplink_cost: %u ns per segment, %u ns per reset from elsewhere, %u ns per provider reset counted\n",
	       ns[SEGMENT][blocks / 2], ns[OTHER_RESET][blocks / 2], ns[PROVIDER_RESET][blocks / 2]);
	dt_uplink_close(up);
	close(o.intercept_fd);
	event_base_free(base);
	return lost ? 1 : 0;
}
