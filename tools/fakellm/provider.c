/* SPDX-License-Identifier: MIT */
/*
 * Provider requests: routing, faults, the deterministic answer, and its
 * delivery, at once or paced by timers (slow fault, streamed tokens).
 * What differs between OpenAI, Anthropic and Gemini lives in their fl_api.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakellm.h"

#define ECHO_WORDS    6  /* words of the last user message repeated */
#define ECHO_WORD_MAX 32 /* bytes kept of each echoed word */
#define LENGTH_FAULT_WORDS 3

static const char *const answer_phrase[] = {
	"This", "is", "a", "deterministic", "answer", "from", "fakellm.",
};

const struct fl_error_kind *fl_error_kind(const struct fl_error_kind *table, int status)
{
	const struct fl_error_kind *k;
	int fallback = status < 500 ? 499 : 599;

	for (k = table; k->status != 599; k++)
		if (k->status == status)
			return k;
	for (k = table; k->status != fallback; k++)
		;
	return k;
}

/* ---- reading requests ---------------------------------------------------- */

bool fl_error_printf(struct fl_error *err, const char *fmt, ...)
{
	va_list ap;

	err->status = 400;
	err->message = NULL;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return false;
}

const char *fl_error_message(const struct fl_error *err, const char *usual)
{
	if (err->message)
		return err->message;
	return err->text[0] ? err->text : usual;
}

