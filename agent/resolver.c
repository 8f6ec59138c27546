// SPDX-License-Identifier: MIT
/* Provider host name resolution; see resolver.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "intercept.h"
#include "log.h"
#include "resolver.h"

struct job_provider {
	uint32_t id;
	uint16_t port;
	size_t n_hosts;
	char **hosts;
};

struct dt_resolver {
	dt_resolved_fn done;
	void *ctx;
	int efd;
	struct event *ev;
	pthread_mutex_t lock;
	bool busy;               /* a worker owns the job */
	pthread_t worker;
	/* the job, owned by the worker while busy */
	struct job_provider *job;
	size_t n_job;
	struct dt_resolution *results;
};

static bool seen(const struct dt_resolution *res, const struct dt_endpoint *ep)
{
	for (size_t i = 0; i < res->n; i++)
		if (memcmp(&res->eps[i], ep, sizeof(*ep)) == 0)
			return true;
	return false;
}

static void resolve_provider(const struct job_provider *p, struct dt_resolution *res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

	memset(res, 0, sizeof(*res));
	res->provider_id = p->id;
	for (size_t h = 0; h < p->n_hosts; h++) {
		struct addrinfo *ai, *a;
		int rc = getaddrinfo(p->hosts[h], NULL, &hints, &ai);

		if (rc) {
			log_warn("resolve %s: %s", p->hosts[h], gai_strerror(rc));
			continue;
		}
		res->ok = true;
		for (a = ai; a && res->n < DT_RESOLVE_MAX_PER_PROVIDER; a = a->ai_next) {
			struct dt_endpoint ep;

			dt_endpoint_from_sockaddr(&ep, a->ai_addr);
			ep.port = htons(p->port);
			if (!seen(res, &ep))
				res->eps[res->n++] = ep;
		}
		freeaddrinfo(ai);
	}
}

static void job_free(struct job_provider *job, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t h = 0; h < job[i].n_hosts; h++)
			free(job[i].hosts[h]);
		free(job[i].hosts);
	}
	free(job);
}

/* Copy what the worker needs, so a reload can free the config meanwhile. */
static struct job_provider *job_from_cfg(const struct dt_cfg *cfg, const uint32_t *ids)
{
	struct job_provider *job = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof(*job));

	if (!job)
		return NULL;
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct dt_provider_cfg *p = &cfg->providers[i];

		job[i].id = ids[i];
		job[i].port = p->port;
		job[i].hosts = calloc(p->n_hosts, sizeof(char *));
		if (!job[i].hosts)
			goto fail;
		for (size_t h = 0; h < p->n_hosts; h++) {
			job[i].hosts[h] = strdup(p->hosts[h]);
			if (!job[i].hosts[h])
				goto fail;
			job[i].n_hosts++;
		}
	}
	return job;
fail:
	job_free(job, cfg->n_providers);
	return NULL;
}

void dt_resolve_now(const struct dt_cfg *cfg, const uint32_t *ids, struct dt_resolution *res)
{
	struct job_provider *job = job_from_cfg(cfg, ids);

	if (!job) {
		memset(res, 0, cfg->n_providers * sizeof(*res));
		return;
	}
	for (size_t i = 0; i < cfg->n_providers; i++)
		resolve_provider(&job[i], &res[i]);
	job_free(job, cfg->n_providers);
}

static void *worker_main(void *arg)
{
	struct dt_resolver *r = arg;
	uint64_t one = 1;

	for (size_t i = 0; i < r->n_job; i++)
		resolve_provider(&r->job[i], &r->results[i]);
	if (write(r->efd, &one, sizeof(one)) < 0)
		log_error("resolver: eventfd: %s", strerror(errno));
	return NULL;
}

static void job_release(struct dt_resolver *r)
{
	pthread_join(r->worker, NULL);
	job_free(r->job, r->n_job);
	free(r->results);
	r->job = NULL;
	r->results = NULL;
	r->n_job = 0;
	r->busy = false;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct dt_resolver *r = arg;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) != sizeof(v) || !r->busy)
		return;
	r->done(r->ctx, r->results, r->n_job);
	job_release(r);
}

struct dt_resolver *dt_resolver_new(struct event_base *base, dt_resolved_fn done, void *ctx)
{
	struct dt_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->done = done;
	r->ctx = ctx;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0)
		goto fail;
	r->ev = event_new(base, r->efd, EV_READ | EV_PERSIST, on_done, r);
	if (!r->ev || event_add(r->ev, NULL))
		goto fail;
	return r;
fail:
	if (r->ev)
		event_free(r->ev);
	if (r->efd >= 0)
		close(r->efd);
	free(r);
	return NULL;
}

bool dt_resolver_start(struct dt_resolver *r, const struct dt_cfg *cfg, const uint32_t *ids)
{
	if (r->busy)
		return false;
	r->job = job_from_cfg(cfg, ids);
	r->results = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof(*r->results));
	if (!r->job || !r->results)
		goto fail;
	r->n_job = cfg->n_providers;
	if (pthread_create(&r->worker, NULL, worker_main, r))
		goto fail;
	r->busy = true;
	return true;
fail:
	job_free(r->job, cfg->n_providers);
	free(r->results);
	r->job = NULL;
	r->results = NULL;
	return false;
}

void dt_resolver_free(struct dt_resolver *r)
{
	if (!r)
		return;
	if (r->busy)
		job_release(r); /* waits for getaddrinfo: bounded by the resolver's own timeouts */
	event_free(r->ev);
	close(r->efd);
	free(r);
}
