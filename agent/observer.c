// SPDX-License-Identifier: MIT
/* What the observer programs share; see observer.h. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <event2/event.h>

#include "detour.h"
#include "observer.h"

static bool is_intercept_map(int fd, const struct bpf_map *want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	       info.type == bpf_map__type(want) &&
	       info.key_size == sizeof(struct dt_endpoint) &&
	       info.value_size == sizeof(struct dt_intercept);
}

int dt_observer_share_intercept(struct bpf_map *m, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (!is_intercept_map(fd, m))
		return -EINVAL;
	return bpf_map__reuse_fd(m, fd);
}

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

int dt_observer_pin(struct bpf_map *m, const char *pin_dir, const char *name)
{
	char pin[PATH_MAX];

	if (snprintf(pin, sizeof(pin), "%s/%s", pin_dir, name) >= (int)sizeof(pin))
		return -ENAMETOOLONG;
	drop_incompatible_pin(pin, m);
	return bpf_map__set_pin_path(m, pin);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dt_observer_rb *w = arg;

	(void)fd;
	(void)what;
	ring_buffer__consume(w->rb);
}

int dt_observer_rb_open(struct dt_observer_rb *w, struct event_base *base,
			const struct bpf_map *map, ring_buffer_sample_fn fn, void *ctx)
{
	w->rb = ring_buffer__new(bpf_map__fd(map), fn, ctx, NULL);
	if (!w->rb)
		return -errno;
	w->ev = event_new(base, ring_buffer__epoll_fd(w->rb), EV_READ | EV_PERSIST, on_readable, w);
	if (!w->ev || event_add(w->ev, NULL))
		return -ENOMEM;
	return 0;
}

int dt_observer_rb_drain(struct dt_observer_rb *w)
{
	return ring_buffer__consume(w->rb);
}

void dt_observer_rb_close(struct dt_observer_rb *w)
{
	if (w->ev)
		event_free(w->ev);
	ring_buffer__free(w->rb);
	w->ev = NULL;
	w->rb = NULL;
}
