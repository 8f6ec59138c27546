/* SPDX-License-Identifier: MIT */
/* Test side only: the private world of the unit tests whose BPF programs
 * watch the network (test_tcpsig, test_uplink): network and mount namespaces
 * of their own with lo up, a bpffs of their own for the pins, and an
 * intercept map like detourd's. Needs what lo_up.h needs and <sched.h>,
 * <stdbool.h>, <stdio.h>, <string.h>, <sys/mount.h>, <bpf/bpf.h>, "detour.h". */
#ifndef DT_TEST_BPF_WORLD_H
#define DT_TEST_BPF_WORLD_H

#include "lo_up.h"

struct bpf_world {
	char mnt[64];          /* the bpffs, where the programs pin their maps */
	bool mounted;
	int intercept_fd;
};

#define BPF_WORLD_INIT { .intercept_fd = -1 }

/* 0 once inside; -1 (said on stderr) otherwise, bpf_world_leave still due. */
static int bpf_world_enter(struct bpf_world *bw, const char *name)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || lo_up()) {
		fprintf(stderr, "test_%s: private namespaces: %s\n", name, strerror(errno));
		return -1;
	}
	snprintf(bw->mnt, sizeof(bw->mnt), "/tmp/detour-%s.XXXXXX", name);
	if (!mkdtemp(bw->mnt)) {
		bw->mnt[0] = '\0';
		return -1;
	}
	if (mount("bpf", bw->mnt, "bpf", 0, "mode=0700"))
		return -1;
	bw->mounted = true;
	bw->intercept_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "intercept",
					  sizeof(struct dt_endpoint), sizeof(struct dt_intercept),
					  DT_MAX_ENDPOINTS, NULL);
	return bw->intercept_fd < 0 ? -1 : 0;
}

/* The namespaces end with the process. */
static void bpf_world_leave(struct bpf_world *bw)
{
	if (bw->intercept_fd >= 0)
		close(bw->intercept_fd);
	if (bw->mounted)
		umount2(bw->mnt, MNT_DETACH);
	if (bw->mnt[0])
		rmdir(bw->mnt);
}

#endif
