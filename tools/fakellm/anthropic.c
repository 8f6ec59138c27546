/* SPDX-License-Identifier: MIT */
/*
 * Anthropic Messages: request checks, message objects, the SSE event
 * sequence (message_start ... message_stop), errors, headers.
 */
#include <limits.h>
#include <string.h>

#include "fakellm.h"

#define REQUEST_LIMIT 4000   /* anthropic-ratelimit-requests-limit, per minute */
#define TOKEN_LIMIT   400000 /* anthropic-ratelimit-tokens-limit, per minute */

static const struct fl_error_kind anthropic_errors[] = {
	{ 400, "invalid_request_error", NULL, "Invalid request." },
	{ 401, "authentication_error", NULL, "invalid x-api-key" },
	{ 403, "permission_error", NULL,
	  "Your API key does not have permission to use the specified resource." },
	{ 404, "not_found_error", NULL, "Not found" },
	{ 413, "request_too_large", NULL, "Request exceeds the maximum allowed number of bytes." },
	{ 429, "rate_limit_error", NULL,
	  "This request would exceed the rate limit for your organization of 4,000 requests per "
	  "minute. Please try again later." },
	{ 499, "invalid_request_error", NULL, "Invalid request." },
	{ 500, "api_error", NULL, "Internal server error" },
	{ 503, "api_error", NULL, "Service unavailable" },
	{ 504, "timeout_error", NULL, "Request timed out" },
	{ 529, "overloaded_error", NULL, "Overloaded" },
	{ 599, "api_error", NULL, "Internal server error" },
};

static bool refuse(struct fl_error *err, const char *message)
{
	err->status = 400;
	err->message = message;
	return false;
}

static bool anthropic_parse(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	json_t *max, *stream, *m;
	const char *role;
	size_t i;

	if (!body)
		return refuse(err, "The request body is not valid JSON.");
	if (!json_is_object(body))
		return refuse(err, "The request body must be a JSON object.");
	p->model = json_string_value(json_object_get(body, "model"));
	if (!p->model || !*p->model)
		return refuse(err, "model: Field required");

	max = json_object_get(body, "max_tokens");
	if (!max)
		return refuse(err, "max_tokens: Field required");
	if (!json_is_integer(max) || json_integer_value(max) < 1)
		return refuse(err, "max_tokens: Input should be an integer greater than or equal to 1");
	p->max_tokens = json_integer_value(max) > UINT_MAX ? UINT_MAX
							   : (unsigned)json_integer_value(max);

	p->messages = json_object_get(body, "messages");
	if (!p->messages)
		return refuse(err, "messages: Field required");
	if (!json_is_array(p->messages))
		return refuse(err, "messages: Input should be a valid list");
	if (json_array_size(p->messages) == 0)
		return refuse(err, "messages: at least one message is required");
	json_array_foreach(p->messages, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
			return refuse(err, "messages: each role should be 'user' or 'assistant'");
	}
	p->system = json_object_get(body, "system");

	stream = json_object_get(body, "stream");
	if (stream && !json_is_boolean(stream))
		return refuse(err, "stream: Input should be a valid boolean");
	p->stream = json_is_true(stream);
	return true;
}

static const char *stop_reason(const struct fl_answer *a)
{
	return a->truncated ? "max_tokens" : "end_turn";
}

/* The message object; at message_start it has no content yet. */
static void message(struct fl_jw *w, const struct fl_answer *a, bool complete)
{
	fl_jw_format(w, "{\"id\":%s,\"type\":\"message\",\"role\":\"assistant\",\"model\":%s,"
		     "\"content\":[", a->id, a->model);
	if (complete)
		fl_jw_format(w, "{\"type\":\"text\",\"text\":%S}", a->text, a->text_len);
	fl_jw_format(w, "],\"stop_reason\":%s,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%u,"
		     "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
		     "\"output_tokens\":%u,\"service_tier\":\"standard\"}}",
		     complete ? stop_reason(a) : NULL, a->prompt_tokens, complete ? a->words : 1);
}

static void anthropic_message(struct fl_jw *w, const struct fl_answer *a)
{
	message(w, a, true);
}

/* Starts an event's data in the server's writer; fl_http_sse sends it. */
static struct fl_jw *event_begin(struct fl_conn *c)
{
	fl_jw_reset(&c->srv->body);
	return &c->srv->body;
}

