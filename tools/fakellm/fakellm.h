/* SPDX-License-Identifier: MIT */
/*
 * fakellm: a fake LLM provider (OpenAI Chat Completions, Anthropic Messages,
 * Gemini generateContent) with runtime fault injection, for detour's tests,
 * demo and benchmarks.
 *
 * One thread, one libevent loop. Ownership in short: the server owns the
 * listeners, the TLS context and every connection; a connection owns its
 * bufferevent, its parser state, its request body and its reply in progress.
 */
#ifndef FAKELLM_H
#define FAKELLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/ssl.h>

#define FL_MAX_LISTENERS    16
#define FL_MAX_HEADER_BYTES (64 * 1024)       /* request line + headers, else 431 */
#define FL_MAX_URL_BYTES    8192              /* else 414 */
#define FL_MAX_BODY_BYTES   (4 * 1024 * 1024) /* else 413 */
#define FL_HEADER_VALUE_MAX 256               /* longer captured values are cut */
#define FL_STATS_BODY_MAX   (64 * 1024)       /* last request body kept for /stats */
#define FL_MAX_WORDS        4096              /* longest answer, in words */
#define FL_DEFAULT_WORDS    16
#define FL_MAX_RPM          1000000           /* --rpm */
/* Unparsed input kept while a reply is in progress before reading stops. */
#define FL_INPUT_HIGH       (256 * 1024)
/* Pipelined requests wait while the client leaves this much unread. */
#define FL_OUTPUT_HIGH      (1024 * 1024)
#define FL_OUTPUT_LOW       (64 * 1024)
#define FL_LINGER_SECONDS   2 /* wait for the client's EOF after closing */

/* ---- faults (fault.c) ---------------------------------------------------- */

enum fl_fault_mode {
	FL_FAULT_OK,
	FL_FAULT_STATUS,   /* answer with an error status */
	FL_FAULT_HANG,     /* read the request, never answer */
	FL_FAULT_RESET,    /* RST as soon as a request's first bytes arrive */
	FL_FAULT_TLS_FAIL, /* abort TLS handshakes with a fatal alert */
	FL_FAULT_SLOW,     /* delay the first byte and each streamed token */
	FL_FAULT_CUT,      /* end a stream after some tokens, without its end marker */
	FL_FAULT_EMPTY,    /* a complete answer without text */
	FL_FAULT_LENGTH,   /* the answer stops after a few words, cut by the length limit */
	FL_FAULT_FILTER,   /* no text, stopped by the content filter */
	FL_FAULT_NOT_JSON, /* JSON mode asked, plain words answered */
	FL_FAULT_REFUSE,   /* listeners closed: connects refused, as if the process had died */
};

/* Where a fault is taken: per request, or per connection. */
#define FL_FAULT_ON_REQUEST ((1u << FL_FAULT_STATUS) | (1u << FL_FAULT_HANG) | \
			     (1u << FL_FAULT_SLOW) | (1u << FL_FAULT_CUT) | \
			     (1u << FL_FAULT_EMPTY) | (1u << FL_FAULT_LENGTH) | \
			     (1u << FL_FAULT_FILTER) | (1u << FL_FAULT_NOT_JSON))
#define FL_FAULT_ON_DATA    (1u << FL_FAULT_RESET)
#define FL_FAULT_ON_TLS     (1u << FL_FAULT_TLS_FAIL)

struct fl_fault {
	enum fl_fault_mode mode;
	int status;          /* FL_FAULT_STATUS */
	int retry_after;     /* seconds; < 0: no retry-after header */
	unsigned ttft_ms;    /* FL_FAULT_SLOW */
	unsigned token_ms;   /* FL_FAULT_SLOW */
	unsigned cut_after;  /* FL_FAULT_CUT: tokens sent before the cut */
	bool cut_clean;      /* FL_FAULT_CUT: end the HTTP body properly (else RST) */
	long remaining;      /* applications left; < 0: until replaced */
};

