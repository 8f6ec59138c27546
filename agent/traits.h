/* SPDX-License-Identifier: MIT */
/* What a request needs of the model that serves it (capability tiers: tools,
 * images, JSON output, a window for its prompt and answer) and which
 * conversation it continues (stickiness), read from its neutral form, so
 * alike for OpenAI, Anthropic and Gemini requests. Pure. Semantics:
 * docs/routing.md. */
#ifndef DT_TRAITS_H
#define DT_TRAITS_H

#include "router.h"
#include "xlate.h"

/* Tokens an image is counted as in the prompt estimate. */
#define DT_TRAITS_IMAGE_TOKENS 800

/* The needs of request x sent by application `app` (its label, "-" for
 * none). */
void dt_traits_of(const struct dt_xrequest *x, const char *app, struct dt_route_needs *out);

#endif