static void anthropic_stream_open(struct fl_conn *c, const struct fl_answer *a)
{
	struct fl_jw *w = event_begin(c);

	fl_jw_format(w, "{\"type\":\"message_start\",\"message\":");
	message(w, a, false);
	fl_jw_format(w, "}");
	fl_http_sse(c, "message_start");
	fl_jw_format(event_begin(c), "{\"type\":\"content_block_start\",\"index\":0,"
		     "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
	fl_http_sse(c, "content_block_start");
	fl_jw_format(event_begin(c), "{\"type\":\"ping\"}");
	fl_http_sse(c, "ping");
}

static void anthropic_stream_token(struct fl_conn *c, const struct fl_answer *a,
				   const char *token, size_t len)
{
	(void)a;
	fl_jw_format(event_begin(c), "{\"type\":\"content_block_delta\",\"index\":0,"
		     "\"delta\":{\"type\":\"text_delta\",\"text\":%S}}", token, len);
	fl_http_sse(c, "content_block_delta");
}

static void anthropic_stream_close(struct fl_conn *c, const struct fl_answer *a)
{
	fl_jw_format(event_begin(c), "{\"type\":\"content_block_stop\",\"index\":0}");
	fl_http_sse(c, "content_block_stop");
	fl_jw_format(event_begin(c), "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":%s,"
		     "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%u}}",
		     stop_reason(a), a->words);
	fl_http_sse(c, "message_delta");
	fl_jw_format(event_begin(c), "{\"type\":\"message_stop\"}");
	fl_http_sse(c, "message_stop");
}

static void anthropic_models(struct fl_jw *w)
{
	static const struct {
		const char *id, *display_name, *created_at;
	} models[] = {
		{ "claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z" },
		{ "claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24T00:00:00Z" },
		{ "claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z" },
	};
	size_t i, n = sizeof(models) / sizeof(models[0]);

	fl_jw_format(w, "{\"data\":[");
	for (i = 0; i < n; i++) {
		fl_jw_format(w, i ? "," : "");
		fl_jw_format(w, "{\"type\":\"model\",\"id\":%s,\"display_name\":%s,\"created_at\":%s}",
			     models[i].id, models[i].display_name, models[i].created_at);
	}
	fl_jw_format(w, "],\"has_more\":false,\"first_id\":%s,\"last_id\":%s}",
		     models[0].id, models[n - 1].id);
}

static void anthropic_error(struct fl_jw *w, const struct fl_error *err,
			    const struct fl_meta *meta)
{
	const struct fl_error_kind *kind = fl_error_kind(anthropic_errors, err->status);

	fl_jw_format(w, "{\"type\":\"error\",\"error\":{\"type\":%s,\"message\":%s},"
		     "\"request_id\":%s}", kind->type,
		     err->message ? err->message : kind->message, meta->request_id);
}

static void anthropic_request_id(char *out, size_t size)
{
	fl_random_id(out, size, "req_011C", 20, fl_alnum);
}

static void anthropic_answer_id(char *out, size_t size)
{
	fl_random_id(out, size, "msg_01", 22, fl_alnum);
}

/* Reset times are absolute (RFC 3339); "in one second" is the same string
 * for a whole second, so it is made once per second. */
static const char *reset_in_one_second(void)
{
	static time_t made_at;
	static char text[32];
	time_t now = time(NULL);

	if (now != made_at) {
		fl_format_rfc3339(text, sizeof(text), now + 1);
		made_at = now;
	}
	return text;
}

static void anthropic_headers(struct evbuffer *out, const struct fl_meta *m)
{
	uint64_t tokens = m->tokens < TOKEN_LIMIT ? m->tokens : TOKEN_LIMIT;
	char limited_reset[32];
	const char *reset = reset_in_one_second();

	if (m->limited) {
		fl_format_rfc3339(limited_reset, sizeof(limited_reset),
				  time(NULL) + (m->retry_after > 0 ? m->retry_after : 1));
		reset = limited_reset;
	}
	evbuffer_add_printf(out,
			    "request-id: %s\r\n"
			    "anthropic-ratelimit-requests-limit: %d\r\n"
			    "anthropic-ratelimit-requests-remaining: %d\r\n"
			    "anthropic-ratelimit-requests-reset: %s\r\n"
			    "anthropic-ratelimit-tokens-limit: %d\r\n"
			    "anthropic-ratelimit-tokens-remaining: %llu\r\n"
			    "anthropic-ratelimit-tokens-reset: %s\r\n",
			    m->request_id,
			    REQUEST_LIMIT, m->limited ? 0 : REQUEST_LIMIT - 1, reset,
			    TOKEN_LIMIT, m->limited ? 0ULL : (unsigned long long)(TOKEN_LIMIT - tokens),
			    reset);
}

const struct fl_api fl_anthropic = {
	.parse        = anthropic_parse,
	.message      = anthropic_message,
	.stream_open  = anthropic_stream_open,
	.stream_token = anthropic_stream_token,
	.stream_close = anthropic_stream_close,
	.models       = anthropic_models,
	.error        = anthropic_error,
	.request_id   = anthropic_request_id,
	.answer_id    = anthropic_answer_id,
	.headers      = anthropic_headers,
};
