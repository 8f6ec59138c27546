/* SPDX-License-Identifier: MIT */
/*
 * What became of one client request, as the proxy's exchange (exchange.c)
 * saw it: filled as the request goes, handed to the metrics (metrics.h) and
 * the access log (accesslog.h) when it ends. Never a key; the request body
 * only when the access log asks for prompts.
 */
#ifndef DT_REQREC_H
#define DT_REQREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "detour.h"
#include "health.h"
#include "router.h"
#include "spend.h"
#include "xlate.h"

#define DT_REQREC_ATTEMPTS 8

struct evbuffer;

/* One member asked. */
struct dt_reqrec_attempt {
	const char *provider;          /* its name (the session's configuration) */
	char *model;                   /* the model asked for (owned; "" the client's) */
	enum dt_outcome_kind outcome;
	enum dt_blame blame;           /* NONE: an answer the request did not spoil */
	int status;                    /* its HTTP status, 0 when none came */
	bool hedge;                    /* sent while another was in flight */
	uint64_t start_ns, end_ns;     /* from the request's arrival */
};

struct dt_reqrec {
	int64_t wall_ms;               /* arrival, unix milliseconds */
	const char *app;               /* its [app NAME], "-" for none */
	const char *provider;          /* the provider the application addressed */
	enum dt_family shape;          /* the client's API */
	const char *method;
	const char *path;              /* without its query (a Gemini key may be there) */
	size_t path_len;
	char *model;                   /* asked for (owned; NULL: none named) */
	bool stream;
	int status;                    /* sent to the client; 0: none (it left first) */
	int served;                    /* the attempt whose answer the client got, -1: none */
	uint64_t ttfb_ns;              /* to the first byte the client got (0: none) */
	uint64_t ttft_ns;              /* a stream: to its first token (0: none, or not a stream) */
	uint64_t total_ns;
	bool hedged;                   /* two attempts raced */
	bool failover;                 /* answered after another member failed */
	bool broken;                   /* the answer broke after the first byte */
	unsigned budget_refused;       /* attempts the retry budget did not allow */
	struct dt_xusage usage;        /* of its answers, summed (known: false when none was read) */
	uint64_t cost_pico;            /* what they cost, pico-dollars (spend.h) */
	bool priced;                   /* every answer with usage had a price: cost_pico is whole */
	char *prompt;                  /* the request body (owned), only when logged */
	size_t prompt_len;
	size_t n_attempts;
	struct dt_reqrec_attempt attempts[DT_REQREC_ATTEMPTS];
};

/* What the record owns. */
void dt_reqrec_free(struct dt_reqrec *r);

/* The request body as the prompt, up to DT_REQREC_PROMPT_MAX bytes (none
 * when out of memory). */
#define DT_REQREC_PROMPT_MAX (64 * 1024)
void dt_reqrec_keep_prompt(struct dt_reqrec *r, struct evbuffer *body);
/* An answer's usage and its cost at price p (NULL: no price known), added
 * to the request's (a failover's refused answer costs too); nothing when
 * its usage is not known. */
void dt_reqrec_add_usage(struct dt_reqrec *r, const struct dt_xusage *u, const struct dt_price *p);
/* Whom an outcome blames when no answer body said. */
enum dt_blame dt_reqrec_blame_of(enum dt_outcome_kind k);

/* "ok", "server_error", ... for an outcome; "request", "key", ... for a
 * blame (NONE: "none"). */
const char *dt_reqrec_outcome_name(enum dt_outcome_kind k);
const char *dt_reqrec_blame_name(enum dt_blame b);

#endif
