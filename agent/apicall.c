// SPDX-License-Identifier: MIT
/* API calls of each family; see apicall.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apicall.h"

/* Does s start with the path p, followed by the end, a query or nothing else? */
static const char *path_is(const char *s, const char *p)
{
	size_t n = strlen(p);

	if (strncmp(s, p, n) != 0 || (s[n] != '\0' && s[n] != '?'))
		return NULL;
	return s + n;
}

/* Is the query parameter name=value in query (after '?')? */
static bool query_has(const char *query, const char *param)
{
	size_t n = strlen(param);

	while (query && *query) {
		if (strncmp(query, param, n) == 0 && (query[n] == '&' || query[n] == '\0'))
			return true;
		query = strchr(query, '&');
		if (query)
			query++;
	}
	return false;
}

static void parse_gemini(const char *rest, struct dt_apicall *out)
{
	static const char prefix[] = "/models/";
	const char *model = rest + sizeof(prefix) - 1, *colon, *after;
	size_t len;

	if (strncmp(rest, prefix, sizeof(prefix) - 1) != 0)
		return;
	colon = strchr(model, ':');
	len = colon ? (size_t)(colon - model) : 0;
	if (!len || len >= sizeof(out->path_model) || memchr(model, '/', len) || memchr(model, '?', len))
		return;
	if ((after = path_is(colon, ":generateContent"))) {
		out->generate = true;
	} else if ((after = path_is(colon, ":streamGenerateContent"))) {
		out->generate = out->path_stream = true;
		out->sse = *after == '?' && query_has(after + 1, "alt=sse");
	} else {
		return;
	}
	memcpy(out->path_model, model, len);
	out->path_model[len] = '\0';
}

void dt_apicall_parse(enum dt_family family, const char *rest, struct dt_apicall *out)
{
	memset(out, 0, sizeof(*out));
	switch (family) {
	case DT_FAMILY_ANTHROPIC:
		out->generate = path_is(rest, "/messages") != NULL;
		break;
	case DT_FAMILY_GEMINI:
		parse_gemini(rest, out);
		break;
	case DT_FAMILY_OPENAI:
	default:
		out->generate = path_is(rest, "/chat/completions") != NULL;
		break;
	}
	out->sse |= out->generate && family != DT_FAMILY_GEMINI;
}

char *dt_apicall_url(enum dt_family to, const char *base_url, const char *model, bool stream)
{
	char *url = NULL;
	int n;

	switch (to) {
	case DT_FAMILY_ANTHROPIC:
		n = asprintf(&url, "%s/messages", base_url);
		break;
	case DT_FAMILY_GEMINI:
		n = asprintf(&url, "%s/models/%s:%s", base_url, model,
			     stream ? "streamGenerateContent?alt=sse" : "generateContent");
		break;
	case DT_FAMILY_OPENAI:
	default:
		n = asprintf(&url, "%s/chat/completions", base_url);
		break;
	}
	return n < 0 ? NULL : url;
}