bool fl_one_of(const char *s, const char *const *names)
{
	for (; s && *names; names++)
		if (strcmp(s, *names) == 0)
			return true;
	return false;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Finds the next whitespace-separated word of s from *pos. */
static bool next_word(const char *s, size_t len, size_t *pos, const char **word, size_t *wlen)
{
	size_t i = *pos, start;

	while (i < len && is_space(s[i]))
		i++;
	if (i == len)
		return false;
	start = i;
	while (i < len && !is_space(s[i]))
		i++;
	*word = s + start;
	*wlen = i - start;
	*pos = i;
	return true;
}

/* Parts are Gemini's {"text"} and the others' {"type": "text", "text"}. */
void fl_each_text(json_t *content, void (*fn)(const char *s, size_t len, void *arg), void *arg)
{
	json_t *part;
	size_t i;

	if (json_is_string(content)) {
		fn(json_string_value(content), json_string_length(content), arg);
		return;
	}
	json_array_foreach(content, i, part) {
		json_t *text = json_object_get(part, "text");

		if (json_is_string(text))
			fn(json_string_value(text), json_string_length(text), arg);
	}
}

struct search {
	const char *word;
	bool found;
};

static void search_text(const char *s, size_t len, void *arg)
{
	struct search *search = arg;

	search->found = search->found || memmem(s, len, search->word, strlen(search->word));
}

bool fl_text_contains(json_t *content, const char *word)
{
	struct search search = { .word = word };

	fl_each_text(content, search_text, &search);
	return search.found;
}

json_t *fl_user_content(json_t *turns, const char *key)
{
	size_t i = json_array_size(turns);

	while (i--) {
		json_t *turn = json_array_get(turns, i);
		json_t *role = json_object_get(turn, "role");

		/* Gemini's role is optional, and then "user". */
		if (!role || (json_is_string(role) && strcmp(json_string_value(role), "user") == 0))
			return json_object_get(turn, key);
	}
	return NULL;
}

/* ---- the answer ---------------------------------------------------------- */

static void count_words(const char *s, size_t len, void *arg)
{
	unsigned *count = arg;
	size_t pos = 0, wlen;
	const char *word;

	while (next_word(s, len, &pos, &word, &wlen))
		(*count)++;
}

struct word_sink {
	char *text;
	size_t len;
	unsigned words;
	unsigned max;
	unsigned echo_end;           /* echoing stops at this many words */
};

static void sink_word(struct word_sink *sink, const char *word, size_t len)
{
	if (sink->words == sink->max)
		return;
	if (sink->words)
		sink->text[sink->len++] = ' ';
	memcpy(sink->text + sink->len, word, len);
	sink->len += len;
	sink->words++;
}

static void echo_words(const char *s, size_t len, void *arg)
{
	struct word_sink *sink = arg;
	size_t pos = 0, wlen;
	const char *word;

	while (sink->words < sink->echo_end && next_word(s, len, &pos, &word, &wlen)) {
		/* Cut long words on a UTF-8 character boundary. */
		if (wlen > ECHO_WORD_MAX) {
			wlen = ECHO_WORD_MAX;
			while (wlen && ((unsigned char)word[wlen] & 0xC0) == 0x80)
				wlen--;
		}
		sink_word(sink, word, wlen);
	}
}

/* Repeats the first words of the echo: a content's texts, or an object's
 * JSON text. */
static void sink_echo(struct word_sink *sink, json_t *echo)
{
	char *text;

	sink->echo_end = sink->words + ECHO_WORDS;
	if (!json_is_object(echo)) {
		fl_each_text(echo, echo_words, sink);
		return;
	}
	text = json_dumps(echo, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text)
		echo_words(text, strlen(text), sink);
	free(text);
}

/* Replaces the words by fmt with them as one JSON string (%S). Spaces stay
 * where they were, so the words still stream one by one. */
static bool sink_wrap(struct word_sink *sink, const char *fmt)
{
	struct fl_jw w = { 0 };

	fl_jw_format(&w, fmt, sink->text, sink->len);
	free(sink->text);
	sink->text = w.buf;
	sink->len = w.len;
	return !w.failed;
}

/* The answer is "You said: <first words of the last user message>" (or
 * "Tool said: <first words of the tool's result>") then a fixed phrase,
 * repeated up to the length asked; a word is a token. A tool call takes the
 * first words of the user's message as its argument. Answer faults (empty,
 * length, filter, not_json) change what is said. */
static bool answer_compose(struct fl_answer *a, const struct fl_prompt *p,
			   enum fl_fault_mode fault, unsigned words)
{
	bool silent = fault == FL_FAULT_EMPTY || fault == FL_FAULT_FILTER;
	bool call = p->tool && !silent && fault != FL_FAULT_LENGTH;
	struct word_sink sink = { 0 };
	json_t *turn;
	size_t i;

	if (silent) {
		words = 0;
		a->finish = fault == FL_FAULT_FILTER ? FL_FINISH_FILTER : FL_FINISH_STOP;
	} else if (call) {
		words = ECHO_WORDS;
		a->finish = FL_FINISH_TOOL;
		a->tool = p->tool;
	} else if (fault == FL_FAULT_LENGTH) {
		words = LENGTH_FAULT_WORDS;
		a->finish = FL_FINISH_LENGTH;
	} else if (p->max_tokens && p->max_tokens < words) {
		words = p->max_tokens;
		a->finish = FL_FINISH_LENGTH;
	}
	if (words > FL_MAX_WORDS)
		words = FL_MAX_WORDS;
	sink.max = words;
	sink.text = malloc((size_t)words * (ECHO_WORD_MAX + 1) + 1);
	if (!sink.text)
		return false;

	fl_each_text(p->system, count_words, &a->prompt_tokens);
	json_array_foreach(p->turns, i, turn)
		fl_each_text(json_object_get(turn, p->content_key), count_words, &a->prompt_tokens);
	if (a->prompt_tokens == 0)
		a->prompt_tokens = 1;

	if (p->echo && !call) {
		sink_word(&sink, p->tool_result ? "Tool" : "You", p->tool_result ? 4 : 3);
		sink_word(&sink, "said:", 5);
	}
	if (p->echo)
		sink_echo(&sink, p->echo);
	for (i = 0; !call && sink.words < sink.max;
	     i = (i + 1) % (sizeof(answer_phrase) / sizeof(answer_phrase[0])))
		sink_word(&sink, answer_phrase[i], strlen(answer_phrase[i]));
	sink.text[sink.len] = '\0';

	/* The call's arguments stream in pieces cut at spaces: the one after
	 * the colon makes at least two. */
	if (call && !sink_wrap(&sink, "{\"text\": %S}"))
		goto fail;
	if (!call && p->json && fault != FL_FAULT_NOT_JSON && sink.words &&
	    !sink_wrap(&sink, "{\"answer\":%S}"))
		goto fail;
	/* A token is what a stream sends at once: a piece between spaces. */
	a->words = sink.len ? 1 : 0;
	for (i = 0; i < sink.len; i++)
		a->words += sink.text[i] == ' ';

	a->model = p->model;
	a->text = sink.text;
	a->text_len = sink.len;
	a->stream = p->stream;
	a->include_usage = p->include_usage;
	a->created = time(NULL);
	return true;
fail:
	free(sink.text);
	return false;
}

/* ---- delivery ------------------------------------------------------------ */

void fl_reply_clear(struct fl_reply *r)
{
	json_decref(r->request);
	free(r->answer.text);
	memset(r, 0, sizeof(*r));
}

static void reply_step(struct fl_conn *c);

static void reply_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reply_step(arg);
}

