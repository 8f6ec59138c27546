// SPDX-License-Identifier: MIT
/* Request traits; see traits.h and docs/routing.md. */
#include <string.h>

#include "sticky.h"
#include "traits.h"

/* Bytes per token of the estimate: the usual rule for English text. */
#define BYTES_PER_TOKEN 4
/* Tokens a message costs beyond its content (role and framing). */
#define MESSAGE_TOKENS 4
/* Of each string of the first turn, this much is hashed (with its whole
 * length): enough to tell conversations apart without reading a long
 * prompt or an inline image whole on every request. */
#define HASHED_PREFIX 4096

static size_t len_of(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Bytes of text a part puts in the prompt; images are counted apart. */
static size_t part_bytes(const struct dt_xpart *p)
{
	return len_of(p->text) + len_of(p->name) + len_of(p->arguments);
}

/* What the prompt shows it needs (tool calls or results in its history,
 * images), and the estimate of its tokens and its answer's. */
static void read_prompt(const struct dt_xrequest *x, struct dt_route_needs *out)
{
	uint64_t bytes = len_of(x->system), images = 0;

	for (size_t i = 0; i < x->n_tools; i++)
		bytes += len_of(x->tools[i].name) + len_of(x->tools[i].description) +
			 len_of(x->tools[i].parameters);
	for (size_t i = 0; i < x->n_messages; i++) {
		const struct dt_xmessage *m = &x->messages[i];

		for (size_t j = 0; j < m->n_parts; j++) {
			const struct dt_xpart *p = &m->parts[j];

			bytes += part_bytes(p);
			images += p->type == DT_XPART_IMAGE;
			/* a conversation that used tools needs them to go on */
			if (p->type == DT_XPART_TOOL_CALL || p->type == DT_XPART_TOOL_RESULT)
				out->caps |= DT_CAP_TOOLS;
		}
	}
	if (images)
		out->caps |= DT_CAP_IMAGES;
	out->tokens = (bytes + BYTES_PER_TOKEN - 1) / BYTES_PER_TOKEN +
		      images * DT_TRAITS_IMAGE_TOKENS + x->n_messages * MESSAGE_TOKENS +
		      (x->max_tokens > 0 ? (uint64_t)x->max_tokens : 0);
}

static uint64_t hash_string(uint64_t h, const char *s)
{
	size_t n = len_of(s);

	h = dt_sticky_hash(h, &n, sizeof(n));
	return dt_sticky_hash(h, s ? s : "", n < HASHED_PREFIX ? n : HASHED_PREFIX);
}

/* The application, the system text and the messages up to the first
 * user message: what every later turn of the conversation repeats. */
static uint64_t conversation(const struct dt_xrequest *x, const char *app)
{
	uint64_t h = hash_string(0x64657475ull, app);
	size_t i = 0;

	if (!x->system && !x->n_messages)
		return 0;
	h = hash_string(h, x->system);
	for (bool user = false; i < x->n_messages && !user; i++) {
		const struct dt_xmessage *m = &x->messages[i];

		user = m->role == DT_XROLE_USER;
		h = dt_sticky_hash(h, &m->role, sizeof(m->role));
		for (size_t j = 0; j < m->n_parts; j++) {
			const struct dt_xpart *p = &m->parts[j];

			h = dt_sticky_hash(h, &p->type, sizeof(p->type));
			h = hash_string(h, p->text);
			h = hash_string(h, p->data);
			h = hash_string(h, p->url);
			h = hash_string(h, p->name);
			h = hash_string(h, p->arguments);
		}
	}
	return h ? h : 1;
}

void dt_traits_of(const struct dt_xrequest *x, const char *app, struct dt_route_needs *out)
{
	*out = (struct dt_route_needs){ 0 };
	if (x->n_tools)
		out->caps |= DT_CAP_TOOLS;
	if (x->format != DT_XFORMAT_TEXT)
		out->caps |= DT_CAP_JSON;
	read_prompt(x, out);
	out->conversation = conversation(x, app);
}
