/* SPDX-License-Identifier: MIT */
/*
 * Counters served by GET /stats.
 */
#include <stdio.h>
#include <string.h>

#include "fakellm.h"

static const char *const route_paths[FL_ROUTE_COUNT] = {
	[FL_ROUTE_CHAT]     = "/v1/chat/completions",
	[FL_ROUTE_MESSAGES] = "/v1/messages",
	[FL_ROUTE_MODELS]   = "/v1/models",
	[FL_ROUTE_GEMINI_GENERATE] = "/v1beta/models/*:generateContent",
	[FL_ROUTE_GEMINI_STREAM]   = "/v1beta/models/*:streamGenerateContent",
	[FL_ROUTE_GEMINI_MODELS]   = "/v1beta/models",
	[FL_ROUTE_OTHER]    = "other",
};

const char *fl_route_path(enum fl_route route)
{
	return route_paths[route];
}

/* Copies a possibly long, not NUL-terminated value, cut to fit. */
static void keep(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Gemini takes its key from a header or from the query. */
static void keep_goog_api_key(struct fl_stats *s, const struct fl_request *req)
{
	struct fl_span key = { req->x_goog_api_key.text, req->x_goog_api_key.len };

	if (!key.len)
		fl_request_query(req, "key", &key);
	keep(s->last_x_goog_api_key, sizeof(s->last_x_goog_api_key), key.text, key.len);
}

/* The body as sent, cut to the buffer on a UTF-8 character boundary. */
static void keep_body(struct fl_stats *s, const struct fl_request *req)
{
	size_t len = req->body_len;

	if (len > sizeof(s->last_body)) {
		len = sizeof(s->last_body);
		while (len && ((unsigned char)req->body[len] & 0xC0) == 0x80)
			len--;
	}
	if (len)
		memcpy(s->last_body, req->body, len);
	s->last_body_len = len;
}

void fl_stats_request(struct fl_stats *s, enum fl_route route, const struct fl_request *req)
{
	s->requests++;
	s->by_route[route]++;
	keep(s->last_path, sizeof(s->last_path), req->url, req->url_len);
	keep(s->last_authorization, sizeof(s->last_authorization),
	     req->authorization.text, req->authorization.len);
	keep(s->last_x_api_key, sizeof(s->last_x_api_key), req->x_api_key.text, req->x_api_key.len);
	keep(s->last_anthropic_version, sizeof(s->last_anthropic_version),
	     req->anthropic_version.text, req->anthropic_version.len);
	keep_goog_api_key(s, req);
	keep_body(s, req);
	s->last_model[0] = '\0';
}

void fl_stats_model(struct fl_stats *s, const char *model)
{
	keep(s->last_model, sizeof(s->last_model), model, strlen(model));
}

void fl_stats_status(struct fl_stats *s, int status)
{
	if (status >= 0 && status < (int)(sizeof(s->by_status) / sizeof(s->by_status[0])))
		s->by_status[status]++;
}

json_t *fl_stats_to_json(const struct fl_stats *s, const struct fl_fault *fault)
{
	json_t *by_route = json_object(), *by_status = json_object();
	/* Not UTF-8 (jansson refuses it): null. */
	json_t *body = json_stringn(s->last_body, s->last_body_len);
	char key[8];
	size_t i;

	if (!by_route || !by_status)
		goto fail;
	for (i = 0; i < FL_ROUTE_COUNT; i++)
		json_object_set_new(by_route, route_paths[i], json_integer((json_int_t)s->by_route[i]));
	for (i = 0; i < sizeof(s->by_status) / sizeof(s->by_status[0]); i++) {
		if (!s->by_status[i])
			continue;
		snprintf(key, sizeof(key), "%zu", i);
		json_object_set_new(by_status, key, json_integer((json_int_t)s->by_status[i]));
	}
	/* "o" steals the objects, also when json_pack fails. */
	return json_pack("{s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:o,"
			 " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:o}}",
			 "connections", (json_int_t)s->connections,
			 "requests", (json_int_t)s->requests,
			 "by_path", by_route,
			 "by_status", by_status,
			 "resets", (json_int_t)s->resets,
			 "hangs", (json_int_t)s->hangs,
			 "abandoned", (json_int_t)s->abandoned,
			 "tls_failures", (json_int_t)s->tls_failures,
			 "tokens", "prompt", (json_int_t)s->prompt_tokens,
			 "completion", (json_int_t)s->completion_tokens,
			 "cached", (json_int_t)s->cached_tokens,
			 "fault", fl_fault_to_json(fault),
			 "last_request",
			 "path", s->last_path,
			 "model", s->last_model,
			 "authorization", s->last_authorization,
			 "x_api_key", s->last_x_api_key,
			 "anthropic_version", s->last_anthropic_version,
			 "x_goog_api_key", s->last_x_goog_api_key,
			 "body", body ? body : json_null());
fail:
	json_decref(by_route);
	json_decref(by_status);
	json_decref(body);
	return NULL;
}
