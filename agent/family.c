// SPDX-License-Identifier: MIT
/* Provider API families; see family.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family.h"

static const char *const openai_credentials[] = {
	"authorization", "openai-organization", "openai-project", "api-key", NULL,
};
static const char *const anthropic_credentials[] = {
	"x-api-key", "authorization", NULL,
};
static const char *const gemini_credentials[] = {
	"x-goog-api-key", "authorization", NULL,
};

static const char *const openai_vendor[] = { "openai-beta", NULL };
static const char *const anthropic_vendor[] = {
	"anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", NULL,
};
static const char *const gemini_vendor[] = { "x-goog-api-client", "x-goog-user-project", NULL };

static const struct dt_family_info families[] = {
	[DT_FAMILY_OPENAI] = {
		.name = "openai",
		.credential_headers = openai_credentials,
		.vendor_headers = openai_vendor,
		.stream_end = "data: [DONE]",
	},
	[DT_FAMILY_ANTHROPIC] = {
		.name = "anthropic",
		.credential_headers = anthropic_credentials,
		.vendor_headers = anthropic_vendor,
		.stream_end = "event: message_stop",
	},
	[DT_FAMILY_GEMINI] = {
		.name = "gemini",
		.credential_headers = gemini_credentials,
		.vendor_headers = gemini_vendor,
		.stream_end = NULL, /* Gemini's SSE has no end event: EOF ends it */
	},
};

const struct dt_family_info *dt_family_info(enum dt_family f)
{
	if ((size_t)f >= sizeof(families) / sizeof(families[0]))
		f = DT_FAMILY_OPENAI;
	return &families[f];
}

static void del_all(struct dt_headers *h, const char *const *names)
{
	for (; *names; names++)
		dt_headers_del(h, *names);
}

void dt_family_strip_credentials(enum dt_family f, struct dt_headers *h)
{
	del_all(h, dt_family_info(f)->credential_headers);
}

void dt_family_strip_for_translation(enum dt_family from, struct dt_headers *h)
{
	/* the answer is read to be translated: it must come uncompressed */
	static const char *const body_fields[] = { "content-type", "content-encoding",
						   "accept-encoding", NULL };

	dt_family_strip_credentials(from, h);
	del_all(h, dt_family_info(from)->vendor_headers);
	del_all(h, body_fields);
}

int dt_family_sign(enum dt_family f, struct dt_headers *h, const char *key)
{
	char *bearer;
	int rc;

	dt_family_strip_credentials(f, h);
	switch (f) {
	case DT_FAMILY_ANTHROPIC:
		rc = dt_headers_set(h, "x-api-key", key);
		if (!rc && !dt_headers_get(h, "anthropic-version"))
			rc = dt_headers_set(h, "anthropic-version", "2023-06-01");
		return rc;
	case DT_FAMILY_GEMINI:
		return dt_headers_set(h, "x-goog-api-key", key);
	case DT_FAMILY_OPENAI:
	default:
		if (asprintf(&bearer, "Bearer %s", key) < 0)
			return -1;
		rc = dt_headers_set(h, "authorization", bearer);
		/* the key is a secret: leave no copy behind */
		explicit_bzero(bearer, strlen(bearer));
		free(bearer);
		return rc;
	}
}
