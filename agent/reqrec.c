// SPDX-License-Identifier: MIT
/* A request's record; see reqrec.h. */
#include <stdlib.h>

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
