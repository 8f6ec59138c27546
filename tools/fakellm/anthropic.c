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

static bool is_type(json_t *block, const char *type)
{
	const char *t = json_string_value(json_object_get(block, "type"));

	return t && strcmp(t, type) == 0;
}

/* Is id the id of a tool_use block of this (assistant) message? */
static bool has_tool_use(json_t *message, const char *id)
{
	const char *role = json_string_value(json_object_get(message, "role"));
	json_t *block;
	size_t i;

	if (!role || strcmp(role, "assistant") != 0)
		return false;
	json_array_foreach(json_object_get(message, "content"), i, block) {
		const char *used = json_string_value(json_object_get(block, "id"));

		if (is_type(block, "tool_use") && used && strcmp(used, id) == 0)
			return true;
	}
	return false;
}

/* Blocks: a tool_use has an id, a name and an input object; a tool_result
 * answers a tool_use of the message just before. */
static bool check_blocks(json_t *messages, size_t i, struct fl_error *err)
{
	json_t *content = json_object_get(json_array_get(messages, i), "content"), *block;
	const char *id;
	size_t j;

	if (!json_is_string(content) && !json_is_array(content)) {
		fl_error_printf(err, "messages.%zu.content: Input should be a valid string or a list "
				"of content blocks", i);
		return false;
	}
	json_array_foreach(content, j, block) {
		if (!json_is_string(json_object_get(block, "type"))) {
			fl_error_printf(err, "messages.%zu.content.%zu.type: Field required", i, j);
			return false;
		}
		if (is_type(block, "tool_use") &&
		    (!json_is_string(json_object_get(block, "id")) ||
		     !json_is_string(json_object_get(block, "name")) ||
		     !json_is_object(json_object_get(block, "input")))) {
			fl_error_printf(err, "messages.%zu.content.%zu.tool_use: id and name must be "
					"strings and input a valid dictionary", i, j);
			return false;
		}
		if (!is_type(block, "tool_result"))
			continue;
		id = json_string_value(json_object_get(block, "tool_use_id"));
		if (!id) {
			fl_error_printf(err, "messages.%zu.content.%zu.tool_result.tool_use_id: Field "
					"required", i, j);
			return false;
		}
		if (i == 0 || !has_tool_use(json_array_get(messages, i - 1), id)) {
			fl_error_printf(err, "messages.%zu.content.%zu: unexpected `tool_use_id` found in "
					"`tool_result` blocks: %.64s. Each `tool_result` block must have a "
					"corresponding `tool_use` block in the previous message.", i, j, id);
			return false;
		}
	}
	return true;
}

static bool check_system(json_t *system, struct fl_error *err)
{
	json_t *block;
	size_t i;

	if (!system || json_is_string(system))
		return true;
	if (!json_is_array(system))
		return refuse(err, "system: Input should be a valid string or a list of text blocks");
	json_array_foreach(system, i, block)
		if (!is_type(block, "text") || !json_is_string(json_object_get(block, "text"))) {
			fl_error_printf(err, "system.%zu: Input should be a text block "
					"({\"type\": \"text\", \"text\": ...})", i);
			return false;
		}
	return true;
}

/* Which function the answer calls, if any: the one tool_choice names, else
 * the first declared, unless tool_choice is none. Server tools (a type other
 * than "custom") need no schema. */
