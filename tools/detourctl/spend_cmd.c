// SPDX-License-Identifier: MIT
/* `detourctl spend [--json]`: what the answers cost since detourd started,
 * per application, provider, model and class, as detourd last wrote it to
 * <state_dir>/spend.json (docs/cost.md). --json prints that file as it is. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "daemon.h"
#include "detourctl.h"
#include "json.h"
#include "table.h"

#define SPEND_MAX (16 * 1024 * 1024)

static const struct ctl_column columns[] = {
	{ "APP", false }, { "PROVIDER", false }, { "MODEL", false }, { "CLASS", false },
	{ "REQUESTS", true }, { "INPUT", true }, { "CACHED", true }, { "OUTPUT", true },
	{ "COST $", true }, { "UNPRICED", true },
};

static const char *const texts[] = { "app", "provider", "model", "class" };
static const char *const counts[] = {
	"requests", "input_tokens", "cached_input_tokens", "output_tokens",
};

/* The file, whole; NULL when it cannot be read (said; *rc set). */
static char *read_all(const char *path, size_t *len, int *rc)
{
	FILE *f = fopen(path, "r");
	char *text = f ? malloc(SPEND_MAX + 1) : NULL;

	if (!f) {
		*rc = errno == ENOENT ? CTL_EXIT_NEVER : CTL_EXIT_FAILURE;
		fprintf(stderr, "detourctl: %s: %s%s\n", path, strerror(errno),
			errno == ENOENT ? " (detourd has answered no request yet)" : "");
		return NULL;
	}
	*len = text ? fread(text, 1, SPEND_MAX, f) : 0;
	fclose(f);
	if (!text || *len == SPEND_MAX) {
		fprintf(stderr, "detourctl: %s: %s\n", path, text ? "too large" : "out of memory");
		free(text);
		*rc = CTL_EXIT_FAILURE;
		return NULL;
	}
	text[*len] = '\0';
	return text;
}

static void micro_dollars(char *buf, size_t size, int64_t micro)
{
	snprintf(buf, size, "%" PRId64 ".%06" PRId64, micro / 1000000, micro % 1000000);
}

static int print_table(const struct dt_json *root, const char *path)
{
	const struct dt_json *rows = dt_json_get(root, "rows");
	const char *date;
	struct ctl_table *t = ctl_table_new(columns, sizeof(columns) / sizeof(columns[0]));
	struct dt_arena arena = {0};
	int64_t total = 0, unpriced = 0;
	char cells[10][64], sum[64];

	if (!t || !rows || rows->type != DT_JSON_ARRAY) {
		fprintf(stderr, "detourctl: %s: %s\n", path, t ? "no rows" : "out of memory");
		ctl_table_free(t);
		return CTL_EXIT_FAILURE;
	}
	for (const struct dt_json *r = rows->first; r; r = r->next) {
		const char *cell[10];

		for (size_t i = 0; i < 4; i++) {
			const char *s = dt_json_cstr(&arena, dt_json_get(r, texts[i]));

			snprintf(cells[i], sizeof(cells[i]), "%s", s ? s : "?");
		}
		for (size_t i = 0; i < 4; i++)
			snprintf(cells[4 + i], sizeof(cells[4 + i]), "%" PRId64,
				 dt_json_get_int(r, counts[i], 0));
		micro_dollars(cells[8], sizeof(cells[8]), dt_json_get_int(r, "cost_usd_micro", 0));
		snprintf(cells[9], sizeof(cells[9]), "%" PRId64, dt_json_get_int(r, "unpriced", 0));
		total += dt_json_get_int(r, "cost_usd_micro", 0);
		unpriced += dt_json_get_int(r, "unpriced", 0);
		for (size_t i = 0; i < 10; i++)
			cell[i] = cells[i];
		if (ctl_table_add(t, cell)) {
			fprintf(stderr, "detourctl: out of memory\n");
			ctl_table_free(t);
			dt_arena_free(&arena);
			return CTL_EXIT_FAILURE;
		}
	}
	ctl_table_print(t, stdout, "");
	micro_dollars(sum, sizeof(sum), total);
	date = dt_json_cstr(&arena, dt_json_get(root, "prices_date"));
	printf("total $%s (the configuration's prices, else the price list of %s)\n", sum,
	       date ? date : "- (none read)");
	if (unpriced)
		printf("%" PRId64 " answers of models without a known price: not in the total\n", unpriced);
	ctl_table_free(t);
	dt_arena_free(&arena);
	return CTL_EXIT_OK;
}

int ctl_cmd_spend(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char state_dir[PATH_MAX], path[PATH_MAX + 16], err[128], *text;
	struct dt_arena arena = {0};
	const struct dt_json *root;
	bool json = false;
	size_t len = 0;
	int c, rc;

	optind = 0; /* glibc: restart parsing on this command's own argv */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j') {
			fputs("usage: detourctl [-c CONFIG] spend [--json]\n", stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	if (optind != argc) {
		fputs("usage: detourctl [-c CONFIG] spend [--json]\n", stderr);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_state_dir(config, state_dir);
	if (rc != CTL_EXIT_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", state_dir, DT_SPEND_FILE);
	text = read_all(path, &len, &rc);
	if (!text)
		return rc;
	root = dt_json_parse(&arena, text, len, err, sizeof(err));
	if (!root || root->type != DT_JSON_OBJECT) {
		fprintf(stderr, "detourctl: %s: %s\n", path, root ? "not an object" : err);
		rc = CTL_EXIT_FAILURE;
	} else if (json) {
		fwrite(text, 1, len, stdout);
		rc = CTL_EXIT_OK;
	} else {
		rc = print_table(root, path);
	}
	dt_arena_free(&arena);
	free(text);
	return rc;
}
