// SPDX-License-Identifier: MIT
/* Cgroup enrollment through pinned BPF links; see enroll.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>

#include "enroll.h"

const char *const dt_prog_names[DT_PROG_COUNT] = {
	[DT_PROG_CONNECT4]     = "connect4",
	[DT_PROG_CONNECT6]     = "connect6",
	[DT_PROG_GETPEERNAME4] = "getpeername4",
	[DT_PROG_GETPEERNAME6] = "getpeername6",
};

static const enum bpf_attach_type prog_attach_type[DT_PROG_COUNT] = {
	[DT_PROG_CONNECT4]     = BPF_CGROUP_INET4_CONNECT,
	[DT_PROG_CONNECT6]     = BPF_CGROUP_INET6_CONNECT,
	[DT_PROG_GETPEERNAME4] = BPF_CGROUP_INET4_GETPEERNAME,
	[DT_PROG_GETPEERNAME6] = BPF_CGROUP_INET6_GETPEERNAME,
};

#define BPFFS_DEFAULT "/sys/fs/bpf"

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int dt_pin_dir_prepare(const char *pin_dir, char *err, size_t errlen)
{
	char sub[PATH_MAX];
	int rc;

	/* systemd mounts bpffs on /sys/fs/bpf; minimal hosts may not have */
	if (path_under(pin_dir, BPFFS_DEFAULT) && !on_bpffs(BPFFS_DEFAULT)) {
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700")) {
			snprintf(err, errlen, "cannot mount bpffs on %s: %s",
				 BPFFS_DEFAULT, strerror(errno));
			return -errno;
		}
	}
	rc = mkdir_p(pin_dir, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create pin dir %s: %s", pin_dir, strerror(-rc));
		return rc;
	}
	if (!on_bpffs(pin_dir)) {
		snprintf(err, errlen, "pin dir %s is not on a bpf filesystem", pin_dir);
		return -EINVAL;
	}
	for (const char *const *d = (const char *const[]){ "links", "progs", NULL }; *d; d++) {
		snprintf(sub, sizeof(sub), "%s/%s", pin_dir, *d);
		if (mkdir(sub, 0700) && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", sub, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int dt_cgroup_id(const char *cgroup_path, uint64_t *id)
{
	struct stat st;

	/* on cgroup v2 the inode number is the kernel's cgroup id */
	if (stat(cgroup_path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*id = st.st_ino;
	return 0;
}

struct id_set {
	uint64_t *v;
	size_t n, cap;
};

static bool id_in(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static int id_add(struct id_set *s, uint64_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

/* Add the cgroup open as dir_fd (closed here) and those below it that are
 * in or under one of the roots. */
static int subtree_walk(int dir_fd, bool below_root, const uint64_t *roots, size_t n_roots,
			struct id_set *out)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (fstat(dir_fd, &st)) {
		rc = -errno;
		close(dir_fd);
		return rc;
	}
	below_root = below_root || id_in(roots, n_roots, st.st_ino);
	if (below_root && (rc = id_add(out, st.st_ino))) {
		close(dir_fd);
		return rc;
	}
	d = fdopendir(dir_fd);
	if (!d) {
		rc = -errno;
		close(dir_fd);
		return rc;
	}
	while (rc == 0 && (e = readdir(d))) {
		int fd;

		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) /* else removed since: nothing of it to add */
			rc = subtree_walk(fd, below_root, roots, n_roots, out);
	}
	closedir(d);
	return rc;
}

int dt_cgroup_subtree(const uint64_t *roots, size_t n_roots, uint64_t **ids, size_t *n_ids)
{
	struct id_set out = { 0 };
	struct mntent *m;
	FILE *mounts;
	int fd = -1, rc;

	mounts = setmntent("/proc/self/mounts", "re");
	if (!mounts)
		return -errno;
	while (fd < 0 && (m = getmntent(mounts)))
		if (strcmp(m->mnt_type, "cgroup2") == 0)
			fd = open(m->mnt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	endmntent(mounts);
	if (fd < 0)
		return -ENOENT;
	rc = subtree_walk(fd, false, roots, n_roots, &out);
	if (rc) {
		free(out.v);
		return rc;
	}
	*ids = out.v;
	*n_ids = out.n;
	return 0;
}

static void link_pin_path(char *buf, size_t len, const char *pin_dir,
			  const char *tag, uint64_t cgid, enum dt_prog prog)
{
	snprintf(buf, len, "%s/links/%s-%" PRIu64 "-%s", pin_dir, tag, cgid,
		 dt_prog_names[prog]);
}

static int link_cgroup(int link_fd, uint64_t *cgid, uint32_t *link_id, uint32_t *prog_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_CGROUP)
		return -EINVAL;
	*cgid = info.cgroup.cgroup_id; /* 0 once the cgroup is gone */
	if (link_id)
		*link_id = info.id;
	if (prog_id)
		*prog_id = info.prog_id;
	return 0;
}

/* Update a pinned link in place when it still holds this cgroup. Returns 1
 * when updated, 0 when there is no usable pin (a stale one is removed). */
static int link_reuse(const char *path, uint64_t cgid, int prog_fd)
{
	uint64_t linked = 0;
	int fd, rc;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = link_cgroup(fd, &linked, NULL, NULL);
	if (rc == 0 && linked == cgid) {
		rc = bpf_link_update(fd, prog_fd, NULL) ? -errno : 1;
		close(fd);
		return rc;
	}
	close(fd);
	unlink(path);
	return 0;
}

int dt_enroll(const char *pin_dir, const int prog_fds[DT_PROG_COUNT],
	      const char *cgroup_path, const char *tag, char *err, size_t errlen)
{
	char path[PATH_MAX];
	uint64_t cgid = 0;
	int cg_fd, rc;

	rc = dt_cgroup_id(cgroup_path, &cgid);
	if (rc) {
		snprintf(err, errlen, "cgroup %s: %s", cgroup_path, strerror(-rc));
		return rc;
	}
	cg_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cgroup %s: %s", cgroup_path, strerror(errno));
		return rc;
	}
	for (int p = 0; p < DT_PROG_COUNT; p++) {
		int link_fd;

		link_pin_path(path, sizeof(path), pin_dir, tag, cgid, p);
		rc = link_reuse(path, cgid, prog_fds[p]);
		if (rc < 0) {
			snprintf(err, errlen, "update link %s: %s", path, strerror(-rc));
			goto out;
		}
		if (rc == 1)
			continue;
		link_fd = bpf_link_create(prog_fds[p], cg_fd, prog_attach_type[p], NULL);
		if (link_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "attach %s to %s: %s", dt_prog_names[p],
				 cgroup_path, strerror(errno));
			goto out;
		}
		rc = bpf_obj_pin(link_fd, path) ? -errno : 0;
		if (rc) {
			snprintf(err, errlen, "pin %s: %s", path, strerror(-rc));
			bpf_link_detach(link_fd);
		}
		close(link_fd);
		if (rc)
			goto out;
	}
	rc = 0;
out:
	close(cg_fd);
	/* a half-enrolled cgroup would redirect without restoring getpeername */
	if (rc)
		dt_unenroll(pin_dir, cgid, tag);
	return rc;
}

/* Parse "<tag>-<cgid>-<prog>"; returns false for names that are not ours. */
static bool parse_link_name(const char *name, struct dt_link_pin *pin)
{
	const char *dash1 = strchr(name, '-'), *dash2;
	char *end;
	size_t tag_len;

	if (!dash1)
		return false;
	tag_len = (size_t)(dash1 - name);
	if (tag_len == 0 || tag_len >= sizeof(pin->tag))
		return false;
	errno = 0;
	pin->cgroup_id = strtoull(dash1 + 1, &end, 10);
	if (errno || end == dash1 + 1 || *end != '-')
		return false;
	dash2 = end;
	for (int p = 0; p < DT_PROG_COUNT; p++) {
		if (strcmp(dash2 + 1, dt_prog_names[p]) == 0) {
			memcpy(pin->tag, name, tag_len);
			pin->tag[tag_len] = '\0';
			pin->prog = p;
			return true;
		}
	}
	return false;
}

/* Call fn on every link pin of ours; stops early on a negative return. */
static int for_each_link_pin(const char *pin_dir,
			     int (*fn)(const char *path, int link_fd,
				       const struct dt_link_pin *pin, void *ctx),
			     void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	int rc = 0, total = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/links", pin_dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct dt_link_pin pin = {};
		uint64_t linked = 0;
		int fd;

		if (!parse_link_name(de->d_name, &pin))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (link_cgroup(fd, &linked, &pin.link_id, &pin.prog_id) == 0)
			pin.alive = linked != 0 && linked == pin.cgroup_id;
		rc = fn(path, fd, &pin, ctx);
		close(fd);
		if (rc < 0)
			break;
		total += rc;
	}
	closedir(d);
	return rc < 0 ? rc : total;
}

struct unenroll_filter {
	uint64_t cgroup_id; /* 0: every cgroup */
	const char *tag;    /* NULL: every tag */
	bool only_dead;
};

static int unenroll_one(const char *path, int link_fd, const struct dt_link_pin *pin, void *ctx)
{
	const struct unenroll_filter *f = ctx;

	if (f->cgroup_id && pin->cgroup_id != f->cgroup_id)
		return 0;
	if (f->tag && strcmp(f->tag, pin->tag) != 0)
		return 0;
	if (f->only_dead && pin->alive)
		return 0;
	/* detach explicitly: another holder of the link fd would keep it attached */
	if (pin->alive)
		bpf_link_detach(link_fd);
	return unlink(path) == 0 ? 1 : 0;
}

int dt_unenroll(const char *pin_dir, uint64_t cgroup_id, const char *tag)
{
	struct unenroll_filter f = { .cgroup_id = cgroup_id, .tag = tag };

	if (!cgroup_id)
		return -EINVAL;
	return for_each_link_pin(pin_dir, unenroll_one, &f);
}

int dt_unenroll_all(const char *pin_dir, const char *tag)
{
	struct unenroll_filter f = { .tag = tag };

	return for_each_link_pin(pin_dir, unenroll_one, &f);
}

int dt_links_prune(const char *pin_dir)
{
	struct unenroll_filter f = { .only_dead = true };

	return for_each_link_pin(pin_dir, unenroll_one, &f);
}

struct update_ctx {
	const int *prog_fds;
	const char *tag;
};

static int update_one(const char *path, int link_fd, const struct dt_link_pin *pin, void *ctx)
{
	const struct update_ctx *u = ctx;

	(void)path;
	if (!pin->alive || strcmp(pin->tag, u->tag) != 0)
		return 0;
	return bpf_link_update(link_fd, u->prog_fds[pin->prog], NULL) ? -errno : 1;
}

int dt_links_update(const char *pin_dir, const int prog_fds[DT_PROG_COUNT], const char *tag)
{
	struct update_ctx u = { .prog_fds = prog_fds, .tag = tag };

	return for_each_link_pin(pin_dir, update_one, &u);
}

struct list_ctx {
	struct dt_link_pin *out;
	size_t max, n;
};

static int list_one(const char *path, int link_fd, const struct dt_link_pin *pin, void *ctx)
{
	struct list_ctx *l = ctx;

	(void)path;
	(void)link_fd;
	if (l->n < l->max)
		l->out[l->n++] = *pin;
	return 0;
}

int dt_links_list(const char *pin_dir, struct dt_link_pin *out, size_t max)
{
	struct list_ctx l = { .out = out, .max = max };
	int rc = for_each_link_pin(pin_dir, list_one, &l);

	return rc < 0 ? rc : (int)l.n;
}
