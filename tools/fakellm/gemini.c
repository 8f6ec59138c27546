/* SPDX-License-Identifier: MIT */
/*
 * Gemini generateContent and streamGenerateContent (server-sent events):
 * request checks, GenerateContentResponse objects and chunks, the model
 * list, Google's error shape, headers.
 *
 * Requests use the camelCase field names of the API reference; Google's
 * parser refuses names it does not know, and so does fakellm, so that a
 * translation that put a field in the wrong place fails loudly.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fakellm.h"

static const struct fl_error_kind gemini_errors[] = {
	{ 400, "INVALID_ARGUMENT", NULL, "Request contains an invalid argument." },
	{ 401, "UNAUTHENTICATED", NULL,
	  "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
	  "cookie or other valid authentication credential." },
	{ 403, "PERMISSION_DENIED", NULL, "Method doesn't allow unregistered callers (callers "
	  "without established identity). Please use API Key or other form of API consumer "
	  "identity to call this API." },
	{ 404, "NOT_FOUND", NULL, "Requested entity was not found." },
	{ 409, "ABORTED", NULL, "The operation was aborted." },
	{ 429, "RESOURCE_EXHAUSTED", NULL, "Resource has been exhausted (e.g. check quota)." },
	{ 499, "FAILED_PRECONDITION", NULL, "Precondition check failed." },
	{ 500, "INTERNAL", NULL, "An internal error has occurred. Please retry or report in "
	  "https://developers.generativeai.google/guide/troubleshooting" },
	{ 503, "UNAVAILABLE", NULL, "The model is overloaded. Please try again later." },
	{ 504, "DEADLINE_EXCEEDED", NULL, "Deadline expired before operation could complete." },
	{ 599, "INTERNAL", NULL, "An internal error has occurred. Please retry or report in "
	  "https://developers.generativeai.google/guide/troubleshooting" },
};

/* The fields fakellm knows, per object. */
static const char *const request_fields[] = {
	"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
	"safetySettings", "cachedContent", "model", "labels", NULL,
};
static const char *const content_fields[] = { "role", "parts", NULL };
static const char *const part_fields[] = {
	"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
	"codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", NULL,
};
static const char *const generation_fields[] = {
	"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
	"responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
	"seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
	"enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "mediaResolution", NULL,
};

static bool refuse(struct fl_error *err, const char *message)
{
	err->status = 400;
	err->message = message;
	return false;
}

/* Refuses an object (at `where`) with a member not in known. */
static bool known_fields(json_t *object, const char *const *known, const char *where,
			 struct fl_error *err)
{
	const char *key;
	json_t *value;

	json_object_foreach(object, key, value)
		if (!fl_one_of(key, known)) {
			fl_error_printf(err, "Invalid JSON payload received. Unknown name \"%.64s\" at "
					"'%s': Cannot find field.", key, where);
			return false;
		}
	return true;
}

static bool is_role(json_t *content, const char *role)
{
	const char *r = json_string_value(json_object_get(content, "role"));

	/* Without a role, a turn is the user's. */
	return strcmp(r ? r : "user", role) == 0;
}

/* Is name the name of a functionCall in a model turn before contents[end]? */
static bool called_before(json_t *contents, size_t end, const char *name)
{
	json_t *content, *part;
	size_t i, j;

	json_array_foreach(contents, i, content) {
		if (i == end)
			break;
		if (!is_role(content, "model"))
			continue;
		json_array_foreach(json_object_get(content, "parts"), j, part) {
			const char *called = json_string_value(
				json_object_get(json_object_get(part, "functionCall"), "name"));

			if (called && strcmp(called, name) == 0)
				return true;
		}
	}
	return false;
}

