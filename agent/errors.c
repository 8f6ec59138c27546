// SPDX-License-Identifier: MIT
/* Provider-shaped error bodies; see errors.h. */
#include <stdio.h>
#include <stdlib.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "errors.h"

/* OpenAI's error "type" for a status. */
static const char *openai_type(int status)
{
	switch (status) {
	case 400: case 404: case 405: case 411: case 413: case 414: case 415: case 422: case 431:
		return "invalid_request_error";
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 408: case 504: return "timeout";
	case 429: return "rate_limit_exceeded";
	default:  return "server_error";
	}
}

/* Anthropic's error "type" for a status (its documented set). */
static const char *anthropic_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 413: return "request_too_large";
	case 429: return "rate_limit_error";
	case 503: case 529: return "overloaded_error";
	case 504: return "timeout_error";
	default:  return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
	}
}

/* Gemini's (Google RPC) status name for an HTTP status. */
static const char *gemini_status(int status)
{
	switch (status) {
	case 400: case 413: case 422: case 431: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 403: return "PERMISSION_DENIED";
	case 404: return "NOT_FOUND";
	case 408: case 504: return "DEADLINE_EXCEEDED";
	case 429: return "RESOURCE_EXHAUSTED";
	case 503: return "UNAVAILABLE";
	default:  return status >= 400 && status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
	}
}

static json_t *error_object(enum dt_family family, int status, const char *message)
{
	switch (family) {
	case DT_FAMILY_ANTHROPIC:
		return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
				 "type", anthropic_type(status), "message", message);
	case DT_FAMILY_GEMINI:
		return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status,
				 "message", message, "status", gemini_status(status));
	case DT_FAMILY_OPENAI:
	default:
		return json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message,
				 "type", openai_type(status), "param", "code");
	}
}

static void append_json(struct evbuffer *out, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	/* the pack only fails on allocation; an empty object still parses */
	evbuffer_add_printf(out, "%s", text ? text : "{}");
	free(text);
	json_decref(obj);
}

const char *dt_error_body(enum dt_family family, int status, const char *message,
			  struct evbuffer *out)
{
	append_json(out, error_object(family, status, message));
	return DT_JSON_TYPE;
}

/* Every family puts the message at error.message; some hosts use a bare
 * string at error or a top-level message. */
static const char *message_of(json_t *doc)
{
	json_t *err = json_object_get(doc, "error");
	json_t *msg = json_is_object(err) ? json_object_get(err, "message") : err;

	if (!json_is_string(msg))
		msg = json_object_get(doc, "message");
	return json_is_string(msg) ? json_string_value(msg) : NULL;
}

const char *dt_error_reshape(enum dt_family family, int status, const char *body, size_t len,
			     struct evbuffer *out)
{
	json_t *doc = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = doc ? message_of(doc) : NULL;
	char text[512];

	if (!msg) {
		/* not JSON, or no message in it: its first bytes, as text */
		snprintf(text, sizeof(text), "the provider answered %d: %.*s", status,
			 (int)(len < 300 ? len : 300), len ? body : "");
		msg = text;
	}
	append_json(out, error_object(family, status, msg));
	json_decref(doc);
	return DT_JSON_TYPE;
}

void dt_error_event(enum dt_family family, int status, const char *message,
		    struct evbuffer *out)
{
	if (family == DT_FAMILY_ANTHROPIC)
		evbuffer_add_printf(out, "event: error\n");
	evbuffer_add_printf(out, "data: ");
	append_json(out, error_object(family, status, message));
	evbuffer_add_printf(out, "\n\n");
}
