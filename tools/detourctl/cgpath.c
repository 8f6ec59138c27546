// SPDX-License-Identifier: MIT
/* Cgroup v2 paths; see cgpath.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "cgpath.h"
#include "config.h"

#define WALK_MAX_DEPTH 32
#define WALK_MAX_DIRS  100000

int ctl_cgroup_resolve(const char *arg, char out[PATH_MAX], char *err, size_t errlen)
{
	char mount[PATH_MAX], joined[PATH_MAX];
	struct statfs st;
	int rc;

	if (arg[0] == '/') {
		snprintf(joined, sizeof(joined), "%s", arg);
	} else {
		if (dt_cgroup2_mount("/proc/mounts", mount, sizeof(mount))) {
			rc = -errno;
			snprintf(err, errlen, "no cgroup v2 mount in /proc/mounts: %s",
				 strerror(errno));
			return rc;
		}
		if (snprintf(joined, sizeof(joined), "%s/%s", mount, arg) >= (int)sizeof(joined)) {
			snprintf(err, errlen, "cgroup path too long");
			return -ENAMETOOLONG;
		}
	}
	if (!realpath(joined, out)) {
		rc = -errno;
		snprintf(err, errlen, "cgroup %s: %s", joined, strerror(errno));
		return rc;
	}
	if (statfs(out, &st) || st.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(err, errlen, "%s is not a cgroup v2 directory", out);
		return -ENOTDIR;
	}
	return 0;
}

struct cg_walk {
	const uint64_t *ids;
	char **paths;
	size_t n, found;
	unsigned dirs_left;
	char path[PATH_MAX];
};

/* On cgroup v2 a directory's inode number is its cgroup id. */
static void note_dir(struct cg_walk *w, uint64_t ino)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->paths[i] || w->ids[i] != ino)
			continue;
		w->paths[i] = strdup(w->path);
		if (w->paths[i])
			w->found++;
	}
}

static void walk_dir(struct cg_walk *w, size_t len, unsigned depth)
{
	struct dirent *de;
	DIR *d;

	if (depth > WALK_MAX_DEPTH || w->dirs_left == 0)
		return;
	w->dirs_left--;
	d = opendir(w->path);
	if (!d)
		return;
	while (w->found < w->n && (de = readdir(d))) {
		size_t name_len = strlen(de->d_name);
		struct stat st;

		if ((de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) ||
		    strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (len + 1 + name_len >= sizeof(w->path))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
			continue;
		w->path[len] = '/';
		memcpy(w->path + len + 1, de->d_name, name_len + 1);
		note_dir(w, st.st_ino);
		walk_dir(w, len + 1 + name_len, depth + 1);
		w->path[len] = '\0';
	}
	closedir(d);
}

size_t ctl_cgroup_find_paths(const uint64_t *ids, char **paths, size_t n)
{
	struct cg_walk *w;
	struct stat st;
	size_t found;

	for (size_t i = 0; i < n; i++)
		paths[i] = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return 0;
	w->ids = ids;
	w->paths = paths;
	w->n = n;
	w->dirs_left = WALK_MAX_DIRS;
	if (n && dt_cgroup2_mount("/proc/mounts", w->path, sizeof(w->path)) == 0 &&
	    stat(w->path, &st) == 0) {
		note_dir(w, st.st_ino);
		walk_dir(w, strlen(w->path), 0);
	}
	found = w->found;
	free(w);
	return found;
}