static bool check_part(json_t *contents, size_t i, size_t j, struct fl_error *err)
{
	json_t *part = json_array_get(json_object_get(json_array_get(contents, i), "parts"), j);
	json_t *call = json_object_get(part, "functionCall");
	json_t *answer = json_object_get(part, "functionResponse");
	json_t *data = json_object_get(part, "inlineData");
	const char *name = json_string_value(json_object_get(answer, "name"));
	char where[64];

	snprintf(where, sizeof(where), "contents[%zu].parts[%zu]", i, j);
	if (!json_is_object(part) || json_object_size(part) == 0)
		return fl_error_printf(err, "* GenerateContentRequest.%s: a part must hold data "
				       "(text, inlineData, functionCall, functionResponse...).", where);
	if (!known_fields(part, part_fields, where, err))
		return false;
	if (json_object_get(part, "text") && !json_is_string(json_object_get(part, "text")))
		return fl_error_printf(err, "Invalid value at '%s.text' (TYPE_STRING)", where);
	if (data && (!json_is_string(json_object_get(data, "mimeType")) ||
		     !json_is_string(json_object_get(data, "data"))))
		return fl_error_printf(err, "* GenerateContentRequest.%s.inline_data: mimeType and "
				       "data (base64) are required.", where);
	if (call && (!json_is_string(json_object_get(call, "name")) ||
		     (json_object_get(call, "args") && !json_is_object(json_object_get(call, "args")))))
		return fl_error_printf(err, "* GenerateContentRequest.%s.function_call: name must be a "
				       "string and args an object.", where);
	if (!answer)
		return true;
	if (!name || !json_is_object(json_object_get(answer, "response")))
		return fl_error_printf(err, "* GenerateContentRequest.%s.function_response: name must "
				       "be a string and response an object.", where);
	if (!called_before(contents, i, name))
		return fl_error_printf(err, "* GenerateContentRequest.%s.function_response.name: no "
				       "functionCall named '%.64s' in an earlier model turn.", where, name);
	return true;
}

static bool check_contents(json_t *contents, struct fl_error *err)
{
	json_t *content, *parts;
	char where[32];
	size_t i, j;

	if (json_array_size(contents) == 0)
		return refuse(err, "* GenerateContentRequest.contents: contents is not specified");
	json_array_foreach(contents, i, content) {
		snprintf(where, sizeof(where), "contents[%zu]", i);
		if (!known_fields(content, content_fields, where, err))
			return false;
		if (!is_role(content, "user") && !is_role(content, "model"))
			return fl_error_printf(err, "* GenerateContentRequest.contents[%zu].role: Please "
					       "use a valid role: user, model.", i);
		parts = json_object_get(content, "parts");
		if (json_array_size(parts) == 0)
			return fl_error_printf(err, "* GenerateContentRequest.contents[%zu].parts: "
					       "contents.parts must not be empty.", i);
		for (j = 0; j < json_array_size(parts); j++)
			if (!check_part(contents, i, j, err))
				return false;
	}
	return true;
}

/* Which function the answer calls, if any: the first one allowed, else the
 * first declared, unless the mode is NONE. */
static bool read_tools(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	static const char *const modes[] = { "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED", NULL };
	json_t *config = json_object_get(json_object_get(body, "toolConfig"), "functionCallingConfig");
	const char *mode = json_string_value(json_object_get(config, "mode"));
	json_t *tool, *declaration;
	size_t i, j;

	json_array_foreach(json_object_get(body, "tools"), i, tool)
		json_array_foreach(json_object_get(tool, "functionDeclarations"), j, declaration) {
			json_t *name = json_object_get(declaration, "name");

			if (!json_is_string(name) || json_string_length(name) == 0)
				return fl_error_printf(err, "* GenerateContentRequest.tools[%zu]."
						       "function_declarations[%zu].name: Name cannot be "
						       "empty.", i, j);
			if (!p->tool)
				p->tool = json_string_value(name);
		}
	if (json_object_get(config, "mode") && !fl_one_of(mode, modes))
		return refuse(err, "Invalid value at 'tool_config.function_calling_config.mode' "
			      "(type.googleapis.com/google.ai.generativelanguage.v1beta."
			      "FunctionCallingConfig.Mode)");
	if (mode && strcmp(mode, "NONE") == 0)
		p->tool = NULL;
	else if (p->tool && json_string_value(json_array_get(json_object_get(config,
							"allowedFunctionNames"), 0)))
		p->tool = json_string_value(json_array_get(json_object_get(config,
								"allowedFunctionNames"), 0));
	return true;
}