/* Continues the reply in ms; false if no timer could be had. */
static bool reply_defer(struct fl_conn *c, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (!c->timer)
		c->timer = evtimer_new(c->srv->base, reply_timer_cb, c);
	if (!c->timer || evtimer_add(c->timer, &tv) != 0)
		return false;
	c->state = FL_CONN_RESPONDING;
	return true;
}

static void reply_finish(struct fl_conn *c)
{
	fl_reply_clear(&c->reply);
	if (c->state == FL_CONN_RESPONDING)
		fl_conn_reply_done(c); /* may free c */
}

/* Streams the next word; returns false once the answer is all sent. */
static bool stream_next_token(struct fl_conn *c)
{
	struct fl_reply *r = &c->reply;
	const char *text = r->answer.text;
	size_t start = r->cursor, end = r->cursor;

	if (start >= r->answer.text_len)
		return false;
	while (end < r->answer.text_len && text[end] != ' ')
		end++;
	/* Tokens after the first carry their leading space, as real ones do. */
	if (start > 0)
		start--;
	r->meta.api->stream_token(c, &r->answer, text + start, end - start);
	r->cursor = end + 1;
	return r->cursor < r->answer.text_len;
}

static void reply_send_body(struct fl_conn *c)
{
	struct fl_reply *r = &c->reply;
	struct fl_jw *w = &c->srv->body;

	fl_jw_reset(w);
	switch (r->body) {
	case FL_BODY_ANSWER:
		r->meta.api->message(w, &r->answer);
		break;
	case FL_BODY_ERROR:
		r->meta.api->error(w, &r->error, &r->meta);
		break;
	case FL_BODY_MODELS:
		r->meta.api->models(w);
		break;
	}
	fl_http_body(c, r->status, &r->meta);
}

/* Fault cut: the stream stops in the middle, without its end marker, with
 * a reset or (clean) a properly ended HTTP body. */
static void stream_cut(struct fl_conn *c)
{
	if (!c->reply.cut_clean) {
		fl_conn_reset(c); /* frees c */
		return;
	}
	fl_http_stream_end(c);
	reply_finish(c);
}

/* Sends what is due now: the whole response, or the stream up to the next
 * paced token. */
static void reply_step(struct fl_conn *c)
{
	struct fl_reply *r = &c->reply;

	if (r->body != FL_BODY_ANSWER || !r->answer.stream) {
		reply_send_body(c);
		reply_finish(c);
		return;
	}
	if (!r->started) {
		r->started = true;
		fl_http_head(c, 200, "text/event-stream; charset=utf-8", -1, &r->meta);
		if (r->meta.api->stream_open)
			r->meta.api->stream_open(c, &r->answer);
	}
	while (stream_next_token(c)) {
		if (r->cut_after && --r->cut_after == 0) {
			stream_cut(c);
			return;
		}
		if (r->token_ms && reply_defer(c, r->token_ms))
			return;
	}
	r->meta.api->stream_close(c, &r->answer);
	fl_http_stream_end(c);
	reply_finish(c);
}

