// SPDX-License-Identifier: MIT
/* Reading detour's maps through their pins; see pinned.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "detourctl.h"
#include "pinned.h"

int ctl_map_open(const char *pin_dir, const char *name, uint32_t key_size,
		 uint32_t value_size, char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if (info.key_size != key_size || info.value_size != value_size) {
		snprintf(err, errlen, "%s: key/value of %u/%u bytes, this detourctl expects %u/%u "
			 "(detourd and detourctl come from different builds)",
			 path, info.key_size, info.value_size, key_size, value_size);
		close(fd);
		return -EPROTO;
	}
	return fd;
}

int ctl_read_settings(const char *pin_dir, struct dt_config *out, char *err, size_t errlen)
{
	__u32 zero = 0;
	int fd, rc = 0;

	fd = ctl_map_open(pin_dir, DT_MAP_SETTINGS, sizeof(zero), sizeof(*out), err, errlen);
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, out)) {
		rc = -errno;
		snprintf(err, errlen, "%s/%s: %s", pin_dir, DT_MAP_SETTINGS, strerror(errno));
	}
	close(fd);
	return rc;
}

/* Every field of struct dt_stats is a __u64 counter: sum them as an array. */
_Static_assert(sizeof(struct dt_stats) % sizeof(__u64) == 0, "dt_stats holds only __u64");
#define STATS_FIELDS (sizeof(struct dt_stats) / sizeof(__u64))

int ctl_read_stats(int stats_fd, struct dt_stats *out)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 (*percpu)[STATS_FIELDS];
	__u64 sum[STATS_FIELDS] = {0};
	__u32 zero = 0;

	if (ncpus <= 0)
		return ncpus < 0 ? ncpus : -EINVAL;
	/* per-CPU values come rounded up to 8 bytes each: dt_stats already is */
	percpu = calloc((size_t)ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(stats_fd, &zero, percpu)) {
		int rc = -errno;

		free(percpu);
		return rc;
	}
	for (int cpu = 0; cpu < ncpus; cpu++)
		for (size_t f = 0; f < STATS_FIELDS; f++)
			sum[f] += percpu[cpu][f];
	memcpy(out, sum, sizeof(*out));
	free(percpu);
	return 0;
}

int ctl_read_failed(const char *pin_dir, int rc, const char *err)
{
	char settings[PATH_MAX];
	struct stat st;

	snprintf(settings, sizeof(settings), "%s/%s", pin_dir, DT_MAP_SETTINGS);
	if (rc == -ENOENT && stat(pin_dir, &st) != 0) {
		fprintf(stderr, "detourctl: detour is not running and has never run with pin dir %s\n",
			pin_dir);
		return CTL_EXIT_NEVER;
	}
	if (rc == -ENOENT && stat(settings, &st) != 0) {
		fprintf(stderr, "detourctl: detour is not running and nothing of it is pinned in %s\n",
			pin_dir);
		return CTL_EXIT_NEVER;
	}
	fprintf(stderr, "detourctl: %s\n", err);
	if (rc == -EPERM || rc == -EACCES)
		fputs("detourctl: reading BPF pins needs root (CAP_BPF and access to the pin dir)\n",
		      stderr);
	return CTL_EXIT_FAILURE;
}