static bool read_generation_config(json_t *body, struct fl_prompt *p, struct fl_error *err)
{
	json_t *config = json_object_get(body, "generationConfig");
	json_t *max = json_object_get(config, "maxOutputTokens");
	const char *mime = json_string_value(json_object_get(config, "responseMimeType"));

	if (!known_fields(config, generation_fields, "generation_config", err))
		return false;
	if (max && (!json_is_integer(max) || json_integer_value(max) < 0))
		return refuse(err, "* GenerateContentRequest.generation_config.max_output_tokens: "
			      "max_output_tokens must be a positive integer.");
	/* 0 is proto3's default: not given. */
	p->max_tokens = json_integer_value(max) > UINT_MAX ? UINT_MAX
							   : (unsigned)json_integer_value(max);
	p->json = mime && strcmp(mime, "application/json") == 0;
	return true;
}

static bool gemini_parse(const struct fl_request *req, json_t *body, struct fl_prompt *p,
			 struct fl_error *err)
{
	json_t *system, *last, *part;
	struct fl_span alt;
	size_t i;

	/* Without alt=sse, Gemini streams one JSON array: not done here. */
	if (p->stream && !(fl_request_query(req, "alt", &alt) && alt.len == 3 &&
			   memcmp(alt.text, "sse", 3) == 0))
		return refuse(err, "fakellm streams only as server-sent events: add alt=sse to the "
			      "URL (the JSON array stream is not implemented).");
	if (!body)
		return refuse(err, "Invalid JSON payload received. Unexpected token.");
	if (!json_is_object(body))
		return refuse(err, "Invalid JSON payload received. Expected an object.");
	if (!known_fields(body, request_fields, "", err))
		return false;
	p->turns = json_object_get(body, "contents");
	p->content_key = "parts";
	if (!check_contents(p->turns, err))
		return false;
	system = json_object_get(body, "systemInstruction");
	if (system && !json_is_array(json_object_get(system, "parts")))
		return refuse(err, "* GenerateContentRequest.system_instruction: parts are required.");
	p->system = json_object_get(system, "parts");
	if (!read_tools(body, p, err) || !read_generation_config(body, p, err))
		return false;

	/* A function's response is repeated (its JSON text); a user's message
	 * is, or it is the argument of the call the tools ask for. */
	last = json_array_get(p->turns, json_array_size(p->turns) - 1);
	json_array_foreach(json_object_get(last, "parts"), i, part)
		if (json_object_get(part, "functionResponse")) {
			p->tool_result = true;
			p->echo = json_object_get(json_object_get(part, "functionResponse"), "response");
			break;
		}
	if (!p->tool_result)
		p->echo = fl_user_content(p->turns, "parts");
	if (p->tool_result || !is_role(last, "user"))
		p->tool = NULL;
	return true;
}

static const char *finish_reason(const struct fl_answer *a)
{
	static const char *const reasons[] = {
		[FL_FINISH_STOP] = "STOP",
		[FL_FINISH_LENGTH] = "MAX_TOKENS",
		[FL_FINISH_TOOL] = "STOP", /* Gemini has no reason of its own for calls */
		[FL_FINISH_FILTER] = "SAFETY",
	};

	return reasons[a->finish];
}

/* A GenerateContentResponse with one candidate: text (a whole answer or one
 * token), or the call. The final one has the finish reason and the whole
 * usage; the chunks before it count only the prompt, as Gemini's do. A
 * filtered candidate has no content. */
static void response(struct fl_jw *w, const struct fl_answer *a, const char *text, size_t len,
		     bool final)
{
	fl_jw_format(w, "{\"candidates\":[{");
	if (a->tool)
		fl_jw_format(w, "\"content\":{\"parts\":[{\"functionCall\":{\"name\":%s,\"args\":%R}}],"
			     "\"role\":\"model\"},", a->tool, a->text, a->text_len);
	else if (!final || a->finish != FL_FINISH_FILTER)
		fl_jw_format(w, "\"content\":{\"parts\":[{\"text\":%S}],\"role\":\"model\"},", text, len);
	if (final)
		fl_jw_format(w, "\"finishReason\":%s,", finish_reason(a));
	if (final && a->finish == FL_FINISH_FILTER)
		fl_jw_format(w, "\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\","
			     "\"probability\":\"HIGH\",\"blocked\":true}],");
	fl_jw_format(w, "\"index\":0}]");
	if (final)
		fl_jw_format(w, ",\"usageMetadata\":{\"promptTokenCount\":%u,\"candidatesTokenCount\":%u,"
			     "\"totalTokenCount\":%u", a->prompt_tokens, a->words,
			     a->prompt_tokens + a->words);
	else
		fl_jw_format(w, ",\"usageMetadata\":{\"promptTokenCount\":%u,\"totalTokenCount\":%u",
			     a->prompt_tokens, a->prompt_tokens);
	if (a->cached_tokens)
		fl_jw_format(w, ",\"cachedContentTokenCount\":%u", a->cached_tokens);
	fl_jw_format(w, "}");
	fl_jw_format(w, ",\"modelVersion\":%s,\"responseId\":%s}", a->model, a->id);
}