static void reply_start(struct fl_conn *c, unsigned delay_ms)
{
	if (delay_ms && reply_defer(c, delay_ms))
		return;
	reply_step(c);
}

/* ---- requests ------------------------------------------------------------- */

static enum fl_route route_of(const struct fl_server *srv, const struct fl_request *req,
			      struct fl_span *model)
{
	enum fl_route route;

	for (route = 0; route < FL_ROUTE_OTHER; route++)
		if (fl_request_path_is(req, srv->path_prefix, fl_route_path(route), model))
			return route;
	return FL_ROUTE_OTHER;
}

static bool path_under(const struct fl_server *srv, const struct fl_request *req, const char *dir)
{
	size_t plen = strlen(srv->path_prefix), dlen = strlen(dir);

	return fl_request_path_len(req) >= plen + dlen && memcmp(req->url, srv->path_prefix, plen) == 0 &&
	       memcmp(req->url + plen, dir, dlen) == 0;
}

/* Errors take the shape of the path's family; clients reaching shared or
 * unknown paths say who they are with their key or version headers. */
static const struct fl_api *api_of(const struct fl_server *srv, const struct fl_request *req,
				   enum fl_route route)
{
	switch (route) {
	case FL_ROUTE_CHAT:
		return &fl_openai;
	case FL_ROUTE_MESSAGES:
		return &fl_anthropic;
	case FL_ROUTE_GEMINI_GENERATE:
	case FL_ROUTE_GEMINI_STREAM:
	case FL_ROUTE_GEMINI_MODELS:
		return &fl_gemini;
	default:
		break;
	}
	if (path_under(srv, req, "/v1/messages"))
		return &fl_anthropic;
	if (path_under(srv, req, "/v1beta/") || req->x_goog_api_key.len)
		return &fl_gemini;
	return req->anthropic_version.len ? &fl_anthropic : &fl_openai;
}

static void reply_begin(struct fl_conn *c, const struct fl_api *api)
{
	struct fl_reply *r = &c->reply;

	fl_reply_clear(r);
	r->status = 200;
	r->meta.api = api;
	r->meta.retry_after = -1;
	if (api->request_id)
		api->request_id(r->meta.request_id, sizeof(r->meta.request_id));
	gettimeofday(&r->meta.started, NULL);
}

static void reply_error(struct fl_conn *c, const struct fl_error *err)
{
	struct fl_reply *r = &c->reply;

	r->status = err->status;
	r->body = FL_BODY_ERROR;
	r->error = *err;
}

/* An error with the family's usual words for the status. */
static void reply_status(struct fl_conn *c, int status)
{
	struct fl_error err = { .status = status };

	reply_error(c, &err);
}

/* 404 and 405 name the request, as OpenAI's do. */
static void reply_bad_route(struct fl_conn *c, int status)
{
	size_t len = fl_request_path_len(&c->req);
	struct fl_error err = { .status = status };

	if (c->reply.meta.api == &fl_openai)
		snprintf(err.text, sizeof(err.text), "%s (%s %.*s)",
			 status == 404 ? "Invalid URL" : "Invalid method for URL",
			 http_method_str(c->parser.method), (int)(len > 100 ? 100 : len), c->req.url);
	reply_error(c, &err);
}

/* model: the model the path names (Gemini), else empty. */
static void reply_completion(struct fl_conn *c, enum fl_route route, const struct fl_span *model,
			     enum fl_fault_mode fault)
{
	struct fl_reply *r = &c->reply;
	const struct fl_api *api = r->meta.api;
	struct fl_prompt prompt = { .content_key = "content" };
	struct fl_error err = { 0 };

