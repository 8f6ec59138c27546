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
/* Frees every block; the arena is empty and usable again. */
void dt_arena_free(struct dt_arena *a);

#endif
