// SPDX-License-Identifier: MIT
/* Stickiness table; see sticky.h and docs/routing.md. */
#include <stdlib.h>
#include <string.h>

#include "sticky.h"

struct entry {
	uint64_t key;          /* 0: empty */
	uint64_t answered;     /* when the conversation was last answered */
	uint32_t provider_id;
};

struct dt_sticky {
	size_t mask;           /* sets - 1, sets a power of two */
	struct entry e[];      /* sets × DT_STICKY_WAYS */
};

struct dt_sticky *dt_sticky_new(size_t entries)
{
	size_t sets = 1;
	struct dt_sticky *t;

	while (sets * DT_STICKY_WAYS < entries && sets < ((size_t)1 << 40))
		sets <<= 1;
	t = calloc(1, sizeof(*t) + sets * DT_STICKY_WAYS * sizeof(t->e[0]));
	if (t)
		t->mask = sets - 1;
	return t;
}

void dt_sticky_free(struct dt_sticky *t)
{
	free(t);
}

size_t dt_sticky_capacity(const struct dt_sticky *t)
{
	return (t->mask + 1) * DT_STICKY_WAYS;
}

/* Keys are hashes already; the high bits, mixed once more, choose the set
 * so that keys differing only in their low bits spread too. */
static size_t set_start(const struct dt_sticky *t, uint64_t key)
{
	uint64_t z = key * 0x9e3779b97f4a7c15ull;

	return ((z ^ (z >> 32)) & t->mask) * DT_STICKY_WAYS;
}

bool dt_sticky_get(const struct dt_sticky *t, uint64_t key, uint64_t ttl_ns, uint64_t now,
		   uint32_t *provider_id)
{
	const struct entry *set = &t->e[set_start(t, key)];

	if (!key)
		return false;
	for (size_t i = 0; i < DT_STICKY_WAYS; i++) {
		if (set[i].key != key)
			continue;
		if (now >= set[i].answered && now - set[i].answered >= ttl_ns)
			return false;
		*provider_id = set[i].provider_id;
		return true;
	}
	return false;
}

void dt_sticky_put(struct dt_sticky *t, uint64_t key, uint32_t provider_id, uint64_t now)
{
	struct entry *set = &t->e[set_start(t, key)], *own = NULL, *empty = NULL;
	struct entry *oldest = &set[0];

	if (!key)
		return;
	for (size_t i = 0; i < DT_STICKY_WAYS; i++) {
		if (set[i].key == key)
			own = &set[i];
		else if (!set[i].key && !empty)
			empty = &set[i];
		if (set[i].answered < oldest->answered)
			oldest = &set[i];
	}
	/* its own entry, else an empty one, else the least recently answered */
	*(own ? own : empty ? empty : oldest) =
		(struct entry){ .key = key, .answered = now, .provider_id = provider_id };
}

static uint64_t mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 31);
}

/* A word at a time: conversations are hashed on every request of a
 * sticky class, and their first turn may be long. */
uint64_t dt_sticky_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t w = 0;

	h = mix(h, n);
	for (; n >= sizeof(w); s += sizeof(w), n -= sizeof(w)) {
		memcpy(&w, s, sizeof(w));
		h = mix(h, w);
	}
	w = 0;
	memcpy(&w, s, n);
	return mix(h, w);
}