void fl_fault_clear(struct fl_fault *f);
/* Reads an admin request; on error returns false with a reason in *why. */
bool fl_fault_from_json(json_t *in, struct fl_fault *out, const char **why);
json_t *fl_fault_to_json(const struct fl_fault *f);
/* Applies the current fault once if its mode is in `modes` (FL_FAULT_ON_*):
 * copies it to *taken, counts it down, and returns true. */
bool fl_fault_take(struct fl_fault *current, unsigned modes, struct fl_fault *taken);

/* ---- statistics (stats.c) ------------------------------------------------ */

/* The paths served (after --path-prefix); a '*' in one is the model. */
enum fl_route {
	FL_ROUTE_CHAT,            /* /v1/chat/completions */
	FL_ROUTE_MESSAGES,        /* /v1/messages */
	FL_ROUTE_MODELS,          /* /v1/models */
	FL_ROUTE_GEMINI_GENERATE, /* /v1beta/models/{model}:generateContent */
	FL_ROUTE_GEMINI_STREAM,   /* /v1beta/models/{model}:streamGenerateContent */
	FL_ROUTE_GEMINI_MODELS,   /* /v1beta/models */
	FL_ROUTE_OTHER,
	FL_ROUTE_COUNT,
};

struct fl_stats {
	uint64_t connections;
	uint64_t requests;
	uint64_t by_route[FL_ROUTE_COUNT];
	uint64_t by_status[600];
	uint64_t resets;
	uint64_t hangs;
	uint64_t abandoned;      /* requests whose client left before their answer was all sent */
	uint64_t tls_failures;
	uint64_t prompt_tokens;       /* of every answer composed, sent in full or not */
	uint64_t completion_tokens;
	uint64_t cached_tokens;       /* of prompt_tokens: reported read from a cache */
	/* What the last provider request carried, so tests can check re-signing
	 * and translation: the proxy's headers, not the application's. */
	char last_path[128];
	char last_model[128];
	char last_authorization[FL_HEADER_VALUE_MAX];
	char last_x_api_key[FL_HEADER_VALUE_MAX];
	char last_anthropic_version[64];
	char last_x_goog_api_key[FL_HEADER_VALUE_MAX]; /* the header, else ?key= */
	char last_body[FL_STATS_BODY_MAX];             /* cut on a UTF-8 boundary */
	size_t last_body_len;
};

struct fl_request;
const char *fl_route_path(enum fl_route route);
void fl_stats_request(struct fl_stats *s, enum fl_route route, const struct fl_request *req);
void fl_stats_model(struct fl_stats *s, const char *model);
void fl_stats_status(struct fl_stats *s, int status);
json_t *fl_stats_to_json(const struct fl_stats *s, const struct fl_fault *fault);

/* ---- ids and time formats (format.c) ------------------------------------ */

void fl_random_init(void);
/* Writes prefix + n random characters of `alphabet` + NUL into out. */
void fl_random_id(char *out, size_t size, const char *prefix, size_t n, const char *alphabet);
extern const char fl_alnum[];
extern const char fl_hex[];
/* "2025-01-02T03:04:05Z" */
void fl_format_rfc3339(char *out, size_t size, time_t t);
/* Milliseconds since `since`. */
long fl_elapsed_ms(const struct timeval *since);
/* Go-style durations as in OpenAI's reset headers: "20ms", "6s", "6m0s". */
void fl_format_duration_ms(char *out, size_t size, uint64_t ms);

/* ---- JSON text writer (jsonw.c) ------------------------------------------ */

struct fl_jw {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;                  /* out of memory: the text is cut */
};

void fl_jw_reset(struct fl_jw *w);
/* Appends fmt, whose directives are: %s a C string as a JSON string (NULL
 * gives null), %S the same from (const char *, size_t), %R (const char *,
 * size_t) copied as is (text that is JSON already), %u unsigned,
 * %U unsigned long long, %% a percent sign. The rest is copied as is. */
void fl_jw_format(struct fl_jw *w, const char *fmt, ...);
void fl_jw_free(struct fl_jw *w);

/* ---- requests per minute (rpm.c) ----------------------------------------- */

struct fl_meta;

