/* SPDX-License-Identifier: MIT */
/*
 * Random identifiers and the time formats providers put in headers.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fakellm.h"

const char fl_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const char fl_hex[] = "0123456789abcdef";

/* Ids only need to look unique, not be secret: xorshift64* seeded once. */
static uint64_t rng_state;

void fl_random_init(void)
{
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
		rng_state = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	rng_state |= 1; /* xorshift never leaves zero */
}

static uint64_t random_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

void fl_random_id(char *out, size_t size, const char *prefix, size_t n, const char *alphabet)
{
	size_t plen = strlen(prefix);
	size_t alen = strlen(alphabet);
	size_t i;

	if (plen + n + 1 > size)
		n = size > plen + 1 ? size - plen - 1 : 0;
	if (plen >= size) {
		out[0] = '\0';
		return;
	}
	memcpy(out, prefix, plen);
	for (i = 0; i < n; i++)
		out[plen + i] = alphabet[random_next() % alen];
	out[plen + n] = '\0';
}

void fl_format_rfc3339(char *out, size_t size, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long fl_elapsed_ms(const struct timeval *since)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_usec - since->tv_usec) / 1000;
}

void fl_format_duration_ms(char *out, size_t size, uint64_t ms)
{
	uint64_t s = ms / 1000, frac = ms % 1000;

	if (ms == 0) {
		snprintf(out, size, "0s");
	} else if (ms < 1000) {
		snprintf(out, size, "%llums", (unsigned long long)ms);
	} else if (s >= 3600) {
		snprintf(out, size, "%lluh%llum%llus", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
	} else if (s >= 60) {
		snprintf(out, size, "%llum%llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	} else if (frac) {
		/* Go prints the shortest form: 1.5s, 1.25s, 1.005s */
		int digits = frac % 100 == 0 ? 1 : frac % 10 == 0 ? 2 : 3;
		unsigned long long shown = digits == 1 ? frac / 100 : digits == 2 ? frac / 10 : frac;

		snprintf(out, size, "%llu.%0*llus", (unsigned long long)s, digits, shown);
	} else {
		snprintf(out, size, "%llus", (unsigned long long)s);
	}
}
