// SPDX-License-Identifier: MIT
/*
 * verdict_watch: when does a health verdict become visible in the pinned
 * provider_health (or model_health) map?
 *
 * Reads one provider's entry, or one of its models', every 100 µs (a BPF
 * syscall each, no bpftool)
 * until its state is the one asked for with a since_ns later than when the
 * watch started, then prints
 *
 *   seen_ns=X since_ns=Y visible_us=Z state=S reason="..."
 *
 * seen_ns is when this reader first saw it and since_ns when the health
 * engine decided it (both CLOCK_MONOTONIC), so visible_us is how long the
 * deciding signal's verdict took to reach a reader of the map (the failover
 * hook, detourctl). bench/transition.sh starts it before each fault.
 *
 * Usage: verdict_watch --pin-dir DIR --provider ID [--model NAME] --state N
 *                      [--timeout-ms T]
 * Exits 0 when seen, 1 on timeout, 2 on bad usage or a map it cannot read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bpfobj.h"
#include "detour.h"

#define POLL_NS 100000L

static int usage(void)
{
	fprintf(stderr, "usage: verdict_watch --pin-dir DIR --provider ID [--model NAME] --state N "
		"[--timeout-ms T]\n");
	return 2;
}

/* A non-negative integer option no larger than max; -1 when it is not one. */
static long number(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno || end == s || *end || v < 0 || v > max ? -1 : v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "provider", required_argument, NULL, 'p' },
		{ "model", required_argument, NULL, 'm' },
		{ "state", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *model = NULL;
	struct dt_model_key mkey = { 0 };
	const void *key;
	long id = -1, state = -1, timeout_ms = 10000;
	struct dt_provider_health h;
	char path[4096];
	uint64_t start, deadline;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'p': id = number(optarg, DT_MAX_PROVIDERS - 1); break;
		case 'm': model = optarg; break;
		case 's': state = number(optarg, DT_PROBING); break;
		case 't': timeout_ms = number(optarg, 3600 * 1000); break;
		default: return usage();
		}
	}
	if (!dir || id < 0 || state < 0 || timeout_ms < 0 || optind != argc ||
	    (model && (!*model || strlen(model) >= sizeof(mkey.model))))
		return usage();
	mkey.provider_id = (__u32)id;
	if (model)
		memcpy(mkey.model, model, strlen(model));
	/* the provider map is an array indexed by the id: mkey's first member */
	key = &mkey;
	snprintf(path, sizeof(path), "%s/%s", dir, model ? DT_MAP_MODEL_HEALTH : DT_MAP_PROVIDER_HEALTH);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "verdict_watch: %s: %s\n", path, strerror(errno));
		return 2;
	}
	start = dt_now_ns();
	deadline = start + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int rc = bpf_map_lookup_elem(fd, key, &h);
		uint64_t t = dt_now_ns();

		/* a model not tracked yet has no entry */
		if (rc != 0 && !(model && errno == ENOENT)) {
			fprintf(stderr, "verdict_watch: lookup in %s: %s\n", path, strerror(errno));
			close(fd);
			return 2;
		}
		if (rc == 0 && h.state == (__u32)state && h.since_ns >= start) {
			h.reason_text[sizeof(h.reason_text) - 1] = '\0';
			printf("seen_ns=%llu since_ns=%llu visible_us=%.1f state=%u reason=\"%s\"\n",
			       (unsigned long long)t, (unsigned long long)h.since_ns,
			       t > h.since_ns ? (double)(t - h.since_ns) / 1000.0 : 0.0, h.state,
			       h.reason_text);
			close(fd);
			return 0;
		}
		if (t >= deadline) {
			close(fd);
			return 1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = POLL_NS }, NULL);
	}
}
