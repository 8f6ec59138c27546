/* SPDX-License-Identifier: MIT */
/*
 * The table is an array kept sorted by endpoint, not a hash table: it holds
 * at most DT_MAX_ENDPOINTS entries and changes only when DNS is refreshed
 * (every few seconds), so the memmove of an insertion costs nothing that
 * matters, while the order gives binary-search lookups and a deterministic
 * iteration (map updates, failover lists, tests) with no hashing code.
 *
 * Each entry remembers what the BPF map holds for it (synced, in_map), so a
 * sync hands over only real differences: an endpoint that goes stale and
 * comes back before the next sync costs no map update. A removed entry the
 * map still holds stays in the array, flagged removed, until its delete is
 * synced.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intercept.h"

struct itable_entry {
	struct dt_endpoint ep;
	struct dt_intercept val;    /* what the map must hold */
	struct dt_intercept synced; /* what it holds, when in_map */
	uint64_t last_resolved_ns;  /* time of the last resolution listing it */
	bool in_map;
	bool removed;               /* invariant: removed implies in_map */
	bool listed;                /* scratch mark of dt_itable_resolved() */
};

struct dt_itable {
	struct itable_entry *entries; /* sorted by endpoint_cmp() */
	size_t n, cap;
};

static int endpoint_cmp(const struct dt_endpoint *a, const struct dt_endpoint *b)
{
	int c = memcmp(a->addr, b->addr, sizeof(a->addr));

	if (c)
		return c;
	return (int)a->port - (int)b->port;
}

static bool intercept_eq(const struct dt_intercept *a, const struct dt_intercept *b)
{
	return a->provider_id == b->provider_id && a->flags == b->flags;
}

static bool entry_is_stale(const struct itable_entry *e)
{
	return e->val.flags & DT_EP_STALE;
}

/* Index of ep, or of the place it would be inserted at; true if found. */
static bool itable_find(const struct dt_itable *t, const struct dt_endpoint *ep,
			size_t *pos)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (endpoint_cmp(&t->entries[mid].ep, ep) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < t->n && endpoint_cmp(&t->entries[lo].ep, ep) == 0;
}

