/* SPDX-License-Identifier: MIT */
/*
 * fakellm: command line, start-up, signals, shutdown.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakellm.h"

struct options {
	const char *listen[FL_MAX_LISTENERS];
	size_t n_listen;
	const char *tls_cert;
	const char *tls_key;
	const char *admin;
	const char *name;
	const char *path_prefix;
	const char *pidfile;
	unsigned words;
	unsigned rpm;
	unsigned cached_percent;
	bool quiet;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fakellm --listen ADDR:PORT [--listen ADDR:PORT ...]\n"
		"               [--tls-cert FILE --tls-key FILE] [--admin ADDR:PORT]\n"
		"               [--name NAME] [--words N] [--path-prefix /PREFIX]\n"
		"               [--rpm N] [--cached-percent P] [--pidfile FILE] [--quiet]\n"
		"A fake OpenAI / Anthropic / Gemini provider with fault injection; see docs/fakellm.md.\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "admin", required_argument, NULL, 'a' },
		{ "name", required_argument, NULL, 'n' },
		{ "words", required_argument, NULL, 'w' },
		{ "cached-percent", required_argument, NULL, 'C' },
		{ "path-prefix", required_argument, NULL, 'P' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "rpm", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long words, rpm;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (o->n_listen == FL_MAX_LISTENERS) {
				fprintf(stderr, "fakellm: at most %d --listen\n", FL_MAX_LISTENERS);
				return -1;
			}
			o->listen[o->n_listen++] = optarg;
			break;
		case 'c': o->tls_cert = optarg; break;
		case 'k': o->tls_key = optarg; break;
		case 'a': o->admin = optarg; break;
		case 'n': o->name = optarg; break;
		case 'P': o->path_prefix = optarg; break;
		case 'p': o->pidfile = optarg; break;
		case 'q': o->quiet = true; break;
		case 'C':
			words = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || words < 0 || words > 100) {
				fprintf(stderr, "fakellm: --cached-percent takes 0 to 100\n");
				return -1;
			}
			o->cached_percent = (unsigned)words;
			break;
		case 'w':
			words = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || words < 1 || words > FL_MAX_WORDS) {
				fprintf(stderr, "fakellm: --words takes 1 to %d\n", FL_MAX_WORDS);
				return -1;
			}
			o->words = (unsigned)words;
			break;
		case 'r':
			rpm = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || rpm < 1 || rpm > FL_MAX_RPM) {
				fprintf(stderr, "fakellm: --rpm takes 1 to %d\n", FL_MAX_RPM);
				return -1;
			}
			o->rpm = (unsigned)rpm;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || o->n_listen == 0) {
		usage(stderr);
		return -1;
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "fakellm: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return 0;
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Binds everything asked for; false on the first failure. */
static bool server_open(struct fl_server *srv, const struct options *o)
{
	size_t i;

	if (o->tls_cert && fl_server_tls(srv, o->tls_cert, o->tls_key) != 0)
		return false;
	for (i = 0; i < o->n_listen; i++)
		if (fl_server_listen(srv, o->listen[i], false) != 0)
			return false;
	return !o->admin || fl_server_listen(srv, o->admin, true) == 0;
}

int main(int argc, char **argv)
{
	struct options o = { .name = "fakellm", .words = FL_DEFAULT_WORDS, .path_prefix = "" };
	struct fl_server srv = { 0 };
	struct event *sigterm = NULL, *sigint = NULL;
	bool pidfile_written = false;
	int status = 1;

	if (parse_options(argc, argv, &o) != 0)
		return 2;
	/* A client that leaves mid-response must not kill the server. */
	signal(SIGPIPE, SIG_IGN);
	fl_random_init();
	fl_http_init();
	fl_fault_clear(&srv.fault);
	srv.name = o.name;
	srv.path_prefix = o.path_prefix;
	srv.words = o.words;
	srv.cached_percent = o.cached_percent;
	srv.quiet = o.quiet;
	if (fl_rpm_init(&srv.rpm, o.rpm) != 0)
		goto out;

	srv.base = event_base_new();
	if (!srv.base)
		goto out;
	sigterm = evsignal_new(srv.base, SIGTERM, stop_cb, srv.base);
	sigint = evsignal_new(srv.base, SIGINT, stop_cb, srv.base);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint, NULL) != 0)
		goto out;
	if (!server_open(&srv, &o))
		goto out;
	/* Written once the sockets are bound: its presence means ready. */
	if (o.pidfile) {
		if (write_pidfile(o.pidfile) != 0)
			goto out;
		pidfile_written = true;
	}
	if (event_base_dispatch(srv.base) == 0 || event_base_got_break(srv.base))
		status = 0;
out:
	fl_server_close(&srv);
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	fl_jw_free(&srv.body);
	fl_rpm_free(&srv.rpm);
	if (srv.base)
		event_base_free(srv.base);
	if (pidfile_written)
		unlink(o.pidfile);
	if (!o.quiet && status == 0)
		fprintf(stderr, "fakellm: %s: stopped\n", srv.name);
	return status;
}
