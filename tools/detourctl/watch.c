// SPDX-License-Identifier: MIT
/* `detourctl watch`: one line per verdict change of a provider or a model,
 * as detourd publishes them, by reading the health maps every interval and
 * comparing each reading with the one before (dt_healthmap_diff). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bpfobj.h"
#include "detourctl.h"
#include "format.h"
#include "healthmap.h"
#include "pinned.h"
#include "snapshot.h"

#define DEFAULT_INTERVAL_MS 50
#define NS_PER_MS 1000000ull

/* One reading: the names of the configured providers and their verdicts. */
struct reading {
	char names[DT_MAX_PROVIDERS][DT_NAME_LEN]; /* "" = no provider */
	struct dt_health_row *rows;
	size_t n;
};

struct watch {
	int providers_fd, provider_health_fd, model_health_fd;
	bool json;
	unsigned long count;       /* changes to print before stopping; 0: no limit */
	unsigned long printed;
	uint64_t mono_now, wall_now_ns; /* of the current reading */
	const struct reading *old, *new;
	int write_error;
};

static int read_once(struct watch *w, struct reading *r)
{
	bool used[DT_MAX_PROVIDERS];
	struct timespec wall;
	int n;

	for (__u32 id = 0; id < DT_MAX_PROVIDERS; id++) {
		struct dt_provider p;

		used[id] = bpf_map_lookup_elem(w->providers_fd, &id, &p) == 0 && p.used;
		snprintf(r->names[id], DT_NAME_LEN, "%.*s", DT_NAME_LEN - 1, used[id] ? p.name : "");
	}
	n = dt_healthmap_read(w->provider_health_fd, w->model_health_fd, used, r->rows);
	if (n < 0)
		return n;
	r->n = (size_t)n;
	w->mono_now = dt_now_ns();
	clock_gettime(CLOCK_REALTIME, &wall);
	w->wall_now_ns = (uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec;
	return 0;
}

/* "2026-11-24T23:40:01.123Z": the wall time of a CLOCK_MONOTONIC instant. */
static const char *wall_str(const struct watch *w, uint64_t mono, char *buf, size_t len)
{
	uint64_t ns = w->wall_now_ns - (w->mono_now > mono ? w->mono_now - mono : 0);
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03lluZ", (unsigned long long)(ns / NS_PER_MS % 1000));
	return buf;
}

static int print_json(const char *when, const char *provider, const char *model,
		      const char *from, const char *to, const struct dt_provider_health *v)
{
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:s}",
			      "time", when, "provider", provider, "model", model, "from", from,
			      "to", to, "reason", ctl_health_reason_name(v->reason),
			      "reason_text", v->reason_text);
	int rc;

	if (!o)
		return -1;
	rc = json_dumpf(o, stdout, JSON_COMPACT);
	json_decref(o);
	return rc || putchar('\n') == EOF ? -1 : 0;
}

static void on_change(void *arg, const struct dt_health_row *old, const struct dt_health_row *new)
{
	struct watch *w = arg;
	const struct dt_health_row *r = new ? new : old;
	/* a verdict that vanished keeps its last name (its provider may be gone) */
	const char *provider = (new ? w->new : w->old)->names[r->provider_id];
	const char *model = r->model[0] ? r->model : NULL;
	const char *from = old ? ctl_state_name(old->v.state) : "untracked";
	const char *to = new ? ctl_state_name(new->v.state) : "untracked";
	char when[40];

	if (w->write_error || (w->count && w->printed == w->count))
		return;
	/* a verdict that never changed (since 0) or vanished: seen now */
	wall_str(w, new && new->v.since_ns ? new->v.since_ns : w->mono_now, when, sizeof(when));
	if (w->json)
		w->write_error = print_json(when, provider, model, from, to, &r->v);
	else
		w->write_error = printf("%s %s%s%s: %s -> %s (%s)\n", when, provider,
					model ? " model " : "", model ? model : "", from, to,
					new ? new->v.reason_text : "no longer tracked") < 0;
	w->printed++;
	if (fflush(stdout))
		w->write_error = 1;
}

static int usage_error(const char *bad)
{
	fprintf(stderr, "detourctl: watch: %s\nusage: detourctl watch [--json] [--count N] "
		"[--timeout SECONDS] [--interval MS]\n", bad);
	return CTL_EXIT_USAGE;
}

