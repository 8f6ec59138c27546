/* SPDX-License-Identifier: MIT */
/* A bump allocator for objects that die together (a translated request, an
 * answer): many small strings and arrays, one free. */
#ifndef DT_ARENA_H
#define DT_ARENA_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Blocks are visible here for dt_arena_alloc's inline path only. */
struct dt_arena_block {
	struct dt_arena_block *next;
	size_t used, size;
	bool borrowed;          /* the caller's buffer (dt_arena_init_buf): not freed */
	alignas(max_align_t) unsigned char data[];
};

struct dt_arena {
	struct dt_arena_block *head;
};

/* dt_arena_alloc when the newest block has no room: a new block. */
void *dt_arena_alloc_block(struct dt_arena *a, size_t size);

/* Zeroed memory, aligned for any type, that lives until dt_arena_free;
 * NULL when out of memory. Inline: a JSON parse makes one per value, and
 * the zeroing of a known size is then a few stores. */
static inline void *dt_arena_alloc(struct dt_arena *a, size_t size)
{
	struct dt_arena_block *b = a->head;
	size_t need = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);

	if (!b || need < size || b->size - b->used < need)
		return dt_arena_alloc_block(a, size);
	b->used += need;
	return memset(b->data + b->used - need, 0, need);
}
char *dt_arena_strndup(struct dt_arena *a, const char *s, size_t n);
char *dt_arena_strdup(struct dt_arena *a, const char *s);
char *dt_arena_printf(struct dt_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An arena whose first block is buf, size bytes the caller owns (on its
 * stack, say): a small parse that dies in the function that made it needs
 * no allocation. buf must outlive the arena's use; dt_arena_free leaves it. */
void dt_arena_init_buf(struct dt_arena *a, void *buf, size_t size);
/* Frees every block; the arena is empty and usable again. */
void dt_arena_free(struct dt_arena *a);

#endif
