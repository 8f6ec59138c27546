/* SPDX-License-Identifier: MIT */
/* What differs between provider API families on the wire: where the API
 * lives, how a request is signed, which credentials an application sends,
 * where the model is named and how a stream ends. Translation between
 * families builds on these. */
#ifndef DT_FAMILY_H
#define DT_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "detour.h"
#include "headers.h"

struct dt_family_info {
	const char *name;               /* "openai" */
	/* Header fields carrying an application's credential or account:
	 * removed before a request is signed with another key. */
	const char *const *credential_headers;
	/* Header fields only this family's API understands (versions, betas):
	 * not sent to a provider of another family. */
	const char *const *vendor_headers;
	/* The last event of a complete stream, as it starts a line. */
	const char *stream_end;
};

const struct dt_family_info *dt_family_info(enum dt_family f);

/* Replace the credential in h by key, in the family's scheme. */
int dt_family_sign(enum dt_family f, struct dt_headers *h, const char *key);

/* Drop every credential header of the family (before re-signing). */
void dt_family_strip_credentials(enum dt_family f, struct dt_headers *h);

/* A request of family `from` goes to a provider of another family: drop
 * from's credentials and vendor fields, and the fields describing a body
 * that is replaced (its type and codings). */
void dt_family_strip_for_translation(enum dt_family from, struct dt_headers *h);

#endif
