// SPDX-License-Identifier: MIT
/* --rpm: a real requests-per-minute limit on generation calls, counted
 * over a sliding minute, so tests can see a client stay under it (or
 * not). Its state is reported in the rate-limit headers. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "fakellm.h"

#define WINDOW_MS 60000ull

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int fl_rpm_init(struct fl_rpm *r, unsigned limit)
{
	*r = (struct fl_rpm){ .limit = limit };
	if (!limit)
		return 0;
	r->times = calloc(limit, sizeof(*r->times));
	return r->times ? 0 : -ENOMEM;
}

void fl_rpm_free(struct fl_rpm *r)
{
	free(r->times);
	r->times = NULL;
}

bool fl_rpm_admit(struct fl_rpm *r, struct fl_meta *m)
{
	uint64_t now = now_ms(), oldest;

	/* the requests of more than a minute ago no longer count */
	while (r->count && now - r->times[r->head] >= WINDOW_MS) {
		r->head = (r->head + 1) % r->limit;
		r->count--;
	}
	m->rpm_limit = r->limit;
	if (r->count == r->limit) {
		oldest = r->times[r->head];
		m->limited = true;
		m->retry_after = (int)((oldest + WINDOW_MS - now + 999) / 1000);
		return false;
	}
	r->times[(r->head + r->count++) % r->limit] = now;
	oldest = r->times[r->head];
	m->rpm_left = r->limit - (unsigned)r->count;
	m->rpm_reset_ms = oldest + WINDOW_MS - now;
	return true;
}
