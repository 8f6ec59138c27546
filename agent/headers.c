// SPDX-License-Identifier: MIT
/* HTTP header lists; see headers.h. */
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"

/* Fields are carved from blocks the list owns, freed with it: a head is a
 * dozen fields, made, copied and dropped for every request, and one
 * allocation per field was a third of the proxy's malloc calls. A removed
 * field's text stays until the list is freed. A list's first block also
 * holds its first fields (h->v), so that a head takes one allocation. */
struct dt_header_text {
	struct dt_header_text *next;
	size_t start;            /* the text is bytes[start, used): the fields before it */
	size_t used, size;
	alignas(struct dt_header) char bytes[];
};

#define TEXT_BLOCK   512
#define FIRST_FIELDS 16
/* A list's first block, fields and text, when its text fits: glibc serves
 * allocations up to about 1 KB from a per-thread cache, larger ones take
 * its slower path. */
#define FIRST_BLOCK  1024

static char *text_alloc(struct dt_headers *h, size_t len)
{
	struct dt_header_text *t = h->text;

	if (!t || t->size - t->used < len) {
		size_t size = t && t->size - t->start < 4096 ? 2 * (t->size - t->start) : TEXT_BLOCK;

		if (size < len)
			size = len;
		t = malloc(sizeof(*t) + size);
		if (!t)
			return NULL;
		*t = (struct dt_header_text){ .next = h->text, .size = size };
		h->text = t;
	}
	t->used += len;
	return t->bytes + t->used - len;
}

/* How many fields a list with room for cap (0: none yet) makes room for
 * to hold n. */
static size_t grown_cap(size_t cap, size_t n)
{
	cap = cap ? cap : FIRST_FIELDS;
	while (cap < n)
		cap *= 2;
	return cap;
}

/* The first block of an empty list: room for `fields` fields, then for at
 * least `text` bytes of text. */
static int first_block(struct dt_headers *h, size_t fields, size_t text)
{
	size_t start = fields * sizeof(struct dt_header);
	struct dt_header_text *t;

	if (sizeof(*t) + start + text < FIRST_BLOCK)
		text = FIRST_BLOCK - sizeof(*t) - start;
	t = malloc(sizeof(*t) + start + text);
	if (!t)
		return -ENOMEM;
	*t = (struct dt_header_text){ .start = start, .used = start, .size = start + text };
	h->text = t;
	h->v = (struct dt_header *)(void *)t->bytes;
	h->cap = fields;
	h->fields_in_text = true;
	return 0;
}

/* Room for n more fields in h->v. */
static int reserve(struct dt_headers *h, size_t n)
{
	size_t cap = grown_cap(h->cap, h->n + n);
	struct dt_header *v;

	if (h->n + n <= h->cap)
		return 0;
	if (!h->text)
		return first_block(h, cap, 0);
	if (h->fields_in_text) {
		v = malloc(cap * sizeof(*v));
		if (v && h->n)
			memcpy(v, h->v, h->n * sizeof(*v));
	} else {
		v = realloc(h->v, cap * sizeof(*v));
	}
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	h->fields_in_text = false;
	return 0;
}

int dt_headers_add(struct dt_headers *h, const char *name, size_t name_len,
		   const char *value, size_t value_len)
{
	struct dt_header f;

	if (reserve(h, 1))
		return -ENOMEM;
	/* "name\0value\0" */
	if (name_len > SIZE_MAX - 2 - value_len ||
	    !(f.name = text_alloc(h, name_len + value_len + 2)))
		return -ENOMEM;
	memcpy(f.name, name, name_len);
	f.name[name_len] = '\0';
	f.value = f.name + name_len + 1;
	memcpy(f.value, value, value_len);
	f.value[value_len] = '\0';
	/* as a C string reads them, should a NUL have come in */
	f.name_len = strlen(f.name);
	f.value_len = strlen(f.value);
	h->v[h->n++] = f;
	return 0;
}

static bool same_name(const struct dt_header *f, const char *name, size_t n)
{
	return dt_name_is(f->name, f->name_len, name, n);
}

int dt_headers_add_str(struct dt_headers *h, const char *name, const char *value)
{
	return dt_headers_add(h, name, strlen(name), value, strlen(value));
}

int dt_headers_set(struct dt_headers *h, const char *name, const char *value)
{
	dt_headers_del(h, name);
	return dt_headers_add_str(h, name, value);
}

const char *dt_headers_get(const struct dt_headers *h, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < h->n; i++)
		if (same_name(&h->v[i], name, n))
			return h->v[i].value;
	return NULL;
}

size_t dt_headers_del(struct dt_headers *h, const char *name)
{
	size_t kept = 0, removed = 0, n = strlen(name);

	for (size_t i = 0; i < h->n; i++) {
		if (same_name(&h->v[i], name, n)) {
			removed++;
			continue;
		}
		h->v[kept++] = h->v[i];
	}
	h->n = kept;
	return removed;
}

/* Is token (tlen bytes) one of list's, split at seps (one of them a comma)? */
static bool list_has_token(const char *list, const char *token, size_t tlen, const char *seps)
{
	for (const char *p = list; *p;) {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, seps);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == tlen && strncasecmp(p, token, tlen) == 0)
			return true;
		p += strcspn(p, seps);
	}
	return false;
}

