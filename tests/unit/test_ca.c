// SPDX-License-Identifier: MIT
/*
 * The local CA: files and modes, reuse and re-issue, leaves that verify
 * against the root alone, and certificates an attacker makes with the
 * intermediate's key that do not. A TLS handshake checks SNI and ALPN.
 *
 * DETOUR_CA_EXPORT=DIR test_ca writes a CA and leaves into DIR instead of
 * testing, for tests/e2e/test_ca.sh to try them with Node's TLS.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"

#define OPENAI    "api.openai.com"
#define ANTHROPIC "api.anthropic.com"

static const char *const two_hosts[] = { OPENAI, ANTHROPIC };

struct fixture {
	char dir[64];       /* the temporary directory */
	char ca_dir[96];    /* <dir>/ca */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/detour-test-ca.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->ca_dir, sizeof(fx->ca_dir), "%s/%s", fx->dir, DT_CA_SUBDIR);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int rc = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(fx);
	return rc;
}

static struct dt_ca *ca_open(const char *dir, const char *const *hosts, size_t n, bool *reissued)
{
	struct dt_ca_opts o = { .dir = dir, .hosts = hosts, .n_hosts = n };
	char err[512] = "";
	struct dt_ca *ca = dt_ca_open(&o, reissued, err, sizeof(err));

	if (!ca)
		fail_msg("dt_ca_open: %s", err);
	return ca;
}

static char *file_read(const char *dir, const char *name)
{
	char path[256], *data = NULL;
	size_t len = 0;
	FILE *f, *out = open_memstream(&data, &len);
	int c;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		fputc(c, out);
	fclose(f);
	fclose(out);
	return data;
}

static X509 *root_of(const struct dt_ca *ca)
{
	char err[512];
	X509 *root = dt_ca_cert_load(dt_ca_root_path(ca), err, sizeof(err));

	if (!root)
		fail_msg("%s", err);
	return root;
}

static EVP_PKEY *inter_key_of(const char *ca_dir)
{
	char path[256];
	EVP_PKEY *key;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ca_dir, DT_CA_KEY_FILE);
	f = fopen(path, "re");
	assert_non_null(f);
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(key);
	return key;
}

static X509 *inter_of(SSL_CTX *ctx)
{
	STACK_OF(X509) *chain = NULL;

	assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
	assert_int_equal(sk_X509_num(chain), 1);
	return sk_X509_value(chain, 0);
}

/*
 * What a client trusting only the root decides about leaf presented with
 * inter: X509_V_OK or the verification error. name is the host (or IP
 * address) the client asked for; NULL checks the chain alone.
 */
static int verify(X509 *root, X509 *leaf, X509 *inter, const char *name)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_VERIFY_PARAM *param;
	int rc;

	assert_true(store && ctx && untrusted);
	assert_int_equal(X509_STORE_add_cert(store, root), 1);
	assert_true(sk_X509_push(untrusted, inter) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
	if (name && strchr(name, ':') == NULL && strspn(name, "0123456789.") == strlen(name))
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, name), 1);
	else if (name)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(param, name, 0), 1);
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

/* A server certificate with the SAN san, signed by the intermediate's key
 * as anyone able to read intermediate.key could. */
static X509 *attacker_cert(X509 *inter, EVP_PKEY *inter_key, EVP_PKEY *key, const char *cn,
			   const char *san)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x666), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(inter)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, inter, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, inter_key, EVP_sha256()) > 0);
	return x;
}

static void assert_mode(const char *dir, const char *name, mode_t want)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 07777) != want)
		fail_msg("%s: mode %04o, want %04o", path, st.st_mode & 07777, want);
}

/* ---- files -------------------------------------------------------------- */

