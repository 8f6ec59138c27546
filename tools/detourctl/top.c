// SPDX-License-Identifier: MIT
/*
 * `detourctl top`: live traffic, errors, spend and rate-limit headroom per
 * application and per provider, from detourd's /metrics (the only place
 * that counts by application). Scraped every interval; the rates are the
 * difference between two scrapes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "detourctl.h"
#include "health.h"
#include "promtext.h"
#include "table.h"

#define DEFAULT_CONFIG   "/etc/detour/detour.conf"
#define DEFAULT_ADDRESS  "127.0.0.1:9464"
#define SCRAPE_TIMEOUT_MS 3000
#define SCRAPE_MAX       (64 * 1024 * 1024)

/* What top shows of one application or provider; -1: not in the scrape. */
enum {
	V_REQUESTS, V_OK, V_CLIENT_ERR, V_SERVER_ERR, V_ATTEMPTS, V_ERRORS, V_RATE_LIMITED,
	V_FAILOVERS, V_HEDGES, V_TOKENS_IN, V_TOKENS_OUT, V_COST, V_HEADROOM_REQ, V_HEADROOM_TOK,
	N_VALUES
};

struct row {
	char name[DT_MODEL_LEN];
	const char *state;             /* providers: the verdict (static string) */
	double v[N_VALUES];
	double rate;                   /* requests per second since the scrape before */
};

struct rows {
	struct row *v;
	size_t n;
};

struct view {
	struct rows apps, providers;
};

/* ---- scraping ------------------------------------------------------------------ */

/* "ADDRESS:PORT" or "[ADDRESS]:PORT"; an unspecified address is asked on
 * loopback. */
static int address_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN];
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	bool bracketed = text[0] == '[';
	const char *start = text + bracketed, *end = colon && bracketed ? colon - 1 : colon;
	char *tail;
	unsigned long port;

	if (!colon || end <= start || (bracketed && *end != ']') || (size_t)(end - start) >= sizeof(host))
		return -1;
	port = strtoul(colon + 1, &tail, 10);
	if (*tail || !port || port > 65535)
		return -1;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		if (v4->sin_addr.s_addr == htonl(INADDR_ANY))
			v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
			v6->sin6_addr = in6addr_loopback;
		*len = sizeof(*v6);
		return 0;
	}
	return -1;
}

/* Wait for fd to be ready for events until the deadline (CLOCK_MONOTONIC ms). */
static bool wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	struct timespec now;
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = deadline - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	return left > 0 && poll(&p, 1, (int)left) == 1;
}

/* GET /metrics over HTTP/1.0 (the server closes after the answer): the
 * body, NUL-terminated and malloc'ed, or NULL with a reason in err. */
