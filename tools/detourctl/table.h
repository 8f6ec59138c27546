/* SPDX-License-Identifier: MIT */
/* A text table: rows of cells collected first, printed with every column
 * as wide as its widest cell. */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct ctl_column {
	const char *header;
	bool right;                /* numbers align right */
};

struct ctl_table;

/* cols must outlive the table. NULL when out of memory. */
struct ctl_table *ctl_table_new(const struct ctl_column *cols, size_t ncols);
void ctl_table_free(struct ctl_table *t);

/* Append a row of ncols cells, copied. Returns 0, or -1 when out of memory. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);

size_t ctl_table_rows(const struct ctl_table *t);

/* Header and rows, each line starting with indent. */
void ctl_table_print(const struct ctl_table *t, FILE *out, const char *indent);

#endif