static void test_create_files_and_modes(void **state)
{
	static const char *const hosts[] = { OPENAI, "198.18.0.2", ANTHROPIC, OPENAI, "::1" };
	static const char *const files[] = { DT_CA_ROOT_FILE, DT_CA_INTER_FILE, DT_CA_KEY_FILE,
					     DT_CA_HOSTS_FILE };
	struct fixture *fx = *state;
	mode_t old = umask(077); /* modes must not depend on it */
	bool reissued = true;
	struct dt_ca *ca = ca_open(fx->ca_dir, hosts, 5, &reissued);
	char *data;

	umask(old);
	assert_false(reissued);
	assert_mode(fx->dir, DT_CA_SUBDIR, 0700);
	assert_mode(fx->ca_dir, DT_CA_ROOT_FILE, 0644);
	assert_mode(fx->ca_dir, DT_CA_INTER_FILE, 0644);
	assert_mode(fx->ca_dir, DT_CA_KEY_FILE, 0600);
	assert_mode(fx->ca_dir, DT_CA_HOSTS_FILE, 0644);
	/* sorted, once each, address literals left out */
	data = file_read(fx->ca_dir, DT_CA_HOSTS_FILE);
	assert_string_equal(data, ANTHROPIC "\n" OPENAI "\n");
	free(data);
	/* the root's key went nowhere: only the intermediate's is on disk */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		data = file_read(fx->ca_dir, files[i]);
		assert_int_equal(strstr(data, "PRIVATE KEY") != NULL, strcmp(files[i], DT_CA_KEY_FILE) == 0);
		free(data);
	}
	assert_int_equal(dt_ca_root_path_of(fx->ca_dir, (char[256]){ 0 }, 256), 0);
	assert_string_equal(dt_ca_root_path(ca) + strlen(fx->ca_dir), "/" DT_CA_ROOT_FILE);
	dt_ca_free(ca);
}

static void test_reopen_keeps_the_root(void **state)
{
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	char *first = file_read(fx->ca_dir, DT_CA_ROOT_FILE), *second;

	dt_ca_free(ca);
	/* same hosts, another order */
	ca = ca_open(fx->ca_dir, (const char *const[]){ ANTHROPIC, OPENAI }, 2, &reissued);
	assert_false(reissued);
	second = file_read(fx->ca_dir, DT_CA_ROOT_FILE);
	assert_string_equal(first, second);
	free(first);
	free(second);
	dt_ca_free(ca);
}

static void test_hosts_changed_reissues(void **state)
{
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 1, &reissued);
	char *first = file_read(fx->ca_dir, DT_CA_ROOT_FILE), *second, *names;
	SSL_CTX *ctx;
	X509 *root;

	dt_ca_free(ca);
	ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	assert_true(reissued);
	second = file_read(fx->ca_dir, DT_CA_ROOT_FILE);
	assert_string_not_equal(first, second);
	ctx = dt_ca_server_ctx(ca, ANTHROPIC, NULL, 0);
	assert_non_null(ctx);
	names = dt_ca_permitted_names(inter_of(ctx));
	assert_string_equal(names, ANTHROPIC "\n" OPENAI "\n");
	/* the new leaf chains to the new root */
	root = root_of(ca);
	assert_int_equal(verify(root, SSL_CTX_get0_certificate(ctx), inter_of(ctx), ANTHROPIC),
			 X509_V_OK);
	X509_free(root);
	free(names);
	free(first);
	free(second);
	dt_ca_free(ca);
	ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	assert_false(reissued);
	dt_ca_free(ca);
}

/* What a crash between two renames leaves is re-issued, not an error. */
static void test_incomplete_ca_reissued(void **state)
{
	struct fixture *fx = *state;
	char path[256];
	bool reissued;

	dt_ca_free(ca_open(fx->ca_dir, two_hosts, 2, &reissued));
	snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, DT_CA_ROOT_FILE);
	assert_int_equal(unlink(path), 0);
	dt_ca_free(ca_open(fx->ca_dir, two_hosts, 2, &reissued));
	assert_true(reissued);
	assert_int_equal(access(path, F_OK), 0);
}

