// SPDX-License-Identifier: MIT
/* Reading an HTTP/1.1 response; see h1resp.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h1resp.h"

static struct dt_h1resp *of(http_parser *p)
{
	return p->data;
}

static int fail(struct dt_h1resp *r, const char *why)
{
	snprintf(r->error, sizeof(r->error), "%s", why);
	return -1;
}

static int count_head(struct dt_h1resp *r, size_t len)
{
	r->head_bytes += len;
	return r->head_bytes > DT_H1RESP_MAX_HEAD ? fail(r, "response head too large") : 0;
}

static int append(struct dt_h1resp *r, const char *at, size_t len)
{
	if (r->field_len + len > r->field_cap) {
		size_t cap = r->field_cap ? r->field_cap : 128;
		char *f;

		while (cap < r->field_len + len)
			cap *= 2;
		f = realloc(r->field, cap);
		if (!f)
			return fail(r, "out of memory");
		r->field = f;
		r->field_cap = cap;
	}
	memcpy(r->field + r->field_len, at, len);
	r->field_len += len;
	return 0;
}

/* The field's pieces still in the bytes being fed are copied: those bytes
 * are gone by the next feed, or another piece of the field follows. */
static int spill(struct dt_h1resp *r)
{
	const char *name = r->name_at, *value = r->value_at;

	if (!name)
		return 0;
	r->name_at = r->value_at = NULL;
	if (append(r, name, r->name_at_len))
		return -1;
	if (r->in_value)
		r->name_len = r->field_len;
	return value ? append(r, value, r->value_at_len) : 0;
}

/* The field read so far joins the head; a value's trailing blanks are not
 * part of it (RFC 9110 5.5). Most fields come whole within one feed and
 * are taken from its bytes, with no copy of their own. */
static int commit_field(struct dt_h1resp *r)
{
	const char *name = r->name_at, *value = r->value_at ? r->value_at : "";
	size_t name_len = r->name_at_len, value_len = r->value_at ? r->value_at_len : 0;

	if (!name) {
		name = r->field;
		name_len = r->name_len;
		value = r->field + r->name_len;
		value_len = r->field_len - r->name_len;
	}
	while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
		value_len--;
	if (dt_headers_add(&r->fields, name, name_len, value, value_len))
		return fail(r, "out of memory");
	r->name_at = r->value_at = NULL;
	r->field_len = r->name_len = 0;
	r->in_value = false;
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct dt_h1resp *r = of(p);

	dt_headers_free(&r->fields);
	r->name_at = r->value_at = NULL;
	r->field_len = r->name_len = 0;
	r->in_value = false;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct dt_h1resp *r = of(p);

	if (r->head_done)
		return count_head(r, len);      /* trailers: counted, not kept */
	if (r->in_value && commit_field(r))
		return -1;
	if (r->field_len == 0 && !r->name_at && r->fields.n >= DT_H1RESP_MAX_FIELDS)
		return fail(r, "too many response header fields");
	if (count_head(r, len))
		return -1;
	if (r->field_len == 0 && !r->name_at) {
		r->name_at = at;
		r->name_at_len = len;
		return 0;
	}
	return spill(r) ? -1 : append(r, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct dt_h1resp *r = of(p);

	if (r->head_done)
		return count_head(r, len);
	if (count_head(r, len))
		return -1;
	if (!r->in_value) {
		r->name_len = r->field_len;
		r->in_value = true;
		if (r->name_at) {
			r->value_at = at;
			r->value_at_len = len;
			return 0;
		}
	}
	return spill(r) ? -1 : append(r, at, len);
}

static bool interim(const http_parser *p)
{
	return p->status_code >= 100 && p->status_code < 200;
}

static int on_headers_complete(http_parser *p)
{
	struct dt_h1resp *r = of(p);

	if (r->in_value && commit_field(r))
		return -1;
	r->name_at = NULL;                      /* a name with no value is no field */
	if (p->status_code < 100)
		return fail(r, "malformed response: invalid status code");
	if (p->status_code == 101 || p->upgrade)
		return fail(r, "unexpected protocol switch");
	if (interim(p))
		return 0;                       /* its message ends here; the next one follows */
	r->head_done = true;
	r->stop = r->ops->head(r->ctx, p->status_code, &r->fields);
	dt_headers_free(&r->fields);
	free(r->field);
	r->field = NULL;
	r->field_cap = 0;
	if (r->stop)
		http_parser_pause(p, 1);
	return r->head_request ? 1 : 0;         /* 1: no body follows */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct dt_h1resp *r = of(p);

	if (!r->head_done)
		return fail(r, "malformed response: an interim response with a body");
	if (r->ops->body(r->ctx, at, len)) {
		r->stop = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct dt_h1resp *r = of(p);

	if (!r->head_done)
		return 0;                       /* an interim response */
	r->complete = true;
	/* execute() returns here: what follows is not this response's */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void dt_h1resp_init(struct dt_h1resp *r, bool head_request, const struct dt_h1resp_ops *ops,
		    void *ctx)
{
	*r = (struct dt_h1resp){ .ops = ops, .ctx = ctx, .head_request = head_request };
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
}

void dt_h1resp_free(struct dt_h1resp *r)
{
	dt_headers_free(&r->fields);
	free(r->field);
	r->field = NULL;
	r->field_cap = r->field_len = 0;
}

static enum dt_h1resp_state after_execute(struct dt_h1resp *r)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

	if (r->complete)
		return DT_H1RESP_COMPLETE;
	if (r->stop)
		return DT_H1RESP_STOPPED;
	if (e == HPE_OK && !r->parser.upgrade)
		return DT_H1RESP_MORE;
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "malformed response: %s",
			 e == HPE_OK ? "unexpected protocol switch" : http_errno_description(e));
	return DT_H1RESP_ERROR;
}

enum dt_h1resp_state dt_h1resp_feed(struct dt_h1resp *r, const char *buf, size_t len,
				    size_t *used)
{
	*used = 0;
	if (!len)
		return DT_H1RESP_MORE;          /* 0 bytes would tell the parser "end" */
	r->got_bytes = true;
	*used = http_parser_execute(&r->parser, &settings, buf, len);
	if (spill(r))
		return DT_H1RESP_ERROR; /* out of memory, said in error */
	return after_execute(r);
}

enum dt_h1resp_state dt_h1resp_eof(struct dt_h1resp *r)
{
	if (r->complete)
		return DT_H1RESP_COMPLETE;
	if (!r->got_bytes) {
		snprintf(r->error, sizeof(r->error), "the connection closed with no response");
		return DT_H1RESP_ERROR;
	}
	http_parser_execute(&r->parser, &settings, NULL, 0);
	if (r->complete)
		return DT_H1RESP_COMPLETE;
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "the connection closed before the response ended");
	return r->stop ? DT_H1RESP_STOPPED : DT_H1RESP_ERROR;
}

bool dt_h1resp_keep_alive(const struct dt_h1resp *r)
{
	return r->complete && http_should_keep_alive(&r->parser);
}
