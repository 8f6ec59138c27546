/* SPDX-License-Identifier: MIT */
/* Test side only: fakellm's admin API over blocking libcurl, for the unit
 * tests that run a fakellm (test_upstream, test_probe). Include after
 * <cmocka.h> and <curl/curl.h>, after defining BODY_MAX and
 * fakellm_admin_port(). */
#ifndef DT_TEST_FAKELLM_ADMIN_H
#define DT_TEST_FAKELLM_ADMIN_H

static size_t keep_body(char *buf, size_t size, size_t n, void *arg)
{
	char *out = arg;
	size_t have = strlen(out), len = size * n;

	if (have + len < BODY_MAX) {
		memcpy(out + have, buf, len);
		out[have + len] = '\0';
	}
	return len;
}

/* POST when json is set, else GET; the answer's body goes to out
 * (BODY_MAX bytes). */
static void admin(const char *path, const char *json, char *out)
{
	CURL *e = curl_easy_init();
	char url[128];
	long status = 0;

	out[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fakellm_admin_port(), path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (json)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(e);
}

static void set_fault(const char *json)
{
	static char out[BODY_MAX];

	admin("/fault", json, out);
}

#endif