static void test_loose_key_refused(void **state)
{
	struct fixture *fx = *state;
	struct dt_ca_opts o = { .dir = fx->ca_dir, .hosts = two_hosts, .n_hosts = 2 };
	char path[256], err[512];
	bool reissued;

	dt_ca_free(ca_open(fx->ca_dir, two_hosts, 2, &reissued));
	snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, DT_CA_KEY_FILE);
	assert_int_equal(chmod(path, 0640), 0);
	assert_null(dt_ca_open(&o, &reissued, err, sizeof(err)));
	assert_non_null(strstr(err, "readable by group or others"));
}

static void test_bad_hosts_refused(void **state)
{
	struct fixture *fx = *state;
	static const char *const bad[] = { "API.openai.com", "a,permitted;DNS:com", "-a.com", "",
					   "a..com" };
	struct dt_ca_opts o = { .dir = fx->ca_dir };
	char err[512];
	bool reissued;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.hosts = &bad[i];
		o.n_hosts = 1;
		assert_null(dt_ca_open(&o, &reissued, err, sizeof(err)));
		assert_non_null(strstr(err, "not a lower-case DNS name"));
	}
	/* constraints with no permitted name would permit every name */
	o.hosts = (const char *const[]){ "127.0.0.1" };
	assert_null(dt_ca_open(&o, &reissued, err, sizeof(err)));
	assert_non_null(strstr(err, "no provider host name"));
}

/* ---- leaves and attackers ----------------------------------------------- */

static void test_leaf_verifies_against_the_root(void **state)
{
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	char err[512];
	SSL_CTX *ctx = dt_ca_server_ctx(ca, OPENAI, err, sizeof(err));
	X509 *root = root_of(ca), *leaf;

	assert_non_null(ctx);
	leaf = SSL_CTX_get0_certificate(ctx);
	assert_int_equal(verify(root, leaf, inter_of(ctx), OPENAI), X509_V_OK);
	/* a leaf names its host only */
	assert_int_equal(verify(root, leaf, inter_of(ctx), ANTHROPIC), X509_V_ERR_HOSTNAME_MISMATCH);
	/* about 30 days, started a minute ago */
	assert_true(X509_cmp_time(X509_get0_notBefore(leaf), NULL) < 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){ time(NULL) + 29 * 86400 }) > 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){ time(NULL) + 31 * 86400 }) < 0);
	X509_free(root);
	dt_ca_free(ca);
}

static void test_attacker_certs_rejected(void **state)
{
	static const struct {
		const char *cn, *san, *asked; /* asked NULL: the chain alone */
		int want;
	} attacks[] = {
		{ "evil.example", "DNS:evil.example", "evil.example", X509_V_ERR_PERMITTED_VIOLATION },
		{ "203.0.113.7", "IP:203.0.113.7", "203.0.113.7", X509_V_ERR_EXCLUDED_VIOLATION },
		{ "v6", "IP:2001:db8::7", NULL, X509_V_ERR_EXCLUDED_VIOLATION },
		/* OpenSSL matches no wildcard over a single label, so only the chain is judged */
		{ "*.com", "DNS:*.com", NULL, X509_V_ERR_PERMITTED_VIOLATION },
		/* a constrained name in the CN does not help another in the SAN */
		{ OPENAI, "DNS:evil.example", "evil.example", X509_V_ERR_PERMITTED_VIOLATION },
	};
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	X509 *root = root_of(ca), *inter = inter_of(dt_ca_server_ctx(ca, OPENAI, NULL, 0));
	EVP_PKEY *inter_key = inter_key_of(fx->ca_dir), *key = EVP_EC_gen("P-256");

	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		X509 *evil = attacker_cert(inter, inter_key, key, attacks[i].cn, attacks[i].san);
		int rc = verify(root, evil, inter, attacks[i].asked);

		if (rc != attacks[i].want)
			fail_msg("%s: %s, want %s", attacks[i].san, X509_verify_cert_error_string(rc),
				 X509_verify_cert_error_string(attacks[i].want));
		X509_free(evil);
	}
	/* the same forgery for a configured host is accepted: the key is the one in use */
	{
		X509 *good = attacker_cert(inter, inter_key, key, OPENAI, "DNS:" OPENAI);

		assert_int_equal(verify(root, good, inter, OPENAI), X509_V_OK);
		X509_free(good);
	}
	EVP_PKEY_free(key);
	EVP_PKEY_free(inter_key);
	X509_free(root);
	dt_ca_free(ca);
}

