// SPDX-License-Identifier: MIT
/* Rate-limit headers; see ratelimit.h and docs/health.md. */
#include <string.h>
#include <strings.h>

#include "ratelimit.h"

#define NS_PER_MS 1000000ull
/* Larger values are nonsense for a rate limit; refusing them keeps every
 * sum below far from overflow. */
#define MAX_MS (1ull << 53)
#define MS_PER_DAY 86400000ll

enum value_form {
	FORM_LIMIT,          /* a non-negative integer, the allowance */
	FORM_COUNT,          /* a non-negative integer, what is left */
	FORM_GO_DURATION,    /* OpenAI's resets */
	FORM_TIMESTAMP,      /* Anthropic's resets, RFC 3339 */
	FORM_RETRY_AFTER,    /* delta-seconds or HTTP-date */
	FORM_RETRY_AFTER_MS, /* OpenAI's retry-after-ms, fractions allowed */
};

struct header_form {
	const char *name;
	size_t name_len;       /* compared first: most fields of an answer differ in length */
	enum dt_rl_kind kind;  /* unused for retry-after */
	enum value_form form;
};

#define FORM(name, kind, form) { name, sizeof(name) - 1, kind, form }

/* By their first letter (lower case here): an answer's fields are looked
 * up by it, then by length, before their bytes. */
static const struct header_form openai_forms[] = {
	FORM("x-ratelimit-limit-requests", DT_RL_REQUESTS, FORM_LIMIT),
	FORM("x-ratelimit-limit-tokens", DT_RL_TOKENS, FORM_LIMIT),
	FORM("x-ratelimit-remaining-requests", DT_RL_REQUESTS, FORM_COUNT),
	FORM("x-ratelimit-remaining-tokens", DT_RL_TOKENS, FORM_COUNT),
	FORM("x-ratelimit-reset-requests", DT_RL_REQUESTS, FORM_GO_DURATION),
	FORM("x-ratelimit-reset-tokens", DT_RL_TOKENS, FORM_GO_DURATION),
};

static const struct header_form anthropic_forms[] = {
	FORM("anthropic-ratelimit-requests-limit", DT_RL_REQUESTS, FORM_LIMIT),
	FORM("anthropic-ratelimit-tokens-limit", DT_RL_TOKENS, FORM_LIMIT),
	FORM("anthropic-ratelimit-input-tokens-limit", DT_RL_INPUT_TOKENS, FORM_LIMIT),
	FORM("anthropic-ratelimit-output-tokens-limit", DT_RL_OUTPUT_TOKENS, FORM_LIMIT),
	FORM("anthropic-ratelimit-requests-remaining", DT_RL_REQUESTS, FORM_COUNT),
	FORM("anthropic-ratelimit-requests-reset", DT_RL_REQUESTS, FORM_TIMESTAMP),
	FORM("anthropic-ratelimit-tokens-remaining", DT_RL_TOKENS, FORM_COUNT),
	FORM("anthropic-ratelimit-tokens-reset", DT_RL_TOKENS, FORM_TIMESTAMP),
	FORM("anthropic-ratelimit-input-tokens-remaining", DT_RL_INPUT_TOKENS, FORM_COUNT),
	FORM("anthropic-ratelimit-input-tokens-reset", DT_RL_INPUT_TOKENS, FORM_TIMESTAMP),
	FORM("anthropic-ratelimit-output-tokens-remaining", DT_RL_OUTPUT_TOKENS, FORM_COUNT),
	FORM("anthropic-ratelimit-output-tokens-reset", DT_RL_OUTPUT_TOKENS, FORM_TIMESTAMP),
};

static const struct header_form retry_forms[] = {
	FORM("retry-after", DT_RL_REQUESTS, FORM_RETRY_AFTER),
	FORM("retry-after-ms", DT_RL_REQUESTS, FORM_RETRY_AFTER_MS),
};

