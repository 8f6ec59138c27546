// SPDX-License-Identifier: MIT
/* Answer quality checks; see quality.h. */
#include "quality.h"
#include "xresp_int.h"

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

/* What JSON mode applies to: the answer's text. */
static bool text_is_json_object(const struct dt_xresponse *r)
{
	struct dt_jbuf text = { 0 };
	bool ok;

	dt_xresp_text(&text, r, dt_jbuf_put);
	/* no memory to judge: do not blame the provider */
	ok = text.failed || dt_json_is_object_text(text.data ? text.data : "", text.len);
	dt_jbuf_free(&text);
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
