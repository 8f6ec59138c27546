/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum dt_log_level dt_log_level = DT_LOG_INFO;

/* Indexed by enum dt_log_level. */
static const struct {
	const char *name;
	const char *syslog_prefix;
} levels[] = {
	[DT_LOG_ERROR] = { "error", "<3>" },
	[DT_LOG_WARN]  = { "warn",  "<4>" },
	[DT_LOG_INFO]  = { "info",  "<6>" },
	[DT_LOG_DEBUG] = { "debug", "<7>" },
};

#define LOG_LINE_MAX 2048

int dt_log_level_parse(const char *s, enum dt_log_level *out)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(s, levels[i].name) == 0) {
			*out = (enum dt_log_level)i;
			return 0;
		}
	}
	return -1;
}

void dt_log(enum dt_log_level lvl, const char *fmt, ...)
{
	/* Callers log strerror(errno) and then look at errno again. */
	int saved_errno = errno;
	char line[LOG_LINE_MAX];
	va_list ap;
	ssize_t written;
	int len, n;

	if (lvl > DT_LOG_DEBUG)
		lvl = DT_LOG_DEBUG;
	if (isatty(STDERR_FILENO))
		len = snprintf(line, sizeof(line), "%s: ", levels[lvl].name);
	else
		len = snprintf(line, sizeof(line), "%s", levels[lvl].syslog_prefix);

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += n;

	/* A message too long for the buffer is cut, never split over lines. */
	if (len > (int)sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';

	/* One write(2) per line so that lines of concurrent threads do not
	 * interleave; a failed write to stderr has nowhere to be reported. */
	written = write(STDERR_FILENO, line, (size_t)len);
	(void)written;
	errno = saved_errno;
}
