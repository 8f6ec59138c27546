// SPDX-License-Identifier: MIT
/* ClientHello SNI parsing, on hellos OpenSSL writes for real. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "sni.h"

#define HELLO_MAX (96 * 1024)
#define BIG_EXT_TYPE 0xfde8 /* private use: pads a hello over one record */

struct hello {
	uint8_t b[HELLO_MAX];
	size_t len;
};

static int add_big_ext(SSL *ssl, unsigned int type, unsigned int context,
		       const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
		       int *al, void *arg)
{
	static unsigned char pad[20000];

	(void)ssl; (void)type; (void)context; (void)x; (void)chainidx; (void)al; (void)arg;
	*out = pad;
	*outlen = sizeof(pad);
	return 1;
}

/* The first flight of a client connecting with @version (0: any) and @sni
 * (NULL: none), as written to the wire; @big pads it past 16 KiB. */
static void client_hello(struct hello *h, int version, const char *sni, bool big)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	int n;

	assert_non_null(ctx);
	if (version) {
		assert_true(SSL_CTX_set_min_proto_version(ctx, version));
		assert_true(SSL_CTX_set_max_proto_version(ctx, version));
	}
	if (big)
		assert_true(SSL_CTX_add_custom_ext(ctx, BIG_EXT_TYPE, SSL_EXT_CLIENT_HELLO,
						   add_big_ext, NULL, NULL, NULL, NULL));
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_connect_state(ssl);
	if (sni)
		assert_true(SSL_set_tlsext_host_name(ssl, sni));
	assert_true(SSL_do_handshake(ssl) <= 0); /* waits for the server */
	n = BIO_read(wbio, h->b, sizeof(h->b));
	assert_true(n > 0);
	h->len = (size_t)n;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* The same handshake bytes cut into records of at most @frag bytes. */
static void refragment(const struct hello *in, size_t frag, struct hello *out)
{
	size_t pos = 0;

	out->len = 0;
	while (pos < in->len) {
		size_t rec_len = (size_t)in->b[pos + 3] << 8 | in->b[pos + 4];
		const uint8_t *payload = in->b + pos + 5;

		for (size_t off = 0; off < rec_len; off += frag) {
			size_t n = rec_len - off < frag ? rec_len - off : frag;

			assert_true(out->len + 5 + n <= sizeof(out->b));
			memcpy(out->b + out->len, in->b + pos, 3);
			out->b[out->len + 3] = (uint8_t)(n >> 8);
			out->b[out->len + 4] = (uint8_t)n;
			memcpy(out->b + out->len + 5, payload + off, n);
			out->len += 5 + n;
		}
		pos += 5 + rec_len;
	}
}

static enum dt_sni_result parse(const uint8_t *b, size_t len, char *name)
{
	return dt_sni_parse(b, len, name, DT_SNI_MAX + 1);
}

static void expect_found(const struct hello *h, const char *want)
{
	char name[DT_SNI_MAX + 1] = "";

	assert_int_equal(parse(h->b, h->len, name), DT_SNI_FOUND);
	assert_string_equal(name, want);
}

/* Every proper prefix is "need more", never a verdict on part of a hello. */
static void expect_prefixes_need_more(const struct hello *h)
{
	char name[DT_SNI_MAX + 1];

	for (size_t n = 0; n < h->len; n++)
		assert_int_equal(parse(h->b, n, name), DT_SNI_NEED_MORE);
}

static void test_tls12_and_tls13(void **state)
{
	static struct hello h;

	(void)state;
	client_hello(&h, TLS1_2_VERSION, "api.openai.com", false);
	expect_found(&h, "api.openai.com");
	client_hello(&h, TLS1_3_VERSION, "api.anthropic.com", false);
	expect_found(&h, "api.anthropic.com");
	client_hello(&h, 0, "Generativelanguage.GoogleAPIs.com", false);
	expect_found(&h, "generativelanguage.googleapis.com");
}