	if (model->len) {
		snprintf(r->path_model, sizeof(r->path_model), "%.*s", (int)model->len, model->text);
		prompt.model = r->path_model;
	}
	prompt.stream = route == FL_ROUTE_GEMINI_STREAM;
	r->request = json_loadb(c->req.body, c->req.body_len, 0, NULL);
	if (!api->parse(&c->req, r->request, &prompt, &err)) {
		reply_error(c, &err);
		return;
	}
	fl_stats_model(&c->srv->stats, prompt.model);
	if (!answer_compose(&r->answer, &prompt, fault, c->srv->words)) {
		reply_status(c, 500);
		return;
	}
	api->answer_id(r->answer.id, sizeof(r->answer.id));
	if (r->answer.tool && api->call_id_prefix)
		fl_random_id(r->answer.call_id, sizeof(r->answer.call_id), api->call_id_prefix, 24,
			     fl_alnum);
	r->meta.tokens = (uint64_t)r->answer.prompt_tokens + r->answer.words;
	r->answer.cached_tokens = r->answer.prompt_tokens * c->srv->cached_percent / 100;
	c->srv->stats.prompt_tokens += r->answer.prompt_tokens;
	c->srv->stats.cached_tokens += r->answer.cached_tokens;
	c->srv->stats.completion_tokens += r->answer.words;
	r->body = FL_BODY_ANSWER;
}

void fl_provider_handle(struct fl_conn *c)
{
	struct fl_server *srv = c->srv;
	struct fl_reply *r = &c->reply;
	struct fl_span model = { 0 };
	enum fl_route route = route_of(srv, &c->req, &model);
	enum http_method method = c->parser.method;
	unsigned delay_ms = 0;
	struct fl_fault fault;

	fl_stats_request(&srv->stats, route, &c->req);
	reply_begin(c, api_of(srv, &c->req, route));
	if (!fl_fault_take(&srv->fault, FL_FAULT_ON_REQUEST, &fault))
		fault.mode = FL_FAULT_OK;

	switch (fault.mode) {
	case FL_FAULT_HANG:
		srv->stats.hangs++;
		fl_reply_clear(r);
		c->state = FL_CONN_HANGING;
		return;
	case FL_FAULT_STATUS:
		r->meta.limited = fault.status == 429;
		r->meta.retry_after = fault.retry_after;
		reply_status(c, fault.status);
		reply_start(c, 0);
		return;
	case FL_FAULT_SLOW:
		delay_ms = fault.ttft_ms;
		r->token_ms = fault.token_ms;
		break;
	case FL_FAULT_CUT:
		r->token_ms = fault.token_ms; /* paced, the tokens before the cut leave first */
		r->cut_after = fault.cut_after;
		r->cut_clean = fault.cut_clean;
		break;
	default:
		break;
	}

	switch (route) {
	case FL_ROUTE_CHAT:
	case FL_ROUTE_MESSAGES:
	case FL_ROUTE_GEMINI_GENERATE:
	case FL_ROUTE_GEMINI_STREAM:
		if (method == HTTP_POST && srv->rpm.limit && !fl_rpm_admit(&srv->rpm, &r->meta))
			reply_status(c, 429);
		else if (method == HTTP_POST)
			reply_completion(c, route, &model, fault.mode);
		else
			reply_bad_route(c, 405);
		break;
	case FL_ROUTE_MODELS:
	case FL_ROUTE_GEMINI_MODELS:
		if (method == HTTP_GET)
			r->body = FL_BODY_MODELS;
		else
			reply_bad_route(c, 405);
		break;
	default:
		reply_bad_route(c, 404);
		break;
	}
	/* Without streaming, slow tokens make the whole answer late. */
	if (!r->answer.stream)
		delay_ms += r->token_ms * r->answer.words;
	reply_start(c, delay_ms);
}

void fl_provider_reject(struct fl_conn *c, int status)
{
	enum fl_route route = route_of(c->srv, &c->req, NULL);

	fl_stats_request(&c->srv->stats, route, &c->req);
	reply_begin(c, api_of(c->srv, &c->req, route));
	reply_status(c, status);
	reply_start(c, 0);
}
