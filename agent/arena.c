// SPDX-License-Identifier: MIT
/* Bump allocator; see arena.h. */
#include <stdarg.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/* An arena often lives as long as a stream (the parsed request of an
 * exchange): a small body takes a small first block (a one-message chat
 * request parses into ~800 bytes), 1 KB with its header, the most glibc
 * serves from its per-thread cache (larger ones take its slower path);
 * each block after it is twice the one before, so a large translated
 * request needs few. */
#define BLOCK_FIRST (1024 - sizeof(struct dt_arena_block))
#define BLOCK_MAX 65536

void *dt_arena_alloc_block(struct dt_arena *a, size_t size)
{
	struct dt_arena_block *b = a->head;
	size_t align = alignof(max_align_t);
	size_t need = (size + align - 1) & ~(align - 1), cap;

	if (need < size)
		return NULL;
	cap = !b ? BLOCK_FIRST : b->size < BLOCK_MAX / 2 ? b->size * 2 : BLOCK_MAX;
	if (cap < need)
		cap = need;
	if (cap > SIZE_MAX - sizeof(*b))
		return NULL;
	b = malloc(sizeof(*b) + cap);
	if (!b)
		return NULL;
	b->used = need;
	b->size = cap;
	b->borrowed = false;
	b->next = a->head;
	a->head = b;
	return memset(b->data, 0, need);
}

char *dt_arena_strndup(struct dt_arena *a, const char *s, size_t n)
{
	char *d = n < SIZE_MAX ? dt_arena_alloc(a, n + 1) : NULL;

	if (d)
		memcpy(d, s, n); /* the terminator is already 0 */
	return d;
}

char *dt_arena_strdup(struct dt_arena *a, const char *s)
{
	return dt_arena_strndup(a, s, strlen(s));
}

char *dt_arena_printf(struct dt_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *d;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(d = dt_arena_alloc(a, (size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return d;
}

void dt_arena_init_buf(struct dt_arena *a, void *buf, size_t size)
{
	uintptr_t at = ((uintptr_t)buf + alignof(struct dt_arena_block) - 1) &
		       ~(uintptr_t)(alignof(struct dt_arena_block) - 1);
	size_t skip = (size_t)(at - (uintptr_t)buf);
	struct dt_arena_block *b = (struct dt_arena_block *)at;

	a->head = NULL;
	if (size < skip + sizeof(*b))
		return; /* too small to hold anything: blocks are allocated */
	b->next = NULL;
	b->used = 0;
	b->size = size - skip - sizeof(*b);
	b->borrowed = true;
	a->head = b;
}

void dt_arena_free(struct dt_arena *a)
{
	while (a->head) {
		struct dt_arena_block *next = a->head->next;

		if (!a->head->borrowed)
			free(a->head);
		a->head = next;
	}
}
