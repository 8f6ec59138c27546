// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for request translation. Byte 0 picks the client's
 * shape (low bits) and the family emitted first (next bits); the rest is
 * the body. A parsed request is emitted for all three families: each
 * output must be valid JSON (jansson is the judge). jansson also judges
 * the scanner: a body the translator accepts must be JSON jansson reads.
 * Its routing needs are read too: only the capabilities there are, and a
 * conversation whenever there is a first turn.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "traits.h"
#include "xlate.h"

/* Integers past int64 are JSON: jansson reads them as reals only when told. */
static void check_json(const char *text, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &e);

	if (!j)
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_xrequest r;
	struct dt_route_needs needs;
	enum dt_family shape, first;
	const char *body;
	char err[256];

	if (size < 1)
		return 0;
	shape = (enum dt_family)(data[0] % 3);
	first = (enum dt_family)(data[0] / 3 % 3);
	body = (const char *)data + 1;
	size--;
	if (dt_xreq_parse(shape, body, size, shape == DT_FAMILY_GEMINI ? "gemini-x" : NULL,
			  data[0] & 0x80, &r, err, sizeof(err))) {
		if (!err[0] || r.arena.head)
			abort(); /* a refusal says why and keeps nothing */
		return 0;
	}
	check_json(body, size);
	dt_traits_of(&r, "app", &needs);
	if ((needs.caps & ~(DT_CAP_TOOLS | DT_CAP_IMAGES | DT_CAP_JSON)) ||
	    (!needs.conversation && (r.system || r.n_messages)))
		abort();
	for (int i = 0; i < 3; i++) {
		enum dt_family to = (enum dt_family)((first + i) % 3);
		size_t len;
		char *out = dt_xreq_emit(to, &r, "model-x", &len, err, sizeof(err));

		if (out) {
			if (strlen(out) != len)
				abort();
			check_json(out, len);
		} else if (!err[0]) {
			abort();
		}
		free(out);
	}
	dt_xreq_free(&r);
	return 0;
}
