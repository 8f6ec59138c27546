/* SPDX-License-Identifier: MIT */
/* A bump allocator for objects that die together (a translated request, an
 * answer): many small strings and arrays, one free. */
#ifndef DT_ARENA_H
#define DT_ARENA_H

#include <stddef.h>

struct dt_arena_block;

struct dt_arena {
	struct dt_arena_block *head;
};

/* Zeroed memory, aligned for any type, that lives until dt_arena_free;
 * NULL when out of memory. */
void *dt_arena_alloc(struct dt_arena *a, size_t size);
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
