// SPDX-License-Identifier: MIT
/*
 * http_latency: latency of sequential HTTP/1.1 requests to one server.
 *
 * Sends N POST /v1/chat/completions one after the other, on a new
 * connection each (the clock includes connect()) or on one kept-alive
 * connection, reads each whole response (Content-Length bodies only: a
 * non-streamed completion) and prints
 *
 *   p50_us=X p99_us=Y mean_us=Z requests=N
 *
 * bench/run.sh runs it from an enrolled cgroup (through detourd) and from
 * one that is not (direct) and reports the difference.
 *
 * Usage: http_latency --connect IP:PORT [--requests N] [--keepalive]
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bpfobj.h"

#define RESPONSE_MAX  (64 * 1024)
/* requests before the clock starts: first connections, page faults */
#define WARMUP        20

static const char request_body[] =
	"{\"model\":\"bench\",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}";

struct target {
	struct sockaddr_storage addr;
	socklen_t len;
	char host[64];  /* the Host header: the address as given */
};

/* "1.2.3.4:80" or "[::1]:80" */
static int parse_target(const char *text, struct target *t)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&t->addr;
	struct sockaddr_in *sa4 = (struct sockaddr_in *)&t->addr;
	long port;
	size_t len;

	if (!colon || (len = (size_t)(colon - text)) >= sizeof(host) ||
	    snprintf(t->host, sizeof(t->host), "%s", text) >= (int)sizeof(t->host))
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -1;
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		host[len - 1] = '\0';
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)port);
		t->len = sizeof(*sa6);
		return inet_pton(AF_INET6, host + 1, &sa6->sin6_addr) == 1 ? 0 : -1;
	}
	sa4->sin_family = AF_INET;
	sa4->sin_port = htons((uint16_t)port);
	t->len = sizeof(*sa4);
	return inet_pton(AF_INET, host, &sa4->sin_addr) == 1 ? 0 : -1;
}

static int open_connection(const struct target *t)
{
	int one = 1;
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* requests are small single writes: don't let Nagle hold them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&t->addr, t->len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The Content-Length of a header block, or -1 when there is none. */
static long content_length(const char *headers)
{
	static const char name[] = "\r\ncontent-length:";

	for (const char *p = headers; (p = strchr(p, '\r')); p++)
		if (strncasecmp(p, name, sizeof(name) - 1) == 0)
			return strtol(p + sizeof(name) - 1, NULL, 10);
	return -1;
}

/* Read one whole response; 0 when its status is 200. */
static int read_response(int fd, char *buf)
{
	size_t have = 0, need = 0;

	for (;;) {
		ssize_t n = read(fd, buf + have, RESPONSE_MAX - 1 - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "http_latency: %s before the whole response\n",
				n ? strerror(errno) : "connection closed");
			return -1;
		}
		have += (size_t)n;
		buf[have] = '\0';
		if (!need) {
			char *end = strstr(buf, "\r\n\r\n");
			long body;

			if (!end)
				goto more;
			body = content_length(buf);
			if (body < 0) {
				fprintf(stderr, "http_latency: response without Content-Length\n");
				return -1;
			}
			need = (size_t)(end + 4 - buf) + (size_t)body;
			if (need >= RESPONSE_MAX) {
				fprintf(stderr, "http_latency: response too large\n");
				return -1;
			}
		}
		if (have >= need)
			break;
more:
		if (have >= RESPONSE_MAX - 1) {
			fprintf(stderr, "http_latency: response headers too large\n");
			return -1;
		}
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "http_latency: unexpected response: %.40s\n", buf);
		return -1;
	}
	return 0;
}

/* One request; on a new connection when *fd < 0 (left open for keep-alive). */
static int one_request(const struct target *t, int *fd, const char *request, char *buf)
{
	if (*fd < 0 && (*fd = open_connection(t)) < 0) {
		fprintf(stderr, "http_latency: connect to %s: %s\n", t->host, strerror(errno));
		return -1;
	}
	if (write_all(*fd, request, strlen(request))) {
		fprintf(stderr, "http_latency: write: %s\n", strerror(errno));
		return -1;
	}
	return read_response(*fd, buf);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: http_latency --connect IP:PORT [--requests N] [--keepalive]\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "connect",   required_argument, NULL, 'c' },
		{ "requests",  required_argument, NULL, 'n' },
		{ "keepalive", no_argument,       NULL, 'k' },
		{ "help",      no_argument,       NULL, 'h' },
		{ 0 },
	};
	static char buf[RESPONSE_MAX];
	struct target t = { 0 };
	bool keepalive = false, have_target = false;
	char request[512];
	uint64_t *lat, sum = 0;
	long requests = 2000;
	int opt, fd = -1, rc = 0;

	while ((opt = getopt_long(argc, argv, "c:n:kh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (parse_target(optarg, &t)) {
				fprintf(stderr, "http_latency: bad address %s\n", optarg);
				return 2;
			}
			have_target = true;
			break;
		case 'n':
			requests = strtol(optarg, NULL, 10);
			break;
		case 'k':
			keepalive = true;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!have_target || requests < 1 || optind != argc) {
		usage();
		return 2;
	}
	snprintf(request, sizeof(request),
		 "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 t.host, strlen(request_body), request_body);
	lat = calloc((size_t)requests, sizeof(*lat));
	if (!lat)
		return 1;

	for (long i = -WARMUP; i < requests && !rc; i++) {
		uint64_t start = dt_now_ns();

		rc = one_request(&t, &fd, request, buf);
		if (i >= 0)
			lat[i] = dt_now_ns() - start;
		if (fd >= 0 && (!keepalive || rc)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	if (!rc) {
		for (long i = 0; i < requests; i++)
			sum += lat[i];
		qsort(lat, (size_t)requests, sizeof(*lat), cmp_u64);
		printf("p50_us=%.1f p99_us=%.1f mean_us=%.1f requests=%ld\n",
		       lat[requests / 2] / 1e3, lat[(requests * 99) / 100] / 1e3,
		       (double)sum / (double)requests / 1e3, requests);
	}
	free(lat);
	return rc ? 1 : 0;
}
