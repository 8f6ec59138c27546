/* SPDX-License-Identifier: MIT */
/* Which API call a client's request is, so it can be made on a provider of
 * another family: the generation endpoints (OpenAI chat completions,
 * Anthropic messages, Gemini generateContent / streamGenerateContent) are
 * translatable; anything else only goes to providers of the client's family. */
#ifndef DT_APICALL_H
#define DT_APICALL_H

#include <stdbool.h>
#include <linux/types.h>
#include "detour.h"
#include "router.h"

struct dt_apicall {
	bool generate;                 /* a generation call of the family */
	/* Gemini names the model and streaming in the path */
	char path_model[DT_MODEL_LEN]; /* "" for the other families */
	bool path_stream;              /* :streamGenerateContent */
	bool sse;                      /* ... with alt=sse (else a JSON array stream) */
};

/* Classify `rest`, the request target after the provider's API path
 * ("/chat/completions", "/models/gemini-2.0-flash:generateContent?alt=sse"). */
void dt_apicall_parse(enum dt_family family, const char *rest, struct dt_apicall *out);

/* The URL of a generation call on a provider of family `to` whose API lives
 * at base_url, for model (in the path for Gemini) and, for Gemini, streamed
 * or not. malloc'ed; NULL when out of memory. */
char *dt_apicall_url(enum dt_family to, const char *base_url, const char *model, bool stream);

#endif
