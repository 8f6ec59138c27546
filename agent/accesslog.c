// SPDX-License-Identifier: MIT
/* The JSON-lines access log; see accesslog.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "family.h"
#include "json.h"
#include "log.h"
#include "reqrec.h"

#define NS_PER_MS 1000000ull

struct dt_accesslog {
	char *path;
	int fd;
	bool prompts;
	bool failing;          /* the last write failed: said once, not per line */
	uint64_t lines, failures;
};

/* Appending, never blocking (a FIFO that is not read drops lines). */
static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0640);
}

struct dt_accesslog *dt_accesslog_open(const char *path, bool prompts, char *err, size_t errlen)
{
	struct dt_accesslog *l = calloc(1, sizeof(*l));

	if (!l || !(l->path = strdup(path))) {
		snprintf(err, errlen, "access log: out of memory");
		free(l);
		return NULL;
	}
	l->prompts = prompts;
	l->fd = open_log(path);
	if (l->fd < 0) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
		free(l->path);
		free(l);
		return NULL;
	}
	return l;
}

int dt_accesslog_reopen(struct dt_accesslog *l)
{
	int fd = open_log(l->path);

	if (fd < 0)
		return -1;
	close(l->fd);
	l->fd = fd;
	l->failing = false;
	return 0;
}

void dt_accesslog_close(struct dt_accesslog *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l->path);
	free(l);
}

const char *dt_accesslog_path(const struct dt_accesslog *l)
{
	return l->path;
}

bool dt_accesslog_prompts(const struct dt_accesslog *l)
{
	return l->prompts;
}

uint64_t dt_accesslog_lines(const struct dt_accesslog *l)
{
	return l->lines;
}

uint64_t dt_accesslog_failures(const struct dt_accesslog *l)
{
	return l->failures;
}

/* Milliseconds with three decimals ("7.015"), from nanoseconds: integer
 * arithmetic, no floating-point formatting (a line is built per request). */
static void put_ms(struct dt_jbuf *b, const char *key, uint64_t ns)
{
	uint64_t us = ns / 1000;
	char frac[3] = { (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10) };

	dt_jbuf_key(b, key);
	dt_jbuf_int(b, (int64_t)(us / 1000));
	dt_jbuf_lit(b, ".");
	dt_jbuf_put(b, frac, sizeof(frac));
}

/* Two digits of a date or time. */
static void put2(char *at, unsigned v)
{
	at[0] = (char)('0' + v / 10 % 10);
	at[1] = (char)('0' + v % 10);
}

/* "2026-11-25T02:27:07.263Z" from unix milliseconds: the civil date of a
 * day count in the proleptic Gregorian calendar (eras of 400 years). */
static void put_time(struct dt_jbuf *b, int64_t wall_ms)
{
	int64_t secs = wall_ms / 1000, days = secs / 86400, rem = secs % 86400;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	unsigned day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	int64_t year = (int64_t)yoe + era * 400 + (month <= 2);
	char text[] = "0000-00-00T00:00:00.000Z";

	put2(text, (unsigned)(year / 100));
	put2(text + 2, (unsigned)(year % 100));
	put2(text + 5, month);
	put2(text + 8, day);
	put2(text + 11, (unsigned)(rem / 3600));
	put2(text + 14, (unsigned)(rem / 60 % 60));
	put2(text + 17, (unsigned)(rem % 60));
	text[20] = (char)('0' + wall_ms % 1000 / 100);
	put2(text + 21, (unsigned)(wall_ms % 100));
	dt_jbuf_key(b, "time");
	dt_jbuf_str(b, text);
}

static void put_attempt(struct dt_jbuf *b, const struct dt_reqrec *r,
			const struct dt_reqrec_attempt *a)
{
	dt_jbuf_sep(b);
	dt_jbuf_lit(b, "{");
	dt_jbuf_key(b, "provider");
	dt_jbuf_str(b, a->provider);
	dt_jbuf_key(b, "model");
	dt_jbuf_str(b, a->model && *a->model ? a->model : r->model);
	dt_jbuf_key(b, "outcome");
	dt_jbuf_str(b, dt_reqrec_outcome_name(a->outcome));
	dt_jbuf_key(b, "blame");
	dt_jbuf_str(b, dt_reqrec_blame_name(a->blame));
	dt_jbuf_key(b, "status");
	dt_jbuf_int(b, a->status);
	dt_jbuf_key(b, "hedge");
	dt_jbuf_bool(b, a->hedge);
	put_ms(b, "start_ms", a->start_ns);
	put_ms(b, "ms", a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0);
	dt_jbuf_lit(b, "}");
}