static int parse_number(const char *s, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < 0 || *out > max ? -1 : 0;
}

static int open_maps(struct watch *w, const char *pin_dir)
{
	char err[512];
	int rc;

	w->providers_fd = ctl_map_open(pin_dir, DT_MAP_PROVIDERS, sizeof(__u32),
				       sizeof(struct dt_provider), err, sizeof(err));
	if (w->providers_fd < 0)
		return ctl_read_failed(pin_dir, w->providers_fd, err);
	rc = ctl_health_open(pin_dir, &w->provider_health_fd, &w->model_health_fd, err,
			     sizeof(err));
	if (rc) {
		close(w->providers_fd);
		return ctl_read_failed(pin_dir, rc, err);
	}
	return CTL_EXIT_OK;
}

/* Read every interval until count changes were printed or timeout_ns passed. */
static int follow(struct watch *w, const char *pin_dir, uint64_t interval_ns, uint64_t timeout_ns)
{
	struct reading *readings = calloc(2, sizeof(*readings));
	struct timespec pause = { .tv_sec = (time_t)(interval_ns / 1000000000ull),
				  .tv_nsec = (long)(interval_ns % 1000000000ull) };
	uint64_t start = dt_now_ns();
	int cur = 0, rc;

	for (int i = 0; i < 2; i++) {
		if (readings)
			readings[i].rows = calloc(DT_HEALTH_ROWS_MAX, sizeof(*readings[i].rows));
		if (!readings || !readings[i].rows) {
			fputs("detourctl: out of memory\n", stderr);
			rc = CTL_EXIT_FAILURE;
			goto out;
		}
	}
	/* the first reading is where changes are counted from */
	rc = read_once(w, &readings[cur]);
	while (rc == 0 && !w->write_error && (!w->count || w->printed < w->count)) {
		if (timeout_ns && dt_now_ns() - start >= timeout_ns)
			break;
		nanosleep(&pause, NULL);
		rc = read_once(w, &readings[!cur]);
		if (rc)
			break;
		w->old = &readings[cur];
		w->new = &readings[!cur];
		dt_healthmap_diff(w->old->rows, w->old->n, w->new->rows, w->new->n, on_change, w);
		cur = !cur;
	}
	if (rc) {
		fprintf(stderr, "detourctl: watch: %s/%s: %s\n", pin_dir, DT_MAP_PROVIDER_HEALTH,
			strerror(-rc));
		rc = CTL_EXIT_FAILURE;
	} else if (w->write_error) {
		fputs("detourctl: watch: cannot write the changes\n", stderr);
		rc = CTL_EXIT_FAILURE;
	} else {
		/* a count not reached before the timeout: what a test waited for did not come */
		rc = w->count && w->printed < w->count ? CTL_EXIT_AGENT : CTL_EXIT_OK;
	}
out:
	for (int i = 0; readings && i < 2; i++)
		free(readings[i].rows);
	free(readings);
	return rc;
}

int ctl_cmd_watch(const char *pin_dir, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch w = { .providers_fd = -1 };
	double count = 0, timeout = 0, interval = DEFAULT_INTERVAL_MS;
	int c, rc;

	optind = 0; /* glibc: restart parsing on this command's own argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': w.json = true; break;
		case 'n':
			if (parse_number(optarg, 1e9, &count) || count != (unsigned long)count)
				return usage_error("--count takes a whole number");
			break;
		case 't':
			if (parse_number(optarg, 1e7, &timeout))
				return usage_error("--timeout takes seconds");
			break;
		case 'i':
			if (parse_number(optarg, 60000, &interval) || interval < 1)
				return usage_error("--interval takes 1 to 60000 ms");
			break;
		default:
			return usage_error("unknown option");
		}
	}
	if (optind != argc)
		return usage_error("unexpected arguments");
	w.count = (unsigned long)count;
	rc = open_maps(&w, pin_dir);
	if (rc)
		return rc;
	rc = follow(&w, pin_dir, (uint64_t)(interval * NS_PER_MS), (uint64_t)(timeout * 1e9));
	close(w.model_health_fd);
	close(w.provider_health_fd);
	close(w.providers_fd);
	return rc;
}
