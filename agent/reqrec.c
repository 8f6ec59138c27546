// SPDX-License-Identifier: MIT
/* A request's record; see reqrec.h. */
#include <stdlib.h>
#include <event2/buffer.h>

#include "reqrec.h"

void dt_reqrec_free(struct dt_reqrec *r)
{
	for (size_t i = 0; i < r->n_attempts; i++)
		free(r->attempts[i].model);
	free(r->model);
	free(r->prompt);
	r->n_attempts = 0;
	r->model = r->prompt = NULL;
}

void dt_reqrec_keep_prompt(struct dt_reqrec *r, struct evbuffer *body)
{
	size_t n = evbuffer_get_length(body), keep = n < DT_REQREC_PROMPT_MAX ? n : DT_REQREC_PROMPT_MAX;
	ev_ssize_t got;

	if (!(r->prompt = malloc(keep ? keep : 1)))
		return;
	got = evbuffer_copyout(body, r->prompt, keep);
	r->prompt_len = got > 0 ? (size_t)got : 0;
}

void dt_reqrec_add_usage(struct dt_reqrec *r, const struct dt_xusage *u, const struct dt_price *p)
{
	if (!u->known)
		return;
	r->priced = (r->priced || !r->usage.known) && p;
	if (p)
		r->cost_pico += dt_spend_cost_pico(u, p);
	r->usage.known = true;
	r->usage.input_tokens += u->input_tokens;
	r->usage.cached_input_tokens += u->cached_input_tokens;
	r->usage.cache_write_tokens += u->cache_write_tokens;
	r->usage.output_tokens += u->output_tokens;
}

enum dt_blame dt_reqrec_blame_of(enum dt_outcome_kind k)
{
	switch (k) {
	case DT_OUTCOME_OK:
	case DT_OUTCOME_CANCELLED:
		return DT_BLAME_NONE;
	case DT_OUTCOME_RATE_LIMITED:
		return DT_BLAME_RATE_LIMIT;
	case DT_OUTCOME_KEY_REFUSED:
		return DT_BLAME_KEY;
	default:
		return DT_BLAME_PROVIDER;
	}
}

const char *dt_reqrec_outcome_name(enum dt_outcome_kind k)
{
	static const char *const names[] = {
		[DT_OUTCOME_OK] = "ok",
		[DT_OUTCOME_SERVER_ERROR] = "server_error",
		[DT_OUTCOME_FIRST_BYTE_TIMEOUT] = "first_byte_timeout",
		[DT_OUTCOME_CONNECT_FAILED] = "connect_failed",
		[DT_OUTCOME_TLS_FAILED] = "tls_failed",
		[DT_OUTCOME_RESET] = "reset",
		[DT_OUTCOME_RATE_LIMITED] = "rate_limited",
		[DT_OUTCOME_KEY_REFUSED] = "key_refused",
		[DT_OUTCOME_POOR_ANSWER] = "poor_answer",
		[DT_OUTCOME_CANCELLED] = "cancelled",
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) && names[k] ? names[k] : "?";
}

const char *dt_reqrec_blame_name(enum dt_blame b)
{
	static const char *const names[] = {
		[DT_BLAME_NONE] = "none",
		[DT_BLAME_REQUEST] = "request",
		[DT_BLAME_CONTEXT] = "context",
		[DT_BLAME_KEY] = "key",
		[DT_BLAME_PROVIDER] = "provider",
		[DT_BLAME_RATE_LIMIT] = "rate_limit",
	};

	return (unsigned)b < sizeof(names) / sizeof(names[0]) && names[b] ? names[b] : "?";
}
