/* SPDX-License-Identifier: MIT */
/*
 * What detour's observer programs (tcpsig.c, uplink.c) share: they read
 * detour's own intercept map, pin a counters map under the pin dir, and
 * report events through a BPF ring buffer read on the agent's libevent loop.
 */
#ifndef DT_OBSERVER_H
#define DT_OBSERVER_H

#include <bpf/libbpf.h>

struct event_base;
struct event;

/* Make @m, the object's intercept map, detour's map @fd (before load).
 * -EBADF: no fd; -EINVAL: @fd is not a hash dt_endpoint -> dt_intercept
 * (bpf_map__reuse_fd alone takes any map). */
int dt_observer_share_intercept(struct bpf_map *m, int fd);

/* Pin @m at @pin_dir/@name (before load): reused when pinned, created and
 * pinned otherwise. A pin of another layout (an older build) would make
 * the load fail; counters are soft state, so it is dropped. */
int dt_observer_pin(struct bpf_map *m, const char *pin_dir, const char *name);

/* A ring buffer drained on the loop whenever it has records: no polling. */
struct dt_observer_rb {
	struct ring_buffer *rb;
	struct event *ev;
};

int dt_observer_rb_open(struct dt_observer_rb *w, struct event_base *base,
			const struct bpf_map *map, ring_buffer_sample_fn fn, void *ctx);
/* Deliver what the buffer holds now. Returns the records delivered or -errno. */
int dt_observer_rb_drain(struct dt_observer_rb *w);
void dt_observer_rb_close(struct dt_observer_rb *w);

#endif
