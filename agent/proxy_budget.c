// SPDX-License-Identifier: MIT
/* The proxy's rate-limit budgets and pacing queue: set from the
 * configuration, the queue polled on the event loop by one timer. The
 * decisions are ratebudget.c's and pacer.c's; docs/routing.md, "Rate
 * limits". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "bpfobj.h"
#include "config.h"
#include "pacer.h"
#include "proxy_int.h"
#include "ratebudget.h"

/* Each application's shares, own keys and their limits, per provider id. */
struct app_tables {
	uint8_t share[DT_MAX_PROVIDERS];
	bool own_key[DT_MAX_PROVIDERS];
	uint32_t key_limit[DT_RB_DIMS][DT_MAX_PROVIDERS];
};

static int provider_id_named(const struct dt_cfg *cfg, const uint32_t *ids, const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return (int)ids[i];
	return -1; /* the configuration was checked: not reached */
}

/* Each number of list into out[provider id]. */
static void by_provider(const struct dt_app_numbers *list, const struct dt_cfg *cfg,
			const uint32_t *ids, uint32_t *out)
{
	for (size_t k = 0; k < list->n; k++) {
		int id = provider_id_named(cfg, ids, list->v[k].provider);

		if (id >= 0)
			out[id] = list->v[k].value;
	}
}

static void app_tables_fill(struct app_tables *t, const struct dt_app_cfg *ac,
			    const struct dt_cfg *cfg, const uint32_t *ids)
{
	uint32_t share[DT_MAX_PROVIDERS] = { 0 };

	by_provider(&ac->shares, cfg, ids, share);
	for (size_t id = 0; id < DT_MAX_PROVIDERS; id++)
		t->share[id] = (uint8_t)share[id];
	by_provider(&ac->rpm, cfg, ids, t->key_limit[DT_RB_REQUESTS]);
	by_provider(&ac->tpm, cfg, ids, t->key_limit[DT_RB_TOKENS]);
	for (size_t k = 0; k < ac->n_keys; k++) {
		int id = provider_id_named(cfg, ids, ac->keys[k].provider);

		if (id >= 0)
			t->own_key[id] = true;
	}
}

int proxy_budgets_configure(struct dt_proxy *p, const struct dt_cfg *cfg, const uint32_t *ids)
{
	struct dt_rb_provider_cfg providers[DT_MAX_PROVIDERS] = { 0 };
	bool used[DT_MAX_PROVIDERS] = { false };
	struct app_tables *tables = calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(*tables));
	struct dt_rb_app_cfg *apps = calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(*apps));
	int rc = -ENOMEM;

	if (!tables || !apps)
		goto out;
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct dt_provider_cfg *pc = &cfg->providers[i];

		used[ids[i]] = true;
		providers[ids[i]] = (struct dt_rb_provider_cfg){
			.limit = { pc->rpm, pc->tpm },
			.pace = pc->pace,
			.pace_max_wait_ms = pc->pace_max_wait_ms,
			.pace_max_queue = pc->pace_max_queue,
		};
	}
	for (size_t a = 0; a < cfg->n_apps; a++) {
		app_tables_fill(&tables[a], &cfg->apps[a], cfg, ids);
		apps[a] = (struct dt_rb_app_cfg){
			cfg->apps[a].name, tables[a].share, tables[a].own_key,
			{ tables[a].key_limit[DT_RB_REQUESTS], tables[a].key_limit[DT_RB_TOKENS] },
		};
	}
	rc = dt_rb_configure(p->rb, used, providers, apps, cfg->n_apps);
out:
	free(tables);
	free(apps);
	return rc;
}

/* Release the waits that fit, end those over, and set the timer for the
 * next time one may. */
static void on_pace_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dt_proxy *p = arg;
	uint64_t now = dt_now_ns(), next = dt_pacer_poll(p->pacer, now);
	struct timeval tv;

	(void)fd;
	(void)what;
	if (next == UINT64_MAX)
		return;
	next = next > now ? (next - now + 999) / 1000 : 0; /* us, never early */
	tv.tv_sec = (time_t)(next / 1000000);
	tv.tv_usec = (suseconds_t)(next % 1000000);
	evtimer_add(p->pace_timer, &tv);
}

int proxy_budgets_new(struct dt_proxy *p)
{
	p->rb = dt_rb_new();
	p->pacer = p->rb ? dt_pacer_new(p->rb) : NULL;
	p->pace_timer = evtimer_new(p->base, on_pace_timer, p);
	return p->rb && p->pacer && p->pace_timer ? 0 : -ENOMEM;
}

void proxy_budgets_free(struct dt_proxy *p)
{
	if (p->pace_timer)
		event_free(p->pace_timer);
	dt_pacer_free(p->pacer);
	dt_rb_free(p->rb);
}

void proxy_pace_soon(struct dt_proxy *p)
{
	/* from the event loop, not from within the caller's callbacks: a
	 * request released starts an attempt, which may end at once */
	if (dt_pacer_total(p->pacer))
		event_active(p->pace_timer, EV_TIMEOUT, 1);
}

const struct dt_rb *dt_proxy_ratebudget(const struct dt_proxy *p)
{
	return p->rb;
}