void dt_ratelimit_init(struct dt_ratelimit *rl)
{
	for (int k = 0; k < DT_RL_KINDS; k++)
		rl->limits[k] = (struct dt_rl_limit){ -1, -1, -1 };
	rl->retry_after_ms = -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits at s[*i..] as a number below MAX_MS, advancing *i; false when
 * there are none or too many. */
static bool read_uint(const char *s, size_t len, size_t *i, uint64_t *out)
{
	size_t start = *i;
	uint64_t v = 0;

	for (; *i < len && is_digit(s[*i]); (*i)++) {
		v = v * 10 + (uint64_t)(s[*i] - '0');
		if (v >= MAX_MS)
			return false;
	}
	*out = v;
	return *i > start;
}

/* Exactly n digits at s[*i..]. */
static bool read_fixed(const char *s, size_t len, size_t *i, size_t n, int *out)
{
	int v = 0;

	if (len - *i < n)
		return false;
	for (size_t k = 0; k < n; k++, (*i)++) {
		if (!is_digit(s[*i]))
			return false;
		v = v * 10 + (s[*i] - '0');
	}
	*out = v;
	return true;
}

/* ".ddd" at s[*i..], if any, as a numerator over *scale (digits past the
 * ninth are read but dropped: nanoseconds are the finest unit). */
static bool read_fraction(const char *s, size_t len, size_t *i, uint64_t *num, uint64_t *scale)
{
	size_t start;

	*num = 0;
	*scale = 1;
	if (*i >= len || s[*i] != '.')
		return true;
	start = ++*i;
	for (; *i < len && is_digit(s[*i]); (*i)++) {
		if (*scale < 1000000000ull) {
			*num = *num * 10 + (uint64_t)(s[*i] - '0');
			*scale *= 10;
		}
	}
	return *i > start;
}

/* Does s (len bytes) hold word (n bytes) at i? */
static bool has_at(const char *s, size_t len, size_t i, const char *word, size_t n)
{
	return len - i >= n && memcmp(s + i, word, n) == 0;
}

static bool matches(const char *s, size_t len, size_t i, const char *word)
{
	return has_at(s, len, i, word, strlen(word));
}

/* Go's units, longest spelling first so "ms" is not read as "m". */
#define UNIT(name, ns) { name, sizeof(name) - 1, ns }
static const struct {
	const char *name;
	size_t len;
	uint64_t ns;
} go_units[] = {
	UNIT("ns", 1), UNIT("us", 1000), UNIT("\xc2\xb5s", 1000), UNIT("\xce\xbcs", 1000),
	UNIT("ms", NS_PER_MS), UNIT("s", 1000 * NS_PER_MS), UNIT("m", 60000 * NS_PER_MS),
	UNIT("h", 3600000 * NS_PER_MS),
};
#undef UNIT

bool dt_parse_go_duration_ms(const char *s, size_t len, uint64_t *ms)
{
	uint64_t ns = 0;
	size_t i = 0;

	if (len == 1 && s[0] == '0') { /* Go's one unitless duration */
		*ms = 0;
		return true;
	}
	if (len == 0)
		return false;
	while (i < len) {
		uint64_t whole, num, scale, unit = 0;
		size_t u;

		/* a leading ".5s" is Go too, but no provider writes it */
		if (!read_uint(s, len, &i, &whole) || !read_fraction(s, len, &i, &num, &scale))
			return false;
		for (u = 0; u < sizeof(go_units) / sizeof(go_units[0]); u++) {
			if (has_at(s, len, i, go_units[u].name, go_units[u].len)) {
				unit = go_units[u].ns;
				i += go_units[u].len;
				break;
			}
		}
		if (!unit || whole > MAX_MS * NS_PER_MS / unit)
			return false;
		ns += whole * unit + num * unit / scale;
		if (ns >= MAX_MS * NS_PER_MS)
			return false;
	}
	/* rounded up: coming back a little late beats a 429 */
	*ms = (ns + NS_PER_MS - 1) / NS_PER_MS;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no timegm, no time zone. */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date_time(int y, int mo, int d, int h, int mi, int sec)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return false;
	return d <= mdays[mo - 1] + (mo == 2 && leap(y));
}

static int64_t epoch_ms(int y, int mo, int d, int h, int mi, int sec)
{
	/* a leap second (:60) is read as the next second's start */
	return days_from_civil(y, mo, d) * MS_PER_DAY + ((int64_t)h * 3600 + mi * 60 + sec) * 1000;
}

/* "Z" or "+hh:mm" / "-hh:mm", as an offset in ms to subtract. */
static bool read_offset(const char *s, size_t len, size_t *i, int64_t *offset_ms)
{
	int oh, om, sign;

	if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
		(*i)++;
		*offset_ms = 0;
		return true;
	}
	if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
		return false;
	sign = s[(*i)++] == '-' ? -1 : 1;
	if (!read_fixed(s, len, i, 2, &oh) || *i >= len || s[(*i)++] != ':' ||
	    !read_fixed(s, len, i, 2, &om) || oh > 23 || om > 59)
		return false;
	*offset_ms = sign * ((int64_t)oh * 60 + om) * 60000;
	return true;
}

