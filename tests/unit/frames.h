/* SPDX-License-Identifier: MIT */
/*
 * Ethernet frames built header by header, for running XDP programs with
 * BPF_PROG_TEST_RUN (tests/unit/test_uplink.c, bench/uplink_cost.c).
 * Checksums and IP lengths are left 0: XDP programs read headers, not
 * these. A frame that would overflow, or a bad address literal, aborts:
 * the callers build fixed frames.
 */
#ifndef DT_TEST_FRAMES_H
#define DT_TEST_FRAMES_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>

#define TH_RST 0x04
#define TH_ACK 0x10

struct frame {
	uint8_t b[256];
	size_t len;
};

static inline void frame_put(struct frame *f, const void *d, size_t n)
{
	if (f->len + n > sizeof(f->b))
		abort();
	memcpy(f->b + f->len, d, n);
	f->len += n;
}

static inline void frame_put16(struct frame *f, uint16_t v)
{
	v = htons(v);
	frame_put(f, &v, 2);
}

static inline void frame_addr(int family, const char *text, uint8_t *out)
{
	if (inet_pton(family, text, out) != 1)
		abort();
}

/* Ethernet; @tags 802.1Q tags before the type. */
static inline void frame_eth(struct frame *f, uint16_t type, int tags)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };

	frame_put(f, macs, sizeof(macs));
	for (int i = 0; i < tags; i++) {
		frame_put16(f, ETH_P_8021Q);
		frame_put16(f, (uint16_t)(100 + i));
	}
	frame_put16(f, type);
}

/* An IPv4 header without options; @frag_off as the header holds it. */
static inline void frame_ipv4(struct frame *f, const char *src, const char *dst, uint8_t proto,
			      uint16_t frag_off)
{
	uint8_t h[20] = { 0x45 };

	h[6] = (uint8_t)(frag_off >> 8);
	h[7] = (uint8_t)frag_off;
	h[8] = 64;
	h[9] = proto;
	frame_addr(AF_INET, src, h + 12);
	frame_addr(AF_INET, dst, h + 16);
	frame_put(f, h, sizeof(h));
}

static inline void frame_ipv6(struct frame *f, const char *src, const char *dst, uint8_t next)
{
	uint8_t h[40] = { 0x60 };

	h[6] = next;
	h[7] = 64;
	frame_addr(AF_INET6, src, h + 8);
	frame_addr(AF_INET6, dst, h + 24);
	frame_put(f, h, sizeof(h));
}

/* A TCP header without options. */
static inline void frame_tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint8_t h[20] = { 0 };

	h[0] = (uint8_t)(sport >> 8);
	h[1] = (uint8_t)sport;
	h[2] = (uint8_t)(dport >> 8);
	h[3] = (uint8_t)dport;
	h[12] = 5 << 4;
	h[13] = flags;
	frame_put(f, h, sizeof(h));
}

/* An ICMP or ICMPv6 error's header; what it quotes follows. */
static inline void frame_icmp(struct frame *f, uint8_t type, uint8_t code)
{
	uint8_t h[8] = { type, code };

	frame_put(f, h, sizeof(h));
}

/* The first 4 bytes of a transport header: all an ICMP error must quote. */
static inline void frame_ports(struct frame *f, uint16_t sport, uint16_t dport)
{
	frame_put16(f, sport);
	frame_put16(f, dport);
}

#endif
