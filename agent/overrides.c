// SPDX-License-Identifier: MIT
/* Applying the overrides map to the health engine; see overrides.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "health.h"
#include "log.h"
#include "overrides.h"
#include "setdiff.h"

/* An override resolved to the provider id it applies to. */
struct applied {
	uint32_t provider_id;
	char model[DT_MODEL_LEN];
	uint32_t kind;
};

struct dt_overrides {
	struct applied *now, *next;  /* as last applied; the reading being made */
	size_t n_now;
};

struct dt_overrides *dt_overrides_new(void)
{
	struct dt_overrides *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->now = calloc(DT_MAX_OVERRIDES, sizeof(*o->now));
	o->next = calloc(DT_MAX_OVERRIDES, sizeof(*o->next));
	if (!o->now || !o->next) {
		dt_overrides_free(o);
		return NULL;
	}
	return o;
}

void dt_overrides_free(struct dt_overrides *o)
{
	if (!o)
		return;
	free(o->now);
	free(o->next);
	free(o);
}

static int cmp_applied(const void *a, const void *b)
{
	const struct applied *x = a, *y = b;

	if (x->provider_id != y->provider_id)
		return x->provider_id < y->provider_id ? -1 : 1;
	return strcmp(x->model, y->model);
}

static int provider_id_of(const char names[][DT_NAME_LEN], const char *name)
{
	for (int id = 0; id < DT_MAX_PROVIDERS; id++)
		if (names[id][0] && strncmp(names[id], name, DT_NAME_LEN) == 0)
			return id;
	return -1;
}

/* The map's entries whose provider is configured, sorted, into o->next. */
static int read_map(struct dt_overrides *o, int fd, const char names[][DT_NAME_LEN])
{
	struct dt_override_key key, next, *prev = NULL;
	size_t n = 0;
	int err;

	while (n < DT_MAX_OVERRIDES && (err = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		struct dt_override val;
		int id;

		key = next;
		prev = &key;
		key.provider[DT_NAME_LEN - 1] = key.model[DT_MODEL_LEN - 1] = '\0';
		id = provider_id_of(names, key.provider);
		if (id < 0 || bpf_map_lookup_elem(fd, &next, &val) ||
		    (val.kind != DT_OVERRIDE_DRAIN && val.kind != DT_OVERRIDE_FORCE))
			continue;
		o->next[n].provider_id = (uint32_t)id;
		memcpy(o->next[n].model, key.model, sizeof(key.model));
		o->next[n].kind = val.kind;
		n++;
	}
	if (err && errno != ENOENT)
		return -errno;
	return (int)dt_sort_unique(o->next, n, sizeof(*o->next), cmp_applied);
}

struct apply_ctx {
	struct dt_health *h;
	const char (*names)[DT_NAME_LEN];
	uint64_t now;
	int changes;
};

static const char *kind_name(uint32_t kind)
{
	return kind == DT_OVERRIDE_DRAIN ? "drained" : kind == DT_OVERRIDE_FORCE ? "forced"
										  : "cleared";
}

static void apply(void *arg, const void *old, const void *new)
{
	const struct applied *was = old, *is = new, *a = is ? is : was;
	uint32_t kind = is ? is->kind : DT_OVERRIDE_NONE;
	struct apply_ctx *c = arg;

	if (was && is && was->kind == is->kind)
		return;
	/* cleared also when its provider was removed: an id taken again later
	 * must not inherit it */
	log_info("override: %s%s%s %s by operator",
		 c->names[a->provider_id][0] ? c->names[a->provider_id] : "a removed provider",
		 a->model[0] ? " model " : "", a->model, kind_name(kind));
	dt_health_override(c->h, a->provider_id, a->model[0] ? a->model : NULL, kind, c->now);
	c->changes++;
}

int dt_overrides_sync(struct dt_overrides *o, int fd, const char names[][DT_NAME_LEN],
		      struct dt_health *h, uint64_t now)
{
	struct apply_ctx c = { h, names, now, 0 };
	struct applied *swap;
	int n = read_map(o, fd, names);

	if (n < 0)
		return n;
	dt_setdiff(o->now, o->n_now, o->next, (size_t)n, sizeof(*o->now), cmp_applied, apply, &c);
	swap = o->now;
	o->now = o->next;
	o->next = swap;
	o->n_now = (size_t)n;
	return c.changes;
}