static char *scrape(const struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: detourd\r\n\r\n";
	struct timespec t0;
	int64_t deadline;
	size_t n = 0, cap = 65536;
	char *buf = malloc(cap), *body;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ssize_t got;

	errno = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	deadline = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 + SCRAPE_TIMEOUT_MS;
	if (!buf || fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if ((connect(fd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS) ||
	    !wait_fd(fd, POLLOUT, deadline) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
		snprintf(err, errlen, "cannot reach detourd's /metrics: %s",
			 errno ? strerror(errno) : "timed out");
		goto fail;
	}
	for (;;) {
		if (n + 1 == cap) {
			char *grown = cap < SCRAPE_MAX ? realloc(buf, cap * 2) : NULL;

			if (!grown) {
				snprintf(err, errlen, "the answer is too large");
				goto fail;
			}
			buf = grown;
			cap *= 2;
		}
		if (!wait_fd(fd, POLLIN, deadline)) {
			snprintf(err, errlen, "detourd's /metrics did not answer in time");
			goto fail;
		}
		got = recv(fd, buf + n, cap - n - 1, 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got < 0) {
			snprintf(err, errlen, "reading /metrics: %s", strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200 ", 5) != 0 || !body) {
		snprintf(err, errlen, "/metrics answered: %.*s", (int)strcspn(buf, "\r\n"), buf);
		goto fail;
	}
	memmove(buf, body + 4, n - (size_t)(body + 4 - buf) + 1);
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* ---- what the scrape says ------------------------------------------------------- */

static struct row *row_of(struct rows *rs, const char *name)
{
	struct row *grown;

	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].name, name) == 0)
			return &rs->v[i];
	grown = realloc(rs->v, (rs->n + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	rs->v = grown;
	grown = &rs->v[rs->n++];
	memset(grown, 0, sizeof(*grown));
	snprintf(grown->name, sizeof(grown->name), "%s", name);
	for (int k = 0; k < N_VALUES; k++)
		grown->v[k] = -1;
	return grown;
}

static void add(struct row *r, int k, double v)
{
	if (r)
		r->v[k] = (r->v[k] < 0 ? 0 : r->v[k]) + v;
}

/* The least of the values seen (headroom: the tightest limit). */
static void least(struct row *r, int k, double v)
{
	if (r && (r->v[k] < 0 || v < r->v[k]))
		r->v[k] = v;
}

static bool is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

/* One sample into the application's and the provider's rows. */
static void take(struct view *v, const struct dt_prom_sample *s)
{
	const char *app = dt_prom_label_value(s, "application");
	const char *prov = dt_prom_label_value(s, "provider");
	const char *code = dt_prom_label_value(s, "code"), *kind = dt_prom_label_value(s, "kind");
	struct row *a, *p = prov ? row_of(&v->providers, prov) : NULL;
	int k = -1;

	/* a rate-limit row's application is whose share or key it is ("*": the
	 * key as a whole): only its headroom is the application's */
	if (strncmp(s->name, "detour_ratelimit_", 17) == 0 &&
	    (!is(s->name, "detour_ratelimit_headroom") || is(app, "*")))
		app = NULL;
	a = app ? row_of(&v->apps, app) : NULL;

	if (is(s->name, "detour_requests_total")) {
		add(a, V_REQUESTS, s->value);
		add(p, V_REQUESTS, s->value);
		k = is(code, "2xx") ? V_OK : is(code, "4xx") ? V_CLIENT_ERR : is(code, "5xx") ? V_SERVER_ERR : -1;
	} else if (is(s->name, "detour_attempts_total")) {
		k = V_ATTEMPTS;
	} else if (is(s->name, "detour_attempt_errors_total")) {
		add(a, V_ERRORS, s->value);
		add(p, V_ERRORS, s->value);
		k = is(dt_prom_label_value(s, "blame"), "rate_limit") ? V_RATE_LIMITED : -1;
	} else if (is(s->name, "detour_failovers_total")) {
		k = V_FAILOVERS;
	} else if (is(s->name, "detour_hedges_total")) {
		k = V_HEDGES;
	} else if (is(s->name, "detour_tokens_total")) {
		k = is(kind, "output") ? V_TOKENS_OUT : is(kind, "input") ? V_TOKENS_IN : -1;
	} else if (is(s->name, "detour_cost_dollars_total")) {
		k = V_COST;
	} else if (is(s->name, "detour_ratelimit_headroom")) {
		least(p, is(kind, "tokens") ? V_HEADROOM_TOK : V_HEADROOM_REQ, s->value);
		least(a, is(kind, "tokens") ? V_HEADROOM_TOK : V_HEADROOM_REQ, s->value);
	} else if (is(s->name, "detour_provider_state") && p && s->value == 1) {
		for (int st = DT_HEALTHY; st <= DT_PROBING; st++)
			if (is(dt_prom_label_value(s, "state"), dt_health_state_name((enum dt_state)st)))
				p->state = dt_health_state_name((enum dt_state)st);
	}
	if (k >= 0) {
		add(a, k, s->value);
		add(p, k, s->value);
	}
}

static void view_read(struct view *v, char *text)
{
	char *line, *save = NULL;
	struct dt_prom_sample s;

	memset(v, 0, sizeof(*v));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (dt_prom_parse_line(line, &s) == 0)
			take(v, &s);
}

static void view_free(struct view *v)
{
	free(v->apps.v);
	free(v->providers.v);
}

/* Requests per second since the previous view (none: no rate). */
static void rates(struct rows *now, const struct rows *before, double seconds)
{
	for (size_t i = 0; i < now->n; i++) {
		now->v[i].rate = -1;
		for (size_t j = 0; before && seconds > 0 && j < before->n; j++)
			if (strcmp(before->v[j].name, now->v[i].name) == 0 && now->v[i].v[V_REQUESTS] >= 0)
				now->v[i].rate = (now->v[i].v[V_REQUESTS] -
						  (before->v[j].v[V_REQUESTS] < 0 ? 0 : before->v[j].v[V_REQUESTS])) / seconds;
	}
}

/* ---- output ------------------------------------------------------------------------ */

static const char *num(char *buf, size_t len, double v, const char *fmt)
{
	if (v < 0)
		return "-";
	snprintf(buf, len, fmt, v);
	return buf;
}

/* A table's columns: the first is the row's name; each other shows a value
 * (enum above) or one of these. */
#define COL_RATE  -1  /* requests per second */
#define COL_STATE -2  /* the provider's verdict */

struct table_def {
	const struct ctl_column *cols;
	const int *values;           /* of the columns after the first */
	size_t n;
};

static const struct ctl_column app_cols[] = {
	{ "APPLICATION", false }, { "REQUESTS", true }, { "REQ/S", true }, { "2XX", true },
	{ "4XX", true }, { "5XX", true }, { "ERRORS", true }, { "FAILOVERS", true },
	{ "HEDGES", true }, { "TOKENS IN", true }, { "TOKENS OUT", true }, { "COST $", true },
	{ "HEADROOM REQ", true }, { "HEADROOM TOK", true },
};
static const int app_values[] = {
	V_REQUESTS, COL_RATE, V_OK, V_CLIENT_ERR, V_SERVER_ERR, V_ERRORS, V_FAILOVERS, V_HEDGES,
	V_TOKENS_IN, V_TOKENS_OUT, V_COST, V_HEADROOM_REQ, V_HEADROOM_TOK,
};
static const struct ctl_column prov_cols[] = {
	{ "PROVIDER", false }, { "STATE", false }, { "REQUESTS", true }, { "REQ/S", true },
	{ "ATTEMPTS", true }, { "ERRORS", true }, { "RATE LIMITED", true }, { "TOKENS IN", true },
	{ "TOKENS OUT", true }, { "COST $", true }, { "HEADROOM REQ", true }, { "HEADROOM TOK", true },
};
static const int prov_values[] = {
	COL_STATE, V_REQUESTS, COL_RATE, V_ATTEMPTS, V_ERRORS, V_RATE_LIMITED, V_TOKENS_IN,
	V_TOKENS_OUT, V_COST, V_HEADROOM_REQ, V_HEADROOM_TOK,
};
_Static_assert(sizeof(app_cols) / sizeof(app_cols[0]) == sizeof(app_values) / sizeof(app_values[0]) + 1,
	       "a value per application column");
_Static_assert(sizeof(prov_cols) / sizeof(prov_cols[0]) == sizeof(prov_values) / sizeof(prov_values[0]) + 1,
	       "a value per provider column");

static const struct table_def app_table = { app_cols, app_values, sizeof(app_cols) / sizeof(app_cols[0]) };
static const struct table_def prov_table = { prov_cols, prov_values, sizeof(prov_cols) / sizeof(prov_cols[0]) };

#define MAX_COLS 16

static int print_table(const struct rows *rs, const struct table_def *def, FILE *out)
{
	struct ctl_table *t = ctl_table_new(def->cols, def->n);
	char cells[MAX_COLS][32];
	const char *row[MAX_COLS];

	if (!t || def->n > MAX_COLS) {
		ctl_table_free(t);
		return -1;
	}
	for (size_t i = 0; i < rs->n; i++) {
		const struct row *r = &rs->v[i];

		row[0] = r->name;
		for (size_t c = 1; c < def->n; c++) {
			int k = def->values[c - 1];

			row[c] = k == COL_STATE ? (r->state ? r->state : "-") :
				 k == COL_RATE ? num(cells[c], sizeof(cells[c]), r->rate, "%.1f") :
				 num(cells[c], sizeof(cells[c]), r->v[k], k == V_COST ? "%.4f" : "%.0f");
		}
		if (ctl_table_add(t, row)) {
			ctl_table_free(t);
			return -1;
		}
	}
	ctl_table_print(t, out, "  ");
	ctl_table_free(t);
	return 0;
}

static json_t *rows_json(const struct rows *rs, bool provider)
{
	static const char *const names[N_VALUES] = {
		[V_REQUESTS] = "requests", [V_OK] = "2xx", [V_CLIENT_ERR] = "4xx", [V_SERVER_ERR] = "5xx",
		[V_ATTEMPTS] = "attempts", [V_ERRORS] = "errors", [V_RATE_LIMITED] = "rate_limited",
		[V_FAILOVERS] = "failovers", [V_HEDGES] = "hedges", [V_TOKENS_IN] = "tokens_in",
		[V_TOKENS_OUT] = "tokens_out", [V_COST] = "cost_dollars",
		[V_HEADROOM_REQ] = "headroom_requests", [V_HEADROOM_TOK] = "headroom_tokens",
	};
	json_t *a = json_array();

	for (size_t i = 0; a && i < rs->n; i++) {
		const struct row *r = &rs->v[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(r->name));
		if (provider)
			json_object_set_new(o, "state", r->state ? json_string(r->state) : json_null());
		for (int k = 0; k < N_VALUES; k++)
			json_object_set_new(o, names[k], r->v[k] < 0 ? json_null() : json_real(r->v[k]));
		json_object_set_new(o, "requests_per_second", r->rate < 0 ? json_null() : json_real(r->rate));
		json_array_append_new(a, o);
	}
	return a;
}

static int print_view(const struct view *v, bool json, bool clear, FILE *out)
{
	if (json) {
		json_t *o = json_object();
		int rc;

		json_object_set_new(o, "applications", rows_json(&v->apps, false));
		json_object_set_new(o, "providers", rows_json(&v->providers, true));
		rc = json_dumpf(o, out, JSON_COMPACT);
		json_decref(o);
		fputc('\n', out);
		return rc;
	}
	if (clear)
		fputs("\033[H\033[2J", out);
	fputs("applications\n", out);
	if (print_table(&v->apps, &app_table, out))
		return -1;
	fputs("\nproviders\n", out);
	return print_table(&v->providers, &prov_table, out);
}

/* ---- the command --------------------------------------------------------------------- */

static int usage_error(const char *bad)
{
	fprintf(stderr, "detourctl: top: unexpected '%s'\n"
		"usage: detourctl [-c CONFIG] top [--once] [--json] [--interval MS] [--metrics ADDRESS:PORT]\n",
		bad);
	return CTL_EXIT_USAGE;
}

/* --metrics wins; else the [metrics] listen of the configuration (-c, else
 * the default one when it exists); else the usual address. */
static int metrics_address(const char *opt, const char *config, char *out, size_t len)
{
	struct dt_cfg *cfg;
	char err[1024];

	if (!opt && !config && access(DEFAULT_CONFIG, R_OK) == 0)
		config = DEFAULT_CONFIG;
	if (opt || !config) {
		snprintf(out, len, "%s", opt ? opt : DEFAULT_ADDRESS);
		return 0;
	}
	if (dt_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "detourctl: %s\n", err);
		return -1;
	}
	if (!cfg->metrics.on) {
		fprintf(stderr, "detourctl: top: %s serves no /metrics: set [metrics] listen there, or give --metrics\n",
			config);
		dt_config_free(cfg);
		return -1;
	}
	snprintf(out, len, "%s", cfg->metrics.listen);
	dt_config_free(cfg);
	return 0;
}

int ctl_cmd_top(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "metrics", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *metrics_opt = NULL;
	bool once = false, json = false, have_before = false;
	unsigned long interval_ms = 1000;
	struct sockaddr_storage ss;
	struct view before = {0};
	struct timespec t_before = {0};
	char address[128], err[512], *end;
	socklen_t len;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = true; break;
		case 'j': json = true; break;
		case 'm': metrics_opt = optarg; break;
		case 'i':
			interval_ms = strtoul(optarg, &end, 10);
			if (*end || interval_ms < 100 || interval_ms > 3600000)
				return usage_error(optarg);
			break;
		default: return usage_error(argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error(argv[optind]);
	if (metrics_address(metrics_opt, config, address, sizeof(address)))
		return CTL_EXIT_FAILURE;
	if (address_parse(address, &ss, &len)) {
		fprintf(stderr, "detourctl: top: not ADDRESS:PORT: %s\n", address);
		return CTL_EXIT_USAGE;
	}
	for (;;) {
		char *text = scrape(&ss, len, err, sizeof(err));
		struct timespec t_now;
		struct view now;

		if (!text) {
			fprintf(stderr, "detourctl: top: %s (%s)\n", err, address);
			view_free(&before);
			return CTL_EXIT_AGENT;
		}
		clock_gettime(CLOCK_MONOTONIC, &t_now);
		view_read(&now, text);
		free(text);
		{
			double secs = (double)(t_now.tv_sec - t_before.tv_sec) +
				      (double)(t_now.tv_nsec - t_before.tv_nsec) / 1e9;

			rates(&now.apps, have_before ? &before.apps : NULL, secs);
			rates(&now.providers, have_before ? &before.providers : NULL, secs);
		}
		if (print_view(&now, json, !once && !json && isatty(STDOUT_FILENO), stdout) ||
		    fflush(stdout)) {
			view_free(&now);
			view_free(&before);
			return CTL_EXIT_FAILURE;
		}
		view_free(&before);
		before = now;
		t_before = t_now;
		have_before = true;
		if (once)
			break;
		usleep((useconds_t)interval_ms * 1000);
	}
	view_free(&before);
	return CTL_EXIT_OK;
}
