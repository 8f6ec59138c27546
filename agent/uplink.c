// SPDX-License-Identifier: MIT
/* Provider signals on the uplink: loading bpf/uplink.bpf.c, attaching it
 * and reading what it reports; see uplink.h and docs/uplink.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "observer.h"
#include "uplink.h"
#include "uplink.skel.h"

struct dt_uplink {
	struct uplink_bpf *skel;
	struct dt_observer_rb rb;
	int link_fd;            /* -1: not attached */
	__u32 attach_flags;     /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	char ifname[IF_NAMESIZE];
	enum dt_xdp_mode mode;  /* as asked */
	dt_uplink_cb cb;
	void *arg;
	__u64 delivered;
};

const char *dt_uplink_kind_name(enum dt_uplink_kind kind)
{
	switch (kind) {
	case DT_UPLINK_RESET:         return "reset";
	case DT_UPLINK_UNREACHABLE:   return "unreachable";
	case DT_UPLINK_TIME_EXCEEDED: return "time_exceeded";
	case DT_UPLINK_KIND_COUNT:    break;
	}
	return "unknown";
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct dt_uplink *u = ctx;

	if (len < sizeof(struct dt_uplink_event))
		return 0;
	u->delivered++;
	if (u->cb)
		u->cb(data, u->arg);
	return 0;
}

static int fail(char *err, size_t errlen, int rc, const char *what)
{
	snprintf(err, errlen, "uplink: %s: %s", what, strerror(-rc));
	return rc;
}

/* A BPF link, so the program goes with the agent, crashed or not, and
 * never replaces an XDP program someone else attached (the kernel refuses
 * with EBUSY or EEXIST). Auto mode: native first, generic when the driver
 * cannot (no XDP support, an MTU or offload it refuses). */
static int attach(struct dt_uplink *u, const char *ifname, enum dt_xdp_mode mode,
		  char *err, size_t errlen)
{
	static const __u32 order[][2] = {
		[DT_XDP_AUTO]    = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE },
		[DT_XDP_NATIVE]  = { XDP_FLAGS_DRV_MODE, 0 },
		[DT_XDP_GENERIC] = { XDP_FLAGS_SKB_MODE, 0 },
	};
	char what[IF_NAMESIZE + 64];
	unsigned ifindex = if_nametoindex(ifname);
	int rc = -EINVAL;

	if (!ifindex)
		return fail(err, errlen, -errno, ifname);
	for (int i = 0; i < 2 && order[mode][i]; i++) {
		LIBBPF_OPTS(bpf_link_create_opts, o, .flags = order[mode][i]);

		u->link_fd = bpf_link_create(bpf_program__fd(u->skel->progs.uplink_watch),
					     (int)ifindex, BPF_XDP, &o);
		if (u->link_fd >= 0) {
			u->attach_flags = order[mode][i];
			return 0;
		}
		rc = -errno;
		if (rc == -EBUSY || rc == -EEXIST) {
			snprintf(err, errlen, "uplink: %s already has an XDP program (not replaced)",
				 ifname);
			return rc;
		}
	}
	snprintf(what, sizeof(what), "attach XDP to %s (%s)", ifname,
		 mode == DT_XDP_NATIVE ? "native" : mode == DT_XDP_GENERIC ? "generic" : "native or generic");
	return fail(err, errlen, rc, what);
}

int dt_uplink_open(struct dt_uplink **out, struct event_base *base,
		   const struct dt_uplink_opts *opts, char *err, size_t errlen)
{
	struct dt_uplink *u;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return fail(err, errlen, -ENOMEM, "allocate");
	u->link_fd = -1;
	u->cb = opts->cb;
	u->arg = opts->arg;

	u->skel = uplink_bpf__open();
	if (!u->skel) {
		rc = fail(err, errlen, -errno, "open BPF object");
		goto err_close;
	}
	u->skel->rodata->dt_mark = opts->mark;
	/* detour's own table, not a copy: the hook and this program agree */
	rc = dt_observer_share_intercept(u->skel->maps.intercept, opts->intercept_fd);
	if (rc) {
		fail(err, errlen, rc, rc == -EINVAL ? "not detour's intercept map" : "intercept map");
		goto err_close;
	}
	if (opts->pin_dir) {
		rc = dt_observer_pin(u->skel->maps.uplink_signals, opts->pin_dir,
				     DT_MAP_UPLINK_SIGNALS);
		if (rc) {
			fail(err, errlen, rc, "pin path");
			goto err_close;
		}
	}
	/* On failure libbpf unpins what it pinned itself. */
	rc = uplink_bpf__load(u->skel);
	if (rc) {
		fail(err, errlen, rc, "load the XDP program (kernel BTF and 5.8+ needed)");
		goto err_close;
	}
	if (opts->ifname) {
		rc = attach(u, opts->ifname, opts->mode, err, errlen);
		if (rc)
			goto err_close;
		snprintf(u->ifname, sizeof(u->ifname), "%s", opts->ifname);
		u->mode = opts->mode;
	}
	rc = dt_observer_rb_open(&u->rb, base, u->skel->maps.uplink_events, on_sample, u);
	if (rc) {
		fail(err, errlen, rc, "watch the ring buffer");
		goto err_close;
	}
	*out = u;
	return 0;

err_close:
	dt_uplink_close(u);
	return rc;
}

void dt_uplink_close(struct dt_uplink *u)
{
	if (!u)
		return;
	if (u->link_fd >= 0)
		close(u->link_fd); /* detaches: the link is ours alone */
	dt_observer_rb_close(&u->rb);
	/* a pinned uplink_signals keeps its pin */
	uplink_bpf__destroy(u->skel);
	free(u);
}

int dt_uplink_drain(struct dt_uplink *u)
{
	return dt_observer_rb_drain(&u->rb);
}

bool dt_uplink_attached_as(const struct dt_uplink *u, const char *ifname, enum dt_xdp_mode mode)
{
	return u->link_fd >= 0 && u->mode == mode && strcmp(u->ifname, ifname) == 0;
}

const char *dt_uplink_mode_name(const struct dt_uplink *u)
{
	if (u->link_fd < 0)
		return "none";
	return u->attach_flags == XDP_FLAGS_DRV_MODE ? "native" : "generic";
}

int dt_uplink_fd(const struct dt_uplink *u)
{
	return bpf_map__fd(u->skel->maps.uplink_signals);
}

int dt_uplink_prog_fd(const struct dt_uplink *u)
{
	return bpf_program__fd(u->skel->progs.uplink_watch);
}

void dt_uplink_stats(const struct dt_uplink *u, __u64 *delivered, __u64 *lost)
{
	if (delivered)
		*delivered = u->delivered;
	if (lost)
		*lost = u->skel->bss ? __atomic_load_n(&u->skel->bss->events_lost, __ATOMIC_RELAXED) : 0;
}
