// SPDX-License-Identifier: MIT
/* Kernel TCP signals: loading bpf/tcpsig.bpf.c and reading what it reports;
 * see tcpsig.h and docs/tcpsig.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "observer.h"
#include "tcpsig.h"
#include "tcpsig.skel.h"

struct dt_tcpsig {
	struct tcpsig_bpf *skel;
	struct dt_observer_rb rb;
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

int dt_tcpsig_drain(struct dt_tcpsig *t)
{
	return dt_observer_rb_drain(&t->rb);
}

static int fail(char *err, size_t errlen, int rc, const char *what)
{
	snprintf(err, errlen, "tcp signals: %s: %s", what, strerror(-rc));
	return rc;
}

int dt_tcpsig_open(struct dt_tcpsig **out, struct event_base *base,
		   const struct dt_tcpsig_opts *opts, char *err, size_t errlen)
{
	struct dt_tcpsig *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(err, errlen, -ENOMEM, "allocate");
	t->cb = opts->cb;
	t->arg = opts->arg;

	t->skel = tcpsig_bpf__open();
	if (!t->skel) {
		rc = fail(err, errlen, -errno, "open BPF object");
		goto err_destroy;
	}
	t->skel->rodata->dt_mark = opts->mark;
	t->skel->rodata->dt_netns_cookie = opts->netns_cookie;
	/* detour's own table, not a copy: the hook and these programs agree */
	rc = dt_observer_share_intercept(t->skel->maps.intercept, opts->intercept_fd);
	if (rc) {
		fail(err, errlen, rc, rc == -EINVAL ? "not detour's intercept map" : "intercept map");
		goto err_destroy;
	}
	if (opts->pin_dir) {
		rc = dt_observer_pin(t->skel->maps.tcp_signals, opts->pin_dir, DT_MAP_TCP_SIGNALS);
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

	rc = dt_observer_rb_open(&t->rb, base, t->skel->maps.tcp_events, on_sample, t);
	if (rc) {
		fail(err, errlen, rc, "watch the ring buffer");
		goto err_destroy;
	}
	*out = t;
	return 0;

err_destroy:
	dt_tcpsig_close(t);
	return rc;
}

void dt_tcpsig_close(struct dt_tcpsig *t)
{
	if (!t)
		return;
	dt_observer_rb_close(&t->rb);
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
