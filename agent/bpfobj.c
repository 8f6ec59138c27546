// SPDX-License-Identifier: MIT
/* Loading detour's BPF object; see bpfobj.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfobj.h"
#include "detour.skel.h"

__u64 dt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static struct bpf_program *skel_prog(struct detour_bpf *skel, enum dt_prog p)
{
	switch (p) {
	case DT_PROG_CONNECT4:     return skel->progs.dt_connect4;
	case DT_PROG_CONNECT6:     return skel->progs.dt_connect6;
	case DT_PROG_GETPEERNAME4: return skel->progs.dt_getpeername4;
	case DT_PROG_GETPEERNAME6: return skel->progs.dt_getpeername6;
	case DT_PROG_COUNT:        break;
	}
	return NULL;
}

static int open_and_load(struct dt_bpf *b, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = b->pin_dir);
	int rc;

	b->skel = detour_bpf__open_opts(&opts);
	if (!b->skel) {
		rc = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(errno));
		return rc;
	}
	rc = detour_bpf__load(b->skel);
	if (rc) {
		snprintf(err, errlen, "load BPF programs: %s", strerror(-rc));
		detour_bpf__destroy(b->skel);
		b->skel = NULL;
	}
	return rc;
}

/* Maps pinned by an older, incompatible build block the load; they hold
 * soft state (counters, verdicts, resolutions) and the operator's
 * overrides, which an upgrade changing their layout cannot carry over:
 * start them afresh. */
static void unpin_maps(struct dt_bpf *b)
{
	static const char *const maps[] = {
		DT_MAP_SETTINGS, DT_MAP_INTERCEPT, DT_MAP_VERDICTS, DT_MAP_PROVIDERS,
		DT_MAP_EP_STATS, DT_MAP_STATS, DT_MAP_REDIRECTS, DT_MAP_SK_ORIGIN,
		DT_MAP_PROVIDER_HEALTH, DT_MAP_MODEL_HEALTH, DT_MAP_OVERRIDES,
		DT_MAP_PROXY_STATS,
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", b->pin_dir, maps[i]);
		unlink(path);
	}
}

static int pin_progs(struct dt_bpf *b, char *err, size_t errlen)
{
	char path[PATH_MAX];

	for (int p = 0; p < DT_PROG_COUNT; p++) {
		struct bpf_program *prog = skel_prog(b->skel, p);

		b->prog_fds[p] = bpf_program__fd(prog);
		snprintf(path, sizeof(path), "%s/progs/%s", b->pin_dir, dt_prog_names[p]);
		unlink(path);
		if (bpf_obj_pin(b->prog_fds[p], path)) {
			int rc = -errno;

			snprintf(err, errlen, "pin %s: %s", path, strerror(errno));
			return rc;
		}
	}
	return 0;
}

int dt_bpf_load(struct dt_bpf *b, const char *pin_dir, char *err, size_t errlen)
{
	int rc;

	memset(b, 0, sizeof(*b));
	if (snprintf(b->pin_dir, sizeof(b->pin_dir), "%s", pin_dir) >= (int)sizeof(b->pin_dir)) {
		snprintf(err, errlen, "pin dir too long");
		return -ENAMETOOLONG;
	}
	rc = dt_pin_dir_prepare(pin_dir, err, errlen);
	if (rc)
		return rc;
	rc = open_and_load(b, err, errlen);
	if (rc == -EINVAL) {
		unpin_maps(b);
		rc = open_and_load(b, err, errlen);
	}
	if (rc)
		return rc;
	rc = pin_progs(b, err, errlen);
	if (rc) {
		dt_bpf_close(b);
		return rc;
	}
	b->settings_fd = bpf_map__fd(b->skel->maps.settings);
	b->intercept_fd = bpf_map__fd(b->skel->maps.intercept);
	b->verdicts_fd = bpf_map__fd(b->skel->maps.verdicts);
	b->providers_fd = bpf_map__fd(b->skel->maps.providers);
	b->provider_health_fd = bpf_map__fd(b->skel->maps.provider_health);
	b->proxy_stats_fd = bpf_map__fd(b->skel->maps.proxy_stats);
	b->redirects_fd = bpf_map__fd(b->skel->maps.redirects);
	b->model_health_fd = bpf_map__fd(b->skel->maps.model_health);
	b->overrides_fd = bpf_map__fd(b->skel->maps.overrides);
	return 0;
}

void dt_bpf_close(struct dt_bpf *b)
{
	char path[PATH_MAX];

	if (!b->skel)
		return;
	for (int p = 0; p < DT_PROG_COUNT; p++) {
		snprintf(path, sizeof(path), "%s/progs/%s", b->pin_dir, dt_prog_names[p]);
		unlink(path);
	}
	detour_bpf__destroy(b->skel);
	b->skel = NULL;
}

static int update(int fd, const void *key, const void *val)
{
	return bpf_map_update_elem(fd, key, val, BPF_ANY) ? -errno : 0;
}

int dt_bpf_write_settings(const struct dt_bpf *b, const struct dt_config *s)
{
	__u32 zero = 0;

	return update(b->settings_fd, &zero, s);
}

int dt_bpf_take_origin(const struct dt_bpf *b, __u64 cookie, struct dt_origin *out)
{
	if (bpf_map_lookup_and_delete_elem(b->redirects_fd, &cookie, out))
		return -errno;
	return 0;
}

int dt_bpf_set_provider(const struct dt_bpf *b, __u32 id, const struct dt_provider *p)
{
	return update(b->providers_fd, &id, p);
}

int dt_bpf_set_provider_health(const struct dt_bpf *b, __u32 id, const struct dt_provider_health *h)
{
	return update(b->provider_health_fd, &id, h);
}

int dt_bpf_set_model_health(const struct dt_bpf *b, __u32 id, const char *model,
			    const struct dt_provider_health *h)
{
	struct dt_model_key key = { .provider_id = id };

	/* the rest of the name stays zero: the kernel hashes every byte */
	strncpy(key.model, model, sizeof(key.model) - 1);
	if (h)
		return update(b->model_health_fd, &key, h);
	if (bpf_map_delete_elem(b->model_health_fd, &key) && errno != ENOENT)
		return -errno;
	return 0;
}

int dt_bpf_set_proxy_stats(const struct dt_bpf *b, const struct dt_proxy_stats *s)
{
	__u32 key = 0;

	return update(b->proxy_stats_fd, &key, s);
}

int dt_bpf_set_verdict(const struct dt_bpf *b, const struct dt_endpoint *ep,
		       const struct dt_verdict *v)
{
	return update(b->verdicts_fd, ep, v);
}

int dt_bpf_delete_verdict(const struct dt_bpf *b, const struct dt_endpoint *ep)
{
	if (bpf_map_delete_elem(b->verdicts_fd, ep) && errno != ENOENT)
		return -errno;
	return 0;
}

int dt_bpf_set_intercept(const struct dt_bpf *b, const struct dt_endpoint *ep,
			 const struct dt_intercept *val)
{
	if (val)
		return update(b->intercept_fd, ep, val);
	if (bpf_map_delete_elem(b->intercept_fd, ep) && errno != ENOENT)
		return -errno;
	return 0;
}