static void test_without_sni(void **state)
{
	static struct hello h;
	char name[DT_SNI_MAX + 1];

	(void)state;
	client_hello(&h, TLS1_2_VERSION, NULL, false);
	assert_int_equal(parse(h.b, h.len, name), DT_SNI_ABSENT);
	client_hello(&h, TLS1_3_VERSION, NULL, false);
	assert_int_equal(parse(h.b, h.len, name), DT_SNI_ABSENT);
}

static void test_every_prefix_needs_more(void **state)
{
	static struct hello h;

	(void)state;
	client_hello(&h, TLS1_2_VERSION, "api.openai.com", false);
	expect_prefixes_need_more(&h);
	client_hello(&h, TLS1_3_VERSION, "api.openai.com", false);
	expect_prefixes_need_more(&h);
}

static void test_fragmented_records(void **state)
{
	static struct hello h, frag;
	static const size_t sizes[] = { 1, 2, 7, 100 };

	(void)state;
	client_hello(&h, TLS1_3_VERSION, "api.groq.com", false);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		refragment(&h, sizes[i], &frag);
		expect_found(&frag, "api.groq.com");
	}
	refragment(&h, 7, &frag);
	expect_prefixes_need_more(&frag);
}

static void test_hello_over_one_record(void **state)
{
	static struct hello h;

	(void)state;
	client_hello(&h, TLS1_3_VERSION, "api.openai.com", true);
	/* OpenSSL split it: the second record starts after 16 KiB */
	assert_true(h.len > 16384 + 5);
	assert_int_equal(h.b[16384 + 5], 22);
	expect_found(&h, "api.openai.com");
	assert_int_equal(parse(h.b, 16384 + 5, (char[DT_SNI_MAX + 1]){0}), DT_SNI_NEED_MORE);
}