bool dt_headers_has_token(const struct dt_headers *h, const char *name, const char *token)
{
	size_t n = strlen(name), tlen = strlen(token);

	for (size_t i = 0; i < h->n; i++)
		if (same_name(&h->v[i], name, n) && list_has_token(h->v[i].value, token, tlen, ","))
			return true;
	return false;
}

/* The hop-by-hop names every message has (RFC 9110 7.6.1). This runs for
 * every field of every answer: a name of none of their lengths is passed
 * at once, inline. */
#define ALWAYS_HOP_BY_HOP(X) X("connection") X("keep-alive") X("proxy-connection") \
	X("proxy-authenticate") X("proxy-authorization") X("te") X("trailer") \
	X("transfer-encoding") X("upgrade")

#define LENGTH_BIT(s) | 1u << (sizeof(s) - 1)
static const uint32_t always_lengths = 0 ALWAYS_HOP_BY_HOP(LENGTH_BIT);
#undef LENGTH_BIT

static bool named_always(const char *name, size_t len)
{
#define ENTRY(s) { s, sizeof(s) - 1 },
	static const struct { const char *name; size_t len; } always[] = { ALWAYS_HOP_BY_HOP(ENTRY) };
#undef ENTRY

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (dt_name_is(name, len, always[i].name, always[i].len))
			return true;
	return false;
}

static inline bool always_hop_by_hop(const char *name, size_t len)
{
	return len < 32 && (always_lengths >> len & 1) && named_always(name, len);
}

static bool is_connection(const struct dt_header *f)
{
	return same_name(f, "connection", 10);
}

bool dt_headers_hop_by_hop(const struct dt_headers *conn, const char *name, size_t len)
{
	if (always_hop_by_hop(name, len))
		return true;
	for (size_t i = 0; i < conn->n; i++)
		if (is_connection(&conn->v[i]) && list_has_token(conn->v[i].value, name, len, " \t,"))
			return true;
	return false;
}

/* Does a Connection value name a field of h not hop-by-hop anyway? */
static bool names_a_field(const struct dt_headers *h, const char *list)
{
	char name[64];

	for (const char *p = list + strspn(list, " \t,"); *p; p += strspn(p, " \t,")) {
		size_t len = strcspn(p, " \t,");

		if (len >= sizeof(name))
			return true; /* no such field here, surely: looked up anyway */
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (!always_hop_by_hop(name, len) && dt_headers_get(h, name))
			return true;
	}
	return false;
}

int dt_headers_connection_named(const struct dt_headers *h, struct dt_headers *conn)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (is_connection(&h->v[i]) && names_a_field(h, h->v[i].value))
			break;
	if (i == h->n)
		return 0;
	for (i = 0; i < h->n; i++)
		if (is_connection(&h->v[i]) &&
		    dt_headers_add(conn, h->v[i].name, h->v[i].name_len, h->v[i].value,
				   h->v[i].value_len))
			return -ENOMEM;
	return 0;
}

/* A head is copied for every attempt and every answer: src's text blocks
 * are copied whole into one block of dst (into an empty dst, the block
 * that holds its fields too), and each field's pointers moved by its
 * block's offset there, with no per-field length or allocation. */
int dt_headers_copy(struct dt_headers *dst, const struct dt_headers *src)
{
	const struct dt_header_text *b;
	size_t total = 0, at = 0;
	char *text;

	if (!src->n)
		return 0;
	for (b = src->text; b; b = b->next)
		total += b->used - b->start;
	if ((dst->text ? reserve(dst, src->n) : first_block(dst, grown_cap(0, src->n), total)) ||
	    !(text = text_alloc(dst, total)))
		return -ENOMEM;
	for (b = src->text; b; b = b->next) {
		memcpy(text + at, b->bytes + b->start, b->used - b->start);
		at += b->used - b->start;
	}
	for (size_t i = 0; i < src->n; i++) {
		const char *name = src->v[i].name, *from;

		/* the block it is in, and where that block's copy starts */
		for (b = src->text, at = 0;
		     (uintptr_t)name - (uintptr_t)(b->bytes + b->start) >= b->used - b->start;
		     b = b->next)
			at += b->used - b->start;
		from = b->bytes + b->start;
		dst->v[dst->n] = (struct dt_header){
			.name = text + at + (size_t)(name - from),
			.value = text + at + (size_t)(src->v[i].value - from),
			.name_len = src->v[i].name_len,
			.value_len = src->v[i].value_len,
		};
		dst->n++;
	}
	return 0;
}

void dt_headers_free(struct dt_headers *h)
{
	while (h->text) {
		struct dt_header_text *next = h->text->next;

		free(h->text);
		h->text = next;
	}
	if (!h->fields_in_text)
		free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
	h->fields_in_text = false;
}

/* One pass: a field goes when it is always hop-by-hop (Connection itself
 * among them) or named by a Connection field, whose copy outlives the
 * list's compaction. */
int dt_headers_strip_hop_by_hop(struct dt_headers *h)
{
	struct dt_headers conn = { 0 };
	size_t kept = 0;

	if (dt_headers_connection_named(h, &conn)) {
		dt_headers_free(&conn);
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->n; i++)
		if (!dt_headers_hop_by_hop(&conn, h->v[i].name, h->v[i].name_len))
			h->v[kept++] = h->v[i];
	h->n = kept;
	dt_headers_free(&conn);
	return 0;
}