static void test_unknown_sni_refused(void **state)
{
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	char err[512] = "";

	assert_null(dt_ca_server_ctx(ca, "evil.example", err, sizeof(err)));
	assert_string_equal(err, "ca: evil.example: not a configured provider host");
	assert_null(dt_ca_server_ctx(ca, "x." OPENAI, err, sizeof(err)));
	assert_null(dt_ca_server_ctx(ca, NULL, err, sizeof(err)));
	dt_ca_free(ca);
}

static void test_leaf_cached_case_insensitive(void **state)
{
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	SSL_CTX *a = dt_ca_server_ctx(ca, OPENAI, NULL, 0);
	X509 *leaf = SSL_CTX_get0_certificate(a);

	assert_non_null(a);
	assert_ptr_equal(dt_ca_server_ctx(ca, "API.OpenAI.com", NULL, 0), a);
	assert_ptr_equal(SSL_CTX_get0_certificate(a), leaf); /* not re-minted */
	assert_ptr_not_equal(dt_ca_server_ctx(ca, ANTHROPIC, NULL, 0), a);
	dt_ca_free(ca);
}

/* ---- a TLS handshake ---------------------------------------------------- */

/* What the proxy does: a front context switched to the SNI's leaf. */
static int sni_switch(SSL *ssl, int *alert, void *arg)
{
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char err[512];
	SSL_CTX *ctx = dt_ca_server_ctx(arg, sni, err, sizeof(err));

	(void)alert;
	if (!ctx || SSL_set_SSL_CTX(ssl, ctx) != ctx)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static bool step(SSL *ssl, int rc, bool *done)
{
	int e = SSL_get_error(ssl, rc);

	*done = rc == 1;
	return rc == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* A handshake over a socketpair; returns the ALPN protocol chosen ("" for
 * none) in alpn, and the client's verification result. */
static long handshake(struct dt_ca *ca, const unsigned char *offer, unsigned offer_len,
		      char alpn[16])
{
	SSL_CTX *front = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
	char err[512];
	X509 *root = root_of(ca);
	SSL *client, *server;
	bool c_done = false, s_done = false;
	const unsigned char *sel;
	unsigned sel_len;
	long verdict;
	int sv[2];

	assert_true(front && cctx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	SSL_CTX_set_tlsext_servername_callback(front, sni_switch);
	SSL_CTX_set_tlsext_servername_arg(front, ca);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), root), 1);
	client = SSL_new(cctx);
	server = SSL_new(front);
	assert_true(client && server);
	SSL_set_fd(client, sv[0]);
	SSL_set_fd(server, sv[1]);
	assert_int_equal(SSL_set_tlsext_host_name(client, OPENAI), 1);
	assert_int_equal(SSL_set1_host(client, OPENAI), 1);
	if (offer)
		assert_int_equal(SSL_set_alpn_protos(client, offer, offer_len), 0);
	for (int i = 0; i < 50 && !(c_done && s_done); i++) {
		if (!c_done && !step(client, SSL_connect(client), &c_done))
			break;
		if (!s_done && !step(server, SSL_accept(server), &s_done))
			break;
	}
	if (!(c_done && s_done)) {
		ERR_error_string_n(ERR_peek_last_error(), err, sizeof(err));
		fail_msg("handshake failed: %s", err);
	}
	SSL_get0_alpn_selected(client, &sel, &sel_len);
	snprintf(alpn, 16, "%.*s", (int)sel_len, (const char *)sel);
	verdict = SSL_get_verify_result(client);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	SSL_CTX_free(front);
	X509_free(root);
	close(sv[0]);
	close(sv[1]);
	return verdict;
}