struct fl_rpm {
	unsigned limit;               /* 0: none */
	uint64_t *times;              /* ring of the minute's requests, CLOCK_MONOTONIC ms */
	size_t head, count;
};

int fl_rpm_init(struct fl_rpm *r, unsigned limit);
void fl_rpm_free(struct fl_rpm *r);
/* Counts a generation request in the minute; false (m->limited, with its
 * retry-after) when the minute is full. Fills m's rpm fields. */
bool fl_rpm_admit(struct fl_rpm *r, struct fl_meta *m);

/* ---- server and connections (server.c, http.c) --------------------------- */

struct fl_server {
	struct event_base *base;
	SSL_CTX *tls;                 /* NULL: the --listen sockets are plain */
	struct evconnlistener *listeners[FL_MAX_LISTENERS]; /* NULL while refusing */
	struct sockaddr_storage listen_addr[FL_MAX_LISTENERS]; /* to bind again */
	int listen_addr_len[FL_MAX_LISTENERS];
	size_t n_listeners;
	struct evconnlistener *admin;
	struct fl_conn *conns;        /* every open connection, for shutdown */
	struct fl_jw body;            /* response bodies are written here */
	const char *name;             /* x-fakellm-name */
	const char *path_prefix;      /* the API lives under it (e.g. Groq's "/openai") */
	unsigned words;               /* default answer length */
	unsigned cached_percent;      /* of each prompt, reported read from a cache */
	bool quiet;
	struct fl_fault fault;
	struct fl_rpm rpm;            /* --rpm */
	struct fl_stats stats;
	time_t date_at;               /* second the Date header was made for */
	char date[40];
};

enum fl_conn_state {
	FL_CONN_READING,    /* parsing; any response so far is complete */
	FL_CONN_RESPONDING, /* a delayed or streamed reply is in progress */
	FL_CONN_HANGING,    /* fault: never answer, wait for the peer to leave */
	FL_CONN_CLOSING,    /* flush the output, then close */
	FL_CONN_LINGERING,  /* output sent and shut: drop input until EOF */
};

/* A header value worth keeping; longer values are cut. */
struct fl_header_value {
	char text[FL_HEADER_VALUE_MAX];
	size_t len;
};

struct fl_request {
	char url[FL_MAX_URL_BYTES + 1];
	size_t url_len;
	char field[32];              /* current header name, lower-cased */
	size_t field_len;            /* > sizeof field: a name we do not keep */
	bool in_value;               /* last callback was a header value */
	struct fl_header_value *capture; /* where the current value goes */
	struct fl_header_value authorization;
	struct fl_header_value x_api_key;
	struct fl_header_value anthropic_version;
	struct fl_header_value x_goog_api_key;
	struct fl_header_value expect;
	char *body;                  /* owned, reused across requests */
	size_t body_len;
	size_t body_cap;
	int reject_status;           /* 413/414: refused while parsing */
};

/* What the family-specific response headers report. */
struct fl_meta {
	const struct fl_api *api;    /* NULL on the admin listener */
	char request_id[40];
	uint64_t tokens;             /* accounted to this request */
	bool limited;                /* 429: remaining budgets are zero */
	int retry_after;             /* seconds; < 0: no header */
	/* --rpm in force (0: the constant budgets): what is left of it after
	 * this request, and until the oldest request of the minute leaves */
	unsigned rpm_limit, rpm_left;
	uint64_t rpm_reset_ms;
	struct timeval started;
};

/* Why an answer ended; each family has its own words for it. */
enum fl_finish {
	FL_FINISH_STOP,
	FL_FINISH_LENGTH,            /* cut by max_tokens (or the length fault) */
	FL_FINISH_TOOL,              /* the answer is a tool call */
	FL_FINISH_FILTER,            /* the content filter stopped it: no text */
};