static int itable_reserve(struct dt_itable *t, size_t want)
{
	struct itable_entry *grown;
	size_t cap = t->cap ? t->cap : 64;

	if (want <= t->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	grown = reallocarray(t->entries, cap, sizeof(*grown));
	if (!grown)
		return -1;
	t->entries = grown;
	t->cap = cap;
	return 0;
}

/* Room must have been reserved. */
static struct itable_entry *itable_insert_at(struct dt_itable *t, size_t pos,
					     const struct dt_endpoint *ep)
{
	struct itable_entry *e = &t->entries[pos];

	memmove(e + 1, e, (t->n - pos) * sizeof(*e));
	t->n++;
	memset(e, 0, sizeof(*e));
	e->ep.port = ep->port;
	memcpy(e->ep.addr, ep->addr, sizeof(e->ep.addr));
	return e;
}

static void itable_forget(struct dt_itable *t, size_t pos)
{
	struct itable_entry *e = &t->entries[pos];

	memmove(e, e + 1, (t->n - pos - 1) * sizeof(*e));
	t->n--;
}

/* Callers iterate downwards, so forgetting entry pos moves none they have
 * yet to visit. */
static void itable_remove(struct dt_itable *t, size_t pos)
{
	if (t->entries[pos].in_map)
		t->entries[pos].removed = true;
	else
		itable_forget(t, pos);
}

size_t dt_itable_count(const struct dt_itable *t)
{
	size_t live = 0;

	for (size_t i = 0; i < t->n; i++)
		live += !t->entries[i].removed;
	return live;
}

struct dt_itable *dt_itable_new(void)
{
	return calloc(1, sizeof(struct dt_itable));
}

void dt_itable_free(struct dt_itable *t)
{
	if (!t)
		return;
	free(t->entries);
	free(t);
}

/* Does eps[0..n) turn into a new live entry: absent (or removed) and not
 * already counted as an earlier duplicate in eps? */
static bool is_new_endpoint(const struct dt_itable *t,
			    const struct dt_endpoint *eps, size_t i)
{
	size_t pos;

	if (itable_find(t, &eps[i], &pos) && !t->entries[pos].removed)
		return false;
	for (size_t j = 0; j < i; j++)
		if (endpoint_cmp(&eps[j], &eps[i]) == 0)
			return false;
	return true;
}

int dt_itable_resolved(struct dt_itable *t, uint32_t provider_id,
		       const struct dt_endpoint *eps, size_t n,
		       uint64_t now_ns)
{
	size_t added = 0;
	int conflicts = 0;

	/* Check capacity and allocate before touching anything, so a refused
	 * resolution leaves the table as it was. */
	for (size_t i = 0; i < n; i++)
		added += is_new_endpoint(t, eps, i);
	if (dt_itable_count(t) + added > DT_MAX_ENDPOINTS) {
		errno = ENOSPC;
		return -1;
	}
	if (itable_reserve(t, t->n + added) < 0)
		return -1;

	for (size_t i = 0; i < n; i++) {
		struct itable_entry *e;
		size_t pos;

		if (itable_find(t, &eps[i], &pos)) {
			e = &t->entries[pos];
			if (!e->removed && e->val.provider_id != provider_id &&
			    !entry_is_stale(e)) {
				conflicts++;
				continue;
			}
		} else {
			e = itable_insert_at(t, pos, &eps[i]);
		}
		e->removed = false;
		e->val.provider_id = provider_id;
		e->val.flags = 0;
		e->last_resolved_ns = now_ns;
		e->listed = true;
	}

	for (size_t i = 0; i < t->n; i++) {
		struct itable_entry *e = &t->entries[i];

		if (e->removed || e->val.provider_id != provider_id)
			continue;
		if (!e->listed)
			e->val.flags |= DT_EP_STALE;
		e->listed = false;
	}
	return conflicts;
}

void dt_itable_drop_provider(struct dt_itable *t, uint32_t provider_id)
{
	for (size_t i = t->n; i-- > 0;)
		if (!t->entries[i].removed &&
		    t->entries[i].val.provider_id == provider_id)
			itable_remove(t, i);
}

size_t dt_itable_expire(struct dt_itable *t, uint64_t now_ns, uint64_t grace_ns)
{
	size_t expired = 0;

	for (size_t i = t->n; i-- > 0;) {
		const struct itable_entry *e = &t->entries[i];

		if (e->removed || !entry_is_stale(e))
			continue;
		/* A clock behind the entry (caller mixing clocks) keeps it. */
		if (now_ns < e->last_resolved_ns ||
		    now_ns - e->last_resolved_ns <= grace_ns)
			continue;
		itable_remove(t, i);
		expired++;
	}
	return expired;
}

int dt_itable_sync(struct dt_itable *t, dt_itable_apply_fn apply, void *ctx)
{
	int rc;

	/* Deletions first: a full map needs their room for the insertions. */
	for (size_t i = t->n; i-- > 0;) {
		if (!t->entries[i].removed)
			continue;
		rc = apply(ctx, &t->entries[i].ep, NULL);
		if (rc)
			return rc;
		itable_forget(t, i);
	}

	for (size_t i = 0; i < t->n; i++) {
		struct itable_entry *e = &t->entries[i];

		if (e->in_map && intercept_eq(&e->val, &e->synced))
			continue;
		rc = apply(ctx, &e->ep, &e->val);
		if (rc)
			return rc;
		e->synced = e->val;
		e->in_map = true;
	}
	return 0;
}

static size_t copy_endpoints(const struct dt_itable *t, uint32_t provider_id,
			     bool stale, struct dt_endpoint *out, size_t count,
			     size_t max)
{
	for (size_t i = 0; i < t->n && count < max; i++) {
		const struct itable_entry *e = &t->entries[i];

		if (!e->removed && e->val.provider_id == provider_id &&
		    entry_is_stale(e) == stale)
			out[count++] = e->ep;
	}
	return count;
}

size_t dt_itable_endpoints(const struct dt_itable *t, uint32_t provider_id,
			   struct dt_endpoint *out, size_t max)
{
	size_t count = copy_endpoints(t, provider_id, false, out, 0, max);

	return copy_endpoints(t, provider_id, true, out, count, max);
}

int dt_itable_provider(const struct dt_itable *t, const struct dt_endpoint *ep,
		       uint32_t *provider_id)
{
	size_t pos;

	if (!itable_find(t, ep, &pos) || t->entries[pos].removed)
		return -1;
	*provider_id = t->entries[pos].val.provider_id;
	return 0;
}

/* ---- endpoint helpers ----------------------------------------------------- */

bool dt_endpoint_is_v4(const struct dt_endpoint *ep)
{
	return IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ep->addr);
}

void dt_endpoint_from_sockaddr(struct dt_endpoint *ep, const struct sockaddr *sa)
{
	memset(ep, 0, sizeof(*ep));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		ep->addr[2] = htonl(0xffff);
		ep->addr[3] = sin->sin_addr.s_addr;
		ep->port = sin->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		memcpy(ep->addr, &sin6->sin6_addr, sizeof(ep->addr));
		ep->port = sin6->sin6_port;
	}
}

socklen_t dt_endpoint_to_sockaddr(const struct dt_endpoint *ep,
				  struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (dt_endpoint_is_v4(ep)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = ep->addr[3];
		sin->sin_port = ep->port;
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, ep->addr, sizeof(ep->addr));
	sin6->sin6_port = ep->port;
	return sizeof(*sin6);
}

const char *dt_endpoint_str(const struct dt_endpoint *ep, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (dt_endpoint_is_v4(ep)) {
		inet_ntop(AF_INET, &ep->addr[3], addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, ntohs(ep->port));
	} else {
		inet_ntop(AF_INET6, ep->addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%u", addr, ntohs(ep->port));
	}
	return buf;
}
