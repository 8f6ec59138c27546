/* SPDX-License-Identifier: MIT */
/*
 * The intercept table: every provider endpoint (address:port) the BPF
 * intercept map must hold, built from periodic DNS resolutions. Addresses
 * a provider no longer resolves to are kept, flagged DT_EP_STALE, for a
 * grace period, so applications that cached an old DNS answer stay
 * protected. Pure logic: the caller passes the clock and applies the
 * changes to the map through dt_itable_sync().
 */
#ifndef DT_INTERCEPT_H
#define DT_INTERCEPT_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "detour.h"

/* "[" + IPv6 text + "]:" + port: enough for dt_endpoint_str(). */
#define DT_ENDPOINT_STRLEN 56

struct dt_itable;

struct dt_itable *dt_itable_new(void);
void dt_itable_free(struct dt_itable *t);

/*
 * A fresh resolution of one provider: exactly eps[0..n) are its current
 * endpoints at now_ns. Its endpoints missing from eps become stale and
 * stay until dt_itable_expire() removes them.
 *
 * An endpoint another provider holds as current stays with that provider
 * (first come, first kept) and counts as a conflict; one it only holds as
 * stale passes to this provider, since the other no longer resolves to it.
 *
 * Returns the number of conflicts (0 when none), or -1 with errno ENOSPC
 * when the table would exceed DT_MAX_ENDPOINTS endpoints, in which case
 * nothing is changed.
 */
int dt_itable_resolved(struct dt_itable *t, uint32_t provider_id,
		       const struct dt_endpoint *eps, size_t n,
		       uint64_t now_ns);

/* Remove every endpoint of a provider (the provider left the config). */
void dt_itable_drop_provider(struct dt_itable *t, uint32_t provider_id);

/* Remove stale endpoints last resolved more than grace_ns before now_ns
 * (one resolved exactly grace_ns ago stays). Returns how many. */
size_t dt_itable_expire(struct dt_itable *t, uint64_t now_ns,
			uint64_t grace_ns);

/*
 * Hand every change since the last successful sync to apply(): val != NULL
 * to insert or update ep, val == NULL to delete it. Deletions come first so
 * that a full map has room for the insertions. Stops at the first non-zero
 * return of apply() and returns it; changes not applied stay pending and
 * are handed over again at the next sync. Returns 0 when all were applied.
 */
typedef int (*dt_itable_apply_fn)(void *ctx, const struct dt_endpoint *ep,
				  const struct dt_intercept *val);
int dt_itable_sync(struct dt_itable *t, dt_itable_apply_fn apply, void *ctx);

/* Endpoints of one provider, current ones first, then stale ones, each
 * group in address order. Returns how many were written (at most max). */
size_t dt_itable_endpoints(const struct dt_itable *t, uint32_t provider_id,
			   struct dt_endpoint *out, size_t max);

/* The provider of an endpoint: 0 and *provider_id set, or -1 if none. */
int dt_itable_provider(const struct dt_itable *t, const struct dt_endpoint *ep,
		       uint32_t *provider_id);

/* Endpoints in the table, stale ones included. */
size_t dt_itable_count(const struct dt_itable *t);

/* AF_INET becomes the IPv4-mapped form, AF_INET6 is copied; the padding
 * is zeroed, as BPF map keys require. Other families give all zeroes. */
void dt_endpoint_from_sockaddr(struct dt_endpoint *ep, const struct sockaddr *sa);

/* The reverse: IPv4-mapped gives AF_INET, anything else AF_INET6.
 * Returns the length of the address written to ss. */
socklen_t dt_endpoint_to_sockaddr(const struct dt_endpoint *ep,
				  struct sockaddr_storage *ss);

/* "192.0.2.1:443" or "[2001:db8::1]:443"; returns buf. */
const char *dt_endpoint_str(const struct dt_endpoint *ep, char *buf, size_t len);

bool dt_endpoint_is_v4(const struct dt_endpoint *ep);

#endif /* DT_INTERCEPT_H */