/* The generated answer: words in one string, or one tool call. */
struct fl_answer {
	const char *model;           /* borrowed from the request (JSON or path) */
	char *text;                  /* owned: words separated by one space, or
				      * the tool call's arguments (JSON) */
	size_t text_len;
	unsigned words;              /* completion tokens: one per word (piece) */
	unsigned prompt_tokens;
	unsigned cached_tokens;      /* of prompt_tokens: "read from the prompt cache" */
	enum fl_finish finish;
	const char *tool;            /* the function called; NULL: a text answer */
	char call_id[40];            /* the call's id ("" where the family has none) */
	bool stream;
	bool include_usage;          /* OpenAI stream_options.include_usage */
	char id[48];
	time_t created;
};

/* An error as the family shapes it. The message is `message`, else `text`
 * when one was made up (fl_error_printf), else the status's usual one. */
struct fl_error {
	int status;
	const char *message;
	const char *param;
	const char *code;
	char text[256];
};

/* Refuses with a 400 whose message is formatted; returns false. */
bool fl_error_printf(struct fl_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *fl_error_message(const struct fl_error *err, const char *usual);

enum fl_body {
	FL_BODY_ANSWER,              /* the message, or its stream */
	FL_BODY_ERROR,
	FL_BODY_MODELS,
};

/* A reply being delivered, immediately or later (slow fault, streaming).
 * Its body is written when it is due. */
struct fl_reply {
	struct fl_meta meta;
	int status;
	enum fl_body body;
	struct fl_error error;
	json_t *request;             /* owned: keeps the answer's model alive */
	char path_model[128];        /* the model named by the path (Gemini) */
	struct fl_answer answer;
	bool started;                /* head (and opening events) sent */
	size_t cursor;               /* next word in answer.text */
	unsigned token_ms;
	unsigned cut_after;          /* fault cut: tokens left before it (0: none) */
	bool cut_clean;
};

struct fl_conn {
	struct fl_server *srv;
	struct fl_conn *prev, *next;
	struct bufferevent *bev;
	http_parser parser;
	bool admin;
	bool tls_fail;               /* fault taken at accept: fail the handshake */
	bool in_message;             /* the parser is inside a request */
	bool processing;             /* inside the parse loop: do not re-enter it */
	bool keep_alive;
	enum fl_conn_state state;
	struct fl_request req;
	struct fl_reply reply;
	struct event *timer;         /* drives the reply; created on first use */
};

int fl_server_listen(struct fl_server *srv, const char *addr, bool admin);
int fl_server_tls(struct fl_server *srv, const char *cert, const char *key);
/* Puts a fault in force. Entering refuse closes the --listen sockets and
 * every provider connection; leaving it binds them again. -1 (the fault in
 * force unchanged) when a socket cannot be bound again. */
int fl_server_set_fault(struct fl_server *srv, const struct fl_fault *fault);
void fl_server_close(struct fl_server *srv);

/* Connections (http.c). */
struct fl_conn *fl_conn_new(struct fl_server *srv, struct bufferevent *bev, bool admin);
void fl_conn_free(struct fl_conn *c);
/* Closes with a TCP RST: SO_LINGER 0, then close. Frees c. */
void fl_conn_reset(struct fl_conn *c);
/* The deferred reply is complete: serve what is pipelined. May free c. */
void fl_conn_reply_done(struct fl_conn *c);
void fl_http_init(void);
/* A piece of the request's URL. */
struct fl_span {
	const char *text;
	size_t len;
};

/* The request path, without its query. */
size_t fl_request_path_len(const struct fl_request *req);
/* Is the request's path prefix + pattern (the query aside)? One '*' in the
 * pattern stands for a non-empty run of characters other than '/' and ':',
 * returned in *star when star is not NULL. */
bool fl_request_path_is(const struct fl_request *req, const char *prefix, const char *pattern,
			struct fl_span *star);
/* The value of a query parameter (as sent, not decoded); false if absent. */
bool fl_request_query(const struct fl_request *req, const char *name, struct fl_span *value);

/* Response writers (http.c). A streaming head has content_length < 0. */
void fl_http_head(struct fl_conn *c, int status, const char *content_type,
		  long content_length, const struct fl_meta *meta);
/* Writes a complete response whose JSON body is in srv->body. */
void fl_http_body(struct fl_conn *c, int status, const struct fl_meta *meta);
/* Writes a complete response from jansson; takes the reference to body. */
void fl_http_json(struct fl_conn *c, int status, json_t *body, const struct fl_meta *meta);
/* One server-sent event whose data is in srv->body; event NULL omits the
 * event: line (OpenAI). */
void fl_http_sse(struct fl_conn *c, const char *event);
void fl_http_stream_end(struct fl_conn *c);
const char *fl_http_reason(int status);

/* ---- provider APIs (provider.c, openai.c, anthropic.c, gemini.c) --------- */

/* What a completion request asks for, in terms common to the families;
 * JSON borrowed from the request. The provider fills model and stream when
 * the path says them (Gemini); parse fills the rest. */
struct fl_prompt {
	const char *model;
	json_t *turns;               /* messages, or Gemini's contents */
	const char *content_key;     /* a turn's content: "content" or "parts" */
	json_t *system;              /* a system prompt outside the turns: text or text parts */
	/* What the answer repeats: a content (string, or parts with "text"), or
	 * a JSON object (Gemini's functionResponse.response) whose text is
	 * repeated. NULL: nothing. */
	json_t *echo;
	bool tool_result;            /* echo is a tool's result: "Tool said:" */
	const char *tool;            /* call this function instead of answering text */
	bool json;                   /* JSON mode asked */
	unsigned max_tokens;         /* 0: not given */
	bool stream;
	bool include_usage;
};

/* One provider family. Writers append to a JSON text; stream steps send
 * their events themselves. */
struct fl_api {
	/* Validates a request body (NULL: not JSON) as the real API would;
	 * fills *err and returns false when it is refused. */
	bool (*parse)(const struct fl_request *req, json_t *body, struct fl_prompt *prompt,
		      struct fl_error *err);
	void (*message)(struct fl_jw *w, const struct fl_answer *ans);
	void (*error)(struct fl_jw *w, const struct fl_error *err, const struct fl_meta *meta);
	void (*models)(struct fl_jw *w);
	void (*stream_open)(struct fl_conn *c, const struct fl_answer *ans); /* NULL: none */
	void (*stream_token)(struct fl_conn *c, const struct fl_answer *ans,
			     const char *token, size_t len);
	void (*stream_close)(struct fl_conn *c, const struct fl_answer *ans);
	void (*request_id)(char *out, size_t size);   /* NULL: the family has none */
	void (*answer_id)(char *out, size_t size);
	const char *call_id_prefix;  /* tool call ids; NULL: calls have none */
	/* Request id and rate-limit headers, CRLF-terminated. */
	void (*headers)(struct evbuffer *out, const struct fl_meta *meta);
};

extern const struct fl_api fl_openai;
extern const struct fl_api fl_anthropic;
extern const struct fl_api fl_gemini;

/* How a family names and words each status. Tables list exact statuses,
 * then 499 and 599 rows standing for any other 4xx and 5xx. */
struct fl_error_kind {
	int status;
	const char *type;
	const char *code;
	const char *message;
};

const struct fl_error_kind *fl_error_kind(const struct fl_error_kind *table, int status);

/* Request reading shared by the families (provider.c). */
/* Is s one of the NULL-terminated names? */
bool fl_one_of(const char *s, const char *const *names);
/* Calls fn on each text of a content: a string, or an array of parts with
 * a "text" member. */
void fl_each_text(json_t *content, void (*fn)(const char *s, size_t len, void *arg), void *arg);
/* Does any text of the content contain word? */
bool fl_text_contains(json_t *content, const char *word);
/* The content (member key) of the last turn from the user. */
json_t *fl_user_content(json_t *turns, const char *key);

void fl_provider_handle(struct fl_conn *c);
void fl_provider_reject(struct fl_conn *c, int status);
void fl_reply_clear(struct fl_reply *r);

/* ---- admin (admin.c) ----------------------------------------------------- */

void fl_admin_handle(struct fl_conn *c);
void fl_admin_reject(struct fl_conn *c, int status);

#endif /* FAKELLM_H */
