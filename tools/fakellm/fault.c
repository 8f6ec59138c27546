/* SPDX-License-Identifier: MIT */
/*
 * The injected fault: what the admin API set, and its count-down.
 */
#include <string.h>

#include "fakellm.h"

static const char *const mode_names[] = {
	[FL_FAULT_OK]       = "ok",
	[FL_FAULT_STATUS]   = "status",
	[FL_FAULT_HANG]     = "hang",
	[FL_FAULT_RESET]    = "reset",
	[FL_FAULT_TLS_FAIL] = "tls_fail",
	[FL_FAULT_SLOW]     = "slow",
	[FL_FAULT_CUT]      = "cut",
	[FL_FAULT_EMPTY]    = "empty",
	[FL_FAULT_LENGTH]   = "length",
	[FL_FAULT_FILTER]   = "filter",
	[FL_FAULT_NOT_JSON] = "not_json",
	[FL_FAULT_REFUSE]   = "refuse",
};

#define MODE_LIST "ok, status, hang, reset, tls_fail, slow, cut, empty, length, filter, not_json or refuse"

void fl_fault_clear(struct fl_fault *f)
{
	memset(f, 0, sizeof(*f));
	f->mode = FL_FAULT_OK;
	f->retry_after = -1;
	f->remaining = -1;
}

/* Reads an optional non-negative integer member bounded by max. */
static bool read_uint(json_t *in, const char *key, long long max, long long *out,
		      const char **why)
{
	json_t *v = json_object_get(in, key);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
		*why = "fields status, retry_after, ttft_ms, token_ms and count must be "
		       "non-negative integers in range";
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

bool fl_fault_from_json(json_t *in, struct fl_fault *out, const char **why)
{
	const char *mode;
	long long status = 0, retry_after = -1, ttft = 0, token = 0, count = -1, after = 2;
	json_t *clean;
	size_t i;

	if (!json_is_object(in)) {
		*why = "body must be a JSON object";
		return false;
	}
	mode = json_string_value(json_object_get(in, "mode"));
	if (!mode) {
		*why = "mode is required: " MODE_LIST;
		return false;
	}
	fl_fault_clear(out);
	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(mode, mode_names[i]) == 0)
			break;
	if (i == sizeof(mode_names) / sizeof(mode_names[0])) {
		*why = "unknown mode: use " MODE_LIST;
		return false;
	}
	out->mode = (enum fl_fault_mode)i;

	if (!read_uint(in, "status", 599, &status, why) ||
	    !read_uint(in, "retry_after", 86400, &retry_after, why) ||
	    !read_uint(in, "ttft_ms", 3600 * 1000, &ttft, why) ||
	    !read_uint(in, "token_ms", 3600 * 1000, &token, why) ||
	    !read_uint(in, "count", 1000000000, &count, why) ||
	    !read_uint(in, "after_tokens", 100000, &after, why))
		return false;
	clean = json_object_get(in, "clean");
	if (clean && !json_is_boolean(clean)) {
		*why = "clean must be true or false";
		return false;
	}

	if (out->mode == FL_FAULT_STATUS && (status < 400 || status > 599)) {
		*why = "mode status needs a status between 400 and 599";
		return false;
	}
	/* Nothing is counted while the listeners are closed. */
	if (out->mode == FL_FAULT_REFUSE && count > 0) {
		*why = "count does not apply to refuse: it lasts until the next fault";
		return false;
	}
	/* A 429 without retry-after would not be what providers send. */
	if (out->mode == FL_FAULT_STATUS && status == 429 && retry_after < 0)
		retry_after = 1;
	out->status = (int)status;
	out->retry_after = (int)retry_after;
	out->ttft_ms = (unsigned)ttft;
	out->token_ms = (unsigned)token;
	out->cut_after = after > 0 ? (unsigned)after : 1;
	out->cut_clean = clean && json_is_true(clean);
	out->remaining = count > 0 ? count : -1;
	if (out->mode == FL_FAULT_OK)
		fl_fault_clear(out);
	return true;
}

json_t *fl_fault_to_json(const struct fl_fault *f)
{
	json_t *o = json_pack("{s:s}", "mode", mode_names[f->mode]);

	if (!o)
		return NULL;
	if (f->mode == FL_FAULT_STATUS)
		json_object_set_new(o, "status", json_integer(f->status));
	if (f->retry_after >= 0)
		json_object_set_new(o, "retry_after", json_integer(f->retry_after));
	if (f->mode == FL_FAULT_SLOW || f->mode == FL_FAULT_CUT) {
		json_object_set_new(o, "ttft_ms", json_integer(f->ttft_ms));
		json_object_set_new(o, "token_ms", json_integer(f->token_ms));
	}
	if (f->mode == FL_FAULT_CUT) {
		json_object_set_new(o, "after_tokens", json_integer(f->cut_after));
		json_object_set_new(o, "clean", json_boolean(f->cut_clean));
	}
	if (f->remaining >= 0)
		json_object_set_new(o, "count", json_integer(f->remaining));
	return o;
}

bool fl_fault_take(struct fl_fault *current, unsigned modes, struct fl_fault *taken)
{
	if (current->mode == FL_FAULT_OK || !(modes & (1u << current->mode)))
		return false;
	*taken = *current;
	if (current->remaining > 0 && --current->remaining == 0)
		fl_fault_clear(current);
	return true;
}