static bool date_time_separator(char c)
{
	return c == 'T' || c == 't' || c == ' ';
}

bool dt_parse_rfc3339_ms(const char *s, size_t len, int64_t *unix_ms)
{
	int y, mo, d, h, mi, sec;
	uint64_t num, scale;
	int64_t offset_ms;
	size_t i = 0;

	/* RFC 3339 allows a lower-case 't' and, in its note, a space */
	if (!read_fixed(s, len, &i, 4, &y) || i >= len || s[i++] != '-' ||
	    !read_fixed(s, len, &i, 2, &mo) || i >= len || s[i++] != '-' ||
	    !read_fixed(s, len, &i, 2, &d) || i >= len || !date_time_separator(s[i++]) ||
	    !read_fixed(s, len, &i, 2, &h) || i >= len || s[i++] != ':' ||
	    !read_fixed(s, len, &i, 2, &mi) || i >= len || s[i++] != ':' ||
	    !read_fixed(s, len, &i, 2, &sec) || !read_fraction(s, len, &i, &num, &scale) ||
	    !read_offset(s, len, &i, &offset_ms) || i != len || !valid_date_time(y, mo, d, h, mi, sec))
		return false;
	*unix_ms = epoch_ms(y, mo, d, h, mi, sec) + (int64_t)(num * 1000 / scale) - offset_ms;
	return true;
}

static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static const char *const day_names[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };

static int name_index(const char *s, size_t len, size_t i, const char *const *names, int n)
{
	for (int k = 0; k < n; k++)
		if (matches(s, len, i, names[k]))
			return k;
	return -1;
}

bool dt_parse_http_date_ms(const char *s, size_t len, int64_t *unix_ms)
{
	int y, mo, d, h, mi, sec;
	size_t i = 0;

	/* "Sun, 06 Nov 1994 08:49:37 GMT": the day name is checked for form
	 * only; the date decides */
	if (len != 29 || name_index(s, len, 0, day_names, 7) < 0 || !matches(s, len, 3, ", "))
		return false;
	i = 5;
	if (!read_fixed(s, len, &i, 2, &d) || s[i++] != ' ')
		return false;
	mo = name_index(s, len, i, month_names, 12) + 1;
	i += 3;
	if (mo == 0 || s[i++] != ' ' || !read_fixed(s, len, &i, 4, &y) || s[i++] != ' ' ||
	    !read_fixed(s, len, &i, 2, &h) || s[i++] != ':' || !read_fixed(s, len, &i, 2, &mi) ||
	    s[i++] != ':' || !read_fixed(s, len, &i, 2, &sec) || !matches(s, len, i, " GMT") ||
	    !valid_date_time(y, mo, d, h, mi, sec))
		return false;
	*unix_ms = epoch_ms(y, mo, d, h, mi, sec);
	return true;
}

/* Every digit, nothing else, below MAX_MS. */
static bool parse_count(const char *s, size_t len, uint64_t *out)
{
	size_t i = 0;

	return read_uint(s, len, &i, out) && i == len;
}

