// SPDX-License-Identifier: MIT
/* Kernel TCP signals: loading bpf/tcpsig.bpf.c and reading what it reports;
 * see tcpsig.h and docs/tcpsig.md. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/event.h>

#include "tcpsig.h"
#include "tcpsig.skel.h"

struct dt_tcpsig {
	struct tcpsig_bpf *skel;
	struct ring_buffer *rb;
	struct event *rb_ev;
	dt_tcpsig_cb cb;
	void *arg;
	__u64 delivered;
};

const char *dt_tcp_kind_name(enum dt_tcp_kind kind)
{
	switch (kind) {
	case DT_TCP_CONNECT_OK:        return "connect_ok";
	case DT_TCP_CONNECT_FAIL:      return "connect_fail";
	case DT_TCP_CONNECT_ABANDONED: return "connect_abandoned";
	case DT_TCP_RESET_RECV:        return "reset_recv";
	case DT_TCP_RESET_SENT:        return "reset_sent";
	case DT_TCP_RETRANSMIT:        return "retransmit";
	case DT_TCP_KIND_COUNT:        break;
	}
	return "unknown";
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct dt_tcpsig *t = ctx;
	const struct dt_tcp_event *ev = data;

	if (len < sizeof(*ev))
		return 0;
	t->delivered++;
	if (t->cb)
		t->cb(&ev->ep, (enum dt_tcp_kind)ev->kind, ev->value, ev->ts_ns, ev, t->arg);
	return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dt_tcpsig *t = arg;

	(void)fd;
	(void)what;
	ring_buffer__consume(t->rb);
}

int dt_tcpsig_drain(struct dt_tcpsig *t)
{
	return ring_buffer__consume(t->rb);
}

/* A tcp_signals pinned by a build with another layout would make the load
 * fail; the counters are soft state, so such a pin is dropped. */
static void drop_incompatible_pin(const char *path, const struct bpf_map *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
	    info.type != bpf_map__type(map) ||
	    info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map) ||
	    info.max_entries != bpf_map__max_entries(map))
		unlink(path);
	close(fd);
}

/* bpf_map__reuse_fd() takes any map: check it is an intercept map. */
static bool is_intercept_map(int fd, const struct bpf_map *want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	       info.type == bpf_map__type(want) &&
	       info.key_size == sizeof(struct dt_endpoint) &&
	       info.value_size == sizeof(struct dt_intercept);
}

static int fail(char *err, size_t errlen, int rc, const char *what)
{
	snprintf(err, errlen, "tcp signals: %s: %s", what, strerror(-rc));
	return rc;
}

int dt_tcpsig_open(struct dt_tcpsig **out, struct event_base *base,
		   const struct dt_tcpsig_opts *opts, char *err, size_t errlen)
{
	char pin[PATH_MAX];
	struct dt_tcpsig *t;
	int rc;

	*out = NULL;
	if (opts->intercept_fd < 0)
		return fail(err, errlen, -EBADF, "no intercept map");
	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(err, errlen, -ENOMEM, "allocate");
	t->cb = opts->cb;
	t->arg = opts->arg;

	t->skel = tcpsig_bpf__open();
	if (!t->skel) {
		rc = fail(err, errlen, -errno, "open BPF object");
		goto err_free;
	}
	t->skel->rodata->dt_mark = opts->mark;
	t->skel->rodata->dt_netns_cookie = opts->netns_cookie;
	/* detour's own table, not a copy: the hook and these programs agree */
	if (!is_intercept_map(opts->intercept_fd, t->skel->maps.intercept)) {
		rc = fail(err, errlen, -EINVAL, "not detour's intercept map");
		goto err_destroy;
	}
	rc = bpf_map__reuse_fd(t->skel->maps.intercept, opts->intercept_fd);
	if (rc) {
		fail(err, errlen, rc, "reuse the intercept map");
		goto err_destroy;
	}
	if (opts->pin_dir) {
		if (snprintf(pin, sizeof(pin), "%s/%s", opts->pin_dir, DT_MAP_TCP_SIGNALS) >=
		    (int)sizeof(pin)) {
			rc = fail(err, errlen, -ENAMETOOLONG, "pin path");
			goto err_destroy;
		}
		drop_incompatible_pin(pin, t->skel->maps.tcp_signals);
		/* reused when pinned, created and pinned otherwise */
		rc = bpf_map__set_pin_path(t->skel->maps.tcp_signals, pin);
		if (rc) {
			fail(err, errlen, rc, "pin path");
			goto err_destroy;
		}
	}
	/* On failure libbpf unpins what it pinned itself. */
	rc = tcpsig_bpf__load(t->skel);
	if (rc) {
		fail(err, errlen, rc, "load BPF programs (kernel BTF and 5.12+ needed)");
		goto err_destroy;
	}
	/* Links, not pinned: they go with the agent, crashed or not. */
	rc = tcpsig_bpf__attach(t->skel);
	if (rc) {
		fail(err, errlen, rc, "attach to the TCP tracepoints");
		goto err_destroy;
	}

	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.tcp_events), on_sample, t, NULL);
	if (!t->rb) {
		rc = fail(err, errlen, -errno, "ring buffer");
		goto err_destroy;
	}
	t->rb_ev = event_new(base, ring_buffer__epoll_fd(t->rb), EV_READ | EV_PERSIST,
			     on_readable, t);
	if (!t->rb_ev || event_add(t->rb_ev, NULL)) {
		rc = fail(err, errlen, -ENOMEM, "watch the ring buffer");
		goto err_destroy;
	}
	*out = t;
	return 0;

err_destroy:
	dt_tcpsig_close(t);
	return rc;
err_free:
	free(t);
	return rc;
}

void dt_tcpsig_close(struct dt_tcpsig *t)
{
	if (!t)
		return;
	if (t->rb_ev)
		event_free(t->rb_ev);
	ring_buffer__free(t->rb);
	/* detaches the links; a pinned tcp_signals keeps its pin */
	tcpsig_bpf__destroy(t->skel);
	free(t);
}

int dt_tcpsig_fd(const struct dt_tcpsig *t)
{
	return bpf_map__fd(t->skel->maps.tcp_signals);
}

int dt_tcpsig_read(const struct dt_tcpsig *t, const struct dt_endpoint *ep,
		   struct dt_tcp_signals *out)
{
	if (bpf_map_lookup_elem(dt_tcpsig_fd(t), ep, out))
		return -errno;
	return 0;
}

int dt_tcpsig_foreach_fd(int map_fd, dt_tcpsig_each_fn fn, void *arg)
{
	struct dt_endpoint key, next;
	struct dt_tcp_signals val;
	const void *prev = NULL;
	int rc;

	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		/* an LRU entry may go between the two calls: skip it */
		if (bpf_map_lookup_elem(map_fd, &key, &val))
			continue;
		rc = fn(&key, &val, arg);
		if (rc)
			return rc;
	}
	return errno == ENOENT ? 0 : -errno;
}

void dt_tcpsig_stats(const struct dt_tcpsig *t, __u64 *delivered, __u64 *lost)
{
	if (delivered)
		*delivered = t->delivered;
	if (lost)
		*lost = t->skel->bss ? __atomic_load_n(&t->skel->bss->events_lost, __ATOMIC_RELAXED) : 0;
}