static void gemini_message(struct fl_jw *w, const struct fl_answer *a)
{
	response(w, a, a->text, a->text_len, true);
}

static void gemini_stream_token(struct fl_conn *c, const struct fl_answer *a,
				const char *token, size_t len)
{
	/* A call is sent whole, in the last chunk. */
	if (a->tool)
		return;
	fl_jw_reset(&c->srv->body);
	response(&c->srv->body, a, token, len, false);
	fl_http_sse(c, NULL);
}

/* The last chunk: the finish reason and usage, with the call or an empty
 * text; no end marker follows, the end of the body ends the stream. */
static void gemini_stream_close(struct fl_conn *c, const struct fl_answer *a)
{
	fl_jw_reset(&c->srv->body);
	response(&c->srv->body, a, "", 0, true);
	fl_http_sse(c, NULL);
}

static void gemini_models(struct fl_jw *w)
{
	static const struct {
		const char *name, *version, *display_name;
		unsigned output_limit;
	} models[] = {
		{ "gemini-2.5-flash", "001", "Gemini 2.5 Flash", 65536 },
		{ "gemini-2.5-pro", "2.5", "Gemini 2.5 Pro", 65536 },
		{ "gemini-2.0-flash", "2.0", "Gemini 2.0 Flash", 8192 },
	};
	size_t i;

	fl_jw_format(w, "{\"models\":[");
	for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		fl_jw_format(w, i ? "," : "");
		fl_jw_format(w, "{\"name\":\"models/%R\",\"version\":%s,\"displayName\":%s,"
			     "\"description\":%s,\"inputTokenLimit\":1048576,\"outputTokenLimit\":%u,"
			     "\"supportedGenerationMethods\":[\"generateContent\",\"countTokens\","
			     "\"createCachedContent\",\"batchGenerateContent\"],\"temperature\":1,"
			     "\"topP\":0.95,\"topK\":64,\"maxTemperature\":2}",
			     models[i].name, strlen(models[i].name), models[i].version,
			     models[i].display_name, models[i].display_name, models[i].output_limit);
	}
	fl_jw_format(w, "]}");
}

/* google.rpc.Status; a 429 says when to retry in its details, as Google's do. */
static void gemini_error(struct fl_jw *w, const struct fl_error *err, const struct fl_meta *meta)
{
	const struct fl_error_kind *kind = fl_error_kind(gemini_errors, err->status);

	fl_jw_format(w, "{\"error\":{\"code\":%u,\"message\":%s,\"status\":%s", (unsigned)err->status,
		     fl_error_message(err, kind->message), kind->type);
	if (err->status == 429 && meta->retry_after >= 0)
		fl_jw_format(w, ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
			     "\"retryDelay\":\"%us\"}]", (unsigned)meta->retry_after);
	fl_jw_format(w, "}}");
}

static void gemini_answer_id(char *out, size_t size)
{
	fl_random_id(out, size, "", 23, fl_alnum);
}

static void gemini_headers(struct evbuffer *out, const struct fl_meta *m)
{
	evbuffer_add_printf(out, "server-timing: gfet4t7; dur=%ld\r\n", fl_elapsed_ms(&m->started));
}

const struct fl_api fl_gemini = {
	.parse        = gemini_parse,
	.message      = gemini_message,
	.stream_token = gemini_stream_token,
	.stream_close = gemini_stream_close,
	.models       = gemini_models,
	.error        = gemini_error,
	.answer_id    = gemini_answer_id,
	.headers      = gemini_headers,
};
