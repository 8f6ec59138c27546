/* SPDX-License-Identifier: MIT */
/*
 * OpenAI Chat Completions: request checks, chat.completion objects,
 * chat.completion.chunk streams ending in [DONE], errors, headers.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fakellm.h"

#define REQUEST_LIMIT 10000   /* x-ratelimit-limit-requests, per minute */
#define TOKEN_LIMIT   2000000 /* x-ratelimit-limit-tokens, per minute */
#define FINGERPRINT   "fp_fa4e11a0c1"

static const struct fl_error_kind openai_errors[] = {
	{ 400, "invalid_request_error", NULL, "Bad request." },
	{ 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided." },
	{ 403, "invalid_request_error", NULL, "You are not allowed to access this resource." },
	{ 404, "invalid_request_error", NULL, "Not found." },
	{ 413, "invalid_request_error", NULL, "Request body too large." },
	{ 414, "invalid_request_error", NULL, "Request URL too long." },
	{ 429, "requests", "rate_limit_exceeded",
	  "Rate limit reached for requests per min (RPM): Limit 10000, Used 10000, Requested 1. "
	  "Please try again later." },
	{ 431, "invalid_request_error", NULL, "Request header fields too large." },
	{ 499, "invalid_request_error", NULL, "Invalid request." },
	{ 500, "server_error", NULL,
	  "The server had an error while processing your request. Sorry about that!" },
	{ 503, "server_error", NULL, "The server is overloaded or not ready yet." },
	{ 529, "server_error", NULL, "The server is overloaded or not ready yet." },
	{ 599, "server_error", NULL,
	  "The server had an error while processing your request. Sorry about that!" },
};

static bool refuse(struct fl_error *err, const char *message, const char *param, const char *code)
{
	err->status = 400;
	err->message = message;
	err->param = param;
	err->code = code;
	return false;
}

/* Is id among the tool_calls of an assistant message before messages[end]? */
static bool called_before(json_t *messages, size_t end, const char *id)
{
	json_t *m, *call;
	size_t i, j;

	json_array_foreach(messages, i, m) {
		if (i == end)
			break;
		json_array_foreach(json_object_get(m, "tool_calls"), j, call) {
			const char *called = json_string_value(json_object_get(call, "id"));

			if (called && strcmp(called, id) == 0)
				return true;
		}
	}
	return false;
}

/* Roles, the tool calls an assistant made and the answers to them. */
static bool check_messages(json_t *messages, struct fl_error *err)
{
	static const char *const roles[] = { "system", "developer", "user", "assistant", "tool", NULL };
	json_t *m, *call, *args;
	const char *role, *id;
	size_t i, j;

	json_array_foreach(messages, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		if (!role)
			return refuse(err, "Each message in 'messages' must be an object with a 'role'.",
				      "messages", "missing_required_parameter");
		if (!fl_one_of(role, roles)) {
			fl_error_printf(err, "Invalid value: '%.64s' for 'messages[%zu].role'. Supported "
					"values are: 'system', 'assistant', 'user', 'tool', and 'developer'.",
					role, i);
			return refuse(err, NULL, "messages", "invalid_value");
		}
		json_array_foreach(json_object_get(m, "tool_calls"), j, call) {
			args = json_object_get(json_object_get(call, "function"), "arguments");
			if (!json_is_string(json_object_get(call, "id")) || !json_is_string(args)) {
				fl_error_printf(err, "Invalid 'messages[%zu].tool_calls[%zu]': 'id' and "
						"'function.arguments' must be strings.", i, j);
				return refuse(err, NULL, "messages", "invalid_type");
			}
		}
		if (strcmp(role, "tool") != 0)
			continue;
		id = json_string_value(json_object_get(m, "tool_call_id"));
		if (!id) {
			fl_error_printf(err, "Missing required parameter: 'messages[%zu].tool_call_id'.", i);
			return refuse(err, NULL, "messages", "missing_required_parameter");
		}
		if (!called_before(messages, i, id)) {
			fl_error_printf(err, "Invalid parameter: 'messages[%zu].tool_call_id' of '%.64s' "
					"not found in 'tool_calls' of previous message.", i, id);
			return refuse(err, NULL, "messages", "invalid_value");
		}
	}
	return true;
}

/* Which function the answer calls, if any: the one tool_choice names, else
 * the first declared, unless tool_choice is "none". */
static bool read_tools(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	static const char *const choices[] = { "none", "auto", "required", NULL };
	json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
	json_t *tool;
	size_t i;

	if (tools && !json_is_array(tools))
		return refuse(err, "Invalid type for 'tools': expected an array of objects.", "tools",
			      "invalid_type");
	json_array_foreach(tools, i, tool) {
		const char *type = json_string_value(json_object_get(tool, "type"));
		json_t *name = json_object_get(json_object_get(tool, "function"), "name");

		if (!type || strcmp(type, "function") != 0 || !json_is_string(name) ||
		    json_string_length(name) == 0) {
			fl_error_printf(err, "Missing required parameter: 'tools[%zu].function.name' "
					"(with 'tools[%zu].type': 'function').", i, i);
			return refuse(err, NULL, "tools", "missing_required_parameter");
		}
		if (i == 0)
			p->tool = json_string_value(name);
	}
	if (choice && !json_is_null(choice) && json_array_size(tools) == 0)
		return refuse(err, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
			      "'tools' are specified.", "tool_choice", NULL);
	if (json_is_string(choice) && !fl_one_of(json_string_value(choice), choices))
		return refuse(err, "Invalid value for 'tool_choice': expected 'none', 'auto', "
			      "'required' or an object naming a function.", "tool_choice", "invalid_value");
	if (json_is_string(choice) && strcmp(json_string_value(choice), "none") == 0)
		p->tool = NULL;
	if (json_is_object(choice)) {
		const char *name = json_string_value(json_object_get(json_object_get(choice, "function"),
								     "name"));

		if (!name)
			return refuse(err, "Missing required parameter: 'tool_choice.function.name'.",
				      "tool_choice", "missing_required_parameter");
		p->tool = name;
	}
	return true;
}

static bool read_response_format(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	static const char *const types[] = { "text", "json_object", "json_schema", NULL };
	json_t *format = json_object_get(body, "response_format");
	const char *type = json_string_value(json_object_get(format, "type"));

	if (!format || json_is_null(format))
		return true;
	if (!fl_one_of(type, types))
		return refuse(err, "Invalid value for 'response_format.type': expected 'text', "
			      "'json_object' or 'json_schema'.", "response_format.type", "invalid_value");
	p->json = strcmp(type, "text") != 0;
	return true;
}

static bool openai_parse(const struct fl_request *req, json_t *body, struct fl_prompt *p,
			 struct fl_error *err)
{
	const char *max_key = "max_completion_tokens";
	json_t *max, *stream, *options, *last;
	const char *role;

	(void)req;
	if (!body)
		return refuse(err, "We could not parse the JSON body of your request. (HINT: This likely "
			      "means you aren't using your HTTP library correctly. The OpenAI API expects "
			      "a JSON payload, but what was sent was not valid JSON.)", NULL, NULL);
	if (!json_is_object(body))
		return refuse(err, "Invalid type for 'body': expected an object.", NULL, "invalid_type");
	p->model = json_string_value(json_object_get(body, "model"));
	if (!p->model || !*p->model)
		return refuse(err, "you must provide a model parameter", NULL, NULL);

	p->turns = json_object_get(body, "messages");
	if (!p->turns)
		return refuse(err, "Missing required parameter: 'messages'.", "messages",
			      "missing_required_parameter");
	if (!json_is_array(p->turns))
		return refuse(err, "Invalid type for 'messages': expected an array of objects.",
			      "messages", "invalid_type");
	if (json_array_size(p->turns) == 0)
		return refuse(err, "Invalid 'messages': empty array. Expected an array with minimum "
			      "length 1, but got an empty array instead.", "messages", "empty_array");
	if (!check_messages(p->turns, err) || !read_tools(body, p, err) ||
	    !read_response_format(body, p, err))
		return false;

	max = json_object_get(body, max_key);
	if (!max || json_is_null(max)) {
		max_key = "max_tokens";
		max = json_object_get(body, max_key);
	}
	if (max && !json_is_null(max)) {
		if (!json_is_integer(max) || json_integer_value(max) < 1)
			return refuse(err, "Invalid value for the maximum number of tokens: expected an "
				      "integer >= 1.", max_key, "integer_below_min_value");
		p->max_tokens = json_integer_value(max) > UINT_MAX ? UINT_MAX
								   : (unsigned)json_integer_value(max);
	}

	stream = json_object_get(body, "stream");
	if (stream && !json_is_null(stream) && !json_is_boolean(stream))
		return refuse(err, "Invalid type for 'stream': expected a boolean.", "stream", "invalid_type");
	p->stream = json_is_true(stream);
	options = json_object_get(body, "stream_options");
	if (options && !json_is_null(options) && !p->stream)
		return refuse(err, "The 'stream_options' parameter is only allowed when 'stream' is "
			      "enabled.", "stream_options", "invalid_value");
	p->include_usage = json_is_true(json_object_get(options, "include_usage"));

	/* A tool's answer is repeated; a user's message is, or it is the
	 * argument of the call the tools ask for. */
	last = json_array_get(p->turns, json_array_size(p->turns) - 1);
	role = json_string_value(json_object_get(last, "role"));
	p->tool_result = strcmp(role, "tool") == 0;
	p->echo = p->tool_result ? json_object_get(last, "content")
				 : fl_user_content(p->turns, "content");
	if (strcmp(role, "user") != 0)
		p->tool = NULL;
	return true;
}

static void usage(struct fl_jw *w, const struct fl_answer *a)
{
	fl_jw_format(w, "{\"prompt_tokens\":%u,\"completion_tokens\":%u,\"total_tokens\":%u,"
		     "\"prompt_tokens_details\":{\"cached_tokens\":%u,\"audio_tokens\":0},"
		     "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
		     "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
		     a->prompt_tokens, a->words, a->prompt_tokens + a->words, a->cached_tokens);
}

static const char *finish_reason(const struct fl_answer *a)
{
	static const char *const reasons[] = {
		[FL_FINISH_STOP] = "stop",
		[FL_FINISH_LENGTH] = "length",
		[FL_FINISH_TOOL] = "tool_calls",
		[FL_FINISH_FILTER] = "content_filter",
	};

	return reasons[a->finish];
}

/* The message's content and tool calls; a filtered answer has no content. */
static void message_body(struct fl_jw *w, const struct fl_answer *a)
{
	if (!a->tool) {
		if (a->finish == FL_FINISH_FILTER)
			fl_jw_format(w, "\"content\":null");
		else
			fl_jw_format(w, "\"content\":%S", a->text, a->text_len);
		return;
	}
	fl_jw_format(w, "\"content\":null,\"tool_calls\":[{\"id\":%s,\"type\":\"function\","
		     "\"function\":{\"name\":%s,\"arguments\":%S}}]",
		     a->call_id, a->tool, a->text, a->text_len);
}

static void openai_message(struct fl_jw *w, const struct fl_answer *a)
{
	fl_jw_format(w, "{\"id\":%s,\"object\":\"chat.completion\",\"created\":%U,\"model\":%s,"
		     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",",
		     a->id, (unsigned long long)a->created, a->model);
	message_body(w, a);
	fl_jw_format(w, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
		     "\"finish_reason\":%s}],\"usage\":", finish_reason(a));
	usage(w, a);
	fl_jw_format(w, ",\"service_tier\":\"default\",\"system_fingerprint\":%s}", FINGERPRINT);
}

/* A chat.completion.chunk: chunk_begin, its choices, chunk_end. */
static struct fl_jw *chunk_begin(struct fl_conn *c, const struct fl_answer *a)
{
	struct fl_jw *w = &c->srv->body;

	fl_jw_reset(w);
	fl_jw_format(w, "{\"id\":%s,\"object\":\"chat.completion.chunk\",\"created\":%U,"
		     "\"model\":%s,\"service_tier\":\"default\",\"system_fingerprint\":%s,"
		     "\"choices\":[", a->id, (unsigned long long)a->created, a->model, FINGERPRINT);
	return w;
}

static void chunk_end(struct fl_conn *c, const struct fl_answer *a)
{
	/* With include_usage every chunk has "usage": null but the last. */
	fl_jw_format(&c->srv->body, a->include_usage ? "],\"usage\":null}" : "]}");
	fl_http_sse(c, NULL);
}

/* The first delta names the role; a tool call starts there, with its id,
 * name and empty arguments. */
static void openai_stream_open(struct fl_conn *c, const struct fl_answer *a)
{
	struct fl_jw *w = chunk_begin(c, a);

	fl_jw_format(w, "{\"index\":0,\"delta\":{\"role\":\"assistant\",");
	if (a->tool)
		fl_jw_format(w, "\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":%s,"
			     "\"type\":\"function\",\"function\":{\"name\":%s,\"arguments\":\"\"}}]",
			     a->call_id, a->tool);
	else
		fl_jw_format(w, "\"content\":\"\"");
	fl_jw_format(w, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}");
	chunk_end(c, a);
}

static void openai_stream_token(struct fl_conn *c, const struct fl_answer *a,
				const char *token, size_t len)
{
	struct fl_jw *w = chunk_begin(c, a);

	if (a->tool)
		fl_jw_format(w, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
			     "\"function\":{\"arguments\":%S}}]},", token, len);
	else
		fl_jw_format(w, "{\"index\":0,\"delta\":{\"content\":%S},", token, len);
	fl_jw_format(w, "\"logprobs\":null,\"finish_reason\":null}");
	chunk_end(c, a);
}

static void openai_stream_close(struct fl_conn *c, const struct fl_answer *a)
{
	struct fl_jw *w;

	fl_jw_format(chunk_begin(c, a), "{\"index\":0,\"delta\":{},\"logprobs\":null,"
		     "\"finish_reason\":%s}", finish_reason(a));
	chunk_end(c, a);
	if (a->include_usage) {
		w = chunk_begin(c, a);
		fl_jw_format(w, "],\"usage\":");
		usage(w, a);
		fl_jw_format(w, "}");
		fl_http_sse(c, NULL);
	}
	w = &c->srv->body;
	fl_jw_reset(w);
	fl_jw_format(w, "[DONE]");
	fl_http_sse(c, NULL);
}

static void openai_models(struct fl_jw *w)
{
	static const struct {
		const char *id;
		unsigned long long created;
	} models[] = {
		{ "gpt-4o", 1715367049 },
		{ "gpt-4o-mini", 1721172741 },
		{ "gpt-4.1", 1744316542 },
		{ "gpt-4.1-mini", 1744318173 },
	};
	size_t i;

	fl_jw_format(w, "{\"object\":\"list\",\"data\":[");
	for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		fl_jw_format(w, i ? "," : "");
		fl_jw_format(w, "{\"id\":%s,\"object\":\"model\",\"created\":%U,\"owned_by\":\"system\"}",
			     models[i].id, models[i].created);
	}
	fl_jw_format(w, "]}");
}

