// SPDX-License-Identifier: MIT
/* Answer quality checks; see quality.h. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "quality.h"

/* The reasons an answer may end that say nothing good of it. */
static enum dt_quality of_finish(const struct dt_xrequest *req, enum dt_xfinish finish,
				 const struct dt_xusage *usage)
{
	switch (finish) {
	case DT_XFINISH_CONTENT_FILTER:
		return DT_QUALITY_FILTERED;
	case DT_XFINISH_LENGTH:
		/* the request's own limit, reached, explains it */
		if (req && req->max_tokens >= 0 &&
		    (!usage->known || usage->output_tokens >= req->max_tokens))
			return DT_QUALITY_OK;
		return DT_QUALITY_TRUNCATED;
	default:
		return DT_QUALITY_OK;
	}
}

/* The text parts joined: what JSON mode applies to. */
static bool text_is_json_object(const struct dt_xresponse *r)
{
	size_t len = 0, at = 0;
	json_t *doc;
	char *text;
	bool ok;

	for (size_t i = 0; i < r->n_parts; i++)
		if (r->parts[i].type == DT_XPART_TEXT && r->parts[i].text)
			len += strlen(r->parts[i].text);
	text = malloc(len + 1);
	if (!text)
		return true; /* no memory to judge: do not blame the provider */
	for (size_t i = 0; i < r->n_parts; i++)
		if (r->parts[i].type == DT_XPART_TEXT && r->parts[i].text) {
			size_t n = strlen(r->parts[i].text);

			memcpy(text + at, r->parts[i].text, n);
			at += n;
		}
	doc = json_loadb(text, len, 0, NULL);
	ok = json_is_object(doc);
	json_decref(doc);
	free(text);
	return ok;
}

enum dt_quality dt_quality_of_response(const struct dt_xrequest *req, const struct dt_xresponse *r)
{
	bool text = false, tool = false;
	enum dt_quality q;

	for (size_t i = 0; i < r->n_parts; i++) {
		if (r->parts[i].type == DT_XPART_TOOL_CALL)
			tool = true;
		else if (r->parts[i].type == DT_XPART_TEXT && r->parts[i].text && *r->parts[i].text)
			text = true;
	}
	q = of_finish(req, r->finish, &r->usage);
	if (q != DT_QUALITY_OK)
		return q;
	if (!text && !tool)
		return DT_QUALITY_EMPTY;
	if (req && req->format != DT_XFORMAT_TEXT && !tool && !text_is_json_object(r))
		return DT_QUALITY_NOT_JSON;
	return DT_QUALITY_OK;
}

enum dt_quality dt_quality_of_stream(const struct dt_xrequest *req, const struct dt_xstream_info *i)
{
	enum dt_quality q = of_finish(req, i->finish, &i->usage);

	if (q != DT_QUALITY_OK)
		return q;
	return i->content ? DT_QUALITY_OK : DT_QUALITY_EMPTY;
}

const char *dt_quality_str(enum dt_quality q)
{
	static const char *const names[] = {
		[DT_QUALITY_OK] = "ok",
		[DT_QUALITY_EMPTY] = "empty",
		[DT_QUALITY_NOT_JSON] = "not-json",
		[DT_QUALITY_TRUNCATED] = "truncated",
		[DT_QUALITY_FILTERED] = "filtered",
	};

	return (size_t)q < sizeof(names) / sizeof(names[0]) ? names[q] : "?";
}
