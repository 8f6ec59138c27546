/* SPDX-License-Identifier: MIT */
/*
 * Provider requests: routing, faults, the deterministic answer, and its
 * delivery, at once or paced by timers (slow fault, streamed tokens).
 * What differs between OpenAI and Anthropic lives in their fl_api.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakellm.h"

#define ECHO_WORDS    6  /* words of the last user message repeated */
#define ECHO_WORD_MAX 32 /* bytes kept of each echoed word */

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

/* ---- the answer ---------------------------------------------------------- */

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

/* Calls fn on each text of a content: a string, or an array of parts with
 * {"type": "text", "text": ...} (both APIs accept both forms). */
static void each_text(json_t *content, void (*fn)(const char *s, size_t len, void *arg), void *arg)
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

	while (sink->words < 2 + ECHO_WORDS && next_word(s, len, &pos, &word, &wlen)) {
		/* Cut long words on a UTF-8 character boundary. */
		if (wlen > ECHO_WORD_MAX) {
			wlen = ECHO_WORD_MAX;
			while (wlen && ((unsigned char)word[wlen] & 0xC0) == 0x80)
				wlen--;
		}
		sink_word(sink, word, wlen);
	}
}

static json_t *last_user_content(json_t *messages)
{
	size_t i = json_array_size(messages);

	while (i--) {
		json_t *m = json_array_get(messages, i);
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && strcmp(role, "user") == 0)
			return json_object_get(m, "content");
	}
	return NULL;
}

/* The answer is "You said: <first words of the last user message>" then a
 * fixed phrase, repeated up to the length asked; a word is a token. */
static bool answer_compose(struct fl_answer *a, const struct fl_prompt *p, unsigned words)
{
	struct word_sink sink = { 0 };
	json_t *m, *user;
	size_t i;

	if (p->max_tokens && p->max_tokens < words) {
		words = p->max_tokens;
		a->truncated = true;
	}
	if (words > FL_MAX_WORDS)
		words = FL_MAX_WORDS;
	sink.max = words;
	sink.text = malloc((size_t)words * (ECHO_WORD_MAX + 1) + 1);
	if (!sink.text)
		return false;

	each_text(p->system, count_words, &a->prompt_tokens);
	json_array_foreach(p->messages, i, m)
		each_text(json_object_get(m, "content"), count_words, &a->prompt_tokens);
	if (a->prompt_tokens == 0)
		a->prompt_tokens = 1;

	user = last_user_content(p->messages);
	if (user) {
		sink_word(&sink, "You", 3);
		sink_word(&sink, "said:", 5);
		each_text(user, echo_words, &sink);
	}
	for (i = 0; sink.words < sink.max; i = (i + 1) % (sizeof(answer_phrase) / sizeof(answer_phrase[0])))
		sink_word(&sink, answer_phrase[i], strlen(answer_phrase[i]));
	sink.text[sink.len] = '\0';

	a->model = p->model;
	a->text = sink.text;
	a->text_len = sink.len;
	a->words = sink.words;
	a->stream = p->stream;
	a->include_usage = p->include_usage;
	a->created = time(NULL);
	return true;
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

static enum fl_route route_of(const struct fl_server *srv, const struct fl_request *req)
{
	enum fl_route route;

	for (route = 0; route < FL_ROUTE_OTHER; route++)
		if (fl_request_path_is(req, srv->path_prefix, fl_route_path(route)))
			return route;
	return FL_ROUTE_OTHER;
}

/* Errors take the shape of the path's family; Anthropic clients reaching
 * shared or unknown paths say who they are with anthropic-version. */
static const struct fl_api *api_of(const struct fl_request *req, enum fl_route route)
{
	if (strncmp(req->url, "/v1/messages", strlen("/v1/messages")) == 0)
		return &fl_anthropic;
	if (route == FL_ROUTE_CHAT)
		return &fl_openai;
	return req->anthropic_version.len ? &fl_anthropic : &fl_openai;
}

static void reply_begin(struct fl_conn *c, const struct fl_api *api)
{
	struct fl_reply *r = &c->reply;

	fl_reply_clear(r);
	r->status = 200;
	r->meta.api = api;
	r->meta.retry_after = -1;
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
	struct fl_reply *r = &c->reply;
	size_t len = fl_request_path_len(&c->req);
	struct fl_error err = { .status = status };

	if (r->meta.api == &fl_openai) {
		snprintf(r->error_text, sizeof(r->error_text), "%s (%s %.*s)",
			 status == 404 ? "Invalid URL" : "Invalid method for URL",
			 http_method_str(c->parser.method), (int)(len > 100 ? 100 : len), c->req.url);
		err.message = r->error_text;
	}
	reply_error(c, &err);
}

static void reply_completion(struct fl_conn *c)
{
	struct fl_reply *r = &c->reply;
	struct fl_prompt prompt = { 0 };
	struct fl_error err = { 0 };

	r->request = json_loadb(c->req.body, c->req.body_len, 0, NULL);
	if (!r->meta.api->parse(r->request, &prompt, &err)) {
		reply_error(c, &err);
		return;
	}
	fl_stats_model(&c->srv->stats, prompt.model);
	if (!answer_compose(&r->answer, &prompt, c->srv->words)) {
		reply_status(c, 500);
		return;
	}
	r->meta.api->answer_id(r->answer.id, sizeof(r->answer.id));
	r->meta.tokens = (uint64_t)r->answer.prompt_tokens + r->answer.words;
	r->body = FL_BODY_ANSWER;
}

void fl_provider_handle(struct fl_conn *c)
{
	struct fl_server *srv = c->srv;
	struct fl_reply *r = &c->reply;
	enum fl_route route = route_of(srv, &c->req);
	bool post = c->parser.method == HTTP_POST;
	unsigned delay_ms = 0;
	struct fl_fault fault;

	fl_stats_request(&srv->stats, route, &c->req);
	reply_begin(c, api_of(&c->req, route));
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

	if (route == FL_ROUTE_CHAT || route == FL_ROUTE_MESSAGES) {
		if (post)
			reply_completion(c);
		else
			reply_bad_route(c, 405);
	} else if (route == FL_ROUTE_MODELS) {
		if (c->parser.method == HTTP_GET)
			r->body = FL_BODY_MODELS;
		else
			reply_bad_route(c, 405);
	} else {
		reply_bad_route(c, 404);
	}
	/* Without streaming, slow tokens make the whole answer late. */
	if (!r->answer.stream)
		delay_ms += r->token_ms * r->answer.words;
	reply_start(c, delay_ms);
}

void fl_provider_reject(struct fl_conn *c, int status)
{
	enum fl_route route = route_of(c->srv, &c->req);

	fl_stats_request(&c->srv->stats, route, &c->req);
	reply_begin(c, api_of(&c->req, route));
	reply_status(c, status);
	reply_start(c, 0);
}