static void openai_error(struct fl_jw *w, const struct fl_error *err, const struct fl_meta *meta)
{
	const struct fl_error_kind *kind = fl_error_kind(openai_errors, err->status);

	(void)meta;
	fl_jw_format(w, "{\"error\":{\"message\":%s,\"type\":%s,\"param\":%s,\"code\":%s}}",
		     fl_error_message(err, kind->message), kind->type, err->param,
		     err->code ? err->code : kind->code);
}

static void openai_request_id(char *out, size_t size)
{
	fl_random_id(out, size, "req_", 32, fl_hex);
}

static void openai_answer_id(char *out, size_t size)
{
	fl_random_id(out, size, "chatcmpl-", 29, fl_alnum);
}

static void openai_headers(struct evbuffer *out, const struct fl_meta *m)
{
	uint64_t tokens = m->tokens < TOKEN_LIMIT ? m->tokens : TOKEN_LIMIT;
	char reset_requests[24], reset_tokens[24];
	int limit = m->rpm_limit ? (int)m->rpm_limit : REQUEST_LIMIT;

	if (m->limited) {
		uint64_t wait_ms = m->retry_after > 0 ? (uint64_t)m->retry_after * 1000 : 1000;

		fl_format_duration_ms(reset_requests, sizeof(reset_requests), wait_ms);
		fl_format_duration_ms(reset_tokens, sizeof(reset_tokens), wait_ms);
	} else {
		/* Budgets refill continuously: one request's share of a minute;
		 * under --rpm, when the minute's oldest request leaves it. */
		fl_format_duration_ms(reset_requests, sizeof(reset_requests),
				      m->rpm_limit ? m->rpm_reset_ms : 60000 / REQUEST_LIMIT);
		fl_format_duration_ms(reset_tokens, sizeof(reset_tokens), tokens * 60000 / TOKEN_LIMIT);
	}
	evbuffer_add_printf(out,
			    "x-request-id: %s\r\n"
			    "openai-version: 2020-10-01\r\n"
			    "openai-processing-ms: %ld\r\n"
			    "x-ratelimit-limit-requests: %d\r\n"
			    "x-ratelimit-limit-tokens: %d\r\n"
			    "x-ratelimit-remaining-requests: %d\r\n"
			    "x-ratelimit-remaining-tokens: %llu\r\n"
			    "x-ratelimit-reset-requests: %s\r\n"
			    "x-ratelimit-reset-tokens: %s\r\n",
			    m->request_id, fl_elapsed_ms(&m->started), limit, TOKEN_LIMIT,
			    m->limited ? 0 : m->rpm_limit ? (int)m->rpm_left : REQUEST_LIMIT - 1,
			    m->limited ? 0ULL : (unsigned long long)(TOKEN_LIMIT - tokens),
			    reset_requests, reset_tokens);
}

const struct fl_api fl_openai = {
	.parse        = openai_parse,
	.message      = openai_message,
	.stream_open  = openai_stream_open,
	.stream_token = openai_stream_token,
	.stream_close = openai_stream_close,
	.models       = openai_models,
	.error        = openai_error,
	.request_id   = openai_request_id,
	.answer_id    = openai_answer_id,
	.call_id_prefix = "call_",
	.headers      = openai_headers,
};
