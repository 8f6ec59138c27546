// SPDX-License-Identifier: MIT
/* Reading and comparing the published health verdicts; see healthmap.h. */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>

#include "healthmap.h"
#include "setdiff.h"

int dt_health_row_cmp(const void *a, const void *b)
{
	const struct dt_health_row *x = a, *y = b;

	if (x->provider_id != y->provider_id)
		return x->provider_id < y->provider_id ? -1 : 1;
	return strcmp(x->model, y->model);
}

int dt_healthmap_read(int provider_health_fd, int model_health_fd,
		      const bool used[DT_MAX_PROVIDERS], struct dt_health_row *rows)
{
	struct dt_model_key key, next, *prev = NULL;
	size_t n = 0;

	for (__u32 id = 0; id < DT_MAX_PROVIDERS; id++) {
		if (!used[id])
			continue;
		rows[n] = (struct dt_health_row){ .provider_id = id };
		if (bpf_map_lookup_elem(provider_health_fd, &id, &rows[n].v))
			return -errno;
		n++;
	}
	/* bounded by the room left even if the walk keeps restarting */
	while (n < DT_HEALTH_ROWS_MAX && bpf_map_get_next_key(model_health_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key.provider_id >= DT_MAX_PROVIDERS || !used[key.provider_id] || !key.model[0])
			continue; /* a provider being removed: detourd drops its models */
		if (bpf_map_lookup_elem(model_health_fd, &key, &rows[n].v))
			continue; /* removed meanwhile */
		rows[n].provider_id = key.provider_id;
		memcpy(rows[n].model, key.model, sizeof(rows[n].model));
		rows[n].model[sizeof(rows[n].model) - 1] = '\0';
		n++;
	}
	return (int)dt_sort_unique(rows, n, sizeof(*rows), dt_health_row_cmp);
}

struct diff_ctx {
	dt_health_row_change_fn fn;
	void *ctx;
};

static void on_pair(void *arg, const void *old, const void *new)
{
	const struct dt_health_row *o = old, *n = new;
	struct diff_ctx *d = arg;

	if (o && n && o->v.state == n->v.state && o->v.reason == n->v.reason &&
	    o->v.since_ns == n->v.since_ns)
		return;
	d->fn(d->ctx, o, n);
}

void dt_healthmap_diff(const struct dt_health_row *old, size_t n_old,
		       const struct dt_health_row *new, size_t n_new,
		       dt_health_row_change_fn fn, void *ctx)
{
	struct diff_ctx d = { fn, ctx };

	dt_setdiff(old, n_old, new, n_new, sizeof(*old), dt_health_row_cmp, on_pair, &d);
}