static bool read_tools(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	static const char *const choices[] = { "auto", "any", "tool", "none", NULL };
	json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
	json_t *tool;
	const char *type;
	size_t i;

	if (tools && !json_is_array(tools))
		return refuse(err, "tools: Input should be a valid list");
	json_array_foreach(tools, i, tool) {
		bool custom = !json_object_get(tool, "type") || is_type(tool, "custom");

		if (!json_is_string(json_object_get(tool, "name"))) {
			fl_error_printf(err, "tools.%zu.name: Field required", i);
			return false;
		}
		if (custom && !json_is_object(json_object_get(tool, "input_schema"))) {
			fl_error_printf(err, "tools.%zu.custom.input_schema: Field required", i);
			return false;
		}
		if (!p->tool && custom)
			p->tool = json_string_value(json_object_get(tool, "name"));
	}
	if (!choice)
		return true;
	type = json_string_value(json_object_get(choice, "type"));
	if (!fl_one_of(type, choices))
		return refuse(err, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
	if (strcmp(type, "none") == 0)
		p->tool = NULL;
	if (strcmp(type, "tool") == 0) {
		p->tool = json_string_value(json_object_get(choice, "name"));
		if (!p->tool)
			return refuse(err, "tool_choice.tool.name: Field required");
	}
	return true;
}

static bool anthropic_parse(const struct fl_request *req, json_t *body, struct fl_prompt *p,
			    struct fl_error *err)
{
	json_t *max, *stream, *m, *last, *block;
	const char *role;
	size_t i;

	(void)req;
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

	p->turns = json_object_get(body, "messages");
	if (!p->turns)
		return refuse(err, "messages: Field required");
	if (!json_is_array(p->turns))
		return refuse(err, "messages: Input should be a valid list");
	if (json_array_size(p->turns) == 0)
		return refuse(err, "messages: at least one message is required");
	json_array_foreach(p->turns, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
			fl_error_printf(err, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
			return false;
		}
		if (!check_blocks(p->turns, i, err))
			return false;
	}
	p->system = json_object_get(body, "system");
	if (!check_system(p->system, err) || !read_tools(body, p, err))
		return false;
	/* Anthropic has no JSON mode: asking for JSON in the system prompt is
	 * how it is done. */
	p->json = fl_text_contains(p->system, "JSON");

	stream = json_object_get(body, "stream");
	if (stream && !json_is_boolean(stream))
		return refuse(err, "stream: Input should be a valid boolean");
	p->stream = json_is_true(stream);

	/* A tool's result is repeated; a user's message is, or it is the
	 * argument of the call the tools ask for. */
	last = json_array_get(p->turns, json_array_size(p->turns) - 1);
	json_array_foreach(json_object_get(last, "content"), i, block)
		if (is_type(block, "tool_result")) {
			p->tool_result = true;
			p->echo = json_object_get(block, "content");
			break;
		}
	if (!p->tool_result)
		p->echo = fl_user_content(p->turns, "content");
	if (p->tool_result || strcmp(json_string_value(json_object_get(last, "role")), "user") != 0)
		p->tool = NULL;
	return true;
}

static const char *stop_reason(const struct fl_answer *a)
{
	static const char *const reasons[] = {
		[FL_FINISH_STOP] = "end_turn",
		[FL_FINISH_LENGTH] = "max_tokens",
		[FL_FINISH_TOOL] = "tool_use",
		[FL_FINISH_FILTER] = "refusal",
	};

	return reasons[a->finish];
}

/* Anthropic never sends an empty text block: an answer without words has
 * no content block at all. */
static bool has_block(const struct fl_answer *a)
{
	return a->text_len > 0;
}

/* The content block; at content_block_start it has no text or input yet. */
static void block(struct fl_jw *w, const struct fl_answer *a, bool complete)
{
	if (a->tool)
		fl_jw_format(w, "{\"type\":\"tool_use\",\"id\":%s,\"name\":%s,\"input\":%R}",
			     a->call_id, a->tool, complete ? a->text : "{}",
			     complete ? a->text_len : (size_t)2);
	else
		fl_jw_format(w, "{\"type\":\"text\",\"text\":%S}", a->text, complete ? a->text_len : 0);
}

/* The message object; at message_start it has no content yet. */
static void message(struct fl_jw *w, const struct fl_answer *a, bool complete)
{
	fl_jw_format(w, "{\"id\":%s,\"type\":\"message\",\"role\":\"assistant\",\"model\":%s,"
		     "\"content\":[", a->id, a->model);
	if (complete && has_block(a))
		block(w, a, true);
	/* input_tokens: those not read from the cache */
	fl_jw_format(w, "],\"stop_reason\":%s,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%u,"
		     "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%u,"
		     "\"output_tokens\":%u,\"service_tier\":\"standard\"}}",
		     complete ? stop_reason(a) : NULL, a->prompt_tokens - a->cached_tokens,
		     a->cached_tokens, complete ? a->words : 1);
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
	if (has_block(a)) {
		w = event_begin(c);
		fl_jw_format(w, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":");
		block(w, a, false);
		fl_jw_format(w, "}");
		fl_http_sse(c, "content_block_start");
	}
	fl_jw_format(event_begin(c), "{\"type\":\"ping\"}");
	fl_http_sse(c, "ping");
}

static void anthropic_stream_token(struct fl_conn *c, const struct fl_answer *a,
				   const char *token, size_t len)
{
	fl_jw_format(event_begin(c), "{\"type\":\"content_block_delta\",\"index\":0,"
		     "\"delta\":{\"type\":%s,%s:%S}}", a->tool ? "input_json_delta" : "text_delta",
		     a->tool ? "partial_json" : "text", token, len);
	fl_http_sse(c, "content_block_delta");
}

static void anthropic_stream_close(struct fl_conn *c, const struct fl_answer *a)
{
	if (has_block(a)) {
		fl_jw_format(event_begin(c), "{\"type\":\"content_block_stop\",\"index\":0}");
		fl_http_sse(c, "content_block_stop");
	}
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
		     fl_error_message(err, kind->message), meta->request_id);
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
	char limited_reset[32], requests_reset[32];
	const char *reset = reset_in_one_second(), *reset_requests = reset;
	int limit = m->rpm_limit ? (int)m->rpm_limit : REQUEST_LIMIT;

	if (m->limited) {
		fl_format_rfc3339(limited_reset, sizeof(limited_reset),
				  time(NULL) + (m->retry_after > 0 ? m->retry_after : 1));
		reset = reset_requests = limited_reset;
	} else if (m->rpm_limit) {
		/* under --rpm: when the minute's oldest request leaves it */
		fl_format_rfc3339(requests_reset, sizeof(requests_reset),
				  time(NULL) + (time_t)((m->rpm_reset_ms + 999) / 1000));
		reset_requests = requests_reset;
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
			    limit, m->limited ? 0 : m->rpm_limit ? (int)m->rpm_left : REQUEST_LIMIT - 1,
			    reset_requests,
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
	.call_id_prefix = "toolu_01",
	.headers      = anthropic_headers,
};
