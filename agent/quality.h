/* SPDX-License-Identifier: MIT */
/* Quality check of an answer before the client gets it: an answer that is
 * empty, is not the JSON the request asked for, or ends cut short for a
 * reason the request does not explain (length without a max_tokens that was
 * reached, a content filter) is worth trying on the next member. */
#ifndef DT_QUALITY_H
#define DT_QUALITY_H

#include "xlate.h"

enum dt_quality {
	DT_QUALITY_OK,
	DT_QUALITY_EMPTY,       /* no text, no tool call */
	DT_QUALITY_NOT_JSON,    /* JSON asked for, the text does not parse as an object */
	DT_QUALITY_TRUNCATED,   /* ended by length, not by the request's max_tokens */
	DT_QUALITY_FILTERED,    /* ended by a content filter or refusal */
};

/* A whole answer. req may be NULL (nothing known of what was asked). */
enum dt_quality dt_quality_of_response(const struct dt_xrequest *req, const struct dt_xresponse *r);

/* A streamed answer that ended before any content was passed on: only what
 * the stream's summary tells (its text is not kept). */
enum dt_quality dt_quality_of_stream(const struct dt_xrequest *req, const struct dt_xstream_info *i);

/* "empty", "not-json", "truncated", "filtered" ("ok"). */
const char *dt_quality_str(enum dt_quality q);

#endif
