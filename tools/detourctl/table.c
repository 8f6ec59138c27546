// SPDX-License-Identifier: MIT
/* Text tables; see table.h. */
#include <stdlib.h>
#include <string.h>

#include "table.h"

struct ctl_table {
	const struct ctl_column *cols;
	size_t ncols;
	size_t *width;             /* widest cell of each column, header included */
	char **cells;              /* row-major, ncols per row */
	size_t nrows, cap_rows;
};

struct ctl_table *ctl_table_new(const struct ctl_column *cols, size_t ncols)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->width) {
		free(t);
		return NULL;
	}
	t->cols = cols;
	t->ncols = ncols;
	for (size_t c = 0; c < ncols; c++)
		t->width[c] = strlen(cols[c].header);
	return t;
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	char **row;

	if (t->nrows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
		char **grown = reallocarray(t->cells, cap * t->ncols, sizeof(*grown));

		if (!grown)
			return -1;
		t->cells = grown;
		t->cap_rows = cap;
	}
	row = &t->cells[t->nrows * t->ncols];
	for (size_t c = 0; c < t->ncols; c++) {
		row[c] = strdup(cells[c]);
		if (!row[c]) {
			while (c--)
				free(row[c]);
			return -1;
		}
	}
	for (size_t c = 0; c < t->ncols; c++) {
		size_t len = strlen(row[c]);

		if (len > t->width[c])
			t->width[c] = len;
	}
	t->nrows++;
	return 0;
}

size_t ctl_table_rows(const struct ctl_table *t)
{
	return t->nrows;
}

static void print_cell(const struct ctl_table *t, FILE *out, size_t c, const char *text)
{
	int width = (int)t->width[c];
	bool last = c + 1 == t->ncols;

	if (t->cols[c].right)
		fprintf(out, "%*s", width, text);
	else if (last)
		fputs(text, out); /* no trailing blanks */
	else
		fprintf(out, "%-*s", width, text);
	fputs(last ? "\n" : "  ", out);
}

void ctl_table_print(const struct ctl_table *t, FILE *out, const char *indent)
{
	fputs(indent, out);
	for (size_t c = 0; c < t->ncols; c++)
		print_cell(t, out, c, t->cols[c].header);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(indent, out);
		for (size_t c = 0; c < t->ncols; c++)
			print_cell(t, out, c, t->cells[r * t->ncols + c]);
	}
}
