/* SPDX-License-Identifier: MIT */
/* Stickiness: which provider each recent conversation went to, so that its
 * next turns go there again while it can take them and its prompt cache
 * stays warm. A table of fixed size, set by its creator: memory never grows
 * with the number of conversations. Set-associative, as a CPU cache: a key
 * lives in one set of DT_STICKY_WAYS entries, a full set gives its least
 * recently answered entry to a new key. Pure logic with an injected clock
 * (`now`, CLOCK_MONOTONIC ns). Semantics: docs/routing.md. */
#ifndef DT_STICKY_H
#define DT_STICKY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_STICKY_WAYS 4

struct dt_sticky;

/* A table of at least `entries` entries (rounded up to a power of two
 * sets of DT_STICKY_WAYS, at least one set), 24 bytes each. NULL when out
 * of memory. */
struct dt_sticky *dt_sticky_new(size_t entries);
void dt_sticky_free(struct dt_sticky *t);
size_t dt_sticky_capacity(const struct dt_sticky *t);

/* The provider conversation `key` was last answered by, if that was less
 * than ttl_ns ago. A lookup changes nothing: an entry ages from its last
 * answer, as a provider's prompt cache does. */
bool dt_sticky_get(const struct dt_sticky *t, uint64_t key, uint64_t ttl_ns, uint64_t now,
		   uint32_t *provider_id);

/* Conversation `key` was answered by provider_id at now: its entry, made
 * or moved there. key 0 is no conversation and is ignored. */
void dt_sticky_put(struct dt_sticky *t, uint64_t key, uint32_t provider_id, uint64_t now);

/* Fold n bytes into the 64-bit hash h (start from any constant): keys are
 * built with it, from what names a conversation and from its scope. */
uint64_t dt_sticky_hash(uint64_t h, const void *p, size_t n);

#endif