/* An absolute time made relative; a time already past is "now" (0). */
static int64_t ms_until(int64_t at_ms, int64_t wall_ms)
{
	return at_ms > wall_ms ? at_ms - wall_ms : 0;
}

/* "1500" or "1500.5": OpenAI's retry-after-ms, rounded up. */
static bool parse_decimal_ms(const char *s, size_t len, uint64_t *ms)
{
	uint64_t whole, num, scale;
	size_t i = 0;

	if (!read_uint(s, len, &i, &whole) || !read_fraction(s, len, &i, &num, &scale) || i != len)
		return false;
	*ms = whole + (num > 0);
	return true;
}

static bool parse_retry_after(const char *s, size_t len, int64_t wall_ms, int64_t *ms)
{
	uint64_t seconds;
	int64_t at;

	if (parse_count(s, len, &seconds) && seconds < MAX_MS / 1000) {
		*ms = (int64_t)seconds * 1000;
		return true;
	}
	if (!dt_parse_http_date_ms(s, len, &at))
		return false;
	*ms = ms_until(at, wall_ms);
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Every answer's fields are looked up, and most are of no form. */
static const struct header_form *form_of(const char *name, size_t name_len)
{
#define GROUP(list) (forms = list, n = sizeof(list) / sizeof(list[0]))
	const struct header_form *forms;
	size_t n;

	switch (name_len ? name[0] | 0x20 : 0) {
	case 'x': GROUP(openai_forms); break;
	case 'a': GROUP(anthropic_forms); break;
	case 'r': GROUP(retry_forms); break;
	default: return NULL;
	}
#undef GROUP
	for (size_t k = 0; k < n; k++)
		if (forms[k].name_len == name_len &&
		    strncasecmp(forms[k].name + 1, name + 1, name_len - 1) == 0)
			return &forms[k];
	return NULL;
}

/* The value of a field of form f into rl. */
static bool read_form(struct dt_ratelimit *rl, const struct header_form *f, const char *value,
		      size_t value_len, int64_t wall_ms)
{
	struct dt_rl_limit *limit;
	uint64_t u;
	int64_t at;

	/* optional white space around a field value is not part of it */
	while (value_len && is_space(*value))
		value++, value_len--;
	while (value_len && is_space(value[value_len - 1]))
		value_len--;
	limit = &rl->limits[f->kind];
	switch (f->form) {
	case FORM_LIMIT:
		if (!parse_count(value, value_len, &u))
			return false;
		limit->limit = (int64_t)u;
		return true;
	case FORM_COUNT:
		if (!parse_count(value, value_len, &u))
			return false;
		limit->remaining = (int64_t)u;
		return true;
	case FORM_GO_DURATION:
		if (!dt_parse_go_duration_ms(value, value_len, &u))
			return false;
		limit->reset_ms = (int64_t)u;
		return true;
	case FORM_TIMESTAMP:
		if (!dt_parse_rfc3339_ms(value, value_len, &at))
			return false;
		limit->reset_ms = ms_until(at, wall_ms);
		return true;
	case FORM_RETRY_AFTER:
		return parse_retry_after(value, value_len, wall_ms, &rl->retry_after_ms);
	case FORM_RETRY_AFTER_MS:
		if (!parse_decimal_ms(value, value_len, &u))
			return false;
		rl->retry_after_ms = (int64_t)u;
		return true;
	}
	return false;
}

bool dt_ratelimit_header(struct dt_ratelimit *rl, const char *name, size_t name_len,
			 const char *value, size_t value_len, int64_t wall_ms)
{
	const struct header_form *f = form_of(name, name_len);

	return f && read_form(rl, f, value, value_len, wall_ms);
}

bool dt_ratelimit_headers(struct dt_ratelimit *rl, const struct dt_headers *h, int64_t wall_ms)
{
	bool any = false;

	dt_ratelimit_init(rl);
	for (size_t i = 0; h && i < h->n; i++) {
		const struct header_form *f = form_of(h->v[i].name, h->v[i].name_len);

		if (f)
			any |= read_form(rl, f, h->v[i].value, h->v[i].value_len, wall_ms);
	}
	return any;
}