static void test_not_tls(void **state)
{
	static const char *const inputs[] = {
		"POST /v1/chat/completions HTTP/1.1\r\n", "GET ", "P",
		"\x16\x05", "\x16\x03\x05", "\x17\x03\x03\x00\x10", "\x80\x2e\x01\x03\x01",
	};
	char name[DT_SNI_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		assert_int_equal(parse((const uint8_t *)inputs[i], strlen(inputs[i]), name),
				 DT_SNI_NOT_TLS);
	/* a record header that is TLS so far */
	assert_int_equal(parse((const uint8_t *)"\x16\x03", 2, name), DT_SNI_NEED_MORE);
}

/* Offset of the extensions' total length in a single-record hello. */
static size_t extensions_offset(const struct hello *h)
{
	size_t off = 5 + 4 + 2 + 32;

	off += 1 + h->b[off];                                /* session id */
	off += 2 + ((size_t)h->b[off] << 8 | h->b[off + 1]); /* cipher suites */
	off += 1 + h->b[off];                                /* compression */
	return off;
}

static size_t get_field(const struct hello *h, size_t off, size_t width)
{
	size_t v = 0;

	for (size_t i = 0; i < width; i++)
		v = v << 8 | h->b[off + i];
	return v;
}

/* A copy of @orig with the big-endian field of @width bytes at @off set to
 * @value is malformed. */
static void expect_malformed_with(const struct hello *orig, size_t off, size_t width, size_t value)
{
	static struct hello h;
	char name[DT_SNI_MAX + 1];

	h = *orig;
	for (size_t i = width; i-- > 0; value >>= 8)
		h.b[off + i] = (uint8_t)value;
	assert_int_equal(parse(h.b, h.len, name), DT_SNI_MALFORMED);
}

static void test_malformed_lengths(void **state)
{
	static struct hello h;
	size_t sid, suites, ext;

	(void)state;
	client_hello(&h, TLS1_3_VERSION, "api.openai.com", false);
	sid = 5 + 4 + 2 + 32;
	suites = sid + 1 + h.b[sid];
	ext = extensions_offset(&h);
	expect_malformed_with(&h, 3, 2, 0);                          /* empty record */
	expect_malformed_with(&h, 3, 2, 16385);                      /* record over 16 KiB */
	expect_malformed_with(&h, 5, 1, 2);                          /* not a ClientHello */
	expect_malformed_with(&h, 6, 3, DT_SNI_MAX_HELLO + 1);       /* hello over 64 KiB */
	expect_malformed_with(&h, sid, 1, 33);                       /* session id over 32 */
	expect_malformed_with(&h, suites, 2, get_field(&h, suites, 2) | 1); /* odd suites */
	expect_malformed_with(&h, suites, 2, 0xffff);                /* suites past the end */
	expect_malformed_with(&h, ext, 2, get_field(&h, ext, 2) + 1); /* extensions overrun */
	expect_malformed_with(&h, ext, 2, get_field(&h, ext, 2) - 1); /* ...and underrun */
}

/* Offset of the server_name extension (its type field) in a single-record
 * hello. */
static size_t server_name_offset(const struct hello *h)
{
	size_t off = extensions_offset(h) + 2;

	while (get_field(h, off, 2) != 0) {
		off += 4 + get_field(h, off + 2, 2);
		assert_true(off + 4 <= h->len);
	}
	return off;
}

static void test_malformed_server_name(void **state)
{
	static struct hello h, other;
	char name[DT_SNI_MAX + 1];
	size_t sn, list, name_len;

	(void)state;
	client_hello(&h, TLS1_3_VERSION, "api.openai.com", false);
	sn = server_name_offset(&h);
	list = sn + 4;
	name_len = list + 2 + 1;
	assert_int_equal(get_field(&h, name_len, 2), strlen("api.openai.com"));
	expect_malformed_with(&h, list, 2, get_field(&h, list, 2) + 1);   /* list overruns */
	expect_malformed_with(&h, list, 2, 0);                             /* empty list */
	expect_malformed_with(&h, name_len, 2, get_field(&h, name_len, 2) + 1);
	expect_malformed_with(&h, name_len, 2, 0);                         /* empty name */
	/* a name type other than host_name is not a host name */
	other = h;
	other.b[list + 2] = 1;
	assert_int_equal(parse(other.b, other.len, name), DT_SNI_ABSENT);
}

static void test_interleaved_record(void **state)
{
	static struct hello h, frag;
	char name[DT_SNI_MAX + 1];

	(void)state;
	client_hello(&h, TLS1_3_VERSION, "api.openai.com", false);
	refragment(&h, 100, &frag);
	frag.b[105] = 21; /* the second fragment comes as an alert record */
	assert_int_equal(parse(frag.b, frag.len, name), DT_SNI_MALFORMED);
}

static void test_names(void **state)
{
	static struct hello h;
	char longest[DT_SNI_MAX + 2], name[DT_SNI_MAX + 1];
	static const char *const invalid[] = {
		"bad_name.example", "a..b", ".a", "a.", "sp ace.example",
		"x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};

	(void)state;
	/* 253 bytes in labels of 63 */
	memset(longest, 'a', DT_SNI_MAX);
	for (size_t i = 63; i < DT_SNI_MAX; i += 64)
		longest[i] = '.';
	longest[DT_SNI_MAX] = '\0';
	client_hello(&h, TLS1_3_VERSION, longest, false);
	expect_found(&h, longest);
	/* the name does not fit the caller's buffer */
	assert_int_equal(dt_sni_parse(h.b, h.len, name, 100), DT_SNI_MALFORMED);

	strcat(longest, "a"); /* 254 */
	client_hello(&h, TLS1_3_VERSION, longest, false);
	assert_int_equal(parse(h.b, h.len, name), DT_SNI_MALFORMED);

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		client_hello(&h, TLS1_3_VERSION, invalid[i], false);
		assert_int_equal(parse(h.b, h.len, name), DT_SNI_MALFORMED);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls12_and_tls13),
		cmocka_unit_test(test_without_sni),
		cmocka_unit_test(test_every_prefix_needs_more),
		cmocka_unit_test(test_fragmented_records),
		cmocka_unit_test(test_hello_over_one_record),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_malformed_lengths),
		cmocka_unit_test(test_malformed_server_name),
		cmocka_unit_test(test_interleaved_record),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
