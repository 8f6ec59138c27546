/* SPDX-License-Identifier: MIT */
/* Errors the proxy itself produces, in the API shape of the provider the
 * application called, so its SDK surfaces them as that provider's errors. */
#ifndef DT_ERRORS_H
#define DT_ERRORS_H

#include <stddef.h>
#include <linux/types.h>
#include "detour.h"

struct evbuffer;

#define DT_JSON_TYPE "application/json"

/* Append the JSON error body for an HTTP @status to @out; returns its
 * content type. */
const char *dt_error_body(enum dt_family family, int status, const char *message,
			  struct evbuffer *out);

/* A provider's error answer (any family's shape, or not JSON at all)
 * reshaped for a client of @family: the same status, the provider's own
 * message. Appends the body to @out; returns its content type. */
const char *dt_error_reshape(enum dt_family family, int status, const char *body, size_t len,
			     struct evbuffer *out);

/* Append a server-sent event that ends a broken stream with an error the
 * family's SDKs raise (e.g. Anthropic's "event: error"). */
void dt_error_event(enum dt_family family, int status, const char *message,
		    struct evbuffer *out);

#endif
