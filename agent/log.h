/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per message. Under systemd stderr goes to
 * the journal, which reads the "<N>" syslog priority prefix; on a terminal
 * the level is spelled out instead.
 */
#ifndef DT_LOG_H
#define DT_LOG_H

enum dt_log_level {
	DT_LOG_ERROR,
	DT_LOG_WARN,
	DT_LOG_INFO,
	DT_LOG_DEBUG,
};

/* Messages above this level are dropped; default DT_LOG_INFO. */
extern enum dt_log_level dt_log_level;

void dt_log(enum dt_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse "error", "warn", "info" or "debug". Returns 0, or -1 if unknown. */
int dt_log_level_parse(const char *s, enum dt_log_level *out);

/* The level is checked before the arguments are evaluated and formatted,
 * so debug logging costs one comparison when it is off. */
#define dt_log_at(lvl, ...) \
	do { if ((lvl) <= dt_log_level) dt_log((lvl), __VA_ARGS__); } while (0)

#define log_error(...) dt_log_at(DT_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  dt_log_at(DT_LOG_WARN, __VA_ARGS__)
#define log_info(...)  dt_log_at(DT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) dt_log_at(DT_LOG_DEBUG, __VA_ARGS__)

#endif /* DT_LOG_H */