char *dt_accesslog_line(const struct dt_reqrec *r, size_t *len)
{
	const struct dt_reqrec_attempt *won = r->served >= 0 ? &r->attempts[r->served] : NULL;
	struct dt_jbuf b = {0};

	dt_jbuf_lit(&b, "{");
	put_time(&b, r->wall_ms);
	dt_jbuf_key(&b, "app");
	dt_jbuf_str(&b, r->app);
	dt_jbuf_key(&b, "api");
	dt_jbuf_str(&b, dt_family_info(r->shape)->name);
	dt_jbuf_key(&b, "provider");
	dt_jbuf_str(&b, r->provider);
	dt_jbuf_key(&b, "method");
	dt_jbuf_str(&b, r->method);
	dt_jbuf_key(&b, "path");
	dt_jbuf_strn(&b, r->path ? r->path : "", r->path ? r->path_len : 0);
	dt_jbuf_key(&b, "model");
	dt_jbuf_str(&b, r->model);
	dt_jbuf_key(&b, "stream");
	dt_jbuf_bool(&b, r->stream);
	dt_jbuf_key(&b, "status");
	dt_jbuf_int(&b, r->status);
	dt_jbuf_key(&b, "served_provider");
	dt_jbuf_str(&b, won ? won->provider : NULL);
	dt_jbuf_key(&b, "served_model");
	dt_jbuf_str(&b, won ? (won->model && *won->model ? won->model : r->model) : NULL);
	dt_jbuf_key(&b, "attempts");
	dt_jbuf_lit(&b, "[");
	for (size_t i = 0; i < r->n_attempts; i++)
		put_attempt(&b, r, &r->attempts[i]);
	dt_jbuf_lit(&b, "]");
	dt_jbuf_key(&b, "hedged");
	dt_jbuf_bool(&b, r->hedged);
	dt_jbuf_key(&b, "failover");
	dt_jbuf_bool(&b, r->failover);
	dt_jbuf_key(&b, "broken");
	dt_jbuf_bool(&b, r->broken);
	dt_jbuf_key(&b, "budget_refused");
	dt_jbuf_int(&b, r->budget_refused);
	if (r->ttfb_ns)
		put_ms(&b, "ttfb_ms", r->ttfb_ns);
	if (r->ttft_ns)
		put_ms(&b, "ttft_ms", r->ttft_ns);
	put_ms(&b, "total_ms", r->total_ns);
	if (r->usage.known) {
		dt_jbuf_key(&b, "tokens");
		dt_jbuf_lit(&b, "{");
		dt_jbuf_key(&b, "input");
		dt_jbuf_int(&b, r->usage.input_tokens);
		dt_jbuf_key(&b, "cached_input");
		dt_jbuf_int(&b, r->usage.cached_input_tokens);
		dt_jbuf_key(&b, "output");
		dt_jbuf_int(&b, r->usage.output_tokens);
		dt_jbuf_lit(&b, "}");
	}
	if (r->usage.known && r->priced) {
		dt_jbuf_key(&b, "cost_usd");
		dt_jbuf_num(&b, (double)r->cost_pico / 1e12);
	}
	if (r->prompt) {
		dt_jbuf_key(&b, "prompt");
		dt_jbuf_strn(&b, r->prompt, r->prompt_len);
	}
	dt_jbuf_lit(&b, "}\n");
	return dt_jbuf_finish(&b, len);
}

void dt_accesslog_write(struct dt_accesslog *l, const struct dt_reqrec *r)
{
	size_t len;
	char *line = dt_accesslog_line(r, &len);
	ssize_t n = line ? write(l->fd, line, len) : -1;
	int e = line ? errno : ENOMEM;

	free(line);
	if (n == (ssize_t)len) {
		l->lines++;
		l->failing = false;
		return;
	}
	l->failures++;
	if (!l->failing)
		log_warn("access log %s: %s; lines are dropped until a write succeeds", l->path,
			 n < 0 ? strerror(e) : "short write");
	l->failing = true;
}
