/* SPDX-License-Identifier: MIT */
/* The providers' rate-limit headers, read into numbers the health engine
 * takes (dt_health_ratelimit): what is left and when it comes back, so a
 * provider is set aside before its first 429. Pure parsing, no clock of its
 * own: reset times given as timestamps are made relative with the caller's
 * wall clock. Forms: docs/health.md. */
#ifndef DT_RATELIMIT_H
#define DT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "headers.h"

/* The limits a provider counts separately; Anthropic splits tokens into
 * input and output besides the total. */
enum dt_rl_kind {
	DT_RL_REQUESTS,
	DT_RL_TOKENS,
	DT_RL_INPUT_TOKENS,
	DT_RL_OUTPUT_TOKENS,
	DT_RL_KINDS,
};

struct dt_rl_limit {
	int64_t remaining;  /* -1: not given */
	int64_t reset_ms;   /* until the limit is refilled, from the answer's arrival; -1: not given */
	int64_t limit;      /* the whole allowance per window; -1: not given */
};

struct dt_ratelimit {
	struct dt_rl_limit limits[DT_RL_KINDS];
	int64_t retry_after_ms; /* -1: not given */
};

/* Every field "not given". */
void dt_ratelimit_init(struct dt_ratelimit *rl);

/* Read one response header into rl (name case-insensitive, neither
 * NUL-terminated). wall_ms: the caller's CLOCK_REALTIME in ms, for
 * Anthropic's RFC 3339 resets and HTTP-date retry-after. Returns true when
 * the header is one of the providers' rate-limit headers and its value
 * parsed; a malformed value leaves rl as it was. */
bool dt_ratelimit_header(struct dt_ratelimit *rl, const char *name, size_t name_len,
			 const char *value, size_t value_len, int64_t wall_ms);

/* dt_ratelimit_init, then every field of h read with dt_ratelimit_header
 * (h may be NULL). Returns true when any was a rate-limit header that
 * parsed. */
bool dt_ratelimit_headers(struct dt_ratelimit *rl, const struct dt_headers *h, int64_t wall_ms);

/* A Go duration as OpenAI writes its resets ("6m0s", "20ms", "1.5s",
 * "1h2m3.5s", units h m s ms us µs ns), rounded up to whole ms. */
bool dt_parse_go_duration_ms(const char *s, size_t len, uint64_t *ms);

/* An RFC 3339 timestamp ("2024-05-01T12:00:30Z", fractions, offsets) as ms
 * since the Unix epoch. */
bool dt_parse_rfc3339_ms(const char *s, size_t len, int64_t *unix_ms);

/* An HTTP-date in its preferred form, IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT"), as ms since the Unix epoch. */
bool dt_parse_http_date_ms(const char *s, size_t len, int64_t *unix_ms);

#endif