static void test_handshake_sni_and_alpn(void **state)
{
	static const unsigned char h2_and_h1[] = "\x02h2\x08http/1.1";
	struct fixture *fx = *state;
	bool reissued;
	struct dt_ca *ca = ca_open(fx->ca_dir, two_hosts, 2, &reissued);
	char alpn[16];

	assert_int_equal(handshake(ca, h2_and_h1, sizeof(h2_and_h1) - 1, alpn), X509_V_OK);
	assert_string_equal(alpn, "http/1.1");
	/* h2 alone is not taken up, and no ALPN at all is fine */
	assert_int_equal(handshake(ca, (const unsigned char *)"\x02h2", 3, alpn), X509_V_OK);
	assert_string_equal(alpn, "");
	assert_int_equal(handshake(ca, NULL, 0, alpn), X509_V_OK);
	assert_string_equal(alpn, "");
	dt_ca_free(ca);
}

/* ---- export for tests/e2e/test_ca.sh ------------------------------------ */

static int pem_export(const char *dir, const char *name, X509 *leaf, X509 *inter, EVP_PKEY *key)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	f = fopen(path, "we");
	ok = f && PEM_write_X509(f, leaf) && PEM_write_X509(f, inter);
	if (f && fclose(f))
		ok = 0;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	f = ok ? fopen(path, "we") : NULL;
	ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (f && fclose(f))
		ok = 0;
	if (!ok)
		fprintf(stderr, "test_ca: %s: cannot write\n", path);
	return ok ? 0 : 1;
}

/* DIR/ca holds a CA for the two hosts; DIR gets root.pem, leaf-good.* (its
 * leaf for api.openai.com) and leaf-evil*.* (forged with intermediate.key)
 * for evil.example, 203.0.113.7 and *.com. */
static int export(const char *dir)
{
	static const struct { const char *name, *cn, *san; } evil[] = {
		{ "leaf-evil", "evil.example", "DNS:evil.example" },
		{ "leaf-evil-ip", "203.0.113.7", "IP:203.0.113.7" },
		{ "leaf-evil-wildcard", "*.com", "DNS:*.com" },
	};
	char ca_dir[512], root_path[512], err[512];
	struct dt_ca_opts o = { .dir = ca_dir, .hosts = two_hosts, .n_hosts = 2 };
	struct dt_ca *ca;
	SSL_CTX *ctx;
	EVP_PKEY *inter_key, *key;
	bool reissued;
	int rc = 1;

	snprintf(ca_dir, sizeof(ca_dir), "%s/%s", dir, DT_CA_SUBDIR);
	snprintf(root_path, sizeof(root_path), "%s/root.pem", dir);
	ca = dt_ca_open(&o, &reissued, err, sizeof(err));
	ctx = ca ? dt_ca_server_ctx(ca, OPENAI, err, sizeof(err)) : NULL;
	if (!ctx || dt_ca_root_copy(ca_dir, root_path, err, sizeof(err))) {
		fprintf(stderr, "test_ca: %s\n", err);
		dt_ca_free(ca);
		return 1;
	}
	inter_key = inter_key_of(ca_dir);
	key = EVP_EC_gen("P-256");
	rc = pem_export(dir, "leaf-good", SSL_CTX_get0_certificate(ctx), inter_of(ctx),
			SSL_CTX_get0_privatekey(ctx));
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]) && rc == 0; i++) {
		X509 *forged = attacker_cert(inter_of(ctx), inter_key, key, evil[i].cn, evil[i].san);

		rc = pem_export(dir, evil[i].name, forged, inter_of(ctx), key);
		X509_free(forged);
	}
	EVP_PKEY_free(key);
	EVP_PKEY_free(inter_key);
	dt_ca_free(ca);
	return rc;
}

int main(void)
{
	const char *export_dir = getenv("DETOUR_CA_EXPORT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_files_and_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_the_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts_changed_reissues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incomplete_ca_reissued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loose_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hosts_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leaf_verifies_against_the_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attacker_certs_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_sni_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leaf_cached_case_insensitive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_sni_and_alpn, setup, teardown),
	};

	if (export_dir)
		return export(export_dir);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
